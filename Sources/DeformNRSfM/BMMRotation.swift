import DeformTensor
import Foundation

/// BMM step 2: the corrective column triple `G_k` and the per-frame rotations (Dai, Li & He,
/// Sec. 4). See ``BMM`` for the choices made where the paper leaves room.
enum BMMRotation {
    // MARK: Symmetric matrices as vectors

    /// Coordinates of symmetric `n x n` matrices: the upper triangle row by row, off-diagonal
    /// entries scaled by √2 so the Euclidean inner product of two vectors equals the Frobenius
    /// inner product of the matrices (an orthonormal basis of vectors is one of matrices too).
    struct SymmetricCoordinates {
        let n: Int
        let pairs: [(i: Int, j: Int)]
        let weights: [Double]

        init(_ n: Int) {
            self.n = n
            var p: [(i: Int, j: Int)] = [], w: [Double] = []
            for i in 0..<n { for j in i..<n { p.append((i, j)); w.append(i == j ? 1 : 2.0.squareRoot()) } }
            pairs = p; weights = w
        }

        var count: Int { pairs.count }

        func vector(_ m: DMatrix) -> [Double] {
            pairs.indices.map { k in m[pairs[k].i, pairs[k].j] * weights[k] }
        }

        func matrix(_ v: [Double]) -> DMatrix {
            var m = DMatrix(rows: n, cols: n)
            for k in pairs.indices {
                let x = v[k] / weights[k]
                m[pairs[k].i, pairs[k].j] = x
                m[pairs[k].j, pairs[k].i] = x
            }
            return m
        }
    }

    // MARK: The linear constraints and their null space

    /// The orthonormality constraints of every frame on `Q = G_k G_kᵀ` (Dai et al. Eq. 11): with
    /// `m₁, m₂` the two rows of frame i's block of `M̂`, `m₁ Q m₁ᵀ − m₂ Q m₂ᵀ = 0` and
    /// `m₁ Q m₂ᵀ = 0` (written as `⟨m₁m₂ᵀ + m₂m₁ᵀ, Q⟩ = 0`). Also returns the vector `ν` of the
    /// scale functional `⟨N, Q⟩`, the mean over frames of `(m₁ Q m₁ᵀ + m₂ Q m₂ᵀ)/2` — the mean
    /// squared coefficient `c_ik²` of the recovered triple.
    static func constraints(_ mh: DMatrix, coordinates sc: SymmetricCoordinates) -> (a: DMatrix, scale: [Double]) {
        let frames = mh.rows / 2, n = mh.cols
        var a = DMatrix(rows: 2 * frames, cols: sc.count)
        var scale = [Double](repeating: 0, count: sc.count)
        for f in 0..<frames {
            let r1 = 2 * f * n, r2 = (2 * f + 1) * n
            for k in sc.pairs.indices {
                let (i, j) = sc.pairs[k], w = sc.weights[k]
                let m1i = mh.data[r1 + i], m1j = mh.data[r1 + j], m2i = mh.data[r2 + i], m2j = mh.data[r2 + j]
                a.data[2 * f * sc.count + k] = (m1i * m1j - m2i * m2j) * w
                a.data[(2 * f + 1) * sc.count + k] = (m1i * m2j + m2i * m1j) * w
                scale[k] += 0.5 * (m1i * m1j + m2i * m2j) * w
            }
        }
        for k in scale.indices { scale[k] /= Double(frames) }
        return (a, scale)
    }

    /// An orthonormal basis (columns, `count x d`) of the approximate null space of the constraint
    /// matrix: its `d = 2K² − K` smallest right singular vectors. Dai et al.'s Theorem 2 shows that
    /// for noise-free data the solutions `Q` form exactly a linear space of that dimension.
    static func nullSpace(_ a: DMatrix, dimension d: Int) throws -> DMatrix {
        let svd = try a.svd(fullV: true, op: "BMM (constraint null space)")
        let total = svd.vt.rows
        var basis = DMatrix(rows: a.cols, cols: d)
        for c in 0..<d {
            let row = total - d + c
            for r in 0..<a.cols { basis[r, c] = svd.vt[row, r] }
        }
        return basis
    }

    // MARK: Trace-norm minimisation

    /// `min ‖Q‖_* s.t. Q = smat(B t), ⟨ν, B t⟩ = 1` (Dai et al. Eq. 14's trace-norm relaxation of
    /// rank 3, restricted to the null space as in the authors' implementation), by ADMM on the
    /// splitting `Z = Q`: the t-step is an orthogonal projection (B has orthonormal columns), the
    /// Z-step soft-thresholds the eigenvalues of a symmetric matrix. Returns `Q` and the iterations.
    static func minimumNuclearNorm(basis b: DMatrix, scale: [Double], coordinates sc: SymmetricCoordinates,
                                   maxIterations: Int, tolerance: Double) throws -> (q: DMatrix, iterations: Int) {
        let op = "BMM (trace-norm minimisation)"
        let c = DMatrix.product(b, scale, transpose: true)                  // ν in t coordinates
        let cc = c.reduce(0) { $0 + $1 * $1 }
        guard cc > 0 else {
            throw TensorError.invalidArgument(op: "BMM", message: "the scale functional vanishes on the constraint null space (degenerate tracks)")
        }
        func project(_ t0: [Double]) -> [Double] {
            let gap = (1 - zip(c, t0).reduce(0) { $0 + $1.0 * $1.1 }) / cc
            return zip(t0, c).map { $0 + gap * $1 }
        }
        var t = c.map { $0 / cc }
        var q = sc.matrix(DMatrix.product(b, t))
        var z = q
        var u = DMatrix(rows: sc.n, cols: sc.n)
        // The problem is homogeneous in Q's scale, so ρ is set from the starting point's spectrum
        // (10 / its largest |eigenvalue| converged in ~100 iterations on the benchmark sequences).
        let start = try q.symmetricEigen(op: op).values
        let rho = 10 / Swift.max(start.map { abs($0) }.max() ?? 1, .leastNormalMagnitude)
        var iterations = 0
        while iterations < maxIterations {
            iterations += 1
            var y = z
            for i in y.data.indices { y.data[i] -= u.data[i] }
            t = project(DMatrix.product(b, sc.vector(y), transpose: true))
            q = sc.matrix(DMatrix.product(b, t))
            var v = q
            for i in v.data.indices { v.data[i] += u.data[i] }
            let (values, vectors) = try v.symmetricEigen(op: op)
            let shrunk = values.map { $0 > 0 ? Swift.max($0 - 1 / rho, 0) : Swift.min($0 + 1 / rho, 0) }
            let previous = z
            z = reconstruct(vectors, shrunk)
            var primal = 0.0, dual = 0.0
            for i in u.data.indices {
                let r = q.data[i] - z.data[i]
                u.data[i] += r
                primal += r * r
                let d = z.data[i] - previous.data[i]
                dual += d * d
            }
            let qn = Swift.max(q.frobeniusNorm, .leastNormalMagnitude)
            if primal.squareRoot() < tolerance * qn && dual.squareRoot() < tolerance * qn { break }
        }
        return (q, iterations)
    }

    /// `V diag(λ) Vᵀ` for eigenvectors in the columns of `v`.
    static func reconstruct(_ v: DMatrix, _ lambda: [Double]) -> DMatrix {
        var scaled = v
        for i in 0..<v.rows { for j in 0..<v.cols { scaled[i, j] *= lambda[j] } }
        return DMatrix.product(scaled, v, transB: true)
    }

    /// The rank-3 factor of `Q`: `G = V₃ Λ₃^{1/2}` from its three largest eigenvalues.
    static func correctiveTriple(from q: DMatrix) throws -> DMatrix {
        let (values, vectors) = try q.symmetricEigen(op: "BMM (rank-3 factor of Q)")
        let n = q.rows
        var g = DMatrix(rows: n, cols: 3)
        let top = values.last.map { abs($0) } ?? 1
        for c in 0..<3 {
            let idx = n - 1 - c
            // A non-positive eigenvalue among the top three means Q is far from rank 3; keep the
            // direction with a small weight so the refinement can still use it.
            let lam = Swift.max(values[idx], 1e-6 * top).squareRoot()
            for r in 0..<n { g[r, c] = vectors[r, idx] * lam }
        }
        return g
    }

    // MARK: Nonlinear refinement

    /// Per-frame orthonormality residuals of `P_i = M̂_i G` with Gram matrix `H = P_i P_iᵀ`:
    /// `e₁ = (h₁₁ − h₂₂)/(h₁₁ + h₂₂)` and `e₂ = 2h₁₂/(h₁₁ + h₂₂)`. Both vanish exactly when the
    /// two rows are orthogonal and of equal length; `e₁² + e₂² = ((σ₁² − σ₂²)/(σ₁² + σ₂²))²` for
    /// the singular values of `P_i`, so the cost is invariant to the scale of `G` and to `G → G O`.
    /// This is the symmetric form of the authors' refinement cost `Σ (1 − |r₂|²/|r₁|²)² + 4 (r₁·r₂/|r₁|²)²`.
    /// Returns the residual vector `e` (2F: e₁, e₂ per frame) and, with `jacobian`, its Jacobian
    /// `J` (2F x 3n) over the entries of G (row-major).
    static func residuals(_ mh: DMatrix, _ g: DMatrix, jacobian: Bool) -> (e: [Double], jacobian: DMatrix?) {
        let frames = mh.rows / 2, n = mh.cols, np = 3 * n
        let pm = DMatrix.product(mh, g)                                       // 2F x 3
        var jac = jacobian ? DMatrix(rows: 2 * frames, cols: np) : DMatrix(rows: 0, cols: 0)
        var e = [Double](repeating: 0, count: 2 * frames)
        for f in 0..<frames {
            let p = [pm[2 * f, 0], pm[2 * f, 1], pm[2 * f, 2]]
            let q = [pm[2 * f + 1, 0], pm[2 * f + 1, 1], pm[2 * f + 1, 2]]
            let a = dot(p, p), b = dot(q, q), c = dot(p, q)
            let s = a + b
            guard s > 0 else {                        // a frame projected to nothing: worst residual, no slope
                e[2 * f] = 1
                continue
            }
            let e1 = (a - b) / s, e2 = 2 * c / s
            e[2 * f] = e1; e[2 * f + 1] = e2
            guard jacobian else { continue }
            // ∂e₁ = ((1 − e₁)∂a − (1 + e₁)∂b)/s, ∂e₂ = (2∂c − e₂(∂a + ∂b))/s, with
            // ∂a/∂G_rc = 2 m₁_r p_c, ∂b/∂G_rc = 2 m₂_r q_c, ∂c/∂G_rc = m₁_r q_c + m₂_r p_c.
            let r1 = 2 * f * n, r2 = r1 + n
            let row1 = 2 * f * np, row2 = row1 + np
            for r in 0..<n {
                let m1 = mh.data[r1 + r], m2 = mh.data[r2 + r]
                for col in 0..<3 {
                    let da = 2 * m1 * p[col], db = 2 * m2 * q[col], dc = m1 * q[col] + m2 * p[col]
                    jac.data[row1 + 3 * r + col] = ((1 - e1) * da - (1 + e1) * db) / s
                    jac.data[row2 + 3 * r + col] = (2 * dc - e2 * (da + db)) / s
                }
            }
        }
        return (e, jacobian ? jac : nil)
    }

    /// `Σ_i (e₁² + e₂²)` (see ``residuals(_:_:jacobian:)``).
    static func orthonormalityCost(_ mh: DMatrix, _ g: DMatrix) -> Double {
        residuals(mh, g, jacobian: false).e.reduce(0) { $0 + $1 * $1 }
    }

    /// Levenberg–Marquardt on ``residuals(_:_:jacobian:)`` from `g` (the authors refine their SDP
    /// solution with a quasi-Newton method on the same kind of cost). Returns the refined G, its
    /// cost and the iterations taken.
    static func refine(_ mh: DMatrix, from g0: DMatrix, maxIterations: Int) throws -> (g: DMatrix, cost: Double, iterations: Int) {
        var g = normalised(g0)
        func linearised(_ g: DMatrix) -> (cost: Double, jte: [Double], jtj: DMatrix) {
            let (e, j) = residuals(mh, g, jacobian: true)
            return (e.reduce(0) { $0 + $1 * $1 }, DMatrix.product(j!, e, transpose: true), DMatrix.product(j!, j!, transA: true))
        }
        var current = linearised(g)
        var lambda = 1e-3
        var iterations = 0
        var stalls = 0
        while iterations < maxIterations {
            iterations += 1
            let jtj = current.jtj, np = jtj.rows
            var lhs = jtj
            let meanDiag = Swift.max((0..<np).reduce(0) { $0 + jtj[$1, $1] } / Double(np), .leastNormalMagnitude)
            // Marquardt's scaling, with a floor so the four gauge directions of the cost (scale of
            // G and G → G O) stay regular.
            for i in 0..<np { lhs[i, i] += lambda * (jtj[i, i] + 1e-9 * meanDiag) }
            let step = try lhs.solveSymmetric(current.jte.map { -$0 }, op: "BMM (refinement step)")
            var trial = g
            for i in trial.data.indices { trial.data[i] += step[i] }
            trial = normalised(trial)
            let trialCost = orthonormalityCost(mh, trial)
            if trialCost.isFinite && trialCost < current.cost {
                let gain = (current.cost - trialCost) / Swift.max(current.cost, .leastNormalMagnitude)
                g = trial
                current = linearised(trial)
                lambda = Swift.max(lambda / 10, 1e-12)
                stalls = gain < 1e-10 ? stalls + 1 : 0
                if stalls >= 3 || current.cost < 1e-24 { break }
            } else {
                lambda *= 10
                if lambda > 1e12 { break }
            }
        }
        return (g, current.cost, iterations)
    }

    /// `G` scaled to unit Frobenius norm (the cost does not see the scale; this keeps the
    /// iterates well conditioned).
    static func normalised(_ g: DMatrix) -> DMatrix {
        let norm = g.frobeniusNorm
        guard norm > 0 else { return g }
        var out = g
        for i in out.data.indices { out.data[i] /= norm }
        return out
    }

    // MARK: Rotations

    /// Per-frame rotations from `M̂_i G = c_ik R_i` (rows 1-2): the 2x3 block is replaced by the
    /// nearest matrix with orthonormal rows (its polar factor `(P Pᵀ)^{-1/2} P`, the `U Vᵀ` of its
    /// SVD) and completed with `r₃ = r₁ × r₂`, so every `R_i` is a proper rotation. The sign of
    /// `c_ik` is not observable per frame; it is fixed after the shape step (see ``BMM``).
    /// Returns row-major 3x3 matrices.
    static func rotations(_ mh: DMatrix, _ g: DMatrix) -> [[Double]] {
        let pm = DMatrix.product(mh, g)
        return (0..<(mh.rows / 2)).map { f in
            let a1 = [pm[2 * f, 0], pm[2 * f, 1], pm[2 * f, 2]]
            let a2 = [pm[2 * f + 1, 0], pm[2 * f + 1, 1], pm[2 * f + 1, 2]]
            let (r1, r2) = orthonormalRows(a1, a2)
            let r3 = cross(r1, r2)
            return r1 + r2 + r3
        }
    }

    /// The polar factor of the 2x3 matrix with rows `a1`, `a2`, through the closed-form square root
    /// of its 2x2 Gram matrix; Gram–Schmidt when that matrix is (nearly) singular.
    static func orthonormalRows(_ a1: [Double], _ a2: [Double]) -> ([Double], [Double]) {
        let h11 = dot(a1, a1), h22 = dot(a2, a2), h12 = dot(a1, a2)
        let det = h11 * h22 - h12 * h12, tr = h11 + h22
        if tr > 0 && det > 1e-20 * tr * tr {
            // √H = (H + √det I) / √(tr + 2√det) for a 2x2 SPD H; then (√H)⁻¹ applied to the rows.
            let sd = det.squareRoot(), k = (tr + 2 * sd).squareRoot()
            let s11 = (h11 + sd) / k, s22 = (h22 + sd) / k, s12 = h12 / k
            let sdet = s11 * s22 - s12 * s12
            let i11 = s22 / sdet, i22 = s11 / sdet, i12 = -s12 / sdet
            let r1 = (0..<3).map { i11 * a1[$0] + i12 * a2[$0] }
            let r2 = (0..<3).map { i12 * a1[$0] + i22 * a2[$0] }
            return (r1, r2)
        }
        // Degenerate frame: keep the longer row's direction and any orthogonal complement.
        var r1 = h11 >= h22 ? a1 : a2
        let n1 = dot(r1, r1).squareRoot()
        r1 = n1 > 0 ? r1.map { $0 / n1 } : [1, 0, 0]
        let other = h11 >= h22 ? a2 : a1
        var r2 = zip(other, r1).map { $0 - dot(other, r1) * $1 }
        var n2 = dot(r2, r2).squareRoot()
        if !(n2 > 1e-12) {
            let axis: [Double] = abs(r1[0]) < 0.9 ? [1, 0, 0] : [0, 1, 0]
            r2 = zip(axis, r1).map { $0 - dot(axis, r1) * $1 }
            n2 = dot(r2, r2).squareRoot()
        }
        r2 = r2.map { $0 / n2 }
        return h11 >= h22 ? (r1, r2) : (r2, r1)
    }

    @inline(__always) static func dot(_ a: [Double], _ b: [Double]) -> Double { a[0] * b[0] + a[1] * b[1] + a[2] * b[2] }

    @inline(__always) static func cross(_ a: [Double], _ b: [Double]) -> [Double] {
        [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    }
}
