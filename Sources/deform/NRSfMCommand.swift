import ArgumentParser
import DeformGeometry
import DeformIO
import DeformNN
import DeformNRSfM
import DeformTensor
import Foundation

struct NRSfM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nrsfm",
        abstract: "Non-rigid structure from motion: 3D shapes and cameras from 2D keypoint tracks.",
        subcommands: [NRSfMFit.self, NRSfMExample.self])
}

/// `deform nrsfm example`: writes a synthetic sequence with ground truth (no download needed).
struct NRSfMExample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "example",
        abstract: "Write a synthetic non-rigid sequence (orthographic tracks + 3D ground truth) as NPZ.")

    @Option(name: .shortAndLong, help: "Output .npz file.")
    var output: String
    @Option(help: "Frames.") var frames = 300
    @Option(help: "Points per frame.") var points = 30
    @Option(help: "Deformation modes of the low-rank shape model.") var modes = 2
    @Option(help: "Random seed.") var seed: UInt64 = 0

    func validate() throws {
        if frames < 2 || points < 3 || modes < 1 { throw ValidationError("need frames >= 2, points >= 3, modes >= 1") }
    }

    func run() throws {
        let data = SyntheticNRSfM(frames: frames, points: points, modes: modes, seed: seed)
        let tracks = try KeypointTracks(points2D: data.points2D, visibility: .ones([frames, points]),
                                        points3D: data.points3D, source: output)
        try tracks.writeNPZ(to: URL(fileURLWithPath: output))
        print("wrote \(output): \(frames) frames x \(points) points (orthographic 2D + 3D ground truth)")
    }
}

struct NRSfMFit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fit",
        abstract: "Reconstruct every frame's 3D shape and camera rotation from 2D tracks.",
        discussion: """
        Tracks: NPZ (points_2d [F,P,2], optional visibility [F,P], optional points_3d [F,P,3]), \
        C3DPO-style JSON or CSV (frame, point, u, v[, visible]). With ground truth in the file, the \
        normalized error is printed and saved to metrics.json.
        """)

    enum Method: String, ExpressibleByArgument, CaseIterable { case paul, adl }

    @Argument(help: "Keypoint tracks (.npz, .json or .csv).") var tracks: String
    @Option(help: "Method: paul, or adl (PAUL without the auto-encoder term, the ablation).") var method: Method = .paul
    @Option(help: "Bottleneck size K (paper: 4 for short sequences, 8 for articulated data).") var bottleneck: Int?
    @Option(help: "Training iterations.") var iterations: Int?
    @Option(help: "Adam learning rate.") var learningRate: Float?
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Iterations of rigid warm-up (codes held at zero) before deformation is learned.")
    var rigidWarmup: Int?
    @Option(help: "Independent restarts (seeds seed, seed+1, ...); the one with the lowest training loss is kept (no ground truth involved).")
    var restarts = 1
    @Option(name: .customLong("set"), help: ArgumentHelp("Override any method hyper-parameter by its config.json name, e.g. --set codeInitStd=0.1 (repeatable).", valueName: "key=value"))
    var overrides: [String] = []
    @Option(name: .shortAndLong, help: "Run folder to write.") var output: String
    @Flag(help: "Also write one PLY point cloud per frame under ply/.") var ply = false
    @Flag(help: "Replace an existing run folder.") var overwrite = false

    func validate() throws {
        if let bottleneck, bottleneck < 1 { throw ValidationError("--bottleneck must be >= 1") }
        if let iterations, iterations < 1 { throw ValidationError("--iterations must be >= 1") }
        if restarts < 1 { throw ValidationError("--restarts must be >= 1") }
    }

    func run() throws {
        let data = try KeypointTracks.load(URL(fileURLWithPath: tracks))
        if data.visibleFraction < 1 {
            throw CLIError("\(tracks): \(String(format: "%.1f", 100 * (1 - data.visibleFraction)))% of the points are hidden; PAUL's missing-data mode is not implemented yet — pass complete tracks")
        }
        var config = PAULConfig()
        if let bottleneck { config.bottleneck = bottleneck }
        if let iterations { config.iterations = iterations }
        if let learningRate { config.learningRate = learningRate }
        if let rigidWarmup { config.rigidWarmupIterations = rigidWarmup }
        config = try applyOverrides(overrides, to: config)
        config.useAutoencoderTerm = method == .paul
        let run = try RunFolder(output, overwrite: overwrite)
        do {
            try fit(data, config: config, run: run)
            try run.commit()
        } catch {
            run.abandon()
            throw error
        }
    }

    private func fit(_ data: KeypointTracks, config base: PAULConfig, run: RunFolder) throws {
        var best: (result: PAULResult, seed: UInt64)?
        var log: [String] = []
        let started = Date()
        for r in 0..<restarts {
            var config = base
            config.seed = seed &+ UInt64(r)
            let label = restarts > 1 ? "\(method.rawValue) [\(r + 1)/\(restarts)]" : method.rawValue
            let bar = ProgressLine(total: config.iterations, label: label)
            let result = try PAUL.fit(points2D: data.points2D, config: config, logEvery: 50) { step, loss in
                bar.update(step: step, loss: loss)
                if step % 50 == 0 || step == config.iterations - 1 {
                    log.append("{\"restart\":\(r),\"seed\":\(config.seed),\"step\":\(step),\"loss\":\(loss)}")
                }
            }
            bar.finish()
            if best == nil || result.finalLoss < best!.result.finalLoss { best = (result, config.seed) }
        }
        let (result, bestSeed) = best!
        var config = base
        config.seed = bestSeed
        let seconds = Date().timeIntervalSince(started)

        try writeJSON(ResolvedConfig(method: method.rawValue, tracks: tracks, frames: data.frameCount,
                                     points: data.pointCount, restarts: restarts, paul: config),
                      to: run.url("config.json"))
        try writeAtomically(Data((log.joined(separator: "\n") + "\n").utf8), to: run.url("log.jsonl"))
        try writeReconstruction(to: run.url("reconstruction.npz"), points3D: result.points3D, rotations: result.rotations,
                                extra: ["canonical": result.canonical, "codes": result.codes])
        let checkpoints = run.url("checkpoints")
        try FileManager.default.createDirectory(at: checkpoints, withIntermediateDirectories: true)
        try saveCheckpoint(result.model, to: checkpoints.appendingPathComponent(String(format: "step-%09d.safetensors", config.iterations)),
                           metadata: ["method": method.rawValue, "seed": "\(bestSeed)"])
        if ply {
            let dir = run.url("ply")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for f in 0..<data.frameCount {
                let pts = result.points3D.narrow(axis: 0, start: f, length: 1).squeezed([0])
                try writePLY(to: dir.appendingPathComponent(String(format: "frame-%05d.ply", f)), points: pts)
            }
        }
        var metrics = FitMetrics(finalLoss: result.finalLoss, seconds: seconds, seed: bestSeed)
        if let gt = data.points3D {
            let ne = try Metrics3D.normalizedError(prediction: result.points3D, groundTruth: gt)
            metrics.normalizedErrorPercent = ne.mean
            metrics.normalizedErrorPerFrame = ne.perFrame
        }
        try writeJSON(metrics, to: run.url("metrics.json"))
        var summary = String(format: "%@: %d frames x %d points, loss %.5g, %.1f s", method.rawValue, data.frameCount, data.pointCount,
                             result.finalLoss, seconds)
        if let ne = metrics.normalizedErrorPercent { summary += String(format: ", normalized error %.3f%%", ne) }
        print(summary)
        print("results in \(output)/ (reconstruction.npz, metrics.json, config.json, log.jsonl, checkpoints/)")
    }
}

struct ResolvedConfig: Encodable {
    var method: String
    var tracks: String
    var frames: Int
    var points: Int
    var restarts: Int
    var paul: PAULConfig
}

struct FitMetrics: Encodable {
    var finalLoss: Float
    var seconds: Double
    var seed: UInt64
    var normalizedErrorPercent: Double?
    var normalizedErrorPerFrame: [Double]?
}

/// Applies `key=value` overrides to a Codable config through its JSON form, so every field a
/// config.json shows can be set from the command line; unknown keys and bad values are errors.
func applyOverrides<C: Codable>(_ overrides: [String], to config: C) throws -> C {
    if overrides.isEmpty { return config }
    guard var dict = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as? [String: Any] else { return config }
    for item in overrides {
        let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, let current = dict[parts[0]] else {
            throw CLIError("--set \(item): expected key=value with key one of \(dict.keys.sorted().joined(separator: ", "))")
        }
        let text = parts[1]
        let value: Any
        if current is [Any] {
            value = text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        } else if let b = Bool(text) {
            value = b
        } else if let d = Double(text) {
            value = d
        } else {
            value = text
        }
        dict[parts[0]] = value
    }
    do {
        return try JSONDecoder().decode(C.self, from: JSONSerialization.data(withJSONObject: dict))
    } catch {
        throw CLIError("--set: the overridden config does not decode (\(error))")
    }
}
