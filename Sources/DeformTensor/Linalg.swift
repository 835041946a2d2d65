import Foundation
import CBLAS

/// Small dense linear algebra with gradients, batched over leading dimensions.
///
/// Every function takes matrices as the last two dimensions (`[..., m, n]`) and throws
/// ``TensorError``: `.shapeMismatch` naming expected and found shapes, `.nonFinite` for NaN/Inf
/// input, `.lapack` when a factorisation fails (a singular matrix in ``solve(_:_:)`` or
/// ``inverse(_:)``). All are differentiable w.r.t. their tensor inputs.
///
/// The general routines call LAPACK in Double: the matrices are small, so converting costs little,
/// while the gradients divide by gaps between singular values or eigenvalues and are only as good
/// as the decomposition; Double makes the Float32 outputs essentially correctly rounded.
/// Batches of small matrices run across cores with single-threaded BLAS; a single large matrix lets
/// BLAS/LAPACK thread itself. For batches of 3x3 matrices use ``svd3x3(_:)`` and
/// ``projectToSO3(_:)``, which avoid LAPACK entirely.
public enum Linalg {
    /// Row-major Double product `op(A) op(B)` through `cblas_dgemm`, for solvers that keep their
    /// own Double matrices: A is `[aRows, aCols]`, B `[bRows, bCols]`; returns the `[m, n]` result.
    public static func doubleProduct(_ a: [Double], rows aRows: Int, cols aCols: Int, _ b: [Double], rows bRows: Int, cols bCols: Int,
                                     transA: Bool = false, transB: Bool = false, op: String) -> (data: [Double], rows: Int, cols: Int) {
        let m = transA ? aCols : aRows, k = transA ? aRows : aCols
        let kb = transB ? bCols : bRows, n = transB ? bRows : bCols
        precondition(k == kb, "\(op): inner dimensions \(k) and \(kb) differ")
        var c = [Double](repeating: 0, count: m * n)
        if m == 0 || n == 0 || k == 0 { return (c, m, n) }
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    Threads.blasCall { cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                                Int32(m), Int32(n), Int32(k), 1, pa.baseAddress, Int32(aCols),
                                pb.baseAddress, Int32(bCols), 0, pc.baseAddress, Int32(n)) }
                }
            }
        }
        return (c, m, n)
    }
}

// MARK: - Double matrices for kernels

/// Row-major Double matrix used inside kernels and backward passes.
struct DMat {
    var rows: Int, cols: Int
    var data: [Double]

    init(rows: Int, cols: Int) {
        self.rows = rows; self.cols = cols
        data = [Double](repeating: 0, count: rows * cols)
    }

    /// Loads the first `cols` columns of a row-major Float block with `stride` columns.
    init(_ p: UnsafePointer<Float>, rows: Int, cols: Int, stride: Int? = nil) {
        self.init(rows: rows, cols: cols)
        let ld = stride ?? cols
        for i in 0..<rows { for j in 0..<cols { data[i * cols + j] = Double(p[i * ld + j]) } }
    }

    static func identity(_ n: Int) -> DMat {
        var m = DMat(rows: n, cols: n)
        for i in 0..<n { m.data[i * n + i] = 1 }
        return m
    }

    @inline(__always) subscript(i: Int, j: Int) -> Double {
        get { data[i * cols + j] }
        set { data[i * cols + j] = newValue }
    }

    func store(to p: UnsafeMutablePointer<Float>) {
        for i in 0..<data.count { p[i] = Float(data[i]) }
    }

    var transposed: DMat {
        var t = DMat(rows: cols, cols: rows)
        for i in 0..<rows { for j in 0..<cols { t.data[j * rows + i] = data[i * cols + j] } }
        return t
    }

    /// `op(a) op(b)` through `cblas_dgemm`.
    static func mul(_ a: DMat, _ b: DMat, transA: Bool = false, transB: Bool = false) -> DMat {
        let r = Linalg.doubleProduct(a.data, rows: a.rows, cols: a.cols, b.data, rows: b.rows, cols: b.cols,
                                     transA: transA, transB: transB, op: "DMat.mul")
        var c = DMat(rows: r.rows, cols: r.cols)
        c.data = r.data
        return c
    }

    static func + (a: DMat, b: DMat) -> DMat {
        var c = a
        for i in 0..<c.data.count { c.data[i] += b.data[i] }
        return c
    }

    static func - (a: DMat, b: DMat) -> DMat {
        var c = a
        for i in 0..<c.data.count { c.data[i] -= b.data[i] }
        return c
    }

    static func * (a: Double, b: DMat) -> DMat {
        var c = b
        for i in 0..<c.data.count { c.data[i] *= a }
        return c
    }

    /// Scales column `j` by `d[j]` (right-multiplication by a diagonal).
    func scalingColumns(_ d: [Double]) -> DMat {
        var c = self
        for i in 0..<rows { for j in 0..<cols { c.data[i * cols + j] *= d[j] } }
        return c
    }
}

// MARK: - Shared plumbing

extension Linalg {
    /// Splits `[..., m, n]` into batch shape and matrix size.
    static func matrixShape(_ a: Tensor, op: String, square: Bool) throws -> (batch: [Int], m: Int, n: Int) {
        guard a.rank >= 2 else {
            throw TensorError.shapeMismatch(op: op, expected: square ? "a tensor of shape [..., n, n]" : "a tensor of shape [..., m, n]",
                                            found: "\(a.shape)")
        }
        let m = a.shape[a.rank - 2], n = a.shape[a.rank - 1]
        if square && m != n {
            throw TensorError.shapeMismatch(op: op, expected: "square matrices [..., n, n]", found: "\(a.shape)")
        }
        try checkFinite(a, op: op)
        return (Array(a.shape.dropLast(2)), m, n)
    }

    /// Runs `body` for every matrix of a batch: across cores with 1-thread BLAS for many small
    /// matrices, sequentially (letting LAPACK thread) for few large ones.
    static func forEachMatrix(_ count: Int, size: Int, _ body: (Int) -> Void) {
        if count > 1 && size <= 256 && Threads.coreCount > 1 {
            Threads.withSingleThreadedBLAS {
                Threads.parallelRanges(count) { r in for i in r { body(i) } }
            }
        } else {
            for i in 0..<count { body(i) }
        }
    }

    /// Like ``forEachMatrix(_:size:_:)`` for bodies returning a LAPACK `info`; throws for the first
    /// failing matrix, naming its position in the batch.
    static func forEachMatrixChecked(_ count: Int, size: Int, op: String, batchShape: [Int],
                                     _ body: (Int) -> Int32) throws {
        var infos = [Int32](repeating: 0, count: count)
        infos.withUnsafeMutableBufferPointer { p in
            forEachMatrix(count, size: size) { i in p[i] = body(i) }
        }
        if let i = infos.firstIndex(where: { $0 != 0 }) {
            throw TensorError.lapack(op: count > 1 || !batchShape.isEmpty ? "\(op) (matrix \(i) of batch \(batchShape))" : op,
                                     info: infos[i])
        }
    }

    /// LU factorisation in place; returns LAPACK's `info`, or `n + 1` (as `dgesvx` does) when the
    /// matrix is singular to working precision (reciprocal 1-norm condition number below ε).
    static func luFactor(_ a: inout DMat, _ pivots: inout [Int32]) -> Int32 {
        let n = a.rows
        if n == 0 { return 0 }
        var anorm = 0.0
        for j in 0..<n {
            var s = 0.0
            for i in 0..<n { s += Swift.abs(a[i, j]) }
            anorm = Swift.max(anorm, s)
        }
        pivots = [Int32](repeating: 0, count: n)
        let info = Threads.blasCall { LAPACKE_dgetrf(LAPACK_ROW_MAJOR, Int32(n), Int32(n), &a.data, Int32(n), &pivots) }
        if info != 0 { return info }
        var rcond = 0.0
        let cinfo = Threads.blasCall { LAPACKE_dgecon(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "1")), Int32(n), a.data, Int32(n), anorm, &rcond) }
        if cinfo != 0 { return cinfo }
        return rcond < Double.ulpOfOne / 2 ? Int32(n + 1) : 0
    }

    /// Thin or full SVD of one matrix in Double: `dgesdd`, falling back to `dgesvd` in the rare case
    /// the divide-and-conquer iteration fails to converge.
    static func svdKernel(_ a: DMat, full: Bool) -> (u: DMat, s: [Double], vt: DMat, info: Int32) {
        let m = a.rows, n = a.cols, k = Swift.min(m, n)
        let ucols = full ? m : k, vrows = full ? n : k
        var u = DMat(rows: m, cols: ucols), vt = DMat(rows: vrows, cols: n)
        var s = [Double](repeating: 0, count: k)
        if k == 0 {
            if full { u = DMat.identity(m); vt = DMat.identity(n) }
            return (u, s, vt, 0)
        }
        var work = a
        var info = Threads.blasCall { LAPACKE_dgesdd(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: full ? "A" : "S")), Int32(m), Int32(n),
                                  &work.data, Int32(n), &s, &u.data, Int32(ucols), &vt.data, Int32(n)) }
        if info > 0 {
            work = a
            var superb = [Double](repeating: 0, count: Swift.max(k - 1, 1))
            let job = CChar(UInt8(ascii: full ? "A" : "S"))
            info = Threads.blasCall { LAPACKE_dgesvd(LAPACK_ROW_MAJOR, job, job, Int32(m), Int32(n), &work.data, Int32(n), &s,
                                  &u.data, Int32(ucols), &vt.data, Int32(n), &superb) }
        }
        return (u, s, vt, info)
    }

    /// `1/d` for a gap `d` known to be `<= 0` (`negative`) or `>= 0`, clamped away from zero.
    @inline(__always) static func inverseGap(_ d: Double, negative: Bool, floor: Double) -> Double {
        1 / (negative ? Swift.min(d, -floor) : Swift.max(d, floor))
    }
}

// MARK: - SVD

extension Linalg {
    /// Singular value decomposition `a = u diag(s) vᵀ` of `[..., m, n]` (LAPACK `dgesdd` in Double).
    ///
    /// - Parameter fullMatrices: `false` (default, like `torch.linalg.svd(full_matrices=False)`)
    ///   returns `u` `[..., m, k]` and `v` `[..., n, k]` with `k = min(m, n)`; `true` returns square
    ///   `u` `[..., m, m]` and `v` `[..., n, n]`.
    /// - Returns: `s` `[..., k]` non-negative and descending; `v` is V, not Vᴴ.
    ///
    /// Gradient: Townsend's thin-SVD formula, including the `(I - uuᵀ) ū s⁻¹ vᵀ` and
    /// `u s⁻¹ v̄ᵀ (I - vvᵀ)` terms of non-square matrices. As in PyTorch, with `fullMatrices` the
    /// cotangents of the columns beyond `k` are ignored (those columns are an arbitrary basis).
    /// Differences of squared singular values below Float32 resolution are clamped, so the gradient
    /// stays finite at ties (where the singular vectors themselves are not unique).
    public static func svd(_ a: Tensor, fullMatrices: Bool = false) throws -> (u: Tensor, s: Tensor, v: Tensor) {
        let (batchShape, m, n) = try matrixShape(a, op: "svd", square: false)
        let k = Swift.min(m, n), batch = shapeCount(batchShape)
        let ucols = fullMatrices ? m : k, vcols = fullMatrices ? n : k
        let u = Tensor(uninitializedShape: batchShape + [m, ucols])
        let s = Tensor(uninitializedShape: batchShape + [k])
        let v = Tensor(uninitializedShape: batchShape + [n, vcols])
        let pa = a.dataPointer, pu = u.dataPointer, ps = s.dataPointer, pv = v.dataPointer
        try forEachMatrixChecked(batch, size: Swift.max(m, n), op: "svd", batchShape: batchShape) { b in
            let r = svdKernel(DMat(pa + b * m * n, rows: m, cols: n), full: fullMatrices)
            if r.info != 0 { return r.info }
            r.u.store(to: pu + b * m * ucols)
            for i in 0..<k { ps[b * k + i] = Float(r.s[i]) }
            r.vt.transposed.store(to: pv + b * n * vcols)
            return 0
        }
        let outs = Tensor.recordMulti("svd", outputs: [u, s, v], inputs: [a]) { cots in
            [svdBackward(u: u, s: s, v: v, gu: cots[0], gs: cots[1], gv: cots[2], m: m, n: n)]
        }
        return (outs[0], outs[1], outs[2])
    }

    static func svdBackward(u: Tensor, s: Tensor, v: Tensor, gu: Tensor?, gs: Tensor?, gv: Tensor?, m: Int, n: Int) -> Tensor {
        let k = Swift.min(m, n), batch = k == 0 ? 0 : s.count / k
        let ucols = u.shape[u.rank - 1], vcols = v.shape[v.rank - 1]
        let ga = Tensor(shape: Array(u.shape.dropLast(2)) + [m, n], repeating: 0)
        let pu = u.dataPointer, ps = s.dataPointer, pv = v.dataPointer, po = ga.dataPointer
        let pgu = gu?.dataPointer, pgs = gs?.dataPointer, pgv = gv?.dataPointer
        forEachMatrix(batch, size: Swift.max(m, n)) { b in
            let U = DMat(pu + b * m * ucols, rows: m, cols: k, stride: ucols)
            let V = DMat(pv + b * n * vcols, rows: n, cols: k, stride: vcols)
            let sv = (0..<k).map { Double(ps[b * k + $0]) }
            let gU = pgu.map { DMat($0 + b * m * ucols, rows: m, cols: k, stride: ucols) }
            let gV = pgv.map { DMat($0 + b * n * vcols, rows: n, cols: k, stride: vcols) }
            let J = gU.map { DMat.mul(U, $0, transA: true) }
            let K = gV.map { DMat.mul(V, $0, transA: true) }
            let floor = gapFloor(sv[0] * sv[0])
            var M = DMat(rows: k, cols: k)
            for i in 0..<k {
                M[i, i] = pgs.map { Double($0[b * k + i]) } ?? 0
                for j in 0..<k where j != i {
                    var t = 0.0
                    if let J { t += (J[i, j] - J[j, i]) * sv[j] }
                    if let K { t += sv[i] * (K[i, j] - K[j, i]) }
                    M[i, j] = t * inverseGap(sv[j] * sv[j] - sv[i] * sv[i], negative: j > i, floor: floor)
                }
            }
            // Zero singular values of a non-square matrix make these terms genuinely infinite;
            // clamp like the gaps so the result stays finite.
            let sFloor = gapFloor(sv[0])
            let sInv = sv.map { 1 / Swift.max($0, sFloor) }
            var inner = DMat.mul(M, V, transB: true)                          // k x n
            if let gV, let K, n > k {
                let r = gV - DMat.mul(V, K)                                    // (I - VVᵀ) V̄, n x k
                for i in 0..<k { for c in 0..<n { inner[i, c] += sInv[i] * r[c, i] } }
            }
            var gA = DMat.mul(U, inner)
            if let gU, let J, m > k {
                let r = (gU - DMat.mul(U, J)).scalingColumns(sInv)               // (I - UUᵀ) Ū S⁻¹, m x k
                gA = gA + DMat.mul(r, V, transB: true)
            }
            gA.store(to: po + b * m * n)
        }
        return ga
    }
}

// MARK: - Symmetric eigendecomposition

extension Linalg {
    /// Eigenvalues (ascending) and orthonormal eigenvectors (as columns) of symmetric `[..., n, n]`
    /// matrices (LAPACK `dsyevd` in Double).
    ///
    /// The input is symmetrised, `(a + aᵀ)/2`, before decomposing, so the returned gradient — the
    /// symmetric one PyTorch's `linalg.eigh` returns — is the exact gradient of what was computed.
    /// For symmetric inputs the values equal PyTorch's (which reads the lower triangle).
    /// Gaps between eigenvalues below Float32 resolution are clamped so the gradient stays finite.
    public static func eigh(_ a: Tensor) throws -> (values: Tensor, vectors: Tensor) {
        let (batchShape, n, _) = try matrixShape(a, op: "eigh", square: true)
        let batch = shapeCount(batchShape)
        let w = Tensor(uninitializedShape: batchShape + [n])
        let vecs = Tensor(uninitializedShape: a.shape)
        let pa = a.dataPointer, pw = w.dataPointer, pv = vecs.dataPointer
        try forEachMatrixChecked(batch, size: n, op: "eigh", batchShape: batchShape) { b in
            if n == 0 { return 0 }
            var s = DMat(rows: n, cols: n)
            let p = pa + b * n * n
            for i in 0..<n { for j in 0..<n { s[i, j] = 0.5 * (Double(p[i * n + j]) + Double(p[j * n + i])) } }
            var values = [Double](repeating: 0, count: n)
            let info = Threads.blasCall { LAPACKE_dsyevd(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "L")),
                                      Int32(n), &s.data, Int32(n), &values) }
            if info != 0 { return info }
            for i in 0..<n { pw[b * n + i] = Float(values[i]) }
            s.store(to: pv + b * n * n)
            return 0
        }
        let outs = Tensor.recordMulti("eigh", outputs: [w, vecs], inputs: [a]) { cots in
            [eighBackward(values: w, vectors: vecs, gw: cots[0], gv: cots[1], n: n)]
        }
        return (outs[0], outs[1])
    }

    /// `ā = V [diag(λ̄) + (VᵀV̄ - V̄ᵀV) / (2(λ_j - λ_i))] Vᵀ`, symmetric.
    static func eighBackward(values: Tensor, vectors: Tensor, gw: Tensor?, gv: Tensor?, n: Int) -> Tensor {
        let batch = n == 0 ? 0 : values.count / n
        let ga = Tensor(shape: vectors.shape, repeating: 0)
        let pw = values.dataPointer, pv = vectors.dataPointer, po = ga.dataPointer
        let pgw = gw?.dataPointer, pgv = gv?.dataPointer
        forEachMatrix(batch, size: n) { b in
            let V = DMat(pv + b * n * n, rows: n, cols: n)
            let lam = (0..<n).map { Double(pw[b * n + $0]) }
            let K = pgv.map { DMat.mul(V, DMat($0 + b * n * n, rows: n, cols: n), transA: true) }
            let floor = gapFloor(lam.map { Swift.abs($0) }.max() ?? 0)
            var M = DMat(rows: n, cols: n)
            for i in 0..<n {
                M[i, i] = pgw.map { Double($0[b * n + i]) } ?? 0
                if let K {
                    for j in 0..<n where j != i {
                        M[i, j] = 0.5 * (K[i, j] - K[j, i]) * inverseGap(lam[j] - lam[i], negative: j < i, floor: floor)
                    }
                }
            }
            DMat.mul(DMat.mul(V, M), V, transB: true).store(to: po + b * n * n)
        }
        return ga
    }
}

// MARK: - Solve, inverse, determinant, pseudo-inverse

extension Linalg {
    /// Solves `a x = b` by LU with partial pivoting (LAPACK `dgetrf`/`dgetrs` in Double).
    ///
    /// Follows `torch.linalg.solve`: `a` is `[..., n, n]`; `b` is `[..., n, k]`, or a batch of
    /// vectors `[..., n]` when it is 1-D or its shape is `a.shape.dropLast()`. Batch dimensions
    /// broadcast. Gradients: `b̄ = a⁻ᵀ x̄`, `ā = -b̄ xᵀ`.
    /// - Throws: `.lapack` when a matrix is singular: `info = i` for an exactly zero pivot `U[i, i]`
    ///   (1-based), `info = n + 1` when singular to working precision (reciprocal condition < ε).
    public static func solve(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        let (aBatch, n, _) = try matrixShape(a, op: "solve", square: true)
        let vectorCase = b.rank == 1 || (b.rank == a.rank - 1 && b.shape == Array(a.shape.dropLast()))
        guard b.rank >= (vectorCase ? 1 : 2), b.shape[b.rank - (vectorCase ? 1 : 2)] == n else {
            throw TensorError.shapeMismatch(op: "solve", expected: "b of shape [..., \(n), k] or [..., \(n)] for a of shape \(a.shape)",
                                            found: "\(b.shape)")
        }
        try checkFinite(b, op: "solve")
        let bMat = vectorCase ? b.unsqueezed(-1) : b
        let k = bMat.shape[bMat.rank - 1]
        let batchShape = try broadcastShapes(aBatch, Array(bMat.shape.dropLast(2)), op: "solve (batch dimensions)")
        let batch = shapeCount(batchShape)
        let ae = a.broadcastRaw(to: batchShape + [n, n]), be = bMat.broadcastRaw(to: batchShape + [n, k])
        let x = Tensor(uninitializedShape: batchShape + [n, k])
        let pa = ae.dataPointer, pb = be.dataPointer, px = x.dataPointer
        try forEachMatrixChecked(batch, size: n, op: "solve", batchShape: batchShape) { i in
            if n == 0 || k == 0 { return 0 }
            var lu = DMat(pa + i * n * n, rows: n, cols: n)
            var piv: [Int32] = []
            let info = luFactor(&lu, &piv)
            if info != 0 { return info }
            var rhs = DMat(pb + i * n * k, rows: n, cols: k)
            let sinfo = Threads.blasCall { LAPACKE_dgetrs(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "N")), Int32(n), Int32(k), lu.data, Int32(n),
                                       piv, &rhs.data, Int32(k)) }
            if sinfo != 0 { return sinfo }
            rhs.store(to: px + i * n * k)
            return 0
        }
        let result = vectorCase ? x.reshapedRaw(Array(x.shape.dropLast())) : x
        let aShape = a.shape, bShape = b.shape, bMatShape = bMat.shape
        let aTracked = a.isTracked, bTracked = b.isTracked
        return Tensor.record("solve", output: result, inputs: [a, b]) { g in
            let gx = vectorCase ? g.reshapedRaw(x.shape) : g
            // b̄ = a⁻ᵀ x̄ needs a factorisation of a again; refactoring beats keeping batch x n² Doubles alive.
            let gb = Tensor(uninitializedShape: x.shape), gaFull = Tensor(uninitializedShape: ae.shape)
            let pa = ae.dataPointer, px = x.dataPointer
            let pg = gx.dataPointer, pgb = gb.dataPointer, pga = gaFull.dataPointer
            forEachMatrix(batch, size: n) { i in
                if n == 0 { return }
                var lu = DMat(pa + i * n * n, rows: n, cols: n)
                var piv = [Int32](repeating: 0, count: n)
                _ = Threads.blasCall { LAPACKE_dgetrf(LAPACK_ROW_MAJOR, Int32(n), Int32(n), &lu.data, Int32(n), &piv) }
                var rhs = DMat(pg + i * n * k, rows: n, cols: k)
                if k > 0 {
                    _ = Threads.blasCall { LAPACKE_dgetrs(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "T")), Int32(n), Int32(k), lu.data, Int32(n),
                                       piv, &rhs.data, Int32(k)) }
                }
                rhs.store(to: pgb + i * n * k)
                (-1.0 * DMat.mul(rhs, DMat(px + i * n * k, rows: n, cols: k), transB: true)).store(to: pga + i * n * n)
            }
            return [aTracked ? gaFull.sumTo(aShape) : nil,
                    bTracked ? gb.sumTo(bMatShape).reshapedRaw(bShape) : nil]
        }
    }

    /// Matrix inverse of `[..., n, n]` (LAPACK `dgetrf`/`dgetri` in Double). Gradient
    /// `ā = -xᵀ x̄ xᵀ` with `x = a⁻¹`.
    /// - Throws: `.lapack` for a singular matrix, with the same `info` convention as ``solve(_:_:)``.
    public static func inverse(_ a: Tensor) throws -> Tensor {
        let (batchShape, n, _) = try matrixShape(a, op: "inverse", square: true)
        let batch = shapeCount(batchShape)
        let x = Tensor(uninitializedShape: a.shape)
        let pa = a.dataPointer, px = x.dataPointer
        try forEachMatrixChecked(batch, size: n, op: "inverse", batchShape: batchShape) { i in
            if n == 0 { return 0 }
            var lu = DMat(pa + i * n * n, rows: n, cols: n)
            var piv: [Int32] = []
            let info = luFactor(&lu, &piv)
            if info != 0 { return info }
            let iinfo = Threads.blasCall { LAPACKE_dgetri(LAPACK_ROW_MAJOR, Int32(n), &lu.data, Int32(n), piv) }
            if iinfo != 0 { return iinfo }
            lu.store(to: px + i * n * n)
            return 0
        }
        return Tensor.record("inverse", output: x, inputs: [a]) { g in
            let ga = Tensor(uninitializedShape: x.shape)
            let px = x.dataPointer, pg = g.dataPointer, pga = ga.dataPointer
            forEachMatrix(batch, size: n) { i in
                let X = DMat(px + i * n * n, rows: n, cols: n)
                (-1.0 * DMat.mul(DMat.mul(X, DMat(pg + i * n * n, rows: n, cols: n), transA: true), X, transB: true))
                    .store(to: pga + i * n * n)
            }
            return [ga]
        }
    }

    /// Determinant of `[..., n, n]`, shape `[...]`. Closed form for n <= 3, LU otherwise; a
    /// singular matrix gives 0 (no error).
    ///
    /// Gradient `ā = ḡ · cof(a)` (the cofactor matrix, `det(a) a⁻ᵀ` when invertible), computed from
    /// cofactors for n <= 3 and from the SVD otherwise, so it is correct at singular matrices too.
    public static func det(_ a: Tensor) throws -> Tensor {
        let (batchShape, n, _) = try matrixShape(a, op: "det", square: true)
        let batch = shapeCount(batchShape)
        let d = Tensor(uninitializedShape: batchShape)
        let pa = a.dataPointer, pd = d.dataPointer
        if n <= 3 {
            Threads.parallelRanges(batch, minChunk: 1 << 14) { r in
                for i in r { pd[i] = Float(smallDeterminant(pa + i * n * n, n)) }
            }
        } else {
            try forEachMatrixChecked(batch, size: n, op: "det", batchShape: batchShape) { i in
                var lu = DMat(pa + i * n * n, rows: n, cols: n)
                var piv = [Int32](repeating: 0, count: n)
                let info = Threads.blasCall { LAPACKE_dgetrf(LAPACK_ROW_MAJOR, Int32(n), Int32(n), &lu.data, Int32(n), &piv) }
                if info < 0 { return info }
                var value = 1.0
                for j in 0..<n { value *= lu[j, j] * (piv[j] != Int32(j + 1) ? -1 : 1) }
                pd[i] = Float(value)
                return 0
            }
        }
        let ad = a.detached()
        return Tensor.record("det", output: d, inputs: [a]) { g in
            let ga = Tensor(uninitializedShape: ad.shape)
            let pa = ad.dataPointer, pg = g.dataPointer, pga = ga.dataPointer
            if n <= 3 {
                Threads.parallelRanges(batch, minChunk: 1 << 13) { r in
                    for i in r { smallCofactors(pa + i * n * n, n, scale: Double(pg[i]), into: pga + i * n * n) }
                }
            } else {
                forEachMatrix(batch, size: n) { i in
                    (Double(pg[i]) * cofactors(DMat(pa + i * n * n, rows: n, cols: n))).store(to: pga + i * n * n)
                }
            }
            return [ga]
        }
    }

    /// Determinant of a row-major n x n Float matrix, n <= 3, in Double.
    @inline(__always) static func smallDeterminant(_ p: UnsafePointer<Float>, _ n: Int) -> Double {
        @inline(__always) func a(_ i: Int, _ j: Int) -> Double { Double(p[i * n + j]) }
        switch n {
        case 0: return 1
        case 1: return a(0, 0)
        case 2: return a(0, 0) * a(1, 1) - a(0, 1) * a(1, 0)
        default:
            return a(0, 0) * (a(1, 1) * a(2, 2) - a(1, 2) * a(2, 1))
                - a(0, 1) * (a(1, 0) * a(2, 2) - a(1, 2) * a(2, 0))
                + a(0, 2) * (a(1, 0) * a(2, 1) - a(1, 1) * a(2, 0))
        }
    }

    /// `scale · cof(a)` for n <= 3 (the cofactor matrix is `∂det/∂a`).
    @inline(__always) static func smallCofactors(_ p: UnsafePointer<Float>, _ n: Int, scale: Double, into o: UnsafeMutablePointer<Float>) {
        @inline(__always) func a(_ i: Int, _ j: Int) -> Double { Double(p[i * n + j]) }
        switch n {
        case 0: return
        case 1: o[0] = Float(scale)
        case 2:
            o[0] = Float(scale * a(1, 1)); o[1] = Float(-scale * a(1, 0))
            o[2] = Float(-scale * a(0, 1)); o[3] = Float(scale * a(0, 0))
        default:
            // Row i of the cofactor matrix is the cross product of the other two rows.
            for i in 0..<3 {
                let r = (i + 1) % 3, q = (i + 2) % 3
                o[3 * i] = Float(scale * (a(r, 1) * a(q, 2) - a(r, 2) * a(q, 1)))
                o[3 * i + 1] = Float(scale * (a(r, 2) * a(q, 0) - a(r, 0) * a(q, 2)))
                o[3 * i + 2] = Float(scale * (a(r, 0) * a(q, 1) - a(r, 1) * a(q, 0)))
            }
        }
    }

    /// The cofactor matrix `∂det/∂a` for n > 3 via `a = U S Vᵀ`:
    /// `cof(a) = det(U) det(V) U diag(Π_{j≠i} s_j) Vᵀ`, continuous through singular matrices.
    static func cofactors(_ a: DMat) -> DMat {
        let n = a.rows
        let r = svdKernel(a, full: false)
        // Both SVD drivers failing on a finite matrix is vanishingly rare; a backward cannot throw.
        if r.info != 0 { return DMat(rows: n, cols: n) }
        let sign = orthogonalDeterminantSign(r.u) * orthogonalDeterminantSign(r.vt)
        let prods = (0..<n).map { i in (0..<n).reduce(sign) { $1 == i ? $0 : $0 * r.s[$1] } }
        return DMat.mul(r.u.scalingColumns(prods), r.vt)
    }

    /// ±1 for an orthogonal matrix, from the signs of its LU pivots and diagonal.
    static func orthogonalDeterminantSign(_ q: DMat) -> Double {
        let n = q.rows
        var lu = q
        var piv = [Int32](repeating: 0, count: n)
        _ = Threads.blasCall { LAPACKE_dgetrf(LAPACK_ROW_MAJOR, Int32(n), Int32(n), &lu.data, Int32(n), &piv) }
        var sign = 1.0
        for j in 0..<n {
            if lu[j, j] < 0 { sign = -sign }
            if piv[j] != Int32(j + 1) { sign = -sign }
        }
        return sign
    }

    /// Moore-Penrose pseudo-inverse `[..., n, m]` of `[..., m, n]` via the SVD (in Double).
    ///
    /// - Parameter rcond: singular values `<= rcond · s_max` are treated as zero. `nil` uses
    ///   `max(m, n) · Float.ulpOfOne`, PyTorch's default `rtol` for float32 in `torch.linalg.pinv`.
    ///
    /// Gradient (Golub & Pereyra's derivative of the pseudo-inverse at constant rank), with
    /// `x = a⁺`: `ā = -xᵀ x̄ xᵀ + (I - a x) x̄ᵀ x xᵀ + xᵀ x x̄ᵀ (I - x a)`.
    public static func pinv(_ a: Tensor, rcond: Float? = nil) throws -> Tensor {
        let (batchShape, m, n) = try matrixShape(a, op: "pinv", square: false)
        let batch = shapeCount(batchShape)
        let cut = Double(rcond ?? Float(Swift.max(m, n)) * Float.ulpOfOne)
        if !(cut >= 0) || !cut.isFinite {
            throw TensorError.invalidArgument(op: "pinv", message: "rcond must be a finite non-negative number, found \(cut)")
        }
        let x = Tensor(uninitializedShape: batchShape + [n, m])
        let pa = a.dataPointer, px = x.dataPointer
        try forEachMatrixChecked(batch, size: Swift.max(m, n), op: "pinv", batchShape: batchShape) { i in
            let r = svdKernel(DMat(pa + i * m * n, rows: m, cols: n), full: false)
            if r.info != 0 { return r.info }
            let smax = r.s.first ?? 0
            let inv = r.s.map { $0 > cut * smax && $0 > 0 ? 1 / $0 : 0 }
            // x = V diag(inv) Uᵀ.
            DMat.mul(r.vt, r.u.scalingColumns(inv), transA: true, transB: true).store(to: px + i * n * m)
            return 0
        }
        let ad = a.detached()
        return Tensor.record("pinv", output: x, inputs: [a]) { g in
            let ga = Tensor(uninitializedShape: ad.shape)
            let pa = ad.dataPointer, px = x.dataPointer, pg = g.dataPointer, pga = ga.dataPointer
            forEachMatrix(batch, size: Swift.max(m, n)) { i in
                let A = DMat(pa + i * m * n, rows: m, cols: n)
                let X = DMat(px + i * n * m, rows: n, cols: m)
                let G = DMat(pg + i * n * m, rows: n, cols: m)
                let XXt = DMat.mul(X, X, transB: true)                 // n x n
                let XtX = DMat.mul(X, X, transA: true)                 // m x m
                let P = DMat.identity(m) - DMat.mul(A, X)              // m x m
                let Q = DMat.identity(n) - DMat.mul(X, A)              // n x n
                let t1 = DMat.mul(DMat.mul(X, G, transA: true), X, transB: true)
                let t2 = DMat.mul(DMat.mul(P, G, transB: true), XXt)
                let t3 = DMat.mul(DMat.mul(XtX, G, transB: true), Q)
                (t2 + t3 - t1).store(to: pga + i * m * n)
            }
            return [ga]
        }
    }
}
