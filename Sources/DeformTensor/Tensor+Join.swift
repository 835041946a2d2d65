import Foundation

// Joining and splitting along an axis (PyTorch's cat, stack, split, chunk). Each moves whole
// contiguous `inner` blocks with memcpy; see `AxisSplit` in Tensor+Indexing.swift.

extension Tensor {
    /// Joins tensors along an existing `axis` (PyTorch's `cat`). All tensors need the same rank
    /// and equal sizes on every other axis. The gradient is cut back into per-input pieces.
    public static func concat(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
        guard let first = tensors.first else {
            fail(.invalidArgument(op: "concat", message: "needs at least one tensor, got an empty list"))
        }
        if first.rank == 0 {
            fail(.invalidArgument(op: "concat", message: "cannot concatenate 0-D tensors; use stack"))
        }
        let a = normalizeAxis(axis, rank: first.rank, op: "concat")
        for (i, t) in tensors.enumerated() {
            if t.rank != first.rank || zip(t.shape, first.shape).enumerated().contains(where: { $0.offset != a && $0.element.0 != $0.element.1 }) {
                var expected = first.shape.map(String.init)
                expected[a] = "*"
                fail(.shapeMismatch(op: "concat", expected: "shapes [\(expected.joined(separator: ", "))] along axis \(a) (from tensor 0)",
                                    found: "tensor \(i) of shape \(t.shape)"))
            }
        }
        if tensors.count == 1 { return first }
        let sizes = tensors.map { $0.shape[a] }
        var outShape = first.shape
        outShape[a] = sizes.reduce(0, +)
        let y = joinRaw(tensors, sizes: sizes, axis: a, outShape: outShape)
        guard GradMode.isEnabled, tensors.contains(where: { $0.isTracked }) else { return y }
        let tracked = tensors.map { $0.isTracked }
        return record("concat", output: y, inputs: tensors) { g in
            let parts = splitRaw(g, sizes: sizes, axis: a, wanted: tracked)
            return parts
        }
    }

    /// Joins equally shaped tensors along a new `axis` (PyTorch's `stack`); `axis` may be
    /// `-(rank + 1) ... rank`.
    public static func stack(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
        guard let first = tensors.first else {
            fail(.invalidArgument(op: "stack", message: "needs at least one tensor, got an empty list"))
        }
        let r = first.rank
        let a = axis < 0 ? axis + r + 1 : axis
        if a < 0 || a > r {
            fail(.invalidArgument(op: "stack", message: "axis \(axis) is out of range for stacking tensors of rank \(r)"))
        }
        for (i, t) in tensors.enumerated() where t.shape != first.shape {
            fail(.shapeMismatch(op: "stack", expected: "every tensor of shape \(first.shape) (tensor 0)",
                                found: "tensor \(i) of shape \(t.shape)"))
        }
        return concat(tensors.map { $0.unsqueezed(a) }, axis: a)
    }

    /// Splits along `axis` into pieces of the given sizes, which must add up to the axis size
    /// (PyTorch's `split` with a list).
    public func split(sizes: [Int], axis: Int = 0) -> [Tensor] {
        let a = normalizeAxis(axis, rank: rank, op: "split")
        if rank == 0 { fail(.invalidArgument(op: "split", message: "cannot split a 0-D tensor")) }
        if sizes.contains(where: { $0 < 0 }) || sizes.reduce(0, +) != shape[a] {
            fail(.shapeMismatch(op: "split", expected: "non-negative sizes adding up to \(shape[a]) (axis \(a) of \(shape))",
                                found: "sizes \(sizes) (sum \(sizes.reduce(0, +)))"))
        }
        if sizes.count == 1 { return [self] }
        let parts = Tensor.splitRaw(self, sizes: sizes, axis: a, wanted: nil).map { $0! }
        guard GradMode.isEnabled, isTracked else { return parts }
        let partShapes = parts.map { $0.shape }, inShape = shape
        return Tensor.recordMulti("split", outputs: parts, inputs: [self]) { gs in
            let full = zip(gs, partShapes).map { g, s in g ?? Tensor.zeros(s) }
            return [Tensor.joinRaw(full, sizes: sizes, axis: a, outShape: inShape)]
        }
    }

    /// Splits along `axis` into pieces of `size` (the last one smaller if the axis does not
    /// divide; PyTorch's `split` with an int).
    public func split(size: Int, axis: Int = 0) -> [Tensor] {
        let a = normalizeAxis(axis, rank: rank, op: "split")
        if rank == 0 { fail(.invalidArgument(op: "split", message: "cannot split a 0-D tensor")) }
        if size <= 0 { fail(.invalidArgument(op: "split", message: "piece size must be positive, got \(size)")) }
        let n = shape[a]
        if n == 0 { return [self] }
        return split(sizes: stride(from: 0, to: n, by: size).map { Swift.min(size, n - $0) }, axis: a)
    }

    /// Splits along `axis` into exactly `count` equal pieces; the axis size must be divisible by
    /// `count` (NumPy's `split` with an int).
    public func split(count: Int, axis: Int = 0) -> [Tensor] {
        let a = normalizeAxis(axis, rank: rank, op: "split")
        if rank == 0 { fail(.invalidArgument(op: "split", message: "cannot split a 0-D tensor")) }
        if count <= 0 || shape[a] % count != 0 {
            fail(.invalidArgument(op: "split", message: "cannot split axis \(a) of size \(shape[a]) (shape \(shape)) into \(count) equal pieces"))
        }
        return split(sizes: [Int](repeating: shape[a] / count, count: count), axis: a)
    }

    /// PyTorch's `chunk`: pieces of `ceil(size / chunks)` along `axis`, the last one smaller, so
    /// fewer than `chunks` pieces come back when the axis is too short.
    public func chunked(_ chunks: Int, axis: Int = 0) -> [Tensor] {
        let a = normalizeAxis(axis, rank: rank, op: "chunk")
        if chunks <= 0 { fail(.invalidArgument(op: "chunk", message: "number of chunks must be positive, got \(chunks)")) }
        if rank == 0 { fail(.invalidArgument(op: "chunk", message: "cannot chunk a 0-D tensor")) }
        let n = shape[a]
        return split(size: Swift.max(1, (n + chunks - 1) / chunks), axis: a)
    }

    /// Concatenates blocks along `a` (no checks, no recording).
    static func joinRaw(_ tensors: [Tensor], sizes: [Int], axis a: Int, outShape: [Int]) -> Tensor {
        let out = Tensor(uninitializedShape: outShape)
        if out.count == 0 { return out }
        let sp = AxisSplit(outShape, a)
        let rowOut = sp.size * sp.inner
        var offset = 0
        for (t, s) in zip(tensors, sizes) {
            let block = s * sp.inner
            if block > 0 {
                let src = t.dataPointer, dst = out.dataPointer + offset
                for o in 0..<sp.outer { (dst + o * rowOut).update(from: src + o * block, count: block) }
            }
            offset += block
        }
        return out
    }

    /// Cuts `x` into pieces along `a` (no checks, no recording); pieces not `wanted` are `nil`.
    static func splitRaw(_ x: Tensor, sizes: [Int], axis a: Int, wanted: [Bool]?) -> [Tensor?] {
        var start = 0
        return sizes.enumerated().map { i, s in
            defer { start += s }
            guard wanted?[i] ?? true else { return nil }
            return copyBlock(x, axis: a, start: start, length: s)
        }
    }
}

/// Joins tensors along an existing axis (see ``Tensor/concat(_:axis:)``).
public func concat(_ tensors: [Tensor], axis: Int = 0) -> Tensor { Tensor.concat(tensors, axis: axis) }

/// Joins equally shaped tensors along a new axis (see ``Tensor/stack(_:axis:)``).
public func stack(_ tensors: [Tensor], axis: Int = 0) -> Tensor { Tensor.stack(tensors, axis: axis) }
