import Logging
import NIOCore

/// What an `HTTP2Connection` needs of its channel. The NIO channel handler implements it; the
/// connection itself never touches the pipeline, so that layers below (TLS) and around it
/// (metrics) do not change it.
protocol HTTP2ConnectionIO: AnyObject {
    var isWritable: Bool { get }
    /// Writes and flushes bytes to the peer.
    func write(_ bytes: ByteBuffer)
    /// Closes the channel.
    func close()
}

/// One HTTP/2 connection: bytes from the channel go through nghttp2, whose events drive the
/// gRPC streams; nghttp2's output goes back to the channel. Its lifecycle is a
/// `ConnectionStateMachine`, each stream's a `StreamStateMachine`; the calls run through the
/// server's `CallExecutor`. Runs on one event loop.
final class HTTP2Connection {
    let core: ServerCore
    let eventLoop: any EventLoop
    let allocator: ByteBufferAllocator
    let peer: String
    /// Handler tasks of this connection's calls run on its event loop.
    let taskExecutor: EventLoopTaskExecutor
    /// Strong: the handler holds the connection until the channel goes inactive or the handler
    /// is removed, and lets go of it then, which ends the cycle.
    private let io: any HTTP2ConnectionIO
    private let session: NGHTTP2Session
    private var machine = ConnectionStateMachine()
    private var streams = StreamTable<ServerStream>()
    /// The stream the last lookup found: a request's headers, data and end come one after the
    /// other, so most lookups are answered here. Cleared with its stream.
    private var recentStream: ServerStream?
    /// The stream whose request headers are arriving (the last one opened), unretained:
    /// `streams` holds it, and it is cleared with its stream. Each header field is stored
    /// through it without the retain and release a lookup costs (a call has about eight).
    private var headerStream: Unmanaged<ServerStream>?
    /// The `:path` of this connection's last call and its route: clients call the same
    /// methods again, and a repeated path is then neither allocated nor hashed.
    private var recentRoute: RPCRouter.Route?
    /// One timer: first the handshake deadline, then the idle check.
    private var timer: Scheduled<Void>?
    /// When the last bytes arrived (the bytes being received now, during a read): how long the
    /// connection has been quiet, and the start of every call whose headers they hold (one
    /// clock read a read, not one a call; a burst of calls in one read began together).
    private var receivedAt = ContinuousClock.now
    private var resets: TokenBucket
    private var controlFrames: TokenBucket
    /// Window credit this connection reserved from the server's receive budget (beyond the
    /// 64 KiB every HTTP/2 connection starts with).
    private var credit = 0
    /// What decompression may produce on this connection, per second.
    private var inflateBudget: ByteBudget
    /// Streams whose compressed messages wait for `inflateBudget`, and the timer that resumes them.
    private var throttled: Set<Int32> = []
    private var throttleTimer: Scheduled<Void>?
    /// Calls without a deadline that may still be waiting for their request at the end of this read.
    private var awaitingInput: [ServerStream] = []
    /// Watch streams open on this connection.
    private var watches = 0
    /// Response bytes queued in streams and not yet taken by nghttp2. Past the output budget,
    /// calls whose request is in wait (`deferredCalls`) until they drain below half of it, and
    /// the connection closes when they do not drain for `finishLinger`. (Reading goes on: the
    /// client's WINDOW_UPDATEs are what lets them drain.)
    private var queuedOutput = 0
    private var output = OutputState.withinBudget
    private enum OutputState { case withinBudget, overBudget }
    private var deferredCalls: [ServerStream] = []
    /// Finished streams whose response waits for the client's window, and when each is reset.
    private var lingering: [Int32: NIODeadline] = [:]
    private var lingerTimer: Scheduled<Void>?
    /// The address part of `peer`, which per-address limits count by.
    let peerAddress: String
    /// What the TLS handshake established (nil on h2c), set before the connection is active.
    var tlsPeer: TLSPeer? {
        didSet { origin = nil }
    }
    /// What this connection's calls share (`ServerContext.origin`), made at the first call.
    private var origin: CallOrigin?
    /// The keepalive timer, and whether a PING is out waiting for its ACK.
    private var keepalive: Scheduled<Void>?
    private var keepaliveState = KeepaliveState.idle
    private enum KeepaliveState { case idle, awaitingAck }

    init(
        core: ServerCore, io: any HTTP2ConnectionIO, eventLoop: any EventLoop, allocator: ByteBufferAllocator, peer: String,
        peerAddress: String
    ) throws {
        self.core = core
        self.io = io
        self.eventLoop = eventLoop
        self.allocator = allocator
        self.peer = peer
        self.peerAddress = peerAddress
        taskExecutor = EventLoopTaskExecutor(eventLoop)
        session = try NGHTTP2Session(options: core.nghttp2Options)
        let c = core.configuration
        resets = TokenBucket(burst: c.resetBurst, perSecond: c.resetsPerSecond)
        controlFrames = TokenBucket(burst: c.controlFrameBurst, perSecond: c.controlFramesPerSecond)
        inflateBudget = ByteBudget(burst: c.inflateBurst, perSecond: c.inflatePerSecond)
        session.attach(self)
        try session.submitSettings(
            maxConcurrentStreams: c.maxConcurrentStreams, maxHeaderListSize: UInt32(c.maxHeaderListSize), initialWindowSize: c.streamWindowSize)
        credit = core.receiveBudget.reserveCredit(upTo: max(0, Int(c.connectionWindowSize) - Self.defaultWindow))
        try session.setConnectionWindow(Int32(Self.defaultWindow + credit))
    }

    /// Output goes to the channel in writes of about this size: the buffer stays below the
    /// size from which malloc maps blocks on their own (1 MiB), which would cost a map, page
    /// faults and an unmap on every flush of a busy connection.
    static let writeChunk = 256 << 10

    /// HTTP/2's initial connection window (RFC 9113 §6.9.2).
    static let defaultWindow = 65_535

    deinit { core.receiveBudget.returnCredit(credit) }

    // MARK: channel events

    func activated() {
        armTimer(in: core.configuration.handshakeTimeout)
        flush()
    }

    // MARK: keepalive

    private func armKeepalive(in delay: Duration) {
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        keepalive = eventLoop.scheduleTask(in: TimeAmount(delay)) { bound.value.keepaliveFired() }
    }

    /// With streams open and nothing heard for the interval, a PING goes out; a PING that
    /// stays unanswered for the timeout closes the connection.
    private func keepaliveFired() {
        keepalive = nil
        guard !machine.isClosed else { return }
        let c = core.configuration
        switch keepaliveState {
        case .awaitingAck:
            core.logger.debug("closing a connection whose peer does not answer PING", metadata: ["peer": "\(peer)"])
            core.bounds.hit(.keepalive)
            close()
        case .idle:
            let quietFor = ContinuousClock.now - receivedAt
            if !streams.isEmpty, quietFor >= c.keepaliveInterval {
                perform { try session.submitPing() }
                keepaliveState = .awaitingAck
                flush()
                armKeepalive(in: c.keepaliveTimeout)
            } else if !streams.isEmpty {
                armKeepalive(in: c.keepaliveInterval - quietFor)
            }
            // With no stream, no timer: the next stream arms it (an idle connection costs less).
        }
    }

    func received(_ buffer: ByteBuffer) {
        guard !machine.isClosed else { return }
        receivedAt = .now
        machine.receiveStarted()
        do {
            try buffer.withUnsafeReadableBytes { try session.receive($0) }
            machine.receiveEnded()
        } catch {
            machine.receiveEnded()
            // A fatal protocol error or an abusive peer: nghttp2 has queued the GOAWAY that is due.
            core.logger.debug("closing connection after an HTTP/2 error", metadata: ["peer": "\(peer)", "error": "\(error)"])
            flush()
            close()
        }
    }

    func readComplete() {
        if !awaitingInput.isEmpty {
            for s in awaitingInput where !s.isFinished && s.receiveTimer == nil {
                let waitsForInput = s.requestSource == nil ? !s.machine.requestIsEnded : s.deframer.hasPartialMessage
                if waitsForInput { armReceiveTimer(s) }
            }
            awaitingInput.removeAll(keepingCapacity: true)
        }
        flush()
    }

    func writabilityChanged() {
        if io.isWritable { flush() }
    }

    func inactive() {
        awaitingInput.removeAll()
        lingerTimer?.cancel()
        lingerTimer = nil
        lingering.removeAll()
        deferredCalls.removeAll()
        keepalive?.cancel()
        keepalive = nil
        timer?.cancel()
        timer = nil
        throttleTimer?.cancel()
        throttleTimer = nil
        _ = machine.close()
        let open = streams.removeAll()
        recentStream = nil
        headerStream = nil
        for (_, s) in open { s.didClose() }
        core.receiveBudget.returnCredit(credit)
        credit = 0
    }

    func errorCaught(_ error: any Error) {
        core.logger.debug("connection error", metadata: ["peer": "\(peer)", "error": "\(error)"])
        close()
    }

    /// Sends GOAWAY and lets the calls in flight finish (server drain, idle connection).
    func goAway() {
        guard machine.goAway() else { return }
        submitGoAway()
    }

    /// GOAWAY(NO_ERROR) naming the last stream taken; the state machine has decided on it.
    private func submitGoAway() {
        perform { try session.submitGoAway(lastStreamID: session.lastProcessedStreamID, code: .noError) }
        flush()
    }

    private func close() {
        if machine.close() { io.close() }
    }

    /// Runs an nghttp2 submission; one that fails leaves the session unusable: close.
    private func perform(_ body: () throws -> Void) {
        do {
            try body()
        } catch {
            submissionFailed(error)
        }
    }

    /// An nghttp2 submission failed. (The calls made for every request catch their error
    /// themselves and come here: a closure for `perform` would retain what it captures.)
    private func submissionFailed(_ error: any Error) {
        core.logger.debug("nghttp2 call failed", metadata: ["peer": "\(peer)", "error": "\(error)"])
        close()
    }

    // MARK: timer

    private func armTimer(in delay: Duration) {
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        timer = eventLoop.scheduleTask(in: TimeAmount(delay)) { bound.value.timerFired() }
    }

    private func timerFired() {
        timer = nil
        let idleFor = ContinuousClock.now - receivedAt
        switch machine.timerFired(streamsOpen: streams.count, idleFor: idleFor, idleTimeout: core.configuration.idleTimeout) {
        case .close:
            core.logger.debug("client did not complete the HTTP/2 handshake in time", metadata: ["peer": "\(peer)"])
            core.bounds.hit(.http2HandshakeTimeout)
            close()
        case .goAway:
            submitGoAway()
        case .rearm(let delay):
            armTimer(in: delay)
        case .none:
            break
        }
    }

    // MARK: output

    /// Output is pending outside a read: it leaves at the end of this turn of the loop, with
    /// the responses of every other call answered in the same turn.
    func outputPending() {
        guard machine.outputPending() == .queueFlush else { return }
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.execute {
            let connection = bound.value
            if connection.machine.queuedFlushRan() { connection.flush() }
        }
    }

    /// Moves everything nghttp2 has to send into the channel, unless the socket is backed up
    /// (then `writabilityChanged` resumes it). A writability change that arrives while we
    /// write (NIO can report it from inside the write) makes the loop run again rather than
    /// being lost, or the connection would stall with data still in nghttp2.
    private func flush() {
        guard machine.flushStarted() else { return }
        repeat {
            while io.isWritable {
                var out = allocator.buffer(capacity: 0)
                do {
                    guard try session.send(into: &out, limit: Self.writeChunk) > 0 else { break }
                } catch {
                    core.logger.debug("nghttp2 send failed", metadata: ["peer": "\(peer)", "error": "\(error)"])
                    close()
                    _ = machine.flushPassEnded(canContinue: false)
                    return
                }
                io.write(out)
            }
        } while machine.flushPassEnded(canContinue: io.isWritable)
        if machine.outputWritten(wantsRead: session.wantsRead, wantsWrite: session.wantsWrite, streamsOpen: streams.count) {
            io.close()
        }
    }

    func resumeData(_ stream: ServerStream) {
        do { try session.resumeData(stream: stream.id) } catch { submissionFailed(error) }
    }

    /// The response HEADERS of a call that sends messages.
    func submitResponseHeaders(_ stream: ServerStream) {
        submit(stream, grpcHeaders(stream, withEncoding: true), hasBody: true)
    }

    /// gRPC's early-error form: one HEADERS frame with the status, ending the stream.
    func submitTrailersOnly(_ stream: ServerStream, _ trailers: [HeaderField]) {
        submit(stream, grpcHeaders(stream, withEncoding: false) + trailers, hasBody: false)
    }

    /// `:status`, content type, what we accept, the response's encoding when it has messages,
    /// and the handler's initial metadata.
    private func grpcHeaders(_ stream: ServerStream, withEncoding: Bool) -> [HeaderField] {
        guard let context = stream.context else { return HeaderField.plainGRPCResponse }
        let encoding = withEncoding ? context.responseEncoding.flatMap { $0 == .identity ? nil : $0 } : nil
        let metadata = context.initialMetadataIfAny
        if encoding == nil, metadata == nil { return HeaderField.plainGRPCResponse }
        var headers = HeaderField.plainGRPCResponse
        if let encoding { headers.append(HeaderField(name: "grpc-encoding", value: encoding.rawValue)) }
        if let metadata { headers += metadata.headerFields }
        return headers
    }

    /// Answers a request that is not gRPC with a plain HTTP status and a short text body
    /// saying what this endpoint is; the body obeys flow control like any other.
    private func submitHTTPStatus(_ stream: ServerStream, status: Int) {
        guard stream.machine.answerHTTP() else { return }
        let body = Array(Self.notGRPC.utf8)
        stream.queueBody(body)
        submit(stream, [
            HeaderField(name: ":status", value: String(status)), HeaderField(name: "content-type", value: "text/plain; charset=utf-8"),
            HeaderField(name: "content-length", value: String(body.count)),
        ], hasBody: true)
    }

    private func answerWhenReceived(_ stream: ServerStream, status: Int) {
        stream.httpAnswer = status
        if stream.machine.requestIsEnded { submitHTTPStatus(stream, status: status) }
    }

    static let notGRPC = "This is a gRPC endpoint (esaylov): send POST with content-type application/grpc.\n"

    /// Response bytes were queued. Past the output budget, calls wait (`deferredCalls`): a
    /// client that asks for more while reading nothing is paused, and dropped if it stays so
    /// (`finishLinger`).
    func outputQueued(_ bytes: Int) {
        queuedOutput += bytes
        guard output == .withinBudget, queuedOutput > core.configuration.outputBudget else { return }
        output = .overBudget
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.scheduleTask(in: TimeAmount(core.configuration.finishLinger)) {
            let connection = bound.value
            guard connection.output == .overBudget, !connection.machine.isClosed else { return }
            connection.core.logger.debug("closing a connection that reads none of its responses", metadata: ["peer": "\(connection.peer)"])
            connection.core.bounds.hit(.finishLinger)
            connection.close()
        }
    }

    /// nghttp2 took response bytes: below half the budget, the calls that waited run (after
    /// this turn: nghttp2 may be asking for bytes right now and must not be re-entered).
    func outputTaken(_ bytes: Int) {
        queuedOutput -= bytes
        guard output == .overBudget, queuedOutput <= core.configuration.outputBudget / 2 else { return }
        output = .withinBudget
        guard !deferredCalls.isEmpty else { return }
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.execute {
            let connection = bound.value
            let waiting = connection.deferredCalls
            connection.deferredCalls = []
            for stream in waiting where !stream.isFinished { connection.completeInput(stream) }
            connection.flush()
        }
    }

    /// After a call's status is decided, its response (trailers behind a window the client
    /// keeps closed) may take `finishLinger`; then the stream is reset. One timer a connection
    /// checks them all, so that a busy connection pays no timer a call.
    func lingerAfterFinish(_ stream: ServerStream) {
        // What the client's windows let through leaves with the next flush: nothing to watch.
        guard stream.pendingBytes > session.sendWindow(stream: stream.id) else { return }
        lingering[stream.id] = .now() + TimeAmount(core.configuration.finishLinger)
        if lingerTimer == nil { armLingerTimer(in: core.configuration.finishLinger) }
    }

    private func armLingerTimer(in delay: Duration) {
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        lingerTimer = eventLoop.scheduleTask(in: TimeAmount(delay)) { bound.value.lingerTimerFired() }
    }

    private func lingerTimerFired() {
        lingerTimer = nil
        let now = NIODeadline.now()
        var next: NIODeadline?
        for (id, due) in lingering {
            if streams[id] == nil {
                lingering[id] = nil
            } else if due <= now {
                lingering[id] = nil
                core.bounds.hit(.finishLinger)
                perform { try session.submitReset(stream: id, code: .cancel) }
            } else {
                next = min(next ?? due, due)
            }
        }
        if let next { armLingerTimer(in: .nanoseconds((next - now).nanoseconds)) }
        flush()
    }

    /// For a call without a deadline: its request must arrive within the receive timeout.
    /// Checked again while a streaming call's messages keep coming.
    private func armReceiveTimer(_ stream: ServerStream) {
        let bound = NIOLoopBound(stream, eventLoop: eventLoop)
        let seen = stream.messageCount
        stream.receiveTimer = eventLoop.scheduleTask(in: TimeAmount(core.configuration.receiveTimeout)) {
            let s = bound.value
            s.receiveTimer = nil
            guard !s.isFinished, !s.machine.requestIsEnded || s.deframer.hasPartialMessage else { return }
            if s.requestSource != nil {
                // A streaming call: only a message begun and not finished in time is late.
                guard s.deframer.hasPartialMessage else { return }
                if s.messageCount > seen {
                    s.connection?.armReceiveTimer(s)
                    return
                }
            }
            s.connection?.core.bounds.hit(.receiveTimeout)
            s.abort(RPCError(code: .deadlineExceeded, message: "the request did not arrive within \(s.connection?.core.configuration.receiveTimeout ?? .zero)"))
        }
    }

    private func submit(_ stream: ServerStream, _ headers: [HeaderField], hasBody: Bool) {
        do {
            try session.submitResponse(stream: stream.id, headers: headers, hasBody: hasBody)
        } catch {
            // The stream is in no state for a response (nghttp2 refused it): reset it.
            perform { try session.submitReset(stream: stream.id, code: .internalError) }
        }
    }

    /// Resumes a streaming call's input once its handler drained its queue: the messages that
    /// waited in the deframer go on, then the window held back returns.
    func resumeInput(_ stream: ServerStream) {
        let held = stream.machine.resumeInput()
        drainMessages(stream)
        if stream.machine.requestIsEnded { completeInput(stream) }
        if held > 0 { perform { try session.consumeStream(stream.id, held) } }
        flush()
    }

    /// Returns a finished or closed stream's request bytes to the budget and their window to
    /// the peer.
    func releaseInput(_ stream: ServerStream) {
        let bytes = stream.heldBytes
        guard bytes > 0 else { return }
        stream.heldBytes = 0
        core.receiveBudget.release(bytes)
        do { try session.consumeConnection(bytes) } catch { submissionFailed(error) }
    }

    /// Ends the connection at once with GOAWAY(ENHANCE_YOUR_CALM): the peer is abusive.
    private func calmDown(_ reason: String) throws {
        core.logger.info("closing abusive connection", metadata: ["peer": "\(peer)", "reason": "\(reason)"])
        if machine.abusive() {
            core.bounds.hit(.frameFlood)
            try session.terminate(code: .enhanceYourCalm)
        }
    }

    // MARK: calls

    private func dispatch(_ stream: ServerStream) {
        guard stream.machine.headersReceived(limit: core.configuration.maxHeaderListSize) else {
            core.bounds.hit(.headerListSize)
            stream.finish(RPCError(
                code: .resourceExhausted, message: "request headers exceed the limit of \(core.configuration.maxHeaderListSize) bytes"))
            return
        }
        // Not gRPC: answered with a plain status once the request is in (as HTTP servers do; an
        // answer that raced the rest of the request would hide the peer's protocol errors).
        guard stream.head.method == "POST" else { return answerWhenReceived(stream, status: 405) }
        // Most requests carry the exact name, stored as our own string: equal at its first comparison.
        guard let contentType = stream.head.contentType, contentType == GRPCWire.contentType || contentType.hasPrefix(GRPCWire.contentType) else {
            return answerWhenReceived(stream, status: 415)
        }
        if core.receiveBudget.isExhausted {
            core.bounds.hit(.receiveBudget)
            stream.finish(RPCError(code: .resourceExhausted, message: "the server holds as many request bytes as it may; retry later"))
            return
        }
        let found: RPCRouter.Route?
        if let recent = recentRoute, recent.method.path == stream.head.path {
            found = recent
        } else {
            found = core.router.routes[stream.head.path]
            if found != nil { recentRoute = found }
        }
        guard let route = found else {
            let parts = stream.head.path.split(separator: "/", omittingEmptySubsequences: false)
            let message: String
            if parts.count == 3, parts[0].isEmpty, core.router.services.contains(String(parts[1])) {
                message = "method \(parts[2]) not found in service \(parts[1])"
            } else if parts.count == 3, parts[0].isEmpty {
                message = "service \(parts[1]) not found"
            } else {
                message = "path \(stream.head.path) is not a gRPC method"
            }
            stream.finish(RPCError(code: .unimplemented, message: message))
            return
        }
        var deadline: ContinuousClock.Instant?
        if let timeout = stream.head.timeout {
            guard let d = GRPCWire.parseTimeout(timeout) else {
                stream.finish(RPCError(code: .invalidArgument, message: "malformed grpc-timeout header"))
                return
            }
            // At most 10^8 hours: far beyond any bound the deadline interceptor keeps, and
            // never an overflow.
            deadline = receivedAt + min(d, .seconds(360_000_000_000))
        }
        if let header = stream.head.encoding {
            guard let encoding = MessageEncoding(header: header) else {
                var accept = Metadata()
                accept.add("grpc-accept-encoding", MessageEncoding.acceptHeader)
                stream.finish(RPCError(
                    code: .unimplemented, message: "grpc-encoding \(header) is not supported; supported: \(MessageEncoding.acceptHeader)",
                    metadata: accept))
                return
            }
            stream.requestEncoding = encoding
        }
        // Responses may use what the client accepts; a client that compressed its request
        // accepts that encoding by definition.
        let compressedRequest = stream.requestEncoding != .identity
        let responseEncoding = MessageEncoding.preferred(fromAccept: stream.head.acceptEncoding) ?? (compressedRequest ? stream.requestEncoding : nil)
        let context = ServerContext(
            method: route.method, requestMetadata: stream.head.metadata, startedAt: receivedAt, deadline: deadline, origin: callOrigin(),
            responseEncoding: responseEncoding, compressResponses: compressedRequest)
        stream.context = context
        if let bad = stream.head.badHeader {
            stream.finish(RPCError(code: .invalidArgument, message: "metadata \(bad) is not valid base64"))
            return
        }
        if route.method.kind == .serverStreaming || route.method.kind == .bidirectionalStreaming,
            core.configuration.watchMethods.contains(stream.head.path) {
            guard acquireWatch(stream) else { return }
        }
        core.executor.start(stream, route, context, on: self)
        // A call without a deadline still gets its request in bounded time: checked at the end
        // of this read (most unary requests are complete by then and need no timer).
        guard !stream.isFinished else { return }
        guard context.hasDeadline, let deadline = context.deadline else { return awaitingInput.append(stream) }
        if deadline - .now > core.configuration.receiveTimeout { awaitingInput.append(stream) }
        // The deadline as the interceptors left it.
        let bound = NIOLoopBound(stream, eventLoop: eventLoop)
        stream.deadlineTimer = eventLoop.scheduleTask(in: TimeAmount(deadline - .now)) {
            let s = bound.value
            guard !s.isFinished else { return }
            s.abort(RPCError(code: .deadlineExceeded, message: "deadline exceeded"))
        }
    }

    private func callOrigin() -> CallOrigin {
        if let origin { return origin }
        let made = CallOrigin(peer: peer, tls: tlsPeer, loop: eventLoop, core: core)
        origin = made
        return made
    }

    /// Counts a watch stream against the connection's and the address's limits; refuses it
    /// (RESOURCE_EXHAUSTED) past either.
    private func acquireWatch(_ stream: ServerStream) -> Bool {
        let c = core.configuration
        let address = peerAddress
        guard watches < c.maxWatchesPerConnection else {
            core.bounds.hit(.watchesPerConnection)
            stream.finish(RPCError(code: .resourceExhausted, message: "this connection has \(c.maxWatchesPerConnection) watch streams open already"))
            return false
        }
        let admitted = core.watchesPerPeer.withLock { counts -> Bool in
            let open = counts[address, default: 0]
            guard open < c.maxWatchesPerPeer else { return false }
            counts[address] = open + 1
            return true
        }
        guard admitted else {
            core.bounds.hit(.watchesPerPeer)
            stream.finish(RPCError(code: .resourceExhausted, message: "this address has \(c.maxWatchesPerPeer) watch streams open already"))
            return false
        }
        watches += 1
        stream.holdsWatch = true
        return true
    }

    /// A watch stream ended.
    func releaseWatch(_ stream: ServerStream) {
        guard stream.holdsWatch else { return }
        stream.holdsWatch = false
        watches -= 1
        let address = peerAddress
        core.watchesPerPeer.withLock { counts in
            let left = counts[address, default: 1] - 1
            counts[address] = left > 0 ? left : nil
        }
    }

    func makeRequestSource(_ stream: ServerStream) -> RawRequestStream {
        let bound = NIOLoopBound(stream, eventLoop: eventLoop)
        let loop = eventLoop
        let source = RawRequestStream(limit: core.configuration.requestBufferLimit, budget: core.receiveBudget) {
            loop.execute {
                let s = bound.value
                s.connection?.resumeInput(s)
            }
        }
        stream.requestSource = source
        return source
    }

    /// Takes the complete messages out of the deframer: a single-message call keeps its one
    /// message (and its bytes stay held until the call ends); a streaming call's go to its
    /// handler's queue, their wire bytes released as they go, until the queue is full: then
    /// the rest waits, still compressed, and so does the window (`resumeInput`).
    private func drainMessages(_ stream: ServerStream) {
        while !stream.isFinished {
            if let source = stream.requestSource, !source.wantsMore { return }
            if stream.requestEncoding != .identity, stream.deframer.hasCompleteMessage, !inflateBudget.canSpend() {
                core.bounds.hit(.inflateRate)
                return throttle(stream)
            }
            let message: [UInt8]
            let compressed: Bool
            let wire: Int
            do throws(RPCError) {
                guard let frame = try stream.deframer.next() else { return }
                compressed = frame.compressed
                wire = frame.bytes.count + 5
                if frame.compressed {
                    guard stream.requestEncoding != .identity else {
                        throw RPCError(code: .internal, message: "compressed message received without a grpc-encoding")
                    }
                    message = try stream.requestEncoding.decompress(frame.bytes, limit: core.configuration.maxReceiveMessageSize)
                    inflateBudget.spend(message.count)
                    guard core.receiveBudget.canHold(message.count) else {
                        core.bounds.hit(.receiveBudget)
                        throw RPCError(code: .resourceExhausted, message: "the server holds as many request bytes as it may; retry later")
                    }
                } else {
                    message = frame.bytes
                }
            } catch {
                // Too large on the wire (length prefix) or once inflated.
                if error.code == .resourceExhausted, error.message.contains("request message") { core.bounds.hit(.messageSize) }
                stream.abort(error)
                return
            }
            stream.messageCount += 1
            if let source = stream.requestSource {
                // The queue holds (and accounts for) the message now; its wire bytes go back.
                let released = min(wire, stream.heldBytes)
                stream.heldBytes -= released
                core.receiveBudget.release(released)
                perform { try session.consumeConnection(released) }
                if !source.yield(message, compressed: compressed) { stream.machine.pauseInput() }
            } else if stream.messageCount == 1 {
                if compressed {
                    core.receiveBudget.hold(message.count)
                    stream.heldBytes += message.count
                }
                stream.requestMessage = message
                if compressed { stream.context?.requestWasCompressed = true }  // false already: no lock
            } else {
                stream.finish(RPCError(code: .unimplemented, message: "\(stream.head.path) takes exactly one request message, got more"))
                return
            }
        }
    }

    /// `stream` has compressed messages waiting for the connection's decompression budget:
    /// they go on when it refills.
    private func throttle(_ stream: ServerStream) {
        throttled.insert(stream.id)
        guard throttleTimer == nil else { return }
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        throttleTimer = eventLoop.scheduleTask(in: TimeAmount(inflateBudget.refillDelay)) {
            bound.value.resumeThrottled()
        }
    }

    private func resumeThrottled() {
        throttleTimer = nil
        let waiting = throttled
        throttled = []
        for id in waiting {
            guard let stream = streams[id] else { continue }
            drainMessages(stream)
            if stream.machine.requestIsEnded { completeInput(stream) }
        }
        flush()
    }

    /// A streaming call's input ended: once every message is in the handler's queue, the
    /// queue ends (or fails, when a message was cut short).
    private func endStreamingInput(_ stream: ServerStream) {
        guard let source = stream.requestSource, !stream.isFinished, !stream.deframer.hasCompleteMessage else { return }
        if stream.deframer.hasPartialMessage {
            let error = RPCError(code: .internal, message: "request stream ended inside a message (truncated)")
            source.finish(error)
            stream.finish(error)
        } else {
            source.finish(nil)
        }
    }

    private func inputEnded(_ stream: ServerStream) {
        guard stream.machine.requestEnded() else { return }
        if let status = stream.httpAnswer { return submitHTTPStatus(stream, status: status) }
        guard stream.route != nil else { return }
        completeInput(stream)
    }

    /// The client half-closed and `stream` has taken what it can: a streaming call's queue
    /// ends; a single-message call runs its handler, unless its message still waits for the
    /// decompression budget (it runs when the message is in).
    private func completeInput(_ stream: ServerStream) {
        guard !stream.isFinished else { return }
        if stream.requestSource != nil { return endStreamingInput(stream) }
        if stream.deframer.hasCompleteMessage, stream.messageCount == 0 { return }
        if stream.deframer.hasPartialMessage {
            let error = RPCError(code: .internal, message: "request stream ended inside a message (truncated)")
            stream.requestSource?.finish(error)
            stream.finish(error)
            return
        }
        guard let request = stream.requestMessage else {
            stream.finish(RPCError(code: .unimplemented, message: "\(stream.head.path) takes exactly one request message, got none"))
            return
        }
        // Its answer would add to responses the client is not reading: it waits for them.
        if output == .overBudget {
            deferredCalls.append(stream)
            return
        }
        stream.requestMessage = nil
        core.executor.inputEnded(stream, request: request, on: self)
    }
}

/// Peer misbehaviour that ends the connection from inside nghttp2's callbacks.
struct HTTP2PeerError: Error, CustomStringConvertible {
    let description: String
}

extension HTTP2Connection: NGHTTP2SessionDelegate {
    func streamOpened(_ id: Int32) -> Bool {
        guard machine.acceptsStreams else { return false }
        if keepalive == nil { armKeepalive(in: core.configuration.keepaliveInterval) }
        let stream = ServerStream(id: id, connection: self, maxMessageSize: core.configuration.maxReceiveMessageSize)
        streams[id] = stream
        headerStream = .passUnretained(stream)
        return true
    }

    /// The open stream `id`, if any.
    private func openStream(_ id: Int32) -> ServerStream? {
        if let recent = recentStream, recent.id == id { return recent }
        let found = streams[id]
        if found != nil { recentStream = found }
        return found
    }

    func header(stream id: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, isTrailer: Bool) throws {
        if isTrailer { return }  // request trailers: ignored
        // Storing a header field closes no stream: the unretained reference stays valid throughout.
        if let h = headerStream, h._withUnsafeGuaranteedRef({ $0.id }) == id {
            return try h._withUnsafeGuaranteedRef { try store(name: name, value: value, in: $0) }
        }
        guard let stream = openStream(id) else { return }
        try store(name: name, value: value, in: stream)
    }

    private func store(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, in stream: ServerStream) throws {
        switch stream.machine.headerField(size: name.count + value.count + 32, limit: core.configuration.maxHeaderListSize) {
        case .failConnection: throw HTTP2PeerError(description: "request headers far beyond the advertised limit")
        case .skip: return
        case .store: break
        }
        // Known names are matched on their bytes: only custom metadata becomes a string key.
        let field = RequestHeaderName(name)
        switch field {
        case .ignored, .reserved: return
        case .path:
            // The path of the connection's last call again: its string, no new one.
            if let recent = recentRoute, value.equals(recent.method.path) {
                stream.head.path = recent.method.path
                return
            }
        case .contentType where value.matches(GRPCWire.contentTypeLiteral):
            stream.head.contentType = GRPCWire.contentType
            return
        case .method where value.matches("POST"):
            stream.head.method = "POST"
            return
        default: break
        }
        let v = String(decoding: value, as: UTF8.self)
        switch field {
        case .method: stream.head.method = v
        case .path: stream.head.path = v
        case .acceptEncoding: stream.head.acceptEncoding = v
        case .contentType: stream.head.contentType = v
        case .timeout: stream.head.timeout = v
        case .encoding: stream.head.encoding = v
        case .ignored, .reserved: break
        case .custom:
            let n = String(decoding: name, as: UTF8.self)
            if let entry = Metadata.decode(key: n, rawValue: v) {
                stream.head.metadata.append(entry)
            } else {
                stream.head.badHeader = n
            }
        }
    }

    func frameReceived(_ frame: ReceivedFrame) throws {
        switch frame.kind {
        case .settings where !frame.ack:
            if machine.settingsReceived() {
                timer?.cancel()
                armTimer(in: core.configuration.idleTimeout)
            }
            if !controlFrames.take() { try calmDown("SETTINGS flood") }
        case .ping where !frame.ack:
            if !controlFrames.take() { try calmDown("PING flood") }
        case .ping:
            if keepaliveState == .awaitingAck {
                keepaliveState = .idle
                keepalive?.cancel()
                armKeepalive(in: core.configuration.keepaliveInterval)
            }
        case .rstStream:
            if !resets.take() { try calmDown("rapid reset") }
        default:
            break
        }
        guard let stream = openStream(frame.streamID) else { return }
        if frame.kind == .requestHeaders { dispatch(stream) }
        if frame.endStream, frame.kind == .requestHeaders || frame.kind == .data || frame.kind == .trailers {
            inputEnded(stream)
        }
    }

    func dataReceived(stream id: Int32, _ bytes: UnsafeRawBufferPointer) {
        guard let stream = openStream(id) else {
            perform { try session.consumeConnection(bytes.count) }
            return
        }
        switch stream.route == nil ? .discard : stream.machine.dataReceived(bytes.count) {
        case .discard:
            // The connection's window comes back (other streams need it); the stream's does
            // not, so a client that goes on sending after its call ended stops within a window.
            perform { try session.consumeConnection(bytes.count) }
        case .deliver(let returnWindow):
            // Held until released: the connection's window comes back only then.
            stream.heldBytes += bytes.count
            core.receiveBudget.hold(bytes.count)
            stream.deframer.append(bytes)
            if returnWindow {
                do { try session.consumeStream(id, bytes.count) } catch { submissionFailed(error) }
            }
            drainMessages(stream)
            if stream.receiveTimer == nil, stream.requestSource != nil, stream.deframer.hasPartialMessage, stream.context?.deadline == nil {
                awaitingInput.append(stream)
            }
        }
    }

    func streamClosed(_ id: Int32, errorCode: UInt32) {
        if recentStream?.id == id { recentStream = nil }
        if let h = headerStream, h._withUnsafeGuaranteedRef({ $0.id }) == id { headerStream = nil }
        streams.removeValue(forKey: id)?.didClose()
        if !lingering.isEmpty { lingering[id] = nil }
    }

    /// Counts the resets we send: a client can provoke them with bad frames (MadeYouReset).
    /// When a complete response left while the client is still sending, a RST_STREAM
    /// (NO_ERROR) tells it to stop (RFC 9113 §8.1); those are ours, not provoked, and not counted.
    func frameSent(_ frame: SentFrame) throws {
        switch frame.kind {
        case .reset(let code):
            if code != HTTP2ErrorCode.noError.rawValue, machine.acceptsStreams, !resets.take() { try calmDown("too many streams reset") }
        case .headers, .data:
            guard frame.endStream, let stream = streams[frame.streamID], !stream.machine.requestIsEnded else { return }
            try session.submitReset(stream: frame.streamID, code: .noError)
        case .other:
            break
        }
    }

    func readBody(stream id: Int32, into buffer: UnsafeMutableRawBufferPointer) -> BodyRead {
        openStream(id)?.readBody(into: buffer) ?? .failed
    }
}

/// What a request header's name is to us, told from its bytes.
enum RequestHeaderName: Equatable {
    case method, path, contentType, timeout, encoding, acceptEncoding
    /// Known and not needed: `:scheme`, `:authority`, `te`, `user-agent`, and `content-length`
    /// (HTTP framing, which nghttp2 checks against the DATA received; not call metadata).
    case ignored
    /// Another pseudo-header or `grpc-` name: not application metadata.
    case reserved
    /// Application metadata.
    case custom

    init(_ name: UnsafeRawBufferPointer) {
        switch name.count {
        case 2 where name.matches("te"): self = .ignored
        case 5 where name.matches(":path"): self = .path
        case 7 where name.matches(":method"): self = .method
        case 7 where name.matches(":scheme"): self = .ignored
        case 10 where name.matches(":authority") || name.matches("user-agent"): self = .ignored
        case 12 where name.matches("content-type"): self = .contentType
        case 12 where name.matches("grpc-timeout"): self = .timeout
        case 14 where name.matches("content-length"): self = .ignored
        case 13 where name.matches("grpc-encoding"): self = .encoding
        case 20 where name.matches("grpc-accept-encoding"): self = .acceptEncoding
        default:
            let reserved = name.first == UInt8(ascii: ":") || (name.count >= 5 && UnsafeRawBufferPointer(rebasing: name[0..<5]).matches("grpc-"))
            self = reserved ? .reserved : .custom
        }
    }
}
