public import ESaylovAPI
public import RPC
public import ServiceLifecycle
import Synchronization

/// `grpc.health.v1.Health`: the serving status of the whole server (`""`) and of each
/// registered service. Check answers on the event loop; Watch streams every change.
public final class HealthService: Grpc_Health_V1_HealthService, Service {
    public typealias Status = Grpc_Health_V1_HealthCheckResponse.ServingStatus

    private struct Watcher {
        let service: String
        let continuation: AsyncStream<Status>.Continuation
    }
    private struct State {
        var statuses: [String: Status] = [:]
        var watchers: [Int: Watcher] = [:]
        var nextWatcher = 0
        var shuttingDown = false
    }
    private let state = Mutex(State())
    /// The whole server's status (`""`), kept outside the lock as well (written under it):
    /// load balancers and probes ask for it far more than for anything else.
    private let overall = Atomic<Int32>(Status.serving.rawValue)

    /// Starts with every name in `services` (and `""`) SERVING.
    public init(services: [String]) {
        state.withLock { s in
            s.statuses[""] = .serving
            for name in services { s.statuses[name] = .serving }
        }
    }

    /// Sets the status of `service` (`""` for the whole server) and tells its watchers.
    /// Ignored once shutdown began: from then on everything is NOT_SERVING.
    public func setStatus(_ status: Status, for service: String) {
        let targets = state.withLock { s -> [Watcher] in
            if s.shuttingDown { return [] }
            s.statuses[service] = status
            if service.isEmpty { overall.store(status.rawValue, ordering: .releasing) }
            return s.watchers.values.filter { $0.service == service }
        }
        for w in targets { w.continuation.yield(status) }
    }

    /// Marks every service NOT_SERVING, for good (graceful shutdown).
    public func enterShutdown() {
        let targets = state.withLock { s -> [Watcher] in
            s.shuttingDown = true
            for key in s.statuses.keys { s.statuses[key] = .notServing }
            overall.store(Status.notServing.rawValue, ordering: .releasing)
            return Array(s.watchers.values)
        }
        for w in targets { w.continuation.yield(.notServing) }
    }

    /// Under a service group: serves until the group shuts down, then turns everything
    /// NOT_SERVING (first, before the server sends GOAWAY: it stands last in the group).
    public func run() async throws {
        try? await gracefulShutdown()
        enterShutdown()
    }

    public func status(of service: String) -> Status? {
        if service.isEmpty { return Status(rawValue: overall.load(ordering: .acquiring)) }
        return state.withLock { $0.statuses[service] }
    }

    public func check(request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext) throws(RPCError) -> Grpc_Health_V1_HealthCheckResponse {
        guard let status = status(of: request.service) else {
            throw RPCError(code: .notFound, message: "unknown service \(request.service)")
        }
        var response = Grpc_Health_V1_HealthCheckResponse()
        response.status = status
        return response
    }

    public func watch(
        request: Grpc_Health_V1_HealthCheckRequest, responses: ResponseWriter<Grpc_Health_V1_HealthCheckResponse>,
        context: ServerContext
    ) async throws {
        // Bounded: only the newest status matters to a watcher.
        let (stream, continuation) = AsyncStream<Status>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { s -> Int in
            let id = s.nextWatcher
            s.nextWatcher += 1
            s.watchers[id] = Watcher(service: request.service, continuation: continuation)
            continuation.yield(s.statuses[request.service] ?? .serviceUnknown)
            return id
        }
        context.onCancel { continuation.finish() }
        defer {
            _ = state.withLock { $0.watchers.removeValue(forKey: id) }
            continuation.finish()
        }
        var last: Status?
        for await status in stream {
            if status == last { continue }
            last = status
            var response = Grpc_Health_V1_HealthCheckResponse()
            response.status = status
            try await responses.write(response)
        }
        if context.isCancelled { throw RPCError(code: .cancelled, message: "watch cancelled") }
    }
}
