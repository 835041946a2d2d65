import Testing
import Foundation
@testable import DeformNN
import DeformTensor

/// A small model exercising every kind of discoverable property.
final class Block: Module {
    @Parameter var scale: Tensor
    @Buffer var count: Tensor = .zeros([1])
    let fc: Linear
    init(rng: inout RandomGenerator) {
        scale = .ones([2])
        fc = Linear(2, 2, rng: &rng)
    }
    override func callAsFunction(_ x: Tensor) -> Tensor { fc(x) * scale }
}

final class Net: Module {
    let encoder: Block
    var layers: [Linear]
    var head: Linear?
    var unused: Linear? = nil
    var named: [String: Module]
    @Parameter var offset: Tensor? = nil
    let note = "not a module"
    init(rng: inout RandomGenerator) {
        encoder = Block(rng: &rng)
        layers = [Linear(2, 3, rng: &rng), Linear(3, 2, bias: false, rng: &rng)]
        head = Linear(2, 1, rng: &rng)
        named = ["zeta": Identity(), "alpha": LayerNorm(2)]
        super.init()
        offset = .zeros([1])
    }
    override func callAsFunction(_ x: Tensor) -> Tensor {
        var y = encoder(x)
        for l in layers { y = l(y).tanh() }
        return head!(y) + offset!
    }
}

class BaseModel: Module {
    @Parameter var a: Tensor = .ones([1])
}
final class DerivedModel: BaseModel {
    @Parameter var b: Tensor = .ones([2])
}

@Suite struct ModuleTests {
    @Test func discoversNestedNamesInDeclarationOrder() {
        var rng = RandomGenerator(seed: 1)
        let net = Net(rng: &rng)
        let names = net.parameters().map { $0.0 }
        #expect(names == ["offset", "encoder.scale", "encoder.fc.weight", "encoder.fc.bias",
                          "layers.0.weight", "layers.0.bias", "layers.1.weight",
                          "head.weight", "head.bias", "named.alpha.weight", "named.alpha.bias"])
        #expect(net.namedBuffers().map { $0.0 } == ["encoder.count"])
        #expect(net.parameterCount == 1 + 2 + 4 + 2 + 6 + 3 + 6 + 2 + 1 + 2 + 2)
        #expect(net.stateTensors().count == names.count + 1)
        #expect(net.children().map { $0.0 } == ["encoder", "layers.0", "layers.1", "head", "named.alpha", "named.zeta"])
        #expect(net.modules().map { $0.0 }.contains("encoder.fc"))
        // Order is deterministic across instances.
        var rng2 = RandomGenerator(seed: 9)
        #expect(Net(rng: &rng2).parameters().map { $0.0 } == names)
    }

    @Test func superclassParametersComeFirst() {
        #expect(DerivedModel().parameters().map { $0.0 } == ["a", "b"])
    }

    @Test func tiedWeightsAreReportedOnce() {
        var rng = RandomGenerator(seed: 2)
        let shared = Linear(2, 2, rng: &rng)
        let seq = Sequential(shared, ReLU(), shared)
        #expect(seq.parameters().map { $0.0 } == ["layers.0.weight", "layers.0.bias"])
    }

    @Test func updateReplacesByNameAndIsSeenByProperties() {
        var rng = RandomGenerator(seed: 3)
        let net = Net(rng: &rng)
        net.update(parameters: ["layers.0.bias": Tensor([1, 2, 3]), "offset": Tensor([5])])
        #expect(net.layers[0].bias!.scalars == [1, 2, 3])
        #expect(net.offset!.scalars == [5])
        net.update(buffers: ["encoder.count": Tensor([7])])
        #expect(net.encoder.count.scalars == [7])
        // Assigning through the property is visible to discovery (shared box, cached structure).
        net.encoder.scale = Tensor([3, 4])
        #expect(net.parameters().first { $0.0 == "encoder.scale" }!.1.scalars == [3, 4])
    }

    @Test func trainEvalPropagates() {
        var rng = RandomGenerator(seed: 4)
        let net = Net(rng: &rng)
        #expect(net.isTraining && net.layers[1].isTraining)
        net.eval()
        #expect(!net.isTraining && !net.encoder.fc.isTraining && !net.named["alpha"]!.isTraining)
        net.train()
        #expect(net.encoder.fc.isTraining)
    }

    @Test func valueAndGradMatchesFiniteDifferences() {
        var rng = RandomGenerator(seed: 5)
        let net = Net(rng: &rng)
        let x = rng.normal([4, 2]), y = rng.normal([4, 1])
        let before = net.parameters()
        let (value, grads) = valueAndGrad(net) { m in (m(x) - y).square().mean() }
        #expect(Set(grads.keys) == Set(before.map { $0.0 }))
        // Parameters are restored untracked with their original storage.
        for ((n, a), (_, b)) in zip(before, net.parameters()) {
            #expect(!b.isTracked, "\(n)")
            #expect(a.storageIdentifier == b.storageIdentifier, "\(n)")
        }
        let loss0 = GradMode.withoutGrad { (net(x) - y).square().mean().item }
        #expect(abs(value.item - loss0) < 1e-6)
        // Central differences on every parameter element, in Double.
        for (name, p) in before {
            for j in 0..<p.count {
                func lossAt(_ delta: Float) -> Double {
                    var q = p
                    q.withUnsafeMutableBufferPointer { $0[j] += delta }
                    net.update(parameters: [name: q])
                    defer { net.update(parameters: [name: p]) }
                    return Double(GradMode.withoutGrad { (net(x) - y).square().mean().item })
                }
                let h: Float = 1e-2
                let numeric = (lossAt(h) - lossAt(-h)) / Double(2 * h)
                let analytic = Double(grads[name]!.scalars[j])
                #expect(abs(numeric - analytic) < 2e-3 + 2e-2 * abs(analytic), "\(name)[\(j)]: \(analytic) vs \(numeric)")
            }
        }
    }

    @Test func valueAndGradWithInputAndFrozenParameters() {
        var rng = RandomGenerator(seed: 6)
        let net = Net(rng: &rng)
        net.freeze(["encoder"])
        #expect(net.trainableParameters().count == net.parameters().count - 3)
        let x = rng.normal([3, 2])
        let (_, grads) = valueAndGrad(net, x) { m, x in m(x).sum() }
        #expect(grads["encoder.fc.weight"] == nil)
        #expect(grads["head.weight"] != nil)
        net.unfreeze()
        #expect(net.trainableParameters().count == net.parameters().count)
    }

    @Test func valueAndGradRestoresParametersWhenClosureThrows() {
        struct Boom: Error {}
        var rng = RandomGenerator(seed: 7)
        let lin = Linear(2, 2, rng: &rng)
        #expect(throws: Boom.self) { try valueAndGrad(lin) { _ in throw Boom() } }
        #expect(!lin.weight.isTracked)
    }

    @Test func optionalParametersAndDescription() {
        var rng = RandomGenerator(seed: 8)
        let lin = Linear(3, 2, bias: false, rng: &rng)
        #expect(lin.parameters().map { $0.0 } == ["weight"])
        lin.bias = .zeros([2])
        #expect(lin.parameters().map { $0.0 } == ["weight", "bias"])
        #expect(Net(rng: &rng).description.contains("fc: Linear"))
    }

    @Test func sequentialAppendRediscovers() {
        var rng = RandomGenerator(seed: 9)
        let seq = Sequential(Linear(2, 2, rng: &rng))
        #expect(seq.parameters().count == 2)
        seq.append { $0.relu() }
        seq.append(Linear(2, 1, rng: &rng))
        #expect(seq.parameters().map { $0.0 } == ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"])
        #expect(seq(Tensor([[1, -1]])).shape == [1, 1])
    }
}
