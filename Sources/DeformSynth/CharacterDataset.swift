import DeformIO
import DeformRender
import DeformTensor
import Foundation

/// Writing a `character` dataset folder.
extension CharacterScenes {
    /// The members of every per-frame `.npz` file, with their meaning (also written to
    /// `scene.json` and the folder's `README.md`).
    public static let arrayDescriptions: [(name: String, description: String)] = [
        ("mask", "uint8 [H, W]: 1 where the character covers the pixel centre (exactly depth > 0)"),
        ("coverage", "float32 [H, W]: fraction of the pixel's supersamples on the character (the anti-aliased mask)"),
        ("depth", "float32 [H, W]: camera depth (z, metres) of the character at each pixel centre; 0 on background"),
        ("flow", "float32 [H, W, 2]: optical flow (du, dv) in pixels from this frame to the next frame of the same sequence and camera (time + 1/fps; for the last frame, the motion's continuation), from the known motion of the surface point at the pixel centre; 0 on background"),
        ("flow_valid", "uint8 [H, W]: 1 where flow is defined and the point is visible (not occluded, inside the image) in the next frame"),
        ("joints_2d", "float32 [J, 2]: joint positions in pixels (pixel (i, j) spans [i, i + 1] x [j, j + 1], its centre is (i + 0.5, j + 0.5))"),
        ("joints_3d_world", "float32 [J, 3]: joint positions in the world frame (metres, y up, ground y = 0)"),
        ("joints_3d_camera", "float32 [J, 3]: joint positions in the camera frame (OpenCV axes: x right, y down, z forward)"),
        ("local_rotations", "float32 [J, 3, 3]: per-joint rotations relative to the parent, in the rest axes (rest pose: identity)"),
        ("local_axis_angle", "float32 [J, 3]: the same rotations as axis-angle vectors"),
        ("world_rotations", "float32 [J, 3, 3]: joint rotations in the world frame (forward kinematics)"),
        ("root_rotation", "float32 [3, 3]: rotation of the root transform (about the vertical axis)"),
        ("root_translation", "float32 [3]: translation of the root transform; joint 0 sits at root_rotation @ offset_0 + root_translation"),
        ("intrinsics", "float32 [3, 3]: K with pixel centres at i + 0.5 (u = fx x / z + cx, v = fy y / z + cy; cx = W / 2)"),
        ("world_to_camera", "float32 [3, 4]: [R | t] mapping world points to camera points (OpenCV axes)"),
        ("camera_to_world", "float32 [4, 4]: the inverse, OpenCV axes (transforms.json holds the OpenGL-axes version)"),
        ("vertices", "float32 [V, 3]: the posed mesh vertices (world), same order as rest_mesh.ply"),
        ("time", "float32 []: time of the frame in seconds"),
    ]

    /// The `.npz` members of a frame.
    public static func arrays(_ f: CharacterFrame) -> [String: NPYArray] {
        let n = f.size, j = f.joints2D.count / 2
        func floats(_ v: [Float], _ shape: [Int]) -> NPYArray { NPYArray(Tensor(v, shape: shape)) }
        let c = f.camera, m = c.cameraToWorld
        var w2c = [Float](repeating: 0, count: 12)
        for r in 0..<3 {
            for k in 0..<3 { w2c[4 * r + k] = m[4 * k + r] }
            w2c[4 * r + 3] = -(m[r] * m[3] + m[4 + r] * m[7] + m[8 + r] * m[11])
        }
        return [
            "mask": NPYArray(uint8s: f.mask, shape: [n, n]),
            "coverage": floats(f.coverage, [n, n]),
            "depth": floats(f.depth, [n, n]),
            "flow": floats(f.flow, [n, n, 2]),
            "flow_valid": NPYArray(uint8s: f.flowValid, shape: [n, n]),
            "joints_2d": floats(f.joints2D, [j, 2]),
            "joints_3d_world": floats(f.joints3DWorld, [j, 3]),
            "joints_3d_camera": floats(f.joints3DCamera, [j, 3]),
            "local_rotations": floats(f.pose.localRotations, [j, 3, 3]),
            "local_axis_angle": floats(f.pose.localAxisAngle, [j, 3]),
            "world_rotations": floats(f.worldRotations, [j, 3, 3]),
            "root_rotation": floats(f.pose.rootRotation, [3, 3]),
            "root_translation": floats([f.pose.translation.x, f.pose.translation.y, f.pose.translation.z], [3]),
            "intrinsics": floats([c.fx, 0, c.cx, 0, c.fy, c.cy, 0, 0, 1], [3, 3]),
            "world_to_camera": floats(w2c, [3, 4]),
            "camera_to_world": floats(m + [0, 0, 0, 1], [4, 4]),
            "vertices": floats(f.vertices, [f.vertices.count / 3, 3]),
            "time": floats([f.time], []),
        ]
    }

    /// The folder of video `index`.
    public static func videoFolder(_ index: Int) -> String { "video_" + pad(index, 3) }

    static func pad(_ i: Int, _ digits: Int) -> String {
        let s = String(i)
        return String(repeating: "0", count: Swift.max(0, digits - s.count)) + s
    }

    /// The file stem of a frame inside its video folder, e.g. `train/000012`, `novel_view/cam2_000010`.
    public static func stem(split: String, frame: Int, cameraIndex: Int) -> String {
        split == "novel_view" ? "\(split)/cam\(cameraIndex)_\(pad(frame, 6))" : "\(split)/\(pad(frame, 6))"
    }

    /// Every frame a video renders: (split, frame, camera).
    public static func jobs(config: CharacterSceneConfig) -> [(split: String, frame: Int, camera: Int)] {
        var out: [(String, Int, Int)] = (0..<config.frames).map { ("train", $0, 0) }
        for c in 0..<config.novelViews { for f in config.novelViewFrames { out.append(("novel_view", f, c + 1)) } }
        for f in 0..<config.novelPoseFrames { out.append(("novel_pose", f, 0)) }
        return out
    }

    // MARK: - Rest mesh and skeleton

    /// The rest mesh as a binary little-endian PLY: per vertex position, normal, body part and one
    /// skinning weight per joint (`weight_<joint name>`), and triangle faces.
    public static func restMeshPLY(_ a: CharacterAssets) -> Data {
        let mesh = a.mesh
        var header = """
        ply
        format binary_little_endian 1.0
        comment rest-pose mesh of a deform synth character (metres, y up, ground y = 0)
        element vertex \(mesh.vertices.count)
        property float x
        property float y
        property float z
        property float nx
        property float ny
        property float nz
        property uchar part

        """
        for name in a.skeleton.names { header += "property float weight_\(name)\n" }
        header += "element face \(mesh.faces.count / 3)\nproperty list uchar int vertex_indices\nend_header\n"
        var data = Data(header.utf8)
        let jc = mesh.jointCount
        var bytes = [UInt8]()
        bytes.reserveCapacity(mesh.vertices.count * (25 + 4 * jc) + mesh.faces.count / 3 * 13)
        func put(_ x: Float) { withUnsafeBytes(of: x.bitPattern.littleEndian) { bytes += $0 } }
        func put(_ x: Int32) { withUnsafeBytes(of: x.littleEndian) { bytes += $0 } }
        for i in 0..<mesh.vertices.count {
            let v = mesh.vertices[i], n = mesh.normals[i]
            put(v.x); put(v.y); put(v.z); put(n.x); put(n.y); put(n.z)
            bytes.append(mesh.vertexParts[i])
            for k in 0..<jc { put(mesh.weights[i * jc + k]) }
        }
        for f in 0..<(mesh.faces.count / 3) {
            bytes.append(3)
            put(mesh.faces[3 * f]); put(mesh.faces[3 * f + 1]); put(mesh.faces[3 * f + 2])
        }
        data.append(contentsOf: bytes)
        return data
    }

    /// The rest mesh as NumPy arrays.
    public static func restMeshArrays(_ a: CharacterAssets) -> [String: NPYArray] {
        let mesh = a.mesh, v = mesh.vertices.count
        return [
            "vertices": NPYArray(a.restVertices),
            "normals": NPYArray(a.restNormals),
            "faces": NPYArray(int32s: mesh.faces, shape: [mesh.faces.count / 3, 3]),
            "weights": NPYArray(Tensor(mesh.weights, shape: [v, mesh.jointCount])),
            "parts": NPYArray(uint8s: mesh.vertexParts, shape: [v]),
            "vertex_joint": NPYArray(int32s: mesh.vertexJoints, shape: [v]),
            "rest_joints": NPYArray(Tensor(a.restJoints, shape: [mesh.jointCount, 3])),
        ]
    }

    struct SkeletonFile: Encodable {
        var joints: [String]
        var parents: [Int]
        var offsets: [[Float]]
        var restPositions: [[Float]]
        var kind: CharacterKind
        var parts: [String]
        var humanoid: HumanoidIdentity?
        var quadruped: QuadrupedIdentity?
        var motion: CharacterMotionParameters
        var novelPoseMotion: CharacterMotionParameters
        var conventions: String
    }

    /// `skeleton.json`: joint names, parents, rest offsets and positions, the identity's and the
    /// motions' parameters.
    public static func skeletonJSON(_ a: CharacterAssets) throws -> String {
        let s = a.skeleton, r = s.restPositions
        let file = SkeletonFile(
            joints: s.names, parents: s.parents,
            offsets: (0..<s.jointCount).map { Array(s.offsets[(3 * $0)..<(3 * $0 + 3)]) },
            restPositions: (0..<s.jointCount).map { Array(r[(3 * $0)..<(3 * $0 + 3)]) },
            kind: a.parameters.identity.kind,
            parts: a.parameters.identity.kind == .humanoid ? Humanoid.Part.allCases.map { "\($0)" } : Quadruped.Part.allCases.map { "\($0)" },
            humanoid: { if case .humanoid(let h) = a.parameters.identity { return h } else { return nil } }(),
            quadruped: { if case .quadruped(let q) = a.parameters.identity { return q } else { return nil } }(),
            motion: a.parameters.motion, novelPoseMotion: a.parameters.novelPoseMotion,
            conventions: """
            world: metres, y up, ground y = 0, the rest character faces +z with its left towards +x; every joint's rest \
            orientation is the identity; forward kinematics: G_0 = R_root L_0, p_0 = t_root + R_root o_0, G_j = G_parent L_j, \
            p_j = p_parent + G_parent o_j; skinning: v = sum_j w_j (G_j (v_rest - r_j) + p_j) with r_j the rest positions
            """)
        return try SynthFiles.json(file)
    }

    /// Per-video sequences of the training frames: poses, joints and cameras stacked over time.
    public static func sequenceArrays(_ a: CharacterAssets, config: CharacterSceneConfig) throws -> [String: NPYArray] {
        let fcount = config.frames, jc = a.skeleton.jointCount
        var local = [Float](), axis = [Float](), rootR = [Float](), rootT = [Float](), world = [Float](), j2 = [Float](), w2c = [Float]()
        for f in 0..<fcount {
            let pose = self.pose(a, split: "train", frame: f, config: config)
            let g = posed(a, pose)
            let cam = try camera(a.parameters, cameraIndex: 0, frame: f, config: config)
            let m = cam.cameraToWorld
            local += pose.localRotations; axis += pose.localAxisAngle; rootR += pose.rootRotation
            rootT += [pose.translation.x, pose.translation.y, pose.translation.z]
            world += g.positions
            for r in 0..<3 {
                for k in 0..<3 { w2c.append(m[4 * k + r]) }
                w2c.append(-(m[r] * m[3] + m[4 + r] * m[7] + m[8 + r] * m[11]))
            }
            for k in 0..<jc {
                let d = SIMD3(g.positions[3 * k] - m[3], g.positions[3 * k + 1] - m[7], g.positions[3 * k + 2] - m[11])
                let c = SIMD3(m[0] * d.x + m[4] * d.y + m[8] * d.z, m[1] * d.x + m[5] * d.y + m[9] * d.z, m[2] * d.x + m[6] * d.y + m[10] * d.z)
                j2 += [cam.fx * c.x / c.z + cam.cx, cam.fy * c.y / c.z + cam.cy]
            }
        }
        let c0 = try camera(a.parameters, cameraIndex: 0, frame: 0, config: config)
        func floats(_ v: [Float], _ shape: [Int]) -> NPYArray { NPYArray(Tensor(v, shape: shape)) }
        return [
            "local_rotations": floats(local, [fcount, jc, 3, 3]),
            "local_axis_angle": floats(axis, [fcount, jc, 3]),
            "root_rotation": floats(rootR, [fcount, 3, 3]),
            "root_translation": floats(rootT, [fcount, 3]),
            "joints_3d_world": floats(world, [fcount, jc, 3]),
            "joints_2d": floats(j2, [fcount, jc, 2]),
            "world_to_camera": floats(w2c, [fcount, 3, 4]),
            "intrinsics": floats([c0.fx, 0, c0.cx, 0, c0.fy, c0.cy, 0, 0, 1], [3, 3]),
            "time": floats((0..<fcount).map { Float($0) / config.fps }, [fcount]),
            "parents": NPYArray(int32s: a.skeleton.parents.map(Int32.init), shape: [jc]),
        ]
    }

    struct TransformsFile: Encodable {
        struct Frame: Encodable {
            var filePath: String
            var maskPath: String
            var split: String
            var camera: Int
            var frame: Int
            var time: Float
            var transformMatrix: [[Float]]
        }
        var cameraModel = "OPENCV"
        var flX: Float
        var flY: Float
        var cx: Float
        var cy: Float
        var w: Int
        var h: Int
        var k1: Float = 0
        var k2: Float = 0
        var p1: Float = 0
        var p2: Float = 0
        var frames: [Frame]
    }

    /// A nerfstudio-style `transforms.json` for one video: every frame (training, novel views,
    /// novel poses) with its camera-to-world matrix in OpenGL camera axes, its split, camera index
    /// and time. nerfstudio puts pixel centres at i + 0.5, as the rest of this dataset does.
    public static func transformsJSON(_ p: CharacterVideoParameters, config: CharacterSceneConfig) throws -> String {
        var frames: [TransformsFile.Frame] = []
        var first: PinholeCamera?
        for job in jobs(config: config) {
            let index = job.split == "novel_pose" ? -1 : job.camera
            let cam = try camera(p, cameraIndex: index, frame: job.frame, config: config)
            if first == nil { first = cam }
            let pose = cam.openGLCameraToWorld
            let stem = self.stem(split: job.split, frame: job.frame, cameraIndex: job.camera)
            frames.append(.init(filePath: stem + ".png", maskPath: stem + "_mask.png", split: job.split, camera: job.camera,
                                frame: job.frame, time: Float(job.frame) / config.fps,
                                transformMatrix: (0..<3).map { Array(pose[($0 * 4)..<($0 * 4 + 4)]) } + [[0, 0, 0, 1]]))
        }
        let c = first!
        return try SynthFiles.json(TransformsFile(flX: c.fx, flY: c.fy, cx: c.cx, cy: c.cy, w: c.width, h: c.height, frames: frames))
    }

    // MARK: - Whole datasets

    /// Writes a whole dataset to `output`: `scene.json`, `README.md`, `preview.png` and one folder
    /// per video (`video_000`, ...) with `skeleton.json`, `rest_mesh.ply`, `rest_mesh.npz`,
    /// `sequence.npz`, `transforms.json` and the frames of `train/`, `novel_view/` and
    /// `novel_pose/` (`NNNNNN.png`, `NNNNNN_mask.png`, `NNNNNN.npz`). Frames are rendered in
    /// parallel on all cores; files go to a hidden sibling folder renamed into place at the end,
    /// so a failed run leaves no half-written dataset.
    ///
    /// - Parameter progress: called with the number of finished frames (serialised).
    public static func generate(config: CharacterSceneConfig, to output: URL, overwrite: Bool = false,
                                progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws {
        try config.validate()
        let output = output.standardizedFileURL
        try SymmetricScenes.checkOutput(output, overwrite: overwrite)
        let fm = FileManager.default
        let parent = output.deletingLastPathComponent()
        try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        let staging = parent.appendingPathComponent(".\(output.lastPathComponent).partial-\(ProcessInfo.processInfo.processIdentifier)")
        try? fm.removeItem(at: staging)
        try fm.createDirectory(at: staging, withIntermediateDirectories: true)
        do {
            var all: [CharacterAssets] = []
            for v in 0..<config.count {
                let a = assets(parameters(index: v, config: config), config: config)
                all.append(a)
                let folder = staging.appendingPathComponent(videoFolder(v))
                for split in ["train", "novel_view", "novel_pose"] {
                    try fm.createDirectory(at: folder.appendingPathComponent(split), withIntermediateDirectories: true)
                }
                try writeAtomically(Data(skeletonJSON(a).utf8), to: folder.appendingPathComponent("skeleton.json"))
                try writeAtomically(restMeshPLY(a), to: folder.appendingPathComponent("rest_mesh.ply"))
                try writeNPZ(restMeshArrays(a), to: folder.appendingPathComponent("rest_mesh.npz"))
                try writeNPZ(sequenceArrays(a, config: config), to: folder.appendingPathComponent("sequence.npz"))
                try writeAtomically(Data(transformsJSON(a.parameters, config: config).utf8), to: folder.appendingPathComponent("transforms.json"))
            }
            try renderAll(all, config: config, into: staging, progress: progress)
            try writeAtomically(Data(sceneJSON(config).utf8), to: staging.appendingPathComponent("scene.json"))
            try writeAtomically(Data(readme(config).utf8), to: staging.appendingPathComponent("README.md"))
            try writePNG(preview(all, config: config), to: staging.appendingPathComponent("preview.png"))
            try SymmetricScenes.checkOutput(output, overwrite: overwrite)
            if fm.fileExists(atPath: output.path) { try fm.removeItem(at: output) }
            try fm.moveItem(at: staging, to: output)
        } catch {
            try? fm.removeItem(at: staging)
            throw error
        }
    }

    static func renderAll(_ all: [CharacterAssets], config: CharacterSceneConfig, into folder: URL,
                          progress: ((Int, Int) -> Void)?) throws {
        let perVideo = jobs(config: config)
        let total = perVideo.count * all.count
        try SynthFiles.forEachItem(total, progress: progress.map { report in { report($0, total) } }) { k in
            let a = all[k / perVideo.count], job = perVideo[k % perVideo.count]
            let frame = try render(a, split: job.split, frame: job.frame, cameraIndex: job.camera, config: config)
            let base = folder.appendingPathComponent(videoFolder(a.parameters.index))
                .appendingPathComponent(stem(split: job.split, frame: job.frame, cameraIndex: job.camera))
            let n = config.size
            try writePNG(Tensor(frame.image, shape: [n, n, 3]), to: base.appendingPathExtension("png"))
            try writePNG(Tensor(frame.mask.map { Float($0) }, shape: [n, n, 1]),
                         to: URL(fileURLWithPath: base.path + "_mask.png"))
            try writeNPZ(arrays(frame), to: base.appendingPathExtension("npz"))
        }
    }

    // MARK: - Metadata

    struct SceneFile: Encodable {
        struct ArrayInfo: Encodable {
            var name: String
            var description: String
        }
        var family = "character"
        var generator = "deform synth"
        var version = CharacterSceneConfig.generatorVersion
        var seed: String
        var config: CharacterSceneConfig
        var joints: [String]
        var parents: [Int]
        var motions = CharacterMotionKind.allCases.map(\.rawValue)
        var videos: [String]
        var imageFormation: String
        var arrays: [ArrayInfo]
    }

    /// The `scene.json` text (sorted keys, reproducible byte for byte).
    public static func sceneJSON(_ config: CharacterSceneConfig) throws -> String {
        try SynthFiles.json(SceneFile(
            seed: String(config.seed), config: config, joints: CharacterIdentity.joints(config.kind).names,
            parents: CharacterIdentity.joints(config.kind).parents, videos: (0..<config.count).map(videoFolder),
            imageFormation: """
            rest mesh posed by forward kinematics and linear blend skinning, rasterised at supersampling x the resolution; \
            colour = albedo (k_a + k_d max(0, n . l)) with a directional light l fixed in the world, over a tiled ground \
            plane y = 0 and a sky; box-filtered; ground truth at the pixel centres
            """,
            arrays: arrayDescriptions.map { .init(name: $0.name, description: $0.description) }))
    }

    /// The folder's `README.md`.
    public static func readme(_ config: CharacterSceneConfig) -> String {
        let arrays = arrayDescriptions.map { "  - `\($0.name)`: \($0.description)" }.joined(separator: "\n")
        let (names, parents) = CharacterIdentity.joints(config.kind)
        let joints = zip(names, parents).enumerated()
            .map { "\($0.offset) \($0.element.0) (parent \($0.element.1))" }.joined(separator: ", ")
        let motion = config.motion?.rawValue ?? "one of walk, wave, squat, turn, jump, random per video"
        return """
        # Synthetic characters (`deform synth character`)

        \(config.count) video(s) of \(config.frames) frames of \(config.size)x\(config.size) pixels at \(config.fps) frames per
        second: procedural skinned \(config.kind == .humanoid ? """
        humanoids (one identity per video: body proportions, thickness, skin, hair, clothes with stripes, checks,
        dots or blotches, fabric and skin noise)
        """ : """
        four-legged animals (one identity per video: body, leg, neck and tail proportions, thickness, a coat with
        spots, stripes, patches or a saddle, a lighter belly and fur noise)
        """) performing \(motion).
        Generator version `\(CharacterSceneConfig.generatorVersion)`, seed \(config.seed); the same seed and version give
        byte-identical files, and video i depends only on the seed and i.

        ## Files

        - `scene.json`: the generator version, the seed and every parameter, the joint names and parents, the arrays.
        - `preview.png`: one row per video (at most two): training frames 0, F/3 and 2F/3 with the 2D joints as
          red dots, the depth and the flow (RGB = 0.5 + flow / max) of frame 0, a novel view and a novel pose.
        - `video_NNN/skeleton.json`: joint names, parents, rest offsets and positions, the identity's and the motions'
          parameters, and the conventions of forward kinematics and skinning.
        - `video_NNN/rest_mesh.ply`: the rest mesh (binary PLY: position, normal, body part and one skinning weight
          per joint, `weight_<joint>`); `rest_mesh.npz` holds the same as arrays (`vertices`, `normals`, `faces`,
          `weights` [V, J], `parts`, `vertex_joint`, `rest_joints`).
        - `video_NNN/sequence.npz`: the training sequence stacked over time (`local_rotations` [F, J, 3, 3],
          `local_axis_angle`, `root_rotation`, `root_translation`, `joints_3d_world`, `joints_2d`, `world_to_camera`
          [F, 3, 4], `intrinsics`, `time`, `parents`).
        - `video_NNN/transforms.json`: the cameras in nerfstudio's layout (OpenGL axes, pixel centres at i + 0.5) with
          per frame `file_path`, `mask_path`, `split`, `camera`, `frame` and `time`.
        - `video_NNN/train/NNNNNN.png`: the training frames, seen by camera 0 (static, or orbiting slowly).
        - `video_NNN/novel_view/camK_NNNNNN.png`: held-out static cameras K = 1...\(config.novelViews) at training
          frames \(config.novelViewStride > 0 ? "0, \(config.novelViewStride), 2 x \(config.novelViewStride), ..." : "").
        - `video_NNN/novel_pose/NNNNNN.png`: \(config.novelPoseFrames) frames of a held-out motion (a random blend), seen by
          camera 0 at its first position.
        - every frame has `NNNNNN_mask.png` (255 on the character) and `NNNNNN.npz` (NumPy) with:

        \(arrays)

        ## Skeleton

        \(names.count) joints: \(joints).

        World frame: metres, y up, ground y = 0; the rest character faces +z with its left towards +x, arms hanging
        down (the animal: legs straight down). Local rotations are in the rest axes (every joint's rest orientation is the identity). Forward kinematics:
        `G_0 = R_root L_0`, `p_0 = t_root + R_root o_0`, `G_j = G_parent L_j`, `p_j = p_parent + G_parent o_j`.
        Skinning: `v = sum_j w_j (G_j (v_rest - r_j) + p_j)`, `r_j` the rest joint positions.

        ## Image formation

        The posed mesh is rasterised at \(config.supersampling)x\(config.supersampling) samples per pixel and shaded with
        `albedo (k_a + k_d max(0, n . l))` (a directional light fixed in the world, so appearance is the same from every
        camera), over a tiled ground plane and a sky that are functions of the camera ray (consistent across views;
        no shadows). Mask, depth, flow and joints refer to the character only and are point samples at pixel centres.
        Back-projection: the pixel centre (i + 0.5, j + 0.5) with depth d is the camera point
        d ((i + 0.5 - cx) / fx, (j + 0.5 - cy) / fy, 1).

        """
    }

    /// The contact sheet (see ``readme(_:)``).
    static func preview(_ all: [CharacterAssets], config: CharacterSceneConfig) throws -> Tensor {
        let n = config.size, gap = 2, panels = 7
        let videos = Array(all.prefix(2))
        let width = panels * (n + gap) + gap, height = videos.count * (n + gap) + gap
        var out = [Float](repeating: 1, count: width * height * 3)
        for (row, a) in videos.enumerated() {
            let f = config.frames
            var frames = try [0, f / 3, 2 * f / 3].map { try render(a, split: "train", frame: $0, config: config) }
            frames.append(frames[0])
            frames.append(frames[0])
            frames.append(config.novelViews > 0 ? try render(a, split: "novel_view", frame: 0, cameraIndex: 1, config: config) : frames[0])
            frames.append(config.novelPoseFrames > 0 ? try render(a, split: "novel_pose", frame: 0, config: config) : frames[0])
            let oy = gap + row * (n + gap)
            for (panel, frame) in frames.enumerated() {
                let ox = gap + panel * (n + gap)
                var lo = Float.infinity, hi = -Float.infinity, maxFlow: Float = 1e-6
                for p in 0..<(n * n) where frame.mask[p] != 0 {
                    lo = Swift.min(lo, frame.depth[p]); hi = Swift.max(hi, frame.depth[p])
                    maxFlow = Swift.max(maxFlow, Swift.abs(frame.flow[2 * p]), Swift.abs(frame.flow[2 * p + 1]))
                }
                hi = Swift.max(hi, lo + 1e-6)
                for j in 0..<n {
                    for i in 0..<n {
                        let p = j * n + i
                        var c = SIMD3(frame.image[3 * p], frame.image[3 * p + 1], frame.image[3 * p + 2])
                        if panel == 3 { c = frame.mask[p] != 0 ? SIMD3(repeating: 0.15 + 0.85 * (hi - frame.depth[p]) / (hi - lo)) : .zero }
                        if panel == 4 {
                            c = frame.mask[p] != 0 ? SIMD3(0.5 + 0.5 * frame.flow[2 * p] / maxFlow, 0.5 + 0.5 * frame.flow[2 * p + 1] / maxFlow, 0.5) : .zero
                        }
                        let o = 3 * ((oy + j) * width + ox + i)
                        out[o] = c.x; out[o + 1] = c.y; out[o + 2] = c.z
                    }
                }
                if panel < 3 {
                    for k in 0..<(frame.joints2D.count / 2) {
                        let u = Int(frame.joints2D[2 * k].rounded(.down)), v = Int(frame.joints2D[2 * k + 1].rounded(.down))
                        for dv in -1...1 {
                            for du in -1...1 where u + du >= 0 && u + du < n && v + dv >= 0 && v + dv < n {
                                let o = 3 * ((oy + v + dv) * width + ox + u + du)
                                out[o] = 1; out[o + 1] = 0; out[o + 2] = 0
                            }
                        }
                    }
                }
            }
        }
        return Tensor(out, shape: [height, width, 3])
    }
}
