import DeformTensor

// MARK: - Tensor slots (parameters and buffers)

/// A shared, mutable home for one parameter or buffer.
///
/// Property wrappers hold a reference to a box, so discovery (by reflection, once) yields boxes
/// that optimizers, `valueAndGrad` and checkpoint loading can read and write directly on every
/// step without reflecting again.
public final class TensorBox {
    /// The current value; `nil` only for an optional slot that is unset (e.g. a layer without bias).
    public var value: Tensor?
    /// Whether gradients are taken for this tensor (see ``Module/freeze()``). Buffers are never
    /// trainable.
    public var isTrainable: Bool

    public init(_ value: Tensor?, isTrainable: Bool = true) {
        self.value = value
        self.isTrainable = isTrainable
    }
}

/// Values a ``Parameter`` or ``Buffer`` can wrap: `Tensor` or `Tensor?`.
public protocol TensorSlotValue {
    static func fromSlot(_ value: Tensor?) -> Self
    var slotTensor: Tensor? { get }
}

extension Tensor: TensorSlotValue {
    @inlinable public static func fromSlot(_ value: Tensor?) -> Tensor { value! }
    @inlinable public var slotTensor: Tensor? { self }
}

extension Optional: TensorSlotValue where Wrapped == Tensor {
    @inlinable public static func fromSlot(_ value: Tensor?) -> Tensor? { value }
    @inlinable public var slotTensor: Tensor? { self }
}

/// Wrapper storage that module discovery recognises.
protocol TensorSlotStorage {
    var box: TensorBox { get }
    var isBuffer: Bool { get }
}

/// A trainable tensor of a ``Module``, found by name without registration:
///
/// ```swift
/// final class Affine: Module {
///     @Parameter var scale: Tensor
///     @Parameter var shift: Tensor? = nil
///     init(_ n: Int) { self.scale = .ones([n]) }
/// }
/// ```
///
/// The parameter is named after the property (`scale`); nested modules prefix their property
/// name (`encoder.layers.0.weight`), as in PyTorch's `named_parameters()`.
@propertyWrapper
public struct Parameter<Value: TensorSlotValue>: TensorSlotStorage {
    public let box: TensorBox
    var isBuffer: Bool { false }

    public init(wrappedValue: Value) { box = TensorBox(wrappedValue.slotTensor) }

    public var wrappedValue: Value {
        get { Value.fromSlot(box.value) }
        nonmutating set { box.value = newValue.slotTensor }
    }

    /// The shared box (e.g. `$weight.isTrainable = false`).
    public var projectedValue: TensorBox { box }
}

/// A non-trainable tensor that is part of a module's state and is saved in checkpoints
/// (BatchNorm's running statistics), like PyTorch's registered buffers.
@propertyWrapper
public struct Buffer<Value: TensorSlotValue>: TensorSlotStorage {
    public let box: TensorBox
    var isBuffer: Bool { true }

    public init(wrappedValue: Value) { box = TensorBox(wrappedValue.slotTensor, isTrainable: false) }

    public var wrappedValue: Value {
        get { Value.fromSlot(box.value) }
        nonmutating set { box.value = newValue.slotTensor }
    }

    public var projectedValue: TensorBox { box }
}

// MARK: - Module

/// Base class of layers and models: parameters, buffers and submodules are discovered from
/// stored properties, so optimizers and checkpoints need no registration code.
///
/// Discovery looks at stored properties of the class and its superclasses (in declaration order,
/// superclass first): `@Parameter` and `@Buffer` properties, properties of a `Module` type,
/// `Optional` modules, arrays of modules (named `layers.0`, `layers.1`, ...) and dictionaries of
/// modules keyed by `String` (sorted keys). The result is cached on first use, so the module tree
/// must not be rearranged afterwards (assigning new tensors to parameters is fine); call
/// ``invalidateStructureCache()`` after replacing a submodule.
open class Module {
    /// Training mode (dropout active, batch statistics in BatchNorm); set by ``train(_:)``/``eval()``.
    public private(set) var isTraining = true

    private final class Structure {
        var slots: [(name: String, storage: TensorSlotStorage)] = []
        var children: [(name: String, module: Module)] = []
    }
    private var structureCache: Structure?

    public init() {}

    /// Applies the module to one input. Layers with other signatures define their own
    /// `callAsFunction`; ``Sequential`` requires this one.
    open func callAsFunction(_ x: Tensor) -> Tensor {
        fail(.invalidArgument(op: "\(type(of: self))", message: "this module does not implement callAsFunction(_: Tensor)"))
    }

    // MARK: Discovery

    private var structure: Structure {
        if let s = structureCache { return s }
        let s = Structure()
        var mirrors: [Mirror] = []
        var m: Mirror? = Mirror(reflecting: self)
        while let mm = m { mirrors.append(mm); m = mm.superclassMirror }
        for mirror in mirrors.reversed() {
            for child in mirror.children {
                guard var label = child.label else { continue }
                if label.hasPrefix("$__lazy_storage_$_") { continue }
                if let slot = child.value as? TensorSlotStorage {
                    if label.hasPrefix("_") { label.removeFirst() }
                    s.slots.append((label, slot))
                } else if let module = child.value as? Module {
                    s.children.append((label, module))
                } else if let modules = child.value as? [Module] {
                    for (i, mod) in modules.enumerated() { s.children.append(("\(label).\(i)", mod)) }
                } else if let modules = child.value as? [String: Module] {
                    for key in modules.keys.sorted() { s.children.append(("\(label).\(key)", modules[key]!)) }
                }
            }
        }
        structureCache = s
        return s
    }

    /// Forgets the cached structure of this module and all its submodules (after a submodule
    /// was replaced).
    public func invalidateStructureCache() {
        let old = structureCache
        structureCache = nil
        for c in old?.children ?? [] { c.module.invalidateStructureCache() }
    }

    /// Walks the tree depth-first in declaration order. Shared boxes (tied weights) and modules
    /// reachable twice are reported once, under the first name found.
    private func collectSlots(buffers: Bool) -> [(name: String, box: TensorBox)] {
        var out: [(name: String, box: TensorBox)] = []
        var seenBoxes = Set<ObjectIdentifier>()
        var seenModules = Set<ObjectIdentifier>()
        func visit(_ m: Module, _ prefix: String) {
            guard seenModules.insert(ObjectIdentifier(m)).inserted else { return }
            let s = m.structure
            for (name, slot) in s.slots where slot.isBuffer == buffers {
                guard slot.box.value != nil, seenBoxes.insert(ObjectIdentifier(slot.box)).inserted else { continue }
                out.append((prefix + name, slot.box))
            }
            for (name, child) in s.children { visit(child, prefix + name + ".") }
        }
        visit(self, "")
        return out
    }

    /// Parameter boxes with their dotted names, in ``parameters()`` order.
    public func parameterBoxes() -> [(name: String, box: TensorBox)] { collectSlots(buffers: false) }

    /// Buffer boxes with their dotted names, in ``namedBuffers()`` order.
    public func bufferBoxes() -> [(name: String, box: TensorBox)] { collectSlots(buffers: true) }

    /// All parameters (trainable or frozen) with dotted names, in declaration order.
    public func parameters() -> [(String, Tensor)] { parameterBoxes().map { ($0.name, $0.box.value!) } }

    /// Parameters that receive gradients.
    public func trainableParameters() -> [(String, Tensor)] {
        parameterBoxes().filter { $0.box.isTrainable }.map { ($0.name, $0.box.value!) }
    }

    /// Buffers (non-trainable state such as running statistics) with dotted names.
    public func namedBuffers() -> [(String, Tensor)] { bufferBoxes().map { ($0.name, $0.box.value!) } }

    /// Direct submodules with their property names.
    public func children() -> [(String, Module)] { structure.children.map { ($0.name, $0.module) } }

    /// This module and all submodules with dotted names (`""` for this module).
    public func modules() -> [(String, Module)] {
        var out: [(String, Module)] = []
        var seen = Set<ObjectIdentifier>()
        func visit(_ m: Module, _ name: String) {
            guard seen.insert(ObjectIdentifier(m)).inserted else { return }
            out.append((name, m))
            for (n, c) in m.structure.children { visit(c, name.isEmpty ? n : name + "." + n) }
        }
        visit(self, "")
        return out
    }

    /// Parameters and buffers together: what a checkpoint holds (PyTorch's `state_dict`).
    public func stateTensors() -> [(String, Tensor)] { parameters() + namedBuffers() }

    /// Total number of scalars in all parameters.
    public var parameterCount: Int { parameterBoxes().reduce(0) { $0 + $1.box.value!.count } }

    // MARK: Updating

    /// Replaces parameters by name (the names of ``parameters()``). Every name must exist and each
    /// new value must have the old shape; parameters not named keep their values.
    public func update(parameters: [String: Tensor]) {
        assign(parameters, boxes: parameterBoxes(), what: "parameter")
    }

    /// Replaces buffers by name (the names of ``namedBuffers()``).
    public func update(buffers: [String: Tensor]) {
        assign(buffers, boxes: bufferBoxes(), what: "buffer")
    }

    private func assign(_ values: [String: Tensor], boxes: [(name: String, box: TensorBox)], what: String) {
        let byName = Dictionary(boxes.map { ($0.name, $0.box) }, uniquingKeysWith: { a, _ in a })
        for (name, value) in values {
            guard let box = byName[name] else {
                fail(.invalidArgument(op: "\(type(of: self)).update", message: "no \(what) named '\(name)' (known: \(boxes.map { $0.name }.joined(separator: ", ")))"))
            }
            if box.value!.shape != value.shape {
                fail(.shapeMismatch(op: "\(type(of: self)).update", expected: "\(what) '\(name)' of shape \(box.value!.shape)", found: "\(value.shape)"))
            }
            box.value = value
        }
    }

    // MARK: Modes

    /// Sets training mode on this module and every submodule.
    public func train(_ mode: Bool = true) {
        for (_, m) in modules() { m.isTraining = mode }
    }

    /// Evaluation mode: dropout off, BatchNorm uses running statistics.
    public func eval() { train(false) }

    /// Stops gradients for every parameter of this module (or those whose name starts with one of
    /// `prefixes`, dotted-component-wise).
    public func freeze(_ prefixes: [String]? = nil) { setTrainable(false, prefixes) }

    /// Undoes ``freeze(_:)``.
    public func unfreeze(_ prefixes: [String]? = nil) { setTrainable(true, prefixes) }

    /// A tree of submodules with parameter shapes (override to describe hyper-parameters too).
    open var description: String {
        var lines: [String] = []
        func visit(_ m: Module, _ name: String, _ depth: Int) {
            let pad = String(repeating: "  ", count: depth)
            lines.append(pad + (name.isEmpty ? "" : name + ": ") + "\(type(of: m))")
            for (n, slot) in m.structure.slots {
                if let v = slot.box.value { lines.append(pad + "  " + n + (slot.isBuffer ? " (buffer) " : " ") + "\(v.shape)") }
            }
            for (n, c) in m.structure.children { visit(c, n, depth + 1) }
        }
        visit(self, "", 0)
        return lines.joined(separator: "\n")
    }

    private func setTrainable(_ flag: Bool, _ prefixes: [String]?) {
        for (name, box) in parameterBoxes() where prefixes == nil || prefixes!.contains(where: { nameHasPrefix(name, $0) }) {
            box.isTrainable = flag
        }
    }
}

/// True when `prefix` names `name` or one of its enclosing modules (`"enc"` matches `"enc.w"` but
/// not `"encoder.w"`); a prefix ending in `.` matches textually.
func nameHasPrefix(_ name: String, _ prefix: String) -> Bool {
    if prefix.isEmpty || name == prefix { return true }
    if prefix.hasSuffix(".") { return name.hasPrefix(prefix) }
    return name.hasPrefix(prefix + ".")
}

extension Module: CustomStringConvertible {}

// MARK: - valueAndGrad

/// Evaluates `loss(model)` and the gradient of the (scalar) loss with respect to every trainable
/// parameter, keyed like ``Module/parameters()`` — the MLX-swift pattern:
///
/// ```swift
/// let (loss, grads) = valueAndGrad(model) { m in (m(x) - y).square().mean() }
/// optimizer.update(model: model, gradients: grads)
/// ```
///
/// Parameters are swapped for tracked copies while `loss` runs and restored afterwards (also when
/// it throws), so the model never keeps graph references between steps.
public func valueAndGrad<M: Module>(_ model: M, _ loss: (M) throws -> Tensor) rethrows -> (value: Tensor, gradients: [String: Tensor]) {
    let boxes = model.parameterBoxes().filter { $0.box.isTrainable }
    let originals = boxes.map { $0.box.value! }
    var tracked: [Tensor] = []
    tracked.reserveCapacity(boxes.count)
    for (i, entry) in boxes.enumerated() {
        let t = originals[i].detached().requiringGrad(name: entry.name)
        tracked.append(t)
        entry.box.value = t
    }
    defer { for (i, entry) in boxes.enumerated() { entry.box.value = originals[i] } }
    let value = try loss(model)
    let grads = grad(of: value, wrt: tracked)
    var out: [String: Tensor] = [:]
    out.reserveCapacity(boxes.count)
    for (i, entry) in boxes.enumerated() { out[entry.name] = grads[i] }
    return (value.detached(), out)
}

/// ``valueAndGrad(_:_:)`` with an extra input passed through to `loss` (the input gets no gradient).
public func valueAndGrad<M: Module, Input>(_ model: M, _ input: Input,
                                           _ loss: (M, Input) throws -> Tensor) rethrows -> (value: Tensor, gradients: [String: Tensor]) {
    try valueAndGrad(model) { m in try loss(m, input) }
}
