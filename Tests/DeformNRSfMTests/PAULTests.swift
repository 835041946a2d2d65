import Testing
@testable import DeformNRSfM
import DeformNN
import DeformTensor

/// Normalized error in % (centre both, flip depth if better), for these tests.
func normalizedErrorPercent(_ pred: Tensor, _ gt: Tensor) -> Double {
    let f = gt.shape[0], p = gt.shape[1]
    let a = pred.scalars, b = gt.scalars
    var total = 0.0
    for i in 0..<f {
        var mp = [0.0, 0.0, 0.0], mg = [0.0, 0.0, 0.0]
        for j in 0..<p { for c in 0..<3 { mp[c] += Double(a[(i * p + j) * 3 + c]) / Double(p); mg[c] += Double(b[(i * p + j) * 3 + c]) / Double(p) } }
        var e1 = 0.0, e2 = 0.0, n = 0.0
        for j in 0..<p {
            for c in 0..<3 {
                let g = Double(b[(i * p + j) * 3 + c]) - mg[c], x = Double(a[(i * p + j) * 3 + c]) - mp[c]
                e1 += (x - g) * (x - g)
                e2 += ((c == 2 ? -x : x) - g) * ((c == 2 ? -x : x) - g)
                n += g * g
            }
        }
        total += (min(e1, e2) / n).squareRoot()
    }
    return 100 * total / Double(f)
}

@Suite struct PAULTests {
    @Test func lowerLevelRecoversRotationOfExactShape() throws {
        let data = SyntheticNRSfM(frames: 6, points: 12, seed: 3)
        // Canonical shapes: Rᵀ S_cam.
        let sCam = data.points3D.permuted(0, 2, 1)                               // [N, 3, P]
        let canon = data.rotations.transposed().matmul(sCam)
        let w = sCam.narrow(axis: 1, start: 0, length: 2)
        let cam = try PAUL.lowerLevel(w: w, a: canon, b: canon)
        #expect(cam.rotations.allClose(data.rotations, rtol: 1e-3, atol: 1e-3))
        let z = sCam.narrow(axis: 1, start: 2, length: 1).squeezed([1])
        #expect(cam.depths.allClose(z, rtol: 1e-3, atol: 1e-3))
    }

    @Test func lowerLevelGradients() throws {
        var rng = RandomGenerator(seed: 8)
        let w = rng.normal([2, 2, 6]), a = rng.normal([2, 3, 6]), b = rng.normal([2, 3, 6])
        let r = GradientCheck.check([w, a, b], step: 1e-3, atol: 5e-3, rtol: 3e-2) { x in
            let cam = try! PAUL.lowerLevel(w: x[0], a: x[1], b: x[2])
            return Tensor.concat([cam.rotations.flattened(from: 1), cam.depths], axis: 1)
        }
        #expect(r.passed, "\(r)")
    }

    @Test func recoversSyntheticLowRankSequence() throws {
        let data = SyntheticNRSfM(frames: 120, points: 15, modes: 2, seed: 1)
        var config = PAULConfig()
        config.iterations = 1500
        config.learningRate = 3e-3
        let result = try PAUL.fit(points2D: data.points2D, config: config)
        let err = normalizedErrorPercent(result.points3D, data.points3D)
        #expect(err < 5, "normalized error \(err)% (loss \(result.finalLoss))")
        print("synthetic PAUL normalized error: \(err)% final loss \(result.finalLoss)")
    }
}
