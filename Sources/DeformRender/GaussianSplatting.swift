import DeformTensor
import Foundation

/// Settings of ``GaussianSplatting/render(means:scales:quaternions:opacities:colors:camera:options:)``.
/// The defaults are those of 3D Gaussian Splatting (Kerbl et al. 2023) and gsplat.
public struct SplatOptions: Sendable, Equatable {
    /// Colour behind everything, added with the remaining transmittance.
    public var background: SIMD3<Float> = .zero
    /// Gaussians whose mean is nearer than this (camera depth) are culled, as are those farther
    /// than ``far`` — in particular every Gaussian behind the camera.
    public var near: Float = 0.01
    public var far: Float = 1e10
    /// Added to the diagonal of every 2D covariance (pixels²): the low-pass filter that keeps
    /// each splat at least about a pixel wide.
    public var blur: Float = 0.3
    /// A Gaussian adds nothing to a pixel where its alpha is below this (1/255 in 3DGS). Its
    /// footprint is exactly the region where alpha reaches this value, so 0 means "everywhere"
    /// (smooth in every parameter; slow; used by gradient checks).
    public var minAlpha: Float = 1.0 / 255
    /// Alpha is clamped at this value (so transmittance never reaches 0 and the backward can
    /// divide by 1 - α).
    public var maxAlpha: Float = 0.99
    /// A pixel stops compositing before the Gaussian that would take its transmittance below
    /// this.
    public var minTransmittance: Float = 1e-4

    public init(background: SIMD3<Float> = .zero) { self.background = background }
}

/// The outputs of ``GaussianSplatting/render(means:scales:quaternions:opacities:colors:camera:options:)``.
public struct SplatRender {
    /// Colour `[H, W, 3]`: `Σ_k c_k α_k T_k + T bg`.
    public var image: Tensor
    /// Accumulated depth `[H, W]`: `Σ_k z_k α_k T_k` (divide by ``alpha`` for the expected depth
    /// of what is visible).
    public var depth: Tensor
    /// Opacity `[H, W]`: `1 - T`.
    public var alpha: Tensor
    /// How many Gaussians survived culling, and how many (tile, Gaussian) pairs were composited.
    public var visibleCount: Int
    public var tileEntries: Int
}

/// Differentiable rendering of 3D Gaussians on the CPU, with the semantics of 3DGS's
/// rasteriser: EWA projection with a pinhole camera (Jacobian of the perspective map, 0.3 px²
/// low-pass), view-dependent colour from spherical harmonics up to degree 3, binning into 16×16
/// tiles in depth order, and front-to-back alpha compositing with α = min(0.99, o·G) skipped
/// below 1/255 and stopped when transmittance would fall below 1e-4.
///
/// One fused op with a hand-written backward (the reverse pass rebuilds transmittance from its
/// final value, as gsplat does), giving gradients with respect to every Gaussian parameter. Tiles
/// are composited on all cores; the gradient is summed over tiles in a fixed order, so it does
/// not depend on the number of threads.
public enum GaussianSplatting {
    /// Renders N Gaussians seen by `camera`.
    ///
    /// - Parameters:
    ///   - means: `[N, 3]` world positions.
    ///   - scales: `[N, 3]` standard deviations along the Gaussian's axes, or `[N, 1]` for
    ///     isotropic Gaussians (ExAvatar's mode; rotations are then irrelevant). Must be positive:
    ///     apply `exp` to log-scales before.
    ///   - quaternions: `[N, 4]` rotations (w, x, y, z), normalised here; `nil` for axis-aligned
    ///     (or isotropic) Gaussians.
    ///   - opacities: `[N]` in [0, 1] (apply a sigmoid to logits before).
    ///   - colors: `[N, 3]` RGB, or `[N, K, 3]` spherical-harmonic coefficients with K = 1, 4, 9 or
    ///     16 (degree 0-3, 3DGS's order: `f_dc` then `f_rest`); the colour is then
    ///     `max(0, Σ_k Y_k(d) c_k + 0.5)` for the unit direction d from the camera to the mean.
    ///   - camera: a pinhole camera with positive focal lengths.
    /// - Returns: image, accumulated depth and opacity, differentiable with respect to means,
    ///   scales, quaternions, opacities and colours.
    /// - Throws: ``TensorError`` for mismatched shapes, NaN or infinite values, non-positive
    ///   scales, opacities outside [0, 1], zero quaternions, a camera with a non-positive focal
    ///   length, or inconsistent options.
    public static func render(means: Tensor, scales: Tensor, quaternions: Tensor? = nil, opacities: Tensor,
                              colors: Tensor, camera: PinholeCamera, options: SplatOptions = SplatOptions()) throws -> SplatRender {
        let op = "GaussianSplatting.render"
        guard means.rank == 2, means.shape[1] == 3 else {
            throw TensorError.shapeMismatch(op: op, expected: "means [N, 3]", found: "\(means.shape)")
        }
        let n = means.shape[0]
        guard scales.shape == [n, 3] || scales.shape == [n, 1] else {
            throw TensorError.shapeMismatch(op: op, expected: "scales [\(n), 3] or [\(n), 1]", found: "\(scales.shape)")
        }
        if let quaternions, quaternions.shape != [n, 4] {
            throw TensorError.shapeMismatch(op: op, expected: "quaternions [\(n), 4]", found: "\(quaternions.shape)")
        }
        guard opacities.shape == [n] || opacities.shape == [n, 1] else {
            throw TensorError.shapeMismatch(op: op, expected: "opacities [\(n)]", found: "\(opacities.shape)")
        }
        let isSH = colors.rank == 3
        let shCount = isSH ? colors.shape[1] : 1
        guard (colors.rank == 2 && colors.shape == [n, 3]) || (isSH && colors.shape[0] == n && colors.shape[2] == 3 && [1, 4, 9, 16].contains(shCount)) else {
            throw TensorError.shapeMismatch(op: op, expected: "colors [\(n), 3] (RGB) or [\(n), K, 3] with K = 1, 4, 9 or 16 (spherical harmonics)", found: "\(colors.shape)")
        }
        var named = [("means", means), ("scales", scales), ("opacities", opacities), ("colors", colors)]
        if let quaternions { named.append(("quaternions", quaternions)) }
        for (name, t) in named where !t.isFinite {
            throw TensorError.nonFinite(op: op, message: "\(name) contains NaN or infinity")
        }
        if let bad = scales.scalars.firstIndex(where: { $0 <= 0 }) {
            throw TensorError.invalidArgument(op: op, message: "scales must be positive (apply exp to log-scales); Gaussian \(bad / scales.shape[1]) has \(scales.scalars[bad])")
        }
        if let bad = opacities.scalars.firstIndex(where: { $0 < 0 || $0 > 1 }) {
            throw TensorError.invalidArgument(op: op, message: "opacities must be in [0, 1] (apply a sigmoid to logits); Gaussian \(bad) has \(opacities.scalars[bad])")
        }
        if let quaternions {
            let q = quaternions.scalars
            if let bad = (0..<n).first(where: { i in (0..<4).allSatisfy { q[4 * i + $0] == 0 } }) {
                throw TensorError.invalidArgument(op: op, message: "quaternion of Gaussian \(bad) is zero")
            }
        }
        guard camera.fx > 0, camera.fy > 0 else {
            throw TensorError.invalidArgument(op: op, message: "the camera's focal lengths must be positive, got fx \(camera.fx), fy \(camera.fy)")
        }
        guard options.near > 0, options.far > options.near, options.blur >= 0, options.minAlpha >= 0,
              options.maxAlpha > options.minAlpha, options.maxAlpha < 1,
              options.minTransmittance >= 0, options.minTransmittance < 1,
              (0..<3).allSatisfy({ options.background[$0].isFinite }) else {
            throw TensorError.invalidArgument(op: op, message: "inconsistent options \(options): need 0 < near < far, blur ≥ 0, 0 ≤ minAlpha < maxAlpha < 1, 0 ≤ minTransmittance < 1, a finite background")
        }

        let cam = SplatCamera(camera)
        let limits = SplatLimits(near: options.near, far: options.far, blur: options.blur, minAlpha: options.minAlpha)
        let rules = CompositingRules(minAlpha: options.minAlpha, maxAlpha: options.maxAlpha, minTransmittance: options.minTransmittance)
        let (w, h) = (camera.width, camera.height)
        let inputs = SplatInputs(means: means.dataPointer, scales: scales.dataPointer, scaleStride: scales.shape[1],
                                 quaternions: quaternions.map { UnsafePointer($0.dataPointer) },
                                 opacities: opacities.dataPointer, colors: colors.dataPointer, shCount: shCount, isSH: isSH)
        var projected = [ProjectedSplat](repeating: ProjectedSplat(), count: n)
        projected.withUnsafeMutableBufferPointer { out in
            Threads.parallelRanges(n, minChunk: 2048) { range in
                for i in range { out[i] = SplatProjection.forward(i, inputs, cam, limits) }
            }
        }
        let bins = projected.withUnsafeBufferPointer { TileBins($0.baseAddress!, count: n, width: w, height: h) }
        let image = Tensor(uninitializedShape: [h, w, 3]), depth = Tensor(uninitializedShape: [h, w])
        let alpha = Tensor(uninitializedShape: [h, w])
        var finalT = [Float](repeating: 0, count: w * h)
        var stops = [Int32](repeating: 0, count: w * h)
        projected.withUnsafeBufferPointer { splats in
            finalT.withUnsafeMutableBufferPointer { tBuf in
                stops.withUnsafeMutableBufferPointer { sBuf in
                    TileCompositor.forward(splats.baseAddress!, bins: bins, width: w, height: h, rules: rules,
                                           background: options.background, image: image.dataPointer, depth: depth.dataPointer,
                                           alpha: alpha.dataPointer, finalT: tBuf.baseAddress!, stops: sBuf.baseAddress!)
                }
            }
        }
        let visibleCount = projected.reduce(0) { $0 + ($1.visible ? 1 : 0) }
        var diffInputs = [means, scales]
        if let quaternions { diffInputs.append(quaternions) }
        diffInputs += [opacities, colors]
        let hasQuaternions = quaternions != nil
        let saved = (means.detached(), scales.detached(), quaternions?.detached(), opacities.detached(), colors.detached())
        let outs = Tensor.recordMulti("gaussianSplatting", outputs: [image, depth, alpha], inputs: diffInputs) { cots in
            let gImage = cots[0] ?? Tensor.zeros([h, w, 3]), gDepth = cots[1] ?? Tensor.zeros([h, w])
            let gAlpha = cots[2] ?? Tensor.zeros([h, w])
            let (m, s, q, o, c) = saved
            let input = SplatInputs(means: m.dataPointer, scales: s.dataPointer, scaleStride: s.shape[1],
                                    quaternions: q.map { UnsafePointer($0.dataPointer) },
                                    opacities: o.dataPointer, colors: c.dataPointer, shCount: shCount, isSH: isSH)
            // 1. Per (tile, Gaussian) gradients of the projected quantities.
            let entryCount = bins.entries.count
            let entryGrads = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(10 * entryCount, 1))
            defer { entryGrads.deallocate() }
            projected.withUnsafeBufferPointer { splats in
                TileCompositor.backward(splats.baseAddress!, bins: bins, width: w, height: h, rules: rules,
                                        background: options.background, finalT: finalT, stops: stops,
                                        gImage: gImage.dataPointer, gDepth: gDepth.dataPointer, gAlpha: gAlpha.dataPointer,
                                        entryGrads: entryGrads)
            }
            // 2. Summed per Gaussian, tile by tile in a fixed order.
            var perSplat = [Float](repeating: 0, count: 10 * n)
            perSplat.withUnsafeMutableBufferPointer { acc in
                for e in 0..<entryCount {
                    let base = 10 * Int(bins.entries[e])
                    for k in 0..<10 { acc[base + k] += entryGrads[10 * e + k] }
                }
            }
            // 3. Through the projection and the colour model.
            let gMeans = Tensor.zeros(m.shape), gScales = Tensor.zeros(s.shape), gOpacities = Tensor.zeros(o.shape)
            let gColors = Tensor.zeros(c.shape)
            let gQuats = q.map { Tensor.zeros($0.shape) }
            perSplat.withUnsafeBufferPointer { g in
                let gq = gQuats?.dataPointer
                Threads.parallelRanges(n, minChunk: 2048) { range in
                    for i in range where projected[i].visible {
                        SplatProjection.backward(i, input, cam, limits, g.baseAddress! + 10 * i,
                                                 gMeans: gMeans.dataPointer, gScales: gScales.dataPointer, gQuats: gq,
                                                 gOpacities: gOpacities.dataPointer, gColors: gColors.dataPointer)
                    }
                }
            }
            var result: [Tensor?] = [gMeans, gScales]
            if hasQuaternions { result.append(gQuats) }
            return result + [gOpacities, gColors]
        }
        return SplatRender(image: outs[0], depth: outs[1], alpha: outs[2], visibleCount: visibleCount,
                           tileEntries: bins.entries.count)
    }
}
