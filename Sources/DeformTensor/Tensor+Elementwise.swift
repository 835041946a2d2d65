import Foundation

// MARK: - Kernels

/// Elements above which elementwise kernels split work across cores.
@usableFromInline let parallelElementwiseThreshold = 1 << 17

extension Tensor {
    /// Applies `f` to every element (no recording).
    @inline(__always)
    public func mapScalars(_ f: (Float) -> Float) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        let src = dataPointer, dst = out.dataPointer, n = count
        if n >= parallelElementwiseThreshold {
            Threads.parallelRanges(n, minChunk: parallelElementwiseThreshold / 2) { r in
                for i in r { dst[i] = f(src[i]) }
            }
        } else {
            for i in 0..<n { dst[i] = f(src[i]) }
        }
        return out
    }

    /// Applies `f` elementwise with NumPy broadcasting (no recording).
    @inline(__always)
    public static func zipScalars(_ a: Tensor, _ b: Tensor, op: String, _ f: (Float, Float) -> Float) -> Tensor {
        let outShape: [Int]
        do { outShape = try broadcastShapes(a.shape, b.shape, op: op) } catch let e as TensorError { fail(e) } catch { fatalError("\(error)") }
        let out = Tensor(uninitializedShape: outShape)
        let pa = a.dataPointer, pb = b.dataPointer, po = out.dataPointer
        let n = out.count
        if a.shape == b.shape {
            if n >= parallelElementwiseThreshold {
                Threads.parallelRanges(n, minChunk: parallelElementwiseThreshold / 2) { r in for i in r { po[i] = f(pa[i], pb[i]) } }
            } else {
                for i in 0..<n { po[i] = f(pa[i], pb[i]) }
            }
        } else if b.count == 1 {
            let s = pb[0]
            for i in 0..<n { po[i] = f(pa[i], s) }
        } else if a.count == 1 {
            let s = pa[0]
            for i in 0..<n { po[i] = f(s, pb[i]) }
        } else if n > 0 {
            let rank = outShape.count
            let sa = broadcastStrides(a.shape, to: outShape), sb = broadcastStrides(b.shape, to: outShape)
            let inner = outShape[rank - 1], ia = sa[rank - 1], ib = sb[rank - 1]
            let outer = n / inner
            var idx = [Int](repeating: 0, count: rank)
            var oa = 0, ob = 0
            for o in 0..<outer {
                let base = o * inner
                var ka = oa, kb = ob
                for j in 0..<inner {
                    po[base + j] = f(pa[ka], pb[kb])
                    ka += ia; kb += ib
                }
                // Advance the multi-index over all but the last dimension.
                var d = rank - 2
                while d >= 0 {
                    idx[d] += 1; oa += sa[d]; ob += sb[d]
                    if idx[d] < outShape[d] { break }
                    oa -= sa[d] * idx[d]; ob -= sb[d] * idx[d]; idx[d] = 0
                    d -= 1
                }
            }
        }
        return out
    }
}

/// Strides for reading a tensor of `shape` as if broadcast to `target` (0 on broadcast dims).
public func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
    let strides = contiguousStrides(shape)
    let offset = target.count - shape.count
    return (0..<target.count).map { i in
        i < offset ? 0 : (shape[i - offset] == 1 && target[i] != 1 ? 0 : strides[i - offset])
    }
}

// MARK: - Unary ops

extension Tensor {
    @inline(__always)
    func unary(_ name: String, _ f: (Float) -> Float, vjp: @escaping (_ x: Tensor, _ y: Tensor, _ g: Tensor) -> Tensor) -> Tensor {
        let y = mapScalars(f)
        guard gradRef != nil, GradMode.isEnabled else { return y }
        let x = detached()
        return Tensor.record(name, output: y, inputs: [self]) { g in [vjp(x, y, g)] }
    }

    public func exp() -> Tensor { unary("exp", { Foundation.exp($0) }) { _, y, g in g * y } }
    public func log() -> Tensor { unary("log", { Foundation.log($0) }) { x, _, g in g / x } }
    public func sqrt() -> Tensor { unary("sqrt", { $0.squareRoot() }) { _, y, g in g * 0.5 / y } }
    public func sin() -> Tensor { unary("sin", { Foundation.sin($0) }) { x, _, g in g * x.cos() } }
    public func cos() -> Tensor { unary("cos", { Foundation.cos($0) }) { x, _, g in -(g * x.sin()) } }
    public func tanh() -> Tensor { unary("tanh", { Foundation.tanh($0) }) { _, y, g in Tensor.zipScalars(g, y, op: "tanh'") { g, y in g * (1 - y * y) } } }
    public func square() -> Tensor { unary("square", { $0 * $0 }) { x, _, g in Tensor.zipScalars(g, x, op: "square'") { g, x in 2 * g * x } } }
    public func reciprocal() -> Tensor { unary("reciprocal", { 1 / $0 }) { _, y, g in Tensor.zipScalars(g, y, op: "reciprocal'") { g, y in -g * y * y } } }
    /// `abs'(0) = 0`, as PyTorch.
    public func abs() -> Tensor { unary("abs", { Swift.abs($0) }) { x, _, g in g * x.sign() } }
    /// -1, 0 or 1 (gradient zero everywhere).
    public func sign() -> Tensor { mapScalars { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) } }

    public func sigmoid() -> Tensor {
        unary("sigmoid", { x in x >= 0 ? 1 / (1 + Foundation.exp(-x)) : Foundation.exp(x) / (1 + Foundation.exp(x)) }) { _, y, g in
            Tensor.zipScalars(g, y, op: "sigmoid'") { g, y in g * y * (1 - y) }
        }
    }

    /// `log(1 + exp(beta x)) / beta`, linear above `threshold` (PyTorch's defaults: beta 1, threshold 20).
    public func softplus(beta: Float = 1, threshold: Float = 20) -> Tensor {
        unary("softplus", { x in
            let bx = beta * x
            return bx > threshold ? x : Foundation.log1p(Foundation.exp(bx)) / beta
        }) { x, _, g in
            Tensor.zipScalars(g, x, op: "softplus'") { g, x in
                let bx = beta * x
                return bx > threshold ? g : g / (1 + Foundation.exp(-bx))
            }
        }
    }

    /// `relu'(0) = 0`, as PyTorch; NaN passes through (written so it compiles to one `maxps`).
    public func relu() -> Tensor { rectifier("relu", slope: 0) }

    public func leakyRelu(_ slope: Float = 0.01) -> Tensor { rectifier("leakyRelu", slope: slope) }

    /// relu (`slope` 0: `x < 0 ? 0 : x`, NaN kept) and leaky relu (`x > 0 ? x : slope·x`), with
    /// gradient `x > 0 ? g : slope·g` (0 at x = 0, as PyTorch). Explicit SIMD loops: these run
    /// after every hidden layer, and a per-element closure call made them 6x slower than `x + x`.
    func rectifier(_ name: String, slope: Float) -> Tensor {
        let y = Tensor(uninitializedShape: shape)
        let src = dataPointer, dst = y.dataPointer, n = count
        Threads.parallelRanges(n, minChunk: parallelElementwiseThreshold / 2) { r in
            typealias V = SIMD16<Float>
            var i = r.lowerBound
            while i + 16 <= r.upperBound {
                let x = UnsafeRawPointer(src + i).loadUnaligned(as: V.self)
                var out = slope == 0 ? V(repeating: 0) : x * slope
                if slope == 0 { out.replace(with: x, where: .!(x .< 0)) } else { out.replace(with: x, where: x .> 0) }
                UnsafeMutableRawPointer(dst + i).storeBytes(of: out, as: V.self)
                i += 16
            }
            while i < r.upperBound {
                let x = src[i]
                dst[i] = slope == 0 ? (x < 0 ? 0 : x) : (x > 0 ? x : slope * x)
                i += 1
            }
        }
        guard GradMode.isEnabled, isTracked else { return y }
        let xd = detached()
        return Tensor.record(name, output: y, inputs: [self]) { g in
            let gx = Tensor(uninitializedShape: xd.shape)
            let px = xd.dataPointer, pg = g.dataPointer, po = gx.dataPointer
            Threads.parallelRanges(n, minChunk: parallelElementwiseThreshold / 2) { r in
                typealias V = SIMD16<Float>
                var i = r.lowerBound
                while i + 16 <= r.upperBound {
                    let x = UnsafeRawPointer(px + i).loadUnaligned(as: V.self)
                    let gv = UnsafeRawPointer(pg + i).loadUnaligned(as: V.self)
                    var out = slope == 0 ? V(repeating: 0) : gv * slope
                    out.replace(with: gv, where: x .> 0)
                    UnsafeMutableRawPointer(po + i).storeBytes(of: out, as: V.self)
                    i += 16
                }
                while i < r.upperBound {
                    po[i] = px[i] > 0 ? pg[i] : (slope == 0 ? 0 : slope * pg[i])
                    i += 1
                }
            }
            return [gx]
        }
    }

    /// Exact GELU, `x Φ(x)` (PyTorch's default, not the tanh approximation).
    public func gelu() -> Tensor {
        unary("gelu", { x in 0.5 * x * (1 + Foundation.erf(x * 0.70710678118654752)) }) { x, _, g in
            Tensor.zipScalars(g, x, op: "gelu'") { g, x in
                let cdf = 0.5 * (1 + Foundation.erf(x * 0.70710678118654752))
                let pdf = 0.3989422804014327 * Foundation.exp(-0.5 * x * x)
                return g * (cdf + x * pdf)
            }
        }
    }

    /// `x^p` for a constant exponent.
    public func pow(_ p: Float) -> Tensor {
        if p == 2 { return square() }
        return unary("pow", { Foundation.pow($0, p) }) { x, _, g in
            Tensor.zipScalars(g, x, op: "pow'") { g, x in p == 0 ? 0 : g * p * Foundation.pow(x, p - 1) }
        }
    }

    /// Clamps to `[min, max]`; the gradient passes where `min <= x <= max` (PyTorch's convention).
    public func clamp(min lo: Float = -.infinity, max hi: Float = .infinity) -> Tensor {
        unary("clamp", { Swift.min(Swift.max($0, lo), hi) }) { x, _, g in
            Tensor.zipScalars(g, x, op: "clamp'") { g, x in (x >= lo && x <= hi) ? g : 0 }
        }
    }

    public static prefix func - (x: Tensor) -> Tensor {
        let y = x.mapScalars { -$0 }
        return record("neg", output: y, inputs: [x]) { g in [-g] }
    }
}

// MARK: - Binary ops

extension Tensor {
    /// Sums a broadcast gradient back to `shape` (the VJP of broadcasting).
    public func sumTo(_ target: [Int]) -> Tensor {
        if shape == target { return self }
        let offset = rank - target.count
        precondition(offset >= 0, "sumTo: cannot reduce \(shape) to \(target)")
        var axes: [Int] = Array(0..<offset)
        for (i, d) in target.enumerated() where d == 1 && shape[i + offset] != 1 { axes.append(i + offset) }
        var r = axes.isEmpty ? self : sum(axes: axes, keepDims: true)
        if offset > 0 || r.shape != target { r = r.reshaped(target) }
        return r
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let y = zipScalars(a, b, op: "add", +)
        guard GradMode.isEnabled, a.gradRef != nil || b.gradRef != nil else { return y }
        let sa = a.shape, sb = b.shape, aTracked = a.isTracked, bTracked = b.isTracked
        return record("add", output: y, inputs: [a, b]) { g in [aTracked ? g.sumTo(sa) : nil, bTracked ? g.sumTo(sb) : nil] }
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let y = zipScalars(a, b, op: "sub", -)
        guard GradMode.isEnabled, a.gradRef != nil || b.gradRef != nil else { return y }
        let sa = a.shape, sb = b.shape, aTracked = a.isTracked, bTracked = b.isTracked
        return record("sub", output: y, inputs: [a, b]) { g in [aTracked ? g.sumTo(sa) : nil, bTracked ? (-g).sumTo(sb) : nil] }
    }

    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let y = zipScalars(a, b, op: "mul", *)
        guard GradMode.isEnabled, a.gradRef != nil || b.gradRef != nil else { return y }
        let ad = a.detached(), bd = b.detached()
        return record("mul", output: y, inputs: [a, b]) { g in
            [a.isTracked ? (g * bd).sumTo(ad.shape) : nil, b.isTracked ? (g * ad).sumTo(bd.shape) : nil]
        }
    }

    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let y = zipScalars(a, b, op: "div", /)
        guard GradMode.isEnabled, a.gradRef != nil || b.gradRef != nil else { return y }
        let ad = a.detached(), bd = b.detached()
        return record("div", output: y, inputs: [a, b]) { g in
            [a.isTracked ? (g / bd).sumTo(ad.shape) : nil,
             b.isTracked ? (-(g * y.detached()) / bd).sumTo(bd.shape) : nil]
        }
    }

    /// `a^b` elementwise with broadcasting (`a > 0` where the gradient w.r.t. `b` is needed).
    public static func pow(_ a: Tensor, _ b: Tensor) -> Tensor {
        let y = zipScalars(a, b, op: "pow") { Foundation.pow($0, $1) }
        guard GradMode.isEnabled, a.gradRef != nil || b.gradRef != nil else { return y }
        let ad = a.detached(), bd = b.detached(), yd = y.detached()
        return record("pow", output: y, inputs: [a, b]) { g in
            // b·a^(b-1), defined as 0 where b = 0 (PyTorch), so 0^0 does not give 0·∞.
            let ga = a.isTracked ? (g * zipScalars(ad, bd, op: "pow'") { x, e in e == 0 ? 0 : e * Foundation.pow(x, e - 1) })
                .sumTo(ad.shape) : nil
            let gb = b.isTracked ? (g * yd * Tensor.zipScalars(ad, ad, op: "log") { x, _ in x > 0 ? Foundation.log(x) : 0 }).sumTo(bd.shape) : nil
            return [ga, gb]
        }
    }

    /// Elementwise maximum; NaN in either operand gives NaN, and at ties the gradient is split in
    /// half (PyTorch's conventions).
    public static func maximum(_ a: Tensor, _ b: Tensor) -> Tensor { extremum(a, b, name: "maximum") { $0 > $1 } }
    /// Elementwise minimum; NaN in either operand gives NaN, and at ties the gradient is split in
    /// half (PyTorch's conventions).
    public static func minimum(_ a: Tensor, _ b: Tensor) -> Tensor { extremum(a, b, name: "minimum") { $0 < $1 } }

    static func extremum(_ a: Tensor, _ b: Tensor, name: String, _ better: @escaping (Float, Float) -> Bool) -> Tensor {
        // `b` wins only when it is better or NaN; a NaN `a` wins by never losing.
        let y = zipScalars(a, b, op: name) { better($1, $0) || $1.isNaN ? $1 : $0 }
        guard GradMode.isEnabled, a.gradRef != nil || b.gradRef != nil else { return y }
        let ad = a.detached(), bd = b.detached(), aTracked = a.isTracked, bTracked = b.isTracked
        return record(name, output: y, inputs: [a, b]) { g in
            // The gradient follows the value that was picked (the NaN one, if any).
            let wa = zipScalars(ad, bd, op: name) { x, z in better(x, z) || x.isNaN ? 1 : (x == z ? 0.5 : 0) }
            return [aTracked ? (g * wa).sumTo(ad.shape) : nil, bTracked ? (g * (Tensor(1) - wa)).sumTo(bd.shape) : nil]
        }
    }

    /// `condition != 0 ? a : b` with broadcasting; no gradient flows to `condition`.
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        let shape: [Int]
        do { shape = try broadcastShapes(try broadcastShapes(condition.shape, a.shape, op: "where"), b.shape, op: "where") }
        catch let e as TensorError { fail(e) } catch { fatalError("\(error)") }
        let m = condition.broadcastRaw(to: shape), x = a.broadcastRaw(to: shape), z = b.broadcastRaw(to: shape)
        var y = Tensor(uninitializedShape: shape)
        let pm = m.dataPointer, px = x.dataPointer, pz = z.dataPointer, py = y.dataPointer
        for i in 0..<y.count { py[i] = pm[i] != 0 ? px[i] : pz[i] }
        guard GradMode.isEnabled, a.gradRef != nil || b.gradRef != nil else { return y }
        let sa = a.shape, sb = b.shape, aTracked = a.isTracked, bTracked = b.isTracked
        y = record("where", output: y, inputs: [a, b]) { g in
            [aTracked ? zipScalars(m, g, op: "where'") { m, g in m != 0 ? g : 0 }.sumTo(sa) : nil,
             bTracked ? zipScalars(m, g, op: "where'") { m, g in m != 0 ? 0 : g }.sumTo(sb) : nil]
        }
        return y
    }
}

// MARK: - Scalar conveniences and comparisons

extension Tensor {
    public static func + (a: Tensor, b: Float) -> Tensor { a + Tensor(b) }
    public static func + (a: Float, b: Tensor) -> Tensor { Tensor(a) + b }
    public static func - (a: Tensor, b: Float) -> Tensor { a - Tensor(b) }
    public static func - (a: Float, b: Tensor) -> Tensor { Tensor(a) - b }
    public static func * (a: Tensor, b: Float) -> Tensor { a * Tensor(b) }
    public static func * (a: Float, b: Tensor) -> Tensor { Tensor(a) * b }
    public static func / (a: Tensor, b: Float) -> Tensor { a / Tensor(b) }
    public static func / (a: Float, b: Tensor) -> Tensor { Tensor(a) / b }
    public static func += (a: inout Tensor, b: Tensor) { a = a + b }
    public static func -= (a: inout Tensor, b: Tensor) { a = a - b }
    public static func *= (a: inout Tensor, b: Tensor) { a = a * b }

    /// 1 where `a > b`, else 0 (not differentiable).
    public static func .> (a: Tensor, b: Tensor) -> Tensor { zipScalars(a, b, op: ">") { $0 > $1 ? 1 : 0 } }
    public static func .< (a: Tensor, b: Tensor) -> Tensor { zipScalars(a, b, op: "<") { $0 < $1 ? 1 : 0 } }
    public static func .>= (a: Tensor, b: Tensor) -> Tensor { zipScalars(a, b, op: ">=") { $0 >= $1 ? 1 : 0 } }
    public static func .<= (a: Tensor, b: Tensor) -> Tensor { zipScalars(a, b, op: "<=") { $0 <= $1 ? 1 : 0 } }
    public static func .== (a: Tensor, b: Tensor) -> Tensor { zipScalars(a, b, op: "==") { $0 == $1 ? 1 : 0 } }
    public static func .> (a: Tensor, b: Float) -> Tensor { a .> Tensor(b) }
    public static func .< (a: Tensor, b: Float) -> Tensor { a .< Tensor(b) }

    /// True when every element is finite.
    public var isFinite: Bool {
        withUnsafeBufferPointer { p in
            // x * 0 is 0 for finite x and NaN for NaN or ±∞, so one NaN poisons the sum; the
            // branch-free SIMD loop runs at memory speed (the scalar test was ~3 ns per element).
            let n = p.count, base = p.baseAddress!
            var acc = SIMD16<Float>(repeating: 0)
            var i = 0
            while i + 16 <= n {
                acc += UnsafeRawPointer(base + i).loadUnaligned(as: SIMD16<Float>.self) * 0
                i += 16
            }
            var tail: Float = 0
            while i < n { tail += base[i] * 0; i += 1 }
            return (acc.sum() + tail).isFinite
        }
    }

    /// Elementwise closeness (NumPy's `allclose`).
    public func allClose(_ other: Tensor, rtol: Float = 1e-5, atol: Float = 1e-6) -> Bool {
        guard shape == other.shape else { return false }
        return zip(scalars, other.scalars).allSatisfy { Swift.abs($0 - $1) <= atol + rtol * Swift.abs($1) }
    }
}

