import Foundation
import Testing
@testable import DeformGeometry
@testable import DeformTensor

/// A small tree: root → a → b, and root → c (a branch).
private func smallTree() throws -> KinematicTree {
    try KinematicTree(names: ["root", "a", "b", "c"], parents: [-1, 0, 1, 0],
                      offsets: [0.1, 0.2, 0.3, 0, 1, 0, 0, 0.5, 0, 1, 0, 0])
}

/// Rotation about z by `angle` (radians), row-major.
private func rotZ(_ angle: Float) -> [Float] {
    let c = Foundation.cos(angle), s = Foundation.sin(angle)
    return [c, -s, 0, s, c, 0, 0, 0, 1]
}

private func identities(_ n: Int) -> [Float] { (0..<n).flatMap { _ in [Float(1), 0, 0, 0, 1, 0, 0, 0, 1] } }

@Suite struct KinematicTreeTests {
    @Test func restPoseGivesRestPositionsAndIdentityRotations() throws {
        let tree = try smallTree()
        #expect(tree.restPositions == [0.1, 0.2, 0.3, 0.1, 1.2, 0.3, 0.1, 1.7, 0.3, 1.1, 0.2, 0.3])
        let (r, p) = try tree.forwardKinematics(localRotations: Tensor(identities(4), shape: [4, 3, 3]))
        #expect(p.scalars == tree.restPositions)
        #expect(r.scalars == identities(4))
        #expect(tree.children(of: 0) == [1, 3])
        #expect(tree.isDescendant(2, of: 1) && !tree.isDescendant(3, of: 1) && tree.isDescendant(3, of: 0))
    }

    @Test func rotatingAJointTurnsItsSubtreeAboutIt() throws {
        let tree = try smallTree()
        var local = identities(4)
        // Joint a turns by 90° about z: b, 0.5 above a at rest, ends 0.5 to the -x side of a.
        local.replaceSubrange(9..<18, with: rotZ(.pi / 2))
        let (r, p) = try tree.forwardKinematics(localRotations: Tensor(local, shape: [4, 3, 3]))
        let pos = p.scalars
        #expect(Array(pos[0..<6]) == Array(tree.restPositions[0..<6]))   // root and a stay
        #expect(abs(pos[6] - (0.1 - 0.5)) < 1e-6 && abs(pos[7] - 1.2) < 1e-6 && abs(pos[8] - 0.3) < 1e-6)
        #expect(Array(pos[9..<12]) == Array(tree.restPositions[9..<12]))  // the other branch stays
        // b inherits a's rotation.
        #expect(zip(Array(r.scalars[18..<27]), rotZ(.pi / 2)).allSatisfy { abs($0 - $1) < 1e-6 })
        // The root transform moves everything rigidly.
        let rootR = Tensor(rotZ(0.3), shape: [3, 3]), rootT = Tensor([1, 2, 3])
        let (_, moved) = try tree.forwardKinematics(localRotations: Tensor(local, shape: [4, 3, 3]), rootRotation: rootR, rootTranslation: rootT)
        let expected = p.matmul(rootR.transposed()) + rootT
        #expect(maxDiff(moved, expected) < 1e-5)
    }

    @Test func forwardKinematicsGradientsMatchFiniteDifferences() throws {
        let tree = try smallTree()
        var rng = RandomGenerator(seed: 3)
        let local = SO3.random([4], using: &rng), rootR = SO3.random([], using: &rng), rootT = rng.normal([3])
        let result = GradientCheck.check([local, rootR, rootT]) { xs in
            let (r, p) = try! tree.forwardKinematics(localRotations: xs[0], rootRotation: xs[1], rootTranslation: xs[2])
            return Tensor.concat([r.reshaped([-1]), p.reshaped([-1])])
        }
        #expect(result.passed, "\(result)")
    }

    @Test func restPoseSkinningGivesTheRestMeshAndARotatedJointMovesOnlyItsVertices() throws {
        let tree = try smallTree()
        var rng = RandomGenerator(seed: 5)
        let v = 40
        let vertices = rng.normal([v, 3])
        // Vertices 0..<10 follow the root only, 10..<20 split between a and b, 20..<30 follow c,
        // 30..<40 blend root and a.
        var w = [Float](repeating: 0, count: v * 4)
        for i in 0..<v {
            switch i {
            case 0..<10: w[i * 4] = 1
            case 10..<20: w[i * 4 + 1] = 0.3; w[i * 4 + 2] = 0.7
            case 20..<30: w[i * 4 + 3] = 1
            default: w[i * 4] = 0.6; w[i * 4 + 1] = 0.4
            }
        }
        let weights = Tensor(w, shape: [v, 4])
        let (r0, p0) = try tree.forwardKinematics(localRotations: Tensor(identities(4), shape: [4, 3, 3]))
        let (g0, t0) = try tree.skinningTransforms(rotations: r0, positions: p0)
        let rest = try LinearBlendSkinning.skin(vertices: vertices, weights: weights, rotations: g0, translations: t0)
        #expect(maxDiff(rest, vertices) < 1e-6)

        var local = identities(4)
        local.replaceSubrange(18..<27, with: rotZ(0.8))   // joint b
        let (r1, p1) = try tree.forwardKinematics(localRotations: Tensor(local, shape: [4, 3, 3]))
        let (g1, t1) = try tree.skinningTransforms(rotations: r1, positions: p1)
        let posed = try LinearBlendSkinning.skin(vertices: vertices, weights: weights, rotations: g1, translations: t1).scalars
        let x = vertices.scalars, restB = Array(tree.restPositions[6..<9])
        for i in 0..<v {
            let moved = (0..<3).map { abs(posed[3 * i + $0] - x[3 * i + $0]) }.max()!
            if (10..<20).contains(i) {
                #expect(moved > 1e-3, "vertex \(i) skinned to b should move")
                // 0.7 of the rotation about b's rest position plus 0.3 of staying put.
                let d = (0..<3).map { x[3 * i + $0] - restB[$0] }
                let rz = rotZ(0.8)
                for k in 0..<3 {
                    let turned = restB[k] + rz[3 * k] * d[0] + rz[3 * k + 1] * d[1] + rz[3 * k + 2] * d[2]
                    #expect(abs(posed[3 * i + k] - (0.7 * turned + 0.3 * x[3 * i + k])) < 1e-5)
                }
            } else {
                #expect(moved < 1e-6, "vertex \(i) not skinned to b moved by \(moved)")
            }
        }
    }

    @Test func skinningGradientsMatchFiniteDifferences() throws {
        var rng = RandomGenerator(seed: 9)
        let vertices = rng.normal([6, 3]), weights = rng.uniform([6, 3]), rotations = SO3.random([3], using: &rng)
        let translations = rng.normal([3, 3])
        let result = GradientCheck.check([vertices, weights, rotations, translations]) { xs in
            try! LinearBlendSkinning.skin(vertices: xs[0], weights: xs[1], rotations: xs[2], translations: xs[3])
        }
        #expect(result.passed, "\(result)")
        // The composed pipeline: local rotations → FK → skinning transforms → LBS.
        let tree = try smallTree()
        let local = SO3.random([4], using: &rng), w = rng.uniform([6, 4])
        let chain = GradientCheck.check([local, vertices]) { xs in
            let (r, p) = try! tree.forwardKinematics(localRotations: xs[0])
            let (g, t) = try! tree.skinningTransforms(rotations: r, positions: p)
            return try! LinearBlendSkinning.skin(vertices: xs[1], weights: w, rotations: g, translations: t)
        }
        #expect(chain.passed, "\(chain)")
    }

    @Test func badInputIsRefusedWithAClearMessage() throws {
        #expect(throws: TensorError.self) { try KinematicTree(names: ["a", "b"], parents: [-1, 1], offsets: [Float](repeating: 0, count: 6)) }
        #expect(throws: TensorError.self) { try KinematicTree(names: ["a", "b"], parents: [0, -1], offsets: [Float](repeating: 0, count: 6)) }
        #expect(throws: TensorError.self) { try KinematicTree(names: ["a", "b"], parents: [-1, 0], offsets: [0, 0, 0]) }
        #expect(throws: TensorError.self) { try KinematicTree(names: ["a", "a"], parents: [-1, 0], offsets: [Float](repeating: 0, count: 6)) }
        #expect(throws: TensorError.self) { try KinematicTree(names: [], parents: [], offsets: []) }
        do {
            _ = try KinematicTree(names: ["a", "b"], parents: [-1, 1], offsets: [Float](repeating: 0, count: 6))
        } catch {
            #expect("\(error)".contains("joint 1 ('b') has parent 1"))
        }
        let tree = try smallTree()
        #expect(throws: TensorError.self) { try tree.forwardKinematics(localRotations: Tensor.zeros([3, 3, 3])) }
        #expect(throws: TensorError.self) {
            try tree.forwardKinematics(localRotations: Tensor(identities(4), shape: [4, 3, 3]), rootTranslation: Tensor([.nan, 0, 0]))
        }
        #expect(throws: TensorError.self) {
            try LinearBlendSkinning.skin(vertices: Tensor.zeros([5, 3]), weights: Tensor.zeros([5, 2]),
                                         rotations: Tensor.zeros([3, 3, 3]), translations: Tensor.zeros([3, 3]))
        }
        #expect(throws: TensorError.self) {
            try LinearBlendSkinning.skin(vertices: Tensor.zeros([5, 2]), weights: Tensor.zeros([5, 3]),
                                         rotations: Tensor.zeros([3, 3, 3]), translations: Tensor.zeros([3, 3]))
        }
    }
}
