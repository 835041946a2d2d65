import CBLAS
import DeformTensor

/// Row-major Double matrix for BMM's solvers: the factorisation, the null space of the
/// orthonormality constraints and the singular value thresholding all run in Double through
/// BLAS/LAPACK, because the constraint null space is separated from the rest of the spectrum by
/// small gaps (relative singular values of 1e-4 to 1e-6 on the benchmark sequences).
struct DMatrix {
    var rows: Int, cols: Int
    var data: [Double]

    init(rows: Int, cols: Int, repeating value: Double = 0) {
        self.rows = rows; self.cols = cols
        data = [Double](repeating: value, count: rows * cols)
    }

    init(rows: Int, cols: Int, data: [Double]) {
        precondition(data.count == rows * cols, "DMatrix: \(data.count) values do not fill \(rows) x \(cols)")
        self.rows = rows; self.cols = cols; self.data = data
    }

    static func identity(_ n: Int) -> DMatrix {
        var m = DMatrix(rows: n, cols: n)
        for i in 0..<n { m.data[i * n + i] = 1 }
        return m
    }

    @inline(__always) subscript(i: Int, j: Int) -> Double {
        get { data[i * cols + j] }
        set { data[i * cols + j] = newValue }
    }

    var transposed: DMatrix {
        var t = DMatrix(rows: cols, cols: rows)
        for i in 0..<rows { for j in 0..<cols { t.data[j * rows + i] = data[i * cols + j] } }
        return t
    }

    var frobeniusNorm: Double { data.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    /// `op(a) op(b)` through `cblas_dgemm`.
    static func product(_ a: DMatrix, _ b: DMatrix, transA: Bool = false, transB: Bool = false) -> DMatrix {
        let r = Linalg.doubleProduct(a.data, rows: a.rows, cols: a.cols, b.data, rows: b.rows, cols: b.cols,
                                     transA: transA, transB: transB, op: "DMatrix.product")
        var c = DMatrix(rows: r.rows, cols: r.cols)
        c.data = r.data
        return c
    }

    /// `a x` for a vector `x` (or `aᵀ x` with `transpose`).
    static func product(_ a: DMatrix, _ x: [Double], transpose: Bool = false) -> [Double] {
        precondition(x.count == (transpose ? a.rows : a.cols), "DMatrix.product: vector of \(x.count) for \(a.rows) x \(a.cols)")
        var y = [Double](repeating: 0, count: transpose ? a.cols : a.rows)
        if a.rows == 0 || a.cols == 0 { return y }
        a.data.withUnsafeBufferPointer { pa in
            x.withUnsafeBufferPointer { px in
                y.withUnsafeMutableBufferPointer { py in
                    Threads.blasCall { cblas_dgemv(CblasRowMajor, transpose ? CblasTrans : CblasNoTrans, Int32(a.rows), Int32(a.cols), 1,
                                pa.baseAddress, Int32(a.cols), px.baseAddress, 1, 0, py.baseAddress, 1) }
                }
            }
        }
        return y
    }

    /// Singular value decomposition `self = u diag(s) vt` (LAPACK `dgesdd`, falling back to `dgesvd`).
    /// Thin by default; `fullV` returns all `cols` right singular vectors even when `rows < cols`.
    func svd(fullV: Bool = false, op: String) throws -> (u: DMatrix, s: [Double], vt: DMatrix) {
        let m = rows, n = cols, k = Swift.min(m, n)
        let full = fullV && m < n
        let ucols = full ? m : k, vrows = full ? n : k
        var u = DMatrix(rows: m, cols: ucols), vt = DMatrix(rows: vrows, cols: n)
        var s = [Double](repeating: 0, count: k)
        if k == 0 { return (u, s, full ? DMatrix.identity(n) : vt) }
        var work = data
        let job = CChar(UInt8(ascii: full ? "A" : "S"))
        var info = Threads.blasCall { LAPACKE_dgesdd(LAPACK_ROW_MAJOR, job, Int32(m), Int32(n), &work, Int32(n), &s,
                                  &u.data, Int32(ucols), &vt.data, Int32(n)) }
        if info > 0 {
            work = data
            var superb = [Double](repeating: 0, count: Swift.max(k - 1, 1))
            info = Threads.blasCall { LAPACKE_dgesvd(LAPACK_ROW_MAJOR, job, job, Int32(m), Int32(n), &work, Int32(n), &s,
                                  &u.data, Int32(ucols), &vt.data, Int32(n), &superb) }
        }
        if info != 0 { throw TensorError.lapack(op: op, info: info) }
        return (u, s, vt)
    }

    /// Eigenvalues (ascending) and orthonormal eigenvectors (columns) of the symmetric part of a
    /// square matrix (LAPACK `dsyevd`).
    func symmetricEigen(op: String) throws -> (values: [Double], vectors: DMatrix) {
        precondition(rows == cols, "DMatrix.symmetricEigen: \(rows) x \(cols) is not square")
        let n = rows
        var v = DMatrix(rows: n, cols: n)
        for i in 0..<n { for j in 0..<n { v.data[i * n + j] = 0.5 * (data[i * n + j] + data[j * n + i]) } }
        var w = [Double](repeating: 0, count: n)
        if n == 0 { return (w, v) }
        let info = Threads.blasCall { LAPACKE_dsyevd(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "L")),
                                  Int32(n), &v.data, Int32(n), &w) }
        if info != 0 { throw TensorError.lapack(op: op, info: info) }
        return (w, v)
    }

    /// Solves `self x = b` for a symmetric positive definite `self` (LAPACK `dposv`), falling back
    /// to LU with pivoting (`dgesv`) when the Cholesky factorisation fails.
    func solveSymmetric(_ b: [Double], op: String) throws -> [Double] {
        precondition(rows == cols && b.count == rows, "DMatrix.solveSymmetric: \(rows) x \(cols) with \(b.count)")
        let n = rows
        var a = data, x = b
        var info = Threads.blasCall { LAPACKE_dposv(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "L")), Int32(n), 1, &a, Int32(n), &x, 1) }
        if info > 0 {
            a = data; x = b
            var piv = [Int32](repeating: 0, count: n)
            info = Threads.blasCall { LAPACKE_dgesv(LAPACK_ROW_MAJOR, Int32(n), 1, &a, Int32(n), &piv, &x, 1) }
        }
        if info != 0 { throw TensorError.lapack(op: op, info: info) }
        return x
    }
}
