import Testing
import Foundation
@testable import DeformRender
import DeformTensor

/// Plain-loop volume rendering in Double (the reference the fused kernel is checked against).
private func referenceRender(_ sigma: [Float], _ colors: [Float], _ t: [Float], _ delta: [Float], _ bg: [Float]?,
                             rays r: Int, samples s: Int, channels c: Int, perRay: Bool) -> (color: [Double], depth: [Double], opacity: [Double]) {
    var color = [Double](repeating: 0, count: r * c), depth = [Double](repeating: 0, count: r), opacity = [Double](repeating: 0, count: r)
    for ray in 0..<r {
        var logT = 0.0
        for i in 0..<s {
            let tau = Double(max(sigma[ray * s + i], 0)) * Double(delta[ray * s + i])
            let w = exp(-logT) * (1 - exp(-tau))
            for k in 0..<c { color[ray * c + k] += w * Double(colors[(ray * s + i) * c + k]) }
            depth[ray] += w * Double(t[ray * s + i])
            opacity[ray] += w
            logT += tau
        }
        if let bg { for k in 0..<c { color[ray * c + k] += exp(-logT) * Double(bg[perRay ? ray * c + k : k]) } }
    }
    return (color, depth, opacity)
}

private func randomInputs(rays r: Int, samples s: Int, channels c: Int, seed: UInt64) -> (Tensor, Tensor, Tensor, Tensor) {
    var rng = RandomGenerator(seed: seed)
    let sigma = rng.uniform([r, s], low: 0, high: 3)
    let colors = rng.uniform([r, s, c])
    let t = rng.uniform([r, s], low: 0, high: 0.3).cumsum(axis: 1) + 1
    let delta = rng.uniform([r, s], low: 0.05, high: 0.3)
    return (sigma, colors, t, delta)
}

@Suite struct VolumeRenderingTests {
    @Test(arguments: [0, 1, 2])
    func fusedKernelMatchesPlainLoops(backgroundKind: Int) throws {
        let r = 37, s = 19, c = 3
        let (sigma, colors, t, delta) = randomInputs(rays: r, samples: s, channels: c, seed: 1)
        var rng = RandomGenerator(seed: 2)
        let bg: Tensor? = backgroundKind == 0 ? nil : backgroundKind == 1 ? rng.uniform([c]) : rng.uniform([r, c])
        // A few negative densities: clamped to 0.
        var sigmaNeg = sigma
        sigmaNeg.withUnsafeMutableBufferPointer { $0[3] = -1; $0[40] = -0.5 }
        let out = try VolumeRendering.render(densities: sigmaNeg, colors: colors, depths: t, deltas: delta, background: bg)
        let ref = referenceRender(sigmaNeg.scalars, colors.scalars, t.scalars, delta.scalars, bg?.scalars,
                                  rays: r, samples: s, channels: c, perRay: backgroundKind == 2)
        func maxDiff(_ a: Tensor, _ b: [Double]) -> Double { zip(a.scalars, b).map { abs(Double($0) - $1) }.max()! }
        #expect(maxDiff(out.color, ref.color) < 1e-5)
        #expect(maxDiff(out.depth, ref.depth) < 1e-4)
        #expect(maxDiff(out.opacity, ref.opacity) < 1e-5)
        // Weights sum to the opacity.
        #expect(out.weights.sum(axes: [1]).allClose(out.opacity, rtol: 1e-5, atol: 1e-6))
        // The composed version agrees too.
        let (cc, cd, co) = VolumeRendering.renderComposed(densities: sigmaNeg, colors: colors, depths: t, deltas: delta, background: bg)
        #expect(cc.allClose(out.color, rtol: 1e-4, atol: 1e-5) && cd.allClose(out.depth, rtol: 1e-4, atol: 1e-4) && co.allClose(out.opacity, rtol: 1e-4, atol: 1e-5))
    }

    /// A constant-density slab of thickness L: opacity 1 - exp(-σL) for any sampling of it (the
    /// quadrature is exact for piecewise-constant density), and with a constant colour the colour
    /// is that colour times the opacity plus the background times the transmittance.
    @Test func constantDensitySlabHasAnalyticOpacity() throws {
        let sigma: Float = 0.7, length: Float = 2
        for s in [1, 7, 64] {
            let edges = (0...s).map { length * Float($0) / Float(s) }
            let t = Tensor((0..<s).map { (edges[$0] + edges[$0 + 1]) / 2 }, shape: [1, s])
            let delta = Tensor((0..<s).map { edges[$0 + 1] - edges[$0] }, shape: [1, s])
            let colour = Tensor([0.2, 0.5, 0.9] as [Float])
            let out = try VolumeRendering.render(densities: Tensor.full([1, s], sigma), colors: colour.reshaped([1, 1, 3]).expanded(to: [1, s, 3]),
                                                 depths: t, deltas: delta, background: Tensor([1, 1, 1] as [Float]))
            let expected = 1 - exp(-sigma * length)
            #expect(abs(out.opacity.item - expected) < 1e-6)
            for k in 0..<3 {
                #expect(abs(out.color.scalars[k] - (colour.scalars[k] * expected + (1 - expected))) < 1e-6)
            }
        }
        // Expected depth of a semi-infinite slab starting at d: with fine sampling it tends to d + 1/σ.
        let s = 4000, d: Float = 1
        let t = Tensor((0..<s).map { d + (Float($0) + 0.5) * 0.01 }, shape: [1, s])
        let out = try VolumeRendering.render(densities: Tensor.full([1, s], sigma), colors: Tensor.zeros([1, s, 1]),
                                             depths: t, deltas: Tensor.full([1, s], 0.01))
        #expect(abs(out.depth.item / out.opacity.item - (d + 1 / sigma)) < 2e-3)
    }

    @Test(arguments: [0, 1, 2])
    func gradientsMatchFiniteDifferences(backgroundKind: Int) throws {
        let r = 3, s = 5, c = 2
        let (sigma, colors, t, delta) = randomInputs(rays: r, samples: s, channels: c, seed: 5)
        var rng = RandomGenerator(seed: 6)
        var inputs = [sigma, colors, t, delta]
        if backgroundKind == 1 { inputs.append(rng.uniform([c])) }
        if backgroundKind == 2 { inputs.append(rng.uniform([r, c])) }
        // One function of all three outputs, so every cotangent is exercised.
        let result = GradientCheck.check(inputs, step: 1e-3, atol: 1e-3, rtol: 1e-2) { xs in
            let out = try! VolumeRendering.render(densities: xs[0], colors: xs[1], depths: xs[2], deltas: xs[3],
                                                  background: xs.count > 4 ? xs[4] : nil)
            return Tensor.concat([out.color, out.depth.unsqueezed(-1), (out.opacity * 3).unsqueezed(-1)], axis: 1)
        }
        #expect(result.passed, "\(result)")
    }

    @Test func cumsumAndItsGradient() {
        let x = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
        #expect(x.cumsum(axis: 1).scalars == [1, 3, 6, 4, 9, 15])
        #expect(x.cumsum(axis: 1, exclusive: true).scalars == [0, 1, 3, 0, 4, 9])
        #expect(x.cumsum(axis: 0).scalars == [1, 2, 3, 5, 7, 9])
        var rng = RandomGenerator(seed: 3)
        let y = rng.normal([3, 4, 2])
        for axis in 0..<3 {
            for exclusive in [false, true] {
                let r = GradientCheck.check([y]) { $0[0].cumsum(axis: axis, exclusive: exclusive).square() }
                #expect(r.passed, "axis \(axis) exclusive \(exclusive): \(r)")
            }
        }
    }

    @Test func badInputIsRefused() {
        let (sigma, colors, t, delta) = randomInputs(rays: 4, samples: 3, channels: 3, seed: 9)
        var nan = sigma
        nan.withUnsafeMutableBufferPointer { $0[2] = .nan }
        #expect(throws: TensorError.self) { try VolumeRendering.render(densities: nan, colors: colors, depths: t, deltas: delta) }
        #expect(throws: TensorError.self) { try VolumeRendering.render(densities: sigma, colors: colors, depths: t, deltas: delta.reshaped([3, 4])) }
        #expect(throws: TensorError.self) {
            try VolumeRendering.render(densities: sigma, colors: colors, depths: t, deltas: delta, background: Tensor.zeros([2]))
        }
    }

    /// The kernel checks its outputs (and a per-ray probe of σ δ) instead of scanning the inputs
    /// first; every kind of non-finite input must still be refused and named, including those
    /// that would give a finite image (σ = +∞ is clamped by exp into an opaque sample; a colour
    /// behind an opaque sample has weight 0), and finite input that merely overflows the probe
    /// must not be refused.
    @Test func nonFiniteInputIsNamedEvenWhereItWouldNotShow() throws {
        let (sigma, colors, t, delta) = randomInputs(rays: 4, samples: 3, channels: 3, seed: 9)
        let bg = Tensor([0.5, 0.5, 0.5] as [Float])
        func poisoned(_ x: Tensor, _ index: Int, _ value: Float) -> Tensor {
            var y = x
            y.withUnsafeMutableBufferPointer { $0[index] = value }
            return y
        }
        // An opaque first sample on ray 0, so later colours there have weight 0.
        let opaque = poisoned(sigma, 0, 1e6)
        let cases: [(String, Tensor, Tensor, Tensor, Tensor, Tensor)] = [
            ("densities", poisoned(sigma, 4, .infinity), colors, t, delta, bg),
            ("densities", poisoned(sigma, 4, -.infinity), colors, t, delta, bg),
            ("densities", poisoned(sigma, 4, .nan), colors, t, delta, bg),
            ("colors", opaque, poisoned(colors, 7, .infinity), t, delta, bg),
            ("colors", opaque, poisoned(colors, 7, .nan), t, delta, bg),
            ("depths", opaque, colors, poisoned(t, 2, .nan), delta, bg),
            ("deltas", sigma, colors, t, poisoned(delta, 5, .infinity), bg),
            ("deltas", poisoned(sigma, 5, 0), colors, t, poisoned(delta, 5, .infinity), bg),
            ("background", sigma, colors, t, delta, poisoned(bg, 1, .nan)),
        ]
        for (name, s, c, d, dl, b) in cases {
            do {
                _ = try VolumeRendering.render(densities: s, colors: c, depths: d, deltas: dl, background: b)
                Issue.record("accepted non-finite \(name)")
            } catch let error as TensorError {
                #expect("\(error)".contains(name), "\(error)")
            }
        }
        // σ δ overflows Float but every input is finite: rendered, fully opaque on that sample.
        let huge = try VolumeRendering.render(densities: poisoned(sigma, 0, 3e38), colors: colors, depths: t,
                                              deltas: poisoned(delta, 0, 100), background: bg)
        #expect(abs(huge.opacity[0] - 1) < 1e-6 && huge.color.isFinite)
    }
}

@Suite struct RaySamplingTests {
    @Test func stratifiedSamplesStayInTheirBins() throws {
        let near = Tensor([1, 2] as [Float]), far = Tensor([3, 6] as [Float])
        var none: RandomGenerator? = nil
        let mid = try VolumeRendering.stratifiedSamples(near: near, far: far, count: 4, rng: &none)
        #expect(mid.allClose(Tensor([1.25, 1.75, 2.25, 2.75, 2.5, 3.5, 4.5, 5.5] as [Float], shape: [2, 4])))
        var rng: RandomGenerator? = RandomGenerator(seed: 1)
        let a = try VolumeRendering.stratifiedSamples(near: near, far: far, count: 4, rng: &rng)
        let b = try VolumeRendering.stratifiedSamples(near: near, far: far, count: 4, rng: &rng)
        #expect(!a.allClose(b))   // the generator advanced
        for (ray, (lo, hi)) in [(1, 3), (2, 6)].enumerated() {
            let width = Float(hi - lo) / 4
            for i in 0..<4 {
                let v = a.scalars[ray * 4 + i]
                #expect(v >= Float(lo) + Float(i) * width && v <= Float(lo) + Float(i + 1) * width)
            }
        }
    }

    @Test func importanceSamplesFollowTheWeights() throws {
        let edges = Tensor([0, 1, 2, 3, 4] as [Float], shape: [1, 5])
        var none: RandomGenerator? = nil
        // All the weight in bin 2: every sample lands in [2, 3].
        let inBin = try VolumeRendering.importanceSamples(edges: edges, weights: Tensor([0, 0, 5, 0] as [Float], shape: [1, 4]), count: 32, rng: &none)
        #expect(inBin.scalars.allSatisfy { $0 >= 2 && $0 <= 3 })
        // Weights 1:3 over two bins: a quarter of the quantiles in the first.
        let edges2 = Tensor([0, 1, 2] as [Float], shape: [1, 3])
        var rng: RandomGenerator? = RandomGenerator(seed: 4)
        let drawn = try VolumeRendering.importanceSamples(edges: edges2, weights: Tensor([1, 3] as [Float], shape: [1, 2]), count: 4000, rng: &rng)
        let first = Float(drawn.scalars.filter { $0 < 1 }.count) / 4000
        #expect(abs(first - 0.25) < 0.03, "fraction in the first bin \(first)")
        #expect(zip(drawn.scalars, drawn.scalars.dropFirst()).allSatisfy { $0 <= $1 })
        let merged = VolumeRendering.mergeSorted(Tensor([0, 2, 4] as [Float], shape: [1, 3]), Tensor([1, 3] as [Float], shape: [1, 2]))
        #expect(merged.scalars == [0, 1, 2, 3, 4])
    }
}

@Suite struct RayTests {
    private func camera() throws -> PinholeCamera {
        // A camera at (1, 2, -3) rotated 30° about y.
        let a = Float.pi / 6
        let pose: [Float] = [cos(a), 0, sin(a), 1, 0, 1, 0, 2, -sin(a), 0, cos(a), -3]
        return try PinholeCamera(width: 8, height: 6, fx: 7, fy: 6.5, cx: 4.2, cy: 2.9, cameraToWorld: pose)
    }

    @Test func raysReprojectOntoTheirPixels() throws {
        let cam = try camera()
        let rays = cam.rays()
        #expect(rays.count == 48)
        let t = Tensor.full([48, 1], 2.5)
        let points = rays.points(at: t).reshaped([48, 3])
        let (pixels, depth) = cam.project(points)
        #expect(pixels.allClose(cam.pixelCenters(Array(0..<48)), rtol: 1e-5, atol: 1e-4))
        // Directions have camera-z 1, so t is the depth.
        #expect(depth.allClose(Tensor.full([48], 2.5), rtol: 1e-5, atol: 1e-5))
        // Through the principal point the ray is the optical axis (the third column of R).
        let axis = cam.rays(through: Tensor([cam.cx, cam.cy] as [Float], shape: [1, 2])).directions.scalars
        #expect(zip(axis, [sin(Float.pi / 6), 0, cos(Float.pi / 6)]).allSatisfy { abs($0 - $1) < 1e-6 })
    }

    @Test func openGLPoseRoundTripAndConvention() throws {
        let cam = try camera()
        let gl = cam.openGLCameraToWorld
        let back = try PinholeCamera(width: 8, height: 6, fx: 7, fy: 6.5, cx: 4.2, cy: 2.9, openGLCameraToWorld: gl)
        #expect(back == cam)
        // In OpenGL axes the camera looks down its -z: the third column is minus the viewing direction.
        #expect(abs(gl[2] + sin(Float.pi / 6)) < 1e-6 && abs(gl[10] + cos(Float.pi / 6)) < 1e-6)
    }

    @Test func boxIntersection() {
        let rays = RayBundle(origins: Tensor([0, 0, -5, 0, 3, -5, 0, 0, 0] as [Float], shape: [3, 3]),
                             directions: Tensor([0, 0, 1, 0, 0, 1, 1, 0, 0] as [Float], shape: [3, 3]))
        let (near, far, hit) = rays.intersectBox(min: [-1, -1, -1], max: [1, 1, 1])
        #expect(hit == [true, false, true])
        #expect(near.scalars[0] == 4 && far.scalars[0] == 6)
        #expect(near.scalars[2] == 0 && far.scalars[2] == 1)   // starts inside: near clamped to 0
    }

    @Test func ndcRaysAreStraightSegments() throws {
        let cam = try PinholeCamera(width: 40, height: 30, verticalFieldOfView: 50)
        var rng = RandomGenerator(seed: 2)
        let (rays, _) = cam.randomRays(count: 10, rng: &rng)
        let near: Float = 0.5
        let ndc = rays.ndc(camera: cam, near: near)
        for depth: Float in [0.5, 1, 3, 40] {
            let p = rays.points(at: Tensor.full([10, 1], depth)).reshaped([10, 3]).scalars
            let s = 1 - near / depth
            for i in 0..<10 {
                let expected = [2 * cam.fx / 40 * p[3 * i] / depth, 2 * cam.fy / 30 * p[3 * i + 1] / depth, 1 - 2 * near / depth]
                for a in 0..<3 {
                    let got = ndc.origins.scalars[3 * i + a] + s * ndc.directions.scalars[3 * i + a]
                    #expect(abs(got - expected[a]) < 1e-4)
                }
            }
        }
    }

    @Test func degenerateCamerasAreRefused() {
        #expect(throws: TensorError.self) { try PinholeCamera(width: 8, height: 6, fx: 0, fy: 1, cx: 4, cy: 3) }
        #expect(throws: TensorError.self) { try PinholeCamera(width: 0, height: 6, fx: 1, fy: 1, cx: 4, cy: 3) }
        #expect(throws: TensorError.self) { try PinholeCamera(width: 8, height: 6, fx: .nan, fy: 1, cx: 4, cy: 3) }
        #expect(throws: TensorError.self) { try PinholeCamera(width: 8, height: 6, verticalFieldOfView: 180) }
    }
}

@Suite struct VectorMathTests {
    @Test func simdExpMatchesLibm() {
        var xs: [Float] = stride(from: -90, through: 90, by: 0.0137).map { Float($0) }
        xs += [0, -0, 1e-8, -1e-8, -87, 88, -.infinity]
        var out = [Float](repeating: 0, count: xs.count)
        xs.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { VectorMath.exp(src.baseAddress!, into: $0.baseAddress!, count: xs.count) } }
        var worst: Float = 0
        for (x, y) in zip(xs, out) where x >= -87 && x <= 88 {
            worst = max(worst, abs(y - Foundation.exp(x)) / Foundation.exp(x))
        }
        #expect(worst < 3e-7, "worst relative error \(worst)")
        #expect(out[xs.count - 1] >= 0 && out[xs.count - 1] < 1e-37)   // -∞ is clamped to -87
    }
}
