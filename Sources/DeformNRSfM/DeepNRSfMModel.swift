import DeformGeometry
import DeformNN
import DeformTensor
import Foundation

/// One level l of the hierarchical block-sparse code (Eq. 3.18): the dictionary D_l shared by
/// the encoder (Eq. 3.24) and the decoder (Eq. 3.25), the encoder's per-block threshold and the
/// decoder's bias.
public final class DeepNRSfMLevel: Module {
    /// D_1: `[3P, K_1]`, row `3i + r` holding coordinate r of point i (D♯ is its `[P, 3K_1]`
    /// reshape). D_l for l ≥ 2: `[K_{l-1}, K_l]`.
    @Parameter public var dictionary: Tensor
    /// λ_l, one per block (BST, Eq. 3.24), or Deep NRSfM's per-block bias b in `ReLU(x - b)`: `[K_l]`.
    @Parameter public var threshold: Tensor
    /// Decoder bias b_l of `φ_{l-1} = ReLU(D_l φ_l + b_l)` (Eq. 3.25), `[K_{l-1}]`; none at level 1
    /// (`S = D_1 φ_1`).
    @Parameter public var bias: Tensor?

    init(dictionary: Tensor, threshold: Tensor, bias: Tensor?) {
        self.dictionary = dictionary
        self.threshold = threshold
        self.bias = bias
    }
}

/// The Deep NRSfM++ network (Fig. 3.1): normalised 2D input → block-sparse encoder (Eq. 3.24) →
/// camera and last code (``DeepNRSfM/cameraAndCode(_:weights:)``) → decoder (Eq. 3.25) → 3D shape.
///
/// Block codes are stored as `[N, a, 3, K]` (entry `[n, c, r, k]` = row r, column c of block k),
/// so that every level is one GEMM against D_l and every block is strided over the first two axes.
public final class DeepNRSfMModel: Module {
    public let config: DeepNRSfMConfig
    /// Number of points P.
    public let points: Int
    public let levels: [DeepNRSfMLevel]
    /// c of the camera estimate `M = Σ_k c_k Π_k` (``DeepNRSfM/cameraAndCode(_:weights:)``), `[K_L]`.
    @Parameter public var cameraWeights: Tensor
    /// The global factor that sets the network's unit (so lifting new points uses the same unit),
    /// saved with the checkpoint: orthographic, it divided the training 2D points; perspective, it
    /// divided every frame's bounding-box depth t_z (1 in checkpoints written before it existed).
    @Buffer public var inputScale: Tensor

    /// Block width a: 2 (orthographic) or 3 (perspective), Eq. 3.19.
    public var blockColumns: Int { config.camera == .orthographic ? 2 : 3 }

    /// A freshly initialised network for P points. The source does not state the initialisation;
    /// dictionaries are Glorot-normal, thresholds `config.thresholdInit`, biases 0, and the camera
    /// weights all `1/K_L`.
    public init(points: Int, config: DeepNRSfMConfig) {
        precondition(points >= 3, "DeepNRSfMModel: needs at least 3 points, got \(points)")
        precondition(!config.dictionarySizes.isEmpty && config.dictionarySizes.allSatisfy { $0 > 0 },
                     "DeepNRSfMModel: dictionary sizes must be positive, got \(config.dictionarySizes)")
        self.config = config
        self.points = points
        var rng = RandomGenerator(seed: config.seed)
        let sizes = config.dictionarySizes
        var levels: [DeepNRSfMLevel] = []
        for (l, k) in sizes.enumerated() {
            let rows = l == 0 ? 3 * points : sizes[l - 1]
            let std = (2 / Float(rows + k)).squareRoot()
            levels.append(DeepNRSfMLevel(dictionary: rng.normal([rows, k], std: std),
                                         threshold: Tensor.full([k], config.thresholdInit),
                                         bias: l == 0 ? nil : Tensor.zeros([rows])))
        }
        self.levels = levels
        cameraWeights = Tensor.full([sizes.last!], 1 / Float(sizes.last!))
        inputScale = Tensor([1])
    }

    func nonlinearity(_ x: Tensor, _ level: DeepNRSfMLevel) -> Tensor {
        switch config.nonlinearity {
        case .bst:
            return DeepNRSfM.blockSoftThreshold(x, thresholds: config.nonNegativeThresholds ? level.threshold.relu() : level.threshold)
        case .relu: return (x - level.threshold).relu()
        }
    }

    /// Encoder, Eq. 3.24. `x` is `D̃_1ᵀ M W̃` before the dictionary: the `[N, P, a]` per-point
    /// input whose product with D♯ᵀ gives the first level (see ``DeepNRSfMData``).
    /// - Returns: the last block code `[N, a, 3, K_L]`.
    public func encode(_ x: Tensor) -> Tensor {
        let n = x.shape[0], a = blockColumns
        precondition(x.rank == 3 && x.shape[1] == points && x.shape[2] == a,
                     "DeepNRSfMModel.encode: expected [N, \(points), \(a)], found \(x.shape)")
        let k1 = levels[0].dictionary.shape[1]
        var psi = x.transposed(1, 2).matmul(levels[0].dictionary.reshaped([points, 3 * k1])).reshaped([n, 3 * a, k1])
        psi = nonlinearity(psi, levels[0])
        for level in levels.dropFirst() {
            psi = nonlinearity(psi.matmul(level.dictionary), level)       // (D_l ⊗ I_3)ᵀ Ψ_{l-1}
        }
        return psi.reshaped([n, a, 3, psi.shape[2]])
    }

    /// Decoder, Eq. 3.25: the canonical shapes `[N, P, 3]` of the last codes `[N, K_L]`.
    public func decode(_ code: Tensor) -> Tensor {
        var phi = code
        for level in levels.dropFirst().reversed() {
            phi = linear(phi, weight: level.dictionary, bias: level.bias).relu()
        }
        return linear(phi, weight: levels[0].dictionary).reshaped([code.shape[0], points, 3])
    }

    /// Encoder, camera/code factorisation and decoder on a prepared input.
    /// - Returns: canonical shapes `[N, P, 3]`, rotations `[N, 3, 3]` (camera = R · canonical),
    ///   last codes `[N, K_L]`.
    public func callAsFunction(input x: Tensor) throws -> (shapes: Tensor, rotations: Tensor, codes: Tensor) {
        let (rotation, code) = try DeepNRSfM.cameraAndCode(encode(x), weights: cameraWeights)
        return (decode(code), rotation, code)
    }
}

// MARK: - Checkpoints

extension DeepNRSfMModel {
    /// Metadata stored with ``save(to:)``: the method name, the point count and the resolved
    /// config as JSON, everything ``load(from:)`` needs to rebuild the network.
    public var checkpointMetadata: [String: String] {
        let json = (try? JSONEncoder().encode(config)).flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
        return ["method": method.rawValue, "points": "\(points)", "config": json]
    }

    /// Writes the weights (dictionaries, thresholds, biases, camera weights, input scale) as
    /// `.safetensors` with ``checkpointMetadata``.
    public func save(to url: URL) throws {
        try saveCheckpoint(self, to: url, metadata: checkpointMetadata)
    }

    /// Rebuilds a network saved by ``save(to:)``.
    /// - Throws: ``CheckpointError`` / decoding errors naming the file when it is not such a checkpoint.
    public static func load(from url: URL) throws -> DeepNRSfMModel {
        let (tensors, metadata) = try readSafetensors(url)
        guard let json = metadata["config"], let points = metadata["points"].flatMap(Int.init), points >= 3,
              let config = try? JSONDecoder().decode(DeepNRSfMConfig.self, from: Data(json.utf8)) else {
            throw TensorError.invalidArgument(op: "DeepNRSfMModel.load",
                                              message: "\(url.path): not a Deep NRSfM checkpoint (metadata 'points' and 'config' missing or invalid)")
        }
        let model = DeepNRSfMModel(points: points, config: config)
        try applyState(tensors, to: model, file: url.path)
        return model
    }
}
