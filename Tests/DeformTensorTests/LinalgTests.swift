import Foundation
import Testing
@testable import DeformTensor

// Gradient checks of decompositions use gauge-invariant outputs only. Singular vectors are unique
// only up to a joint sign flip of (u_i, v_i) (eigenvectors: of v_i), so a finite-difference step
// may flip a sign and the "derivative" of u itself is meaningless. We check
//   s itself; u diag(w) vᵀ with weights w ≠ s (invariant under joint flips, exercises Ū and V̄ together);
//   u diag(w) uᵀ and v diag(w) vᵀ (sums of rank-one projectors, invariant under any flip; they
//   exercise the Ū and V̄ paths separately, including the (I - uuᵀ) terms of non-square SVDs).
// Distinct weights make every F_ij = 1/(s_j² - s_i²) term matter, so a wrong sign or factor fails.

/// Row-major Double copy of matrix `b` of a batched tensor.
private func matrix(_ t: Tensor, _ b: Int = 0) -> [[Double]] {
    let r = t.shape[t.rank - 2], c = t.shape[t.rank - 1]
    let v = t.scalars
    return (0..<r).map { i in (0..<c).map { j in Double(v[b * r * c + i * c + j]) } }
}

private func mul(_ a: [[Double]], _ b: [[Double]]) -> [[Double]] {
    (0..<a.count).map { i in (0..<b[0].count).map { j in (0..<b.count).reduce(0.0) { $0 + a[i][$1] * b[$1][j] } } }
}

private func transpose(_ a: [[Double]]) -> [[Double]] {
    guard let c = a.first?.count else { return [] }
    return (0..<c).map { j in a.map { $0[j] } }
}

private func maxAbsDiff(_ a: [[Double]], _ b: [[Double]]) -> Double {
    zip(a, b).map { zip($0, $1).map { abs($0 - $1) }.max() ?? 0 }.max() ?? 0
}

private func squaredDistance(_ a: [[Double]], _ b: [[Double]]) -> Double {
    var d = 0.0
    for (ra, rb) in zip(a, b) { for (x, y) in zip(ra, rb) { d += (x - y) * (x - y) } }
    return d
}

/// Rotation exp([ω]×) by Rodrigues' formula.
private func rodrigues(_ w: (Double, Double, Double)) -> [[Double]] {
    let theta = (w.0 * w.0 + w.1 * w.1 + w.2 * w.2).squareRoot()
    let k = [[0, -w.2, w.1], [w.2, 0, -w.0], [-w.1, w.0, 0]].map { $0.map { $0 / theta } }
    let k2 = mul(k, k)
    return (0..<3).map { i in (0..<3).map { j in (i == j ? 1 : 0) + sin(theta) * k[i][j] + (1 - cos(theta)) * k2[i][j] } }
}

private func identity(_ n: Int) -> [[Double]] { (0..<n).map { i in (0..<n).map { $0 == i ? 1 : 0 } } }

/// Slow reference determinant by Laplace expansion along the first row.
private func laplaceDet(_ a: [[Double]]) -> Double {
    if a.isEmpty { return 1 }
    if a.count == 1 { return a[0][0] }
    var d = 0.0
    for j in 0..<a.count {
        let minor = a.dropFirst().map { row in row.enumerated().filter { $0.offset != j }.map { $0.element } }
        d += (j % 2 == 0 ? 1 : -1) * a[0][j] * laplaceDet(minor)
    }
    return d
}

/// `u diag(s) vᵀ` for batched factors, in Double.
private func reconstruct(_ u: Tensor, _ s: Tensor, _ v: Tensor, _ b: Int) -> [[Double]] {
    let k = s.shape.last!
    let sv = Array(s.scalars[(b * k)..<(b * k + k)]).map(Double.init)
    let us = matrix(u, b).map { row in (0..<k).map { row[$0] * sv[$0] } }
    return mul(us, transpose(matrix(v, b)).prefix(k).map { $0 })
}

/// Checks a = u diag(s) vᵀ, orthonormal columns and sorted non-negative s for every matrix.
private func expectValidSVD(_ a: Tensor, _ u: Tensor, _ s: Tensor, _ v: Tensor, tol: Double = 2e-5,
                            sourceLocation: SourceLocation = #_sourceLocation) {
    let batch = s.count / max(s.shape.last!, 1)
    let k = s.shape.last!
    for b in 0..<batch {
        let am = matrix(a, b)
        let scale = max(1, am.flatMap { $0 }.map(abs).max() ?? 0)
        let rec = reconstruct(u, s, v, b)
        #expect(maxAbsDiff(rec, am) < tol * scale, "reconstruction of matrix \(b)", sourceLocation: sourceLocation)
        let um = matrix(u, b), vm = matrix(v, b)
        #expect(maxAbsDiff(mul(transpose(um), um), identity(um[0].count)) < 2e-6, "uᵀu = I for matrix \(b)", sourceLocation: sourceLocation)
        #expect(maxAbsDiff(mul(transpose(vm), vm), identity(vm[0].count)) < 2e-6, "vᵀv = I for matrix \(b)", sourceLocation: sourceLocation)
        let sv = s.scalars[(b * k)..<(b * k + k)]
        #expect(sv.allSatisfy { $0 >= 0 }, "s >= 0: \(Array(sv))", sourceLocation: sourceLocation)
        #expect(zip(sv, sv.dropFirst()).allSatisfy { $0 >= $1 }, "s descending: \(Array(sv))", sourceLocation: sourceLocation)
    }
}

/// Random matrices whose singular values are well separated (relative gaps >= 0.15), for
/// gradient checks of functions that depend on singular vectors. Each matrix is drawn until it
/// qualifies.
private func separatedMatrices(_ shape: [Int], seed: UInt64) throws -> Tensor {
    var rng = RandomGenerator(seed: seed)
    let m = shape[shape.count - 2], n = shape[shape.count - 1], k = min(m, n)
    var values: [Float] = []
    while values.count < shapeCount(shape) {
        let a = rng.normal([m, n])
        let s = try Linalg.svd(a).s.scalars
        let gaps = (0..<k).map { i in (i + 1 < k ? s[i] - s[i + 1] : s[i]) / s[0] }
        if gaps.allSatisfy({ $0 >= 0.15 }) { values += a.scalars }
    }
    return Tensor(values, shape: shape)
}

private extension Tensor {
    /// `self diag(w) otherᵀ` for `self` `[..., m, k]`, `other` `[..., n, k]`.
    func weighted(_ w: [Float], _ other: Tensor) -> Tensor {
        (self * Tensor(w)).matmul(other.transposed())
    }
}

@Suite(.serialized) struct LinalgTests {
    // MARK: svd3x3

    @Test func svd3x3ReconstructsRandomBatch() throws {
        var rng = RandomGenerator(seed: 11)
        let a = rng.normal([4, 50, 3, 3], std: 3)
        let (u, s, v) = try Linalg.svd3x3(a)
        #expect(u.shape == [4, 50, 3, 3] && s.shape == [4, 50, 3] && v.shape == [4, 50, 3, 3])
        expectValidSVD(a.reshaped(200, 3, 3), u.reshaped(200, 3, 3), s.reshaped(200, 3), v.reshaped(200, 3, 3))
        // Singular values agree with LAPACK.
        let ref = try Linalg.svd(a).s
        let diff = zip(s.scalars, ref.scalars).map { abs($0 - $1) }.max()!
        #expect(diff < 1e-5 * 3 * 3, "max |s - s_lapack| = \(diff)")
    }

    @Test func svd3x3MatchesLAPACKVectors() throws {
        let a = try separatedMatrices([20, 3, 3], seed: 5)
        let (u, s, v) = try Linalg.svd3x3(a)
        let r = try Linalg.svd(a)
        #expect(zip(s.scalars, r.s.scalars).allSatisfy { abs($0 - $1) < 1e-5 })
        // Distinct singular values: vectors agree up to sign.
        for b in 0..<20 {
            let u1 = matrix(u, b), u2 = matrix(r.u, b), v1 = matrix(v, b), v2 = matrix(r.v, b)
            for j in 0..<3 {
                let du = abs((0..<3).reduce(0.0) { $0 + u1[$1][j] * u2[$1][j] })
                let dv = abs((0..<3).reduce(0.0) { $0 + v1[$1][j] * v2[$1][j] })
                #expect(abs(du - 1) < 1e-4 && abs(dv - 1) < 1e-4, "matrix \(b) column \(j): |u·u_ref| = \(du), |v·v_ref| = \(dv)")
            }
        }
    }

    @Test func svd3x3RankDeficientAndReflected() throws {
        let cases: [(String, [Float], [Float])] = [
            ("zero", [0, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0]),
            ("rank 1", [1, 2, 2, 2, 4, 4, -1, -2, -2], [Float(3 * 6.0.squareRoot()), 0, 0]),   // (1,2,-1)ᵀ(1,2,2)
            ("rank 2", [1, 0, 1, 0, 2, 0, 1, 0, 1], [2, 2, 0]),
            ("reflection", [3, 0, 0, 0, -2, 0, 0, 0, 1], [3, 2, 1]),
            ("permuted reflection", [0, 1, 0, 1, 0, 0, 0, 0, 5], [5, 1, 1]),
            ("identity", [1, 0, 0, 0, 1, 0, 0, 0, 1], [1, 1, 1]),
            ("negative identity", [-1, 0, 0, 0, -1, 0, 0, 0, -1], [1, 1, 1]),
            ("tiny", [1e-20, 0, 0, 0, 2e-20, 0, 0, 0, 3e-20], [3e-20, 2e-20, 1e-20]),
            ("huge", [1e30, 0, 0, 0, -2e30, 0, 0, 0, 0], [2e30, 1e30, 0]),
        ]
        for (name, values, expected) in cases {
            let a = Tensor(values, shape: [3, 3])
            let (u, s, v) = try Linalg.svd3x3(a)
            let scale = Double(expected[0] == 0 ? 1 : expected[0])
            for i in 0..<3 {
                #expect(abs(Double(s.scalars[i] - expected[i])) <= 1e-6 * scale, "\(name): s = \(s.scalars), expected \(expected)")
            }
            let rec = reconstruct(u.unsqueezed(0), s.unsqueezed(0), v.unsqueezed(0), 0)
            #expect(maxAbsDiff(rec, matrix(a)) <= 1e-6 * scale, "\(name): reconstruction")
            let um = matrix(u), vm = matrix(v)
            #expect(maxAbsDiff(mul(transpose(um), um), identity(3)) < 1e-6, "\(name): u orthogonal")
            #expect(maxAbsDiff(mul(transpose(vm), vm), identity(3)) < 1e-6, "\(name): v orthogonal")
        }
        // A reflection shows up as det(u) det(v) = -1, not as a negative singular value.
        let (u, s, v) = try Linalg.svd3x3(Tensor([3, 0, 0, 0, -2, 0, 0, 0, 1], shape: [3, 3]))
        #expect(s.scalars.allSatisfy { $0 > 0 })
        #expect(abs(laplaceDet(matrix(u)) * laplaceDet(matrix(v)) + 1) < 1e-6)
    }

    @Test func svd3x3IllConditionedBatches() throws {
        // R1 diag(s) R2ᵀ with random rotations and spectra from well spread to exactly degenerate.
        var rng = RandomGenerator(seed: 17)
        let rot = try Linalg.projectToSO3(rng.normal([2, 48, 3, 3]))
        let spectra: [[Float]] = [[1, 1e-3, 1e-6], [1, 1, 0], [1, 0, 0], [1, 1, 1], [2, 1, 1], [3, 3, -1], [1, 1e-4, 1e-4], [5, 2, -1e-5]]
        var values: [Float] = []
        for b in 0..<48 {
            let sp = spectra[b % spectra.count]
            let r1 = matrix(rot[0...0].squeezed([0]), b), r2 = matrix(rot[1...1].squeezed([0]), b)
            let m = mul(r1.map { row in (0..<3).map { row[$0] * Double(sp[$0]) } }, transpose(r2))
            values += m.flatMap { $0 }.map { Float($0) }
        }
        let a = Tensor(values, shape: [48, 3, 3])
        let (u, s, v) = try Linalg.svd3x3(a)
        expectValidSVD(a, u, s, v, tol: 1e-6)
        // Same Float input, LAPACK in Double: small singular values agree to high relative accuracy.
        let ref = try Linalg.svd(a).s.scalars
        for (i, (x, y)) in zip(s.scalars, ref).enumerated() {
            let scale = ref[3 * (i / 3)]
            #expect(abs(x - y) <= 1e-5 * y + 1e-12 * scale, "matrix \(i / 3): s = \(x), LAPACK \(y)")
        }
    }

    @Test func svd3x3Gradients() throws {
        let a = try separatedMatrices([2, 3, 3], seed: 21)
        // A reflected copy exercises det < 0.
        let reflected = a * Tensor([1, 1, -1], shape: [3, 1])
        for x in [a, reflected] {
            let rs = GradientCheck.check([x]) { try! Linalg.svd3x3($0[0]).s }
            #expect(rs.passed, "s: \(rs)")
            let ruv = GradientCheck.check([x]) { xs in let d = try! Linalg.svd3x3(xs[0]); return d.u.weighted([1.5, -0.5, 2], d.v) }
            #expect(ruv.passed, "u diag(w) vᵀ: \(ruv)")
            let ru = GradientCheck.check([x]) { xs in let d = try! Linalg.svd3x3(xs[0]); return d.u.weighted([1, -2, 0.5], d.u) }
            #expect(ru.passed, "u diag(w) uᵀ: \(ru)")
            let rv = GradientCheck.check([x]) { xs in let d = try! Linalg.svd3x3(xs[0]); return d.v.weighted([0.3, 2, -1], d.v) }
            #expect(rv.passed, "v diag(w) vᵀ: \(rv)")
        }
    }

    @Test func svd3x3GradientFiniteAtRepeatedSingularValues() throws {
        // s = (2, 2, 1): singular vectors of the tie are not unique, the gradient must stay finite,
        // and through s alone it is still exact (ds = diag(uᵀ da v)).
        let a = Tensor([2, 0, 0, 0, 2, 0, 0, 0, 1], shape: [3, 3]).requiringGrad()
        let d = try Linalg.svd3x3(a)
        let g = grad(of: (d.u.weighted([1, 2, 3], d.v)).sum() + d.s.sum(), wrt: a)
        #expect(g.scalars.allSatisfy { $0.isFinite }, "\(g)")
        let gs = grad(of: try Linalg.svd3x3(a).s.sum(), wrt: a)
        #expect(maxAbsDiff(matrix(gs), identity(3)) < 1e-6, "d(Σs)/da at a diagonal positive matrix is I: \(gs)")
    }

    // MARK: projectToSO3

    @Test func projectToSO3GivesNearestRotation() throws {
        var rng = RandomGenerator(seed: 31)
        var m = rng.normal([64, 3, 3])
        // Make half of them reflections.
        m = m * Tensor((0..<64).map { $0 % 2 == 0 ? 1 : -1 }, shape: [64, 1, 1])
        let r = try Linalg.projectToSO3(m)
        let svd = try Linalg.svd(m)   // LAPACK reference
        for b in 0..<64 {
            let rm = matrix(r, b), mm = matrix(m, b)
            #expect(maxAbsDiff(mul(transpose(rm), rm), identity(3)) < 2e-6, "RᵀR = I")
            #expect(abs(laplaceDet(rm) - 1) < 2e-6, "det R = +1, found \(laplaceDet(rm))")
            // Reference: U diag(1, 1, det(U Vᵀ)) Vᵀ from LAPACK's SVD.
            var um = matrix(svd.u, b)
            let vm = matrix(svd.v, b)
            let dsign = laplaceDet(um) * laplaceDet(vm) < 0 ? -1.0 : 1.0
            for i in 0..<3 { um[i][2] *= dsign }
            #expect(maxAbsDiff(mul(um, transpose(vm)), rm) < 2e-5, "matrix \(b) matches the LAPACK reference")
            // Stationarity of min ||R - M||: RᵀM is symmetric.
            let rtm = mul(transpose(rm), mm)
            #expect(maxAbsDiff(rtm, transpose(rtm)) < 1e-5)
            // No nearby rotation R exp(εK) is closer.
            let dist0 = squaredDistance(rm, mm)
            for axis in [(0.05, 0.0, 0.0), (0.0, -0.05, 0.0), (0.0, 0.0, 0.05), (0.03, 0.03, -0.03)] {
                let dist = squaredDistance(mul(rm, rodrigues(axis)), mm)
                #expect(dist >= dist0 - 1e-5, "perturbed rotation is closer: \(dist) < \(dist0)")
            }
        }
        // Analytic cases: the nearest rotation to diag(3, 2, -1) is I, to a scaled rotation is the rotation.
        let p = try Linalg.projectToSO3(Tensor([3, 0, 0, 0, 2, 0, 0, 0, -1], shape: [3, 3]))
        #expect(maxAbsDiff(matrix(p), identity(3)) < 1e-6, "\(p)")
        let rot = Tensor([0, -1, 0, 1, 0, 0, 0, 0, 1], shape: [3, 3])
        #expect(maxAbsDiff(matrix(try Linalg.projectToSO3(2.5 * rot)), matrix(rot)) < 1e-6)
    }

    @Test func projectToSO3Gradients() throws {
        let a = try separatedMatrices([2, 3, 3], seed: 41)
        let reflected = a * Tensor([1, -1, 1], shape: [3, 1])
        // Near a rotation all singular values nearly tie; the polar derivative is still regular.
        let nearRotation = Tensor([0, -1, 0, 1, 0, 0, 0, 0, 1], shape: [3, 3]) + 0.05 * RandomGenerator(seed: 3).normalSample(9).reshaped(3, 3)
        for x in [a, reflected, nearRotation] {
            let r = GradientCheck.check([x]) { try! Linalg.projectToSO3($0[0]) }
            #expect(r.passed, "\(r)")
        }
    }

    // MARK: general SVD

    @Test func svdShapesAndReconstruction() throws {
        var rng = RandomGenerator(seed: 51)
        for shape in [[5, 3], [3, 5], [4, 4], [2, 3, 6, 4], [1, 1], [7, 1]] {
            let a = rng.normal(shape)
            let (u, s, v) = try Linalg.svd(a)
            let m = shape[shape.count - 2], n = shape[shape.count - 1], k = min(m, n)
            let batch = Array(shape.dropLast(2))
            #expect(u.shape == batch + [m, k] && s.shape == batch + [k] && v.shape == batch + [n, k], "\(shape)")
            let flatB = shapeCount(batch)
            expectValidSVD(a.reshaped([flatB, m, n]), u.reshaped([flatB, m, k]), s.reshaped([flatB, k]), v.reshaped([flatB, n, k]))
            let full = try Linalg.svd(a, fullMatrices: true)
            #expect(full.u.shape == batch + [m, m] && full.v.shape == batch + [n, n])
            #expect(full.s.allClose(s, rtol: 1e-5, atol: 1e-6))
            for b in 0..<flatB {
                let fu = matrix(full.u.reshaped([flatB, m, m]), b), fv = matrix(full.v.reshaped([flatB, n, n]), b)
                #expect(maxAbsDiff(mul(transpose(fu), fu), identity(m)) < 2e-6)
                #expect(maxAbsDiff(mul(transpose(fv), fv), identity(n)) < 2e-6)
            }
        }
        // Rank-deficient: the outer product (1, 2)ᵀ(3, 4, 0) has s = (5√5, 0).
        let r = try Linalg.svd(Tensor([[3, 4, 0], [6, 8, 0]]))
        #expect(abs(r.s.scalars[0] - 5 * Float(5).squareRoot()) < 1e-5 && abs(r.s.scalars[1]) < 1e-6, "\(r.s)")
        // Empty batch.
        let e = try Linalg.svd(Tensor.zeros([0, 3, 2]))
        #expect(e.u.shape == [0, 3, 2] && e.s.shape == [0, 2] && e.v.shape == [0, 2, 2])
    }

    @Test func svdGradients() throws {
        for (shape, seed) in [([4, 4], UInt64(61)), ([5, 3], 62), ([3, 5], 63), ([2, 4, 3], 64)] {
            let a = try separatedMatrices(shape, seed: seed)
            let k = min(shape[shape.count - 1], shape[shape.count - 2])
            let w1: [Float] = [1.5, -0.5, 2, 0.7].prefix(k).map { $0 }, w2: [Float] = [1, -2, 0.5, 3].prefix(k).map { $0 }
            let rs = GradientCheck.check([a]) { try! Linalg.svd($0[0]).s }
            #expect(rs.passed, "\(shape) s: \(rs)")
            let ruv = GradientCheck.check([a]) { xs in let d = try! Linalg.svd(xs[0]); return d.u.weighted(w1, d.v) }
            #expect(ruv.passed, "\(shape) u diag(w) vᵀ: \(ruv)")
            let ru = GradientCheck.check([a]) { xs in let d = try! Linalg.svd(xs[0]); return d.u.weighted(w2, d.u) }
            #expect(ru.passed, "\(shape) u diag(w) uᵀ: \(ru)")
            let rv = GradientCheck.check([a]) { xs in let d = try! Linalg.svd(xs[0]); return d.v.weighted(w2, d.v) }
            #expect(rv.passed, "\(shape) v diag(w) vᵀ: \(rv)")
        }
        // fullMatrices: the extra columns get no gradient; the thin part is differentiated as usual.
        let a = try separatedMatrices([4, 2], seed: 65)
        let r = GradientCheck.check([a]) { xs in
            let d = try! Linalg.svd(xs[0], fullMatrices: true)
            return d.u.narrowColumns(2).weighted([1, -2], d.u.narrowColumns(2))
        }
        #expect(r.passed, "fullMatrices: \(r)")
    }

    // MARK: eigh

    @Test func eighDecomposesSymmetricMatrices() throws {
        let two = try Linalg.eigh(Tensor([[2, 1], [1, 2]]))
        #expect(abs(two.values.scalars[0] - 1) < 1e-6 && abs(two.values.scalars[1] - 3) < 1e-6)
        var rng = RandomGenerator(seed: 71)
        let b = rng.normal([3, 5, 5])
        let a = b.matmul(b.transposed()) - 2 * Tensor.eye(5)   // symmetric, indefinite
        let (w, v) = try Linalg.eigh(a)
        #expect(w.shape == [3, 5] && v.shape == [3, 5, 5])
        for i in 0..<3 {
            let am = matrix(a, i), vm = matrix(v, i)
            let lam = Array(w.scalars[(5 * i)..<(5 * i + 5)]).map(Double.init)
            #expect(zip(lam, lam.dropFirst()).allSatisfy { $0 <= $1 }, "ascending: \(lam)")
            #expect(maxAbsDiff(mul(transpose(vm), vm), identity(5)) < 2e-6)
            let av = mul(am, vm)
            let vl = vm.map { row in (0..<5).map { row[$0] * lam[$0] } }
            #expect(maxAbsDiff(av, vl) < 1e-4, "A V = V Λ")
        }
    }

    @Test func eighGradients() throws {
        var rng = RandomGenerator(seed: 72)
        // Not symmetric on purpose: eigh symmetrises, and its gradient is the exact one of that.
        let x = rng.normal([2, 4, 4]) + Tensor.eye(4) * Tensor([3, 6, 9, 12])
        let rw = GradientCheck.check([x]) { try! Linalg.eigh($0[0]).values }
        #expect(rw.passed, "values: \(rw)")
        let rv = GradientCheck.check([x]) { xs in let d = try! Linalg.eigh(xs[0]); return d.vectors.weighted([1, -1, 2, 0.5], d.vectors) }
        #expect(rv.passed, "V diag(w) Vᵀ: \(rv)")
    }

    // MARK: solve, inverse, det, pinv

    @Test func solveMatchesReferenceAndBroadcasts() throws {
        var rng = RandomGenerator(seed: 81)
        let a = rng.normal([2, 4, 4]) + 4 * Tensor.eye(4)
        let b = rng.normal([2, 4, 3])
        let x = try Linalg.solve(a, b)
        #expect(x.shape == [2, 4, 3])
        for i in 0..<2 { #expect(maxAbsDiff(mul(matrix(a, i), matrix(x, i)), matrix(b, i)) < 1e-5) }
        // Batch of vectors [..., n] and a 1-D right-hand side.
        let bv = rng.normal([2, 4])
        let xv = try Linalg.solve(a, bv)
        #expect(xv.shape == [2, 4])
        #expect(xv.allClose(try Linalg.solve(a, bv.unsqueezed(-1)).squeezed([-1]), rtol: 1e-6, atol: 1e-6))
        let x1 = try Linalg.solve(a, Tensor([1, 2, 3, 4]))
        #expect(x1.shape == [2, 4])
        // A single matrix broadcast against a batch of right-hand sides.
        let xb = try Linalg.solve(a[0...0], rng.normal([3, 4, 2]))
        #expect(xb.shape == [3, 4, 2])
        // Against inverse.
        #expect(x.allClose(try Linalg.inverse(a).matmul(b), rtol: 1e-4, atol: 1e-5))
    }

    @Test func solveGradients() throws {
        var rng = RandomGenerator(seed: 82)
        let a = rng.normal([2, 3, 3]) + 3 * Tensor.eye(3), b = rng.normal([2, 3, 2])
        let r = GradientCheck.check([a, b]) { try! Linalg.solve($0[0], $0[1]) }
        #expect(r.passed, "\(r)")
        let rv = GradientCheck.check([a, rng.normal([2, 3])]) { try! Linalg.solve($0[0], $0[1]) }
        #expect(rv.passed, "vector case: \(rv)")
        let rb = GradientCheck.check([a[0...0].squeezed([0]), rng.normal([2, 3, 2])]) { try! Linalg.solve($0[0], $0[1]) }
        #expect(rb.passed, "broadcast a: \(rb)")
    }

    @Test func inverseAndDet() throws {
        var rng = RandomGenerator(seed: 91)
        for n in [1, 2, 3, 4, 5] {
            // Well conditioned, so finite differences of the inverse stay accurate.
            let a = 0.5 * rng.normal([3, n, n]) + 2 * Tensor.eye(n)
            let inv = try Linalg.inverse(a)
            let d = try Linalg.det(a)
            #expect(d.shape == [3])
            for i in 0..<3 {
                #expect(maxAbsDiff(mul(matrix(a, i), matrix(inv, i)), identity(n)) < 1e-5, "n = \(n)")
                let ref = laplaceDet(matrix(a, i))
                #expect(abs(Double(d.scalars[i]) - ref) < 1e-5 * max(1, abs(ref)), "n = \(n): det \(d.scalars[i]) vs \(ref)")
            }
            let ri = GradientCheck.check([a]) { try! Linalg.inverse($0[0]) }
            #expect(ri.passed, "inverse n = \(n): \(ri)")
            let rd = GradientCheck.check([a]) { try! Linalg.det($0[0]) }
            #expect(rd.passed, "det n = \(n): \(rd)")
        }
        // det of singular matrices is 0 and its gradient is the cofactor matrix (here for n = 3 and
        // the SVD path at n = 4).
        let s3 = Tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
        #expect(abs(try Linalg.det(s3).item) < 1e-5)
        let rs3 = GradientCheck.check([s3]) { try! Linalg.det($0[0]) }
        #expect(rs3.passed, "singular 3x3: \(rs3)")
        let s4 = Tensor([[1, 2, 0, 1], [0, 1, 1, 0], [1, 3, 1, 1], [2, 0, 1, 3]])   // row 2 = row 0 + row 1
        #expect(abs(try Linalg.det(s4).item) < 1e-5)
        let rs4 = GradientCheck.check([s4]) { try! Linalg.det($0[0]) }
        #expect(rs4.passed, "singular 4x4: \(rs4)")
        // The adjugate of a rank n-1 matrix is rank one, not zero.
        let sv4 = s4.requiringGrad()
        let cof = grad(of: try Linalg.det(sv4), wrt: sv4)
        #expect(cof.abs().max().item > 0.5, "\(cof)")
    }

    @Test func pinvSatisfiesPenroseConditions() throws {
        var rng = RandomGenerator(seed: 101)
        for shape in [[5, 3], [3, 5], [2, 4, 4]] {
            let a = rng.normal(shape)
            let x = try Linalg.pinv(a)
            let m = shape[shape.count - 2], n = shape[shape.count - 1]
            #expect(x.shape == Array(shape.dropLast(2)) + [n, m])
            for b in 0..<(shape.count == 3 ? shape[0] : 1) {
                let am = matrix(a, b), xm = matrix(x, b)
                #expect(maxAbsDiff(mul(mul(am, xm), am), am) < 1e-4)
                #expect(maxAbsDiff(mul(mul(xm, am), xm), xm) < 1e-4)
                let ax = mul(am, xm), xa = mul(xm, am)
                #expect(maxAbsDiff(ax, transpose(ax)) < 1e-5 && maxAbsDiff(xa, transpose(xa)) < 1e-5)
            }
        }
        // Rank 1: A⁺ = Aᵀ / ||A||²_F.
        let p = try Linalg.pinv(Tensor([[1, 2], [2, 4]]))
        #expect(p.allClose(Tensor([[1, 2], [2, 4]]) / 25, rtol: 1e-5, atol: 1e-6), "\(p)")
        // A cut-off above the second singular value truncates it.
        let t = try Linalg.pinv(Tensor([[2, 0], [0, 1e-3]]), rcond: 1e-2)
        #expect(t.allClose(Tensor([[0.5, 0], [0, 0]]), atol: 1e-7))
    }

    @Test func pinvGradients() throws {
        var rng = RandomGenerator(seed: 102)
        for shape in [[4, 3], [3, 4], [2, 3, 3]] {
            let a = rng.normal(shape) + (shape[shape.count - 1] == shape[shape.count - 2] ? 2 * Tensor.eye(3) : Tensor(0))
            let r = GradientCheck.check([a]) { try! Linalg.pinv($0[0]) }
            #expect(r.passed, "\(shape): \(r)")
        }
    }

    // MARK: errors

    @Test func nonFiniteInputThrowsNamingTheOp() throws {
        let bad = Tensor([1, .nan, 0, 0, 1, 0, 0, 0, 1], shape: [3, 3])
        let inf = Tensor([1, 0, 0, 0, .infinity, 0, 0, 0, 1], shape: [3, 3])
        let calls: [(String, (Tensor) throws -> Void)] = [
            ("svd3x3", { _ = try Linalg.svd3x3($0) }), ("projectToSO3", { _ = try Linalg.projectToSO3($0) }),
            ("svd", { _ = try Linalg.svd($0) }), ("eigh", { _ = try Linalg.eigh($0) }),
            ("solve", { _ = try Linalg.solve($0, Tensor([1, 2, 3])) }), ("inverse", { _ = try Linalg.inverse($0) }),
            ("det", { _ = try Linalg.det($0) }), ("pinv", { _ = try Linalg.pinv($0) }),
        ]
        for (op, call) in calls {
            for x in [bad, inf] {
                do {
                    try call(x)
                    Issue.record("\(op) accepted a non-finite input")
                } catch let e as TensorError {
                    guard case .nonFinite = e else { Issue.record("\(op): wrong error \(e)"); continue }
                    #expect("\(e)".hasPrefix(op) && "\(e)".contains("non-finite"), "\(e)")
                }
            }
        }
        // NaN in the right-hand side.
        #expect(throws: TensorError.self) { try Linalg.solve(Tensor.eye(3), Tensor([1, .nan, 3])) }
    }

    @Test func singularSolveAndInverseThrow() throws {
        // Exactly zero pivot: LAPACK's info names U[2, 2].
        let exact = Tensor([[1, 2], [2, 4]])
        #expect(throws: TensorError.lapack(op: "solve", info: 2)) { try Linalg.solve(exact, Tensor([1, 1])) }
        #expect(throws: TensorError.lapack(op: "inverse", info: 2)) { try Linalg.inverse(exact) }
        // Singular to working precision (reciprocal condition number 1e-20 < ε): info = n + 1.
        #expect(throws: TensorError.lapack(op: "solve", info: 3)) { try Linalg.solve(Tensor([[1, 0], [0, 1e-20]]), Tensor([1, 1])) }
        // Exactly singular, but rounding in the elimination leaves a ~1e-16 pivot instead of 0
        // (row 1 is (4, 0, 1)·2/7 = (r2 - 12 r0)/21).
        let rounded = Tensor([[-2, 2, 1], [Float(8) / 7, 0, Float(2) / 7], [0, 24, 18]])
        do {
            _ = try Linalg.solve(rounded, Tensor([1, 1, 1]))
            Issue.record("numerically singular matrix accepted")
        } catch let TensorError.lapack(op, info) {
            #expect(op == "solve" && (info == 3 || info == 4), "info \(info)")
        }
        // In a batch, the message names the failing matrix.
        let batch = Tensor.stackRows([Tensor.eye(2), exact])
        do {
            _ = try Linalg.solve(batch, Tensor([1, 1]))
            Issue.record("singular batch accepted")
        } catch {
            #expect("\(error)".contains("matrix 1 of batch [2]") && "\(error)".contains("singular"), "\(error)")
        }
    }

    @Test func badShapesThrowWithExpectedAndFound() throws {
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "" } catch { return "\(error)" }
        }
        let m1 = message { _ = try Linalg.svd3x3(Tensor.zeros([2, 3, 4])) }
        #expect(m1.contains("[..., 3, 3]") && m1.contains("[2, 3, 4]"), "\(m1)")
        let m2 = message { _ = try Linalg.eigh(Tensor.zeros([3, 4])) }
        #expect(m2.contains("square") && m2.contains("[3, 4]"), "\(m2)")
        let m3 = message { _ = try Linalg.solve(Tensor.eye(3), Tensor.zeros([4, 2])) }
        #expect(m3.contains("[4, 2]") && m3.contains("[..., 3, k]"), "\(m3)")
        let m4 = message { _ = try Linalg.svd(Tensor.zeros([5])) }
        #expect(m4.contains("[..., m, n]") && m4.contains("[5]"), "\(m4)")
        let m5 = message { _ = try Linalg.pinv(Tensor.eye(2), rcond: -1) }
        #expect(m5.contains("rcond"), "\(m5)")
    }
}

private extension Tensor {
    /// The first `k` columns of `[..., m, n]`, differentiably (as a matmul with a selector).
    func narrowColumns(_ k: Int) -> Tensor {
        let n = shape[rank - 1]
        var sel = [Float](repeating: 0, count: n * k)
        for j in 0..<k { sel[j * k + j] = 1 }
        return matmul(Tensor(sel, shape: [n, k]))
    }

    /// Range subscript on the first dimension (a copy, no gradient), for building test inputs.
    subscript(r: ClosedRange<Int>) -> Tensor {
        let inner = count / shape[0]
        let v = Array(scalars[(r.lowerBound * inner)..<((r.upperBound + 1) * inner)])
        return Tensor(v, shape: [r.count] + Array(shape.dropFirst()))
    }

    static func stackRows(_ ts: [Tensor]) -> Tensor {
        Tensor(ts.flatMap { $0.scalars }, shape: [ts.count] + ts[0].shape)
    }
}
