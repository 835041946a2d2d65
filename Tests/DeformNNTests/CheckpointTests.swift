import Testing
import Foundation
@testable import DeformNN
import DeformTensor

final class CheckpointModel: Module {
    let body: MLP
    let norm: BatchNorm1d
    init(seed: UInt64, hidden: Int = 8) {
        var rng = RandomGenerator(seed: seed)
        body = MLP(widths: [3, hidden, 4], rng: &rng)
        norm = BatchNorm1d(channels: 4)
    }
    override func callAsFunction(_ x: Tensor) -> Tensor { norm(body(x)) }
}

func temporaryDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("deformnn-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// Builds a safetensors file from a raw header string and data bytes.
func rawSafetensors(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> Data {
    var out = Data()
    let h = Array(header.utf8)
    withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
    out.append(contentsOf: h)
    out.append(contentsOf: data)
    return out
}

func expectCorrupt(_ data: Data, mentions: String, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try decodeSafetensors(data, file: "bad.safetensors")
        Issue.record("expected an error mentioning '\(mentions)'", sourceLocation: sourceLocation)
    } catch {
        #expect("\(error)".contains(mentions), "\(error)", sourceLocation: sourceLocation)
        #expect("\(error)".contains("bad.safetensors"), sourceLocation: sourceLocation)
    }
}

@Suite struct CheckpointTests {
    @Test func roundTripIsBitIdentical() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = CheckpointModel(seed: 1)
        var rng = RandomGenerator(seed: 5)
        let x = rng.normal([6, 3])
        _ = a(x)  // moves the BatchNorm running statistics away from their initial values
        a.eval()
        let url = dir.appendingPathComponent("model.safetensors")
        try saveCheckpoint(a, to: url, metadata: ["step": "100", "method": "test \"quoted\"\n"])
        let b = CheckpointModel(seed: 2)
        b.eval()
        #expect(b(x).scalars != a(x).scalars)
        let meta = try loadCheckpoint(into: b, from: url)
        #expect(meta == ["step": "100", "method": "test \"quoted\"\n"])
        #expect(b(x).scalars == a(x).scalars)
        #expect(b.norm.runningVar!.scalars == a.norm.runningVar!.scalars)
        // No temporary files left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["model.safetensors"])
    }

    @Test func fileLayoutFollowsTheFormat() throws {
        let data = encodeSafetensors(["w": Tensor([[1, 2], [3, 4]]), "b": Tensor([-1.5])], metadata: ["k": "v"])
        let n = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(n % 8 == 0)
        #expect((8 + n + 20) == data.count)
        let header = String(decoding: data[8..<(8 + n)], as: UTF8.self)
        let json = try JSONSerialization.jsonObject(with: Data(header.utf8)) as! [String: Any]
        let w = json["w"] as! [String: Any]
        #expect(w["dtype"] as? String == "F32")
        #expect(w["shape"] as? [Int] == [2, 2])
        #expect(w["data_offsets"] as? [Int] == [4, 20])
        #expect((json["b"] as! [String: Any])["data_offsets"] as? [Int] == [0, 4])
        #expect((json["__metadata__"] as? [String: String]) == ["k": "v"])
        // Little-endian float32 payload: -1.5 then 1, 2, 3, 4.
        let payload = Array(data[(8 + n)...])
        #expect(payload[0..<4] == [0x00, 0x00, 0xC0, 0xBF])
        #expect(payload[4..<8] == [0x00, 0x00, 0x80, 0x3F])
        let back = try decodeSafetensors(data)
        #expect(back.tensors["w"]!.scalars == [1, 2, 3, 4] && back.tensors["w"]!.shape == [2, 2])
        #expect(back.metadata == ["k": "v"])
        // A scalar and an empty tensor survive too.
        let odd = try decodeSafetensors(encodeSafetensors(["s": Tensor(2.5), "e": Tensor.zeros([0, 3])]))
        #expect(odd.tensors["s"]!.shape == [] && odd.tensors["s"]!.item == 2.5)
        #expect(odd.tensors["e"]!.shape == [0, 3])
    }

    @Test func convertsOtherDTypes() throws {
        // F64 1.5, F16 -2 (0xC000), BF16 3 (0x4040), I64 7, F16 subnormal 2^-24 (0x0001).
        var data: [UInt8] = []
        withUnsafeBytes(of: Double(1.5).bitPattern.littleEndian) { data += $0 }
        data += [0x00, 0xC0, 0x40, 0x40]
        withUnsafeBytes(of: Int64(7).littleEndian) { data += $0 }
        data += [0x01, 0x00]
        let header = #"{"d":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"h":{"dtype":"F16","shape":[1],"data_offsets":[8,10]},"# +
            #""b":{"dtype":"BF16","shape":[],"data_offsets":[10,12]},"i":{"dtype":"I64","shape":[1,1],"data_offsets":[12,20]},"# +
            #""s":{"dtype":"F16","shape":[1],"data_offsets":[20,22]}}"#
        let r = try decodeSafetensors(rawSafetensors(header: header, data: data))
        #expect(r.tensors["d"]!.scalars == [1.5])
        #expect(r.tensors["h"]!.scalars == [-2])
        #expect(r.tensors["b"]!.item == 3)
        #expect(r.tensors["i"]!.scalars == [7] && r.tensors["i"]!.shape == [1, 1])
        #expect(r.tensors["s"]!.item == Float(pow(2.0, -24.0)))
    }

    @Test func corruptFilesThrowClearErrors() {
        let good = #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        expectCorrupt(Data([1, 2, 3]), mentions: "shorter than the 8-byte header length")
        expectCorrupt(rawSafetensors(header: good, data: [UInt8](repeating: 0, count: 8), declaredLength: 5000), mentions: "truncated")
        expectCorrupt(rawSafetensors(header: "", declaredLength: UInt64.max), mentions: "exceeds")
        expectCorrupt(rawSafetensors(header: "{\"w\": [1, 2", data: []), mentions: "not valid JSON")
        expectCorrupt(rawSafetensors(header: "[1, 2]"), mentions: "not a JSON object")
        expectCorrupt(rawSafetensors(header: good, data: [0, 0, 0, 0]), mentions: "fall outside")
        expectCorrupt(rawSafetensors(header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)),
                      mentions: "needs 12 bytes")
        expectCorrupt(rawSafetensors(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                                     data: [UInt8](repeating: 0, count: 12)), mentions: "overlap")
        expectCorrupt(rawSafetensors(header: #"{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)),
                      mentions: "not a non-negative integer")
        expectCorrupt(rawSafetensors(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, data: [UInt8](repeating: 0, count: 8)),
                      mentions: "fall outside")
        expectCorrupt(rawSafetensors(header: #"{"w":{"shape":[2],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)),
                      mentions: "no dtype")
        expectCorrupt(rawSafetensors(header: #"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}"#,
                                     data: [UInt8](repeating: 0, count: 8)), mentions: "not a non-negative integer")
        expectCorrupt(rawSafetensors(header: #"{"w":{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,8]}}"#,
                                     data: [UInt8](repeating: 0, count: 8)), mentions: "larger than the file")
        do {
            _ = try decodeSafetensors(rawSafetensors(header: #"{"w":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)))
            Issue.record("C64 accepted")
        } catch {
            #expect("\(error)".contains("C64") && "\(error)".contains("'w'"))
        }
        // Every truncation of a valid file fails cleanly.
        let valid = encodeSafetensors(["a": Tensor([1, 2, 3]), "b": Tensor([[4]])], metadata: ["x": "y"])
        for n in 0..<valid.count {
            #expect(throws: CheckpointError.self) { try decodeSafetensors(valid.prefix(n)) }
        }
    }

    @Test func mismatchedCheckpointsListEveryProblemAndChangeNothing() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("wide.safetensors")
        try saveCheckpoint(CheckpointModel(seed: 1, hidden: 16), to: url)
        let model = CheckpointModel(seed: 3)
        let before = model.stateTensors()
        do {
            try loadCheckpoint(into: model, from: url)
            Issue.record("shape mismatch accepted")
        } catch let error as CheckpointError {
            guard case let .mismatch(_, missing, unexpected, shapes) = error else { Issue.record("\(error)"); return }
            #expect(missing.isEmpty && unexpected.isEmpty)
            #expect(shapes.map { $0.name } == ["body.layers.0.weight", "body.layers.0.bias", "body.layers.1.weight"])
            #expect(shapes[0].expected == [8, 3] && shapes[0].found == [16, 3])
            #expect(error.description.contains("body.layers.0.weight expected [8, 3] found [16, 3]"))
        }
        for ((n, a), (_, b)) in zip(before, model.stateTensors()) { #expect(a.scalars == b.scalars, "\(n) modified") }

        // Missing and unexpected names.
        var tensors = Dictionary(uniqueKeysWithValues: CheckpointModel(seed: 4).stateTensors())
        tensors["norm.runningVar"] = nil
        tensors["extra.weight"] = Tensor([1])
        let url2 = dir.appendingPathComponent("renamed.safetensors")
        try writeSafetensors(tensors, to: url2)
        do {
            try loadCheckpoint(into: model, from: url2)
            Issue.record("missing/unexpected accepted")
        } catch {
            let text = "\(error)"
            #expect(text.contains("missing 1 tensor(s) the model needs: norm.runningVar"), "\(text)")
            #expect(text.contains("unexpected tensor(s) the model does not have: extra.weight"), "\(text)")
            #expect(text.contains("renamed.safetensors"))
        }
        for ((n, a), (_, b)) in zip(before, model.stateTensors()) { #expect(a.scalars == b.scalars, "\(n) modified") }
        // Non-strict loading takes what matches.
        try loadCheckpoint(into: model, from: url2, strict: false)
        #expect(model.body.layers[0].weight.scalars == tensors["body.layers.0.weight"]!.scalars)
        #expect(model.norm.runningVar!.scalars == before.first { $0.0 == "norm.runningVar" }!.1.scalars)
    }

    @Test func ioErrorsNameTheFile() throws {
        let missing = URL(fileURLWithPath: "/nonexistent-dir/x.safetensors")
        do { _ = try readSafetensors(missing); Issue.record("read of a missing file succeeded") } catch {
            #expect("\(error)".contains("/nonexistent-dir/x.safetensors"))
        }
        #expect(throws: CheckpointError.self) { try writeSafetensors(["a": Tensor([1])], to: missing) }
        // Overwriting an existing checkpoint replaces it whole.
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("c.safetensors")
        try writeSafetensors(["a": Tensor([1, 2, 3, 4, 5, 6])], to: url)
        try writeSafetensors(["b": Tensor([7])], to: url)
        let r = try readSafetensors(url)
        #expect(Array(r.tensors.keys) == ["b"])
    }
}
