internal import CLibPQ
import Foundation

/// One libpq connection (`PGconn`), used by one thread at a time. Blocking: never call it on
/// an event loop.
public final class Connection {
    let conn: OpaquePointer
    /// SQL text → prepared statement name, per connection.
    private var prepared: [String: String] = [:]
    private var statementTimeoutMs: Int
    private let defaultTimeoutMs: Int

    init(url: String, defaultStatementTimeoutMs: Int) throws(StoreError) {
        guard let c = PQconnectdb(url) else { throw StoreError(.unavailable, reason: "libpq could not allocate a connection") }
        guard PQstatus(c) == CONNECTION_OK else {
            PQfinish(c)
            throw StoreError(.unavailable, reason: "cannot connect to PostgreSQL")
        }
        // Server NOTICEs ("already exists, skipping") are not for a user's terminal.
        PQsetNoticeProcessor(c, { _, _ in }, nil)
        conn = c
        defaultTimeoutMs = defaultStatementTimeoutMs
        statementTimeoutMs = 0
        try setStatementTimeout(ms: defaultStatementTimeoutMs)
    }

    deinit { PQfinish(conn) }

    /// What the open transaction runs last, just before COMMIT, in the order added (the event
    /// log's positions: their row locks are held for the shortest time).
    private var beforeCommit: [(Connection) throws(StoreError) -> Void] = []
    /// What runs once the open transaction committed (waking watchers); dropped on rollback.
    private var afterCommit: [@Sendable () -> Void] = []

    /// Runs `body` at the end of the open transaction, before COMMIT.
    public func beforeCommit(_ body: @escaping (Connection) throws(StoreError) -> Void) { beforeCommit.append(body) }
    /// Runs `body` once the open transaction committed; never when it rolls back.
    public func afterCommit(_ body: @escaping @Sendable () -> Void) { afterCommit.append(body) }

    /// Ends the open transaction: the statements added to run last, then COMMIT, then what
    /// waits for the commit.
    func commit() throws(StoreError) {
        while !beforeCommit.isEmpty {
            let steps = beforeCommit
            beforeCommit = []
            for step in steps { try step(self) }
        }
        try execute("COMMIT")
        let done = afterCommit
        afterCommit = []
        for step in done { step() }
    }

    /// Rolls the open transaction back, forgetting what was to run at its end.
    func rollback() {
        beforeCommit = []
        afterCommit = []
        try? execute("ROLLBACK")
    }

    /// False once the connection broke (server restart, network); the pool then replaces it.
    var isHealthy: Bool { PQstatus(conn) == CONNECTION_OK }

    /// Runs `sql` with its bound parameters as a prepared statement (prepared on first use on
    /// this connection).
    @discardableResult
    public func query(_ sql: SQL) throws(StoreError) -> Rows {
        let key = sql.statementKey
        let name: String
        if let n = prepared[key] {
            name = n
        } else {
            name = newStatementName()
            let types = sql.binds.map(\.type)
            let res = types.withUnsafeBufferPointer { PQprepare(conn, name, sql.text, Int32(types.count), $0.baseAddress) }
            defer { PQclear(res) }
            try check(res)
            prepared[key] = name
        }
        let res = withParameters(sql.binds) { values, lengths, formats in
            PQexecPrepared(conn, name, Int32(sql.binds.count), values, lengths, formats, 0)
        }
        do {
            try check(res)
        } catch {
            PQclear(res)
            throw error
        }
        return Rows(res!)
    }

    /// Runs statements without parameters and without preparing them: transaction control,
    /// settings we compute, migration files. Never with text from outside.
    func execute(_ sql: String) throws(StoreError) {
        let res = PQexec(conn, sql)
        defer { PQclear(res) }
        try check(res)
    }

    /// Limits each statement to `ms` (from the RPC's deadline, clamped to what PostgreSQL takes),
    /// sending SET only on change.
    func setStatementTimeout(ms: Int) throws(StoreError) {
        let ms = clampedStatementTimeout(ms)
        guard ms != statementTimeoutMs else { return }
        try execute("SET statement_timeout = \(ms)")  // an integer we computed, not input
        statementTimeoutMs = ms
    }

    func resetStatementTimeout() throws(StoreError) { try setStatementTimeout(ms: defaultTimeoutMs) }

    private func check(_ res: OpaquePointer?) throws(StoreError) {
        if let error = failure(of: res) { throw error }
    }

    /// What went wrong with a result; nil when it succeeded.
    func failure(of res: OpaquePointer?) -> StoreError? {
        guard let res else {
            return StoreError(isHealthy ? .other : .unavailable, reason: "no result from PostgreSQL")
        }
        switch PQresultStatus(res) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY: return nil
        default:
            let state = field(res, "C")
            let constraint = field(res, "n")
            let kind = isHealthy ? StoreError.classify(sqlState: state, constraint: constraint) : .unavailable
            return StoreError(kind, sqlState: state, constraint: constraint, reason: "statement failed")
        }
    }

    /// The prepared statement of a statement key (`SQL.statementKey`), if it was prepared here.
    func preparedName(of key: String) -> String? { prepared[key] }
    /// A name no statement prepared here has.
    func newStatementName() -> String {
        statementCounter += 1
        return "s\(statementCounter)"
    }
    private var statementCounter = 0
    /// Records that the statement `key` is prepared as `name`.
    func markPrepared(_ key: String, as name: String) { prepared[key] = name }
    /// Forgets a preparation that failed, so that the next use prepares again.
    func forgetPrepared(_ key: String) { prepared[key] = nil }

    private func field(_ res: OpaquePointer, _ code: Character) -> String? {
        guard let p = PQresultErrorField(res, Int32(code.asciiValue!)) else { return nil }
        return String(cString: p)
    }
}

/// A statement timeout PostgreSQL accepts: at least 1 ms, at most a day (its own limit is
/// INT_MAX ms; a deadline of `1000H` would otherwise fail with SQLSTATE 22023).
func clampedStatementTimeout(_ ms: Int) -> Int {
    min(max(1, ms), maxStatementTimeoutMs)
}

let maxStatementTimeoutMs = 24 * 3600 * 1000

/// The rows of one result (`PGresult`), freed with the object.
public final class Rows {
    private let res: OpaquePointer

    init(_ res: OpaquePointer) {
        self.res = res
    }

    deinit { PQclear(res) }

    public var count: Int { Int(PQntuples(res)) }
    /// Rows changed by an INSERT, UPDATE or DELETE.
    public var affected: Int { Int(String(cString: PQcmdTuples(res))) ?? 0 }

    private func column(_ name: String) throws(StoreError) -> Int32 {
        let c = PQfnumber(res, name)
        guard c >= 0 else { throw StoreError(.decoding, reason: "result has no column \(name)") }
        return c
    }

    /// Text value; nil for NULL.
    public func optionalString(_ row: Int, _ name: String) throws(StoreError) -> String? {
        let c = try column(name)
        if PQgetisnull(res, Int32(row), c) != 0 { return nil }
        return String(cString: PQgetvalue(res, Int32(row), c))
    }

    public func string(_ row: Int, _ name: String) throws(StoreError) -> String {
        guard let s = try optionalString(row, name) else { throw StoreError(.decoding, reason: "column \(name) is NULL") }
        return s
    }

    public func int(_ row: Int, _ name: String) throws(StoreError) -> Int {
        guard let v = Int(try string(row, name)) else { throw StoreError(.decoding, reason: "column \(name) is not an integer") }
        return v
    }

    public func bool(_ row: Int, _ name: String) throws(StoreError) -> Bool {
        switch try string(row, name) {
        case "t": return true
        case "f": return false
        default: throw StoreError(.decoding, reason: "column \(name) is not a boolean")
        }
    }

    /// A `timestamptz` selected as `extract(epoch from …)`: seconds since 1970.
    public func epoch(_ row: Int, _ name: String) throws(StoreError) -> Double? {
        guard let s = try optionalString(row, name) else { return nil }
        guard let v = Double(s) else { throw StoreError(.decoding, reason: "column \(name) is not a number") }
        return v
    }

    public func optionalInt(_ row: Int, _ name: String) throws(StoreError) -> Int? {
        guard let s = try optionalString(row, name) else { return nil }
        guard let v = Int(s) else { throw StoreError(.decoding, reason: "column \(name) is not an integer") }
        return v
    }

    /// A `bytea` column (text output, hex form `\\x…`), decoded straight from libpq's buffer.
    public func bytes(_ row: Int, _ name: String) throws(StoreError) -> [UInt8] {
        let c = try column(name)
        guard PQgetisnull(res, Int32(row), c) == 0 else { throw StoreError(.decoding, reason: "column \(name) is NULL") }
        let length = Int(PQgetlength(res, Int32(row), c))
        guard let value = PQgetvalue(res, Int32(row), c) else { throw StoreError(.decoding, reason: "column \(name) has no value") }
        let text = UnsafeRawPointer(value).assumingMemoryBound(to: UInt8.self)
        guard length >= 2, text[0] == UInt8(ascii: "\\"), text[1] == UInt8(ascii: "x"), length % 2 == 0 else {
            throw StoreError(.decoding, reason: "column \(name) is not bytea in hex form")
        }
        var valid = true
        let out = [UInt8](unsafeUninitializedCapacity: (length - 2) / 2) { buffer, count in
            var i = 2, j = 0
            while i < length {
                let hi = Self.nibble(text[i]), lo = Self.nibble(text[i + 1])
                if hi > 15 || lo > 15 {
                    valid = false
                    break
                }
                buffer[j] = hi << 4 | lo
                i += 2
                j += 1
            }
            count = j
        }
        guard valid else { throw StoreError(.decoding, reason: "column \(name) is not bytea in hex form") }
        return out
    }

    /// A lower-case hex digit's value; 255 for anything else.
    private static func nibble(_ c: UInt8) -> UInt8 {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        default: 255
        }
    }
}
