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
/// Everything is differentiable w.r.t. `W` and the shapes (the 3x3 solve has a hand-written VJP,
/// the projection is ``Linalg/projectToSO3(_:)``).
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
    /// - Throws: ``TensorError`` for mismatched shapes or non-finite values.
    public static func solve(points2D: Tensor, shapes: [Tensor], mask: Tensor? = nil, ridge: Float = 1e-6) throws -> Solution {
        let op = "PAULSolver.solve"
        guard let first = shapes.first else {
            throw TensorError.invalidArgument(op: op, message: "needs at least one shape, got an empty list")
        }
        let batch = try checkedBatchShape(first, trailing: [-1, 3], op: op, name: "shapes[0]")
        let points = first.shape[first.rank - 2]
        for (k, s) in shapes.enumerated() { try checkShape(s, first.shape, op: op, name: "shapes[\(k)]") }
        try checkShape(points2D, batch + [points, 2], op: op, name: "points2D")
        var w = points2D
        var m: Tensor? = nil
        if let mask {
            try checkShape(mask, batch + [points], op: op, name: "mask")
            m = mask.unsqueezed(-1)
            w = ObjectCentric.visibleRows(points2D, m!)
        }
        try checkFinite(w, op: op)
        for s in shapes { try checkFinite(s, op: op) }

        let wm = m.map { w * $0 } ?? w
        let sumShapes = shapes.dropFirst().reduce(first, +)
        let c = wm.transposed().matmul(sumShapes)                                    // Σ_k Wᵀ M S_k
        var n = shapes.map { s in s.transposed().matmul(m.map { s * $0 } ?? s) }.reduce(Tensor.zeros(batch + [3, 3]), +)
        let eye = Tensor.eye(3)
        n = n + eye * ((n * eye).sum(axes: [-2, -1], keepDims: true) * (ridge / 3) + 1e-12)
        let camera = solveRight3(c, n)                                               // Eq. 2.9
        let rotation = try SO3.completeFromRows(camera)                              // SO(3) projection
        let meanShape = sumShapes * (1 / Float(shapes.count))
        let inCamera = meanShape.matmul(rotation.transposed())                       // R* s̄_i
        let depth = inCamera.narrow(axis: -1, start: 2, length: 1)                   // Eq. 2.10
        var cameraShape = Tensor.concat([w, depth], axis: -1)
        if let m { cameraShape = Tensor.where(m, cameraShape, inCamera) }
        return Solution(rotation: rotation, depth: depth.squeezed([-1]), cameraShape: cameraShape, leastSquaresCamera: camera)
    }

    /// `X = C N⁻¹` for `C` `[..., r, 3]` and invertible `N` `[..., 3, 3]` (same batch shape), in
    /// Double by the adjugate. VJP: `C̄ = X̄ N⁻ᵀ`, `N̄ = -Xᵀ C̄`.
    static func solveRight3(_ c: Tensor, _ n: Tensor) -> Tensor {
        let rows = c.shape[c.rank - 2], batch = n.count / 9
        func run(_ c: Tensor, _ n: Tensor, transposeInverse: Bool) -> Tensor {
            let x = Tensor(uninitializedShape: c.shape)
            let pc = c.dataPointer, pn = n.dataPointer, px = x.dataPointer
            Threads.parallelRanges(batch, minChunk: 1024) { range in
                for b in range {
                    var inv = M3(pn + 9 * b).inverse
                    if transposeInverse { inv = inv.transposed }
                    let invT = inv.transposed
                    for i in 0..<rows {
                        let p = pc + (b * rows + i) * 3
                        let row = invT * V3(Double(p[0]), Double(p[1]), Double(p[2]))     // rowᵀ inv
                        let o = px + (b * rows + i) * 3
                        o[0] = Float(row.x); o[1] = Float(row.y); o[2] = Float(row.z)
                    }
                }
            }
            return x
        }
        return customOp("PAULSolver.solveRight3", inputs: [c, n], forward: { xs in
            [run(xs[0], xs[1], transposeInverse: false)]
        }, backward: { xs, outs, g in
            let gc = run(g[0], xs[1], transposeInverse: true)
            let gn = -(outs[0].transposed().matmul(gc))
            return [gc, gn]
        })[0]
    }
}
