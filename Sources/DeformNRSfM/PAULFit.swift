import DeformGeometry
import DeformNN
import DeformTensor
import Foundation

/// Centred, globally scaled 2D observations, as PAUL trains on them.
public struct NormalizedTracks {
    /// [N, P, 2], each frame centred on its mean, all frames divided by one `scale`.
    public var w: Tensor
    /// The factor that makes the RMS point radius 1 (the source does not say how W is
    /// scale-normalised; one global factor keeps relative scale between frames).
    public var scale: Float

    public init(points2D: Tensor) {
        precondition(points2D.rank == 3 && points2D.shape[2] == 2, "NormalizedTracks: expected [F, P, 2], found \(points2D.shape)")
        let centred = points2D - points2D.mean(axes: [1], keepDims: true)
        let rms = centred.square().sum(axes: [2]).mean().item.squareRoot()
        scale = rms > 0 ? rms : 1
        w = centred / scale
    }
}

/// What a PAUL fit returns.
public struct PAULResult {
    /// Camera-frame 3D points [N, P, 3]: observed x, y and the solved depth z*, in input units.
    public var points3D: Tensor
    /// Camera rotations [N, 3, 3] (camera = R · canonical).
    public var rotations: Tensor
    /// Canonical shapes f_d(φ) [N, P, 3], in input units.
    public var canonical: Tensor
    /// Per-frame codes φ [N, K].
    public var codes: Tensor
    /// Training loss every `logEvery` steps: (step, loss).
    public var lossHistory: [(step: Int, loss: Float)]
    public var finalLoss: Float
    public var model: PAULModel
}

extension PAUL {
    /// NRSfM mode (φ free per frame): fits PAUL to complete orthographic tracks [F, P, 2].
    /// `progress` is called every `logEvery` steps with (step, loss).
    public static func fit(points2D: Tensor, config: PAULConfig, logEvery: Int = 100,
                           progress: ((Int, Float) -> Void)? = nil) throws -> PAULResult {
        if config.warmStart != .none && config.warmStartCompareRandom {
            var warm = config
            warm.warmStartCompareRandom = false
            var plain = warm
            plain.warmStart = .none
            let a = try fit(points2D: points2D, config: warm, logEvery: logEvery, progress: progress)
            let b = try fit(points2D: points2D, config: plain, logEvery: logEvery, progress: progress)
            return a.finalLoss <= b.finalLoss ? a : b
        }
        let norm = NormalizedTracks(points2D: points2D)
        let frames = points2D.shape[0], points = points2D.shape[1]
        var rng = RandomGenerator(seed: config.seed)
        let model = PAULModel(frames: frames, points: points, config: config, rng: &rng)
        if let teacher = try PAULInit.teacherCanonical(points2D: points2D, warmStart: config.warmStart, seed: config.seed) {
            PAULInit.prefit(model: model, targets: teacher / norm.scale, config: config, iterations: config.warmStartIterations)
        }
        let optimizer = Adam(learningRate: config.learningRate)
        optimizer.groups = [ParameterGroup(prefixes: ["decoder"], learningRate: config.learningRate,
                                           weightDecay: 2 * config.decoderWeightDecay)]
        optimizer.schedule = CosineAnnealing(totalSteps: config.iterations, minLearningRate: config.minLearningRate)
        var history: [(Int, Float)] = []
        var last: Float = .nan
        for step in 0..<config.iterations {
            if config.codeSearchIterations.contains(step) {
                let (codes, _) = try PAUL.searchCodes(model: model, w: norm.w, config: config)
                model.update(parameters: ["codes": codes])
            }
            var thrown: Error?
            let (loss, grads) = valueAndGrad(model) { m -> Tensor in
                let codes = step < config.rigidWarmupIterations ? m.codes * 0 : m.codes
                do { return try PAUL.loss(model: m, w: norm.w, codes: codes, config: config).total }
                catch { thrown = error; return Tensor(0) }
            }
            if let thrown { throw thrown }
            optimizer.update(model: model, gradients: grads)
            last = loss.item
            if step % logEvery == 0 || step == config.iterations - 1 {
                history.append((step, last))
                progress?(step, last)
            }
        }
        let (finalLoss, cam) = try GradMode.withoutGrad { () throws -> (Tensor, PAULSolver.Solution) in
            let r = try PAUL.loss(model: model, w: norm.w, codes: model.codes, config: config)
            return (r.total, r.camera)
        }
        let canonical = GradMode.withoutGrad { model.decode(model.codes) } * norm.scale
        return PAULResult(points3D: cam.cameraShape * norm.scale, rotations: cam.rotation,
                          canonical: canonical, codes: model.codes.detached(),
                          lossHistory: history.map { (step: $0.0, loss: $0.1) }, finalLoss: finalLoss.item, model: model)
    }
}
