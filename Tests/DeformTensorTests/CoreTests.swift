import Testing
@testable import DeformTensor

@Suite struct CoreTests {
    @Test func broadcastingAdd() {
        let a = Tensor([[1, 2, 3], [4, 5, 6]])
        let b = Tensor([10, 20, 30])
        #expect((a + b).scalars == [11, 22, 33, 14, 25, 36])
        let c = Tensor([1, 2], shape: [2, 1])
        #expect((a * c).scalars == [1, 2, 3, 8, 10, 12])
        let d = Tensor([1, 2, 3], shape: [3, 1, 1]) + Tensor([1, 2], shape: [1, 2])
        #expect(d.shape == [3, 1, 2])
        #expect(d.scalars == [2, 3, 3, 4, 4, 5])
    }

    @Test func broadcastErrorNamesBothShapes() {
        #expect(throws: TensorError.self) { try broadcastShapes([2, 3], [4], op: "add") }
        do { _ = try broadcastShapes([2, 3], [4], op: "add") } catch {
            #expect("\(error)".contains("[2, 3]") && "\(error)".contains("[4]"))
        }
    }

    @Test func copyOnWrite() {
        let a = Tensor([1, 2, 3])
        var b = a
        #expect(a.storageIdentifier == b.storageIdentifier)
        b[0] = 9
        #expect(a.scalars == [1, 2, 3])
        #expect(b.scalars == [9, 2, 3])
    }

    @Test func reductions() {
        let x = Tensor(Array(0..<24).map(Float.init), shape: [2, 3, 4])
        #expect(x.sum().item == 276)
        #expect(x.sum(axis: 1).shape == [2, 4])
        #expect(x.sum(axis: 1).scalars == [12, 15, 18, 21, 48, 51, 54, 57])
        #expect(x.sum(axes: [0, 2]).scalars == [60, 92, 124])
        #expect(x.max(axis: -1).scalars == [3, 7, 11, 15, 19, 23])
        #expect(x.argmax(axis: 1).scalars == [2, 2, 2, 2, 2, 2, 2, 2])
        #expect(x.mean(axes: [0, 1, 2]).item == 11.5)
    }

    @Test func permuteMatchesReference() {
        let x = Tensor(Array(0..<24).map(Float.init), shape: [2, 3, 4])
        let y = x.permuted(2, 0, 1)
        #expect(y.shape == [4, 2, 3])
        for i in 0..<4 { for j in 0..<2 { for k in 0..<3 { #expect(y[i, j, k] == x[j, k, i]) } } }
        let t = x.transposed()
        for i in 0..<2 { for j in 0..<4 { for k in 0..<3 { #expect(t[i, j, k] == x[i, k, j]) } } }
    }

    @Test func matmulMatchesReference() {
        var rng = RandomGenerator(seed: 1)
        let a = rng.normal([2, 3, 5, 4]), b = rng.normal([3, 4, 6])
        let c = a.matmul(b)
        #expect(c.shape == [2, 3, 5, 6])
        for bi in 0..<2 { for h in 0..<3 { for i in 0..<5 { for j in 0..<6 {
            var s: Float = 0
            for k in 0..<4 { s += a[bi, h, i, k] * b[h, k, j] }
            #expect(abs(c[bi, h, i, j] - s) < 1e-4)
        } } } }
    }

    @Test func gradientsOfComposite() {
        var rng = RandomGenerator(seed: 2)
        let a = rng.normal([3, 4]), b = rng.normal([4, 2]), c = rng.normal([2])
        let r = GradientCheck.check([a, b, c]) { x in ((x[0].matmul(x[1]) + x[2]).tanh() * x[2]).sigmoid() }
        #expect(r.passed, "\(r)")
    }

    @Test func brokenVJPIsCaught() {
        let x = Tensor([0.3, -0.2, 0.5])
        let r = GradientCheck.check([x]) { xs in
            customOp("badSquare", inputs: xs, forward: { [$0[0] * $0[0]] }, backward: { i, _, g in [3 * i[0] * g[0]] })[0]
        }
        #expect(!r.passed)
        let ok = GradientCheck.check([x]) { xs in
            customOp("square", inputs: xs, forward: { [$0[0] * $0[0]] }, backward: { i, _, g in [2 * i[0] * g[0]] })[0]
        }
        #expect(ok.passed, "\(ok)")
    }

    @Test func rngDeterministic() {
        var r1 = RandomGenerator(seed: 7), r2 = RandomGenerator(seed: 7)
        #expect(r1.normal([1000]).scalars == r2.normal([1000]).scalars)
        let u = r1.uniform([300_000])
        let saved = Threads.coreCount
        _ = saved
        #expect(u.scalars.allSatisfy { $0 >= 0 && $0 < 1 })
        let n = RandomGenerator(seed: 3).normalSample(100_000)
        #expect(abs(n.mean().item) < 0.02)
        #expect(abs(n.variance().item - 1) < 0.02)
    }
}

extension RandomGenerator {
    func normalSample(_ n: Int) -> Tensor { var r = self; return r.normal([n]) }
}
