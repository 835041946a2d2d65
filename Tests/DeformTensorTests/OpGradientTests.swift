import Foundation
import Testing
@testable import DeformTensor

/// Finite-difference checks of every differentiable op's VJP, exact values at the
/// non-differentiable points, and gradient accumulation through shared subgraphs.
@Suite struct OpGradientTests {
    /// Runs the gradient checker and records a failure naming the op and the worst entry.
    func check(_ name: String, _ inputs: [Tensor], wrt: [Int]? = nil, step: Float = 1e-2,
               sourceLocation: SourceLocation = #_sourceLocation, _ f: ([Tensor]) -> Tensor) {
        let r = GradientCheck.check(inputs, wrt: wrt, step: step, f)
        let expected = (wrt ?? Array(inputs.indices)).reduce(0) { $0 + inputs[$1].count }
        #expect(r.checked == expected && r.passed, "\(name): \(r)", sourceLocation: sourceLocation)
    }

    /// Values on a 0.5 grid (`offset` shifts the grid), so two such tensors differ by at least
    /// `|offset|` everywhere: finite differences never cross a max/min kink.
    static func grid(_ shape: [Int], seed: UInt64, offset: Float = 0) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        return rng.uniform(shape, low: -4, high: 4).mapScalars { ($0.rounded() + offset) * 0.5 }
    }

    // MARK: - Elementwise

    @Test func unaryOps() {
        let x = OpRef.awayFromZero([3, 4], seed: 20)
        var rng = RandomGenerator(seed: 21)
        let pos = rng.uniform([3, 4], low: 0.3, high: 2)
        let cases: [(String, Tensor, (Tensor) -> Tensor)] = [
            ("exp", x, { $0.exp() }), ("log", pos, { $0.log() }), ("sqrt", pos, { $0.sqrt() }),
            ("sin", x, { $0.sin() }), ("cos", x, { $0.cos() }), ("tanh", x, { $0.tanh() }),
            ("square", x, { $0.square() }), ("reciprocal", pos, { $0.reciprocal() }),
            ("abs", x, { $0.abs() }), ("sigmoid", x, { $0.sigmoid() }),
            ("softplus", x, { $0.softplus() }), ("softplus beta", x, { $0.softplus(beta: 2.5) }),
            ("softplus linear part", x, { $0.softplus(beta: 1, threshold: 0.05) }),
            ("relu", x, { $0.relu() }), ("leakyRelu", x, { $0.leakyRelu(0.2) }), ("gelu", x, { $0.gelu() }),
            ("pow 3", x, { $0.pow(3) }), ("pow 2", x, { $0.pow(2) }), ("pow 0", x, { $0.pow(0) }),
            ("pow 0.5", pos, { $0.pow(0.5) }), ("pow -1.5", pos, { $0.pow(-1.5) }),
            ("neg", x, { -$0 }), ("sign times x", x, { $0.sign() * $0 }),
            ("scalar forms", pos, { ((($0 + 1) * 2 - 0.5) / 3 + 2 / $0 - (1 - $0) * 0.25) }),
        ]
        for (name, input, op) in cases { check(name, [input]) { op($0[0]) } }
        // Clamp with values kept at least 0.1 from both bounds.
        let c = Tensor([-1.7, -1.1, -0.6, -0.35, -0.1, 0.15, 0.45, 0.7, 0.95, 1.4, 2.0, -2.3])
        check("clamp", [c]) { $0[0].clamp(min: -0.5, max: 0.8) }
        check("clamp min", [c]) { $0[0].clamp(min: 0.3) }
        check("clamp max", [c]) { $0[0].clamp(max: -0.2) }
    }

    static let broadcastPairs = OpForwardTests.broadcastPairs

    @Test func binaryOpsWithBroadcasting() {
        for (k, (sa, sb)) in Self.broadcastPairs.enumerated() {
            for (a, b) in [(sa, sb), (sb, sa)] {
                var rng = RandomGenerator(seed: 100 + UInt64(k))
                let x = rng.normal(a), y = rng.normal(b)
                let px = rng.uniform(a, low: 0.5, high: 2), py = rng.uniform(b, low: 0.5, high: 2)
                let tag = "\(a) with \(b)"
                check("add \(tag)", [x, y]) { $0[0] + $0[1] }
                check("sub \(tag)", [x, y]) { $0[0] - $0[1] }
                check("mul \(tag)", [x, y]) { $0[0] * $0[1] }
                check("div \(tag)", [x, py]) { $0[0] / $0[1] }
                check("pow \(tag)", [px, y]) { Tensor.pow($0[0], $0[1]) }
                let gx = Self.grid(a, seed: 200 + UInt64(k)), gy = Self.grid(b, seed: 300 + UInt64(k), offset: 0.5)
                check("maximum \(tag)", [gx, gy]) { Tensor.maximum($0[0], $0[1]) }
                check("minimum \(tag)", [gx, gy]) { Tensor.minimum($0[0], $0[1]) }
            }
        }
    }

    @Test func whereWithBroadcasting() {
        var rng = RandomGenerator(seed: 22)
        for (sc, sa, sb) in [([2, 3], [2, 3], [2, 3]), ([2, 1, 3], [4, 1], []), ([3], [2, 3], [2, 1])] as [([Int], [Int], [Int])] {
            let c = rng.normal(sc) .> Tensor(0)
            check("where \(sc) \(sa) \(sb)", [c, rng.normal(sa), rng.normal(sb)], wrt: [1, 2]) { Tensor.where($0[0], $0[1], $0[2]) }
        }
    }

    // MARK: - Reductions

    @Test func reductionsOverAxes() {
        var rng = RandomGenerator(seed: 23)
        let x = rng.normal([2, 3, 4])
        let d = OpRef.distinct([2, 3, 4], seed: 24)
        for axes in [nil, [1], [-1, 0], [0, 2]] as [[Int]?] {
            for keep in [false, true] {
                let tag = "axes \(String(describing: axes)) keepDims \(keep)"
                check("sum \(tag)", [x]) { $0[0].sum(axes: axes, keepDims: keep) }
                check("mean \(tag)", [x]) { $0[0].mean(axes: axes, keepDims: keep) }
                check("max \(tag)", [d]) { $0[0].max(axes: axes, keepDims: keep) }
                check("min \(tag)", [d]) { $0[0].min(axes: axes, keepDims: keep) }
                check("variance \(tag)", [x]) { $0[0].variance(axes: axes, keepDims: keep) }
                check("variance correction 0 \(tag)", [x]) { $0[0].variance(axes: axes, keepDims: keep, correction: 0) }
                check("norm \(tag)", [x]) { $0[0].norm(axes: axes, keepDims: keep) }
                check("logSumExp \(tag)", [x]) { $0[0].logSumExp(axes: axes, keepDims: keep) }
            }
        }
        check("sum axis", [x]) { $0[0].sum(axis: 1) }
        check("mean axis", [x]) { $0[0].mean(axis: -1, keepDims: true) }
        check("max axis", [d]) { $0[0].max(axis: 0) }
        check("min axis", [d]) { $0[0].min(axis: 2, keepDims: true) }
        for axis in [0, 1, -1] {
            check("softmax \(axis)", [x]) { $0[0].softmax(axis: axis) }
            check("logSoftmax \(axis)", [x]) { $0[0].logSoftmax(axis: axis) }
        }
    }

    // MARK: - Shape ops and matmul

    @Test func shapeOps() {
        var rng = RandomGenerator(seed: 25)
        let x = rng.normal([2, 3, 4])
        check("reshape -1", [x]) { $0[0].reshaped([4, -1]).sin() }
        check("flatten", [x]) { $0[0].flattened(from: 1).sin() }
        check("unsqueeze", [x]) { $0[0].unsqueezed(1) * Tensor([1, 2], shape: [1, 2, 1, 1]) }
        check("squeeze", [rng.normal([1, 3, 1, 2])]) { $0[0].squeezed() * Tensor([1, -2]) }
        check("squeeze axis", [rng.normal([1, 3, 1, 2])]) { $0[0].squeezed([2]).sin() }
        check("permute", [x]) { $0[0].permuted(2, 0, 1) * Tensor([1, 2, 3], shape: [3]) }
        check("transpose", [x]) { $0[0].transposed(0, 2).sin() }
        check("T", [rng.normal([3, 5])]) { $0[0].T * Tensor([1, 2, 3]) }
        let w = rng.normal([2, 3, 4])
        check("expand", [rng.normal([3, 1])]) { $0[0].expanded(to: [2, 3, 4]) * w }
        check("expand scalar", [Tensor(0.7)]) { $0[0].expanded(to: [3]) * Tensor([1, 2, 3]) }
        check("sumTo", [rng.normal([2, 3, 4])]) { $0[0].sumTo([3, 1]).sin() }
    }

    @Test func matmulAllRankCombinations() {
        var rng = RandomGenerator(seed: 26)
        let cases: [([Int], [Int])] = [
            ([3, 4], [4, 2]), ([4], [4, 2]), ([3, 4], [4]), ([4], [4]),
            ([2, 1, 3, 4], [3, 4, 2]), ([2, 3, 4], [4, 2]), ([3, 4], [2, 4, 2]), ([4], [2, 4, 3]), ([2, 3, 4], [4]),
        ]
        for (sa, sb) in cases {
            check("matmul \(sa) @ \(sb)", [rng.normal(sa), rng.normal(sb)]) { $0[0].matmul($0[1]) }
        }
        let w = rng.normal([3, 3])
        check("matmul one operand tracked", [rng.normal([2, 3])]) { $0[0].matmul(w) }
    }

    // MARK: - Indexing and joining

    @Test func indexingOps() {
        var rng = RandomGenerator(seed: 27)
        let x = rng.normal([3, 4, 5])
        check("narrow", [x]) { $0[0].narrow(axis: 1, start: 1, length: 2) }
        check("narrow last axis", [x]) { $0[0].narrow(axis: -1, start: -3, length: 3) }
        check("slice", [x]) { $0[0].slice(axis: 0, 1..<3) }
        check("indexSelect repeats", [x]) { $0[0].indexSelect(axis: 1, indices: [3, 0, 3, 3, 1]) }
        check("indexSelect tensor", [x]) { $0[0].indexSelect(axis: 2, indices: Tensor([4, 4, 0])) }
        for axis in 0..<3 {
            var ishape = [2, 3, 4]
            ishape[axis] = 6
            let index = rng.uniform(ishape).mapScalars { Float(Int($0 * Float(x.shape[axis]))) }
            check("gather \(axis)", [x]) { $0[0].gather(axis: axis, index: index) }
            let source = rng.normal(ishape.map { $0 + 1 })
            check("scatterAdd \(axis)", [x, source]) { $0[0].scatterAdd(axis: axis, index: index, source: $0[1]) }
        }
        let mask = rng.normal([3, 4, 5]) .> Tensor(0)
        check("maskedSelect", [x]) { $0[0].maskedSelect(mask) }
        check("maskedSelect broadcast input", [rng.normal([4, 1])]) { $0[0].maskedSelect(mask) }
    }

    @Test func joinOps() {
        var rng = RandomGenerator(seed: 28)
        let a = rng.normal([2, 3]), b = rng.normal([2, 1]), c = rng.normal([2, 2])
        check("concat", [a, b, c]) { Tensor.concat($0, axis: 1) }
        check("concat partly tracked", [a, b], wrt: [0]) { xs in Tensor.concat([xs[0], c, xs[0] * xs[0]], axis: -1) }
        check("stack", [a, rng.normal([2, 3])]) { Tensor.stack($0, axis: 1) }
        check("stack last", [a, rng.normal([2, 3])]) { Tensor.stack($0, axis: -1).sin() }
        let x = rng.normal([4, 5])
        check("split sizes, one piece unused", [x]) { xs in
            let p = xs[0].split(sizes: [2, 1, 2], axis: 1)
            return Tensor.concat([p[2].sin(), p[0] * 3], axis: 1)
        }
        check("split count", [x]) { xs in
            let p = xs[0].split(count: 2, axis: 0)
            return p[0] * p[1]
        }
        check("split size", [x]) { xs in xs[0].split(size: 2, axis: 1)[2].exp() }
        check("chunked", [x]) { xs in
            let p = xs[0].chunked(3, axis: 1)
            return p[0] - p[1] + p[2].sum()
        }
    }

    // MARK: - Conventions at non-differentiable points (exact values)

    @Test func kinkConventions() {
        func g(_ x: Tensor, _ f: (Tensor) -> Tensor) -> [Float] {
            let v = x.requiringGrad()
            return grad(of: f(v).sum(), wrt: v).scalars
        }
        #expect(g(Tensor([-1, 0, 2])) { $0.relu() } == [0, 0, 1])
        #expect(g(Tensor([-1, 0, 2])) { $0.abs() } == [-1, 0, 1])
        #expect(g(Tensor([-1, 0, 2])) { $0.leakyRelu(0.1) } == [0.1, 0.1, 1])
        // Clamp passes the gradient at (and between) its bounds.
        #expect(g(Tensor([-0.5, 0, 0.5, 1, 1.5])) { $0.clamp(min: 0, max: 1) } == [0, 1, 1, 1, 0])
        // Ties split the gradient equally.
        let ties = Tensor([[1, 3, 3], [2, 2, 2]])
        let third: Float = 1 / 3
        #expect(g(ties) { $0.max(axis: 1) } == [0, 0.5, 0.5, third, third, third])
        #expect(g(ties) { $0.min(axis: 1) } == [1, 0, 0, third, third, third])
        #expect(g(Tensor([1, 3, 3])) { $0.max() } == [0, 0.5, 0.5])
        #expect(g(ties) { $0.max(axes: nil) } == [0, 0.5, 0.5, 0, 0, 0])
        let a = Tensor([1, 2, 3]).requiringGrad(), b = Tensor([1, 0, 5]).requiringGrad()
        let gmax = grad(of: Tensor.maximum(a, b).sum(), wrt: [a, b])
        #expect(gmax[0].scalars == [0.5, 1, 0] && gmax[1].scalars == [0.5, 0, 1])
        let gmin = grad(of: Tensor.minimum(a, b).sum(), wrt: [a, b])
        #expect(gmin[0].scalars == [0.5, 0, 1] && gmin[1].scalars == [0.5, 1, 0])
        // A tie against a broadcast scalar: the scalar collects half of each tied element.
        let s = Tensor(2).requiringGrad(), v = Tensor([2, 2, 1]).requiringGrad()
        let gs = grad(of: Tensor.maximum(v, s).sum(), wrt: [v, s])
        #expect(gs[0].scalars == [0.5, 0.5, 0] && gs[1].item == 2)
        // Norm at the origin: zero subgradient, not NaN.
        #expect(g(Tensor([0, 0])) { $0.norm() } == [0, 0])
        #expect(g(Tensor([3, 4])) { $0.norm() } == [0.6, 0.8])
    }

    // MARK: - Accumulation through shared subgraphs

    @Test func reusedTensorAccumulates() {
        let x = Tensor([-1.5, 0.5, 2]).requiringGrad()
        // d/dx (x*x + x) = 2x + 1.
        #expect(grad(of: (x * x + x).sum(), wrt: x).scalars == [-2, 2, 5])
        // The same tensor broadcast against itself: d/dx_k sum_ij x_i x_j = 2 sum(x).
        #expect(grad(of: (x.unsqueezed(1) * x).sum(), wrt: x).scalars == [2, 2, 2])
        // Used as both inputs of a matmul: x^T x.
        #expect(grad(of: x.matmul(x), wrt: x).scalars == [-3, 1, 4])
        check("x * x + x", [Tensor([-1.5, 0.5, 2])]) { $0[0] * $0[0] + $0[0] }
    }

    @Test func diamondGraphAccumulates() {
        // y = exp(x) feeds two branches that meet again: z = y * sin(y) + y.
        let x0 = Tensor([-0.7, 0.2, 0.9])
        let x = x0.requiringGrad()
        let y = x.exp()
        let z = (y * y.sin() + y).sum()
        let expected = x0.scalars.map { v -> Float in
            let e = Foundation.exp(v)
            return (Foundation.sin(e) + e * Foundation.cos(e) + 1) * e
        }
        let gx = grad(of: z, wrt: x)
        for (a, b) in zip(gx.scalars, expected) { #expect(abs(a - b) <= 1e-5 * max(1, abs(b))) }
        check("diamond", [x0]) { xs in let y = xs[0].exp(); return y * y.sin() + y }
        // An intermediate reused in several later ops, including a reduction of itself.
        check("reuse through reductions", [OpRef.awayFromZero([3, 4], seed: 29)]) { xs in
            let h = xs[0].tanh()
            return h.softmax(axis: 1) * h - h.mean(axes: [0], keepDims: true) + h.narrow(axis: 1, start: 1, length: 1)
        }
    }
}
