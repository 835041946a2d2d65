import ArgumentParser
import DeformSynth
import Foundation

/// `deform synth <family>`: procedural benchmark scenes with full ground truth.
struct Synth: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Generate a seeded synthetic benchmark dataset with full ground truth.",
        discussion: """
        Families: \(SynthFamily.allCases.map(\.rawValue).joined(separator: ", ")).
        symmetric: bilaterally symmetric procedural heads (Unsup3D's synthetic faces) under a random viewpoint and \
        ambient + diffuse light; per image a PNG frame and an NPZ with depth, normals, mask, canonical depth, albedo, \
        light and viewpoint; transforms.json holds every camera. --count images (default 1000), --size 64.
        stereo: stereo video clips of dynamic scenes (WSVD's web stereo videos) with a per-clip focal length, baseline \
        and disparity offset; per frame left and right PNGs and an NPZ with disparity (= f b / depth + offset), depth, \
        the mask of pixels both cameras see, optical flow and segmentation; a transforms.json per clip. --count clips \
        (default 20) of --frames frames (default 12), --size 128.
        character: videos of skinned procedural characters (--kind humanoid or quadruped; --motion walk, wave, squat, \
        turn, jump or random) filmed by one camera, with held-out cameras and poses; per frame RGB, mask, depth, 2D/3D \
        joints, poses, cameras and optical flow; per video the rest mesh with skinning weights and the skeleton. \
        --count videos (default 1) of --frames frames (default 120), --size 256.
        dynamic: forward-facing dynamic scenes (NVIDIA dynamic-scene benchmark) with bending, waving and bouncing \
        objects, one moving camera and held-out cameras; per frame RGB, depth, dynamic mask, forward/backward flow with \
        validity; transforms.json with time and split. --count scenes (default 5) of --frames frames (default 24), --size 128.
        scene.json, README.md and preview.png describe the folder. The same seed gives byte-identical files.
        """)

    @Argument(help: "Scene family (\(SynthFamily.allCases.map(\.rawValue).joined(separator: ", "))).") var family: String
    @Option(name: .shortAndLong, help: "Output folder (must not exist or be empty, unless --overwrite).") var output: String
    @Option(help: "symmetric: number of images over all splits (80% train, 10% val, 10% test; default 1000). stereo: number of clips (default 20). character: number of videos (default 1). dynamic: number of scenes (default 5).")
    var count: Int?
    @Option(help: "stereo: frames per clip (default 12). character: training frames per video (default 120). dynamic: frames per scene (default 24).") var frames: Int?
    @Option(help: "Image width and height in pixels (default 64 for symmetric, 128 for stereo and dynamic, 256 for character).") var size: Int?
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "symmetric: scale of the asymmetric perturbations (0: exactly symmetric heads; default 1).") var asymmetry: Float?
    @Option(help: "Samples per pixel along each axis for anti-aliasing (odd).") var supersampling = 3
    @Flag(help: "Replace a non-empty output folder.") var overwrite = false
    // character family
    @Option(help: "character: motion (walk, wave, squat, turn, jump, random); default: drawn per video.") var motion: String?
    @Option(help: "character: body kind (humanoid, quadruped).") var kind = "humanoid"

    func validate() throws {
        let which: SynthFamily
        do { which = try SynthFamily.named(family) } catch { throw ValidationError("\(error)") }
        if let count, count <= 0 { throw ValidationError("--count must be positive, got \(count)") }
        if let size, size <= 0 { throw ValidationError("--size must be positive, got \(size)") }
        if let frames, frames <= 0 { throw ValidationError("--frames must be positive, got \(frames)") }
        if supersampling <= 0 || supersampling % 2 == 0 { throw ValidationError("--supersampling must be a positive odd number, got \(supersampling)") }
        if which == .symmetric && frames != nil { throw ValidationError("--frames applies to the stereo and character families only") }
        if which != .symmetric && asymmetry != nil { throw ValidationError("--asymmetry applies to the symmetric family only") }
    }

    func run() throws {
        let which = try SynthFamily.named(family)
        let url = URL(fileURLWithPath: output)
        let start = Date()
        let tty = isatty(STDERR_FILENO) == 1
        var lastDraw = Date.distantPast
        func progress(_ unit: String, total: Int) -> (Int) -> Void {
            { done in
                guard tty else { return }
                let now = Date()
                guard now.timeIntervalSince(lastDraw) >= 0.1 || done == total else { return }
                lastDraw = now
                let elapsed = now.timeIntervalSince(start)
                let rate = Double(done) / max(elapsed, 1e-9)
                FileHandle.standardError.write(String(format: "\rsynth %@ %d/%d  %@ elapsed, ETA %@  %.0f %@/s   ",
                                                      family, done, total, ProgressLine.clock(elapsed),
                                                      ProgressLine.clock(Double(total - done) / max(rate, 1e-9)), rate, unit).data(using: .utf8)!)
            }
        }
        switch which {
        case .character:
            try runCharacter()
        case .symmetric:
            var config = SymmetricSceneConfig()
            config.count = count ?? config.count
            config.size = size ?? config.size
            config.seed = seed
            config.asymmetry = asymmetry ?? config.asymmetry
            config.supersampling = supersampling
            do { try config.validate() } catch { throw ValidationError("\(error)") }
            do { try SymmetricScenes.checkOutput(url, overwrite: overwrite) } catch { throw CLIError("\(error)") }
            try SymmetricScenes.generate(config: config, to: url, overwrite: overwrite, progress: progress("images", total: config.count))
            if tty { FileHandle.standardError.write("\n".data(using: .utf8)!) }
            let seconds = Date().timeIntervalSince(start)
            let splits = config.splitRanges.map { "\($0.name) \($0.range.count)" }.joined(separator: ", ")
            print(String(format: "wrote %@: %d %@ images of %dx%d (%@) in %.1f s (%.0f images/s)",
                         url.standardizedFileURL.path, config.count, family, config.size, config.size, splits, seconds,
                         Double(config.count) / max(seconds, 1e-9)))
        case .dynamic:
            var config = DynamicSceneConfig()
            config.count = count ?? config.count
            config.frames = frames ?? config.frames
            config.size = size ?? config.size
            config.seed = seed
            config.supersampling = supersampling
            do { try config.validate() } catch { throw ValidationError("\(error)") }
            do { try SymmetricScenes.checkOutput(url, overwrite: overwrite) } catch { throw CLIError("\(error)") }
            try DynamicScenes.generate(config: config, to: url, overwrite: overwrite, progress: progress("scenes", total: config.count))
            if tty { FileHandle.standardError.write("\n".data(using: .utf8)!) }
            let seconds = Date().timeIntervalSince(start)
            let views = config.frames * (1 + config.novelCameras)
            print(String(format: "wrote %@: %d dynamic scenes x %d frames (+ %d held-out cameras) of %dx%d in %.1f s (%.1f views/s)",
                         url.standardizedFileURL.path, config.count, config.frames, config.novelCameras, config.size, config.size,
                         seconds, Double(config.count * views) / max(seconds, 1e-9)))
        case .stereo:
            var config = StereoSceneConfig()
            config.count = count ?? config.count
            config.frames = frames ?? config.frames
            config.size = size ?? config.size
            config.seed = seed
            config.supersampling = supersampling
            do { try config.validate() } catch { throw ValidationError("\(error)") }
            do { try SymmetricScenes.checkOutput(url, overwrite: overwrite) } catch { throw CLIError("\(error)") }
            let total = config.count * config.frames
            try StereoScenes.generate(config: config, to: url, overwrite: overwrite, progress: progress("frames", total: total))
            if tty { FileHandle.standardError.write("\n".data(using: .utf8)!) }
            let seconds = Date().timeIntervalSince(start)
            print(String(format: "wrote %@: %d stereo clips x %d frames of %dx%d in %.1f s (%.1f stereo frames/s)",
                         url.standardizedFileURL.path, config.count, config.frames, config.size, config.size, seconds,
                         Double(total) / max(seconds, 1e-9)))
        }
    }
}

extension Synth {
    /// `deform synth character`: videos of skinned procedural humanoids with full ground truth.
    func runCharacter() throws {
        var config = CharacterSceneConfig()
        config.count = count ?? 1
        config.size = size ?? 256
        config.frames = frames ?? 120
        config.seed = seed
        config.supersampling = supersampling
        guard let body = CharacterKind(rawValue: kind) else {
            throw ValidationError("--kind must be one of \(CharacterKind.allCases.map(\.rawValue).joined(separator: ", ")), got '\(kind)'")
        }
        config.kind = body
        if let motion {
            guard let kind = CharacterMotionKind(rawValue: motion) else {
                throw ValidationError("--motion must be one of \(CharacterMotionKind.allCases.map(\.rawValue).joined(separator: ", ")), got '\(motion)'")
            }
            config.motion = kind
        }
        do { try config.validate() } catch { throw ValidationError("\(error)") }
        let url = URL(fileURLWithPath: output)
        do { try SymmetricScenes.checkOutput(url, overwrite: overwrite) } catch { throw CLIError("\(error)") }
        let start = Date()
        let tty = isatty(STDERR_FILENO) == 1
        var lastDraw = Date.distantPast
        var rendered = 0
        try CharacterScenes.generate(config: config, to: url, overwrite: overwrite) { done, total in
            rendered = total
            guard tty else { return }
            let now = Date()
            guard now.timeIntervalSince(lastDraw) >= 0.1 || done == total else { return }
            lastDraw = now
            let elapsed = now.timeIntervalSince(start)
            let rate = Double(done) / max(elapsed, 1e-9)
            FileHandle.standardError.write(String(format: "\rsynth character %d/%d frames  %@ elapsed, ETA %@  %.1f frames/s   ",
                                                  done, total, ProgressLine.clock(elapsed),
                                                  ProgressLine.clock(Double(total - done) / max(rate, 1e-9)), rate).data(using: .utf8)!)
        }
        if tty { FileHandle.standardError.write("\n".data(using: .utf8)!) }
        let seconds = Date().timeIntervalSince(start)
        print(String(format: "wrote %@: %d %@ video(s), %d frames of %dx%d rendered (training, novel views, novel poses) in %.1f s (%.1f frames/s)",
                     url.standardizedFileURL.path, config.count, kind, rendered, config.size, config.size, seconds, Double(rendered) / max(seconds, 1e-9)))
    }
}
