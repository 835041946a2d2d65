import Foundation
import Testing
@testable import DeformTensor

/// Forward behaviour of the indexing and join ops against loop references, exact gradient values
/// for repeated indices, and the failure messages for bad indices and shapes.
@Suite struct IndexingTests {
    static func sample(_ shape: [Int], seed: UInt64 = 1) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        return rng.normal(shape)
    }

    /// Reference for narrow / indexSelect: output index `i` reads input index `i` with axis
    /// entry replaced by `pick(i[axis])`.
    static func pickAlong(_ x: Tensor, axis: Int, count: Int, _ pick: (Int) -> Int) -> (shape: [Int], values: [Double]) {
        var shape = x.shape
        shape[axis] = count
        let values = OpRef.indices(shape).map { i -> Double in
            var j = i
            j[axis] = pick(i[axis])
            return Double(OpRef.at(x, j))
        }
        return (shape, values)
    }

    @Test func narrowAndSliceMatchReference() {
        let x = Self.sample([3, 4, 5])
        for axis in 0..<3 {
            let n = x.shape[axis]
            for start in 0..<n {
                for length in 0...(n - start) {
                    expectClose(x.narrow(axis: axis, start: start, length: length),
                                Self.pickAlong(x, axis: axis, count: length) { start + $0 }, tol: 0, "narrow \(axis) \(start) \(length)")
                }
            }
        }
        // Negative axis and start count from the end, as in PyTorch.
        #expect(x.narrow(axis: -1, start: -2, length: 2).scalars == x.narrow(axis: 2, start: 3, length: 2).scalars)
        #expect(x.slice(axis: 1, 1..<3).scalars == x.narrow(axis: 1, start: 1, length: 2).scalars)
        #expect(x.slice(axis: 0, 1...2).scalars == x.narrow(axis: 0, start: 1, length: 2).scalars)
        #expect(x.narrow(axis: 0, start: 0, length: 3).storageIdentifier == x.storageIdentifier)
    }

    @Test func indexSelectMatchesReferenceWithRepeats() {
        let x = Self.sample([3, 4, 5], seed: 2)
        let picks: [[Int]] = [[0], [2, 0, 2], [1, 1, 1, 1, 1], []]
        for axis in 0..<3 {
            for p in picks where p.allSatisfy({ $0 < x.shape[axis] }) {
                let ref = Self.pickAlong(x, axis: axis, count: p.count) { p[$0] }
                expectClose(x.indexSelect(axis: axis, indices: p), ref, tol: 0, "indexSelect \(axis) \(p)")
                expectClose(x.indexSelect(axis: axis - 3, indices: Tensor(p.map(Float.init))), ref, tol: 0, "indexSelect tensor \(axis) \(p)")
            }
        }
        // Repeated rows receive the sum of their gradients.
        let v = Tensor([[1, 2], [3, 4], [5, 6]]).requiringGrad()
        let g = grad(of: v.indexSelect(axis: 0, indices: [2, 0, 2, 2]).sum(), wrt: v)
        #expect(g.scalars == [1, 1, 0, 0, 3, 3])
    }

    @Test func gatherMatchesReferenceAndPyTorchExample() {
        // torch.gather(torch.tensor([[1, 2], [3, 4]]), 1, torch.tensor([[0, 0], [1, 0]])) == [[1, 1], [4, 3]]
        let t = Tensor([[1, 2], [3, 4]])
        #expect(t.gather(axis: 1, index: Tensor([[0, 0], [1, 0]])).scalars == [1, 1, 4, 3])
        #expect(t.gather(axis: 0, index: Tensor([[1, 0]])).scalars == [3, 2])
        #expect(Tensor(5).gather(axis: 0, index: Tensor(0)).item == 5)
        #expect(t.gather(axis: 1, index: Tensor.zeros([2, 0])).shape == [2, 0])

        let x = Self.sample([3, 4, 5], seed: 3)
        var rng = RandomGenerator(seed: 4)
        for axis in [0, 1, 2, -1] {
            let a = (axis + 3) % 3
            // The index may be smaller than the input on every axis and longer along `axis`.
            for ishape in [[3, 4, 5], [2, 3, 4], [1, 1, 1], [2, 4, 3]].map({ s -> [Int] in var s = s; s[a] = 6; return s }) {
                let n = x.shape[a]
                let index = rng.uniform(ishape).mapScalars { Float(Int($0 * Float(n))) }
                let ref = OpRef.indices(ishape).map { i -> Double in
                    var j = i
                    j[a] = Int(OpRef.at(index, i))
                    return Double(OpRef.at(x, j))
                }
                expectClose(x.gather(axis: axis, index: index), (ishape, ref), tol: 0, "gather axis \(axis) index \(ishape)")
            }
        }
    }

    @Test func scatterAddMatchesReference() {
        // PyTorch's scatter_add_ example: ones(2, 5) along 0 into zeros(3, 5).
        let src = Tensor.ones([2, 5])
        let index = Tensor([[0, 1, 2, 0, 0], [2, 0, 0, 1, 2]])
        let out = Tensor.zeros([3, 5]).scatterAdd(axis: 0, index: index, source: src)
        #expect(out.scalars == [1, 1, 1, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1])

        var rng = RandomGenerator(seed: 5)
        let base = rng.normal([3, 4, 5])
        for a in 0..<3 {
            for ishape in [[3, 4, 5], [2, 3, 4], [1, 2, 1]].map({ s -> [Int] in var s = s; s[a] = 7; return s }) {
                let sshape = ishape.map { $0 + 1 }   // source larger than the index: extra entries unused
                let source = rng.normal(sshape)
                let n = base.shape[a]
                let index = rng.uniform(ishape).mapScalars { Float(Int($0 * Float(n))) }
                var ref = base.scalars.map(Double.init)
                for i in OpRef.indices(ishape) {
                    var j = i
                    j[a] = Int(OpRef.at(index, i))
                    ref[OpRef.flat(j, base.shape)] += Double(OpRef.at(source, i))
                }
                expectClose(base.scatterAdd(axis: a - 3, index: index, source: source), (base.shape, ref), tol: 1e-6, "scatterAdd axis \(a) index \(ishape)")
            }
        }
        // Gradients: all of g to self; gather(g) to the covered part of source, zero elsewhere.
        let s = Tensor([[1, 2, 3], [4, 5, 6]]).requiringGrad(), b = Tensor.zeros([2, 2]).requiringGrad()
        let y = b.scatterAdd(axis: 1, index: Tensor([[1, 0], [1, 1]]), source: s)
        #expect(y.scalars == [2, 1, 0, 9])
        let seed = Tensor([[10, 20], [30, 40]])
        let gs = grad(of: y, wrt: [b, s], seed: seed)
        #expect(gs[0].scalars == [10, 20, 30, 40])
        #expect(gs[1].scalars == [20, 10, 0, 40, 40, 0])
    }

    @Test func maskedSelectBroadcasts() {
        let x = Tensor([[1, 2, 3], [4, 5, 6]])
        #expect(x.maskedSelect(Tensor([[1, 0, 1], [0, 0, 1]])).scalars == [1, 3, 6])
        #expect(x.maskedSelect(Tensor([0, 1, 1])).scalars == [2, 3, 5, 6])
        #expect(x.maskedSelect(x .> Tensor(3.5)).scalars == [4, 5, 6])
        #expect(x.maskedSelect(Tensor.zeros([2, 3])).shape == [0])
        // Nonzero means keep: NaN is nonzero, -0 is zero.
        #expect(x.maskedSelect(Tensor([[-0.0, .nan, 1], [0, 0, -2]])).scalars == [2, 3, 6])
        let none = x.requiringGrad()
        #expect(grad(of: none.maskedSelect(Tensor.zeros([3])).sum(), wrt: none).scalars == [0, 0, 0, 0, 0, 0])
        // The input broadcasts too; its gradient sums over the broadcast copies.
        let c = Tensor([10, 20], shape: [2, 1]).requiringGrad()
        let m = Tensor([[1, 1, 0], [0, 1, 1]])
        let y = c.maskedSelect(m)
        #expect(y.scalars == [10, 10, 20, 20])
        #expect(grad(of: y, wrt: [c], seed: Tensor([1, 2, 3, 4]))[0].scalars == [3, 7])
    }

    @Test func concatStackMatchReference() {
        var rng = RandomGenerator(seed: 6)
        for axis in [0, 1, 2, -1, -3] {
            let a = (axis + 3) % 3
            let parts = [1, 3, 0, 2].map { s -> Tensor in var shape = [2, 3, 4]; shape[a] = s; return rng.normal(shape) }
            let y = Tensor.concat(parts, axis: axis)
            var shape = [2, 3, 4]
            shape[a] = 6
            let starts = [0, 1, 4, 4]
            let ref = OpRef.indices(shape).map { i -> Double in
                let p = [0, 1, 2, 3].last { starts[$0] <= i[a] && parts[$0].shape[a] > 0 }!
                var j = i
                j[a] -= starts[p]
                return Double(OpRef.at(parts[p], j))
            }
            expectClose(y, (shape, ref), tol: 0, "concat axis \(axis)")
            #expect(concat(parts, axis: axis).scalars == y.scalars)
        }
        let xs = (0..<3).map { _ in rng.normal([2, 4]) }
        for axis in [0, 1, 2, -1, -3] {
            let a = (axis + 3) % 3
            let y = Tensor.stack(xs, axis: axis)
            var shape = [2, 4]
            shape.insert(3, at: a)
            let ref = OpRef.indices(shape).map { i -> Double in
                var j = i
                let k = j.remove(at: a)
                return Double(OpRef.at(xs[k], j))
            }
            expectClose(y, (shape, ref), tol: 0, "stack axis \(axis)")
        }
        #expect(stack([Tensor(1), Tensor(2)]).scalars == [1, 2])
        #expect(Tensor.concat([xs[0]]).storageIdentifier == xs[0].storageIdentifier)
    }

    @Test func splitAndChunkInvertConcat() {
        let x = Self.sample([6, 5], seed: 7)
        let parts = x.split(sizes: [1, 0, 3, 1], axis: 1)
        #expect(parts.map { $0.shape } == [[6, 1], [6, 0], [6, 3], [6, 1]])
        #expect(Tensor.concat(parts, axis: 1).scalars == x.scalars)
        #expect(parts[2].scalars == x.narrow(axis: 1, start: 1, length: 3).scalars)
        #expect(x.split(size: 4, axis: 0).map { $0.shape[0] } == [4, 2])
        #expect(x.split(size: 2, axis: -1).map { $0.shape[1] } == [2, 2, 1])
        #expect(x.split(count: 3).map { $0.shape } == [[2, 5], [2, 5], [2, 5]])
        #expect(Tensor.concat(x.split(count: 3), axis: 0).scalars == x.scalars)
        // torch.chunk: ceil(size / chunks) per piece, possibly fewer pieces.
        #expect(x.chunked(4).map { $0.shape[0] } == [2, 2, 2])
        #expect(x.chunked(2, axis: 1).map { $0.shape[1] } == [3, 2])
        #expect(x.chunked(10, axis: 1).map { $0.shape[1] } == [1, 1, 1, 1, 1])
        // Gradients of unused pieces are zero; used pieces land in place.
        let v = x.requiringGrad()
        let ps = v.split(sizes: [2, 3], axis: 1)
        let g = grad(of: (ps[1] * 2).sum(), wrt: v)
        #expect(g.scalars == (0..<30).map { $0 % 5 >= 2 ? 2 : 0 })
    }

    // MARK: - Failure messages (run in a child process)

    static func stderrText(_ r: ExitTest.Result?) -> String {
        String(decoding: r?.standardErrorContent ?? [], as: UTF8.self)
    }

    @Test func indexSelectOutOfRangeNamesIndexAndSize() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([4, 3]).indexSelect(axis: 0, indices: [1, 5])
        }
        let err = Self.stderrText(r)
        #expect(err.contains("index 5 is out of range for dimension 0 of size 4"), "\(err)")
    }

    @Test func gatherOutOfRangeAndNonIntegerIndexFail() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([2, 3]).gather(axis: 1, index: Tensor([[0, 3]]))
        }
        let err = Self.stderrText(r)
        #expect(err.contains("index 3 is out of range for dimension 1 of size 3"), "\(err)")
        let r2 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([2, 3]).gather(axis: 1, index: Tensor([[0.5]]))
        }
        let err2 = Self.stderrText(r2)
        #expect(err2.contains("index 0.5 is not an integer"), "\(err2)")
        let r3 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([2, 3]).scatterAdd(axis: 0, index: Tensor([[-1]]), source: Tensor.ones([1, 1]))
        }
        let err3 = Self.stderrText(r3)
        #expect(err3.contains("index -1 is out of range for dimension 0 of size 2"), "\(err3)")
    }

    @Test func shapeErrorsNameExpectedAndFound() async {
        let r = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.concat([Tensor.zeros([2, 3]), Tensor.zeros([2, 4])], axis: 0)
        }
        let err = Self.stderrText(r)
        #expect(err.contains("[*, 3]") && err.contains("[2, 4]"), "\(err)")
        let r2 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([2, 3]).narrow(axis: 1, start: 2, length: 2)
        }
        let err2 = Self.stderrText(r2)
        #expect(err2.contains("exceeds dimension 1 of size 3"), "\(err2)")
        let r3 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([2, 3]).gather(axis: 0, index: Tensor([0, 1]))
        }
        let e3 = Self.stderrText(r3)
        #expect(e3.contains("rank 2") && e3.contains("[2]"), "\(e3)")
        let r4 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([5]).split(sizes: [2, 2])
        }
        let err4 = Self.stderrText(r4)
        #expect(err4.contains("adding up to 5"), "\(err4)")
    }
}
