import Foundation
import Testing
@testable import DeformGeometry
@testable import DeformTensor

/// A mask with ~`p` visible points per row but at least the first four visible.
private func randomMask(_ rows: Int, _ points: Int, p: Float, using rng: inout RandomGenerator) -> Tensor {
    var m = rng.bernoulli([rows, points], p: p)
    m.withUnsafeMutableBufferPointer { b in for r in 0..<rows { for i in 0..<4 { b[r * points + i] = 1 } } }
    return m
}

/// Replaces the rows of hidden points by NaN, which no solver may read.
private func poisonHidden(_ x: Tensor, _ mask: Tensor) -> Tensor {
    Tensor.where(mask.unsqueezed(-1), x, Tensor(Float.nan))
}

@Suite struct SolverTests {
    @Test func procrustesRecoversAKnownRotation() throws {
        var rng = RandomGenerator(seed: 1)
        let x = rng.normal([5, 12, 3]), r = SO3.random([5], using: &rng)
        let y = Camera.transform(x, rotation: r)
        #expect(maxDiff(try Procrustes.rotation(from: x, to: y), r) < 2e-6)
        let mask = randomMask(5, 12, p: 0.5, using: &rng)
        let rm = try Procrustes.rotation(from: poisonHidden(x, mask), to: poisonHidden(y, mask), mask: mask)
        #expect(maxDiff(rm, r) < 2e-6)
    }

    @Test func umeyamaRecoversAKnownSimilarity() throws {
        var rng = RandomGenerator(seed: 2)
        let x = rng.normal([4, 10, 3]), r = SO3.random([4], using: &rng)
        let s = Tensor([0.5, 1, 2, 3.5]), t = rng.normal([4, 3], std: 3)
        let truth = SimilarityTransform(rotation: r, translation: t, scale: s)
        let y = truth.apply(x)
        let fit = try Procrustes.align(from: x, to: y)
        #expect(maxDiff(fit.rotation, r) < 5e-6)
        #expect(maxDiff(fit.scale, s) < 5e-6)
        #expect(maxDiff(fit.translation, t) < 5e-5)
        #expect(maxDiff(fit.apply(x), y) < 5e-5)
        // With a mask and garbage in hidden rows.
        let mask = randomMask(4, 10, p: 0.5, using: &rng)
        let fm = try Procrustes.align(from: poisonHidden(x, mask), to: poisonHidden(y, mask), mask: mask)
        #expect(maxDiff(fm.rotation, r) < 5e-6)
        #expect(maxDiff(fm.scale, s) < 5e-6)
        #expect(maxDiff(fm.translation, t) < 5e-5)
        // Rigid: scale fixed at 1, rotation still recovered from a scaled copy.
        let rigid = try Procrustes.align(from: x, to: y, scaling: false)
        #expect(rigid.scale.scalars == [1, 1, 1, 1])
        #expect(maxDiff(rigid.rotation, r) < 5e-6)
        // A mirrored target still gives a proper rotation.
        let mirrored = y * Tensor([1, 1, -1])
        expectRotations(try Procrustes.align(from: x, to: mirrored).rotation)
    }

    @Test func paulSolverRecoversTheRotationOfAnOrthographicProjection() throws {
        var rng = RandomGenerator(seed: 3)
        let s = centredPoints([6, 15, 3], using: &rng), r = SO3.random([6], using: &rng)
        let cam = Camera.transform(s, rotation: r)
        let w = Camera.orthographic(cam)
        let sol = try PAULSolver.solve(points2D: w, shapes: [s, s])
        #expect(maxDiff(sol.rotation, r) < 5e-6)
        #expect(maxDiff(sol.depth, cam.narrow(axis: -1, start: 2, length: 1).squeezed([-1])) < 1e-5)
        #expect(maxDiff(sol.cameraShape, cam) < 1e-5)
        expectRotations(sol.rotation)
        // The auto-decoder variant (one shape) gives the same answer on exact data.
        #expect(maxDiff(try PAULSolver.solve(points2D: w, shapes: [s]).rotation, r) < 5e-6)
    }

    @Test func paulSolverLeastSquaresCameraMatchesEq29() throws {
        // Two different shapes A and B: R̃* = W(A+B)ᵀ(AAᵀ + BBᵀ)⁻¹ in the thesis' 3×P layout,
        // checked through the normal equations of Eq. 2.9 in Double.
        var rng = RandomGenerator(seed: 4)
        let a = centredPoints([1, 8, 3], using: &rng), b = a + rng.normal([1, 8, 3], std: 0.2)
        let w = rng.normal([1, 8, 2])
        let sol = try PAULSolver.solve(points2D: w, shapes: [a, b], ridge: 0)
        let rt = matrix(sol.leastSquaresCamera)
        let am = matrix(a), bm = matrix(b), wm = matrix(w)
        // ∂/∂R̃ Σ_k |R̃ s_k,i - w_i|² = 2 Σ_k Σ_i (R̃ s_k,i - w_i) s_k,iᵀ must vanish.
        var grad = [[Double]](repeating: [0, 0, 0], count: 2)
        for shape in [am, bm] {
            for i in 0..<8 {
                for row in 0..<2 {
                    let res = (0..<3).reduce(0.0) { $0 + rt[row][$1] * shape[i][$1] } - wm[i][row]
                    for c in 0..<3 { grad[row][c] += res * shape[i][c] }
                }
            }
        }
        #expect(grad.flatMap { $0 }.allSatisfy { abs($0) < 1e-4 }, "\(grad)")
        // z* = ½(Aᵀ r₃ + Bᵀ r₃).
        let r3 = matrix(sol.rotation)[2]
        for i in 0..<8 {
            let z = 0.5 * (0..<3).reduce(0.0) { $0 + (am[i][$1] + bm[i][$1]) * r3[$1] }
            #expect(abs(Double(sol.depth[0, i]) - z) < 1e-5)
        }
    }

    @Test func paulSolverWithMissingPoints() throws {
        var rng = RandomGenerator(seed: 5)
        let p = 14
        let s = centredPoints([5, p, 3], using: &rng), r = SO3.random([5], using: &rng)
        let mask = randomMask(5, p, p: 0.6, using: &rng)
        let w = poisonHidden(Camera.orthographic(Camera.transform(s, rotation: r)) + Tensor([2, -3]), mask)
        let wt = ObjectCentric.centered(w, mask: mask), st = ObjectCentric.normalizedRows(s, mask: mask)
        let sol = try PAULSolver.solve(points2D: wt, shapes: [st, st], mask: mask)
        #expect(maxDiff(sol.rotation, r) < 1e-5)
        // S̃_cam maps back onto S̃ for every point, visible or not (Eqs. 2.14-2.15 at the optimum).
        #expect(maxDiff(sol.cameraShape.matmul(sol.rotation), st) < 2e-5)
        #expect(sol.cameraShape.isFinite)
    }

    @Test func onpRecoversAKnownRotation() throws {
        var rng = RandomGenerator(seed: 6)
        let x = centredPoints([6, 12, 3], using: &rng) + Tensor([0.3, -0.2, 0.1]), r = SO3.random([6], using: &rng)
        let t = rng.normal([6, 2])
        let w = Camera.orthographic(Camera.transform(x, rotation: r)) + t.unsqueezed(-2)
        let sol = try OnP.solve(points2D: w, shape: x)
        #expect(maxDiff(sol.rotation, r) < 2e-6)
        #expect(maxDiff(sol.translation, t) < 2e-5)
        #expect(sol.rmsError.scalars.allSatisfy { $0 < 1e-5 })
        #expect(sol.scale.scalars == [1, 1, 1, 1, 1, 1])
        // Weak perspective with a mask.
        let s = Tensor([0.5, 1, 1.5, 2, 2.5, 3])
        let ws = Camera.weakPerspective(Camera.transform(x, rotation: r), scale: s, translation: t)
        let mask = randomMask(6, 12, p: 0.5, using: &rng)
        let sm = try OnP.solve(points2D: poisonHidden(ws, mask), shape: poisonHidden(x, mask), mask: mask, estimateScale: true)
        #expect(maxDiff(sm.rotation, r) < 2e-6)
        #expect(maxDiff(sm.scale, s) < 2e-6)
        #expect(maxDiff(sm.translation, t) < 2e-5)
    }

    @Test func onpRefinementLowersTheReprojectionErrorUnderNoise() throws {
        var rng = RandomGenerator(seed: 7)
        let x = centredPoints([8, 10, 3], using: &rng), r = SO3.random([8], using: &rng)
        let w = Camera.orthographic(Camera.transform(x, rotation: r)) + rng.normal([8, 10, 2], std: 0.05)
        let closed = try OnP.solve(points2D: w, shape: x, iterations: 0)
        let refined = try OnP.solve(points2D: w, shape: x)
        expectRotations(refined.rotation)
        for b in 0..<8 {
            #expect(refined.rmsError[b] <= closed.rmsError[b] + 1e-7)
            #expect(SO3.angle(between: refined.rotation, and: r)[b] < 0.1)
        }
        #expect(refined.rmsError.sum().item < closed.rmsError.sum().item)
        // At the refined optimum no small rotation lowers the error (first-order optimality).
        let e0 = refined.rmsError[0]
        for axis in [[1e-3, 0, 0], [0, 1e-3, 0], [0, 0, 1e-3], [-1e-3, 0, 0]] as [[Float]] {
            let rp = SO3.exp(Tensor(axis)).matmul(refined.rotation.narrow(axis: 0, start: 0, length: 1).squeezed([0]))
            let pred = Camera.orthographic(Camera.transform(x.narrow(axis: 0, start: 0, length: 1).squeezed([0]), rotation: rp))
            let wc = w.narrow(axis: 0, start: 0, length: 1).squeezed([0])
            let res = (wc - wc.mean(axes: [0], keepDims: true)) - (pred - pred.mean(axes: [0], keepDims: true))
            let e = (res.square().sum() / 10).sqrt().item
            #expect(e >= e0 - 1e-6)
        }
    }

    @Test func solversRejectBadInput() {
        let x = Tensor(shape: [2, 5, 3], repeating: 1)
        #expect(throws: TensorError.self) { try Procrustes.rotation(from: x, to: Tensor.zeros([2, 4, 3])) }
        #expect(throws: TensorError.self) { try Procrustes.align(from: x, to: x * Float.nan) }
        #expect(throws: TensorError.self) { try PAULSolver.solve(points2D: Tensor.zeros([2, 5, 3]), shapes: [x]) }
        #expect(throws: TensorError.self) { try PAULSolver.solve(points2D: Tensor.zeros([2, 5, 2]), shapes: []) }
        #expect(throws: TensorError.self) { try OnP.solve(points2D: Tensor.zeros([2, 5, 2]) * Float.nan, shape: x) }
    }
}
