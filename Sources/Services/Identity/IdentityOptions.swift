
/// The esaylov server's identity flags, taken out of the arguments before the transport's:
///   --trust-store DIR          CA certificates and CRLs (*.pem) trusted for EDS signatures;
///                              without it, EDS sign-in answers UNAVAILABLE
///   --ocsp-responder URL       also ask this OCSP responder (http://host:port/path) whether a
///                              signer's certificate is revoked
///   --signing-key FILE --signing-cert FILE   the server's own identity (audit checkpoints, decision receipts)
///   --sms-outbox FILE          the development SMS gateway's file (JSON lines, mode 0600);
///                              without it, codes stay queued in the database
///   --audit-checkpoint-every N sign a checkpoint after N new events (default 1000; 0: none)
///   --sign-in-per-minute N     calls of each sign-in method one address may make per minute
///                              (and at once), default 30: challenges, code requests, code tries
///   --watch-heartbeat SECONDS  a watch stream's heartbeat and role check (default 15)
///   --ops-host HOST --ops-port N  the operations port (/healthz, /readyz; default
///                              127.0.0.1:9090; 0 picks a free port, printed at start)
///   --metrics-sample-seconds N how often /metrics' database gauges are read (default 5)
public struct IdentityOptions: Sendable {
    public var trustStore: String?
    public var ocspResponder: String?
    public var signingKey: String?
    public var signingCertificate: String?
    public var smsOutbox: String?
    public var checkpointEvery = 1000
    public var signInPerMinute = 30
    public var watchHeartbeat: Duration = .seconds(15)
    public var opsHost = "127.0.0.1"
    public var opsPort = 9090
    public var metricsSampleSeconds = 5

    public static let usage = """
        identity: --trust-store DIR  --ocsp-responder URL  --signing-key FILE --signing-cert FILE  --sms-outbox FILE
                  --audit-checkpoint-every N (default 1000; 0: none)  --sign-in-per-minute N (per address; default 30)
                  --watch-heartbeat SECONDS (default 15)
        operations: --ops-host HOST (default 127.0.0.1)  --ops-port N (default 9090; 0: any free port)
                    --metrics-sample-seconds N (database gauges; default 5)
        """

    /// The identity flags, and the arguments left for `ServerOptions`.
    public static func extract(from arguments: [String]) throws(OptionError) -> (IdentityOptions, [String]) {
        var options = IdentityOptions()
        var rest: [String] = []
        var i = 0
        while i < arguments.count {
            let flag = arguments[i]
            let known = ["--trust-store", "--ocsp-responder", "--signing-key", "--signing-cert", "--sms-outbox", "--audit-checkpoint-every", "--sign-in-per-minute", "--watch-heartbeat", "--ops-host", "--ops-port", "--metrics-sample-seconds"]
            guard known.contains(flag) else {
                rest.append(flag)
                i += 1
                continue
            }
            guard i + 1 < arguments.count, !arguments[i + 1].isEmpty else { throw OptionError(message: "\(flag) needs a value") }
            let value = arguments[i + 1]
            switch flag {
            case "--trust-store": options.trustStore = value
            case "--ocsp-responder": options.ocspResponder = value
            case "--signing-key": options.signingKey = value
            case "--signing-cert": options.signingCertificate = value
            case "--sms-outbox": options.smsOutbox = value
            case "--ops-host": options.opsHost = value
            case "--metrics-sample-seconds":
                guard let n = Int(value), (1...3600).contains(n) else {
                    throw OptionError(message: "--metrics-sample-seconds must be a whole number of seconds in 1...3600, got \(value)")
                }
                options.metricsSampleSeconds = n
            case "--ops-port":
                guard let n = Int(value), (0...65535).contains(n) else {
                    throw OptionError(message: "--ops-port must be a port number in 0...65535, got \(value)")
                }
                options.opsPort = n
            case "--watch-heartbeat":
                guard let n = Int(value), (1...3600).contains(n) else {
                    throw OptionError(message: "--watch-heartbeat must be a whole number of seconds in 1...3600, got \(value)")
                }
                options.watchHeartbeat = .seconds(n)
            case "--sign-in-per-minute":
                guard let n = Int(value), (1...1_000_000).contains(n) else {
                    throw OptionError(message: "--sign-in-per-minute must be a whole number in 1...1000000, got \(value)")
                }
                options.signInPerMinute = n
            default:
                guard let n = Int(value), (0...1_000_000).contains(n) else {
                    throw OptionError(message: "--audit-checkpoint-every must be a whole number in 0...1000000 (0: no checkpoints), got \(value)")
                }
                options.checkpointEvery = n
            }
            i += 2
        }
        if (options.signingKey == nil) != (options.signingCertificate == nil) {
            throw OptionError(message: "--signing-key and --signing-cert go together")
        }
        return (options, rest)
    }
}
