import Foundation
import DeformTensor

/// PAUL's differentiable closed-form solution of the lower-level (orthographic-n-point) problem
/// (thesis Sec. 2.4.2, Eqs. 2.9-2.10).
///
/// Given the 2D observations `W` and one or more candidate canonical shapes `S_k` (PAUL uses two:
/// `A = f_d∘f_e∘f_d(φ)` and `B = f_d(φ)`), it returns the rotation and depths that the upper
/// level substitutes into its losses. Points are rows here (`W` is `[..., P, 2]`, shapes are
/// `[..., P, 3]`), the transposes of the thesis' `2×P` and `3×P` matrices, and `R` maps canonical
/// to camera coordinates (`s_cam = R s`, so `[W; zᵀ] ≈ R S` in the thesis' notation):
///
/// 1. Eq. 2.9, least squares over unconstrained 2x3 cameras:
///    `R̃* = argmin Σ_k Σ_i m_i |R̃ s_{k,i} - w_i|² = (Σ_k Wᵀ M S_k)(Σ_k S_kᵀ M S_k)⁻¹`
///    (`W(A+B)ᵀ(AAᵀ + BBᵀ)⁻¹` in the thesis' layout, with the visibility mask M).
/// 2. Projection onto SO(3): the rotation nearest to `[R̃*; 0ᵀ]`, i.e. R̃*'s rows replaced by the
///    nearest orthonormal pair (SVD) and the third row their cross product
///    (``SO3/completeFromRows(_:)``). The thesis does not say how the 2x3 matrix is completed;
///    this is the Frobenius-nearest completion, and it never produces a reflection.
/// 3. Eq. 2.10: `z* = (1/K) Σ_k S_k r₃*`, the least-squares depth (`½(Aᵀr_z + Bᵀr_z)` for K = 2),
///    with `r₃*ᵀ` the third row of `R*`.
///
/// Everything is differentiable w.r.t. `W` and the shapes: steps 1 and 3 are fused kernels (in
/// Double) with hand-written VJPs, step 2 is ``Linalg/projectToSO3(_:)``.
///
/// **Missing data** (Sec. 2.4.3, Eqs. 2.13-2.15): pass the visibility mask together with the
/// visible-centred `W̃` (``ObjectCentric/centered(_:mask:)``) and the adaptively normalised
/// shapes `S̃_k` (``ObjectCentric/normalizedRows(_:mask:)``). Steps 1-3 then use visible points
/// only in Eq. 2.9, and ``Solution/cameraShape`` is the least-squares `S̃_cam` of Eq. 2.14 for
/// the losses of Eq. 2.15: visible points `[w̃_i, z*_i]`, invisible points (whose x and y are
/// unknown too) `R* (1/K) Σ_k s̃_{k,i}`, the minimiser of `Σ_k |s̃_{k,i} - R*ᵀ s_cam,i|²`.
public enum PAULSolver {
    public struct Solution {
        /// `R*`, `[..., 3, 3]`.
        public var rotation: Tensor
        /// `z*`, `[..., P]`.
        public var depth: Tensor
        /// The camera-frame shape `[W; z*ᵀ]` (Eq. 2.7) or, with a mask, `S̃_cam` (Eq. 2.14), as
        /// rows `[..., P, 3]`; `R*ᵀ` maps it back to the canonical frame.
        public var cameraShape: Tensor
        /// The unconstrained least-squares camera `R̃*` of Eq. 2.9, `[..., 2, 3]`.
        public var leastSquaresCamera: Tensor
    }

    /// Solves Eqs. 2.9-2.10 for every sample.
    /// - Parameters:
    ///   - points2D: `W`, `[..., P, 2]` (centred; under missing data, visible-centred).
    ///   - shapes: one or more canonical shapes `[..., P, 3]` (PAUL: `[A, B]`; one shape gives the
    ///     auto-decoder variant).
    ///   - mask: `[..., P]` or `nil`.
    ///   - ridge: relative Tikhonov term added to `Σ S_kᵀ M S_k` (`ridge · tr/3 · I`) so planar or
    ///     collapsed shapes never make the solve singular; the default changes a well-conditioned
    ///     solution by about one part in 10⁶.
    /// - Throws: ``TensorError`` for mismatched shapes, non-finite shapes, or non-finite visible
    ///   2D points (coordinates of invisible points are never read).
    public static func solve(points2D: Tensor, shapes: [Tensor], mask: Tensor? = nil, ridge: Float = 1e-6) throws -> Solution {
        let op = "PAULSolver.solve"
        guard let first = shapes.first else {
            throw TensorError.invalidArgument(op: op, message: "needs at least one shape, got an empty list")
        }
        let batch = try checkedBatchShape(first, trailing: [-1, 3], op: op, name: "shapes[0]")
        let points = first.shape[first.rank - 2]
        for (k, s) in shapes.enumerated() { try checkShape(s, first.shape, op: op, name: "shapes[\(k)]") }
        try checkShape(points2D, batch + [points, 2], op: op, name: "points2D")
        if points == 0 { throw TensorError.invalidArgument(op: op, message: "needs at least one point, got shapes of shape \(first.shape)") }
        if let mask { try checkShape(mask, batch + [points], op: op, name: "mask") }
        for s in shapes { try checkFinite(s, op: op) }
        let maskData = mask.map { $0.scalars }
        let camera = try leastSquaresCamera(points2D, shapes, maskData, ridge: Double(ridge))  // Eq. 2.9
        let rotation = try SO3.completeFromRows(camera)                                     // SO(3) projection
        let (cameraShape, depth) = cameraFrame(points2D, shapes, rotation, maskData)        // Eqs. 2.10, 2.14
        return Solution(rotation: rotation, depth: depth, cameraShape: cameraShape, leastSquaresCamera: camera)
    }

    /// Eq. 2.9 fused into one kernel per sample (in Double): `C = Σ_k Σ_i m_i w_i s_{k,i}ᵀ`,
    /// `N = Σ_k Σ_i m_i s_{k,i} s_{k,i}ᵀ + λ I` with `λ = ridge · tr/3 + 10⁻¹²`, `X = C N⁻¹`.
    /// VJP: `C̄ = X̄ N⁻ᵀ`, `N̄ = -Xᵀ C̄` (plus the ridge's `(ridge/3) tr(N̄) I`), then
    /// `w̄_i = m_i C̄ Σ_k s_{k,i}` and `s̄_{k,i} = m_i (C̄ᵀ w_i + (N̄ + N̄ᵀ) s_{k,i})`.
    static func leastSquaresCamera(_ w: Tensor, _ shapes: [Tensor], _ mask: [Float]?, ridge: Double) throws -> Tensor {
        let k = shapes.count, p = w.shape[w.rank - 2], batch = w.count / (2 * p)
        func visible(_ b: Int, _ i: Int) -> Bool { mask.map { $0[b * p + i] != 0 } ?? true }
        /// Per sample: C's rows, and N with the ridge.
        func normalEquations(_ pw: UnsafePointer<Float>, _ ps: [UnsafePointer<Float>], _ b: Int) -> (V3, V3, M3) {
            var c0 = V3.zero, c1 = V3.zero, n = M3(r0: .zero, r1: .zero, r2: .zero)
            for i in 0..<p where visible(b, i) {
                var sum = V3.zero
                for q in ps {
                    let o = q + 3 * (b * p + i)
                    let x = V3(Double(o[0]), Double(o[1]), Double(o[2]))
                    sum += x
                    n = n + M3.outer(x, x)
                }
                c0 += Double(pw[2 * (b * p + i)]) * sum
                c1 += Double(pw[2 * (b * p + i) + 1]) * sum
            }
            let lambda = ridge * n.trace / 3 + 1e-12
            n.r0.x += lambda; n.r1.y += lambda; n.r2.z += lambda
            return (c0, c1, n)
        }
        return try customOp("PAULSolver.leastSquaresCamera", inputs: [w] + shapes, forward: { xs in
            let x = Tensor(uninitializedShape: Array(w.shape.dropLast(2)) + [2, 3])
            let pw = xs[0].dataPointer, ps = xs.dropFirst().map { UnsafePointer($0.dataPointer) }, px = x.dataPointer
            var finite = [Bool](repeating: true, count: batch)
            finite.withUnsafeMutableBufferPointer { ok in
                Threads.parallelRanges(batch, minChunk: 64) { range in
                    for b in range {
                        let (c0, c1, n) = normalEquations(pw, ps, b)
                        let invT = n.inverse.transposed
                        let r0 = invT * c0, r1 = invT * c1
                        ok[b] = dot(r0, r0).isFinite && dot(r1, r1).isFinite
                        for (j, v) in [r0.x, r0.y, r0.z, r1.x, r1.y, r1.z].enumerated() { px[6 * b + j] = Float(v) }
                    }
                }
            }
            if let b = finite.firstIndex(of: false) {
                throw TensorError.nonFinite(op: "PAULSolver.solve", message: "sample \(b): non-finite visible 2D points or shapes")
            }
            return [x]
        }, backward: { xs, outs, g in
            let pw = xs[0].dataPointer, ps = xs.dropFirst().map { UnsafePointer($0.dataPointer) }
            let px = outs[0].dataPointer, pg = g[0].dataPointer
            let gw = Tensor(shape: w.shape, repeating: 0)
            let gs = (0..<k).map { _ in Tensor(shape: shapes[0].shape, repeating: 0) }
            let pgw = gw.dataPointer, pgs = gs.map { $0.dataPointer }
            Threads.parallelRanges(batch, minChunk: 64) { range in
                for b in range {
                    let n = normalEquations(pw, ps, b).2
                    let inv = n.inverse
                    let x0 = V3(Double(px[6 * b]), Double(px[6 * b + 1]), Double(px[6 * b + 2]))
                    let x1 = V3(Double(px[6 * b + 3]), Double(px[6 * b + 4]), Double(px[6 * b + 5]))
                    let g0 = V3(Double(pg[6 * b]), Double(pg[6 * b + 1]), Double(pg[6 * b + 2]))
                    let g1 = V3(Double(pg[6 * b + 3]), Double(pg[6 * b + 4]), Double(pg[6 * b + 5]))
                    let cb0 = inv * g0, cb1 = inv * g1                                  // rows of X̄ N⁻ᵀ
                    var nb = -1.0 * (M3.outer(x0, cb0) + M3.outer(x1, cb1))               // -Xᵀ C̄
                    let t = ridge / 3 * nb.trace
                    nb.r0.x += t; nb.r1.y += t; nb.r2.z += t
                    let nsym = nb + nb.transposed
                    for i in 0..<p where visible(b, i) {
                        let wx = Double(pw[2 * (b * p + i)]), wy = Double(pw[2 * (b * p + i) + 1])
                        var sum = V3.zero
                        for (q, out) in zip(ps, pgs) {
                            let o = q + 3 * (b * p + i)
                            let x = V3(Double(o[0]), Double(o[1]), Double(o[2]))
                            sum += x
                            let gx = wx * cb0 + wy * cb1 + nsym * x
                            let d = out + 3 * (b * p + i)
                            d[0] = Float(gx.x); d[1] = Float(gx.y); d[2] = Float(gx.z)
                        }
                        pgw[2 * (b * p + i)] = Float(dot(cb0, sum))
                        pgw[2 * (b * p + i) + 1] = Float(dot(cb1, sum))
                    }
                }
            }
            return [gw] + gs
        })[0]
    }

    /// Eqs. 2.10 and 2.14 fused: with `s̄_i = (1/K) Σ_k s_{k,i}`, visible points become
    /// `(w_i, r₃·s̄_i)` and invisible ones `R s̄_i`; the depth output is `r₃·s̄_i` for all points.
    static func cameraFrame(_ w: Tensor, _ shapes: [Tensor], _ rotation: Tensor, _ mask: [Float]?) -> (Tensor, Tensor) {
        let k = shapes.count, p = w.shape[w.rank - 2], batch = w.count / (2 * p)
        let scale = 1 / Double(k)
        func visible(_ b: Int, _ i: Int) -> Bool { mask.map { $0[b * p + i] != 0 } ?? true }
        func meanPoint(_ ps: [UnsafePointer<Float>], _ b: Int, _ i: Int) -> V3 {
            var sum = V3.zero
            for q in ps { let o = q + 3 * (b * p + i); sum += V3(Double(o[0]), Double(o[1]), Double(o[2])) }
            return scale * sum
        }
        let outs = customOp("PAULSolver.cameraFrame", inputs: [w, rotation] + shapes, forward: { xs in
            let cam = Tensor(uninitializedShape: Array(w.shape.dropLast()) + [3])
            let depth = Tensor(uninitializedShape: Array(w.shape.dropLast()))
            let pw = xs[0].dataPointer, pr = xs[1].dataPointer, ps = xs.dropFirst(2).map { UnsafePointer($0.dataPointer) }
            let pc = cam.dataPointer, pd = depth.dataPointer
            Threads.parallelRanges(batch, minChunk: 64) { range in
                for b in range {
                    let r = M3(pr + 9 * b)
                    for i in 0..<p {
                        let y = r * meanPoint(ps, b, i)
                        let o = pc + 3 * (b * p + i)
                        if visible(b, i) {
                            o[0] = pw[2 * (b * p + i)]; o[1] = pw[2 * (b * p + i) + 1]
                        } else {
                            o[0] = Float(y.x); o[1] = Float(y.y)
                        }
                        o[2] = Float(y.z)
                        pd[b * p + i] = Float(y.z)
                    }
                }
            }
            return [cam, depth]
        }, backward: { xs, _, g in
            let pr = xs[1].dataPointer, ps = xs.dropFirst(2).map { UnsafePointer($0.dataPointer) }
            let pgc = g[0].dataPointer, pgd = g[1].dataPointer
            let gw = Tensor(shape: w.shape, repeating: 0), gr = Tensor(uninitializedShape: rotation.shape)
            let gs = Tensor(uninitializedShape: shapes[0].shape)
            let pgw = gw.dataPointer, pgr = gr.dataPointer, pgs = gs.dataPointer
            Threads.parallelRanges(batch, minChunk: 64) { range in
                for b in range {
                    let r = M3(pr + 9 * b)
                    var rb = M3(r0: .zero, r1: .zero, r2: .zero)
                    for i in 0..<p {
                        let sbar = meanPoint(ps, b, i)
                        let gc = pgc + 3 * (b * p + i)
                        let gd = Double(pgd[b * p + i])
                        var gy = V3(0, 0, Double(gc[2]) + gd)                 // cotangent of y = R s̄
                        if visible(b, i) {
                            pgw[2 * (b * p + i)] = gc[0]; pgw[2 * (b * p + i) + 1] = gc[1]
                        } else {
                            gy.x = Double(gc[0]); gy.y = Double(gc[1])
                        }
                        rb = rb + M3.outer(gy, sbar)
                        let gsb = scale * (r.transposed * gy)
                        let o = pgs + 3 * (b * p + i)
                        o[0] = Float(gsb.x); o[1] = Float(gsb.y); o[2] = Float(gsb.z)
                    }
                    rb.store(pgr + 9 * b)
                }
            }
            return [gw, gr] + [Tensor](repeating: gs, count: k)
        })
        return (outs[0], outs[1])
    }
}
