import Foundation
import Testing
import DeformGeometry
@testable import DeformNRSfM
import DeformNN
import DeformTensor

/// The end-of-training options of PAUL: Polyak averaging (``PAULConfig/averageLastFraction``) and
/// the full-batch polish (``PAULConfig/polishIterations``).
@Suite struct PAULAveragingTests {
    /// A short mini-batch run with a constant rate (learningRate == minLearningRate), so that a run
    /// of T - 1 steps is exactly the first T - 1 steps of a run of T.
    static func config(iterations: Int) -> PAULConfig {
        var c = PAULConfig()
        c.warmStart = .none
        c.iterations = iterations
        c.learningRate = 2e-3
        c.minLearningRate = 2e-3
        c.batchSize = 8
        return c
    }

    static func parameters(_ model: PAULModel) -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: model.trainableParameters())
    }

    /// Averaging the last two steps gives exactly the mean of the last two iterates, and the
    /// returned codes and shapes are the averaged model's.
    @Test func averageOfTheLastTwoStepsIsTheMeanOfTheLastTwoIterates() throws {
        let data = SyntheticNRSfM(frames: 24, points: 8, modes: 1, seed: 5)
        let t = 30
        let previous = try PAUL.fit(points2D: data.points2D, config: Self.config(iterations: t - 1))
        let last = try PAUL.fit(points2D: data.points2D, config: Self.config(iterations: t))
        var c = Self.config(iterations: t)
        c.averageLastFraction = 2 / Float(t)
        let averaged = try PAUL.fit(points2D: data.points2D, config: c)
        let p0 = Self.parameters(previous.model), p1 = Self.parameters(last.model), pa = Self.parameters(averaged.model)
        #expect(pa.count == p1.count && pa.count >= 3)
        var moved: Float = 0
        for (name, value) in pa {
            let expected = (p0[name]! + p1[name]!) / 2
            #expect((value - expected).abs().max().item < 1e-6, "\(name)")
            moved = Swift.max(moved, (p0[name]! - p1[name]!).abs().max().item)
        }
        #expect(moved > 1e-5)   // the two iterates differ, so the check above is not vacuous
        #expect((averaged.codes - pa["codes"]!).abs().max().item == 0)
        let decoded = GradMode.withoutGrad { averaged.model.decode(averaged.codes) } * averaged.model.inputScale.item
        #expect((averaged.canonical - decoded).abs().max().item < 1e-5)
    }

    /// A fraction too small to cover one step still averages the final step alone: the plain result.
    @Test func averagingOneStepIsTheLastIterate() throws {
        let data = SyntheticNRSfM(frames: 24, points: 8, modes: 1, seed: 6)
        let plain = try PAUL.fit(points2D: data.points2D, config: Self.config(iterations: 20))
        var c = Self.config(iterations: 20)
        c.averageLastFraction = 1e-6
        let one = try PAUL.fit(points2D: data.points2D, config: c)
        #expect((plain.points3D - one.points3D).abs().max().item == 0)
        #expect(plain.finalLoss == one.finalLoss)
    }

    /// Full-batch steps at the final rate after noisy mini-batch training lower the full-batch
    /// training loss, and are logged after the schedule's last step.
    @Test func polishLowersTheFullBatchLoss() throws {
        let data = SyntheticNRSfM(frames: 40, points: 10, modes: 1, seed: 7)
        var c = Self.config(iterations: 300)
        c.learningRate = 3e-3
        c.minLearningRate = 3e-4
        let plain = try PAUL.fit(points2D: data.points2D, config: c)
        c.polishIterations = 100
        let polished = try PAUL.fit(points2D: data.points2D, config: c)
        #expect(polished.finalLoss < plain.finalLoss, "loss \(polished.finalLoss) with the polish, \(plain.finalLoss) without")
        #expect(polished.lossHistory.last?.step == 399)
    }

    /// Configs written before these fields existed decode with them off.
    @Test func oldConfigsDecodeWithTheOptionsOff() throws {
        let c = try JSONDecoder().decode(PAULConfig.self, from: Data(#"{"iterations": 10}"#.utf8))
        #expect(c.averageLastFraction == 0 && c.polishIterations == 0 && c.iterations == 10)
        var d = PAULConfig()
        d.averageLastFraction = 0.25
        d.polishIterations = 7
        let back = try JSONDecoder().decode(PAULConfig.self, from: JSONEncoder().encode(d))
        #expect(back.averageLastFraction == 0.25 && back.polishIterations == 7)
    }
    /// The pre-fit with mini-batches (``PAULConfig/warmStartBatchSize``): a batch of every frame is
    /// the full-batch pre-fit exactly; small batches still fit the teacher's shapes.
    @Test func miniBatchPrefitFitsTheTeacher() throws {
        let data = SyntheticNRSfM(frames: 48, points: 10, modes: 1, seed: 8)
        let norm = NormalizedTracks(points2D: data.points2D)
        let teacher = try #require(try PAULInit.teacherCanonical(points2D: data.points2D, warmStart: .bmm, seed: 0)) / norm.scale
        func prefit(_ batch: Int?, iterations: Int) -> (loss: Float, error: Float, codes: Tensor) {
            var config = PAULConfig()
            config.learningRate = 3e-3
            config.warmStartBatchSize = batch
            var rng = RandomGenerator(seed: 0)
            let model = PAULModel(frames: 48, points: 10, config: config, rng: &rng)
            let loss = PAULInit.prefit(model: model, targets: teacher, config: config, iterations: iterations)
            let decoded = GradMode.withoutGrad { model.decode(model.codes) }
            return (loss, ((decoded - teacher).norm() / teacher.norm()).item, model.codes)
        }
        let full = prefit(nil, iterations: 60), all = prefit(48, iterations: 60)
        #expect(full.loss == all.loss)
        #expect((full.codes - all.codes).abs().max().item == 0)
        let start = prefit(8, iterations: 0), small = prefit(8, iterations: 600)
        #expect(small.error < 0.1 && small.error < 0.5 * start.error, "relative error \(start.error) -> \(small.error)")
    }
}
