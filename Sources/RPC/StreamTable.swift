/// A connection's open streams by id: open addressing with Robin Hood linear probing, indexed
/// by the id itself. A client's stream ids are odd and rise one by one (RFC 9113 §5.1.1), so
/// `id >> 1` puts the streams open at once in consecutive slots, each at its home, without
/// hashing: a call's insertion, lookups and removal cost a comparison or two (a `Dictionary`
/// hashes the id with SipHash at each). At most half full. Robin Hood insertion keeps the
/// entries of a run in the order of their homes, so a lookup stops at the first entry nearer
/// its home than the id would be, and a removal shifts back only the displaced entries after
/// it (with plain linear probing it would scan the whole run: every open stream).
struct StreamTable<Value> {
    /// Key 0 marks an empty slot: stream 0 is the connection's, never a stream's id.
    private struct Slot {
        var key: Int32
        var value: Value?
    }
    /// Keys and values side by side in one array: a lookup from the connection copies the
    /// table out of it, which costs a retain and a release per array. Empty (no allocation)
    /// until the first stream: an idle connection holds no table.
    private var slots: [Slot] = []
    private(set) var count = 0
    private var mask = 0

    init() {}

    var isEmpty: Bool { count == 0 }

    @inline(__always)
    private func home(_ id: Int32) -> Int { Int(UInt32(bitPattern: id) >> 1) & mask }

    /// How far the entry `id` at slot `i` is from its home.
    @inline(__always)
    private func displacement(_ id: Int32, at i: Int) -> Int { (i - home(id)) & mask }

    /// The slot holding `id`, or nil.
    private func slot(of id: Int32) -> Int? {
        if slots.isEmpty { return nil }
        var i = home(id)
        var d = 0
        while true {
            let k = slots[i].key
            if k == id { return i }
            if k == 0 || displacement(k, at: i) < d { return nil }
            i = (i + 1) & mask
            d += 1
        }
    }

    subscript(id: Int32) -> Value? {
        get { slot(of: id).flatMap { slots[$0].value } }
        set {
            if let newValue { insert(newValue, for: id) } else { _ = removeValue(forKey: id) }
        }
    }

    private mutating func insert(_ value: Value, for id: Int32) {
        precondition(id > 0, "stream ids are positive")
        if let i = slot(of: id) {
            slots[i].value = value
            return
        }
        if (count + 1) * 2 > slots.count { grow() }
        place(id, value)
        count += 1
    }

    /// Puts an entry that is not in the table into it: past the entries nearer their homes,
    /// taking the slot of the first one farther from its home than this one would be (which
    /// then goes on to find a slot of its own).
    private mutating func place(_ id: Int32, _ value: Value?) {
        var k = id
        var v = value
        var i = home(id)
        var d = 0
        while true {
            let resident = slots[i].key
            if resident == 0 {
                slots[i] = Slot(key: k, value: v)
                return
            }
            let rd = displacement(resident, at: i)
            if rd < d {
                swap(&slots[i].key, &k)
                swap(&slots[i].value, &v)
                d = rd
            }
            i = (i + 1) & mask
            d += 1
        }
    }

    @discardableResult
    mutating func removeValue(forKey id: Int32) -> Value? {
        guard var hole = slot(of: id) else { return nil }
        let removed = slots[hole].value
        count -= 1
        // Backward shift: the displaced entries after the hole move one slot nearer their
        // homes, up to an empty slot or an entry at its home.
        while true {
            let next = (hole + 1) & mask
            let k = slots[next].key
            if k == 0 || displacement(k, at: next) == 0 { break }
            slots[hole] = slots[next]
            hole = next
        }
        slots[hole] = Slot(key: 0, value: nil)
        return removed
    }

    private mutating func grow() {
        let old = slots
        let size = max(16, old.count * 2)
        slots = Array(repeating: Slot(key: 0, value: nil), count: size)
        mask = size - 1
        for slot in old where slot.key != 0 { place(slot.key, slot.value) }
    }

    /// Every entry, in no particular order.
    var all: [(id: Int32, value: Value)] {
        var out: [(id: Int32, value: Value)] = []
        out.reserveCapacity(count)
        for slot in slots where slot.key != 0 { out.append((slot.key, slot.value!)) }
        return out
    }

    /// Empties the table; returns what it held.
    mutating func removeAll() -> [(id: Int32, value: Value)] {
        let held = all
        self = StreamTable()
        return held
    }
}
