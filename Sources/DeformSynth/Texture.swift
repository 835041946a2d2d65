import DeformTensor
import Foundation

/// Seeded draws for the generators: a thin layer over the engine's counter-based
/// ``RandomGenerator``, one independent stream per (seed, stream) pair, so that sample i of a
/// dataset depends on the seed and i only — not on the sample count, the thread that renders it or
/// the order of rendering.
public struct SynthRandom: Sendable {
    var generator: RandomGenerator

    /// The stream `stream` of the dataset seed `seed`.
    public init(seed: UInt64, stream: UInt64) {
        generator = RandomGenerator(seed: SynthRandom.mix(SynthRandom.mix(seed) ^ SynthRandom.mix(stream &+ 0x5EED)))
    }

    @inline(__always) static func mix(_ z0: UInt64) -> UInt64 {
        var z = z0 &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func uniform() -> Float { Float(generator.int(below: 1 << 24)) * (1.0 / 16_777_216.0) }
    /// Uniform in [lo, hi).
    public mutating func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * uniform() }
    /// Standard normal (Box-Muller).
    public mutating func normal() -> Float {
        let u1 = Double(uniform()) + 1.0 / 33_554_432.0, u2 = Double(uniform())
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }
    /// Uniform integer in `0..<n`.
    public mutating func int(_ n: Int) -> Int { generator.int(below: n) }
}

/// Procedural albedo of ``HeadModel`` heads, a function of the surface coordinates (θ, φ).
extension HeadModel {
    /// Hash of a lattice point to [-1, 1).
    @inline(__always) static func lattice(_ x: Int32, _ y: Int32, _ seed: UInt32) -> Float {
        var h = (UInt32(bitPattern: x) &* 0x8DA6_B343) ^ (UInt32(bitPattern: y) &* 0xD816_3841) ^ (seed &* 0xCB1A_B31F)
        h ^= h >> 15; h &*= 0x2C1B_3C6D; h ^= h >> 12; h &*= 0x297A_2D39; h ^= h >> 15
        return Float(h >> 8) * (1.0 / 8_388_608.0) - 1
    }

    /// Smooth value noise in [-1, 1] with unit lattice spacing.
    @inline(__always) static func noise(_ x: Float, _ y: Float, _ seed: UInt32) -> Float {
        let fx = x.rounded(.down), fy = y.rounded(.down)
        let ix = Int32(fx), iy = Int32(fy)
        var tx = x - fx, ty = y - fy
        tx = tx * tx * (3 - 2 * tx); ty = ty * ty * (3 - 2 * ty)
        let a = lattice(ix, iy, seed), b = lattice(ix + 1, iy, seed)
        let c = lattice(ix, iy + 1, seed), d = lattice(ix + 1, iy + 1, seed)
        let top = a + (b - a) * tx, bottom = c + (d - c) * tx
        return top + (bottom - top) * ty
    }

    @inline(__always) static func mixColor(_ a: SIMD3<Float>, _ b: SIMD3<Float>, _ t: Float) -> SIMD3<Float> { a + (b - a) * t }

    /// The albedo (linear RGB in [0, 1]) at surface coordinates (θ, φ).
    ///
    /// The symmetric part — skin tone with blush, fine skin-pore noise, eyes, brows, lips,
    /// nostrils, hair with strand noise — is evaluated at |θ|, so it is exactly mirror-symmetric.
    /// The asymmetric details — moles and blemishes, and the hairline raised on one side of the
    /// parting — are scaled by ``HeadIdentity/asymmetry``.
    public static func albedo(theta: Float, phi: Float, identity h: HeadIdentity) -> SIMD3<Float> {
        let l = h.layout
        let a = Swift.abs(theta), p = phi
        let seed = h.noiseSeed
        var c = h.skin
        // Warmer cheeks and nose tip, slightly lighter forehead.
        let blush = bump(a - 0.5, p + 0.1, 0.16, 0.11) + 0.6 * bump(a, p - l.noseTip, 0.06, 0.05)
        c = mixColor(c, c * SIMD3<Float>(1.05, 0.8, 0.8), Swift.min(blush, 1) * 0.6)
        c *= 1 + 0.05 * bump(a, p - 0.55, 0.45, 0.2)
        // Skin texture: two octaves of value noise (pores, uneven tone) and a faint colour drift.
        let n1 = noise(a * 16, p * 16, seed), n2 = noise(a * 42, p * 42, seed &+ 1)
        c *= 1 + 0.06 * n1 + 0.035 * n2
        c.x *= 1 + 0.03 * noise(a * 6, p * 6, seed &+ 2)
        // Asymmetric moles and blemishes.
        if h.asymmetry != 0 {
            for s in h.spots {
                let dt = theta - s.theta, dp = p - s.phi
                let d = (dt * dt + dp * dp).squareRoot()
                if d < 1.5 * s.radius {
                    c *= 1 - Swift.min(h.asymmetry, 1) * s.darkness * smoothstep(1.5 * s.radius, 0.6 * s.radius, d)
                }
            }
        }
        // Lips, with a dark line between them.
        let lipT = a / (0.95 * l.mouthWidth), lipP = (p - (l.mouthPhi - 0.005)) / 0.065
        let lipD = lipT * lipT + lipP * lipP
        if lipD < 1.2 {
            c = mixColor(c, h.lip * (1 + 0.05 * n2), smoothstep(1.2, 0.75, lipD))
            let line = smoothstep(0.012, 0.003, Swift.abs(p - l.mouthPhi)) * smoothstep(1.0, 0.7, lipT)
            c *= 1 - 0.55 * line
        }
        // Nostrils.
        let nd = bump(a - 0.05, p - (l.noseTip - 0.035), 0.018, 0.012)
        c *= 1 - 0.6 * nd
        // Brows: arcs above the eyes, tapering towards the temples.
        let db = a - (l.eyeTheta - 0.02)
        if Swift.abs(db) < 0.17 {
            let centre = l.eyePhi + 0.105 + 0.5 * db * db - 0.1 * db
            let thick = h.browThickness * (1 - 0.5 * smoothstep(-0.05, 0.17, db))
            let w = smoothstep(thick, 0.5 * thick, Swift.abs(p - centre)) * smoothstep(0.17, 0.12, Swift.abs(db))
            if w > 0 { c = mixColor(c, h.hair * 0.8 * (1 + 0.3 * noise(a * 90, p * 20, seed &+ 3)), w * 0.9) }
        }
        // Eyes: white, iris, pupil and a dark lid line.
        let et = (a - l.eyeTheta) / 0.1, ep = (p - l.eyePhi) / 0.042
        let de = et * et + ep * ep
        if de < 1.3 {
            let lid = smoothstep(0.8, 1.0, de) * smoothstep(1.3, 1.05, de)
            if de < 1 {
                var e = SIMD3<Float>(0.88, 0.86, 0.82)
                let dt = a - l.eyeTheta, dp = p - l.eyePhi
                let r = (dt * dt + dp * dp).squareRoot()
                e = mixColor(e, h.iris * (1 + 0.25 * noise(dt * 300, dp * 300, seed &+ 4)), smoothstep(0.038, 0.031, r))
                e = mixColor(e, SIMD3(0.03, 0.03, 0.03), smoothstep(0.016, 0.011, r))
                c = mixColor(c, e, smoothstep(1, 0.8, de))
            }
            c *= 1 - 0.6 * lid
        }
        // Hair above a ragged hairline that recedes at the temples and comes down at the back;
        // on one side of the parting the line sits a little higher.
        var hairline = h.hairline - (h.hairline - 0.22) * smoothstep(0.45, 1.25, a) - 0.7 * smoothstep(1.75, 2.3, a)
        hairline += 0.025 * noise(a * 24, 0.5, seed &+ 5)
        if h.asymmetry != 0 {
            hairline += h.asymmetry * 0.06 * smoothstep(-0.08, 0.08, theta - h.parting) * gauss(a, 0.8)
        }
        let hw = smoothstep(hairline - 0.012, hairline + 0.025, p)
        if hw > 0 {
            let strands = 1 + 0.22 * noise(a * 80, p * 7, seed &+ 6) + 0.1 * noise(a * 190, p * 18, seed &+ 7)
            c = mixColor(c, h.hair * strands, hw)
        }
        return SIMD3(Swift.min(Swift.max(c.x, 0), 1), Swift.min(Swift.max(c.y, 0), 1), Swift.min(Swift.max(c.z, 0), 1))
    }
}
