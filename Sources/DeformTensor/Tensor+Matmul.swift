import Foundation
import CBLAS

extension Tensor {
    /// Matrix product with NumPy semantics: 1-D operands are promoted, leading batch dimensions
    /// broadcast. Runs on `cblas_sgemm`; a batched left operand times a 2-D right operand is folded
    /// into one GEMM.
    public func matmul(_ other: Tensor) -> Tensor {
        if rank == 0 || other.rank == 0 {
            fail(.shapeMismatch(op: "matmul", expected: "operands of rank >= 1", found: "\(shape) and \(other.shape)"))
        }
        if rank == 1 && other.rank == 1 { return unsqueezed(0).matmul(other.unsqueezed(1)).reshaped([]) }
        if rank == 1 { return unsqueezed(0).matmul(other).squeezed([-2]) }
        if other.rank == 1 { return matmul(other.unsqueezed(1)).squeezed([-1]) }
        let m = shape[rank - 2], k = shape[rank - 1], k2 = other.shape[other.rank - 2], n = other.shape[other.rank - 1]
        if k != k2 {
            fail(.shapeMismatch(op: "matmul", expected: "inner dimensions to agree (\(k) columns on the left)",
                                found: "\(shape) @ \(other.shape)"))
        }
        let a = self, b = other
        if b.rank == 2 {
            // Fold all batch dims of `a` into rows: one large GEMM.
            // Row count from the shape, not count / k, so that k == 0 works.
            let rows = shape.dropLast().reduce(1, *)
            let y = Tensor.gemm(a.reshapedRaw([rows, k]), b, transA: false, transB: false)
                .reshapedRaw(Array(shape.dropLast()) + [n])
            guard GradMode.isEnabled, a.gradRef != nil || b.gradRef != nil else { return y }
            let ad = a.detached(), bd = b.detached()
            return Tensor.record("matmul", output: y, inputs: [a, b]) { g in
                let g2 = g.reshapedRaw([rows, n])
                let a2 = ad.reshapedRaw([rows, k])
                return [a.isTracked ? Tensor.gemm(g2, bd, transA: false, transB: true).reshapedRaw(ad.shape) : nil,
                        b.isTracked ? Tensor.gemm(a2, g2, transA: true, transB: false) : nil]
            }
        }
        let batchShape: [Int]
        do { batchShape = try broadcastShapes(Array(a.shape.dropLast(2)), Array(b.shape.dropLast(2)), op: "matmul (batch dimensions)") }
        catch let e as TensorError { fail(e) } catch { fatalError("\(error)") }
        let ae = a.broadcastRaw(to: batchShape + [m, k]), be = b.broadcastRaw(to: batchShape + [k, n])
        let y = Tensor.gemm(ae, be, transA: false, transB: false)
        guard GradMode.isEnabled, a.gradRef != nil || b.gradRef != nil else { return y }
        let sa = a.shape, sb = b.shape
        return Tensor.record("matmul", output: y, inputs: [a, b]) { g in
            [a.isTracked ? Tensor.gemm(g, be, transA: false, transB: true).sumTo(sa) : nil,
             b.isTracked ? Tensor.gemm(ae, g, transA: true, transB: false).sumTo(sb) : nil]
        }
    }

    /// Same storage, new shape, no recording (internal fast path).
    func reshapedRaw(_ s: [Int]) -> Tensor {
        var t = detached()
        t.setShapeSameCount(s)
        return t
    }

    /// Raw batched GEMM, no recording: `op(a) @ op(b)` where `op` transposes the last two dims when
    /// asked. `a` is [B..., r, c]; `b` is [B..., r, c] with the same batch dims, or 2-D (shared).
    public static func gemm(_ a: Tensor, _ b: Tensor, transA: Bool, transB: Bool, alpha: Float = 1) -> Tensor {
        precondition(a.rank >= 2 && b.rank >= 2, "gemm: operands need rank >= 2, got \(a.shape) and \(b.shape)")
        let ar = a.shape[a.rank - 2], ac = a.shape[a.rank - 1], br = b.shape[b.rank - 2], bc = b.shape[b.rank - 1]
        let m = transA ? ac : ar, k = transA ? ar : ac
        let kb = transB ? bc : br, n = transB ? br : bc
        precondition(k == kb, "gemm: inner dimensions differ: \(a.shape)\(transA ? "ᵀ" : "") @ \(b.shape)\(transB ? "ᵀ" : "")")
        let batchA = Array(a.shape.dropLast(2))
        let sharedB = b.rank == 2
        precondition(sharedB || Array(b.shape.dropLast(2)) == batchA, "gemm: batch dims differ: \(a.shape) and \(b.shape)")
        let batch = batchA.reduce(1, *)
        var out = Tensor(uninitializedShape: batchA + [m, n])
        if out.count == 0 { return out }
        if k == 0 { out.dataPointer.update(repeating: 0, count: out.count); return out }
        let pa = a.dataPointer, pb = b.dataPointer, pc = out.dataPointer
        let lda = Int32(ac), ldb = Int32(bc), ldc = Int32(n)
        let ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans
        let strideA = ar * ac, strideB = sharedB ? 0 : br * bc, strideC = m * n
        func one(_ i: Int) {
            Threads.blasCall { cblas_sgemm(CblasRowMajor, ta, tb, Int32(m), Int32(n), Int32(k), alpha,
                        pa + i * strideA, lda, pb + i * strideB, ldb, 0, pc + i * strideC, ldc) }
        }
        // Small matrices in a batch: one thread per matrix; large ones: let BLAS thread each GEMM.
        if batch > 1 && m * n * k <= 96 * 96 * 96 && Threads.coreCount > 1 {
            Threads.withSingleThreadedBLAS {
                Threads.parallelRanges(batch) { r in for i in r { one(i) } }
            }
        } else {
            for i in 0..<batch {
                parallelSgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                              a: pa + i * strideA, lda: ac, b: pb + i * strideB, ldb: bc, c: pc + i * strideC, ldc: n)
            }
        }
        return out
    }
}

/// Matrix product (see ``Tensor/matmul(_:)``).
public func matmul(_ a: Tensor, _ b: Tensor) -> Tensor { a.matmul(b) }

/// Row-major `C = alpha·op(A)·op(B) + beta·C` on `cblas_sgemm`, split across the cores by us when
/// the product is large enough: the rows (or columns) of C are cut into one block per core and
/// each block runs single-threaded BLAS.
///
/// Why not OpenBLAS's own threads: for the tall-skinny products of small networks (e.g. 1102 x 256
/// x 128) they gave no wall-clock gain here, and their spinning workers steal the second core from
/// our parallel elementwise kernels. Measured on the NRSfM training step.
public func parallelSgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                          a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                          beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    let ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans
    func block(rows r0: Int, _ r1: Int, cols c0: Int, _ c1: Int) {
        // Row block of op(A): rows of A, or columns of A when transposed; likewise for op(B).
        let pa = transA ? a + r0 : a + r0 * lda
        let pb = transB ? b + c0 * ldb : b + c0
        Threads.blasCall { cblas_sgemm(CblasRowMajor, ta, tb, Int32(r1 - r0), Int32(c1 - c0), Int32(k), alpha,
                    pa, Int32(lda), pb, Int32(ldb), beta, c + r0 * ldc + c0, Int32(ldc)) }
    }
    let cores = Threads.coreCount
    let flops = 2 * m * n * k
    // Smaller products (e.g. batch-128 MLP layers) measured faster left to OpenBLAS as they are.
    guard cores > 1, flops >= 1 << 24, max(m, n) >= 128 * cores else {
        block(rows: 0, m, cols: 0, n)
        return
    }
    Threads.withSingleThreadedBLAS {
        if m >= n {
            Threads.parallelRanges(m, minChunk: 16) { r in block(rows: r.lowerBound, r.upperBound, cols: 0, n) }
        } else {
            Threads.parallelRanges(n, minChunk: 16) { r in block(rows: 0, m, cols: r.lowerBound, r.upperBound) }
        }
    }
}
