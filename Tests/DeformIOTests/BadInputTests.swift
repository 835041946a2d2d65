import Foundation
import Testing
@testable import DeformIO
import DeformTensor
import ZIPFoundation

/// Every way a user's file can be wrong must produce a message naming the file, the entry and,
/// for shape errors, the expected and the found shape.
@Suite struct BadInputTests {
    static func grid(_ f: Int, _ p: Int, _ c: Int) -> NPYArray {
        NPYArray(doubles: (0..<(f * p * c)).map { Double($0 % 13) }, shape: [f, p, c])
    }

    /// Writes `arrays` to an .npz in a scratch folder and returns the loader's error message.
    static func npzMessage(_ arrays: [String: NPYArray]) throws -> (message: String, path: String) {
        try TestFiles.withScratchFolder { folder in
            let url = folder.appendingPathComponent("bad.npz")
            try writeNPZ(arrays, to: url)
            return (errorMessage { _ = try KeypointTracks.load(url) }, url.path)
        }
    }

    @Test func missingPoints2DListsEntries() throws {
        let (m, path) = try Self.npzMessage(["pts": Self.grid(4, 5, 2), "visibility": NPYArray(uint8s: .init(repeating: 1, count: 20), shape: [4, 5])])
        expectMentions(m, [path, "missing entry 'points_2d'", "'pts'", "'visibility'"])
    }

    @Test func wrongRankAndShape() throws {
        let (rank, path) = try Self.npzMessage(["points_2d": NPYArray(doubles: .init(repeating: 1, count: 40), shape: [10, 4])])
        expectMentions(rank, [path, "'points_2d'", "[F, P, 2]", "found [10, 4]"])
        let (last, _) = try Self.npzMessage(["points_2d": Self.grid(4, 5, 3)])
        expectMentions(last, ["'points_2d'", "[F, P, 2]", "found [4, 5, 3]"])
        let (p3, _) = try Self.npzMessage(["points_2d": Self.grid(4, 5, 2), "points_3d": Self.grid(4, 6, 3)])
        expectMentions(p3, ["'points_3d'", "expected shape [4, 5, 3]", "found [4, 6, 3]"])
    }

    @Test func tooFewPoints() throws {
        let (m, path) = try Self.npzMessage(["points_2d": Self.grid(4, 2, 2)])
        expectMentions(m, [path, "'points_2d'", "P >= 3", "found [4, 2, 2]"])
    }

    @Test func visibilityShapeAndValues() throws {
        let (shape, path) = try Self.npzMessage(["points_2d": Self.grid(4, 5, 2), "visibility": NPYArray(uint8s: .init(repeating: 1, count: 24), shape: [4, 6])])
        expectMentions(shape, [path, "'visibility'", "expected shape [4, 5]", "found [4, 6]"])
        var values = [Double](repeating: 1, count: 20)
        values[7] = 0.5
        let (value, _) = try Self.npzMessage(["points_2d": Self.grid(4, 5, 2), "visibility": NPYArray(doubles: values, shape: [4, 5])])
        expectMentions(value, ["'visibility'", "0.5", "frame 1, point 2", "0 (missing) or 1"])
    }

    @Test func nonFiniteVisibleCoordinates() throws {
        for bad in [Double.nan, .infinity] {
            var xy = Self.grid(4, 5, 2).doubles()
            xy[2 * (1 * 5 + 2) + 1] = bad
            let (m, path) = try Self.npzMessage(["points_2d": NPYArray(doubles: xy, shape: [4, 5, 2])])
            expectMentions(m, [path, "'points_2d'", "frame 1, point 2", "\(Float(bad))", "visibility = 0"])
        }
        var xyz = Self.grid(4, 5, 3).doubles()
        xyz[3 * 6] = .nan
        let (gt, _) = try Self.npzMessage(["points_2d": Self.grid(4, 5, 2), "points_3d": NPYArray(doubles: xyz, shape: [4, 5, 3])])
        expectMentions(gt, ["'points_3d'", "frame 1, point 1", "finite"])
    }

    @Test func frameWithTooFewVisiblePoints() throws {
        var vis = [UInt8](repeating: 1, count: 20)
        for p in 0..<4 { vis[2 * 5 + p] = 0 }  // frame 2 keeps only point 4
        let (m, path) = try Self.npzMessage(["points_2d": Self.grid(4, 5, 2), "visibility": NPYArray(uint8s: vis, shape: [4, 5])])
        expectMentions(m, [path, "'visibility'", "frame 2 has 1 visible point", "at least 2"])
    }

    @Test func unreadableAndCorruptFiles() throws {
        try TestFiles.withScratchFolder { folder in
            let missing = folder.appendingPathComponent("nothing.npz")
            expectMentions(errorMessage { _ = try KeypointTracks.load(missing) }, [missing.path, "no such file"])
            expectMentions(errorMessage { _ = try readNPZ(folder) }, [folder.path, "is a directory"])

            let garbage = folder.appendingPathComponent("garbage.npz")
            try Data("this is not a zip file at all, just some text".utf8).write(to: garbage)
            expectMentions(errorMessage { _ = try KeypointTracks.load(garbage) }, [garbage.path, "not a ZIP archive"])

            // Half an archive: the directory at the end is gone.
            let good = try encodeNPZ(["points_2d": Self.grid(4, 5, 2)])
            let truncated = folder.appendingPathComponent("truncated.npz")
            try good.prefix(good.count / 2).write(to: truncated)
            expectMentions(errorMessage { _ = try readNPZ(truncated) }, [truncated.path, "not a valid file"])

            // A damaged byte inside the compressed member: the CRC or the inflater must notice.
            var damaged = [UInt8](good)
            let dataStart = 30 + "points_2d.npy".utf8.count
            damaged[dataStart + 40] ^= 0x5A
            let flipped = folder.appendingPathComponent("flipped.npz")
            try Data(damaged).write(to: flipped)
            expectMentions(errorMessage { _ = try readNPZ(flipped) }, [flipped.path, "entry 'points_2d.npy'", "not a valid file"])

            // A damaged data byte in a stored member keeps every size right; only the CRC tells.
            var storedBytes = [UInt8](try encodeNPZ(["points_2d": Self.grid(4, 5, 2)], compressed: false))
            storedBytes[dataStart + 300] ^= 0x01
            let bitFlip = folder.appendingPathComponent("bitflip.npz")
            try Data(storedBytes).write(to: bitFlip)
            expectMentions(errorMessage { _ = try KeypointTracks.load(bitFlip) }, [bitFlip.path, "entry 'points_2d.npy'", "CRC-32 mismatch"])

            let txt = folder.appendingPathComponent("tracks.txt")
            try Data("1,2".utf8).write(to: txt)
            expectMentions(errorMessage { _ = try KeypointTracks.load(txt) }, [txt.path, "'.txt'", ".npz", ".json", ".csv"])
        }
    }

    @Test func corruptNPYMembers() throws {
        let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (4, 5, 2), }\n"
        // Too few data bytes for the declared shape.
        let short = handMadeNPY(header: header, payload: [UInt8](repeating: 0, count: 100))
        expectMentions(errorMessage { _ = try decodeNPY(short, file: "f.npz", entry: "points_2d") },
                       ["f.npz", "entry 'points_2d'", "[4, 5, 2]", "truncated"])
        let magic = Data("NOTNPY".utf8 + [1, 0, 0, 0])
        expectMentions(errorMessage { _ = try decodeNPY(magic, file: "g.npy") }, ["g.npy", "magic"])
        let complex = handMadeNPY(header: "{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }\n", payload: .init(repeating: 0, count: 16))
        expectMentions(errorMessage { _ = try decodeNPY(complex, file: "c.npz", entry: "z") }, ["c.npz", "entry 'z'", "unsupported dtype '<c16'", "<f4"])
        let structured = handMadeNPY(header: "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }\n", payload: .init(repeating: 0, count: 4))
        expectMentions(errorMessage { _ = try decodeNPY(structured, file: "s.npy") }, ["s.npy", "unsupported dtype structured"])
        let broken = handMadeNPY(header: "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }\n", payload: .init(repeating: 0, count: 4))
        expectMentions(errorMessage { _ = try decodeNPY(broken, file: "b.npy") }, ["b.npy", "Maybe"])
        let version = Data([0x93] + Array("NUMPY".utf8) + [9, 0, 0, 0])
        expectMentions(errorMessage { _ = try decodeNPY(version, file: "v.npy") }, ["v.npy", "version 9.0"])
        let longHeader = Data([0x93] + Array("NUMPY".utf8) + [1, 0, 0xFF, 0x00] + Array("{'descr'".utf8))
        expectMentions(errorMessage { _ = try decodeNPY(longHeader, file: "h.npy") }, ["h.npy", "header length 255", "truncated"])

        // A corrupt member inside an intact archive: named by archive path and member.
        let archive = try Archive(accessMode: .create)
        let bytes = short
        try archive.addEntry(with: "points_2d.npy", type: .file, uncompressedSize: Int64(bytes.count), compressionMethod: .deflate) { position, size in
            bytes.subdata(in: Int(position)..<(Int(position) + size))
        }
        let readme = Data("not an array".utf8)
        try archive.addEntry(with: "README.txt", type: .file, uncompressedSize: Int64(readme.count)) { position, size in
            readme.subdata(in: Int(position)..<(Int(position) + size))
        }
        let member = errorMessage { _ = try KeypointTracks.fromArrays(decodeNPZ(archive.data!, file: "member.npz"), source: "member.npz") }
        expectMentions(member, ["member.npz", "entry 'points_2d'", "[4, 5, 2]", "truncated"])
    }

    @Test func badJSON() throws {
        func message(_ text: String) -> String {
            errorMessage { _ = try KeypointTracks.decodeJSON(Data(text.utf8), source: "k.json") }
        }
        expectMentions(message("{not json"), ["k.json", "not valid JSON"])
        expectMentions(message(#"{"frames": [], "dataset": "x"}"#), ["k.json", "missing entry 'data'", "'dataset'", "'frames'"])
        expectMentions(message(#"[{"kp_vis": [1, 1, 1]}]"#), ["k.json", "missing entry '[0].kp_loc'", "'kp_vis'"])
        // Points as rows (P x 2) instead of 2 x P.
        expectMentions(message(#"{"data": [{"kp_loc": [[1, 2], [3, 4], [5, 6]]}]}"#),
                       ["k.json", "'data[0].kp_loc'", "[2, P]", "found [3, 2]"])
        // Frames disagree on P.
        expectMentions(message(#"[{"kp_loc": [[1, 2, 3], [4, 5, 6]]}, {"kp_loc": [[1, 2, 3, 4], [4, 5, 6, 7]]}]"#),
                       ["k.json", "'[1].kp_loc'", "[2, 3]", "found [2, 4]"])
        expectMentions(message(#"[{"kp_loc": [[1, 2, 3], [4, 5, 6]], "kp_vis": [1, 1]}]"#),
                       ["k.json", "'[0].kp_vis'", "expected shape [3]", "found [2]"])
        expectMentions(message(#"[{"kp_loc": [[1, 2, 3], [4, 5, 6]], "kp_vis": [1, 2, 1]}]"#),
                       ["k.json", "'kp_vis'", "holds 2.0", "frame 0, point 1"])
        expectMentions(message(#"[{"kp_loc": [[1, 2, 3], [4, 5, 6]]}, {"kp_loc": [[1, 2, 3], [4, 5, 6]], "kp_loc_3d": [[1, 2, 3], [4, 5, 6], [7, 8, 9]]}]"#),
                       ["k.json", "'[1].kp_loc_3d'", "every frame or in none"])
        expectMentions(message(#"[{"kp_loc": [[1, 2, 3], [4, 5, 6]], "kp_loc_3d": [[1, 2, 3], [4, 5, 6]]}]"#),
                       ["k.json", "'[0].kp_loc_3d'", "[3, 3]", "found [2, 3]"])
        expectMentions(message(#"[{"kp_loc": [[1, 2], [4, 5]]}]"#), ["k.json", "'kp_loc'", "P >= 3", "found [1, 2, 2]"])
        expectMentions(message(#"[{"kp_loc": [[1, null, 3], [4, 5, 6]], "kp_vis": [1, 1, 1]}]"#),
                       ["k.json", "'kp_loc'", "frame 0, point 1", "kp_vis = 0"])
        expectMentions(message(#"[{"kp_loc": [[1, 2, 3], [4, 5, 6]], "kp_vis": [1, 0, 0]}]"#),
                       ["k.json", "'kp_vis'", "frame 0 has 1 visible point"])
    }

    @Test func badCSV() throws {
        func message(_ text: String) -> String {
            errorMessage { _ = try KeypointTracks.decodeCSV(text, source: "k.csv") }
        }
        let good = (0..<2).flatMap { f in (0..<3).map { p in "\(f),\(p),\(p).5,\(f).5" } }
        expectMentions(message("0,0,1\n"), ["k.csv", "'line 1'", "4 or 5 columns", "found 3 columns"])
        expectMentions(message((good + ["1,2,3"]).joined(separator: "\n")), ["k.csv", "'line 7'", "4 columns", "found 3 columns"])
        expectMentions(message((good + ["1,2,abc,3"]).joined(separator: "\n")), ["k.csv", "'line 7'", "u 'abc' is not a number"])
        expectMentions(message((good + ["1,-2,3,3"]).joined(separator: "\n")), ["k.csv", "'line 7'", "point '-2'"])
        expectMentions(message((good + ["1,2,3,3"]).joined(separator: "\n")), ["k.csv", "'line 7'", "frame 1, point 2", "line 6"])
        expectMentions(message("frame,point,x,z\n0,0,1,1"), ["k.csv", "'line 1'", "unknown column 'z'"])
        expectMentions(message("frame,point,x,visible\n0,0,1,1"), ["k.csv", "column 'v'"])
        expectMentions(message(good.map { "\($0),2" }.joined(separator: "\n")), ["k.csv", "'line 1'", "visible '2'"])
        let oneBased = (1..<3).flatMap { f in (0..<3).map { p in "\(f),\(p),1,1" } }
        expectMentions(message(oneBased.joined(separator: "\n")), ["k.csv", "no row has frame 0", "0-based"])
        expectMentions(message((good + ["4000000000,0,1,1"]).joined(separator: "\n")), ["k.csv", "frame 4000000000", "dense"])
        // A frame with a gap large enough to leave 1 visible point.
        let gappy = good.filter { !$0.hasPrefix("1,0,") && !$0.hasPrefix("1,1,") }
        expectMentions(message(gappy.joined(separator: "\n")), ["k.csv", "'visible'", "frame 1 has 1 visible point"])
        expectMentions(message(good.map { $0.replacingOccurrences(of: "1,1,1.5", with: "1,1,nan") }.joined(separator: "\n")),
                       ["k.csv", "frame 1, point 1", "nan"])
        expectMentions(message("# only a comment\n"), ["k.csv", "no data rows"])
    }

    @Test func writersRejectBadShapesAndLeaveNoFile() throws {
        try TestFiles.withScratchFolder { folder in
            let url = folder.appendingPathComponent("reconstruction.npz")
            let m = errorMessage {
                try writeReconstruction(to: url, points3D: Tensor(shape: [4, 5, 3], repeating: 0), rotations: Tensor(shape: [4, 3, 2], repeating: 0))
            }
            expectMentions(m, [url.path, "'rotations'", "[4, 3, 3]", "found [4, 3, 2]"])
            let p = errorMessage { try writeReconstruction(to: url, points3D: Tensor(shape: [4, 5], repeating: 0), rotations: Tensor(shape: [4, 3, 3], repeating: 0)) }
            expectMentions(p, ["'points_3d'", "[F, P, 3]", "found [4, 5]"])
            let clash = errorMessage {
                try writeReconstruction(to: url, points3D: Tensor(shape: [4, 5, 3], repeating: 0), rotations: Tensor(shape: [4, 3, 3], repeating: 0),
                                        extra: ["rotations": Tensor([1])])
            }
            expectMentions(clash, ["'rotations'", "collides"])
            let ply = folder.appendingPathComponent("cloud.ply")
            expectMentions(errorMessage { try writePLY(to: ply, points: Tensor(shape: [5, 2], repeating: 0)) }, [ply.path, "[P, 3]", "found [5, 2]"])
            expectMentions(errorMessage { try writePLY(to: ply, points: Tensor(shape: [5, 3], repeating: 0), colors: [1, 2, 3]) },
                           ["'colors'", "[5, 3]", "found 3 bytes"])
            let nowhere = folder.appendingPathComponent("no/such/dir/x.npz")
            expectMentions(errorMessage { try writeNPZ(["a": Tensor([1])], to: nowhere) }, [nowhere.path, "does not exist"])
            let remaining = try TestFiles.contents(of: folder)
            #expect(remaining == [])
        }
    }
}
