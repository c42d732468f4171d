import FixtureAPI
import Logging
import RPC
import Synchronization
import Testing

/// Interceptors and the one error mapping, seen from a client: every call kind goes through
/// the same executor.
enum Intercepted {
    static let sync = MethodDescriptor(service: "esaylov.test.Intercepted", method: "Sync", kind: .unary)
    static let async = MethodDescriptor(service: "esaylov.test.Intercepted", method: "Async", kind: .unary)
    static let refused = MethodDescriptor(service: "esaylov.test.Intercepted", method: "Refused", kind: .unary)
    static let bidi = MethodDescriptor(service: "esaylov.test.Intercepted", method: "Bidi", kind: .bidirectionalStreaming)
    static let ran = Mutex<[String]>([])

    /// The caller an interceptor found, for handlers to read.
    enum Caller: ServerContextKey { typealias Value = String }
    enum AsyncCaller: ServerContextKey { typealias Value = String }

    static func register(_ router: inout RPCRouter) {
        router.addSynchronousUnary(sync) { (_: Esaylov_Fixture_Scalars, context) throws(RPCError) in
            var out = Esaylov_Fixture_Scalars()
            out.text = (context[Caller.self] ?? "-") + "/" + (context[AsyncCaller.self] ?? "-")
            return out
        }
        router.addUnary(async) { (_: Esaylov_Fixture_Scalars, context) in
            var out = Esaylov_Fixture_Scalars()
            out.text = (context[Caller.self] ?? "-") + "/" + (context[AsyncCaller.self] ?? "-")
            return out
        }
        router.addUnary(refused) { (_: Esaylov_Fixture_Scalars, _) -> Esaylov_Fixture_Scalars in
            ran.withLock { $0.append("refused handler") }
            return Esaylov_Fixture_Scalars()
        }
        // Echoes until a message says "fail", then throws an error that is not an RPCError.
        router.addBidirectionalStreaming(bidi) { (requests: RequestStream<Esaylov_Fixture_Scalars>, responses: ResponseWriter<Esaylov_Fixture_Scalars>, _) in
            for try await m in requests {
                if m.text == "fail" { throw ProbeFailure(secret: "payload 31210632040244") }
                try await responses.write(m)
            }
        }
    }
}

/// Records what it sees; refuses `Refused` with PERMISSION_DENIED naming a rule.
final class RecordingInterceptor: ServerInterceptor {
    let name: String
    let ended = Mutex<[String]>([])
    init(_ name: String) { self.name = name }

    func accept(_ context: ServerContext) throws(RPCError) {
        if context.method == Intercepted.refused {
            throw RPCError(code: .permissionDenied, message: "rule test.refused: nobody may call this")
        }
        context[Intercepted.Caller.self] = name
    }

    func acceptAsync(_ context: ServerContext) async throws(RPCError) {
        await Task.yield()
        context[Intercepted.AsyncCaller.self] = name
    }

    func callEnded(_ context: ServerContext, status: RPCError) {
        ended.withLock { $0.append("\(context.method.method):\(status.code)") }
    }
}

@Suite("Interceptors and error mapping", .serialized)
struct InterceptorTests {
    @Test func interceptorsEnrichRefuseAndSeeEveryEnd() async throws {
        let first = RecordingInterceptor("first")
        let second = RecordingInterceptor("second")
        try await withProbeServer(interceptors: [first, second], extra: Intercepted.register) { port, _, _ in
            let (sync, async, refused) = try await onThread {
                let c = try H2TestClient(port: port)
                return (
                    c.wait(c.start(path: Intercepted.sync.path, messages: [[]])),
                    c.wait(c.start(path: Intercepted.async.path, messages: [[]])),
                    c.wait(c.start(path: Intercepted.refused.path, messages: [[]]))
                )
            }
            // Values set by interceptors reach handlers; the last writer wins. Synchronous
            // methods pass `accept` only.
            #expect(sync.grpcStatus == "0")
            #expect(try Esaylov_Fixture_Scalars(serializedBytes: sync.messages[0]).text == "second/-")
            #expect(async.grpcStatus == "0")
            #expect(try Esaylov_Fixture_Scalars(serializedBytes: async.messages[0]).text == "second/second")
            // Refused before the handler, with the interceptor's status.
            #expect(refused.grpcStatus == "7")
            #expect(refused.grpcMessage?.contains("rule test.refused") == true)
            #expect(Intercepted.ran.withLock { $0 }.isEmpty)
            // Every call that an interceptor saw is reported to it once; the second never saw the refused one.
            #expect(first.ended.withLock { $0 } == ["Sync:OK", "Async:OK", "Refused:PERMISSION_DENIED"])
            #expect(second.ended.withLock { $0 } == ["Sync:OK", "Async:OK"])
        }
    }

    @Test func unknownErrorsBecomeInternalOnEveryPath() async throws {
        try await withProbeServer(extra: Intercepted.register) { port, _, _ in
            let (streaming, unary) = try await onThread {
                let c = try H2TestClient(port: port)
                var ok = Esaylov_Fixture_Scalars()
                ok.text = "echo"
                var fail = Esaylov_Fixture_Scalars()
                fail.text = "fail"
                var other = Esaylov_Fixture_Scalars()
                other.text = "other"
                return (
                    c.wait(c.start(path: Intercepted.bidi.path, messages: [ok.serializedBytes(), fail.serializedBytes()])),
                    c.wait(c.start(path: Probe.later.path, messages: [other.serializedBytes()]))
                )
            }
            for response in [streaming, unary] {
                #expect(response.grpcStatus == "13")
                let id = response.trailer("x-request-id")
                #expect(id?.count == 16)
                #expect(response.grpcMessage == "internal error (request id \(id ?? "?"))")
            }
            #expect(streaming.messages.count == 1)
        }
    }

    @Test func requestIDsAreTakenEchoedAndChecked() async throws {
        try await withProbeServer { port, _, _ in
            let (given, bad, failed) = try await onThread {
                let c = try H2TestClient(port: port)
                var notFound = Esaylov_Fixture_Scalars()
                notFound.text = "not found"
                return (
                    c.wait(c.start(path: Probe.fast.path, messages: [[]], headers: [("x-request-id", "abc-123.X_y")])),
                    c.wait(c.start(path: Probe.fast.path, messages: [[]], headers: [("x-request-id", "no spaces allowed")])),
                    c.wait(c.start(path: Probe.later.path, messages: [notFound.serializedBytes()], headers: [("x-request-id", "trace-7")]))
                )
            }
            #expect(given.grpcStatus == "0")
            #expect(given.header("x-request-id") == "abc-123.X_y")
            #expect(bad.grpcStatus == "3")
            #expect(bad.grpcMessage?.contains("x-request-id") == true)
            #expect(failed.grpcStatus == "5")
            #expect(failed.trailer("x-request-id") == "trace-7")
        }
    }

    @Test func deadlinesAreBounded() async throws {
        try await withProbeServer(configure: { $0.maxDeadline = .seconds(60) }) { port, _, _ in
            let (far, past) = try await onThread {
                let c = try H2TestClient(port: port)
                return (
                    c.wait(c.start(path: Probe.deadline.path, messages: [[]], headers: [("grpc-timeout", "1000H")])),
                    c.wait(c.start(path: Probe.deadline.path, messages: [[]], headers: [("grpc-timeout", "0n")]))
                )
            }
            #expect(far.grpcStatus == "0")
            let remaining = try Esaylov_Fixture_Scalars(serializedBytes: far.messages[0]).i64
            #expect(remaining > 59_000 && remaining <= 60_000)
            #expect(past.grpcStatus == "4")
            #expect(past.messages.isEmpty)
        }
    }
}
