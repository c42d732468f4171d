internal import CAllocator
import Logging
public import RPC
public import ServiceLifecycle
import Signatures
import UnixSignals
#if canImport(Glibc)
import Glibc
#endif

/// A service whose graceful shutdown comes before the server's drain (it ends calls that would
/// otherwise hold the drain for its whole grace).
public protocol StopsBeforeServer: Service {}

/// Runs a server until SIGTERM or SIGINT: prints `listening on HOST:PORT` once bound (the
/// line scripts and tests wait for), then on a signal turns health NOT_SERVING, sends
/// GOAWAY, lets calls finish, closes what the services hold, and prints the count of answered
/// calls by status. The services (those `register` returns, the server, health) run in one
/// `ServiceGroup`, which shuts them down in reverse order on the signal.
public enum ServerMain {
    /// Keeps glibc from handing memory back to the system on every large free. By default it
    /// adapts its thresholds as it goes, and an event loop that sends big responses can fall
    /// into trimming its arena (a madvise and fresh page faults) after each one: 64 KiB
    /// unary calls then ran at a fifth of their usual rate in some runs and not in others.
    /// Fixed thresholds end that; free memory above 32 MiB at the top of an arena still goes back.
    /// Blocks of 1 MiB and more (large request messages and their decoded copies) are mapped
    /// on their own, so that they go back to the system when freed instead of fragmenting an
    /// arena: a client sending 4 MiB messages then leaves no lasting growth behind.
    static func tuneAllocator() {
        _ = esaylov_fix_malloc_thresholds(1 << 20, 32 << 20)
    }

    /// `configuration`: the effective flags (`ServerConfiguration.parse`), logged at start with
    /// `secrets` (such as database URLs, their passwords masked) beside them.
    public static func run(
        name: String, options: ServerOptions, configuration: [ServerConfiguration.Entry] = [], secrets: [String: String] = [:],
        health: HealthService, observe: ((RPCServer) -> Void)? = nil,
        register: (inout RPCRouter, inout [any ServerInterceptor]) throws(OptionError) -> [any Service]
    ) async -> Int32 {
        tuneAllocator()
        let level = options.logLevel
        if options.logJSON {
            LoggingSystem.bootstrap { label in
                var h = JSONLogHandler(label: label)
                h.logLevel = level
                return h
            }
        } else {
            LoggingSystem.bootstrap { label in
                var h = StreamLogHandler.standardError(label: label)
                h.logLevel = level
                return h
            }
        }
        var logger = Logger(label: name)
        logger.logLevel = level
        var effective: Logger.Metadata = [:]
        for entry in configuration {
            // A URL may carry credentials.
            let value = entry.value.contains("://") ? ServerConfiguration.masked(url: entry.value) : entry.value
            effective[entry.name] = entry.source == .defaultValue ? "\(value)" : "\(value) (\(entry.source.rawValue))"
        }
        for (key, url) in secrets { effective[key] = "\(ServerConfiguration.masked(url: url))" }
        logger.info("configuration", metadata: effective)
        var router = RPCRouter()
        let services: [any Service]
        var interceptors: [any ServerInterceptor] = []
        do {
            services = try register(&router, &interceptors)
        } catch {
            printError("\(name): \(error.message)")
            return 1
        }
        // Reflection describes everything registered, itself included.
        let reflected = router.registeredServices + [ReflectionV1Service.serviceName, ReflectionV1AlphaService.serviceName]
        do {
            let index = try ReflectionIndex(services: reflected)
            router.register(ReflectionV1Service(index: index))
            router.register(ReflectionV1AlphaService(index: index))
        } catch {
            printError("\(name): the built-in descriptor set does not decode: \(error)")
            return 1
        }
        for service in router.registeredServices { health.setStatus(.serving, for: service) }
        let server = RPCServer(configuration: options.configuration, router: router, interceptors: interceptors, logger: logger)
        observe?(server)
        do {
            try await server.start()
        } catch let error as TLSError {
            printError("\(name): TLS: \(error.reason)")
            return 1
        } catch {
            let c = options.configuration
            printError("\(name): cannot listen on \(c.host):\(c.plaintext ? c.port : c.tlsPort)\(c.plaintext && c.tls != nil ? " and \(c.tlsPort)" : ""): \(error)")
            return 1
        }
        let ports = server.boundPorts
        if let port = ports.plaintext { writeLine("\(name): listening on \(options.configuration.host):\(port)", to: 1) }
        if let port = ports.tls, let cert = server.tlsCertificate {
            writeLine("\(name): listening with TLS on \(options.configuration.host):\(port)", to: 1)
            logger.info("TLS certificate", metadata: TLSReloader.describe(cert, clientCA: options.configuration.tls?.clientCA))
        }

        // Shut down in reverse: health turns NOT_SERVING, the server drains, then the services
        // it used (the database) close, while the event loops still run; then they stop.
        // Those that end long streams (watches) stop before the server drains, so that the
        // drain does not wait its whole grace for them.
        let beforeServer = services.filter { $0 is any StopsBeforeServer }
        let afterServer = services.filter { !($0 is any StopsBeforeServer) }
        let reloader: [any Service] = ports.tls == nil ? [] : [TLSReloader(server: server, logger: logger)]
        let group = ServiceGroup(configuration: .init(
            services: afterServer + [server] + reloader + beforeServer + [health], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            logger.error("a service failed", metadata: ["error": "\(type(of: error))"])
        }
        await server.shutdownGracefully()
        let counts = server.statusCounts.sorted { $0.key.rawValue < $1.key.rawValue }
            .map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        writeLine("\(name): stopped; calls by status: \(counts.isEmpty ? "none" : counts)", to: 1)
        return 0
    }

    public static func printError(_ text: String) {
        writeLine(text, to: 2)
    }

    /// Unbuffered, so that a script reading our output through a pipe sees the line at once.
    static func writeLine(_ text: String, to fd: Int32) {
        var line = Array((text + "\n").utf8)
        var offset = 0
        while offset < line.count {
            let n = line.withUnsafeMutableBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 { return }
            offset += n
        }
    }
}


/// Reads the TLS certificate, key and client CA again on SIGHUP: connections made afterwards
/// get the new ones, open connections and their streams go on with theirs. A file that does not
/// load is logged and the certificate in use stays.
struct TLSReloader: Service {
    let server: RPCServer
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            do {
                if let cert = try server.reloadTLS() {
                    logger.notice("TLS certificate reloaded", metadata: Self.describe(cert, clientCA: nil))
                }
            } catch {
                logger.error("TLS reload failed; the certificate in use stays", metadata: ["reason": "\(error.reason)"])
            }
        }
    }

    /// The certificate's public facts for the log (no key material).
    static func describe(_ cert: CertificateInfo, clientCA: String?) -> Logger.Metadata {
        var m: Logger.Metadata = [
            "subject": "\(cert.subject)", "serial": "\(cert.serial)",
            "not_after": "\(Int(cert.notAfter))", "sha256": "\(cert.sha256)",
        ]
        if let clientCA { m["client_ca"] = "\(clientCA)" }
        return m
    }
}
