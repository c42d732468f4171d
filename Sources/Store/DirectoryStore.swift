public import Domain

/// How a domain enum is spelled in the database: snake_case of its name.
extension OrganisationKind {
    public var databaseName: String { snakeCase(rawValue) }
    public init?(databaseName: String) {
        guard let value = Self.byDatabaseName[databaseName] else { return nil }
        self = value
    }
    private static let byDatabaseName = Dictionary(uniqueKeysWithValues: allCases.map { ($0.databaseName, $0) })
    /// Position in the listing order (the contract's enum order).
    public var order: Int { Self.allCases.firstIndex(of: self)! + 1 }
}

extension Role {
    public var databaseName: String { snakeCase(rawValue) }
    public init?(databaseName: String) {
        guard let value = Self.byDatabaseName[databaseName] else { return nil }
        self = value
    }
    private static let byDatabaseName = Dictionary(uniqueKeysWithValues: allCases.map { ($0.databaseName, $0) })
}

extension ElectionKind {
    public var databaseName: String { snakeCase(rawValue) }
    public init?(databaseName: String) {
        guard let value = Self.byDatabaseName[databaseName] else { return nil }
        self = value
    }
    private static let byDatabaseName = Dictionary(uniqueKeysWithValues: allCases.map { ($0.databaseName, $0) })
}

func snakeCase(_ s: String) -> String {
    var out = ""
    for ch in s {
        if ch.isUppercase { out += "_" + ch.lowercased() } else { out.append(ch) }
    }
    return out
}

/// A territorial unit.
public struct TerritoryRecord: Sendable, Hashable {
    public var soato: String
    public var level: String
    public var parentSoato: String?
    public var nameUz: String
    public var nameEn: String
}

/// An organisation with its territory.
public struct OrganisationRecord: Sendable, Hashable {
    public var id: String
    public var kind: OrganisationKind
    public var nameUz: String
    public var nameEn: String
    public var tin: String?
    public var territory: TerritoryRecord
    public var parentId: String?
    public var active: Bool
    public var createdAt: Double
}

/// A person's public face: name and role.
public struct MemberRecord: Sendable, Hashable {
    public var personId: String
    public var lastName: String
    public var firstName: String
    public var patronymic: String
    public var role: Role
    public var since: Double
    public var until: Double?
}

/// A candidate (public: name, election, commission, status).
public struct CandidateRecord: Sendable, Hashable {
    public var id: String
    public var personId: String
    public var lastName: String
    public var firstName: String
    public var patronymic: String
    public var electionKind: ElectionKind
    public var registeringCommissionId: String
    public var constituencyNumber: Int
    public var partyId: String?
    public var listPosition: Int
    public var status: String
    public var campaignId: String
    public var decisionId: String?
}

/// A proxy (public: name and status).
public struct ProxyRecord: Sendable, Hashable {
    public var id: String
    public var personId: String
    public var lastName: String
    public var firstName: String
    public var patronymic: String
    public var candidateId: String
    public var status: String
    public var decisionId: String?
}

/// Filters of `listOrganisations`; unset ones match everything.
public struct OrganisationFilter: Sendable, Hashable {
    public var kinds: [OrganisationKind] = []
    public var territoryPrefix = ""
    public var parentId = ""
    public var nameContains = ""
    public var includeInactive = false

    public init() {}

    /// The filter's canonical components, which page tokens are bound to (each one is
    /// length-prefixed in the token's MAC, so no two filters collide).
    public var canonical: [String] {
        ["organisations", kinds.map(\.databaseName).sorted().joined(separator: ","), territoryPrefix, parentId, nameContains, String(includeInactive)]
    }
}

/// The keyset position after which a page starts: the listing order's columns.
public struct OrganisationCursor: Sendable, Hashable {
    public var kindOrder: Int
    public var territorySoato: String
    public var nameUz: String
    public var id: String

    public init(kindOrder: Int, territorySoato: String, nameUz: String, id: String) {
        self.kindOrder = kindOrder
        self.territorySoato = territorySoato
        self.nameUz = nameUz
        self.id = id
    }

    public init(after o: OrganisationRecord) {
        self.init(kindOrder: o.kind.order, territorySoato: o.territory.soato, nameUz: o.nameUz, id: o.id)
    }

    public var fields: [String] { [String(kindOrder), territorySoato, nameUz, id] }

    public init?(fields: [String]) {
        guard fields.count == 4, let k = Int(fields[0]) else { return nil }
        self.init(kindOrder: k, territorySoato: fields[1], nameUz: fields[2], id: fields[3])
    }
}

/// Reads of the directory, as `Query` values to run on a connection or an event loop. Every
/// query is a prepared statement with bound parameters.
public struct DirectoryStore: Sendable {
    private static let organisationColumns: SQL = """
        o.id, o.kind, o.name_uz, o.name_en, o.tin, o.parent_id, o.active,
        extract(epoch FROM o.created_at) AS created_at,
        t.soato, t.level, t.parent_soato, t.name_uz AS territory_name_uz, t.name_en AS territory_name_en
        """

    public init() {}

    public func organisation(id: String) -> Query<OrganisationRecord?> {
        Query("SELECT \(Self.organisationColumns) FROM organisations o JOIN territories t ON t.soato = o.territory_soato WHERE o.id = \(id)") {
            (rows) throws(StoreError) in rows.count == 0 ? nil : try Self.organisation(rows, 0)
        }
    }

    public func organisations(filter: OrganisationFilter, after: OrganisationCursor?, limit: Int) -> Query<[OrganisationRecord]> {
        let kinds: [String]? = filter.kinds.isEmpty ? nil : filter.kinds.map(\.databaseName)
        let name = escapeLike(filter.nameContains)
        let position: SQL = after.map { a in
            "(o.kind_order, o.territory_soato, o.name_uz, o.id) > (\(a.kindOrder), \(a.territorySoato), \(a.nameUz), \(a.id))"
        } ?? "true"
        return Query(
            """
            SELECT \(Self.organisationColumns) FROM organisations o JOIN territories t ON t.soato = o.territory_soato
            WHERE (\(kinds) IS NULL OR o.kind = ANY(\(kinds)))
              AND (\(filter.territoryPrefix) = '' OR o.territory_soato LIKE \(filter.territoryPrefix) || '%')
              AND (\(filter.parentId) = '' OR o.parent_id = \(filter.parentId))
              AND (\(name) = '' OR o.name_uz ILIKE '%' || \(name) || '%' ESCAPE '\\' OR o.name_en ILIKE '%' || \(name) || '%' ESCAPE '\\')
              AND (\(filter.includeInactive) OR o.active)
              AND \(position)
            ORDER BY o.kind_order, o.territory_soato, o.name_uz, o.id
            LIMIT \(limit)
            """
        ) { (rows) throws(StoreError) in try (0..<rows.count).map { (i) throws(StoreError) in try Self.organisation(rows, i) } }
    }

    /// Every election commission, for building the tree.
    public func commissions() -> Query<[OrganisationRecord]> {
        var filter = OrganisationFilter()
        filter.kinds = OrganisationKind.allCases.filter(\.isElectionCommission)
        return organisations(filter: filter, after: nil, limit: 10_000)
    }

    /// Current officers (chairperson, deputy chairpersons, secretary) of every commission.
    public func officers() -> Query<[String: [MemberRecord]]> {
        Query(
            """
            SELECT m.organisation_id, \(Self.memberColumns)
            FROM memberships m JOIN people p ON p.id = m.person_id
            JOIN organisations o ON o.id = m.organisation_id
            WHERE esaylov_current(m.since, m.until) AND m.role IN ('chairperson', 'deputy_chairperson', 'secretary')
              AND o.kind IN ('central_election_commission', 'karakalpakstan_election_commission',
                             'territorial_election_commission', 'district_election_commission')
            ORDER BY m.organisation_id, array_position(ARRAY['chairperson', 'deputy_chairperson', 'secretary'], m.role), p.last_name, p.id
            """
        ) { (rows) throws(StoreError) in
            var out: [String: [MemberRecord]] = [:]
            for i in 0..<rows.count { out[try rows.string(i, "organisation_id"), default: []].append(try Self.member(rows, i)) }
            return out
        }
    }

    private static let memberColumns: SQL = """
        m.person_id, p.last_name, p.first_name, p.patronymic, m.role,
        extract(epoch FROM m.since) AS since, extract(epoch FROM m.until) AS until
        """

    public func members(
        organisationId: String, roles: [Role], includePast: Bool, after: (Int, String, String)?, limit: Int
    ) -> Query<[MemberRecord]> {
        let roleList: [String]? = roles.isEmpty ? nil : roles.map(\.databaseName)
        let roleOrder: SQL = "array_position(ARRAY['head', 'chairperson', 'deputy_chairperson', 'secretary', 'member', 'clerk', 'operator', 'auditor'], m.role)"
        let position: SQL = after.map { a in "(\(roleOrder), p.last_name, m.person_id) > (\(a.0), \(a.1), \(a.2))" } ?? "true"
        return Query(
            """
            SELECT \(Self.memberColumns), \(roleOrder) AS role_order
            FROM memberships m JOIN people p ON p.id = m.person_id
            WHERE m.organisation_id = \(organisationId)
              AND (\(roleList) IS NULL OR m.role = ANY(\(roleList)))
              AND (\(includePast) OR esaylov_current(m.since, m.until))
              AND \(position)
            ORDER BY role_order, p.last_name, m.person_id
            LIMIT \(limit)
            """
        ) { (rows) throws(StoreError) in try (0..<rows.count).map { (i) throws(StoreError) in try Self.member(rows, i) } }
    }

    public func territories(parent: String?) -> Query<[TerritoryRecord]> {
        Query(
            """
            SELECT soato, level, parent_soato, name_uz AS territory_name_uz, name_en AS territory_name_en FROM territories
            WHERE (\(parent) IS NULL AND level = 'region') OR parent_soato = \(parent)
            ORDER BY soato
            """
        ) { (rows) throws(StoreError) in try (0..<rows.count).map { (i) throws(StoreError) in try Self.territory(rows, i) } }
    }

    public func territory(soato: String) -> Query<TerritoryRecord?> {
        Query(
            "SELECT soato, level, parent_soato, name_uz AS territory_name_uz, name_en AS territory_name_en FROM territories WHERE soato = \(soato)"
        ) { (rows) throws(StoreError) in rows.count == 0 ? nil : try Self.territory(rows, 0) }
    }

    private static let candidateColumns: SQL = """
        c.id, c.person_id, p.last_name, p.first_name, p.patronymic, c.election_kind, c.registering_commission_id,
        c.constituency_number, c.party_id, c.list_position, c.status, c.campaign_id, c.decision_id
        """

    public func candidates(
        commissionId: String, partyId: String, statuses: [String], after: String?, limit: Int
    ) -> Query<[CandidateRecord]> {
        let statusList: [String]? = statuses.isEmpty ? nil : statuses
        return Query(
            """
            SELECT \(Self.candidateColumns) FROM candidates c JOIN people p ON p.id = c.person_id
            WHERE (\(commissionId) = '' OR c.registering_commission_id = \(commissionId)) AND (\(partyId) = '' OR c.party_id = \(partyId))
              AND (\(statusList) IS NULL OR c.status = ANY(\(statusList))) AND (\(after) IS NULL OR c.id > \(after))
            ORDER BY c.id LIMIT \(limit)
            """
        ) { (rows) throws(StoreError) in try (0..<rows.count).map { (i) throws(StoreError) in try Self.candidate(rows, i) } }
    }

    public func candidate(id: String) -> Query<CandidateRecord?> {
        Query("SELECT \(Self.candidateColumns) FROM candidates c JOIN people p ON p.id = c.person_id WHERE c.id = \(id)") {
            (rows) throws(StoreError) in rows.count == 0 ? nil : try Self.candidate(rows, 0)
        }
    }

    public func proxies(candidateId: String, includeInactive: Bool) -> Query<[ProxyRecord]> {
        Query(
            """
            SELECT x.id, x.person_id, p.last_name, p.first_name, p.patronymic, x.candidate_id, x.status, x.decision_id
            FROM proxies x JOIN people p ON p.id = x.person_id
            WHERE x.candidate_id = \(candidateId) AND (\(includeInactive) OR x.status IN ('proposed', 'registered'))
            ORDER BY x.id
            """
        ) { (rows) throws(StoreError) in
            try (0..<rows.count).map { (i) throws(StoreError) in
                ProxyRecord(
                    id: try rows.string(i, "id"), personId: try rows.string(i, "person_id"), lastName: try rows.string(i, "last_name"),
                    firstName: try rows.string(i, "first_name"), patronymic: try rows.string(i, "patronymic"),
                    candidateId: try rows.string(i, "candidate_id"), status: try rows.string(i, "status"),
                    decisionId: try rows.optionalString(i, "decision_id"))
            }
        }
    }

    // MARK: rows

    private static func territory(_ rows: Rows, _ i: Int) throws(StoreError) -> TerritoryRecord {
        TerritoryRecord(
            soato: try rows.string(i, "soato"), level: try rows.string(i, "level"), parentSoato: try rows.optionalString(i, "parent_soato"),
            nameUz: try rows.string(i, "territory_name_uz"), nameEn: try rows.string(i, "territory_name_en"))
    }

    private static func organisation(_ rows: Rows, _ i: Int) throws(StoreError) -> OrganisationRecord {
        guard let kind = OrganisationKind(databaseName: try rows.string(i, "kind")) else {
            throw StoreError(.decoding, reason: "unknown organisation kind")
        }
        return OrganisationRecord(
            id: try rows.string(i, "id"), kind: kind, nameUz: try rows.string(i, "name_uz"), nameEn: try rows.string(i, "name_en"),
            tin: try rows.optionalString(i, "tin"), territory: try Self.territory(rows, i), parentId: try rows.optionalString(i, "parent_id"),
            active: try rows.bool(i, "active"), createdAt: try rows.epoch(i, "created_at") ?? 0)
    }

    private static func member(_ rows: Rows, _ i: Int) throws(StoreError) -> MemberRecord {
        guard let role = Role(databaseName: try rows.string(i, "role")) else { throw StoreError(.decoding, reason: "unknown role") }
        return MemberRecord(
            personId: try rows.string(i, "person_id"), lastName: try rows.string(i, "last_name"), firstName: try rows.string(i, "first_name"),
            patronymic: try rows.string(i, "patronymic"), role: role, since: try rows.epoch(i, "since") ?? 0, until: try rows.epoch(i, "until"))
    }

    private static func candidate(_ rows: Rows, _ i: Int) throws(StoreError) -> CandidateRecord {
        guard let kind = ElectionKind(databaseName: try rows.string(i, "election_kind")) else {
            throw StoreError(.decoding, reason: "unknown election kind")
        }
        return CandidateRecord(
            id: try rows.string(i, "id"), personId: try rows.string(i, "person_id"), lastName: try rows.string(i, "last_name"),
            firstName: try rows.string(i, "first_name"), patronymic: try rows.string(i, "patronymic"), electionKind: kind,
            registeringCommissionId: try rows.string(i, "registering_commission_id"),
            constituencyNumber: try rows.int(i, "constituency_number"), partyId: try rows.optionalString(i, "party_id"),
            listPosition: try rows.int(i, "list_position"), status: try rows.string(i, "status"),
            campaignId: try rows.string(i, "campaign_id"), decisionId: try rows.optionalString(i, "decision_id"))
    }
}

/// Escapes LIKE's wildcards so that user text matches literally (with ESCAPE '\').
func escapeLike(_ s: String) -> String {
    var out = ""
    for ch in s {
        if ch == "\\" || ch == "%" || ch == "_" { out.append("\\") }
        out.append(ch)
    }
    return out
}

/// Operator writes to the directory (through `esaylovctl`); values are validated by the
/// domain rules before they get here, and constraints check them again.
public struct DirectoryWrites: Sendable {
    public init() {}

    public func addOrganisation(
        _ c: Connection, id: String, kind: OrganisationKind, nameUz: String, nameEn: String, tin: String?,
        territory: String, parentId: String?
    ) throws(StoreError) {
        try c.query(
            """
            INSERT INTO organisations (id, kind, kind_order, name_uz, name_en, tin, territory_soato, parent_id)
            VALUES (\(id), \(kind.databaseName), \(kind.order), \(nameUz), \(nameEn), \(tin), \(territory), \(parentId))
            """)
    }

    public func addPerson(
        _ c: Connection, id: String, pinfl: String, lastName: String, firstName: String, patronymic: String, phone: String?
    ) throws(StoreError) {
        try c.query(
            """
            INSERT INTO people (id, pinfl, last_name, first_name, patronymic, phone)
            VALUES (\(id), \(pinfl), \(lastName), \(firstName), \(patronymic), \(phone))
            """)
    }

    public func assignRole(_ c: Connection, organisationId: String, personId: String, role: Role) throws(StoreError) {
        try c.query("INSERT INTO memberships (organisation_id, person_id, role) VALUES (\(organisationId), \(personId), \(role.databaseName))")
    }
}

extension DirectoryWrites {
    /// Records an EDS certificate for a person (acting for `organisationId` when given).
    public func registerCertificate(
        _ c: Connection, issuer: String, serial: String, sha256: String, subjectPinfl: String, subjectTin: String?,
        notBefore: Double, notAfter: Double, personId: String, organisationId: String?
    ) throws(StoreError) {
        try c.query(
            """
            INSERT INTO certificates (issuer, serial, sha256, subject_pinfl, subject_tin, not_before, not_after, person_id, organisation_id)
            VALUES (\(issuer), \(serial), \(sha256), \(subjectPinfl), \(subjectTin), to_timestamp(\(notBefore)), to_timestamp(\(notAfter)),
                    \(personId), \(organisationId))
            """)
    }

    /// The PINFL of a person and the TIN of an organisation, for matching a certificate.
    public func identity(_ c: Connection, personId: String, organisationId: String?) throws(StoreError) -> (pinfl: String?, tin: String??) {
        let p = try c.query("SELECT pinfl FROM people WHERE id = \(personId)")
        let pinfl = p.count == 1 ? try p.string(0, "pinfl") : nil
        guard let organisationId else { return (pinfl, .none) }
        let o = try c.query("SELECT tin FROM organisations WHERE id = \(organisationId)")
        return (pinfl, o.count == 1 ? .some(try o.optionalString(0, "tin")) : .none)
    }
}

extension DirectoryWrites {
    /// Changes the given fields of an organisation (nil: unchanged; "" clears tin or parent).
    /// Returns false when no organisation has that id.
    public func updateOrganisation(
        _ c: Connection, id: String, nameUz: String?, nameEn: String?, tin: String?, parentId: String?, active: Bool?
    ) throws(StoreError) -> Bool {
        try c.query(
            """
            UPDATE organisations SET
              name_uz = coalesce(\(nameUz), name_uz),
              name_en = coalesce(\(nameEn), name_en),
              tin = CASE WHEN \(tin) IS NULL THEN tin WHEN \(tin) = '' THEN NULL ELSE \(tin) END,
              parent_id = CASE WHEN \(parentId) IS NULL THEN parent_id WHEN \(parentId) = '' THEN NULL ELSE \(parentId) END,
              active = coalesce(\(active), active)
            WHERE id = \(id)
            """).affected == 1
    }
}
