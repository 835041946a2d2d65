import Foundation

/// Counter-based seeded random numbers (Philox-free, SplitMix64-style hashing of (seed, counter)).
///
/// Element `i` of a draw depends only on the seed and the generator's counter, never on threads,
/// so results are identical across runs and thread counts.
public struct RandomGenerator: Sendable {
    public let seed: UInt64
    /// Number of 64-bit values consumed so far.
    public private(set) var counter: UInt64 = 0

    public init(seed: UInt64) { self.seed = seed }

    @inline(__always) static func mix(_ z0: UInt64) -> UInt64 {
        var z = z0 &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always) func bits(_ i: UInt64) -> UInt64 {
        RandomGenerator.mix(RandomGenerator.mix(seed) ^ (counter &+ i) &* 0xD1B5_4A32_D192_ED03)
    }

    /// Uniform in [0, 1) with 24 random bits (exactly representable in Float32).
    @inline(__always) static func unit(_ b: UInt64) -> Float { Float(b >> 40) * (1.0 / 16_777_216.0) }

    /// A tensor of `shape` filled on the cores by `body(generator, range, pointer)`, each call
    /// writing the elements in `range`; then the counter moves past the `drawsPerElement` values
    /// each element consumed. (The element loop stays in `body` so it is compiled in place.)
    @inline(__always)
    private mutating func fill(_ shape: [Int], drawsPerElement: UInt64, minChunk: Int,
                               _ body: (RandomGenerator, Range<Int>, UnsafeMutablePointer<Float>) -> Void) -> Tensor {
        var t = Tensor(uninitializedShape: shape)
        let n = t.count
        let me = self
        t.withUnsafeMutableBufferPointer { p in
            Threads.parallelRanges(n, minChunk: minChunk) { r in body(me, r, p.baseAddress!) }
        }
        counter &+= drawsPerElement * UInt64(n)
        return t
    }

    /// Uniform values in [low, high).
    public mutating func uniform(_ shape: [Int], low: Float = 0, high: Float = 1) -> Tensor {
        fill(shape, drawsPerElement: 1, minChunk: 1 << 16) { g, r, p in
            for i in r { p[i] = low + (high - low) * RandomGenerator.unit(g.bits(UInt64(i))) }
        }
    }

    /// Normal values by Box-Muller (each element uses its own pair of counters).
    public mutating func normal(_ shape: [Int], mean: Float = 0, std: Float = 1) -> Tensor {
        fill(shape, drawsPerElement: 2, minChunk: 1 << 15) { g, r, p in
            for i in r {
                let u1 = (Double(g.bits(2 * UInt64(i)) >> 11) + 1) * (1.0 / 9_007_199_254_740_993.0)
                let u2 = Double(g.bits(2 * UInt64(i) + 1) >> 11) * (1.0 / 9_007_199_254_740_992.0)
                p[i] = mean + std * Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
            }
        }
    }

    /// Bernoulli(p) mask of 0/1 values.
    public mutating func bernoulli(_ shape: [Int], p: Float) -> Tensor {
        var t = uniform(shape)
        t.withUnsafeMutableBufferPointer { b in for i in b.indices { b[i] = b[i] < p ? 1 : 0 } }
        return t
    }

    /// Uniform integer in `0..<n`.
    public mutating func int(below n: Int) -> Int {
        precondition(n > 0, "RandomGenerator.int: n must be positive")
        let b = bits(0)
        counter &+= 1
        return Int(b % UInt64(n))
    }

    /// A random permutation of `0..<n` (Fisher-Yates).
    public mutating func permutation(_ n: Int) -> [Int] {
        var a = Array(0..<n)
        if n < 2 { return a }
        for i in stride(from: n - 1, to: 0, by: -1) { a.swapAt(i, int(below: i + 1)) }
        return a
    }
}

extension Tensor {
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, using rng: inout RandomGenerator) -> Tensor {
        rng.uniform(shape, low: low, high: high)
    }
    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1, using rng: inout RandomGenerator) -> Tensor {
        rng.normal(shape, mean: mean, std: std)
    }
}
