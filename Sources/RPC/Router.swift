public import NIOCore
public import ProtoRuntime

/// One method of a service, with the streaming kind read from the proto descriptor.
public struct MethodDescriptor: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        case unary, clientStreaming, serverStreaming, bidirectionalStreaming
    }
    public let service: String
    public let method: String
    public let kind: Kind

    public init(service: String, method: String, kind: Kind) {
        self.service = service
        self.method = method
        self.kind = kind
    }

    /// The HTTP/2 `:path`, `/package.Service/Method`.
    public var path: String { "/\(service)/\(method)" }
    public var description: String { path }
}

/// Where a unary handler runs.
public enum HandlerPlacement: Sendable {
    /// On the connection's event loop, inline: for handlers that never block.
    case eventLoop
    /// On the server's bounded blocking pool: for handlers that wait on blocking I/O or heavy work.
    case blockingPool
    /// On the connection's event loop, answering through the method's `EventLoopFuture` form:
    /// for handlers that wait on non-blocking I/O (the database) without holding a thread.
    /// The handler must not block.
    case deferred
}

/// A service implementation that can put its methods into a router. Generated service
/// protocols refine this and provide `register(in:)`.
public protocol RPCService: Sendable {
    static var serviceName: String { get }
    func register(in router: inout RPCRouter)
    /// Where a unary method runs; `.eventLoop` unless the service says otherwise.
    func placement(of method: MethodDescriptor) -> HandlerPlacement
    /// Whether this implementation provides `method`; methods it does not are not routed.
    func isImplemented(_ method: MethodDescriptor) -> Bool
}

extension RPCService {
    public func placement(of method: MethodDescriptor) -> HandlerPlacement { .eventLoop }
    public func isImplemented(_ method: MethodDescriptor) -> Bool { true }
}

/// Handlers with the message types erased to bytes, ready for the transport.
enum ErasedHandler: Sendable {
    case unary(HandlerPlacement, @Sendable ([UInt8], ServerContext) throws(RPCError) -> [UInt8])
    /// A unary handler that answers later, on the call's event loop.
    case deferredUnary(@Sendable ([UInt8], ServerContext) -> EventLoopFuture<[UInt8]>)
    case clientStreaming(@Sendable (RawRequestStream, ServerContext) async throws -> [UInt8])
    case serverStreaming(@Sendable ([UInt8], RawResponseWriter, ServerContext) async throws -> Void)
    case bidirectional(@Sendable (RawRequestStream, RawResponseWriter, ServerContext) async throws -> Void)
}

/// Maps `:path` to a handler. Only what is registered is served: an unknown service or
/// method is answered UNIMPLEMENTED by the transport.
public struct RPCRouter: Sendable {
    struct Route: Sendable {
        let method: MethodDescriptor
        let handler: ErasedHandler
    }

    private(set) var routes: [String: Route] = [:]
    private(set) var services: Set<String> = []

    public init() {}

    /// Registers every method of `service`.
    public mutating func register(_ service: some RPCService) {
        service.register(in: &self)
    }

    public var registeredServices: [String] { services.sorted() }

    /// Run by `RPCServer.shutdownGracefully` once calls are done and before the event loops
    /// stop: for services holding resources that live on the loops (database connections).
    private(set) var shutdownHooks: [@Sendable () async -> Void] = []

    public mutating func addShutdownHook(_ hook: @escaping @Sendable () async -> Void) {
        shutdownHooks.append(hook)
    }

    private mutating func add(_ method: MethodDescriptor, _ handler: ErasedHandler) {
        precondition(routes[method.path] == nil, "\(method) registered twice")
        services.insert(method.service)
        routes[method.path] = Route(method: method, handler: handler)
    }

    public mutating func addUnary<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor, placement: HandlerPlacement,
        _ handler: @escaping @Sendable (Request, ServerContext) throws(RPCError) -> Response
    ) {
        precondition(placement != .deferred, "\(method): a deferred method registers its EventLoopFuture form")
        add(method, .unary(placement) { (bytes, context) throws(RPCError) in
            let request = try decodeRequest(Request.self, bytes)
            return try handler(request, context).serializedBytes()
        })
    }

    /// Registers a unary method that answers through a future completed on the call's event
    /// loop (`HandlerPlacement.deferred`). The handler runs on the event loop and must not block.
    public mutating func addDeferredUnary<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor,
        _ handler: @escaping @Sendable (Request, ServerContext) -> EventLoopFuture<Response>
    ) {
        add(method, .deferredUnary { bytes, context in
            let request: Request
            do { request = try decodeRequest(Request.self, bytes) } catch { return context.eventLoop.makeFailedFuture(error) }
            return handler(request, context).map { $0.serializedBytes() }
        })
    }

    public mutating func addClientStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor,
        _ handler: @escaping @Sendable (RequestStream<Request>, ServerContext) async throws -> Response
    ) {
        add(method, .clientStreaming { raw, context in
            try await handler(RequestStream(raw: raw), context).serializedBytes()
        })
    }

    public mutating func addServerStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor,
        _ handler: @escaping @Sendable (Request, ResponseWriter<Response>, ServerContext) async throws -> Void
    ) {
        add(method, .serverStreaming { bytes, writer, context in
            try await handler(try decodeRequest(Request.self, bytes), ResponseWriter(raw: writer), context)
        })
    }

    public mutating func addBidirectionalStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ method: MethodDescriptor,
        _ handler: @escaping @Sendable (RequestStream<Request>, ResponseWriter<Response>, ServerContext) async throws -> Void
    ) {
        add(method, .bidirectional { raw, writer, context in
            try await handler(RequestStream(raw: raw), ResponseWriter(raw: writer), context)
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
