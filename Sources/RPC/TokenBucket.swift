import NIOCore

/// A rate limit per connection: `burst` events at once, refilled at `perSecond`.
struct TokenBucket {
    let burst: Double
    let perSecond: Double
    private var tokens: Double
    private var last: NIODeadline

    init(burst: Int, perSecond: Int) {
        self.burst = Double(burst)
        self.perSecond = Double(perSecond)
        tokens = Double(burst)
        last = .now()
    }

    /// Takes one token; false when the peer is over its rate.
    mutating func take(now: NIODeadline = .now()) -> Bool {
        let elapsed = Double((now - last).nanoseconds) / 1e9
        last = now
        tokens = min(burst, tokens + elapsed * perSecond)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}

/// A budget of bytes per second: spending may overdraw it (the size of what was spent is
/// known only afterwards); while it is overdrawn, nothing more is spent until it refills.
struct ByteBudget {
    let burst: Double
    let perSecond: Double
    private var tokens: Double
    private var last: NIODeadline

    init(burst: Int, perSecond: Int) {
        self.burst = Double(burst)
        self.perSecond = Double(max(1, perSecond))
        tokens = Double(burst)
        last = .now()
    }

    private mutating func refill(_ now: NIODeadline) {
        let elapsed = Double((now - last).nanoseconds) / 1e9
        last = now
        tokens = min(burst, tokens + elapsed * perSecond)
    }

    /// Whether anything may be spent now.
    mutating func canSpend(now: NIODeadline = .now()) -> Bool {
        refill(now)
        return tokens > 0
    }

    mutating func spend(_ bytes: Int) { tokens -= Double(bytes) }

    /// How long until something may be spent again.
    var refillDelay: Duration {
        tokens > 0 ? .zero : .nanoseconds(Int64((-tokens + 1) / perSecond * 1e9))
    }
}
