import Testing
import Foundation
@testable import DeformNN
import DeformTensor

func maxAbsDiff(_ a: Tensor, _ b: Tensor) -> Float {
    precondition(a.shape == b.shape, "\(a.shape) vs \(b.shape)")
    return zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0
}

/// Mean and (biased) standard deviation of a list of values.
func stats(_ v: [Float]) -> (mean: Double, std: Double) {
    let m = v.reduce(0.0) { $0 + Double($1) } / Double(v.count)
    let s = v.reduce(0.0) { $0 + (Double($1) - m) * (Double($1) - m) } / Double(v.count)
    return (m, s.squareRoot())
}

@Suite struct LayerTests {
    // MARK: Initialisation

    @Test func linearInitMatchesPyTorchDefaults() {
        var rng = RandomGenerator(seed: 11)
        let lin = Linear(64, 200, rng: &rng)
        let bound: Float = 1 / 8
        let w = lin.weight.scalars, b = lin.bias!.scalars
        #expect(lin.weight.shape == [200, 64] && lin.bias!.shape == [200])
        #expect(w.allSatisfy { $0 >= -bound && $0 < bound })
        #expect(b.allSatisfy { $0 >= -bound && $0 < bound })
        // U(-a, a) has mean 0 and std a/√3; 12800 draws pin both to a few percent.
        let s = stats(w)
        #expect(abs(s.mean) < 0.005)
        #expect(abs(s.std - Double(bound) / 3.0.squareRoot()) < 0.002)
        #expect(w.max()! > 0.95 * bound && w.min()! < -0.95 * bound)
        // Seeded: same seed, same weights; different seed, different weights.
        var r1 = RandomGenerator(seed: 11), r2 = RandomGenerator(seed: 12)
        #expect(Linear(64, 200, rng: &r1).weight.scalars == w)
        #expect(Linear(64, 200, rng: &r2).weight.scalars != w)
    }

    @Test func normAndEmbeddingInit() {
        var rng = RandomGenerator(seed: 12)
        let gn = GroupNorm(groups: 2, channels: 4)
        #expect(gn.weight!.scalars == [1, 1, 1, 1] && gn.bias!.scalars == [0, 0, 0, 0])
        let bn = BatchNorm2d(channels: 3)
        #expect(bn.weight!.scalars == [1, 1, 1] && bn.bias!.scalars == [0, 0, 0])
        #expect(bn.runningMean!.scalars == [0, 0, 0] && bn.runningVar!.scalars == [1, 1, 1])
        #expect(bn.parameters().map { $0.0 } == ["weight", "bias"])
        #expect(bn.namedBuffers().map { $0.0 } == ["runningMean", "runningVar"])
        let ln = LayerNorm([2, 3])
        #expect(ln.weight!.shape == [2, 3] && ln.bias!.scalars.allSatisfy { $0 == 0 })
        let emb = Embedding(100, 50, rng: &rng)
        let s = stats(emb.weight.scalars)
        #expect(abs(s.mean) < 0.04 && abs(s.std - 1) < 0.04)
        #expect(GroupNorm(groups: 1, channels: 2, affine: false).parameters().isEmpty)
        // Other initialisers: Xavier bound √(6 / (in + out)), Kaiming std √(2 / in).
        let xav = Initializers.xavierUniform([40, 60], fanIn: 60, fanOut: 40, using: &rng).scalars
        let a = (6.0 / 100.0).squareRoot()
        #expect(xav.allSatisfy { abs(Double($0)) <= a } && Double(xav.map(abs).max()!) > 0.95 * a)
        let kai = stats(Initializers.kaimingNormal([100, 50], fanIn: 50, using: &rng).scalars)
        #expect(abs(kai.std - 0.2) < 0.01 && abs(kai.mean) < 0.01)
    }

    // MARK: Linear

    @Test func linearForwardAndGradient() {
        var rng = RandomGenerator(seed: 13)
        let lin = Linear(3, 2, rng: &rng)
        let x = rng.normal([2, 4, 3])
        let y = lin(x)
        #expect(y.shape == [2, 4, 2])
        for b in 0..<2 { for i in 0..<4 { for o in 0..<2 {
            var s = lin.bias![o]
            for k in 0..<3 { s += x[b, i, k] * lin.weight[o, k] }
            #expect(abs(y[b, i, o] - s) < 1e-5)
        } } }
        #expect(lin(Tensor([1, 2, 3])).shape == [2])
        let r = GradientCheck.check([x, lin.weight, lin.bias!]) { xs in linear(xs[0], weight: xs[1], bias: xs[2]) }
        #expect(r.passed, "\(r)")
        let r2 = GradientCheck.check([x, lin.weight]) { xs in linear(xs[0], weight: xs[1]) }
        #expect(r2.passed, "\(r2)")
    }

    // MARK: Normalisation

    @Test func groupNormForwardAndGradient() {
        var rng = RandomGenerator(seed: 14)
        let gn = GroupNorm(groups: 2, channels: 4)
        gn.weight = rng.normal([4]) + 1
        gn.bias = rng.normal([4])
        let x = rng.normal([2, 4, 3]) * 2 + 1
        let y = gn(x)
        // Reference: groups of 2 channels x 3 positions.
        for n in 0..<2 { for g in 0..<2 {
            var vals: [Float] = []
            for c in (2 * g)..<(2 * g + 2) { for l in 0..<3 { vals.append(x[n, c, l]) } }
            let s = stats(vals)
            for c in (2 * g)..<(2 * g + 2) { for l in 0..<3 {
                let ref = (Double(x[n, c, l]) - s.mean) / (s.std * s.std + 1e-5).squareRoot() * Double(gn.weight![c]) + Double(gn.bias![c])
                #expect(abs(Double(y[n, c, l]) - ref) < 1e-4)
            } }
        } }
        let r = GradientCheck.check([x, gn.weight!, gn.bias!], step: 1e-2, atol: 3e-3, rtol: 3e-2) { xs in
            gn.weight = xs[1]
            gn.bias = xs[2]
            return gn(xs[0])
        }
        #expect(r.passed, "\(r)")
        // Without affine parameters, on [N, C, H, W]: each (sample, group) has zero mean, unit variance.
        let plain = GroupNorm(groups: 3, channels: 6, affine: false)
        let x4 = rng.normal([2, 6, 2, 3]) * 3 - 2
        let y4 = plain(x4).reshaped([2, 3, 12])
        #expect(y4.mean(axes: [2]).scalars.allSatisfy { abs($0) < 1e-5 })
        #expect(y4.variance(axes: [2], correction: 0).scalars.allSatisfy { abs($0 - 1) < 1e-3 })
        let r4 = GradientCheck.check([x4], atol: 3e-3, rtol: 3e-2) { xs in plain(xs[0]) }
        #expect(r4.passed, "\(r4)")
    }

    @Test func batchNormTrainingStatisticsAndEval() {
        var rng = RandomGenerator(seed: 15)
        let bn = BatchNorm2d(channels: 2)
        let x = rng.normal([3, 2, 2, 2]) * 3 + 2
        let y = bn(x)
        for c in 0..<2 {
            var vals: [Float] = []
            for n in 0..<3 { for i in 0..<2 { for j in 0..<2 { vals.append(x[n, c, i, j]) } } }
            let s = stats(vals)
            for n in 0..<3 { for i in 0..<2 { for j in 0..<2 {
                let ref = (Double(x[n, c, i, j]) - s.mean) / (s.std * s.std + 1e-5).squareRoot()
                #expect(abs(Double(y[n, c, i, j]) - ref) < 1e-4)
            } } }
            // PyTorch: running_mean = 0.9·0 + 0.1·mean; running_var = 0.9·1 + 0.1·unbiased var.
            let unbiased = s.std * s.std * 12 / 11
            #expect(abs(Double(bn.runningMean![c]) - 0.1 * s.mean) < 1e-5)
            #expect(abs(Double(bn.runningVar![c]) - (0.9 + 0.1 * unbiased)) < 1e-4)
        }
        // Eval uses the running statistics and leaves them unchanged.
        bn.eval()
        let rm = bn.runningMean!, rv = bn.runningVar!
        let ye = bn(x)
        for c in 0..<2 {
            let ref = (Double(x[1, c, 0, 1]) - Double(rm[c])) / (Double(rv[c]) + 1e-5).squareRoot()
            #expect(abs(Double(ye[1, c, 0, 1]) - ref) < 1e-4)
        }
        #expect(bn.runningMean!.scalars == rm.scalars && bn.runningVar!.scalars == rv.scalars)
        // Gradients in both modes.
        for training in [true, false] {
            bn.train(training)
            let w = rng.normal([2]) + 1, b = rng.normal([2])
            let r = GradientCheck.check([x, w, b], atol: 3e-3, rtol: 3e-2) { xs in
                bn.weight = xs[1]
                bn.bias = xs[2]
                let saved = (bn.runningMean, bn.runningVar)
                defer { bn.runningMean = saved.0; bn.runningVar = saved.1 }
                return bn(xs[0])
            }
            #expect(r.passed, "training \(training): \(r)")
        }
        // BatchNorm1d on [N, C].
        let bn1 = BatchNorm1d(channels: 3)
        let z = bn1(rng.normal([5, 3]) * 4)
        #expect(z.mean(axes: [0]).scalars.allSatisfy { abs($0) < 1e-5 })
    }

    @Test func layerNormForwardAndGradient() {
        var rng = RandomGenerator(seed: 16)
        let ln = LayerNorm([2, 3])
        ln.weight = rng.normal([2, 3]) + 1
        ln.bias = rng.normal([2, 3])
        let x = rng.normal([4, 2, 3]) * 2 - 1
        let y = ln(x)
        for n in 0..<4 {
            var vals: [Float] = []
            for i in 0..<2 { for j in 0..<3 { vals.append(x[n, i, j]) } }
            let s = stats(vals)
            for i in 0..<2 { for j in 0..<3 {
                let ref = (Double(x[n, i, j]) - s.mean) / (s.std * s.std + 1e-5).squareRoot() * Double(ln.weight![i, j]) + Double(ln.bias![i, j])
                #expect(abs(Double(y[n, i, j]) - ref) < 1e-4)
            } }
        }
        let r = GradientCheck.check([x, ln.weight!, ln.bias!], atol: 3e-3, rtol: 3e-2) { xs in
            ln.weight = xs[1]
            ln.bias = xs[2]
            return ln(xs[0])
        }
        #expect(r.passed, "\(r)")
    }

    // MARK: Embedding, dropout, encodings

    @Test func embeddingGathersAndScatterAdds() {
        var rng = RandomGenerator(seed: 17)
        let emb = Embedding(5, 3, rng: &rng)
        let idx = Tensor([[4, 0], [4, 2]])
        let y = emb(idx)
        #expect(y.shape == [2, 2, 3])
        for j in 0..<3 {
            #expect(y[0, 0, j] == emb.weight[4, j] && y[1, 1, j] == emb.weight[2, j])
        }
        #expect(emb([1, 1]).shape == [2, 3])
        let (_, grads) = valueAndGrad(emb) { m in (m(idx) * Tensor([1, 2, 3])).sum() }
        // Row 4 appears twice, rows 0 and 2 once, rows 1 and 3 never.
        #expect(grads["weight"]!.scalars == [1, 2, 3, 0, 0, 0, 1, 2, 3, 0, 0, 0, 2, 4, 6])
        let r = GradientCheck.check([emb.weight]) { xs in embeddingLookup(xs[0], indices: idx).square() }
        #expect(r.passed, "\(r)")
    }

    @Test func dropoutTrainAndEval() {
        let drop = Dropout(0.25, seed: 3)
        let x = Tensor.ones([4000])
        let y = drop(x)
        let kept = y.scalars.filter { $0 != 0 }
        #expect(kept.allSatisfy { abs($0 - 4.0 / 3.0) < 1e-6 })
        let frac = Double(kept.count) / 4000
        #expect(abs(frac - 0.75) < 0.03)
        // Fresh masks each call, reproducible from the seed.
        #expect(drop(x).scalars != y.scalars)
        #expect(Dropout(0.25, seed: 3)(x).scalars == y.scalars)
        // Gradient uses the same mask.
        let xs = Tensor.full([10], 2)
        let d2 = Dropout(0.5, seed: 1)
        let (v, g) = valueAndGrad(at: [xs]) { a in d2(a[0]).sum() }
        #expect(abs(v.item - g[0].scalars.reduce(0, +) * 2) < 1e-5)
        drop.eval()
        #expect(drop(x).scalars == x.scalars)
        #expect(Dropout(1)(x).scalars.allSatisfy { $0 == 0 })
        #expect(Dropout(0)(x).scalars == x.scalars)
    }

    @Test func fourierEncodingMatchesFormula() {
        let enc = FourierEncoding(numFrequencies: 3)
        #expect(enc.frequencies == [1, 2, 4])
        let x = Tensor([[0.1, -0.3], [0.7, 0.2]])
        let y = enc(x)
        #expect(y.shape == [2, 2 + 12])
        #expect(enc.outputDimension(inputDimension: 2) == 14)
        for r in 0..<2 {
            #expect(y[r, 0] == x[r, 0] && y[r, 1] == x[r, 1])
            for (k, f) in [1.0, 2.0, 4.0].enumerated() {
                for d in 0..<2 {
                    let a = f * Double.pi * Double(x[r, d])
                    #expect(abs(Double(y[r, 2 + 4 * k + d]) - sin(a)) < 1e-5)
                    #expect(abs(Double(y[r, 2 + 4 * k + 2 + d]) - cos(a)) < 1e-5)
                }
            }
        }
        // Ten octaves on [-1, 1]: the angle-doubling path stays accurate at the highest frequency.
        let deep = FourierEncoding(numFrequencies: 10, includeInput: false)
        #expect(deep.usesAngleDoubling)
        let xd = Tensor.linspace(-1, 1, count: 37).reshaped([37, 1])
        let yd = deep(xd)
        var worst = 0.0
        for r in 0..<37 { for k in 0..<10 {
            let a = pow(2.0, Double(k)) * Double.pi * Double(xd[r, 0])
            worst = max(worst, abs(Double(yd[r, 2 * k]) - sin(a)), abs(Double(yd[r, 2 * k + 1]) - cos(a)))
        } }
        #expect(worst < 1e-6, "worst error \(worst)")
        let lin = FourierEncoding(numFrequencies: 4, includeInput: false, logSampling: false, inputScale: 1)
        #expect(!lin.usesAngleDoubling)
        #expect(lin.frequencies == [1, 3.3333333, 5.6666665, 8])
        #expect(lin(x).shape == [2, 16])
        let r = GradientCheck.check([x], step: 1e-3, atol: 3e-3, rtol: 2e-2) { xs in enc(xs[0]) }
        #expect(r.passed, "\(r)")
        let r2 = GradientCheck.check([x], step: 1e-3, atol: 3e-3, rtol: 2e-2) { xs in lin(xs[0]) }
        #expect(r2.passed, "\(r2)")
    }

    // MARK: Containers and activations

    @Test func activationModulesMatchTensorOps() {
        let x = Tensor([-2, -0.5, 0.3, 1.7])
        #expect(ReLU()(x).scalars == x.relu().scalars)
        #expect(LeakyReLU(0.2)(x).scalars == [-0.4, -0.1, 0.3, 1.7])
        #expect(GELU()(x).scalars == x.gelu().scalars)
        #expect(Tanh()(x).scalars == x.tanh().scalars)
        #expect(Sigmoid()(x).scalars == x.sigmoid().scalars)
        #expect(Softplus(beta: 2)(x).scalars == x.softplus(beta: 2).scalars)
        #expect(Identity()(x).scalars == x.scalars)
    }

    @Test func mlpAndSequentialCompose() {
        var rng = RandomGenerator(seed: 18)
        let mlp = MLP(widths: [3, 8, 8, 2], activation: { $0.tanh() }, outputActivation: { $0.sigmoid() }, rng: &rng)
        #expect(mlp.parameters().map { $0.0 } == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
                                                  "layers.2.weight", "layers.2.bias"])
        let x = rng.normal([5, 3])
        let seq = Sequential(mlp.layers[0], Tanh(), mlp.layers[1], Lambda { $0.tanh() }, mlp.layers[2], Sigmoid())
        #expect(maxAbsDiff(mlp(x), seq(x)) < 1e-6)
        let y = mlp(x)
        #expect(y.shape == [5, 2] && y.scalars.allSatisfy { $0 > 0 && $0 < 1 })
        let r = GradientCheck.check([x]) { xs in mlp(xs[0]) }
        #expect(r.passed, "\(r)")
    }
}
