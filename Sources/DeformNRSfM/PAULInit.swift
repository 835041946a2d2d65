import DeformGeometry
import DeformNN
import DeformTensor
import Foundation

/// Where PAUL's networks start from (``PAULConfig/warmStart``).
///
/// Not in the source. On real sequences such as pickup, PAUL from a random start lets blocks of
/// frames settle in a mirror-like basin (their shape explains the 2D as well as the depth-reflected
/// one does). A warm start first fits the decoder, encoder and codes to the canonical shapes
/// `Rᵀ S` of a fast solution by another method (a short supervised pre-fit on that method's
/// output, which uses the 2D tracks only), then trains PAUL as usual from there.
public enum PAULWarmStart: String, Codable, Sendable, CaseIterable {
    /// Random initialisation (the source's method).
    case none
    /// Canonical shapes of a Deep NRSfM++ fit (``DeepNRSfM``, default config, PAUL's seed).
    case deepNRSfMPlusPlus = "deep-nrsfm++"
    /// Canonical shapes of a BMM fit (``BMM``, default config, PAUL's seed).
    case bmm
}

public enum PAULInit {
    /// `visibility` (hidden points) is only accepted by the Deep NRSfM++ teacher; BMM needs complete tracks.
    /// The teacher's canonical shapes `[N, P, 3]` in the input's unit (rows: `camera = canonical · Rᵀ`,
    /// so `canonical = camera · R`), each centred. `nil` for ``PAULWarmStart/none``.
    public static func teacherCanonical(points2D: Tensor, visibility: Tensor? = nil, warmStart: PAULWarmStart, seed: UInt64) throws -> Tensor? {
        let camera: Tensor, rotations: Tensor
        switch warmStart {
        case .none:
            return nil
        case .deepNRSfMPlusPlus:
            var c = DeepNRSfMConfig()
            c.seed = seed
            let fit = try DeepNRSfM.fit(points2D: points2D, visibility: visibility, config: c)
            (camera, rotations) = (fit.points3D, fit.rotations)
        case .bmm:
            var c = BMMConfig()
            c.seed = seed
            if visibility != nil {
                throw NRSfMError.unsupported("PAUL warm start: BMM needs complete tracks; use warmStart=deep-nrsfm++ or none with hidden points")
            }
            c.rank = try supportedRank(points2D: points2D, upTo: c.rank)
            let fit = try BMM.fit(points2D: points2D, visibility: nil, config: c)
            (camera, rotations) = (fit.points3D, fit.rotations)
        }
        return GradMode.withoutGrad {
            let canon = camera.matmul(rotations)
            return canon - canon.mean(axes: [1], keepDims: true)
        }
    }

    /// The largest BMM rank K ≤ `upTo` the tracks support: BMM needs 3K independent directions in
    /// the centred 2F×P tracks (small or low-rank sequences have fewer than the default K's 12).
    static func supportedRank(points2D: Tensor, upTo: Int) throws -> Int {
        let frames = points2D.shape[0], points = points2D.shape[1]
        let input = points2D.scalars.map(Double.init)
        var w = DMatrix(rows: 2 * frames, cols: points)
        for f in 0..<frames {
            for c in 0..<2 {
                let mean = (0..<points).reduce(0) { $0 + input[(f * points + $1) * 2 + c] } / Double(points)
                for p in 0..<points { w[2 * f + c, p] = input[(f * points + p) * 2 + c] - mean }
            }
        }
        let s = try w.svd(op: "PAUL warm start (rank of the tracks)").s
        let effective = s.filter { $0 > 1e-6 * (s.first ?? 0) }.count
        return Swift.max(1, Swift.min(upTo, effective / 3))
    }

    /// Supervised pre-fit of PAUL's networks and codes to canonical `targets` `[N, P, 3]` (in the
    /// normalised unit of ``NormalizedTracks``): `iterations` Adam steps on PAUL's loss with the
    /// teacher's shapes in place of the lower level's `Rᵀ[W; z*ᵀ]`,
    /// `‖f_d(φ) − T‖_F (+ ‖f_d∘f_e∘f_d(φ) − T‖_F) + 0.01‖φ‖²` per frame. Returns the final loss.
    @discardableResult
    /// In lifting mode pass h's input `features` (``PAULLifter/features(points:mask:)``): the codes
    /// are then h's output instead of the free per-frame codes.
    /// With ``PAULConfig/warmStartBatchSize`` each step uses that many frames of a seeded shuffle
    /// (an epoch without replacement) instead of every frame.
    public static func prefit(model: PAULModel, targets: Tensor, features: Tensor? = nil, config: PAULConfig, iterations: Int) -> Float {
        let optimizer = Adam(learningRate: config.learningRate)
        optimizer.groups = [ParameterGroup(prefixes: ["decoder"], learningRate: config.learningRate,
                                           weightDecay: 2 * config.decoderWeightDecay)]
        let frames = targets.shape[0]
        let batch = Swift.min(Swift.max(config.warmStartBatchSize ?? frames, 1), frames)
        var batchRNG = RandomGenerator(seed: config.seed &+ 0x9e3779b9)
        var order: [Int] = []
        var last: Float = .nan
        for _ in 0..<iterations {
            var indices: [Int]? = nil
            if batch < frames {
                if order.count < batch { order = DeepNRSfM.shuffled(frames, rng: &batchRNG) }
                indices = Array(order.suffix(batch))
                order.removeLast(batch)
            }
            let t = indices.map { targets.indexSelect(axis: 0, indices: $0) } ?? targets
            let x = indices.flatMap { i in features.map { $0.indexSelect(axis: 0, indices: i) } } ?? features
            let (loss, grads) = valueAndGrad(model) { m -> Tensor in
                let codes = x.flatMap { x in m.lifter.map { $0(x) } }
                    ?? indices.map { m.codes.indexSelect(axis: 0, indices: $0) } ?? m.codes
                let targets = t
                let b = m.decode(codes)
                var perFrame = (b - targets).norm(axes: [1, 2])
                if config.useAutoencoderTerm { perFrame = perFrame + (m.autoencode(b) - targets).norm(axes: [1, 2]) }
                perFrame = perFrame + config.codeWeight * codes.square().sum(axes: [1])
                return perFrame.mean()
            }
            optimizer.update(model: model, gradients: grads)
            last = loss.item
        }
        return last
    }
}
