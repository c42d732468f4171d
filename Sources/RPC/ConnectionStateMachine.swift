/// The life of one HTTP/2 connection, as a value whose events return what the owner
/// (`HTTP2Connection`) must do: the handshake and idle deadlines, graceful shutdown, and when
/// output may be written (nghttp2 must not be re-entered from its own callbacks). Tested with
/// plain values.
///
///     awaitingSettings → active → goingAway → closed
///            └──────────────┴──────────┴────────→ closed     (timeout, error, abuse)
struct ConnectionStateMachine {
    enum State: Equatable {
        /// The client's preface and SETTINGS have not arrived; the handshake deadline runs.
        case awaitingSettings
        /// The idle deadline runs.
        case active
        /// GOAWAY is submitted: no new stream; the connection closes once its streams are done
        /// and its output is written.
        case goingAway
        /// Closing or closed: nothing more is read or written.
        case closed
    }

    /// Where the connection is in handling input, which decides whether output may be written now.
    enum Input: Equatable {
        case idle
        /// Inside nghttp2's receive: writing must wait for the end of the read.
        case receiving
    }

    enum Output: Equatable {
        case idle
        /// A flush is queued for the end of this turn of the event loop.
        case flushQueued
        /// Output is being written; `again` when more was asked for meanwhile.
        case flushing(again: Bool)
    }

    private(set) var state: State = .awaitingSettings
    private(set) var input: Input = .idle
    private(set) var output: Output = .idle

    /// Whether new streams are accepted.
    var acceptsStreams: Bool { state == .awaitingSettings || state == .active }
    var isClosed: Bool { state == .closed }

    // MARK: lifecycle

    /// A SETTINGS frame (not an ACK) arrived. True the first time: the handshake is complete
    /// and the idle deadline replaces the handshake deadline.
    mutating func settingsReceived() -> Bool {
        guard state == .awaitingSettings else { return false }
        state = .active
        return true
    }

    enum TimerAction: Equatable {
        /// The handshake never completed, or the connection is closing anyway.
        case close
        /// Idle for the whole timeout: say goodbye gracefully.
        case goAway
        /// Check again after this long.
        case rearm(Duration)
        case none
    }

    /// The connection's one timer fired: the handshake deadline, or an idle check.
    mutating func timerFired(streamsOpen: Int, idleFor: Duration, idleTimeout: Duration) -> TimerAction {
        switch state {
        case .awaitingSettings:
            return .close
        case .active:
            if streamsOpen == 0, idleFor >= idleTimeout {
                state = .goingAway
                return .goAway
            }
            return .rearm(streamsOpen == 0 ? idleTimeout - idleFor : idleTimeout)
        case .goingAway, .closed:
            return .none
        }
    }

    /// A graceful shutdown (server drain or idle): true when GOAWAY is to be submitted now.
    mutating func goAway() -> Bool {
        guard acceptsStreams else { return false }
        state = .goingAway
        return true
    }

    /// The peer broke a rate limit: the session is terminated with ENHANCE_YOUR_CALM. True
    /// the first time.
    mutating func abusive() -> Bool {
        guard state != .closed else { return false }
        let first = state != .goingAway
        state = .goingAway
        return first
    }

    /// A fatal error or the end: true the first time (the owner closes the channel).
    mutating func close() -> Bool {
        guard state != .closed else { return false }
        state = .closed
        return true
    }

    /// Output was written. True when the connection is finished and should close: nghttp2
    /// wants neither to read nor to write, or GOAWAY went out and no stream is left.
    mutating func outputWritten(wantsRead: Bool, wantsWrite: Bool, streamsOpen: Int) -> Bool {
        guard state != .closed else { return false }
        if !wantsRead && !wantsWrite || state == .goingAway && streamsOpen == 0 && !wantsWrite {
            state = .closed
            return true
        }
        return false
    }

    // MARK: input and output

    mutating func receiveStarted() {
        precondition(input == .idle, "nghttp2 re-entered while receiving")
        input = .receiving
    }

    mutating func receiveEnded() {
        input = .idle
    }

    enum FlushRequest: Equatable {
        /// Queue a flush at the end of this turn of the loop.
        case queueFlush
        /// A flush is already due (queued, running, or at the end of the read).
        case none
    }

    /// Something was submitted outside a read (a handler answered): output should leave at
    /// the end of this turn, together with whatever else is answered in it.
    mutating func outputPending() -> FlushRequest {
        guard state != .closed, input == .idle else { return .none }
        switch output {
        case .idle:
            output = .flushQueued
            return .queueFlush
        case .flushQueued:
            return .none
        case .flushing:
            output = .flushing(again: true)
            return .none
        }
    }

    /// The queued flush runs; false when another flush took its work already.
    mutating func queuedFlushRan() -> Bool {
        guard output == .flushQueued else { return false }
        output = .idle
        return true
    }

    /// A flush is asked for. True when the owner writes now; false while receiving (the read's
    /// end flushes) or while a flush runs (it goes round again).
    mutating func flushStarted() -> Bool {
        guard state != .closed, input == .idle else { return false }
        switch output {
        case .flushing:
            output = .flushing(again: true)
            return false
        case .idle, .flushQueued:
            output = .flushing(again: false)
            return true
        }
    }

    /// One pass of writing ended. True when it must run once more: more output was asked for
    /// meanwhile (for instance the channel became writable from inside the write) and
    /// `canContinue` (the channel is writable). Otherwise output is idle again.
    mutating func flushPassEnded(canContinue: Bool) -> Bool {
        guard case .flushing(let again) = output else { return false }
        if again, canContinue, state != .closed {
            output = .flushing(again: false)
            return true
        }
        output = .idle
        return false
    }
}
