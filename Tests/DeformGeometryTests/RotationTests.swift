import Foundation
import Testing
@testable import DeformGeometry
@testable import DeformTensor

/// Rodrigues' formula in Double, the obviously-correct reference.
private func rodriguesReference(_ w: [Double]) -> [[Double]] {
    let theta = (w[0] * w[0] + w[1] * w[1] + w[2] * w[2]).squareRoot()
    if theta == 0 { return [[1, 0, 0], [0, 1, 0], [0, 0, 1]] }
    let k = [[0, -w[2], w[1]], [w[2], 0, -w[0]], [-w[1], w[0], 0]].map { $0.map { $0 / theta } }
    let k2 = mul(k, k)
    return (0..<3).map { i in (0..<3).map { j in (i == j ? 1 : 0) + sin(theta) * k[i][j] + (1 - cos(theta)) * k2[i][j] } }
}

@Suite struct RotationTests {
    @Test func expMatchesRodriguesAndIsARotation() {
        var rng = RandomGenerator(seed: 1)
        let w = rng.normal([16, 3], std: 1.2)
        let r = SO3.exp(w)
        #expect(r.shape == [16, 3, 3])
        expectRotations(r)
        for b in 0..<16 {
            let ref = rodriguesReference((0..<3).map { Double(w[b, $0]) })
            let m = matrix(r, b)
            for i in 0..<3 { for j in 0..<3 { #expect(abs(m[i][j] - ref[i][j]) < 1e-6) } }
        }
        // Zero and tiny angles: exactly the identity, and I + [ω]× to first order.
        let small = SO3.exp(Tensor([[0, 0, 0], [1e-7, -2e-7, 3e-7]]))
        #expect(maxDiff(small.narrow(axis: 0, start: 0, length: 1).squeezed([0]), Tensor.eye(3)) == 0)
        #expect(abs(small[1, 1, 0] - 3e-7) < 1e-12 && abs(small[1, 0, 2] - (-2e-7)) < 1e-12)
    }

    @Test func logInvertsExpOverTheWholeRange() {
        var rng = RandomGenerator(seed: 2)
        // Random axes with angles from 0 to just below π, including the series and near-π bands.
        let angles: [Float] = [0, 1e-8, 1e-4, 5e-3, 0.02, 0.5, 1.5, 2.5, 3.0, 3.13, 3.1405, 3.14155]
        let axes = rng.normal([angles.count, 3])
        let unit = axes / axes.norm(axes: [-1], keepDims: true)
        let w = unit * Tensor(angles, shape: [angles.count, 1])
        let back = SO3.log(SO3.exp(w))
        for i in 0..<angles.count {
            for k in 0..<3 {
                #expect(abs(back[i, k] - w[i, k]) < 2e-5, "angle \(angles[i]): \(back[i, k]) vs \(w[i, k])")
            }
        }
    }

    @Test func expInvertsLogIncludingHalfTurns() {
        var rng = RandomGenerator(seed: 3)
        let r = SO3.random([20], using: &rng)
        #expect(maxDiff(SO3.exp(SO3.log(r)), r) < 2e-6)
        // Exactly π about x, y, z and a diagonal axis: the angle is π and exp gives R back.
        let s = Float(0.5).squareRoot()
        let halfTurns = Tensor([1, 0, 0, 0, -1, 0, 0, 0, -1,
                                -1, 0, 0, 0, 1, 0, 0, 0, -1,
                                -1, 0, 0, 0, -1, 0, 0, 0, 1,
                                0, 1, 0, 1, 0, 0, 0, 0, -1], shape: [4, 3, 3])
        let w = SO3.log(halfTurns)
        for i in 0..<4 { #expect(abs(w.norm(axes: [-1])[i] - .pi) < 1e-6) }
        #expect(abs(abs(w[3, 0]) - .pi * s) < 1e-5 && abs(abs(w[3, 1]) - .pi * s) < 1e-5)
        #expect(maxDiff(SO3.exp(w), halfTurns) < 1e-6)
    }

    @Test func quaternionRoundTripsAndKnownValues() {
        var rng = RandomGenerator(seed: 4)
        let q = SO3.randomQuaternion([50], using: &rng)
        let r = SO3.fromQuaternion(q)
        expectRotations(r)
        #expect(maxDiff(SO3.toQuaternion(r), q) < 2e-6)
        let r2 = SO3.random([50], using: &rng)
        #expect(maxDiff(SO3.fromQuaternion(SO3.toQuaternion(r2)), r2) < 2e-6)
        // (cos θ/2, sin θ/2 n) is the rotation by θ about n; scaling q changes nothing.
        let theta: Float = 1.1
        let n: [Float] = [2 / 7, 3 / 7, 6 / 7]
        let qk = Tensor([cos(theta / 2)] + n.map { sin(theta / 2) * $0 })
        let expected = SO3.exp(Tensor(n.map { $0 * theta }))
        #expect(maxDiff(SO3.fromQuaternion(qk), expected) < 1e-6)
        #expect(maxDiff(SO3.fromQuaternion(qk * 3), expected) < 1e-6)
        // Each Shepperd branch: half-turns about the axes have w = 0 and one large component.
        let halfX = SO3.exp(Tensor([Float.pi - 0.1, 0, 0])), halfZ = SO3.exp(Tensor([0, 0, Float.pi - 0.1]))
        #expect(maxDiff(SO3.fromQuaternion(SO3.toQuaternion(halfX)), halfX) < 1e-6)
        #expect(maxDiff(SO3.fromQuaternion(SO3.toQuaternion(halfZ)), halfZ) < 1e-6)
        #expect(SO3.toQuaternion(halfX)[0] > 0)
        // Hamilton product composes rotations.
        let a = SO3.randomQuaternion([5], using: &rng), b = SO3.randomQuaternion([5], using: &rng)
        #expect(maxDiff(SO3.fromQuaternion(SO3.multiplyQuaternions(a, b)), SO3.fromQuaternion(a).matmul(SO3.fromQuaternion(b))) < 2e-6)
        let nq = SO3.normalizeQuaternion(Tensor([[2, 0, 0, 0], [1, 1, 1, 1]]))
        #expect(maxDiff(nq, Tensor([[1, 0, 0, 0], [0.5, 0.5, 0.5, 0.5]])) < 1e-7)
    }

    @Test func sixDRepresentation() {
        var rng = RandomGenerator(seed: 5)
        let r = SO3.random([30], using: &rng)
        let six = SO3.to6D(r)
        #expect(six.shape == [30, 6])
        #expect(six[3, 0] == r[3, 0, 0] && six[3, 1] == r[3, 1, 0] && six[3, 4] == r[3, 1, 1])
        #expect(maxDiff(SO3.from6D(six), r) < 2e-6)
        // Arbitrary inputs map into SO(3) with the first column along a₁.
        let x = rng.normal([10, 6])
        let m = SO3.from6D(x)
        expectRotations(m)
        let a1 = x.narrow(axis: -1, start: 0, length: 3)
        #expect(maxDiff(m.narrow(axis: -1, start: 0, length: 1).squeezed([-1]), a1 / a1.norm(axes: [-1], keepDims: true)) < 1e-6)
    }

    @Test func randomRotationsAreSeededAndUniform() {
        var a = RandomGenerator(seed: 6), b = RandomGenerator(seed: 6)
        let r = SO3.random([4000], using: &a)
        #expect(r.scalars == SO3.random([4000], using: &b).scalars)
        expectRotations(r.narrow(axis: 0, start: 0, length: 100))
        // Haar measure: E[R] = 0, and P(angle ≤ π/2) = (π/2 - sin(π/2))/π ≈ 0.1817.
        let mean = r.mean(axes: [0])
        #expect(mean.scalars.allSatisfy { abs($0) < 0.04 }, "\(mean)")
        let angles = SO3.log(r).norm(axes: [-1]).scalars
        let fraction = Double(angles.filter { $0 <= .pi / 2 }.count) / Double(angles.count)
        #expect(abs(fraction - (Double.pi / 2 - 1) / Double.pi) < 0.02, "\(fraction)")
    }

    @Test func projectionAndCompletionHandleReflections() throws {
        var rng = RandomGenerator(seed: 7)
        let r = SO3.random([8], using: &rng)
        let reflect = Tensor([[1, 0, 0], [0, 1, 0], [0, 0, -1]])
        let improper = r.matmul(reflect)                       // det -1
        expectRotations(try SO3.project(improper))
        // Two exact rows of a rotation complete to that rotation.
        #expect(maxDiff(try SO3.completeFromRows(r.narrow(axis: -2, start: 0, length: 2)), r) < 2e-6)
        #expect(maxDiff(try SO3.completeFromColumns(r.narrow(axis: -1, start: 0, length: 2)), r) < 2e-6)
        // Rows of an improper matrix are still an orthonormal pair: the third row becomes their
        // cross product, never the reflected one.
        let rows = improper.narrow(axis: -2, start: 0, length: 2)
        let done = try SO3.completeFromRows(rows)
        expectRotations(done)
        #expect(maxDiff(done.narrow(axis: -2, start: 0, length: 2), rows) < 2e-6)
        // Scaled, noisy rows: the result is a rotation whose rows are the orthonormalised inputs.
        let noisy = rows * 2.5 + rng.normal(rows.shape, std: 0.01)
        let fixed = try SO3.completeFromRows(noisy)
        expectRotations(fixed)
        #expect(maxDiff(fixed, done) < 0.02)
    }

    @Test func completionMatchesTheProjectionOfThePaddedMatrix() throws {
        // Reference: Linalg.projectToSO3([m; 0]) by the 3x3 SVD, values and gradients.
        var rng = RandomGenerator(seed: 9)
        let m = rng.normal([12, 2, 3])
        let padded = { (x: Tensor) in Tensor.concat([x, Tensor.zeros([12, 1, 3])], axis: -2) }
        #expect(maxDiff(try SO3.completeFromRows(m), try Linalg.projectToSO3(padded(m))) < 2e-6)
        let seed = rng.normal([12, 3, 3])
        let fast = valueAndGrad(at: [m]) { xs in (try! SO3.completeFromRows(xs[0]) * seed).sum() }.gradients[0]
        let ref = valueAndGrad(at: [m]) { xs in (try! Linalg.projectToSO3(padded(xs[0])) * seed).sum() }.gradients[0]
        #expect(maxDiff(fast, ref) < 1e-4)
        let cols = m.transposed()
        let padCols = Tensor.concat([cols, Tensor.zeros([12, 3, 1])], axis: -1)
        #expect(maxDiff(try SO3.completeFromColumns(cols), try Linalg.projectToSO3(padCols)) < 2e-6)
    }

    @Test func hatAndCross() {
        var rng = RandomGenerator(seed: 8)
        let v = rng.normal([6, 3]), x = rng.normal([6, 3])
        let viaHat = SO3.hat(v).matmul(x.unsqueezed(-1)).squeezed([-1])
        #expect(maxDiff(viaHat, SO3.cross(v, x)) < 1e-6)
        #expect(SO3.cross(Tensor([1, 0, 0]), Tensor([0, 1, 0])).scalars == [0, 0, 1])
        // Broadcasting one vector against a batch.
        #expect(SO3.cross(Tensor([0, 0, 1]), x).shape == [6, 3])
    }

    @Test func angleBetweenRotations() {
        let a = SO3.exp(Tensor([[0, 0, 0.3]])), b = SO3.exp(Tensor([[0, 0, 1.0]]))
        #expect(abs(SO3.angle(between: a, and: b)[0] - 0.7) < 1e-6)
    }
}
