import DeformGeometry
import DeformNN
import DeformTensor
import Foundation

/// What ``PAUL/lift(model:points2D:visibility:)`` returns for frames the network has not seen.
public struct PAULLift {
    /// Camera-frame 3D points `[F, P, 3]` in input units: the canonical shape rotated by the OnP
    /// rotation and centred on its visible points' mean, so x and y are relative to the frame's
    /// visible 2D centroid (as in ``PAULResult/points3D``), with visible points' x, y replaced by
    /// their observations. Hidden points are the network's prediction.
    public var points3D: Tensor
    /// OnP rotations `[F, 3, 3]` (camera = R · canonical).
    public var rotations: Tensor
    /// Canonical shapes `f_d(h(W, M))`, `[F, P, 3]`, in input units.
    public var canonical: Tensor
    /// Codes `φ = h(W, M)`, `[F, K]`.
    public var codes: Tensor
    /// Per-frame RMS reprojection error of the OnP alignment over the visible points, input units.
    public var reprojectionError: Tensor
}

extension PAUL {
    /// Lifts 2D points of unseen frames with a network trained in lifting mode (card §6):
    /// `S = f_d(h(W̃, M))` in the canonical frame, aligned to the camera by OnP (``OnP/solve``,
    /// orthographic, on the visible points). The points are normalised with the training
    /// sequence's scale (``PAULModel/inputScale``).
    /// - Parameters:
    ///   - points2D: `[F, P, 2]` in the unit of the training tracks, P the model's point count.
    ///   - visibility: `[F, P]` of 0/1 or `nil`; every frame needs at least 2 visible points.
    /// - Throws: ``TensorError`` when the model has no lifting network or the input is malformed.
    public static func lift(model: PAULModel, points2D: Tensor, visibility: Tensor? = nil) throws -> PAULLift {
        let op = "PAUL.lift"
        guard let lifter = model.lifter else {
            throw TensorError.invalidArgument(op: op, message: "the model has no 2D→3D encoder; train it with config.lifting = true")
        }
        if points2D.rank == 3, points2D.shape[1] != model.points {
            throw TensorError.shapeMismatch(op: op, expected: "points2D of shape [F, \(model.points), 2] (the model's point count)",
                                            found: "\(points2D.shape)")
        }
        let mask = try TrackValidation.mask(points2D: points2D, visibility: visibility, op: op)
        let scale = model.inputScale.item
        let norm = NormalizedTracks(points2D: points2D, mask: mask, scale: scale)
        return try GradMode.withoutGrad {
            let codes = lifter(points: norm.w, mask: mask)
            let shapes = model.decode(codes)
            let onp = try OnP.solve(points2D: norm.w, shape: shapes, mask: mask)
            // OnP removes translation by centring both sides on the visible points; the same here.
            let centred = shapes - ObjectCentric.visibleMean(shapes, mask: mask)
            var cam = centred.matmul(onp.rotation.transposed())                    // rows: R s
            let observed = Tensor.concat([norm.w, cam.narrow(axis: 2, start: 2, length: 1)], axis: 2)
            let visible = (mask ?? Tensor.ones([points2D.shape[0], model.points])).unsqueezed(-1)
            cam = Tensor.where(visible, observed, cam)
            return PAULLift(points3D: cam * scale, rotations: onp.rotation, canonical: shapes * scale,
                            codes: codes, reprojectionError: onp.rmsError * scale)
        }
    }
}

// MARK: - Checkpoints

extension PAULModel {
    /// Metadata stored with ``save(to:)``: the method name, the point and frame counts and the
    /// config as JSON, everything ``load(from:)`` needs to rebuild the network.
    public var checkpointMetadata: [String: String] {
        let json = (try? JSONEncoder().encode(config)).flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
        return ["method": config.useAutoencoderTerm ? "paul" : "adl", "points": "\(points)", "frames": "\(codes.shape[0])", "config": json]
    }

    /// Writes the weights (encoder, decoder, free codes or h, input scale) as `.safetensors` with
    /// ``checkpointMetadata``.
    public func save(to url: URL) throws {
        try saveCheckpoint(self, to: url, metadata: checkpointMetadata)
    }

    /// Rebuilds a network saved by ``save(to:)``.
    /// - Throws: ``CheckpointError`` / ``TensorError`` naming the file when it is not such a checkpoint.
    public static func load(from url: URL) throws -> PAULModel {
        let (tensors, metadata) = try readSafetensors(url)
        guard metadata["method"] == "paul" || metadata["method"] == "adl", let json = metadata["config"],
              let points = metadata["points"].flatMap(Int.init), points >= 3,
              let frames = metadata["frames"].flatMap(Int.init), frames >= 0,
              let config = try? JSONDecoder().decode(PAULConfig.self, from: Data(json.utf8)) else {
            throw TensorError.invalidArgument(op: "PAULModel.load",
                                              message: "\(url.path): not a PAUL checkpoint (metadata 'method', 'points', 'frames' or 'config' missing or invalid)")
        }
        var rng = RandomGenerator(seed: config.seed)
        let model = PAULModel(frames: frames, points: points, config: config, rng: &rng)
        try applyState(tensors, to: model, file: url.path)
        return model
    }
}
