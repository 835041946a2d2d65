import DeformTensor
import Foundation

/// The outputs of ``VolumeRendering/render(densities:colors:depths:deltas:background:)``.
public struct VolumeRender {
    /// Composited colour `[R, C]`: `Σ_i w_i c_i + T_S b` (b the background, 0 without one).
    public var color: Tensor
    /// Expected depth `[R]`: `Σ_i w_i t_i` (not divided by the opacity; divide for the depth of
    /// the visible surface).
    public var depth: Tensor
    /// Accumulated opacity `[R]`: `Σ_i w_i = 1 - T_S`.
    public var opacity: Tensor
    /// Per-sample weights `w_i = T_i α_i`, `[R, S]`, for importance sampling; not differentiable.
    public var weights: Tensor
}

/// Emission-absorption volume rendering with the NeRF quadrature (A-NeRF Eq. 3): for a ray with
/// samples at depths `t_i`, interval lengths `δ_i`, densities `σ_i ≥ 0` and colours `c_i`,
///
///     α_i = 1 - exp(-σ_i δ_i),   T_i = exp(-Σ_{j<i} σ_j δ_j),   w_i = T_i α_i,
///
/// colour `Σ w_i c_i + T_S b`, depth `Σ w_i t_i`, opacity `1 - T_S`.
///
/// One fused kernel per ray with a hand-written backward (registered with the engine), instead of
/// the dozen tensor ops (exp, cumulative sum, products, reductions) the same computation takes when
/// composed: see `deform bench --only volume` for the measured difference. With
/// `v_i = ḡ_c·c_i + ḡ_t t_i + ḡ_A - ḡ_c·b` (what one unit of weight on sample i is worth to the loss),
///
///     ∂L/∂(σ_i δ_i) = v_i T_{i+1} - Σ_{k>i} w_k v_k,
///
/// so the backward is one reverse pass per ray with a running suffix sum.
public enum VolumeRendering {
    /// Renders R rays of S samples each.
    ///
    /// - Parameters:
    ///   - densities: `[R, S]`, σ after its activation. Negative values are clamped to 0 (their
    ///     gradient is then 0); apply ReLU, softplus or exp before if the network can go negative.
    ///   - colors: `[R, S, C]` (any number of channels: RGB, features, semantic logits).
    ///   - depths: `[R, S]`, the sample positions t_i along the ray (for the expected depth).
    ///   - deltas: `[R, S]`, interval lengths δ_i (see ``intervals(_:far:)``).
    ///   - background: `[C]` (one colour) or `[R, C]` (a background plate, one colour per ray), or
    ///     `nil` for black.
    /// - Returns: colour, depth and opacity, differentiable with respect to every input; the weights.
    /// - Throws: ``TensorError`` when a shape does not match or an input holds NaN or infinity.
    public static func render(densities: Tensor, colors: Tensor, depths: Tensor, deltas: Tensor,
                              background: Tensor? = nil) throws -> VolumeRender {
        let op = "VolumeRendering.render"
        guard densities.rank == 2 else {
            throw TensorError.shapeMismatch(op: op, expected: "densities [R, S]", found: "\(densities.shape)")
        }
        let r = densities.shape[0], s = densities.shape[1]
        guard colors.rank == 3, colors.shape[0] == r, colors.shape[1] == s else {
            throw TensorError.shapeMismatch(op: op, expected: "colors [\(r), \(s), C]", found: "\(colors.shape)")
        }
        let c = colors.shape[2]
        guard depths.shape == [r, s] else { throw TensorError.shapeMismatch(op: op, expected: "depths [\(r), \(s)]", found: "\(depths.shape)") }
        guard deltas.shape == [r, s] else { throw TensorError.shapeMismatch(op: op, expected: "deltas [\(r), \(s)]", found: "\(deltas.shape)") }
        let perRayBackground: Bool
        if let background {
            guard background.shape == [c] || background.shape == [r, c] else {
                throw TensorError.shapeMismatch(op: op, expected: "background [\(c)] or [\(r), \(c)]", found: "\(background.shape)")
            }
            perRayBackground = background.rank == 2
        } else {
            perRayBackground = false
        }
        let color = Tensor(uninitializedShape: [r, c]), depth = Tensor(uninitializedShape: [r])
        let opacity = Tensor(uninitializedShape: [r]), weights = Tensor(uninitializedShape: [r, s])
        let pSigma = densities.dataPointer, pCol = colors.dataPointer, pT = depths.dataPointer, pDelta = deltas.dataPointer
        let pBg = background?.dataPointer
        let oCol = color.dataPointer, oDepth = depth.dataPointer, oAcc = opacity.dataPointer, oW = weights.dataPointer
        // Per ray Σ σ_i δ_i, which is finite when every σ_i and δ_i is (or overflows, which the
        // full check below tells apart). Non-finite colours, depths or backgrounds reach the
        // outputs by themselves (w · ∞ and 0 · ∞ are not finite); densities and intervals need
        // this probe because exp clamps: σ = +∞ gives a finite, fully opaque sample.
        let probe = Tensor(uninitializedShape: [r])
        let oProbe = probe.dataPointer
        forEachRayBlock(r) { rays in
            let decays = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(s, 1))
            defer { decays.deallocate() }
            for ray in rays {
                let base = ray * s
                let out = oCol + ray * c
                out.update(repeating: 0, count: c)
                // exp(-σ_i δ_i) for the whole ray at once (vectorised), then the serial scan.
                // max(σ, 0) is written (σ + |σ|) / 2, which is exact below 1.7e38, and the rows are
                // indexed from their own pointers: `max` (for its NaN rule) and an
                // overflow-checked `base + i` each kept this loop scalar (forward 1.73 -> 1.55 ms).
                let sigmaRow = pSigma + base, deltaRow = pDelta + base
                for i in 0..<s {
                    let sigma = sigmaRow[i]
                    decays[i] = (sigma + Swift.abs(sigma)) * 0.5 * deltaRow[i]
                }
                // Explicit SIMD: a scalar float sum would not vectorise (no reassociation).
                var acc = SIMD8<Float>(repeating: 0)
                var i = 0
                while i + 8 <= s {
                    let sigma = UnsafeRawPointer(sigmaRow + i).loadUnaligned(as: SIMD8<Float>.self)
                    let delta = UnsafeRawPointer(deltaRow + i).loadUnaligned(as: SIMD8<Float>.self)
                    acc += sigma * delta
                    i += 8
                }
                var sum = acc.sum()
                while i < s { sum += sigmaRow[i] * deltaRow[i]; i += 1 }
                oProbe[ray] = sum
                VectorMath.exp(decays, scale: -1, into: decays, count: s)
                var trans: Float = 1, z: Float = 0
                let col = pCol + base * c, t = pT + base, wOut = oW + base
                if c == 3 {
                    // RGB: accumulators in registers (the generic loop stores to `out` every sample).
                    var r0: Float = 0, r1: Float = 0, r2: Float = 0
                    for i in 0..<s {
                        let decay = decays[i]
                        let w = trans * (1 - decay)
                        wOut[i] = w
                        z += w * t[i]
                        r0 += w * col[3 * i]; r1 += w * col[3 * i + 1]; r2 += w * col[3 * i + 2]
                        trans *= decay
                    }
                    out[0] = r0; out[1] = r1; out[2] = r2
                } else {
                    for i in 0..<s {
                        let decay = decays[i]
                        let w = trans * (1 - decay)
                        wOut[i] = w
                        z += w * t[i]
                        let ci = col + i * c
                        for k in 0..<c { out[k] += w * ci[k] }
                        trans *= decay
                    }
                }
                if let pBg {
                    let b = perRayBackground ? pBg + ray * c : pBg
                    for k in 0..<c { out[k] += trans * b[k] }
                }
                oDepth[ray] = z
                oAcc[ray] = 1 - trans
            }
        }

        // Checking the small outputs instead of the inputs before the kernel saves a full pass
        // over the inputs (a fifth of the forward's time at 16384 x 64); the inputs are scanned
        // only to name the culprit.
        if !(color.isFinite && depth.isFinite && opacity.isFinite && probe.isFinite) {
            for (name, t) in [("densities", densities), ("colors", colors), ("depths", depths), ("deltas", deltas)] + (background.map { [("background", $0)] } ?? []) {
                if !t.isFinite { throw TensorError.nonFinite(op: op, message: "\(name) contains NaN or infinity") }
            }
        }

        var inputs = [densities, colors, depths, deltas]
        if let background { inputs.append(background) }
        let sigmaD = densities.detached(), colD = colors.detached(), tD = depths.detached(), deltaD = deltas.detached()
        let bgD = background?.detached()
        let tracked = inputs.map(\.isTracked)
        let outs = Tensor.recordMulti("volumeRender", outputs: [color, depth, opacity], inputs: inputs) { cots in
            let gCol = cots[0] ?? Tensor.zeros([r, c]), gDepth = cots[1] ?? Tensor.zeros([r]), gAcc = cots[2] ?? Tensor.zeros([r])
            let grads = backward(densities: sigmaD, colors: colD, depths: tD, deltas: deltaD, background: bgD,
                                 weights: weights, opacity: opacity, perRayBackground: perRayBackground,
                                 gColor: gCol, gDepth: gDepth, gOpacity: gAcc, wanted: tracked)
            var result: [Tensor?] = [grads.densities, grads.colors, grads.depths, grads.deltas]
            if bgD != nil { result.append(grads.background) }
            return zip(result, tracked).map { $1 ? $0 : nil }
        }
        return VolumeRender(color: outs[0], depth: outs[1], opacity: outs[2], weights: weights)
    }

    /// The VJP of ``render(densities:colors:depths:deltas:background:)`` (see the type's notes),
    /// from the forward's weights and opacities: no exponentials, since
    /// `T_{i+1} = T_S + Σ_{k>i} w_k` builds up in the reverse pass. `wanted` flags the inputs
    /// (densities, colors, depths, deltas, background) whose gradient is needed; the others are
    /// returned as `nil`.
    static func backward(densities: Tensor, colors: Tensor, depths: Tensor, deltas: Tensor, background: Tensor?,
                         weights: Tensor, opacity: Tensor, perRayBackground: Bool,
                         gColor: Tensor, gDepth: Tensor, gOpacity: Tensor, wanted: [Bool])
        -> (densities: Tensor?, colors: Tensor?, depths: Tensor?, deltas: Tensor?, background: Tensor?) {
        let r = densities.shape[0], s = densities.shape[1], c = colors.shape[2]
        func buffer(_ i: Int, _ shape: [Int]) -> Tensor? { wanted.count > i && wanted[i] ? Tensor(uninitializedShape: shape) : nil }
        let gSigma = buffer(0, [r, s]), gCol = buffer(1, [r, s, c]), gT = buffer(2, [r, s]), gDelta = buffer(3, [r, s])
        let gBgRays = background == nil ? nil : buffer(4, [r, c])
        let pSigma = densities.dataPointer, pCol = colors.dataPointer, pT = depths.dataPointer, pDelta = deltas.dataPointer
        let pW = weights.dataPointer, pAcc = opacity.dataPointer
        let pBg = background?.dataPointer, pgC = gColor.dataPointer, pgD = gDepth.dataPointer, pgA = gOpacity.dataPointer
        let oSigma = gSigma?.dataPointer, oCol = gCol?.dataPointer, oT = gT?.dataPointer, oDelta = gDelta?.dataPointer
        let oBg = gBgRays?.dataPointer
        forEachRayBlock(r) { rays in
            // Per-ray rows of v_i and ∂L/∂τ_i, which stay in L1. The reverse scan runs over them
            // alone, so every pass over the big arrays goes forward through memory: walking the
            // rows backwards defeated the hardware prefetcher and left the old single reverse
            // pass waiting on cache misses (perf: most of its samples on the colour loads).
            let vRow = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(s, 1))
            let tauRow = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(s, 1))
            defer { vRow.deallocate(); tauRow.deallocate() }
            for ray in rays {
                let base = ray * s
                let g = pgC + ray * c
                let w = pW + base
                let final = 1 - pAcc[ray]
                var bgTerm: Float = 0
                if let pBg {
                    let b = perRayBackground ? pBg + ray * c : pBg
                    for k in 0..<c { bgTerm += g[k] * b[k] }
                    if let oBg {
                        let gb = oBg + ray * c
                        for k in 0..<c { gb[k] = final * g[k] }
                    }
                }
                let gd = pgD[ray], constant = pgA[ray] - bgTerm
                let col = pCol + base * c, t = pT + base
                if c == 3 {
                    let g0 = g[0], g1 = g[1], g2 = g[2]
                    for i in 0..<s { vRow[i] = gd * t[i] + constant + g0 * col[3 * i] + g1 * col[3 * i + 1] + g2 * col[3 * i + 2] }
                } else {
                    for i in 0..<s {
                        var v = gd * t[i] + constant
                        for k in 0..<c { v += g[k] * col[i * c + k] }
                        vRow[i] = v
                    }
                }
                // Reverse scan: after = T_{i+1}, suffix = Σ_{k>i} w_k v_k.
                var suffix: Float = 0, after = final
                for i in stride(from: s - 1, through: 0, by: -1) {
                    let wi = w[i], v = vRow[i]
                    tauRow[i] = v * after - suffix
                    suffix += wi * v
                    after += wi
                }
                if let oSigma {
                    let sigma = pSigma + base, delta = pDelta + base, out = oSigma + base
                    for i in 0..<s { out[i] = sigma[i] >= 0 ? delta[i] * tauRow[i] : 0 }
                }
                if let oDelta {
                    let sigma = pSigma + base, out = oDelta + base
                    for i in 0..<s { out[i] = Swift.max(sigma[i], 0) * tauRow[i] }
                }
                if let oT {
                    let out = oT + base
                    for i in 0..<s { out[i] = w[i] * gd }
                }
                if let oCol {
                    let out = oCol + base * c
                    if c == 3 {
                        let g0 = g[0], g1 = g[1], g2 = g[2]
                        for i in 0..<s { out[3 * i] = w[i] * g0; out[3 * i + 1] = w[i] * g1; out[3 * i + 2] = w[i] * g2 }
                    } else {
                        for i in 0..<s { for k in 0..<c { out[i * c + k] = w[i] * g[k] } }
                    }
                }
            }
        }
        let gBg = gBgRays.map { perRayBackground ? $0 : $0.sum(axes: [0]) }
        return (gSigma, gCol, gT, gDelta, gBg)
    }

    /// Runs `body` over blocks of about 256 rays, handed out to the cores as they become free.
    /// Many small blocks instead of one half per core: on a shared machine one core is often
    /// busy with something else, and a static split then waits for its half.
    static func forEachRayBlock(_ count: Int, _ body: (Range<Int>) -> Void) {
        let blocks = Swift.min(Swift.max(1, count / 256), 16 * Threads.coreCount)
        if blocks <= 1 || Threads.coreCount <= 1 { if count > 0 { body(0..<count) }; return }
        DispatchQueue.concurrentPerform(iterations: blocks) { b in
            let lo = count * b / blocks, hi = count * (b + 1) / blocks
            if hi > lo { body(lo..<hi) }
        }
    }

    /// The same computation composed from engine ops (exp, exclusive cumulative sum, products,
    /// sums), the way framework code writes it and differentiated op by op. It is the baseline
    /// the fused kernel is measured against (`deform bench --only volume`) and a cross-check in
    /// the tests. Returns colour `[R, C]`, depth `[R]` and opacity `[R]`.
    public static func renderComposed(densities: Tensor, colors: Tensor, depths: Tensor, deltas: Tensor,
                                      background: Tensor? = nil) -> (color: Tensor, depth: Tensor, opacity: Tensor) {
        let tau = densities.relu() * deltas
        let weights = (-tau.cumsum(axis: 1, exclusive: true)).exp() * (1 - (-tau).exp())
        let opacity = weights.sum(axes: [1])
        var color = (weights.unsqueezed(-1) * colors).sum(axes: [1])
        if let background { color = color + (1 - opacity).unsqueezed(-1) * background }
        return (color, (weights * depths).sum(axes: [1]), opacity)
    }

    /// Interval lengths `δ_i = t_{i+1} - t_i` of sorted sample depths `[R, S]`, the last one
    /// `far` (NeRF uses 1e10, which makes the last sample opaque wherever it has density; pass the
    /// distance to the far bound to keep the background visible). Not differentiable.
    public static func intervals(_ depths: Tensor, far: Float = 1e10) -> Tensor {
        precondition(depths.rank == 2, "VolumeRendering.intervals: expected [R, S], found \(depths.shape)")
        let r = depths.shape[0], s = depths.shape[1]
        let out = Tensor(uninitializedShape: [r, s])
        let p = depths.dataPointer, o = out.dataPointer
        for ray in 0..<r {
            for i in 0..<s { o[ray * s + i] = i + 1 < s ? p[ray * s + i + 1] - p[ray * s + i] : far }
        }
        return out
    }
}
