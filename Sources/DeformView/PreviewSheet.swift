import Foundation
import DeformIO
import DeformTensor

/// Why a preview could not be drawn.
public enum PreviewError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Nothing to draw: no frames, no points, no rows or no panels.
    case empty(String)
    /// Inputs that must agree do not (shapes, counts).
    case mismatch(String)
    /// An option outside its range.
    case invalidOption(String)

    public var description: String {
        switch self {
        case let .empty(message): return "preview: nothing to draw: \(message)"
        case let .mismatch(message), let .invalidOption(message): return "preview: \(message)"
        }
    }
}

/// One row of a ``previewSheet(_:depthRange:gap:)``: a few panels of one kind (inputs, renders,
/// depth, normals, masks), with an optional label drawn to its left.
public struct PreviewRow {
    /// What the row's panels hold.
    public enum Content {
        /// Pictures with samples in [0, 1]: grey, RGB, or RGBA (composited over white).
        case images([Image])
        /// Depth maps `[H, W]` (or `[H, W, 1]`), coloured with ``colorizeDepth(_:width:height:near:far:colorMap:)``
        /// over one range shared by every depth row of the sheet, so equal colours mean equal
        /// depth across the whole sheet. Depth that is not finite and positive (nothing hit) is black.
        case depth([Tensor])
    }

    public var content: Content
    public var label: String?

    public init(_ content: Content, label: String? = nil) { self.content = content; self.label = label }

    /// A row of pictures.
    public static func images(_ images: [Image], label: String? = nil) -> PreviewRow { PreviewRow(.images(images), label: label) }

    /// A row of depth maps.
    public static func depth(_ maps: [Tensor], label: String? = nil) -> PreviewRow { PreviewRow(.depth(maps), label: label) }

    var panelCount: Int {
        switch content {
        case let .images(images): return images.count
        case let .depth(maps): return maps.count
        }
    }
}

/// The depth range a sheet colours its depth rows over: the smallest and largest finite, positive
/// depth in all of them; `nil` when there is none.
public func previewDepthRange(_ rows: [PreviewRow]) -> ClosedRange<Float>? {
    var lo = Float.infinity, hi = -Float.infinity
    for row in rows {
        guard case let .depth(maps) = row.content else { continue }
        for map in maps {
            map.withUnsafeBufferPointer { buffer in
                for d in buffer where d.isFinite && d > 0 { lo = Swift.min(lo, d); hi = Swift.max(hi, d) }
            }
        }
    }
    return lo <= hi ? lo...hi : nil
}

/// Tiles rows of panels into one picture: the preview sheet of an image method (input, render,
/// depth rows; one column per sampled frame or view).
///
/// Every panel sits centred in a cell as large as the largest panel, cells are `gap` pixels apart on
/// white, row labels (when any row has one) go in a column on the left in the 5x7 pixel font, and when
/// the sheet has depth rows a colour bar with the shared depth range is drawn beneath them. Rows may
/// hold different numbers of panels.
///
/// - Parameters:
///   - depthRange: the depth mapped to the colour map's bright (near) and dark (far) ends; `nil` uses
///     ``previewDepthRange(_:)``.
///   - gap: pixels between cells and around the sheet.
/// - Throws: ``PreviewError`` when there are no rows or no panels, or a depth map is not `[H, W]` or
///   `[H, W, 1]`.
public func previewSheet(_ rows: [PreviewRow], depthRange: ClosedRange<Float>? = nil, gap: Int = 4) throws -> Image {
    guard !rows.isEmpty else { throw PreviewError.empty("the sheet has no rows") }
    let columns = rows.map(\.panelCount).max() ?? 0
    guard columns > 0 else { throw PreviewError.empty("the sheet's rows hold no panels") }
    let range = depthRange ?? previewDepthRange(rows)
    let gap = Swift.max(gap, 0)

    // Every panel as RGB samples, so the cell size is known before anything is placed.
    var panels: [[(rgb: [Float], width: Int, height: Int)]] = []
    for (r, row) in rows.enumerated() {
        switch row.content {
        case let .images(images):
            panels.append(images.map { rgbOverWhite($0) })
        case let .depth(maps):
            panels.append(try maps.enumerated().map { k, map in
                guard (map.rank == 2 || (map.rank == 3 && map.shape[2] == 1)), map.shape[0] > 0, map.shape[1] > 0 else {
                    throw PreviewError.mismatch("row \(r) panel \(k): depth must be [H, W] or [H, W, 1], got \(map.shape)")
                }
                let (h, w) = (map.shape[0], map.shape[1])
                let bytes = colorizeDepth(map.scalars, width: w, height: h, near: range?.lowerBound, far: range?.upperBound)
                return (bytes.map { Float($0) / 255 }, w, h)
            })
        }
    }
    let cellW = panels.flatMap { $0.map(\.width) }.max()!, cellH = panels.flatMap { $0.map(\.height) }.max()!
    let labels = rows.map { $0.label ?? "" }
    let textScale = cellH >= 96 ? 2 : 1
    let labelWidth = labels.contains { !$0.isEmpty } ? labels.map { PixelFont.width($0, scale: textScale) }.max()! + 2 * gap + 4 : 0
    let hasDepth = rows.contains { if case .depth = $0.content { return true } else { return false } }
    let barHeight = hasDepth && range != nil ? PixelFont.height(scale: textScale) + 2 * gap + 4 : 0
    let width = labelWidth + columns * (cellW + gap) + gap
    let height = rows.count * (cellH + gap) + gap + barHeight
    var canvas = Canvas(width: width, height: height)
    let ink = SIMD3<Float>(repeating: 0.25)
    for (r, row) in panels.enumerated() {
        let y0 = gap + r * (cellH + gap)
        if !labels[r].isEmpty {
            canvas.text(labels[r], x: gap + 2, y: y0 + (cellH - PixelFont.height(scale: textScale)) / 2, scale: textScale, color: ink)
        }
        for (c, panel) in row.enumerated() {
            let x0 = labelWidth + gap + c * (cellW + gap)
            canvas.paste(panel.rgb, width: panel.width, height: panel.height,
                         x: x0 + (cellW - panel.width) / 2, y: y0 + (cellH - panel.height) / 2)
        }
    }
    if barHeight > 0, let range {
        // "DEPTH  near [bright ... dark] far": the shared range the depth rows were coloured over.
        let y = rows.count * (cellH + gap) + gap + 2
        let th = PixelFont.height(scale: textScale)
        var x = labelWidth + gap
        let title = "depth", near = formatPreviewNumber(range.lowerBound), far = formatPreviewNumber(range.upperBound)
        canvas.text(title, x: x, y: y, scale: textScale, color: ink)
        x += PixelFont.width(title, scale: textScale) + 4 * textScale
        canvas.text(near, x: x, y: y, scale: textScale, color: ink)
        x += PixelFont.width(near, scale: textScale) + 3 * textScale
        let barW = Swift.min(160, Swift.max(40, width - x - PixelFont.width(far, scale: textScale) - 4 * gap))
        for i in 0..<barW {
            let c = ColorMap.viridis.rgb(1 - Double(i) / Double(Swift.max(barW - 1, 1)))
            canvas.fill(x: x + i, y: y, width: 1, height: th, color: SIMD3(Float(c.r), Float(c.g), Float(c.b)))
        }
        x += barW + 3 * textScale
        canvas.text(far, x: x, y: y, scale: textScale, color: ink)
    }
    return canvas.image
}

/// An image's samples as RGB in [0, 1]: grey repeated, alpha composited over white, clamped.
func rgbOverWhite(_ image: Image) -> (rgb: [Float], width: Int, height: Int) {
    let (h, w, c) = (image.height, image.width, image.channels)
    let s = image.pixels.scalars
    var out = [Float](repeating: 1, count: 3 * h * w)
    for p in 0..<(h * w) {
        let alpha: Float = c == 4 ? Swift.min(Swift.max(s[4 * p + 3], 0), 1) : 1
        for k in 0..<3 {
            let v = c == 1 ? s[p] : s[c * p + k]
            let clamped = v.isFinite ? Swift.min(Swift.max(v, 0), 1) : 0
            out[3 * p + k] = alpha * clamped + (1 - alpha)
        }
    }
    return (out, w, h)
}

/// Up to four significant digits, without exponent for the magnitudes depth usually has.
func formatPreviewNumber(_ v: Float) -> String {
    let a = Swift.abs(v)
    if a >= 1000 || a == 0 { return String(Int(v.rounded())) }
    let decimals = a >= 100 ? 1 : a >= 10 ? 2 : a >= 1 ? 3 : 4
    var text = String(format: "%.\(decimals)f", Double(v))
    while text.contains("."), text.hasSuffix("0") { text.removeLast() }
    if text.hasSuffix(".") { text.removeLast() }
    return text
}
