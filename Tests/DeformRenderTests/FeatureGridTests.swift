import Testing
import Foundation
@testable import DeformRender
import DeformTensor

// MARK: - Plain-loop references (Double)

/// One interpolation axis in sample units: the lower and upper sample and the fraction between them.
private func refAxis(_ position: Double, samples: Int) -> (i0: Int, i1: Int, f: Double) {
    if samples == 1 { return (0, 0, 0) }
    let p = min(max(position, 0), Double(samples - 1))
    let i0 = min(Int(p.rounded(.down)), samples - 2)
    return (i0, i0 + 1, p - Double(i0))
}

/// Trilinear interpolation of one point and its VJP. `position` is in sample units, `slope` is
/// d(position)/d(coordinate) per axis (0 where clamped), `value(x, y, z, channel)` reads a lattice
/// value; with a cotangent `cot`, `addGrad(x, y, z, channel, amount)` receives the lattice gradient
/// and the returned `coordGrad` is the gradient with respect to the three coordinates.
private func refTrilinear(position: [Double], slope: [Double], samples: [Int], channels c: Int, cot: [Double]? = nil,
                          value: (Int, Int, Int, Int) -> Double,
                          addGrad: (Int, Int, Int, Int, Double) -> Void = { _, _, _, _, _ in }) -> (out: [Double], coordGrad: [Double]) {
    let ax = (0..<3).map { refAxis(position[$0], samples: samples[$0]) }
    var out = [Double](repeating: 0, count: c), coordGrad = [0.0, 0, 0]
    for dz in 0...1 {
        for dy in 0...1 {
            for dx in 0...1 {
                let bits = [dx, dy, dz]
                let idx = (0..<3).map { bits[$0] == 0 ? ax[$0].i0 : ax[$0].i1 }
                let factors = (0..<3).map { bits[$0] == 0 ? 1 - ax[$0].f : ax[$0].f }
                let w = factors[0] * factors[1] * factors[2]
                for ch in 0..<c {
                    let v = value(idx[0], idx[1], idx[2], ch)
                    out[ch] += w * v
                    guard let cot else { continue }
                    addGrad(idx[0], idx[1], idx[2], ch, w * cot[ch])
                    for a in 0..<3 {
                        let others = (0..<3).filter { $0 != a }.map { factors[$0] }.reduce(1, *)
                        coordGrad[a] += (bits[a] == 0 ? -1 : 1) * others * v * cot[ch] * slope[a]
                    }
                }
            }
        }
    }
    return (out, coordGrad)
}

/// Bilinear interpolation of one point on one plane and its VJP (the 2D version of the above).
private func refBilinear(position: [Double], slope: [Double], samples: [Int], channels c: Int, cot: [Double]? = nil,
                         value: (Int, Int, Int) -> Double,
                         addGrad: (Int, Int, Int, Double) -> Void = { _, _, _, _ in }) -> (out: [Double], coordGrad: [Double]) {
    let ax = (0..<2).map { refAxis(position[$0], samples: samples[$0]) }
    var out = [Double](repeating: 0, count: c), coordGrad = [0.0, 0]
    for dv in 0...1 {
        for du in 0...1 {
            let bits = [du, dv]
            let idx = (0..<2).map { bits[$0] == 0 ? ax[$0].i0 : ax[$0].i1 }
            let factors = (0..<2).map { bits[$0] == 0 ? 1 - ax[$0].f : ax[$0].f }
            for ch in 0..<c {
                let v = value(idx[0], idx[1], ch)
                out[ch] += factors[0] * factors[1] * v
                guard let cot else { continue }
                addGrad(idx[0], idx[1], ch, factors[0] * factors[1] * cot[ch])
                coordGrad[0] += (du == 0 ? -1 : 1) * factors[1] * v * cot[ch] * slope[0]
                coordGrad[1] += (dv == 0 ? -1 : 1) * factors[0] * v * cot[ch] * slope[1]
            }
        }
    }
    return (out, coordGrad)
}

/// Align-corners normalised coordinate -> (position in samples, slope).
private func normalized(_ u: Float, samples: Int) -> (Double, Double) {
    let half = Double(samples - 1) / 2
    return ((Double(u) + 1) * half, abs(u) <= 1 ? half : 0)
}

/// Reference dense-grid sampling: outputs `[N·C]`, and for a cotangent the grid and point gradients.
private func referenceTrilinear(grid: Tensor, points: Tensor, cot: Tensor?) -> (out: [Double], gGrid: [Double], gPoints: [Double]) {
    let (d, h, w, c) = (grid.shape[0], grid.shape[1], grid.shape[2], grid.shape[3])
    let g = grid.scalars, p = points.scalars, n = points.shape[0]
    let gc = cot.map { $0.scalars.map(Double.init) }
    var out: [Double] = [], gGrid = [Double](repeating: 0, count: g.count), gPoints = [Double](repeating: 0, count: 3 * n)
    for i in 0..<n {
        let axes = zip([w, h, d], 0..<3).map { normalized(p[3 * i + $1], samples: $0) }
        let r = refTrilinear(position: axes.map(\.0), slope: axes.map(\.1), samples: [w, h, d], channels: c,
                             cot: gc.map { Array($0[(i * c)..<((i + 1) * c)]) },
                             value: { x, y, z, ch in Double(g[((z * h + y) * w + x) * c + ch]) },
                             addGrad: { x, y, z, ch, a in gGrid[((z * h + y) * w + x) * c + ch] += a })
        out += r.out
        for a in 0..<3 { gPoints[3 * i + a] = r.coordGrad[a] }
    }
    return (out, gGrid, gPoints)
}

/// Reference triplane sampling with the VJP.
private func referenceTriplane(planes: Tensor, points: Tensor, combine: TriplaneCombination, cot: Tensor?)
    -> (out: [Double], gPlanes: [Double], gPoints: [Double]) {
    let (h, w, c) = (planes.shape[1], planes.shape[2], planes.shape[3])
    let s = planes.scalars, p = points.scalars, n = points.shape[0]
    let axes = [(0, 1), (0, 2), (1, 2)]   // (along W, along H) for xy, xz, yz
    let width = combine == .concat ? 3 * c : c
    let gc = cot.map { $0.scalars.map(Double.init) }
    var out: [Double] = [], gPlanes = [Double](repeating: 0, count: s.count), gPoints = [Double](repeating: 0, count: 3 * n)
    func texel(_ plane: Int, _ u: Int, _ v: Int, _ ch: Int) -> Int { ((plane * h + v) * w + u) * c + ch }
    for i in 0..<n {
        let coords = axes.map { (normalized(p[3 * i + $0.0], samples: w), normalized(p[3 * i + $0.1], samples: h)) }
        let feats = (0..<3).map { plane in
            refBilinear(position: [coords[plane].0.0, coords[plane].1.0], slope: [0, 0], samples: [w, h], channels: c,
                        value: { u, v, ch in Double(s[texel(plane, u, v, ch)]) }).out
        }
        switch combine {
        case .sum: out += (0..<c).map { feats[0][$0] + feats[1][$0] + feats[2][$0] }
        case .product: out += (0..<c).map { feats[0][$0] * feats[1][$0] * feats[2][$0] }
        case .concat: out += feats[0] + feats[1] + feats[2]
        }
        guard let gc else { continue }
        let g = Array(gc[(i * width)..<((i + 1) * width)])
        for plane in 0..<3 {
            let gp: [Double]
            switch combine {
            case .sum: gp = g
            case .concat: gp = Array(g[(plane * c)..<((plane + 1) * c)])
            case .product: gp = (0..<c).map { ch in g[ch] * (0..<3).filter { $0 != plane }.map { feats[$0][ch] }.reduce(1, *) }
            }
            let r = refBilinear(position: [coords[plane].0.0, coords[plane].1.0], slope: [coords[plane].0.1, coords[plane].1.1],
                                samples: [w, h], channels: c, cot: gp,
                                value: { u, v, ch in Double(s[texel(plane, u, v, ch)]) },
                                addGrad: { u, v, ch, a in gPlanes[texel(plane, u, v, ch)] += a })
            gPoints[3 * i + axes[plane].0] += r.coordGrad[0]
            gPoints[3 * i + axes[plane].1] += r.coordGrad[1]
        }
    }
    return (out, gPlanes, gPoints)
}

/// The hash-grid entry of a lattice vertex, written independently of the kernel (64-bit products
/// reduced mod 2^32).
private func referenceHashIndex(_ x: Int, _ y: Int, _ z: Int, resolution: Int, tableSize: Int) -> Int {
    let side = resolution + 1
    if side * side * side <= tableSize { return x + side * y + side * side * z }
    let h = (UInt64(x) ^ (UInt64(y) * 2_654_435_761) ^ (UInt64(z) * 805_459_861)) & 0xFFFF_FFFF
    return Int(h % UInt64(tableSize))
}

/// Reference hash-grid encoding with the VJP.
private func referenceHashGrid(tables: Tensor, points: Tensor, base: Int, growth: Float, cot: Tensor?)
    -> (out: [Double], gTables: [Double], gPoints: [Double]) {
    let (levels, size, f) = (tables.shape[0], tables.shape[1], tables.shape[2])
    let t = tables.scalars, p = points.scalars, n = points.shape[0]
    let gc = cot.map { $0.scalars.map(Double.init) }
    var out = [Double](repeating: 0, count: n * levels * f), gTables = [Double](repeating: 0, count: t.count)
    var gPoints = [Double](repeating: 0, count: 3 * n)
    for l in 0..<levels {
        let res = Int((Double(base) * pow(Double(growth), Double(l))).rounded(.down))
        func entry(_ x: Int, _ y: Int, _ z: Int, _ ch: Int) -> Int {
            (l * size + referenceHashIndex(x, y, z, resolution: res, tableSize: size)) * f + ch
        }
        for i in 0..<n {
            let xs = (0..<3).map { Double(p[3 * i + $0]) }
            let r = refTrilinear(position: xs.map { min(max($0, 0), 1) * Double(res) },
                                 slope: xs.map { $0 >= 0 && $0 <= 1 ? Double(res) : 0 },
                                 samples: [res + 1, res + 1, res + 1], channels: f,
                                 cot: gc.map { g in (0..<f).map { g[i * levels * f + l * f + $0] } },
                                 value: { x, y, z, ch in Double(t[entry(x, y, z, ch)]) },
                                 addGrad: { x, y, z, ch, a in gTables[entry(x, y, z, ch)] += a })
            for ch in 0..<f { out[i * levels * f + l * f + ch] = r.out[ch] }
            for a in 0..<3 { gPoints[3 * i + a] += r.coordGrad[a] }
        }
    }
    return (out, gTables, gPoints)
}

private func maxDiff(_ a: Tensor, _ b: [Double]) -> Double {
    zip(a.scalars, b).map { abs(Double($0) - $1) }.max() ?? 0
}

private func maxAbs(_ b: [Double]) -> Double { b.map(abs).max() ?? 0 }

/// Gradients of `Σ cot ⊙ f(inputs)` with respect to the inputs marked in `track` (zeros elsewhere).
private func vjp(_ inputs: [Tensor], track: [Bool], cot: Tensor, _ f: ([Tensor]) throws -> Tensor) rethrows -> [Tensor] {
    let vars = zip(inputs, track).map { $1 ? $0.requiringGrad() : $0 }
    let y = try f(vars)
    let tracked = zip(vars, track).filter { $1 }.map { $0.0 }
    var grads = grad(of: y, wrt: tracked, seed: cot)[...]
    return zip(inputs, track).map { $1 ? grads.removeFirst() : Tensor.zeros($0.shape) }
}

/// Normalised coordinates in [-1, 1] whose sample positions sit at fractions in [0.2, 0.8] of
/// their cells on every axis (the interpolation is smooth there, so finite differences apply).
private func interiorPoints(_ n: Int, samples: [Int], rng: inout RandomGenerator) -> Tensor {
    var values: [Float] = []
    for _ in 0..<n {
        for s in samples {
            let cell = Float(rng.int(below: s - 1)), f = rng.uniform([1], low: 0.2, high: 0.8).item
            values.append((cell + f) / Float(s - 1) * 2 - 1)
        }
    }
    return Tensor(values, shape: [n, 3])
}

// MARK: - Dense voxel grid

@Suite struct FeatureGridTrilinearTests {
    /// Large enough (N·C ≥ 4096) for the two-thread paths; some points outside [-1, 1].
    @Test(arguments: [1, 4])
    func fastKernelMatchesPlainLoops(channels c: Int) throws {
        var rng = RandomGenerator(seed: 1)
        let grid = rng.uniform([5, 4, 6, c], low: -1, high: 1)
        let n = 6000
        let points = rng.uniform([n, 3], low: -1.2, high: 1.2)
        let cot = rng.normal([n, c])
        let out = try FeatureGrids.trilinear(grid: grid, points: points)
        let ref = referenceTrilinear(grid: grid, points: points, cot: cot)
        #expect(out.shape == [n, c])
        #expect(maxDiff(out, ref.out) < 1e-5)
        let g = try vjp([grid, points], track: [true, true], cot: cot) { try FeatureGrids.trilinear(grid: $0[0], points: $0[1]) }
        // Each grid entry sums hundreds of contributions: compare relative to the largest.
        #expect(maxDiff(g[0], ref.gGrid) < 1e-5 * max(1, maxAbs(ref.gGrid)), "grid gradient off by \(maxDiff(g[0], ref.gGrid))")
        #expect(maxDiff(g[1], ref.gPoints) < 1e-4, "point gradient off by \(maxDiff(g[1], ref.gPoints))")
        // Clamped coordinates get no gradient.
        let p = points.scalars, gp = g[1].scalars
        #expect((0..<(3 * n)).allSatisfy { abs(p[$0]) <= 1 || gp[$0] == 0 })
        // The points-only path (split over points) agrees with the path split over grid slices.
        let onlyPoints = try vjp([grid, points], track: [false, true], cot: cot) { try FeatureGrids.trilinear(grid: $0[0], points: $0[1]) }
        #expect(onlyPoints[1].allClose(g[1], rtol: 1e-5, atol: 1e-5))
        // Deterministic: the same bits again.
        let again = try vjp([grid, points], track: [true, true], cot: cot) { try FeatureGrids.trilinear(grid: $0[0], points: $0[1]) }
        #expect(again[0].scalars == g[0].scalars && again[1].scalars == g[1].scalars)
    }

    /// Same convention as the engine's channels-first `gridSample3d` with aligned corners and
    /// border padding (PyTorch's `grid_sample`), values and both gradients.
    @Test func agreesWithChannelsFirstGridSample() throws {
        var rng = RandomGenerator(seed: 2)
        let (d, h, w, c, n) = (4, 5, 3, 3, 50)
        let grid = rng.normal([d, h, w, c])
        let points = rng.uniform([n, 3], low: -0.99, high: 0.99)
        let cot = rng.normal([n, c])
        let ours = try vjp([grid, points], track: [true, true], cot: cot) { try FeatureGrids.trilinear(grid: $0[0], points: $0[1]) }
        let theirs = vjp([grid, points], track: [true, true], cot: cot) { xs in
            gridSample3d(xs[0].permuted(3, 0, 1, 2).reshaped([1, c, d, h, w]), grid: xs[1].reshaped([1, 1, 1, n, 3]),
                         padding: .border, alignCorners: true).reshaped([c, n]).transposed()
        }
        let a = try FeatureGrids.trilinear(grid: grid, points: points)
        let b = gridSample3d(grid.permuted(3, 0, 1, 2).reshaped([1, c, d, h, w]), grid: points.reshaped([1, 1, 1, n, 3]),
                             padding: .border, alignCorners: true).reshaped([c, n]).transposed()
        #expect(a.allClose(b, rtol: 1e-5, atol: 1e-5))
        #expect(ours[0].allClose(theirs[0], rtol: 1e-4, atol: 1e-5))
        #expect(ours[1].allClose(theirs[1], rtol: 1e-4, atol: 1e-4))
    }

    /// Trilinear interpolation is exact for functions linear in position: a grid holding
    /// v_c(x, y, z) = a_c · (x, y, z) + b_c at the voxel centres returns that value at any point,
    /// and its gradient with respect to the point is a_c.
    @Test func linearFieldIsReproducedExactly() throws {
        let (d, h, w) = (4, 6, 5)
        let a: [[Float]] = [[0.5, -1.5, 2], [1, 0.25, -0.75]], b: [Float] = [0.3, -2]
        var values: [Float] = []
        for z in 0..<d {
            for y in 0..<h {
                for x in 0..<w {
                    let pos = [Float(x) / Float(w - 1) * 2 - 1, Float(y) / Float(h - 1) * 2 - 1, Float(z) / Float(d - 1) * 2 - 1]
                    for ch in 0..<2 { values.append(a[ch][0] * pos[0] + a[ch][1] * pos[1] + a[ch][2] * pos[2] + b[ch]) }
                }
            }
        }
        let grid = Tensor(values, shape: [d, h, w, 2])
        var rng = RandomGenerator(seed: 3)
        let n = 200
        let points = rng.uniform([n, 3], low: -1, high: 1)
        let out = try FeatureGrids.trilinear(grid: grid, points: points)
        let p = points.scalars, o = out.scalars
        for i in 0..<n {
            for ch in 0..<2 {
                let expected = a[ch][0] * p[3 * i] + a[ch][1] * p[3 * i + 1] + a[ch][2] * p[3 * i + 2] + b[ch]
                #expect(abs(o[2 * i + ch] - expected) < 1e-5)
            }
        }
        // d(out_0 + 2 out_1)/dp = a_0 + 2 a_1 everywhere inside.
        let cot = Tensor((0..<(2 * n)).map { Float($0 % 2 + 1) }, shape: [n, 2])
        let gp = try vjp([grid, points], track: [false, true], cot: cot) { try FeatureGrids.trilinear(grid: $0[0], points: $0[1]) }[1].scalars
        for i in 0..<n {
            for axis in 0..<3 { #expect(abs(gp[3 * i + axis] - (a[0][axis] + 2 * a[1][axis])) < 1e-4) }
        }
        // Outside the box: the value at the clamped point, and no gradient along the clamped axis.
        let outside = Tensor([1.5, 0.2, -3, 0.1, -0.4, 0.7] as [Float], shape: [2, 3])
        let clamped = Tensor([1, 0.2, -1, 0.1, -0.4, 0.7] as [Float], shape: [2, 3])
        #expect(try FeatureGrids.trilinear(grid: grid, points: outside).allClose(try FeatureGrids.trilinear(grid: grid, points: clamped)))
        let go = try vjp([grid, outside], track: [false, true], cot: Tensor.ones([2, 2])) { try FeatureGrids.trilinear(grid: $0[0], points: $0[1]) }[1].scalars
        #expect(go[0] == 0 && go[2] == 0 && abs(go[1] - (a[0][1] + a[1][1])) < 1e-4)
    }

    @Test func gradientsMatchFiniteDifferences() throws {
        var rng = RandomGenerator(seed: 4)
        let grid = rng.normal([3, 4, 5, 2])
        let points = interiorPoints(6, samples: [5, 4, 3], rng: &rng)
        let f: ([Tensor]) -> Tensor = { xs in try! FeatureGrids.trilinear(grid: xs[0], points: xs[1]) }
        // Linear in the grid values: a large step is exact.
        let values = GradientCheck.check([grid, points], wrt: [0], step: 1e-2, atol: 1e-3, rtol: 1e-2, f)
        #expect(values.passed, "\(values)")
        let coords = GradientCheck.check([grid, points], wrt: [1], step: 1e-3, atol: 2e-3, rtol: 1e-2, f)
        #expect(coords.passed, "\(coords)")
    }

    @Test func singleSampleAxesAreConstant() throws {
        // D = 1: the grid is a 2D image, constant along z; z gets no gradient.
        var rng = RandomGenerator(seed: 5)
        let grid = rng.normal([1, 3, 3, 2])
        let points = rng.uniform([10, 3], low: -1, high: 1)
        var moved = points
        moved.withUnsafeMutableBufferPointer { p in for i in 0..<10 { p[3 * i + 2] = -p[3 * i + 2] * 0.5 } }
        #expect(try FeatureGrids.trilinear(grid: grid, points: points).allClose(try FeatureGrids.trilinear(grid: grid, points: moved)))
        let g = try vjp([grid, points], track: [true, true], cot: Tensor.ones([10, 2])) { try FeatureGrids.trilinear(grid: $0[0], points: $0[1]) }
        #expect((0..<10).allSatisfy { g[1].scalars[3 * $0 + 2] == 0 })
        #expect(maxDiff(g[1], referenceTrilinear(grid: grid, points: points, cot: Tensor.ones([10, 2])).gPoints) < 1e-5)
    }

    @Test func badInputIsRefused() {
        let grid = Tensor.zeros([2, 2, 2, 1])
        #expect(throws: TensorError.self) { try FeatureGrids.trilinear(grid: Tensor.zeros([2, 2, 2]), points: Tensor.zeros([1, 3])) }
        #expect(throws: TensorError.self) { try FeatureGrids.trilinear(grid: Tensor.zeros([2, 0, 2, 1]), points: Tensor.zeros([1, 3])) }
        #expect(throws: TensorError.self) { try FeatureGrids.trilinear(grid: grid, points: Tensor.zeros([4, 2])) }
        for bad in [Float.nan, .infinity] {
            let points = Tensor([0, 0, 0, 0.5, bad, 0] as [Float], shape: [2, 3])
            do {
                _ = try FeatureGrids.trilinear(grid: grid, points: points)
                Issue.record("non-finite point accepted")
            } catch let error as TensorError {
                #expect(error.description.contains("point 1"), "\(error)")
            } catch { Issue.record("unexpected error \(error)") }
        }
        // No points: an empty result, not an error.
        #expect((try? FeatureGrids.trilinear(grid: grid, points: Tensor.zeros([0, 3])))?.shape == [0, 1])
    }
}

// MARK: - Triplanes

@Suite struct FeatureGridTriplaneTests {
    @Test(arguments: TriplaneCombination.allCases)
    func fastKernelMatchesPlainLoops(combine: TriplaneCombination) throws {
        var rng = RandomGenerator(seed: 10)
        let (h, w, c, n) = (5, 7, 3, 3000)
        let planes = rng.uniform([3, h, w, c], low: -1, high: 1)
        let points = rng.uniform([n, 3], low: -1.1, high: 1.1)
        let width = combine == .concat ? 3 * c : c
        let cot = rng.normal([n, width])
        let out = try FeatureGrids.triplane(planes: planes, points: points, combine: combine)
        let ref = referenceTriplane(planes: planes, points: points, combine: combine, cot: cot)
        #expect(out.shape == [n, width])
        #expect(maxDiff(out, ref.out) < 1e-5)
        let g = try vjp([planes, points], track: [true, true], cot: cot) { try FeatureGrids.triplane(planes: $0[0], points: $0[1], combine: combine) }
        #expect(maxDiff(g[0], ref.gPlanes) < 1e-5 * max(1, maxAbs(ref.gPlanes)), "plane gradient off by \(maxDiff(g[0], ref.gPlanes))")
        #expect(maxDiff(g[1], ref.gPoints) < 1e-4, "point gradient off by \(maxDiff(g[1], ref.gPoints))")
        let onlyPoints = try vjp([planes, points], track: [false, true], cot: cot) {
            try FeatureGrids.triplane(planes: $0[0], points: $0[1], combine: combine)
        }
        #expect(onlyPoints[1].allClose(g[1], rtol: 1e-5, atol: 1e-5))
    }

    /// Bilinear interpolation is exact for linear functions: planes holding
    /// xy: α·x + β·y + 1, xz: γ·x + δ·z + 2, yz: ε·y + ζ·z + 3 at their texel centres give exactly
    /// those values, so the sum is linear in the point and the product a known cubic.
    @Test func linearPlanesAreReproducedExactly() throws {
        let (h, w) = (4, 6)
        let coef: [(Float, Float, Float)] = [(0.5, -1, 1), (2, 0.25, 2), (-0.75, 1.5, 3)]
        var values: [Float] = []
        for plane in 0..<3 {
            for v in 0..<h {
                for u in 0..<w {
                    let cu = Float(u) / Float(w - 1) * 2 - 1, cv = Float(v) / Float(h - 1) * 2 - 1
                    values.append(coef[plane].0 * cu + coef[plane].1 * cv + coef[plane].2)
                }
            }
        }
        let planes = Tensor(values, shape: [3, h, w, 1])
        var rng = RandomGenerator(seed: 11)
        let n = 100
        let points = rng.uniform([n, 3], low: -1, high: 1)
        let p = points.scalars
        func feature(_ plane: Int, _ i: Int) -> Float {
            let (ua, va) = [(0, 1), (0, 2), (1, 2)][plane]
            return coef[plane].0 * p[3 * i + ua] + coef[plane].1 * p[3 * i + va] + coef[plane].2
        }
        let sum = try FeatureGrids.triplane(planes: planes, points: points, combine: .sum).scalars
        let product = try FeatureGrids.triplane(planes: planes, points: points, combine: .product).scalars
        let concat = try FeatureGrids.triplane(planes: planes, points: points, combine: .concat).scalars
        for i in 0..<n {
            let f = (0..<3).map { feature($0, i) }
            #expect(abs(sum[i] - (f[0] + f[1] + f[2])) < 1e-5)
            #expect(abs(product[i] - f[0] * f[1] * f[2]) < 1e-4)
            #expect((0..<3).allSatisfy { abs(concat[3 * i + $0] - f[$0]) < 1e-5 })
        }
        // The sum's gradient: x gets α + γ, y gets β + ε, z gets δ + ζ.
        let g = try vjp([planes, points], track: [false, true], cot: Tensor.ones([n, 1])) {
            try FeatureGrids.triplane(planes: $0[0], points: $0[1], combine: .sum)
        }[1].scalars
        let expected = [coef[0].0 + coef[1].0, coef[0].1 + coef[2].0, coef[1].1 + coef[2].1]
        for i in 0..<n { for a in 0..<3 { #expect(abs(g[3 * i + a] - expected[a]) < 1e-4) } }
    }

    @Test(arguments: TriplaneCombination.allCases)
    func gradientsMatchFiniteDifferences(combine: TriplaneCombination) throws {
        var rng = RandomGenerator(seed: 12)
        let planes = rng.normal([3, 3, 4, 2])
        // Every coordinate is used with H = 3 on some planes and W = 4 on others: keep all of
        // them inside cells on both lattices.
        var points: [Float] = []
        while points.count < 15 {
            let u = rng.uniform([1], low: -1, high: 1).item
            let fracs = [3, 4].map { s -> Float in let pos = (u + 1) / 2 * Float(s - 1); return pos - pos.rounded(.down) }
            if fracs.allSatisfy({ $0 > 0.15 && $0 < 0.85 }) { points.append(u) }
        }
        let pts = Tensor(points, shape: [5, 3])
        let f: ([Tensor]) -> Tensor = { xs in try! FeatureGrids.triplane(planes: xs[0], points: xs[1], combine: combine) }
        let values = GradientCheck.check([planes, pts], wrt: [0], step: 1e-2, atol: 1e-3, rtol: 1e-2, f)
        #expect(values.passed, "\(values)")
        let coords = GradientCheck.check([planes, pts], wrt: [1], step: 1e-3, atol: 2e-3, rtol: 1e-2, f)
        #expect(coords.passed, "\(coords)")
    }

    @Test func badInputIsRefused() {
        #expect(throws: TensorError.self) { try FeatureGrids.triplane(planes: Tensor.zeros([2, 4, 4, 1]), points: Tensor.zeros([1, 3])) }
        #expect(throws: TensorError.self) { try FeatureGrids.triplane(planes: Tensor.zeros([3, 4, 4]), points: Tensor.zeros([1, 3])) }
        #expect(throws: TensorError.self) { try FeatureGrids.triplane(planes: Tensor.zeros([3, 4, 4, 1]), points: Tensor.zeros([3])) }
        #expect(throws: TensorError.self) {
            try FeatureGrids.triplane(planes: Tensor.zeros([3, 4, 4, 1]), points: Tensor([0, .nan, 0] as [Float], shape: [1, 3]))
        }
    }
}

// MARK: - Multiresolution hash grid

@Suite struct FeatureGridHashTests {
    @Test func levelsAndIndexing() {
        #expect(FeatureGrids.hashGridResolutions(levels: 3, baseResolution: 16, growth: 2) == [16, 32, 64])
        #expect(FeatureGrids.hashGridResolutions(levels: 5, baseResolution: 16, growth: 1.5) == [16, 24, 36, 54, 81])
        // Hashed entries, pinned to values computed outside Swift.
        #expect(HashLevel(resolution: 1000, tableSize: 1 << 19).index(1, 2, 3) == 128_476)
        #expect(HashLevel(resolution: 1000, tableSize: 1000).index(7, 0, 5) == 310)   // not a power of two
        #expect(HashLevel(resolution: 1000, tableSize: 1 << 14).index(100, 200, 300) == 12_464)
        // A lattice that fits is indexed densely.
        let dense = HashLevel(resolution: 4, tableSize: 125)
        #expect(dense.dense && dense.index(1, 2, 3) == 1 + 5 * 2 + 25 * 3)
        #expect(!HashLevel(resolution: 5, tableSize: 125).dense)
        for (x, y, z) in [(0, 0, 0), (17, 3, 900), (4095, 4096, 1)] {
            #expect(HashLevel(resolution: 5000, tableSize: 1 << 19).index(x, y, z)
                    == referenceHashIndex(x, y, z, resolution: 5000, tableSize: 1 << 19))
        }
        // Instant-NGP's defaults: b = 2^(7/15) from 16 to 2048 cells over 16 levels.
        let config = HashGridConfig()
        #expect(abs(config.growth - 1.381912) < 1e-5)
        let res = config.resolutions
        #expect(res.count == 16 && res[0] == 16 && (2047...2048).contains(res[15]))
        #expect(zip(res, res.dropFirst()).allSatisfy { $0 < $1 })
        #expect(config.outputWidth == 32)
    }

    /// Mixed dense and hashed levels, a non-power-of-two table, points partly outside the cube,
    /// enough of them for the two-thread paths.
    @Test(arguments: [512, 500])
    func fastKernelMatchesPlainLoops(tableSize: Int) throws {
        var rng = RandomGenerator(seed: 20)
        let (levels, f, base, growth): (Int, Int, Int, Float) = (4, 2, 3, 1.7)
        #expect(FeatureGrids.hashGridResolutions(levels: levels, baseResolution: base, growth: growth) == [3, 5, 8, 14])
        let tables = rng.uniform([levels, tableSize, f], low: -1, high: 1)
        let n = 3000
        let points = rng.uniform([n, 3], low: -0.1, high: 1.1)
        let cot = rng.normal([n, levels * f])
        let out = try FeatureGrids.hashGrid(tables: tables, points: points, baseResolution: base, growth: growth)
        let ref = referenceHashGrid(tables: tables, points: points, base: base, growth: growth, cot: cot)
        #expect(out.shape == [n, levels * f])
        #expect(maxDiff(out, ref.out) < 1e-5)
        let encode: ([Tensor]) throws -> Tensor = { try FeatureGrids.hashGrid(tables: $0[0], points: $0[1], baseResolution: base, growth: growth) }
        let g = try vjp([tables, points], track: [true, true], cot: cot, encode)
        #expect(maxDiff(g[0], ref.gTables) < 1e-5 * max(1, maxAbs(ref.gTables)), "table gradient off by \(maxDiff(g[0], ref.gTables))")
        #expect(maxDiff(g[1], ref.gPoints) < 1e-5 * max(1, maxAbs(ref.gPoints)), "point gradient off by \(maxDiff(g[1], ref.gPoints))")
        let onlyPoints = try vjp([tables, points], track: [false, true], cot: cot, encode)
        #expect(onlyPoints[1].allClose(g[1], rtol: 1e-5, atol: 1e-4))
        let onlyTables = try vjp([tables, points], track: [true, false], cot: cot, encode)
        #expect(onlyTables[0].scalars == g[0].scalars)
    }

    /// On levels where the lattice fits the table (dense indexing), tables holding a linear
    /// function of the vertex position reproduce it exactly, with its gradient.
    @Test func linearFieldOnDenseLevelsIsExact() throws {
        let (base, growth, size) = (4, Float(2), 729)   // 4 and 8 cells: 125 and 729 vertices
        let resolutions = FeatureGrids.hashGridResolutions(levels: 2, baseResolution: base, growth: growth)
        #expect(resolutions.allSatisfy { HashLevel(resolution: $0, tableSize: size).dense })
        let a: [[Float]] = [[1, -2, 0.5], [0.25, 0.75, -1.5]], b: [Float] = [0.1, -0.3]
        var values = [Float](repeating: 0, count: 2 * size * 2)
        for (l, res) in resolutions.enumerated() {
            for z in 0...res { for y in 0...res { for x in 0...res {
                let e = referenceHashIndex(x, y, z, resolution: res, tableSize: size)
                let pos = [x, y, z].map { Float($0) / Float(res) }
                for ch in 0..<2 {
                    // Level 1 holds twice the field, so the two levels are told apart.
                    values[(l * size + e) * 2 + ch] = Float(l + 1) * (a[ch][0] * pos[0] + a[ch][1] * pos[1] + a[ch][2] * pos[2] + b[ch])
                }
            } } }
        }
        let tables = Tensor(values, shape: [2, size, 2])
        var rng = RandomGenerator(seed: 21)
        let n = 300
        let points = rng.uniform([n, 3])
        let out = try FeatureGrids.hashGrid(tables: tables, points: points, baseResolution: base, growth: growth).scalars
        let p = points.scalars
        for i in 0..<n {
            for l in 0..<2 {
                for ch in 0..<2 {
                    let expected = Float(l + 1) * (a[ch][0] * p[3 * i] + a[ch][1] * p[3 * i + 1] + a[ch][2] * p[3 * i + 2] + b[ch])
                    #expect(abs(out[i * 4 + l * 2 + ch] - expected) < 1e-5)
                }
            }
        }
        let g = try vjp([tables, points], track: [false, true], cot: Tensor.ones([n, 4])) {
            try FeatureGrids.hashGrid(tables: $0[0], points: $0[1], baseResolution: base, growth: growth)
        }[1].scalars
        for i in 0..<n { for axis in 0..<3 { #expect(abs(g[3 * i + axis] - 3 * (a[0][axis] + a[1][axis])) < 1e-4) } }
    }

    /// A table far too small for its levels: vertices collide, outputs and gradients stay finite,
    /// and since the eight weights of a lookup sum to 1, each level's table gradient sums to the
    /// sum of that level's output cotangents.
    @Test func collisionsKeepGradientsConsistent() throws {
        let (levels, size, f, base, growth): (Int, Int, Int, Int, Float) = (3, 16, 2, 4, 2)
        var rng = RandomGenerator(seed: 22)
        let tables = rng.normal([levels, size, f])
        let n = 500
        let points = rng.uniform([n, 3])
        // Every level is hashed (125, 729 and 4913 vertices into 16 entries), and the points touch
        // far more vertices than there are entries.
        let resolutions = FeatureGrids.hashGridResolutions(levels: levels, baseResolution: base, growth: growth)
        #expect(resolutions.allSatisfy { !HashLevel(resolution: $0, tableSize: size).dense })
        var vertices = Set<[Int]>()
        for i in 0..<n {
            let cell = (0..<3).map { Int((points.scalars[3 * i + $0] * 16).rounded(.down)) }
            vertices.insert(cell)
        }
        #expect(vertices.count > 10 * size)
        let cot = rng.normal([n, levels * f])
        let encode: ([Tensor]) throws -> Tensor = { try FeatureGrids.hashGrid(tables: $0[0], points: $0[1], baseResolution: base, growth: growth) }
        let out = try encode([tables, points])
        let g = try vjp([tables, points], track: [true, true], cot: cot, encode)
        #expect(out.isFinite && g[0].isFinite && g[1].isFinite)
        let gt = g[0].scalars, c = cot.scalars
        for l in 0..<levels {
            for ch in 0..<f {
                let tableSum = (0..<size).map { Double(gt[(l * size + $0) * f + ch]) }.reduce(0, +)
                let cotSum = (0..<n).map { Double(c[$0 * levels * f + l * f + ch]) }.reduce(0, +)
                #expect(abs(tableSum - cotSum) < 1e-3, "level \(l) feature \(ch): \(tableSum) vs \(cotSum)")
            }
        }
        let ref = referenceHashGrid(tables: tables, points: points, base: base, growth: growth, cot: cot)
        #expect(maxDiff(g[0], ref.gTables) < 1e-5 * max(1, maxAbs(ref.gTables)))
        // Finite differences through the collisions (a few points).
        let few = rng.uniform([8, 3])
        let check = GradientCheck.check([tables, few], wrt: [0], step: 1e-2, atol: 1e-3, rtol: 1e-2) { try! encode($0) }
        #expect(check.passed, "\(check)")
    }

    @Test func gradientsMatchFiniteDifferences() throws {
        // 2, 3 and 4 cells: dense, dense, hashed (125 vertices in 64 entries).
        let (levels, size, f, base, growth): (Int, Int, Int, Int, Float) = (3, 64, 2, 2, 1.5)
        let resolutions = FeatureGrids.hashGridResolutions(levels: levels, baseResolution: base, growth: growth)
        #expect(resolutions == [2, 3, 4])
        var rng = RandomGenerator(seed: 23)
        let tables = rng.normal([levels, size, f])
        // Points inside cells on every level (the encoding is only piecewise smooth).
        var coords: [Float] = []
        while coords.count < 18 {
            let x = rng.uniform([1]).item
            if resolutions.allSatisfy({ let p = x * Float($0); return p - p.rounded(.down) > 0.1 && p - p.rounded(.down) < 0.9 }) {
                coords.append(x)
            }
        }
        let points = Tensor(coords, shape: [6, 3])
        let encode: ([Tensor]) -> Tensor = { try! FeatureGrids.hashGrid(tables: $0[0], points: $0[1], baseResolution: base, growth: growth) }
        let values = GradientCheck.check([tables, points], wrt: [0], step: 1e-2, atol: 1e-3, rtol: 1e-2, encode)
        #expect(values.passed, "\(values)")
        let positions = GradientCheck.check([tables, points], wrt: [1], step: 1e-3, atol: 2e-3, rtol: 1e-2, encode)
        #expect(positions.passed, "\(positions)")
    }

    @Test func badInputIsRefused() {
        let tables = Tensor.zeros([2, 64, 2])
        let points = Tensor.zeros([3, 3])
        #expect(throws: TensorError.self) { try FeatureGrids.hashGrid(tables: Tensor.zeros([64, 2]), points: points, baseResolution: 4, growth: 2) }
        #expect(throws: TensorError.self) { try FeatureGrids.hashGrid(tables: tables, points: Tensor.zeros([3, 2]), baseResolution: 4, growth: 2) }
        #expect(throws: TensorError.self) {
            try FeatureGrids.hashGrid(tables: tables, points: Tensor([0, 0, .nan] as [Float], shape: [1, 3]), baseResolution: 4, growth: 2)
        }
        #expect(throws: TensorError.self) { try FeatureGrids.hashGrid(tables: tables, points: points, baseResolution: 0, growth: 2) }
        #expect(throws: TensorError.self) { try FeatureGrids.hashGrid(tables: tables, points: points, baseResolution: 4, growth: .nan) }
        // 4 · 0.1 = 0.4 cells on the second level.
        #expect(throws: TensorError.self) { try FeatureGrids.hashGrid(tables: tables, points: points, baseResolution: 4, growth: 0.1) }
        #expect(throws: TensorError.self) { try FeatureGrids.hashGrid(tables: tables, points: points, baseResolution: 1 << 25, growth: 1) }
        #expect(throws: TensorError.self) { try HashGridConfig(levels: 2, tableSize: 32).encode(points, tables: tables) }
    }

    @Test func configEncodesAndRoundTrips() throws {
        let config = HashGridConfig(levels: 4, tableSize: 1 << 10, featuresPerLevel: 2, baseResolution: 4, finestResolution: 32)
        var rng = RandomGenerator(seed: 24)
        let tables = config.initialTables(rng: &rng)
        #expect(tables.shape == [4, 1024, 2])
        #expect(tables.scalars.allSatisfy { abs($0) <= 1e-4 })
        let out = try config.encode(rng.uniform([10, 3]), tables: tables)
        #expect(out.shape == [10, 8])
        let decoded = try JSONDecoder().decode(HashGridConfig.self, from: JSONEncoder().encode(config))
        #expect(decoded == config)
        #expect(config.resolutions.first == 4 && (31...32).contains(config.resolutions.last!))
    }
}
