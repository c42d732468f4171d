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

    /// False once the connection broke (server restart, network); the pool then replaces it.
    var isHealthy: Bool { PQstatus(conn) == CONNECTION_OK }

    /// Runs `sql` with bound parameters (`$1`, `$2`, … as text; nil is NULL) as a prepared
    /// statement. SQL is never built from values.
    @discardableResult
    public func query(_ sql: String, _ params: [String?] = []) throws(StoreError) -> Rows {
        let name: String
        if let n = prepared[sql] {
            name = n
        } else {
            name = newStatementName()
            let res = PQprepare(conn, name, sql, Int32(params.count), nil)
            defer { PQclear(res) }
            try check(res)
            prepared[sql] = name
        }
        let res = withCStrings(params) { values in
            PQexecPrepared(conn, name, Int32(params.count), values, nil, nil, 0)
        }
        do {
            try check(res)
        } catch {
            PQclear(res)
            throw error
        }
        return Rows(res!)
    }

    /// Runs a statement without parameters and without preparing it (BEGIN, COMMIT, SET…).
    public func execute(_ sql: String) throws(StoreError) {
        let res = PQexec(conn, sql)
        defer { PQclear(res) }
        try check(res)
    }

    /// Limits each statement to `ms` (from the RPC's deadline), sending SET only on change.
    func setStatementTimeout(ms: Int) throws(StoreError) {
        let ms = max(1, ms)
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

    /// The prepared statement of `sql` on this connection, if it was prepared.
    func preparedName(of sql: String) -> String? { prepared[sql] }
    /// A name no statement prepared here has.
    func newStatementName() -> String {
        statementCounter += 1
        return "s\(statementCounter)"
    }
    private var statementCounter = 0
    /// Records that `sql` is prepared as `name`.
    func markPrepared(_ sql: String, as name: String) { prepared[sql] = name }
    /// Forgets a preparation that failed, so that the next use prepares again.
    func forgetPrepared(_ sql: String) { prepared[sql] = nil }

    private func field(_ res: OpaquePointer, _ code: Character) -> String? {
        guard let p = PQresultErrorField(res, Int32(code.asciiValue!)) else { return nil }
        return String(cString: p)
    }
}

/// Calls `body` with a C array of NUL-terminated strings (NULL for nil) that lives for the call.
func withCStrings<R>(_ values: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    let owned: [UnsafeMutablePointer<CChar>?] = values.map { $0.map { strdup($0)! } }
    defer { for p in owned { free(p) } }
    let pointers = owned.map { UnsafePointer($0) }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
}

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
}
