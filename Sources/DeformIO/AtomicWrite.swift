import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `body` with a temporary path beside `url`, then renames the temporary file over `url`.
///
/// A reader never sees a half-written file and a failed or interrupted write leaves any previous
/// file untouched: the rename is atomic within one directory, which is why the temporary file sits
/// in the destination's directory rather than in the system temp folder. The temporary file is
/// removed when `body` throws. `body` must create the file at the path it is given.
public func withAtomicFile<R>(at url: URL, _ body: (URL) throws -> R) throws -> R {
    let path = url.path
    let directory = url.deletingLastPathComponent()
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw DeformIOError.io(file: path, message: "cannot write: directory \(directory.path) does not exist")
    }
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
        throw DeformIOError.io(file: path, message: "cannot write: a directory with that name exists")
    }
    let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).tmp-\(UUID().uuidString)")
    let result: R
    do {
        result = try body(temporary)
        guard FileManager.default.fileExists(atPath: temporary.path) else {
            throw DeformIOError.io(file: path, message: "cannot write: the temporary file was not created")
        }
        // Flush before the rename so a crash cannot leave the new name pointing at missing data.
        let fd = open(temporary.path, O_RDONLY)
        if fd >= 0 { _ = fsync(fd); _ = close(fd) }
        if rename(temporary.path, path) != 0 {
            let reason = String(cString: strerror(errno))
            throw DeformIOError.io(file: path, message: "cannot write: rename of the temporary file failed (\(reason))")
        }
    } catch {
        _ = unlink(temporary.path)
        if let ioError = error as? DeformIOError { throw ioError }
        throw DeformIOError.io(file: path, message: "cannot write: \(error.localizedDescription)")
    }
    return result
}

/// Writes `data` to `url` atomically (temporary file + rename); see ``withAtomicFile(at:_:)``.
public func writeAtomically(_ data: Data, to url: URL) throws {
    try withAtomicFile(at: url) { temporary in
        try data.write(to: temporary)
    }
}

/// Throws a message naming the file when it is missing, a directory or unreadable.
func checkReadableFile(_ url: URL) throws {
    let path = url.path
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw DeformIOError.io(file: path, message: "no such file")
    }
    if isDirectory.boolValue { throw DeformIOError.io(file: path, message: "is a directory, expected a file") }
    guard FileManager.default.isReadableFile(atPath: path) else {
        throw DeformIOError.io(file: path, message: "permission denied")
    }
}

/// Reads a whole file, turning Foundation's errors into messages that name the file and the reason.
func readFileData(_ url: URL) throws -> Data {
    try checkReadableFile(url)
    do {
        return try Data(contentsOf: url, options: .mappedIfSafe)
    } catch {
        throw DeformIOError.io(file: url.path, message: "cannot read: \(error.localizedDescription)")
    }
}
