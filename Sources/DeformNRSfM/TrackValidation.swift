import DeformTensor

/// Checks shared by the learned NRSfM methods for 2D tracks `[F, P, 2]` with an optional
/// visibility mask `[F, P]`.
enum TrackValidation {
    /// Validates the tracks and the mask and returns the mask to use: `nil` when it is absent or
    /// every point is visible (so fully visible input takes exactly the path without a mask).
    /// - Throws: ``TensorError`` naming the offending entry: a malformed shape, a visibility value
    ///   other than 0/1, a non-finite visible coordinate (hidden ones are never read), or a frame
    ///   with fewer than `minimumVisible` visible points.
    static func mask(points2D: Tensor, visibility: Tensor?, op: String, minimumVisible: Int = 2) throws -> Tensor? {
        guard points2D.rank == 3, points2D.shape[2] == 2, points2D.shape[0] >= 1, points2D.shape[1] >= 3 else {
            throw TensorError.shapeMismatch(op: op, expected: "points2D of shape [F >= 1, P >= 3, 2]", found: "\(points2D.shape)")
        }
        let f = points2D.shape[0], p = points2D.shape[1]
        var mask: Tensor? = nil
        if let visibility {
            guard visibility.shape == [f, p] else {
                throw TensorError.shapeMismatch(op: op, expected: "visibility of shape [\(f), \(p)]", found: "\(visibility.shape)")
            }
            let v = visibility.scalars
            if let bad = v.firstIndex(where: { $0 != 0 && $0 != 1 }) {
                throw TensorError.invalidArgument(op: op, message: "visibility must be 0 or 1; frame \(bad / p), point \(bad % p) holds \(v[bad])")
            }
            if v.contains(0) { mask = visibility.detached() }
        }
        let xy = points2D.scalars, vis = mask?.scalars
        for frame in 0..<f {
            var visible = 0
            for i in 0..<p where vis.map({ $0[frame * p + i] != 0 }) ?? true {
                visible += 1
                let u = xy[2 * (frame * p + i)], v = xy[2 * (frame * p + i) + 1]
                if !u.isFinite || !v.isFinite {
                    throw TensorError.nonFinite(op: op, message: "points2D: frame \(frame), visible point \(i) is (\(u), \(v))")
                }
            }
            if visible < minimumVisible {
                throw TensorError.invalidArgument(op: op, message: "frame \(frame) has \(visible) visible point(s); at least \(minimumVisible) are needed")
            }
        }
        return mask
    }
}
