import Foundation
import Testing
import DeformIO

/// Paths and scratch folders shared by the DeformIO tests.
enum TestFiles {
    /// The package root, found from this file's location (Tests/DeformIOTests/TestSupport.swift).
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `../shared/data` beside the package checkout, where the team's real data lives.
    static let sharedData = packageRoot.appendingPathComponent("../shared/data").standardizedFileURL

    /// A fresh empty folder, removed by `body`'s caller through `defer`.
    static func scratchFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("deform-io-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func withScratchFolder<R>(_ body: (URL) throws -> R) throws -> R {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        return try body(folder)
    }

    /// Files in `folder` other than `except`, to prove no temporary file was left behind.
    static func contents(of folder: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
    }
}

/// The error message a throwing call produces, or a marker that it did not throw.
func errorMessage(_ body: () throws -> Void) -> String {
    do { try body() } catch { return "\(error)" }
    return "<no error thrown>"
}

/// Expects `message` to contain every fragment, reporting which one is missing.
func expectMentions(_ message: String, _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    for fragment in fragments {
        #expect(message.contains(fragment), "'\(fragment)' missing from: \(message)", sourceLocation: sourceLocation)
    }
}

/// Builds `.npy` bytes by hand, independently of the encoder under test.
func handMadeNPY(header: String, major: UInt8 = 1, payload: [UInt8]) -> Data {
    var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [major, 0]
    let h = Array(header.utf8)
    if major == 1 {
        bytes += [UInt8(h.count & 0xFF), UInt8(h.count >> 8)]
    } else {
        bytes += [UInt8(h.count & 0xFF), UInt8(h.count >> 8 & 0xFF), UInt8(h.count >> 16 & 0xFF), UInt8(h.count >> 24)]
    }
    return Data(bytes + h + payload)
}

/// Big- or little-endian bytes of fixed-width values.
func bytesOf<T: FixedWidthInteger>(_ values: [T], bigEndian: Bool = false) -> [UInt8] {
    values.flatMap { v -> [UInt8] in
        let le = (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) }
        return bigEndian ? le.reversed() : le
    }
}
