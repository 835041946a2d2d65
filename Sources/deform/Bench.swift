import ArgumentParser
import CBLAS
import DeformNN
import DeformTensor
import Foundation

/// `deform bench`: micro-benchmarks of the engine, printed as JSON (numbers, never assertions).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run engine micro-benchmarks and print a JSON report.",
        discussion: "Build with `swift build -c release` first: debug builds are 10-100x slower on numeric code.")

    @Option(help: "Repetitions per measurement (the best and median are reported).")
    var repeats = 5

    @Flag(help: "Smaller sizes for a quick smoke run.")
    var quick = false

    @Option(help: "Write the JSON report to this file as well as stdout.")
    var output: String?

    enum Section: String, CaseIterable, ExpressibleByArgument {
        case sgemm, conv, mlp, ops, overhead, volume, grids, raster, splat
    }

    @Option(name: .customLong("only"), parsing: .upToNextOption,
            help: "Run only these sections (\(Section.allCases.map(\.rawValue).joined(separator: ", "))).")
    var only: [Section] = []

    func validate() throws {
        if repeats < 1 { throw ValidationError("--repeats must be at least 1, got \(repeats)") }
    }

    func run() throws {
        #if DEBUG
        FileHandle.standardError.write("warning: this is a debug build; numbers are not representative (use -c release)\n".data(using: .utf8)!)
        #endif
        var report = BenchReport(machine: .current())
        let run = Set(only.isEmpty ? Section.allCases : only)
        if run.contains(.sgemm) {
            for n in quick ? [256, 512] : [256, 1024, 2048] {
                progress("sgemm \(n)x\(n)")
                report.sgemm.append(benchSgemm(n: n, repeats: repeats))
            }
        }
        if run.contains(.conv) {
            progress("conv2d forward+backward")
            report.conv2d = benchConv(batch: quick ? 4 : 16, repeats: repeats)
        }
        if run.contains(.mlp) {
            progress("MLP training step")
            report.mlpTrainingStep = benchMLPStep(steps: quick ? 50 : 500)
        }
        if run.contains(.ops) {
            progress("op throughput")
            report.ops = benchOps(n: quick ? 256 : 1024, repeats: repeats)
        }
        if run.contains(.overhead) {
            progress("elementwise overhead")
            report.elementwiseOverhead = benchOverhead(iterations: quick ? 20_000 : 200_000)
        }
        if run.contains(.volume) {
            progress("volume rendering forward+backward, fused vs composed")
            report.volumeRendering = benchVolumeRendering(rays: quick ? 1024 : 16384, samples: 64, repeats: repeats)
        }
        if run.contains(.grids) {
            progress("hash grid encoding forward+backward")
            report.hashGrid = benchHashGrid(points: quick ? 1 << 12 : 1 << 16, repeats: repeats)
        }
        if run.contains(.splat) {
            progress("Gaussian splatting forward+backward")
            report.gaussianSplatting = benchSplatting(gaussians: quick ? 10_000 : 100_000, size: quick ? 128 : 256, repeats: repeats)
        }
        if run.contains(.raster) {
            progress("mesh rasterisation, 20k triangles at 512x512")
            report.meshRaster = quick ? benchRaster(size: 128, rings: 25, segments: 50, repeats: repeats)
                : benchRaster(size: 512, rings: 71, segments: 142, repeats: repeats)
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try enc.encode(report)
        print(String(decoding: data, as: UTF8.self))
        if let output {
            try data.write(to: URL(fileURLWithPath: output), options: .atomic)
        }
    }
}

func progress(_ s: String) {
    FileHandle.standardError.write("bench: \(s)\n".data(using: .utf8)!)
}

struct BenchReport: Encodable {
    var machine: MachineInfo
    var sgemm: [SgemmResult] = []
    var elementwiseOverhead: OverheadResult? = nil
    var ops: [OpResult] = []
    var conv2d: ConvResult? = nil
    var mlpTrainingStep: MLPStepResult? = nil
    var volumeRendering: VolumeRenderResult? = nil
    var hashGrid: HashGridBenchResult? = nil
    var gaussianSplatting: SplatBenchResult? = nil
    var meshRaster: RasterBenchResult? = nil
}

struct MachineInfo: Encodable {
    var cores: Int
    var blasCoreName: String
    var blasThreads: Int
    var build: String

    static func current() -> MachineInfo {
        #if DEBUG
        let build = "debug"
        #else
        let build = "release"
        #endif
        return MachineInfo(cores: Threads.coreCount, blasCoreName: Threads.blasCoreName,
                           blasThreads: Threads.blasThreads, build: build)
    }
}

/// Wall-clock timings of `body` (seconds): `warmup` untimed calls, then `repeats` timed ones.
func timings(repeats: Int, warmup: Int = 1, _ body: () -> Void) -> [Double] {
    for _ in 0..<warmup { body() }
    return (0..<Swift.max(repeats, 1)).map { _ in
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
    }
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : 0.5 * (s[s.count / 2 - 1] + s[s.count / 2])
}

struct SgemmResult: Encodable {
    var n: Int
    var tensorGflops: Double
    var rawGflops: Double
    /// Tensor API throughput relative to raw `cblas_sgemm` (best of repeats each).
    var tensorOverRaw: Double
}

func benchSgemm(n: Int, repeats: Int) -> SgemmResult {
    var rng = RandomGenerator(seed: 0)
    let a = rng.normal([n, n]), b = rng.normal([n, n])
    let flops = 2 * Double(n) * Double(n) * Double(n)
    var c = Tensor(uninitializedShape: [n, n])
    let reps = n <= 256 ? repeats * 20 : repeats
    // Interleave the two measurements so frequency/thermal drift affects both alike.
    var tensorTimes: [Double] = [], rawTimes: [Double] = []
    _ = a.matmul(b)
    for _ in 0..<reps {
        tensorTimes += timings(repeats: 1, warmup: 0) { c = a.matmul(b) }
        rawTimes += timings(repeats: 1, warmup: 0) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1,
                        a.dataPointer, Int32(n), b.dataPointer, Int32(n), 0, c.dataPointer, Int32(n))
        }
    }
    let t = flops / tensorTimes.min()! * 1e-9, r = flops / rawTimes.min()! * 1e-9
    return SgemmResult(n: n, tensorGflops: t, rawGflops: r, tensorOverRaw: t / r)
}

struct OverheadResult: Encodable {
    /// `y = x + x` on a 4-element tensor, nothing tracked.
    var untrackedAddNanoseconds: Double
    /// The same with `x` being differentiated (records a VJP per op).
    var trackedAddNanoseconds: Double
    /// Forward + backward of `sum(x * x + x)` on a 4-element tensor, per op of the graph.
    var backwardPerOpNanoseconds: Double
}

func benchOverhead(iterations: Int) -> OverheadResult {
    let x = Tensor([1, 2, 3, 4])
    var sink: Float = 0
    let untracked = timings(repeats: 3) {
        for _ in 0..<iterations { sink += (x + x).dataPointer[0] }
    }.min()! / Double(iterations)
    let xt = x.requiringGrad()
    let tracked = timings(repeats: 3) {
        for _ in 0..<iterations { sink += (xt + xt).dataPointer[0] }
    }.min()! / Double(iterations)
    let n = Swift.max(iterations / 10, 1)
    let backward = timings(repeats: 3) {
        for _ in 0..<n {
            let g = grad(of: (xt * xt + xt).sum(), wrt: xt)
            sink += g.dataPointer[0]
        }
    }.min()! / Double(n) / 3
    if sink == .infinity { print(sink) }
    return OverheadResult(untrackedAddNanoseconds: untracked * 1e9, trackedAddNanoseconds: tracked * 1e9,
                          backwardPerOpNanoseconds: backward * 1e9)
}

struct OpResult: Encodable {
    var op: String
    var shape: [Int]
    var milliseconds: Double
}

/// Throughput of common ops on an n x n tensor (best of repeats), forward only.
func benchOps(n: Int, repeats: Int) -> [OpResult] {
    var rng = RandomGenerator(seed: 3)
    let x = rng.normal([n, n]), row = rng.normal([n]), col = rng.normal([n, 1])
    var sink: Float = 0
    let cases: [(String, () -> Tensor)] = [
        ("exp", { x.exp() }),
        ("add same shape", { x + x }),
        ("add row broadcast", { x + row }),
        ("add column broadcast", { x + col }),
        ("sum axis 0", { x.sum(axis: 0) }),
        ("sum axis 1", { x.sum(axis: 1) }),
        ("sum all", { x.sum() }),
        ("transpose copy", { x.T }),
        ("softmax last axis", { x.softmax(axis: -1) }),
        ("relu", { x.relu() }),
    ]
    return cases.map { name, f in
        let t = timings(repeats: repeats * 4) { sink += f().dataPointer[0] }.min()!
        if sink.isNaN { print(sink) }
        return OpResult(op: name, shape: [n, n], milliseconds: t * 1e3)
    }
}

struct ConvResult: Encodable {
    var input: [Int]
    var weight: [Int]
    var padding: Int
    var forwardMilliseconds: Double
    var forwardMillisecondsMedian: Double
    /// Forward plus gradients w.r.t. input, weight and bias.
    var forwardBackwardMilliseconds: Double
    var forwardBackwardMillisecondsMedian: Double
}

func benchConv(batch: Int, repeats: Int) -> ConvResult {
    var rng = RandomGenerator(seed: 5)
    let x = rng.normal([batch, 64, 64, 64]), w = rng.normal([64, 64, 3, 3], std: 0.05), b = rng.normal([64])
    var sink: Float = 0
    let fwd = timings(repeats: repeats) { sink += conv2d(x, weight: w, bias: b, padding: (1, 1)).dataPointer[0] }
    let xv = x.requiringGrad(), wv = w.requiringGrad(), bv = b.requiringGrad()
    let both = timings(repeats: repeats) {
        let y = conv2d(xv, weight: wv, bias: bv, padding: (1, 1))
        // Seed with ones via sum: the backward of sum is a broadcast, cheap next to the conv.
        let g = grad(of: y.sum(), wrt: [xv, wv, bv])
        sink += g[0].dataPointer[0] + g[1].dataPointer[0] + g[2].dataPointer[0]
    }
    if sink.isNaN { print(sink) }
    return ConvResult(input: x.shape, weight: w.shape, padding: 1,
                      forwardMilliseconds: fwd.min()! * 1e3, forwardMillisecondsMedian: median(fwd) * 1e3,
                      forwardBackwardMilliseconds: both.min()! * 1e3, forwardBackwardMillisecondsMedian: median(both) * 1e3)
}

struct MLPStepResult: Encodable {
    var widths: [Int]
    var batch: Int
    var parameters: Int
    /// Forward, backward and Adam update, best of 5 runs of `steps` steps, per step.
    var microsecondsPerStep: Double
    var microsecondsPerStepMedian: Double
    var lossFirst: Float
    var lossLast: Float
}

/// One training step of an MLP of the size the NRSfM networks use: forward, MSE loss, backward,
/// Adam update.
func benchMLPStep(steps: Int) -> MLPStepResult {
    let widths = [82, 256, 128, 64, 32, 16, 123]
    let batch = 128
    var rng = RandomGenerator(seed: 9)
    let model = MLP(widths: widths, rng: &rng)
    let optimizer = Adam(learningRate: 1e-3)
    let x = rng.normal([batch, widths[0]]), target = rng.normal([batch, widths.last!])
    var first: Float = .nan, last: Float = .nan
    func step() {
        let (loss, grads) = valueAndGrad(model) { m in (m(x) - target).square().mean() }
        optimizer.update(model: model, gradients: grads)
        last = loss.item
        if first.isNaN { first = last }
    }
    let runs = timings(repeats: 5) { for _ in 0..<steps { step() } }.map { $0 / Double(steps) }
    return MLPStepResult(widths: widths, batch: batch, parameters: model.parameterCount,
                         microsecondsPerStep: runs.min()! * 1e6, microsecondsPerStepMedian: median(runs) * 1e6,
                         lossFirst: first, lossLast: last)
}
