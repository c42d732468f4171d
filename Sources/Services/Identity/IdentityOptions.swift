public import ArgumentParser

/// The esaylov server's own flags, beside the transport's (each also from the environment, as
/// `TransportFlags`).
public struct IdentityFlags: ParsableArguments {
    public init() {}

    @Option(help: "CA certificates and CRLs (*.pem) trusted for EDS signatures; without it, EDS sign-in answers UNAVAILABLE.")
    var trustStore: String?
    @Option(help: "Also ask this OCSP responder (http://host:port/path) whether a signer's certificate is revoked.")
    var ocspResponder: String?
    @Option(help: "The server's own signing key (audit checkpoints, decision receipts), with --signing-cert.")
    var signingKey: String?
    @Option(help: "The server's own certificate chain, leaf first.")
    var signingCert: String?
    @Option(help: "The development SMS gateway's file (JSON lines, mode 0600); without it, codes stay queued in the database.")
    var smsOutbox: String?
    @Option(help: "Sign an audit checkpoint after this many new events (0: none).")
    var auditCheckpointEvery = 1000
    @Option(help: "Calls of each sign-in method one address may make per minute (and at once): challenges, code requests, code tries.")
    var signInPerMinute = 30
    @Option(help: "A watch stream's heartbeat and role check, in seconds.")
    var watchHeartbeat = 15
    @Option(help: "Address of the operations port (/healthz, /readyz, /metrics).")
    var opsHost = "127.0.0.1"
    @Option(help: "The operations port; 0 binds any free port, printed at start.")
    var opsPort = 9090
    @Option(help: "How often /metrics' database gauges are read, in seconds.")
    var metricsSampleSeconds = 5

    public func validate() throws {
        do { _ = try IdentityOptions(self) } catch { throw ValidationError(error.message) }
    }
}

/// The identity and operations configuration, as the flags give it.
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

    public init(_ flags: IdentityFlags) throws(OptionError) {
        trustStore = flags.trustStore
        ocspResponder = flags.ocspResponder
        signingKey = flags.signingKey
        signingCertificate = flags.signingCert
        smsOutbox = flags.smsOutbox
        checkpointEvery = try bounded(flags.auditCheckpointEvery, "audit-checkpoint-every", 0...1_000_000)
        signInPerMinute = try bounded(flags.signInPerMinute, "sign-in-per-minute", 1...1_000_000)
        watchHeartbeat = .seconds(try bounded(flags.watchHeartbeat, "watch-heartbeat", 1...3600))
        opsHost = flags.opsHost
        opsPort = try bounded(flags.opsPort, "ops-port", 0...65535)
        metricsSampleSeconds = try bounded(flags.metricsSampleSeconds, "metrics-sample-seconds", 1...3600)
        if (signingKey == nil) != (signingCertificate == nil) {
            throw OptionError(message: "--signing-key and --signing-cert go together")
        }
    }
}
