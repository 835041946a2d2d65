import Foundation

extension Tensor {
    func normalizedAxes(_ axes: [Int]?, op: String) -> [Int] {
        guard let axes else { return Array(0..<rank) }
        let a = axes.map { normalizeAxis($0, rank: rank, op: op) }
        if Set(a).count != a.count { fail(.invalidArgument(op: op, message: "repeated axis in \(axes)")) }
        // A 0-D tensor accepts axis 0 or -1 and has nothing to reduce over.
        return rank == 0 ? [] : a.sorted()
    }

    static func reducedShape(_ shape: [Int], _ axes: [Int], keepDims: Bool) -> [Int] {
        let set = Set(axes)
        return keepDims ? shape.enumerated().map { set.contains($0.offset) ? 1 : $0.element }
                        : shape.enumerated().filter { !set.contains($0.offset) }.map { $0.element }
    }

    /// Reduces over `axes` with `combine`, starting from `initial` (no recording). Output has
    /// keep-dims shape.
    @inline(__always)
    func reduceRaw(_ axes: [Int], initial: Float, _ combine: (Float, Float) -> Float) -> Tensor {
        let set = Set(axes)
        let outShape = shape.enumerated().map { set.contains($0.offset) ? 1 : $0.element }
        var out = Tensor(shape: outShape, repeating: initial)
        if count == 0 { return out }
        // Merge neighbouring dims with the same reduced/kept status.
        var dims: [(size: Int, reduced: Bool)] = []
        for (i, d) in shape.enumerated() where d != 1 {
            let r = set.contains(i)
            if let last = dims.last, last.reduced == r { dims[dims.count - 1].size *= d } else { dims.append((d, r)) }
        }
        let src = dataPointer, dst = out.dataPointer
        if dims.isEmpty { dst[0] = combine(initial, src[0]); return out }
        // Output strides over merged dims (0 on reduced dims).
        var outStride = [Int](repeating: 0, count: dims.count)
        var s = 1
        for i in stride(from: dims.count - 1, through: 0, by: -1) where !dims[i].reduced { outStride[i] = s; s *= dims[i].size }
        let r = dims.count
        let inner = dims[r - 1].size
        let innerReduced = dims[r - 1].reduced
        var idx = [Int](repeating: 0, count: r)
        var off = 0
        var k = 0
        while k < count {
            if innerReduced {
                var acc = dst[off]
                for j in 0..<inner { acc = combine(acc, src[k + j]) }
                dst[off] = acc
            } else {
                for j in 0..<inner { dst[off + j] = combine(dst[off + j], src[k + j]) }
            }
            k += inner
            var d = r - 2
            while d >= 0 {
                idx[d] += 1; off += outStride[d]
                if idx[d] < dims[d].size { break }
                off -= outStride[d] * idx[d]; idx[d] = 0
                d -= 1
            }
        }
        return out
    }

    /// Sum over `axes` (all by default).
    public func sum(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let ax = normalizedAxes(axes, op: "sum")
        let outShape = Tensor.reducedShape(shape, ax, keepDims: keepDims)
        var y: Tensor
        if ax.count == rank {
            // Full reduction: accumulate in Double for accuracy.
            var acc = 0.0
            withUnsafeBufferPointer { p in for v in p { acc += Double(v) } }
            y = Tensor(shape: outShape, repeating: Float(acc))
        } else {
            y = reduceRaw(ax, initial: 0, +).reshaped(outShape)
        }
        let inShape = shape, kept = Tensor.reducedShape(shape, ax, keepDims: true)
        return Tensor.record("sum", output: y, inputs: [self]) { g in [g.reshaped(kept).broadcastRaw(to: inShape)] }
    }

    public func sum(axis: Int, keepDims: Bool = false) -> Tensor { sum(axes: [axis], keepDims: keepDims) }

    /// Mean over `axes` (all by default).
    public func mean(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let ax = normalizedAxes(axes, op: "mean")
        let n = ax.reduce(1) { $0 * shape[$1] }
        // Over no elements this is 0 · ∞ = NaN, as in PyTorch.
        return sum(axes: ax, keepDims: keepDims) * (1 / Float(n))
    }

    public func mean(axis: Int, keepDims: Bool = false) -> Tensor { mean(axes: [axis], keepDims: keepDims) }

    /// Maximum over `axes`; NaN propagates and ties share the gradient equally (like PyTorch's `amax`).
    public func max(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        extreme(axes, keepDims, name: "max", initial: -.infinity, nanPropagatingMax)
    }
    /// Minimum over `axes`; NaN propagates and ties share the gradient equally (like PyTorch's `amin`).
    public func min(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        extreme(axes, keepDims, name: "min", initial: .infinity, nanPropagatingMin)
    }

    /// Maximum over normalised `axes` with keep-dims shape, -∞ over no elements (no recording):
    /// the shift that keeps `exp` in range for softmax and logsumexp.
    func maxShift(_ axes: [Int]) -> Tensor { reduceRaw(axes, initial: -.infinity, nanPropagatingMax) }
    public func max(axis: Int, keepDims: Bool = false) -> Tensor { max(axes: [axis], keepDims: keepDims) }
    public func min(axis: Int, keepDims: Bool = false) -> Tensor { min(axes: [axis], keepDims: keepDims) }

    private func extreme(_ axes: [Int]?, _ keepDims: Bool, name: String, initial: Float, _ f: @escaping (Float, Float) -> Float) -> Tensor {
        let ax = normalizedAxes(axes, op: name)
        if ax.contains(where: { shape[$0] == 0 }) || (rank == 0 && count == 0) {
            fail(.invalidArgument(op: name, message: "cannot reduce an empty dimension of shape \(shape)"))
        }
        let kept = reduceRaw(ax, initial: initial, f)
        let y = kept.reshaped(Tensor.reducedShape(shape, ax, keepDims: keepDims))
        guard GradMode.isEnabled, gradRef != nil else { return y }
        let x = detached()
        return Tensor.record(name, output: y, inputs: [self]) { g in
            let mask = x .== kept
            let ties = mask.sum(axes: ax, keepDims: true)
            return [mask * (g.reshaped(kept.shape) / ties)]
        }
    }

    /// Index of the maximum along `axis` (first occurrence), as Float indices; not differentiable.
    public func argmax(axis: Int, keepDims: Bool = false) -> Tensor { argExtreme(axis: axis, keepDims: keepDims, op: "argmax") { $0 > $1 } }
    /// Index of the minimum along `axis` (first occurrence).
    public func argmin(axis: Int, keepDims: Bool = false) -> Tensor { argExtreme(axis: axis, keepDims: keepDims, op: "argmin") { $0 < $1 } }

    private func argExtreme(axis: Int, keepDims: Bool, op: String, better: (Float, Float) -> Bool) -> Tensor {
        let a = normalizeAxis(axis, rank: rank, op: op)
        if rank == 0 { return Tensor(0) }
        let n = shape[a]
        if n == 0 { fail(.invalidArgument(op: op, message: "empty axis \(a) in shape \(shape)")) }
        let outer = shape[..<a].reduce(1, *), inner = shape[(a + 1)...].reduce(1, *)
        var out = Tensor(uninitializedShape: Tensor.reducedShape(shape, [a], keepDims: keepDims))
        let src = dataPointer, dst = out.dataPointer
        for o in 0..<outer {
            for i in 0..<inner {
                var best = src[o * n * inner + i], bi = 0
                for k in 1..<Swift.max(n, 1) {
                    let v = src[(o * n + k) * inner + i]
                    if better(v, best) || (best.isNaN == false && v.isNaN) { best = v; bi = k }
                }
                dst[o * inner + i] = Float(bi)
            }
        }
        return out
    }

    /// Variance over `axes`; `correction` 1 gives the unbiased estimator (PyTorch's default). With
    /// no more than `correction` values the divisor is 0 and the result NaN or ∞, as in PyTorch.
    public func variance(axes: [Int]? = nil, keepDims: Bool = false, correction: Int = 1) -> Tensor {
        let ax = normalizedAxes(axes, op: "var")
        let n = ax.reduce(1) { $0 * shape[$1] }
        let centered = self - mean(axes: ax, keepDims: true)
        return centered.square().sum(axes: ax, keepDims: keepDims) * (1 / Float(Swift.max(n - correction, 0)))
    }

    /// Euclidean (Frobenius) norm over `axes`; the gradient at 0 is 0 (PyTorch's subgradient).
    public func norm(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let ax = normalizedAxes(axes, op: "norm")
        let sq = GradMode.withoutGrad { square().sum(axes: ax, keepDims: true) }
        let kept = sq.mapScalars { $0.squareRoot() }
        let y = kept.reshaped(Tensor.reducedShape(shape, ax, keepDims: keepDims))
        guard GradMode.isEnabled, gradRef != nil else { return y }
        let x = detached()
        return Tensor.record("norm", output: y, inputs: [self]) { g in
            let scale = Tensor.zipScalars(g.reshaped(kept.shape), kept, op: "norm'") { g, n in n > 0 ? g / n : 0 }
            return [x * scale]
        }
    }

    /// `log(sum(exp(x)))` over `axes`, computed stably.
    public func logSumExp(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let ax = normalizedAxes(axes, op: "logsumexp")
        let m = maxShift(ax).mapScalars { $0.isFinite ? $0 : 0 }
        let r = (self - m).exp().sum(axes: ax, keepDims: true).log() + m
        return keepDims ? r : r.reshaped(Tensor.reducedShape(shape, ax, keepDims: false))
    }

    /// Softmax along `axis`, with a fused VJP `y * (g - sum(g * y))`.
    public func softmax(axis: Int = -1) -> Tensor {
        let ax = normalizedAxes([axis], op: "softmax")
        let y = GradMode.withoutGrad { () -> Tensor in
            let e = (self - maxShift(ax)).exp()
            return e / e.sum(axes: ax, keepDims: true)
        }
        return Tensor.record("softmax", output: y, inputs: [self]) { g in
            let dot = (g * y).sum(axes: ax, keepDims: true)
            return [y * (g - dot)]
        }
    }

    /// `log(softmax(x))` along `axis`.
    public func logSoftmax(axis: Int = -1) -> Tensor {
        self - logSumExp(axes: [axis], keepDims: true)
    }
}

/// `max` that keeps a NaN once it has seen one (`Swift.max` drops a NaN in either position).
@inline(__always) private func nanPropagatingMax(_ acc: Float, _ v: Float) -> Float { v > acc || v.isNaN ? v : acc }
@inline(__always) private func nanPropagatingMin(_ acc: Float, _ v: Float) -> Float { v < acc || v.isNaN ? v : acc }
