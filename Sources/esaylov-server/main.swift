#if canImport(Glibc)
import Glibc
#endif
import RPC
import Services

// esaylov-server: the E-saylov gRPC backend. Services are registered here as they are built.
let health = HealthService(services: ["grpc.health.v1.Health"])
let status = await ServerMain.run(name: "esaylov-server", arguments: Array(CommandLine.arguments.dropFirst()), health: health) { router in
    router.register(health)
}
exit(status)
