import DeformTensor
import Foundation

// The per-Gaussian half of the splatting renderer: EWA projection of a 3D Gaussian to a 2D
// screen-space Gaussian (Zwicker et al. 2001, as 3DGS uses it), the view-dependent colour from
// spherical harmonics, and the hand-written backward of both.

/// A 3D Gaussian after projection: everything the tile compositor needs.
struct ProjectedSplat {
    /// Screen-space mean (pixels, the image spanning `[0, width] × [0, height]`).
    var u: Float = 0, v: Float = 0
    /// The inverse 2D covariance ("conic") `[[a, b], [b, c]]`: the Gaussian's value at offset d
    /// from the mean is `exp(-(a dx² + c dy²)/2 - b dx dy)`.
    var a: Float = 0, b: Float = 0, c: Float = 0
    var opacity: Float = 0
    var red: Float = 0, green: Float = 0, blue: Float = 0
    /// Camera depth of the mean.
    var z: Float = 0
    /// Half-extents of the region where the Gaussian's alpha can reach the compositor's threshold.
    var extentX: Float = 0, extentY: Float = 0
    /// The same region as `dᵀ conic d ≤ reach` (+∞ without an alpha threshold).
    var reach: Float = .infinity
    var visible = false
}

/// The camera as the splatting kernels use it: world-to-camera rotation rows, centre, intrinsics
/// and the clamp of the Jacobian's view angles.
struct SplatCamera {
    var w0: SIMD3<Float>, w1: SIMD3<Float>, w2: SIMD3<Float>
    var center: SIMD3<Float>
    var fx: Float, fy: Float, cx: Float, cy: Float
    var width: Int, height: Int
    /// Bounds on x/z and y/z used inside the projection's Jacobian: 15% of the image beyond each
    /// edge. Far off-screen Gaussians otherwise get huge, meaningless footprints (3DGS clamps the
    /// same way, at 1.3 × the half field of view).
    var xLow: Float, xHigh: Float, yLow: Float, yHigh: Float

    init(_ camera: PinholeCamera) {
        let m = camera.cameraToWorld
        // World → camera is Rᵀ(p - c): the rows of Rᵀ are the columns of R.
        w0 = SIMD3(m[0], m[4], m[8]); w1 = SIMD3(m[1], m[5], m[9]); w2 = SIMD3(m[2], m[6], m[10])
        center = SIMD3(m[3], m[7], m[11])
        (fx, fy, cx, cy) = (camera.fx, camera.fy, camera.cx, camera.cy)
        (width, height) = (camera.width, camera.height)
        let w = Float(camera.width), h = Float(camera.height)
        xLow = -(cx + 0.15 * w) / fx; xHigh = (w - cx + 0.15 * w) / fx
        yLow = -(cy + 0.15 * h) / fy; yHigh = (h - cy + 0.15 * h) / fy
    }

    @inline(__always) func toCamera(_ p: SIMD3<Float>) -> SIMD3<Float> {
        let d = p - center
        return SIMD3((w0 * d).sum(), (w1 * d).sum(), (w2 * d).sum())
    }
}

/// What the compositor's thresholds imply for the projection (see ``SplatOptions``).
struct SplatLimits {
    var near: Float, far: Float, blur: Float, minAlpha: Float
}

// MARK: - Spherical harmonics

/// Numbers the spherical-harmonics basis is evaluated with: `Float` for the forward, ``Dual3``
/// for the derivative with respect to the view direction.
protocol SHNumber {
    static func + (l: Self, r: Self) -> Self
    static func - (l: Self, r: Self) -> Self
    static func * (l: Self, r: Self) -> Self
    static func * (l: Float, r: Self) -> Self
}

extension Float: SHNumber {}

/// A value with its gradient with respect to (x, y, z): forward-mode differentiation of the
/// polynomial basis, so the backward needs no hand-expanded derivative table.
struct Dual3: SHNumber {
    var value: Float
    var grad: SIMD3<Float>
    static func + (l: Dual3, r: Dual3) -> Dual3 { Dual3(value: l.value + r.value, grad: l.grad + r.grad) }
    static func - (l: Dual3, r: Dual3) -> Dual3 { Dual3(value: l.value - r.value, grad: l.grad - r.grad) }
    static func * (l: Dual3, r: Dual3) -> Dual3 { Dual3(value: l.value * r.value, grad: l.value * r.grad + r.value * l.grad) }
    static func * (l: Float, r: Dual3) -> Dual3 { Dual3(value: l * r.value, grad: l * r.grad) }
}

enum SphericalHarmonics {
    /// Calls `body(k, Y_k(x, y, z))` for the `count` (1, 4, 9 or 16) real spherical harmonics of a
    /// unit direction, in the order and sign convention of 3DGS checkpoints (so their `f_dc` /
    /// `f_rest` coefficients render the same here).
    @inline(__always)
    static func basis<S: SHNumber>(_ x: S, _ y: S, _ z: S, count: Int, _ body: (Int, S) -> Void) {
        body(0, 0.28209479177387814 * (x * x + y * y + z * z))      // = C0 on the unit sphere
        if count <= 1 { return }
        let c1: Float = 0.4886025119029199
        body(1, -c1 * y); body(2, c1 * z); body(3, -c1 * x)
        if count <= 4 { return }
        let xx = x * x, yy = y * y, zz = z * z
        body(4, 1.0925484305920792 * (x * y))
        body(5, -1.0925484305920792 * (y * z))
        body(6, 0.31539156525252005 * (2 * zz - xx - yy))
        body(7, -1.0925484305920792 * (x * z))
        body(8, 0.5462742152960396 * (xx - yy))
        if count <= 9 { return }
        body(9, -0.5900435899266435 * (y * (3 * xx - yy)))
        body(10, 2.890611442640554 * (x * y * z))
        body(11, -0.4570457994644658 * (y * (4 * zz - xx - yy)))
        body(12, 0.3731763325901154 * (z * (2 * zz - 3 * xx - 3 * yy)))
        body(13, -0.4570457994644658 * (x * (4 * zz - xx - yy)))
        body(14, 1.445305721320277 * (z * (xx - yy)))
        body(15, -0.5900435899266435 * (x * (xx - 3 * yy)))
    }
}

// MARK: - Projection

/// Reads one Gaussian's parameters from the input buffers.
struct SplatInputs {
    var means: UnsafePointer<Float>
    var scales: UnsafePointer<Float>
    /// 1 (isotropic) or 3.
    var scaleStride: Int
    /// `nil`: no rotation (axis-aligned or isotropic Gaussians).
    var quaternions: UnsafePointer<Float>?
    var opacities: UnsafePointer<Float>
    var colors: UnsafePointer<Float>
    /// 1 for plain RGB, else the number of spherical-harmonic coefficients per channel.
    var shCount: Int
    var isSH: Bool

    @inline(__always) func mean(_ i: Int) -> SIMD3<Float> { SIMD3(means[3 * i], means[3 * i + 1], means[3 * i + 2]) }
    @inline(__always) func scale(_ i: Int) -> SIMD3<Float> {
        scaleStride == 1 ? SIMD3(repeating: scales[i]) : SIMD3(scales[3 * i], scales[3 * i + 1], scales[3 * i + 2])
    }
    /// The rotation's columns, from the normalised quaternion (w, x, y, z).
    @inline(__always) func rotationColumns(_ i: Int) -> (SIMD3<Float>, SIMD3<Float>, SIMD3<Float>) {
        guard let q = quaternions else { return (SIMD3(1, 0, 0), SIMD3(0, 1, 0), SIMD3(0, 0, 1)) }
        var r = SIMD4(q[4 * i], q[4 * i + 1], q[4 * i + 2], q[4 * i + 3])
        r /= (r * r).sum().squareRoot()
        let (w, x, y, z) = (r[0], r[1], r[2], r[3])
        return (SIMD3(1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)),
                SIMD3(2 * (x * y - w * z), 1 - 2 * (x * x + z * z), 2 * (y * z + w * x)),
                SIMD3(2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)))
    }
}

enum SplatProjection {
    /// Projects Gaussian `i`. Culled (``ProjectedSplat/visible`` false) when its mean is outside
    /// [near, far], its opacity cannot reach the alpha threshold, or its 2D covariance is singular.
    @inline(__always)
    static func forward(_ i: Int, _ input: SplatInputs, _ cam: SplatCamera, _ lim: SplatLimits) -> ProjectedSplat {
        var out = ProjectedSplat()
        let p = input.mean(i)
        let t = cam.toCamera(p)
        guard t.z >= lim.near, t.z <= lim.far else { return out }
        let opacity = input.opacities[i]
        guard opacity > lim.minAlpha else { return out }
        // Σ_camera = V Vᵀ with V = W R diag(s) (W world → camera rotation).
        let s = input.scale(i)
        let (r0, r1, r2) = input.rotationColumns(i)
        let m0 = r0 * s[0], m1 = r1 * s[1], m2 = r2 * s[2]          // columns of R diag(s)
        // Rows of V: V[k][j] = w_k · m_j.
        let v0 = SIMD3((cam.w0 * m0).sum(), (cam.w0 * m1).sum(), (cam.w0 * m2).sum())
        let v1 = SIMD3((cam.w1 * m0).sum(), (cam.w1 * m1).sum(), (cam.w1 * m2).sum())
        let v2 = SIMD3((cam.w2 * m0).sum(), (cam.w2 * m1).sum(), (cam.w2 * m2).sum())
        // Jacobian of the perspective projection, J = [[fx/z, 0, -fx x'/z], [0, fy/z, -fy y'/z]].
        let iz = 1 / t.z
        let xr = Swift.min(Swift.max(t.x * iz, cam.xLow), cam.xHigh)
        let yr = Swift.min(Swift.max(t.y * iz, cam.yLow), cam.yHigh)
        let j00 = cam.fx * iz, j02 = -cam.fx * xr * iz, j11 = cam.fy * iz, j12 = -cam.fy * yr * iz
        // P = J V, so the 2D covariance is P Pᵀ (+ the low-pass blur on the diagonal).
        let p0 = j00 * v0 + j02 * v2, p1 = j11 * v1 + j12 * v2
        let ca = (p0 * p0).sum() + lim.blur, cb = (p0 * p1).sum(), cc = (p1 * p1).sum() + lim.blur
        let det = ca * cc - cb * cb
        guard det > 0, det.isFinite else { return out }
        let inv = 1 / det
        out.a = cc * inv; out.b = -cb * inv; out.c = ca * inv
        out.u = cam.fx * t.x * iz + cam.cx
        out.v = cam.fy * t.y * iz + cam.cy
        out.z = t.z
        out.opacity = opacity
        // alpha = o·G ≥ minAlpha ⇔ dᵀ Σ⁻¹ d ≤ 2 ln(o / minAlpha); that ellipse's bounding box is
        // ± sqrt(k² Σ_xx), ± sqrt(k² Σ_yy). A small margin keeps it conservative under rounding.
        if lim.minAlpha > 0 {
            let k2 = 2 * Foundation.log(opacity / lim.minAlpha) * 1.001
            out.extentX = (k2 * ca).squareRoot() + 0.01
            out.extentY = (k2 * cc).squareRoot() + 0.01
            out.reach = k2
        } else {
            out.extentX = .infinity; out.extentY = .infinity
        }
        if input.isSH {
            let dir = p - cam.center
            let n = dir / (dir * dir).sum().squareRoot()
            var rgb = SIMD3<Float>(repeating: 0.5)
            let base = input.colors + i * input.shCount * 3
            SphericalHarmonics.basis(n.x, n.y, n.z, count: input.shCount) { k, y in
                rgb += y * SIMD3(base[3 * k], base[3 * k + 1], base[3 * k + 2])
            }
            rgb = pointwiseMax(rgb, .zero)
            (out.red, out.green, out.blue) = (rgb.x, rgb.y, rgb.z)
        } else {
            (out.red, out.green, out.blue) = (input.colors[3 * i], input.colors[3 * i + 1], input.colors[3 * i + 2])
        }
        out.visible = true
        return out
    }

    /// Gradients of one visible Gaussian's parameters, given the gradients of its projected
    /// quantities: `g` holds ∂L/∂(u, v, a, b, c, opacity, red, green, blue, z) — with `b` the
    /// conic's off-diagonal as it enters the exponent once, `-b dx dy`.
    @inline(__always)
    static func backward(_ i: Int, _ input: SplatInputs, _ cam: SplatCamera, _ lim: SplatLimits,
                         _ g: UnsafePointer<Float>,
                         gMeans: UnsafeMutablePointer<Float>, gScales: UnsafeMutablePointer<Float>,
                         gQuats: UnsafeMutablePointer<Float>?, gOpacities: UnsafeMutablePointer<Float>,
                         gColors: UnsafeMutablePointer<Float>) {
        let p = input.mean(i)
        let t = cam.toCamera(p)
        let s = input.scale(i)
        let (r0, r1, r2) = input.rotationColumns(i)
        let m0 = r0 * s[0], m1 = r1 * s[1], m2 = r2 * s[2]
        let v0 = SIMD3((cam.w0 * m0).sum(), (cam.w0 * m1).sum(), (cam.w0 * m2).sum())
        let v1 = SIMD3((cam.w1 * m0).sum(), (cam.w1 * m1).sum(), (cam.w1 * m2).sum())
        let v2 = SIMD3((cam.w2 * m0).sum(), (cam.w2 * m1).sum(), (cam.w2 * m2).sum())
        let iz = 1 / t.z
        let xq = t.x * iz, yq = t.y * iz
        let xr = Swift.min(Swift.max(xq, cam.xLow), cam.xHigh)
        let yr = Swift.min(Swift.max(yq, cam.yLow), cam.yHigh)
        let j00 = cam.fx * iz, j02 = -cam.fx * xr * iz, j11 = cam.fy * iz, j12 = -cam.fy * yr * iz
        let p0 = j00 * v0 + j02 * v2, p1 = j11 * v1 + j12 * v2
        let ca = (p0 * p0).sum() + lim.blur, cb = (p0 * p1).sum(), cc = (p1 * p1).sum() + lim.blur
        let inv = 1 / (ca * cc - cb * cb)
        let inv2 = inv * inv

        let (gu, gv, gA, gB, gC, gO) = (g[0], g[1], g[2], g[3], g[4], g[5])
        let gz = g[9]
        // Conic (A, B, C) = (c, -b, a)/det → covariance (a, b, c).
        let ga = -gA * cc * cc * inv2 + gB * cb * cc * inv2 - gC * cb * cb * inv2
        let gb = gA * 2 * cb * cc * inv2 - gB * (inv + 2 * cb * cb * inv2) + gC * 2 * ca * cb * inv2
        let gc = -gA * cb * cb * inv2 + gB * cb * ca * inv2 - gC * ca * ca * inv2
        // (a, b, c) = (p0·p0, p0·p1, p1·p1).
        let gp0 = 2 * ga * p0 + gb * p1, gp1 = gb * p0 + 2 * gc * p1
        // p0 = j00 v0 + j02 v2, p1 = j11 v1 + j12 v2.
        let gj00 = (gp0 * v0).sum(), gj02 = (gp0 * v2).sum(), gj11 = (gp1 * v1).sum(), gj12 = (gp1 * v2).sum()
        let gv0 = j00 * gp0, gv1 = j11 * gp1, gv2 = j02 * gp0 + j12 * gp1
        // Camera point: through the Jacobian, the projected mean and the depth.
        var gt = SIMD3<Float>(0, 0, gz)
        gt.x += gu * cam.fx * iz
        gt.y += gv * cam.fy * iz
        gt.z += -gu * cam.fx * t.x * iz * iz - gv * cam.fy * t.y * iz * iz
        gt.z += -gj00 * cam.fx * iz * iz - gj11 * cam.fy * iz * iz
        // j02 = -fx x'/z with x' = x/z unless clamped (then x' is a constant).
        if xq == xr {
            gt.x += -gj02 * cam.fx * iz * iz
            gt.z += gj02 * 2 * cam.fx * t.x * iz * iz * iz
        } else {
            gt.z += gj02 * cam.fx * xr * iz * iz
        }
        if yq == yr {
            gt.y += -gj12 * cam.fy * iz * iz
            gt.z += gj12 * 2 * cam.fy * t.y * iz * iz * iz
        } else {
            gt.z += gj12 * cam.fy * yr * iz * iz
        }
        // t = W (p - c): ∂L/∂p = Wᵀ ∂L/∂t.
        var gp = cam.w0 * gt.x + cam.w1 * gt.y + cam.w2 * gt.z
        // V = W M: ∂L/∂M = Wᵀ ∂L/∂V, column by column (column j of V is (v0[j], v1[j], v2[j])).
        func column(_ j: Int) -> SIMD3<Float> { cam.w0 * gv0[j] + cam.w1 * gv1[j] + cam.w2 * gv2[j] }
        let gm0 = column(0), gm1 = column(1), gm2 = column(2)
        // M = R diag(s).
        let gs = SIMD3((gm0 * r0).sum(), (gm1 * r1).sum(), (gm2 * r2).sum())
        if input.scaleStride == 1 {
            gScales[i] = gs.sum()
        } else {
            gScales[3 * i] = gs.x; gScales[3 * i + 1] = gs.y; gScales[3 * i + 2] = gs.z
        }
        if let q = input.quaternions, let gQuats {
            let gr0 = gm0 * s[0], gr1 = gm1 * s[1], gr2 = gm2 * s[2]       // ∂L/∂R, by columns
            var raw = SIMD4(q[4 * i], q[4 * i + 1], q[4 * i + 2], q[4 * i + 3])
            let norm = (raw * raw).sum().squareRoot()
            raw /= norm
            let (w, x, y, z) = (raw[0], raw[1], raw[2], raw[3])
            // ∂R/∂(w, x, y, z) of the unit-quaternion rotation, contracted with ∂L/∂R.
            let gw = 2 * (gr0.y * z - gr0.z * y - gr1.x * z + gr1.z * x + gr2.x * y - gr2.y * x)
            let gx = 2 * (gr0.y * y + gr0.z * z + gr1.x * y - 2 * gr1.y * x + gr1.z * w + gr2.x * z - gr2.y * w - 2 * gr2.z * x)
            let gy = 2 * (-2 * gr0.x * y + gr0.y * x - gr0.z * w + gr1.x * x + gr1.z * z + gr2.x * w + gr2.y * z - 2 * gr2.z * y)
            let gzq = 2 * (-2 * gr0.x * z + gr0.y * w + gr0.z * x - gr1.x * w - 2 * gr1.y * z + gr1.z * y + gr2.x * x + gr2.y * y)
            let gUnit = SIMD4(gw, gx, gy, gzq)
            // Through the normalisation q / |q|.
            let gq = (gUnit - raw * (gUnit * raw).sum()) / norm
            for k in 0..<4 { gQuats[4 * i + k] = gq[k] }
        }
        gOpacities[i] = gO
        let gRGB = SIMD3(g[6], g[7], g[8])
        if input.isSH {
            let dir = p - cam.center
            let len = (dir * dir).sum().squareRoot()
            let n = dir / len
            let base = input.colors + i * input.shCount * 3
            // The clamp at 0 passes no gradient where it is active.
            var rgb = SIMD3<Float>(repeating: 0.5)
            SphericalHarmonics.basis(n.x, n.y, n.z, count: input.shCount) { k, y in
                rgb += y * SIMD3(base[3 * k], base[3 * k + 1], base[3 * k + 2])
            }
            let gRaw = gRGB.replacing(with: 0, where: rgb .< 0)
            let gBase = gColors + i * input.shCount * 3
            var gDir = SIMD3<Float>.zero
            let dx = Dual3(value: n.x, grad: SIMD3(1, 0, 0)), dy = Dual3(value: n.y, grad: SIMD3(0, 1, 0)),
                dz = Dual3(value: n.z, grad: SIMD3(0, 0, 1))
            SphericalHarmonics.basis(dx, dy, dz, count: input.shCount) { k, y in
                let coefficient = SIMD3(base[3 * k], base[3 * k + 1], base[3 * k + 2])
                gBase[3 * k] = gRaw.x * y.value; gBase[3 * k + 1] = gRaw.y * y.value; gBase[3 * k + 2] = gRaw.z * y.value
                gDir += (gRaw * coefficient).sum() * y.grad
            }
            // n = dir / |dir|.
            gp += (gDir - n * (gDir * n).sum()) / len
        } else {
            gColors[3 * i] = gRGB.x; gColors[3 * i + 1] = gRGB.y; gColors[3 * i + 2] = gRGB.z
        }
        gMeans[3 * i] = gp.x; gMeans[3 * i + 1] = gp.y; gMeans[3 * i + 2] = gp.z
    }
}
