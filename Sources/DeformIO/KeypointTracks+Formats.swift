import Foundation
import DeformTensor

// MARK: - NPZ

extension KeypointTracks {
    /// Reads an `.npz` with `points_2d` [F, P, 2], optional `visibility` [F, P] (any numeric or
    /// boolean dtype, 0/1) and optional `points_3d` [F, P, 3].
    public static func readNPZ(_ url: URL) throws -> KeypointTracks {
        let arrays = try DeformIO.readNPZ(url)
        return try fromArrays(arrays, source: url.path)
    }

    /// Builds tracks from already-decoded NPZ arrays; `source` labels errors.
    public static func fromArrays(_ arrays: [String: NPYArray], source: String) throws -> KeypointTracks {
        guard let points2D = arrays["points_2d"] else {
            throw DeformIOError.missingEntry(file: source, entry: "points_2d", available: Array(arrays.keys))
        }
        return try validated(points2D: points2D.tensor(), visibility: arrays["visibility"]?.tensor(),
                             points3D: arrays["points_3d"]?.tensor(), source: source, names: .npz)
    }
}

// MARK: - C3DPO-style JSON

/// How a JSON value looks, for error messages ("[41, 2]", "a string", ...).
private func jsonShape(_ value: Any) -> String {
    if let list = value as? [Any] {
        let inner = list.map { jsonShape($0) }
        if let first = inner.first, inner.allSatisfy({ $0 == first }), first.hasPrefix("[") {
            return "[\(list.count), " + first.dropFirst()
        }
        if inner.allSatisfy({ $0 == "a number" }) { return "[\(list.count)]" }
        return "a list of \(list.count) items of mixed shapes"
    }
    if value is NSNull { return "null" }
    if value is String { return "a string" }
    if value is [String: Any] { return "an object" }
    if value is NSNumber || value is Bool || value is Double || value is Int { return "a number" }
    return "\(type(of: value))"
}

/// A JSON number (or boolean) as Double; `null` reads as NaN, meaning "missing".
private func jsonNumber(_ value: Any) -> Double? {
    if value is NSNull { return .nan }
    // NSNumber first: bridging a number such as 2 to Bool would silently turn it into 1.
    if let n = value as? NSNumber { return n.doubleValue }
    if let b = value as? Bool { return b ? 1 : 0 }
    if let d = value as? Double { return d }
    if let i = value as? Int { return Double(i) }
    return nil
}

private func jsonVector(_ value: Any, count: Int?) -> [Double]? {
    guard let list = value as? [Any], count == nil || list.count == count else { return nil }
    var out: [Double] = []
    out.reserveCapacity(list.count)
    for v in list {
        guard let d = jsonNumber(v) else { return nil }
        out.append(d)
    }
    return out
}

private func jsonMatrix(_ value: Any, rows: Int, cols: Int?) -> [[Double]]? {
    guard let list = value as? [Any], list.count == rows else { return nil }
    let cols = cols ?? (list.first as? [Any])?.count
    var out: [[Double]] = []
    for row in list {
        guard let r = jsonVector(row, count: cols) else { return nil }
        out.append(r)
    }
    return out
}

extension KeypointTracks {
    /// Reads C3DPO-style JSON: a list of frames `{"kp_loc": 2 x P, "kp_vis": P, "kp_loc_3d": 3 x P}`,
    /// or an object holding that list under `"data"` (the layout of C3DPO's dataset files).
    ///
    /// `kp_vis` and `kp_loc_3d` are optional, but `kp_loc_3d` must be in every frame or in none.
    /// `null` coordinates read as missing and are allowed only where `kp_vis` is 0.
    public static func readJSON(_ url: URL) throws -> KeypointTracks {
        try decodeJSON(readFileData(url), source: url.path)
    }

    /// Decodes C3DPO-style JSON bytes (see ``readJSON(_:)``); `source` labels errors.
    public static func decodeJSON(_ data: Data, source: String) throws -> KeypointTracks {
        let root: Any
        do { root = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) } catch {
            throw DeformIOError.corrupt(file: source, entry: nil, message: "not valid JSON (\(error.localizedDescription))")
        }
        let frames: [Any], prefix: String
        if let list = root as? [Any] {
            (frames, prefix) = (list, "")
        } else if let object = root as? [String: Any] {
            guard let data = object["data"] else {
                throw DeformIOError.missingEntry(file: source, entry: "data", available: Array(object.keys))
            }
            guard let list = data as? [Any] else {
                throw DeformIOError.shapeMismatch(file: source, entry: "data", expected: "a list of frame objects", found: jsonShape(data))
            }
            (frames, prefix) = (list, "data")
        } else {
            throw DeformIOError.unsupportedFormat(file: source, message: "expected a list of frame objects or an object with a 'data' list, found \(jsonShape(root))")
        }
        guard !frames.isEmpty else {
            throw DeformIOError.shapeMismatch(file: source, entry: prefix.isEmpty ? "(top-level list)" : prefix,
                                              expected: "a list of at least 1 frame", found: "an empty list")
        }
        var pointCount: Int?
        var hasVisibility = false, has3D = false
        var xy: [Float] = [], vis: [Float] = [], xyz: [Float] = []
        for (f, item) in frames.enumerated() {
            let entry = "\(prefix)[\(f)]"
            guard let frame = item as? [String: Any] else {
                throw DeformIOError.shapeMismatch(file: source, entry: entry, expected: "an object with kp_loc (2 x P)", found: jsonShape(item))
            }
            guard let locValue = frame["kp_loc"] else {
                throw DeformIOError.missingEntry(file: source, entry: "\(entry).kp_loc", available: Array(frame.keys))
            }
            guard let loc = jsonMatrix(locValue, rows: 2, cols: pointCount) else {
                throw DeformIOError.shapeMismatch(file: source, entry: "\(entry).kp_loc",
                                                  expected: pointCount.map { "[2, \($0)] (2 x P, P from frame 0)" } ?? "[2, P] (a row of x and a row of y)",
                                                  found: jsonShape(locValue))
            }
            let p = loc[0].count
            if pointCount == nil {
                pointCount = p
                hasVisibility = frame["kp_vis"] != nil
                has3D = frame["kp_loc_3d"] != nil
            }
            for i in 0..<p { xy.append(Float(loc[0][i])); xy.append(Float(loc[1][i])) }
            if let visValue = frame["kp_vis"] {
                guard let v = jsonVector(visValue, count: p) else {
                    throw DeformIOError.shapeMismatch(file: source, entry: "\(entry).kp_vis", expected: "[\(p)] (one flag per point)", found: jsonShape(visValue))
                }
                vis.append(contentsOf: v.map { Float($0) })
            } else if hasVisibility {
                throw DeformIOError.missingEntry(file: source, entry: "\(entry).kp_vis", available: Array(frame.keys))
            } else {
                vis.append(contentsOf: repeatElement(1, count: p))
            }
            if let value = frame["kp_loc_3d"] {
                guard has3D else {
                    throw DeformIOError.invalidValue(file: source, entry: "\(entry).kp_loc_3d",
                                                     message: "frame \(f) has kp_loc_3d but frame 0 does not; give it in every frame or in none")
                }
                guard let m = jsonMatrix(value, rows: 3, cols: p) else {
                    throw DeformIOError.shapeMismatch(file: source, entry: "\(entry).kp_loc_3d", expected: "[3, \(p)] (3 x P)", found: jsonShape(value))
                }
                for i in 0..<p { xyz.append(Float(m[0][i])); xyz.append(Float(m[1][i])); xyz.append(Float(m[2][i])) }
            } else if has3D {
                throw DeformIOError.missingEntry(file: source, entry: "\(entry).kp_loc_3d", available: Array(frame.keys))
            }
        }
        let f = frames.count, p = pointCount!
        return try validated(points2D: Tensor(xy, shape: [f, p, 2]), visibility: Tensor(vis, shape: [f, p]),
                             points3D: has3D ? Tensor(xyz, shape: [f, p, 3]) : nil, source: source, names: .json)
    }
}

// MARK: - CSV

extension KeypointTracks {
    /// Largest F x P a CSV may imply; beyond it an index is almost surely a typo, and allocating
    /// for it would exhaust memory before the real error could be reported.
    static let maxCSVEntries = 50_000_000

    /// Reads CSV rows `frame, point, u, v[, visible]`, with or without a header line.
    ///
    /// Indices are 0-based; F and P are one more than the largest indices. A (frame, point) pair
    /// with no row is missing (invisible). A header may name the columns in any order
    /// (`frame`, `point`/`keypoint`/`joint`, `u`/`x`, `v`/`y`, `visible`/`vis`/`visibility`).
    /// Blank lines and lines starting with `#` are skipped.
    public static func readCSV(_ url: URL) throws -> KeypointTracks {
        let data = try readFileData(url)
        guard let text = String(data: data, encoding: .utf8) else {
            throw DeformIOError.corrupt(file: url.path, entry: nil, message: "not UTF-8 text")
        }
        return try decodeCSV(text, source: url.path)
    }

    /// Decodes CSV text (see ``readCSV(_:)``); `source` labels errors.
    public static func decodeCSV(_ text: String, source: String) throws -> KeypointTracks {
        let aliases: [(column: String, names: Set<String>)] = [
            ("frame", ["frame", "f", "frame_id", "frame_index"]),
            ("point", ["point", "p", "point_id", "point_index", "keypoint", "joint"]),
            ("u", ["u", "x"]),
            ("v", ["v", "y"]),
            ("visible", ["visible", "vis", "visibility"]),
        ]
        var columnIndex: [String: Int]?  // column name -> field position
        var fieldCount = 0
        struct Row { let line: Int; let frame: Int; let point: Int; let u: Double; let v: Double; let visible: Bool }
        var rows: [Row] = []
        var lineNumber = 0
        // "\r\n" is one Character in Swift, so split on every kind of line break, not on "\n".
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0.isNewline }) {
            lineNumber += 1
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            let entry = "line \(lineNumber)"
            if columnIndex == nil {
                fieldCount = fields.count
                guard fieldCount == 4 || fieldCount == 5 else {
                    throw DeformIOError.shapeMismatch(file: source, entry: entry, expected: "4 or 5 columns (frame, point, u, v[, visible])",
                                                      found: "\(fieldCount) column\(fieldCount == 1 ? "" : "s")")
                }
                if fields.prefix(4).contains(where: { Double($0) == nil }) {
                    // A header line: map its names onto the columns.
                    var map: [String: Int] = [:]
                    for (i, name) in fields.enumerated() {
                        let key = name.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
                        guard let column = aliases.first(where: { $0.names.contains(key) })?.column else {
                            throw DeformIOError.invalidValue(file: source, entry: entry,
                                                             message: "unknown column '\(name)' in the header; expected frame, point, u, v[, visible]")
                        }
                        guard map[column] == nil else {
                            throw DeformIOError.invalidValue(file: source, entry: entry, message: "the header names column '\(column)' twice")
                        }
                        map[column] = i
                    }
                    for required in ["frame", "point", "u", "v"] where map[required] == nil {
                        throw DeformIOError.missingEntry(file: source, entry: "column '\(required)'", available: fields)
                    }
                    columnIndex = map
                    continue
                }
                columnIndex = ["frame": 0, "point": 1, "u": 2, "v": 3]
                if fieldCount == 5 { columnIndex!["visible"] = 4 }
            }
            guard fields.count == fieldCount else {
                throw DeformIOError.shapeMismatch(file: source, entry: entry, expected: "\(fieldCount) columns like the first line",
                                                  found: "\(fields.count) column\(fields.count == 1 ? "" : "s")")
            }
            let columns = columnIndex!
            func index(_ column: String) throws -> Int {
                let field = fields[columns[column]!]
                if let n = Int(field), n >= 0 { return n }
                if let d = Double(field), d >= 0, d == d.rounded(), d < 1e15 { return Int(d) }
                throw DeformIOError.invalidValue(file: source, entry: entry, message: "\(column) '\(field)' is not a non-negative integer index")
            }
            func coordinate(_ column: String) throws -> Double {
                let field = fields[columns[column]!]
                guard let d = Double(field) else {
                    throw DeformIOError.invalidValue(file: source, entry: entry, message: "\(column) '\(field)' is not a number")
                }
                return d
            }
            var visible = true
            if let vi = columns["visible"] {
                switch fields[vi].lowercased() {
                case "1", "1.0", "true": visible = true
                case "0", "0.0", "false": visible = false
                default:
                    throw DeformIOError.invalidValue(file: source, entry: entry, message: "visible '\(fields[vi])' is not 0 or 1")
                }
            }
            rows.append(Row(line: lineNumber, frame: try index("frame"), point: try index("point"),
                            u: try coordinate("u"), v: try coordinate("v"), visible: visible))
        }
        guard !rows.isEmpty else {
            throw DeformIOError.shapeMismatch(file: source, entry: "rows", expected: "at least one row frame, point, u, v[, visible]", found: "no data rows")
        }
        let f = rows.map(\.frame).max()! + 1, p = rows.map(\.point).max()! + 1
        guard f.multipliedReportingOverflow(by: p).partialValue <= maxCSVEntries, f < maxCSVEntries, p < maxCSVEntries else {
            throw DeformIOError.invalidValue(file: source, entry: "frame, point",
                                             message: "the largest indices (frame \(f - 1), point \(p - 1)) imply \(f) x \(p) entries; indices must be 0-based and dense")
        }
        if !rows.contains(where: { $0.frame == 0 }) {
            throw DeformIOError.invalidValue(file: source, entry: "frame", message: "no row has frame 0; frame indices are 0-based")
        }
        if !rows.contains(where: { $0.point == 0 }) {
            throw DeformIOError.invalidValue(file: source, entry: "point", message: "no row has point 0; point indices are 0-based")
        }
        var xy = [Float](repeating: 0, count: f * p * 2)
        var vis = [Float](repeating: 0, count: f * p)
        var firstLine = [Int](repeating: 0, count: f * p)
        for row in rows {
            let i = row.frame * p + row.point
            if firstLine[i] != 0 {
                throw DeformIOError.invalidValue(file: source, entry: "line \(row.line)",
                                                 message: "frame \(row.frame), point \(row.point) was already given on line \(firstLine[i])")
            }
            firstLine[i] = row.line
            xy[2 * i] = Float(row.u)
            xy[2 * i + 1] = Float(row.v)
            vis[i] = row.visible ? 1 : 0
        }
        return try validated(points2D: Tensor(xy, shape: [f, p, 2]), visibility: Tensor(vis, shape: [f, p]),
                             points3D: nil, source: source, names: .csv)
    }
}
