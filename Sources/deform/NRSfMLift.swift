import ArgumentParser
import DeformGeometry
import DeformIO
import DeformNRSfM
import DeformTensor
import Foundation

/// `deform nrsfm lift`: 3D for unseen 2D tracks from a trained lifting network.
struct NRSfMLift: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lift",
        abstract: "Lift unseen 2D tracks to 3D with the network of a finished `nrsfm fit` run (one forward pass).",
        discussion: """
        The tracks must have the trained network's number of points and the camera convention it was trained with \
        (normalised image coordinates for a perspective model, or pixels with --intrinsics). With ground truth in the \
        file, the normalized error is printed and saved to metrics.json.
        """)

    @Argument(help: ArgumentHelp("A run folder written by `deform nrsfm fit` (its checkpoints/), or a .safetensors checkpoint.", valueName: "run"))
    var trained: String
    @Argument(help: "Keypoint tracks to lift (.npz, .json or .csv).") var tracks: String
    @Option(help: ArgumentHelp("Pinhole intrinsics of pixel tracks.", valueName: "fx,fy,cx,cy")) var intrinsics: String?
    @Option(name: .shortAndLong, help: "Output folder.") var output: String
    @Flag(help: "Replace an existing output folder.") var overwrite = false

    func validate() throws {
        if let intrinsics { _ = try parseIntrinsics(intrinsics) }
    }

    func run() throws {
        let checkpoint = try Self.checkpoint(in: trained)
        let lifter = try NRSfMLifters.load(from: checkpoint)
        let data = try loadTracks(tracks, intrinsics: intrinsics)
        guard data.pointCount == lifter.pointCount else {
            throw CLIError("\(tracks): \(data.pointCount) points per frame, but the network in \(checkpoint.path) was trained on \(lifter.pointCount)")
        }
        let folder = try RunFolder(output, overwrite: overwrite)
        do {
            let started = Date()
            let lifted = try lifter.lift(points2D: data.points2D, visibility: data.visibleFraction < 1 ? data.visibility : nil)
            let seconds = Date().timeIntervalSince(started)
            try writeReconstruction(to: folder.url("reconstruction.npz"), points3D: lifted.points3D, rotations: lifted.rotations,
                                    extra: ["canonical": lifted.canonical])
            let config: [String: Any] = ["command": "lift", "checkpoint": checkpoint.path, "method": lifter.method.rawValue,
                                         "tracks": tracks, "frames": data.frameCount, "points": data.pointCount]
            try writeAtomically(JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]),
                                to: folder.url("config.json"))
            var metrics = LiftMetrics(seconds: seconds)
            if let gt = data.points3D {
                metrics.scores = try ReconstructionScores(prediction: lifted.points3D, groundTruth: gt, alignScale: lifter.camera == .persp)
            }
            try writeJSON(metrics, to: folder.url("metrics.json"))
            try folder.commit()
            var line = String(format: "%@ lifted %d frames x %d points in %.3f s", lifter.method.rawValue, data.frameCount, data.pointCount, seconds)
            if let s = metrics.scores { line += ": " + s.summary }
            print(line)
            print("results in \(output)/ (reconstruction.npz, metrics.json, config.json)")
        } catch {
            folder.abandon()
            throw error
        }
    }

    /// The checkpoint of a run folder (the latest under checkpoints/) or the file itself.
    static func checkpoint(in path: String) throws -> URL {
        let url = URL(fileURLWithPath: path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw CLIError("\(path): no such run folder or checkpoint")
        }
        if !isDir.boolValue { return url }
        let dir = url.appendingPathComponent("checkpoints")
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
        guard let last = files.last else {
            throw CLIError("\(path): not a run with a trained network (no checkpoints/*.safetensors); methods that train one: deep-nrsfm++, deep-nrsfm, paul/adl with --set lifting=true")
        }
        return dir.appendingPathComponent(last)
    }
}

struct LiftMetrics: Encodable {
    var seconds: Double
    var scores: ReconstructionScores?
}

/// `deform nrsfm eval`: metrics of a reconstruction against ground truth.
struct NRSfMEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Recompute the 3D metrics of a run (or a reconstruction.npz) against ground-truth tracks.")

    @Argument(help: "A run folder (its reconstruction.npz) or a .npz holding points_3d [F, P, 3].") var reconstruction: String
    @Option(help: "Tracks with points_3d ground truth (.npz, .json or .csv).") var gt: String
    @Flag(help: "Fit a per-frame scale before the normalized error (for perspective reconstructions).") var alignScale = false
    @Option(name: .shortAndLong, help: "Also write the metrics as JSON to this file.") var output: String?

    func run() throws {
        var url = URL(fileURLWithPath: reconstruction)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw CLIError("\(reconstruction): no such run folder or file")
        }
        if isDir.boolValue { url = url.appendingPathComponent("reconstruction.npz") }
        let arrays = try readNPZ(url)
        guard let entry = arrays["points_3d"] else {
            throw CLIError("\(url.path): no 'points_3d' entry (expected [F, P, 3]); entries: \(arrays.keys.sorted().joined(separator: ", "))")
        }
        let prediction = entry.tensor()
        let truth = try KeypointTracks.load(URL(fileURLWithPath: gt))
        guard let groundTruth = truth.points3D else { throw CLIError("\(gt): no 3D ground truth (points_3d)") }
        guard prediction.shape == groundTruth.shape else {
            throw CLIError("\(url.path): points_3d has shape \(prediction.shape), but the ground truth in \(gt) has \(groundTruth.shape)")
        }
        let scores = try ReconstructionScores(prediction: prediction, groundTruth: groundTruth, alignScale: alignScale)
        print("\(url.path) vs \(gt): \(scores.summary)")
        if let output { try writeJSON(scores, to: URL(fileURLWithPath: output)) }
    }
}
