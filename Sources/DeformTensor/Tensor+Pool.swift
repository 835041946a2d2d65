import Foundation

// 2-D average and max pooling over NCHW tensors with PyTorch's conventions (ceil_mode = false,
// dilation 1). Each (n, c) plane is independent, so planes are split over the cores.

/// Validated pooling geometry shared by the pooling ops.
private struct PoolGeometry {
    var planes, h, w, kh, kw, sh, sw, ph, pw, ho, wo: Int

    init(_ input: Tensor, kernel: (Int, Int), stride: (Int, Int)?, padding: (Int, Int), op: String) {
        if input.rank != 4 { fail(.shapeMismatch(op: op, expected: "input [N, C, H, W]", found: "\(input.shape)")) }
        let s = stride ?? kernel
        if kernel.0 < 1 || kernel.1 < 1 || s.0 < 1 || s.1 < 1 {
            fail(.invalidArgument(op: op, message: "kernel and stride must be positive, found kernel \(kernel) and stride \(s)"))
        }
        // PyTorch's rule: a window must always overlap the input.
        if padding.0 < 0 || padding.1 < 0 || padding.0 > kernel.0 / 2 || padding.1 > kernel.1 / 2 {
            fail(.invalidArgument(op: op, message: "padding must be between 0 and half the kernel size \(kernel), found \(padding)"))
        }
        planes = input.shape[0] * input.shape[1]
        h = input.shape[2]; w = input.shape[3]
        kh = kernel.0; kw = kernel.1; sh = s.0; sw = s.1; ph = padding.0; pw = padding.1
        let hNum = h + 2 * ph - kh, wNum = w + 2 * pw - kw
        if hNum < 0 || wNum < 0 {
            fail(.shapeMismatch(op: op, expected: "a padded input at least as large as the kernel \(kernel) (padding \(padding))",
                                found: "input \(input.shape)"))
        }
        ho = hNum / sh + 1; wo = wNum / sw + 1
    }

    var inPlane: Int { h * w }
    var outPlane: Int { ho * wo }

    /// The in-bounds part of the window of output row `i` (or column, with the column parameters).
    @inline(__always) func rows(_ i: Int) -> Range<Int> { Swift.max(0, i * sh - ph)..<Swift.min(h, i * sh - ph + kh) }
    @inline(__always) func cols(_ j: Int) -> Range<Int> { Swift.max(0, j * sw - pw)..<Swift.min(w, j * sw - pw + kw) }

    /// Runs `body` over ranges of planes on the cores (small problems stay on one thread).
    func forPlanes(_ body: (Range<Int>) -> Void) {
        let work = Swift.max(1, outPlane * kh * kw + inPlane)
        Threads.parallelRanges(planes, minChunk: Swift.max(1, 32768 / work), body)
    }

    /// Visits every row of windows, planes split over the cores: `body(inPlane, outRow, rows)` gets
    /// the plane's input offset, the flat output index of the row's first window and the rows its
    /// windows cover; it loops over the row's `wo` windows itself (a call per window costs more than
    /// a small window's work). Windows of one plane stay on one thread, so a backward pass may add
    /// into that plane.
    @inline(__always)
    func forEachWindowRow(_ body: (_ inPlane: Int, _ outRow: Int, _ rows: Range<Int>) -> Void) {
        forPlanes { planes in
            for p in planes {
                for i in 0..<ho { body(p * inPlane, p * outPlane + i * wo, rows(i)) }
            }
        }
    }
}

/// 2-D average pooling like PyTorch's `F.avg_pool2d` with `count_include_pad = true`: every window
/// is divided by `kh·kw`, zero padding included.
///
/// - Parameters:
///   - input: [N, C, H, W].
///   - stride: defaults to `kernel`.
///   - padding: implicit zeros on each side, at most half the kernel.
/// - Returns: [N, C, Ho, Wo] with `Ho = (H + 2·padding - kh) / stride + 1`.
public func avgPool2d(_ input: Tensor, kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0)) -> Tensor {
    let g = PoolGeometry(input, kernel: kernel, stride: stride, padding: padding, op: "avgPool2d")
    let (n, c) = (input.shape[0], input.shape[1])
    let y = Tensor(uninitializedShape: [n, c, g.ho, g.wo])
    let xp = input.dataPointer, yp = y.dataPointer
    let scale = 1 / Float(g.kh * g.kw)
    g.forEachWindowRow { plane, outRow, rows in
        let src = xp + plane, dst = yp + outRow
        for j in 0..<g.wo {
            let cols = g.cols(j)
            var s: Float = 0
            for r in rows { for q in cols { s += src[r * g.w + q] } }
            dst[j] = s * scale
        }
    }
    let shape = input.shape
    return Tensor.record("avgPool2d", output: y, inputs: [input]) { gy in
        let gx = Tensor(shape: shape, repeating: 0)
        let gp = gy.dataPointer, gxp = gx.dataPointer
        g.forEachWindowRow { plane, outRow, rows in
            let src = gp + outRow, dst = gxp + plane
            for j in 0..<g.wo {
                let cols = g.cols(j), v = src[j] * scale
                for r in rows { for q in cols { dst[r * g.w + q] += v } }
            }
        }
        return [gx]
    }
}

/// 2-D max pooling like PyTorch's `F.max_pool2d` (padding acts as -inf; NaN propagates). The
/// gradient goes to the first maximal element of each window in row-major order.
///
/// - Parameters:
///   - input: [N, C, H, W].
///   - stride: defaults to `kernel`.
///   - padding: implicit -inf on each side, at most half the kernel.
/// - Returns: [N, C, Ho, Wo] with `Ho = (H + 2·padding - kh) / stride + 1`.
public func maxPool2d(_ input: Tensor, kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0)) -> Tensor {
    let g = PoolGeometry(input, kernel: kernel, stride: stride, padding: padding, op: "maxPool2d")
    let (n, c) = (input.shape[0], input.shape[1])
    let y = Tensor(uninitializedShape: [n, c, g.ho, g.wo])
    let tracked = GradMode.isEnabled && input.isTracked
    // Index of each window's maximum within its plane, kept for the backward pass.
    let argmax = ArgmaxBuffer(tracked ? y.count : 0)
    let xp = input.dataPointer, yp = y.dataPointer, ap = argmax.pointer
    g.forEachWindowRow { plane, outRow, rows in
        let src = xp + plane
        for j in 0..<g.wo {
            let cols = g.cols(j)
            var best = -Float.infinity, at = rows.lowerBound * g.w + cols.lowerBound
            for r in rows {
                for q in cols {
                    let v = src[r * g.w + q]
                    if v > best || v.isNaN {
                        best = v; at = r * g.w + q
                        if v.isNaN { break }
                    }
                }
                if best.isNaN { break }
            }
            yp[outRow + j] = best
            if tracked { ap[outRow + j] = Int32(at) }
        }
    }
    guard tracked else { return y }
    let shape = input.shape
    return Tensor.record("maxPool2d", output: y, inputs: [input]) { gy in
        let gx = Tensor(shape: shape, repeating: 0)
        let gp = gy.dataPointer, gxp = gx.dataPointer, ap = argmax.pointer
        g.forPlanes { planes in
            for p in planes {
                let src = gp + p * g.outPlane, idx = ap + p * g.outPlane, dst = gxp + p * g.inPlane
                for k in 0..<g.outPlane { dst[Int(idx[k])] += src[k] }
            }
        }
        return [gx]
    }
}

/// Owned Int32 storage captured by a backward closure.
private final class ArgmaxBuffer {
    let pointer: UnsafeMutablePointer<Int32>
    init(_ count: Int) { pointer = .allocate(capacity: Swift.max(count, 1)) }
    deinit { pointer.deallocate() }
}
