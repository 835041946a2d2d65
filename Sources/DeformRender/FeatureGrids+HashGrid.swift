import DeformTensor
import Foundation

extension FeatureGrids {
    /// The multiresolution hash encoding of Instant-NGP (Müller et al. 2022, Sec. 3).
    ///
    /// Level l is a lattice of `N_l = ⌊N_min · b^l⌋` cells per axis (Eq. 2) over the unit cube. A
    /// point is scaled to `x · N_l`; the eight vertices of its cell are looked up in the level's
    /// table of T entries of F features and trilinearly interpolated. A vertex `(i, j, k)` is
    /// stored at the dense index `i + (N_l + 1)(j + (N_l + 1) k)` when the whole lattice fits
    /// (`(N_l + 1)³ ≤ T`, the coarse levels), otherwise at the spatial hash (Eq. 4)
    ///
    ///     (i · 1 ⊕ j · 2654435761 ⊕ k · 805459861) mod T
    ///
    /// in wrapping 32-bit arithmetic. Colliding vertices share an entry; their gradients add up,
    /// and the points that matter most to the loss dominate it (Sec. 3).
    ///
    /// - Parameters:
    ///   - tables: `[L, T, F]`, level-major (see ``HashGridConfig/initialTables(rng:)`` for the
    ///     paper's initialisation).
    ///   - points: `[N, 3]` in the unit cube `[0, 1]³`; coordinates outside are clamped onto it.
    ///   - baseResolution: `N_min`, the coarsest level's cells per axis.
    ///   - growth: the per-level scale `b` (Eq. 3, ``HashGridConfig/growth``).
    /// - Returns: `[N, L·F]`, level l's features in columns `l·F ..< (l+1)·F`; differentiable
    ///   with respect to `tables` and `points`.
    /// - Throws: ``TensorError`` when a shape is wrong, a point holds NaN or infinity, or a level's
    ///   resolution falls outside `1 ... 2^24` (beyond 2^24 a Float32 position has no fractional
    ///   bits left to interpolate with).
    public static func hashGrid(tables: Tensor, points: Tensor, baseResolution: Int, growth: Float) throws -> Tensor {
        let op = "FeatureGrids.hashGrid"
        guard tables.rank == 3, !tables.shape.contains(0) else {
            throw TensorError.shapeMismatch(op: op, expected: "tables [L, T, F] with L, T, F at least 1", found: "\(tables.shape)")
        }
        try checkPoints(points, op: op)
        let levels = try hashLevels(tables.shape, baseResolution: baseResolution, growth: growth, op: op)
        let n = points.shape[0], l = tables.shape[0], f = tables.shape[2]
        let tableStride = tables.shape[1] * f, width = l * f
        let out = Tensor(uninitializedShape: [n, width])
        let tp = tables.dataPointer, pp = points.dataPointer, o0 = out.dataPointer
        Threads.parallelRanges(n, minChunk: Swift.max(1, parallelWork / (8 * width))) { range in
            let taps = UnsafeMutablePointer<HashTaps>.allocate(capacity: hashBlock)
            defer { taps.deallocate() }
            // Level by level, so one table at a time is hot in the cache.
            for level in 0..<l {
                let lv = levels[level], table = tp + level * tableStride
                forEachBlock(range) { block in
                    for i in block { taps[i - block.lowerBound] = HashTaps(pp + 3 * i, lv, f) }
                    for i in block {
                        let t = taps + (i - block.lowerBound)
                        let o = o0 + i * width + level * f
                        for j in 0..<f {
                            var s: Float = 0
                            for k in 0..<8 { s += t.pointee.w.w[k] * table[t.pointee.offsets[k] + j] }
                            o[j] = s
                        }
                    }
                }
            }
        }
        let tablesD = tables.detached(), pointsD = points.detached()
        let needTables = tables.isTracked, needPoints = points.isTracked
        return Tensor.record("FeatureGrids.hashGrid", output: out, inputs: [tables, points]) { g in
            let grads = hashGridBackward(tables: tablesD, points: pointsD, gOut: g, levels: levels,
                                         needTables: needTables, needPoints: needPoints)
            return [grads.tables, grads.points]
        }
    }

    /// Cells per axis of each level, `⌊N_min · b^l⌋` (Instant-NGP Eq. 2), computed in Double.
    public static func hashGridResolutions(levels: Int, baseResolution: Int, growth: Float) -> [Int] {
        (0..<Swift.max(levels, 0)).map { l in
            let r = (Double(baseResolution) * Foundation.pow(Double(growth), Double(l))).rounded(.down)
            return r.isFinite && Swift.abs(r) < 0x1p62 ? Int(r) : (r < 0 ? Int.min : Int.max)
        }
    }

    /// The largest resolution a hash-grid level may have (see ``hashGrid(tables:points:baseResolution:growth:)``).
    static let maxHashResolution = 1 << 24

    static func hashLevels(_ shape: [Int], baseResolution: Int, growth: Float, op: String) throws -> [HashLevel] {
        guard growth.isFinite, growth > 0 else {
            throw TensorError.invalidArgument(op: op, message: "growth must be finite and positive, got \(growth)")
        }
        let resolutions = hashGridResolutions(levels: shape[0], baseResolution: baseResolution, growth: growth)
        for (l, r) in resolutions.enumerated() where r < 1 || r > maxHashResolution {
            throw TensorError.invalidArgument(op: op, message: "level \(l) has resolution \(r) (baseResolution \(baseResolution), "
                                              + "growth \(growth)); every level needs 1 ... \(maxHashResolution) cells per axis")
        }
        return resolutions.map { HashLevel(resolution: $0, tableSize: shape[1]) }
    }

    /// The VJP of ``hashGrid(tables:points:baseResolution:growth:)``: the table gradient is a
    /// scatter-add of `w_k ḡ` onto the eight looked-up entries (colliding vertices add up), the
    /// point gradient `Σ_k (∂w_k/∂x) ⟨ḡ, v_k⟩`.
    ///
    /// With the tables tracked the levels are dealt out to the threads (level l to thread
    /// l mod threads, which interleaves cheap coarse and costly fine levels); each thread scatters
    /// into its own levels' tables only, so there are no races and no extra table-sized buffers.
    static func hashGridBackward(tables: Tensor, points: Tensor, gOut: Tensor, levels: [HashLevel],
                                 needTables: Bool, needPoints: Bool) -> (tables: Tensor?, points: Tensor?) {
        let n = points.shape[0], l = tables.shape[0], f = tables.shape[2]
        let tableStride = tables.shape[1] * f
        let tableGrad = needTables ? Tensor(uninitializedShape: tables.shape) : nil
        let pointGrad = needPoints ? Tensor.zeros([n, 3]) : nil
        let tp = tables.dataPointer, pp = points.dataPointer, gy = gOut.dataPointer
        guard let tableGrad else {
            let pg = pointGrad?.dataPointer
            Threads.parallelRanges(n, minChunk: Swift.max(1, parallelWork / (8 * l * f))) { range in
                for level in 0..<l {
                    hashBackwardPass(tp + level * tableStride, pp, gy, levels[level], level: level, levels: l, features: f,
                                     points: range, tableGrad: nil, pointGrad: pg)
                }
            }
            return (nil, pointGrad)
        }
        let chunks = n * l * f >= parallelWork ? Swift.min(Threads.coreCount, l) : 1
        let partials = PointGradPartials(pointGrad, chunks: chunks)
        let gg = tableGrad.dataPointer
        Threads.parallelRanges(chunks) { owners in
            for t in owners {
                for level in stride(from: t, to: l, by: chunks) {
                    let dst = gg + level * tableStride
                    dst.update(repeating: 0, count: tableStride)
                    hashBackwardPass(tp + level * tableStride, pp, gy, levels[level], level: level, levels: l, features: f,
                                     points: 0..<n, tableGrad: dst, pointGrad: partials.pointer(t))
                }
            }
        }
        partials.reduce()
        return (tableGrad, pointGrad)
    }

    /// One level of the hash-grid backward for the points in `points`.
    @inline(__always)
    private static func hashBackwardPass(_ table: UnsafeMutablePointer<Float>, _ pp: UnsafeMutablePointer<Float>,
                                         _ gy: UnsafeMutablePointer<Float>, _ lv: HashLevel, level: Int, levels: Int, features f: Int,
                                         points: Range<Int>, tableGrad: UnsafeMutablePointer<Float>?,
                                         pointGrad: UnsafeMutablePointer<Float>?) {
        let width = levels * f
        let taps = UnsafeMutablePointer<HashTaps>.allocate(capacity: hashBlock)
        defer { taps.deallocate() }
        forEachBlock(points) { block in
            for i in block { taps[i - block.lowerBound] = HashTaps(pp + 3 * i, lv, f) }
            for i in block {
                let t = taps + (i - block.lowerBound)
                let g = gy + i * width + level * f
                if let tableGrad {
                    for k in 0..<8 {
                        let wk = t.pointee.w.w[k], dst = tableGrad + t.pointee.offsets[k]
                        for j in 0..<f { dst[j] += wk * g[j] }
                    }
                }
                if let pointGrad {
                    var dots = SIMD8<Float>()
                    for k in 0..<8 {
                        let src = table + t.pointee.offsets[k]
                        var s: Float = 0
                        for j in 0..<f { s += g[j] * src[j] }
                        dots[k] = s
                    }
                    let d = t.pointee.w.pointGradient(dots)
                    pointGrad[3 * i] += d.x * t.pointee.tx.df
                    pointGrad[3 * i + 1] += d.y * t.pointee.ty.df
                    pointGrad[3 * i + 2] += d.z * t.pointee.tz.df
                }
            }
        }
    }

    /// Points per block in the hash-grid kernels, which first compute every index and weight of
    /// a block and then do its table reads: with the arithmetic out of the way the CPU keeps many
    /// more of the reads (mostly cache misses on the fine levels) in flight at once.
    static let hashBlock = 32

    @inline(__always)
    private static func forEachBlock(_ range: Range<Int>, _ body: (Range<Int>) -> Void) {
        var start = range.lowerBound
        while start < range.upperBound {
            let end = Swift.min(start + hashBlock, range.upperBound)
            body(start..<end)
            start = end
        }
    }
}

/// One level of a hash grid: its resolution and how a lattice vertex finds its table entry.
struct HashLevel {
    let resolution: Int
    /// The whole lattice fits in the table: one entry per vertex, no collisions.
    let dense: Bool
    let tableSize: Int
    /// The hash is reduced with `& mask` instead of a division: the size is a power of two, or
    /// at least 2^32 (every 32-bit hash is then an index; the mask is all ones).
    let reducesByMask: Bool
    let mask: UInt32

    init(resolution: Int, tableSize: Int) {
        self.resolution = resolution
        self.tableSize = tableSize
        // In Double: (N + 1)³ overflows Int for the finest levels of large grids.
        dense = Foundation.pow(Double(resolution + 1), 3) <= Double(tableSize)
        reducesByMask = tableSize & (tableSize - 1) == 0 || tableSize >= 1 << 32
        mask = tableSize >= 1 << 32 ? .max : UInt32(truncatingIfNeeded: tableSize - 1)
    }

    /// The table entry of lattice vertex (x, y, z).
    func index(_ x: Int, _ y: Int, _ z: Int) -> Int {
        indices(SIMD8(repeating: x), SIMD8(repeating: y), SIMD8(repeating: z))[0]
    }

    /// The table entries of eight lattice vertices, computed lane-parallel: building the eight
    /// indices one lane at a time goes through memory and stalls the loads that follow.
    @inline(__always)
    func indices(_ x: SIMD8<Int>, _ y: SIMD8<Int>, _ z: SIMD8<Int>) -> SIMD8<Int> {
        if dense { return x &+ (resolution + 1) &* (y &+ (resolution + 1) &* z) }
        let h = SIMD8<UInt32>(truncatingIfNeeded: x) ^ (SIMD8<UInt32>(truncatingIfNeeded: y) &* 2_654_435_761)
            ^ (SIMD8<UInt32>(truncatingIfNeeded: z) &* 805_459_861)
        if reducesByMask { return SIMD8<Int>(truncatingIfNeeded: h & mask) }
        return SIMD8<Int>(truncatingIfNeeded: h % UInt32(truncatingIfNeeded: tableSize))
    }
}

/// The eight lattice vertices around a point on one hash-grid level: offsets of their feature
/// runs in the level's table, trilinear weights and the per-axis taps.
struct HashTaps {
    let tx: AxisTap, ty: AxisTap, tz: AxisTap
    let w: CornerWeights
    let offsets: SIMD8<Int>

    @inline(__always)
    init(_ p: UnsafePointer<Float>, _ lv: HashLevel, _ f: Int) {
        tx = AxisTap(unit: p[0], resolution: lv.resolution)
        ty = AxisTap(unit: p[1], resolution: lv.resolution)
        tz = AxisTap(unit: p[2], resolution: lv.resolution)
        w = CornerWeights(tx.f, ty.f, tz.f)
        let c = CornerIndices(tx, ty, tz)
        offsets = lv.indices(c.x, c.y, c.z) &* f
    }
}

/// Hyperparameters of a multiresolution hash encoding; the defaults are Instant-NGP's (Table 1)
/// with the table size and finest resolution of its NeRF setting.
public struct HashGridConfig: Codable, Equatable, Sendable {
    /// Number of levels L (Table 1: 16).
    public var levels: Int
    /// Entries per level T (Table 1: 2^14 to 2^24; 2^19 for NeRF).
    public var tableSize: Int
    /// Features per entry F (Table 1: 2).
    public var featuresPerLevel: Int
    /// Coarsest resolution N_min, in cells per axis (Table 1: 16).
    public var baseResolution: Int
    /// Finest resolution N_max (Table 1: 512 to 524288; 2048 for NeRF scenes in a unit box).
    public var finestResolution: Int

    public init(levels: Int = 16, tableSize: Int = 1 << 19, featuresPerLevel: Int = 2,
                baseResolution: Int = 16, finestResolution: Int = 2048) {
        self.levels = levels
        self.tableSize = tableSize
        self.featuresPerLevel = featuresPerLevel
        self.baseResolution = baseResolution
        self.finestResolution = finestResolution
    }

    /// The per-level scale `b = exp((ln N_max - ln N_min) / (L - 1))` (Eq. 3); 1 for one level.
    /// Rounded to Float32, so the finest level can come out one cell below N_max (see
    /// ``resolutions``).
    public var growth: Float {
        guard levels > 1 else { return 1 }
        return Float(Foundation.exp((Foundation.log(Double(finestResolution)) - Foundation.log(Double(baseResolution))) / Double(levels - 1)))
    }

    /// Cells per axis of every level, as the encoding computes them.
    public var resolutions: [Int] {
        FeatureGrids.hashGridResolutions(levels: levels, baseResolution: baseResolution, growth: growth)
    }

    /// Width of the encoding, `L · F`.
    public var outputWidth: Int { levels * featuresPerLevel }

    /// `[L, T, F]`.
    public var tableShape: [Int] { [levels, tableSize, featuresPerLevel] }

    /// Tables drawn from U(-10⁻⁴, 10⁻⁴), the paper's initialisation (Sec. 4): small enough that
    /// the first steps see an almost constant encoding.
    public func initialTables(rng: inout RandomGenerator) -> Tensor {
        rng.uniform(tableShape, low: -1e-4, high: 1e-4)
    }

    /// Encodes `points` `[N, 3]` in the unit cube: ``FeatureGrids/hashGrid(tables:points:baseResolution:growth:)``.
    public func encode(_ points: Tensor, tables: Tensor) throws -> Tensor {
        guard tables.shape == tableShape else {
            throw TensorError.shapeMismatch(op: "HashGridConfig.encode", expected: "tables \(tableShape)", found: "\(tables.shape)")
        }
        return try FeatureGrids.hashGrid(tables: tables, points: points, baseResolution: baseResolution, growth: growth)
    }
}
