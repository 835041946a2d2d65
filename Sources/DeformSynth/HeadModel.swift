import DeformTensor
import Foundation

/// A small procedural morphable model of a face-like head, the stand-in for the Basel Face Model
/// renders that Unsup3D evaluates on.
///
/// The surface is a deformed ellipsoid parametrised by azimuth θ (0 at the front of the face,
/// positive towards the model's +x) and elevation φ (positive upwards). The model frame has the
/// camera's axes (x right, y down, z away from the viewer), so the face looks towards −z, and its
/// mirror plane is x = 0, which maps θ to −θ.
///
/// Every feature of the symmetric part — the ellipsoid's axes, brow, eye sockets, nose, cheeks,
/// jaw, chin, lips, forehead, ears — is a function of |θ|, so the shape with the asymmetric
/// perturbations switched off is exactly mirror-symmetric. The asymmetric part (random bumps, a
/// sideways nose deviation) is added on top and scaled by one number, ``HeadIdentity/asymmetry``.
public enum HeadModel {
    /// Names of the symmetric shape modes, in the order of ``HeadIdentity/shape``. Each
    /// coefficient is a standard-normal draw (clamped to ±2.5) times the configured variation.
    public static let shapeModes: [String] = [
        "head_width", "head_height", "head_depth", "brow_ridge", "eye_socket_depth", "eye_spacing",
        "eye_height", "nose_length", "nose_projection", "nose_width", "cheek_fullness", "cheekbone_height",
        "jaw_width", "chin_projection", "lip_fullness", "mouth_width", "forehead_bulge", "ear_size",
    ]

    /// Largest radial displacement (relative to the ellipsoid, model units) that one asymmetric bump
    /// can add; the sum of all bumps is at most ``asymmetricBumpCount`` times this, times
    /// ``HeadIdentity/asymmetry``.
    public static let maxBumpAmplitude: Float = 0.035
    /// Number of random asymmetric bumps on the face.
    public static let asymmetricBumpCount = 6
    /// Largest sideways deviation of the nose (radians of azimuth) at asymmetry 1.
    public static let maxNoseDeviation: Float = 0.03

    /// The resolved feature layout of one identity: positions and sizes of the facial features in
    /// (|θ|, φ), shared by the shape and the albedo so that eyes are painted in their sockets.
    /// Angles are radians, amplitudes are radial displacements in model units, `axes` are the
    /// ellipsoid's semi-axes and `jaw` the fraction by which the lower face narrows.
    public struct Layout: Sendable {
        public var axes: SIMD3<Float>
        public var brow: Float
        public var eyeSocket: Float
        public var eyeTheta: Float
        public var eyePhi: Float
        public var noseTop: Float
        public var noseTip: Float
        public var noseProjection: Float
        public var noseWidth: Float
        public var cheek: Float
        public var cheekbonePhi: Float
        public var jaw: Float
        public var chin: Float
        public var lips: Float
        public var mouthPhi: Float
        public var mouthWidth: Float
        public var forehead: Float
        public var ear: Float

        public init(shape c: [Float]) {
            precondition(c.count == HeadModel.shapeModes.count, "HeadModel.Layout: expected \(HeadModel.shapeModes.count) coefficients")
            axes = SIMD3(0.74 * (1 + 0.07 * c[0]), 1.0 * (1 + 0.05 * c[1]), 0.86 * (1 + 0.05 * c[2]))
            brow = 0.045 + 0.02 * c[3]
            eyeSocket = 0.07 + 0.02 * c[4]
            eyeTheta = 0.36 + 0.03 * c[5]
            eyePhi = 0.14 + 0.03 * c[6]
            noseTop = eyePhi + 0.02
            noseTip = -0.12 - 0.035 * c[7]
            noseProjection = 0.2 + 0.05 * c[8]
            noseWidth = 0.075 + 0.012 * c[9]
            cheek = 0.035 + 0.02 * c[10]
            cheekbonePhi = eyePhi - 0.17 + 0.03 * c[11]
            jaw = 0.2 - 0.06 * c[12]
            chin = 0.06 + 0.03 * c[13]
            lips = 0.028 + 0.01 * c[14]
            mouthPhi = noseTip - 0.2
            mouthWidth = 0.17 + 0.025 * c[15]
            forehead = 0.03 + 0.02 * c[16]
            ear = 0.09 + 0.03 * c[17]
        }
    }

    /// `exp(e)` for `e <= 0`, flushed to 0 below -30 (where exp is < 1e-13): far from a feature the
    /// libm call would take its slow underflow path, which dominated the generator's profile.
    @inline(__always) static func expNeg(_ e: Float) -> Float { e < -30 ? 0 : Foundation.exp(e) }
    @inline(__always) static func gauss(_ d: Float, _ s: Float) -> Float { expNeg(-0.5 * (d * d) / (s * s)) }
    @inline(__always) static func bump(_ dt: Float, _ dp: Float, _ st: Float, _ sp: Float) -> Float {
        expNeg(-0.5 * ((dt * dt) / (st * st) + (dp * dp) / (sp * sp)))
    }
    @inline(__always) static func smoothstep(_ e0: Float, _ e1: Float, _ x: Float) -> Float {
        let t = Swift.min(Swift.max((x - e0) / (e1 - e0), 0), 1)
        return t * t * (3 - 2 * t)
    }

    /// The symmetric radial displacement at (|θ| = `a`, φ) (model units, added to 1).
    static func symmetricRelief(_ a: Float, _ p: Float, _ l: Layout) -> Float {
        var r: Float = 0
        // Brow ridge above each eye, joined over the nose (glabella).
        r += l.brow * gauss(a - l.eyeTheta, 0.2) * gauss(p - (l.eyePhi + 0.13), 0.05)
        r += 0.6 * l.brow * bump(a, p - (l.eyePhi + 0.1), 0.12, 0.05)
        // Eye sockets with the eyeball inside them.
        r -= l.eyeSocket * bump(a - l.eyeTheta, p - l.eyePhi, 0.12, 0.075)
        r += 0.55 * l.eyeSocket * bump(a - l.eyeTheta, p - l.eyePhi, 0.07, 0.04)
        r += noseRidge(a, p, l)
        r += 0.25 * l.noseProjection * bump(a - 1.15 * l.noseWidth, p - (l.noseTip - 0.01), 0.04, 0.03)
        // Cheeks and cheekbones.
        r += l.cheek * bump(a - 0.55, p + 0.12, 0.18, 0.14)
        r += 0.03 * bump(a - 0.62, p - l.cheekbonePhi, 0.16, 0.05)
        // Lips (upper and lower) with the groove between them, and the chin.
        r += l.lips * bump(a / l.mouthWidth, p - (l.mouthPhi + 0.035), 0.7, 0.025)
        r += 1.1 * l.lips * bump(a / l.mouthWidth, p - (l.mouthPhi - 0.04), 0.6, 0.03)
        r -= 0.012 * bump(a / l.mouthWidth, p - l.mouthPhi, 0.8, 0.008)
        r += l.chin * bump(a, p - (l.mouthPhi - 0.27), 0.2, 0.09)
        // Forehead and ears.
        r += l.forehead * bump(a, p - 0.62, 0.5, 0.22)
        r += l.ear * bump(a - 1.5708, p - (l.eyePhi - 0.1), 0.1, 0.2)
        return r
    }

    /// The nose: a ridge from the bridge to the tip, widening towards the nostril wings; `t` is
    /// the azimuth from the ridge line.
    @inline(__always)
    static func noseRidge(_ t: Float, _ p: Float, _ l: Layout) -> Float {
        let span = l.noseTop - l.noseTip
        let along = Swift.min(Swift.max((l.noseTop - p) / span, 0), 1)
        let height: Float = p >= l.noseTip ? Foundation.pow(along, 1.4) * (p <= l.noseTop ? 1 : gauss(p - l.noseTop, 0.03))
                                          : gauss(p - l.noseTip, 0.035)
        return l.noseProjection * height * gauss(t, l.noseWidth * (0.45 + 0.55 * along))
    }

    /// A point of the surface (model units) at (θ, φ), with `sinA`, `cosA` = sin |θ|, cos |θ|
    /// computed once per column so that mirrored columns give exactly mirrored points.
    @inline(__always)
    static func point(theta: Float, phi: Float, sinA: Float, cosA: Float, sinP: Float, cosP: Float, identity h: HeadIdentity) -> SIMD3<Float> {
        let l = h.layout
        let a = Swift.abs(theta)
        var r = 1 + symmetricRelief(a, phi, l)
        if h.asymmetry != 0 {
            // The deviated nose replaces the symmetric one: subtract the centred ridge, add the shifted one.
            let dev = h.asymmetry * h.noseDeviation
            if dev != 0 { r += noseRidge(theta - dev, phi, l) - noseRidge(a, phi, l) }
            for b in h.bumps {
                r += h.asymmetry * b.amplitude * bump(theta - b.theta, phi - b.phi, b.width, b.width)
            }
        }
        // Narrower, shallower lower face; the jaw mode sets how much.
        let low = smoothstep(-0.1, -1.3, phi)
        let sx = 1 - l.jaw * low, sz = 1 - 0.12 * low
        let side: Float = theta < 0 ? -1 : 1
        return SIMD3(side * l.axes.x * sx * sinA * cosP * r, -l.axes.y * sinP * r, -l.axes.z * sz * cosA * cosP * r)
    }
}

/// A random asymmetric bump of the shape (model units and radians).
public struct AsymmetricBump: Codable, Sendable, Equatable {
    public var theta: Float
    public var phi: Float
    public var width: Float
    public var amplitude: Float
}

/// A round dark spot of the albedo (a mole or blemish) drawn on one side only.
public struct AlbedoSpot: Codable, Sendable, Equatable {
    public var theta: Float
    public var phi: Float
    public var radius: Float
    public var darkness: Float
}

/// One sampled head: shape coefficients, asymmetric perturbations and appearance.
public struct HeadIdentity: Sendable {
    /// Coefficients of ``HeadModel/shapeModes``.
    public var shape: [Float]
    /// Scale of every asymmetric perturbation, shape and albedo (0: exactly symmetric).
    public var asymmetry: Float
    public var bumps: [AsymmetricBump]
    /// Sideways nose deviation at asymmetry 1 (radians of azimuth).
    public var noseDeviation: Float
    public var spots: [AlbedoSpot]
    /// Azimuth of the hair parting (the hairline is shifted on one side of it).
    public var parting: Float
    /// Base colours (linear RGB) of skin, hair (also the brows), iris and lips.
    public var skin: SIMD3<Float>
    public var hair: SIMD3<Float>
    public var iris: SIMD3<Float>
    public var lip: SIMD3<Float>
    /// Hairline elevation at the front (radians).
    public var hairline: Float
    /// Brow thickness (radians of elevation).
    public var browThickness: Float
    /// Seeds of the fine texture noise.
    public var noiseSeed: UInt32
    public let layout: HeadModel.Layout

    public init(shape: [Float], asymmetry: Float, bumps: [AsymmetricBump], noseDeviation: Float, spots: [AlbedoSpot],
                parting: Float, skin: SIMD3<Float>, hair: SIMD3<Float>, iris: SIMD3<Float>, lip: SIMD3<Float>,
                hairline: Float, browThickness: Float, noiseSeed: UInt32) {
        self.shape = shape
        self.asymmetry = asymmetry
        self.bumps = bumps
        self.noseDeviation = noseDeviation
        self.spots = spots
        self.parting = parting
        self.skin = skin
        self.hair = hair
        self.iris = iris
        self.lip = lip
        self.hairline = hairline
        self.browThickness = browThickness
        self.noiseSeed = noiseSeed
        layout = HeadModel.Layout(shape: shape)
    }

    /// Draws an identity. `variation` scales the symmetric shape modes, `asymmetry` the
    /// perturbations (which are drawn either way, so switching them off changes nothing else).
    public init(draw rng: inout SynthRandom, variation: Float, asymmetry: Float) {
        let shape = (0..<HeadModel.shapeModes.count).map { _ in Swift.min(Swift.max(rng.normal(), -2.5), 2.5) * variation }
        let bumps = (0..<HeadModel.asymmetricBumpCount).map { _ in
            AsymmetricBump(theta: rng.uniform(-1.1, 1.1), phi: rng.uniform(-0.7, 0.6), width: rng.uniform(0.08, 0.2),
                           amplitude: rng.uniform(-1, 1) * HeadModel.maxBumpAmplitude)
        }
        let noseDeviation = rng.uniform(-1, 1) * HeadModel.maxNoseDeviation
        let spots = (0..<(2 + rng.int(4))).map { _ in
            AlbedoSpot(theta: rng.uniform(-1.2, 1.2), phi: rng.uniform(-0.7, 0.5), radius: rng.uniform(0.012, 0.03),
                       darkness: rng.uniform(0.25, 0.55))
        }
        let parting = rng.uniform(-0.35, 0.35)
        // Skin between a light and a dark tone, with a little random warmth.
        let tone = rng.uniform(0, 1)
        let light = SIMD3<Float>(0.9, 0.72, 0.62), dark = SIMD3<Float>(0.42, 0.27, 0.19)
        var skin = light + (dark - light) * tone
        skin.x *= rng.uniform(0.96, 1.04); skin.z *= rng.uniform(0.92, 1.05)
        let hairPalette: [SIMD3<Float>] = [[0.08, 0.06, 0.05], [0.25, 0.15, 0.08], [0.45, 0.3, 0.15], [0.7, 0.55, 0.3],
                                           [0.5, 0.2, 0.08], [0.55, 0.53, 0.5]]
        let hair = hairPalette[rng.int(hairPalette.count)] * rng.uniform(0.85, 1.15)
        let irisPalette: [SIMD3<Float>] = [[0.3, 0.18, 0.08], [0.15, 0.3, 0.5], [0.25, 0.35, 0.2], [0.12, 0.08, 0.05]]
        let iris = irisPalette[rng.int(irisPalette.count)]
        let lip = skin * SIMD3<Float>(rng.uniform(0.85, 1.0), rng.uniform(0.55, 0.7), rng.uniform(0.6, 0.75))
        let hairline = rng.uniform(0.5, 0.75)
        let browThickness = rng.uniform(0.014, 0.026)
        let noiseSeed = UInt32(truncatingIfNeeded: rng.int(1 << 30))
        self.init(shape: shape, asymmetry: asymmetry, bumps: bumps, noseDeviation: noseDeviation, spots: spots, parting: parting,
                  skin: skin, hair: hair, iris: iris, lip: lip, hairline: hairline, browThickness: browThickness, noiseSeed: noiseSeed)
    }

    /// The same identity with a different asymmetry scale.
    public func with(asymmetry: Float) -> HeadIdentity {
        var h = self
        h.asymmetry = asymmetry
        return h
    }
}

/// A triangle mesh of a head on a (θ, φ) grid, in model units.
public struct HeadMesh: Sendable {
    /// Columns of the grid (azimuth steps); column `columns` duplicates column 0 at the back seam.
    public let columns: Int
    /// Rows of the grid (elevation steps); rows 0 and `rows` are the poles.
    public let rows: Int
    /// Vertex `j * (columns + 1) + k` at elevation row j, azimuth column k.
    public var vertices: [SIMD3<Float>]
    /// Unit outward normals per vertex.
    public var normals: [SIMD3<Float>]
    /// (θ, φ) per vertex, the texture coordinates of the albedo.
    public var angles: [SIMD2<Float>]
    /// Vertex indices, 3 per face.
    public var faces: [Int32]

    /// Azimuths of the columns, denser at the front (the face) than at the back; mirrored columns
    /// k and `columns - k` get exactly opposite angles.
    static func columnAngles(_ m: Int) -> [Float] {
        var t = [Float](repeating: 0, count: m + 1)
        for k in 0...(m / 2) {
            let s = -1 + 2 * Float(k) / Float(m)
            let theta = Float.pi * (0.4 * s + 0.6 * s * s * s)
            t[k] = theta
            t[m - k] = -theta
        }
        t[m / 2] = 0
        return t
    }

    /// Elevations of the rows, pole to pole, denser over the face.
    static func rowAngles(_ n: Int) -> [Float] {
        (0...n).map { j in
            let s = -1 + 2 * Float(j) / Float(n)
            return Float.pi / 2 * (0.55 * s + 0.45 * s * s * s)
        }
    }

    /// Builds the mesh of `identity` with `columns` (even) × `rows` cells.
    public init(identity: HeadIdentity, columns: Int = 96, rows: Int = 72) {
        precondition(columns >= 4 && columns % 2 == 0 && rows >= 4, "HeadMesh: columns must be even and >= 4, rows >= 4")
        self.columns = columns
        self.rows = rows
        let thetas = HeadMesh.columnAngles(columns), phis = HeadMesh.rowAngles(rows)
        let stride = columns + 1
        var v = [SIMD3<Float>](repeating: .zero, count: stride * (rows + 1))
        var uv = [SIMD2<Float>](repeating: .zero, count: v.count)
        let sinA = thetas.map { Foundation.sin(Swift.abs($0)) }, cosA = thetas.map { Foundation.cos(Swift.abs($0)) }
        for j in 0...rows {
            let p = phis[j]
            let sinP = Foundation.sin(p), cosP = j == 0 || j == rows ? 0 : Foundation.cos(p)
            for k in 0...columns {
                v[j * stride + k] = HeadModel.point(theta: thetas[k], phi: p, sinA: sinA[k], cosA: cosA[k], sinP: sinP, cosP: cosP,
                                                    identity: identity)
                uv[j * stride + k] = SIMD2(thetas[k], p)
            }
        }
        // Normals from central differences on the grid (wrapping around the seam); at the poles
        // every vertex coincides, so the normal is the vertical axis.
        var n = [SIMD3<Float>](repeating: .zero, count: v.count)
        for j in 0...rows {
            for k in 0...columns {
                let i = j * stride + k
                if j == 0 { n[i] = SIMD3(0, -1, 0); continue }
                if j == rows { n[i] = SIMD3(0, 1, 0); continue }
                let kp = k == columns ? 1 : k + 1, km = k == 0 ? columns - 1 : k - 1
                let tt = v[j * stride + kp] - v[j * stride + km]
                let tp = v[(j + 1) * stride + k] - v[(j - 1) * stride + k]
                var c = SIMD3(tt.y * tp.z - tt.z * tp.y, tt.z * tp.x - tt.x * tp.z, tt.x * tp.y - tt.y * tp.x)
                // Outward: the grid's orientation is fixed, but make sure against the radial direction.
                if (c * v[i]).sum() < 0 { c = -c }
                let len = (c * c).sum().squareRoot()
                n[i] = len > 0 ? c / len : SIMD3(0, 0, -1)
            }
        }
        // Two triangles per cell, the diagonal mirrored between the halves so that the piecewise
        // linear surface is itself mirror-symmetric.
        var f: [Int32] = []
        f.reserveCapacity(6 * columns * rows)
        for j in 0..<rows {
            for k in 0..<columns {
                let a = Int32(j * stride + k), b = a + 1, c = a + Int32(stride), d = c + 1
                if k < columns / 2 { f += [a, c, d, a, d, b] } else { f += [a, c, b, b, c, d] }
            }
        }
        vertices = v
        normals = n
        angles = uv
        faces = f
    }
}
