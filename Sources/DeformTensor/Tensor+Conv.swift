import Foundation
import CBLAS

// 2-D convolution and transposed convolution on cblas_sgemm.
//
// Three lowerings share one geometry:
// - `im2col`: any stride; each image is unfolded into a [C*kh*kw, Ho*Wo] matrix so the convolution
//   is one GEMM (K = C*kh*kw).
// - `shifted`: stride 1 only; the image is zero-padded once and every kernel tap is a GEMM on the
//   padded image read at an offset (the output is computed on the padded row pitch and cropped), so
//   nothing is unfolded. It moves far less memory, which is what limits im2col on large images.
// - `winograd`: 3x3 stride 1 only; F(2x2, 3x3) tiles cut the multiplications 2.25x in the forward
//   pass and in both gradients.
// Images are split over the cores with 1-thread BLAS; a single image uses threaded BLAS instead.

/// Everything the conv kernels need to know about one convolution, in "forward conv" terms:
/// input [n, c, h, w] correlated with weight [o, c, kh, kw] gives output [n, o, ho, wo].
/// A transposed convolution is the input-gradient of such a conv.
struct ConvGeometry {
    var n, c, h, w, o: Int
    var kh, kw, sh, sw, ph, pw, dh, dw: Int
    var ho, wo: Int

    var taps: Int { kh * kw }
    var ckk: Int { c * kh * kw }
    var inPlane: Int { h * w }
    var outPlane: Int { ho * wo }
    /// 1x1, stride 1, no padding: the image already is its im2col matrix.
    var isPointwise: Bool { kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0 && ho == h && wo == w }

    // Padded layout of the shifted lowering: rows of pitch `wp`, channels of pitch `chanPitch`
    // (the tail slack keeps the last taps' reads inside the channel and absorbs the right border
    // written after the last row; it is always zero).
    var hp: Int { h + 2 * ph }
    var wp: Int { w + 2 * pw }
    var chanPitch: Int { hp * wp + dw * (kw - 1) + pw }
    func tapOffset(_ ki: Int, _ kj: Int) -> Int { ki * dh * wp + kj * dw }
}

enum ConvLowering { case im2col, shifted, winograd }

extension ConvGeometry {
    /// 3x3, stride 1, undilated, padding at most 2 (so the input gradient is a 3x3 correlation
    /// with padding 2 - p), output size by the usual formula: Winograd F(2x2, 3x3) applies.
    var winogradApplies: Bool {
        kh == 3 && kw == 3 && sh == 1 && sw == 1 && dh == 1 && dw == 1 && ph <= 2 && pw <= 2
            && ho == h + 2 * ph - 2 && wo == w + 2 * pw - 2
    }

    /// The lowering used unless a test forces one, from timings of forward + backward on this
    /// machine kind: the GEMM-per-tap forms (shifted, Winograd) avoid unfolding and win on images
    /// of 16x16 outputs and more, even with few channels; on smaller images (fewer, narrower GEMMs)
    /// and with one or two input channels the single deep im2col GEMM wins. Winograd splits
    /// images over the cores, so a batch smaller than the core count uses the shifted form, whose
    /// large GEMMs thread well.
    var preferredLowering: ConvLowering {
        if sh != 1 || sw != 1 || isPointwise || c < 3 || ho * wo < 256 { return .im2col }
        return winogradApplies && n >= Threads.coreCount ? .winograd : .shifted
    }

    /// A requested lowering, or the preferred one, falling back where the request does not apply.
    func resolve(_ requested: ConvLowering?) -> ConvLowering {
        let r = requested ?? preferredLowering
        if r == .winograd && !winogradApplies { return sh == 1 && sw == 1 ? .shifted : .im2col }
        if r == .shifted && (sh != 1 || sw != 1) { return .im2col }
        return r
    }
}

// MARK: - Low-level helpers

@inline(__always)
fileprivate func sgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int,
           _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
           beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    Threads.blasCall { cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc)) }
}

/// Splits `count` items into at most `Threads.coreCount` contiguous chunks and runs
/// `body(chunk, range)` concurrently with 1-thread BLAS. Returns the number of chunks, so per-chunk
/// accumulators can be reduced in a fixed order (deterministic results).
@discardableResult
fileprivate func forEachChunk(_ count: Int, _ body: (Int, Range<Int>) -> Void) -> Int {
    let chunks = Swift.min(Threads.coreCount, count)
    if chunks <= 1 {
        if count > 0 { body(0, 0..<count) }
        return 1
    }
    Threads.withSingleThreadedBLAS {
        DispatchQueue.concurrentPerform(iterations: chunks) { t in
            body(t, (count * t / chunks)..<(count * (t + 1) / chunks))
        }
    }
    return chunks
}

/// Scratch memory owned by one thread for the duration of one kernel call.
final class KernelScratch {
    let pointer: UnsafeMutablePointer<Float>
    init(_ count: Int) { pointer = .allocate(capacity: Swift.max(count, 1)) }
    deinit { pointer.deallocate() }
}

extension ConvGeometry {
    /// The range of output columns `j` whose input column `j*sw + off` lies inside [0, w).
    @inline(__always)
    func validColumns(_ off: Int) -> Range<Int> {
        let lo = off >= 0 ? 0 : Swift.min(wo, (-off + sw - 1) / sw)
        let last = w - 1 - off
        let hi = last < 0 ? 0 : Swift.min(wo, last / sw + 1)
        return lo..<Swift.max(lo, hi)
    }

    /// Unfolds one image [c, h, w] into `col` [c*kh*kw, ho*wo].
    func im2col(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>) {
        let cols = outPlane
        for ch in 0..<c {
            let plane = x + ch * inPlane
            for ki in 0..<kh {
                for kj in 0..<kw {
                    let row = col + ((ch * kh + ki) * kw + kj) * cols
                    let off = kj * dw - pw
                    let valid = validColumns(off)
                    for i in 0..<ho {
                        let dst = row + i * wo
                        let hi = i * sh - ph + ki * dh
                        if hi < 0 || hi >= h { dst.update(repeating: 0, count: wo); continue }
                        let src = plane + hi * w + off
                        if valid.lowerBound > 0 { dst.update(repeating: 0, count: valid.lowerBound) }
                        if sw == 1 {
                            (dst + valid.lowerBound).update(from: src + valid.lowerBound, count: valid.count)
                        } else {
                            for j in valid { dst[j] = src[j * sw] }
                        }
                        if valid.upperBound < wo { (dst + valid.upperBound).update(repeating: 0, count: wo - valid.upperBound) }
                    }
                }
            }
        }
    }

    /// Folds `col` [c*kh*kw, ho*wo] back into one image [c, h, w] (adjoint of `im2col`); overwrites `x`.
    func col2im(_ col: UnsafePointer<Float>, _ x: UnsafeMutablePointer<Float>) {
        x.update(repeating: 0, count: c * inPlane)
        let cols = outPlane
        for ch in 0..<c {
            let plane = x + ch * inPlane
            for ki in 0..<kh {
                for kj in 0..<kw {
                    let row = col + ((ch * kh + ki) * kw + kj) * cols
                    let off = kj * dw - pw
                    let valid = validColumns(off)
                    if valid.isEmpty { continue }
                    for i in 0..<ho {
                        let hi = i * sh - ph + ki * dh
                        if hi < 0 || hi >= h { continue }
                        let src = row + i * wo
                        let dst = plane + hi * w + off
                        if sw == 1 {
                            for j in valid { dst[j] += src[j] }
                        } else {
                            for j in valid { dst[j * sw] += src[j] }
                        }
                    }
                }
            }
        }
    }

    /// Copies one image [c, h, w] into the zero-padded shifted layout [c, chanPitch].
    func pad(_ x: UnsafePointer<Float>, _ xp: UnsafeMutablePointer<Float>) {
        let pitch = chanPitch, wpad = wp
        for ch in 0..<c {
            let src = x + ch * inPlane, dst = xp + ch * pitch
            dst.update(repeating: 0, count: ph * wpad + pw)
            for i in 0..<h {
                let r = dst + (ph + i) * wpad + pw
                r.update(from: src + i * w, count: w)
                // Right border of this row and left border of the next are adjacent.
                (r + w).update(repeating: 0, count: 2 * pw)
            }
            // The loop already zeroed the first `pw` of the bottom padding.
            let tail = (ph + h) * wpad + pw
            (dst + tail).update(repeating: 0, count: pitch - tail)
        }
    }

    /// Reads the interior of a padded image [c, chanPitch] back into [c, h, w].
    func crop(_ xp: UnsafePointer<Float>, _ x: UnsafeMutablePointer<Float>) {
        for ch in 0..<c {
            let src = xp + ch * chanPitch + ph * wp + pw, dst = x + ch * inPlane
            for i in 0..<h { (dst + i * w).update(from: src + i * wp, count: w) }
        }
    }

    /// Reorders weight [o, c, kh, kw] into per-tap matrices [kh*kw, o, c] for the shifted lowering.
    func tapMajorWeight(_ wt: UnsafePointer<Float>) -> KernelScratch {
        let buf = KernelScratch(taps * o * c)
        for oc in 0..<(o * c) {
            for t in 0..<taps { buf.pointer[t * o * c + oc] = wt[oc * taps + t] }
        }
        return buf
    }
}

// MARK: - Winograd F(2x2, 3x3)

/// (a0, b0, a1, b1, ...): two output columns of 8 tiles back in image order.
@inline(__always)
fileprivate func interleave(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD16<Float> {
    SIMD16(a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3], a[4], b[4], a[5], b[5], a[6], b[6], a[7], b[7])
}

/// Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray 2016) for a 3x3, stride-1, undilated
/// correlation of one image [cIn, hIn, wIn] with padding (padH, padW): each 2x2 output tile is
/// `Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d Bᵀ)] A` of its 4x4 input patch `d`, so the channel mixing becomes 16 GEMMs
/// [cOut, cIn] x [cIn, tiles] with 2.25x fewer multiplications than the direct form. The
/// transforms only add, subtract and halve, so rounding stays close to direct summation.
///
/// Tiles are processed in blocks of whole tile rows sized so the transformed block stays in cache.
struct WinogradPlan {
    let cIn, cOut, hIn, wIn, padH, padW, hOut, wOut: Int
    /// Tile grid and the padded input: `hp` rows of pitch `pitch`, zero outside the image. The
    /// pitch covers whole groups of 8 tiles so vector loads never leave a row.
    let th, tw, hp, pitch: Int
    let rowsPerBlock: Int
    /// Leading dimension of the transformed blocks (one block of tiles plus slack for the
    /// 8-wide stores and loads of the last group).
    let ld: Int

    init(cIn: Int, cOut: Int, hIn: Int, wIn: Int, padH: Int, padW: Int) {
        self.cIn = cIn; self.cOut = cOut; self.hIn = hIn; self.wIn = wIn; self.padH = padH; self.padW = padW
        hOut = hIn + 2 * padH - 2; wOut = wIn + 2 * padW - 2
        th = (hOut + 1) / 2; tw = (wOut + 1) / 2
        hp = 2 * th + 2
        pitch = 2 * ((tw + 7) / 8 * 8) + 2
        // About 512 KB for each of the input and output transforms of a block.
        rowsPerBlock = Swift.max(1, Swift.min(th, 8192 / Swift.max(Swift.max(cIn, cOut), 1) / Swift.max(tw, 1)))
        ld = rowsPerBlock * tw + 8
    }

    var paddedCount: Int { cIn * hp * pitch }
    var inputBlockCount: Int { 16 * cIn * ld }
    var outputBlockCount: Int { 16 * cOut * ld }

    /// U = G g Gᵀ for every (out, in) channel pair, stored [16][cOut][cIn]. With `adjoint`, the
    /// kernel of the input gradient: weight [cIn, cOut, 3, 3] transposed and rotated by 180°.
    static func transformWeight(_ wt: UnsafePointer<Float>, cOut: Int, cIn: Int, adjoint: Bool) -> KernelScratch {
        let u = KernelScratch(16 * cOut * cIn)
        let pairs = cOut * cIn
        for oc in 0..<cOut {
            for ic in 0..<cIn {
                @inline(__always) func g(_ k: Int) -> Float {
                    adjoint ? wt[(ic * cOut + oc) * 9 + 8 - k] : wt[(oc * cIn + ic) * 9 + k]
                }
                // G g (4x3): rows (g0, (g0 + g1 + g2)/2, (g0 - g1 + g2)/2, g2) of the kernel rows.
                var gg = SIMD16<Float>()
                for j in 0..<3 {
                    let a = g(j), b = g(3 + j), c = g(6 + j)
                    gg[j] = a; gg[4 + j] = (a + b + c) * 0.5; gg[8 + j] = (a - b + c) * 0.5; gg[12 + j] = c
                }
                // (G g) Gᵀ: the same combinations of each row's three entries.
                let dst = u.pointer + oc * cIn + ic
                for i in 0..<4 {
                    let a = gg[4 * i], b = gg[4 * i + 1], c = gg[4 * i + 2]
                    dst[(4 * i) * pairs] = a
                    dst[(4 * i + 1) * pairs] = (a + b + c) * 0.5
                    dst[(4 * i + 2) * pairs] = (a - b + c) * 0.5
                    dst[(4 * i + 3) * pairs] = c
                }
            }
        }
        return u
    }

    /// Copies one image into the zero-padded tile layout.
    func pad(_ x: UnsafePointer<Float>, _ p: UnsafeMutablePointer<Float>) {
        p.update(repeating: 0, count: paddedCount)
        for ch in 0..<cIn {
            for i in 0..<hIn {
                (p + (ch * hp + padH + i) * pitch + padW).update(from: x + (ch * hIn + i) * wIn, count: wIn)
            }
        }
    }

    /// Bᵀ d B for 8 horizontally adjacent tiles starting at tile column `tj`, reading the four
    /// padded rows from `r` and storing the 16 transformed values of each tile at `dst + ξ·stride`.
    @inline(__always)
    private func inputTransform(_ r: UnsafeRawPointer, _ tj: Int, _ dst: UnsafeMutablePointer<Float>, _ stride: Int) {
        // Column k of tile j is padded column 2j + k: even/odd lanes of two overlapping loads.
        @inline(__always) func cols(_ k: Int) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
            let row = r + 4 * k * pitch + 8 * tj
            let a = row.loadUnaligned(as: SIMD16<Float>.self), b = row.loadUnaligned(fromByteOffset: 8, as: SIMD16<Float>.self)
            return (a.evenHalf, a.oddHalf, b.evenHalf, b.oddHalf)
        }
        let d0 = cols(0), d1 = cols(1), d2 = cols(2), d3 = cols(3)
        // Bᵀ d: row combinations.
        let t0 = (d0.0 - d2.0, d0.1 - d2.1, d0.2 - d2.2, d0.3 - d2.3)
        let t1 = (d1.0 + d2.0, d1.1 + d2.1, d1.2 + d2.2, d1.3 + d2.3)
        let t2 = (d2.0 - d1.0, d2.1 - d1.1, d2.2 - d1.2, d2.3 - d1.3)
        let t3 = (d1.0 - d3.0, d1.1 - d3.1, d1.2 - d3.2, d1.3 - d3.3)
        // (Bᵀ d) B: the same combinations of columns.
        @inline(__always) func store(_ i: Int, _ t: (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)) {
            let base = UnsafeMutableRawPointer(dst + 4 * i * stride)
            base.storeBytes(of: t.0 - t.2, as: SIMD8<Float>.self)
            base.storeBytes(of: t.1 + t.2, toByteOffset: 4 * stride, as: SIMD8<Float>.self)
            base.storeBytes(of: t.2 - t.1, toByteOffset: 8 * stride, as: SIMD8<Float>.self)
            base.storeBytes(of: t.1 - t.3, toByteOffset: 12 * stride, as: SIMD8<Float>.self)
        }
        store(0, t0); store(1, t1); store(2, t2); store(3, t3)
    }

    /// Input transform of the tile rows `tileRows` of a padded image: V[ξ][ci][tile] in `v`
    /// (``inputBlockCount`` floats), shared by the forward pass and the weight gradient.
    private func transformInputBlock(_ p: UnsafePointer<Float>, tileRows: Range<Int>, into v: UnsafeMutablePointer<Float>) {
        for ci in 0..<cIn {
            for ti in tileRows {
                let rows = UnsafeRawPointer(p + (ci * hp + 2 * ti) * pitch)
                let dst = v + ci * ld + (ti - tileRows.lowerBound) * tw
                var tj = 0
                while tj < tw {
                    inputTransform(rows, tj, dst + tj, cIn * ld)
                    tj += 8
                }
            }
        }
    }

    /// Per-thread buffers of one Winograd pass: the padded image and the transformed blocks.
    struct Scratch {
        let padded: KernelScratch, v: KernelScratch, m: KernelScratch
    }

    func makeScratch() -> Scratch {
        Scratch(padded: KernelScratch(paddedCount), v: KernelScratch(inputBlockCount), m: KernelScratch(outputBlockCount))
    }

    /// Pads one image and correlates it (see ``run(padded:u:bias:y:v:m:)``).
    func run(image x: UnsafePointer<Float>, u: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
             y: UnsafeMutablePointer<Float>, scratch: Scratch) {
        pad(x, scratch.padded.pointer)
        run(padded: scratch.padded.pointer, u: u, bias: bias, y: y, v: scratch.v.pointer, m: scratch.m.pointer)
    }

    /// Correlates one padded image (see ``pad(_:_:)``) with the transformed weight `u` and writes
    /// [cOut, hOut, wOut] (plus `bias` per output channel) to `y`.
    func run(padded p: UnsafePointer<Float>, u: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
             y: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>) {
        var tr0 = 0
        while tr0 < th {
            let tr1 = Swift.min(th, tr0 + rowsPerBlock)
            let tiles = (tr1 - tr0) * tw
            transformInputBlock(p, tileRows: tr0..<tr1, into: v)
            for xi in 0..<16 {
                sgemm(false, false, cOut, tiles, cIn, u + xi * cOut * cIn, cIn, v + xi * cIn * ld, ld,
                      beta: 0, m + xi * cOut * ld, ld)
            }
            // Output transform: Aᵀ M A per tile, cropped to the output.
            for oc in 0..<cOut {
                let b = bias?[oc] ?? 0
                let plane = y + oc * hOut * wOut
                for ti in tr0..<tr1 {
                    let r0 = 2 * ti, hasR1 = r0 + 1 < hOut
                    var tj = 0
                    while tj < tw {
                        let src = UnsafeRawPointer(m + oc * ld + (ti - tr0) * tw + tj)
                        @inline(__always) func mm(_ xi: Int) -> SIMD8<Float> {
                            src.loadUnaligned(fromByteOffset: 4 * xi * cOut * ld, as: SIMD8<Float>.self)
                        }
                        // Aᵀ M: rows (m0 + m1 + m2) and (m1 - m2 - m3) of each column j.
                        @inline(__always) func col(_ j: Int) -> (SIMD8<Float>, SIMD8<Float>) {
                            let m1 = mm(4 + j), m2 = mm(8 + j)
                            return (mm(j) + m1 + m2, m1 - m2 - mm(12 + j))
                        }
                        let c0 = col(0), c1 = col(1), c2 = col(2), c3 = col(3)
                        let y00 = c0.0 + c1.0 + c2.0 + b, y01 = c1.0 - c2.0 - c3.0 + b
                        let y10 = c0.1 + c1.1 + c2.1 + b, y11 = c1.1 - c2.1 - c3.1 + b
                        let row0 = plane + r0 * wOut, row1 = plane + (r0 + 1) * wOut
                        if hasR1 && 2 * (tj + 8) <= wOut {
                            // Whole group inside the output: two interleaved 16-wide row stores.
                            UnsafeMutableRawPointer(row0 + 2 * tj).storeBytes(of: interleave(y00, y01), as: SIMD16<Float>.self)
                            UnsafeMutableRawPointer(row1 + 2 * tj).storeBytes(of: interleave(y10, y11), as: SIMD16<Float>.self)
                            tj += 8
                            continue
                        }
                        let count = Swift.min(8, tw - tj)
                        for lane in 0..<count {
                            let col = 2 * (tj + lane)
                            row0[col] = y00[lane]
                            if col + 1 < wOut { row0[col + 1] = y01[lane] }
                            if hasR1 {
                                row1[col] = y10[lane]
                                if col + 1 < wOut { row1[col + 1] = y11[lane] }
                            }
                        }
                        tj += 8
                    }
                }
            }
            tr0 = tr1
        }
    }

    // The weight gradient is the adjoint of the tile formula w.r.t. g: for y = Aᵀ[(G g Gᵀ) ⊙ V]A,
    // dL/dg = Gᵀ [Σ_tiles (A gy Aᵀ) ⊙ V] G, so the sum over tiles is 16 GEMMs with the tiles as
    // the inner dimension, and the 4x4 -> 3x3 transform runs once per channel pair at the end.

    /// Row pitch of the zero-padded output-gradient copy (whole groups of 8 tiles).
    var gradPitch: Int { 2 * ((tw + 7) / 8 * 8) }
    var paddedGradCount: Int { cOut * 2 * th * gradPitch }

    /// Copies gy [cOut, hOut, wOut] into [cOut, 2·th, gradPitch] with zeros past the edges, so
    /// partial tiles contribute nothing.
    func padGradient(_ gy: UnsafePointer<Float>, _ p: UnsafeMutablePointer<Float>) {
        p.update(repeating: 0, count: paddedGradCount)
        for oc in 0..<cOut {
            for i in 0..<hOut {
                (p + (oc * 2 * th + i) * gradPitch).update(from: gy + (oc * hOut + i) * wOut, count: wOut)
            }
        }
    }

    /// Adds Σ_tiles (A gy Aᵀ) ⊙ (Bᵀ d B) for one image to `acc` [16][cOut][cIn]. `p` is the padded
    /// input (``pad(_:_:)``), `pg` the padded gradient (``padGradient(_:_:)``); `v` and `m` are
    /// block scratch of ``inputBlockCount`` and ``outputBlockCount`` floats.
    func accumulateWeightGradient(padded p: UnsafePointer<Float>, paddedGradient pg: UnsafePointer<Float>,
                                  acc: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>) {
        var tr0 = 0
        while tr0 < th {
            let tr1 = Swift.min(th, tr0 + rowsPerBlock)
            let tiles = (tr1 - tr0) * tw
            transformInputBlock(p, tileRows: tr0..<tr1, into: v)
            // A gy Aᵀ per 2x2 gradient tile: rows (g0, g0 + g1, g0 - g1, -g1), then the same on columns.
            for oc in 0..<cOut {
                for ti in tr0..<tr1 {
                    let r0 = UnsafeRawPointer(pg + (oc * 2 * th + 2 * ti) * gradPitch)
                    let r1 = r0 + 4 * gradPitch
                    let dst = m + oc * ld + (ti - tr0) * tw
                    let stride = cOut * ld
                    var tj = 0
                    while tj < tw {
                        let a = r0.loadUnaligned(fromByteOffset: 8 * tj, as: SIMD16<Float>.self)
                        let b = r1.loadUnaligned(fromByteOffset: 8 * tj, as: SIMD16<Float>.self)
                        let g00 = a.evenHalf, g01 = a.oddHalf, g10 = b.evenHalf, g11 = b.oddHalf
                        @inline(__always) func store(_ i: Int, _ x: SIMD8<Float>, _ y: SIMD8<Float>) {
                            let base = UnsafeMutableRawPointer(dst + 4 * i * stride + tj)
                            base.storeBytes(of: x, as: SIMD8<Float>.self)
                            base.storeBytes(of: x + y, toByteOffset: 4 * stride, as: SIMD8<Float>.self)
                            base.storeBytes(of: x - y, toByteOffset: 8 * stride, as: SIMD8<Float>.self)
                            base.storeBytes(of: -y, toByteOffset: 12 * stride, as: SIMD8<Float>.self)
                        }
                        store(0, g00, g01)
                        store(1, g00 + g10, g01 + g11)
                        store(2, g00 - g10, g01 - g11)
                        store(3, -g10, -g11)
                        tj += 8
                    }
                }
            }
            for xi in 0..<16 {
                sgemm(false, true, cOut, cIn, tiles, m + xi * cOut * ld, ld, v + xi * cIn * ld, ld,
                      beta: 1, acc + xi * cOut * cIn, cIn)
            }
            tr0 = tr1
        }
    }

    /// Gᵀ M G for every channel pair: the accumulated [16][cOut][cIn] to a weight gradient
    /// [cOut, cIn, 3, 3], added to `gw`.
    func finishWeightGradient(_ acc: UnsafePointer<Float>, into gw: UnsafeMutablePointer<Float>) {
        let pairs = cOut * cIn
        for pair in 0..<pairs {
            @inline(__always) func mt(_ xi: Int) -> Float { acc[xi * pairs + pair] }
            // Gᵀ M: rows (m0 + (m1 + m2)/2, (m1 - m2)/2, (m1 + m2)/2 + m3), then the same on columns.
            var r = SIMD16<Float>()
            for j in 0..<4 {
                let m0 = mt(j), m1 = mt(4 + j), m2 = mt(8 + j), m3 = mt(12 + j)
                r[j] = m0 + 0.5 * (m1 + m2); r[4 + j] = 0.5 * (m1 - m2); r[8 + j] = 0.5 * (m1 + m2) + m3
            }
            let out = gw + pair * 9
            for i in 0..<3 {
                let p0 = r[4 * i], p1 = r[4 * i + 1], p2 = r[4 * i + 2], p3 = r[4 * i + 3]
                out[3 * i] += p0 + 0.5 * (p1 + p2)
                out[3 * i + 1] += 0.5 * (p1 - p2)
                out[3 * i + 2] += 0.5 * (p1 + p2) + p3
            }
        }
    }
}

// MARK: - Raw kernels (no recording)

extension ConvGeometry {
    /// y [n, o, ho, wo] = conv(x, weight) + bias.
    func forward(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, lowering: ConvLowering? = nil) -> Tensor {
        let y = Tensor(uninitializedShape: [n, o, ho, wo])
        if y.count == 0 { return y }
        let xp = x.dataPointer, wt = weight.dataPointer, yp = y.dataPointer, bp = bias?.dataPointer
        let g = self
        switch resolve(lowering) {
        case .im2col:
            forEachChunk(n) { _, images in
                let col = g.isPointwise ? nil : KernelScratch(g.ckk * g.outPlane)
                for b in images {
                    let xi = xp + b * g.c * g.inPlane, yi = yp + b * g.o * g.outPlane
                    if let col { g.im2col(xi, col.pointer) }
                    sgemm(false, false, g.o, g.outPlane, g.ckk, wt, g.ckk, col?.pointer ?? xi, g.outPlane,
                          beta: 0, yi, g.outPlane)
                    if let bp {
                        for k in 0..<g.o { addScalar(bp[k], yi + k * g.outPlane, g.outPlane) }
                    }
                }
            }
        case .shifted:
            let wk = tapMajorWeight(wt)
            forEachChunk(n) { _, images in
                let padded = KernelScratch(g.c * g.chanPitch), acc = KernelScratch(g.o * g.ho * g.wp)
                let cols = g.ho * g.wp
                for b in images {
                    g.pad(xp + b * g.c * g.inPlane, padded.pointer)
                    for ki in 0..<g.kh {
                        for kj in 0..<g.kw {
                            let t = ki * g.kw + kj
                            sgemm(false, false, g.o, cols, g.c, wk.pointer + t * g.o * g.c, g.c,
                                  padded.pointer + g.tapOffset(ki, kj), g.chanPitch,
                                  beta: t == 0 ? 0 : 1, acc.pointer, cols)
                        }
                    }
                    let yi = yp + b * g.o * g.outPlane
                    for k in 0..<g.o {
                        let v = bp?[k] ?? 0
                        for i in 0..<g.ho {
                            let src = acc.pointer + (k * g.ho + i) * g.wp, dst = yi + (k * g.ho + i) * g.wo
                            for j in 0..<g.wo { dst[j] = src[j] + v }
                        }
                    }
                }
            }
        case .winograd:
            let plan = WinogradPlan(cIn: c, cOut: o, hIn: h, wIn: w, padH: ph, padW: pw)
            let u = WinogradPlan.transformWeight(wt, cOut: o, cIn: c, adjoint: false)
            forEachChunk(n) { _, images in
                let scratch = plan.makeScratch()
                for b in images {
                    plan.run(image: xp + b * g.c * g.inPlane, u: u.pointer, bias: bp, y: yp + b * g.o * g.outPlane, scratch: scratch)
                }
            }
        }
        return y
    }

    /// Gradients of `forward` w.r.t. its input ([n, c, h, w]) and weight ([o, c, kh, kw]) for the
    /// output cotangent `gy` [n, o, ho, wo]. `x` is needed only for the weight gradient, `weight`
    /// only for the input gradient. (The bias gradient is ``channelSums(_:)`` of `gy`.)
    func backward(_ gy: Tensor, x: Tensor?, weight: Tensor?,
                  lowering: ConvLowering? = nil) -> (input: Tensor?, weight: Tensor?) {
        let wantInput = weight != nil, wantWeight = x != nil
        let gx = wantInput ? Tensor(uninitializedShape: [n, c, h, w]) : nil
        let gw = wantWeight ? Tensor(shape: [o, c, kh, kw], repeating: 0) : nil
        if n * o * outPlane == 0 || ckk == 0 {
            gx?.dataPointer.update(repeating: 0, count: gx!.count)
            return (gx, gw)
        }
        let gyp = gy.dataPointer, xp = x?.dataPointer, wt = weight?.dataPointer, gxp = gx?.dataPointer
        let g = self
        let chunkCount = Swift.min(Threads.coreCount, n)
        // Per-chunk weight accumulators, reduced in chunk order afterwards (deterministic).
        let partials = (0..<(wantWeight ? chunkCount : 0)).map { _ in KernelScratch(g.o * g.ckk) }
        let lowering = resolve(lowering)
        var tapWeight: KernelScratch? = nil
        if lowering == .shifted, let wt { tapWeight = tapMajorWeight(wt) }
        // Winograd: the weight gradient uses the forward tiling of x; the input gradient is a 3x3
        // correlation of gy with the rotated, transposed kernel and padding 2 - p.
        let forwardPlan = lowering == .winograd ? WinogradPlan(cIn: c, cOut: o, hIn: h, wIn: w, padH: ph, padW: pw) : nil
        let inputPlan = lowering == .winograd && wantInput ? WinogradPlan(cIn: o, cOut: c, hIn: ho, wIn: wo, padH: 2 - ph, padW: 2 - pw) : nil
        let inputKernel = inputPlan.map { _ in WinogradPlan.transformWeight(wt!, cOut: c, cIn: o, adjoint: true) }
        forEachChunk(n) { t, images in
            let gwAcc = wantWeight ? partials[t].pointer : nil
            gwAcc?.update(repeating: 0, count: g.o * g.ckk)
            switch lowering {
            case .im2col:
                let col = wantWeight && !g.isPointwise ? KernelScratch(g.ckk * g.outPlane) : nil
                let dcol = wantInput && !g.isPointwise ? KernelScratch(g.ckk * g.outPlane) : nil
                for b in images {
                    let gyi = gyp + b * g.o * g.outPlane
                    if let xp, let gwAcc {
                        let xi = xp + b * g.c * g.inPlane
                        if let col { g.im2col(xi, col.pointer) }
                        sgemm(false, true, g.o, g.ckk, g.outPlane, gyi, g.outPlane, col?.pointer ?? xi, g.outPlane,
                              beta: 1, gwAcc, g.ckk)
                    }
                    if let wt, let gxp {
                        let gxi = gxp + b * g.c * g.inPlane
                        sgemm(true, false, g.ckk, g.outPlane, g.o, wt, g.ckk, gyi, g.outPlane,
                              beta: 0, dcol?.pointer ?? gxi, g.outPlane)
                        if let dcol { g.col2im(dcol.pointer, gxi) }
                    }
                }
            case .winograd:
                if let xp, let gwAcc, let plan = forwardPlan {
                    let scratch = plan.makeScratch(), paddedGrad = KernelScratch(plan.paddedGradCount)
                    let acc = KernelScratch(16 * g.o * g.c)
                    acc.pointer.update(repeating: 0, count: 16 * g.o * g.c)
                    for b in images {
                        plan.pad(xp + b * g.c * g.inPlane, scratch.padded.pointer)
                        plan.padGradient(gyp + b * g.o * g.outPlane, paddedGrad.pointer)
                        plan.accumulateWeightGradient(padded: scratch.padded.pointer, paddedGradient: paddedGrad.pointer,
                                                      acc: acc.pointer, v: scratch.v.pointer, m: scratch.m.pointer)
                    }
                    plan.finishWeightGradient(acc.pointer, into: gwAcc)
                }
                if let gxp, let plan = inputPlan, let kernel = inputKernel {
                    let scratch = plan.makeScratch()
                    for b in images {
                        plan.run(image: gyp + b * g.o * g.outPlane, u: kernel.pointer, bias: nil, y: gxp + b * g.c * g.inPlane,
                                 scratch: scratch)
                    }
                }
            case .shifted:
                let cols = g.ho * g.wp
                // gy on the padded row pitch; the columns past wo stay zero so the garbage columns of
                // the shifted products contribute nothing.
                let gyPitched = KernelScratch(g.o * cols)
                let padded = wantWeight ? KernelScratch(g.c * g.chanPitch) : nil
                let gxPadded = wantInput ? KernelScratch(g.c * g.chanPitch) : nil
                let gwTaps = wantWeight ? KernelScratch(g.taps * g.o * g.c) : nil
                gwTaps?.pointer.update(repeating: 0, count: g.taps * g.o * g.c)
                for r in 0..<(g.o * g.ho) {
                    (gyPitched.pointer + r * g.wp + g.wo).update(repeating: 0, count: g.wp - g.wo)
                }
                for b in images {
                    let gyi = gyp + b * g.o * g.outPlane
                    for r in 0..<(g.o * g.ho) { (gyPitched.pointer + r * g.wp).update(from: gyi + r * g.wo, count: g.wo) }
                    if let xp, let padded, let gwTaps {
                        g.pad(xp + b * g.c * g.inPlane, padded.pointer)
                        for ki in 0..<g.kh {
                            for kj in 0..<g.kw {
                                let t = ki * g.kw + kj
                                sgemm(false, true, g.o, g.c, cols, gyPitched.pointer, cols,
                                      padded.pointer + g.tapOffset(ki, kj), g.chanPitch,
                                      beta: 1, gwTaps.pointer + t * g.o * g.c, g.c)
                            }
                        }
                    }
                    if let tapWeight, let gxPadded, let gxp {
                        gxPadded.pointer.update(repeating: 0, count: g.c * g.chanPitch)
                        for ki in 0..<g.kh {
                            for kj in 0..<g.kw {
                                let t = ki * g.kw + kj
                                sgemm(true, false, g.c, cols, g.o, tapWeight.pointer + t * g.o * g.c, g.c,
                                      gyPitched.pointer, cols,
                                      beta: 1, gxPadded.pointer + g.tapOffset(ki, kj), g.chanPitch)
                            }
                        }
                        g.crop(gxPadded.pointer, gxp + b * g.c * g.inPlane)
                    }
                }
                if let gwTaps, let gwAcc {
                    for oc in 0..<(g.o * g.c) {
                        for t in 0..<g.taps { gwAcc[oc * g.taps + t] = gwTaps.pointer[t * g.o * g.c + oc] }
                    }
                }
            }
        }
        if let gwp = gw?.dataPointer {
            for p in partials {
                for i in 0..<(o * ckk) { gwp[i] += p.pointer[i] }
            }
        }
        return (gx, gw)
    }
}

/// Adds `v` to `count` floats (bias broadcast over one channel plane).
@inline(__always)
fileprivate func addScalar(_ v: Float, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    for j in 0..<count { p[j] += v }
}

/// Sum of `count` floats with several independent accumulators (a single running sum is a serial
/// dependency chain the compiler may not reorder).
@inline(__always)
fileprivate func rowSum(_ p: UnsafePointer<Float>, _ count: Int) -> Float {
    let raw = UnsafeRawPointer(p)
    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
    var j = 0
    while j + 32 <= count {
        a0 += raw.loadUnaligned(fromByteOffset: 4 * j, as: SIMD8<Float>.self)
        a1 += raw.loadUnaligned(fromByteOffset: 4 * (j + 8), as: SIMD8<Float>.self)
        a2 += raw.loadUnaligned(fromByteOffset: 4 * (j + 16), as: SIMD8<Float>.self)
        a3 += raw.loadUnaligned(fromByteOffset: 4 * (j + 24), as: SIMD8<Float>.self)
        j += 32
    }
    var s = ((a0 + a1) + (a2 + a3)).sum()
    while j < count { s += p[j]; j += 1 }
    return s
}

/// Sum of `g` [n, ch, ...] over every axis but 1: the bias gradient of conv layers.
fileprivate func channelSums(_ g: Tensor) -> Tensor {
    let n = g.shape[0], ch = g.shape[1], plane = g.count / Swift.max(n * ch, 1)
    let out = Tensor(shape: [ch], repeating: 0)
    let gp = g.dataPointer, op = out.dataPointer
    Threads.parallelRanges(ch, minChunk: Swift.max(1, 65536 / Swift.max(n * plane, 1))) { r in
        for k in r {
            var s: Float = 0
            for b in 0..<n { s += rowSum(gp + (b * ch + k) * plane, plane) }
            op[k] = s
        }
    }
    return out
}

// MARK: - Public ops

private func checkPositive(_ pair: (Int, Int), _ what: String, op: String, allowZero: Bool = false) {
    if pair.0 < (allowZero ? 0 : 1) || pair.1 < (allowZero ? 0 : 1) {
        fail(.invalidArgument(op: op, message: "\(what) must be \(allowZero ? "non-negative" : "positive"), found (\(pair.0), \(pair.1))"))
    }
}

/// Checks what conv2d and convTranspose2d share: an NCHW input, a 4-D weight holding the input's
/// channels in dimension 1 ([O, C, kh, kw]), or in dimension 0 when `transposed`
/// ([C_in, C_out, kh, kw]), a bias over the weight's other channel dimension, positive stride and
/// dilation, and non-negative padding.
private func checkConvArguments(op: String, input: Tensor, weight: Tensor, bias: Tensor?, transposed: Bool,
                                stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int)) {
    if input.rank != 4 {
        fail(.shapeMismatch(op: op, expected: transposed ? "input [N, C_in, H, W]" : "input [N, C, H, W]", found: "\(input.shape)"))
    }
    let inAxis = transposed ? 0 : 1, outAxis = 1 - inAxis
    if weight.rank != 4 || weight.shape[inAxis] != input.shape[1] {
        let layout = transposed ? "[\(input.shape[1]), C_out, kh, kw]" : "[O, \(input.shape[1]), kh, kw]"
        fail(.shapeMismatch(op: op, expected: "weight \(layout) for input \(input.shape)", found: "\(weight.shape)"))
    }
    if let bias, bias.shape != [weight.shape[outAxis]] {
        fail(.shapeMismatch(op: op, expected: "bias [\(weight.shape[outAxis])]", found: "\(bias.shape)"))
    }
    checkPositive(stride, "stride", op: op)
    checkPositive(dilation, "dilation", op: op)
    checkPositive(padding, "padding", op: op, allowZero: true)
}

/// 2-D cross-correlation over NCHW tensors, like PyTorch's `F.conv2d` (groups = 1).
///
/// - Parameters:
///   - input: [N, C, H, W].
///   - weight: [O, C, kh, kw] (PyTorch layout).
///   - bias: [O] or `nil`.
/// - Returns: [N, O, Ho, Wo] with `Ho = (H + 2·padding - dilation·(kh - 1) - 1) / stride + 1`.
public func conv2d(_ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1),
                   padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1)) -> Tensor {
    conv2d(input, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, lowering: nil)
}

/// ``conv2d(_:weight:bias:stride:padding:dilation:)`` with the lowering forced (for tests).
func conv2d(_ input: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int),
            dilation: (Int, Int), lowering: ConvLowering?) -> Tensor {
    let op = "conv2d"
    checkConvArguments(op: op, input: input, weight: weight, bias: bias, transposed: false,
                       stride: stride, padding: padding, dilation: dilation)
    let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    let (o, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3])
    let hNum = h + 2 * padding.0 - dilation.0 * (kh - 1) - 1, wNum = w + 2 * padding.1 - dilation.1 * (kw - 1) - 1
    if hNum < 0 || wNum < 0 || kh < 1 || kw < 1 {
        fail(.shapeMismatch(op: op, expected: "a padded input at least as large as the dilated kernel (\(kh)x\(kw), dilation \(dilation), padding \(padding))",
                            found: "input \(input.shape)"))
    }
    let g = ConvGeometry(n: n, c: c, h: h, w: w, o: o, kh: kh, kw: kw, sh: stride.0, sw: stride.1,
                         ph: padding.0, pw: padding.1, dh: dilation.0, dw: dilation.1,
                         ho: hNum / stride.0 + 1, wo: wNum / stride.1 + 1)
    let xd = input.detached(), wd = weight.detached()
    let y = g.forward(xd, wd, bias?.detached(), lowering: lowering)
    let inputs = [input, weight] + (bias.map { [$0] } ?? [])
    guard GradMode.isEnabled, inputs.contains(where: { $0.isTracked }) else { return y }
    let needX = input.isTracked, needW = weight.isTracked, needB = bias?.isTracked ?? false, hasBias = bias != nil
    return Tensor.record(op, output: y, inputs: inputs) { gy in
        let (gx, gw) = needX || needW ? g.backward(gy, x: needW ? xd : nil, weight: needX ? wd : nil, lowering: lowering) : (nil, nil)
        return [gx, gw] + (hasBias ? [needB ? channelSums(gy) : nil] : [])
    }
}

/// 2-D transposed convolution ("deconvolution"), like PyTorch's `F.conv_transpose2d` (groups = 1):
/// the adjoint of ``conv2d(_:weight:bias:stride:padding:dilation:)`` with the same arguments.
///
/// - Parameters:
///   - input: [N, C_in, H, W].
///   - weight: [C_in, C_out, kh, kw] (PyTorch `ConvTranspose2d` layout).
///   - outputPadding: extra rows/columns on the bottom/right; must be smaller than stride or dilation.
/// - Returns: [N, C_out, Ho, Wo] with `Ho = (H - 1)·stride - 2·padding + dilation·(kh - 1) + outputPadding + 1`.
public func convTranspose2d(_ input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1),
                            padding: (Int, Int) = (0, 0), outputPadding: (Int, Int) = (0, 0),
                            dilation: (Int, Int) = (1, 1)) -> Tensor {
    convTranspose2d(input, weight: weight, bias: bias, stride: stride, padding: padding, outputPadding: outputPadding,
                    dilation: dilation, lowering: nil)
}

/// ``convTranspose2d(_:weight:bias:stride:padding:outputPadding:dilation:)`` with the lowering forced (for tests).
func convTranspose2d(_ input: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int),
                     outputPadding: (Int, Int), dilation: (Int, Int), lowering: ConvLowering?) -> Tensor {
    let op = "convTranspose2d"
    checkConvArguments(op: op, input: input, weight: weight, bias: bias, transposed: true,
                       stride: stride, padding: padding, dilation: dilation)
    checkPositive(outputPadding, "outputPadding", op: op, allowZero: true)
    if !(outputPadding.0 < stride.0 || outputPadding.0 < dilation.0) || !(outputPadding.1 < stride.1 || outputPadding.1 < dilation.1) {
        fail(.invalidArgument(op: op, message: "outputPadding must be smaller than stride or dilation, found outputPadding \(outputPadding) with stride \(stride) and dilation \(dilation)"))
    }
    let (n, cin, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    let (cout, kh, kw) = (weight.shape[1], weight.shape[2], weight.shape[3])
    let hOut = (h - 1) * stride.0 - 2 * padding.0 + dilation.0 * (kh - 1) + outputPadding.0 + 1
    let wOut = (w - 1) * stride.1 - 2 * padding.1 + dilation.1 * (kw - 1) + outputPadding.1 + 1
    if hOut < 1 || wOut < 1 || kh < 1 || kw < 1 {
        fail(.shapeMismatch(op: op, expected: "a positive output size (padding \(padding) is too large for kernel \(kh)x\(kw))",
                            found: "input \(input.shape) giving \(hOut)x\(wOut)"))
    }
    // The conv whose input-gradient this is: conv input [n, cout, hOut, wOut], output [n, cin, h, w].
    let g = ConvGeometry(n: n, c: cout, h: hOut, w: wOut, o: cin, kh: kh, kw: kw, sh: stride.0, sw: stride.1,
                         ph: padding.0, pw: padding.1, dh: dilation.0, dw: dilation.1, ho: h, wo: w)
    let xd = input.detached(), wd = weight.detached()
    let y = g.backward(xd, x: nil, weight: wd, lowering: lowering).input!
    if let bias {
        let yp = y.dataPointer, bp = bias.dataPointer, plane = hOut * wOut
        Threads.parallelRanges(n * cout, minChunk: Swift.max(1, 65536 / plane)) { r in
            for p in r { addScalar(bp[p % cout], yp + p * plane, plane) }
        }
    }
    let inputs = [input, weight] + (bias.map { [$0] } ?? [])
    guard GradMode.isEnabled, inputs.contains(where: { $0.isTracked }) else { return y }
    let needX = input.isTracked, needW = weight.isTracked, needB = bias?.isTracked ?? false, hasBias = bias != nil
    return Tensor.record(op, output: y, inputs: inputs) { gy in
        let gx = needX ? g.forward(gy, wd, nil, lowering: lowering) : nil
        let gw = needW ? g.backward(xd, x: gy, weight: nil, lowering: lowering).weight : nil
        return [gx, gw] + (hasBias ? [needB ? channelSums(gy) : nil] : [])
    }
}
