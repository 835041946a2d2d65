import DeformIO
import DeformRender
import DeformTensor
import Foundation

/// Writing a `dynamic` dataset folder.
extension DynamicScenes {
    /// The members of a training frame's `.npz` file, with their meaning (also in `scene.json` and
    /// the folder's `README.md`). Held-out frames carry `depth`, `mask`, `segmentation`,
    /// `intrinsics`, `pose` and `time`.
    public static let arrayDescriptions: [(name: String, description: String)] = [
        ("depth", "float32 [H, W]: camera depth (z) at each pixel centre, 0 where no surface"),
        ("mask", "uint8 [H, W]: 1 where the pixel centre sees a deforming object (the dynamic region), else 0"),
        ("segmentation", "uint8 [H, W]: 0 ground, 1 back wall, 2 flag poles (static), 3 + k deforming object k, 255 nothing"),
        ("flow_forward", "float32 [H, W, 2]: optical flow (du, dv) to frame t + 1: where the pixel centre's surface point is then (camera and object motion), whether or not it is visible; 0 where no surface; the motion continues past the last frame"),
        ("flow_backward", "float32 [H, W, 2]: optical flow to frame t - 1, likewise (continues before frame 0)"),
        ("valid_forward", "uint8 [H, W]: 1 where the flow target lies inside frame t + 1 and the point is not occluded there; 0 on the last frame"),
        ("valid_backward", "uint8 [H, W]: the same for frame t - 1; 0 on the first frame"),
        ("intrinsics", "float32 [3, 3]: K with pixel centres on integers: [[f, 0, c], [0, f, c], [0, 0, 1]], c = (size - 1) / 2"),
        ("pose", "float32 [3, 4]: camera-to-world [R | C] (OpenCV camera axes: x right, y down, z forward; world y points down)"),
        ("time", "float32 [1]: the frame index t (transforms.json also has t / (frames - 1) in [0, 1])"),
    ]

    /// The `.npz` members of a rendered frame (flow members for training frames only).
    public static func arrays(_ s: DynamicFrame, params p: DynamicSceneParameters, config: DynamicSceneConfig) -> [String: NPYArray] {
        let n = s.size
        func floats(_ v: [Float], _ shape: [Int]) -> NPYArray { NPYArray(Tensor(v, shape: shape)) }
        let (f, cx, cy) = intrinsics(p, config: config)
        let (r, c) = pose(p, view: s.view, t: Float(s.frame))
        let rows = r.rows
        var out: [String: NPYArray] = [
            "depth": floats(s.depth, [n, n]),
            "mask": NPYArray(uint8s: s.mask, shape: [n, n]),
            "segmentation": NPYArray(uint8s: s.segmentation, shape: [n, n]),
            "intrinsics": floats([f, 0, cx, 0, f, cy, 0, 0, 1], [3, 3]),
            "pose": floats([rows[0].x, rows[0].y, rows[0].z, c.x, rows[1].x, rows[1].y, rows[1].z, c.y,
                            rows[2].x, rows[2].y, rows[2].z, c.z], [3, 4]),
            "time": floats([Float(s.frame)], [1]),
        ]
        if s.view == .training {
            out["flow_forward"] = floats(s.flowForward, [n, n, 2])
            out["flow_backward"] = floats(s.flowBackward, [n, n, 2])
            out["valid_forward"] = NPYArray(uint8s: s.validForward, shape: [n, n])
            out["valid_backward"] = NPYArray(uint8s: s.validBackward, shape: [n, n])
        }
        return out
    }

    /// The folder of scene `index` (zero-padded, at least 6 digits).
    public static func sceneFolder(_ index: Int, config: DynamicSceneConfig) -> String { SymmetricScenes.stem(index, count: config.count) }
    /// The file stem of a frame, relative to its scene folder without extension: `images/FFFFFF`
    /// for training frames, `novel/camK_FFFFFF` for held-out ones (the `.npz` lives under `gt/`
    /// and `novel_gt/`).
    public static func frameStem(_ frame: Int, view: DynamicView, config: DynamicSceneConfig) -> String {
        let f = SymmetricScenes.stem(frame, count: config.frames)
        switch view {
        case .training: return f
        case .novel(let k): return "cam\(k)_\(f)"
        }
    }

    /// Writes a whole dataset to `output`: `scene.json`, `README.md`, `preview.png` and, per scene
    /// folder `NNNNNN/`, `images/FFFFFF.png` + `gt/FFFFFF.npz` per training frame,
    /// `novel/camK_FFFFFF.png` + `novel_gt/camK_FFFFFF.npz` per held-out view and a
    /// `transforms.json`. Files go to a hidden sibling folder renamed into place at the end, so a
    /// failed run leaves no half-written dataset (and an existing one untouched).
    ///
    /// - Parameters:
    ///   - overwrite: replace a non-empty `output` folder.
    ///   - progress: called with the number of finished scenes.
    public static func generate(config: DynamicSceneConfig, to output: URL, overwrite: Bool = false,
                                progress: ((Int) -> Void)? = nil) throws {
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
            let scenes = (0..<config.count).map { parameters(index: $0, config: config) }
            var previewRows: [[[Float]]] = []
            for (done, scene) in scenes.enumerated() {
                let folder = staging.appendingPathComponent(sceneFolder(scene.index, config: config))
                for sub in ["images", "gt"] + (scene.novelCenters.isEmpty ? [] : ["novel", "novel_gt"]) {
                    try fm.createDirectory(at: folder.appendingPathComponent(sub), withIntermediateDirectories: true)
                }
                let (training, novel) = try renderVideo(scene, config: config)
                let all = training + novel.flatMap { $0 }
                try SynthFiles.forEachItem(all.count, progress: nil) { item in
                    let s = all[item], n = s.size
                    let stem = frameStem(s.frame, view: s.view, config: config)
                    let (images, gt) = s.view == .training ? ("images", "gt") : ("novel", "novel_gt")
                    try writePNG(Tensor(s.image, shape: [n, n, 3]), to: folder.appendingPathComponent("\(images)/\(stem).png"))
                    try writeNPZ(arrays(s, params: scene, config: config), to: folder.appendingPathComponent("\(gt)/\(stem).npz"))
                }
                try writeAtomically(Data(transformsJSON(scene, config: config).utf8), to: folder.appendingPathComponent("transforms.json"))
                if previewRows.count < 4 { previewRows.append(previewPanels(training: training, novel: novel)) }
                progress?(done + 1)
            }
            try writeAtomically(Data(sceneJSON(config, scenes: scenes).utf8), to: staging.appendingPathComponent("scene.json"))
            try writeAtomically(Data(readme(config).utf8), to: staging.appendingPathComponent("README.md"))
            try writePNG(contactSheet(previewRows, size: config.size), to: staging.appendingPathComponent("preview.png"))
            try SymmetricScenes.checkOutput(output, overwrite: overwrite)
            if fm.fileExists(atPath: output.path) { try fm.removeItem(at: output) }
            try fm.moveItem(at: staging, to: output)
        } catch {
            try? fm.removeItem(at: staging)
            throw error
        }
    }

    // MARK: - Preview

    /// One contact-sheet row: first frame, its depth, dynamic mask and forward flow, the first
    /// held-out view of frame 0 (or the last frame without held-out cameras), the last frame.
    static func previewPanels(training: [DynamicFrame], novel: [[DynamicFrame]]) -> [[Float]] {
        let first = training[0], last = training[training.count - 1], n = first.size
        var depth = [Float](repeating: 0, count: 3 * n * n), mask = depth, flow = depth
        let valid = first.depth.filter { $0 > 0 }
        let lo = valid.min() ?? 0, hi = Swift.max(valid.max() ?? 1, lo + 1e-3)
        var largest: Float = 1e-3
        for p in 0..<(n * n) { largest = Swift.max(largest, (first.flowForward[2 * p] * first.flowForward[2 * p] + first.flowForward[2 * p + 1] * first.flowForward[2 * p + 1]).squareRoot()) }
        for p in 0..<(n * n) {
            let d: Float = first.depth[p] > 0 ? 1 - 0.85 * (first.depth[p] - lo) / (hi - lo) : 0
            for c in 0..<3 { depth[3 * p + c] = d; mask[3 * p + c] = Float(first.mask[p]) }
            // Flow as colour: hue from the direction, saturation from the length.
            let du = first.flowForward[2 * p], dv = first.flowForward[2 * p + 1]
            let a = Foundation.atan2(dv, du), m = (du * du + dv * dv).squareRoot() / largest
            for c in 0..<3 {
                let phase = a - Float(c) * 2 * .pi / 3
                flow[3 * p + c] = 1 - m * (0.5 - 0.5 * Foundation.cos(phase))
            }
        }
        let other = novel.first?.first?.image ?? last.image
        return [first.image, depth, mask, flow, other, last.image]
    }

    static func contactSheet(_ rows: [[[Float]]], size n: Int) -> Tensor {
        let gap = 2, panels = rows.first?.count ?? 1
        let width = panels * (n + gap) + gap, height = rows.count * (n + gap) + gap
        var out = [Float](repeating: 1, count: width * height * 3)
        for (row, images) in rows.enumerated() {
            for (panel, image) in images.enumerated() {
                let ox = gap + panel * (n + gap), oy = gap + row * (n + gap)
                for j in 0..<n {
                    for i in 0..<n {
                        for c in 0..<3 { out[3 * ((oy + j) * width + ox + i) + c] = image[3 * (j * n + i) + c] }
                    }
                }
            }
        }
        return Tensor(out, shape: [height, width, 3])
    }

    // MARK: - Metadata

    struct SceneFile: Encodable {
        struct Camera: Encodable {
            var model = "pinhole, square pixels, principal point at the image centre"
            var axes = "x right, y down, z forward (OpenCV); world y points down, the ground is y = camera_height"
            var pixelCenters = "integers: pixel (i, j) is at (u, v) = (i, j)"
            var width: Int
            var height: Int
        }
        struct Scene: Encodable {
            var folder: String
            var parameters: DynamicSceneParameters
        }
        struct ArrayInfo: Encodable {
            var name: String
            var description: String
        }
        var family = "dynamic"
        var generator = "deform synth"
        var version = DynamicSceneConfig.generatorVersion
        var seed: String
        var config: DynamicSceneConfig
        var camera: Camera
        var imageFormation: String
        var scenes: [Scene]
        var arrays: [ArrayInfo]
    }

    /// The `scene.json` text (sorted keys, so it is reproducible byte for byte).
    public static func sceneJSON(_ config: DynamicSceneConfig, scenes: [DynamicSceneParameters]) throws -> String {
        let file = SceneFile(
            seed: String(config.seed), config: config, camera: .init(width: config.size, height: config.size),
            imageFormation: """
            Lambertian: albedo * (ambient + diffuse * max(0, <n, light>)) with the normal turned towards the camera; solid \
            procedural textures attached to each surface's rest shape (they move and bend with it); rendered at supersampling x \
            the resolution and box-filtered; ground truth read at the pixel centres (the centre supersample)
            """,
            scenes: scenes.map { .init(folder: sceneFolder($0.index, config: config), parameters: $0) },
            arrays: arrayDescriptions.map { .init(name: $0.name, description: $0.description) })
        return try SynthFiles.json(file)
    }

    struct TransformsFile: Encodable {
        struct Frame: Encodable {
            var filePath: String
            var depthFilePath: String
            var split: String
            var camera: Int
            var frame: Int
            var time: Float
            var transformMatrix: [[Float]]
        }
        var cameraModel = "OPENCV"
        var w: Int
        var h: Int
        var flX: Float
        var flY: Float
        var cx: Float
        var cy: Float
        var k1: Float = 0
        var k2: Float = 0
        var p1: Float = 0
        var p2: Float = 0
        var frames: [Frame]
    }

    /// A scene's nerfstudio-style `transforms.json`: shared intrinsics (nerfstudio's pixel centres
    /// at i + 0.5, so `cx` = c + 0.5), and per image its camera-to-world matrix (OpenGL camera
    /// axes), `time` = t / (frames - 1) in [0, 1] (as nerfstudio's dynamic datasets), the frame
    /// index, `split` ("train" for the moving camera, "novel_view" for the held-out ones, which
    /// are for evaluation only) and `camera` (-1 for the moving camera, else the held-out index).
    public static func transformsJSON(_ p: DynamicSceneParameters, config: DynamicSceneConfig) throws -> String {
        var frames: [TransformsFile.Frame] = []
        let span = Float(Swift.max(config.frames - 1, 1))
        func add(_ frame: Int, _ view: DynamicView) throws {
            let pose = try camera(p, config: config, view: view, t: Float(frame)).openGLCameraToWorld
            let matrix = (0..<3).map { Array(pose[($0 * 4)..<($0 * 4 + 4)]) } + [[0, 0, 0, 1]]
            let stem = frameStem(frame, view: view, config: config)
            let training = view == .training
            var index = -1
            if case .novel(let k) = view { index = k }
            frames.append(.init(filePath: "\(training ? "images" : "novel")/\(stem).png", depthFilePath: "\(training ? "gt" : "novel_gt")/\(stem).npz",
                                split: training ? "train" : "novel_view", camera: index, frame: frame,
                                time: Float(frame) / span, transformMatrix: matrix))
        }
        for frame in 0..<config.frames { try add(frame, .training) }
        for k in 0..<p.novelCenters.count {
            for frame in stride(from: 0, to: config.frames, by: config.novelEvery) { try add(frame, .novel(k)) }
        }
        let (f, cx, cy) = intrinsics(p, config: config)
        let file = TransformsFile(w: config.size, h: config.size, flX: f, flY: f, cx: cx + 0.5, cy: cy + 0.5, frames: frames)
        return try SynthFiles.json(file)
    }

    /// The folder's `README.md`.
    public static func readme(_ config: DynamicSceneConfig) -> String {
        let arrays = arrayDescriptions.map { "  - `\($0.name)`: \($0.description)" }
        let scene = sceneFolder(0, config: config), frame = frameStem(0, view: .training, config: config)
        return """
        # Synthetic dynamic scenes (`deform synth dynamic`)

        \(config.count) forward-facing dynamic scenes in the style of the NVIDIA dynamic-scene benchmark: a textured room
        (ground and back wall) with \(config.objects[0])-\(config.objects[1]) deforming objects (a tapered bar bending about
        its base, a flag with a travelling wave on a static pole, a ball that bounces, squashes, spins and drifts), filmed by
        one camera moving along a short smooth path (\(config.frames) frames, \(config.size)x\(config.size) pixels) that always
        looks at the same point. For evaluation the same instants are rendered from \(config.novelCameras) fixed held-out
        cameras near the path (every \(config.novelEvery) frame(s)). Generator version `\(DynamicSceneConfig.generatorVersion)`,
        seed \(config.seed). The same seed and version give byte-identical files. Scene i depends only on the seed, i and
        the frame count.

        ## Files

        - `scene.json`: the generator version, the seed and every parameter; the camera conventions; per scene its folder,
          focal length (pixels), camera path, held-out camera centres, light, and every object with its texture and motion.
        - `preview.png`: one row per scene (at most 4): frame 0, its depth (near is bright), dynamic mask and forward flow
          (hue: direction, saturation: length), held-out camera 0 at frame 0, the last frame.
        - `<scene>/images/FFFFFF.png`: the training video (8-bit RGB, anti-aliased with \(config.supersampling)x\(config.supersampling)
          samples per pixel), e.g. `\(scene)/images/\(frame).png`.
        - `<scene>/gt/FFFFFF.npz`: the training frame's ground truth (NumPy `.npz`), arrays:

        \(arrays.joined(separator: "\n"))
        - `<scene>/novel/camK_FFFFFF.png`, `<scene>/novel_gt/camK_FFFFFF.npz`: held-out camera K at frame F (evaluation only):
          image, and `depth`, `mask`, `segmentation`, `intrinsics`, `pose`, `time` as above.
        - `<scene>/transforms.json`: nerfstudio's layout: shared `fl_x`, `fl_y`, `cx`, `cy` (pixel centres at i + 0.5, so
          `cx` = c + 0.5), per image `file_path`, `depth_file_path`, `transform_matrix` (camera-to-world, OpenGL camera
          axes), `time` = t / (frames - 1), `frame`, `split` (`train` or `novel_view`) and `camera` (-1 for the moving
          camera, else K).

        ## Geometry

        World units are roughly metres; world y points down, the ground is y = camera height (\(config.cameraHeight[0]) to
        \(config.cameraHeight[1])), the back wall z = \(config.wallDistance[0]) to \(config.wallDistance[1]). Back-projection:
        pixel (u, v) with depth Z is the camera point Z K⁻¹ (u, v, 1), the world point R (that) + C with `pose` = [R | C].
        On static surfaces (`mask` 0) the flow is exactly the camera-induced reprojection of that world point into the
        camera of frame t ± 1; on the deforming objects it adds the object motion (vertex motion interpolated with the
        rasteriser's perspective-correct barycentrics).

        """
    }
}
