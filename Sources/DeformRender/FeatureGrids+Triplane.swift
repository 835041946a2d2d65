import DeformTensor
import Foundation

/// How ``FeatureGrids/triplane(planes:points:combine:)`` merges the features of its three planes.
public enum TriplaneCombination: String, Codable, Sendable, CaseIterable {
    /// `f_xy + f_xz + f_yz`, `[N, C]` (EG3D aggregates by summation/averaging).
    case sum
    /// `[f_xy, f_xz, f_yz]` side by side, `[N, 3C]`.
    case concat
    /// `f_xy ⊙ f_xz ⊙ f_yz`, `[N, C]` (K-Planes' Hadamard product, which can localise a feature in
    /// 3D where a sum cannot).
    case product
}

extension FeatureGrids {
    /// Triplane sampling: bilinear interpolation on three axis-aligned feature planes, combined.
    ///
    /// - Parameters:
    ///   - planes: `[3, H, W, C]`, channels last, in the order xy, xz, yz. Plane xy is indexed by
    ///     (x along W, y along H), plane xz by (x along W, z along H), plane yz by (y along W,
    ///     z along H). The three planes share one resolution, so the scene box should be roughly
    ///     cubic (or the coordinates scaled to it).
    ///   - points: `[N, 3]`, (x, y, z) in [-1, 1] with the align-corners convention of
    ///     ``trilinear(grid:points:)`` (-1 and 1 are the centres of the edge texels); points
    ///     outside are clamped to the border.
    ///   - combine: how the three features are merged.
    /// - Returns: `[N, C]` (sum, product) or `[N, 3C]` (concat), differentiable with respect to
    ///   `planes` and `points`.
    /// - Throws: ``TensorError`` when a shape is wrong or a point holds NaN or infinity.
    public static func triplane(planes: Tensor, points: Tensor, combine: TriplaneCombination = .sum) throws -> Tensor {
        let op = "FeatureGrids.triplane"
        guard planes.rank == 4, planes.shape[0] == 3, !planes.shape.contains(0) else {
            throw TensorError.shapeMismatch(op: op, expected: "planes [3, H, W, C] (xy, xz, yz; channels last) with H, W, C at least 1",
                                            found: "\(planes.shape)")
        }
        try checkPoints(points, op: op)
        let dims = PlaneDims(planes.shape)
        let n = points.shape[0], c = dims.c
        let width = combine == .concat ? 3 * c : c
        let out = Tensor(uninitializedShape: [n, width])
        let sp = planes.dataPointer, pp = points.dataPointer, o0 = out.dataPointer
        Threads.parallelRanges(n, minChunk: Swift.max(1, parallelWork / (12 * c))) { range in
            let feat = UnsafeMutablePointer<Float>.allocate(capacity: 3 * c)
            defer { feat.deallocate() }
            for i in range {
                for p in 0..<3 { PlaneTaps(pp + 3 * i, plane: p, dims).interpolate(sp, c, into: feat + p * c) }
                let o = o0 + i * width
                switch combine {
                case .sum: for ch in 0..<c { o[ch] = feat[ch] + feat[c + ch] + feat[2 * c + ch] }
                case .product: for ch in 0..<c { o[ch] = feat[ch] * feat[c + ch] * feat[2 * c + ch] }
                case .concat: o.update(from: feat, count: 3 * c)
                }
            }
        }
        let planesD = planes.detached(), pointsD = points.detached()
        let needPlanes = planes.isTracked, needPoints = points.isTracked
        return Tensor.record("FeatureGrids.triplane", output: out, inputs: [planes, points]) { g in
            let grads = triplaneBackward(planes: planesD, points: pointsD, gOut: g, combine: combine,
                                         needPlanes: needPlanes, needPoints: needPoints)
            return [grads.planes, grads.points]
        }
    }

    /// The VJP of ``triplane(planes:points:combine:)``. Each plane p receives the effective
    /// cotangent `ḡ_p` (ḡ itself for sum, its slice for concat, `ḡ ⊙ f_q ⊙ f_r` of the other two
    /// planes for product) and is then a bilinear lookup like any other.
    static func triplaneBackward(planes: Tensor, points: Tensor, gOut: Tensor, combine: TriplaneCombination,
                                 needPlanes: Bool, needPoints: Bool) -> (planes: Tensor?, points: Tensor?) {
        let dims = PlaneDims(planes.shape)
        let n = points.shape[0], c = dims.c
        let planeGrad = needPlanes ? Tensor.zeros(planes.shape) : nil
        let pointGrad = needPoints ? Tensor.zeros([n, 3]) : nil
        let sp = planes.dataPointer, pp = points.dataPointer, gy = gOut.dataPointer
        let allRows = 0..<(3 * dims.h)
        guard let planeGrad else {
            let pg = pointGrad?.dataPointer
            Threads.parallelRanges(n, minChunk: Swift.max(1, parallelWork / (12 * c))) { range in
                planeBackwardPass(sp, pp, gy, dims, combine, points: range, rows: allRows, planeGrad: nil, pointGrad: pg)
            }
            return (nil, pointGrad)
        }
        // Each thread owns a range of the 3H plane rows (plane p's row v is row p·H + v), balanced
        // by the number of corner writes that land in them.
        let chunks = n * c >= parallelWork ? Swift.min(Threads.coreCount, 3 * dims.h) : 1
        var bounds = [0, 3 * dims.h]
        if chunks > 1 {
            var counts = [Int](repeating: 0, count: 3 * dims.h)
            for i in 0..<n {
                for p in 0..<3 {
                    let tv = AxisTap(normalized: pp[3 * i + PlaneTaps.vAxis(p)], size: dims.h)
                    counts[p * dims.h + tv.i0] += 1
                    counts[p * dims.h + tv.i1] += 1
                }
            }
            bounds = balancedBoundaries(counts, chunks: chunks)
        }
        let partials = PointGradPartials(pointGrad, chunks: chunks)
        let gg = planeGrad.dataPointer
        Threads.parallelRanges(chunks) { owners in
            for t in owners {
                planeBackwardPass(sp, pp, gy, dims, combine, points: 0..<n, rows: bounds[t]..<bounds[t + 1],
                                  planeGrad: gg, pointGrad: partials.pointer(t))
            }
        }
        partials.reduce()
        return (planeGrad, pointGrad)
    }

    /// One share of the triplane backward: the points in `points`, writing only the corners whose
    /// plane row (p·H + v) lies in `rows`.
    private static func planeBackwardPass(_ sp: UnsafeMutablePointer<Float>, _ pp: UnsafeMutablePointer<Float>,
                                          _ gy: UnsafeMutablePointer<Float>, _ dims: PlaneDims, _ combine: TriplaneCombination,
                                          points: Range<Int>, rows: Range<Int>,
                                          planeGrad: UnsafeMutablePointer<Float>?, pointGrad: UnsafeMutablePointer<Float>?) {
        let c = dims.c, h = dims.h
        let width = combine == .concat ? 3 * c : c
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 4 * c)
        defer { scratch.deallocate() }
        let feat = scratch, gPlane = scratch + 3 * c
        for i in points {
            var owned = false
            for p in 0..<3 {
                let tv = AxisTap(normalized: pp[3 * i + PlaneTaps.vAxis(p)], size: h)
                if rows.contains(p * h + tv.i0) || rows.contains(p * h + tv.i1) { owned = true }
            }
            if !owned { continue }
            if combine == .product {
                for p in 0..<3 { PlaneTaps(pp + 3 * i, plane: p, dims).interpolate(sp, c, into: feat + p * c) }
            }
            let g = gy + i * width
            for p in 0..<3 {
                let t = PlaneTaps(pp + 3 * i, plane: p, dims)
                let own0 = rows.contains(p * h + t.tv.i0), own1 = rows.contains(p * h + t.tv.i1)
                if !own0 && !own1 { continue }
                let gp: UnsafeMutablePointer<Float>
                switch combine {
                case .sum: gp = g
                case .concat: gp = g + p * c
                case .product:
                    let q = feat + ((p + 1) % 3) * c, r = feat + ((p + 2) % 3) * c
                    for ch in 0..<c { gPlane[ch] = g[ch] * q[ch] * r[ch] }
                    gp = gPlane
                }
                var dots = SIMD4<Float>()
                for k in 0..<4 where (k < 2 ? own0 : own1) {
                    let base = t.offsets[k]
                    if let planeGrad {
                        let wk = t.w[k], dst = planeGrad + base
                        for ch in 0..<c { dst[ch] += wk * gp[ch] }
                    }
                    if pointGrad != nil {
                        let src = sp + base
                        var s: Float = 0
                        for ch in 0..<c { s += gp[ch] * src[ch] }
                        dots[k] = s
                    }
                }
                if let pointGrad {
                    let d = t.pointGradient(dots)
                    pointGrad[3 * i + PlaneTaps.uAxis(p)] += d.u * t.tu.df
                    pointGrad[3 * i + PlaneTaps.vAxis(p)] += d.v * t.tv.df
                }
            }
        }
    }
}

/// The shape of triplanes `[3, H, W, C]`.
struct PlaneDims {
    let h: Int, w: Int, c: Int
    init(_ shape: [Int]) { h = shape[1]; w = shape[2]; c = shape[3] }
}

/// The four corners of the texel cell around one point's projection onto plane `p`: offsets of
/// their feature runs, bilinear weights (corner k has u bit `k & 1`, v bit `k >> 1`) and the taps.
struct PlaneTaps {
    let tu: AxisTap, tv: AxisTap
    let w: SIMD4<Float>
    var offsets = SIMD4<Int>()

    /// The point coordinate that runs along a plane's W axis: x for xy and xz, y for yz.
    @inline(__always) static func uAxis(_ plane: Int) -> Int { plane == 2 ? 1 : 0 }
    /// The point coordinate that runs along a plane's H axis: y for xy, z for xz and yz.
    @inline(__always) static func vAxis(_ plane: Int) -> Int { plane == 0 ? 1 : 2 }

    @inline(__always)
    init(_ p: UnsafePointer<Float>, plane: Int, _ dims: PlaneDims) {
        tu = AxisTap(normalized: p[PlaneTaps.uAxis(plane)], size: dims.w)
        tv = AxisTap(normalized: p[PlaneTaps.vAxis(plane)], size: dims.h)
        let gu = 1 - tu.f, gv = 1 - tv.f
        w = SIMD4(gu * gv, tu.f * gv, gu * tv.f, tu.f * tv.f)
        let base = plane * dims.h * dims.w
        offsets = SIMD4((base + tv.i0 * dims.w + tu.i0) * dims.c, (base + tv.i0 * dims.w + tu.i1) * dims.c,
                        (base + tv.i1 * dims.w + tu.i0) * dims.c, (base + tv.i1 * dims.w + tu.i1) * dims.c)
    }

    /// Writes the interpolated C features into `dst`.
    @inline(__always)
    func interpolate(_ planes: UnsafePointer<Float>, _ c: Int, into dst: UnsafeMutablePointer<Float>) {
        let s0 = planes + offsets[0], s1 = planes + offsets[1], s2 = planes + offsets[2], s3 = planes + offsets[3]
        let w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3]
        for ch in 0..<c { dst[ch] = w0 * s0[ch] + w1 * s1[ch] + w2 * s2[ch] + w3 * s3[ch] }
    }

    /// `Σ_k dots_k ∂w_k/∂(fu, fv)`, where `dots_k = ⟨ḡ, v_k⟩`.
    @inline(__always)
    func pointGradient(_ dots: SIMD4<Float>) -> (u: Float, v: Float) {
        let gu = 1 - tu.f, gv = 1 - tv.f
        let du = (dots[1] - dots[0]) * gv + (dots[3] - dots[2]) * tv.f
        let dv = (dots[2] - dots[0]) * gu + (dots[3] - dots[1]) * tu.f
        return (du, dv)
    }
}
