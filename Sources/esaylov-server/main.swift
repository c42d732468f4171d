#if canImport(Glibc)
import Glibc
#endif
import ESaylovAPI
import RPC
import Services
import Store

// esaylov-server: the E-saylov gRPC backend. Services are registered here as they are built.
let health = HealthService(services: ["grpc.health.v1.Health"])
let poolSize = ServerOptions.poolSize(in: Array(CommandLine.arguments.dropFirst()))
let status = await ServerMain.run(name: "esaylov-server", arguments: Array(CommandLine.arguments.dropFirst()), health: health) { (router) throws(OptionError) in
    router.register(health)
    guard let url = Storage.urlFromEnvironment else {
        ServerMain.printError("esaylov-server: ESAYLOV_DATABASE_URL is not set: serving health and reflection only")
        return []
    }
    let database = try Storage.open(url: url, poolSize: poolSize.total, connectionsPerEventLoop: poolSize.perEventLoop)
    let tokens: PageTokens
    do { tokens = try PageTokens.load(from: database) } catch { throw OptionError(message: "cannot load the page token key: \(error)") }
    router.register(DirectoryService(database: database, tokens: tokens))
    Storage.reportReadiness(of: database, to: health, services: [Esaylov_V1_DirectoryServiceMethod.getOrganisation.service])
    return [DatabaseService(database)]
}
exit(status)
