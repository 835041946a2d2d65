import DeformGeometry
import DeformNN
import DeformTensor
import Foundation

/// A sequence prepared for the network: the normalised 2D input of Table 3.1 and the encoder's
/// first-level input.
public struct DeepNRSfMData {
    /// The 2D points the factorisation sees, `[N, P, 2]`, invisible entries zeroed: orthographic,
    /// the input divided by the global scale; perspective, the input (unit focal plane) as is.
    public var points: Tensor
    /// `[N, P]` 0/1, or `nil` when every point is visible.
    public var mask: Tensor?
    /// Perspective only: t_z per frame, `[N]`.
    public var depth: Tensor?
    /// `M W̃`, `[N, P, 2]`: Eq. 3.15 (orthographic) or the left side of Eq. 3.14 (perspective, the
    /// 2P vector as P rows (u, v)).
    public var target: Tensor
    /// `[N, P, a]` with `D̃_1ᵀ M W̃ = D♯ᵀ x` (the first ISTA step, Eq. 3.23). Orthographic:
    /// `x = M W̃`, because the correction `D̃_1 - D♯` is constant over rows and the visible rows of
    /// `W̃` sum to zero. Perspective: `x_i = m_i (w̃u_i, w̃v_i, -(u_i w̃u_i + v_i w̃v_i))`, by the same
    /// argument for the `d̃_i` and `Σ_j m_j u_j d_j / P̃` terms of Eq. 3.14's D̃. So D̃_1 is never
    /// formed (it would be `[N, 2P, 9K_1]` per batch).
    public var encoderInput: Tensor

    public var frames: Int { points.shape[0] }

    /// Builds the normalised input. `points` must already be in the network's unit (see
    /// ``points``); `depth` is required for the perspective model.
    public init(points: Tensor, mask: Tensor?, camera: DeepNRSfMConfig.CameraModel, depth: Tensor?) {
        self.points = points
        self.mask = mask
        self.depth = depth
        switch camera {
        case .orthographic:
            target = ObjectCentric.centered(points, mask: mask)
            encoderInput = target
        case .perspective:
            guard let depth else { fatalError("DeepNRSfMData: the perspective model needs the depth t_z") }
            target = ObjectCentric.perspectiveInput(points, mask: mask, depth: depth)
            let z = -(points * target).sum(axes: [2], keepDims: true)
            encoderInput = Tensor.concat([target, z], axis: 2)
        }
    }

    /// The frames at `indices`.
    public func selecting(_ indices: [Int]) -> DeepNRSfMData {
        var d = self
        d.points = points.indexSelect(axis: 0, indices: indices)
        d.mask = mask?.indexSelect(axis: 0, indices: indices)
        d.depth = depth?.indexSelect(axis: 0, indices: indices)
        d.target = target.indexSelect(axis: 0, indices: indices)
        d.encoderInput = encoderInput.indexSelect(axis: 0, indices: indices)
        return d
    }
}

/// Per-frame outputs of the network.
public struct DeepNRSfMReconstruction {
    /// Camera-frame 3D points `[F, P, 3]`. Orthographic: in the input's unit, x and y in the
    /// input's image frame (visible points land on their 2D positions up to the reprojection
    /// error), z with the object's centre at depth 0. Perspective: the object centre at depth t_z,
    /// so that `(x/z, y/z)` reprojects onto the input; the scale is that set by t_z (Sec. 3.3.1).
    public var points3D: Tensor
    /// Camera rotations `[F, 3, 3]`: camera-frame points are `R · canonical` (columns).
    public var rotations: Tensor
    /// Canonical shapes `S = D_1 φ_1`, `[F, P, 3]` (orthographic: in the input's unit).
    public var canonical: Tensor
    /// Last-level codes φ_L, `[F, K_L]`.
    public var codes: Tensor
    /// Perspective: the depth t_z used per frame, `[F]`; `nil` for the orthographic model.
    public var depth: Tensor?
    /// Per-frame reprojection error `‖M W̃ - M D̃ Ψ̃‖_F` (Eq. 3.17), in the network's unit.
    public var frameLoss: Tensor
}

/// What ``DeepNRSfM/fit(points2D:visibility:config:logEvery:progress:)`` returns.
public struct DeepNRSfMResult {
    /// Camera-frame 3D points `[F, P, 3]` (see ``DeepNRSfMReconstruction/points3D``).
    public var points3D: Tensor
    /// Camera rotations `[F, 3, 3]` (camera = R · canonical).
    public var rotations: Tensor
    public var canonical: Tensor
    public var codes: Tensor
    public var depth: Tensor?
    /// The trained network (checkpoint it with `saveCheckpoint`; lift new frames with
    /// ``DeepNRSfM/lift(model:points2D:visibility:)``).
    public var model: DeepNRSfMModel
    /// Mean reprojection loss (Eq. 3.17 per frame, averaged) of the final network on all frames.
    public var finalLoss: Float
    /// Training loss (of the batch) every `logEvery` steps.
    public var lossHistory: [(step: Int, loss: Float)]
}

extension DeepNRSfM {
    /// Per-frame loss of Eq. 3.17, `‖M W̃ - M D̃ Ψ̃‖_F` (not squared), with the network's
    /// prediction; also returns the network outputs.
    ///
    /// Since `D̃_1 Ψ̃_1 = D̃_1 (φ_1 ⊗ R)` only depends on the decoded shape `S = D_1 φ_1` and R,
    /// it is formed from them (``reprojected(shapes:rotations:data:camera:)``), not from D̃_1.
    public static func losses(model: DeepNRSfMModel, data: DeepNRSfMData) throws
        -> (perFrame: Tensor, shapes: Tensor, rotations: Tensor, codes: Tensor) {
        let (shapes, rotations, codes) = try model(input: data.encoderInput)
        let reprojection = reprojected(shapes: shapes, rotations: rotations, data: data, camera: model.config.camera)
        return ((data.target - reprojection).norm(axes: [1, 2]), shapes, rotations, codes)
    }

    /// `M D̃ Ψ̃` of Eq. 3.7 for canonical shapes `[N, P, 3]` and rotations `[N, 3, 3]` (camera =
    /// R · canonical), as `[N, P, 2]` rows comparable with ``DeepNRSfMData/target``: orthographic,
    /// ``ObjectCentric/normalizedRows(_:mask:)`` of the x, y columns of `S Rᵀ` (Eq. 3.15);
    /// perspective, ``ObjectCentric/perspectiveDictionary(_:points2D:mask:)`` of S (a dictionary with
    /// one block) times `vec(Rᵀ)` (Eq. 3.14, Ψ̃ = the columns of the thesis' rotation stacked).
    public static func reprojected(shapes: Tensor, rotations: Tensor, data: DeepNRSfMData,
                                   camera: DeepNRSfMConfig.CameraModel) -> Tensor {
        let n = shapes.shape[0], p = shapes.shape[1]
        var r: Tensor
        switch camera {
        case .orthographic:
            r = shapes.matmul(rotations.narrow(axis: 1, start: 0, length: 2).transposed())     // S R_xy
            if let mask = data.mask { r = ObjectCentric.normalizedRows(r, mask: mask) }
        case .perspective:
            let dTilde = ObjectCentric.perspectiveDictionary(shapes, points2D: data.points, mask: data.mask)  // [N, 2P, 9]
            r = dTilde.matmul(rotations.reshaped([n, 9, 1])).reshaped([n, p, 2])
        }
        if let mask = data.mask { r = mask.unsqueezed(-1) * r }
        return r
    }

    /// The network's reconstruction of prepared frames (no gradients), in the network's unit.
    static func reconstruct(model: DeepNRSfMModel, data: DeepNRSfMData) throws -> DeepNRSfMReconstruction {
        try GradMode.withoutGrad {
            let (loss, shapes, rotations, codes) = try losses(model: model, data: data)
            let cam = shapes.matmul(rotations.transposed())                                       // S R (rows)
            let p = model.points
            let points3D: Tensor
            switch model.config.camera {
            case .orthographic:
                // Object-centric translation (Eq. 3.28): the hidden points' share of the centre.
                let rows = data.mask.map { ObjectCentric.normalizedRows(cam, mask: $0) } ?? cam
                let centre = ObjectCentric.visibleMean(data.points, mask: data.mask)             // [N, 1, 2]
                points3D = rows + Tensor.concat([centre, Tensor.zeros([data.frames, 1, 1])], axis: 2)
            case .perspective:
                // t_x, t_y from Eq. 3.13, t_z given.
                let m = data.mask ?? Tensor.ones([data.frames, p])
                let tz = data.depth!.reshaped([-1, 1])
                let z = cam.narrow(axis: 2, start: 2, length: 1).squeezed([2]) + tz             // z'_i + t_z, [N, P]
                let count = m.sum(axes: [1], keepDims: true)
                func t(_ c: Int) -> Tensor {
                    let u = data.points.narrow(axis: 2, start: c, length: 1).squeezed([2])
                    let x = cam.narrow(axis: 2, start: c, length: 1).squeezed([2])
                    return (m * u * z + (1 - m) * x).sum(axes: [1], keepDims: true) / count
                }
                let translation = Tensor.concat([t(0), t(1), tz], axis: 1)                        // [N, 3]
                points3D = cam + translation.unsqueezed(1)
            }
            return DeepNRSfMReconstruction(points3D: points3D, rotations: rotations, canonical: shapes,
                                           codes: codes, depth: data.depth, frameLoss: loss)
        }
    }

    /// Checks the tracks and prepares them in the network's unit. `scale` (orthographic): the
    /// global divisor, computed from the data when `nil`.
    static func prepare(points2D: Tensor, visibility: Tensor?, camera: DeepNRSfMConfig.CameraModel,
                        scale: Float?, op: String) throws -> (data: DeepNRSfMData, scale: Float) {
        let mask = try TrackValidation.mask(points2D: points2D, visibility: visibility, op: op)
        let f = points2D.shape[0], p = points2D.shape[1]
        var points = mask.map { Tensor.where($0.unsqueezed(-1), points2D.detached(), Tensor(0)) } ?? points2D.detached()
        switch camera {
        case .orthographic:
            var s = scale ?? 0
            if scale == nil {
                // One global factor so the RMS distance of the visible points to their frame's
                // visible centroid is 1 (the source does not say how W is scaled; one factor for
                // the whole sequence keeps the relative scale of its frames).
                let centred = ObjectCentric.centered(points, mask: mask)
                let visibleCount = mask.map { $0.sum().item } ?? Float(f * p)
                s = (centred.square().sum().item / visibleCount).squareRoot()
                if !(s > 0) { throw TensorError.invalidArgument(op: op, message: "points2D: every frame's visible points coincide") }
            }
            points = points / s
            return (DeepNRSfMData(points: points, mask: mask, camera: .orthographic, depth: nil), s)
        case .perspective:
            // t_z = 1 / max(bbox height, width) of the visible points (Sec. 3.5, Pascal3D+ / H3.6M),
            // divided by one global factor so that W̃ = (u - ū) t_z has an RMS of 1 over the
            // visible points, the orthographic model's unit. (S, t_z) → (S, t_z)/s leaves the
            // projection unchanged; it only sets the unit the thresholds and the learning rate see.
            let boxDepth = try ObjectCentric.boundingBoxDepth(points, mask: mask)
            var s = scale ?? 0
            if scale == nil {
                let centred = ObjectCentric.centered(points, mask: mask) * boxDepth.reshaped([-1, 1, 1])
                let visibleCount = mask.map { $0.sum().item } ?? Float(f * p)
                s = (centred.square().sum().item / visibleCount).squareRoot()
                if !(s > 0) { throw TensorError.invalidArgument(op: op, message: "points2D: every frame's visible points coincide") }
            }
            return (DeepNRSfMData(points: points, mask: mask, camera: .perspective, depth: boxDepth / s), s)
        }
    }

    /// Trains Deep NRSfM++ (or Deep NRSfM, `config.nonlinearity = .relu`) on a sequence and
    /// returns its reconstruction: the NRSfM setting, where the network is trained on the frames
    /// it reconstructs (Eq. 3.17 minimised over D, Θ and the biases).
    ///
    /// - Parameters:
    ///   - points2D: `[F, P, 2]`. Orthographic model: image coordinates in any unit. Perspective
    ///     model: normalised image coordinates (unit focal plane); the depth t_z of each frame is
    ///     set from its bounding box (Sec. 3.5) and optionally scale-corrected.
    ///   - visibility: `[F, P]` of 0/1 or `nil` (all visible). Coordinates of hidden points are
    ///     never read (they may be NaN). Every frame needs at least 2 visible points.
    ///   - logEvery: `progress` is called every `logEvery` steps with (step, batch loss).
    /// - Throws: ``TensorError`` for malformed input (naming the entry and the expected shape) or a
    ///   numerical failure during training.
    public static func fit(points2D: Tensor, visibility: Tensor? = nil, config: DeepNRSfMConfig = DeepNRSfMConfig(),
                           logEvery: Int = 100, progress: ((Int, Float) -> Void)? = nil) throws -> DeepNRSfMResult {
        let op = "DeepNRSfM.fit"
        var (data, scale) = try prepare(points2D: points2D, visibility: visibility, camera: config.camera, scale: nil, op: op)
        let model = DeepNRSfMModel(points: points2D.shape[1], config: config)
        model.inputScale = Tensor([scale])
        var history: [(step: Int, loss: Float)] = []
        var rng = RandomGenerator(seed: config.seed &+ 0x5eed)
        var step = 0
        if config.camera == .perspective && config.orthographicWarmStart > 0 {
            try warmStartFromOrthographic(model: model, points2D: points2D, visibility: visibility, data: data,
                                          config: config, rng: &rng, step: &step, history: &history,
                                          logEvery: logEvery, progress: progress)
        }
        try train(model: model, data: data, iterations: config.iterations, config: config, rng: &rng,
                  step: &step, history: &history, logEvery: logEvery, progress: progress)
        if config.camera == .perspective {
            for _ in 0..<config.scaleCorrectionRounds {
                let rec = try reconstruct(model: model, data: data)
                data = DeepNRSfMData(points: data.points, mask: data.mask, camera: .perspective,
                                     depth: correctedDepth(data.depth!, shapes: rec.canonical))
                try train(model: model, data: data, iterations: config.scaleCorrectionIterations, config: config, rng: &rng,
                          step: &step, history: &history, logEvery: logEvery, progress: progress)
            }
        }
        let rec = try reconstruct(model: model, data: data)
        return DeepNRSfMResult(points3D: rec.points3D * scale, rotations: rec.rotations, canonical: rec.canonical * scale,
                               codes: rec.codes, depth: rec.depth.map { $0 * scale }, model: model,
                               finalLoss: rec.frameLoss.mean().item, lossHistory: history)
    }

    /// Lifts 2D points of frames the network was not trained on (one forward pass, Sec. 3.6 /
    /// card §6). Same input conventions as ``fit(points2D:visibility:config:logEvery:progress:)``;
    /// the orthographic model reuses the training sequence's scale, the perspective model takes
    /// t_z from each frame's bounding box (no scale correction: it needs the whole sequence).
    public static func lift(model: DeepNRSfMModel, points2D: Tensor, visibility: Tensor? = nil) throws -> DeepNRSfMReconstruction {
        let op = "DeepNRSfM.lift"
        if points2D.rank == 3, points2D.shape[1] != model.points {
            throw TensorError.shapeMismatch(op: op, expected: "points2D of shape [F, \(model.points), 2] (the model's point count)",
                                            found: "\(points2D.shape)")
        }
        let scale = model.inputScale.item
        let (data, _) = try prepare(points2D: points2D, visibility: visibility, camera: model.config.camera, scale: scale, op: op)
        var rec = try reconstruct(model: model, data: data)
        rec.points3D = rec.points3D * scale
        rec.canonical = rec.canonical * scale
        rec.depth = rec.depth.map { $0 * scale }
        return rec
    }

    /// Starts a perspective network from an orthographic one trained on the same points.
    ///
    /// Under perspective the depth mirror of a reconstruction no longer reprojects exactly, but a
    /// non-rigid model can deform the mirrored shapes until it nearly does. Trained from random
    /// weights, the perspective network settled in that mirrored, distorted solution on the
    /// articulated benchmark sequences (every frame closer to the mirrored ground truth; pickup
    /// 8.4% against 5.3% for the orthographic network on the same data). The orthographic network
    /// finds the shapes up to the mirror; both it and its mirror (the z rows of D_1 negated, which
    /// mirrors every canonical shape and turns each camera R into F R F, F = diag(1, 1, -1); in the
    /// perspective network only approximately, as its codes also read the depth-weighted third
    /// column of the input) are scored with the perspective loss on all frames, and the better
    /// one starts the perspective training. The dictionaries, thresholds, biases and camera
    /// weights have the same shapes in both models.
    static func warmStartFromOrthographic(model: DeepNRSfMModel, points2D: Tensor, visibility: Tensor?, data: DeepNRSfMData,
                                          config: DeepNRSfMConfig, rng: inout RandomGenerator, step: inout Int,
                                          history: inout [(step: Int, loss: Float)],
                                          logEvery: Int, progress: ((Int, Float) -> Void)?) throws {
        var orthoConfig = config
        orthoConfig.camera = .orthographic
        orthoConfig.scaleCorrectionRounds = 0
        let (orthoData, _) = try prepare(points2D: points2D, visibility: visibility, camera: .orthographic, scale: nil,
                                         op: "DeepNRSfM.fit")
        let ortho = DeepNRSfMModel(points: model.points, config: orthoConfig)
        try train(model: ortho, data: orthoData, iterations: config.orthographicWarmStart, config: orthoConfig, rng: &rng,
                  step: &step, history: &history, logEvery: logEvery, progress: progress)
        model.update(parameters: Dictionary(uniqueKeysWithValues: ortho.parameters().map { ($0.0, $0.1.detached()) }))
        let dictionary = model.levels[0].dictionary
        let signs = Tensor((0..<dictionary.shape[0]).map { $0 % 3 == 2 ? Float(-1) : 1 }, shape: [dictionary.shape[0], 1])
        let mirrored = dictionary * signs
        let loss = try GradMode.withoutGrad { try losses(model: model, data: data).perFrame.mean().item }
        model.levels[0].dictionary = mirrored
        let mirroredLoss = try GradMode.withoutGrad { try losses(model: model, data: data).perFrame.mean().item }
        if !(mirroredLoss < loss) { model.levels[0].dictionary = dictionary }
    }

    /// Scale correction (Sec. 3.5): `t_z ← t_z · s̄ / ‖S‖_F` per frame, with ‖S‖_F the Frobenius
    /// norm of the frame's centred canonical shape and s̄ its mean over frames, so a frame whose
    /// shape came out too large (t_z too large) is moved closer. The source does not give the
    /// formula; this is the update that makes every reconstruction the same size, the assumption
    /// behind correcting with "the Frobenius norm of S".
    public static func correctedDepth(_ depth: Tensor, shapes: Tensor) -> Tensor {
        GradMode.withoutGrad {
            let norms = (shapes - shapes.mean(axes: [1], keepDims: true)).norm(axes: [1, 2])   // [N]
            let safe = Tensor.maximum(norms, Tensor(1e-12))
            return depth * (norms.mean() / safe)
        }
    }

    static func train(model: DeepNRSfMModel, data: DeepNRSfMData, iterations: Int, config: DeepNRSfMConfig,
                      rng: inout RandomGenerator, step: inout Int, history: inout [(step: Int, loss: Float)],
                      logEvery: Int, progress: ((Int, Float) -> Void)?) throws {
        guard iterations > 0 else { return }
        let optimizer = Adam(learningRate: config.learningRate)
        let decay = config.learningRateDecay, every = Float(Swift.max(config.decayEvery ?? iterations, 1))
        optimizer.schedule = LambdaSchedule { Foundation.pow(decay, Float($0) / every) }
        let frames = data.frames
        let batch = Swift.min(config.batchSize ?? frames, frames)
        var order: [Int] = []
        for local in 0..<iterations {
            var current = data
            if batch < frames {
                if order.count < batch { order = shuffled(frames, rng: &rng) }
                current = data.selecting(Array(order.suffix(batch)))
                order.removeLast(batch)
            }
            var thrown: Error?
            let (loss, grads) = valueAndGrad(model) { m -> Tensor in
                do { return try losses(model: m, data: current).perFrame.mean() } catch { thrown = error; return Tensor(0) }
            }
            if let thrown { throw thrown }
            let value = loss.item
            if !value.isFinite {
                throw TensorError.nonFinite(op: "DeepNRSfM.fit", message: "the training loss became \(value) at step \(step)")
            }
            optimizer.update(model: model, gradients: grads)
            if step % Swift.max(logEvery, 1) == 0 || local == iterations - 1 {
                history.append((step, value))
                progress?(step, value)
            }
            step += 1
        }
    }

    /// A seeded permutation of `0..<n`.
    static func shuffled(_ n: Int, rng: inout RandomGenerator) -> [Int] {
        let keys = rng.uniform([n]).scalars
        return (0..<n).sorted { keys[$0] < keys[$1] }
    }
}
