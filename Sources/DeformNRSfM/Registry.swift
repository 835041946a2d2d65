import DeformGeometry
import DeformIO
import DeformNN
import DeformTensor
import Foundation

/// The NRSfM methods `deform nrsfm` can run, by their command-line names.
public enum NRSfMMethod: String, CaseIterable, Codable, Sendable {
    /// PAUL, the Procrustean auto-encoder (thesis ch. 2), NRSfM mode.
    case paul
    /// PAUL's auto-decoder baseline (L_recon.AD + L_reg only), for the ablation.
    case adl
    /// Deep NRSfM++ (thesis ch. 3): block-sparse coding network with block soft thresholding.
    case deepNRSfMPlusPlus = "deep-nrsfm++"
    /// Deep NRSfM: the same network with ReLU instead of block soft thresholding (Table 3.2 "ReLU").
    case deepNRSfM = "deep-nrsfm"
    /// Dai, Li & He's prior-free block matrix method (the "BMM" row of PAUL's Table 2.1).
    case bmm

    /// Whether the method accepts tracks with hidden points.
    public var supportsMissingData: Bool {
        switch self {
        case .paul, .adl, .deepNRSfMPlusPlus, .deepNRSfM: return true
        case .bmm: return false
        }
    }

    /// Whether the method trains a network that lifts unseen frames (PAUL and ADL in their
    /// lifting mode, `--set lifting=true`; Deep NRSfM(++) always).
    public var canLift: Bool { self != .bmm }

    /// Overrides that make the method train a lifting network.
    var liftingOverrides: [String] { self == .paul || self == .adl ? ["lifting=true"] : [] }

    /// Whether the method has a perspective camera model (all methods accept orthographic tracks).
    public var supportsPerspective: Bool { self == .deepNRSfMPlusPlus || self == .deepNRSfM }
}

/// The camera model a method assumes.
public enum NRSfMCamera: String, CaseIterable, Codable, Sendable {
    /// Orthographic / weak perspective: tracks in any unit.
    case ortho
    /// Pinhole: tracks in normalised image coordinates (unit focal plane).
    case persp
}

/// Options shared by every method.
public struct NRSfMOptions {
    public var seed: UInt64 = 0
    /// Independent runs with seeds `seed, seed+1, ...`; the one with the lowest final training loss
    /// is kept (no ground truth involved).
    public var restarts = 1
    /// Camera model (``NRSfMMethod/supportsPerspective`` for `.persp`).
    public var camera: NRSfMCamera = .ortho
    /// `key=value` overrides of the method's config, by its JSON field names.
    public var overrides: [String] = []
    /// Called during training with (restart, step, total steps, loss).
    public var progress: ((Int, Int, Int, Float) -> Void)?

    public init() {}
}

/// A method's output in a common form.
public struct NRSfMReconstruction {
    public var method: NRSfMMethod
    /// Camera-frame 3D points [F, P, 3] in the input's units.
    public var points3D: Tensor
    /// Camera rotations [F, 3, 3].
    public var rotations: Tensor
    /// Further arrays for reconstruction.npz (e.g. canonical shapes, codes).
    public var extras: [String: Tensor]
    public var finalLoss: Float
    /// The trained model, when the method has one (saved as a checkpoint).
    public var model: Module?
    /// The trained network as a lifter of unseen frames, when the method has one.
    public var lifter: NRSfMLifter?
    /// The fully resolved method config as a JSON object.
    public var config: [String: Any]
    /// Training-loss log: (restart, step, loss).
    public var log: [(restart: Int, step: Int, loss: Float)]
    /// The seed of the kept run.
    public var seed: UInt64
}

public enum NRSfMRunner {
    /// Runs `method` on `tracks` (restarts, camera and overrides as in `options`).
    /// - Throws: ``NRSfMError/unsupported(_:)`` when the tracks have hidden points and the method
    ///   has no missing-data mode, or a perspective camera is asked of an orthographic-only method.
    public static func fit(_ method: NRSfMMethod, tracks: KeypointTracks, options: NRSfMOptions = NRSfMOptions()) throws -> NRSfMReconstruction {
        let complete = tracks.visibleFraction >= 1
        if !complete && !method.supportsMissingData {
            throw NRSfMError.unsupported("\(tracks.source): \(String(format: "%.1f", 100 * (1 - tracks.visibleFraction)))% of the points are hidden; \(method.rawValue) has no missing-data mode — use \(NRSfMMethod.allCases.filter(\.supportsMissingData).map(\.rawValue).joined(separator: " or ")), or pass complete tracks")
        }
        if options.camera == .persp && !method.supportsPerspective {
            throw NRSfMError.unsupported("\(method.rawValue) has only the orthographic camera model; the perspective model is in \(NRSfMMethod.allCases.filter(\.supportsPerspective).map(\.rawValue).joined(separator: " and "))")
        }
        var best: NRSfMReconstruction?
        var log: [(Int, Int, Float)] = []
        for r in 0..<max(options.restarts, 1) {
            let seed = options.seed &+ UInt64(r)
            let result: NRSfMReconstruction
            switch method {
            case .paul, .adl:
                var config = PAULConfig()
                config.useAutoencoderTerm = method == .paul
                config = try ConfigOverrides.apply(options.overrides, to: config)
                config.seed = seed
                let total = config.iterations
                let fit = try PAUL.fit(points2D: tracks.points2D, visibility: complete ? nil : tracks.visibility,
                                       config: config, logEvery: 50) { step, loss in
                    log.append((r, step, loss))
                    options.progress?(r, step, total, loss)
                }
                result = NRSfMReconstruction(
                    method: method, points3D: fit.points3D, rotations: fit.rotations,
                    extras: ["canonical": fit.canonical, "codes": fit.codes], finalLoss: fit.finalLoss,
                    model: fit.model, lifter: config.lifting ? fit.model : nil, config: try ConfigOverrides.jsonObject(config), log: [], seed: seed)
            case .deepNRSfMPlusPlus, .deepNRSfM:
                var config = method == .deepNRSfM ? DeepNRSfMConfig.reluVariant : DeepNRSfMConfig()
                config.camera = options.camera == .persp ? .perspective : .orthographic
                config = try ConfigOverrides.apply(options.overrides, to: config)
                config.seed = seed
                let total = config.iterations + (config.camera == .perspective ? config.scaleCorrectionRounds * config.scaleCorrectionIterations : 0)
                let fit = try DeepNRSfM.fit(points2D: tracks.points2D, visibility: complete ? nil : tracks.visibility,
                                            config: config, logEvery: 50) { step, loss in
                    log.append((r, step, loss))
                    options.progress?(r, step, total, loss)
                }
                var extras = ["canonical": fit.canonical, "codes": fit.codes]
                if let depth = fit.depth { extras["depth"] = depth }
                result = NRSfMReconstruction(
                    method: method, points3D: fit.points3D, rotations: fit.rotations, extras: extras,
                    finalLoss: fit.finalLoss, model: fit.model, lifter: fit.model,
                    config: try ConfigOverrides.jsonObject(config), log: [], seed: seed)
            case .bmm:
                var config = try ConfigOverrides.apply(options.overrides, to: BMMConfig())
                config.seed = seed
                let fit = try BMM.fit(points2D: tracks.points2D, visibility: tracks.visibility, config: config)
                options.progress?(r, 0, 1, 0)
                // BMM has no training loss; restarts are internal (rotationRestarts), so the first run is kept.
                result = NRSfMReconstruction(
                    method: method, points3D: fit.points3D, rotations: fit.rotations, extras: ["shapes": fit.shapes],
                    finalLoss: 0, model: nil, lifter: nil, config: try ConfigOverrides.jsonObject(config), log: [], seed: seed)
            }
            if best == nil || result.finalLoss < best!.finalLoss { best = result }
        }
        var out = best!
        out.log = log.map { (restart: $0.0, step: $0.1, loss: $0.2) }
        return out
    }
}

public enum NRSfMError: Error, CustomStringConvertible {
    case unsupported(String)
    case badOverride(String)
    public var description: String {
        switch self {
        case .unsupported(let m), .badOverride(let m): return m
        }
    }
}

/// `key=value` overrides of a Codable config through its JSON form, so every field a config.json
/// shows can be set from the command line; unknown keys and ill-typed values are errors.
public enum ConfigOverrides {
    public static func jsonObject<C: Encodable>(_ config: C) throws -> [String: Any] {
        (try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as? [String: Any]) ?? [:]
    }

    public static func apply<C: Codable>(_ overrides: [String], to config: C) throws -> C {
        if overrides.isEmpty { return config }
        var dict = try jsonObject(config)
        var keys: [String] = []
        for item in overrides {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw NRSfMError.badOverride("--set \(item): expected key=value with key one of \(dict.keys.sorted().joined(separator: ", "))")
            }
            let text = parts[1]
            // Optional fields that are unset (nil) are absent from the JSON form: their type is
            // inferred from the value, and the key is checked after decoding (below).
            if dict[parts[0]] is [Any] || (dict[parts[0]] == nil && text.contains(",")) {
                dict[parts[0]] = text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            } else if let b = Bool(text) {
                dict[parts[0]] = b
            } else if let d = Double(text) {
                dict[parts[0]] = d
            } else {
                dict[parts[0]] = text
            }
            keys.append(parts[0])
        }
        let decoded: C
        do {
            decoded = try JSONDecoder().decode(C.self, from: JSONSerialization.data(withJSONObject: dict))
        } catch {
            throw NRSfMError.badOverride("--set: the overridden config does not decode (\(error))")
        }
        // A key the config does not have is ignored by the decoder: it does not come back.
        let known = try jsonObject(decoded)
        if let unknown = keys.first(where: { known[$0] == nil }) {
            let names = Set(try jsonObject(config).keys).union(known.keys).sorted()
            throw NRSfMError.badOverride("--set \(unknown)=...: unknown key; expected one of \(names.joined(separator: ", "))")
        }
        return decoded
    }
}
