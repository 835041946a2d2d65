import DeformRender
import DeformTensor
import Foundation

/// Every parameter of a `dynamic` dataset. Written to `scene.json`; the same configuration and
/// ``generatorVersion`` give byte-identical files. Ranges are `[lo, hi]`, drawn uniformly per scene
/// (or per object).
public struct DynamicSceneConfig: Codable, Sendable, Equatable {
    /// Bumped whenever a change to the generator changes its output.
    public static let generatorVersion = "dynamic-1"

    public var seed: UInt64 = 0
    /// Number of scenes.
    public var count: Int = 5
    /// Training frames per scene (the NVIDIA benchmark's monocular videos have 24).
    public var frames: Int = 24
    /// Image width and height in pixels.
    public var size: Int = 128
    /// Samples per pixel along each axis for anti-aliasing (odd, so the centre sample sits on the
    /// pixel centre and gives the point-sampled ground truth).
    public var supersampling: Int = 3
    /// Held-out cameras per scene (fixed positions near the training path, like the other cameras
    /// of the NVIDIA rig).
    public var novelCameras: Int = 3
    /// The held-out cameras render every `novelEvery`-th frame (starting at frame 0).
    public var novelEvery: Int = 1
    /// Horizontal field of view, degrees.
    public var fieldOfView: [Float] = [50, 65]
    /// Number of deforming objects per scene (kinds cycle through bending, waving and bouncing
    /// from a random start, so three objects show all three).
    public var objects: [Int] = [2, 3]
    /// Distance of the back wall along the world z axis.
    public var wallDistance: [Float] = [4.5, 6.5]
    /// Height of the camera path's centre above the ground.
    public var cameraHeight: [Float] = [1.0, 1.5]
    /// Half the sideways extent of the camera path, world units (roughly metres).
    public var cameraSweep: [Float] = [0.15, 0.3]
    /// Ambient and diffuse coefficients of the Lambertian shading.
    public var ambient: [Float] = [0.35, 0.55]
    public var diffuse: [Float] = [0.45, 0.65]

    public init() {}

    /// Throws a ``SynthError`` naming the first parameter that is out of range.
    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws { try SynthFiles.check(ok, message) }
        func range(_ name: String, _ r: [Float], _ lo: Float, _ hi: Float) throws { try SynthFiles.checkRange(name, r, lo, hi) }
        try check(count > 0, "count must be positive, got \(count)")
        try check(frames > 0, "frames must be positive, got \(frames)")
        try check(size > 0, "size must be positive, got \(size)")
        try check(size >= 8, "size must be at least 8 pixels, got \(size)")
        try check(size <= 4096, "size must be at most 4096, got \(size)")
        try check(count <= 1_000_000 && frames <= 100_000, "count must be at most 1000000 and frames at most 100000")
        try check(supersampling >= 1 && supersampling % 2 == 1 && supersampling <= 9, "supersampling must be odd and in 1...9, got \(supersampling)")
        try check(novelCameras >= 0 && novelCameras <= DynamicScenes.novelLayout.count,
                  "novelCameras must be in 0...\(DynamicScenes.novelLayout.count), got \(novelCameras)")
        try check(novelEvery >= 1, "novelEvery must be positive, got \(novelEvery)")
        try range("fieldOfView", fieldOfView, 20, 90)
        try check(objects.count == 2 && objects[0] >= 1 && objects[0] <= objects[1] && objects[1] <= 6,
                  "objects must be a range [lo, hi] with 1 <= lo <= hi <= 6, got \(objects)")
        try range("wallDistance", wallDistance, 4, 20)
        try range("cameraHeight", cameraHeight, 0.6, 2.5)
        try range("cameraSweep", cameraSweep, 0, 1)
        try range("ambient", ambient, 0, 1)
        try range("diffuse", diffuse, 0, 1)
    }
}

/// One deforming object of a `dynamic` scene. Its own frame has y up (the world's y points down),
/// its base on the ground at `base`, turned by `yaw` about the vertical.
public struct DynamicObject: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// A tapered textured bar standing on the ground that bends about its base: its centre
        /// line is a circular arc of total angle `bendAngle sin(2π t / period + phase)`.
        case bending
        /// A flag on a static pole: a sheet with a travelling wave
        /// `z = amplitude (x / width) sin(2π x / wavelength - 2π t / period + phase)`.
        case waving
        /// A ball bouncing on the ground (parabolic hops of `height`, one per period) that squashes
        /// (volume-preserving) near contact, spins and drifts to and fro.
        case bouncing
    }
    public var kind: Kind
    public var base: SIMD3<Float>
    /// Radians about the world vertical.
    public var yaw: Float
    /// bending: bar height; waving: pole height; bouncing: hop height.
    public var height: Float
    /// bending: base radius; waving: flag width; bouncing: ball radius.
    public var radius: Float
    /// waving: flag height (the sheet hangs from the pole's top).
    public var flagHeight: Float
    /// bending: peak bend angle (radians); waving: wave amplitude; bouncing: squash at contact (0-1).
    public var amplitude: Float
    /// waving: wavelength; bouncing: drift amplitude along the object's x axis.
    public var wavelength: Float
    /// Frames per cycle (bend, wave, hop).
    public var period: Float
    public var phase: Float
    /// bouncing: spin, radians per frame, about the object's z axis.
    public var spinRate: Float
    public var texture: SolidTexture
    /// waving: the pole's texture (static).
    public var poleTexture: SolidTexture

    static let poleRadius: Float = 0.025

    /// A rest point of the object's moving part (its own frame, y up; also the texture coordinate)
    /// at frame time `t`, in the object's frame.
    public func deform(_ q: SIMD3<Float>, at t: Float) -> SIMD3<Float> {
        let w = 2 * Float.pi * t / period + phase
        switch kind {
        case .bending:
            let curvature = amplitude * Foundation.sin(w) / height
            let s = q.y
            guard Swift.abs(curvature) > 1e-6 else { return q }
            let a = curvature * s, c = Foundation.cos(a), sn = Foundation.sin(a)
            // The cross-section turns with the centre line's tangent (sin a, cos a).
            return SIMD3((1 - c) / curvature + q.x * c, sn / curvature - q.x * sn, q.z)
        case .waving:
            let x = q.x
            let z = amplitude * (x / radius) * Foundation.sin(2 * Float.pi * x / wavelength - w)
            return SIMD3(x, q.y, z)
        case .bouncing:
            let (lift, squash) = bounce(at: t)
            let spin = SynthRotation(axis: SIMD3(0, 0, 1), angle: spinRate * t)
            let r = spin.apply(q)
            let sy = 1 - squash, sx = 1 / sy.squareRoot()
            let drift = wavelength * Foundation.sin(2 * Float.pi * t / (3.3 * period) + phase)
            return SIMD3(r.x * sx + drift, r.y * sy + radius * sy + lift, r.z * sx)
        }
    }

    /// bouncing: height of the ball's bottom above the ground and its squash (0 none) at `t`.
    public func bounce(at t: Float) -> (lift: Float, squash: Float) {
        let u = t / period + phase / (2 * .pi)
        let tau = u - u.rounded(.down)
        let lift = height * 4 * tau * (1 - tau)
        // Flattened within the lowest fifth of the hop, most at contact.
        let g = Swift.max(0, 1 - lift / (0.2 * height))
        return (lift, amplitude * g * g)
    }

    /// Object-frame point to world.
    public func toWorld(_ p: SIMD3<Float>) -> SIMD3<Float> {
        base + SynthRotation(axis: SIMD3(0, 1, 0), angle: yaw).apply(SIMD3(p.x, -p.y, p.z))
    }
}

/// The random parameters of one scene: the room, the camera path, the held-out cameras, the light
/// and the deforming objects.
public struct DynamicSceneParameters: Codable, Sendable, Equatable {
    public var index: Int
    /// Frames of the training video (the path is parameterised by t / (frames - 1)).
    public var frames: Int
    public var fieldOfView: Float
    /// Focal length in pixels.
    public var focal: Float
    /// The ground is the plane y = cameraHeight (world y points down); the back wall is z = wallDistance.
    public var cameraHeight: Float
    public var wallDistance: Float
    /// Every camera looks at this point.
    public var target: SIMD3<Float>
    /// Camera path: `(sweep sin(π(u - 1/2)), -bob sin(2πu + bobPhase), advance (u - 1/2))`, u = t / (frames - 1).
    public var sweep: Float
    public var bob: Float
    public var bobPhase: Float
    public var advance: Float
    /// Centres of the held-out cameras.
    public var novelCenters: [SIMD3<Float>]
    public var ambient: Float
    public var diffuse: Float
    /// Unit vector towards the light.
    public var light: SIMD3<Float>
    public var background: SIMD3<Float>
    public var ground: SolidTexture
    public var wall: SolidTexture
    public var objects: [DynamicObject]

    /// Training camera centre at (real-valued) frame time `t`.
    public func center(at t: Float) -> SIMD3<Float> {
        let u = t / Float(Swift.max(frames - 1, 1))
        return SIMD3(sweep * Foundation.sin(Float.pi * (u - 0.5)), -bob * Foundation.sin(2 * Float.pi * u + bobPhase), advance * (u - 0.5))
    }

    /// Camera-to-world rotation of a camera at `c` looking at ``target`` (OpenCV axes, no roll).
    public func rotation(from c: SIMD3<Float>) -> SynthRotation {
        let z = DynamicScenes.normalize(target - c)
        let x = DynamicScenes.normalize(SIMD3(z.z, 0, -z.x))         // down × z with down = (0, 1, 0)
        let y = SIMD3(z.y * x.z - z.z * x.y, z.z * x.x - z.x * x.z, z.x * x.y - z.y * x.x)  // z × x
        return SynthRotation(rows: [SIMD3(x.x, y.x, z.x), SIMD3(x.y, y.y, z.y), SIMD3(x.z, y.z, z.z)])
    }
}

/// Which camera renders a frame.
public enum DynamicView: Hashable, Sendable {
    /// The moving monocular camera of the training video.
    case training
    /// Held-out camera `k` (fixed).
    case novel(Int)
}

/// One rendered view with its ground truth, `size × size`, row-major.
public struct DynamicFrame: Sendable {
    public var scene: Int
    public var frame: Int
    public var view: DynamicView
    public var size: Int
    /// RGB `[H, W, 3]` in [0, 1], anti-aliased.
    public var image: [Float]
    /// Camera depth (z) at each pixel centre, 0 where no surface, `[H, W]`.
    public var depth: [Float]
    /// 1 where the pixel centre sees a deforming object (the dynamic region), `[H, W]`.
    public var mask: [UInt8]
    /// 0 ground, 1 back wall, 2 static props (flag poles), 3 + k deforming object k, 255 nothing.
    public var segmentation: [UInt8]
    /// Training views: optical flow `(du, dv)` to frame t + 1 and to frame t - 1, `[H, W, 2]`: where
    /// the pixel centre's surface point is then (motion continues past the ends), whether or not it
    /// is visible; 0 where no surface. Empty for held-out views.
    public var flowForward: [Float]
    public var flowBackward: [Float]
    /// Training views: the point's depth in the camera of frame t ± 1 (for the visibility test).
    public var depthForward: [Float]
    public var depthBackward: [Float]
    /// Training views: 1 where the point is inside frame t ± 1 and not occluded there (filled by
    /// ``DynamicScenes/renderVideo(_:config:)``; all 0 from a lone ``DynamicScenes/render(_:frame:view:config:)``).
    public var validForward: [UInt8]
    public var validBackward: [UInt8]
}

/// The `dynamic` family: forward-facing dynamic scenes in the style of the NVIDIA dynamic-scene
/// benchmark. A textured room (ground, back wall) with deforming objects (a bending bar, a waving
/// flag, a bouncing ball), filmed by one camera moving along a short smooth path, plus the same
/// instants seen from fixed held-out cameras for novel-view evaluation.
///
/// Objects are triangle meshes whose vertices move every frame; the flow is that vertex motion
/// interpolated with the rasteriser's perspective-correct barycentrics, so it is exact for the
/// rendered (piecewise-linear) surface.
public enum DynamicScenes {
    static let streamBase: UInt64 = 0xD7A_0000_0000

    /// Held-out camera layout: (fraction of the sweep sideways, offset down in world units, offset
    /// forward) relative to the path's centre.
    public static let novelLayout: [SIMD3<Float>] = [SIMD3(-0.7, -0.12, 0.05), SIMD3(0.7, -0.12, -0.05), SIMD3(0, 0.15, 0.1),
                                                     SIMD3(-0.35, 0.2, -0.1), SIMD3(0.35, 0.2, 0.1), SIMD3(0, -0.25, -0.1)]

    @inline(__always) static func normalize(_ v: SIMD3<Float>) -> SIMD3<Float> { v / Swift.max((v * v).sum().squareRoot(), 1e-12) }

    /// The random parameters of scene `index` (a function of the seed, the index and the frame
    /// count only).
    public static func parameters(index: Int, config: DynamicSceneConfig) -> DynamicSceneParameters {
        var rng = SynthRandom(seed: config.seed, stream: streamBase &+ UInt64(index))
        let n = Float(config.size)
        let fov = rng.uniform(config.fieldOfView[0], config.fieldOfView[1])
        let focal = n / (2 * Foundation.tan(fov * .pi / 360))
        let height = rng.uniform(config.cameraHeight[0], config.cameraHeight[1])
        let wall = rng.uniform(config.wallDistance[0], config.wallDistance[1])
        let focus = rng.uniform(2.8, 3.6)
        let target = SIMD3<Float>(rng.uniform(-0.2, 0.2), height - rng.uniform(0.35, 0.6), focus)
        let sweep = rng.uniform(config.cameraSweep[0], config.cameraSweep[1]) * (rng.int(2) == 0 ? -1 : 1)
        let bob = rng.uniform(0.02, 0.06), bobPhase = rng.uniform(0, 2 * .pi), advance = rng.uniform(-0.15, 0.15)
        let novel = config.novelCameras > 0
            ? novelLayout[0..<config.novelCameras].map { SIMD3(Swift.abs(sweep) * $0.x, $0.y, $0.z) } : []
        let ambient = rng.uniform(config.ambient[0], config.ambient[1]), diffuse = rng.uniform(config.diffuse[0], config.diffuse[1])
        var light = SIMD3<Float>(rng.uniform(-1, 1), -rng.uniform(0.6, 1.5), -rng.uniform(0.3, 1))
        light = normalize(light)
        let ground = SolidTexture(pattern: rng.int(3) == 0 ? .marble : .tiles, scale: rng.uniform(1.5, 2.5), draw: &rng)
        let wallTexture = SolidTexture(pattern: rng.int(3) == 0 ? .stripes : .bricks, scale: rng.uniform(1.5, 3), draw: &rng)
        var params = DynamicSceneParameters(index: index, frames: config.frames, fieldOfView: fov, focal: focal, cameraHeight: height,
                                            wallDistance: wall, target: target, sweep: sweep, bob: bob, bobPhase: bobPhase,
                                            advance: advance, novelCenters: novel, ambient: ambient, diffuse: diffuse, light: light,
                                            background: SIMD3(repeating: 0.7), ground: ground, wall: wallTexture, objects: [])
        let count = config.objects[0] + rng.int(config.objects[1] - config.objects[0] + 1)
        let kinds = DynamicObject.Kind.allCases
        let firstKind = rng.int(kinds.count)
        // One lateral slot per object across the middle of the view, in random order, so objects
        // do not stand inside each other.
        var slots = Array(0..<count)
        for i in stride(from: count - 1, to: 0, by: -1) { slots.swapAt(i, rng.int(i + 1)) }
        let halfView = Foundation.tan(fov * .pi / 360)
        for k in 0..<count {
            let kind = kinds[(firstKind + k) % kinds.count]
            let distance = rng.uniform(2.1, Swift.min(wall - 1.3, 3.3))
            let slot = (Float(slots[k]) + 0.5) / Float(count) * 2 - 1
            let lateral = (0.6 * slot + rng.uniform(-0.08, 0.08)) * halfView * distance
            let base = SIMD3<Float>(target.x * distance / focus + lateral, height, distance)
            let phase = rng.uniform(0, 2 * .pi)
            switch kind {
            case .bending:
                params.objects.append(DynamicObject(
                    kind: kind, base: base, yaw: rng.uniform(0, 2 * .pi), height: rng.uniform(0.8, 1.3),
                    radius: rng.uniform(0.09, 0.14), flagHeight: 0, amplitude: rng.uniform(0.35, 0.8), wavelength: 0,
                    period: rng.uniform(12, 24), phase: phase, spinRate: 0,
                    texture: SolidTexture(pattern: rng.int(2) == 0 ? .stripes : .checker, scale: rng.uniform(5, 8), draw: &rng),
                    poleTexture: SolidTexture(pattern: .marble, scale: 1, draw: &rng)))
            case .waving:
                let width = rng.uniform(0.6, 0.9)
                params.objects.append(DynamicObject(
                    kind: kind, base: base, yaw: rng.uniform(-0.6, 0.6) + (rng.int(2) == 0 ? 0 : .pi), height: rng.uniform(1.0, 1.4),
                    radius: width, flagHeight: rng.uniform(0.4, 0.55), amplitude: rng.uniform(0.07, 0.14),
                    wavelength: width * rng.uniform(0.6, 1.1), period: rng.uniform(8, 16), phase: phase, spinRate: 0,
                    texture: SolidTexture(pattern: [.checker, .dots, .stripes][rng.int(3)], scale: rng.uniform(4, 7), draw: &rng),
                    poleTexture: SolidTexture(pattern: .marble, scale: rng.uniform(6, 10), draw: &rng)))
            case .bouncing:
                params.objects.append(DynamicObject(
                    kind: kind, base: base, yaw: rng.uniform(0, 2 * .pi), height: rng.uniform(0.3, 0.6),
                    radius: rng.uniform(0.2, 0.3), flagHeight: 0, amplitude: rng.uniform(0.15, 0.3),
                    wavelength: rng.uniform(0, 0.25), period: rng.uniform(10, 16), phase: phase,
                    spinRate: rng.uniform(-0.12, 0.12),
                    texture: SolidTexture(pattern: [.dots, .checker, .marble][rng.int(3)], scale: rng.uniform(4, 7), draw: &rng),
                    poleTexture: SolidTexture(pattern: .marble, scale: 1, draw: &rng)))
            }
        }
        return params
    }

    // MARK: - Meshes

    /// The triangles of one instant. Per vertex: the point in its surface's own frame (texture),
    /// the world position at t - 1, t and t + 1 (flow), and per face the surface id.
    struct FrameMesh {
        var vertices: [Float] = []
        var attributes: [Float] = []
        var faces: [Int32] = []
        var surface: [Int32] = []
        /// local 3, previous 3, current 3, next 3.
        static let channels = 12

        mutating func add(local: SIMD3<Float>, previous: SIMD3<Float>, current: SIMD3<Float>, next: SIMD3<Float>) -> Int32 {
            vertices += [current.x, current.y, current.z]
            attributes += [local.x, local.y, local.z, previous.x, previous.y, previous.z,
                           current.x, current.y, current.z, next.x, next.y, next.z]
            return Int32(vertices.count / 3 - 1)
        }
        mutating func triangle(_ a: Int32, _ b: Int32, _ c: Int32, surface s: Int32) {
            faces += [a, b, c]
            surface.append(s)
        }
        /// A grid of `(nu + 1) × (nv + 1)` vertices (row-major in v) made into quads.
        mutating func grid(_ ids: [Int32], nu: Int, nv: Int, surface: Int32) {
            for j in 0..<nv {
                for i in 0..<nu {
                    let a = ids[j * (nu + 1) + i], b = ids[j * (nu + 1) + i + 1]
                    let c = ids[(j + 1) * (nu + 1) + i], d = ids[(j + 1) * (nu + 1) + i + 1]
                    triangle(a, b, d, surface: surface)
                    triangle(a, d, c, surface: surface)
                }
            }
        }
        /// A static surface grid spanning `origin + [0, 1] u + [0, 1] v`.
        mutating func plane(origin: SIMD3<Float>, u: SIMD3<Float>, v: SIMD3<Float>, nu: Int, nv: Int, surface: Int32) {
            var ids: [Int32] = []
            for j in 0...nv {
                for i in 0...nu {
                    let p = origin + u * (Float(i) / Float(nu)) + v * (Float(j) / Float(nv))
                    ids.append(add(local: p, previous: p, current: p, next: p))
                }
            }
            grid(ids, nu: nu, nv: nv, surface: surface)
        }
    }

    /// The scene at frame time `t`: ground, back wall, poles and the deformed objects.
    static func mesh(_ p: DynamicSceneParameters, t: Float) -> FrameMesh {
        var m = FrameMesh()
        let d = p.wallDistance, h = p.cameraHeight
        // Wide and tall enough for fields of view up to 90° from anywhere near the path.
        let halfWidth = 1.3 * d + 2, top = -(1.0 * d + 2), back: Float = -2
        let tiles = Swift.max(4, Int((2 * halfWidth / 1.2).rounded(.up)))
        m.plane(origin: SIMD3(-halfWidth, h, back), u: SIMD3(2 * halfWidth, 0, 0), v: SIMD3(0, 0, d - back),
                nu: tiles, nv: Swift.max(4, Int(((d - back) / 1.2).rounded(.up))), surface: 0)
        m.plane(origin: SIMD3(-halfWidth, top, d), u: SIMD3(2 * halfWidth, 0, 0), v: SIMD3(0, h - top, 0),
                nu: tiles, nv: Swift.max(4, Int(((h - top) / 1.2).rounded(.up))), surface: 1)
        for (k, o) in p.objects.enumerated() { addObject(&m, o, surface: Int32(3 + k), t: t) }
        return m
    }

    /// Adds the grid of rest points `rest` (row-major, `(nu + 1) × (nv + 1)`) of object `o`'s moving part.
    static func addMoving(_ m: inout FrameMesh, _ o: DynamicObject, rest: [SIMD3<Float>], nu: Int, nv: Int, surface: Int32, t: Float) {
        let ids = rest.map { q in
            m.add(local: q, previous: o.toWorld(o.deform(q, at: t - 1)), current: o.toWorld(o.deform(q, at: t)),
                  next: o.toWorld(o.deform(q, at: t + 1)))
        }
        m.grid(ids, nu: nu, nv: nv, surface: surface)
    }

    static func addObject(_ m: inout FrameMesh, _ o: DynamicObject, surface: Int32, t: Float) {
        switch o.kind {
        case .bending:
            // A tapered tube, 16 rings up, 12 around, closed by a rest-flat cap of 3 rings.
            let nu = 12, rings = 16, capRings = 3
            var rest: [SIMD3<Float>] = []
            for j in 0...(rings + capRings) {
                let s = j <= rings ? o.height * Float(j) / Float(rings) : o.height
                let taper = 1 - 0.45 * s / o.height
                let r = j <= rings ? o.radius * taper : o.radius * (1 - 0.45) * Float(rings + capRings - j) / Float(capRings)
                for i in 0...nu {
                    let a = 2 * Float.pi * Float(i) / Float(nu)
                    rest.append(SIMD3(r * Foundation.cos(a), s, r * Foundation.sin(a)))
                }
            }
            addMoving(&m, o, rest: rest, nu: nu, nv: rings + capRings, surface: surface, t: t)
        case .waving:
            // The static pole (surface 2), then the sheet hanging from its top.
            let segments = 8, r = DynamicObject.poleRadius
            var ids: [Int32] = []
            for j in 0...1 {
                for i in 0...segments {
                    let a = 2 * Float.pi * Float(i) / Float(segments)
                    let q = SIMD3<Float>(r * Foundation.cos(a) - r, Float(j) * (o.height + 0.04), r * Foundation.sin(a))
                    let w = o.toWorld(q)
                    ids.append(m.add(local: q, previous: w, current: w, next: w))
                }
            }
            m.grid(ids, nu: segments, nv: 1, surface: 2)
            let nu = 20, nv = 10
            var rest: [SIMD3<Float>] = []
            for j in 0...nv {
                for i in 0...nu {
                    rest.append(SIMD3(o.radius * Float(i) / Float(nu), o.height - o.flagHeight * Float(j) / Float(nv), 0))
                }
            }
            addMoving(&m, o, rest: rest, nu: nu, nv: nv, surface: surface, t: t)
        case .bouncing:
            let segments = 24, rings = 12
            var rest: [SIMD3<Float>] = []
            for j in 0...rings {
                let theta = Float.pi * Float(j) / Float(rings)
                for i in 0...segments {
                    let phi = 2 * Float.pi * Float(i) / Float(segments)
                    rest.append(o.radius * SIMD3(Foundation.sin(theta) * Foundation.cos(phi), Foundation.cos(theta),
                                                 Foundation.sin(theta) * Foundation.sin(phi)))
                }
            }
            addMoving(&m, o, rest: rest, nu: segments, nv: rings, surface: surface, t: t)
        }
    }

    // MARK: - Cameras

    /// Intrinsics `(f, c_x, c_y)` with pixel centres on integers (pixel (i, j) at (u, v) = (i, j)).
    public static func intrinsics(_ p: DynamicSceneParameters, config: DynamicSceneConfig) -> (f: Float, cx: Float, cy: Float) {
        let c = Float(config.size - 1) / 2
        return (p.focal, c, c)
    }

    /// Camera-to-world rotation and centre of `view` at frame time `t`.
    public static func pose(_ p: DynamicSceneParameters, view: DynamicView, t: Float) -> (rotation: SynthRotation, center: SIMD3<Float>) {
        let c: SIMD3<Float>
        switch view {
        case .training: c = p.center(at: t)
        case .novel(let k): c = p.novelCenters[k]
        }
        return (p.rotation(from: c), c)
    }

    /// The rasteriser's camera (pixel centres at i + 0.5) for `view` at frame time `t`, at `scale`
    /// samples per pixel along each axis.
    public static func camera(_ p: DynamicSceneParameters, config: DynamicSceneConfig, view: DynamicView, t: Float,
                              scale: Int = 1) throws -> PinholeCamera {
        let (f, cx, cy) = intrinsics(p, config: config)
        let s = Float(scale), n = config.size * scale
        let (r, c) = pose(p, view: view, t: t)
        let m: [Float] = [r.rows[0].x, r.rows[0].y, r.rows[0].z, c.x,
                          r.rows[1].x, r.rows[1].y, r.rows[1].z, c.y,
                          r.rows[2].x, r.rows[2].y, r.rows[2].z, c.z]
        return try PinholeCamera(width: n, height: n, fx: f * s, fy: f * s, cx: (cx + 0.5) * s, cy: (cy + 0.5) * s, cameraToWorld: m)
    }

    // MARK: - Rendering

    /// Renders frame `frame` of the scene with parameters `p` from `view`. Training views carry
    /// flows but no validity (see ``renderVideo(_:config:)``).
    public static func render(_ p: DynamicSceneParameters, frame: Int, view: DynamicView, config: DynamicSceneConfig) throws -> DynamicFrame {
        try config.validate()
        guard frame >= 0 && frame < config.frames else { throw SynthError("frame must be in 0..<\(config.frames), got \(frame)") }
        if case .novel(let k) = view, !(0..<p.novelCenters.count).contains(k) {
            throw SynthError("novel camera must be in 0..<\(p.novelCenters.count), got \(k)")
        }
        return try GradMode.withoutGrad { try renderValidated(p, frame: frame, view: view, config: config) }
    }

    static func renderValidated(_ p: DynamicSceneParameters, frame: Int, view: DynamicView, config: DynamicSceneConfig) throws -> DynamicFrame {
        let t = Float(frame)
        let n = config.size, ss = config.supersampling, big = n * ss, mid = ss / 2
        let m = mesh(p, t: t)
        let cam = try camera(p, config: config, view: view, t: t, scale: ss)
        let world = Tensor(m.vertices, shape: [m.vertices.count / 3, 3])
        let screen = MeshRasterizer.screenVertices(world, camera: cam)
        let fragments = try MeshRasterizer.rasterize(screenVertices: screen, faces: m.faces, width: big, height: big)
        let interpolated = try MeshRasterizer.interpolate(attributes: Tensor(m.attributes, shape: [m.attributes.count / FrameMesh.channels, FrameMesh.channels]),
                                                          fragments: fragments, faces: m.faces)
        let attributes = interpolated.dataPointer, depthBuffer = fragments.depth.dataPointer
        let (r, centre) = pose(p, view: view, t: t)
        let (f, cx, cy) = intrinsics(p, config: config)
        let textures = [p.ground, p.wall] + p.objects.map(\.texture)
        // All poles share one surface id (2) and the first flag's pole texture.
        let pole = p.objects.first(where: { $0.kind == .waving })?.poleTexture ?? p.wall

        // Flat shading normals per face from the current vertices; turned towards the camera
        // (sheets are seen from both sides).
        var normals = [SIMD3<Float>](repeating: .zero, count: m.surface.count)
        for fi in 0..<m.surface.count {
            func v(_ k: Int) -> SIMD3<Float> { let i = Int(m.faces[3 * fi + k]); return SIMD3(m.vertices[3 * i], m.vertices[3 * i + 1], m.vertices[3 * i + 2]) }
            let a = v(0), b = v(1), c = v(2), e1 = b - a, e2 = c - a
            normals[fi] = normalize(SIMD3(e1.y * e2.z - e1.z * e2.y, e1.z * e2.x - e1.x * e2.z, e1.x * e2.y - e1.y * e2.x))
        }
        // Smooth the objects' normals: average over the faces sharing a vertex.
        var vertexNormals = [SIMD3<Float>](repeating: .zero, count: m.vertices.count / 3)
        for fi in 0..<m.surface.count where m.surface[fi] >= 2 {
            for k in 0..<3 { vertexNormals[Int(m.faces[3 * fi + k])] += normals[fi] }
        }

        var image = [Float](repeating: 0, count: 3 * n * n)
        let inv = 1 / Float(ss * ss), inverseFocal = 1 / f
        let training = view == .training
        var depth = [Float](repeating: 0, count: n * n), mask = [UInt8](repeating: 0, count: n * n)
        var segmentation = [UInt8](repeating: 255, count: n * n)
        var flowF = [Float](repeating: 0, count: training ? 2 * n * n : 0), flowB = flowF
        var zF = [Float](repeating: 0, count: training ? n * n : 0), zB = zF
        let (rn, cn) = pose(p, view: view, t: t + 1), (rp, cp) = pose(p, view: view, t: t - 1)
        let fd = Double(f), cxd = Double(cx), cyd = Double(cy)
        func d3(_ v: SIMD3<Float>) -> SIMD3<Double> { SIMD3(Double(v.x), Double(v.y), Double(v.z)) }
        func project(_ w: SIMD3<Double>, _ rot: SynthRotation, _ c: SIMD3<Float>) -> (u: Double, v: Double, z: Double) {
            let rows = rot.rows.map(d3)
            let x = w - d3(c)
            let q = rows[0] * x.x + rows[1] * x.y + rows[2] * x.z     // Rᵀ (w - c)
            return (fd * q.x / q.z + cxd, fd * q.y / q.z + cyd, q.z)
        }
        let rowsD = r.rows.map(d3)
        for j in 0..<n {
            for i in 0..<n {
                var sum = SIMD3<Float>.zero
                for dj in 0..<ss {
                    for di in 0..<ss {
                        let q = (j * ss + dj) * big + i * ss + di
                        let face = Int(fragments.faceIndex[q])
                        guard face >= 0 else { sum += p.background; continue }
                        let a = attributes + FrameMesh.channels * q
                        let surface = Int(m.surface[face])
                        var normal = normals[face]
                        if surface >= 3 {
                            // Smoother shading on the curved objects: the mean of the face's vertex normals.
                            var s = SIMD3<Float>.zero
                            for k in 0..<3 { s += vertexNormals[Int(m.faces[3 * face + k])] }
                            normal = normalize(s)
                        }
                        let toCamera = centre - SIMD3(a[6], a[7], a[8])
                        if (normal * toCamera).sum() < 0 { normal = -normal }
                        let texture = surface == 2 ? pole : textures[surface >= 3 ? surface - 1 : surface]
                        let albedo = texture.color(at: SIMD3(a[0], a[1], a[2]), footprint: depthBuffer[q] * inverseFocal)
                        let shade = p.ambient + p.diffuse * Swift.max(0, (normal * p.light).sum())
                        let c = albedo * shade
                        sum += SIMD3(Swift.min(c.x, 1), Swift.min(c.y, 1), Swift.min(c.z, 1))
                    }
                }
                let pix = j * n + i
                image[3 * pix] = sum.x * inv; image[3 * pix + 1] = sum.y * inv; image[3 * pix + 2] = sum.z * inv

                // Ground truth at the pixel centre.
                let q = (j * ss + mid) * big + i * ss + mid
                let face = Int(fragments.faceIndex[q])
                guard face >= 0 else { continue }
                let surface = Int(m.surface[face])
                segmentation[pix] = UInt8(surface)
                mask[pix] = surface >= 3 ? 1 : 0
                let z = depthBuffer[q]
                depth[pix] = z
                guard training else { continue }
                // The point from the depth (exact on the rendered surface), moved by the
                // interpolated vertex motion (zero on static surfaces).
                let ray = SIMD3((Double(i) - cxd) / fd, (Double(j) - cyd) / fd, 1) * Double(z)
                let point = d3(centre) + SIMD3((rowsD[0] * ray).sum(), (rowsD[1] * ray).sum(), (rowsD[2] * ray).sum())
                let a = attributes + FrameMesh.channels * q
                var later = point, earlier = point
                if surface >= 3 {
                    let now = SIMD3<Double>(Double(a[6]), Double(a[7]), Double(a[8]))
                    later += SIMD3(Double(a[9]), Double(a[10]), Double(a[11])) - now
                    earlier += SIMD3(Double(a[3]), Double(a[4]), Double(a[5])) - now
                }
                let next = project(later, rn, cn), previous = project(earlier, rp, cp)
                flowF[2 * pix] = Float(next.u - Double(i)); flowF[2 * pix + 1] = Float(next.v - Double(j))
                flowB[2 * pix] = Float(previous.u - Double(i)); flowB[2 * pix + 1] = Float(previous.v - Double(j))
                zF[pix] = Float(next.z); zB[pix] = Float(previous.z)
            }
        }
        return DynamicFrame(scene: p.index, frame: frame, view: view, size: n, image: image, depth: depth, mask: mask,
                            segmentation: segmentation, flowForward: flowF, flowBackward: flowB, depthForward: zF, depthBackward: zB,
                            validForward: [UInt8](repeating: 0, count: training ? n * n : 0),
                            validBackward: [UInt8](repeating: 0, count: training ? n * n : 0))
    }

    /// Relative depth difference under which the surface seen at a flow target counts as the same
    /// point (so it is not occluded there).
    public static let visibilityTolerance: Float = 0.01

    /// Marks where `flow` lands on the same surface point in the other frame: inside the image,
    /// the four pixel centres around the target show the point's surface, and the inverse depth
    /// interpolated there (linear across a plane) matches the point's own depth in that camera.
    static func validity(flow: [Float], targetDepth: [Float], segmentation: [UInt8], other: DynamicFrame) -> [UInt8] {
        let n = other.size
        var valid = [UInt8](repeating: 0, count: n * n)
        for pix in 0..<(n * n) where segmentation[pix] != 255 {
            let u = Float(pix % n) + flow[2 * pix], v = Float(pix / n) + flow[2 * pix + 1]
            guard u >= 0 && v >= 0 && u <= Float(n - 1) && v <= Float(n - 1) && targetDepth[pix] > 0 else { continue }
            let i0 = Swift.min(Int(u), n - 2), j0 = Swift.min(Int(v), n - 2)
            let wu = u - Float(i0), wv = v - Float(j0)
            var inverse: Float = 0, ok = true
            for (di, dj, w) in [(0, 0, (1 - wu) * (1 - wv)), (1, 0, wu * (1 - wv)), (0, 1, (1 - wu) * wv), (1, 1, wu * wv)] {
                let o = (j0 + dj) * n + i0 + di
                if other.segmentation[o] != segmentation[pix] || other.depth[o] <= 0 { ok = false; break }
                inverse += w / other.depth[o]
            }
            if ok && Swift.abs(1 / inverse - targetDepth[pix]) <= visibilityTolerance * targetDepth[pix] { valid[pix] = 1 }
        }
        return valid
    }

    /// Every frame of scene `p`'s training video (with flow validity) and, per held-out camera,
    /// its frames at `0, novelEvery, 2 novelEvery, ...`. Frames render in parallel.
    public static func renderVideo(_ p: DynamicSceneParameters, config: DynamicSceneConfig) throws -> (training: [DynamicFrame], novel: [[DynamicFrame]]) {
        try config.validate()
        let novelFrames = Array(stride(from: 0, to: config.frames, by: config.novelEvery))
        var jobs: [(Int, DynamicView)] = (0..<config.frames).map { ($0, .training) }
        for k in 0..<p.novelCenters.count { jobs += novelFrames.map { ($0, .novel(k)) } }
        var results = [DynamicFrame?](repeating: nil, count: jobs.count)
        var failure: Error?
        let lock = NSLock()
        Threads.withSingleThreadedBLAS {
            DispatchQueue.concurrentPerform(iterations: jobs.count) { item in
                do {
                    let frame = try render(p, frame: jobs[item].0, view: jobs[item].1, config: config)
                    lock.lock(); results[item] = frame; lock.unlock()
                } catch {
                    lock.lock(); if failure == nil { failure = error }; lock.unlock()
                }
            }
        }
        if let failure { throw failure }
        var training = (0..<config.frames).map { results[$0]! }
        for t in 0..<config.frames {
            if t + 1 < config.frames {
                training[t].validForward = validity(flow: training[t].flowForward, targetDepth: training[t].depthForward,
                                                    segmentation: training[t].segmentation, other: training[t + 1])
            }
            if t > 0 {
                training[t].validBackward = validity(flow: training[t].flowBackward, targetDepth: training[t].depthBackward,
                                                     segmentation: training[t].segmentation, other: training[t - 1])
            }
        }
        let novel = (0..<p.novelCenters.count).map { k in
            (0..<novelFrames.count).map { results[config.frames + k * novelFrames.count + $0]! }
        }
        return (training, novel)
    }
}
