import DeformGeometry
import DeformTensor
import Foundation

/// A procedural four-legged animal (dog-like): a 24-joint skeleton with a spine, neck, head, a
/// three-joint tail and four three-segment legs, and a capsule mesh with smooth skinning weights.
///
/// Model frame as for ``Humanoid``: metres, y up, ground y = 0, the animal faces +z at rest with
/// its left side towards +x, legs straight down.
public enum Quadruped {
    public static let jointNames: [String] = [
        "pelvis", "spine", "chest", "neck", "head",
        "tail_1", "tail_2", "tail_3",
        "front_left_shoulder", "front_left_elbow", "front_left_wrist", "front_left_paw",
        "front_right_shoulder", "front_right_elbow", "front_right_wrist", "front_right_paw",
        "hind_left_hip", "hind_left_knee", "hind_left_hock", "hind_left_paw",
        "hind_right_hip", "hind_right_knee", "hind_right_hock", "hind_right_paw",
    ]
    public static let parents: [Int] = [-1, 0, 1, 2, 3, 0, 5, 6, 2, 8, 9, 10, 2, 12, 13, 14, 0, 16, 17, 18, 0, 20, 21, 22]
    public static var jointCount: Int { jointNames.count }

    static let pelvis = 0, spine = 1, chest = 2, neck = 3, head = 4, tail1 = 5, tail2 = 6, tail3 = 7
    /// First joint of each leg (front left, front right, hind left, hind right); a leg is 4 joints.
    static let legs = [8, 12, 16, 20]
    static var paws: [Int] { legs.map { $0 + 3 } }

    /// Body parts, one per capsule.
    public enum Part: Int, CaseIterable, Sendable { case body, neck, head, tail, upperLeg, lowerLeg, paw }

    static func part(of j: Int) -> Part {
        switch j {
        case pelvis, spine, chest: return .body
        case neck: return .neck
        case head: return .head
        case tail1, tail2, tail3: return .tail
        default:
            switch (j - 8) % 4 {
            case 0: return .upperLeg
            case 1, 2: return .lowerLeg
            default: return .paw
            }
        }
    }
}

/// One sampled animal: proportions, thickness and coat.
public struct QuadrupedIdentity: Codable, Sendable, Equatable {
    /// Overall scale (1: about 0.6 m at the shoulder).
    public var size: Float
    public var bodyLength: Float
    public var legLength: Float
    public var neckLength: Float
    public var headSize: Float
    public var tailLength: Float
    public var thickness: Float
    /// Coat colours (linear RGB): base, markings, belly.
    public var coat: SIMD3<Float>
    public var markings: SIMD3<Float>
    public var belly: SIMD3<Float>
    /// Marking pattern: 0 spots, 1 stripes, 2 patches, 3 saddle.
    public var pattern: Int
    public var patternFrequency: Float
    public var noiseSeed: UInt32

    public init(draw rng: inout SynthRandom) {
        func around(_ spread: Float) -> Float { 1 + spread * Swift.min(Swift.max(rng.normal(), -2.5), 2.5) }
        size = around(0.1)
        bodyLength = around(0.08)
        legLength = around(0.08)
        neckLength = around(0.1)
        headSize = around(0.07)
        tailLength = around(0.2)
        thickness = around(0.1)
        let palette: [SIMD3<Float>] = [[0.55, 0.38, 0.2], [0.15, 0.1, 0.07], [0.85, 0.8, 0.7], [0.7, 0.45, 0.2], [0.45, 0.45, 0.45], [0.9, 0.88, 0.84]]
        coat = palette[rng.int(palette.count)] * rng.uniform(0.85, 1.1)
        markings = palette[rng.int(palette.count)] * rng.uniform(0.6, 0.9)
        belly = HeadModel.mixColor(coat, SIMD3(0.92, 0.88, 0.8), rng.uniform(0.3, 0.8))
        pattern = rng.int(4)
        patternFrequency = rng.uniform(5, 11)
        noiseSeed = UInt32(truncatingIfNeeded: rng.int(1 << 30))
    }

    /// Radius of the paws: the paw joints sit this high above the ground at rest.
    var pawRadius: Float { 0.035 * size * thickness }

    var restOffsets: [SIMD3<Float>] {
        let s = size, l = 0.8 * legLength * s, b = bodyLength * s
        let front: [SIMD3<Float>] = [[0, -0.2 * l, -0.02 * s], [0, -0.2 * l, 0.01 * s], [0, -0.06 * l, 0.04 * s]]
        let hind: [SIMD3<Float>] = [[0, -0.2 * l, 0.06 * s], [0, -0.18 * l, -0.08 * s], [0, -0.12 * l, 0.02 * s]]
        let frontDrop = -0.05 * s + front.map(\.y).reduce(0, +), hindDrop = -0.03 * s + hind.map(\.y).reduce(0, +)
        let pelvisY = pawRadius - hindDrop
        let spineOffset = SIMD3<Float>(0, 0.02 * s, 0.3 * b)
        let chestY = pawRadius - frontDrop
        var o = [SIMD3<Float>](repeating: .zero, count: Quadruped.jointCount)
        o[Quadruped.pelvis] = [0, pelvisY, -0.3 * b]
        o[Quadruped.spine] = spineOffset
        o[Quadruped.chest] = [0, chestY - pelvisY - spineOffset.y, 0.3 * b]
        o[Quadruped.neck] = [0, 0.06 * s, 0.12 * b]
        o[Quadruped.head] = [0, 0.2 * s * neckLength, 0.1 * s * neckLength]
        o[Quadruped.tail1] = [0, 0.05 * s, -0.12 * s]
        o[Quadruped.tail2] = [0, 0.02 * s, -0.13 * s * tailLength]
        o[Quadruped.tail3] = [0, -0.02 * s, -0.13 * s * tailLength]
        for (k, first) in Quadruped.legs.enumerated() {
            let side: Float = k % 2 == 0 ? 1 : -1
            let isFront = k < 2
            o[first] = isFront ? [side * 0.1 * s, -0.05 * s, 0.03 * s] : [side * 0.1 * s, -0.03 * s, 0]
            let segments = isFront ? front : hind
            for i in 0..<3 { o[first + 1 + i] = segments[i] }
        }
        return o
    }

    /// The rest-pose skeleton.
    public var skeleton: KinematicTree {
        try! KinematicTree(names: Quadruped.jointNames, parents: Quadruped.parents, offsets: restOffsets.flatMap { [$0.x, $0.y, $0.z] })
    }

    func leafEnd(_ j: Int) -> SIMD3<Float> {
        switch j {
        case Quadruped.head: return [0, -0.03 * size * headSize, 0.19 * size * headSize]
        case Quadruped.tail3: return [0, -0.04 * size, -0.12 * size * tailLength]
        default: return [0, -0.005 * size, 0.05 * size]
        }
    }
}

extension CharacterMesh {
    /// The animal's mesh.
    public init(quadruped id: QuadrupedIdentity, segments: Int = 16, rings: Int = 8) {
        let tree = id.skeleton
        let rest = tree.restPositions
        func restP(_ j: Int) -> SIMD3<Float> { SIMD3(rest[3 * j], rest[3 * j + 1], rest[3 * j + 2]) }
        let s = id.size, t = id.thickness
        var boneEnd = [SIMD3<Float>](repeating: .zero, count: Quadruped.jointCount)
        var endChild = [Int](repeating: -1, count: Quadruped.jointCount)
        for j in 0..<Quadruped.jointCount {
            let next: Int? = j == Quadruped.pelvis ? Quadruped.spine : (j == Quadruped.chest ? Quadruped.neck : tree.children(of: j).first)
            if let next { boneEnd[j] = restP(next); endChild[j] = next } else { boneEnd[j] = restP(j) + id.leafEnd(j) }
        }
        var capsules: [Capsule] = []
        func add(_ j: Int, _ ra: Float, _ rb: Float, side: Float = 1, depth: Float = 1, from: SIMD3<Float>? = nil, to: SIMD3<Float>? = nil) {
            capsules.append(Capsule(joint: j, a: from ?? restP(j), b: to ?? boneEnd[j], radiusA: ra, radiusB: rb, sideScale: side, depthScale: depth))
        }
        add(Quadruped.pelvis, 0.11 * s * t, 0.12 * s * t, side: 0.85, depth: 1.05)
        add(Quadruped.spine, 0.12 * s * t, 0.135 * s * t, side: 0.85, depth: 1.1)
        add(Quadruped.chest, 0.135 * s * t, 0.09 * s * t, side: 0.85, depth: 1.15)
        add(Quadruped.neck, 0.07 * s * t, 0.06 * s * t)
        add(Quadruped.head, 0.075 * s * id.headSize, 0.04 * s * id.headSize, side: 0.9, depth: 0.9)
        add(Quadruped.tail1, 0.035 * s * t, 0.028 * s * t)
        add(Quadruped.tail2, 0.028 * s * t, 0.02 * s * t)
        add(Quadruped.tail3, 0.02 * s * t, 0.01 * s * t)
        for first in Quadruped.legs {
            add(first, 0.055 * s * t, 0.042 * s * t)
            add(first + 1, 0.04 * s * t, 0.032 * s * t)
            add(first + 2, 0.032 * s * t, 0.03 * s * t)
            add(first + 3, id.pawRadius, 0.03 * s * t, side: 1.1, depth: 0.8)
        }
        self.init(tree: tree, capsules: capsules, boneEnd: boneEnd, endChild: endChild,
                  part: { UInt8(Quadruped.part(of: $0).rawValue) }, blend: 0.05 * s, segments: segments, rings: rings)
    }
}

extension Quadruped {
    /// The coat colour at rest-pose position `p` on body part `part`: base colour with a lighter
    /// belly, markings (spots, stripes, patches or a saddle), fur noise along the body, dark
    /// nose and eyes, lighter paws.
    static func albedo(_ p: SIMD3<Float>, part: Part, identity id: QuadrupedIdentity, rest: [Float]) -> SIMD3<Float> {
        @inline(__always) func joint(_ j: Int) -> SIMD3<Float> { SIMD3(rest[3 * j], rest[3 * j + 1], rest[3 * j + 2]) }
        let seed = id.noiseSeed, s = id.size
        var c = id.coat
        // Belly: the underside of the trunk.
        if part == .body {
            let centreY = 0.5 * (joint(pelvis).y + joint(chest).y)
            c = HeadModel.mixColor(c, id.belly, HeadModel.smoothstep(centreY - 0.03 * s, centreY - 0.09 * s, p.y))
        }
        let f = id.patternFrequency
        var mark: Float = 0
        switch id.pattern {
        case 0:
            let q = p * f
            let cell = SIMD3(q.x.rounded(), q.y.rounded(), q.z.rounded())
            let jitter = SIMD3(Humanoid.lattice3(Int32(cell.x), Int32(cell.y), Int32(cell.z), seed),
                               Humanoid.lattice3(Int32(cell.x), Int32(cell.y), Int32(cell.z), seed &+ 1), 0) * 0.25
            let size = 0.2 + 0.12 * Humanoid.lattice3(Int32(cell.x), Int32(cell.y), Int32(cell.z), seed &+ 2)
            let d = q - cell - jitter
            mark = HeadModel.smoothstep(size + 0.05, size, dot3(d, d).squareRoot())
        case 1:
            let stripe = Foundation.sin(2 * Float.pi * f * (p.z + 0.3 * p.y) + 1.5 * Humanoid.noise3(p * 6, seed))
            mark = HeadModel.smoothstep(0.4, 0.7, stripe)
        case 2:
            mark = HeadModel.smoothstep(0.1, 0.25, Humanoid.noise3(p * (0.6 * f), seed) + 0.4 * Humanoid.noise3(p * (1.5 * f), seed &+ 1))
        default:
            // A darker saddle over the back.
            let top = joint(spine).y + 0.05 * s
            mark = part == .body ? HeadModel.smoothstep(top - 0.02 * s, top + 0.04 * s, p.y + 0.03 * s * Humanoid.noise3(p * 20, seed)) : 0
        }
        if part != .paw { c = HeadModel.mixColor(c, id.markings, mark) }
        if part == .paw || part == .lowerLeg && p.y < 0.08 * s { c = HeadModel.mixColor(c, id.belly, 0.7) }
        // Fur: fine streaks along the body axis and a coarser sheen.
        c *= 1 + 0.12 * Humanoid.noise3(SIMD3(p.x * 260, p.y * 260, p.z * 40), seed &+ 5) + 0.06 * Humanoid.noise3(p * 30, seed &+ 6)
        if part == .head {
            let h = joint(head)
            let tip = h + id.leafEnd(head)
            let dn = p - tip
            // Nose at the snout tip, eyes on either side of the upper head.
            if dot3(dn, dn).squareRoot() < 0.028 * s * id.headSize { c = SIMD3(0.05, 0.04, 0.04) }
            for side: Float in [-1, 1] {
                let eye = h + SIMD3(side * 0.045 * s * id.headSize, 0.03 * s * id.headSize, 0.06 * s * id.headSize)
                let de = p - eye
                if dot3(de, de).squareRoot() < 0.018 * s * id.headSize { c = SIMD3(0.04, 0.03, 0.02) }
            }
        }
        return Humanoid.clamp01(c)
    }

    /// The pose at time `t` (seconds): the motion kinds mapped to an animal — walk (a lateral
    /// sequence gait back and forth across the view), wave (raise a front paw, wag the tail),
    /// squat (sit down), turn (turn on the spot), jump (a leap), random (blends plus joint noise).
    static func pose(_ m: CharacterMotionParameters, time t: Float, skeleton: KinematicTree) -> CharacterPose {
        var angles = [SIMD3<Float>](repeating: .zero, count: jointCount)
        var root = SIMD3<Float>.zero, yaw = m.heading, lift: Float = 0
        switch m.kind {
        case .random:
            let a = basic(m.blend[0], m, t), b = basic(m.blend[1], m, t)
            let alpha = 0.5 + 0.5 * Foundation.sin(2 * Float.pi * m.blendFrequency * t + m.phase)
            for j in 0..<jointCount {
                angles[j] = a.angles[j] * (1 - alpha) + b.angles[j] * alpha
                for k in 0..<3 {
                    let q = 3 * (3 * j + k)
                    angles[j][k] += 0.6 * m.noise[q] * Foundation.sin(2 * Float.pi * m.noise[q + 1] * t + m.noise[q + 2])
                }
            }
            angles[pelvis] *= 0.3
            root = a.root * (1 - alpha) + b.root * alpha
            yaw += a.yaw * (1 - alpha) + b.yaw * alpha
            lift = a.lift * (1 - alpha) + b.lift * alpha
        default:
            let b = basic(m.kind, m, t)
            angles = b.angles; root = b.root; yaw += b.yaw; lift = b.lift
        }
        return CharacterMotion.grounded(angles: angles, root: root, yaw: yaw, lift: lift, feet: paws, skeleton: skeleton)
    }

    static func basic(_ kind: CharacterMotionKind, _ m: CharacterMotionParameters, _ t0: Float) -> CharacterMotion.Basic {
        var b = CharacterMotion.Basic(count: jointCount)
        let a = m.amplitude, t = t0 * m.tempo + m.phase
        // The tail wags in every motion, faster when waving.
        let wagRate: Float = kind == .wave ? 3 : 1.2
        b.angles[tail1] = SIMD3(-0.3, 0.35 * a * Foundation.sin(2 * Float.pi * wagRate * t), 0)
        b.angles[tail2] = SIMD3(0.15, 0.25 * a * Foundation.sin(2 * Float.pi * wagRate * t - 0.8), 0)
        func step(_ leg: Int, _ phase: Float, _ amp: Float) {
            // Swing forward and back; lift the lower leg during the forward swing.
            let swing = Foundation.sin(phase), lift = Swift.max(0, Foundation.cos(phase))
            b.angles[leg].x = -amp * swing
            let front = leg < 16
            b.angles[leg + 1].x = (front ? 0.5 : -0.5) * amp * 2 * lift
            b.angles[leg + 2].x = (front ? 0.6 : 0.5) * amp * 2 * lift
        }
        switch kind {
        case .walk, .random:
            let speed = 0.7 * m.stride
            let period = 2 * m.pathLength / speed
            let u = (t0 * m.tempo).truncatingRemainder(dividingBy: period) / period
            let forward = u < 0.5
            let s = forward ? 2 * u : 2 - 2 * u
            b.yaw = forward ? .pi / 2 : -.pi / 2
            b.root = SIMD3((s - 0.5) * m.pathLength, 0, 0)
            let phi = 2 * Float.pi * t0 * m.tempo * speed / (0.6 * m.stride) + m.phase
            // Lateral sequence: hind left, front left, hind right, front right a quarter cycle apart.
            for (leg, offset) in [(16, Float(0)), (8, 0.25), (20, 0.5), (12, 0.75)] { step(leg, phi + 2 * .pi * offset, 0.35 * a) }
            b.angles[head].x = 0.06 * Foundation.sin(2 * phi)
            b.angles[spine].y = 0.05 * Foundation.sin(phi)
        case .wave:
            let c = t.truncatingRemainder(dividingBy: 5) + (t < 0 ? 5 : 0)
            let up = CharacterMotion.ease(c / 0.6) * (1 - CharacterMotion.ease((c - 3.5) / 0.6))
            let paw = 8
            b.angles[paw].x = -1.1 * up * a
            b.angles[paw + 1].x = 0.9 * up * (1 + 0.3 * Foundation.sin(2 * Float.pi * 1.5 * t))
            b.angles[head] = SIMD3(-0.15 * up, 0.2 * Foundation.sin(0.8 * t), 0.25 * up * Foundation.sin(2 * Float.pi * 0.5 * t))
        case .squat:
            // Sit: the trunk pitches up about the hips, the hind legs fold under, the front legs stay vertical.
            let d = 0.5 - 0.5 * Foundation.cos(2 * Float.pi * t / 3)
            let pitch = 0.55 * d * Swift.min(a, 1.05)
            b.angles[pelvis].x = -pitch
            for leg in [8, 12] { b.angles[leg].x = pitch }
            for leg in [16, 20] {
                b.angles[leg].x = pitch - 1.1 * d
                b.angles[leg + 1].x = 1.6 * d
                b.angles[leg + 2].x = -1.2 * d
            }
            for j in [tail1] { b.angles[j].x += pitch }
            b.angles[head].x = 0.3 * pitch
        case .turn:
            b.yaw = 2 * Float.pi * t / 5
            let phi = 2 * Float.pi * 1.6 * t
            for (leg, offset) in [(16, Float(0)), (8, 0.25), (20, 0.5), (12, 0.75)] { step(leg, phi + 2 * .pi * offset, 0.18 * a) }
            b.angles[head].y = 0.3
            b.angles[spine].y = 0.12
        case .jump:
            let c = t.truncatingRemainder(dividingBy: 1.6) + (t < 0 ? 1.6 : 0)
            var crouch: Float = 0, flight: Float = 0
            if c < 0.5 { crouch = CharacterMotion.ease(c / 0.5) }
            else if c < 0.62 { crouch = 1 - CharacterMotion.ease((c - 0.5) / 0.12) }
            else if c < 1.02 { let s = (c - 0.62) / 0.4; flight = 4 * s * (1 - s) }
            else if c < 1.3 { crouch = 0.6 * Foundation.sin(Float.pi * (c - 1.02) / 0.28 * 0.5) }
            else { crouch = 0.6 * (1 - CharacterMotion.ease((c - 1.3) / 0.3)) }
            for leg in Quadruped.legs {
                let front = leg < 16
                b.angles[leg].x = (front ? 0.5 : -0.6) * crouch + (front ? -0.7 : 0.7) * flight
                b.angles[leg + 1].x = (front ? 0.6 : -0.9) * crouch + (front ? 0.8 : -0.6) * flight
                b.angles[leg + 2].x = (front ? -0.3 : 0.9) * crouch
            }
            b.angles[pelvis].x = -0.25 * flight
            b.lift = 0.3 * a * flight
        }
        return b
    }
}
