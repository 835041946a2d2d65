import DeformIO
import DeformTensor

/// A 5x7 pixel font (capitals, digits and a little punctuation) for labels in PNG previews,
/// drawn without any font file or text library so previews look the same on every machine.
/// Lower-case letters are drawn as capitals; characters it does not have are drawn as spaces.
enum PixelFont {
    static let glyphWidth = 5, glyphHeight = 7
    /// One byte per row, top row first; bit 4 is the leftmost column.
    static let glyphs: [Character: [UInt8]] = [
        "A": [0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11],
        "B": [0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e],
        "C": [0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e],
        "D": [0x1e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1e],
        "E": [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f],
        "F": [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10],
        "G": [0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f],
        "H": [0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11],
        "I": [0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e],
        "J": [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c],
        "K": [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        "L": [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f],
        "M": [0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11],
        "N": [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        "O": [0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e],
        "P": [0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10],
        "Q": [0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d],
        "R": [0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11],
        "S": [0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e],
        "T": [0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        "U": [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e],
        "V": [0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04],
        "W": [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a],
        "X": [0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11],
        "Y": [0x11, 0x11, 0x0a, 0x04, 0x04, 0x04, 0x04],
        "Z": [0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f],
        "0": [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
        "1": [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
        "2": [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
        "3": [0x1e, 0x01, 0x01, 0x0e, 0x01, 0x01, 0x1e],
        "4": [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
        "5": [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
        "6": [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
        "7": [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        "8": [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
        "9": [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
        ":": [0x00, 0x04, 0x04, 0x00, 0x04, 0x04, 0x00],
        "-": [0x00, 0x00, 0x00, 0x0e, 0x00, 0x00, 0x00],
        ".": [0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c],
        "(": [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ")": [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        "/": [0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00],
        ",": [0x00, 0x00, 0x00, 0x00, 0x0c, 0x04, 0x08],
        "%": [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        "+": [0x00, 0x04, 0x04, 0x1f, 0x04, 0x04, 0x00],
        "=": [0x00, 0x00, 0x1f, 0x00, 0x1f, 0x00, 0x00],
    ]

    /// Width in pixels of `text` drawn at `scale` (one blank column between characters).
    static func width(_ text: String, scale: Int) -> Int {
        text.isEmpty ? 0 : (text.count * (glyphWidth + 1) - 1) * scale
    }

    /// Height in pixels of a line drawn at `scale`.
    static func height(scale: Int) -> Int { glyphHeight * scale }
}

/// An RGB picture under construction, samples in [0, 1], row-major `[H, W, 3]`.
struct Canvas {
    let width: Int, height: Int
    var rgb: [Float]

    init(width: Int, height: Int, background: SIMD3<Float> = SIMD3(1, 1, 1)) {
        self.width = width; self.height = height
        rgb = [Float](repeating: 0, count: 3 * width * height)
        fill(x: 0, y: 0, width: width, height: height, color: background)
    }

    /// Fills a rectangle, clipped to the canvas.
    mutating func fill(x: Int, y: Int, width w: Int, height h: Int, color: SIMD3<Float>) {
        let x0 = Swift.max(x, 0), x1 = Swift.min(x + w, width), y0 = Swift.max(y, 0), y1 = Swift.min(y + h, height)
        guard x0 < x1, y0 < y1 else { return }
        for j in y0..<y1 {
            for i in x0..<x1 {
                let o = 3 * (j * width + i)
                rgb[o] = color.x; rgb[o + 1] = color.y; rgb[o + 2] = color.z
            }
        }
    }

    /// A one-pixel outline just inside the rectangle.
    mutating func frame(x: Int, y: Int, width w: Int, height h: Int, color: SIMD3<Float>) {
        fill(x: x, y: y, width: w, height: 1, color: color)
        fill(x: x, y: y + h - 1, width: w, height: 1, color: color)
        fill(x: x, y: y, width: 1, height: h, color: color)
        fill(x: x + w - 1, y: y, width: 1, height: h, color: color)
    }

    /// Copies RGB samples `[h, w, 3]` with their top-left corner at (x, y), clipped to the canvas.
    mutating func paste(_ samples: [Float], width w: Int, height h: Int, x: Int, y: Int) {
        for j in 0..<h where y + j >= 0 && y + j < height {
            for i in 0..<w where x + i >= 0 && x + i < width {
                let o = 3 * ((y + j) * width + x + i), s = 3 * (j * w + i)
                rgb[o] = samples[s]; rgb[o + 1] = samples[s + 1]; rgb[o + 2] = samples[s + 2]
            }
        }
    }

    /// Draws `text` with its top-left corner at (x, y) in the 5x7 font, each font pixel a
    /// `scale`-by-`scale` square.
    mutating func text(_ text: String, x: Int, y: Int, scale: Int = 1, color: SIMD3<Float> = SIMD3(0.2, 0.2, 0.2)) {
        var penX = x
        for ch in text.uppercased() {
            if let rows = PixelFont.glyphs[ch] {
                for (r, bits) in rows.enumerated() {
                    for c in 0..<PixelFont.glyphWidth where bits & (1 << (PixelFont.glyphWidth - 1 - c)) != 0 {
                        fill(x: penX + c * scale, y: y + r * scale, width: scale, height: scale, color: color)
                    }
                }
            }
            penX += (PixelFont.glyphWidth + 1) * scale
        }
    }

    /// Draws `text` centred horizontally on `centerX`.
    mutating func text(_ text: String, centerX: Int, y: Int, scale: Int = 1, color: SIMD3<Float> = SIMD3(0.2, 0.2, 0.2)) {
        self.text(text, x: centerX - PixelFont.width(text, scale: scale) / 2, y: y, scale: scale, color: color)
    }

    var image: Image { Image(pixels: Tensor(rgb, shape: [height, width, 3])) }
}
