import Domain
import Foundation
@testable import Services
import Signatures
@testable import Store
import Testing

/// A watch stream's course, without sockets or a database.
@Suite("Watch stream state machine")
struct WatchStateMachineTests {
    @Test func itReadsFromItsStartThenWaitsAndReadsAgainWhenNotified() {
        var m = WatchStateMachine(heartbeat: 15)
        #expect(m.started(at: 7, now: 0) == .read(after: 7))
        #expect(m.read(count: 3, through: 10, now: 0.1) == .wait)
        #expect(m.position == 10)
        // A tick with nothing published and the poll not due: keep waiting.
        #expect(m.woke(notified: false, poll: 5, now: 1) == .wait)
        #expect(m.woke(notified: true, poll: 5, now: 1.5) == .read(after: 10))
        #expect(m.read(count: 0, through: nil, now: 1.6) == .wait)
        #expect(m.position == 10)
    }

    @Test func aFullBatchIsFollowedAtOnceByTheNextRead() {
        var m = WatchStateMachine(heartbeat: 15)
        _ = m.started(at: 0, now: 0)
        #expect(m.read(count: WatchStateMachine.batch, through: 100, now: 0.1) == .read(after: 100))
        #expect(m.read(count: 5, through: 105, now: 0.2) == .wait)
    }

    @Test func withoutNotificationsItPollsAtTheHubsInterval() {
        var m = WatchStateMachine(heartbeat: 15)
        _ = m.started(at: 0, now: 0)
        _ = m.read(count: 0, through: nil, now: 0)
        #expect(m.woke(notified: false, poll: 5, now: 4.9) == .wait)
        #expect(m.woke(notified: false, poll: 5, now: 5.0) == .read(after: 0))
    }

    @Test func anIdleStreamChecksTheRoleThenSendsAHeartbeatAtItsPosition() {
        var m = WatchStateMachine(heartbeat: 15)
        _ = m.started(at: 4, now: 0)
        _ = m.read(count: 0, through: nil, now: 0)
        #expect(m.woke(notified: false, poll: 100, now: 15) == .read(after: 4))
        #expect(m.read(count: 0, through: nil, now: 15) == .checkRole)
        #expect(m.roleChecked(stillHeld: true, now: 15) == .read(after: 4))
        #expect(m.read(count: 0, through: nil, now: 15.1) == .sendHeartbeat(position: 4))
        // The heartbeat counts as sent: the next one is 15 s later.
        #expect(m.woke(notified: false, poll: 100, now: 20) == .wait)
    }

    @Test func aBusyStreamStillChecksTheRoleButSendsNoHeartbeat() {
        var m = WatchStateMachine(heartbeat: 15)
        _ = m.started(at: 0, now: 0)
        var now = 0.0
        var position = 0
        for _ in 0..<14 {
            now += 1
            position += 1
            #expect(m.read(count: 1, through: position, now: now) == .wait)
            #expect(m.woke(notified: true, poll: 5, now: now + 0.5) == .read(after: position))
        }
        #expect(m.read(count: 1, through: position + 1, now: 15) == .checkRole)
        #expect(m.roleChecked(stillHeld: true, now: 15) == .read(after: position + 1))
        #expect(m.read(count: 0, through: nil, now: 15.1) == .wait)
    }

    @Test func aLostRoleOrAnEndedCallFinishesTheStream() {
        var m = WatchStateMachine(heartbeat: 1)
        _ = m.started(at: 0, now: 0)
        #expect(m.read(count: 0, through: nil, now: 2) == .checkRole)
        #expect(m.roleChecked(stillHeld: false, now: 2) == .finish)
        #expect(m.state == .finished)
        // Nothing moves a finished stream.
        #expect(m.woke(notified: true, poll: 1, now: 3) == .finish)
        #expect(m.read(count: 1, through: 1, now: 3) == .finish)
        var n = WatchStateMachine(heartbeat: 15)
        _ = n.started(at: 0, now: 0)
        #expect(n.ended() == .finish)
        #expect(n.position == nil)
    }
}

/// The listener's reconnection and the relay's payloads.
@Suite("Event hub")
struct EventHubTests {
    @Test func theListenerBacksOffDoublingAndWakesEveryoneWhenItListensAgain() {
        var m = ListenerStateMachine()
        #expect(m.start() == .connect)
        #expect(m.failed() == .wait(.milliseconds(250)))
        #expect(m.retry() == .connect)
        #expect(m.failed() == .wait(.milliseconds(500)))
        #expect(m.retry() == .connect)
        #expect(m.connected() == .wakeEveryone)
        #expect(m.state == .listening)
        // A broken connection starts the backoff again from its shortest step.
        #expect(m.failed() == .wait(.milliseconds(250)))
        for _ in 0..<10 {
            _ = m.retry()
            _ = m.failed()
        }
        #expect(ListenerStateMachine.backoff(11) == .milliseconds(8000))
        #expect(m.stop() == .close)
        #expect(m.retry() == .close)
    }

    @Test func payloadsNameTheReplicaAndStayUnderPostgresLimit() {
        let keys = (0..<600).map { "incoming:dec-\(1_700_000 + $0)" }
        let payloads = EventHub.payloads(replica: "r1", keys)
        #expect(payloads.count > 1)
        #expect(payloads.allSatisfy { $0.utf8.count <= 7_000 && $0.hasPrefix("r1 ") })
        var back: [String] = []
        for p in payloads { back += EventHub.recipients(ofPayload: p, replica: "other") ?? [] }
        #expect(back.sorted() == keys.sorted())
        // A replica skips its own notifications: it woke its watchers when it committed.
        #expect(EventHub.recipients(ofPayload: payloads[0], replica: "r1") == nil)
        #expect(EventHub.payloads(replica: "r1", []).isEmpty)
    }
}

/// The event log in PostgreSQL: positions in commit order, nothing on rollback, the timer
/// event once, retention.
@Suite("Request events in PostgreSQL", .serialized, .enabled(if: TestDatabase.url != nil))
struct RequestEventStoreTests {
    @Test func eachRecipientsPositionsRunWithoutGapsInCommitOrderAndARollbackWritesNone() async throws {
        let db = TestDatabase.make()
        let events = RequestEvents(hub: nil)
        let recipient = EventRecipient.incoming(commissionId: "tec-1726")
        let id = try sentReport(db, dueIn: nil)
        let before = try db.withConnection { (c) throws(StoreError) in try c.run(events.position(recipient)) }
        // Sixteen transactions at once, each appending as its last statement.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    try await db.transaction { (c) throws(StoreError) in
                        events.append(c, requestId: id, kind: .submitted, status: .submitted, version: 2, to: [recipient, .outgoing(.organisation("dec-1726264"))])
                    }
                }
            }
            try await group.waitForAll()
        }
        // One that fails after appending leaves nothing.
        do {
            try db.withTransaction { (c) throws(StoreError) in
                events.append(c, requestId: id, kind: .submitted, status: .submitted, version: 2, to: [recipient])
                throw StoreError(.other, reason: "refused")
            }
        } catch {}
        let read = try db.withConnection { (c) throws(StoreError) in try c.run(events.events(recipient, after: before, limit: 100)) }
        #expect(read.map(\.position) == Array((before + 1)...(before + 16)))
        #expect(read.allSatisfy { $0.request.id == id && $0.request.status == .submitted && $0.request.version == 2 && $0.kind == .submitted })
        let start = try db.withConnection { (c) throws(StoreError) in try c.run(events.start(recipient, from: .cursor(before))) }
        #expect(start == .at(before))
        let ahead = try db.withConnection { (c) throws(StoreError) in try c.run(events.start(recipient, from: .cursor(before + 17))) }
        #expect(ahead == .ahead)
    }

    @Test func theDueSoonTimerEventIsWrittenOnceAndRetentionEndsOldCursors() throws {
        let db = TestDatabase.make()
        let events = RequestEvents(hub: nil)
        let recipient = EventRecipient.incoming(commissionId: "tec-1726")
        let soon = try sentReport(db, dueIn: 3600)
        let later = try sentReport(db, dueIn: 3 * 86400)
        let before = try db.withConnection { (c) throws(StoreError) in try c.run(events.position(recipient)) }
        let first = try db.withTransaction { (c) throws(StoreError) in try events.noteDueSoon(c) }
        let second = try db.withTransaction { (c) throws(StoreError) in try events.noteDueSoon(c) }
        #expect(first >= 1 && second == 0)
        let read = try db.withConnection { (c) throws(StoreError) in try c.run(events.events(recipient, after: before, limit: 100)) }
        #expect(read.contains { $0.request.id == soon && $0.kind == .decisionDueSoon })
        #expect(!read.contains { $0.request.id == later })
        // Retention: the events of this recipient up to `before + 1` go; a cursor before them is out of range.
        try db.withTransaction { (c) throws(StoreError) in
            try c.query("DELETE FROM request_events WHERE recipient = \(recipient.key) AND position <= \(before + 1)")
        }
        let purged = try db.withConnection { (c) throws(StoreError) in try c.run(events.start(recipient, from: .cursor(before))) }
        #expect(purged == .purged)
        let oldest = try db.withConnection { (c) throws(StoreError) in try c.run(events.start(recipient, from: .oldest)) }
        #expect(oldest == .at(before + 1))
        // An event is never changed.
        do {
            try db.withTransaction { (c) throws(StoreError) in 
                try c.query("UPDATE request_events SET kind = 'withdrawn' WHERE (recipient, position) IN (SELECT recipient, position FROM request_events LIMIT 1)")
            }
            Issue.record("an event was changed")
        } catch {
            #expect(error.constraint == "request_events_are_immutable")
        }
    }
}
