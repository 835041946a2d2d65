import DeformGeometry
import DeformTensor
import Foundation

/// The procedural motions of the `character` family.
public enum CharacterMotionKind: String, CaseIterable, Codable, Sendable {
    case walk, wave, squat, turn, jump
    /// A time-varying blend of two of the motions above plus smooth random joint noise.
    case random
}

/// A pose of the humanoid: per-joint local rotations (axis-angle, rest axes) and the root
/// transform (a rotation about the vertical axis and a translation of the root joint's frame).
public struct CharacterPose: Sendable, Equatable {
    /// Axis-angle per joint, `3 · J` values.
    public var localAxisAngle: [Float]
    /// Rotation of the whole body about the vertical (y) axis, radians.
    public var yaw: Float
    /// Root translation (model frame, metres); the ground contact is already applied.
    public var translation: SIMD3<Float>

    /// Local rotation matrices, `9 · J` values row-major.
    public var localRotations: [Float] {
        (0..<(localAxisAngle.count / 3)).flatMap { j in
            rodrigues(SIMD3(localAxisAngle[3 * j], localAxisAngle[3 * j + 1], localAxisAngle[3 * j + 2]))
        }
    }

    /// The root rotation, row-major 3×3.
    public var rootRotation: [Float] { rodrigues(SIMD3(0, yaw, 0)) }
}

/// Rotation matrix (row-major) of an axis-angle vector.
func rodrigues(_ w: SIMD3<Float>) -> [Float] {
    let t = dot3(w, w).squareRoot()
    if t < 1e-12 { return [1, 0, 0, 0, 1, 0, 0, 0, 1] }
    let k = w / t, c = Foundation.cos(t), s = Foundation.sin(t), v = 1 - c
    return [c + k.x * k.x * v, k.x * k.y * v - k.z * s, k.x * k.z * v + k.y * s,
            k.y * k.x * v + k.z * s, c + k.y * k.y * v, k.y * k.z * v - k.x * s,
            k.z * k.x * v - k.y * s, k.z * k.y * v + k.x * s, c + k.z * k.z * v]
}

/// The random parameters of one motion clip (drawn per video; the pose at time t is a pure
/// function of them and t).
public struct CharacterMotionParameters: Codable, Sendable, Equatable {
    public var kind: CharacterMotionKind
    /// Speed multiplier of the motion's cycle.
    public var tempo: Float
    /// Amplitude multiplier of the joint angles.
    public var amplitude: Float
    /// Phase offset (seconds).
    public var phase: Float
    /// Facing direction at t = 0 (radians about y; 0 faces +z).
    public var heading: Float
    /// For `walk`: the stride length (metres per step pair) and the path length.
    public var stride: Float
    public var pathLength: Float
    /// For `random`: the two blended motions, the blend frequency and the joint-noise parameters
    /// (per joint and axis: amplitude, frequency in Hz, phase).
    public var blend: [CharacterMotionKind]
    public var blendFrequency: Float
    public var noise: [Float]

    /// Draws the parameters of `kind` (`random` draws its two components too).
    public init(kind: CharacterMotionKind, draw rng: inout SynthRandom) {
        self.kind = kind
        tempo = rng.uniform(0.85, 1.15)
        amplitude = rng.uniform(0.8, 1.15)
        phase = rng.uniform(0, 2)
        heading = rng.uniform(-0.9, 0.9)
        stride = rng.uniform(1.1, 1.5)
        pathLength = rng.uniform(0.9, 1.4)
        let basics: [CharacterMotionKind] = [.wave, .squat, .turn, .jump, .walk]
        let first = basics[rng.int(basics.count)]
        var second = basics[rng.int(basics.count - 1)]
        if second == first { second = basics[basics.count - 1] }
        blend = [first, second]
        blendFrequency = rng.uniform(0.08, 0.2)
        // Enough joints for every body kind.
        noise = (0..<(3 * CharacterMotion.maxJoints)).flatMap { _ in
            [rng.uniform(0.05, 0.22), rng.uniform(0.15, 0.8), rng.uniform(0, 2 * .pi)]
        }
    }
}

/// Procedural motions as per-joint local rotations over time.
///
/// Angles follow the rest axes of ``Humanoid``: flexing a hip or a shoulder forward is a negative
/// rotation about x, bending a knee a positive one, raising the left arm sideways a positive
/// rotation about z (the right arm: negative), turning left a positive rotation about y. After the
/// joint angles are set, the root is lowered or raised so that the lowest foot joint keeps its
/// rest height (feet stay on the ground), plus the flight height of a jump.
public enum CharacterMotion {
    /// The pose at time `t` (seconds) for a humanoid skeleton.
    public static func pose(_ m: CharacterMotionParameters, time t: Float, skeleton: KinematicTree) -> CharacterPose {
        var angles = [SIMD3<Float>](repeating: .zero, count: Humanoid.jointCount)
        var root = SIMD3<Float>.zero
        var yaw = m.heading
        var lift: Float = 0
        switch m.kind {
        case .random:
            let a = basic(m.blend[0], m, t), b = basic(m.blend[1], m, t)
            let alpha = 0.5 + 0.5 * Foundation.sin(2 * Float.pi * m.blendFrequency * t + m.phase)
            for j in 0..<angles.count { angles[j] = a.angles[j] * (1 - alpha) + b.angles[j] * alpha }
            root = a.root * (1 - alpha) + b.root * alpha
            yaw += a.yaw * (1 - alpha) + b.yaw * alpha
            lift = a.lift * (1 - alpha) + b.lift * alpha
            for j in 0..<angles.count {
                for k in 0..<3 {
                    let q = 3 * (3 * j + k)
                    angles[j][k] += m.noise[q] * Foundation.sin(2 * Float.pi * m.noise[q + 1] * t + m.noise[q + 2])
                }
            }
            // Noise on the root joint would tilt the whole body; keep it small there.
            angles[Humanoid.pelvis] *= 0.3
        default:
            let b = basic(m.kind, m, t)
            angles = b.angles
            root = b.root
            yaw += b.yaw
            lift = b.lift
        }
        return grounded(angles: angles, root: root, yaw: yaw, lift: lift,
                        feet: [Humanoid.lAnkle, Humanoid.rAnkle, Humanoid.lToe, Humanoid.rToe], skeleton: skeleton)
    }

    /// The most joints a body kind has (sizes the random motion's noise table).
    static let maxJoints = 32

    /// The pose with the root raised or lowered so that the lowest of the `feet` joints is at its
    /// rest height, plus `lift` (the flight of a jump).
    static func grounded(angles: [SIMD3<Float>], root: SIMD3<Float>, yaw: Float, lift: Float, feet: [Int],
                         skeleton: KinematicTree) -> CharacterPose {
        var aa = [Float](repeating: 0, count: 3 * angles.count)
        for j in 0..<angles.count { aa[3 * j] = angles[j].x; aa[3 * j + 1] = angles[j].y; aa[3 * j + 2] = angles[j].z }
        var pose = CharacterPose(localAxisAngle: aa, yaw: yaw, translation: root)
        let (_, positions) = GradMode.withoutGrad {
            try! skeleton.forwardKinematics(localRotations: Tensor(pose.localRotations, shape: [angles.count, 3, 3]),
                                            rootRotation: Tensor(pose.rootRotation, shape: [3, 3]),
                                            rootTranslation: Tensor([root.x, 0, root.z]))
        }
        let p = positions.scalars, rest = skeleton.restPositions
        var drop = Float.infinity
        for j in feet { drop = Swift.min(drop, p[3 * j + 1] - rest[3 * j + 1]) }
        pose.translation = SIMD3(root.x, -drop + lift, root.z)
        return pose
    }

    struct Basic {
        var angles: [SIMD3<Float>]
        var root = SIMD3<Float>.zero
        var yaw: Float = 0
        var lift: Float = 0
        init(count: Int = Humanoid.jointCount) { angles = [SIMD3<Float>](repeating: .zero, count: count) }
    }

    @inline(__always) static func ease(_ x: Float) -> Float { HeadModel.smoothstep(0, 1, x) }

    /// The relaxed arms every motion starts from: a little elbow bend.
    static func relaxed(_ b: inout Basic, amplitude a: Float) {
        b.angles[Humanoid.lElbow].x = -0.15 * a
        b.angles[Humanoid.rElbow].x = -0.15 * a
    }

    static func basic(_ kind: CharacterMotionKind, _ m: CharacterMotionParameters, _ t0: Float) -> Basic {
        var b = Basic()
        let a = m.amplitude, t = t0 * m.tempo + m.phase
        relaxed(&b, amplitude: a)
        switch kind {
        case .walk, .random:
            // Walking along the facing direction rotated by 90° (across the view at heading 0),
            // back and forth over the path; the gait phase follows the distance walked so the
            // feet roughly stay planted.
            let speed = 0.55 * m.stride                        // metres per second at one step pair per second
            let period = 2 * m.pathLength / speed
            let u = (t0 * m.tempo).truncatingRemainder(dividingBy: period) / period
            let forward = u < 0.5
            let s = forward ? 2 * u : 2 - 2 * u                 // 0 → 1 → 0 along the path
            let x = (s - 0.5) * m.pathLength
            b.yaw = forward ? .pi / 2 : -.pi / 2
            b.root = SIMD3(x, 0, 0)
            let phi = 2 * Float.pi * t0 * m.tempo * speed / m.stride + m.phase
            let hip = 0.42 * a
            b.angles[Humanoid.lHip].x = -hip * Foundation.sin(phi)
            b.angles[Humanoid.rHip].x = hip * Foundation.sin(phi)
            let kl = Swift.max(0, Foundation.cos(phi + 0.3)), kr = Swift.max(0, Foundation.cos(phi + 0.3 + .pi))
            b.angles[Humanoid.lKnee].x = 0.08 + 0.75 * a * kl * kl
            b.angles[Humanoid.rKnee].x = 0.08 + 0.75 * a * kr * kr
            b.angles[Humanoid.lAnkle].x = 0.15 * a * Foundation.sin(phi - 0.5)
            b.angles[Humanoid.rAnkle].x = -0.15 * a * Foundation.sin(phi - 0.5)
            b.angles[Humanoid.lShoulder].x = 0.35 * a * Foundation.sin(phi)
            b.angles[Humanoid.rShoulder].x = -0.35 * a * Foundation.sin(phi)
            b.angles[Humanoid.lElbow].x = -0.25 - 0.2 * a * Swift.max(0, -Foundation.sin(phi))
            b.angles[Humanoid.rElbow].x = -0.25 - 0.2 * a * Swift.max(0, Foundation.sin(phi))
            b.angles[Humanoid.spine].y = 0.08 * a * Foundation.sin(phi)
            b.angles[Humanoid.chest].y = -0.12 * a * Foundation.sin(phi)
            b.angles[Humanoid.pelvis].z = 0.04 * a * Foundation.sin(phi)
            b.angles[Humanoid.head].y = -0.04 * a * Foundation.sin(phi)
        case .wave:
            // Raise the right arm, wave the forearm, lower it, rest; a 6 s cycle.
            let c = t.truncatingRemainder(dividingBy: 6) + (t < 0 ? 6 : 0)
            let up = ease(c / 0.8) * (1 - ease((c - 4.5) / 0.8))
            b.angles[Humanoid.rShoulder].z = -2.3 * up * a
            b.angles[Humanoid.rShoulder].x = -0.25 * up
            let w = Foundation.sin(2 * Float.pi * 1.6 * t)
            b.angles[Humanoid.rElbow] = SIMD3(-0.2 * up, 0, up * (0.35 + 0.45 * a * w))
            b.angles[Humanoid.rWrist].z = 0.2 * up * w
            b.angles[Humanoid.chest].z = 0.06 * up * a
            b.angles[Humanoid.head] = SIMD3(0.05 * Foundation.sin(0.7 * t), -0.25 * up, 0.08 * up)
            b.angles[Humanoid.lShoulder].x = 0.08 * Foundation.sin(0.9 * t)
            b.angles[Humanoid.spine].y = 0.05 * Foundation.sin(0.5 * t)
        case .squat:
            let d = 0.5 - 0.5 * Foundation.cos(2 * Float.pi * t / 2.4)
            let depth = d * Swift.min(a, 1.05)
            for (hip, knee, ankle) in [(Humanoid.lHip, Humanoid.lKnee, Humanoid.lAnkle), (Humanoid.rHip, Humanoid.rKnee, Humanoid.rAnkle)] {
                b.angles[hip].x = -1.5 * depth
                b.angles[knee].x = 2.0 * depth
                b.angles[ankle].x = -0.45 * depth
            }
            b.angles[Humanoid.lHip].z = 0.12 * depth
            b.angles[Humanoid.rHip].z = -0.12 * depth
            b.angles[Humanoid.spine].x = 0.3 * depth
            b.angles[Humanoid.chest].x = 0.15 * depth
            b.angles[Humanoid.head].x = -0.35 * depth
            b.angles[Humanoid.lShoulder].x = -1.3 * depth
            b.angles[Humanoid.rShoulder].x = -1.3 * depth
            // The hips move back as the knees go forward.
            b.root = SIMD3(0, 0, -0.12 * depth)
        case .turn:
            // Turning on the spot, a full turn every 6 s, with small steps.
            b.yaw = 2 * Float.pi * t / 6
            let step = Foundation.sin(2 * Float.pi * 1.5 * t)
            b.angles[Humanoid.lHip].x = -0.22 * a * Swift.max(0, step)
            b.angles[Humanoid.rHip].x = -0.22 * a * Swift.max(0, -step)
            b.angles[Humanoid.lKnee].x = 0.45 * a * Swift.max(0, step)
            b.angles[Humanoid.rKnee].x = 0.45 * a * Swift.max(0, -step)
            b.angles[Humanoid.lShoulder].z = 0.25 * a
            b.angles[Humanoid.rShoulder].z = -0.25 * a
            b.angles[Humanoid.head].y = 0.3 * Foundation.sin(2 * Float.pi * t / 6)
            b.angles[Humanoid.chest].y = 0.1 * step
        case .jump:
            // Crouch, take off, fly, land, recover: a 1.6 s cycle.
            let c = t.truncatingRemainder(dividingBy: 1.6) + (t < 0 ? 1.6 : 0)
            var crouch: Float = 0, flight: Float = 0, arms: Float = 0
            if c < 0.5 { crouch = ease(c / 0.5); arms = -0.6 * crouch }
            else if c < 0.62 { crouch = 1 - ease((c - 0.5) / 0.12); arms = -0.6 + 3.0 * ease((c - 0.5) / 0.12) }
            else if c < 1.02 { let s = (c - 0.62) / 0.4; flight = 4 * s * (1 - s); arms = 2.4 - 2.4 * ease(s) }
            else if c < 1.3 { crouch = 0.6 * Foundation.sin(Float.pi * (c - 1.02) / 0.28 * 0.5) }
            else { crouch = 0.6 * (1 - ease((c - 1.3) / 0.3)) }
            let depth = crouch * Swift.min(a, 1.05)
            for (hip, knee, ankle) in [(Humanoid.lHip, Humanoid.lKnee, Humanoid.lAnkle), (Humanoid.rHip, Humanoid.rKnee, Humanoid.rAnkle)] {
                b.angles[hip].x = -1.0 * depth
                b.angles[knee].x = 1.5 * depth
                b.angles[ankle].x = -0.4 * depth + 0.4 * flight
            }
            b.angles[Humanoid.spine].x = 0.35 * depth
            b.angles[Humanoid.lShoulder].x = -arms * 0.9
            b.angles[Humanoid.rShoulder].x = -arms * 0.9
            b.lift = 0.35 * a * flight
        }
        return b
    }
}
