import DeformGeometry
import DeformIO
import DeformTensor
import Foundation

/// The variants of a ground-truth sequence that the NRSfM benchmark runs every method on
/// (`deform nrsfm table --protocols ...`). Every variant is derived from the sequence's 3D ground
/// truth and a seed; no method ever sees the ground truth or the hidden coordinates.
public enum NRSfMProtocol: Equatable, Sendable, CustomStringConvertible {
    /// The tracks as given (orthographic, complete).
    case clean
    /// Perspective projection synthesised from the 3D ground truth: each frame's centroid is put
    /// at depth `distance` × the sequence's extent (the largest side of the bounding box of
    /// all its frames' centred shapes) in front of a pinhole camera of focal length 1, so the 2D points are
    /// normalised image coordinates. Errors are measured after a per-frame scale alignment,
    /// since the reconstruction's unit then differs from the ground truth's.
    case perspective(distance: Float)
    /// A `fraction` of the (frame, point) pairs hidden uniformly at random (each frame keeps at
    /// least 3 visible points); their 2D coordinates are zeroed. Errors on all points.
    case missing(fraction: Double)
    /// Gaussian noise on the 2D points, with standard deviation `sigma` × the sequence's RMS
    /// distance of a point to its frame's centroid. Errors against the clean 3D.
    case noise(sigma: Double)
    /// Train on a random `1 - heldOut` of the frames, lift the rest with the trained network in
    /// one forward pass; errors on the held-out frames.
    case lifting(heldOut: Double)

    /// The protocol's command-line name: `clean`, `persp`, `missing30`, `noise2`, `lift`, ...
    public var description: String {
        switch self {
        case .clean: return "clean"
        case .perspective(let d): return d == 2.5 ? "persp" : "persp\(Self.number(Double(d)))"
        case .missing(let f): return "missing\(Self.number(100 * f))"
        case .noise(let s): return "noise\(Self.number(100 * s))"
        case .lifting(let h): return h == 0.2 ? "lift" : "lift\(Self.number(100 * h))"
        }
    }

    private static func number(_ x: Double) -> String {
        x == x.rounded() ? String(Int(x)) : String(format: "%g", x)
    }

    /// Parses ``description`` forms: `clean`, `persp` (distance 2.5) or `persp<D>`, `missing<percent>`,
    /// `noise<percent of the RMS radius>`, `lift` (20% held out) or `lift<percent>`.
    public init?(_ text: String) {
        func value(after prefix: String) -> Double? {
            guard text.hasPrefix(prefix) else { return nil }
            return Double(text.dropFirst(prefix.count))
        }
        switch text {
        case "clean": self = .clean
        case "persp": self = .perspective(distance: 2.5)
        case "lift": self = .lifting(heldOut: 0.2)
        default:
            if let d = value(after: "persp"), d > 0 { self = .perspective(distance: Float(d)) }
            else if let p = value(after: "missing"), p >= 0, p < 100 { self = .missing(fraction: p / 100) }
            else if let p = value(after: "noise"), p >= 0 { self = .noise(sigma: p / 100) }
            else if let p = value(after: "lift"), p > 0, p < 100 { self = .lifting(heldOut: p / 100) }
            else { return nil }
        }
    }

    /// The default protocol list of the benchmark (Deep NRSfM++ Tables 3.7-3.8 style robustness
    /// plus the lifting split).
    public static let all: [NRSfMProtocol] = [.clean, .perspective(distance: 2.5), .missing(fraction: 0.3),
                                              .missing(fraction: 0.6), .noise(sigma: 0.02), .lifting(heldOut: 0.2)]
}

/// One benchmark task built from a ground-truth sequence: what the method is trained on and
/// what it is scored against.
public struct NRSfMBenchmarkCase {
    /// The tracks the method is fitted to (no ground truth inside).
    public var train: KeypointTracks
    /// Ground truth for the training frames, camera frame `[F, P, 3]`.
    public var trainTruth: Tensor
    /// Lifting only: held-out 2D tracks (no ground truth inside) and their ground truth.
    public var test: KeypointTracks?
    public var testTruth: Tensor?
    /// Whether errors are measured after a per-frame scale alignment (perspective data).
    public var alignScale: Bool
    /// Frame indices (into the original sequence) of the training and held-out frames.
    public var trainFrames: [Int]
    public var testFrames: [Int]

    /// Builds the case of `protocol` for `tracks` (which must hold `points_3d`), seeded.
    public init(tracks: KeypointTracks, protocol variant: NRSfMProtocol, seed: UInt64) throws {
        guard let truth = tracks.points3D else {
            throw NRSfMError.unsupported("\(tracks.source): the benchmark needs points_3d ground truth")
        }
        let f = tracks.frameCount, p = tracks.pointCount
        var rng = RandomGenerator(seed: 0xbe9c_0000 &+ seed)
        alignScale = false
        test = nil
        testTruth = nil
        trainFrames = Array(0..<f)
        testFrames = []
        switch variant {
        case .clean:
            train = try KeypointTracks(points2D: tracks.points2D, points3D: nil, source: tracks.source)
            trainTruth = truth
        case .perspective(let distance):
            let (points2D, camera) = NRSfMBenchmarkCase.perspectiveProjection(truth, distance: distance)
            train = try KeypointTracks(points2D: points2D, source: tracks.source + " (perspective)")
            trainTruth = camera
            alignScale = true
        case .missing(let fraction):
            let mask = NRSfMBenchmarkCase.randomVisibility(frames: f, points: p, hidden: fraction, rng: &rng)
            let zeroed = tracks.points2D * mask.unsqueezed(-1)
            train = try KeypointTracks(points2D: zeroed, visibility: mask, source: tracks.source + " (\(variant))")
            trainTruth = truth
        case .noise(let sigma):
            let centred = tracks.points2D - tracks.points2D.mean(axes: [1], keepDims: true)
            let rms = centred.square().sum(axes: [2]).mean().item.squareRoot()
            let noisy = tracks.points2D + rng.normal([f, p, 2], std: Float(sigma) * rms)
            train = try KeypointTracks(points2D: noisy, source: tracks.source + " (\(variant))")
            trainTruth = truth
        case .lifting(let heldOut):
            let order = rng.permutation(f)
            let nTest = min(max(1, Int((Double(f) * heldOut).rounded())), f - 1)
            testFrames = order.prefix(nTest).sorted()
            trainFrames = order.dropFirst(nTest).sorted()
            train = try KeypointTracks(points2D: tracks.points2D.indexSelect(axis: 0, indices: trainFrames), source: tracks.source + " (train split)")
            trainTruth = truth.indexSelect(axis: 0, indices: trainFrames)
            test = try KeypointTracks(points2D: tracks.points2D.indexSelect(axis: 0, indices: testFrames), source: tracks.source + " (held-out split)")
            testTruth = truth.indexSelect(axis: 0, indices: testFrames)
        }
    }

    /// Pinhole projection (focal 1) of ground-truth shapes `[F, P, 3]` whose centroids are moved
    /// to depth `distance` × extent; returns the normalised image points and the camera-frame shapes.
    public static func perspectiveProjection(_ shapes: Tensor, distance: Float) -> (points2D: Tensor, camera: Tensor) {
        let centred = shapes - shapes.mean(axes: [1], keepDims: true)
        let extent = (centred.max(axes: [0, 1]) - centred.min(axes: [0, 1])).max().item
        let offset = Tensor([0, 0, distance * max(extent, 1e-12)] as [Float])
        let camera = centred + offset
        return (Camera.perspective(camera), camera)
    }

    /// `[F, P]` 0/1 with about `hidden` of the entries 0, each frame keeping at least 3 points.
    static func randomVisibility(frames: Int, points: Int, hidden: Double, rng: inout RandomGenerator) -> Tensor {
        let u = rng.uniform([frames, points], low: 0, high: 1).scalars
        var v = u.map { Double($0) < hidden ? Float(0) : 1 }
        let keep = min(3, points)
        for f in 0..<frames {
            let row = f * points
            var visible = (0..<points).filter { v[row + $0] == 1 }.count
            // Re-show the points with the largest draws until enough are visible.
            let byDraw = (0..<points).sorted { u[row + $0] > u[row + $1] }
            var k = 0
            while visible < keep { if v[row + byDraw[k]] == 0 { v[row + byDraw[k]] = 1; visible += 1 }; k += 1 }
        }
        return Tensor(v, shape: [frames, points])
    }
}

/// The scores of one benchmark run.
public struct NRSfMBenchmarkScore: Codable, Sendable {
    /// Normalized error (%) on the frames the method was scored on (held-out frames for lifting).
    public var normalizedError: Double
    /// Lifting only: the normalized error on the training frames.
    public var trainNormalizedError: Double?
    /// Akhter et al.'s e_3D (%) on the same frames (``Metrics3D/akhterError(prediction:groundTruth:)``,
    /// the measure of the published BMM row); `nil` where errors are scale-aligned (perspective data).
    public var akhterError: Double?
    public var finalLoss: Float
    public var seconds: Double
}

extension NRSfMRunner {
    /// Runs one benchmark case: fits `method` to the case's training tracks and scores it (lifting:
    /// lifts the held-out frames with the trained network and scores those).
    public static func benchmark(_ method: NRSfMMethod, case c: NRSfMBenchmarkCase, options: NRSfMOptions) throws -> NRSfMBenchmarkScore {
        let t0 = Date()
        var options = options
        if c.test != nil {
            guard method.canLift else { throw NRSfMError.unsupported("\(method.rawValue) has no network that lifts unseen frames") }
            options.overrides = method.liftingOverrides + options.overrides
        }
        let r = try fit(method, tracks: c.train, options: options)
        let trainError = try Metrics3D.normalizedError(prediction: r.points3D, groundTruth: c.trainTruth, alignScale: c.alignScale).mean
        func akhter(_ prediction: Tensor, _ truth: Tensor) throws -> Double? {
            c.alignScale ? nil : try Metrics3D.akhterError(prediction: prediction, groundTruth: truth).mean
        }
        guard let test = c.test, let truth = c.testTruth else {
            return NRSfMBenchmarkScore(normalizedError: trainError, trainNormalizedError: nil,
                                       akhterError: try akhter(r.points3D, c.trainTruth), finalLoss: r.finalLoss,
                                       seconds: Date().timeIntervalSince(t0))
        }
        guard let lifter = r.lifter else {
            throw NRSfMError.unsupported("\(method.rawValue) has no network that lifts unseen frames")
        }
        let lifted = try lifter.lift(points2D: test.points2D, visibility: nil)
        let testError = try Metrics3D.normalizedError(prediction: lifted.points3D, groundTruth: truth, alignScale: c.alignScale).mean
        return NRSfMBenchmarkScore(normalizedError: testError, trainNormalizedError: trainError,
                                   akhterError: try akhter(lifted.points3D, truth), finalLoss: r.finalLoss,
                                   seconds: Date().timeIntervalSince(t0))
    }
}
