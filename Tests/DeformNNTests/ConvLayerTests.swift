import Testing
import Foundation
@testable import DeformNN
import DeformTensor

/// Direct-loop cross-correlation (the obviously correct reference).
func referenceConv2d(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride: (Int, Int), padding: (Int, Int),
                     dilation: (Int, Int)) -> Tensor {
    let (n, c, h, wi) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (o, kh, kw) = (w.shape[0], w.shape[2], w.shape[3])
    let ho = (h + 2 * padding.0 - dilation.0 * (kh - 1) - 1) / stride.0 + 1
    let wo = (wi + 2 * padding.1 - dilation.1 * (kw - 1) - 1) / stride.1 + 1
    var y = Tensor.zeros([n, o, ho, wo])
    for ni in 0..<n { for oi in 0..<o { for i in 0..<ho { for j in 0..<wo {
        var s = b?[oi] ?? 0
        for ci in 0..<c { for a in 0..<kh { for bb in 0..<kw {
            let r = i * stride.0 - padding.0 + a * dilation.0, q = j * stride.1 - padding.1 + bb * dilation.1
            if r >= 0 && r < h && q >= 0 && q < wi { s += x[ni, ci, r, q] * w[oi, ci, a, bb] }
        } } }
        y[ni, oi, i, j] = s
    } } } }
    return y
}

@Suite struct ConvLayerTests {
    @Test func conv2dInitAndForward() {
        var rng = RandomGenerator(seed: 31)
        let conv = Conv2d(3, 4, kernelSize: (3, 2), stride: (2, 1), padding: (1, 1), dilation: (1, 2), rng: &rng)
        #expect(conv.weight.shape == [4, 3, 3, 2] && conv.bias!.shape == [4])
        let bound = 1 / Float(18).squareRoot()
        #expect(conv.weight.scalars.allSatisfy { abs($0) <= bound } && conv.bias!.scalars.allSatisfy { abs($0) <= bound })
        #expect(conv.weight.scalars.map(abs).max()! > 0.8 * bound)
        #expect(conv.parameters().map { $0.0 } == ["weight", "bias"])
        let x = rng.normal([2, 3, 5, 6])
        let y = conv(x)
        let ref = referenceConv2d(x, conv.weight, conv.bias, stride: (2, 1), padding: (1, 1), dilation: (1, 2))
        #expect(y.shape == ref.shape)
        #expect(maxAbsDiff(y, ref) < 1e-4)
        let square = Conv2d(2, 3, kernelSize: 3, padding: 1, bias: false, rng: &rng)
        #expect(square.bias == nil && square(rng.normal([1, 2, 4, 4])).shape == [1, 3, 4, 4])
    }

    @Test func convTransposeIsTheAdjointOfConv() {
        var rng = RandomGenerator(seed: 32)
        let convT = ConvTranspose2d(4, 3, kernelSize: 3, stride: 2, padding: 1, outputPadding: 1, bias: false, rng: &rng)
        #expect(convT.weight.shape == [4, 3, 3, 3])
        // PyTorch's fan-in for ConvTranspose2d comes from weight dim 1: 3·3·3 = 27.
        let bound = 1 / Float(27).squareRoot()
        #expect(convT.weight.scalars.allSatisfy { abs($0) <= bound } && convT.weight.scalars.map(abs).max()! > 0.8 * bound)
        let y = rng.normal([2, 4, 3, 3])
        let up = convT(y)
        #expect(up.shape == [2, 3, 6, 6])
        // <conv(x; W), y> = <x, convT(y; W)> when both use the same weight tensor and geometry.
        let x = rng.normal([2, 3, 6, 6])
        let down = referenceConv2d(x, convT.weight, nil, stride: (2, 2), padding: (1, 1), dilation: (1, 1))
        #expect(down.shape == y.shape)
        let lhs = zip(down.scalars, y.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let rhs = zip(x.scalars, up.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        #expect(abs(lhs - rhs) < 1e-3 * max(1, abs(lhs)))
        let withBias = ConvTranspose2d(4, 3, kernelSize: (2, 2), stride: (2, 2), rng: &rng)
        #expect(withBias(y).shape == [2, 3, 6, 6])
        #expect(maxAbsDiff(withBias(y) - withBias.bias!.reshaped([1, 3, 1, 1]),
                           convTranspose2d(y, weight: withBias.weight, stride: (2, 2))) < 1e-5)
    }

    @Test func convModuleGradientsMatchFiniteDifferences() {
        var rng = RandomGenerator(seed: 33)
        let conv = Conv2d(2, 2, kernelSize: 3, stride: 1, padding: 1, rng: &rng)
        let x = rng.normal([1, 2, 4, 4])
        let r = GradientCheck.check([x, conv.weight, conv.bias!]) { xs in
            conv.weight = xs[1]
            conv.bias = xs[2]
            return conv(xs[0])
        }
        #expect(r.passed, "\(r)")
        let convT = ConvTranspose2d(2, 2, kernelSize: 3, stride: 2, padding: 1, outputPadding: 1, rng: &rng)
        let rT = GradientCheck.check([x, convT.weight, convT.bias!]) { xs in
            convT.weight = xs[1]
            convT.bias = xs[2]
            return convT(xs[0])
        }
        #expect(rT.passed, "\(rT)")
        // valueAndGrad reaches conv parameters inside a container.
        let net = Sequential(conv, ReLU(), convT)
        let (_, grads) = valueAndGrad(net) { m in m(x).square().mean() }
        #expect(grads.keys.sorted() == ["layers.0.bias", "layers.0.weight", "layers.2.bias", "layers.2.weight"])
        #expect(grads["layers.0.weight"]!.shape == [2, 2, 3, 3] && grads["layers.2.weight"]!.scalars.contains { $0 != 0 })
    }
}
