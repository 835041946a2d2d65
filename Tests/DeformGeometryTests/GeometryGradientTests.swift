import Foundation
import Testing
@testable import DeformGeometry
@testable import DeformTensor

// Finite-difference checks of every differentiable function in DeformGeometry. Inputs are kept
// away from kinks (branch switches of Shepperd's method, the log's band near π, rank-deficient
// Procrustes problems) so that central differences with the default step are valid.

@Suite struct GeometryGradientTests {
    @Test func expAndLog() {
        var rng = RandomGenerator(seed: 1)
        let w = rng.normal([4, 3])
        let r = GradientCheck.check([w]) { SO3.exp($0[0]) }
        #expect(r.passed, "exp: \(r)")
        // Near and at the identity (the series branch), with a small step.
        let small = Tensor([[0, 0, 0], [1e-3, -2e-3, 5e-4]])
        let rs = GradientCheck.check([small], step: 1e-3) { SO3.exp($0[0]) }
        #expect(rs.passed, "exp near 0: \(rs)")
        // log on rotations perturbed off SO(3) (the formula is defined for any matrix).
        let rot = SO3.exp(Tensor([[0.3, -1.0, 0.5], [1.2, 0.8, -0.9], [0.01, 0.02, -0.01]])) + rng.normal([3, 3, 3], std: 0.01)
        let rl = GradientCheck.check([rot], step: 1e-3) { SO3.log($0[0]) }
        #expect(rl.passed, "log: \(rl)")
        let rid = GradientCheck.check([Tensor.eye(3) + rng.normal([3, 3], std: 1e-3)], step: 1e-4) { SO3.log($0[0]) }
        #expect(rid.passed, "log near identity: \(rid)")
    }

    @Test func logAlongSO3NearAHalfTurn() {
        // Within 0.01 rad of π the log takes its axis from the symmetric part; along SO(3) its
        // gradient must still be exact: log(exp(ω)) = ω has the identity Jacobian.
        let axis: [Float] = [0.48, -0.6, 0.64]
        for angle: Float in [Float.pi - 0.05, Float.pi - 0.004] {
            let w = Tensor(axis.map { $0 * angle }, shape: [1, 3])
            let r = GradientCheck.check([w], step: 1e-3) { SO3.log(SO3.exp($0[0])) }
            #expect(r.passed, "angle \(angle): \(r)")
        }
    }

    @Test func quaternions() {
        var rng = RandomGenerator(seed: 2)
        let q = rng.normal([5, 4])
        let r = GradientCheck.check([q]) { SO3.fromQuaternion($0[0]) }
        #expect(r.passed, "fromQuaternion: \(r)")
        // One matrix per Shepperd branch, each well inside its branch.
        let mats = SO3.exp(Tensor([[0.2, 0.3, -0.1], [2.8, 0.2, 0.1], [0.1, 2.9, -0.2], [-0.2, 0.1, 2.7]]))
        let rq = GradientCheck.check([mats], step: 1e-3) { SO3.toQuaternion($0[0]) }
        #expect(rq.passed, "toQuaternion: \(rq)")
        let rn = GradientCheck.check([q]) { SO3.normalizeQuaternion($0[0]) }
        #expect(rn.passed, "normalizeQuaternion: \(rn)")
        let rm = GradientCheck.check([q, rng.normal([5, 4])]) { SO3.multiplyQuaternions($0[0], $0[1]) }
        #expect(rm.passed, "multiplyQuaternions: \(rm)")
    }

    @Test func sixDHatCross() {
        var rng = RandomGenerator(seed: 3)
        let r6 = GradientCheck.check([rng.normal([4, 6])]) { SO3.from6D($0[0]) }
        #expect(r6.passed, "from6D: \(r6)")
        let rh = GradientCheck.check([rng.normal([3, 3])]) { SO3.hat($0[0]) }
        #expect(rh.passed, "hat: \(rh)")
        let rc = GradientCheck.check([rng.normal([4, 3]), rng.normal([3])]) { SO3.cross($0[0], $0[1]) }
        #expect(rc.passed, "cross: \(rc)")
        let rr = GradientCheck.check([SO3.random([2], using: &rng)]) { SO3.to6D($0[0]) }
        #expect(rr.passed, "to6D: \(rr)")
    }

    @Test func completion() {
        var rng = RandomGenerator(seed: 4)
        let rows = SO3.random([3], using: &rng).narrow(axis: -2, start: 0, length: 2) * 1.5 + rng.normal([3, 2, 3], std: 0.2)
        let r = GradientCheck.check([rows]) { try! SO3.completeFromRows($0[0]) }
        #expect(r.passed, "completeFromRows: \(r)")
        let cols = rows.transposed()
        let rc = GradientCheck.check([cols]) { try! SO3.completeFromColumns($0[0]) }
        #expect(rc.passed, "completeFromColumns: \(rc)")
    }

    @Test func cameras() {
        var rng = RandomGenerator(seed: 5)
        let pts = rng.normal([2, 4, 3]) + Tensor([0, 0, 4])
        let rot = SO3.random([2], using: &rng)
        let rt = GradientCheck.check([pts, rot, rng.normal([2, 3])]) { Camera.transform($0[0], rotation: $0[1], translation: $0[2]) }
        #expect(rt.passed, "transform: \(rt)")
        let rw = GradientCheck.check([pts, Tensor([0.7, 1.3]), rng.normal([2, 2])]) {
            Camera.weakPerspective($0[0], scale: $0[1], translation: $0[2])
        }
        #expect(rw.passed, "weakPerspective: \(rw)")
        let k = Tensor([[2, 0.1, 0.5], [0, 2.5, -0.3], [0, 0, 1]])
        let rp = GradientCheck.check([pts, k], wrt: [0, 1]) { Camera.pinhole($0[0], intrinsics: $0[1]) }
        #expect(rp.passed, "pinhole: \(rp)")
        let rn = GradientCheck.check([rng.normal([2, 4, 2]), k]) { Camera.normalizedCoordinates($0[0], intrinsics: $0[1]) }
        #expect(rn.passed, "normalizedCoordinates: \(rn)")
    }

    @Test func objectCentricNormalisations() {
        var rng = RandomGenerator(seed: 6)
        let w = rng.normal([2, 6, 2]), mask = Tensor([[1, 1, 0, 1, 0, 1], [1, 1, 1, 1, 1, 0]])
        let rc = GradientCheck.check([w]) { ObjectCentric.centered($0[0], mask: mask) }
        #expect(rc.passed, "centered: \(rc)")
        let d = rng.normal([6, 5])
        let rd = GradientCheck.check([d]) { ObjectCentric.normalizedRows($0[0], mask: mask) }
        #expect(rd.passed, "normalizedRows: \(rd)")
        let rp = GradientCheck.check([w, Tensor([2, 3])]) { ObjectCentric.perspectiveInput($0[0], mask: mask, depth: $0[1]) }
        #expect(rp.passed, "perspectiveInput: \(rp)")
        let rpd = GradientCheck.check([d, w]) { ObjectCentric.perspectiveDictionary($0[0], points2D: $0[1], mask: mask) }
        #expect(rpd.passed, "perspectiveDictionary: \(rpd)")
    }

    @Test func procrustes() {
        var rng = RandomGenerator(seed: 7)
        let x = rng.normal([2, 6, 3]), y = rng.normal([2, 6, 3])
        let mask = Tensor([[1, 1, 1, 1, 0, 1], [1, 1, 1, 1, 1, 1]])
        let rr = GradientCheck.check([x, y]) { try! Procrustes.rotation(from: $0[0], to: $0[1], mask: mask) }
        #expect(rr.passed, "rotation: \(rr)")
        let ra = GradientCheck.check([x, y]) { xs in
            let t = try! Procrustes.align(from: xs[0], to: xs[1], mask: mask)
            return flatConcat([t.rotation, t.translation, t.scale])
        }
        #expect(ra.passed, "align: \(ra)")
    }

    @Test func paulSolver() {
        var rng = RandomGenerator(seed: 8)
        let a = centredPoints([2, 7, 3], using: &rng), b = a + rng.normal([2, 7, 3], std: 0.3)
        let r = SO3.random([2], using: &rng)
        let w = Camera.orthographic(Camera.transform(a, rotation: r)) + rng.normal([2, 7, 2], std: 0.1)
        let full = GradientCheck.check([w, a, b]) { xs in
            let s = try! PAULSolver.solve(points2D: xs[0], shapes: [xs[1], xs[2]])
            return flatConcat([s.rotation, s.depth])
        }
        #expect(full.passed, "PAUL solver: \(full)")
        let mask = Tensor([[1, 1, 1, 0, 1, 1, 0], [1, 0, 1, 1, 1, 1, 1]])
        let masked = GradientCheck.check([w, a, b]) { xs in
            try! PAULSolver.solve(points2D: xs[0], shapes: [xs[1], xs[2]], mask: mask).cameraShape
        }
        #expect(masked.passed, "PAUL solver with mask: \(masked)")
        // The least-squares camera of Eq. 2.9 on its own (its ridge included), with and without a mask.
        for m in [nil, mask] {
            let rc = GradientCheck.check([w, a, b]) { xs in
                try! PAULSolver.solve(points2D: xs[0], shapes: [xs[1], xs[2]], mask: m, ridge: 0.05).leastSquaresCamera
            }
            #expect(rc.passed, "least-squares camera (mask: \(m != nil)): \(rc)")
        }
        // Depth and camera shape together (both outputs of the fused camera-frame kernel).
        let rd = GradientCheck.check([w, a, b]) { xs in
            let s = try! PAULSolver.solve(points2D: xs[0], shapes: [xs[1], xs[2]], mask: mask)
            return flatConcat([s.cameraShape, s.depth * 2])
        }
        #expect(rd.passed, "camera shape and depth: \(rd)")
    }
}
