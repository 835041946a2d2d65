import Foundation
import Testing
@testable import DeformGeometry
@testable import DeformTensor

@Suite struct MetricTests {
    /// A non-planar 5-point ground truth (two frames) with nonzero depth spread.
    private var groundTruth: Tensor {
        Tensor([1, 0, 0.5, -1, 0, -0.2, 0, 1, 0.3, 0, -1, -0.6, 0.2, 0.3, 1,
                2, 1, 0, 0, 1, 1, 1, 2, -1, 1, 0, 0.5, 1, 1, 0.2], shape: [2, 5, 3])
    }

    @Test func normalizedErrorFlipAndCentring() throws {
        let gt = groundTruth
        #expect(try Metrics3D.normalizedError(prediction: gt, groundTruth: gt).mean == 0)
        // A translated prediction scores 0: both shapes are centred.
        let moved = gt + Tensor([3, -2, 10])
        let movedError = try Metrics3D.normalizedError(prediction: moved, groundTruth: gt)
        #expect(movedError.mean < 1e-4, "\(movedError)")
        // A depth-flipped prediction scores 0, and the flip is reported per frame.
        let flipped = gt * Tensor([1, 1, -1]) + Tensor([0, 0, 7])
        let ne = try Metrics3D.normalizedError(prediction: flipped, groundTruth: gt)
        #expect(ne.mean < 1e-5)
        #expect(ne.flipped == [true, true])
        #expect(try Metrics3D.normalizedError(prediction: flipped, groundTruth: gt, flip: false).mean > 10)
        // A prediction 10% too large (about its centre) is 10% off, in percent.
        let centre = gt.mean(axes: [1], keepDims: true)
        let big = try Metrics3D.normalizedError(prediction: (gt - centre) * 1.1 + centre, groundTruth: gt)
        #expect(abs(big.perFrame[0] - 10) < 1e-4 && abs(big.perFrame[1] - 10) < 1e-4)
        #expect(try Metrics3D.normalizedError(prediction: (gt - centre) * 1.1, groundTruth: gt, alignScale: true).mean < 1e-4)
    }

    @Test func normalizedErrorHandComputedFrame() throws {
        // Centred ground truth ±e_x, ±e_y (|G|_F = 2); moving one predicted point by (0.4, 0, 0)
        // moves the centre by 0.1, so the residual rows are (0.3, 0, 0) and three times (-0.1, 0, 0):
        // |E|_F = √(0.09 + 0.03) and NE = 100 √0.12 / 2.
        let gt = Tensor([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]])
        let pred = gt + Tensor([[0.4, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]])
        let ne = try Metrics3D.normalizedError(prediction: pred, groundTruth: gt)
        #expect(ne.perFrame.count == 1)
        #expect(abs(ne.mean - 100 * 0.12.squareRoot() / 2) < 1e-5)
    }

    @Test func mpjpeScaleDepthAndFlip() throws {
        let gt = groundTruth
        // Mean depth removed, scale normalised, depth flipped: all of these score 0.
        let pred = (gt * Tensor([1, 1, -1])) * 3 + Tensor([0, 0, 5])
        let m = try Metrics3D.mpjpe(prediction: pred, groundTruth: gt * 1)
        #expect(m.mean < 1e-5)
        #expect(m.flipped == [true, true])
        // Without the scale normalisation the error is not 0.
        #expect(try Metrics3D.mpjpe(prediction: pred, groundTruth: gt, alignScale: false).mean > 0.5)
        // A lateral offset is not removed by the depth centring: every point is 1 off.
        let lateral = try Metrics3D.mpjpe(prediction: gt + Tensor([1, 0, 0]), groundTruth: gt, alignScale: false)
        #expect(abs(lateral.mean - 1) < 1e-6)
        #expect(try Metrics3D.mpjpe(prediction: gt + Tensor([1, 0, 0]), groundTruth: gt, centering: .mean, alignScale: false).mean < 1e-6)
        // Root-relative: the root coincides after centring.
        let root = try Metrics3D.mpjpe(prediction: gt + Tensor([2, 2, 2]), groundTruth: gt, centering: .root(3), alignScale: false)
        #expect(root.mean < 1e-6)
        // Masked points are ignored, even when they hold NaN.
        let mask = Tensor([[1, 1, 1, 1, 0], [1, 1, 0, 1, 1]])
        let bad = Tensor.where(mask.unsqueezed(-1), gt, Tensor(Float.nan))
        #expect(try Metrics3D.mpjpe(prediction: bad, groundTruth: gt, mask: mask).mean < 1e-6)
    }

    @Test func paMPJPEAlignsSimilarities() throws {
        var rng = RandomGenerator(seed: 1)
        let gt = groundTruth, r = SO3.random([2], using: &rng)
        let pred = SimilarityTransform(rotation: r, translation: Tensor([[1, 2, 3], [-1, 0, 4]]), scale: Tensor([0.3, 2])).apply(gt)
        let pa = try Metrics3D.paMPJPE(prediction: pred, groundTruth: gt)
        #expect(pa.mean < 1e-5, "\(pa)")
        #expect(pa.flipped == [false, false])
        // A reflection is not a rotation: only the flip option removes it.
        let mirrored = pred * Tensor([1, 1, -1])
        #expect(try Metrics3D.paMPJPE(prediction: mirrored, groundTruth: gt).mean < 1e-5)
        #expect(try Metrics3D.paMPJPE(prediction: mirrored, groundTruth: gt, flip: false).mean > 0.05)
        // Noise: PA-MPJPE is at most the MPJPE of the unaligned (but centred, scaled) prediction.
        let noisy = gt + rng.normal(gt.shape, std: 0.1)
        let a = try Metrics3D.paMPJPE(prediction: noisy, groundTruth: gt).mean
        let b = try Metrics3D.mpjpe(prediction: noisy, groundTruth: gt, centering: .mean).mean
        #expect(a > 0 && a <= b + 1e-9)
    }

    @Test func stressMatchesItsDefinition() throws {
        var rng = RandomGenerator(seed: 2)
        let gt = groundTruth
        // Invariant to rigid motion and the depth flip.
        let rigid = Camera.transform(gt, rotation: SO3.random([2], using: &rng), translation: Tensor([5, 5, 5]))
        #expect(try Metrics3D.stress(prediction: rigid, groundTruth: gt).mean < 1e-5)
        #expect(try Metrics3D.stress(prediction: gt * Tensor([1, 1, -1]), groundTruth: gt).mean < 1e-6)
        // Three points 3-4-5 triangle; a prediction twice as large is off by each distance.
        let tri = Tensor([[0, 0, 0], [3, 0, 0], [0, 4, 0]])
        let s = try Metrics3D.stress(prediction: tri * 2, groundTruth: tri)
        #expect(abs(s.mean - (3 + 4 + 5) / 3.0) < 1e-6)
        #expect(try Metrics3D.stress(prediction: tri * 2, groundTruth: tri, alignScale: true).mean < 1e-6)
        // The scale alignment also holds for a depth-flipped prediction (distances are unchanged
        // by the reflection, so the flip must not shrink the fitted scale).
        let flippedLarger = gt * Tensor([1, 1, -1]) * 3
        #expect(try Metrics3D.stress(prediction: flippedLarger, groundTruth: gt, alignScale: true).mean < 1e-5)
    }

    @Test func akhterErrorMatchesItsDefinition() throws {
        var rng = RandomGenerator(seed: 5)
        let gt = groundTruth
        // One rotation for the whole sequence, any translation per frame: 0.
        let r1 = SO3.random([1], using: &rng)
        let rotation = Tensor.concat([r1, r1], axis: 0)
        let rigid = Camera.transform(gt, rotation: rotation, translation: Tensor([[1, 2, 3], [-4, 0, 9]]))
        #expect(try Metrics3D.akhterError(prediction: rigid, groundTruth: gt).mean < 1e-4)
        // The depth reflection of the whole sequence (the orthographic ambiguity): 0, reported as flipped.
        let reflected = Camera.transform(gt * Tensor([1, 1, -1]), rotation: rotation, translation: Tensor([0, 0, 5]))
        let e = try Metrics3D.akhterError(prediction: reflected, groundTruth: gt)
        #expect(e.mean < 1e-4)
        #expect(e.flipped == [true, true])
        // A different rotation per frame is not undone (one alignment per sequence), nor is a
        // depth flip of one frame only, which the normalized error forgives.
        let perFrame = Camera.transform(gt, rotation: SO3.random([2], using: &rng), translation: Tensor([0, 0, 0]))
        #expect(try Metrics3D.akhterError(prediction: perFrame, groundTruth: gt).mean > 5)
        let oneFlipped = gt * Tensor([1, 1, 1, 1, 1, -1] as [Float], shape: [2, 1, 3])
        #expect(try Metrics3D.normalizedError(prediction: oneFlipped, groundTruth: gt).mean < 1e-5)
        #expect(try Metrics3D.akhterError(prediction: oneFlipped, groundTruth: gt).perFrame[1] > 5)
        // Each frame 10% too large about its centre: the best rotation is the identity and each
        // point is off by 0.1 |g_i - ḡ|, so the frame scores 100 · 0.1 · mean_i |g_i - ḡ| / σ, with
        // σ the mean over the 6 coordinate rows of their spread over the points.
        let centre = gt.mean(axes: [1], keepDims: true)
        let big = try Metrics3D.akhterError(prediction: (gt - centre) * 1.1 + centre, groundTruth: gt)
        let c = (gt - centre).scalars.map(Double.init)
        var sigma = 0.0
        for f in 0..<2 {
            for k in 0..<3 {
                var squared = 0.0
                for i in 0..<5 { squared += c[(f * 5 + i) * 3 + k] * c[(f * 5 + i) * 3 + k] }
                sigma += (squared / 5).squareRoot()
            }
        }
        sigma /= 6
        for f in 0..<2 {
            var radius = 0.0
            for i in 0..<5 {
                let b = (f * 5 + i) * 3
                let squared: Double = c[b] * c[b] + c[b + 1] * c[b + 1] + c[b + 2] * c[b + 2]
                radius += squared.squareRoot() / 5
            }
            #expect(abs(big.perFrame[f] - 100 * 0.1 * radius / sigma) < 1e-3, "frame \(f): \(big.perFrame[f])")
        }
        #expect(throws: TensorError.self) { try Metrics3D.akhterError(prediction: gt.narrow(axis: 1, start: 0, length: 4), groundTruth: gt) }
        #expect(throws: TensorError.self) { try Metrics3D.akhterError(prediction: gt, groundTruth: gt * 0) }
    }

    @Test func metricsRejectBadInput() {
        let gt = groundTruth
        #expect(throws: TensorError.self) { try Metrics3D.normalizedError(prediction: gt.narrow(axis: 1, start: 0, length: 4), groundTruth: gt) }
        #expect(throws: TensorError.self) { try Metrics3D.mpjpe(prediction: gt * Float.nan, groundTruth: gt) }
        #expect(throws: TensorError.self) { try Metrics3D.mpjpe(prediction: gt, groundTruth: gt, centering: .root(9)) }
        #expect(throws: TensorError.self) { try Metrics3D.stress(prediction: gt, groundTruth: gt, mask: Tensor([[1, 0, 0, 0, 0], [1, 1, 1, 1, 1]])) }
        #expect(throws: TensorError.self) { try Metrics3D.normalizedError(prediction: gt, groundTruth: gt * 0) }
    }
}
