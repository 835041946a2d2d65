import Foundation

/// Procedural albedo of ``Humanoid`` characters: a solid texture of the rest-pose position, so it
/// sticks to the skin and clothes as the body moves, and an environment for the background.
extension Humanoid {
    /// Hash of a 3D lattice point to [-1, 1).
    @inline(__always) static func lattice3(_ x: Int32, _ y: Int32, _ z: Int32, _ seed: UInt32) -> Float {
        var h = (UInt32(bitPattern: x) &* 0x8DA6_B343) ^ (UInt32(bitPattern: y) &* 0xD816_3841)
            ^ (UInt32(bitPattern: z) &* 0xCB1A_B31F) ^ (seed &* 0x1656_67B1)
        h ^= h >> 15; h &*= 0x2C1B_3C6D; h ^= h >> 12; h &*= 0x297A_2D39; h ^= h >> 15
        return Float(h >> 8) * (1.0 / 8_388_608.0) - 1
    }

    /// Smooth 3D value noise in [-1, 1] with unit lattice spacing.
    @inline(__always) static func noise3(_ p: SIMD3<Float>, _ seed: UInt32) -> Float {
        let fx = p.x.rounded(.down), fy = p.y.rounded(.down), fz = p.z.rounded(.down)
        let ix = Int32(fx), iy = Int32(fy), iz = Int32(fz)
        var tx = p.x - fx, ty = p.y - fy, tz = p.z - fz
        tx = tx * tx * (3 - 2 * tx); ty = ty * ty * (3 - 2 * ty); tz = tz * tz * (3 - 2 * tz)
        func layer(_ z: Int32) -> Float {
            let a = lattice3(ix, iy, z, seed), b = lattice3(ix + 1, iy, z, seed)
            let c = lattice3(ix, iy + 1, z, seed), d = lattice3(ix + 1, iy + 1, z, seed)
            let top = a + (b - a) * tx, bottom = c + (d - c) * tx
            return top + (bottom - top) * ty
        }
        let l0 = layer(iz), l1 = layer(iz + 1)
        return l0 + (l1 - l0) * tz
    }

    @inline(__always) static func clamp01(_ c: SIMD3<Float>) -> SIMD3<Float> {
        SIMD3(Swift.min(Swift.max(c.x, 0), 1), Swift.min(Swift.max(c.y, 0), 1), Swift.min(Swift.max(c.z, 0), 1))
    }

    /// What covers a point of the rest mesh.
    enum Material { case skin, hair, shirt, trousers, shoes, belt }

    /// The albedo (linear RGB in [0, 1]) at rest-pose position `p` on body part `part`.
    ///
    /// `rest` holds the rest joint positions (3 per joint), used to place sleeves, hems, the face
    /// and the hairline relative to the body.
    static func albedo(_ p: SIMD3<Float>, part: Part, identity id: HumanoidIdentity, rest: [Float]) -> SIMD3<Float> {
        @inline(__always) func joint(_ j: Int) -> SIMD3<Float> { SIMD3(rest[3 * j], rest[3 * j + 1], rest[3 * j + 2]) }
        let seed = id.noiseSeed
        let s = id.height
        var material: Material
        switch part {
        case .head: material = .skin
        case .neck, .hand: material = .skin
        case .chest, .spine, .clavicle: material = .shirt
        case .pelvis:
            let beltY = joint(pelvis).y + 0.035 * s
            material = p.y > beltY + 0.02 * s ? .shirt : (p.y > beltY - 0.015 * s ? .belt : .trousers)
        case .upperArm, .forearm:
            // Distance from the shoulder along the arm, in upper-arm lengths.
            let left = p.x > 0
            let sh = joint(left ? lShoulder : rShoulder), el = joint(left ? lElbow : rElbow)
            let along = dot3(p - sh, normalized3(el - sh)) / dot3(el - sh, el - sh).squareRoot()
            material = along < id.sleeveLength ? .shirt : .skin
        case .thigh, .shin:
            let left = p.x > 0
            let hip = joint(left ? lHip : rHip), knee = joint(left ? lKnee : rKnee), ankle = joint(left ? lAnkle : rAnkle)
            let hem = id.shorts ? hip.y + 0.55 * (knee.y - hip.y) : ankle.y + 0.05 * s
            material = p.y > hem ? .trousers : (part == .shin && p.y < ankle.y + 0.03 * s ? .shoes : .skin)
        case .foot, .toe: material = .shoes
        }
        if part == .head {
            // Hair on top and at the back, above a wavy hairline.
            let h = joint(head)
            let top = h.y + 0.21 * s * id.headSize
            let rel = (top - p.y) / (0.25 * s * id.headSize)
            let front = p.z - h.z
            let hairline = id.hairline + 0.05 * noise3(p * 60, seed &+ 9) + (front < 0 ? 0.5 * Swift.min(1, -front / (0.07 * s)) : 0)
            if rel < hairline { material = .hair }
        }
        var c: SIMD3<Float>
        switch material {
        case .skin:
            c = id.skin * (1 + 0.06 * noise3(p * 40, seed) + 0.04 * noise3(p * 110, seed &+ 1))
            c.x *= 1 + 0.04 * noise3(p * 9, seed &+ 2)
            if part == .head { c = face(p, colour: c, identity: id, head: joint(head)) }
            if part == .hand {
                // Knuckle and nail shading: a few darker creases.
                c *= 1 - 0.12 * Swift.max(0, Foundation.sin(p.y * 260 / s))
            }
        case .hair:
            let strands = 1 + 0.25 * noise3(SIMD3(p.x * 300, p.y * 40, p.z * 300), seed &+ 3) + 0.1 * noise3(p * 500, seed &+ 4)
            c = id.hair * strands
        case .shirt:
            c = shirtPattern(p, identity: id)
            // Fabric weave and a few folds.
            c *= 1 + 0.07 * noise3(p * 160, seed &+ 5) + 0.08 * noise3(SIMD3(p.x * 12, p.y * 30, p.z * 12), seed &+ 6)
        case .trousers:
            // Denim-like twill: fine diagonal lines plus blotchy wear.
            let twill = Foundation.sin((p.x + p.y + p.z) * 900)
            c = id.trousers * (1 + 0.08 * twill + 0.12 * noise3(p * 25, seed &+ 7) + 0.05 * noise3(p * 180, seed &+ 8))
            // Side seams.
            if Swift.abs(p.z) < 0.006 * s && part == .thigh { c *= 0.7 }
        case .belt:
            c = SIMD3(0.16, 0.1, 0.06) * (1 + 0.2 * noise3(p * 120, seed &+ 10))
            if Swift.abs(p.x) < 0.025 * s && p.z > 0 { c = SIMD3(0.75, 0.65, 0.35) }
        case .shoes:
            let ankle = joint(p.x > 0 ? lAnkle : rAnkle)
            let sole = p.y < ankle.y - 0.045 * s
            c = sole ? SIMD3(0.85, 0.83, 0.78) : id.shoes * (1 + 0.15 * noise3(p * 90, seed &+ 11))
            // Laces across the top of the foot.
            if part == .foot && !sole && p.y > ankle.y - 0.02 * s && Foundation.sin(p.z * 400 / s) > 0.6 { c = SIMD3(0.9, 0.9, 0.88) }
        }
        return clamp01(c)
    }

    /// Eyes, brows, nose shading and mouth on the front of the head.
    static func face(_ p: SIMD3<Float>, colour: SIMD3<Float>, identity id: HumanoidIdentity, head h: SIMD3<Float>) -> SIMD3<Float> {
        var c = colour
        let s = id.height * id.headSize
        let centre = h + SIMD3(0, 0.1 * s, 0.01 * id.height)
        let q = (p - centre) / s                 // head-relative, about ±0.1 across
        guard q.z > 0.03 else { return c }
        for side: Float in [-1, 1] {
            let e = SIMD2(q.x - side * 0.033, q.y - 0.012)
            let r = (e * e).sum().squareRoot()
            if r < 0.016 {
                // White, iris, pupil.
                c = r < 0.006 ? SIMD3(0.03, 0.03, 0.03) : (r < 0.011 ? SIMD3(0.25, 0.17, 0.1) : SIMD3(0.9, 0.88, 0.85))
            }
            // Brows.
            let bx = q.x - side * 0.035, by = q.y - 0.036 + 0.15 * bx * bx * 100
            if Swift.abs(bx) < 0.022 && Swift.abs(by) < 0.005 { c = id.hair * 0.8 }
        }
        // Mouth: a dark line with red lips around it.
        let mx = q.x, my = q.y + 0.05
        if Swift.abs(mx) < 0.028 && Swift.abs(my) < 0.012 {
            c = Swift.abs(my) < 0.0025 ? SIMD3(0.2, 0.05, 0.05) : c * SIMD3(0.95, 0.62, 0.62)
        }
        // Nose: a darker band below the eyes in the middle.
        if Swift.abs(q.x) < 0.012 && q.y < 0 && q.y > -0.03 { c *= 0.9 }
        return c
    }

    static func shirtPattern(_ p: SIMD3<Float>, identity id: HumanoidIdentity) -> SIMD3<Float> {
        let f = id.patternFrequency
        let seed = id.noiseSeed &+ 20
        switch id.shirtPattern {
        case 0:
            let stripe = Foundation.sin(2 * Float.pi * f * p.y + 0.8 * noise3(p * 4, seed))
            return HeadModel.mixColor(id.shirt, id.shirtAccent, HeadModel.smoothstep(-0.2, 0.2, stripe))
        case 1:
            let a = Foundation.sin(2 * Float.pi * f * p.y), b = Foundation.sin(2 * Float.pi * f * (p.x + p.z))
            let t = 0.5 * HeadModel.smoothstep(-0.3, 0.3, a) + 0.5 * HeadModel.smoothstep(-0.3, 0.3, b)
            return HeadModel.mixColor(id.shirt, id.shirtAccent, t)
        case 2:
            // Dots on a jittered 3D lattice.
            let q = p * f
            let cell = SIMD3(q.x.rounded(), q.y.rounded(), q.z.rounded())
            let jitter = SIMD3(lattice3(Int32(cell.x), Int32(cell.y), Int32(cell.z), seed),
                               lattice3(Int32(cell.x), Int32(cell.y), Int32(cell.z), seed &+ 1), 0) * 0.2
            let d = q - cell - jitter
            let r = dot3(d, d).squareRoot()
            return HeadModel.mixColor(id.shirt, id.shirtAccent, HeadModel.smoothstep(0.32, 0.24, r))
        default:
            let n = noise3(p * (f * 0.5), seed) + 0.5 * noise3(p * f, seed &+ 1)
            return HeadModel.mixColor(id.shirt, id.shirtAccent, HeadModel.smoothstep(-0.15, 0.15, n))
        }
    }

    /// The background seen along a world ray (origin `o`, unit direction `d`): a tiled ground
    /// plane y = 0 with grout lines and noise, fading into a sky gradient with soft clouds beyond.
    /// A function of the ray only, so it is consistent across cameras (parallax on the ground).
    static func environment(origin o: SIMD3<Float>, direction d: SIMD3<Float>, seed: UInt32, palette: (SIMD3<Float>, SIMD3<Float>)) -> SIMD3<Float> {
        let skyLow = SIMD3<Float>(0.75, 0.8, 0.86), skyHigh = SIMD3<Float>(0.35, 0.5, 0.75)
        var sky = HeadModel.mixColor(skyLow, skyHigh, Swift.min(Swift.max(d.y * 2, 0), 1))
        sky *= 1 + 0.08 * noise3(d * 6, seed &+ 30) + 0.04 * noise3(d * 20, seed &+ 31)
        guard d.y < -1e-4 else { return clamp01(sky) }
        let t = -o.y / d.y
        let g = o + d * t
        let tile: Float = 0.5
        let gx = g.x / tile, gz = g.z / tile
        let fx = gx - gx.rounded(.down), fz = gz - gz.rounded(.down)
        let checker = (Int(gx.rounded(.down)) + Int(gz.rounded(.down))) & 1 == 0
        var c = checker ? palette.0 : palette.1
        c *= 1 + 0.12 * noise3(SIMD3(g.x * 8, 0, g.z * 8), seed &+ 32) + 0.06 * noise3(SIMD3(g.x * 40, 0.5, g.z * 40), seed &+ 33)
        let grout = Swift.min(Swift.min(fx, 1 - fx), Swift.min(fz, 1 - fz))
        if grout < 0.03 { c *= 0.55 }
        // Fade into the haze far away so the horizon does not alias.
        let haze = HeadModel.smoothstep(8, 30, t)
        return clamp01(HeadModel.mixColor(c, skyLow, haze))
    }
}
