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
        return fusedNormalize(x, n: n, c: channels, s: x.count / Swift.max(n * channels, 1), pooling: .perSample(groups: groups),
                              weight: weight, bias: bias, eps: eps, name: "groupNorm").y
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
        if isTraining || runningMean == nil {
            let n = x.count / channels
            if isTraining && n <= 1 {
                fail(.invalidArgument(op: "\(type(of: self))", message: "expected more than 1 value per channel when training, got input \(x.shape)"))
            }
            let (y, mean, variance) = fusedNormalize(x, n: x.shape[0], c: channels, s: n / Swift.max(x.shape[0], 1),
                                                     pooling: .perChannel, weight: weight, bias: bias, eps: eps, name: "batchNorm")
            if isTraining, let rm = runningMean, let rv = runningVar {
                let m = momentum
                let unbias = Float(n) / Float(Swift.max(n - 1, 1))
                runningMean = GradMode.withoutGrad { rm * (1 - m) + Tensor(mean) * m }
                runningVar = GradMode.withoutGrad { rv * (1 - m) + Tensor(variance) * (m * unbias) }
            }
            return y
        }
        let cs = channelShape(channels, rank: x.rank)
        var y = (x - runningMean!.reshaped(cs)) / (runningVar!.reshaped(cs) + eps).sqrt()
        if let weight { y = y * weight.reshaped(cs) }
        if let bias { y = y + bias.reshaped(cs) }
        return y
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
        let d = shapeCount(normalizedShape)
        let rows = x.count / Swift.max(d, 1)
        return fusedNormalize(x, n: rows, c: d, s: 1, pooling: .perSample(groups: 1), weight: weight, bias: bias,
                              eps: eps, name: "layerNorm").y
    }
}

// MARK: - Fused kernel

/// How statistics are pooled over an `[N, C, S]` view of the input.
enum NormPooling {
    /// One mean/variance per sample and group of `C / groups` consecutive channels (GroupNorm;
    /// LayerNorm is `groups: 1` with the normalised block as channels).
    case perSample(groups: Int)
    /// One mean/variance per channel over all samples and positions (BatchNorm in training).
    case perChannel
}

/// `y = (x - μ) / √(σ² + ε) · w_c + b_c` over an `[n, c, s]` view with biased variance, fused
/// into two passes forward and two backward, so a normalisation layer costs about as much as a
/// few elementwise ops instead of a dozen recorded ones. Returns `y` (shaped like `x`) and the
/// per-pool means and biased variances (pool order: `n·groups + g`, or channel).
///
/// The backward is the usual one for normalisation with batch statistics: with
/// `x̂ = (x - μ)·r`, `ĝ = g·w_c` and means over the pool, `dx = r (ĝ - mean(ĝ) - x̂ mean(ĝ x̂))`,
/// `dw_c = Σ g x̂`, `db_c = Σ g`.
func fusedNormalize(_ x: Tensor, n: Int, c: Int, s: Int, pooling: NormPooling, weight: Tensor?, bias: Tensor?,
                    eps: Float, name: String) -> (y: Tensor, mean: [Float], variance: [Float]) {
    precondition(n * c * s == x.count)
    let pools: Int, poolSegments: Int
    switch pooling {
    case .perSample(let groups): pools = n * groups; poolSegments = c / groups
    case .perChannel: pools = c; poolSegments = n
    }
    let m = poolSegments * s
    // Segment j of pool k: its flat offset, channel, and (sample, channel) index.
    @inline(__always) func segment(_ k: Int, _ j: Int) -> (offset: Int, channel: Int, index: Int) {
        switch pooling {
        case .perSample(let groups):
            let ch = (k % groups) * poolSegments + j
            let index = (k / groups) * c + ch
            return (index * s, ch, index)
        case .perChannel:
            let index = j * c + k
            return (index * s, k, index)
        }
    }
    var means = [Float](repeating: 0, count: pools), rstds = [Float](repeating: 0, count: pools)
    var variances = [Float](repeating: 0, count: pools)
    let y = Tensor(uninitializedShape: x.shape)
    let px = x.dataPointer, py = y.dataPointer
    let pw = weight?.dataPointer, pb = bias?.dataPointer
    let minChunk = Swift.max(1, (1 << 15) / Swift.max(m, 1))
    means.withUnsafeMutableBufferPointer { pm in
        rstds.withUnsafeMutableBufferPointer { pr in
            variances.withUnsafeMutableBufferPointer { pv in
                Threads.parallelRanges(pools, minChunk: minChunk) { range in
                    for k in range {
                        var sum = 0.0
                        for j in 0..<poolSegments {
                            let base = px + segment(k, j).offset
                            var acc: Float = 0
                            for i in 0..<s { acc += base[i] }
                            sum += Double(acc)
                        }
                        let mean = m > 0 ? Float(sum / Double(m)) : 0
                        var sq = 0.0
                        for j in 0..<poolSegments {
                            let base = px + segment(k, j).offset
                            var acc: Float = 0
                            for i in 0..<s { let d = base[i] - mean; acc += d * d }
                            sq += Double(acc)
                        }
                        let variance = m > 0 ? Float(sq / Double(m)) : 0
                        let rstd = 1 / (variance + eps).squareRoot()
                        pm[k] = mean; pr[k] = rstd; pv[k] = variance
                        for j in 0..<poolSegments {
                            let (off, ch, _) = segment(k, j)
                            let a = rstd * (pw?[ch] ?? 1)
                            let shift = (pb?[ch] ?? 0) - mean * a
                            let src = px + off, dst = py + off
                            for i in 0..<s { dst[i] = src[i] * a + shift }
                        }
                    }
                }
            }
        }
    }
    let inputs = [x] + (weight.map { [$0] } ?? []) + (bias.map { [$0] } ?? [])
    guard GradMode.isEnabled, inputs.contains(where: { $0.isTracked }) else { return (y, means, variances) }
    let xd = x.detached(), wd = weight?.detached()
    let needW = weight?.isTracked ?? false, needB = bias?.isTracked ?? false
    let hasW = weight != nil, hasB = bias != nil
    let wShape = weight?.shape ?? [], bShape = bias?.shape ?? []
    let meansC = means, rstdsC = rstds
    let out = Tensor.record(name, output: y, inputs: inputs) { g in
        let gx = Tensor(uninitializedShape: xd.shape)
        // Per-(sample, channel) partial sums for dw and db; each belongs to exactly one pool.
        var dwPart = [Float](repeating: 0, count: n * c), dbPart = [Float](repeating: 0, count: n * c)
        let px = xd.dataPointer, pg = g.dataPointer, pgx = gx.dataPointer, pw = wd?.dataPointer
        dwPart.withUnsafeMutableBufferPointer { dwp in
            dbPart.withUnsafeMutableBufferPointer { dbp in
                Threads.parallelRanges(pools, minChunk: minChunk) { range in
                    for k in range {
                        let mean = meansC[k], rstd = rstdsC[k]
                        var sumG = 0.0, sumGX = 0.0
                        for j in 0..<poolSegments {
                            let (off, ch, seg) = segment(k, j)
                            let w = pw?[ch] ?? 1
                            let xs = px + off, gs = pg + off
                            var a: Float = 0, b: Float = 0
                            for i in 0..<s {
                                let xh = (xs[i] - mean) * rstd
                                a += gs[i]
                                b += gs[i] * xh
                            }
                            dwp[seg] = b; dbp[seg] = a
                            sumG += Double(a * w); sumGX += Double(b * w)
                        }
                        let meanG = m > 0 ? Float(sumG / Double(m)) : 0, meanGX = m > 0 ? Float(sumGX / Double(m)) : 0
                        for j in 0..<poolSegments {
                            let (off, ch, _) = segment(k, j)
                            let w = pw?[ch] ?? 1
                            let xs = px + off, gs = pg + off, dst = pgx + off
                            for i in 0..<s {
                                let xh = (xs[i] - mean) * rstd
                                dst[i] = rstd * (gs[i] * w - meanG - xh * meanGX)
                            }
                        }
                    }
                }
            }
        }
        func channelSums(_ part: [Float]) -> Tensor {
            let t = Tensor.zeros([c])
            let p = t.dataPointer
            for ni in 0..<n { for ch in 0..<c { p[ch] += part[ni * c + ch] } }
            return t
        }
        var grads: [Tensor?] = [gx]
        if hasW { grads.append(needW ? channelSums(dwPart).reshaped(wShape) : nil) }
        if hasB { grads.append(needB ? channelSums(dbPart).reshaped(bShape) : nil) }
        return grads
    }
    return (out, means, variances)
}
