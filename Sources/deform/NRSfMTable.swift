import ArgumentParser
import DeformGeometry
import DeformIO
import DeformNRSfM
import DeformTensor
import Foundation

extension NRSfMProtocol: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

/// The error measure the table prints (table.json always holds both).
enum TableMetric: String, ExpressibleByArgument, CaseIterable {
    /// The normalized error of PAUL's Table 2.1 (per frame, depth flip allowed).
    case ne
    /// Akhter et al.'s e_3D, the measure of the published BMM row (one alignment per sequence).
    case akhter
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
        the frames, lift the other 20% with the trained network — PAUL in its lifting mode; errors on those). Each seed draws its own mask, \
        noise and split. \
        --set rank=paper gives BMM the rank its authors hand-picked for each sequence (BMMConfig.paperRank). \
        --metric akhter prints Akhter et al.'s e_3D, the measure of the published BMM numbers, instead of the normalized error.
        """)

    @Option(help: "Folder with the sequences (<name>.npz).") var data = "../shared/data/nrsfm"
    @Option(parsing: .upToNextOption, help: "Sequences (file names without .npz).")
    var sequences = ["drink", "pickup", "yoga", "face", "walking"]
    @Option(parsing: .upToNextOption, help: "Methods.") var methods: [NRSfMMethod] = [.paul]
    @Option(parsing: .upToNextOption, help: "Protocols: clean, persp, missing<percent>, noise<percent>, lift (see below).")
    var protocols: [NRSfMProtocol] = [.clean]
    @Option(help: "Seeds per method and sequence (first-seed, first-seed + 1, ...).") var seeds = 5
    @Option(help: "The first seed, so a table can be split over machines or extended: every seed gives the same run wherever it runs.")
    var firstSeed = 0
    @Option(name: .customLong("set"), help: ArgumentHelp("Override a method hyper-parameter for every run (repeatable).", valueName: "key=value"))
    var overrides: [String] = []
    @Option(name: .shortAndLong, help: "Write table.md and table.json into this folder.") var output: String?
    @Option(help: "Runs at a time, each in its own process with one thread (1 = one run at a time using every core).")
    var jobs = 1
    @Option(help: "Error measure of the printed table: ne (normalized error) or akhter (Akhter et al.'s e_3D; not defined for persp).")
    var metric: TableMetric = .ne

    func validate() throws {
        if seeds < 1 { throw ValidationError("--seeds must be >= 1") }
        if firstSeed < 0 { throw ValidationError("--first-seed must be >= 0") }
        if jobs < 1 { throw ValidationError("--jobs must be >= 1") }
    }

    struct Cell: Encodable {
        var method: String
        var camera: String
        var protocolName: String
        var sequence: String
        /// The seed of each entry of the per-seed arrays below.
        var seeds: [Int] = []
        var errors: [Double]
        var trainErrors: [Double]?
        var mean: Double
        var std: Double
        /// Akhter et al.'s e_3D per seed, where defined.
        var akhterErrors: [Double]?
        var akhterMean: Double?
        var akhterStd: Double?
        var finalLosses: [Float]
        var seconds: [Double]
        var row: String { tableRow(method: method, camera: camera, protocolName: protocolName) }

        mutating func add(_ score: NRSfMBenchmarkScore, seed: Int) {
            seeds.append(seed)
            errors.append(score.normalizedError)
            if let e = score.trainNormalizedError { trainErrors = (trainErrors ?? []) + [e] }
            if let e = score.akhterError { akhterErrors = (akhterErrors ?? []) + [e] }
            finalLosses.append(score.finalLoss)
            seconds.append(score.seconds)
            (mean, std) = Self.meanAndStd(errors)
            if let a = akhterErrors, a.count == errors.count { (akhterMean, akhterStd) = Self.meanAndStd(a) }
        }

        static func meanAndStd(_ x: [Double]) -> (Double, Double) {
            let mean = x.reduce(0, +) / Double(x.count)
            let std = x.count > 1 ? (x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(x.count - 1)).squareRoot() : 0
            return (mean, std)
        }
    }

    /// The overrides of one job: `rank=paper` becomes BMM's hand-picked rank for the job's sequence.
    func resolvedOverrides(for job: TableJob) throws -> [String] {
        try overrides.map { o in
            guard o.replacingOccurrences(of: " ", with: "") == "rank=paper" else { return o }
            guard job.method == .bmm else { return o }
            guard let k = BMMConfig.paperRank[job.sequence] else {
                throw CLIError("rank=paper: the BMM authors list no rank for '\(job.sequence)' (they do for \(BMMConfig.paperRank.keys.sorted().joined(separator: ", ")))")
            }
            return "rank=\(k)"
        }
    }

    /// The (method, camera) pairs run under a protocol; nil entries are skipped with a note.
    func runs(for p: NRSfMProtocol) -> [(NRSfMMethod, NRSfMCamera)] {
        methods.flatMap { m -> [(NRSfMMethod, NRSfMCamera)] in
            switch p {
            case .missing where !m.supportsMissingData: return []
            case .lifting where !m.canLift: return []
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
        var jobsList: [TableJob] = []
        for (p, method, camera) in plan {
            for name in sequences {
                for seed in firstSeed..<(firstSeed + seeds) {
                    jobsList.append(TableJob(method: method, camera: camera, protocolName: p.description, sequence: name, seed: seed))
                }
            }
        }
        let started = Date()
        var done = 0
        let lock = NSLock()
        let report: (TableJob, NRSfMBenchmarkScore) -> Void = { job, score in
            lock.lock()
            defer { lock.unlock() }
            done += 1
            FileHandle.standardError.write(String(format: "[%d/%d] %@ %@ seed %d: %.3f%%%@%@ (loss %.4g, %.1f s; %@ elapsed)\n",
                                                  done, total, job.row, job.sequence, job.seed, score.normalizedError,
                                                  score.trainNormalizedError.map { String(format: " held-out, %.3f%% train", $0) } ?? "",
                                                  score.akhterError.map { String(format: ", Akhter e3D %.3f%%", $0) } ?? "",
                                                  score.finalLoss, score.seconds,
                                                  ProgressLine.clock(Date().timeIntervalSince(started))).data(using: .utf8)!)
        }
        var scores: [NRSfMBenchmarkScore?] = Array(repeating: nil, count: jobsList.count)
        if jobs == 1 {
            for (i, job) in jobsList.enumerated() {
                let t = tracks[sequences.firstIndex(of: job.sequence)!]
                scores[i] = try job.run(tracks: t, overrides: try resolvedOverrides(for: job))
                report(job, scores[i]!)
            }
        } else {
            let dataPath = data
            let jobOverrides = try jobsList.map { try resolvedOverrides(for: $0) }
            var firstError: Error?
            let next = Counter()
            let workers = min(jobs, jobsList.count)
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                while let i = next.take(below: jobsList.count) {
                    do {
                        let score = try jobsList[i].runInChildProcess(dataFolder: dataPath, overrides: jobOverrides[i])
                        lock.lock(); scores[i] = score; lock.unlock()
                        report(jobsList[i], score)
                    } catch {
                        lock.lock(); if firstError == nil { firstError = error }; lock.unlock()
                        next.stop()
                    }
                }
            }
            if let firstError { throw firstError }
        }
        var cells: [Cell] = []
        for (i, job) in jobsList.enumerated() {
            let score = scores[i]!
            if let last = cells.last, last.row == job.row, last.sequence == job.sequence {
                cells[cells.count - 1].add(score, seed: job.seed)
            } else {
                var cell = Cell(method: job.method.rawValue, camera: job.camera.rawValue, protocolName: job.protocolName, sequence: job.sequence,
                                errors: [], trainErrors: nil, mean: 0, std: 0, akhterErrors: nil, akhterMean: nil, akhterStd: nil,
                                finalLosses: [], seconds: [])
                cell.add(score, seed: job.seed)
                cells.append(cell)
            }
        }
        let measure = metric == .ne ? "Normalized error" : "Akhter et al.'s e_3D"
        let seedNames = seeds == 1 ? "seed \(firstSeed)" : firstSeed == 0 ? "\(seeds) seeds" : "seeds \(firstSeed)-\(firstSeed + seeds - 1)"
        var md = "\(measure) (%), mean ± std over \(seedNames)\n\n"
        md += "| method | " + sequences.joined(separator: " | ") + " |\n|---|" + String(repeating: "---|", count: sequences.count) + "\n"
        var rows: [String] = []
        for c in cells where !rows.contains(c.row) { rows.append(c.row) }
        for row in rows {
            let values = sequences.map { s -> String in
                guard let c = cells.first(where: { $0.row == row && $0.sequence == s }) else { return "-" }
                switch metric {
                case .ne: return String(format: "%.2f ± %.2f", c.mean, c.std)
                case .akhter:
                    guard let m = c.akhterMean, let sd = c.akhterStd else { return "n/a" }
                    return String(format: "%.2f ± %.2f", m, sd)
                }
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

func tableRow(method: String, camera: String, protocolName: String) -> String {
    "\(method)\(camera == "persp" ? " (persp model)" : "")" + (protocolName == "clean" ? "" : ", \(protocolName)")
}

/// One run of the table: a method on one protocol variant of one sequence with one seed.
struct TableJob {
    var method: NRSfMMethod
    var camera: NRSfMCamera
    var protocolName: String
    var sequence: String
    var seed: Int
    var row: String { tableRow(method: method.rawValue, camera: camera.rawValue, protocolName: protocolName) }

    func run(tracks: KeypointTracks, overrides: [String]) throws -> NRSfMBenchmarkScore {
        var options = NRSfMOptions()
        options.seed = UInt64(seed)
        options.camera = camera
        options.overrides = overrides
        let c = try NRSfMBenchmarkCase(tracks: tracks, protocol: NRSfMProtocol(protocolName)!, seed: UInt64(seed))
        return try NRSfMRunner.benchmark(method, case: c, options: options)
    }

    /// Runs the job as `deform nrsfm table-case` in a child process limited to one thread.
    func runInChildProcess(dataFolder: String, overrides: [String]) throws -> NRSfMBenchmarkScore {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = ["nrsfm", "table-case", URL(fileURLWithPath: dataFolder).appendingPathComponent("\(sequence).npz").path,
                             "--method", method.rawValue, "--camera", camera.rawValue, "--protocol", protocolName,
                             "--seed", "\(seed)"] + overrides.flatMap { ["--set", $0] }
        var env = ProcessInfo.processInfo.environment
        env["DEFORM_THREADS"] = "1"
        env["OPENBLAS_NUM_THREADS"] = "1"
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes to the end before waiting, so a chatty child never blocks on a full pipe.
        let errBox = DataBox()
        let errReader = Thread { errBox.set(err.fileHandleForReading.readDataToEndOfFile()) }
        errReader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !errReader.isFinished { usleep(1000) }
        let errData = errBox.get()
        guard process.terminationStatus == 0 else {
            throw CLIError("\(row) \(sequence) seed \(seed) failed (exit \(process.terminationStatus)): \(String(decoding: errData, as: UTF8.self))")
        }
        do { return try JSONDecoder().decode(NRSfMBenchmarkScore.self, from: outData) } catch {
            throw CLIError("\(row) \(sequence) seed \(seed): unreadable result from the child process (\(error))")
        }
    }
}

/// Data handed from a reader thread.
final class DataBox: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ d: Data) { lock.lock(); data = d; lock.unlock() }
    func get() -> Data { lock.lock(); defer { lock.unlock() }; return data }
}

/// Hands out job indices to the workers of `--jobs`.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    private var stopped = false

    func take(below n: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped, value < n else { return nil }
        value += 1
        return value - 1
    }

    func stop() { lock.lock(); stopped = true; lock.unlock() }
}

/// `deform nrsfm table-case`: one run of the table, its score as JSON on stdout (used by `table --jobs`).
struct NRSfMTableCase: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "table-case", abstract: "Run one benchmark case and print its score as JSON (used by `table --jobs`).",
        shouldDisplay: false)

    @Argument var tracks: String
    @Option var method: NRSfMMethod
    @Option var camera: NRSfMCamera = .ortho
    @Option(name: .customLong("protocol")) var protocolName: String
    @Option var seed: Int = 0
    @Option(name: .customLong("set")) var overrides: [String] = []

    func run() throws {
        guard NRSfMProtocol(protocolName) != nil else { throw ValidationError("unknown protocol '\(protocolName)'") }
        let t = try KeypointTracks.load(URL(fileURLWithPath: tracks))
        let job = TableJob(method: method, camera: camera, protocolName: protocolName, sequence: "", seed: seed)
        let score = try job.run(tracks: t, overrides: overrides)
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        FileHandle.standardOutput.write(try encoder.encode(score))
    }
}
