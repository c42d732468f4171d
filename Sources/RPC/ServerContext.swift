import NIOCore
import Synchronization

/// A typed entry of a call's context: interceptors set it, handlers read it
/// (`context[AuthenticatedCaller.self]`). The key type is the identity, so two modules cannot
/// collide on a name.
public protocol ServerContextKey {
    associatedtype Value: Sendable
}

/// What a handler knows about its call, and how it shapes the response's metadata. Holds no
/// transport type. Shared between the transport's event loop and the handler, so its mutable
/// state is locked.
public final class ServerContext: Sendable {
    public let method: MethodDescriptor
    /// Custom metadata the client sent (reserved `grpc-*` and HTTP/2 headers removed).
    public let requestMetadata: Metadata
    /// What every call of the connection shares, held once: a call retains one object, not four.
    let origin: CallOrigin
    /// The client's address, e.g. `127.0.0.1:53012`.
    public var peer: String { origin.peer }
    /// The call's TLS connection (protocol, cipher, the verified client certificate under
    /// mutual TLS); nil on h2c.
    public var tls: TLSPeer? { origin.tls }
    /// When the call's headers arrived (the start of the read that brought them).
    public let startedAt: ContinuousClock.Instant
    /// The encoding response messages are compressed with when `compressResponses` is on;
    /// `nil` when the client accepts none of ours.
    public let responseEncoding: MessageEncoding?

    /// The call's connection's event loop and server: for the blocking pool.
    var loop: any EventLoop { origin.loop }
    var core: ServerCore { origin.core }

    private struct State {
        var deadline: ContinuousClock.Instant?
        var cancelHandlers: [@Sendable () -> Void] = []
        var initialMetadata = Metadata()
        var trailingMetadata = Metadata()
        var compressResponses = false
        var requestWasCompressed = false
        var requestID: String?
        var values: [ObjectIdentifier: any Sendable] = [:]
    }
    private let state: Mutex<State>
    /// Which of the locked values below have been set, read without the lock: most calls set
    /// none of them, and the event loop then reads them all without locking. Also whether
    /// the call is cancelled, and whether anyone waits for that (`cancelHandlers`).
    private let present: Atomic<UInt8>
    private enum Present {
        static let deadline: UInt8 = 1
        static let initialMetadata: UInt8 = 2
        static let trailingMetadata: UInt8 = 4
        static let cancelled: UInt8 = 8
        static let cancelHandlers: UInt8 = 16
    }

    init(
        method: MethodDescriptor, requestMetadata: Metadata, startedAt: ContinuousClock.Instant, deadline: ContinuousClock.Instant?, origin: CallOrigin,
        responseEncoding: MessageEncoding?, compressResponses: Bool
    ) {
        self.method = method
        self.requestMetadata = requestMetadata
        self.origin = origin
        self.responseEncoding = responseEncoding
        self.startedAt = startedAt
        state = Mutex(State(deadline: deadline, compressResponses: compressResponses))
        present = Atomic(deadline == nil ? 0 : Present.deadline)
    }

    /// When the client gives up (from `grpc-timeout`, as the deadline interceptor bounds it);
    /// `nil` when it set no deadline.
    public internal(set) var deadline: ContinuousClock.Instant? {
        get {
            guard has(Present.deadline) else { return nil }
            return state.withLock { $0.deadline }
        }
        set {
            state.withLock { $0.deadline = newValue }
            if newValue != nil { mark(Present.deadline) }
        }
    }

    /// Whether the call has a deadline, without reading it (an optional instant is read
    /// through the clock type's value witnesses: it is not a fixed-layout type).
    var hasDeadline: Bool { has(Present.deadline) }

    /// Time left before the deadline; `nil` when there is none.
    public var timeRemaining: Duration? {
        deadline.map { $0 - .now }
    }

    /// The call's request id: the client's `x-request-id` when it sent a valid one (the
    /// request-id interceptor takes it), otherwise one made for this call on first use.
    public var requestID: String {
        state.withLock { s in
            if let id = s.requestID { return id }
            let id = RequestID.make()
            s.requestID = id
            return id
        }
    }

    func setRequestID(_ id: String) { state.withLock { $0.requestID = id } }

    /// A typed value an interceptor put on this call; `nil` when none did.
    public subscript<Key: ServerContextKey>(_ key: Key.Type) -> Key.Value? {
        get { state.withLock { $0.values[ObjectIdentifier(key)] as? Key.Value } }
        set { state.withLock { $0.values[ObjectIdentifier(key)] = newValue } }
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

    /// True once the client cancelled, the deadline passed, or the connection went away.
    public var isCancelled: Bool { has(Present.cancelled) }

    /// Runs `handler` when the call is cancelled (at once if it already is).
    public func onCancel(_ handler: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { s -> Bool in
            // Both flags are bits of one atomic, changed in one order: either `cancel` set
            // its flag first, and this sees it, or it sees this flag, and takes the lock,
            // which is held until the handler is stored.
            let before = present.bitwiseOr(Present.cancelHandlers, ordering: .acquiringAndReleasing).oldValue
            if before & Present.cancelled != 0 { return true }
            s.cancelHandlers.append(handler)
            return false
        }
        if runNow { handler() }
    }

    /// Adds to the response's initial metadata; only effective before the first response
    /// message (or the status, for calls that send none) leaves.
    public func addInitialMetadata(_ key: String, _ value: String) {
        state.withLock { $0.initialMetadata.add(key, value) }
        mark(Present.initialMetadata)
    }

    public func addInitialMetadata(_ key: String, bytes: [UInt8]) {
        state.withLock { $0.initialMetadata.add(key, bytes: bytes) }
        mark(Present.initialMetadata)
    }

    /// Adds to the trailing metadata sent with the status.
    public func addTrailingMetadata(_ key: String, _ value: String) {
        state.withLock { $0.trailingMetadata.add(key, value) }
        mark(Present.trailingMetadata)
    }

    public func addTrailingMetadata(_ key: String, bytes: [UInt8]) {
        state.withLock { $0.trailingMetadata.add(key, bytes: bytes) }
        mark(Present.trailingMetadata)
    }

    /// The initial metadata, nil when there is none (most calls: no copy to make and free).
    var initialMetadataIfAny: Metadata? {
        guard has(Present.initialMetadata) else { return nil }
        return state.withLock { $0.initialMetadata }
    }

    /// The trailing metadata, nil when there is none (most calls: no copy to make and free).
    var trailingMetadataIfAny: Metadata? {
        guard has(Present.trailingMetadata) else { return nil }
        return state.withLock { $0.trailingMetadata }
    }

    /// Whether a value of `bit` was set: once it has, its reader takes the lock.
    private func has(_ bit: UInt8) -> Bool {
        present.load(ordering: .acquiring) & bit != 0
    }

    /// Records that a value of `bit` was set (after setting it under the lock).
    private func mark(_ bit: UInt8) {
        if !has(bit) { present.bitwiseOr(bit, ordering: .releasing) }
    }

    /// Runs `work` on the server's bounded blocking pool and returns its result, leaving the
    /// event loops free: for work that blocks its thread. RESOURCE_EXHAUSTED when the pool's
    /// queue is full.
    public func runBlocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        guard let future = core.runBlocking(on: loop, work) else {
            throw RPCError(code: .resourceExhausted, message: "server is busy; retry later")
        }
        return try await future.get()
    }

    /// Cancels the call once: its handlers run (in the thread that cancels). Most calls have
    /// none, and their cancellation takes no lock.
    func cancel() {
        let before = present.bitwiseOr(Present.cancelled, ordering: .acquiringAndReleasing).oldValue
        guard before & Present.cancelled == 0, before & Present.cancelHandlers != 0 else { return }
        let handlers = state.withLock { s -> [@Sendable () -> Void] in
            defer { s.cancelHandlers = [] }
            return s.cancelHandlers
        }
        for h in handlers { h() }
    }
}

/// What the calls of one connection have in common: its peer, its TLS session, its event loop
/// and its server. Made once per connection (once its TLS handshake is done).
final class CallOrigin: Sendable {
    let peer: String
    let tls: TLSPeer?
    let loop: any EventLoop
    let core: ServerCore

    init(peer: String, tls: TLSPeer?, loop: any EventLoop, core: ServerCore) {
        self.peer = peer
        self.tls = tls
        self.loop = loop
        self.core = core
    }
}

/// Request ids: 16 hex digits from the system's random source when the client gave none;
/// a client's own is accepted when it is 1 to 64 characters of `A-Z a-z 0-9 . _ -`.
enum RequestID {
    static func make() -> String {
        var g = SystemRandomNumberGenerator()
        let n = g.next() as UInt64
        let hex = String(n, radix: 16)
        return String(repeating: "0", count: 16 - hex.utf8.count) + hex
    }

    static func isValid(_ id: String) -> Bool {
        let bytes = id.utf8
        guard (1...64).contains(bytes.count) else { return false }
        return bytes.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x5F || b == 0x2D
        }
    }
}
