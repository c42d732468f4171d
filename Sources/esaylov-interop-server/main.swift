#if canImport(Glibc)
import Glibc
#endif
import ESaylovAPI
import RPC
import Services
import ArgumentParser

// esaylov-interop-server: grpc.testing.TestService on the esaylov gRPC stack, for gRPC's
// interop cases (`shared/design/interop.md`).
let health = HealthService(services: ["grpc.testing.TestService", "grpc.health.v1.Health"])
struct InteropFlags: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "esaylov-interop-server", abstract: "grpc.testing.TestService for gRPC's interop cases.")
    @OptionGroup var transport: TransportFlags
}
let (flags, configuration) = ServerConfiguration.parse(InteropFlags.self, name: "esaylov-interop-server", arguments: Array(CommandLine.arguments.dropFirst()))
// Valid: parsing ran the same checks.
let options = try! ServerOptions(flags.transport)
let status = await ServerMain.run(
    name: "esaylov-interop-server", options: options, configuration: configuration, health: health
) { router, _ in
    router.register(health)
    router.register(InteropService())
    return []
}
exit(status)
