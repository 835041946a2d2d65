/// Errors raised by tensor validation. Programmer errors in op calls (mismatched shapes, axes out
/// of range) trap with the same message via ``fail(_:)``, like Swift's own array bounds checks;
/// the throwing validators are public so callers that handle untrusted input can check first.
public enum TensorError: Error, CustomStringConvertible, Equatable {
    case shapeMismatch(op: String, expected: String, found: String)
    case invalidArgument(op: String, message: String)
    case nonFinite(op: String, message: String)
    case lapack(op: String, info: Int32)

    public var description: String {
        switch self {
        case let .shapeMismatch(op, expected, found):
            return "\(op): expected \(expected), found \(found)"
        case let .invalidArgument(op, message):
            return "\(op): \(message)"
        case let .nonFinite(op, message):
            return "\(op): \(message)"
        case let .lapack(op, info):
            return "\(op): LAPACK returned info = \(info)" + (info > 0 ? " (did not converge / singular)" : " (illegal argument)")
        }
    }
}

/// Traps with a tensor error's message. Used for programmer errors inside non-throwing ops.
public func fail(_ error: TensorError, file: StaticString = #fileID, line: UInt = #line) -> Never {
    fatalError(error.description, file: file, line: line)
}

/// Validates a (possibly negative) axis for a given rank and returns it normalised. A 0-D tensor
/// accepts 0 and -1, as in PyTorch.
@inlinable public func normalizeAxis(_ axis: Int, rank: Int, op: String) -> Int {
    let r = Swift.max(rank, 1)
    let a = axis < 0 ? axis + r : axis
    if a < 0 || a >= r {
        fail(.invalidArgument(op: op, message: "axis \(axis) is out of range for a tensor of rank \(rank)"))
    }
    return a
}

/// NumPy broadcasting of two shapes; throws naming both shapes when they are incompatible.
public func broadcastShapes(_ a: [Int], _ b: [Int], op: String = "broadcast") throws -> [Int] {
    if a == b { return a }
    let n = Swift.max(a.count, b.count)
    var out = [Int](repeating: 1, count: n)
    for i in 0..<n {
        let da = i < n - a.count ? 1 : a[i - (n - a.count)]
        let db = i < n - b.count ? 1 : b[i - (n - b.count)]
        if da == db || db == 1 { out[i] = da }
        else if da == 1 { out[i] = db }
        else {
            throw TensorError.shapeMismatch(op: op, expected: "shapes that broadcast (equal or 1 in each dimension)",
                                            found: "\(a) and \(b)")
        }
    }
    return out
}

/// Checks that an array of values is finite; throws naming the op when it is not.
public func checkFinite(_ t: Tensor, op: String) throws {
    let bad = t.withUnsafeBufferPointer { $0.firstIndex { !$0.isFinite } }
    if let bad { throw TensorError.nonFinite(op: op, message: "input of shape \(t.shape) holds a non-finite value (\(t.scalars[bad])) at flat index \(bad)") }
}
