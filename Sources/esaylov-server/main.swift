#if canImport(Glibc)
import Glibc
#endif
import ESaylovAPI
import Logging
import RPC
import Services
import Signatures
import Store
import ServiceLifecycle
import ArgumentParser

// esaylov-server: the E-saylov gRPC backend. Services are registered here as they are built.
let health = HealthService(services: ["grpc.health.v1.Health"])
/// Every flag of the server: the transport's and its own (each also from ESAYLOV_<FLAG>).
struct ServerFlags: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "esaylov-server", abstract: "The E-saylov gRPC backend (database: ESAYLOV_DATABASE_URL; public reads: ESAYLOV_DATABASE_READ_URL).")
    @OptionGroup var transport: TransportFlags
    @OptionGroup var identityFlags: IdentityFlags
}
let (flags, configuration) = ServerConfiguration.parse(ServerFlags.self, name: "esaylov-server", arguments: Array(CommandLine.arguments.dropFirst()))
// Valid: parsing ran the same checks (the flags' validate()).
let options = try! ServerOptions(flags.transport)
let identity = try! IdentityOptions(flags.identityFlags)
let poolSize = options.poolSize
var secrets: [String: String] = [:]
if let url = Storage.urlFromEnvironment { secrets["database"] = url }
if let url = Storage.readURLFromEnvironment { secrets["read_database"] = url }
let metrics = ServerMetrics()
// The closure runs on ServerMain's executor, not the main actor: a closure nested in it that
// the compiler takes as main-actor isolated traps at run time, so it holds none (if-let, not map).
let status = await ServerMain.run(
    name: "esaylov-server", options: options, configuration: configuration, secrets: secrets, health: health,
    observe: { server in metrics.observe(server) }
) { (router, interceptors) throws(OptionError) in
    router.register(health)
    // First, so that it counts every call, those the authentication refuses too.
    interceptors.append(MetricsInterceptor(metrics))
    guard let url = Storage.urlFromEnvironment else {
        ServerMain.printError("esaylov-server: ESAYLOV_DATABASE_URL is not set: serving health and reflection only")
        return [OperationsServer(host: identity.opsHost, port: identity.opsPort, health: health, database: nil, metrics: metrics)]
    }
    // At --log-level (the logging system is bootstrapped with it before this runs).
    let logger = Logger(label: "esaylov-server")
    let database = try Storage.open(url: url, poolSize: poolSize.total, connectionsPerEventLoop: poolSize.perEventLoop)
    let tokens: PageTokens
    let smsKey: [UInt8]
    do {
        tokens = try PageTokens.load(from: database)
        smsKey = try ServerSecrets.value(database, name: "sms_code_key")
    } catch { throw OptionError(message: "cannot load the deployment's keys: \(error)") }
    var verifier: SignatureVerifier?
    if let dir = identity.trustStore {
        do {
            var ocsp: OCSPClient?
            if let url = identity.ocspResponder { ocsp = try OCSPClient(url: url) }
            verifier = SignatureVerifier(trustStore: try TrustStore(directory: dir), ocsp: ocsp)
        } catch {
            throw OptionError(message: "--trust-store/--ocsp-responder: \(error)")
        }
    } else {
        ServerMain.printError("esaylov-server: no --trust-store: EDS sign-in answers UNAVAILABLE")
    }
    // The chainer stops after the server (services stop in reverse): the events of the last calls get chained.
    var services: [any Service] = [DatabaseService(database), AuditChainer(database: database, logger: logger)]
    var delivery: SmsDelivery?
    if let outbox = identity.smsOutbox {
        let d = SmsDelivery(database: database, gateway: OutboxFileGateway(path: outbox), logger: logger)
        delivery = d
        services.append(d)
    }
    var systemSigner: SigningIdentity?
    if let key = identity.signingKey, let cert = identity.signingCertificate {
        do { systemSigner = try SigningIdentity(keyFile: key, certificateFile: cert) } catch {
            throw OptionError(message: "--signing-key/--signing-cert: \(error)")
        }
        if let signer = systemSigner, identity.checkpointEvery > 0 {
            services.append(AuditCheckpointer(database: database, signer: signer, every: identity.checkpointEvery, logger: logger))
        }
    }
    interceptors.append(AuthenticationInterceptor(database: database))
    // A hot standby for the reads that may lag (the public directory), when one is named.
    let reads: ReadReplicas
    if let readURL = Storage.readURLFromEnvironment {
        let standby = Storage.openStandby(url: readURL, connectionsPerEventLoop: poolSize.perEventLoop)
        reads = ReadReplicas(primary: database, standby: standby)
        services.append(StandbyMonitor(reads, logger: logger))
        metrics.sample("esaylov_db_standby_in_use") { reads.standbyInUse ? 1 : 0 }
        metrics.mirror("esaylov_db_standby_reads_total") { reads.standbyReadsTotal }
        metrics.mirror("esaylov_db_standby_fallbacks_total") { reads.fallbacksTotal }
    } else {
        reads = ReadReplicas(primary: database)
    }
    router.register(DirectoryService(database: database, tokens: tokens, reads: reads))
    router.register(AuthService(database: database, verifier: verifier, sms: delivery, smsKey: smsKey, signInPerMinute: identity.signInPerMinute, logger: logger))
    router.register(AuditService(database: database, verifier: verifier, tokens: tokens))
    let catalogues = Catalogues()
    let hub = EventHub(database: database)
    services.append(EventHubService(hub))
    router.register(RequestService(database: database, verifier: verifier, tokens: tokens, catalogues: catalogues, events: hub,
                                   watchHeartbeat: identity.watchHeartbeat))
    router.register(DecisionService(database: database, verifier: verifier, tokens: tokens, signer: systemSigner, catalogues: catalogues, events: hub))
    services.append(Maintenance(database: database, events: RequestEvents(hub: hub), logger: logger))
    metrics.sample("esaylov_watch_streams") { Double(hub.watcherCount) }
    metrics.sample("esaylov_database_ready") { database.isReady ? 1 : 0 }
    metrics.observe(database)
    services.append(OperationsSampler(database: database, metrics: metrics, interval: .seconds(identity.metricsSampleSeconds)))
    services.append(OperationsServer(host: identity.opsHost, port: identity.opsPort, health: health, database: database, metrics: metrics))
    Storage.reportReadiness(of: database, to: health, services: [Esaylov_V1_DirectoryServiceMethod.getOrganisation.service])
    return services
}
exit(status)
