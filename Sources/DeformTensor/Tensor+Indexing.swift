import Foundation

// Indexing ops with PyTorch semantics: narrow/slice, index_select, gather, scatter_add,
// masked_select. Index tensors hold integer-valued Floats (the engine has one dtype).

/// A tensor viewed as `[outer, size, inner]` around one axis: the layout every axis-wise copy
/// kernel here works on, so contiguous `inner` blocks can be moved with one `memcpy`.
struct AxisSplit {
    let outer: Int
    let size: Int
    let inner: Int

    init(_ shape: [Int], _ axis: Int) {
        if shape.isEmpty { outer = 1; size = 1; inner = 1; return }
        outer = shape[..<axis].reduce(1, *)
        size = shape[axis]
        inner = shape[(axis + 1)...].reduce(1, *)
    }
}

/// Converts an integer-valued Float index, failing with the index and the dimension size.
/// Uses compares and truncating conversion only: `rounded()` is a libm call on baseline x86-64.
@inline(__always)
fileprivate func checkedIndex(_ v: Float, size: Int, axis: Int, op: String) -> Int {
    guard v >= 0, v < Float(size) else { indexFailure(v, size: size, axis: axis, op: op) }
    let i = Int(v)
    guard Float(i) == v else { indexFailure(v, size: size, axis: axis, op: op) }
    return i
}

@inline(never)
fileprivate func indexFailure(_ v: Float, size: Int, axis: Int, op: String) -> Never {
    if !v.isFinite || v != v.rounded(.towardZero) {
        fail(.invalidArgument(op: op, message: "index \(v) is not an integer"))
    }
    fail(.invalidArgument(op: op, message: "index \(Int(v)) is out of range for dimension \(axis) of size \(size)"))
}

/// 1 when `v` is nonzero (NaN included, -0 excluded), else 0, without a branch.
@inline(__always)
fileprivate func nonzeroBit(_ v: Float) -> Int { Int(((v.bitPattern & 0x7fff_ffff) &+ 0x7fff_ffff) >> 31) }

extension Tensor {
    // MARK: - narrow / slice

    /// The elements `start ..< start + length` along `axis` (PyTorch's `narrow`; a negative
    /// `start` counts from the end). Always a copy: tensors here are contiguous.
    public func narrow(axis: Int, start: Int, length: Int) -> Tensor {
        let a = normalizeAxis(axis, rank: rank, op: "narrow")
        if rank == 0 { fail(.invalidArgument(op: "narrow", message: "cannot narrow a 0-D tensor")) }
        let n = shape[a]
        let s = start < 0 ? start + n : start
        if s < 0 || s > n {
            fail(.invalidArgument(op: "narrow", message: "start \(start) is out of range for dimension \(a) of size \(n)"))
        }
        if length < 0 || s + length > n {
            fail(.invalidArgument(op: "narrow", message: "start \(s) + length \(length) exceeds dimension \(a) of size \(n) (shape \(shape))"))
        }
        if s == 0 && length == n { return self }
        let y = Tensor.copyBlock(self, axis: a, start: s, length: length)
        guard GradMode.isEnabled, gradRef != nil else { return y }
        let inShape = shape
        return Tensor.record("narrow", output: y, inputs: [self]) { g in
            [Tensor.padBlock(g, axis: a, start: s, size: inShape[a])]
        }
    }

    /// The elements in `range` along `axis` (like `x[..., lo:hi, ...]`).
    public func slice(axis: Int, _ range: Range<Int>) -> Tensor {
        narrow(axis: axis, start: range.lowerBound, length: range.count)
    }

    /// Closed-range form of ``slice(axis:_:)-(Int,Range<Int>)``.
    public func slice(axis: Int, _ range: ClosedRange<Int>) -> Tensor {
        narrow(axis: axis, start: range.lowerBound, length: range.count)
    }

    /// Copies `length` entries from `start` along axis `a` (no checks, no recording).
    static func copyBlock(_ x: Tensor, axis a: Int, start: Int, length: Int) -> Tensor {
        let sp = AxisSplit(x.shape, a)
        var outShape = x.shape
        outShape[a] = length
        let out = Tensor(uninitializedShape: outShape)
        let block = length * sp.inner, rowIn = sp.size * sp.inner
        if block == 0 { return out }
        let src = x.dataPointer + start * sp.inner, dst = out.dataPointer
        for o in 0..<sp.outer { (dst + o * block).update(from: src + o * rowIn, count: block) }
        return out
    }

    /// Zeros of size `size` along axis `a`, with `g` written at `start` (no recording).
    static func padBlock(_ g: Tensor, axis a: Int, start: Int, size: Int) -> Tensor {
        let sp = AxisSplit(g.shape, a)
        var outShape = g.shape
        outShape[a] = size
        let out = Tensor(shape: outShape, repeating: 0)
        let block = sp.size * sp.inner, rowOut = size * sp.inner
        if block == 0 { return out }
        let src = g.dataPointer, dst = out.dataPointer + start * sp.inner
        for o in 0..<sp.outer { (dst + o * rowOut).update(from: src + o * block, count: block) }
        return out
    }

    // MARK: - index_select

    /// Entries at `indices` along `axis`, in that order; repeats allowed (PyTorch's
    /// `index_select`). The gradient adds back into the selected positions.
    public func indexSelect(axis: Int, indices: [Int]) -> Tensor {
        let a = normalizeAxis(axis, rank: rank, op: "indexSelect")
        if rank == 0 { fail(.invalidArgument(op: "indexSelect", message: "cannot index a 0-D tensor")) }
        let n = shape[a]
        for i in indices where i < 0 || i >= n {
            fail(.invalidArgument(op: "indexSelect", message: "index \(i) is out of range for dimension \(a) of size \(n) (shape \(shape))"))
        }
        let sp = AxisSplit(shape, a)
        var outShape = shape
        outShape[a] = indices.count
        let y = Tensor(uninitializedShape: outShape)
        let inner = sp.inner, m = indices.count
        if y.count > 0 {
            let src = dataPointer, dst = y.dataPointer
            indices.withUnsafeBufferPointer { idx in
                for o in 0..<sp.outer {
                    let s = src + o * n * inner, d = dst + o * m * inner
                    if inner == 1 {
                        for j in 0..<m { d[j] = s[idx[j]] }
                    } else {
                        for j in 0..<m { (d + j * inner).update(from: s + idx[j] * inner, count: inner) }
                    }
                }
            }
        }
        guard GradMode.isEnabled, gradRef != nil else { return y }
        let inShape = shape
        return Tensor.record("indexSelect", output: y, inputs: [self]) { g in
            let gx = Tensor(shape: inShape, repeating: 0)
            if g.count > 0 {
                let src = g.dataPointer, dst = gx.dataPointer
                indices.withUnsafeBufferPointer { idx in
                    for o in 0..<sp.outer {
                        let s = src + o * m * inner, d = dst + o * n * inner
                        for j in 0..<m {
                            let dj = d + idx[j] * inner, sj = s + j * inner
                            for k in 0..<inner { dj[k] += sj[k] }
                        }
                    }
                }
            }
            return [gx]
        }
    }

    /// ``indexSelect(axis:indices:)-(Int,[Int])`` with a 1-D tensor of integer-valued indices.
    public func indexSelect(axis: Int, indices: Tensor) -> Tensor {
        if indices.rank != 1 {
            fail(.shapeMismatch(op: "indexSelect", expected: "a 1-D index tensor", found: "shape \(indices.shape)"))
        }
        let a = normalizeAxis(axis, rank: rank, op: "indexSelect")
        let n = rank == 0 ? 1 : shape[a]
        let idx = indices.scalars.map { checkedIndex($0, size: n, axis: a, op: "indexSelect") }
        return indexSelect(axis: a, indices: idx)
    }

    // MARK: - gather / scatter_add

    /// `out[i][j][k] = self[i][index[i][j][k]][k]` for `axis == 1` (PyTorch's `gather`). `index`
    /// has this tensor's rank, holds integer-valued Floats, and is no larger than `self` on every
    /// other axis; the output has `index`'s shape. The gradient scatter-adds into `self`'s shape.
    public func gather(axis: Int, index: Tensor) -> Tensor {
        let a = normalizeAxis(axis, rank: rank, op: "gather")
        Tensor.checkScatterShapes(op: "gather", big: shape, bigName: "input", index: index.shape, axis: a,
                                  small: nil, smallName: "")
        let y = Tensor(uninitializedShape: index.shape)
        let src = dataPointer, dst = y.dataPointer
        Tensor.forEachIndexed(big: shape, index: index, small: index.shape, axis: a, op: "gather") { b, s in dst[s] = src[b] }
        guard GradMode.isEnabled, gradRef != nil else { return y }
        let inShape = shape, idx = index.detached()
        return Tensor.record("gather", output: y, inputs: [self]) { g in
            let gx = Tensor(shape: inShape, repeating: 0)
            let pg = g.dataPointer, px = gx.dataPointer
            Tensor.forEachIndexed(big: inShape, index: idx, small: idx.shape, axis: a, op: "gather") { b, s in px[b] += pg[s] }
            return [gx]
        }
    }

    /// Out-of-place `scatter_add`: a copy of `self` with `self[i][index[i][j][k]][k] += source[i][j][k]`
    /// for `axis == 1`; repeated indices accumulate. `index` has this tensor's rank, is no larger
    /// than `source` anywhere and no larger than `self` off `axis`. Gradients: `g` to `self`,
    /// `gather(g)` to the covered part of `source` (zero elsewhere).
    public func scatterAdd(axis: Int, index: Tensor, source: Tensor) -> Tensor {
        let a = normalizeAxis(axis, rank: rank, op: "scatterAdd")
        Tensor.checkScatterShapes(op: "scatterAdd", big: shape, bigName: "self", index: index.shape, axis: a,
                                  small: source.shape, smallName: "source")
        var y = Tensor(uninitializedShape: shape)
        y.dataPointer.update(from: dataPointer, count: count)
        let src = source.dataPointer, dst = y.dataPointer
        Tensor.forEachIndexed(big: shape, index: index, small: source.shape, axis: a, op: "scatterAdd") { b, s in dst[b] += src[s] }
        guard GradMode.isEnabled, gradRef != nil || source.gradRef != nil else { return y }
        let inShape = shape, srcShape = source.shape, selfTracked = isTracked, srcTracked = source.isTracked
        let idx = index.detached()
        y = Tensor.record("scatterAdd", output: y, inputs: [self, source]) { g in
            var gs: Tensor? = nil
            if srcTracked {
                let t = Tensor(shape: srcShape, repeating: 0)
                let pg = g.dataPointer, pt = t.dataPointer
                Tensor.forEachIndexed(big: inShape, index: idx, small: srcShape, axis: a, op: "scatterAdd") { b, s in pt[s] = pg[b] }
                gs = t
            }
            return [selfTracked ? g : nil, gs]
        }
        return y
    }

    static func checkScatterShapes(op: String, big: [Int], bigName: String, index: [Int], axis: Int,
                                   small: [Int]?, smallName: String) {
        if index.count != big.count {
            fail(.shapeMismatch(op: op, expected: "an index of the \(bigName)'s rank \(big.count) (\(bigName) \(big))",
                                found: "index of shape \(index)"))
        }
        for d in 0..<index.count where d != axis && index[d] > big[d] {
            fail(.shapeMismatch(op: op, expected: "index no larger than the \(bigName) \(big) off axis \(axis)",
                                found: "index of shape \(index)"))
        }
        if let small {
            if small.count != index.count || zip(index, small).contains(where: { $0 > $1 }) {
                fail(.shapeMismatch(op: op, expected: "\(smallName) of rank \(index.count) at least as large as the index \(index)",
                                    found: "\(smallName) of shape \(small)"))
            }
        }
    }

    /// Visits every position of `index`, validating its value, with the flat offset it selects in
    /// the indexed tensor (`big`, shape `big` with the axis entry replaced by the index value) and
    /// its flat offset in a tensor laid out like the index (`small`, which may be larger).
    @inline(__always)
    static func forEachIndexed(big: [Int], index: Tensor, small: [Int], axis a: Int, op: String,
                               _ body: (_ big: Int, _ small: Int) -> Void) {
        let n = index.count
        if n == 0 { return }
        let ishape = index.shape.isEmpty ? [1] : index.shape
        let bshape = big.isEmpty ? [1] : big, sshape = small.isEmpty ? [1] : small
        let bStr = contiguousStrides(bshape), sStr = contiguousStrides(sshape)
        let size = bshape[a], axisStride = bStr[a]
        let r = ishape.count
        let inner = ishape[r - 1]
        // Along the innermost dim the big offset steps by 1, unless that dim is the indexed axis.
        let innerIsAxis = a == r - 1
        let src = index.dataPointer
        var idx = [Int](repeating: 0, count: r)
        var bOff = 0, sOff = 0, p = 0
        while p < n {
            if innerIsAxis {
                for k in 0..<inner { body(bOff + checkedIndex(src[p + k], size: size, axis: a, op: op), sOff + k) }
            } else {
                for k in 0..<inner { body(bOff + k + checkedIndex(src[p + k], size: size, axis: a, op: op) * axisStride, sOff + k) }
            }
            p += inner
            var d = r - 2
            while d >= 0 {
                idx[d] += 1
                if d != a { bOff += bStr[d] }
                sOff += sStr[d]
                if idx[d] < ishape[d] { break }
                if d != a { bOff -= bStr[d] * idx[d] }
                sOff -= sStr[d] * idx[d]
                idx[d] = 0
                d -= 1
            }
        }
    }

    // MARK: - masked_select

    /// The elements where `mask` is nonzero, as a 1-D tensor in row-major order (PyTorch's
    /// `masked_select`). `mask` and `self` broadcast together; the gradient is summed back over
    /// broadcast dimensions of `self`.
    public func maskedSelect(_ mask: Tensor) -> Tensor {
        let outShape: [Int]
        do { outShape = try broadcastShapes(shape, mask.shape, op: "maskedSelect") }
        catch let e as TensorError { fail(e) } catch { fatalError("\(error)") }
        let x = broadcastRaw(to: outShape), m = mask.broadcastRaw(to: outShape)
        let pm = m.dataPointer, px = x.dataPointer, total = m.count
        // Branch-free loops (a random mask mispredicts half of all branches, measured over 10x slower).
        var kept = 0
        for i in 0..<total { kept &+= nonzeroBit(pm[i]) }
        let y = Tensor(uninitializedShape: [kept])
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: kept + 1)
        defer { scratch.deallocate() }
        var j = 0
        for i in 0..<total { scratch[j] = px[i]; j &+= nonzeroBit(pm[i]) }
        y.dataPointer.update(from: scratch, count: kept)
        guard GradMode.isEnabled, gradRef != nil else { return y }
        let inShape = shape
        return Tensor.record("maskedSelect", output: y, inputs: [self]) { g in
            let full = Tensor(uninitializedShape: outShape)
            let gs = UnsafeMutablePointer<Float>.allocate(capacity: kept + 1)
            defer { gs.deallocate() }
            gs.update(from: g.dataPointer, count: kept)
            gs[kept] = 0
            let pf = full.dataPointer, pm = m.dataPointer
            var j = 0
            for i in 0..<total {
                let bit = nonzeroBit(pm[i])
                pf[i] = Float(bitPattern: gs[j].bitPattern & (0 &- UInt32(bit)))
                j &+= bit
            }
            return [full.sumTo(inShape)]
        }
    }
}
