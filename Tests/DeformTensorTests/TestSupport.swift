import Testing
@testable import DeformTensor

// Helpers shared by the kernel test files.

/// Largest elementwise difference of two equally shaped tensors.
func maxAbsDiff(_ a: Tensor, _ b: Tensor) -> Float {
    precondition(a.shape == b.shape, "shapes differ: \(a.shape) vs \(b.shape)")
    return zip(a.scalars, b.scalars).reduce(0) { Swift.max($0, abs($1.0 - $1.1)) }
}

/// For an op that is linear in `x` (or piecewise linear with fixed routing, like max pooling),
/// the gradient of <f(x), v> is f^T(v), so <f(x), v> = <x, grad>. Cheap enough to run on inputs
/// large enough to exercise the multi-threaded paths, where finite differences would be too slow.
func adjointGap(_ x: Tensor, seed: UInt64, _ f: (Tensor) -> Tensor) -> (gap: Double, scale: Double) {
    var rng = RandomGenerator(seed: seed)
    let xv = x.requiringGrad()
    let y = f(xv)
    let v = rng.normal(y.shape)
    let g = grad(of: y, wrt: [xv], seed: v)[0]
    let lhs = zip(y.scalars, v.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    let rhs = zip(x.scalars, g.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    return (abs(lhs - rhs), Swift.max(1, abs(lhs)))
}
