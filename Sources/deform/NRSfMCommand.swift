import ArgumentParser
import DeformGeometry
import DeformIO
import DeformNN
import DeformNRSfM
import DeformTensor
import DeformView
import Foundation

struct NRSfM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nrsfm",
        abstract: "Non-rigid structure from motion: 3D shapes and cameras from 2D keypoint tracks.",
        subcommands: [NRSfMFit.self, NRSfMLift.self, NRSfMEval.self, NRSfMTable.self, NRSfMExample.self, NRSfMTableCase.self])
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

    @Argument(help: "Keypoint tracks (.npz, .json or .csv).") var tracks: String
    @Option(help: "Method: \(NRSfMMethod.allCases.map(\.rawValue).joined(separator: ", ")) (adl = PAUL without the auto-encoder term; deep-nrsfm = Deep NRSfM++ with ReLU instead of block soft thresholding).")
    var method: NRSfMMethod = .paul
    @Option(help: "Camera model: ortho, or persp (deep-nrsfm++ and deep-nrsfm; tracks in normalised image coordinates, or pixels with --intrinsics).")
    var camera: NRSfMCamera = .ortho
    @Option(help: ArgumentHelp("Pinhole intrinsics of pixel tracks, converted to normalised image coordinates before fitting.", valueName: "fx,fy,cx,cy"))
    var intrinsics: String?
    @Option(help: "Bottleneck size K (PAUL: 4 for short sequences, 8 for articulated data); for bmm, the rank K.") var bottleneck: Int?
    @Option(help: "Training iterations.") var iterations: Int?
    @Option(help: "Adam learning rate.") var learningRate: Float?
    @Flag(help: "PAUL/ADL: also train the 2D→3D encoder h, so the model lifts unseen frames (`deform nrsfm lift`).") var lifting = false
    @Option(help: "Iterations of rigid warm-up (codes held at zero) before deformation is learned.") var rigidWarmup: Int?
    @Option(name: .customLong("set"), help: ArgumentHelp("Override any method hyper-parameter by its config.json name, e.g. --set codeInitStd=0.1 (repeatable).", valueName: "key=value"))
    var overrides: [String] = []
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Independent restarts (seeds seed, seed+1, ...); the one with the lowest training loss is kept (no ground truth involved).")
    var restarts = 1
    @Option(name: .shortAndLong, help: "Run folder to write.") var output: String
    @Flag(help: "Also write one PLY point cloud per frame under ply/.") var ply = false
    @Flag(help: "Replace an existing run folder.") var overwrite = false

    func validate() throws {
        if let bottleneck, bottleneck < 1 { throw ValidationError("--bottleneck must be >= 1") }
        if let iterations, iterations < 1 { throw ValidationError("--iterations must be >= 1") }
        if restarts < 1 { throw ValidationError("--restarts must be >= 1") }
        if let intrinsics { _ = try parseIntrinsics(intrinsics) }
        if lifting && !(method == .paul || method == .adl) {
            throw ValidationError("--lifting is for paul and adl (deep-nrsfm++ and deep-nrsfm always train a lifting network; bmm has none)")
        }
    }

    /// The convenience flags as overrides (applied before --set, so --set wins).
    var allOverrides: [String] {
        var o: [String] = []
        if let bottleneck { o.append(method == .bmm ? "rank=\(bottleneck)" : "bottleneck=\(bottleneck)") }
        if let iterations { o.append("iterations=\(iterations)") }
        if let learningRate { o.append("learningRate=\(learningRate)") }
        if let rigidWarmup { o.append("rigidWarmupIterations=\(rigidWarmup)") }
        if lifting { o.append("lifting=true") }
        return o + overrides
    }

    func run() throws {
        let data = try loadTracks(tracks, intrinsics: intrinsics)
        let run = try RunFolder(output, overwrite: overwrite)
        do {
            try fit(data, run: run)
            try run.commit()
        } catch {
            run.abandon()
            throw error
        }
    }

    private func fit(_ data: KeypointTracks, run: RunFolder) throws {
        var options = NRSfMOptions()
        options.seed = seed
        options.restarts = restarts
        options.camera = camera
        options.overrides = allOverrides
        var bar: ProgressLine?
        var barRestart = -1
        options.progress = { r, step, total, loss in
            if r != barRestart {
                bar?.finish()
                bar = ProgressLine(total: total, label: restarts > 1 ? "\(method.rawValue) [\(r + 1)/\(restarts)]" : method.rawValue)
                barRestart = r
            }
            bar?.update(step: step, loss: loss)
        }
        let started = Date()
        let result = try NRSfMRunner.fit(method, tracks: data, options: options)
        bar?.finish()
        let seconds = Date().timeIntervalSince(started)

        var config: [String: Any] = ["method": method.rawValue, "camera": camera.rawValue, "tracks": tracks, "frames": data.frameCount,
                                     "points": data.pointCount, "restarts": restarts, "seed": result.seed,
                                     "config": result.config]
        if let intrinsics { config["intrinsics"] = intrinsics }
        try writeAtomically(JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]),
                            to: run.url("config.json"))
        let log = result.log.map { "{\"restart\":\($0.restart),\"step\":\($0.step),\"loss\":\($0.loss)}" }
        try writeAtomically(Data((log.joined(separator: "\n") + "\n").utf8), to: run.url("log.jsonl"))
        try writeReconstruction(to: run.url("reconstruction.npz"), points3D: result.points3D, rotations: result.rotations,
                                extra: result.extras)
        if let model = result.model {
            let checkpoints = run.url("checkpoints")
            try FileManager.default.createDirectory(at: checkpoints, withIntermediateDirectories: true)
            let step = result.log.last?.step ?? 0
            let file = checkpoints.appendingPathComponent(String(format: "step-%09d.safetensors", step + 1))
            if let lifter = result.lifter {
                try lifter.save(to: file)
            } else if let paul = model as? PAULModel {
                try paul.save(to: file)   // with its config, so `nrsfm lift` can say why it cannot lift
            } else {
                try saveCheckpoint(model, to: file, metadata: ["method": method.rawValue, "seed": "\(result.seed)"])
            }
        }
        if ply {
            let dir = run.url("ply")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for f in 0..<data.frameCount {
                let pts = result.points3D.narrow(axis: 0, start: f, length: 1).squeezed([0])
                try writePLY(to: dir.appendingPathComponent(String(format: "frame-%05d.ply", f)), points: pts)
            }
        }
        var metrics = FitMetrics(finalLoss: result.finalLoss, seconds: seconds, seed: result.seed)
        if let gt = data.points3D {
            // A perspective reconstruction's unit is set by the assumed depth: compare up to scale.
            metrics.scores = try ReconstructionScores(prediction: result.points3D, groundTruth: gt, alignScale: camera == .persp)
            metrics.normalizedErrorPercent = metrics.scores!.normalizedErrorPercent
        }
        try writeJSON(metrics, to: run.url("metrics.json"))
        let previewWritten = writePreview(result.points3D, groundTruth: data.points3D, to: run.url("preview.png"))
        var summary = String(format: "%@: %d frames x %d points, loss %.5g, %.1f s", method.rawValue, data.frameCount, data.pointCount,
                             result.finalLoss, seconds)
        if let ne = metrics.normalizedErrorPercent { summary += String(format: ", normalized error %.3f%%", ne) }
        print(summary)
        print("results in \(output)/ (reconstruction.npz, metrics.json, config.json, log.jsonl\(previewWritten ? ", preview.png" : "")"
              + "\(result.model != nil ? ", checkpoints/" : ""))")
        if result.lifter != nil { print("lift unseen frames: deform nrsfm lift \(output) <tracks> -o <folder>") }
    }

    /// Writes `preview.png` (sampled frames from the camera and from the side, against the ground
    /// truth when there is one). A preview that cannot be drawn is a warning, not a failed run: the
    /// reconstruction it would illustrate is already written.
    private func writePreview(_ points3D: Tensor, groundTruth: Tensor?, to url: URL) -> Bool {
        do {
            func sequence(_ t: Tensor) -> PointSequence { PointSequence(frames: t.shape[0], points: t.shape[1], xyz: t.scalars) }
            var options = NRSfMPreview.Options()
            options.alignScale = camera == .persp   // the same up-to-scale comparison as the metrics
            try writePNG(NRSfMPreview.render(prediction: sequence(points3D), groundTruth: groundTruth.map(sequence), options: options), to: url)
            return true
        } catch {
            FileHandle.standardError.write(Data("warning: preview.png not written: \(error)\n".utf8))
            return false
        }
    }
}

extension NRSfMMethod: ExpressibleByArgument {}
extension NRSfMCamera: ExpressibleByArgument {}

/// `fx,fy,cx,cy` as a 3x3 intrinsics matrix.
func parseIntrinsics(_ text: String) throws -> Tensor {
    let v = text.split(separator: ",").compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
    guard v.count == 4, v[0] > 0, v[1] > 0, v.allSatisfy(\.isFinite) else {
        throw ValidationError("--intrinsics: expected fx,fy,cx,cy with positive focal lengths, got '\(text)'")
    }
    return Tensor([v[0], 0, v[2], 0, v[1], v[3], 0, 0, 1], shape: [3, 3])
}

/// Loads tracks; with intrinsics, converts pixel coordinates to normalised image coordinates.
func loadTracks(_ path: String, intrinsics: String?) throws -> KeypointTracks {
    let data = try KeypointTracks.load(URL(fileURLWithPath: path))
    guard let intrinsics else { return data }
    let k = try parseIntrinsics(intrinsics)
    let normalized = Camera.normalizedCoordinates(data.points2D * data.visibility.unsqueezed(-1), intrinsics: k)
    return try KeypointTracks(points2D: normalized, visibility: data.visibility, points3D: data.points3D, source: data.source)
}

struct FitMetrics: Encodable {
    var finalLoss: Float
    var seconds: Double
    var seed: UInt64
    var normalizedErrorPercent: Double?
    var scores: ReconstructionScores?

    enum CodingKeys: String, CodingKey { case finalLoss, seconds, seed, normalizedErrorPercent, normalizedErrorPerFrame, mpjpe, paMPJPE, stress, akhterErrorPercent, scaleAligned }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(finalLoss, forKey: .finalLoss)
        try c.encode(seconds, forKey: .seconds)
        try c.encode(seed, forKey: .seed)
        try c.encodeIfPresent(normalizedErrorPercent, forKey: .normalizedErrorPercent)
        try c.encodeIfPresent(scores?.normalizedErrorPerFrame, forKey: .normalizedErrorPerFrame)
        try c.encodeIfPresent(scores?.mpjpe, forKey: .mpjpe)
        try c.encodeIfPresent(scores?.paMPJPE, forKey: .paMPJPE)
        try c.encodeIfPresent(scores?.stress, forKey: .stress)
        try c.encodeIfPresent(scores?.akhterErrorPercent, forKey: .akhterErrorPercent)
        try c.encodeIfPresent(scores?.scaleAligned, forKey: .scaleAligned)
    }
}

/// The 3D metrics of a reconstruction against ground truth, as the papers define them.
struct ReconstructionScores: Encodable {
    /// Normalized error (%), mean over frames, and per frame.
    var normalizedErrorPercent: Double
    var normalizedErrorPerFrame: [Double]
    /// MPJPE after centring both shapes (orthographic reconstructions carry no translation),
    /// least-squares scale and depth flip, in the ground truth's unit.
    var mpjpe: Double
    /// MPJPE after similarity (Procrustes) alignment, in the ground truth's unit.
    var paMPJPE: Double
    /// STRESS (scale-aligned), in the ground truth's unit.
    var stress: Double
    /// Akhter et al.'s e_3D (%), the measure of the published BMM numbers (one alignment for the
    /// whole sequence); `nil` for scale-aligned (perspective) scoring, which it does not define.
    var akhterErrorPercent: Double?
    /// Whether the normalized error was measured after a per-frame scale alignment.
    var scaleAligned: Bool

    init(prediction: Tensor, groundTruth: Tensor, alignScale: Bool) throws {
        let ne = try Metrics3D.normalizedError(prediction: prediction, groundTruth: groundTruth, alignScale: alignScale)
        normalizedErrorPercent = ne.mean
        normalizedErrorPerFrame = ne.perFrame
        mpjpe = try Metrics3D.mpjpe(prediction: prediction, groundTruth: groundTruth, centering: .mean).mean
        paMPJPE = try Metrics3D.paMPJPE(prediction: prediction, groundTruth: groundTruth).mean
        stress = try Metrics3D.stress(prediction: prediction, groundTruth: groundTruth, alignScale: true).mean
        akhterErrorPercent = alignScale ? nil : try Metrics3D.akhterError(prediction: prediction, groundTruth: groundTruth).mean
        scaleAligned = alignScale
    }

    var summary: String {
        String(format: "normalized error %.3f%%%@, MPJPE %.4g, PA-MPJPE %.4g, STRESS %.4g", normalizedErrorPercent,
               scaleAligned ? " (scale-aligned)" : "", mpjpe, paMPJPE, stress)
            + (akhterErrorPercent.map { String(format: ", Akhter e3D %.3f%%", $0) } ?? "")
    }
}
