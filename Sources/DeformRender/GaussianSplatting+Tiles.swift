import DeformTensor
import Foundation

// The per-pixel half of the splatting renderer: binning projected Gaussians into 16×16 tiles in
// depth order, front-to-back alpha compositing (3DGS / gsplat semantics), and its backward.
// A tile is processed as sixteen rows of SIMD16 lanes; Gaussians only touch the rows their
// footprint reaches.

/// Per-pixel compositing rules shared by the forward, the backward and the tests' reference.
struct CompositingRules {
    var minAlpha: Float
    var maxAlpha: Float
    var minTransmittance: Float
}

/// The Gaussians each tile sees, front to back.
struct TileBins {
    static let size = 16
    var tilesX: Int, tilesY: Int
    /// `entries[offsets[t] ..< offsets[t + 1]]` are tile t's Gaussians sorted by depth.
    var offsets: [Int]
    var entries: [Int32]

    /// Bins the visible Gaussians: sorted by depth once (a radix sort of the float bits, which
    /// order like the values for positive depths), then appended to every tile their footprint's
    /// bounding box overlaps, so each tile's list comes out sorted.
    init(_ splats: UnsafePointer<ProjectedSplat>, count n: Int, width: Int, height: Int) {
        tilesX = (width + TileBins.size - 1) / TileBins.size
        tilesY = (height + TileBins.size - 1) / TileBins.size
        let tileCount = tilesX * tilesY
        var rects = [Int32](repeating: 0, count: 4 * n)
        var visible: [Int32] = []
        visible.reserveCapacity(n)
        var counts = [Int](repeating: 0, count: tileCount + 1)
        for i in 0..<n where splats[i].visible {
            let s = splats[i]
            // Pixel centres x + 0.5 within [u - e, u + e].
            let x0 = Swift.max(0, Int(Swift.max(-1, (s.u - s.extentX - 0.5).rounded(.up))))
            let x1 = Swift.min(width - 1, Int(Swift.min(Float(width), (s.u + s.extentX - 0.5).rounded(.down))))
            let y0 = Swift.max(0, Int(Swift.max(-1, (s.v - s.extentY - 0.5).rounded(.up))))
            let y1 = Swift.min(height - 1, Int(Swift.min(Float(height), (s.v + s.extentY - 0.5).rounded(.down))))
            if x0 > x1 || y0 > y1 { continue }
            let tx0 = x0 / TileBins.size, tx1 = x1 / TileBins.size
            let ty0 = y0 / TileBins.size, ty1 = y1 / TileBins.size
            rects[4 * i] = Int32(tx0); rects[4 * i + 1] = Int32(tx1); rects[4 * i + 2] = Int32(ty0); rects[4 * i + 3] = Int32(ty1)
            visible.append(Int32(i))
            for ty in ty0...ty1 { for tx in tx0...tx1 { counts[ty * tilesX + tx] += 1 } }
        }
        offsets = [Int](repeating: 0, count: tileCount + 1)
        for t in 0..<tileCount { offsets[t + 1] = offsets[t] + counts[t] }
        let order = TileBins.sortedByDepth(visible, splats)
        var cursor = Array(offsets.dropLast())
        entries = [Int32](repeating: 0, count: offsets[tileCount])
        entries.withUnsafeMutableBufferPointer { e in
            for i32 in order {
                let i = Int(i32)
                for ty in Int(rects[4 * i + 2])...Int(rects[4 * i + 3]) {
                    for tx in Int(rects[4 * i])...Int(rects[4 * i + 1]) {
                        let t = ty * tilesX + tx
                        e[cursor[t]] = i32
                        cursor[t] += 1
                    }
                }
            }
        }
    }

    /// `ids` ordered by increasing depth (ties by index): LSD radix sort on 8-bit digits of the
    /// depth's bit pattern.
    static func sortedByDepth(_ ids: [Int32], _ splats: UnsafePointer<ProjectedSplat>) -> [Int32] {
        var keys = ids.map { splats[Int($0)].z.bitPattern }
        var values = ids
        var keys2 = keys, values2 = values
        for shift in stride(from: 0, to: 32, by: 8) {
            var histogram = [Int](repeating: 0, count: 257)
            for k in keys { histogram[Int((k >> UInt32(shift)) & 255) + 1] += 1 }
            if histogram[1...].contains(keys.count) { continue }            // every key has this digit
            for d in 0..<256 { histogram[d + 1] += histogram[d] }
            for j in 0..<keys.count {
                let d = Int((keys[j] >> UInt32(shift)) & 255)
                keys2[histogram[d]] = keys[j]; values2[histogram[d]] = values[j]
                histogram[d] += 1
            }
            swap(&keys, &keys2); swap(&values, &values2)
        }
        return values
    }

    /// Tiles from the longest list to the shortest: handed out in that order, the expensive tiles
    /// start first and both cores finish together.
    var tilesByCost: [Int] {
        (0..<(tilesX * tilesY)).sorted { offsets[$0 + 1] - offsets[$0] > offsets[$1 + 1] - offsets[$1] }
    }
}

/// Hands out work items to the threads of a parallel region in a fixed order.
final class WorkQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private let count: Int
    init(count: Int) { self.count = count }
    func take() -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard next < count else { return nil }
        next += 1
        return next - 1
    }
}

/// Runs `body(item)` for every item on all cores, items taken in order from a shared queue.
func parallelQueue(_ items: [Int], _ body: (Int) -> Void) {
    let queue = WorkQueue(count: items.count)
    let workers = Swift.min(Threads.coreCount, items.count)
    if workers <= 1 { items.forEach(body); return }
    DispatchQueue.concurrentPerform(iterations: workers) { _ in
        while let k = queue.take() { body(items[k]) }
    }
}

/// The lanes of one tile row.
private let laneOffsets = SIMD16<Float>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) + 0.5

/// The per-Gaussian quantities one tile reads, gathered contiguously in its depth order.
private struct TileSplat {
    var u, v, a, b, c, opacity, red, green, blue, z: Float
    var rowLow: Int, rowHigh: Int
}

enum TileCompositor {
    /// Front-to-back compositing of every tile. Writes colour `[H, W, 3]` (background added), the
    /// accumulated depth `Σ w z`, the opacity `1 - T`, and, for the backward, each pixel's final
    /// transmittance and the position in its tile's list where compositing stopped.
    static func forward(_ splats: UnsafePointer<ProjectedSplat>, bins: TileBins, width: Int, height: Int,
                        rules: CompositingRules, background: SIMD3<Float>,
                        image: UnsafeMutablePointer<Float>, depth: UnsafeMutablePointer<Float>,
                        alpha: UnsafeMutablePointer<Float>, finalT: UnsafeMutablePointer<Float>,
                        stops: UnsafeMutablePointer<Int32>) {
        let maxList = (0..<(bins.tilesX * bins.tilesY)).map { bins.offsets[$0 + 1] - bins.offsets[$0] }.max() ?? 0
        bins.entries.withUnsafeBufferPointer { entries in
            parallelQueue(bins.tilesByCost) { tile in
                let list = gather(tile, splats, bins, entries, height: height, capacity: maxList)
                defer { list.deallocate() }
                let n = bins.offsets[tile + 1] - bins.offsets[tile]
                let x0 = (tile % bins.tilesX) * TileBins.size, y0 = (tile / bins.tilesX) * TileBins.size
                let px = laneOffsets + Float(x0)
                let inImage = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) .< Int32(width - x0)
                let rows = Swift.min(TileBins.size, height - y0)
                var T = [SIMD16<Float>](repeating: .one, count: 16)
                var r = [SIMD16<Float>](repeating: .zero, count: 16), g = r, b = r, d = r
                var stop = [SIMD16<Int32>](repeating: SIMD16(repeating: Int32(n)), count: 16)
                var active = [SIMDMask<SIMD16<Int32>>](repeating: inImage, count: 16)
                for row in rows..<16 { active[row] = SIMDMask(repeating: false) }
                var activeRows = rows
                var k = 0
                while k < n && activeRows > 0 {
                    let s = list[k]
                    if s.rowLow <= s.rowHigh {
                        for row in s.rowLow...s.rowHigh where any(active[row]) {
                            let dx = px - s.u, dy = Float(y0 + row) + 0.5 - s.v
                            let power = dx * (0.5 * s.a * dx + s.b * dy) + 0.5 * s.c * dy * dy
                            let al = pointwiseMin(s.opacity * VectorMath.exp(-power), SIMD16(repeating: rules.maxAlpha))
                            let valid = active[row] .& (al .>= rules.minAlpha)
                            if !any(valid) { continue }
                            let tNext = T[row] * (1 - al)
                            let stopped = valid .& (tNext .< rules.minTransmittance)
                            let contributing = valid .& .!stopped
                            let w = (al * T[row]).replacing(with: 0, where: .!contributing)
                            r[row] += w * s.red; g[row] += w * s.green; b[row] += w * s.blue; d[row] += w * s.z
                            T[row].replace(with: tNext, where: contributing)
                            if any(stopped) {
                                stop[row].replace(with: Int32(k), where: stopped)
                                active[row] = active[row] .& .!stopped
                                if !any(active[row]) { activeRows -= 1 }
                            }
                        }
                    }
                    k += 1
                }
                for row in 0..<rows {
                    for lane in 0..<Swift.min(16, width - x0) {
                        let p = (y0 + row) * width + x0 + lane
                        let t = T[row][lane]
                        image[3 * p] = r[row][lane] + t * background.x
                        image[3 * p + 1] = g[row][lane] + t * background.y
                        image[3 * p + 2] = b[row][lane] + t * background.z
                        depth[p] = d[row][lane]
                        alpha[p] = 1 - t
                        finalT[p] = t
                        stops[p] = stop[row][lane]
                    }
                }
            }
        }
    }

    /// The backward of ``forward``: one back-to-front pass per tile that rebuilds each pixel's
    /// transmittance from its final value (`T_k = T_{k+1} / (1 - α_k)`, safe because α ≤ maxAlpha
    /// < 1) and keeps the running sum of what lies behind. With `v_k = ḡ_C·c_k + ḡ_D z_k` (the
    /// worth of one unit of weight on Gaussian k) and `R_k = Σ_{j>k} v_j w_j + T (ḡ_C·bg - ḡ_A)`,
    ///
    ///     ∂L/∂α_k = v_k T_k - R_k / (1 - α_k).
    ///
    /// Each (tile, Gaussian) pair writes its ten partial gradients to its own slot of
    /// `entryGrads` — ∂L/∂(u, v, a, b, c, opacity, red, green, blue, z) — so tiles run in parallel
    /// without sharing accumulators and the sum over tiles (done by the caller, in a fixed order)
    /// does not depend on the thread count.
    static func backward(_ splats: UnsafePointer<ProjectedSplat>, bins: TileBins, width: Int, height: Int,
                         rules: CompositingRules, background: SIMD3<Float>,
                         finalT: UnsafePointer<Float>, stops: UnsafePointer<Int32>,
                         gImage: UnsafePointer<Float>, gDepth: UnsafePointer<Float>, gAlpha: UnsafePointer<Float>,
                         entryGrads: UnsafeMutablePointer<Float>) {
        let maxList = (0..<(bins.tilesX * bins.tilesY)).map { bins.offsets[$0 + 1] - bins.offsets[$0] }.max() ?? 0
        bins.entries.withUnsafeBufferPointer { entries in
            parallelQueue(bins.tilesByCost) { tile in
                let list = gather(tile, splats, bins, entries, height: height, capacity: maxList)
                defer { list.deallocate() }
                let first = bins.offsets[tile], n = bins.offsets[tile + 1] - first
                let x0 = (tile % bins.tilesX) * TileBins.size, y0 = (tile / bins.tilesX) * TileBins.size
                let px = laneOffsets + Float(x0)
                let rows = Swift.min(TileBins.size, height - y0), lanes = Swift.min(16, width - x0)
                var T = [SIMD16<Float>](repeating: .one, count: 16)
                var gr = [SIMD16<Float>](repeating: .zero, count: 16), gg = gr, gb = gr, gd = gr, rest = gr
                var stop = [SIMD16<Int32>](repeating: .zero, count: 16)       // 0: no Gaussian counts
                var last = 0
                for row in 0..<rows {
                    for lane in 0..<lanes {
                        let p = (y0 + row) * width + x0 + lane
                        T[row][lane] = finalT[p]
                        gr[row][lane] = gImage[3 * p]; gg[row][lane] = gImage[3 * p + 1]; gb[row][lane] = gImage[3 * p + 2]
                        gd[row][lane] = gDepth[p]
                        stop[row][lane] = stops[p]
                        last = Swift.max(last, Int(stops[p]))
                        rest[row][lane] = finalT[p] * (gImage[3 * p] * background.x + gImage[3 * p + 1] * background.y
                                                       + gImage[3 * p + 2] * background.z - gAlpha[p])
                    }
                }
                // Slots of Gaussians at or after the last stop position stay zero.
                let out = entryGrads + 10 * first
                out.initialize(repeating: 0, count: 10 * n)
                var k = Swift.min(last, n) - 1
                while k >= 0 {
                    let s = list[k]
                    if s.rowLow <= s.rowHigh {
                        var sU = SIMD16<Float>.zero, sV = sU, sA = sU, sB = sU, sC = sU, sO = sU
                        var sR = sU, sG = sU, sBl = sU, sZ = sU
                        let kk = Int32(k)
                        for row in s.rowLow...s.rowHigh {
                            let dx = px - s.u, dy = Float(y0 + row) + 0.5 - s.v
                            let power = dx * (0.5 * s.a * dx + s.b * dy) + 0.5 * s.c * dy * dy
                            let gauss = VectorMath.exp(-power)
                            let raw = s.opacity * gauss
                            let al = pointwiseMin(raw, SIMD16(repeating: rules.maxAlpha))
                            let valid = (stop[row] .> kk) .& (al .>= rules.minAlpha)
                            if !any(valid) { continue }
                            let oneMinus = 1 - al
                            let tk = (T[row] / oneMinus).replacing(with: 0, where: .!valid)
                            let w = al * tk
                            let value = gr[row] * s.red + gg[row] * s.green + gb[row] * s.blue + gd[row] * s.z
                            let gAl = (value * tk - rest[row] / oneMinus).replacing(with: 0, where: .!valid)
                            rest[row] += value * w
                            T[row].replace(with: tk, where: valid)
                            sR += gr[row] * w; sG += gg[row] * w; sBl += gb[row] * w; sZ += gd[row] * w
                            // α = o·G unless clamped at maxAlpha.
                            let live = gAl.replacing(with: 0, where: raw .> rules.maxAlpha)
                            sO += live * gauss
                            let gPower = -live * raw
                            sA += 0.5 * dx * dx * gPower
                            sB += dx * dy * gPower
                            sC += 0.5 * dy * dy * gPower
                            // ∂power/∂u = -(a dx + b dy), ∂power/∂v = -(b dx + c dy).
                            sU -= gPower * (s.a * dx + s.b * dy)
                            sV -= gPower * (s.b * dx + s.c * dy)
                        }
                        let slot = out + 10 * k
                        slot[0] = sU.sum(); slot[1] = sV.sum(); slot[2] = sA.sum(); slot[3] = sB.sum(); slot[4] = sC.sum()
                        slot[5] = sO.sum(); slot[6] = sR.sum(); slot[7] = sG.sum(); slot[8] = sBl.sum(); slot[9] = sZ.sum()
                    }
                    k -= 1
                }
            }
        }
    }

    /// Tile `tile`'s Gaussians in depth order with the tile rows each one reaches.
    private static func gather(_ tile: Int, _ splats: UnsafePointer<ProjectedSplat>, _ bins: TileBins,
                               _ entries: UnsafeBufferPointer<Int32>, height: Int, capacity: Int) -> UnsafeMutablePointer<TileSplat> {
        let list = UnsafeMutablePointer<TileSplat>.allocate(capacity: Swift.max(capacity, 1))
        let y0 = Float((tile / bins.tilesX) * TileBins.size)
        let rows = Swift.min(TileBins.size, height - Int(y0))
        for (k, e) in (bins.offsets[tile]..<bins.offsets[tile + 1]).enumerated() {
            let s = splats[Int(entries[e])]
            // Rows whose centre y0 + row + 0.5 lies within v ± extentY.
            let lo = Swift.max(0, Int(Swift.max(-1, (s.v - s.extentY - 0.5 - y0).rounded(.up))))
            let hi = Swift.min(rows - 1, Int(Swift.min(Float(rows), (s.v + s.extentY - 0.5 - y0).rounded(.down))))
            list[k] = TileSplat(u: s.u, v: s.v, a: s.a, b: s.b, c: s.c, opacity: s.opacity, red: s.red, green: s.green,
                                blue: s.blue, z: s.z, rowLow: lo, rowHigh: hi)
        }
        return list
    }
}
