import Testing
import Foundation
@testable import DeformNN
import DeformTensor

@Suite struct ModuleTests {
    @Test func placeholder() { #expect(true) }
}
