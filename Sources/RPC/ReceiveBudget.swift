import Synchronization

/// The process-wide budget of request bytes the server holds: what its connections may have
/// in flight towards it (the flow-control window it granted them) and what it buffers (wire
/// bytes of messages not yet complete or not yet released, and what decompression made).
///
/// Each connection reserves window credit from it when it opens (up to the configured
/// connection window; the first connections get it all, later ones only HTTP/2's default
/// 64 KiB once three quarters of the budget are granted) and returns the credit when it closes. A connection returns window to its peer only
/// for bytes it releases, so what one peer can make us hold never exceeds its credit, and all
/// peers together never exceed the budget plus 64 KiB a connection.
final class ReceiveBudget: Sendable {
    let limit: Int
    /// Window credit is at most three quarters of the budget: the rest is for what
    /// decompression makes, so that peers holding all their windows never push the server past
    /// the point where it refuses new calls (health checks among them).
    let creditLimit: Int
    private let granted = Atomic<Int>(0)
    private let held = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
        creditLimit = limit / 4 * 3
    }

    /// Reserves up to `wanted` bytes of window credit; returns what it got (possibly 0).
    func reserveCredit(upTo wanted: Int) -> Int {
        var current = granted.load(ordering: .relaxed)
        while true {
            let take = max(0, min(wanted, creditLimit - current))
            if take == 0 { return 0 }
            let (exchanged, original) = granted.compareExchange(expected: current, desired: current + take, ordering: .relaxed)
            if exchanged { return take }
            current = original
        }
    }

    func returnCredit(_ bytes: Int) {
        if bytes > 0 { granted.subtract(bytes, ordering: .relaxed) }
    }

    /// Bytes buffered now (wire bytes held, decompressed bytes queued).
    var heldBytes: Int { held.load(ordering: .relaxed) }

    func hold(_ bytes: Int) { held.add(bytes, ordering: .relaxed) }
    func release(_ bytes: Int) { if bytes > 0 { held.subtract(bytes, ordering: .relaxed) } }

    /// Whether `bytes` more may be held (decompressed output, which no window bounds).
    func canHold(_ bytes: Int) -> Bool { held.load(ordering: .relaxed) + bytes <= limit }

    /// Past the budget: new calls are refused before their body is read.
    var isExhausted: Bool { held.load(ordering: .relaxed) >= limit }
}
