import DeformGeometry
import DeformRender
import DeformTensor
import Foundation

/// Errors of the scene generators; the messages name the parameter or file and what was expected.
public struct SynthError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ message: String) { description = message }
}

/// The scene families of `deform synth`.
public enum SynthFamily: String, CaseIterable, Sendable {
    /// Bilaterally symmetric textured heads (Unsup3D's synthetic faces), ``SymmetricScenes``.
    case symmetric
    /// Stereo video of dynamic scenes with per-clip focal length, baseline and disparity offset
    /// (WSVD's web stereo videos), ``StereoScenes``.
    case stereo
    /// Skinned procedural humanoids in motion (videos), ``CharacterScenes``.
    case character
    /// Forward-facing dynamic scenes with deforming objects, one moving camera and held-out
    /// cameras (the NVIDIA dynamic-scene benchmark), ``DynamicScenes``.
    case dynamic

    /// The family called `name`, or an error listing the known ones.
    public static func named(_ name: String) throws -> SynthFamily {
        guard let family = SynthFamily(rawValue: name) else {
            let known = SynthFamily.allCases.map(\.rawValue).joined(separator: ", ")
            throw SynthError("unknown scene family '\(name)'; known families: \(known)")
        }
        return family
    }
}

/// Every parameter of a `symmetric` dataset. Written to `scene.json`; the same configuration and
/// ``generatorVersion`` give byte-identical files.
public struct SymmetricSceneConfig: Codable, Sendable, Equatable {
    /// Bumped whenever a change to the generator changes its output.
    public static let generatorVersion = "symmetric-1"

    public var seed: UInt64 = 0
    /// Number of images over all splits.
    public var count: Int = 1000
    /// Image width and height in pixels.
    public var size: Int = 64
    /// Samples per pixel along each axis for anti-aliasing (odd, so that the centre sample sits on
    /// the pixel centre and gives the point-sampled ground truth).
    public var supersampling: Int = 3
    /// Field of view in degrees; Unsup3D's 10° (official code defaults).
    public var fieldOfView: Float = 10
    /// Depth of the head's centre in the canonical view, which is also the pivot of the viewpoint
    /// rotation (Unsup3D rotates about (0, 0, 1)).
    public var distance: Float = 1
    /// World units per model unit (the head is about 2 model units tall).
    public var headScale: Float = 0.072
    /// Uniform ranges ±max of the viewpoint rotation, degrees.
    public var maxYaw: Float = 60
    public var maxPitch: Float = 20
    public var maxRoll: Float = 10
    /// Uniform range ±max of the x and y translation, world units (0.01 ≈ 3.6 px at 64x64).
    public var maxShift: Float = 0.01
    /// Uniform range ±max of the z translation, world units.
    public var maxDepthShift: Float = 0.03
    /// Range of the ambient coefficient k_s.
    public var ambient: [Float] = [0.2, 0.55]
    /// Range of the diffuse coefficient k_d.
    public var diffuse: [Float] = [0.45, 0.8]
    /// Range ±max of the light direction's l_x and l_y.
    public var maxLightXY: Float = 1
    /// Scale of the symmetric shape modes' standard deviations.
    public var shapeVariation: Float = 1
    /// Scale of the asymmetric perturbations of shape and albedo (0: exactly symmetric heads).
    public var asymmetry: Float = 1
    /// Mesh resolution (azimuth columns, elevation rows).
    public var meshColumns: Int = 96
    public var meshRows: Int = 72
    /// Fractions of train, validation and test images (in that order of the indices).
    public var splits: [Float] = [0.8, 0.1, 0.1]

    public init() {}

    /// Throws a ``SynthError`` naming the first parameter that is out of range.
    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws { try SynthFiles.check(ok, message) }
        try check(count > 0, "count must be positive, got \(count)")
        try check(size > 0, "size must be positive, got \(size)")
        try check(size >= 3, "size must be at least 3 pixels (normals need neighbours), got \(size)")
        try check(size <= 4096, "size must be at most 4096, got \(size)")
        try check(supersampling >= 1 && supersampling % 2 == 1 && supersampling <= 9, "supersampling must be odd and in 1...9, got \(supersampling)")
        try check(fieldOfView > 0 && fieldOfView < 120, "fieldOfView must be in (0, 120) degrees, got \(fieldOfView)")
        try check(distance > 0 && headScale > 0 && headScale < distance, "need 0 < headScale < distance, got \(headScale) and \(distance)")
        for (name, v) in [("maxYaw", maxYaw), ("maxPitch", maxPitch), ("maxRoll", maxRoll)] {
            try check(v >= 0 && v <= 90, "\(name) must be in [0, 90] degrees, got \(v)")
        }
        try check(maxShift >= 0 && maxDepthShift >= 0 && maxDepthShift < distance - 2 * headScale,
                  "translations must be non-negative and keep the head in front of the camera")
        try check(ambient.count == 2 && ambient[0] >= 0 && ambient[0] <= ambient[1], "ambient must be a range [lo, hi] with 0 <= lo <= hi")
        try check(diffuse.count == 2 && diffuse[0] >= 0 && diffuse[0] <= diffuse[1], "diffuse must be a range [lo, hi] with 0 <= lo <= hi")
        try check(maxLightXY >= 0, "maxLightXY must be non-negative")
        try check(shapeVariation >= 0 && shapeVariation <= 3, "shapeVariation must be in [0, 3], got \(shapeVariation)")
        try check(asymmetry >= 0 && asymmetry <= 3, "asymmetry must be in [0, 3], got \(asymmetry)")
        try check(meshColumns >= 8 && meshColumns % 2 == 0 && meshRows >= 8, "meshColumns must be even and >= 8, meshRows >= 8")
        try check(splits.count == 3 && splits.allSatisfy { $0 >= 0 } && abs(splits.reduce(0, +) - 1) < 1e-4,
                  "splits must be three non-negative fractions summing to 1, got \(splits)")
    }

    /// Image index ranges of train, val and test.
    public var splitRanges: [(name: String, range: Range<Int>)] {
        let train = Int((Double(splits[0]) * Double(count)).rounded())
        let val = Swift.min(count - train, Int((Double(splits[1]) * Double(count)).rounded()))
        return [("train", 0..<train), ("val", train..<(train + val)), ("test", (train + val)..<count)]
    }

    /// The split holding image `index`.
    public func split(of index: Int) -> String {
        splitRanges.first { $0.range.contains(index) }?.name ?? "test"
    }

    /// Unsup3D's intrinsics for the image size (pixel centres on integers): `(f, c_u, c_v)`.
    public var intrinsics: (f: Float, cu: Float, cv: Float) {
        DepthMaps.intrinsics(width: size, height: size, fieldOfView: fieldOfView)
    }
}

/// The random parameters of one image.
public struct SymmetricSampleParameters: Sendable {
    public var index: Int
    public var identity: HeadIdentity
    /// Unsup3D's viewpoint w: rotation angles about x, y, z (pitch, yaw, roll; degrees) and the
    /// translation (x, y, z).
    public var view: [Float]
    /// Unsup3D's light l = (k_s, k_d, l_x, l_y) in the canonical frame.
    public var light: [Float]
    /// Background colours at the top and the bottom of the image (a vertical gradient).
    public var backgroundTop: SIMD3<Float>
    public var backgroundBottom: SIMD3<Float>

    /// `R` (row-major 3×3) and `T` of the map from canonical-view to actual-view camera
    /// coordinates, `X ↦ R X + T`, with `R = R_x(pitch) R_y(yaw) R_z(roll)` applied about the pivot
    /// `c = (0, 0, distance)`: `R (X - c) + c + t`.
    public func rotationTranslation(distance: Float) -> (rotation: [Float], translation: [Float]) {
        let d2r = Float.pi / 180
        let (cx, sx) = (Foundation.cos(view[0] * d2r), Foundation.sin(view[0] * d2r))
        let (cy, sy) = (Foundation.cos(view[1] * d2r), Foundation.sin(view[1] * d2r))
        let (cz, sz) = (Foundation.cos(view[2] * d2r), Foundation.sin(view[2] * d2r))
        let rx: [Float] = [1, 0, 0, 0, cx, -sx, 0, sx, cx]
        let ry: [Float] = [cy, 0, sy, 0, 1, 0, -sy, 0, cy]
        let rz: [Float] = [cz, -sz, 0, sz, cz, 0, 0, 0, 1]
        func mul(_ a: [Float], _ b: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: 9)
            for i in 0..<3 {
                for j in 0..<3 {
                    var sum: Float = 0
                    for k in 0..<3 { sum += a[i * 3 + k] * b[k * 3 + j] }
                    out[i * 3 + j] = sum
                }
            }
            return out
        }
        let r = mul(mul(rx, ry), rz)
        var t = [Float](repeating: 0, count: 3)
        for i in 0..<3 {
            let pivot: Float = i == 2 ? distance : 0
            t[i] = pivot + view[3 + i] - r[i * 3 + 2] * distance
        }
        return (r, t)
    }
}

/// One rendered image with its ground truth, at `size × size`, row-major.
public struct SymmetricSample: Sendable {
    public var parameters: SymmetricSampleParameters
    public var size: Int
    /// RGB `[H, W, 3]` in [0, 1]: the anti-aliased render (box filter over the supersamples).
    public var image: [Float]
    /// Depth (camera z) in the actual view at each pixel centre, 0 on background, `[H, W]`.
    public var depth: [Float]
    /// Unit normals in the actual view's camera frame, oriented like
    /// `DepthMaps.normals` ((0, 0, 1) faces the camera), 0 on background, `[H, W, 3]`.
    public var normal: [Float]
    /// 1 where the head covers the pixel centre (exactly `depth > 0`), `[H, W]`.
    public var mask: [UInt8]
    /// Fraction of the pixel's supersamples the head covers, `[H, W]`.
    public var coverage: [Float]
    /// Depth in the canonical (frontal) view, 0 on background, `[H, W]`.
    public var canonicalDepth: [Float]
    /// 1 where the head covers the pixel centre in the canonical view, `[H, W]`.
    public var canonicalMask: [UInt8]
    /// Albedo in the canonical view `[H, W, 3]`: the mean over the pixel's covered supersamples
    /// where the pixel centre is covered, 0 elsewhere.
    public var albedo: [Float]
    /// See ``SymmetricSampleParameters/rotationTranslation(distance:)``.
    public var rotation: [Float]
    public var translation: [Float]
}

/// The `symmetric` family: Unsup3D-style images of procedural heads with full ground truth.
///
/// Image formation follows Unsup3D (card "Model and equations"): the head sits in the canonical
/// view, is shaded there with `J = (k_s + k_d max(0, ⟨l, n⟩)) · a`, `l = (l_x, l_y, 1) / ‖·‖` and
/// the normals oriented like `DepthMaps.normals`, and is then seen from the viewpoint
/// `X ↦ R X + T` through the pinhole of `DepthMaps.intrinsics`. Both views are rasterised with
/// ``MeshRasterizer`` at `supersampling ×` the resolution; the image is the box-filtered render,
/// the geometric ground truth is read at the pixel centres (the centre supersample).
public enum SymmetricScenes {
    /// The random parameters of image `index` (a function of the seed and the index only).
    public static func parameters(index: Int, config: SymmetricSceneConfig) -> SymmetricSampleParameters {
        var rng = SynthRandom(seed: config.seed, stream: UInt64(index))
        let identity = HeadIdentity(draw: &rng, variation: config.shapeVariation, asymmetry: config.asymmetry)
        let view: [Float] = [rng.uniform(-1, 1) * config.maxPitch, rng.uniform(-1, 1) * config.maxYaw, rng.uniform(-1, 1) * config.maxRoll,
                             rng.uniform(-1, 1) * config.maxShift, rng.uniform(-1, 1) * config.maxShift,
                             rng.uniform(-1, 1) * config.maxDepthShift]
        let light: [Float] = [rng.uniform(config.ambient[0], config.ambient[1]), rng.uniform(config.diffuse[0], config.diffuse[1]),
                              rng.uniform(-1, 1) * config.maxLightXY, rng.uniform(-1, 1) * config.maxLightXY]
        let grey = rng.uniform(0.15, 0.85)
        let tint = SIMD3<Float>(rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.15))
        let top = grey * tint, bottom = top * rng.uniform(0.6, 1.2)
        func clamp(_ c: SIMD3<Float>) -> SIMD3<Float> { SIMD3(Swift.min(c.x, 1), Swift.min(c.y, 1), Swift.min(c.z, 1)) }
        return SymmetricSampleParameters(index: index, identity: identity, view: view, light: light,
                                         backgroundTop: clamp(top), backgroundBottom: clamp(bottom))
    }

    /// The head mesh of `identity` placed in the canonical view: world (= canonical camera)
    /// vertices `[V, 3]` and the mesh.
    public static func canonicalMesh(_ identity: HeadIdentity, config: SymmetricSceneConfig) -> (vertices: Tensor, mesh: HeadMesh) {
        let mesh = HeadMesh(identity: identity, columns: config.meshColumns, rows: config.meshRows)
        var flat = [Float](repeating: 0, count: 3 * mesh.vertices.count)
        for (i, v) in mesh.vertices.enumerated() {
            flat[3 * i] = config.headScale * v.x
            flat[3 * i + 1] = config.headScale * v.y
            flat[3 * i + 2] = config.headScale * v.z + config.distance
        }
        return (Tensor(flat, shape: [mesh.vertices.count, 3]), mesh)
    }

    /// The supersampled pinhole camera of a view whose pose maps world (canonical) points to
    /// camera points by `X ↦ R X + T` (`cameraToWorld = [Rᵀ | -Rᵀ T]`). The principal point
    /// `S · W / 2` is the `DepthMaps` one, `(W - 1) / 2`, moved to the rasteriser's convention of
    /// pixel centres at `i + 0.5` and scaled by S.
    public static func camera(config: SymmetricSceneConfig, rotation r: [Float] = [1, 0, 0, 0, 1, 0, 0, 0, 1],
                              translation t: [Float] = [0, 0, 0]) throws -> PinholeCamera {
        let s = Float(config.supersampling), n = config.size * config.supersampling
        let f = config.intrinsics.f * s
        var pose = [Float](repeating: 0, count: 12)
        for i in 0..<3 {
            for j in 0..<3 { pose[i * 4 + j] = r[j * 3 + i] }
            pose[i * 4 + 3] = -(r[0 * 3 + i] * t[0] + r[1 * 3 + i] * t[1] + r[2 * 3 + i] * t[2])
        }
        return try PinholeCamera(width: n, height: n, fx: f, fy: f, cx: Float(n) / 2, cy: Float(n) / 2, cameraToWorld: pose)
    }

    /// Renders image `index` with its ground truth.
    public static func render(index: Int, config: SymmetricSceneConfig) throws -> SymmetricSample {
        try render(parameters(index: index, config: config), config: config)
    }

    /// Renders the given parameters with their ground truth.
    public static func render(_ params: SymmetricSampleParameters, config: SymmetricSceneConfig) throws -> SymmetricSample {
        try config.validate()
        return try GradMode.withoutGrad { try renderValidated(params, config: config) }
    }

    static func renderValidated(_ params: SymmetricSampleParameters, config: SymmetricSceneConfig) throws -> SymmetricSample {
        let identity = params.identity
        let (world, mesh) = canonicalMesh(identity, config: config)
        // Per vertex: the canonical-frame normal in the DepthMaps orientation (the inward one, as
        // the model frame has the camera's axes) and the texture coordinates (θ, φ).
        var attr = [Float](repeating: 0, count: 5 * mesh.vertices.count)
        for i in 0..<mesh.vertices.count {
            let n = mesh.normals[i], uv = mesh.angles[i]
            attr[5 * i] = -n.x; attr[5 * i + 1] = -n.y; attr[5 * i + 2] = -n.z
            attr[5 * i + 3] = uv.x; attr[5 * i + 4] = uv.y
        }
        let attributes = Tensor(attr, shape: [mesh.vertices.count, 5])
        let (rotation, translation) = params.rotationTranslation(distance: config.distance)
        let size = config.size, ss = config.supersampling, big = size * ss, mid = ss / 2
        let pixels = size * size

        let light = params.light
        let lz = 1 / (light[2] * light[2] + light[3] * light[3] + 1).squareRoot()
        let lightDir = SIMD3<Float>(light[2] * lz, light[3] * lz, lz)

        // Actual view.
        let viewCamera = try camera(config: config, rotation: rotation, translation: translation)
        let view = try rasterise(world, mesh: mesh, attributes: attributes, camera: viewCamera)
        var image = [Float](repeating: 0, count: 3 * pixels)
        var depth = [Float](repeating: 0, count: pixels), normal = [Float](repeating: 0, count: 3 * pixels)
        var mask = [UInt8](repeating: 0, count: pixels), coverage = [Float](repeating: 0, count: pixels)
        let inv = 1 / Float(ss * ss)
        for j in 0..<size {
            for i in 0..<size {
                var sum = SIMD3<Float>.zero
                var covered = 0
                for dj in 0..<ss {
                    let y = j * ss + dj
                    let bg = params.backgroundTop + (params.backgroundBottom - params.backgroundTop) * ((Float(y) + 0.5) / Float(big))
                    for di in 0..<ss {
                        let q = y * big + i * ss + di
                        guard view.faceIndex[q] >= 0 else { sum += bg; continue }
                        covered += 1
                        let a = view.attributes + 5 * q
                        var n = SIMD3(a[0], a[1], a[2])
                        n /= Swift.max((n * n).sum().squareRoot(), 1e-12)
                        let shade = light[0] + light[1] * Swift.max(0, (n * lightDir).sum())
                        let albedo = HeadModel.albedo(theta: a[3], phi: a[4], identity: identity)
                        let c = albedo * shade
                        sum += SIMD3(Swift.min(c.x, 1), Swift.min(c.y, 1), Swift.min(c.z, 1))
                    }
                }
                let p = j * size + i
                for k in 0..<3 { image[3 * p + k] = sum[k] * inv }
                coverage[p] = Float(covered) * inv
                let centre = (j * ss + mid) * big + i * ss + mid
                if view.faceIndex[centre] >= 0 {
                    mask[p] = 1
                    depth[p] = view.depth[centre]
                    let a = view.attributes + 5 * centre
                    var n = SIMD3<Float>.zero
                    for r in 0..<3 { n[r] = rotation[3 * r] * a[0] + rotation[3 * r + 1] * a[1] + rotation[3 * r + 2] * a[2] }
                    n /= Swift.max((n * n).sum().squareRoot(), 1e-12)
                    for k in 0..<3 { normal[3 * p + k] = n[k] }
                }
            }
        }

        // Canonical view: depth at the pixel centres, albedo averaged over the covered samples.
        let canonicalCamera = try camera(config: config)
        let canon = try rasterise(world, mesh: mesh, attributes: attributes, camera: canonicalCamera)
        var canonicalDepth = [Float](repeating: 0, count: pixels), albedo = [Float](repeating: 0, count: 3 * pixels)
        var canonicalMask = [UInt8](repeating: 0, count: pixels)
        for j in 0..<size {
            for i in 0..<size {
                let centre = (j * ss + mid) * big + i * ss + mid
                guard canon.faceIndex[centre] >= 0 else { continue }
                let p = j * size + i
                canonicalMask[p] = 1
                canonicalDepth[p] = canon.depth[centre]
                var sum = SIMD3<Float>.zero
                var covered = 0
                for dj in 0..<ss {
                    for di in 0..<ss {
                        let q = (j * ss + dj) * big + i * ss + di
                        guard canon.faceIndex[q] >= 0 else { continue }
                        let a = canon.attributes + 5 * q
                        sum += HeadModel.albedo(theta: a[3], phi: a[4], identity: identity)
                        covered += 1
                    }
                }
                for k in 0..<3 { albedo[3 * p + k] = sum[k] / Float(covered) }
            }
        }
        return SymmetricSample(parameters: params, size: size, image: image, depth: depth, normal: normal, mask: mask,
                               coverage: coverage, canonicalDepth: canonicalDepth, canonicalMask: canonicalMask, albedo: albedo,
                               rotation: rotation, translation: translation)
    }

    /// What one supersampled rasterisation gives: the face per sample, its depth and the
    /// interpolated attributes.
    struct Raster {
        var faceIndex: [Int32]
        var depthTensor: Tensor
        var attributeTensor: Tensor
        var depth: UnsafeMutablePointer<Float> { depthTensor.dataPointer }
        var attributes: UnsafeMutablePointer<Float> { attributeTensor.dataPointer }
    }

    static func rasterise(_ world: Tensor, mesh: HeadMesh, attributes: Tensor, camera: PinholeCamera) throws -> Raster {
        let screen = MeshRasterizer.screenVertices(world, camera: camera)
        let fragments = try MeshRasterizer.rasterize(screenVertices: screen, faces: mesh.faces, width: camera.width, height: camera.height)
        let interpolated = try MeshRasterizer.interpolate(attributes: attributes, fragments: fragments, faces: mesh.faces)
        return Raster(faceIndex: fragments.faceIndex, depthTensor: fragments.depth, attributeTensor: interpolated)
    }
}
