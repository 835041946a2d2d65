import Foundation
import Testing
@testable import DeformIO
import DeformTensor

@Suite struct ResultsTests {
    @Test func reconstructionRoundTrip() throws {
        try TestFiles.withScratchFolder { folder in
            let url = folder.appendingPathComponent("reconstruction.npz")
            let points = Tensor((0..<24).map { Float($0) / 4 }, shape: [2, 4, 3])
            let rotations = Tensor([1, 0, 0, 0, 1, 0, 0, 0, 1, 0, -1, 0, 1, 0, 0, 0, 0, 1], shape: [2, 3, 3])
            try writeReconstruction(to: url, points3D: points, rotations: rotations, extra: ["codes": Tensor([0.5, -0.5], shape: [2, 1])])
            let back = try readNPZ(url)
            #expect(Set(back.keys) == ["points_3d", "rotations", "codes"])
            #expect(back["points_3d"]?.shape == [2, 4, 3] && back["points_3d"]?.tensor().scalars == points.scalars)
            #expect(back["rotations"]?.tensor().scalars == rotations.scalars)
            #expect(back["codes"]?.shape == [2, 1] && back["codes"]?.dtype == .float32)
        }
    }

    struct Metrics: Encodable {
        var sequence = "drink/run"
        var normalizedError = 0.0125
        var perFrame: [Double] = [1, .nan]
        var zeta = ["b": 2, "a": 1]
    }

    @Test func jsonIsPrettySortedAndAtomic() throws {
        try TestFiles.withScratchFolder { folder in
            let url = folder.appendingPathComponent("metrics.json")
            try Data("old".utf8).write(to: url)
            try writeJSON(Metrics(), to: url)
            let text = try String(contentsOf: url, encoding: .utf8)
            let expected = """
            {
              "normalizedError" : 0.0125,
              "perFrame" : [
                1,
                "NaN"
              ],
              "sequence" : "drink/run",
              "zeta" : {
                "a" : 1,
                "b" : 2
              }
            }

            """
            #expect(text == expected)
            #expect(try TestFiles.contents(of: folder) == ["metrics.json"])
        }
    }

    @Test func atomicFileKeepsOldContentWhenWritingFails() throws {
        try TestFiles.withScratchFolder { folder in
            let url = folder.appendingPathComponent("config.json")
            try Data("previous".utf8).write(to: url)
            struct Interrupted: Error {}
            #expect(throws: DeformIOError.self) {
                try withAtomicFile(at: url) { temporary in
                    try Data("half".utf8).write(to: temporary)
                    throw Interrupted()
                }
            }
            #expect(try String(contentsOf: url, encoding: .utf8) == "previous")
            #expect(try TestFiles.contents(of: folder) == ["config.json"])
        }
    }

    @Test func plyAscii() throws {
        try TestFiles.withScratchFolder { folder in
            let url = folder.appendingPathComponent("cloud.ply")
            try writePLY(to: url, points: Tensor([0.5, -1, 2, 0.1, 3, 1e-3], shape: [2, 3]), colors: [255, 0, 10, 1, 2, 3], format: .ascii)
            let text = try String(contentsOf: url, encoding: .utf8)
            let expected = """
            ply
            format ascii 1.0
            comment written by Deform
            element vertex 2
            property float x
            property float y
            property float z
            property uchar red
            property uchar green
            property uchar blue
            end_header
            0.5 -1 2 255 0 10
            0.100000001 3 0.00100000005 1 2 3

            """
            #expect(text == expected)
            // %.9g text gives back the exact Float32 values.
            #expect(Float("0.100000001") == Float(0.1) && Float("0.00100000005") == Float(1e-3))
        }
    }

    @Test func plyBinary() throws {
        try TestFiles.withScratchFolder { folder in
            let url = folder.appendingPathComponent("cloud.ply")
            try writePLY(to: url, points: Tensor([1, 2, 3, -1.5, 0, 0.25], shape: [2, 3]))
            let bytes = [UInt8](try Data(contentsOf: url))
            let header = "ply\nformat binary_little_endian 1.0\ncomment written by Deform\nelement vertex 2\n"
                + "property float x\nproperty float y\nproperty float z\nend_header\n"
            #expect(Array(bytes.prefix(header.utf8.count)) == Array(header.utf8))
            let body = Array(bytes.dropFirst(header.utf8.count))
            #expect(body == bytesOf([Float(1), 2, 3, -1.5, 0, 0.25].map(\.bitPattern)))

            try writePLY(to: url, points: Tensor([1, 2, 3], shape: [1, 3]), colors: [7, 8, 9])
            let colored = [UInt8](try Data(contentsOf: url))
            #expect(Array(colored.suffix(15)) == bytesOf([Float(1), 2, 3].map(\.bitPattern)) + [7, 8, 9])
            #expect(String(decoding: colored, as: UTF8.self).contains("property uchar blue\nend_header\n"))
        }
    }
}
