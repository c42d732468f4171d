/// A connection's open streams by id: open addressing with linear probing, indexed by the id
/// itself. A client's stream ids are odd and rise one by one (RFC 9113 §5.1.1), so `id >> 1`
/// spreads the streams open at once over consecutive slots, without hashing: each call's
/// insertion, lookups and removal cost a few comparisons (a `Dictionary` hashes the id with
/// SipHash at each). At most half full; removal shifts the following entries back, so a
/// lookup stops at the first empty slot.
struct StreamTable<Value> {
    /// 0 marks an empty slot: stream 0 is the connection's, never a stream's id. Empty (no
    /// allocation) until the first stream: an idle connection holds no table.
    private var keys: [Int32] = []
    private var values: [Value?] = []
    private(set) var count = 0
    private var mask = 0

    init() {}

    var isEmpty: Bool { count == 0 }

    @inline(__always)
    private func home(_ id: Int32) -> Int { Int(UInt32(bitPattern: id) >> 1) & mask }

    /// The slot holding `id`, or nil.
    private func slot(of id: Int32) -> Int? {
        if keys.isEmpty { return nil }
        var i = home(id)
        while true {
            let k = keys[i]
            if k == id { return i }
            if k == 0 { return nil }
            i = (i + 1) & mask
        }
    }

    subscript(id: Int32) -> Value? {
        get { slot(of: id).flatMap { values[$0] } }
        set {
            if let newValue { insert(newValue, for: id) } else { _ = removeValue(forKey: id) }
        }
    }

    private mutating func insert(_ value: Value, for id: Int32) {
        precondition(id > 0, "stream ids are positive")
        if let i = slot(of: id) {
            values[i] = value
            return
        }
        if (count + 1) * 2 > keys.count { grow() }
        var i = home(id)
        while keys[i] != 0 { i = (i + 1) & mask }
        keys[i] = id
        values[i] = value
        count += 1
    }

    @discardableResult
    mutating func removeValue(forKey id: Int32) -> Value? {
        guard var hole = slot(of: id) else { return nil }
        let removed = values[hole]
        count -= 1
        // Backward-shift deletion: an entry after the hole moves into it unless its home lies
        // cyclically after the hole (it would then no longer be found from its home).
        var i = hole
        while true {
            i = (i + 1) & mask
            let k = keys[i]
            if k == 0 { break }
            let h = home(k)
            let mayMove = hole <= i ? (h <= hole || h > i) : (h <= hole && h > i)
            if mayMove {
                keys[hole] = k
                values[hole] = values[i]
                hole = i
            }
        }
        keys[hole] = 0
        values[hole] = nil
        return removed
    }

    private mutating func grow() {
        let oldKeys = keys
        let oldValues = values
        let size = max(16, oldKeys.count * 2)
        keys = Array(repeating: 0, count: size)
        values = Array(repeating: nil, count: size)
        mask = keys.count - 1
        for (k, v) in zip(oldKeys, oldValues) where k != 0 {
            var i = home(k)
            while keys[i] != 0 { i = (i + 1) & mask }
            keys[i] = k
            values[i] = v
        }
    }

    /// Every entry, in no particular order.
    var all: [(id: Int32, value: Value)] {
        var out: [(id: Int32, value: Value)] = []
        out.reserveCapacity(count)
        for i in keys.indices where keys[i] != 0 { out.append((keys[i], values[i]!)) }
        return out
    }

    /// Empties the table; returns what it held.
    mutating func removeAll() -> [(id: Int32, value: Value)] {
        let held = all
        self = StreamTable()
        return held
    }
}
