import NIOCore

/// The NIO face of one HTTP/2 connection: hands channel events to its `HTTP2Connection` and
/// carries the connection's output to the channel. Nothing else: the protocol lives in the
/// connection, its session and its state machines.
final class HTTP2ServerHandler: ChannelInboundHandler, HTTP2ConnectionIO {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let core: ServerCore
    private var connection: HTTP2Connection?
    private var context: ChannelHandlerContext?

    init(core: ServerCore) {
        self.core = core
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let address = context.channel.remoteAddress?.ipAddress ?? "unknown"
        let peer = context.channel.remoteAddress.map { "\(address):\($0.port ?? 0)" } ?? "unknown"
        do {
            connection = try HTTP2Connection(
                core: core, io: self, eventLoop: context.eventLoop, allocator: context.channel.allocator, peer: peer, peerAddress: address)
        } catch {
            core.logger.error("cannot create HTTP/2 session", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        connection?.activated()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        core.traffic.read(bytes.readableBytes)
        connection?.received(bytes)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        connection?.readComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection?.writabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection?.inactive()
        connection = nil
        self.context = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // The connection holds this handler as its output: letting go of it here (and in
        // channelInactive) ends that reference cycle.
        connection?.inactive()
        connection = nil
        self.context = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is GracefulShutdownEvent {
            connection?.goAway()
        } else if let peer = event as? TLSPeer {
            connection?.tlsPeer = peer
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        connection?.errorCaught(error)
    }

    // MARK: HTTP2ConnectionIO

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func write(_ bytes: ByteBuffer) {
        core.traffic.wrote(bytes.readableBytes)
        context?.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
    }

    func close() {
        context?.close(promise: nil)
    }
}

/// Asks every connection to send GOAWAY and finish its calls.
struct GracefulShutdownEvent: Sendable {}
