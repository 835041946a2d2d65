import Foundation
import DeformTensor

/// Parameters (selected by name) that use their own learning rate and, optionally, weight decay.
public struct ParameterGroup {
    /// Shown in errors and state; defaults to a description of the selection.
    public var name: String
    public var learningRate: Float
    /// `nil`: the optimizer's default.
    public var weightDecay: Float?
    public let matches: (String) -> Bool

    /// Parameters under any of the module paths `prefixes` (`"encoder"` selects `encoder.*`).
    public init(prefixes: [String], learningRate: Float, weightDecay: Float? = nil) {
        name = prefixes.joined(separator: ",")
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        matches = { n in prefixes.contains { nameHasPrefix(n, $0) } }
    }

    /// Exactly the parameters named in `names`.
    public init(names: [String], learningRate: Float, weightDecay: Float? = nil) {
        let set = Set(names)
        name = names.joined(separator: ",")
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        matches = { set.contains($0) }
    }

    /// Parameters for which `predicate` holds.
    public init(name: String, learningRate: Float, weightDecay: Float? = nil, where predicate: @escaping (String) -> Bool) {
        self.name = name
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        matches = predicate
    }
}

/// Base of the gradient-descent optimizers: learning rates per parameter group, a schedule, and
/// per-parameter state keyed by parameter name.
///
/// ```swift
/// let opt = Adam(learningRate: 1e-3, groups: [ParameterGroup(prefixes: ["decoder"], learningRate: 1e-4)])
/// opt.schedule = LinearWarmup(steps: 100, then: CosineAnnealing(totalSteps: 10_000))
/// for _ in 0..<steps {
///     let (_, grads) = valueAndGrad(model) { m in loss(m) }
///     opt.update(model: model, gradients: grads)
/// }
/// ```
open class Optimizer {
    /// Learning rate of parameters in no group.
    public var learningRate: Float
    /// Weight decay of parameters whose group does not set one.
    public var weightDecay: Float
    /// Checked in order; a parameter belongs to the first group that matches, else to the default.
    public var groups: [ParameterGroup] { didSet { groupCache.removeAll() } }
    /// Applied to every group's rate at the current ``step``.
    public var schedule: LearningRateSchedule?
    /// Number of updates made (the schedule's clock). Restore it when resuming.
    public var step: Int = 0

    private var groupCache: [String: Int] = [:]

    public init(learningRate: Float, weightDecay: Float, groups: [ParameterGroup]) {
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.groups = groups
    }

    /// Index of the group `name` belongs to (`nil`: the default group).
    public func groupIndex(of name: String) -> Int? {
        if let i = groupCache[name] { return i < 0 ? nil : i }
        let i = groups.firstIndex { $0.matches(name) }
        groupCache[name] = i ?? -1
        return i
    }

    /// The rate the next update applies to parameter `name` (group rate, then schedule).
    public func currentLearningRate(for name: String) -> Float {
        let base = groupIndex(of: name).map { groups[$0].learningRate } ?? learningRate
        return schedule?.learningRate(base: base, step: step) ?? base
    }

    func weightDecay(for name: String) -> Float {
        groupIndex(of: name).flatMap { groups[$0].weightDecay } ?? weightDecay
    }

    /// One optimization step: every trainable parameter of `model` that has an entry in
    /// `gradients` is updated in place; parameters without a gradient are skipped (as PyTorch skips
    /// `grad is None`). A gradient for an unknown name or of the wrong shape is a programmer error.
    public func update(model: Module, gradients: [String: Tensor]) {
        let boxes = model.parameterBoxes()
        if gradients.count > 0 {
            let known = Set(boxes.map { $0.name })
            for name in gradients.keys where !known.contains(name) {
                fail(.invalidArgument(op: "\(type(of: self)).update", message: "gradient for '\(name)', which is not a parameter of the model"))
            }
        }
        for (name, box) in boxes where box.isTrainable {
            guard let g = gradients[name] else { continue }
            guard box.value!.shape == g.shape else {
                fail(.shapeMismatch(op: "\(type(of: self)).update", expected: "gradient of '\(name)' shaped like the parameter \(box.value!.shape)", found: "\(g.shape)"))
            }
            let lr = currentLearningRate(for: name), wd = weightDecay(for: name)
            let n = g.count
            g.withUnsafeBufferPointer { gp in
                box.value!.withUnsafeMutableBufferPointer { pp in
                    apply(name: name, parameter: pp.baseAddress!, gradient: gp.baseAddress!, count: n,
                          learningRate: lr, weightDecay: wd)
                }
            }
        }
        step += 1
    }

    /// Updates one parameter in place. Subclasses implement the rule; `parameter` is uniquely owned.
    open func apply(name: String, parameter: UnsafeMutablePointer<Float>, gradient: UnsafePointer<Float>, count: Int,
                    learningRate: Float, weightDecay: Float) {
        fatalError("\(type(of: self)) does not implement apply(name:parameter:gradient:count:learningRate:weightDecay:)")
    }

    /// Per-parameter state as named tensors (e.g. `exp_avg.<param>`), for checkpoints.
    open func stateTensors() -> [String: Tensor] { [:] }

    /// Restores state from ``stateTensors()``; throws on names or sizes it does not understand.
    open func loadState(_ tensors: [String: Tensor]) throws {
        if let name = tensors.keys.first {
            throw CheckpointError.mismatch(file: nil, missing: [], unexpected: [name], shapeMismatches: [])
        }
    }
}

extension Optimizer {
    /// Writes ``stateTensors()`` and the step counter to a `.safetensors` file (atomically), for
    /// resuming training next to the model checkpoint.
    public func saveState(to url: URL, metadata: [String: String] = [:]) throws {
        var meta = metadata
        meta["optimizer"] = "\(type(of: self))"
        meta["step"] = "\(step)"
        try writeSafetensors(stateTensors(), to: url, metadata: meta)
    }

    /// Restores state and step counter written by ``saveState(to:metadata:)``; throws when the file
    /// was written by another optimizer type or does not parse.
    @discardableResult
    public func loadState(from url: URL) throws -> [String: String] {
        let (tensors, meta) = try readSafetensors(url)
        if let kind = meta["optimizer"], kind != "\(type(of: self))" {
            throw CheckpointError.corrupt(file: url.path, message: "holds \(kind) state, not \(type(of: self)) state")
        }
        guard let stepText = meta["step"], let s = Int(stepText), s >= 0 else {
            throw CheckpointError.corrupt(file: url.path, message: "metadata has no valid 'step' entry")
        }
        do { try loadState(tensors) } catch let error as CheckpointError {
            throw error.naming(file: url.path)
        }
        step = s
        return meta
    }
}

/// Splits `count` element-wise work over the cores when it is large enough to pay off.
@inline(__always)
private func forChunks(_ count: Int, _ body: (Range<Int>) -> Void) {
    if count >= 1 << 16 { Threads.parallelRanges(count, minChunk: 1 << 15, body) } else { body(0..<count) }
}

/// A state slot of `count` floats, shared by reference so in-place updates never copy.
final class StateBuffer {
    var values: [Float]
    init(count: Int) { values = [Float](repeating: 0, count: count) }
    init(_ values: [Float]) { self.values = values }
}

/// Stochastic gradient descent with PyTorch's momentum, dampening, Nesterov and (L2) weight decay:
/// `g ← g + λp`; `b ← μb + (1 - τ)g` (`b ← g` on the first step); `g ← g + μb` (Nesterov) or `b`;
/// `p ← p - η g`.
public final class SGD: Optimizer {
    public var momentum: Float
    public var dampening: Float
    public var nesterov: Bool
    private var buffers: [String: StateBuffer] = [:]

    public init(learningRate: Float, momentum: Float = 0, dampening: Float = 0, nesterov: Bool = false,
                weightDecay: Float = 0, groups: [ParameterGroup] = []) {
        precondition(!nesterov || (momentum > 0 && dampening == 0), "SGD: Nesterov momentum requires momentum > 0 and zero dampening")
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        super.init(learningRate: learningRate, weightDecay: weightDecay, groups: groups)
    }

    public override func apply(name: String, parameter p: UnsafeMutablePointer<Float>, gradient gr: UnsafePointer<Float>,
                               count: Int, learningRate lr: Float, weightDecay wd: Float) {
        let mu = momentum
        if mu == 0 {
            forChunks(count) { r in for i in r { p[i] -= lr * (gr[i] + wd * p[i]) } }
            return
        }
        // A buffer of another size (restored state of another model, or a resized parameter)
        // starts over, as Adam's state does.
        let existing = buffers[name].flatMap { $0.values.count == count ? $0 : nil }
        let first = existing == nil
        let buf = existing ?? StateBuffer(count: count)
        buffers[name] = buf
        let damp = 1 - dampening, nest = nesterov
        buf.values.withUnsafeMutableBufferPointer { bp in
            let b = bp.baseAddress!
            forChunks(count) { r in
                for i in r {
                    let g = gr[i] + wd * p[i]
                    let bi = first ? g : mu * b[i] + damp * g
                    b[i] = bi
                    p[i] -= lr * (nest ? g + mu * bi : bi)
                }
            }
        }
    }

    public override func stateTensors() -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: buffers.map { ("momentum_buffer.\($0.key)", Tensor($0.value.values)) })
    }

    public override func loadState(_ tensors: [String: Tensor]) throws {
        var new: [String: StateBuffer] = [:]
        for (key, t) in tensors {
            guard key.hasPrefix("momentum_buffer.") else {
                throw CheckpointError.mismatch(file: nil, missing: [], unexpected: [key], shapeMismatches: [])
            }
            new[String(key.dropFirst("momentum_buffer.".count))] = StateBuffer(t.scalars)
        }
        buffers = new
    }
}

/// Adam (Kingma & Ba, 2015) exactly as PyTorch computes it, including where `eps` goes:
/// `m ← β₁m + (1-β₁)g`, `v ← β₂v + (1-β₂)g²`,
/// `p ← p - (η / (1-β₁ᵗ)) · m / (√v / √(1-β₂ᵗ) + ε)`, with `t` counted per parameter.
/// `weightDecay` is the coupled L2 term `g ← g + λp` (use ``AdamW`` for decoupled decay).
public class Adam: Optimizer {
    public var beta1: Float
    public var beta2: Float
    public var eps: Float
    let decoupled: Bool

    final class Slot {
        var m: [Float]
        var v: [Float]
        var t: Int = 0
        init(count: Int) { m = [Float](repeating: 0, count: count); v = m }
    }
    var slots: [String: Slot] = [:]

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8,
                weightDecay: Float = 0, groups: [ParameterGroup] = []) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        decoupled = false
        super.init(learningRate: learningRate, weightDecay: weightDecay, groups: groups)
    }

    init(learningRate: Float, beta1: Float, beta2: Float, eps: Float, weightDecay: Float, groups: [ParameterGroup], decoupled: Bool) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.decoupled = decoupled
        super.init(learningRate: learningRate, weightDecay: weightDecay, groups: groups)
    }

    public override func apply(name: String, parameter p: UnsafeMutablePointer<Float>, gradient gr: UnsafePointer<Float>,
                               count: Int, learningRate lr: Float, weightDecay wd: Float) {
        let slot: Slot
        if let s = slots[name], s.m.count == count { slot = s } else { slot = Slot(count: count); slots[name] = slot }
        slot.t += 1
        let t = Double(slot.t)
        let b1 = beta1, b2 = beta2, eps = eps
        let stepSize = Float(Double(lr) / (1 - Foundation.pow(Double(b1), t)))
        let invSqrtBc2 = Float(1 / (1 - Foundation.pow(Double(b2), t)).squareRoot())
        let l2: Float = decoupled ? 0 : wd
        let shrink: Float = decoupled ? 1 - lr * wd : 1
        let c1 = 1 - b1, c2 = 1 - b2
        slot.m.withUnsafeMutableBufferPointer { mp in
            slot.v.withUnsafeMutableBufferPointer { vp in
                let m = mp.baseAddress!, v = vp.baseAddress!
                forChunks(count) { r in
                    // Explicit 8-lane SIMD: the scalar loop does not auto-vectorise (sqrt/div stay scalar).
                    typealias V = SIMD8<Float>
                    var i = r.lowerBound
                    while i + 8 <= r.upperBound {
                        let pi = UnsafeRawPointer(p + i).loadUnaligned(as: V.self) * shrink
                        let g = UnsafeRawPointer(gr + i).loadUnaligned(as: V.self) + l2 * pi
                        let mi = b1 * UnsafeRawPointer(m + i).loadUnaligned(as: V.self) + c1 * g
                        let vi = b2 * UnsafeRawPointer(v + i).loadUnaligned(as: V.self) + c2 * g * g
                        UnsafeMutableRawPointer(m + i).storeBytes(of: mi, as: V.self)
                        UnsafeMutableRawPointer(v + i).storeBytes(of: vi, as: V.self)
                        let upd = pi - stepSize * mi / (vi.squareRoot() * invSqrtBc2 + eps)
                        UnsafeMutableRawPointer(p + i).storeBytes(of: upd, as: V.self)
                        i += 8
                    }
                    while i < r.upperBound {
                        let pi = p[i] * shrink
                        let g = gr[i] + l2 * pi
                        let mi = b1 * m[i] + c1 * g
                        let vi = b2 * v[i] + c2 * g * g
                        m[i] = mi
                        v[i] = vi
                        p[i] = pi - stepSize * mi / (vi.squareRoot() * invSqrtBc2 + eps)
                        i += 1
                    }
                }
            }
        }
    }

    public override func stateTensors() -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (name, s) in slots {
            out["exp_avg.\(name)"] = Tensor(s.m)
            out["exp_avg_sq.\(name)"] = Tensor(s.v)
            out["step.\(name)"] = Tensor(Float(s.t))
        }
        return out
    }

    public override func loadState(_ tensors: [String: Tensor]) throws {
        var new: [String: Slot] = [:]
        var unexpected: [String] = []
        func slot(_ n: String, _ count: Int) -> Slot {
            if let s = new[n] { return s }
            let s = Slot(count: count)
            new[n] = s
            return s
        }
        for (key, t) in tensors {
            if key.hasPrefix("exp_avg_sq.") { slot(String(key.dropFirst(11)), t.count).v = t.scalars }
            else if key.hasPrefix("exp_avg.") { slot(String(key.dropFirst(8)), t.count).m = t.scalars }
            else if key.hasPrefix("step.") {
                // Checked before converting: a NaN or huge Float would trap in Int(_:).
                let v = t.count == 1 ? t.scalars[0] : -1
                guard v >= 0, v < 1e15, v.rounded(.towardZero) == v else {
                    throw CheckpointError.invalidState(file: nil, tensor: key,
                                                       message: "holds \(t.scalars) (shape \(t.shape)); expected one non-negative integer step count")
                }
                slot(String(key.dropFirst(5)), 0).t = Int(v)
            }
            else { unexpected.append(key) }
        }
        var bad: [CheckpointError.ShapeMismatch] = []
        for (n, s) in new where s.m.count != s.v.count {
            bad.append(.init(name: "exp_avg_sq.\(n)", expected: [s.m.count], found: [s.v.count]))
        }
        if !unexpected.isEmpty || !bad.isEmpty {
            throw CheckpointError.mismatch(file: nil, missing: [], unexpected: unexpected.sorted(), shapeMismatches: bad)
        }
        slots = new
    }
}

/// Adam with decoupled weight decay (Loshchilov & Hutter, 2019), PyTorch's `AdamW`:
/// `p ← p (1 - ηλ)` before the Adam step; default `λ = 0.01`.
public final class AdamW: Adam {
    public override init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8,
                weightDecay: Float = 1e-2, groups: [ParameterGroup] = []) {
        super.init(learningRate: learningRate, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay,
                   groups: groups, decoupled: true)
    }
}

/// Scales all gradients together so their global L2 norm is at most `maxNorm` (PyTorch's
/// `clip_grad_norm_`: factor `maxNorm / (norm + 1e-6)`, applied only when below 1) and returns
/// the norm before clipping. A non-finite norm leaves the gradients unchanged.
@discardableResult
public func clipGradNorm(_ grads: inout [String: Tensor], maxNorm: Float) -> Float {
    var total = 0.0
    for g in grads.values {
        g.withUnsafeBufferPointer { p in for x in p { total += Double(x) * Double(x) } }
    }
    let norm = Float(total.squareRoot())
    let coef = maxNorm / (norm + 1e-6)
    if norm.isFinite && coef < 1 {
        for key in grads.keys {
            grads[key]!.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] *= coef } }
        }
    }
    return norm
}

/// The global L2 norm of a set of gradients.
public func globalNorm(_ grads: [String: Tensor]) -> Float {
    var total = 0.0
    for g in grads.values { g.withUnsafeBufferPointer { p in for x in p { total += Double(x) * Double(x) } } }
    return Float(total.squareRoot())
}
