import Foundation
import DeformTensor

/// Camera models for point sets `[..., P, 3]` in the camera frame (x right, y down or up as the
/// data has it, z along the optical axis). All functions are batched and differentiable
/// (composed from engine ops).
public enum Camera {
    /// Rigid transform of point sets: `X Rᵀ + t` for points as rows, i.e. `x' = R x + t`.
    /// - Parameters:
    ///   - points: `[..., P, 3]`.
    ///   - rotation: `[..., 3, 3]` (broadcast over the batch).
    ///   - translation: `[..., 3]` or `nil`.
    public static func transform(_ points: Tensor, rotation: Tensor, translation: Tensor? = nil) -> Tensor {
        _ = batchShape(points, trailing: [-1, 3], op: "Camera.transform", name: "points")
        _ = batchShape(rotation, trailing: [3, 3], op: "Camera.transform", name: "rotation")
        let y = points.matmul(rotation.transposed())
        guard let translation else { return y }
        _ = batchShape(translation, trailing: [3], op: "Camera.transform", name: "translation")
        return y + translation.unsqueezed(-2)
    }

    /// Orthographic projection `[..., P, 3]` → `[..., P, 2]`: the x and y coordinates.
    public static func orthographic(_ points: Tensor) -> Tensor {
        _ = batchShape(points, trailing: [-1, 3], op: "Camera.orthographic", name: "points")
        return points.narrow(axis: -1, start: 0, length: 2)
    }

    /// Weak-perspective (scaled orthographic) projection `s · (x, y) + t` (PAUL Eq. 2.1 with the
    /// rotation applied beforehand).
    /// - Parameters:
    ///   - points: `[..., P, 3]`.
    ///   - scale: `[...]` (one scale per point set; broadcasts).
    ///   - translation: `[..., 2]` or `nil`.
    public static func weakPerspective(_ points: Tensor, scale: Tensor, translation: Tensor? = nil) -> Tensor {
        let y = orthographic(points) * scale.unsqueezed(-1).unsqueezed(-1)
        guard let translation else { return y }
        _ = batchShape(translation, trailing: [2], op: "Camera.weakPerspective", name: "translation")
        return y + translation.unsqueezed(-2)
    }

    /// Perspective projection onto the unit focal plane, `(x/z, y/z)` — the "normalised image
    /// coordinates" Deep NRSfM++'s perspective model works in (Sec. 3.3.1).
    public static func perspective(_ points: Tensor) -> Tensor {
        _ = batchShape(points, trailing: [-1, 3], op: "Camera.perspective", name: "points")
        return orthographic(points) / points.narrow(axis: -1, start: 2, length: 1)
    }

    /// Pinhole projection to pixels with intrinsics `K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]]`:
    /// `u = fx x/z + s y/z + cx`, `v = fy y/z + cy`.
    /// - Parameters:
    ///   - points: `[..., P, 3]` in the camera frame (z > 0 in front of the camera).
    ///   - intrinsics: `[..., 3, 3]` (broadcast over the batch).
    public static func pinhole(_ points: Tensor, intrinsics: Tensor) -> Tensor {
        _ = batchShape(intrinsics, trailing: [3, 3], op: "Camera.pinhole", name: "intrinsics")
        let n = perspective(points)
        let k = intrinsics.narrow(axis: -2, start: 0, length: 2)       // [..., 2, 3]
        // [x/z, y/z, 1] Kᵀ for the first two rows of K.
        let homogeneous = Tensor.concat([n, Tensor.ones(Array(n.shape.dropLast()) + [1])], axis: -1)
        return homogeneous.matmul(k.transposed())
    }

    /// Pixels `[..., P, 2]` → normalised image coordinates (unit focal plane) for intrinsics
    /// `[..., 3, 3]` of the form used by ``pinhole(_:intrinsics:)``; the inverse of that map.
    public static func normalizedCoordinates(_ pixels: Tensor, intrinsics: Tensor) -> Tensor {
        _ = batchShape(pixels, trailing: [-1, 2], op: "Camera.normalizedCoordinates", name: "pixels")
        _ = batchShape(intrinsics, trailing: [3, 3], op: "Camera.normalizedCoordinates", name: "intrinsics")
        func entry(_ i: Int, _ j: Int) -> Tensor {
            intrinsics.narrow(axis: -2, start: i, length: 1).narrow(axis: -1, start: j, length: 1)   // [..., 1, 1]
        }
        let u = pixels.narrow(axis: -1, start: 0, length: 1), v = pixels.narrow(axis: -1, start: 1, length: 1)
        let y = (v - entry(1, 2)) / entry(1, 1)
        let x = (u - entry(0, 2) - entry(0, 1) * y) / entry(0, 0)
        return Tensor.concat([x, y], axis: -1)
    }
}
