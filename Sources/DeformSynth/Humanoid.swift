import DeformGeometry
import DeformTensor
import Foundation

/// A procedural humanoid: a 21-joint skeleton and a mesh of tapered capsules, one per bone,
/// merged into one mesh with smooth skinning weights.
///
/// Model frame (metres): y up, the character faces +z at rest, +x is the character's left; the
/// ground is the plane y = 0 and the rest mesh stands on it. The rest pose has the arms hanging
/// down, slightly away from the body. Local joint rotations are expressed in these rest axes
/// (every joint's rest orientation is the identity).
public enum Humanoid {
    /// Joint names in skeleton order (every parent precedes its children).
    public static let jointNames: [String] = [
        "pelvis", "spine", "chest", "neck", "head",
        "left_clavicle", "left_shoulder", "left_elbow", "left_wrist",
        "right_clavicle", "right_shoulder", "right_elbow", "right_wrist",
        "left_hip", "left_knee", "left_ankle", "left_toe",
        "right_hip", "right_knee", "right_ankle", "right_toe",
    ]
    /// Parent of each joint (-1: the root).
    public static let parents: [Int] = [-1, 0, 1, 2, 3, 2, 5, 6, 7, 2, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19]

    // Joint indices, for readable motion code.
    static let pelvis = 0, spine = 1, chest = 2, neck = 3, head = 4
    static let lClavicle = 5, lShoulder = 6, lElbow = 7, lWrist = 8
    static let rClavicle = 9, rShoulder = 10, rElbow = 11, rWrist = 12
    static let lHip = 13, lKnee = 14, lAnkle = 15, lToe = 16
    static let rHip = 17, rKnee = 18, rAnkle = 19, rToe = 20
    public static var jointCount: Int { jointNames.count }

    /// Body parts of the mesh, one per capsule (the joint whose bone it is), used by the texture.
    public enum Part: Int, CaseIterable, Sendable {
        case pelvis, spine, chest, neck, head, clavicle, upperArm, forearm, hand, thigh, shin, foot, toe
    }

    /// The part of joint `j`'s bone.
    static func part(of j: Int) -> Part {
        switch j {
        case pelvis: return .pelvis
        case spine: return .spine
        case chest: return .chest
        case neck: return .neck
        case head: return .head
        case lClavicle, rClavicle: return .clavicle
        case lShoulder, rShoulder: return .upperArm
        case lElbow, rElbow: return .forearm
        case lWrist, rWrist: return .hand
        case lHip, rHip: return .thigh
        case lKnee, rKnee: return .shin
        case lAnkle, rAnkle: return .foot
        default: return .toe
        }
    }
}

/// Small 3-vector helpers on `SIMD3<Float>` used by the generator.
@inline(__always) func dot3(_ a: SIMD3<Float>, _ b: SIMD3<Float>) -> Float { (a * b).sum() }
@inline(__always) func cross3(_ a: SIMD3<Float>, _ b: SIMD3<Float>) -> SIMD3<Float> {
    SIMD3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
}
@inline(__always) func normalized3(_ a: SIMD3<Float>) -> SIMD3<Float> {
    let l = dot3(a, a).squareRoot()
    return l > 0 ? a / l : a
}

/// One sampled character: body proportions and thickness, clothing and colours.
public struct HumanoidIdentity: Codable, Sendable, Equatable {
    /// Overall scale (1 ≈ 1.75 m tall).
    public var height: Float
    /// Multipliers of the base segment lengths.
    public var torsoLength: Float
    public var armLength: Float
    public var legLength: Float
    public var shoulderWidth: Float
    public var hipWidth: Float
    public var headSize: Float
    /// Multipliers of the limb and torso radii.
    public var limbThickness: Float
    public var torsoThickness: Float
    /// Skin, hair, shirt (two pattern colours), trousers, shoe colours (linear RGB).
    public var skin: SIMD3<Float>
    public var hair: SIMD3<Float>
    public var shirt: SIMD3<Float>
    public var shirtAccent: SIMD3<Float>
    public var trousers: SIMD3<Float>
    public var shoes: SIMD3<Float>
    /// Shirt pattern: 0 horizontal stripes, 1 checks, 2 dots, 3 blotches.
    public var shirtPattern: Int
    /// Spatial frequency of the shirt pattern (cycles per metre).
    public var patternFrequency: Float
    /// Fraction of the upper arm covered by the sleeve (1.6: long sleeves reaching the forearm).
    public var sleeveLength: Float
    /// Whether the trousers stop above the knee (shorts).
    public var shorts: Bool
    /// Hair coverage: hairline height on the head (fraction of the head height from its top).
    public var hairline: Float
    /// Seed of the texture noise.
    public var noiseSeed: UInt32

    /// Draws an identity from `rng`.
    public init(draw rng: inout SynthRandom) {
        func around(_ spread: Float) -> Float { 1 + spread * Swift.min(Swift.max(rng.normal(), -2.5), 2.5) }
        height = around(0.06)
        torsoLength = around(0.06)
        armLength = around(0.05)
        legLength = around(0.05)
        shoulderWidth = around(0.07)
        hipWidth = around(0.07)
        headSize = around(0.05)
        limbThickness = around(0.12)
        torsoThickness = around(0.1)
        let tone = rng.uniform(0, 1)
        let light = SIMD3<Float>(0.92, 0.74, 0.63), dark = SIMD3<Float>(0.36, 0.23, 0.16)
        skin = light + (dark - light) * tone
        let hairPalette: [SIMD3<Float>] = [[0.07, 0.05, 0.04], [0.26, 0.15, 0.08], [0.5, 0.33, 0.16], [0.75, 0.6, 0.33],
                                           [0.5, 0.2, 0.08], [0.6, 0.58, 0.55]]
        hair = hairPalette[rng.int(hairPalette.count)]
        func colour() -> SIMD3<Float> {
            // Saturated or muted clothing colours in roughly equal measure.
            let h = rng.uniform(0, 6), s = rng.uniform(0.25, 0.85), v = rng.uniform(0.25, 0.9)
            let c = v * s, x = c * (1 - Swift.abs(h.truncatingRemainder(dividingBy: 2) - 1)), m = v - c
            let rgb: SIMD3<Float>
            switch Int(h) {
            case 0: rgb = [c, x, 0]
            case 1: rgb = [x, c, 0]
            case 2: rgb = [0, c, x]
            case 3: rgb = [0, x, c]
            case 4: rgb = [x, 0, c]
            default: rgb = [c, 0, x]
            }
            return rgb + m
        }
        shirt = colour()
        shirtAccent = colour()
        trousers = rng.uniform(0, 1) < 0.5 ? SIMD3<Float>(0.12, 0.17, 0.32) * rng.uniform(0.7, 1.5) : colour() * 0.7
        shoes = rng.uniform(0, 1) < 0.5 ? SIMD3(repeating: rng.uniform(0.05, 0.25)) : colour() * 0.6
        shirtPattern = rng.int(4)
        patternFrequency = rng.uniform(6, 14)
        sleeveLength = rng.uniform(0, 1) < 0.5 ? rng.uniform(0.35, 0.8) : 1.6
        shorts = rng.uniform(0, 1) < 0.3
        hairline = rng.uniform(0.2, 0.27)
        noiseSeed = UInt32(truncatingIfNeeded: rng.int(1 << 30))
    }

    /// The rest-pose skeleton: joint positions from the proportions, standing on y = 0.
    public var skeleton: KinematicTree {
        let offsets = restOffsets
        return try! KinematicTree(names: Humanoid.jointNames, parents: Humanoid.parents, offsets: offsets.flatMap { [$0.x, $0.y, $0.z] })
    }

    /// Sole thickness below the ankle joint: the ankle sits this high above the ground at rest.
    var ankleHeight: Float { 0.075 * height * limbThickness.squareRoot() }

    /// Rest offsets of the joints from their parents (see ``Humanoid`` for the frame).
    var restOffsets: [SIMD3<Float>] {
        let s = height
        let thigh = 0.43 * s * legLength, shin = 0.42 * s * legLength
        let hipDrop = 0.06 * s
        let pelvisY = ankleHeight + shin + thigh + hipDrop
        let upperArm = 0.29 * s * armLength, forearm = 0.25 * s * armLength
        let abduction: Float = 0.2
        let arm = SIMD3<Float>(Foundation.sin(abduction), -Foundation.cos(abduction), 0)
        let spineLen = 0.12 * s * torsoLength, chestLen = 0.2 * s * torsoLength, neckLen = 0.2 * s * torsoLength
        let clavicle = 0.15 * s * shoulderWidth, hipX = 0.09 * s * hipWidth
        var o = [SIMD3<Float>](repeating: .zero, count: Humanoid.jointCount)
        o[Humanoid.pelvis] = [0, pelvisY, 0]
        o[Humanoid.spine] = [0, spineLen, 0]
        o[Humanoid.chest] = [0, chestLen, 0]
        o[Humanoid.neck] = [0, neckLen, -0.01 * s]
        o[Humanoid.head] = [0, 0.1 * s * headSize, 0.01 * s]
        for (side, c, sh, el, wr, hip, kn, an, toe) in [(Float(1), Humanoid.lClavicle, Humanoid.lShoulder, Humanoid.lElbow, Humanoid.lWrist,
                                                          Humanoid.lHip, Humanoid.lKnee, Humanoid.lAnkle, Humanoid.lToe),
                                                         (Float(-1), Humanoid.rClavicle, Humanoid.rShoulder, Humanoid.rElbow, Humanoid.rWrist,
                                                          Humanoid.rHip, Humanoid.rKnee, Humanoid.rAnkle, Humanoid.rToe)] {
            let sideArm = SIMD3<Float>(side * arm.x, arm.y, 0)
            o[c] = [side * 0.03 * s, 0.16 * s * torsoLength, -0.01 * s]
            o[sh] = [side * clavicle, 0, 0]
            o[el] = sideArm * upperArm
            o[wr] = sideArm * forearm
            o[hip] = [side * hipX, -hipDrop, 0]
            o[kn] = [0, -thigh, 0.01 * s]
            o[an] = [0, -shin, -0.02 * s]
            o[toe] = [0, -0.04 * s, 0.13 * s]
        }
        return o
    }

    /// The far end of the bone of a joint without children (hand, head top, toe tip), relative to
    /// the joint, in rest axes.
    func leafEnd(_ j: Int) -> SIMD3<Float> {
        let s = height
        switch j {
        case Humanoid.head: return [0, 0.2 * s * headSize, 0.01 * s]
        case Humanoid.lWrist, Humanoid.rWrist:
            let side: Float = j == Humanoid.lWrist ? 1 : -1
            return SIMD3(side * Foundation.sin(0.2), -Foundation.cos(0.2), 0) * (0.17 * s * armLength)
        default: return [0, -0.005 * s, 0.06 * s]
        }
    }
}

/// One capsule of the body: a tapered tube with rounded ends around the segment `a` → `b`, with
/// an elliptical cross-section (`sideScale` along the bone's side axis, `depthScale` along the
/// third axis), belonging to joint `joint`.
struct Capsule {
    var joint: Int
    var a: SIMD3<Float>
    var b: SIMD3<Float>
    var radiusA: Float
    var radiusB: Float
    var sideScale: Float = 1
    var depthScale: Float = 1
}

/// The rest-pose mesh of a character with skinning weights: capsules merged into one mesh.
public struct CharacterMesh: Sendable {
    /// Rest-pose vertices and unit normals (model frame).
    public var vertices: [SIMD3<Float>]
    public var normals: [SIMD3<Float>]
    /// Vertex indices, 3 per face.
    public var faces: [Int32]
    /// Body part of each face (``Humanoid/Part`` or ``Quadruped/Part`` raw value).
    public var faceParts: [UInt8]
    /// Body part of each vertex.
    public var vertexParts: [UInt8]
    /// Dense skinning weights `[V, J]` row-major; each row sums to 1 and has at most 3 non-zeros.
    public var weights: [Float]
    /// The joint whose bone each vertex belongs to.
    public var vertexJoints: [Int32]
    public let jointCount: Int

    /// The humanoid's mesh: `segments` vertices around each capsule, `rings` along its tube.
    public init(identity id: HumanoidIdentity, segments: Int = 16, rings: Int = 8) {
        let tree = id.skeleton
        let rest = tree.restPositions
        func restP(_ j: Int) -> SIMD3<Float> { SIMD3(rest[3 * j], rest[3 * j + 1], rest[3 * j + 2]) }
        let lt = id.limbThickness, tt = id.torsoThickness, s = id.height
        var capsules: [Capsule] = []
        // The bone of joint j runs to its continuation child (or a leaf end).
        var boneEnd = [SIMD3<Float>](repeating: .zero, count: Humanoid.jointCount)
        var endChild = [Int](repeating: -1, count: Humanoid.jointCount)
        for j in 0..<Humanoid.jointCount {
            let kids = tree.children(of: j)
            let next: Int? = switch j {
            case Humanoid.pelvis: Humanoid.spine
            case Humanoid.chest: Humanoid.neck
            default: kids.first
            }
            if let next { boneEnd[j] = restP(next); endChild[j] = next } else { boneEnd[j] = restP(j) + id.leafEnd(j) }
        }
        func add(_ j: Int, _ ra: Float, _ rb: Float, side: Float = 1, depth: Float = 1, from: SIMD3<Float>? = nil, to: SIMD3<Float>? = nil) {
            capsules.append(Capsule(joint: j, a: from ?? restP(j), b: to ?? boneEnd[j], radiusA: ra, radiusB: rb, sideScale: side, depthScale: depth))
        }
        add(Humanoid.pelvis, 0.125 * s * tt, 0.12 * s * tt, side: 1.3, depth: 0.8, from: restP(Humanoid.pelvis) - SIMD3(0, 0.05 * s, 0))
        add(Humanoid.spine, 0.115 * s * tt, 0.125 * s * tt, side: 1.25, depth: 0.78)
        add(Humanoid.chest, 0.135 * s * tt, 0.1 * s * tt, side: 1.3, depth: 0.75,
            to: restP(Humanoid.neck) - SIMD3(0, 0.05 * s, 0))
        add(Humanoid.neck, 0.05 * s * lt, 0.045 * s * lt)
        add(Humanoid.head, 0.095 * s * id.headSize, 0.09 * s * id.headSize, side: 0.92, depth: 1.08,
            from: restP(Humanoid.head) + SIMD3(0, 0.03 * s, 0.01 * s), to: restP(Humanoid.head) + SIMD3(0, 0.1 * s * id.headSize, 0.01 * s))
        for (c, sh, el, wr) in [(Humanoid.lClavicle, Humanoid.lShoulder, Humanoid.lElbow, Humanoid.lWrist),
                                (Humanoid.rClavicle, Humanoid.rShoulder, Humanoid.rElbow, Humanoid.rWrist)] {
            add(c, 0.05 * s * lt, 0.055 * s * lt, depth: 0.9)
            add(sh, 0.055 * s * lt, 0.045 * s * lt)
            add(el, 0.043 * s * lt, 0.033 * s * lt)
            add(wr, 0.032 * s * lt, 0.026 * s * lt, side: 0.55, depth: 1.35)
        }
        for (hip, kn, an, toe) in [(Humanoid.lHip, Humanoid.lKnee, Humanoid.lAnkle, Humanoid.lToe),
                                   (Humanoid.rHip, Humanoid.rKnee, Humanoid.rAnkle, Humanoid.rToe)] {
            add(hip, 0.085 * s * lt, 0.058 * s * lt)
            add(kn, 0.055 * s * lt, 0.04 * s * lt)
            add(an, 0.045 * s * lt, 0.04 * s * lt, side: 1.15, depth: 0.75)
            add(toe, 0.04 * s * lt, 0.034 * s * lt, side: 1.15, depth: 0.7)
        }
        self.init(tree: tree, capsules: capsules, boneEnd: boneEnd, endChild: endChild,
                  part: { UInt8(Humanoid.part(of: $0).rawValue) }, blend: 0.07 * s, segments: segments, rings: rings)
    }

    /// Merges `capsules` into one mesh. Skinning weights: a vertex belongs to its capsule's
    /// joint, blended smoothly with the parent joint around the bone's start and with the
    /// continuation child `endChild[j]` around the bone's end `boneEnd[j]` (half and half exactly
    /// at a joint, over at most `blend` metres either side), so bent joints deform as one surface.
    init(tree: KinematicTree, capsules: [Capsule], boneEnd: [SIMD3<Float>], endChild: [Int], part: (Int) -> UInt8,
         blend maxBlend: Float, segments: Int, rings: Int) {
        precondition(segments >= 4 && rings >= 1, "CharacterMesh: segments >= 4, rings >= 1")
        let rest = tree.restPositions
        func restP(_ j: Int) -> SIMD3<Float> { SIMD3(rest[3 * j], rest[3 * j + 1], rest[3 * j + 2]) }
        var v: [SIMD3<Float>] = [], n: [SIMD3<Float>] = [], f: [Int32] = [], fp: [UInt8] = [], vp: [UInt8] = []
        var vj: [Int32] = []
        let jc = tree.jointCount
        let capRings = Swift.max(2, segments / 4)
        for cap in capsules {
            let j = cap.joint
            let partCode = part(j)
            let axis = cap.b - cap.a
            let length = dot3(axis, axis).squareRoot()
            let d = length > 1e-6 ? axis / length : SIMD3<Float>(0, 1, 0)
            // Side axis: world x made perpendicular to the bone (world z for bones along x).
            var ref = SIMD3<Float>(1, 0, 0)
            if Swift.abs(dot3(ref, d)) > 0.9 { ref = SIMD3(0, 0, 1) }
            let u = normalized3(ref - dot3(ref, d) * d), wv = cross3(d, u)
            let base = Int32(v.count)
            // Rings: south cap, tube, north cap; each ring's centre, cross-section radius and the
            // axial component of its normals.
            var ringList: [(centre: SIMD3<Float>, r: Float, normalAxial: Float)] = []
            for k in 1..<capRings {
                let alpha = -Float.pi / 2 + Float.pi / 2 * Float(k) / Float(capRings)
                ringList.append((cap.a + d * (cap.radiusA * Foundation.sin(alpha)), cap.radiusA * Foundation.cos(alpha), Foundation.sin(alpha)))
            }
            for k in 0...rings {
                let t = Float(k) / Float(rings)
                ringList.append((cap.a + axis * t, cap.radiusA + (cap.radiusB - cap.radiusA) * t, 0))
            }
            for k in 1..<capRings {
                let alpha = Float.pi / 2 * Float(k) / Float(capRings)
                ringList.append((cap.b + d * (cap.radiusB * Foundation.sin(alpha)), cap.radiusB * Foundation.cos(alpha), Foundation.sin(alpha)))
            }
            let south = cap.a - d * cap.radiusA, north = cap.b + d * cap.radiusB
            func push(_ p: SIMD3<Float>, _ normal: SIMD3<Float>) {
                v.append(p); n.append(normalized3(normal)); vp.append(partCode); vj.append(Int32(j))
            }
            push(south, -d)
            for ring in ringList {
                let c = Swift.max(0, 1 - ring.normalAxial * ring.normalAxial).squareRoot()
                for q in 0..<segments {
                    let phi = 2 * Float.pi * Float(q) / Float(segments)
                    let cs = Foundation.cos(phi), sn = Foundation.sin(phi)
                    let p = ring.centre + ring.r * (cs * cap.sideScale * u + sn * cap.depthScale * wv)
                    // The normal of the elliptical cross-section, tilted towards the axis on the caps.
                    let radial = normalized3(cs / cap.sideScale * u + sn / cap.depthScale * wv)
                    push(p, c * radial + ring.normalAxial * d)
                }
            }
            push(north, d)
            let ringCount = ringList.count
            func idx(_ r: Int, _ q: Int) -> Int32 { base + 1 + Int32(r * segments + (q % segments)) }
            let northIndex = base + 1 + Int32(ringCount * segments)
            for q in 0..<segments {
                f += [base, idx(0, q + 1), idx(0, q)]
                f += [northIndex, idx(ringCount - 1, q), idx(ringCount - 1, q + 1)]
                fp += [partCode, partCode]
            }
            for r in 0..<(ringCount - 1) {
                for q in 0..<segments {
                    f += [idx(r, q), idx(r, q + 1), idx(r + 1, q + 1), idx(r, q), idx(r + 1, q + 1), idx(r + 1, q)]
                    fp += [partCode, partCode]
                }
            }
        }
        var w = [Float](repeating: 0, count: v.count * jc)
        for i in 0..<v.count {
            let j = Int(vj[i])
            let start = restP(j), end = boneEnd[j]
            let axis = end - start
            let length = Swift.max(dot3(axis, axis).squareRoot(), 1e-6)
            let along = dot3(v[i] - start, axis / length)
            let blend = Swift.min(0.45 * length, maxBlend)
            var wp: Float = 0, wc: Float = 0
            let p = tree.parents[j]
            if p >= 0 { wp = 0.5 * (1 - HeadModel.smoothstep(-blend, blend, along)) }
            if endChild[j] >= 0 { wc = 0.5 * HeadModel.smoothstep(length - blend, length + blend, along) }
            w[i * jc + j] = 1 - wp - wc
            if p >= 0 { w[i * jc + p] += wp }
            if endChild[j] >= 0 { w[i * jc + endChild[j]] += wc }
        }
        vertices = v
        normals = n
        faces = f
        faceParts = fp
        vertexParts = vp
        weights = w
        vertexJoints = vj
        jointCount = jc
    }
}
