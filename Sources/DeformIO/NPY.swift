import Foundation
import DeformTensor

/// Element types of NumPy `.npy` arrays that Deform reads and writes.
public enum NPYDType: String, CaseIterable, Sendable {
    case float32, float64, uint8, bool, int8, int16, int32, int64, uint16, uint32, uint64

    /// Bytes per element.
    public var itemSize: Int {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .int16, .uint16: return 2
        case .float32, .int32, .uint32: return 4
        case .float64, .int64, .uint64: return 8
        }
    }

    /// The little-endian NumPy type string written to headers (`<f4`, `|u1`, ...).
    public var descr: String {
        switch self {
        case .float32: return "<f4"
        case .float64: return "<f8"
        case .uint8: return "|u1"
        case .bool: return "|b1"
        case .int8: return "|i1"
        case .int16: return "<i2"
        case .int32: return "<i4"
        case .int64: return "<i8"
        case .uint16: return "<u2"
        case .uint32: return "<u4"
        case .uint64: return "<u8"
        }
    }

    /// Parses a NumPy type string. Returns the type and whether its bytes are big-endian.
    static func parse(_ descr: String) -> (NPYDType, bigEndian: Bool)? {
        var chars = Substring(descr)
        var bigEndian = false
        if let first = chars.first, "<>|=".contains(first) {
            bigEndian = first == ">"
            chars = chars.dropFirst()
        }
        let type: NPYDType?
        switch chars {
        case "f4": type = .float32
        case "f8": type = .float64
        case "u1", "B": type = .uint8
        case "b1", "?": type = .bool
        case "i1", "b": type = .int8
        case "i2": type = .int16
        case "i4": type = .int32
        case "i8": type = .int64
        case "u2": type = .uint16
        case "u4": type = .uint32
        case "u8": type = .uint64
        default: type = nil
        }
        return type.map { ($0, bigEndian && $0.itemSize > 1) }
    }
}

/// A NumPy array as stored in a `.npy` file: shape, element type and the raw elements.
///
/// `data` always holds the elements in row-major (C) order and little-endian byte order,
/// whatever order and endianness the file used, so conversions never need to look at the header.
public struct NPYArray: Equatable, Sendable {
    public var shape: [Int]
    public var dtype: NPYDType
    /// `count * dtype.itemSize` bytes, row-major, little-endian.
    public var data: [UInt8]

    /// Wraps raw little-endian row-major bytes; `data.count` must match the shape and dtype.
    public init(shape: [Int], dtype: NPYDType, data: [UInt8]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "NPYArray: negative dimension in shape \(shape)")
        precondition(data.count == shapeCount(shape) * dtype.itemSize,
                     "NPYArray: \(data.count) bytes do not fill shape \(shape) of \(dtype) (needs \(shapeCount(shape) * dtype.itemSize))")
        self.shape = shape
        self.dtype = dtype
        self.data = data
    }

    /// The tensor's values as a `<f4` array.
    public init(_ tensor: Tensor) {
        self.init(values: tensor.scalars.map { $0.bitPattern }, shape: tensor.shape, dtype: .float32)
    }

    /// A `<f8` array.
    public init(doubles: [Double], shape: [Int]) {
        self.init(values: doubles.map { $0.bitPattern }, shape: shape, dtype: .float64)
    }

    /// A `|u1` array.
    public init(uint8s: [UInt8], shape: [Int]) {
        self.init(values: uint8s, shape: shape, dtype: .uint8)
    }

    /// A `|b1` array.
    public init(bools: [Bool], shape: [Int]) {
        self.init(values: bools.map { $0 ? UInt8(1) : 0 }, shape: shape, dtype: .bool)
    }

    /// A `<i4` array.
    public init(int32s: [Int32], shape: [Int]) {
        self.init(values: int32s, shape: shape, dtype: .int32)
    }

    /// A `<i8` array.
    public init(int64s: [Int64], shape: [Int]) {
        self.init(values: int64s, shape: shape, dtype: .int64)
    }

    private init<T: FixedWidthInteger>(values: [T], shape: [Int], dtype: NPYDType) {
        precondition(values.count == shapeCount(shape),
                     "NPYArray: \(values.count) values do not fill shape \(shape) (needs \(shapeCount(shape)))")
        precondition(MemoryLayout<T>.size == dtype.itemSize)
        var bytes = [UInt8](repeating: 0, count: values.count * MemoryLayout<T>.size)
        bytes.withUnsafeMutableBytes { raw in
            for (i, v) in values.enumerated() {
                raw.storeBytes(of: v.littleEndian, toByteOffset: i * MemoryLayout<T>.size, as: T.self)
            }
        }
        self.init(shape: shape, dtype: dtype, data: bytes)
    }

    /// Number of elements.
    public var count: Int { shapeCount(shape) }

    /// Calls `body` with every element converted to Double, in row-major order.
    private func forEachDouble(_ body: (Int, Double) -> Void) {
        data.withUnsafeBytes { raw in
            func load<T: FixedWidthInteger>(_: T.Type, _ i: Int) -> T {
                T(littleEndian: raw.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))
            }
            let n = count
            switch dtype {
            case .float32: for i in 0..<n { body(i, Double(Float(bitPattern: load(UInt32.self, i)))) }
            case .float64: for i in 0..<n { body(i, Double(bitPattern: load(UInt64.self, i))) }
            case .uint8: for i in 0..<n { body(i, Double(raw[i])) }
            case .bool: for i in 0..<n { body(i, raw[i] != 0 ? 1 : 0) }
            case .int8: for i in 0..<n { body(i, Double(Int8(bitPattern: raw[i]))) }
            case .int16: for i in 0..<n { body(i, Double(load(Int16.self, i))) }
            case .int32: for i in 0..<n { body(i, Double(load(Int32.self, i))) }
            case .int64: for i in 0..<n { body(i, Double(load(Int64.self, i))) }
            case .uint16: for i in 0..<n { body(i, Double(load(UInt16.self, i))) }
            case .uint32: for i in 0..<n { body(i, Double(load(UInt32.self, i))) }
            case .uint64: for i in 0..<n { body(i, Double(load(UInt64.self, i))) }
            }
        }
    }

    /// The values as a Float32 tensor of the same shape (booleans become 0/1; 64-bit values round
    /// to the nearest Float).
    public func tensor() -> Tensor {
        var t = Tensor(uninitializedShape: shape)
        if dtype == .float32, UInt32(1).littleEndian == 1 {
            t.withUnsafeMutableBufferPointer { dst in
                data.withUnsafeBytes { src in
                    if !src.isEmpty { UnsafeMutableRawPointer(dst.baseAddress!).copyMemory(from: src.baseAddress!, byteCount: src.count) }
                }
            }
            return t
        }
        t.withUnsafeMutableBufferPointer { dst in forEachDouble { i, v in dst[i] = Float(v) } }
        return t
    }

    /// The values as Double, row-major (booleans become 0/1).
    public func doubles() -> [Double] {
        var out = [Double](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { dst in forEachDouble { i, v in dst[i] = v } }
        return out
    }
}

// MARK: - Header

/// The subset of Python literals that `.npy` headers use.
private indirect enum PyValue {
    case string(String), int(Int), bool(Bool), none, tuple([PyValue]), list([PyValue]), dict([(String, PyValue)])
}

/// Recursive-descent parser for the header dictionary (`{'descr': '<f8', 'fortran_order': False,
/// 'shape': (3, 4), }`), tolerant of the spacing, quoting and trailing commas that NumPy versions
/// and other writers produce.
private struct HeaderParser {
    let chars: [Character]
    var i = 0

    init(_ text: String) { chars = Array(text) }

    struct Failure: Error { let message: String }

    mutating func skipSpace() { while i < chars.count, chars[i].isWhitespace { i += 1 } }

    mutating func expect(_ c: Character) throws {
        skipSpace()
        guard i < chars.count, chars[i] == c else {
            throw Failure(message: "expected '\(c)' at character \(i)" + (i < chars.count ? ", found '\(chars[i])'" : ", found the end"))
        }
        i += 1
    }

    mutating func peek() -> Character? { skipSpace(); return i < chars.count ? chars[i] : nil }

    mutating func value() throws -> PyValue {
        guard let c = peek() else { throw Failure(message: "unexpected end of header") }
        switch c {
        case "'", "\"":
            i += 1
            var s = ""
            while i < chars.count, chars[i] != c {
                if chars[i] == "\\", i + 1 < chars.count { i += 1 }
                s.append(chars[i]); i += 1
            }
            guard i < chars.count else { throw Failure(message: "unterminated string") }
            i += 1
            return .string(s)
        case "(", "[":
            let close: Character = c == "(" ? ")" : "]"
            i += 1
            var items: [PyValue] = []
            while peek() != close {
                items.append(try value())
                if peek() == "," { i += 1 } else { break }
            }
            try expect(close)
            return c == "(" ? .tuple(items) : .list(items)
        case "{":
            i += 1
            var items: [(String, PyValue)] = []
            while peek() != "}" {
                guard case let .string(key) = try value() else { throw Failure(message: "dictionary key is not a string") }
                try expect(":")
                items.append((key, try value()))
                if peek() == "," { i += 1 } else { break }
            }
            try expect("}")
            return .dict(items)
        default:
            var word = ""
            while i < chars.count, chars[i].isLetter || chars[i].isNumber || chars[i] == "-" || chars[i] == "+" {
                word.append(chars[i]); i += 1
            }
            switch word {
            case "True": return .bool(true)
            case "False": return .bool(false)
            case "None": return .none
            default:
                // Python 2 NumPy wrote shapes as longs (`3L`).
                let digits = word.hasSuffix("L") ? String(word.dropLast()) : word
                if let n = Int(digits) { return .int(n) }
                throw Failure(message: word.isEmpty ? "unexpected character '\(c)'" : "unexpected token '\(word)'")
            }
        }
    }
}

// MARK: - Decoding and encoding

private let npyMagic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

/// Decodes the bytes of a `.npy` file (format versions 1.0, 2.0 and 3.0).
///
/// C-order and Fortran-order arrays are both returned in row-major order, and big-endian data is
/// converted to little-endian. `file` and `entry` only label errors.
public func decodeNPY(_ bytes: Data, file: String = "<memory>", entry: String? = nil) throws -> NPYArray {
    func corrupt(_ message: String) -> DeformIOError { .corrupt(file: file, entry: entry, message: message) }
    return try bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> NPYArray in
        guard raw.count >= 10 else { throw corrupt("\(raw.count) bytes, shorter than the 10-byte NPY preamble") }
        guard Array(raw[0..<6]) == npyMagic else { throw corrupt("does not start with the NPY magic string \\x93NUMPY") }
        let major = raw[6], minor = raw[7]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(raw[8]) | Int(raw[9]) << 8
            headerStart = 10
        case 2, 3:
            guard raw.count >= 12 else { throw corrupt("\(raw.count) bytes, shorter than the 12-byte NPY \(major).\(minor) preamble") }
            headerLength = Int(raw[8]) | Int(raw[9]) << 8 | Int(raw[10]) << 16 | Int(raw[11]) << 24
            headerStart = 12
        default:
            throw corrupt("NPY format version \(major).\(minor) is not supported (expected 1.0, 2.0 or 3.0)")
        }
        guard headerLength <= raw.count - headerStart else {
            throw corrupt("header length \(headerLength) runs past the end of the data (\(raw.count - headerStart) bytes left); the file is truncated")
        }
        let headerBytes = Data(raw[headerStart..<(headerStart + headerLength)])
        // Version 3.0 allows UTF-8 field names; earlier versions are Latin-1.
        guard let headerText = String(data: headerBytes, encoding: major == 3 ? .utf8 : .isoLatin1) else {
            throw corrupt("header is not \(major == 3 ? "UTF-8" : "Latin-1") text")
        }
        var parser = HeaderParser(headerText)
        let parsed: PyValue
        do { parsed = try parser.value() } catch let failure as HeaderParser.Failure {
            throw corrupt("header \(headerText.trimmingCharacters(in: .whitespacesAndNewlines)) is not a Python dict literal: \(failure.message)")
        }
        guard case let .dict(items) = parsed else { throw corrupt("header is not a dictionary") }
        let fields = Dictionary(items, uniquingKeysWith: { _, last in last })
        guard let descrValue = fields["descr"] else { throw corrupt("header has no 'descr' key") }
        guard case let .string(descr) = descrValue else {
            throw DeformIOError.unsupportedDType(file: file, entry: entry, dtype: "structured (\(descrValue))")
        }
        guard let (dtype, bigEndian) = NPYDType.parse(descr) else {
            throw DeformIOError.unsupportedDType(file: file, entry: entry, dtype: "'\(descr)'")
        }
        var fortran = false
        if let f = fields["fortran_order"] {
            guard case let .bool(b) = f else { throw corrupt("header 'fortran_order' is not True or False") }
            fortran = b
        } else { throw corrupt("header has no 'fortran_order' key") }
        guard case let .tuple(dims)? = fields["shape"] else { throw corrupt("header has no 'shape' tuple") }
        var shape: [Int] = []
        var count = 1
        for d in dims {
            guard case let .int(n) = d, n >= 0 else { throw corrupt("shape holds \(d), not a non-negative integer") }
            let (c, overflow) = count.multipliedReportingOverflow(by: n)
            guard !overflow else { throw corrupt("shape \(dims) overflows") }
            count = c
            shape.append(n)
        }
        let dataStart = headerStart + headerLength
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: dtype.itemSize)
        guard !overflow, byteCount <= raw.count - dataStart else {
            throw corrupt("shape \(shapeString(shape)) of \(dtype.descr) needs \(count) x \(dtype.itemSize) bytes but only \(raw.count - dataStart) follow the header; the file is truncated")
        }
        var data = [UInt8](raw[dataStart..<(dataStart + byteCount)])
        if bigEndian { swapBytes(&data, itemSize: dtype.itemSize) }
        if fortran && shape.count > 1 { data = fortranToRowMajor(data, shape: shape, itemSize: dtype.itemSize) }
        return NPYArray(shape: shape, dtype: dtype, data: data)
    }
}

private func swapBytes(_ data: inout [UInt8], itemSize: Int) {
    data.withUnsafeMutableBufferPointer { p in
        var i = 0
        while i < p.count {
            var a = i, b = i + itemSize - 1
            while a < b { p.swapAt(a, b); a += 1; b -= 1 }
            i += itemSize
        }
    }
}

/// Reorders column-major elements (first index fastest) into row-major order.
private func fortranToRowMajor(_ src: [UInt8], shape: [Int], itemSize: Int) -> [UInt8] {
    let count = shapeCount(shape)
    guard count > 0 else { return src }
    let rank = shape.count
    var fStrides = [Int](repeating: 1, count: rank)
    for k in 1..<rank { fStrides[k] = fStrides[k - 1] * shape[k - 1] }
    var dst = [UInt8](repeating: 0, count: src.count)
    var index = [Int](repeating: 0, count: rank)
    var offset = 0
    src.withUnsafeBufferPointer { s in
        dst.withUnsafeMutableBufferPointer { d in
            for flat in 0..<count {
                for b in 0..<itemSize { d[flat * itemSize + b] = s[offset * itemSize + b] }
                // Advance the row-major odometer, keeping the column-major offset in step.
                var k = rank - 1
                while k >= 0 {
                    index[k] += 1
                    offset += fStrides[k]
                    if index[k] < shape[k] { break }
                    offset -= fStrides[k] * shape[k]
                    index[k] = 0
                    k -= 1
                }
            }
        }
    }
    return dst
}

/// Encodes an array as a `.npy` file: format 1.0 (2.0 when the header exceeds 65535 bytes),
/// C order, little-endian, header padded with spaces and a newline so the data starts at a
/// multiple of 64 bytes, as NumPy writes it.
public func encodeNPY(_ array: NPYArray) -> Data {
    let dims = array.shape.map(String.init)
    let shapeTuple = dims.count == 1 ? "(\(dims[0]),)" : "(" + dims.joined(separator: ", ") + ")"
    let dict = "{'descr': '\(array.dtype.descr)', 'fortran_order': False, 'shape': \(shapeTuple), }"
    func padded(preamble: Int) -> [UInt8] {
        let unpadded = preamble + dict.utf8.count + 1
        return Array(dict.utf8) + [UInt8](repeating: 0x20, count: (64 - unpadded % 64) % 64) + [0x0A]
    }
    var header = padded(preamble: 10)
    var data = Data(capacity: 12 + header.count + array.data.count)
    data.append(contentsOf: npyMagic)
    if header.count <= 0xFFFF {
        data.append(contentsOf: [1, 0, UInt8(header.count & 0xFF), UInt8(header.count >> 8)])
    } else {
        header = padded(preamble: 12)
        let n = UInt32(header.count)
        data.append(contentsOf: [2, 0, UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24)])
    }
    data.append(contentsOf: header)
    data.append(contentsOf: array.data)
    return data
}

/// Reads a `.npy` file.
public func readNPY(_ url: URL) throws -> NPYArray {
    try decodeNPY(readFileData(url), file: url.path)
}

/// Writes a `.npy` file atomically.
public func writeNPY(_ array: NPYArray, to url: URL) throws {
    try writeAtomically(encodeNPY(array), to: url)
}

/// Writes a tensor as a `<f4` `.npy` file atomically.
public func writeNPY(_ tensor: Tensor, to url: URL) throws {
    try writeNPY(NPYArray(tensor), to: url)
}
