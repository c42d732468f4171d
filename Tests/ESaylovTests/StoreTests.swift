import Foundation
import Glibc
import RPC
import Services
import Store
import Synchronization
import Testing

/// Storage against the embedded PostgreSQL that Scripts/test.sh starts (not a mock).
enum TestDatabase {
    static let url = ProcessInfo.processInfo.environment["ESAYLOV_DATABASE_URL"]

    static func make(poolSize: Int = 4, acquire: Duration = .seconds(5)) -> Database {
        var c = Database.Configuration(url: url!)
        c.poolSize = poolSize
        c.acquireTimeout = acquire
        return Database(configuration: c)
    }

    static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Runs `Scripts/pg.sh COMMAND` and waits (posix_spawn + waitpid: no run loop needed).
    static func pg(_ command: String) throws {
        let script = repository.appendingPathComponent("Scripts/pg.sh").path
        var pid = pid_t()
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(script), strdup(command), nil]
        defer { for a in argv { free(a) } }
        #expect(posix_spawn(&pid, script, nil, nil, argv, environ) == 0)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        #expect(status == 0)
    }
}

/// Scripts/test.sh provides ESAYLOV_DATABASE_URL.
@Suite("Storage on PostgreSQL", .serialized, .enabled(if: TestDatabase.url != nil))
struct StoreTests {
    @Test func migrationsAreRecordedAndIdempotent() throws {
        let db = TestDatabase.make()
        #expect(try Migrations.migrate(db).isEmpty)  // test.sh migrated already
        let versions = try db.withConnection { (c) throws(StoreError) in try c.query("SELECT version FROM schema_migrations").count }
        #expect(versions == (try Migrations.bundled()).count)
    }

    @Test func poolRunsAtMostItsSizeAndEveryCallGetsAConnection() async throws {
        let db = TestDatabase.make(poolSize: 3)
        let peak = Peak()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<24 {
                group.addTask {
                    _ = try? await onThreadSync {
                        try db.withConnection { (c) throws(StoreError) in
                            peak.enter()
                            try c.query("SELECT pg_sleep(0.02)")
                            peak.leave()
                        }
                    }
                }
            }
        }
        #expect(peak.max == 3)
    }

    @Test func acquireGivesUpWhenThePoolStaysBusy() throws {
        let db = TestDatabase.make(poolSize: 1, acquire: .milliseconds(200))
        try db.withConnection { (_) throws(StoreError) in
            do throws(StoreError) {
                try db.withConnection { (_) throws(StoreError) in }
                Issue.record("a second connection was handed out")
            } catch {
                #expect(error.kind == .poolExhausted)
            }
        }
    }

    @Test func transactionsThatThrowLeaveNothingBehind() async throws {
        let db = TestDatabase.make()
        let id = "rollback-" + UUID().uuidString.prefix(8).lowercased()
        await #expect(throws: StoreError.self) {
            try await db.transaction { (c) throws(StoreError) in
                try c.query("INSERT INTO organisations (id, kind, kind_order, name_uz, name_en, territory_soato) VALUES (\(id), 'mahalla', 14, 'x', 'x', '17')")
                try c.query("INSERT INTO people (id, pinfl, last_name, first_name) VALUES (\(id), '31210632040244', 'a', 'b')")
                throw StoreError(.other, reason: "stop")
            }
        }
        // The blocking form, used by operator tools, the same.
        #expect(throws: StoreError.self) {
            try db.withTransaction { (c) throws(StoreError) in
                try c.query("INSERT INTO organisations (id, kind, kind_order, name_uz, name_en, territory_soato) VALUES (\(id), 'mahalla', 14, 'x', 'x', '17')")
                throw StoreError(.other, reason: "stop")
            }
        }
        let n = try await db.transaction { (c) throws(StoreError) in
            try c.query("SELECT 1 FROM organisations WHERE id = \(id) UNION ALL SELECT 1 FROM people WHERE id = \(id)").count
        }
        #expect(n == 0)
    }

    @Test func conflictsAreRetriedWithABound() async throws {
        let db = TestDatabase.make()
        let attempts = Mutex(0)
        let value = try await db.transaction { (_) throws(StoreError) -> Int in
            let n = attempts.withLock { $0 += 1; return $0 }
            if n < 3 { throw StoreError(.conflict, sqlState: "40001", reason: "serialization failure") }
            return n
        }
        #expect(value == 3)
        attempts.withLock { $0 = 0 }
        await #expect(throws: StoreError.self) {
            try await db.transaction { (_) throws(StoreError) in
                attempts.withLock { $0 += 1 }
                throw StoreError(.conflict, sqlState: "40P01", reason: "deadlock")
            }
        }
        #expect(attempts.withLock { $0 } == 1 + db.configuration.maxRetries)
    }

    @Test func realSerializationFailuresAreRetried() async throws {
        let db = TestDatabase.make(poolSize: 4)
        try db.withConnection { (c) throws(StoreError) in
            try c.query("CREATE TABLE IF NOT EXISTS test_counter (id int PRIMARY KEY, n int NOT NULL)")
            try c.query("INSERT INTO test_counter VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET n = 0")
        }
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    _ = try? await db.transaction(isolation: .serializable) { (c) throws(StoreError) in
                        let n = try c.query("SELECT n FROM test_counter WHERE id = 1").int(0, "n")
                        usleep(2000)
                        try c.query("UPDATE test_counter SET n = \(n + 1) WHERE id = 1")
                    }
                }
            }
        }
        let n = try db.withConnection { (c) throws(StoreError) in try c.query("SELECT n FROM test_counter WHERE id = 1").int(0, "n") }
        #expect(n >= 1 && n <= 8)  // every committed increment counted once; losers past the bound fail, not corrupt
    }

    @Test func constraintsBecomeClearStatuses() throws {
        let db = TestDatabase.make()
        func failure(_ sql: SQL) -> StoreError? {
            do {
                try db.withTransaction { (c) throws(StoreError) in try c.query(sql) }
                return nil
            } catch { return error }
        }
        let dup = failure("INSERT INTO organisations (id, kind, kind_order, name_uz, name_en, territory_soato) VALUES ('cec', 'mahalla', 14, 'x', 'x', '17')")
        #expect(dup?.kind == .uniqueViolation && dup?.constraint == "organisations_pkey")
        #expect(RPCError(dup!, fieldsByConstraint: ["organisations_pkey": "id"]).code == .alreadyExists)
        let fkID = "fk-" + UUID().uuidString.prefix(6).lowercased()
        let fk = failure("INSERT INTO organisations (id, kind, kind_order, name_uz, name_en, territory_soato, parent_id) VALUES (\(fkID), 'party_branch', 6, 'x', 'x', '17', 'none')")
        #expect(fk?.kind == .foreignKeyViolation)
        #expect(RPCError(fk!).code == .failedPrecondition)
        let pinfl = failure("INSERT INTO people (id, pinfl, last_name, first_name) VALUES (\("badpinfl"), '31210632040245', 'a', 'b')")
        #expect(pinfl?.kind == .checkViolation && pinfl?.constraint == "people_pinfl_check")
        #expect(RPCError(pinfl!).code == .invalidArgument)
        let soato = failure("INSERT INTO territories (soato, level, kind, parent_soato, name_uz, name_en) VALUES ('1899', 'region', 'region', '17', 'x', 'x')")
        #expect(soato?.kind == .checkViolation)
        #expect(!"\(dup!)".contains("cec"))  // descriptions never echo data
    }

    @Test func theDirectoryRefusesParentCyclesAndInfiniteTimes() async throws {
        let db = TestDatabase.make()
        let a = "cycle-a-" + UUID().uuidString.prefix(6).lowercased()
        let b = "cycle-b-" + UUID().uuidString.prefix(6).lowercased()
        try await db.transaction { (c) throws(StoreError) in
            try c.query("INSERT INTO organisations (id, kind, kind_order, name_uz, name_en, territory_soato) VALUES (\(a), 'mahalla', 14, 'a', 'a', '17')")
            try c.query(
                "INSERT INTO organisations (id, kind, kind_order, name_uz, name_en, territory_soato, parent_id) VALUES (\(b), 'mahalla', 14, 'b', 'b', '17', \(a))")
        }
        func failure(_ body: @escaping @Sendable (Connection) throws(StoreError) -> Void) async -> StoreError? {
            do {
                try await db.transaction(body)
                return nil
            } catch { return error }
        }
        let cycle = await failure { (c) throws(StoreError) in try c.query("UPDATE organisations SET parent_id = \(b) WHERE id = \(a)") }
        #expect(cycle?.kind == .checkViolation && cycle?.constraint == "organisations_parent_acyclic")
        let infinite = await failure { (c) throws(StoreError) in
            try c.query("INSERT INTO memberships (organisation_id, person_id, role, since, until) SELECT \(a), id, 'head', now(), 'infinity' FROM people LIMIT 1")
        }
        #expect(infinite?.kind == .checkViolation && infinite?.constraint == "memberships_finite")
        let ancient = await failure { (c) throws(StoreError) in try c.query("UPDATE organisations SET created_at = '-infinity' WHERE id = \(a)") }
        #expect(ancient?.constraint == "organisations_created_finite")
    }

    @Test func statementTimeoutComesFromTheDeadline() throws {
        let db = TestDatabase.make()
        do {
            try db.withConnection(timeout: .milliseconds(100)) { (c) throws(StoreError) in try c.query("SELECT pg_sleep(2)") }
            Issue.record("no timeout")
        } catch {
            #expect(error.kind == .timeout)
            #expect(RPCError(error).code == .deadlineExceeded)
        }
        // The connection goes back with the default timeout: a slower query still works.
        try db.withConnection { (c) throws(StoreError) in try c.query("SELECT pg_sleep(0.2)") }
    }

    @Test func transactionTimeoutsComeFromTheDeadlineAndAreClamped() async throws {
        let db = TestDatabase.make()
        await #expect(throws: StoreError(.timeout, sqlState: "57014", reason: "statement failed")) {
            try await db.transaction(timeout: .milliseconds(100)) { (c) throws(StoreError) in _ = try c.query("SELECT pg_sleep(2)") }
        }
        // A deadline of 1000 hours (legal in grpc-timeout) is more than statement_timeout takes
        // (SQLSTATE 22023): it is clamped, and the work runs normally.
        let far = Duration.seconds(1000 * 3600)
        #expect(try await db.transaction(timeout: far) { (c) throws(StoreError) in try c.query("SELECT 1 AS v").int(0, "v") } == 1)
        #expect(try db.withConnection(timeout: far) { (c) throws(StoreError) in try c.query("SELECT 1 AS v").int(0, "v") } == 1)
        #expect(try await db.read(Query("SELECT 1 AS v") { (rows) throws(StoreError) in try rows.int(0, "v") }, timeout: far) == 1)
        // A deadline that passed before a thread was free: the transaction does not start.
        await #expect(throws: StoreError.self) {
            try await db.transaction(timeout: .zero) { (c) throws(StoreError) in _ = try c.query("SELECT 1") }
        }
    }

    @Test func interpolatedValuesAreBoundWithTheirTypes() async throws {
        let db = TestDatabase.make()
        let hostile = "x'); DROP TABLE people; --"
        let when = Date(timeIntervalSince1970: 1_720_000_000.25)
        let nothing: String? = nil
        let columns: SQL = "\(hostile)::text AS t, \(42) + 1 AS i, \(true) AS b"
        let q = Query<[String?]>(
            """
            SELECT \(columns), \(1.5) * 2 AS d, extract(epoch FROM \(when)) AS e, \(SQLBytes([0, 39, 255])) AS y,
                   array_length(\(["a\"b", "c\\d", "{e}"]), 1) AS n, (\(["a\"b", "c\\d", "{e}"]))[1] AS first,
                   \(nothing) IS NULL AS nul, 7 = ANY(\([5, 7])) AS any
            """
        ) { (rows) throws(StoreError) in
            [try rows.string(0, "t"), try rows.string(0, "i"), try rows.string(0, "b"), try rows.string(0, "d"), try rows.string(0, "e"),
             try rows.bytes(0, "y").map(String.init).joined(separator: ","), try rows.string(0, "n"), try rows.string(0, "first"),
             try rows.string(0, "nul"), try rows.string(0, "any")]
        }
        #expect(q.sql.text.contains("$1::text AS t, $2 + 1 AS i, $3 AS b, $4 * 2"))
        #expect(!q.sql.text.contains("DROP"))
        let expected: [String?] = [hostile, "43", "t", "3", "1720000000.250000", "0,39,255", "3", "a\"b", "t", "t"]
        #expect(try await db.read(q) == expected)
        #expect(try await db.transaction { (c) throws(StoreError) in try c.run(q) } == expected)
        // A missing column is a decoding error that names it.
        await #expect(throws: StoreError(.decoding, reason: "result has no column nope")) {
            try await db.read(Query("SELECT 1 AS v") { (rows) throws(StoreError) in try rows.int(0, "nope") })
        }
    }

    @Test func pageTokensRefuseAlteration() throws {
        let tokens = try PageTokens.load(from: TestDatabase.make())
        let t = tokens.encode(filter: ["f"], fields: ["1", "17", "name", "id"])
        #expect(tokens.decode(t, filter: ["f"], fieldCount: 4) == ["1", "17", "name", "id"])
        #expect(tokens.decode(t, filter: ["g"], fieldCount: 4) == nil)
        // Filters that would read alike as one string are different filters.
        let a = tokens.encode(filter: ["a;n=b", ""], fields: ["x"])
        #expect(tokens.decode(a, filter: ["a", "b;n="], fieldCount: 1) == nil)
        #expect(tokens.decode(a, filter: ["a;n=b", ""], fieldCount: 1) == ["x"])
        // Tokens expire.
        let old = tokens.encode(filter: ["f"], fields: ["1"], now: Date(timeIntervalSinceNow: -25 * 3600))
        #expect(tokens.decode(old, filter: ["f"], fieldCount: 1) == nil)
        let fromTheFuture = tokens.encode(filter: ["f"], fields: ["1"], now: Date(timeIntervalSinceNow: 3600))
        #expect(tokens.decode(fromTheFuture, filter: ["f"], fieldCount: 1) == nil)
        var chars = Array(t)
        chars[5] = chars[5] == "A" ? "B" : "A"
        #expect(tokens.decode(String(chars), filter: ["f"], fieldCount: 4) == nil)
        #expect(tokens.decode("", filter: ["f"], fieldCount: 4) == nil)
        // The key came from the CSPRNG at first load, not from migration 1's random().
        let key = try TestDatabase.make().withConnection { (c) throws(StoreError) in
            try c.query("SELECT value FROM server_secrets WHERE name = 'page_token_key'").string(0, "value")
        }
        #expect(key.count == 64 && key.allSatisfy(\.isHexDigit))
    }

    @Test func reconnectsAfterTheServerRestarts() throws {
        let db = TestDatabase.make()
        db.startMonitoring(interval: .milliseconds(200))
        try db.withConnection { (c) throws(StoreError) in try c.query("SELECT 1") }
        #expect(db.isReady)
        try TestDatabase.pg("stop")
        do {
            try db.withConnection { (c) throws(StoreError) in try c.query("SELECT 1") }
            Issue.record("query succeeded with the database stopped")
        } catch {
            #expect(error.kind == .unavailable)
            #expect(RPCError(error).code == .unavailable)
        }
        #expect(!db.isReady)
        try TestDatabase.pg("start")
        var recovered = false
        for _ in 0..<50 where !recovered {
            recovered = (try? db.withConnection { (c) throws(StoreError) in try c.query("SELECT 1") }) != nil
            if !recovered { usleep(100_000) }
        }
        #expect(recovered)
        #expect(db.isReady)
    }
}

/// Counts how many callers are inside at once.
final class Peak: Sendable {
    private let state = Mutex((now: 0, max: 0))
    func enter() { state.withLock { $0.now += 1; $0.max = Swift.max($0.max, $0.now) } }
    func leave() { state.withLock { $0.now -= 1 } }
    var max: Int { state.withLock { $0.max } }
}

/// Runs blocking storage code on its own thread.
func onThreadSync<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await onThread(body)
}
