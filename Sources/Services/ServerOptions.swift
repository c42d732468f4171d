public import Logging
public import RPC
import Signatures

/// Command-line flags shared by the executables: `--host H`, `--port N` (0: any free port),
/// `--threads N`, `--max-receive-bytes N`, `--max-streams N`.
public struct ServerOptions: Sendable {
    public var configuration = RPCServer.Configuration()
    /// `--log-level`: trace, debug (every call's end), info (default), notice, warning, error, critical.
    public var logLevel: Logger.Level = .info
    /// `--log-format`: text (default) or json (one object a line, for log shippers).
    public var logJSON = false

    public init(arguments: [String]) throws(OptionError) {
        var i = 0
        func value(_ flag: String) throws(OptionError) -> String {
            i += 1
            guard i < arguments.count else { throw OptionError(message: "\(flag) needs a value") }
            return arguments[i]
        }
        func number(_ flag: String, _ range: ClosedRange<Int>) throws(OptionError) -> Int {
            let text = try value(flag)
            guard let n = Int(text), range.contains(n) else {
                throw OptionError(message: "\(flag) must be a whole number in \(range.lowerBound)...\(range.upperBound), got \(text)")
            }
            return n
        }
        var tlsCert: String?
        var tlsKey: String?
        var tlsClientCA: String?
        while i < arguments.count {
            let flag = arguments[i]
            if flag == "--peer-limit-exempts-loopback" || flag == "--no-plaintext" {
                if flag == "--no-plaintext" { configuration.plaintext = false } else { configuration.peerLimitExemptsLoopback = true }
                i += 1
                continue
            }
            switch flag {
            case "--host": configuration.host = try value(flag)
            case "--port": configuration.port = try number(flag, 0...65535)
            case "--threads": configuration.eventLoopThreads = try number(flag, 1...256)
            case "--max-receive-bytes": configuration.maxReceiveMessageSize = try number(flag, 1...(64 << 20))
            case "--max-streams": configuration.maxConcurrentStreams = UInt32(try number(flag, 1...10_000))
            case "--db-pool": configuration.blockingPoolThreads = try number(flag, 1...256)
            case "--max-connections": configuration.maxConnections = try number(flag, 1...1_000_000)
            case "--handshake-timeout-ms": configuration.handshakeTimeout = .milliseconds(try number(flag, 1...600_000))
            case "--idle-timeout-s": configuration.idleTimeout = .seconds(try number(flag, 1...86_400))
            case "--max-connections-per-peer": configuration.maxConnectionsPerPeer = try number(flag, 1...1_000_000)
            case "--keepalive-ms": configuration.keepaliveInterval = .milliseconds(try number(flag, 1...3_600_000))
            case "--keepalive-timeout-ms": configuration.keepaliveTimeout = .milliseconds(try number(flag, 1...3_600_000))
            case "--max-watches-per-connection": configuration.maxWatchesPerConnection = try number(flag, 1...10_000)
            case "--max-watches-per-peer": configuration.maxWatchesPerPeer = try number(flag, 1...1_000_000)
            case "--receive-timeout-ms": configuration.receiveTimeout = .milliseconds(try number(flag, 1...3_600_000))
            case "--finish-linger-ms": configuration.finishLinger = .milliseconds(try number(flag, 1...3_600_000))
            case "--connection-window-bytes": configuration.connectionWindowSize = Int32(try number(flag, 65_535...(1 << 30)))
            case "--receive-budget-bytes": configuration.receiveBudget = try number(flag, (1 << 20)...(1 << 40))
            case "--tls-cert": tlsCert = try value(flag)
            case "--tls-key": tlsKey = try value(flag)
            case "--tls-client-ca": tlsClientCA = try value(flag)
            case "--tls-port": configuration.tlsPort = try number(flag, 0...65535)
            case "--tls-handshake-timeout-ms": configuration.tlsHandshakeTimeout = .milliseconds(try number(flag, 1...600_000))
            case "--max-tls-handshakes": configuration.maxTLSHandshakes = try number(flag, 1...1_000_000)
            case "--log-level":
                let text = try value(flag)
                guard let level = Logger.Level(rawValue: text) else {
                    throw OptionError(message: "--log-level must be trace, debug, info, notice, warning, error or critical, got \(text)")
                }
                logLevel = level
            case "--log-format":
                switch try value(flag) {
                case "text": logJSON = false
                case "json": logJSON = true
                case let other: throw OptionError(message: "--log-format must be text or json, got \(other)")
                }
            case "--help", "-h": throw OptionError(message: Self.usage)
            default: throw OptionError(message: "unknown option \(flag)\n\(Self.usage)")
            }
            i += 1
        }
        switch (tlsCert, tlsKey) {
        case (let cert?, let key?): configuration.tls = TLSServerFiles(certificateChain: cert, privateKey: key, clientCA: tlsClientCA)
        case (nil, nil):
            if tlsClientCA != nil { throw OptionError(message: "--tls-client-ca needs --tls-cert and --tls-key") }
            if !configuration.plaintext { throw OptionError(message: "--no-plaintext needs --tls-cert and --tls-key (the server would have no listener)") }
        default: throw OptionError(message: "--tls-cert and --tls-key go together")
        }
    }

    /// The database connections the flags ask for (`--db-pool`): the blocking pool's size,
    /// and the connections for deferred calls, shared out among the event loops.
    public static func poolSize(in arguments: [String]) -> (total: Int, perEventLoop: Int) {
        let c = (try? ServerOptions(arguments: arguments))?.configuration ?? RPCServer.Configuration()
        return (c.blockingPoolThreads, max(1, (c.blockingPoolThreads + c.eventLoopThreads - 1) / max(1, c.eventLoopThreads)))
    }

    public static let usage = """
        options: --host ADDR (default 127.0.0.1)  --port N (default 50051; 0 = any free port)
                 --threads N  --max-receive-bytes N (default 4194304)  --max-streams N (default 100)
                 --max-connections N (default 4096)  --handshake-timeout-ms N (default 10000)
                 --idle-timeout-s N (default 300)  --db-pool N (database connections, shared out
                 among the event loops, and blocking threads; default 8)
                 --connection-window-bytes N (request bytes one connection may have in flight or
                 buffered; default 16777216)  --receive-budget-bytes N (request bytes the process
                 holds at most; default 268435456)  --receive-timeout-ms N (a call without a
                 deadline gets its request, or each streamed message, within it; default 30000)
                 --finish-linger-ms N (an ended call's response may wait this long for the
                 client's window, then the stream is reset; default 10000)
                 --max-connections-per-peer N (default 64)  --peer-limit-exempts-loopback
                 --max-watches-per-connection N (default 16)  --max-watches-per-peer N (default 64)
                 --keepalive-ms N (PING after this long quiet with streams open; default 30000)
                 --keepalive-timeout-ms N (close when the PING is not answered; default 20000)
                 --tls-cert FILE --tls-key FILE (PEM chain, leaf first, and key: HTTP/2 over TLS 1.2/1.3
                 with ALPN h2 on --tls-port N, default 50443; SIGHUP reads them again)
                 --tls-client-ca FILE (mutual TLS: clients must present a certificate from it)
                 --no-plaintext (no h2c listener)  --tls-handshake-timeout-ms N (default 10000)
                 --max-tls-handshakes N (in progress at once; default 256)
                 --log-level LEVEL (default info; debug logs every call's end: method, request id,
                 peer, status, duration)  --log-format text|json (default text; json: one object a line)
        """
}

public struct OptionError: Error, Sendable {
    public var message: String
    public init(message: String) { self.message = message }
}
