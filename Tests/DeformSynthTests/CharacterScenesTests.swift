import Testing
import Foundation
@testable import DeformSynth
import DeformGeometry
import DeformIO
import DeformRender
import DeformTensor

/// Small, fast configurations of the `character` family.
func characterConfig(size: Int = 32, frames: Int = 3, seed: UInt64 = 3, motion: CharacterMotionKind? = nil,
                     kind: CharacterKind = .humanoid) -> CharacterSceneConfig {
    var c = CharacterSceneConfig()
    c.kind = kind
    c.size = size
    c.frames = frames
    c.seed = seed
    c.motion = motion
    c.novelViews = 1
    c.novelViewStride = 2
    c.novelPoseFrames = 2
    return c
}

/// Closest distance from `p` to the triangle (a, b, c) (Ericson, Real-Time Collision Detection 5.1.5).
func pointTriangleDistance(_ p: SIMD3<Double>, _ a: SIMD3<Double>, _ b: SIMD3<Double>, _ c: SIMD3<Double>) -> Double {
    func d(_ x: SIMD3<Double>, _ y: SIMD3<Double>) -> Double { (x * y).sum() }
    let ab = b - a, ac = c - a, ap = p - a
    let d1 = d(ab, ap), d2 = d(ac, ap)
    var q: SIMD3<Double>
    if d1 <= 0 && d2 <= 0 { q = a } else {
        let bp = p - b, d3 = d(ab, bp), d4 = d(ac, bp)
        if d3 >= 0 && d4 <= d3 { q = b } else {
            let vc = d1 * d4 - d3 * d2
            if vc <= 0 && d1 >= 0 && d3 <= 0 { q = a + ab * (d1 / (d1 - d3)) } else {
                let cp = p - c, d5 = d(ab, cp), d6 = d(ac, cp)
                if d6 >= 0 && d5 <= d6 { q = c } else {
                    let vb = d5 * d2 - d1 * d6
                    if vb <= 0 && d2 >= 0 && d6 <= 0 { q = a + ac * (d2 / (d2 - d6)) } else {
                        let va = d3 * d6 - d5 * d4
                        if va <= 0 && (d4 - d3) >= 0 && (d5 - d6) >= 0 {
                            q = b + (c - b) * ((d4 - d3) / ((d4 - d3) + (d5 - d6)))
                        } else {
                            let den = 1 / (va + vb + vc)
                            q = a + ab * (vb * den) + ac * (vc * den)
                        }
                    }
                }
            }
        }
    }
    let e = p - q
    return d(e, e).squareRoot()
}

/// Mean absolute difference of two colours.
func l1(_ a: SIMD3<Float>, _ b: SIMD3<Float>) -> Double {
    Double(Swift.abs(a.x - b.x) + Swift.abs(a.y - b.y) + Swift.abs(a.z - b.z)) / 3
}

@Suite struct CharacterScenesTests {
    @Test func sameSeedGivesIdenticalFilesAndOtherSeedsDiffer() throws {
        let a = temporaryFolder("ca"), b = temporaryFolder("cb"), c = temporaryFolder("cc")
        defer { for u in [a, b, c] { try? FileManager.default.removeItem(at: u) } }
        let config = characterConfig(size: 24, frames: 3)
        try CharacterScenes.generate(config: config, to: a)
        try CharacterScenes.generate(config: config, to: b)
        let fa = try folderContents(a), fb = try folderContents(b)
        // 3 train + 2 novel views (frames 0, 2) + 2 novel poses, 3 files each; 5 per-video files; 3 dataset files.
        #expect(fa.count == 7 * 3 + 5 + 3)
        #expect(Set(fa.keys) == Set(fb.keys))
        for (name, bytes) in fa { #expect(fb[name] == bytes, "\(name) differs between two runs with the same seed") }
        for name in ["scene.json", "README.md", "preview.png", "video_000/skeleton.json", "video_000/rest_mesh.ply", "video_000/rest_mesh.npz",
                     "video_000/sequence.npz", "video_000/transforms.json", "video_000/train/000002.png", "video_000/train/000002_mask.png",
                     "video_000/train/000000.npz", "video_000/novel_view/cam1_000002.png", "video_000/novel_pose/000001.npz"] {
            #expect(fa[name] != nil, "missing \(name)")
        }
        var other = config
        other.seed = 4
        try CharacterScenes.generate(config: other, to: c)
        #expect(try folderContents(c)["video_000/train/000000.png"] != fa["video_000/train/000000.png"])
        // The frame's arrays hold what the renderer returned.
        let assets = try CharacterScenes.assets(index: 0, config: config)
        let frame = try CharacterScenes.render(assets, split: "train", frame: 1, config: config)
        let npz = try readNPZ(a.appendingPathComponent("video_000/train/000001.npz"))
        #expect(Set(npz.keys) == Set(CharacterScenes.arrayDescriptions.map(\.name)))
        #expect(npz["depth"]!.tensor().scalars == frame.depth)
        #expect(npz["joints_2d"]!.shape == [21, 2] && npz["local_rotations"]!.shape == [21, 3, 3])
        let png = try readImage(a.appendingPathComponent("video_000/train/000001.png"))
        #expect(png.pixels.shape == [24, 24, 3])
        // The PLY header announces what the body holds.
        let ply = fa["video_000/rest_mesh.ply"]!
        let headerEnd = ply.range(of: Data("end_header\n".utf8))!.upperBound
        let header = String(decoding: ply[..<headerEnd], as: UTF8.self)
        let v = assets.mesh.vertices.count, f = assets.mesh.faces.count / 3
        #expect(header.contains("element vertex \(v)\n") && header.contains("element face \(f)\n") && header.contains("property float weight_left_elbow"))
        #expect(ply.count - headerEnd == v * (6 * 4 + 1 + 21 * 4) + f * 13)
    }

    @Test(arguments: CharacterKind.allCases)
    func projectedJointsAreThe2DJointsAndDepthBackProjectsOntoTheMesh(kind: CharacterKind) throws {
        let config = characterConfig(size: 40, motion: .wave, kind: kind)
        let jc = kind == .humanoid ? 21 : 24
        let assets = try CharacterScenes.assets(index: 0, config: config)
        for (split, cam) in [("train", 0), ("novel_view", 1), ("novel_pose", 0)] {
            let frame = try CharacterScenes.render(assets, split: split, frame: 1, cameraIndex: cam, config: config)
            let c = frame.camera
            #expect(frame.joints2D.count == 2 * jc)
            let (pixels, depth) = c.project(Tensor(frame.joints3DWorld, shape: [jc, 3]))
            #expect(zip(pixels.scalars, frame.joints2D).allSatisfy { abs($0 - $1) < 1e-3 })
            #expect(zip(depth.scalars, (0..<jc).map { frame.joints3DCamera[3 * $0 + 2] }).allSatisfy { abs($0 - $1) < 1e-4 })
            // Depth back-projected through the camera lands on the posed mesh.
            let covered = (0..<(40 * 40)).filter { frame.mask[$0] != 0 }
            #expect(covered.count > 40, "\(kind) \(split): the character covers only \(covered.count) pixels")
            #expect(covered.allSatisfy { frame.depth[$0] > 0 } && (0..<(40 * 40)).allSatisfy { frame.mask[$0] != 0 || frame.depth[$0] == 0 })
            let rays = c.rays(through: c.pixelCenters(covered))
            let o = rays.origins.scalars, d = rays.directions.scalars
            let m = c.cameraToWorld
            let forward = SIMD3(Double(m[2]), Double(m[6]), Double(m[10]))
            let v = frame.vertices.map(Double.init), faces = assets.mesh.faces
            var worst = 0.0
            for (k, pix) in covered.enumerated() where k % 3 == 0 {
                let dir = SIMD3(Double(d[3 * k]), Double(d[3 * k + 1]), Double(d[3 * k + 2]))
                // Depth is the z of the camera point: scale the ray so its forward component is the depth.
                let t = Double(frame.depth[pix]) / (dir * forward).sum()
                let x = SIMD3(Double(o[3 * k]), Double(o[3 * k + 1]), Double(o[3 * k + 2])) + dir * t
                var best = Double.infinity
                for fi in 0..<(faces.count / 3) {
                    let i0 = Int(faces[3 * fi]), i1 = Int(faces[3 * fi + 1]), i2 = Int(faces[3 * fi + 2])
                    let a = SIMD3(v[3 * i0], v[3 * i0 + 1], v[3 * i0 + 2]), b = SIMD3(v[3 * i1], v[3 * i1 + 1], v[3 * i1 + 2])
                    let cc = SIMD3(v[3 * i2], v[3 * i2 + 1], v[3 * i2 + 2])
                    best = min(best, pointTriangleDistance(x, a, b, cc))
                    if best < 1e-5 { break }
                }
                worst = max(worst, best)
            }
            #expect(worst < 2e-3, "\(split): a back-projected depth is \(worst) m from the mesh")
        }
    }

    @Test func flowWarpsTheNextFrameOntoThisOne() throws {
        for (motion, kind) in [(CharacterMotionKind.walk, CharacterKind.humanoid), (.jump, .humanoid), (.walk, .quadruped)] {
            var config = characterConfig(size: 96, frames: 30, motion: motion, kind: kind)
            config.staticCameraProbability = 0
            let assets = try CharacterScenes.assets(index: 0, config: config)
            let t = motion == .walk ? 10 : 18
            let f0 = try CharacterScenes.render(assets, split: "train", frame: t, config: config)
            let f1 = try CharacterScenes.render(assets, split: "train", frame: t + 1, config: config)
            let n = 96
            func sample(_ img: [Float], _ x: Float, _ y: Float) -> SIMD3<Float> {
                // Bilinear on pixel centres at i + 0.5.
                let fx = x - 0.5, fy = y - 0.5
                let i0 = max(0, min(n - 1, Int(fx.rounded(.down)))), j0 = max(0, min(n - 1, Int(fy.rounded(.down))))
                let i1 = min(n - 1, i0 + 1), j1 = min(n - 1, j0 + 1)
                let ax = max(0, min(1, fx - Float(i0))), ay = max(0, min(1, fy - Float(j0)))
                func px(_ i: Int, _ j: Int) -> SIMD3<Float> { SIMD3(img[3 * (j * n + i)], img[3 * (j * n + i) + 1], img[3 * (j * n + i) + 2]) }
                return (px(i0, j0) * (1 - ax) + px(i1, j0) * ax) * (1 - ay) + (px(i0, j1) * (1 - ax) + px(i1, j1) * ax) * ay
            }
            var warped = 0.0, still = 0.0, count = 0, moving = 0.0
            for j in 0..<n {
                for i in 0..<n where f0.flowValid[j * n + i] != 0 && f0.coverage[j * n + i] == 1 {
                    let p = j * n + i
                    let u = Float(i) + 0.5 + f0.flow[2 * p], v = Float(j) + 0.5 + f0.flow[2 * p + 1]
                    let tu = Int(u.rounded(.down)), tv = Int(v.rounded(.down))
                    // Only points that stay well inside the character in the next frame (bilinear
                    // samples must not mix in the background).
                    guard tu > 0, tu < n - 1, tv > 0, tv < n - 1, f1.coverage[tv * n + tu] == 1 else { continue }
                    let here = SIMD3(f0.image[3 * p], f0.image[3 * p + 1], f0.image[3 * p + 2])
                    warped += l1(sample(f1.image, u, v), here)
                    still += l1(sample(f1.image, Float(i) + 0.5, Float(j) + 0.5), here)
                    moving += Double((f0.flow[2 * p] * f0.flow[2 * p] + f0.flow[2 * p + 1] * f0.flow[2 * p + 1]).squareRoot())
                    count += 1
                }
            }
            #expect(count > 100, "\(kind) \(motion): only \(count) pixels with valid flow")
            let w = warped / Double(max(count, 1)), s = still / Double(max(count, 1))
            #expect(moving / Double(max(count, 1)) > 0.3, "\(motion): the character barely moves")
            #expect(w < 0.04, "\(motion): warped error \(w)")
            #expect(w < 0.6 * s, "\(motion): warping (\(w)) should beat no motion (\(s))")
        }
    }

    @Test func restPoseSkinsToTheRestMeshAndAnElbowMovesOnlyTheForearmAndHand() throws {
        let config = characterConfig()
        let assets = try CharacterScenes.assets(index: 1, config: config)
        let mesh = assets.mesh, jc = mesh.jointCount
        #expect(jc == 21 && assets.skeleton.jointCount == 21)
        for i in 0..<mesh.vertices.count {
            let row = mesh.weights[(i * jc)..<((i + 1) * jc)]
            #expect(abs(row.reduce(0, +) - 1) < 1e-5 && row.allSatisfy { $0 >= 0 })
        }
        // The rest mesh stands on the ground.
        #expect(abs(mesh.vertices.map(\.y).min()! - 0) < 0.03)
        let restPose = CharacterPose(localAxisAngle: [Float](repeating: 0, count: 63), yaw: 0, translation: .zero)
        let rest = CharacterScenes.posed(assets, restPose)
        let flat = mesh.vertices.flatMap { [$0.x, $0.y, $0.z] }
        #expect(zip(rest.vertices, flat).allSatisfy { abs($0 - $1) < 1e-5 })
        #expect(zip(rest.positions, assets.skeleton.restPositions).allSatisfy { abs($0 - $1) < 1e-6 })
        var bent = restPose
        let elbow = Humanoid.lElbow
        bent.localAxisAngle[3 * elbow] = -1.2
        let posed = CharacterScenes.posed(assets, bent)
        var movedCount = 0
        for i in 0..<mesh.vertices.count {
            let influenced = (0..<jc).contains { mesh.weights[i * jc + $0] > 0 && assets.skeleton.isDescendant($0, of: elbow) }
            let moved = (0..<3).map { abs(posed.vertices[3 * i + $0] - flat[3 * i + $0]) }.max()!
            if influenced { if moved > 1e-4 { movedCount += 1 } } else { #expect(moved < 1e-6, "vertex \(i) moved by \(moved)") }
        }
        #expect(movedCount > 100)
        // Every motion keeps the feet on the ground and yields finite poses.
        for kind in CharacterMotionKind.allCases {
            var rng = SynthRandom(seed: 1, stream: 2)
            let m = CharacterMotionParameters(kind: kind, draw: &rng)
            for t in stride(from: Float(0), to: 4, by: 0.5) {
                let pose = CharacterMotion.pose(m, time: t, skeleton: assets.skeleton)
                let finite = pose.localAxisAngle.allSatisfy { $0.isFinite }
                #expect(finite)
                let g = CharacterScenes.posed(assets, pose)
                let restY: [Float] = assets.skeleton.restPositions
                var feet: [Float] = []
                for j in [Humanoid.lAnkle, Humanoid.rAnkle, Humanoid.lToe, Humanoid.rToe] {
                    let y: Float = g.positions[3 * j + 1]
                    feet.append(y - restY[3 * j + 1])
                }
                if kind != .jump && kind != .random { #expect(abs(feet.min()!) < 1e-4, "\(kind) at \(t): feet \(feet)") }
                #expect(feet.min()! > -1e-4)
            }
        }
    }

    @Test func identitiesAndMotionsVaryWithTheSeed() throws {
        let config = characterConfig()
        let a = CharacterScenes.parameters(index: 0, config: config), b = CharacterScenes.parameters(index: 1, config: config)
        #expect(a.identity != b.identity)
        #expect(CharacterScenes.parameters(index: 0, config: config).identity == a.identity)
        var fixed = config
        fixed.motion = .squat
        #expect(CharacterScenes.parameters(index: 0, config: fixed).motion.kind == .squat)
        // The texture is not flat: the shirt, skin and trousers vary within the region.
        let frame = try CharacterScenes.render(CharacterScenes.assets(index: 0, config: characterConfig(size: 96)), split: "train", frame: 0,
                                               config: characterConfig(size: 96))
        var values: [Float] = []
        for p in 0..<(96 * 96) where frame.coverage[p] == 1 {
            let r: Float = frame.image[3 * p], g: Float = frame.image[3 * p + 1], b: Float = frame.image[3 * p + 2]
            values.append(r + g + b)
        }
        let mean: Float = values.reduce(0, +) / Float(values.count)
        let squares: [Float] = values.map { ($0 - mean) * ($0 - mean) }
        let spread: Float = (squares.reduce(0, +) / Float(values.count)).squareRoot()
        #expect(values.count > 200 && spread > 0.1, "colour spread \(spread) over \(values.count) pixels")
    }

    @Test func quadrupedRestPoseStandsOnTheGroundAndEveryMotionKeepsItThere() throws {
        let config = characterConfig(kind: .quadruped)
        let assets = try CharacterScenes.assets(index: 0, config: config)
        let mesh = assets.mesh, jc = mesh.jointCount
        #expect(jc == 24 && assets.skeleton.names.contains("hind_left_hock"))
        #expect(abs(mesh.vertices.map(\.y).min()!) < 0.01)
        for i in 0..<mesh.vertices.count {
            let row = mesh.weights[(i * jc)..<((i + 1) * jc)]
            #expect(abs(row.reduce(0, +) - 1) < 1e-5)
        }
        let rest = CharacterScenes.posed(assets, CharacterPose(localAxisAngle: [Float](repeating: 0, count: 3 * jc), yaw: 0, translation: .zero))
        #expect(zip(rest.vertices, mesh.vertices.flatMap { [$0.x, $0.y, $0.z] }).allSatisfy { abs($0 - $1) < 1e-5 })
        for kind in CharacterMotionKind.allCases {
            var rng = SynthRandom(seed: 4, stream: 1)
            let m = CharacterMotionParameters(kind: kind, draw: &rng)
            for t in stride(from: Float(0), to: 3, by: 0.25) {
                let pose = Quadruped.pose(m, time: t, skeleton: assets.skeleton)
                let g = CharacterScenes.posed(assets, pose)
                let restY: [Float] = assets.skeleton.restPositions
                var lowest = Float.infinity
                for j in Quadruped.paws { lowest = min(lowest, g.positions[3 * j + 1] - restY[3 * j + 1]) }
                if kind != .jump && kind != .random { #expect(abs(lowest) < 1e-4, "\(kind) at \(t)") }
                #expect(lowest > -1e-4)
            }
        }
        // A different seed gives a different animal; the files are written like the humanoid's.
        #expect(CharacterScenes.parameters(index: 1, config: config).identity != assets.parameters.identity)
        let out = temporaryFolder("quad")
        defer { try? FileManager.default.removeItem(at: out) }
        try CharacterScenes.generate(config: characterConfig(size: 24, frames: 2, kind: .quadruped), to: out)
        let skeleton = try String(contentsOf: out.appendingPathComponent("video_000/skeleton.json"), encoding: .utf8)
        #expect(skeleton.contains("\"kind\" : \"quadruped\"") && skeleton.contains("front_left_paw"))
    }

    @Test func transformsSequenceAndRestMeshAgreeWithTheFrames() throws {
        let out = temporaryFolder("cagree")
        defer { try? FileManager.default.removeItem(at: out) }
        var config = characterConfig(size: 24, frames: 4, motion: .random)
        config.staticCameraProbability = 0
        try CharacterScenes.generate(config: config, to: out)
        let video = out.appendingPathComponent("video_000")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: video.appendingPathComponent("transforms.json"))) as! [String: Any]
        let frames = json["frames"] as! [[String: Any]]
        #expect(frames.count == 4 + 2 + 2)
        let sequence = try readNPZ(video.appendingPathComponent("sequence.npz"))
        #expect(sequence["local_rotations"]!.shape == [4, 21, 3, 3])
        var cameraCentres: Set<[Float]> = []
        for entry in frames {
            let path = entry["file_path"] as! String
            let npz = try readNPZ(video.appendingPathComponent(String(path.dropLast(4)) + ".npz"))
            let c2w = npz["camera_to_world"]!.tensor().scalars
            let gl = (entry["transform_matrix"] as! [[Double]]).flatMap { $0.map { Float($0) } }
            // OpenGL axes: the second and third columns negated.
            for r in 0..<4 {
                for k in 0..<4 {
                    let sign: Float = (r < 3 && (k == 1 || k == 2)) ? -1 : 1
                    #expect(abs(gl[4 * r + k] - sign * c2w[4 * r + k]) < 1e-5)
                }
            }
            // world_to_camera inverts camera_to_world.
            let w2c = npz["world_to_camera"]!.tensor().scalars
            let jw = npz["joints_3d_world"]!.tensor().scalars, jc = npz["joints_3d_camera"]!.tensor().scalars
            for j in 0..<21 {
                for r in 0..<3 {
                    let x = w2c[4 * r] * jw[3 * j] + w2c[4 * r + 1] * jw[3 * j + 1] + w2c[4 * r + 2] * jw[3 * j + 2] + w2c[4 * r + 3]
                    #expect(abs(x - jc[3 * j + r]) < 1e-4)
                }
            }
            if entry["split"] as! String == "train" {
                cameraCentres.insert([c2w[3], c2w[7], c2w[11]])
                let f = entry["frame"] as! Int
                let seq = sequence["local_rotations"]!.tensor().scalars[(f * 189)..<((f + 1) * 189)]
                #expect(Array(seq) == npz["local_rotations"]!.tensor().scalars)
                let seqJoints = sequence["joints_2d"]!.tensor().scalars[(f * 42)..<((f + 1) * 42)]
                #expect(zip(Array(seqJoints), npz["joints_2d"]!.tensor().scalars).allSatisfy { abs($0 - $1) < 1e-4 })
            }
        }
        // The orbiting training camera moves.
        #expect(cameraCentres.count == 4)
        // The rest mesh arrays skin to the posed vertices of a frame.
        let rest = try readNPZ(video.appendingPathComponent("rest_mesh.npz"))
        let npz = try readNPZ(video.appendingPathComponent("train/000002.npz"))
        let tree = CharacterScenes.parameters(index: 0, config: config).identity.skeleton
        let (r, p) = try tree.forwardKinematics(localRotations: npz["local_rotations"]!.tensor(), rootRotation: npz["root_rotation"]!.tensor(),
                                                rootTranslation: npz["root_translation"]!.tensor())
        #expect(zip(p.scalars, npz["joints_3d_world"]!.tensor().scalars).allSatisfy { abs($0 - $1) < 1e-5 })
        let (g, t) = try tree.skinningTransforms(rotations: r, positions: p)
        let posed = try LinearBlendSkinning.skin(vertices: rest["vertices"]!.tensor(), weights: rest["weights"]!.tensor(), rotations: g, translations: t)
        #expect(zip(posed.scalars, npz["vertices"]!.tensor().scalars).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    @Test(arguments: CharacterKind.allCases)
    func walkingAndJumpingStayInView(kind: CharacterKind) throws {
        for motion in [CharacterMotionKind.walk, .jump] {
            for seed: UInt64 in [1, 2] {
                let config = characterConfig(size: 32, frames: 90, seed: seed, motion: motion, kind: kind)
                let assets = try CharacterScenes.assets(index: 0, config: config)
                for f in stride(from: 0, to: 90, by: 9) {
                    let frame = try CharacterScenes.render(assets, split: "train", frame: f, config: config)
                    let border = (0..<32).contains { frame.mask[$0] != 0 || frame.mask[31 * 32 + $0] != 0 || frame.mask[$0 * 32] != 0 || frame.mask[$0 * 32 + 31] != 0 }
                    #expect(!border, "\(kind) \(motion) seed \(seed) frame \(f) touches the image border")
                    #expect(frame.mask.contains(1))
                }
            }
        }
    }

    @Test func badInputIsRefused() throws {
        var c = characterConfig()
        c.size = 0
        #expect(throws: SynthError.self) { try c.validate() }
        c = characterConfig(); c.supersampling = 2
        #expect(throws: SynthError.self) { try c.validate() }
        c = characterConfig(); c.frames = 0
        #expect(throws: SynthError.self) { try c.validate() }
        c = characterConfig(); c.cameraHeight = [-1, 1]
        #expect(throws: SynthError.self) { try c.validate() }
        do { try c.validate() } catch { #expect("\(error)".contains("cameraHeight")) }
        let config = characterConfig()
        let assets = try CharacterScenes.assets(index: 0, config: config)
        #expect(throws: SynthError.self) { try CharacterScenes.render(assets, split: "validation", frame: 0, config: config) }
        #expect(throws: SynthError.self) { try CharacterScenes.render(assets, split: "novel_view", frame: 0, cameraIndex: 5, config: config) }
        #expect(throws: SynthError.self) { try CharacterScenes.render(assets, split: "train", frame: -1, config: config) }
        #expect(throws: SynthError.self) { try SynthFamily.named("robots") }
        #expect(try SynthFamily.named("character") == .character)
        // An output that is a file, or a non-empty folder, is refused and left untouched.
        let file = temporaryFolder("file")
        try Data("x".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(throws: SynthError.self) { try CharacterScenes.generate(config: config, to: file) }
        #expect(try Data(contentsOf: file) == Data("x".utf8))
        let folder = temporaryFolder("full")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data("y".utf8).write(to: folder.appendingPathComponent("keep.txt"))
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(throws: SynthError.self) { try CharacterScenes.generate(config: config, to: folder) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["keep.txt"])
    }
}
