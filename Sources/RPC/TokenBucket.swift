import NIOCore

/// A rate limit per connection: `burst` events at once, refilled at `perSecond`.
struct TokenBucket {
    private var budget: ByteBudget

    init(burst: Int, perSecond: Int) {
        budget = ByteBudget(burst: burst, perSecond: perSecond)
    }

    /// Takes one token; false when the peer is over its rate.
    mutating func take(now: NIODeadline = .now()) -> Bool {
        guard budget.available(now: now) >= 1 else { return false }
        budget.spend(1)
        return true
    }
}

extension TimeAmount {
    /// `duration`, saturating far beyond any timer we set.
    init(_ duration: Duration) {
        self = .nanoseconds(Int64(min(max(duration / .nanoseconds(1), 0), Double(Int64.max / 2))))
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
        available(now: now) > 0
    }

    /// What may be spent now (negative while overdrawn).
    mutating func available(now: NIODeadline = .now()) -> Double {
        refill(now)
        return tokens
    }

    mutating func spend(_ bytes: Int) { tokens -= Double(bytes) }

    /// How long until something may be spent again.
    var refillDelay: Duration {
        tokens > 0 ? .zero : .nanoseconds(Int64((-tokens + 1) / perSecond * 1e9))
    }
}
