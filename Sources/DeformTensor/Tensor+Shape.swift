import Foundation

extension Tensor {
    /// Same elements, new shape (one dimension may be -1 and is inferred).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var target = newShape
        if let infer = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != infer }.map { $0.element }.reduce(1, *)
            if known == 0 || count % known != 0 {
                fail(.shapeMismatch(op: "reshape", expected: "a shape with \(count) elements (from \(shape))", found: "\(newShape)"))
            }
            target[infer] = count / known
        }
        if shapeCount(target) != count || target.contains(where: { $0 < 0 }) {
            fail(.shapeMismatch(op: "reshape", expected: "a shape with \(count) elements (from \(shape))", found: "\(newShape)"))
        }
        if target == shape { return self }
        var y = detached()
        y.setShapeSameCount(target)
        let original = shape
        return Tensor.record("reshape", output: y, inputs: [self]) { g in [g.reshaped(original)] }
    }

    public func reshaped(_ dims: Int...) -> Tensor { reshaped(dims) }

    /// Collapses dimensions `start...end` into one.
    public func flattened(from start: Int = 0, to end: Int = -1) -> Tensor {
        if rank == 0 { return reshaped([1]) }
        let s = normalizeAxis(start, rank: rank, op: "flatten"), e = normalizeAxis(end, rank: rank, op: "flatten")
        if s > e {
            fail(.invalidArgument(op: "flatten", message: "start axis \(start) comes after end axis \(end) for shape \(shape)"))
        }
        let mid = shape[s...e].reduce(1, *)
        return reshaped(Array(shape[..<s]) + [mid] + Array(shape[(e + 1)...]))
    }

    /// Inserts a dimension of size 1 at `axis`.
    public func unsqueezed(_ axis: Int) -> Tensor {
        let a = axis < 0 ? axis + rank + 1 : axis
        precondition(a >= 0 && a <= rank, "unsqueeze: axis \(axis) out of range for rank \(rank)")
        var s = shape
        s.insert(1, at: a)
        return reshaped(s)
    }

    /// Removes dimensions of size 1 (all of them, or only `axes`).
    public func squeezed(_ axes: [Int]? = nil) -> Tensor {
        if let axes {
            let norm = Set(axes.map { normalizeAxis($0, rank: rank, op: "squeeze") })
            if rank == 0 { return self }
            for a in norm where shape[a] != 1 {
                fail(.shapeMismatch(op: "squeeze", expected: "size 1 at axis \(a)", found: "shape \(shape)"))
            }
            return reshaped(shape.enumerated().filter { !norm.contains($0.offset) }.map { $0.element })
        }
        return reshaped(shape.filter { $0 != 1 })
    }

    /// Reorders dimensions: output dimension `i` is input dimension `perm[i]`.
    public func permuted(_ perm: [Int]) -> Tensor {
        let p = perm.map { normalizeAxis($0, rank: rank, op: "permute") }
        if p.count != rank || Set(p).count != rank {
            fail(.invalidArgument(op: "permute", message: "\(perm) is not a permutation of the \(rank) axes of shape \(shape)"))
        }
        if p == Array(0..<rank) { return self }
        let y = permuteRaw(p)
        var inverse = [Int](repeating: 0, count: rank)
        for (i, d) in p.enumerated() { inverse[d] = i }
        return Tensor.record("permute", output: y, inputs: [self]) { g in [g.permuted(inverse)] }
    }

    public func permuted(_ perm: Int...) -> Tensor { permuted(perm) }

    /// Swaps two dimensions (default: the last two).
    public func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        precondition(rank >= 2 || (a == -2 && b == -1 && rank < 2), "transpose: needs rank >= 2, got shape \(shape)")
        if rank < 2 { return self }
        var p = Array(0..<rank)
        p.swapAt(normalizeAxis(a, rank: rank, op: "transpose"), normalizeAxis(b, rank: rank, op: "transpose"))
        return permuted(p)
    }

    /// Matrix transpose of a 2-D tensor (last two dims otherwise).
    public var T: Tensor { transposed() }

    func permuteRaw(_ p: [Int]) -> Tensor {
        let outShape = p.map { shape[$0] }
        var out = Tensor(uninitializedShape: outShape)
        let n = count
        if n == 0 { return out }
        let inStrides = contiguousStrides(shape)
        let st = p.map { inStrides[$0] }
        let src = dataPointer, dst = out.dataPointer
        let r = outShape.count
        // Fast path: batched 2-D transpose of the last two axes, cache-blocked.
        if r >= 2 && p[r - 1] == r - 2 && p[r - 2] == r - 1 && Array(p[..<(r - 2)]) == Array(0..<(r - 2)) {
            let rows = shape[r - 2], cols = shape[r - 1], batch = n / (rows * cols)
            for bIdx in 0..<batch {
                let s = src + bIdx * rows * cols, d = dst + bIdx * rows * cols
                let blk = 32
                for i0 in stride(from: 0, to: rows, by: blk) {
                    for j0 in stride(from: 0, to: cols, by: blk) {
                        for i in i0..<Swift.min(i0 + blk, rows) {
                            for j in j0..<Swift.min(j0 + blk, cols) { d[j * rows + i] = s[i * cols + j] }
                        }
                    }
                }
            }
            return out
        }
        let inner = outShape[r - 1], innerStride = st[r - 1]
        var idx = [Int](repeating: 0, count: r)
        var off = 0
        for o in 0..<(n / inner) {
            let base = o * inner
            var k = off
            for j in 0..<inner { dst[base + j] = src[k]; k += innerStride }
            var d = r - 2
            while d >= 0 {
                idx[d] += 1; off += st[d]
                if idx[d] < outShape[d] { break }
                off -= st[d] * idx[d]; idx[d] = 0
                d -= 1
            }
        }
        return out
    }

    /// Materialises NumPy broadcasting to `target` without recording.
    public func broadcastRaw(to target: [Int]) -> Tensor {
        if shape == target { return detached() }
        if count == 1 { return Tensor(shape: target, repeating: dataPointer[0]) }
        return Tensor.zipScalars(Tensor.zeros(target), self, op: "expand") { _, x in x }
    }

    /// Broadcasts to `target` (NumPy rules); the gradient sums back over expanded dimensions.
    public func expanded(to target: [Int]) -> Tensor {
        do {
            let s = try broadcastShapes(shape, target, op: "expand")
            if s != target { throw TensorError.shapeMismatch(op: "expand", expected: "a shape broadcastable to \(target)", found: "\(shape)") }
        } catch let e as TensorError { fail(e) } catch { fatalError("\(error)") }
        if shape == target { return self }
        let y = broadcastRaw(to: target)
        let original = shape
        return Tensor.record("expand", output: y, inputs: [self]) { g in [g.sumTo(original)] }
    }
}
