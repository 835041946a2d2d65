import Foundation

/// The scalar types a PLY header may name (both the classic and the sized spellings).
public enum PLYScalarType: String, Sendable {
    case int8, uint8, int16, uint16, int32, uint32, float32, float64

    init?(plyName: String) {
        switch plyName {
        case "char", "int8": self = .int8
        case "uchar", "uint8": self = .uint8
        case "short", "int16": self = .int16
        case "ushort", "uint16": self = .uint16
        case "int", "int32": self = .int32
        case "uint", "uint32": self = .uint32
        case "float", "float32": self = .float32
        case "double", "float64": self = .float64
        default: return nil
        }
    }

    var size: Int {
        switch self {
        case .int8, .uint8: return 1
        case .int16, .uint16: return 2
        case .int32, .uint32, .float32: return 4
        case .float64: return 8
        }
    }

    var isInteger: Bool { self != .float32 && self != .float64 }
}

/// One element of a PLY file (`vertex`, `face`, ...), decoded column by column.
public struct PLYElement: Sendable {
    /// A list property (such as a face's `vertex_indices`): row `i` is `values[offsets[i]..<offsets[i + 1]]`.
    public struct List: Sendable {
        public var offsets: [Int]
        public var values: [Int64]
    }

    public var name: String
    public var count: Int
    /// Property names in file order (scalar and list).
    public var propertyNames: [String] = []
    /// Scalar properties as Double columns of `count` values.
    public var scalars: [String: [Double]] = [:]
    /// The declared type of each scalar property (an 8-bit colour and a float colour differ in range).
    public var scalarTypes: [String: PLYScalarType] = [:]
    public var lists: [String: List] = [:]
}

/// A parsed PLY file (ASCII, binary little- or big-endian).
public struct PLYFile: Sendable {
    public var format: String
    public var comments: [String]
    public var elements: [PLYElement]

    public subscript(element name: String) -> PLYElement? { elements.first { $0.name == name } }
}

/// Reads a PLY file of any element layout: ASCII, `binary_little_endian` or `binary_big_endian`,
/// scalar and list properties of every PLY type.
///
/// - Throws: ``DeformIOError`` naming the file and what is wrong (bad header, unknown type,
///   truncated body, a token that is not a number).
public func readPLY(_ url: URL) throws -> PLYFile {
    let file = url.path
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
        throw DeformIOError.io(file: file, message: "cannot read: \(error.localizedDescription)")
    }
    guard data.starts(with: Data("ply".utf8)), let end = data.range(of: Data("end_header".utf8)) else {
        throw DeformIOError.corrupt(file: file, entry: nil, message: "no PLY header ('ply' ... 'end_header')")
    }
    // The body starts after the newline that ends the end_header line (\n or \r\n).
    var bodyStart = end.upperBound
    while bodyStart < data.count, data[bodyStart] != 0x0A { bodyStart += 1 }
    bodyStart += 1
    let header = String(decoding: data[..<end.lowerBound], as: UTF8.self)
    var format = "", comments: [String] = []
    // Per element: its property list of (name, scalar type or list (count type, item type)).
    var elements: [PLYElement] = []
    var layouts: [[(name: String, type: PLYScalarType, listItem: PLYScalarType?)]] = []
    for raw in header.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).dropFirst() {
        let words = raw.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard let keyword = words.first else { continue }
        switch keyword {
        case "format":
            guard words.count >= 2, ["ascii", "binary_little_endian", "binary_big_endian"].contains(words[1]) else {
                throw DeformIOError.unsupportedFormat(file: file, message: "PLY format '\(words.dropFirst().joined(separator: " "))' is not "
                    + "ascii, binary_little_endian or binary_big_endian")
            }
            format = words[1]
        case "comment", "obj_info":
            comments.append(words.dropFirst().joined(separator: " "))
        case "element":
            guard words.count == 3, let n = Int(words[2]), n >= 0 else {
                throw DeformIOError.corrupt(file: file, entry: nil, message: "bad header line '\(raw)'")
            }
            elements.append(PLYElement(name: words[1], count: n))
            layouts.append([])
        case "property":
            guard !elements.isEmpty else {
                throw DeformIOError.corrupt(file: file, entry: nil, message: "property before any element: '\(raw)'")
            }
            if words.count == 5, words[1] == "list", let countType = PLYScalarType(plyName: words[2]),
               let itemType = PLYScalarType(plyName: words[3]), countType.isInteger {
                layouts[layouts.count - 1].append((words[4], countType, itemType))
                elements[elements.count - 1].propertyNames.append(words[4])
            } else if words.count == 3, let type = PLYScalarType(plyName: words[1]) {
                layouts[layouts.count - 1].append((words[2], type, nil))
                elements[elements.count - 1].propertyNames.append(words[2])
                elements[elements.count - 1].scalarTypes[words[2]] = type
            } else {
                throw DeformIOError.unsupportedFormat(file: file, message: "PLY property line '\(raw)' has an unknown type or form")
            }
        default:
            continue
        }
    }
    guard !format.isEmpty else { throw DeformIOError.corrupt(file: file, entry: nil, message: "the header has no 'format' line") }

    var reader = PLYBodyReader(data: data, position: bodyStart, ascii: format == "ascii",
                               bigEndian: format == "binary_big_endian", file: file)
    for (e, layout) in layouts.enumerated() {
        let n = elements[e].count
        // A row takes at least one byte in any encoding: a count beyond the bytes left is a
        // damaged header, reported before anything is allocated for it.
        guard n <= data.count - min(bodyStart, data.count) else {
            throw DeformIOError.corrupt(file: file, entry: elements[e].name,
                                        message: "the header declares \(n) \(elements[e].name) rows but the body has \(max(0, data.count - bodyStart)) bytes")
        }
        var columns = layout.map { _ in [Double]() }
        var lists = layout.map { _ in PLYElement.List(offsets: [0], values: []) }
        for i in layout.indices {
            if layout[i].listItem == nil { columns[i].reserveCapacity(n) } else { lists[i].offsets.reserveCapacity(n + 1) }
        }
        for row in 0..<n {
            for (i, property) in layout.enumerated() {
                // Only formatted when an error is thrown (a 3DGS file has tens of millions of values).
                func where_() -> String { "\(elements[e].name) \(row), property \(property.name)" }
                if let item = property.listItem {
                    let length = try reader.next(property.type, at: where_)
                    guard length >= 0, length == length.rounded(), length < 1e6 else {
                        throw DeformIOError.corrupt(file: file, entry: elements[e].name, message: "bad list length \(length) at \(where_())")
                    }
                    for _ in 0..<Int(length) {
                        let value = try reader.next(item, at: where_)
                        guard value.isFinite, let index = Int64(exactly: value.rounded()) else {
                            throw DeformIOError.corrupt(file: file, entry: elements[e].name, message: "list item \(value) is not an index (at \(where_()))")
                        }
                        lists[i].values.append(index)
                    }
                    lists[i].offsets.append(lists[i].values.count)
                } else {
                    columns[i].append(try reader.next(property.type, at: where_))
                }
            }
            if reader.ascii { reader.endLine() }
        }
        for (i, property) in layout.enumerated() {
            if property.listItem == nil { elements[e].scalars[property.name] = columns[i] } else { elements[e].lists[property.name] = lists[i] }
        }
    }
    return PLYFile(format: format, comments: comments, elements: elements)
}

/// Sequential reader of a PLY body: whitespace-separated numbers (ASCII) or packed values.
private struct PLYBodyReader {
    let data: Data
    var position: Int
    let ascii: Bool
    let bigEndian: Bool
    let file: String

    mutating func next(_ type: PLYScalarType, at place: () -> String) throws -> Double {
        if ascii { return try nextToken(at: place) }
        guard position + type.size <= data.count else {
            throw DeformIOError.corrupt(file: file, entry: nil, message: "the body ends early (at \(place()))")
        }
        let start = data.startIndex + position
        position += type.size
        return data.withUnsafeBytes { raw -> Double in
            func load<T: FixedWidthInteger>(_: T.Type) -> T {
                let v = raw.loadUnaligned(fromByteOffset: start - data.startIndex, as: T.self)
                return bigEndian ? T(bigEndian: v) : T(littleEndian: v)
            }
            switch type {
            case .int8: return Double(load(Int8.self))
            case .uint8: return Double(load(UInt8.self))
            case .int16: return Double(load(Int16.self))
            case .uint16: return Double(load(UInt16.self))
            case .int32: return Double(load(Int32.self))
            case .uint32: return Double(load(UInt32.self))
            case .float32: return Double(Float(bitPattern: load(UInt32.self)))
            case .float64: return Double(bitPattern: load(UInt64.self))
            }
        }
    }

    /// ASCII rows end at a newline; extra tokens on a row are ignored.
    mutating func endLine() {
        while position < data.count, data[data.startIndex + position] != 0x0A { position += 1 }
    }

    private mutating func nextToken(at place: () -> String) throws -> Double {
        let bytes = data
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
        while position < bytes.count, isSpace(bytes[bytes.startIndex + position]) { position += 1 }
        let start = position
        while position < bytes.count, !isSpace(bytes[bytes.startIndex + position]) { position += 1 }
        guard position > start else {
            throw DeformIOError.corrupt(file: file, entry: nil, message: "the body ends early (at \(place()))")
        }
        let token = String(decoding: bytes[(bytes.startIndex + start)..<(bytes.startIndex + position)], as: UTF8.self)
        guard let value = Double(token) else {
            throw DeformIOError.corrupt(file: file, entry: nil, message: "'\(token)' is not a number (at \(place()))")
        }
        return value
    }
}

/// A triangle mesh for display and export: positions, optional per-vertex colours, triangles.
public struct TriangleMesh: Sendable, Equatable {
    /// `3 * vertexCount` values, x y z per vertex.
    public var positions: [Float]
    /// `3 * vertexCount` sRGB bytes, or `nil` when the file has no vertex colours.
    public var colors: [UInt8]?
    /// `3 * triangleCount` vertex indices; polygons are split into fans.
    public var triangles: [UInt32]

    public var vertexCount: Int { positions.count / 3 }
    public var triangleCount: Int { triangles.count / 3 }

    public init(positions: [Float], colors: [UInt8]? = nil, triangles: [UInt32]) {
        self.positions = positions; self.colors = colors; self.triangles = triangles
    }
}

/// Reads a mesh from `.ply` (a `vertex` element with `x y z`, optional `red green blue` or
/// `r g b` as bytes or as floats in 0...1, and an optional `face` element with a
/// `vertex_indices`/`vertex_index` list) or `.obj` (`v x y z [r g b]`, `f` with `i`, `i/t`,
/// `i//n`, `i/t/n` and negative indices). A PLY without faces gives a mesh with no triangles (a
/// point cloud).
///
/// - Throws: ``DeformIOError`` naming the file, and the line or entry at fault.
public func readMesh(_ url: URL) throws -> TriangleMesh {
    switch url.pathExtension.lowercased() {
    case "ply": return try meshFromPLY(readPLY(url), file: url.path)
    case "obj": return try readOBJ(url)
    default:
        throw DeformIOError.unsupportedFormat(file: url.path, message: "not a mesh file; expected .ply or .obj")
    }
}

/// The mesh of an already parsed PLY (see ``readMesh(_:)``); `file` names it in errors.
public func meshFromPLY(_ ply: PLYFile, file: String) throws -> TriangleMesh {
    guard let vertex = ply[element: "vertex"] else {
        throw DeformIOError.missingEntry(file: file, entry: "vertex", available: ply.elements.map(\.name))
    }
    guard let x = vertex.scalars["x"], let y = vertex.scalars["y"], let z = vertex.scalars["z"] else {
        throw DeformIOError.missingEntry(file: file, entry: "vertex x, y, z", available: vertex.propertyNames)
    }
    let n = vertex.count
    var positions = [Float](repeating: 0, count: 3 * n)
    for i in 0..<n { positions[3 * i] = Float(x[i]); positions[3 * i + 1] = Float(y[i]); positions[3 * i + 2] = Float(z[i]) }
    var colors: [UInt8]?
    for names in [["red", "green", "blue"], ["r", "g", "b"], ["diffuse_red", "diffuse_green", "diffuse_blue"]] {
        guard let r = vertex.scalars[names[0]], let g = vertex.scalars[names[1]], let b = vertex.scalars[names[2]] else { continue }
        // Integer colours are 0...255 (or 0...65535 for 16-bit types); float colours are 0...1.
        let type = vertex.scalarTypes[names[0]] ?? .uint8
        let scale: Double = type.isInteger ? (type.size == 1 ? 1 : 255.0 / 65535.0) : 255
        func byte(_ v: Double) -> UInt8 { UInt8(max(0, min(255, (v * scale).rounded()))) }
        var c = [UInt8](repeating: 0, count: 3 * n)
        for i in 0..<n { c[3 * i] = byte(r[i]); c[3 * i + 1] = byte(g[i]); c[3 * i + 2] = byte(b[i]) }
        colors = c
        break
    }
    var triangles: [UInt32] = []
    if let face = ply[element: "face"] {
        guard let list = face.lists["vertex_indices"] ?? face.lists["vertex_index"] else {
            throw DeformIOError.missingEntry(file: file, entry: "face vertex_indices", available: face.propertyNames)
        }
        for f in 0..<face.count {
            let polygon = list.values[list.offsets[f]..<list.offsets[f + 1]]
            try appendFan(Array(polygon), vertexCount: n, to: &triangles, file: file, place: "face \(f)")
        }
    }
    return TriangleMesh(positions: positions, colors: colors, triangles: triangles)
}

private func appendFan(_ polygon: [Int64], vertexCount n: Int, to triangles: inout [UInt32], file: String, place: String) throws {
    guard polygon.count >= 3 else {
        throw DeformIOError.corrupt(file: file, entry: nil, message: "\(place) has \(polygon.count) vertices; a face needs at least 3")
    }
    for index in polygon where index < 0 || index >= Int64(n) {
        throw DeformIOError.corrupt(file: file, entry: nil, message: "\(place) uses vertex \(index); the mesh has \(n) vertices")
    }
    for k in 1..<(polygon.count - 1) {
        triangles.append(UInt32(polygon[0])); triangles.append(UInt32(polygon[k])); triangles.append(UInt32(polygon[k + 1]))
    }
}

func readOBJ(_ url: URL) throws -> TriangleMesh {
    let file = url.path
    let text: String
    do { text = try String(contentsOf: url, encoding: .utf8) } catch {
        throw DeformIOError.io(file: file, message: "cannot read: \(error.localizedDescription)")
    }
    var positions: [Float] = [], colors: [UInt8] = [], anyColor = false
    var faces: [(line: Int, polygon: [Int64])] = []
    for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let words = raw.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
        guard let keyword = words.first else { continue }
        if keyword == "v" {
            let values = words.dropFirst().map { Float($0) }
            guard values.count == 3 || values.count == 4 || values.count == 6 || values.count == 7, values.allSatisfy({ $0 != nil }) else {
                throw DeformIOError.corrupt(file: file, entry: "line \(number + 1)", message: "a vertex needs x y z [w] or x y z r g b")
            }
            positions += values[0..<3].map { $0! }
            if values.count >= 6 {
                anyColor = true
                colors += values[3..<6].map { UInt8(max(0, min(255, ($0! * 255).rounded()))) }
            } else {
                colors += [200, 200, 200]
            }
        } else if keyword == "f" {
            var polygon: [Int64] = []
            for word in words.dropFirst() {
                guard let first = word.split(separator: "/", omittingEmptySubsequences: false).first, let index = Int64(first), index != 0 else {
                    throw DeformIOError.corrupt(file: file, entry: "line \(number + 1)", message: "'\(word)' is not a vertex reference")
                }
                // 1-based; negative indices count back from the last vertex read so far.
                polygon.append(index > 0 ? index - 1 : Int64(positions.count / 3) + index)
            }
            faces.append((number + 1, polygon))
        }
    }
    var triangles: [UInt32] = []
    for face in faces {
        try appendFan(face.polygon, vertexCount: positions.count / 3, to: &triangles, file: file, place: "line \(face.line)")
    }
    return TriangleMesh(positions: positions, colors: anyColor ? colors : nil, triangles: triangles)
}

/// 3D Gaussians read from an INRIA-layout 3DGS `.ply`, activated for display.
public struct GaussianCloud: Sendable {
    /// `3 * count` centres.
    public var means: [Float]
    /// `3 * count` standard deviations (`exp` of the stored log-scales).
    public var scales: [Float]
    /// `count` opacities in 0...1 (the sigmoid of the stored logits).
    public var opacities: [Float]
    /// `3 * count` RGB of the constant SH term, `0.5 + C0 * f_dc`, clamped to 0...1 (the colour
    /// seen from every direction when the higher-order terms are ignored).
    public var baseColors: [Float]
    /// Spherical-harmonic degree implied by the number of `f_rest_*` properties (0-3).
    public var shDegree: Int

    public var count: Int { opacities.count }

    public init(means: [Float], scales: [Float], opacities: [Float], baseColors: [Float], shDegree: Int) {
        precondition(means.count == 3 * opacities.count && scales.count == means.count && baseColors.count == means.count,
                     "GaussianCloud: means, scales and colours need 3 values per opacity")
        self.means = means; self.scales = scales; self.opacities = opacities; self.baseColors = baseColors; self.shDegree = shDegree
    }
}

/// Whether a parsed PLY has the 3DGS vertex properties (`f_dc_0`, `opacity`, `scale_0`).
public func isGaussianPLY(_ ply: PLYFile) -> Bool {
    guard let v = ply[element: "vertex"] else { return false }
    return v.scalars["f_dc_0"] != nil && v.scalars["opacity"] != nil && v.scalars["scale_0"] != nil
}

/// Reads Gaussians from a 3DGS `.ply` (as written by ``writeGaussianPLY(to:means:scales:quaternions:opacities:colors:)``
/// and the reference implementation).
public func readGaussianPLY(_ url: URL) throws -> GaussianCloud {
    try gaussiansFromPLY(readPLY(url), file: url.path)
}

/// The Gaussians of an already parsed 3DGS PLY (see ``readGaussianPLY(_:)``); `file` names it in errors.
public func gaussiansFromPLY(_ ply: PLYFile, file: String) throws -> GaussianCloud {
    guard let v = ply[element: "vertex"] else {
        throw DeformIOError.missingEntry(file: file, entry: "vertex", available: ply.elements.map(\.name))
    }
    let required = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2"]
    let columns = required.map { v.scalars[$0] }
    if let missing = required.indices.first(where: { columns[$0] == nil }) {
        throw DeformIOError.missingEntry(file: file, entry: "vertex \(required[missing]) (3DGS layout)", available: v.propertyNames)
    }
    let c = columns.map { $0! }
    let n = v.count
    let c0 = shC0
    var means = [Float](repeating: 0, count: 3 * n), scales = means, colors = means
    var opacities = [Float](repeating: 0, count: n)
    for i in 0..<n {
        for k in 0..<3 {
            means[3 * i + k] = Float(c[k][i])
            colors[3 * i + k] = Float(min(1, max(0, 0.5 + c0 * c[3 + k][i])))
            scales[3 * i + k] = Float(exp(c[7 + k][i]))
        }
        opacities[i] = Float(1 / (1 + exp(-c[6][i])))
    }
    let rest = v.propertyNames.filter { $0.hasPrefix("f_rest_") }.count
    let degree = [0: 0, 9: 1, 24: 2, 45: 3][rest] ?? 0
    return GaussianCloud(means: means, scales: scales, opacities: opacities, baseColors: colors, shDegree: degree)
}
