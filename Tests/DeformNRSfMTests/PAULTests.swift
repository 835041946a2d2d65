import Testing
import DeformGeometry
@testable import DeformNRSfM
import DeformNN
import DeformTensor

@Suite struct PAULTests {
    @Test func recoversSyntheticLowRankSequence() throws {
        let data = SyntheticNRSfM(frames: 120, points: 15, modes: 2, seed: 1)
        var config = PAULConfig()
        config.iterations = 1500
        config.learningRate = 3e-3
        let result = try PAUL.fit(points2D: data.points2D, config: config)
        let err = try Metrics3D.normalizedError(prediction: result.points3D, groundTruth: data.points3D).mean
        #expect(err < 5, "normalized error \(err)% (loss \(result.finalLoss))")
        print("synthetic PAUL normalized error: \(err)% final loss \(result.finalLoss)")
    }
}

@Suite struct PAULCodeSearchTests {
    /// A frame whose code was knocked far away takes a better code from another frame, and its
    /// own loss drops; frames that fit keep their codes.
    @Test func codeSearchRescuesADisplacedFrame() throws {
        let data = SyntheticNRSfM(frames: 30, points: 10, modes: 1, seed: 2)
        var config = PAULConfig()
        config.iterations = 400
        config.learningRate = 3e-3
        let fit = try PAUL.fit(points2D: data.points2D, config: config)
        let model = fit.model
        let w = NormalizedTracks(points2D: data.points2D).w
        var codes = model.codes
        for c in 0..<config.bottleneck { codes[0, c] = 25 }
        model.update(parameters: ["codes": codes])
        let before = try PAUL.pairwiseLoss(model: model, w: w, codes: model.codes, config: config)
        let (found, moved) = try PAUL.searchCodes(model: model, w: w, config: config)
        let after = try PAUL.pairwiseLoss(model: model, w: w, codes: found, config: config)
        #expect(moved >= 1)
        #expect(found[0, 0] != 25)
        #expect(after[0, 0] < 0.9 * before[0, 0])
        // Every frame's own loss is no worse than before.
        for i in 0..<30 { #expect(after[i, i] <= before[i, i] + 1e-6) }
    }
}

@Suite struct PAULAtemporalTests {
    /// PAUL is atemporal: reconstructing the frames in a shuffled order gives the same quality
    /// (within seed noise) as the original order.
    @Test func shufflingFramesDoesNotChangeTheResult() throws {
        let data = SyntheticNRSfM(frames: 80, points: 12, modes: 2, seed: 9)
        var config = PAULConfig()
        config.iterations = 1200
        config.learningRate = 3e-3
        var rng = RandomGenerator(seed: 1)
        let order = rng.permutation(80)
        let a = try PAUL.fit(points2D: data.points2D, config: config)
        let b = try PAUL.fit(points2D: data.points2D.indexSelect(axis: 0, indices: order), config: config)
        let ea = try Metrics3D.normalizedError(prediction: a.points3D, groundTruth: data.points3D).mean
        let eb = try Metrics3D.normalizedError(prediction: b.points3D, groundTruth: data.points3D.indexSelect(axis: 0, indices: order)).mean
        #expect(ea < 2 && eb < 2, "errors \(ea)% (original order) and \(eb)% (shuffled)")
        #expect(abs(ea - eb) < 1, "errors \(ea)% (original order) and \(eb)% (shuffled)")
    }
}
