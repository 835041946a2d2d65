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
    /// Adam learning rate with cosine decay to `minLearningRate` (not stated in the source).
    public var learningRate: Float = 1e-3
    public var minLearningRate: Float = 1e-5
    /// Use the auto-encoder term L_recon.AE (false gives the ADL ablation: L_recon.AD + L_reg only).
    public var useAutoencoderTerm = true
    public var seed: UInt64 = 0

    public init() {}
}

/// PAUL's networks for the NRSfM mode: encoder f_e, decoder f_d and a free code φ per frame.
public final class PAULModel: Module {
    public let encoder: MLP
    public let decoder: MLP
    @Parameter public var codes: Tensor
    public let points: Int

    public init(frames: Int, points: Int, config: PAULConfig, rng: inout RandomGenerator) {
        self.points = points
        let slope = config.leakySlope
        let act: (Tensor) -> Tensor = { $0.leakyRelu(slope) }
        encoder = MLP(widths: [3 * points] + config.hiddenWidths + [config.bottleneck], activation: act, rng: &rng)
        decoder = MLP(widths: [config.bottleneck] + config.hiddenWidths.reversed() + [3 * points], activation: act, rng: &rng)
        codes = rng.normal([frames, config.bottleneck], std: config.codeInitStd)
    }

    /// f_d(φ) as shapes [N, 3, P].
    public func decode(_ phi: Tensor) -> Tensor { decoder(phi).reshaped([phi.shape[0], 3, points]) }

    /// f_d∘f_e(S) for shapes [N, 3, P].
    public func autoencode(_ s: Tensor) -> Tensor { decode(encoder(s.reshaped([s.shape[0], 3 * points]))) }
}

/// Output of PAUL's lower-level solver for a batch.
public struct PAULCamera {
    /// Rotations [N, 3, 3] (camera = R · canonical).
    public var rotations: Tensor
    /// Depths z* [N, P] of the observed points.
    public var depths: Tensor
}

public enum PAUL {
    /// The differentiable closed-form lower-level solution (Eqs. 2.9-2.10).
    ///
    /// - `w`: centred 2D observations [N, 2, P]; `a = f_d∘f_e∘f_d(φ)`, `b = f_d(φ)`: [N, 3, P].
    /// 1. R̃ = W(A+B)ᵀ (AAᵀ + BBᵀ)⁻¹ ∈ R^{2×3}, the least-squares camera of Eq. 2.9.
    /// 2. Completed to 3x3 with r̃₃ = (r̃₁ × r̃₂)/√‖r̃₁ × r̃₂‖ (so an exact scaled rotation s·R
    ///    completes to s·R, keeping the rows' weights equal), then projected onto SO(3) by SVD.
    /// 3. z* = ½(Aᵀ r₃ + Bᵀ r₃) (Eq. 2.10), with r₃ the third row of R*.
    public static func lowerLevel(w: Tensor, a: Tensor, b: Tensor) throws -> PAULCamera {
        let sum = a + b
        let m = w.matmul(sum.transposed())                                    // [N, 2, 3]
        let g = a.matmul(a.transposed()) + b.matmul(b.transposed())           // [N, 3, 3]
        let rt = try Linalg.solve(g, m.transposed()).transposed()             // G symmetric
        let r1 = rt.narrow(axis: 1, start: 0, length: 1).squeezed([1])        // [N, 3]
        let r2 = rt.narrow(axis: 1, start: 1, length: 1).squeezed([1])
        let c = cross(r1, r2)
        let r3 = c / (c.norm(axes: [1], keepDims: true) + 1e-12).sqrt()
        let r = try Linalg.projectToSO3(Tensor.concat([rt, r3.unsqueezed(1)], axis: 1))
        let rz = r.narrow(axis: 1, start: 2, length: 1)                         // [N, 1, 3]
        let z = rz.matmul(sum).squeezed([1]) * 0.5                              // [N, P]
        return PAULCamera(rotations: r, depths: z)
    }

    /// Row-wise cross product of [N, 3] tensors.
    static func cross(_ u: Tensor, _ v: Tensor) -> Tensor {
        let yzx = [1, 2, 0], zxy = [2, 0, 1]
        return u.indexSelect(axis: 1, indices: yzx) * v.indexSelect(axis: 1, indices: zxy)
             - u.indexSelect(axis: 1, indices: zxy) * v.indexSelect(axis: 1, indices: yzx)
    }

    /// Per-frame losses of Eq. 2.7 with the lower level substituted (all points visible).
    /// Returns (total, reconstruction part) averaged over frames.
    public static func loss(model: PAULModel, w: Tensor, codes: Tensor, config: PAULConfig) throws -> (total: Tensor, camera: PAULCamera) {
        let b = model.decode(codes)
        let a = config.useAutoencoderTerm ? model.autoencode(b) : b
        let cam = try lowerLevel(w: w, a: a, b: b)
        let sCam = Tensor.concat([w, cam.depths.unsqueezed(1)], axis: 1)        // [W; z*ᵀ]
        let canon = cam.rotations.transposed().matmul(sCam)                      // R*ᵀ[W; z*ᵀ]
        var perFrame = (b - canon).norm(axes: [1, 2])                            // L_recon.AD (Frobenius)
        if config.useAutoencoderTerm { perFrame = perFrame + (a - canon).norm(axes: [1, 2]) }  // L_recon.AE
        perFrame = perFrame + config.codeWeight * codes.square().sum(axes: [1])
        return (perFrame.mean(), cam)
    }
}
