import DeformGeometry
import DeformRender
import DeformTensor
import Foundation

/// The body kinds of the `character` family.
public enum CharacterKind: String, CaseIterable, Codable, Sendable {
    /// A 21-joint person, ``Humanoid``.
    case humanoid
    /// A 24-joint dog-like animal, ``Quadruped``.
    case quadruped
}

/// A sampled character of either kind.
public enum CharacterIdentity: Sendable, Equatable {
    case humanoid(HumanoidIdentity)
    case quadruped(QuadrupedIdentity)

    public var kind: CharacterKind {
        switch self {
        case .humanoid: return .humanoid
        case .quadruped: return .quadruped
        }
    }

    /// The rest-pose skeleton.
    public var skeleton: KinematicTree {
        switch self {
        case .humanoid(let h): return h.skeleton
        case .quadruped(let q): return q.skeleton
        }
    }

    /// Joint names and parents of the kind.
    public static func joints(_ kind: CharacterKind) -> (names: [String], parents: [Int]) {
        kind == .humanoid ? (Humanoid.jointNames, Humanoid.parents) : (Quadruped.jointNames, Quadruped.parents)
    }
}

/// Every parameter of a `character` dataset. Written to `scene.json`; the same configuration and
/// ``generatorVersion`` give byte-identical files.
public struct CharacterSceneConfig: Codable, Sendable, Equatable {
    /// Bumped whenever a change to the generator changes its output.
    public static let generatorVersion = "character-1"

    public var seed: UInt64 = 0
    /// The body kind of every video.
    public var kind: CharacterKind = .humanoid
    /// Number of videos (one character identity each).
    public var count: Int = 1
    /// Training frames per video.
    public var frames: Int = 120
    /// Image width and height in pixels.
    public var size: Int = 256
    /// Samples per pixel along each axis for anti-aliasing (odd: the centre sample is the pixel
    /// centre and gives the point-sampled ground truth).
    public var supersampling: Int = 3
    /// Frames per second of the motion clock.
    public var fps: Float = 30
    /// The motion of every video; `nil` draws one of walk, wave, squat, turn, jump, random per video.
    public var motion: CharacterMotionKind? = nil
    /// Vertical field of view in degrees.
    public var fieldOfView: Float = 36
    /// Range of the camera's distance from the look-at point (metres) and of its height.
    public var cameraDistance: [Float] = [3.3, 4.2]
    public var cameraHeight: [Float] = [0.5, 2.0]
    /// Probability that the training camera is static; otherwise it orbits the character slowly,
    /// sweeping up to ``maxOrbitDegrees`` over the video.
    public var staticCameraProbability: Float = 0.5
    public var maxOrbitDegrees: Float = 60
    /// Held-out static cameras (novel views) and the training frames they render (every
    /// `novelViewStride`-th).
    public var novelViews: Int = 3
    public var novelViewStride: Int = 10
    /// Frames of a held-out motion (novel poses), seen by the training camera at its first position.
    public var novelPoseFrames: Int = 20
    /// Mesh resolution: vertices around each capsule and rings along its tube.
    public var meshSegments: Int = 16
    public var meshRings: Int = 6

    public init() {}

    /// Throws a ``SynthError`` naming the first parameter that is out of range.
    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws { try SynthFiles.check(ok, message) }
        try check(count > 0, "count must be positive, got \(count)")
        try check(count <= 100_000, "count must be at most 100000, got \(count)")
        try check(frames > 0, "frames must be positive, got \(frames)")
        try check(frames <= 100_000, "frames must be at most 100000, got \(frames)")
        try check(size >= 8 && size <= 4096, "size must be in 8...4096 pixels, got \(size)")
        try check(supersampling >= 1 && supersampling % 2 == 1 && supersampling <= 9, "supersampling must be odd and in 1...9, got \(supersampling)")
        try check(fps > 0 && fps.isFinite, "fps must be positive, got \(fps)")
        try check(fieldOfView > 5 && fieldOfView < 120, "fieldOfView must be in (5, 120) degrees, got \(fieldOfView)")
        try check(cameraDistance.count == 2 && cameraDistance[0] >= 1.5 && cameraDistance[0] <= cameraDistance[1],
                  "cameraDistance must be a range [lo, hi] with 1.5 <= lo <= hi, got \(cameraDistance)")
        try check(cameraHeight.count == 2 && cameraHeight[0] > 0 && cameraHeight[0] <= cameraHeight[1],
                  "cameraHeight must be a range [lo, hi] with 0 < lo <= hi (the camera stays above the ground), got \(cameraHeight)")
        try check(staticCameraProbability >= 0 && staticCameraProbability <= 1, "staticCameraProbability must be in [0, 1]")
        try check(maxOrbitDegrees >= 0 && maxOrbitDegrees <= 360, "maxOrbitDegrees must be in [0, 360], got \(maxOrbitDegrees)")
        try check(novelViews >= 0 && novelViews <= 32, "novelViews must be in 0...32, got \(novelViews)")
        try check(novelViewStride >= 1, "novelViewStride must be positive, got \(novelViewStride)")
        try check(novelPoseFrames >= 0 && novelPoseFrames <= 100_000, "novelPoseFrames must be in 0...100000, got \(novelPoseFrames)")
        try check(meshSegments >= 6 && meshSegments <= 64 && meshRings >= 1 && meshRings <= 64,
                  "meshSegments must be in 6...64 and meshRings in 1...64")
    }

    /// Training frames that the novel views render.
    public var novelViewFrames: [Int] { Array(stride(from: 0, to: frames, by: novelViewStride)) }
}

/// A camera placement on a circle around the look-at point.
public struct CharacterCameraPlacement: Codable, Sendable, Equatable {
    /// Azimuth (radians about y; 0 puts the camera on the +z side, in front of a character facing +z).
    public var azimuth: Float
    public var distance: Float
    public var height: Float
}

/// The random parameters of one video (a function of the seed and the video index only).
public struct CharacterVideoParameters: Sendable {
    public var index: Int
    public var identity: CharacterIdentity
    public var motion: CharacterMotionParameters
    /// The held-out motion of the novel-pose frames.
    public var novelPoseMotion: CharacterMotionParameters
    /// The training camera at frame 0 and its total orbit over the video (radians, 0: static).
    public var camera: CharacterCameraPlacement
    public var orbit: Float
    /// Held-out static cameras.
    public var novelCameras: [CharacterCameraPlacement]
    /// Look-at point (world).
    public var target: SIMD3<Float>
    /// Directional light (world, unit, pointing towards the light), ambient and diffuse terms.
    public var lightDirection: SIMD3<Float>
    public var ambient: Float
    public var diffuse: Float
    /// Ground tile colours and the environment's noise seed.
    public var groundA: SIMD3<Float>
    public var groundB: SIMD3<Float>
    public var environmentSeed: UInt32
}

/// One rendered frame with its ground truth, `size × size`, row-major.
public struct CharacterFrame: Sendable {
    /// `train`, `novel_view` or `novel_pose`.
    public var split: String
    /// Frame number within its sequence, and the camera (0: the training camera).
    public var frame: Int
    public var cameraIndex: Int
    public var time: Float
    public var size: Int
    /// RGB `[H, W, 3]` in [0, 1] (box filter over the supersamples).
    public var image: [Float]
    /// 1 where the character covers the pixel centre, `[H, W]`.
    public var mask: [UInt8]
    /// Fraction of the pixel's supersamples on the character, `[H, W]`.
    public var coverage: [Float]
    /// Camera depth (z) at the pixel centre, 0 on background, `[H, W]`.
    public var depth: [Float]
    /// Displacement `[H, W, 2]` (pixels) of the surface point at each pixel centre to its
    /// position in the next frame of the sequence (the same camera at time + 1/fps); 0 on background.
    public var flow: [Float]
    /// 1 where `flow` is defined and the point is visible in the next frame, `[H, W]`.
    public var flowValid: [UInt8]
    /// Joint positions: image `[J, 2]` (pixel centres at i + 0.5), world `[J, 3]`, camera `[J, 3]`.
    public var joints2D: [Float]
    public var joints3DWorld: [Float]
    public var joints3DCamera: [Float]
    public var pose: CharacterPose
    /// World rotations `[J, 3, 3]` of the joints (forward kinematics).
    public var worldRotations: [Float]
    /// The camera at the output resolution (pixel centres at i + 0.5, OpenCV axes).
    public var camera: PinholeCamera
    /// Posed mesh vertices `[V, 3]` (world).
    public var vertices: [Float]
}

/// The per-video data shared by its frames: the identity's skeleton and rest mesh.
public struct CharacterAssets: Sendable {
    public var parameters: CharacterVideoParameters
    public var skeleton: KinematicTree
    public var mesh: CharacterMesh
    let restJoints: [Float]
    let restVertices: Tensor
    let restNormals: Tensor
    let weights: Tensor
}

/// The `character` family: videos of procedural, skinned humanoids in motion with full ground
/// truth (images, masks, depth, flow, 2D/3D joints, joint rotations, cameras, rest meshes with
/// skinning weights).
///
/// World frame: y up, the ground is y = 0, metres. Each frame poses the rest mesh with forward
/// kinematics and linear blend skinning (``KinematicTree``, ``LinearBlendSkinning``), rasterises
/// it with ``MeshRasterizer`` at `supersampling ×` the resolution and shades it with a Lambertian
/// model, `c = albedo (k_a + k_d max(0, n · l))`, over a ground-plane-and-sky environment; the
/// ground truth is read at the pixel centres.
public enum CharacterScenes {
    /// The random parameters of video `index`.
    public static func parameters(index: Int, config: CharacterSceneConfig) -> CharacterVideoParameters {
        var rng = SynthRandom(seed: config.seed, stream: UInt64(index))
        let identity: CharacterIdentity = config.kind == .humanoid ? .humanoid(HumanoidIdentity(draw: &rng))
                                                                   : .quadruped(QuadrupedIdentity(draw: &rng))
        // The animal is smaller: cameras come closer and lower.
        let near: Float = config.kind == .humanoid ? 1 : 0.75
        let kinds: [CharacterMotionKind] = CharacterMotionKind.allCases
        let drawn = kinds[rng.int(kinds.count)]
        var motion = CharacterMotionParameters(kind: config.motion ?? drawn, draw: &rng)
        // Start the walk mid-path so it is in view from the first frame.
        if motion.kind == .walk { motion.phase = 0 }
        var novel = CharacterMotionParameters(kind: .random, draw: &rng)
        novel.heading = rng.uniform(-0.6, 0.6)
        let d2r = Float.pi / 180
        let camera = CharacterCameraPlacement(azimuth: rng.uniform(-0.5, 0.5),
                                              distance: near * rng.uniform(config.cameraDistance[0], config.cameraDistance[1]),
                                              height: near * rng.uniform(config.cameraHeight[0], config.cameraHeight[1]))
        let isStatic = rng.uniform() < config.staticCameraProbability
        let sweep = rng.uniform(0.3, 1) * config.maxOrbitDegrees * d2r * (rng.uniform() < 0.5 ? -1 : 1)
        let orbit = isStatic ? 0 : sweep
        let novelCameras = (0..<config.novelViews).map { k in
            CharacterCameraPlacement(azimuth: camera.azimuth + 2 * Float.pi * Float(k + 1) / Float(config.novelViews + 1) + rng.uniform(-0.2, 0.2),
                                     distance: near * rng.uniform(config.cameraDistance[0], config.cameraDistance[1]),
                                     height: near * rng.uniform(config.cameraHeight[0], config.cameraHeight[1]))
        }
        let target: SIMD3<Float>
        switch identity {
        case .humanoid(let h): target = SIMD3(0, 0.9 * h.height, 0)
        case .quadruped(let q): target = SIMD3(0, 0.35 * q.size, 0)
        }
        let light = normalized3(SIMD3(rng.uniform(-1, 1), rng.uniform(0.6, 1.6), rng.uniform(-1, 1)))
        let ambient = rng.uniform(0.35, 0.5), diffuse = rng.uniform(0.45, 0.7)
        let grey = rng.uniform(0.35, 0.75)
        let tint = SIMD3<Float>(rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.15))
        let groundA = grey * tint, groundB = groundA * rng.uniform(0.6, 0.85)
        let environmentSeed = UInt32(truncatingIfNeeded: rng.int(1 << 30))
        var p = CharacterVideoParameters(index: index, identity: identity, motion: motion, novelPoseMotion: novel, camera: camera,
                                         orbit: orbit, novelCameras: novelCameras, target: target, lightDirection: light,
                                         ambient: ambient, diffuse: diffuse, groundA: groundA, groundB: groundB,
                                         environmentSeed: environmentSeed)
        frame(&p, config: config)
        return p
    }

    /// The fraction of the image kept free on every side around the projected joints (the body
    /// extends beyond its joints: head top, hands, paws).
    static let frameMargin: Float = 0.12

    /// Moves every camera back (by 12 % steps) until all joints of the frames it sees project
    /// inside the image with ``frameMargin`` to spare, so that walking, jumping and the held-out
    /// poses stay in view. Uses at most 120 evenly spaced frames per sequence.
    static func frame(_ p: inout CharacterVideoParameters, config: CharacterSceneConfig) {
        let skeleton = p.identity.skeleton
        func joints(_ m: CharacterMotionParameters, _ f: Int) -> [SIMD3<Float>] {
            let t = Float(f) / config.fps
            let pose = p.identity.kind == .humanoid ? CharacterMotion.pose(m, time: t, skeleton: skeleton)
                                                    : Quadruped.pose(m, time: t, skeleton: skeleton)
            let q = GradMode.withoutGrad {
                try! skeleton.forwardKinematics(localRotations: Tensor(pose.localRotations, shape: [skeleton.jointCount, 3, 3]),
                                                rootRotation: Tensor(pose.rootRotation, shape: [3, 3]),
                                                rootTranslation: Tensor([pose.translation.x, pose.translation.y, pose.translation.z]))
            }.positions.scalars
            return (0..<skeleton.jointCount).map { SIMD3(q[3 * $0], q[3 * $0 + 1], q[3 * $0 + 2]) }
        }
        func sampled(_ count: Int) -> [Int] {
            count <= 120 ? Array(0..<count) : (0..<120).map { $0 * (count - 1) / 119 }
        }
        let trainFrames = sampled(config.frames)
        let train = trainFrames.map { joints(p.motion, $0) }
        let novelPoses = sampled(config.novelPoseFrames).map { joints(p.novelPoseMotion, $0) }
        let lo = frameMargin * Float(config.size), hi = Float(config.size) - lo
        func fits(_ placement: CharacterCameraPlacement, _ points: [SIMD3<Float>]) -> Bool {
            guard let cam = try? camera(placement, target: p.target, size: config.size, fieldOfView: config.fieldOfView) else { return true }
            let m = cam.cameraToWorld
            for x in points {
                let d = x - SIMD3(m[3], m[7], m[11])
                let c = SIMD3(m[0] * d.x + m[4] * d.y + m[8] * d.z, m[1] * d.x + m[5] * d.y + m[9] * d.z, m[2] * d.x + m[6] * d.y + m[10] * d.z)
                guard c.z > 0.1 else { return false }
                let u = cam.fx * c.x / c.z + cam.cx, v = cam.fy * c.y / c.z + cam.cy
                if u < lo || u > hi || v < lo || v > hi { return false }
            }
            return true
        }
        for _ in 0..<16 {
            var ok = true
            for (k, f) in trainFrames.enumerated() {
                var placement = p.camera
                placement.azimuth += p.orbit * Float(f) / Float(Swift.max(config.frames - 1, 1))
                if !fits(placement, train[k]) { ok = false; break }
            }
            if ok { ok = novelPoses.allSatisfy { fits(p.camera, $0) } }
            if ok { break }
            p.camera.distance *= 1.12
        }
        let novelViewIndices = trainFrames.enumerated().filter { $0.element % config.novelViewStride == 0 }.map(\.offset)
        for c in 0..<p.novelCameras.count {
            for _ in 0..<16 {
                if novelViewIndices.allSatisfy({ fits(p.novelCameras[c], train[$0]) }) { break }
                p.novelCameras[c].distance *= 1.12
            }
        }
    }

    /// The skeleton, rest mesh and skinning weights of video `index`.
    public static func assets(index: Int, config: CharacterSceneConfig) throws -> CharacterAssets {
        try config.validate()
        return assets(parameters(index: index, config: config), config: config)
    }

    static func assets(_ p: CharacterVideoParameters, config: CharacterSceneConfig) -> CharacterAssets {
        let skeleton = p.identity.skeleton
        let mesh: CharacterMesh
        switch p.identity {
        case .humanoid(let h): mesh = CharacterMesh(identity: h, segments: config.meshSegments, rings: config.meshRings)
        case .quadruped(let q): mesh = CharacterMesh(quadruped: q, segments: config.meshSegments, rings: config.meshRings)
        }
        let v = mesh.vertices.count
        return CharacterAssets(parameters: p, skeleton: skeleton, mesh: mesh, restJoints: skeleton.restPositions,
                               restVertices: Tensor(mesh.vertices.flatMap { [$0.x, $0.y, $0.z] }, shape: [v, 3]),
                               restNormals: Tensor(mesh.normals.flatMap { [$0.x, $0.y, $0.z] }, shape: [v, 3]),
                               weights: Tensor(mesh.weights, shape: [v, mesh.jointCount]))
    }

    /// An OpenCV-axes camera at `placement` looking at `target`, `width = height = size`.
    public static func camera(_ placement: CharacterCameraPlacement, target: SIMD3<Float>, size: Int, fieldOfView: Float) throws -> PinholeCamera {
        let eye = SIMD3<Float>(placement.distance * Foundation.sin(placement.azimuth), placement.height,
                               placement.distance * Foundation.cos(placement.azimuth))
        let z = normalized3(target - eye)
        let x = normalized3(cross3(z, SIMD3(0, 1, 0)))
        let y = cross3(z, x)
        let pose: [Float] = [x.x, y.x, z.x, eye.x, x.y, y.y, z.y, eye.y, x.z, y.z, z.z, eye.z]
        return try PinholeCamera(width: size, height: size, verticalFieldOfView: fieldOfView, cameraToWorld: pose)
    }

    /// The camera of frame `frame` of camera `cameraIndex` (0: the training camera, orbiting or
    /// static; k ≥ 1: novel view k; -1: the novel-pose camera, the training camera at frame 0).
    public static func camera(_ p: CharacterVideoParameters, cameraIndex: Int, frame: Int, config: CharacterSceneConfig) throws -> PinholeCamera {
        var placement: CharacterCameraPlacement
        switch cameraIndex {
        case 0:
            placement = p.camera
            placement.azimuth += p.orbit * Float(frame) / Float(Swift.max(config.frames - 1, 1))
        case ..<0: placement = p.camera
        default: placement = p.novelCameras[cameraIndex - 1]
        }
        return try camera(placement, target: p.target, size: config.size, fieldOfView: config.fieldOfView)
    }

    /// The same camera at `factor ×` the resolution (pixel centres stay at i + 0.5).
    static func scaled(_ c: PinholeCamera, _ factor: Int) throws -> PinholeCamera {
        let s = Float(factor)
        return try PinholeCamera(width: c.width * factor, height: c.height * factor, fx: c.fx * s, fy: c.fy * s, cx: c.cx * s, cy: c.cy * s,
                                 cameraToWorld: c.cameraToWorld)
    }

    /// Posed geometry: vertices and normals `[V, 3]` (flat), joint world rotations and positions.
    struct Posed {
        var vertices: [Float]
        var normals: [Float]
        var rotations: [Float]
        var positions: [Float]
    }

    static func posed(_ a: CharacterAssets, _ pose: CharacterPose) -> Posed {
        GradMode.withoutGrad {
            let j = a.skeleton.jointCount
            let (r, p) = try! a.skeleton.forwardKinematics(localRotations: Tensor(pose.localRotations, shape: [j, 3, 3]),
                                                          rootRotation: Tensor(pose.rootRotation, shape: [3, 3]),
                                                          rootTranslation: Tensor([pose.translation.x, pose.translation.y, pose.translation.z]))
            let (g, t) = try! a.skeleton.skinningTransforms(rotations: r, positions: p)
            let v = try! LinearBlendSkinning.skin(vertices: a.restVertices, weights: a.weights, rotations: g, translations: t)
            let n = try! LinearBlendSkinning.skin(vertices: a.restNormals, weights: a.weights, rotations: g, translations: Tensor.zeros([j, 3]))
            return Posed(vertices: v.scalars, normals: n.scalars, rotations: r.scalars, positions: p.scalars)
        }
    }

    /// The pose of a frame: training and novel-view frames follow the video's motion, novel-pose
    /// frames the held-out one.
    public static func pose(_ a: CharacterAssets, split: String, frame: Int, config: CharacterSceneConfig) -> CharacterPose {
        let motion = split == "novel_pose" ? a.parameters.novelPoseMotion : a.parameters.motion
        let t = Float(frame) / config.fps
        switch a.parameters.identity {
        case .humanoid: return CharacterMotion.pose(motion, time: t, skeleton: a.skeleton)
        case .quadruped: return Quadruped.pose(motion, time: t, skeleton: a.skeleton)
        }
    }

    /// Renders one frame with its ground truth. `split` is `train`, `novel_view` (with
    /// `cameraIndex` ≥ 1) or `novel_pose`.
    public static func render(_ a: CharacterAssets, split: String, frame: Int, cameraIndex: Int = 0,
                              config: CharacterSceneConfig) throws -> CharacterFrame {
        try config.validate()
        guard ["train", "novel_view", "novel_pose"].contains(split) else {
            throw SynthError("split must be train, novel_view or novel_pose, got '\(split)'")
        }
        guard frame >= 0 else { throw SynthError("frame must be non-negative, got \(frame)") }
        let camIndex = split == "novel_pose" ? -1 : (split == "train" ? 0 : cameraIndex)
        guard split != "novel_view" || (1...Swift.max(1, config.novelViews)).contains(cameraIndex) && config.novelViews > 0 else {
            throw SynthError("novel view camera must be in 1...\(config.novelViews), got \(cameraIndex)")
        }
        let p = a.parameters
        let n = config.size, ss = config.supersampling, big = n * ss, mid = ss / 2
        let cam = try camera(p, cameraIndex: camIndex, frame: frame, config: config)
        let nextCam = try camera(p, cameraIndex: camIndex, frame: frame + 1, config: config)
        let bigCam = try scaled(cam, ss)
        let pose = self.pose(a, split: split, frame: frame, config: config)
        let nextPose = self.pose(a, split: split, frame: frame + 1, config: config)
        let now = posed(a, pose), next = posed(a, nextPose)
        let vcount = a.mesh.vertices.count
        let faces = a.mesh.faces

        let fragments = try GradMode.withoutGrad {
            let screen = MeshRasterizer.screenVertices(Tensor(now.vertices, shape: [vcount, 3]), camera: bigCam)
            return try MeshRasterizer.rasterize(screenVertices: screen, faces: faces, width: big, height: big)
        }
        // The next frame's depth at the output resolution, for the flow's visibility test.
        let nextFragments = try GradMode.withoutGrad {
            let screen = MeshRasterizer.screenVertices(Tensor(next.vertices, shape: [vcount, 3]), camera: nextCam)
            return try MeshRasterizer.rasterize(screenVertices: screen, faces: faces, width: n, height: n)
        }
        let bary = fragments.barycentrics.scalars, zbuf = fragments.depth.scalars
        let nextFace = nextFragments.faceIndex, nextDepth = nextFragments.depth.scalars
        let rest = a.restVertices.scalars
        let m = cam.cameraToWorld
        let eye = SIMD3(m[3], m[7], m[11])
        let light = p.lightDirection
        let palette = (p.groundA, p.groundB)

        var image = [Float](repeating: 0, count: 3 * n * n), mask = [UInt8](repeating: 0, count: n * n)
        var coverage = [Float](repeating: 0, count: n * n), depth = [Float](repeating: 0, count: n * n)
        var flow = [Float](repeating: 0, count: 2 * n * n), flowValid = [UInt8](repeating: 0, count: n * n)
        let inv = 1 / Float(ss * ss)
        let nm = nextCam.cameraToWorld
        // World → next camera: Rᵀ (X - t).
        func toNextCamera(_ x: SIMD3<Float>) -> SIMD3<Float> {
            let d = x - SIMD3(nm[3], nm[7], nm[11])
            return SIMD3(nm[0] * d.x + nm[4] * d.y + nm[8] * d.z, nm[1] * d.x + nm[5] * d.y + nm[9] * d.z, nm[2] * d.x + nm[6] * d.y + nm[10] * d.z)
        }
        image.withUnsafeMutableBufferPointer { img in
            coverage.withUnsafeMutableBufferPointer { cov in
                let imgP = img.baseAddress!, covP = cov.baseAddress!
                // Rows are independent: split them over the cores (each row writes its own pixels).
                Threads.parallelRanges(n, minChunk: 4) { rows in
                    for j in rows {
                        for i in 0..<n {
                            var sum = SIMD3<Float>.zero
                            var covered = 0
                            for dj in 0..<ss {
                                let y = j * ss + dj
                                for di in 0..<ss {
                                    let x = i * ss + di
                                    let q = y * big + x
                                    let f = Int(fragments.faceIndex[q])
                                    if f < 0 {
                                        let cx = (Float(x) + 0.5 - bigCam.cx) / bigCam.fx, cy = (Float(y) + 0.5 - bigCam.cy) / bigCam.fy
                                        let dir = normalized3(SIMD3(m[0] * cx + m[1] * cy + m[2], m[4] * cx + m[5] * cy + m[6], m[8] * cx + m[9] * cy + m[10]))
                                        sum += Humanoid.environment(origin: eye, direction: dir, seed: p.environmentSeed, palette: palette)
                                        continue
                                    }
                                    covered += 1
                                    var restP = SIMD3<Float>.zero, normal = SIMD3<Float>.zero
                                    for k in 0..<3 {
                                        let vi = Int(faces[3 * f + k]), b = bary[3 * q + k]
                                        restP += b * SIMD3(rest[3 * vi], rest[3 * vi + 1], rest[3 * vi + 2])
                                        normal += b * SIMD3(now.normals[3 * vi], now.normals[3 * vi + 1], now.normals[3 * vi + 2])
                                    }
                                    let albedo: SIMD3<Float>
                                    switch p.identity {
                                    case .humanoid(let h):
                                        albedo = Humanoid.albedo(restP, part: Humanoid.Part(rawValue: Int(a.mesh.faceParts[f])) ?? .chest,
                                                                 identity: h, rest: a.restJoints)
                                    case .quadruped(let q):
                                        albedo = Quadruped.albedo(restP, part: Quadruped.Part(rawValue: Int(a.mesh.faceParts[f])) ?? .body,
                                                                  identity: q, rest: a.restJoints)
                                    }
                                    let shade = p.ambient + p.diffuse * Swift.max(0, dot3(normalized3(normal), light))
                                    sum += Humanoid.clamp01(albedo * shade)
                                }
                            }
                            let pix = j * n + i
                            imgP[3 * pix] = sum.x * inv; imgP[3 * pix + 1] = sum.y * inv; imgP[3 * pix + 2] = sum.z * inv
                            covP[pix] = Float(covered) * inv
                        }
                    }
                }
            }
        }
        // Ground truth at the pixel centres (the centre supersample).
        for j in 0..<n {
            for i in 0..<n {
                let q = (j * ss + mid) * big + i * ss + mid
                let f = Int(fragments.faceIndex[q])
                guard f >= 0 else { continue }
                let pix = j * n + i
                mask[pix] = 1
                depth[pix] = zbuf[q]
                var x = SIMD3<Float>.zero
                for k in 0..<3 {
                    let vi = Int(faces[3 * f + k]), b = bary[3 * q + k]
                    x += b * SIMD3(next.vertices[3 * vi], next.vertices[3 * vi + 1], next.vertices[3 * vi + 2])
                }
                let c = toNextCamera(x)
                guard c.z > MeshRasterizer.near else { continue }
                let u = nextCam.fx * c.x / c.z + nextCam.cx, v = nextCam.fy * c.y / c.z + nextCam.cy
                flow[2 * pix] = u - (Float(i) + 0.5)
                flow[2 * pix + 1] = v - (Float(j) + 0.5)
                let ti = Int(u.rounded(.down)), tj = Int(v.rounded(.down))
                if ti >= 0, ti < n, tj >= 0, tj < n, nextFace[tj * n + ti] >= 0,
                   Swift.abs(nextDepth[tj * n + ti] - c.z) < 0.03 * c.z {
                    flowValid[pix] = 1
                }
            }
        }
        // Joints.
        let jc = a.skeleton.jointCount
        var j2 = [Float](repeating: 0, count: 2 * jc), jcam = [Float](repeating: 0, count: 3 * jc)
        for k in 0..<jc {
            let d = SIMD3(now.positions[3 * k], now.positions[3 * k + 1], now.positions[3 * k + 2]) - eye
            let c = SIMD3(m[0] * d.x + m[4] * d.y + m[8] * d.z, m[1] * d.x + m[5] * d.y + m[9] * d.z, m[2] * d.x + m[6] * d.y + m[10] * d.z)
            jcam[3 * k] = c.x; jcam[3 * k + 1] = c.y; jcam[3 * k + 2] = c.z
            j2[2 * k] = cam.fx * c.x / c.z + cam.cx
            j2[2 * k + 1] = cam.fy * c.y / c.z + cam.cy
        }
        return CharacterFrame(split: split, frame: frame, cameraIndex: Swift.max(camIndex, 0), time: Float(frame) / config.fps, size: n,
                              image: image, mask: mask, coverage: coverage, depth: depth, flow: flow, flowValid: flowValid,
                              joints2D: j2, joints3DWorld: now.positions, joints3DCamera: jcam, pose: pose,
                              worldRotations: now.rotations, camera: cam, vertices: now.vertices)
    }
}
