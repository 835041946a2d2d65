import DeformRender
import DeformTensor
import Foundation

/// Every parameter of a `stereo` dataset. Written to `scene.json`; the same configuration and
/// ``generatorVersion`` give byte-identical files. Ranges are `[lo, hi]`, drawn uniformly per clip
/// (or per object).
public struct StereoSceneConfig: Codable, Sendable, Equatable {
    /// Bumped whenever a change to the generator changes its output.
    public static let generatorVersion = "stereo-1"

    public var seed: UInt64 = 0
    /// Number of clips.
    public var count: Int = 20
    /// Frames per clip.
    public var frames: Int = 12
    /// Image width and height in pixels.
    public var size: Int = 128
    /// Samples per pixel along each axis for anti-aliasing (odd, so the centre sample sits on the
    /// pixel centre and gives the point-sampled ground truth).
    public var supersampling: Int = 3
    /// Horizontal field of view, degrees; sets the clip's focal length `f = W / (2 tan(fov / 2))`.
    public var fieldOfView: [Float] = [40, 75]
    /// Stereo baseline, world units (the scene is about metre-scaled: objects 0.3-1 across, the
    /// back wall 5-9 away).
    public var baseline: [Float] = [0.08, 0.25]
    /// Disparity offset `c_x^L - c_x^R` as a fraction of the image width: negative for converging
    /// (toed-in, or shifted to converge) rigs whose far content has negative disparity.
    public var offset: [Float] = [-0.08, 0.03]
    /// Number of moving objects per clip.
    public var objects: [Int] = [2, 5]
    /// Distance of the back wall along the world z axis.
    public var wallDistance: [Float] = [5, 9]
    /// Height of the left camera above the ground at frame 0.
    public var cameraHeight: [Float] = [0.8, 1.6]
    /// The rig turns by a yaw in ±maxRigYaw and looks down by a pitch in [0, maxRigPitch], degrees.
    public var maxRigYaw: Float = 12
    public var maxRigPitch: Float = 10
    /// Largest camera speed, world units per frame (the rig sways back and forth along a line,
    /// mostly sideways, so clips of any length stay inside the room).
    public var maxCameraSpeed: Float = 0.04
    /// Largest object speed over the ground, world units per frame (objects sway back and forth
    /// along a line too).
    public var maxObjectSpeed: Float = 0.1
    /// Largest object spin, degrees per frame.
    public var maxSpin: Float = 8
    /// Ambient and diffuse coefficients of the Lambertian shading.
    public var ambient: [Float] = [0.35, 0.55]
    public var diffuse: [Float] = [0.45, 0.65]
    /// Sphere mesh resolution (segments around; half as many rings).
    public var sphereSegments: Int = 24

    public init() {}

    /// Throws a ``SynthError`` naming the first parameter that is out of range.
    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws { try SynthFiles.check(ok, message) }
        func range(_ name: String, _ r: [Float], _ lo: Float, _ hi: Float, open: Bool = false) throws {
            try SynthFiles.checkRange(name, r, lo, hi, open: open)
        }
        try check(count > 0, "count must be positive, got \(count)")
        try check(frames > 0, "frames must be positive, got \(frames)")
        try check(size > 0, "size must be positive, got \(size)")
        try check(size >= 8, "size must be at least 8 pixels, got \(size)")
        try check(size <= 4096, "size must be at most 4096, got \(size)")
        try check(count <= 1_000_000 && frames <= 100_000, "count must be at most 1000000 and frames at most 100000")
        try check(supersampling >= 1 && supersampling % 2 == 1 && supersampling <= 9, "supersampling must be odd and in 1...9, got \(supersampling)")
        try range("fieldOfView", fieldOfView, 0, 120, open: true)
        try check(fieldOfView[1] < 120, "fieldOfView must stay below 120 degrees, got \(fieldOfView)")
        try range("baseline", baseline, 0, 1, open: true)
        try range("offset", offset, -0.5, 0.5)
        try check(objects.count == 2 && objects[0] >= 0 && objects[0] <= objects[1] && objects[1] <= 16,
                  "objects must be a range [lo, hi] with 0 <= lo <= hi <= 16, got \(objects)")
        try range("wallDistance", wallDistance, 4, 100)
        try range("cameraHeight", cameraHeight, 0.2, 5)
        try check(maxRigYaw >= 0 && maxRigYaw <= 30, "maxRigYaw must be in [0, 30] degrees, got \(maxRigYaw)")
        try check(maxRigPitch >= 0 && maxRigPitch <= 30, "maxRigPitch must be in [0, 30] degrees, got \(maxRigPitch)")
        try check(maxCameraSpeed >= 0 && maxCameraSpeed <= 0.2, "maxCameraSpeed must be in [0, 0.2] units per frame, got \(maxCameraSpeed)")
        try check(maxObjectSpeed >= 0 && maxObjectSpeed <= 0.5, "maxObjectSpeed must be in [0, 0.5] units per frame, got \(maxObjectSpeed)")
        try check(maxSpin >= 0 && maxSpin <= 45, "maxSpin must be in [0, 45] degrees per frame, got \(maxSpin)")
        try range("ambient", ambient, 0, 1)
        try range("diffuse", diffuse, 0, 1)
        try check(sphereSegments >= 6 && sphereSegments % 2 == 0 && sphereSegments <= 256,
                  "sphereSegments must be even and in 6...256, got \(sphereSegments)")
    }
}

/// A rotation as a row-major 3×3 matrix, for the rig and object poses of the generators.
public struct SynthRotation: Codable, Sendable, Equatable {
    public var rows: [SIMD3<Float>]

    public init(rows: [SIMD3<Float>]) { self.rows = rows }
    public static let identity = SynthRotation(rows: [SIMD3(1, 0, 0), SIMD3(0, 1, 0), SIMD3(0, 0, 1)])

    /// Rotation by `angle` radians about the unit `axis` (Rodrigues).
    public init(axis a: SIMD3<Float>, angle: Float) {
        let c = Foundation.cos(angle), s = Foundation.sin(angle), k = 1 - c
        rows = [SIMD3(c + a.x * a.x * k, a.x * a.y * k - a.z * s, a.x * a.z * k + a.y * s),
                SIMD3(a.y * a.x * k + a.z * s, c + a.y * a.y * k, a.y * a.z * k - a.x * s),
                SIMD3(a.z * a.x * k - a.y * s, a.z * a.y * k + a.x * s, c + a.z * a.z * k)]
    }

    @inline(__always) public func apply(_ v: SIMD3<Float>) -> SIMD3<Float> {
        SIMD3((rows[0] * v).sum(), (rows[1] * v).sum(), (rows[2] * v).sum())
    }
    public var transposed: SynthRotation {
        SynthRotation(rows: [SIMD3(rows[0].x, rows[1].x, rows[2].x), SIMD3(rows[0].y, rows[1].y, rows[2].y), SIMD3(rows[0].z, rows[1].z, rows[2].z)])
    }
    public static func * (a: SynthRotation, b: SynthRotation) -> SynthRotation {
        let bt = b.transposed
        return SynthRotation(rows: a.rows.map { r in SIMD3((r * bt.rows[0]).sum(), (r * bt.rows[1]).sum(), (r * bt.rows[2]).sum()) })
    }
    /// Column `i`.
    public func column(_ i: Int) -> SIMD3<Float> { SIMD3(rows[0][i], rows[1][i], rows[2][i]) }
}

/// A back-and-forth motion along a line: the offset `direction · amplitude · sin(2π t / period + phase)`
/// at frame time t, whose peak speed is `2π amplitude / period` per frame.
public struct Sway: Codable, Sendable, Equatable {
    /// Unit direction of the motion (world).
    public var direction: SIMD3<Float>
    public var amplitude: Float
    /// Frames per cycle.
    public var period: Float
    /// Radians.
    public var phase: Float

    public static let none = Sway(direction: SIMD3(1, 0, 0), amplitude: 0, period: 1, phase: 0)

    public func offset(at t: Float) -> SIMD3<Float> {
        direction * (amplitude * Foundation.sin(2 * Float.pi * t / period + phase))
    }
    /// The largest speed, world units per frame.
    public var peakSpeed: Float { 2 * Float.pi * amplitude / period }
}

/// One moving object of a clip: a box or an ellipsoid with a solid texture, translating over the
/// ground (and possibly bouncing) while it spins.
public struct StereoObject: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case box, ellipsoid }
    public var kind: Kind
    /// Half extents of the box, or the ellipsoid's radii, along the object's own axes.
    public var halfExtents: SIMD3<Float>
    /// Centre of the object's path (world), resting height.
    public var position: SIMD3<Float>
    /// Back-and-forth motion over the ground about `position`.
    public var path: Sway
    /// The centre rises by `bounceHeight |sin(π t / bouncePeriod + bouncePhase)|` (world -y is up).
    public var bounceHeight: Float
    public var bouncePeriod: Float
    public var bouncePhase: Float
    /// Rotation about `spinAxis` (unit, world) by `spinStart + spinRate t` radians.
    public var spinAxis: SIMD3<Float>
    public var spinStart: Float
    public var spinRate: Float
    public var texture: SolidTexture

    /// Object-to-world rotation at (real-valued) frame time `t`.
    public func rotation(at t: Float) -> SynthRotation { SynthRotation(axis: spinAxis, angle: spinStart + spinRate * t) }
    /// Centre at frame time `t`.
    public func center(at t: Float) -> SIMD3<Float> {
        let lift = bounceHeight * Swift.abs(Foundation.sin(Float.pi * t / bouncePeriod + bouncePhase))
        return position + path.offset(at: t) - SIMD3(0, lift, 0)
    }
}

/// The random parameters of one clip: the rig (focal length, baseline, disparity offset, pose and
/// motion), the room (ground, back wall) and the moving objects.
public struct StereoClipParameters: Codable, Sendable, Equatable {
    public var index: Int
    /// Horizontal field of view, degrees.
    public var fieldOfView: Float
    /// Focal length in pixels (both cameras).
    public var focal: Float
    /// Distance between the camera centres, world units, along the rig's x axis.
    public var baseline: Float
    /// Disparity offset in pixels: `c_x^L - c_x^R`, so `disparity = focal * baseline / depth + offset`.
    public var offset: Float
    /// Rig yaw (about world y) and downward pitch, degrees.
    public var rigYaw: Float
    public var rigPitch: Float
    /// The left camera's centre sways about the world origin.
    public var cameraPath: Sway
    /// The ground is the plane y = cameraHeight (world y points down); the back wall is z = wallDistance.
    public var cameraHeight: Float
    public var wallDistance: Float
    /// Lambertian shading `albedo (ambient + diffuse max(0, <n, light>))`, `light` a unit vector towards the light.
    public var ambient: Float
    public var diffuse: Float
    public var light: SIMD3<Float>
    /// Colour where no surface is drawn (never visible with the default ranges: the room closes the view).
    public var background: SIMD3<Float>
    public var ground: SolidTexture
    public var wall: SolidTexture
    public var objects: [StereoObject]

    /// Camera-to-world rotation of both cameras: `R_y(yaw) R_x(-pitch)` (OpenCV camera axes; the
    /// pitch turns the optical axis towards +y, down).
    public var rotation: SynthRotation {
        let yaw = rigYaw * .pi / 180, pitch = rigPitch * .pi / 180
        return SynthRotation(axis: SIMD3(0, 1, 0), angle: yaw) * SynthRotation(axis: SIMD3(1, 0, 0), angle: -pitch)
    }
    /// Centre of the left camera at frame time `t`.
    public func leftCenter(at t: Float) -> SIMD3<Float> { cameraPath.offset(at: t) }
    /// Centre of the right camera at frame time `t`: `baseline` along the rig's x axis.
    public func rightCenter(at t: Float) -> SIMD3<Float> { leftCenter(at: t) + baseline * rotation.column(0) }
}

/// One rendered stereo frame with its ground truth, `size × size`, row-major.
public struct StereoFrame: Sendable {
    public var clip: Int
    public var frame: Int
    public var size: Int
    /// Left and right RGB `[H, W, 3]` in [0, 1], anti-aliased (box filter over the supersamples).
    public var left: [Float]
    public var right: [Float]
    /// Left-view disparity in pixels, `u_L - u_R` of the surface point at each pixel centre,
    /// computed by projecting that point into the right camera; 0 where no surface, `[H, W]`.
    public var disparity: [Float]
    /// Left-camera depth (z) at each pixel centre, 0 where no surface, `[H, W]`.
    public var depth: [Float]
    /// 1 where the left pixel centre's surface point is also seen by the right camera (inside its
    /// image and not occluded), `[H, W]`.
    public var mask: [UInt8]
    /// Forward optical flow of the left view to frame t + 1, `[H, W, 2]` (the motion of the surface
    /// point, whether or not it is visible at t + 1); 0 where no surface.
    public var flow: [Float]
    /// Surface at each pixel centre: 0 ground, 1 back wall, 2 + k object k, 255 nothing, `[H, W]`.
    public var segmentation: [UInt8]
}

/// The `stereo` family: stereo video clips of dynamic scenes, as in WSVD's web stereo videos,
/// with the per-clip focal length, baseline and disparity offset unknown to a method but written
/// down here for evaluation.
///
/// Geometry: both cameras share the rig rotation R and the focal length f; the right camera sits
/// `baseline` along the rig's x axis, and its principal point is `c_x^R = c_x^L - offset` (a
/// shifted-sensor rig; WSVD's eq. (5.1) writes the offset as `c_x^R - c_x^L`, measuring d
/// the other way round). A point at left depth Z projects to `u_L = f X / Z + c_x^L` and
/// `u_R = f (X - b) / Z + c_x^R` on the same row, so `d = u_L - u_R = f b / Z + offset`.
/// Shading is Lambertian (view-independent), so both views see the same colour at a surface point.
public enum StereoScenes {
    /// Clip streams are offset from the image streams of the other families.
    static let streamBase: UInt64 = 0x5732_0000_0000

    /// The random parameters of clip `index` (a function of the seed and the index only).
    public static func parameters(index: Int, config: StereoSceneConfig) -> StereoClipParameters {
        var rng = SynthRandom(seed: config.seed, stream: streamBase &+ UInt64(index))
        let n = Float(config.size)
        let fov = rng.uniform(config.fieldOfView[0], config.fieldOfView[1])
        let focal = n / (2 * Foundation.tan(fov * .pi / 360))
        let baseline = rng.uniform(config.baseline[0], config.baseline[1])
        let offset = rng.uniform(config.offset[0], config.offset[1]) * n
        let yaw = rng.uniform(-1, 1) * config.maxRigYaw
        let pitch = rng.uniform(0, 1) * config.maxRigPitch
        let height = rng.uniform(config.cameraHeight[0], config.cameraHeight[1])
        let wall = rng.uniform(config.wallDistance[0], config.wallDistance[1])
        // Mostly sideways rig motion (a dolly), a little forward or back, none vertical; at most
        // 0.4 units either way.
        let speed = rng.uniform(0, 1) * config.maxCameraSpeed
        let heading = rng.uniform(-0.2, 0.2) * .pi
        let cameraPeriod = rng.uniform(24, 60)
        let cameraPath = Sway(direction: SIMD3(Foundation.cos(heading), 0, Foundation.sin(heading)),
                              amplitude: Swift.min(0.4, speed * cameraPeriod / (2 * .pi)), period: cameraPeriod,
                              phase: rng.uniform(0, 2 * .pi))
        let ambient = rng.uniform(config.ambient[0], config.ambient[1]), diffuse = rng.uniform(config.diffuse[0], config.diffuse[1])
        var light = SIMD3<Float>(rng.uniform(-1, 1), -rng.uniform(0.6, 1.5), -rng.uniform(0.2, 1))
        light /= (light * light).sum().squareRoot()
        let background = SIMD3<Float>(repeating: rng.uniform(0.5, 0.9))
        let ground = SolidTexture(pattern: rng.int(3) == 0 ? .marble : .tiles, scale: rng.uniform(1.2, 2.5), draw: &rng)
        let wallTexture = SolidTexture(pattern: rng.int(3) == 0 ? .stripes : .bricks, scale: rng.uniform(1.5, 3), draw: &rng)

        var params = StereoClipParameters(index: index, fieldOfView: fov, focal: focal, baseline: baseline, offset: offset,
                                          rigYaw: yaw, rigPitch: pitch, cameraPath: cameraPath, cameraHeight: height,
                                          wallDistance: wall, ambient: ambient, diffuse: diffuse, light: light, background: background,
                                          ground: ground, wall: wallTexture, objects: [])
        let rotation = params.rotation
        let forward = rotation.column(2), right = rotation.column(0)
        // Ground-plane directions of the rig's view.
        let flatForward = normalize(SIMD3(forward.x, 0, forward.z)), flatRight = normalize(SIMD3(right.x, 0, right.z))
        let halfView = Foundation.tan(fov * .pi / 360)
        let count = config.objects[0] + rng.int(config.objects[1] - config.objects[0] + 1)
        let patterns: [SolidTexture.Pattern] = [.marble, .checker, .stripes, .dots]
        for _ in 0..<count {
            let kind: StereoObject.Kind = rng.int(2) == 0 ? .box : .ellipsoid
            var half: SIMD3<Float>
            if kind == .box {
                half = SIMD3(rng.uniform(0.15, 0.45), rng.uniform(0.15, 0.45), rng.uniform(0.15, 0.45))
            } else {
                let r = rng.uniform(0.18, 0.42)
                half = SIMD3(r * rng.uniform(0.8, 1.2), r * rng.uniform(0.8, 1.2), r * rng.uniform(0.8, 1.2))
            }
            let radius = half.max()
            // Somewhere in the view, in front of the wall and clear of the cameras.
            let distance = rng.uniform(1.6, Swift.max(1.8, wall - 1 - radius))
            let lateral = rng.uniform(-0.7, 0.7) * halfView * distance
            var position = flatForward * distance + flatRight * lateral
            let floating = rng.int(3) == 0
            // Tumbling objects clear the ground with their largest half extent.
            let tumbles = floating || kind == .ellipsoid
            position.y = height - (tumbles ? radius : half.y) - (floating ? rng.uniform(0.2, 0.8) : 0)
            let objectSpeed = rng.uniform(0.3, 1) * config.maxObjectSpeed
            let angle = rng.uniform(0, 2 * .pi)
            let direction = SIMD3<Float>(Foundation.cos(angle), 0, Foundation.sin(angle))
            let period = rng.uniform(16, 48)
            // Keep the whole path at least 1.5 units in front of the rig's origin and off the wall.
            var amplitude = Swift.min(1.5, objectSpeed * period / (2 * .pi))
            let towards = Swift.abs((direction * flatForward).sum()), depthward = Swift.abs(direction.z)
            if towards > 1e-6 { amplitude = Swift.min(amplitude, Swift.max(0, ((position * flatForward).sum() - 1.5) / towards)) }
            if depthward > 1e-6 { amplitude = Swift.min(amplitude, Swift.max(0, (wall - radius - 0.2 - position.z) / depthward)) }
            let path = Sway(direction: direction, amplitude: amplitude, period: period, phase: rng.uniform(0, 2 * .pi))
            let bounce = floating || rng.int(3) != 0 ? Float(0) : rng.uniform(0.1, 0.4)
            // Resting boxes turn about the vertical only (so they stay on the ground); others tumble.
            var axis = SIMD3<Float>(0, 1, 0)
            if tumbles { axis = normalize(SIMD3(rng.normal(), rng.normal(), rng.normal()) + SIMD3(0, 1e-3, 0)) }
            let spinRate = rng.uniform(-1, 1) * config.maxSpin * .pi / 180
            let texture = SolidTexture(pattern: patterns[rng.int(patterns.count)], scale: rng.uniform(4, 9), draw: &rng)
            params.objects.append(StereoObject(kind: kind, halfExtents: half, position: position, path: path,
                                               bounceHeight: bounce, bouncePeriod: rng.uniform(4, 10), bouncePhase: rng.uniform(0, .pi),
                                               spinAxis: axis, spinStart: rng.uniform(0, 2 * .pi), spinRate: spinRate, texture: texture))
        }
        return params
    }

    @inline(__always) static func normalize(_ v: SIMD3<Float>) -> SIMD3<Float> { v / Swift.max((v * v).sum().squareRoot(), 1e-12) }

    // MARK: - Meshes

    /// The triangles of one frame: world vertices, per-vertex attributes (the point in its
    /// surface's own frame, for the texture, and the world normal) and the surface of each face.
    struct FrameMesh {
        var vertices: [Float] = []
        var attributes: [Float] = []
        var faces: [Int32] = []
        /// Per face: 0 ground, 1 wall, 2 + k object k.
        var surface: [Int32] = []
        static let channels = 6

        mutating func add(world: SIMD3<Float>, local: SIMD3<Float>, normal: SIMD3<Float>) -> Int32 {
            vertices += [world.x, world.y, world.z]
            attributes += [local.x, local.y, local.z, normal.x, normal.y, normal.z]
            return Int32(vertices.count / 3 - 1)
        }
        mutating func triangle(_ a: Int32, _ b: Int32, _ c: Int32, surface s: Int32) {
            faces += [a, b, c]
            surface.append(s)
        }
    }

    /// A grid of `nu × nv` quads spanning `origin + [0, 1] u + [0, 1] v` (tiles keep the triangles
    /// small enough for single-precision edge functions and near-plane clipping).
    static func addPlane(_ m: inout FrameMesh, origin: SIMD3<Float>, u: SIMD3<Float>, v: SIMD3<Float>, nu: Int, nv: Int,
                         normal: SIMD3<Float>, surface: Int32) {
        var index = [Int32](repeating: 0, count: (nu + 1) * (nv + 1))
        for j in 0...nv {
            for i in 0...nu {
                let p = origin + u * (Float(i) / Float(nu)) + v * (Float(j) / Float(nv))
                index[j * (nu + 1) + i] = m.add(world: p, local: p, normal: normal)
            }
        }
        for j in 0..<nv {
            for i in 0..<nu {
                let a = index[j * (nu + 1) + i], b = index[j * (nu + 1) + i + 1]
                let c = index[(j + 1) * (nu + 1) + i], d = index[(j + 1) * (nu + 1) + i + 1]
                m.triangle(a, b, d, surface: surface)
                m.triangle(a, d, c, surface: surface)
            }
        }
    }

    /// Object `k` at frame time `t`.
    static func addObject(_ m: inout FrameMesh, _ o: StereoObject, k: Int, t: Float, segments: Int) {
        let r = o.rotation(at: t), c = o.center(at: t)
        let surface = Int32(2 + k)
        switch o.kind {
        case .box:
            let h = o.halfExtents
            for axis in 0..<3 {
                for sign: Float in [-1, 1] {
                    var n = SIMD3<Float>.zero
                    n[axis] = sign
                    let a1 = (axis + 1) % 3, a2 = (axis + 2) % 3
                    var e1 = SIMD3<Float>.zero, e2 = SIMD3<Float>.zero
                    e1[a1] = h[a1]; e2[a2] = h[a2]
                    let centre = n * h
                    let corners = [centre - e1 - e2, centre + e1 - e2, centre + e1 + e2, centre - e1 + e2]
                    let worldNormal = r.apply(n)
                    let ids = corners.map { m.add(world: r.apply($0) + c, local: $0, normal: worldNormal) }
                    m.triangle(ids[0], ids[1], ids[2], surface: surface)
                    m.triangle(ids[0], ids[2], ids[3], surface: surface)
                }
            }
        case .ellipsoid:
            let rings = segments / 2, h = o.halfExtents
            var ids = [Int32](repeating: 0, count: (rings + 1) * (segments + 1))
            for j in 0...rings {
                let theta = Float.pi * Float(j) / Float(rings)
                for i in 0...segments {
                    let phi = 2 * Float.pi * Float(i) / Float(segments)
                    let unit = SIMD3<Float>(Foundation.sin(theta) * Foundation.cos(phi), Foundation.cos(theta),
                                            Foundation.sin(theta) * Foundation.sin(phi))
                    let local = unit * h
                    let normal = normalize(r.apply(unit / h))
                    ids[j * (segments + 1) + i] = m.add(world: r.apply(local) + c, local: local, normal: normal)
                }
            }
            for j in 0..<rings {
                for i in 0..<segments {
                    let a = ids[j * (segments + 1) + i], b = ids[j * (segments + 1) + i + 1]
                    let cc = ids[(j + 1) * (segments + 1) + i], d = ids[(j + 1) * (segments + 1) + i + 1]
                    if j > 0 { m.triangle(a, b, d, surface: surface) }
                    if j < rings - 1 { m.triangle(a, d, cc, surface: surface) }
                }
            }
        }
    }

    /// The whole scene at frame time `t`: the ground (y = cameraHeight, from behind the rig to
    /// the wall), the back wall (z = wallDistance, up to well above the view) and the objects.
    static func mesh(_ p: StereoClipParameters, t: Float, config: StereoSceneConfig) -> FrameMesh {
        var m = FrameMesh()
        let d = p.wallDistance, h = p.cameraHeight
        // Wide and tall enough that neither camera sees past the room's edges with the default
        // ranges: the view's half width at the wall is below d tan(37.5° + 12°) ≈ 1.2 d, and the
        // rig sways by at most 0.4. Wider views or larger yaws may see the background colour
        // (segmentation 255, depth 0).
        let halfWidth = 2.6 * d + 3, top = -(1.6 * d + 3), back: Float = -4
        let tiles = Swift.max(4, Int((2 * halfWidth / 1.5).rounded(.up)))
        addPlane(&m, origin: SIMD3(-halfWidth, h, back), u: SIMD3(2 * halfWidth, 0, 0), v: SIMD3(0, 0, d - back),
                 nu: tiles, nv: Swift.max(4, Int(((d - back) / 1.5).rounded(.up))), normal: SIMD3(0, -1, 0), surface: 0)
        addPlane(&m, origin: SIMD3(-halfWidth, top, d), u: SIMD3(2 * halfWidth, 0, 0), v: SIMD3(0, h - top, 0),
                 nu: tiles, nv: Swift.max(4, Int(((h - top) / 1.5).rounded(.up))), normal: SIMD3(0, 0, -1), surface: 1)
        for (k, o) in p.objects.enumerated() { addObject(&m, o, k: k, t: t, segments: config.sphereSegments) }
        return m
    }

    // MARK: - Cameras

    /// Intrinsics `(f, c_x, c_y)` of the left (`right == false`) or right camera with pixel centres
    /// on integers (pixel (i, j) at (u, v) = (i, j)).
    public static func intrinsics(_ p: StereoClipParameters, config: StereoSceneConfig, right: Bool) -> (f: Float, cx: Float, cy: Float) {
        let c = Float(config.size - 1) / 2
        return (p.focal, right ? c - p.offset : c, c)
    }

    /// The rasteriser's camera (pixel centres at i + 0.5) for one view at frame time `t`, at
    /// `scale` samples per pixel along each axis.
    public static func camera(_ p: StereoClipParameters, config: StereoSceneConfig, right: Bool, t: Float, scale: Int = 1) throws -> PinholeCamera {
        let (f, cx, cy) = intrinsics(p, config: config, right: right)
        let s = Float(scale), n = config.size * scale
        let r = p.rotation, c = right ? p.rightCenter(at: t) : p.leftCenter(at: t)
        let pose: [Float] = [r.rows[0].x, r.rows[0].y, r.rows[0].z, c.x,
                             r.rows[1].x, r.rows[1].y, r.rows[1].z, c.y,
                             r.rows[2].x, r.rows[2].y, r.rows[2].z, c.z]
        return try PinholeCamera(width: n, height: n, fx: f * s, fy: f * s, cx: (cx + 0.5) * s, cy: (cy + 0.5) * s, cameraToWorld: pose)
    }

    // MARK: - Rendering

    struct Raster {
        var faceIndex: [Int32]
        var depthTensor: Tensor
        var attributeTensor: Tensor
        var depth: UnsafeMutablePointer<Float> { depthTensor.dataPointer }
        var attributes: UnsafeMutablePointer<Float> { attributeTensor.dataPointer }
    }

    static func rasterise(_ m: FrameMesh, camera: PinholeCamera) throws -> Raster {
        let world = Tensor(m.vertices, shape: [m.vertices.count / 3, 3])
        let attributes = Tensor(m.attributes, shape: [m.attributes.count / FrameMesh.channels, FrameMesh.channels])
        let screen = MeshRasterizer.screenVertices(world, camera: camera)
        let fragments = try MeshRasterizer.rasterize(screenVertices: screen, faces: m.faces, width: camera.width, height: camera.height)
        let interpolated = try MeshRasterizer.interpolate(attributes: attributes, fragments: fragments, faces: m.faces)
        return Raster(faceIndex: fragments.faceIndex, depthTensor: fragments.depth, attributeTensor: interpolated)
    }

    /// The anti-aliased image of a raster: each supersample shaded, each pixel the mean of its samples.
    static func shade(_ raster: Raster, mesh m: FrameMesh, params p: StereoClipParameters, config: StereoSceneConfig) -> [Float] {
        let n = config.size, ss = config.supersampling, big = n * ss
        let textures = [p.ground, p.wall] + p.objects.map(\.texture)
        var image = [Float](repeating: 0, count: 3 * n * n)
        let inv = 1 / Float(ss * ss), inverseFocal = 1 / p.focal
        textures.withUnsafeBufferPointer { textures in
        m.surface.withUnsafeBufferPointer { surfaces in
        for j in 0..<n {
            for i in 0..<n {
                var sum = SIMD3<Float>.zero
                for dj in 0..<ss {
                    for di in 0..<ss {
                        let q = (j * ss + dj) * big + i * ss + di
                        let face = raster.faceIndex[q]
                        guard face >= 0 else { sum += p.background; continue }
                        let a = raster.attributes + FrameMesh.channels * q
                        let normal = normalize(SIMD3(a[3], a[4], a[5]))
                        // The pixel's footprint from the depth alone: the same in both views of the pair.
                        let albedo = textures[Int(surfaces[Int(face)])].color(at: SIMD3(a[0], a[1], a[2]),
                                                                              footprint: raster.depth[q] * inverseFocal)
                        let shade = p.ambient + p.diffuse * Swift.max(0, (normal * p.light).sum())
                        let c = albedo * shade
                        sum += SIMD3(Swift.min(c.x, 1), Swift.min(c.y, 1), Swift.min(c.z, 1))
                    }
                }
                let o = 3 * (j * n + i)
                image[o] = sum.x * inv; image[o + 1] = sum.y * inv; image[o + 2] = sum.z * inv
            }
        }
        }
        }
        return image
    }

    /// Relative depth difference under which the right view's surface at the matching position
    /// counts as the same point (so the point is not occluded there). The match is read at the
    /// nearest supersample, a third of a pixel away at most, which moves the depth of a surface
    /// seen at a slant by well under this.
    public static let visibilityTolerance: Float = 0.01

    /// Renders frame `frame` of clip `clip` with its ground truth.
    public static func render(clip: Int, frame: Int, config: StereoSceneConfig) throws -> StereoFrame {
        try render(parameters(index: clip, config: config), frame: frame, config: config)
    }

    /// Renders frame `frame` of the clip with parameters `p`.
    public static func render(_ p: StereoClipParameters, frame: Int, config: StereoSceneConfig) throws -> StereoFrame {
        try config.validate()
        guard frame >= 0 && frame < config.frames else {
            throw SynthError("frame must be in 0..<\(config.frames), got \(frame)")
        }
        return try GradMode.withoutGrad { try renderValidated(p, frame: frame, config: config) }
    }

    static func renderValidated(_ p: StereoClipParameters, frame: Int, config: StereoSceneConfig) throws -> StereoFrame {
        let t = Float(frame)
        let n = config.size, ss = config.supersampling, big = n * ss, mid = ss / 2
        let m = mesh(p, t: t, config: config)
        let leftRaster = try rasterise(m, camera: camera(p, config: config, right: false, t: t, scale: ss))
        let rightRaster = try rasterise(m, camera: camera(p, config: config, right: true, t: t, scale: ss))
        let left = shade(leftRaster, mesh: m, params: p, config: config)
        let right = shade(rightRaster, mesh: m, params: p, config: config)

        // Geometry in double precision, so the stored disparity is the projection's to float rounding.
        let (f, cxL, cy) = intrinsics(p, config: config, right: false)
        let cxR = intrinsics(p, config: config, right: true).cx
        let r = p.rotation
        let rows = r.rows.map { SIMD3<Double>(Double($0.x), Double($0.y), Double($0.z)) }
        func toWorld(_ v: SIMD3<Double>) -> SIMD3<Double> {   // R v
            SIMD3((rows[0] * v).sum(), (rows[1] * v).sum(), (rows[2] * v).sum())
        }
        func toCamera(_ v: SIMD3<Double>) -> SIMD3<Double> {  // Rᵀ v
            rows[0] * v.x + rows[1] * v.y + rows[2] * v.z
        }
        func d3(_ v: SIMD3<Float>) -> SIMD3<Double> { SIMD3(Double(v.x), Double(v.y), Double(v.z)) }
        let fd = Double(f), cxLd = Double(cxL), cxRd = Double(cxR), cyd = Double(cy)
        let leftCentre = d3(p.leftCenter(at: t)), rightCentre = d3(p.rightCenter(at: t)), nextCentre = d3(p.leftCenter(at: t + 1))
        // Object poses at t + 1, for the flow.
        let next = p.objects.map { (r: $0.rotation(at: t + 1), c: $0.center(at: t + 1)) }

        var disparity = [Float](repeating: 0, count: n * n), depth = [Float](repeating: 0, count: n * n)
        var mask = [UInt8](repeating: 0, count: n * n), flow = [Float](repeating: 0, count: 2 * n * n)
        var segmentation = [UInt8](repeating: 255, count: n * n)
        for j in 0..<n {
            for i in 0..<n {
                let q = (j * ss + mid) * big + i * ss + mid
                let face = leftRaster.faceIndex[q]
                guard face >= 0 else { continue }
                let pix = j * n + i
                let surface = Int(m.surface[Int(face)])
                segmentation[pix] = UInt8(surface)
                let z = leftRaster.depth[q]
                depth[pix] = z
                let zd = Double(z)
                let ray = SIMD3((Double(i) - cxLd) / fd, (Double(j) - cyd) / fd, 1)
                let world = leftCentre + toWorld(ray * zd)
                // Disparity: where the right camera sees this point.
                let inRight = toCamera(world - rightCentre)
                let uR = fd * inRight.x / inRight.z + cxRd
                let d = Double(i) - uR
                disparity[pix] = Float(d)
                // Valid: inside the right image (with both bilinear neighbours) and the right view's
                // nearest supersample shows the same surface at the same depth.
                if uR >= 0 && uR <= Double(n - 1) {
                    let column = Int(((uR + 0.5) * Double(ss) - 0.5).rounded())
                    let rq = (j * ss + mid) * big + Swift.min(Swift.max(column, 0), big - 1)
                    let rf = rightRaster.faceIndex[rq]
                    if rf >= 0 && Int(m.surface[Int(rf)]) == surface
                        && Swift.abs(rightRaster.depth[rq] - z) <= visibilityTolerance * z {
                        mask[pix] = 1
                    }
                }
                // Flow: the same surface point one frame later, seen by the left camera then.
                var later = world
                if surface >= 2 {
                    let a = leftRaster.attributes + FrameMesh.channels * q
                    let local = SIMD3<Float>(a[0], a[1], a[2])
                    let k = surface - 2
                    later = d3(next[k].r.apply(local) + next[k].c)
                }
                let seen = toCamera(later - nextCentre)
                flow[2 * pix] = Float(fd * seen.x / seen.z + cxLd - Double(i))
                flow[2 * pix + 1] = Float(fd * seen.y / seen.z + cyd - Double(j))
            }
        }
        return StereoFrame(clip: p.index, frame: frame, size: n, left: left, right: right, disparity: disparity, depth: depth,
                           mask: mask, flow: flow, segmentation: segmentation)
    }
}
