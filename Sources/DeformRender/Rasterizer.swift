import DeformTensor
import Foundation

/// What the rasteriser found at every pixel: the nearest covering triangle, its
/// perspective-correct barycentric coordinates and its depth.
public struct Fragments {
    public var width: Int
    public var height: Int
    /// The face covering each pixel, row by row (index `j * width + i`); -1 for background.
    public var faceIndex: [Int32]
    /// Perspective-correct barycentric coordinates `[H, W, 3]` of the pixel centre with respect to
    /// the face's three vertices (in the order the face lists them); 0 for background.
    public var barycentrics: Tensor
    /// Camera depth `[H, W]` of the surface at the pixel centre; `+infinity` for background (the
    /// z-buffer's initial value).
    public var depth: Tensor

    /// 1 where a face covers the pixel centre, 0 elsewhere, `[H, W]`.
    public var mask: Tensor {
        Tensor(faceIndex.map { $0 >= 0 ? 1 : 0 }, shape: [height, width])
    }
}

/// The outputs of ``MeshRasterizer/render(screenVertices:faces:attributes:width:height:background:)``.
public struct MeshRender {
    /// Interpolated attributes `[H, W, C]` (the background colour where nothing is drawn).
    public var image: Tensor
    /// Coverage `[H, W]`, 1 or 0 (a hard mask: not differentiable; use
    /// ``MeshRasterizer/softSilhouette(screenVertices:faces:width:height:sigma:)`` for silhouette
    /// gradients).
    public var mask: Tensor
    /// Camera depth `[H, W]` of the visible surface, 0 for background (so that a masked depth loss
    /// stays finite).
    public var depth: Tensor
    /// The rasteriser's output the image was interpolated from.
    public var fragments: Fragments
}

/// A z-buffer triangle rasteriser on the CPU, in the manner of PyTorch3D's `rasterize_meshes`
/// (with `perspective_correct=True`) and nvdiffrast's `rasterize` + `interpolate`.
///
/// Vertices come in *screen space*: `[V, 3]` rows `(pixel x, pixel y, camera depth z)`, with the
/// image spanning `[0, width] × [0, height]` and pixel `(i, j)` sampled at its centre
/// `(i + 0.5, j + 0.5)` (the convention of ``PinholeCamera``; ``screenVertices(_:camera:)``
/// converts world points). A pixel centre is covered by a face when its three screen-space edge
/// functions agree in sign (either winding is drawn: no back-face culling); among covering faces
/// the one with the smallest depth wins.
///
/// Perspective correction: with screen-space barycentrics `w_k` and vertex depths `z_k`, the
/// barycentrics of the 3D point are `b_k = (w_k / z_k) / Σ_j (w_j / z_j)` and its depth is
/// `1 / Σ_j (w_j / z_j)` (a straight line in 3D projects to a line on which `1/z` is affine).
///
/// Near plane: the rasteriser draws the part of each face in front of the plane at depth
/// ``near``, pixel by pixel. Screen space keeps enough for this: `(x z, y z, z)` is a linear image
/// of the camera-space point, so for a vertex behind the camera (z < 0) the pixel position that
/// projection gives (mirrored through the image centre) still determines the face's plane, and
/// the perspective-correct barycentrics `b_k` above, computed from it, are those of the point
/// where the pixel's ray meets that plane (homogeneous rasterisation, Olano and Greer 1997). A
/// pixel is drawn when every `b_k ≥ 0` and its depth exceeds ``near``, which clips the face at the
/// near plane exactly. So a face crossing the near plane draws its visible part, and a face with
/// every vertex at or behind it draws nothing. A face with a vertex at depth exactly 0 has no
/// screen position there and is skipped (``screenVertices(_:camera:)`` moves such vertices just
/// behind the camera so their faces are clipped instead), as are faces whose screen-space area is
/// (numerically) zero, which are edge-on.
///
/// Bad input: vertices holding NaN or infinity, face indices out of range and bad sizes are
/// refused with a ``TensorError`` naming the problem; an empty mesh renders the background.
///
/// Gradients: ``render(screenVertices:faces:attributes:width:height:background:)`` is one fused
/// op whose hand-written backward gives gradients with respect to the attributes and, through the
/// perspective-correct barycentrics and the depth, to the screen-space vertices — with the face
/// covering each pixel held fixed (the "interior" gradient of hard rasterisers; silhouettes get
/// no gradient from it). ``softSilhouette(screenVertices:faces:width:height:sigma:)`` gives
/// silhouette gradients (SoftRas).
public enum MeshRasterizer {
    /// The near plane: no surface at or in front of this camera depth is drawn (faces crossing it
    /// are clipped, faces wholly in front of it are skipped).
    public static let near: Float = 1e-6

    /// Camera depths whose magnitude is below this are moved to `-cameraPlaneOffset` by
    /// ``screenVertices(_:camera:)``: on the camera plane the projection divides by zero.
    static let cameraPlaneOffset: Float = 1e-9

    /// Screen-space vertices `[V, 3]` = (pixel x, pixel y, camera depth) of world points `[V, 3]`,
    /// composed from engine ops so it is differentiable with respect to the points. Points behind
    /// the camera get the mirrored pixel positions of the projection, which the rasteriser uses to
    /// clip their faces at the near plane; points on the camera plane (|depth| < 1e-9) are moved to
    /// depth -1e-9 first, so every output is finite.
    public static func screenVertices(_ worldVertices: Tensor, camera: PinholeCamera) -> Tensor {
        let cam = camera.toCamera(worldVertices)
        var z = cam.narrow(axis: 1, start: 2, length: 1)
        // A constant shift (gradient 1 through z) only where |z| is below the offset.
        let shift = z.detached().scalars.map { Swift.abs($0) < cameraPlaneOffset ? -cameraPlaneOffset - $0 : 0 }
        if shift.contains(where: { $0 != 0 }) { z = z + Tensor(shift, shape: z.shape) }
        let pixels = cam.narrow(axis: 1, start: 0, length: 2) / z * Tensor([camera.fx, camera.fy]) + Tensor([camera.cx, camera.cy])
        return Tensor.concat([pixels, z], axis: 1)
    }

    /// Flattens `[[i, j, k]]` faces into the `[Int32]` layout the rasteriser takes.
    public static func flatFaces(_ faces: [[Int]]) throws -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(faces.count * 3)
        for (n, f) in faces.enumerated() {
            guard f.count == 3 else {
                throw TensorError.invalidArgument(op: "MeshRasterizer.flatFaces", message: "face \(n) has \(f.count) indices, expected 3")
            }
            for i in f {
                guard i >= 0, i <= Int(Int32.max) else {
                    throw TensorError.invalidArgument(op: "MeshRasterizer.flatFaces", message: "face \(n) has index \(i)")
                }
                out.append(Int32(i))
            }
        }
        return out
    }

    // MARK: - Validation and per-face setup

    static func validate(_ op: String, screenVertices v: Tensor, faces: [Int32], width: Int, height: Int) throws {
        guard v.rank == 2, v.shape[1] == 3 else {
            throw TensorError.shapeMismatch(op: op, expected: "screenVertices [V, 3]", found: "\(v.shape)")
        }
        guard width > 0, height > 0 else {
            throw TensorError.invalidArgument(op: op, message: "image size must be positive, got \(width)x\(height)")
        }
        guard faces.count % 3 == 0 else {
            throw TensorError.invalidArgument(op: op, message: "faces must hold 3 indices per face, got \(faces.count) values")
        }
        let count = v.shape[0]
        if let bad = faces.firstIndex(where: { $0 < 0 || Int($0) >= count }) {
            throw TensorError.invalidArgument(op: op, message: "face \(bad / 3) has vertex index \(faces[bad]), outside 0..<\(count)")
        }
        if !v.isFinite { throw TensorError.nonFinite(op: op, message: "screenVertices contains NaN or infinity") }
    }

    /// The faces worth drawing, with their vertices and pixel bounding boxes.
    struct Setup {
        /// Indices of drawable faces.
        var faces: [Int]
        /// Per drawable face: x0 y0 z0 x1 y1 z1 x2 y2 z2 and the signed doubled area.
        var coords: [Float]
        /// Per drawable face: first and last pixel column and row whose centre may be covered.
        var boxes: [Int]
        /// Per drawable face: whether it crosses the near plane (and so needs the per-pixel depth
        /// test that clips it).
        var crossing: [Bool]
    }

    /// `clip`: keep faces crossing the near plane (the hard rasteriser clips them per pixel);
    /// otherwise they are skipped, as the soft silhouette, which has no depth, does.
    static func setup(screenVertices v: Tensor, faces: [Int32], width: Int, height: Int, margin: Float = 0,
                      clip: Bool = false) -> Setup {
        var s = Setup(faces: [], coords: [], boxes: [], crossing: [])
        let p = v.dataPointer
        for f in 0..<(faces.count / 3) {
            let i0 = Int(faces[3 * f]), i1 = Int(faces[3 * f + 1]), i2 = Int(faces[3 * f + 2])
            let x0 = p[3 * i0], y0 = p[3 * i0 + 1], z0 = p[3 * i0 + 2]
            let x1 = p[3 * i1], y1 = p[3 * i1 + 1], z1 = p[3 * i1 + 2]
            let x2 = p[3 * i2], y2 = p[3 * i2 + 1], z2 = p[3 * i2 + 2]
            let front = (z0 > near ? 1 : 0) + (z1 > near ? 1 : 0) + (z2 > near ? 1 : 0)
            // Wholly behind the near plane: every point of the face is at depth ≤ near.
            if front == 0 || (front < 3 && !clip) { continue }
            // On the camera plane the screen position is undefined (x, y were divided by 0).
            if z0 == 0 || z1 == 0 || z2 == 0 { continue }
            let area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
            // Zero-area faces cover nothing and would divide by zero; so would slivers whose
            // area is lost to rounding.
            guard area.isFinite, area != 0 else { continue }
            if front == 3 {
                let scale = Swift.max(Swift.abs(x1 - x0), Swift.abs(x2 - x0), Swift.abs(y1 - y0), Swift.abs(y2 - y0))
                guard Swift.abs(area) > 1e-6 * scale * scale else { continue }
            } else {
                // The mirrored screen position of a vertex just behind the camera is far away,
                // which makes the screen-space test above meaningless; the same test on the
                // homogeneous vertices (x z, y z, z) instead: det = z0 z1 z2 · area, relative to
                // the product of their lengths (an edge-on face has det 0).
                let h0 = SIMD3<Float>(x0 * z0, y0 * z0, z0), h1 = SIMD3<Float>(x1 * z1, y1 * z1, z1), h2 = SIMD3<Float>(x2 * z2, y2 * z2, z2)
                let det = z0 * z1 * z2 * area
                let lengths = (h0 * h0).sum().squareRoot() * (h1 * h1).sum().squareRoot() * (h2 * h2).sum().squareRoot()
                guard Swift.abs(det) > 1e-6 * lengths, det.isFinite else { continue }
            }
            // Pixel centres i + 0.5 inside [lo, hi]: i from ceil(lo - 0.5) to floor(hi - 0.5).
            var loX = Swift.min(x0, x1, x2) - margin, hiX = Swift.max(x0, x1, x2) + margin
            var loY = Swift.min(y0, y1, y2) - margin, hiY = Swift.max(y0, y1, y2) + margin
            if front < 3 {
                // The visible part is the face clipped at z = near: its front vertices and the
                // points where its edges cross the plane, found on the homogeneous (x z, y z, z),
                // which is linear along the edge. One pixel of slack for rounding.
                loX = .infinity; hiX = -.infinity; loY = .infinity; hiY = -.infinity
                let xs = [x0, x1, x2], ys = [y0, y1, y2], zs = [z0, z1, z2]
                for k in 0..<3 {
                    let a = k, b = (k + 1) % 3
                    if zs[a] > near { loX = Swift.min(loX, xs[a]); hiX = Swift.max(hiX, xs[a]); loY = Swift.min(loY, ys[a]); hiY = Swift.max(hiY, ys[a]) }
                    if (zs[a] > near) != (zs[b] > near) {
                        let t = (zs[a] - near) / (zs[a] - zs[b])
                        let hx = xs[a] * zs[a] + t * (xs[b] * zs[b] - xs[a] * zs[a])
                        let hy = ys[a] * zs[a] + t * (ys[b] * zs[b] - ys[a] * zs[a])
                        let cx = hx / near, cy = hy / near
                        loX = Swift.min(loX, cx); hiX = Swift.max(hiX, cx); loY = Swift.min(loY, cy); hiY = Swift.max(hiY, cy)
                    }
                }
                loX -= 1; hiX += 1; loY -= 1; hiY += 1
                if loX.isNaN || hiX.isNaN || loY.isNaN || hiY.isNaN { loX = 0; loY = 0; hiX = Float(width); hiY = Float(height) }
            }
            let iMin = Swift.max(0, Int((loX - 0.5).rounded(.up).clamped(-1, Float(width)))),
                iMax = Swift.min(width - 1, Int((hiX - 0.5).rounded(.down).clamped(-1, Float(width))))
            let jMin = Swift.max(0, Int((loY - 0.5).rounded(.up).clamped(-1, Float(height)))),
                jMax = Swift.min(height - 1, Int((hiY - 0.5).rounded(.down).clamped(-1, Float(height))))
            guard iMin <= iMax, jMin <= jMax else { continue }
            s.faces.append(f)
            s.coords += [x0, y0, z0, x1, y1, z1, x2, y2, z2, area]
            s.boxes += [iMin, iMax, jMin, jMax]
            s.crossing.append(front < 3)
        }
        return s
    }

    /// Splits the image rows into bands, one per core: each band owns its rows (so the forward
    /// writes without races) and its own gradient buffer (so the backward scatters without races
    /// and sums the buffers in a fixed order).
    static func bandCount(_ height: Int) -> Int { Swift.max(1, Swift.min(Threads.coreCount, height / 4)) }

    /// The edge function of the directed edge a → b at p, `(a - p) × (b - p)`, evaluated with the
    /// lower-indexed vertex first and negated as needed, so that two faces sharing an edge get
    /// exactly opposite values there and a pixel centre on the shared edge is never dropped by both.
    @inline(__always)
    static func edge(_ ia: Int32, _ ax: Float, _ ay: Float, _ ib: Int32, _ bx: Float, _ by: Float, _ px: Float, _ py: Float) -> Float {
        if ia <= ib {
            return (ax - px) * (by - py) - (bx - px) * (ay - py)
        } else {
            return -((bx - px) * (ay - py) - (ax - px) * (by - py))
        }
    }

    // MARK: - Hard rasterisation

    /// Rasterises a triangle mesh with a z-buffer.
    ///
    /// - Parameters:
    ///   - screenVertices: `[V, 3]` rows (pixel x, pixel y, camera depth); see the type's notes.
    ///   - faces: vertex indices, 3 per face (`[F · 3]`); see ``flatFaces(_:)``.
    ///   - width, height: image size in pixels.
    /// - Returns: per-pixel face index, perspective-correct barycentrics and depth. Not
    ///   differentiable (see ``render(screenVertices:faces:attributes:width:height:background:)``).
    /// - Throws: ``TensorError`` for a bad shape or size, a face index out of range, or NaN or
    ///   infinity in the vertices.
    public static func rasterize(screenVertices: Tensor, faces: [Int32], width: Int, height: Int) throws -> Fragments {
        try validate("MeshRasterizer.rasterize", screenVertices: screenVertices, faces: faces, width: width, height: height)
        return rasterizeValidated(screenVertices: screenVertices, faces: faces, width: width, height: height)
    }

    static func rasterizeValidated(screenVertices: Tensor, faces: [Int32], width: Int, height: Int) -> Fragments {
        let s = setup(screenVertices: screenVertices, faces: faces, width: width, height: height, clip: true)
        var faceIndex = [Int32](repeating: -1, count: width * height)
        let bary = Tensor(shape: [height, width, 3], repeating: 0)
        let depth = Tensor(shape: [height, width], repeating: .infinity)
        let pb = bary.dataPointer, pd = depth.dataPointer
        let bands = bandCount(height)
        let drawn = s.faces.count
        faceIndex.withUnsafeMutableBufferPointer { fiBuffer in
            let pf = fiBuffer.baseAddress!
            s.coords.withUnsafeBufferPointer { c in
                s.boxes.withUnsafeBufferPointer { box in
                    faces.withUnsafeBufferPointer { fc in
                        Threads.parallelRanges(bands, minChunk: 1) { range in
                            for band in range {
                                let rowLo = height * band / bands, rowHi = height * (band + 1) / bands
                                for n in 0..<drawn {
                                    let jMin = Swift.max(box[4 * n + 2], rowLo), jMax = Swift.min(box[4 * n + 3], rowHi - 1)
                                    if jMin > jMax { continue }
                                    let f = s.faces[n]
                                    let i0 = fc[3 * f], i1 = fc[3 * f + 1], i2 = fc[3 * f + 2]
                                    let q = c.baseAddress! + 10 * n
                                    let x0 = q[0], y0 = q[1], z0 = q[2], x1 = q[3], y1 = q[4], z1 = q[5]
                                    let x2 = q[6], y2 = q[7], z2 = q[8], area = q[9]
                                    if s.crossing[n] {
                                        // Per-pixel near-plane clipping (see the type's notes): the
                                        // barycentrics of the ray's hit on the face's plane must be
                                        // non-negative and its depth beyond the near plane.
                                        for j in jMin...jMax {
                                            let py = Float(j) + 0.5
                                            for i in box[4 * n]...box[4 * n + 1] {
                                                let px = Float(i) + 0.5
                                                let q0 = edge(i1, x1, y1, i2, x2, y2, px, py) / (area * z0)
                                                let q1 = edge(i2, x2, y2, i0, x0, y0, px, py) / (area * z1)
                                                let q2 = edge(i0, x0, y0, i1, x1, y1, px, py) / (area * z2)
                                                let z = 1 / (q0 + q1 + q2)
                                                let b0 = q0 * z, b1 = q1 * z, b2 = q2 * z
                                                guard z > near, z.isFinite, b0 >= 0, b1 >= 0, b2 >= 0 else { continue }
                                                let pix = j * width + i
                                                if z < pd[pix] {
                                                    pd[pix] = z
                                                    pf[pix] = Int32(f)
                                                    pb[3 * pix] = b0; pb[3 * pix + 1] = b1; pb[3 * pix + 2] = b2
                                                }
                                            }
                                        }
                                        continue
                                    }
                                    let positive = area > 0
                                    for j in jMin...jMax {
                                        let py = Float(j) + 0.5
                                        for i in box[4 * n]...box[4 * n + 1] {
                                            let px = Float(i) + 0.5
                                            let e0 = edge(i1, x1, y1, i2, x2, y2, px, py)
                                            let e1 = edge(i2, x2, y2, i0, x0, y0, px, py)
                                            let e2 = edge(i0, x0, y0, i1, x1, y1, px, py)
                                            let inside = positive ? (e0 >= 0 && e1 >= 0 && e2 >= 0) : (e0 <= 0 && e1 <= 0 && e2 <= 0)
                                            if !inside { continue }
                                            let q0 = e0 / (area * z0), q1 = e1 / (area * z1), q2 = e2 / (area * z2)
                                            let sum = q0 + q1 + q2
                                            guard sum > 0 else { continue }
                                            let z = 1 / sum
                                            let pix = j * width + i
                                            if z < pd[pix] {
                                                pd[pix] = z
                                                pf[pix] = Int32(f)
                                                pb[3 * pix] = q0 * z; pb[3 * pix + 1] = q1 * z; pb[3 * pix + 2] = q2 * z
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return Fragments(width: width, height: height, faceIndex: faceIndex, barycentrics: bary, depth: depth)
    }

    // MARK: - Attribute interpolation

    static func validateAttributes(_ op: String, _ attributes: Tensor, vertexCount: Int, background: [Float]?) throws {
        guard attributes.rank == 2, attributes.shape[0] == vertexCount else {
            throw TensorError.shapeMismatch(op: op, expected: "attributes [\(vertexCount), C]", found: "\(attributes.shape)")
        }
        if let background, background.count != attributes.shape[1] {
            throw TensorError.shapeMismatch(op: op, expected: "background [\(attributes.shape[1])]", found: "[\(background.count)]")
        }
        if !attributes.isFinite { throw TensorError.nonFinite(op: op, message: "attributes contains NaN or infinity") }
    }

    /// `Σ_k b_k a[f_k]` per pixel (the background elsewhere), `[H, W, C]`.
    static func interpolateForward(attributes: Tensor, fragments fr: Fragments, faces: [Int32], background: [Float]?) -> Tensor {
        let c = attributes.shape[1], h = fr.height, w = fr.width
        let out = Tensor(uninitializedShape: [h, w, c])
        let pa = attributes.dataPointer, pb = fr.barycentrics.dataPointer, po = out.dataPointer
        let bg = background ?? [Float](repeating: 0, count: c)
        fr.faceIndex.withUnsafeBufferPointer { fi in
            faces.withUnsafeBufferPointer { fc in
                bg.withUnsafeBufferPointer { pbg in
                    Threads.parallelRanges(h * w, minChunk: 4096) { pixels in
                        for pix in pixels {
                            let o = po + pix * c
                            let f = Int(fi[pix])
                            if f < 0 {
                                for k in 0..<c { o[k] = pbg[k] }
                                continue
                            }
                            let a0 = pa + Int(fc[3 * f]) * c, a1 = pa + Int(fc[3 * f + 1]) * c, a2 = pa + Int(fc[3 * f + 2]) * c
                            let b0 = pb[3 * pix], b1 = pb[3 * pix + 1], b2 = pb[3 * pix + 2]
                            for k in 0..<c { o[k] = b0 * a0[k] + b1 * a1[k] + b2 * a2[k] }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Interpolates per-vertex attributes `[V, C]` over the rasterised faces: `[H, W, C]`, 0 on
    /// background. Differentiable with respect to the attributes only (the barycentrics are held
    /// fixed); for gradients with respect to the vertex positions use
    /// ``render(screenVertices:faces:attributes:width:height:background:)``.
    ///
    /// - Throws: ``TensorError`` when the attributes are not `[V, C]` with V covering every face
    ///   index, hold NaN or infinity, or the fragments name faces that `faces` does not have.
    public static func interpolate(attributes: Tensor, fragments: Fragments, faces: [Int32]) throws -> Tensor {
        let op = "MeshRasterizer.interpolate"
        guard attributes.rank == 2 else {
            throw TensorError.shapeMismatch(op: op, expected: "attributes [V, C]", found: "\(attributes.shape)")
        }
        let v = attributes.shape[0]
        if let bad = faces.firstIndex(where: { $0 < 0 || Int($0) >= v }) {
            throw TensorError.invalidArgument(op: op, message: "face \(bad / 3) has vertex index \(faces[bad]), outside 0..<\(v)")
        }
        guard fragments.faceIndex.allSatisfy({ Int($0) < faces.count / 3 }) else {
            throw TensorError.invalidArgument(op: op, message: "fragments refer to faces beyond the \(faces.count / 3) given")
        }
        try validateAttributes(op, attributes, vertexCount: v, background: nil)
        let out = interpolateForward(attributes: attributes, fragments: fragments, faces: faces, background: nil)
        let c = attributes.shape[1]
        return Tensor.record("meshInterpolate", output: out, inputs: [attributes]) { g in
            [scatterAttributeGradient(g, fragments: fragments, faces: faces, vertexCount: v, channels: c)]
        }
    }

    /// The VJP of interpolation with respect to the attributes: each pixel adds `b_k g` to its
    /// face's vertex k. Per-band buffers, summed in band order (race-free and deterministic).
    static func scatterAttributeGradient(_ g: Tensor, fragments fr: Fragments, faces: [Int32], vertexCount v: Int, channels c: Int) -> Tensor {
        let pg = g.dataPointer, pb = fr.barycentrics.dataPointer
        return scatterOverCoveredPixels(fr, faces: faces, shape: [v, c]) { out, pix, corners in
            let gp = pg + pix * c
            for k in 0..<3 {
                let b = pb[3 * pix + k], o = out + Int(corners[k]) * c
                for ch in 0..<c { o[ch] += b * gp[ch] }
            }
        }
    }

    /// Calls `body(out, pixel, corners)` for every covered pixel (`corners`: the three vertex
    /// indices of its face), band by band on the cores, where `out` is the band's own zeroed
    /// buffer of `shape`; returns the buffers summed in band order, so scattering gradients into
    /// vertices is race-free and deterministic.
    @inline(__always)
    static func scatterOverCoveredPixels(_ fr: Fragments, faces: [Int32], shape: [Int],
                                         _ body: (_ out: UnsafeMutablePointer<Float>, _ pixel: Int, _ corners: UnsafePointer<Int32>) -> Void) -> Tensor {
        let bands = bandCount(fr.height), w = fr.width, h = fr.height
        let buffers = (0..<bands).map { _ in Tensor(shape: shape, repeating: 0) }
        let pointers = buffers.map(\.dataPointer)
        fr.faceIndex.withUnsafeBufferPointer { fi in
            faces.withUnsafeBufferPointer { fc in
                Threads.parallelRanges(bands, minChunk: 1) { range in
                    for band in range {
                        let out = pointers[band]
                        for pix in (h * band / bands * w)..<(h * (band + 1) / bands * w) {
                            let f = Int(fi[pix])
                            if f >= 0 { body(out, pix, fc.baseAddress! + 3 * f) }
                        }
                    }
                }
            }
        }
        return buffers.dropFirst().reduce(buffers[0]) { $0 + $1 }
    }

    // MARK: - Fused differentiable render

    /// Rasterises and interpolates in one differentiable op.
    ///
    /// The backward holds each pixel's face fixed and differentiates the perspective-correct
    /// interpolation `Σ_k b_k a_k` and the depth `1 / Σ_k (w_k / z_k)` with respect to the
    /// attributes and the three screen-space vertices (x, y through the screen-space barycentrics
    /// `w_k`, z through the perspective correction). Gradients are scattered into per-band
    /// buffers (race-free).
    ///
    /// - Parameters:
    ///   - screenVertices: `[V, 3]` (pixel x, pixel y, depth); see ``screenVertices(_:camera:)``.
    ///   - faces: vertex indices, 3 per face.
    ///   - attributes: `[V, C]` per-vertex values (colours, normals, features, UVs).
    ///   - background: `[C]` value for pixels no face covers (zeros when `nil`); constant.
    /// - Returns: image `[H, W, C]`, mask `[H, W]`, depth `[H, W]` (0 on background) and the
    ///   fragments. Image and depth are differentiable with respect to `screenVertices` and
    ///   `attributes`.
    /// - Throws: ``TensorError`` for bad shapes, an index out of range, or non-finite input.
    public static func render(screenVertices: Tensor, faces: [Int32], attributes: Tensor, width: Int, height: Int,
                              background: [Float]? = nil) throws -> MeshRender {
        let op = "MeshRasterizer.render"
        try validate(op, screenVertices: screenVertices, faces: faces, width: width, height: height)
        let v = screenVertices.shape[0]
        try validateAttributes(op, attributes, vertexCount: v, background: background)
        let c = attributes.shape[1]
        let fr = rasterizeValidated(screenVertices: screenVertices, faces: faces, width: width, height: height)
        let image = interpolateForward(attributes: attributes, fragments: fr, faces: faces, background: background)
        let mask = fr.mask
        let depth = Tensor(fr.depth.scalars.map { $0.isFinite ? $0 : 0 }, shape: [height, width])
        let vD = screenVertices.detached(), aD = attributes.detached()
        let wantV = screenVertices.isTracked, wantA = attributes.isTracked
        let outs = Tensor.recordMulti("meshRender", outputs: [image, depth], inputs: [screenVertices, attributes]) { cots in
            let gImage = cots[0] ?? Tensor.zeros([height, width, c]), gDepth = cots[1] ?? Tensor.zeros([height, width])
            let gV = wantV ? renderVertexGradient(vertices: vD, faces: faces, attributes: aD, fragments: fr,
                                                  gImage: gImage, gDepth: gDepth) : nil
            let gA = wantA ? scatterAttributeGradient(gImage, fragments: fr, faces: faces, vertexCount: v, channels: c) : nil
            return [gV, gA]
        }
        return MeshRender(image: outs[0], mask: mask, depth: outs[1], fragments: fr)
    }

    /// The VJP of ``render(screenVertices:faces:attributes:width:height:background:)`` with respect
    /// to the screen-space vertices. Per covered pixel, with `u_k = g · a_k`, `ū = Σ b_k u_k`,
    /// `q_k = w_k / z_k`, `S = Σ q_k`, `D = 1/S`, `b_k = q_k D`:
    ///
    ///     ∂L/∂q_k = (u_k - ū) D - g_D D²
    ///     ∂L/∂w_k = ∂L/∂q_k / z_k,   ∂L/∂z_k = -∂L/∂q_k · w_k / z_k²
    ///     w_k = E_k / A, A = Σ E_j:  ∂L/∂E_k = (∂L/∂w_k - Σ_j w_j ∂L/∂w_j) / A
    ///
    /// and `E_k = dx_{k+1} dy_{k+2} - dx_{k+2} dy_{k+1}` (`dx_j = x_j - p_x`, indices mod 3) is
    /// bilinear in the vertex coordinates.
    static func renderVertexGradient(vertices: Tensor, faces: [Int32], attributes: Tensor, fragments fr: Fragments,
                                     gImage: Tensor, gDepth: Tensor) -> Tensor {
        let v = vertices.shape[0], c = attributes.shape[1], w = fr.width
        let pv = vertices.dataPointer, pa = attributes.dataPointer, pb = fr.barycentrics.dataPointer
        let pd = fr.depth.dataPointer, pg = gImage.dataPointer, pgd = gDepth.dataPointer
        return scatterOverCoveredPixels(fr, faces: faces, shape: [v, 3]) { out, pix, corners in
            let px = Float(pix % w) + 0.5, py = Float(pix / w) + 0.5
            let idx = SIMD3<Int>(Int(corners[0]), Int(corners[1]), Int(corners[2]))
            var dx = SIMD3<Float>(), dy = dx, z = dx, u = dx
            let gp = pg + pix * c
            for k in 0..<3 {
                dx[k] = pv[3 * idx[k]] - px; dy[k] = pv[3 * idx[k] + 1] - py; z[k] = pv[3 * idx[k] + 2]
                let a = pa + idx[k] * c
                var s: Float = 0
                for ch in 0..<c { s += gp[ch] * a[ch] }
                u[k] = s
            }
            var e = SIMD3<Float>()
            for k in 0..<3 { e[k] = dx[(k + 1) % 3] * dy[(k + 2) % 3] - dx[(k + 2) % 3] * dy[(k + 1) % 3] }
            let area = e[0] + e[1] + e[2]
            let depth = pd[pix], gD = pgd[pix]
            let b = SIMD3<Float>(pb[3 * pix], pb[3 * pix + 1], pb[3 * pix + 2])
            let uBar = b[0] * u[0] + b[1] * u[1] + b[2] * u[2]
            var gw = SIMD3<Float>()
            var gwDotW: Float = 0
            for k in 0..<3 {
                let gq = (u[k] - uBar) * depth - gD * depth * depth
                let wk = e[k] / area
                gw[k] = gq / z[k]
                out[3 * idx[k] + 2] -= gq * wk / (z[k] * z[k])
                gwDotW += gw[k] * wk
            }
            for k in 0..<3 {
                let gE = (gw[k] - gwDotW) / area
                let k1 = (k + 1) % 3, k2 = (k + 2) % 3
                out[3 * idx[k1]] += gE * dy[k2]
                out[3 * idx[k2] + 1] += gE * dx[k1]
                out[3 * idx[k2]] -= gE * dy[k1]
                out[3 * idx[k1] + 1] -= gE * dx[k2]
            }
        }
    }
}

extension Float {
    @inline(__always) fileprivate func clamped(_ lo: Float, _ hi: Float) -> Float { Swift.min(Swift.max(self, lo), hi) }
}
