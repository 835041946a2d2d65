import ArgumentParser
import DeformIO
import DeformView
import Foundation

struct View: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "view",
        abstract: "Write a self-contained HTML report of a run folder: 3D viewer, plots and tables.",
        discussion: """
        Reads what the folder holds (reconstruction.npz, metrics.json, config.json, log.jsonl) and \
        says in the report what is missing. Ground truth is points_3d of the tracks file named in \
        config.json, or --ground-truth. A single .npz (points_3d [F,P,3]), .json or .jsonl file also \
        works. The page needs no network: data and script are embedded.
        """)

    @Argument(help: "Run folder, or one .npz / .json / .jsonl file.") var path: String
    @Option(name: .shortAndLong, help: "HTML file to write (default: report.html in the run folder, or <file>.html beside a file).")
    var output: String?
    @Option(help: "NPZ with ground-truth points_3d [F,P,3] (default: the tracks file recorded in config.json).")
    var groundTruth: String?

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
    }
}
