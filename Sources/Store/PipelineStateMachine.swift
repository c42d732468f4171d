/// One pipelined database connection's state, as a value whose events return what its owner
/// (`LoopConnection`) must do: which calls it takes, when a segment needs its sync, and how the
/// socket watcher is armed. Tested with plain values, without PostgreSQL.
///
///     open ⇄ cancelling  (a cancel request is on its way: no new call until the pipeline drains)
///       └────────┴──────→ closed
struct PipelineStateMachine {
    enum State: Equatable {
        case open
        /// A cancel request is on its way: no new calls until it has been delivered and the
        /// pipeline has drained, so that it cannot hit them.
        case cancelling(delivered: Bool)
        case closed
    }

    /// Whether calls were written since the last sync.
    enum Segment: Equatable {
        case synced
        case unsynced
    }

    /// What the socket watcher will report next; it reports once, then waits to be armed.
    enum Watch: Equatable {
        case disarmed
        case armed(forWrite: Bool)
    }

    private(set) var state: State = .open
    private(set) var segment: Segment = .synced
    /// The watcher is armed for reading when the connection is made.
    private(set) var watch: Watch = .armed(forWrite: false)
    /// libpq still holds output that the socket did not take.
    private(set) var outputPending = false
    /// Calls written and not yet answered.
    private(set) var outstanding = 0

    /// Whether a new call may be sent on this connection.
    var takesCalls: Bool { state == .open }
    var isClosed: Bool { state == .closed }

    /// A call was written into the pipeline. True when it opened a segment: the owner asks
    /// for a sync at the end of this turn of the loop.
    mutating func callWritten() -> Bool {
        precondition(state != .closed, "a call written on a closed connection")
        outstanding += 1
        guard segment == .synced else { return false }
        segment = .unsynced
        return true
    }

    /// The sync is due: true when there is a segment to end (the owner writes the sync).
    mutating func syncDue() -> Bool {
        guard state != .closed, segment == .unsynced else { return false }
        segment = .synced
        return true
    }

    enum ArmAction: Equatable {
        case arm(forWrite: Bool)
        case none
    }

    /// libpq flushed what it could; `pending` when output is left. Arms the watcher unless it
    /// is armed already for the same direction.
    mutating func flushed(pending: Bool) -> ArmAction {
        outputPending = pending
        return rearm()
    }

    /// The watcher reported the socket. Returns whether libpq's pending output is to be flushed
    /// before reading.
    mutating func socketReady() -> Bool {
        watch = .disarmed
        return outputPending
    }

    /// Results were read: the watcher is armed again for what is next.
    mutating func rearm() -> ArmAction {
        guard state != .closed else { return .none }
        let wanted = Watch.armed(forWrite: outputPending)
        guard watch != wanted else { return .none }
        watch = wanted
        return .arm(forWrite: outputPending)
    }

    /// A call's result arrived (or it was sent again elsewhere). A cancel on its way no longer
    /// threatens anything once the pipeline is empty.
    mutating func answered() {
        precondition(outstanding > 0, "an answer with no call outstanding")
        outstanding -= 1
        if outstanding == 0, state == .cancelling(delivered: true) { state = .open }
    }

    /// The cancel request reached the server. True when the connection takes calls again.
    mutating func cancelDelivered() -> Bool {
        guard case .cancelling = state else { return false }
        if outstanding == 0 {
            state = .open
            return true
        }
        state = .cancelling(delivered: true)
        return false
    }

    /// A call's deadline passed. True when the owner sends a cancel request: only when that
    /// call is the only one on the connection (a cancel hits whatever runs), and not twice.
    mutating func cancelRequested() -> Bool {
        guard state == .open, outstanding == 1 else { return false }
        state = .cancelling(delivered: false)
        return true
    }

    /// The connection closes (the database closed, or it broke). Returns the number of calls
    /// that were outstanding, which the owner fails; nil when it was closed already.
    mutating func close() -> Int? {
        guard state != .closed else { return nil }
        state = .closed
        defer { outstanding = 0 }
        return outstanding
    }
}
