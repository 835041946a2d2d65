import DeformTensor
import Foundation

/// Image losses and metrics on `[N, C, H, W]` tensors with values in `[0, dataRange]`, all
/// differentiable (they are composed from engine ops, whose gradients are tested).
public enum ImageMetrics {
    /// Mean absolute difference.
    public static func l1(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        try check(a, b, op: "ImageMetrics.l1")
        return (a - b).abs().mean()
    }

    /// Peak signal-to-noise ratio in dB, `10 log10(range² / MSE)`, averaged over the images of
    /// the batch (each image's own MSE, as evaluation code reports it). Identical images give +∞.
    public static func psnr(_ a: Tensor, _ b: Tensor, dataRange: Float = 1) throws -> Tensor {
        try check(a, b, op: "ImageMetrics.psnr")
        let mse = (a - b).square().mean(axes: [1, 2, 3])
        return (Tensor(dataRange * dataRange) / mse).log().mean() * Float(10 / Foundation.log(10.0))
    }

    /// Structural similarity (Wang et al. 2004) with an 11×11 Gaussian window of σ = 1.5,
    /// `K1 = 0.01`, `K2 = 0.03`, over the valid region (no padding, as the reference
    /// implementation and scikit-image's `gaussian_weights=True` with `use_sample_covariance=False`),
    /// averaged over pixels, channels and images. Use `1 - ssim` as a loss.
    /// - Throws: ``TensorError`` for mismatched shapes or images smaller than the window.
    public static func ssim(_ a: Tensor, _ b: Tensor, dataRange: Float = 1, windowSize: Int = 11, sigma: Float = 1.5) throws -> Tensor {
        let op = "ImageMetrics.ssim"
        try check(a, b, op: op)
        let n = a.shape[0], c = a.shape[1], h = a.shape[2], w = a.shape[3]
        guard h >= windowSize, w >= windowSize else {
            throw TensorError.invalidArgument(op: op, message: "images of \(h)x\(w) are smaller than the \(windowSize)x\(windowSize) window")
        }
        let g = gaussianWindow(size: windowSize, sigma: sigma)
        let rows = Tensor(g, shape: [1, 1, 1, windowSize]), cols = Tensor(g, shape: [1, 1, windowSize, 1])
        // Every channel filtered on its own: channels folded into the batch, one separable filter.
        func blur(_ x: Tensor) -> Tensor {
            conv2d(conv2d(x.reshaped([n * c, 1, h, w]), weight: rows), weight: cols)
        }
        let muA = blur(a), muB = blur(b)
        let sigmaA = blur(a * a) - muA * muA, sigmaB = blur(b * b) - muB * muB, sigmaAB = blur(a * b) - muA * muB
        let c1 = (0.01 * dataRange) * (0.01 * dataRange), c2 = (0.03 * dataRange) * (0.03 * dataRange)
        let map = ((2 * muA * muB + c1) * (2 * sigmaAB + c2)) / ((muA * muA + muB * muB + c1) * (sigmaA + sigmaB + c2))
        return map.mean()
    }

    /// Normalised 1-D Gaussian weights.
    static func gaussianWindow(size: Int, sigma: Float) -> [Float] {
        let centre = Float(size - 1) / 2
        let raw = (0..<size).map { Foundation.exp(-(Float($0) - centre) * (Float($0) - centre) / (2 * sigma * sigma)) }
        let total = raw.reduce(0, +)
        return raw.map { $0 / total }
    }

    static func check(_ a: Tensor, _ b: Tensor, op: String) throws {
        guard a.rank == 4, a.shape == b.shape else {
            throw TensorError.shapeMismatch(op: op, expected: "two images [N, C, H, W] of the same shape", found: "\(a.shape) and \(b.shape)")
        }
    }
}
