import DeformGeometry
import DeformNN
import DeformTensor
import Foundation

/// Hyper-parameters of PAUL (thesis ch. 2). Defaults are the paper's where it gives them; where the
/// source is silent (see the method card's gaps) the choice and its reason are noted.
public struct PAULConfig: Codable, Sendable {
    /// Bottleneck K: 4 for short sequences, 8 for articulated data (Sec. 2.5).
    public var bottleneck = 4
    /// Encoder widths; unit counts decrease exponentially {256, 128, 64, 32, 16} (Sec. 2.5). The
    /// decoder mirrors them (not stated in the source; the usual symmetric auto-encoder).
    public var hiddenWidths = [256, 128, 64, 32, 16]
    /// LeakyReLU slope (activation not stated in the source; 0.2 as the independent re-implementation).
    public var leakySlope: Float = 0.2
    /// Weight of ‖φ‖² in L_reg (Eq. 2.12).
    public var codeWeight: Float = 0.01
    /// Weight of ‖θ_d‖² in L_reg (Eq. 2.12), applied as coupled L2 decay on the decoder.
    public var decoderWeightDecay: Float = 1e-4
    /// Std of the free per-frame codes at initialisation (not stated; small so shapes start near the mean).
    public var codeInitStd: Float = 0.01
    /// Full-batch Adam iterations (not stated in the source; "tuned to guarantee convergence").
    public var iterations = 8000
    /// Adam learning rate with cosine decay to `minLearningRate` (not stated in the source); also
    /// the rate of the warm start's pre-fit. 2e-3: at 1e-3 the mini-batch loss stalled near its
    /// starting value for the first half of the schedule and runs ended at training losses that
    /// varied 2x between seeds (drink 0.031-0.057), the higher ones with the larger errors. Measured
    /// with 5 seeds (single-threaded runs, `deform nrsfm table --methods paul --seeds 5
    /// --set learningRate=...`), normalized error %, 1e-3 -> 2e-3: drink 0.51 ± 0.13 -> 0.30 ± 0.02,
    /// pickup 2.09 ± 0.14 -> 1.87 ± 0.18, yoga 1.78 ± 0.41 -> 1.45 ± 0.10 (final training losses
    /// about halved on every run); 3e-4 was much worse (drink 1.45, pickup 2.88). Same cost per run.
    /// On the other two sequences: walking 8.97 ± 0.83 -> 8.06 ± 0.49, face 1.96 ± 0.08 -> 2.09 ± 0.07
    /// (worse). The lifting and missing-data protocols were not re-measured at this rate.
    public var learningRate: Float = 2e-3
    public var minLearningRate: Float = 1e-5
    /// Use the auto-encoder term L_recon.AE (false gives the ADL ablation: L_recon.AD + L_reg only).
    public var useAutoencoderTerm = true
    /// Iterations at the start during which the codes are held at zero, so one rigid mean shape and
    /// the cameras are fitted before any deformation (not in the source; a remedy for wrong basins
    /// on sequences like pickup, chosen without ground truth). 0 disables it.
    public var rigidWarmupIterations = 0
    /// Iterations at which every frame's code is replaced by the code of whichever frame gives it
    /// the lowest loss, if that is lower than its own (see ``PAUL/searchCodes(model:w:config:)``).
    /// Not in the source: frames stuck in a wrong (mirror-like) basin take a code from the right
    /// one. Decided by the training loss only, never by ground truth. Empty disables it.
    /// Measured with the BMM warm start at learning rate 1e-3 (5 seeds, `--set
    /// codeSearchIterations=4000,6000`): drink 0.51 -> 0.50, pickup 2.09 -> 2.07, yoga 1.78 -> 1.65%
    /// (yoga seed 2: 2.28 -> 1.67%, its loss 0.028 -> 0.022); about 0.35 s per search on drink.
    public var codeSearchIterations: [Int] = []
    /// Start from another method's solution (``PAULWarmStart``, ``PAULInit``); not in the source.
    /// Default BMM: from a random start, blocks of pickup frames settle in a mirror-like basin
    /// (25-35% normalized error over seeds 0-2) and one yoga seed in three fails (110%); from BMM's
    /// shapes all of pickup, yoga and drink train to a lower loss and 0.4-2.4% error. The choice
    /// is made without ground truth (BMM sees the 2D tracks only).
    public var warmStart: PAULWarmStart = .bmm
    /// Adam steps of the supervised pre-fit to the warm start's canonical shapes.
    public var warmStartIterations = 1000
    /// Frames per Adam step of the warm start's pre-fit; `nil` (default) uses every frame each
    /// step. Meant as a saving: the full-batch pre-fit's cost grows with the number of frames (on
    /// drink, 1102 frames, it is about 40% of a run). Measured, 5 seeds, single-threaded runs:
    /// with 128 frames per step the pre-fit under-fits the teacher and the errors grow (drink
    /// 0.77 ± 0.26 vs 0.51 ± 0.13%, pickup 2.12 ± 0.30 vs 2.09 ± 0.14%, yoga 2.02 ± 0.56 vs
    /// 1.78 ± 0.41%, 28-36 s per run vs 33-50 s); spending the saving on 10000 training steps
    /// (`iterations=10000`) gave drink 0.58, pickup 1.96, yoga 1.96%. So it stays off.
    public var warmStartBatchSize: Int? = nil
    /// Also train from the random start and keep whichever run ends at the lower training loss
    /// (twice the cost; `progress` then reports both runs).
    public var warmStartCompareRandom = false
    public var seed: UInt64 = 0
    /// Lifting mode (card §5-6): the codes come from a 2D→3D encoder, φ = h(W, M)
    /// (``PAULLifter``), instead of free per-frame variables, so unseen frames can be lifted with
    /// ``PAUL/lift(model:points2D:visibility:)``. The source uses h on long sequences and for
    /// lifting; code search does not apply (there are no free codes).
    public var lifting = false
    /// Width of h's hidden layers. Martinez et al.'s fully connected residual network uses 1024;
    /// the smaller default trains in minutes on a CPU (h's size is not given by the source).
    public var lifterWidth = 256
    /// Number of residual blocks of h (Martinez et al. use 2).
    public var lifterBlocks = 2
    /// Frames per Adam step, drawn without replacement from a seeded shuffle; `nil` uses every
    /// frame each step. Not stated in the source. 128: on the five benchmark sequences (3 seeds)
    /// it gave the same errors as full batches (drink 0.54 vs 0.52%, pickup 2.02 vs 2.09%, yoga
    /// 1.84 vs 1.89%) at a quarter of the cost on drink (55 s instead of 197 s per run).
    public var batchSize: Int? = 128
    /// Polyak averaging: the returned model's parameters (decoder, encoder, codes or h) are the
    /// mean of their values over the last `averageLastFraction` of the iterations, instead of the
    /// last iterate; 0 disables it. Not in the source: a remedy for the parameter noise that
    /// mini-batches (``batchSize``) leave at the end of training. Costs one running sum per step.
    /// Not measured on the benchmark sequences: the runs there showed a different cause for the
    /// spread between seeds (training losses that differ 2x at the end, i.e. under-training, which
    /// the higher ``learningRate`` addressed), not end-of-training noise, so it stays off.
    public var averageLastFraction: Float = 0
    /// Full-batch Adam steps (a fresh optimizer at ``minLearningRate``, every frame in every step)
    /// after the schedule and after any averaging; 0 disables it. Not in the source: removes the
    /// mini-batch noise from the final model. Each step costs about `frames / batchSize` mini-batch
    /// steps. Not measured on the benchmark sequences (see ``averageLastFraction``); off.
    public var polishIterations = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case bottleneck, hiddenWidths, leakySlope, codeWeight, decoderWeightDecay, codeInitStd, iterations,
             learningRate, minLearningRate, useAutoencoderTerm, rigidWarmupIterations, codeSearchIterations,
             warmStart, warmStartIterations, warmStartCompareRandom, seed, lifting, lifterWidth, lifterBlocks, batchSize,
             averageLastFraction, polishIterations, warmStartBatchSize
    }

    /// Decodes with defaults for absent keys, so configs written before a field existed still load.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = PAULConfig()
        bottleneck = try c.decodeIfPresent(Int.self, forKey: .bottleneck) ?? d.bottleneck
        hiddenWidths = try c.decodeIfPresent([Int].self, forKey: .hiddenWidths) ?? d.hiddenWidths
        leakySlope = try c.decodeIfPresent(Float.self, forKey: .leakySlope) ?? d.leakySlope
        codeWeight = try c.decodeIfPresent(Float.self, forKey: .codeWeight) ?? d.codeWeight
        decoderWeightDecay = try c.decodeIfPresent(Float.self, forKey: .decoderWeightDecay) ?? d.decoderWeightDecay
        codeInitStd = try c.decodeIfPresent(Float.self, forKey: .codeInitStd) ?? d.codeInitStd
        iterations = try c.decodeIfPresent(Int.self, forKey: .iterations) ?? d.iterations
        learningRate = try c.decodeIfPresent(Float.self, forKey: .learningRate) ?? d.learningRate
        minLearningRate = try c.decodeIfPresent(Float.self, forKey: .minLearningRate) ?? d.minLearningRate
        useAutoencoderTerm = try c.decodeIfPresent(Bool.self, forKey: .useAutoencoderTerm) ?? d.useAutoencoderTerm
        rigidWarmupIterations = try c.decodeIfPresent(Int.self, forKey: .rigidWarmupIterations) ?? d.rigidWarmupIterations
        codeSearchIterations = try c.decodeIfPresent([Int].self, forKey: .codeSearchIterations) ?? d.codeSearchIterations
        warmStart = try c.decodeIfPresent(PAULWarmStart.self, forKey: .warmStart) ?? d.warmStart
        warmStartIterations = try c.decodeIfPresent(Int.self, forKey: .warmStartIterations) ?? d.warmStartIterations
        warmStartCompareRandom = try c.decodeIfPresent(Bool.self, forKey: .warmStartCompareRandom) ?? d.warmStartCompareRandom
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
        lifting = try c.decodeIfPresent(Bool.self, forKey: .lifting) ?? d.lifting
        lifterWidth = try c.decodeIfPresent(Int.self, forKey: .lifterWidth) ?? d.lifterWidth
        lifterBlocks = try c.decodeIfPresent(Int.self, forKey: .lifterBlocks) ?? d.lifterBlocks
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? d.batchSize
        averageLastFraction = try c.decodeIfPresent(Float.self, forKey: .averageLastFraction) ?? d.averageLastFraction
        polishIterations = try c.decodeIfPresent(Int.self, forKey: .polishIterations) ?? d.polishIterations
        warmStartBatchSize = try c.decodeIfPresent(Int.self, forKey: .warmStartBatchSize) ?? d.warmStartBatchSize
    }
}

/// One residual block of ``PAULLifter``: `x + act(L₂(act(L₁(x))))` (Martinez et al.'s block
/// without batch normalisation and dropout, which the full-batch, small-data setting does not need).
public final class PAULResidualBlock: Module {
    public let first: Linear
    public let second: Linear
    public let slope: Float

    public init(width: Int, slope: Float, rng: inout RandomGenerator) {
        first = Linear(width, width, rng: &rng)
        second = Linear(width, width, rng: &rng)
        self.slope = slope
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        x + second(first(x).leakyRelu(slope)).leakyRelu(slope)
    }
}

/// The 2D→3D encoder h of PAUL's lifting mode (card §3, "2D→3D encoder"): a fully connected
/// residual network in the spirit of Martinez et al. The input is the normalised 2D points
/// (visible-centred, hidden rows zero) flattened with the visibility mask concatenated, `3P`
/// values; a linear layer to `lifterWidth`, `lifterBlocks` residual blocks, and a linear layer to
/// the bottleneck K.
public final class PAULLifter: Module {
    public let input: Linear
    public let blocks: [PAULResidualBlock]
    public let output: Linear
    public let points: Int
    public let slope: Float

    public init(points: Int, config: PAULConfig, rng: inout RandomGenerator) {
        precondition(config.lifterWidth > 0 && config.lifterBlocks >= 0,
                     "PAULLifter: lifterWidth must be positive and lifterBlocks non-negative, got \(config.lifterWidth), \(config.lifterBlocks)")
        self.points = points
        slope = config.leakySlope
        input = Linear(3 * points, config.lifterWidth, rng: &rng)
        var blocks: [PAULResidualBlock] = []
        for _ in 0..<config.lifterBlocks { blocks.append(PAULResidualBlock(width: config.lifterWidth, slope: config.leakySlope, rng: &rng)) }
        self.blocks = blocks
        output = Linear(config.lifterWidth, config.bottleneck, rng: &rng)
    }

    /// h on prepared input `[N, 3P]` (see ``features(points:mask:)``).
    public override func callAsFunction(_ x: Tensor) -> Tensor {
        var y = input(x).leakyRelu(slope)
        for block in blocks { y = block(y) }
        return output(y)
    }

    /// φ = h(W̃, M) for normalised points `[N, P, 2]` (hidden rows zero) and a mask `[N, P]` or `nil`.
    public func callAsFunction(points w: Tensor, mask: Tensor?) -> Tensor { self(Self.features(points: w, mask: mask)) }

    /// h's input: the points flattened, `[N, 2P]`, followed by the mask `[N, P]` (ones without one).
    public static func features(points w: Tensor, mask: Tensor?) -> Tensor {
        let n = w.shape[0], p = w.shape[1]
        return Tensor.concat([w.reshaped([n, 2 * p]), mask ?? Tensor.ones([n, p])], axis: 1)
    }
}

/// PAUL's networks: encoder f_e, decoder f_d, and either a free code φ per frame (NRSfM mode) or
/// the 2D→3D encoder h (lifting mode, ``PAULConfig/lifting``).
public final class PAULModel: Module {
    public let encoder: MLP
    public let decoder: MLP
    /// Free per-frame codes `[F, K]` (NRSfM mode). In lifting mode there are none: `[0, K]`, frozen.
    @Parameter public var codes: Tensor
    /// h, present in lifting mode.
    public let lifter: PAULLifter?
    /// The global factor that divided the training 2D points (``NormalizedTracks/scale``), so that
    /// lifting new frames uses the same unit. Saved with the checkpoint.
    @Buffer public var inputScale: Tensor
    public let points: Int
    public let config: PAULConfig

    public init(frames: Int, points: Int, config: PAULConfig, rng: inout RandomGenerator) {
        self.points = points
        self.config = config
        let slope = config.leakySlope
        let act: (Tensor) -> Tensor = { $0.leakyRelu(slope) }
        encoder = MLP(widths: [3 * points] + config.hiddenWidths + [config.bottleneck], activation: act, rng: &rng)
        decoder = MLP(widths: [config.bottleneck] + config.hiddenWidths.reversed() + [3 * points], activation: act, rng: &rng)
        if config.lifting {
            codes = Tensor.zeros([0, config.bottleneck])
            lifter = PAULLifter(points: points, config: config, rng: &rng)
        } else {
            codes = rng.normal([frames, config.bottleneck], std: config.codeInitStd)
            lifter = nil
        }
        inputScale = Tensor([1])
        super.init()
        if config.lifting { $codes.isTrainable = false }
    }

    /// f_d(φ) as shapes [N, P, 3].
    public func decode(_ phi: Tensor) -> Tensor { decoder(phi).reshaped([phi.shape[0], points, 3]) }

    /// f_d∘f_e(S) for shapes [N, P, 3].
    public func autoencode(_ s: Tensor) -> Tensor { decode(encoder(s.reshaped([s.shape[0], 3 * points]))) }
}

public enum PAUL {
    /// Per-frame losses of Eq. 2.7 with the lower level (Eqs. 2.9-2.10, ``PAULSolver``)
    /// substituted, averaged over frames. `w` is [N, P, 2], centred (with a mask: centred on the
    /// visible points, hidden rows zero, ``ObjectCentric/centered(_:mask:)``).
    ///
    /// With a mask `[N, P]` (Sec. 2.4.3): both shapes are adaptively normalised (Eq. 2.11 with the
    /// 1/P̃ factor, ``ObjectCentric/normalizedRows(_:mask:)``), the lower level fits the camera on
    /// the visible points only (Eq. 2.13), and the camera-frame shape is `S̃_cam` of Eq. 2.14 in
    /// this reading: visible points keep their observed x, y with the solved depth; hidden points
    /// are the free variables S'_cam, set to their least-squares value given R*, which is the
    /// decoders' prediction rotated into the camera frame, `R* (Ã_i + B̃_i)/2` (the printed
    /// Eq. 2.14 would give visible points zero depth, presumably a typo). The losses are Eq. 2.15.
    public static func loss(model: PAULModel, w: Tensor, codes: Tensor, config: PAULConfig,
                            mask: Tensor? = nil) throws -> (total: Tensor, camera: PAULSolver.Solution) {
        var b = model.decode(codes)                                               // f_d(φ)
        var a = config.useAutoencoderTerm ? model.autoencode(b) : b               // f_d∘f_e∘f_d(φ)
        if let mask {                                                             // Eq. 2.11: S̃
            b = ObjectCentric.normalizedRows(b, mask: mask)
            a = config.useAutoencoderTerm ? ObjectCentric.normalizedRows(a, mask: mask) : b
        }
        let cam = try PAULSolver.solve(points2D: w, shapes: config.useAutoencoderTerm ? [a, b] : [b], mask: mask)
        // Rows: camera = canonical · Rᵀ, so canonical = [W; z*ᵀ]ᵀ · R.
        let canon = cam.cameraShape.matmul(cam.rotation)
        var perFrame = (b - canon).norm(axes: [1, 2])                             // L_recon.AD (Frobenius, not squared)
        if config.useAutoencoderTerm { perFrame = perFrame + (a - canon).norm(axes: [1, 2]) }  // L_recon.AE
        perFrame = perFrame + config.codeWeight * codes.square().sum(axes: [1])   // 0.01‖φ‖² of L_reg (Eq. 2.12)
        return (perFrame.mean(), cam)
    }

    /// Per-frame PAUL loss of frame `i` explained by the shapes of code `j`, for every pair:
    /// [N_frames, N_codes]. No gradients.
    /// With a mask, frame i's visibility applies to every code's shapes (as in ``loss(model:w:codes:config:mask:)``).
    public static func pairwiseLoss(model: PAULModel, w: Tensor, codes: Tensor, config: PAULConfig,
                                    mask: Tensor? = nil) throws -> Tensor {
        try GradMode.withoutGrad {
            let n = w.shape[0], m = codes.shape[0], p = w.shape[1]
            let b0 = model.decode(codes)
            let a0 = config.useAutoencoderTerm ? model.autoencode(b0) : b0
            let reg = (codes.square().sum(axes: [1]) * config.codeWeight).scalars
            var out = [Float](repeating: 0, count: n * m)
            for i in 0..<n {
                let wi = w.narrow(axis: 0, start: i, length: 1).broadcastRaw(to: [m, p, 2])
                var a = a0, b = b0, mi: Tensor? = nil
                if let mask {
                    let frameMask = mask.narrow(axis: 0, start: i, length: 1).broadcastRaw(to: [m, p])
                    b = ObjectCentric.normalizedRows(b0, mask: frameMask)
                    a = config.useAutoencoderTerm ? ObjectCentric.normalizedRows(a0, mask: frameMask) : b
                    mi = frameMask
                }
                let cam = try PAULSolver.solve(points2D: wi, shapes: config.useAutoencoderTerm ? [a, b] : [b], mask: mi)
                let canon = cam.cameraShape.matmul(cam.rotation)
                var l = (b - canon).norm(axes: [1, 2])
                if config.useAutoencoderTerm { l = l + (a - canon).norm(axes: [1, 2]) }
                let lv = l.scalars
                for j in 0..<m { out[i * m + j] = lv[j] + reg[j] }
            }
            return Tensor(out, shape: [n, m])
        }
    }

    /// Code search: each frame takes the code (among all frames' current codes) that gives it
    /// the lowest loss, when that beats its own. Returns the new codes and how many frames moved.
    public static func searchCodes(model: PAULModel, w: Tensor, config: PAULConfig,
                                   mask: Tensor? = nil) throws -> (codes: Tensor, moved: Int) {
        let codes = model.codes.detached()
        let n = codes.shape[0], k = codes.shape[1]
        let pair = try pairwiseLoss(model: model, w: w, codes: codes, config: config, mask: mask).scalars
        var out = codes.scalars
        let src = codes.scalars
        var moved = 0
        for i in 0..<n {
            var best = i
            for j in 0..<n where pair[i * n + j] < pair[i * n + best] { best = j }
            // Only move on a clear improvement, so fitting frames keep their own codes.
            if best != i && pair[i * n + best] < 0.9 * pair[i * n + i] {
                for c in 0..<k { out[i * k + c] = src[best * k + c] }
                moved += 1
            }
        }
        return (Tensor(out, shape: [n, k]), moved)
    }
}
