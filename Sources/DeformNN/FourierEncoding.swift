import Foundation
import DeformTensor

/// NeRF's positional encoding (Mildenhall et al. 2020, Eq. 4): each coordinate `x` of the last
/// dimension becomes `[x, sin(f₀ s x), cos(f₀ s x), ..., sin(f_{L-1} s x), cos(f_{L-1} s x)]`,
/// laid out like the reference code: the input block first (if included), then for each frequency
/// a block of sines and a block of cosines over all `D` coordinates. Output width
/// `D·(include ? 1 : 0) + 2·L·D`.
///
/// Frequencies `f_k` are `2^k` for `k = 0..<L` with log sampling, or `L` values evenly spaced from
/// `1` to `2^maxFrequencyLog2` otherwise; `s` is `inputScale` (`π` as in the paper's Eq. 4; the
/// released NeRF code uses 1).
public final class FourierEncoding: Module {
    public let frequencies: [Float]
    public let includeInput: Bool
    public let inputScale: Double

    /// - Parameters:
    ///   - numFrequencies: `L`.
    ///   - maxFrequencyLog2: highest frequency exponent (default `L - 1`).
    public init(numFrequencies: Int, includeInput: Bool = true, logSampling: Bool = true,
                maxFrequencyLog2: Float? = nil, inputScale: Double = .pi) {
        precondition(numFrequencies >= 0, "FourierEncoding: numFrequencies must be >= 0, got \(numFrequencies)")
        let maxLog = Double(maxFrequencyLog2 ?? Float(numFrequencies - 1))
        let l = numFrequencies
        if l == 0 {
            frequencies = []
        } else if l == 1 {
            frequencies = [logSampling ? Float(Foundation.pow(2, 0.0)) : 1]
        } else if logSampling {
            frequencies = (0..<l).map { Float(Foundation.pow(2, maxLog * Double($0) / Double(l - 1))) }
        } else {
            let hi = Foundation.pow(2, maxLog)
            frequencies = (0..<l).map { Float(1 + (hi - 1) * Double($0) / Double(l - 1)) }
        }
        self.includeInput = includeInput
        self.inputScale = inputScale
    }

    /// Each frequency is twice the previous one (the default), so sines and cosines follow by
    /// angle doubling.
    var usesAngleDoubling: Bool {
        zip(frequencies, frequencies.dropFirst()).allSatisfy { $1 == 2 * $0 }
    }

    /// Width of the encoding of `inputDimension` coordinates.
    public func outputDimension(inputDimension d: Int) -> Int { d * ((includeInput ? 1 : 0) + 2 * frequencies.count) }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        guard x.rank >= 1 else { fail(.shapeMismatch(op: "FourierEncoding", expected: "input [..., D]", found: "\(x.shape)")) }
        let d = x.shape[x.rank - 1]
        let rows = d == 0 ? 0 : x.count / d
        let width = outputDimension(inputDimension: d)
        let y = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [width])
        let freqs = frequencies.map { Float(Double($0) * inputScale) }
        let include = includeInput
        let px = x.dataPointer, py = y.dataPointer
        let doubling = usesAngleDoubling
        let f0 = Double(frequencies.first ?? 1) * inputScale
        let l = freqs.count
        Threads.parallelRanges(rows, minChunk: 2048) { range in
            for r in range {
                let src = px + r * d
                var dst = py + r * width
                if include { dst.update(from: src, count: d); dst += d }
                if doubling {
                    // sin 2a = 2 sin a cos a, cos 2a = 1 - 2 sin² a, in Double: one sin/cos per
                    // coordinate instead of L, and more accurate than Float sin of a large argument.
                    for j in 0..<d {
                        let a = f0 * Double(src[j])
                        var sn = Foundation.sin(a), cs = Foundation.cos(a)
                        var out = dst + j
                        for _ in 0..<l {
                            out[0] = Float(sn); out[d] = Float(cs)
                            (sn, cs) = (2 * sn * cs, 1 - 2 * sn * sn)
                            out += 2 * d
                        }
                    }
                } else {
                    for f in freqs {
                        for j in 0..<d { let a = f * src[j]; dst[j] = Foundation.sin(a); dst[d + j] = Foundation.cos(a) }
                        dst += 2 * d
                    }
                }
            }
        }
        guard GradMode.isEnabled, x.isTracked else { return y }
        let xShape = x.shape
        let values = y  // untracked; keeps the forward values alive for the backward
        return Tensor.record("fourierEncoding", output: y, inputs: [x]) { g in
            let py = values.dataPointer
            // d sin(f x)/dx = f cos(f x) and d cos(f x)/dx = -f sin(f x): reuse the forward values.
            let gx = Tensor(uninitializedShape: xShape)
            let pg = g.dataPointer, pgx = gx.dataPointer
            Threads.parallelRanges(rows, minChunk: 2048) { range in
                for r in range {
                    let out = pgx + r * d
                    var gr = pg + r * width, yr = py + r * width
                    if include { out.update(from: gr, count: d); gr += d; yr += d } else { out.update(repeating: 0, count: d) }
                    for f in freqs {
                        for j in 0..<d { out[j] += f * (gr[j] * yr[d + j] - gr[d + j] * yr[j]) }
                        gr += 2 * d; yr += 2 * d
                    }
                }
            }
            return [gx]
        }
    }
}
