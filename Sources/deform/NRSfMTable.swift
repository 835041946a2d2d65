import ArgumentParser
import DeformGeometry
import DeformIO
import DeformNRSfM
import DeformTensor
import Foundation

extension NRSfMProtocol: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

/// `deform nrsfm table`: the benchmark protocol — methods x protocols x sequences x seeds,
/// normalized error (mean ± std over seeds) as a Markdown table and JSON.
struct NRSfMTable: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "table",
        abstract: "Run methods on the benchmark sequences over several seeds and print the normalized-error table.",
        discussion: """
        Protocols: clean (the tracks as given); persp (pinhole projection synthesised from the 3D ground truth, the \
        object at 2.5x its extent; methods with a perspective model run with both cameras; errors up to scale); \
        missing30 / missing60 (that percentage of the points hidden at random; methods without a missing-data mode \
        are skipped); noise2 (Gaussian 2D noise, sigma 2% of the RMS point radius); lift (train on a random 80% of \
        the frames, lift the other 20% with the trained network; errors on those). Each seed draws its own mask, \
        noise and split.
        """)

    @Option(help: "Folder with the sequences (<name>.npz).") var data = "../shared/data/nrsfm"
    @Option(parsing: .upToNextOption, help: "Sequences (file names without .npz).")
    var sequences = ["drink", "pickup", "yoga", "face", "walking"]
    @Option(parsing: .upToNextOption, help: "Methods.") var methods: [NRSfMMethod] = [.paul]
    @Option(parsing: .upToNextOption, help: "Protocols: clean, persp, missing<percent>, noise<percent>, lift (see below).")
    var protocols: [NRSfMProtocol] = [.clean]
    @Option(help: "Seeds per method and sequence (0, 1, ...).") var seeds = 5
    @Option(name: .customLong("set"), help: ArgumentHelp("Override a method hyper-parameter for every run (repeatable).", valueName: "key=value"))
    var overrides: [String] = []
    @Option(name: .shortAndLong, help: "Write table.md and table.json into this folder.") var output: String?

    func validate() throws {
        if seeds < 1 { throw ValidationError("--seeds must be >= 1") }
    }

    struct Cell: Encodable {
        var method: String
        var camera: String
        var protocolName: String
        var sequence: String
        var errors: [Double]
        var trainErrors: [Double]?
        var mean: Double
        var std: Double
        var finalLosses: [Float]
        var seconds: [Double]
        var row: String { "\(method)\(camera == "persp" ? " (persp model)" : "")" + (protocolName == "clean" ? "" : ", \(protocolName)") }
    }

    /// The (method, camera) pairs run under a protocol; nil entries are skipped with a note.
    func runs(for p: NRSfMProtocol) -> [(NRSfMMethod, NRSfMCamera)] {
        methods.flatMap { m -> [(NRSfMMethod, NRSfMCamera)] in
            switch p {
            case .missing where !m.supportsMissingData: return []
            case .lifting where !(m == .deepNRSfMPlusPlus || m == .deepNRSfM): return []
            case .perspective where m.supportsPerspective: return [(m, .ortho), (m, .persp)]
            default: return [(m, .ortho)]
            }
        }
    }

    func run() throws {
        let tracks = try sequences.map { name -> KeypointTracks in
            let t = try KeypointTracks.load(URL(fileURLWithPath: data).appendingPathComponent("\(name).npz"))
            guard t.points3D != nil else { throw CLIError("\(data)/\(name).npz has no points_3d ground truth") }
            return t
        }
        let plan = protocols.flatMap { p in runs(for: p).map { (p, $0.0, $0.1) } }
        for p in protocols {
            let skipped = methods.filter { m in !runs(for: p).contains { $0.0 == m } }
            if !skipped.isEmpty {
                FileHandle.standardError.write(Data("\(p): skipping \(skipped.map(\.rawValue).joined(separator: ", ")) (no \(p.description.hasPrefix("lift") ? "lifting network" : "missing-data mode"))\n".utf8))
            }
        }
        let total = plan.count * sequences.count * seeds
        var cells: [Cell] = []
        var done = 0
        let started = Date()
        for (p, method, camera) in plan {
            for (name, t) in zip(sequences, tracks) {
                var cell = Cell(method: method.rawValue, camera: camera.rawValue, protocolName: p.description, sequence: name,
                                errors: [], trainErrors: nil, mean: 0, std: 0, finalLosses: [], seconds: [])
                for seed in 0..<seeds {
                    var options = NRSfMOptions()
                    options.seed = UInt64(seed)
                    options.camera = camera
                    options.overrides = overrides
                    let c = try NRSfMBenchmarkCase(tracks: t, protocol: p, seed: UInt64(seed))
                    let score = try NRSfMRunner.benchmark(method, case: c, options: options)
                    cell.errors.append(score.normalizedError)
                    if let e = score.trainNormalizedError { cell.trainErrors = (cell.trainErrors ?? []) + [e] }
                    cell.finalLosses.append(score.finalLoss)
                    cell.seconds.append(score.seconds)
                    done += 1
                    FileHandle.standardError.write(String(format: "[%d/%d] %@ %@ seed %d: %.3f%%%@ (loss %.4g, %.1f s; %@ elapsed)\n",
                                                          done, total, cell.row, name, seed, score.normalizedError,
                                                          score.trainNormalizedError.map { String(format: " held-out, %.3f%% train", $0) } ?? "",
                                                          score.finalLoss, score.seconds,
                                                          ProgressLine.clock(Date().timeIntervalSince(started))).data(using: .utf8)!)
                }
                let m = cell.errors.reduce(0, +) / Double(cell.errors.count)
                cell.mean = m
                cell.std = cell.errors.count > 1 ? (cell.errors.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(cell.errors.count - 1)).squareRoot() : 0
                cells.append(cell)
            }
        }
        var md = "Normalized error (%), mean ± std over \(seeds) seed\(seeds == 1 ? "" : "s")\n\n"
        md += "| method | " + sequences.joined(separator: " | ") + " |\n|---|" + String(repeating: "---|", count: sequences.count) + "\n"
        var rows: [String] = []
        for c in cells where !rows.contains(c.row) { rows.append(c.row) }
        for row in rows {
            let values = sequences.map { s -> String in
                guard let c = cells.first(where: { $0.row == row && $0.sequence == s }) else { return "-" }
                return String(format: "%.2f ± %.2f", c.mean, c.std)
            }
            md += "| \(row) | " + values.joined(separator: " | ") + " |\n"
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
