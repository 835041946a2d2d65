import Testing
@testable import DeformNRSfM
import DeformIO
import DeformTensor

@Suite struct RegistryTests {
    @Test func overridesSetTypedFieldsAndRejectUnknownKeys() throws {
        let c = try ConfigOverrides.apply(["bottleneck=8", "codeInitStd=0.5", "useAutoencoderTerm=false", "hiddenWidths=64,32"],
                                          to: PAULConfig())
        #expect(c.bottleneck == 8 && c.codeInitStd == 0.5 && !c.useAutoencoderTerm && c.hiddenWidths == [64, 32])
        #expect(throws: NRSfMError.self) { try ConfigOverrides.apply(["bogus=1"], to: PAULConfig()) }
        #expect(throws: NRSfMError.self) { try ConfigOverrides.apply(["useAutoencoderTerm=maybe"], to: PAULConfig()) }
        #expect(throws: NRSfMError.self) { try ConfigOverrides.apply(["bottleneck"], to: PAULConfig()) }
        // Optional fields that are unset (absent from config.json) can be set too.
        var fullBatch = PAULConfig()
        fullBatch.batchSize = nil
        #expect(try ConfigOverrides.apply(["batchSize=256"], to: fullBatch).batchSize == 256)
        #expect(try ConfigOverrides.apply(["decayEvery=500"], to: DeepNRSfMConfig()).decayEvery == 500)
    }

    @Test func restartsKeepTheLowestTrainingLoss() throws {
        let data = SyntheticNRSfM(frames: 40, points: 10, seed: 4)
        let tracks = try KeypointTracks(points2D: data.points2D, visibility: .ones([40, 10]), points3D: data.points3D, source: "synthetic")
        var options = NRSfMOptions()
        options.overrides = ["iterations=60"]
        options.restarts = 3
        let best = try NRSfMRunner.fit(.paul, tracks: tracks, options: options)
        var losses: [Float] = []
        for seed in 0..<3 {
            var single = options
            single.restarts = 1
            single.seed = UInt64(seed)
            losses.append(try NRSfMRunner.fit(.paul, tracks: tracks, options: single).finalLoss)
        }
        #expect(best.finalLoss == losses.min()!)
        #expect(best.seed == UInt64(losses.firstIndex(of: losses.min()!)!))
        #expect(best.log.map(\.restart).max() == 2)
    }

    @Test func hiddenPointsAreRejectedByMethodsWithoutAMissingDataMode() throws {
        let data = SyntheticNRSfM(frames: 10, points: 6, seed: 5)
        var vis = Tensor.ones([10, 6])
        vis[0, 0] = 0
        let tracks = try KeypointTracks(points2D: data.points2D, visibility: vis, source: "hidden.npz")
        do {
            _ = try NRSfMRunner.fit(.bmm, tracks: tracks)
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("hidden.npz") && "\(error)".contains("hidden") && "\(error)".contains("paul"))
        }
        // PAUL takes them (its missing-data mode).
        var options = NRSfMOptions()
        options.overrides = ["iterations=5"]
        let r = try NRSfMRunner.fit(.paul, tracks: tracks, options: options)
        #expect(r.points3D.shape == [10, 6, 3] && r.points3D.scalars.allSatisfy(\.isFinite))
    }
}
