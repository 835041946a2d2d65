import Foundation

// Batched 3x3 SVD without LAPACK. Geometry code (Procrustes, rotation averaging, PAUL's camera
// projection) decomposes one tiny matrix per frame or per point, where a LAPACK call per matrix
// costs far more in setup than the arithmetic. This file holds a direct method: one-sided
// (Hestenes) Jacobi on the columns of A in Double, which keeps the relative accuracy of small
// singular values that forming AᵀA would square away, followed by a Gram-Schmidt/cross-product
// construction of U that stays orthonormal for rank-deficient and reflected inputs.

typealias Vec3d = SIMD3<Double>

@inline(__always) func dot3(_ a: Vec3d, _ b: Vec3d) -> Double { a.x * b.x + a.y * b.y + a.z * b.z }

@inline(__always) func cross3(_ a: Vec3d, _ b: Vec3d) -> Vec3d {
    Vec3d(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
}

/// `a = U diag(s) Vᵀ` of one 3x3 matrix; U and V as columns, `s` descending and non-negative.
struct SVD3 {
    var u0: Vec3d, u1: Vec3d, u2: Vec3d
    var s: Vec3d
    var v0: Vec3d, v1: Vec3d, v2: Vec3d
}

/// One Jacobi rotation making columns `p` and `q` orthogonal. Returns false when they already are
/// (to a relative 1e-14, far below Float32 resolution), which is how sweeps detect convergence.
@inline(__always)
private func orthogonalize(_ cp: inout Vec3d, _ cq: inout Vec3d, _ vp: inout Vec3d, _ vq: inout Vec3d) -> Bool {
    let alpha = dot3(cp, cp), beta = dot3(cq, cq), gamma = dot3(cp, cq)
    if gamma * gamma <= 1e-28 * alpha * beta { return false }
    let zeta = (beta - alpha) / (2 * gamma)
    // Smaller root of t² + 2ζt - 1 = 0: rotation angle at most π/4, the stable choice.
    let t = (zeta >= 0 ? 1.0 : -1.0) / (Swift.abs(zeta) + (1 + zeta * zeta).squareRoot())
    let c = 1 / (1 + t * t).squareRoot(), s = c * t
    let np = c * cp - s * cq, nq = s * cp + c * cq
    cp = np; cq = nq
    let wp = c * vp - s * vq, wq = s * vp + c * vq
    vp = wp; vq = wq
    return true
}

/// A unit vector orthogonal to unit `u`: the coordinate axis least aligned with `u`, projected.
@inline(__always) private func anyPerpendicular(_ u: Vec3d) -> Vec3d {
    let ax = Swift.abs(u.x), ay = Swift.abs(u.y), az = Swift.abs(u.z)
    let e: Vec3d = ax <= ay && ax <= az ? Vec3d(1, 0, 0) : (ay <= az ? Vec3d(0, 1, 0) : Vec3d(0, 0, 1))
    let r = e - dot3(u, e) * u
    return r / dot3(r, r).squareRoot()
}

/// SVD of the row-major 3x3 matrix at `p`.
@inline(__always)
func svd3Kernel(_ p: UnsafePointer<Float>) -> SVD3 {
    // Columns of A.
    var c0 = Vec3d(Double(p[0]), Double(p[3]), Double(p[6]))
    var c1 = Vec3d(Double(p[1]), Double(p[4]), Double(p[7]))
    var c2 = Vec3d(Double(p[2]), Double(p[5]), Double(p[8]))
    var v0 = Vec3d(1, 0, 0), v1 = Vec3d(0, 1, 0), v2 = Vec3d(0, 0, 1)
    // Cyclic sweeps converge quadratically; 4-6 are typical, the cap only guards pathological input.
    for _ in 0..<20 {
        let r01 = orthogonalize(&c0, &c1, &v0, &v1)
        let r02 = orthogonalize(&c0, &c2, &v0, &v2)
        let r12 = orthogonalize(&c1, &c2, &v1, &v2)
        if !(r01 || r02 || r12) { break }
    }
    // Columns are now A V = U diag(σ); sort by norm, descending.
    var n0 = dot3(c0, c0), n1 = dot3(c1, c1), n2 = dot3(c2, c2)
    if n0 < n1 { swap(&n0, &n1); swap(&c0, &c1); swap(&v0, &v1) }
    if n0 < n2 { swap(&n0, &n2); swap(&c0, &c2); swap(&v0, &v2) }
    if n1 < n2 { swap(&n1, &n2); swap(&c1, &c2); swap(&v1, &v2) }
    let s0 = n0.squareRoot(), s1 = n1.squareRoot(), s2 = n2.squareRoot()

    let u0 = s0 > 0 ? c0 / s0 : Vec3d(1, 0, 0)
    // Re-orthogonalise against u0; when the residual is at rounding level (rank 1) any unit
    // vector orthogonal to u0 reproduces A to within that level.
    let r = c1 - dot3(u0, c1) * u0
    let rn = dot3(r, r).squareRoot()
    let u1 = rn > 1e-13 * s0 && rn > 0 ? r / rn : anyPerpendicular(u0)
    // The third column is fixed by the first two; its sign follows A V, so a reflected input
    // gives det(U) = -det(V) instead of a negative singular value.
    var u2 = cross3(u0, u1)
    if dot3(u2, c2) < 0 { u2 = -u2 }
    return SVD3(u0: u0, u1: u1, u2: u2, s: Vec3d(s0, s1, s2), v0: v0, v1: v1, v2: v2)
}

@inline(__always) private func store(_ c0: Vec3d, _ c1: Vec3d, _ c2: Vec3d, to p: UnsafeMutablePointer<Float>) {
    p[0] = Float(c0.x); p[1] = Float(c1.x); p[2] = Float(c2.x)
    p[3] = Float(c0.y); p[4] = Float(c1.y); p[5] = Float(c2.y)
    p[6] = Float(c0.z); p[7] = Float(c1.z); p[8] = Float(c2.z)
}

typealias Mat3d = InlineArray<9, Double>

@inline(__always) private func load3x3(_ p: UnsafePointer<Float>) -> Mat3d {
    var m = Mat3d(repeating: 0)
    for i in 0..<9 { m[i] = Double(p[i]) }
    return m
}

/// Treats differences of squared singular values (or sums, for the polar factor) below Float32
/// resolution of the largest one as ties; keeps gradients finite at exactly repeated values.
@inline(__always) func gapFloor(_ scale: Double) -> Double { Double(Float.ulpOfOne) * scale + 1e-30 }

extension Linalg {
    static func check3x3(_ a: Tensor, op: String) throws {
        guard a.rank >= 2, a.shape[a.rank - 1] == 3, a.shape[a.rank - 2] == 3 else {
            throw TensorError.shapeMismatch(op: op, expected: "a tensor of shape [..., 3, 3]", found: "\(a.shape)")
        }
        try checkFinite(a, op: op)
    }

    /// Singular value decomposition of a batch of 3x3 matrices, `a = u diag(s) vᵀ`.
    ///
    /// - Parameter a: `[..., 3, 3]`.
    /// - Returns: `u` and `v` of shape `[..., 3, 3]` (orthogonal, singular vectors as columns) and
    ///   `s` of shape `[..., 3]`, non-negative and descending. `v` is V, not Vᵀ (like `torch.svd`).
    ///   A reflected input (det < 0) gives `det(u) det(v) = -1`, never a negative singular value.
    ///
    /// Computed without LAPACK (one-sided Jacobi in Double, ~100-200 ns per matrix per core), for
    /// the many-tiny-matrices workloads of geometry code. Differentiable w.r.t. `a` through all
    /// three outputs; the usual `1 / (s_j² - s_i²)` terms are clamped where singular values tie to
    /// Float32 precision, so the gradient stays finite (but is meaningless for u and v there — use
    /// gauge-invariant quantities such as ``projectToSO3(_:)``).
    /// - Throws: ``TensorError`` for a wrong shape or NaN/Inf input.
    public static func svd3x3(_ a: Tensor) throws -> (u: Tensor, s: Tensor, v: Tensor) {
        try check3x3(a, op: "svd3x3")
        let batch = a.count / 9
        let u = Tensor(uninitializedShape: a.shape), v = Tensor(uninitializedShape: a.shape)
        let s = Tensor(uninitializedShape: Array(a.shape.dropLast()))
        let pa = a.dataPointer, pu = u.dataPointer, ps = s.dataPointer, pv = v.dataPointer
        Threads.parallelRanges(batch, minChunk: 1024) { r in
            for i in r {
                let d = svd3Kernel(pa + 9 * i)
                store(d.u0, d.u1, d.u2, to: pu + 9 * i)
                store(d.v0, d.v1, d.v2, to: pv + 9 * i)
                ps[3 * i] = Float(d.s.x); ps[3 * i + 1] = Float(d.s.y); ps[3 * i + 2] = Float(d.s.z)
            }
        }
        let outs = Tensor.recordMulti("svd3x3", outputs: [u, s, v], inputs: [a]) { cots in
            [svd3x3Backward(u: u, s: s, v: v, gu: cots[0], gs: cots[1], gv: cots[2])]
        }
        return (outs[0], outs[1], outs[2])
    }

    /// `ā = U [F∘(UᵀŪ - ŪᵀU) S + diag(s̄) + S F∘(VᵀV̄ - V̄ᵀV)] Vᵀ` with `F_ij = 1/(s_j² - s_i²)`
    /// (the square case of Townsend 2016, "Differentiating the singular value decomposition").
    static func svd3x3Backward(u: Tensor, s: Tensor, v: Tensor, gu: Tensor?, gs: Tensor?, gv: Tensor?) -> Tensor {
        let batch = s.count / 3
        let ga = Tensor(uninitializedShape: u.shape)
        let pu = u.dataPointer, ps = s.dataPointer, pv = v.dataPointer, po = ga.dataPointer
        let pgu = gu?.dataPointer, pgs = gs?.dataPointer, pgv = gv?.dataPointer
        Threads.parallelRanges(batch, minChunk: 1024) { r in
            for b in r {
                let U = load3x3(pu + 9 * b), V = load3x3(pv + 9 * b)
                let sv = Vec3d(Double(ps[3 * b]), Double(ps[3 * b + 1]), Double(ps[3 * b + 2]))
                // J = UᵀŪ, K = VᵀV̄ (row-major 3x3).
                var J = Mat3d(repeating: 0), K = Mat3d(repeating: 0)
                if let pgu {
                    for i in 0..<3 { for j in 0..<3 {
                        var t = 0.0
                        for k in 0..<3 { t += U[3 * k + i] * Double(pgu[9 * b + 3 * k + j]) }
                        J[3 * i + j] = t
                    } }
                }
                if let pgv {
                    for i in 0..<3 { for j in 0..<3 {
                        var t = 0.0
                        for k in 0..<3 { t += V[3 * k + i] * Double(pgv[9 * b + 3 * k + j]) }
                        K[3 * i + j] = t
                    } }
                }
                let floor = gapFloor(sv[0] * sv[0])
                var M = Mat3d(repeating: 0)
                for i in 0..<3 {
                    M[4 * i] = pgs.map { Double($0[3 * b + i]) } ?? 0
                    for j in 0..<3 where j != i {
                        let d = sv[j] * sv[j] - sv[i] * sv[i]
                        // s is descending, so the sign of the gap is known even when it vanishes.
                        let f = 1 / (j > i ? Swift.min(d, -floor) : Swift.max(d, floor))
                        M[3 * i + j] = f * ((J[3 * i + j] - J[3 * j + i]) * sv[j] + sv[i] * (K[3 * i + j] - K[3 * j + i]))
                    }
                }
                // ā = U M Vᵀ.
                var UM = Mat3d(repeating: 0)
                for i in 0..<3 { for j in 0..<3 { for k in 0..<3 { UM[3 * i + j] += U[3 * i + k] * M[3 * k + j] } } }
                for i in 0..<3 { for j in 0..<3 {
                    var t = 0.0
                    for k in 0..<3 { t += UM[3 * i + k] * V[3 * j + k] }
                    po[9 * b + 3 * i + j] = Float(t)
                } }
            }
        }
        return ga
    }

    /// The rotation nearest to each 3x3 matrix in Frobenius norm (orthogonal Procrustes):
    /// `R = U diag(1, 1, det(U Vᵀ)) Vᵀ` from ``svd3x3(_:)``, so a reflected input still yields
    /// `det R = +1`.
    ///
    /// Differentiable w.r.t. `m` with the polar-factor derivative, whose only denominators are
    /// sums `s̃_i + s̃_j` of (sign-corrected) singular values: the gradient is exact and finite when
    /// singular values repeat (e.g. `m` near a rotation), and only clamped where the nearest
    /// rotation itself is not unique (`s̃_2 + s̃_3 = 0`).
    /// - Parameter m: `[..., 3, 3]`.
    /// - Throws: ``TensorError`` for a wrong shape or NaN/Inf input.
    public static func projectToSO3(_ m: Tensor) throws -> Tensor {
        try check3x3(m, op: "projectToSO3")
        let batch = m.count / 9
        let tracked = GradMode.isEnabled && m.isTracked
        let r = Tensor(uninitializedShape: m.shape)
        // Saved for the backward only: U with its last column times d, signed s, and V.
        let ut = Tensor(uninitializedShape: tracked ? m.shape : [0])
        let st = Tensor(uninitializedShape: tracked ? Array(m.shape.dropLast()) : [0])
        let vt = Tensor(uninitializedShape: tracked ? m.shape : [0])
        let pm = m.dataPointer, pr = r.dataPointer, pu = ut.dataPointer, ps = st.dataPointer, pv = vt.dataPointer
        Threads.parallelRanges(batch, minChunk: 1024) { rg in
            for i in rg {
                let d = svd3Kernel(pm + 9 * i)
                let sign: Double = dot3(d.u2, cross3(d.u0, d.u1)) * dot3(d.v2, cross3(d.v0, d.v1)) < 0 ? -1 : 1
                let u2 = sign * d.u2
                // R = Σ_k ũ_k v_kᵀ.
                let o = pr + 9 * i
                for row in 0..<3 { for col in 0..<3 {
                    o[3 * row + col] = Float(d.u0[row] * d.v0[col] + d.u1[row] * d.v1[col] + u2[row] * d.v2[col])
                } }
                if tracked {
                    store(d.u0, d.u1, u2, to: pu + 9 * i)
                    store(d.v0, d.v1, d.v2, to: pv + 9 * i)
                    ps[3 * i] = Float(d.s.x); ps[3 * i + 1] = Float(d.s.y); ps[3 * i + 2] = Float(sign * d.s.z)
                }
            }
        }
        guard tracked else { return r }
        return Tensor.record("projectToSO3", output: r, inputs: [m]) { g in
            [projectToSO3Backward(u: ut, s: st, v: vt, g: g)]
        }
    }

    /// With `m = Ũ S̃ Vᵀ` and `R = Ũ Vᵀ`: `dR = Ũ X Vᵀ`, `X_ij = (P - Pᵀ)_ij / (s̃_i + s̃_j)`,
    /// `P = Ũᵀ dm V`; transposed, `m̄ = Ũ [K∘(G - Gᵀ)] Vᵀ` with `G = Ũᵀ R̄ V`, `K_ij = 1/(s̃_i + s̃_j)`.
    static func projectToSO3Backward(u: Tensor, s: Tensor, v: Tensor, g: Tensor) -> Tensor {
        let batch = s.count / 3
        let gm = Tensor(uninitializedShape: u.shape)
        let pu = u.dataPointer, ps = s.dataPointer, pv = v.dataPointer, pg = g.dataPointer, po = gm.dataPointer
        Threads.parallelRanges(batch, minChunk: 1024) { r in
            for b in r {
                let U = load3x3(pu + 9 * b), V = load3x3(pv + 9 * b), Rb = load3x3(pg + 9 * b)
                let sv = Vec3d(Double(ps[3 * b]), Double(ps[3 * b + 1]), Double(ps[3 * b + 2]))
                // G = Uᵀ R̄ V.
                var UR = Mat3d(repeating: 0)
                for i in 0..<3 { for j in 0..<3 { for k in 0..<3 { UR[3 * i + j] += U[3 * k + i] * Rb[3 * k + j] } } }
                var G = Mat3d(repeating: 0)
                for i in 0..<3 { for j in 0..<3 { for k in 0..<3 { G[3 * i + j] += UR[3 * i + k] * V[3 * k + j] } } }
                let floor = gapFloor(Swift.abs(sv[0]))
                var X = Mat3d(repeating: 0)
                for i in 0..<3 { for j in 0..<3 where j != i {
                    X[3 * i + j] = (G[3 * i + j] - G[3 * j + i]) / Swift.max(sv[i] + sv[j], floor)
                } }
                var UX = Mat3d(repeating: 0)
                for i in 0..<3 { for j in 0..<3 { for k in 0..<3 { UX[3 * i + j] += U[3 * i + k] * X[3 * k + j] } } }
                for i in 0..<3 { for j in 0..<3 {
                    var t = 0.0
                    for k in 0..<3 { t += UX[3 * i + k] * V[3 * j + k] }
                    po[9 * b + 3 * i + j] = Float(t)
                } }
            }
        }
        return gm
    }
}
