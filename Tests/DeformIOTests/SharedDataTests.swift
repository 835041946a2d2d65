import Foundation
import Testing
@testable import DeformIO
import DeformTensor

/// Reads the team's real benchmark files from `../shared/data` beside the checkout.
@Suite struct SharedDataTests {
    static let sequences: [(name: String, frames: Int, points: Int)] = [
        ("drink", 1102, 41), ("pickup", 357, 41), ("yoga", 307, 41),
        ("face", 316, 40), ("walking", 260, 55), ("frgc", 400, 62),
    ]

    @Test func folderIsPresent() {
        let folder = TestFiles.sharedData.appendingPathComponent("nrsfm")
        #expect(FileManager.default.fileExists(atPath: folder.path), "shared data not found at \(folder.path)")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        #expect(Set(Self.sequences.map { "\($0.name).npz" }).isSubset(of: Set(files)), "found \(files)")
    }

    @Test(arguments: sequences)
    func readsNRSfMSequence(name: String, frames: Int, points: Int) throws {
        let url = TestFiles.sharedData.appendingPathComponent("nrsfm/\(name).npz")
        let arrays = try readNPZ(url)
        #expect(Set(arrays.keys) == ["points_2d", "points_3d", "visibility"])
        let p2 = try #require(arrays["points_2d"]), p3 = try #require(arrays["points_3d"]), vis = try #require(arrays["visibility"])
        #expect(p2.dtype == .float64 && p2.shape == [frames, points, 2])
        #expect(p3.dtype == .float64 && p3.shape == [frames, points, 3])
        #expect(vis.dtype == .uint8 && vis.shape == [frames, points])
        let xy = p2.doubles(), xyz = p3.doubles()
        var mismatches = 0
        for i in 0..<(frames * points) where xy[2 * i] != xyz[3 * i] || xy[2 * i + 1] != xyz[3 * i + 1] { mismatches += 1 }
        #expect(mismatches == 0)
        #expect(vis.data.allSatisfy { $0 == 1 })
        #expect(xyz.allSatisfy { $0.isFinite })
        // The data are not degenerate: the shape has extent in depth as well as in the image.
        let z = stride(from: 2, to: xyz.count, by: 3).map { xyz[$0] }
        #expect(z.max()! - z.min()! > 0)

        let tracks = try KeypointTracks.load(url)
        #expect(tracks.frameCount == frames && tracks.pointCount == points)
        #expect(tracks.points3D?.shape == [frames, points, 3])
        #expect(tracks.visibleFraction == 1)
        #expect(tracks.points2D.scalars == xy.map { Float($0) })
        #expect(tracks.source == url.path)
    }

    @Test func readsStereoDisparity() throws {
        let url = TestFiles.sharedData.appendingPathComponent("stereo/motorcycle/motorcycle_disp.npz")
        let disparity = try #require(try readNPZ(url)["arr_0"])
        #expect(disparity.dtype == .float32 && disparity.shape == [500, 741])
        let values = disparity.tensor().scalars
        let known = values.filter { $0.isFinite }
        // Unknown disparity is marked by a non-finite value (+inf in this file).
        #expect(known.count < values.count)
        #expect(known.count > values.count * 9 / 10)
        #expect(known.min()! > 0 && known.max()! < 100)
    }
}
