// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// The transport's per-call path: exclusivity is checked statically everywhere and at run time
/// in debug builds (every test runs them); release builds leave out the run-time checks, which
/// cost the health call about a twentieth of its time in profiles (swift_beginAccess).
let hotPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "esaylov",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "esaylovctl", targets: ["esaylovctl"]),
        .executable(name: "esaylov-server", targets: ["esaylov-server"]),
        .executable(name: "esaylov-interop-server", targets: ["esaylov-interop-server"]),
        .executable(name: "esaylov-bench", targets: ["esaylov-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        // C libraries from Debian's -dev packages.
        .systemLibrary(name: "CNghttp2", pkgConfig: "libnghttp2", providers: [.apt(["libnghttp2-dev"])]),
        .systemLibrary(name: "CProtobufC", pkgConfig: "libprotobuf-c", providers: [.apt(["libprotobuf-c-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        // zlib (zlib1g-dev) with a shim: its init functions are macros.
        .target(name: "CZlib", linkerSettings: [.linkedLibrary("z")]),
        // glibc's malloc tuning (mallopt), set once by the servers at start, and the page slots
        // that nghttp2's large blocks come from.
        .target(name: "CAllocator"),

        // google.rpc.Status and error details (generated, committed), sent by the RPC layer.
        .target(name: "RPCStatusProtoC", dependencies: ["CProtobufC"]),
        .target(name: "RPCStatus", dependencies: ["RPCStatusProtoC", "CProtobufC", "ProtoRuntime"], swiftSettings: strict),
        // protoc-c output (generated, committed) for the protos we serve.
        .target(name: "ESaylovProtoC", dependencies: ["CProtobufC"]),
        // Message runtime shared by every generated Swift module: arenas, pack/unpack.
        .target(name: "ProtoRuntime", dependencies: ["CProtobufC"], swiftSettings: strict),
        // gRPC over nghttp2 on a SwiftNIO socket loop.
        .target(
            name: "RPC",
            dependencies: [
                "CNghttp2", "CZlib", "CAllocator", "ProtoRuntime", "RPCStatus", "Signatures",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict + hotPath
        ),
        // Generated Swift messages and service protocols (committed).
        .target(
            name: "ESaylovAPI",
            dependencies: ["ESaylovProtoC", "CProtobufC", "ProtoRuntime", "RPC"],
            swiftSettings: strict),
        // The law, in pure Swift: participants, identifiers, request vocabulary (no C, no NIO).
        .target(name: "Domain", swiftSettings: strict),
        // X.509, CMS and TLS through OpenSSL: verification, signing, the development CA, digests,
        // TLS sessions on memory BIOs (the RPC layer puts them under HTTP/2).
        .target(name: "Signatures", dependencies: ["COpenSSL"], swiftSettings: strict),
        // PostgreSQL through libpq: blocking pool and transactions, non-blocking reads on the event
        // loops, migrations, directory queries.
        .target(
            name: "Store",
            dependencies: [
                "CLibPQ", "Domain", "Signatures", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            resources: [.copy("Migrations"), .copy("Seed")], swiftSettings: strict),
        .target(
            name: "Services",
            dependencies: [
                "Domain", "Store", "Signatures", "ESaylovAPI", "ESaylovProtoC", "ProtoRuntime", "RPC", "CAllocator", .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"), .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "esaylov-server",
            dependencies: ["Services", "RPC", "Store", "Signatures", "ESaylovAPI", .product(name: "Logging", package: "swift-log"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "esaylovctl",
            dependencies: ["Store", "Domain", "Services", "Signatures", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict),
        .executableTarget(
            name: "esaylov-interop-server",
            dependencies: ["Services", "RPC", "ESaylovAPI", .product(name: "Logging", package: "swift-log"),
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict
        ),

        // Load generators of Scripts/bench.sh that need the Swift API (write transactions).
        .executableTarget(name: "esaylov-bench", dependencies: ["Store", "Signatures"], swiftSettings: strict),

        // Codec fixture: every field kind, generated like the real contracts.
        .target(name: "FixtureProtoC", dependencies: ["ESaylovProtoC", "CProtobufC"], path: "Tests/FixtureProtoC"),
        .target(
            name: "FixtureAPI", dependencies: ["FixtureProtoC", "ESaylovAPI", "CProtobufC", "ProtoRuntime", "RPC"],
            path: "Tests/FixtureAPI", swiftSettings: strict
        ),
        .testTarget(
            name: "ESaylovTests",
            dependencies: [
                "FixtureAPI", "ESaylovAPI", "RPC", "ProtoRuntime", "Services", "Domain", "CNghttp2", "CAllocator", "Signatures", "Store",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/ESaylovTests",
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
