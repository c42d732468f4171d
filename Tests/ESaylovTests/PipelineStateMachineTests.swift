@testable import Store
import Testing

/// The pipelined connection's state machine, driven with plain values: no PostgreSQL.
@Suite("Pipeline state machine")
struct PipelineStateMachineTests {
    @Test func callsOfOneTurnShareOneSync() {
        var m = PipelineStateMachine()
        do { let v = m.callWritten(); #expect(v) }  // opens the segment: ask for a sync
        do { let v = m.callWritten(); #expect(!v) }
        do { let v = m.callWritten(); #expect(!v) }
        #expect(m.outstanding == 3)
        do { let v = m.syncDue(); #expect(v) }
        do { let v = m.syncDue(); #expect(!v) }  // one sync per segment
        do { let v = m.callWritten(); #expect(v) }  // the next turn opens another
    }

    @Test func theWatcherIsArmedOnlyWhenWhatItWatchesChanges() {
        var m = PipelineStateMachine()
        #expect(m.watch == .armed(forWrite: false))
        do { let v = m.flushed(pending: false); #expect(v == .none) }  // armed for reading already
        do { let v = m.flushed(pending: true); #expect(v == .arm(forWrite: true)) }
        do { let v = m.socketReady(); #expect(v) }  // flush libpq's output before reading
        #expect(m.watch == .disarmed)
        do { let v = m.flushed(pending: false); #expect(v == .arm(forWrite: false)) }
        do { let v = m.socketReady(); #expect(!v) }
        do { let v = m.rearm(); #expect(v == .arm(forWrite: false)) }
        do { let v = m.rearm(); #expect(v == .none) }
    }

    @Test func aCancelIsSentOnlyForALoneCallAndBlocksNewCallsUntilDeliveredAndDrained() {
        var m = PipelineStateMachine()
        _ = m.callWritten()
        _ = m.callWritten()
        do { let v = m.cancelRequested(); #expect(!v) }  // it would hit the neighbour
        m.answered()
        do { let v = m.cancelRequested(); #expect(v) }
        #expect(!m.takesCalls)
        do { let v = m.cancelRequested(); #expect(!v) }  // not twice
        m.answered()
        // Drained, but the cancel is still on its way: a new call could be the one it hits.
        #expect(!m.takesCalls)
        do { let v = m.cancelDelivered(); #expect(v) }
        #expect(m.takesCalls)
        #expect(m.state == .open)
        // Delivered first, drained after.
        _ = m.callWritten()
        _ = m.cancelRequested()
        do { let v = m.cancelDelivered(); #expect(!v) }
        m.answered()
        #expect(m.takesCalls)
    }

    @Test func closingReportsTheCallsLeftOnce() {
        var m = PipelineStateMachine()
        _ = m.callWritten()
        _ = m.callWritten()
        do { let v = m.close(); #expect(v == 2) }
        do { let v = m.close(); #expect(v == nil) }
        #expect(m.outstanding == 0)
        #expect(!m.takesCalls)
        do { let v = m.syncDue(); #expect(!v) }
        do { let v = m.rearm(); #expect(v == .none) }  // a closed connection's socket is not watched
    }
}
