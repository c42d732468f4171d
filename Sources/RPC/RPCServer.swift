public import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A gRPC server over HTTP/2 cleartext (h2c): nghttp2 for HTTP/2, SwiftNIO for sockets.
public final class RPCServer: Sendable {
    public struct Configuration: Sendable {
        public var host = "127.0.0.1"
        /// 0 binds any free port; `start()` returns the one bound.
        public var port = 50051
        public var eventLoopThreads = System.coreCount
        /// SETTINGS_MAX_CONCURRENT_STREAMS advertised to clients.
        public var maxConcurrentStreams: UInt32 = 100
        /// Largest request header list accepted, counted as RFC 9113 §6.5.2 does.
        public var maxHeaderListSize = 32 * 1024
        /// Largest request message, judged from its length prefix before buffering.
        public var maxReceiveMessageSize = 4 * 1024 * 1024
        public var streamWindowSize: UInt32 = 1 << 20
        public var connectionWindowSize: Int32 = 8 << 20
        /// Response bytes buffered per stream before a streaming write suspends.
        public var responseBufferHighWater = 256 * 1024
        /// Request bytes queued per streaming call before the window stops reopening.
        public var requestBufferLimit = 256 * 1024
        /// Threads of the pool for unary handlers placed on `.blockingPool`.
        public var blockingPoolThreads = 8
        /// Calls that may wait for the blocking pool before new ones get RESOURCE_EXHAUSTED.
        public var blockingQueueLimit = 1024
        /// A connection with no call for this long is sent GOAWAY.
        public var idleTimeout: Duration = .seconds(300)
        /// A client must send its preface and SETTINGS within this time.
        public var handshakeTimeout: Duration = .seconds(10)
        /// Open connections accepted at once; more are closed on accept.
        public var maxConnections = 4096
        /// RST_STREAM frames a client may cause us to send (MadeYouReset, CVE-2025-8671), and
        /// may send itself (rapid reset, CVE-2023-44487): a burst, then a rate per second.
        public var resetBurst = 200
        public var resetsPerSecond = 50
        /// PING and SETTINGS frames a client may send: a burst, then a rate per second.
        public var controlFrameBurst = 100
        public var controlFramesPerSecond = 20
        /// CONTINUATION frames allowed after one HEADERS frame (CVE-2024-28182).
        public var maxContinuations = 8
        /// The furthest deadline a call may have; a later one is brought down to it.
        public var maxDeadline: Duration = .seconds(24 * 3600)

        public init() {}
    }

    let core: ServerCore
    private let group: MultiThreadedEventLoopGroup
    private let channel: Mutex<(any Channel)?> = Mutex(nil)
    private let connections = ConnectionRegistry()
    private let stopping = Atomic<Bool>(false)

    /// Every call passes the server's own interceptors (request id, call log, deadline bound),
    /// then `interceptors` in order (authentication, metrics, …).
    public init(configuration: Configuration, router: RPCRouter, interceptors: [any ServerInterceptor] = [], logger: Logger) {
        let builtIn: [any ServerInterceptor] = [
            RequestIDInterceptor(), CallLogInterceptor(logger: logger), DeadlineInterceptor(maximum: configuration.maxDeadline),
        ]
        core = ServerCore(configuration: configuration, router: router, interceptors: builtIn + interceptors, logger: logger)
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.eventLoopThreads))
    }

    /// Binds and starts accepting; returns the port actually bound.
    @discardableResult
    public func start() async throws -> Int {
        core.pool.start()
        let core = self.core
        let connections = self.connections
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // TCP_NODELAY lives at the TCP level: .socketOption would set SOL_SOCKET option 1, SO_DEBUG.
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 256 * 1024, high: 1024 * 1024))
            // Start reads small: an idle connection holds its receive buffer, and one that
            // carries traffic grows it (up to 64 KiB) within a few reads.
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 256, maximum: 65536))
            .childChannelInitializer { channel in
                guard connections.count < core.configuration.maxConnections else {
                    core.logger.warning("connection limit reached; refusing a connection")
                    return channel.close()
                }
                connections.add(channel)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(HTTP2ServerHandler(core: core))
                }
            }
        let ch = try await bootstrap.bind(host: core.configuration.host, port: core.configuration.port).get()
        channel.withLock { $0 = ch }
        return ch.localAddress?.port ?? core.configuration.port
    }

    /// Completes when the listening socket closes.
    public func waitUntilClosed() async throws {
        guard let ch = channel.withLock({ $0 }) else { return }
        try await ch.closeFuture.get()
    }

    /// Stops accepting, sends GOAWAY on every connection, lets calls finish for `grace`,
    /// then closes what is left. Only the first call does anything.
    public func shutdownGracefully(grace: Duration = .seconds(5)) async {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if let ch = channel.withLock({ $0 }) { try? await ch.close() }
        for c in connections.all { c.pipeline.fireUserInboundEventTriggered(GracefulShutdownEvent()) }
        let until = ContinuousClock.now + grace
        while ContinuousClock.now < until, !connections.isEmpty {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for c in connections.all { try? await c.close() }
        for hook in core.router.shutdownHooks { await hook() }
        try? await core.pool.shutdownGracefully()
        try? await group.shutdownGracefully()
    }

    /// Calls answered so far, by status code.
    public var statusCounts: [RPCError.Code: Int] { core.statusCounts }
}

/// What every connection of one server shares.
final class ServerCore: Sendable {
    let configuration: RPCServer.Configuration
    let router: RPCRouter
    let logger: Logger
    let nghttp2: NGHTTP2Callbacks
    let pool: NIOThreadPool
    let executor: CallExecutor
    private let blockingInFlight = Atomic<Int>(0)
    private let counts = Mutex([Int](repeating: 0, count: 17))

    init(configuration: RPCServer.Configuration, router: RPCRouter, interceptors: [any ServerInterceptor], logger: Logger) {
        self.configuration = configuration
        self.executor = CallExecutor(interceptors: interceptors, logger: logger)
        self.router = router
        self.logger = logger
        self.nghttp2 = NGHTTP2Callbacks(build: installCallbacks, configure: { configureOptions($0, configuration) })
        self.pool = NIOThreadPool(numberOfThreads: max(1, configuration.blockingPoolThreads))
    }

    func count(_ code: RPCError.Code) {
        counts.withLock { c in if c.indices.contains(code.rawValue) { c[code.rawValue] += 1 } }
    }

    var statusCounts: [RPCError.Code: Int] {
        var out: [RPCError.Code: Int] = [:]
        for (i, n) in counts.withLock({ $0 }).enumerated() {
            if n > 0 { out[RPCError.Code(rawValue: i)] = n }
        }
        return out
    }

    /// Runs `work` on the blocking pool, or returns nil when the pool's queue is full.
    func runBlocking<T: Sendable>(
        on loop: any EventLoop, _ work: @escaping @Sendable () throws -> T
    ) -> EventLoopFuture<T>? {
        let queued = blockingInFlight.add(1, ordering: .relaxed).newValue
        if queued > configuration.blockingQueueLimit {
            blockingInFlight.subtract(1, ordering: .relaxed)
            return nil
        }
        let future = pool.runIfActive(eventLoop: loop) { try work() }
        future.whenComplete { [self] _ in blockingInFlight.subtract(1, ordering: .relaxed) }
        return future
    }
}

/// The open connections, for graceful shutdown.
final class ConnectionRegistry: Sendable {
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])

    func add(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        channels.withLock { $0[id] = channel }
        channel.closeFuture.whenComplete { [self] _ in _ = channels.withLock { $0.removeValue(forKey: id) } }
    }

    var all: [any Channel] { channels.withLock { Array($0.values) } }
    var count: Int { channels.withLock { $0.count } }
    var isEmpty: Bool { channels.withLock { $0.isEmpty } }
}
