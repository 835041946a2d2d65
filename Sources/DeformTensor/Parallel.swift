import Foundation
import CBLAS

/// Threading helpers. The design point is 2 cores: parallelise over a batch with
/// `concurrentPerform` and 1-thread BLAS inside, or let BLAS use every thread for one big GEMM —
/// never both at once.
public enum Threads {
    /// Number of cores the engine parallelises over: the machine's, or fewer when the environment
    /// variable `DEFORM_THREADS` says so (as when several processes share the machine).
    public static let coreCount: Int = {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        guard let text = ProcessInfo.processInfo.environment["DEFORM_THREADS"], let n = Int(text), n >= 1 else { return cores }
        return Swift.min(n, cores)
    }()

    /// OpenBLAS's thread count.
    public static var blasThreads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(newValue)) }
    }

    /// The OpenBLAS kernel family chosen for this CPU (e.g. "SkylakeX").
    public static var blasCoreName: String { String(cString: openblas_get_corename()) }

    /// Runs `body` with OpenBLAS limited to one thread, restoring the previous count afterwards.
    /// Use around `concurrentPerform` regions that call BLAS per item.
    ///
    /// The thread count is process-wide, so overlapping regions (nested, or on several threads)
    /// are counted: the first one in saves and lowers it, the last one out restores it.
    public static func withSingleThreadedBLAS<R>(_ body: () throws -> R) rethrows -> R {
        singleThreadedRegions.enter()
        defer { singleThreadedRegions.leave() }
        return try body()
    }

    private static let singleThreadedRegions = BLASRegionCounter()

    /// Splits `0..<count` into at most `coreCount` contiguous chunks of at least `minChunk` items and
    /// runs them concurrently. Chunk boundaries depend only on `count`, `minChunk` and the core
    /// count, never on timing. Worker threads run with the caller's ``GradMode`` (as PyTorch's
    /// `parallel_for` carries its thread-local grad mode), so `withoutGrad` covers them too.
    @inline(__always)
    public static func parallelRanges(_ count: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        let chunks = Swift.min(coreCount, Swift.max(1, count / Swift.max(minChunk, 1)))
        if chunks <= 1 { if count > 0 { body(0..<count) }; return }
        let gradEnabled = GradMode.isEnabled
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = count * c / chunks, hi = count * (c + 1) / chunks
            if hi <= lo { return }
            if gradEnabled { body(lo..<hi) } else { GradMode.withoutGrad { body(lo..<hi) } }
        }
    }
}

/// Depth of the overlapping single-threaded BLAS regions and the thread count to restore.
private final class BLASRegionCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var depth = 0
    private var saved = 1

    func enter() {
        lock.lock()
        defer { lock.unlock() }
        if depth == 0 {
            saved = Threads.blasThreads
            if saved != 1 { Threads.blasThreads = 1 }
        }
        depth += 1
    }

    func leave() {
        lock.lock()
        defer { lock.unlock() }
        depth -= 1
        if depth == 0 && saved != 1 { Threads.blasThreads = saved }
    }
}
