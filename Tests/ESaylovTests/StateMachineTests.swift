@testable import RPC
import Testing

/// The transport's state machines, driven with plain values: no socket, no nghttp2.
@Suite("Stream state machine")
struct StreamStateMachineTests {
    let limit = 1000
    let ok = [HeaderField(name: "grpc-status", value: "0")]

    func opened() -> StreamStateMachine {
        var m = StreamStateMachine()
        do { let v = m.headerField(size: 100, limit: limit); #expect(v == .store) }
        do { let v = m.headersReceived(limit: limit); #expect(v) }
        return m
    }

    @Test func unaryCallFromHeadersToClose() {
        var m = opened()
        #expect(m.state == .active(request: .open, response: .idle))
        do { let v = m.dataReceived(12); #expect(v == .deliver(returnWindow: true)) }
        do { let v = m.requestEnded(); #expect(v) }
        do { let v = m.requestEnded(); #expect(!v) }  // END_STREAM is seen once
        do { let v = m.messageQueued(); #expect(v == .submitHeaders) }
        do { let v = m.messageQueued(); #expect(v == .resumeData) }
        #expect(!m.isFinished)
        do { let v = m.finish(trailers: ok); #expect(v == .resumeData) }
        #expect(m.isFinished)
        // The trailers wait for the queued body, then go with its last bytes.
        do { let v = m.bodyRequested(queueEmptyAfter: false); #expect(v == .send) }
        do { let v = m.bodyRequested(queueEmptyAfter: true); #expect(v == .sendLast(trailers: ok)) }
        #expect(m.state == .active(request: .ended, response: .done))
        do { let v = m.bodyRequested(queueEmptyAfter: true); #expect(v == .none) }
        do { let v = m.closed(); #expect(v == .none) }
        #expect(m.isClosed)
    }

    @Test func anErrorBeforeAnyMessageIsTrailersOnlyAndFinal() {
        var m = opened()
        do { let v = m.finish(trailers: ok); #expect(v == .submitTrailersOnly(ok)) }
        do { let v = m.messageQueued(); #expect(v == .refuse) }
        do { let v = m.finish(trailers: [.init(name: "grpc-status", value: "13")]); #expect(v == .none) }  // the first status wins
        do { let v = m.dataReceived(5); #expect(v == .discard) }  // the call reads no more; the window goes back
        do { let v = m.requestEnded(); #expect(!v) }
        do { let v = m.answerHTTP(); #expect(!v) }
    }

    @Test func aHandlerThatLagsHoldsTheWindowUntilItDrains() {
        var m = opened()
        m.pauseInput()
        do { let v = m.dataReceived(100); #expect(v == .deliver(returnWindow: false)) }
        do { let v = m.dataReceived(50); #expect(v == .deliver(returnWindow: false)) }
        #expect(m.state == .active(request: .held(150), response: .idle))
        do { let v = m.resumeInput(); #expect(v == 150) }
        do { let v = m.resumeInput(); #expect(v == 0) }
        do { let v = m.dataReceived(10); #expect(v == .deliver(returnWindow: true)) }
    }

    @Test func oversizedHeadersAreSkippedThenRefused() {
        var m = StreamStateMachine()
        do { let v = m.headerField(size: 600, limit: limit); #expect(v == .store) }
        do { let v = m.headerField(size: 600, limit: limit); #expect(v == .skip) }
        do { let v = m.headersReceived(limit: limit); #expect(!v) }
        var flood = StreamStateMachine()
        do { let v = flood.headerField(size: 4001, limit: limit); #expect(v == .failConnection) }
    }

    @Test func aResetWhileTheCallRunsCancelsIt() {
        var m = opened()
        do { let v = m.messageQueued(); #expect(v == .submitHeaders) }
        do { let v = m.closed(); #expect(v == .cancelCall) }
        do { let v = m.messageQueued(); #expect(v == .refuse) }
        do { let v = m.finish(trailers: ok); #expect(v == .none) }
        do { let v = m.dataReceived(1); #expect(v == .discard) }
        do { let v = m.bodyRequested(queueEmptyAfter: true); #expect(v == .none) }
    }

    @Test func plainHTTPAnswersOnlyAnIdleStream() {
        var m = opened()
        do { let v = m.answerHTTP(); #expect(v) }
        do { let v = m.answerHTTP(); #expect(!v) }
        #expect(m.isFinished)
        do { let v = m.messageQueued(); #expect(v == .refuse) }
    }
}

@Suite("Connection state machine")
struct ConnectionStateMachineTests {
    let idle = Duration.seconds(300)

    @Test func theHandshakeHasADeadline() {
        var m = ConnectionStateMachine()
        #expect(m.acceptsStreams)
        do { let v = m.timerFired(streamsOpen: 0, idleFor: .seconds(10), idleTimeout: idle); #expect(v == .close) }
        var n = ConnectionStateMachine()
        do { let v = n.settingsReceived(); #expect(v) }
        do { let v = n.settingsReceived(); #expect(!v) }  // only the first SETTINGS ends the handshake
        #expect(n.state == .active)
    }

    @Test func anIdleConnectionIsSentGoAway() {
        var m = ConnectionStateMachine()
        _ = m.settingsReceived()
        do { let v = m.timerFired(streamsOpen: 2, idleFor: .seconds(400), idleTimeout: idle); #expect(v == .rearm(idle)) }
        do { let v = m.timerFired(streamsOpen: 0, idleFor: .seconds(100), idleTimeout: idle); #expect(v == .rearm(.seconds(200))) }
        do { let v = m.timerFired(streamsOpen: 0, idleFor: .seconds(300), idleTimeout: idle); #expect(v == .goAway) }
        #expect(!m.acceptsStreams)
        do { let v = m.timerFired(streamsOpen: 0, idleFor: .seconds(600), idleTimeout: idle); #expect(v == .none) }
        do { let v = m.goAway(); #expect(!v) }  // already going away
    }

    @Test func goingAwayClosesOnceStreamsAndOutputAreDone() {
        var m = ConnectionStateMachine()
        _ = m.settingsReceived()
        do { let v = m.outputWritten(wantsRead: true, wantsWrite: false, streamsOpen: 0); #expect(!v) }
        do { let v = m.goAway(); #expect(v) }
        do { let v = m.outputWritten(wantsRead: true, wantsWrite: false, streamsOpen: 1); #expect(!v) }
        do { let v = m.outputWritten(wantsRead: true, wantsWrite: true, streamsOpen: 0); #expect(!v) }
        do { let v = m.outputWritten(wantsRead: true, wantsWrite: false, streamsOpen: 0); #expect(v) }
        #expect(m.isClosed)
        do { let v = m.close(); #expect(!v) }
    }

    @Test func aSessionThatWantsNothingCloses() {
        var m = ConnectionStateMachine()
        do { let v = m.outputWritten(wantsRead: false, wantsWrite: false, streamsOpen: 3); #expect(v) }
        do { let v = m.outputWritten(wantsRead: false, wantsWrite: false, streamsOpen: 3); #expect(!v) }
    }

    @Test func abuseTerminatesOnce() {
        var m = ConnectionStateMachine()
        do { let v = m.abusive(); #expect(v) }
        do { let v = m.abusive(); #expect(!v) }
        #expect(!m.acceptsStreams)
        do { let v = m.close(); #expect(v) }
        do { let v = m.abusive(); #expect(!v) }
    }

    @Test func outputWaitsForTheEndOfAReadAndForARunningFlush() {
        var m = ConnectionStateMachine()
        m.receiveStarted()
        do { let v = m.outputPending(); #expect(v == .none) }  // the read's end flushes
        do { let v = m.flushStarted(); #expect(!v) }
        m.receiveEnded()
        do { let v = m.flushStarted(); #expect(v) }
        // Asked again from inside the write (writability changed, a handler answered).
        do { let v = m.flushStarted(); #expect(!v) }
        do { let v = m.outputPending(); #expect(v == .none) }
        do { let v = m.flushPassEnded(canContinue: true); #expect(v) }
        do { let v = m.flushPassEnded(canContinue: true); #expect(!v) }
        #expect(m.output == .idle)
        // Outside a read, answers of one turn share one queued flush.
        do { let v = m.outputPending(); #expect(v == .queueFlush) }
        do { let v = m.outputPending(); #expect(v == .none) }
        do { let v = m.queuedFlushRan(); #expect(v) }
        do { let v = m.queuedFlushRan(); #expect(!v) }
    }

    @Test func aFlushThatCannotContinueGoesIdle() {
        var m = ConnectionStateMachine()
        do { let v = m.flushStarted(); #expect(v) }
        do { let v = m.flushStarted(); #expect(!v) }
        do { let v = m.flushPassEnded(canContinue: false); #expect(!v) }
        #expect(m.output == .idle)
        _ = m.close()
        do { let v = m.flushStarted(); #expect(!v) }
        do { let v = m.outputPending(); #expect(v == .none) }
    }
}
