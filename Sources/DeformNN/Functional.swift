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
