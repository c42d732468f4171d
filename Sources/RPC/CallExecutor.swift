import Logging
import NIOCore

/// Runs every call the same way, whatever its kind: the interceptors accept it, the handler
/// runs (inline on the event loop for synchronous unary methods, in a task on the connection's
/// loop otherwise), and the call ends with exactly one status, errors mapped in one place.
/// Driven on the event loops, like the streams it drives. A class: the server's calls use
/// its one instance in place (a struct would be copied out of the server, its fields
/// retained and released, at each use).
final class CallExecutor: Sendable {
    let interceptors: [any ServerInterceptor]
    /// The same interceptors as a chain, for the two events of every call: walked down the
    /// links' constants, each is used in place (one called out of the array is copied first:
    /// a retain and a release of what it holds, twice a call per interceptor).
    private let chain: InterceptorLink?
    let logger: Logger

    init(interceptors: [any ServerInterceptor], logger: Logger) {
        self.interceptors = interceptors
        self.logger = logger
        chain = interceptors.reversed().reduce(nil) { next, interceptor in InterceptorLink(interceptor, next: next) }
    }

    /// The request headers of a routed call arrived. Runs the interceptors' `accept`; starts a
    /// streaming-input handler at once; a single-message call waits for `inputEnded`.
    func start(_ stream: ServerStream, _ route: RPCRouter.Route, _ context: ServerContext, on connection: HTTP2Connection) {
        stream.route = route
        var entered = 0
        do throws(RPCError) {
            try chain?.accept(context, entered: &entered)
            stream.interceptorsEntered = entered
        } catch {
            stream.interceptorsEntered = entered
            stream.finish(error)
            return
        }
        guard !route.method.takesOneMessage, case .asynchronous(let handler) = route.handler else { return }
        let source = connection.makeRequestSource(stream)
        run(stream, context, on: connection) { writer in try await handler(.stream(source), writer, context) }
    }

    /// The client half-closed. A single-message call now runs its handler.
    func inputEnded(_ stream: ServerStream, request: [UInt8], on connection: HTTP2Connection) {
        guard let route = stream.route, let context = stream.context else { return }
        switch route.handler {
        case .synchronous(let handler):
            // Fast path: no hop, the answer leaves with this read's flush.
            stream.answer(Result { () throws(RPCError) in try context.prepareResponse(try handler(request, context)) }, on: connection)
        case .asynchronous(let handler):
            run(stream, context, on: connection) { writer in try await handler(.message(request), writer, context) }
        }
    }

    /// Tells the interceptors that saw the call how it ended; before its trailers are built.
    func ended(_ stream: ServerStream, _ context: ServerContext, status: RPCError) {
        let entered = stream.interceptorsEntered
        stream.interceptorsEntered = 0
        if entered > 0 { chain?.callEnded(context, status: status, count: entered) }
    }

    /// Runs an asynchronous handler in a task on the connection's event loop (its executor);
    /// its returned message, or its error, becomes the call's end.
    private func run(
        _ stream: ServerStream, _ context: ServerContext, on connection: HTTP2Connection,
        _ body: @escaping @Sendable (RawResponseWriter) async throws -> [UInt8]?
    ) {
        let loop = connection.eventLoop
        let bound = NIOLoopBound(stream, eventLoop: loop)
        let writer = RawResponseWriter(stream: bound, context: context)
        let interceptors = self.interceptors
        let executor = self
        stream.task = Task(executorPreference: connection.taskExecutor) {
            let outcome: Result<(bytes: [UInt8], compressed: Bool)?, RPCError>
            do {
                for interceptor in interceptors { try await interceptor.acceptAsync(context) }
                outcome = .success(try await body(writer).map { try context.prepareResponse($0) })
            } catch {
                outcome = .failure(executor.status(for: error, context))
            }
            if loop.inEventLoop {
                bound.value.end(outcome)
            } else {
                loop.execute { bound.value.end(outcome) }
            }
        }
    }

    /// The one error mapping of every call path: an `RPCError` keeps its status and details,
    /// an `RPCErrorConvertible` gives its own, a cancellation is CANCELLED, and anything else
    /// is INTERNAL with a generic message, logged once with the method and request id (the
    /// error's type only: its description may hold payload).
    func status(for error: any Error, _ context: ServerContext) -> RPCError {
        switch error {
        case let error as RPCError: return error
        case let error as any RPCErrorConvertible: return error.rpcError
        case is CancellationError: return RPCError(code: .cancelled, message: "call cancelled")
        default:
            let id = context.requestID
            logger.error("handler failed", metadata: [
                "method": "\(context.method.path)", "request_id": "\(id)", "error_type": "\(String(reflecting: type(of: error)))",
            ])
            return RPCError(code: .internal, message: "internal error (request id \(id))")
        }
    }
}

/// One interceptor and the rest of the chain after it.
private final class InterceptorLink: Sendable {
    let interceptor: any ServerInterceptor
    let next: InterceptorLink?

    init(_ interceptor: any ServerInterceptor, next: InterceptorLink?) {
        self.interceptor = interceptor
        self.next = next
    }

    /// `accept` of this interceptor and then of the rest, until one refuses; `entered` counts
    /// those that ran (the one that refused included).
    func accept(_ context: ServerContext, entered: inout Int) throws(RPCError) {
        entered += 1
        try interceptor.accept(context)
        try next?.accept(context, entered: &entered)
    }

    /// `callEnded` of this interceptor and of the rest of the first `count`.
    func callEnded(_ context: ServerContext, status: RPCError, count: Int) {
        interceptor.callEnded(context, status: status)
        if count > 1 { next?.callEnded(context, status: status, count: count - 1) }
    }
}
