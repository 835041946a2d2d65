import Foundation
import DeformIO
import DeformTensor

/// A static 3D scene shown in its own viewer: a mesh, a point cloud or 3D Gaussians.
public struct ScenePanel: Sendable {
    public enum Content: Sendable {
        /// Triangles with optional vertex colours (no triangles: a coloured point cloud).
        case mesh(TriangleMesh)
        case gaussians(GaussianCloud)
    }

    /// The file's path relative to the run folder.
    public var title: String
    public var content: Content
    /// Whether the file uses a camera frame (y down), so the viewer turns it to show y up.
    public var yDown: Bool
}

/// A picture shown as-is (PNG or JPEG bytes), or a depth map drawn with the report's colour map.
public struct ImagePanel: Sendable {
    public var title: String
    /// `image/png` or `image/jpeg`.
    public var mime: String
    public var bytes: Data
    public var width: Int
    public var height: Int
}

/// A depth map before colouring; every depth map of a report shares one colour range.
public struct DepthMap: Sendable {
    public var title: String
    public var width: Int
    public var height: Int
    /// Row-major depths; values that are not finite and positive are "no depth".
    public var values: [Float]
}

/// How many files of each kind a report embeds; beyond that it lists what it left out.
public struct PanelLimits: Sendable {
    public var scenes = 6
    public var images = 32
    public var depthMaps = 16
    /// Gaussians and cloud points beyond this are thinned by a regular stride.
    public var pointsPerScene = 400_000
    public var trianglesPerMesh = 2_000_000
    public init() {}
}

/// The run-folder conventions of the report: later methods get panels by writing these files,
/// without changes to the viewer.
///
/// Looked for at the top of the folder and one folder down (except `checkpoints/`):
/// - `*.ply` — a 3DGS Gaussian file (properties `f_dc_0`, `opacity`, `scale_0`) becomes a
///   Gaussian viewer; a PLY with faces a mesh viewer; a PLY with vertices only a point-cloud viewer.
/// - `*.obj` — a mesh viewer (vertex colours `v x y z r g b` are used).
/// - `*.png`, `*.jpg`, `*.jpeg` — image panels (`preview.png` first). A one-channel image whose
///   name contains `depth` is a depth map.
/// - `*.npy` whose name contains `depth`, shape `[H, W]` or `[H, W, 1]` — a depth map.
/// Depth maps are coloured with ``ColorMap/viridis`` over one range shared by all of them (near
/// is bright), with a colour bar. Scenes whose name mentions `camera`/`cam` or whose folder
/// is a 3DGS output are shown in the OpenCV camera frame (y down); others with y up.
enum PanelDiscovery {
    static let ignoredFolders: Set<String> = ["checkpoints"]

    /// Candidate files, top level first, then each subfolder, each in name order.
    static func files(in folder: URL) -> [URL] {
        let fm = FileManager.default
        func list(_ url: URL) -> [URL] {
            ((try? fm.contentsOfDirectory(at: url, includingPropertiesForKeys: [.isDirectoryKey], options: [.skipsHiddenFiles])) ?? [])
                .sorted { $0.lastPathComponent < $1.lastPathComponent }
        }
        func isDirectory(_ url: URL) -> Bool { (try? url.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true }
        let top = list(folder)
        var out = top.filter { !isDirectory($0) }
        // preview.png leads the images.
        out.sort { ($0.lastPathComponent == "preview.png" ? 0 : 1) < ($1.lastPathComponent == "preview.png" ? 0 : 1) }
        for sub in top where isDirectory(sub) && !ignoredFolders.contains(sub.lastPathComponent) {
            out += list(sub).filter { !isDirectory($0) }
        }
        return out
    }

    static func relative(_ url: URL, to folder: URL) -> String {
        let base = folder.standardizedFileURL.path, path = url.standardizedFileURL.path
        return path.hasPrefix(base + "/") ? String(path.dropFirst(base.count + 1)) : url.lastPathComponent
    }
}

extension RunReport {
    /// Adds the scene, image and depth panels of `files` (see ``PanelDiscovery``); files that
    /// cannot be read become notes, not errors, so one damaged file does not hide the rest.
    mutating func addPanels(from files: [URL], folder: URL?, limits: PanelLimits = PanelLimits()) {
        var skipped: [String: [String]] = [:]
        for url in files {
            let name = folder.map { PanelDiscovery.relative(url, to: $0) } ?? url.lastPathComponent
            let ext = url.pathExtension.lowercased()
            let lower = url.lastPathComponent.lowercased()
            do {
                switch ext {
                case "ply", "obj":
                    guard scenes.count < limits.scenes else { skipped["3D files", default: []].append(name); continue }
                    if let panel = try Self.scenePanel(url, title: name, limits: limits, notes: &notes) { scenes.append(panel) }
                case "png", "jpg", "jpeg":
                    let bytes = try Data(contentsOf: url)
                    let image = try decodeImageData(bytes, name: url.path)
                    if lower.contains("depth") && image.channels == 1 {
                        guard depthMaps.count < limits.depthMaps else { skipped["depth maps", default: []].append(name); continue }
                        // Back to the stored integers, the file's own depth unit (e.g. millimetres).
                        let scale = Float(image.bitDepth == 16 ? 65535 : 255)
                        depthMaps.append(DepthMap(title: name, width: image.width, height: image.height,
                                                  values: image.pixels.scalars.map { ($0 * scale).rounded() }))
                    } else {
                        guard images.count < limits.images else { skipped["images", default: []].append(name); continue }
                        images.append(ImagePanel(title: name, mime: ext == "png" ? "image/png" : "image/jpeg", bytes: bytes,
                                                 width: image.width, height: image.height))
                    }
                case "npy" where lower.contains("depth"):
                    let array = try readNPY(url)
                    let shape = array.shape
                    guard shape.count == 2 || (shape.count == 3 && shape[2] == 1), shape[0] > 0, shape[1] > 0 else {
                        notes.append("\(name): a depth map must be [H, W] or [H, W, 1], found \(shape); not shown.")
                        continue
                    }
                    guard depthMaps.count < limits.depthMaps else { skipped["depth maps", default: []].append(name); continue }
                    depthMaps.append(DepthMap(title: name, width: shape[1], height: shape[0], values: array.doubles().map { Float($0) }))
                default:
                    continue
                }
            } catch {
                notes.append("\(name) could not be read (\(error)); not shown.")
            }
        }
        for (kind, names) in skipped.sorted(by: { $0.key < $1.key }) {
            let list = names.prefix(5).joined(separator: ", ") + (names.count > 5 ? ", …" : "")
            notes.append("\(names.count) more \(kind) not embedded (limit reached): \(list).")
        }
    }

    static func scenePanel(_ url: URL, title: String, limits: PanelLimits, notes: inout [String]) throws -> ScenePanel? {
        let lower = title.lowercased()
        // 3DGS scenes come from COLMAP-style reconstructions, whose world frame has y down.
        var yDown = lower.contains("camera") || lower.hasPrefix("cam")
        let content: ScenePanel.Content
        if url.pathExtension.lowercased() == "ply" {
            let ply = try readPLY(url)
            if isGaussianPLY(ply) {
                var cloud = try gaussiansFromPLY(ply, file: url.path)
                let finite = cloud.droppingNonFinite()
                if finite.count < cloud.count {
                    notes.append("\(title): \(cloud.count - finite.count) Gaussians with non-finite values left out.")
                    cloud = finite
                }
                if cloud.count > limits.pointsPerScene {
                    let stride = (cloud.count + limits.pointsPerScene - 1) / limits.pointsPerScene
                    notes.append("\(title): \(cloud.count) Gaussians, every \(stride)th shown.")
                    cloud = cloud.thinned(stride: stride)
                }
                yDown = true
                content = .gaussians(cloud)
            } else {
                var mesh = try meshFromPLY(ply, file: url.path)
                if mesh.triangles.isEmpty && mesh.vertexCount > limits.pointsPerScene {
                    let stride = (mesh.vertexCount + limits.pointsPerScene - 1) / limits.pointsPerScene
                    notes.append("\(title): \(mesh.vertexCount) points, every \(stride)th shown.")
                    mesh = mesh.thinnedPoints(stride: stride)
                }
                content = .mesh(mesh)
            }
        } else {
            content = .mesh(try readMesh(url))
        }
        if case let .mesh(mesh) = content {
            if mesh.triangleCount > limits.trianglesPerMesh {
                notes.append("\(title): \(mesh.triangleCount) triangles is over the report's limit of \(limits.trianglesPerMesh); not shown.")
                return nil
            }
            if mesh.vertexCount == 0 { notes.append("\(title) holds no vertices; not shown."); return nil }
        }
        return ScenePanel(title: title, content: content, yDown: yDown)
    }

    /// One depth range for every depth map of the report: the 1st to 99th percentile of all valid
    /// depths (robust to a few stray far or near values), or `nil` when no depth is valid.
    public func commonDepthRange() -> ClosedRange<Float>? {
        var sample: [Float] = []
        for map in depthMaps {
            let stride = max(1, map.values.count / 20_000)
            for i in Swift.stride(from: 0, to: map.values.count, by: stride) where map.values[i].isFinite && map.values[i] > 0 {
                sample.append(map.values[i])
            }
        }
        guard !sample.isEmpty else { return nil }
        sample.sort()
        let lo = sample[Int(0.01 * Double(sample.count - 1))], hi = sample[Int((0.99 * Double(sample.count - 1)).rounded())]
        return lo < hi ? lo...hi : lo...(lo + max(abs(lo) * 1e-3, 1e-6))
    }

    /// The depth maps as PNG bytes, coloured over ``commonDepthRange()`` (invalid depth black).
    public func colouredDepthPNGs() throws -> [(title: String, png: Data)] {
        guard let range = commonDepthRange() else {
            return try depthMaps.map { map in
                (map.title, try encodePNGData(Tensor([Float](repeating: 0, count: 3 * map.values.count), shape: [map.height, map.width, 3])))
            }
        }
        return try depthMaps.map { map in
            let rgb = colorizeDepth(map.values, width: map.width, height: map.height, near: range.lowerBound, far: range.upperBound)
            let pixels = Tensor(rgb.map { Float($0) / 255 }, shape: [map.height, map.width, 3])
            return (map.title, try encodePNGData(pixels, name: map.title))
        }
    }
}

extension GaussianCloud {
    /// The Gaussians whose every value is finite (a diverged fit can leave NaN in a file).
    func droppingNonFinite() -> GaussianCloud {
        let keep = (0..<count).filter { i in
            opacities[i].isFinite && (0..<3).allSatisfy { means[3 * i + $0].isFinite && scales[3 * i + $0].isFinite && baseColors[3 * i + $0].isFinite }
        }
        if keep.count == count { return self }
        func pick3(_ a: [Float]) -> [Float] { keep.flatMap { a[(3 * $0)..<(3 * $0 + 3)] } }
        return GaussianCloud(means: pick3(means), scales: pick3(scales), opacities: keep.map { opacities[$0] },
                             baseColors: pick3(baseColors), shDegree: shDegree)
    }

    /// Every `stride`-th Gaussian.
    func thinned(stride: Int) -> GaussianCloud {
        let keep = Array(Swift.stride(from: 0, to: count, by: stride))
        func pick3(_ a: [Float]) -> [Float] { keep.flatMap { a[(3 * $0)..<(3 * $0 + 3)] } }
        return GaussianCloud(means: pick3(means), scales: pick3(scales), opacities: keep.map { opacities[$0] },
                             baseColors: pick3(baseColors), shDegree: shDegree)
    }
}

extension TriangleMesh {
    /// Every `stride`-th vertex of a mesh without triangles.
    func thinnedPoints(stride: Int) -> TriangleMesh {
        let keep = Array(Swift.stride(from: 0, to: vertexCount, by: stride))
        return TriangleMesh(positions: keep.flatMap { positions[(3 * $0)..<(3 * $0 + 3)] },
                            colors: colors.map { c in keep.flatMap { c[(3 * $0)..<(3 * $0 + 3)] } }, triangles: [])
    }
}
