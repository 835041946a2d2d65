import Foundation
import Testing
@testable import DeformTensor

// Slow references written from PyTorch's documented conventions, in Double.

fileprivate func referenceUpsampleNearest(_ x: Tensor, size: (Int, Int)) -> Tensor {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    var y = [Float]()
    for b in 0..<n { for ch in 0..<c { for i in 0..<size.0 { for j in 0..<size.1 {
        y.append(x[b, ch, Swift.min(i * h / size.0, h - 1), Swift.min(j * w / size.1, w - 1)])
    } } } }
    return Tensor(y, shape: [n, c, size.0, size.1])
}

/// Source coordinate of a destination pixel for linear resizing (PyTorch's convention).
fileprivate func referenceLinearSource(_ dst: Int, input: Int, output: Int, alignCorners: Bool) -> Double {
    if alignCorners { return output > 1 ? Double(dst) * Double(input - 1) / Double(output - 1) : 0 }
    return Swift.max(0, (Double(dst) + 0.5) * Double(input) / Double(output) - 0.5)
}

fileprivate func referenceUpsampleBilinear(_ x: Tensor, size: (Int, Int), alignCorners: Bool) -> Tensor {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    var y = [Float]()
    for b in 0..<n { for ch in 0..<c { for i in 0..<size.0 { for j in 0..<size.1 {
        let sy = referenceLinearSource(i, input: h, output: size.0, alignCorners: alignCorners)
        let sx = referenceLinearSource(j, input: w, output: size.1, alignCorners: alignCorners)
        let y0 = Swift.min(Int(sy), h - 1), x0 = Swift.min(Int(sx), w - 1)
        let y1 = Swift.min(y0 + 1, h - 1), x1 = Swift.min(x0 + 1, w - 1)
        let fy = sy - Double(y0), fx = sx - Double(x0)
        func v(_ r: Int, _ q: Int) -> Double { Double(x[b, ch, r, q]) }
        let top = (1 - fx) * v(y0, x0) + fx * v(y0, x1), bottom = (1 - fx) * v(y1, x0) + fx * v(y1, x1)
        y.append(Float((1 - fy) * top + fy * bottom))
    } } } }
    return Tensor(y, shape: [n, c, size.0, size.1])
}

/// Pixel coordinate of a normalised grid coordinate, clamped for border padding.
fileprivate func referencePixel(_ g: Float, size: Int, padding: GridPadding, alignCorners: Bool) -> Double {
    let g = Double(g)
    let p = alignCorners ? (g + 1) / 2 * Double(size - 1) : ((g + 1) * Double(size) - 1) / 2
    return padding == .border ? Swift.min(Swift.max(p, 0), Double(size - 1)) : p
}

/// Multilinear interpolation with zero outside: the sum over corners of weight times value.
fileprivate func referenceInterpolate(_ coords: [Double], sizes: [Int], value: ([Int]) -> Double) -> Double {
    var s = 0.0
    for corner in 0..<(1 << coords.count) {
        var weight = 1.0
        var idx = [Int]()
        for (a, p) in coords.enumerated() {
            let lo = floor(p), bit = (corner >> a) & 1
            weight *= bit == 1 ? p - lo : 1 - (p - lo)
            idx.append(Int(lo) + bit)
        }
        if zip(idx, sizes).allSatisfy({ $0 >= 0 && $0 < $1 }) { s += weight * value(idx) }
    }
    return s
}

fileprivate func referenceGridSample(_ x: Tensor, _ grid: Tensor, padding: GridPadding, alignCorners: Bool) -> Tensor {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (ho, wo) = (grid.shape[1], grid.shape[2])
    var y = [Float]()
    for b in 0..<n { for ch in 0..<c { for i in 0..<ho { for j in 0..<wo {
        let px = referencePixel(grid[b, i, j, 0], size: w, padding: padding, alignCorners: alignCorners)
        let py = referencePixel(grid[b, i, j, 1], size: h, padding: padding, alignCorners: alignCorners)
        y.append(Float(referenceInterpolate([px, py], sizes: [w, h]) { Double(x[b, ch, $0[1], $0[0]]) }))
    } } } }
    return Tensor(y, shape: [n, c, ho, wo])
}

fileprivate func referenceGridSample3d(_ x: Tensor, _ grid: Tensor, padding: GridPadding, alignCorners: Bool) -> Tensor {
    let (n, c, d, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], x.shape[4])
    let (dO, hO, wO) = (grid.shape[1], grid.shape[2], grid.shape[3])
    var y = [Float]()
    for b in 0..<n { for ch in 0..<c { for k in 0..<dO { for i in 0..<hO { for j in 0..<wO {
        let px = referencePixel(grid[b, k, i, j, 0], size: w, padding: padding, alignCorners: alignCorners)
        let py = referencePixel(grid[b, k, i, j, 1], size: h, padding: padding, alignCorners: alignCorners)
        let pz = referencePixel(grid[b, k, i, j, 2], size: d, padding: padding, alignCorners: alignCorners)
        y.append(Float(referenceInterpolate([px, py, pz], sizes: [w, h, d]) { Double(x[b, ch, $0[2], $0[1], $0[0]]) }))
    } } } } }
    return Tensor(y, shape: [n, c, dO, hO, wO])
}

/// A random grid whose pixel coordinates keep at least 0.2 px from integers (the kinks of linear
/// interpolation and of border clamping), spanning a little beyond the image on every side.
fileprivate func randomGrid(_ shape: [Int], sizes: [Int], alignCorners: Bool, seed: UInt64) -> Tensor {
    var rng = RandomGenerator(seed: seed)
    let dims = sizes.count
    let count = shape.reduce(1, *)
    let fractions = rng.uniform([count], low: 0.2, high: 0.8).scalars
    var values = [Float]()
    for i in 0..<count {
        let size = sizes[i % dims]
        let pixel = Float(rng.int(below: size + 3) - 2) + fractions[i]
        values.append(alignCorners ? pixel / Float(size - 1) * 2 - 1 : (2 * pixel + 1) / Float(size) - 1)
    }
    return Tensor(values, shape: shape)
}

/// The grid that samples every pixel centre of an h x w image.
fileprivate func identityGrid(n: Int, h: Int, w: Int, alignCorners: Bool) -> Tensor {
    func coord(_ i: Int, _ size: Int) -> Float {
        alignCorners ? Float(i) / Float(size - 1) * 2 - 1 : (2 * Float(i) + 1) / Float(size) - 1
    }
    var v = [Float]()
    for _ in 0..<n { for i in 0..<h { for j in 0..<w { v.append(coord(j, w)); v.append(coord(i, h)) } } }
    return Tensor(v, shape: [n, h, w, 2])
}

@Suite struct SamplingTests {
    @Test func nearestMatchesReference() {
        var rng = RandomGenerator(seed: 40)
        let x = rng.normal([2, 3, 5, 6])
        for size in [(10, 12), (3, 4), (7, 13), (5, 6), (1, 1)] {
            let y = upsampleNearest2d(x, size: size)
            #expect(maxAbsDiff(y, referenceUpsampleNearest(x, size: size)) == 0, "\(size)")
            let r = GradientCheck.check([x]) { upsampleNearest2d($0[0], size: size) }
            #expect(r.passed, "\(size): \(r)")
        }
        #expect(upsampleNearest2d(x, scaleFactor: 2).shape == [2, 3, 10, 12])
    }

    @Test func nearestAnalytic() {
        let x = Tensor([1, 2, 3, 4], shape: [1, 1, 2, 2])
        #expect(upsampleNearest2d(x, scaleFactor: 2).scalars == [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
        // 5 -> 3 columns picks floor(j * 5 / 3) = 0, 1, 3.
        let row = Tensor([10, 11, 12, 13, 14], shape: [1, 1, 1, 5])
        #expect(upsampleNearest2d(row, size: (1, 3)).scalars == [10, 11, 13])
    }

    @Test func bilinearMatchesReference() {
        var rng = RandomGenerator(seed: 41)
        let x = rng.normal([2, 2, 4, 5])
        for alignCorners in [false, true] {
            for size in [(8, 10), (7, 3), (4, 5), (1, 9), (2, 2)] {
                let y = upsampleBilinear2d(x, size: size, alignCorners: alignCorners)
                #expect(maxAbsDiff(y, referenceUpsampleBilinear(x, size: size, alignCorners: alignCorners)) < 1e-5, "\(size) \(alignCorners)")
                let r = GradientCheck.check([x]) { upsampleBilinear2d($0[0], size: size, alignCorners: alignCorners) }
                #expect(r.passed, "\(size) \(alignCorners): \(r)")
            }
        }
    }

    @Test func bilinearAnalytic() {
        let ramp = Tensor([0, 1], shape: [1, 1, 1, 2])
        // Half-pixel centres: sources -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to the last pixel).
        #expect(upsampleBilinear2d(ramp, size: (1, 4)).scalars == [0, 0.25, 0.75, 1])
        // Aligned corners keep the end values and interpolate a ramp exactly.
        let ramp4 = Tensor([0, 1, 2, 3], shape: [1, 1, 1, 4])
        #expect(upsampleBilinear2d(ramp4, size: (1, 7), alignCorners: true).scalars == [0, 0.5, 1, 1.5, 2, 2.5, 3])
        #expect(upsampleBilinear2d(ramp4, scaleFactor: 2).shape == [1, 1, 2, 8])
    }

    @Test func gridSampleMatchesReferenceAndGradients() {
        var rng = RandomGenerator(seed: 42)
        let x = rng.normal([2, 3, 4, 5])
        for alignCorners in [false, true] {
            for padding in [GridPadding.zeros, .border] {
                let grid = randomGrid([2, 3, 4, 2], sizes: [5, 4], alignCorners: alignCorners, seed: alignCorners ? 1 : 2)
                let y = gridSample(x, grid: grid, padding: padding, alignCorners: alignCorners)
                #expect(y.shape == [2, 3, 3, 4])
                #expect(maxAbsDiff(y, referenceGridSample(x, grid, padding: padding, alignCorners: alignCorners)) < 1e-5)
                let r = GradientCheck.check([x, grid]) { gridSample($0[0], grid: $0[1], padding: padding, alignCorners: alignCorners) }
                #expect(r.passed, "\(padding) \(alignCorners): \(r)")
            }
        }
    }

    @Test func gridSampleAnalytic() {
        var rng = RandomGenerator(seed: 43)
        let x = rng.normal([2, 3, 4, 5])
        for alignCorners in [false, true] {
            let id = identityGrid(n: 2, h: 4, w: 5, alignCorners: alignCorners)
            #expect(maxAbsDiff(gridSample(x, grid: id, alignCorners: alignCorners), x) < 1e-5)
        }
        // Shifting the grid one pixel to the right reads the next column; past the edge it reads
        // zeros or repeats the border.
        let shift = identityGrid(n: 2, h: 4, w: 5, alignCorners: false) + Tensor([2.0 / 5, 0])
        let zeros = gridSample(x, grid: shift), border = gridSample(x, grid: shift, padding: .border)
        for b in 0..<2 { for c in 0..<3 { for i in 0..<4 { for j in 0..<5 {
            #expect(abs(zeros[b, c, i, j] - (j < 4 ? x[b, c, i, j + 1] : 0)) < 1e-5)
            #expect(abs(border[b, c, i, j] - x[b, c, i, Swift.min(j + 1, 4)]) < 1e-5)
        } } } }
        // On a horizontal ramp (value = column) the sample is the pixel x coordinate, so its
        // gradient w.r.t. the normalised x is W/2 and w.r.t. y is 0.
        let ramp = Tensor((0..<20).map { Float($0 % 5) }, shape: [1, 1, 4, 5])
        let grid = Tensor([0.1, 0.2, -0.3, 0.55], shape: [1, 1, 2, 2]).requiringGrad()
        let y = gridSample(ramp, grid: grid)
        #expect(abs(y[0, 0, 0, 0] - ((1.1 * 5 - 1) / 2)) < 1e-5)
        let g = grad(of: y.sum(), wrt: grid)
        #expect(g.scalars.enumerated().allSatisfy { abs($1 - ($0 % 2 == 0 ? 2.5 : 0)) < 1e-5 }, "\(g)")
    }

    @Test func gridSample3dMatchesReferenceAndGradients() {
        var rng = RandomGenerator(seed: 44)
        let x = rng.normal([2, 2, 3, 4, 5])
        for alignCorners in [false, true] {
            for padding in [GridPadding.zeros, .border] {
                let grid = randomGrid([2, 2, 2, 3, 3], sizes: [5, 4, 3], alignCorners: alignCorners, seed: alignCorners ? 3 : 4)
                let y = gridSample3d(x, grid: grid, padding: padding, alignCorners: alignCorners)
                #expect(y.shape == [2, 2, 2, 2, 3])
                #expect(maxAbsDiff(y, referenceGridSample3d(x, grid, padding: padding, alignCorners: alignCorners)) < 1e-5)
                let r = GradientCheck.check([x, grid]) { gridSample3d($0[0], grid: $0[1], padding: padding, alignCorners: alignCorners) }
                #expect(r.passed, "\(padding) \(alignCorners): \(r)")
            }
        }
    }

    /// A volume that is constant along depth samples like its 2-D slice, wherever z points inside.
    @Test func gridSample3dReducesTo2d() {
        var rng = RandomGenerator(seed: 45)
        let slice = rng.normal([1, 2, 4, 5])
        let volume = slice.unsqueezed(2).expanded(to: [1, 2, 3, 4, 5])
        let grid2 = randomGrid([1, 3, 4, 2], sizes: [5, 4], alignCorners: false, seed: 5)
        let z = Tensor([-0.6, 0.1, 0.35, 0.5, -0.2, 0.05, 0.3, -0.45, 0.6, 0.15, -0.1, 0.25], shape: [1, 3, 4, 1])
        let grid3 = Tensor.concatenatedLastAxis(grid2, z).unsqueezed(1)
        let y3 = gridSample3d(volume, grid: grid3, padding: .border)
        let y2 = gridSample(slice, grid: grid2, padding: .border)
        #expect(maxAbsDiff(y3.squeezed([2]), y2) < 1e-5)
    }
}

fileprivate extension Tensor {
    /// Concatenation along the last axis for tests (no recording).
    static func concatenatedLastAxis(_ a: Tensor, _ b: Tensor) -> Tensor {
        let ka = a.shape.last!, kb = b.shape.last!, rows = a.count / ka
        var v = [Float]()
        let sa = a.scalars, sb = b.scalars
        for r in 0..<rows { v += sa[(r * ka)..<((r + 1) * ka)]; v += sb[(r * kb)..<((r + 1) * kb)] }
        return Tensor(v, shape: Array(a.shape.dropLast()) + [ka + kb])
    }
}

/// Gradient of <gridSample(x, grid), v> w.r.t. each grid point by central differences of the
/// Double reference at that point only (each point affects only its own outputs).
fileprivate func referenceGridGradient(_ x: Tensor, _ grid: Tensor, _ v: Tensor, padding: GridPadding, alignCorners: Bool) -> [Float] {
    let dims = grid.shape.last!
    let spatial = Array(x.shape.dropFirst(2)), c = x.shape[1]
    let points = grid.count / (dims * x.shape[0])
    let gs = grid.scalars, vs = v.scalars, xs = x.scalars
    let volume = spatial.reduce(1, *)
    var out = [Float]()
    for q in 0..<(grid.count / dims) {
        let b = q / points, p = q % points
        func loss(_ coords: [Float]) -> Double {
            // Pixel coordinates in (x, y[, z]) order, sizes (W, H[, D]).
            let sizes = Array(spatial.reversed())
            let pix = zip(coords, sizes).map { referencePixel($0, size: $1, padding: padding, alignCorners: alignCorners) }
            var s = 0.0
            for ch in 0..<c {
                let base = (b * c + ch) * volume
                let val = referenceInterpolate(pix, sizes: sizes) { idx in
                    var flat = 0
                    for a in stride(from: dims - 1, through: 0, by: -1) { flat = flat * sizes[a] + idx[a] }
                    return Double(xs[base + flat])
                }
                s += val * Double(vs[(b * c + ch) * points + p])
            }
            return s
        }
        let coords = Array(gs[(q * dims)..<((q + 1) * dims)])
        for a in 0..<dims {
            var plus = coords, minus = coords
            plus[a] += 1e-3; minus[a] -= 1e-3
            let h = Double(plus[a]) - Double(minus[a])
            out.append(Float((loss(plus) - loss(minus)) / h))
        }
    }
    return out
}

extension SamplingTests {
    /// Sizes big enough for the multi-threaded forward and backward paths.
    @Test func largeGridSamplesMatchReferenceOnThreads() {
        var rng = RandomGenerator(seed: 60)
        for dims in [2, 3] {
            let x = dims == 2 ? rng.normal([2, 8, 12, 10]) : rng.normal([2, 4, 5, 6, 7])
            let gridShape = dims == 2 ? [2, 32, 32, 2] : [2, 8, 8, 16, 3]
            let grid = randomGrid(gridShape, sizes: Array(x.shape.dropFirst(2).reversed()), alignCorners: false, seed: 61)
            let sample = { (x: Tensor, g: Tensor) in dims == 2 ? gridSample(x, grid: g, padding: .zeros) : gridSample3d(x, grid: g, padding: .zeros) }
            let y = sample(x, grid)
            let ref = dims == 2 ? referenceGridSample(x, grid, padding: .zeros, alignCorners: false)
                                : referenceGridSample3d(x, grid, padding: .zeros, alignCorners: false)
            #expect(maxAbsDiff(y, ref) < 1e-5)
            let (gap, scale) = adjointGap(x, seed: 62) { sample($0, grid) }
            #expect(gap < 1e-4 * scale, "\(dims)-D input gradient")
            let v = rng.normal(y.shape)
            let gv = grid.requiringGrad()
            let gGrid = grad(of: sample(x, gv), wrt: [gv], seed: v)[0]
            let expected = referenceGridGradient(x, grid, v, padding: .zeros, alignCorners: false)
            let err = zip(gGrid.scalars, expected).map { abs($0 - $1) / Swift.max(1, abs($1)) }.max()!
            #expect(err < 1e-3, "\(dims)-D grid gradient")
        }
        // Upsampling on many planes.
        let img = rng.normal([4, 16, 9, 11])
        #expect(maxAbsDiff(upsampleBilinear2d(img, size: (20, 17)), referenceUpsampleBilinear(img, size: (20, 17), alignCorners: false)) < 1e-5)
        #expect(maxAbsDiff(upsampleNearest2d(img, size: (20, 17)), referenceUpsampleNearest(img, size: (20, 17))) == 0)
        let ops: [(Tensor) -> Tensor] = [{ upsampleBilinear2d($0, size: (20, 17)) }, { upsampleNearest2d($0, size: (20, 17)) }]
        for (i, f) in ops.enumerated() {
            let (gap, scale) = adjointGap(img, seed: UInt64(63 + i), f)
            #expect(gap < 1e-4 * scale)
        }
    }
}
