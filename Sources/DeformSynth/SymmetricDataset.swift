import DeformIO
import DeformRender
import DeformTensor
import Foundation

/// Writing a `symmetric` dataset folder.
extension SymmetricScenes {
    /// The members of every per-image `.npz` file, with their meaning (also written to
    /// `scene.json` and the folder's `README.md`).
    public static let arrayDescriptions: [(name: String, description: String)] = [
        ("depth", "float32 [H, W]: camera depth (z) of the head in the image's view at each pixel centre; 0 on background"),
        ("normal", "float32 [H, W, 3]: unit surface normal in the image's camera frame (x right, y down, z forward), oriented like Unsup3D's depth normals: (0, 0, 1) faces the camera; 0 on background"),
        ("mask", "uint8 [H, W]: 1 where the head covers the pixel centre (exactly depth > 0)"),
        ("coverage", "float32 [H, W]: fraction of the pixel's supersamples covered by the head (the anti-aliased mask)"),
        ("canonical_depth", "float32 [H, W]: depth of the head in the canonical (frontal) view, 0 on background"),
        ("canonical_mask", "uint8 [H, W]: 1 where the head covers the pixel centre in the canonical view"),
        ("albedo", "float32 [H, W, 3]: albedo in the canonical view (mean over the pixel's covered supersamples) where canonical_mask is 1, else 0"),
        ("light", "float32 [4]: Unsup3D's light (k_s, k_d, l_x, l_y): ambient, diffuse, light direction (l_x, l_y, 1)/norm in the canonical frame"),
        ("view", "float32 [6]: Unsup3D's viewpoint: rotation angles about x, y, z in degrees (pitch, yaw, roll) and translation (t_x, t_y, t_z)"),
        ("rotation", "float32 [3, 3]: R = R_x(pitch) R_y(yaw) R_z(roll); canonical-view camera points X map to image-view camera points R X + T"),
        ("translation", "float32 [3]: T = c + t - R c with the pivot c = (0, 0, distance)"),
        ("intrinsics", "float32 [3, 3]: K with pixel centres on integers: f = (W - 1) / (2 tan(fov / 2)), c_u = (W - 1) / 2, c_v = (H - 1) / 2"),
        ("shape", "float32 [\(HeadModel.shapeModes.count)]: coefficients of the symmetric shape modes (names in scene.json)"),
        ("background", "float32 [2, 3]: background RGB at the top and the bottom edge of the image (a linear vertical gradient)"),
    ]

    /// The `.npz` members of a sample.
    public static func arrays(_ s: SymmetricSample, config: SymmetricSceneConfig) -> [String: NPYArray] {
        let n = s.size
        let (f, cu, cv) = config.intrinsics
        let p = s.parameters
        func floats(_ v: [Float], _ shape: [Int]) -> NPYArray { NPYArray(Tensor(v, shape: shape)) }
        return [
            "depth": floats(s.depth, [n, n]),
            "normal": floats(s.normal, [n, n, 3]),
            "mask": NPYArray(uint8s: s.mask, shape: [n, n]),
            "coverage": floats(s.coverage, [n, n]),
            "canonical_depth": floats(s.canonicalDepth, [n, n]),
            "canonical_mask": NPYArray(uint8s: s.canonicalMask, shape: [n, n]),
            "albedo": floats(s.albedo, [n, n, 3]),
            "light": floats(p.light, [4]),
            "view": floats(p.view, [6]),
            "rotation": floats(s.rotation, [3, 3]),
            "translation": floats(s.translation, [3]),
            "intrinsics": floats([f, 0, cu, 0, f, cv, 0, 0, 1], [3, 3]),
            "shape": floats(p.identity.shape, [p.identity.shape.count]),
            "background": floats([p.backgroundTop.x, p.backgroundTop.y, p.backgroundTop.z,
                                  p.backgroundBottom.x, p.backgroundBottom.y, p.backgroundBottom.z], [2, 3]),
        ]
    }

    /// The file stem of image `index` (zero-padded, at least 6 digits).
    public static func stem(_ index: Int, count: Int) -> String {
        let digits = Swift.max(6, String(Swift.max(count - 1, 0)).count)
        let s = String(index)
        return String(repeating: "0", count: Swift.max(0, digits - s.count)) + s
    }

    /// Refuses an output that is a file, or a non-empty folder unless `overwrite`.
    public static func checkOutput(_ output: URL, overwrite: Bool) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: output.path, isDirectory: &isDirectory) else { return }
        guard isDirectory.boolValue else {
            throw SynthError("output \(output.path) exists and is a file; choose another folder")
        }
        let contents = (try? fm.contentsOfDirectory(atPath: output.path)) ?? []
        if !contents.isEmpty && !overwrite {
            throw SynthError("output folder \(output.path) exists and is not empty; choose another folder or pass --overwrite")
        }
    }

    /// Writes a whole dataset to `output`: `scene.json`, `transforms.json`, `README.md`, `preview.png` and, per split
    /// folder (`train`, `val`, `test`), one `NNNNNN.png` frame and one `NNNNNN.npz` of ground truth
    /// per image. Images are rendered in parallel on all cores. Files are written to a hidden
    /// sibling folder that is renamed into place at the end, so a failed run leaves no
    /// half-written dataset (and an existing one untouched).
    ///
    /// - Parameters:
    ///   - overwrite: replace a non-empty `output` folder.
    ///   - progress: called with the number of finished images (serialised, from worker threads).
    /// - Throws: ``SynthError`` for a bad configuration or output; `DeformIOError` for write failures.
    public static func generate(config: SymmetricSceneConfig, to output: URL, overwrite: Bool = false,
                                progress: ((Int) -> Void)? = nil) throws {
        try config.validate()
        let output = output.standardizedFileURL
        try checkOutput(output, overwrite: overwrite)
        let fm = FileManager.default
        let parent = output.deletingLastPathComponent()
        try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        let staging = parent.appendingPathComponent(".\(output.lastPathComponent).partial-\(ProcessInfo.processInfo.processIdentifier)")
        try? fm.removeItem(at: staging)
        try fm.createDirectory(at: staging, withIntermediateDirectories: true)
        do {
            for (name, _) in config.splitRanges { try fm.createDirectory(at: staging.appendingPathComponent(name), withIntermediateDirectories: true) }
            try renderAll(config: config, into: staging, progress: progress)
            try writeAtomically(Data(sceneJSON(config).utf8), to: staging.appendingPathComponent("scene.json"))
            try writeAtomically(Data(transformsJSON(config).utf8), to: staging.appendingPathComponent("transforms.json"))
            try writeAtomically(Data(readme(config).utf8), to: staging.appendingPathComponent("README.md"))
            try writePNG(preview(config: config), to: staging.appendingPathComponent("preview.png"))
            try checkOutput(output, overwrite: overwrite)
            if fm.fileExists(atPath: output.path) { try fm.removeItem(at: output) }
            try fm.moveItem(at: staging, to: output)
        } catch {
            try? fm.removeItem(at: staging)
            throw error
        }
    }

    static func renderAll(config: SymmetricSceneConfig, into folder: URL, progress: ((Int) -> Void)?) throws {
        let count = config.count
        try SynthFiles.forEachItem(count, progress: progress) { index in
            let sample = try render(index: index, config: config)
            let base = folder.appendingPathComponent(config.split(of: index)).appendingPathComponent(stem(index, count: count))
            try writePNG(Tensor(sample.image, shape: [config.size, config.size, 3]), to: base.appendingPathExtension("png"))
            try writeNPZ(arrays(sample, config: config), to: base.appendingPathExtension("npz"))
        }
    }

    // MARK: - Metadata

    struct SceneFile: Encodable {
        struct Camera: Encodable {
            var model = "pinhole"
            var axes = "x right, y down, z forward (OpenCV)"
            var pixelCenters = "integers: pixel (i, j) is at (u, v) = (i, j)"
            var fieldOfViewDegrees: Float
            var f: Float
            var cu: Float
            var cv: Float
            var width: Int
            var height: Int
        }
        struct Split: Encodable {
            var name: String
            var first: Int
            var count: Int
            var folder: String
        }
        struct ArrayInfo: Encodable {
            var name: String
            var description: String
        }
        var family = "symmetric"
        var generator = "deform synth"
        var version = SymmetricSceneConfig.generatorVersion
        var seed: String
        var config: SymmetricSceneConfig
        var camera: Camera
        var shapeModes = HeadModel.shapeModes
        var asymmetricPerturbations: String
        var imageFormation: String
        var splits: [Split]
        var arrays: [ArrayInfo]
    }

    /// The `scene.json` text (sorted keys, so it is reproducible byte for byte).
    public static func sceneJSON(_ config: SymmetricSceneConfig) throws -> String {
        let (f, cu, cv) = config.intrinsics
        let scene = SceneFile(
            seed: String(config.seed), config: config,
            camera: .init(fieldOfViewDegrees: config.fieldOfView, f: f, cu: cu, cv: cv, width: config.size, height: config.size),
            asymmetricPerturbations: """
            shape: \(HeadModel.asymmetricBumpCount) radial bumps of amplitude at most \(HeadModel.maxBumpAmplitude) model units \
            and a sideways nose deviation of at most \(HeadModel.maxNoseDeviation) rad, both times asymmetry; albedo: moles and \
            blemishes and a hairline raised on one side of the parting, times asymmetry
            """,
            imageFormation: """
            I = (k_s + k_d max(0, <l, n_canonical>)) * albedo, l = (l_x, l_y, 1) / norm, shaded in the canonical view and seen \
            through X -> R X + T; rendered at supersampling x the resolution and box-filtered
            """,
            splits: config.splitRanges.map { .init(name: $0.name, first: $0.range.lowerBound, count: $0.range.count, folder: $0.name) },
            arrays: arrayDescriptions.map { .init(name: $0.name, description: $0.description) })
        return try SynthFiles.json(scene)
    }

    struct TransformsFile: Encodable {
        struct Frame: Encodable {
            var filePath: String
            var split: String
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

    /// A nerfstudio-style `transforms.json`: one frame per image with its camera-to-world matrix
    /// (OpenGL camera axes, as nerfstudio stores them) in the canonical camera's frame, so that
    /// the head is a static object seen by many cameras. nerfstudio puts pixel centres at
    /// `i + 0.5`, hence `cx = W / 2` for Unsup3D's `c_u = (W - 1) / 2`.
    public static func transformsJSON(_ config: SymmetricSceneConfig) throws -> String {
        let f = config.intrinsics.f, n = config.size
        let frames = try (0..<config.count).map { index -> TransformsFile.Frame in
            let (r, t) = parameters(index: index, config: config).rotationTranslation(distance: config.distance)
            var single = config
            single.supersampling = 1
            let pose = try camera(config: single, rotation: r, translation: t).openGLCameraToWorld
            let matrix = (0..<3).map { Array(pose[($0 * 4)..<($0 * 4 + 4)]) } + [[0, 0, 0, 1]]
            let split = config.split(of: index)
            return .init(filePath: "\(split)/\(stem(index, count: config.count)).png", split: split, transformMatrix: matrix)
        }
        let file = TransformsFile(flX: f, flY: f, cx: Float(n) / 2, cy: Float(n) / 2, w: n, h: n, frames: frames)
        return try SynthFiles.json(file)
    }

    /// The folder's `README.md`.
    public static func readme(_ config: SymmetricSceneConfig) -> String {
        let splits = config.splitRanges.map { "- `\($0.name)/`: images \($0.range.lowerBound)..<\($0.range.upperBound) (\($0.range.count))" }
        let arrays = arrayDescriptions.map { "- `\($0.name)`: \($0.description)" }
        let example = stem(config.splitRanges[0].range.isEmpty ? 0 : config.splitRanges[0].range.lowerBound, count: config.count)
        return """
        # Synthetic symmetric heads (`deform synth symmetric`)

        \(config.count) images of \(config.size)x\(config.size) pixels of procedural, bilaterally symmetric heads (a
        morphable model with \(HeadModel.shapeModes.count) symmetric shape modes plus small asymmetric perturbations, and a
        symmetric procedural albedo with asymmetric details), generator version `\(SymmetricSceneConfig.generatorVersion)`,
        seed \(config.seed). The same seed and version give byte-identical files. Image i depends only on the seed
        and i, so a larger dataset with the same seed starts with the same heads (the split boundaries move).

        ## Files

        - `scene.json`: the generator version, the seed and every parameter; the camera; the names of the shape
          modes; the splits; the arrays of the `.npz` files.
        - `transforms.json`: the cameras in nerfstudio's layout (`fl_x`, `fl_y`, `cx`, `cy`, `w`, `h`, and per frame
          `file_path`, `split` and the 4x4 camera-to-world `transform_matrix` with OpenGL camera axes), in the
          canonical camera's frame: every image is the same kind of static head seen by its own camera.
          nerfstudio puts pixel centres at i + 0.5, so its `cx` is the `intrinsics` c_u + 0.5.
        - `preview.png`: a contact sheet of the first images, two per row, each as six panels: image, depth
          (near is bright), normals (RGB = (n + 1) / 2), mask, canonical depth, canonical albedo.
        \(splits.joined(separator: "\n"))
        - `<split>/NNNNNN.png`: the RGB image (8-bit, anti-aliased with \(config.supersampling)x\(config.supersampling) samples per pixel), e.g. `train/\(example).png`.
        - `<split>/NNNNNN.npz`: its ground truth (NumPy `.npz`, load with `numpy.load`), arrays:

        \(arrays.map { "  " + $0 }.joined(separator: "\n"))

        ## Image formation (Unsup3D's model)

        The head is built in the canonical view: its centre at depth \(config.distance), facing the camera, scaled by
        \(config.headScale) world units per model unit. It is shaded there, `J = (k_s + k_d max(0, <l, n>)) a` with
        `l = (l_x, l_y, 1) / |(l_x, l_y, 1)|` and the canonical normals `n` oriented as in `normal`, then seen from
        the viewpoint `X -> R X + T` (rotation about the pivot (0, 0, \(config.distance))) through a pinhole with a
        \(config.fieldOfView)° field of view. Depth, normals and masks are point samples at pixel centres; the image
        is the mean of the \(config.supersampling * config.supersampling) samples of each pixel, over a vertical background gradient.

        Ranges: yaw ±\(config.maxYaw)°, pitch ±\(config.maxPitch)°, roll ±\(config.maxRoll)°, x/y shift
        ±\(config.maxShift), z shift ±\(config.maxDepthShift); k_s in [\(config.ambient[0]), \(config.ambient[1])], k_d in
        [\(config.diffuse[0]), \(config.diffuse[1])], l_x and l_y in ±\(config.maxLightXY); asymmetry \(config.asymmetry).

        Back-projection: a pixel (u, v) with depth d is the camera point d K⁻¹ (u, v, 1) (pixel centres on integers).

        """
    }

    /// The contact sheet: up to 8 samples, two per row, six panels each (see ``readme(_:)``).
    public static func preview(config: SymmetricSceneConfig) throws -> Tensor {
        let samples = try (0..<Swift.min(8, config.count)).map { try render(index: $0, config: config) }
        let n = config.size, gap = 2, panels = 6, perRow = 2
        let rows = (samples.count + perRow - 1) / perRow
        let width = perRow * panels * (n + gap) + gap, height = rows * (n + gap) + gap
        var out = [Float](repeating: 1, count: width * height * 3)
        for (s, sample) in samples.enumerated() {
            let ox0 = gap + (s % perRow) * panels * (n + gap), oy = gap + (s / perRow) * (n + gap)
            func range(_ d: [Float], _ m: [UInt8]) -> (Float, Float) {
                var lo = Float.infinity, hi = -Float.infinity
                for i in 0..<(n * n) where m[i] != 0 { lo = Swift.min(lo, d[i]); hi = Swift.max(hi, d[i]) }
                return (lo, Swift.max(hi, lo + 1e-6))
            }
            let (dlo, dhi) = range(sample.depth, sample.mask), (clo, chi) = range(sample.canonicalDepth, sample.canonicalMask)
            for panel in 0..<panels {
                let ox = ox0 + panel * (n + gap)
                for j in 0..<n {
                    for i in 0..<n {
                        let p = j * n + i
                        var c = SIMD3<Float>.zero
                        switch panel {
                        case 0: c = SIMD3(sample.image[3 * p], sample.image[3 * p + 1], sample.image[3 * p + 2])
                        case 1: if sample.mask[p] != 0 { c = SIMD3(repeating: 0.15 + 0.85 * (dhi - sample.depth[p]) / (dhi - dlo)) }
                        case 2: if sample.mask[p] != 0 { c = (SIMD3(sample.normal[3 * p], sample.normal[3 * p + 1], sample.normal[3 * p + 2]) + 1) / 2 }
                        case 3: c = SIMD3(repeating: Float(sample.mask[p]))
                        case 4: if sample.canonicalMask[p] != 0 { c = SIMD3(repeating: 0.15 + 0.85 * (chi - sample.canonicalDepth[p]) / (chi - clo)) }
                        default: c = SIMD3(sample.albedo[3 * p], sample.albedo[3 * p + 1], sample.albedo[3 * p + 2])
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
