internal import CNghttp2
import Logging
import NIOCore

/// One HTTP/2 connection: bytes from the socket go through nghttp2, whose callbacks drive
/// the gRPC streams; nghttp2's output goes back to the socket. Runs on one event loop.
final class HTTP2ServerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let core: ServerCore
    private var session: NGHTTP2Session?
    private var context: ChannelHandlerContext?
    private(set) var eventLoop: (any EventLoop)?
    private(set) var allocator = ByteBufferAllocator()
    /// Handler tasks of this connection's calls run on its event loop.
    private(set) var taskExecutor: EventLoopTaskExecutor!
    private var streams: [Int32: ServerStream] = [:]
    private var peer = ""
    private var flushing = false
    private var flushAgain = false
    /// A flush is queued for the end of this turn of the loop.
    private var flushScheduled = false
    /// True inside `nghttp2_session_mem_recv`: nghttp2 must not be re-entered to send.
    private var receiving = false
    private var closing = false
    private var goingAway = false
    /// One timer per connection: first the handshake deadline, then the idle check.
    private var timer: Scheduled<Void>?
    private var handshakeDone = false
    private var lastActivity = NIODeadline.now()
    private var resets: TokenBucket
    private var controlFrames: TokenBucket

    init(core: ServerCore) {
        self.core = core
        let c = core.configuration
        resets = TokenBucket(burst: c.resetBurst, perSecond: c.resetsPerSecond)
        controlFrames = TokenBucket(burst: c.controlFrameBurst, perSecond: c.controlFramesPerSecond)
    }

    // MARK: channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.eventLoop = context.eventLoop
        self.taskExecutor = EventLoopTaskExecutor(context.eventLoop)
        self.allocator = context.channel.allocator
        peer = context.channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "unknown"
        do {
            let s = try NGHTTP2Session(
                callbacks: core.nghttp2.callbacks, userData: Unmanaged.passUnretained(self).toOpaque(),
                options: core.nghttp2.options)
            session = s
            let c = core.configuration
            let settings = [
                nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: c.maxConcurrentStreams),
                nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: UInt32(c.maxHeaderListSize)),
                nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: c.streamWindowSize),
            ]
            _ = settings.withUnsafeBufferPointer { nghttp2_submit_settings(s.raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), $0.baseAddress, $0.count) }
            _ = nghttp2_session_set_local_window_size(s.raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, c.connectionWindowSize)
        } catch {
            core.logger.error("cannot create HTTP/2 session", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        armTimer(in: core.configuration.handshakeTimeout)
        flushOutput()
        context.fireChannelActive()
    }

    private func armTimer(in delay: Duration) {
        guard let loop = eventLoop else { return }
        let bound = NIOLoopBound(self, eventLoop: loop)
        let (seconds, attoseconds) = delay.components
        timer = loop.scheduleTask(in: .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)) {
            bound.value.timerFired()
        }
    }

    /// Ends a connection that never completed its handshake, and sends GOAWAY on one that
    /// has had no call and no traffic for the idle timeout.
    private func timerFired() {
        timer = nil
        guard !closing else { return }
        guard handshakeDone else {
            core.logger.debug("client did not complete the HTTP/2 handshake in time", metadata: ["peer": "\(peer)"])
            closeConnection()
            return
        }
        let idleTimeout = core.configuration.idleTimeout
        let idleFor = Duration.nanoseconds((NIODeadline.now() - lastActivity).nanoseconds)
        if streams.isEmpty, idleFor >= idleTimeout {
            startGracefulShutdown()
        } else if !goingAway {
            armTimer(in: streams.isEmpty ? idleTimeout - idleFor : idleTimeout)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let session, !closing else { return }
        let buffer = unwrapInboundIn(data)
        lastActivity = .now()
        receiving = true
        defer { receiving = false }
        let rv = buffer.withUnsafeReadableBytes { bytes -> Int in
            guard let base = bytes.baseAddress else { return 0 }
            return nghttp2_session_mem_recv(session.raw, base.assumingMemoryBound(to: UInt8.self), bytes.count)
        }
        receiving = false
        if rv < 0 {
            // A fatal protocol error: nghttp2 has queued GOAWAY where one is due.
            core.logger.debug("closing connection after nghttp2 error", metadata: [
                "peer": "\(peer)", "error": "\(String(cString: nghttp2_strerror(Int32(rv))))",
            ])
            flushOutput()
            closeConnection()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushOutput()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { flushOutput() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        let open = streams
        streams = [:]
        for (_, s) in open { s.didClose(errorCode: UInt32(NGHTTP2_CANCEL.rawValue)) }
        self.context = nil
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is GracefulShutdownEvent {
            startGracefulShutdown()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        core.logger.debug("connection error", metadata: ["peer": "\(peer)", "error": "\(error)"])
        closeConnection()
    }

    private func startGracefulShutdown() {
        guard let session, !goingAway else { return }
        goingAway = true
        let last = nghttp2_session_get_last_proc_stream_id(session.raw)
        _ = nghttp2_submit_goaway(session.raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, UInt32(NGHTTP2_NO_ERROR.rawValue), nil, 0)
        flushOutput()
    }

    /// Ends the connection at once with GOAWAY(ENHANCE_YOUR_CALM): the peer is abusive.
    private func calmDown(_ reason: String) -> Int32 {
        core.logger.info("closing abusive connection", metadata: ["peer": "\(peer)", "reason": "\(reason)"])
        if let session {
            _ = nghttp2_session_terminate_session(session.raw, NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
        }
        goingAway = true
        return 0
    }

    private func closeConnection() {
        guard !closing else { return }
        closing = true
        context?.close(promise: nil)
    }

    // MARK: output

    /// Flushes once this turn of the event loop ends, so that the responses and trailers of
    /// all calls answered in the same turn leave in one write. While a read is being handled,
    /// `channelReadComplete` flushes instead.
    func scheduleFlush() {
        guard !receiving, !flushScheduled, let loop = eventLoop else { return }
        flushScheduled = true
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.execute {
            let handler = bound.value
            handler.flushScheduled = false
            handler.flushOutput()
        }
    }

    /// Moves everything nghttp2 has to send into the channel, unless the socket is backed up
    /// (then `channelWritabilityChanged` resumes it). A writability change that arrives while
    /// we are flushing (NIO can report it from inside `flush`) makes the loop run again
    /// rather than being lost, or the connection would stall with data still in nghttp2.
    func flushOutput() {
        guard let session, let context, !receiving, !closing else { return }
        if flushing {
            flushAgain = true
            return
        }
        flushing = true
        defer { flushing = false }
        repeat {
            flushAgain = false
            while context.channel.isWritable {
                var out = allocator.buffer(capacity: 0)
                while out.readableBytes < 1 << 20 {
                    var data: UnsafePointer<UInt8>?
                    let n = nghttp2_session_mem_send(session.raw, &data)
                    if n < 0 {
                        core.logger.debug("nghttp2 send failed", metadata: ["error": "\(String(cString: nghttp2_strerror(Int32(n))))"])
                        closing = true
                        context.close(promise: nil)
                        return
                    }
                    if n == 0 { break }
                    // Valid only until the next mem_send: copy now.
                    out.writeBytes(UnsafeRawBufferPointer(start: data, count: n))
                }
                if out.readableBytes == 0 { break }
                context.writeAndFlush(wrapOutboundOut(out), promise: nil)
            }
        } while flushAgain && context.channel.isWritable && !closing
        if nghttp2_session_want_read(session.raw) == 0, nghttp2_session_want_write(session.raw) == 0 {
            closeConnection()
        } else if goingAway, streams.isEmpty, nghttp2_session_want_write(session.raw) == 0 {
            closeConnection()
        }
    }

    func resumeData(_ stream: ServerStream) {
        guard let session else { return }
        _ = nghttp2_session_resume_data(session.raw, stream.id)
    }

    /// Submits the response HEADERS: with a data source for a call that sends messages, or
    /// as a trailers-only response (gRPC's early-error form) when `endStream`.
    func submitHeaders(_ stream: ServerStream, endStream: Bool) {
        guard let session, !stream.closed else { return }
        stream.headersSent = true
        var headers: [(String, String)] = [
            (":status", "200"), ("content-type", "application/grpc"), ("grpc-accept-encoding", MessageEncoding.acceptHeader),
        ]
        if !endStream, let encoding = stream.context?.responseEncoding, encoding != .identity {
            headers.append(("grpc-encoding", encoding.rawValue))
        }
        if let ctx = stream.context { headers += ctx.initialMetadata.headerFields }
        if endStream {
            headers += stream.pendingTrailers ?? []
            stream.pendingTrailers = nil
            let rv = withHeaderArray(headers) { nghttp2_submit_response(session.raw, stream.id, $0, $1, nil) }
            if rv != 0 { resetStream(stream.id, NGHTTP2_INTERNAL_ERROR) }
        } else {
            var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: readResponseData)
            let rv = withHeaderArray(headers) { nghttp2_submit_response(session.raw, stream.id, $0, $1, &provider) }
            if rv != 0 { resetStream(stream.id, NGHTTP2_INTERNAL_ERROR) }
        }
    }

    /// Answers a request that is not gRPC with a plain HTTP status.
    func submitHTTPStatus(_ stream: ServerStream, status: Int) {
        guard let session else { return }
        stream.headersSent = true
        stream.finished = true
        let headers = [(":status", String(status)), ("content-length", "0")]
        _ = withHeaderArray(headers) { nghttp2_submit_response(session.raw, stream.id, $0, $1, nil) }
    }

    func resetStream(_ id: Int32, _ code: nghttp2_error_code) {
        guard let session else { return }
        _ = nghttp2_submit_rst_stream(session.raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, code.rawValue)
    }

    /// nghttp2 asks for body bytes of `streamID`.
    fileprivate func readData(
        streamID: Int32, into buf: UnsafeMutablePointer<UInt8>, length: Int, flags: UnsafeMutablePointer<UInt32>
    ) -> Int {
        guard let stream = streams[streamID] else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
        var written = 0
        while written < length, var chunk = stream.outbound.first {
            let n = min(length - written, chunk.readableBytes)
            chunk.withUnsafeReadableBytes { src in
                UnsafeMutableRawPointer(buf + written).copyMemory(from: src.baseAddress!, byteCount: n)
            }
            chunk.moveReaderIndex(forwardBy: n)
            written += n
            if chunk.readableBytes == 0 {
                stream.outbound.removeFirst()
            } else {
                stream.outbound[stream.outbound.startIndex] = chunk
            }
        }
        stream.outboundBytes -= written
        stream.releaseWaitersIfDrained()
        if stream.outbound.isEmpty, let trailers = stream.pendingTrailers {
            stream.pendingTrailers = nil
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue | NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
            if let session {
                let rv = withHeaderArray(trailers) { nghttp2_submit_trailer(session.raw, streamID, $0, $1) }
                if rv != 0 { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
            }
            return written
        }
        if written == 0 { return Int(NGHTTP2_ERR_DEFERRED.rawValue) }
        return written
    }

    // MARK: input (nghttp2 callbacks)

    fileprivate func beginHeaders(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        let hd = frame.pointee.hd
        guard hd.type == UInt8(NGHTTP2_HEADERS.rawValue), frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST else { return 0 }
        if goingAway { return Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
        streams[hd.stream_id] = ServerStream(id: hd.stream_id, connection: self, eventLoop: eventLoop!, maxMessageSize: core.configuration.maxReceiveMessageSize)
        return 0
    }

    fileprivate func header(_ frame: UnsafePointer<nghttp2_frame>, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Int32 {
        guard let stream = streams[frame.pointee.hd.stream_id] else { return 0 }
        // Header list size, counted as RFC 9113 §6.5.2 does; nghttp2 does not enforce ours.
        stream.headerBytes += name.count + value.count + 32
        if stream.headerBytes > core.configuration.maxHeaderListSize {
            // Far past the advertised limit, the peer ignores our SETTINGS: end the connection.
            if stream.headerBytes > 4 * core.configuration.maxHeaderListSize {
                return Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
            }
            stream.headersTooLarge = true
            return 0  // keep reading the block (HPACK state must stay in sync), store nothing
        }
        if stream.headersTooLarge { return 0 }
        guard frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST else { return 0 }  // request trailers: ignored
        let n = String(decoding: name, as: UTF8.self)
        let v = String(decoding: value, as: UTF8.self)
        switch n {
        case ":method": stream.method = v
        case ":path": stream.path = v
        case ":scheme", ":authority", "te", "user-agent": break
        case "grpc-accept-encoding": stream.acceptEncoding = v
        case "content-type": stream.contentType = v
        case "grpc-timeout": stream.timeout = v
        case "grpc-encoding": stream.encoding = v
        default:
            if n.hasPrefix(":") || n.hasPrefix("grpc-") { break }  // reserved
            if let entry = Metadata.decode(key: n, rawValue: v) {
                stream.metadata.append(entry)
            } else {
                stream.badHeader = n
            }
        }
        return 0
    }

    fileprivate func frameReceived(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        let hd = frame.pointee.hd
        let isAck = hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0
        switch hd.type {
        case UInt8(NGHTTP2_SETTINGS.rawValue) where !isAck:
            if !handshakeDone {
                handshakeDone = true
                timer?.cancel()
                armTimer(in: core.configuration.idleTimeout)
            }
            if !controlFrames.take() { return calmDown("SETTINGS flood") }
        case UInt8(NGHTTP2_PING.rawValue) where !isAck:
            if !controlFrames.take() { return calmDown("PING flood") }
        case UInt8(NGHTTP2_RST_STREAM.rawValue):
            if !resets.take() { return calmDown("rapid reset") }
        default: break
        }
        guard let stream = streams[hd.stream_id] else { return 0 }
        let endStream = hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        if hd.type == UInt8(NGHTTP2_HEADERS.rawValue), frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST {
            dispatch(stream)
        }
        if endStream, hd.type == UInt8(NGHTTP2_HEADERS.rawValue) || hd.type == UInt8(NGHTTP2_DATA.rawValue) {
            inputEnded(stream)
        }
        return 0
    }

    fileprivate func dataChunk(streamID: Int32, _ data: UnsafeRawBufferPointer) -> Int32 {
        guard let session else { return 0 }
        _ = nghttp2_session_consume_connection(session.raw, data.count)
        guard let stream = streams[streamID] else { return 0 }
        if stream.finished || stream.route == nil {
            _ = nghttp2_session_consume_stream(session.raw, streamID, data.count)
            return 0
        }
        stream.deframer.append(data)
        if stream.inputPaused {
            stream.unconsumedBytes += data.count
        } else {
            _ = nghttp2_session_consume_stream(session.raw, streamID, data.count)
        }
        drainMessages(stream)
        return 0
    }

    /// Counts the resets we send: a client can provoke them with bad frames (MadeYouReset).
    fileprivate func frameSent(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        if frame.pointee.hd.type == UInt8(NGHTTP2_RST_STREAM.rawValue), !goingAway, !resets.take() {
            return calmDown("too many streams reset")
        }
        return 0
    }

    fileprivate func streamClosed(_ streamID: Int32, errorCode: UInt32) -> Int32 {
        if let stream = streams.removeValue(forKey: streamID) {
            stream.didClose(errorCode: errorCode)
        }
        return 0
    }

    // MARK: calls

    private func dispatch(_ stream: ServerStream) {
        if stream.headersTooLarge {
            failEarly(stream, RPCError(
                code: .resourceExhausted,
                message: "request headers exceed the limit of \(core.configuration.maxHeaderListSize) bytes"))
            return
        }
        guard stream.method == "POST" else {
            submitHTTPStatus(stream, status: 405)
            return
        }
        guard let contentType = stream.contentType, contentType.hasPrefix("application/grpc") else {
            submitHTTPStatus(stream, status: 415)
            return
        }
        guard let route = core.router.routes[stream.path] else {
            let parts = stream.path.split(separator: "/", omittingEmptySubsequences: false)
            let message: String
            if parts.count == 3, parts[0].isEmpty, core.router.services.contains(String(parts[1])) {
                message = "method \(parts[2]) not found in service \(parts[1])"
            } else if parts.count == 3, parts[0].isEmpty {
                message = "service \(parts[1]) not found"
            } else {
                message = "path \(stream.path) is not a gRPC method"
            }
            failEarly(stream, RPCError(code: .unimplemented, message: message))
            return
        }
        var deadline: ContinuousClock.Instant?
        if let timeout = stream.timeout {
            guard let d = GRPCWire.parseTimeout(timeout) else {
                failEarly(stream, RPCError(code: .invalidArgument, message: "malformed grpc-timeout header"))
                return
            }
            // At most 10^8 hours: far beyond any bound the deadline interceptor keeps, and
            // never an overflow.
            deadline = .now + min(d, .seconds(360_000_000_000))
        }
        if let header = stream.encoding {
            guard let encoding = MessageEncoding(header: header) else {
                failEarly(stream, RPCError(
                    code: .unimplemented,
                    message: "grpc-encoding \(header) is not supported; supported: \(MessageEncoding.acceptHeader)",
                    metadata: acceptEncoding))
                return
            }
            stream.requestEncoding = encoding
        }
        // Responses may use what the client accepts; a client that compressed its request
        // accepts that encoding by definition.
        let compressedRequest = stream.requestEncoding != .identity
        let responseEncoding = MessageEncoding.preferred(fromAccept: stream.acceptEncoding)
            ?? (compressedRequest ? stream.requestEncoding : nil)
        let context = ServerContext(
            method: route.method, requestMetadata: stream.metadata, deadline: deadline, peer: peer,
            responseEncoding: responseEncoding, compressResponses: compressedRequest, loop: eventLoop!, core: core)
        stream.context = context
        if let bad = stream.badHeader {
            failEarly(stream, RPCError(code: .invalidArgument, message: "metadata \(bad) is not valid base64"))
            return
        }
        core.executor.start(stream, route, context, on: self)
        // The deadline as the interceptors left it.
        if !stream.finished, let deadline = context.deadline {
            let bound = NIOLoopBound(stream, eventLoop: eventLoop!)
            let nanoseconds = (deadline - .now) / .nanoseconds(1)
            stream.deadlineTimer = eventLoop!.scheduleTask(in: .nanoseconds(Int64(min(nanoseconds, Double(Int64.max / 2))))) {
                let s = bound.value
                guard !s.finished else { return }
                s.finish(RPCError(code: .deadlineExceeded, message: "deadline exceeded"))
                s.requestSource?.finish(RPCError(code: .deadlineExceeded, message: "deadline exceeded"))
                s.context?.cancel()
                s.task?.cancel()
            }
        }
    }

    private var acceptEncoding: Metadata {
        var m = Metadata()
        m.add("grpc-accept-encoding", MessageEncoding.acceptHeader)
        return m
    }

    private func failEarly(_ stream: ServerStream, _ error: RPCError) {
        stream.finish(error)
    }

    func makeRequestSource(_ stream: ServerStream) -> RawRequestStream {
        let bound = NIOLoopBound(stream, eventLoop: eventLoop!)
        let loop = eventLoop!
        let source = RawRequestStream(limit: core.configuration.requestBufferLimit) {
            loop.execute {
                let s = bound.value
                s.connection?.resumeInput(s)
            }
        }
        stream.requestSource = source
        return source
    }

    func resumeInput(_ stream: ServerStream) {
        guard let session, stream.inputPaused else { return }
        stream.inputPaused = false
        if stream.unconsumedBytes > 0 {
            _ = nghttp2_session_consume_stream(session.raw, stream.id, stream.unconsumedBytes)
            stream.unconsumedBytes = 0
            flushOutput()
        }
    }

    private func drainMessages(_ stream: ServerStream) {
        while !stream.finished {
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
                if !source.yield(message, compressed: compressed) { stream.inputPaused = true }
            } else if stream.messageCount == 1 {
                stream.requestMessage = message
                stream.context?.requestWasCompressed = compressed
            } else {
                stream.finish(RPCError(code: .unimplemented, message: "\(stream.path) takes exactly one request message, got more"))
                return
            }
        }
    }

    private func inputEnded(_ stream: ServerStream) {
        guard !stream.inboundEnded else { return }
        stream.inboundEnded = true
        guard !stream.finished, stream.route != nil else { return }
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
            stream.finish(RPCError(code: .unimplemented, message: "\(stream.path) takes exactly one request message, got none"))
            return
        }
        stream.requestMessage = nil
        core.executor.inputEnded(stream, request: request, on: self)
    }
}

/// Asks every connection to send GOAWAY and finish its calls.
struct GracefulShutdownEvent: Sendable {}

// MARK: C callbacks: capture nothing, recover the handler from user data.

private func handler(_ userData: UnsafeMutableRawPointer?) -> HTTP2ServerHandler {
    Unmanaged<HTTP2ServerHandler>.fromOpaque(userData!).takeUnretainedValue()
}

private let readResponseData: nghttp2_data_source_read_callback = { _, streamID, buf, length, flags, _, userData in
    handler(userData).readData(streamID: streamID, into: buf!, length: length, flags: flags!)
}

func installCallbacks(_ cbs: OpaquePointer) {
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs) { _, frame, userData in
        handler(userData).beginHeaders(frame!)
    }
    nghttp2_session_callbacks_set_on_header_callback(cbs) { _, frame, name, namelen, value, valuelen, _, userData in
        handler(userData).header(
            frame!, name: UnsafeRawBufferPointer(start: name, count: namelen),
            value: UnsafeRawBufferPointer(start: value, count: valuelen))
    }
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs) { _, frame, userData in
        handler(userData).frameReceived(frame!)
    }
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs) { _, _, streamID, data, len, userData in
        handler(userData).dataChunk(streamID: streamID, UnsafeRawBufferPointer(start: data, count: len))
    }
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs) { _, streamID, errorCode, userData in
        handler(userData).streamClosed(streamID, errorCode: errorCode)
    }
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs) { _, frame, userData in
        handler(userData).frameSent(frame!)
    }
}

func configureOptions(_ opt: OpaquePointer, _ configuration: RPCServer.Configuration) {
    // We return window as the application takes data, so input is bounded per stream.
    nghttp2_option_set_no_auto_window_update(opt, 1)
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096)
    // Floods nghttp2 itself can stop: CONTINUATION runs, RST_STREAM bursts from the client,
    // a peer that sends PING/SETTINGS and never reads the ACKs, oversized SETTINGS frames.
    nghttp2_option_set_max_continuations(opt, configuration.maxContinuations)
    nghttp2_option_set_stream_reset_rate_limit(opt, UInt64(configuration.resetBurst), UInt64(configuration.resetsPerSecond))
    nghttp2_option_set_max_outbound_ack(opt, 1000)
    nghttp2_option_set_max_settings(opt, 32)
    // Closed streams are kept (nghttp2 bounds them by the concurrent-stream limit), so a
    // frame on one gets the STREAM_CLOSED answer RFC 9113 §5.1 requires.
}
