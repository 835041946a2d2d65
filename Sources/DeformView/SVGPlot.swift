import Foundation

/// One named line in a ``LinePlot``.
public struct PlotSeries: Sendable {
    public var name: String
    public var xs: [Double]
    public var ys: [Double]
    /// A CSS colour; `nil` picks one from the plot's palette.
    public var color: String?

    public init(name: String, xs: [Double], ys: [Double], color: String? = nil) {
        precondition(xs.count == ys.count, "PlotSeries \(name): \(xs.count) x values but \(ys.count) y values")
        self.name = name; self.xs = xs; self.ys = ys; self.color = color
    }
}

/// A static line plot rendered as inline SVG (no scripts, no external fonts), for reports.
///
/// Each series becomes one `<polyline>` with one coordinate pair per finite point, so a reader (or
/// a test) can count the samples. Axes carry tick labels and the axis titles should include units,
/// e.g. `"step"` and `"loss (mean squared reprojection error)"`.
public struct LinePlot: Sendable {
    /// Shown above the plot and as the SVG `<title>`.
    public var title: String
    /// Axis titles; include the unit, e.g. `"frame (index)"`.
    public var xLabel: String
    public var yLabel: String
    public var series: [PlotSeries]
    /// Size in CSS pixels.
    public var width: Int = 640
    public var height: Int = 300
    /// Plots y on a log10 axis; non-positive values are then dropped.
    public var logY: Bool = false

    /// Colour-blind-safe default colours (Okabe-Ito order).
    public static let palette = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000"]

    public init(title: String, xLabel: String, yLabel: String, series: [PlotSeries], logY: Bool = false) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.series = series; self.logY = logY
    }

    /// The plot as an `<svg>` element.
    public func svg() -> String {
        // The legend sits in its own rows above the frame so it never hides data.
        let left = 70.0, right = 20.0, top = 30.0 + 15 * Double(series.count), bottom = 48.0
        let w = Double(width), h = Double(height)
        let pw = w - left - right, ph = h - top - bottom
        let ty: (Double) -> Double = logY ? { log10($0) } : { $0 }
        let cleaned: [(PlotSeries, [(Double, Double)])] = series.map { s in
            let pts = zip(s.xs, s.ys).filter { $0.0.isFinite && $0.1.isFinite && (!logY || $0.1 > 0) }.map { ($0.0, ty($0.1)) }
            return (s, pts)
        }
        let all = cleaned.flatMap { $0.1 }
        var x0 = all.map(\.0).min() ?? 0, x1 = all.map(\.0).max() ?? 1
        var y0 = all.map(\.1).min() ?? 0, y1 = all.map(\.1).max() ?? 1
        if x1 <= x0 { x0 -= 0.5; x1 += 0.5 }
        if y1 <= y0 { let d = max(abs(y0) * 0.1, 0.5); y0 -= d; y1 += d }
        if !logY && y0 > 0 && y0 < 0.5 * y1 { y0 = 0 }  // start at zero when that wastes little room
        y1 += 0.04 * (y1 - y0)  // headroom, so a peak does not merge with the frame
        let xTicks = niceTicks(x0, x1), yTicks = logY ? logTicks(y0, y1) : niceTicks(y0, y1)
        x0 = min(x0, xTicks.first ?? x0); x1 = max(x1, xTicks.last ?? x1)
        y0 = min(y0, yTicks.first ?? y0); y1 = max(y1, yTicks.last ?? y1)
        func sx(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * pw }
        func sy(_ y: Double) -> Double { top + ph - (y - y0) / (y1 - y0) * ph }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }

        var s = "<svg class=\"plot\" width=\"\(width)\" height=\"\(height)\" "
        s += "viewBox=\"0 0 \(width) \(height)\" font-family=\"sans-serif\" font-size=\"11\">\n"
        s += "<title>\(escapeHTML(title))</title>\n"
        s += "<text x=\"\(f(w / 2))\" y=\"16\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">\(escapeHTML(title))</text>\n"
        s += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(pw))\" height=\"\(f(ph))\" fill=\"none\" stroke=\"#888\"/>\n"
        for t in xTicks where t >= x0 && t <= x1 {
            s += "<line class=\"xtick\" x1=\"\(f(sx(t)))\" y1=\"\(f(top))\" x2=\"\(f(sx(t)))\" y2=\"\(f(top + ph))\" stroke=\"#eee\"/>"
            s += "<text x=\"\(f(sx(t)))\" y=\"\(f(top + ph + 14))\" text-anchor=\"middle\">\(tickLabel(t))</text>\n"
        }
        for t in yTicks where t >= y0 && t <= y1 {
            let label = logY ? tickLabel(pow(10, t)) : tickLabel(t)
            s += "<line class=\"ytick\" x1=\"\(f(left))\" y1=\"\(f(sy(t)))\" x2=\"\(f(left + pw))\" y2=\"\(f(sy(t)))\" stroke=\"#eee\"/>"
            s += "<text x=\"\(f(left - 4))\" y=\"\(f(sy(t) + 4))\" text-anchor=\"end\">\(label)</text>\n"
        }
        s += "<text class=\"xlabel\" x=\"\(f(left + pw / 2))\" y=\"\(f(h - 8))\" text-anchor=\"middle\">\(escapeHTML(xLabel))</text>\n"
        s += "<text class=\"ylabel\" transform=\"translate(14 \(f(top + ph / 2))) rotate(-90)\" text-anchor=\"middle\">\(escapeHTML(yLabel))</text>\n"
        for (i, (series, pts)) in cleaned.enumerated() {
            let color = series.color ?? LinePlot.palette[i % LinePlot.palette.count]
            let coords = pts.map { "\(f(sx($0.0))),\(f(sy($0.1)))" }.joined(separator: " ")
            s += "<polyline data-series=\"\(escapeHTML(series.name))\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(coords)\"/>\n"
        }
        // Legend: one swatch per series, right-aligned rows between the title and the frame.
        for (i, (series, _)) in cleaned.enumerated() {
            let color = series.color ?? LinePlot.palette[i % LinePlot.palette.count]
            let y = 38 + Double(i) * 15
            let textWidth = 6.0 * Double(series.name.count)  // rough width of 11 px sans-serif
            let x = left + pw - textWidth
            s += "<g class=\"legend\"><line x1=\"\(f(x - 26))\" y1=\"\(f(y - 4))\" x2=\"\(f(x - 6))\" y2=\"\(f(y - 4))\" stroke=\"\(color)\" stroke-width=\"3\"/>"
            s += "<text x=\"\(f(left + pw))\" y=\"\(f(y))\" text-anchor=\"end\">\(escapeHTML(series.name))</text></g>\n"
        }
        s += "</svg>"
        return s
    }
}

/// Round tick positions (1, 2 or 5 times a power of ten apart) covering `lo...hi` with about
/// `count` ticks.
public func niceTicks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
    guard lo.isFinite, hi.isFinite, hi > lo, count > 0 else { return [] }
    let raw = (hi - lo) / Double(count)
    let magnitude = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
    var ticks: [Double] = []
    var t = floor(lo / step) * step
    while t <= hi + step * 1e-9 {
        if t >= lo - step * 1e-9 { ticks.append(abs(t) < step * 1e-9 ? 0 : t) }
        t += step
    }
    return ticks
}

/// Integer decades within a log10 range, or nice ticks when the range spans less than one decade.
func logTicks(_ lo: Double, _ hi: Double) -> [Double] {
    let decades = stride(from: ceil(lo), through: floor(hi), by: 1).map { $0 }
    return decades.count >= 2 ? decades : niceTicksLog(lo, hi)
}

/// Ticks for a log axis shorter than a decade: nice values in linear space, returned as log10.
private func niceTicksLog(_ lo: Double, _ hi: Double) -> [Double] {
    niceTicks(pow(10, lo), pow(10, hi), count: 4).filter { $0 > 0 }.map { log10($0) }
}

/// A short tick label: plain for ordinary magnitudes, scientific for very small or large ones.
func tickLabel(_ v: Double) -> String {
    if v == 0 { return "0" }
    let a = abs(v)
    if a >= 1e5 || a < 1e-3 { return String(format: "%.0e", v) }
    var s = String(format: "%.4f", v)
    while s.hasSuffix("0") { s.removeLast() }
    if s.hasSuffix(".") { s.removeLast() }
    return s
}

/// Escapes text for HTML element content and attribute values.
public func escapeHTML(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.count)
    for c in s {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(c)
        }
    }
    return out
}
