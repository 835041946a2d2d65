import Testing
import Foundation
@testable import DeformSynth
import DeformIO
import DeformRender
import DeformTensor

/// Small, fast configurations of the `symmetric` family.
func smallConfig(size: Int = 32, count: Int = 4, asymmetry: Float = 1, seed: UInt64 = 7) -> SymmetricSceneConfig {
    var c = SymmetricSceneConfig()
    c.size = size
    c.count = count
    c.asymmetry = asymmetry
    c.seed = seed
    return c
}

func temporaryFolder(_ name: String) -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("deform-synth-\(name)-\(UUID().uuidString)")
}

/// Horizontal mirror of a row-major `[n, n, c]` map.
func flipped<T>(_ m: [T], size n: Int, channels c: Int = 1) -> [T] {
    var out = m
    for j in 0..<n {
        for i in 0..<n {
            for k in 0..<c { out[(j * n + i) * c + k] = m[(j * n + (n - 1 - i)) * c + k] }
        }
    }
    return out
}

/// All files under `folder` (relative path → bytes).
func folderContents(_ folder: URL) throws -> [String: Data] {
    var out: [String: Data] = [:]
    let fm = FileManager.default
    guard let walker = fm.enumerator(atPath: folder.path) else { return out }
    for case let relative as String in walker {
        var isDirectory: ObjCBool = false
        let url = folder.appendingPathComponent(relative)
        if fm.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            out[relative] = try Data(contentsOf: url)
        }
    }
    return out
}

@Suite struct SymmetricScenesTests {
    @Test func sameSeedGivesIdenticalFilesAndOtherSeedsDiffer() throws {
        let a = temporaryFolder("a"), b = temporaryFolder("b"), c = temporaryFolder("c")
        defer { for u in [a, b, c] { try? FileManager.default.removeItem(at: u) } }
        let config = smallConfig(size: 24, count: 10)
        try SymmetricScenes.generate(config: config, to: a)
        try SymmetricScenes.generate(config: config, to: b)
        let fa = try folderContents(a), fb = try folderContents(b)
        // 10 images: 8 train, 1 val, 1 test; a PNG and an NPZ each, plus the four folder files.
        #expect(fa.count == 24)
        #expect(Set(fa.keys) == Set(fb.keys))
        for (name, bytes) in fa { #expect(fb[name] == bytes, "\(name) differs between two runs with the same seed") }
        #expect(fa["train/000000.png"] != nil && fa["val/000008.npz"] != nil && fa["test/000009.png"] != nil)
        var other = config
        other.seed = 8
        try SymmetricScenes.generate(config: other, to: c)
        let fc = try folderContents(c)
        #expect(fc["train/000000.npz"] != fa["train/000000.npz"])
        // Image i does not depend on the dataset size.
        var smaller = config
        smaller.count = 3
        #expect(try SymmetricScenes.render(index: 2, config: smaller).image == SymmetricScenes.render(index: 2, config: config).image)
    }

    @Test func filesHoldTheSampleAndSceneJSONTheParameters() throws {
        let out = temporaryFolder("files")
        defer { try? FileManager.default.removeItem(at: out) }
        let config = smallConfig(size: 20, count: 5)
        try SymmetricScenes.generate(config: config, to: out)
        let sample = try SymmetricScenes.render(index: 1, config: config)
        let npz = try readNPZ(out.appendingPathComponent("train/000001.npz"))
        #expect(Set(npz.keys) == Set(SymmetricScenes.arrayDescriptions.map(\.name)))
        #expect(npz["depth"]!.shape == [20, 20] && npz["depth"]!.tensor().scalars == sample.depth)
        #expect(npz["albedo"]!.shape == [20, 20, 3] && npz["albedo"]!.tensor().scalars == sample.albedo)
        #expect(npz["mask"]!.dtype == .uint8)
        let image = try readImage(out.appendingPathComponent("train/000001.png"))
        #expect(image.pixels.shape == [20, 20, 3])
        let maxError = zip(image.pixels.scalars, sample.image).map { abs($0 - $1) }.max()!
        #expect(maxError <= 0.5 / 255 + 1e-6)
        let scene = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("scene.json"))) as! [String: Any]
        #expect(scene["version"] as? String == SymmetricSceneConfig.generatorVersion)
        #expect(scene["seed"] as? String == "7")
        let stored = scene["config"] as! [String: Any]
        #expect(stored["max_yaw"] as? Double == 60 && stored["count"] as? Int == 5 && stored["supersampling"] as? Int == 3)
        // transforms.json: the camera of frame i sees the canonical-frame mesh point X at R X + T.
        let transforms = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("transforms.json"))) as! [String: Any]
        let frames = transforms["frames"] as! [[String: Any]]
        #expect(frames.count == 5 && frames[1]["file_path"] as? String == "train/000001.png" && frames[4]["split"] as? String == "val")
        #expect(transforms["cx"] as? Double == 10 && transforms["w"] as? Int == 20)
        let matrix = (frames[1]["transform_matrix"] as! [[Double]]).flatMap { $0 }.map(Float.init)
        let camera = try PinholeCamera(width: 20, height: 20, fx: 1, fy: 1, cx: 10, cy: 10, openGLCameraToWorld: Array(matrix[0..<12]))
        let x = Tensor([0.01, -0.02, 1.03], shape: [1, 3])
        let seen = camera.toCamera(x).scalars
        let r = sample.rotation, t = sample.translation
        for i in 0..<3 {
            #expect(abs(seen[i] - (r[3 * i] * 0.01 - r[3 * i + 1] * 0.02 + r[3 * i + 2] * 1.03 + t[i])) < 1e-5)
        }
        let preview = try readImage(out.appendingPathComponent("preview.png"))
        #expect(preview.height > 20 && preview.width > 6 * 20)
        let readme = try String(contentsOf: out.appendingPathComponent("README.md"), encoding: .utf8)
        for array in SymmetricScenes.arrayDescriptions { #expect(readme.contains("`\(array.name)`")) }
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func exactlySymmetricWithoutPerturbations(seed: UInt64) throws {
        let config = smallConfig(size: 48, asymmetry: 0, seed: seed)
        let s = try SymmetricScenes.render(index: 0, config: config)
        let n = config.size
        #expect(s.canonicalMask == flipped(s.canonicalMask, size: n))
        let d = s.canonicalDepth, fd = flipped(d, size: n)
        let depthError = zip(d, fd).map { abs($0 - $1) }.max()!
        #expect(depthError < 2e-6, "canonical depth differs from its mirror image by \(depthError)")
        let a = s.albedo, fa = flipped(a, size: n, channels: 3)
        let albedoError = zip(a, fa).map { abs($0 - $1) }.max()!
        #expect(albedoError < 1e-4, "canonical albedo differs from its mirror image by \(albedoError)")
        #expect(s.canonicalMask.filter { $0 == 1 }.count > n * n / 4)
    }

    @Test func perturbationsAreSmallButPresent() throws {
        for index in 0..<3 {
            let config = smallConfig(size: 48, asymmetry: 1)
            let s = try SymmetricScenes.render(index: index, config: config)
            let n = config.size
            let fm = flipped(s.canonicalMask, size: n), fd = flipped(s.canonicalDepth, size: n)
            var both = 0, mismatch = 0
            var diffs: [Float] = []
            for p in 0..<(n * n) {
                if s.canonicalMask[p] != fm[p] { mismatch += 1 }
                if s.canonicalMask[p] == 1 && fm[p] == 1 { both += 1; diffs.append(abs(s.canonicalDepth[p] - fd[p])) }
            }
            // The documented bound: the asymmetric bumps move the surface radially by at most
            // bumpCount * maxBumpAmplitude model units (times the scale); every mirror difference
            // of the depth stays inside it, and on average far inside.
            let bound = Float(HeadModel.asymmetricBumpCount) * HeadModel.maxBumpAmplitude * config.headScale
            try #require(diffs.count > n * n / 8)
            let mean = diffs.reduce(0, +) / Float(diffs.count)
            #expect(mean > 1e-5, "image \(index): perturbations should make the depth asymmetric")
            #expect(mean < 0.1 * bound, "image \(index): mean mirror difference \(mean) vs bound \(bound)")
            #expect(diffs.max()! < bound, "image \(index): largest mirror difference \(diffs.max()!) vs bound \(bound)")
            #expect(Float(mismatch) < 0.03 * Float(both), "image \(index): silhouette differs from its mirror at \(mismatch) pixels")
            let fa = flipped(s.albedo, size: n, channels: 3)
            var albedoDiff: Float = 0
            for p in 0..<(n * n) where s.canonicalMask[p] == 1 && fm[p] == 1 {
                for k in 0..<3 { albedoDiff += abs(s.albedo[3 * p + k] - fa[3 * p + k]) }
            }
            #expect(albedoDiff / Float(3 * both) > 1e-4 && albedoDiff / Float(3 * both) < 0.05)
        }
    }

    @Test func maskIsDepthAboveZeroAndCoverageAgrees() throws {
        let config = smallConfig(size: 40)
        for index in 0..<3 {
            let s = try SymmetricScenes.render(index: index, config: config)
            for p in 0..<(40 * 40) {
                #expect((s.mask[p] == 1) == (s.depth[p] > 0))
                #expect((s.canonicalMask[p] == 1) == (s.canonicalDepth[p] > 0))
                if s.mask[p] == 1 { #expect(s.coverage[p] > 0) } else { #expect(s.coverage[p] < 1) }
                let n = s.normal[(3 * p)..<(3 * p + 3)].map { $0 * $0 }.reduce(0, +)
                #expect(s.mask[p] == 1 ? abs(n - 1) < 1e-4 : n == 0)
            }
            #expect(s.mask.filter { $0 == 1 }.count > 200)
        }
    }

    /// Ray–triangle intersection (Möller–Trumbore): the ray parameter of the hit, if any.
    func intersect(_ o: SIMD3<Double>, _ d: SIMD3<Double>, _ a: SIMD3<Double>, _ b: SIMD3<Double>, _ c: SIMD3<Double>) -> Double? {
        func cross(_ u: SIMD3<Double>, _ v: SIMD3<Double>) -> SIMD3<Double> {
            SIMD3(u.y * v.z - u.z * v.y, u.z * v.x - u.x * v.z, u.x * v.y - u.y * v.x)
        }
        let e1 = b - a, e2 = c - a, p = cross(d, e2)
        let det = (e1 * p).sum()
        if abs(det) < 1e-18 { return nil }
        let s = o - a, u = (s * p).sum() / det
        if u < -1e-9 || u > 1 + 1e-9 { return nil }
        let q = cross(s, e1), v = (d * q).sum() / det
        if v < -1e-9 || u + v > 1 + 1e-9 { return nil }
        let t = (e2 * q).sum() / det
        return t > 0 ? t : nil
    }

    /// Depth back-projected with Unsup3D's camera and moved to the canonical frame lands on the
    /// mesh: it equals the nearest hit of the pixel's ray with the triangles (a slow reference).
    @Test func depthBackProjectsOntoTheMesh() throws {
        var config = smallConfig(size: 32)
        config.meshColumns = 48
        config.meshRows = 36
        for index in 0..<2 {
            let params = SymmetricScenes.parameters(index: index, config: config)
            let s = try SymmetricScenes.render(params, config: config)
            let (world, mesh) = SymmetricScenes.canonicalMesh(params.identity, config: config)
            let w = world.scalars.map(Double.init)
            let r = s.rotation.map(Double.init), t = s.translation.map(Double.init)
            // Mesh in the image's camera frame: R X + T.
            let vertices = (0..<(w.count / 3)).map { i -> SIMD3<Double> in
                let x = SIMD3(w[3 * i], w[3 * i + 1], w[3 * i + 2])
                return SIMD3((SIMD3(r[0], r[1], r[2]) * x).sum() + t[0], (SIMD3(r[3], r[4], r[5]) * x).sum() + t[1],
                             (SIMD3(r[6], r[7], r[8]) * x).sum() + t[2])
            }
            let points = try DepthMaps.backproject(Tensor(s.depth, shape: [1, 32, 32]), fieldOfView: config.fieldOfView).scalars
            let rays = DepthMaps.pixelRays(width: 32, height: 32, fieldOfView: config.fieldOfView).scalars
            var checked = 0
            for p in stride(from: 0, to: 32 * 32, by: 5) {
                let dir = SIMD3(Double(rays[3 * p]), Double(rays[3 * p + 1]), Double(rays[3 * p + 2]))
                var nearest = Double.infinity
                for f in 0..<(mesh.faces.count / 3) {
                    if let hit = intersect(.zero, dir, vertices[Int(mesh.faces[3 * f])], vertices[Int(mesh.faces[3 * f + 1])],
                                           vertices[Int(mesh.faces[3 * f + 2])]) {
                        nearest = min(nearest, hit)
                    }
                }
                if s.mask[p] == 1 {
                    checked += 1
                    // The ray's z component is 1, so the hit parameter is the depth.
                    #expect(abs(nearest - Double(s.depth[p])) < 2e-5, "pixel \(p): depth \(s.depth[p]) vs ray hit \(nearest)")
                    #expect(abs(Double(points[3 * p + 2]) - nearest) < 2e-5)
                } else if s.coverage[p] == 0 {
                    // Pixels no supersample of which is covered see no triangle at their centre.
                    #expect(nearest == .infinity, "pixel \(p) is background but its ray hits the mesh at \(nearest)")
                }
            }
            #expect(checked > 20)
        }
    }

    /// The stored normals agree with the normals of the stored depth map (Unsup3D's depth normals)
    /// away from silhouettes, and the view normals are the canonical ones rotated.
    @Test func normalsAgreeWithTheDepth() throws {
        let config = smallConfig(size: 64)
        let s = try SymmetricScenes.render(index: 3, config: config)
        let fromDepth = try DepthMaps.normals(Tensor(s.depth, shape: [1, 64, 64]), fieldOfView: config.fieldOfView).scalars
        var angles: [Float] = []
        for j in 2..<62 {
            for i in 2..<62 {
                let p = j * 64 + i
                let interior = (-2...2).allSatisfy { dj in (-2...2).allSatisfy { di in s.mask[p + dj * 64 + di] == 1 } }
                guard interior else { continue }
                let dot = (0..<3).map { s.normal[3 * p + $0] * fromDepth[3 * p + $0] }.reduce(0, +)
                angles.append(acos(min(max(dot, -1), 1)) * 180 / .pi)
            }
        }
        angles.sort()
        try #require(angles.count > 500)
        let median = angles[angles.count / 2]
        #expect(median < 8, "median angle between stored and depth-derived normals: \(median)°")
        // The view normals are the canonical normals rotated by R, so they face the camera
        // (DepthMaps orientation: positive along the pixel ray) on nearly every visible pixel.
        let rays = DepthMaps.pixelRays(width: 64, height: 64, fieldOfView: config.fieldOfView).scalars
        var visible = 0, facing = 0
        for p in 0..<(64 * 64) where s.mask[p] == 1 {
            visible += 1
            if (0..<3).map({ s.normal[3 * p + $0] * rays[3 * p + $0] }).reduce(0, +) > 0 { facing += 1 }
        }
        #expect(Float(facing) > 0.97 * Float(visible))
    }

    /// With the identity viewpoint, the image is Unsup3D's shading Λ (the project's
    /// `Shading.lambertian`) of the stored albedo, normals and light, up to the box filter.
    @Test func imageFollowsUnsup3DShading() throws {
        var config = smallConfig(size: 48)
        (config.maxYaw, config.maxPitch, config.maxRoll, config.maxShift, config.maxDepthShift) = (0, 0, 0, 0, 0)
        for index in 0..<3 {
            let s = try SymmetricScenes.render(index: index, config: config)
            #expect(s.depth == s.canonicalDepth && s.mask == s.canonicalMask)
            let n = 48
            let albedo = Tensor(s.albedo, shape: [1, n, n, 3]).permuted(0, 3, 1, 2)
            let (shaded, _) = try Shading.lambertian(albedo: albedo, normals: Tensor(s.normal, shape: [1, n, n, 3]),
                                                     light: Tensor(s.parameters.light, shape: [1, 4]))
            let expected = shaded.permuted(0, 2, 3, 1).scalars
            var errors: [Float] = []
            for p in 0..<(n * n) where s.coverage[p] == 1 {
                for k in 0..<3 { errors.append(abs(min(expected[3 * p + k], 1) - s.image[3 * p + k])) }
            }
            errors.sort()
            try #require(errors.count > 1500)
            #expect(errors[errors.count / 2] < 0.01, "image \(index): median |image - shading(albedo)| = \(errors[errors.count / 2])")
            #expect(errors[errors.count * 9 / 10] < 0.04)
        }
    }

    /// The project's Unsup3D reprojection (`DepthWarp`) of the canonical depth with the stored
    /// R and T gives the stored depth of the image (where the canonical depth map sees the surface).
    @Test func canonicalDepthWarpsToTheViewDepth() throws {
        var config = smallConfig(size: 48)
        config.maxYaw = 25
        for index in 0..<3 {
            let s = try SymmetricScenes.render(index: index, config: config)
            let n = 48
            let warped = try DepthWarp.warp(depth: Tensor(s.canonicalDepth.map { $0 > 0 ? $0 : config.distance + 0.2 }, shape: [1, n, n]),
                                            rotation: Tensor(s.rotation, shape: [1, 3, 3]),
                                            translation: Tensor(s.translation, shape: [1, 3]), fieldOfView: config.fieldOfView)
            let d = warped.depth.scalars
            var diffs: [Float] = []
            for p in 0..<(n * n) where s.mask[p] == 1 && d[p] > 0 && d[p] < s.depth[p] + 0.01 { diffs.append(abs(d[p] - s.depth[p])) }
            diffs.sort()
            try #require(diffs.count > n * n / 4)
            #expect(diffs[diffs.count / 2] < 5e-4, "image \(index): median |warped canonical depth - depth| = \(diffs[diffs.count / 2])")
        }
    }

    @Test func viewpointAndLightFollowTheConfiguredRanges() {
        let config = smallConfig(count: 200)
        var maxYaw: Float = 0
        for index in 0..<200 {
            let p = SymmetricScenes.parameters(index: index, config: config)
            #expect(abs(p.view[0]) <= 20 && abs(p.view[1]) <= 60 && abs(p.view[2]) <= 10)
            #expect(abs(p.view[3]) <= 0.01 && abs(p.view[5]) <= 0.03)
            #expect(p.light[0] >= 0.2 && p.light[0] <= 0.55 && p.light[1] >= 0.45 && p.light[1] <= 0.8)
            maxYaw = max(maxYaw, abs(p.view[1]))
            let (r, _) = p.rotationTranslation(distance: 1)
            // R is a rotation: R Rᵀ = I.
            for a in 0..<3 {
                for b in 0..<3 {
                    let dot = (0..<3).map { r[a * 3 + $0] * r[b * 3 + $0] }.reduce(0, +)
                    #expect(abs(dot - (a == b ? 1 : 0)) < 1e-5)
                }
            }
        }
        #expect(maxYaw > 50)
    }

    @Test func badInputIsRefusedWithClearErrors() throws {
        #expect(throws: SynthError("unknown scene family 'cars'; known families: \(SynthFamily.allCases.map(\.rawValue).joined(separator: ", "))")) { try SynthFamily.named("cars") }
        #expect(try SynthFamily.named("symmetric") == .symmetric)
        for (count, size) in [(0, 64), (-3, 64), (10, 0), (10, -1)] {
            var c = SymmetricSceneConfig()
            c.count = count
            c.size = size
            #expect(throws: SynthError.self) { try c.validate() }
            let folder = temporaryFolder("bad")
            #expect(throws: SynthError.self) { try SymmetricScenes.generate(config: c, to: folder) }
            #expect(!FileManager.default.fileExists(atPath: folder.path))
        }
        do {
            var c = SymmetricSceneConfig()
            c.count = 0
            try c.validate()
            Issue.record("count 0 accepted")
        } catch let error as SynthError {
            #expect(error.description == "count must be positive, got 0")
        }
        // A non-empty output folder is refused (and left alone) unless overwriting.
        let folder = temporaryFolder("existing")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: folder.appendingPathComponent("notes.txt"))
        let config = smallConfig(size: 16, count: 2)
        #expect(throws: SynthError.self) { try SymmetricScenes.generate(config: config, to: folder) }
        #expect(try Data(contentsOf: folder.appendingPathComponent("notes.txt")) == Data("keep".utf8))
        try SymmetricScenes.generate(config: config, to: folder, overwrite: true)
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("notes.txt").path))
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("scene.json").path))
        // An output that is a file.
        let file = folder.appendingPathComponent("scene.json")
        #expect(throws: SynthError.self) { try SymmetricScenes.generate(config: config, to: file, overwrite: true) }
        // An empty existing folder is fine.
        let empty = temporaryFolder("empty")
        defer { try? FileManager.default.removeItem(at: empty) }
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        try SymmetricScenes.generate(config: config, to: empty)
        #expect(FileManager.default.fileExists(atPath: empty.appendingPathComponent("train/000000.png").path))
    }
}
