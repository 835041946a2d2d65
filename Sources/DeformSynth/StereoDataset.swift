import DeformIO
import DeformRender
import DeformTensor
import Foundation

/// Writing a `stereo` dataset folder.
extension StereoScenes {
    /// The members of every per-frame `.npz` file, with their meaning (also written to
    /// `scene.json` and the folder's `README.md`).
    public static let arrayDescriptions: [(name: String, description: String)] = [
        ("disparity", "float32 [H, W]: left-view disparity in pixels, u_left - u_right of the surface point at each pixel centre (its projection into the right camera); equals focal * baseline / depth + offset; 0 where no surface"),
        ("depth", "float32 [H, W]: left-camera depth (z) at each pixel centre, 0 where no surface; for evaluation only (a method only knows disparity up to the clip's unknown scale and offset)"),
        ("mask", "uint8 [H, W]: 1 where the pixel centre's surface point is also seen by the right camera (inside the right image and not occluded), else 0: the pixels whose disparity a stereo matcher can recover"),
        ("flow", "float32 [H, W, 2]: forward optical flow (du, dv) of the left view to frame t + 1, the motion of the surface point whether or not it is visible then (the motion continues past the clip's last frame); 0 where no surface"),
        ("segmentation", "uint8 [H, W]: the surface at each pixel centre: 0 ground, 1 back wall, 2 + k moving object k, 255 nothing"),
        ("intrinsics_left", "float32 [3, 3]: K of the left camera with pixel centres on integers: [[f, 0, c_x^L], [0, f, c_y], [0, 0, 1]], c_x^L = c_y = (size - 1) / 2"),
        ("intrinsics_right", "float32 [3, 3]: K of the right camera: c_x^R = c_x^L - offset"),
        ("baseline", "float32 [1]: distance between the camera centres, world units, along the rig's x axis"),
        ("offset", "float32 [1]: disparity offset c_x^L - c_x^R in pixels"),
        ("pose_left", "float32 [3, 4]: left camera-to-world [R | C] (OpenCV camera axes: x right, y down, z forward; world y points down)"),
        ("pose_right", "float32 [3, 4]: right camera-to-world [R | C + baseline R e_x]"),
    ]

    /// The `.npz` members of a frame of the clip with parameters `p`.
    public static func arrays(_ s: StereoFrame, params p: StereoClipParameters, config: StereoSceneConfig) -> [String: NPYArray] {
        let n = s.size, t = Float(s.frame)
        func floats(_ v: [Float], _ shape: [Int]) -> NPYArray { NPYArray(Tensor(v, shape: shape)) }
        func k(_ right: Bool) -> NPYArray {
            let (f, cx, cy) = intrinsics(p, config: config, right: right)
            return floats([f, 0, cx, 0, f, cy, 0, 0, 1], [3, 3])
        }
        func pose(_ c: SIMD3<Float>) -> NPYArray {
            let r = p.rotation.rows
            return floats([r[0].x, r[0].y, r[0].z, c.x, r[1].x, r[1].y, r[1].z, c.y, r[2].x, r[2].y, r[2].z, c.z], [3, 4])
        }
        return [
            "disparity": floats(s.disparity, [n, n]),
            "depth": floats(s.depth, [n, n]),
            "mask": NPYArray(uint8s: s.mask, shape: [n, n]),
            "flow": floats(s.flow, [n, n, 2]),
            "segmentation": NPYArray(uint8s: s.segmentation, shape: [n, n]),
            "intrinsics_left": k(false),
            "intrinsics_right": k(true),
            "baseline": floats([p.baseline], [1]),
            "offset": floats([p.offset], [1]),
            "pose_left": pose(p.leftCenter(at: t)),
            "pose_right": pose(p.rightCenter(at: t)),
        ]
    }

    /// The folder of clip `index` (zero-padded, at least 6 digits).
    public static func clipFolder(_ index: Int, config: StereoSceneConfig) -> String { SymmetricScenes.stem(index, count: config.count) }
    /// The file stem of frame `index`.
    public static func frameStem(_ index: Int, config: StereoSceneConfig) -> String { SymmetricScenes.stem(index, count: config.frames) }

    /// Writes a whole dataset to `output`: `scene.json`, `README.md`, `preview.png` and, per clip
    /// folder `NNNNNN/`, `left/FFFFFF.png`, `right/FFFFFF.png`, `gt/FFFFFF.npz` per frame and a
    /// `transforms.json`. Frames are rendered in parallel on all cores. Files are written to a
    /// hidden sibling folder that is renamed into place at the end, so a failed run leaves no
    /// half-written dataset (and an existing one untouched).
    ///
    /// - Parameters:
    ///   - overwrite: replace a non-empty `output` folder.
    ///   - progress: called with the number of finished frames (serialised, from worker threads).
    /// - Throws: ``SynthError`` for a bad configuration or output; `DeformIOError` for write failures.
    public static func generate(config: StereoSceneConfig, to output: URL, overwrite: Bool = false,
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
            let clips = (0..<config.count).map { parameters(index: $0, config: config) }
            for clip in clips {
                let folder = staging.appendingPathComponent(clipFolder(clip.index, config: config))
                for sub in ["left", "right", "gt"] {
                    try fm.createDirectory(at: folder.appendingPathComponent(sub), withIntermediateDirectories: true)
                }
                try writeAtomically(Data(transformsJSON(clip, config: config).utf8), to: folder.appendingPathComponent("transforms.json"))
            }
            try renderAll(clips: clips, config: config, into: staging, progress: progress)
            try writeAtomically(Data(sceneJSON(config, clips: clips).utf8), to: staging.appendingPathComponent("scene.json"))
            try writeAtomically(Data(readme(config).utf8), to: staging.appendingPathComponent("README.md"))
            try writePNG(preview(config: config, clips: clips), to: staging.appendingPathComponent("preview.png"))
            try SymmetricScenes.checkOutput(output, overwrite: overwrite)
            if fm.fileExists(atPath: output.path) { try fm.removeItem(at: output) }
            try fm.moveItem(at: staging, to: output)
        } catch {
            try? fm.removeItem(at: staging)
            throw error
        }
    }

    static func renderAll(clips: [StereoClipParameters], config: StereoSceneConfig, into folder: URL, progress: ((Int) -> Void)?) throws {
        let frames = config.frames, n = config.size
        try SynthFiles.forEachItem(clips.count * frames, progress: progress) { item in
            let clip = clips[item / frames], frame = item % frames
            let sample = try render(clip, frame: frame, config: config)
            let base = folder.appendingPathComponent(clipFolder(clip.index, config: config))
            let stem = frameStem(frame, config: config)
            try writePNG(Tensor(sample.left, shape: [n, n, 3]), to: base.appendingPathComponent("left/\(stem).png"))
            try writePNG(Tensor(sample.right, shape: [n, n, 3]), to: base.appendingPathComponent("right/\(stem).png"))
            try writeNPZ(arrays(sample, params: clip, config: config), to: base.appendingPathComponent("gt/\(stem).npz"))
        }
    }

    // MARK: - Metadata

    struct SceneFile: Encodable {
        struct Camera: Encodable {
            var model = "pinhole, rectified stereo pair with a shifted right principal point"
            var axes = "x right, y down, z forward (OpenCV); world y points down, the ground is y = camera_height"
            var pixelCenters = "integers: pixel (i, j) is at (u, v) = (i, j)"
            var disparity = "d = u_left - u_right = focal * baseline / depth + offset, offset = c_x^L - c_x^R"
            var width: Int
            var height: Int
        }
        struct Clip: Encodable {
            var folder: String
            var parameters: StereoClipParameters
            /// Depth at which the disparity is 0 (where the rig converges), if the offset is negative.
            var convergenceDistance: Float?
        }
        struct ArrayInfo: Encodable {
            var name: String
            var description: String
        }
        var family = "stereo"
        var generator = "deform synth"
        var version = StereoSceneConfig.generatorVersion
        var seed: String
        var config: StereoSceneConfig
        var camera: Camera
        var imageFormation: String
        var clips: [Clip]
        var arrays: [ArrayInfo]
    }

    /// The `scene.json` text (sorted keys, so it is reproducible byte for byte).
    public static func sceneJSON(_ config: StereoSceneConfig, clips: [StereoClipParameters]) throws -> String {
        let scene = SceneFile(
            seed: String(config.seed), config: config,
            camera: .init(width: config.size, height: config.size),
            imageFormation: """
            Lambertian: albedo * (ambient + diffuse * max(0, <n, light>)), the same for both views; solid procedural \
            textures attached to each surface; rendered at supersampling x the resolution and box-filtered; ground truth \
            read at the pixel centres (the centre supersample)
            """,
            clips: clips.map { .init(folder: clipFolder($0.index, config: config), parameters: $0,
                                     convergenceDistance: $0.offset < 0 ? -$0.focal * $0.baseline / $0.offset : nil) },
            arrays: arrayDescriptions.map { .init(name: $0.name, description: $0.description) })
        return try SynthFiles.json(scene)
    }

    struct TransformsFile: Encodable {
        struct Frame: Encodable {
            var filePath: String
            var view: String
            var frame: Int
            var flX: Float
            var flY: Float
            var cx: Float
            var cy: Float
            var transformMatrix: [[Float]]
        }
        var cameraModel = "OPENCV"
        var w: Int
        var h: Int
        var k1: Float = 0
        var k2: Float = 0
        var p1: Float = 0
        var p2: Float = 0
        var baseline: Float
        var offset: Float
        var frames: [Frame]
    }

    /// A clip's nerfstudio-style `transforms.json`: every left and right image with its own
    /// intrinsics (nerfstudio reads per-frame `fl_x`, `cx`, ...; it puts pixel centres at
    /// `i + 0.5`, hence `cx = c_x + 0.5`) and camera-to-world matrix (OpenGL camera axes, as
    /// nerfstudio stores them) in the world frame of ``StereoClipParameters``.
    public static func transformsJSON(_ p: StereoClipParameters, config: StereoSceneConfig) throws -> String {
        var frames: [TransformsFile.Frame] = []
        for frame in 0..<config.frames {
            for right in [false, true] {
                let camera = try camera(p, config: config, right: right, t: Float(frame))
                let pose = camera.openGLCameraToWorld
                let matrix = (0..<3).map { Array(pose[($0 * 4)..<($0 * 4 + 4)]) } + [[0, 0, 0, 1]]
                let view = right ? "right" : "left"
                frames.append(.init(filePath: "\(view)/\(frameStem(frame, config: config)).png", view: view, frame: frame,
                                    flX: camera.fx, flY: camera.fy, cx: camera.cx, cy: camera.cy, transformMatrix: matrix))
            }
        }
        let file = TransformsFile(w: config.size, h: config.size, baseline: p.baseline, offset: p.offset, frames: frames)
        return try SynthFiles.json(file)
    }

    /// The folder's `README.md`.
    public static func readme(_ config: StereoSceneConfig) -> String {
        let arrays = arrayDescriptions.map { "- `\($0.name)`: \($0.description)" }
        let clip = clipFolder(0, config: config), frame = frameStem(0, config: config)
        let fov = config.fieldOfView, b = config.baseline, o = config.offset
        return """
        # Synthetic stereo video (`deform synth stereo`)

        \(config.count) stereo clips of \(config.frames) frames, \(config.size)x\(config.size) pixels per view, of dynamic
        scenes: a textured room (ground and back wall) with \(config.objects[0])-\(config.objects[1]) textured boxes and
        ellipsoids that slide to and fro, bounce and spin, filmed by a slowly swaying stereo rig. As in web stereo videos, every clip
        has its own focal length, baseline and disparity offset; they are written down here for evaluation, a method
        is not meant to see them. Generator version `\(StereoSceneConfig.generatorVersion)`, seed \(config.seed). The same
        seed and version give byte-identical files. Clip i depends only on the seed and i.

        ## Files

        - `scene.json`: the generator version, the seed and every parameter; the camera conventions; per clip its
          folder, focal length (pixels), baseline, offset, convergence distance (where the disparity is 0, for a
          negative offset), rig pose and motion (`camera_path`), light, and every object with its texture and motion; the arrays of
          the `.npz` files.
        - `preview.png`: a contact sheet, one row per clip (at most 4): left and right view of the first frame, its
          disparity (near is bright, over the valid pixels) and mask, then the left view and disparity of the last frame.
        - `<clip>/left/FFFFFF.png`, `<clip>/right/FFFFFF.png`: the two views (8-bit RGB, anti-aliased with
          \(config.supersampling)x\(config.supersampling) samples per pixel), e.g. `\(clip)/left/\(frame).png`.
        - `<clip>/gt/FFFFFF.npz`: the frame's ground truth (NumPy `.npz`, load with `numpy.load`), arrays:

        \(arrays.map { "  " + $0 }.joined(separator: "\n"))
        - `<clip>/transforms.json`: the clip's cameras in nerfstudio's layout: per image `file_path`, `view`, `frame`,
          its intrinsics `fl_x`, `fl_y`, `cx`, `cy` (nerfstudio's pixel centres at i + 0.5: `cx` is c_x + 0.5) and the
          4x4 camera-to-world `transform_matrix` with OpenGL camera axes; also the clip's `baseline` and `offset`.

        ## Stereo geometry

        Both cameras share the rig's rotation and the focal length f; the right camera sits `baseline` along the rig's
        x axis and its principal point is shifted, c_x^R = c_x^L - offset (a shifted-sensor rig, which behaves like a
        converging one without vertical disparity). A point at left depth Z is seen on the same row in both views
        with disparity

            d = u_left - u_right = f * baseline / Z + offset

        so the right image sampled at (u - d, v) reproduces the left one wherever `mask` is 1. WSVD writes the same
        relation as q = (d - d_min) / (f b) for the inverse depth q.

        World units are roughly metres: objects 0.3-0.9 across, the back wall \(config.wallDistance[0]) to
        \(config.wallDistance[1]) away, the cameras \(config.cameraHeight[0]) to \(config.cameraHeight[1]) above the ground.
        Ranges per clip: horizontal field of view \(fov[0]) to \(fov[1])° (f = W / (2 tan(fov / 2))), baseline
        \(b[0]) to \(b[1]), offset \(o[0]) to \(o[1]) times the width, rig yaw ±\(config.maxRigYaw)°, pitch down
        0 to \(config.maxRigPitch)°, rig speed up to \(config.maxCameraSpeed) per frame, object speed up to
        \(config.maxObjectSpeed) per frame (both sway back and forth along a line, so clips of any length stay in
        the room), spin up to \(config.maxSpin)° per frame.

        Back-projection: a left pixel (u, v) with depth Z is the left-camera point Z K_left⁻¹ (u, v, 1) (pixel centres on
        integers), the world point R (that) + C with `pose_left` = [R | C].

        """
    }

    /// The contact sheet: up to 4 clips, one per row, six panels each (see ``readme(_:)``).
    public static func preview(config: StereoSceneConfig, clips: [StereoClipParameters]) throws -> Tensor {
        let shown = Array(clips.prefix(4))
        let n = config.size, gap = 2, panels = 6
        let width = panels * (n + gap) + gap, height = shown.count * (n + gap) + gap
        var out = [Float](repeating: 1, count: width * height * 3)
        for (row, clip) in shown.enumerated() {
            let first = try render(clip, frame: 0, config: config)
            let last = try render(clip, frame: config.frames - 1, config: config)
            var lo = Float.infinity, hi = -Float.infinity
            for s in [first, last] {
                for p in 0..<(n * n) where s.mask[p] != 0 { lo = Swift.min(lo, s.disparity[p]); hi = Swift.max(hi, s.disparity[p]) }
            }
            hi = Swift.max(hi, lo + 1e-3)
            let oy = gap + row * (n + gap)
            for panel in 0..<panels {
                let ox = gap + panel * (n + gap)
                let s = panel < 4 ? first : last
                for j in 0..<n {
                    for i in 0..<n {
                        let p = j * n + i
                        var c = SIMD3<Float>.zero
                        switch panel {
                        case 0, 4: c = SIMD3(s.left[3 * p], s.left[3 * p + 1], s.left[3 * p + 2])
                        case 1: c = SIMD3(s.right[3 * p], s.right[3 * p + 1], s.right[3 * p + 2])
                        case 3: c = SIMD3(repeating: Float(s.mask[p]))
                        default:
                            if s.mask[p] != 0 {
                                c = SIMD3(repeating: 0.15 + 0.85 * Swift.min(Swift.max((s.disparity[p] - lo) / (hi - lo), 0), 1))
                            } else if s.depth[p] > 0 {
                                c = SIMD3(0.5, 0, 0)   // seen by the left camera only
                            }
                        }
                        let o = 3 * ((oy + j) * width + ox + i)
                        out[o] = c.x; out[o + 1] = c.y; out[o + 2] = c.z
                    }
                }
            }
        }
        return Tensor(out, shape: [height, width, 3])
    }
}
