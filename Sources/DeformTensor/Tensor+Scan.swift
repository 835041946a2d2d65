import Foundation

extension Tensor {
    /// Cumulative sum along `axis`: `y[..., i, ...] = Σ_{j ≤ i} x[..., j, ...]`, or `j < i` when
    /// `exclusive` (so the first entry is 0). Differentiable: the VJP is the reversed scan of the
    /// cotangent (exclusive likewise).
    public func cumsum(axis: Int, exclusive: Bool = false) -> Tensor {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0 && a < rank else {
            fail(.invalidArgument(op: "cumsum", message: "axis \(axis) out of range for shape \(shape)"))
        }
        let n = shape[a]
        let inner = shape[(a + 1)...].reduce(1, *), outer = shape[..<a].reduce(1, *)
        let y = Tensor.scan(self, outer: outer, n: n, inner: inner, exclusive: exclusive, reverse: false)
        return Tensor.record("cumsum", output: y, inputs: [self]) { g in
            [Tensor.scan(g, outer: outer, n: n, inner: inner, exclusive: exclusive, reverse: true)]
        }
    }

    /// The scan on a `[outer, n, inner]` view, from the front or from the back.
    static func scan(_ x: Tensor, outer: Int, n: Int, inner: Int, exclusive: Bool, reverse: Bool) -> Tensor {
        let y = Tensor(uninitializedShape: x.shape)
        let px = x.dataPointer, py = y.dataPointer
        Threads.parallelRanges(outer, minChunk: Swift.max(1, 16384 / Swift.max(n * inner, 1))) { range in
            let acc = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(inner, 1))
            defer { acc.deallocate() }
            for o in range {
                acc.update(repeating: 0, count: inner)
                for step in 0..<n {
                    let i = reverse ? n - 1 - step : step
                    let src = px + (o * n + i) * inner, dst = py + (o * n + i) * inner
                    if exclusive {
                        for k in 0..<inner { let v = src[k]; dst[k] = acc[k]; acc[k] += v }
                    } else {
                        for k in 0..<inner { acc[k] += src[k]; dst[k] = acc[k] }
                    }
                }
            }
        }
        return y
    }
}
