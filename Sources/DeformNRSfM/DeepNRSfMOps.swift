import DeformGeometry
import DeformTensor
import Foundation

/// Deep NRSfM++ (thesis ch. 3): a hierarchical block-sparse coding network unrolled from ISTA,
/// trained on the 2D reprojection error of the sequence it reconstructs. See ``fit(points2D:visibility:config:logEvery:progress:)``.
public enum DeepNRSfM {}

// MARK: - Block soft thresholding

extension DeepNRSfM {
    /// Block soft thresholding, Eq. 3.22: every block `Π` becomes `(1 - λ/‖Π‖_F)⁺ Π`.
    ///
    /// Blocks are strided: `x` is `[N, B, K]` and block `k` of sample `n` is the `B` entries
    /// `x[n, :, k]` (the layout of the network's block codes, `B = 3a`); `thresholds` is `[K]`,
    /// one λ per block. A block whose norm is at most its threshold is set to exactly zero (its
    /// gradient is zero too). Fused with a hand-written backward:
    /// `x̄ = s ḡ + λ Π (Πᵀḡ)/ν³` and `λ̄ = -Σ_n Πᵀḡ/ν` for active blocks (`ν = ‖Π‖`, `s = 1 - λ/ν`).
    public static func blockSoftThreshold(_ x: Tensor, thresholds: Tensor) -> Tensor {
        guard x.rank == 3, thresholds.shape == [x.shape[2]] else {
            fail(.shapeMismatch(op: "DeepNRSfM.blockSoftThreshold", expected: "x [N, B, K] and thresholds [K]",
                                found: "x \(x.shape), thresholds \(thresholds.shape)"))
        }
        let n = x.shape[0], b = x.shape[1], k = x.shape[2]
        let y = Tensor(uninitializedShape: x.shape)
        let norms = Tensor(uninitializedShape: [n, k])
        let px = x.dataPointer, pl = thresholds.dataPointer, py = y.dataPointer, pn = norms.dataPointer
        Threads.parallelRanges(n, minChunk: Swift.max(1, 8192 / Swift.max(b * k, 1))) { r in
            let scale = UnsafeMutablePointer<Float>.allocate(capacity: k)
            defer { scale.deallocate() }
            for s in r {
                let base = s * b * k, nu = pn + s * k
                nu.update(repeating: 0, count: k)
                for j in 0..<b {
                    let row = px + base + j * k
                    for c in 0..<k { nu[c] += row[c] * row[c] }
                }
                for c in 0..<k {
                    let v = nu[c].squareRoot()
                    nu[c] = v
                    scale[c] = v > pl[c] && v > 0 ? 1 - pl[c] / v : 0
                }
                for j in 0..<b {
                    let row = px + base + j * k, out = py + base + j * k
                    for c in 0..<k { out[c] = row[c] * scale[c] }
                }
            }
        }
        guard GradMode.isEnabled, x.isTracked || thresholds.isTracked else { return y }
        let xd = x.detached(), ld = thresholds.detached()
        let xTracked = x.isTracked, lTracked = thresholds.isTracked
        return Tensor.record("blockSoftThreshold", output: y, inputs: [x, thresholds]) { g in
            let gx = Tensor(uninitializedShape: [n, b, k])
            let perSample = Tensor(uninitializedShape: [n, k])       // -Πᵀḡ/ν, summed over n below
            let px = xd.dataPointer, pl = ld.dataPointer, pg = g.dataPointer, pgx = gx.dataPointer, pps = perSample.dataPointer
            let pn = norms.dataPointer
            Threads.parallelRanges(n, minChunk: Swift.max(1, 8192 / Swift.max(b * k, 1))) { r in
                let scale = UnsafeMutablePointer<Float>.allocate(capacity: 2 * k)
                defer { scale.deallocate() }
                let coeff = scale + k
                for s in r {
                    let base = s * b * k, nu = pn + s * k, dot = pps + s * k
                    dot.update(repeating: 0, count: k)
                    for j in 0..<b {
                        let row = px + base + j * k, grow = pg + base + j * k
                        for c in 0..<k { dot[c] += row[c] * grow[c] }
                    }
                    for c in 0..<k {
                        let v = nu[c]
                        if v > pl[c] && v > 0 {
                            scale[c] = 1 - pl[c] / v
                            coeff[c] = pl[c] * dot[c] / (v * v * v)
                            dot[c] = -dot[c] / v
                        } else {
                            scale[c] = 0; coeff[c] = 0; dot[c] = 0
                        }
                    }
                    if xTracked {
                        for j in 0..<b {
                            let row = px + base + j * k, grow = pg + base + j * k, out = pgx + base + j * k
                            for c in 0..<k { out[c] = scale[c] * grow[c] + coeff[c] * row[c] }
                        }
                    }
                }
            }
            return [xTracked ? gx : nil, lTracked ? perSample.sum(axes: [0]) : nil]
        }
    }
}

// MARK: - Camera and code from the last block code

extension DeepNRSfM {
    /// Factorises the last block code `Ψ_L = φ_L ⊗ R_xy` (orthographic) or `φ_L ⊗ R`
    /// (perspective) into the camera rotation and the code (Sec. 3.4.2: "constraining to SO(3)
    /// using SVD as in Deep NRSfM"; the exact factorisation is not given, see the card's gaps).
    ///
    /// With the blocks `Π_k = φ_k Rᵀ_{1..a}` (each `[a, 3]`: the first `a` columns of the thesis'
    /// R as rows), the learned combination `M = Σ_k c_k Π_k = (c·φ) Rᵀ_{1..a}` is the camera up to
    /// a scale. Its first two rows are projected onto the orthonormal pairs with the SVD and
    /// completed by their cross product (``SO3/completeFromRows(_:)``), for both camera models, and
    /// the code is the least-squares `φ_k = ⟨Π_k, Rᵀ_{1..a}⟩ / a`.
    ///
    /// Why not the nearest rotation to the whole 3×3 `M` under perspective: the sign of `c·φ` then
    /// has to be read from `det M`, a discontinuous decision, and on synthetic perspective data a
    /// third of the frames trained into the depth-mirrored solution (normalized error 4.4-4.7%
    /// instead of 0.6-0.75%, same data and schedule). Fixing the handedness by the cross product,
    /// as the orthographic camera does, removed that.
    ///
    /// On an exact `Ψ_L` with `c·φ > 0` both R and φ are recovered exactly (with `c·φ < 0` the
    /// orthographic camera returns the equivalent `(-φ, -R_xy)`). Differentiable.
    /// - Parameters:
    ///   - psi: `[N, a, 3, K]`, a = 2 or 3.
    ///   - weights: `c`, `[K]`.
    /// - Returns: `rotation` `[N, 3, 3]` such that camera-frame points are `R · canonical`
    ///   (i.e. Rᵀ of the thesis' row convention `S R`), and `code` `[N, K]`.
    public static func cameraAndCode(_ psi: Tensor, weights: Tensor) throws -> (rotation: Tensor, code: Tensor) {
        guard psi.rank == 4, psi.shape[1] == 2 || psi.shape[1] == 3, psi.shape[2] == 3, weights.shape == [psi.shape[3]] else {
            throw TensorError.shapeMismatch(op: "DeepNRSfM.cameraAndCode", expected: "psi [N, 2 or 3, 3, K] and weights [K]",
                                            found: "psi \(psi.shape), weights \(weights.shape)")
        }
        let a = psi.shape[1]
        let m = psi.narrow(axis: 1, start: 0, length: 2).matmul(weights)            // [N, 2, 3]
        let rotation = try SO3.completeFromRows(m)
        let rows = a == 2 ? rotation.narrow(axis: 1, start: 0, length: 2) : rotation   // [N, a, 3]
        let code = (psi * rows.unsqueezed(-1)).sum(axes: [1, 2]) / Float(a)
        return (rotation, code)
    }
}
