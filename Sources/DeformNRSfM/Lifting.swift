import DeformNN
import DeformTensor
import Foundation

/// 3D shapes lifted from the 2D points of frames a network was not trained on.
public struct NRSfMLifted {
    /// Camera-frame 3D points `[F, P, 3]`, in the input's unit (see the method for the perspective case).
    public var points3D: Tensor
    /// Camera rotations `[F, 3, 3]` (camera = R · canonical).
    public var rotations: Tensor
    /// Canonical shapes `[F, P, 3]`.
    public var canonical: Tensor
}

/// A trained network that lifts 2D keypoints of unseen frames to 3D in one forward pass, and
/// saves itself as a `.safetensors` checkpoint that ``NRSfMLifters/load(from:)`` rebuilds.
public protocol NRSfMLifter: AnyObject {
    /// The method that trained it.
    var method: NRSfMMethod { get }
    /// Number of points P the network expects.
    var pointCount: Int { get }
    /// The camera model it was trained with (`.persp`: inputs in normalised image coordinates,
    /// outputs in the unit set by the assumed depth, so compare them up to scale).
    var camera: NRSfMCamera { get }
    /// Lifts `[F, P, 2]` tracks (the same camera convention as in training) with an optional
    /// `[F, P]` visibility.
    func lift(points2D: Tensor, visibility: Tensor?) throws -> NRSfMLifted
    /// Writes the weights and everything needed to rebuild the network.
    func save(to url: URL) throws
}

public enum NRSfMLifters {
    /// Rebuilds a lifter from a checkpoint written by ``NRSfMLifter/save(to:)``, dispatching on
    /// the checkpoint's `method` metadata.
    /// - Throws: when the file is unreadable or was not written by a lifting model.
    public static func load(from url: URL) throws -> NRSfMLifter {
        let (_, metadata) = try readSafetensors(url)
        let name = metadata["method"] ?? "<none>"
        switch NRSfMMethod(rawValue: name) {
        case .deepNRSfMPlusPlus, .deepNRSfM:
            return try DeepNRSfMModel.load(from: url)
        case .paul, .adl:
            let model = try PAULModel.load(from: url)
            if model.config.lifting { return model }
            throw NRSfMError.unsupported("\(url.path): this \(name) model was trained in NRSfM mode (free per-frame codes) and cannot lift unseen frames; train with --set lifting=true")
        default:
            let liftable = NRSfMMethod.allCases.filter(\.canLift).map(\.rawValue)
            throw NRSfMError.unsupported("\(url.path): checkpoint of method '\(name)' cannot lift unseen frames (models that can: \(liftable.joined(separator: ", ")))")
        }
    }
}

extension DeepNRSfMModel: NRSfMLifter {
    public var method: NRSfMMethod { config.nonlinearity == .bst ? .deepNRSfMPlusPlus : .deepNRSfM }
    public var pointCount: Int { points }
    public var camera: NRSfMCamera { config.camera == .perspective ? .persp : .ortho }

    public func lift(points2D: Tensor, visibility: Tensor?) throws -> NRSfMLifted {
        let visible = visibility.flatMap { v in v.scalars.contains(0) ? v : nil }
        let r = try DeepNRSfM.lift(model: self, points2D: points2D, visibility: visible)
        return NRSfMLifted(points3D: r.points3D, rotations: r.rotations, canonical: r.canonical)
    }
}

extension PAULModel: NRSfMLifter {
    public var method: NRSfMMethod { config.useAutoencoderTerm ? .paul : .adl }
    public var pointCount: Int { points }
    public var camera: NRSfMCamera { .ortho }

    public func lift(points2D: Tensor, visibility: Tensor?) throws -> NRSfMLifted {
        let visible = visibility.flatMap { v in v.scalars.contains(0) ? v : nil }
        let r = try PAUL.lift(model: self, points2D: points2D, visibility: visible)
        return NRSfMLifted(points3D: r.points3D, rotations: r.rotations, canonical: r.canonical)
    }
}
