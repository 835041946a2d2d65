import ArgumentParser
import DeformGeometry
import DeformIO
import DeformNRSfM
import DeformTensor
import Foundation

/// `deform nrsfm table`: the benchmark protocol — methods x sequences x seeds, normalized error
/// (mean ± std over seeds) as a Markdown table and JSON.
struct NRSfMTable: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "table",
        abstract: "Run methods on the benchmark sequences over several seeds and print the normalized-error table.")

    @Option(help: "Folder with the sequences (<name>.npz).") var data = "../shared/data/nrsfm"
    @Option(parsing: .upToNextOption, help: "Sequences (file names without .npz).")
    var sequences = ["drink", "pickup", "yoga", "face", "walking"]
    @Option(parsing: .upToNextOption, help: "Methods.") var methods: [NRSfMMethod] = [.paul]
    @Option(help: "Seeds per method and sequence (0, 1, ...).") var seeds = 5
    @Option(name: .customLong("set"), help: ArgumentHelp("Override a method hyper-parameter for every run (repeatable).", valueName: "key=value"))
    var overrides: [String] = []
    @Option(name: .shortAndLong, help: "Write table.md and table.json into this folder.") var output: String?

    func validate() throws {
        if seeds < 1 { throw ValidationError("--seeds must be >= 1") }
    }

    struct Cell: Encodable {
        var method: String
        var sequence: String
        var errors: [Double]
        var mean: Double
        var std: Double
        var finalLosses: [Float]
        var seconds: [Double]
    }

    func run() throws {
        var cells: [Cell] = []
        let tracks = try sequences.map { name -> KeypointTracks in
            let t = try KeypointTracks.load(URL(fileURLWithPath: data).appendingPathComponent("\(name).npz"))
            guard t.points3D != nil else { throw CLIError("\(data)/\(name).npz has no points_3d ground truth") }
            return t
        }
        let total = methods.count * sequences.count * seeds
        var done = 0
        let started = Date()
        for method in methods {
            for (name, t) in zip(sequences, tracks) {
                var cell = Cell(method: method.rawValue, sequence: name, errors: [], mean: 0, std: 0, finalLosses: [], seconds: [])
                for seed in 0..<seeds {
                    var options = NRSfMOptions()
                    options.seed = UInt64(seed)
                    options.overrides = overrides
                    let t0 = Date()
                    let r = try NRSfMRunner.fit(method, tracks: t, options: options)
                    let ne = try Metrics3D.normalizedError(prediction: r.points3D, groundTruth: t.points3D!).mean
                    cell.errors.append(ne)
                    cell.finalLosses.append(r.finalLoss)
                    cell.seconds.append(Date().timeIntervalSince(t0))
                    done += 1
                    FileHandle.standardError.write(String(format: "[%d/%d] %@ %@ seed %d: %.3f%% (loss %.4g, %.1f s; %@ elapsed)\n",
                                                          done, total, method.rawValue, name, seed, ne, r.finalLoss,
                                                          cell.seconds.last!, ProgressLine.clock(Date().timeIntervalSince(started))).data(using: .utf8)!)
                }
                let m = cell.errors.reduce(0, +) / Double(cell.errors.count)
                cell.mean = m
                cell.std = cell.errors.count > 1 ? (cell.errors.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(cell.errors.count - 1)).squareRoot() : 0
                cells.append(cell)
            }
        }
        var md = "Normalized error (%), mean ± std over \(seeds) seed\(seeds == 1 ? "" : "s")\n\n"
        md += "| method | " + sequences.joined(separator: " | ") + " |\n|---|" + String(repeating: "---|", count: sequences.count) + "\n"
        for method in methods {
            let row = sequences.map { s -> String in
                guard let c = cells.first(where: { $0.method == method.rawValue && $0.sequence == s }) else { return "-" }
                return String(format: "%.2f ± %.2f", c.mean, c.std)
            }
            md += "| \(method.rawValue) | " + row.joined(separator: " | ") + " |\n"
        }
        md += String(format: "\nTotal time %@ (%d runs).\n", ProgressLine.clock(Date().timeIntervalSince(started)), total)
        print(md)
        if let output {
            let dir = URL(fileURLWithPath: output)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try writeAtomically(Data(md.utf8), to: dir.appendingPathComponent("table.md"))
            try writeJSON(cells, to: dir.appendingPathComponent("table.json"))
        }
    }
}
