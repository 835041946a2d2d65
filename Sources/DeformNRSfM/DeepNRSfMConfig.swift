import Foundation

/// Hyper-parameters of Deep NRSfM++ (thesis ch. 3) and of its ReLU variant (Deep NRSfM, Kong &
/// Lucey 2019, as re-implemented for Table 3.2).
///
/// The architecture defaults are the paper's. The optimiser defaults are not: the paper trains for
/// 400k-1.2M mini-batch iterations at learning rate 1e-4 on a GPU (Supp. II), which is days on two
/// CPU cores; the defaults here are a short full-batch schedule with a larger learning rate that
/// converges on the benchmark sequences in about a minute. The paper's values are given next to each.
public struct DeepNRSfMConfig: Codable, Sendable {
    /// Encoder non-linearity.
    public enum Nonlinearity: String, Codable, Sendable {
        /// Block soft thresholding of the 3×a blocks, one learned threshold per block (Eqs. 3.22-3.24).
        case bst
        /// Deep NRSfM: elementwise `ReLU(x - b)` with one learned bias per block (the relaxation
        /// to non-negative L1 sparsity criticised in Sec. 3.4.1's remark; Table 3.2 "ReLU").
        case relu
    }

    /// Camera model of the bilinear factorisation (Table 3.1).
    public enum CameraModel: String, Codable, Sendable {
        /// Orthographic, 3×2 blocks (Eq. 3.15); inputs in any unit.
        case orthographic
        /// Perspective, 3×3 blocks (Eqs. 3.11, 3.14); inputs must be normalised image coordinates
        /// (points on the unit focal plane).
        case perspective
    }

    /// BST (Deep NRSfM++) or ReLU (Deep NRSfM), Sec. 3.4.2.
    public var nonlinearity: Nonlinearity = .bst
    public var camera: CameraModel = .orthographic
    /// Dictionary sizes K_1 ... K_L (Table 3.9). Default: the CMU-Mocap row (K_L = 8, "reasonable
    /// across all evaluated tasks", Sec. 3.5); the benchmark sequences (drink, pickup, yoga) are
    /// CMU motion capture. The paper's short-sequence row (NRSfM Challenge, also H3.6M),
    /// `[125, 115, 104, 94, 83, 73, 62, 52, 41, 31, 20, 10]`, is 1.5x cheaper per step but trained
    /// to a 3x higher loss on yoga with a wrong, depth-stretched reconstruction (see the report in
    /// ``DeepNRSfM``).
    public var dictionarySizes = [512, 256, 128, 64, 32, 16, 8]
    /// Adam iterations (paper: 400k-1.2M, Supp. II).
    public var iterations = 3000
    /// Samples per iteration, drawn without replacement, reshuffled every epoch (paper: 128,
    /// Supp. II); `nil` = the whole sequence every step.
    public var batchSize: Int? = 128
    /// Adam learning rate (paper: 1e-4, Supp. II; 20x larger here for the 100x shorter schedule).
    public var learningRate: Float = 2e-3
    /// The learning rate is multiplied by `learningRateDecay` every `decayEvery` iterations,
    /// smoothly (paper: "linear decay rate 0.95 per 50k iterations", read as exponential decay).
    /// `decayEvery = nil` (default) spreads the decay over the whole schedule: the rate ends at
    /// 1% of its initial value.
    public var learningRateDecay: Float = 0.01
    public var decayEvery: Int? = nil
    /// Initial value of every encoder threshold λ_l (BST) or bias b_l (ReLU). Not stated in the
    /// source; small, so the first steps are close to one ISTA step without shrinkage (must be
    /// positive with ``nonNegativeThresholds``, where a zero threshold gets no gradient).
    public var thresholdInit: Float = 0.01
    /// BST only: use `max(λ_l, 0)`, as the proximal operator of `λ‖·‖` requires (Eq. 3.21); the
    /// source does not say whether the learned thresholds are constrained. Unconstrained, about a
    /// sixth of them went negative in training (blocks expanded instead of shrunk), for the same
    /// accuracy.
    public var nonNegativeThresholds = true
    /// Perspective only: rounds of scale correction (Sec. 3.5). Each round re-estimates every
    /// frame's depth t_z from the Frobenius norm of its reconstructed shape (so all shapes get the
    /// sequence's mean size) and trains again from the current network for
    /// `scaleCorrectionIterations` iterations. The paper reports 2 rounds on H3.6M; it is optional.
    public var scaleCorrectionRounds = 0
    public var scaleCorrectionIterations = 1000
    /// Perspective only: iterations of an orthographic network trained first on the same 2D points,
    /// whose weights (or their depth mirror, whichever has the lower perspective loss) start the
    /// perspective training; 0 trains the perspective network from its random initialisation.
    /// Not in the paper (see ``DeepNRSfM/warmStartFromOrthographic``). On the benchmark sequences
    /// under the `persp` protocol it took pickup from 8.4% to 3.1% and yoga from 12.4% to 2.6%;
    /// with 1000 iterations pickup only reached 6.0% (the orthographic shapes were not yet good
    /// enough to tell the mirror apart on every frame).
    public var orthographicWarmStart = 3000
    public var seed: UInt64 = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case nonlinearity, camera, dictionarySizes, iterations, batchSize, learningRate, learningRateDecay, decayEvery,
             thresholdInit, nonNegativeThresholds, scaleCorrectionRounds, scaleCorrectionIterations,
             orthographicWarmStart, seed
    }

    /// Decodes with defaults for absent keys, so configs written before a field existed still load.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = DeepNRSfMConfig()
        nonlinearity = try c.decodeIfPresent(Nonlinearity.self, forKey: .nonlinearity) ?? d.nonlinearity
        camera = try c.decodeIfPresent(CameraModel.self, forKey: .camera) ?? d.camera
        dictionarySizes = try c.decodeIfPresent([Int].self, forKey: .dictionarySizes) ?? d.dictionarySizes
        iterations = try c.decodeIfPresent(Int.self, forKey: .iterations) ?? d.iterations
        batchSize = c.contains(.batchSize) ? try c.decodeIfPresent(Int.self, forKey: .batchSize) : d.batchSize
        learningRate = try c.decodeIfPresent(Float.self, forKey: .learningRate) ?? d.learningRate
        learningRateDecay = try c.decodeIfPresent(Float.self, forKey: .learningRateDecay) ?? d.learningRateDecay
        decayEvery = try c.decodeIfPresent(Int.self, forKey: .decayEvery)
        thresholdInit = try c.decodeIfPresent(Float.self, forKey: .thresholdInit) ?? d.thresholdInit
        nonNegativeThresholds = try c.decodeIfPresent(Bool.self, forKey: .nonNegativeThresholds) ?? d.nonNegativeThresholds
        scaleCorrectionRounds = try c.decodeIfPresent(Int.self, forKey: .scaleCorrectionRounds) ?? d.scaleCorrectionRounds
        scaleCorrectionIterations = try c.decodeIfPresent(Int.self, forKey: .scaleCorrectionIterations) ?? d.scaleCorrectionIterations
        orthographicWarmStart = try c.decodeIfPresent(Int.self, forKey: .orthographicWarmStart) ?? d.orthographicWarmStart
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
    }

    /// Deep NRSfM (the ReLU variant) with otherwise the same settings.
    public static var reluVariant: DeepNRSfMConfig {
        var c = DeepNRSfMConfig()
        c.nonlinearity = .relu
        return c
    }
}
