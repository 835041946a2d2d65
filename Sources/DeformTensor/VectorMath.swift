import Foundation

/// Vectorised elementary functions for kernels whose inner loop would otherwise call libm once
/// per element (a function call the compiler cannot vectorise).
public enum VectorMath {
    /// `e^x` without a libm call: `x = n ln2 + r` with `|r| ≤ ln2/2`, a degree-6 Taylor
    /// polynomial for `e^r` and `2^n` from the exponent bits. Relative error below 3e-7 on
    /// [-87, 88]; inputs are clamped to that range first (so -∞ gives about 1.6e-38, not 0), and
    /// NaN is not handled: callers validate their inputs. Only adds, multiplies, min/max and bit
    /// casts (rounding by the 1.5·2^23 trick), so loops over it auto-vectorise.
    @inlinable @inline(__always)
    public static func exp(_ x: Float) -> Float {
        let clamped = Swift.max(Swift.min(x, 88), -87)
        let magic: Float = 12582912                               // 1.5 · 2^23
        let shifted = clamped * 1.442695040888963 + magic
        let n = shifted - magic                                  // round(x / ln 2)
        // ln 2 split in two so r keeps full precision.
        let r = clamped - n * 0.693145751953125 - n * 1.428606765330187e-6
        var p: Float = 1.0 / 720
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        // The integer n sits in the low mantissa bits of `shifted`.
        let k = Int32(bitPattern: shifted.bitPattern) &- Int32(bitPattern: magic.bitPattern)
        return p * Float(bitPattern: UInt32(bitPattern: (k &+ 127) &<< 23))
    }

    /// `dst[i] = e^(scale · src[i])` for `count` elements (`dst` may equal `src`).
    @inlinable
    public static func exp(_ src: UnsafePointer<Float>, scale: Float = 1, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { dst[i] = exp(src[i] * scale) }
    }
}

extension VectorMath {
    /// ``exp(_:)-(Float)`` on four lanes at once (the same range reduction, polynomial and
    /// clamping), for kernels written with explicit SIMD vectors.
    @inlinable @inline(__always)
    public static func exp(_ x: SIMD4<Float>) -> SIMD4<Float> {
        let clamped = pointwiseMax(pointwiseMin(x, SIMD4(repeating: 88)), SIMD4(repeating: -87))
        let magic: Float = 12582912
        let shifted = clamped * 1.442695040888963 + magic
        let n = shifted - magic
        let r = clamped - n * 0.693145751953125 - n * 1.428606765330187e-6
        var p = SIMD4<Float>(repeating: 1.0 / 720)
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        let k = unsafeBitCast(shifted, to: SIMD4<Int32>.self) &- Int32(bitPattern: magic.bitPattern)
        return p * unsafeBitCast((k &+ 127) &<< 23, to: SIMD4<Float>.self)
    }
}
