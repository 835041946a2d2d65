import DeformTensor
import Foundation

/// Pieces every family's dataset writer shares.
enum SynthFiles {
    /// The JSON of `scene.json` and `transforms.json`: pretty-printed, keys sorted (so files are
    /// byte-identical run to run) and in snake case, slashes unescaped, a final newline.
    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
    }

    /// Runs `body(item)` for `0..<count` on all cores, whole items per worker (the rasteriser's own
    /// band parallelism nests inside and runs inline; BLAS stays on one thread per worker).
    /// `progress` gets the number of finished items; after the first error no new item starts,
    /// and that error is rethrown.
    static func forEachItem(_ count: Int, progress: ((Int) -> Void)?, _ body: (Int) throws -> Void) throws {
        let lock = NSLock()
        var firstError: Error?
        var done = 0
        Threads.withSingleThreadedBLAS {
            DispatchQueue.concurrentPerform(iterations: count) { item in
                lock.lock()
                let failed = firstError != nil
                lock.unlock()
                if failed { return }
                do {
                    try body(item)
                    lock.lock()
                    done += 1
                    progress?(done)
                    lock.unlock()
                } catch {
                    lock.lock()
                    if firstError == nil { firstError = error }
                    lock.unlock()
                }
            }
        }
        if let firstError { throw firstError }
    }

    /// Throws ``SynthError`` with `message` unless `ok` (configuration checks).
    static func check(_ ok: Bool, _ message: String) throws {
        if !ok { throw SynthError(message) }
    }

    /// Checks that `r` is a range `[lo, hi]` inside the allowed bounds (`open`: the lower bound is
    /// excluded).
    static func checkRange(_ name: String, _ r: [Float], _ lo: Float, _ hi: Float, open: Bool = false) throws {
        try check(r.count == 2 && r[0] <= r[1] && (open ? r[0] > lo : r[0] >= lo) && r[1] <= hi,
                  "\(name) must be a range [lo, hi] with \(lo) \(open ? "<" : "<=") lo <= hi <= \(hi), got \(r)")
    }
}
