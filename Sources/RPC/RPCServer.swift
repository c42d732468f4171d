public import Logging
import NIOCore
public import Signatures
import NIOPosix
public import ServiceLifecycle
import Synchronization

/// A gRPC server over HTTP/2: nghttp2 for HTTP/2, OpenSSL for TLS, SwiftNIO for sockets.
/// It listens for cleartext HTTP/2 (h2c, loopback development) on `port` unless `plaintext`
/// is off, and with `tls` set for HTTP/2 over TLS on `tlsPort`.
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
        /// The flow-control window a connection gets: the most request bytes one client may
        /// have in flight or buffered with us. Reserved from `receiveBudget`.
        public var connectionWindowSize: Int32 = 16 << 20
        /// Request bytes the whole process holds at most (windows granted, buffers, what
        /// decompression made); past it, new calls get RESOURCE_EXHAUSTED before their body is read.
        public var receiveBudget = 256 << 20
        /// Bytes that decompression may produce per connection: a burst, then a rate per
        /// second. Past it, compressed messages wait (their window with them), so that a trickle
        /// of small gzip bombs cannot keep an event loop busy.
        public var inflateBurst = 8 << 20
        public var inflatePerSecond = 8 << 20
        /// Response bytes a connection may have queued beyond what its client has read; past
        /// it the connection stops reading requests until they drain.
        public var outputBudget = 16 << 20
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
        /// Open connections one remote address may hold; more are closed on accept. Loopback
        /// counts like any address unless `peerLimitExemptsLoopback`.
        public var maxConnectionsPerPeer = 64
        public var peerLimitExemptsLoopback = false
        /// A refused address is logged at most once in this interval.
        public var refusalLogInterval: Duration = .seconds(60)
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
        /// A call without a deadline must have its request message (for unary and
        /// server-streaming calls: all of its input; for streaming ones: each message once it
        /// has begun) within this time, or it ends DEADLINE_EXCEEDED.
        public var receiveTimeout: Duration = .seconds(30)
        /// How long the response of a call that has ended may wait for the client's window
        /// before the stream is reset (a client that stops reading holds nothing for ever).
        public var finishLinger: Duration = .seconds(10)
        /// Long-lived server streams (watches), by method path: at most
        /// `maxWatchesPerConnection` open on a connection and `maxWatchesPerPeer` on one
        /// address; more are refused with RESOURCE_EXHAUSTED.
        public var watchMethods: Set<String> = ["/grpc.health.v1.Health/Watch", "/esaylov.v1.RequestService/WatchRequests"]
        public var maxWatchesPerConnection = 16
        public var maxWatchesPerPeer = 64
        /// A connection with open streams and no traffic for this long is sent a PING; one
        /// that does not answer within `keepaliveTimeout` is closed (a dead peer is noticed).
        public var keepaliveInterval: Duration = .seconds(30)
        public var keepaliveTimeout: Duration = .seconds(20)
        /// How long calls in flight may take to finish once a graceful shutdown began.
        public var shutdownGrace: Duration = .seconds(5)
        /// Whether to listen for h2c on `port`.
        public var plaintext = true
        /// The TLS listener's certificate, key and (mutual TLS) client CA; nil: no TLS listener.
        public var tls: TLSServerFiles?
        /// 0 binds any free port.
        public var tlsPort = 50443
        /// A TLS handshake must finish within this time (then `handshakeTimeout` bounds the
        /// HTTP/2 preface).
        public var tlsHandshakeTimeout: Duration = .seconds(10)
        /// TLS handshakes in progress at once (each costs a signature of the server); more
        /// connections are closed on accept until some finish.
        public var maxTLSHandshakes = 256

        public init() {}
    }

    let core: ServerCore
    private let group: MultiThreadedEventLoopGroup
    private let channel: Mutex<(any Channel)?> = Mutex(nil)
    private let tlsChannel: Mutex<(any Channel)?> = Mutex(nil)
    private let tlsContexts: Mutex<TLSContextStore?> = Mutex(nil)
    private let connections = ConnectionRegistry()
    /// Connections open now (for metrics).
    public var openConnections: Int { connections.count }
    private let draining = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let started = Atomic<Bool>(false)

    /// Every call passes the server's own interceptors (request id, call log, deadline bound),
    /// then `interceptors` in order (authentication, metrics, …).
    public init(configuration: Configuration, router: RPCRouter, interceptors: [any ServerInterceptor] = [], logger: Logger) {
        let builtIn: [any ServerInterceptor] = [
            RequestIDInterceptor(), CallLogInterceptor(logger: logger), DeadlineInterceptor(maximum: configuration.maxDeadline),
        ]
        core = ServerCore(configuration: configuration, router: router, interceptors: builtIn + interceptors, logger: logger)
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.eventLoopThreads))
    }

    /// Binds and starts accepting; returns the port actually bound (the h2c one, or the TLS
    /// one when there is no h2c listener). `boundPorts` has both.
    @discardableResult
    public func start() async throws -> Int {
        guard !started.exchange(true, ordering: .acquiringAndReleasing) else {
            let ports = boundPorts
            return ports.plaintext ?? ports.tls ?? core.configuration.port
        }
        let c = core.configuration
        guard c.plaintext || c.tls != nil else { throw TLSError(reason: "no listener: plaintext is off and no TLS certificate is configured") }
        let store = try c.tls.map { files throws(TLSError) in try TLSContextStore(files: files) }
        tlsContexts.withLock { $0 = store }
        core.pool.start()
        if c.plaintext {
            let ch = try await bind(port: c.port, tls: nil)
            channel.withLock { $0 = ch }
        }
        if let store {
            let ch = try await bind(port: c.tlsPort, tls: store)
            tlsChannel.withLock { $0 = ch }
        }
        let ports = boundPorts
        return ports.plaintext ?? ports.tls ?? c.port
    }

    /// The ports bound: h2c and TLS (nil where there is no such listener).
    public var boundPorts: (plaintext: Int?, tls: Int?) {
        (channel.withLock { $0?.localAddress?.port }, tlsChannel.withLock { $0?.localAddress?.port })
    }

    /// The certificate the TLS listener serves now.
    public var tlsCertificate: CertificateInfo? { tlsContexts.withLock { $0 }?.context.certificate }

    /// Reads the TLS certificate, key and client CA files again (SIGHUP): new connections get
    /// them, open ones keep theirs. On failure the ones in use stay and the error says why.
    @discardableResult
    public func reloadTLS() throws(TLSError) -> CertificateInfo? {
        guard let store = tlsContexts.withLock({ $0 }) else { return nil }
        return try store.reload().certificate
    }

    private func bind(port: Int, tls: TLSContextStore?) async throws -> any Channel {
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
                let c = core.configuration
                let peer = channel.remoteAddress?.ipAddress ?? "unknown"
                let exempt = c.peerLimitExemptsLoopback && (peer.hasPrefix("127.") || peer == "::1")
                // A TLS connection takes its place among the handshakes in progress on accept.
                let slot = tls == nil ? nil : HandshakeCount(core.tlsHandshakes)
                let refusal: (reason: String, bound: ResourceBound)?
                if connections.count >= c.maxConnections {
                    refusal = ("the server's connection limit (\(c.maxConnections)) is reached", .connections)
                } else if tls != nil, slot == nil {
                    refusal = ("\(c.maxTLSHandshakes) TLS handshakes are in progress", .tlsHandshakes)
                } else if !connections.add(channel, peer: peer, limit: exempt ? .max : c.maxConnectionsPerPeer) {
                    refusal = ("the address holds \(c.maxConnectionsPerPeer) connections already", .connectionsPerPeer)
                } else {
                    refusal = nil
                }
                if let refusal {
                    core.bounds.hit(refusal.bound)
                    if connections.shouldLogRefusal(of: peer, interval: c.refusalLogInterval) {
                        core.logger.warning("refusing connections", metadata: ["peer": "\(peer)", "reason": "\(refusal.reason)"])
                    }
                    return channel.close()
                }
                return channel.eventLoop.makeCompletedFuture {
                    if let tls, let slot {
                        try channel.pipeline.syncOperations.addHandler(TLSHandler(core: core, context: tls.context, slot: slot))
                    }
                    try channel.pipeline.syncOperations.addHandler(HTTP2ServerHandler(core: core))
                }
            }
        return try await bootstrap.bind(host: core.configuration.host, port: port).get()
    }

    /// Completes when the listening socket closes.
    public func waitUntilClosed() async throws {
        guard let ch = channel.withLock({ $0 }) ?? tlsChannel.withLock({ $0 }) else { return }
        try await ch.closeFuture.get()
    }

    /// Stops accepting, sends GOAWAY on every connection, lets calls finish for `grace`, then
    /// closes what is left. The event loops keep running (services that live on them, such as
    /// the database's connections, close after this); `shutdownGracefully` stops them. Only the
    /// first call does anything.
    public func drain(grace: Duration) async {
        guard !draining.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if let ch = channel.withLock({ $0 }) { try? await ch.close() }
        if let ch = tlsChannel.withLock({ $0 }) { try? await ch.close() }
        for c in connections.all { c.pipeline.fireUserInboundEventTriggered(GracefulShutdownEvent()) }
        await connections.waitUntilEmpty(timeout: grace)
        for c in connections.all { try? await c.close() }
    }

    /// Drains (`drain(grace:)`), then stops the blocking pool and the event loops.
    public func shutdownGracefully(grace: Duration = .seconds(5)) async {
        await drain(grace: grace)
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        try? await core.pool.shutdownGracefully()
        try? await group.shutdownGracefully()
    }

    /// How often each resource bound was hit since the start.
    public var boundsHit: [ResourceBound: Int] { core.bounds.snapshot }

    /// Bytes read from and written to client connections (HTTP/2 frames; TLS adds its records' overhead).
    public var traffic: TrafficCounters { core.traffic }

    /// TLS handshakes in progress now.
    public var tlsHandshakesInProgress: Int { core.tlsHandshakes.inProgress }

    /// Calls answered so far, by status code.
    public var statusCounts: [RPCError.Code: Int] { core.statusCounts }
}

/// Under a `ServiceGroup`: serves (binding first unless `start()` already did) until the
/// group shuts down gracefully, then drains. The event loops stop in `shutdownGracefully()`,
/// called once every service that uses them has finished.
extension RPCServer: Service {
    public func run() async throws {
        try await start()
        try? await gracefulShutdown()
        await drain(grace: core.configuration.shutdownGrace)
    }
}

/// What every connection of one server shares.
final class ServerCore: Sendable {
    let configuration: RPCServer.Configuration
    let router: RPCRouter
    let logger: Logger
    let nghttp2Options: NGHTTP2Options
    let pool: NIOThreadPool
    let executor: CallExecutor
    let receiveBudget: ReceiveBudget
    /// TLS handshakes in progress.
    let tlsHandshakes: TLSHandshakeCounter
    /// How often each resource bound was hit.
    let bounds = BoundCounters()
    /// Bytes read from and written to connections (TLS records included).
    let traffic = TrafficCounters()
    /// Watch streams open per remote address.
    let watchesPerPeer = Mutex<[String: Int]>([:])
    private let blockingInFlight = Atomic<Int>(0)
    /// Calls answered, by status code: one atomic add a call.
    private let counts = InlineArray<17, Atomic<Int>> { _ in Atomic(0) }

    init(configuration: RPCServer.Configuration, router: RPCRouter, interceptors: [any ServerInterceptor], logger: Logger) {
        self.configuration = configuration
        self.executor = CallExecutor(interceptors: interceptors, logger: logger)
        self.receiveBudget = ReceiveBudget(limit: configuration.receiveBudget)
        self.tlsHandshakes = TLSHandshakeCounter(limit: configuration.maxTLSHandshakes)
        self.router = router
        self.logger = logger
        self.nghttp2Options = NGHTTP2Options(configuration)
        self.pool = NIOThreadPool(numberOfThreads: max(1, configuration.blockingPoolThreads))
    }

    func count(_ code: RPCError.Code) {
        guard counts.indices.contains(code.rawValue) else { return }
        counts[code.rawValue].add(1, ordering: .relaxed)
    }

    var statusCounts: [RPCError.Code: Int] {
        var out: [RPCError.Code: Int] = [:]
        for i in counts.indices {
            let n = counts[i].load(ordering: .relaxed)
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
            bounds.hit(.blockingQueue)
            return nil
        }
        let future = pool.runIfActive(eventLoop: loop) { try work() }
        future.whenComplete { [self] _ in blockingInFlight.subtract(1, ordering: .relaxed) }
        return future
    }
}

/// The open connections, for graceful shutdown, counted per remote address.
final class ConnectionRegistry: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var perPeer: [String: Int] = [:]
        /// When each refused address was last logged (bounded: old entries go first).
        var refusalsLogged: [String: ContinuousClock.Instant] = [:]
        /// Tasks waiting for the last connection to close.
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
    }
    private let state = Mutex(State())

    /// Registers `channel` unless `peer` already holds `limit` connections.
    func add(_ channel: any Channel, peer: String, limit: Int) -> Bool {
        let id = ObjectIdentifier(channel)
        let added = state.withLock { s -> Bool in
            let held = s.perPeer[peer, default: 0]
            guard held < limit else { return false }
            s.perPeer[peer] = held + 1
            s.channels[id] = channel
            return true
        }
        guard added else { return false }
        channel.closeFuture.whenComplete { [self] _ in
            let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
                s.channels.removeValue(forKey: id)
                let left = s.perPeer[peer, default: 1] - 1
                s.perPeer[peer] = left > 0 ? left : nil
                guard s.channels.isEmpty else { return [] }
                defer { s.waiters = [:] }
                return Array(s.waiters.values)
            }
            for w in waiters { w.resume() }
        }
        return true
    }

    /// True when a refusal of `peer` is to be logged: once per `interval` per address.
    func shouldLogRefusal(of peer: String, interval: Duration) -> Bool {
        let now = ContinuousClock.now
        return state.withLock { s in
            if let last = s.refusalsLogged[peer], now - last < interval { return false }
            if s.refusalsLogged.count >= 4096 {
                s.refusalsLogged = s.refusalsLogged.filter { now - $0.value < interval }
                if s.refusalsLogged.count >= 4096 { return false }
            }
            s.refusalsLogged[peer] = now
            return true
        }
    }

    var all: [any Channel] { state.withLock { Array($0.channels.values) } }
    var count: Int { state.withLock { $0.channels.count } }
    var isEmpty: Bool { state.withLock { $0.channels.isEmpty } }

    /// Returns once no connection is open, or after `timeout`.
    func waitUntilEmpty(timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.emptied() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Returns when no connection is open, or when the task is cancelled.
    private func emptied() async {
        let id = state.withLock { s in
            defer { s.nextWaiter += 1 }
            return s.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s -> Bool in
                    if s.channels.isEmpty || Task.isCancelled { return true }
                    s.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}
