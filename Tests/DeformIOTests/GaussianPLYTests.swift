import Testing
import Foundation
@testable import DeformIO
import DeformTensor

@Suite struct GaussianPLYTests {
    /// The INRIA 3DGS layout: property names in order, logit opacities, log scales, SH rest
    /// coefficients channel by channel, all as little-endian float32.
    @Test func writesTheReferenceLayout() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("gaussians-\(UUID().uuidString).ply")
        defer { try? FileManager.default.removeItem(at: url) }
        let n = 2, k = 4
        let sh = Tensor((0..<(n * k * 3)).map { Float($0) }, shape: [n, k, 3])
        try writeGaussianPLY(to: url, means: Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]), scales: Tensor([0.5, 2], shape: [2, 1]),
                             quaternions: Tensor([1, 0, 0, 0, 0.5, 0.5, 0.5, 0.5], shape: [2, 4]), opacities: Tensor([0.25, 0.9]),
                             colors: sh)
        let data = try Data(contentsOf: url)
        let end = data.range(of: Data("end_header\n".utf8))!
        let header = String(decoding: data[..<end.lowerBound], as: UTF8.self)
        let names = header.split(separator: "\n").filter { $0.hasPrefix("property float ") }.map { String($0.dropFirst(15)) }
        #expect(names.count == 6 + 3 + 9 + 1 + 3 + 4)
        #expect(Array(names[0..<9]) == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"])
        #expect(names[9] == "f_rest_0" && names[17] == "f_rest_8" && names[18] == "opacity" && names.last == "rot_3")
        #expect(header.contains("format binary_little_endian 1.0") && header.contains("element vertex 2"))
        let body = data[end.upperBound...]
        #expect(body.count == n * names.count * 4)
        let values = body.withUnsafeBytes { raw in (0..<(body.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) } }
        let row1 = Array(values[names.count..<(2 * names.count)])
        #expect(Array(row1[0..<3]) == [4, 5, 6])
        #expect(Array(row1[6..<9]) == [12, 13, 14])                             // DC of Gaussian 1
        // f_rest: red's three coefficients (15, 18, 21), then green's, then blue's.
        #expect(Array(row1[9..<18]) == [15, 18, 21, 16, 19, 22, 17, 20, 23])
        #expect(abs(row1[18] - log(0.9 / 0.1)) < 1e-5)
        #expect(row1[19..<22].allSatisfy { abs($0 - log(2)) < 1e-6 })
        #expect(Array(row1[22..<26]) == [0.5, 0.5, 0.5, 0.5])
        #expect(abs(values[18] - log(0.25 / 0.75)) < 1e-5)

        // RGB colours become the constant term; a bad shape is refused with the file named.
        try writeGaussianPLY(to: url, means: Tensor([0, 0, 0], shape: [1, 3]), scales: Tensor([1, 1, 1], shape: [1, 3]),
                             opacities: Tensor([0.5]), colors: Tensor([0.5 + 0.28209479, 0.5, 0.5], shape: [1, 3]))
        #expect(throws: DeformIOError.self) {
            try writeGaussianPLY(to: url, means: Tensor([0, 0, 0], shape: [1, 3]), scales: Tensor([1, 1], shape: [1, 2]),
                                 opacities: Tensor([0.5]), colors: Tensor([0.5, 0.5, 0.5], shape: [1, 3]))
        }
    }
}
