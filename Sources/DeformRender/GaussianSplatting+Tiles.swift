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

/// The per-Gaussian quantities one tile reads, gathered contiguously in its depth order.
private struct TileSplat {
    var u, v, a, b, c, opacity, red, green, blue, z, reach: Float
    var rowLow: Int, rowHigh: Int

    /// The lanes of a tile row (pixel centres x0 + lane + 0.5, at vertical offset dy from the
    /// mean) inside the splat's footprint `a dx² + 2 b dx dy + c dy² ≤ reach`, widened to whole
    /// groups of four lanes (the vector width); `lo > hi` when the row misses it.
    @inline(__always) func lanes(dy: Float, x0: Float) -> (lo: Int, hi: Int) {
        guard reach.isFinite else { return (0, 15) }
        let disc = b * b * dy * dy - a * (c * dy * dy - reach)
        if disc < 0 { return (1, 0) }
        let half = disc.squareRoot() / a
        let centre = u - b * dy / a - x0 - 0.5
        let lo = Int(Swift.max(-1, (centre - half - 0.01).rounded(.up)))
        let hi = Int(Swift.min(16, (centre + half + 0.01).rounded(.down)))
        let l = Swift.max(0, lo), h = Swift.min(15, hi)
        if l > h { return (1, 0) }
        return (l & ~3, h | 3)
    }
}

// The inner loops run over the sixteen pixels of a tile row with plain scalar code on raw
// pointers and selects instead of branches: LLVM turns them into vector code, which explicit
// SIMD16 masks (`any`, `replacing(with:where:)`) did not (they were lowered lane by lane).
// All per-pixel state lives in one buffer at constant offsets (a computed constant, not a lazily
// initialised global), so the vectoriser sees constant distances between the arrays and needs
// no run-time alias checks.
@inline(__always) private var lanes: Int { 16 }
@inline(__always) private var tilePixels: Int { 256 }

@inline(__always) private func load4(_ p: UnsafeMutablePointer<Float>, _ i: Int) -> SIMD4<Float> {
    UnsafeRawPointer(p + i).loadUnaligned(as: SIMD4<Float>.self)
}

@inline(__always) private func store4(_ p: UnsafeMutablePointer<Float>, _ i: Int, _ v: SIMD4<Float>) {
    UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: SIMD4<Float>.self)
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
        let (minAlpha, maxAlpha, minT) = (rules.minAlpha, rules.maxAlpha, rules.minTransmittance)
        bins.entries.withUnsafeBufferPointer { entries in
            parallelQueue(bins.tilesByCost) { tile in
                let list = gather(tile, splats, bins, entries, height: height, capacity: maxList)
                defer { list.deallocate() }
                let n = bins.offsets[tile + 1] - bins.offsets[tile]
                let x0 = (tile % bins.tilesX) * lanes, y0 = (tile / bins.tilesX) * lanes
                let rows = Swift.min(lanes, height - y0), cols = Swift.min(lanes, width - x0)
                let pixels = tilePixels
                // State of the tile's 256 pixels: transmittance, colour and depth sums, a done
                // flag (1 = stopped or outside the image) and the stop position.
                let state = UnsafeMutablePointer<Float>.allocate(capacity: 7 * pixels)
                defer { state.deallocate() }
                let T = state, R = state + pixels, G = state + 2 * pixels, B = state + 3 * pixels
                let D = state + 4 * pixels, done = state + 5 * pixels
                let stop = state + 6 * pixels               // positions as floats: exact below 2^24
                var liveInRow = [Int](repeating: 0, count: lanes)
                for row in 0..<lanes {
                    for lane in 0..<lanes {
                        let i = row * lanes + lane
                        T[i] = 1; R[i] = 0; G[i] = 0; B[i] = 0; D[i] = 0; stop[i] = Float(n)
                        done[i] = row < rows && lane < cols ? 0 : 1
                    }
                    liveInRow[row] = row < rows ? cols : 0
                }
                var liveRows = rows
                var k = 0
                while k < n && liveRows > 0 {
                    let s = list[k]
                    let kk = Float(k)
                    var row = s.rowLow
                    while row <= s.rowHigh {
                        if liveInRow[row] > 0 {
                            let dy = Float(y0 + row) + 0.5 - s.v
                            let ty = s.b * dy, cy = 0.5 * s.c * dy * dy
                            let px0 = Float(x0) + 0.5 - s.u
                            let base = row &* lanes
                            let (lo, hi) = s.lanes(dy: dy, x0: Float(x0))
                            // Flags are 0/1 floats combined arithmetically (selects only between
                            // constants): no branches and no reductions, so the loop vectorises.
                            // Multiplying by a 0/1 flag keeps the chosen value bit for bit
                            // (t·(1 - 1·α) is tNext).
                            for lane in lo..<(hi + 1) {
                                let i = base &+ lane
                                let dx = px0 + Float(lane)
                                let power = dx * (0.5 * s.a * dx + ty) + cy
                                let al = Swift.min(maxAlpha, s.opacity * VectorMath.exp(-power))
                                let t = T[i]
                                let tNext = t * (1 - al)
                                let above: Float = al >= minAlpha ? 1 : 0
                                let live = above * (1 - done[i])
                                let below: Float = tNext < minT ? 1 : 0
                                let stopNow = live * below
                                let contributing = live - stopNow
                                let w = contributing * al * t
                                R[i] += w * s.red; G[i] += w * s.green; B[i] += w * s.blue; D[i] += w * s.z
                                T[i] = t * (1 - contributing * al)
                                stop[i] += stopNow * (kk - stop[i])
                                done[i] += stopNow
                            }
                        }
                        row += 1
                    }
                    k += 1
                    // Every 32 Gaussians, count the pixels still compositing (cheaper than
                    // counting inside the vector loop, which would stop it vectorising).
                    if k & 31 == 0 {
                        liveRows = 0
                        for row in 0..<rows {
                            var live = 0
                            for lane in 0..<lanes where done[row * lanes + lane] == 0 { live += 1 }
                            liveInRow[row] = live
                            liveRows += live > 0 ? 1 : 0
                        }
                    }
                }
                for row in 0..<rows {
                    for lane in 0..<cols {
                        let p = (y0 + row) * width + x0 + lane, i = row * lanes + lane
                        let t = T[i]
                        image[3 * p] = R[i] + t * background.x
                        image[3 * p + 1] = G[i] + t * background.y
                        image[3 * p + 2] = B[i] + t * background.z
                        depth[p] = D[i]
                        alpha[p] = 1 - t
                        finalT[p] = t
                        stops[p] = Int32(stop[i])
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
        let (minAlpha, maxAlpha) = (rules.minAlpha, rules.maxAlpha)
        bins.entries.withUnsafeBufferPointer { entries in
            parallelQueue(bins.tilesByCost) { tile in
                let list = gather(tile, splats, bins, entries, height: height, capacity: maxList)
                defer { list.deallocate() }
                let first = bins.offsets[tile], n = bins.offsets[tile + 1] - first
                let x0 = (tile % bins.tilesX) * lanes, y0 = (tile / bins.tilesX) * lanes
                let rows = Swift.min(lanes, height - y0), cols = Swift.min(lanes, width - x0)
                let pixels = tilePixels
                let state = UnsafeMutablePointer<Float>.allocate(capacity: 7 * pixels)
                defer { state.deallocate() }
                let T = state, gR = state + pixels, gG = state + 2 * pixels, gB = state + 3 * pixels
                let gD = state + 4 * pixels, rest = state + 5 * pixels, stop = state + 6 * pixels
                var last = 0
                // The furthest stop position in each row: rows whose pixels all stopped before a
                // Gaussian skip it, as they did in the forward.
                var rowLast = [Int](repeating: 0, count: lanes)
                for i in 0..<pixels { T[i] = 1; gR[i] = 0; gG[i] = 0; gB[i] = 0; gD[i] = 0; rest[i] = 0; stop[i] = 0 }
                for row in 0..<rows {
                    for lane in 0..<cols {
                        let p = (y0 + row) * width + x0 + lane, i = row * lanes + lane
                        T[i] = finalT[p]
                        gR[i] = gImage[3 * p]; gG[i] = gImage[3 * p + 1]; gB[i] = gImage[3 * p + 2]
                        gD[i] = gDepth[p]
                        stop[i] = Float(stops[p])
                        last = Swift.max(last, Int(stops[p]))
                        rowLast[row] = Swift.max(rowLast[row], Int(stops[p]))
                        rest[i] = finalT[p] * (gR[i] * background.x + gG[i] * background.y + gB[i] * background.z - gAlpha[p])
                    }
                }
                // Slots of Gaussians at or after the last stop position stay zero.
                let out = entryGrads + 10 * first
                out.initialize(repeating: 0, count: 10 * n)
                var k = Swift.min(last, n) - 1
                while k >= 0 {
                    let s = list[k]
                    if s.rowLow <= s.rowHigh {
                        // Four lanes at a time with explicit SIMD4 vectors, so the ten gradient
                        // sums stay in registers across the rows (lane ranges are whole groups of
                        // four).
                        let zero = SIMD4<Float>.zero
                        var sU = zero, sV = zero, sA = zero, sB = zero, sC = zero, sO = zero
                        var sR = zero, sG = zero, sBl = zero, sZ = zero
                        let kk = SIMD4<Float>(repeating: Float(k))
                        let laneStep = SIMD4<Float>(0, 1, 2, 3)
                        let px0 = Float(x0) + 0.5 - s.u
                        for row in s.rowLow...s.rowHigh where rowLast[row] > k {
                            let dy = Float(y0 + row) + 0.5 - s.v
                            let ty = s.b * dy, cy = 0.5 * s.c * dy * dy
                            let base = row &* lanes
                            let (lo, hi) = s.lanes(dy: dy, x0: Float(x0))
                            var group = lo
                            while group <= hi {
                                let i = base &+ group
                                let dx = laneStep + (px0 + Float(group))
                                let power = dx * (0.5 * s.a * dx + ty) + cy
                                let gauss = VectorMath.exp(-power)
                                let raw = s.opacity * gauss
                                let al = pointwiseMin(raw, SIMD4(repeating: maxAlpha))
                                let valid = (load4(stop, i) .> kk) .& (al .>= minAlpha)
                                let inverse = 1 / (1 - al)
                                let t = load4(T, i)
                                let tk = t * inverse
                                let w = zero.replacing(with: al * tk, where: valid)
                                let r0 = load4(gR, i), g0 = load4(gG, i), b0 = load4(gB, i), d0 = load4(gD, i)
                                let value = r0 * s.red + g0 * s.green + b0 * s.blue + d0 * s.z
                                let rest0 = load4(rest, i)
                                let gAl = zero.replacing(with: value * tk - rest0 * inverse, where: valid)
                                store4(rest, i, rest0 + value * w)
                                store4(T, i, t.replacing(with: tk, where: valid))
                                sR += r0 * w; sG += g0 * w; sBl += b0 * w; sZ += d0 * w
                                // α = o·G unless clamped at maxAlpha.
                                let live = gAl.replacing(with: 0, where: raw .> maxAlpha)
                                sO += live * gauss
                                let gPower = -live * raw
                                sA += 0.5 * dx * dx * gPower
                                sB += dx * dy * gPower
                                sC += 0.5 * dy * dy * gPower
                                // ∂power/∂u = -(a dx + b dy), ∂power/∂v = -(b dx + c dy).
                                sU -= gPower * (s.a * dx + ty)
                                sV -= gPower * (s.b * dx + s.c * dy)
                                group &+= 4
                            }
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
                                blue: s.blue, z: s.z, reach: s.reach, rowLow: lo, rowHigh: hi)
        }
        return list
    }
}
