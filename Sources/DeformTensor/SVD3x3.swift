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

/// A unit vector orthogonal to unit `u`: the coordinate axis least aligned with `u`, projected.
@inline(__always) private func anyPerpendicular(_ u: Vec3d) -> Vec3d {
    let ax = Swift.abs(u.x), ay = Swift.abs(u.y), az = Swift.abs(u.z)
    let e: Vec3d = ax <= ay && ax <= az ? Vec3d(1, 0, 0) : (ay <= az ? Vec3d(0, 1, 0) : Vec3d(0, 0, 1))
    let r = e - dot3(u, e) * u
    return r / dot3(r, r).squareRoot()
}

/// Four matrices at once, one per SIMD lane, in struct-of-arrays form.
///
/// The scalar sweep is a chain of dependent square roots and divisions (about 1000 cycles per
/// matrix, mostly waiting on latency); four independent lanes fill that latency. Converged lanes
/// keep receiving exact identity rotations until every lane has converged.
private struct Lanes3 {
    var x: SIMD4<Double>, y: SIMD4<Double>, z: SIMD4<Double>
    @inline(__always) func dot(_ o: Lanes3) -> SIMD4<Double> { x * o.x + y * o.y + z * o.z }
    @inline(__always) func lane(_ i: Int) -> Vec3d { Vec3d(x[i], y[i], z[i]) }
    @inline(__always) static func rotate(_ p: inout Lanes3, _ q: inout Lanes3, c: SIMD4<Double>, s: SIMD4<Double>) {
        let px = c * p.x - s * q.x, py = c * p.y - s * q.y, pz = c * p.z - s * q.z
        q.x = s * p.x + c * q.x; q.y = s * p.y + c * q.y; q.z = s * p.z + c * q.z
        p.x = px; p.y = py; p.z = pz
    }
}

@inline(__always)
private func orthogonalize4(_ cp: inout Lanes3, _ cq: inout Lanes3, _ vp: inout Lanes3, _ vq: inout Lanes3) -> Bool {
    let alpha = cp.dot(cp), beta = cq.dot(cq), gamma = cp.dot(cq)
    let done = gamma * gamma .<= 1e-28 * alpha * beta
    if all(done) { return false }
    // One Jacobi rotation per lane making columns p and q orthogonal; a pair counts as done when
    // orthogonal to a relative 1e-14, far below Float32 resolution. The smaller root of
    // t² + 2ζt - 1 = 0 keeps the angle at most π/4, the stable choice.
    let zeta = (beta - alpha) / (2 * gamma)
    let one = SIMD4<Double>(repeating: 1)
    let sign = one.replacing(with: -1, where: zeta .< 0)
    let t = sign / (sign * zeta + (one + zeta * zeta).squareRoot())
    // Lanes that are done (including those where zeta is 0/0) get the identity rotation.
    let c = (one / (one + t * t).squareRoot()).replacing(with: 1, where: done)
    let s = (c * t).replacing(with: 0, where: done)
    Lanes3.rotate(&cp, &cq, c: c, s: s)
    Lanes3.rotate(&vp, &vq, c: c, s: s)
    return true
}

/// SVDs of `count` (1...4) consecutive row-major 3x3 matrices at `p`.
@inline(__always)
func svd3Kernel4(_ p: UnsafePointer<Float>, count: Int, _ out: (Int, SVD3) -> Void) {
    func column(_ j: Int) -> Lanes3 {
        var l = Lanes3(x: .zero, y: .zero, z: .zero)
        for i in 0..<count {
            l.x[i] = Double(p[9 * i + j]); l.y[i] = Double(p[9 * i + 3 + j]); l.z[i] = Double(p[9 * i + 6 + j])
        }
        return l
    }
    var c0 = column(0), c1 = column(1), c2 = column(2)
    let zero = SIMD4<Double>.zero, one = SIMD4<Double>(repeating: 1)
    var v0 = Lanes3(x: one, y: zero, z: zero), v1 = Lanes3(x: zero, y: one, z: zero), v2 = Lanes3(x: zero, y: zero, z: one)
    // Cyclic sweeps converge quadratically; 4-6 are typical, the cap only guards pathological input.
    for _ in 0..<20 {
        let r01 = orthogonalize4(&c0, &c1, &v0, &v1)
        let r02 = orthogonalize4(&c0, &c2, &v0, &v2)
        let r12 = orthogonalize4(&c1, &c2, &v1, &v2)
        if !(r01 || r02 || r12) { break }
    }
    for i in 0..<count {
        out(i, finishSVD3(c0.lane(i), c1.lane(i), c2.lane(i), v0.lane(i), v1.lane(i), v2.lane(i)))
    }
}

/// Decomposes `count` row-major 3x3 matrices at `p` across cores, four per kernel call.
@inline(__always)
func forEachSVD3(_ p: UnsafePointer<Float>, count: Int, _ body: (Int, SVD3) -> Void) {
    Threads.parallelRanges(count, minChunk: 1024) { r in
        for first in stride(from: r.lowerBound, to: r.upperBound, by: 4) {
            svd3Kernel4(p + 9 * first, count: Swift.min(4, r.upperBound - first)) { lane, d in body(first + lane, d) }
        }
    }
}

/// Sorts converged Jacobi columns `A V = U diag(σ)` and builds an orthonormal U.
@inline(__always)
private func finishSVD3(_ c0in: Vec3d, _ c1in: Vec3d, _ c2in: Vec3d, _ v0in: Vec3d, _ v1in: Vec3d, _ v2in: Vec3d) -> SVD3 {
    var c0 = c0in, c1 = c1in, c2 = c2in, v0 = v0in, v1 = v1in, v2 = v2in
    // Sort by norm, descending.
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
        forEachSVD3(pa, count: batch) { i, d in
            store(d.u0, d.u1, d.u2, to: pu + 9 * i)
            store(d.v0, d.v1, d.v2, to: pv + 9 * i)
            ps[3 * i] = Float(d.s.x); ps[3 * i + 1] = Float(d.s.y); ps[3 * i + 2] = Float(d.s.z)
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
                let U = columns(pu + 9 * b), V = columns(pv + 9 * b)
                let sv = Vec3d(Double(ps[3 * b]), Double(ps[3 * b + 1]), Double(ps[3 * b + 2]))
                // Antisymmetric parts of J = UᵀŪ and K = VᵀV̄: jA[i][j] = J_ij - J_ji.
                var jA = (Vec3d.zero, Vec3d.zero, Vec3d.zero), kA = jA
                if let pgu { jA = antisymmetricProduct(U, columns(pgu + 9 * b)) }
                if let pgv { kA = antisymmetricProduct(V, columns(pgv + 9 * b)) }
                let floor = gapFloor(sv[0] * sv[0])
                // Row i of M, then ā = Σ_i u_i (Σ_j M_ij v_j)ᵀ.
                var rows = (Vec3d.zero, Vec3d.zero, Vec3d.zero)
                for i in 0..<3 {
                    var row = Vec3d.zero
                    row[i] = pgs.map { Double($0[3 * b + i]) } ?? 0
                    for j in 0..<3 where j != i {
                        let d = sv[j] * sv[j] - sv[i] * sv[i]
                        // s is descending, so the sign of the gap is known even when it vanishes.
                        let f = 1 / (j > i ? Swift.min(d, -floor) : Swift.max(d, floor))
                        row[j] = f * (element(jA, i, j) * sv[j] + sv[i] * element(kA, i, j))
                    }
                    let w = row.x * V.0 + row.y * V.1 + row.z * V.2
                    if i == 0 { rows.0 = w } else if i == 1 { rows.1 = w } else { rows.2 = w }
                }
                storeOuterSum(U, rows, to: po + 9 * b)
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
        forEachSVD3(pm, count: batch) { i, d in
            let sign: Double = dot3(d.u2, cross3(d.u0, d.u1)) * dot3(d.v2, cross3(d.v0, d.v1)) < 0 ? -1 : 1
            let u2 = sign * d.u2
            // R = Σ_k ũ_k v_kᵀ.
            storeOuterSum((d.u0, d.u1, u2), (d.v0, d.v1, d.v2), to: pr + 9 * i)
            if tracked {
                store(d.u0, d.u1, u2, to: pu + 9 * i)
                store(d.v0, d.v1, d.v2, to: pv + 9 * i)
                ps[3 * i] = Float(d.s.x); ps[3 * i + 1] = Float(d.s.y); ps[3 * i + 2] = Float(sign * d.s.z)
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
                let U = columns(pu + 9 * b), V = columns(pv + 9 * b), Rb = columns(pg + 9 * b)
                let s0 = Double(ps[3 * b]), s1 = Double(ps[3 * b + 1]), s2 = Double(ps[3 * b + 2])
                // R̄ v_j, then G_ij = u_iᵀ R̄ v_j.
                let w0 = V.0.x * Rb.0 + V.0.y * Rb.1 + V.0.z * Rb.2
                let w1 = V.1.x * Rb.0 + V.1.y * Rb.1 + V.1.z * Rb.2
                let w2 = V.2.x * Rb.0 + V.2.y * Rb.1 + V.2.z * Rb.2
                let floor = gapFloor(Swift.abs(s0))
                // X is antisymmetric: three entries.
                let x01 = (dot3(U.0, w1) - dot3(U.1, w0)) / Swift.max(s0 + s1, floor)
                let x02 = (dot3(U.0, w2) - dot3(U.2, w0)) / Swift.max(s0 + s2, floor)
                let x12 = (dot3(U.1, w2) - dot3(U.2, w1)) / Swift.max(s1 + s2, floor)
                // m̄ = Σ_ij X_ij u_i v_jᵀ = Σ_i u_i (Σ_j X_ij v_j)ᵀ.
                let rows = (x01 * V.1 + x02 * V.2, -x01 * V.0 + x12 * V.2, -x02 * V.0 - x12 * V.1)
                storeOuterSum(U, rows, to: po + 9 * b)
            }
        }
        return gm
    }
}

typealias Columns3 = (Vec3d, Vec3d, Vec3d)

/// The columns of the row-major 3x3 matrix at `p`.
@inline(__always) private func columns(_ p: UnsafePointer<Float>) -> Columns3 {
    (Vec3d(Double(p[0]), Double(p[3]), Double(p[6])),
     Vec3d(Double(p[1]), Double(p[4]), Double(p[7])),
     Vec3d(Double(p[2]), Double(p[5]), Double(p[8])))
}

@inline(__always) private func element(_ m: Columns3, _ i: Int, _ j: Int) -> Double {
    i == 0 ? m.0[j] : (i == 1 ? m.1[j] : m.2[j])
}

/// Rows of `AᵀB - BᵀA` for column sets `A`, `B`: entry (i, j) is `a_i·b_j - a_j·b_i`.
@inline(__always) private func antisymmetricProduct(_ a: Columns3, _ b: Columns3) -> Columns3 {
    let d01 = dot3(a.0, b.1) - dot3(a.1, b.0)
    let d02 = dot3(a.0, b.2) - dot3(a.2, b.0)
    let d12 = dot3(a.1, b.2) - dot3(a.2, b.1)
    return (Vec3d(0, d01, d02), Vec3d(-d01, 0, d12), Vec3d(-d02, -d12, 0))
}

/// Writes `Σ_k a_k b_kᵀ` as a row-major 3x3 matrix.
@inline(__always) private func storeOuterSum(_ a: Columns3, _ b: Columns3, to o: UnsafeMutablePointer<Float>) {
    for r in 0..<3 {
        let row = a.0[r] * b.0 + a.1[r] * b.1 + a.2[r] * b.2
        o[3 * r] = Float(row.x); o[3 * r + 1] = Float(row.y); o[3 * r + 2] = Float(row.z)
    }
}
