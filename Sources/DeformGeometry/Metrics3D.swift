import Foundation
import DeformTensor

/// Per-frame values of a 3D metric and their mean over frames.
public struct FrameErrors: Codable, Equatable, Sendable {
    /// One value per frame, in the metric's unit.
    public var perFrame: [Double]
    /// Mean of ``perFrame``.
    public var mean: Double
    /// Per frame: whether the depth-flipped prediction was the one scored (all `false` for
    /// metrics without the flip).
    public var flipped: [Bool]

    public init(perFrame: [Double], flipped: [Bool]) {
        self.perFrame = perFrame
        self.flipped = flipped
        mean = perFrame.isEmpty ? 0 : perFrame.reduce(0, +) / Double(perFrame.count)
    }
}

/// 3D reconstruction metrics as the NRSfM papers define them, evaluated per frame in Double.
///
/// Inputs are point sets `[..., P, 3]` (all leading dimensions are frames; `[P, 3]` is one
/// frame) of the prediction and the ground truth in the camera frame, and an optional
/// evaluation mask `[..., P]` (only points with a nonzero mask count, as in C3DPO's
/// evaluation). No gradients. The **depth flip** — negating the z coordinate of the prediction —
/// resolves the reflection ambiguity of (weak-)orthographic cameras: where a metric allows it,
/// each frame scores the better of the prediction and its flipped copy.
///
/// Definitions:
/// - **Normalized error** (PAUL Sec. 2.5, Table 2.1; Deep NRSfM++'s "normalized 3D error"): per
///   frame, both shapes centred at their (visible) mean, the prediction depth-flipped if that is
///   lower, `e = ‖S_pred - S_gt‖_F / ‖S_gt‖_F`; the mean over frames, in percent.
/// - **MPJPE** (PAUL Sec. 2.5 (i); Deep NRSfM++ Sec. 3.5): the mean per-point Euclidean
///   distance `(1/P) Σ_i |s p_i - g_i|` after removing the object distance (the mean depth, or a
///   root point's position), normalising the prediction's scale to the ground truth (the
///   least-squares `s = ⟨p, g⟩ / ⟨p, p⟩`, kept non-negative) and flipping the depth if lower.
/// - **PA-MPJPE** (Deep NRSfM++ Sec. 3.5): MPJPE after the similarity (rotation, translation,
///   scale) alignment of the prediction to the ground truth that minimises the squared error
///   (Umeyama; the rotation is proper, computed by Horn's quaternion method).
/// - **STRESS** (Novotny et al., "C3DPO: Canonical 3D Pose Networks for Non-Rigid Structure From
///   Motion", ICCV 2019, and its public evaluation code, as reused by Deep NRSfM++): per frame
///   the mean over point pairs `i < j` of `| |g_i - g_j| - |p_i - p_j| |`; invariant to the camera
///   pose and the depth flip. C3DPO evaluates predictions already at ground-truth scale; with
///   `alignScale` the prediction is first scaled by the least-squares factor (after centring).
public enum Metrics3D {
    /// How the object distance is removed before MPJPE.
    public enum Centering: Sendable, Equatable {
        /// Subtract each shape's (visible) mean depth only (PAUL Sec. 2.5, C3DPO's
        /// `fix_mean_depth`); x and y are compared as they are.
        case meanDepth
        /// Subtract each shape's (visible) 3D mean.
        case mean
        /// Subtract each shape's position of point `index` (H3.6M's root joint).
        case root(Int)
        /// Compare as given.
        case none
    }

    /// Normalized error in percent (see ``Metrics3D``).
    /// - Parameter alignScale: also fit the prediction's scale per frame (off by default, as in
    ///   the papers; useful when a reconstruction is only defined up to scale).
    /// - Throws: ``TensorError`` for mismatched shapes, non-finite values, a frame without
    ///   visible points or with an all-zero (centred) ground truth.
    public static func normalizedError(prediction: Tensor, groundTruth: Tensor, mask: Tensor? = nil,
                                       flip: Bool = true, alignScale: Bool = false) throws -> FrameErrors {
        try perFrame("Metrics3D.normalizedError", prediction, groundTruth, mask, minimumPoints: 1) { p, g, f in
            let pc = centered(p, .mean), gc = centered(g, .mean)
            let gn = frobenius(gc)
            if !(gn > 0) {
                throw TensorError.invalidArgument(op: "Metrics3D.normalizedError", message: "frame \(f): the centred ground truth is all zeros")
            }
            return bestOverFlip(pc, flip: flip) { q in
                let s = alignScale ? optimalScale(q, gc) : 1
                return 100 * frobenius(zip(q, gc).map { s * $0 - $1 }) / gn
            }
        }
    }

    /// MPJPE (see ``Metrics3D``), in the ground truth's unit.
    /// - Parameters:
    ///   - centering: how the object distance is removed (default: mean depth, as PAUL).
    ///   - alignScale: normalise the prediction's scale (Deep NRSfM++); `false` compares as is.
    ///   - flip: allow the depth flip.
    public static func mpjpe(prediction: Tensor, groundTruth: Tensor, mask: Tensor? = nil,
                             centering: Centering = .meanDepth, alignScale: Bool = true, flip: Bool = true) throws -> FrameErrors {
        let op = "Metrics3D.mpjpe"
        let points = groundTruth.rank >= 2 ? groundTruth.shape[groundTruth.rank - 2] : 0
        if case let .root(i) = centering, i < 0 || i >= points {
            throw TensorError.invalidArgument(op: op, message: "root index \(i) is out of range for shapes \(groundTruth.shape)")
        }
        return try perFrame(op, prediction, groundTruth, mask, minimumPoints: 1, keepRoot: centering) { p, g, _ in
            let gc = centered(g, centering)
            return bestOverFlip(centered(p, centering), flip: flip) { q in
                let s = alignScale ? optimalScale(q, gc) : 1
                return meanDistance(q.map { s * $0 }, gc)
            }
        }
    }

    /// PA-MPJPE (see ``Metrics3D``): MPJPE after the optimal similarity alignment.
    /// - Parameter flip: also align the depth-flipped prediction and keep the lower error (a
    ///   rotation cannot undo the reflection). `false` gives the usual H3.6M definition.
    public static func paMPJPE(prediction: Tensor, groundTruth: Tensor, mask: Tensor? = nil, flip: Bool = true) throws -> FrameErrors {
        try perFrame("Metrics3D.paMPJPE", prediction, groundTruth, mask, minimumPoints: 1) { p, g, _ in
            bestOverFlip(p, flip: flip) { q in meanDistance(similarityAligned(q, to: g), g) }
        }
    }

    /// STRESS (see ``Metrics3D``), in the ground truth's unit.
    /// - Parameter alignScale: scale the (centred) prediction by the least-squares factor first,
    ///   fitted to the prediction or its depth reflection, whichever fits better (a reflection
    ///   leaves the distances unchanged, so a depth-flipped reconstruction is not penalised).
    public static func stress(prediction: Tensor, groundTruth: Tensor, mask: Tensor? = nil, alignScale: Bool = false) throws -> FrameErrors {
        try perFrame("Metrics3D.stress", prediction, groundTruth, mask, minimumPoints: 2) { p, g, _ in
            var q = p
            if alignScale {
                let pc = centered(p, .mean), gc = centered(g, .mean)
                // The better-fitting orientation is the one with the larger least-squares factor.
                let s = Swift.max(optimalScale(pc, gc), optimalScale(pc.map { V3($0.x, $0.y, -$0.z) }, gc))
                q = pc.map { s * $0 }
            }
            var total = 0.0, pairs = 0
            for i in 0..<g.count {
                for j in (i + 1)..<g.count {
                    let dg = g[i] - g[j], dp = q[i] - q[j]
                    total += Swift.abs(dot(dg, dg).squareRoot() - dot(dp, dp).squareRoot())
                    pairs += 1
                }
            }
            return (total / Double(pairs), false)
        }
    }

    /// Akhter et al.'s 3D error `e_3D` in percent ("Nonrigid Structure from Motion in Trajectory
    /// Space", NIPS 2008), the measure of their evaluation code that Dai et al. used for the "BMM"
    /// row of PAUL's Table 2.1 (published as 0.0266 and listed there as 2.66). Unlike the
    /// per-frame metrics above, one alignment serves the whole sequence:
    /// 1. both sequences are divided by `σ`, the ground truth's standard deviation over points
    ///    (population) of every coordinate of every frame, averaged over the 3F coordinates;
    /// 2. every frame of both is centred at its mean (the reference centres the ground truth and
    ///    receives predictions already centred);
    /// 3. one orthogonal matrix, a rotation or a rotation with the depth reflected (the
    ///    orthographic sign ambiguity, one sign for the sequence), aligns all predicted frames
    ///    to the ground truth in the least-squares sense;
    /// 4. per frame, the mean over points of the Euclidean distance; the mean over frames, times 100.
    ///
    /// On the same reconstruction it is larger than ``normalizedError(prediction:groundTruth:mask:flip:alignScale:)``
    /// (distances are averaged instead of root-mean-squared, and `σ` is a per-coordinate spread,
    /// about `‖S‖_F / √(3P)`), and per-frame depth flips are not forgiven.
    /// - Parameters: prediction, groundTruth: `[F, P, 3]` (or `[P, 3]`), complete (no mask).
    /// - Throws: ``TensorError`` for mismatched shapes, non-finite values or a ground truth without spread.
    public static func akhterError(prediction: Tensor, groundTruth: Tensor) throws -> FrameErrors {
        let op = "Metrics3D.akhterError"
        var pred: [[V3]] = [], gt: [[V3]] = []
        _ = try perFrame(op, prediction, groundTruth, nil, minimumPoints: 1) { p, g, _ in
            pred.append(centered(p, .mean)); gt.append(centered(g, .mean))
            return (0, false)
        }
        // σ: the mean over frames and coordinates of the ground truth's (population) spread.
        var sigma = 0.0
        for g in gt {
            for c in 0..<3 { sigma += (g.reduce(0) { $0 + $1[c] * $1[c] } / Double(g.count)).squareRoot() }
        }
        sigma /= Double(3 * gt.count)
        guard sigma > 0 else {
            throw TensorError.invalidArgument(op: op, message: "the ground truth has no spread (every frame's points coincide)")
        }
        gt = gt.map { $0.map { $0 / sigma } }
        let allGT = gt.flatMap { $0 }
        // The least-squares orthogonal alignment: the better (in squared error) of the best
        // rotation of the prediction and of its depth reflection.
        func aligned(_ x: [[V3]]) -> (squared: Double, frames: [[V3]]) {
            let r = hornRotation(x.flatMap { $0 }, allGT)
            let frames = x.map { $0.map { r * $0 } }
            let squared = zip(frames.flatMap { $0 }, allGT).reduce(0) { acc, pq in let d = pq.0 - pq.1; return acc + dot(d, d) }
            return (squared, frames)
        }
        let scaled = pred.map { $0.map { $0 / sigma } }
        let direct = aligned(scaled)
        let reflected = aligned(scaled.map { $0.map { V3($0.x, $0.y, -$0.z) } })
        let useReflection = reflected.squared < direct.squared
        let best = useReflection ? reflected.frames : direct.frames
        let perFrame = zip(best, gt).map { 100 * meanDistance($0.0, $0.1) }
        return FrameErrors(perFrame: perFrame, flipped: Array(repeating: useReflection, count: perFrame.count))
    }

    // MARK: - Frame plumbing

    /// Runs `body` on the evaluated points of every frame (prediction, ground truth, frame index)
    /// and collects its (value, flipped) results. With `keepRoot: .root(i)` point i is moved to
    /// the front of both arrays (where ``centered(_:_:)`` looks for it); frames whose root is
    /// masked out are rejected. The metrics are invariant to the order of points.
    static func perFrame(_ op: String, _ prediction: Tensor, _ groundTruth: Tensor, _ mask: Tensor?, minimumPoints: Int,
                         keepRoot: Centering = .none,
                         _ body: ([V3], [V3], Int) throws -> (Double, Bool)) throws -> FrameErrors {
        let batch = try checkedBatchShape(groundTruth, trailing: [-1, 3], op: op, name: "groundTruth")
        try checkShape(prediction, groundTruth.shape, op: op, name: "prediction")
        let points = groundTruth.shape[groundTruth.rank - 2]
        if let mask { try checkShape(mask, batch + [points], op: op, name: "mask") }
        let frames = shapeCount(batch)
        let pp = prediction.dataPointer, pg = groundTruth.dataPointer, pm = mask?.dataPointer
        var values: [Double] = [], flips: [Bool] = []
        for f in 0..<frames {
            var p: [V3] = [], g: [V3] = []
            var rootSlot = -1
            for i in 0..<points where pm.map({ $0[f * points + i] != 0 }) ?? true {
                if case let .root(r) = keepRoot, r == i { rootSlot = p.count }
                let a = pp + 3 * (f * points + i), b = pg + 3 * (f * points + i)
                p.append(V3(Double(a[0]), Double(a[1]), Double(a[2])))
                g.append(V3(Double(b[0]), Double(b[1]), Double(b[2])))
            }
            if p.count < minimumPoints {
                throw TensorError.invalidArgument(op: op, message: "frame \(f) has \(p.count) evaluated points, needs at least \(minimumPoints)")
            }
            if p.contains(where: { !dot($0, $0).isFinite }) || g.contains(where: { !dot($0, $0).isFinite }) {
                throw TensorError.nonFinite(op: op, message: "frame \(f) has a non-finite evaluated coordinate")
            }
            if case .root = keepRoot {
                if rootSlot < 0 { throw TensorError.invalidArgument(op: op, message: "frame \(f): the root point is masked out") }
                // Move the root to the front so centring can find it.
                p.swapAt(0, rootSlot); g.swapAt(0, rootSlot)
            }
            let (v, flipped) = try body(p, g, f)
            values.append(v); flips.append(flipped)
        }
        return FrameErrors(perFrame: values, flipped: flips)
    }

    /// Removes the object distance. `.root` expects the root point first (see ``perFrame``).
    static func centered(_ x: [V3], _ mode: Centering) -> [V3] {
        switch mode {
        case .none: return x
        case .root: return x.map { $0 - x[0] }
        case .mean:
            let mu = x.reduce(.zero, +) / Double(x.count)
            return x.map { $0 - mu }
        case .meanDepth:
            let z = x.reduce(0) { $0 + $1.z } / Double(x.count)
            return x.map { V3($0.x, $0.y, $0.z - z) }
        }
    }

    /// The lower of `score(x)` and `score(x with z negated)` (when `flip`), and whether the
    /// flipped copy won.
    static func bestOverFlip(_ x: [V3], flip: Bool, _ score: ([V3]) -> Double) -> (Double, Bool) {
        let e0 = score(x)
        guard flip else { return (e0, false) }
        let e1 = score(x.map { V3($0.x, $0.y, -$0.z) })
        return e1 < e0 ? (e1, true) : (e0, false)
    }

    static func frobenius(_ x: [V3]) -> Double { x.reduce(0) { $0 + dot($1, $1) }.squareRoot() }

    static func meanDistance(_ a: [V3], _ b: [V3]) -> Double {
        zip(a, b).reduce(0) { acc, pq in let d = pq.0 - pq.1; return acc + dot(d, d).squareRoot() } / Double(a.count)
    }

    /// `argmin_{s ≥ 0} Σ |s p_i - g_i|²`.
    static func optimalScale(_ p: [V3], _ g: [V3]) -> Double {
        let num = zip(p, g).reduce(0) { $0 + dot($1.0, $1.1) }, den = p.reduce(0) { $0 + dot($1, $1) }
        return den > 0 ? Swift.max(num / den, 0) : 0
    }

    /// `s R x_i + t` for the similarity minimising `Σ |s R x_i + t - y_i|²` (rotation from
    /// ``hornRotation(_:_:)`` of the centred points).
    static func similarityAligned(_ x: [V3], to y: [V3]) -> [V3] {
        let n = Double(x.count)
        let mx = x.reduce(.zero, +) / n, my = y.reduce(.zero, +) / n
        let xc = x.map { $0 - mx }, yc = y.map { $0 - my }
        let r = hornRotation(xc, yc)
        let rx = xc.map { r * $0 }
        let den = xc.reduce(0) { $0 + dot($1, $1) }
        let scale = den > 0 ? zip(rx, yc).reduce(0) { $0 + dot($1.0, $1.1) } / den : 0
        return rx.map { scale * $0 + my }
    }

    /// The proper rotation R maximising `Σ y_iᵀ R x_i` (points taken as given, no centring): the
    /// unit quaternion that is the top eigenvector of Horn's symmetric 4x4 matrix (Horn 1987,
    /// "Closed-form solution of absolute orientation using unit quaternions").
    static func hornRotation(_ x: [V3], _ y: [V3]) -> M3 {
        var s = M3(r0: .zero, r1: .zero, r2: .zero)                 // S_ab = Σ x_a y_b
        for (a, b) in zip(x, y) { s = s + M3.outer(a, b) }
        let (sxx, sxy, sxz) = (s[0, 0], s[0, 1], s[0, 2])
        let (syx, syy, syz) = (s[1, 0], s[1, 1], s[1, 2])
        let (szx, szy, szz) = (s[2, 0], s[2, 1], s[2, 2])
        let horn: [Double] = [
            sxx + syy + szz, syz - szy, szx - sxz, sxy - syx,
            syz - szy, sxx - syy - szz, sxy + syx, szx + sxz,
            szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy,
            sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz,
        ]
        let q = topEigenvector4(horn)
        return SO3.quaternionMatrix(q[0], q[1], q[2], q[3])
    }

    /// Eigenvector of the largest eigenvalue of a symmetric 4x4 matrix (cyclic Jacobi).
    static func topEigenvector4(_ m: [Double]) -> [Double] {
        var a = m
        var v = [Double](repeating: 0, count: 16)
        for i in 0..<4 { v[5 * i] = 1 }
        for _ in 0..<50 {
            var off = 0.0, diag = 0.0
            for i in 0..<4 { diag += a[5 * i] * a[5 * i]; for j in 0..<4 where j != i { off += a[4 * i + j] * a[4 * i + j] } }
            if off <= 1e-30 * Swift.max(diag, 1e-300) { break }
            for p in 0..<3 {
                for q in (p + 1)..<4 where a[4 * p + q] != 0 {
                    let app = a[5 * p], aqq = a[5 * q], apq = a[4 * p + q]
                    let theta = (aqq - app) / (2 * apq)
                    let t = (theta >= 0 ? 1 : -1) / (Swift.abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    // A ← Jᵀ A J with the rotation in the (p, q) plane.
                    for k in 0..<4 {
                        let akp = a[4 * k + p], akq = a[4 * k + q]
                        a[4 * k + p] = c * akp - s * akq
                        a[4 * k + q] = s * akp + c * akq
                    }
                    for k in 0..<4 {
                        let apk = a[4 * p + k], aqk = a[4 * q + k]
                        a[4 * p + k] = c * apk - s * aqk
                        a[4 * q + k] = s * apk + c * aqk
                    }
                    for k in 0..<4 {
                        let vkp = v[4 * k + p], vkq = v[4 * k + q]
                        v[4 * k + p] = c * vkp - s * vkq
                        v[4 * k + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        var best = 0
        for i in 1..<4 where a[5 * i] > a[5 * best] { best = i }
        return (0..<4).map { v[4 * $0 + best] }
    }
}
