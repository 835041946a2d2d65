import Foundation

// Resampling: nearest/bilinear upsampling and bilinear/trilinear grid sampling, with PyTorch's
// index conventions so hyper-parameters and pretrained behaviour carry over.

// MARK: - Upsampling

private func checkUpsample(_ input: Tensor, _ size: (Int, Int), op: String) {
    if input.rank != 4 { fail(.shapeMismatch(op: op, expected: "input [N, C, H, W]", found: "\(input.shape)")) }
    if size.0 < 1 || size.1 < 1 { fail(.invalidArgument(op: op, message: "output size must be positive, found \(size)")) }
    if input.shape[2] < 1 || input.shape[3] < 1 {
        fail(.shapeMismatch(op: op, expected: "a non-empty image [N, C, H >= 1, W >= 1]", found: "\(input.shape)"))
    }
}

/// Runs `body` over ranges of the `planes` (n, c) planes, on several cores when there is enough work.
private func forPlanes(_ planes: Int, work: Int, _ body: (Range<Int>) -> Void) {
    Threads.parallelRanges(planes, minChunk: Swift.max(1, 32768 / Swift.max(work, 1)), body)
}

/// PyTorch's nearest rule: source index `min(floor(dst · in / out), in - 1)`, in Float32.
private func nearestSourceIndices(input: Int, output: Int) -> [Int] {
    let scale = Float(input) / Float(output)
    return (0..<output).map { Swift.min(Int((Float($0) * scale).rounded(.down)), input - 1) }
}

/// Nearest-neighbour resize of [N, C, H, W] to [N, C, size.0, size.1], like PyTorch's
/// `F.interpolate(mode: "nearest")` (source index `floor(dst · in / out)`).
public func upsampleNearest2d(_ input: Tensor, size: (Int, Int)) -> Tensor {
    checkUpsample(input, size, op: "upsampleNearest2d")
    let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    let (ho, wo) = size
    let rows = nearestSourceIndices(input: h, output: ho), cols = nearestSourceIndices(input: w, output: wo)
    let y = Tensor(uninitializedShape: [n, c, ho, wo])
    let xp = input.dataPointer, yp = y.dataPointer
    forPlanes(n * c, work: ho * wo) { planes in
        for p in planes {
            let src = xp + p * h * w, dst = yp + p * ho * wo
            for i in 0..<ho {
                let srow = src + rows[i] * w, drow = dst + i * wo
                for j in 0..<wo { drow[j] = srow[cols[j]] }
            }
        }
    }
    let shape = input.shape
    return Tensor.record("upsampleNearest2d", output: y, inputs: [input]) { gy in
        let gx = Tensor(shape: shape, repeating: 0)
        let gp = gy.dataPointer, gxp = gx.dataPointer
        forPlanes(n * c, work: ho * wo) { planes in
            for p in planes {
                let src = gp + p * ho * wo, dst = gxp + p * h * w
                for i in 0..<ho {
                    let drow = dst + rows[i] * w, srow = src + i * wo
                    for j in 0..<wo { drow[cols[j]] += srow[j] }
                }
            }
        }
        return [gx]
    }
}

/// Nearest-neighbour upsampling by an integer factor (`size = (H·factor, W·factor)`).
public func upsampleNearest2d(_ input: Tensor, scaleFactor: Int) -> Tensor {
    if input.rank != 4 { fail(.shapeMismatch(op: "upsampleNearest2d", expected: "input [N, C, H, W]", found: "\(input.shape)")) }
    return upsampleNearest2d(input, size: (input.shape[2] * scaleFactor, input.shape[3] * scaleFactor))
}

/// One axis of linear interpolation: for each output index, the two source indices and weights.
private struct LinearTaps {
    var i0: [Int], i1: [Int], l0: [Float], l1: [Float]

    /// PyTorch's `area_pixel_compute_source_index`: with aligned corners the end pixels' centres
    /// coincide; otherwise pixel centres sit at `(dst + 0.5)·in/out - 0.5`, clamped at 0.
    init(input: Int, output: Int, alignCorners: Bool) {
        let scale: Float = alignCorners ? (output > 1 ? Float(input - 1) / Float(output - 1) : 0) : Float(input) / Float(output)
        i0 = []; i1 = []; l0 = []; l1 = []
        for d in 0..<output {
            var src = alignCorners ? scale * Float(d) : scale * (Float(d) + 0.5) - 0.5
            if src < 0 { src = 0 }
            let a = Swift.min(Int(src), input - 1)
            let b = a + (a < input - 1 ? 1 : 0)
            let lambda = src - Float(a)
            i0.append(a); i1.append(b); l1.append(lambda); l0.append(1 - lambda)
        }
    }
}

/// Bilinear resize of [N, C, H, W] to [N, C, size.0, size.1], like PyTorch's
/// `F.interpolate(mode: "bilinear", align_corners:)` (no antialiasing).
public func upsampleBilinear2d(_ input: Tensor, size: (Int, Int), alignCorners: Bool = false) -> Tensor {
    checkUpsample(input, size, op: "upsampleBilinear2d")
    let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    let (ho, wo) = size
    let ry = LinearTaps(input: h, output: ho, alignCorners: alignCorners)
    let rx = LinearTaps(input: w, output: wo, alignCorners: alignCorners)
    let y = Tensor(uninitializedShape: [n, c, ho, wo])
    let xp = input.dataPointer, yp = y.dataPointer
    forPlanes(n * c, work: 4 * ho * wo) { planes in
        for p in planes {
            let src = xp + p * h * w, dst = yp + p * ho * wo
            for i in 0..<ho {
                let r0 = src + ry.i0[i] * w, r1 = src + ry.i1[i] * w, a = ry.l0[i], b = ry.l1[i]
                let drow = dst + i * wo
                for j in 0..<wo {
                    let x0 = rx.i0[j], x1 = rx.i1[j], c0 = rx.l0[j], c1 = rx.l1[j]
                    drow[j] = a * (c0 * r0[x0] + c1 * r0[x1]) + b * (c0 * r1[x0] + c1 * r1[x1])
                }
            }
        }
    }
    let shape = input.shape
    return Tensor.record("upsampleBilinear2d", output: y, inputs: [input]) { gy in
        let gx = Tensor(shape: shape, repeating: 0)
        let gp = gy.dataPointer, gxp = gx.dataPointer
        forPlanes(n * c, work: 4 * ho * wo) { planes in
            for p in planes {
                let src = gp + p * ho * wo, dst = gxp + p * h * w
                for i in 0..<ho {
                    let r0 = dst + ry.i0[i] * w, r1 = dst + ry.i1[i] * w, a = ry.l0[i], b = ry.l1[i]
                    let grow = src + i * wo
                    for j in 0..<wo {
                        let x0 = rx.i0[j], x1 = rx.i1[j], c0 = rx.l0[j], c1 = rx.l1[j], v = grow[j]
                        r0[x0] += a * c0 * v; r0[x1] += a * c1 * v
                        r1[x0] += b * c0 * v; r1[x1] += b * c1 * v
                    }
                }
            }
        }
        return [gx]
    }
}

/// Bilinear upsampling by an integer factor (`size = (H·factor, W·factor)`).
public func upsampleBilinear2d(_ input: Tensor, scaleFactor: Int, alignCorners: Bool = false) -> Tensor {
    if input.rank != 4 { fail(.shapeMismatch(op: "upsampleBilinear2d", expected: "input [N, C, H, W]", found: "\(input.shape)")) }
    return upsampleBilinear2d(input, size: (input.shape[2] * scaleFactor, input.shape[3] * scaleFactor), alignCorners: alignCorners)
}

// MARK: - Grid sampling

/// How ``gridSample(_:grid:padding:alignCorners:)`` treats locations outside the input.
public enum GridPadding: Sendable {
    /// Taps outside the input read zero.
    case zeros
    /// Locations are clamped to the border pixels (no gradient w.r.t. the clamped coordinate).
    case border
}

/// Maps a normalised coordinate in [-1, 1] to pixel units along an axis of `size` pixels and
/// returns it with its derivative, following PyTorch's `grid_sampler_compute_source_index`:
/// with aligned corners -1 and 1 are the centres of the end pixels, otherwise their outer edges.
@inline(__always)
private func gridSourceIndex(_ coord: Float, size: Int, alignCorners: Bool, padding: GridPadding) -> (Float, Float) {
    var x: Float, dx: Float
    if alignCorners {
        dx = Float(size - 1) / 2
        x = (coord + 1) * dx
    } else {
        dx = Float(size) / 2
        x = ((coord + 1) * Float(size) - 1) / 2
    }
    if padding == .border {
        // The borders count as outside for the gradient, as in PyTorch.
        let limit = Float(size - 1)
        if x <= 0 || x.isNaN { x = 0; dx = 0 } else if x >= limit { x = limit; dx = 0 }
    }
    return (x, dx)
}

/// Bilinear taps of a pixel-unit location: lower corner and fractional offsets. `nil` when every
/// tap is outside `[0, size)` (or the location is NaN), so the sample is zero with zero gradient.
@inline(__always)
private func linearCorner(_ x: Float, size: Int) -> (Int, Float)? {
    guard x > -1 && x < Float(size) else { return nil }
    let f = x.rounded(.down)
    return (Int(f), x - f)
}

private func checkGrid(_ input: Tensor, _ grid: Tensor, dims: Int, op: String) {
    let names = dims == 2 ? "[N, C, H, W]" : "[N, C, D, H, W]"
    if input.rank != dims + 2 { fail(.shapeMismatch(op: op, expected: "input \(names)", found: "\(input.shape)")) }
    let gridNames = dims == 2 ? "[\(input.shape[0]), Ho, Wo, 2]" : "[\(input.shape[0]), Do, Ho, Wo, 3]"
    if grid.rank != dims + 2 || grid.shape[0] != input.shape[0] || grid.shape[dims + 1] != dims {
        fail(.shapeMismatch(op: op, expected: "grid \(gridNames) for input \(input.shape)", found: "\(grid.shape)"))
    }
    // The kernels clamp tap offsets into the input, which needs at least one pixel per axis.
    if input.shape[2...].contains(0) {
        fail(.shapeMismatch(op: op, expected: "input \(names) with non-empty spatial dimensions", found: "\(input.shape)"))
    }
}

/// The backward pass of grid sampling over the (n, c) planes, split into chunks over the cores:
/// `body(b, channels, gridGrad)` visits every output point for sample `b`'s `channels`, so
/// input-gradient writes of different chunks never overlap, and adds the grid gradient to the
/// chunk's own zeroed buffer (`nil` when `gridShape` is `nil`), laid out like the grid. The
/// buffers are summed in chunk order, so results do not depend on timing.
private func forPlaneChunks(n: Int, c: Int, points: Int, minPlanePoints: Int, gridShape: [Int]?,
                            _ body: (_ b: Int, _ channels: Range<Int>, _ gridGrad: UnsafeMutablePointer<Float>?) -> Void) -> Tensor? {
    let chunks = Swift.max(1, Swift.min(Threads.coreCount, n * c * points / minPlanePoints, n * c))
    let gridCount = gridShape.map(shapeCount) ?? 0
    let partials = (0..<(gridShape == nil ? 0 : chunks)).map { _ in KernelScratch(gridCount) }
    DispatchQueue.concurrentPerform(iterations: chunks) { t in
        let gg = gridShape == nil ? nil : partials[t].pointer
        gg?.update(repeating: 0, count: gridCount)
        var plane = n * c * t / chunks
        let end = n * c * (t + 1) / chunks
        while plane < end {
            let b = plane / c, c0 = plane % c, c1 = Swift.min(c, c0 + (end - plane))
            body(b, c0..<c1, gg)
            plane += c1 - c0
        }
    }
    guard let gridShape else { return nil }
    let out = Tensor(shape: gridShape, repeating: 0)
    let op = out.dataPointer
    for part in partials { for i in 0..<gridCount { op[i] += part.pointer[i] } }
    return out
}

/// Samples `input` [N, C, H, W] bilinearly at `grid` [N, Ho, Wo, 2] locations, like PyTorch's
/// `F.grid_sample(mode: "bilinear")`. Each grid entry is (x, y) in [-1, 1] (x along W, y along H).
/// Differentiable w.r.t. both the input and the grid.
///
/// - Returns: [N, C, Ho, Wo].
public func gridSample(_ input: Tensor, grid: Tensor, padding: GridPadding = .zeros, alignCorners: Bool = false) -> Tensor {
    checkGrid(input, grid, dims: 2, op: "gridSample")
    let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    let (ho, wo) = (grid.shape[1], grid.shape[2])
    let points = ho * wo, plane = h * w
    let y = Tensor(uninitializedShape: [n, c, ho, wo])
    let xp = input.dataPointer, gp = grid.dataPointer, yp = y.dataPointer
    // Forward: each output location is independent; split (n, location) pairs over the cores.
    Threads.parallelRanges(n * points, minChunk: Swift.max(1, 4096 / Swift.max(c, 1))) { range in
        for q in range {
            let b = q / points, p = q % points
            let (ix, _) = gridSourceIndex(gp[2 * q], size: w, alignCorners: alignCorners, padding: padding)
            let (iy, _) = gridSourceIndex(gp[2 * q + 1], size: h, alignCorners: alignCorners, padding: padding)
            let out = yp + b * c * points + p
            guard let (x0, fx) = linearCorner(ix, size: w), let (y0, fy) = linearCorner(iy, size: h) else {
                for ch in 0..<c { out[ch * points] = 0 }
                continue
            }
            let in00 = y0 >= 0 && x0 >= 0, in01 = y0 >= 0 && x0 + 1 < w
            let in10 = y0 + 1 < h && x0 >= 0, in11 = y0 + 1 < h && x0 + 1 < w
            let w00 = in00 ? (1 - fx) * (1 - fy) : 0, w01 = in01 ? fx * (1 - fy) : 0
            let w10 = in10 ? (1 - fx) * fy : 0, w11 = in11 ? fx * fy : 0
            // Out-of-bounds taps have zero weight; clamp their offsets so every read is valid.
            let o00 = Swift.max(y0, 0) * w + Swift.max(x0, 0), o01 = Swift.max(y0, 0) * w + Swift.min(x0 + 1, w - 1)
            let o10 = Swift.min(y0 + 1, h - 1) * w + Swift.max(x0, 0), o11 = Swift.min(y0 + 1, h - 1) * w + Swift.min(x0 + 1, w - 1)
            var src = xp + b * c * plane
            for ch in 0..<c {
                out[ch * points] = w00 * src[o00] + w01 * src[o01] + w10 * src[o10] + w11 * src[o11]
                src += plane
            }
        }
    }
    guard GradMode.isEnabled, input.isTracked || grid.isTracked else { return y }
    let needInput = input.isTracked, needGrid = grid.isTracked
    let xd = input.detached(), gridD = grid.detached()
    return Tensor.record("gridSample", output: y, inputs: [input, grid]) { gy in
        let gx = needInput ? Tensor(shape: [n, c, h, w], repeating: 0) : nil
        let xp = xd.dataPointer, gp = gridD.dataPointer, gyp = gy.dataPointer, gxp = gx?.dataPointer
        let ggrid = forPlaneChunks(n: n, c: c, points: points, minPlanePoints: 8192,
                                   gridShape: needGrid ? [n, ho, wo, 2] : nil) { b, channels, gg in
            let (c0, c1) = (channels.lowerBound, channels.upperBound)
            for p in 0..<points {
                let q = b * points + p
                let (ix, dix) = gridSourceIndex(gp[2 * q], size: w, alignCorners: alignCorners, padding: padding)
                let (iy, diy) = gridSourceIndex(gp[2 * q + 1], size: h, alignCorners: alignCorners, padding: padding)
                guard let (x0, fx) = linearCorner(ix, size: w), let (y0, fy) = linearCorner(iy, size: h) else { continue }
                let in00 = y0 >= 0 && x0 >= 0, in01 = y0 >= 0 && x0 + 1 < w
                let in10 = y0 + 1 < h && x0 >= 0, in11 = y0 + 1 < h && x0 + 1 < w
                let o00 = Swift.max(y0, 0) * w + Swift.max(x0, 0), o01 = Swift.max(y0, 0) * w + Swift.min(x0 + 1, w - 1)
                let o10 = Swift.min(y0 + 1, h - 1) * w + Swift.max(x0, 0), o11 = Swift.min(y0 + 1, h - 1) * w + Swift.min(x0 + 1, w - 1)
                let w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy
                var gix: Float = 0, giy: Float = 0
                for ch in c0..<c1 {
                    let go = gyp[(b * c + ch) * points + p]
                    let base = (b * c + ch) * plane
                    let v00 = in00 ? xp[base + o00] : 0, v01 = in01 ? xp[base + o01] : 0
                    let v10 = in10 ? xp[base + o10] : 0, v11 = in11 ? xp[base + o11] : 0
                    if let gxp {
                        if in00 { gxp[base + o00] += w00 * go }
                        if in01 { gxp[base + o01] += w01 * go }
                        if in10 { gxp[base + o10] += w10 * go }
                        if in11 { gxp[base + o11] += w11 * go }
                    }
                    gix += go * ((v01 - v00) * (1 - fy) + (v11 - v10) * fy)
                    giy += go * ((v10 - v00) * (1 - fx) + (v11 - v01) * fx)
                }
                if let gg {
                    gg[2 * q] += gix * dix
                    gg[2 * q + 1] += giy * diy
                }
            }
        }
        return [gx, ggrid]
    }
}

/// Samples `input` [N, C, D, H, W] trilinearly at `grid` [N, Do, Ho, Wo, 3] locations, like
/// PyTorch's 5-D `F.grid_sample(mode: "bilinear")`. Each grid entry is (x, y, z) in [-1, 1]
/// (x along W, y along H, z along D). Differentiable w.r.t. both the input and the grid.
///
/// - Returns: [N, C, Do, Ho, Wo].
public func gridSample3d(_ input: Tensor, grid: Tensor, padding: GridPadding = .zeros, alignCorners: Bool = false) -> Tensor {
    checkGrid(input, grid, dims: 3, op: "gridSample3d")
    let (n, c, d, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3], input.shape[4])
    let (dOut, hOut, wOut) = (grid.shape[1], grid.shape[2], grid.shape[3])
    let points = dOut * hOut * wOut, volume = d * h * w
    let y = Tensor(uninitializedShape: [n, c, dOut, hOut, wOut])
    let xp = input.dataPointer, gp = grid.dataPointer, yp = y.dataPointer

    Threads.parallelRanges(n * points, minChunk: Swift.max(1, 2048 / Swift.max(c, 1))) { range in
        for q in range {
            let b = q / points, p = q % points
            let (ix, _) = gridSourceIndex(gp[3 * q], size: w, alignCorners: alignCorners, padding: padding)
            let (iy, _) = gridSourceIndex(gp[3 * q + 1], size: h, alignCorners: alignCorners, padding: padding)
            let (iz, _) = gridSourceIndex(gp[3 * q + 2], size: d, alignCorners: alignCorners, padding: padding)
            let out = yp + b * c * points + p
            guard let (x0, fx) = linearCorner(ix, size: w), let (y0, fy) = linearCorner(iy, size: h),
                  let (z0, fz) = linearCorner(iz, size: d) else {
                for ch in 0..<c { out[ch * points] = 0 }
                continue
            }
            let t = TrilinearTaps(x0, y0, z0, fx, fy, fz, d: d, h: h, w: w)
            var src = xp + b * c * volume
            for ch in 0..<c {
                out[ch * points] = (t.weights * t.gather(src)).sum()
                src += volume
            }
        }
    }
    guard GradMode.isEnabled, input.isTracked || grid.isTracked else { return y }
    let needInput = input.isTracked, needGrid = grid.isTracked
    let xd = input.detached(), gridD = grid.detached()
    return Tensor.record("gridSample3d", output: y, inputs: [input, grid]) { gy in
        let gx = needInput ? Tensor(shape: [n, c, d, h, w], repeating: 0) : nil
        let xp = xd.dataPointer, gp = gridD.dataPointer, gyp = gy.dataPointer, gxp = gx?.dataPointer
        let ggrid = forPlaneChunks(n: n, c: c, points: points, minPlanePoints: 4096,
                                   gridShape: needGrid ? [n, dOut, hOut, wOut, 3] : nil) { b, channels, gg in
            let (c0, c1) = (channels.lowerBound, channels.upperBound)
            for p in 0..<points {
                let q = b * points + p
                let (ix, dix) = gridSourceIndex(gp[3 * q], size: w, alignCorners: alignCorners, padding: padding)
                let (iy, diy) = gridSourceIndex(gp[3 * q + 1], size: h, alignCorners: alignCorners, padding: padding)
                let (iz, diz) = gridSourceIndex(gp[3 * q + 2], size: d, alignCorners: alignCorners, padding: padding)
                guard let (x0, fx) = linearCorner(ix, size: w), let (y0, fy) = linearCorner(iy, size: h),
                      let (z0, fz) = linearCorner(iz, size: d) else { continue }
                let t = TrilinearTaps(x0, y0, z0, fx, fy, fz, d: d, h: h, w: w)
                // d(weight_k)/dx = ±(y factor)(z factor), the sign from corner k's x bit; same for y, z.
                let dwx = t.sx * t.fyv * t.fzv, dwy = t.sy * t.fxv * t.fzv, dwz = t.sz * t.fxv * t.fyv
                var acc = SIMD8<Float>()
                for ch in c0..<c1 {
                    let go = gyp[(b * c + ch) * points + p]
                    let base = (b * c + ch) * volume
                    acc += go * t.gather(xp + base)
                    if let gxp {
                        let gw = go * t.weights
                        for k in 0..<8 where t.mask[k] != 0 { gxp[base + t.offsets[k]] += gw[k] }
                    }
                }
                let gix = (acc * dwx).sum(), giy = (acc * dwy).sum(), giz = (acc * dwz).sum()
                if let gg {
                    gg[3 * q] += gix * dix
                    gg[3 * q + 1] += giy * diy
                    gg[3 * q + 2] += giz * diz
                }
            }
        }
        return [gx, ggrid]
    }
}

/// The eight trilinear taps of a location: offsets into a [d, h, w] volume (clamped inside it),
/// in-bounds mask, per-axis factors and weights. Corner k has x bit `k & 1`, y bit `(k >> 1) & 1`,
/// z bit `k >> 2`. Out-of-bounds corners get weight 0 and read as 0.
private struct TrilinearTaps {
    var offsets = SIMD8<Int>(), mask = SIMD8<Float>()
    var fxv: SIMD8<Float>, fyv: SIMD8<Float>, fzv: SIMD8<Float>, weights: SIMD8<Float>
    let sx = SIMD8<Float>(-1, 1, -1, 1, -1, 1, -1, 1)
    let sy = SIMD8<Float>(-1, -1, 1, 1, -1, -1, 1, 1)
    let sz = SIMD8<Float>(-1, -1, -1, -1, 1, 1, 1, 1)

    @inline(__always)
    init(_ x0: Int, _ y0: Int, _ z0: Int, _ fx: Float, _ fy: Float, _ fz: Float, d: Int, h: Int, w: Int) {
        fxv = SIMD8(1 - fx, fx, 1 - fx, fx, 1 - fx, fx, 1 - fx, fx)
        fyv = SIMD8(1 - fy, 1 - fy, fy, fy, 1 - fy, 1 - fy, fy, fy)
        fzv = SIMD8(1 - fz, 1 - fz, 1 - fz, 1 - fz, fz, fz, fz, fz)
        for k in 0..<8 {
            let zz = z0 + (k >> 2), yy = y0 + ((k >> 1) & 1), xx = x0 + (k & 1)
            let inside = zz >= 0 && zz < d && yy >= 0 && yy < h && xx >= 0 && xx < w
            mask[k] = inside ? 1 : 0
            offsets[k] = (Swift.min(Swift.max(zz, 0), d - 1) * h + Swift.min(Swift.max(yy, 0), h - 1)) * w
                + Swift.min(Swift.max(xx, 0), w - 1)
        }
        weights = fxv * fyv * fzv * mask
    }

    /// The eight corner values of one channel (0 outside the volume).
    @inline(__always)
    func gather(_ src: UnsafePointer<Float>) -> SIMD8<Float> {
        var v = SIMD8<Float>()
        for k in 0..<8 { v[k] = src[offsets[k]] }
        return v * mask
    }
}
