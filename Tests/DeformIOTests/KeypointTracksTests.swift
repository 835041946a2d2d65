import Foundation
import Testing
@testable import DeformIO
import DeformTensor

@Suite struct KeypointTracksTests {
    /// 3 frames x 4 points with x = 10 f + p, y = -p, z = f; point 3 of frame 1 missing.
    static func sample() -> (xy: [Float], vis: [Float], xyz: [Float]) {
        var xy: [Float] = [], vis: [Float] = [], xyz: [Float] = []
        for f in 0..<3 {
            for p in 0..<4 {
                let hidden = f == 1 && p == 3
                xy += [Float(10 * f + p), Float(-p)]
                vis.append(hidden ? 0 : 1)
                xyz += [Float(10 * f + p), Float(-p), Float(f)]
            }
        }
        return (xy, vis, xyz)
    }

    @Test func npzRoundTripCleansMissingNaN() throws {
        var (xy, vis, xyz) = Self.sample()
        xy[2 * 7] = .nan  // frame 1, point 3 is hidden, so NaN there is allowed
        let tracks = try KeypointTracks(points2D: Tensor(xy, shape: [3, 4, 2]), visibility: Tensor(vis, shape: [3, 4]),
                                        points3D: Tensor(xyz, shape: [3, 4, 3]), source: "sample")
        #expect(tracks.points2D[1, 3, 0] == 0 && tracks.points2D[1, 3, 1] == 0)
        #expect(tracks.points2D[1, 2, 0] == 12 && tracks.points2D[1, 2, 1] == -2)
        #expect(tracks.visibleFraction == 11.0 / 12.0)
        try TestFiles.withScratchFolder { folder in
            let url = folder.appendingPathComponent("tracks.npz")
            try tracks.writeNPZ(to: url)
            let arrays = try readNPZ(url)
            #expect(arrays["visibility"]?.dtype == .uint8 && arrays["points_2d"]?.dtype == .float32)
            let back = try KeypointTracks.load(url)
            #expect(back.points2D.scalars == tracks.points2D.scalars)
            #expect(back.visibility.scalars == vis)
            #expect(back.points3D?.scalars == xyz)
            #expect(back.source == url.path)
        }
    }

    @Test func selectingFrames() throws {
        let (xy, vis, xyz) = Self.sample()
        let tracks = try KeypointTracks(points2D: Tensor(xy, shape: [3, 4, 2]), visibility: Tensor(vis, shape: [3, 4]),
                                        points3D: Tensor(xyz, shape: [3, 4, 3]))
        let picked = tracks.selectingFrames([2, 1])
        #expect(picked.frameCount == 2 && picked.pointCount == 4)
        #expect(picked.points2D.scalars == Array(xy[16..<24] + xy[8..<16]))
        #expect(picked.visibility.scalars == Array(vis[8..<12] + vis[4..<8]))
        #expect(picked.points3D?.scalars == Array(xyz[24..<36] + xyz[12..<24]))
    }

    @Test func npzWithoutOptionalEntries() throws {
        let (xy, _, _) = Self.sample()
        let arrays = ["points_2d": NPYArray(doubles: xy.map(Double.init), shape: [3, 4, 2])]
        let tracks = try KeypointTracks.fromArrays(arrays, source: "x.npz")
        #expect(tracks.visibility.scalars == [Float](repeating: 1, count: 12))
        #expect(tracks.points3D == nil)
        // Boolean visibility is accepted too.
        let withBools = try KeypointTracks.fromArrays(
            arrays.merging(["visibility": NPYArray(bools: Self.sample().vis.map { $0 == 1 }, shape: [3, 4])]) { a, _ in a },
            source: "x.npz")
        #expect(withBools.visibility.scalars == Self.sample().vis)
    }

    static func c3dpoFrames(with3D: Bool) -> [[String: Any]] {
        let (xy, vis, xyz) = sample()
        return (0..<3).map { f in
            var frame: [String: Any] = [
                "kp_loc": [(0..<4).map { Double(xy[2 * (4 * f + $0)]) }, (0..<4).map { Double(xy[2 * (4 * f + $0) + 1]) }],
                "kp_vis": (0..<4).map { Int(vis[4 * f + $0]) },
            ]
            if with3D { frame["kp_loc_3d"] = (0..<3).map { k in (0..<4).map { Double(xyz[3 * (4 * f + $0) + k]) } } }
            return frame
        }
    }

    @Test func readsC3DPOJSON() throws {
        let (xy, vis, xyz) = Self.sample()
        try TestFiles.withScratchFolder { folder in
            let list = folder.appendingPathComponent("list.json")
            try JSONSerialization.data(withJSONObject: Self.c3dpoFrames(with3D: true)).write(to: list)
            let a = try KeypointTracks.load(list)
            #expect(a.points2D.shape == [3, 4, 2] && a.points2D.scalars == xy)
            #expect(a.visibility.scalars == vis)
            #expect(a.points3D?.scalars == xyz)

            let wrapped = folder.appendingPathComponent("wrapped.json")
            try JSONSerialization.data(withJSONObject: ["dataset": "sample", "data": Self.c3dpoFrames(with3D: false)]).write(to: wrapped)
            let b = try KeypointTracks.load(wrapped)
            #expect(b.points2D.scalars == xy && b.points3D == nil)
        }
        // A null coordinate is a missing value, allowed where kp_vis is 0.
        let text = """
        [{"kp_loc": [[1, 2, 3, null], [4, 5, 6, null]], "kp_vis": [1, 1, 1, 0]},
         {"kp_loc": [[1, 2, 3, 4], [4, 5, 6, 7]], "kp_vis": [true, true, false, true]}]
        """
        let c = try KeypointTracks.decodeJSON(Data(text.utf8), source: "inline.json")
        #expect(c.points2D.scalars == [1, 4, 2, 5, 3, 6, 0, 0, 1, 4, 2, 5, 3, 6, 4, 7])
        #expect(c.visibility.scalars == [1, 1, 1, 0, 1, 1, 0, 1])
    }

    @Test func readsCSVWithAndWithoutHeader() throws {
        // Frame 1, point 3 has no row: it is missing.
        var rows: [String] = []
        let (xy, vis, _) = Self.sample()
        for f in 0..<3 { for p in 0..<4 where !(f == 1 && p == 3) {
            rows.append("\(f),\(p),\(xy[2 * (4 * f + p)]),\(xy[2 * (4 * f + p) + 1])")
        } }
        let plain = try KeypointTracks.decodeCSV(rows.joined(separator: "\n") + "\n", source: "plain.csv")
        var gapped = xy
        gapped[2 * 7] = 0
        gapped[2 * 7 + 1] = 0
        #expect(plain.points2D.scalars == gapped && plain.visibility.scalars == vis)

        // Header with another column order, a visible column, CRLF line ends, comments, a hidden row with NaN.
        var lines = ["# exported tracks", "u, v, visible, point, frame"]
        for f in 0..<3 { for p in 0..<4 {
            let hidden = f == 1 && p == 3
            lines.append(hidden ? "nan,nan,0,\(p),\(f)" : "\(xy[2 * (4 * f + p)]),\(xy[2 * (4 * f + p) + 1]),1,\(p),\(f)")
        } }
        let headed = try KeypointTracks.decodeCSV(lines.joined(separator: "\r\n"), source: "headed.csv")
        #expect(headed.points2D.scalars == gapped && headed.visibility.scalars == vis)

        // Five columns without a header, through a file and load().
        try TestFiles.withScratchFolder { folder in
            let url = folder.appendingPathComponent("t.CSV")
            let five = (0..<3).flatMap { f in (0..<4).map { p in "\(f),\(p),\(p),\(f),\(f == 2 && p == 0 ? 0 : 1)" } }
            try five.joined(separator: "\n").write(to: url, atomically: false, encoding: .utf8)
            let t = try KeypointTracks.load(url)
            #expect(t.frameCount == 3 && t.pointCount == 4)
            #expect(t.visibility[2, 0] == 0 && t.visibility[2, 1] == 1)
            #expect(t.points2D[2, 1, 0] == 1 && t.points2D[2, 1, 1] == 2)
        }
    }
}
