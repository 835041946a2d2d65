import Foundation

/// Why a file could not be read or written, or why its contents cannot be used.
///
/// Every case names the file; cases about one array or field also name that entry, and shape
/// errors give the expected and the found shape, so a command-line user can fix the input without
/// reading code.
public enum DeformIOError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file could not be opened, read, created or renamed.
    case io(file: String, message: String)
    /// The bytes are not a valid file of the expected kind (truncated, bad header, bad checksum).
    /// `entry` names the archive member or field when the damage is inside one.
    case corrupt(file: String, entry: String?, message: String)
    /// An array uses an element type this reader does not convert.
    case unsupportedDType(file: String, entry: String?, dtype: String)
    /// A required array or field is absent; `available` lists what the file does hold.
    case missingEntry(file: String, entry: String, available: [String])
    /// An array or field has the wrong rank or size.
    case shapeMismatch(file: String, entry: String, expected: String, found: String)
    /// The shape is right but a value is not usable (NaN/Inf where a point is visible, a frame with
    /// too few visible points, a visibility flag that is not 0 or 1, ...).
    case invalidValue(file: String, entry: String, message: String)
    /// The file's extension or layout is not one this reader knows.
    case unsupportedFormat(file: String, message: String)

    public var description: String {
        switch self {
        case let .io(file, message):
            return "\(file): \(message)"
        case let .corrupt(file, entry, message):
            return "\(file)\(entry.map { ": entry '\($0)'" } ?? ""): not a valid file: \(message)"
        case let .unsupportedDType(file, entry, dtype):
            return "\(file)\(entry.map { ": entry '\($0)'" } ?? ""): unsupported dtype \(dtype); supported: "
                + NPYDType.allCases.map(\.descr).joined(separator: " ") + " (and their big-endian variants)"
        case let .missingEntry(file, entry, available):
            let list = available.isEmpty ? "none" : available.sorted().map { "'\($0)'" }.joined(separator: ", ")
            return "\(file): missing entry '\(entry)'; the file holds: \(list)"
        case let .shapeMismatch(file, entry, expected, found):
            return "\(file): entry '\(entry)': expected shape \(expected), found \(found)"
        case let .invalidValue(file, entry, message):
            return "\(file): entry '\(entry)': \(message)"
        case let .unsupportedFormat(file, message):
            return "\(file): \(message)"
        }
    }
}

/// Formats a shape the way the error messages quote it: `[F, P, 2]` style, with numbers.
@inline(__always) func shapeString(_ shape: [Int]) -> String {
    "[" + shape.map(String.init).joined(separator: ", ") + "]"
}
