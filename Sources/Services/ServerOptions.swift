public import ArgumentParser
public import Logging
public import RPC
import Signatures

/// The transport's flags, shared by the servers (swift-argument-parser). Every flag can also
/// come from the environment: `--max-connections` from `ESAYLOV_MAX_CONNECTIONS`, and so on
/// (`ServerConfiguration`); the command line wins.
public struct TransportFlags: ParsableArguments {
    public init() {}

    @Option(help: "Address of the gRPC listeners.")
    var host = "127.0.0.1"
    @Option(help: "h2c (cleartext HTTP/2) port; 0 binds any free port, printed at start.")
    var port = 50051
    @Option(help: "Event loop threads (default: the number of cores).")
    var threads: Int?
    @Option(help: "Largest request message in bytes, judged from its length prefix.")
    var maxReceiveBytes = 4 << 20
    @Option(help: "SETTINGS_MAX_CONCURRENT_STREAMS advertised to clients.")
    var maxStreams = 100
    @Option(help: "Database connections for transactions and blocking threads, shared out among the event loops for reads.")
    var dbPool = 8
    @Option(help: "Open connections accepted at once; more are closed on accept.")
    var maxConnections = 4096
    @Option(help: "Open connections one address may hold.")
    var maxConnectionsPerPeer = 64
    @Flag(help: "Loopback addresses are not held to --max-connections-per-peer.")
    var peerLimitExemptsLoopback = false
    @Option(help: "A client must send its HTTP/2 preface and SETTINGS within this many milliseconds.")
    var handshakeTimeoutMs = 10_000
    @Option(help: "A connection with no call for this many seconds is sent GOAWAY.")
    var idleTimeoutS = 300
    @Option(help: "With streams open and nothing heard for this many milliseconds, a PING goes out.")
    var keepaliveMs = 30_000
    @Option(help: "A PING unanswered for this many milliseconds closes the connection.")
    var keepaliveTimeoutMs = 20_000
    @Option(help: "Watch streams open at once on one connection.")
    var maxWatchesPerConnection = 16
    @Option(help: "Watch streams open at once from one address.")
    var maxWatchesPerPeer = 64
    @Option(help: "A call without a deadline gets its request (or each streamed message) within this many milliseconds.")
    var receiveTimeoutMs = 30_000
    @Option(help: "An ended call's response may wait this many milliseconds for the client's window, then the stream is reset.")
    var finishLingerMs = 10_000
    @Option(help: "Request bytes one connection may have in flight or buffered (its flow-control window).")
    var connectionWindowBytes = 16 << 20
    @Option(help: "Request bytes the process holds at most; past it new calls get RESOURCE_EXHAUSTED.")
    var receiveBudgetBytes = 256 << 20
    @Option(help: "TLS certificate chain (PEM, leaf first); with --tls-key, HTTP/2 over TLS on --tls-port. SIGHUP reads it again.")
    var tlsCert: String?
    @Option(help: "TLS private key (PEM).")
    var tlsKey: String?
    @Option(help: "Mutual TLS: clients must present a certificate from this CA file (PEM).")
    var tlsClientCa: String?
    @Option(help: "TLS port; 0 binds any free port, printed at start.")
    var tlsPort = 50443
    @Flag(help: "No h2c listener (production: TLS only).")
    var noPlaintext = false
    @Option(help: "A TLS handshake must finish within this many milliseconds.")
    var tlsHandshakeTimeoutMs = 10_000
    @Option(help: "TLS handshakes in progress at once; more connections are closed on accept.")
    var maxTlsHandshakes = 256
    @Option(help: "trace, debug (every call's end: method, request id, peer, status, duration), info, notice, warning, error or critical.")
    var logLevel = "info"
    @Option(help: "text, or json (one object a line, for log shippers).")
    var logFormat = "text"

    public func validate() throws {
        do { _ = try ServerOptions(self) } catch { throw ValidationError(error.message) }
    }
}

/// The transport's configuration, as the flags give it.
public struct ServerOptions: Sendable {
    public var configuration = RPCServer.Configuration()
    public var logLevel: Logger.Level = .info
    /// `--log-format json`: one object a line.
    public var logJSON = false

    /// Checks every flag against its range, naming the flag when one is out of it.
    public init(_ flags: TransportFlags) throws(OptionError) {
        var c = RPCServer.Configuration()
        c.host = flags.host
        c.port = try bounded(flags.port, "port", 0...65535)
        if let threads = flags.threads { c.eventLoopThreads = try bounded(threads, "threads", 1...256) }
        c.maxReceiveMessageSize = try bounded(flags.maxReceiveBytes, "max-receive-bytes", 1...(64 << 20))
        c.maxConcurrentStreams = UInt32(try bounded(flags.maxStreams, "max-streams", 1...10_000))
        c.blockingPoolThreads = try bounded(flags.dbPool, "db-pool", 1...256)
        c.maxConnections = try bounded(flags.maxConnections, "max-connections", 1...1_000_000)
        c.maxConnectionsPerPeer = try bounded(flags.maxConnectionsPerPeer, "max-connections-per-peer", 1...1_000_000)
        c.peerLimitExemptsLoopback = flags.peerLimitExemptsLoopback
        c.handshakeTimeout = .milliseconds(try bounded(flags.handshakeTimeoutMs, "handshake-timeout-ms", 1...600_000))
        c.idleTimeout = .seconds(try bounded(flags.idleTimeoutS, "idle-timeout-s", 1...86_400))
        c.keepaliveInterval = .milliseconds(try bounded(flags.keepaliveMs, "keepalive-ms", 1...3_600_000))
        c.keepaliveTimeout = .milliseconds(try bounded(flags.keepaliveTimeoutMs, "keepalive-timeout-ms", 1...3_600_000))
        c.maxWatchesPerConnection = try bounded(flags.maxWatchesPerConnection, "max-watches-per-connection", 1...10_000)
        c.maxWatchesPerPeer = try bounded(flags.maxWatchesPerPeer, "max-watches-per-peer", 1...1_000_000)
        c.receiveTimeout = .milliseconds(try bounded(flags.receiveTimeoutMs, "receive-timeout-ms", 1...3_600_000))
        c.finishLinger = .milliseconds(try bounded(flags.finishLingerMs, "finish-linger-ms", 1...3_600_000))
        c.connectionWindowSize = Int32(try bounded(flags.connectionWindowBytes, "connection-window-bytes", 65_535...(1 << 30)))
        c.receiveBudget = try bounded(flags.receiveBudgetBytes, "receive-budget-bytes", (1 << 20)...(1 << 40))
        c.tlsPort = try bounded(flags.tlsPort, "tls-port", 0...65535)
        c.tlsHandshakeTimeout = .milliseconds(try bounded(flags.tlsHandshakeTimeoutMs, "tls-handshake-timeout-ms", 1...600_000))
        c.maxTLSHandshakes = try bounded(flags.maxTlsHandshakes, "max-tls-handshakes", 1...1_000_000)
        c.plaintext = !flags.noPlaintext
        switch (flags.tlsCert, flags.tlsKey) {
        case (let cert?, let key?): c.tls = TLSServerFiles(certificateChain: cert, privateKey: key, clientCA: flags.tlsClientCa)
        case (nil, nil):
            if flags.tlsClientCa != nil { throw OptionError(message: "--tls-client-ca needs --tls-cert and --tls-key") }
            if flags.noPlaintext { throw OptionError(message: "--no-plaintext needs --tls-cert and --tls-key (the server would have no listener)") }
        default: throw OptionError(message: "--tls-cert and --tls-key go together")
        }
        configuration = c
        guard let level = Logger.Level(rawValue: flags.logLevel) else {
            throw OptionError(message: "--log-level must be trace, debug, info, notice, warning, error or critical, got \(flags.logLevel)")
        }
        logLevel = level
        switch flags.logFormat {
        case "text": logJSON = false
        case "json": logJSON = true
        default: throw OptionError(message: "--log-format must be text or json, got \(flags.logFormat)")
        }
    }

    /// The database connections the configuration asks for (`--db-pool`): the blocking pool's
    /// size, and the connections for deferred calls, shared out among the event loops.
    public var poolSize: (total: Int, perEventLoop: Int) {
        let c = configuration
        return (c.blockingPoolThreads, max(1, (c.blockingPoolThreads + c.eventLoopThreads - 1) / max(1, c.eventLoopThreads)))
    }
}

/// `value` when `range` holds it; otherwise the error names the flag and the range.
func bounded(_ value: Int, _ flag: String, _ range: ClosedRange<Int>) throws(OptionError) -> Int {
    guard range.contains(value) else {
        throw OptionError(message: "--\(flag) must be a whole number in \(range.lowerBound)...\(range.upperBound), got \(value)")
    }
    return value
}

public struct OptionError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
