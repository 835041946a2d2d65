import Foundation

/// A one-line progress display on stderr: step / total, elapsed, ETA, loss and throughput.
/// Redrawn at most ~10 times a second; silent when stderr is not a terminal.
final class ProgressLine {
    let total: Int
    let label: String
    let start = Date()
    private var lastDraw = Date.distantPast
    private let isTTY = isatty(STDERR_FILENO) == 1

    init(total: Int, label: String) {
        self.total = total
        self.label = label
    }

    func update(step: Int, loss: Float) {
        guard isTTY else { return }
        let now = Date()
        if now.timeIntervalSince(lastDraw) < 0.1 && step + 1 < total { return }
        lastDraw = now
        let done = step + 1
        let elapsed = now.timeIntervalSince(start)
        let rate = Double(done) / max(elapsed, 1e-9)
        let eta = Double(total - done) / max(rate, 1e-9)
        let line = String(format: "\r%@ %d/%d  %@ elapsed, ETA %@  loss %.5g  %.1f it/s",
                          label, done, total, ProgressLine.clock(elapsed), ProgressLine.clock(eta), loss, rate)
        FileHandle.standardError.write(line.padding(toLength: max(line.count, 80), withPad: " ", startingAt: 0).data(using: .utf8)!)
    }

    func finish() {
        guard isTTY else { return }
        FileHandle.standardError.write("\n".data(using: .utf8)!)
    }

    static func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}

/// A run folder written atomically: files go to a hidden sibling folder that is renamed into
/// place only when the run completed, so an interrupted run never looks complete.
struct RunFolder {
    let final: URL
    let staging: URL

    init(_ path: String, overwrite: Bool) throws {
        final = URL(fileURLWithPath: path).standardizedFileURL
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: final.path, isDirectory: &isDir) {
            let contents = (try? fm.contentsOfDirectory(atPath: final.path)) ?? []
            if !isDir.boolValue || (!contents.isEmpty && !overwrite) {
                throw CLIError("output \(final.path) already exists\(isDir.boolValue ? " and is not empty" : " and is a file"); choose another -o or pass --overwrite")
            }
        }
        staging = final.deletingLastPathComponent().appendingPathComponent(".\(final.lastPathComponent).partial-\(getpid())")
        try? fm.removeItem(at: staging)
        try fm.createDirectory(at: staging, withIntermediateDirectories: true)
    }

    func url(_ name: String) -> URL { staging.appendingPathComponent(name) }

    /// Moves the finished run into place (replacing an older run there when allowed).
    func commit() throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: final.path) { try fm.removeItem(at: final) }
        try fm.moveItem(at: staging, to: final)
    }

    func abandon() { try? FileManager.default.removeItem(at: staging) }
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
