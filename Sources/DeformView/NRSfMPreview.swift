import DeformIO
import DeformRender
import DeformTensor
import Foundation

/// The PNG preview of an NRSfM result: a few frames spread over the sequence, each seen from the
/// input camera (top row) and from the side (bottom row, where depth errors show), the predicted
/// points as orange spheres over the ground truth's blue ones, joined by thin grey error segments.
///
/// The points are placed as in the HTML report (``alignForDisplay(prediction:groundTruth:)``):
/// both sets centred per frame and the prediction's depth mirrored in the frames where that fits
/// the ground truth better. Without ground truth the prediction is centred per frame and drawn alone.
///
/// Views. The input camera looks along +z with x to the right and y down (OpenCV axes). The side
/// view is that camera turned 90 degrees about the vertical (y) axis to look along -x, so depth
/// (+z) runs to the right and the input camera is off the left edge. Both are ``PinholeCamera``s far
/// from the shape (12 times its largest centred coordinate) with a long focal length: almost
/// orthographic, as NRSfM's camera is, with a slight perspective that makes nearer spheres a little
/// larger. Every panel has the same scale, fitted so that every point of the sampled frames is
/// inside the panels of both views, so shapes compare across frames and between the two views.
///
/// Drawing. Every sphere is a low-poly icosphere (42 vertices, 80 faces) and every error segment a
/// thin square prism, rasterised together by ``MeshRasterizer`` (z-buffer), shaded from the
/// interpolated normals (Lambert plus a small highlight) at `supersampling`² samples per pixel and
/// box-filtered. Sphere sizes follow the shape's extent (so any unit works) and shrink a little
/// for many points. Predicted spheres are a little smaller than ground-truth ones and win where
/// the two overlap on screen (the ground truth is drawn as if two radii further away), so a
/// point predicted exactly shows as an orange ball in a blue ring rather than flickering between
/// colours.
public enum NRSfMPreview {
    /// How the preview is drawn.
    public struct Options: Sendable, Equatable {
        /// At most this many frames (columns), evenly spread over the sequence.
        public var maxFrames = 6
        /// Side of one square panel in pixels.
        public var cellSize = 200
        /// Samples per pixel along each axis (anti-aliasing); 1 draws hard edges.
        public var supersampling = 3
        /// Frame labels above the columns, view names beside the rows and a legend below.
        public var annotations = true
        /// Grey segments from each predicted point to its ground truth.
        public var errorLines = true
        /// Scales the prediction to the ground truth per frame (least squares) after alignment,
        /// for reconstructions known only up to scale (perspective NRSfM).
        public var alignScale = false

        public init() {}
    }

    /// Where the panels of a preview are.
    public struct Layout: Equatable, Sendable {
        /// Sampled frames shown, one per column.
        public var columns: Int
        /// Side of a square panel in pixels.
        public var cellSize: Int
        /// Size of the whole image in pixels.
        public var width: Int
        public var height: Int
        /// Pixels between panels.
        public var gap: Int
        /// Width of the row-label strip on the left, height of the frame-label strip on top and of
        /// the legend strip at the bottom.
        public var labelWidth: Int, headerHeight: Int, footerHeight: Int

        public init(columns: Int, options: Options) {
            self.columns = columns
            cellSize = options.cellSize
            gap = 6
            labelWidth = options.annotations ? PixelFont.width("camera", scale: 2) + 2 * gap : 0
            headerHeight = options.annotations ? PixelFont.height(scale: 2) + 2 * gap : gap
            footerHeight = options.annotations ? PixelFont.height(scale: 2) + 3 * gap : 0
            // Wide enough for the legend even when only a frame or two are shown.
            width = Swift.max(labelWidth + gap + columns * (cellSize + gap),
                              options.annotations ? labelWidth + gap + NRSfMPreview.legendWidth + gap : 0)
            height = headerHeight + 2 * (cellSize + gap) + footerHeight
        }

        /// Top-left pixel of a panel: row 0 is the camera view, row 1 the side view.
        public func cellOrigin(row: Int, column: Int) -> (x: Int, y: Int) {
            (labelWidth + gap + column * (cellSize + gap), headerHeight + row * (cellSize + gap))
        }
    }

    /// The frames a preview shows: `min(count, frames)` indices spread evenly from the first frame
    /// to the last.
    public static func sampledFrames(frames: Int, count: Int) -> [Int] {
        let n = Swift.min(Swift.max(count, 0), Swift.max(frames, 0))
        if n == 0 { return [] }
        if n == 1 { return [0] }
        return (0..<n).map { Int((Double($0) * Double(frames - 1) / Double(n - 1)).rounded()) }
    }

    /// Draws the preview (see the type's notes).
    ///
    /// - Parameters:
    ///   - prediction: the reconstruction, `frames x points x 3`.
    ///   - groundTruth: the true points, same shape, or `nil` to draw the prediction alone.
    /// - Returns: an RGB image of ``Layout/width`` by ``Layout/height`` pixels on white.
    /// - Throws: ``PreviewError`` when the prediction has no frames or no points, the ground truth's
    ///   shape differs from it, or an option is out of range. Points that are not finite are left
    ///   out rather than refused, so a preview of a diverged fit still shows what is there.
    public static func render(prediction: PointSequence, groundTruth: PointSequence?, options: Options = Options()) throws -> Image {
        guard prediction.frames > 0, prediction.points > 0 else {
            throw PreviewError.empty("the prediction has \(prediction.frames) frames of \(prediction.points) points")
        }
        guard options.maxFrames >= 1 else { throw PreviewError.invalidOption("maxFrames must be >= 1, got \(options.maxFrames)") }
        guard options.cellSize >= 16 else { throw PreviewError.invalidOption("cellSize must be >= 16 pixels, got \(options.cellSize)") }
        guard (1...8).contains(options.supersampling) else {
            throw PreviewError.invalidOption("supersampling must be 1...8, got \(options.supersampling)")
        }
        var pred: PointSequence, truth: PointSequence?
        if let groundTruth {
            guard groundTruth.frames == prediction.frames, groundTruth.points == prediction.points else {
                throw PreviewError.mismatch("ground truth has \(groundTruth.frames)x\(groundTruth.points) points, "
                    + "the prediction \(prediction.frames)x\(prediction.points)")
            }
            let aligned = alignForDisplay(prediction: prediction, groundTruth: groundTruth)
            pred = aligned.prediction
            truth = aligned.groundTruth
            if options.alignScale { pred = scaledToGroundTruth(pred, aligned.groundTruth) }
        } else {
            pred = prediction.centredPerFrame()
        }

        let frames = sampledFrames(frames: prediction.frames, count: options.maxFrames)
        let layout = Layout(columns: frames.count, options: options)
        let n = prediction.points
        func points(_ s: PointSequence, _ f: Int) -> [SIMD3<Float>] {
            (0..<n).map { k in let i = 3 * (f * n + k); return SIMD3(s.xyz[i], s.xyz[i + 1], s.xyz[i + 2]) }
        }

        // One scale for every panel, fitted to the sampled frames' points as both views project them.
        var sampled: [SIMD3<Float>] = []
        for f in frames {
            for set in [pred, truth].compactMap({ $0 }) {
                sampled += points(set, f).filter { $0.x.isFinite && $0.y.isFinite && $0.z.isFinite }
            }
        }
        var extent: Float = 0
        for p in sampled { extent = Swift.max(extent, Swift.abs(p.x), Swift.abs(p.y), Swift.abs(p.z)) }
        if !(extent > 0 && extent.isFinite) { extent = 1 }   // a single point per frame, or nothing finite
        let distance = 12 * extent
        // The largest image offset from the centre, in world units at the origin's depth.
        var reach: Float = 0
        for view in [View.camera, View.side] {
            let (r, d, f) = view.axes
            for p in sampled {
                let perspective = distance / Swift.max(distance + (p * f).sum(), distance / 2)
                reach = Swift.max(reach, Swift.abs((p * r).sum()) * perspective, Swift.abs((p * d).sum()) * perspective)
            }
        }
        if !(reach > 0) { reach = extent }
        let cell = Float(options.cellSize)
        // Sphere radius in output pixels: about 6 px for a 200-px panel of 30 points, smaller for
        // crowded shapes.
        let radiusPixels = Swift.min(Swift.max(34 / Float(n).squareRoot(), 2.5), 6.5) * cell / 200
        let margin = 0.03 * cell
        let pixelsPerUnit = (cell / 2 - margin - 1.1 * radiusPixels) / reach
        let radius = radiusPixels / pixelsPerUnit
        let views = try [View.camera, View.side].map { try $0.camera(distance: distance, pixelsPerUnit: pixelsPerUnit, options: options) }

        var canvas = Canvas(width: layout.width, height: layout.height)
        for (column, f) in frames.enumerated() {
            var spheres: [Sphere] = [], segments: [Segment] = []
            let p = points(pred, f)
            if let truth {
                let g = points(truth, f)
                spheres += g.map { Sphere(center: $0, radius: radius, color: Palette.groundTruth.unit, depthBias: 2 * radius) }
                if options.errorLines {
                    // 1.5 output pixels wide: wide enough that every row or column it crosses has a
                    // sample inside it, so the segment is never broken into dashes.
                    segments = zip(p, g).map { Segment(a: $0, b: $1, halfWidth: 0.75 / pixelsPerUnit, depthBias: 2 * radius) }
                }
            }
            spheres += p.map { Sphere(center: $0, radius: 0.72 * radius, color: Palette.prediction.unit, depthBias: 0) }
            for (row, view) in views.enumerated() {
                let rgb = try renderPanel(spheres: spheres, segments: segments, camera: view, size: options.cellSize,
                                          supersampling: options.supersampling)
                let o = layout.cellOrigin(row: row, column: column)
                canvas.paste(rgb, width: options.cellSize, height: options.cellSize, x: o.x, y: o.y)
                canvas.frame(x: o.x - 1, y: o.y - 1, width: options.cellSize + 2, height: options.cellSize + 2,
                             color: SIMD3(repeating: 0.86))
            }
        }
        if options.annotations { annotate(&canvas, layout: layout, frames: frames, hasGroundTruth: truth != nil, options: options) }
        return canvas.image
    }

    // MARK: - Scene

    struct Sphere { var center: SIMD3<Float>; var radius: Float; var color: SIMD3<Float>; var depthBias: Float }
    struct Segment { var a: SIMD3<Float>; var b: SIMD3<Float>; var halfWidth: Float; var depthBias: Float }

    enum View {
        case camera, side

        /// Camera-to-world rotation columns (right, down, forward) in OpenCV axes.
        var axes: (right: SIMD3<Float>, down: SIMD3<Float>, forward: SIMD3<Float>) {
            switch self {
            case .camera: return (SIMD3(1, 0, 0), SIMD3(0, 1, 0), SIMD3(0, 0, 1))
            // Turned 90 degrees about y: looking along -x, so +z (away from the input camera) is to the right.
            case .side: return (SIMD3(0, 0, 1), SIMD3(0, 1, 0), SIMD3(-1, 0, 0))
            }
        }

        /// A camera `distance` from the origin looking at it, whose image scale at the origin is
        /// `pixelsPerUnit` output pixels per world unit (times the supersampling).
        func camera(distance: Float, pixelsPerUnit: Float, options: Options) throws -> PinholeCamera {
            let (r, d, f) = axes
            let c = -distance * f
            let size = options.cellSize * options.supersampling
            let focal = pixelsPerUnit * Float(options.supersampling) * distance
            return try PinholeCamera(width: size, height: size, fx: focal, fy: focal, cx: Float(size) / 2, cy: Float(size) / 2,
                                     cameraToWorld: [r.x, d.x, f.x, c.x, r.y, d.y, f.y, c.y, r.z, d.z, f.z, c.z])
        }
    }

    /// The unit icosphere: an icosahedron with every face split in four, 42 vertices and 80 faces.
    static let icosphere: (vertices: [SIMD3<Float>], faces: [Int32]) = {
        let t = Float((1 + 5.0.squareRoot()) / 2)
        var v: [SIMD3<Float>] = [
            SIMD3(-1, t, 0), SIMD3(1, t, 0), SIMD3(-1, -t, 0), SIMD3(1, -t, 0),
            SIMD3(0, -1, t), SIMD3(0, 1, t), SIMD3(0, -1, -t), SIMD3(0, 1, -t),
            SIMD3(t, 0, -1), SIMD3(t, 0, 1), SIMD3(-t, 0, -1), SIMD3(-t, 0, 1),
        ].map { $0 / ($0 * $0).sum().squareRoot() }
        let base: [(Int, Int, Int)] = [
            (0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2), (10, 7, 6), (7, 1, 8),
            (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1),
        ]
        var midpoints: [Int: Int] = [:]
        func midpoint(_ a: Int, _ b: Int) -> Int {
            let key = Swift.min(a, b) * 64 + Swift.max(a, b)
            if let m = midpoints[key] { return m }
            let m = v[a] + v[b]
            v.append(m / (m * m).sum().squareRoot())
            midpoints[key] = v.count - 1
            return v.count - 1
        }
        var faces: [Int32] = []
        for (a, b, c) in base {
            let ab = midpoint(a, b), bc = midpoint(b, c), ca = midpoint(c, a)
            for tri in [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)] { faces += [Int32(tri.0), Int32(tri.1), Int32(tri.2)] }
        }
        return (v, faces)
    }()

    /// Attribute channels per vertex: colour (3), camera-frame normal (3), lit (1: shaded, 0: flat).
    static let channels = 7

    /// Rasterises the spheres and segments into one `size`-pixel panel: RGB samples `[size, size, 3]`.
    static func renderPanel(spheres: [Sphere], segments: [Segment], camera: PinholeCamera, size: Int, supersampling ss: Int) throws -> [Float] {
        let m = camera.cameraToWorld
        let right = SIMD3(m[0], m[4], m[8]), down = SIMD3(m[1], m[5], m[9]), forward = SIMD3(m[2], m[6], m[10])
        func toCamera(_ n: SIMD3<Float>) -> SIMD3<Float> { SIMD3((n * right).sum(), (n * down).sum(), (n * forward).sum()) }
        var positions: [Float] = [], attributes: [Float] = [], bias: [Float] = [], faces: [Int32] = []
        func add(_ p: SIMD3<Float>, color: SIMD3<Float>, normal: SIMD3<Float>, lit: Float, depthBias: Float) {
            positions += [p.x, p.y, p.z]
            attributes += [color.x, color.y, color.z, normal.x, normal.y, normal.z, lit]
            bias.append(depthBias)
        }
        let grey = Palette.errorLine.unit
        for s in segments {
            let axis = s.b - s.a, length = (axis * axis).sum().squareRoot()
            guard length.isFinite, length > 2 * s.halfWidth else { continue }
            let d = axis / length
            // Two directions across the segment: any vector not parallel to it, made orthonormal.
            let helper: SIMD3<Float> = Swift.abs(d.x) < 0.9 ? SIMD3(1, 0, 0) : SIMD3(0, 1, 0)
            var u = helper - (helper * d).sum() * d
            u /= (u * u).sum().squareRoot()
            let w = SIMD3(d.y * u.z - d.z * u.y, d.z * u.x - d.x * u.z, d.x * u.y - d.y * u.x)
            let first = Int32(positions.count / 3)
            let corners = [u + w, u - w, -u - w, -u + w].map { $0 * s.halfWidth }
            for end in [s.a, s.b] { for c in corners { add(end + c, color: grey, normal: .zero, lit: 0, depthBias: s.depthBias) } }
            for k in 0..<4 {
                let a = first + Int32(k), b = first + Int32((k + 1) % 4)
                faces += [a, b, b + 4, a, b + 4, a + 4]
            }
        }
        let sphere = icosphere
        for s in spheres where s.center.x.isFinite && s.center.y.isFinite && s.center.z.isFinite {
            let first = Int32(positions.count / 3)
            for n in sphere.vertices { add(s.center + s.radius * n, color: s.color, normal: toCamera(n), lit: 1, depthBias: s.depthBias) }
            faces += sphere.faces.map { $0 + first }
        }
        let side = size * ss
        var samples = [Float](repeating: 1, count: side * side * 3)
        let vertexCount = positions.count / 3
        if vertexCount > 0 {
            var screen = MeshRasterizer.screenVertices(Tensor(positions, shape: [vertexCount, 3]), camera: camera).scalars
            for v in 0..<vertexCount { screen[3 * v + 2] += bias[v] }
            let fragments = try MeshRasterizer.rasterize(screenVertices: Tensor(screen, shape: [vertexCount, 3]), faces: faces,
                                                         width: side, height: side)
            let shaded = try MeshRasterizer.interpolate(attributes: Tensor(attributes, shape: [vertexCount, channels]),
                                                        fragments: fragments, faces: faces).scalars
            // Light from the upper left, in front; Blinn-Phong half vector with the viewer at -z.
            let light = normalized(SIMD3<Float>(-0.45, -0.6, -0.65)), half = normalized(light + SIMD3(0, 0, -1))
            for p in 0..<(side * side) where fragments.faceIndex[p] >= 0 {
                let a = shaded[(channels * p)..<(channels * p + channels)].map { $0 }
                var color = SIMD3(a[0], a[1], a[2])
                if a[6] > 0.5 {
                    let n = normalized(SIMD3(a[3], a[4], a[5]))
                    let diffuse = Swift.max(0, (n * light).sum())
                    let specular = Foundation.pow(Swift.max(0, (n * half).sum()), 30)
                    // The highlight blends towards white instead of adding to the colour, so no channel
                    // clips and every pixel keeps the hue of its palette colour.
                    let gloss = 0.35 * specular
                    color = color * ((0.62 + 0.38 * diffuse) * (1 - gloss)) + SIMD3(repeating: gloss)
                }
                samples[3 * p] = color.x; samples[3 * p + 1] = color.y; samples[3 * p + 2] = color.z
            }
        }
        if ss == 1 { return samples }
        // Box filter: each output pixel is the mean of its ss x ss samples.
        var out = [Float](repeating: 0, count: size * size * 3)
        let scale = 1 / Float(ss * ss)
        for j in 0..<size {
            for i in 0..<size {
                var sum = SIMD3<Float>.zero
                for dj in 0..<ss {
                    for di in 0..<ss {
                        let s = 3 * ((j * ss + dj) * side + i * ss + di)
                        sum += SIMD3(samples[s], samples[s + 1], samples[s + 2])
                    }
                }
                let o = 3 * (j * size + i)
                out[o] = sum.x * scale; out[o + 1] = sum.y * scale; out[o + 2] = sum.z * scale
            }
        }
        return out
    }

    static func normalized(_ v: SIMD3<Float>) -> SIMD3<Float> {
        let l = (v * v).sum().squareRoot()
        return l > 0 ? v / l : SIMD3(0, 0, -1)
    }

    /// The prediction scaled per frame by the least-squares factor `Σ p·g / Σ p·p` onto the ground truth.
    static func scaledToGroundTruth(_ prediction: PointSequence, _ truth: PointSequence) -> PointSequence {
        var out = prediction
        let n = 3 * prediction.points
        for f in 0..<prediction.frames {
            var pg: Double = 0, pp: Double = 0
            for i in (f * n)..<((f + 1) * n) where prediction.xyz[i].isFinite && truth.xyz[i].isFinite {
                pg += Double(prediction.xyz[i]) * Double(truth.xyz[i]); pp += Double(prediction.xyz[i]) * Double(prediction.xyz[i])
            }
            guard pp > 0, pg.isFinite else { continue }
            let s = Float(pg / pp)
            for i in (f * n)..<((f + 1) * n) { out.xyz[i] *= s }
        }
        return out
    }

    // MARK: - Labels

    static func annotate(_ canvas: inout Canvas, layout: Layout, frames: [Int], hasGroundTruth: Bool, options: Options) {
        let ink = SIMD3<Float>(repeating: 0.2), soft = SIMD3<Float>(repeating: 0.45)
        let cell = layout.cellSize, g = layout.gap
        for (column, f) in frames.enumerated() {
            let o = layout.cellOrigin(row: 0, column: column)
            canvas.text("frame \(f)", centerX: o.x + cell / 2, y: g, scale: 2, color: ink)
        }
        let names = [("camera", ["input", "camera", "x right", "y down"]), ("side", ["turned 90", "about y;", "camera", "at left"])]
        for (row, (name, notes)) in names.enumerated() {
            let y = layout.cellOrigin(row: row, column: 0).y + cell / 2 - 28
            canvas.text(name, x: g, y: y, scale: 2, color: ink)
            for (k, line) in notes.enumerated() { canvas.text(line, x: g, y: y + 22 + 10 * k, scale: 1, color: soft) }
        }
        // Legend: a disc per point set, a bar for the error segments.
        var x = layout.cellOrigin(row: 0, column: 0).x
        let y = layout.height - layout.footerHeight + g + 2
        let th = PixelFont.height(scale: 2)
        func disc(_ color: SIMD3<Float>) {
            let r = Float(th) / 2
            for j in 0..<th {
                for i in 0..<th {
                    let dx = Float(i) + 0.5 - r, dy = Float(j) + 0.5 - r
                    if dx * dx + dy * dy <= r * r { canvas.fill(x: x + i, y: y + j, width: 1, height: 1, color: color) }
                }
            }
            x += th + 6
        }
        func label(_ text: String) {
            canvas.text(text, x: x, y: y, scale: 2, color: ink)
            x += PixelFont.width(text, scale: 2) + 24
        }
        disc(Palette.prediction.unit); label("prediction")
        if hasGroundTruth {
            disc(Palette.groundTruth.unit); label("ground truth")
            if options.errorLines {
                canvas.fill(x: x, y: y + th / 2 - 1, width: 18, height: 2, color: Palette.errorLine.unit)
                x += 24
                label("error")
            }
        }
        canvas.text(scaleNote, x: x + 12, y: y + 4, scale: 1, color: soft)
    }

    static let scaleNote = "same scale in every panel"

    /// The width of the legend with every entry (prediction, ground truth, error, scale note), as
    /// ``annotate(_:layout:frames:hasGroundTruth:options:)`` draws it.
    static var legendWidth: Int {
        let disc = PixelFont.height(scale: 2) + 6
        let labels = ["prediction", "ground truth", "error"].map { PixelFont.width($0, scale: 2) + 24 }.reduce(0, +)
        return 2 * disc + labels + 24 + 12 + PixelFont.width(scaleNote, scale: 1)
    }
}
