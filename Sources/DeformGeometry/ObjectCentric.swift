import Foundation
import DeformTensor

/// The object-centric normalisations of Deep NRSfM++ (thesis Ch. 3, Table 3.1, Eqs. 3.11-3.15),
/// which keep the projection bilinear under perspective cameras and missing points, and the
/// same adaptive normalisation PAUL uses for missing data (Eq. 2.11).
///
/// Notation, per sample: P points, visibility `m_j ∈ {0, 1}` (`M = diag(m)`), `P̃ = Σ_j m_j`
/// visible points, 2D points `W` as rows `(u_i, v_i)` (`[..., P, 2]`), dictionary rows `d_iᵀ`
/// (`D♯ ∈ R^{P×3K}`, `[..., P, C]` here with any `C`). The canonical shape is assumed centred
/// over all P points (the object-centric constraint, Eq. 3.6); under that assumption
/// `M W̃ = M D̃ Ψ̃` holds exactly.
///
/// A `mask` is `[..., P]` with 0/1 entries; `nil` means every point is visible. Coordinates of
/// invisible points are never read (they may be NaN). A sample with no visible point gives zeros.
/// Every function is differentiable w.r.t. its tensor inputs (composed from engine ops).
public enum ObjectCentric {
    /// Mean of the visible rows, `(1/P̃) Σ_j m_j x_j`, shaped `[..., 1, C]`.
    public static func visibleMean(_ x: Tensor, mask: Tensor? = nil) -> Tensor {
        let batch = batchShape(x, trailing: [-1, -1], op: "ObjectCentric.visibleMean")
        guard let mask else { return x.mean(axes: [-2], keepDims: true) }
        let m = checkedMask(mask, points: x.shape[x.rank - 2], batch: batch, op: "ObjectCentric.visibleMean")
        return visibleRows(x, m).sum(axes: [-2], keepDims: true) * inverseVisibleCount(mask)
    }

    /// Orthographic normalised 2D input, Eq. 3.15 (Table 3.1, orthographic row):
    /// `W̃ = W - (1/P̃) 1_P 1_Pᵀ M W`, returned as `M W̃` (rows of invisible points are zero).
    ///
    /// Table 3.1 prints the factor as 1/P; Eq. 3.15 and the derivation use 1/P̃, the mean of the
    /// visible points, which is what this computes (they agree when all points are visible).
    /// - Parameters:
    ///   - points2D: `W`, `[..., P, 2]` (or any `[..., P, C]`).
    ///   - mask: `[..., P]` or `nil`.
    public static func centered(_ points2D: Tensor, mask: Tensor? = nil) -> Tensor {
        let batch = batchShape(points2D, trailing: [-1, -1], op: "ObjectCentric.centered", name: "points2D")
        guard let mask else { return points2D - points2D.mean(axes: [-2], keepDims: true) }
        let m = checkedMask(mask, points: points2D.shape[points2D.rank - 2], batch: batch, op: "ObjectCentric.centered")
        let w = visibleRows(points2D, m)
        return m * (w - w.sum(axes: [-2], keepDims: true) * inverseVisibleCount(mask))
    }

    /// Adaptively normalised rows, Eq. 3.15 (`D̃`) and PAUL Eq. 2.11 (`S̃`):
    /// `D̃ = D♯ + (1/P̃) 1_P 1_Pᵀ (I_P - M) D♯`, i.e. every row gets the sum of the invisible rows
    /// divided by P̃ added.
    ///
    /// For a canonical shape centred over all points this equals the shape centred by the mean
    /// of its visible points, so the visible-centred 2D points satisfy `W̃ M = R_xy S̃ M` (Eq. 2.13).
    /// PAUL's printed Eq. 2.11 omits the 1/P̃ factor; Deep NRSfM++'s Eq. 3.15 (which PAUL cites)
    /// has it, and only with it does the identity above hold, so it is included.
    /// - Parameters:
    ///   - rows: `[P, C]` (a shared dictionary) or `[..., P, C]` (per-sample shapes or dictionaries).
    ///   - mask: `[..., P]`.
    /// - Returns: `[..., P, C]` with the mask's batch shape broadcast against the rows'.
    public static func normalizedRows(_ rows: Tensor, mask: Tensor) -> Tensor {
        _ = batchShape(rows, trailing: [-1, -1], op: "ObjectCentric.normalizedRows", name: "rows")
        let points = rows.shape[rows.rank - 2]
        let m = checkedMask(mask, points: points, batch: nil, op: "ObjectCentric.normalizedRows")
        let hidden = ((1 - m) * rows).sum(axes: [-2], keepDims: true)
        return rows + hidden * inverseVisibleCount(mask)
    }

    /// Perspective normalised 2D input, the left-hand side of Eq. 3.14 (Eq. 3.11 without missing
    /// points): rows `((u_i - ū_m) t_z, (v_i - v̄_m) t_z)` with `ū_m = Σ_j m_j u_j / P̃`, returned
    /// masked as `[..., P, 2]` (flattened row-major it is the `2P × 1` vector `W̃` of Table 3.1,
    /// rows `2i-1, 2i` = point i).
    /// - Parameters:
    ///   - points2D: points on the unit focal plane (normalised image coordinates), `[..., P, 2]`.
    ///   - mask: `[..., P]` or `nil`.
    ///   - depth: `t_z`, the depth of the object centre, `[...]` (sets the reconstruction scale;
    ///     see ``boundingBoxDepth(_:mask:useMaximumSide:)``).
    public static func perspectiveInput(_ points2D: Tensor, mask: Tensor? = nil, depth: Tensor) -> Tensor {
        _ = batchShape(points2D, trailing: [-1, 2], op: "ObjectCentric.perspectiveInput", name: "points2D")
        return centered(points2D, mask: mask) * depth.unsqueezed(-1).unsqueezed(-1)
    }

    /// Perspective normalised dictionary, the right-hand side of Eq. 3.14 (`D̃ ∈ R^{2P×9K}`, with
    /// 3K = C here). Rows `2i-1` and `2i` (1-based) are
    /// `[d̃_iᵀ, 0, -u_i d_iᵀ + Σ_j m_j u_j d_jᵀ / P̃]` and `[0, d̃_iᵀ, -v_i d_iᵀ + Σ_j m_j v_j d_jᵀ / P̃]`,
    /// with `d̃_i = d_i + Σ_j (1 - m_j) d_j / P̃` (``normalizedRows(_:mask:)``) and the column blocks
    /// multiplying `Ψ̃ = [ψ_x; ψ_y; ψ_z]` (the columns of Ψ stacked). The third block uses the
    /// un-normalised `d_i`: it carries the depth z'_i of Eq. 3.9.
    ///
    /// Rows of invisible points are returned as computed (with `u_i = v_i = 0`); the caller masks
    /// them, as in `M W̃ = M D̃ Ψ̃`.
    /// - Parameters:
    ///   - dictionary: `D♯`, `[P, C]` or `[..., P, C]`.
    ///   - points2D: `[..., P, 2]` on the unit focal plane.
    ///   - mask: `[..., P]` or `nil`.
    /// - Returns: `[..., 2P, 3C]`.
    public static func perspectiveDictionary(_ dictionary: Tensor, points2D: Tensor, mask: Tensor? = nil) -> Tensor {
        let op = "ObjectCentric.perspectiveDictionary"
        _ = batchShape(dictionary, trailing: [-1, -1], op: op, name: "dictionary")
        let batch = batchShape(points2D, trailing: [-1, 2], op: op, name: "points2D")
        let points = points2D.shape[points2D.rank - 2], c = dictionary.shape[dictionary.rank - 1]
        if dictionary.shape[dictionary.rank - 2] != points {
            fail(.shapeMismatch(op: op, expected: "dictionary of shape [..., \(points), C] for points2D of shape \(points2D.shape)",
                                found: "\(dictionary.shape)"))
        }
        let maskT = mask ?? Tensor.ones(batch + [points])
        let m = checkedMask(maskT, points: points, batch: batch, op: op)
        let w = visibleRows(points2D, m)
        let u = w.narrow(axis: -1, start: 0, length: 1), v = w.narrow(axis: -1, start: 1, length: 1)
        let inv = inverseVisibleCount(maskT)
        let dTilde = normalizedRows(dictionary, mask: maskT)
        let zThirdU = (u * dictionary).sum(axes: [-2], keepDims: true) * inv - u * dictionary
        let zThirdV = (v * dictionary).sum(axes: [-2], keepDims: true) * inv - v * dictionary
        let zeros = Tensor.zeros(dTilde.shape)
        let rowU = Tensor.concat([dTilde, zeros, zThirdU], axis: -1)
        let rowV = Tensor.concat([zeros, dTilde, zThirdV], axis: -1)
        let outBatch = Array(dTilde.shape.dropLast(2))
        return Tensor.stack([rowU, rowV], axis: -2).reshaped(outBatch + [2 * points, 3 * c])
    }

    /// The preprocessing depth `t_z` of Deep NRSfM++ (Sec. 3.5): `1 / max(h, w)` of the bounding
    /// box of the visible 2D points (Pascal3D+, H3.6M), or `1 / min(h, w)` with
    /// `useMaximumSide: false` (ApolloCar3D). Not differentiable; `[..., P, 2]` → `[...]`.
    /// - Throws: ``TensorError`` when a sample has a degenerate (zero-size) box or non-finite
    ///   visible coordinates.
    public static func boundingBoxDepth(_ points2D: Tensor, mask: Tensor? = nil, useMaximumSide: Bool = true) throws -> Tensor {
        let op = "ObjectCentric.boundingBoxDepth"
        let batch = try checkedBatchShape(points2D, trailing: [-1, 2], op: op, name: "points2D")
        let points = points2D.shape[points2D.rank - 2]
        if let mask { try checkShape(mask, batch + [points], op: op, name: "mask") }
        let n = shapeCount(batch)
        var out = [Float](repeating: 0, count: n)
        let pw = points2D.dataPointer, pm = mask?.dataPointer
        for b in 0..<n {
            var lo = V3(.infinity, .infinity, 0), hi = V3(-.infinity, -.infinity, 0)
            for i in 0..<points where pm.map({ $0[b * points + i] != 0 }) ?? true {
                let p = V3(Double(pw[2 * (b * points + i)]), Double(pw[2 * (b * points + i) + 1]), 0)
                if !p.x.isFinite || !p.y.isFinite {
                    throw TensorError.nonFinite(op: op, message: "sample \(b): visible point \(i) is not finite")
                }
                lo = pointwiseMin(lo, p); hi = pointwiseMax(hi, p)
            }
            let ext = hi - lo
            let side = useMaximumSide ? Swift.max(ext.x, ext.y) : Swift.min(ext.x, ext.y)
            if !(side > 0) || !side.isFinite {
                throw TensorError.invalidArgument(op: op, message: "sample \(b): the visible points span a degenerate box (\(ext.x) x \(ext.y))")
            }
            out[b] = Float(1 / side)
        }
        return Tensor(out, shape: batch)
    }

    // MARK: Helpers

    /// Validates a `[..., P]` mask and returns it as `[..., P, 1]` for broadcasting over rows.
    static func checkedMask(_ mask: Tensor, points: Int, batch: [Int]?, op: String) -> Tensor {
        if mask.rank < 1 || mask.shape[mask.rank - 1] != points || (batch != nil && Array(mask.shape.dropLast()) != batch!) {
            let expected = batch.map { "\($0 + [points])" } ?? "[..., \(points)]"
            fail(.shapeMismatch(op: op, expected: "mask of shape \(expected)", found: "\(mask.shape)"))
        }
        return mask.unsqueezed(-1)
    }

    /// Rows of invisible points replaced by zeros (so NaN placeholders never propagate).
    static func visibleRows(_ x: Tensor, _ m: Tensor) -> Tensor { Tensor.where(m, x, Tensor(0)) }
}
