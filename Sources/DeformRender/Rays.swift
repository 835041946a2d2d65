import DeformTensor
import Foundation

/// A pinhole camera in the OpenCV convention: camera axes x right, y down, z forward (into the
/// scene); a camera point `(x, y, z)` lands on pixel `(fx x/z + cx, fy y/z + cy)`, where the image
/// spans `[0, width] × [0, height]` and pixel `(i, j)` has its centre at `(i + 0.5, j + 0.5)`
/// (nerfstudio's convention; a calibration that puts pixel centres on integers, as OpenCV's
/// does, adds 0.5 to cx and cy).
///
/// The pose is camera-to-world `[R | t]` (3×4, row-major): world = R · camera + t. nerfstudio,
/// Blender and NeRF's `transforms.json` store OpenGL camera axes (x right, y up, z backward); the
/// two differ by negating the second and third columns of R (``openGLCameraToWorld``,
/// ``init(width:height:fx:fy:cx:cy:openGLCameraToWorld:)``).
public struct PinholeCamera: Codable, Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var fx: Float
    public var fy: Float
    public var cx: Float
    public var cy: Float
    /// Camera-to-world `[R | t]`, 12 values row-major, OpenCV camera axes.
    public var cameraToWorld: [Float]

    /// - Throws: ``TensorError`` for a non-positive size, a zero or non-finite focal length, or a
    ///   pose that is not 12 finite values.
    public init(width: Int, height: Int, fx: Float, fy: Float, cx: Float, cy: Float,
                cameraToWorld: [Float] = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]) throws {
        let op = "PinholeCamera"
        guard width > 0, height > 0 else {
            throw TensorError.invalidArgument(op: op, message: "image size must be positive, got \(width)x\(height)")
        }
        guard fx.isFinite, fy.isFinite, fx != 0, fy != 0, cx.isFinite, cy.isFinite else {
            throw TensorError.invalidArgument(op: op, message: "focal lengths must be finite and non-zero and the principal point finite, got fx \(fx), fy \(fy), cx \(cx), cy \(cy)")
        }
        guard cameraToWorld.count == 12, cameraToWorld.allSatisfy(\.isFinite) else {
            throw TensorError.invalidArgument(op: op, message: "cameraToWorld must be 12 finite values ([R | t] row-major), got \(cameraToWorld.count) values")
        }
        (self.width, self.height, self.fx, self.fy, self.cx, self.cy) = (width, height, fx, fy, cx, cy)
        self.cameraToWorld = cameraToWorld
    }

    /// A camera with square pixels, the principal point at the image centre and the given
    /// vertical field of view in degrees.
    public init(width: Int, height: Int, verticalFieldOfView degrees: Float,
                cameraToWorld: [Float] = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]) throws {
        guard degrees > 0 && degrees < 180 else {
            throw TensorError.invalidArgument(op: "PinholeCamera", message: "field of view must be in (0, 180) degrees, got \(degrees)")
        }
        let f = Float(height) / 2 / Foundation.tan(degrees * .pi / 360)
        try self.init(width: width, height: height, fx: f, fy: f, cx: Float(width) / 2, cy: Float(height) / 2,
                      cameraToWorld: cameraToWorld)
    }

    /// From an OpenGL-axes camera-to-world pose (x right, y up, z backward), as stored by
    /// nerfstudio / NeRF `transforms.json` (its top 3×4 rows).
    public init(width: Int, height: Int, fx: Float, fy: Float, cx: Float, cy: Float, openGLCameraToWorld: [Float]) throws {
        try self.init(width: width, height: height, fx: fx, fy: fy, cx: cx, cy: cy,
                      cameraToWorld: PinholeCamera.flipYZColumns(openGLCameraToWorld))
    }

    /// The pose with OpenGL camera axes (second and third columns of R negated).
    public var openGLCameraToWorld: [Float] { PinholeCamera.flipYZColumns(cameraToWorld) }

    static func flipYZColumns(_ m: [Float]) -> [Float] {
        guard m.count == 12 else { return m }
        var out = m
        for row in 0..<3 { out[row * 4 + 1] = -m[row * 4 + 1]; out[row * 4 + 2] = -m[row * 4 + 2] }
        return out
    }

    /// The camera centre in world coordinates.
    public var center: [Float] { [cameraToWorld[3], cameraToWorld[7], cameraToWorld[11]] }

    /// World points `[N, 3]` → camera-frame points `[N, 3]` (OpenCV axes).
    public func toCamera(_ points: Tensor) -> Tensor {
        precondition(points.rank == 2 && points.shape[1] == 3, "PinholeCamera.toCamera: expected [N, 3], found \(points.shape)")
        let m = cameraToWorld
        let rotation = Tensor([m[0], m[1], m[2], m[4], m[5], m[6], m[8], m[9], m[10]], shape: [3, 3])
        return (points - Tensor(center)).matmul(rotation)          // Rᵀ (p - t), as rows
    }

    /// Pixel coordinates `[N, 2]` and depths `[N]` (camera z) of world points `[N, 3]`. Points
    /// with depth ≤ 0 are behind the camera: their pixels are meaningless; mask them with the
    /// depth.
    public func project(_ points: Tensor) -> (pixels: Tensor, depth: Tensor) {
        let cam = toCamera(points)
        let z = cam.narrow(axis: 1, start: 2, length: 1)
        let xy = cam.narrow(axis: 1, start: 0, length: 2) / z
        return (xy * Tensor([fx, fy]) + Tensor([cx, cy]), z.squeezed([1]))
    }

    /// Rays through the given pixel positions `[N, 2]` (continuous coordinates; pixel centres are
    /// at `i + 0.5`). Directions are in world coordinates with a camera-z component of 1, so the
    /// ray parameter t is the depth along the optical axis (as NeRF's rays); normalise them for
    /// Euclidean distances.
    public func rays(through pixels: Tensor) -> RayBundle {
        precondition(pixels.rank == 2 && pixels.shape[1] == 2, "PinholeCamera.rays: expected [N, 2], found \(pixels.shape)")
        let n = pixels.shape[0]
        let m = cameraToWorld
        let dirs = Tensor(uninitializedShape: [n, 3]), origins = Tensor(uninitializedShape: [n, 3])
        let pp = pixels.dataPointer, pd = dirs.dataPointer, po = origins.dataPointer
        for i in 0..<n {
            let x = (pp[2 * i] - cx) / fx, y = (pp[2 * i + 1] - cy) / fy
            for row in 0..<3 {
                pd[3 * i + row] = m[row * 4] * x + m[row * 4 + 1] * y + m[row * 4 + 2]
                po[3 * i + row] = m[row * 4 + 3]
            }
        }
        return RayBundle(origins: origins, directions: dirs)
    }

    /// The centres of the given flat pixel indices (`j * width + i`) as `[N, 2]`.
    public func pixelCenters(_ indices: [Int]) -> Tensor {
        Tensor(indices.flatMap { [Float($0 % width) + 0.5, Float($0 / width) + 0.5] }, shape: [indices.count, 2])
    }

    /// One ray per pixel, row by row (index `j * width + i`).
    public func rays() -> RayBundle { rays(through: pixelCenters(Array(0..<(width * height)))) }

    /// `count` rays through pixels drawn uniformly with replacement (a training batch); also
    /// returns their flat indices, to gather the target colours.
    public func randomRays(count: Int, rng: inout RandomGenerator) -> (rays: RayBundle, indices: [Int]) {
        let indices = (0..<count).map { _ in rng.int(below: width * height) }
        return (rays(through: pixelCenters(indices)), indices)
    }
}

/// Rays `o + t d`: origins and directions `[N, 3]` in world coordinates.
public struct RayBundle {
    public var origins: Tensor
    public var directions: Tensor

    public init(origins: Tensor, directions: Tensor) {
        precondition(origins.rank == 2 && origins.shape[1] == 3 && directions.shape == origins.shape,
                     "RayBundle: origins and directions must both be [N, 3], found \(origins.shape), \(directions.shape)")
        self.origins = origins
        self.directions = directions
    }

    public var count: Int { origins.shape[0] }

    /// The points at depths `t` `[N, S]`: `[N, S, 3]`.
    public func points(at t: Tensor) -> Tensor {
        origins.unsqueezed(1) + t.unsqueezed(-1) * directions.unsqueezed(1)
    }

    /// Near and far ray parameters where each ray enters and leaves the axis-aligned box
    /// `[min, max]` (slab method), clamped to `t ≥ 0`, and whether it hits the box at all; rays
    /// that miss get near = far = 0.
    public func intersectBox(min lo: [Float], max hi: [Float]) -> (near: Tensor, far: Tensor, hit: [Bool]) {
        precondition(lo.count == 3 && hi.count == 3, "RayBundle.intersectBox: min and max need 3 values")
        let n = count
        var near = [Float](repeating: 0, count: n), far = [Float](repeating: 0, count: n), hit = [Bool](repeating: false, count: n)
        let po = origins.dataPointer, pd = directions.dataPointer
        for i in 0..<n {
            var t0: Float = 0, t1 = Float.infinity
            for a in 0..<3 {
                let o = po[3 * i + a], d = pd[3 * i + a]
                if d == 0 {
                    if o < lo[a] || o > hi[a] { t0 = 1; t1 = 0 }
                    continue
                }
                var ta = (lo[a] - o) / d, tb = (hi[a] - o) / d
                if ta > tb { swap(&ta, &tb) }
                t0 = Swift.max(t0, ta); t1 = Swift.min(t1, tb)
            }
            if t0 < t1 { near[i] = t0; far[i] = t1; hit[i] = true }
        }
        return (Tensor(near), Tensor(far), hit)
    }

    /// NeRF's normalised device coordinates for forward-facing scenes (NeRF Appendix C), written
    /// for OpenCV axes: a camera point `(x, y, z)` with `z ≥ near` maps to
    /// `(2 fx/W · x/z, 2 fy/H · y/z, 1 - 2 near/z)`, so depths `[near, ∞)` fill `[-1, 1)` and a
    /// ray becomes the segment `o' + s d'`, s ∈ [0, 1]. The rays must be in the reference
    /// camera's frame (identity pose) and point forward (d_z > 0); origins are first moved to the
    /// plane z = near.
    public func ndc(camera: PinholeCamera, near: Float) -> RayBundle {
        let n = count
        let origins2 = Tensor(uninitializedShape: [n, 3]), dirs2 = Tensor(uninitializedShape: [n, 3])
        let po = origins.dataPointer, pd = directions.dataPointer, qo = origins2.dataPointer, qd = dirs2.dataPointer
        let ax = 2 * camera.fx / Float(camera.width), ay = 2 * camera.fy / Float(camera.height)
        for i in 0..<n {
            let dx = pd[3 * i], dy = pd[3 * i + 1], dz = pd[3 * i + 2]
            let t = (near - po[3 * i + 2]) / dz
            let ox = po[3 * i] + t * dx, oy = po[3 * i + 1] + t * dy, oz = po[3 * i + 2] + t * dz
            qo[3 * i] = ax * ox / oz
            qo[3 * i + 1] = ay * oy / oz
            qo[3 * i + 2] = 1 - 2 * near / oz
            qd[3 * i] = ax * (dx / dz - ox / oz)
            qd[3 * i + 1] = ay * (dy / dz - oy / oz)
            qd[3 * i + 2] = 2 * near / oz
        }
        return RayBundle(origins: origins2, directions: dirs2)
    }
}
