import Testing
import Foundation
@testable import DeformRender
import DeformTensor

/// Plain-loop rasteriser in Double: every pixel against every face, edge functions, perspective
/// correction, nearest depth wins (the reference the fast kernel is checked against). The
/// perspective-correct barycentrics are those of the ray's hit on the face's plane, so a face
/// crossing the near plane is clipped by requiring them non-negative and the depth beyond it.
private func referenceRasterize(_ v: [Float], _ faces: [Int32], width: Int, height: Int)
    -> (face: [Int32], bary: [Double], depth: [Double]) {
    var face = [Int32](repeating: -1, count: width * height)
    var bary = [Double](repeating: 0, count: width * height * 3)
    var depth = [Double](repeating: .infinity, count: width * height)
    for j in 0..<height {
        for i in 0..<width {
            let px = Double(i) + 0.5, py = Double(j) + 0.5
            for f in 0..<(faces.count / 3) {
                let idx = (0..<3).map { Int(faces[3 * f + $0]) }
                let x = idx.map { Double(v[3 * $0]) }, y = idx.map { Double(v[3 * $0 + 1]) }, z = idx.map { Double(v[3 * $0 + 2]) }
                if z.allSatisfy({ $0 <= Double(MeshRasterizer.near) }) || z.contains(0) { continue }
                let area = (x[1] - x[0]) * (y[2] - y[0]) - (x[2] - x[0]) * (y[1] - y[0])
                if abs(area) < 1e-9 { continue }
                var w = [Double](repeating: 0, count: 3)
                for k in 0..<3 {
                    let a = (k + 1) % 3, b = (k + 2) % 3
                    w[k] = ((x[a] - px) * (y[b] - py) - (x[b] - px) * (y[a] - py)) / area
                }
                let q = (0..<3).map { w[$0] / z[$0] }
                let d = 1 / q.reduce(0, +)
                if q.contains(where: { $0 * d < 0 }) || !(d > Double(MeshRasterizer.near)) { continue }
                if d < depth[j * width + i] {
                    depth[j * width + i] = d
                    face[j * width + i] = Int32(f)
                    for k in 0..<3 { bary[3 * (j * width + i) + k] = q[k] * d }
                }
            }
        }
    }
    return (face, bary, depth)
}

/// Smallest distance from any pixel centre to any edge line of the faces (to keep finite
/// differences away from coverage changes).
private func minimumEdgeDistance(_ v: [Float], _ faces: [Int32], width: Int, height: Int) -> Double {
    var best = Double.infinity
    for f in 0..<(faces.count / 3) {
        for k in 0..<3 {
            let a = Int(faces[3 * f + k]), b = Int(faces[3 * f + (k + 1) % 3])
            let ax = Double(v[3 * a]), ay = Double(v[3 * a + 1]), bx = Double(v[3 * b]), by = Double(v[3 * b + 1])
            let len = hypot(bx - ax, by - ay)
            for j in 0..<height {
                for i in 0..<width {
                    let px = Double(i) + 0.5, py = Double(j) + 0.5
                    best = min(best, abs((bx - ax) * (py - ay) - (by - ay) * (px - ax)) / len)
                }
            }
        }
    }
    return best
}

/// Random small triangles; with `behind`, depths range over [-3, 5], so many faces cross the near
/// plane (their screen positions are then arbitrary but still define a plane).
private func randomMesh(faces count: Int, width: Int, height: Int, seed: UInt64, behind: Bool = false) -> (Tensor, [Int32]) {
    var rng = RandomGenerator(seed: seed)
    var v: [Float] = []
    for _ in 0..<count {
        let cx = rng.uniform([1], low: -2, high: Float(width) + 2).item, cy = rng.uniform([1], low: -2, high: Float(height) + 2).item
        let off = rng.uniform([6], low: -9, high: 9).scalars
        let z = rng.uniform([3], low: behind ? -3 : 1, high: 5).scalars
        for k in 0..<3 { v += [cx + off[2 * k], cy + off[2 * k + 1], z[k]] }
    }
    return (Tensor(v, shape: [3 * count, 3]), (0..<Int32(3 * count)).map { $0 })
}

private let camera = try! PinholeCamera(width: 32, height: 24, fx: 20, fy: 20, cx: 16, cy: 12)

@Suite struct RasterizerTests {
    @Test func fastRasteriserMatchesPlainLoops() throws {
        let (w, h) = (32, 24)
        for seed: UInt64 in [1, 2, 3, 4, 5] {
            let (v, faces) = randomMesh(faces: 20, width: w, height: h, seed: seed, behind: seed > 3)
            let fr = try MeshRasterizer.rasterize(screenVertices: v, faces: faces, width: w, height: h)
            let ref = referenceRasterize(v.scalars, faces, width: w, height: h)
            #expect(fr.faceIndex == ref.face, "seed \(seed): face ids differ at \(zip(fr.faceIndex, ref.face).filter { $0 != $1 }.count) pixels")
            let b = fr.barycentrics.scalars, d = fr.depth.scalars
            var baryErr = 0.0, depthErr = 0.0
            for pix in 0..<(w * h) where fr.faceIndex[pix] == ref.face[pix] {
                for k in 0..<3 { baryErr = max(baryErr, abs(Double(b[3 * pix + k]) - ref.bary[3 * pix + k])) }
                if ref.face[pix] >= 0 { depthErr = max(depthErr, abs(Double(d[pix]) - ref.depth[pix]) / ref.depth[pix]) } else { #expect(d[pix] == .infinity) }
            }
            #expect(baryErr < 1e-4, "seed \(seed)")
            #expect(depthErr < 1e-5, "seed \(seed)")
            if seed <= 3 {
                // The scene is not trivial: several faces are visible and some pixels are background.
                #expect(Set(fr.faceIndex).count > 8)
                #expect(fr.faceIndex.contains(-1))
            } else {
                // Faces crossing the near plane are drawn (their visible parts cover much of the image).
                let p = v.scalars
                let crossing = Set(fr.faceIndex.filter { f in f >= 0 && (0..<3).contains { p[3 * Int(faces[3 * Int(f) + $0]) + 2] < 0 } })
                #expect(crossing.count >= 2, "seed \(seed)")
            }
        }
    }

    /// A fronto-parallel rectangle at depth 2 projects to pixels [11, 21] × [7, 16]: exactly the
    /// 10 × 9 pixels with centres inside are covered, at depth 2.
    @Test func frontoParallelRectangleCoversExpectedPixels() throws {
        let world = Tensor([[-0.5, -0.5, 2], [0.5, -0.5, 2], [0.5, 0.4, 2], [-0.5, 0.4, 2]] as [[Float]])
        let faces: [Int32] = [0, 1, 2, 0, 2, 3]
        let sv = MeshRasterizer.screenVertices(world, camera: camera)
        let fr = try MeshRasterizer.rasterize(screenVertices: sv, faces: faces, width: 32, height: 24)
        let d = fr.depth.scalars
        for j in 0..<24 {
            for i in 0..<32 {
                let inside = (11...20).contains(i) && (7...15).contains(j)
                #expect((fr.faceIndex[j * 32 + i] >= 0) == inside, "pixel (\(i), \(j))")
                if inside { #expect(abs(d[j * 32 + i] - 2) < 1e-5) } else { #expect(d[j * 32 + i] == .infinity) }
            }
        }
        #expect(fr.mask.sum().item == 90)
    }

    /// A plane Z = 2 + 0.5 X seen by the camera: at a pixel whose ray is (r, s, 1), the depth is
    /// 2 / (1 - 0.5 r), and the perspective-correct interpolation of the world coordinates gives
    /// back the point (r Z, s Z, Z).
    @Test func tiltedPlaneHasAnalyticDepthAndPoints() throws {
        let corners: [[Float]] = [[-0.6, -0.5], [0.6, -0.5], [0.6, 0.5], [-0.6, 0.5]]
        let world = Tensor(corners.map { [$0[0], $0[1], 2 + 0.5 * $0[0]] })
        let faces: [Int32] = [0, 1, 2, 0, 2, 3]
        let sv = MeshRasterizer.screenVertices(world, camera: camera)
        let out = try MeshRasterizer.render(screenVertices: sv, faces: faces, attributes: world, width: 32, height: 24)
        let d = out.depth.scalars, p = out.image.scalars
        var covered = 0, depthErr: Float = 0, pointErr: Float = 0
        for j in 0..<24 {
            for i in 0..<32 where out.fragments.faceIndex[j * 32 + i] >= 0 {
                covered += 1
                let r = (Float(i) + 0.5 - 16) / 20, s = (Float(j) + 0.5 - 12) / 20
                let z = 2 / (1 - 0.5 * r)
                depthErr = max(depthErr, abs(d[j * 32 + i] - z) / z)
                let pix = 3 * (j * 32 + i)
                pointErr = max(pointErr, abs(p[pix] - r * z), abs(p[pix + 1] - s * z), abs(p[pix + 2] - z))
            }
        }
        #expect(covered > 100)
        #expect(depthErr < 1e-5)
        #expect(pointErr < 1e-5)
        // The mask counts the same pixels.
        #expect(out.mask.sum().item == Float(covered))
    }

    /// The number of covered pixel centres of a triangle is its area, up to the pixels its
    /// perimeter crosses.
    @Test func coveredAreaMatchesTriangleArea() throws {
        var rng = RandomGenerator(seed: 7)
        for _ in 0..<5 {
            let xy = rng.uniform([6], low: 2, high: 60).scalars
            let v = Tensor([xy[0], xy[1], 1, xy[2], xy[3], 2, xy[4], xy[5], 3], shape: [3, 3])
            let fr = try MeshRasterizer.rasterize(screenVertices: v, faces: [0, 1, 2], width: 64, height: 64)
            let area = abs((xy[2] - xy[0]) * (xy[5] - xy[1]) - (xy[4] - xy[0]) * (xy[3] - xy[1])) / 2
            let perimeter = hypot(xy[2] - xy[0], xy[3] - xy[1]) + hypot(xy[4] - xy[2], xy[5] - xy[3]) + hypot(xy[0] - xy[4], xy[1] - xy[5])
            let count = Float(fr.faceIndex.filter { $0 >= 0 }.count)
            #expect(abs(count - area) <= perimeter, "area \(area), count \(count), perimeter \(perimeter)")
        }
    }

    /// A tessellated unit sphere 4 units in front of the camera: its silhouette is the disc of
    /// radius f R / √(D² - R²), the visible surface is the near side (depth 3 at the centre, at
    /// most the rim's D - R²/D elsewhere), and the interpolated world points lie on the sphere up
    /// to the facets' sag.
    @Test func tessellatedSphereRendersAsExpected() throws {
        let (rings, segments) = (24, 48)
        var points: [Float] = [], faces: [Int32] = []
        for r in 0...rings {
            let theta = Float.pi * Float(r) / Float(rings)
            for s in 0..<segments {
                let phi = 2 * Float.pi * Float(s) / Float(segments)
                points += [sin(theta) * cos(phi), cos(theta), 4 + sin(theta) * sin(phi)]
            }
        }
        for r in 0..<rings {
            for s in 0..<segments {
                let a = Int32(r * segments + s), b = Int32(r * segments + (s + 1) % segments)
                let c = a + Int32(segments), d = b + Int32(segments)
                faces += [a, b, d, a, d, c]
            }
        }
        let world = Tensor(points, shape: [points.count / 3, 3])
        let cam = try PinholeCamera(width: 64, height: 64, fx: 40, fy: 40, cx: 32, cy: 32)
        let out = try MeshRasterizer.render(screenVertices: MeshRasterizer.screenVertices(world, camera: cam), faces: faces,
                                            attributes: world, width: 64, height: 64)
        let radius = 40 / Float(15).squareRoot()
        let count = out.mask.sum().item
        #expect(abs(count - Float.pi * radius * radius) < 2 * Float.pi * radius / 2, "covered \(count)")
        #expect(out.depth[32, 32] > 3 && out.depth[32, 32] < 3.01)
        let sag = 1 - cos(Float.pi / Float(rings))
        let img = out.image.scalars, depth = out.depth.scalars
        for pix in 0..<(64 * 64) where out.fragments.faceIndex[pix] >= 0 {
            let x = img[3 * pix], y = img[3 * pix + 1], z = img[3 * pix + 2]
            let distance = (x * x + y * y + (z - 4) * (z - 4)).squareRoot()
            #expect(distance <= 1.0001 && distance >= 1 - sag, "pixel \(pix): distance \(distance)")
            #expect(depth[pix] < 3.751 && abs(depth[pix] - z) < 1e-4)
        }
    }

    /// Two overlapping triangles: the nearer one wins wherever both cover, in either order.
    @Test func nearerTriangleWinsRegardlessOfOrder() throws {
        let near: [Float] = [2, 2, 2, 20, 4, 2, 6, 18, 2]
        let far: [Float] = [4, 3, 3, 22, 10, 3, 10, 20, 3]
        for order in 0..<2 {
            let v = Tensor(order == 0 ? near + far : far + near, shape: [6, 3])
            let nearFace: Int32 = order == 0 ? 0 : 1
            let fr = try MeshRasterizer.rasterize(screenVertices: v, faces: [0, 1, 2, 3, 4, 5], width: 24, height: 24)
            let alone = try MeshRasterizer.rasterize(screenVertices: Tensor(near, shape: [3, 3]), faces: [0, 1, 2], width: 24, height: 24)
            let farAlone = try MeshRasterizer.rasterize(screenVertices: Tensor(far, shape: [3, 3]), faces: [0, 1, 2], width: 24, height: 24)
            var overlap = 0
            for pix in 0..<(24 * 24) {
                if alone.faceIndex[pix] >= 0 {
                    #expect(fr.faceIndex[pix] == nearFace)
                    #expect(abs(fr.depth.scalars[pix] - 2) < 1e-5)
                    if farAlone.faceIndex[pix] >= 0 { overlap += 1 }
                } else if farAlone.faceIndex[pix] >= 0 {
                    #expect(fr.faceIndex[pix] == 1 - nearFace)
                    #expect(abs(fr.depth.scalars[pix] - 3) < 1e-6)
                }
            }
            #expect(overlap > 20)
        }
    }

    // Two overlapping triangles on an 8x6 image whose edges keep well away from pixel centres.
    private static let gradVertices: [Float] = [0.64, 0.61, 2.0, 7.3, 1.3, 3.0, 2.13, 5.16, 2.5,
                                                2.9, 0.32, 2.8, 7.54, 4.87, 1.6, 1.51, 5.98, 2.2]
    private static let gradFaces: [Int32] = [0, 1, 2, 3, 4, 5]

    @Test func renderGradientsMatchFiniteDifferences() throws {
        let v = Tensor(Self.gradVertices, shape: [6, 3]), faces = Self.gradFaces
        #expect(minimumEdgeDistance(Self.gradVertices, faces, width: 8, height: 6) > 0.05)
        var rng = RandomGenerator(seed: 3)
        let attributes = rng.uniform([6, 2], low: -1, high: 1)
        let check = try MeshRasterizer.render(screenVertices: v, faces: faces, attributes: attributes, width: 8, height: 6)
        // Both faces are visible and some pixels are background.
        #expect(Set(check.fragments.faceIndex) == [-1, 0, 1])
        let result = GradientCheck.check([v, attributes], step: 1e-2, atol: 1e-3, rtol: 1e-2) { xs in
            let out = try! MeshRasterizer.render(screenVertices: xs[0], faces: faces, attributes: xs[1], width: 8, height: 6,
                                                 background: [0.25, -0.5])
            return Tensor.concat([out.image.reshaped([48, 2]), out.depth.reshaped([48, 1])], axis: 1)
        }
        #expect(result.passed, "\(result)")
        #expect(result.checked == 18 + 12)
    }

    @Test func interpolateGradientMatchesFiniteDifferences() throws {
        let v = Tensor(Self.gradVertices, shape: [6, 3]), faces = Self.gradFaces
        let fr = try MeshRasterizer.rasterize(screenVertices: v, faces: faces, width: 8, height: 6)
        var rng = RandomGenerator(seed: 4)
        let attributes = rng.uniform([6, 3])
        let result = GradientCheck.check([attributes]) { xs in try! MeshRasterizer.interpolate(attributes: xs[0], fragments: fr, faces: faces) }
        #expect(result.passed, "\(result)")
        // Interpolation agrees with the fused render.
        let a = try MeshRasterizer.interpolate(attributes: attributes, fragments: fr, faces: faces)
        let r = try MeshRasterizer.render(screenVertices: v, faces: faces, attributes: attributes, width: 8, height: 6)
        #expect(a.allClose(r.image, rtol: 0, atol: 0))
    }

    /// End to end: world vertices → camera projection → render, differentiated with respect to the
    /// world vertices.
    @Test func worldVertexGradientsMatchFiniteDifferences() throws {
        let cam = try PinholeCamera(width: 8, height: 6, fx: 6, fy: 6, cx: 4, cy: 3)
        // Back-project the screen-space test vertices to world points at their depths.
        let sv = Self.gradVertices
        var world: [Float] = []
        for k in 0..<6 {
            let z = sv[3 * k + 2]
            world += [(sv[3 * k] - 4) / 6 * z, (sv[3 * k + 1] - 3) / 6 * z, z]
        }
        let w = Tensor(world, shape: [6, 3]), faces = Self.gradFaces
        #expect(MeshRasterizer.screenVertices(w, camera: cam).allClose(Tensor(sv, shape: [6, 3]), rtol: 0, atol: 1e-5))
        let attributes = Tensor([0.1, 0.9, 0.4, -0.3, 0.5, 0.7] as [Float], shape: [6, 1])
        let result = GradientCheck.check([w], step: 1e-3, atol: 1e-3, rtol: 1e-2) { xs in
            let out = try! MeshRasterizer.render(screenVertices: MeshRasterizer.screenVertices(xs[0], camera: cam), faces: faces,
                                                 attributes: attributes, width: 8, height: 6)
            return Tensor.concat([out.image.reshaped([48]), out.depth.reshaped([48])], axis: 0)
        }
        #expect(result.passed, "\(result)")
    }

    @Test func badInputIsRefusedAndEmptyMeshIsBackground() throws {
        let v = Tensor(Self.gradVertices, shape: [6, 3])
        var nan = v
        nan.withUnsafeMutableBufferPointer { $0[4] = .nan }
        #expect(throws: TensorError.self) { try MeshRasterizer.rasterize(screenVertices: nan, faces: [0, 1, 2], width: 8, height: 6) }
        #expect(throws: TensorError.self) { try MeshRasterizer.rasterize(screenVertices: v, faces: [0, 1, 6], width: 8, height: 6) }
        #expect(throws: TensorError.self) { try MeshRasterizer.rasterize(screenVertices: v, faces: [0, -1, 2], width: 8, height: 6) }
        #expect(throws: TensorError.self) { try MeshRasterizer.rasterize(screenVertices: v, faces: [0, 1], width: 8, height: 6) }
        #expect(throws: TensorError.self) { try MeshRasterizer.rasterize(screenVertices: v, faces: [0, 1, 2], width: 0, height: 6) }
        #expect(throws: TensorError.self) {
            try MeshRasterizer.render(screenVertices: v, faces: [0, 1, 2], attributes: Tensor.zeros([5, 3]), width: 8, height: 6)
        }
        #expect(throws: TensorError.self) {
            try MeshRasterizer.render(screenVertices: v, faces: [0, 1, 2], attributes: Tensor.zeros([6, 3]), width: 8, height: 6, background: [1])
        }
        #expect(throws: TensorError.self) { try MeshRasterizer.flatFaces([[0, 1]]) }
        #expect(try MeshRasterizer.flatFaces([[0, 1, 2], [2, 1, 3]]) == [0, 1, 2, 2, 1, 3])

        // Empty meshes, faces wholly behind the camera, faces with a vertex on the camera plane
        // (no screen position) and degenerate faces draw nothing.
        let empty = try MeshRasterizer.rasterize(screenVertices: Tensor.zeros([0, 3]), faces: [], width: 8, height: 6)
        #expect(empty.faceIndex.allSatisfy { $0 == -1 } && empty.depth.scalars.allSatisfy { $0 == .infinity })
        let emptyRender = try MeshRasterizer.render(screenVertices: Tensor.zeros([0, 3]), faces: [], attributes: Tensor.zeros([0, 2]),
                                                    width: 8, height: 6, background: [0.25, 0.75])
        #expect(emptyRender.image.scalars == [Float](repeating: 0, count: 96).enumerated().map { $0.offset % 2 == 0 ? 0.25 : 0.75 })
        #expect(emptyRender.mask.sum().item == 0 && emptyRender.depth.scalars.allSatisfy { $0 == 0 })
        let skipped: [Float] = [0, 0, -1, 8, 0, -2, 0, 6, -2,    // every vertex behind the camera
                                0, 0, 0, 8, 0, 2, 0, 6, 2,       // one vertex on the camera plane
                                0, 0, 2, 4, 3, 2, 8, 6, 2]       // collinear
        let none = try MeshRasterizer.render(screenVertices: Tensor(skipped, shape: [9, 3]), faces: (0..<9).map { Int32($0) },
                                             attributes: Tensor.ones([9, 1]), width: 8, height: 6, background: [0.5])
        #expect(none.mask.sum().item == 0)
        #expect(none.image.scalars.allSatisfy { $0 == 0.5 } && none.depth.scalars.allSatisfy { $0 == 0 })
    }

    /// Parallel bands give the same result as one thread would: a tall image with many faces
    /// crossing the band boundary agrees with the reference.
    @Test func tallImageAgreesWithReference() throws {
        let (w, h) = (16, 64)
        let (v, faces) = randomMesh(faces: 30, width: w, height: h, seed: 11)
        let fr = try MeshRasterizer.rasterize(screenVertices: v, faces: faces, width: w, height: h)
        let ref = referenceRasterize(v.scalars, faces, width: w, height: h)
        #expect(fr.faceIndex == ref.face)
    }

    /// A ground plane y = 1 from z = -5 (behind the camera) to z = 10: the pixel ray (r, s, 1)
    /// with s > 0 meets it at depth 1 / s, so exactly the rows with 1 / s ≤ 10 are covered (rows
    /// 14...23 here; row 13 has s = 0.075), at that depth and with the hit point interpolated. A
    /// rasteriser that dropped faces crossing the near plane would draw nothing.
    @Test func groundPlaneCrossingTheNearPlaneIsClipped() throws {
        let world = Tensor([[-10, 1, -5], [10, 1, -5], [10, 1, 10], [-10, 1, 10]] as [[Float]]).requiringGrad()
        let faces: [Int32] = [0, 1, 2, 0, 2, 3]
        let sv = MeshRasterizer.screenVertices(world, camera: camera)
        let out = try MeshRasterizer.render(screenVertices: sv, faces: faces, attributes: world.detached(), width: 32, height: 24)
        let d = out.depth.scalars, p = out.image.scalars
        var depthErr: Float = 0, pointErr: Float = 0
        for j in 0..<24 {
            for i in 0..<32 {
                let pix = j * 32 + i
                #expect((out.fragments.faceIndex[pix] >= 0) == (j >= 14), "pixel (\(i), \(j))")
                guard j >= 14 else { continue }
                let r = (Float(i) + 0.5 - 16) / 20, s = (Float(j) + 0.5 - 12) / 20
                depthErr = max(depthErr, abs(d[pix] - 1 / s) * s)
                pointErr = max(pointErr, abs(p[3 * pix] - r / s), abs(p[3 * pix + 1] - 1), abs(p[3 * pix + 2] - 1 / s))
            }
        }
        #expect(depthErr < 1e-5 && pointErr < 1e-4, "depth \(depthErr), point \(pointErr)")
        // Both triangles cross the near plane and both are drawn.
        #expect(Set(out.fragments.faceIndex) == [-1, 0, 1])
        let g = grad(of: out.depth.sum(), wrt: world)
        #expect(g.isFinite && g.abs().sum().item > 0)
    }

    /// A vertex exactly on the camera plane (world depth 0): `screenVertices` moves it just
    /// behind the camera, so everything stays finite and its face is clipped. The triangle
    /// (0, 1, 0), (±5, 1, 6) on the plane y = 1 covers the pixels whose ray meets the plane at a
    /// depth up to 6 (rows 15...23), in full width.
    @Test func vertexOnTheCameraPlaneStaysFinite() throws {
        let world = Tensor([[0, 1, 0], [5, 1, 6], [-5, 1, 6]] as [[Float]]).requiringGrad()
        let sv = MeshRasterizer.screenVertices(world, camera: camera)
        #expect(sv.isFinite && sv[0, 2] < 0)
        let colors = Tensor([[1, 0], [0, 1], [0.5, 0.5]] as [[Float]]).requiringGrad()
        let out = try MeshRasterizer.render(screenVertices: sv, faces: [0, 1, 2], attributes: colors, width: 32, height: 24,
                                            background: [0, 0])
        #expect(out.image.isFinite && out.depth.isFinite)
        #expect(out.mask.sum().item == 9 * 32)
        for j in 15..<24 {
            let s = (Float(j) + 0.5 - 12) / 20
            #expect(abs(out.depth[j, 5] - 1 / s) < 1e-4)
        }
        let g = grad(of: (out.image * out.image).sum() + out.depth.sum(), wrt: [world, colors])
        #expect(g[0].isFinite && g[1].isFinite)
        #expect(g[0].abs().sum().item > 0 && g[1].abs().sum().item > 0)
    }

    /// Gradients through a face crossing the near plane (one vertex behind the camera, at its
    /// mirrored screen position) match finite differences.
    @Test func crossingFaceGradientsMatchFiniteDifferences() throws {
        let verts: [Float] = [5.4, 2.25, 1.9, 4.07, 4.67, 2.0, 2.29, 2.86, -2.9]
        let v = Tensor(verts, shape: [3, 3]), faces: [Int32] = [0, 1, 2]
        #expect(minimumEdgeDistance(verts, faces, width: 8, height: 6) > 0.05)
        let attributes = Tensor([0.3, -0.7, 0.9, 0.2, -0.4, 0.6] as [Float], shape: [3, 2])
        let check = try MeshRasterizer.render(screenVertices: v, faces: faces, attributes: attributes, width: 8, height: 6)
        let covered = check.mask.sum().item
        #expect(covered > 4 && covered < 48, "covered \(covered)")
        let result = GradientCheck.check([v, attributes], step: 1e-3, atol: 1e-3, rtol: 1e-2) { xs in
            let out = try! MeshRasterizer.render(screenVertices: xs[0], faces: faces, attributes: xs[1], width: 8, height: 6)
            return Tensor.concat([out.image.reshaped([48, 2]), out.depth.reshaped([48, 1])], axis: 1)
        }
        #expect(result.passed, "\(result)")
    }

    /// NaN or infinite vertices and out-of-range face indices are refused by every entry point
    /// with an error that says what is wrong; nothing returns a NaN image.
    @Test func everyEntryPointRefusesNonFiniteVerticesAndBadIndices() throws {
        let good = Tensor([1, 1, 2, 7, 1, 2, 1, 5, 2] as [Float], shape: [3, 3])
        let attributes = Tensor.ones([3, 1])
        for bad: Float in [.nan, .infinity, -.infinity] {
            for k in 0..<9 {
                var v = good
                v.withUnsafeMutableBufferPointer { $0[k] = bad }
                for entry in 0..<3 {
                    do {
                        switch entry {
                        case 0: _ = try MeshRasterizer.rasterize(screenVertices: v, faces: [0, 1, 2], width: 8, height: 6)
                        case 1: _ = try MeshRasterizer.render(screenVertices: v, faces: [0, 1, 2], attributes: attributes, width: 8, height: 6)
                        default: _ = try MeshRasterizer.softSilhouette(screenVertices: v, faces: [0, 1, 2], width: 8, height: 6)
                        }
                        Issue.record("entry \(entry) accepted \(bad) at \(k)")
                    } catch let error as TensorError {
                        #expect("\(error)".contains("NaN or infinity"), "\(error)")
                    }
                }
            }
        }
        for faces: [Int32] in [[0, 1, 3], [0, -1, 2], [7, 1, 2]] {
            for entry in 0..<3 {
                do {
                    switch entry {
                    case 0: _ = try MeshRasterizer.rasterize(screenVertices: good, faces: faces, width: 8, height: 6)
                    case 1: _ = try MeshRasterizer.render(screenVertices: good, faces: faces, attributes: attributes, width: 8, height: 6)
                    default: _ = try MeshRasterizer.softSilhouette(screenVertices: good, faces: faces, width: 8, height: 6)
                    }
                    Issue.record("entry \(entry) accepted faces \(faces)")
                } catch let error as TensorError {
                    #expect("\(error)".contains("outside 0..<3"), "\(error)")
                }
            }
        }
        let fr = try MeshRasterizer.rasterize(screenVertices: good, faces: [0, 1, 2], width: 8, height: 6)
        #expect(throws: TensorError.self) { try MeshRasterizer.interpolate(attributes: attributes, fragments: fr, faces: [0, 1, 5]) }
        // World points: NaN survives the projection and is refused by the rasteriser.
        let world = Tensor([[Float.nan, 0, 2], [1, 0, 2], [0, 1, 2]])
        #expect(throws: TensorError.self) {
            try MeshRasterizer.render(screenVertices: MeshRasterizer.screenVertices(world, camera: camera), faces: [0, 1, 2],
                                      attributes: attributes, width: 8, height: 6)
        }
    }
}

/// Plain-loop soft silhouette in Double, every face at every pixel (no cutoff).
private func referenceSoftSilhouette(_ v: [Float], _ faces: [Int32], width: Int, height: Int, sigma: Double) -> [Double] {
    var out = [Double](repeating: 0, count: width * height)
    for j in 0..<height {
        for i in 0..<width {
            let px = Double(i) + 0.5, py = Double(j) + 0.5
            var empty = 1.0
            for f in 0..<(faces.count / 3) {
                let idx = (0..<3).map { Int(faces[3 * f + $0]) }
                let x = idx.map { Double(v[3 * $0]) }, y = idx.map { Double(v[3 * $0 + 1]) }
                let area = (x[1] - x[0]) * (y[2] - y[0]) - (x[2] - x[0]) * (y[1] - y[0])
                var d2 = Double.infinity, inside = true
                for k in 0..<3 {
                    let a = k, b = (k + 1) % 3
                    let ex = x[b] - x[a], ey = y[b] - y[a], wx = px - x[a], wy = py - y[a]
                    if (ex * wy - ey * wx) * area < 0 { inside = false }
                    let t = min(max((wx * ex + wy * ey) / (ex * ex + ey * ey), 0), 1)
                    d2 = min(d2, (wx - t * ex) * (wx - t * ex) + (wy - t * ey) * (wy - t * ey))
                }
                empty *= 1 - 1 / (1 + exp(-(inside ? d2 : -d2) / sigma))
            }
            out[j * width + i] = 1 - empty
        }
    }
    return out
}

@Suite struct SoftSilhouetteTests {
    @Test func fastSilhouetteMatchesPlainLoops() throws {
        let (w, h) = (32, 24)
        for sigma: Float in [0.3, 1, 4] {
            let (v, faces) = randomMesh(faces: 20, width: w, height: h, seed: 5)
            let s = try MeshRasterizer.softSilhouette(screenVertices: v, faces: faces, width: w, height: h, sigma: sigma)
            let ref = referenceSoftSilhouette(v.scalars, faces, width: w, height: h, sigma: Double(sigma))
            let err = zip(s.scalars, ref).map { abs(Double($0) - $1) }.max()!
            #expect(err < 1e-5, "sigma \(sigma): max error \(err)")
            #expect(s.shape == [h, w])
        }
    }

    /// With a tiny sigma the soft silhouette is the hard mask.
    @Test func smallSigmaGivesTheHardMask() throws {
        let (w, h) = (32, 24)
        let (v, faces) = randomMesh(faces: 20, width: w, height: h, seed: 6)
        let s = try MeshRasterizer.softSilhouette(screenVertices: v, faces: faces, width: w, height: h, sigma: 1e-3)
        let fr = try MeshRasterizer.rasterize(screenVertices: v, faces: faces, width: w, height: h)
        #expect(zip(s.scalars, fr.faceIndex).allSatisfy { ($0 > 0.5) == ($1 >= 0) })
    }

    /// One large triangle: a pixel centre 1.5 px outside its top edge (and far from the others)
    /// has coverage sigmoid(-2.25/σ); one 1.5 px inside has sigmoid(2.25/σ).
    @Test func singleEdgeCoverageIsAnalytic() throws {
        let v = Tensor([2, 2, 1, 30, 2, 1, 2, 22, 1] as [Float], shape: [3, 3])
        let sigma: Float = 1.5
        let s = try MeshRasterizer.softSilhouette(screenVertices: v, faces: [0, 1, 2], width: 32, height: 24, sigma: sigma)
        func sigmoid(_ x: Float) -> Float { 1 / (1 + exp(-x)) }
        #expect(abs(s[0, 10] - sigmoid(-2.25 / sigma)) < 1e-6)
        #expect(abs(s[3, 10] - sigmoid(2.25 / sigma)) < 1e-6)
        #expect(abs(s[2, 10] - sigmoid(0.25 / sigma)) < 1e-6)
        #expect(s[23, 31] == 0)
    }

    @Test func silhouetteGradientMatchesFiniteDifferences() throws {
        let v = Tensor([1.2, 1.1, 2, 8.4, 2.3, 2, 3.1, 6.8, 2,
                        5.2, 0.7, 3, 9.3, 6.1, 3, 4.4, 7.2, 3] as [Float], shape: [6, 3])
        for sigma: Float in [0.5, 2] {
            let result = GradientCheck.check([v], step: 1e-3, atol: 1e-3, rtol: 1e-2) { xs in
                try! MeshRasterizer.softSilhouette(screenVertices: xs[0], faces: [0, 1, 2, 3, 4, 5], width: 10, height: 8, sigma: sigma)
            }
            #expect(result.passed, "sigma \(sigma): \(result)")
        }
        // The gradient is real: x and y move the silhouette, depth does not.
        let vt = v.requiringGrad()
        let s = try MeshRasterizer.softSilhouette(screenVertices: vt, faces: [0, 1, 2, 3, 4, 5], width: 10, height: 8)
        let gv = grad(of: s.sum(), wrt: vt).scalars
        #expect((0..<6).allSatisfy { gv[3 * $0 + 2] == 0 })
        #expect((0..<6).allSatisfy { abs(gv[3 * $0]) + abs(gv[3 * $0 + 1]) > 1e-2 })
        #expect(throws: TensorError.self) {
            try MeshRasterizer.softSilhouette(screenVertices: v, faces: [0, 1, 2], width: 10, height: 8, sigma: 0)
        }
    }
}
