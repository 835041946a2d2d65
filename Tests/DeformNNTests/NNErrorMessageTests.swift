import Testing
import DeformNN
import DeformTensor

/// Programmer errors in DeformNN trap with a message naming what was expected and what was found
/// (run in a child process; stderr is inspected).
@Suite struct NNErrorMessageTests {
    @Test func optimizerRejectsUnknownGradientNames() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            var rng = RandomGenerator(seed: 1)
            let lin = Linear(2, 2, rng: &rng)
            SGD(learningRate: 0.1).update(model: lin, gradients: ["wieght": Tensor.zeros([2, 2])])
        }
        let err = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(err.contains("'wieght'") && err.contains("not a parameter"), "stderr was: \(err)")
    }

    @Test func updateRejectsWrongShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            var rng = RandomGenerator(seed: 1)
            let lin = Linear(3, 2, rng: &rng)
            lin.update(parameters: ["weight": Tensor.zeros([3, 2])])
        }
        let err = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(err.contains("'weight'") && err.contains("[2, 3]") && err.contains("[3, 2]"), "stderr was: \(err)")
    }

    @Test func layersNameTheExpectedInputShape() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = GroupNorm(groups: 2, channels: 4)(Tensor.zeros([1, 3, 5]))
        }
        let err = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(err.contains("GroupNorm") && err.contains("[N, 4, ...]") && err.contains("[1, 3, 5]"), "stderr was: \(err)")
    }
}
