import Testing
import Foundation
@testable import DeformNN
import DeformTensor

/// Edge cases of the layers and optimizers: degenerate shapes and state that does not fit.
@Suite struct NNEdgeCaseTests {
    /// Momentum buffers restored for a parameter of another size (a checkpoint of another model,
    /// or a parameter resized since) are dropped, as Adam does, instead of being indexed out of range.
    @Test func sgdMomentumStateOfAnotherSizeStartsFresh() throws {
        final class Vec: Module {
            @Parameter var p: Tensor
            init(_ n: Int) { p = Tensor.ones([n]) }
        }
        let model = Vec(64)
        let opt = SGD(learningRate: 0.1, momentum: 0.9)
        try opt.loadState(["momentum_buffer.p": Tensor([100, 100])])
        let g = Tensor.full([64], 2)
        opt.update(model: model, gradients: ["p": g])
        // A fresh buffer makes the first step plain SGD: p = 1 - 0.1 * 2.
        #expect(model.p.scalars.allSatisfy { abs($0 - 0.8) < 1e-6 }, "\(model.p)")
        #expect(opt.stateTensors()["momentum_buffer.p"]?.count == 64)
    }

    /// A step counter that is not a non-negative integer (a corrupt or foreign state file) throws
    /// instead of trapping in the Float-to-Int conversion.
    @Test func adamStateWithABadStepCounterThrows() {
        for bad: Float in [.nan, .infinity, -3, 2.5, 1e30] {
            let opt = Adam()
            #expect(throws: CheckpointError.self, "step \(bad)") {
                try opt.loadState(["exp_avg.w": Tensor([0, 0]), "exp_avg_sq.w": Tensor([0, 0]), "step.w": Tensor(bad)])
            }
        }
        let opt = Adam()
        #expect(throws: Never.self) {
            try opt.loadState(["exp_avg.w": Tensor([0, 0]), "exp_avg_sq.w": Tensor([0, 0]), "step.w": Tensor(7)])
        }
        #expect(opt.stateTensors()["step.w"]?.item == 7)
    }

    /// State read from a file that does not fit the optimizer names that file.
    @Test func optimizerStateErrorsNameTheFile() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("opt.safetensors")
        try writeSafetensors(["bogus.w": Tensor([1])], to: url, metadata: ["optimizer": "SGD", "step": "3"])
        do {
            try SGD(learningRate: 0.1).loadState(from: url)
            Issue.record("loading foreign state did not throw")
        } catch {
            #expect("\(error)".contains(url.path) && "\(error)".contains("bogus.w"), "\(error)")
        }
    }

    @Test func groupNormGradientOnEmptySpatialInput() {
        let gn = GroupNorm(groups: 2, channels: 4)
        let x = Tensor.zeros([2, 4, 0]).requiringGrad()
        let y = gn(x)
        #expect(y.shape == [2, 4, 0])
        let gs = grad(of: y.sum(), wrt: [x, gn.weight!, gn.bias!])
        #expect(gs[0].shape == [2, 4, 0])
        #expect(gs[1].scalars == [0, 0, 0, 0] && gs[2].scalars == [0, 0, 0, 0])
    }

    /// Random byte changes, truncations and header edits of a valid file: every one decodes or
    /// throws, none crashes.
    @Test func damagedFilesNeverCrashTheDecoder() {
        let valid = encodeSafetensors(["a": Tensor([1, 2, 3]), "bb": Tensor.ones([2, 2]), "c": Tensor(5), "e": Tensor.zeros([0, 3])], metadata: ["k": "v"])
        var rng = RandomGenerator(seed: 1)
        var thrown = 0
        for _ in 0..<2000 {
            var d = [UInt8](valid)
            let kind = rng.int(below: 4)
            let hl = Int(d[0]) + 256 * Int(d[1]) + 8
            switch kind {
            case 0: let i = rng.int(below: d.count); d[i] = UInt8(rng.int(below: 256))
            case 1: let i = 8 + rng.int(below: hl - 8); d[i] = [UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "e"), UInt8(ascii: "1"), UInt8(ascii: "."), UInt8(ascii: "0"), UInt8(ascii: "]"), UInt8(ascii: ",")][rng.int(below: 8)]
            case 2: d = Array(d.prefix(rng.int(below: d.count)))
            default:
                let s = String(decoding: d[8..<hl], as: UTF8.self)
                let edits = [("\"F32\"", "\"F64\""), ("[3]", "[1e30]"), ("[0,12]", "[12,0]"), ("\"shape\":[]", "\"shape\":[-1]"),
                             ("[2,2]", "[4294967296,4294967296]")]
                let (from, to) = edits[rng.int(below: edits.count)]
                let ns = s.replacingOccurrences(of: from, with: to)
                var h = Array(ns.utf8)
                while h.count % 8 != 0 { h.append(0x20) }
                var out = withUnsafeBytes(of: UInt64(h.count).littleEndian) { Array($0) }
                out += h
                out += d[hl...]
                d = out
            }
            do { _ = try decodeSafetensors(Data(d)) } catch { thrown += 1 }
        }
        #expect(thrown > 0)
    }
}
