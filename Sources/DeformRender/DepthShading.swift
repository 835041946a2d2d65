import DeformTensor
import Foundation

/// Depth maps seen by Unsup3D's camera (card "Camera"): a pinhole with the principal point at the
/// image centre (pixel centres on integers, `c_u = (W-1)/2`, `c_v = (H-1)/2`) and focal length
/// `f = (W-1) / (2 tan(θ_FOV/2))`; a pixel `p = (u, v, 1)` with depth `d` is the camera-frame
/// point `d K⁻¹ p` (OpenCV axes: x right, y down, z forward). Everything here is composed from
/// engine ops, so it is differentiable with respect to the depth.
public enum DepthMaps {
    /// Unsup3D's default field of view, 10° (official code defaults).
    public static let defaultFieldOfView: Float = 10

    /// `(f, c_u, c_v)` for a `width × height` image and a field of view in degrees.
    public static func intrinsics(width: Int, height: Int, fieldOfView: Float = defaultFieldOfView) -> (f: Float, cu: Float, cv: Float) {
        let f = Float(width - 1) / (2 * Foundation.tan(fieldOfView * .pi / 360))
        return (f, Float(width - 1) / 2, Float(height - 1) / 2)
    }

    /// `K⁻¹ p` for every pixel: `[H, W, 3]` with z = 1.
    public static func pixelRays(width: Int, height: Int, fieldOfView: Float = defaultFieldOfView) -> Tensor {
        let (f, cu, cv) = intrinsics(width: width, height: height, fieldOfView: fieldOfView)
        var values = [Float](repeating: 1, count: width * height * 3)
        for v in 0..<height {
            for u in 0..<width {
                values[(v * width + u) * 3] = (Float(u) - cu) / f
                values[(v * width + u) * 3 + 1] = (Float(v) - cv) / f
            }
        }
        return Tensor(values, shape: [height, width, 3])
    }

    /// Camera-frame points `[N, H, W, 3]` of depth maps `[N, H, W]`.
    public static func backproject(_ depth: Tensor, fieldOfView: Float = defaultFieldOfView) throws -> Tensor {
        guard depth.rank == 3, depth.shape[1] >= 1, depth.shape[2] >= 1 else {
            throw TensorError.shapeMismatch(op: "DepthMaps.backproject", expected: "depth maps [N, H, W]", found: "\(depth.shape)")
        }
        return depth.unsqueezed(-1) * pixelRays(width: depth.shape[2], height: depth.shape[1], fieldOfView: fieldOfView)
    }

    /// Unit normals `[N, H, W, 3]` of depth maps `[N, H, W]` (card "Normals"): with `P` the
    /// back-projected points, `t_u = P[u+1, v] - P[u-1, v]`, `t_v = P[u, v+1] - P[u, v-1]` and
    /// `n ∝ t_u × t_v`, so a fronto-parallel plane has n = (0, 0, 1). The source leaves the image
    /// border open; here the border pixels copy the normal of their nearest interior pixel.
    /// - Throws: ``TensorError`` for maps smaller than 3×3 or a non-finite depth.
    public static func normals(_ depth: Tensor, fieldOfView: Float = defaultFieldOfView) throws -> Tensor {
        let op = "DepthMaps.normals"
        guard depth.rank == 3, depth.shape[1] >= 3, depth.shape[2] >= 3 else {
            throw TensorError.shapeMismatch(op: op, expected: "depth maps [N, H, W] with H, W >= 3", found: "\(depth.shape)")
        }
        guard depth.isFinite else { throw TensorError.nonFinite(op: op, message: "depth contains NaN or infinity") }
        let h = depth.shape[1], w = depth.shape[2]
        let p = try backproject(depth, fieldOfView: fieldOfView)
        let tu = p.narrow(axis: 2, start: 2, length: w - 2) - p.narrow(axis: 2, start: 0, length: w - 2)     // [N, H, W-2, 3]
        let tv = p.narrow(axis: 1, start: 2, length: h - 2) - p.narrow(axis: 1, start: 0, length: h - 2)     // [N, H-2, W, 3]
        let a = tu.narrow(axis: 1, start: 1, length: h - 2), b = tv.narrow(axis: 2, start: 1, length: w - 2) // interior
        func c(_ t: Tensor, _ i: Int) -> Tensor { t.narrow(axis: 3, start: i, length: 1) }
        let cross = Tensor.concat([c(a, 1) * c(b, 2) - c(a, 2) * c(b, 1),
                                   c(a, 2) * c(b, 0) - c(a, 0) * c(b, 2),
                                   c(a, 0) * c(b, 1) - c(a, 1) * c(b, 0)], axis: 3)
        let unit = cross / Tensor.maximum(cross.norm(axes: [3], keepDims: true), Tensor(1e-12))
        return replicatePad(replicatePad(unit, axis: 1), axis: 2)
    }

    /// Repeats the first and last entries along `axis` once on each side.
    static func replicatePad(_ x: Tensor, axis: Int) -> Tensor {
        let n = x.shape[axis]
        return Tensor.concat([x.narrow(axis: axis, start: 0, length: 1), x, x.narrow(axis: axis, start: n - 1, length: 1)], axis: axis)
    }
}

/// Unsup3D's shading model Λ (card "Shading").
public enum Shading {
    /// Lambertian ambient + diffuse shading: `J = (k_s + k_d max(0, ⟨l, n⟩)) · a` with the light
    /// direction `l = (l_x, l_y, 1) / ‖(l_x, l_y, 1)‖`.
    /// - Parameters:
    ///   - albedo: `[N, C, H, W]`.
    ///   - normals: `[N, H, W, 3]` unit normals (``DepthMaps/normals(_:fieldOfView:)``).
    ///   - light: `[N, 4]` = `(k_s, k_d, l_x, l_y)` per image.
    /// - Returns: the shaded image `[N, C, H, W]` and the shading `[N, 1, H, W]`.
    public static func lambertian(albedo: Tensor, normals: Tensor, light: Tensor) throws -> (image: Tensor, shading: Tensor) {
        let op = "Shading.lambertian"
        guard albedo.rank == 4 else { throw TensorError.shapeMismatch(op: op, expected: "albedo [N, C, H, W]", found: "\(albedo.shape)") }
        let n = albedo.shape[0], h = albedo.shape[2], w = albedo.shape[3]
        guard normals.shape == [n, h, w, 3] else {
            throw TensorError.shapeMismatch(op: op, expected: "normals [\(n), \(h), \(w), 3]", found: "\(normals.shape)")
        }
        guard light.shape == [n, 4] else { throw TensorError.shapeMismatch(op: op, expected: "light [\(n), 4]", found: "\(light.shape)") }
        let ks = light.narrow(axis: 1, start: 0, length: 1), kd = light.narrow(axis: 1, start: 1, length: 1)
        let direction = Tensor.concat([light.narrow(axis: 1, start: 2, length: 2), Tensor.ones([n, 1])], axis: 1)
        let unit = direction / direction.norm(axes: [1], keepDims: true)                               // [N, 3]
        let cosine = (normals * unit.reshaped([n, 1, 1, 3])).sum(axes: [3]).relu()                      // [N, H, W]
        let shading = (ks.reshaped([n, 1, 1]) + kd.reshaped([n, 1, 1]) * cosine).unsqueezed(1)         // [N, 1, H, W]
        return (albedo * shading, shading)
    }
}

/// Unsup3D's reprojection Π (card "Warp"): the canonical depth map, seen as a mesh of its pixel
/// grid, is moved by the viewpoint (R, T) and rendered into the actual view with the mesh
/// rasteriser; every rendered pixel carries the canonical pixel it came from, which is the
/// inverse-warp grid that resamples the canonical image (as the official code does with its mesh
/// renderer and `grid_sample`). Differentiable with respect to the depth, R and T.
public enum DepthWarp {
    /// Two triangles per cell of an `H × W` pixel grid (vertex `v * W + u`), flat `[Int32]`.
    public static func gridFaces(width: Int, height: Int) -> [Int32] {
        var faces: [Int32] = []
        faces.reserveCapacity(6 * Swift.max(width - 1, 0) * Swift.max(height - 1, 0))
        for v in 0..<(height - 1) {
            for u in 0..<(width - 1) {
                let a = Int32(v * width + u), b = a + 1, c = a + Int32(width), d = c + 1
                faces += [a, c, b, b, c, d]
            }
        }
        return faces
    }

    /// What ``warp(depth:rotation:translation:fieldOfView:)`` returns, per image.
    public struct Result {
        /// Depth in the actual view `[N, H, W]`, 0 where the mesh does not cover the pixel.
        public var depth: Tensor
        /// 1 where the mesh covers the pixel, `[N, H, W]` (no gradient).
        public var mask: Tensor
        /// For each pixel of the actual view, the canonical pixel it shows, as `gridSample`
        /// coordinates in [-1, 1] with `alignCorners: true` (Unsup3D's pixel centres are on
        /// integers), `[N, H, W, 2]`; 0 where uncovered.
        public var grid: Tensor
    }

    /// Warps canonical depth maps `[N, H, W]` into the views `X ↦ R X + T` (R `[N, 3, 3]`, T
    /// `[N, 3]`, camera-frame points as columns).
    public static func warp(depth: Tensor, rotation: Tensor, translation: Tensor,
                            fieldOfView: Float = DepthMaps.defaultFieldOfView) throws -> Result {
        let op = "DepthWarp.warp"
        guard depth.rank == 3, depth.shape[1] >= 2, depth.shape[2] >= 2 else {
            throw TensorError.shapeMismatch(op: op, expected: "depth maps [N, H, W] with H, W >= 2", found: "\(depth.shape)")
        }
        let n = depth.shape[0], h = depth.shape[1], w = depth.shape[2]
        guard rotation.shape == [n, 3, 3], translation.shape == [n, 3] else {
            throw TensorError.shapeMismatch(op: op, expected: "rotation [\(n), 3, 3] and translation [\(n), 3]",
                                            found: "\(rotation.shape) and \(translation.shape)")
        }
        let (f, cu, cv) = DepthMaps.intrinsics(width: w, height: h, fieldOfView: fieldOfView)
        let points = try DepthMaps.backproject(depth, fieldOfView: fieldOfView).reshaped([n, h * w, 3])
        let moved = points.matmul(rotation.transposed()) + translation.unsqueezed(1)       // (R X + T) as rows
        let z = moved.narrow(axis: 2, start: 2, length: 1)
        // The rasteriser puts pixel centres at i + 0.5, Unsup3D at i.
        let xy = moved.narrow(axis: 2, start: 0, length: 2) / z * f + Tensor([cu + 0.5, cv + 0.5])
        let screen = Tensor.concat([xy, z], axis: 2)
        var canonical = [Float](repeating: 0, count: h * w * 2)
        for v in 0..<h {
            for u in 0..<w {
                canonical[2 * (v * w + u)] = 2 * Float(u) / Float(w - 1) - 1
                canonical[2 * (v * w + u) + 1] = 2 * Float(v) / Float(h - 1) - 1
            }
        }
        let attributes = Tensor(canonical, shape: [h * w, 2])
        let faces = gridFaces(width: w, height: h)
        var depths: [Tensor] = [], masks: [Tensor] = [], grids: [Tensor] = []
        for i in 0..<n {
            let rendered = try MeshRasterizer.render(screenVertices: screen.narrow(axis: 0, start: i, length: 1).squeezed([0]),
                                                     faces: faces, attributes: attributes, width: w, height: h)
            depths.append(rendered.depth)
            masks.append(rendered.mask)
            grids.append(rendered.image)
        }
        return Result(depth: Tensor.stack(depths), mask: Tensor.stack(masks), grid: Tensor.stack(grids))
    }
}
