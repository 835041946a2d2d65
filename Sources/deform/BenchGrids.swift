import DeformRender
import DeformTensor
import Foundation

struct HashGridBenchResult: Encodable {
    var points: Int
    var levels: Int
    var tableSize: Int
    var featuresPerLevel: Int
    var baseResolution: Int
    var finestResolution: Int
    /// Encoding only.
    var forwardMilliseconds: Double
    /// Forward + backward with respect to the tables (a radiance-field step: sample positions fixed).
    var forwardBackwardMilliseconds: Double
    var forwardBackwardPointsPerSecond: Double
    /// Forward + backward with respect to the tables and the points (as when poses are refined).
    var forwardBackwardWithPointsMilliseconds: Double
}

/// Multiresolution hash encoding (Instant-NGP's NeRF setting: L 16, T 2^19, F 2, 16 to 2048
/// cells) forward and backward on `points` random points.
func benchHashGrid(points n: Int, repeats: Int) -> HashGridBenchResult {
    let config = HashGridConfig()
    var rng = RandomGenerator(seed: 13)
    let tables = config.initialTables(rng: &rng)
    let points = rng.uniform([n, 3])
    let cot = rng.normal([n, config.outputWidth])
    var sink: Float = 0
    let forward = timings(repeats: repeats) {
        sink += try! config.encode(points, tables: tables).dataPointer[0]
    }
    let tablesVar = tables.requiringGrad(), pointsVar = points.requiringGrad()
    let tablesOnly = timings(repeats: repeats) {
        let out = try! config.encode(points, tables: tablesVar)
        sink += grad(of: out, wrt: [tablesVar], seed: cot)[0].dataPointer[0]
    }
    let both = timings(repeats: repeats) {
        let out = try! config.encode(pointsVar, tables: tablesVar)
        let g = grad(of: out, wrt: [tablesVar, pointsVar], seed: cot)
        sink += g[0].dataPointer[0] + g[1].dataPointer[0]
    }
    if sink.isNaN { print(sink) }
    let fb = median(tablesOnly)
    return HashGridBenchResult(points: n, levels: config.levels, tableSize: config.tableSize,
                               featuresPerLevel: config.featuresPerLevel, baseResolution: config.baseResolution,
                               finestResolution: config.finestResolution,
                               forwardMilliseconds: median(forward) * 1e3, forwardBackwardMilliseconds: fb * 1e3,
                               forwardBackwardPointsPerSecond: Double(n) / fb,
                               forwardBackwardWithPointsMilliseconds: median(both) * 1e3)
}
