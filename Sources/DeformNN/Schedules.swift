import Foundation

/// A learning rate as a function of the optimizer step (the number of updates already made), for
/// a parameter group whose unscheduled rate is `base`. Schedules are pure: query any step in any
/// order, which is what resuming from a checkpoint needs.
public protocol LearningRateSchedule {
    func learningRate(base: Float, step: Int) -> Float
}

/// `base · gamma^⌊step / stepSize⌋` (PyTorch's `StepLR`).
public struct StepDecay: LearningRateSchedule {
    public var stepSize: Int
    public var gamma: Float
    public init(stepSize: Int, gamma: Float = 0.1) {
        precondition(stepSize > 0, "StepDecay: stepSize must be positive, got \(stepSize)")
        self.stepSize = stepSize
        self.gamma = gamma
    }
    public func learningRate(base: Float, step: Int) -> Float {
        base * Float(Foundation.pow(Double(gamma), Double(Swift.max(step, 0) / stepSize)))
    }
}

/// `base · gamma^(number of milestones <= step)` (PyTorch's `MultiStepLR`).
public struct MultiStepDecay: LearningRateSchedule {
    public var milestones: [Int]
    public var gamma: Float
    public init(milestones: [Int], gamma: Float = 0.1) { self.milestones = milestones.sorted(); self.gamma = gamma }
    public func learningRate(base: Float, step: Int) -> Float {
        base * Float(Foundation.pow(Double(gamma), Double(milestones.filter { $0 <= step }.count)))
    }
}

/// `base · gamma^step` (PyTorch's `ExponentialLR`).
public struct ExponentialDecay: LearningRateSchedule {
    public var gamma: Float
    public init(gamma: Float) { self.gamma = gamma }
    public func learningRate(base: Float, step: Int) -> Float {
        base * Float(Foundation.pow(Double(gamma), Double(Swift.max(step, 0))))
    }
}

/// `η_min + (base - η_min)(1 + cos(π t / T)) / 2` for `t <= T` (PyTorch's `CosineAnnealingLR`,
/// `T_max = totalSteps`). After `T` the rate stays at `η_min` instead of PyTorch's periodic
/// continuation, which is never what a training run wants.
public struct CosineAnnealing: LearningRateSchedule {
    public var totalSteps: Int
    public var minLearningRate: Float
    public init(totalSteps: Int, minLearningRate: Float = 0) {
        precondition(totalSteps > 0, "CosineAnnealing: totalSteps must be positive, got \(totalSteps)")
        self.totalSteps = totalSteps
        self.minLearningRate = minLearningRate
    }
    public func learningRate(base: Float, step: Int) -> Float {
        let t = Double(Swift.min(Swift.max(step, 0), totalSteps)) / Double(totalSteps)
        return Float(Double(minLearningRate) + (Double(base) - Double(minLearningRate)) * (1 + Foundation.cos(Double.pi * t)) / 2)
    }
}

/// Linear warm-up over `steps` updates from `startFactor · r₀` to `r₀`, then `after` (if any)
/// counted from the end of the warm-up, where `r₀` is `after`'s rate at its step 0 (or `base`).
/// This is PyTorch's `LinearLR(start_factor, total_iters=steps)` chained with `SequentialLR`.
public struct LinearWarmup: LearningRateSchedule {
    public var steps: Int
    public var startFactor: Float
    public var after: LearningRateSchedule?
    public init(steps: Int, startFactor: Float = 0, then after: LearningRateSchedule? = nil) {
        precondition(steps >= 0, "LinearWarmup: steps must be >= 0")
        self.steps = steps
        self.startFactor = startFactor
        self.after = after
    }
    public func learningRate(base: Float, step: Int) -> Float {
        if step >= steps { return after?.learningRate(base: base, step: step - steps) ?? base }
        let r0 = after?.learningRate(base: base, step: 0) ?? base
        let f = Double(startFactor) + (1 - Double(startFactor)) * Double(Swift.max(step, 0)) / Double(steps)
        return Float(Double(r0) * f)
    }
}

/// Any function of `(base, step)`, like PyTorch's `LambdaLR` with a multiplicative factor.
public struct LambdaSchedule: LearningRateSchedule {
    public let factor: (Int) -> Float
    public init(factor: @escaping (Int) -> Float) { self.factor = factor }
    public func learningRate(base: Float, step: Int) -> Float { base * factor(step) }
}
