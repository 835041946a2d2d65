import Foundation
import DeformTensor

/// Rotations in 3D: rotation matrices, axis-angle (exp/log), quaternions, the 6D representation,
/// random rotations and projection of arbitrary matrices onto SO(3).
///
/// Conventions used throughout DeformGeometry:
/// - A rotation `R` (`[..., 3, 3]`) acts on column vectors, `x' = R x`. Point sets are stored as
///   rows (`[..., P, 3]`), so rotating a point set is `X Rᵀ` (``Camera/transform(_:rotation:translation:)``).
/// - Axis-angle `ω` (`[..., 3]`) is the rotation by `|ω|` radians about `ω / |ω|`
///   (right-handed), `R = exp([ω]×)`.
/// - Quaternions are `(w, x, y, z)` with the scalar first (`[..., 4]`), Hamilton convention, and
///   `R(q)` equal to the rotation by `2 acos(w)` about `(x, y, z)`.
///
/// All functions are batched over leading dimensions and differentiable (hand-written VJPs, each
/// gradient-checked in the tests) unless stated otherwise.
public enum SO3 {}

// MARK: - Skew matrices and cross products

extension SO3 {
    /// The skew-symmetric matrix `[v]×` (`[..., 3]` → `[..., 3, 3]`), with `[v]× x = v × x`.
    public static func hat(_ v: Tensor) -> Tensor {
        itemKernel("SO3.hat", v, inTrailing: [3], outTrailing: [3, 3], forward: { p, o in
            M3.hat(V3(Double(p[0]), Double(p[1]), Double(p[2]))).store(o)
        }, backward: { _, g, o in
            let v = M3(g).vee
            o[0] = Float(v.x); o[1] = Float(v.y); o[2] = Float(v.z)
        })
    }

    /// `a × b` over the last dimension (size 3); the other dimensions broadcast.
    public static func cross(_ a: Tensor, _ b: Tensor) -> Tensor {
        _ = batchShape(a, trailing: [3], op: "SO3.cross", name: "a")
        _ = batchShape(b, trailing: [3], op: "SO3.cross", name: "b")
        let shape: [Int]
        do { shape = try broadcastShapes(a.shape, b.shape, op: "SO3.cross") }
        catch let e as TensorError { fail(e) } catch { fatalError("\(error)") }
        let ae = a.expanded(to: shape), be = b.expanded(to: shape)
        let outs = customOp("SO3.cross", inputs: [ae, be], forward: { xs in
            [crossRaw(xs[0], xs[1])]
        }, backward: { xs, _, g in
            // c = a × b: ā = b × c̄, b̄ = c̄ × a.
            [crossRaw(xs[1], g[0]), crossRaw(g[0], xs[0])]
        })
        return outs[0]
    }

    static func crossRaw(_ a: Tensor, _ b: Tensor) -> Tensor {
        let c = Tensor(uninitializedShape: a.shape)
        let pa = a.dataPointer, pb = b.dataPointer, pc = c.dataPointer
        Threads.parallelRanges(a.count / 3, minChunk: 4096) { r in
            for i in r {
                let x = pa + 3 * i, y = pb + 3 * i, z = pc + 3 * i
                z[0] = x[1] * y[2] - x[2] * y[1]
                z[1] = x[2] * y[0] - x[0] * y[2]
                z[2] = x[0] * y[1] - x[1] * y[0]
            }
        }
        return c
    }
}

// MARK: - Axis-angle

extension SO3 {
    /// The exponential map: axis-angle `[..., 3]` → rotation matrices `[..., 3, 3]` by Rodrigues'
    /// formula `R = I + (sin θ/θ) K + ((1 - cos θ)/θ²) K²`, `K = [ω]×`, `θ = |ω|`.
    ///
    /// Evaluated in Double with Taylor series below θ = 0.01, so values and gradients are accurate
    /// at and near the identity (the gradient at ω = 0 is that of `I + [ω]×`).
    public static func exp(_ axisAngle: Tensor) -> Tensor {
        itemKernel("SO3.exp", axisAngle, inTrailing: [3], outTrailing: [3, 3], forward: { p, o in
            rodrigues(V3(Double(p[0]), Double(p[1]), Double(p[2]))).store(o)
        }, backward: { p, g, o in
            let w = V3(Double(p[0]), Double(p[1]), Double(p[2]))
            let G = M3(g)
            let t2 = dot(w, w)
            let k = rodriguesCoefficients(t2)
            // R = (1 - bθ²) I + a K + b ωωᵀ. With ⟨G, [u]×⟩ = u·vee(G):
            // ω̄ = a vee(G) + b ((G + Gᵀ) ω - 2 tr(G) ω) + ω (c ⟨G, K⟩ + d ⟨G, K²⟩).
            let gk = dot(w, G.vee)
            let gk2 = dot(w, G * w) - t2 * G.trace
            let sym = G * w + G.transposed * w
            let r = k.a * G.vee + k.b * (sym - 2 * G.trace * w) + (k.c * gk + k.d * gk2) * w
            o[0] = Float(r.x); o[1] = Float(r.y); o[2] = Float(r.z)
        })
    }

    /// The logarithm map: rotation matrices `[..., 3, 3]` → axis-angle `[..., 3]` with angle in
    /// `[0, π]`.
    ///
    /// The angle is `θ = atan2(|v|/2, (tr R - 1)/2)` with `v = vee(R - Rᵀ)`, accurate over the
    /// whole range (unlike `acos`), and the axis is `v/|v|`. Within 0.01 rad of π the axis comes
    /// from the symmetric part `(R + Rᵀ)/2 = cos θ I + (1 - cos θ) n nᵀ` instead (its sign from `v`),
    /// because `v` vanishes there. Inputs need not be exactly orthogonal: the formula above defines
    /// the function, and the gradient is its exact derivative everywhere except in that band near π,
    /// where the gradient of the `v`-based formula is used (exact along SO(3)); at exactly π, where
    /// the logarithm is not differentiable (ω and -ω are both valid), the gradient is zero.
    public static func log(_ rotation: Tensor) -> Tensor {
        itemKernel("SO3.log", rotation, inTrailing: [3, 3], outTrailing: [3], forward: { p, o in
            let w = logarithm(M3(p))
            o[0] = Float(w.x); o[1] = Float(w.y); o[2] = Float(w.z)
        }, backward: { p, g, o in
            let R = M3(p)
            let v = R.vee, gw = V3(Double(g[0]), Double(g[1]), Double(g[2]))
            let s = dot(v, v).squareRoot() / 2, c = (R.trace - 1) / 2
            var rb = M3(r0: .zero, r1: .zero, r2: .zero)
            if s > 1e-12 || c > 0 {
                // ω = g(s, c) v with g = θ/(2s); h = (∂g/∂s)/s; ∂g/∂c = -1/(2(s² + c²)).
                let (gs, h) = logScale(s: s, c: c)
                let vg = dot(v, gw)
                let vbar = gs * gw + (vg * h / 4) * v
                let tbar = vg * (-1 / (2 * (s * s + c * c))) / 2
                rb.r2.y += vbar.x; rb.r1.z -= vbar.x
                rb.r0.z += vbar.y; rb.r2.x -= vbar.y
                rb.r1.x += vbar.z; rb.r0.y -= vbar.z
                rb.r0.x += tbar; rb.r1.y += tbar; rb.r2.z += tbar
            }
            rb.store(o)
        })
    }

    /// `g = θ/(2s)` and `h = (∂g/∂s)/s` with `θ = atan2(s, c)`; series in `x = s/c` when `s ≪ c`.
    @inline(__always) static func logScale(s: Double, c: Double) -> (g: Double, h: Double) {
        if c > 0 && s < 1e-2 * c {
            // atan(x)/x = 1 - x²/3 + x⁴/5 - x⁶/7; g = φ(x)/(2c), h = (φ'(x)/x)/(2c³).
            let x2 = (s / c) * (s / c)
            let phi = 1 - x2 / 3 + x2 * x2 / 5 - x2 * x2 * x2 / 7
            let dphi = -2.0 / 3 + 4 * x2 / 5 - 6 * x2 * x2 / 7
            return (phi / (2 * c), dphi / (2 * c * c * c))
        }
        let theta = Foundation.atan2(s, c)
        return (theta / (2 * s), (c * s / (s * s + c * c) - theta) / (2 * s * s * s))
    }

    static func logarithm(_ R: M3) -> V3 {
        let v = R.vee
        let s = dot(v, v).squareRoot() / 2, c = (R.trace - 1) / 2
        if c < 0 && s < 1e-2 {
            // Near π: n nᵀ ∝ (R + Rᵀ)/2 - cos θ I; take its largest column.
            let theta = Foundation.atan2(s, c)
            let m = 0.5 * (R + R.transposed) - c * M3.identity
            let d = V3(m[0, 0], m[1, 1], m[2, 2])
            let k = d.x >= d.y && d.x >= d.z ? 0 : (d.y >= d.z ? 1 : 2)
            var n = V3(m[0, k], m[1, k], m[2, k])
            let len = dot(n, n).squareRoot()
            if len == 0 { return .zero }
            n /= len
            if dot(n, v) < 0 { n = -n }
            return theta * n
        }
        // s = 0 with c ≥ 0: the identity (or a symmetric non-rotation), angle 0.
        if s == 0 { return .zero }
        return logScale(s: s, c: c).g * v
    }
}

// MARK: - Quaternions

extension SO3 {
    /// Quaternions `(w, x, y, z)` `[..., 4]` → rotation matrices `[..., 3, 3]`.
    ///
    /// The quaternion need not be unit: `R = P(q)/|q|²` with `P` the homogeneous quadratic form,
    /// which equals the usual formula for `q/|q|`. The gradient is therefore orthogonal to `q`.
    public static func fromQuaternion(_ q: Tensor) -> Tensor {
        itemKernel("SO3.fromQuaternion", q, inTrailing: [4], outTrailing: [3, 3], forward: { p, o in
            quaternionMatrix(Double(p[0]), Double(p[1]), Double(p[2]), Double(p[3])).store(o)
        }, backward: { p, g, o in
            let w = Double(p[0]), x = Double(p[1]), y = Double(p[2]), z = Double(p[3])
            let n2 = w * w + x * x + y * y + z * z
            let G = M3(g)
            let R = quaternionMatrix(w, x, y, z)
            var gr = 0.0
            for i in 0..<3 { for j in 0..<3 { gr += G[i, j] * R[i, j] } }
            // ∂⟨G, P⟩/∂q, P the unnormalised form; then q̄ = (∇⟨G,P⟩ - 2 q ⟨G,R⟩)/|q|².
            let pw = 2 * (w * G.trace + x * (G[2, 1] - G[1, 2]) + y * (G[0, 2] - G[2, 0]) + z * (G[1, 0] - G[0, 1]))
            let px = 2 * (x * (G[0, 0] - G[1, 1] - G[2, 2]) + y * (G[0, 1] + G[1, 0]) + z * (G[0, 2] + G[2, 0]) + w * (G[2, 1] - G[1, 2]))
            let py = 2 * (y * (-G[0, 0] + G[1, 1] - G[2, 2]) + x * (G[0, 1] + G[1, 0]) + z * (G[1, 2] + G[2, 1]) + w * (G[0, 2] - G[2, 0]))
            let pz = 2 * (z * (-G[0, 0] - G[1, 1] + G[2, 2]) + x * (G[0, 2] + G[2, 0]) + y * (G[1, 2] + G[2, 1]) + w * (G[1, 0] - G[0, 1]))
            o[0] = Float((pw - 2 * w * gr) / n2); o[1] = Float((px - 2 * x * gr) / n2)
            o[2] = Float((py - 2 * y * gr) / n2); o[3] = Float((pz - 2 * z * gr) / n2)
        })
    }

    static func quaternionMatrix(_ w: Double, _ x: Double, _ y: Double, _ z: Double) -> M3 {
        let n2 = w * w + x * x + y * y + z * z
        let s = n2 > 0 ? 1 / n2 : 0
        return s * M3(r0: V3(w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)),
                      r1: V3(2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)),
                      r2: V3(2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z))
    }

    /// One branch of Shepperd's method: the component recovered from the diagonal (`index`, with
    /// signs of R₀₀, R₁₁, R₂₂ under the square root) and the three recovered from off-diagonal
    /// pairs `R[a][b] + sign·R[b][a]`.
    private struct ShepperdBranch {
        let index: Int
        let signs: V3
        let others: [(component: Int, a: Int, b: Int, sign: Double)]
    }

    private static let shepperd: [ShepperdBranch] = [
        ShepperdBranch(index: 0, signs: V3(1, 1, 1), others: [(1, 2, 1, -1), (2, 0, 2, -1), (3, 1, 0, -1)]),
        ShepperdBranch(index: 1, signs: V3(1, -1, -1), others: [(0, 2, 1, -1), (2, 0, 1, 1), (3, 0, 2, 1)]),
        ShepperdBranch(index: 2, signs: V3(-1, 1, -1), others: [(0, 0, 2, -1), (1, 0, 1, 1), (3, 1, 2, 1)]),
        ShepperdBranch(index: 3, signs: V3(-1, -1, 1), others: [(0, 1, 0, -1), (1, 0, 2, 1), (2, 1, 2, 1)]),
    ]

    /// Shepperd's quaternion before the sign convention: the branch with the largest diagonal term
    /// (for a rotation its square root satisfies r² ≥ 1, so every division is well conditioned),
    /// its square root `r`, and `q`.
    private static func shepperdQuaternion(_ R: M3) -> (branch: ShepperdBranch, r: Double, q: [Double]) {
        let d = [R.trace, R[0, 0], R[1, 1], R[2, 2]]
        var k = 0
        for i in 1..<4 where d[i] > d[k] { k = i }
        let b = shepperd[k]
        let r = Swift.max(1 + b.signs.x * R[0, 0] + b.signs.y * R[1, 1] + b.signs.z * R[2, 2], 0).squareRoot()
        var q = [Double](repeating: 0, count: 4)
        q[b.index] = r / 2
        for e in b.others { q[e.component] = r > 0 ? (R[e.a, e.b] + e.sign * R[e.b, e.a]) / (2 * r) : 0 }
        return (b, r, q)
    }

    /// Rotation matrices `[..., 3, 3]` → unit quaternions `(w, x, y, z)` `[..., 4]` with `w ≥ 0`
    /// (Shepperd's method: the numerically best of four branches per matrix).
    ///
    /// For a non-orthogonal input the result is the branch formula's value (not necessarily unit);
    /// the gradient is that formula's exact derivative. Where `w = 0` exactly the sign convention
    /// makes the map discontinuous (q and -q are the same rotation).
    public static func toQuaternion(_ rotation: Tensor) -> Tensor {
        itemKernel("SO3.toQuaternion", rotation, inTrailing: [3, 3], outTrailing: [4], forward: { p, o in
            let q = shepperdQuaternion(M3(p)).q
            let f: Double = q[0] < 0 ? -1 : 1
            for i in 0..<4 { o[i] = Float(f * q[i]) }
        }, backward: { p, g, o in
            let R = M3(p)
            let (b, r, q) = shepperdQuaternion(R)
            var gr = M3(r0: .zero, r1: .zero, r2: .zero)
            if r > 0 {
                let f: Double = q[0] < 0 ? -1 : 1
                // q_d = r/2; q_j = N_j/(2r) with N_j = R_ab ± R_ba.
                var rbar = f * Double(g[b.index]) / 2
                for e in b.others {
                    let gq = f * Double(g[e.component])
                    rbar -= gq * q[e.component] / r
                    gr[e.a, e.b] += gq / (2 * r)
                    gr[e.b, e.a] += e.sign * gq / (2 * r)
                }
                // r = √(1 + Σ σ_k R_kk): ∂r/∂R_kk = σ_k/(2r).
                gr[0, 0] += b.signs.x * rbar / (2 * r)
                gr[1, 1] += b.signs.y * rbar / (2 * r)
                gr[2, 2] += b.signs.z * rbar / (2 * r)
            }
            gr.store(o)
        })
    }

    /// `q / |q|` over the last dimension (size 4); differentiable.
    public static func normalizeQuaternion(_ q: Tensor) -> Tensor {
        _ = batchShape(q, trailing: [4], op: "SO3.normalizeQuaternion")
        return q / q.norm(axes: [-1], keepDims: true)
    }

    /// Hamilton product `a ⊗ b` of quaternions `(w, x, y, z)`; `R(a ⊗ b) = R(a) R(b)`.
    /// Differentiable (composed from elementwise ops); the leading dimensions broadcast.
    public static func multiplyQuaternions(_ a: Tensor, _ b: Tensor) -> Tensor {
        _ = batchShape(a, trailing: [4], op: "SO3.multiplyQuaternions", name: "a")
        _ = batchShape(b, trailing: [4], op: "SO3.multiplyQuaternions", name: "b")
        let pa = a.split(count: 4, axis: -1), pb = b.split(count: 4, axis: -1)
        let (w1, x1, y1, z1) = (pa[0], pa[1], pa[2], pa[3]), (w2, x2, y2, z2) = (pb[0], pb[1], pb[2], pb[3])
        return Tensor.concat([
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ], axis: -1)
    }
}

// MARK: - 6D representation

extension SO3 {
    /// The continuous 6D representation of Zhou et al. (CVPR 2019, "On the Continuity of Rotation
    /// Representations in Neural Networks"): `[..., 6]` → `[..., 3, 3]`.
    ///
    /// The input holds two 3-vectors `a₁ = x[0..<3]`, `a₂ = x[3..<6]`, which become the first two
    /// **columns** of R by Gram-Schmidt: `b₁ = a₁/|a₁|`, `b₂ = normalize(a₂ - (b₁·a₂) b₁)`,
    /// `b₃ = b₁ × b₂`, `R = [b₁ b₂ b₃]` (as in the paper; PyTorch3D stores them as rows instead,
    /// i.e. its matrix is our `Rᵀ`). Differentiable (composed from engine ops).
    public static func from6D(_ x: Tensor) -> Tensor {
        _ = batchShape(x, trailing: [6], op: "SO3.from6D")
        let a1 = x.narrow(axis: -1, start: 0, length: 3), a2 = x.narrow(axis: -1, start: 3, length: 3)
        let b1 = a1 / a1.norm(axes: [-1], keepDims: true)
        let u2 = a2 - (b1 * a2).sum(axes: [-1], keepDims: true) * b1
        let b2 = u2 / u2.norm(axes: [-1], keepDims: true)
        let b3 = cross(b1, b2)
        return Tensor.stack([b1, b2, b3], axis: -1)
    }

    /// The 6D representation of rotation matrices: their first two columns, `[..., 3, 3]` →
    /// `[..., 6]` (`(R₀₀, R₁₀, R₂₀, R₀₁, R₁₁, R₂₁)`); the inverse of ``from6D(_:)`` on SO(3).
    public static func to6D(_ rotation: Tensor) -> Tensor {
        let batch = batchShape(rotation, trailing: [3, 3], op: "SO3.to6D")
        return rotation.narrow(axis: -1, start: 0, length: 2).transposed().reshaped(batch + [6])
    }
}

// MARK: - Random rotations

extension SO3 {
    /// Uniformly distributed (Haar) random unit quaternions `[shape..., 4]` with `w ≥ 0`, from
    /// normalised 4D Gaussians (whose direction is uniform on the 3-sphere). Seeded, reproducible.
    public static func randomQuaternion(_ shape: [Int], using rng: inout RandomGenerator) -> Tensor {
        let g = rng.normal(shape + [4])
        let n = shapeCount(shape)
        var q = Tensor(uninitializedShape: shape + [4])
        let pg = g.dataPointer
        q.withUnsafeMutableBufferPointer { out in
            for i in 0..<n {
                var v = (0..<4).map { Double(pg[4 * i + $0]) }
                var len = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
                if len == 0 { v = [1, 0, 0, 0]; len = 1 }
                let f = (v[0] < 0 ? -1 : 1) / len
                for k in 0..<4 { out[4 * i + k] = Float(f * v[k]) }
            }
        }
        return q
    }

    /// Uniformly distributed (Haar) random rotation matrices `[shape..., 3, 3]`. Seeded.
    public static func random(_ shape: [Int], using rng: inout RandomGenerator) -> Tensor {
        GradMode.withoutGrad { fromQuaternion(randomQuaternion(shape, using: &rng)) }
    }
}

// MARK: - Projection onto SO(3)

extension SO3 {
    /// The rotation nearest in Frobenius norm to each 3x3 matrix, `U diag(1, 1, det(UVᵀ)) Vᵀ`
    /// (reflections handled). Differentiable; this is ``Linalg/projectToSO3(_:)``.
    /// - Throws: ``TensorError`` for a wrong shape or NaN/Inf input.
    public static func project(_ m: Tensor) throws -> Tensor { try Linalg.projectToSO3(m) }

    /// Completes 2x3 matrices (two approximate rotation **rows**) `[..., 2, 3]` to rotations
    /// `[..., 3, 3]`.
    ///
    /// The result is the rotation nearest to `[m; 0ᵀ]` in Frobenius norm (what
    /// ``Linalg/projectToSO3(_:)`` returns for that matrix). Since the third row contributes
    /// nothing, that is: the two rows replaced by the nearest pair of orthonormal rows
    /// (`Q = (m mᵀ)^(-1/2) m = U Vᵀ` from the thin SVD `m = U Σ Vᵀ`, the projection onto the Stiefel
    /// manifold) and the third row `q₁ × q₂`. This is how PAUL's least-squares 2x3 camera becomes
    /// a rotation (Sec. 2.4.2, step 2); the result is never a reflection.
    ///
    /// Computed per item in Double from the closed-form eigen-decomposition of the 2x2 matrix
    /// `m mᵀ` (no iterative SVD). Differentiable with the polar-factor derivative, whose
    /// denominators are `σ₁ + σ₂`, `σ₁` and `σ₂`: finite for rank-2 input, clamped when `σ₂ → 0`
    /// (where the completion is not unique).
    /// - Throws: ``TensorError`` for a wrong shape or NaN/Inf input.
    public static func completeFromRows(_ m: Tensor) throws -> Tensor {
        _ = try checkedBatchShape(m, trailing: [2, 3], op: "SO3.completeFromRows")
        try checkFinite(m, op: "SO3.completeFromRows")
        return itemKernel("SO3.completeFromRows", m, inTrailing: [2, 3], outTrailing: [3, 3], forward: { p, o in
            let d = stiefelSVD(p)
            M3(r0: d.u1.x * d.v1 + d.u2.x * d.v2, r1: d.u1.y * d.v1 + d.u2.y * d.v2, r2: crossV(d.v1, d.v2)).store(o)
        }, backward: { p, g, o in
            let d = stiefelSVD(p)
            let v3 = crossV(d.v1, d.v2)
            let rb = M3(g)
            // As for the 3x3 polar factor with Ũ = diag(U, 1), s̃ = (σ₁, σ₂, 0), V = [v₁ v₂ v₃]:
            // G = Ũᵀ R̄ V, X_ij = (G_ij - G_ji)/(s̃_i + s̃_j), m̄ = first two rows of Ũ X Vᵀ.
            func ut(_ u: SIMD2<Double>) -> V3 { u.x * rb.r0 + u.y * rb.r1 }     // R̄ᵀ ũ (ũ with zero third entry)
            let a1 = ut(d.u1), a2 = ut(d.u2), a3 = rb.r2
            let floor = 1e-7 * d.s1 + 1e-30
            let x12 = (dot(a1, d.v2) - dot(a2, d.v1)) / Swift.max(d.s1 + d.s2, floor)
            let x13 = (dot(a1, v3) - dot(a3, d.v1)) / Swift.max(d.s1, floor)
            let x23 = (dot(a2, v3) - dot(a3, d.v2)) / Swift.max(d.s2, floor)
            // Rows i = 1, 2 of Σ_j X_ij v_jᵀ (the third row of m is the constant zero).
            let w1 = x12 * d.v2 + x13 * v3, w2 = -x12 * d.v1 + x23 * v3
            let r0 = d.u1.x * w1 + d.u2.x * w2, r1 = d.u1.y * w1 + d.u2.y * w2
            o[0] = Float(r0.x); o[1] = Float(r0.y); o[2] = Float(r0.z)
            o[3] = Float(r1.x); o[4] = Float(r1.y); o[5] = Float(r1.z)
        })
    }

    /// Completes 3x2 matrices (two approximate rotation **columns**) `[..., 3, 2]` to rotations
    /// `[..., 3, 3]`: the nearest rotation to `[m 0]`, i.e. the nearest orthonormal pair of columns
    /// and their cross product as the third column (``completeFromRows(_:)`` of `mᵀ`, transposed).
    /// Differentiable; needs `m` of rank 2.
    /// - Throws: ``TensorError`` for a wrong shape or NaN/Inf input.
    public static func completeFromColumns(_ m: Tensor) throws -> Tensor {
        _ = try checkedBatchShape(m, trailing: [3, 2], op: "SO3.completeFromColumns")
        return try completeFromRows(m.transposed()).transposed()
    }

    /// Thin SVD `m = Σ_k σ_k u_k v_kᵀ` of a row-major 2x3 matrix, in Double: `u_k` from the
    /// closed-form eigenvectors of `m mᵀ` (with `det [u₁ u₂] = +1`), `v_k = mᵀ u_k / σ_k`. For
    /// rank < 2, `v₂` is any unit vector orthogonal to `v₁`.
    static func stiefelSVD(_ p: UnsafePointer<Float>) -> (u1: SIMD2<Double>, u2: SIMD2<Double>, s1: Double, s2: Double, v1: V3, v2: V3) {
        let a = V3(Double(p[0]), Double(p[1]), Double(p[2])), b = V3(Double(p[3]), Double(p[4]), Double(p[5]))
        let pp = dot(a, a), q = dot(a, b), rr = dot(b, b)
        let half = (pp - rr) / 2, rad = (half * half + q * q).squareRoot()
        let l1 = (pp + rr) / 2 + rad
        // Larger root from the sum; the smaller from the determinant, which avoids cancellation.
        let l2 = l1 > 0 ? Swift.max(pp * rr - q * q, 0) / l1 : 0
        // Eigenvector of l1: (l1 - rr, q) or (q, l1 - pp), whichever is longer.
        var e1 = SIMD2(l1 - rr, q), e2 = SIMD2(q, l1 - pp)
        if (e2 * e2).sum() > (e1 * e1).sum() { swap(&e1, &e2) }
        let len = (e1 * e1).sum().squareRoot()
        let u1 = len > 0 ? e1 / len : SIMD2(1, 0)
        let u2 = SIMD2(-u1.y, u1.x)
        let s1 = l1.squareRoot(), s2 = l2.squareRoot()
        var v1 = u1.x * a + u1.y * b, v2 = u2.x * a + u2.y * b
        let n1 = dot(v1, v1).squareRoot()
        v1 = n1 > 0 ? v1 / n1 : V3(1, 0, 0)
        v2 = v2 - dot(v2, v1) * v1
        let n2 = dot(v2, v2).squareRoot()
        if n2 > 1e-12 * Swift.max(n1, 1e-300) {
            v2 /= n2
        } else {
            let e: V3 = Swift.abs(v1.x) < 0.9 ? V3(1, 0, 0) : V3(0, 1, 0)
            v2 = e - dot(e, v1) * v1
            v2 /= dot(v2, v2).squareRoot()
        }
        return (u1, u2, s1, s2, v1, v2)
    }

    /// Geodesic angle between rotations, `|log(R₁ᵀ R₂)|` in radians `[...]` (no gradient; for
    /// tests and evaluation).
    public static func angle(between a: Tensor, and b: Tensor) -> Tensor {
        GradMode.withoutGrad {
            let rel = a.transposed().matmul(b)
            return log(rel).norm(axes: [-1])
        }
    }
}
