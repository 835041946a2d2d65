import Foundation
import DeformTensor
import CPNG
import CTurboJPEG
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: PNG (libpng, through the C functions in Sources/CPNG/shim.h)

/// Reads a fixed-size C `char` array (imported as a tuple) as a string.
func stringFromCBuffer<T>(_ tuple: T) -> String {
    withUnsafeBytes(of: tuple) { raw in
        let bytes = raw.bindMemory(to: UInt8.self)
        let end = bytes.firstIndex(of: 0) ?? bytes.count
        return String(decoding: bytes[..<end], as: UTF8.self)
    }
}

func decodePNG(_ data: Data, file: String) throws -> Image {
    var decoded = deform_png_image()
    let status = data.withUnsafeBytes { raw in
        deform_png_decode(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, maxDecodedImageBytes, &decoded)
    }
    guard status == 0, let samples = decoded.pixels else {
        throw DeformIOError.corrupt(file: file, entry: nil, message: "PNG: \(stringFromCBuffer(decoded.message))")
    }
    defer { free(samples) }
    let (h, w, c) = (Int(decoded.height), Int(decoded.width), Int(decoded.channels))
    var pixels = Tensor(uninitializedShape: [h, w, c])
    pixels.withUnsafeMutableBufferPointer { dst in
        if decoded.bit_depth == 16 {
            // The C side swapped the big-endian file samples to host order.
            samples.withMemoryRebound(to: UInt16.self, capacity: dst.count) { src in
                for i in 0..<dst.count { dst[i] = Float(src[i]) / 65535 }
            }
        } else {
            levels8.withUnsafeBufferPointer { lut in
                for i in 0..<dst.count { dst[i] = lut[Int(samples[i])] }
            }
        }
    }
    return Image(pixels: pixels, bitDepth: Int(decoded.bit_depth))
}

/// zlib level 6: within a few percent of level 9's size at a fraction of its time (zlib's own default).
let pngCompressionLevel: Int32 = 6

func encodePNG(_ pixels: Tensor, bitDepth: Int, file: String) throws -> Data {
    let (h, w, c) = (pixels.shape[0], pixels.shape[1], pixels.shape[2])
    var output: UnsafeMutablePointer<UInt8>?
    var size = 0
    var message = [CChar](repeating: 0, count: Int(DEFORM_PNG_MESSAGE_SIZE))
    let encode = { (raw: UnsafeRawBufferPointer) -> Int32 in
        deform_png_encode(raw.bindMemory(to: UInt8.self).baseAddress, UInt32(w), UInt32(h), Int32(c), Int32(bitDepth),
                          pngCompressionLevel, &output, &size, &message)
    }
    let status = bitDepth == 16 ? samples16(pixels).withUnsafeBytes(encode) : samples8(pixels).withUnsafeBytes(encode)
    guard status == 0, let bytes = output else {
        throw DeformIOError.io(file: file, message: "cannot encode PNG: \(String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
    }
    defer { free(bytes) }
    return Data(bytes: bytes, count: size)
}

// MARK: JPEG (TurboJPEG)

/// Why a JPEG header could not be used: TurboJPEG's message, or the missing size when the decoder
/// returned without an error.
func jpegHeaderError(_ handle: tjhandle?, status: Int32, file: String) -> DeformIOError {
    let reason = status == 0 ? "the header holds no image size" : turboJPEGMessage(handle)
    return .corrupt(file: file, entry: nil, message: "JPEG: cannot read the header (damaged or truncated file): \(reason)")
}

/// TurboJPEG's message for the last failure on `handle`.
func turboJPEGMessage(_ handle: tjhandle?) -> String {
    guard let text = tjGetErrorStr2(handle) else { return "unknown TurboJPEG error" }
    return String(cString: text)
}

func decodeJPEG(_ data: Data, file: String) throws -> Image {
    guard let handle = tjInitDecompress() else {
        throw DeformIOError.io(file: file, message: "cannot start the JPEG decoder: \(turboJPEGMessage(nil))")
    }
    defer { tjDestroy(handle) }
    return try data.withUnsafeBytes { raw -> Image in
        let jpeg = raw.bindMemory(to: UInt8.self).baseAddress
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        // A file cut inside its header can "succeed" with a 0 x 0 size: the decoder makes up an end
        // marker and only warns.
        let header = tjDecompressHeader3(handle, jpeg, UInt(raw.count), &width, &height, &subsampling, &colorspace)
        guard header == 0, width > 0, height > 0 else { throw jpegHeaderError(handle, status: header, file: file) }
        if colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue) {
            throw DeformIOError.unsupportedFormat(file: file, message: "CMYK JPEG images are not supported (convert to RGB); \(ImageFormat.supportedList)")
        }
        let grey = colorspace == Int32(TJCS_GRAY.rawValue)
        let (h, w, c) = (Int(height), Int(width), grey ? 1 : 3)
        guard h * w * c <= maxDecodedImageBytes else {
            throw DeformIOError.corrupt(file: file, entry: nil, message: "JPEG: \(w) x \(h) pixels need more than the \(maxDecodedImageBytes) bytes this reader allows")
        }
        var samples = [UInt8](repeating: 0, count: h * w * c)
        let format = Int32(grey ? TJPF_GRAY.rawValue : TJPF_RGB.rawValue)
        let status = samples.withUnsafeMutableBufferPointer { dst in
            tjDecompress2(handle, jpeg, UInt(raw.count), dst.baseAddress, width, 0, height, format, 0)
        }
        // TurboJPEG also returns -1 for warnings such as "Premature end of JPEG file" after filling
        // the missing rows with grey. Damaged pixels are refused rather than passed on as data.
        guard status == 0 else {
            throw DeformIOError.corrupt(file: file, entry: nil, message: "JPEG: cannot decode (damaged or truncated file): \(turboJPEGMessage(handle))")
        }
        var pixels = Tensor(uninitializedShape: [h, w, c])
        pixels.withUnsafeMutableBufferPointer { dst in
            levels8.withUnsafeBufferPointer { lut in
                for i in 0..<dst.count { dst[i] = lut[Int(samples[i])] }
            }
        }
        return Image(pixels: pixels, bitDepth: 8)
    }
}

func encodeJPEG(_ pixels: Tensor, quality: Int, file: String) throws -> Data {
    let (h, w, c) = (pixels.shape[0], pixels.shape[1], pixels.shape[2])
    guard let handle = tjInitCompress() else {
        throw DeformIOError.io(file: file, message: "cannot start the JPEG encoder: \(turboJPEGMessage(nil))")
    }
    defer { tjDestroy(handle) }
    let format = Int32(c == 1 ? TJPF_GRAY.rawValue : TJPF_RGB.rawValue)
    let subsampling = Int32(c == 1 ? TJSAMP_GRAY.rawValue : TJSAMP_420.rawValue)
    var output: UnsafeMutablePointer<UInt8>?
    var size: UInt = 0
    let status = samples8(pixels).withUnsafeBufferPointer { src in
        tjCompress2(handle, src.baseAddress, Int32(w), 0, Int32(h), format, &output, &size, subsampling, Int32(quality), 0)
    }
    defer { if let output { tjFree(output) } }
    guard status == 0, let bytes = output else {
        throw DeformIOError.io(file: file, message: "cannot encode JPEG: \(turboJPEGMessage(handle))")
    }
    return Data(bytes: bytes, count: Int(size))
}

// MARK: Header-only size

/// Width and height from a PNG or JPEG header without decoding the pixels (to check video frames).
func imageSize(_ url: URL) throws -> (width: Int, height: Int) {
    let file = url.path
    let data = try readFileData(url)
    switch ImageFormat(signature: data) {
    case .png:
        // Signature, then the IHDR chunk: length (4), "IHDR" (4), width and height (big-endian).
        let b = [UInt8](data.prefix(24))
        guard b.count == 24, b[12..<16].elementsEqual(Array("IHDR".utf8)) else {
            throw DeformIOError.corrupt(file: file, entry: nil, message: "PNG: no IHDR chunk after the signature")
        }
        let be32 = { (i: Int) -> Int in Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3]) }
        return (be32(16), be32(20))
    case .jpeg:
        guard let handle = tjInitDecompress() else {
            throw DeformIOError.io(file: file, message: "cannot start the JPEG decoder: \(turboJPEGMessage(nil))")
        }
        defer { tjDestroy(handle) }
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        let status = data.withUnsafeBytes { raw in
            tjDecompressHeader3(handle, raw.bindMemory(to: UInt8.self).baseAddress, UInt(raw.count), &width, &height, &subsampling, &colorspace)
        }
        guard status == 0, width > 0, height > 0 else { throw jpegHeaderError(handle, status: status, file: file) }
        return (Int(width), Int(height))
    case nil:
        throw unsupportedImageError(data, file: file)
    }
}
