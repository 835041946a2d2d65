import DeformRender
import DeformTensor
import Foundation

struct SplatBenchResult: Encodable {
    var gaussians: Int
    var width: Int
    var height: Int
    var shDegree: Int
    /// Gaussians left after culling, (tile, Gaussian) pairs composited, and the mean of each
    /// splat's projected standard deviation in pixels (what sets the cost).
    var visible: Int
    var tileEntries: Int
    var meanSigmaPixels: Double
    var forwardMilliseconds: Double
    /// Forward + backward (gradients w.r.t. means, scales, quaternions, opacities, SH colours).
    var forwardBackwardMilliseconds: Double
}

/// A random scene of `n` Gaussians filling the view of a 50° camera between depths 2 and 8,
/// anisotropic and rotated, with log-uniform sizes of about 0.3-3 px and SH colours of degree 3.
func benchSplatScene(_ n: Int, size: Int) -> (means: Tensor, scales: Tensor, quats: Tensor, opacities: Tensor, colors: Tensor, camera: PinholeCamera) {
    var rng = RandomGenerator(seed: 21)
    let z = rng.uniform([n, 1], low: 2, high: 8)
    let xy = rng.uniform([n, 2], low: -0.5, high: 0.5) * z
    let means = Tensor.concat([xy, z], axis: 1)
    let base = rng.uniform([n, 1], low: log(0.005), high: log(0.04))
    let scales = (base + rng.uniform([n, 3], low: -0.5, high: 0.5)).exp()
    let quats = rng.normal([n, 4])
    let opacities = rng.uniform([n], low: 0.05, high: 0.95)
    let colors = Tensor.concat([rng.uniform([n, 1, 3], low: -1, high: 1.5), rng.normal([n, 15, 3], std: 0.2)], axis: 1)
    let camera = try! PinholeCamera(width: size, height: size, verticalFieldOfView: 50)
    return (means, scales, quats, opacities, colors, camera)
}

func benchSplatting(gaussians n: Int, size: Int, repeats: Int) -> SplatBenchResult {
    let s = benchSplatScene(n, size: size)
    let params = [s.means, s.scales, s.quats, s.opacities, s.colors].map { $0.requiringGrad() }
    var rng = RandomGenerator(seed: 22)
    let weights = rng.uniform([size, size, 3])
    var sink: Float = 0
    var last: SplatRender? = nil
    let forward = timings(repeats: repeats) {
        let out = try! GaussianSplatting.render(means: s.means, scales: s.scales, quaternions: s.quats, opacities: s.opacities,
                                                colors: s.colors, camera: s.camera)
        sink += out.image.dataPointer[0]
        last = out
    }
    let both = timings(repeats: repeats) {
        let out = try! GaussianSplatting.render(means: params[0], scales: params[1], quaternions: params[2], opacities: params[3],
                                                colors: params[4], camera: s.camera)
        let g = grad(of: (out.image * weights).sum() + out.alpha.sum(), wrt: params)
        sink += g[0].dataPointer[0]
    }
    if sink.isNaN { print(sink) }
    // Projected size: f · mean scale / depth.
    let f = Double(s.camera.fy)
    let sc = s.scales.scalars, zs = s.means.scalars
    var sigmaSum = 0.0
    for i in 0..<n {
        let meanScale = Double(sc[3 * i] + sc[3 * i + 1] + sc[3 * i + 2]) / 3
        sigmaSum += f * meanScale / Double(zs[3 * i + 2])
    }
    let meanSigma = sigmaSum / Double(n)
    return SplatBenchResult(gaussians: n, width: size, height: size, shDegree: 3, visible: last?.visibleCount ?? 0,
                            tileEntries: last?.tileEntries ?? 0, meanSigmaPixels: meanSigma,
                            forwardMilliseconds: median(forward) * 1e3, forwardBackwardMilliseconds: median(both) * 1e3)
}
