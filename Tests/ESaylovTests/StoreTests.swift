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

    @Test func transactionsRollBackOnError() throws {
        let db = TestDatabase.make()
        let id = "rollback-" + UUID().uuidString.prefix(8).lowercased()
        do {
            try db.withTransaction { (c) throws(StoreError) in
                try c.query("INSERT INTO organisations (id, kind, kind_order, name_uz, name_en, territory_soato) VALUES ($1, 'mahalla', 14, 'x', 'x', '17')", [id])
                throw StoreError(.other, reason: "stop")
            }
        } catch {}
        let n = try db.withConnection { (c) throws(StoreError) in try c.query("SELECT 1 FROM organisations WHERE id = $1", [id]).count }
        #expect(n == 0)
    }

    @Test func conflictsAreRetriedWithABound() throws {
        let db = TestDatabase.make()
        let attempts = Mutex(0)
        let value = try db.withTransaction { (_) throws(StoreError) -> Int in
            let n = attempts.withLock { $0 += 1; return $0 }
            if n < 3 { throw StoreError(.conflict, sqlState: "40001", reason: "serialization failure") }
            return n
        }
        #expect(value == 3)
        attempts.withLock { $0 = 0 }
        #expect(throws: StoreError.self) {
            try db.withTransaction { (_) throws(StoreError) in
                attempts.withLock { $0 += 1 }
                throw StoreError(.conflict, sqlState: "40P01", reason: "deadlock")
            }
        }
        #expect(attempts.withLock { $0 } == 1 + db.configuration.maxRetries)
    }

    @Test func realSerializationFailuresAreRetried() async throws {
        let db = TestDatabase.make(poolSize: 4)
        try db.withConnection { (c) throws(StoreError) in
            try c.execute("CREATE TABLE IF NOT EXISTS test_counter (id int PRIMARY KEY, n int NOT NULL)")
            try c.execute("INSERT INTO test_counter VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET n = 0")
        }
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    _ = try? await onThreadSync {
                        try db.withTransaction(isolation: "SERIALIZABLE") { (c) throws(StoreError) in
                            let n = try c.query("SELECT n FROM test_counter WHERE id = 1").int(0, "n")
                            usleep(2000)
                            try c.query("UPDATE test_counter SET n = $1::int WHERE id = 1", [String(n + 1)])
                        }
                    }
                }
            }
        }
        let n = try db.withConnection { (c) throws(StoreError) in try c.query("SELECT n FROM test_counter WHERE id = 1").int(0, "n") }
        #expect(n >= 1 && n <= 8)  // every committed increment counted once; losers past the bound fail, not corrupt
    }

    @Test func constraintsBecomeClearStatuses() throws {
        let db = TestDatabase.make()
        func failure(_ sql: String, _ params: [String?]) -> StoreError? {
            do {
                try db.withTransaction { (c) throws(StoreError) in try c.query(sql, params) }
                return nil
            } catch { return error }
        }
        let dup = failure("INSERT INTO organisations (id, kind, kind_order, name_uz, name_en, territory_soato) VALUES ('cec', 'mahalla', 14, 'x', 'x', '17')", [])
        #expect(dup?.kind == .uniqueViolation && dup?.constraint == "organisations_pkey")
        #expect(RPCError(dup!, fieldsByConstraint: ["organisations_pkey": "id"]).code == .alreadyExists)
        let fk = failure("INSERT INTO organisations (id, kind, kind_order, name_uz, name_en, territory_soato, parent_id) VALUES ($1, 'party_branch', 6, 'x', 'x', '17', 'none')", ["fk-" + UUID().uuidString.prefix(6).lowercased()])
        #expect(fk?.kind == .foreignKeyViolation)
        #expect(RPCError(fk!).code == .failedPrecondition)
        let pinfl = failure("INSERT INTO people (id, pinfl, last_name, first_name) VALUES ($1, '31210632040245', 'a', 'b')", ["badpinfl"])
        #expect(pinfl?.kind == .checkViolation && pinfl?.constraint == "people_pinfl_check")
        #expect(RPCError(pinfl!).code == .invalidArgument)
        let soato = failure("INSERT INTO territories (soato, level, kind, parent_soato, name_uz, name_en) VALUES ('1899', 'region', 'region', '17', 'x', 'x')", [])
        #expect(soato?.kind == .checkViolation)
        #expect(!"\(dup!)".contains("cec"))  // descriptions never echo data
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

    @Test func pageTokensRefuseAlteration() throws {
        let tokens = try PageTokens.load(from: TestDatabase.make())
        let t = tokens.encode(filter: "f", fields: ["1", "17", "name", "id"])
        #expect(tokens.decode(t, filter: "f", fieldCount: 4) == ["1", "17", "name", "id"])
        #expect(tokens.decode(t, filter: "g", fieldCount: 4) == nil)
        var chars = Array(t)
        chars[5] = chars[5] == "A" ? "B" : "A"
        #expect(tokens.decode(String(chars), filter: "f", fieldCount: 4) == nil)
        #expect(tokens.decode("", filter: "f", fieldCount: 4) == nil)
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
