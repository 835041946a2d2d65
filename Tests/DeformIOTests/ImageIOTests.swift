import Foundation
import Testing
@testable import DeformIO
import DeformTensor

// MARK: Helpers

/// `[H, W, C]` samples `level(i) / maxLevel` for the flat index i.
func levelImage(height: Int, width: Int, channels: Int, maxLevel: Int, level: (Int) -> Int) -> Tensor {
    let n = height * width * channels
    return Tensor((0..<n).map { Float(level($0)) / Float(maxLevel) }, shape: [height, width, channels])
}

/// A smooth colour image (gradients and a slow wave), the kind JPEG compresses well.
func smoothImage(height: Int, width: Int, channels: Int) -> Tensor {
    var values: [Float] = []
    for y in 0..<height {
        for x in 0..<width {
            let u = Float(x) / Float(width - 1), v = Float(y) / Float(height - 1)
            let rgb: [Float] = [0.1 + 0.8 * u, 0.15 + 0.7 * v, 0.5 + 0.3 * sin(3 * u + 2 * v)]
            values += channels == 1 ? [(rgb[0] + rgb[1] + rgb[2]) / 3] : Array(rgb.prefix(channels))
        }
    }
    return Tensor(values, shape: [height, width, channels])
}

/// CRC-32 as PNG chunks use it (ISO 3309, reflected, polynomial 0xEDB88320), bit by bit.
func pngCRC32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

/// A PNG assembled byte by byte with uncompressed ("stored") deflate blocks, so the reader is
/// checked against the format itself rather than against libpng's own writer. `rows` are raw
/// scanlines without the filter byte (for Adam7, the rows of every non-empty pass in pass order);
/// `chunks` (PLTE, tRNS, ...) go between IHDR and IDAT.
func handMadePNG(width: Int, height: Int, bitDepth: UInt8, colorType: UInt8, rows: [[UInt8]],
                 chunks: [(String, [UInt8])] = [], interlaced: Bool = false) -> Data {
    func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return bytesOf([UInt32(data.count)], bigEndian: true) + body + bytesOf([pngCRC32(body)], bigEndian: true)
    }
    let ihdr = bytesOf([UInt32(width), UInt32(height)], bigEndian: true) + [bitDepth, colorType, 0, 0, interlaced ? 1 : 0]
    let raw: [UInt8] = rows.flatMap { [UInt8(0)] + $0 }
    var zlib: [UInt8] = [0x78, 0x01]
    var start = 0
    repeat {
        let end = min(start + 65535, raw.count)
        let length = UInt16(end - start)
        let header: [UInt8] = [end == raw.count ? 1 : 0] + bytesOf([length, ~length])
        zlib += header + raw[start..<end]
        start = end
    } while start < raw.count
    var a: UInt32 = 1, b: UInt32 = 0
    for byte in raw { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
    zlib += bytesOf([b << 16 | a], bigEndian: true)
    var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr)
    for (type, data) in chunks { png += chunk(type, data) }
    png += chunk("IDAT", zlib) + chunk("IEND", [])
    return Data(png)
}

/// Bit depth and colour type from a PNG file's IHDR chunk.
func pngHeader(_ url: URL) throws -> (bitDepth: UInt8, colorType: UInt8) {
    let bytes = [UInt8](try Data(contentsOf: url).prefix(26))
    try #require(bytes.count == 26 && bytes[12..<16].elementsEqual(Array("IHDR".utf8)))
    return (bytes[24], bytes[25])
}

func meanAbsoluteDifference(_ a: Tensor, _ b: Tensor) -> Double {
    zip(a.scalars, b.scalars).reduce(0.0) { $0 + Double(abs($1.0 - $1.1)) } / Double(a.count)
}

// MARK: Images

@Suite struct ImageIOTests {
    static let pngColorType = [1: UInt8(0), 3: UInt8(2), 4: UInt8(6)]

    @Test(arguments: [1, 3, 4])
    func png8BitRoundTripIsExact(channels: Int) throws {
        // 9 x 31 pixels: every one of the 256 levels occurs, in a scrambled order.
        let pixels = levelImage(height: 9, width: 31, channels: channels, maxLevel: 255) { $0 * 7 % 256 }
        try TestFiles.withScratchFolder { folder in
            let url = folder.appendingPathComponent("eight.png")
            try writePNG(pixels, to: url)
            let header = try pngHeader(url)
            #expect(header.bitDepth == 8 && header.colorType == Self.pngColorType[channels])
            let image = try readImage(url)
            #expect(image.bitDepth == 8)
            #expect(image.pixels.shape == [9, 31, channels])
            #expect(image.pixels.scalars == pixels.scalars)
            #expect(try TestFiles.contents(of: folder) == ["eight.png"])
        }
    }

    @Test(arguments: [1, 3, 4])
    func png16BitRoundTripIsExact(channels: Int) throws {
        // Levels spread over 0...65535 with both ends and byte-swapped pairs (0x0102 / 0x0201), which
        // a byte-order mistake would exchange.
        let special = [0, 65535, 0x0102, 0x0201, 1, 256, 65534]
        let pixels = levelImage(height: 7, width: 11, channels: channels, maxLevel: 65535) {
            $0 < special.count ? special[$0] : ($0 * 40503 + 257) % 65536
        }
        try TestFiles.withScratchFolder { folder in
            let url = folder.appendingPathComponent("sixteen.png")
            try writePNG(pixels, to: url, bitDepth: 16)
            let header = try pngHeader(url)
            #expect(header.bitDepth == 16 && header.colorType == Self.pngColorType[channels])
            let image = try readImage(url)
            #expect(image.bitDepth == 16)
            #expect(image.pixels.shape == [7, 11, channels])
            #expect(image.pixels.scalars == pixels.scalars)
            // Writing the image again keeps its 16 bits without being told.
            let again = folder.appendingPathComponent("again.png")
            try writePNG(image, to: again)
            #expect(try pngHeader(again).bitDepth == 16)
            #expect(try readImage(again).pixels.scalars == pixels.scalars)
        }
    }

    @Test func sixteenBitSamplesAreBigEndianOnDisk() throws {
        let data = handMadePNG(width: 3, height: 1, bitDepth: 16, colorType: 0, rows: [[0x01, 0x02, 0xFF, 0x00, 0x00, 0xFF]])
        try TestFiles.withScratchFolder { folder in
            let url = folder.appendingPathComponent("be16.png")
            try data.write(to: url)
            let image = try readImage(url)
            #expect(image.bitDepth == 16 && image.pixels.shape == [1, 3, 1])
            #expect(image.pixels.scalars == [Float(0x0102) / 65535, Float(0xFF00) / 65535, Float(0x00FF) / 65535])
        }
    }

    @Test func expandsPaletteGreyAlphaAndLowBitDepths() throws {
        try TestFiles.withScratchFolder { folder in
            func read(_ name: String, _ data: Data) throws -> Image {
                let url = folder.appendingPathComponent(name)
                try data.write(to: url)
                return try readImage(url)
            }
            let palette: [UInt8] = [255, 0, 0, 0, 0, 255, 10, 20, 30]
            let rgb = try read("palette.png", handMadePNG(width: 3, height: 1, bitDepth: 8, colorType: 3, rows: [[2, 0, 1]],
                                                           chunks: [("PLTE", palette)]))
            #expect(rgb.bitDepth == 8 && rgb.pixels.shape == [1, 3, 3])
            #expect(rgb.pixels.scalars == [10, 20, 30, 255, 0, 0, 0, 0, 255].map { Float($0) / 255 })

            // A tRNS chunk gives palette entries an alpha; entries past its end are opaque.
            let rgba = try read("palette-trns.png", handMadePNG(width: 2, height: 1, bitDepth: 8, colorType: 3, rows: [[0, 2]],
                                                                chunks: [("PLTE", palette), ("tRNS", [128])]))
            #expect(rgba.pixels.shape == [1, 2, 4])
            #expect(rgba.pixels.scalars == [255, 0, 0, 128, 10, 20, 30, 255].map { Float($0) / 255 })

            // 4-bit palette indices 1 and 0 packed in one byte.
            let packed = try read("palette4.png", handMadePNG(width: 2, height: 1, bitDepth: 4, colorType: 3, rows: [[0x10]],
                                                              chunks: [("PLTE", palette)]))
            #expect(packed.bitDepth == 8 && packed.pixels.scalars == [0, 0, 255, 255, 0, 0].map { Float($0) / 255 })

            let greyAlpha = try read("grey-alpha.png", handMadePNG(width: 2, height: 1, bitDepth: 8, colorType: 4, rows: [[40, 200, 255, 0]]))
            #expect(greyAlpha.pixels.shape == [1, 2, 4])
            #expect(greyAlpha.pixels.scalars == [40, 40, 40, 200, 255, 255, 255, 0].map { Float($0) / 255 })

            let oneBit = try read("grey1.png", handMadePNG(width: 5, height: 2, bitDepth: 1, colorType: 0, rows: [[0b1010_1000], [0b0101_0000]]))
            #expect(oneBit.bitDepth == 8 && oneBit.pixels.shape == [2, 5, 1])
            #expect(oneBit.pixels.scalars == [1, 0, 1, 0, 1, 0, 1, 0, 1, 0])

            let twoBit = try read("grey2.png", handMadePNG(width: 4, height: 1, bitDepth: 2, colorType: 0, rows: [[0b00_01_10_11]]))
            #expect(twoBit.pixels.scalars == [0, 85, 170, 255].map { Float($0) / 255 })

            // Adam7 on 2 x 2 pixels: pass 1 holds (0, 0), pass 6 holds (1, 0), pass 7 holds row 1.
            let adam7 = try read("interlaced.png", handMadePNG(width: 2, height: 2, bitDepth: 8, colorType: 0, rows: [[10], [20], [30, 40]],
                                                               interlaced: true))
            #expect(adam7.pixels.scalars == [10, 20, 30, 40].map { Float($0) / 255 })

            // Grey with a tRNS colour key: the keyed level becomes transparent.
            let keyed = try read("grey-key.png", handMadePNG(width: 2, height: 1, bitDepth: 8, colorType: 0, rows: [[7, 9]],
                                                            chunks: [("tRNS", [0, 9])]))
            #expect(keyed.pixels.shape == [1, 2, 4])
            #expect(keyed.pixels.scalars == [7, 7, 7, 255, 9, 9, 9, 0].map { Float($0) / 255 })
        }
    }

    @Test(arguments: [1, 3])
    func jpegWriteReadIsClose(channels: Int) throws {
        let pixels = smoothImage(height: 48, width: 64, channels: channels)
        try TestFiles.withScratchFolder { folder in
            let url = folder.appendingPathComponent("smooth.jpg")
            try writeJPEG(pixels, to: url)
            #expect([UInt8](try Data(contentsOf: url).prefix(3)) == [0xFF, 0xD8, 0xFF])
            let image = try readImage(url)
            #expect(image.bitDepth == 8 && image.pixels.shape == [48, 64, channels])
            let error = meanAbsoluteDifference(image.pixels, pixels)
            // Measured with libjpeg-turbo 2.1.5 at quality 95: grey 0.00128 (0.33/255), RGB with 4:2:0
            // chroma 0.00345 (0.88/255).
            #expect(error < 1.5 / 255, "mean absolute error \(error * 255)/255")
            // Lower quality is worse: the quality setting reaches the encoder.
            let low = folder.appendingPathComponent("low.jpg")
            try writeJPEG(pixels, to: low, quality: 10)
            #expect(meanAbsoluteDifference(try readImage(low).pixels, pixels) > error)
        }
    }

    static let photoFolders = ["faces", "cats"]

    /// data/README.md: 45 photos per folder, 64 x 64 RGB PNG.
    @Test(arguments: photoFolders)
    func readsSharedPhotos(folderName: String) throws {
        let folder = TestFiles.sharedData.appendingPathComponent("images/\(folderName)")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".png") }.sorted()
        #expect(names.count == 45)
        #expect(names.first?.hasPrefix("001_") == true && names.last?.hasPrefix("045_") == true)
        for name in names {
            let image = try readImage(folder.appendingPathComponent(name))
            #expect(image.pixels.shape == [64, 64, 3], "\(name)")
            #expect(image.bitDepth == 8, "\(name)")
            let values = image.pixels.scalars
            let mean = values.reduce(0, +) / Float(values.count)
            let spread = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(values.count)).squareRoot()
            // A real picture: not blank, not saturated, with contrast.
            #expect(mean > 0.05 && mean < 0.95 && spread > 0.03, "\(name): mean \(mean), std \(spread)")
        }
    }

    /// data/README.md: the Middlebury pair is 741 x 500 RGB.
    @Test func readsSharedStereoPair() throws {
        for side in ["left", "right"] {
            let url = TestFiles.sharedData.appendingPathComponent("stereo/motorcycle/motorcycle_\(side).png")
            let image = try readImage(url)
            #expect(image.pixels.shape == [500, 741, 3] && image.bitDepth == 8)
            #expect(image.width == 741 && image.height == 500 && image.channels == 3)
        }
    }

    @Test func truncatedOrDamagedPNGNamesTheFile() throws {
        let source = TestFiles.sharedData.appendingPathComponent("images/faces/001_face.png")
        let bytes = try Data(contentsOf: source)
        try TestFiles.withScratchFolder { folder in
            // Inside IHDR, right after it, inside the image data, without IEND, inside IEND's CRC.
            for length in [12, 33, bytes.count / 2, bytes.count - 12, bytes.count - 1] {
                let url = folder.appendingPathComponent("cut-\(length).png")
                try bytes.prefix(length).write(to: url)
                let message = errorMessage { _ = try readImage(url) }
                expectMentions(message, [url.path, "PNG", "truncated"])
            }
            // A flipped byte in the header fails the IHDR checksum; one in the image data fails the
            // IDAT checksum or, if zlib notices first, the decompression.
            for (offset, expected) in [(20, ["IHDR", "CRC"]), (bytes.count / 2, [])] {
                var damaged = [UInt8](bytes)
                damaged[offset] ^= 0x55
                let url = folder.appendingPathComponent("flipped-\(offset).png")
                try Data(damaged).write(to: url)
                expectMentions(errorMessage { _ = try readImage(url) }, [url.path, "PNG"] + expected)
            }
        }
    }

    @Test func truncatedJPEGNamesTheFile() throws {
        try TestFiles.withScratchFolder { folder in
            let whole = folder.appendingPathComponent("whole.jpg")
            try writeJPEG(smoothImage(height: 48, width: 64, channels: 3), to: whole)
            let bytes = try Data(contentsOf: whole)
            // In the header, in the entropy-coded data, and only the end-of-image marker missing.
            for length in [4, 100, bytes.count / 2, bytes.count - 2] {
                let url = folder.appendingPathComponent("cut-\(length).jpg")
                try bytes.prefix(length).write(to: url)
                let message = errorMessage { _ = try readImage(url) }
                expectMentions(message, [url.path, "JPEG", "truncated"])
            }
        }
    }

    @Test func unsupportedFilesAreClearErrors() throws {
        try TestFiles.withScratchFolder { folder in
            let text = folder.appendingPathComponent("notes.png")
            try Data("hello, not a picture\n".utf8).write(to: text)
            expectMentions(errorMessage { _ = try readImage(text) },
                           [text.path, "not a PNG or JPEG image", "68 65 6C 6C 6F", "supported: PNG", "JPEG"])

            let gif = folder.appendingPathComponent("anim.gif")
            try Data("GIF89a".utf8 + [1, 0, 1, 0, 0, 0, 0]).write(to: gif)
            expectMentions(errorMessage { _ = try readImage(gif) }, [gif.path, "not a PNG or JPEG image", "supported"])

            let empty = folder.appendingPathComponent("empty.jpg")
            try Data().write(to: empty)
            expectMentions(errorMessage { _ = try readImage(empty) }, [empty.path, "the file is empty"])

            let missing = folder.appendingPathComponent("missing.png")
            expectMentions(errorMessage { _ = try readImage(missing) }, [missing.path, "no such file"])
            expectMentions(errorMessage { _ = try readImage(folder) }, [folder.path, "is a directory"])

            // Only the signature of a PNG, or a PNG whose IHDR declares an impossible bit depth.
            let signature = folder.appendingPathComponent("signature.png")
            try Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]).write(to: signature)
            expectMentions(errorMessage { _ = try readImage(signature) }, [signature.path, "PNG", "truncated"])
            let badDepth = folder.appendingPathComponent("depth3.png")
            try handMadePNG(width: 1, height: 1, bitDepth: 3, colorType: 0, rows: [[0]]).write(to: badDepth)
            expectMentions(errorMessage { _ = try readImage(badDepth) }, [badDepth.path, "PNG"])
        }
    }

    @Test func hugeDeclaredSizeIsRefusedBeforeAllocating() throws {
        // IHDR claims 200000 x 200000 RGBA (160 GB); the image data is one row.
        let data = handMadePNG(width: 200_000, height: 200_000, bitDepth: 8, colorType: 6, rows: [[UInt8](repeating: 0, count: 16)])
        try TestFiles.withScratchFolder { folder in
            let url = folder.appendingPathComponent("huge.png")
            try data.write(to: url)
            expectMentions(errorMessage { _ = try readImage(url) }, [url.path, "200000 x 200000", "allows"])
        }
    }

    @Test func writersRefuseBadInputAndLeaveNoFile() throws {
        // `throws` is spelled out: every other try in the closure sits inside a nested closure.
        try TestFiles.withScratchFolder { folder throws in
            let png = folder.appendingPathComponent("out.png"), jpg = folder.appendingPathComponent("out.jpg")
            var nan = Tensor(shape: [2, 3, 3], repeating: 0.5)
            nan[1, 2, 0] = .nan
            expectMentions(errorMessage { try writePNG(nan, to: png) }, [png.path, "1 of 18 samples are NaN or infinite"])
            expectMentions(errorMessage { try writeJPEG(nan, to: jpg) }, [jpg.path, "NaN"])
            let two = Tensor(shape: [4, 4, 2], repeating: 0)
            expectMentions(errorMessage { try writePNG(two, to: png) }, [png.path, "C = 1, 3 or 4", "found [4, 4, 2]"])
            expectMentions(errorMessage { try writePNG(Tensor(shape: [4, 4], repeating: 0), to: png) }, [png.path, "found [4, 4]"])
            expectMentions(errorMessage { try writePNG(Tensor(shape: [0, 4, 3], repeating: 0), to: png) }, [png.path, "found [0, 4, 3]"])
            let rgba = Tensor(shape: [4, 4, 4], repeating: 0.2)
            expectMentions(errorMessage { try writeJPEG(rgba, to: jpg) }, [jpg.path, "JPEG has no alpha", "found [4, 4, 4]"])
            expectMentions(errorMessage { try writePNG(rgba, to: png, bitDepth: 12) }, [png.path, "8 or 16, got 12"])
            expectMentions(errorMessage { try writeJPEG(two, to: jpg, quality: 0) }, [jpg.path, "1...100, got 0"])
            let image = Image(pixels: Tensor(shape: [4, 4, 3], repeating: 0.2))
            let bmp = folder.appendingPathComponent("out.bmp")
            expectMentions(errorMessage { try writeImage(image, to: bmp) }, [bmp.path, ".png, .jpg or .jpeg"])
            let nowhere = folder.appendingPathComponent("no/such/folder/out.png")
            expectMentions(errorMessage { try writePNG(image, to: nowhere) }, [nowhere.path, "does not exist"])
            #expect(try TestFiles.contents(of: folder).isEmpty)
        }
    }

    @Test func writesReplaceFilesAndOutOfRangeValuesAreClamped() throws {
        try TestFiles.withScratchFolder { folder in
            let url = folder.appendingPathComponent("picture.PNG")
            try writeImage(Image(pixels: Tensor(shape: [2, 2, 1], repeating: 0.25)), to: url)
            try writeImage(Image(pixels: Tensor([-0.5, 0.5, 1.5, 1], shape: [2, 2, 1])), to: url)
            #expect(try readImage(url).pixels.scalars == [0, 128.0 / 255, 1, 1])
            let jpeg = folder.appendingPathComponent("picture.JPEG")
            try writeImage(Image(pixels: Tensor(shape: [8, 8, 3], repeating: 0.25)), to: jpeg)
            #expect(try readImage(jpeg).pixels.shape == [8, 8, 3])
            #expect(try TestFiles.contents(of: folder) == ["picture.JPEG", "picture.PNG"])
        }
    }

    @Test func channelsFirstViewMatchesPixels() {
        let pixels = levelImage(height: 2, width: 3, channels: 3, maxLevel: 255) { $0 }
        let image = Image(pixels: pixels)
        let chw = image.chw
        #expect(chw.shape == [3, 2, 3])
        for y in 0..<2 { for x in 0..<3 { for c in 0..<3 { #expect(chw[c, y, x] == pixels[y, x, c]) } } }
        let back = Image(chw: chw, bitDepth: 16)
        #expect(back.pixels.shape == [2, 3, 3] && back.pixels.scalars == pixels.scalars && back.bitDepth == 16)
    }
}

// MARK: Video

@Suite struct VideoIOTests {
    @Test func missingFFmpegIsAClearError() throws {
        #expect(findExecutable("ffmpeg", searchPath: "/nonexistent-folder:") == nil)
        #expect(findExecutable("sh", searchPath: "/nonexistent-folder:/bin:/usr/bin") != nil)
        let message = errorMessage { _ = try requireFFmpeg(findExecutable("ffmpeg", searchPath: "/nonexistent-folder"), file: "/x/out.mp4") }
        #expect(message == "/x/out.mp4: ffmpeg not found on PATH (apt-get install ffmpeg)")
    }

    @Test func badVideoArgumentsAreRefusedBeforeFFmpeg() throws {
        try TestFiles.withScratchFolder { folder in
            let out = folder.appendingPathComponent("out.mp4")
            expectMentions(errorMessage { try writeVideo(frames: [], to: out) }, [out.path, "no frames"])
            let frame = folder.appendingPathComponent("f.png")
            try writePNG(Tensor(shape: [4, 4, 3], repeating: 0.5), to: frame)
            expectMentions(errorMessage { try writeVideo(frames: [frame], to: out, fps: 0) }, [out.path, "fps", "positive"])
            expectMentions(errorMessage { try writeVideo(frameFolder: folder.appendingPathComponent("none"), to: out) }, ["none", "cannot list"])
            #expect(try TestFiles.contents(of: folder) == ["f.png"])
        }
    }

    /// Frame `i` of the test videos: a different flat colour each, with a gentle gradient.
    static func frame(_ i: Int, height: Int, width: Int) -> Tensor {
        var values: [Float] = []
        let base: [Float] = [0.2 + 0.06 * Float(i), 0.8 - 0.05 * Float(i), 0.5]
        for y in 0..<height { for _ in 0..<width { values += base.map { $0 + 0.1 * Float(y) / Float(height) } } }
        return Tensor(values, shape: [height, width, 3])
    }

    static func meanColour(_ t: Tensor) -> [Double] {
        let c = t.shape[2], values = t.scalars, n = Double(values.count / c)
        return (0..<c).map { ch in stride(from: ch, to: values.count, by: c).reduce(0.0) { $0 + Double(values[$1]) } / n }
    }

    @Test(.enabled(if: ffmpegExecutable() != nil, "ffmpeg not found on PATH: video round trip skipped (apt-get install ffmpeg)"))
    func videoRoundTrip() throws {
        try TestFiles.withScratchFolder { folder in
            let framesFolder = folder.appendingPathComponent("frames")
            try FileManager.default.createDirectory(at: framesFolder, withIntermediateDirectories: true)
            let originals = (0..<10).map { Self.frame($0, height: 24, width: 32) }
            for (i, frame) in originals.enumerated() {
                try writePNG(frame, to: framesFolder.appendingPathComponent(String(format: "%03d.png", i)))
            }
            let video = folder.appendingPathComponent("clip.mp4")
            try writeVideo(frameFolder: framesFolder, to: video, fps: 10)
            #expect([UInt8](try Data(contentsOf: video).dropFirst(4).prefix(4)) == Array("ftyp".utf8))

            let decoded = folder.appendingPathComponent("decoded")
            let frames = try readVideoFrames(video, to: decoded)
            #expect(frames.count == 10)
            #expect(try TestFiles.contents(of: decoded) == frames.map(\.lastPathComponent))
            for (i, url) in frames.enumerated() {
                let image = try readImage(url)
                #expect(image.pixels.shape == [24, 32, 3])
                let got = Self.meanColour(image.pixels), want = Self.meanColour(originals[i])
                #expect(zip(got, want).allSatisfy { abs($0 - $1) < 0.03 }, "frame \(i): \(got) vs \(want)")
            }
        }
    }

    @Test(.enabled(if: ffmpegExecutable() != nil, "ffmpeg not found on PATH: video padding test skipped (apt-get install ffmpeg)"))
    func oddFrameSizesArePaddedToEven() throws {
        try TestFiles.withScratchFolder { folder in
            let frames = try (0..<3).map { i -> URL in
                let url = folder.appendingPathComponent("odd\(i).jpg")
                try writeJPEG(Self.frame(i, height: 21, width: 33), to: url)
                return url
            }
            let video = folder.appendingPathComponent("odd.mp4")
            try writeVideo(frames: frames, to: video, fps: 25)
            let decoded = try readVideoFrames(video, to: folder.appendingPathComponent("decoded"))
            #expect(decoded.count == 3)
            #expect(try readImage(decoded[0]).pixels.shape == [22, 34, 3])
        }
    }

    @Test(.enabled(if: ffmpegExecutable() != nil, "ffmpeg not found on PATH: video error test skipped (apt-get install ffmpeg)"))
    func videoFailuresNameTheFileAndQuoteFFmpeg() throws {
        try TestFiles.withScratchFolder { folder in
            let text = folder.appendingPathComponent("notes.mp4")
            try Data("not a video\n".utf8).write(to: text)
            let out = folder.appendingPathComponent("frames")
            expectMentions(errorMessage { _ = try readVideoFrames(text, to: out) }, [text.path, "ffmpeg exited with status", "notes.mp4"])
            #expect(try TestFiles.contents(of: out).isEmpty)

            let a = folder.appendingPathComponent("a.png"), b = folder.appendingPathComponent("b.png")
            try writePNG(Tensor(shape: [4, 6, 3], repeating: 0.5), to: a)
            try writePNG(Tensor(shape: [4, 8, 3], repeating: 0.5), to: b)
            let video = folder.appendingPathComponent("mixed.mp4")
            expectMentions(errorMessage { try writeVideo(frames: [a, b], to: video) }, [b.path, "6 x 4 like the first frame", "found 8 x 4"])
            let c = folder.appendingPathComponent("c.jpg")
            try writeJPEG(Tensor(shape: [4, 6, 3], repeating: 0.5), to: c)
            expectMentions(errorMessage { try writeVideo(frames: [a, c], to: video) }, [c.path, "one format"])
            let broken = folder.appendingPathComponent("broken.png")
            try Data("text".utf8).write(to: broken)
            expectMentions(errorMessage { try writeVideo(frames: [a, broken], to: video) }, [broken.path, "not a PNG or JPEG"])
            #expect(!FileManager.default.fileExists(atPath: video.path))
        }
    }
}
