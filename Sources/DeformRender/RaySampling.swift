import DeformTensor
import Foundation

/// Where to put the samples along rays: stratified sampling between near and far bounds and
/// hierarchical (importance) sampling from the weights of a coarse pass (NeRF Sec. 5.2). Sample
/// positions are not differentiated, as in NeRF.
extension VolumeRendering {
    /// `count` sorted depths per ray in `[near, far]`, `[R, count]`: one per equal bin, uniformly
    /// jittered inside its bin with `rng`, or at the bin centres when `rng` is `nil` (evaluation).
    /// - Parameters: near, far: `[R]` with `far > near` (see ``RayBundle/intersectBox(min:max:)``).
    public static func stratifiedSamples(near: Tensor, far: Tensor, count: Int, rng: inout RandomGenerator?) throws -> Tensor {
        let op = "VolumeRendering.stratifiedSamples"
        guard near.rank == 1, far.shape == near.shape else {
            throw TensorError.shapeMismatch(op: op, expected: "near and far of shape [R]", found: "near \(near.shape), far \(far.shape)")
        }
        guard count > 0 else { throw TensorError.invalidArgument(op: op, message: "count must be positive, got \(count)") }
        let r = near.shape[0]
        let jitter: [Float] = rng.map { var g = $0; let u = g.uniform([r, count]).scalars; rng = g; return u }
            ?? [Float](repeating: 0.5, count: r * count)
        let out = Tensor(uninitializedShape: [r, count])
        let pn = near.dataPointer, pf = far.dataPointer, o = out.dataPointer
        for ray in 0..<r {
            let lo = pn[ray], span = pf[ray] - pn[ray]
            for i in 0..<count { o[ray * count + i] = lo + span * (Float(i) + jitter[ray * count + i]) / Float(count) }
        }
        return out
    }

    /// Importance sampling from a coarse pass (NeRF's hierarchical sampling): `count` depths per
    /// ray drawn from the piecewise-constant density whose mass in bin j (between `edges[j]` and
    /// `edges[j+1]`) is proportional to `weights[j]`, by inverting its CDF at sorted uniform
    /// draws (or at evenly spaced quantiles when `rng` is `nil`). Returns `[R, count]`, sorted.
    /// - Parameters:
    ///   - edges: `[R, B + 1]` increasing bin edges.
    ///   - weights: `[R, B]` non-negative (e.g. ``VolumeRender/weights``); a small constant is
    ///     added so rays with zero weight sample uniformly.
    public static func importanceSamples(edges: Tensor, weights: Tensor, count: Int, rng: inout RandomGenerator?) throws -> Tensor {
        let op = "VolumeRendering.importanceSamples"
        guard weights.rank == 2, edges.shape == [weights.shape[0], weights.shape[1] + 1] else {
            throw TensorError.shapeMismatch(op: op, expected: "edges [R, B + 1] and weights [R, B]",
                                            found: "edges \(edges.shape), weights \(weights.shape)")
        }
        guard count > 0 else { throw TensorError.invalidArgument(op: op, message: "count must be positive, got \(count)") }
        let r = weights.shape[0], b = weights.shape[1]
        var draws: [Float]
        if var g = rng {
            draws = g.uniform([r, count]).scalars
            rng = g
            for ray in 0..<r { draws[(ray * count)..<((ray + 1) * count)].sort() }
        } else {
            let q = (0..<count).map { (Float($0) + 0.5) / Float(count) }
            draws = Array((0..<r).map { _ in q }.joined())
        }
        let out = Tensor(uninitializedShape: [r, count])
        let pe = edges.dataPointer, pw = weights.dataPointer, o = out.dataPointer
        Threads.parallelRanges(r, minChunk: 64) { rays in
            let cdf = UnsafeMutablePointer<Float>.allocate(capacity: b + 1)
            defer { cdf.deallocate() }
            for ray in rays {
                let w = pw + ray * b, e = pe + ray * (b + 1)
                var total: Float = 0
                for j in 0..<b { total += Swift.max(w[j], 0) + 1e-5 }
                cdf[0] = 0
                for j in 0..<b { cdf[j + 1] = cdf[j] + (Swift.max(w[j], 0) + 1e-5) / total }
                var j = 0
                for i in 0..<count {
                    let u = Swift.min(draws[ray * count + i], cdf[b])
                    // Draws are sorted: the bin index only moves forward.
                    while j < b - 1 && cdf[j + 1] < u { j += 1 }
                    let mass = cdf[j + 1] - cdf[j]
                    let f = mass > 0 ? Swift.min(Swift.max((u - cdf[j]) / mass, 0), 1) : 0.5
                    o[ray * count + i] = e[j] + f * (e[j + 1] - e[j])
                }
            }
        }
        return out
    }

    /// Merges two sorted sample sets per ray (`[R, S1]` and `[R, S2]`) into one sorted `[R, S1 + S2]`,
    /// as NeRF's fine pass evaluates the coarse and the importance samples together.
    public static func mergeSorted(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.rank == 2 && b.rank == 2 && a.shape[0] == b.shape[0],
                     "VolumeRendering.mergeSorted: expected [R, S1] and [R, S2], found \(a.shape), \(b.shape)")
        let r = a.shape[0], n = a.shape[1], m = b.shape[1]
        let out = Tensor(uninitializedShape: [r, n + m])
        let pa = a.dataPointer, pb = b.dataPointer, o = out.dataPointer
        for ray in 0..<r {
            var i = 0, j = 0, k = ray * (n + m)
            while i < n || j < m {
                if j >= m || (i < n && pa[ray * n + i] <= pb[ray * m + j]) { o[k] = pa[ray * n + i]; i += 1 } else { o[k] = pb[ray * m + j]; j += 1 }
                k += 1
            }
        }
        return out
    }
}
