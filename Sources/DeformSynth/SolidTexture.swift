import Foundation

/// A procedural solid texture: an albedo that is a function of a 3D point in the textured
/// surface's own frame, so a moving object carries its pattern along and two cameras that see the
/// same surface point see the same colour. Every pattern mixes cell-sized structure with two
/// octaves of fine value noise, so photometric methods (stereo matching, flow) have detail to lock
/// onto at every scale the generators render.
public struct SolidTexture: Codable, Sendable, Equatable {
    public enum Pattern: String, Codable, Sendable, CaseIterable {
        /// Veins: a sine of a noise-warped coordinate, between the first two colours.
        case marble
        /// A 3D checkerboard with a per-cell tone.
        case checker
        /// Noise-warped bands along y.
        case stripes
        /// Jittered round spots (third colour) on a noisy base.
        case dots
        /// Running-bond bricks in the x-y plane with mortar joints (third colour); for walls.
        case bricks
        /// Square tiles in the x-z plane with grout (third colour) and stains; for floors.
        case tiles
    }

    public var pattern: Pattern
    /// Three linear-RGB colours in [0, 1]; each pattern says how it uses them. Stored as three
    /// values rather than an array so the per-sample lookup costs no reference counting.
    public var color0: SIMD3<Float>
    public var color1: SIMD3<Float>
    public var color2: SIMD3<Float>
    /// Pattern cells per world unit.
    public var scale: Float
    /// Seed of the texture's noise and per-cell tones.
    public var seed: UInt32

    /// The three colours.
    public var colors: [SIMD3<Float>] { [color0, color1, color2] }

    public init(pattern: Pattern, colors: [SIMD3<Float>], scale: Float, seed: UInt32) {
        precondition(colors.count == 3, "SolidTexture needs three colours")
        (self.pattern, color0, color1, color2, self.scale, self.seed) = (pattern, colors[0], colors[1], colors[2], scale, seed)
    }

    enum CodingKeys: String, CodingKey { case pattern, colors, scale, seed }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let colors = try c.decode([SIMD3<Float>].self, forKey: .colors)
        guard colors.count == 3 else {
            throw DecodingError.dataCorruptedError(forKey: .colors, in: c, debugDescription: "expected 3 colours, got \(colors.count)")
        }
        try self.init(pattern: c.decode(Pattern.self, forKey: .pattern), colors: colors,
                      scale: c.decode(Float.self, forKey: .scale), seed: c.decode(UInt32.self, forKey: .seed))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(pattern, forKey: .pattern)
        try c.encode(colors, forKey: .colors)
        try c.encode(scale, forKey: .scale)
        try c.encode(seed, forKey: .seed)
    }

    /// A random texture of `pattern` with a palette of related colours.
    public init(pattern: Pattern, scale: Float, draw rng: inout SynthRandom) {
        let hue = rng.uniform(0, 1)
        func colour(_ h: Float, _ saturation: Float, _ value: Float) -> SIMD3<Float> {
            // HSV to RGB: a cheap palette with enough spread in hue and brightness.
            let h6 = (h - h.rounded(.down)) * 6
            let k = SIMD3<Float>(5, 3, 1)
            var out = SIMD3<Float>.zero
            for c in 0..<3 {
                let t = (k[c] + h6).truncatingRemainder(dividingBy: 6)
                out[c] = value - value * saturation * Swift.max(0, Swift.min(t, 4 - t, 1))
            }
            return out
        }
        let a = colour(hue, rng.uniform(0.3, 0.8), rng.uniform(0.55, 0.95))
        let b = colour(hue + rng.uniform(0.05, 0.5), rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.6))
        let c = colour(rng.uniform(0, 1), rng.uniform(0, 0.5), rng.uniform(0.1, 0.9))
        self.init(pattern: pattern, colors: [a, b, c], scale: scale, seed: UInt32(truncatingIfNeeded: rng.int(1 << 30)))
    }

    // MARK: - Noise

    /// Hash of a 3D lattice point to [-1, 1).
    @inline(__always) static func lattice(_ x: Int32, _ y: Int32, _ z: Int32, _ seed: UInt32) -> Float {
        var h = (UInt32(bitPattern: x) &* 0x8DA6_B343) ^ (UInt32(bitPattern: y) &* 0xD816_3841)
            ^ (UInt32(bitPattern: z) &* 0xCB1A_B31F) ^ (seed &* 0x9E37_79B1)
        h ^= h >> 15; h &*= 0x2C1B_3C6D; h ^= h >> 12; h &*= 0x297A_2D39; h ^= h >> 15
        return Float(h >> 8) * (1.0 / 8_388_608.0) - 1
    }

    /// Smooth 3D value noise in [-1, 1] with unit lattice spacing (trilinear with smoothstep weights).
    @inline(__always) static func noise(_ p: SIMD3<Float>, _ seed: UInt32) -> Float {
        let f = p.rounded(.down)
        let i = SIMD3<Int32>(Int32(f.x), Int32(f.y), Int32(f.z))
        var t = p - f
        t = t * t * (3 - 2 * t)
        func corner(_ dx: Int32, _ dy: Int32, _ dz: Int32) -> Float { lattice(i.x + dx, i.y + dy, i.z + dz, seed) }
        let x00 = corner(0, 0, 0) + (corner(1, 0, 0) - corner(0, 0, 0)) * t.x
        let x10 = corner(0, 1, 0) + (corner(1, 1, 0) - corner(0, 1, 0)) * t.x
        let x01 = corner(0, 0, 1) + (corner(1, 0, 1) - corner(0, 0, 1)) * t.x
        let x11 = corner(0, 1, 1) + (corner(1, 1, 1) - corner(0, 1, 1)) * t.x
        let y0 = x00 + (x10 - x00) * t.y, y1 = x01 + (x11 - x01) * t.y
        return y0 + (y1 - y0) * t.z
    }

    /// Two octaves of value noise, in about [-1, 1].
    @inline(__always) static func fbm(_ p: SIMD3<Float>, _ seed: UInt32) -> Float {
        0.67 * noise(p, seed) + 0.33 * noise(p * 2.03 + 17.1, seed &+ 11)
    }

    @inline(__always) static func smoothstep(_ e0: Float, _ e1: Float, _ x: Float) -> Float {
        let t = Swift.min(Swift.max((x - e0) / (e1 - e0), 0), 1)
        return t * t * (3 - 2 * t)
    }

    @inline(__always) static func mix(_ a: SIMD3<Float>, _ b: SIMD3<Float>, _ t: Float) -> SIMD3<Float> { a + (b - a) * t }

    @inline(__always) static func fract(_ x: Float) -> Float { x - x.rounded(.down) }

    // MARK: - Albedo

    /// Weight of a feature of `frequency` cycles per cell seen with a footprint of `w` cells per
    /// pixel: 1 up to a quarter cycle per pixel, fading to 0 at half a cycle per pixel (Nyquist).
    @inline(__always) static func fade(_ frequency: Float, _ w: Float) -> Float { smoothstep(0.5, 0.25, frequency * w) }

    /// A square wave of period 1, +1 on [0, 0.5) and -1 on [0.5, 1), with its steps smoothed over
    /// ±e (continuous at every step, including the wrap at 1).
    @inline(__always) static func square(_ x: Float, _ e: Float) -> Float {
        let t = fract(x)
        return 2 * (smoothstep(-e, e, t) - smoothstep(0.5 - e, 0.5 + e, t) + smoothstep(1 - e, 1 + e, t)) - 1
    }

    /// The albedo at `p` (the surface's own frame), linear RGB clamped to [0, 1].
    ///
    /// `footprint` is the world size of one image pixel at the surface (depth / focal length).
    /// Features finer than the pixel fade to their mean and edges are smoothed over about half a
    /// pixel, the way procedural shaders band-limit themselves: detail below the pixel grid would
    /// alias differently in the two views of a stereo pair (whose samples land on different
    /// surface points) and no method could match it. Both views of a rectified pair see a point at
    /// the same depth, so they evaluate the same band-limited texture.
    public func color(at p: SIMD3<Float>, footprint: Float = 0) -> SIMD3<Float> {
        let q = p * scale
        let w = footprint * scale
        let edge = Swift.min(0.25, Swift.max(0.01, 0.5 * w))
        let s = seed
        let c0 = color0, c1 = color1, c2 = color2
        typealias T = SolidTexture
        var c: SIMD3<Float>
        switch pattern {
        case .marble:
            let warp = 3 * T.fbm(q * 0.8, s)
            let v = 0.5 + 0.5 * Foundation.sin(2.4 * (q.x + 0.6 * q.y + 0.3 * q.z) + warp)
            // The mean of v² over a cycle is 3/8.
            c = T.mix(T.mix(c0, c1, 0.375), T.mix(c0, c1, v * v), T.fade(1.2, w))
        case .checker:
            let cell = q.rounded(.down)
            let v = T.square(q.x, edge) * T.square(q.y, edge) * T.square(q.z, edge)
            let tone = 1 + 0.15 * T.fade(1, w) * T.lattice(Int32(cell.x), Int32(cell.y), Int32(cell.z), s &+ 1)
            c = T.mix(T.mix(c0, c1, 0.5), T.mix(c0, c1, 0.5 - 0.5 * v), T.fade(0.5, w)) * tone
        case .stripes:
            let v = q.y + 0.35 * T.fbm(q * 0.7, s)
            c = T.mix(T.mix(c0, c1, 0.5), T.mix(c0, c1, 0.5 + 0.5 * T.square(v, edge)), T.fade(1, w))
        case .dots:
            let cell = q.rounded(.down)
            let ix = Int32(cell.x), iy = Int32(cell.y), iz = Int32(cell.z)
            let centre = cell + 0.5 + 0.25 * SIMD3(T.lattice(ix, iy, iz, s &+ 2), T.lattice(ix, iy, iz, s &+ 3),
                                                   T.lattice(ix, iy, iz, s &+ 4))
            let d = ((q - centre) * (q - centre)).sum().squareRoot()
            let radius = 0.22 + 0.08 * T.lattice(ix, iy, iz, s &+ 5)
            let e = Swift.max(0.05, edge)
            let base = T.mix(c0, c1, 0.5 + 0.5 * T.fade(1.3, w) * T.noise(q * 1.3, s))
            c = T.mix(base, c2, T.fade(1, w) * T.smoothstep(radius + e, radius - e, d))
        case .bricks:
            // Bricks one cell long and half a cell high, in running bond, with mortar joints.
            let row = (q.y * 2).rounded(.down)
            let u = q.x + (Int(row) & 1 == 0 ? 0 : 0.5)
            let brick = u.rounded(.down)
            let fu = u - brick, fv = q.y * 2 - row
            let joint = Swift.min(Swift.min(fu, 1 - fu), 0.5 * Swift.min(fv, 1 - fv))
            let tone = 0.5 + 0.5 * T.fade(1, w) * T.lattice(Int32(brick), Int32(row), 0, s &+ 6)
            let face = T.mix(c0, c1, tone * 0.7)
            c = T.mix(c2, face, T.smoothstep(0.035 - edge, 0.035 + edge, joint))
        case .tiles:
            let fx = T.fract(q.x), fz = T.fract(q.z)
            let joint = Swift.min(Swift.min(fx, 1 - fx), Swift.min(fz, 1 - fz))
            let tone = 0.5 + 0.5 * T.fade(1, w) * T.lattice(Int32(q.x.rounded(.down)), 0, Int32(q.z.rounded(.down)), s &+ 7)
            var face = T.mix(c0, c1, tone)
            face *= 1 - 0.25 * T.smoothstep(0.1, 0.6, T.fbm(q * 0.45, s &+ 8))
            c = T.mix(c2, face, T.smoothstep(0.04 - edge, 0.04 + edge, joint))
        }
        // On every pattern: a mottle larger than the cells and grain finer than them, each octave
        // only where the pixels resolve it, so there is detail to match at every distance.
        var grain: Float = 1 + 0.2 * T.fade(0.7, w) * T.fbm(q * 0.35 + 3.1, s &+ 11)
        let g1 = T.fade(2.9, w), g2 = T.fade(6.1, w)
        if g1 > 0 { grain += 0.12 * g1 * T.noise(q * 2.9, s &+ 9) }
        if g2 > 0 { grain += 0.08 * g2 * T.noise(q * 6.1, s &+ 10) }
        c *= grain
        return SIMD3(Swift.min(Swift.max(c.x, 0), 1), Swift.min(Swift.max(c.y, 0), 1), Swift.min(Swift.max(c.z, 0), 1))
    }
}
