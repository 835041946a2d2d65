import Testing
@testable import DeformTensor

// Slow, obviously-correct references: the definitions written as plain loops in Double.

fileprivate func referenceConv2d(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride: (Int, Int) = (1, 1),
                     padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1)) -> Tensor {
    let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (o, kh, kw) = (w.shape[0], w.shape[2], w.shape[3])
    let ho = (h + 2 * padding.0 - dilation.0 * (kh - 1) - 1) / stride.0 + 1
    let wo = (wd + 2 * padding.1 - dilation.1 * (kw - 1) - 1) / stride.1 + 1
    let xs = x.scalars, ws = w.scalars
    var y = [Float]()
    for bi in 0..<n { for oc in 0..<o { for i in 0..<ho { for j in 0..<wo {
        var s = Double(b?.scalars[oc] ?? 0)
        for ci in 0..<c { for ki in 0..<kh { for kj in 0..<kw {
            let hi = i * stride.0 - padding.0 + ki * dilation.0, wi = j * stride.1 - padding.1 + kj * dilation.1
            if hi < 0 || hi >= h || wi < 0 || wi >= wd { continue }
            s += Double(xs[((bi * c + ci) * h + hi) * wd + wi]) * Double(ws[((oc * c + ci) * kh + ki) * kw + kj])
        } } }
        y.append(Float(s))
    } } } }
    return Tensor(y, shape: [n, o, ho, wo])
}

/// Transposed convolution by its scatter definition: every input pixel spreads its kernel.
fileprivate func referenceConvTranspose2d(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride: (Int, Int) = (1, 1),
                              padding: (Int, Int) = (0, 0), outputPadding: (Int, Int) = (0, 0),
                              dilation: (Int, Int) = (1, 1)) -> Tensor {
    let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (cout, kh, kw) = (w.shape[1], w.shape[2], w.shape[3])
    let ho = (h - 1) * stride.0 - 2 * padding.0 + dilation.0 * (kh - 1) + outputPadding.0 + 1
    let wo = (wd - 1) * stride.1 - 2 * padding.1 + dilation.1 * (kw - 1) + outputPadding.1 + 1
    let xs = x.scalars, ws = w.scalars
    var y = [Double](repeating: 0, count: n * cout * ho * wo)
    for bi in 0..<n { for co in 0..<cout { for i in 0..<ho { for j in 0..<wo {
        y[((bi * cout + co) * ho + i) * wo + j] = Double(b?.scalars[co] ?? 0)
    } } } }
    for bi in 0..<n { for ci in 0..<cin { for i in 0..<h { for j in 0..<wd {
        let v = Double(xs[((bi * cin + ci) * h + i) * wd + j])
        for co in 0..<cout { for ki in 0..<kh { for kj in 0..<kw {
            let oi = i * stride.0 - padding.0 + ki * dilation.0, oj = j * stride.1 - padding.1 + kj * dilation.1
            if oi < 0 || oi >= ho || oj < 0 || oj >= wo { continue }
            y[((bi * cout + co) * ho + oi) * wo + oj] += v * Double(ws[((ci * cout + co) * kh + ki) * kw + kj])
        } } }
    } } } }
    return Tensor(y.map { Float($0) }, shape: [n, cout, ho, wo])
}

fileprivate struct ConvCase: CustomStringConvertible {
    var x: [Int], w: [Int], stride = (1, 1), padding = (0, 0), dilation = (1, 1), bias = true
    var description: String { "x\(x) w\(w) s\(stride) p\(padding) d\(dilation)" }
}

@Suite struct ConvTests {
    fileprivate static let cases: [ConvCase] = [
        ConvCase(x: [2, 3, 7, 6], w: [4, 3, 3, 3], padding: (1, 1)),
        ConvCase(x: [1, 2, 8, 9], w: [3, 2, 3, 2], stride: (2, 3), padding: (1, 0)),
        ConvCase(x: [3, 2, 9, 8], w: [2, 2, 3, 3], stride: (1, 1), padding: (2, 1), dilation: (2, 3)),
        ConvCase(x: [2, 4, 5, 5], w: [3, 4, 1, 1], bias: false),
        ConvCase(x: [2, 3, 6, 7], w: [5, 3, 5, 4], stride: (2, 1), padding: (2, 3), dilation: (1, 2)),
        ConvCase(x: [2, 2, 4, 4], w: [2, 2, 4, 4], padding: (0, 0)),
        // Winograd tiles: odd and even output sizes, padding 0..3 (3 exceeds the tile-friendly range).
        ConvCase(x: [2, 3, 6, 5], w: [2, 3, 3, 3], padding: (0, 2)),
        ConvCase(x: [1, 4, 5, 9], w: [3, 4, 3, 3], padding: (3, 1), bias: false),
        ConvCase(x: [2, 2, 3, 3], w: [3, 2, 3, 3], padding: (0, 0)),
        ConvCase(x: [3, 2, 21, 19], w: [2, 2, 3, 3], padding: (1, 1)),
    ]

    @Test func conv2dMatchesReference() {
        var rng = RandomGenerator(seed: 10)
        for cs in Self.cases {
            let x = rng.normal(cs.x), w = rng.normal(cs.w), b = cs.bias ? rng.normal([cs.w[0]]) : nil
            let ref = referenceConv2d(x, w, b, stride: cs.stride, padding: cs.padding, dilation: cs.dilation)
            for lowering in [nil, ConvLowering.im2col, .shifted, .winograd] {
                let y = conv2d(x, weight: w, bias: b, stride: cs.stride, padding: cs.padding, dilation: cs.dilation, lowering: lowering)
                #expect(y.shape == ref.shape, "\(cs)")
                #expect(maxAbsDiff(y, ref) < 1e-4, "\(cs) \(String(describing: lowering))")
            }
        }
    }

    @Test func conv2dGradients() {
        var rng = RandomGenerator(seed: 11)
        for cs in Self.cases.filter({ $0.x.reduce(1, *) < 600 }) {
            let x = rng.normal(cs.x), w = rng.normal(cs.w), b = rng.normal([cs.w[0]])
            for lowering in [ConvLowering.im2col, .shifted, .winograd] {
                let r = GradientCheck.check([x, w, b]) { v in
                    conv2d(v[0], weight: v[1], bias: cs.bias ? v[2] : nil, stride: cs.stride, padding: cs.padding,
                           dilation: cs.dilation, lowering: lowering)
                }
                #expect(r.passed, "\(cs) \(lowering): \(r)")
            }
        }
    }

    /// The lowerings agree on a layer wide enough for the GEMM-per-tap paths to be the default.
    @Test func loweringsAgreeOnWideLayer() {
        var rng = RandomGenerator(seed: 12)
        let x = rng.normal([3, 32, 9, 10]), w = rng.normal([33, 32, 3, 3], std: 0.1), b = rng.normal([33])
        let g = rng.normal([3, 33, 9, 10])
        var results: [[Tensor]] = []
        for lowering in [ConvLowering.im2col, .shifted, .winograd] {
            let (y, grads) = valueAndGrad(at: [x, w, b]) { v in
                (conv2d(v[0], weight: v[1], bias: v[2], stride: (1, 1), padding: (1, 1), dilation: (1, 1), lowering: lowering) * g).sum()
            }
            results.append([y] + grads)
        }
        for other in results.dropFirst() {
            for (a, b) in zip(results[0], other) { #expect(maxAbsDiff(a, b) < 2e-3 * Swift.max(1, abs(a.scalars.max()!))) }
        }
        #expect(maxAbsDiff(conv2d(x, weight: w, bias: b, padding: (1, 1)),
                           referenceConv2d(x, w, b, padding: (1, 1))) < 1e-4)
    }

    /// A box filter on a constant image counts the in-bounds taps: 9 inside, 6 on edges, 4 in corners.
    @Test func boxFilterCountsTaps() {
        let x = Tensor.full([1, 2, 4, 5], 1)
        let w = Tensor.ones([1, 2, 3, 3])
        let y = conv2d(x, weight: w, bias: Tensor([0.5]), padding: (1, 1))
        #expect(y.shape == [1, 1, 4, 5])
        #expect(y[0, 0, 0, 0] == 8.5)
        #expect(y[0, 0, 0, 2] == 12.5)
        #expect(y[0, 0, 2, 2] == 18.5)
        #expect(y[0, 0, 3, 4] == 8.5)
    }

    /// The bias gradient of a sum is the number of output pixels per channel times the batch.
    @Test func biasGradientCountsPixels() {
        let b = Tensor([0.0, 1.0]).requiringGrad()
        let y = conv2d(Tensor.ones([3, 1, 4, 5]), weight: Tensor.ones([2, 1, 2, 2]), bias: b, stride: (2, 2))
        #expect(y.shape == [3, 2, 2, 2])
        #expect(grad(of: y.sum(), wrt: b).scalars == [12, 12])
    }

    @Test func convTranspose2dMatchesReference() {
        var rng = RandomGenerator(seed: 13)
        let cases: [(x: [Int], w: [Int], s: (Int, Int), p: (Int, Int), op: (Int, Int), d: (Int, Int))] = [
            ([2, 3, 4, 5], [3, 2, 3, 3], (2, 2), (1, 1), (1, 0), (1, 1)),
            ([1, 2, 3, 3], [2, 4, 4, 4], (2, 2), (1, 1), (0, 0), (1, 1)),
            ([2, 2, 4, 3], [2, 3, 3, 2], (1, 1), (1, 0), (0, 0), (2, 1)),
            ([2, 2, 3, 4], [2, 2, 3, 3], (1, 3), (0, 2), (1, 2), (2, 1)),  // outputPadding < dilation
            ([3, 4, 5, 4], [4, 3, 1, 1], (1, 1), (0, 0), (0, 0), (1, 1)),
            ([2, 3, 5, 4], [3, 2, 3, 3], (1, 1), (1, 0), (0, 0), (1, 1)),
            ([2, 3, 4, 5], [3, 2, 3, 3], (1, 1), (0, 2), (0, 0), (1, 1)),
        ]
        for cs in cases {
            let x = rng.normal(cs.x), w = rng.normal(cs.w), b = rng.normal([cs.w[1]])
            let ref = referenceConvTranspose2d(x, w, b, stride: cs.s, padding: cs.p, outputPadding: cs.op, dilation: cs.d)
            for lowering in [nil, ConvLowering.im2col, .shifted, .winograd] {
                let y = convTranspose2d(x, weight: w, bias: b, stride: cs.s, padding: cs.p, outputPadding: cs.op,
                                        dilation: cs.d, lowering: lowering)
                #expect(y.shape == ref.shape, "\(cs)")
                #expect(maxAbsDiff(y, ref) < 1e-4, "\(cs)")
                let r = GradientCheck.check([x, w, b]) { v in
                    convTranspose2d(v[0], weight: v[1], bias: v[2], stride: cs.s, padding: cs.p, outputPadding: cs.op,
                                    dilation: cs.d, lowering: lowering)
                }
                #expect(r.passed, "\(cs) \(String(describing: lowering)): \(r)")
            }
        }
    }

    /// Stride-2 transposed conv with a 2x2 box kernel is nearest-neighbour 2x upsampling.
    @Test func convTransposeBoxIsNearestUpsampling() {
        let x = Tensor([1, 2, 3, 4, 5, 6], shape: [1, 1, 2, 3])
        let y = convTranspose2d(x, weight: Tensor.ones([1, 1, 2, 2]), stride: (2, 2))
        #expect(y.shape == [1, 1, 4, 6])
        #expect(y.scalars == [1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 4, 4, 5, 5, 6, 6])
    }

    /// conv2d and convTranspose2d with the same weight are adjoint: <conv(x), y> = <x, convT(y)>.
    @Test func transposeIsAdjoint() {
        var rng = RandomGenerator(seed: 14)
        let x = rng.normal([2, 3, 9, 8]), w = rng.normal([4, 3, 3, 3])
        let y = conv2d(x, weight: w, stride: (2, 2), padding: (1, 1))
        let v = rng.normal(y.shape)
        let xt = convTranspose2d(v, weight: w, stride: (2, 2), padding: (1, 1), outputPadding: (0, 1))
        #expect(xt.shape == x.shape)
        let lhs = (y * v).sum().item, rhs = (x * xt).sum().item
        #expect(abs(lhs - rhs) < 1e-3 * Swift.max(1, abs(lhs)))
    }
}

// MARK: - Pooling

fileprivate func referenceAvgPool2d(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int)) -> Tensor {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let ho = (h + 2 * padding.0 - kernel.0) / stride.0 + 1, wo = (w + 2 * padding.1 - kernel.1) / stride.1 + 1
    var y = [Float]()
    for b in 0..<n { for ch in 0..<c { for i in 0..<ho { for j in 0..<wo {
        var s = 0.0
        for ki in 0..<kernel.0 { for kj in 0..<kernel.1 {
            let r = i * stride.0 - padding.0 + ki, q = j * stride.1 - padding.1 + kj
            if r >= 0 && r < h && q >= 0 && q < w { s += Double(x[b, ch, r, q]) }
        } }
        y.append(Float(s / Double(kernel.0 * kernel.1)))
    } } } }
    return Tensor(y, shape: [n, c, ho, wo])
}

fileprivate func referenceMaxPool2d(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int)) -> Tensor {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let ho = (h + 2 * padding.0 - kernel.0) / stride.0 + 1, wo = (w + 2 * padding.1 - kernel.1) / stride.1 + 1
    var y = [Float]()
    for b in 0..<n { for ch in 0..<c { for i in 0..<ho { for j in 0..<wo {
        var m = -Float.infinity
        for ki in 0..<kernel.0 { for kj in 0..<kernel.1 {
            let r = i * stride.0 - padding.0 + ki, q = j * stride.1 - padding.1 + kj
            if r >= 0 && r < h && q >= 0 && q < w { m = Swift.max(m, x[b, ch, r, q]) }
        } }
        y.append(m)
    } } } }
    return Tensor(y, shape: [n, c, ho, wo])
}

@Suite struct PoolTests {
    static let cases: [(x: [Int], k: (Int, Int), s: (Int, Int)?, p: (Int, Int))] = [
        ([2, 3, 6, 7], (2, 2), nil, (0, 0)),
        ([1, 2, 7, 5], (3, 3), (2, 2), (1, 1)),
        ([2, 2, 5, 8], (3, 2), (1, 2), (1, 0)),
        ([1, 3, 9, 9], (5, 4), (3, 2), (2, 1)),
    ]

    /// Distinct values at least 0.1 apart, so max pooling has no near-ties for finite differences.
    static func spreadInput(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        let count = shape.reduce(1, *)
        return Tensor(rng.permutation(count).map { Float($0) * 0.1 - Float(count) * 0.05 }, shape: shape)
    }

    @Test func avgPoolMatchesReferenceAndGradients() {
        var rng = RandomGenerator(seed: 20)
        for cs in Self.cases {
            let x = rng.normal(cs.x)
            let ref = referenceAvgPool2d(x, kernel: cs.k, stride: cs.s ?? cs.k, padding: cs.p)
            let y = avgPool2d(x, kernel: cs.k, stride: cs.s, padding: cs.p)
            #expect(y.shape == ref.shape)
            #expect(maxAbsDiff(y, ref) < 1e-5)
            let r = GradientCheck.check([x]) { avgPool2d($0[0], kernel: cs.k, stride: cs.s, padding: cs.p) }
            #expect(r.passed, "\(cs.x) \(cs.k): \(r)")
        }
    }

    @Test func maxPoolMatchesReferenceAndGradients() {
        for (i, cs) in Self.cases.enumerated() {
            let x = Self.spreadInput(cs.x, seed: UInt64(30 + i))
            let ref = referenceMaxPool2d(x, kernel: cs.k, stride: cs.s ?? cs.k, padding: cs.p)
            let y = maxPool2d(x, kernel: cs.k, stride: cs.s, padding: cs.p)
            #expect(y.shape == ref.shape)
            #expect(maxAbsDiff(y, ref) == 0)
            let r = GradientCheck.check([x]) { maxPool2d($0[0], kernel: cs.k, stride: cs.s, padding: cs.p) }
            #expect(r.passed, "\(cs.x) \(cs.k): \(r)")
        }
    }

    /// Padding counts as zeros in the average (count_include_pad) and never wins the max.
    @Test func paddingConventions() {
        let x = Tensor([1, 2, 3, 4], shape: [1, 1, 2, 2])
        let avg = avgPool2d(x, kernel: (2, 2), stride: (1, 1), padding: (1, 1))
        #expect(avg.shape == [1, 1, 3, 3])
        #expect(avg.scalars == [0.25, 0.75, 0.5, 1, 2.5, 1.5, 0.75, 1.75, 1])
        let neg = Tensor([-1, -2, -3, -4], shape: [1, 1, 2, 2])
        #expect(maxPool2d(neg, kernel: (2, 2), stride: (1, 1), padding: (1, 1)).scalars == [-1, -1, -2, -1, -1, -2, -3, -3, -4])
    }

    /// Ties send the gradient to the first maximum only, and windows that share a maximum add up.
    @Test func maxPoolGradientRouting() {
        let x = Tensor([3, 3, 1, 4, 2], shape: [1, 1, 1, 5]).requiringGrad()
        let y = maxPool2d(x, kernel: (1, 2), stride: (1, 1))
        #expect(y.scalars == [3, 3, 4, 4])
        #expect(grad(of: y.sum(), wrt: x).scalars == [1, 1, 0, 2, 0])
    }
}

extension PoolTests {
    @Test func largePoolingMatchesReferenceOnThreads() {
        let x = Self.spreadInput([4, 8, 32, 32], seed: 50) * 0.01
        let avg = avgPool2d(x, kernel: (3, 3), stride: (2, 2), padding: (1, 1))
        #expect(maxAbsDiff(avg, referenceAvgPool2d(x, kernel: (3, 3), stride: (2, 2), padding: (1, 1))) < 1e-5)
        let mx = maxPool2d(x, kernel: (3, 3), stride: (2, 2), padding: (1, 1))
        #expect(maxAbsDiff(mx, referenceMaxPool2d(x, kernel: (3, 3), stride: (2, 2), padding: (1, 1))) == 0)
        let ops: [(Tensor) -> Tensor] = [{ avgPool2d($0, kernel: (3, 3), stride: (2, 2), padding: (1, 1)) },
                                         { maxPool2d($0, kernel: (3, 3), stride: (2, 2), padding: (1, 1)) }]
        for (i, f) in ops.enumerated() {
            let (gap, scale) = adjointGap(x, seed: UInt64(51 + i), f)
            #expect(gap < 1e-4 * scale)
        }
    }
}

@Suite struct KernelShapeErrorTests {
    /// Bad shapes trap with a message naming the expected and the found shapes.
    @Test func conv2dWeightMismatchNamesShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = conv2d(Tensor.zeros([1, 3, 8, 8]), weight: Tensor.zeros([4, 2, 3, 3]))
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("[4, 2, 3, 3]") && message.contains("[O, 3, kh, kw]"), "\(message)")
    }

    @Test func gridSampleGridMismatchNamesShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = gridSample(Tensor.zeros([2, 3, 8, 8]), grid: Tensor.zeros([2, 4, 4, 3]))
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("[2, 4, 4, 3]") && message.contains("[2, 3, 8, 8]"), "\(message)")
    }

    @Test func poolingRejectsOversizedPadding() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = maxPool2d(Tensor.zeros([1, 1, 8, 8]), kernel: (2, 2), padding: (2, 0))
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("maxPool2d") && message.contains("(2, 0)"), "\(message)")
    }
}
