import Testing
import Foundation
@testable import DeformTensor

/// Edge cases of the engine: NaN propagation as in PyTorch, empty and 0-D tensors, degenerate
/// shapes, error messages, and the BLAS thread switch under concurrency.
@Suite struct EdgeCaseTests {
    // MARK: NaN propagation

    @Test func elementwiseExtremaPropagateNaNFromEitherSide() {
        let a = Tensor([.nan, 1, 2]), b = Tensor([1, .nan, 3])
        for (name, y) in [("maximum", Tensor.maximum(a, b)), ("minimum", Tensor.minimum(a, b)),
                          ("maximum swapped", Tensor.maximum(b, a)), ("minimum swapped", Tensor.minimum(b, a))] {
            #expect(y[0].isNaN && y[1].isNaN, "\(name): \(y)")
        }
        #expect(Tensor.maximum(a, b)[2] == 3 && Tensor.minimum(a, b)[2] == 2)
    }

    @Test func maxAndMinReductionsPropagateNaN() {
        let x = Tensor([[1, .nan, 3], [4, 5, 6], [.nan, 0, 1]])
        #expect(x.max().item.isNaN && x.min().item.isNaN)
        let rowMax = x.max(axis: 1), rowMin = x.min(axis: 1)
        #expect(rowMax[0].isNaN && rowMax[1] == 6 && rowMax[2].isNaN, "\(rowMax)")
        #expect(rowMin[0].isNaN && rowMin[1] == 4 && rowMin[2].isNaN, "\(rowMin)")
        let colMax = x.max(axis: 0)
        #expect(colMax[0].isNaN && colMax[1].isNaN && colMax[2] == 6, "\(colMax)")
    }

    @Test func reluPropagatesNaN() {
        let y = Tensor([.nan, -1, 0, 2]).relu()
        #expect(y[0].isNaN && y[1] == 0 && y[2] == 0 && y[3] == 2, "\(y)")
        // The gradient is unchanged: relu'(0) = 0, 1 above zero.
        let x = Tensor([-1, 0, 2]).requiringGrad()
        #expect(grad(of: x.relu().sum(), wrt: x).scalars == [0, 0, 1])
    }

    // MARK: Degenerate shapes

    @Test func linearWithoutInputFeaturesGivesTheBias() {
        let x = Tensor.zeros([3, 0]), w = Tensor.zeros([2, 0]), b = Tensor([1.5, -2])
        let y = linear(x, weight: w, bias: b)
        #expect(y.shape == [3, 2])
        #expect(y.scalars == [1.5, -2, 1.5, -2, 1.5, -2])
        let (_, gs) = valueAndGrad(at: [x, w, b]) { v in linear(v[0], weight: v[1], bias: v[2]).sum() }
        #expect(gs[0].shape == [3, 0] && gs[1].shape == [2, 0])
        #expect(gs[2].scalars == [3, 3])
    }

    @Test func softmaxAndLogSumExpOverAnEmptyAxis() {
        // PyTorch: logsumexp over nothing is log(0) = -inf; softmax of nothing is empty.
        let x = Tensor.zeros([2, 0]).requiringGrad()
        let lse = x.logSumExp(axes: [1])
        #expect(lse.shape == [2] && lse.scalars.allSatisfy { $0 == -.infinity }, "\(lse)")
        let s = x.softmax(axis: 1)
        #expect(s.shape == [2, 0])
        #expect(grad(of: s.sum(), wrt: x).shape == [2, 0])
        #expect(Tensor.zeros([0, 3]).logSoftmax(axis: 1).shape == [0, 3])
    }

    @Test func axisMinusOneWorksOnZeroDimensionalTensors() {
        let s = Tensor(3)
        #expect(s.sum(axis: -1).item == 3)
        #expect(s.softmax().item == 1)
        #expect(s.max(axis: -1).item == 3)
        #expect(s.logSoftmax().item == 0)
    }

    @Test func meanAndVarianceWithoutEnoughElementsAreNaN() {
        // PyTorch: the mean of nothing is NaN, and so is an unbiased variance of one value.
        #expect(Tensor.zeros([0]).mean().item.isNaN)
        #expect(Tensor.zeros([2, 0]).mean(axis: 1).scalars.allSatisfy { $0.isNaN })
        #expect(Tensor([4]).variance().item.isNaN)
        #expect(Tensor([[1, 2], [3, 4]]).variance(axes: [0]).scalars.allSatisfy { $0 == 2 })
        #expect(Tensor([[1, 2]]).variance(axes: [0]).scalars.allSatisfy { $0.isNaN })
        #expect(Tensor([4]).variance(correction: 0).item == 0)
    }

    // MARK: Gradients at special points

    @Test func powGradientIsZeroWhereTheExponentIsZero() {
        // d(a^b)/da = b a^(b-1), which PyTorch defines as 0 where b = 0 (also at a = 0).
        let a = Tensor([0, 2, 0]), b = Tensor([0, 0, 2])
        let (_, gs) = valueAndGrad(at: [a, b]) { v in Tensor.pow(v[0], v[1]).sum() }
        #expect(gs[0].scalars == [0, 0, 0], "\(gs[0])")
        #expect(gs[1].scalars.allSatisfy { $0.isFinite }, "\(gs[1])")
    }

    // MARK: Error paths

    @Test func gridSampleRejectsEmptySpatialDimensions() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = gridSample(Tensor.zeros([1, 2, 0, 4]), grid: Tensor.zeros([1, 3, 3, 2]))
        }
        let err = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(err.contains("gridSample") && err.contains("[1, 2, 0, 4]"), "stderr was: \(err)")
        let result3 = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = gridSample3d(Tensor.zeros([1, 1, 2, 0, 2]), grid: Tensor.zeros([1, 1, 1, 1, 3]))
        }
        let err3 = String(decoding: result3?.standardErrorContent ?? [], as: UTF8.self)
        #expect(err3.contains("gridSample3d") && err3.contains("[1, 1, 2, 0, 2]"), "stderr was: \(err3)")
    }

    @Test func argminErrorsNameArgmin() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([2, 0]).argmin(axis: 1)
        }
        let err = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(err.contains("argmin") && err.contains("[2, 0]"), "stderr was: \(err)")
    }

    @Test func flattenWithStartAfterEndNamesTheAxes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([2, 3, 4]).flattened(from: 2, to: 1)
        }
        let err = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(err.contains("flatten") && err.contains("[2, 3, 4]"), "stderr was: \(err)")
    }

    // MARK: Threads

    /// Like PyTorch's `parallel_for`, the engine's parallel loop carries the caller's grad mode into
    /// its worker threads, so ops run there inside `withoutGrad` do not record.
    @Test func parallelRangesCarryNoGradIntoWorkers() {
        let x = Tensor([1, 2]).requiringGrad()
        let recorded = LockedBox(0)
        GradMode.withoutGrad {
            Threads.parallelRanges(Threads.coreCount * 4) { _ in
                if (x * 2).isTracked || GradMode.isEnabled { recorded.value += 1 }
            }
        }
        #expect(recorded.value == 0)
        let enabled = LockedBox(0)
        Threads.parallelRanges(Threads.coreCount * 4) { _ in if GradMode.isEnabled { enabled.value += 1 } }
        #expect(enabled.value == Swift.min(Threads.coreCount, Threads.coreCount * 4))
    }

    /// Two threads inside overlapping single-threaded BLAS regions: the one leaving first must not
    /// give BLAS its threads back while the other is still inside.
    @Test func overlappingSingleThreadedBLASRegionsStaySingleThreaded() {
        let aInside = DispatchSemaphore(value: 0), bInside = DispatchSemaphore(value: 0)
        let aLeft = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        let seen = LockedBox(0)
        Thread.detachNewThread {
            Threads.withSingleThreadedBLAS {
                aInside.signal()
                bInside.wait()
            }
            aLeft.signal()
        }
        Thread.detachNewThread {
            aInside.wait()
            Threads.withSingleThreadedBLAS {
                bInside.signal()
                aLeft.wait()
                seen.value = Threads.blasThreads
            }
            done.signal()
        }
        done.wait()
        #expect(seen.value == 1)
    }
}

/// A value shared between test threads.
final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); stored = newValue; lock.unlock() }
    }
}
