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

    private struct State {
        var cancelled = false
        var cancelHandlers: [@Sendable () -> Void] = []
        var initialMetadata = Metadata()
        var trailingMetadata = Metadata()
    }
    private let state = Mutex(State())

    init(method: MethodDescriptor, requestMetadata: Metadata, deadline: NIODeadline?, peer: String) {
        self.method = method
        self.requestMetadata = requestMetadata
        self.deadline = deadline
        self.peer = peer
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
