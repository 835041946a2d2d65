import Foundation
import DeformTensor
import Testing
import DeformIO
@testable import DeformView

@Suite("ColorMap")
struct ColorMapTests {
    @Test func endpointsAreViridis() {
        #expect(ColorMap.viridis.hex(0) == "#440154")
        #expect(ColorMap.viridis.hex(1) == "#fde725")
        #expect(ColorMap.viridis.hex(0.5) == "#21918c")
        // Out of range and NaN clamp instead of crashing.
        #expect(ColorMap.viridis.hex(-3) == "#440154")
        #expect(ColorMap.viridis.hex(7) == "#fde725")
        #expect(ColorMap.viridis.hex(.nan) == "#440154")
    }

    @Test func luminanceRisesMonotonically() {
        var previous = -1.0
        for i in 0...1000 {
            let c = ColorMap.viridis.rgb(Double(i) / 1000)
            let y = ColorMap.relativeLuminance(r: c.r, g: c.g, b: c.b)
            #expect(y > previous, "luminance falls at t = \(Double(i) / 1000)")
            previous = y
        }
        let dark = ColorMap.viridis.rgb(0), bright = ColorMap.viridis.rgb(1)
        #expect(ColorMap.relativeLuminance(r: bright.r, g: bright.g, b: bright.b)
                > 10 * ColorMap.relativeLuminance(r: dark.r, g: dark.g, b: dark.b))
    }

    @Test func depthNearIsBrightAndInvalidIsBlack() {
        let rgb = colorizeDepth([1, 2, 0, .infinity, 3, .nan], width: 3, height: 2)
        #expect(Array(rgb[0..<3]) == [253, 231, 37])    // nearest
        #expect(Array(rgb[12..<15]) == [68, 1, 84])     // farthest
        #expect(Array(rgb[6..<12]) == [0, 0, 0, 0, 0, 0])
        #expect(Array(rgb[15..<18]) == [0, 0, 0])
        let mid = ColorMap.viridis.rgb8(0.5)
        #expect(Array(rgb[3..<6]) == [mid.r, mid.g, mid.b])
    }
}

@Suite("SVGPlot")
struct SVGPlotTests {
    func polylinePointCounts(_ svg: String) -> [Int] {
        svg.components(separatedBy: "<polyline").dropFirst().map { chunk in
            let start = chunk.range(of: "points=\"")!.upperBound
            let end = chunk[start...].firstIndex(of: "\"")!
            return chunk[start..<end].split(separator: " ").count
        }
    }

    @Test func pointsAxesAndLegend() {
        let xs = (0..<37).map(Double.init)
        let plot = LinePlot(title: "Loss", xLabel: "step (iterations)", yLabel: "loss (px²)", series: [
            PlotSeries(name: "train", xs: xs, ys: xs.map { 5 - $0 / 10 }),
            PlotSeries(name: "val", xs: [0, 10, 20, 30], ys: [4, .nan, 3, 2]),
        ])
        let svg = plot.svg()
        #expect(polylinePointCounts(svg) == [37, 3])   // the NaN is dropped
        #expect(svg.contains(">step (iterations)</text>"))
        #expect(svg.contains(">loss (px²)</text>"))
        #expect(svg.contains(">train</text>") && svg.contains(">val</text>"))
        // x ticks 0, 10, 20, 30 (and maybe 40); y ticks include 0 because the data start near it.
        for label in [">0</text>", ">10</text>", ">20</text>", ">30</text>"] { #expect(svg.contains(label), "\(label)") }
        #expect(svg.components(separatedBy: "class=\"xtick\"").count - 1 >= 4)
        #expect(svg.components(separatedBy: "class=\"ytick\"").count - 1 >= 3)
    }

    @Test func logAxisDropsNonPositive() {
        let plot = LinePlot(title: "t", xLabel: "x", yLabel: "y", series: [
            PlotSeries(name: "s", xs: [0, 1, 2, 3], ys: [100, 1, 0, 0.01]),
        ], logY: true)
        let svg = plot.svg()
        #expect(polylinePointCounts(svg) == [3])
        #expect(svg.contains(">100</text>") && svg.contains(">1</text>") && svg.contains(">0.01</text>"))
    }

    @Test func niceTickValues() {
        let unitTicks = niceTicks(0, 1)
        #expect(unitTicks.count == 6 && unitTicks.first == 0 && abs(unitTicks.last! - 1) < 1e-12)
        #expect(zip(unitTicks, unitTicks.dropFirst()).allSatisfy { abs($1 - $0 - 0.2) < 1e-12 })
        #expect(niceTicks(0, 7999).first == 0 && niceTicks(0, 7999).last == 6000 && niceTicks(0, 7999).count == 4)
        #expect(niceTicks(3, 3).isEmpty)
        #expect(escapeHTML("<a href=\"x\">&'") == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;")
    }
}

/// A synthetic run folder like `deform nrsfm fit` writes.
struct SyntheticRun {
    let folder: URL
    let gt: [Float]
    let pred: [Float]
    let frames: Int, points: Int

    init(frames: Int = 6, points: Int = 5, files: Set<String> = ["reconstruction", "metrics", "config", "log", "tracks"]) throws {
        self.frames = frames; self.points = points
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("deform-view-tests-\(UUID().uuidString)")
        let run = folder.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        var g = [Float](), p = [Float]()
        for f in 0..<frames {
            for k in 0..<points {
                let x = Float(k) - 2, y = Float(f) * 0.1 + Float(k % 2), z = Float(k * k) * 0.05
                g += [x + 10, y, z + 5]              // GT carries a translation the viewer removes
                p += [x + (k == 0 ? 0.01 * Float(f) : 0), y, -z]  // depth mirrored; point 0 drifts in x
            }
        }
        gt = g; pred = p
        if files.contains("tracks") {
            try writeNPZ(["points_3d": NPYArray(doubles: g.map(Double.init), shape: [frames, points, 3]),
                          "points_2d": NPYArray(doubles: [Double](repeating: 0, count: frames * points * 2), shape: [frames, points, 2])],
                         to: folder.appendingPathComponent("tracks.npz"))
        }
        if files.contains("reconstruction") {
            try writeNPZ(["points_3d": NPYArray(doubles: p.map(Double.init), shape: [frames, points, 3])],
                         to: run.appendingPathComponent("reconstruction.npz"))
        }
        if files.contains("config") {
            try Data("{\"method\":\"paul\",\"tracks\":\"tracks.npz\",\"config\":{\"iterations\":300,\"lifting\":false,\"hiddenWidths\":[8,4]}}".utf8)
                .write(to: run.appendingPathComponent("config.json"))
        }
        if files.contains("metrics") {
            let perFrame = (0..<frames).map { "\(0.5 + Double($0))" }.joined(separator: ",")
            try Data("{\"mpjpe\":0.0125,\"normalizedErrorPerFrame\":[\(perFrame),1,2,3]}".utf8).write(to: run.appendingPathComponent("metrics.json"))
        }
        if files.contains("log") {
            let lines = (0..<12).map { "{\"restart\":0,\"step\":\($0 * 50),\"loss\":\(1.0 / Double($0 + 1))}" } + ["{\"event\":\"done\"}"]
            try Data(lines.joined(separator: "\n").utf8).write(to: run.appendingPathComponent("log.jsonl"))
        }
    }

    var run: URL { folder.appendingPathComponent("run") }
    func remove() { try? FileManager.default.removeItem(at: folder) }
}

/// The text of the `occurrence`-th `<script data-name="...">` (viewers hold their data in these).
func scriptContent(_ html: String, name: String, occurrence: Int = 0) -> String? {
    var from = html.startIndex
    for _ in 0..<occurrence {
        guard let r = html[from...].range(of: "<script data-name=\"\(name)\"") else { return nil }
        from = r.upperBound
    }
    guard let open = html[from...].range(of: "<script data-name=\"\(name)\""),
          let gt = html[open.upperBound...].firstIndex(of: ">"),
          let close = html[gt...].range(of: "</script>") else { return nil }
    return String(html[html.index(after: gt)..<close.lowerBound])
}

@Suite("RunReport")
struct RunReportTests {
    @Test func fullRunIsSelfContainedAndCarriesThePoints() throws {
        let s = try SyntheticRun()
        defer { s.remove() }
        let report = try RunReport.load(s.run)
        #expect(report.notes.isEmpty, "\(report.notes)")
        let html = report.html()
        // Self-contained: nothing fetched from the network, no external scripts or styles.
        for bad in ["src=\"http", "href=\"http", "src='http", "href='http", "<link", "@import", "url("] {
            #expect(!html.contains(bad), "found \(bad)")
        }
        #expect(!html.contains("http://") && !html.contains("https://"))
        // The embedded arrays decode to the aligned points: centred, prediction depth un-mirrored.
        let predText = try #require(scriptContent(html, name: "pos"))
        let gtText = try #require(scriptContent(html, name: "gt"))
        let pred = try #require(decodeBase64Float32(predText))
        let gt = try #require(decodeBase64Float32(gtText))
        #expect(pred.count == s.frames * s.points * 3 && gt.count == pred.count)
        let expected = alignForDisplay(prediction: PointSequence(frames: s.frames, points: s.points, xyz: s.pred),
                                       groundTruth: PointSequence(frames: s.frames, points: s.points, xyz: s.gt))
        #expect(pred == expected.prediction.xyz && gt == expected.groundTruth.xyz)
        // The depth flip is undone exactly; what is left is point 0's drift d = 0.01 f in x, shared
        // with the centroid: |d|(1 - 1/P) for point 0 and |d|/P for the others, so the mean
        // distance is d * 2(P - 1) / P².
        let n = Double(s.points)
        for (e, f) in zip(expected.errorPerFrame, 0..<s.frames) {
            #expect(abs(e - 0.01 * Double(f) * 2 * (n - 1) / (n * n)) < 1e-6, "frame \(f): \(e)")
        }
        #expect(expected.errorPerFrame[5] > 0.015)
        #expect(abs(gt[0] - (-2 - 0)) < 1e-5)   // x of point 0 minus the centroid x (0) = -2
        // Plots: loss (12 points; the event line is skipped), per-frame error, metrics per-frame series.
        #expect(report.loss?.first?.losses.count == 12)
        #expect(html.contains("Training loss") && html.contains("Per-frame 3D error") && html.contains("normalizedErrorPerFrame"))
        #expect(html.contains("<th>config.iterations</th><td>300</td>"))
        #expect(html.contains("<th>config.lifting</th><td>false</td>"))
        #expect(html.contains("<th>mpjpe</th><td>0.0125</td>"))
        #expect(html.contains("class=\"deform-viewer\"") && html.contains("getContext(\"webgl\""))
        let meta = try #require(scriptContent(html, name: "meta"))
        let json = try JSONSerialization.jsonObject(with: Data(meta.utf8)) as? [String: Any]
        #expect(json?["frames"] as? Int == s.frames && json?["points"] as? Int == s.points)
    }

    @Test func depthFlipAndErrorAreMeasured() {
        // One frame, two points: prediction = GT mirrored in depth plus 0.5 in x for point 0.
        let g = PointSequence(frames: 1, points: 2, xyz: [0, 0, 1, 0, 0, -1])
        let p = PointSequence(frames: 1, points: 2, xyz: [0.5, 0, -1, -0.5, 0, 1])
        let a = alignForDisplay(prediction: p, groundTruth: g)
        #expect(a.prediction.xyz == [0.5, 0, 1, -0.5, 0, -1])
        #expect(abs(a.errorPerFrame[0] - 0.5) < 1e-9)
    }

    @Test func missingFilesAreReportedAndTheRestShown() throws {
        let s = try SyntheticRun(files: ["metrics", "log"])
        defer { s.remove() }
        let report = try RunReport.load(s.run)
        #expect(report.prediction == nil && report.loss != nil && report.metrics != nil)
        let html = report.html()
        #expect(html.contains("reconstruction.npz is missing") && html.contains("config.json is missing"))
        #expect(!html.contains("<canvas"))
        #expect(html.contains("Training loss"))
    }

    @Test func groundTruthNotFoundIsANote() throws {
        let s = try SyntheticRun(files: ["reconstruction", "config"])
        defer { s.remove() }
        let report = try RunReport.load(s.run)
        #expect(report.groundTruth == nil && report.prediction != nil)
        #expect(report.notes.contains { $0.contains("tracks.npz") && $0.contains("not found") })
        // Given explicitly it is used.
        let s2 = try SyntheticRun()
        defer { s2.remove() }
        let withGT = try RunReport.load(s.run, groundTruth: s2.folder.appendingPathComponent("tracks.npz"))
        #expect(withGT.groundTruth != nil && withGT.errorPerFrame?.count == s.frames)
    }

    @Test func badInputsGiveClearErrors() throws {
        let s = try SyntheticRun(files: [])
        defer { s.remove() }
        // An empty folder: nothing to show, and the message lists what was looked for.
        let empty = "\(#expect(throws: ViewError.self) { try RunReport.load(s.run) }!)"
        #expect(empty.contains("nothing to show") && empty.contains("reconstruction.npz") && empty.contains("log.jsonl"))
        // Missing path.
        let missing = "\(#expect(throws: ViewError.self) { try RunReport.load(s.folder.appendingPathComponent("nope")) }!)"
        #expect(missing.contains("nope") && missing.contains("no such file"))
        // Unknown format.
        let txt = s.folder.appendingPathComponent("notes.txt")
        try Data("hi".utf8).write(to: txt)
        let unknown = "\(#expect(throws: ViewError.self) { try RunReport.load(txt) }!)"
        #expect(unknown.contains("notes.txt") && unknown.contains("unknown file kind '.txt'"))
        // An NPZ without points_3d names the file and the entry.
        let npz = s.folder.appendingPathComponent("other.npz")
        try writeNPZ(["depth": NPYArray(doubles: [1, 2], shape: [2])], to: npz)
        let noPoints = "\(#expect(throws: DeformIOError.self) { try RunReport.load(npz) }!)"
        #expect(noPoints.contains("other.npz") && noPoints.contains("points_3d") && noPoints.contains("depth"))
        // Wrong shape.
        try writeNPZ(["points_3d": NPYArray(doubles: [1, 2, 3, 4], shape: [2, 2])], to: npz)
        let shape = "\(#expect(throws: DeformIOError.self) { try RunReport.load(npz) }!)"
        #expect(shape.contains("[frames, points, 3]") && shape.contains("[2, 2]"))
        // A corrupt metrics.json is an error naming it, not a silent skip.
        try FileManager.default.createDirectory(at: s.run, withIntermediateDirectories: true)
        try Data("{not json".utf8).write(to: s.run.appendingPathComponent("metrics.json"))
        let corrupt = "\(#expect(throws: DeformIOError.self) { try RunReport.load(s.run) }!)"
        #expect(corrupt.contains("metrics.json") && corrupt.contains("not valid JSON"))
        // A log line that is not JSON names the line.
        try Data("{\"step\":0,\"loss\":1}\nxx".utf8).write(to: s.folder.appendingPathComponent("log.jsonl"))
        let badLog = "\(#expect(throws: DeformIOError.self) { try RunReport.load(s.folder.appendingPathComponent("log.jsonl")) }!)"
        #expect(badLog.contains("line 2"))
    }

    @Test func thousandFramesHundredPointsStaysUnderFiveMB() throws {
        let frames = 1000, points = 100
        var xyz = [Float](repeating: 0, count: frames * points * 3)
        for i in xyz.indices { xyz[i] = Float(sin(Double(i) * 0.37)) }
        var report = RunReport(title: "size")
        report.prediction = PointSequence(frames: frames, points: points, xyz: xyz)
        report.groundTruth = PointSequence(frames: frames, points: points, xyz: xyz.map { $0 + 0.01 })
        report.errorPerFrame = (0..<frames).map { Double($0) * 1e-3 }
        report.loss = [(0, (0..<200).map(Double.init), (0..<200).map { 1 / Double($0 + 1) })]
        let bytes = report.html().utf8.count
        #expect(bytes < 5_000_000, "\(bytes) bytes")
        #expect(bytes > 2 * frames * points * 12 * 4 / 3)   // both arrays really are in it
    }
}

@Suite("Report panels")
struct ReportPanelTests {
    func makeFolder() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("deform-panels-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("renders"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("checkpoints"), withIntermediateDirectories: true)
        return dir
    }

    @Test func imagesDepthAndScenesAreFoundByConvention() throws {
        let dir = try makeFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writePNG(Tensor([Float](repeating: 0.5, count: 8 * 6 * 3), shape: [8, 6, 3]), to: dir.appendingPathComponent("renders/b.png"))
        try writePNG(Tensor([Float](repeating: 0.2, count: 4 * 4 * 3), shape: [4, 4, 3]), to: dir.appendingPathComponent("preview.png"))
        try writeJPEG(Tensor([Float](repeating: 0.7, count: 16 * 16 * 3), shape: [16, 16, 3]), to: dir.appendingPathComponent("renders/a.jpg"))
        // Depth: a float map in metres and a one-channel PNG; they share one colour range.
        try writeNPY(Tensor((0..<12).map { 1 + Float($0) * 0.1 }, shape: [3, 4]), to: dir.appendingPathComponent("depth.npy"))
        // The PNG stores 3 (its own unit; 8-bit) everywhere: deeper than every metric depth.
        try writePNG(Tensor([Float](repeating: 3.0 / 255, count: 9), shape: [3, 3, 1]), to: dir.appendingPathComponent("renders/depth_0.png"))
        // Ignored: checkpoints, unrelated arrays.
        try writePNG(Tensor([Float](repeating: 0, count: 3), shape: [1, 1, 3]), to: dir.appendingPathComponent("checkpoints/x.png"))
        try writeNPY(Tensor([1, 2, 3]), to: dir.appendingPathComponent("codes.npy"))
        try Data("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n".utf8).write(to: dir.appendingPathComponent("mesh.obj"))
        let report = try RunReport.load(dir)
        // preview.png leads, then the top level, then subfolders, each by name.
        #expect(report.images.map(\.title) == ["preview.png", "renders/a.jpg", "renders/b.png"])
        #expect(report.images[2].width == 6 && report.images[2].height == 8 && report.images[1].mime == "image/jpeg")
        #expect(report.depthMaps.map(\.title) == ["depth.npy", "renders/depth_0.png"])
        #expect(report.scenes.map(\.title) == ["mesh.obj"])
        // A run of an image method need not have a point reconstruction: no note about it.
        #expect(!report.notes.contains { $0.contains("reconstruction.npz") }, "\(report.notes)")
        let range = try #require(report.commonDepthRange())
        #expect(abs(range.lowerBound - 1.0) < 1e-6 && range.upperBound == 3, "\(range)")
        let html = report.html()
        #expect(html.contains("data:image/jpeg;base64,") && html.contains("near 1<") && html.contains("far 3<"))
        #expect(html.contains("kind\":\"mesh"))
        // The coloured depth uses the shared range: the metric map's deepest pixel (2.1) is not the
        // darkest colour because the PNG's 3 is deeper; its nearest (1.0) is the brightest.
        let coloured = try report.colouredDepthPNGs()
        let first = try decodeImageData(coloured[0].png).pixels.scalars.map { UInt8(($0 * 255).rounded()) }
        let near = ColorMap.viridis.rgb8(1), far = ColorMap.viridis.rgb8(0)
        #expect(Array(first.prefix(3)) == [near.r, near.g, near.b])
        #expect(Array(first.suffix(3)) != [far.r, far.g, far.b])
        let png = try decodeImageData(coloured[1].png).pixels.scalars.map { UInt8(($0 * 255).rounded()) }
        #expect(Array(png.prefix(3)) == [far.r, far.g, far.b])
    }

    @Test func damagedAndSurplusFilesBecomeNotes() throws {
        let dir = try makeFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("not an image".utf8).write(to: dir.appendingPathComponent("broken.png"))
        try Data("v 0 0 0\nf 1 2 3\n".utf8).write(to: dir.appendingPathComponent("broken.obj"))
        try writeNPY(Tensor([1, 2, 3]), to: dir.appendingPathComponent("depth_bad.npy"))
        for i in 0..<3 {
            try writePNG(Tensor([Float](repeating: 0.5, count: 3), shape: [1, 1, 3]), to: dir.appendingPathComponent("renders/\(i).png"))
        }
        var limits = PanelLimits()
        limits.images = 2
        var report = RunReport(title: "t")
        report.addPanels(from: PanelDiscovery.files(in: dir), folder: dir, limits: limits)
        #expect(report.images.count == 2)
        #expect(report.notes.contains { $0.contains("broken.png could not be read") && $0.contains("not a PNG or JPEG") }, "\(report.notes)")
        #expect(report.notes.contains { $0.contains("broken.obj could not be read") && $0.contains("vertex 1") })
        #expect(report.notes.contains { $0.contains("depth_bad.npy") && $0.contains("[H, W]") })
        #expect(report.notes.contains { $0.contains("1 more images not embedded") && $0.contains("renders/2.png") })
        // A folder of nothing viewable is an error listing what was looked for.
        let empty = try makeFolder()
        defer { try? FileManager.default.removeItem(at: empty) }
        let message = "\(#expect(throws: ViewError.self) { try RunReport.load(empty) }!)"
        #expect(message.contains("*.ply, *.obj") && message.contains("*.png"))
    }

    @Test func depthPNGKeepsItsStoredUnitAndNaNGaussiansAreLeftOut() throws {
        let dir = try makeFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        // A 16-bit depth PNG in millimetres: 1000 and 3000 mm.
        try writePNG(Tensor([1000, 3000, 1000, 3000].map { Float($0) / 65535 }, shape: [2, 2, 1]), to: dir.appendingPathComponent("depth_mm.png"), bitDepth: 16)
        let depth = try RunReport.load(dir.appendingPathComponent("depth_mm.png"))
        #expect(depth.depthMaps.first?.values == [1000, 3000, 1000, 3000])
        // One Gaussian with a NaN opacity logit: shown without it, with a note.
        let ply = dir.appendingPathComponent("g.ply")
        try writeGaussianPLY(to: ply, means: Tensor([0, 0, 0, 1, 1, 1], shape: [2, 3]), scales: Tensor([0.1, 0.2], shape: [2, 1]),
                             opacities: Tensor([0.5, .nan]), colors: Tensor([1, 0, 0, 0, 1, 0], shape: [2, 3]))
        let report = try RunReport.load(ply)
        guard case let .gaussians(cloud)? = report.scenes.first?.content else { Issue.record("not read as Gaussians"); return }
        #expect(cloud.count == 1 && report.notes.contains { $0.contains("1 Gaussians with non-finite values") })
        _ = report.html()
    }

    @Test func singleFilesOpenAsPanels() throws {
        let dir = try makeFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let ply = dir.appendingPathComponent("g.ply")
        try writeGaussianPLY(to: ply, means: Tensor([0, 0, 0, 1, 1, 1], shape: [2, 3]), scales: Tensor([0.1, 0.2], shape: [2, 1]),
                             opacities: Tensor([0.5, 0.5]), colors: Tensor([1, 0, 0, 0, 1, 0], shape: [2, 3]))
        let g = try RunReport.load(ply)
        guard case let .gaussians(cloud)? = g.scenes.first?.content else { Issue.record("not read as Gaussians"); return }
        #expect(cloud.count == 2 && g.scenes[0].yDown)
        let depth = dir.appendingPathComponent("pred_depth.npy")
        try writeNPY(Tensor([1, 2, 3, 4], shape: [2, 2]), to: depth)
        #expect(try RunReport.load(depth).depthMaps.count == 1)
        let other = dir.appendingPathComponent("codes.npy")
        try writeNPY(Tensor([1, 2]), to: other)
        let message = "\(#expect(throws: ViewError.self) { try RunReport.load(other) }!)"
        #expect(message.contains("'depth'"))
        let bad = dir.appendingPathComponent("bad.ply")
        try Data("ply\nformat ascii 1.0\nend_header\n".utf8).write(to: bad)
        let badMessage = "\(#expect(throws: ViewError.self) { try RunReport.load(bad) }!)"
        #expect(badMessage.contains("bad.ply") && badMessage.contains("vertex"))
    }

    @Test func otherNumericLogFieldsArePlotted() throws {
        let dir = try makeFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let lines = (0..<5).map { "{\"step\":\($0 * 10),\"loss\":\(1.0 / Double($0 + 1)),\"psnr\":\(20 + $0),\"seconds\":\($0)}" }
        try Data(lines.joined(separator: "\n").utf8).write(to: dir.appendingPathComponent("log.jsonl"))
        let report = try RunReport.load(dir.appendingPathComponent("log.jsonl"))
        #expect(report.logSeries.count == 1 && report.logSeries[0].key == "psnr")
        #expect(report.logSeries[0].steps == [0, 10, 20, 30, 40] && report.logSeries[0].values == [20, 21, 22, 23, 24])
        #expect(report.html().contains("log.jsonl: psnr"))
    }

    @Test func skeletonEdgesFromEdgesOrParents() throws {
        var notes: [String] = []
        let edges = try skeletonEdges(["edges": NPYArray(int64s: [0, 1, 1, 2], shape: [2, 2])], points: 3, file: "f", notes: &notes)
        #expect(edges == [0, 1, 1, 2])
        let tree = try skeletonEdges(["parents": NPYArray(int64s: [-1, 0, 1, 1], shape: [4])], points: 4, file: "f", notes: &notes)
        #expect(tree == [0, 1, 1, 2, 1, 3])
        #expect(notes.isEmpty)
        let bad = try skeletonEdges(["edges": NPYArray(int64s: [0, 5], shape: [1, 2])], points: 3, file: "f", notes: &notes)
        #expect(bad == nil && notes.last?.contains("outside 0..<3") == true)
    }
}
