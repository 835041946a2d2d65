import Testing
import Foundation
@testable import DeformSynth
import DeformIO
import DeformRender
import DeformTensor

/// Small, fast configurations of the `stereo` family.
func stereoConfig(count: Int = 2, frames: Int = 3, size: Int = 32, seed: UInt64 = 5) -> StereoSceneConfig {
    var c = StereoSceneConfig()
    c.count = count
    c.frames = frames
    c.size = size
    c.seed = seed
    return c
}

/// Row `j` of an `[n, n, 3]` image sampled at real column `u` (pixel centres on integers), linearly.
func sampleRow(_ image: [Float], size n: Int, row j: Int, at u: Float) -> SIMD3<Float> {
    let u0 = min(max(Int(u.rounded(.down)), 0), n - 2)
    let w = u - Float(u0)
    func px(_ i: Int) -> SIMD3<Float> { SIMD3(image[3 * (j * n + i)], image[3 * (j * n + i) + 1], image[3 * (j * n + i) + 2]) }
    return px(u0) * (1 - w) + px(u0 + 1) * w
}

/// An `[n, n, 3]` image sampled at the real position (u, v), bilinearly (clamped to the border).
func sampleImage(_ image: [Float], size n: Int, u: Float, v: Float) -> SIMD3<Float> {
    let v0 = min(max(Int(v.rounded(.down)), 0), n - 2)
    let w = v - Float(v0)
    return sampleRow(image, size: n, row: v0, at: u) * (1 - w) + sampleRow(image, size: n, row: v0 + 1, at: u) * w
}

/// The pixels whose 3×3 neighbourhood lies inside the image and passes `keep`.
func interior(size n: Int, _ keep: (Int) -> Bool) -> [(i: Int, j: Int)] {
    var out: [(Int, Int)] = []
    for j in 1..<(n - 1) {
        for i in 1..<(n - 1) where (-1...1).allSatisfy({ dj in (-1...1).allSatisfy { di in keep((j + dj) * n + i + di) } }) {
            out.append((i, j))
        }
    }
    return out
}

func meanAbsDifference(_ a: SIMD3<Float>, _ b: SIMD3<Float>) -> Float {
    (abs(a.x - b.x) + abs(a.y - b.y) + abs(a.z - b.z)) / 3
}

func percentile(_ values: [Float], _ q: Float) -> Float {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int(Float(sorted.count) * q))]
}

@Suite struct StereoScenesTests {
    @Test func sameSeedGivesIdenticalFilesAndOtherSeedsDiffer() throws {
        let a = temporaryFolder("stereo-a"), b = temporaryFolder("stereo-b"), c = temporaryFolder("stereo-c")
        defer { for u in [a, b, c] { try? FileManager.default.removeItem(at: u) } }
        let config = stereoConfig(count: 2, frames: 2, size: 24)
        try StereoScenes.generate(config: config, to: a)
        try StereoScenes.generate(config: config, to: b)
        let fa = try folderContents(a), fb = try folderContents(b)
        // Per clip: 2 frames x (left, right, gt) and transforms.json; plus scene.json, README.md, preview.png.
        #expect(fa.count == 2 * 7 + 3)
        #expect(Set(fa.keys) == Set(fb.keys))
        for (name, bytes) in fa { #expect(fb[name] == bytes, "\(name) differs between two runs with the same seed") }
        for name in ["000000/left/000000.png", "000001/right/000001.png", "000001/gt/000000.npz", "000000/transforms.json"] {
            #expect(fa[name] != nil, "missing \(name)")
        }
        var other = config
        other.seed = 6
        try StereoScenes.generate(config: other, to: c)
        let fc = try folderContents(c)
        #expect(fc["000000/gt/000000.npz"] != fa["000000/gt/000000.npz"])
        #expect(fc["000000/left/000000.png"] != fa["000000/left/000000.png"])
        // Clip i does not depend on the number of clips or frames.
        var longer = config
        longer.count = 5
        #expect(StereoScenes.parameters(index: 1, config: longer) == StereoScenes.parameters(index: 1, config: config))
        longer.frames = 4
        #expect(try StereoScenes.render(clip: 1, frame: 1, config: longer).left == StereoScenes.render(clip: 1, frame: 1, config: config).left)
    }

    /// The defining relation, d = f b / Z + offset, at every pixel with a surface (the disparity
    /// is computed by projecting the surface point into the right camera, so this checks that the
    /// rig is rectified with the documented baseline and principal-point shift); and the right
    /// camera the rasteriser used sees the point at u - d on the same row.
    @Test func disparityIsFocalTimesBaselineOverDepthPlusOffset() throws {
        let config = stereoConfig(count: 4, frames: 6, size: 48)
        var offsets: [Float] = []
        for clip in 0..<config.count {
            let p = StereoScenes.parameters(index: clip, config: config)
            offsets.append(p.offset)
            #expect(p.baseline >= 0.08 && p.baseline <= 0.25 && p.fieldOfView >= 40 && p.fieldOfView <= 75)
            #expect(abs(p.focal - 48 / (2 * tan(p.fieldOfView * .pi / 360))) < 1e-3)
            for frame in [0, config.frames - 1] {
                let s = try StereoScenes.render(p, frame: frame, config: config)
                let right = try StereoScenes.camera(p, config: config, right: true, t: Float(frame))
                let leftPose = try StereoScenes.camera(p, config: config, right: false, t: Float(frame)).cameraToWorld
                var covered = 0, valid = 0
                var lo = Float.infinity, hi = -Float.infinity
                var worldPoints: [Float] = [], pixels: [(Int, Int)] = []
                for j in 0..<48 {
                    for i in 0..<48 {
                        let q = j * 48 + i
                        // The room closes the view: every pixel sees a surface.
                        #expect(s.segmentation[q] != 255 && s.depth[q] > 0)
                        guard s.depth[q] > 0 else { #expect(s.mask[q] == 0 && s.disparity[q] == 0); continue }
                        covered += 1
                        let expected = p.focal * p.baseline / s.depth[q] + p.offset
                        #expect(abs(s.disparity[q] - expected) < 1e-3, "clip \(clip) frame \(frame) pixel (\(i), \(j)): \(s.disparity[q]) vs \(expected)")
                        if s.mask[q] == 1 {
                            valid += 1
                            lo = min(lo, s.disparity[q]); hi = max(hi, s.disparity[q])
                            #expect(Float(i) - s.disparity[q] >= 0 && Float(i) - s.disparity[q] <= 47)
                        }
                        if (i * 7 + j * 3) % 29 == 0 {
                            // Back-project with the left camera's K and pose, by hand.
                            let x = (Float(i) - 23.5) / p.focal * s.depth[q], y = (Float(j) - 23.5) / p.focal * s.depth[q], z = s.depth[q]
                            for r in 0..<3 {
                                worldPoints.append(leftPose[4 * r] * x + leftPose[4 * r + 1] * y + leftPose[4 * r + 2] * z + leftPose[4 * r + 3])
                            }
                            pixels.append((i, j))
                        }
                    }
                }
                #expect(covered == 48 * 48)
                #expect(Float(valid) > 0.6 * Float(covered), "clip \(clip) frame \(frame): only \(valid) valid pixels")
                #expect(hi - lo > 1, "clip \(clip) frame \(frame): disparity range \(lo)...\(hi)")
                // The rasteriser's right camera (pixel centres at i + 0.5) sees the points at u - d, row v.
                let (uv, _) = right.project(Tensor(worldPoints, shape: [pixels.count, 3]))
                let projected = uv.scalars
                for (k, (i, j)) in pixels.enumerated() {
                    let d = s.disparity[j * 48 + i]
                    #expect(abs(projected[2 * k] - 0.5 - (Float(i) - d)) < 2e-3)
                    #expect(abs(projected[2 * k + 1] - 0.5 - Float(j)) < 2e-3)
                }
            }
        }
        // Offsets are drawn per clip in [-0.08, 0.03] x width.
        #expect(offsets.allSatisfy { $0 >= -0.08 * 48 - 1e-4 && $0 <= 0.03 * 48 + 1e-4 })
        #expect(Set(offsets).count == offsets.count)
    }

    /// Sampling the right image at x - d reproduces the left image where both cameras see the
    /// same surface (away from occlusion boundaries); a disparity off by 1.5 px does not.
    @Test func rightImageWarpedByTheDisparityReproducesTheLeftImage() throws {
        let config = stereoConfig(count: 3, frames: 4, size: 96)
        for clip in 0..<config.count {
            for frame in [0, 3] {
                let s = try StereoScenes.render(clip: clip, frame: frame, config: config)
                let n = 96
                let pixels = interior(size: n) { s.mask[$0] == 1 }.filter { (i, j) in
                    let seg = s.segmentation[j * n + i]
                    return (-1...1).allSatisfy { dj in (-1...1).allSatisfy { di in s.segmentation[(j + dj) * n + i + di] == seg } }
                }
                try #require(pixels.count > n * n / 3, "clip \(clip) frame \(frame): \(pixels.count) interior valid pixels")
                func errors(shift: Float) -> [Float] {
                    pixels.map { (i, j) in
                        let p = j * n + i
                        let left = SIMD3(s.left[3 * p], s.left[3 * p + 1], s.left[3 * p + 2])
                        let warped = sampleRow(s.right, size: n, row: j, at: Float(i) - s.disparity[p] - shift)
                        return meanAbsDifference(left, warped)
                    }
                }
                let good = errors(shift: 0), bad = errors(shift: 1.5)
                let median = percentile(good, 0.5), p90 = percentile(good, 0.9)
                #expect(median < 0.005, "clip \(clip) frame \(frame): median |left - warped right| = \(median)")
                #expect(p90 < 0.035, "clip \(clip) frame \(frame): 90th percentile |left - warped right| = \(p90)")
                #expect(percentile(bad, 0.5) > 4 * median, "clip \(clip) frame \(frame): textures too flat to tell a 1.5 px error (\(percentile(bad, 0.5)) vs \(median))")
            }
        }
    }

    /// The flow moves frame t onto frame t + 1 of the left view where the surface stays in view;
    /// on the pixels that move by more than a pixel, following the flow beats standing still.
    @Test func flowWarpsTheLeftViewOntoTheNextFrame() throws {
        let config = stereoConfig(count: 4, frames: 3, size: 96)
        var movingWarped: [Float] = [], movingStill: [Float] = []
        for clip in 0..<config.count {
            let s0 = try StereoScenes.render(clip: clip, frame: 1, config: config)
            let s1 = try StereoScenes.render(clip: clip, frame: 2, config: config)
            let n = 96
            let pixels = interior(size: n) { _ in true }.filter { (i, j) in
                let p = j * n + i, seg = s0.segmentation[p]
                let u = Float(i) + s0.flow[2 * p], v = Float(j) + s0.flow[2 * p + 1]
                guard u >= 1 && u <= Float(n - 2) && v >= 1 && v <= Float(n - 2) else { return false }
                let same = (-1...1).allSatisfy { dj in (-1...1).allSatisfy { di in s0.segmentation[(j + dj) * n + i + di] == seg } }
                let target = Int(v.rounded()) * n + Int(u.rounded())
                // Same surface at the target and at its neighbours (not entering an occlusion).
                let there = (-1...1).allSatisfy { dj in (-1...1).allSatisfy { di in s1.segmentation[target + dj * n + di] == seg } }
                return same && there
            }
            try #require(pixels.count > n * n / 3)
            var errors: [Float] = []
            for (i, j) in pixels {
                let p = j * n + i
                let left = SIMD3(s0.left[3 * p], s0.left[3 * p + 1], s0.left[3 * p + 2])
                let fu = s0.flow[2 * p], fv = s0.flow[2 * p + 1]
                let warped = meanAbsDifference(left, sampleImage(s1.left, size: n, u: Float(i) + fu, v: Float(j) + fv))
                errors.append(warped)
                if fu * fu + fv * fv > 1 {
                    movingWarped.append(warped)
                    movingStill.append(meanAbsDifference(left, sampleImage(s1.left, size: n, u: Float(i), v: Float(j))))
                }
            }
            #expect(percentile(errors, 0.5) < 0.005, "clip \(clip): median |frame t - warped frame t+1| = \(percentile(errors, 0.5))")
            #expect(percentile(errors, 0.9) < 0.035, "clip \(clip): 90th percentile \(percentile(errors, 0.9))")
        }
        try #require(movingWarped.count > 100, "only \(movingWarped.count) pixels move by more than a pixel")
        let warped = movingWarped.reduce(0, +) / Float(movingWarped.count), still = movingStill.reduce(0, +) / Float(movingStill.count)
        #expect(warped < 0.4 * still, "moving pixels: mean error \(warped) following the flow, \(still) standing still")
    }

    @Test func filesHoldTheFramesAndTheClipParameters() throws {
        let out = temporaryFolder("stereo-files")
        defer { try? FileManager.default.removeItem(at: out) }
        let config = stereoConfig(count: 2, frames: 3, size: 20)
        try StereoScenes.generate(config: config, to: out)
        let p = StereoScenes.parameters(index: 1, config: config)
        let s = try StereoScenes.render(p, frame: 2, config: config)
        let npz = try readNPZ(out.appendingPathComponent("000001/gt/000002.npz"))
        #expect(Set(npz.keys) == Set(StereoScenes.arrayDescriptions.map(\.name)))
        #expect(npz["disparity"]!.shape == [20, 20] && npz["disparity"]!.tensor().scalars == s.disparity)
        #expect(npz["depth"]!.tensor().scalars == s.depth)
        #expect(npz["flow"]!.shape == [20, 20, 2] && npz["flow"]!.tensor().scalars == s.flow)
        #expect(npz["mask"]!.dtype == .uint8 && npz["segmentation"]!.dtype == .uint8)
        #expect(npz["baseline"]!.tensor().scalars == [p.baseline] && npz["offset"]!.tensor().scalars == [p.offset])
        let kl = npz["intrinsics_left"]!.tensor().scalars, kr = npz["intrinsics_right"]!.tensor().scalars
        #expect(kl[0] == p.focal && kl[2] == 9.5 && kr[2] == 9.5 - p.offset && kr[5] == 9.5)
        for (view, pixels) in [("left", s.left), ("right", s.right)] {
            let image = try readImage(out.appendingPathComponent("000001/\(view)/000002.png"))
            #expect(image.pixels.shape == [20, 20, 3])
            #expect(zip(image.pixels.scalars, pixels).map { abs($0 - $1) }.max()! <= 0.5 / 255 + 1e-6)
        }
        let scene = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("scene.json"))) as! [String: Any]
        #expect(scene["version"] as? String == StereoSceneConfig.generatorVersion && scene["family"] as? String == "stereo")
        let clips = scene["clips"] as! [[String: Any]]
        #expect(clips.count == 2 && clips[1]["folder"] as? String == "000001")
        let stored = clips[1]["parameters"] as! [String: Any]
        #expect(Float(stored["focal"] as! Double) == p.focal && Float(stored["baseline"] as! Double) == p.baseline)
        #expect(Float(stored["offset"] as! Double) == p.offset)
        #expect((stored["objects"] as! [Any]).count == p.objects.count)
        // transforms.json: the right camera of frame 2 sees a left-view surface point at u - d.
        let transforms = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("000001/transforms.json"))) as! [String: Any]
        let frames = transforms["frames"] as! [[String: Any]]
        #expect(frames.count == 6)
        let entry = frames.first { $0["view"] as? String == "right" && $0["frame"] as? Int == 2 }!
        #expect(entry["file_path"] as? String == "right/000002.png")
        let matrix = (entry["transform_matrix"] as! [[Double]]).flatMap { $0 }.map(Float.init)
        let camera = try PinholeCamera(width: 20, height: 20, fx: Float(entry["fl_x"] as! Double), fy: Float(entry["fl_y"] as! Double),
                                       cx: Float(entry["cx"] as! Double), cy: Float(entry["cy"] as! Double),
                                       openGLCameraToWorld: Array(matrix[0..<12]))
        let pose = npz["pose_left"]!.tensor().scalars
        let (i, j) = (13, 11)
        let z = s.depth[j * 20 + i]
        let local = [(Float(i) - 9.5) / p.focal * z, (Float(j) - 9.5) / p.focal * z, z]
        let world = (0..<3).map { r in pose[4 * r] * local[0] + pose[4 * r + 1] * local[1] + pose[4 * r + 2] * local[2] + pose[4 * r + 3] }
        let uv = camera.project(Tensor(world, shape: [1, 3])).pixels.scalars
        #expect(abs(uv[0] - 0.5 - (Float(i) - s.disparity[j * 20 + i])) < 2e-3 && abs(uv[1] - 0.5 - Float(j)) < 2e-3)
        let preview = try readImage(out.appendingPathComponent("preview.png"))
        #expect(preview.height > 2 * 20 && preview.width > 6 * 20)
        let readme = try String(contentsOf: out.appendingPathComponent("README.md"), encoding: .utf8)
        for array in StereoScenes.arrayDescriptions { #expect(readme.contains("`\(array.name)`")) }
    }

    /// The value noise equals trilinear interpolation of the lattice hashes, written out.
    @Test func noiseMatchesItsReference() {
        var rng = SynthRandom(seed: 3, stream: 9)
        for _ in 0..<500 {
            let p = SIMD3<Float>(rng.uniform(-40, 40), rng.uniform(-40, 40), rng.uniform(-40, 40))
            let seed = UInt32(rng.int(1 << 20))
            let f = SIMD3<Float>(p.x.rounded(.down), p.y.rounded(.down), p.z.rounded(.down))
            let i = Int32(f.x), j = Int32(f.y), k = Int32(f.z)
            func w(_ x: Float) -> Float { x * x * (3 - 2 * x) }
            let (tx, ty, tz) = (w(p.x - f.x), w(p.y - f.y), w(p.z - f.z))
            func c(_ a: Int32, _ b: Int32, _ d: Int32) -> Float { SolidTexture.lattice(i + a, j + b, k + d, seed) }
            var reference: Float = 0
            for dz in Int32(0)...1 {
                for dy in Int32(0)...1 {
                    for dx in Int32(0)...1 {
                        reference += (dx == 1 ? tx : 1 - tx) * (dy == 1 ? ty : 1 - ty) * (dz == 1 ? tz : 1 - tz) * c(dx, dy, dz)
                    }
                }
            }
            let fast = SolidTexture.noise(p, seed)
            #expect(abs(fast - reference) < 1e-5, "noise at \(p): \(fast) vs \(reference)")
            #expect(abs(fast) <= 1)
        }
        // At lattice points the noise is the lattice value.
        #expect(SolidTexture.noise(SIMD3(3, -2, 5), 17) == SolidTexture.lattice(3, -2, 5, 17))
    }

    @Test func badInputIsRefusedWithClearErrors() throws {
        #expect(try SynthFamily.named("stereo") == .stereo)
        for (count, frames, size) in [(0, 4, 32), (-2, 4, 32), (2, 0, 32), (2, -1, 32), (2, 4, 0), (2, 4, -5)] {
            var c = StereoSceneConfig()
            (c.count, c.frames, c.size) = (count, frames, size)
            #expect(throws: SynthError.self) { try c.validate() }
            let folder = temporaryFolder("stereo-bad")
            #expect(throws: SynthError.self) { try StereoScenes.generate(config: c, to: folder) }
            #expect(!FileManager.default.fileExists(atPath: folder.path))
        }
        var c = StereoSceneConfig()
        c.frames = 0
        #expect(throws: SynthError("frames must be positive, got 0")) { try c.validate() }
        c = StereoSceneConfig()
        c.baseline = [0.2, 0.1]
        #expect(throws: SynthError.self) { try c.validate() }
        #expect(throws: SynthError("frame must be in 0..<3, got 3")) { try StereoScenes.render(clip: 0, frame: 3, config: stereoConfig()) }
        // A non-empty output folder is refused (and left alone) unless overwriting.
        let folder = temporaryFolder("stereo-existing")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: folder.appendingPathComponent("notes.txt"))
        let config = stereoConfig(count: 1, frames: 1, size: 16)
        #expect(throws: SynthError.self) { try StereoScenes.generate(config: config, to: folder) }
        #expect(try Data(contentsOf: folder.appendingPathComponent("notes.txt")) == Data("keep".utf8))
        try StereoScenes.generate(config: config, to: folder, overwrite: true)
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("notes.txt").path))
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("000000/gt/000000.npz").path))
        // An output that is a file.
        #expect(throws: SynthError.self) {
            try StereoScenes.generate(config: config, to: folder.appendingPathComponent("scene.json"), overwrite: true)
        }
    }
}
