import Foundation
import Testing
import DeformIO
import DeformTensor
@testable import DeformView

/// Which palette colour a pixel shows, from the ratios of its channel differences: shading scales
/// the colour and a highlight or anti-aliasing against white adds the same amount to every channel,
/// and neither changes those ratios.
enum Ink { case prediction, groundTruth, other }

func ink(_ rgb: SIMD3<Float>) -> Ink {
    let (r, g, b) = (rgb.x, rgb.y, rgb.z)
    let pred = Palette.prediction.unit, truth = Palette.groundTruth.unit
    if r - b > 0.15, Swift.abs((g - b) / (r - b) - (pred.y - pred.z) / (pred.x - pred.z)) < 0.08 { return .prediction }
    if b - r > 0.15, Swift.abs((g - r) / (b - r) - (truth.y - truth.x) / (truth.z - truth.x)) < 0.08 { return .groundTruth }
    return .other
}

/// Pixels of an RGB image by (x, y).
struct Pixels {
    let width: Int, height: Int, samples: [Float]
    init(_ image: Image) { width = image.width; height = image.height; samples = image.pixels.scalars }
    subscript(x: Int, y: Int) -> SIMD3<Float> {
        let o = 3 * (y * width + x)
        return SIMD3(samples[o], samples[o + 1], samples[o + 2])
    }

    /// The pixels of one kind inside a rectangle, as coordinates relative to its corner.
    func find(_ kind: Ink, x: Int, y: Int, width w: Int, height h: Int) -> [(x: Int, y: Int)] {
        var out: [(x: Int, y: Int)] = []
        for j in 0..<h { for i in 0..<w where ink(self[x + i, y + j]) == kind { out.append((i, j)) } }
        return out
    }
}

func centroid(_ points: [(x: Int, y: Int)]) -> (x: Double, y: Double) {
    let n = Double(points.count)
    return (points.reduce(0) { $0 + Double($1.x) } / n + 0.5, points.reduce(0) { $0 + Double($1.y) } / n + 0.5)
}

@Suite("NRSfM preview")
struct NRSfMPreviewTests {
    var bare: NRSfMPreview.Options {
        var o = NRSfMPreview.Options()
        o.annotations = false
        return o
    }

    func randomSequence(frames: Int, points: Int, seed: UInt64) -> PointSequence {
        var rng = RandomGenerator(seed: seed)
        return PointSequence(frames: frames, points: points, xyz: rng.normal([frames, points, 3]).scalars)
    }

    @Test func framesAreSpreadEvenly() {
        #expect(NRSfMPreview.sampledFrames(frames: 260, count: 6) == [0, 52, 104, 155, 207, 259])
        #expect(NRSfMPreview.sampledFrames(frames: 3, count: 6) == [0, 1, 2])
        #expect(NRSfMPreview.sampledFrames(frames: 1, count: 6) == [0])
        #expect(NRSfMPreview.sampledFrames(frames: 10, count: 2) == [0, 9])
        #expect(NRSfMPreview.sampledFrames(frames: 0, count: 6) == [])
    }

    @Test func imageHasTheLayoutsSize() throws {
        let options = NRSfMPreview.Options()
        let long = try NRSfMPreview.render(prediction: randomSequence(frames: 40, points: 12, seed: 1),
                                           groundTruth: randomSequence(frames: 40, points: 12, seed: 2), options: options)
        let layout = NRSfMPreview.Layout(columns: 6, options: options)
        #expect(long.width == layout.width && long.height == layout.height && long.channels == 3)
        // Six 200-pixel panels side by side, two rows, plus labels.
        #expect(layout.width > 6 * 200 && layout.width < 6 * 200 + 200)
        #expect(layout.height > 2 * 200 && layout.height < 2 * 200 + 120)
        // A short sequence gets one column per frame.
        let short = try NRSfMPreview.render(prediction: randomSequence(frames: 3, points: 12, seed: 3), groundTruth: nil, options: bare)
        let shortLayout = NRSfMPreview.Layout(columns: 3, options: bare)
        #expect(short.width == shortLayout.width && short.height == shortLayout.height)
        #expect(shortLayout.width == 6 + 3 * 206 && shortLayout.height == 6 + 2 * 206)
    }

    @Test func singlePointLandsInThePanelCentre() throws {
        // One point per frame, moving: centred per frame it sits at the origin, which both views
        // put at the middle of every panel.
        let seq = PointSequence(frames: 4, points: 1, xyz: [0, 0, 0, 5, 1, 2, -3, 7, 1, 2, 2, 2])
        let image = try NRSfMPreview.render(prediction: seq, groundTruth: nil, options: bare)
        let px = Pixels(image), layout = NRSfMPreview.Layout(columns: 4, options: bare)
        for row in 0..<2 {
            for column in 0..<4 {
                let o = layout.cellOrigin(row: row, column: column)
                #expect(ink(px[o.x + 100, o.y + 100]) == .prediction)
                #expect(px[o.x + 10, o.y + 10] == SIMD3(1, 1, 1))
                var covered: [(x: Int, y: Int)] = []
                for j in 0..<200 { for i in 0..<200 where px[o.x + i, o.y + j].min() < 0.98 { covered.append((i, j)) } }
                let c = centroid(covered)
                #expect(covered.count > 50 && covered.count < 400)
                #expect(Swift.abs(c.x - 100) < 0.5 && Swift.abs(c.y - 100) < 0.5)
            }
        }
    }

    @Test func depthErrorShiftsTheSideViewOnly() throws {
        // Four points: two on the y axis that set the scale and are predicted exactly, and two on
        // the x axis whose predicted depths are wrong by 0.5 (+0.5 on the left, -0.5 on the right,
        // which mirroring would not improve).
        let truth = PointSequence(frames: 1, points: 4, xyz: [0, -1.5, 0, 0, 1.5, 0, -0.5, 0, 0.3, 0.5, 0, -0.3])
        let pred = PointSequence(frames: 1, points: 4, xyz: [0, -1.5, 0, 0, 1.5, 0, -0.5, 0, 0.8, 0.5, 0, -0.8])
        let image = try NRSfMPreview.render(prediction: pred, groundTruth: truth, options: bare)
        let px = Pixels(image), layout = NRSfMPreview.Layout(columns: 1, options: bare)
        // The points on the x axis are drawn on the middle rows of a panel; those on the y axis are
        // far above and below them.
        let band = 85, rows = 30

        // Camera view: x = -0.5 about 29 px left of the centre, x = +0.5 as far right. On the left
        // the ground truth is nearer the camera and hides the prediction; on the right the
        // prediction is nearer and drawn inside a ring of the larger ground-truth sphere, concentric
        // up to the slight perspective: the depth error does not move it sideways.
        let cam = layout.cellOrigin(row: 0, column: 0)
        let predLeft = px.find(.prediction, x: cam.x, y: cam.y + band, width: 100, height: rows)
        let predRight = px.find(.prediction, x: cam.x + 100, y: cam.y + band, width: 100, height: rows)
        let truthLeft = px.find(.groundTruth, x: cam.x, y: cam.y + band, width: 100, height: rows)
        let truthRight = px.find(.groundTruth, x: cam.x + 100, y: cam.y + band, width: 100, height: rows)
        #expect(predLeft.isEmpty)
        #expect(predRight.count > 40 && truthLeft.count > 60 && truthRight.count > 10)
        let (pr, tl, tr) = (centroid(predRight), centroid(truthLeft), centroid(truthRight))
        #expect(Swift.abs(pr.y - 15) < 1 && Swift.abs(tl.y - 15) < 1 && Swift.abs(tr.y - 15) < 1)
        #expect(tl.x > 62 && tl.x < 80)
        #expect(pr.x > 20 && pr.x < 38)
        // The ring's outline is the ground-truth sphere's, so the middle of its extent is that
        // sphere's centre.
        func middle(_ p: [(x: Int, y: Int)]) -> Double { Double(p.map(\.x).min()! + p.map(\.x).max()! + 1) / 2 }
        #expect(Swift.abs(middle(predRight) - middle(truthRight)) < 1.5)
        #expect(Swift.abs(middle(truthRight) - pr.x) < 1.5)

        // Side view: depth runs to the right, so the four spheres line up at depths -0.8, -0.3,
        // 0.3, 0.8: prediction outermost, ground truth inside, 0.5 units (about 29 px) apart.
        let side = layout.cellOrigin(row: 1, column: 0)
        let predNear = centroid(px.find(.prediction, x: side.x, y: side.y + band, width: 100, height: rows))
        let predFar = centroid(px.find(.prediction, x: side.x + 100, y: side.y + band, width: 100, height: rows))
        let truthNear = centroid(px.find(.groundTruth, x: side.x, y: side.y + band, width: 100, height: rows))
        let truthFar = centroid(px.find(.groundTruth, x: side.x + 100, y: side.y + band, width: 100, height: rows))
        #expect(predNear.x < truthNear.x - 22 && predNear.x > truthNear.x - 38)
        #expect(predFar.x > truthFar.x + 22 && predFar.x < truthFar.x + 38)
        #expect(truthNear.x > 70 && truthFar.x < 30)
        // A grey error segment joins each pair between the spheres.
        let mid = Int(((predNear.x + truthNear.x) / 2).rounded(.down))
        let grey = px[side.x + mid, side.y + 99], grey2 = px[side.x + mid, side.y + 100]
        #expect(Swift.min(grey.x, grey2.x) < 0.8)
        #expect(ink(grey) == .other && Swift.abs(grey.x - grey.z) < 0.02)
    }

    @Test func withoutGroundTruthOnlyPredictionColourAppears() throws {
        let image = try NRSfMPreview.render(prediction: randomSequence(frames: 20, points: 15, seed: 4), groundTruth: nil)
        let px = Pixels(image)
        let pred = px.find(.prediction, x: 0, y: 0, width: px.width, height: px.height)
        let truth = px.find(.groundTruth, x: 0, y: 0, width: px.width, height: px.height)
        #expect(pred.count > 1000)
        #expect(truth.isEmpty)
        // With ground truth, both colours appear.
        let both = Pixels(try NRSfMPreview.render(prediction: randomSequence(frames: 20, points: 15, seed: 4),
                                                  groundTruth: randomSequence(frames: 20, points: 15, seed: 5)))
        #expect(both.find(.groundTruth, x: 0, y: 0, width: both.width, height: both.height).count > 1000)
    }

    @Test func nonFinitePointsAreLeftOut() throws {
        var seq = randomSequence(frames: 5, points: 6, seed: 6)
        seq.xyz[0] = .nan
        seq.xyz[10] = .infinity
        let image = try NRSfMPreview.render(prediction: seq, groundTruth: randomSequence(frames: 5, points: 6, seed: 7), options: bare)
        #expect(image.pixels.scalars.allSatisfy { $0.isFinite })
    }

    @Test func badInputIsAClearError() throws {
        let empty = PointSequence(frames: 0, points: 5, xyz: [])
        #expect(throws: PreviewError.self) { try NRSfMPreview.render(prediction: empty, groundTruth: nil) }
        do {
            _ = try NRSfMPreview.render(prediction: empty, groundTruth: nil)
        } catch let error as PreviewError {
            #expect(error.description.contains("0 frames"))
        }
        let noPoints = PointSequence(frames: 3, points: 0, xyz: [])
        #expect(throws: PreviewError.self) { try NRSfMPreview.render(prediction: noPoints, groundTruth: nil) }
        #expect(throws: PreviewError.mismatch("ground truth has 4x5 points, the prediction 3x5")) {
            try NRSfMPreview.render(prediction: randomSequence(frames: 3, points: 5, seed: 1),
                                    groundTruth: randomSequence(frames: 4, points: 5, seed: 1))
        }
        var options = NRSfMPreview.Options()
        options.maxFrames = 0
        #expect(throws: PreviewError.self) { try NRSfMPreview.render(prediction: randomSequence(frames: 3, points: 5, seed: 1), groundTruth: nil, options: options) }
    }

    @Test func scaleAlignmentUndoesAnotherUnit() throws {
        let truth = randomSequence(frames: 3, points: 8, seed: 8)
        let pred = PointSequence(frames: 3, points: 8, xyz: truth.xyz.map { 40 * $0 })
        let reference = try NRSfMPreview.render(prediction: truth, groundTruth: truth, options: bare).pixels.scalars
        var options = bare
        options.alignScale = true
        let scaled = try NRSfMPreview.render(prediction: pred, groundTruth: truth, options: options).pixels.scalars
        let unscaled = try NRSfMPreview.render(prediction: pred, groundTruth: truth, options: bare).pixels.scalars
        func maxDifference(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { Swift.abs($0 - $1) }.max()! }
        #expect(maxDifference(scaled, reference) < 0.05)
        #expect(maxDifference(unscaled, reference) > 0.5)
    }
}

@Suite("Preview sheet")
struct PreviewSheetTests {
    func solid(_ w: Int, _ h: Int, _ c: [Float]) -> Image {
        Image(pixels: Tensor((0..<(w * h)).flatMap { _ in c }, shape: [h, w, c.count]))
    }

    @Test func tilesRowsWithOneDepthRange() throws {
        let red = solid(8, 6, [1, 0, 0]), green = solid(8, 6, [0, 1, 0]), grey = solid(4, 4, [0.5])
        let near = Tensor(shape: [6, 8], repeating: 1), far = Tensor(shape: [6, 8], repeating: 3)
        var mixed = [Float](repeating: 2, count: 48)
        mixed[0] = 0   // nothing hit
        let rows: [PreviewRow] = [.images([red, green]), .images([grey]),
                                  .depth([near, Tensor(mixed, shape: [6, 8])]), .depth([far])]
        #expect(previewDepthRange(rows) == 1...3)
        let sheet = try previewSheet(rows, gap: 2)
        // 2 columns of 8 + gaps; 4 rows of 6 + gaps, then the depth colour bar.
        #expect(sheet.width == 2 * (8 + 2) + 2)
        #expect(sheet.height > 4 * (6 + 2) + 2)
        let px = Pixels(sheet)
        func cell(_ row: Int, _ column: Int) -> (x: Int, y: Int) { (2 + column * 10, 2 + row * 8) }
        #expect(px[cell(0, 0).x, cell(0, 0).y] == SIMD3(1, 0, 0))
        #expect(px[cell(0, 1).x + 7, cell(0, 1).y + 5] == SIMD3(0, 1, 0))
        #expect(px[cell(0, 0).x + 8, cell(0, 0).y] == SIMD3(1, 1, 1))   // the gap
        // A smaller grey panel sits centred in its cell, white around it.
        #expect(px[cell(1, 0).x + 2, cell(1, 0).y + 1] == SIMD3(0.5, 0.5, 0.5))
        #expect(px[cell(1, 0).x + 1, cell(1, 0).y + 1] == SIMD3(1, 1, 1))
        #expect(px[cell(1, 0).x + 2, cell(1, 0).y] == SIMD3(1, 1, 1))
        // One depth range for the sheet: depth 1 is the bright end, 3 the dark end, 2 the middle,
        // in whichever row they are.
        func rgb8(_ t: Double) -> SIMD3<Float> { let c = ColorMap.viridis.rgb8(t); return SIMD3(Float(c.r), Float(c.g), Float(c.b)) / 255 }
        #expect(px[cell(2, 0).x + 3, cell(2, 0).y + 3] == rgb8(1))
        #expect(px[cell(3, 0).x + 3, cell(3, 0).y + 3] == rgb8(0))
        #expect(px[cell(2, 1).x + 3, cell(2, 1).y + 3] == rgb8(0.5))
        #expect(px[cell(2, 1).x, cell(2, 1).y] == SIMD3(0, 0, 0))
        // An explicit range overrides it.
        let wide = Pixels(try previewSheet(rows, depthRange: 1...5, gap: 2))
        #expect(wide[cell(3, 0).x + 3, cell(3, 0).y + 3] == rgb8(0.5))
    }

    @Test func labelsWidenTheSheetAndAlphaIsCompositedOverWhite() throws {
        let half = solid(10, 10, [0, 0, 0, 0.5])
        let sheet = try previewSheet([.images([half], label: "input")], gap: 2)
        #expect(sheet.width > 10 + 4 + PixelFont.width("input", scale: 1))
        let px = Pixels(sheet)
        #expect(px[sheet.width - 2 - 5, 2 + 5] == SIMD3(0.5, 0.5, 0.5))
        // The label is drawn: some dark pixels left of the panel.
        var dark = 0
        for y in 0..<sheet.height { for x in 0..<(sheet.width - 14) where px[x, y].x < 0.5 { dark += 1 } }
        #expect(dark > 20)
    }

    @Test func emptySheetsAndBadDepthAreErrors() {
        #expect(throws: PreviewError.self) { try previewSheet([]) }
        #expect(throws: PreviewError.self) { try previewSheet([.images([])]) }
        #expect(throws: PreviewError.self) { try previewSheet([.depth([Tensor(shape: [4, 4, 3], repeating: 1)])]) }
    }
}
