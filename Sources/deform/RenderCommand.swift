import ArgumentParser
import DeformIO
import DeformRender
import DeformTensor
import Foundation

/// `deform render ...`: the renderers on their own.
struct Render: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render",
        abstract: "Render with Deform's CPU renderers.",
        subcommands: [RenderDemo_.self])
}

/// `deform render demo -o <dir>`: a built-in scene orbited by the camera, one panel per renderer.
struct RenderDemo_: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Render the built-in demo scene (textured mesh, Gaussians, voxel volume) along a camera orbit to PNGs and an MP4.",
        discussion: """
        Each frame is a sheet of three panels: the torus through the mesh rasteriser, the Gaussians through the \
        splatting renderer, and the smoke through the volume renderer; colour on top, depth below (near is bright). \
        Writes frames/frame_NNNN.png, demo.mp4 (when the ffmpeg program is on PATH), gaussians.ply (3DGS layout, \
        opens in splat viewers), cameras.json (the orbit, OpenCV and OpenGL poses) and timings.json.
        """)

    @Option(name: .shortAndLong, help: "Output folder (must not exist or be empty, unless --overwrite).") var output: String
    @Option(help: "Frames along the orbit.") var frames = 48
    @Option(help: "Width and height of each panel in pixels.") var size = 192
    @Option(help: "Frames per second of the video.") var fps = 24.0
    @Flag(help: "Replace a non-empty output folder.") var overwrite = false

    func validate() throws {
        if frames <= 0 { throw ValidationError("--frames must be positive, got \(frames)") }
        if size < 16 || size > 4096 { throw ValidationError("--size must be between 16 and 4096, got \(size)") }
        if !(fps > 0) { throw ValidationError("--fps must be positive, got \(fps)") }
    }

    func run() throws {
        let fm = FileManager.default
        let root = URL(fileURLWithPath: output)
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: root.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw CLIError("\(root.path) exists and is not a folder") }
            let contents = try fm.contentsOfDirectory(atPath: root.path)
            if !contents.isEmpty {
                guard overwrite else { throw CLIError("\(root.path) is not empty; pass --overwrite to replace it") }
                try fm.removeItem(at: root)
            }
        }
        let frameFolder = root.appendingPathComponent("frames")
        try fm.createDirectory(at: frameFolder, withIntermediateDirectories: true)

        let scene = DemoScene.make()
        var cameras: [[String: Any]] = []
        var times = [Double](repeating: 0, count: 3)
        let tty = isatty(STDERR_FILENO) == 1
        let start = Date()
        for i in 0..<frames {
            let camera = try RenderDemo.orbitCamera(angle: 360 * Float(i) / Float(frames), width: size, height: size)
            var layers: [DemoLayer] = []
            let renderers: [(DemoScene, PinholeCamera) throws -> DemoLayer] = [
                { try RenderDemo.renderMesh($0, camera: $1) }, { try RenderDemo.renderGaussians($0, camera: $1) },
                { try RenderDemo.renderVolume($0, camera: $1) }]
            for k in 0..<3 {
                let t0 = Date()
                layers.append(try renderers[k](scene, camera))
                times[k] += Date().timeIntervalSince(t0)
            }
            let sheet = RenderDemo.sheet(layers, width: size, height: size)
            let name = String(format: "frame_%04d.png", i)
            try writePNG(sheet, to: frameFolder.appendingPathComponent(name))
            cameras.append(["file": "frames/\(name)", "width": size, "height": size, "fx": camera.fx, "fy": camera.fy,
                            "cx": camera.cx, "cy": camera.cy, "camera_to_world_opencv": camera.cameraToWorld,
                            "camera_to_world_opengl": camera.openGLCameraToWorld])
            if tty {
                let elapsed = Date().timeIntervalSince(start)
                FileHandle.standardError.write(String(format: "\rrender demo frame %d/%d  %@ elapsed, ETA %@   ", i + 1, frames,
                                                      ProgressLine.clock(elapsed),
                                                      ProgressLine.clock(elapsed / Double(i + 1) * Double(frames - i - 1))).data(using: .utf8)!)
            }
        }
        if tty { FileHandle.standardError.write("\n".data(using: .utf8)!) }
        try writeGaussianPLY(to: root.appendingPathComponent("gaussians.ply"), means: scene.means, scales: scene.scales,
                             quaternions: scene.quaternions, opacities: scene.opacities, colors: scene.sh)
        let json = try JSONSerialization.data(withJSONObject: ["cameras": cameras], options: [.prettyPrinted, .sortedKeys])
        try writeAtomically(json, to: root.appendingPathComponent("cameras.json"))
        let perFrame = times.map { $0 / Double(frames) * 1e3 }
        let timing: [String: Any] = ["frames": frames, "size": size,
                                     "millisecondsPerFrame": ["mesh": perFrame[0], "gaussians": perFrame[1], "volume": perFrame[2]],
                                     "meshFaces": scene.faces.count / 3, "gaussians": scene.means.shape[0],
                                     "volumeGrid": scene.volume.shape, "volumeSamplesPerRay": 64]
        try writeAtomically(try JSONSerialization.data(withJSONObject: timing, options: [.prettyPrinted, .sortedKeys]),
                            to: root.appendingPathComponent("timings.json"))
        var video = "no video: the ffmpeg program is not on PATH (frames are in \(frameFolder.path))"
        if ffmpegExecutable() != nil {
            let url = root.appendingPathComponent("demo.mp4")
            try writeVideo(frameFolder: frameFolder, to: url, fps: fps)
            video = url.path
        }
        print(String(format: "rendered %d frames of %dx%d per panel in %.1f s (per frame: mesh %.1f ms, %d Gaussians %.1f ms, volume %.1f ms)",
                     frames, size, size, Date().timeIntervalSince(start), perFrame[0], scene.means.shape[0], perFrame[1], perFrame[2]))
        print("frames: \(frameFolder.path)")
        print("video: \(video)")
        print("Gaussians (3DGS .ply): \(root.appendingPathComponent("gaussians.ply").path)")
    }
}
