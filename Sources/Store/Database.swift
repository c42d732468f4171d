import Dispatch
import NIOCore
import NIOPosix
import Foundation
import Synchronization

/// A bounded pool of libpq connections. Every call blocks its thread (the server runs storage
/// work on its blocking pool, never on an event loop) and always gives the connection back.
public final class Database: Sendable {
    public struct Configuration: Sendable {
        /// libpq connection URL, e.g. postgresql://user:pass@127.0.0.1:5432/esaylov.
        public var url: String
        /// Connections at most; as many calls run at once.
        public var poolSize = 8
        /// How long a call waits for a free connection before RESOURCE_EXHAUSTED.
        public var acquireTimeout: Duration = .seconds(5)
        /// statement_timeout when the RPC has no deadline.
        public var defaultStatementTimeout: Duration = .seconds(30)
        /// Retries of a transaction that hit a serialization failure or deadlock.
        public var maxRetries = 3
        /// Connections each event loop keeps for `read(_:on:timeout:)` (opened as load needs them).
        public var connectionsPerEventLoop = 8
        /// Calls that may wait for one of an event loop's connections; beyond, RESOURCE_EXHAUSTED.
        public var maxWaitingPerEventLoop = 1024
        /// Transactions that may wait for a thread of the transaction pool; beyond, they fail
        /// at once with `.poolExhausted`.
        public var maxWaitingTransactions = 1024

        public init(url: String) { self.url = url }
    }

    public let configuration: Configuration
    /// Waits and failures, for the metrics.
    public let statistics = DatabaseStatistics()
    /// A connection is used by one thread at a time: it moves between threads only through
    /// this lock.
    private let idle = Mutex<[ConnectionBox]>([])
    private let slots: DispatchSemaphore
    /// Presumed reachable until a call or the monitor finds otherwise.
    private let ready = Atomic<Bool>(true)
    private let readinessHandlers = Mutex<[@Sendable (Bool) -> Void]>([])
    private let monitorTask = Mutex<Task<Void, Never>?>(nil)

    public init(configuration: Configuration) {
        var configuration = configuration
        // An unreachable host must not hold a thread for the OS's TCP timeout.
        if !configuration.url.contains("connect_timeout") {
            configuration.url += (configuration.url.contains("?") ? "&" : "?") + "connect_timeout=5"
        }
        self.configuration = configuration
        slots = DispatchSemaphore(value: configuration.poolSize)
    }

    /// Set once monitoring runs: from then on, calls while the database is down fail at once
    /// (UNAVAILABLE) and only the monitor reconnects, with backoff.
    private let monitoring = Atomic<Bool>(false)

    /// True when calls should fail at once: the monitor runs and last found the database down.
    var knownUnreachable: Bool { monitoring.load(ordering: .acquiring) && !isReady }

    /// Each event loop's connections for non-blocking calls, made on the loop's first call.
    let lanes = Mutex<[ObjectIdentifier: NIOLoopBound<Lane>]>([:])

    /// The threads `transaction` runs on, one per pooled connection; started on first use.
    private let writers = Mutex<NIOThreadPool?>(nil)
    /// Transactions submitted and not finished.
    private let transactionsInFlight = Atomic<Int>(0)

    /// The loop of reads made off any event loop (operator tools, tests), started on first use.
    private let ownGroup = Mutex<MultiThreadedEventLoopGroup?>(nil)
    var ownLoop: any EventLoop {
        ownGroup.withLock { group in
            if let group { return group.next() }
            let made = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            group = made
            return made.next()
        }
    }

    /// Set by `close()`: reads fail at once and no loop is asked to do anything more.
    private let closed = Atomic<Bool>(false)
    var isClosed: Bool { closed.load(ordering: .acquiring) }

    /// Closes the event loops' connections (each on its loop) and stops the monitor. Call
    /// before the loops stop; reads fail UNAVAILABLE from then on. The blocking pool stays usable.
    public func close() async {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        monitorTask.withLock { $0?.cancel() }
        for lane in lanes.withLock({ Array($0.values) }) {
            try? await lane.eventLoop.submit { lane.value.closeAll() }.get()
        }
        if let group = ownGroup.withLock({ $0 }) { try? await group.shutdownGracefully() }
        if let pool = writers.withLock({ $0 }) { try? await pool.shutdownGracefully() }
    }

    deinit {
        monitorTask.withLock { $0?.cancel() }
        // Not closed: its loops still run (a closed database has nothing left on them).
        guard !isClosed else { return }
        for lane in lanes.withLock({ Array($0.values) }) {
            lane.eventLoop.execute { lane.value.closeAll() }
        }
        ownGroup.withLock { $0?.shutdownGracefully { _ in } }
        writers.withLock { $0?.shutdownGracefully { _ in } }
    }

    /// Whether the last contact with PostgreSQL succeeded.
    public var isReady: Bool { ready.load(ordering: .acquiring) }

    /// Calls `handler` on every readiness change (health reports it).
    public func onReadinessChange(_ handler: @escaping @Sendable (Bool) -> Void) {
        readinessHandlers.withLock { $0.append(handler) }
    }

    func setReady(_ value: Bool) {
        let old = ready.exchange(value, ordering: .acquiringAndReleasing)
        guard old != value else { return }
        for h in readinessHandlers.withLock({ $0 }) { h(value) }
    }

    /// Checks the database every `interval` while it is reachable, so readiness follows a
    /// database that goes away even when no call touches it; while it is unreachable, retries
    /// with exponential backoff (a quarter of `interval`, doubling, at most twice `interval`).
    /// From its start, calls while the database is down fail at once (UNAVAILABLE) and only
    /// the monitor reconnects. Runs until its task is cancelled; each probe runs on the
    /// database's own threads, never on the caller's.
    public func monitor(interval: Duration = .seconds(1)) async {
        var schedule = ProbeSchedule(interval: interval)
        while !Task.isCancelled {
            try? await Task.sleep(for: schedule.next(afterSuccess: await probe()))
        }
    }

    /// Runs the monitor in a task of its own until `close()` (for callers outside a service
    /// group: tests, tools). The task holds the database only while it probes.
    public func startMonitoring(interval: Duration = .seconds(1)) {
        let task = Task { [weak self] in
            var schedule = ProbeSchedule(interval: interval)
            while !Task.isCancelled {
                guard let ok = await self?.probe() else { return }
                try? await Task.sleep(for: schedule.next(afterSuccess: ok))
            }
        }
        monitorTask.withLock { $0 = task }
    }

    /// One check of the database, on its own threads.
    private func probe() async -> Bool {
        monitoring.store(true, ordering: .releasing)
        return (try? await writerPool.runIfActive {
            try self.withConnection(timeout: .seconds(2), probing: true) { (c) throws(StoreError) in try c.execute("SELECT 1") }
        }) != nil
    }

    /// Runs `body` with a connection. `timeout` (what is left of the RPC's deadline) becomes
    /// the statement_timeout.
    @discardableResult
    public func withConnection<T>(
        timeout: Duration? = nil, _ body: (Connection) throws(StoreError) -> T
    ) throws(StoreError) -> T {
        try withConnection(timeout: timeout, probing: false, body)
    }

    private func withConnection<T>(
        timeout: Duration?, probing: Bool, _ body: (Connection) throws(StoreError) -> T
    ) throws(StoreError) -> T {
        if !probing, knownUnreachable {
            throw .databaseUnreachable
        }
        let acquire = configuration.acquireTimeout
        let waitMs = milliseconds(acquire)
        if slots.wait(timeout: .now()) != .success {
            statistics.waited()
            guard slots.wait(timeout: .now() + .milliseconds(waitMs)) == .success else {
                statistics.failed(.poolExhausted)
                throw StoreError(.poolExhausted, reason: "no database connection free within \(waitMs) ms")
            }
        }
        defer { slots.signal() }
        let connection: Connection
        if let box = idle.withLock({ $0.popLast() }) {
            connection = box.connection
        } else {
            do {
                connection = try Connection(url: configuration.url, defaultStatementTimeoutMs: milliseconds(configuration.defaultStatementTimeout))
            } catch {
                setReady(false)
                throw error
            }
        }
        var healthy = true
        defer {
            if healthy, connection.isHealthy { idle.withLock { $0.append(ConnectionBox(connection)) } }
        }
        do {
            if let timeout {
                try connection.setStatementTimeout(ms: milliseconds(timeout))
            } else {
                try connection.resetStatementTimeout()
            }
            let result = try body(connection)
            setReady(true)
            return result
        } catch {
            if error.kind == .unavailable || !connection.isHealthy {
                healthy = false
                setReady(false)
            }
            statistics.failed(error.kind)
            throw error
        }
    }

    /// Runs `body` in a transaction on one of the database's own threads, never on the caller's:
    /// an `async` handler awaits it without blocking an event loop. Commits when `body` returns,
    /// rolls back when it throws (nothing it wrote is left behind). The whole of `body` is run
    /// again on a serialization failure or deadlock (40001, 40P01), at most `maxRetries` times,
    /// so it must not have effects outside the transaction. `timeout` (what is left of the
    /// RPC's deadline) bounds every statement, as `SET LOCAL statement_timeout`; time spent
    /// waiting for a thread counts against it.
    public func transaction<T: Sendable>(
        timeout: Duration? = nil, isolation: Isolation = .readCommitted,
        _ body: @escaping @Sendable (Connection) throws(StoreError) -> T
    ) async throws(StoreError) -> T {
        if knownUnreachable { throw .databaseUnreachable }
        if isClosed { throw .databaseClosed }
        let waiting = transactionsInFlight.add(1, ordering: .relaxed).newValue
        defer { transactionsInFlight.subtract(1, ordering: .relaxed) }
        guard waiting <= configuration.maxWaitingTransactions else {
            statistics.failed(.poolExhausted)
            throw StoreError(.poolExhausted, reason: "\(waiting - 1) transactions already wait for the database")
        }
        let deadline = timeout.map { ContinuousClock.now + $0 }
        let result: Result<T, StoreError>
        do {
            result = try await writerPool.runIfActive { () -> Result<T, StoreError> in
                let left = deadline.map { $0 - .now }
                if let left, left <= .zero { return .failure(StoreError(.timeout, reason: "deadline passed before the transaction started")) }
                return Result { () throws(StoreError) in try self.withTransaction(timeout: left, isolation: isolation, body) }
            }
        } catch {
            throw StoreError.databaseClosed
        }
        return try result.get()
    }

    private var writerPool: NIOThreadPool {
        writers.withLock { pool in
            if let pool { return pool }
            let made = NIOThreadPool(numberOfThreads: max(1, configuration.poolSize))
            made.start()
            pool = made
            return made
        }
    }

    /// Transaction isolation levels.
    public enum Isolation: String, Sendable {
        case readCommitted = "READ COMMITTED"
        case repeatableRead = "REPEATABLE READ"
        case serializable = "SERIALIZABLE"
    }

    /// Runs `body` in a transaction on the calling thread, which it blocks (operator tools and
    /// migrations; handlers use `transaction`). Commits when it returns, rolls back when it
    /// throws; serialization failures and deadlocks are retried up to `maxRetries` times.
    @discardableResult
    public func withTransaction<T>(
        timeout: Duration? = nil, isolation: Isolation = .readCommitted, _ body: (Connection) throws(StoreError) -> T
    ) throws(StoreError) -> T {
        var attempt = 0
        while true {
            do throws(StoreError) {
                return try withConnection(timeout: nil) { (c) throws(StoreError) -> T in
                    try c.execute("BEGIN ISOLATION LEVEL \(isolation.rawValue)")
                    do throws(StoreError) {
                        if let timeout {
                            // An integer we computed, clamped to what PostgreSQL takes; not input.
                            try c.execute("SET LOCAL statement_timeout = \(clampedStatementTimeout(milliseconds(timeout)))")
                        }
                        let result = try body(c)
                        try c.commit()
                        return result
                    } catch {
                        c.rollback()
                        throw error
                    }
                }
            } catch where error.kind == .conflict && attempt < configuration.maxRetries {
                attempt += 1
                usleep(UInt32(5_000 * attempt * attempt))
            }
        }
    }
}

/// `d` in whole milliseconds, rounded up; saturating far beyond any timeout we use.
func milliseconds(_ d: Duration) -> Int {
    let (s, a) = d.components
    if s >= Int64(Int.max / 1000) - 1 { return Int.max / 2 }
    if s <= Int64(Int.min / 1000) + 1 { return Int.min / 2 }
    return Int(s) * 1000 + Int((a + 999_999_999_999_999) / 1_000_000_000_000_000)
}

/// When the monitor probes next: `interval` after a success; after a failure a quarter of it,
/// doubling on each further failure up to twice `interval`.
struct ProbeSchedule {
    let interval: Duration
    private var backoff: Duration

    init(interval: Duration) {
        self.interval = interval
        backoff = max(interval / 4, .milliseconds(1))
    }

    mutating func next(afterSuccess ok: Bool) -> Duration {
        if ok {
            backoff = max(interval / 4, .milliseconds(1))
            return interval
        }
        defer { backoff = min(backoff * 2, interval * 2) }
        return backoff
    }
}

/// Hands a connection between threads (through the pool's lock, or to the loop that adopts it).
final class ConnectionBox: @unchecked Sendable {  // only ever held by the lock or one thread
    let connection: Connection
    init(_ connection: Connection) { self.connection = connection }
}
