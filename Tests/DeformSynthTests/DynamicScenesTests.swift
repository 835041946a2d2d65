import Testing
import Foundation
@testable import DeformSynth
import DeformIO
import DeformRender
import DeformTensor

/// Small, fast configurations of the `dynamic` family.
func dynamicConfig(count: Int = 1, frames: Int = 4, size: Int = 48, seed: UInt64 = 3, novel: Int = 2) -> DynamicSceneConfig {
    var c = DynamicSceneConfig()
    c.count = count
    c.frames = frames
    c.size = size
    c.seed = seed
    c.novelCameras = novel
    c.objects = [3, 3]
    return c
}

/// The largest absolute component.
private func maxAbs(_ v: SIMD3<Float>) -> Float { max(abs(v.x), abs(v.y), abs(v.z)) }
private func maxAbs(_ v: SIMD2<Float>) -> Float { max(abs(v.x), abs(v.y)) }

/// Pixel (i, j) back-projected with depth z by the frame's camera, in double precision.
private func backProject(_ p: DynamicSceneParameters, config: DynamicSceneConfig, view: DynamicView, t: Int, i: Int, j: Int, z: Float) -> SIMD3<Double> {
    let (f, cx, cy) = DynamicScenes.intrinsics(p, config: config)
    let (r, c) = DynamicScenes.pose(p, view: view, t: Float(t))
    let x = (Double(i) - Double(cx)) / Double(f) * Double(z), y = (Double(j) - Double(cy)) / Double(f) * Double(z), zz = Double(z)
    return (0..<3).reduce(into: SIMD3<Double>.zero) { out, k in
        let row = r.rows[k]
        out[k] = Double(row.x) * x + Double(row.y) * y + Double(row.z) * zz + Double(c[k])
    }
}

/// A world point seen by `view` at frame `t`: pixel position (centres on integers) and depth.
private func project(_ p: DynamicSceneParameters, config: DynamicSceneConfig, view: DynamicView, t: Int, _ w: SIMD3<Double>) -> (u: Double, v: Double, z: Double) {
    let (f, cx, cy) = DynamicScenes.intrinsics(p, config: config)
    let (r, c) = DynamicScenes.pose(p, view: view, t: Float(t))
    let d = w - SIMD3(Double(c.x), Double(c.y), Double(c.z))
    var q = SIMD3<Double>.zero
    for k in 0..<3 { q += SIMD3(Double(r.rows[k].x), Double(r.rows[k].y), Double(r.rows[k].z)) * d[k] }   // Rᵀ d
    return (Double(f) * q.x / q.z + Double(cx), Double(f) * q.y / q.z + Double(cy), q.z)
}

/// Pixels whose 3×3 neighbourhood is inside the image and all on the centre's surface.
private func uniformInterior(_ s: DynamicFrame) -> [(i: Int, j: Int)] {
    let n = s.size
    return interior(size: n) { _ in true }.filter { px in
        let seg = s.segmentation[px.j * n + px.i]
        return seg != 255 && (-1...1).allSatisfy { dj in (-1...1).allSatisfy { di in s.segmentation[(px.j + dj) * n + px.i + di] == seg } }
    }
}

/// Distance from `x` to the triangle (a, b, c) (closest point by region tests).
private func distanceToTriangle(_ x: SIMD3<Double>, _ a: SIMD3<Double>, _ b: SIMD3<Double>, _ c: SIMD3<Double>) -> Double {
    func dot(_ u: SIMD3<Double>, _ v: SIMD3<Double>) -> Double { (u * v).sum() }
    func length(_ u: SIMD3<Double>) -> Double { dot(u, u).squareRoot() }
    func segment(_ p: SIMD3<Double>, _ q: SIMD3<Double>) -> Double {
        let d = q - p, t = max(0, min(1, dot(x - p, d) / max(dot(d, d), 1e-30)))
        return length(x - (p + d * t))
    }
    let e1 = b - a, e2 = c - a
    let n = SIMD3(e1.y * e2.z - e1.z * e2.y, e1.z * e2.x - e1.x * e2.z, e1.x * e2.y - e1.y * e2.x)
    let nn = dot(n, n)
    if nn > 1e-30 {
        // Barycentrics of the projection onto the plane.
        let w = x - a
        let d00 = dot(e1, e1), d01 = dot(e1, e2), d11 = dot(e2, e2), d20 = dot(w, e1), d21 = dot(w, e2)
        let den = d00 * d11 - d01 * d01
        let v = (d11 * d20 - d01 * d21) / den, u = (d00 * d21 - d01 * d20) / den
        if v >= 0 && u >= 0 && u + v <= 1 { return abs(dot(w, n)) / nn.squareRoot() }
    }
    return min(segment(a, b), segment(b, c), segment(c, a))
}

@Suite struct DynamicScenesTests {
    @Test func sameSeedGivesIdenticalFilesAndOtherSeedsDiffer() throws {
        let a = temporaryFolder("dynamic-a"), b = temporaryFolder("dynamic-b"), c = temporaryFolder("dynamic-c")
        defer { for u in [a, b, c] { try? FileManager.default.removeItem(at: u) } }
        let config = dynamicConfig(count: 2, frames: 2, size: 24)
        try DynamicScenes.generate(config: config, to: a)
        try DynamicScenes.generate(config: config, to: b)
        let fa = try folderContents(a), fb = try folderContents(b)
        // Per scene: 2 x (image, gt) + 2 cameras x 2 frames x (image, gt) + transforms.json; plus 3 files.
        #expect(fa.count == 2 * 13 + 3)
        #expect(Set(fa.keys) == Set(fb.keys))
        for (name, bytes) in fa { #expect(fb[name] == bytes, "\(name) differs between two runs with the same seed") }
        for name in ["000000/images/000000.png", "000001/gt/000001.npz", "000001/novel/cam1_000001.png",
                     "000000/novel_gt/cam0_000000.npz", "000000/transforms.json", "scene.json", "README.md", "preview.png"] {
            #expect(fa[name] != nil, "missing \(name)")
        }
        var other = config
        other.seed = 4
        try DynamicScenes.generate(config: other, to: c)
        let fc = try folderContents(c)
        #expect(fc["000000/gt/000000.npz"] != fa["000000/gt/000000.npz"])
        #expect(fc["000000/images/000000.png"] != fa["000000/images/000000.png"])
        // Scene i does not depend on the number of scenes.
        var more = config
        more.count = 5
        #expect(DynamicScenes.parameters(index: 1, config: more) == DynamicScenes.parameters(index: 1, config: config))
        // The written arrays are the rendered ones.
        let p = DynamicScenes.parameters(index: 1, config: config)
        let arrays = try readNPZ(a.appendingPathComponent("000001/gt/000000.npz"))
        let frame = try DynamicScenes.render(p, frame: 0, view: .training, config: config)
        #expect(arrays["depth"]!.tensor().scalars == frame.depth)
        #expect(arrays["flow_forward"]!.tensor().scalars == frame.flowForward)
        #expect(arrays["novel_depth"] == nil)
    }

    /// The deformations keep what should stay put: the bar's base, the flag's hoist, the ball on
    /// or above the ground with its volume kept while squashed.
    @Test func objectsDeformAsDocumented() throws {
        let config = dynamicConfig(count: 6)
        var kinds = Set<DynamicObject.Kind>()
        for index in 0..<config.count {
            for o in DynamicScenes.parameters(index: index, config: config).objects {
                kinds.insert(o.kind)
                var moved: Float = 0
                for t in stride(from: Float(0), to: 24, by: 0.5) {
                    switch o.kind {
                    case .bending:
                        let base = SIMD3<Float>(o.radius, 0, 0)
                        #expect(maxAbs(o.deform(base, at: t) - base) < 1e-5)
                        let tip = SIMD3<Float>(0, o.height, 0)
                        moved = max(moved, maxAbs(o.deform(tip, at: t) - tip))
                        // Bending keeps the centre line's length: the tip stays within the height of the base.
                        #expect((o.deform(tip, at: t) * o.deform(tip, at: t)).sum().squareRoot() <= o.height + 1e-4)
                    case .waving:
                        let hoist = SIMD3<Float>(0, o.height - 0.1, 0), fly = SIMD3<Float>(o.radius, o.height, 0)
                        #expect(maxAbs(o.deform(hoist, at: t) - hoist) < 1e-6)
                        moved = max(moved, abs(o.deform(fly, at: t).z))
                    case .bouncing:
                        let (lift, squash) = o.bounce(at: t)
                        let bottom = o.deform(SIMD3(0, -o.radius, 0), at: t)
                        #expect(lift >= 0 && squash >= 0 && squash <= o.amplitude)
                        #expect(bottom.y >= -1e-4, "the ball sinks into the ground")
                        moved = max(moved, lift)
                    }
                }
                #expect(moved > 0.03, "\(o.kind) barely moves")
            }
        }
        #expect(kinds == Set(DynamicObject.Kind.allCases))
        // Volume-preserving squash: x, z scale by 1 / sqrt(y scale).
        let ball = DynamicScenes.parameters(index: 0, config: config).objects.first { $0.kind == .bouncing }!
        var o = ball
        o.spinRate = 0; o.wavelength = 0
        let contact = (0 - o.phase / (2 * .pi)) * o.period   // tau = 0
        let (_, squash) = o.bounce(at: contact)
        #expect(abs(squash - o.amplitude) < 1e-3)
        let side = o.deform(SIMD3(o.radius, 0, 0), at: contact), top = o.deform(SIMD3(0, o.radius, 0), at: contact)
        let sx = side.x / o.radius, sy = (top.y - side.y) / o.radius
        #expect(abs(sx * sx * sy - 1) < 1e-3)
    }

    /// Frame t + 1 sampled at p + flow(p) reproduces frame t where the flow is valid (Lambertian
    /// shading, textures attached to the surfaces), far better than not warping, also on the
    /// deforming objects.
    @Test func forwardFlowWarpsFrameOntoTheNextOne() throws {
        let config = dynamicConfig(frames: 5, size: 64)
        let n = config.size
        for index in 0..<2 {
            let p = DynamicScenes.parameters(index: index, config: config)
            let video = try DynamicScenes.renderVideo(p, config: config)
            var warped: [Float] = [], still: [Float] = [], warpedDynamic: [Float] = [], stillDynamic: [Float] = []
            for t in 0..<(config.frames - 1) {
                let s = video.training[t], next = video.training[t + 1]
                #expect(video.training[config.frames - 1].validForward.allSatisfy { $0 == 0 })
                for (i, j) in uniformInterior(s) where s.validForward[j * n + i] == 1 {
                    let q = j * n + i
                    let c = SIMD3(s.image[3 * q], s.image[3 * q + 1], s.image[3 * q + 2])
                    let w = meanAbsDifference(c, sampleImage(next.image, size: n, u: Float(i) + s.flowForward[2 * q], v: Float(j) + s.flowForward[2 * q + 1]))
                    let z = meanAbsDifference(c, SIMD3(next.image[3 * q], next.image[3 * q + 1], next.image[3 * q + 2]))
                    warped.append(w); still.append(z)
                    if s.mask[q] == 1 { warpedDynamic.append(w); stillDynamic.append(z) }
                }
            }
            let mean = { (v: [Float]) in v.reduce(0, +) / Float(max(v.count, 1)) }
            #expect(warped.count > n * n, "too few valid pixels: \(warped.count)")
            #expect(warpedDynamic.count > 30, "too few valid dynamic pixels: \(warpedDynamic.count)")
            #expect(mean(warped) < 0.02, "scene \(index): warp error \(mean(warped))")
            #expect(mean(warped) < 0.4 * mean(still), "scene \(index): warp \(mean(warped)) vs no warp \(mean(still))")
            #expect(mean(warpedDynamic) < 0.035, "scene \(index): dynamic warp error \(mean(warpedDynamic))")
            // Deforming surfaces turn, so their Lambertian shading changes a little between frames.
            #expect(mean(warpedDynamic) < 0.7 * mean(stillDynamic), "scene \(index): dynamic \(mean(warpedDynamic)) vs \(mean(stillDynamic))")
        }
    }

    /// Following the forward flow and then the backward flow of frame t + 1 (bilinear, where it is
    /// valid on the same surface) returns to the start.
    @Test func backwardFlowInvertsForwardFlow() throws {
        let config = dynamicConfig(frames: 4)
        let n = config.size
        let p = DynamicScenes.parameters(index: 0, config: config)
        let video = try DynamicScenes.renderVideo(p, config: config)
        #expect(video.training[0].validBackward.allSatisfy { $0 == 0 })
        var errors: [Float] = [], dynamicErrors: [Float] = []
        for t in 0..<(config.frames - 1) {
            let s = video.training[t], next = video.training[t + 1]
            for q in 0..<(n * n) where s.validForward[q] == 1 {
                let u = Float(q % n) + s.flowForward[2 * q], v = Float(q / n) + s.flowForward[2 * q + 1]
                let i0 = min(Int(u), n - 2), j0 = min(Int(v), n - 2), wu = u - Float(i0), wv = v - Float(j0)
                var b = SIMD2<Float>.zero, ok = true
                for (di, dj, w) in [(0, 0, (1 - wu) * (1 - wv)), (1, 0, wu * (1 - wv)), (0, 1, (1 - wu) * wv), (1, 1, wu * wv)] {
                    let o = (j0 + dj) * n + i0 + di
                    if next.validBackward[o] == 0 || next.segmentation[o] != s.segmentation[q] { ok = false; break }
                    b += w * SIMD2(next.flowBackward[2 * o], next.flowBackward[2 * o + 1])
                }
                guard ok else { continue }
                let e = ((b + SIMD2(s.flowForward[2 * q], s.flowForward[2 * q + 1])) * (b + SIMD2(s.flowForward[2 * q], s.flowForward[2 * q + 1]))).sum().squareRoot()
                errors.append(e)
                if s.mask[q] == 1 { dynamicErrors.append(e) }
            }
        }
        #expect(errors.count > n * n)
        #expect(dynamicErrors.count > 20)
        #expect(percentile(errors, 0.5) < 0.01, "median cycle error \(percentile(errors, 0.5)) px")
        #expect(percentile(errors, 0.95) < 0.08, "95th percentile cycle error \(percentile(errors, 0.95)) px")
        #expect(percentile(dynamicErrors, 0.9) < 0.15, "dynamic 90th percentile cycle error \(percentile(dynamicErrors, 0.9)) px")
    }

    /// The mask is exactly the deforming objects: every other pixel's flow is the camera-induced
    /// reprojection of its depth (recomputed here from K and the two poses), while the masked
    /// pixels move on their own.
    @Test func dynamicMaskCoversExactlyTheMovingObjects() throws {
        let config = dynamicConfig(frames: 3)
        let n = config.size
        for index in 0..<2 {
            let p = DynamicScenes.parameters(index: index, config: config)
            let video = try DynamicScenes.renderVideo(p, config: config)
            var staticChecked = 0, dynamicCount = 0, dynamicMoving = 0
            var seen = Set<UInt8>()
            for t in 0..<config.frames {
                let s = video.training[t]
                for j in 0..<n {
                    for i in 0..<n {
                        let q = j * n + i
                        #expect(s.mask[q] == (s.segmentation[q] >= 3 && s.segmentation[q] != 255 ? 1 : 0))
                        #expect(s.depth[q] > 0, "the room closes the view")
                        seen.insert(s.segmentation[q])
                        let w = backProject(p, config: config, view: .training, t: t, i: i, j: j, z: s.depth[q])
                        let fwd = project(p, config: config, view: .training, t: t + 1, w)
                        let bwd = project(p, config: config, view: .training, t: t - 1, w)
                        let df = SIMD2(Float(fwd.u) - Float(i) - s.flowForward[2 * q], Float(fwd.v) - Float(j) - s.flowForward[2 * q + 1])
                        let db = SIMD2(Float(bwd.u) - Float(i) - s.flowBackward[2 * q], Float(bwd.v) - Float(j) - s.flowBackward[2 * q + 1])
                        if s.mask[q] == 0 {
                            staticChecked += 1
                            #expect(maxAbs(df) < 2e-3 && maxAbs(db) < 2e-3, "static pixel (\(i), \(j)) frame \(t): \(df) \(db)")
                        } else {
                            dynamicCount += 1
                            if maxAbs(df) > 0.05 || maxAbs(db) > 0.05 { dynamicMoving += 1 }
                        }
                    }
                }
            }
            #expect(staticChecked > n * n)
            #expect(dynamicCount > 50)
            // The bar's base and the flag's hoist barely move; the rest does.
            #expect(Float(dynamicMoving) > 0.6 * Float(dynamicCount), "scene \(index): only \(dynamicMoving) of \(dynamicCount) masked pixels move")
            // Every object shows up.
            for k in 0..<p.objects.count { #expect(seen.contains(UInt8(3 + k)), "scene \(index): object \(k) never seen") }
        }
    }

    /// Depth back-projected with the camera lands on the surface the pixel shows: the ground and
    /// wall planes, and the deformed object meshes of that instant.
    @Test func depthBackProjectsOntoTheScene() throws {
        let config = dynamicConfig(frames: 3, size: 40)
        let n = config.size
        let p = DynamicScenes.parameters(index: 1, config: config)
        for (t, view) in [(0, DynamicView.training), (2, .training), (1, .novel(1))] {
            let s = try DynamicScenes.render(p, frame: t, view: view, config: config)
            let mesh = DynamicScenes.mesh(p, t: Float(t))
            func vertex(_ k: Int32) -> SIMD3<Double> {
                SIMD3(Double(mesh.vertices[3 * Int(k)]), Double(mesh.vertices[3 * Int(k) + 1]), Double(mesh.vertices[3 * Int(k) + 2]))
            }
            var objectPixels = 0
            for q in 0..<(n * n) {
                let i = q % n, j = q / n
                let w = backProject(p, config: config, view: view, t: t, i: i, j: j, z: s.depth[q])
                switch s.segmentation[q] {
                case 0: #expect(abs(w.y - Double(p.cameraHeight)) < 1e-3 * Double(s.depth[q]))
                case 1: #expect(abs(w.z - Double(p.wallDistance)) < 1e-3 * Double(s.depth[q]))
                case 255: Issue.record("no surface at (\(i), \(j))")
                default:
                    guard q % 3 == 0 else { continue }
                    objectPixels += 1
                    let surface = Int32(s.segmentation[q])
                    var best = Double.infinity
                    for f in 0..<mesh.surface.count where mesh.surface[f] == surface {
                        best = min(best, distanceToTriangle(w, vertex(mesh.faces[3 * f]), vertex(mesh.faces[3 * f + 1]), vertex(mesh.faces[3 * f + 2])))
                    }
                    #expect(best < 1e-3 * Double(s.depth[q]), "object pixel (\(i), \(j)) is \(best) off its surface")
                }
            }
            #expect(objectPixels > 10)
        }
    }

    /// A static point seen by the moving camera reprojects into a held-out camera at the same
    /// instant onto the same surface at the same depth and colour; the cameras really differ.
    @Test func novelViewsAgreeWithTrainingViews() throws {
        let config = dynamicConfig(frames: 3)
        let n = config.size
        let p = DynamicScenes.parameters(index: 0, config: config)
        let video = try DynamicScenes.renderVideo(p, config: config)
        #expect(video.novel.count == 2 && video.novel.allSatisfy { $0.count == config.frames })
        for k in 0..<2 {
            for t in 0..<config.frames {
                let s = video.training[t], v = video.novel[k][t]
                #expect(v.view == .novel(k) && v.frame == t && v.flowForward.isEmpty)
                let shift = maxAbs(DynamicScenes.pose(p, view: .novel(k), t: Float(t)).center - p.center(at: Float(t)))
                #expect(shift > 0.03, "held-out camera \(k) sits on the path")
                var inside = 0, consistent = 0
                var colour: [Float] = [], unwarped: [Float] = []
                for (i, j) in uniformInterior(s) where s.mask[j * n + i] == 0 {
                    let q = j * n + i
                    let w = backProject(p, config: config, view: .training, t: t, i: i, j: j, z: s.depth[q])
                    let o = project(p, config: config, view: .novel(k), t: t, w)
                    guard o.u >= 1 && o.v >= 1 && o.u <= Double(n - 2) && o.v <= Double(n - 2) else { continue }
                    inside += 1
                    let r = Int(o.v.rounded()) * n + Int(o.u.rounded())
                    guard v.segmentation[r] == s.segmentation[q], abs(Double(v.depth[r]) - o.z) < 0.03 * o.z else { continue }
                    consistent += 1
                    let c = SIMD3(s.image[3 * q], s.image[3 * q + 1], s.image[3 * q + 2])
                    colour.append(meanAbsDifference(c, sampleImage(v.image, size: n, u: Float(o.u), v: Float(o.v))))
                    unwarped.append(meanAbsDifference(c, SIMD3(v.image[3 * q], v.image[3 * q + 1], v.image[3 * q + 2])))
                }
                let mean = { (x: [Float]) in x.reduce(0, +) / Float(max(x.count, 1)) }
                #expect(inside > n * n / 3)
                #expect(Float(consistent) > 0.85 * Float(inside), "camera \(k) frame \(t): \(consistent) of \(inside) consistent")
                #expect(mean(colour) < 0.03, "camera \(k) frame \(t): colour error \(mean(colour))")
                #expect(mean(colour) < 0.75 * mean(unwarped), "camera \(k) frame \(t): \(mean(colour)) vs \(mean(unwarped)) unwarped")
            }
        }
    }

    /// transforms.json: every image once, split and time as documented, poses the cameras'.
    @Test func transformsMarkHeldOutViews() throws {
        var config = dynamicConfig(frames: 5, size: 32, novel: 3)
        config.novelEvery = 2
        let p = DynamicScenes.parameters(index: 0, config: config)
        let json = try JSONSerialization.jsonObject(with: Data(DynamicScenes.transformsJSON(p, config: config).utf8)) as! [String: Any]
        let frames = json["frames"] as! [[String: Any]]
        let train = frames.filter { $0["split"] as? String == "train" }, novel = frames.filter { $0["split"] as? String == "novel_view" }
        #expect(train.count == 5 && novel.count == 3 * 3)
        #expect(Set(frames.map { $0["file_path"] as! String }).count == frames.count)
        #expect(novel.allSatisfy { ($0["file_path"] as! String).hasPrefix("novel/cam") && ($0["camera"] as! Int) >= 0 })
        #expect(train.allSatisfy { ($0["camera"] as! Int) == -1 })
        for f in frames {
            let frame = f["frame"] as! Int
            #expect(abs((f["time"] as! Double) - Double(frame) / 4) < 1e-6)
            let m = f["transform_matrix"] as! [[Double]]
            let camera = (f["camera"] as! Int) < 0 ? DynamicView.training : .novel(f["camera"] as! Int)
            let (r, c) = DynamicScenes.pose(p, view: camera, t: Float(frame))
            for k in 0..<3 {
                #expect(abs(m[k][3] - Double(c[k])) < 1e-5)
                // OpenGL axes: x kept, y and z negated.
                #expect(abs(m[k][0] - Double(r.rows[k].x)) < 1e-5 && abs(m[k][1] + Double(r.rows[k].y)) < 1e-5 && abs(m[k][2] + Double(r.rows[k].z)) < 1e-5)
            }
        }
        #expect(abs((json["cx"] as! Double) - 16) < 1e-6 && abs((json["fl_x"] as! Double) - Double(p.focal)) < 1e-3)
    }

    @Test func badInputIsRefused() throws {
        #expect(try SynthFamily.named("dynamic") == .dynamic)
        #expect(throws: SynthError.self) { try SynthFamily.named("dynamics") }
        for change in [{ (c: inout DynamicSceneConfig) in c.count = 0 }, { $0.frames = 0 }, { $0.size = 0 }, { $0.size = -3 },
                       { $0.supersampling = 2 }, { $0.novelCameras = 99 }, { $0.novelEvery = 0 }, { $0.objects = [0, 2] },
                       { $0.fieldOfView = [70, 50] }] {
            var c = dynamicConfig()
            change(&c)
            #expect(throws: SynthError.self) { try c.validate() }
            #expect(throws: SynthError.self) { try DynamicScenes.render(DynamicScenes.parameters(index: 0, config: dynamicConfig()), frame: 0, view: .training, config: c) }
        }
        let p = DynamicScenes.parameters(index: 0, config: dynamicConfig())
        #expect(throws: SynthError.self) { try DynamicScenes.render(p, frame: 4, view: .training, config: dynamicConfig()) }
        #expect(throws: SynthError.self) { try DynamicScenes.render(p, frame: 0, view: .novel(2), config: dynamicConfig()) }
        // A non-empty output folder is refused (and left alone) unless overwrite is given.
        let folder = temporaryFolder("dynamic-bad")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let keep = folder.appendingPathComponent("keep.txt")
        try Data("x".utf8).write(to: keep)
        let small = dynamicConfig(frames: 1, size: 16, novel: 1)
        #expect(throws: SynthError.self) { try DynamicScenes.generate(config: small, to: folder) }
        #expect(FileManager.default.fileExists(atPath: keep.path))
        try DynamicScenes.generate(config: small, to: folder, overwrite: true)
        #expect(!FileManager.default.fileExists(atPath: keep.path))
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("000000/images/000000.png").path))
        let siblings = try FileManager.default.contentsOfDirectory(atPath: folder.deletingLastPathComponent().path)
        #expect(!siblings.contains { $0.hasPrefix(".\(folder.lastPathComponent).partial") })
    }
}
