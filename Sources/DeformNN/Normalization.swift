import DeformTensor

/// Shape `[1, C, 1, ...]` that broadcasts a per-channel vector over `[N, C, ...]`.
private func channelShape(_ channels: Int, rank: Int) -> [Int] {
    var s = [Int](repeating: 1, count: rank)
    s[1] = channels
    return s
}

/// Group normalisation (Wu & He, 2018) over `[N, C, ...]`: channels are split into `groups`;
/// each sample's group is normalised by its own mean and (biased) variance, then a per-channel
/// affine map is applied. Matches PyTorch's `nn.GroupNorm` (weight 1, bias 0, eps 1e-5).
public final class GroupNorm: Module {
    @Parameter public var weight: Tensor? = nil
    @Parameter public var bias: Tensor? = nil
    public let groups: Int
    public let channels: Int
    public let eps: Float

    public init(groups: Int, channels: Int, eps: Float = 1e-5, affine: Bool = true) {
        precondition(groups > 0 && channels % groups == 0, "GroupNorm: \(channels) channels do not split into \(groups) groups")
        self.groups = groups
        self.channels = channels
        self.eps = eps
        super.init()
        if affine {
            weight = .ones([channels])
            bias = .zeros([channels])
        }
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        guard x.rank >= 2, x.shape[1] == channels else {
            fail(.shapeMismatch(op: "GroupNorm", expected: "input [N, \(channels), ...]", found: "\(x.shape)"))
        }
        let n = x.shape[0]
        let grouped = x.reshaped([n, groups, -1])
        let mean = grouped.mean(axes: [2], keepDims: true)
        let centered = grouped - mean
        let variance = centered.square().mean(axes: [2], keepDims: true)
        var y = (centered / (variance + eps).sqrt()).reshaped(x.shape)
        let cs = channelShape(channels, rank: x.rank)
        if let weight { y = y * weight.reshaped(cs) }
        if let bias { y = y + bias.reshaped(cs) }
        return y
    }
}

/// Batch normalisation over `[N, C, ...]` (PyTorch's `BatchNorm1d/2d/3d`).
///
/// In training mode it normalises with the batch's mean and biased variance per channel and
/// updates the running statistics with `momentum` (`running = (1 - m) running + m batch`, the
/// variance unbiased by `n/(n-1)` as PyTorch does); in evaluation mode it uses the running
/// statistics. PyTorch's integer `num_batches_tracked` buffer is not kept (it only matters for
/// `momentum = None`).
public class BatchNorm: Module {
    @Parameter public var weight: Tensor? = nil
    @Parameter public var bias: Tensor? = nil
    @Buffer public var runningMean: Tensor? = nil
    @Buffer public var runningVar: Tensor? = nil
    public let channels: Int
    public let momentum: Float
    public let eps: Float
    /// Required input rank (`nil`: any rank >= 2).
    let requiredRank: Set<Int>?

    public init(channels: Int, momentum: Float = 0.1, eps: Float = 1e-5, affine: Bool = true,
                trackRunningStats: Bool = true) {
        self.channels = channels
        self.momentum = momentum
        self.eps = eps
        requiredRank = nil
        super.init()
        setUp(affine: affine, track: trackRunningStats)
    }

    init(channels: Int, momentum: Float, eps: Float, affine: Bool, trackRunningStats: Bool, ranks: Set<Int>) {
        self.channels = channels
        self.momentum = momentum
        self.eps = eps
        requiredRank = ranks
        super.init()
        setUp(affine: affine, track: trackRunningStats)
    }

    private func setUp(affine: Bool, track: Bool) {
        if affine {
            weight = .ones([channels])
            bias = .zeros([channels])
        }
        if track {
            runningMean = .zeros([channels])
            runningVar = .ones([channels])
        }
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        guard x.rank >= 2, x.shape[1] == channels, requiredRank?.contains(x.rank) ?? true else {
            let ranks = requiredRank.map { " of rank \($0.sorted().map(String.init).joined(separator: " or "))" } ?? ""
            fail(.shapeMismatch(op: "\(type(of: self))", expected: "input [N, \(channels), ...]\(ranks)", found: "\(x.shape)"))
        }
        let axes = [0] + Array(2..<x.rank)
        let cs = channelShape(channels, rank: x.rank)
        let y: Tensor
        if isTraining || runningMean == nil {
            let n = x.count / channels
            if isTraining && n <= 1 {
                fail(.invalidArgument(op: "\(type(of: self))", message: "expected more than 1 value per channel when training, got input \(x.shape)"))
            }
            let mean = x.mean(axes: axes, keepDims: true)
            let centered = x - mean
            let variance = centered.square().mean(axes: axes, keepDims: true)
            y = centered / (variance + eps).sqrt()
            if isTraining, let rm = runningMean, let rv = runningVar {
                let m = momentum
                let unbias = Float(n) / Float(Swift.max(n - 1, 1))
                GradMode.withoutGrad {
                    runningMean = rm * (1 - m) + mean.detached().reshaped([channels]) * m
                    runningVar = rv * (1 - m) + variance.detached().reshaped([channels]) * (m * unbias)
                }
            }
        } else {
            let rm = runningMean!.reshaped(cs), rv = runningVar!.reshaped(cs)
            y = (x - rm) / (rv + eps).sqrt()
        }
        var out = y
        if let weight { out = out * weight.reshaped(cs) }
        if let bias { out = out + bias.reshaped(cs) }
        return out
    }
}

/// ``BatchNorm`` for `[N, C]` or `[N, C, L]` inputs.
public final class BatchNorm1d: BatchNorm {
    public override init(channels: Int, momentum: Float = 0.1, eps: Float = 1e-5, affine: Bool = true,
                         trackRunningStats: Bool = true) {
        super.init(channels: channels, momentum: momentum, eps: eps, affine: affine,
                   trackRunningStats: trackRunningStats, ranks: [2, 3])
    }
}

/// ``BatchNorm`` for `[N, C, H, W]` inputs.
public final class BatchNorm2d: BatchNorm {
    public override init(channels: Int, momentum: Float = 0.1, eps: Float = 1e-5, affine: Bool = true,
                         trackRunningStats: Bool = true) {
        super.init(channels: channels, momentum: momentum, eps: eps, affine: affine,
                   trackRunningStats: trackRunningStats, ranks: [4])
    }
}

/// Layer normalisation over the trailing `normalizedShape` dimensions (PyTorch's `nn.LayerNorm`:
/// biased variance, eps 1e-5, elementwise weight 1 and bias 0).
public final class LayerNorm: Module {
    @Parameter public var weight: Tensor? = nil
    @Parameter public var bias: Tensor? = nil
    public let normalizedShape: [Int]
    public let eps: Float

    public init(_ normalizedShape: [Int], eps: Float = 1e-5, elementwiseAffine: Bool = true) {
        precondition(!normalizedShape.isEmpty, "LayerNorm: normalizedShape must not be empty")
        self.normalizedShape = normalizedShape
        self.eps = eps
        super.init()
        if elementwiseAffine {
            weight = .ones(normalizedShape)
            bias = .zeros(normalizedShape)
        }
    }

    public convenience init(_ features: Int, eps: Float = 1e-5, elementwiseAffine: Bool = true) {
        self.init([features], eps: eps, elementwiseAffine: elementwiseAffine)
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        let k = normalizedShape.count
        guard x.rank >= k, Array(x.shape.suffix(k)) == normalizedShape else {
            fail(.shapeMismatch(op: "LayerNorm", expected: "input [..., \(normalizedShape.map(String.init).joined(separator: ", "))]", found: "\(x.shape)"))
        }
        let axes = Array((x.rank - k)..<x.rank)
        let mean = x.mean(axes: axes, keepDims: true)
        let centered = x - mean
        let variance = centered.square().mean(axes: axes, keepDims: true)
        var y = centered / (variance + eps).sqrt()
        if let weight { y = y * weight }
        if let bias { y = y + bias }
        return y
    }
}
