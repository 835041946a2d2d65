import Testing
import Foundation
@testable import DeformIO
import DeformTensor

@Suite struct MeshIOTests {
    private func temp(_ name: String, _ contents: Data) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshio-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent(name)
        try contents.write(to: url)
        return url
    }

    @Test func asciiPLYWithQuadAndColours() throws {
        let text = """
        ply
        format ascii 1.0
        comment a unit square and a triangle
        element vertex 5
        property float x
        property float y
        property float z
        property uchar red
        property uchar green
        property uchar blue
        element face 2
        property list uchar int vertex_indices
        end_header
        0 0 0 255 0 0
        1 0 0 0 255 0
        1 1 0 0 0 255
        0 1 0 10 20 30
        0 0 1 1 2 3
        4 0 1 2 3
        3 0 1 4

        """
        let mesh = try readMesh(temp("quad.ply", Data(text.utf8)))
        #expect(mesh.vertexCount == 5)
        #expect(mesh.positions[6..<9] == [1, 1, 0])
        #expect(mesh.colors?[9..<12] == [10, 20, 30])
        // The quad becomes a fan of two triangles, then the triangle.
        #expect(mesh.triangles == [0, 1, 2, 0, 2, 3, 0, 1, 4])
    }

    @Test func binaryPLYBothEndiannessesAndFloatColours() throws {
        for bigEndian in [false, true] {
            var body = Data()
            func f32(_ v: Float) { var b = bigEndian ? v.bitPattern.bigEndian : v.bitPattern.littleEndian; body.append(Data(bytes: &b, count: 4)) }
            func i32(_ v: Int32) { var b = bigEndian ? v.bigEndian : v.littleEndian; body.append(Data(bytes: &b, count: 4)) }
            let verts: [[Float]] = [[0, 0, 0, 1, 0.5, 0], [2, 0, 0, 0, 1, 0], [0, 3, 0, 0, 0, 1]]
            for v in verts { v.forEach(f32) }
            body.append(3); i32(0); i32(1); i32(2)
            let header = """
            ply
            format \(bigEndian ? "binary_big_endian" : "binary_little_endian") 1.0
            element vertex 3
            property float32 x
            property float32 y
            property float32 z
            property float r
            property float g
            property float b
            element face 1
            property list uint8 int32 vertex_index
            end_header

            """
            let mesh = try readMesh(temp("tri.ply", Data(header.utf8) + body))
            #expect(mesh.positions == [0, 0, 0, 2, 0, 0, 0, 3, 0])
            #expect(mesh.colors == [255, 128, 0, 0, 255, 0, 0, 0, 255])
            #expect(mesh.triangles == [0, 1, 2])
        }
    }

    @Test func pointCloudWrittenByWritePLYReadsBack() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("pc-\(UUID().uuidString).ply")
        defer { try? FileManager.default.removeItem(at: url) }
        let points = Tensor([0.25, -1, 3, 4, 5.5, -6], shape: [2, 3])
        for format in [PLYFormat.ascii, .binaryLittleEndian] {
            try writePLY(to: url, points: points, colors: [1, 2, 3, 4, 5, 6], format: format)
            let mesh = try readMesh(url)
            #expect(mesh.positions == points.scalars)
            #expect(mesh.colors == [1, 2, 3, 4, 5, 6])
            #expect(mesh.triangles.isEmpty)
        }
    }

    @Test func gaussianPLYRoundTrip() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("g-\(UUID().uuidString).ply")
        defer { try? FileManager.default.removeItem(at: url) }
        let sh = Tensor((0..<(2 * 9 * 3)).map { Float($0) * 0.01 - 0.2 }, shape: [2, 9, 3])
        try writeGaussianPLY(to: url, means: Tensor([1, 2, 3, -4, 5, 6], shape: [2, 3]), scales: Tensor([0.5, 0.1, 0.2, 2, 2, 2], shape: [2, 3]),
                             opacities: Tensor([0.25, 0.9]), colors: sh)
        let ply = try readPLY(url)
        #expect(isGaussianPLY(ply))
        let g = try readGaussianPLY(url)
        #expect(g.count == 2 && g.shDegree == 2)
        #expect(g.means == [1, 2, 3, -4, 5, 6])
        for (a, b) in zip(g.scales, [0.5, 0.1, 0.2, 2, 2, 2] as [Float]) { #expect(abs(a - b) < 1e-6 * max(1, b)) }
        #expect(abs(g.opacities[0] - 0.25) < 1e-6 && abs(g.opacities[1] - 0.9) < 1e-6)
        // Base colour of Gaussian 1: 0.5 + C0 * DC, DC = sh[1, 0, :].
        for k in 0..<3 {
            let dc = Float(27 + k) * 0.01 - 0.2
            #expect(abs(g.baseColors[3 + k] - (0.5 + 0.28209479 * dc)) < 1e-6)
        }
        // A plain point cloud is not a Gaussian file, and reading it as one names the missing property.
        try writePLY(to: url, points: Tensor([0, 0, 0], shape: [1, 3]))
        #expect(!isGaussianPLY(try readPLY(url)))
        let error = #expect(throws: DeformIOError.self) { try readGaussianPLY(url) }
        #expect(error?.description.contains("f_dc_0") == true)
    }

    @Test func objWithSlashesNegativeIndicesAndColours() throws {
        let text = """
        # a square and a triangle
        v 0 0 0 1 0 0
        v 1 0 0 0 1 0
        v 1 1 0 0 0 1
        v 0 1 0 1 1 1
        vt 0 0
        vn 0 0 1
        f 1/1/1 2/1/1 3/1/1 4/1/1
        f -4//1 -3//1 -1//1
        """
        let mesh = try readMesh(temp("sq.obj", Data(text.utf8)))
        #expect(mesh.vertexCount == 4)
        #expect(mesh.triangles == [0, 1, 2, 0, 2, 3, 0, 1, 3])
        #expect(mesh.colors?[0..<3] == [255, 0, 0] && mesh.colors?[9..<12] == [255, 255, 255])
        // Without colours on the vertex lines there are none.
        let plain = try readMesh(temp("tri.obj", Data("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n".utf8)))
        #expect(plain.colors == nil && plain.triangles == [0, 1, 2])
    }

    @Test func badMeshFilesNameTheProblem() throws {
        func message(_ name: String, _ text: String) -> String {
            do { _ = try readMesh(temp(name, Data(text.utf8))); return "no error" } catch { return "\(error)" }
        }
        #expect(message("a.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n").contains("line 4 uses vertex 8; the mesh has 3 vertices"))
        #expect(message("b.obj", "v 0 0\n").contains("line 1"))
        #expect(message("c.obj", "v 0 0 0\nf 1 x 2\n").contains("'x' is not a vertex reference"))
        #expect(message("d.ply", "not a ply\n").contains("no PLY header"))
        let truncated = "ply\nformat binary_little_endian 1.0\nelement vertex 2\nproperty float x\nproperty float y\nproperty float z\nend_header\n"
        #expect(message("e.ply", truncated + "\u{0}\u{0}\u{0}\u{0}").contains("ends early (at vertex 0, property y)"))
        #expect(message("f.ply", "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty float z\nend_header\n0 zero 0\n")
            .contains("'zero' is not a number"))
        #expect(message("g.ply", "ply\nformat ascii 1.0\nelement vertex 1\nproperty quad x\nend_header\n").contains("unknown type"))
        #expect(message("h.ply", "ply\nformat ascii 1.0\nelement point 1\nproperty float x\nend_header\n1\n").contains("missing entry 'vertex'"))
        #expect(message("i.stl", "solid").contains("expected .ply or .obj"))
        // A header promising more rows than the body can hold is refused before allocating them.
        #expect(message("j.ply", "ply\nformat ascii 1.0\nelement vertex 999999999999\nproperty float x\nend_header\n1\n")
            .contains("declares 999999999999 vertex rows"))
        // List items that are not integers (NaN, fractions) are not indices.
        let faces = "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
            + "element face 1\nproperty list uchar float vertex_indices\nend_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 nan\n"
        #expect(message("k.ply", faces).contains("is not an index"))
    }
}
