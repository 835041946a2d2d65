import Foundation
import DeformTensor

/// 2D keypoint tracks of one deforming object over F frames and P points, with per-point
/// visibility and optional 3D ground truth: the input of non-rigid structure from motion.
///
/// Every initialiser and reader validates the data, so a value of this type always satisfies:
/// `points2D` is [F, P, 2] with F ≥ 1 and P ≥ 3; `visibility` is [F, P] holding only 0 and 1;
/// `points3D`, when present, is [F, P, 3] and finite; every visible 2D point is finite; every frame
/// has at least 2 visible points. An invisible point with a non-finite coordinate (a common way
/// to write "missing") gets (0, 0), so masked arithmetic downstream never meets a NaN
/// (NaN · 0 is NaN).
public struct KeypointTracks: Sendable {
    /// Observed image coordinates, [F, P, 2].
    public private(set) var points2D: Tensor
    /// 1 where the point is observed, 0 where it is missing, [F, P].
    public private(set) var visibility: Tensor
    /// Ground-truth 3D points in the camera frame, [F, P, 3], when the file has them.
    public private(set) var points3D: Tensor?
    /// Where the tracks came from (a file path, or a label for tracks made in memory).
    public var source: String

    public var frameCount: Int { points2D.shape[0] }
    public var pointCount: Int { points2D.shape[1] }
    /// Fraction of (frame, point) pairs that are observed.
    public var visibleFraction: Double {
        visibility.withUnsafeBufferPointer { v in Double(v.reduce(0, +)) / Double(max(v.count, 1)) }
    }

    /// Validates tracks built in memory; errors name `source` and the NPZ entry names.
    ///
    /// - Parameter visibility: [F, P] of 0/1; `nil` means every point is visible.
    public init(points2D: Tensor, visibility: Tensor? = nil, points3D: Tensor? = nil, source: String = "<memory>") throws {
        self = try KeypointTracks.validated(points2D: points2D, visibility: visibility, points3D: points3D,
                                            source: source, names: .npz)
    }

    private init(unchecked points2D: Tensor, visibility: Tensor, points3D: Tensor?, source: String) {
        self.points2D = points2D
        self.visibility = visibility
        self.points3D = points3D
        self.source = source
    }

    /// Reads tracks from a file, choosing the reader by extension: `.npz`, `.json` or `.csv`.
    public static func load(_ url: URL) throws -> KeypointTracks {
        switch url.pathExtension.lowercased() {
        case "npz": return try readNPZ(url)
        case "json": return try readJSON(url)
        case "csv": return try readCSV(url)
        default:
            let ext = url.pathExtension.isEmpty ? "no extension" : "extension '.\(url.pathExtension)'"
            throw DeformIOError.unsupportedFormat(
                file: url.path,
                message: "keypoint tracks with \(ext) are not supported; expected .npz (points_2d [F, P, 2], "
                    + "optional visibility [F, P] and points_3d [F, P, 3]), .json (C3DPO-style list of "
                    + "{kp_loc: 2 x P, kp_vis: P, kp_loc_3d: 3 x P}) or .csv (frame, point, u, v[, visible])")
        }
    }

    /// The tracks of the given frames, in the given order (a train/test split, a shuffle).
    /// A subset of valid tracks is valid, so this does not throw; `indices` must be non-empty and
    /// in range.
    public func selectingFrames(_ indices: [Int]) -> KeypointTracks {
        precondition(!indices.isEmpty, "selectingFrames: no frames selected")
        return KeypointTracks(unchecked: points2D.indexSelect(axis: 0, indices: indices),
                              visibility: visibility.indexSelect(axis: 0, indices: indices),
                              points3D: points3D?.indexSelect(axis: 0, indices: indices), source: source)
    }

    /// Writes the tracks as an `.npz` with `points_2d` and `points_3d` as `<f4` and `visibility`
    /// as `|u1`, the layout ``readNPZ(_:)`` reads.
    public func writeNPZ(to url: URL, compressed: Bool = true) throws {
        var arrays: [String: NPYArray] = [
            "points_2d": NPYArray(points2D),
            "visibility": NPYArray(uint8s: visibility.scalars.map { $0 != 0 ? 1 : 0 }, shape: visibility.shape),
        ]
        if let points3D { arrays["points_3d"] = NPYArray(points3D) }
        try DeformIO.writeNPZ(arrays, to: url, compressed: compressed)
    }
}

// MARK: - Validation

extension KeypointTracks {
    /// What each field is called in the format being read, so errors use the user's vocabulary.
    struct FieldNames {
        var points2D: String
        var visibility: String
        var points3D: String
        static let npz = FieldNames(points2D: "points_2d", visibility: "visibility", points3D: "points_3d")
        static let json = FieldNames(points2D: "kp_loc", visibility: "kp_vis", points3D: "kp_loc_3d")
        static let csv = FieldNames(points2D: "u, v", visibility: "visible", points3D: "")
    }

    static func validated(points2D: Tensor, visibility: Tensor?, points3D: Tensor?, source: String,
                          names: FieldNames) throws -> KeypointTracks {
        let s = points2D.shape
        guard s.count == 3, s[2] == 2 else {
            throw DeformIOError.shapeMismatch(file: source, entry: names.points2D, expected: "[F, P, 2] (frames x points x 2)",
                                              found: shapeString(s))
        }
        let (f, p) = (s[0], s[1])
        guard f >= 1 else {
            throw DeformIOError.shapeMismatch(file: source, entry: names.points2D, expected: "[F, P, 2] with at least 1 frame",
                                              found: shapeString(s))
        }
        guard p >= 3 else {
            throw DeformIOError.shapeMismatch(file: source, entry: names.points2D,
                                              expected: "[F, P, 2] with P >= 3 points (a shape needs at least 3 points)",
                                              found: shapeString(s))
        }
        var vis: Tensor
        if let visibility {
            guard visibility.shape == [f, p] else {
                throw DeformIOError.shapeMismatch(file: source, entry: names.visibility,
                                                  expected: "\(shapeString([f, p])) (F x P, matching \(names.points2D) \(shapeString(s)))",
                                                  found: shapeString(visibility.shape))
            }
            if let bad = visibility.withUnsafeBufferPointer({ $0.firstIndex { $0 != 0 && $0 != 1 } }) {
                throw DeformIOError.invalidValue(file: source, entry: names.visibility,
                                                 message: "holds \(visibility.scalars[bad]) at frame \(bad / p), point \(bad % p); expected 0 (missing) or 1 (observed)")
            }
            vis = visibility
        } else {
            vis = Tensor(shape: [f, p], repeating: 1)
        }
        if let points3D {
            guard points3D.shape == [f, p, 3] else {
                throw DeformIOError.shapeMismatch(file: source, entry: names.points3D,
                                                  expected: "\(shapeString([f, p, 3])) (F x P x 3, matching \(names.points2D) \(shapeString(s)))",
                                                  found: shapeString(points3D.shape))
            }
            if let bad = points3D.withUnsafeBufferPointer({ $0.firstIndex { !$0.isFinite } }) {
                throw DeformIOError.invalidValue(file: source, entry: names.points3D,
                                                 message: "holds \(points3D.scalars[bad]) at frame \(bad / (3 * p)), point \(bad / 3 % p); ground-truth 3D points must be finite")
            }
        }
        var points = points2D.detached()
        var needsCleaning = false
        try points.withUnsafeBufferPointer { xy in
            try vis.withUnsafeBufferPointer { v in
                for frame in 0..<f {
                    var visible = 0
                    for point in 0..<p {
                        let i = frame * p + point
                        let (x, y) = (xy[2 * i], xy[2 * i + 1])
                        if v[i] == 0 {
                            if !x.isFinite || !y.isFinite { needsCleaning = true }
                            continue
                        }
                        visible += 1
                        if !x.isFinite || !y.isFinite {
                            throw DeformIOError.invalidValue(
                                file: source, entry: names.points2D,
                                message: "frame \(frame), point \(point) is marked visible but its coordinates are (\(x), \(y)); "
                                    + "coordinates of visible points must be finite (mark missing points with \(names.visibility) = 0)")
                        }
                    }
                    if visible < 2 {
                        throw DeformIOError.invalidValue(
                            file: source, entry: visibility == nil ? names.points2D : names.visibility,
                            message: "frame \(frame) has \(visible) visible point\(visible == 1 ? "" : "s"); every frame needs at least 2")
                    }
                }
            }
        }
        if needsCleaning {
            points.withUnsafeMutableBufferPointer { xy in
                for i in 0..<(f * p) where !xy[2 * i].isFinite || !xy[2 * i + 1].isFinite {
                    xy[2 * i] = 0
                    xy[2 * i + 1] = 0
                }
            }
        }
        return KeypointTracks(unchecked: points, visibility: vis.detached(), points3D: points3D?.detached(), source: source)
    }
}
