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
    /// Dai, Li & He's prior-free block matrix method (the "BMM" row of PAUL's Table 2.1).
    case bmm
}

/// Options shared by every method.
public struct NRSfMOptions {
    public var seed: UInt64 = 0
    /// Independent runs with seeds `seed, seed+1, ...`; the one with the lowest final training loss
    /// is kept (no ground truth involved).
    public var restarts = 1
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
    /// The fully resolved method config as a JSON object.
    public var config: [String: Any]
    /// Training-loss log: (restart, step, loss).
    public var log: [(restart: Int, step: Int, loss: Float)]
    /// The seed of the kept run.
    public var seed: UInt64
}

public enum NRSfMRunner {
    /// Runs `method` on `tracks` (restarts and overrides as in `options`).
    public static func fit(_ method: NRSfMMethod, tracks: KeypointTracks, options: NRSfMOptions = NRSfMOptions()) throws -> NRSfMReconstruction {
        if tracks.visibleFraction < 1 {
            throw NRSfMError.unsupported("\(tracks.source): \(String(format: "%.1f", 100 * (1 - tracks.visibleFraction)))% of the points are hidden; \(method.rawValue)'s missing-data mode is not implemented yet — pass complete tracks")
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
                let fit = try PAUL.fit(points2D: tracks.points2D, config: config, logEvery: 50) { step, loss in
                    log.append((r, step, loss))
                    options.progress?(r, step, total, loss)
                }
                result = NRSfMReconstruction(
                    method: method, points3D: fit.points3D, rotations: fit.rotations,
                    extras: ["canonical": fit.canonical, "codes": fit.codes], finalLoss: fit.finalLoss,
                    model: fit.model, config: try ConfigOverrides.jsonObject(config), log: [], seed: seed)
            case .bmm:
                var config = try ConfigOverrides.apply(options.overrides, to: BMMConfig())
                config.seed = seed
                let fit = try BMM.fit(points2D: tracks.points2D, visibility: tracks.visibility, config: config)
                options.progress?(r, 0, 1, 0)
                // BMM has no training loss; restarts are internal (rotationRestarts), so the first run is kept.
                result = NRSfMReconstruction(
                    method: method, points3D: fit.points3D, rotations: fit.rotations, extras: ["shapes": fit.shapes],
                    finalLoss: 0, model: nil, config: try ConfigOverrides.jsonObject(config), log: [], seed: seed)
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
        for item in overrides {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let current = dict[parts[0]] else {
                throw NRSfMError.badOverride("--set \(item): expected key=value with key one of \(dict.keys.sorted().joined(separator: ", "))")
            }
            let text = parts[1]
            if current is [Any] {
                dict[parts[0]] = text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            } else if let b = Bool(text) {
                dict[parts[0]] = b
            } else if let d = Double(text) {
                dict[parts[0]] = d
            } else {
                dict[parts[0]] = text
            }
        }
        do {
            return try JSONDecoder().decode(C.self, from: JSONSerialization.data(withJSONObject: dict))
        } catch {
            throw NRSfMError.badOverride("--set: the overridden config does not decode (\(error))")
        }
    }
}
