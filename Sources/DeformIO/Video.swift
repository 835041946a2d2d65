import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// Video goes through the `ffmpeg` program rather than a linked library: its command line is stable
// across versions while the libav* APIs are not, and the package keeps building on machines
// without it. Only these functions need it.

/// The `ffmpeg` executable on `PATH`, or `nil` when there is none.
public func ffmpegExecutable() -> URL? {
    findExecutable("ffmpeg", searchPath: ProcessInfo.processInfo.environment["PATH"] ?? "")
}

/// The first executable file called `name` in the colon-separated `searchPath`.
func findExecutable(_ name: String, searchPath: String) -> URL? {
    for folder in searchPath.split(separator: ":") where !folder.isEmpty {
        let candidate = URL(fileURLWithPath: String(folder)).appendingPathComponent(name)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue,
           FileManager.default.isExecutableFile(atPath: candidate.path) {
            return candidate
        }
    }
    return nil
}

/// `executable`, or the error that says how to get ffmpeg, naming the file the caller works on.
func requireFFmpeg(_ executable: URL?, file: String) throws -> URL {
    guard let executable else {
        throw DeformIOError.io(file: file, message: "ffmpeg not found on PATH (apt-get install ffmpeg)")
    }
    return executable
}

/// Runs ffmpeg with `arguments`; a non-zero exit becomes an error naming `file` and quoting the end
/// of ffmpeg's own message.
func runFFmpeg(_ ffmpeg: URL, _ arguments: [String], file: String) throws {
    let process = Process()
    process.executableURL = ffmpeg
    process.arguments = ["-hide_banner", "-nostdin", "-loglevel", "error"] + arguments
    let errors = Pipe()
    process.standardError = errors
    process.standardOutput = FileHandle.nullDevice
    process.standardInput = FileHandle.nullDevice
    do {
        try process.run()
    } catch {
        throw DeformIOError.io(file: file, message: "cannot start \(ffmpeg.path): \(error.localizedDescription)")
    }
    // Read before waiting: a child that fills the pipe would otherwise block forever.
    let message = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationReason == .exit, process.terminationStatus == 0 else {
        let text = String(decoding: message, as: UTF8.self)
        let tail = text.split(separator: "\n").suffix(8).joined(separator: "\n")
        let how = process.terminationReason == .exit ? "exited with status \(process.terminationStatus)" : "was killed by signal \(process.terminationStatus)"
        throw DeformIOError.io(file: file, message: "ffmpeg \(how): \(tail.isEmpty ? "(no message)" : tail)")
    }
}

/// An ffmpeg image-sequence pattern in `folder`; a `%` in the folder's path must be doubled there.
func imageSequencePattern(_ folder: URL, _ pattern: String) -> String {
    folder.path.replacingOccurrences(of: "%", with: "%%") + "/" + pattern
}

/// Encodes still images into an H.264 MP4 (yuv420p, which every player decodes), atomically.
///
/// Frames are PNG or JPEG files of one format and one size, shown in the order given at `fps`
/// frames per second. H.264 in 4:2:0 needs even sizes, so an odd width or height gets one black
/// column or row at the right or bottom. Alpha is dropped.
///
/// - Throws: ``DeformIOError`` naming the file: no frames, a missing or unreadable frame, frames
///   that differ in format or size, a bad `fps`, ffmpeg missing from `PATH` or failing (with the end
///   of its message).
public func writeVideo(frames: [URL], to url: URL, fps: Double = 30) throws {
    let file = url.path
    guard !frames.isEmpty else { throw DeformIOError.invalidValue(file: file, entry: "frames", message: "no frames to encode") }
    guard fps.isFinite, fps > 0 else { throw DeformIOError.invalidValue(file: file, entry: "fps", message: "must be a positive number, got \(fps)") }
    let ffmpeg = try requireFFmpeg(ffmpegExecutable(), file: file)

    // Check every frame before starting ffmpeg, so a bad one is named instead of surfacing as an
    // ffmpeg message about a numbered link.
    let firstExtension = frames[0].pathExtension.lowercased()
    guard ["png", "jpg", "jpeg"].contains(firstExtension) else {
        throw DeformIOError.unsupportedFormat(file: frames[0].path, message: "video frames must be .png, .jpg or .jpeg files")
    }
    let firstSize = try imageSize(frames[0])
    for frame in frames.dropFirst() {
        guard frame.pathExtension.lowercased() == firstExtension else {
            throw DeformIOError.unsupportedFormat(file: frame.path, message: "all frames must share one format; the first frame is .\(firstExtension)")
        }
        let size = try imageSize(frame)
        guard size == firstSize else {
            throw DeformIOError.shapeMismatch(file: frame.path, entry: "frame size", expected: "\(firstSize.width) x \(firstSize.height) like the first frame",
                                              found: "\(size.width) x \(size.height)")
        }
    }

    // ffmpeg's image-sequence input wants numbered names; symbolic links give them without copies.
    let staging = FileManager.default.temporaryDirectory.appendingPathComponent("deform-video-\(UUID().uuidString)")
    do {
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
    } catch {
        throw DeformIOError.io(file: staging.path, message: "cannot create a staging folder: \(error.localizedDescription)")
    }
    defer { try? FileManager.default.removeItem(at: staging) }
    for (i, frame) in frames.enumerated() {
        let link = staging.appendingPathComponent(String(format: "%08d.", i) + firstExtension)
        do {
            try FileManager.default.createSymbolicLink(at: link, withDestinationURL: frame.standardizedFileURL.absoluteURL)
        } catch {
            throw DeformIOError.io(file: frame.path, message: "cannot link the frame for ffmpeg: \(error.localizedDescription)")
        }
    }
    try withAtomicFile(at: url) { temporary in
        try runFFmpeg(ffmpeg, [
            "-f", "image2", "-framerate", String(fps), "-start_number", "0",
            "-i", imageSequencePattern(staging, "%08d." + firstExtension),
            "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18",
            // The temporary name has no .mp4 extension for ffmpeg to guess from.
            "-movflags", "+faststart", "-f", "mp4", "-y", temporary.path,
        ], file: file)
    }
}

/// Encodes the `.png` files of `folder`, in file-name order, into an H.264 MP4; see
/// ``writeVideo(frames:to:fps:)``.
public func writeVideo(frameFolder folder: URL, to url: URL, fps: Double = 30) throws {
    let names: [String]
    do {
        names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
    } catch {
        throw DeformIOError.io(file: folder.path, message: "cannot list the frame folder: \(error.localizedDescription)")
    }
    let frames = names.filter { !$0.hasPrefix(".") && $0.lowercased().hasSuffix(".png") }.sorted()
        .map { folder.appendingPathComponent($0) }
    guard !frames.isEmpty else {
        throw DeformIOError.invalidValue(file: folder.path, entry: "frames", message: "the folder holds no .png files")
    }
    try writeVideo(frames: frames, to: url, fps: fps)
}

/// Decodes every frame of a video that ffmpeg can read into `folder` as `frame_000001.png`, ...,
/// and returns the files in order.
///
/// The frames are decoded into a hidden folder inside `folder` first and moved only when ffmpeg
/// succeeded, so a failure leaves no partial frames; files of the same names are replaced. The PNG
/// depth follows the video (8-bit for ordinary videos, 16-bit for 10-bit ones).
///
/// - Throws: ``DeformIOError`` naming the video when ffmpeg is missing from `PATH` or fails (with
///   the end of its message), or when the video holds no frames.
public func readVideoFrames(_ video: URL, to folder: URL) throws -> [URL] {
    let file = video.path
    try checkReadableFile(video)
    let ffmpeg = try requireFFmpeg(ffmpegExecutable(), file: file)
    let staging = folder.appendingPathComponent(".frames-\(UUID().uuidString)")
    do {
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
    } catch {
        throw DeformIOError.io(file: folder.path, message: "cannot create the frame folder: \(error.localizedDescription)")
    }
    defer { try? FileManager.default.removeItem(at: staging) }
    try runFFmpeg(ffmpeg, ["-i", video.path, "-an", "-f", "image2", imageSequencePattern(staging, "frame_%06d.png")], file: file)
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: staging.path)) ?? [])
        .filter { $0.hasPrefix("frame_") && $0.hasSuffix(".png") }.sorted()
    guard !names.isEmpty else {
        throw DeformIOError.corrupt(file: file, entry: nil, message: "ffmpeg decoded no video frames")
    }
    var outputs: [URL] = []
    for name in names {
        let target = folder.appendingPathComponent(name)
        if rename(staging.appendingPathComponent(name).path, target.path) != 0 {
            let reason = String(cString: strerror(errno))
            throw DeformIOError.io(file: target.path, message: "cannot move the decoded frame into place (\(reason))")
        }
        outputs.append(target)
    }
    return outputs
}
