import Foundation
import Testing
@testable import DeformNRSfM
import DeformGeometry
import DeformIO
import DeformNN
import DeformTensor

@Suite struct BenchmarkProtocolTests {
    private func tracks(frames: Int = 50, points: Int = 12, seed: UInt64 = 7) throws -> KeypointTracks {
        let data = SyntheticNRSfM(frames: frames, points: points, seed: seed)
        return try KeypointTracks(points2D: data.points2D, points3D: data.points3D, source: "synthetic")
    }

    @Test func namesRoundTrip() {
        for p in NRSfMProtocol.all + [.missing(fraction: 0.45), .noise(sigma: 0.05), .perspective(distance: 4), .lifting(heldOut: 0.3)] {
            #expect(NRSfMProtocol(p.description) == p, "\(p)")
        }
        #expect(NRSfMProtocol("missing30") == .missing(fraction: 0.3))
        #expect(NRSfMProtocol("noise2") == .noise(sigma: 0.02))
        #expect(NRSfMProtocol("missing100") == nil && NRSfMProtocol("bogus") == nil && NRSfMProtocol("lift0") == nil)
    }

    @Test func perspectiveCaseProjectsTheGroundTruthWithAPinhole() throws {
        let t = try tracks()
        let c = try NRSfMBenchmarkCase(tracks: t, protocol: .perspective(distance: 2.5), seed: 0)
        #expect(c.alignScale && c.train.points3D == nil)
        let x = c.trainTruth.narrow(axis: 2, start: 0, length: 1), y = c.trainTruth.narrow(axis: 2, start: 1, length: 1)
        let z = c.trainTruth.narrow(axis: 2, start: 2, length: 1)
        #expect(c.train.points2D.allClose(Tensor.concat([x / z, y / z], axis: 2), rtol: 1e-5, atol: 1e-6))
        // The centroid sits at 2.5x the extent; the centred shapes are the ground truth's.
        let centroid = c.trainTruth.mean(axes: [1])
        let gtCentred = t.points3D! - t.points3D!.mean(axes: [1], keepDims: true)
        let extent = (gtCentred.max(axes: [0, 1]) - gtCentred.min(axes: [0, 1])).max().item
        #expect(abs(centroid.narrow(axis: 1, start: 2, length: 1).min().item - 2.5 * extent) < 1e-4 * extent)
        #expect((c.trainTruth - centroid.unsqueezed(1)).allClose(gtCentred, rtol: 0, atol: 1e-5))
    }

    @Test func missingCaseHidesTheRequestedFractionAndZeroesHiddenPoints() throws {
        let t = try tracks(frames: 200, points: 20)
        for fraction in [0.3, 0.6] {
            let c = try NRSfMBenchmarkCase(tracks: t, protocol: .missing(fraction: fraction), seed: 1)
            let hidden = 1 - c.train.visibleFraction
            #expect(abs(hidden - fraction) < 0.03, "hidden \(hidden) for \(fraction)")
            let v = c.train.visibility.scalars, xy = c.train.points2D.scalars, orig = t.points2D.scalars
            for f in 0..<200 { #expect(v[(20 * f)..<(20 * f + 20)].reduce(0, +) >= 3) }
            for i in 0..<v.count {
                if v[i] == 0 { #expect(xy[2 * i] == 0 && xy[2 * i + 1] == 0) }
                else { #expect(xy[2 * i] == orig[2 * i] && xy[2 * i + 1] == orig[2 * i + 1]) }
            }
            // Another seed draws another mask.
            let other = try NRSfMBenchmarkCase(tracks: t, protocol: .missing(fraction: fraction), seed: 2)
            #expect(other.train.visibility.scalars != v)
        }
        // Even 99% hidden leaves 3 points per frame.
        let c = try NRSfMBenchmarkCase(tracks: t, protocol: .missing(fraction: 0.99), seed: 1)
        #expect(abs(c.train.visibleFraction - 3.0 / 20) < 1e-9)
    }

    @Test func noiseCaseHasTheRequestedStandardDeviation() throws {
        let t = try tracks(frames: 400, points: 20)
        let c = try NRSfMBenchmarkCase(tracks: t, protocol: .noise(sigma: 0.05), seed: 3)
        let centred = t.points2D - t.points2D.mean(axes: [1], keepDims: true)
        let rms = centred.square().sum(axes: [2]).mean().item.squareRoot()
        let noiseStd = (c.train.points2D - t.points2D).square().mean().item.squareRoot()
        #expect(abs(noiseStd / (0.05 * rms) - 1) < 0.03, "noise std \(noiseStd) vs \(0.05 * rms)")
        #expect(c.trainTruth.scalars == t.points3D!.scalars)
    }

    @Test func liftingSplitIsADisjointCoverOfTheFrames() throws {
        let t = try tracks(frames: 50)
        let c = try NRSfMBenchmarkCase(tracks: t, protocol: .lifting(heldOut: 0.2), seed: 4)
        #expect(c.testFrames.count == 10 && c.trainFrames.count == 40)
        #expect(Set(c.testFrames).isDisjoint(with: c.trainFrames) && Set(c.testFrames + c.trainFrames) == Set(0..<50))
        #expect(c.test!.points2D.scalars == t.points2D.indexSelect(axis: 0, indices: c.testFrames).scalars)
        #expect(c.test!.points3D == nil && c.train.points3D == nil)
        // Not simply the last frames: the split is random.
        #expect(c.testFrames != Array(40..<50))
    }

    @Test func benchmarkLiftsHeldOutFramesWithDeepNRSfM() throws {
        let data = SyntheticNRSfM(frames: 150, points: 15, modes: 2, seed: 2)
        let t = try KeypointTracks(points2D: data.points2D, points3D: data.points3D, source: "synthetic")
        let c = try NRSfMBenchmarkCase(tracks: t, protocol: .lifting(heldOut: 0.2), seed: 0)
        var options = NRSfMOptions()
        options.overrides = ["dictionarySizes=128,64,32,16,8", "iterations=1500", "batchSize=64", "learningRate=0.003"]
        let score = try NRSfMRunner.benchmark(.deepNRSfMPlusPlus, case: c, options: options)
        print("benchmark lift on synthetic: held-out \(score.normalizedError)%, train \(score.trainNormalizedError!)%")
        #expect(score.normalizedError < 10 && score.trainNormalizedError! < 10)
        // A method without a lifting network cannot run this protocol.
        options.overrides = []
        #expect(throws: NRSfMError.self) { try NRSfMRunner.benchmark(.bmm, case: c, options: options) }
    }
}

@Suite struct RegistryDeepNRSfMTests {
    @Test func deepNRSfMRunsThroughTheRegistryAndItsCheckpointLifts() throws {
        let data = SyntheticNRSfM(frames: 60, points: 10, seed: 8)
        var vis = Tensor.ones([60, 10])
        vis[3, 2] = 0
        vis[7, 9] = 0
        let tracks = try KeypointTracks(points2D: data.points2D, visibility: vis, points3D: data.points3D, source: "synthetic")
        var options = NRSfMOptions()
        options.overrides = ["dictionarySizes=64,32,8", "iterations=200"]
        var steps = 0
        options.progress = { _, _, total, _ in steps += 1; #expect(total == 200) }
        for method in [NRSfMMethod.deepNRSfMPlusPlus, .deepNRSfM] {
            let r = try NRSfMRunner.fit(method, tracks: tracks, options: options)
            #expect(r.points3D.shape == [60, 10, 3] && r.rotations.shape == [60, 3, 3] && r.finalLoss.isFinite)
            #expect(r.config["nonlinearity"] as? String == (method == .deepNRSfM ? "relu" : "bst"))
            #expect((r.config["dictionarySizes"] as? [Int]) == [64, 32, 8])
            let lifter = try #require(r.lifter)
            #expect(lifter.method == method && lifter.pointCount == 10 && lifter.camera == .ortho)
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("registry-\(UUID().uuidString).safetensors")
            defer { try? FileManager.default.removeItem(at: url) }
            try lifter.save(to: url)
            let loaded = try NRSfMLifters.load(from: url)
            #expect(loaded.method == method)
            let a = try lifter.lift(points2D: data.points2D, visibility: vis), b = try loaded.lift(points2D: data.points2D, visibility: vis)
            #expect(a.points3D.allClose(b.points3D, rtol: 0, atol: 1e-6))
        }
        #expect(steps > 0)
    }

    @Test func perspectiveCameraIsRefusedByOrthographicOnlyMethodsAndNonLiftersAreNotLoaded() throws {
        let data = SyntheticNRSfM(frames: 10, points: 6, seed: 5)
        let tracks = try KeypointTracks(points2D: data.points2D, source: "s.npz")
        var options = NRSfMOptions()
        options.camera = .persp
        for method in [NRSfMMethod.paul, .adl, .bmm] {
            do {
                _ = try NRSfMRunner.fit(method, tracks: tracks, options: options)
                Issue.record("expected an error for \(method)")
            } catch {
                #expect("\(error)".contains("orthographic") && "\(error)".contains("deep-nrsfm++"))
            }
        }
        // A PAUL model trained in NRSfM mode (free codes, no h) is refused by the lifter loader;
        // one trained in lifting mode loads and lifts.
        var o = NRSfMOptions()
        o.overrides = ["iterations=2"]
        let r = try NRSfMRunner.fit(.paul, tracks: tracks, options: o)
        #expect(r.lifter == nil)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("paul-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try (r.model as! PAULModel).save(to: url)
        do {
            _ = try NRSfMLifters.load(from: url)
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("NRSfM mode") && "\(error)".contains("lifting=true"))
        }
        o.overrides = ["iterations=2", "lifting=true"]
        let lifting = try NRSfMRunner.fit(.paul, tracks: tracks, options: o)
        let lifter = try #require(lifting.lifter)
        try lifter.save(to: url)
        let loaded = try NRSfMLifters.load(from: url)
        #expect(loaded.method == .paul)
        let a = try lifter.lift(points2D: data.points2D, visibility: nil), b = try loaded.lift(points2D: data.points2D, visibility: nil)
        #expect(a.points3D.allClose(b.points3D, rtol: 0, atol: 1e-6))
    }
}
