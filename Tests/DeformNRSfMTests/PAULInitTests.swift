import Testing
import DeformGeometry
@testable import DeformNRSfM
import DeformNN
import DeformTensor

@Suite struct PAULWarmStartTests {
    /// The teacher's canonical shapes, mapped back by its rotations, give its camera-frame points,
    /// and are centred.
    @Test func teacherCanonicalShapesAreTheTeachersShapesInTheCommonFrame() throws {
        let data = SyntheticNRSfM(frames: 40, points: 15, modes: 2, seed: 3)
        let canon = try #require(try PAULInit.teacherCanonical(points2D: data.points2D, warmStart: .bmm, seed: 0))
        var c = BMMConfig()
        c.seed = 0
        c.rank = try PAULInit.supportedRank(points2D: data.points2D, upTo: c.rank)
        #expect(c.rank == 3)   // mean + 2 modes: 9 directions
        let bmm = try BMM.fit(points2D: data.points2D, visibility: nil, config: c)
        let camera = canon.matmul(bmm.rotations.transposed())
        let centred = bmm.points3D - bmm.points3D.mean(axes: [1], keepDims: true)
        #expect((camera - centred).abs().max().item < 1e-4)
        #expect(canon.mean(axes: [1]).abs().max().item < 1e-5)
        #expect(try PAULInit.teacherCanonical(points2D: data.points2D, warmStart: .none, seed: 0) == nil)
    }

    /// The pre-fit alone (no PAUL training) makes the decoder reproduce the teacher's canonical
    /// shapes, so PAUL's lower level already recovers the 3D: its loss is far below that of the
    /// random start, and the camera-frame shapes are close to the ground truth.
    @Test func prefitStartsPAULAtTheTeachersSolution() throws {
        let data = SyntheticNRSfM(frames: 60, points: 15, modes: 2, seed: 4)
        let norm = NormalizedTracks(points2D: data.points2D)
        var config = PAULConfig()
        config.learningRate = 3e-3
        let teacher = try #require(try PAULInit.teacherCanonical(points2D: data.points2D, warmStart: .bmm, seed: 0)) / norm.scale
        var rng = RandomGenerator(seed: 0)
        let model = PAULModel(frames: 60, points: 15, config: config, rng: &rng)
        let before = try GradMode.withoutGrad { try PAUL.loss(model: model, w: norm.w, codes: model.codes, config: config).total.item }
        let prefitLoss = PAULInit.prefit(model: model, targets: teacher, config: config, iterations: 400)
        let decoded = GradMode.withoutGrad { model.decode(model.codes) }
        let fitError = ((decoded - teacher).norm() / teacher.norm()).item
        let (after, cam) = try GradMode.withoutGrad { () throws -> (Float, PAULSolver.Solution) in
            let r = try PAUL.loss(model: model, w: norm.w, codes: model.codes, config: config)
            return (r.total.item, r.camera)
        }
        let err = try Metrics3D.normalizedError(prediction: cam.cameraShape * norm.scale, groundTruth: data.points3D).mean
        print("warm start pre-fit: loss \(prefitLoss), relative error \(fitError), PAUL loss \(before) -> \(after), NE \(err)%")
        #expect(fitError < 0.1, "relative pre-fit error \(fitError)")
        #expect(after < 0.1 * before, "PAUL loss \(before) at the random start, \(after) after the pre-fit")
        #expect(err < 5, "normalized error \(err)% after the pre-fit alone")
    }

    /// The warm start is a config field settable by name, and unknown teachers are rejected.
    @Test func warmStartIsAConfigOverride() throws {
        let c = try ConfigOverrides.apply(["warmStart=deep-nrsfm++", "warmStartIterations=50"], to: PAULConfig())
        #expect(c.warmStart == .deepNRSfMPlusPlus && c.warmStartIterations == 50)
        #expect(throws: NRSfMError.self) { try ConfigOverrides.apply(["warmStart=oracle"], to: PAULConfig()) }
    }
}
