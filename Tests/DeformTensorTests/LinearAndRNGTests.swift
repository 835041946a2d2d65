import Testing
import Foundation
@testable import DeformTensor

@Suite struct LinearAndRNGTests {
    @Test func linearMatchesMatmulAndBias() {
        var rng = RandomGenerator(seed: 4)
        let x = rng.normal([2, 3, 5]), w = rng.normal([4, 5]), b = rng.normal([4])
        let y = linear(x, weight: w, bias: b)
        let ref = x.matmul(w.T) + b
        #expect(y.shape == [2, 3, 4])
        #expect(y.allClose(ref, rtol: 1e-5, atol: 1e-5))
        #expect(linear(x, weight: w).allClose(x.matmul(w.T), rtol: 1e-5, atol: 1e-5))
    }

    @Test func linearGradients() {
        var rng = RandomGenerator(seed: 5)
        let x = rng.normal([3, 5]), w = rng.normal([4, 5]), b = rng.normal([4])
        let r = GradientCheck.check([x, w, b]) { v in linear(v[0], weight: v[1], bias: v[2]) }
        #expect(r.passed, "\(r)")
        let r3 = GradientCheck.check([rng.normal([2, 2, 3]), rng.normal([2, 3])]) { v in linear(v[0], weight: v[1]) }
        #expect(r3.passed, "\(r3)")
    }

    /// Products large enough to be split across cores (rows or columns per core) match a plain
    /// loop, for every transpose combination and both split directions.
    @Test func largeSplitGemmMatchesReference() {
        var rng = RandomGenerator(seed: 6)
        for (m, n) in [(600, 300), (300, 600)] {
            let k = 120
            let a = rng.normal([m, k]), b = rng.normal([k, n])
            let pa = a.scalars, pb = b.scalars
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let lhs = ta ? a.T : a, rhs = tb ? b.T : b
                let c = Tensor.gemm(lhs, rhs, transA: ta, transB: tb)
                #expect(c.shape == [m, n])
                let pc = c.scalars
                var worst: Float = 0
                for i in stride(from: 0, to: m, by: 7) {
                    for j in stride(from: 0, to: n, by: 5) {
                        var s: Float = 0
                        for q in 0..<k { s += pa[i * k + q] * pb[q * n + j] }
                        worst = max(worst, abs(pc[i * n + j] - s))
                    }
                }
                #expect(worst < 1e-3, "m \(m) n \(n) transA \(ta) transB \(tb): max error \(worst)")
            }
        }
    }

    /// The parallel path (large draws split over cores) gives the same values as the sequential
    /// path (small draws), so results do not depend on the thread count.
    @Test func rngIndependentOfChunking() {
        var big = RandomGenerator(seed: 11), small = RandomGenerator(seed: 11)
        let u = big.uniform([400_000]).scalars
        #expect(Array(u.prefix(1000)) == small.uniform([1000]).scalars)
        var bigN = RandomGenerator(seed: 12), smallN = RandomGenerator(seed: 12)
        let n = bigN.normal([200_000]).scalars
        #expect(Array(n.prefix(500)) == smallN.normal([500]).scalars)
        // Consecutive draws continue the stream rather than repeating it.
        var r = RandomGenerator(seed: 13)
        #expect(r.uniform([8]).scalars != r.uniform([8]).scalars)
        // Different seeds differ.
        var s1 = RandomGenerator(seed: 1), s2 = RandomGenerator(seed: 2)
        #expect(s1.uniform([8]).scalars != s2.uniform([8]).scalars)
    }

    @Test func uniformAndNormalStatistics() {
        var rng = RandomGenerator(seed: 21)
        let u = rng.uniform([200_000], low: -2, high: 3)
        #expect(u.min().item >= -2 && u.max().item < 3)
        #expect(abs(u.mean().item - 0.5) < 0.02)
        #expect(abs(u.variance().item - 25.0 / 12) < 0.03)
        let n = rng.normal([200_000], mean: 1, std: 2)
        #expect(abs(n.mean().item - 1) < 0.02)
        #expect(abs(n.variance().item.squareRoot() - 2) < 0.02)
    }
}

@Suite struct ConcurrentBLASTests {
    /// Products from several threads at once — some outside any region (OpenBLAS may thread them),
    /// some inside single-threaded regions that change OpenBLAS's thread count — all finish and
    /// are right. (The hang that `Threads.blasCall` prevents, two threads spinning in OpenBLAS's
    /// thread server, was seen once in a full parallel test run; this test does not provoke it
    /// reliably, it checks that the gate keeps concurrent products correct.)
    @Test func concurrentProductsAndRegionsFinishCorrectly() {
        var rng = RandomGenerator(seed: 3)
        let a = rng.normal([160, 192]), b = rng.normal([192, 160])
        let expected = a.matmul(b).scalars
        let results = ResultBox(count: 8)
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            var worst: Float = 0
            for i in 0..<150 {
                let c: Tensor
                if (t + i) % 3 == 0 {
                    c = Threads.withSingleThreadedBLAS { a.matmul(b) }
                } else {
                    c = a.matmul(b)
                }
                for (x, y) in zip(c.scalars, expected) { worst = max(worst, abs(x - y)) }
            }
            results.set(t, worst)
        }
        for t in 0..<8 { #expect(results.get(t) < 1e-4, "thread \(t): \(results.get(t))") }
        #expect(Threads.blasThreads >= 1)
    }
}

private final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Float]
    init(count: Int) { values = [Float](repeating: .infinity, count: count) }
    func set(_ i: Int, _ v: Float) { lock.lock(); values[i] = v; lock.unlock() }
    func get(_ i: Int) -> Float { lock.lock(); defer { lock.unlock() }; return values[i] }
}
