public import Logging

/// Code that runs around every call, in the order the server was given them. An interceptor
/// sees the method, the metadata, the peer and the deadline (all on `ServerContext`), may refuse
/// the call with an `RPCError` before the handler runs, and may put typed values on the context
/// (`context[Key.self] = …`) for handlers and later interceptors to read.
///
/// - `accept` runs for every call, synchronous handlers included, on the connection's event
///   loop when the request headers arrive (before the body is read): it must not block.
/// - `acceptAsync` runs after every `accept`, for `async` handlers only, in the call's task
///   just before the handler: for checks that must await (a session lookup). A synchronous
///   method passes `accept` only, so a method whose rules need `acceptAsync` must be `async`.
/// - `callEnded` runs once per call whose `accept` this interceptor ran (whether it or a later
///   one refused it), with the final status (OK included), on the event loop and before the
///   trailers leave, so it may add trailing metadata: for logs and metrics. Interceptors after
///   one that refused never saw the call and are not told of its end.
public protocol ServerInterceptor: Sendable {
    func accept(_ context: ServerContext) throws(RPCError)
    func acceptAsync(_ context: ServerContext) async throws(RPCError)
    func callEnded(_ context: ServerContext, status: RPCError)
}

extension ServerInterceptor {
    public func accept(_ context: ServerContext) throws(RPCError) {}
    public func acceptAsync(_ context: ServerContext) async throws(RPCError) {}
    public func callEnded(_ context: ServerContext, status: RPCError) {}
}

/// Bounds every deadline: a call whose deadline has already passed is refused before its
/// handler runs, and a deadline further away than `maximum` is brought down to it, so that
/// nothing downstream (a database `statement_timeout`, a timer) is handed an absurd value
/// (`grpc-timeout: 99999999H` is legal).
public struct DeadlineInterceptor: ServerInterceptor {
    public let maximum: Duration

    public init(maximum: Duration = .seconds(24 * 3600)) {
        self.maximum = maximum
    }

    public func accept(_ context: ServerContext) throws(RPCError) {
        guard context.hasDeadline, let deadline = context.deadline else { return }
        let now = ContinuousClock.now
        if deadline <= now { throw RPCError(code: .deadlineExceeded, message: "deadline exceeded before the call started") }
        if deadline - now > maximum { context.deadline = now + maximum }
    }
}

/// Takes the client's `x-request-id` when it is a valid one (1–64 characters of
/// `A-Z a-z 0-9 . _ -`) and echoes it in the response headers; otherwise the call gets its own
/// on first use (`ServerContext.requestID`). Every failed call returns its id in the
/// trailers, so that a client can quote it to operators.
public struct RequestIDInterceptor: ServerInterceptor {
    public static let header = "x-request-id"

    public init() {}

    public func accept(_ context: ServerContext) throws(RPCError) {
        guard !context.requestMetadata.isEmpty, let id = context.requestMetadata[Self.header] else { return }
        guard RequestID.isValid(id) else {
            throw RPCError(
                code: .invalidArgument, message: "x-request-id must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
                details: [.fieldViolation(field: "x-request-id", description: "1 to 64 characters of A-Z a-z 0-9 . _ -", reason: "INVALID")])
        }
        context.setRequestID(id)
        context.addInitialMetadata(Self.header, id)
    }

    public func callEnded(_ context: ServerContext, status: RPCError) {
        if status.code != .ok { context.addTrailingMetadata(Self.header, context.requestID) }
    }
}

/// Logs each call's end at `debug`: method, request id, peer, status code and duration. Never
/// the messages or the metadata values. (A handler's unexpected error is logged once, at
/// `error`, by the executor.)
public struct CallLogInterceptor: ServerInterceptor {
    public let logger: Logger
    /// Read once: the level is the logger's, fixed when the server starts, and asking its
    /// handler for it on every call costs more than the rest of this interceptor.
    private let logsCalls: Bool

    public init(logger: Logger) {
        self.logger = logger
        logsCalls = logger.logLevel <= .debug
    }

    public func callEnded(_ context: ServerContext, status: RPCError) {
        guard logsCalls else { return }
        logger.debug("call ended", metadata: [
            "method": "\(context.method.path)", "request_id": "\(context.requestID)", "peer": "\(context.peer)",
            "status": "\(status.code)", "duration_us": "\((ContinuousClock.now - context.startedAt) / .microseconds(1))",
        ])
    }
}

/// Receives one event per call, for metrics: the hook a metrics backend implements
/// (`MetricsInterceptor` calls it). Runs on event loops: it must be quick and must not block.
public protocol CallMetrics: Sendable {
    func callStarted(_ method: MethodDescriptor)
    func callEnded(_ method: MethodDescriptor, code: RPCError.Code, duration: Duration)
}

/// What a `CallMetrics` backend keeps for one method (its counters and timers), as a subclass:
/// stored on the method's descriptor at its first call (`MethodDescriptor.keepMetricsHandles`)
/// and read back on every later one, so that a call's metrics cost no lookup by name. A
/// descriptor serves every server in the process: a backend uses only the handles it made
/// (`owner`), and keeps its own index for the rest.
open class CallMetricsHandles: @unchecked Sendable {
    /// The backend that made them: an id it never reuses (not its address, which a backend
    /// made after it is freed may get again).
    public let owner: Int

    public init(owner: Int) {
        self.owner = owner
    }
}

/// Tells a `CallMetrics` about every call: started when accepted, ended with its status.
public struct MetricsInterceptor: ServerInterceptor {
    public let metrics: any CallMetrics

    public init(_ metrics: any CallMetrics) {
        self.metrics = metrics
    }

    public func accept(_ context: ServerContext) throws(RPCError) {
        metrics.callStarted(context.method)
    }

    public func callEnded(_ context: ServerContext, status: RPCError) {
        metrics.callEnded(context.method, code: status.code, duration: .now - context.startedAt)
    }
}

/// An error that knows its gRPC status: the executor uses it for any such error a handler
/// throws (storage errors, for instance), so that every path maps errors the same way.
public protocol RPCErrorConvertible: Error {
    var rpcError: RPCError { get }
}
