import Synchronization

/// What the database did for the metrics (`esaylov_db_*`): calls that had to wait for a
/// connection, calls refused because too many waited, and failures by kind. Counted since
/// the start; cheap enough for every call (relaxed atomics).
public final class DatabaseStatistics: Sendable {
    private let waits = Atomic<Int>(0)
    /// By `failureKinds` index (failures are rare: a lock is cheap enough).
    private let failures = Mutex([Int](repeating: 0, count: DatabaseStatistics.failureKinds.count))
    /// The failure kinds counted, as the `kind` label: unavailable, timeout, conflict,
    /// pool_exhausted (constraint violations are the caller's input, not the database's health).
    public static let failureKinds = ["unavailable", "timeout", "conflict", "pool_exhausted", "other"]

    init() {}

    func waited() { waits.add(1, ordering: .relaxed) }

    func failed(_ kind: StoreError.Kind) {
        let label: String
        switch kind {
        case .unavailable: label = "unavailable"
        case .timeout: label = "timeout"
        case .conflict: label = "conflict"
        case .poolExhausted: label = "pool_exhausted"
        case .other, .decoding: label = "other"
        case .uniqueViolation, .foreignKeyViolation, .checkViolation: return
        }
        let i = Self.failureKinds.firstIndex(of: label)!
        failures.withLock { $0[i] += 1 }
    }

    /// Calls that found no free connection and waited for one.
    public var waitsTotal: Int { waits.load(ordering: .relaxed) }

    /// Failures so far, by `failureKinds` label.
    public var failuresByKind: [String: Int] {
        Dictionary(uniqueKeysWithValues: zip(Self.failureKinds, failures.withLock { $0 }))
    }
}
