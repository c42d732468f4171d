public import NIOCore

/// Splits a request body into gRPC length-prefixed messages (gRPC HTTP/2 protocol:
/// 1-byte compressed flag, 4-byte big-endian length, message). The length is judged
/// against the limit as soon as the prefix arrives, before the body is buffered.
public struct MessageDeframer: Sendable {
    public let maxMessageSize: Int
    private var buffer: ByteBuffer
    private var pending: (compressed: Bool, length: Int)?
    /// A message that arrived whole in one chunk with nothing buffered (a unary request, most
    /// often): taken as it came, without going through the buffer.
    private var ready: Frame?

    /// One length-prefixed message as it came off the wire.
    public struct Frame: Sendable, Equatable {
        public var compressed: Bool
        public var bytes: [UInt8]
    }

    /// Every deframer starts with this one (shared, copied on first write): a stream whose
    /// request never arrives costs no buffer, and the first write allocates what it needs.
    private static let empty = ByteBufferAllocator().buffer(capacity: 0)

    public init(maxMessageSize: Int) {
        self.maxMessageSize = maxMessageSize
        self.buffer = Self.empty
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if ready == nil, pending == nil, buffer.readableBytes == 0, bytes.count >= 5 {
            let flag = bytes[0]
            let length = Int(UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 1, as: UInt32.self)))
            // Exactly one valid message: anything else (more, less, a bad prefix) is buffered,
            // and `next()` judges it as always.
            if flag <= 1, length <= maxMessageSize, bytes.count - 5 == length {
                ready = Frame(compressed: flag == 1, bytes: Array(UnsafeRawBufferPointer(rebasing: bytes[5...])))
                return
            }
        }
        buffer.writeBytes(bytes)
    }

    /// True when bytes of an incomplete message are held (a truncation at end of stream).
    public var hasPartialMessage: Bool { buffer.readableBytes > 0 && !hasCompleteMessage }

    /// True when `next()` would return a message.
    public var hasCompleteMessage: Bool {
        if ready != nil { return true }
        if let pending { return buffer.readableBytes >= pending.length }
        guard buffer.readableBytes >= 5, let length = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self) else { return false }
        return buffer.readableBytes - 5 >= Int(length)
    }

    /// The next complete message, `nil` when more bytes are needed.
    public mutating func next() throws(RPCError) -> Frame? {
        if let frame = ready {
            ready = nil
            return frame
        }
        if pending == nil {
            guard buffer.readableBytes >= 5 else { return nil }
            let flag = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self)!
            let length = Int(buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self)!)
            guard flag <= 1 else {
                throw RPCError(code: .internal, message: "invalid message flag \(flag) in length prefix")
            }
            guard length <= maxMessageSize else {
                throw RPCError(
                    code: .resourceExhausted,
                    message: "request message of \(length) bytes exceeds the limit of \(maxMessageSize) bytes")
            }
            buffer.moveReaderIndex(forwardBy: 5)
            pending = (flag == 1, length)
            // Room for exactly this message: growing by doubling would hold up to twice it.
            if buffer.writableBytes < length - buffer.readableBytes {
                buffer.discardReadBytes()
                buffer.reserveCapacity(minimumWritableBytes: length - buffer.readableBytes)
            }
        }
        let (compressed, length) = pending!
        guard buffer.readableBytes >= length else { return nil }
        let message = buffer.readBytes(length: length)!
        pending = nil
        if buffer.readableBytes == 0 { buffer.clear() } else if buffer.readerIndex > 65536 { buffer.discardReadBytes() }
        return Frame(compressed: compressed, bytes: message)
    }

    /// The 5-byte prefix of a message of `length` bytes: the compressed flag, then the length
    /// in big-endian order.
    static func prefix(length: Int, compressed: Bool) -> (UInt8, UInt8, UInt8, UInt8, UInt8) {
        let n = UInt32(length)
        return (compressed ? 1 : 0, UInt8(truncatingIfNeeded: n >> 24), UInt8(truncatingIfNeeded: n >> 16),
                UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n))
    }

    /// Frames `message` with the 5-byte prefix; `compressed` says the bytes are compressed.
    public static func frame(_ message: [UInt8], compressed: Bool = false, into buffer: inout ByteBuffer) {
        buffer.reserveCapacity(minimumWritableBytes: message.count + 5)
        withUnsafeBytes(of: prefix(length: message.count, compressed: compressed)) { _ = buffer.writeBytes($0) }
        buffer.writeBytes(message)
    }
}
