import DeformTensor
import Foundation

/// Trainable feature grids: explicit tables of features looked up by interpolation at 3D points,
/// the representations that make radiance fields trainable on a CPU (a small MLP reads the
/// interpolated features instead of a large MLP reading Fourier features).
///
/// - ``trilinear(grid:points:)``: a dense voxel grid of C channels (DVGO, Plenoxels-style).
/// - ``triplane(planes:points:combine:)``: three axis-aligned feature planes (EG3D, ExAvatar).
/// - ``hashGrid(tables:points:baseResolution:growth:)``: the multiresolution hash encoding of
///   Instant-NGP (Müller et al. 2022).
///
/// Each op is one fused kernel with a hand-written backward registered with the engine, and is
/// differentiable with respect to both the grid values and the query points.
///
/// Conventions shared by the three:
/// - Features are stored channels-last (`[..., C]`): the interpolation reads the C features of a
///   corner as one contiguous run, where a channels-first layout would make C scattered reads.
/// - Points outside the domain are clamped onto its boundary (border padding). The gradient with
///   respect to a clamped coordinate is 0, because moving it does not change the output.
/// - Points holding NaN or infinity are refused with ``TensorError/nonFinite(op:message:)``. The
///   grid values are not scanned: that would cost a pass over a table that is usually far larger
///   than the batch, and a non-finite value shows up in the outputs it touches anyway.
/// - Linear interpolation is only piecewise smooth: the gradient with respect to a point jumps
///   where the point crosses a cell boundary.
///
/// The backward passes add into the grid gradient from two threads without races and without a
/// second grid-sized buffer: each thread owns a disjoint part of the gradient (a range of slices
/// or plane rows, balanced by the number of points that touch them, or a set of hash-grid levels)
/// and visits every point, writing only into its part. The results do not depend on timing.
public enum FeatureGrids {
    /// Below this many point-channel products a kernel runs on one thread: splitting costs more
    /// than it saves.
    static let parallelWork = 4096

    /// Dense voxel grid sampling with trilinear interpolation.
    ///
    /// - Parameters:
    ///   - grid: `[D, H, W, C]`, channels last (see the type's notes). Sample `(z, y, x)` sits at
    ///     the centre of voxel `(z, y, x)`.
    ///   - points: `[N, 3]`, (x, y, z) in normalised coordinates: x runs along W, y along H, z along
    ///     D. The align-corners convention: -1 and 1 are the centres of the first and last voxel of
    ///     an axis, so a coordinate u maps to voxel position `(u + 1) / 2 · (size - 1)`. Points
    ///     outside [-1, 1] are clamped to the border. (PyTorch's `grid_sample` with
    ///     `align_corners=True, padding_mode="border"` on the channels-first grid.)
    /// - Returns: `[N, C]`, differentiable with respect to `grid` and `points`.
    /// - Throws: ``TensorError`` when a shape is wrong or a point holds NaN or infinity.
    public static func trilinear(grid: Tensor, points: Tensor) throws -> Tensor {
        let op = "FeatureGrids.trilinear"
        guard grid.rank == 4, !grid.shape.contains(0) else {
            throw TensorError.shapeMismatch(op: op, expected: "grid [D, H, W, C] (channels last) with every dimension at least 1",
                                            found: "\(grid.shape)")
        }
        try checkPoints(points, op: op)
        let dims = VoxelDims(grid.shape)
        let n = points.shape[0], c = dims.c
        let out = Tensor(uninitializedShape: [n, c])
        let gp = grid.dataPointer, pp = points.dataPointer, op0 = out.dataPointer
        Threads.parallelRanges(n, minChunk: Swift.max(1, parallelWork / (8 * c))) { range in
            for i in range {
                let t = VoxelTaps(pp + 3 * i, dims)
                let o = op0 + i * c
                o.update(repeating: 0, count: c)
                for k in 0..<8 {
                    let wk = t.w.w[k], src = gp + t.offsets[k]
                    for ch in 0..<c { o[ch] += wk * src[ch] }
                }
            }
        }
        let gridD = grid.detached(), pointsD = points.detached()
        let needGrid = grid.isTracked, needPoints = points.isTracked
        return Tensor.record("FeatureGrids.trilinear", output: out, inputs: [grid, points]) { g in
            let grads = trilinearBackward(grid: gridD, points: pointsD, gOut: g, needGrid: needGrid, needPoints: needPoints)
            return [grads.grid, grads.points]
        }
    }

    /// The VJP of ``trilinear(grid:points:)``: `∂L/∂grid` (scatter of `w_k ḡ` onto the eight
    /// corners) and `∂L/∂points` (`Σ_k (∂w_k/∂p) ⟨ḡ, v_k⟩`).
    static func trilinearBackward(grid: Tensor, points: Tensor, gOut: Tensor, needGrid: Bool, needPoints: Bool)
        -> (grid: Tensor?, points: Tensor?) {
        let dims = VoxelDims(grid.shape)
        let n = points.shape[0], c = dims.c
        let gridGrad = needGrid ? Tensor.zeros(grid.shape) : nil
        let pointGrad = needPoints ? Tensor.zeros([n, 3]) : nil
        let gp = grid.dataPointer, pp = points.dataPointer, gy = gOut.dataPointer
        let ggp = gridGrad?.dataPointer
        guard needGrid else {
            // Only the points: every point's row is its own, so split the points.
            let pg = pointGrad?.dataPointer
            Threads.parallelRanges(n, minChunk: Swift.max(1, parallelWork / (8 * c))) { range in
                voxelBackwardPass(gp, pp, gy, dims, points: range, slices: 0..<dims.d, gridGrad: nil, pointGrad: pg)
            }
            return (nil, pointGrad)
        }
        // Each thread owns a range of z-slices of the gradient, chosen so that the threads get
        // about the same number of corner writes. (Splitting by channel instead would have both
        // threads writing the same cache lines at the same time.)
        let chunks = n * c >= parallelWork ? Swift.min(Threads.coreCount, dims.d) : 1
        var bounds = [0, dims.d]
        if chunks > 1 {
            var counts = [Int](repeating: 0, count: dims.d)
            for i in 0..<n {
                let tz = AxisTap(normalized: pp[3 * i + 2], size: dims.d)
                counts[tz.i0] += 1
                counts[tz.i1] += 1
            }
            bounds = balancedBoundaries(counts, chunks: chunks)
        }
        let partials = PointGradPartials(pointGrad, chunks: chunks)
        Threads.parallelRanges(chunks) { owners in
            for t in owners {
                voxelBackwardPass(gp, pp, gy, dims, points: 0..<n, slices: bounds[t]..<bounds[t + 1],
                                  gridGrad: ggp, pointGrad: partials.pointer(t))
            }
        }
        partials.reduce()
        return (gridGrad, pointGrad)
    }

    /// One share of the trilinear backward: the points in `points`, and only the corners whose z
    /// index lies in `slices` (the other corners belong to another thread).
    @inline(__always)
    private static func voxelBackwardPass(_ gp: UnsafeMutablePointer<Float>, _ pp: UnsafeMutablePointer<Float>,
                                          _ gy: UnsafeMutablePointer<Float>, _ dims: VoxelDims,
                                          points: Range<Int>, slices: Range<Int>,
                                          gridGrad: UnsafeMutablePointer<Float>?, pointGrad: UnsafeMutablePointer<Float>?) {
        let c = dims.c
        for i in points {
            let tz = AxisTap(normalized: pp[3 * i + 2], size: dims.d)
            let own0 = slices.contains(tz.i0), own1 = slices.contains(tz.i1)
            if !own0 && !own1 { continue }
            let t = VoxelTaps(pp + 3 * i, dims)
            let g = gy + i * c
            var dots = SIMD8<Float>()
            for k in 0..<8 where (k < 4 ? own0 : own1) {
                let base = t.offsets[k]
                if let gridGrad {
                    let wk = t.w.w[k], dst = gridGrad + base
                    for ch in 0..<c { dst[ch] += wk * g[ch] }
                }
                if pointGrad != nil {
                    let src = gp + base
                    var s: Float = 0
                    for ch in 0..<c { s += g[ch] * src[ch] }
                    dots[k] = s
                }
            }
            if let pointGrad {
                let d = t.w.pointGradient(dots)
                pointGrad[3 * i] += d.x * t.tx.df
                pointGrad[3 * i + 1] += d.y * t.ty.df
                pointGrad[3 * i + 2] += d.z * t.tz.df
            }
        }
    }

    /// Boundaries `0 = b_0 ≤ b_1 ≤ … ≤ b_chunks = counts.count` that split the rows so each chunk
    /// holds about the same total count (the work of a thread owning rows `b_t..<b_{t+1}`).
    static func balancedBoundaries(_ counts: [Int], chunks: Int) -> [Int] {
        let total = counts.reduce(0, +)
        var bounds = [Int](repeating: counts.count, count: chunks + 1)
        bounds[0] = 0
        var acc = 0, next = 1
        for i in 0..<counts.count {
            acc += counts[i]
            while next < chunks && acc * chunks >= total * next {
                bounds[next] = i + 1
                next += 1
            }
        }
        return bounds
    }

    /// Validates query points `[N, 3]`.
    static func checkPoints(_ points: Tensor, op: String) throws {
        guard points.rank == 2, points.shape[1] == 3 else {
            throw TensorError.shapeMismatch(op: op, expected: "points [N, 3]", found: "\(points.shape)")
        }
        let bad = points.withUnsafeBufferPointer { $0.firstIndex { !$0.isFinite } }
        if let bad {
            throw TensorError.nonFinite(op: op, message: "point \(bad / 3) has a non-finite coordinate (\(points.scalars[bad])); "
                                        + "points must be finite (points outside the domain are clamped)")
        }
    }
}

// MARK: - Interpolation helpers shared by the grids

/// Linear interpolation along one axis: the two sample indices, the fraction between them, and the
/// derivative of the sample position with respect to the input coordinate (0 where the coordinate
/// was clamped, since the output then does not move with it).
struct AxisTap {
    var i0: Int, i1: Int, f: Float, df: Float

    /// A position in sample units on an axis of samples `0...last`; `slope` is d(position)/d(input).
    @inline(__always)
    init(position: Float, slope: Float, last: Int) {
        // One sample: the output is constant along this axis.
        guard last > 0 else { i0 = 0; i1 = 0; f = 0; df = 0; return }
        let p = Swift.min(Swift.max(position, 0), Float(last))
        // The last sample is the upper corner of the last cell, so a point on it keeps f = 1.
        let lo = Swift.min(Int(p), last - 1)
        i0 = lo; i1 = lo + 1; f = p - Float(lo); df = slope
    }

    /// An align-corners normalised coordinate `u ∈ [-1, 1]` on an axis of `size` samples.
    @inline(__always)
    init(normalized u: Float, size: Int) {
        let half = Float(size - 1) * 0.5
        self.init(position: (u + 1) * half, slope: u >= -1 && u <= 1 ? half : 0, last: size - 1)
    }

    /// A unit coordinate `x ∈ [0, 1]` on a lattice of `resolution` cells (vertices `0...resolution`).
    @inline(__always)
    init(unit x: Float, resolution: Int) {
        let r = Float(resolution)
        self.init(position: x * r, slope: x >= 0 && x <= 1 ? r : 0, last: resolution)
    }
}

/// Trilinear weights of the eight corners of a cell. Corner k has x bit `k & 1`, y bit
/// `(k >> 1) & 1` and z bit `k >> 2`.
struct CornerWeights {
    var wx: SIMD8<Float>, wy: SIMD8<Float>, wz: SIMD8<Float>, w: SIMD8<Float>

    @inline(__always)
    init(_ fx: Float, _ fy: Float, _ fz: Float) {
        let gx = 1 - fx, gy = 1 - fy, gz = 1 - fz
        wx = SIMD8(gx, fx, gx, fx, gx, fx, gx, fx)
        wy = SIMD8(gy, gy, fy, fy, gy, gy, fy, fy)
        wz = SIMD8(gz, gz, gz, gz, fz, fz, fz, fz)
        w = wx * wy * wz
    }

    /// `Σ_k dots_k ∂w_k/∂(fx, fy, fz)`, where `dots_k = ⟨ḡ, v_k⟩`: the derivative of the
    /// interpolated value with respect to the three fractions.
    @inline(__always)
    func pointGradient(_ dots: SIMD8<Float>) -> (x: Float, y: Float, z: Float) {
        let sx = SIMD8<Float>(-1, 1, -1, 1, -1, 1, -1, 1)
        let sy = SIMD8<Float>(-1, -1, 1, 1, -1, -1, 1, 1)
        let sz = SIMD8<Float>(-1, -1, -1, -1, 1, 1, 1, 1)
        return ((dots * sx * wy * wz).sum(), (dots * sy * wx * wz).sum(), (dots * sz * wx * wy).sum())
    }
}

/// The shape of a channels-last voxel grid `[D, H, W, C]`.
struct VoxelDims {
    let d: Int, h: Int, w: Int, c: Int
    init(_ shape: [Int]) { d = shape[0]; h = shape[1]; w = shape[2]; c = shape[3] }
}

/// The eight corners of the voxel cell around one point: offsets of their feature runs in the
/// grid, trilinear weights, and the per-axis taps.
struct VoxelTaps {
    let tx: AxisTap, ty: AxisTap, tz: AxisTap
    let w: CornerWeights
    let offsets: SIMD8<Int>

    @inline(__always)
    init(_ p: UnsafePointer<Float>, _ dims: VoxelDims) {
        tx = AxisTap(normalized: p[0], size: dims.w)
        ty = AxisTap(normalized: p[1], size: dims.h)
        tz = AxisTap(normalized: p[2], size: dims.d)
        w = CornerWeights(tx.f, ty.f, tz.f)
        let c = CornerIndices(tx, ty, tz)
        offsets = ((c.z &* dims.h &+ c.y) &* dims.w &+ c.x) &* dims.c
    }
}

/// The lattice coordinates of the eight corners, one lane per corner (corner k has x bit `k & 1`,
/// y bit `(k >> 1) & 1`, z bit `k >> 2`). Lane-parallel, because filling a vector one lane at a
/// time goes through memory and stalls the loads that read it back.
struct CornerIndices {
    let x: SIMD8<Int>, y: SIMD8<Int>, z: SIMD8<Int>

    @inline(__always)
    init(_ tx: AxisTap, _ ty: AxisTap, _ tz: AxisTap) {
        x = SIMD8(tx.i0, tx.i1, tx.i0, tx.i1, tx.i0, tx.i1, tx.i0, tx.i1)
        y = SIMD8(ty.i0, ty.i0, ty.i1, ty.i1, ty.i0, ty.i0, ty.i1, ty.i1)
        z = SIMD8(tz.i0, tz.i0, tz.i0, tz.i0, tz.i1, tz.i1, tz.i1, tz.i1)
    }
}

/// Per-thread point-gradient buffers for backward passes split by grid ownership: every thread
/// visits every point and adds its share of each point's gradient. Thread 0 writes into the
/// result itself, the others into zeroed buffers that ``reduce()`` adds in thread order (so the
/// sum does not depend on timing).
final class PointGradPartials {
    private let result: Tensor?
    private let extra: [Tensor]

    init(_ result: Tensor?, chunks: Int) {
        self.result = result
        extra = result == nil ? [] : (1..<Swift.max(chunks, 1)).map { _ in Tensor.zeros(result!.shape) }
    }

    func pointer(_ chunk: Int) -> UnsafeMutablePointer<Float>? {
        guard let result else { return nil }
        return chunk == 0 ? result.dataPointer : extra[chunk - 1].dataPointer
    }

    func reduce() {
        guard let result else { return }
        let out = result.dataPointer
        for part in extra {
            let p = part.dataPointer
            for i in 0..<result.count { out[i] += p[i] }
        }
    }
}
