import DeformTensor

/// PyTorch's default initialisers, as seeded draws.
public enum Initializers {
    /// `U(-1/√fanIn, 1/√fanIn)`: what `kaiming_uniform_(a: √5)` reduces to for weights, and the
    /// default bias init of PyTorch's Linear and Conv layers.
    public static func pytorchDefault(_ shape: [Int], fanIn: Int, using rng: inout RandomGenerator) -> Tensor {
        let bound = fanIn > 0 ? 1 / Float(fanIn).squareRoot() : 0
        return rng.uniform(shape, low: -bound, high: bound)
    }

    /// Glorot/Xavier uniform: `U(-a, a)`, `a = gain·√(6 / (fanIn + fanOut))`.
    public static func xavierUniform(_ shape: [Int], fanIn: Int, fanOut: Int, gain: Float = 1,
                                     using rng: inout RandomGenerator) -> Tensor {
        let a = gain * (6 / Float(Swift.max(fanIn + fanOut, 1))).squareRoot()
        return rng.uniform(shape, low: -a, high: a)
    }

    /// Kaiming/He normal for ReLU networks: `N(0, 2 / fanIn)`.
    public static func kaimingNormal(_ shape: [Int], fanIn: Int, using rng: inout RandomGenerator) -> Tensor {
        rng.normal(shape, std: (2 / Float(Swift.max(fanIn, 1))).squareRoot())
    }
}

/// `x @ weightᵀ + bias` over the last dimension of `x` (PyTorch's `F.linear`): `x` is
/// `[..., in]`, `weight` `[out, in]`, `bias` `[out]`. One GEMM forward, two backward.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    guard weight.rank == 2, x.rank >= 1, x.shape[x.rank - 1] == weight.shape[1] else {
        fail(.shapeMismatch(op: "linear", expected: "input [..., \(weight.rank == 2 ? weight.shape[1] : -1)] for weight \(weight.shape)",
                            found: "\(x.shape)"))
    }
    let outF = weight.shape[0], inF = weight.shape[1]
    if let bias, bias.shape != [outF] {
        fail(.shapeMismatch(op: "linear", expected: "bias of shape [\(outF)]", found: "\(bias.shape)"))
    }
    let rows = x.count / Swift.max(inF, 1)
    let outShape = Array(x.shape.dropLast()) + [outF]
    let x2 = x.detached().reshaped([rows, inF])
    let w = weight.detached()
    var y = Tensor.gemm(x2, w, transA: false, transB: true)
    if let bias {
        let pb = bias.dataPointer, py = y.dataPointer
        for r in 0..<rows {
            let row = py + r * outF
            for j in 0..<outF { row[j] += pb[j] }
        }
    }
    y = y.reshaped(outShape)
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    guard GradMode.isEnabled, inputs.contains(where: { $0.isTracked }) else { return y }
    let xTracked = x.isTracked, wTracked = weight.isTracked, bTracked = bias?.isTracked ?? false
    let xShape = x.shape
    return Tensor.record("linear", output: y, inputs: inputs) { g in
        let g2 = g.reshaped([rows, outF])
        var out: [Tensor?] = [
            xTracked ? Tensor.gemm(g2, w, transA: false, transB: false).reshaped(xShape) : nil,
            wTracked ? Tensor.gemm(g2, x2, transA: true, transB: false) : nil,
        ]
        if inputs.count == 3 {
            if bTracked {
                let gb = Tensor.zeros([outF])
                let pg = g2.dataPointer, pb = gb.dataPointer
                for r in 0..<rows {
                    let row = pg + r * outF
                    for j in 0..<outF { pb[j] += row[j] }
                }
                out.append(gb)
            } else {
                out.append(nil)
            }
        }
        return out
    }
}

/// Rows of `table` (`[count, dim]`) picked by integer-valued `indices` of any shape; the result is
/// `indices.shape + [dim]`. The backward scatter-adds into the rows (repeated indices accumulate).
public func embeddingLookup(_ table: Tensor, indices: Tensor) -> Tensor {
    guard table.rank == 2 else {
        fail(.shapeMismatch(op: "embedding", expected: "a table of rank 2 [count, dim]", found: "\(table.shape)"))
    }
    let count = table.shape[0], dim = table.shape[1]
    let n = indices.count
    var rowsIdx = [Int](repeating: 0, count: n)
    indices.withUnsafeBufferPointer { p in
        for i in 0..<n {
            let v = p[i]
            guard v.rounded() == v, v >= 0, v < Float(count) else {
                fail(.invalidArgument(op: "embedding", message: "index \(v) at flat position \(i) is not an integer in 0..<\(count)"))
            }
            rowsIdx[i] = Int(v)
        }
    }
    let y = Tensor(uninitializedShape: indices.shape + [dim])
    let src = table.dataPointer, dst = y.dataPointer
    for i in 0..<n { (dst + i * dim).update(from: src + rowsIdx[i] * dim, count: dim) }
    guard GradMode.isEnabled, table.isTracked else { return y }
    return Tensor.record("embedding", output: y, inputs: [table]) { g in
        let gt = Tensor.zeros([count, dim])
        let pg = g.dataPointer, pt = gt.dataPointer
        for i in 0..<n {
            let row = pt + rowsIdx[i] * dim, grow = pg + i * dim
            for j in 0..<dim { row[j] += grow[j] }
        }
        return [gt]
    }
}
