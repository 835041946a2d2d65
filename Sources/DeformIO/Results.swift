import Foundation
import DeformTensor

/// Writes a reconstruction as `.npz`: `points_3d` [F, P, 3] in the camera frame, `rotations`
/// [F, 3, 3], and any `extra` arrays (canonical shapes, latent codes, ...), all `<f4`, atomically.
///
/// Shapes are checked before anything is written, so a wrong call leaves no file behind.
public func writeReconstruction(to url: URL, points3D: Tensor, rotations: Tensor,
                                extra: [String: Tensor] = [:], compressed: Bool = true) throws {
    let s = points3D.shape
    guard s.count == 3, s[2] == 3 else {
        throw DeformIOError.shapeMismatch(file: url.path, entry: "points_3d", expected: "[F, P, 3]", found: shapeString(s))
    }
    guard rotations.shape == [s[0], 3, 3] else {
        throw DeformIOError.shapeMismatch(file: url.path, entry: "rotations",
                                          expected: "\(shapeString([s[0], 3, 3])) (F x 3 x 3, F from points_3d)",
                                          found: shapeString(rotations.shape))
    }
    var arrays: [String: NPYArray] = ["points_3d": NPYArray(points3D), "rotations": NPYArray(rotations)]
    for (name, tensor) in extra {
        guard arrays[name] == nil else {
            throw DeformIOError.invalidValue(file: url.path, entry: name, message: "extra array name collides with a required entry")
        }
        arrays[name] = NPYArray(tensor)
    }
    try writeNPZ(arrays, to: url, compressed: compressed)
}

/// Encodes `value` as pretty-printed JSON with sorted keys and writes it atomically.
///
/// Sorted keys keep files diffable between runs. NaN and ±Inf (a diverged metric, say) are
/// written as the strings `"NaN"`, `"Infinity"`, `"-Infinity"` instead of failing the whole write.
public func writeJSON<T: Encodable>(_ value: T, to url: URL) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
    let data: Data
    do { data = try encoder.encode(value) } catch {
        throw DeformIOError.invalidValue(file: url.path, entry: "\(T.self)", message: "cannot encode as JSON: \(error)")
    }
    try writeAtomically(data + Data("\n".utf8), to: url)
}

/// PLY encodings.
public enum PLYFormat: Sendable {
    case ascii
    case binaryLittleEndian
}

/// Writes a point cloud as PLY (`x y z` as float32, optional `red green blue` as uchar), atomically.
///
/// - Parameters:
///   - points: [P, 3].
///   - colors: 3 · P bytes, row-major [P, 3] RGB, or `nil`.
public func writePLY(to url: URL, points: Tensor, colors: [UInt8]? = nil, format: PLYFormat = .binaryLittleEndian) throws {
    guard points.rank == 2, points.shape[1] == 3 else {
        throw DeformIOError.shapeMismatch(file: url.path, entry: "points", expected: "[P, 3]", found: shapeString(points.shape))
    }
    let n = points.shape[0]
    if let colors, colors.count != 3 * n {
        throw DeformIOError.shapeMismatch(file: url.path, entry: "colors", expected: "\(shapeString([n, 3])) (\(3 * n) bytes)",
                                          found: "\(colors.count) bytes")
    }
    var header = "ply\nformat \(format == .ascii ? "ascii" : "binary_little_endian") 1.0\n"
    header += "comment written by Deform\nelement vertex \(n)\n"
    header += "property float x\nproperty float y\nproperty float z\n"
    if colors != nil { header += "property uchar red\nproperty uchar green\nproperty uchar blue\n" }
    header += "end_header\n"
    var data = Data(header.utf8)
    let xyz = points.scalars
    switch format {
    case .ascii:
        var body = ""
        body.reserveCapacity(n * 40)
        for i in 0..<n {
            // %.9g round-trips Float32 exactly.
            body += String(format: "%.9g %.9g %.9g", xyz[3 * i], xyz[3 * i + 1], xyz[3 * i + 2])
            if let colors { body += " \(colors[3 * i]) \(colors[3 * i + 1]) \(colors[3 * i + 2])" }
            body += "\n"
        }
        data.append(contentsOf: body.utf8)
    case .binaryLittleEndian:
        let stride = 12 + (colors == nil ? 0 : 3)
        var body = [UInt8](repeating: 0, count: n * stride)
        body.withUnsafeMutableBytes { raw in
            for i in 0..<n {
                for k in 0..<3 {
                    raw.storeBytes(of: xyz[3 * i + k].bitPattern.littleEndian, toByteOffset: i * stride + 4 * k, as: UInt32.self)
                }
                if let colors { for k in 0..<3 { raw[i * stride + 12 + k] = colors[3 * i + k] } }
            }
        }
        data.append(contentsOf: body)
    }
    try writeAtomically(data, to: url)
}
