public import Domain
import Foundation
import Signatures

/// A decision draft as stored; `body` is the encoding of its `DecisionDraft` (item outcomes,
/// attachments).
public struct DraftRecord: Sendable, Hashable {
    public var id: String
    public var requestId: String
    public var commissionId: String
    public var outcome: String
    public var body: [UInt8]
    public var text: String
    public var correctionDays: Int
    public var draftedBy: String
    public var draftedAt: Double
    public var status: String
    public var returnComment: String
    public var version: Int
}

/// An approved decision as stored.
public struct DecisionRecord: Sendable, Hashable {
    public var id: String
    public var number: String
    public var commissionId: String
    public var requestId: String
    public var draftId: String
    public var outcome: String
    public var approvalEnvelope: [UInt8]
    public var approvalCMS: [UInt8]
    public var approvalSignature: [UInt8]
    public var approverPersonId: String
    public var approvedAt: Double
    public var correctionDue: Double?
    public var receiptCMS: [UInt8]?
    public var effects: [UInt8]
    public var ruleVersion: Int
    public var deliveredTo: [String]
    public var deliveredAt: Double?
}

/// The SQL of drafts, decisions, their numbers and deliveries.
public struct DecisionStore: Sendable {
    public init() {}

    static let draftColumns: SQL = """
        d.id, d.request_id, d.commission_id, d.outcome, d.body, d.text, d.correction_days, d.drafted_by,
        extract(epoch FROM d.drafted_at) AS drafted_at, d.status, d.return_comment, d.version
        """

    static func draft(_ r: Rows, _ i: Int) throws(StoreError) -> DraftRecord {
        DraftRecord(
            id: try r.string(i, "id"), requestId: try r.string(i, "request_id"), commissionId: try r.string(i, "commission_id"),
            outcome: try r.string(i, "outcome"), body: try r.bytes(i, "body"), text: try r.string(i, "text"),
            correctionDays: try r.int(i, "correction_days"), draftedBy: try r.string(i, "drafted_by"), draftedAt: try r.epoch(i, "drafted_at") ?? 0,
            status: try r.string(i, "status"), returnComment: try r.string(i, "return_comment"), version: try r.int(i, "version"))
    }

    public func draft(id: String) -> Query<DraftRecord?> {
        Query("SELECT \(Self.draftColumns) FROM decision_drafts d WHERE d.id = \(id)") { (r) throws(StoreError) in r.count == 0 ? nil : try Self.draft(r, 0) }
    }

    public func lockDraft(_ c: Connection, id: String) throws(StoreError) -> DraftRecord? {
        let r = try c.query("SELECT \(Self.draftColumns) FROM decision_drafts d WHERE d.id = \(id) FOR UPDATE")
        return r.count == 0 ? nil : try Self.draft(r, 0)
    }

    /// The request's pending draft, locked.
    public func lockPending(_ c: Connection, requestId: String) throws(StoreError) -> DraftRecord? {
        let r = try c.query("SELECT \(Self.draftColumns) FROM decision_drafts d WHERE d.request_id = \(requestId) AND d.status = 'pending' FOR UPDATE")
        return r.count == 0 ? nil : try Self.draft(r, 0)
    }

    public func insertDraft(
        _ c: Connection, id: String, requestId: String, commissionId: String, outcome: String, body: [UInt8], text: String, correctionDays: Int,
        draftedBy: String, version: Int
    ) throws(StoreError) {
        try c.query("UPDATE decision_drafts SET status = 'superseded' WHERE request_id = \(requestId) AND status = 'pending'")
        try c.query(
            """
            INSERT INTO decision_drafts (id, request_id, commission_id, outcome, body, text, correction_days, drafted_by, status, version)
            VALUES (\(id), \(requestId), \(commissionId), \(outcome), \(SQLBytes(body)), \(text), \(Int32(correctionDays)), \(draftedBy), 'pending', \(version))
            """)
    }

    public func returnDraft(_ c: Connection, id: String, comment: String) throws(StoreError) {
        try c.query("UPDATE decision_drafts SET status = 'returned', return_comment = \(comment), version = version + 1 WHERE id = \(id)")
    }

    /// Moves a request along the lifecycle (the database's guard allows only the table's moves).
    public func setRequestStatus(_ c: Connection, requestId: String, to status: RequestStatus, decisionId: String? = nil) throws(StoreError) -> Int {
        try c.query(
            """
            UPDATE requests SET status = \(status.databaseName), decision_id = COALESCE(\(decisionId), decision_id), version = version + 1, updated_at = now()
            WHERE id = \(requestId) RETURNING version
            """
        ).int(0, "version")
    }

    public struct Approval: Sendable {
        public var decisionId: String
        public var draft: DraftRecord
        public var approvalEnvelope: [UInt8]
        public var approvalCMS: [UInt8]
        public var approvalSignature: [UInt8]
        public var approverPersonId: String
        public var approvedAt: Double
        public var correctionDue: Double?
        public var effects: [UInt8]
        public var ruleVersion: Int
        public var recipients: [SenderKey]

        public init(
            decisionId: String, draft: DraftRecord, approvalEnvelope: [UInt8], approvalCMS: [UInt8], approvalSignature: [UInt8], approverPersonId: String,
            approvedAt: Double, correctionDue: Double?, effects: [UInt8], ruleVersion: Int, recipients: [SenderKey]
        ) {
            self.decisionId = decisionId
            self.draft = draft
            self.approvalEnvelope = approvalEnvelope
            self.approvalCMS = approvalCMS
            self.approvalSignature = approvalSignature
            self.approverPersonId = approverPersonId
            self.approvedAt = approvedAt
            self.correctionDue = correctionDue
            self.effects = effects
            self.ruleVersion = ruleVersion
            self.recipients = recipients
        }
    }

    /// The next number of a commission's series for the year of `at`, taken under the counter's
    /// row lock (held to the end of the approving transaction: numbers without gaps).
    public func nextNumber(_ c: Connection, commissionId: String, at: Double) throws(StoreError) -> (year: Int, seq: Int) {
        let year = Day(tashkentDayOf: at).year
        let seq = try c.query(
            """
            INSERT INTO decision_counters AS k (commission_id, year, last) VALUES (\(commissionId), \(Int32(year)), 1)
            ON CONFLICT (commission_id, year) DO UPDATE SET last = k.last + 1 RETURNING last
            """
        ).int(0, "last")
        return (year, seq)
    }

    /// Records an approved draft as decision "seq/year" (from `nextNumber`), the draft approved,
    /// and the copies delivered. Returns the number ("12/2026").
    public func approve(_ c: Connection, _ a: Approval, year: Int, seq: Int) throws(StoreError) -> String {
        try c.query(
            """
            INSERT INTO decisions (id, commission_id, number_year, number_seq, request_id, draft_id, outcome, approval_envelope, approval_cms,
                                   approval_signature, approver_person_id, approved_at, correction_due, effects, rule_version)
            VALUES (\(a.decisionId), \(a.draft.commissionId), \(Int32(year)), \(Int32(seq)), \(a.draft.requestId), \(a.draft.id), \(a.draft.outcome),
                    \(SQLBytes(a.approvalEnvelope)), \(SQLBytes(a.approvalCMS)), \(SQLBytes(a.approvalSignature)), \(a.approverPersonId),
                    to_timestamp(\(a.approvedAt)), to_timestamp(\(a.correctionDue)), \(SQLBytes(a.effects)), \(Int32(a.ruleVersion)))
            """)
        try c.query("UPDATE decision_drafts SET status = 'approved', version = version + 1 WHERE id = \(a.draft.id)")
        for r in Set(a.recipients.map(\.description)).sorted() {
            try c.query("INSERT INTO decision_deliveries (decision_id, recipient_key, delivered_at) VALUES (\(a.decisionId), \(r), to_timestamp(\(a.approvedAt)))")
        }
        return "\(seq)/\(year)"
    }

    /// SMS notices of a decision to the candidates and proxies it reaches (through the outbox
    /// the SMS delivery sends): `body` says which decision, never what the form holds.
    public func notifyBySms(_ c: Connection, recipients: [SenderKey], body: String) throws(StoreError) -> Int {
        let candidates = recipients.compactMap(\.candidateId), proxies = recipients.compactMap(\.proxyId)
        guard !candidates.isEmpty || !proxies.isEmpty else { return 0 }
        // The people found through the records' keys (index lookups), never a scan of people.
        return try c.query(
            """
            INSERT INTO sms_outbox (phone, body)
            SELECT DISTINCT p.phone, \(body)
            FROM (SELECT person_id FROM candidates WHERE id = ANY(\(candidates)) UNION SELECT person_id FROM proxies WHERE id = ANY(\(proxies))) x
            JOIN people p ON p.id = x.person_id
            WHERE p.phone IS NOT NULL
            """
        ).affected
    }

    /// Records the files a draft names (the commission's uploads, `uploader`), so that the purge
    /// keeps them while the draft is pending.
    public func setDraftAttachments(_ c: Connection, draftId: String, uploader: SenderKey, sha256s: [String]) throws(StoreError) {
        guard !sha256s.isEmpty else { return }
        try c.query(
            """
            INSERT INTO decision_draft_attachments (draft_id, sender_key, sha256)
            SELECT \(draftId), \(uploader.description), sha FROM unnest(\(sha256s)::text[]) AS sha
            """)
    }

    /// Keeps the draft's files with the decision; returns them as kept (fewer than asked when
    /// an upload is gone).
    public func attachToDecision(_ c: Connection, decisionId: String, uploader: SenderKey, sha256s: [String]) throws(StoreError) -> [AttachmentRecord] {
        guard !sha256s.isEmpty else { return [] }
        let r = try c.query(
            """
            INSERT INTO decision_attachments (decision_id, sha256, file_name, media_type, size_bytes)
            SELECT \(decisionId), u.sha256, u.file_name, u.media_type, k.size_bytes
            FROM attachment_uploads u JOIN attachment_contents k ON k.sha256 = u.sha256
            WHERE u.sender_key = \(uploader.description) AND u.sha256 = ANY(\(sha256s))
            RETURNING sha256, file_name, media_type, size_bytes, extract(epoch FROM now()) AS at
            """)
        return try RequestStore.attachments(r).sorted { $0.sha256 < $1.sha256 }
    }

    /// Whether `sha256` is a file of decision `decisionId`.
    public func hasAttachment(decisionId: String, sha256: String) -> Query<Bool> {
        Query("SELECT 1 FROM decision_attachments WHERE decision_id = \(decisionId) AND sha256 = \(sha256)") { (r) throws(StoreError) in r.count == 1 }
    }

    public func setReceipt(_ c: Connection, decisionId: String, cms: [UInt8]) throws(StoreError) {
        try c.query("UPDATE decisions SET receipt_cms = \(SQLBytes(cms)) WHERE id = \(decisionId) AND receipt_cms IS NULL")
    }

    static let decisionColumns: SQL = """
        x.id, x.commission_id, x.number_year, x.number_seq, x.request_id, x.draft_id, x.outcome, x.approval_envelope, x.approval_cms,
        x.approval_signature, x.approver_person_id, extract(epoch FROM x.approved_at) AS approved_at,
        extract(epoch FROM x.correction_due) AS correction_due, x.receipt_cms, x.effects, x.rule_version,
        (SELECT string_agg(recipient_key, ',' ORDER BY recipient_key) FROM decision_deliveries v WHERE v.decision_id = x.id) AS delivered_to,
        (SELECT extract(epoch FROM min(delivered_at)) FROM decision_deliveries v WHERE v.decision_id = x.id) AS delivered_at
        """

    static func decision(_ r: Rows, _ i: Int) throws(StoreError) -> DecisionRecord {
        let receipt: [UInt8]? = try r.optionalString(i, "receipt_cms") == nil ? nil : try r.bytes(i, "receipt_cms")
        return DecisionRecord(
            id: try r.string(i, "id"), number: "\(try r.int(i, "number_seq"))/\(try r.int(i, "number_year"))",
            commissionId: try r.string(i, "commission_id"), requestId: try r.string(i, "request_id"), draftId: try r.string(i, "draft_id"),
            outcome: try r.string(i, "outcome"), approvalEnvelope: try r.bytes(i, "approval_envelope"), approvalCMS: try r.bytes(i, "approval_cms"),
            approvalSignature: try r.bytes(i, "approval_signature"), approverPersonId: try r.string(i, "approver_person_id"),
            approvedAt: try r.epoch(i, "approved_at") ?? 0, correctionDue: try r.epoch(i, "correction_due"), receiptCMS: receipt,
            effects: try r.bytes(i, "effects"), ruleVersion: try r.int(i, "rule_version"),
            deliveredTo: (try r.optionalString(i, "delivered_to") ?? "").split(separator: ",").map(String.init),
            deliveredAt: try r.epoch(i, "delivered_at"))
    }

    public func decision(id: String) -> Query<DecisionRecord?> {
        Query("SELECT \(Self.decisionColumns) FROM decisions x WHERE x.id = \(id)") { (r) throws(StoreError) in r.count == 0 ? nil : try Self.decision(r, 0) }
    }

    /// The decision "No. seq/year" of a commission.
    public func decision(commissionId: String, year: Int, seq: Int) -> Query<DecisionRecord?> {
        Query(
            """
            SELECT \(Self.decisionColumns) FROM decisions x
            WHERE x.commission_id = \(commissionId) AND x.number_year = \(Int32(clamping: year)) AND x.number_seq = \(Int32(clamping: seq))
            """
        ) { (r) throws(StoreError) in r.count == 0 ? nil : try Self.decision(r, 0) }
    }

    public func decision(_ c: Connection, id: String) throws(StoreError) -> DecisionRecord? {
        try c.run(decision(id: id))
    }

    /// A commission's series of `year`, after number `after`.
    public func decisions(commissionId: String, year: Int, after: Int, limit: Int) -> Query<[DecisionRecord]> {
        Query(
            """
            SELECT \(Self.decisionColumns) FROM decisions x
            WHERE x.commission_id = \(commissionId) AND x.number_year = \(Int32(year)) AND x.number_seq > \(Int32(clamping: after))
            ORDER BY x.number_seq LIMIT \(limit)
            """
        ) { (r) throws(StoreError) in try (0..<r.count).map { (i) throws(StoreError) in try Self.decision(r, i) } }
    }

    // MARK: directory effects

    /// The person of `pinfl`, created as `newId` when the directory has none (ids carry no
    /// personal data); the phone is set when the person has none. Returns the id, or nil when
    /// the phone belongs to another person.
    /// The person of a list whose phone belongs to another.
    public struct PhoneTaken: Error {
        public let index: Int
    }

    /// A person a form names, as the directory records them.
    public struct NewPerson: Sendable {
        public var pinfl: String
        public var lastName: String
        public var firstName: String
        public var patronymic: String
        public var phone: String?
        public var birthDate: Day?

        public init(pinfl: String, lastName: String, firstName: String, patronymic: String, phone: String?, birthDate: Day?) {
            self.pinfl = pinfl
            self.lastName = lastName
            self.firstName = firstName
            self.patronymic = patronymic
            self.phone = phone
            self.birthDate = birthDate
        }
    }

    /// The directory's people for `people` (distinct PINFLs), created where the directory has
    /// none, in one statement; an existing person without a phone gets the form's. `.failure`
    /// names the first whose phone belongs to another person (or to an earlier one of the list).
    public func people(_ c: Connection, _ people: [NewPerson]) throws(StoreError) -> Result<[String], PhoneTaken> {
        guard !people.isEmpty else { return .success([]) }
        var seen: Set<String> = []
        for (i, p) in people.enumerated() { if let phone = p.phone, !seen.insert(phone).inserted { return .failure(PhoneTaken(index: i)) } }
        let pinfls = people.map(\.pinfl), phones = people.map { $0.phone ?? "" }
        let taken = try c.query(
            """
            SELECT min(x.ord) AS first FROM unnest(\(phones)::text[], \(pinfls)::text[]) WITH ORDINALITY AS x (phone, pinfl, ord)
            JOIN people p ON p.phone = x.phone AND p.pinfl <> x.pinfl WHERE x.phone <> ''
            """)
        if let first = try taken.optionalInt(0, "first") { return .failure(PhoneTaken(index: first - 1)) }
        let ids = people.map { _ in "p-" + Crypto.hex(Crypto.randomBytes(8)) }
        let r = try c.query(
            """
            INSERT INTO people (id, pinfl, last_name, first_name, patronymic, phone, birth_date)
            SELECT id, pinfl, last_name, first_name, patronymic, NULLIF(phone, ''), NULLIF(birth, '')::date
            FROM unnest(\(ids)::text[], \(pinfls)::text[], \(people.map(\.lastName))::text[], \(people.map(\.firstName))::text[],
                        \(people.map(\.patronymic))::text[], \(phones)::text[], \(people.map { $0.birthDate?.description ?? "" })::text[])
                 AS x (id, pinfl, last_name, first_name, patronymic, phone, birth)
            ON CONFLICT (pinfl) DO UPDATE SET phone = COALESCE(people.phone, EXCLUDED.phone)
            RETURNING id, pinfl
            """)
        var byPINFL: [String: String] = [:]
        for i in 0..<r.count { byPINFL[try r.string(i, "pinfl")] = try r.string(i, "id") }
        return .success(try pinfls.map { (p) throws(StoreError) in
            guard let id = byPINFL[p] else { throw StoreError(.other, reason: "a person was not recorded") }
            return id
        })
    }

    /// Registers candidates of one election, commission and party in one statement.
    public func registerCandidates(
        _ c: Connection, ids: [String], personIds: [String], election: ElectionKind, commissionId: String, constituencies: [Int], partyId: String?,
        listPositions: [Int], campaignId: String, decisionId: String
    ) throws(StoreError) {
        guard !ids.isEmpty else { return }
        try c.query(
            """
            INSERT INTO candidates (id, person_id, election_kind, registering_commission_id, constituency_number, party_id, list_position, status,
                                    campaign_id, decision_id)
            SELECT id, person, \(election.databaseName), \(commissionId), constituency::int, \(partyId), position::int, 'registered', \(campaignId), \(decisionId)
            FROM unnest(\(ids)::text[], \(personIds)::text[], \(constituencies)::int8[], \(listPositions)::int8[]) AS x (id, person, constituency, position)
            """)
    }

    public func registerProxy(_ c: Connection, id: String, personId: String, candidateId: String, decisionId: String) throws(StoreError) {
        try c.query(
            "INSERT INTO proxies (id, person_id, candidate_id, status, decision_id) VALUES (\(id), \(personId), \(candidateId), 'registered', \(decisionId))")
    }

    /// Ends a candidacy (revoked or withdrawn); returns its person, nil when it was not current.
    public func endCandidate(_ c: Connection, id: String, status: String, decisionId: String) throws(StoreError) -> String? {
        let r = try c.query(
            "UPDATE candidates SET status = \(status), decision_id = \(decisionId) WHERE id = \(id) AND status IN ('nominated', 'registered') RETURNING person_id")
        try c.query("UPDATE proxies SET status = 'ended', decision_id = \(decisionId) WHERE candidate_id = \(id) AND status IN ('proposed', 'registered')")
        return r.count == 1 ? try r.string(0, "person_id") : nil
    }

    public func endProxy(_ c: Connection, id: String, decisionId: String) throws(StoreError) -> String? {
        let r = try c.query("UPDATE proxies SET status = 'ended', decision_id = \(decisionId) WHERE id = \(id) AND status IN ('proposed', 'registered') RETURNING person_id")
        return r.count == 1 ? try r.string(0, "person_id") : nil
    }

    /// Proxies a candidate has now (for the limit at approval).
    public func proxyCount(_ c: Connection, candidateId: String) throws(StoreError) -> Int {
        try c.query("SELECT count(*) AS n FROM proxies WHERE candidate_id = \(candidateId) AND status IN ('proposed', 'registered')").int(0, "n")
    }

    /// Whether the person of `pinfl` sits on an election commission now.
    /// A mandate or accreditation to issue.
    public struct NewMandate: Sendable {
        public var id: String
        public var item: Int
        public var number: String
        public var holderName: String
        public var pinfl: String?
        public var passport: String?
        public var pollingStation: Int?

        public init(id: String, item: Int, number: String, holderName: String, pinfl: String?, passport: String?, pollingStation: Int?) {
            self.id = id
            self.item = item
            self.number = number
            self.holderName = holderName
            self.pinfl = pinfl
            self.passport = passport
            self.pollingStation = pollingStation
        }
    }

    /// Issues the mandates of one decision and kind in one statement.
    public func issueMandates(_ c: Connection, decisionId: String, kind: String, _ m: [NewMandate]) throws(StoreError) {
        guard !m.isEmpty else { return }
        try c.query(
            """
            INSERT INTO mandates (id, decision_id, kind, item_index, number, holder_name, holder_pinfl, holder_passport, polling_station)
            SELECT id, \(decisionId), \(kind), item::int, number, holder, NULLIF(pinfl, ''), NULLIF(passport, ''), NULLIF(station, 0)::int
            FROM unnest(\(m.map(\.id))::text[], \(m.map(\.item))::int8[], \(m.map(\.number))::text[], \(m.map(\.holderName))::text[],
                        \(m.map { $0.pinfl ?? "" })::text[], \(m.map { $0.passport ?? "" })::text[], \(m.map { $0.pollingStation ?? 0 })::int8[])
                 AS x (id, item, number, holder, pinfl, passport, station)
            """)
    }

    public func sitsOnACommission(_ c: Connection, pinfl: String) throws(StoreError) -> Bool {
        try c.query(
            """
            SELECT 1 FROM people p JOIN current_memberships m ON m.person_id = p.id JOIN organisations o ON o.id = m.organisation_id
            WHERE p.pinfl = \(pinfl) AND o.kind IN ('central_election_commission', 'karakalpakstan_election_commission',
                                                    'territorial_election_commission', 'district_election_commission')
            """
        ).count > 0
    }
}
