import CBLAS
import Foundation

/// Reference-counted, uninitialised-on-allocation Float32 buffer shared by tensors.
///
/// Tensors are value types over this storage: copying a `Tensor` shares the buffer, and the first
/// mutation through ``Tensor/withUnsafeMutableBufferPointer(_:)`` copies it if it is shared.
public final class TensorStorage: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    public init(count: Int) {
        _ = TensorStorage.allocatorConfigured
        self.count = count
        // Allocate at least one element so the pointer is always valid.
        pointer = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(count, 1))
    }

    public convenience init(copying other: TensorStorage) {
        self.init(count: other.count)
        pointer.update(from: other.pointer, count: count)
    }

    deinit { pointer.deallocate() }

    /// Training loops free and reallocate the same large buffers every step. glibc serves blocks
    /// above its mmap threshold (at most 32 MB) with fresh mappings and gives them back on free, so
    /// each step page-faults them in again (measured: indexSelect forward+backward 21 ms vs 5 ms).
    /// Keeping large blocks in the heap and not trimming it avoids that.
    static let allocatorConfigured: Void = {
        #if os(Linux)
        _ = mallopt(M_MMAP_THRESHOLD, 1 << 30)
        _ = mallopt(M_TRIM_THRESHOLD, Int32.max)
        #endif
    }()
}

/// A Float32 n-dimensional array, row-major and contiguous, with value semantics and optional
/// participation in reverse-mode differentiation.
///
/// Every op returns a new contiguous tensor. When any input is being differentiated (it carries a
/// ``GradRef``), the op records its vector-Jacobian product so ``grad(of:wrt:)`` can run backward.
public struct Tensor: @unchecked Sendable {
    public private(set) var shape: [Int]
    @usableFromInline internal var storage: TensorStorage
    /// Where this value sits in the differentiation graph; `nil` for constants.
    public internal(set) var gradRef: GradRef?

    /// Wraps existing storage. `storage.count` must equal the product of `shape`.
    public init(shape: [Int], storage: TensorStorage) {
        precondition(storage.count == shapeCount(shape),
                     "Tensor: storage holds \(storage.count) elements but shape \(shape) needs \(shapeCount(shape))")
        self.shape = shape
        self.storage = storage
        self.gradRef = nil
    }

    /// An uninitialised tensor; the caller must write every element.
    public init(uninitializedShape shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(shape)")
        self.init(shape: shape, storage: TensorStorage(count: shapeCount(shape)))
    }

    public init(shape: [Int], repeating value: Float) {
        self.init(uninitializedShape: shape)
        storage.pointer.update(repeating: value, count: storage.count)
    }

    /// Creates a tensor from scalars in row-major order.
    public init(_ scalars: [Float], shape: [Int]) {
        precondition(scalars.count == shapeCount(shape),
                     "Tensor: \(scalars.count) scalars do not fill shape \(shape) (needs \(shapeCount(shape)))")
        self.init(uninitializedShape: shape)
        scalars.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: scalars.count) }
    }

    /// A 1-D tensor.
    public init(_ scalars: [Float]) { self.init(scalars, shape: [scalars.count]) }

    /// A 0-D (scalar) tensor.
    public init(_ scalar: Float) { self.init([scalar], shape: []) }

    /// A 2-D tensor from rows of equal length.
    public init(_ rows: [[Float]]) {
        let cols = rows.first?.count ?? 0
        precondition(rows.allSatisfy { $0.count == cols }, "Tensor: rows have different lengths \(rows.map { $0.count })")
        self.init(rows.flatMap { $0 }, shape: [rows.count, cols])
    }

    /// A tensor from Double scalars (converted to Float32).
    public init(doubles scalars: [Double], shape: [Int]) { self.init(scalars.map { Float($0) }, shape: shape) }

    public var rank: Int { shape.count }
    public var count: Int { storage.count }
    public var isEmpty: Bool { storage.count == 0 }

    /// The scalars in row-major order.
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: storage.count)) }

    /// The single value of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item: tensor of shape \(shape) has \(count) elements, expected 1")
        return storage.pointer[0]
    }

    /// True when this tensor participates in differentiation.
    public var isTracked: Bool { gradRef != nil }

    /// The same values, cut from the differentiation graph (like PyTorch's `detach`).
    public func detached() -> Tensor {
        var t = self
        t.gradRef = nil
        return t
    }

    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer, count: storage.count))
    }

    /// Mutable access; copies the storage first if it is shared (copy-on-write). Mutation is not
    /// differentiable, so a tracked tensor becomes a constant.
    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) { storage = TensorStorage(copying: storage) }
        gradRef = nil
        return try body(UnsafeMutableBufferPointer(start: storage.pointer, count: storage.count))
    }

    /// Read-only raw pointer for kernels (valid while `self` is alive).
    @inlinable public var dataPointer: UnsafeMutablePointer<Float> { storage.pointer }

    /// Element at a multi-index (slow; for tests and small inspections).
    public subscript(index: Int...) -> Float {
        get { storage.pointer[flatIndex(index)] }
        set {
            let i = flatIndex(index)
            withUnsafeMutableBufferPointer { $0[i] = newValue }
        }
    }

    private func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == rank, "subscript: \(index.count) indices for a tensor of shape \(shape)")
        var flat = 0
        for (i, d) in zip(index, shape) {
            precondition(i >= 0 && i < d, "subscript: index \(index) out of range for shape \(shape)")
            flat = flat * d + i
        }
        return flat
    }

    /// Storage identity (for copy-on-write tests).
    public var storageIdentifier: ObjectIdentifier { ObjectIdentifier(storage) }

    internal mutating func setShapeSameCount(_ newShape: [Int]) {
        precondition(shapeCount(newShape) == count)
        shape = newShape
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let limit = 64
        let vals = scalars.prefix(limit).map { String(format: "%.5g", $0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(vals)\(count > limit ? ", ..." : "")])"
    }
}

@inlinable public func shapeCount(_ shape: [Int]) -> Int { shape.reduce(1, *) }

/// Row-major strides of a contiguous shape.
@inlinable public func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var s = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[i] = s
        s *= shape[i]
    }
    return strides
}
