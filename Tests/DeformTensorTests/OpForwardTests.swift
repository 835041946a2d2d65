import Foundation
import Testing
@testable import DeformTensor

/// Slow, obviously-correct references on multi-indices (shared by the op test suites).
enum OpRef {
    /// Every multi-index of `shape` in row-major order (one empty index for a 0-D shape).
    static func indices(_ shape: [Int]) -> [[Int]] {
        var result: [[Int]] = [[]]
        for d in shape { result = result.flatMap { prefix in (0..<d).map { prefix + [$0] } } }
        return result
    }

    static func flat(_ index: [Int], _ shape: [Int]) -> Int {
        zip(index, shape).reduce(0) { $0 * $1.1 + $1.0 }
    }

    static func at(_ t: Tensor, _ index: [Int]) -> Float { t.scalars[flat(index, t.shape)] }

    /// The element of an operand of `shape` read at output index `out` under NumPy broadcasting.
    static func broadcastIndex(_ out: [Int], into shape: [Int]) -> [Int] {
        let off = out.count - shape.count
        return shape.enumerated().map { i, d in d == 1 ? 0 : out[i + off] }
    }

    static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
        let n = max(a.count, b.count)
        let pa = [Int](repeating: 1, count: n - a.count) + a, pb = [Int](repeating: 1, count: n - b.count) + b
        return zip(pa, pb).map { max($0, $1) }
    }

    /// Elementwise reference on a broadcast pair, computed in Double.
    static func binary(_ a: Tensor, _ b: Tensor, _ f: (Double, Double) -> Double) -> (shape: [Int], values: [Double]) {
        let s = broadcastShape(a.shape, b.shape)
        let v = indices(s).map { i in
            f(Double(at(a, broadcastIndex(i, into: a.shape))), Double(at(b, broadcastIndex(i, into: b.shape))))
        }
        return (s, v)
    }

    /// Groups the elements of `x` by their index with `axes` removed and reduces each group.
    static func reduce(_ x: Tensor, axes: [Int], keepDims: Bool, _ f: ([Double]) -> Double) -> (shape: [Int], values: [Double]) {
        let ax = Set(axes.map { $0 < 0 ? $0 + x.rank : $0 })
        let keptShape = x.shape.enumerated().map { ax.contains($0.offset) ? 1 : $0.element }
        var groups = [[Double]](repeating: [], count: keptShape.reduce(1, *))
        for i in indices(x.shape) {
            let o = i.enumerated().map { ax.contains($0.offset) ? 0 : $0.element }
            groups[flat(o, keptShape)].append(Double(at(x, i)))
        }
        let outShape = keepDims ? keptShape : x.shape.enumerated().filter { !ax.contains($0.offset) }.map { $0.element }
        return (outShape, groups.map(f))
    }

    /// NumPy matmul on the definition: promote 1-D operands, broadcast batch dims, sum products.
    static func matmul(_ a: Tensor, _ b: Tensor) -> (shape: [Int], values: [Double]) {
        let sa = a.rank == 1 ? [1] + a.shape : a.shape, sb = b.rank == 1 ? b.shape + [1] : b.shape
        let m = sa[sa.count - 2], k = sa[sa.count - 1], n = sb[sb.count - 1]
        let batch = broadcastShape(Array(sa.dropLast(2)), Array(sb.dropLast(2)))
        var values: [Double] = []
        for bi in indices(batch) {
            let ia = broadcastIndex(bi, into: Array(sa.dropLast(2))), ib = broadcastIndex(bi, into: Array(sb.dropLast(2)))
            for i in 0..<m {
                for j in 0..<n {
                    var s = 0.0
                    for p in 0..<k {
                        s += Double(a.scalars[flat(ia + [i, p], sa)]) * Double(b.scalars[flat(ib + [p, j], sb)])
                    }
                    values.append(s)
                }
            }
        }
        var shape = batch
        if a.rank > 1 { shape.append(m) }
        if b.rank > 1 { shape.append(n) }
        return (shape, values)
    }

    /// Random normals with every |value| >= `gap`, keeping finite differences off kinks at 0.
    static func awayFromZero(_ shape: [Int], seed: UInt64, gap: Float = 0.2) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        return rng.normal(shape).mapScalars { $0 >= 0 ? $0 + gap : $0 - gap }
    }

    /// Distinct values in random order, spaced by `spacing` (no ties, no near-ties).
    static func distinct(_ shape: [Int], seed: UInt64, spacing: Float = 0.25) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        let n = shape.reduce(1, *)
        let perm = rng.permutation(n)
        return Tensor(perm.map { (Float($0) - Float(n) / 2) * spacing }, shape: shape)
    }
}

/// Checks `t` against reference values with a mixed absolute/relative tolerance.
func expectClose(_ t: Tensor, _ ref: (shape: [Int], values: [Double]), tol: Double = 1e-5,
                 _ what: @autoclosure () -> String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(t.shape == ref.shape, "\(what()): shape \(t.shape) vs reference \(ref.shape)", sourceLocation: sourceLocation)
    guard t.shape == ref.shape else { return }
    var worst = 0.0, worstAt = -1
    for (i, (v, r)) in zip(t.scalars, ref.values).enumerated() {
        let err = v.isNaN || r.isNaN ? (v.isNaN == r.isNaN ? 0 : .infinity) : (Double(v) == r ? 0 : abs(Double(v) - r) / (tol + tol * abs(r)))
        if err > worst { worst = err; worstAt = i }
    }
    #expect(worst <= 1, "\(what()): element \(worstAt) is \(worstAt >= 0 ? t.scalars[worstAt] : 0), reference \(worstAt >= 0 ? ref.values[worstAt] : 0)",
            sourceLocation: sourceLocation)
}

@Suite struct OpForwardTests {
    static let broadcastPairs: [([Int], [Int])] = [
        ([2, 3], [2, 3]), ([2, 3], [3]), ([2, 1, 4], [3, 1]), ([1], [2, 3]), ([], [2, 3]),
        ([4, 1], [1, 5]), ([2, 3, 4], [2, 1, 4]), ([3, 1, 1], [1, 2]), ([2, 3], []), ([1, 3], [2, 1]),
    ]

    @Test func unaryOpsMatchReference() {
        var rng = RandomGenerator(seed: 10)
        let x = rng.normal([3, 5], std: 2)
        let pos = rng.uniform([3, 5], low: 0.1, high: 3)
        func erf(_ v: Double) -> Double { Foundation.erf(v) }
        let cases: [(String, Tensor, (Tensor) -> Tensor, (Double) -> Double)] = [
            ("exp", x, { $0.exp() }, { Foundation.exp($0) }),
            ("log", pos, { $0.log() }, { Foundation.log($0) }),
            ("sqrt", pos, { $0.sqrt() }, { $0.squareRoot() }),
            ("sin", x, { $0.sin() }, { Foundation.sin($0) }),
            ("cos", x, { $0.cos() }, { Foundation.cos($0) }),
            ("tanh", x, { $0.tanh() }, { Foundation.tanh($0) }),
            ("square", x, { $0.square() }, { $0 * $0 }),
            ("reciprocal", pos, { $0.reciprocal() }, { 1 / $0 }),
            ("abs", x, { $0.abs() }, { Swift.abs($0) }),
            ("sign", x, { $0.sign() }, { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }),
            ("sigmoid", x, { $0.sigmoid() }, { 1 / (1 + Foundation.exp(-$0)) }),
            ("softplus", x, { $0.softplus() }, { Foundation.log(1 + Foundation.exp($0)) }),
            ("softplus beta 2", x, { $0.softplus(beta: 2) }, { Foundation.log(1 + Foundation.exp(2 * $0)) / 2 }),
            ("softplus threshold", x, { $0.softplus(beta: 1, threshold: 1) }, { $0 > 1 ? $0 : Foundation.log(1 + Foundation.exp($0)) }),
            ("relu", x, { $0.relu() }, { Swift.max($0, 0) }),
            ("leakyRelu", x, { $0.leakyRelu(0.1) }, { $0 > 0 ? $0 : 0.1 * $0 }),
            ("gelu", x, { $0.gelu() }, { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) }),
            ("pow 3", x, { $0.pow(3) }, { $0 * $0 * $0 }),
            ("pow 2", x, { $0.pow(2) }, { $0 * $0 }),
            ("pow 0.5", pos, { $0.pow(0.5) }, { $0.squareRoot() }),
            ("pow -1.5", pos, { $0.pow(-1.5) }, { Foundation.pow($0, -1.5) }),
            ("clamp", x, { $0.clamp(min: -0.5, max: 1) }, { Swift.min(Swift.max($0, -0.5), 1) }),
            ("clamp min", x, { $0.clamp(min: 0.3) }, { Swift.max($0, 0.3) }),
            ("clamp max", x, { $0.clamp(max: -0.2) }, { Swift.min($0, -0.2) }),
            ("neg", x, { -$0 }, { -$0 }),
        ]
        for (name, input, op, ref) in cases {
            expectClose(op(input), (input.shape, input.scalars.map { ref(Double($0)) }), tol: 2e-6, name)
        }
    }

    @Test func unaryOpsAreStableAtExtremes() {
        let x = Tensor([-100, -30, 0, 30, 100])
        expectClose(x.sigmoid(), ([5], [Foundation.exp(-100.0), Foundation.exp(-30.0) / (1 + Foundation.exp(-30.0)), 0.5, 1, 1]), tol: 1e-6, "sigmoid")
        expectClose(x.softplus(), ([5], [Foundation.exp(-100.0), Foundation.log1p(Foundation.exp(-30.0)), Foundation.log(2.0), 30, 100]), tol: 1e-6, "softplus")
        expectClose(x.tanh(), ([5], [-1, -1, 0, 1, 1]), tol: 1e-6, "tanh")
        // relu/abs/sign at exactly zero.
        let z = Tensor([0, -0.0, 1e-30])
        #expect(z.relu().scalars == [0, 0, 1e-30])
        #expect(z.abs().scalars == [0, 0, 1e-30])
        #expect(z.sign().scalars == [0, 0, 1])
    }

    @Test func binaryOpsBroadcast() {
        var rng = RandomGenerator(seed: 11)
        for (sa, sb) in Self.broadcastPairs {
            for (a, b) in [(sa, sb), (sb, sa)] {
                let x = rng.normal(a), y = rng.normal(b)
                let py = rng.uniform(b, low: 0.5, high: 2), px = rng.uniform(a, low: 0.5, high: 2)
                let tag = "\(a) and \(b)"
                expectClose(x + y, OpRef.binary(x, y, +), "add \(tag)")
                expectClose(x - y, OpRef.binary(x, y, -), "sub \(tag)")
                expectClose(x * y, OpRef.binary(x, y, *), "mul \(tag)")
                expectClose(x / py, OpRef.binary(x, py, /), "div \(tag)")
                expectClose(Tensor.pow(px, y), OpRef.binary(px, y) { Foundation.pow($0, $1) }, tol: 1e-5, "pow \(tag)")
                expectClose(Tensor.maximum(x, y), OpRef.binary(x, y) { Swift.max($0, $1) }, "maximum \(tag)")
                expectClose(Tensor.minimum(x, y), OpRef.binary(x, y) { Swift.min($0, $1) }, "minimum \(tag)")
                expectClose(x .> y, OpRef.binary(x, y) { $0 > $1 ? 1 : 0 }, "> \(tag)")
                expectClose(x .< y, OpRef.binary(x, y) { $0 < $1 ? 1 : 0 }, "< \(tag)")
                expectClose(x .>= y, OpRef.binary(x, y) { $0 >= $1 ? 1 : 0 }, ">= \(tag)")
                expectClose(x .<= y, OpRef.binary(x, y) { $0 <= $1 ? 1 : 0 }, "<= \(tag)")
            }
        }
        let x = Tensor([[1, 2], [3, 4]])
        #expect((x + 1).scalars == [2, 3, 4, 5])
        #expect((1 - x).scalars == [0, -1, -2, -3])
        #expect((x * 2).scalars == [2, 4, 6, 8])
        #expect((2 / x).scalars == [2, 1, Float(2) / 3, 0.5])
        #expect((x .== Tensor([1, 4])).scalars == [1, 0, 0, 1])
    }

    @Test func whereBroadcastsAllThree() {
        var rng = RandomGenerator(seed: 12)
        let shapes: [([Int], [Int], [Int])] = [([2, 3], [2, 3], [2, 3]), ([2, 1, 3], [4, 1], []), ([3], [2, 3], [2, 1]), ([], [2], [3, 1])]
        for (sc, sa, sb) in shapes {
            let c = rng.normal(sc) .> Tensor(0), a = rng.normal(sa), b = rng.normal(sb)
            let y = Tensor.where(c, a, b)
            let outShape = OpRef.broadcastShape(OpRef.broadcastShape(sc, sa), sb)
            let ref = OpRef.indices(outShape).map { i -> Double in
                OpRef.at(c, OpRef.broadcastIndex(i, into: sc)) != 0
                    ? Double(OpRef.at(a, OpRef.broadcastIndex(i, into: sa))) : Double(OpRef.at(b, OpRef.broadcastIndex(i, into: sb)))
            }
            expectClose(y, (outShape, ref), "where \(sc) \(sa) \(sb)")
        }
    }

    static let axisSets: [[Int]?] = [nil, [0], [1], [2], [-1], [0, 2], [-1, 0], [1, 2], [0, 1, 2]]

    @Test func reductionsMatchReference() {
        var rng = RandomGenerator(seed: 13)
        let x = rng.normal([2, 3, 4])
        for axes in Self.axisSets {
            for keep in [false, true] {
                let ax = axes ?? [0, 1, 2]
                let tag = "axes \(String(describing: axes)) keepDims \(keep)"
                expectClose(x.sum(axes: axes, keepDims: keep), OpRef.reduce(x, axes: ax, keepDims: keep) { $0.reduce(0, +) }, "sum \(tag)")
                expectClose(x.mean(axes: axes, keepDims: keep), OpRef.reduce(x, axes: ax, keepDims: keep) { $0.reduce(0, +) / Double($0.count) }, "mean \(tag)")
                expectClose(x.max(axes: axes, keepDims: keep), OpRef.reduce(x, axes: ax, keepDims: keep) { $0.max()! }, "max \(tag)")
                expectClose(x.min(axes: axes, keepDims: keep), OpRef.reduce(x, axes: ax, keepDims: keep) { $0.min()! }, "min \(tag)")
                for correction in [0, 1] {
                    expectClose(x.variance(axes: axes, keepDims: keep, correction: correction),
                                OpRef.reduce(x, axes: ax, keepDims: keep) { v in
                                    let m = v.reduce(0, +) / Double(v.count)
                                    return v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count - correction)
                                }, tol: 1e-5, "var correction \(correction) \(tag)")
                }
                expectClose(x.norm(axes: axes, keepDims: keep), OpRef.reduce(x, axes: ax, keepDims: keep) { $0.map { $0 * $0 }.reduce(0, +).squareRoot() }, "norm \(tag)")
                expectClose(x.logSumExp(axes: axes, keepDims: keep), OpRef.reduce(x, axes: ax, keepDims: keep) { Foundation.log($0.map { Foundation.exp($0) }.reduce(0, +)) }, "logSumExp \(tag)")
            }
        }
        // Single-axis conveniences and a 1-D input reduced to 0-D.
        #expect(x.sum(axis: -2).shape == [2, 4])
        #expect(x.mean(axis: 0, keepDims: true).shape == [1, 3, 4])
        #expect(Tensor([1, 2, 3]).sum().shape == [])
        #expect(Tensor([1, 2, 3]).variance().item == 1)
    }

    @Test func logSumExpIsStableForLargeValues() {
        let x = Tensor([[1000, 1000], [-1000, -999]])
        expectClose(x.logSumExp(axes: [1]), ([2], [1000 + Foundation.log(2.0), -999 + Foundation.log1p(Foundation.exp(-1.0))]), tol: 1e-6, "logSumExp")
        let s = x.softmax(axis: 1)
        expectClose(s, ([2, 2], [0.5, 0.5, 1 / (1 + Foundation.exp(1.0)), 1 / (1 + Foundation.exp(-1.0))]), tol: 1e-6, "softmax")
        #expect(x.logSoftmax(axis: 1).isFinite)
        // All -inf along a row: logSumExp is -inf, not NaN.
        let ninf = Tensor([-Float.infinity, -Float.infinity])
        #expect(ninf.logSumExp().item == -.infinity)
    }

    @Test func softmaxAndLogSoftmaxMatchReference() {
        var rng = RandomGenerator(seed: 14)
        let x = rng.normal([2, 3, 4], std: 2)
        for axis in [0, 1, 2, -1, -3] {
            let a = axis < 0 ? axis + 3 : axis
            var sm = [Double](repeating: 0, count: x.count), lsm = sm
            for i in OpRef.indices(x.shape) {
                var denom = 0.0
                for k in 0..<x.shape[a] { var j = i; j[a] = k; denom += Foundation.exp(Double(OpRef.at(x, j))) }
                let v = Double(OpRef.at(x, i))
                sm[OpRef.flat(i, x.shape)] = Foundation.exp(v) / denom
                lsm[OpRef.flat(i, x.shape)] = v - Foundation.log(denom)
            }
            expectClose(x.softmax(axis: axis), (x.shape, sm), "softmax axis \(axis)")
            expectClose(x.logSoftmax(axis: axis), (x.shape, lsm), "logSoftmax axis \(axis)")
        }
    }

    @Test func argmaxArgminMatchReferenceWithFirstTie() {
        var rng = RandomGenerator(seed: 15)
        let x = rng.normal([3, 4, 5])
        for axis in [0, 1, 2, -1] {
            for keep in [false, true] {
                expectClose(x.argmax(axis: axis, keepDims: keep), OpRef.reduce(x, axes: [axis], keepDims: keep) { v in Double(v.firstIndex(of: v.max()!)!) }, "argmax \(axis)")
                expectClose(x.argmin(axis: axis, keepDims: keep), OpRef.reduce(x, axes: [axis], keepDims: keep) { v in Double(v.firstIndex(of: v.min()!)!) }, "argmin \(axis)")
            }
        }
        let ties = Tensor([[1, 3, 3, 0], [2, 2, 2, 2], [-1, -5, 0, -5]])
        #expect(ties.argmax(axis: 1).scalars == [1, 0, 2])
        #expect(ties.argmin(axis: 1).scalars == [3, 0, 1])
        #expect(ties.argmax(axis: 0).scalars == [1, 0, 0, 1])
    }

    @Test func permuteTransposeMatchReference() {
        var rng = RandomGenerator(seed: 16)
        let x = rng.normal([2, 3, 4])
        for p in [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0], [-1, 0, -2]] {
            let y = x.permuted(p)
            let q = p.map { $0 < 0 ? $0 + 3 : $0 }
            let outShape = q.map { x.shape[$0] }
            var ref = [Double](repeating: 0, count: x.count)
            for i in OpRef.indices(x.shape) { ref[OpRef.flat(q.map { i[$0] }, outShape)] = Double(OpRef.at(x, i)) }
            expectClose(y, (outShape, ref), "permute \(p)")
        }
        let w = rng.normal([2, 3, 4, 5])
        let y = w.permuted(3, 1, 0, 2)
        for i in OpRef.indices(w.shape) { #expect(OpRef.at(y, [i[3], i[1], i[0], i[2]]) == OpRef.at(w, i)) }
        let t = x.transposed(0, 2)
        #expect(t.shape == [4, 3, 2])
        for i in OpRef.indices(x.shape) { #expect(OpRef.at(t, [i[2], i[1], i[0]]) == OpRef.at(x, i)) }
        let m = rng.normal([37, 41])   // larger than the transpose block, odd sizes
        let mt = m.T
        for i in OpRef.indices(m.shape) where (i[0] * 41 + i[1]) % 7 == 0 { #expect(OpRef.at(mt, [i[1], i[0]]) == OpRef.at(m, i)) }
        #expect(mt.T.scalars == m.scalars)
        #expect(Tensor([1, 2, 3]).transposed().shape == [3])
    }

    @Test func expandSqueezeUnsqueezeReshape() {
        var rng = RandomGenerator(seed: 17)
        for (from, to) in [([3], [2, 3]), ([2, 1], [2, 4]), ([1, 3, 1], [2, 3, 4]), ([], [2, 2]), ([2, 1, 3], [5, 2, 4, 3])] {
            let x = rng.normal(from)
            let y = x.expanded(to: to)
            expectClose(y, (to, OpRef.indices(to).map { Double(OpRef.at(x, OpRef.broadcastIndex($0, into: from))) }), "expand \(from) to \(to)")
        }
        let x = rng.normal([1, 3, 1, 2])
        #expect(x.squeezed().shape == [3, 2])
        #expect(x.squeezed([0]).shape == [3, 1, 2])
        #expect(x.squeezed([-2]).shape == [1, 3, 2])
        #expect(x.squeezed([0, 2]).scalars == x.scalars)
        #expect(x.unsqueezed(0).shape == [1, 1, 3, 1, 2])
        #expect(x.unsqueezed(4).shape == [1, 3, 1, 2, 1])
        #expect(x.unsqueezed(-1).shape == [1, 3, 1, 2, 1])
        #expect(x.unsqueezed(-2).shape == [1, 3, 1, 1, 2])
        #expect(x.reshaped([-1]).shape == [6])
        #expect(x.reshaped([2, -1]).shape == [2, 3])
        #expect(x.reshaped(-1, 3, 1).shape == [2, 3, 1])
        #expect(x.reshaped([3, -1]).scalars == x.scalars)
        #expect(x.flattened().shape == [6])
        #expect(x.flattened(from: 1, to: 2).shape == [1, 3, 2])
        #expect(Tensor(5).flattened().shape == [1])
        #expect(Tensor(5).unsqueezed(0).shape == [1])
    }

    @Test func matmulMatchesReferenceForAllRankCombinations() {
        var rng = RandomGenerator(seed: 18)
        let cases: [([Int], [Int])] = [
            ([3, 4], [4, 5]), ([4], [4, 5]), ([3, 4], [4]), ([4], [4]),
            ([2, 1, 3, 4], [5, 4, 2]), ([2, 3, 4], [4, 5]), ([3, 4], [2, 4, 5]),
            ([4], [2, 4, 5]), ([2, 3, 4], [4]), ([2, 3, 4], [2, 4, 5]), ([1, 3, 4], [2, 4, 1]), ([3, 0], [0, 2]),
        ]
        for (sa, sb) in cases {
            let a = rng.normal(sa), b = rng.normal(sb)
            expectClose(a.matmul(b), OpRef.matmul(a, b), tol: 1e-5, "matmul \(sa) @ \(sb)")
        }
        #expect(Tensor([1, 2, 3]).matmul(Tensor([4, 5, 6])).shape == [])
        #expect(Tensor([1, 2, 3]).matmul(Tensor([4, 5, 6])).item == 32)
        #expect(Tensor.zeros([3, 0]).matmul(Tensor.zeros([0, 2])).scalars == [0, 0, 0, 0, 0, 0])
    }
}
