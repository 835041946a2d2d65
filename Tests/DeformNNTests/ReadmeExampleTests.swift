import Foundation
import Testing
import DeformNN
import DeformTensor

/// The README's DeformNN example, compiled and run so the documentation cannot drift.
@Suite struct ReadmeExampleTests {
    final class Regressor: Module {
        @Parameter var scale: Tensor
        let body: MLP
        init(rng: inout RandomGenerator) {
            scale = .ones([1])
            body = MLP(widths: [1, 32, 32, 1], activation: { $0.tanh() }, rng: &rng)
        }
        override func callAsFunction(_ x: Tensor) -> Tensor { body(x) * scale }
    }

    @Test func readmeExampleTrainsAndRoundTrips() throws {
        var rng = RandomGenerator(seed: 0)
        let model = Regressor(rng: &rng)
        let optimizer = Adam(learningRate: 1e-2)
        let x = Tensor.linspace(-3, 3, count: 64).reshaped(64, 1), y = x.sin()
        var loss = Tensor(0)
        for _ in 0..<300 {
            let (value, grads) = valueAndGrad(model) { m in (m(x) - y).square().mean() }
            optimizer.update(model: model, gradients: grads)
            loss = value
        }
        #expect(loss.item < 0.01, "final loss \(loss.item)")
        #expect(model.parameters().map(\.0).first == "scale")

        let url = FileManager.default.temporaryDirectory.appendingPathComponent("readme-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try saveCheckpoint(model, to: url, metadata: ["step": "300"])
        var rng2 = RandomGenerator(seed: 1)
        let restored = Regressor(rng: &rng2)
        let meta = try loadCheckpoint(into: restored, from: url)
        #expect(meta["step"] == "300")
        #expect(restored(x).scalars == model(x).scalars)
    }
}
