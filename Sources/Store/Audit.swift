import Foundation
import Signatures

/// One event of the audit log, as stored.
public struct AuditEventRecord: Sendable, Hashable {
    public var sequence: Int
    /// Microseconds since 1970.
    public var atMicros: Int
    public var actorOrganisationId: String
    public var actorPersonId: String
    /// The `AuditAction` value name, e.g. "AUDIT_ACTION_LOGIN".
    public var action: String
    public var subjectKind: String
    public var subjectId: String
    /// Sorted by key (byte order).
    public var facts: [(key: String, value: String)]
    public var previousHash: String
    public var hash: String

    public static func == (a: Self, b: Self) -> Bool {
        a.sequence == b.sequence && a.hash == b.hash && a.previousHash == b.previousHash
    }

    public func hash(into h: inout Hasher) {
        h.combine(sequence)
        h.combine(hash)
    }

    /// The canonical encoding's SHA-256, lower-case hex: the one documented on
    /// `AuditEvent.hash` (audit.proto) and computed by `esaylov_audit_hash` in the database.
    public var expectedHash: String {
        var out: [UInt8] = []
        func field(_ s: String) {
            let u = Array(s.utf8)
            out += Array(String(u.count).utf8)
            out.append(UInt8(ascii: ":"))
            out += u
            out.append(UInt8(ascii: ","))
        }
        field("esaylov.audit.v1")
        field(previousHash)
        field(String(sequence))
        field(String(atMicros))
        field(actorOrganisationId)
        field(actorPersonId)
        field(action)
        field(subjectKind)
        field(subjectId)
        field(String(facts.count))
        for (k, v) in facts.sorted(by: { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }) {
            field(k)
            field(v)
        }
        return Crypto.hex(Crypto.sha256(out))
    }
}

/// Who did something, as the audit log records it: ids only.
public struct AuditActor: Sendable, Hashable {
    public var organisationId: String
    public var personId: String

    public init(organisationId: String = "", personId: String = "") {
        self.organisationId = organisationId
        self.personId = personId
    }

    /// An operator tool acting without a session (`esaylovctl`).
    public static let operatorTool = AuditActor()
}

/// The audit log's writes and reads. Every append runs in the caller's transaction, so that an
/// event exists exactly when the change it records does.
public struct AuditLog: Sendable {
    public init() {}

    public static let genesisHash = String(repeating: "0", count: 64)

    /// Appends one event, in the caller's transaction, to the pending events (which take no lock
    /// in common with other writers); returns its pending id. A chainer (`chainPending`) puts it
    /// in the hash chain a moment after the transaction commits.
    @discardableResult
    public func append(
        _ c: Connection, actor: AuditActor, action: String, subjectKind: String, subjectId: String, facts: [String: String] = [:]
    ) throws(StoreError) -> Int {
        let json = Self.json(facts)
        return try c.query(
            """
            SELECT esaylov_audit_append(\(actor.organisationId), \(actor.personId), \(action), \(subjectKind), \(subjectId), \(json)::jsonb) AS seq
            """
        ).int(0, "seq")
    }

    /// Moves up to `batch` committed pending events into the chain (one chainer at a time; 0 when
    /// another holds the chain or nothing is pending). Returns how many.
    public func chainPending(_ c: Connection, batch: Int = 1000) throws(StoreError) -> Int {
        try c.query("SELECT esaylov_audit_chain(\(Int32(batch))) AS n").int(0, "n")
    }

    /// Chains every committed pending event, a batch per transaction (on the database's own
    /// threads); returns how many. Returns early when another chainer holds the chain.
    @discardableResult
    public func flush(_ database: Database, batch: Int = 1000) async throws(StoreError) -> Int {
        var total = 0
        while true {
            let n = try await database.transaction(timeout: .seconds(60)) { (c) throws(StoreError) in try self.chainPending(c, batch: batch) }
            total += n
            if n < batch { return total }
        }
    }

    /// Events written but not chained yet.
    public func pendingCount() -> Query<Int> {
        Query("SELECT count(*) AS n FROM audit_pending") { (rows) throws(StoreError) in try rows.int(0, "n") }
    }

    static func json(_ facts: [String: String]) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: facts, options: [.sortedKeys]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    public struct Filter: Sendable {
        public var subjectId: String?
        public var actorPersonId: String?
        public var actions: [String] = []
        /// Microseconds since 1970.
        public var afterMicros: Int?
        public var beforeMicros: Int?
        /// When set, only events whose actor organisation or subject is one of these.
        public var visibleTo: [String]?
        public init() {}
    }

    static let columns: SQL = """
        sequence, (extract(epoch FROM at) * 1000000)::bigint AS at_us, actor_organisation_id, actor_person_id, action,
        subject_kind, subject_id, facts::text AS facts, previous_hash, hash
        """

    /// Events after `sequence` in order, at most `limit`.
    public func events(after sequence: Int, filter: Filter = Filter(), limit: Int) -> Query<[AuditEventRecord]> {
        Query(
            """
            SELECT \(Self.columns) FROM audit_events
            WHERE sequence > \(sequence)
              AND (\(filter.subjectId) IS NULL OR subject_id = \(filter.subjectId))
              AND (\(filter.actorPersonId) IS NULL OR actor_person_id = \(filter.actorPersonId))
              AND (cardinality(\(filter.actions)) = 0 OR action = ANY(\(filter.actions)))
              AND (\(filter.afterMicros) IS NULL OR at >= to_timestamp(\(filter.afterMicros) / 1000000.0))
              AND (\(filter.beforeMicros) IS NULL OR at < to_timestamp(\(filter.beforeMicros) / 1000000.0))
              AND (\(filter.visibleTo) IS NULL OR actor_organisation_id = ANY(\(filter.visibleTo)) OR subject_id = ANY(\(filter.visibleTo)))
            ORDER BY sequence
            LIMIT \(limit)
            """, decode: Self.decode)
    }

    /// The events from `from` through `to` (inclusive), in order, for verification.
    public func range(from: Int, through to: Int, limit: Int) -> Query<[AuditEventRecord]> {
        Query("SELECT \(Self.columns) FROM audit_events WHERE sequence >= \(from) AND sequence <= \(to) ORDER BY sequence LIMIT \(limit)",
              decode: Self.decode)
    }

    /// The hash of event `sequence`, or nil.
    public func hash(at sequence: Int) -> Query<String?> {
        Query("SELECT hash FROM audit_events WHERE sequence = \(sequence)") { (rows) throws(StoreError) in
            rows.count == 1 ? try rows.string(0, "hash") : nil
        }
    }

    /// What the log says its head is (the locked row), and its highest stored sequence.
    public func head() -> Query<(sequence: Int, hash: String, maxStored: Int)> {
        Query(
            "SELECT h.sequence, h.hash, coalesce((SELECT max(sequence) FROM audit_events), 0) AS max_stored FROM audit_head h"
        ) { (rows) throws(StoreError) in
            guard rows.count == 1 else { return (0, Self.genesisHash, 0) }
            return (try rows.int(0, "sequence"), try rows.string(0, "hash"), try rows.int(0, "max_stored"))
        }
    }

    public struct Checkpoint: Sendable {
        public var sequence: Int
        public var hash: String
        public var signedBytes: [UInt8]
        public var cms: [UInt8]
    }

    /// The checkpoint with the highest sequence.
    public func latestCheckpoint() -> Query<Checkpoint?> {
        Query("SELECT sequence, hash, signed_bytes, cms FROM audit_checkpoints ORDER BY sequence DESC LIMIT 1") { (rows) throws(StoreError) in
            guard rows.count == 1 else { return nil }
            return Checkpoint(sequence: try rows.int(0, "sequence"), hash: try rows.string(0, "hash"),
                              signedBytes: try rows.bytes(0, "signed_bytes"), cms: try rows.bytes(0, "cms"))
        }
    }

    public func saveCheckpoint(
        _ c: Connection, sequence: Int, hash: String, atMicros: Int, signedBytes: [UInt8], cms: [UInt8], certificateSHA256: String
    ) throws(StoreError) {
        try c.query(
            """
            INSERT INTO audit_checkpoints (sequence, hash, at, signed_bytes, cms, certificate_sha256)
            VALUES (\(sequence), \(hash), to_timestamp(\(atMicros) / 1000000.0), \(SQLBytes(signedBytes)), \(SQLBytes(cms)), \(certificateSHA256))
            ON CONFLICT (sequence) DO NOTHING
            """)
    }

    static func decode(_ rows: Rows) throws(StoreError) -> [AuditEventRecord] {
        var out: [AuditEventRecord] = []
        out.reserveCapacity(rows.count)
        for i in 0..<rows.count {
            let factsText = try rows.string(i, "facts")
            var facts: [(String, String)] = []
            if let object = try? JSONSerialization.jsonObject(with: Data(factsText.utf8)) as? [String: String] {
                facts = object.map { ($0.key, $0.value) }.sorted { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
            }
            out.append(AuditEventRecord(
                sequence: try rows.int(i, "sequence"), atMicros: try rows.int(i, "at_us"),
                actorOrganisationId: try rows.string(i, "actor_organisation_id"), actorPersonId: try rows.string(i, "actor_person_id"),
                action: try rows.string(i, "action"), subjectKind: try rows.string(i, "subject_kind"), subjectId: try rows.string(i, "subject_id"),
                facts: facts, previousHash: try rows.string(i, "previous_hash"), hash: try rows.string(i, "hash")))
        }
        return out
    }
}

/// Recomputes a range of the chain, page by page, without I/O of its own (unit-tested on
/// plain values): it is fed the hash before the range, then the events in order, then the
/// head and the latest checkpoint, and reports the first break.
public struct ChainCheck: Sendable {
    public let from: Int
    public let to: Int
    public private(set) var checked = 0
    public private(set) var firstBroken = 0
    public private(set) var problem = ""
    public private(set) var lastHash: String
    private var expectedSequence: Int

    /// `previousHash`: the hash of event `from - 1` (the genesis hash when `from` is 1).
    public init(from: Int, to: Int, previousHash: String) {
        self.from = from
        self.to = to
        self.lastHash = previousHash
        self.expectedSequence = from
    }

    public var intact: Bool { firstBroken == 0 }

    /// Checks the next events; returns false once a break is found (stop feeding).
    @discardableResult
    public mutating func feed(_ events: [AuditEventRecord]) -> Bool {
        for e in events {
            guard intact else { return false }
            if e.sequence != expectedSequence {
                fail(expectedSequence, "event \(expectedSequence) is missing (the next stored is \(e.sequence))")
            } else if e.previousHash != lastHash {
                fail(e.sequence, "event \(e.sequence) does not link to the event before it")
            } else if e.expectedHash != e.hash {
                fail(e.sequence, "event \(e.sequence) was changed after it was written (its hash does not match its content)")
            } else {
                checked += 1
                lastHash = e.hash
                expectedSequence += 1
            }
        }
        return intact
    }

    /// Ends the check: the stored events must reach `to`, the head row must agree with them,
    /// and the checkpoint (when there is one) must still be in the chain.
    public mutating func finish(
        headSequence: Int, headHash: String, maxStored: Int,
        checkpoint: (sequence: Int, hash: String, storedHash: String?, signatureValid: Bool)?
    ) {
        guard intact else { return }
        if expectedSequence <= to {
            fail(expectedSequence, "event \(expectedSequence) is missing (the log ends at \(expectedSequence - 1))")
        } else if to == headSequence, headHash != lastHash || maxStored != headSequence {
            fail(to, "the log's head (\(headSequence)) does not match its last event")
        } else if maxStored != headSequence {
            fail(min(maxStored, headSequence) + 1, "the log holds \(maxStored) events but its head says \(headSequence)")
        }
        guard intact, let checkpoint else { return }
        if !checkpoint.signatureValid {
            fail(checkpoint.sequence, "the signature of the latest checkpoint (event \(checkpoint.sequence)) does not verify")
        } else if checkpoint.storedHash == nil {
            fail(checkpoint.sequence, "the log no longer holds event \(checkpoint.sequence) of the latest checkpoint (truncated)")
        } else if checkpoint.storedHash != checkpoint.hash {
            fail(checkpoint.sequence, "event \(checkpoint.sequence) differs from the latest checkpoint (rewritten)")
        }
    }

    private mutating func fail(_ sequence: Int, _ why: String) {
        if firstBroken == 0 {
            firstBroken = max(sequence, 1)
            problem = why
        }
    }
}
