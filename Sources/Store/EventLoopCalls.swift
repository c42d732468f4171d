internal import CLibPQ
import Dispatch
package import NIOCore
import NIOPosix

// Reads on the event loops. Each loop has its own connections (a lane), used only on that
// loop, in libpq's non-blocking pipeline mode: the reads that arrive during one turn of the
// loop are written to a connection together and answered together, so a burst of calls costs
// one send and one wake-up of PostgreSQL instead of one each. `SocketWatcher`'s thread waits
// on the sockets and tells the loop when one is ready; no thread waits for PostgreSQL.

extension Database {
    /// Runs `query`, which must change nothing, without holding any thread: on the connections
    /// of the event loop the caller runs on (a handler's task runs on its connection's loop), or
    /// of the database's own loop otherwise. `timeout` (what is left of the RPC's deadline) fails
    /// the call with `.timeout`.
    ///
    /// The reads of one turn of a loop share a pipeline segment, which PostgreSQL runs as one
    /// implicit transaction: that is why only reads go this way (writes take `transaction`).
    /// A read that fails does not fail its neighbours: they are sent again.
    public func read<Value>(_ query: Query<Value>, timeout: Duration? = nil) async throws(StoreError) -> Value {
        let loop = MultiThreadedEventLoopGroup.currentEventLoop ?? ownLoop
        do {
            return try await read(query, on: loop, timeout: timeout).get()
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.other, reason: "read failed: \(type(of: error))")
        }
    }

    /// Runs `query`, which must change nothing, on one of `loop`'s connections without blocking
    /// any thread; the future completes on `loop`. `timeout` (what is left of the RPC's
    /// deadline) fails the call with `.timeout`.
    ///
    /// The reads of one turn of the loop share a pipeline segment, which PostgreSQL runs as one
    /// implicit transaction: that is why only reads go this way (writes take `transaction`).
    /// A read that fails does not fail its neighbours: they are sent again.
    package func read<Value>(_ query: Query<Value>, on loop: any EventLoop, timeout: Duration? = nil) -> EventLoopFuture<Value> {
        if isClosed { return loop.makeFailedFuture(StoreError.databaseClosed) }
        let promise = loop.makePromise(of: Value.self)
        if loop.inEventLoop {
            submit(query, promise, on: loop, timeout: timeout)
        } else {
            loop.execute { self.submit(query, promise, on: loop, timeout: timeout) }
        }
        return promise.futureResult
    }

    private func submit<Value>(_ query: Query<Value>, _ promise: EventLoopPromise<Value>, on loop: any EventLoop, timeout: Duration?) {
        let call = PendingCall(sql: query.sql) { result in
            switch result {
            case .success(let rows):
                do throws(StoreError) { promise.succeed(try query.decode(rows)) } catch { promise.fail(error) }
            case .failure(let error):
                self.statistics.failed(error.kind)
                promise.fail(error)
            }
        }
        lane(for: loop).submit(call, timeout: timeout)
    }

    /// `loop`'s lane; call on `loop`.
    private func lane(for loop: any EventLoop) -> Lane {
        let key = ObjectIdentifier(loop)
        return lanes.withLock { lanes in
            if let lane = lanes[key] { return lane.value }
            let lane = Lane(loop: loop, database: self)
            lanes[key] = NIOLoopBound(lane, eventLoop: loop)
            return lane
        }
    }
}

/// A read waiting for, or sent on, a lane's connection. Loop-confined.
final class PendingCall {
    let sql: SQL
    /// Its prepared statement's identity (`SQL.statementKey`).
    let key: String
    private var deliver: ((Result<Rows, StoreError>) -> Void)?
    /// Fails the call when no connection had room for it in time.
    var acquireTimer: Scheduled<Void>?
    /// Fails the call at its deadline.
    var deadlineTimer: Scheduled<Void>?
    /// The connection it was sent on.
    weak var connection: LoopConnection?
    /// Why preparing its statement failed, which is then its own failure.
    var prepareFailure: StoreError?
    /// Times it was sent again because a neighbour's failure aborted its segment.
    var resent = 0
    /// What is left of the call's deadline when it was submitted, in ms (nil: none).
    var timeoutMs: Int?

    init(sql: SQL, deliver: @escaping (Result<Rows, StoreError>) -> Void) {
        self.sql = sql
        self.key = sql.statementKey
        self.deliver = deliver
    }

    var isDone: Bool { deliver == nil }

    /// Delivers the outcome once; later outcomes (a result after the deadline) are dropped.
    func complete(_ result: Result<Rows, StoreError>) {
        guard let deliver else { return }
        self.deliver = nil
        acquireTimer?.cancel()
        deadlineTimer?.cancel()
        acquireTimer = nil
        deadlineTimer = nil
        deliver(result)
    }
}

/// One event loop's connections and the calls waiting for room on them. Loop-confined.
final class Lane {
    let loop: any EventLoop
    /// Weak: a database that is gone closes its lanes (`Database.deinit`).
    private weak var database: Database?
    let configuration: Database.Configuration
    private let limit: Int
    private let maxWaiting: Int
    /// Calls one connection carries at once; beyond, calls wait.
    private let depth = 32
    /// Another connection opens only when every open one carries this many calls: a few reads
    /// in one pipeline cost PostgreSQL less than the same reads spread over idle connections.
    private let busyAt = 4
    private var connections: [LoopConnection] = []
    private var opening = 0
    private var waiting = CircularBuffer<PendingCall>()
    /// Connections with calls written since their last sync.
    private var unsynced: [LoopConnection] = []
    private var syncScheduled = false
    /// Set by `closeAll`: the database is gone.
    private var closed = false

    init(loop: any EventLoop, database: Database) {
        self.loop = loop
        self.database = database
        configuration = database.configuration
        limit = max(1, database.configuration.connectionsPerEventLoop)
        maxWaiting = max(0, database.configuration.maxWaitingPerEventLoop)
    }

    func submit(_ call: PendingCall, timeout: Duration?) {
        guard let database, !closed else {
            call.complete(.failure(.databaseClosed))
            return
        }
        if database.knownUnreachable {
            call.complete(.failure(.databaseUnreachable))
            return
        }
        call.timeoutMs = timeout.map(milliseconds)
        if let timeout {
            guard timeout > .zero else {
                call.complete(.failure(StoreError(.timeout, reason: "deadline passed before the statement ran")))
                return
            }
            let bound = NIOLoopBound(call, eventLoop: loop)
            call.deadlineTimer = loop.scheduleTask(in: .nanoseconds(Int64(milliseconds(timeout)) * 1_000_000)) {
                let call = bound.value
                guard !call.isDone else { return }
                call.connection?.cancelIfAlone(call)
                call.complete(.failure(StoreError(.timeout, reason: "deadline passed while the statement ran")))
            }
        }
        dispatch(call)
    }

    /// Sends `call` on the least busy connection (opening another when all are busy), or
    /// queues it when none has room.
    func dispatch(_ call: PendingCall) {
        let least = leastBusy()
        if opening == 0, connections.count < limit, least.map({ $0.outstanding >= busyAt }) ?? true { open() }
        if let least, least.outstanding < depth {
            least.send(call)
            return
        }
        guard waiting.count < maxWaiting else {
            call.complete(.failure(StoreError(.poolExhausted, reason: "\(waiting.count) calls already wait for a database connection")))
            return
        }
        if call.acquireTimer == nil {
            let waitMs = milliseconds(configuration.acquireTimeout)
            let bound = NIOLoopBound(call, eventLoop: loop)
            call.acquireTimer = loop.scheduleTask(in: .milliseconds(Int64(waitMs))) {
                let call = bound.value
                guard !call.isDone, call.connection == nil else { return }
                call.complete(.failure(StoreError(.poolExhausted, reason: "no database connection had room within \(waitMs) ms")))
            }
        }
        database?.statistics.waited()
        waiting.append(call)
    }

    /// The open connection with the fewest calls, among those taking calls.
    private func leastBusy() -> LoopConnection? {
        var best: LoopConnection?
        for c in connections where c.takesCalls && c.outstanding < (best?.outstanding ?? .max) { best = c }
        return best
    }

    /// A connection finished calls: waiting ones take the room.
    func roomFreed() {
        while let next = waiting.first {
            if next.isDone {
                waiting.removeFirst()
                continue
            }
            guard let least = leastBusy(), least.outstanding < depth else { return }
            waiting.removeFirst()
            least.send(next)
        }
    }

    /// `connection` has calls to sync: they go out together when this turn of the loop ends.
    func needsSync(_ connection: LoopConnection) {
        unsynced.append(connection)
        guard !syncScheduled else { return }
        syncScheduled = true
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.execute {
            let lane = bound.value
            lane.syncScheduled = false
            let connections = lane.unsynced
            lane.unsynced.removeAll(keepingCapacity: true)
            for c in connections { c.sync() }
        }
    }

    /// A connection broke and is gone.
    func dropped(_ connection: LoopConnection) {
        connections.removeAll { $0 === connection }
        if waiting.contains(where: { !$0.isDone }), opening == 0, let database, !database.knownUnreachable { open() }
    }

    /// Opens a connection on a background thread (connecting blocks) and adopts it here.
    private func open() {
        guard !closed else { return }
        opening += 1
        let configuration = self.configuration
        let bound = NIOLoopBound(self, eventLoop: loop)
        DispatchQueue.global().async { [loop, weak database] in
            let result: Result<ConnectionBox, StoreError>
            do {
                let c = try Connection(url: configuration.url, defaultStatementTimeoutMs: milliseconds(configuration.defaultStatementTimeout))
                result = .success(ConnectionBox(c))
            } catch let error as StoreError {
                result = .failure(error)
            } catch {
                result = .failure(StoreError(.unavailable, reason: "cannot connect to PostgreSQL"))
            }
            // A closed database's loops may have stopped: the connection just closes here.
            guard let database, !database.isClosed else { return }
            loop.execute { bound.value.opened(result) }
        }
    }

    private func opened(_ result: Result<ConnectionBox, StoreError>) {
        opening -= 1
        switch result {
        case .success(let box):
            guard let connection = LoopConnection(box.connection, lane: self) else {
                failWaitingIfNoConnection(StoreError(.unavailable, reason: "cannot put the connection in pipeline mode"))
                return
            }
            guard !closed else {
                connection.close()
                return
            }
            connections.append(connection)
            database?.setReady(true)
            roomFreed()
        case .failure(let error):
            database?.setReady(false)
            failWaitingIfNoConnection(error)
        }
    }

    /// The connection to PostgreSQL broke while calls were on it.
    func lostConnectionWithCalls() { database?.setReady(false) }

    /// The database is gone: connections close, and every call on them or waiting fails.
    func closeAll() {
        closed = true
        for c in connections { c.close(failing: .databaseClosed) }
        connections = []
        while let call = waiting.popFirst() { call.complete(.failure(.databaseClosed)) }
    }

    /// With no connection left to serve them, waiting calls fail now rather than at their timeout.
    private func failWaitingIfNoConnection(_ error: StoreError) {
        guard connections.isEmpty, opening == 0 else { return }
        while let call = waiting.popFirst() { call.complete(.failure(error)) }
    }
}

/// A libpq connection in non-blocking pipeline mode, owned by its lane's loop: every call on
/// it runs there. Statements are prepared on first use, in the same pipeline as their query.
final class LoopConnection {
    private let connection: Connection
    let fd: Int32
    /// Weak: a closed lane closes its connections.
    private weak var lane: Lane?
    /// What was written, in order; results come back in this order.
    private enum Entry {
        case prepare(PendingCall)
        case query(PendingCall)
        /// A change of statement_timeout before a call's statement.
        case setting
        case sync
    }
    /// The session's statement_timeout now, in ms, as last set in the pipeline.
    private var statementTimeoutMs: Int
    private var expected = CircularBuffer<Entry>()
    private var machine = PipelineStateMachine()
    /// The first result of the command at the front (libpq may hand more; the first decides).
    private var result: OpaquePointer?

    /// Calls written and not yet answered.
    var outstanding: Int { machine.outstanding }
    /// Whether new calls may be sent here (not while a cancel is on its way, nor once closed).
    var takesCalls: Bool { machine.takesCalls }
    var closed: Bool { machine.isClosed }

    init?(_ connection: Connection, lane: Lane) {
        guard PQsetnonblocking(connection.conn, 1) == 0, PQenterPipelineMode(connection.conn) == 1 else { return nil }
        let fd = PQsocket(connection.conn)
        guard fd >= 0 else { return nil }
        self.connection = connection
        self.fd = fd
        self.lane = lane
        statementTimeoutMs = clampedStatementTimeout(milliseconds(lane.configuration.defaultStatementTimeout))
        SocketWatcher.shared.add(self, loop: lane.loop)
    }

    deinit { if let result { PQclear(result) } }

    /// Writes `call` (and its statement's preparation, the first time) into the pipeline; it
    /// goes out with the lane's sync at the end of this turn of the loop.
    func send(_ call: PendingCall) {
        // A call sent again after a neighbour's failure goes in a segment of its own: only its
        // own failure can abort it now.
        if call.resent > 0 { sync() }
        call.acquireTimer?.cancel()
        call.acquireTimer = nil
        call.connection = self
        let opensSegment = machine.callWritten()
        // The server stops the statement at about the call's deadline (rounded up to a few
        // steps, so that a busy connection rarely changes the setting), so a slow read frees
        // the connection for the reads behind it.
        let wanted = Self.statementTimeoutStep(call.timeoutMs, default: lane?.configuration.defaultStatementTimeout)
        if wanted != statementTimeoutMs {
            let setting = [String(wanted).sqlValue]
            let types = setting.map(\.type)
            let sent = withParameters(setting) { values, lengths, formats in
                types.withUnsafeBufferPointer { t in
                    PQsendQueryParams(
                        connection.conn, "SELECT set_config('statement_timeout', $1, false)", 1, t.baseAddress, values, lengths, formats, 0)
                }
            }
            guard sent == 1 else {
                expected.append(.query(call))
                return broke()
            }
            expected.append(.setting)
            statementTimeoutMs = wanted
        }
        let name: String
        let binds = call.sql.binds
        if let known = connection.preparedName(of: call.key) {
            name = known
        } else {
            name = connection.newStatementName()
            let types = binds.map(\.type)
            let prepared = types.withUnsafeBufferPointer {
                PQsendPrepare(connection.conn, name, call.sql.text, Int32(types.count), $0.baseAddress)
            }
            guard prepared == 1 else {
                expected.append(.query(call))
                return broke()
            }
            connection.markPrepared(call.key, as: name)
            expected.append(.prepare(call))
        }
        let sent = withParameters(binds) { values, lengths, formats in
            PQsendQueryPrepared(connection.conn, name, Int32(binds.count), values, lengths, formats, 0)
        }
        expected.append(.query(call))
        guard sent == 1 else { return broke() }
        if call.resent > 0 {
            sync()
        } else if opensSegment {
            lane?.needsSync(self)
        }
    }

    /// The statement_timeout for a call with `timeoutMs` left: the smallest of 250 ms, 1 s,
    /// 5 s at least that long, else the default.
    static func statementTimeoutStep(_ timeoutMs: Int?, default fallback: Duration?) -> Int {
        let standard = clampedStatementTimeout(milliseconds(fallback ?? .seconds(30)))
        guard let timeoutMs else { return standard }
        for step in [250, 1000, 5000] where timeoutMs <= step && step < standard { return step }
        return standard
    }

    /// Ends the pipeline segment and sends what was written.
    func sync() {
        guard machine.syncDue() else { return }
        guard PQpipelineSync(connection.conn) == 1 else { return broke() }
        expected.append(.sync)
        flush()
    }

    private func flush() {
        let pending: Bool
        switch PQflush(connection.conn) {
        case 0: pending = false
        case 1: pending = true
        default: return broke()
        }
        perform(machine.flushed(pending: pending))
    }

    private func perform(_ action: PipelineStateMachine.ArmAction) {
        if case .arm(let forWrite) = action { SocketWatcher.shared.arm(fd, write: forWrite) }
    }

    /// The socket is readable or writable (the watcher reports it on the loop).
    func ready() {
        guard !closed else { return }
        guard lane != nil else {
            close()
            return
        }
        if machine.socketReady() {
            flush()
            if closed { return }
        }
        guard PQconsumeInput(connection.conn) == 1, connection.isHealthy else { return broke() }
        readResults()
        perform(machine.rearm())
    }

    /// Takes every result libpq has complete, in the order the commands were written.
    private func readResults() {
        while !closed, let front = expected.first, PQisBusy(connection.conn) == 0 {
            let res = PQgetResult(connection.conn)
            switch front {
            case .sync:
                // A sync's result is the end of its segment; nothing else may stand here.
                guard let res else { return }
                let status = PQresultStatus(res)
                PQclear(res)
                guard status == PGRES_PIPELINE_SYNC else { return broke() }
                expected.removeFirst()
            case .setting:
                // The change of timeout applies or, on error, aborts the segment, and the call
                // behind it is sent again: either way there is nothing to deliver.
                if let res {
                    // Not applied (the segment was aborted): the next call sets it again.
                    if PQresultStatus(res) != PGRES_TUPLES_OK { statementTimeoutMs = -1 }
                    PQclear(res)
                    continue
                }
                expected.removeFirst()
            case .prepare(let call), .query(let call):
                if let res {
                    if result == nil { result = res } else { PQclear(res) }
                    continue
                }
                // NULL: the command's results are complete.
                let first = result
                result = nil
                expected.removeFirst()
                if case .prepare = front {
                    prepared(call, first)
                } else {
                    answered(call, first)
                }
            }
        }
    }

    /// A preparation that failed is forgotten, so that the next use prepares again; unless a
    /// neighbour's failure aborted it, its error becomes the call's.
    private func prepared(_ call: PendingCall, _ res: OpaquePointer?) {
        defer { if let res { PQclear(res) } }
        let status = res.map(PQresultStatus)
        if status == PGRES_COMMAND_OK { return }
        connection.forgetPrepared(call.key)
        if let status, status != PGRES_PIPELINE_ABORTED { call.prepareFailure = connection.failure(of: res) }
    }

    private func answered(_ call: PendingCall, _ res: OpaquePointer?) {
        machine.answered()
        call.connection = nil
        let outcome: Result<Rows, StoreError>
        if let res, PQresultStatus(res) == PGRES_PIPELINE_ABORTED {
            PQclear(res)
            if let failure = call.prepareFailure {
                outcome = .failure(failure)
            } else if call.resent < 3, !call.isDone {
                // A neighbour failed and took the segment with it; this read never ran. It goes
                // again in a segment of its own (`send`).
                call.resent += 1
                lane?.dispatch(call)
                lane?.roomFreed()
                return
            } else {
                outcome = .failure(StoreError(.other, reason: "the statement was aborted with its pipeline segment"))
            }
        } else if let failure = connection.failure(of: res) {
            if let res { PQclear(res) }
            outcome = .failure(failure)
        } else {
            outcome = .success(Rows(res!))
        }
        lane?.roomFreed()
        call.complete(outcome)
    }

    /// Stops watching the socket; the connection closes when the lane lets it go. Returns
    /// the calls written on it and not answered (none when it was closed already).
    @discardableResult
    func close() -> [PendingCall] {
        guard machine.close() != nil else { return [] }
        SocketWatcher.shared.remove(fd)
        let calls = expected.compactMap { entry -> PendingCall? in
            if case .query(let call) = entry { return call }
            return nil
        }
        expected.removeAll()
        return calls
    }

    /// Closes, failing the calls written on it and not yet answered with `error`: none is left
    /// without an answer.
    func close(failing error: StoreError) {
        for call in close() { call.complete(.failure(error)) }
    }

    /// The connection broke: its calls fail UNAVAILABLE and the lane forgets it.
    private func broke() {
        guard !closed else { return }
        let calls = close()
        lane?.dropped(self)
        if !calls.isEmpty { lane?.lostConnectionWithCalls() }
        for call in calls { call.complete(.failure(StoreError(.unavailable, reason: "the database connection broke"))) }
    }

    /// At a call's deadline: when it is the only one on this connection, asks the server to
    /// cancel it (a cancel hits whatever runs, so a neighbour's read is never cancelled). The
    /// cancel request opens its own connection, so it is sent from a background thread.
    func cancelIfAlone(_ call: PendingCall) {
        guard call.connection === self, let loop = lane?.loop, machine.cancelRequested() else { return }
        guard let cancel = PQgetCancel(connection.conn) else {
            _ = machine.cancelDelivered()
            return
        }
        let box = CancelBox(cancel)
        let bound = NIOLoopBound(self, eventLoop: loop)
        DispatchQueue.global().async {
            var buffer = [CChar](repeating: 0, count: 256)
            _ = PQcancel(box.cancel, &buffer, Int32(buffer.count))
            PQfreeCancel(box.cancel)
            bound.eventLoop.execute { bound.value.cancelDelivered() }
        }
    }

    /// The cancel request reached the server: once the pipeline has drained too, calls come again.
    private func cancelDelivered() {
        if machine.cancelDelivered() { lane?.roomFreed() }
    }
}

/// Carries a `PGcancel` to the thread that sends it; used by that thread only.
private final class CancelBox: @unchecked Sendable {
    let cancel: OpaquePointer
    init(_ cancel: OpaquePointer) { self.cancel = cancel }
}
