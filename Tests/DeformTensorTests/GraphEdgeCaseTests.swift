import Testing
import Foundation
@testable import DeformTensor

/// Gradients where broadcasting, repeated inputs or empty tensors meet the tape; linear algebra on
/// empty batches; and graphs that must be freed once a backward pass is done.
@Suite struct GraphEdgeCaseTests {
    func gc(_ name: String, _ xs: [Tensor], _ f: @escaping ([Tensor]) -> Tensor) {
        let r = GradientCheck.check(xs, step: 1e-2, atol: 3e-3, rtol: 3e-2, f)
        #expect(r.passed, "\(name): \(r)")
    }

    /// 0-D operands, size-1 dimensions on either side, and leading dimensions added by broadcasting.
    @Test func binaryOpGradientsUnderBroadcasting() {
        var rng = RandomGenerator(seed: 3)
        let shapes: [([Int], [Int])] = [([], [2, 3]), ([2, 3], []), ([1, 3], [2, 1]), ([2, 1, 3], [3]), ([1], [2, 3]), ([2, 3], [1, 1, 1])]
        for (sa, sb) in shapes {
            let a = rng.uniform(sa, low: 0.5, high: 1.5), b = rng.uniform(sb, low: 0.5, high: 1.5)
            gc("add \(sa) \(sb)", [a, b]) { $0[0] + $0[1] }
            gc("sub \(sa) \(sb)", [a, b]) { $0[0] - $0[1] }
            gc("mul \(sa) \(sb)", [a, b]) { $0[0] * $0[1] }
            gc("div \(sa) \(sb)", [a, b]) { $0[0] / $0[1] }
            gc("pow \(sa) \(sb)", [a, b]) { Tensor.pow($0[0], $0[1]) }
            gc("maximum \(sa) \(sb)", [a, b]) { Tensor.maximum($0[0], $0[1]) }
            gc("where \(sa) \(sb)", [a, b]) { Tensor.where($0[0] .> 1, $0[0], $0[1]) }
            gc("matmulish \(sa) \(sb)", [a, b]) { ($0[0] * $0[1]).sum(axes: nil) }
        }
    }

    /// The same tensor entering an op more than once gets the sum of its cotangents.
    @Test func repeatedInputsAccumulate() {
        var rng = RandomGenerator(seed: 4)
        let x = rng.normal([3, 4])
        gc("x*x", [x]) { $0[0] * $0[0] }
        gc("concat xx", [x]) { Tensor.concat([$0[0], $0[0]], axis: 1) }
        gc("stack xx", [x]) { Tensor.stack([$0[0], $0[0]], axis: 0) }
        gc("max(x,x)", [x]) { Tensor.maximum($0[0], $0[0]) }
        gc("x@xT", [x]) { $0[0].matmul($0[0].T) }
        gc("linear xx", [Tensor.normal([4, 4], using: &rng)]) { linear($0[0], weight: $0[0], bias: $0[0].sum(axis: 1)) }
        gc("scatterAdd self source", [x]) { $0[0].scatterAdd(axis: 1, index: Tensor([[0, 1, 1, 3], [2, 2, 0, 1], [3, 3, 3, 3]]), source: $0[0]) }
    }

    /// Ops on tensors with a zero-sized dimension give empty (or zero) results and gradients.
    @Test func emptyTensorsFlowThroughForwardAndBackward() {
        let e = Tensor.zeros([0, 3]).requiringGrad()
        let s = e.sum()
        #expect(s.item == 0)
        #expect(grad(of: s, wrt: e).shape == [0, 3])
        let m = Tensor.zeros([2, 0]).requiringGrad()
        let w = Tensor.ones([0, 4]).requiringGrad()
        let y = m.matmul(w)
        #expect(y.scalars == [Float](repeating: 0, count: 8))
        let gs = grad(of: y.sum(), wrt: [m, w])
        #expect(gs[0].shape == [2, 0] && gs[1].shape == [0, 4])
        let c = Tensor.concat([Tensor.zeros([0, 2]).requiringGrad(), Tensor.ones([2, 2]).requiringGrad()], axis: 0)
        #expect(c.shape == [2, 2])
        let x = Tensor.ones([3, 2]).requiringGrad()
        let sel = x.indexSelect(axis: 0, indices: [Int]())
        #expect(sel.shape == [0, 2])
        #expect(grad(of: sel.sum(), wrt: x).scalars == [0, 0, 0, 0, 0, 0])
        let parts = x.split(sizes: [0, 3, 0])
        #expect(parts.map { $0.shape } == [[0, 2], [3, 2], [0, 2]])
        #expect(grad(of: parts[1].sum(), wrt: x).scalars == [1, 1, 1, 1, 1, 1])
        let n0 = Tensor.zeros([0, 2, 5, 5]).requiringGrad()
        let wc = Tensor.ones([3, 2, 3, 3]).requiringGrad()
        let yc = conv2d(n0, weight: wc, padding: (1, 1))
        #expect(yc.shape == [0, 3, 5, 5])
        let gcv = grad(of: yc.sum(), wrt: [n0, wc])
        #expect(gcv[1].scalars.allSatisfy { $0 == 0 })
        let xt = Tensor.zeros([0, 3, 4, 4]).requiringGrad(), wt = Tensor.ones([3, 2, 3, 3]).requiringGrad()
        let yt = convTranspose2d(xt, weight: wt)
        #expect(yt.shape == [0, 2, 6, 6])
        #expect(grad(of: yt.sum(), wrt: [xt, wt]).map { $0.shape } == [[0, 3, 4, 4], [3, 2, 3, 3]])
        let mp = maxPool2d(n0, kernel: (2, 2))
        #expect(mp.shape == [0, 2, 2, 2])
        #expect(grad(of: mp.sum(), wrt: n0).shape == [0, 2, 5, 5])
        let up = upsampleBilinear2d(n0, size: (7, 7))
        #expect(grad(of: up.sum(), wrt: n0).shape == [0, 2, 5, 5])
        let nr = Tensor.zeros([0]).requiringGrad()
        #expect(grad(of: nr.norm(), wrt: nr).shape == [0])
        let pe = Tensor.zeros([2, 0, 3]).requiringGrad().permuted(2, 0, 1)
        #expect(pe.shape == [3, 2, 0])
        let ex = Tensor(2).requiringGrad()
        #expect(grad(of: ex.expanded(to: [2, 3]).sum(), wrt: ex).item == 6)
        let nw = Tensor.ones([3, 2]).requiringGrad()
        #expect(grad(of: nw.narrow(axis: 0, start: 1, length: 0).sum(), wrt: nw).scalars.allSatisfy { $0 == 0 })
        let ms = Tensor.ones([3]).requiringGrad()
        #expect(grad(of: ms.maskedSelect(Tensor.zeros([3])).sum(), wrt: ms).scalars == [0, 0, 0])
        let gsx = gridSample(Tensor.ones([0, 2, 3, 3]), grid: Tensor.zeros([0, 2, 2, 2]))
        #expect(gsx.shape == [0, 2, 2, 2])
        let grid = Tensor.zeros([1, 2, 2, 2]).requiringGrad()
        let noChannels = gridSample(Tensor.ones([1, 0, 3, 3]), grid: grid)
        #expect(noChannels.shape == [1, 0, 2, 2])
        #expect(grad(of: noChannels.sum(), wrt: grid).scalars.allSatisfy { $0 == 0 })
    }
}

@Suite struct LinalgEdgeCaseTests {
    @Test func emptyBatchesAndZeroSizedMatrices() throws {
        let e = Tensor.zeros([0, 3, 3]).requiringGrad()
        let (u, s, v) = try Linalg.svd(e)
        #expect(u.shape == [0, 3, 3] && s.shape == [0, 3] && v.shape == [0, 3, 3])
        #expect(grad(of: s.sum(), wrt: e).shape == [0, 3, 3])
        let (u2, s2, v2) = try Linalg.svd3x3(e)
        #expect(u2.shape == [0, 3, 3] && s2.shape == [0, 3] && v2.shape == [0, 3, 3])
        #expect(grad(of: s2.sum() + u2.sum(), wrt: e).shape == [0, 3, 3])
        #expect(grad(of: try Linalg.projectToSO3(e).sum(), wrt: e).shape == [0, 3, 3])
        let d = try Linalg.det(e)
        #expect(d.shape == [0])
        #expect(grad(of: d.sum(), wrt: e).shape == [0, 3, 3])
        let d0 = try Linalg.det(Tensor.zeros([2, 0, 0]).requiringGrad())
        #expect(d0.scalars == [1, 1])
        let i0 = try Linalg.inverse(Tensor.zeros([0, 0]).requiringGrad())
        #expect(i0.shape == [0, 0])
        let p = try Linalg.pinv(Tensor.zeros([0, 3]).requiringGrad())
        #expect(p.shape == [3, 0])
        let (w, vv) = try Linalg.eigh(Tensor.zeros([0, 2, 2]).requiringGrad())
        #expect(w.shape == [0, 2] && vv.shape == [0, 2, 2])
        let (uu, ss, vt) = try Linalg.svd(Tensor.zeros([3, 0]).requiringGrad())
        #expect(uu.shape == [3, 0] && ss.shape == [0] && vt.shape == [0, 0])
        let e5 = Tensor.zeros([0, 5, 5]).requiringGrad()
        #expect(grad(of: try Linalg.det(e5).sum(), wrt: e5).shape == [0, 5, 5])
    }

    /// Broadcast batch dimensions and the vector right-hand side of solve, and a batched pinv.
    @Test func solveAndPinvGradientsWithBroadcastBatches() throws {
        var rng = RandomGenerator(seed: 9)
        let a = rng.normal([2, 3, 3]) + Tensor.eye(3) * 3, b = rng.normal([3])
        let r = GradientCheck.check([a, b], step: 1e-2, atol: 3e-3, rtol: 3e-2) { xs in try! Linalg.solve(xs[0], xs[1]) }
        #expect(r.passed, "\(r)")
        let b2 = rng.normal([2, 3])
        let r2 = GradientCheck.check([a, b2], step: 1e-2, atol: 3e-3, rtol: 3e-2) { xs in try! Linalg.solve(xs[0], xs[1]) }
        #expect(r2.passed, "\(r2)")
        let a1 = rng.normal([3, 3]) + Tensor.eye(3) * 3, b3 = rng.normal([4, 3, 2])
        let r3 = GradientCheck.check([a1, b3], step: 1e-2, atol: 3e-3, rtol: 3e-2) { xs in try! Linalg.solve(xs[0], xs[1]) }
        #expect(r3.passed, "\(r3)")
        let x = try Linalg.solve(Tensor.eye(3), Tensor.zeros([3, 0]))
        #expect(x.shape == [3, 0])
        let pv = rng.normal([4, 2, 3])
        let r4 = GradientCheck.check([pv], step: 1e-2, atol: 3e-3, rtol: 3e-2) { xs in try! Linalg.pinv(xs[0]) }
        #expect(r4.passed, "\(r4)")
    }
}

/// Backward closures must not keep their own outputs (or the graph) alive: once the gradient is
/// taken and the tensors go out of scope, every node is freed.
@Suite struct GraphLifetimeTests {
    @Test func graphsAreFreedAfterBackward() throws {
        var rng = RandomGenerator(seed: 1)
        let ops: [(String, (Tensor) throws -> Tensor)] = [
            ("unary", { ($0 * 2).relu().sigmoid().tanh().exp().log().sqrt().abs().gelu().softplus().clamp(min: 0.1) }),
            ("binary", { Tensor.maximum($0, $0 * 0.5) / ($0 + 3) - Tensor.pow($0.abs() + 1, $0) }),
            ("reduce", { $0.softmax(axis: 1).logSumExp(axes: [1]) + $0.max(axes: [1]) + $0.norm(axes: [1]) + $0.variance(axes: [1]) }),
            ("shape", { $0.reshaped([-1]).unsqueezed(0).permuted(1, 0).expanded(to: [16, 2]).sum(axis: 1) }),
            ("index", { $0.narrow(axis: 1, start: 1, length: 2).indexSelect(axis: 0, indices: [0, 0, 3]).gather(axis: 1, index: Tensor([[0, 1], [1, 1], [0, 0]])) }),
            ("join", { Tensor.concat($0.split(sizes: [1, 3], axis: 1).reversed(), axis: 1) }),
            ("matmul", { $0.matmul($0.T) + linear($0, weight: $0, bias: $0.sum(axis: 0)) }),
            ("conv", { conv2d($0.reshaped([1, 1, 4, 4]), weight: $0.reshaped([16, 1, 1, 1]), padding: (1, 1)) }),
            ("convT", { convTranspose2d($0.reshaped([1, 1, 4, 4]), weight: $0.reshaped([1, 16, 1, 1])) }),
            ("pool", { maxPool2d($0.reshaped([1, 1, 4, 4]), kernel: (2, 2)) + avgPool2d($0.reshaped([1, 1, 4, 4]), kernel: (2, 2)) }),
            ("sample", { upsampleBilinear2d($0.reshaped([1, 1, 4, 4]), size: (5, 5)).sum() + gridSample($0.reshaped([1, 1, 4, 4]), grid: $0.reshaped([1, 2, 4, 2]) * 0.1).sum() }),
            ("linalg", { x in let (u, s, v) = try Linalg.svd3x3(x.narrow(axis: 1, start: 0, length: 3).narrow(axis: 0, start: 0, length: 3)); return u.sum() + s.sum() + v.sum() }),
            ("custom", { customOp("sq", inputs: [$0], forward: { [$0[0] * $0[0]] }, backward: { i, _, g in [2 * i[0] * g[0]] })[0] }),
        ]
        for (name, f) in ops {
            weak var node: GradNode?
            weak var leafNode: GradNode?
            do {
                let x = (rng.uniform([4, 4]) + 0.5).requiringGrad()
                leafNode = x.gradRef!.node
                let y = try f(x)
                node = y.gradRef?.node
                _ = grad(of: y.sum(), wrt: x)
            }
            #expect(node == nil && leafNode == nil, "\(name): the graph outlives its tensors")
        }
    }
}
