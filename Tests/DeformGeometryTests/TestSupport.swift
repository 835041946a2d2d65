import Foundation
import Testing
@testable import DeformGeometry
@testable import DeformTensor

/// Largest absolute elementwise difference (shapes must agree).
func maxDiff(_ a: Tensor, _ b: Tensor) -> Float {
    #expect(a.shape == b.shape, "shapes \(a.shape) vs \(b.shape)")
    return zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0
}

/// Row-major Double copy of matrix `b` of a batched `[..., r, c]` tensor.
func matrix(_ t: Tensor, _ b: Int = 0) -> [[Double]] {
    let r = t.shape[t.rank - 2], c = t.shape[t.rank - 1]
    let v = t.scalars
    return (0..<r).map { i in (0..<c).map { j in Double(v[b * r * c + i * c + j]) } }
}

func mul(_ a: [[Double]], _ b: [[Double]]) -> [[Double]] {
    (0..<a.count).map { i in (0..<b[0].count).map { j in (0..<b.count).reduce(0.0) { $0 + a[i][$1] * b[$1][j] } } }
}

func transpose(_ a: [[Double]]) -> [[Double]] {
    guard let c = a.first?.count else { return [] }
    return (0..<c).map { j in a.map { $0[j] } }
}

func det3(_ a: [[Double]]) -> Double {
    a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
        + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
}

/// Checks that every matrix of `[..., 3, 3]` is a rotation: `R Rᵀ = I` and `det R = 1`.
func expectRotations(_ r: Tensor, tolerance: Double = 2e-6, sourceLocation: SourceLocation = #_sourceLocation) {
    for b in 0..<(r.count / 9) {
        let m = matrix(r, b)
        let rrt = mul(m, transpose(m))
        var err = 0.0
        for i in 0..<3 { for j in 0..<3 { err = max(err, abs(rrt[i][j] - (i == j ? 1 : 0))) } }
        #expect(err < tolerance, "R Rᵀ - I = \(err) for matrix \(b)", sourceLocation: sourceLocation)
        #expect(abs(det3(m) - 1) < tolerance, "det = \(det3(m)) for matrix \(b)", sourceLocation: sourceLocation)
    }
}

/// A random point set `[batch..., p, 3]` centred over its points.
func centredPoints(_ shape: [Int], using rng: inout RandomGenerator) -> Tensor {
    let x = rng.normal(shape)
    return x - x.mean(axes: [-2], keepDims: true)
}

/// Concatenates flattened tensors so several outputs can be checked at once.
func flatConcat(_ ts: [Tensor]) -> Tensor { Tensor.concat(ts.map { $0.reshaped([-1]) }, axis: 0) }
