import Foundation
import Testing
@testable import DeformIO
import DeformTensor

@Suite struct NPYTests {
    /// The NPY 1.0 layout spelled out by hand: magic, version, little-endian header length, the
    /// dict literal padded with spaces to a 64-byte boundary and ended by a newline, then data.
    @Test func encodedBytesFollowTheSpec() {
        let bytes = [UInt8](encodeNPY(NPYArray(Tensor([1, -2, 0.5]))))
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"
        #expect(dict.utf8.count == 57)
        // 10-byte preamble + 57 + 1 newline = 68, padded to 128: 60 spaces, header length 118.
        var expected: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 0x01, 0x00, 118, 0x00]
        expected += Array(dict.utf8) + [UInt8](repeating: 0x20, count: 60) + [0x0A]
        expected += [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x3F]
        #expect(bytes == expected)
    }

    @Test func headerShapesAndAlignment() {
        for (shape, tuple) in [([], "()"), ([0], "(0,)"), ([2, 3], "(2, 3)"), ([4, 1, 7], "(4, 1, 7)")] as [([Int], String)] {
            let a = NPYArray(uint8s: [UInt8](repeating: 7, count: shapeCount(shape)), shape: shape)
            let bytes = [UInt8](encodeNPY(a))
            let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            let header = String(decoding: bytes[10..<(10 + headerLength)], as: UTF8.self)
            #expect(header.hasPrefix("{'descr': '|u1', 'fortran_order': False, 'shape': \(tuple), }"))
            #expect(header.hasSuffix("\n"))
            #expect((10 + headerLength) % 64 == 0)
            #expect(bytes.count == 10 + headerLength + shapeCount(shape))
        }
    }

    @Test func hugeHeaderSwitchesToVersion2() throws {
        // 22,000 dimensions of size 1 make a header longer than the 65,535 bytes of version 1.0.
        let shape = [Int](repeating: 1, count: 22_000)
        let a = NPYArray(doubles: [3.25], shape: shape)
        let bytes = [UInt8](encodeNPY(a))
        #expect(bytes[6] == 2 && bytes[7] == 0)
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
        #expect(headerLength > 65_535)
        #expect((12 + headerLength) % 64 == 0)
        #expect(try decodeNPY(Data(bytes)) == a)
    }

    @Test func roundTripEveryDtype() throws {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for dtype in NPYDType.allCases {
            for shape in [[], [0], [5], [2, 3, 4]] as [[Int]] {
                let n = shapeCount(shape) * dtype.itemSize
                let data = (0..<n).map { _ -> UInt8 in
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    return dtype == .bool ? UInt8(state >> 63) : UInt8(truncatingIfNeeded: state >> 33)
                }
                let a = NPYArray(shape: shape, dtype: dtype, data: data)
                let back = try decodeNPY(encodeNPY(a))
                #expect(back == a, "\(dtype) \(shape)")
                let header = String(decoding: [UInt8](encodeNPY(a))[10..<30], as: UTF8.self)
                #expect(header.contains("'\(dtype.descr)'"))
            }
        }
    }

    @Test func typedInitialisersAndConversions() {
        let d = NPYArray(doubles: [1.5, -2.25, 1e300], shape: [3])
        #expect(d.dtype == .float64 && d.doubles() == [1.5, -2.25, 1e300])
        #expect(d.tensor().scalars == [1.5, -2.25, .infinity])
        let t = NPYArray(Tensor([[1, 2], [3, -4]]))
        #expect(t.dtype == .float32 && t.shape == [2, 2] && t.tensor().scalars == [1, 2, 3, -4])
        #expect(NPYArray(uint8s: [0, 255], shape: [2]).doubles() == [0, 255])
        #expect(NPYArray(bools: [true, false, true], shape: [3]).tensor().scalars == [1, 0, 1])
        #expect(NPYArray(int32s: [-7, Int32.max], shape: [2]).doubles() == [-7, Double(Int32.max)])
        #expect(NPYArray(int64s: [-5, 1 << 40], shape: [1, 2]).doubles() == [-5, Double(1 << 40)])
        #expect(NPYArray(int64s: [-5, 1 << 40], shape: [1, 2]).data == bytesOf([Int64(-5), 1 << 40]))
    }

    @Test func readsFortranOrder() throws {
        // [[1, 2, 3], [4, 5, 6]] stored column by column.
        let column = bytesOf([1.0, 4, 2, 5, 3, 6].map { $0.bitPattern })
        let a = try decodeNPY(handMadeNPY(header: "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }\n", payload: column))
        #expect(a.shape == [2, 3])
        #expect(a.doubles() == [1, 2, 3, 4, 5, 6])

        // Rank 3: element (i, j, k) = 100 i + 10 j + k, first index fastest in the file.
        var values: [Int32] = []
        for k in 0..<4 { for j in 0..<3 { for i in 0..<2 { values.append(Int32(100 * i + 10 * j + k)) } } }
        let b = try decodeNPY(handMadeNPY(header: "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3, 4), }\n", payload: bytesOf(values)))
        var expected: [Double] = []
        for i in 0..<2 { for j in 0..<3 { for k in 0..<4 { expected.append(Double(100 * i + 10 * j + k)) } } }
        #expect(b.shape == [2, 3, 4] && b.doubles() == expected)
    }

    @Test func readsBigEndian() throws {
        let f8 = try decodeNPY(handMadeNPY(header: "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }\n",
                                           payload: bytesOf([1.5, -2.25].map { $0.bitPattern }, bigEndian: true)))
        #expect(f8.dtype == .float64 && f8.doubles() == [1.5, -2.25])
        let f4 = try decodeNPY(handMadeNPY(header: "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }\n",
                                           payload: [0x3F, 0xC0, 0x00, 0x00]))
        #expect(f4.tensor().scalars == [1.5])
        let i4 = try decodeNPY(handMadeNPY(header: "{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }\n",
                                           payload: [0xFF, 0xFF, 0xFF, 0xF9, 0x00, 0x01, 0x00, 0x00]))
        #expect(i4.doubles() == [-7, 65536])
        let u2 = try decodeNPY(handMadeNPY(header: "{'descr': '>u2', 'fortran_order': False, 'shape': (1,), }\n", payload: [0x01, 0x02]))
        #expect(u2.dtype == .uint16 && u2.doubles() == [258])
        // Big-endian and Fortran order together: [[1, 2], [3, 4]] column by column.
        let both = try decodeNPY(handMadeNPY(header: "{'descr': '>i8', 'fortran_order': True, 'shape': (2, 2), }\n",
                                             payload: bytesOf([Int64(1), 3, 2, 4], bigEndian: true)))
        #expect(both.doubles() == [1, 2, 3, 4])
    }

    @Test func readsVersion2And3AndLooseHeaders() throws {
        let payload = bytesOf([Int16(-3), 300])
        let v2 = try decodeNPY(handMadeNPY(header: "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }\n", major: 2, payload: payload))
        #expect(v2.dtype == .int16 && v2.doubles() == [-3, 300])
        let v3 = try decodeNPY(handMadeNPY(header: "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }  \n", major: 3, payload: payload))
        #expect(v3.doubles() == [-3, 300])
        // Another key order, double quotes, Python 2 longs, no trailing comma.
        let loose = try decodeNPY(handMadeNPY(header: "{\"shape\": (1L, 2L), \"fortran_order\": False, \"descr\": \"<i2\"}\n", payload: payload))
        #expect(loose.shape == [1, 2] && loose.doubles() == [-3, 300])
        let i1 = try decodeNPY(handMadeNPY(header: "{'descr': '|i1', 'fortran_order': False, 'shape': (2,), }\n", payload: [0xFF, 0x05]))
        #expect(i1.dtype == .int8 && i1.doubles() == [-1, 5])
        let u4 = try decodeNPY(handMadeNPY(header: "{'descr': '<u4', 'fortran_order': False, 'shape': (1,), }\n", payload: bytesOf([UInt32.max])))
        #expect(u4.doubles() == [Double(UInt32.max)])
        let u8 = try decodeNPY(handMadeNPY(header: "{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }\n", payload: bytesOf([UInt64(1) << 60])))
        #expect(u8.doubles() == [Double(UInt64(1) << 60)])
    }

    @Test func fileRoundTripIsAtomic() throws {
        try TestFiles.withScratchFolder { folder in
            let url = folder.appendingPathComponent("x.npy")
            let t = Tensor((0..<12).map { Float($0) * 0.25 }, shape: [3, 4])
            try writeNPY(t, to: url)
            let back = try readNPY(url)
            #expect(back.dtype == .float32 && back.shape == [3, 4] && back.tensor().scalars == t.scalars)
            try writeNPY(NPYArray(doubles: [1, 2], shape: [2]), to: url)
            #expect(try readNPY(url).doubles() == [1, 2])
            #expect(try TestFiles.contents(of: folder) == ["x.npy"])
        }
    }
}
