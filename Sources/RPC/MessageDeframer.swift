public import NIOCore

/// Splits a request body into gRPC length-prefixed messages (gRPC HTTP/2 protocol:
/// 1-byte compressed flag, 4-byte big-endian length, message). The length is judged
/// against the limit as soon as the prefix arrives, before the body is buffered.
public struct MessageDeframer: Sendable {
    public let maxMessageSize: Int
    private var buffer: ByteBuffer
    private var pendingLength: Int?

    public init(maxMessageSize: Int) {
        self.maxMessageSize = maxMessageSize
        self.buffer = ByteBufferAllocator().buffer(capacity: 0)
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        buffer.writeBytes(bytes)
    }

    /// True when bytes of an incomplete message are held (a truncation at end of stream).
    public var hasPartialMessage: Bool { buffer.readableBytes > 0 }

    /// The next complete message, `nil` when more bytes are needed.
    public mutating func next() throws(RPCError) -> [UInt8]? {
        if pendingLength == nil {
            guard buffer.readableBytes >= 5 else { return nil }
            let flag = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self)!
            let length = Int(buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self)!)
            switch flag {
            case 0: break
            case 1:
                // Compression is not negotiated on this server: identity is all we accept.
                throw RPCError(code: .internal, message: "compressed message received but no grpc-encoding was negotiated")
            default:
                throw RPCError(code: .internal, message: "invalid message flag \(flag) in length prefix")
            }
            guard length <= maxMessageSize else {
                throw RPCError(
                    code: .resourceExhausted,
                    message: "request message of \(length) bytes exceeds the limit of \(maxMessageSize) bytes")
            }
            buffer.moveReaderIndex(forwardBy: 5)
            pendingLength = length
        }
        let length = pendingLength!
        guard buffer.readableBytes >= length else { return nil }
        let message = buffer.readBytes(length: length)!
        pendingLength = nil
        if buffer.readableBytes == 0 { buffer.clear() } else if buffer.readerIndex > 65536 { buffer.discardReadBytes() }
        return message
    }

    /// Frames `message` with the uncompressed 5-byte prefix.
    public static func frame(_ message: [UInt8], into buffer: inout ByteBuffer) {
        buffer.reserveCapacity(minimumWritableBytes: message.count + 5)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(message.count))
        buffer.writeBytes(message)
    }
}
