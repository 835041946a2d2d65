import Foundation

/// Finite-difference checking of vector-Jacobian products (the engine's equivalent of Ceres'
/// gradient checker). Every hand-written derivative in Deform is tested with it.
///
/// The check contracts the output with a fixed random cotangent `w`, so the scalar
/// `L(x) = Σ w ⊙ f(x)` is evaluated in Double from the Float32 outputs, and compares the VJP
/// `∂L/∂x` with central differences `(L(x + h e_j) - L(x - h e_j)) / 2h` for every input element.
public enum GradientCheck {
    public struct Result: CustomStringConvertible {
        public var maxAbsError: Double = 0
        /// Largest `|analytic - numeric| / (atol + rtol * max(|analytic|, |numeric|))`; <= 1 passes.
        public var worstRatio: Double = 0
        public var worst: (input: Int, index: Int, analytic: Double, numeric: Double)? = nil
        public var checked = 0
        public var passed: Bool { worstRatio <= 1 }
        public var description: String {
            guard let w = worst else { return "gradient check: nothing checked" }
            return String(format: "gradient check %@: %d entries, max |err| %.3g, worst input %d[%d]: analytic %.6g vs numeric %.6g",
                          passed ? "passed" : "FAILED", checked, maxAbsError, w.input, w.index, w.analytic, w.numeric)
        }
    }

    /// Checks `f`'s VJP at `inputs`. Only inputs whose index is in `wrt` (default: all) are checked.
    public static func check(_ inputs: [Tensor], wrt: [Int]? = nil, step: Float = 1e-2,
                             atol: Double = 2e-3, rtol: Double = 2e-2, seed: UInt64 = 12345,
                             _ f: ([Tensor]) -> Tensor) -> Result {
        let base = inputs.map { $0.detached() }
        let outShape = GradMode.withoutGrad { f(base) }.shape
        var rng = RandomGenerator(seed: seed)
        let w = rng.normal(outShape)
        let wv = w.scalars.map(Double.init)
        func loss(_ xs: [Tensor]) -> Double {
            let y = GradMode.withoutGrad { f(xs) }
            var s = 0.0
            y.withUnsafeBufferPointer { p in for i in 0..<p.count { s += wv[i] * Double(p[i]) } }
            return s
        }
        let vars = base.map { $0.requiringGrad() }
        let analytic = grad(of: f(vars), wrt: vars, seed: w)
        var result = Result()
        for i in wrt ?? Array(0..<inputs.count) {
            let a = analytic[i].scalars
            for j in 0..<base[i].count {
                var plus = base, minus = base
                plus[i].withUnsafeMutableBufferPointer { $0[j] += step }
                minus[i].withUnsafeMutableBufferPointer { $0[j] -= step }
                // Use the step actually representable in Float32.
                let h = Double(plus[i].scalars[j]) - Double(minus[i].scalars[j])
                let numeric = (loss(plus) - loss(minus)) / h
                let an = Double(a[j])
                let err = Swift.abs(an - numeric)
                let ratio = err / (atol + rtol * Swift.max(Swift.abs(an), Swift.abs(numeric)))
                result.checked += 1
                result.maxAbsError = Swift.max(result.maxAbsError, err)
                if ratio > result.worstRatio || result.worst == nil || !ratio.isFinite {
                    result.worstRatio = ratio.isFinite ? ratio : .infinity
                    result.worst = (i, j, an, numeric)
                }
            }
        }
        return result
    }
}
