internal import CNghttp2
import NIOCore

/// One HTTP/2 stream carrying one gRPC call. Lives on its connection's event loop only.
final class ServerStream {
    let id: Int32
    let eventLoop: any EventLoop
    /// Weak: a handler task may outlive its connection and must then find nothing to touch.
    weak var connection: HTTP2ServerHandler?

    // Request headers, gathered by the header callback.
    var method = ""
    var path = ""
    var contentType: String?
    var timeout: String?
    var encoding: String?
    var acceptEncoding: String?
    var requestEncoding = MessageEncoding.identity
    var metadata = Metadata()
    var headerBytes = 0
    var headersTooLarge = false
    var badHeader: String?

    var route: RPCRouter.Route?
    /// How many of the server's interceptors accepted (or refused) the call: those are told of its end.
    var interceptorsEntered = 0
    var context: ServerContext?
    var deframer: MessageDeframer
    var requestMessage: [UInt8]?
    var messageCount = 0
    var requestSource: RawRequestStream?
    /// Bytes received but not yet returned to the client's window (paused streaming input).
    var unconsumedBytes = 0
    var inputPaused = false
    var inboundEnded = false

    // Response side.
    var headersSent = false
    var outbound = CircularBuffer<ByteBuffer>()
    var outboundBytes = 0
    var writeWaiters: [EventLoopPromise<Void>] = []
    var pendingTrailers: [(String, String)]?
    /// Set once the final status is decided; later writes are refused.
    var finished = false
    /// Set when nghttp2 closed the stream.
    var closed = false
    var task: Task<Void, Never>?
    var deadlineTimer: Scheduled<Void>?

    init(id: Int32, connection: HTTP2ServerHandler, eventLoop: any EventLoop, maxMessageSize: Int) {
        self.id = id
        self.connection = connection
        self.eventLoop = eventLoop
        self.deframer = MessageDeframer(maxMessageSize: maxMessageSize)
    }

    // MARK: responses

    /// Queues one response message (already compressed when `compressed`); the future
    /// completes when the writer may go on.
    func enqueueResponse(_ message: [UInt8], compressed: Bool) -> EventLoopFuture<Void> {
        guard !finished, !closed, let connection else {
            return eventLoop.makeFailedFuture(RPCError(code: .cancelled, message: "call already ended"))
        }
        var frame = connection.allocator.buffer(capacity: message.count + 5)
        MessageDeframer.frame(message, compressed: compressed, into: &frame)
        outboundBytes += frame.readableBytes
        outbound.append(frame)
        if headersSent {
            connection.resumeData(self)
        } else {
            connection.submitHeaders(self, endStream: false)
        }
        connection.scheduleFlush()
        if outboundBytes <= connection.core.configuration.responseBufferHighWater || finished || closed {
            return eventLoop.makeSucceededFuture(())
        }
        let promise = eventLoop.makePromise(of: Void.self)
        writeWaiters.append(promise)
        return promise.futureResult
    }

    /// Called after the data source drained bytes.
    func releaseWaitersIfDrained() {
        guard !writeWaiters.isEmpty, let connection,
            outboundBytes <= connection.core.configuration.responseBufferHighWater / 2
        else { return }
        let waiters = writeWaiters
        writeWaiters = []
        for w in waiters { w.succeed(()) }
    }

    /// Ends a unary call with its one response message, or with the error raised in its place.
    func answer(_ response: Result<(bytes: [UInt8], compressed: Bool), RPCError>) {
        switch response {
        case .success(let (payload, compressed)):
            _ = enqueueResponse(payload, compressed: compressed)
            finish(.okStatus)
        case .failure(let error):
            finish(error)
        }
    }

    /// Ends a call whose handler returned: with its one response (unary and client-streaming
    /// calls), with OK (streaming responses were written already), or with its error.
    func end(_ outcome: Result<(bytes: [UInt8], compressed: Bool)?, RPCError>) {
        switch outcome {
        case .success(let response?): answer(.success(response))
        case .success(nil): finish(.okStatus)
        case .failure(let error): finish(error)
        }
    }

    /// Ends the call with `status` (OK included). Idempotent: the first status wins.
    func finish(_ status: RPCError) {
        guard !finished else { return }
        finished = true
        deadlineTimer?.cancel()
        deadlineTimer = nil
        failWaiters()
        guard !closed, let connection else { return }
        connection.core.count(status.code)
        if let context { connection.core.executor.ended(self, context, status: status) }
        var trailers: [(String, String)] = [("grpc-status", String(status.code.rawValue))]
        if !status.message.isEmpty { trailers.append(("grpc-message", GRPCWire.percentEncode(status.message))) }
        if let context { trailers += context.trailingMetadata.headerFields }
        trailers += status.metadata.headerFields
        if let details = status.statusDetailsBytes() {
            trailers.append(("grpc-status-details-bin", Base64.encode(details)))
        }
        if headersSent {
            pendingTrailers = trailers
            connection.resumeData(self)
        } else {
            pendingTrailers = trailers
            connection.submitHeaders(self, endStream: true)
        }
        connection.scheduleFlush()
    }

    /// The stream is gone (RST_STREAM from the client, connection closed, or done).
    func didClose(errorCode: UInt32) {
        closed = true
        deadlineTimer?.cancel()
        deadlineTimer = nil
        let cancelled = RPCError.cancelledByClient
        if !finished {
            finished = true
            connection?.core.count(.cancelled)
            if let context { connection?.core.executor.ended(self, context, status: .cancelledByClient) }
        }
        requestSource?.finish(cancelled)
        context?.cancel()
        task?.cancel()
        failWaiters()
        outbound.removeAll()
        outboundBytes = 0
    }

    private func failWaiters() {
        let waiters = writeWaiters
        writeWaiters = []
        for w in waiters { w.fail(RPCError(code: .cancelled, message: "call already ended")) }
    }
}
