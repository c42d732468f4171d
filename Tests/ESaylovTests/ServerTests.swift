import FixtureAPI
import Glibc
import Logging
import NIOCore
import RPC
import ServiceLifecycle
import Synchronization
import Testing

/// A probe service over the fixture messages, registered by hand through the router.
enum Probe {
    static let deadline = MethodDescriptor(service: "esaylov.test.Probe", method: "Deadline", kind: .unary)
    static let fast = MethodDescriptor(service: "esaylov.test.Probe", method: "Fast", kind: .unary)
    static let block = MethodDescriptor(service: "esaylov.test.Probe", method: "Block", kind: .unary)
    static let awaitCancel = MethodDescriptor(service: "esaylov.test.Probe", method: "AwaitCancel", kind: .serverStreaming)
    static let later = MethodDescriptor(service: "esaylov.test.Probe", method: "Later", kind: .unary)

    /// Set by AwaitCancel's handler when it observes its cancellation.
    final class Observed: Sendable {
        let cancelled = Atomic<Bool>(false)
    }

    static func register(_ router: inout RPCRouter, observed: Observed) {
        router.addSynchronousUnary(deadline) { (_: Esaylov_Fixture_Scalars, context) throws(RPCError) in
            var out = Esaylov_Fixture_Scalars()
            out.i64 = context.timeRemaining.map { $0.components.seconds * 1000 + $0.components.attoseconds / 1_000_000_000_000_000 } ?? -1
            return out
        }
        router.addSynchronousUnary(fast) { (request: Esaylov_Fixture_Scalars, _) throws(RPCError) in
            request
        }
        router.addUnary(block) { (_: Esaylov_Fixture_Scalars, context) in
            try await context.runBlocking {
                usleep(400_000)  // a blocking call, as libpq's would be
                var out = Esaylov_Fixture_Scalars()
                out.text = "done"
                return out
            }
        }
        // Answers after `i32` milliseconds without holding a thread; `text` picks a failure.
        router.addUnary(later) { (request: Esaylov_Fixture_Scalars, context) in
            try await Task.sleep(for: .milliseconds(Int(request.i32)))
            switch request.text {
            case "not found": throw RPCError(code: .notFound, message: "nothing here")
            case "other": throw ProbeFailure(secret: "must not reach the client")
            default: return request
            }
        }
        router.addServerStreaming(awaitCancel) { (_: Esaylov_Fixture_Scalars, _: ResponseWriter<Esaylov_Fixture_Scalars>, context) in
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                context.onCancel { c.resume() }
            }
            observed.cancelled.store(true, ordering: .relaxed)
            throw RPCError(code: .cancelled, message: "observed")
        }
    }
}

/// An error that is not an `RPCError`: the client must see INTERNAL and nothing of it.
struct ProbeFailure: Error {
    let secret: String
}

func withProbeServer(
    configure: (inout RPCServer.Configuration) -> Void = { _ in },
    interceptors: [any ServerInterceptor] = [], extra: (inout RPCRouter) -> Void = { _ in },
    _ body: (Int, Probe.Observed, RPCServer) async throws -> Void
) async throws {
    var configuration = RPCServer.Configuration()
    configuration.port = 0
    configuration.eventLoopThreads = 1
    configure(&configuration)
    let observed = Probe.Observed()
    var router = RPCRouter()
    Probe.register(&router, observed: observed)
    extra(&router)
    let server = RPCServer(configuration: configuration, router: router, interceptors: interceptors, logger: Logger(label: "test"))
    let port = try await server.start()
    do {
        try await body(port, observed, server)
    } catch {
        await server.shutdownGracefully(grace: .zero)
        throw error
    }
    await server.shutdownGracefully(grace: .seconds(2))
}

func waitUntil(_ timeout: Duration = .seconds(3), _ condition: () -> Bool) async -> Bool {
    let end = ContinuousClock.now + timeout
    while !condition(), ContinuousClock.now < end { try? await Task.sleep(for: .milliseconds(10)) }
    return condition()
}

@Suite("Server behaviour seen from handlers", .serialized)
struct ServerTests {
    @Test func deadlineIsVisibleToHandlers() async throws {
        try await withProbeServer { port, _, _ in
            let (with, without) = try await onThread {
                let c = try H2TestClient(port: port)
                let a = c.wait(c.start(path: Probe.deadline.path, messages: [[]], headers: [("grpc-timeout", "5S")]))
                let b = c.wait(c.start(path: Probe.deadline.path, messages: [[]]))
                return (a, b)
            }
            #expect(with.grpcStatus == "0")
            let remaining = try Esaylov_Fixture_Scalars(serializedBytes: with.messages[0]).i64
            #expect(remaining > 4000 && remaining <= 5000)
            #expect(try Esaylov_Fixture_Scalars(serializedBytes: without.messages[0]).i64 == -1)
        }
    }

    @Test func clientCancellationReachesTheHandler() async throws {
        try await withProbeServer { port, observed, _ in
            let response = try await onThread {
                let c = try H2TestClient(port: port)
                let id = c.start(path: Probe.awaitCancel.path, messages: [[]])
                c.pump(for: .milliseconds(200))
                c.cancel(id)
                return c.response(id)
            }
            #expect(response.grpcStatus == nil)  // the client left before any status
            #expect(await waitUntil { observed.cancelled.load(ordering: .relaxed) })
        }
    }

    @Test func deadlineCancelsAWaitingHandler() async throws {
        try await withProbeServer { port, observed, _ in
            let response = try await onThread {
                let c = try H2TestClient(port: port)
                return c.wait(c.start(path: Probe.awaitCancel.path, messages: [[]], headers: [("grpc-timeout", "100m")]))
            }
            #expect(response.grpcStatus == "4")
            #expect(await waitUntil { observed.cancelled.load(ordering: .relaxed) })
        }
    }

    @Test func blockingHandlersLeaveTheEventLoopFree() async throws {
        try await withProbeServer(configure: { $0.blockingPoolThreads = 2 }) { port, _, _ in
            let (fastDone, blockedWhenFastDone, blocked) = try await onThread {
                let c = try H2TestClient(port: port)
                let slow = [c.start(path: Probe.block.path, messages: [[]]), c.start(path: Probe.block.path, messages: [[]])]
                c.pump(for: .milliseconds(50))
                var ping = Esaylov_Fixture_Scalars()
                ping.i32 = 7
                let fast = c.wait(c.start(path: Probe.fast.path, messages: [ping.serializedBytes()]), timeout: .seconds(2))
                let stillBlocked = slow.filter { !c.response($0).closed }.count
                return (fast, stillBlocked, slow.map { c.wait($0) })
            }
            #expect(fastDone.grpcStatus == "0")
            #expect(try Esaylov_Fixture_Scalars(serializedBytes: fastDone.messages[0]).i32 == 7)
            // The one event loop answered while both blocking calls were still running.
            #expect(blockedWhenFastDone == 2)
            #expect(blocked.map(\.grpcStatus) == ["0", "0"])
            #expect(try blocked.map { try Esaylov_Fixture_Scalars(serializedBytes: $0.messages[0]).text } == ["done", "done"])
        }
    }

    @Test func asyncHandlersAnswerLaterAndLeaveTheLoopFree() async throws {
        try await withProbeServer { port, _, _ in
            let (slow, fastWhileSlow, failures, late, afterLate) = try await onThread {
                let c = try H2TestClient(port: port)
                func later(_ ms: Int32, _ text: String = "", headers: [(String, String)] = []) -> Int32 {
                    var m = Esaylov_Fixture_Scalars()
                    m.i32 = ms
                    m.text = text
                    return c.start(path: Probe.later.path, messages: [m.serializedBytes()], headers: headers)
                }
                let slow = later(300)
                c.pump(for: .milliseconds(50))
                let fast = c.wait(c.start(path: Probe.fast.path, messages: [[]]), timeout: .seconds(2))
                let slowOpen = !c.response(slow).closed
                let failures = [later(10, "not found"), later(10, "other")].map { c.wait($0) }
                // The deadline ends the call; the answer that comes later is dropped.
                let late = c.wait(later(400, headers: [("grpc-timeout", "100m")]))
                let cancelled = later(100)
                c.pump(for: .milliseconds(20))
                c.cancel(cancelled)
                c.pump(for: .milliseconds(500))
                let after = c.wait(later(1, "again"))
                return ((c.wait(slow), slowOpen), fast, failures, late, after)
            }
            #expect(slow.1)  // still waiting when the fast call was answered
            #expect(slow.0.grpcStatus == "0")
            #expect(try Esaylov_Fixture_Scalars(serializedBytes: slow.0.messages[0]).i32 == 300)
            #expect(fastWhileSlow.grpcStatus == "0")
            #expect(failures.map(\.grpcStatus) == ["5", "13"])
            #expect(failures[0].grpcMessage == "nothing here")
            #expect(failures[1].grpcMessage?.hasPrefix("internal error (request id ") == true)
            #expect(failures[1].grpcMessage?.contains("must not reach") == false)
            #expect(late.grpcStatus == "4")
            #expect(late.messages.isEmpty)
            #expect(afterLate.grpcStatus == "0")
            #expect(try Esaylov_Fixture_Scalars(serializedBytes: afterLate.messages[0]).text == "again")
        }
    }

    @Test func blockingPoolQueueIsBounded() async throws {
        try await withProbeServer(configure: { $0.blockingPoolThreads = 1; $0.blockingQueueLimit = 2 }) { port, _, _ in
            let statuses = try await onThread {
                let c = try H2TestClient(port: port)
                let ids = (0..<4).map { _ in c.start(path: Probe.block.path, messages: [[]]) }
                return ids.map { c.wait($0).grpcStatus }
            }
            #expect(statuses.filter { $0 == "0" }.count == 2)
            #expect(statuses.filter { $0 == "8" }.count == 2)
        }
    }

    @Test func gracefulShutdownLetsCallsInFlightFinish() async throws {
        try await withProbeServer { port, _, server in
            async let response = onThread {
                let c = try H2TestClient(port: port)
                return c.wait(c.start(path: Probe.block.path, messages: [[]]))
            }
            try await Task.sleep(for: .milliseconds(100))
            await server.shutdownGracefully(grace: .seconds(3))
            #expect(try await response.grpcStatus == "0")
        }
    }

    /// Under a ServiceGroup: a graceful shutdown lets the call in flight finish, then the
    /// server stops accepting; the services before it in the group shut down after it.
    @Test func aServiceGroupDrainsTheServerFirst() async throws {
        var configuration = RPCServer.Configuration()
        configuration.port = 0
        configuration.eventLoopThreads = 1
        var router = RPCRouter()
        Probe.register(&router, observed: Probe.Observed())
        let server = RPCServer(configuration: configuration, router: router, logger: Logger(label: "test"))
        let port = try await server.start()
        // Runs once the server's run() has returned: by then it no longer accepts connections.
        let refusedWhenNext = Mutex<Bool?>(nil)
        struct Next: Service {
            let record: @Sendable (Bool) -> Void
            let port: Int
            func run() async throws {
                try? await gracefulShutdown()
                record((try? H2TestClient(port: port)) == nil)
            }
        }
        let next = Next(record: { refused in refusedWhenNext.withLock { $0 = refused } }, port: port)
        let group = ServiceGroup(configuration: .init(services: [next, server], logger: Logger(label: "test")))
        async let running: Void = group.run()
        async let response = onThread {
            let c = try H2TestClient(port: port)
            return c.wait(c.start(path: Probe.block.path, messages: [[]]))
        }
        try await Task.sleep(for: .milliseconds(100))
        await group.triggerGracefulShutdown()
        #expect(try await response.grpcStatus == "0")  // the call in flight finished
        try await running
        #expect(refusedWhenNext.withLock { $0 } == true)
        await server.shutdownGracefully()
    }
}
