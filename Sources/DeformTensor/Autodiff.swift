import Foundation

/// One recorded op in the differentiation graph: its inputs' positions in the graph and the
/// vector-Jacobian product that maps output cotangents to input cotangents.
public final class GradNode {
    public let name: String
    let inputs: [GradRef?]
    let outputShapes: [[Int]]
    /// `nil` for leaves (variables being differentiated).
    let backward: (([Tensor?]) -> [Tensor?])?

    init(name: String, inputs: [GradRef?], outputShapes: [[Int]], backward: (([Tensor?]) -> [Tensor?])?) {
        self.name = name
        self.inputs = inputs
        self.outputShapes = outputShapes
        self.backward = backward
    }
}

/// A tensor's position in the graph: output `index` of `node`.
public struct GradRef {
    public let node: GradNode
    public let index: Int
}

/// Switch for recording. Backward passes run with recording off (no higher-order gradients).
///
/// The switch is task-local (thread-local outside tasks), so one thread's `withoutGrad` — e.g. a
/// gradient check — does not stop recording in code running concurrently on another thread.
public enum GradMode {
    @TaskLocal static var enabled = true

    public static var isEnabled: Bool { enabled }

    /// Runs `body` without recording any op (like `torch.no_grad()`).
    public static func withoutGrad<R>(_ body: () throws -> R) rethrows -> R {
        try $enabled.withValue(false, operation: body)
    }
}

extension Tensor {
    /// A copy of this tensor that is a fresh leaf of the graph: gradients flow to it.
    public func requiringGrad(name: String = "leaf") -> Tensor {
        var t = self
        t.gradRef = GradRef(node: GradNode(name: name, inputs: [], outputShapes: [shape], backward: nil), index: 0)
        return t
    }

    /// Records `output = op(inputs)` with its VJP. Returns `output` unchanged when nothing needs
    /// a gradient (so constant computations cost nothing extra). `backward` receives the output
    /// cotangent and returns one cotangent per input (`nil` = zero), each shaped like its input.
    @inlinable
    public static func record(_ name: String, output: Tensor, inputs: [Tensor],
                              backward: @escaping (Tensor) -> [Tensor?]) -> Tensor {
        guard GradMode.isEnabled, inputs.contains(where: { $0.gradRef != nil }) else { return output }
        let shape = output.shape
        return recordMulti(name, outputs: [output], inputs: inputs) { cots in
            backward(cots[0] ?? Tensor.zeros(shape))
        }[0]
    }

    /// Multi-output form of ``record(_:output:inputs:backward:)``; `backward` gets one cotangent
    /// per output, `nil` where no gradient flowed.
    public static func recordMulti(_ name: String, outputs: [Tensor], inputs: [Tensor],
                                   backward: @escaping ([Tensor?]) -> [Tensor?]) -> [Tensor] {
        guard GradMode.isEnabled, inputs.contains(where: { $0.gradRef != nil }) else { return outputs }
        let node = GradNode(name: name, inputs: inputs.map { $0.gradRef },
                            outputShapes: outputs.map { $0.shape }, backward: backward)
        return outputs.enumerated().map { i, o in
            var t = o
            t.gradRef = GradRef(node: node, index: i)
            return t
        }
    }
}

/// Registers a differentiable op with a hand-written backward — the way renderers and solvers
/// plug into the engine.
///
/// `forward` runs on detached copies of `inputs` (no recording inside). `backward` receives the
/// detached inputs, the forward outputs and one cotangent per output (zero-filled where no gradient
/// flowed), and returns one cotangent per input shaped like that input (`nil` = no gradient).
///
/// ```swift
/// let y = customOp("cube", inputs: [x], forward: { [$0[0] * $0[0] * $0[0]] },
///                  backward: { xs, _, g in [3 * xs[0] * xs[0] * g[0]] })[0]
/// ```
public func customOp(_ name: String, inputs: [Tensor],
                     forward: ([Tensor]) throws -> [Tensor],
                     backward: @escaping (_ inputs: [Tensor], _ outputs: [Tensor], _ cotangents: [Tensor]) -> [Tensor?]) rethrows -> [Tensor] {
    let plain = inputs.map { $0.detached() }
    let outs = try GradMode.withoutGrad { try forward(plain) }.map { $0.detached() }
    return Tensor.recordMulti(name, outputs: outs, inputs: inputs) { cots in
        let full = zip(cots, outs).map { c, o in c ?? Tensor.zeros(o.shape) }
        return backward(plain, outs, full)
    }
}

/// Reverse-mode gradients of `root` with respect to each tensor in `wrt`.
///
/// `root` is usually a scalar loss; for a non-scalar root the seed defaults to ones, i.e. the
/// gradient of `root.sum()`. Tensors of `wrt` that `root` does not depend on get zeros.
public func grad(of root: Tensor, wrt: [Tensor], seed: Tensor? = nil) -> [Tensor] {
    guard let rootRef = root.gradRef else { return wrt.map { Tensor.zeros($0.shape) } }
    if let seed, seed.shape != root.shape {
        fail(.shapeMismatch(op: "grad", expected: "seed of the root's shape \(root.shape)", found: "\(seed.shape)"))
    }
    return GradMode.withoutGrad {
        // Topological order by iterative depth-first search.
        var order: [GradNode] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(GradNode, Bool)] = [(rootRef.node, false)]
        while let (node, expanded) = stack.popLast() {
            if expanded { order.append(node); continue }
            if !visited.insert(ObjectIdentifier(node)).inserted { continue }
            stack.append((node, true))
            for case let ref? in node.inputs where !visited.contains(ObjectIdentifier(ref.node)) {
                stack.append((ref.node, false))
            }
        }
        let wanted = Set(wrt.compactMap { $0.gradRef.map { ObjectIdentifier($0.node) } })
        var cot: [ObjectIdentifier: [Tensor?]] = [:]
        var rootCots = [Tensor?](repeating: nil, count: rootRef.node.outputShapes.count)
        rootCots[rootRef.index] = seed ?? Tensor.ones(root.shape)
        cot[ObjectIdentifier(rootRef.node)] = rootCots
        for node in order.reversed() {
            let id = ObjectIdentifier(node)
            guard let outCots = cot[id], let backward = node.backward else { continue }
            if !wanted.contains(id) { cot[id] = nil }
            let inCots = backward(outCots)
            precondition(inCots.count == node.inputs.count,
                         "\(node.name): backward returned \(inCots.count) cotangents for \(node.inputs.count) inputs")
            for (ref, g) in zip(node.inputs, inCots) {
                guard let ref, let g else { continue }
                let expected = ref.node.outputShapes[ref.index]
                if g.shape != expected {
                    fail(.shapeMismatch(op: "\(node.name) backward", expected: "cotangent of shape \(expected)", found: "\(g.shape)"))
                }
                let key = ObjectIdentifier(ref.node)
                var list = cot[key] ?? [Tensor?](repeating: nil, count: ref.node.outputShapes.count)
                if let existing = list[ref.index] { list[ref.index] = existing + g } else { list[ref.index] = g }
                cot[key] = list
            }
        }
        return wrt.map { t in
            guard let ref = t.gradRef, let g = cot[ObjectIdentifier(ref.node)]?[ref.index] else { return Tensor.zeros(t.shape) }
            return g.detached()
        }
    }
}

/// Gradient of `root` with respect to one tensor.
public func grad(of root: Tensor, wrt: Tensor) -> Tensor { grad(of: root, wrt: [wrt])[0] }

/// Evaluates `f` at `inputs` and returns its value with the gradient for each input
/// (the functional form; `valueAndGrad(model)` in DeformNN does the same for modules).
public func valueAndGrad(at inputs: [Tensor], _ f: ([Tensor]) throws -> Tensor) rethrows -> (value: Tensor, gradients: [Tensor]) {
    let vars = inputs.map { $0.requiringGrad() }
    let value = try f(vars)
    return (value.detached(), grad(of: value, wrt: vars))
}
