internal import CZlib

/// Message compression of gRPC (`grpc-encoding`), per message, through zlib.
public enum MessageEncoding: String, Sendable, CaseIterable {
    case identity
    case gzip
    /// The zlib format (RFC 1950), as gRPC's `deflate` is.
    case deflate

    /// What we advertise in `grpc-accept-encoding`.
    static let acceptHeader = "identity,deflate,gzip"

    /// Parses one `grpc-encoding` value; nil for what we do not support.
    init?(header: String) {
        self.init(rawValue: header.trimmingASCIISpaces.lowercased())
    }

    /// The first encoding we support from a `grpc-accept-encoding` list, preferring gzip.
    static func preferred(fromAccept header: String?) -> MessageEncoding? {
        guard let header else { return nil }
        let offered = Set(header.split(separator: ",").compactMap { MessageEncoding(header: String($0)) })
        if offered.contains(.gzip) { return .gzip }
        if offered.contains(.deflate) { return .deflate }
        return nil
    }

    private var windowBits: Int32 {
        switch self {
        case .gzip: 15 + 16
        case .deflate, .identity: 15
        }
    }

    /// Compresses one message.
    func compress(_ input: [UInt8]) throws(RPCError) -> [UInt8] {
        guard self != .identity else { return input }
        let stream = try ZStream(deflating: windowBits, encoding: rawValue)
        let bound = Int(deflateBound(stream.raw, uLong(input.count)))
        // Uninitialised: only what deflate writes is touched (a well-compressed message leaves
        // most of the bound's pages untouched).
        var output = [UInt8](unsafeUninitializedCapacity: bound) { _, count in count = bound }
        var input = input
        let rv: Int32 = input.withUnsafeMutableBufferPointer { inBuf in
            output.withUnsafeMutableBufferPointer { outBuf in
                stream.raw.pointee.next_in = inBuf.baseAddress
                stream.raw.pointee.avail_in = uInt(inBuf.count)
                stream.raw.pointee.next_out = outBuf.baseAddress
                stream.raw.pointee.avail_out = uInt(outBuf.count)
                return CZlib.deflate(stream.raw, Z_FINISH)
            }
        }
        guard rv == Z_STREAM_END else { throw RPCError(code: .internal, message: "\(rawValue) compression failed") }
        output.removeSubrange(Int(stream.raw.pointee.total_out)...)
        return output
    }

    /// Decompresses one message, giving up as soon as the output passes `limit` bytes: the
    /// limit is judged on what the message becomes, so a small bomb costs nothing.
    func decompress(_ input: [UInt8], limit: Int) throws(RPCError) -> [UInt8] {
        guard self != .identity else { return input }
        let stream = try ZStream(inflating: windowBits, encoding: rawValue)
        let z = stream.raw
        // Chunks, joined once at the end: an array grown by appending would keep up to twice
        // the message's size for as long as the message lives.
        var chunks: [[UInt8]] = []
        var total = 0
        var chunk = [UInt8](repeating: 0, count: min(max(input.count * 4, 1024), 256 * 1024))
        var input = input
        var done = false
        try input.withUnsafeMutableBufferPointer { (inBuf) throws(RPCError) in
            z.pointee.next_in = inBuf.baseAddress
            z.pointee.avail_in = uInt(inBuf.count)
            while !done {
                let (rv, produced) = chunk.withUnsafeMutableBufferPointer { outBuf -> (Int32, Int) in
                    z.pointee.next_out = outBuf.baseAddress
                    z.pointee.avail_out = uInt(outBuf.count)
                    let rv = inflate(z, Z_NO_FLUSH)
                    return (rv, outBuf.count - Int(z.pointee.avail_out))
                }
                switch rv {
                case Z_STREAM_END: done = true
                case Z_OK: break
                case Z_BUF_ERROR where produced == 0:
                    throw RPCError(code: .internal, message: "\(rawValue)-compressed message is truncated")
                case Z_BUF_ERROR: break
                default: throw RPCError(code: .internal, message: "\(rawValue)-compressed message is corrupt")
                }
                guard total + produced <= limit else {
                    throw RPCError(
                        code: .resourceExhausted,
                        message: "decompressed request message exceeds the limit of \(limit) bytes")
                }
                if produced > 0 { chunks.append(Array(chunk[..<produced])) }
                total += produced
                if !done, produced == 0, z.pointee.avail_in == 0 {
                    throw RPCError(code: .internal, message: "\(rawValue)-compressed message is truncated")
                }
            }
        }
        if z.pointee.avail_in != 0 {
            throw RPCError(code: .internal, message: "bytes after the end of a \(rawValue)-compressed message")
        }
        if chunks.count == 1 { return chunks[0] }
        var output: [UInt8] = []
        output.reserveCapacity(total)
        for c in chunks { output += c }
        return output
    }
}

/// One zlib stream in heap memory of its own: zlib keeps a pointer back to its `z_stream`
/// between calls (and checks it), so the struct must never move, as a Swift local passed by
/// `&` may. Ended and freed with the object.
final class ZStream {
    let raw: UnsafeMutablePointer<z_stream>
    private let inflating: Bool

    init(inflating windowBits: Int32, encoding: String) throws(RPCError) {
        raw = .allocate(capacity: 1)
        raw.initialize(to: z_stream())
        inflating = true
        guard esaylov_inflate_init(raw, windowBits) == Z_OK else {
            raw.deallocate()
            throw RPCError(code: .internal, message: "cannot start \(encoding) decompression")
        }
    }

    init(deflating windowBits: Int32, encoding: String) throws(RPCError) {
        raw = .allocate(capacity: 1)
        raw.initialize(to: z_stream())
        inflating = false
        guard esaylov_deflate_init(raw, Z_DEFAULT_COMPRESSION, windowBits) == Z_OK else {
            raw.deallocate()
            throw RPCError(code: .internal, message: "cannot start \(encoding) compression")
        }
    }

    deinit {
        if inflating { inflateEnd(raw) } else { deflateEnd(raw) }
        raw.deallocate()
    }
}

extension String {
    var trimmingASCIISpaces: String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
