import Testing
import Foundation
@testable import DeformNN
import DeformTensor

/// `f(p) = Σ c_i (p_i - t_i)²`: convex, minimum at `t`.
final class Quadratic: Module {
    @Parameter var p: Tensor
    let target: Tensor
    let curvature: Tensor
    init(start: Tensor, target: Tensor, curvature: Tensor) {
        p = start
        self.target = target
        self.curvature = curvature
    }
    func loss() -> Tensor { (curvature * (p - target).square()).sum() }
}

func makeQuadratic() -> Quadratic {
    Quadratic(start: Tensor([3, -2, 0.5]), target: Tensor([1, 2, -1]), curvature: Tensor([1, 0.5, 2]))
}

func minimize(_ q: Quadratic, _ opt: Optimizer, steps: Int) {
    for _ in 0..<steps {
        let (_, g) = valueAndGrad(q) { $0.loss() }
        opt.update(model: q, gradients: g)
    }
}

@Suite struct OptimizerTests {
    @Test func sgdVariantsReachTheMinimum() {
        for opt in [SGD(learningRate: 0.1), SGD(learningRate: 0.05, momentum: 0.9),
                    SGD(learningRate: 0.05, momentum: 0.9, nesterov: true), SGD(learningRate: 0.1, momentum: 0.5, dampening: 0.5)] {
            let q = makeQuadratic()
            minimize(q, opt, steps: 300)
            #expect(maxAbsDiff(q.p, q.target) < 1e-3, "momentum \(opt.momentum) nesterov \(opt.nesterov): \(q.p)")
        }
        // L2 weight decay moves the minimum of c(p - t)² + λ/2 p² to c·t·2 / (2c + λ).
        let q = makeQuadratic()
        minimize(q, SGD(learningRate: 0.1, momentum: 0.5, weightDecay: 0.5), steps: 300)
        let expected = zip(q.curvature.scalars, q.target.scalars).map { c, t in 2 * c * t / (2 * c + 0.5) }
        #expect(maxAbsDiff(q.p, Tensor(expected)) < 1e-4)
    }

    @Test func sgdMomentumMatchesHandComputedSteps() {
        // One parameter, f = p², g = 2p. PyTorch: b1 = g1; b2 = μ b1 + g2; Nesterov uses g + μ b.
        let q = Quadratic(start: Tensor([1]), target: Tensor([0]), curvature: Tensor([1]))
        let opt = SGD(learningRate: 0.1, momentum: 0.9, nesterov: true)
        minimize(q, opt, steps: 1)
        // g = 2, b = 2, step = 2 + 0.9·2 = 3.8 -> p = 1 - 0.38
        #expect(abs(q.p.item - 0.62) < 1e-6)
        minimize(q, opt, steps: 1)
        // g = 1.24, b = 0.9·2 + 1.24 = 3.04, step = 1.24 + 0.9·3.04 = 3.976 -> p = 0.62 - 0.3976
        #expect(abs(q.p.item - 0.2224) < 1e-6)
    }

    @Test func adamFirstStepsMatchHandComputation() {
        let q = Quadratic(start: Tensor([1, -2]), target: Tensor([0, 0]), curvature: Tensor([1, 3]))
        let opt = Adam(learningRate: 0.1)
        // Reference in Double, following PyTorch's formula.
        var p: [Double] = [1, -2], m: [Double] = [0, 0], v: [Double] = [0, 0]
        let c: [Double] = [1, 3]
        for t in 1...3 {
            minimize(q, opt, steps: 1)
            for i in 0..<2 {
                let g = 2 * c[i] * p[i]
                m[i] = 0.9 * m[i] + 0.1 * g
                v[i] = 0.999 * v[i] + 0.001 * g * g
                let stepSize = 0.1 / (1 - pow(0.9, Double(t)))
                let denom = v[i].squareRoot() / (1 - pow(0.999, Double(t))).squareRoot() + 1e-8
                p[i] -= stepSize * m[i] / denom
            }
            for i in 0..<2 { #expect(abs(Double(q.p[i]) - p[i]) < 1e-6, "step \(t): \(q.p) vs \(p)") }
        }
        // The first step moves every coordinate by lr against the gradient's sign.
        #expect(abs(p[0] - 1) > 0 && abs(p[1] + 2) > 0)
        #expect(opt.step == 3)
        #expect(opt.stateTensors()["step.p"]!.item == 3)
    }

    @Test func adamAndAdamWReachTheMinimum() {
        let q = makeQuadratic()
        let opt = Adam(learningRate: 0.05)
        opt.schedule = CosineAnnealing(totalSteps: 1500, minLearningRate: 1e-4)
        minimize(q, opt, steps: 1500)
        #expect(maxAbsDiff(q.p, q.target) < 1e-3, "\(q.p)")
        // AdamW: decay p ← p(1 - ηλ) independent of the gradient scale.
        let z = Quadratic(start: Tensor([2]), target: Tensor([0]), curvature: Tensor([0]))
        let w = AdamW(learningRate: 0.1, weightDecay: 0.5)
        minimize(z, w, steps: 2)
        // Zero gradient: m = v = 0, so only the decay acts: 2·0.95².
        #expect(abs(z.p.item - 2 * 0.95 * 0.95) < 1e-6)
    }

    @Test func parameterGroupsUseTheirOwnRates() {
        var rng = RandomGenerator(seed: 21)
        let net = Sequential(Linear(2, 2, rng: &rng), Linear(2, 2, rng: &rng))
        let before = Dictionary(uniqueKeysWithValues: net.parameters())
        let grads = Dictionary(uniqueKeysWithValues: net.parameters().map { ($0.0, Tensor.ones($0.1.shape)) })
        let opt = SGD(learningRate: 0.1, groups: [
            ParameterGroup(prefixes: ["layers.1"], learningRate: 0.01),
            ParameterGroup(names: ["layers.0.bias"], learningRate: 0, weightDecay: 0),
        ])
        #expect(opt.groupIndex(of: "layers.1.weight") == 0 && opt.groupIndex(of: "layers.0.weight") == nil)
        opt.update(model: net, gradients: grads)
        let after = Dictionary(uniqueKeysWithValues: net.parameters())
        #expect(maxAbsDiff(after["layers.0.weight"]!, before["layers.0.weight"]! - 0.1) < 1e-6)
        #expect(maxAbsDiff(after["layers.1.weight"]!, before["layers.1.weight"]! - 0.01) < 1e-6)
        #expect(after["layers.0.bias"]!.scalars == before["layers.0.bias"]!.scalars)
        // The schedule scales every group.
        opt.schedule = StepDecay(stepSize: 1, gamma: 0.5)
        #expect(opt.currentLearningRate(for: "layers.1.bias") == 0.005)
        #expect(opt.currentLearningRate(for: "layers.0.weight") == 0.05)
        // Prefixes match whole path components only.
        #expect(ParameterGroup(prefixes: ["layers.1"], learningRate: 1).matches("layers.10.weight") == false)
    }

    @Test func updatesParametersInPlaceWithoutCopying() {
        var rng = RandomGenerator(seed: 22)
        let lin = Linear(4, 4, rng: &rng)
        let id = lin.weight.storageIdentifier
        let opt = Adam(learningRate: 0.01)
        let (_, g) = valueAndGrad(lin) { m in m(Tensor.ones([1, 4])).sum() }
        opt.update(model: lin, gradients: g)
        #expect(lin.weight.storageIdentifier == id)
        // A copy held elsewhere keeps its old values (copy-on-write).
        let held = lin.weight
        opt.update(model: lin, gradients: g)
        #expect(held.scalars != lin.weight.scalars)
    }

    @Test func clipGradNormFollowsPyTorch() {
        var grads: [String: Tensor] = ["a": Tensor([3, 0]), "b": Tensor([[4]])]
        let norm = clipGradNorm(&grads, maxNorm: 1)
        #expect(abs(norm - 5) < 1e-6)
        let coef: Float = 1 / (5 + 1e-6)
        #expect(maxAbsDiff(grads["a"]!, Tensor([3 * coef, 0])) < 1e-7)
        #expect(abs(grads["b"]![0, 0] - 4 * coef) < 1e-7)
        #expect(abs(globalNorm(grads) - 1) < 1e-5)
        // Below the limit: unchanged.
        var small: [String: Tensor] = ["a": Tensor([0.3, 0.4])]
        #expect(abs(clipGradNorm(&small, maxNorm: 1) - 0.5) < 1e-6)
        #expect(small["a"]!.scalars == [0.3, 0.4])
    }

    @Test func schedulesAtGivenSteps() {
        let close = { (a: Float, b: Float) in abs(a - b) <= 1e-6 * max(1, abs(b)) }
        let s = StepDecay(stepSize: 10, gamma: 0.5)
        #expect(s.learningRate(base: 1, step: 0) == 1 && s.learningRate(base: 1, step: 9) == 1)
        #expect(s.learningRate(base: 1, step: 10) == 0.5 && s.learningRate(base: 1, step: 25) == 0.25)
        let e = ExponentialDecay(gamma: 0.9)
        #expect(close(e.learningRate(base: 2, step: 3), 2 * 0.729))
        let c = CosineAnnealing(totalSteps: 100, minLearningRate: 0.1)
        #expect(close(c.learningRate(base: 1, step: 0), 1))
        #expect(close(c.learningRate(base: 1, step: 50), 0.55))
        #expect(close(c.learningRate(base: 1, step: 25), Float(0.1 + 0.9 * (1 + cos(Double.pi / 4)) / 2)))
        #expect(close(c.learningRate(base: 1, step: 100), 0.1) && close(c.learningRate(base: 1, step: 150), 0.1))
        let w = LinearWarmup(steps: 10, startFactor: 0.1, then: c)
        #expect(close(w.learningRate(base: 1, step: 0), 0.1))
        #expect(close(w.learningRate(base: 1, step: 5), 0.55))
        #expect(close(w.learningRate(base: 1, step: 10), 1))
        #expect(close(w.learningRate(base: 1, step: 60), 0.55))
        let plain = LinearWarmup(steps: 4)
        #expect(plain.learningRate(base: 2, step: 1) == 0.5 && plain.learningRate(base: 2, step: 7) == 2)
        let ms = MultiStepDecay(milestones: [30, 10], gamma: 0.1)
        #expect(close(ms.learningRate(base: 1, step: 9), 1) && close(ms.learningRate(base: 1, step: 10), 0.1)
                && close(ms.learningRate(base: 1, step: 30), 0.01))
        // The optimizer queries its schedule at its own step counter.
        let opt = SGD(learningRate: 1)
        opt.schedule = s
        opt.step = 20
        #expect(opt.currentLearningRate(for: "x") == 0.25)
    }

    @Test func optimizerStateRoundTrips() throws {
        let q1 = makeQuadratic(), q2 = makeQuadratic()
        let a = Adam(learningRate: 0.05), b = Adam(learningRate: 0.05)
        minimize(q1, a, steps: 5)
        minimize(q2, b, steps: 5)
        let restored = Adam(learningRate: 0.05)
        try restored.loadState(a.stateTensors())
        restored.step = a.step
        minimize(q1, restored, steps: 3)
        minimize(q2, b, steps: 3)
        #expect(q1.p.scalars == q2.p.scalars)
        #expect(throws: CheckpointError.self) { try restored.loadState(["bogus": Tensor([1])]) }
        // Through a file, with the step counter.
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("optimizer.safetensors")
        try b.saveState(to: url)
        let fromFile = Adam(learningRate: 0.05)
        try fromFile.loadState(from: url)
        #expect(fromFile.step == 8 && fromFile.stateTensors().mapValues { $0.scalars } == b.stateTensors().mapValues { $0.scalars })
        #expect(throws: CheckpointError.self) { try SGD(learningRate: 1).loadState(from: url) }
        let sgd = SGD(learningRate: 0.1, momentum: 0.9)
        minimize(makeQuadratic(), sgd, steps: 2)
        #expect(sgd.stateTensors().keys.sorted() == ["momentum_buffer.p"])
    }

    @Test func mlpFitsXOR() {
        var rng = RandomGenerator(seed: 23)
        let mlp = MLP(widths: [2, 8, 1], activation: { $0.tanh() }, rng: &rng)
        let x = Tensor([[0, 0], [0, 1], [1, 0], [1, 1]])
        let y = Tensor([0, 1, 1, 0], shape: [4, 1])
        let opt = Adam(learningRate: 0.05)
        var loss: Float = 0
        for _ in 0..<300 {
            let (l, g) = valueAndGrad(mlp) { m in (m(x) - y).square().mean() }
            opt.update(model: mlp, gradients: g)
            loss = l.item
        }
        #expect(loss < 1e-3, "final loss \(loss)")
        let pred = mlp(x).scalars
        #expect(pred[0] < 0.2 && pred[1] > 0.8 && pred[2] > 0.8 && pred[3] < 0.2, "\(pred)")
    }

    @Test func mlpFitsSine() {
        var rng = RandomGenerator(seed: 24)
        let mlp = MLP(widths: [1, 32, 32, 1], activation: { $0.tanh() }, rng: &rng)
        let x = Tensor.linspace(-3, 3, count: 64).reshaped([64, 1])
        let y = x.sin()
        let opt = Adam(learningRate: 0.01)
        opt.schedule = LinearWarmup(steps: 20, startFactor: 0.1, then: CosineAnnealing(totalSteps: 380, minLearningRate: 1e-3))
        var loss: Float = 0
        for _ in 0..<400 {
            var (l, g) = valueAndGrad(mlp) { m in (m(x) - y).square().mean() }
            clipGradNorm(&g, maxNorm: 1)
            opt.update(model: mlp, gradients: g)
            loss = l.item
        }
        #expect(loss < 2e-3, "final loss \(loss)")
    }
}
