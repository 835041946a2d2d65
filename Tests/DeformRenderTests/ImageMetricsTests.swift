import Testing
import Foundation
@testable import DeformRender
import DeformTensor

/// SSIM by plain loops in Double: Gaussian-weighted local statistics over every valid window.
private func referenceSSIM(_ a: [Float], _ b: [Float], h: Int, w: Int, window: Int = 11, sigma: Double = 1.5) -> Double {
    let centre = Double(window - 1) / 2
    var g = (0..<window).map { exp(-(Double($0) - centre) * (Double($0) - centre) / (2 * sigma * sigma)) }
    let total = g.reduce(0, +)
    g = g.map { $0 / total }
    let c1 = 0.0001, c2 = 0.0009
    var sum = 0.0, count = 0
    for y in 0...(h - window) {
        for x in 0...(w - window) {
            var ma = 0.0, mb = 0.0, saa = 0.0, sbb = 0.0, sab = 0.0
            for i in 0..<window {
                for j in 0..<window {
                    let k = g[i] * g[j], va = Double(a[(y + i) * w + x + j]), vb = Double(b[(y + i) * w + x + j])
                    ma += k * va; mb += k * vb; saa += k * va * va; sbb += k * vb * vb; sab += k * va * vb
                }
            }
            let va = saa - ma * ma, vb = sbb - mb * mb, cov = sab - ma * mb
            sum += ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
            count += 1
        }
    }
    return sum / Double(count)
}

@Suite struct ImageMetricsTests {
    @Test func ssimMatchesPlainLoopsAndIsOneForIdenticalImages() throws {
        var rng = RandomGenerator(seed: 3)
        let a = rng.uniform([2, 3, 20, 17])
        let b = (a + rng.normal([2, 3, 20, 17], std: 0.1)).clamp(min: 0, max: 1)
        let fast = try ImageMetrics.ssim(a, b).item
        var ref = 0.0
        for img in 0..<6 {
            let pa = Array(a.scalars[(img * 340)..<((img + 1) * 340)]), pb = Array(b.scalars[(img * 340)..<((img + 1) * 340)])
            ref += referenceSSIM(pa, pb, h: 20, w: 17) / 6
        }
        #expect(abs(Double(fast) - ref) < 1e-4, "fast \(fast) vs reference \(ref)")
        #expect(fast > 0.2 && fast < 0.95)
        #expect(abs(try ImageMetrics.ssim(a, a).item - 1) < 1e-5)
    }

    @Test func psnrAndL1HaveTheirAnalyticValues() throws {
        var rng = RandomGenerator(seed: 4)
        let a = rng.uniform([2, 3, 8, 8], low: 0, high: 0.8)
        let b = a + 0.1
        #expect(abs(try ImageMetrics.psnr(a, b).item - 20) < 1e-3)      // MSE 0.01 -> 20 dB
        #expect(abs(try ImageMetrics.psnr(a * 255, b * 255, dataRange: 255).item - 20) < 1e-3)
        #expect(abs(try ImageMetrics.l1(a, b).item - 0.1) < 1e-6)
        #expect(throws: TensorError.self) { try ImageMetrics.l1(a, Tensor.zeros([2, 3, 8, 7])) }
        #expect(throws: TensorError.self) { try ImageMetrics.ssim(a, b) }     // 8x8 < 11x11 window
    }

    @Test func ssimGradientMatchesFiniteDifferences() {
        var rng = RandomGenerator(seed: 5)
        let a = rng.uniform([1, 1, 12, 13]), b = rng.uniform([1, 1, 12, 13])
        let r = GradientCheck.check([a], step: 1e-2, atol: 1e-4, rtol: 2e-2) { xs in try! ImageMetrics.ssim(xs[0], b) }
        #expect(r.passed, "\(r)")
    }
}
