import Testing
import DeformTensor

/// Programmer errors trap (like Swift's bounds checks) with a message naming what was expected and
/// what was found; these exit tests run the failing call in a child process and read its stderr.
@Suite struct ErrorMessageTests {
    @Test func addShapeMismatchNamesBothShapes() async throws {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let a = Tensor.zeros([2, 3]), b = Tensor.zeros([4])
            _ = a + b
        }
        let err = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(err.contains("add"))
        #expect(err.contains("[2, 3]") && err.contains("[4]"), "stderr was: \(err)")
    }

    @Test func matmulMismatchNamesBothShapes() async throws {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([2, 3]).matmul(Tensor.zeros([4, 5]))
        }
        let err = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(err.contains("matmul") && err.contains("[2, 3]") && err.contains("[4, 5]"), "stderr was: \(err)")
    }

    @Test func reshapeMismatchNamesShapes() async throws {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([2, 3]).reshaped([4, 2])
        }
        let err = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(err.contains("[2, 3]") && err.contains("[4, 2]"), "stderr was: \(err)")
    }

    @Test func nonFiniteCheckThrows() {
        let t = Tensor([1, .nan, 3])
        #expect(throws: TensorError.self) { try checkFinite(t, op: "svd") }
    }
}
