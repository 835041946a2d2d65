import DeformTensor
import Foundation

/// The small built-in scene of `deform render demo`: one object per renderer, sharing a camera
/// orbit — a textured torus for the mesh rasteriser, a helix of a few hundred view-dependent
/// Gaussians wound around it for the splatting renderer, and a voxel grid of coloured smoke
/// inside its ring for the volume renderer. World axes: y up, the torus ring in the x-z plane.
public struct DemoScene {
    /// Torus mesh: vertices `[V, 3]`, faces (three indices each), texture coordinates `[V, 2]`,
    /// unit normals `[V, 3]`.
    public var vertices: Tensor, faces: [Int32], uv: Tensor, normals: Tensor
    /// Gaussians: means `[N, 3]`, scales `[N, 3]`, quaternions `[N, 4]`, opacities `[N]`,
    /// degree-1 spherical harmonics `[N, 4, 3]`.
    public var means: Tensor, scales: Tensor, quaternions: Tensor, opacities: Tensor, sh: Tensor
    /// Voxel grid `[D, H, W, 4]` (density, red, green, blue) filling the box `[-boxHalf, boxHalf]³`.
    public var volume: Tensor
    public var boxHalf: Float

    /// Builds the scene; `seed` drives the Gaussians' sizes, rotations and colour directions and
    /// the smoke's puffs.
    public static func make(gaussians count: Int = 600, torusSegments: (ring: Int, tube: Int) = (72, 28),
                            gridSize: Int = 40, seed: UInt64 = 0) -> DemoScene {
        let (ringR, tubeR): (Float, Float) = (1, 0.38)
        let (nu, nv) = torusSegments
        var pos: [Float] = [], uv: [Float] = [], nrm: [Float] = []
        // (nu + 1) × (nv + 1) vertices: the seam is duplicated so texture coordinates do not wrap.
        for i in 0...nu {
            let theta = 2 * Float.pi * Float(i) / Float(nu)
            for j in 0...nv {
                let phi = 2 * Float.pi * Float(j) / Float(nv)
                let n = SIMD3(cos(phi) * cos(theta), sin(phi), cos(phi) * sin(theta))
                let p = SIMD3(ringR * cos(theta), 0, ringR * sin(theta)) + tubeR * n
                pos += [p.x, p.y, p.z]; nrm += [n.x, n.y, n.z]
                uv += [Float(i) / Float(nu), Float(j) / Float(nv)]
            }
        }
        var faces: [Int32] = []
        for i in 0..<nu {
            for j in 0..<nv {
                let a = Int32(i * (nv + 1) + j), b = Int32((i + 1) * (nv + 1) + j)
                faces += [a, b, a + 1, a + 1, b, b + 1]
            }
        }
        var rng = RandomGenerator(seed: seed)
        // A helix around the tube, just outside its surface.
        var means: [Float] = [], sh: [Float] = []
        let shJitter = rng.normal([count, 3, 3], std: 0.2).scalars
        for i in 0..<count {
            let theta = 2 * Float.pi * Float(i) / Float(count), phi = 11 * theta
            let n = SIMD3(cos(phi) * cos(theta), sin(phi), cos(phi) * sin(theta))
            let p = SIMD3(ringR * cos(theta), 0, ringR * sin(theta)) + 0.62 * n
            means += [p.x, p.y, p.z]
            // Rainbow along the helix as the constant term (colour = C0 · dc + 0.5).
            let hue = Float(i) / Float(count)
            let rgb = (0..<3).map { k in 0.5 + 0.5 * cos(2 * Float.pi * (hue - Float(k) / 3)) }
            sh += rgb.map { ($0 - 0.5) / 0.28209479177387814 }
            sh += (0..<9).map { shJitter[9 * i + $0] }
        }
        let scales = (rng.uniform([count, 3], low: -0.3, high: 0.3) + Tensor([log(0.035), log(0.035), log(0.012)])).exp()
        let volume = smoke(gridSize, half: 0.7, rng: &rng)
        return DemoScene(vertices: Tensor(pos, shape: [pos.count / 3, 3]), faces: faces, uv: Tensor(uv, shape: [uv.count / 2, 2]),
                         normals: Tensor(nrm, shape: [nrm.count / 3, 3]),
                         means: Tensor(means, shape: [count, 3]), scales: scales, quaternions: rng.normal([count, 4]),
                         opacities: Tensor(shape: [count], repeating: 0.85), sh: Tensor(sh, shape: [count, 4, 3]),
                         volume: volume, boxHalf: 0.7)
    }

    /// Coloured puffs of smoke: a sum of Gaussian blobs with soft turbulence, density up to
    /// about 12 per unit length, colour blended from the blobs'.
    static func smoke(_ n: Int, half: Float, rng: inout RandomGenerator) -> Tensor {
        let blobs = 6
        let centres = rng.uniform([blobs, 3], low: -0.35, high: 0.35).scalars
        let radii = rng.uniform([blobs], low: 0.12, high: 0.25).scalars
        let palette: [SIMD3<Float>] = [SIMD3(1, 0.45, 0.1), SIMD3(0.2, 0.6, 1), SIMD3(0.95, 0.9, 0.3),
                                       SIMD3(0.8, 0.25, 0.9), SIMD3(0.3, 0.95, 0.5), SIMD3(1, 1, 1)]
        let phases = rng.uniform([3], low: 0, high: 6.28).scalars
        var grid = [Float](repeating: 0, count: n * n * n * 4)
        for z in 0..<n {
            for y in 0..<n {
                for x in 0..<n {
                    // Voxel centres on [-half, half] (align-corners sampling).
                    let p = SIMD3(Float(x), Float(y), Float(z)) / Float(n - 1) * 2 * half - half
                    var density: Float = 0, colour = SIMD3<Float>.zero
                    for b in 0..<blobs {
                        let c = SIMD3(centres[3 * b], centres[3 * b + 1], centres[3 * b + 2])
                        let d = p - c
                        let w = exp(-(d * d).sum() / (2 * radii[b] * radii[b]))
                        density += w; colour += w * palette[b]
                    }
                    let swirl = 0.75 + 0.25 * sin(9 * p.x + phases[0]) * sin(11 * p.y + phases[1]) * sin(7 * p.z + phases[2])
                    let i = ((z * n + y) * n + x) * 4
                    grid[i] = 12 * density * swirl
                    let rgb = colour / Swift.max(density, 1e-6)
                    grid[i + 1] = rgb.x; grid[i + 2] = rgb.y; grid[i + 3] = rgb.z
                }
            }
        }
        return Tensor(grid, shape: [n, n, n, 4])
    }
}

/// One renderer's output for a frame.
public struct DemoLayer {
    /// `[H, W, 3]` colour over the background, `[H, W]` depth of what is visible (0 where nothing
    /// is), `[H, W]` coverage.
    public var image: Tensor, depth: Tensor, alpha: Tensor
}

public enum RenderDemo {
    /// The demo's background colour.
    public static let background: SIMD3<Float> = SIMD3(0.08, 0.08, 0.1)

    /// A camera on a circle of `radius` around the y axis at `elevation` degrees, looking at the
    /// origin, with a 45° vertical field of view.
    public static func orbitCamera(angle degrees: Float, width: Int, height: Int, radius: Float = 3.6,
                                   elevation: Float = 28) throws -> PinholeCamera {
        let a = degrees * .pi / 180, e = elevation * .pi / 180
        let centre = SIMD3(radius * cos(e) * sin(a), radius * sin(e), radius * cos(e) * cos(a))
        let forward = -centre / (centre * centre).sum().squareRoot()
        let up = SIMD3<Float>(0, 1, 0)
        var right = SIMD3(forward.y * up.z - forward.z * up.y, forward.z * up.x - forward.x * up.z, forward.x * up.y - forward.y * up.x)
        right /= (right * right).sum().squareRoot()
        // OpenCV axes: x right, y down, z forward.
        let down = SIMD3(forward.y * right.z - forward.z * right.y, forward.z * right.x - forward.x * right.z,
                         forward.x * right.y - forward.y * right.x)
        let pose: [Float] = [right.x, down.x, forward.x, centre.x,
                             right.y, down.y, forward.y, centre.y,
                             right.z, down.z, forward.z, centre.z]
        return try PinholeCamera(width: width, height: height, verticalFieldOfView: 45, cameraToWorld: pose)
    }

    /// The torus through the rasteriser: a checkerboard texture looked up from the interpolated
    /// texture coordinates, Lambertian shading from the interpolated normals.
    public static func renderMesh(_ scene: DemoScene, camera: PinholeCamera) throws -> DemoLayer {
        let (w, h) = (camera.width, camera.height)
        let screen = MeshRasterizer.screenVertices(scene.vertices, camera: camera)
        let fragments = try MeshRasterizer.rasterize(screenVertices: screen, faces: scene.faces, width: w, height: h)
        let attributes = try MeshRasterizer.interpolate(attributes: Tensor.concat([scene.uv, scene.normals], axis: 1),
                                                        fragments: fragments, faces: scene.faces).scalars
        let depth = fragments.depth.scalars
        let light = SIMD3<Float>(0.4, 0.8, 0.45) / (SIMD3<Float>(0.4, 0.8, 0.45) * SIMD3<Float>(0.4, 0.8, 0.45)).sum().squareRoot()
        var image = [Float](repeating: 0, count: w * h * 3), outDepth = [Float](repeating: 0, count: w * h)
        var alpha = [Float](repeating: 0, count: w * h)
        for p in 0..<(w * h) {
            var colour = background
            if fragments.faceIndex[p] >= 0 {
                let a = attributes[(5 * p)..<(5 * p + 5)].map { $0 }
                let checker = (Int((a[0] * 24).rounded(.down)) + Int((a[1] * 8).rounded(.down))) & 1 == 0
                var albedo: SIMD3<Float> = checker ? SIMD3(0.92, 0.55, 0.18) : SIMD3(0.15, 0.35, 0.75)
                // Thin light lines along the tube.
                if abs((a[1] * 32).truncatingRemainder(dividingBy: 1) - 0.5) > 0.44 { albedo = SIMD3(0.95, 0.95, 0.9) }
                var n = SIMD3(a[2], a[3], a[4])
                n /= Swift.max((n * n).sum().squareRoot(), 1e-6)
                colour = albedo * (0.25 + 0.75 * Swift.max(0, (n * light).sum()))
                outDepth[p] = depth[p]
                alpha[p] = 1
            }
            image[3 * p] = colour.x; image[3 * p + 1] = colour.y; image[3 * p + 2] = colour.z
        }
        return DemoLayer(image: Tensor(image, shape: [h, w, 3]), depth: Tensor(outDepth, shape: [h, w]), alpha: Tensor(alpha, shape: [h, w]))
    }

    /// The Gaussians through the splatting renderer.
    public static func renderGaussians(_ scene: DemoScene, camera: PinholeCamera) throws -> DemoLayer {
        let out = try GaussianSplatting.render(means: scene.means, scales: scene.scales, quaternions: scene.quaternions,
                                               opacities: scene.opacities, colors: scene.sh, camera: camera,
                                               options: SplatOptions(background: background))
        return DemoLayer(image: out.image, depth: expectedDepth(out.depth, out.alpha), alpha: out.alpha)
    }

    /// The smoke through the volume renderer: every pixel's ray clipped to the grid's box,
    /// `samples` evenly spaced samples (bin centres), densities and colours by trilinear
    /// interpolation of the grid.
    public static func renderVolume(_ scene: DemoScene, camera: PinholeCamera, samples: Int = 64) throws -> DemoLayer {
        let (w, h) = (camera.width, camera.height)
        let rays = camera.rays()
        let half = scene.boxHalf
        let (near, far, _) = rays.intersectBox(min: [-half, -half, -half], max: [half, half, half])
        var noJitter: RandomGenerator? = nil
        let t = try VolumeRendering.stratifiedSamples(near: near, far: far, count: samples, rng: &noJitter)
        // Equal bins; rays that miss the box have near = far, so zero-length bins and no opacity.
        let deltas = ((far - near) / Float(samples)).unsqueezed(1) * Tensor.ones([1, samples])
        let points = rays.points(at: t).reshaped([w * h * samples, 3]) / half
        let values = try FeatureGrids.trilinear(grid: scene.volume, points: points).reshaped([w * h, samples, 4])
        let parts = values.split(sizes: [1, 3], axis: 2)
        let bg = Tensor([background.x, background.y, background.z])
        let out = try VolumeRendering.render(densities: parts[0].reshaped([w * h, samples]), colors: parts[1], depths: t,
                                             deltas: deltas, background: bg)
        let alpha = out.opacity.reshaped([h, w])
        return DemoLayer(image: out.color.reshaped([h, w, 3]), depth: expectedDepth(out.depth.reshaped([h, w]), alpha), alpha: alpha)
    }

    /// Accumulated depth divided by coverage where something is seen (coverage > 0.05), else 0.
    static func expectedDepth(_ accumulated: Tensor, _ alpha: Tensor) -> Tensor {
        let d = accumulated.scalars, a = alpha.scalars
        return Tensor(zip(d, a).map { $1 > 0.05 ? $0 / $1 : 0 }, shape: accumulated.shape)
    }

    /// Renders one frame with all three renderers.
    public static func frame(_ scene: DemoScene, camera: PinholeCamera) throws -> [DemoLayer] {
        [try renderMesh(scene, camera: camera), try renderGaussians(scene, camera: camera), try renderVolume(scene, camera: camera)]
    }

    /// The layers side by side, colour on top and depth below (near = bright over
    /// `depthRange`, black where nothing is seen): `[2H, N·W, 3]` in [0, 1].
    public static func sheet(_ layers: [DemoLayer], width w: Int, height h: Int, depthRange: ClosedRange<Float> = 2...5.5) -> Tensor {
        let columns = layers.count
        var sheet = [Float](repeating: 0, count: 2 * h * columns * w * 3)
        for (k, layer) in layers.enumerated() {
            let img = layer.image.scalars, depth = layer.depth.scalars
            for y in 0..<h {
                for x in 0..<w {
                    let p = y * w + x
                    let top = (y * columns * w + k * w + x) * 3, bottom = ((y + h) * columns * w + k * w + x) * 3
                    for c in 0..<3 { sheet[top + c] = Swift.min(Swift.max(img[3 * p + c], 0), 1) }
                    let d = depth[p]
                    let near = (depthRange.upperBound - d) / (depthRange.upperBound - depthRange.lowerBound)
                    let g: Float = d > 0 ? 0.1 + 0.9 * Swift.min(Swift.max(near, 0), 1) : 0
                    for c in 0..<3 { sheet[bottom + c] = g }
                }
            }
        }
        return Tensor(sheet, shape: [2 * h, columns * w, 3])
    }
}
