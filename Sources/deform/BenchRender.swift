import DeformRender
import DeformTensor
import Foundation

struct VolumeRenderResult: Encodable {
    var rays: Int
    var samplesPerRay: Int
    var channels: Int
    /// Forward + backward (gradients w.r.t. densities and colours) of the fused kernel.
    var fusedRaysPerSecond: Double
    var fusedMilliseconds: Double
    /// Forward only (no gradient tracking) of the fused kernel and of the composed ops.
    var fusedForwardMilliseconds: Double
    var composedForwardMilliseconds: Double
    /// The same computation as composed engine ops (``VolumeRendering/renderComposed``).
    var composedRaysPerSecond: Double
    var composedMilliseconds: Double
    var speedup: Double
}

/// Volume rendering forward + backward, fused kernel against composed ops (issue target: 10x).
func benchVolumeRendering(rays: Int, samples: Int, repeats: Int) -> VolumeRenderResult {
    var rng = RandomGenerator(seed: 11)
    let sigma = rng.uniform([rays, samples], low: 0, high: 2).requiringGrad()
    let colors = rng.uniform([rays, samples, 3]).requiringGrad()
    let t = rng.uniform([rays, samples], low: 0.01, high: 0.05).cumsum(axis: 1) + 2
    let delta = VolumeRendering.intervals(t, far: 0.05)
    let background = Tensor([1, 1, 1] as [Float])
    var sink: Float = 0
    let fused = timings(repeats: repeats) {
        let out = try! VolumeRendering.render(densities: sigma, colors: colors, depths: t, deltas: delta, background: background)
        let g = grad(of: out.color.sum() + out.depth.sum() + out.opacity.sum(), wrt: [sigma, colors])
        sink += g[0].dataPointer[0] + g[1].dataPointer[0]
    }
    let composed = timings(repeats: repeats) {
        let out = VolumeRendering.renderComposed(densities: sigma, colors: colors, depths: t, deltas: delta, background: background)
        let g = grad(of: out.color.sum() + out.depth.sum() + out.opacity.sum(), wrt: [sigma, colors])
        sink += g[0].dataPointer[0] + g[1].dataPointer[0]
    }
    let fusedForward = timings(repeats: repeats) {
        sink += try! VolumeRendering.render(densities: sigma.detached(), colors: colors.detached(), depths: t, deltas: delta,
                                            background: background).color.dataPointer[0]
    }
    let composedForward = timings(repeats: repeats) {
        sink += VolumeRendering.renderComposed(densities: sigma.detached(), colors: colors.detached(), depths: t, deltas: delta,
                                               background: background).color.dataPointer[0]
    }
    if sink.isNaN { print(sink) }
    let f = median(fused), c = median(composed)
    return VolumeRenderResult(rays: rays, samplesPerRay: samples, channels: 3,
                              fusedRaysPerSecond: Double(rays) / f, fusedMilliseconds: f * 1e3,
                              fusedForwardMilliseconds: median(fusedForward) * 1e3,
                              composedForwardMilliseconds: median(composedForward) * 1e3,
                              composedRaysPerSecond: Double(rays) / c, composedMilliseconds: c * 1e3, speedup: c / f)
}
