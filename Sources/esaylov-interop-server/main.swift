#if canImport(Glibc)
import Glibc
#endif
import ESaylovAPI
import RPC
import Services

// esaylov-interop-server: grpc.testing.TestService on the esaylov gRPC stack, for gRPC's
// interop cases (`shared/design/interop.md`).
let health = HealthService(services: ["grpc.testing.TestService", "grpc.health.v1.Health"])
let status = await ServerMain.run(
    name: "esaylov-interop-server", arguments: Array(CommandLine.arguments.dropFirst()), health: health
) { router, _ in
    router.register(health)
    router.register(InteropService())
    return []
}
exit(status)
