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
    func fusedStep() {
        let out = try! VolumeRendering.render(densities: sigma, colors: colors, depths: t, deltas: delta, background: background)
        let g = grad(of: out.color.sum() + out.depth.sum() + out.opacity.sum(), wrt: [sigma, colors])
        sink += g[0].dataPointer[0] + g[1].dataPointer[0]
    }
    func composedStep() {
        let out = VolumeRendering.renderComposed(densities: sigma, colors: colors, depths: t, deltas: delta, background: background)
        let g = grad(of: out.color.sum() + out.depth.sum() + out.opacity.sum(), wrt: [sigma, colors])
        sink += g[0].dataPointer[0] + g[1].dataPointer[0]
    }
    func fusedForwardStep() {
        sink += try! VolumeRendering.render(densities: sigma.detached(), colors: colors.detached(), depths: t, deltas: delta,
                                            background: background).color.dataPointer[0]
    }
    func composedForwardStep() {
        sink += VolumeRendering.renderComposed(densities: sigma.detached(), colors: colors.detached(), depths: t, deltas: delta,
                                               background: background).color.dataPointer[0]
    }
    // Fused and composed runs alternate, so that load from other processes on a shared machine
    // (which comes and goes over seconds) falls on both alike and the ratio stays meaningful.
    var fused: [Double] = [], composed: [Double] = [], fusedForward: [Double] = [], composedForward: [Double] = []
    fusedStep(); composedStep(); fusedForwardStep(); composedForwardStep()
    for _ in 0..<repeats {
        fused += timings(repeats: 1, warmup: 0, fusedStep)
        composed += timings(repeats: 1, warmup: 0, composedStep)
        fusedForward += timings(repeats: 1, warmup: 0, fusedForwardStep)
        composedForward += timings(repeats: 1, warmup: 0, composedForwardStep)
    }
    if sink.isNaN { print(sink) }
    let f = median(fused), c = median(composed)
    return VolumeRenderResult(rays: rays, samplesPerRay: samples, channels: 3,
                              fusedRaysPerSecond: Double(rays) / f, fusedMilliseconds: f * 1e3,
                              fusedForwardMilliseconds: median(fusedForward) * 1e3,
                              composedForwardMilliseconds: median(composedForward) * 1e3,
                              composedRaysPerSecond: Double(rays) / c, composedMilliseconds: c * 1e3, speedup: c / f)
}

struct RasterBenchResult: Encodable {
    var triangles: Int
    var vertices: Int
    var width: Int
    var height: Int
    /// Pixels a face covers (the sphere's disc).
    var coveredPixels: Int
    /// `MeshRasterizer.rasterize` alone (z-buffer, face ids, barycentrics, depth), median.
    var rasterizeMilliseconds: Double
    /// Rasterise + interpolate RGB attributes, no gradient tracking, median and best.
    var forwardMilliseconds: Double
    var forwardMillisecondsBest: Double
    /// `MeshRasterizer.render` forward + backward (gradients w.r.t. screen vertices and
    /// attributes), median.
    var forwardBackwardMilliseconds: Double
}

/// A UV sphere of `rings` x `segments` quads (two triangles each) of radius 1, 3 units in front of
/// a 512-pixel camera, so it fills most of the frame; both hemispheres are drawn (no culling), so
/// every covered pixel is drawn about twice.
func benchSphere(rings: Int, segments: Int, size: Int) -> (vertices: Tensor, faces: [Int32], colors: Tensor) {
    var points: [Float] = [], colors: [Float] = []
    let f = Float(size) * 0.95, c = Float(size) / 2
    for r in 0...rings {
        let theta = Float.pi * Float(r) / Float(rings)
        for s in 0..<segments {
            let phi = 2 * Float.pi * Float(s) / Float(segments)
            let x = sin(theta) * cos(phi), y = cos(theta), z = 3 + sin(theta) * sin(phi)
            points += [f * x / z + c, f * y / z + c, z]
            colors += [0.5 + 0.5 * x, 0.5 + 0.5 * y, 0.5 + 0.5 * sin(theta) * sin(phi)]
        }
    }
    var faces: [Int32] = []
    for r in 0..<rings {
        for s in 0..<segments {
            let a = Int32(r * segments + s), b = Int32(r * segments + (s + 1) % segments)
            let cc = a + Int32(segments), d = b + Int32(segments)
            // Skip the degenerate halves of the pole quads.
            if r > 0 { faces += [a, b, d] }
            if r < rings - 1 { faces += [a, d, cc] }
        }
    }
    return (Tensor(points, shape: [points.count / 3, 3]), faces, Tensor(colors, shape: [colors.count / 3, 3]))
}

/// Mesh rasterisation of a ~20k-triangle sphere at 512x512 (issue target: under 20 ms forward).
func benchRaster(size: Int, rings: Int, segments: Int, repeats: Int) -> RasterBenchResult {
    let (v, faces, colors) = benchSphere(rings: rings, segments: segments, size: size)
    var sink: Float = 0
    var covered = 0
    let raster = timings(repeats: repeats) {
        let fr = try! MeshRasterizer.rasterize(screenVertices: v, faces: faces, width: size, height: size)
        covered = fr.faceIndex.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) }
    }
    let forward = timings(repeats: repeats) {
        let fr = try! MeshRasterizer.rasterize(screenVertices: v, faces: faces, width: size, height: size)
        sink += try! MeshRasterizer.interpolate(attributes: colors, fragments: fr, faces: faces).dataPointer[0]
    }
    let vt = v.requiringGrad(), ct = colors.requiringGrad()
    let both = timings(repeats: repeats) {
        let out = try! MeshRasterizer.render(screenVertices: vt, faces: faces, attributes: ct, width: size, height: size)
        let g = grad(of: out.image.sum() + out.depth.sum(), wrt: [vt, ct])
        sink += g[0].dataPointer[0] + g[1].dataPointer[0]
    }
    if sink.isNaN { print(sink) }
    return RasterBenchResult(triangles: faces.count / 3, vertices: v.shape[0], width: size, height: size, coveredPixels: covered,
                             rasterizeMilliseconds: median(raster) * 1e3,
                             forwardMilliseconds: median(forward) * 1e3, forwardMillisecondsBest: forward.min()! * 1e3,
                             forwardBackwardMilliseconds: median(both) * 1e3)
}
