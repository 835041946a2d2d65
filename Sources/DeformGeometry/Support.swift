import Foundation
import DeformTensor

// Shared plumbing: shape checks, per-item kernels with hand-written VJPs, and small Double
// vector/matrix helpers used by the solvers and metrics.

typealias V3 = SIMD3<Double>

@inline(__always) func dot(_ a: V3, _ b: V3) -> Double { a.x * b.x + a.y * b.y + a.z * b.z }

@inline(__always) func crossV(_ a: V3, _ b: V3) -> V3 {
    V3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
}

/// Row-major 3x3 Double matrix as three rows.
struct M3 {
    var r0: V3, r1: V3, r2: V3

    static let identity = M3(r0: V3(1, 0, 0), r1: V3(0, 1, 0), r2: V3(0, 0, 1))

    init(r0: V3, r1: V3, r2: V3) { self.r0 = r0; self.r1 = r1; self.r2 = r2 }

    /// Loads nine row-major Floats.
    init(_ p: UnsafePointer<Float>) {
        r0 = V3(Double(p[0]), Double(p[1]), Double(p[2]))
        r1 = V3(Double(p[3]), Double(p[4]), Double(p[5]))
        r2 = V3(Double(p[6]), Double(p[7]), Double(p[8]))
    }

    func store(_ p: UnsafeMutablePointer<Float>) {
        for (i, r) in [r0, r1, r2].enumerated() {
            p[3 * i] = Float(r.x); p[3 * i + 1] = Float(r.y); p[3 * i + 2] = Float(r.z)
        }
    }

    @inline(__always) subscript(i: Int, j: Int) -> Double {
        get { i == 0 ? r0[j] : (i == 1 ? r1[j] : r2[j]) }
        set {
            switch i {
            case 0: r0[j] = newValue
            case 1: r1[j] = newValue
            default: r2[j] = newValue
            }
        }
    }

    var transposed: M3 { M3(r0: V3(r0.x, r1.x, r2.x), r1: V3(r0.y, r1.y, r2.y), r2: V3(r0.z, r1.z, r2.z)) }
    var trace: Double { r0.x + r1.y + r2.z }
    var determinant: Double { dot(r0, crossV(r1, r2)) }

    @inline(__always) static func * (a: M3, v: V3) -> V3 { V3(dot(a.r0, v), dot(a.r1, v), dot(a.r2, v)) }

    static func * (a: M3, b: M3) -> M3 {
        let bt = b.transposed
        return M3(r0: bt * a.r0, r1: bt * a.r1, r2: bt * a.r2)
    }

    static func + (a: M3, b: M3) -> M3 { M3(r0: a.r0 + b.r0, r1: a.r1 + b.r1, r2: a.r2 + b.r2) }
    static func - (a: M3, b: M3) -> M3 { M3(r0: a.r0 - b.r0, r1: a.r1 - b.r1, r2: a.r2 - b.r2) }
    static func * (s: Double, a: M3) -> M3 { M3(r0: s * a.r0, r1: s * a.r1, r2: s * a.r2) }

    /// `(a₂₁ - a₁₂, a₀₂ - a₂₀, a₁₀ - a₀₁)`: twice the axial vector of the antisymmetric part, and
    /// `⟨a, [u]×⟩ = u · vee(a)` for any `u`.
    var vee: V3 { V3(r2.y - r1.z, r0.z - r2.x, r1.x - r0.y) }

    /// `[v]×`, the matrix of `x ↦ v × x`.
    static func hat(_ v: V3) -> M3 { M3(r0: V3(0, -v.z, v.y), r1: V3(v.z, 0, -v.x), r2: V3(-v.y, v.x, 0)) }

    static func outer(_ a: V3, _ b: V3) -> M3 { M3(r0: a.x * b, r1: a.y * b, r2: a.z * b) }

    /// Inverse by the adjugate (rows of the inverse's transpose are cross products of rows).
    var inverse: M3 {
        let c0 = crossV(r1, r2), c1 = crossV(r2, r0), c2 = crossV(r0, r1)
        let inv = 1 / dot(r0, c0)
        // Columns of the inverse are c0, c1, c2 scaled by 1/det.
        return M3(r0: V3(c0.x, c1.x, c2.x) * inv, r1: V3(c0.y, c1.y, c2.y) * inv, r2: V3(c0.z, c1.z, c2.z) * inv)
    }
}

/// Rotation `exp([ω]×)` in Double (Rodrigues, series near 0).
func rodrigues(_ w: V3) -> M3 {
    let t2 = dot(w, w)
    let c = rodriguesCoefficients(t2)
    // R = I + a K + b K², K² = ωωᵀ - θ² I.
    var r = c.a * M3.hat(w) + c.b * M3.outer(w, w)
    let diag = 1 - c.b * t2
    r.r0.x += diag; r.r1.y += diag; r.r2.z += diag
    return r
}

/// `a = sin θ/θ`, `b = (1 - cos θ)/θ²` and their derivatives divided by θ,
/// `c = a'(θ)/θ`, `d = b'(θ)/θ`, from `θ²`. Series below θ = 0.01, where the closed forms would
/// lose digits to cancellation (their relative error grows like ε/θ²).
@inline(__always)
func rodriguesCoefficients(_ t2: Double) -> (a: Double, b: Double, c: Double, d: Double) {
    if t2 < 1e-4 {
        let t4 = t2 * t2
        return (1 - t2 / 6 + t4 / 120,
                0.5 - t2 / 24 + t4 / 720,
                -1.0 / 3 + t2 / 30 - t4 / 840,
                -1.0 / 12 + t2 / 180 - t4 / 6720)
    }
    let t = t2.squareRoot(), s = Foundation.sin(t), co = Foundation.cos(t)
    let h = Foundation.sin(t / 2)
    let omc = 2 * h * h                                  // 1 - cos θ without cancellation
    return (s / t, omc / t2, (t * co - s) / (t * t2), (t * s - 2 * omc) / (t2 * t2))
}

// MARK: - Shape checks

/// The batch shape of `t` when its trailing dimensions are `trailing` (`-1` matches any size);
/// traps naming the op, the expected and the found shape otherwise.
func batchShape(_ t: Tensor, trailing: [Int], op: String, name: String = "input") -> [Int] {
    do { return try checkedBatchShape(t, trailing: trailing, op: op, name: name) }
    catch let e as TensorError { fail(e) } catch { fatalError("\(error)") }
}

/// Throwing form of ``batchShape(_:trailing:op:name:)``.
func checkedBatchShape(_ t: Tensor, trailing: [Int], op: String, name: String = "input") throws -> [Int] {
    let k = trailing.count
    let ok = t.rank >= k && zip(t.shape.suffix(k), trailing).allSatisfy { $1 < 0 || $0 == $1 }
    if !ok {
        let dims = trailing.map { $0 < 0 ? "*" : String($0) }.joined(separator: ", ")
        throw TensorError.shapeMismatch(op: op, expected: "\(name) of shape [..., \(dims)]", found: "\(t.shape)")
    }
    return Array(t.shape.dropLast(k))
}

/// Throws unless `t` has exactly `shape`.
func checkShape(_ t: Tensor, _ shape: [Int], op: String, name: String) throws {
    if t.shape != shape {
        throw TensorError.shapeMismatch(op: op, expected: "\(name) of shape \(shape)", found: "\(t.shape)")
    }
}

// MARK: - Per-item kernels

/// Applies `forward` to each item of `x` (its trailing `inTrailing` block) producing an item of
/// shape `outTrailing`, with the per-item VJP `backward(x, ȳ, x̄)`. Items run across cores.
func itemKernel(_ name: String, _ x: Tensor, inTrailing: [Int], outTrailing: [Int],
                forward: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void,
                backward: @escaping (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> Tensor {
    let batch = batchShape(x, trailing: inTrailing, op: name)
    let n = shapeCount(batch), inCount = shapeCount(inTrailing), outCount = shapeCount(outTrailing)
    let y = Tensor(uninitializedShape: batch + outTrailing)
    let px = x.dataPointer, py = y.dataPointer
    Threads.parallelRanges(n, minChunk: 2048) { r in
        for i in r { forward(px + i * inCount, py + i * outCount) }
    }
    guard GradMode.isEnabled, x.isTracked else { return y }
    let xd = x.detached()
    return Tensor.record(name, output: y, inputs: [x]) { g in
        let gx = Tensor(uninitializedShape: xd.shape)
        let px = xd.dataPointer, pg = g.dataPointer, po = gx.dataPointer
        Threads.parallelRanges(n, minChunk: 2048) { r in
            for i in r { backward(px + i * inCount, pg + i * outCount, po + i * inCount) }
        }
        return [gx]
    }
}

/// `1 / max(Σ mask, 1)` per item, shaped `[..., 1, 1]` for broadcasting over `[..., P, C]`:
/// the mean over visible points, with frames that have no visible point giving zeros.
func inverseVisibleCount(_ mask: Tensor) -> Tensor {
    let count = GradMode.withoutGrad { mask.sum(axes: [-1], keepDims: true) }
    return count.mapScalars { 1 / Swift.max($0, 1) }.unsqueezed(-1)
}
