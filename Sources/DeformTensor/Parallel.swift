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
        blasGate.enter()
        defer { blasGate.leave() }
        return try body()
    }

    /// Runs one BLAS or LAPACK call (every call of the engine goes through here) so that calls
    /// from several threads cannot hang OpenBLAS.
    ///
    /// OpenBLAS's own thread pool serves one caller at a time: two multi-threaded calls started
    /// from two threads at once can spin forever waiting for each other (seen as a hang of the
    /// test suite, whose tests run in parallel), and changing the thread count during a
    /// multi-threaded call is unsafe too. So while a single-threaded region is open anywhere,
    /// calls run concurrently (each is single-threaded); otherwise a call may use OpenBLAS's
    /// threads and runs alone. Regions wait for those calls before changing the count.
    ///
    /// `body` must be the bare library call: the gate is not re-entrant.
    @inline(__always)
    public static func blasCall<R>(_ body: () throws -> R) rethrows -> R {
        try blasGate.call(body)
    }

    private static let blasGate = BLASGate()

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

/// The process-wide state of OpenBLAS's threading: how many single-threaded regions are open,
/// the thread count to restore, and how many calls run concurrently under a region.
private final class BLASGate: @unchecked Sendable {
    private let condition = NSCondition()
    private var depth = 0
    private var saved = 1
    private var concurrentCalls = 0

    init() {
        // OpenBLAS starts one thread per core whatever DEFORM_THREADS says. On a machine shared with
        // other processes its threads then wait for each other: a BMM fit on drink took 81 s of
        // wall time for 2.5 s of CPU with the cores busy, 2 s with OpenBLAS limited to one thread.
        if Threads.blasThreads > Threads.coreCount { Threads.blasThreads = Threads.coreCount }
    }

    func enter() {
        condition.lock()
        defer { condition.unlock() }
        // No multi-threaded call is running: those hold the lock for their whole duration.
        if depth == 0 {
            saved = Threads.blasThreads
            if saved != 1 { Threads.blasThreads = 1 }
        }
        depth += 1
    }

    func leave() {
        condition.lock()
        defer { condition.unlock() }
        // Calls started under the last region must finish before their thread count changes. The
        // depth stays at 1 while waiting, so a region entered meanwhile keeps the saved count.
        while depth == 1 && concurrentCalls > 0 { condition.wait() }
        depth -= 1
        if depth == 0 && saved != 1 { Threads.blasThreads = saved }
    }

    @inline(__always)
    func call<R>(_ body: () throws -> R) rethrows -> R {
        condition.lock()
        if depth > 0 {
            // OpenBLAS is single-threaded while a region is open: run alongside the others.
            concurrentCalls += 1
            condition.unlock()
            defer {
                condition.lock()
                concurrentCalls -= 1
                if concurrentCalls == 0 { condition.broadcast() }
                condition.unlock()
            }
            return try body()
        }
        // Possibly multi-threaded: alone, holding the lock so no region starts meanwhile.
        defer { condition.unlock() }
        return try body()
    }
}
