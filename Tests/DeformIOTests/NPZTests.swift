import Foundation
import Testing
@testable import DeformIO
import DeformTensor

@Suite struct NPZTests {
    static let arrays: [String: NPYArray] = [
        "points": NPYArray(Tensor((0..<60).map { Float($0 % 7) - 3 }, shape: [5, 4, 3])),
        "weights": NPYArray(doubles: (0..<50).map { Double($0) / 8 }, shape: [50]),
        "mask": NPYArray(uint8s: (0..<20).map { UInt8($0 % 2) }, shape: [4, 5]),
        "flags": NPYArray(bools: [true, false], shape: [2]),
        "ids": NPYArray(int64s: [-1, 2, 3], shape: [3]),
        "nested/name": NPYArray(int32s: [9], shape: []),
    ]

    /// ZIP local file header of the first member: signature PK\3\4, then the compression method
    /// as a little-endian UInt16 at byte 8 (0 = stored, 8 = DEFLATE).
    static func firstCompressionMethod(_ bytes: [UInt8]) -> Int {
        #expect(Array(bytes[0..<4]) == [0x50, 0x4B, 0x03, 0x04])
        return Int(bytes[8]) | Int(bytes[9]) << 8
    }

    @Test(arguments: [false, true])
    func fileRoundTrip(compressed: Bool) throws {
        try TestFiles.withScratchFolder { folder in
            let url = folder.appendingPathComponent("a.npz")
            try writeNPZ(Self.arrays, to: url, compressed: compressed)
            let back = try readNPZ(url)
            #expect(back == Self.arrays)
            let bytes = [UInt8](try Data(contentsOf: url))
            #expect(Self.firstCompressionMethod(bytes) == (compressed ? 8 : 0))
            #expect(try TestFiles.contents(of: folder) == ["a.npz"])
        }
    }

    @Test func memoryRoundTripAndDeterminism() throws {
        let stored = try encodeNPZ(Self.arrays, compressed: false)
        let compressed = try encodeNPZ(Self.arrays, compressed: true)
        #expect(compressed.count < stored.count)
        #expect(try decodeNPZ(stored) == Self.arrays)
        #expect(try decodeNPZ(compressed) == Self.arrays)
        #expect(try encodeNPZ(Self.arrays, compressed: true) == compressed)
        // Member names carry the .npy suffix inside the archive, as numpy.savez writes them.
        #expect(String(decoding: stored, as: UTF8.self).contains("weights.npy"))
    }

    @Test func tensorOverloadWritesFloat32() throws {
        try TestFiles.withScratchFolder { folder in
            let url = folder.appendingPathComponent("t.npz")
            try writeNPZ(["x": Tensor([1, 2, 3])], to: url)
            let back = try readNPZ(url)
            #expect(back["x"]?.dtype == .float32 && back["x"]?.tensor().scalars == [1, 2, 3])
        }
    }
}
