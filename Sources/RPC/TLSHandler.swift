import Logging
import NIOCore
public import Signatures
import Synchronization

/// What the TLS layer tells the layers above about the connection, once the handshake is
/// done: its protocol and cipher and, under mutual TLS, the client's verified certificate.
public struct TLSPeer: Sendable, Hashable {
    /// "TLSv1.3", "TLSv1.2".
    public let protocolVersion: String
    public let cipher: String
    /// The certificate the client presented, verified against the client CA; its
    /// `subjectPINFL` and `subjectTIN` name the person or organisation calling.
    public let clientCertificate: CertificateInfo?
}

/// The TLS context new connections use; a reload swaps it, and connections already open keep
/// the one they began with.
final class TLSContextStore: Sendable {
    let files: TLSServerFiles
    private let current: Mutex<TLSServerContext>

    init(files: TLSServerFiles) throws(TLSError) {
        self.files = files
        current = Mutex(try TLSServerContext(files))
    }

    var context: TLSServerContext { current.withLock { $0 } }

    /// Reads the files again; on failure the context in use stays.
    func reload() throws(TLSError) -> TLSServerContext {
        let fresh = try TLSServerContext(files)
        current.withLock { $0 = fresh }
        return fresh
    }
}

/// TLS under the HTTP/2 handler, on OpenSSL memory BIOs: ciphertext from the socket goes into
/// the `TLSSession`, plaintext comes out to `HTTP2ServerHandler`, and its writes go back
/// encrypted. The connection above sees `channelActive` only once the handshake has finished
/// with ALPN `h2`, preceded by a `TLSPeer` event. A handshake has `tlsHandshakeTimeout` to
/// finish; the server's count of handshakes in progress is released when it ends either way.
final class TLSHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let core: ServerCore
    private let session: TLSSession
    private var machine = TLSStateMachine()
    private var timer: Scheduled<Void>?
    /// This connection's place among the handshakes in progress, while it has one.
    private var slot: HandshakeCount?
    /// Promises of plaintext writes, completed with the ciphertext write that carries them.
    private var pendingPromises: [EventLoopPromise<Void>] = []
    /// Plaintext records are read into this, then sliced up the pipeline.
    private static let readChunk = 16 << 10

    init(core: ServerCore, context tls: TLSServerContext, slot: HandshakeCount) throws(TLSError) {
        self.core = core
        session = try TLSSession(server: tls)
        self.slot = slot
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: TimeAmount(core.configuration.tlsHandshakeTimeout)) {
            let (handler, context) = bound.value
            handler.timer = nil
            if handler.machine.handshakeAbandoned() {
                handler.core.logger.debug("closing a connection whose TLS handshake did not finish in time", metadata: ["peer": "\(context.channel.remoteAddress?.description ?? "unknown")"])
                handler.core.bounds.hit(.tlsHandshakeTimeout)
                handler.endHandshake()
                context.close(promise: nil)
            }
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        // The HTTP/2 connection becomes active when the handshake is done.
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        switch machine.bytesReceived() {
        case .discard:
            return
        case .handshake:
            bytes.withUnsafeReadableBytes { session.receive($0) }
            let step = session.handshake()
            switch machine.handshakeStepped(step, applicationProtocol: step == .done ? session.applicationProtocol : nil) {
            case .wait:
                sendOutput(context)
            case .fail(let reason):
                core.logger.debug("TLS handshake failed", metadata: ["peer": "\(context.channel.remoteAddress?.description ?? "unknown")", "reason": "\(reason)"])
                endHandshake()
                sendOutput(context)
                context.close(promise: nil)
            case .activate:
                endHandshake()
                sendOutput(context)
                context.fireUserInboundEventTriggered(
                    TLSPeer(protocolVersion: session.protocolVersion, cipher: session.cipher, clientCertificate: session.peerCertificate))
                context.fireChannelActive()
                readPlaintext(context)
            }
        case .read:
            bytes.withUnsafeReadableBytes { session.receive($0) }
            readPlaintext(context)
        }
    }

    /// Hands up every whole record received, then sends what reading produced (TLS 1.3
    /// key updates, alerts).
    private func readPlaintext(_ context: ChannelHandlerContext) {
        reading: while true {
            var buffer = context.channel.allocator.buffer(capacity: Self.readChunk)
            var result = TLSSession.ReadResult.wantsMore
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Self.readChunk) { out in
                result = session.read(into: out)
                if case .bytes(let n) = result { return n }
                return 0
            }
            switch machine.read(result) {
            case .deliver:
                context.fireChannelRead(wrapInboundOut(buffer))
            case .stop:
                break reading
            case .closeNotify:
                session.shutdown()
                sendOutput(context)
                context.close(promise: nil)
                return
            case .fail(let reason):
                core.logger.debug("closing a TLS connection after a bad record", metadata: ["reason": "\(reason)"])
                sendOutput(context)
                context.close(promise: nil)
                return
            }
        }
        sendOutput(context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if machine.state == .established { context.fireChannelReadComplete() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        machine.channelClosed()
        endHandshake()
        failPending(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // A drain closes connections still in their handshake; the others get GOAWAY above.
        if event is GracefulShutdownEvent, machine.handshakeAbandoned() {
            endHandshake()
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let bytes = unwrapOutboundIn(data)
        switch machine.writeRequested() {
        case .drop:
            promise?.fail(ChannelError.ioOnClosedChannel)
        case .encrypt:
            guard bytes.withUnsafeReadableBytes({ session.write($0) }) else {
                promise?.fail(ChannelError.ioOnClosedChannel)
                context.close(promise: nil)
                return
            }
            if let promise { pendingPromises.append(promise) }
        }
    }

    func flush(context: ChannelHandlerContext) {
        sendOutput(context)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all, machine.closeRequested() == .closeNotify {
            session.shutdown()
            sendOutput(context)
        }
        context.close(mode: mode, promise: promise)
    }

    /// Writes and flushes what the session has queued, completing the writes it carries.
    private func sendOutput(_ context: ChannelHandlerContext) {
        let pending = session.pendingOutput
        guard pending > 0 else {
            if !pendingPromises.isEmpty { succeedPending() }
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: pending)
        while session.pendingOutput > 0 {
            let want = session.pendingOutput
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { session.takeOutput(into: $0) }
        }
        if pendingPromises.isEmpty {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        } else {
            let promises = pendingPromises
            pendingPromises.removeAll(keepingCapacity: true)
            context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { result in
                for p in promises { p.completeWith(result) }
            }
        }
    }

    private func succeedPending() {
        let promises = pendingPromises
        pendingPromises.removeAll()
        for p in promises { p.succeed(()) }
    }

    private func failPending(_ error: any Error) {
        let promises = pendingPromises
        pendingPromises.removeAll()
        for p in promises { p.fail(error) }
    }

    /// The handshake is over (done, failed, abandoned or the connection gone): its timer stops
    /// and its place among the handshakes in progress is given back.
    private func endHandshake() {
        timer?.cancel()
        timer = nil
        slot = nil
    }
}

/// One place among the server's TLS handshakes in progress, given back when it goes.
final class HandshakeCount: Sendable {
    private let counter: TLSHandshakeCounter

    init?(_ counter: TLSHandshakeCounter) {
        guard counter.take() else { return nil }
        self.counter = counter
    }

    deinit { counter.give() }
}

/// The server's TLS handshakes in progress, bounded by `maxTLSHandshakes`.
final class TLSHandshakeCounter: Sendable {
    private let value = Atomic<Int>(0)
    let limit: Int

    init(limit: Int) { self.limit = limit }

    var inProgress: Int { value.load(ordering: .relaxed) }

    func take() -> Bool {
        if value.add(1, ordering: .relaxed).newValue > limit {
            value.subtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func give() { value.subtract(1, ordering: .relaxed) }
}
