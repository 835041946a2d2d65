import DeformTensor
import Foundation

/// BMM step 3: the shapes of minimum trace norm that reproduce the observations exactly (Dai, Li
/// & He, Sec. 5): `min ‖S^♯‖_* s.t. W = R S`, where row i of `S^♯` (F x 3P) is frame i's shape
/// `S_i` (3 x P, in the common frame) laid out as `[x₁…x_P, y₁…y_P, z₁…z_P]`.
enum BMMShape {
    struct Solution {
        /// Camera-frame depth of every point, F x P (x and y are the observations).
        var depth: DMatrix
        /// `S^♯` of the solution, F x 3P.
        var sharp: DMatrix
        /// Singular values of `S^♯`, descending.
        var singularValues: [Double]
        /// The first right singular vector of `S^♯` (3P).
        var leadingDirection: [Double]
        var iterations: Int
        /// `‖J − S^♯‖_F / ‖S^♯‖_F` at the end: how far the splitting variable is from the shapes.
        var residual: Double
    }

    /// `S^♯` for camera-frame depths `z`: with rotation `R_i` (camera = R_i · S_i) and the
    /// camera-frame points `C_i = [W_i; z_i]`, `S_i = R_iᵀ C_i`. Every such `S_i` satisfies
    /// `R_i[0..<2] S_i = W_i`, and every shape that does is of this form, so the constraint
    /// `W = R S` is eliminated exactly and only the depths are unknown.
    static func sharp(w: DMatrix, depth z: DMatrix, rotations: [[Double]]) -> DMatrix {
        let frames = z.rows, points = z.cols
        var s = DMatrix(rows: frames, cols: 3 * points)
        for f in 0..<frames {
            let r = rotations[f]
            let xo = 2 * f * points, yo = xo + points, zo = f * points, so = f * 3 * points
            for p in 0..<points {
                let x = w.data[xo + p], y = w.data[yo + p], d = z.data[zo + p]
                for a in 0..<3 { s.data[so + a * points + p] = r[a] * x + r[3 + a] * y + r[6 + a] * d }
            }
        }
        return s
    }

    /// Inexact augmented Lagrangian (ADMM) on `min ‖J‖_* s.t. J = S^♯(z)`:
    /// `J ← SVT_{1/μ}(S^♯ − Y/μ)` (singular value thresholding), `z ← argmin ‖J + Y/μ − S^♯(z)‖`
    /// (per frame the third row of `R_i (J_i + Y_i/μ)`, as `R_i` is orthogonal),
    /// `Y ← Y + μ(J − S^♯)`, `μ ← min(1.1 μ, 10¹⁰ μ₀)` with `μ₀ = 1/‖S^♯(0)‖₂`. The start is the
    /// flat solution `z = 0` (the pseudo-inverse shapes `R⁺W`).
    static func solve(w: DMatrix, rotations: [[Double]], maxIterations: Int, tolerance: Double) throws -> Solution {
        let op = "BMM (shape recovery)"
        let frames = w.rows / 2, points = w.cols
        var z = DMatrix(rows: frames, cols: points)
        var s = sharp(w: w, depth: z, rotations: rotations)
        let sigma0 = try s.svd(op: op).s.first ?? 0
        guard sigma0 > 0 else {
            throw TensorError.invalidArgument(op: "BMM", message: "the observations are all zero after centring")
        }
        var mu = 1 / sigma0
        let muMax = mu * 1e10, growth = 1.1
        var y = DMatrix(rows: frames, cols: 3 * points)
        var iterations = 0, residual = Double.infinity
        while iterations < maxIterations {
            iterations += 1
            var t = s
            for i in t.data.indices { t.data[i] -= y.data[i] / mu }
            let j = try thresholded(t, 1 / mu, op: op)
            // z-step: third camera row of R_i (J_i + Y_i/μ).
            for f in 0..<frames {
                let r = rotations[f], so = f * 3 * points
                for p in 0..<points {
                    var d = 0.0
                    for a in 0..<3 { d += r[6 + a] * (j.data[so + a * points + p] + y.data[so + a * points + p] / mu) }
                    z.data[f * points + p] = d
                }
            }
            s = sharp(w: w, depth: z, rotations: rotations)
            var gap = 0.0
            for i in y.data.indices {
                let r = j.data[i] - s.data[i]
                y.data[i] += mu * r
                gap += r * r
            }
            residual = gap.squareRoot() / Swift.max(s.frobeniusNorm, .leastNormalMagnitude)
            mu = Swift.min(mu * growth, muMax)
            if residual < tolerance { break }
        }
        let final = try s.svd(op: op)
        return Solution(depth: z, sharp: s, singularValues: final.s,
                        leadingDirection: (0..<(3 * points)).map { final.vt[0, $0] },
                        iterations: iterations, residual: residual)
    }

    /// Singular value thresholding: `U max(Σ − τ, 0) Vᵀ`.
    static func thresholded(_ m: DMatrix, _ tau: Double, op: String) throws -> DMatrix {
        let (u, sv, vt) = try m.svd(op: op)
        let kept = sv.prefix { $0 > tau }.count
        if kept == 0 { return DMatrix(rows: m.rows, cols: m.cols) }
        var us = DMatrix(rows: m.rows, cols: kept)
        for i in 0..<m.rows { for c in 0..<kept { us[i, c] = u[i, c] * (sv[c] - tau) } }
        var vk = DMatrix(rows: kept, cols: m.cols)
        for c in 0..<kept { for j in 0..<m.cols { vk[c, j] = vt[c, j] } }
        return DMatrix.product(us, vk)
    }
}
