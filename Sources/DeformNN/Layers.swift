import DeformTensor

/// Fully connected layer `y = x Wᵀ + b` over the last dimension (PyTorch's `nn.Linear`; weight
/// `[out, in]` so checkpoints exchange with PyTorch unchanged).
public final class Linear: Module {
    @Parameter public var weight: Tensor
    @Parameter public var bias: Tensor? = nil

    public let inFeatures: Int
    public let outFeatures: Int

    /// Weight and bias `U(-1/√in, 1/√in)`, PyTorch's defaults.
    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, rng: inout RandomGenerator) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.weight = Initializers.pytorchDefault([outFeatures, inFeatures], fanIn: inFeatures, using: &rng)
        super.init()
        if bias { self.bias = Initializers.pytorchDefault([outFeatures], fanIn: inFeatures, using: &rng) }
    }

    /// Wraps given tensors (weight `[out, in]`, bias `[out]`).
    public init(weight: Tensor, bias: Tensor? = nil) {
        precondition(weight.rank == 2, "Linear: weight must be [out, in], got \(weight.shape)")
        inFeatures = weight.shape[1]
        outFeatures = weight.shape[0]
        self.weight = weight
        super.init()
        self.bias = bias
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor { linear(x, weight: weight, bias: bias) }
}

/// A lookup table of `count` vectors of size `dim` (PyTorch's `nn.Embedding`, weight `N(0, 1)`).
public final class Embedding: Module {
    @Parameter public var weight: Tensor

    public init(_ count: Int, _ dim: Int, rng: inout RandomGenerator) {
        self.weight = rng.normal([count, dim])
    }

    public init(weight: Tensor) { self.weight = weight }

    /// Rows for integer-valued `indices` of any shape; the result is `indices.shape + [dim]`.
    public override func callAsFunction(_ indices: Tensor) -> Tensor { embeddingLookup(weight, indices: indices) }

    /// Rows for a list of indices: `[indices.count, dim]`.
    public func callAsFunction(_ indices: [Int]) -> Tensor {
        embeddingLookup(weight, indices: Tensor(indices.map(Float.init), shape: [indices.count]))
    }
}

/// Inverted dropout: in training, zeroes each element with probability `p` and scales the rest by
/// `1/(1-p)`; identity in evaluation mode. Draws come from the layer's own seeded generator, so
/// runs are reproducible.
public final class Dropout: Module {
    public let p: Float
    public var generator: RandomGenerator

    public init(_ p: Float = 0.5, seed: UInt64 = 0) {
        precondition(p >= 0 && p <= 1, "Dropout: p must be in [0, 1], got \(p)")
        self.p = p
        self.generator = RandomGenerator(seed: seed)
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        guard isTraining, p > 0 else { return x }
        if p >= 1 { return x * Tensor(0) }
        let scale = 1 / (1 - p)
        var mask = generator.uniform(x.shape)
        let threshold = p
        mask.withUnsafeMutableBufferPointer { m in for i in m.indices { m[i] = m[i] < threshold ? 0 : scale } }
        return x * mask
    }
}

// MARK: - Activations

/// `max(x, 0)`.
public final class ReLU: Module {
    public override init() {}
    public override func callAsFunction(_ x: Tensor) -> Tensor { x.relu() }
}

/// `x` for `x > 0`, else `slope · x` (PyTorch's default slope 0.01).
public final class LeakyReLU: Module {
    public let slope: Float
    public init(_ slope: Float = 0.01) { self.slope = slope }
    public override func callAsFunction(_ x: Tensor) -> Tensor { x.leakyRelu(slope) }
}

/// Exact GELU `x Φ(x)`.
public final class GELU: Module {
    public override init() {}
    public override func callAsFunction(_ x: Tensor) -> Tensor { x.gelu() }
}

/// Hyperbolic tangent.
public final class Tanh: Module {
    public override init() {}
    public override func callAsFunction(_ x: Tensor) -> Tensor { x.tanh() }
}

/// Logistic sigmoid `1 / (1 + exp(-x))`.
public final class Sigmoid: Module {
    public override init() {}
    public override func callAsFunction(_ x: Tensor) -> Tensor { x.sigmoid() }
}

/// `log(1 + exp(βx)) / β`, linear above `threshold` (PyTorch's defaults β = 1, threshold 20).
public final class Softplus: Module {
    public let beta: Float
    public let threshold: Float
    public init(beta: Float = 1, threshold: Float = 20) { self.beta = beta; self.threshold = threshold }
    public override func callAsFunction(_ x: Tensor) -> Tensor { x.softplus(beta: beta, threshold: threshold) }
}

/// Returns its input (a placeholder, e.g. an optional normalisation switched off).
public final class Identity: Module {
    public override init() {}
    public override func callAsFunction(_ x: Tensor) -> Tensor { x }
}

/// A parameter-free module around a closure, so functions can sit in a ``Sequential``.
public final class Lambda: Module {
    public let function: (Tensor) -> Tensor
    public init(_ function: @escaping (Tensor) -> Tensor) { self.function = function }
    public override func callAsFunction(_ x: Tensor) -> Tensor { function(x) }
}

// MARK: - Containers

/// Applies modules in order. Parameters are named `layers.<index>.<name>`; closures enter as
/// ``Lambda`` modules (no parameters).
public final class Sequential: Module {
    public private(set) var layers: [Module]

    public init(_ layers: [Module]) { self.layers = layers }
    public convenience init(_ layers: Module...) { self.init(layers) }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        var y = x
        for layer in layers { y = layer(y) }
        return y
    }

    /// Appends a module (before the structure is first discovered, or it is rediscovered).
    public func append(_ module: Module) {
        layers.append(module)
        invalidateStructureCache()
    }

    /// Appends a closure as a ``Lambda``.
    public func append(_ function: @escaping (Tensor) -> Tensor) { append(Lambda(function)) }
}

/// A multilayer perceptron: `Linear(widths[0], widths[1])`, activation, ..., `Linear(widths[n-2],
/// widths[n-1])`, optional output activation. Parameters are `layers.<i>.weight/bias`.
public final class MLP: Module {
    public let layers: [Linear]
    public let activation: (Tensor) -> Tensor
    public let outputActivation: ((Tensor) -> Tensor)?

    /// - Parameters:
    ///   - widths: input width, hidden widths, output width (at least two entries).
    ///   - activation: applied after every layer but the last (default ReLU).
    ///   - outputActivation: applied after the last layer, if any.
    public init(widths: [Int], activation: @escaping (Tensor) -> Tensor = { $0.relu() },
                outputActivation: ((Tensor) -> Tensor)? = nil, bias: Bool = true, rng: inout RandomGenerator) {
        precondition(widths.count >= 2, "MLP: needs at least input and output widths, got \(widths)")
        var layers: [Linear] = []
        for i in 0..<(widths.count - 1) { layers.append(Linear(widths[i], widths[i + 1], bias: bias, rng: &rng)) }
        self.layers = layers
        self.activation = activation
        self.outputActivation = outputActivation
    }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        var y = x
        for (i, layer) in layers.enumerated() {
            y = layer(y)
            if i < layers.count - 1 { y = activation(y) }
        }
        if let outputActivation { y = outputActivation(y) }
        return y
    }
}
