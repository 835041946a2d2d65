import Foundation
import Testing
@testable import DeformGeometry
@testable import DeformTensor

@Suite struct CameraTests {
    @Test func projectionsOfKnownPoints() {
        let x = Tensor([[1, 2, 3], [2, 4, 2]])
        #expect(Camera.orthographic(x).scalars == [1, 2, 2, 4])
        #expect(Camera.weakPerspective(x, scale: Tensor(2), translation: Tensor([1, -1])).scalars == [3, 3, 5, 7])
        #expect(maxDiff(Camera.perspective(x), Tensor([[1.0 / 3, 2.0 / 3], [1, 2]])) < 1e-7)
        let k = Tensor([[100, 5, 50], [0, 200, 60], [0, 0, 1]])
        let px = Camera.pinhole(x, intrinsics: k)
        // (2, 4, 2): u = 100·1 + 5·2 + 50, v = 200·2 + 60.
        #expect(maxDiff(px.narrow(axis: 0, start: 1, length: 1), Tensor([[160, 460]])) < 1e-4)
        #expect(maxDiff(Camera.normalizedCoordinates(px, intrinsics: k), Camera.perspective(x)) < 1e-6)
        // Batched: per-sample weak-perspective scales and rotations.
        var rng = RandomGenerator(seed: 1)
        let pts = rng.normal([3, 5, 3]), r = SO3.random([3], using: &rng)
        let cam = Camera.transform(pts, rotation: r, translation: Tensor([[0, 0, 1], [0, 0, 2], [1, 1, 1]]))
        #expect(abs(cam[2, 4, 0] - (r[2, 0, 0] * pts[2, 4, 0] + r[2, 0, 1] * pts[2, 4, 1] + r[2, 0, 2] * pts[2, 4, 2] + 1)) < 1e-5)
        let wp = Camera.weakPerspective(pts, scale: Tensor([1, 2, 3]))
        #expect(wp[2, 1, 1] == 3 * pts[2, 1, 1])
    }

    @Test func orthographicNormalisationOnAHandMadeCase() {
        let nan = Float.nan
        let w = Tensor([[0, 0], [2, 0], [0, 2], [nan, nan]])
        let mask = Tensor([1, 1, 1, 0])
        #expect(maxDiff(ObjectCentric.visibleMean(w, mask: mask), Tensor([[2.0 / 3, 2.0 / 3]])) < 1e-7)
        let c = ObjectCentric.centered(w, mask: mask)
        #expect(maxDiff(c, Tensor([[-2.0 / 3, -2.0 / 3], [4.0 / 3, -2.0 / 3], [-2.0 / 3, 4.0 / 3], [0, 0]])) < 1e-6)
        // D̃: every row gets (sum of hidden rows)/P̃ = (6, 0)/2 added.
        let d = Tensor([[1, 0], [0, 1], [2, 2], [4, -2]])
        let dt = ObjectCentric.normalizedRows(d, mask: Tensor([[1, 1, 0, 0], [1, 1, 1, 1]]))
        #expect(dt.shape == [2, 4, 2])
        #expect(maxDiff(dt.narrow(axis: 0, start: 0, length: 1).squeezed([0]), Tensor([[4, 0], [3, 1], [5, 2], [7, -2]])) < 1e-6)
        #expect(maxDiff(dt.narrow(axis: 0, start: 1, length: 1).squeezed([0]), d) == 0)
        // No visible point: zeros, not NaN.
        #expect(ObjectCentric.centered(Tensor([[1, 1], [2, 2]]), mask: Tensor([0, 0])).scalars == [0, 0, 0, 0])
    }

    @Test func orthographicBilinearIdentityUnderMissingPoints() {
        // Eqs. 2.13 / 3.15: for a shape centred over all points, M W̃ = M S̃ R_xyᵀ.
        var rng = RandomGenerator(seed: 2)
        let s = centredPoints([4, 9, 3], using: &rng), r = SO3.random([4], using: &rng)
        let w = Camera.orthographic(Camera.transform(s, rotation: r)) + Tensor([3, -1, 0, 2, 1, 1, -5, 0], shape: [4, 1, 2])
        var mask = rng.bernoulli([4, 9], p: 0.7)
        mask.withUnsafeMutableBufferPointer { m in for b in 0..<4 { m[9 * b] = 1; m[9 * b + 1] = 1 } }
        let lhs = ObjectCentric.centered(w, mask: mask)
        let rhs = Camera.orthographic(Camera.transform(ObjectCentric.normalizedRows(s, mask: mask), rotation: r)) * mask.unsqueezed(-1)
        #expect(maxDiff(lhs, rhs) < 1e-5)
    }

    @Test func perspectiveBilinearIdentityEq314() {
        // A one-atom dictionary D♯ = S (C = 3, φ = 1): Deep NRSfM++ writes S_cam = S R' + 1tᵀ with
        // R' = Rᵀ in our convention, so Ψ = Rᵀ and Ψ̃ = [ψ_x; ψ_y; ψ_z] stacks the rows of R.
        var rng = RandomGenerator(seed: 3)
        let p = 10
        let s = centredPoints([3, p, 3], using: &rng) * 0.4, r = SO3.random([3], using: &rng)
        let t = Tensor([[0.2, -0.1, 4], [0, 0.3, 3], [-0.5, 0.1, 6]])
        let cam = Camera.transform(s, rotation: r, translation: t)
        let uv = Camera.perspective(cam)
        var mask = rng.bernoulli([3, p], p: 0.6)
        mask.withUnsafeMutableBufferPointer { m in for b in 0..<3 { m[p * b] = 1; m[p * b + 3] = 1 } }
        let tz = t.narrow(axis: -1, start: 2, length: 1).squeezed([-1])
        let wt = ObjectCentric.perspectiveInput(uv, mask: mask, depth: tz)           // [3, P, 2]
        let dt = ObjectCentric.perspectiveDictionary(s, points2D: uv, mask: mask)      // [3, 2P, 9]
        #expect(dt.shape == [3, 2 * p, 9])
        let psi = r.reshaped([3, 9, 1])
        let rhs = dt.matmul(psi).reshaped([3, p, 2]) * mask.unsqueezed(-1)
        #expect(maxDiff(wt, rhs) < 2e-5)
        // All points visible reduces to Eq. 3.11 (1/P means).
        let full = ObjectCentric.perspectiveDictionary(s, points2D: uv).matmul(psi).reshaped([3, p, 2])
        #expect(maxDiff(ObjectCentric.perspectiveInput(uv, depth: tz), full) < 2e-5)
    }

    @Test func boundingBoxDepth() throws {
        let w = Tensor([0, 0, 4, 1, 1, 2, 100, 100], shape: [1, 4, 2])
        let mask = Tensor([[1, 1, 1, 0]])
        #expect(try ObjectCentric.boundingBoxDepth(w, mask: mask).scalars == [0.25])
        #expect(try ObjectCentric.boundingBoxDepth(w, mask: mask, useMaximumSide: false).scalars == [0.5])
        #expect(throws: TensorError.self) { try ObjectCentric.boundingBoxDepth(Tensor([1, 1, 1, 1], shape: [1, 2, 2])) }
    }
}
