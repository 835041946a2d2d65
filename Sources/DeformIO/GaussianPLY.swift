import DeformTensor
import Foundation

/// Writes Gaussians as a 3D Gaussian Splatting `.ply` in the layout of the reference
/// implementation (INRIA), which common splat viewers and editors open: one binary
/// little-endian vertex element with float properties `x y z nx ny nz f_dc_0..2 f_rest_*
/// opacity scale_0..2 rot_0..3`. As in that layout, opacities are stored as logits, scales as
/// logarithms, quaternions as (w, x, y, z) and the non-constant SH coefficients channel by
/// channel (all of red's, then green's, then blue's). Atomic.
///
/// - Parameters:
///   - means: `[N, 3]`.
///   - scales: `[N, 3]` or `[N, 1]` (isotropic; written three times), positive.
///   - quaternions: `[N, 4]` or `nil` (identity).
///   - opacities: `[N]` in [0, 1] (clamped to [1e-6, 1 - 1e-6] before the logit).
///   - colors: `[N, K, 3]` spherical-harmonic coefficients (K = 1, 4, 9, 16) or `[N, 3]` RGB
///     (converted to the constant term, `(rgb - 0.5) / C0`).
public func writeGaussianPLY(to url: URL, means: Tensor, scales: Tensor, quaternions: Tensor? = nil, opacities: Tensor,
                             colors: Tensor) throws {
    let file = url.path
    guard means.rank == 2, means.shape[1] == 3 else {
        throw DeformIOError.shapeMismatch(file: file, entry: "means", expected: "[N, 3]", found: shapeString(means.shape))
    }
    let n = means.shape[0]
    guard scales.shape == [n, 3] || scales.shape == [n, 1] else {
        throw DeformIOError.shapeMismatch(file: file, entry: "scales", expected: "[\(n), 3] or [\(n), 1]", found: shapeString(scales.shape))
    }
    if let quaternions, quaternions.shape != [n, 4] {
        throw DeformIOError.shapeMismatch(file: file, entry: "quaternions", expected: "[\(n), 4]", found: shapeString(quaternions.shape))
    }
    guard opacities.count == n else {
        throw DeformIOError.shapeMismatch(file: file, entry: "opacities", expected: "[\(n)]", found: shapeString(opacities.shape))
    }
    let k: Int
    if colors.rank == 3, colors.shape[0] == n, colors.shape[2] == 3, [1, 4, 9, 16].contains(colors.shape[1]) {
        k = colors.shape[1]
    } else if colors.shape == [n, 3] {
        k = 1
    } else {
        throw DeformIOError.shapeMismatch(file: file, entry: "colors", expected: "[\(n), K, 3] with K = 1, 4, 9, 16, or [\(n), 3]",
                                          found: shapeString(colors.shape))
    }
    var header = "ply\nformat binary_little_endian 1.0\ncomment 3D Gaussians written by Deform\nelement vertex \(n)\n"
    var names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    names += (0..<(3 * (k - 1))).map { "f_rest_\($0)" }
    names += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    for name in names { header += "property float \(name)\n" }
    header += "end_header\n"
    let stride = names.count
    var values = [Float](repeating: 0, count: n * stride)
    let m = means.scalars, s = scales.scalars, q = quaternions?.scalars, o = opacities.scalars, c = colors.scalars
    let isotropic = scales.shape[1] == 1
    for i in 0..<n {
        var row = i * stride
        for a in 0..<3 { values[row + a] = m[3 * i + a] }
        row += 6                                                    // normals stay 0
        if colors.rank == 2 {
            for ch in 0..<3 { values[row + ch] = (c[3 * i + ch] - 0.5) / Float(shC0) }
        } else {
            for ch in 0..<3 { values[row + ch] = c[(i * k) * 3 + ch] }
            for ch in 0..<3 {
                for j in 1..<Swift.max(k, 1) { values[row + 3 + ch * (k - 1) + (j - 1)] = c[(i * k + j) * 3 + ch] }
            }
        }
        row += 3 * k
        let p = Swift.min(Swift.max(o[i], 1e-6), 1 - 1e-6)
        values[row] = Foundation.log(p / (1 - p))
        for a in 0..<3 { values[row + 1 + a] = Foundation.log(isotropic ? s[i] : s[3 * i + a]) }
        if let q { for a in 0..<4 { values[row + 4 + a] = q[4 * i + a] } } else { values[row + 4] = 1 }
    }
    var data = Data(header.utf8)
    values.withUnsafeBufferPointer { buffer in
        for v in buffer { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
    }
    try writeAtomically(data, to: url)
}

/// The constant spherical-harmonic basis value, 1 / (2 sqrt(pi)): colour = 0.5 + C0 * f_dc in the
/// 3DGS file layout, used by the writer here and the reader in MeshIO.
let shC0 = 0.28209479177387814
