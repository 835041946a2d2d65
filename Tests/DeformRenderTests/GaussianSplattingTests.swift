import Testing
import Foundation
@testable import DeformRender
import DeformTensor

/// A scene of Gaussians as plain arrays.
private struct Scene {
    var means: Tensor, scales: Tensor, quats: Tensor?, opacities: Tensor, colors: Tensor
}

private func randomScene(_ n: Int, seed: UInt64, isotropic: Bool = false, rotated: Bool = true, shCount: Int? = 16,
                         opacity: ClosedRange<Float> = 0.2...0.95, scale: ClosedRange<Float> = 0.05...0.5) -> Scene {
    var rng = RandomGenerator(seed: seed)
    // In front of a camera at the origin looking down +z, spread a bit beyond the view.
    let xy = rng.uniform([n, 2], low: -1.6, high: 1.6)
    let z = rng.uniform([n, 1], low: 2, high: 6)
    let means = Tensor.concat([xy * z / 3, z], axis: 1)
    let scales = rng.uniform([n, isotropic ? 1 : 3], low: scale.lowerBound, high: scale.upperBound)
    let quats: Tensor? = rotated ? rng.normal([n, 4]) : nil
    let opacities = rng.uniform([n], low: opacity.lowerBound, high: opacity.upperBound)
    let colors: Tensor
    if let k = shCount {
        colors = Tensor.concat([rng.uniform([n, 1, 3], low: -1, high: 1.5), rng.normal([n, k - 1, 3], std: 0.3)], axis: 1)
    } else {
        colors = rng.uniform([n, 3])
    }
    return Scene(means: means, scales: scales, quats: quats, opacities: opacities, colors: colors)
}

private func camera(width: Int, height: Int, pose: [Float] = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]) -> PinholeCamera {
    try! PinholeCamera(width: width, height: height, fx: Float(width) * 0.9, fy: Float(width) * 0.85,
                       cx: Float(width) / 2 + 0.7, cy: Float(height) / 2 - 0.4, cameraToWorld: pose)
}

/// A camera 0.3 to the side and rotated 10° about y, to exercise the world → camera transform.
private let turnedPose: [Float] = {
    let a: Float = 10 * .pi / 180
    return [cos(a), 0, sin(a), 0.3, 0, 1, 0, -0.1, -sin(a), 0, cos(a), -0.2]
}()

/// Plain-loop rendering in Double: every Gaussian is projected with explicit 3×3 matrices and
/// tested at every pixel (no tiles, no bounding boxes), sorted by depth, composited with the same
/// rules.
private func referenceRender(_ s: Scene, _ cam: PinholeCamera, _ o: SplatOptions) -> (image: [Double], depth: [Double], alpha: [Double]) {
    let n = s.means.shape[0]
    let m = s.means.scalars.map(Double.init), sc = s.scales.scalars.map(Double.init)
    let op = s.opacities.scalars.map(Double.init), col = s.colors.scalars.map(Double.init)
    let q = s.quats?.scalars.map(Double.init)
    let pose = cam.cameraToWorld.map(Double.init)
    let isSH = s.colors.rank == 3, k = isSH ? s.colors.shape[1] : 1
    let (fx, fy, cx, cy) = (Double(cam.fx), Double(cam.fy), Double(cam.cx), Double(cam.cy))
    let (w, h) = (Double(cam.width), Double(cam.height))
    func mul(_ a: [[Double]], _ b: [[Double]]) -> [[Double]] {
        (0..<a.count).map { i in (0..<b[0].count).map { j in (0..<b.count).reduce(0) { $0 + a[i][$1] * b[$1][j] } } }
    }
    func tr(_ a: [[Double]]) -> [[Double]] { (0..<a[0].count).map { j in a.map { $0[j] } } }
    let rot = [[pose[0], pose[1], pose[2]], [pose[4], pose[5], pose[6]], [pose[8], pose[9], pose[10]]]
    let center = [pose[3], pose[7], pose[11]]
    struct P { var u, v, A, B, C, o, z: Double; var rgb: [Double] }
    var splats: [(Int, P)] = []
    for i in 0..<n {
        let d = (0..<3).map { m[3 * i + $0] - center[$0] }
        let t = (0..<3).map { r in (0..<3).reduce(0.0) { $0 + rot[$1][r] * d[$1] } }
        guard t[2] >= Double(o.near), t[2] <= Double(o.far), op[i] > Double(o.minAlpha) else { continue }
        var R: [[Double]] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
        if let q {
            let nq = sqrt((0..<4).reduce(0.0) { $0 + q[4 * i + $1] * q[4 * i + $1] })
            let (qw, qx, qy, qz) = (q[4 * i] / nq, q[4 * i + 1] / nq, q[4 * i + 2] / nq, q[4 * i + 3] / nq)
            R = [[1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qw * qz), 2 * (qx * qz + qw * qy)],
                 [2 * (qx * qy + qw * qz), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qw * qx)],
                 [2 * (qx * qz - qw * qy), 2 * (qy * qz + qw * qx), 1 - 2 * (qx * qx + qy * qy)]]
        }
        let sv = s.scales.shape[1] == 1 ? [sc[i], sc[i], sc[i]] : [sc[3 * i], sc[3 * i + 1], sc[3 * i + 2]]
        let S = [[sv[0] * sv[0], 0, 0], [0, sv[1] * sv[1], 0], [0, 0, sv[2] * sv[2]]]
        let sigma = mul(mul(R, S), tr(R))
        let W = tr(rot)
        let sigmaCam = mul(mul(W, sigma), tr(W))
        let xr = min(max(t[0] / t[2], -(cx + 0.15 * w) / fx), (w - cx + 0.15 * w) / fx)
        let yr = min(max(t[1] / t[2], -(cy + 0.15 * h) / fy), (h - cy + 0.15 * h) / fy)
        let J = [[fx / t[2], 0, -fx * xr / t[2]], [0, fy / t[2], -fy * yr / t[2]]]
        var cov = mul(mul(J, sigmaCam), tr(J))
        cov[0][0] += Double(o.blur); cov[1][1] += Double(o.blur)
        let det = cov[0][0] * cov[1][1] - cov[0][1] * cov[1][0]
        guard det > 0 else { continue }
        var rgb = [col[3 * i], col[3 * i + 1], col[3 * i + 2]]
        if isSH {
            let dn = (0..<3).map { m[3 * i + $0] - center[$0] }
            let len = sqrt(dn.reduce(0) { $0 + $1 * $1 })
            let (x, y, z) = (dn[0] / len, dn[1] / len, dn[2] / len)
            let basis: [Double] = [0.28209479177387814,
                                   -0.4886025119029199 * y, 0.4886025119029199 * z, -0.4886025119029199 * x,
                                   1.0925484305920792 * x * y, -1.0925484305920792 * y * z, 0.31539156525252005 * (2 * z * z - x * x - y * y),
                                   -1.0925484305920792 * x * z, 0.5462742152960396 * (x * x - y * y),
                                   -0.5900435899266435 * y * (3 * x * x - y * y), 2.890611442640554 * x * y * z,
                                   -0.4570457994644658 * y * (4 * z * z - x * x - y * y), 0.3731763325901154 * z * (2 * z * z - 3 * x * x - 3 * y * y),
                                   -0.4570457994644658 * x * (4 * z * z - x * x - y * y), 1.445305721320277 * z * (x * x - y * y),
                                   -0.5900435899266435 * x * (x * x - 3 * y * y)]
            rgb = (0..<3).map { ch in max(0, 0.5 + (0..<k).reduce(0.0) { $0 + basis[$1] * col[(i * k + $1) * 3 + ch] }) }
        }
        splats.append((i, P(u: fx * t[0] / t[2] + cx, v: fy * t[1] / t[2] + cy, A: cov[1][1] / det, B: -cov[0][1] / det,
                            C: cov[0][0] / det, o: op[i], z: t[2], rgb: rgb)))
    }
    splats.sort { ($0.1.z, $0.0) < ($1.1.z, $1.0) }
    let bg = [Double(o.background.x), Double(o.background.y), Double(o.background.z)]
    var image = [Double](repeating: 0, count: cam.width * cam.height * 3)
    var depth = [Double](repeating: 0, count: cam.width * cam.height), alpha = depth
    for j in 0..<cam.height {
        for i in 0..<cam.width {
            let p = j * cam.width + i
            var T = 1.0
            for (_, s) in splats {
                let dx = Double(i) + 0.5 - s.u, dy = Double(j) + 0.5 - s.v
                let a = min(Double(o.maxAlpha), s.o * exp(-0.5 * (s.A * dx * dx + s.C * dy * dy) - s.B * dx * dy))
                if a < Double(o.minAlpha) { continue }
                let tNext = T * (1 - a)
                if tNext < Double(o.minTransmittance) { break }
                for c in 0..<3 { image[3 * p + c] += a * T * s.rgb[c] }
                depth[p] += a * T * s.z
                T = tNext
            }
            for c in 0..<3 { image[3 * p + c] += T * bg[c] }
            alpha[p] = 1 - T
        }
    }
    return (image, depth, alpha)
}

private func render(_ s: Scene, _ cam: PinholeCamera, _ o: SplatOptions) throws -> SplatRender {
    try GaussianSplatting.render(means: s.means, scales: s.scales, quaternions: s.quats, opacities: s.opacities,
                                 colors: s.colors, camera: cam, options: o)
}

private func maxDiff(_ a: Tensor, _ b: [Double]) -> Double { zip(a.scalars, b).map { abs(Double($0) - $1) }.max() ?? 0 }

@Suite struct GaussianSplattingTests {
    /// Tiles, bounding boxes, SIMD rows and early termination against per-pixel loops over every
    /// Gaussian: anisotropic, rotated, spherical harmonics of degree 3, an image size that is not
    /// a multiple of the tile size, a turned camera, some Gaussians behind it.
    @Test(arguments: [(0, 16), (1, 4), (2, nil)] as [(Int, Int?)])
    func tiledKernelMatchesPlainLoops(variant: Int, shCount: Int?) throws {
        var scene = randomScene(300, seed: UInt64(10 + variant), isotropic: variant == 1, rotated: variant != 2, shCount: shCount)
        scene.means.withUnsafeMutableBufferPointer { $0[2] = -3; $0[5] = 0.005 }       // behind, and nearer than `near`
        var options = SplatOptions(background: SIMD3(0.2, 0.1, 0.4))
        if variant == 2 { options.minTransmittance = 0.2 }                              // many pixels stop early
        let cam = camera(width: 45, height: 37, pose: variant == 0 ? turnedPose : [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0])
        let out = try render(scene, cam, options)
        let ref = referenceRender(scene, cam, options)
        #expect(maxDiff(out.image, ref.image) < 1e-4)
        #expect(maxDiff(out.depth, ref.depth) < 1e-4)
        #expect(maxDiff(out.alpha, ref.alpha) < 1e-4)
        #expect(out.visibleCount < 300)
        // The scene is not trivial: most pixels are covered.
        #expect(out.alpha.scalars.filter { $0 > 0.5 }.count > 45 * 37 / 2)
    }

    /// One isotropic Gaussian of scale s on the optical axis at depth z: its footprint is a 2D
    /// Gaussian of variance (f s / z)² + 0.3 px² (the low-pass) centred on the principal point, alpha is
    /// opacity times that, zero where it would be below 1/255, and depth / alpha is z.
    @Test func singleGaussianHasTheKnownFootprint() throws {
        let (z, s, o, f): (Float, Float, Float, Float) = (4, 0.2, 0.7, 50)
        let cam = try PinholeCamera(width: 48, height: 40, fx: f, fy: f, cx: 23.5, cy: 19.25)
        let out = try GaussianSplatting.render(means: Tensor([0, 0, z], shape: [1, 3]), scales: Tensor([s], shape: [1, 1]),
                                               opacities: Tensor([o]), colors: Tensor([0.3, 0.6, 0.9], shape: [1, 3]), camera: cam)
        let u = 23.5, v = 19.25
        let variance = Double(f * s / z) * Double(f * s / z) + 0.3
        var worst = 0.0, covered = 0
        for j in 0..<40 {
            for i in 0..<48 {
                let r2 = (Double(i) + 0.5 - u) * (Double(i) + 0.5 - u) + (Double(j) + 0.5 - v) * (Double(j) + 0.5 - v)
                var expected = Double(o) * exp(-0.5 * r2 / variance)
                if expected < 1.0 / 255 { expected = 0 } else { covered += 1 }
                let a = Double(out.alpha.scalars[j * 48 + i])
                worst = max(worst, abs(a - expected))
                if a > 0 {
                    #expect(abs(Double(out.depth.scalars[j * 48 + i]) / a - Double(z)) < 1e-4)
                    #expect(abs(Double(out.image.scalars[3 * (j * 48 + i) + 2]) / a - 0.9) < 1e-5)
                }
            }
        }
        #expect(worst < 2e-6)
        // Pixels within r² ≤ 2 σ² ln(255 o) of the centre: a disc of about that area.
        let area = Double.pi * 2 * variance * log(255 * Double(o))
        #expect(abs(Double(covered) - area) < 0.1 * area)
    }

    /// Finite differences for every parameter, with the alpha threshold off and no early stop (so
    /// the rendering is smooth), SH degree 2, rotated anisotropic Gaussians, a turned camera,
    /// image, depth and alpha all in the loss.
    @Test func gradientsMatchFiniteDifferences() throws {
        let scene = randomScene(6, seed: 3, shCount: 9, opacity: 0.3...0.8, scale: 0.15...0.5)
        var options = SplatOptions(background: SIMD3(0.5, 0.2, 0.1))
        options.minAlpha = 0; options.minTransmittance = 0
        let cam = camera(width: 14, height: 11, pose: turnedPose)
        let inputs = [scene.means, scene.scales, scene.quats!, scene.opacities, scene.colors]
        let check = GradientCheck.check(inputs, step: 1e-3, atol: 3e-3, rtol: 2e-2) { xs in
            let r = try! GaussianSplatting.render(means: xs[0], scales: xs[1], quaternions: xs[2], opacities: xs[3], colors: xs[4],
                                                  camera: cam, options: options)
            return Tensor.concat([r.image.reshaped([14 * 11 * 3]), r.depth.reshaped([14 * 11]) * 0.2,
                                       r.alpha.reshaped([14 * 11])], axis: 0)
        }
        #expect(check.passed, "\(check)")
    }

    /// Early stopping: three wide isotropic Gaussians of opacity 0.6 cover a small image, so every
    /// pixel's transmittance goes 1 → ~0.4 → ~0.15 → ~0.06; with a minimum transmittance of 0.12
    /// each pixel stops before the third (far from the threshold, so the rendering stays smooth
    /// under small steps). The backward must count exactly the two Gaussians the forward
    /// composited: finite differences agree, and the third Gaussian gets no gradient.
    @Test func gradientsWithEarlyStop() throws {
        let cam = try PinholeCamera(width: 6, height: 5, fx: 4, fy: 4, cx: 3.1, cy: 2.4)
        let means = Tensor([0.1, -0.1, 2, -0.2, 0.1, 3, 0.15, 0.05, 4], shape: [3, 3])
        let scales = Tensor([20, 22, 25], shape: [3, 1]), opacities = Tensor([0.6, 0.62, 0.58])
        let colors = Tensor([0.9, 0.1, 0.2, 0.1, 0.8, 0.3, 0.2, 0.3, 0.9], shape: [3, 3])
        var options = SplatOptions(background: SIMD3(0.3, 0.3, 0.3))
        options.minTransmittance = 0.12
        let probe = try GaussianSplatting.render(means: means, scales: scales, opacities: opacities, colors: colors, camera: cam, options: options)
        #expect(probe.alpha.scalars.allSatisfy { $0 > 0.8 && $0 < 0.9 })            // two composited, not three
        let f: ([Tensor]) -> Tensor = { xs in
            let r = try! GaussianSplatting.render(means: xs[0], scales: xs[1], opacities: xs[2], colors: xs[3], camera: cam, options: options)
            return Tensor.concat([r.image.reshaped([6 * 5 * 3]), r.alpha.reshaped([6 * 5]), r.depth.reshaped([6 * 5]) * 0.2], axis: 0)
        }
        let check = GradientCheck.check([means, scales, opacities, colors], step: 1e-3, atol: 3e-3, rtol: 2e-2, f)
        #expect(check.passed, "\(check)")
        let vars = [means, scales, opacities, colors].map { $0.requiringGrad() }
        let g = grad(of: f(vars).sum(), wrt: vars)
        #expect(g[2].scalars[2] == 0 && g[3].scalars[6..<9].allSatisfy { $0 == 0 } && g[0].scalars[6..<9].allSatisfy { $0 == 0 })
        #expect(abs(g[2].scalars[0]) > 1e-2 && abs(g[2].scalars[1]) > 1e-2)
    }

    @Test func badInputIsRejectedAndEmptyScenesRenderTheBackground() throws {
        let cam = camera(width: 8, height: 6)
        let scene = randomScene(4, seed: 1, shCount: nil)
        func attempt(_ s: Scene) -> Bool { (try? render(s, cam, SplatOptions())) == nil }
        var bad = scene; bad.scales.withUnsafeMutableBufferPointer { $0[4] = 0 }
        #expect(attempt(bad))
        bad = scene; bad.scales.withUnsafeMutableBufferPointer { $0[1] = -0.1 }
        #expect(attempt(bad))
        bad = scene; bad.means.withUnsafeMutableBufferPointer { $0[7] = .nan }
        #expect(attempt(bad))
        bad = scene; bad.opacities.withUnsafeMutableBufferPointer { $0[0] = 1.5 }
        #expect(attempt(bad))
        bad = scene; bad.quats!.withUnsafeMutableBufferPointer { for k in 4..<8 { $0[k] = 0 } }
        #expect(attempt(bad))
        bad = scene; bad.colors = Tensor.zeros([4, 5, 3])
        #expect(attempt(bad))
        var options = SplatOptions(); options.maxAlpha = 1
        #expect((try? render(scene, cam, options)) == nil)

        // No Gaussians, or all of them behind the camera: the background everywhere.
        let empty = Scene(means: Tensor.zeros([0, 3]), scales: Tensor.zeros([0, 3]), quats: nil, opacities: Tensor.zeros([0]),
                          colors: Tensor.zeros([0, 3]))
        let out = try render(empty, cam, SplatOptions(background: SIMD3(0.1, 0.2, 0.3)))
        #expect(out.image.scalars == Array(repeating: [0.1, 0.2, 0.3] as [Float], count: 48).flatMap { $0 })
        #expect(out.alpha.scalars.allSatisfy { $0 == 0 })
        var behind = scene; behind.means = behind.means * Tensor([1, 1, -1])
        let back = try render(behind, cam, SplatOptions())
        #expect(back.visibleCount == 0 && back.image.scalars.allSatisfy { $0 == 0 })
    }

    /// Degree-0 harmonics are a constant colour C0 · c + 0.5 from every direction, clamped at 0.
    @Test func degreeZeroHarmonicsAreAConstantColour() throws {
        let cam = try PinholeCamera(width: 16, height: 16, fx: 20, fy: 20, cx: 8, cy: 8)
        let out = try GaussianSplatting.render(means: Tensor([0, 0, 3], shape: [1, 3]), scales: Tensor([0.3], shape: [1, 1]),
                                               opacities: Tensor([0.9]), colors: Tensor([1, -0.5, -3], shape: [1, 1, 3]), camera: cam)
        let p = 8 * 16 + 8, a = out.alpha.scalars[p]
        #expect(abs(out.image.scalars[3 * p] / a - (0.28209479 + 0.5)) < 1e-5)
        #expect(abs(out.image.scalars[3 * p + 1] / a - (0.5 - 0.5 * 0.28209479)) < 1e-5)
        #expect(out.image.scalars[3 * p + 2] == 0)
    }
}

/// The gradients are usable for fitting: Gaussians started from perturbed positions, sizes,
/// colours and opacities are optimised (Adam, written out here) towards a target rendering of the
/// true ones, through log-scales and opacity logits as 3DGS parameterises them.
@Suite struct GaussianSplattingFitTests {
    @Test func fittingRecoversATargetImage() throws {
        let cam = try PinholeCamera(width: 32, height: 32, fx: 30, fy: 30, cx: 16, cy: 16)
        var rng = RandomGenerator(seed: 8)
        let n = 10
        let trueMeans = Tensor.concat([rng.uniform([n, 2], low: -0.5, high: 0.5), rng.uniform([n, 1], low: 2.5, high: 3.5)], axis: 1)
        let trueScales = rng.uniform([n, 3], low: 0.08, high: 0.2)
        let quats = rng.normal([n, 4])
        let trueColors = rng.uniform([n, 3])
        let trueOpacity = rng.uniform([n], low: 0.6, high: 0.9)
        let target = try GaussianSplatting.render(means: trueMeans, scales: trueScales, quaternions: quats, opacities: trueOpacity,
                                                  colors: trueColors, camera: cam).image
        var params = [trueMeans + rng.normal([n, 3], std: 0.06), (trueScales * 1.4).log(), Tensor(shape: [n, 3], repeating: 0.5),
                      Tensor(shape: [n], repeating: 0)]
        var m = params.map { Tensor.zeros($0.shape) }, v = m
        func loss(_ p: [Tensor]) throws -> Tensor {
            let out = try GaussianSplatting.render(means: p[0], scales: p[1].exp(), quaternions: quats, opacities: p[3].sigmoid(),
                                                   colors: p[2], camera: cam)
            let d = out.image - target
            return (d * d).mean()
        }
        let initial = try loss(params).item
        for step in 1...150 {
            let vars = params.map { $0.requiringGrad() }
            let g = grad(of: try loss(vars), wrt: vars)
            for k in 0..<params.count {
                m[k] = m[k] * 0.9 + g[k] * 0.1
                v[k] = v[k] * 0.999 + g[k] * g[k] * 0.001
                let mHat = m[k] / (1 - pow(0.9, Float(step))), vHat = v[k] / (1 - pow(0.999, Float(step)))
                params[k] = params[k] - 0.01 * mHat / (vHat.sqrt() + 1e-8)
            }
        }
        let final = try loss(params).item
        #expect(final < 0.05 * initial, "loss \(initial) -> \(final)")
    }
}
