/// The life of one HTTP/2 stream carrying a gRPC call, as the server sees it: a value whose
/// events return what the owner (`ServerStream`) must do. It knows nothing of nghttp2, NIO or
/// handlers, so it is tested with plain values.
///
/// The request side and the response side move independently once the headers are in:
///
///     request:  open ⇄ held(bytes)  → ended          (END_STREAM)
///     response: idle → streaming → finishing(trailers) → done
///               idle → done                                    (trailers-only or plain HTTP)
///     any       → closed                                       (nghttp2 closed the stream)
struct StreamStateMachine {
    enum State: Equatable {
        /// Request headers are arriving: their size so far, counted as RFC 9113 §6.5.2 does.
        case receivingHeaders(size: Int)
        case active(request: Request, response: Response)
        /// nghttp2 closed the stream (answered, reset by the client, or the connection went).
        case closed
    }

    enum Request: Equatable {
        /// Window goes back to the client as bytes arrive.
        case open
        /// The handler's queue is full: these bytes have not been returned to the window.
        case held(Int)
        /// The client half-closed.
        case ended
    }

    enum Response: Equatable {
        /// Nothing submitted yet.
        case idle
        /// HEADERS submitted with a body that messages are appended to.
        case streaming
        /// The status is decided; its trailers leave once the queued body has.
        case finishing(trailers: [HeaderField])
        /// The last frame is submitted: no more may follow.
        case done
    }

    private(set) var state: State = .receivingHeaders(size: 0)

    /// Whether the call's final status is decided (or the stream is gone): later messages and
    /// statuses are refused.
    var isFinished: Bool {
        switch state {
        case .receivingHeaders: false
        case .active(_, .idle), .active(_, .streaming): false
        case .active(_, .finishing), .active(_, .done), .closed: true
        }
    }

    var isClosed: Bool { state == .closed }

    /// Whether the client half-closed.
    var requestIsEnded: Bool {
        if case .active(.ended, _) = state { return true }
        return false
    }

    // MARK: request side

    enum HeaderAction: Equatable {
        /// Keep the field.
        case store
        /// Over the limit: read on (HPACK state must stay in sync) but keep nothing; the call
        /// is refused once the headers are in.
        case skip
        /// Far past the limit we advertised: the peer ignores our SETTINGS; end the connection.
        case failConnection
    }

    /// One request header field of `size` bytes (name + value + 32, RFC 9113 §6.5.2).
    mutating func headerField(size: Int, limit: Int) -> HeaderAction {
        guard case .receivingHeaders(let total) = state else { return .skip }
        let now = total + size
        state = .receivingHeaders(size: now)
        if now > 4 * limit { return .failConnection }
        return now > limit ? .skip : .store
    }

    /// The request headers are complete; returns whether they were within `limit`.
    mutating func headersReceived(limit: Int) -> Bool {
        guard case .receivingHeaders(let size) = state else { return true }
        state = .active(request: .open, response: .idle)
        return size <= limit
    }

    enum DataAction: Equatable {
        /// Hand the bytes to the call and return their window now.
        case deliver(returnWindow: Bool)
        /// The call no longer reads: drop the bytes, return their window.
        case discard
    }

    /// DATA arrived for the call.
    mutating func dataReceived(_ count: Int) -> DataAction {
        switch state {
        case .active(.open, let response) where !Self.finished(response):
            return .deliver(returnWindow: true)
        case .active(.held(let held), let response) where !Self.finished(response):
            state = .active(request: .held(held + count), response: response)
            return .deliver(returnWindow: false)
        default:
            return .discard
        }
    }

    /// The handler's queue is full: stop returning window.
    mutating func pauseInput() {
        if case .active(.open, let response) = state { state = .active(request: .held(0), response: response) }
    }

    /// The handler drained its queue: returns the window held back (0: none).
    mutating func resumeInput() -> Int {
        guard case .active(.held(let held), let response) = state else { return 0 }
        state = .active(request: .open, response: response)
        return held
    }

    /// The client half-closed. True the first time, while the call still reads.
    mutating func requestEnded() -> Bool {
        guard case .active(let request, let response) = state, request != .ended else { return false }
        state = .active(request: .ended, response: response)
        return !Self.finished(response)
    }

    // MARK: response side

    enum SendAction: Equatable {
        /// Submit the response HEADERS with a body.
        case submitHeaders
        /// Tell nghttp2 the body has more.
        case resumeData
        /// The call has ended: the message is refused.
        case refuse
    }

    /// A response message was queued.
    mutating func messageQueued() -> SendAction {
        switch state {
        case .active(let request, .idle):
            state = .active(request: request, response: .streaming)
            return .submitHeaders
        case .active(_, .streaming):
            return .resumeData
        default:
            return .refuse
        }
    }

    enum FinishAction: Equatable {
        /// Nothing was sent: one HEADERS frame carries the status (gRPC's trailers-only form).
        case submitTrailersOnly([HeaderField])
        /// The trailers wait behind the queued body: tell nghttp2 the body has more.
        case resumeData
        /// The status was decided already, or the stream is gone.
        case none
    }

    /// The call's status is decided.
    mutating func finish(trailers: [HeaderField]) -> FinishAction {
        switch state {
        case .receivingHeaders:
            state = .active(request: .open, response: .done)
            return .submitTrailersOnly(trailers)
        case .active(let request, .idle):
            state = .active(request: request, response: .done)
            return .submitTrailersOnly(trailers)
        case .active(let request, .streaming):
            state = .active(request: request, response: .finishing(trailers: trailers))
            return .resumeData
        case .active(_, .finishing), .active(_, .done), .closed:
            return .none
        }
    }

    /// A request that is not gRPC is answered with a plain HTTP status and a short body,
    /// which ends the stream when it is sent. False when a response was already started.
    mutating func answerHTTP() -> Bool {
        guard case .active(let request, .idle) = state else { return false }
        state = .active(request: request, response: .finishing(trailers: []))
        return true
    }

    enum BodyAction: Equatable {
        /// Give nghttp2 what is queued; more may follow.
        case send
        /// What is queued is the end: send it, then these trailers.
        case sendLast(trailers: [HeaderField])
        /// Nothing left to send, or the stream is gone.
        case none
    }

    /// nghttp2 asks for body bytes; `queueEmptyAfter` tells whether the queue empties with
    /// what it gets now.
    mutating func bodyRequested(queueEmptyAfter: Bool) -> BodyAction {
        switch state {
        case .active(let request, .finishing(let trailers)) where queueEmptyAfter:
            state = .active(request: request, response: .done)
            return .sendLast(trailers: trailers)
        case .active(_, .streaming), .active(_, .finishing):
            return .send
        default:
            return .none
        }
    }

    // MARK: end

    enum CloseAction: Equatable {
        /// The call was still running: cancel it (the client reset the stream or left).
        case cancelCall
        /// The call had ended.
        case none
    }

    /// nghttp2 closed the stream.
    mutating func closed() -> CloseAction {
        let wasRunning = !isFinished
        state = .closed
        return wasRunning ? .cancelCall : .none
    }

    private static func finished(_ response: Response) -> Bool {
        switch response {
        case .idle, .streaming: false
        case .finishing, .done: true
        }
    }
}
