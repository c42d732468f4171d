import NIOCore
import NIOHTTP1
import NIOPosix
public import ServiceLifecycle
public import Store

/// The operators' HTTP/1.1 port (default 127.0.0.1:9090), apart from the gRPC port:
///   GET /healthz  200 while the process serves (liveness)
///   GET /metrics  Prometheus text (`ServerMetrics`)
///   GET /readyz   200 while the database answers and the server is not draining (it serves
///                 only once the database is migrated to this build); 503 with the reason
///                 otherwise (take it out of the load balancer, do not restart it)
/// Anything else: 404 (405 for a method other than GET or HEAD). One event loop of its own, so a
/// saturated gRPC port does not make a probe time out; requests are small and answered at once.
public struct OperationsServer: Service {
    let host: String
    let port: Int
    let health: HealthService
    let database: Database?
    let metrics: ServerMetrics

    public init(host: String, port: Int, health: HealthService, database: Database?, metrics: ServerMetrics) {
        self.host = host
        self.port = port
        self.health = health
        self.database = database
        self.metrics = metrics
    }

    /// Why the server is not ready; nil when it is.
    static func unreadiness(health: HealthService, database: Database?) -> String? {
        if let database, !database.isReady { return "the database is unreachable" }
        if health.status(of: "") != .serving { return "not serving: draining" }
        return nil
    }

    public func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let health = self.health, database = self.database, metrics = self.metrics
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 64)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMapThrowing {
                        try channel.pipeline.syncOperations.addHandler(OperationsHandler(health: health, database: database, metrics: metrics))
                    }
                }
                .childChannelOption(.maxMessagesPerRead, value: 4)
                .bind(host: host, port: port).get()
        } catch {
            try? await group.shutdownGracefully()
            ServerMain.printError("esaylov-server: cannot listen for operations on \(host):\(port): \(error) (--ops-port)")
            throw error
        }
        ServerMain.writeLine("esaylov-server: operations on \(host):\(channel.localAddress?.port ?? port)", to: 1)
        try? await gracefulShutdown()
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

/// Answers one operations request at a time on a connection.
final class OperationsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let health: HealthService
    let database: Database?
    let metrics: ServerMetrics
    private var head: HTTPRequestHead?

    init(health: HealthService, database: Database?, metrics: ServerMetrics) {
        self.health = health
        self.database = database
        self.metrics = metrics
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break  // no path takes a body; it is read and dropped
        case .end:
            guard let h = head else { return }
            head = nil
            let (status, text, type) = answer(h)
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: type)
            headers.add(name: "content-length", value: String(text.count))
            headers.add(name: "cache-control", value: "no-store")
            if !h.isKeepAlive { headers.add(name: "connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: status, headers: headers))), promise: nil)
            if h.method != .HEAD {
                var body = context.channel.allocator.buffer(capacity: text.count)
                body.writeBytes(text)
                context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            }
            let keep = h.isKeepAlive
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in if !keep { channel.close(promise: nil) } }
        }
    }

    func answer(_ h: HTTPRequestHead) -> (HTTPResponseStatus, [UInt8], String) {
        let plain = "text/plain; charset=utf-8"
        guard h.method == .GET || h.method == .HEAD else { return (.methodNotAllowed, Array("GET or HEAD\n".utf8), plain) }
        switch h.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? "" {
        case "/healthz": return (.ok, Array("ok\n".utf8), plain)
        case "/readyz":
            if let why = OperationsServer.unreadiness(health: health, database: database) { return (.serviceUnavailable, Array((why + "\n").utf8), plain) }
            return (.ok, Array("ready\n".utf8), plain)
        case "/metrics": return (.ok, metrics.exposition(), "text/plain; version=0.0.4; charset=utf-8")
        default: return (.notFound, Array("paths: /healthz /readyz /metrics\n".utf8), plain)
        }
    }
}
