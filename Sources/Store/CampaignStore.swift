public import Domain
import Foundation

/// A campaign as stored.
public struct CampaignRecord: Sendable, Hashable {
    public var id: String
    public var name: String
    public var electionKinds: [ElectionKind]
    public var announcedOn: Day
    public var electionDay: Day
    public var closed: Bool
    public var catalogueVersion: Int
    public var maxAttachmentBytes: Int
    public var maxAttachmentsPerRequest: Int
    public var maxRequestAttachmentBytes: Int
    public var forbidDrafterApproving: Bool
}

/// The SQL of campaigns and their catalogue versions.
public struct CampaignStore: Sendable {
    public init() {}

    static let columns: SQL = """
        id, name, array_to_string(election_kinds, ',') AS election_kinds, announced_on::text AS announced_on,
        election_day::text AS election_day, closed_at IS NOT NULL AS closed, catalogue_version, max_attachment_bytes,
        max_attachments_per_request, max_request_attachment_bytes, forbid_drafter_approving
        """

    static func campaign(_ r: Rows, _ i: Int) throws(StoreError) -> CampaignRecord {
        guard let a = Day(try r.string(i, "announced_on")), let e = Day(try r.string(i, "election_day")) else {
            throw StoreError(.decoding, reason: "campaign dates are not days")
        }
        let kinds = try r.string(i, "election_kinds").split(separator: ",").compactMap { ElectionKind(databaseName: String($0)) }
        return CampaignRecord(
            id: try r.string(i, "id"), name: try r.string(i, "name"), electionKinds: kinds, announcedOn: a, electionDay: e,
            closed: try r.bool(i, "closed"), catalogueVersion: try r.int(i, "catalogue_version"),
            maxAttachmentBytes: try r.int(i, "max_attachment_bytes"), maxAttachmentsPerRequest: try r.int(i, "max_attachments_per_request"),
            maxRequestAttachmentBytes: try r.int(i, "max_request_attachment_bytes"), forbidDrafterApproving: try r.bool(i, "forbid_drafter_approving"))
    }

    public func campaign(id: String) -> Query<CampaignRecord?> {
        Query("SELECT \(Self.columns) FROM campaigns WHERE id = \(id)") { (r) throws(StoreError) in r.count == 0 ? nil : try Self.campaign(r, 0) }
    }

    /// The campaign whose election is nearest ahead (or latest past) among those not closed.
    public func current() -> Query<CampaignRecord?> {
        Query(
            """
            SELECT \(Self.columns) FROM campaigns WHERE closed_at IS NULL
            ORDER BY (election_day < (now() AT TIME ZONE '+05')::date), abs(election_day - (now() AT TIME ZONE '+05')::date), id LIMIT 1
            """
        ) { (r) throws(StoreError) in r.count == 0 ? nil : try Self.campaign(r, 0) }
    }

    /// Newest election first, after `(electionDay, id)`.
    public func campaigns(after: (String, String)?, limit: Int) -> Query<[CampaignRecord]> {
        let position: SQL = after.map { "(election_day, id) < (\($0.0)::date, \($0.1))" } ?? "true"
        return Query("SELECT \(Self.columns) FROM campaigns WHERE \(position) ORDER BY election_day DESC, id DESC LIMIT \(limit)") {
            (r) throws(StoreError) in try (0..<r.count).map { (i) throws(StoreError) in try Self.campaign(r, i) }
        }
    }

    /// The catalogue definition (JSON) of a campaign's version.
    public func catalogue(campaignId: String, version: Int) -> Query<String?> {
        Query("SELECT definition::text AS d FROM campaign_catalogues WHERE campaign_id = \(campaignId) AND version = \(Int32(version))") {
            (r) throws(StoreError) in r.count == 0 ? nil : try r.string(0, "d")
        }
    }

    public func create(
        _ c: Connection, id: String, name: String, elections: [ElectionKind], announced: Day, election: Day, catalogue: String
    ) throws(StoreError) {
        try c.query(
            """
            INSERT INTO campaigns (id, name, election_kinds, announced_on, election_day, catalogue_version)
            VALUES (\(id), \(name), \(elections.map(\.databaseName)), \(announced.description)::date, \(election.description)::date, 1)
            """)
        try c.query("INSERT INTO campaign_catalogues (campaign_id, version, definition, note) VALUES (\(id), 1, \(catalogue)::jsonb, 'initial')")
    }

    /// Adds a catalogue version and makes it current; returns its number.
    public func addCatalogue(_ c: Connection, campaignId: String, definition: String, note: String) throws(StoreError) -> Int {
        let v = try c.query("SELECT catalogue_version + 1 AS v FROM campaigns WHERE id = \(campaignId) FOR UPDATE")
        guard v.count == 1 else { throw StoreError(.foreignKeyViolation, constraint: "campaign", reason: "no such campaign") }
        let version = try v.int(0, "v")
        try c.query(
            """
            INSERT INTO campaign_catalogues (campaign_id, version, definition, note)
            VALUES (\(campaignId), \(Int32(version)), \(definition)::jsonb, \(note))
            """)
        try c.query("UPDATE campaigns SET catalogue_version = \(Int32(version)) WHERE id = \(campaignId)")
        return version
    }

    /// Moves a campaign's days A and E.
    public func move(_ c: Connection, campaignId: String, announced: Day, election: Day) throws(StoreError) -> Bool {
        try c.query(
            """
            UPDATE campaigns SET announced_on = \(announced.description)::date, election_day = \(election.description)::date
            WHERE id = \(campaignId)
            """
        ).affected == 1
    }

    public func setSettings(
        _ c: Connection, campaignId: String, maxAttachmentBytes: Int?, maxAttachments: Int?, maxRequestBytes: Int?, forbidDrafterApproving: Bool?, closed: Bool?
    ) throws(StoreError) -> Bool {
        try c.query(
            """
            UPDATE campaigns SET
              max_attachment_bytes = COALESCE(\(maxAttachmentBytes), max_attachment_bytes),
              max_attachments_per_request = COALESCE(\(maxAttachments.map { Int32(clamping: $0) }), max_attachments_per_request),
              max_request_attachment_bytes = COALESCE(\(maxRequestBytes), max_request_attachment_bytes),
              forbid_drafter_approving = COALESCE(\(forbidDrafterApproving), forbid_drafter_approving),
              closed_at = CASE WHEN \(closed) IS NULL THEN closed_at WHEN \(closed) THEN COALESCE(closed_at, now()) ELSE NULL END
            WHERE id = \(campaignId)
            """
        ).affected == 1
    }
}

extension Catalogue {
    /// The stored form: JSON, keys sorted, so that the same catalogue is the same text.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// A stored or operator-written definition.
    public init(json: String) throws(StoreError) {
        do { self = try JSONDecoder().decode(Catalogue.self, from: Data(json.utf8)) } catch {
            throw StoreError(.checkViolation, constraint: "catalogue_definition", reason: "the catalogue does not decode: \(error)")
        }
    }
}

extension Seed {
    /// The demo campaign: the Legislative Chamber and local councils elected together (as in
    /// 2024), announced three days before the seed runs and electing 80 days after, so that
    /// every window but those "before the campaign" is open on the day it runs. A later load
    /// moves it to that day again.
    static func demoCampaign(_ c: Connection, today: Day) throws(StoreError) {
        let id = "demo"
        let a = today.adding(days: -3), e = today.adding(days: 80)
        let name = "Demo: Legislative Chamber and local councils, \(e)"
        if try c.run(CampaignStore().campaign(id: id)) == nil {
            try CampaignStore().create(
                c, id: id, name: name, elections: [.legislativeChamber, .jokargyKenes, .regionalCouncil, .districtCouncil], announced: a, election: e,
                catalogue: Catalogue.standard.json)
            try AuditLog().append(c, actor: .operatorTool, action: "AUDIT_ACTION_CAMPAIGN_CHANGED", subjectKind: "campaign", subjectId: id,
                                  facts: ["change": "created", "announced_on": a.description, "election_day": e.description])
        } else if try c.query("SELECT 1 FROM campaigns WHERE id = \(id) AND (announced_on, election_day) <> (\(a.description)::date, \(e.description)::date)").count == 1 {
            _ = try CampaignStore().move(c, campaignId: id, announced: a, election: e)
            try c.query("UPDATE campaigns SET name = \(name) WHERE id = \(id)")
            try AuditLog().append(c, actor: .operatorTool, action: "AUDIT_ACTION_CAMPAIGN_CHANGED", subjectKind: "campaign", subjectId: id,
                                  facts: ["change": "moved", "announced_on": a.description, "election_day": e.description])
        }
        // The demo follows the standard catalogue of this build.
        let standard = Catalogue.standard.json
        if try c.query(
            "SELECT 1 FROM campaigns k JOIN campaign_catalogues v ON v.campaign_id = k.id AND v.version = k.catalogue_version WHERE k.id = \(id) AND v.definition <> \(standard)::jsonb"
        ).count == 1 {
            let v = try CampaignStore().addCatalogue(c, campaignId: id, definition: standard, note: "the standard catalogue of this build")
            try AuditLog().append(c, actor: .operatorTool, action: "AUDIT_ACTION_CAMPAIGN_CHANGED", subjectKind: "campaign", subjectId: id,
                                  facts: ["change": "catalogue", "catalogue_version": String(v)])
        }
        try c.query("UPDATE candidates SET campaign_id = \(id) WHERE campaign_id = '' AND id = ANY(\(candidates.map(\.id)))")
    }
}
