import Testing
import Foundation
@testable import DeformRender
import DeformTensor

@Suite struct DepthShadingTests {
    /// The depth map of a plane n0 · X = n0 · (0, 0, D) seen through Unsup3D's camera: every
    /// normal (border pixels included) equals n0.
    @Test(arguments: [(Float(0), Float(0)), (0.3, -0.2), (-0.5, 0.4)])
    func planeHasItsAnalyticNormal(tilt: (Float, Float)) throws {
        let (h, w) = (9, 12)
        let n0 = [tilt.0, tilt.1, 1].map { $0 / (tilt.0 * tilt.0 + tilt.1 * tilt.1 + 1).squareRoot() }
        let rays = DepthMaps.pixelRays(width: w, height: h, fieldOfView: 30).scalars
        let depth = (0..<(h * w)).map { i in 2 * n0[2] / (n0[0] * rays[3 * i] + n0[1] * rays[3 * i + 1] + n0[2]) }
        let normals = try DepthMaps.normals(Tensor(depth, shape: [1, h, w]), fieldOfView: 30).scalars
        for i in 0..<(h * w) {
            for a in 0..<3 { #expect(abs(normals[3 * i + a] - n0[a]) < 1e-4, "pixel \(i) axis \(a)") }
        }
        // The back-projected points lie on the plane.
        let points = try DepthMaps.backproject(Tensor(depth, shape: [1, h, w]), fieldOfView: 30).scalars
        for i in stride(from: 0, to: h * w, by: 7) {
            let dot = n0[0] * points[3 * i] + n0[1] * points[3 * i + 1] + n0[2] * points[3 * i + 2]
            #expect(abs(dot - 2 * n0[2]) < 1e-5)
        }
    }

    @Test func intrinsicsFollowUnsup3D() {
        let (f, cu, cv) = DepthMaps.intrinsics(width: 64, height: 64)
        #expect(abs(f - 63 / (2 * tan(5 * Float.pi / 180))) < 1e-3 && cu == 31.5 && cv == 31.5)
    }

    @Test func lambertianShadingHasItsAnalyticValues() throws {
        let normals = Tensor([0, 0, 1] as [Float]).reshaped([1, 1, 1, 3]).expanded(to: [2, 4, 5, 3])
        var rng = RandomGenerator(seed: 1)
        let albedo = rng.uniform([2, 3, 4, 5])
        let light = Tensor([0.3, 0.6, 0, 0, 0.2, 0.5, 1, 0] as [Float], shape: [2, 4])
        let (image, shading) = try Shading.lambertian(albedo: albedo, normals: normals, light: light)
        let s = shading.scalars
        #expect(abs(s[0] - 0.9) < 1e-6)                                   // light along the normal
        #expect(abs(s[20] - (0.2 + 0.5 / Float(2).squareRoot())) < 1e-6)  // 45° away
        #expect(image.allClose(albedo * shading, rtol: 1e-6, atol: 1e-7))
        // A normal facing away from the light gets the ambient term only.
        let away = Tensor([0, 0, -1] as [Float]).reshaped([1, 1, 1, 3]).expanded(to: [2, 4, 5, 3])
        let (_, ambient) = try Shading.lambertian(albedo: albedo, normals: away, light: light)
        #expect(abs(ambient.scalars[0] - 0.3) < 1e-6 && abs(ambient.scalars[20] - 0.2) < 1e-6)
        #expect(throws: TensorError.self) { try Shading.lambertian(albedo: albedo, normals: normals, light: Tensor.zeros([2, 3])) }
    }

    @Test func gradientsMatchFiniteDifferences() {
        var rng = RandomGenerator(seed: 2)
        let depth = rng.uniform([1, 4, 5], low: 1.8, high: 2.2)
        let r = GradientCheck.check([depth], step: 1e-3, atol: 1e-3, rtol: 2e-2) { xs in try! DepthMaps.normals(xs[0], fieldOfView: 40) }
        #expect(r.passed, "\(r)")
        let albedo = rng.uniform([1, 2, 4, 5]), light = Tensor([0.4, 0.5, 0.3, -0.2] as [Float], shape: [1, 4])
        let r2 = GradientCheck.check([albedo, depth, light], step: 1e-3, atol: 1e-3, rtol: 2e-2) { xs in
            try! Shading.lambertian(albedo: xs[0], normals: DepthMaps.normals(xs[1], fieldOfView: 40), light: xs[2]).image
        }
        #expect(r2.passed, "\(r2)")
    }
}

@Suite struct DepthWarpTests {
    private func identity(_ n: Int) -> (Tensor, Tensor) {
        (Tensor([1, 0, 0, 0, 1, 0, 0, 0, 1] as [Float], shape: [1, 3, 3]).expanded(to: [n, 3, 3]), Tensor.zeros([n, 3]))
    }

    /// The identity view renders the canonical depth back where it was, and its grid resamples
    /// the canonical image onto itself.
    @Test func identityViewReproducesTheCanonicalImage() throws {
        let (h, w) = (12, 14)
        var rng = RandomGenerator(seed: 1)
        let depth = rng.uniform([2, h, w], low: 0.98, high: 1.02)
        let (r, t) = identity(2)
        let out = try DepthWarp.warp(depth: depth, rotation: r, translation: t)
        #expect(out.mask.sum().item == Float(2 * h * w))
        #expect(out.depth.allClose(depth, rtol: 1e-4, atol: 1e-4))
        let image = rng.uniform([2, 3, h, w])
        let resampled = gridSample(image, grid: out.grid, alignCorners: true)
        #expect(resampled.allClose(image, rtol: 1e-4, atol: 1e-4))
    }

    /// A fronto-parallel plane moved sideways by T shifts in the image by f T_x / z pixels.
    @Test func translationShiftsAPlaneByItsDisparity() throws {
        let (h, w) = (16, 20)
        let depth = Tensor.full([1, h, w], 1)
        let (f, _, _) = DepthMaps.intrinsics(width: w, height: h)
        let shift: Float = 3.4                                  // pixels (pixel centres off the mesh's edges)
        let (r, _) = identity(1)
        let out = try DepthWarp.warp(depth: depth, rotation: r, translation: Tensor([shift / f, 0, 0] as [Float], shape: [1, 3]))
        let mask = out.mask.scalars, grid = out.grid.scalars
        // Columns 0..<4 are uncovered; elsewhere pixel u shows canonical column u - 3.4.
        for v in 1..<(h - 1) {
            for u in 0..<w {
                #expect(mask[v * w + u] == (u >= 4 ? 1 : 0), "pixel (\(u), \(v))")
                if u >= 4 {
                    let canonicalU = (grid[2 * (v * w + u)] + 1) / 2 * Float(w - 1)
                    #expect(abs(canonicalU - (Float(u) - shift)) < 1e-3)
                }
            }
        }
        #expect(abs(out.depth.scalars[5 * w + 10] - 1) < 1e-5)
    }

    @Test func gradientsReachDepthAndViewpoint() throws {
        let (h, w) = (6, 7)
        var rng = RandomGenerator(seed: 2)
        let depth = rng.uniform([1, h, w], low: 0.99, high: 1.01)
        let (r, _) = identity(1)
        // A small shift that keeps every pixel centre away from triangle edges.
        let t = Tensor([0.0123, -0.0071, 0.01] as [Float], shape: [1, 3])
        let check = GradientCheck.check([depth, t], step: 1e-3, atol: 2e-3, rtol: 3e-2) { xs in
            let out = try! DepthWarp.warp(depth: xs[0], rotation: r, translation: xs[1])
            return Tensor.concat([out.depth.reshaped([-1]), out.grid.reshaped([-1])], axis: 0)
        }
        #expect(check.passed, "\(check)")
    }
}
