import Foundation
import NIOCore
import NIOPosix
import RPC
import Services
@testable import Store
import Testing

/// Reads on an event loop (`Database.read`): non-blocking libpq in pipeline mode, against the
/// embedded PostgreSQL. In the storage suite, which runs serially, because one test restarts it.
extension StoreTests {
    static let loops = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    static func readDatabase(connections: Int = 2, maxWaiting: Int = 1024) -> Database {
        var c = Database.Configuration(url: TestDatabase.url!)
        c.connectionsPerEventLoop = connections
        c.maxWaitingPerEventLoop = maxWaiting
        return Database(configuration: c)
    }

    static func number(_ sql: SQL) -> Query<Int> {
        Query(sql) { (rows) throws(StoreError) in try rows.int(0, "v") }
    }

    /// Starts `count` reads in one turn of the loop, so they share pipeline segments.
    static func readTogether(_ db: Database, _ count: Int, _ query: @escaping @Sendable (Int) -> Query<Int>) async throws -> [Result<Int, any Error>] {
        let loop = loops.next()
        let futures = try await loop.submit { (0..<count).map { db.read(query($0), on: loop) } }.get()
        var out: [Result<Int, any Error>] = []
        for f in futures {
            do { out.append(.success(try await f.get())) } catch { out.append(.failure(error)) }
        }
        return out
    }

    @Test func everyPipelinedReadGetsItsOwnAnswer() async throws {
        let db = Self.readDatabase()
        let results = try await Self.readTogether(db, 300) { i in Self.number("SELECT \(i) * 2 AS v") }
        for (i, r) in results.enumerated() { #expect(try r.get() == i * 2) }
        // And from any thread, one at a time.
        for i in 0..<20 { #expect(try await db.read(Self.number("SELECT \(i) + 1 AS v"), on: Self.loops.next()).get() == i + 1) }
    }

    @Test func aFailingReadDoesNotFailItsNeighbours() async throws {
        let db = Self.readDatabase(connections: 1)
        let results = try await Self.readTogether(db, 20) { i in Self.number("SELECT 100 / \(i == 7 ? 0 : 1) AS v") }
        for (i, r) in results.enumerated() {
            if i == 7 {
                #expect(throws: StoreError.self) { try r.get() }
                if case .failure(let e as StoreError) = r { #expect(e.sqlState == "22012") }
            } else {
                #expect(try r.get() == 100)
            }
        }
    }

    @Test func aStatementThatCannotBePreparedFailsEveryTimeAndAlone() async throws {
        let db = Self.readDatabase(connections: 1)
        for _ in 0..<2 {
            let results = try await Self.readTogether(db, 6) { i in
                i == 3 ? Self.number("SELECT v FROM no_such_table") : Self.number("SELECT \(i) AS v")
            }
            for (i, r) in results.enumerated() {
                if i == 3 {
                    if case .failure(let e as StoreError) = r { #expect(e.sqlState == "42P01") } else { Issue.record("no error for \(r)") }
                } else {
                    #expect(try r.get() == i)
                }
            }
        }
    }

    @Test func aBurstBeyondWhatTheLaneHoldsIsTurnedAwayAtOnce() async throws {
        let db = Self.readDatabase(connections: 1, maxWaiting: 2)
        #expect(try await db.read(Self.number("SELECT 1 AS v"), on: Self.loops.next()).get() == 1)  // the one connection is open
        // 32 ride on the connection, 2 wait for room, the other 6 are refused without waiting.
        let results = try await Self.readTogether(db, 40) { i in Self.number("SELECT \(i) AS v FROM pg_sleep(0.005)") }
        let refused = results.filter { if case .failure(let e as StoreError) = $0 { return e.kind == .poolExhausted } else { return false } }
        #expect(refused.count == 6)
        #expect(results.compactMap { try? $0.get() }.count == 34)
        #expect(RPCError(StoreError(.poolExhausted, reason: "")).code == .unavailable)
    }

    @Test func aClosedDatabaseRefusesReadsAndKeepsItsBlockingPool() async throws {
        let db = Self.readDatabase()
        let loop = Self.loops.next()
        #expect(try await db.read(Self.number("SELECT 1 AS v"), on: loop).get() == 1)
        await db.close()
        await #expect(throws: StoreError.databaseClosed) {
            try await db.read(Self.number("SELECT 1 AS v"), on: loop).get()
        }
        #expect(try db.withConnection { (c) throws(StoreError) in try c.run(Self.number("SELECT 2 AS v")) } == 2)
    }

    /// Failing reads abort their segment again and again; the reads they took with them go
    /// again each in a segment of its own, so every good read gets its answer.
    @Test func readsAbortedByFailingNeighboursAllSucceed() async throws {
        let db = Self.readDatabase(connections: 1)
        let results = try await Self.readTogether(db, 40) { i in Self.number("SELECT 100 / \(i % 2) AS v") }
        for (i, r) in results.enumerated() {
            if i % 2 == 0 {
                if case .failure(let e as StoreError) = r { #expect(e.sqlState == "22012") } else { Issue.record("read \(i) did not fail") }
            } else {
                #expect(try r.get() == 100)
            }
        }
    }

    /// A read past its deadline is stopped by the server (statement_timeout at about the
    /// deadline), so the reads queued behind it on the same connection do not wait for it.
    @Test func aSlowReadPastItsDeadlineFreesItsConnection() async throws {
        let db = Self.readDatabase(connections: 1)
        let loop = Self.loops.next()
        #expect(try await db.read(Self.number("SELECT 1 AS v"), on: loop).get() == 1)
        let (slow, next) = try await loop.submit {
            (db.read(Self.number("SELECT 1 AS v FROM pg_sleep(5)"), on: loop, timeout: .milliseconds(200)),
             db.read(Self.number("SELECT 1 AS v FROM pg_sleep(0.6)"), on: loop))
        }.get()
        let start = ContinuousClock.now
        await #expect(throws: StoreError.self) { try await slow.get() }
        #expect(try await next.get() == 1)
        // Behind a 5 s statement it would have taken more than 5 s.
        #expect(ContinuousClock.now - start < .seconds(3))
        #expect(LoopConnection.statementTimeoutStep(200, default: .seconds(30)) == 250)
        #expect(LoopConnection.statementTimeoutStep(4000, default: .seconds(30)) == 5000)
        #expect(LoopConnection.statementTimeoutStep(nil, default: .seconds(30)) == 30_000)
        #expect(LoopConnection.statementTimeoutStep(60_000, default: .seconds(30)) == 30_000)
    }

    /// Reads already written to PostgreSQL when the database closes get an answer (UNAVAILABLE):
    /// none is dropped unanswered (NIO's debug build traps on a promise left unfulfilled).
    @Test func closingAnswersReadsInFlight() async throws {
        let db = Self.readDatabase(connections: 1)
        let loop = Self.loops.next()
        #expect(try await db.read(Self.number("SELECT 1 AS v"), on: loop).get() == 1)
        let inFlight = try await loop.submit { (0..<5).map { _ in db.read(Self.number("SELECT 1 AS v FROM pg_sleep(1)"), on: loop) } }.get()
        try await Task.sleep(for: .milliseconds(100))
        await db.close()
        for read in inFlight {
            await #expect(throws: StoreError.databaseClosed) { try await read.get() }
        }
    }

    @Test func aRowThatDoesNotDecodeIsAnError() async throws {
        let db = Self.readDatabase()
        await #expect(throws: StoreError.self) {
            try await db.read(Self.number("SELECT 'x' AS v"), on: Self.loops.next()).get()
        }
    }

    @Test func theDeadlineEndsTheReadAndCancelsItOnTheServer() async throws {
        let db = Self.readDatabase(connections: 1)
        let loop = Self.loops.next()
        let started = ContinuousClock.now
        do {
            _ = try await db.read(Self.number("SELECT 1 AS v FROM pg_sleep(5)"), on: loop, timeout: .milliseconds(150)).get()
            Issue.record("no timeout")
        } catch let error as StoreError {
            #expect(error.kind == .timeout)
            #expect(RPCError(error).code == .deadlineExceeded)
        }
        // The one connection is free again well before the 5 s the sleep asked for.
        #expect(try await db.read(Self.number("SELECT 1 AS v"), on: loop).get() == 1)
        #expect(ContinuousClock.now - started < .seconds(3))
    }

    @Test func readsRecoverAfterTheServerRestarts() async throws {
        let db = Self.readDatabase()
        db.startMonitoring(interval: .milliseconds(200))
        let loop = Self.loops.next()
        #expect(try await db.read(Self.number("SELECT 1 AS v"), on: loop).get() == 1)
        try TestDatabase.pg("stop")
        do {
            _ = try await db.read(Self.number("SELECT 1 AS v"), on: loop).get()
            Issue.record("read succeeded with the database stopped")
        } catch let error as StoreError {
            #expect(error.kind == .unavailable)
        }
        try TestDatabase.pg("start")
        var recovered = false
        for _ in 0..<50 where !recovered {
            recovered = (try? await db.read(Self.number("SELECT 1 AS v"), on: loop).get()) == 1
            if !recovered { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(recovered)
    }
}
