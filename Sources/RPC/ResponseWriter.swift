public import ProtoRuntime
import NIOCore

/// Sends the response messages of a server- or bidirectional-streaming call. `write`
/// suspends while the client's flow-control window is closed and our buffer is full, so a
/// client that reads nothing holds the handler instead of growing the heap.
public struct ResponseWriter<Message: ProtoMessage>: Sendable {
    let raw: RawResponseWriter

    public func write(_ message: Message) async throws {
        try await raw.write(message.serializedBytes())
    }
}

/// Byte-level writer bound to one stream on its event loop.
struct RawResponseWriter: Sendable {
    let stream: NIOLoopBound<ServerStream>
    let context: ServerContext

    func write(_ bytes: [UInt8]) async throws {
        if Task.isCancelled { throw RPCError(code: .cancelled, message: "call cancelled") }
        // Compress here, in the handler's task, not on the event loop.
        let (payload, compressed) = try context.prepareResponse(bytes)
        let stream = self.stream
        let loop = stream.eventLoop
        try await loop.flatSubmit { stream.value.enqueueResponse(payload, compressed: compressed, on: loop) }.get()
    }
}
