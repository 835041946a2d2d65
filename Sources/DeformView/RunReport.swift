import Foundation
import DeformIO

/// Why a report could not be made.
public enum ViewError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The path does not exist.
    case notFound(path: String)
    /// A file whose kind the viewer does not know (by extension), or whose content is not usable.
    case unsupportedFormat(file: String, message: String)
    /// Nothing in the folder or file can be shown; `missing` lists what was looked for.
    case nothingToShow(path: String, missing: [String])

    public var description: String {
        switch self {
        case let .notFound(path):
            return "\(path): no such file or folder"
        case let .unsupportedFormat(file, message):
            return "\(file): \(message)"
        case let .nothingToShow(path, missing):
            return "\(path): nothing to show; looked for:\n" + missing.map { "  - \($0)" }.joined(separator: "\n")
        }
    }
}

/// A sequence of 3D point sets, `frames x points x 3`, row-major Float32.
public struct PointSequence: Equatable, Sendable {
    public var frames: Int
    public var points: Int
    public var xyz: [Float]

    public init(frames: Int, points: Int, xyz: [Float]) {
        precondition(xyz.count == frames * points * 3, "PointSequence: \(xyz.count) values for \(frames)x\(points)x3")
        self.frames = frames; self.points = points; self.xyz = xyz
    }

    /// Reads `[F, P, 3]` array `entry` of an NPZ file, naming file and entry when it is absent or misshapen.
    public static func load(npz url: URL, entry: String = "points_3d") throws -> PointSequence {
        let arrays = try readNPZ(url)
        guard let array = arrays[entry] else {
            throw DeformIOError.missingEntry(file: url.path, entry: entry, available: Array(arrays.keys))
        }
        guard array.shape.count == 3, array.shape[2] == 3, array.shape[0] > 0, array.shape[1] > 0 else {
            throw DeformIOError.shapeMismatch(file: url.path, entry: entry, expected: "[frames, points, 3]",
                                              found: "\(array.shape)")
        }
        return PointSequence(frames: array.shape[0], points: array.shape[1], xyz: array.doubles().map { Float($0) })
    }

    /// Each frame's points minus that frame's centroid (orthographic reconstructions carry no translation).
    public func centredPerFrame() -> PointSequence {
        var out = xyz
        for f in 0..<frames {
            var c = (0.0, 0.0, 0.0)
            for p in 0..<points {
                let i = 3 * (f * points + p)
                c.0 += Double(xyz[i]); c.1 += Double(xyz[i + 1]); c.2 += Double(xyz[i + 2])
            }
            let n = Double(points)
            for p in 0..<points {
                let i = 3 * (f * points + p)
                out[i] = Float(Double(xyz[i]) - c.0 / n)
                out[i + 1] = Float(Double(xyz[i + 1]) - c.1 / n)
                out[i + 2] = Float(Double(xyz[i + 2]) - c.2 / n)
            }
        }
        return PointSequence(frames: frames, points: points, xyz: out)
    }
}

/// Aligns a prediction to ground truth frame by frame for display: both centred, and the
/// prediction's depth (z) flipped in the frames where that fits better — an orthographic camera
/// cannot tell a shape from its mirror image in depth, and the NRSfM metrics forgive it the same way.
/// - Returns: the centred, flipped prediction, the centred ground truth and the mean per-point
///   distance per frame (in the ground truth's unit).
public func alignForDisplay(prediction: PointSequence, groundTruth: PointSequence)
    -> (prediction: PointSequence, groundTruth: PointSequence, errorPerFrame: [Double]) {
    precondition(prediction.frames == groundTruth.frames && prediction.points == groundTruth.points)
    var p = prediction.centredPerFrame()
    let g = groundTruth.centredPerFrame()
    var errors: [Double] = []
    for f in 0..<p.frames {
        var keep = 0.0, flip = 0.0
        for k in 0..<p.points {
            let i = 3 * (f * p.points + k)
            let dx = Double(p.xyz[i] - g.xyz[i]), dy = Double(p.xyz[i + 1] - g.xyz[i + 1])
            let dz = Double(p.xyz[i + 2] - g.xyz[i + 2]), fz = Double(-p.xyz[i + 2] - g.xyz[i + 2])
            keep += (dx * dx + dy * dy + dz * dz).squareRoot()
            flip += (dx * dx + dy * dy + fz * fz).squareRoot()
        }
        if flip < keep {
            for k in 0..<p.points { p.xyz[3 * (f * p.points + k) + 2] *= -1 }
        }
        errors.append(min(keep, flip) / Double(p.points))
    }
    return (p, g, errors)
}

/// Everything a run folder (or a single result file) holds that a report can show.
///
/// Built by ``load(_:groundTruth:)``; optional parts are `nil` and explained in ``notes``.
public struct RunReport: Sendable {
    public var title: String
    /// `config.json`, flattened to dotted keys.
    public var config: [(key: String, value: String)]?
    /// `metrics.json`, flattened; long numeric arrays are summarised (and plotted when per-frame).
    public var metrics: [(key: String, value: String)]?
    /// Numeric arrays of `metrics.json` with one value per frame, by key.
    public var perFrameMetrics: [(key: String, values: [Double])] = []
    /// Loss over steps from `log.jsonl`, one series per restart.
    public var loss: [(restart: Int, steps: [Double], losses: [Double])]?
    /// Other numeric fields of `log.jsonl` lines (PSNR, learning rate, ...), one plot each.
    public var logSeries: [(key: String, steps: [Double], values: [Double])] = []
    public var prediction: PointSequence?
    public var groundTruth: PointSequence?
    /// Where the ground truth came from.
    public var groundTruthSource: String?
    /// Mean per-point distance to the ground truth per frame, after ``alignForDisplay``.
    public var errorPerFrame: [Double]?
    /// Skeleton edges between points, `2 * E` point indices (from an `edges` [E, 2] or `parents`
    /// [P] entry of the reconstruction or the tracks file), drawn for both point sets.
    public var edges: [UInt32]?
    /// Meshes, point clouds and Gaussians found in the run (see ``PanelDiscovery``).
    public var scenes: [ScenePanel] = []
    /// Pictures found in the run, embedded as they are.
    public var images: [ImagePanel] = []
    /// Depth maps found in the run, coloured with one shared range.
    public var depthMaps: [DepthMap] = []
    /// What was missing or skipped, in words for the reader.
    public var notes: [String] = []

    public init(title: String) { self.title = title }

    /// Whether anything beyond notes would be shown.
    public var hasContent: Bool {
        config != nil || metrics != nil || loss != nil || prediction != nil || groundTruth != nil || !logSeries.isEmpty
            || !scenes.isEmpty || !images.isEmpty || !depthMaps.isEmpty
    }

    /// Loads a run folder written by `deform nrsfm fit`, or one file of such a folder.
    ///
    /// Files: `reconstruction.npz` (`points_3d` `[F, P, 3]`), `config.json`, `metrics.json`,
    /// `log.jsonl`. Ground truth is `points_3d` of the tracks file that `config.json` names
    /// (tried as given, then relative to the folder and its parent), or of `groundTruth` when given.
    /// A single file may be an `.npz` with `points_3d`, a `.json` or a `.jsonl` loss log.
    /// - Throws: ``ViewError`` when the path is missing, of an unknown kind, or holds nothing to
    ///   show; ``DeformIOError`` when an explicitly given file is damaged.
    public static func load(_ url: URL, groundTruth: URL? = nil) throws -> RunReport {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw ViewError.notFound(path: url.path)
        }
        var report = RunReport(title: url.standardizedFileURL.lastPathComponent)
        var looked: [String] = []
        if isDirectory.boolValue {
            let folder = url
            let has = { (name: String) in FileManager.default.fileExists(atPath: folder.appendingPathComponent(name).path) }
            var tracksPath: String?
            if has("config.json") {
                let json = try readJSONObject(folder.appendingPathComponent("config.json"))
                report.config = flatten(json)
                tracksPath = json["tracks"]?.string
                if let method = json["method"]?.string { report.title += " (\(method))" }
            } else { report.notes.append("config.json is missing: no configuration table."); looked.append("config.json") }
            if has("metrics.json") {
                try report.addMetrics(readJSONObject(folder.appendingPathComponent("metrics.json")))
            } else { report.notes.append("metrics.json is missing: no metrics table."); looked.append("metrics.json") }
            if has("log.jsonl") {
                report.loss = try readLossLog(folder.appendingPathComponent("log.jsonl"))
                report.logSeries = try readLogSeries(folder.appendingPathComponent("log.jsonl"))
                if report.loss!.isEmpty { report.loss = nil; report.notes.append("log.jsonl holds no loss values.") }
            } else { report.notes.append("log.jsonl is missing: no training-loss plot."); looked.append("log.jsonl") }
            if has("reconstruction.npz") {
                let file = folder.appendingPathComponent("reconstruction.npz")
                report.prediction = try PointSequence.load(npz: file)
                report.edges = try skeletonEdges(readNPZ(file), points: report.prediction!.points, file: file.path, notes: &report.notes)
            } else {
                report.notes.append("reconstruction.npz is missing: no 3D reconstruction to show.")
                looked.append("reconstruction.npz (points_3d [frames, points, 3])")
            }
            let candidates: [URL]
            if let groundTruth { candidates = [groundTruth] } else if let tracksPath {
                candidates = tracksPath.hasPrefix("/") ? [URL(fileURLWithPath: tracksPath)] : [
                    URL(fileURLWithPath: tracksPath),
                    folder.appendingPathComponent(tracksPath),
                    folder.deletingLastPathComponent().appendingPathComponent(tracksPath),
                ]
            } else { candidates = [] }
            if let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) {
                if groundTruth != nil || found.pathExtension.lowercased() == "npz" {
                    let arrays = try readNPZ(found)
                    if arrays["points_3d"] != nil {
                        report.groundTruth = try PointSequence.load(npz: found)
                        report.groundTruthSource = found.path
                        if report.edges == nil {
                            report.edges = try skeletonEdges(arrays, points: report.groundTruth!.points, file: found.path, notes: &report.notes)
                        }
                    } else { report.notes.append("The tracks file \(found.path) has no points_3d: no ground truth.") }
                } else {
                    report.notes.append("The tracks file \(found.path) is not an NPZ file: no ground truth.")
                }
            } else if let tracksPath {
                report.notes.append("The tracks file \(tracksPath) named in config.json was not found (tried as given, "
                    + "and beside the run folder): no ground truth. Pass it with --ground-truth.")
            } else if groundTruth == nil {
                report.notes.append("No tracks file is recorded (config.json 'tracks'): no ground truth.")
            }
            report.addPanels(from: PanelDiscovery.files(in: folder), folder: folder)
            if report.prediction == nil && !(report.scenes.isEmpty && report.images.isEmpty && report.depthMaps.isEmpty) {
                // A run of an image or scene method: a missing point reconstruction is not news.
                report.notes.removeAll { $0.hasPrefix("reconstruction.npz is missing") || $0.hasPrefix("No tracks file") }
            }
        } else {
            let ext = url.pathExtension.lowercased()
            switch ext {
            case "npz":
                report.prediction = try PointSequence.load(npz: url)
                report.edges = try skeletonEdges(readNPZ(url), points: report.prediction!.points, file: url.path, notes: &report.notes)
                if let groundTruth {
                    report.groundTruth = try PointSequence.load(npz: groundTruth)
                    report.groundTruthSource = groundTruth.path
                } else {
                    report.notes.append("No ground truth given (--ground-truth tracks.npz): the points are shown alone.")
                }
            case "jsonl":
                report.loss = try readLossLog(url)
                report.logSeries = try readLogSeries(url)
                if report.loss!.isEmpty {
                    report.loss = nil
                    if report.logSeries.isEmpty {
                        throw ViewError.nothingToShow(path: url.path, missing: ["lines with a numeric 'loss' (or other numeric) field"])
                    }
                }
            case "json":
                let json = try readJSONObject(url)
                if url.lastPathComponent == "config.json" { report.config = flatten(json) } else { try report.addMetrics(json) }
            case "ply", "obj", "png", "jpg", "jpeg", "npy":
                if ext == "npy" && !url.lastPathComponent.lowercased().contains("depth") {
                    throw ViewError.unsupportedFormat(file: url.path, message:
                        "an .npy file is shown as a depth map only when its name contains 'depth' ([H, W] array)")
                }
                let before = report.notes.count
                report.addPanels(from: [url], folder: nil)
                if !report.hasContent {
                    throw ViewError.unsupportedFormat(file: url.path, message: report.notes.dropFirst(before).joined(separator: " "))
                }
            default:
                throw ViewError.unsupportedFormat(file: url.path, message:
                    "unknown file kind '.\(ext)'; expected a run folder, an .npz with points_3d [frames, points, 3], a .json or "
                    + "a .jsonl loss log, a mesh or Gaussians (.ply, .obj), an image (.png, .jpg) or a depth map (*depth*.npy)")
            }
        }
        if let p = report.prediction, let g = report.groundTruth {
            if p.frames == g.frames && p.points == g.points {
                let aligned = alignForDisplay(prediction: p, groundTruth: g)
                report.prediction = aligned.prediction
                report.groundTruth = aligned.groundTruth
                report.errorPerFrame = aligned.errorPerFrame
            } else {
                report.notes.append("Ground truth has \(g.frames)x\(g.points) points but the reconstruction \(p.frames)x\(p.points): ground truth not shown.")
                report.groundTruth = nil
            }
        }
        guard report.hasContent else {
            throw ViewError.nothingToShow(path: url.path, missing: looked + [
                "images (*.png, *.jpg), meshes or Gaussians (*.ply, *.obj), depth maps (*depth*.npy), in the folder or one folder down"])
        }
        return report
    }

    mutating func addMetrics(_ json: JSONValue) throws {
        metrics = flatten(json)
        if case let .object(dict) = json {
            for key in dict.keys.sorted() {
                if let values = numericArray(dict[key]), values.count > 8 { perFrameMetrics.append((key, values)) }
            }
        }
    }
}

/// Skeleton edges from an NPZ: `edges` `[E, 2]` point indices, or `parents` `[P]` (a kinematic
/// tree, -1 at roots). Bad entries become a note, not an error: the points are still worth showing.
func skeletonEdges(_ arrays: [String: NPYArray], points: Int, file: String, notes: inout [String]) throws -> [UInt32]? {
    var pairs: [Int] = []
    if let edges = arrays["edges"] {
        guard edges.shape.count == 2, edges.shape[1] == 2 else {
            notes.append("\(file): entry 'edges' should be [E, 2], found \(edges.shape); no skeleton drawn.")
            return nil
        }
        pairs = edges.doubles().map { $0.isFinite && abs($0) < 1e9 ? Int($0) : -1 }
    } else if let parents = arrays["parents"] {
        guard parents.shape == [points] else {
            notes.append("\(file): entry 'parents' should be [\(points)], found \(parents.shape); no skeleton drawn.")
            return nil
        }
        for (child, parent) in parents.doubles().enumerated() where parent >= 0 { pairs += [parent < 1e9 ? Int(parent) : -1, child] }
    } else {
        return nil
    }
    guard pairs.allSatisfy({ $0 >= 0 && $0 < points }) else {
        notes.append("\(file): skeleton indices outside 0..<\(points); no skeleton drawn.")
        return nil
    }
    return pairs.isEmpty ? nil : pairs.map { UInt32($0) }
}

/// A parsed JSON value; Codable keeps booleans and numbers apart on every platform.
enum JSONValue: Decodable {
    case bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue]), null

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    subscript(key: String) -> JSONValue? {
        if case let .object(d) = self { return d[key] }
        return nil
    }

    var string: String? { if case let .string(s) = self { return s }; return nil }
    var number: Double? { if case let .number(d) = self { return d }; return nil }
}

/// Reads a JSON file, naming the file when it cannot be read or parsed.
func readJSONObject(_ url: URL) throws -> JSONValue {
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
        throw DeformIOError.io(file: url.path, message: "cannot read: \(error.localizedDescription)")
    }
    do { return try JSONDecoder().decode(JSONValue.self, from: data) } catch {
        throw DeformIOError.corrupt(file: url.path, entry: nil, message: "not valid JSON")
    }
}

/// Reads `log.jsonl`: one JSON object per line with `step` and `loss` (and optional `restart`).
/// Lines without a numeric loss are skipped (other events may share the log); a line that is not
/// JSON is an error naming the line.
func readLossLog(_ url: URL) throws -> [(restart: Int, steps: [Double], losses: [Double])] {
    let text: String
    do { text = try String(contentsOf: url, encoding: .utf8) } catch {
        throw DeformIOError.io(file: url.path, message: "cannot read: \(error.localizedDescription)")
    }
    var byRestart: [Int: ([Double], [Double])] = [:]
    for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { continue }
        guard let object = try? JSONDecoder().decode(JSONValue.self, from: Data(trimmed.utf8)),
              case .object = object else {
            throw DeformIOError.corrupt(file: url.path, entry: "line \(n + 1)", message: "not a JSON object")
        }
        guard let loss = object["loss"]?.number else { continue }
        let step = object["step"]?.number ?? Double(byRestart.values.map(\.0.count).reduce(0, +))
        let restart = Int(object["restart"]?.number ?? 0)
        byRestart[restart, default: ([], [])].0.append(step)
        byRestart[restart, default: ([], [])].1.append(loss)
    }
    return byRestart.keys.sorted().map { ($0, byRestart[$0]!.0, byRestart[$0]!.1) }
}

/// Every numeric field of `log.jsonl` other than the loss and the bookkeeping ones, over steps,
/// so methods that log PSNR, learning rate or a metric get a plot without changes here.
func readLogSeries(_ url: URL) throws -> [(key: String, steps: [Double], values: [Double])] {
    let skip: Set<String> = ["loss", "step", "restart", "time", "seconds", "elapsed", "epoch"]
    let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
    var series: [String: ([Double], [Double])] = [:]
    var line = 0
    for raw in text.split(separator: "\n") {
        guard let object = try? JSONDecoder().decode(JSONValue.self, from: Data(raw.utf8)), case let .object(fields) = object else { continue }
        let step = fields["step"]?.number ?? Double(line)
        line += 1
        for (key, value) in fields where !skip.contains(key) {
            if let v = value.number { series[key, default: ([], [])].0.append(step); series[key, default: ([], [])].1.append(v) }
        }
    }
    return series.keys.sorted().compactMap { key in series[key]!.0.count >= 2 ? (key, series[key]!.0, series[key]!.1) : nil }
}

func numericArray(_ value: JSONValue?) -> [Double]? {
    guard case let .array(array)? = value, !array.isEmpty else { return nil }
    var out: [Double] = []
    for v in array {
        guard let n = v.number else { return nil }
        out.append(n)
    }
    return out
}

/// Flattens nested JSON to `a.b.c = value` rows; numeric arrays longer than 8 are summarised.
func flatten(_ json: JSONValue, prefix: String = "") -> [(key: String, value: String)] {
    var rows: [(key: String, value: String)] = []
    switch json {
    case let .object(dict):
        for key in dict.keys.sorted() { rows += flatten(dict[key]!, prefix: prefix.isEmpty ? key : "\(prefix).\(key)") }
    case let .array(array):
        if let values = numericArray(json), values.count > 8 {
            let mean = values.reduce(0, +) / Double(values.count)
            rows.append((prefix, "\(values.count) values, mean \(formatNumber(mean)), min \(formatNumber(values.min()!)), max \(formatNumber(values.max()!))"))
        } else if array.allSatisfy({ if case .array = $0 { return false }; if case .object = $0 { return false }; return true }) {
            rows.append((prefix, "[" + array.map { scalarText($0) }.joined(separator: ", ") + "]"))
        } else {
            for (i, v) in array.enumerated() { rows += flatten(v, prefix: "\(prefix)[\(i)]") }
        }
    default:
        rows.append((prefix.isEmpty ? "value" : prefix, scalarText(json)))
    }
    return rows
}

func scalarText(_ v: JSONValue) -> String {
    switch v {
    case let .bool(b): return b ? "true" : "false"
    case let .number(d): return formatNumber(d)
    case let .string(s): return s
    case .null: return "null"
    default: return "…"
    }
}

func formatNumber(_ x: Double) -> String {
    if x == x.rounded() && abs(x) < 1e15 { return String(Int64(x)) }
    return String(format: "%.6g", x)
}
