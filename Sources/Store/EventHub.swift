internal import CLibPQ
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Wakes `WatchRequests` streams when events they follow commit, on every replica sharing the
/// database. A transaction that appended events hands their recipients here once it committed
/// (`published`): this replica's watchers of those recipients wake at once, and the relay — one
/// thread a replica, with its own connection — sends them to the other replicas in one NOTIFY
/// for everything that gathered while the previous one went out, outside every write
/// transaction (a NOTIFY inside each one serializes their commits). The listener — another
/// thread and connection — LISTENs and wakes the watchers named in the other replicas'
/// notifications. Notifications only wake: the log itself is the truth, so a lost one (a replica
/// killed between commit and relay, a listener reconnecting) costs latency, never an event:
/// every watcher reads again at least every `pollInterval` (5 seconds while the listener
/// listens, 1 second while it does not), and all are woken when it has reconnected.
public final class EventHub: Sendable {
    public struct Configuration: Sendable {
        /// The NOTIFY channel.
        public var channel = "esaylov_request_events"
        /// How often every watcher is woken to check its clocks (heartbeat, fallback read).
        public var tick: Duration = .seconds(1)
        /// How often a watcher reads the log without a notification while the listener listens.
        public var pollWhileListening: Duration = .seconds(5)
        /// …and while it does not.
        public var pollWhileDeaf: Duration = .seconds(1)
        public init() {}
    }

    public let configuration: Configuration
    /// Names this replica in its notifications, so that its listener skips its own.
    let replica: String
    private let url: String
    private let subscriptions = Mutex<[String: [ObjectIdentifier: EventSubscription]]>([:])
    private let outbox = Mutex<Set<String>>([])
    private let relayWake = DispatchSemaphore(value: 0)
    private let listening = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    private let threads = Atomic<Int>(0)
    /// Notifications sent and received, for tests and the operator.
    private let sent = Atomic<Int>(0)
    private let received = Atomic<Int>(0)

    public init(database: Database, configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.url = database.configuration.url
        self.replica = (0..<8).map { _ in String(UInt8.random(in: 0...255), radix: 16) }.joined()
    }

    /// Starts the relay, the listener and the ticker (threads of their own: libpq blocks).
    public func start() {
        guard threads.compareExchange(expected: 0, desired: 3, ordering: .acquiringAndReleasing).exchanged else { return }
        for (name, body) in [("relay", relay), ("listener", listen), ("ticker", tickLoop)] as [(String, @Sendable () -> Void)] {
            let thread = Thread { body() }
            thread.name = "esaylov.events.\(name)"
            thread.start()
        }
    }

    /// Stops the threads (each within a second) and ends every subscription.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        relayWake.signal()
        for s in subscriptions.withLock({ $0.values.flatMap(\.values) }) { s.end() }
    }

    /// Whether the listener holds a live LISTEN connection.
    public var isListening: Bool { listening.load(ordering: .acquiring) }

    /// How long a watcher goes without reading the log when nothing woke it.
    public var pollInterval: Duration { isListening ? configuration.pollWhileListening : configuration.pollWhileDeaf }

    // MARK: watchers

    /// A watcher of `recipient` (an `EventRecipient.key`): its signals come on every event
    /// published for it (here or on another replica) and on every tick.
    public func subscribe(_ recipient: String) -> EventSubscription {
        let s = EventSubscription(recipient: recipient)
        subscriptions.withLock { $0[recipient, default: [:]][ObjectIdentifier(s)] = s }
        if stopped.load(ordering: .acquiring) { s.end() }
        return s
    }

    public func unsubscribe(_ s: EventSubscription) {
        subscriptions.withLock { all in
            all[s.recipient]?[ObjectIdentifier(s)] = nil
            if all[s.recipient]?.isEmpty == true { all[s.recipient] = nil }
        }
        s.end()
    }

    /// Watchers open on this replica.
    public var watcherCount: Int { subscriptions.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    /// Events for `recipients` committed on this replica: wakes its watchers and queues the
    /// notification of the others.
    public func published(_ recipients: [String]) {
        wake(recipients)
        outbox.withLock { $0.formUnion(recipients) }
        relayWake.signal()
    }

    private func wake(_ recipients: [String]) {
        let targets = subscriptions.withLock { all in recipients.flatMap { all[$0].map { Array($0.values) } ?? [] } }
        for s in targets { s.notify() }
    }

    private func wakeEveryone() {
        for s in subscriptions.withLock({ $0.values.flatMap(\.values) }) { s.notify() }
    }

    private func tickLoop() {
        while !stopped.load(ordering: .acquiring) {
            Thread.sleep(forTimeInterval: configuration.tick.inSeconds)
            for s in subscriptions.withLock({ $0.values.flatMap(\.values) }) { s.tick() }
        }
    }

    // MARK: the relay

    /// NOTIFY payloads for `recipients`: this replica's name, then the keys, each payload under
    /// PostgreSQL's 8,000 bytes.
    static func payloads(replica: String, _ recipients: [String], limit: Int = 7_000) -> [String] {
        var out: [String] = []
        var current = replica
        for key in recipients.sorted() {
            if current.utf8.count + 1 + key.utf8.count > limit, current != replica {
                out.append(current)
                current = replica
            }
            current += " " + key
        }
        if current != replica { out.append(current) }
        return out
    }

    /// The keys of a notification from another replica; nil for this replica's own.
    static func recipients(ofPayload payload: String, replica: String) -> [String]? {
        let parts = payload.split(separator: " ").map(String.init)
        guard let first = parts.first, first != replica else { return nil }
        return Array(parts.dropFirst())
    }

    private func relay() {
        var connection: Connection?
        while !stopped.load(ordering: .acquiring) {
            _ = relayWake.wait(timeout: .now() + .seconds(1))
            let batch = outbox.withLock { o -> [String] in
                defer { o.removeAll(keepingCapacity: true) }
                return Array(o)
            }
            guard !batch.isEmpty else { continue }
            do throws(StoreError) {
                if connection == nil { connection = try Connection(url: url, defaultStatementTimeoutMs: 5_000) }
                for payload in Self.payloads(replica: replica, batch) {
                    try connection!.query("SELECT pg_notify(\(configuration.channel), \(payload))")
                    sent.add(1, ordering: .relaxed)
                }
            } catch {
                // The other replicas read again within their poll interval: nothing is lost.
                if connection?.isHealthy != true { connection = nil }
            }
        }
    }

    /// Notifications this replica sent and received (a test's and an operator's view).
    public var notificationCounts: (sent: Int, received: Int) { (sent.load(ordering: .relaxed), received.load(ordering: .relaxed)) }

    // MARK: the listener

    private func listen() {
        var machine = ListenerStateMachine()
        var action = machine.start()
        var connection: Connection?
        while true {
            if stopped.load(ordering: .acquiring) { action = machine.stop() }
            switch action {
            case .connect:
                do throws(StoreError) {
                    let c = try Connection(url: url, defaultStatementTimeoutMs: 5_000)
                    try c.execute("LISTEN \(configuration.channel)")  // our constant channel name, not input
                    connection = c
                    listening.store(true, ordering: .releasing)
                    action = machine.connected()
                } catch {
                    action = machine.failed()
                }
            case .wakeEveryone:
                // Whatever was notified while it was not listening is read now.
                wakeEveryone()
                action = .receive
            case .receive:
                guard let c = connection, receive(c) else {
                    connection = nil
                    listening.store(false, ordering: .releasing)
                    action = machine.failed()
                    continue
                }
            case .wait(let delay):
                Thread.sleep(forTimeInterval: delay.inSeconds)
                action = machine.retry()
            case .close:
                connection = nil
                listening.store(false, ordering: .releasing)
                return
            }
        }
    }

    /// Waits up to a second for notifications on `c` and wakes their watchers; false when the
    /// connection broke.
    private func receive(_ c: Connection) -> Bool {
        var fds = pollfd(fd: PQsocket(c.conn), events: Int16(POLLIN), revents: 0)
        let n = poll(&fds, 1, 1000)
        if n < 0 { return errno == EINTR }
        if n == 0 { return true }
        guard PQconsumeInput(c.conn) == 1 else { return false }
        var keys: [String] = []
        while let note = PQnotifies(c.conn) {
            if let extra = note.pointee.extra, let found = Self.recipients(ofPayload: String(cString: extra), replica: replica) {
                keys += found
                received.add(1, ordering: .relaxed)
            }
            PQfreemem(note)
        }
        if !keys.isEmpty { wake(keys) }
        return c.isHealthy
    }
}

/// One watcher's wake-ups: a signal (coalesced: one pending at most) on each event published
/// for its recipient and on each tick, and whether an event came since it last looked.
public final class EventSubscription: Sendable {
    public let recipient: String
    public let signals: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation
    private let notified = Atomic<Bool>(false)

    init(recipient: String) {
        self.recipient = recipient
        (signals, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    func notify() {
        notified.store(true, ordering: .releasing)
        continuation.yield()
    }

    func tick() { continuation.yield() }

    func end() { continuation.finish() }

    /// Ends the signals: the watcher's wait returns.
    public func cancel() { end() }

    /// Whether an event was published since the last call.
    public func takeNotified() -> Bool { notified.exchange(false, ordering: .acquiringAndReleasing) }
}

/// The listener's connection: connect, LISTEN, receive until it breaks, then wait with backoff
/// (0.25 s doubling to 8 s) and connect again, waking every watcher once it listens again.
struct ListenerStateMachine {
    enum State: Equatable {
        case idle
        case connecting(failures: Int)
        case listening
        case backingOff(failures: Int)
        case stopped
    }

    enum Action: Equatable {
        case connect
        /// Listening again: every watcher reads, for what it may have missed.
        case wakeEveryone
        case receive
        case wait(Duration)
        case close
    }

    private(set) var state = State.idle

    mutating func start() -> Action {
        guard case .idle = state else { return .close }
        state = .connecting(failures: 0)
        return .connect
    }

    mutating func connected() -> Action {
        guard case .connecting = state else { return .close }
        state = .listening
        return .wakeEveryone
    }

    mutating func failed() -> Action {
        switch state {
        case .connecting(let n):
            state = .backingOff(failures: n + 1)
            return .wait(Self.backoff(n + 1))
        case .listening:
            state = .backingOff(failures: 1)
            return .wait(Self.backoff(1))
        case .idle, .backingOff, .stopped:
            return .close
        }
    }

    mutating func retry() -> Action {
        guard case .backingOff(let n) = state else { return .close }
        state = .connecting(failures: n)
        return .connect
    }

    mutating func stop() -> Action {
        state = .stopped
        return .close
    }

    static func backoff(_ failures: Int) -> Duration {
        .milliseconds(250 << min(max(failures - 1, 0), 5))
    }
}

extension Duration {
    /// The duration in seconds, with its fraction.
    public var inSeconds: Double {
        let (s, a) = components
        return Double(s) + Double(a) / 1e18
    }
}
