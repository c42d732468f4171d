public import ProtoRuntime
import NIOCore
import Synchronization

/// The request messages of a client- or bidirectional-streaming call, in order. Ends when
/// the client half-closes; throws `RPCError` when the call is cancelled or the input is bad.
public struct RequestStream<Message: ProtoMessage>: AsyncSequence, Sendable {
    public typealias Element = Message
    let raw: RawRequestStream

    /// Whether the message most recently returned by the iterator arrived compressed.
    public var lastMessageWasCompressed: Bool { raw.lastMessageWasCompressed }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let raw: RawRequestStream
        public mutating func next() async throws -> Message? {
            guard let bytes = try await raw.next() else { return nil }
            return try decodeRequest(Message.self, bytes)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(raw: raw) }
}

/// Messages handed from the event loop to a handler task. Bounded: when the handler lags by
/// more than `limit` bytes, the transport stops returning flow-control window to the client
/// (`onDrained` reopens it), so a fast sender cannot make us buffer without end.
final class RawRequestStream: Sendable {
    private struct State {
        var queue = CircularBuffer<([UInt8], Bool)>()
        var queuedBytes = 0
        var end: Result<Void, RPCError>?
        var waiter: CheckedContinuation<[UInt8]?, any Error>?
        var producerPaused = false
        var lastCompressed = false
    }
    private let state = Mutex(State())
    let limit: Int
    /// Queued messages count against the server's receive budget until the handler takes them.
    private let budget: ReceiveBudget
    private let onDrained: @Sendable () -> Void

    init(limit: Int, budget: ReceiveBudget, onDrained: @escaping @Sendable () -> Void) {
        self.limit = limit
        self.budget = budget
        self.onDrained = onDrained
    }

    /// False while the queue is full: the transport takes no more messages out of the
    /// deframer (nor decompresses them) until the handler drains it.
    var wantsMore: Bool { state.withLock { !$0.producerPaused && $0.end == nil } }

    var lastMessageWasCompressed: Bool { state.withLock { $0.lastCompressed } }

    /// Event-loop side: a new message. Returns false when the producer should pause.
    func yield(_ message: [UInt8], compressed: Bool) -> Bool {
        let (waiter, keepGoing) = state.withLock { s -> (CheckedContinuation<[UInt8]?, any Error>?, Bool) in
            if s.end != nil { return (nil, true) }
            if let w = s.waiter {
                s.waiter = nil
                s.lastCompressed = compressed
                return (w, true)
            }
            s.queue.append((message, compressed))
            s.queuedBytes += message.count
            budget.hold(message.count)
            if s.queuedBytes >= limit { s.producerPaused = true }
            return (nil, !s.producerPaused)
        }
        waiter?.resume(returning: message)
        return keepGoing
    }

    /// Event-loop side: the client half-closed (`nil`) or the call failed.
    func finish(_ error: RPCError?) {
        let waiter = state.withLock { s -> CheckedContinuation<[UInt8]?, any Error>? in
            if s.end != nil { return nil }
            if let error {
                s.end = .failure(error)
                s.queue.removeAll()
                budget.release(s.queuedBytes)
                s.queuedBytes = 0
            } else {
                s.end = .success(())
            }
            defer { s.waiter = nil }
            return s.waiter
        }
        switch (waiter, error) {
        case (let w?, let e?): w.resume(throwing: e)
        case (let w?, nil): w.resume(returning: nil)
        default: break
        }
    }

    func next() async throws -> [UInt8]? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[UInt8]?, any Error>) in
                enum Outcome { case message([UInt8], drained: Bool), end(Result<Void, RPCError>), wait }
                let outcome = state.withLock { s -> Outcome in
                    if let (m, compressed) = s.queue.popFirst() {
                        s.lastCompressed = compressed
                        s.queuedBytes -= m.count
                        budget.release(m.count)
                        var drained = false
                        if s.producerPaused, s.queuedBytes < limit / 2 {
                            s.producerPaused = false
                            drained = true
                        }
                        return .message(m, drained: drained)
                    }
                    if let end = s.end { return .end(end) }
                    if Task.isCancelled { return .end(.failure(RPCError(code: .cancelled, message: "call cancelled"))) }
                    s.waiter = continuation
                    return .wait
                }
                switch outcome {
                case .message(let m, let drained):
                    if drained { onDrained() }
                    continuation.resume(returning: m)
                case .end(.success): continuation.resume(returning: nil)
                case .end(.failure(let e)): continuation.resume(throwing: e)
                case .wait: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<[UInt8]?, any Error>? in
                defer { s.waiter = nil }
                return s.waiter
            }
            waiter?.resume(throwing: RPCError(code: .cancelled, message: "call cancelled"))
        }
    }
}
