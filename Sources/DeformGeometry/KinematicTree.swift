import Foundation
import DeformTensor

/// A skeleton: joints with parent indices and rest offsets, and forward kinematics.
///
/// Joints are ordered so that every parent comes before its children: joint 0 is the single root
/// (parent -1) and `parents[j]` is in `0..<j` for every other joint. `offsets[j]` is the rest
/// position of joint `j` relative to its parent (for the root: relative to the origin of the root
/// transform), in the parent's frame at rest. Every joint's rest orientation is the identity, so
/// local rotations are expressed in the rest axes of the model (the convention of SMPL and of
/// A-NeRF's kinematic chain).
///
/// Forward kinematics (``forwardKinematics(localRotations:rootRotation:rootTranslation:)``):
/// with per-joint local rotations `L_j` and a root transform `(R, t)`,
///
///     G_0 = R L_0,          p_0 = t + R o_0,
///     G_j = G_p L_j,        p_j = p_p + G_p o_j      (p = parents[j]),
///
/// so joint `j`'s rotation turns its children about its own position. With every `L_j = I` and
/// the identity root transform, `p_j` are the rest positions and every `G_j = I`.
public struct KinematicTree: Codable, Sendable, Equatable {
    /// Joint names, one per joint.
    public let names: [String]
    /// Parent index per joint; -1 for the root (joint 0 only).
    public let parents: [Int]
    /// Rest offsets from the parent, `3 · J` values (x, y, z per joint).
    public let offsets: [Float]

    /// - Throws: ``TensorError/invalidArgument(op:message:)`` when the counts disagree, the root
    ///   is not joint 0, a parent does not precede its child, a name repeats, or an offset is not
    ///   finite.
    public init(names: [String], parents: [Int], offsets: [Float]) throws {
        let op = "KinematicTree"
        guard !names.isEmpty else { throw TensorError.invalidArgument(op: op, message: "a skeleton needs at least one joint") }
        guard parents.count == names.count else {
            throw TensorError.invalidArgument(op: op, message: "\(names.count) names but \(parents.count) parent indices")
        }
        guard offsets.count == 3 * names.count else {
            throw TensorError.invalidArgument(op: op, message: "offsets must hold 3 values per joint (\(3 * names.count)), got \(offsets.count)")
        }
        guard parents[0] == -1 else {
            throw TensorError.invalidArgument(op: op, message: "joint 0 ('\(names[0])') must be the root (parent -1), got parent \(parents[0])")
        }
        for j in 1..<names.count where !(0..<j).contains(parents[j]) {
            throw TensorError.invalidArgument(op: op, message: "joint \(j) ('\(names[j])') has parent \(parents[j]); parents must precede their children (0..<\(j))")
        }
        if let bad = offsets.firstIndex(where: { !$0.isFinite }) {
            throw TensorError.invalidArgument(op: op, message: "offset of joint \(bad / 3) is not finite")
        }
        if Set(names).count != names.count {
            throw TensorError.invalidArgument(op: op, message: "joint names must be unique")
        }
        self.names = names
        self.parents = parents
        self.offsets = offsets
    }

    public var jointCount: Int { names.count }

    /// The index of the joint called `name`, if any.
    public func index(of name: String) -> Int? { names.firstIndex(of: name) }

    /// The children of joint `j`, in index order.
    public func children(of j: Int) -> [Int] { (0..<jointCount).filter { parents[$0] == j } }

    /// Whether `j` is `ancestor` or lies below it.
    public func isDescendant(_ j: Int, of ancestor: Int) -> Bool {
        var k = j
        while k >= 0 {
            if k == ancestor { return true }
            k = parents[k]
        }
        return false
    }

    /// Rest positions of the joints, `3 · J` values (the offsets accumulated along the chain).
    public var restPositions: [Float] {
        var p = [Float](repeating: 0, count: offsets.count)
        for j in 0..<jointCount {
            let q = parents[j]
            for k in 0..<3 { p[3 * j + k] = (q >= 0 ? p[3 * q + k] : 0) + offsets[3 * j + k] }
        }
        return p
    }

    /// World rotations `[J, 3, 3]` and positions `[J, 3]` of the joints (see the type's notes).
    ///
    /// Composed from engine ops, so it is differentiable with respect to all three inputs.
    /// Rotations are not checked for orthogonality: the formula is applied to whatever matrices
    /// come in (which keeps finite-difference checks simple).
    ///
    /// - Parameters:
    ///   - localRotations: `[J, 3, 3]`, one rotation per joint in its parent's frame.
    ///   - rootRotation: `[3, 3]`, default identity.
    ///   - rootTranslation: `[3]`, default zero.
    /// - Throws: ``TensorError/shapeMismatch(op:expected:found:)`` for wrong shapes,
    ///   ``TensorError/nonFinite(op:message:)`` for NaN or infinity.
    public func forwardKinematics(localRotations: Tensor, rootRotation: Tensor? = nil,
                                  rootTranslation: Tensor? = nil) throws -> (rotations: Tensor, positions: Tensor) {
        let op = "KinematicTree.forwardKinematics"
        let n = jointCount
        guard localRotations.shape == [n, 3, 3] else {
            throw TensorError.shapeMismatch(op: op, expected: "localRotations [\(n), 3, 3]", found: "\(localRotations.shape)")
        }
        let rootR = rootRotation ?? Tensor.eye(3), rootT = rootTranslation ?? Tensor.zeros([3])
        guard rootR.shape == [3, 3] else { throw TensorError.shapeMismatch(op: op, expected: "rootRotation [3, 3]", found: "\(rootR.shape)") }
        guard rootT.shape == [3] else { throw TensorError.shapeMismatch(op: op, expected: "rootTranslation [3]", found: "\(rootT.shape)") }
        for (name, t) in [("localRotations", localRotations), ("rootRotation", rootR), ("rootTranslation", rootT)] where !t.isFinite {
            throw TensorError.nonFinite(op: op, message: "\(name) contains NaN or infinity")
        }
        let local = localRotations.split(count: n, axis: 0).map { $0.reshaped([3, 3]) }
        var rotations: [Tensor] = [], positions: [Tensor] = []
        rotations.reserveCapacity(n); positions.reserveCapacity(n)
        for j in 0..<n {
            let offset = Tensor(Array(offsets[(3 * j)..<(3 * j + 3)]), shape: [3])
            let parentR = parents[j] < 0 ? rootR : rotations[parents[j]]
            let parentP = parents[j] < 0 ? rootT : positions[parents[j]]
            rotations.append(parentR.matmul(local[j]))
            positions.append(parentP + parentR.matmul(offset))
        }
        return (Tensor.stack(rotations, axis: 0), Tensor.stack(positions, axis: 0))
    }

    /// The skinning transforms of a posed skeleton: joint `j` maps a rest-pose point `x` to
    /// `G_j x + T_j` with `T_j = p_j - G_j r_j` (`r_j` the rest position), i.e. it rotates the
    /// point about the joint's rest position and carries it along with the joint.
    ///
    /// - Parameters: the outputs of ``forwardKinematics(localRotations:rootRotation:rootTranslation:)``.
    /// - Returns: rotations `[J, 3, 3]` (the same `G_j`) and translations `[J, 3]`; differentiable.
    public func skinningTransforms(rotations: Tensor, positions: Tensor) throws -> (rotations: Tensor, translations: Tensor) {
        let op = "KinematicTree.skinningTransforms"
        let n = jointCount
        guard rotations.shape == [n, 3, 3] else { throw TensorError.shapeMismatch(op: op, expected: "rotations [\(n), 3, 3]", found: "\(rotations.shape)") }
        guard positions.shape == [n, 3] else { throw TensorError.shapeMismatch(op: op, expected: "positions [\(n), 3]", found: "\(positions.shape)") }
        let rest = Tensor(restPositions, shape: [n, 3, 1])
        let rotatedRest = rotations.matmul(rest).reshaped([n, 3])
        return (rotations, positions - rotatedRest)
    }
}

/// Linear blend skinning: every vertex follows a weighted mix of its joints' rigid transforms,
/// `v' = Σ_j w_vj (G_j v + T_j)`.
public enum LinearBlendSkinning {
    /// Posed vertices `[V, 3]`.
    ///
    /// One fused op with a hand-written backward (gradients for all four inputs):
    /// with `g_v` the output cotangent, `v̄ = (Σ_j w_vj G_j)ᵀ g_v`, `w̄_vj = g_v · (G_j v + T_j)`,
    /// `Ḡ_j = Σ_v w_vj g_v vᵀ` and `T̄_j = Σ_v w_vj g_v`. Weights are used as given (no
    /// normalisation), so a vertex whose weights sum to 1 under identity transforms stays put.
    ///
    /// - Parameters:
    ///   - vertices: rest-pose vertices `[V, 3]`.
    ///   - weights: `[V, J]` skinning weights.
    ///   - rotations: `[J, 3, 3]`; translations: `[J, 3]` (``KinematicTree/skinningTransforms(rotations:positions:)``).
    /// - Throws: ``TensorError`` for inconsistent shapes or non-finite values.
    public static func skin(vertices: Tensor, weights: Tensor, rotations: Tensor, translations: Tensor) throws -> Tensor {
        let op = "LinearBlendSkinning.skin"
        guard vertices.rank == 2, vertices.shape[1] == 3 else {
            throw TensorError.shapeMismatch(op: op, expected: "vertices [V, 3]", found: "\(vertices.shape)")
        }
        let v = vertices.shape[0]
        guard rotations.rank == 3, rotations.shape[1] == 3, rotations.shape[2] == 3 else {
            throw TensorError.shapeMismatch(op: op, expected: "rotations [J, 3, 3]", found: "\(rotations.shape)")
        }
        let j = rotations.shape[0]
        guard translations.shape == [j, 3] else {
            throw TensorError.shapeMismatch(op: op, expected: "translations [\(j), 3]", found: "\(translations.shape)")
        }
        guard weights.shape == [v, j] else {
            throw TensorError.shapeMismatch(op: op, expected: "weights [\(v), \(j)]", found: "\(weights.shape)")
        }
        for (name, t) in [("vertices", vertices), ("weights", weights), ("rotations", rotations), ("translations", translations)] where !t.isFinite {
            throw TensorError.nonFinite(op: op, message: "\(name) contains NaN or infinity")
        }
        return customOp(op, inputs: [vertices, weights, rotations, translations], forward: { xs in
            [forward(xs[0], xs[1], xs[2], xs[3])]
        }, backward: { xs, _, g in
            backward(xs[0], xs[1], xs[2], xs[3], g[0])
        })[0]
    }

    static func forward(_ vertices: Tensor, _ weights: Tensor, _ rotations: Tensor, _ translations: Tensor) -> Tensor {
        let v = vertices.shape[0], j = rotations.shape[0]
        let out = Tensor(shape: [v, 3], repeating: 0)
        let px = vertices.dataPointer, pw = weights.dataPointer, pr = rotations.dataPointer, pt = translations.dataPointer
        let po = out.dataPointer
        Threads.parallelRanges(v, minChunk: 2048) { range in
            for i in range {
                let x = px[3 * i], y = px[3 * i + 1], z = px[3 * i + 2]
                var o0: Float = 0, o1: Float = 0, o2: Float = 0
                for k in 0..<j {
                    let w = pw[i * j + k]
                    // Most weights are zero: a vertex follows a few joints.
                    if w == 0 { continue }
                    let r = pr + 9 * k, t = pt + 3 * k
                    o0 += w * (r[0] * x + r[1] * y + r[2] * z + t[0])
                    o1 += w * (r[3] * x + r[4] * y + r[5] * z + t[1])
                    o2 += w * (r[6] * x + r[7] * y + r[8] * z + t[2])
                }
                po[3 * i] = o0; po[3 * i + 1] = o1; po[3 * i + 2] = o2
            }
        }
        return out
    }

    static func backward(_ vertices: Tensor, _ weights: Tensor, _ rotations: Tensor, _ translations: Tensor,
                         _ g: Tensor) -> [Tensor?] {
        let v = vertices.shape[0], j = rotations.shape[0]
        let gv = Tensor(shape: [v, 3], repeating: 0), gw = Tensor(shape: [v, j], repeating: 0)
        // Per-joint sums in Double, accumulated serially so the result does not depend on threads.
        var gr = [Double](repeating: 0, count: 9 * j), gt = [Double](repeating: 0, count: 3 * j)
        let px = vertices.dataPointer, pw = weights.dataPointer, pr = rotations.dataPointer, pt = translations.dataPointer
        let pg = g.dataPointer, pgv = gv.dataPointer, pgw = gw.dataPointer
        for i in 0..<v {
            let x = px[3 * i], y = px[3 * i + 1], z = px[3 * i + 2]
            let g0 = pg[3 * i], g1 = pg[3 * i + 1], g2 = pg[3 * i + 2]
            var a0: Float = 0, a1: Float = 0, a2: Float = 0
            for k in 0..<j {
                let r = pr + 9 * k, t = pt + 3 * k
                let y0 = r[0] * x + r[1] * y + r[2] * z + t[0]
                let y1 = r[3] * x + r[4] * y + r[5] * z + t[1]
                let y2 = r[6] * x + r[7] * y + r[8] * z + t[2]
                pgw[i * j + k] = g0 * y0 + g1 * y1 + g2 * y2
                let w = pw[i * j + k]
                if w == 0 { continue }
                let wg0 = w * g0, wg1 = w * g1, wg2 = w * g2
                a0 += r[0] * wg0 + r[3] * wg1 + r[6] * wg2
                a1 += r[1] * wg0 + r[4] * wg1 + r[7] * wg2
                a2 += r[2] * wg0 + r[5] * wg1 + r[8] * wg2
                let q = 9 * k
                gr[q] += Double(wg0 * x); gr[q + 1] += Double(wg0 * y); gr[q + 2] += Double(wg0 * z)
                gr[q + 3] += Double(wg1 * x); gr[q + 4] += Double(wg1 * y); gr[q + 5] += Double(wg1 * z)
                gr[q + 6] += Double(wg2 * x); gr[q + 7] += Double(wg2 * y); gr[q + 8] += Double(wg2 * z)
                gt[3 * k] += Double(wg0); gt[3 * k + 1] += Double(wg1); gt[3 * k + 2] += Double(wg2)
            }
            pgv[3 * i] = a0; pgv[3 * i + 1] = a1; pgv[3 * i + 2] = a2
        }
        return [gv, gw, Tensor(gr.map(Float.init), shape: [j, 3, 3]), Tensor(gt.map(Float.init), shape: [j, 3])]
    }
}
