import Foundation
import DeformTensor
import ZIPFoundation

/// A fixed entry time so that writing the same arrays twice gives byte-identical archives.
private let npzEntryDate = Date(timeIntervalSince1970: 315_532_800)  // 1980-01-01, the ZIP epoch

/// Reads a NumPy `.npz` archive: every `NAME.npy` member, keyed by `NAME` (as `numpy.load` does).
///
/// Members may be stored or DEFLATE-compressed; their CRC-32 is checked. Members that are not
/// `.npy` files are ignored.
public func readNPZ(_ url: URL) throws -> [String: NPYArray] {
    let path = url.path
    try checkReadableFile(url)
    let archive: Archive
    do { archive = try Archive(url: url, accessMode: .read) } catch {
        throw DeformIOError.corrupt(file: path, entry: nil, message: "not a ZIP archive (an .npz file is a ZIP of .npy members): \(error)")
    }
    return try readNPZEntries(archive, file: path)
}

/// Decodes `.npz` bytes held in memory; `file` only labels errors.
public func decodeNPZ(_ data: Data, file: String = "<memory>") throws -> [String: NPYArray] {
    let archive: Archive
    do { archive = try Archive(data: data, accessMode: .read) } catch {
        throw DeformIOError.corrupt(file: file, entry: nil, message: "not a ZIP archive (an .npz file is a ZIP of .npy members): \(error)")
    }
    return try readNPZEntries(archive, file: file)
}

private func readNPZEntries(_ archive: Archive, file: String) throws -> [String: NPYArray] {
    var arrays: [String: NPYArray] = [:]
    for entry in archive where entry.type == .file && entry.path.hasSuffix(".npy") {
        let name = String(entry.path.dropLast(4))
        var bytes = Data()
        if entry.uncompressedSize < UInt64(Int32.max) { bytes.reserveCapacity(Int(entry.uncompressedSize)) }
        let checksum: CRC32
        do {
            checksum = try archive.extract(entry, skipCRC32: false) { chunk in bytes.append(chunk) }
        } catch {
            throw DeformIOError.corrupt(file: file, entry: entry.path, message: "cannot extract the member (\(error))")
        }
        // Extraction into memory returns the checksum without comparing it. A stored value of 0
        // can also mean an absent data descriptor, so only a non-zero one is trusted.
        guard entry.checksum == 0 || checksum == entry.checksum else {
            throw DeformIOError.corrupt(file: file, entry: entry.path,
                                        message: "CRC-32 mismatch (archive lists \(entry.checksum), contents give \(checksum)); the member is damaged")
        }
        guard UInt64(bytes.count) == entry.uncompressedSize else {
            throw DeformIOError.corrupt(file: file, entry: entry.path,
                                        message: "member holds \(bytes.count) bytes but the archive lists \(entry.uncompressedSize)")
        }
        arrays[name] = try decodeNPY(bytes, file: file, entry: name)
    }
    return arrays
}

/// Adds every array as a `NAME.npy` member, in name order so the output is reproducible.
private func addNPYMembers(_ arrays: [String: NPYArray], to archive: Archive, compressed: Bool, label: String) throws {
    for name in arrays.keys.sorted() {
        let bytes = encodeNPY(arrays[name]!)
        do {
            try archive.addEntry(with: name + ".npy", type: .file, uncompressedSize: Int64(bytes.count),
                                 modificationDate: npzEntryDate,
                                 compressionMethod: compressed ? .deflate : .none) { position, size in
                let start = bytes.startIndex + Int(position)
                return bytes.subdata(in: start..<(start + size))
            }
        } catch {
            throw DeformIOError.io(file: label, message: "cannot write member '\(name).npy': \(error)")
        }
    }
}

private func checkNames(_ arrays: [String: NPYArray], label: String) throws {
    for name in arrays.keys where name.isEmpty {
        throw DeformIOError.invalidValue(file: label, entry: name, message: "array names must not be empty")
    }
}

/// Writes arrays as a NumPy `.npz` archive (member `NAME.npy` for each key), atomically.
///
/// - Parameter compressed: DEFLATE the members like `numpy.savez_compressed` (default), or store
///   them like `numpy.savez`.
public func writeNPZ(_ arrays: [String: NPYArray], to url: URL, compressed: Bool = true) throws {
    try checkNames(arrays, label: url.path)
    try withAtomicFile(at: url) { temporary in
        let archive: Archive
        do { archive = try Archive(url: temporary, accessMode: .create) } catch {
            throw DeformIOError.io(file: url.path, message: "cannot create the archive: \(error)")
        }
        try addNPYMembers(arrays, to: archive, compressed: compressed, label: url.path)
    }
}

/// Writes tensors as `<f4` members of a `.npz` archive, atomically.
public func writeNPZ(_ tensors: [String: Tensor], to url: URL, compressed: Bool = true) throws {
    try writeNPZ(tensors.mapValues { NPYArray($0) }, to: url, compressed: compressed)
}

/// Encodes arrays as `.npz` bytes in memory.
public func encodeNPZ(_ arrays: [String: NPYArray], compressed: Bool = true) throws -> Data {
    try checkNames(arrays, label: "<memory>")
    let archive: Archive
    do { archive = try Archive(accessMode: .create) } catch {
        throw DeformIOError.io(file: "<memory>", message: "cannot create an in-memory archive: \(error)")
    }
    try addNPYMembers(arrays, to: archive, compressed: compressed, label: "<memory>")
    return archive.data ?? Data()
}
