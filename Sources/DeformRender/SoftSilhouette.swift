import DeformTensor
import Foundation

extension MeshRasterizer {
    /// The probability that the soft silhouette ignores: faces contribute nothing beyond the
    /// distance where their coverage `sigmoid(-d²/σ)` drops below this.
    static let softCutoff: Float = 1e-6

    /// A soft silhouette in the manner of SoftRas (Liu et al. 2019, Eq. 1 and the silhouette
    /// aggregate): each face covers pixel centre p with probability
    ///
    ///     D_f(p) = sigmoid(δ_f(p) · d²(p, f) / σ),   δ = +1 inside the face, -1 outside,
    ///
    /// where d is the screen-space distance from p to the face's boundary (its nearest edge
    /// segment), and the silhouette is `1 - Π_f (1 - D_f(p))`. Unlike the hard mask it changes
    /// smoothly as vertices move, so it gives gradients at silhouettes.
    ///
    /// `sigma` is in squared pixels (SoftRas states it in normalised device coordinates, where
    /// its 1e-4 is about 0.1 px² at 64 × 64): coverage is 0.5 on an edge and reaches 0.95 or 0.05
    /// about `1.7 √σ` pixels inside or outside. Each face only touches pixels within
    /// `√(σ ln(1/1e-6))` of its bounding box (beyond that its coverage is below 1e-6). Depth is not
    /// used (a silhouette has no occlusion), but faces with a vertex at depth ≤ ``near`` are
    /// skipped whole (the hard rasteriser clips them at the near plane, which needs the depth test
    /// this has not), as are zero-area faces.
    ///
    /// - Returns: `[H, W]`, differentiable with respect to the x and y of `screenVertices` (the
    ///   depth column gets zero gradient), with a hand-written backward.
    /// - Throws: ``TensorError`` for bad shapes, an index out of range, non-finite vertices or a
    ///   non-positive sigma.
    public static func softSilhouette(screenVertices: Tensor, faces: [Int32], width: Int, height: Int,
                                      sigma: Float = 1) throws -> Tensor {
        let op = "MeshRasterizer.softSilhouette"
        try validate(op, screenVertices: screenVertices, faces: faces, width: width, height: height)
        guard sigma > 0, sigma.isFinite else {
            throw TensorError.invalidArgument(op: op, message: "sigma must be positive and finite, got \(sigma)")
        }
        let margin = (sigma * Foundation.log(1 / softCutoff)).squareRoot()
        let s = setup(screenVertices: screenVertices, faces: faces, width: width, height: height, margin: margin)
        // Per pixel: the product of the non-zero factors (1 - D_f) and how many factors are exactly
        // zero, so the backward can form the product of the other factors without dividing by 0.
        let product = Tensor(shape: [height, width], repeating: 1)
        var zeros = [Int32](repeating: 0, count: width * height)
        let pp = product.dataPointer
        let bands = bandCount(height)
        zeros.withUnsafeMutableBufferPointer { zb in
            let pz = zb.baseAddress!
            forEachSoftCoverage(s, width: width, height: height, bands: bands, sigma: sigma) { _, pix, _, _, oneMinus, _, _, _, _ in
                if oneMinus == 0 { pz[pix] += 1 } else { pp[pix] *= oneMinus }
            }
        }
        let out = Tensor(uninitializedShape: [height, width])
        let po = out.dataPointer
        for pix in 0..<(width * height) { po[pix] = zeros[pix] > 0 ? 1 : 1 - pp[pix] }

        let v = screenVertices.shape[0]
        let zeroCounts = zeros
        return Tensor.record("softSilhouette", output: out, inputs: [screenVertices]) { g in
            let buffers = (0..<bands).map { _ in Tensor(shape: [v, 3], repeating: 0) }
            let pointers = buffers.map(\.dataPointer)
            // The pointer is taken from the captured tensor so the storage outlives the forward.
            let pg = g.dataPointer, pp = product.dataPointer
            zeroCounts.withUnsafeBufferPointer { zb in
                faces.withUnsafeBufferPointer { fc in
                    forEachSoftCoverage(s, width: width, height: height, bands: bands, sigma: sigma) {
                        band, pix, n, d, oneMinus, edgeIndex, t, rx, ry in
                        // ∂S/∂D_f = Π_{g≠f} (1 - D_g).
                        let others: Float
                        if oneMinus == 0 {
                            others = zb[pix] == 1 ? pp[pix] : 0
                        } else {
                            others = zb[pix] == 0 ? pp[pix] / oneMinus : 0
                        }
                        if others == 0 { return }
                        let inside: Float = d > 0.5 ? 1 : -1
                        // D = sigmoid(δ d²/σ): ∂D/∂d² = δ D (1 - D) / σ.
                        let gd2 = pg[pix] * others * inside * d * oneMinus / sigma
                        if gd2 == 0 { return }
                        // d² = |r|², r = p - (a + t (b - a)): ∂d²/∂a = -2 (1 - t) r, ∂d²/∂b = -2 t r.
                        let f = s.faces[n]
                        let a = Int(fc[3 * f + edgeIndex]), b = Int(fc[3 * f + (edgeIndex + 1) % 3])
                        let out = pointers[band]
                        out[3 * a] -= gd2 * 2 * (1 - t) * rx; out[3 * a + 1] -= gd2 * 2 * (1 - t) * ry
                        out[3 * b] -= gd2 * 2 * t * rx; out[3 * b + 1] -= gd2 * 2 * t * ry
                    }
                }
            }
            return [buffers.dropFirst().reduce(buffers[0]) { $0 + $1 }]
        }
    }

    /// Visits every (pixel, face) pair within a face's grown bounding box, by bands of rows on the
    /// cores, and passes: the band, the pixel, the face's position in `s`, the coverage D (with the
    /// inside flag folded into its value being ≥ 0.5), 1 - D (computed directly, for precision),
    /// the nearest edge (k: from vertex k to vertex k + 1), the position t ∈ [0, 1] of the nearest
    /// point along it and the offset r = p - nearest point.
    @inline(__always)
    static func forEachSoftCoverage(_ s: Setup, width: Int, height: Int, bands: Int, sigma: Float,
                                    _ body: (_ band: Int, _ pixel: Int, _ face: Int, _ coverage: Float, _ oneMinus: Float,
                                             _ edge: Int, _ t: Float, _ rx: Float, _ ry: Float) -> Void) {
        let drawn = s.faces.count
        s.coords.withUnsafeBufferPointer { c in
            s.boxes.withUnsafeBufferPointer { box in
                Threads.parallelRanges(bands, minChunk: 1) { range in
                    for band in range {
                        let rowLo = height * band / bands, rowHi = height * (band + 1) / bands
                        for n in 0..<drawn {
                            let jMin = Swift.max(box[4 * n + 2], rowLo), jMax = Swift.min(box[4 * n + 3], rowHi - 1)
                            if jMin > jMax { continue }
                            let q = c.baseAddress! + 10 * n
                            let xs = SIMD3<Float>(q[0], q[3], q[6]), ys = SIMD3<Float>(q[1], q[4], q[7])
                            let positive = q[9] > 0
                            for j in jMin...jMax {
                                let py = Float(j) + 0.5
                                for i in box[4 * n]...box[4 * n + 1] {
                                    let px = Float(i) + 0.5
                                    var best = Float.infinity, bestEdge = 0, bestT: Float = 0, bestRx: Float = 0, bestRy: Float = 0
                                    var inside = true
                                    for k in 0..<3 {
                                        let k1 = (k + 1) % 3
                                        let ax = xs[k], ay = ys[k], ex = xs[k1] - ax, ey = ys[k1] - ay
                                        let wx = px - ax, wy = py - ay
                                        let cross = ex * wy - ey * wx
                                        if positive ? cross < 0 : cross > 0 { inside = false }
                                        let t = Swift.min(Swift.max((wx * ex + wy * ey) / (ex * ex + ey * ey), 0), 1)
                                        let rx = wx - t * ex, ry = wy - t * ey
                                        let d2 = rx * rx + ry * ry
                                        if d2 < best { best = d2; bestEdge = k; bestT = t; bestRx = rx; bestRy = ry }
                                    }
                                    let x = (inside ? best : -best) / sigma
                                    let coverage = 1 / (1 + Foundation.exp(-x)), oneMinus = 1 / (1 + Foundation.exp(x))
                                    if !inside && coverage < softCutoff { continue }
                                    body(band, j * width + i, n, coverage, oneMinus, bestEdge, bestT, bestRx, bestRy)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
