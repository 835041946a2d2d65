import DeformTensor

/// 2-D convolution over NCHW tensors (PyTorch's `nn.Conv2d` with `groups = 1` and zero padding).
/// Weight `[out, in, kh, kw]` and bias `[out]`, both `U(-1/√fanIn, 1/√fanIn)` with
/// `fanIn = in·kh·kw`, as PyTorch initialises them.
public final class Conv2d: Module {
    @Parameter public var weight: Tensor
    @Parameter public var bias: Tensor? = nil
    public let stride: (Int, Int)
    public let padding: (Int, Int)
    public let dilation: (Int, Int)

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: (Int, Int), stride: (Int, Int) = (1, 1),
                padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), bias: Bool = true,
                rng: inout RandomGenerator) {
        precondition(inChannels > 0 && outChannels > 0 && kernelSize.0 > 0 && kernelSize.1 > 0,
                     "Conv2d: channels and kernel size must be positive, got \(inChannels) -> \(outChannels), kernel \(kernelSize)")
        let fanIn = inChannels * kernelSize.0 * kernelSize.1
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.weight = Initializers.pytorchDefault([outChannels, inChannels, kernelSize.0, kernelSize.1], fanIn: fanIn, using: &rng)
        super.init()
        if bias { self.bias = Initializers.pytorchDefault([outChannels], fanIn: fanIn, using: &rng) }
    }

    /// Square kernel, equal strides, padding and dilation in both directions.
    public convenience init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                            dilation: Int = 1, bias: Bool = true, rng: inout RandomGenerator) {
        self.init(inChannels, outChannels, kernelSize: (kernelSize, kernelSize), stride: (stride, stride),
                  padding: (padding, padding), dilation: (dilation, dilation), bias: bias, rng: &rng)
    }

    public var inChannels: Int { weight.shape[1] }
    public var outChannels: Int { weight.shape[0] }
    public var kernelSize: (Int, Int) { (weight.shape[2], weight.shape[3]) }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation)
    }
}

/// 2-D transposed convolution (PyTorch's `nn.ConvTranspose2d` with `groups = 1`): the adjoint of
/// ``Conv2d`` with the same geometry. Weight `[in, out, kh, kw]`; PyTorch computes the init fan-in
/// from weight dimension 1, so both weight and bias are `U(-1/√(out·kh·kw), 1/√(out·kh·kw))`.
public final class ConvTranspose2d: Module {
    @Parameter public var weight: Tensor
    @Parameter public var bias: Tensor? = nil
    public let stride: (Int, Int)
    public let padding: (Int, Int)
    public let outputPadding: (Int, Int)
    public let dilation: (Int, Int)

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: (Int, Int), stride: (Int, Int) = (1, 1),
                padding: (Int, Int) = (0, 0), outputPadding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1),
                bias: Bool = true, rng: inout RandomGenerator) {
        precondition(inChannels > 0 && outChannels > 0 && kernelSize.0 > 0 && kernelSize.1 > 0,
                     "ConvTranspose2d: channels and kernel size must be positive, got \(inChannels) -> \(outChannels), kernel \(kernelSize)")
        let fanIn = outChannels * kernelSize.0 * kernelSize.1
        self.stride = stride
        self.padding = padding
        self.outputPadding = outputPadding
        self.dilation = dilation
        self.weight = Initializers.pytorchDefault([inChannels, outChannels, kernelSize.0, kernelSize.1], fanIn: fanIn, using: &rng)
        super.init()
        if bias { self.bias = Initializers.pytorchDefault([outChannels], fanIn: fanIn, using: &rng) }
    }

    /// Square kernel, equal strides, paddings and dilation in both directions.
    public convenience init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                            outputPadding: Int = 0, dilation: Int = 1, bias: Bool = true, rng: inout RandomGenerator) {
        self.init(inChannels, outChannels, kernelSize: (kernelSize, kernelSize), stride: (stride, stride),
                  padding: (padding, padding), outputPadding: (outputPadding, outputPadding),
                  dilation: (dilation, dilation), bias: bias, rng: &rng)
    }

    public var inChannels: Int { weight.shape[0] }
    public var outChannels: Int { weight.shape[1] }
    public var kernelSize: (Int, Int) { (weight.shape[2], weight.shape[3]) }

    public override func callAsFunction(_ x: Tensor) -> Tensor {
        convTranspose2d(x, weight: weight, bias: bias, stride: stride, padding: padding,
                        outputPadding: outputPadding, dilation: dilation)
    }
}
