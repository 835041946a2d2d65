import Foundation
import DeformTensor

/// Orthographic-n-point (OnP) alignment for inference: the rotation (and optionally scale) that
/// best explains 2D points as the orthographic projection of a known 3D shape,
/// `min_{R ∈ SO(3), s, t} Σ_i m_i |w_i - (s P R x_i + t)|²` with `P = [I₂ 0]`.
///
/// Used at test time by PAUL (Sec. 2.4.2, "Prediction on unseen data": the canonical shape from
/// the lifting network is aligned to the camera by OnP; the thesis cites Steger 2018 but does not
/// say which variant). The method here:
/// 1. Translation is eliminated exactly by centring `W` and `X` at their visible means.
/// 2. Closed form: the unconstrained least-squares 2x3 camera `A = (Σ m wxᵀ)(Σ m xxᵀ)⁻¹`, its rows
///    replaced by the nearest orthonormal pair `Q = (AAᵀ)^(-1/2) A` (polar factor, i.e. the SVD
///    projection), completed by `q₁ × q₂`; with `estimateScale`, `s = Σ w·Qx / Σ |Qx|²`.
///    Without noise this is already exact.
/// 3. Refinement of the geometric (reprojection) error by Levenberg-Marquardt on the rotation,
///    `R ← exp([δ]×) R`, and the scale, accepting only steps that lower the error.
///
/// Computed per sample in Double; not differentiable (at a converged minimum the gradient
/// through the minimiser is not needed, Sec. 2.4.2). Samples with fewer than three
/// non-collinear visible points have no unique answer; a small ridge keeps the result finite.
public enum OnP {
    public struct Solution {
        /// `[..., 3, 3]`, camera-from-canonical: the camera-frame shape is `s X Rᵀ` plus translation.
        public var rotation: Tensor
        /// `[...]` (ones unless `estimateScale`).
        public var scale: Tensor
        /// 2D translation `[..., 2]`: `w_i ≈ s (R x_i)_xy + t`.
        public var translation: Tensor
        /// Root-mean-square reprojection error over the visible points, `[...]`.
        public var rmsError: Tensor
    }

    /// Aligns `shape` to `points2D`.
    /// - Parameters:
    ///   - points2D: `[..., P, 2]`.
    ///   - shape: canonical 3D points `[..., P, 3]`.
    ///   - mask: `[..., P]` or `nil`.
    ///   - estimateScale: weak perspective (fit `s`) instead of orthographic (`s = 1`).
    ///   - iterations: Levenberg-Marquardt iterations after the closed form (0 = closed form only).
    /// - Throws: ``TensorError`` for mismatched shapes or non-finite visible values.
    public static func solve(points2D: Tensor, shape: Tensor, mask: Tensor? = nil, estimateScale: Bool = false,
                             iterations: Int = 10) throws -> Solution {
        let op = "OnP.solve"
        let batch = try checkedBatchShape(shape, trailing: [-1, 3], op: op, name: "shape")
        let points = shape.shape[shape.rank - 2]
        try checkShape(points2D, batch + [points, 2], op: op, name: "points2D")
        if let mask { try checkShape(mask, batch + [points], op: op, name: "mask") }
        let n = shapeCount(batch)
        let rotation = Tensor(uninitializedShape: batch + [3, 3])
        let scale = Tensor(uninitializedShape: batch), translation = Tensor(uninitializedShape: batch + [2])
        let rms = Tensor(uninitializedShape: batch)
        let pw = points2D.dataPointer, px = shape.dataPointer, pm = mask?.dataPointer
        let pr = rotation.dataPointer, ps = scale.dataPointer, pt = translation.dataPointer, pe = rms.dataPointer
        var bad = [Int](repeating: -1, count: n)
        bad.withUnsafeMutableBufferPointer { badp in
            Threads.parallelRanges(n, minChunk: 64) { range in
                for b in range {
                    var w: [SIMD2<Double>] = [], x: [V3] = []
                    for i in 0..<points where pm.map({ $0[b * points + i] != 0 }) ?? true {
                        let q = pw + 2 * (b * points + i), p = px + 3 * (b * points + i)
                        w.append(SIMD2(Double(q[0]), Double(q[1])))
                        x.append(V3(Double(p[0]), Double(p[1]), Double(p[2])))
                    }
                    if w.contains(where: { !$0.x.isFinite || !$0.y.isFinite }) || x.contains(where: { !dot($0, $0).isFinite }) {
                        badp[b] = b
                        continue
                    }
                    let r = solveOne(w, x, estimateScale: estimateScale, iterations: iterations)
                    r.rotation.store(pr + 9 * b)
                    ps[b] = Float(r.scale)
                    pt[2 * b] = Float(r.translation.x); pt[2 * b + 1] = Float(r.translation.y)
                    pe[b] = Float(r.rms)
                }
            }
        }
        if let b = bad.first(where: { $0 >= 0 }) {
            throw TensorError.nonFinite(op: op, message: "sample \(b) of batch \(batch) has a non-finite visible coordinate")
        }
        return Solution(rotation: rotation, scale: scale, translation: translation, rmsError: rms)
    }

    /// The closed form and refinement for one sample (visible points only).
    static func solveOne(_ w0: [SIMD2<Double>], _ x0: [V3], estimateScale: Bool, iterations: Int)
        -> (rotation: M3, scale: Double, translation: SIMD2<Double>, rms: Double) {
        let count = w0.count
        if count == 0 { return (.identity, 1, .zero, 0) }
        let wMean = w0.reduce(.zero, +) / Double(count), xMean = x0.reduce(.zero, +) / Double(count)
        let w = w0.map { $0 - wMean }, x = x0.map { $0 - xMean }

        // Closed form: A = C N⁻¹ with a relative ridge.
        var c0 = V3.zero, c1 = V3.zero, nm = M3(r0: .zero, r1: .zero, r2: .zero)
        for (wi, xi) in zip(w, x) {
            c0 += wi.x * xi; c1 += wi.y * xi
            nm = nm + M3.outer(xi, xi)
        }
        let ridge = 1e-9 * nm.trace / 3 + 1e-300
        nm.r0.x += ridge; nm.r1.y += ridge; nm.r2.z += ridge
        let inv = nm.inverse.transposed
        let a0 = inv * c0, a1 = inv * c1
        var (q0, q1) = orthonormalRows(a0, a1)
        var rot = M3(r0: q0, r1: q1, r2: crossV(q0, q1))

        func cost(_ r: M3, _ s: Double) -> Double {
            var e = 0.0
            for (wi, xi) in zip(w, x) {
                let d = SIMD2(wi.x - s * dot(r.r0, xi), wi.y - s * dot(r.r1, xi))
                e += d.x * d.x + d.y * d.y
            }
            return e
        }
        func bestScale(_ r: M3) -> Double {
            var num = 0.0, den = 0.0
            for (wi, xi) in zip(w, x) {
                let p = SIMD2(dot(r.r0, xi), dot(r.r1, xi))
                num += wi.x * p.x + wi.y * p.y; den += p.x * p.x + p.y * p.y
            }
            return den > 0 ? num / den : 1
        }
        var s = estimateScale ? bestScale(rot) : 1
        var e = cost(rot, s)
        var lambda = 1e-3
        let dims = estimateScale ? 4 : 3
        for _ in 0..<iterations {
            // r_i = w_i - s P y_i, y_i = R x_i; d r_i/dδ = s P [y_i]×, d r_i/ds = -P y_i.
            var jtj = [Double](repeating: 0, count: dims * dims), jtr = [Double](repeating: 0, count: dims)
            for (wi, xi) in zip(w, x) {
                let y = rot * xi
                let res = [wi.x - s * y.x, wi.y - s * y.y]
                var rowsJ: [[Double]] = [[0, -s * y.z, s * y.y], [s * y.z, 0, -s * y.x]]
                if estimateScale { rowsJ[0].append(-y.x); rowsJ[1].append(-y.y) }
                for k in 0..<2 {
                    for i in 0..<dims {
                        jtr[i] += rowsJ[k][i] * res[k]
                        for j in 0..<dims { jtj[i * dims + j] += rowsJ[k][i] * rowsJ[k][j] }
                    }
                }
            }
            var improved = false
            for _ in 0..<8 {
                var damped = jtj
                for i in 0..<dims { damped[i * dims + i] += lambda * Swift.max(jtj[i * dims + i], 1e-12) }
                guard let step = solveSmall(damped, jtr.map { -$0 }, dims) else { lambda *= 10; continue }
                let candidate = rodrigues(V3(step[0], step[1], step[2])) * rot
                let sc = estimateScale ? s + step[3] : s
                let ec = cost(candidate, sc)
                if ec < e {
                    rot = candidate; s = sc
                    let gain = e - ec
                    e = ec
                    lambda = Swift.max(lambda / 10, 1e-12)
                    improved = gain > 1e-15 * Swift.max(e, 1e-300)
                    break
                }
                lambda *= 10
            }
            if !improved { break }
        }
        // Keep the rotation exactly orthonormal after repeated products.
        (q0, q1) = orthonormalRows(rot.r0, rot.r1)
        rot = M3(r0: q0, r1: q1, r2: crossV(q0, q1))
        let t = wMean - s * SIMD2(dot(rot.r0, xMean), dot(rot.r1, xMean))
        return (rot, s, t, (cost(rot, s) / Double(count)).squareRoot())
    }

    /// The nearest pair of orthonormal rows to `(a, b)`: the polar factor `(MMᵀ)^(-1/2) M` of the
    /// 2x3 matrix M, via the closed-form square root of a 2x2 SPD matrix. Rank-deficient input
    /// keeps the direction of the longer row and picks any perpendicular.
    static func orthonormalRows(_ a: V3, _ b: V3) -> (V3, V3) {
        let p = dot(a, a), q = dot(a, b), r = dot(b, b)
        let det = p * r - q * q
        if det > 1e-24 * (p + r) * (p + r) {
            // √G = (G + √det I)/√(tr + 2√det) for G = [[p, q], [q, r]]; then (√G)⁻¹ M.
            let sd = det.squareRoot(), k = 1 / (p + r + 2 * sd).squareRoot()
            let s00 = (p + sd) * k, s01 = q * k, s11 = (r + sd) * k
            let idet = 1 / (s00 * s11 - s01 * s01)
            let i00 = s11 * idet, i01 = -s01 * idet, i11 = s00 * idet
            return (i00 * a + i01 * b, i01 * a + i11 * b)
        }
        let u = p >= r ? a : b
        let len = dot(u, u).squareRoot()
        let e0 = len > 0 ? u / len : V3(1, 0, 0)
        let axis: V3 = Swift.abs(e0.x) < 0.9 ? V3(1, 0, 0) : V3(0, 1, 0)
        var e1 = axis - dot(axis, e0) * e0
        e1 /= dot(e1, e1).squareRoot()
        return p >= r ? (e0, e1) : (e1, e0)
    }

    /// Solves a small dense system by Gaussian elimination with partial pivoting; nil if singular.
    static func solveSmall(_ a0: [Double], _ b0: [Double], _ n: Int) -> [Double]? {
        var a = a0, b = b0
        for col in 0..<n {
            var piv = col
            for r in (col + 1)..<n where Swift.abs(a[r * n + col]) > Swift.abs(a[piv * n + col]) { piv = r }
            if !(Swift.abs(a[piv * n + col]) > 0) { return nil }
            if piv != col {
                for j in 0..<n { a.swapAt(col * n + j, piv * n + j) }
                b.swapAt(col, piv)
            }
            for r in (col + 1)..<n {
                let f = a[r * n + col] / a[col * n + col]
                for j in col..<n { a[r * n + j] -= f * a[col * n + j] }
                b[r] -= f * b[col]
            }
        }
        var x = [Double](repeating: 0, count: n)
        for i in stride(from: n - 1, through: 0, by: -1) {
            var s = b[i]
            for j in (i + 1)..<n { s -= a[i * n + j] * x[j] }
            x[i] = s / a[i * n + i]
        }
        return x
    }
}
