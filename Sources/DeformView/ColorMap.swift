import Foundation

/// A perceptually ordered colour map for scalar images (depth, error) and plot colours.
///
/// Viridis is used because its luminance rises monotonically from the dark end to the bright end,
/// so a depth map stays readable when printed in grey or seen with colour-vision deficiencies.
/// The map is stored as nine anchor colours (every 1/8) and interpolated linearly in sRGB; that is
/// within a few 1/255 of the full 256-entry table and keeps the luminance monotonic.
public enum ColorMap: Sendable {
    /// Dark purple (0) through blue and green to yellow (1).
    case viridis

    /// sRGB anchors at t = 0, 1/8, ..., 1 (0...255 per channel).
    private static let viridisAnchors: [(Double, Double, Double)] = [
        (68, 1, 84), (71, 45, 123), (59, 82, 139), (44, 114, 142), (33, 145, 140),
        (40, 174, 128), (94, 201, 98), (173, 220, 48), (253, 231, 37),
    ]

    /// The colour at `t` (clamped to 0...1; NaN maps to 0) as sRGB components in 0...1.
    public func rgb(_ t: Double) -> (r: Double, g: Double, b: Double) {
        let anchors = ColorMap.viridisAnchors
        let x = t.isNaN ? 0 : min(max(t, 0), 1) * Double(anchors.count - 1)
        let i = min(Int(x), anchors.count - 2)
        let f = x - Double(i)
        let a = anchors[i], b = anchors[i + 1]
        return ((a.0 + (b.0 - a.0) * f) / 255, (a.1 + (b.1 - a.1) * f) / 255, (a.2 + (b.2 - a.2) * f) / 255)
    }

    /// The colour at `t` as 8-bit sRGB.
    public func rgb8(_ t: Double) -> (r: UInt8, g: UInt8, b: UInt8) {
        let c = rgb(t)
        func q(_ v: Double) -> UInt8 { UInt8((v * 255).rounded()) }
        return (q(c.r), q(c.g), q(c.b))
    }

    /// The colour at `t` as a CSS hex string such as `#440154`.
    public func hex(_ t: Double) -> String {
        let c = rgb8(t)
        return String(format: "#%02x%02x%02x", c.r, c.g, c.b)
    }

    /// Relative luminance (WCAG / ITU-R BT.709 on linearised sRGB) of an sRGB colour in 0...1.
    public static func relativeLuminance(r: Double, g: Double, b: Double) -> Double {
        func linear(_ c: Double) -> Double { c <= 0.04045 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4) }
        return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
    }
}

/// Colours a depth map: near is bright (yellow), far is dark (purple); invalid depth is black.
///
/// - Parameters:
///   - depth: row-major depth values, `width * height` of them.
///   - near, far: the depth range mapped to the colour map; `nil` uses the smallest and largest
///     valid depth. A depth is valid when it is finite and positive (renderers write 0 or +inf
///     where nothing was hit).
/// - Returns: row-major RGB bytes, `3 * width * height` of them, ready for an 8-bit PNG.
public func colorizeDepth(_ depth: [Float], width: Int, height: Int, near: Float? = nil, far: Float? = nil,
                          colorMap: ColorMap = .viridis) -> [UInt8] {
    precondition(depth.count == width * height, "colorizeDepth: \(depth.count) values for \(width)x\(height)")
    let valid = depth.filter { $0.isFinite && $0 > 0 }
    let lo = near ?? valid.min() ?? 0
    let hi = far ?? valid.max() ?? 1
    let span = hi > lo ? hi - lo : 1
    var out = [UInt8](repeating: 0, count: 3 * depth.count)
    for (i, d) in depth.enumerated() where d.isFinite && d > 0 {
        let c = colorMap.rgb8(Double(1 - (d - lo) / span))
        out[3 * i] = c.r; out[3 * i + 1] = c.g; out[3 * i + 2] = c.b
    }
    return out
}

/// An 8-bit sRGB colour.
public struct RGB8: Equatable, Hashable, Sendable {
    public var r: UInt8
    public var g: UInt8
    public var b: UInt8

    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { (self.r, self.g, self.b) = (r, g, b) }

    /// The CSS hex form, e.g. `#d55e00`.
    public var hex: String { String(format: "#%02x%02x%02x", r, g, b) }

    /// Components in 0...1, for images of Float samples.
    public var unit: SIMD3<Float> { SIMD3(Float(r), Float(g), Float(b)) / 255 }
}

/// The colours every report and preview uses for the same things, so an HTML report and a PNG
/// preview of one run read alike. Prediction and ground truth are orange and blue of the
/// Okabe–Ito palette: told apart with every common colour-vision deficiency and in grey print.
public enum Palette {
    /// Predicted (reconstructed) points.
    public static let prediction = RGB8(0xd5, 0x5e, 0x00)
    /// Ground-truth points.
    public static let groundTruth = RGB8(0x00, 0x72, 0xb2)
    /// Segments from a predicted point to its ground truth.
    public static let errorLine = RGB8(0x88, 0x88, 0x88)
}
