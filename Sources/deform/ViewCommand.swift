import ArgumentParser
import DeformIO
import DeformView
import Foundation

struct View: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "view",
        abstract: "Write a self-contained HTML report of a run folder: 3D viewer, plots and tables.",
        discussion: """
        Reads what the folder holds (reconstruction.npz, metrics.json, config.json, log.jsonl; \
        images, depth maps (*depth*.npy or one-channel *depth*.png), meshes and Gaussians (.ply, .obj) \
        at the top or one folder down) and says in the report what is missing. Ground truth is points_3d of the tracks file named in \
        config.json, or --ground-truth. A single .npz (points_3d [F,P,3]), .json, .jsonl, .ply, .obj, \
        image or depth .npy file also works. The page needs no network: data and script are embedded.
        """)

    @Argument(help: "Run folder, or one .npz / .json / .jsonl / .ply / .obj / .png / .jpg / *depth*.npy file.") var path: String
    @Option(name: .shortAndLong, help: "HTML file to write (default: report.html in the run folder, or <file>.html beside a file).")
    var output: String?
    @Option(help: "NPZ with ground-truth points_3d [F,P,3] (default: the tracks file recorded in config.json).")
    var groundTruth: String?
    @Flag(help: "Open the report in the default browser (xdg-open, or open on macOS).")
    var open = false

    func run() throws {
        let url = URL(fileURLWithPath: path)
        let report = try RunReport.load(url, groundTruth: groundTruth.map { URL(fileURLWithPath: $0) })
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory)
        let destination = output.map { URL(fileURLWithPath: $0) }
            ?? (isDirectory.boolValue ? url.appendingPathComponent("report.html")
                                      : url.deletingPathExtension().appendingPathExtension("html"))
        let html = report.html()
        try writeAtomically(Data(html.utf8), to: destination)
        for note in report.notes { print("note: \(note)") }
        print(String(format: "wrote %@ (%.0f kB)", destination.path, Double(html.utf8.count) / 1e3))
        if open { openInBrowser(destination) }
    }

    /// Hands the file to the desktop's opener; a machine without one (a server, CI) gets a hint, not an error.
    private func openInBrowser(_ file: URL) {
        #if os(macOS)
        let opener = "/usr/bin/open"
        #else
        let opener = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            .map { "\($0)/xdg-open" }.first { FileManager.default.isExecutableFile(atPath: $0) } ?? ""
        #endif
        guard !opener.isEmpty, FileManager.default.isExecutableFile(atPath: opener) else {
            print("no opener found (xdg-open); open \(file.path) in a browser")
            return
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: opener)
        process.arguments = [file.path]
        do { try process.run() } catch { print("could not start \(opener): \(error); open \(file.path) in a browser") }
    }
}
