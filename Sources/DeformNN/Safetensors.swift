import Foundation
import DeformTensor

/// Why a checkpoint could not be read, written or applied. Every case names the file (when there
/// is one) and what was expected.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    public struct ShapeMismatch: Equatable, Sendable {
        public var name: String
        public var expected: [Int]
        public var found: [Int]
        public init(name: String, expected: [Int], found: [Int]) {
            self.name = name
            self.expected = expected
            self.found = found
        }
    }

    /// The file could not be opened, read or written.
    case io(file: String, message: String)
    /// The bytes are not a valid safetensors file.
    case corrupt(file: String, message: String)
    /// A tensor uses an element type this reader does not convert.
    case unsupportedDType(file: String, tensor: String, dtype: String)
    /// The file's tensors do not match the model's parameters and buffers.
    case mismatch(file: String?, missing: [String], unexpected: [String], shapeMismatches: [ShapeMismatch])
    /// A tensor has the right name but a value that cannot be state (e.g. a negative step count).
    case invalidState(file: String?, tensor: String, message: String)

    public var description: String {
        switch self {
        case let .io(file, message):
            return "checkpoint \(file): \(message)"
        case let .corrupt(file, message):
            return "checkpoint \(file) is not a valid safetensors file: \(message)"
        case let .unsupportedDType(file, tensor, dtype):
            return "checkpoint \(file): tensor '\(tensor)' has dtype \(dtype); supported: F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL"
        case let .mismatch(file, missing, unexpected, shapes):
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing \(missing.count) tensor(s) the model needs: \(missing.joined(separator: ", "))") }
            if !unexpected.isEmpty { parts.append("\(unexpected.count) unexpected tensor(s) the model does not have: \(unexpected.joined(separator: ", "))") }
            if !shapes.isEmpty {
                parts.append("\(shapes.count) shape mismatch(es): " + shapes.map { "\($0.name) expected \($0.expected) found \($0.found)" }.joined(separator: "; "))
            }
            return "checkpoint \(file ?? "state") does not match the model: " + parts.joined(separator: "; ")
        case let .invalidState(file, tensor, message):
            return "checkpoint \(file ?? "state"): tensor '\(tensor)' \(message)"
        }
    }
}

extension CheckpointError {
    /// The same error, naming `file` where it had none (state checked after it was read).
    func naming(file path: String) -> CheckpointError {
        switch self {
        case let .mismatch(nil, missing, unexpected, shapes):
            return .mismatch(file: path, missing: missing, unexpected: unexpected, shapeMismatches: shapes)
        case let .invalidState(nil, tensor, message):
            return .invalidState(file: path, tensor: tensor, message: message)
        default:
            return self
        }
    }
}

// MARK: - Format

/// Largest header the reader accepts (the reference implementation's limit).
private let maxHeaderBytes = 100_000_000

private let elementSizes: [String: Int] = [
    "F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
]

/// Converts IEEE half-precision bits to Float.
@inline(__always) private func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h >> 15) << 31
    let exp = Int((h >> 10) & 0x1F)
    let mant = UInt32(h & 0x3FF)
    if exp == 0 {
        // Zero or subnormal: mant · 2^-24.
        let v = Float(mant) * Float(bitPattern: 0x3380_0000)
        return sign != 0 ? -v : v
    }
    if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
    return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
}

private func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}

/// Encodes tensors as a safetensors file: an 8-byte little-endian header length, a JSON header
/// `{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}}`
/// padded with spaces to a multiple of 8 bytes, then the raw little-endian data in the order of
/// the (sorted) names.
public func encodeSafetensors(_ tensors: [String: Tensor], metadata: [String: String] = [:]) -> Data {
    let names = tensors.keys.sorted()
    var entries: [String] = []
    if !metadata.isEmpty {
        let m = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }.joined(separator: ",")
        entries.append("\"__metadata__\":{\(m)}")
    }
    var offset = 0
    for name in names {
        let t = tensors[name]!
        let bytes = t.count * 4
        entries.append("\(jsonString(name)):{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}")
        offset += bytes
    }
    var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
    while header.count % 8 != 0 { header.append(0x20) }
    var data = Data(capacity: 8 + header.count + offset)
    withUnsafeBytes(of: UInt64(header.count).littleEndian) { data.append(contentsOf: $0) }
    data.append(contentsOf: header)
    for name in names {
        let t = tensors[name]!
        t.withUnsafeBufferPointer { p in
            if UInt32(1).littleEndian == 1 {
                data.append(UnsafeBufferPointer(start: UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: UInt8.self), count: p.count * 4))
            } else {
                for v in p { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
            }
        }
    }
    return data
}

/// Decodes safetensors bytes; `file` only labels errors. Every size and offset is validated
/// before any data is read, so a corrupt or truncated file throws instead of crashing.
public func decodeSafetensors(_ data: Data, file: String = "<memory>") throws -> (tensors: [String: Tensor], metadata: [String: String]) {
    func corrupt(_ message: String) -> CheckpointError { .corrupt(file: file, message: message) }
    guard data.count >= 8 else { throw corrupt("file is \(data.count) bytes, shorter than the 8-byte header length") }
    let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    guard headerLength <= UInt64(maxHeaderBytes) else { throw corrupt("header length \(headerLength) exceeds the \(maxHeaderBytes)-byte limit") }
    guard headerLength <= UInt64(data.count - 8) else {
        throw corrupt("header length \(headerLength) runs past the end of the file (\(data.count - 8) bytes after the length field); the file is truncated")
    }
    let hl = Int(headerLength)
    let start = data.startIndex
    let headerData = data.subdata(in: (start + 8)..<(start + 8 + hl))
    let json: Any
    do { json = try JSONSerialization.jsonObject(with: headerData, options: []) } catch {
        throw corrupt("header is not valid JSON (\(error.localizedDescription))")
    }
    guard let header = json as? [String: Any] else { throw corrupt("header is not a JSON object") }
    let dataStart = 8 + hl
    let dataSize = data.count - dataStart
    var metadata: [String: String] = [:]
    if let meta = header["__metadata__"] {
        guard let m = meta as? [String: Any] else { throw corrupt("__metadata__ is not an object") }
        for (k, v) in m {
            guard let s = v as? String else { throw corrupt("__metadata__ value for '\(k)' is not a string") }
            metadata[k] = s
        }
    }
    struct Entry { let name: String; let dtype: String; let shape: [Int]; let begin: Int; let end: Int }
    var entries: [Entry] = []
    func intArray(_ v: Any?, _ what: String, _ name: String) throws -> [Int] {
        guard let arr = v as? [Any] else { throw corrupt("tensor '\(name)': \(what) is missing or not an array") }
        return try arr.map { x in
            guard let n = x as? NSNumber, n.doubleValue.rounded() == n.doubleValue,
                  n.doubleValue >= 0, n.doubleValue < 9.0e15 else {
                throw corrupt("tensor '\(name)': \(what) holds \(x), not a non-negative integer")
            }
            return n.intValue
        }
    }
    for (name, value) in header where name != "__metadata__" {
        guard let info = value as? [String: Any] else { throw corrupt("entry '\(name)' is not an object") }
        guard let dtype = info["dtype"] as? String else { throw corrupt("tensor '\(name)' has no dtype string") }
        let shape = try intArray(info["shape"], "shape", name)
        let offsets = try intArray(info["data_offsets"], "data_offsets", name)
        guard offsets.count == 2 else { throw corrupt("tensor '\(name)': data_offsets has \(offsets.count) entries, expected 2") }
        guard let size = elementSizes[dtype] else { throw CheckpointError.unsupportedDType(file: file, tensor: name, dtype: dtype) }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin <= end, end <= dataSize else {
            throw corrupt("tensor '\(name)': data_offsets [\(begin), \(end)] fall outside the \(dataSize)-byte data section")
        }
        var count = 1
        for d in shape {
            let (c, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, c <= dataSize else { throw corrupt("tensor '\(name)': shape \(shape) is larger than the file") }
            count = c
        }
        guard end - begin == count * size else {
            throw corrupt("tensor '\(name)': shape \(shape) of \(dtype) needs \(count * size) bytes but data_offsets span \(end - begin)")
        }
        entries.append(Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end))
    }
    let sorted = entries.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
    for (a, b) in zip(sorted, sorted.dropFirst()) where b.begin < a.end {
        throw corrupt("tensors '\(a.name)' [\(a.begin), \(a.end)] and '\(b.name)' [\(b.begin), \(b.end)] overlap")
    }
    var tensors: [String: Tensor] = [:]
    data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
        for e in entries {
            var t = Tensor(uninitializedShape: e.shape)
            let src = raw.baseAddress! + dataStart + e.begin
            let n = t.count
            t.withUnsafeMutableBufferPointer { dst in
                func load<T: FixedWidthInteger>(_: T.Type, _ i: Int) -> T {
                    T(littleEndian: src.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))
                }
                switch e.dtype {
                case "F32": for i in 0..<n { dst[i] = Float(bitPattern: load(UInt32.self, i)) }
                case "F64": for i in 0..<n { dst[i] = Float(Double(bitPattern: load(UInt64.self, i))) }
                case "F16": for i in 0..<n { dst[i] = halfToFloat(load(UInt16.self, i)) }
                case "BF16": for i in 0..<n { dst[i] = Float(bitPattern: UInt32(load(UInt16.self, i)) << 16) }
                case "I64": for i in 0..<n { dst[i] = Float(load(Int64.self, i)) }
                case "I32": for i in 0..<n { dst[i] = Float(load(Int32.self, i)) }
                case "I16": for i in 0..<n { dst[i] = Float(load(Int16.self, i)) }
                case "I8": for i in 0..<n { dst[i] = Float(load(Int8.self, i)) }
                case "U8": for i in 0..<n { dst[i] = Float(load(UInt8.self, i)) }
                default /* BOOL */: for i in 0..<n { dst[i] = load(UInt8.self, i) != 0 ? 1 : 0 }
                }
            }
            tensors[e.name] = t
        }
    }
    return (tensors, metadata)
}

/// Reads a `.safetensors` file. F32 is read as is; F64, F16, BF16 and integer/bool tensors are
/// converted to Float32. Throws ``CheckpointError`` for unreadable, truncated or malformed files.
public func readSafetensors(_ url: URL) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
    let data: Data
    do { data = try Data(contentsOf: url, options: .mappedIfSafe) } catch {
        throw CheckpointError.io(file: url.path, message: "cannot read (\(error.localizedDescription))")
    }
    return try decodeSafetensors(data, file: url.path)
}

/// Writes tensors (as F32) and string metadata to a `.safetensors` file atomically: the bytes go
/// to a temporary file in the same directory, which is then renamed over `url`, so readers never
/// see a half-written checkpoint.
public func writeSafetensors(_ tensors: [String: Tensor], to url: URL, metadata: [String: String] = [:]) throws {
    let data = encodeSafetensors(tensors, metadata: metadata)
    let dir = url.deletingLastPathComponent()
    let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(UUID().uuidString)")
    do {
        try data.write(to: tmp)
    } catch {
        throw CheckpointError.io(file: url.path, message: "cannot write temporary file in \(dir.path) (\(error.localizedDescription))")
    }
    if rename(tmp.path, url.path) != 0 {
        let reason = String(cString: strerror(errno))
        try? FileManager.default.removeItem(at: tmp)
        throw CheckpointError.io(file: url.path, message: "cannot move the temporary file into place (\(reason))")
    }
}

// MARK: - Module checkpoints

/// Saves a module's parameters and buffers (names as in ``Module/stateTensors()``) to a
/// `.safetensors` file, atomically.
public func saveCheckpoint(_ model: Module, to url: URL, metadata: [String: String] = [:]) throws {
    var tensors: [String: Tensor] = [:]
    for (name, t) in model.stateTensors() { tensors[name] = t }
    try writeSafetensors(tensors, to: url, metadata: metadata)
}

/// Loads parameters and buffers saved by ``saveCheckpoint(_:to:metadata:)`` (or PyTorch's
/// `safetensors.torch.save_file(model.state_dict())` with matching names) and returns the file's
/// metadata.
///
/// Names and shapes are checked before anything is assigned: on any mismatch the model is left
/// untouched and a ``CheckpointError/mismatch(file:missing:unexpected:shapeMismatches:)`` lists
/// every missing name, unexpected name and shape difference. With `strict: false`, missing and
/// unexpected names are allowed (shape mismatches still throw), like PyTorch's `strict=False`.
@discardableResult
public func loadCheckpoint(into model: Module, from url: URL, strict: Bool = true) throws -> [String: String] {
    let (tensors, metadata) = try readSafetensors(url)
    try applyState(tensors, to: model, strict: strict, file: url.path)
    return metadata
}

/// Assigns named tensors to a module's parameters and buffers after checking all names and shapes
/// (nothing changes when it throws).
public func applyState(_ tensors: [String: Tensor], to model: Module, strict: Bool = true, file: String? = nil) throws {
    let slots = model.parameterBoxes() + model.bufferBoxes()
    let known = Set(slots.map { $0.name })
    let missing = slots.map { $0.name }.filter { tensors[$0] == nil }
    let unexpected = tensors.keys.filter { !known.contains($0) }.sorted()
    var shapes: [CheckpointError.ShapeMismatch] = []
    for (name, box) in slots {
        if let t = tensors[name], t.shape != box.value!.shape {
            shapes.append(.init(name: name, expected: box.value!.shape, found: t.shape))
        }
    }
    if !shapes.isEmpty || (strict && (!missing.isEmpty || !unexpected.isEmpty)) {
        throw CheckpointError.mismatch(file: file, missing: strict ? missing : [], unexpected: strict ? unexpected : [], shapeMismatches: shapes)
    }
    for (name, box) in slots {
        if let t = tensors[name] { box.value = t }
    }
}
