public import ProtoRuntime

/// One method of a service, with the streaming kind read from the proto descriptor. A value
/// type whose names live in one shared box: every call's context holds its method, and a copy
/// costs one reference count, not one per string.
public struct MethodDescriptor: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        case unary, clientStreaming, serverStreaming, bidirectionalStreaming
    }

    private final class Names: Sendable {
        let service: String
        let method: String
        let kind: Kind
        let path: String
        /// What a metrics backend keeps for this method, set on its first call.
        let metrics = SetOnce<CallMetricsHandles>()

        init(service: String, method: String, kind: Kind) {
            self.service = service
            self.method = method
            self.kind = kind
            self.path = "/\(service)/\(method)"
        }
    }
    private let names: Names

    public var service: String { names.service }
    public var method: String { names.method }
    public var kind: Kind { names.kind }
    /// The HTTP/2 `:path`, `/package.Service/Method`, made once: interceptors look rules up by it
    /// on every call.
    public var path: String { names.path }

    public init(service: String, method: String, kind: Kind) {
        names = Names(service: service, method: method, kind: kind)
    }
    public var description: String { path }

    /// The handles a `CallMetrics` backend stored on this method (`keepMetricsHandles`), read
    /// on every call without a lookup; nil before the method's first call.
    public var metricsHandles: CallMetricsHandles? { names.metrics.load() }

    /// Runs `body` with the handles stored on this method, borrowed (the method keeps them);
    /// nil before the method's first call.
    public func withMetricsHandles<R>(_ body: (CallMetricsHandles) -> R) -> R? { names.metrics.withLoaded(body) }

    /// Stores `handles` on this method unless some are stored already; returns what is stored.
    @discardableResult
    public func keepMetricsHandles(_ handles: CallMetricsHandles) -> CallMetricsHandles { names.metrics.storeIfNil(handles) }

    /// Equal when service, method and kind are (the path follows from the first two).
    public static func == (a: MethodDescriptor, b: MethodDescriptor) -> Bool {
        a.names === b.names || (a.service == b.service && a.method == b.method && a.kind == b.kind)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(service)
        hasher.combine(method)
        hasher.combine(kind)
    }

    /// Whether the client sends one message (unary and server streaming) rather than a stream.
    var takesOneMessage: Bool { kind == .unary || kind == .serverStreaming }
}

/// A service implementation that can put its methods into a router. Generated service
/// protocols refine this and provide `register(in:)`.
public protocol RPCService: Sendable {
    static var serviceName: String { get }
    func register(in router: inout RPCRouter)
}

/// A handler with the message types erased to bytes, in one of the two forms the executor runs.
enum MethodHandler: Sendable {
    /// A unary handler that answers inline on the event loop; it never blocks or waits.
    case synchronous(@Sendable ([UInt8], ServerContext) throws(RPCError) -> [UInt8])
    /// Any kind of call, in a task: the input is the one request message (unary, server
    /// streaming) or the stream of them. Returns the one response of a unary or
    /// client-streaming call, which the executor sends with the status; streaming responses go
    /// to the writer, and it returns nil.
    case asynchronous(@Sendable (CallInput, RawResponseWriter, ServerContext) async throws -> [UInt8]?)
}

/// What an asynchronous handler reads.
enum CallInput: Sendable {
    case message([UInt8])
    case stream(RawRequestStream)

    /// The one message of a unary or server-streaming call.
    func single() throws(RPCError) -> [UInt8] {
        guard case .message(let bytes) = self else { throw RPCError(code: .internal, message: "expected one request message") }
        return bytes
    }

    func stream() throws(RPCError) -> RawRequestStream {
        guard case .stream(let raw) = self else { throw RPCError(code: .internal, message: "expected a request stream") }
        return raw
    }
}

/// Maps `:path` to a handler. Only what is registered is served: an unknown service or
/// method is answered UNIMPLEMENTED by the transport.
public struct RPCRouter: Sendable {
    /// A class: each call's stream holds its route, by one reference.
    final class Route: Sendable {
        let method: MethodDescriptor
        let handler: MethodHandler

        init(method: MethodDescriptor, handler: MethodHandler) {
            self.method = method
            self.handler = handler
        }
    }

    private(set) var routes: [String: Route] = [:]
    private(set) var services: Set<String> = []

    public init() {}

    /// Registers every method of `service`.
    public mutating func register(_ service: some RPCService) {
        service.register(in: &self)
    }

    public var registeredServices: [String] { services.sorted() }

    private mutating func add(_ method: MethodDescriptor, _ handler: MethodHandler) {
        precondition(routes[method.path] == nil, "\(method) registered twice")
        services.insert(method.service)
        routes[method.path] = Route(method: method, handler: handler)
    }

    /// A unary method answered synchronously on the event loop: its handler must never block
    /// or wait (`Scripts/generator/synchronous-methods.txt` lists the generated ones).
    public mutating func addSynchronousUnary<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor,
        _ handler: @escaping @Sendable (Request, ServerContext) throws(RPCError) -> Response
    ) {
        precondition(method.kind == .unary, "\(method) is not unary")
        add(method, .synchronous { (bytes, context) throws(RPCError) in
            try handler(try decodeRequest(Request.self, bytes), context).serializedBytes()
        })
    }

    public mutating func addUnary<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor,
        _ handler: @escaping @Sendable (Request, ServerContext) async throws -> Response
    ) {
        precondition(method.kind == .unary, "\(method) is not unary")
        add(method, .asynchronous { input, writer, context in
            try await handler(try decodeRequest(Request.self, try input.single()), context).serializedBytes()
        })
    }

    public mutating func addClientStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor,
        _ handler: @escaping @Sendable (RequestStream<Request>, ServerContext) async throws -> Response
    ) {
        precondition(method.kind == .clientStreaming, "\(method) is not client streaming")
        add(method, .asynchronous { input, writer, context in
            try await handler(RequestStream(raw: try input.stream()), context).serializedBytes()
        })
    }

    public mutating func addServerStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor,
        _ handler: @escaping @Sendable (Request, ResponseWriter<Response>, ServerContext) async throws -> Void
    ) {
        precondition(method.kind == .serverStreaming, "\(method) is not server streaming")
        add(method, .asynchronous { input, writer, context in
            try await handler(try decodeRequest(Request.self, try input.single()), ResponseWriter(raw: writer), context)
            return nil
        })
    }

    public mutating func addBidirectionalStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor,
        _ handler: @escaping @Sendable (RequestStream<Request>, ResponseWriter<Response>, ServerContext) async throws -> Void
    ) {
        precondition(method.kind == .bidirectionalStreaming, "\(method) is not bidirectional streaming")
        add(method, .asynchronous { input, writer, context in
            try await handler(RequestStream(raw: try input.stream()), ResponseWriter(raw: writer), context)
            return nil
        })
    }
}

/// Decodes a request message; undecodable bytes are the client's fault.
func decodeRequest<M: ProtoMessage>(_ type: M.Type, _ bytes: [UInt8]) throws(RPCError) -> M {
    do {
        return try M(serializedBytes: bytes)
    } catch {
        switch error.kind {
        case .tooLarge: throw RPCError(code: .resourceExhausted, message: "request \(error)")
        case .malformed:
            throw RPCError(
                code: .invalidArgument, message: "request is not a valid \(M.protoName) message: \(error)",
                details: [.fieldViolation(field: error.fieldPath ?? "", description: error.reason, reason: "MALFORMED_MESSAGE")])
        }
    }
}
