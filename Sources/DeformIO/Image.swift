import Foundation
import DeformTensor

/// A picture as Float32 samples in [0, 1], laid out `[H, W, C]` (row-major, top row first) with
/// C = 1 (grey), 3 (RGB) or 4 (RGBA, straight alpha).
///
/// Samples are the values stored in the file divided by 255 or 65535: no gamma or colour-profile
/// conversion is applied, which is how NumPy-based tools read images too, so numbers compare
/// directly with theirs.
public struct Image: Sendable {
    /// Samples in [0, 1], shape `[H, W, C]`.
    public var pixels: Tensor
    /// Bits per sample of the file the image was read from (8 or 16); ``writePNG(_:to:bitDepth:)``
    /// writes this depth unless told otherwise. Palette and 1/2/4-bit files are read as 8-bit.
    public var bitDepth: Int

    /// Wraps `[H, W, C]` samples. `pixels` must have rank 3 with C in {1, 3, 4}, and `bitDepth` must
    /// be 8 or 16; anything else is a programming error (the writers check tensors they are given
    /// and throw instead).
    public init(pixels: Tensor, bitDepth: Int = 8) {
        precondition(pixels.rank == 3 && [1, 3, 4].contains(pixels.shape[2]),
                     "Image: pixels must have shape [H, W, C] with C = 1, 3 or 4, got \(pixels.shape)")
        precondition(bitDepth == 8 || bitDepth == 16, "Image: bitDepth must be 8 or 16, got \(bitDepth)")
        self.pixels = pixels
        self.bitDepth = bitDepth
    }

    /// An image from channels-first samples `[C, H, W]`, the layout convolution layers take.
    public init(chw: Tensor, bitDepth: Int = 8) {
        precondition(chw.rank == 3, "Image: chw must have shape [C, H, W], got \(chw.shape)")
        self.init(pixels: chw.permuted(1, 2, 0), bitDepth: bitDepth)
    }

    public var height: Int { pixels.shape[0] }
    public var width: Int { pixels.shape[1] }
    public var channels: Int { pixels.shape[2] }

    /// The samples channels-first, `[C, H, W]`, for convolution layers.
    public var chw: Tensor { pixels.permuted(2, 0, 1) }
}

/// Bytes of decoded samples a reader accepts (1 GiB): a corrupt or hostile header cannot make it
/// allocate more. The Float32 image is 4x (8-bit) or 2x (16-bit) this.
let maxDecodedImageBytes = 1 << 30

/// The image file formats Deform reads and writes.
enum ImageFormat: String {
    case png = "PNG", jpeg = "JPEG"

    /// Recognises a format by its leading bytes, not by the file name.
    init?(signature bytes: Data) {
        let b = [UInt8](bytes.prefix(8))
        if b.count >= 8, b == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] {
            self = .png
        } else if b.count >= 3, b[0] == 0xFF, b[1] == 0xD8, b[2] == 0xFF {
            self = .jpeg
        } else {
            return nil
        }
    }

    static let supportedList = "supported: PNG (8/16-bit grey, grey+alpha, RGB, RGBA, palette) and JPEG (8-bit grey or colour)"
}

/// Reads a PNG or JPEG file, recognised by its first bytes rather than its name.
///
/// PNG: palette, grey + alpha, transparency chunks and 1/2/4-bit samples are expanded to 8-bit grey,
/// RGB or RGBA (grey + alpha becomes RGBA); 16-bit files keep 16 bits (``Image/bitDepth`` = 16).
/// JPEG: grey files give C = 1, colour files C = 3. A truncated or damaged file is an error, also when
/// the decoder could have returned partly grey pixels.
///
/// - Throws: ``DeformIOError`` naming the file: `.io` when it cannot be read, `.unsupportedFormat`
///   for other formats (the message lists the supported ones), `.corrupt` for damaged files.
public func readImage(_ url: URL) throws -> Image {
    let data = try readFileData(url)
    return try decodeImage(data, file: url.path)
}

/// Decodes PNG or JPEG bytes; `file` names the source in error messages.
func decodeImage(_ data: Data, file: String) throws -> Image {
    switch ImageFormat(signature: data) {
    case .png: return try decodePNG(data, file: file)
    case .jpeg: return try decodeJPEG(data, file: file)
    case nil: throw unsupportedImageError(data, file: file)
    }
}

/// The error for bytes that are neither PNG nor JPEG; it shows the first bytes, which often tell
/// what the file really is (text, a TIFF, an HTML error page saved as .png).
func unsupportedImageError(_ data: Data, file: String) -> DeformIOError {
    let head = data.prefix(8).map { String(format: "%02X", $0) }.joined(separator: " ")
    let found = data.isEmpty ? "the file is empty" : "it starts with bytes \(head)"
    return .unsupportedFormat(file: file, message: "not a PNG or JPEG image (\(found)); \(ImageFormat.supportedList)")
}

/// Writes `image` as PNG (atomically: temporary file + rename).
///
/// - Parameter bitDepth: 8 or 16 bits per sample; `nil` keeps ``Image/bitDepth``. Samples are clamped
///   to [0, 1] and rounded to the nearest level, so `k / 255` (or `k / 65535`) comes back exactly.
/// - Throws: ``DeformIOError`` naming the file for non-finite samples, a bad bit depth or a failed write.
public func writePNG(_ image: Image, to url: URL, bitDepth: Int? = nil) throws {
    try writePNG(image.pixels, to: url, bitDepth: bitDepth ?? image.bitDepth)
}

/// Writes `[H, W, C]` samples in [0, 1] (C = 1, 3 or 4) as an 8- or 16-bit PNG, like the `Image` overload.
public func writePNG(_ pixels: Tensor, to url: URL, bitDepth: Int = 8) throws {
    let file = url.path
    guard bitDepth == 8 || bitDepth == 16 else {
        throw DeformIOError.invalidValue(file: file, entry: "bitDepth", message: "PNG bit depth must be 8 or 16, got \(bitDepth)")
    }
    try checkImageTensor(pixels, file: file, format: .png)
    let data = try encodePNG(pixels, bitDepth: bitDepth, file: file)
    try writeAtomically(data, to: url)
}

/// PNG bytes of `[H, W, C]` samples in [0, 1] (C = 1, 3 or 4), for embedding (reports, data URIs).
///
/// - Parameter name: names the image in error messages.
public func encodePNGData(_ pixels: Tensor, bitDepth: Int = 8, name: String = "<memory>") throws -> Data {
    guard bitDepth == 8 || bitDepth == 16 else {
        throw DeformIOError.invalidValue(file: name, entry: "bitDepth", message: "PNG bit depth must be 8 or 16, got \(bitDepth)")
    }
    try checkImageTensor(pixels, file: name, format: .png)
    return try encodePNG(pixels, bitDepth: bitDepth, file: name)
}

/// Decodes PNG or JPEG bytes held in memory; `name` names them in error messages.
public func decodeImageData(_ data: Data, name: String = "<memory>") throws -> Image {
    try decodeImage(data, file: name)
}

/// Writes `image` as a baseline JPEG (4:2:0 chroma for colour), atomically. JPEG holds 8 bits and no
/// alpha: 16-bit images are rounded to 8 bits, and RGBA is refused rather than silently flattened.
///
/// - Parameter quality: 1...100 (libjpeg's scale); 95 keeps smooth images within about 1/255.
public func writeJPEG(_ image: Image, to url: URL, quality: Int = 95) throws {
    try writeJPEG(image.pixels, to: url, quality: quality)
}

/// Writes `[H, W, C]` samples in [0, 1] (C = 1 or 3) as a JPEG, like the `Image` overload.
public func writeJPEG(_ pixels: Tensor, to url: URL, quality: Int = 95) throws {
    let file = url.path
    guard (1...100).contains(quality) else {
        throw DeformIOError.invalidValue(file: file, entry: "quality", message: "JPEG quality must be 1...100, got \(quality)")
    }
    try checkImageTensor(pixels, file: file, format: .jpeg)
    let data = try encodeJPEG(pixels, quality: quality, file: file)
    try writeAtomically(data, to: url)
}

/// Writes PNG or JPEG according to the extension of `url` (`.png`, `.jpg`, `.jpeg`, any case).
public func writeImage(_ image: Image, to url: URL) throws {
    switch url.pathExtension.lowercased() {
    case "png": try writePNG(image, to: url)
    case "jpg", "jpeg": try writeJPEG(image, to: url)
    default:
        throw DeformIOError.unsupportedFormat(file: url.path, message: "cannot tell the image format from the extension '\(url.pathExtension)'; use .png, .jpg or .jpeg")
    }
}

/// Checks the shape and values a writer is given, so a bad tensor is an error naming the file
/// instead of a crash in the conversion to integers.
func checkImageTensor(_ pixels: Tensor, file: String, format: ImageFormat) throws {
    let channels: [Int] = format == .png ? [1, 3, 4] : [1, 3]
    let expected = format == .png ? "[H, W, C] with C = 1, 3 or 4" : "[H, W, C] with C = 1 or 3 (JPEG has no alpha)"
    guard pixels.rank == 3, channels.contains(pixels.shape[2]), pixels.shape[0] > 0, pixels.shape[1] > 0 else {
        throw DeformIOError.shapeMismatch(file: file, entry: "pixels", expected: expected, found: shapeString(pixels.shape))
    }
    guard pixels.shape[0] <= Int(Int32.max), pixels.shape[1] <= Int(Int32.max) else {
        throw DeformIOError.shapeMismatch(file: file, entry: "pixels", expected: "at most \(Int32.max) rows and columns", found: shapeString(pixels.shape))
    }
    let nonFinite = pixels.withUnsafeBufferPointer { $0.reduce(0) { $1.isFinite ? $0 : $0 + 1 } }
    if nonFinite > 0 {
        throw DeformIOError.invalidValue(file: file, entry: "pixels", message: "\(nonFinite) of \(pixels.count) samples are NaN or infinite")
    }
}

/// Rounds samples in [0, 1] (clamped) to integers in 0...maxLevel.
@inline(__always) func quantize(_ v: Float, _ maxLevel: Float) -> Float {
    (Swift.min(Swift.max(v, 0), 1) * maxLevel).rounded()
}

/// 8-bit samples of a checked tensor.
func samples8(_ pixels: Tensor) -> [UInt8] {
    pixels.withUnsafeBufferPointer { src in src.map { UInt8(quantize($0, 255)) } }
}

/// 16-bit samples (host byte order) of a checked tensor.
func samples16(_ pixels: Tensor) -> [UInt16] {
    pixels.withUnsafeBufferPointer { src in src.map { UInt16(quantize($0, 65535)) } }
}

/// `k / 255` for every 8-bit level, so 8-bit reads do no division per sample.
let levels8: [Float] = (0..<256).map { Float($0) / 255 }
