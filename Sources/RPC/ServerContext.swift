public import NIOCore
import Synchronization

/// What a handler knows about its call, and how it shapes the response's metadata.
/// Shared between the transport's event loop and the handler, so its state is locked.
public final class ServerContext: Sendable {
    public let method: MethodDescriptor
    /// Custom metadata the client sent (reserved `grpc-*` and HTTP/2 headers removed).
    public let requestMetadata: Metadata
    /// When the client gives up (from `grpc-timeout`); `nil` when it set no deadline.
    public let deadline: NIODeadline?
    /// The client's address, e.g. `127.0.0.1:53012`.
    public let peer: String
    /// The event loop the call's connection runs on; deferred handlers complete their futures here.
    public let eventLoop: any EventLoop

    private struct State {
        var cancelled = false
        var cancelHandlers: [@Sendable () -> Void] = []
        var initialMetadata = Metadata()
        var trailingMetadata = Metadata()
        var compressResponses = false
        var requestWasCompressed = false
    }
    private let state = Mutex(State())

    /// The encoding response messages are compressed with when `compressResponses` is on;
    /// `nil` when the client accepts none of ours.
    public let responseEncoding: MessageEncoding?

    init(method: MethodDescriptor, requestMetadata: Metadata, deadline: NIODeadline?, peer: String, eventLoop: any EventLoop,
         responseEncoding: MessageEncoding?, compressResponses: Bool) {
        self.method = method
        self.eventLoop = eventLoop
        self.requestMetadata = requestMetadata
        self.deadline = deadline
        self.peer = peer
        self.responseEncoding = responseEncoding
        state.withLock { $0.compressResponses = compressResponses }
    }

    /// Whether the next response messages are compressed (when the client accepts an
    /// encoding of ours). On by default when the request itself came compressed. Read at each
    /// message, so a streaming handler may change it between writes.
    public var compressResponses: Bool {
        get { state.withLock { $0.compressResponses } }
        set { state.withLock { $0.compressResponses = newValue } }
    }

    /// Whether the (single) request message of a unary or server-streaming call arrived
    /// compressed. Streaming requests tell it per message: `RequestStream.lastMessageWasCompressed`.
    public internal(set) var requestWasCompressed: Bool {
        get { state.withLock { $0.requestWasCompressed } }
        set { state.withLock { $0.requestWasCompressed = newValue } }
    }

    /// A response message ready for framing: compressed when asked and possible.
    func prepareResponse(_ bytes: [UInt8]) throws(RPCError) -> (bytes: [UInt8], compressed: Bool) {
        guard let encoding = responseEncoding, encoding != .identity, compressResponses else { return (bytes, false) }
        return (try encoding.compress(bytes), true)
    }

    /// Time left before the deadline; `nil` when there is none.
    public var timeRemaining: Duration? {
        deadline.map { .nanoseconds(($0 - .now()).nanoseconds) }
    }

    /// True once the client cancelled, the deadline passed, or the connection went away.
    public var isCancelled: Bool { state.withLock { $0.cancelled } }

    /// Runs `handler` when the call is cancelled (at once if it already is).
    public func onCancel(_ handler: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { s -> Bool in
            if s.cancelled { return true }
            s.cancelHandlers.append(handler)
            return false
        }
        if runNow { handler() }
    }

    /// Adds to the response's initial metadata; only effective before the first response
    /// message (or the status, for calls that send none) leaves.
    public func addInitialMetadata(_ key: String, _ value: String) {
        state.withLock { $0.initialMetadata.add(key, value) }
    }

    public func addInitialMetadata(_ key: String, bytes: [UInt8]) {
        state.withLock { $0.initialMetadata.add(key, bytes: bytes) }
    }

    /// Adds to the trailing metadata sent with the status.
    public func addTrailingMetadata(_ key: String, _ value: String) {
        state.withLock { $0.trailingMetadata.add(key, value) }
    }

    public func addTrailingMetadata(_ key: String, bytes: [UInt8]) {
        state.withLock { $0.trailingMetadata.add(key, bytes: bytes) }
    }

    var initialMetadata: Metadata { state.withLock { $0.initialMetadata } }
    var trailingMetadata: Metadata { state.withLock { $0.trailingMetadata } }

    func cancel() {
        let handlers = state.withLock { s -> [@Sendable () -> Void] in
            if s.cancelled { return [] }
            s.cancelled = true
            defer { s.cancelHandlers = [] }
            return s.cancelHandlers
        }
        for h in handlers { h() }
    }
}
