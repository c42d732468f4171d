import NIOCore

/// What the client sent in a stream's request headers.
struct RequestHead {
    var method = ""
    var path = ""
    var contentType: String?
    var timeout: String?
    var encoding: String?
    var acceptEncoding: String?
    var metadata = Metadata()
    /// A `-bin` metadata key whose value is not base64.
    var badHeader: String?
}

/// One HTTP/2 stream carrying one gRPC call: performs what its `StreamStateMachine` decides.
/// Lives on its connection's event loop only.
final class ServerStream {
    let id: Int32
    /// Strong until the stream closes (`didClose` clears it): a handler task may outlive the
    /// stream and must then find nothing to touch. (Not weak: a weak reference gives the
    /// connection a side table, and every stream's access to it a slow retain.)
    private(set) var connection: HTTP2Connection?

    var machine = StreamStateMachine()
    var head = RequestHead()
    var requestEncoding = MessageEncoding.identity

    var route: RPCRouter.Route?
    var context: ServerContext?
    /// How many of the server's interceptors accepted (or refused) the call: those are told of its end.
    var interceptorsEntered = 0
    var deframer: MessageDeframer
    /// The one request message of a unary or server-streaming call, until the input ends.
    var requestMessage: [UInt8]?
    var messageCount = 0
    var requestSource: RawRequestStream?
    /// Request bytes this stream holds against the budget and the connection's window.
    var heldBytes = 0
    /// Whether this call counts as one of its connection's and address's watch streams.
    var holdsWatch = false
    /// The plain HTTP status a request that is not gRPC gets once it has been received.
    var httpAnswer: Int?

    /// Response frames not yet taken by nghttp2.
    private var outbound = FrameQueue<OutboundChunk>()
    private var outboundBytes = 0
    private var writeWaiters: [EventLoopPromise<Void>] = []
    var task: Task<Void, Never>?
    /// The call's deadline; once it has ended, how long its response may take to leave.
    var deadlineTimer: Scheduled<Void>?
    /// The server's receive timeout, for a call without a deadline: its request must arrive in time.
    var receiveTimer: Scheduled<Void>?

    init(id: Int32, connection: HTTP2Connection, maxMessageSize: Int) {
        self.id = id
        self.connection = connection
        self.deframer = MessageDeframer(maxMessageSize: maxMessageSize)
    }

    var isFinished: Bool { machine.isFinished }

    /// Response bytes queued and not yet taken by nghttp2.
    var pendingBytes: Int { outboundBytes }

    // MARK: responses

    /// Queues one response message (already compressed when `compressed`); the future
    /// completes when the writer may go on. Runs on `eventLoop`, the stream's.
    func enqueueResponse(_ message: [UInt8], compressed: Bool, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        guard let mayGoOn = queueMessage(message, compressed: compressed) else { return eventLoop.makeFailedFuture(RPCError.callEnded) }
        if mayGoOn { return eventLoop.makeSucceededFuture(()) }
        let promise = eventLoop.makePromise(of: Void.self)
        writeWaiters.append(promise)
        return promise.futureResult
    }

    /// Queues one response message: nil when the call has ended, false when the queue is past
    /// its high water mark (the writer should wait).
    private func queueMessage(_ message: [UInt8], compressed: Bool) -> Bool? {
        guard let connection else { return nil }
        return queueMessage(message, compressed: compressed, on: connection)
    }

    /// The stream's methods with its connection in hand take it as a parameter: borrowed, what
    /// they reach through it is used in place, where a connection loaded from the stream's own
    /// (mutable) reference would be retained around each use.
    private func queueMessage(_ message: [UInt8], compressed: Bool, on connection: HTTP2Connection) -> Bool? {
        let chunk = OutboundChunk(message: message, compressed: compressed)
        switch machine.messageQueued() {
        case .refuse:
            return nil
        case .submitHeaders:
            queue(chunk, on: connection)
            connection.submitResponseHeaders(self)
        case .resumeData:
            queue(chunk, on: connection)
            connection.resumeData(self)
        }
        connection.outputPending()
        return outboundBytes <= connection.core.configuration.responseBufferHighWater
    }

    private func queue(_ chunk: OutboundChunk, on connection: HTTP2Connection) {
        outboundBytes += chunk.remaining
        connection.outputQueued(chunk.remaining)
        outbound.append(chunk)
    }

    /// Queues the body of a plain HTTP answer (not gRPC-framed).
    func queueBody(_ bytes: [UInt8]) {
        guard let connection else { return }
        queue(OutboundChunk(raw: bytes), on: connection)
    }

    /// nghttp2 asks for body bytes.
    func readBody(into buffer: UnsafeMutableRawBufferPointer) -> BodyRead {
        var written = 0
        while written < buffer.count, var chunk = outbound.front {
            written += chunk.copy(into: UnsafeMutableRawBufferPointer(rebasing: buffer[written...]))
            if chunk.remaining == 0 {
                outbound.removeFirst()
            } else {
                outbound.replaceFirst(with: chunk)
            }
        }
        outboundBytes -= written
        connection?.outputTaken(written)
        releaseWaitersIfDrained()
        switch machine.bodyRequested(queueEmptyAfter: outbound.isEmpty) {
        case .sendLast(let trailers): return .lastBytes(written, trailers: trailers)
        case .send: return written == 0 ? .deferred : .bytes(written)
        case .none: return written == 0 ? .failed : .bytes(written)
        }
    }

    private func releaseWaitersIfDrained() {
        guard !writeWaiters.isEmpty, let connection,
            outboundBytes <= connection.core.configuration.responseBufferHighWater / 2
        else { return }
        let waiters = writeWaiters
        writeWaiters = []
        for w in waiters { w.succeed(()) }
    }

    /// Ends a unary call with its one response message, or with the error raised in its place.
    func answer(_ response: Result<(bytes: [UInt8], compressed: Bool), RPCError>) {
        guard let connection else { return }
        answer(response, on: connection)
    }

    /// `answer` from the stream's connection (`connection` is the stream's).
    func answer(_ response: Result<(bytes: [UInt8], compressed: Bool), RPCError>, on connection: HTTP2Connection) {
        switch response {
        case .success(let (payload, compressed)):
            _ = queueMessage(payload, compressed: compressed, on: connection)
            finish(.okStatus, on: connection)
        case .failure(let error):
            finish(error, on: connection)
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

    /// Ends the call with `status` (OK included). The first status wins.
    func finish(_ status: RPCError) {
        guard let connection else { return }
        finish(status, on: connection)
    }

    /// `finish` from the stream's connection (`connection` is the stream's).
    func finish(_ status: RPCError, on connection: HTTP2Connection) {
        guard !machine.isFinished else { return }
        deadlineTimer?.cancel()
        deadlineTimer = nil
        receiveTimer?.cancel()
        receiveTimer = nil
        connection.core.count(status.code)
        // Interceptors hear of the end before the trailers are built: they may add to them.
        if let context { connection.core.executor.ended(self, context, status: status) }
        let trailers = Self.trailers(status, context?.trailingMetadataIfAny)
        // The call reads no more: its request bytes go back, and a queue its handler left is freed.
        connection.releaseInput(self)
        requestSource?.finish(RPCError.callEnded)
        switch machine.finish(trailers: trailers) {
        case .submitTrailersOnly(let fields):
            connection.submitTrailersOnly(self, fields)
        case .resumeData:
            connection.resumeData(self)
        case .none:
            break
        }
        failWaiters()
        connection.lingerAfterFinish(self)
        connection.outputPending()
    }

    /// The status, its message and details, and the handler's trailing metadata.
    private static func trailers(_ status: RPCError, _ metadata: Metadata?) -> [HeaderField] {
        let details = status.statusDetailsBytes()
        if status.code == .ok, status.message.isEmpty, metadata == nil, status.metadata.isEmpty, details == nil { return HeaderField.okTrailers }
        let code = Int(status.code.rawValue)
        var trailers = [HeaderField(
            name: "grpc-status", value: GRPCWire.statusText.indices.contains(code) ? GRPCWire.statusText[code] : String(code))]
        if !status.message.isEmpty { trailers.append(.init(name: "grpc-message", value: GRPCWire.percentEncode(status.message))) }
        if let metadata { trailers += metadata.headerFields }
        trailers += status.metadata.headerFields
        if let details { trailers.append(.init(name: "grpc-status-details-bin", value: Base64.encode(details))) }
        return trailers
    }

    /// Ends the call with `error` from the transport's side (deadline, bad input, late
    /// request): its handler's input fails with the same error, and the handler is cancelled.
    func abort(_ error: RPCError) {
        requestSource?.finish(error)
        finish(error)
        context?.cancel()
        task?.cancel()
    }

    /// The stream is gone (RST_STREAM from the client, connection closed, or done).
    func didClose() {
        didClose(connection)
    }

    /// `didClose` with the stream's connection in hand, nil when it is gone already.
    private func didClose(_ connection: HTTP2Connection?) {
        deadlineTimer?.cancel()
        deadlineTimer = nil
        receiveTimer?.cancel()
        receiveTimer = nil
        connection?.releaseWatch(self)
        if machine.closed() == .cancelCall {
            connection?.core.count(.cancelled)
            if let context { connection?.core.executor.ended(self, context, status: .cancelledByClient) }
        }
        requestSource?.finish(.cancelledByClient)
        connection?.releaseInput(self)
        context?.cancel()
        task?.cancel()
        failWaiters()
        outbound.removeAll()
        connection?.outputTaken(outboundBytes)
        outboundBytes = 0
        self.connection = nil
    }

    private func failWaiters() {
        let waiters = writeWaiters
        writeWaiters = []
        for w in waiters { w.fail(RPCError.callEnded) }
    }
}

/// One piece of a response body as nghttp2 takes it: a gRPC message behind its 5-byte length
/// prefix (written as it is read: the message is not copied into a frame first), or the bytes
/// of a plain HTTP answer.
struct OutboundChunk {
    private let prefix: (UInt8, UInt8, UInt8, UInt8, UInt8)?
    private let bytes: [UInt8]
    /// Bytes already taken, prefix included.
    private var taken = 0

    init(message: [UInt8], compressed: Bool) {
        prefix = MessageDeframer.prefix(length: message.count, compressed: compressed)
        bytes = message
    }

    init(raw: [UInt8]) {
        prefix = nil
        bytes = raw
    }

    private var headerCount: Int { prefix == nil ? 0 : 5 }
    /// Bytes not yet taken.
    var remaining: Int { headerCount + bytes.count - taken }

    /// Copies what fits of the rest into `buffer`; returns how much.
    mutating func copy(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var n = 0
        if let prefix {
            withUnsafeBytes(of: prefix) { h in
                while taken < 5, n < buffer.count {
                    buffer[n] = h[taken]
                    n += 1
                    taken += 1
                }
            }
        }
        let offset = taken - headerCount
        let count = min(buffer.count - n, bytes.count - offset)
        if count > 0 {
            bytes.withUnsafeBytes { src in
                (buffer.baseAddress! + n).copyMemory(from: src.baseAddress! + offset, byteCount: count)
            }
            n += count
            taken += count
        }
        return n
    }
}

/// A stream's response chunks in order. Most calls send one, which is kept inline: the queue
/// allocates only for a second.
struct FrameQueue<Chunk> {
    /// Nil only when the queue is empty.
    private var head: Chunk?
    private var rest: CircularBuffer<Chunk>?

    var isEmpty: Bool { head == nil }
    var front: Chunk? { head }

    mutating func append(_ frame: Chunk) {
        if head == nil {
            head = frame
        } else {
            if rest == nil { rest = CircularBuffer(initialCapacity: 4) }
            rest!.append(frame)
        }
    }

    mutating func removeFirst() {
        head = rest?.popFirst()
    }

    /// What is left of the first frame after part of it was taken.
    mutating func replaceFirst(with frame: Chunk) {
        precondition(head != nil, "no frame to replace")
        head = frame
    }

    mutating func removeAll() {
        head = nil
        rest = nil
    }
}
