import Foundation
import DeformTensor

/// A similarity transform `x ↦ s R x + t` per sample: rotation `[..., 3, 3]`, translation
/// `[..., 3]`, scale `[...]`.
public struct SimilarityTransform {
    public var rotation: Tensor
    public var translation: Tensor
    public var scale: Tensor

    public init(rotation: Tensor, translation: Tensor, scale: Tensor) {
        self.rotation = rotation
        self.translation = translation
        self.scale = scale
    }

    /// `s X Rᵀ + t` for point sets `[..., P, 3]` (differentiable).
    public func apply(_ points: Tensor) -> Tensor {
        points.matmul(rotation.transposed()) * scale.unsqueezed(-1).unsqueezed(-1) + translation.unsqueezed(-2)
    }
}

/// Orthogonal Procrustes and similarity (Umeyama) alignment of point sets `[..., P, 3]`, batched,
/// with optional visibility masks `[..., P]` (0/1; only visible points count, coordinates of
/// invisible ones are never read). Differentiable w.r.t. both point sets (composed from engine
/// ops and ``Linalg/projectToSO3(_:)``, whose gradient stays finite at repeated singular values).
///
/// The solutions are unique when the visible, centred source points span at least a plane
/// (three non-collinear points); for degenerate sets a valid minimiser is returned but the
/// gradient is not meaningful.
public enum Procrustes {
    /// The rotation minimising `Σ_i m_i |y_i - R x_i|²` about the origin (no translation, no
    /// scale): `R = proj_SO(3)(Σ_i m_i y_i x_iᵀ)`, with `det R = +1` even when the best orthogonal
    /// matrix is a reflection (Kabsch/Umeyama's sign correction).
    /// - Parameters:
    ///   - source: `X`, `[..., P, 3]`.
    ///   - target: `Y`, `[..., P, 3]`, same shape.
    ///   - mask: `[..., P]` or `nil`.
    /// - Returns: `[..., 3, 3]`, with `Y ≈ X Rᵀ`.
    /// - Throws: ``TensorError`` for mismatched shapes or NaN/Inf among visible points.
    public static func rotation(from source: Tensor, to target: Tensor, mask: Tensor? = nil) throws -> Tensor {
        let (x, y, m) = try prepare(source, target, mask, op: "Procrustes.rotation")
        return try Linalg.projectToSO3(y.transposed().matmul(x * m))
    }

    /// The similarity (or rigid) transform minimising `Σ_i m_i |y_i - (s R x_i + t)|²`
    /// (Umeyama 1991, "Least-squares estimation of transformation parameters between two point
    /// patterns"): with visible means `μ_x, μ_y`, centred points `x̂, ŷ` and `H = Σ m_i ŷ_i x̂_iᵀ`,
    /// `R = proj_SO(3)(H)`, `s = ⟨R, H⟩ / Σ m_i |x̂_i|²` (1 without `scaling`), `t = μ_y - s R μ_x`.
    /// - Parameters:
    ///   - source: `X`, `[..., P, 3]`.
    ///   - target: `Y`, `[..., P, 3]`.
    ///   - mask: `[..., P]` or `nil`.
    ///   - scaling: estimate `s` (similarity) or fix `s = 1` (rigid).
    /// - Throws: ``TensorError`` for mismatched shapes or NaN/Inf among visible points.
    public static func align(from source: Tensor, to target: Tensor, mask: Tensor? = nil,
                             scaling: Bool = true) throws -> SimilarityTransform {
        let (x, y, m) = try prepare(source, target, mask, op: "Procrustes.align")
        let mux = ObjectCentric.visibleMean(x, mask: mask), muy = ObjectCentric.visibleMean(y, mask: mask)
        let xc = (x - mux) * m, yc = (y - muy) * m
        let h = yc.transposed().matmul(xc)
        let r = try Linalg.projectToSO3(h)
        let batch = Array(x.shape.dropLast(2))
        let s = scaling ? (r * h).sum(axes: [-2, -1]) / xc.square().sum(axes: [-2, -1]) : Tensor.ones(batch)
        let t = muy - s.unsqueezed(-1).unsqueezed(-1) * mux.matmul(r.transposed())
        return SimilarityTransform(rotation: r, translation: t.squeezed([-2]), scale: s)
    }

    /// Checks shapes and finiteness; returns the point sets with invisible rows zeroed and the
    /// mask as `[..., P, 1]` (ones without a mask).
    static func prepare(_ source: Tensor, _ target: Tensor, _ mask: Tensor?, op: String) throws -> (Tensor, Tensor, Tensor) {
        let batch = try checkedBatchShape(source, trailing: [-1, 3], op: op, name: "source")
        try checkShape(target, source.shape, op: op, name: "target")
        let points = source.shape[source.rank - 2]
        guard let mask else {
            try checkFinite(source, op: op)
            try checkFinite(target, op: op)
            return (source, target, Tensor.ones(batch + [points, 1]))
        }
        try checkShape(mask, batch + [points], op: op, name: "mask")
        let m = mask.unsqueezed(-1)
        let x = ObjectCentric.visibleRows(source, m), y = ObjectCentric.visibleRows(target, m)
        try checkFinite(x, op: op)
        try checkFinite(y, op: op)
        return (x, y, m)
    }
}
