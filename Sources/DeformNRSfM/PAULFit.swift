import DeformGeometry
import DeformNN
import DeformTensor
import Foundation

/// Centred, globally scaled 2D observations, as PAUL trains on them.
public struct NormalizedTracks {
    /// [N, P, 2], each frame centred on its mean (with a mask: the mean of its visible points,
    /// hidden rows zero), all frames divided by one `scale`.
    public var w: Tensor
    /// The factor that makes the RMS point radius 1 (the source does not say how W is
    /// scale-normalised; one global factor keeps relative scale between frames). With a mask,
    /// the RMS is over the visible points.
    public var scale: Float
    /// The visibility mask [N, P] (0/1), or `nil` when every point is visible.
    public var mask: Tensor?

    public init(points2D: Tensor) {
        precondition(points2D.rank == 3 && points2D.shape[2] == 2, "NormalizedTracks: expected [F, P, 2], found \(points2D.shape)")
        let centred = points2D - points2D.mean(axes: [1], keepDims: true)
        let rms = centred.square().sum(axes: [2]).mean().item.squareRoot()
        scale = rms > 0 ? rms : 1
        w = centred / scale
        mask = nil
    }

    /// Object-centric normalisation under missing data (Eq. 2.13): `W̃`, the points centred on
    /// their frame's visible mean (``ObjectCentric/centered(_:mask:)``), divided by the RMS radius
    /// of the visible points. Hidden coordinates are never read. `mask == nil` is
    /// ``init(points2D:)``.
    public init(points2D: Tensor, mask: Tensor?) {
        if let mask {
            precondition(points2D.rank == 3 && points2D.shape[2] == 2, "NormalizedTracks: expected [F, P, 2], found \(points2D.shape)")
            let centred = ObjectCentric.centered(points2D, mask: mask)
            let count = mask.sum().item
            let rms = count > 0 ? (centred.square().sum().item / count).squareRoot() : 0
            self.init(points2D: points2D, mask: mask, scale: rms > 0 ? rms : 1)
        } else {
            self.init(points2D: points2D)
        }
    }

    /// Normalises new frames with a given `scale` (the training sequence's, for lifting).
    public init(points2D: Tensor, mask: Tensor?, scale: Float) {
        precondition(points2D.rank == 3 && points2D.shape[2] == 2, "NormalizedTracks: expected [F, P, 2], found \(points2D.shape)")
        w = ObjectCentric.centered(points2D, mask: mask) / scale
        self.scale = scale
        self.mask = mask
    }
}

/// What a PAUL fit returns.
public struct PAULResult {
    /// Camera-frame 3D points [N, P, 3] in input units, x and y relative to the frame's (visible)
    /// 2D centroid: visible points have their observed x, y and the solved depth z*; hidden points
    /// (with a visibility mask) the decoders' prediction rotated into the camera frame (Eq. 2.14).
    public var points3D: Tensor
    /// Camera rotations [N, 3, 3] (camera = R · canonical).
    public var rotations: Tensor
    /// Canonical shapes f_d(φ) [N, P, 3], in input units.
    public var canonical: Tensor
    /// Per-frame codes φ [N, K] (lifting mode: φ = h(W, M)).
    public var codes: Tensor
    /// Training loss every `logEvery` steps: (step, loss).
    public var lossHistory: [(step: Int, loss: Float)]
    public var finalLoss: Float
    public var model: PAULModel
}

extension PAUL {
    /// Fits PAUL to orthographic tracks [F, P, 2]: NRSfM mode (φ free per frame) or, with
    /// `config.lifting`, lifting mode (φ = h(W, M), the network can then lift unseen frames with
    /// ``lift(model:points2D:visibility:)``).
    ///
    /// - Parameters:
    ///   - points2D: `[F, P, 2]`, any unit, P ≥ 3.
    ///   - visibility: `[F, P]` of 0/1, or `nil` (all visible). Hidden coordinates are never read
    ///     (they may be NaN); every frame needs at least 2 visible points. A mask with every point
    ///     visible gives exactly the result without one.
    ///   - logEvery: `progress` is called every `logEvery` steps with (step, loss).
    /// - Throws: ``TensorError`` for malformed input (naming the entry) or a non-finite loss.
    public static func fit(points2D: Tensor, visibility: Tensor? = nil, config: PAULConfig, logEvery: Int = 100,
                           progress: ((Int, Float) -> Void)? = nil) throws -> PAULResult {
        if config.warmStart != .none && config.warmStartCompareRandom {
            var warm = config
            warm.warmStartCompareRandom = false
            var plain = warm
            plain.warmStart = .none
            let a = try fit(points2D: points2D, visibility: visibility, config: warm, logEvery: logEvery, progress: progress)
            let b = try fit(points2D: points2D, visibility: visibility, config: plain, logEvery: logEvery, progress: progress)
            return a.finalLoss <= b.finalLoss ? a : b
        }
        let op = "PAUL.fit"
        let mask = try TrackValidation.mask(points2D: points2D, visibility: visibility, op: op)
        let norm = NormalizedTracks(points2D: points2D, mask: mask)
        let frames = points2D.shape[0], points = points2D.shape[1]
        var rng = RandomGenerator(seed: config.seed)
        let model = PAULModel(frames: frames, points: points, config: config, rng: &rng)
        model.inputScale = Tensor([norm.scale])
        // BMM needs complete tracks: with hidden points the warm start comes from Deep NRSfM++.
        let teacherMethod: PAULWarmStart = mask != nil && config.warmStart == .bmm ? .deepNRSfMPlusPlus : config.warmStart
        let features = config.lifting ? PAULLifter.features(points: norm.w, mask: mask) : nil
        if let teacher = try PAULInit.teacherCanonical(points2D: points2D, visibility: mask, warmStart: teacherMethod, seed: config.seed) {
            PAULInit.prefit(model: model, targets: teacher / norm.scale, features: features, config: config,
                            iterations: config.warmStartIterations)
        }
        let optimizer = Adam(learningRate: config.learningRate)
        optimizer.groups = [ParameterGroup(prefixes: ["decoder"], learningRate: config.learningRate,
                                           weightDecay: 2 * config.decoderWeightDecay)]
        optimizer.schedule = CosineAnnealing(totalSteps: config.iterations, minLearningRate: config.minLearningRate)
        let batch = Swift.min(Swift.max(config.batchSize ?? frames, 1), frames)
        var batchRNG = RandomGenerator(seed: config.seed &+ 0x5eed)
        var order: [Int] = []
        var history: [(Int, Float)] = []
        var last: Float = .nan
        /// One Adam step on the frames `indices` (`nil`: every frame); returns the loss before it.
        func trainStep(_ optimizer: Optimizer, indices: [Int]?, rigid: Bool, at step: Int) throws -> Float {
            let w = indices.map { norm.w.indexSelect(axis: 0, indices: $0) } ?? norm.w
            let m = indices.flatMap { i in mask.map { $0.indexSelect(axis: 0, indices: i) } } ?? mask
            let x = indices.flatMap { i in features.map { $0.indexSelect(axis: 0, indices: i) } } ?? features
            var thrown: Error?
            let (loss, grads) = valueAndGrad(model) { model -> Tensor in
                var codes: Tensor
                if let lifter = model.lifter, let x { codes = lifter(x) }
                else { codes = indices.map { model.codes.indexSelect(axis: 0, indices: $0) } ?? model.codes }
                if rigid { codes = codes * 0 }
                do { return try PAUL.loss(model: model, w: w, codes: codes, config: config, mask: m).total }
                catch { thrown = error; return Tensor(0) }
            }
            if let thrown { throw thrown }
            let value = loss.item
            if !value.isFinite {
                throw TensorError.nonFinite(op: op, message: "the training loss became \(value) at step \(step)")
            }
            optimizer.update(model: model, gradients: grads)
            return value
        }
        // Polyak averaging (``PAULConfig/averageLastFraction``): running means of every trainable
        // parameter over the last steps of the schedule.
        let averageStart = config.averageLastFraction > 0
            ? config.iterations - Swift.max(1, Int((Double(config.averageLastFraction) * Double(config.iterations)).rounded()))
            : Int.max
        var averages: [String: Tensor] = [:]
        var averaged = 0
        for step in 0..<config.iterations {
            if !config.lifting && config.codeSearchIterations.contains(step) {
                let (codes, _) = try PAUL.searchCodes(model: model, w: norm.w, config: config, mask: mask)
                model.update(parameters: ["codes": codes])
            }
            // The step's frames: all of them, or the next `batch` of a seeded shuffle.
            var indices: [Int]? = nil
            if batch < frames {
                if order.count < batch { order = DeepNRSfM.shuffled(frames, rng: &batchRNG) }
                indices = Array(order.suffix(batch))
                order.removeLast(batch)
            }
            last = try trainStep(optimizer, indices: indices, rigid: step < config.rigidWarmupIterations, at: step)
            if step >= averageStart {
                averaged += 1
                GradMode.withoutGrad {
                    for (name, value) in model.trainableParameters() {
                        // Incremental mean a ← a + (θ − a)/n; `θ * 1` is a copy, never the parameter's storage.
                        averages[name] = averages[name].map { $0 + (value - $0) / Float(averaged) } ?? value * 1
                    }
                }
            }
            if step % Swift.max(logEvery, 1) == 0 || step == config.iterations - 1 {
                history.append((step, last))
                progress?(step, last)
            }
        }
        if !averages.isEmpty { model.update(parameters: averages) }
        // Full-batch polish (``PAULConfig/polishIterations``): a fresh Adam at the schedule's final
        // rate, every frame in every step, so no mini-batch noise is left in the returned model.
        if config.polishIterations > 0 {
            let polish = Adam(learningRate: config.minLearningRate)
            polish.groups = [ParameterGroup(prefixes: ["decoder"], learningRate: config.minLearningRate,
                                            weightDecay: 2 * config.decoderWeightDecay)]
            for i in 0..<config.polishIterations {
                last = try trainStep(polish, indices: nil, rigid: false, at: config.iterations + i)
            }
            history.append((config.iterations + config.polishIterations - 1, last))
            progress?(config.iterations + config.polishIterations - 1, last)
        }
        let codes = GradMode.withoutGrad { features.map { model.lifter!($0) } ?? model.codes.detached() }
        let (finalLoss, cam) = try GradMode.withoutGrad { () throws -> (Tensor, PAULSolver.Solution) in
            let r = try PAUL.loss(model: model, w: norm.w, codes: codes, config: config, mask: mask)
            return (r.total, r.camera)
        }
        let canonical = GradMode.withoutGrad { model.decode(codes) } * norm.scale
        return PAULResult(points3D: cam.cameraShape * norm.scale, rotations: cam.rotation,
                          canonical: canonical, codes: codes,
                          lossHistory: history.map { (step: $0.0, loss: $0.1) }, finalLoss: finalLoss.item, model: model)
    }
}
