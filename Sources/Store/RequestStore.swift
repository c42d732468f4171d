public import Domain
import Foundation

/// Who sent a request, as the database keys it ("organisation:<id>", "candidate:<id>", "proxy:<id>").
public enum SenderKey: Sendable, Hashable, CustomStringConvertible {
    case organisation(String)
    case candidate(String)
    case proxy(String)

    public var description: String {
        switch self {
        case .organisation(let id): "organisation:\(id)"
        case .candidate(let id): "candidate:\(id)"
        case .proxy(let id): "proxy:\(id)"
        }
    }

    public var organisationId: String? { if case .organisation(let id) = self { id } else { nil } }
    public var candidateId: String? { if case .candidate(let id) = self { id } else { nil } }
    public var proxyId: String? { if case .proxy(let id) = self { id } else { nil } }
}

/// A request as stored. The form is the encoding of its `RequestForm`; the signature the
/// encoding of its `SignatureInfo` (without the CMS and signed bytes, kept beside it).
public struct RequestRecord: Sendable, Hashable {
    public var id: String
    public var campaignId: String
    public var catalogueVersion: Int
    public var type: RequestType
    public var kind: RequestKind
    public var sender: SenderKey
    public var senderPersonId: String
    public var senderTerritory: String
    public var receiverId: String
    public var status: RequestStatus
    public var version: Int
    public var form: [UInt8]
    public var signatureRequired: Bool
    public var correctsRequestId: String?
    public var createdAt: Double
    public var submittedAt: Double?
    public var decisionDue: Double?
    public var incomingNumber: String?
    public var envelope: [UInt8]?
    public var cms: [UInt8]?
    public var signature: [UInt8]?
    public var signerPersonId: String?
    public var attachments: [AttachmentRecord]
    public var decisionId: String? = nil
}

public struct AttachmentRecord: Sendable, Hashable {
    public var sha256: String
    public var fileName: String
    public var mediaType: String
    public var sizeBytes: Int
    public var uploadedAt: Double
}

public struct HistoryRecord: Sendable, Hashable {
    public var at: Double
    public var actorOrganisationId: String
    public var actorPersonId: String
    public var kind: String
    public var from: RequestStatus?
    public var to: RequestStatus
    public var version: Int
    public var note: String
}

/// What a list of requests filters on (AND).
public struct RequestListFilter: Sendable, Hashable {
    public var types: [Int] = []
    public var statuses: [String] = []
    public var campaignId = ""
    public var submittedAfter: Double?
    public var submittedBefore: Double?
    public var senderOrganisationId = ""
    public var senderTerritoryPrefix = ""
    public var decisionDueBefore: Double?

    public init() {}

    /// The filter as page tokens bind it.
    public var canonical: [String] {
        [types.map(String.init).joined(separator: ","), statuses.joined(separator: ","), campaignId,
         submittedAfter.map { String($0) } ?? "", submittedBefore.map { String($0) } ?? "", senderOrganisationId,
         senderTerritoryPrefix, decisionDueBefore.map { String($0) } ?? ""]
    }
}

/// How an idempotency key stands.
public enum IdempotencyClaim: Sendable, Hashable {
    /// First use: the call goes on and records its response.
    case fresh
    /// Seen with the same request: its response.
    case replay([UInt8])
    /// Seen with another request or method.
    case conflict
}

/// The SQL of requests, their attachments, history and idempotency keys.
public struct RequestStore: Sendable {
    public init() {}

    static let columns: SQL = """
        r.id, r.campaign_id, r.catalogue_version, r.type, r.kind, r.sender_key, r.sender_person_id, r.sender_territory, r.receiver_id,
        r.status, r.version, r.form, r.signature_required, r.corrects_request_id, extract(epoch FROM r.created_at) AS created_at,
        extract(epoch FROM r.submitted_at) AS submitted_at, extract(epoch FROM r.decision_due) AS decision_due,
        r.incoming_year, r.incoming_seq, r.envelope, r.cms, r.signature, r.signer_person_id, r.decision_id,
        (SELECT string_agg(a.sha256 || '|' || extract(epoch FROM k.stored_at)::text || '|' || a.size_bytes::text || '|' || a.media_type || '|' || a.file_name,
                           E'\\n' ORDER BY a.sha256)
         FROM request_attachments a JOIN attachment_contents k ON k.sha256 = a.sha256 WHERE a.request_id = r.id) AS attachments
        """

    static func senderKey(_ s: String) throws(StoreError) -> SenderKey {
        let parts = s.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { throw StoreError(.decoding, reason: "sender_key is malformed") }
        switch parts[0] {
        case "organisation": return .organisation(parts[1])
        case "candidate": return .candidate(parts[1])
        case "proxy": return .proxy(parts[1])
        default: throw StoreError(.decoding, reason: "sender_key is malformed")
        }
    }

    static func request(_ r: Rows, _ i: Int) throws(StoreError) -> RequestRecord {
        guard let type = RequestType(rawValue: try r.int(i, "type")), let kind = RequestKind(rawValue: try r.string(i, "kind")),
            let status = RequestStatus(databaseName: try r.string(i, "status"))
        else { throw StoreError(.decoding, reason: "request row has unknown type, kind or status") }
        var attachments: [AttachmentRecord] = []
        for line in (try r.optionalString(i, "attachments") ?? "").split(separator: "\n") {
            let f = line.split(separator: "|", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
            guard f.count == 5, let at = Double(f[1]), let size = Int(f[2]) else { continue }
            attachments.append(AttachmentRecord(sha256: f[0], fileName: f[4], mediaType: f[3], sizeBytes: size, uploadedAt: at))
        }
        var number: String?
        if let year = try r.optionalInt(i, "incoming_year"), let seq = try r.optionalInt(i, "incoming_seq") { number = "\(seq)/\(year)" }
        func optionalBytes(_ name: String) throws(StoreError) -> [UInt8]? {
            try r.optionalString(i, name) == nil ? nil : try r.bytes(i, name)
        }
        return RequestRecord(
            id: try r.string(i, "id"), campaignId: try r.string(i, "campaign_id"), catalogueVersion: try r.int(i, "catalogue_version"),
            type: type, kind: kind, sender: try senderKey(try r.string(i, "sender_key")), senderPersonId: try r.string(i, "sender_person_id"),
            senderTerritory: try r.string(i, "sender_territory"), receiverId: try r.string(i, "receiver_id"), status: status,
            version: try r.int(i, "version"), form: try r.bytes(i, "form"), signatureRequired: try r.bool(i, "signature_required"),
            correctsRequestId: try r.optionalString(i, "corrects_request_id"), createdAt: try r.epoch(i, "created_at") ?? 0,
            submittedAt: try r.epoch(i, "submitted_at"), decisionDue: try r.epoch(i, "decision_due"), incomingNumber: number,
            envelope: try optionalBytes("envelope"), cms: try optionalBytes("cms"), signature: try optionalBytes("signature"),
            signerPersonId: try r.optionalString(i, "signer_person_id"), attachments: attachments,
            decisionId: try r.optionalString(i, "decision_id"))
    }

    public func request(id: String) -> Query<RequestRecord?> {
        Query("SELECT \(Self.columns) FROM requests r WHERE r.id = \(id)") { (r) throws(StoreError) in r.count == 0 ? nil : try Self.request(r, 0) }
    }

    /// The request, locked for this transaction.
    public func lock(_ c: Connection, id: String) throws(StoreError) -> RequestRecord? {
        let r = try c.query("SELECT \(Self.columns) FROM requests r WHERE r.id = \(id) FOR UPDATE")
        return r.count == 0 ? nil : try Self.request(r, 0)
    }

    public struct NewDraft: Sendable {
        public var id: String
        public var campaignId: String
        public var catalogueVersion: Int
        public var type: RequestType
        public var kind: RequestKind
        public var sender: SenderKey
        public var senderPersonId: String
        public var senderTerritory: String
        public var receiverId: String
        public var form: [UInt8]
        public var correctsRequestId: String?

        public init(
            id: String, campaignId: String, catalogueVersion: Int, type: RequestType, kind: RequestKind, sender: SenderKey, senderPersonId: String,
            senderTerritory: String, receiverId: String, form: [UInt8], correctsRequestId: String?
        ) {
            self.id = id
            self.campaignId = campaignId
            self.catalogueVersion = catalogueVersion
            self.type = type
            self.kind = kind
            self.sender = sender
            self.senderPersonId = senderPersonId
            self.senderTerritory = senderTerritory
            self.receiverId = receiverId
            self.form = form
            self.correctsRequestId = correctsRequestId
        }
    }

    public func insertDraft(_ c: Connection, _ d: NewDraft) throws(StoreError) {
        try c.query(
            """
            INSERT INTO requests (id, campaign_id, catalogue_version, type, kind, sender_key, sender_organisation_id, sender_candidate_id,
                                  sender_proxy_id, sender_person_id, sender_territory, receiver_id, status, form, signature_required, corrects_request_id)
            VALUES (\(d.id), \(d.campaignId), \(Int32(d.catalogueVersion)), \(Int32(d.type.rawValue)), \(d.kind.rawValue), \(d.sender.description),
                    \(d.sender.organisationId), \(d.sender.candidateId), \(d.sender.proxyId), \(d.senderPersonId), \(d.senderTerritory),
                    \(d.receiverId), 'draft', \(SQLBytes(d.form)), \(d.sender.organisationId != nil), \(d.correctsRequestId))
            """)
    }

    /// Drafts a sender holds now.
    public func draftCount(_ c: Connection, sender: SenderKey) throws(StoreError) -> Int {
        try c.query("SELECT count(*) AS n FROM requests WHERE sender_key = \(sender.description) AND status = 'draft'").int(0, "n")
    }

    /// Bytes a sender uploaded that no request of theirs holds yet.
    public func unattachedBytes(sender: SenderKey) -> Query<Int> {
        Query(
            """
            SELECT COALESCE(sum(k.size_bytes), 0) AS n FROM attachment_uploads u JOIN attachment_contents k ON k.sha256 = u.sha256
            WHERE u.sender_key = \(sender.description) AND NOT \(Self.uploadTaken)
            """
        ) { (r) throws(StoreError) in try r.int(0, "n") }
    }

    /// Whether the upload `u` is taken: by a request of its sender, by a decision of its
    /// commission, or by a pending draft of one.
    static let uploadTaken: SQL = """
        (EXISTS (SELECT 1 FROM request_attachments a JOIN requests r ON r.id = a.request_id WHERE a.sha256 = u.sha256 AND r.sender_key = u.sender_key)
         OR EXISTS (SELECT 1 FROM decision_attachments a JOIN decisions x ON x.id = a.decision_id
                    WHERE a.sha256 = u.sha256 AND u.sender_key = 'organisation:' || x.commission_id)
         OR EXISTS (SELECT 1 FROM decision_draft_attachments a JOIN decision_drafts d ON d.id = a.draft_id
                    WHERE a.sha256 = u.sha256 AND a.sender_key = u.sender_key AND d.status = 'pending'))
        """

    public func updateDraft(_ c: Connection, id: String, form: [UInt8], kind: RequestKind, catalogueVersion: Int) throws(StoreError) {
        try c.query(
            """
            UPDATE requests SET form = \(SQLBytes(form)), kind = \(kind.rawValue), catalogue_version = \(Int32(catalogueVersion)),
                   version = version + 1, updated_at = now()
            WHERE id = \(id)
            """)
    }

    public func deleteDraft(_ c: Connection, id: String) throws(StoreError) {
        try c.query("DELETE FROM requests WHERE id = \(id) AND status = 'draft'")
    }

    /// Sends a draft: the next incoming number of the receiver's series for `year`, taken under
    /// the counter's row lock (numbers without gaps); returns the number.
    public func submit(
        _ c: Connection, id: String, receiverId: String, year: Int, submittedAt: Double, decisionDue: Double?, envelope: [UInt8], cms: [UInt8]?,
        signature: [UInt8]?, signerPersonId: String?
    ) throws(StoreError) -> String {
        let seq = try c.query(
            """
            INSERT INTO incoming_counters AS k (commission_id, year, last) VALUES (\(receiverId), \(Int32(year)), 1)
            ON CONFLICT (commission_id, year) DO UPDATE SET last = k.last + 1 RETURNING last
            """
        ).int(0, "last")
        try c.query(
            """
            UPDATE requests SET status = 'submitted', submitted_at = to_timestamp(\(submittedAt)), decision_due = to_timestamp(\(decisionDue)),
                   incoming_year = \(Int32(year)), incoming_seq = \(Int32(seq)), envelope = \(SQLBytes(envelope)),
                   cms = \(cms.map(SQLBytes.init)), signature = \(signature.map(SQLBytes.init)), signer_person_id = \(signerPersonId),
                   version = version + 1, updated_at = now()
            WHERE id = \(id)
            """)
        return "\(seq)/\(year)"
    }

    public func withdraw(_ c: Connection, id: String, reason: String) throws(StoreError) {
        try c.query(
            """
            UPDATE requests SET status = 'withdrawn', withdrawn_at = now(), withdraw_reason = \(reason), version = version + 1, updated_at = now()
            WHERE id = \(id)
            """)
    }

    // MARK: history

    public func appendHistory(
        _ c: Connection, requestId: String, actorOrganisationId: String, actorPersonId: String, kind: String, from: RequestStatus?,
        to: RequestStatus, version: Int, note: String = ""
    ) throws(StoreError) {
        try c.query(
            """
            INSERT INTO request_history (request_id, actor_organisation_id, actor_person_id, kind, from_status, to_status, version, note)
            VALUES (\(requestId), \(actorOrganisationId), \(actorPersonId), \(kind), \(from?.databaseName), \(to.databaseName), \(version), \(note))
            """)
    }

    public func history(requestId: String) -> Query<[HistoryRecord]> {
        Query(
            """
            SELECT extract(epoch FROM at) AS at, actor_organisation_id, actor_person_id, kind, from_status, to_status, version, note
            FROM request_history WHERE request_id = \(requestId) ORDER BY id LIMIT 1000
            """
        ) { (r) throws(StoreError) in
            try (0..<r.count).map { (i) throws(StoreError) in
                HistoryRecord(
                    at: try r.epoch(i, "at") ?? 0, actorOrganisationId: try r.string(i, "actor_organisation_id"),
                    actorPersonId: try r.string(i, "actor_person_id"), kind: try r.string(i, "kind"),
                    from: try r.optionalString(i, "from_status").flatMap(RequestStatus.init(databaseName:)),
                    to: RequestStatus(databaseName: try r.string(i, "to_status")) ?? .draft, version: try r.int(i, "version"),
                    note: try r.string(i, "note"))
            }
        }
    }

    // MARK: lists

    static func filterSQL(_ f: RequestListFilter) -> SQL {
        let types: [Int]? = f.types.isEmpty ? nil : f.types
        let statuses: [String]? = f.statuses.isEmpty ? nil : f.statuses
        return """
            (\(types) IS NULL OR r.type = ANY(\(types)))
            AND (\(statuses) IS NULL OR r.status = ANY(\(statuses)))
            AND (\(f.campaignId) = '' OR r.campaign_id = \(f.campaignId))
            AND (\(f.submittedAfter) IS NULL OR r.submitted_at >= to_timestamp(\(f.submittedAfter)))
            AND (\(f.submittedBefore) IS NULL OR r.submitted_at < to_timestamp(\(f.submittedBefore)))
            AND (\(f.senderOrganisationId) = '' OR r.sender_organisation_id = \(f.senderOrganisationId))
            AND (\(f.senderTerritoryPrefix) = '' OR r.sender_territory LIKE \(f.senderTerritoryPrefix) || '%')
            AND (\(f.decisionDueBefore) IS NULL OR r.decision_due < to_timestamp(\(f.decisionDueBefore)))
            """
    }

    /// A commission's inbox: sent requests, oldest first, after `(submittedAt, id)`; with the
    /// inbox's event position read in the same statement (one snapshot), so that a watch from it
    /// misses nothing the page does not show.
    public func incoming(receiverId: String, filter: RequestListFilter, after: (Double, String)?, limit: Int) -> Query<(rows: [RequestRecord], position: Int)> {
        let position: SQL = after.map { "(r.submitted_at, r.id) > (to_timestamp(\($0.0)), \($0.1))" } ?? "true"
        return Self.page(
            """
            SELECT \(Self.columns) FROM requests r
            WHERE r.receiver_id = \(receiverId) AND r.status <> 'draft' AND \(Self.filterSQL(filter)) AND \(position)
            ORDER BY r.submitted_at, r.id LIMIT \(limit)
            """, order: "x.submitted_at, x.id", watch: EventRecipient.incoming(commissionId: receiverId))
    }

    /// A sender's requests, drafts included, newest first, before `(createdAt, id)`; with the
    /// sender's event position, as `incoming`.
    public func outgoing(sender: SenderKey, filter: RequestListFilter, after: (Double, String)?, limit: Int) -> Query<(rows: [RequestRecord], position: Int)> {
        let position: SQL = after.map { "(r.created_at, r.id) < (to_timestamp(\($0.0)), \($0.1))" } ?? "true"
        return Self.page(
            """
            SELECT \(Self.columns) FROM requests r
            WHERE r.sender_key = \(sender.description) AND \(Self.filterSQL(filter)) AND \(position)
            ORDER BY r.created_at DESC, r.id DESC LIMIT \(limit)
            """, order: "x.created_at DESC, x.id DESC", watch: EventRecipient.outgoing(sender))
    }

    /// The rows of `list` in `order` (its columns as `x`), and `watch`'s event position: one
    /// row with NULL columns when the page is empty.
    static func page(_ list: SQL, order: SQL, watch: EventRecipient) -> Query<(rows: [RequestRecord], position: Int)> {
        Query(
            """
            SELECT x.*, COALESCE((SELECT last FROM event_positions WHERE recipient = \(watch.key)), 0) AS watch_position
            FROM (VALUES (1)) AS one (n) LEFT JOIN LATERAL (\(list)) x ON true
            ORDER BY \(order)
            """
        ) { (r) throws(StoreError) in
            var rows: [RequestRecord] = []
            for i in 0..<r.count where try r.optionalString(i, "id") != nil { rows.append(try Self.request(r, i)) }
            return (rows, r.count == 0 ? 0 : try r.int(0, "watch_position"))
        }
    }

    // MARK: attachments

    public func insertChunk(_ c: Connection, uploadId: String, seq: Int, data: [UInt8]) throws(StoreError) {
        try c.query("INSERT INTO attachment_chunks (upload_id, seq, data) VALUES (\(uploadId), \(Int32(seq)), \(SQLBytes(data)))")
    }

    /// Keeps a finished upload as the content's copy (or drops it when the content is already
    /// stored) and records that `sender` holds it; returns when the sender first uploaded it.
    public func finishUpload(
        _ c: Connection, uploadId: String, sha256: String, size: Int, sender: SenderKey, fileName: String, mediaType: String
    ) throws(StoreError) -> Double {
        let kept = try c.query(
            "INSERT INTO attachment_contents (sha256, upload_id, size_bytes) VALUES (\(sha256), \(uploadId), \(size)) ON CONFLICT (sha256) DO NOTHING"
        ).affected
        if kept == 0 { try c.query("DELETE FROM attachment_chunks WHERE upload_id = \(uploadId)") }
        return try c.query(
            """
            INSERT INTO attachment_uploads (sender_key, sha256, file_name, media_type) VALUES (\(sender.description), \(sha256), \(fileName), \(mediaType))
            ON CONFLICT (sender_key, sha256) DO UPDATE SET file_name = EXCLUDED.file_name, media_type = EXCLUDED.media_type
            RETURNING extract(epoch FROM uploaded_at) AS at
            """
        ).epoch(0, "at") ?? 0
    }

    public func dropUpload(_ c: Connection, uploadId: String) throws(StoreError) {
        try c.query("DELETE FROM attachment_chunks WHERE upload_id = \(uploadId)")
    }

    /// What `sender` uploaded of `sha256s`.
    public func uploads(_ c: Connection, sender: SenderKey, sha256s: [String]) throws(StoreError) -> [AttachmentRecord] {
        let r = try c.query(
            """
            SELECT u.sha256, u.file_name, u.media_type, k.size_bytes, extract(epoch FROM u.uploaded_at) AS at
            FROM attachment_uploads u JOIN attachment_contents k ON k.sha256 = u.sha256
            WHERE u.sender_key = \(sender.description) AND u.sha256 = ANY(\(sha256s)) ORDER BY u.sha256
            """)
        return try Self.attachments(r)
    }

    /// Rows of `sha256, file_name, media_type, size_bytes, at` (seconds since 1970).
    static func attachments(_ r: Rows) throws(StoreError) -> [AttachmentRecord] {
        try (0..<r.count).map { (i) throws(StoreError) in
            AttachmentRecord(sha256: try r.string(i, "sha256"), fileName: try r.string(i, "file_name"), mediaType: try r.string(i, "media_type"),
                             sizeBytes: try r.int(i, "size_bytes"), uploadedAt: try r.epoch(i, "at") ?? 0)
        }
    }

    public func setAttachments(_ c: Connection, requestId: String, _ attachments: [AttachmentRecord]) throws(StoreError) {
        try c.query("DELETE FROM request_attachments WHERE request_id = \(requestId)")
        for a in attachments {
            try c.query(
                """
                INSERT INTO request_attachments (request_id, sha256, file_name, media_type, size_bytes)
                VALUES (\(requestId), \(a.sha256), \(a.fileName), \(a.mediaType), \(a.sizeBytes))
                """)
        }
    }

    /// The upload holding a content's chunks, and how many there are.
    public func content(sha256: String) -> Query<(uploadId: String, chunks: Int)?> {
        Query(
            "SELECT k.upload_id, (SELECT count(*) FROM attachment_chunks c WHERE c.upload_id = k.upload_id) AS n FROM attachment_contents k WHERE k.sha256 = \(sha256)"
        ) { (r) throws(StoreError) in r.count == 0 ? nil : (try r.string(0, "upload_id"), try r.int(0, "n")) }
    }

    public func chunk(uploadId: String, seq: Int) -> Query<[UInt8]?> {
        Query("SELECT data FROM attachment_chunks WHERE upload_id = \(uploadId) AND seq = \(Int32(seq))") {
            (r) throws(StoreError) in r.count == 0 ? nil : try r.bytes(0, "data")
        }
    }

    /// Removes uploads no request took within `age` seconds, contents nothing refers to, chunks
    /// of uploads that never finished within an hour, and idempotency keys older than 8 days.
    /// Returns the rows removed.
    public func purge(_ c: Connection, uploadAge: Double = 24 * 3600) throws(StoreError) -> Int {
        var n = try c.query(
            """
            DELETE FROM attachment_uploads u WHERE u.uploaded_at < now() - make_interval(secs => \(uploadAge)) AND NOT \(Self.uploadTaken)
            """
        ).affected
        n += try c.query(
            """
            WITH gone AS (
              DELETE FROM attachment_contents k
              WHERE NOT EXISTS (SELECT 1 FROM attachment_uploads u WHERE u.sha256 = k.sha256)
                AND NOT EXISTS (SELECT 1 FROM request_attachments a WHERE a.sha256 = k.sha256)
                AND NOT EXISTS (SELECT 1 FROM decision_attachments a WHERE a.sha256 = k.sha256)
                AND NOT EXISTS (SELECT 1 FROM decision_draft_attachments a WHERE a.sha256 = k.sha256)
              RETURNING upload_id)
            DELETE FROM attachment_chunks WHERE upload_id IN (SELECT upload_id FROM gone)
            """
        ).affected
        n += try c.query(
            """
            DELETE FROM attachment_chunks c WHERE c.upload_id IN (
              SELECT upload_id FROM attachment_chunks x
              WHERE NOT EXISTS (SELECT 1 FROM attachment_contents k WHERE k.upload_id = x.upload_id)
              GROUP BY upload_id HAVING max(written_at) < now() - interval '1 hour')
            """
        ).affected
        n += try c.query("DELETE FROM idempotency_keys WHERE created_at < now() - interval '8 days'").affected
        return n
    }

    // MARK: idempotency

    /// Takes `key` for this call, or reports how it was used. A concurrent call with the same
    /// key waits here until the first commits (then replays) or rolls back (then goes on).
    public func claim(_ c: Connection, sender: SenderKey, key: String, method: String, requestSHA256: [UInt8]) throws(StoreError) -> IdempotencyClaim {
        let inserted = try c.query(
            """
            INSERT INTO idempotency_keys (sender_key, key, method, request_sha256) VALUES (\(sender.description), \(key), \(method), \(SQLBytes(requestSHA256)))
            ON CONFLICT (sender_key, key) DO NOTHING
            """
        ).affected
        if inserted == 1 { return .fresh }
        let r = try c.query("SELECT method, request_sha256, response FROM idempotency_keys WHERE sender_key = \(sender.description) AND key = \(key)")
        guard r.count == 1, try r.string(0, "method") == method, try r.bytes(0, "request_sha256") == requestSHA256,
            try r.optionalString(0, "response") != nil
        else { return .conflict }
        return .replay(try r.bytes(0, "response"))
    }

    public func releaseKey(_ c: Connection, sender: SenderKey, key: String) throws(StoreError) {
        try c.query("DELETE FROM idempotency_keys WHERE sender_key = \(sender.description) AND key = \(key) AND response IS NULL")
    }

    public func recordResponse(_ c: Connection, sender: SenderKey, key: String, response: [UInt8]) throws(StoreError) {
        try c.query("UPDATE idempotency_keys SET response = \(SQLBytes(response)) WHERE sender_key = \(sender.description) AND key = \(key)")
    }
}

/// Who is sending, with what clause 6 and routing look at.
public struct SenderRecord: Sendable, Hashable {
    public var key: SenderKey
    public var organisationKind: OrganisationKind?
    /// For candidates and proxies: the candidacy's election.
    public var electionKind: ElectionKind?
    public var territory: String
    public var registeringCommissionId: String?
    public var registeringParentId: String?
    public var tin: String?
    public var displayName: String
    /// For a proxy: its candidate; for a candidate: itself.
    public var candidateId: String?
    public var candidateCampaignId: String?
    public var candidateStatus: String?
    /// For an organisation: its parent (a party branch's party).
    public var organisationParentId: String? = nil
    /// For a proxy: its record's status.
    public var proxyStatus: String? = nil
}

/// A candidate as forms about them need it.
public struct CandidateFacts: Sendable, Hashable {
    public var id: String
    public var partyId: String?
    public var partyParentId: String?
    public var electionKind: ElectionKind
    public var registeringCommissionId: String
    public var registeringParentId: String?
    public var status: String
    public var campaignId: String
}

extension RequestStore {
    public func organisationSender(id: String) -> Query<SenderRecord?> {
        Query("SELECT id, kind, territory_soato, parent_id, tin, name_en FROM organisations WHERE id = \(id) AND active") { (r) throws(StoreError) in
            guard r.count == 1 else { return nil }
            return SenderRecord(
                key: .organisation(try r.string(0, "id")), organisationKind: OrganisationKind(databaseName: try r.string(0, "kind")), electionKind: nil,
                territory: try r.string(0, "territory_soato"), registeringCommissionId: nil, registeringParentId: nil,
                tin: try r.optionalString(0, "tin"), displayName: try r.string(0, "name_en"), candidateId: nil, candidateCampaignId: nil, candidateStatus: nil,
                organisationParentId: try r.optionalString(0, "parent_id"))
        }
    }

    /// A candidate sender (`proxyId` nil) or a proxy sender and its candidate.
    public func personSender(candidateId: String?, proxyId: String?) -> Query<SenderRecord?> {
        Query(
            """
            SELECT c.id AS candidate_id, c.election_kind, c.status, c.campaign_id, o.id AS registering_id, o.parent_id AS registering_parent,
                   o.territory_soato, p.last_name || ' ' || p.first_name AS display_name, x.id AS proxy_id, x.status AS proxy_status
            FROM candidates c JOIN organisations o ON o.id = c.registering_commission_id
            LEFT JOIN proxies x ON x.id = \(proxyId) AND x.candidate_id = c.id
            JOIN people p ON p.id = COALESCE(x.person_id, c.person_id)
            WHERE c.id = COALESCE(\(candidateId), (SELECT candidate_id FROM proxies WHERE id = \(proxyId)))
            """
        ) { (r) throws(StoreError) in
            guard r.count == 1 else { return nil }
            let candidate = try r.string(0, "candidate_id")
            let key: SenderKey
            if proxyId != nil {
                guard let p = try r.optionalString(0, "proxy_id") else { return nil }
                key = .proxy(p)
            } else {
                key = .candidate(candidate)
            }
            return SenderRecord(
                key: key, organisationKind: nil, electionKind: ElectionKind(databaseName: try r.string(0, "election_kind")),
                territory: try r.string(0, "territory_soato"), registeringCommissionId: try r.string(0, "registering_id"),
                registeringParentId: try r.optionalString(0, "registering_parent"), tin: nil, displayName: try r.string(0, "display_name"),
                candidateId: candidate, candidateCampaignId: try r.string(0, "campaign_id"), candidateStatus: try r.string(0, "status"),
                proxyStatus: try r.optionalString(0, "proxy_status"))
        }
    }

    public func candidateFacts(id: String) -> Query<CandidateFacts?> {
        Query(
            """
            SELECT c.id, c.party_id, party.parent_id AS party_parent, c.election_kind, c.registering_commission_id, o.parent_id AS registering_parent,
                   c.status, c.campaign_id
            FROM candidates c JOIN organisations o ON o.id = c.registering_commission_id LEFT JOIN organisations party ON party.id = c.party_id
            WHERE c.id = \(id)
            """
        ) { (r) throws(StoreError) in
            guard r.count == 1, let kind = ElectionKind(databaseName: try r.string(0, "election_kind")) else { return nil }
            return CandidateFacts(
                id: try r.string(0, "id"), partyId: try r.optionalString(0, "party_id"), partyParentId: try r.optionalString(0, "party_parent"),
                electionKind: kind, registeringCommissionId: try r.string(0, "registering_commission_id"),
                registeringParentId: try r.optionalString(0, "registering_parent"), status: try r.string(0, "status"), campaignId: try r.string(0, "campaign_id"))
        }
    }

    /// The proxy's candidate and status.
    public func proxyFacts(id: String) -> Query<(candidateId: String, status: String)?> {
        Query("SELECT candidate_id, status FROM proxies WHERE id = \(id)") { (r) throws(StoreError) in
            r.count == 1 ? (try r.string(0, "candidate_id"), try r.string(0, "status")) : nil
        }
    }

    /// Proxies a candidate has (proposed or registered).
    public func proxyCount(candidateId: String) -> Query<Int> {
        Query("SELECT count(*) AS n FROM proxies WHERE candidate_id = \(candidateId) AND status IN ('proposed', 'registered')") {
            (r) throws(StoreError) in try r.int(0, "n")
        }
    }

    /// Which of `pinfls` sit on an election commission now (a proxy may not).
    public func commissionMembers(pinfls: [String]) -> Query<Set<String>> {
        Query(
            """
            SELECT DISTINCT p.pinfl FROM people p JOIN current_memberships m ON m.person_id = p.id JOIN organisations o ON o.id = m.organisation_id
            WHERE p.pinfl = ANY(\(pinfls)) AND o.kind IN ('central_election_commission', 'karakalpakstan_election_commission',
                                                          'territorial_election_commission', 'district_election_commission')
            """
        ) { (r) throws(StoreError) in Set(try (0..<r.count).map { (i) throws(StoreError) in try r.string(i, "pinfl") }) }
    }

    /// Whether `ancestor` is above `commission` in the tree.
    public func isAbove(_ ancestor: String, _ commission: String) -> Query<Bool> {
        Query(
            """
            WITH RECURSIVE up (id, depth) AS (
              SELECT parent_id, 1 FROM organisations WHERE id = \(commission)
              UNION ALL SELECT o.parent_id, up.depth + 1 FROM organisations o JOIN up ON o.id = up.id WHERE up.depth < 10)
            SELECT EXISTS (SELECT 1 FROM up WHERE id = \(ancestor)) AS above
            """
        ) { (r) throws(StoreError) in try r.bool(0, "above") }
    }

    /// The person whose certificate signed, when it is registered to them and not revoked, and
    /// whether they now hold one of `roles` in `organisationId`.
    public func signer(pinfl: String, certificateSHA256: String, organisationId: String, roles: [Role]) -> Query<(personId: String?, registered: Bool, holdsRole: Bool)> {
        Query(
            """
            SELECT p.id AS person_id,
                   EXISTS (SELECT 1 FROM certificates k WHERE k.sha256 = \(certificateSHA256) AND k.person_id = p.id AND k.revoked_at IS NULL) AS registered,
                   EXISTS (SELECT 1 FROM current_memberships m WHERE m.person_id = p.id AND m.organisation_id = \(organisationId)
                           AND m.role = ANY(\(roles.map(\.databaseName)))) AS holds
            FROM people p WHERE p.pinfl = \(pinfl)
            """
        ) { (r) throws(StoreError) in
            r.count == 1 ? (try r.string(0, "person_id"), try r.bool(0, "registered"), try r.bool(0, "holds")) : (nil, false, false)
        }
    }

    /// Election commissions of `kinds`, for ListReceivers.
    public func commissions(kinds: [OrganisationKind]) -> Query<[(id: String, kind: OrganisationKind, territory: String, nameUz: String, nameEn: String)]> {
        Query(
            """
            SELECT id, kind, territory_soato, name_uz, name_en FROM organisations
            WHERE active AND kind = ANY(\(kinds.map(\.databaseName))) ORDER BY kind_order, territory_soato, id
            """
        ) { (r) throws(StoreError) in
            var out: [(id: String, kind: OrganisationKind, territory: String, nameUz: String, nameEn: String)] = []
            for i in 0..<r.count {
                guard let k = OrganisationKind(databaseName: try r.string(i, "kind")) else { continue }
                out.append((try r.string(i, "id"), k, try r.string(i, "territory_soato"), try r.string(i, "name_uz"), try r.string(i, "name_en")))
            }
            return out
        }
    }

    /// The idempotency key's state without taking it (for a retry to be answered before any
    /// other check).
    public func idempotency(sender: SenderKey, key: String) -> Query<(method: String, requestSHA256: [UInt8], response: [UInt8]?)?> {
        Query("SELECT method, request_sha256, response FROM idempotency_keys WHERE sender_key = \(sender.description) AND key = \(key)") {
            (r) throws(StoreError) in
            guard r.count == 1 else { return nil }
            return (try r.string(0, "method"), try r.bytes(0, "request_sha256"), try r.optionalString(0, "response") == nil ? nil : try r.bytes(0, "response"))
        }
    }
}
