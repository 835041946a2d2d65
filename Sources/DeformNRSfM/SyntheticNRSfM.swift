import DeformTensor
import Foundation

/// A small synthetic non-rigid sequence with known answers: shapes from a low-rank linear model
/// (mean + K deformation modes with smoothly varying coefficients), seen by an orthographic camera
/// under random rotations. Used by tests and as the example sequence of the demo.
public struct SyntheticNRSfM {
    /// Ground-truth camera-frame points [F, P, 3].
    public var points3D: Tensor
    /// Orthographic observations [F, P, 2] (x, y of `points3D`).
    public var points2D: Tensor
    /// Camera rotations [F, 3, 3].
    public var rotations: Tensor

    public init(frames: Int, points: Int, modes: Int = 2, deformation: Float = 0.3, seed: UInt64 = 0) {
        var rng = RandomGenerator(seed: seed)
        let mean = rng.normal([points, 3])
        let basis = rng.normal([modes, points, 3]) * deformation
        // Coefficients as sinusoids of random frequency and phase: non-rigid but low rank.
        let freq = rng.uniform([modes], low: 0.5, high: 2), phase = rng.uniform([modes], low: 0, high: 6.283)
        let t = Tensor.linspace(0, 6.283, count: frames).reshaped(frames, 1)
        let coeff = (t * freq + phase).sin()                                              // [F, K]
        let shapes = mean + coeff.matmul(basis.reshaped(modes, points * 3)).reshaped(frames, points, 3)
        // Uniform random rotations from normalised quaternions.
        let q = rng.normal([frames, 4])
        let qn = q / q.norm(axes: [1], keepDims: true)
        var r = Tensor(uninitializedShape: [frames, 3, 3])
        let pq = qn.scalars
        r.withUnsafeMutableBufferPointer { p in
            for f in 0..<frames {
                let w = pq[4 * f], x = pq[4 * f + 1], y = pq[4 * f + 2], z = pq[4 * f + 3]
                let m: [Float] = [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                                  2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                                  2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]
                for i in 0..<9 { p[9 * f + i] = m[i] }
            }
        }
        rotations = r
        points3D = shapes.matmul(r.transposed())                                           // (R S)ᵀ per frame
        points2D = points3D.narrow(axis: 2, start: 0, length: 2)
    }
}
