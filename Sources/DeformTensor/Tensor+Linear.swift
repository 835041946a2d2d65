import CBLAS
import Foundation

/// `x · Wᵀ + b` for `x` [..., in], `weight` [out, in] (PyTorch's layout), `bias` [out].
///
/// Fused so a linear layer costs one `cblas_sgemm` forward (bias pre-filled, beta = 1) and two
/// backward, with no transposed copies of the weight; small networks (the NRSfM ones) run many
/// such layers per step.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    guard x.rank >= 1, weight.rank == 2, x.shape[x.rank - 1] == weight.shape[1] else {
        fail(.shapeMismatch(op: "linear", expected: "input [..., \(weight.rank == 2 ? weight.shape[1] : -1)] and weight [out, in]",
                            found: "input \(x.shape), weight \(weight.shape)"))
    }
    let inF = weight.shape[1], outF = weight.shape[0]
    if let bias, bias.shape != [outF] {
        fail(.shapeMismatch(op: "linear", expected: "bias [\(outF)]", found: "\(bias.shape)"))
    }
    // From the shape, not x.count / inF, so that inF == 0 still gives one bias row per input row.
    let rows = x.shape.dropLast().reduce(1, *)
    let y = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [outF])
    let py = y.dataPointer
    if let bias {
        let pb = bias.dataPointer
        for r in 0..<rows { (py + r * outF).update(from: pb, count: outF) }
    } else {
        py.update(repeating: 0, count: y.count)
    }
    if rows > 0 && outF > 0 && inF > 0 {
        parallelSgemm(transA: false, transB: true, m: rows, n: outF, k: inF,
                      a: x.dataPointer, lda: inF, b: weight.dataPointer, ldb: inF, beta: 1, c: py, ldc: outF)
    }
    guard GradMode.isEnabled, x.isTracked || weight.isTracked || (bias?.isTracked ?? false) else { return y }
    let xd = x.detached(), wd = weight.detached()
    var inputs = [x, weight]
    if let bias { inputs.append(bias) }
    return Tensor.record("linear", output: y, inputs: inputs) { g in
        let g2 = g.reshaped([rows, outF]), x2 = xd.reshaped([rows, inF])
        var out: [Tensor?] = [
            x.isTracked ? Tensor.gemm(g2, wd, transA: false, transB: false).reshaped(xd.shape) : nil,
            weight.isTracked ? Tensor.gemm(g2, x2, transA: true, transB: false) : nil,
        ]
        if let bias { out.append(bias.isTracked ? g2.sum(axes: [0]) : nil) }
        return out
    }
}
