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
    private unowned let io: any HTTP2ConnectionIO
    private var session: NGHTTP2Session!
    private var machine = ConnectionStateMachine()
    private var streams: [Int32: ServerStream] = [:]
    /// One timer: first the handshake deadline, then the idle check.
    private var timer: Scheduled<Void>?
    private var lastActivity = NIODeadline.now()
    private var resets: TokenBucket
    private var controlFrames: TokenBucket

    init(core: ServerCore, io: any HTTP2ConnectionIO, eventLoop: any EventLoop, allocator: ByteBufferAllocator, peer: String) throws {
        self.core = core
        self.io = io
        self.eventLoop = eventLoop
        self.allocator = allocator
        self.peer = peer
        taskExecutor = EventLoopTaskExecutor(eventLoop)
        let c = core.configuration
        resets = TokenBucket(burst: c.resetBurst, perSecond: c.resetsPerSecond)
        controlFrames = TokenBucket(burst: c.controlFrameBurst, perSecond: c.controlFramesPerSecond)
        session = try NGHTTP2Session(delegate: self, options: core.nghttp2Options)
        try session.submitSettings(
            maxConcurrentStreams: c.maxConcurrentStreams, maxHeaderListSize: UInt32(c.maxHeaderListSize), initialWindowSize: c.streamWindowSize)
        try session.setConnectionWindow(c.connectionWindowSize)
    }

    // MARK: channel events

    func activated() {
        armTimer(in: core.configuration.handshakeTimeout)
        flush()
    }

    func received(_ buffer: ByteBuffer) {
        guard !machine.isClosed else { return }
        lastActivity = .now()
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

    func readComplete() { flush() }

    func writabilityChanged() {
        if io.isWritable { flush() }
    }

    func inactive() {
        timer?.cancel()
        timer = nil
        _ = machine.close()
        let open = streams
        streams = [:]
        for (_, s) in open { s.didClose() }
    }

    func errorCaught(_ error: any Error) {
        core.logger.debug("connection error", metadata: ["peer": "\(peer)", "error": "\(error)"])
        close()
    }

    /// Sends GOAWAY and lets the calls in flight finish (server drain, idle connection).
    func goAway() {
        guard machine.goAway() else { return }
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
            core.logger.debug("nghttp2 call failed", metadata: ["peer": "\(peer)", "error": "\(error)"])
            close()
        }
    }

    // MARK: timer

    private func armTimer(in delay: Duration) {
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        timer = eventLoop.scheduleTask(in: .nanoseconds(Int64(delay / .nanoseconds(1)))) { bound.value.timerFired() }
    }

    private func timerFired() {
        timer = nil
        let idleFor = Duration.nanoseconds((NIODeadline.now() - lastActivity).nanoseconds)
        switch machine.timerFired(streamsOpen: streams.count, idleFor: idleFor, idleTimeout: core.configuration.idleTimeout) {
        case .close:
            core.logger.debug("client did not complete the HTTP/2 handshake in time", metadata: ["peer": "\(peer)"])
            close()
        case .goAway:
            perform { try session.submitGoAway(lastStreamID: session.lastProcessedStreamID, code: .noError) }
            flush()
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
                    guard try session.send(into: &out, limit: 1 << 20) > 0 else { break }
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
        perform { try session.resumeData(stream: stream.id) }
    }

    /// The response HEADERS of a call that sends messages.
    func submitResponseHeaders(_ stream: ServerStream) {
        var headers: [(String, String)] = [
            (":status", "200"), ("content-type", "application/grpc"), ("grpc-accept-encoding", MessageEncoding.acceptHeader),
        ]
        if let encoding = stream.context?.responseEncoding, encoding != .identity {
            headers.append(("grpc-encoding", encoding.rawValue))
        }
        if let ctx = stream.context { headers += ctx.initialMetadata.headerFields }
        submit(stream, headers, hasBody: true)
    }

    /// gRPC's early-error form: one HEADERS frame with the status, ending the stream.
    func submitTrailersOnly(_ stream: ServerStream, _ trailers: [(String, String)]) {
        var headers: [(String, String)] = [
            (":status", "200"), ("content-type", "application/grpc"), ("grpc-accept-encoding", MessageEncoding.acceptHeader),
        ]
        if let ctx = stream.context { headers += ctx.initialMetadata.headerFields }
        submit(stream, headers + trailers, hasBody: false)
    }

    /// Answers a request that is not gRPC with a plain HTTP status.
    private func submitHTTPStatus(_ stream: ServerStream, status: Int) {
        guard stream.machine.answerHTTP() else { return }
        submit(stream, [(":status", String(status)), ("content-length", "0")], hasBody: false)
    }

    private func submit(_ stream: ServerStream, _ headers: [(String, String)], hasBody: Bool) {
        do {
            try session.submitResponse(stream: stream.id, headers: headers, hasBody: hasBody)
        } catch {
            // The stream is in no state for a response (nghttp2 refused it): reset it.
            perform { try session.submitReset(stream: stream.id, code: .internalError) }
        }
    }

    /// Resumes a streaming call's input once its handler drained its queue.
    func resumeInput(_ stream: ServerStream) {
        let held = stream.machine.resumeInput()
        guard held > 0 else { return }
        perform { try session.consumeStream(stream.id, held) }
        flush()
    }

    /// Ends the connection at once with GOAWAY(ENHANCE_YOUR_CALM): the peer is abusive.
    private func calmDown(_ reason: String) throws {
        core.logger.info("closing abusive connection", metadata: ["peer": "\(peer)", "reason": "\(reason)"])
        if machine.abusive() { try session.terminate(code: .enhanceYourCalm) }
    }

    // MARK: calls

    private func dispatch(_ stream: ServerStream) {
        let head = stream.head
        guard stream.machine.headersReceived(limit: core.configuration.maxHeaderListSize) else {
            stream.finish(RPCError(
                code: .resourceExhausted, message: "request headers exceed the limit of \(core.configuration.maxHeaderListSize) bytes"))
            return
        }
        guard head.method == "POST" else { return submitHTTPStatus(stream, status: 405) }
        guard let contentType = head.contentType, contentType.hasPrefix("application/grpc") else {
            return submitHTTPStatus(stream, status: 415)
        }
        guard let route = core.router.routes[head.path] else {
            let parts = head.path.split(separator: "/", omittingEmptySubsequences: false)
            let message: String
            if parts.count == 3, parts[0].isEmpty, core.router.services.contains(String(parts[1])) {
                message = "method \(parts[2]) not found in service \(parts[1])"
            } else if parts.count == 3, parts[0].isEmpty {
                message = "service \(parts[1]) not found"
            } else {
                message = "path \(head.path) is not a gRPC method"
            }
            stream.finish(RPCError(code: .unimplemented, message: message))
            return
        }
        var deadline: ContinuousClock.Instant?
        if let timeout = head.timeout {
            guard let d = GRPCWire.parseTimeout(timeout) else {
                stream.finish(RPCError(code: .invalidArgument, message: "malformed grpc-timeout header"))
                return
            }
            // At most 10^8 hours: far beyond any bound the deadline interceptor keeps, and
            // never an overflow.
            deadline = .now + min(d, .seconds(360_000_000_000))
        }
        if let header = head.encoding {
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
        let responseEncoding = MessageEncoding.preferred(fromAccept: head.acceptEncoding) ?? (compressedRequest ? stream.requestEncoding : nil)
        let context = ServerContext(
            method: route.method, requestMetadata: head.metadata, deadline: deadline, peer: peer,
            responseEncoding: responseEncoding, compressResponses: compressedRequest, loop: eventLoop, core: core)
        stream.context = context
        if let bad = head.badHeader {
            stream.finish(RPCError(code: .invalidArgument, message: "metadata \(bad) is not valid base64"))
            return
        }
        core.executor.start(stream, route, context, on: self)
        // The deadline as the interceptors left it.
        if !stream.isFinished, let deadline = context.deadline {
            let bound = NIOLoopBound(stream, eventLoop: eventLoop)
            let nanoseconds = (deadline - .now) / .nanoseconds(1)
            stream.deadlineTimer = eventLoop.scheduleTask(in: .nanoseconds(Int64(min(nanoseconds, Double(Int64.max / 2))))) {
                let s = bound.value
                guard !s.isFinished else { return }
                s.finish(RPCError(code: .deadlineExceeded, message: "deadline exceeded"))
                s.requestSource?.finish(RPCError(code: .deadlineExceeded, message: "deadline exceeded"))
                s.context?.cancel()
                s.task?.cancel()
            }
        }
    }

    func makeRequestSource(_ stream: ServerStream) -> RawRequestStream {
        let bound = NIOLoopBound(stream, eventLoop: eventLoop)
        let loop = eventLoop
        let source = RawRequestStream(limit: core.configuration.requestBufferLimit) {
            loop.execute {
                let s = bound.value
                s.connection?.resumeInput(s)
            }
        }
        stream.requestSource = source
        return source
    }

    private func drainMessages(_ stream: ServerStream) {
        while !stream.isFinished {
            let message: [UInt8]
            let compressed: Bool
            do throws(RPCError) {
                guard let frame = try stream.deframer.next() else { return }
                compressed = frame.compressed
                if frame.compressed {
                    guard stream.requestEncoding != .identity else {
                        throw RPCError(code: .internal, message: "compressed message received without a grpc-encoding")
                    }
                    message = try stream.requestEncoding.decompress(frame.bytes, limit: core.configuration.maxReceiveMessageSize)
                } else {
                    message = frame.bytes
                }
            } catch {
                stream.requestSource?.finish(error)
                stream.finish(error)
                stream.context?.cancel()
                stream.task?.cancel()
                return
            }
            stream.messageCount += 1
            if let source = stream.requestSource {
                if !source.yield(message, compressed: compressed) { stream.machine.pauseInput() }
            } else if stream.messageCount == 1 {
                stream.requestMessage = message
                stream.context?.requestWasCompressed = compressed
            } else {
                stream.finish(RPCError(code: .unimplemented, message: "\(stream.head.path) takes exactly one request message, got more"))
                return
            }
        }
    }

    private func inputEnded(_ stream: ServerStream) {
        guard stream.machine.requestEnded(), stream.route != nil else { return }
        if stream.deframer.hasPartialMessage {
            let error = RPCError(code: .internal, message: "request stream ended inside a message (truncated)")
            stream.requestSource?.finish(error)
            stream.finish(error)
            return
        }
        if let source = stream.requestSource {
            source.finish(nil)
            return
        }
        guard let request = stream.requestMessage else {
            stream.finish(RPCError(code: .unimplemented, message: "\(stream.head.path) takes exactly one request message, got none"))
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
        streams[id] = ServerStream(id: id, connection: self, eventLoop: eventLoop, maxMessageSize: core.configuration.maxReceiveMessageSize)
        return true
    }

    func header(stream id: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, isTrailer: Bool) throws {
        guard let stream = streams[id] else { return }
        if isTrailer { return }  // request trailers: ignored
        switch stream.machine.headerField(size: name.count + value.count + 32, limit: core.configuration.maxHeaderListSize) {
        case .failConnection: throw HTTP2PeerError(description: "request headers far beyond the advertised limit")
        case .skip: return
        case .store: break
        }
        let n = String(decoding: name, as: UTF8.self)
        let v = String(decoding: value, as: UTF8.self)
        switch n {
        case ":method": stream.head.method = v
        case ":path": stream.head.path = v
        case ":scheme", ":authority", "te", "user-agent": break
        case "grpc-accept-encoding": stream.head.acceptEncoding = v
        case "content-type": stream.head.contentType = v
        case "grpc-timeout": stream.head.timeout = v
        case "grpc-encoding": stream.head.encoding = v
        default:
            if n.hasPrefix(":") || n.hasPrefix("grpc-") { break }  // reserved
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
        case .rstStream:
            if !resets.take() { try calmDown("rapid reset") }
        default:
            break
        }
        guard let stream = streams[frame.streamID] else { return }
        if frame.kind == .requestHeaders { dispatch(stream) }
        if frame.endStream, frame.kind == .requestHeaders || frame.kind == .data || frame.kind == .trailers {
            inputEnded(stream)
        }
    }

    func dataReceived(stream id: Int32, _ bytes: UnsafeRawBufferPointer) {
        perform { try session.consumeConnection(bytes.count) }
        guard let stream = streams[id] else { return }
        switch stream.route == nil ? .discard : stream.machine.dataReceived(bytes.count) {
        case .discard:
            perform { try session.consumeStream(id, bytes.count) }
        case .deliver(let returnWindow):
            stream.deframer.append(bytes)
            if returnWindow { perform { try session.consumeStream(id, bytes.count) } }
            drainMessages(stream)
        }
    }

    func streamClosed(_ id: Int32, errorCode: UInt32) {
        streams.removeValue(forKey: id)?.didClose()
    }

    /// Counts the resets we send: a client can provoke them with bad frames (MadeYouReset).
    func frameSent(isReset: Bool) throws {
        if isReset, machine.acceptsStreams, !resets.take() { try calmDown("too many streams reset") }
    }

    func readBody(stream id: Int32, into buffer: UnsafeMutableRawBufferPointer) -> BodyRead {
        streams[id]?.readBody(into: buffer) ?? .failed
    }
}
