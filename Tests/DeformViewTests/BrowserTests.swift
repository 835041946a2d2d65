import Testing
import Foundation
@testable import DeformView
import DeformIO
import DeformTensor

/// The reports opened in a real browser: headless Chromium (Debian's `chromium`, which `make test`
/// installs when it is missing) with its software WebGL. Each run writes the page with a small
/// probe: script errors and `console.error` calls are logged with a marker, a driver script
/// pins one viewer's canvas to the top-left corner and may move the frame slider, and the
/// screenshot is exactly that canvas.
enum Browser {
    static let executable: String? = {
        if let given = ProcessInfo.processInfo.environment["DEFORM_CHROMIUM"], !given.isEmpty { return given }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"] {
                let candidate = "\(dir)/\(name)"
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
        }
        return nil
    }()

    struct Result {
        var log: String
        var screenshot: Image
        /// The values the driver printed as `DEFORM-STATE key=value`.
        var state: [String: String]
        /// Script errors and console.error messages seen by the page.
        var errors: [String]
    }

    /// Opens `html` with viewer number `viewer` pinned to a `width x height` window.
    /// - Parameter driver: JavaScript run 300 ms (virtual time) after load, with `root` bound to the
    ///   viewer element and `report(key, value)` to log state; the screenshot follows it.
    static func open(_ html: String, viewer: Int = 0, driver: String = "", width: Int = 400, height: Int = 300) throws -> Result {
        guard let chromium = executable else {
            throw BrowserError.notInstalled
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("deform-browser-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let probe = """
        <script>(function(){function mark(m){console.log("DEFORM-JS-ERROR "+m);}
        window.addEventListener("error",function(e){mark(e.message);});
        window.addEventListener("unhandledrejection",function(e){mark(String(e.reason));});
        var original=console.error;console.error=function(){mark(Array.prototype.join.call(arguments," "));original.apply(console,arguments);};})();</script>
        """
        let pin = """
        <script>(function(){function report(k,v){console.log("DEFORM-STATE "+k+"="+v);}
        var root=document.querySelectorAll(".deform-viewer")[\(viewer)];
        report("viewers",document.querySelectorAll(".deform-viewer").length);
        var box=root.querySelector(".viewer");
        box.style.cssText="position:fixed;left:0;top:0;width:\(width)px;height:\(height)px;z-index:1000;margin:0;border:0;max-width:none;background:#fff";
        window.dispatchEvent(new Event("resize"));
        setTimeout(function(){report("first-draw-ms",root.dataset.firstDrawMs);report("viewer-start-ms",document.documentElement.dataset.viewerStartMs);report("decoded-ms",root.dataset.decodedMs);\(driver)
        window.dispatchEvent(new Event("resize"));},300);})();</script>
        """
        var page = html
        guard let head = page.range(of: "<head>"), let end = page.range(of: "</body>", options: .backwards) else {
            throw BrowserError.failed("the page has no <head> or </body>")
        }
        page.replaceSubrange(end, with: pin + "</body>")
        page.replaceSubrange(head, with: "<head>" + probe)
        let file = dir.appendingPathComponent("page.html")
        try Data(page.utf8).write(to: file)
        // A browser that fails to start or finish (a busy machine, a first start that builds its
        // caches) is retried once; what the page does is asserted only on a finished run.
        var text = "", shot = dir
        for attempt in 1...2 {
            do {
                (text, shot) = try launch(chromium, page: file, in: dir.appendingPathComponent("attempt-\(attempt)"), width: width, height: height)
                break
            } catch let error as BrowserError where attempt == 1 {
                print("chromium, first attempt: \(error); retrying")
            }
        }
        var state: [String: String] = [:], errors: [String] = []
        for line in text.split(separator: "\n") {
            if let r = line.range(of: "DEFORM-STATE ") {
                let pair = line[r.upperBound...].prefix { $0 != "\"" }.split(separator: "=", maxSplits: 1)
                if pair.count == 2 { state[String(pair[0])] = String(pair[1]) }
            }
            if let r = line.range(of: "DEFORM-JS-ERROR ") { errors.append(String(line[r.upperBound...])) }
            if line.contains(":CONSOLE") && line.contains("Uncaught") { errors.append(String(line)) }
        }
        return Result(log: text, screenshot: try readImage(shot), state: state, errors: errors)
    }

    /// One headless run: returns chromium's log and the screenshot's path. `timeout` runs the
    /// browser in its own process group and, past the deadline, stops all of its processes.
    static func launch(_ chromium: String, page: URL, in dir: URL, width: Int, height: Int) throws -> (String, URL) {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let shot = dir.appendingPathComponent("shot.png"), logFile = dir.appendingPathComponent("chromium.log")
        FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let seconds = 120
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = [
            "-k", "5", "\(seconds)", chromium,
            "--headless", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
            "--enable-logging=stderr", "--v=0", "--hide-scrollbars", "--no-first-run", "--disable-extensions",
            "--user-data-dir=\(dir.appendingPathComponent("profile").path)", "--window-size=\(width),\(height)",
            "--virtual-time-budget=2500", "--screenshot=\(shot.path)", page.absoluteString,
        ]
        let log = try FileHandle(forWritingTo: logFile)
        process.standardError = log
        process.standardOutput = log
        let started = Date()
        try process.run()
        while process.isRunning { Thread.sleep(forTimeInterval: 0.05) }
        try log.close()
        let text = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
        if process.terminationStatus == 124 || process.terminationStatus == 137 {
            throw BrowserError.failed("chromium did not finish within \(seconds) s:\n\(text.suffix(2000))")
        }
        guard FileManager.default.fileExists(atPath: shot.path) else {
            throw BrowserError.failed(String(format: "no screenshot; chromium exited with %d after %.1f s:\n", process.terminationStatus, Date().timeIntervalSince(started)) + String(text.suffix(2000)))
        }
        return (text, shot)
    }
}

enum BrowserError: Error, CustomStringConvertible {
    case notInstalled
    case failed(String)
    var description: String {
        switch self {
        case .notInstalled:
            return "no Chromium found (chromium, chromium-browser or google-chrome on PATH, or DEFORM_CHROMIUM); `make test` installs Debian's chromium"
        case let .failed(message): return message
        }
    }
}

/// Pixel statistics of a screenshot.
struct ScreenshotStats {
    let width: Int, height: Int
    let rgb: [UInt8]

    init(_ image: Image) {
        width = image.width; height = image.height
        let s = image.pixels.scalars, c = image.channels
        var out = [UInt8](repeating: 0, count: 3 * width * height)
        for i in 0..<(width * height) {
            for k in 0..<3 { out[3 * i + k] = UInt8((s[c * i + min(k, c - 1)] * 255).rounded()) }
        }
        rgb = out
    }

    /// Pixels within `tolerance` (per channel) of `hex`.
    func count(near hex: String, tolerance: Int = 40) -> Int {
        let v = Int(hex.dropFirst(), radix: 16)!
        let target = [(v >> 16) & 255, (v >> 8) & 255, v & 255]
        var n = 0
        for i in 0..<(width * height) where (0..<3).allSatisfy({ abs(Int(rgb[3 * i + $0]) - target[$0]) <= tolerance }) { n += 1 }
        return n
    }

    /// Pixels that are not (near) white.
    var inked: Int {
        var n = 0
        for i in 0..<(width * height) where (0..<3).contains(where: { rgb[3 * i + $0] < 235 }) { n += 1 }
        return n
    }

    /// Pixels that differ from `other` by more than 24 in some channel.
    func changed(from other: ScreenshotStats) -> Int {
        var n = 0
        for i in 0..<(width * height) where (0..<3).contains(where: { abs(Int(rgb[3 * i + $0]) - Int(other.rgb[3 * i + $0])) > 24 }) { n += 1 }
        return n
    }
}

// Like the video tests without ffmpeg, these skip (visibly) where no Chromium is installed; `make
// test`, which CI runs, installs it first, so there they always run.
@Suite("Reports in headless Chromium", .serialized, .enabled(if: Browser.executable != nil, "no Chromium on PATH; `make test` installs it"))
struct BrowserTests {
    /// A point sequence that turns a quarter turn about the vertical axis and drifts, with a
    /// ground truth offset in depth, so every frame draws differently.
    func turningSequence(frames: Int, points: Int) -> RunReport {
        var pred = [Float](), gt = [Float]()
        for f in 0..<frames {
            let a = Double(f) / Double(max(frames - 1, 1)) * .pi / 2
            for k in 0..<points {
                let x = Double(k % 5) - 2, y = Double(k / 5) * 0.6 - 1.5, z = 0.4 * sin(Double(k))
                let rx = cos(a) * x + sin(a) * z, rz = -sin(a) * x + cos(a) * z
                pred += [Float(rx), Float(y), Float(rz)]
                gt += [Float(rx + 0.15), Float(y - 0.1), Float(rz)]
            }
        }
        var report = RunReport(title: "turning")
        report.prediction = PointSequence(frames: frames, points: points, xyz: pred)
        report.groundTruth = PointSequence(frames: frames, points: points, xyz: gt)
        report.errorPerFrame = [Double](repeating: 0.18, count: frames)
        report.loss = [(0, [0, 1, 2], [3, 2, 1])]
        return report
    }

    /// The probe really sees script errors (so "no errors" elsewhere means something).
    @Test func probeCatchesScriptErrors() throws {
        let report = turningSequence(frames: 3, points: 5)
        let result = try Browser.open(report.html(), driver: "console.error('deliberate');noSuchFunction();")
        #expect(result.errors.contains { $0.contains("deliberate") }, "\(result.errors)")
        #expect(result.errors.contains { $0.contains("noSuchFunction") }, "\(result.errors)")
    }

    @Test func pointViewerDrawsBothSetsWithoutScriptErrors() throws {
        let report = turningSequence(frames: 40, points: 20)
        let result = try Browser.open(report.html())
        #expect(result.errors.isEmpty, "\(result.errors)")
        #expect(result.state["viewers"] == "1", "the probe did not run: \(result.log.suffix(1500))")
        #expect(result.state["first-draw-ms"].flatMap(Double.init) != nil)
        let stats = ScreenshotStats(result.screenshot)
        #expect(stats.width == 400 && stats.height == 300)
        // Both colours of the legend are on the canvas: 20 points of 7 px discs each.
        let pred = stats.count(near: predictionColor), gt = stats.count(near: groundTruthColor)
        #expect(pred > 200 && gt > 200, "prediction \(pred) px, ground truth \(gt) px")
        #expect(stats.inked < stats.width * stats.height / 2, "the canvas is mostly ink: \(stats.inked) px")
    }

    @Test func frameSliderAndKeysChangeTheDrawing() throws {
        let report = turningSequence(frames: 40, points: 20)
        let first = try Browser.open(report.html())
        let moved = try Browser.open(report.html(), driver: """
            var s=root.querySelector("input.frame");s.value=30;s.dispatchEvent(new Event("input"));
            report("label",root.querySelector(".frame-label").textContent.split(",")[0]);
            document.dispatchEvent(new KeyboardEvent("keydown",{key:"ArrowRight",bubbles:true}));
            report("after-key",root.querySelector(".frame-label").textContent.split(",")[0]);
            """)
        #expect(first.errors.isEmpty && moved.errors.isEmpty, "\(first.errors) \(moved.errors)")
        #expect(moved.state["label"] == "frame 31 / 40", "\(moved.state)")
        #expect(moved.state["after-key"] == "frame 32 / 40", "\(moved.state)")
        let a = ScreenshotStats(first.screenshot), b = ScreenshotStats(moved.screenshot)
        let changed = b.changed(from: a)
        #expect(changed > 300, "only \(changed) pixels changed between frame 1 and frame 32")
        #expect(b.count(near: predictionColor) > 200)
    }

    @Test func meshCloudAndGaussianViewersDraw() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("deform-browser-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("scene"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // A red octahedron (OBJ with vertex colours).
        let obj = """
        v 1 0 0 0.9 0.1 0.1
        v -1 0 0 0.9 0.1 0.1
        v 0 1 0 0.9 0.1 0.1
        v 0 -1 0 0.9 0.1 0.1
        v 0 0 1 0.9 0.1 0.1
        v 0 0 -1 0.9 0.1 0.1
        f 1 3 5
        f 3 2 5
        f 2 4 5
        f 4 1 5
        f 3 1 6
        f 2 3 6
        f 4 2 6
        f 1 4 6
        """
        try Data(obj.utf8).write(to: dir.appendingPathComponent("a-octahedron.obj"))
        // 200 green Gaussians on a ring.
        let n = 200
        let means = Tensor((0..<n).flatMap { i -> [Float] in let a = Float(i) / Float(n) * 2 * .pi; return [cos(a), sin(a), 0] }, shape: [n, 3])
        try writeGaussianPLY(to: dir.appendingPathComponent("scene/gaussians.ply"), means: means,
                             scales: Tensor([Float](repeating: 0.05, count: n), shape: [n, 1]), opacities: Tensor([Float](repeating: 0.9, count: n)),
                             colors: Tensor((0..<n).flatMap { _ in [Float(0.1), 0.8, 0.2] }, shape: [n, 3]))
        // A blue point cloud.
        try writePLY(to: dir.appendingPathComponent("b-cloud.ply"), points: Tensor((0..<300).flatMap { i -> [Float] in
            [Float(i % 20) * 0.1, Float(i / 20) * 0.1, 0] }, shape: [300, 3]), colors: [UInt8]((0..<300).flatMap { _ in [20, 40, 220] as [UInt8] }))
        let report = try RunReport.load(dir)
        #expect(report.scenes.count == 3, "\(report.scenes.map(\.title)) \(report.notes)")
        let html = report.html()
        for (index, colour) in [(0, "#e6331a"), (1, "#1428dc"), (2, "#1acc33")] {
            let result = try Browser.open(html, viewer: index)
            #expect(result.errors.isEmpty, "\(result.errors)")
            let stats = ScreenshotStats(result.screenshot)
            // Shading darkens the mesh and blending lightens the splats: compare loosely by hue.
            var hue = 0
            for i in 0..<(stats.width * stats.height) {
                let r = Int(stats.rgb[3 * i]), g = Int(stats.rgb[3 * i + 1]), b = Int(stats.rgb[3 * i + 2])
                let channel = [r, g, b], want = Int(colour.dropFirst(), radix: 16)!
                let dominant = [(want >> 16) & 255, (want >> 8) & 255, want & 255].enumerated().max { $0.element < $1.element }!.offset
                if channel[dominant] > 80 && channel.enumerated().allSatisfy({ $0.offset == dominant || $0.element < channel[dominant] - 50 }) { hue += 1 }
            }
            #expect(hue > 1500, "viewer \(index) (\(report.scenes[index].title)): \(hue) pixels of its colour")
        }
    }

    /// Opening time of a 1,000-frame, 100-point report, printed (a measurement, not an assertion).
    @Test func thousandFrameReportOpens() throws {
        let report = turningSequence(frames: 1000, points: 100)
        let html = report.html()
        let result = try Browser.open(html)
        #expect(result.errors.isEmpty, "\(result.errors)")
        let ms = try #require(result.state["first-draw-ms"].flatMap(Double.init))
        let start = try #require(result.state["viewer-start-ms"].flatMap(Double.init))
        let decoded = try #require(result.state["decoded-ms"].flatMap(Double.init))
        #expect(start <= decoded && decoded <= ms)
        // From navigation start the time includes the browser's own start-up (its software GL);
        // from the viewer script's start it is the report's decoding, set-up and first draw.
        print(String(format: "1000 frames x 100 points: %.2f MB page, first frame %.0f ms after navigation started, %.0f ms after the viewer script started (data decoded in %.0f ms)",
                     Double(html.utf8.count) / 1e6, ms, ms - start, decoded - start))
    }
}
