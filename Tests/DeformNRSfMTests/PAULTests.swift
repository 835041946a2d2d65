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
