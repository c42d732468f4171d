public import ESaylovAPI
public import RPC
public import Store
import Domain

/// The longest values `esaylov.v1.DirectoryService` accepts, checked before anything reaches
/// SQL (INVALID_ARGUMENT naming the field otherwise); documented in `directory.proto`.
enum FieldLimits {
    /// Organisation, person, candidate and campaign ids (the schema's own limit is 64).
    static let id = 64
    /// A SOATO code has at most 10 digits.
    static let soato = 10
    static let searchText = 100
    static let pageToken = 512
    /// Entries of a repeated filter (kinds, roles, statuses).
    static let filterValues = 32
}

/// `esaylov.v1.DirectoryService`, the public part: organisations, the commission tree,
/// members' names and roles, candidates, proxies and territories; and `GetPerson`, personal
/// data (cl. 13), and `ListCertificates`, behind their permission rule.
public struct DirectoryService: Esaylov_V1_DirectoryService {
    let database: Database
    /// The public part reads from the hot standby when there is one (it may lag a second);
    /// personal records, like everything else, from the primary.
    let reads: ReadReplicas
    let tokens: PageTokens
    let store = DirectoryStore()

    /// The deepest commission tree served (the law's is 3: CEC, territorial, district).
    static let maxTreeDepth = 16

    public init(database: Database, tokens: PageTokens, reads: ReadReplicas? = nil) {
        self.database = database
        self.reads = reads ?? ReadReplicas(primary: database)
        self.tokens = tokens
    }

    /// The record with `id` (a required field); NOT_FOUND when there is none.
    private func byID<Record>(
        _ context: ServerContext, _ id: String, field: String, noun: String, _ query: (String) -> Query<Record?>
    ) async throws(RPCError) -> Record {
        try requireField(id, field)
        try limit(id, field, FieldLimits.id)
        guard let record = try await reads.readMayLag(query(id), for: context) else { throw RPCError(code: .notFound, message: "no \(noun) has id \(id)") }
        return record
    }

    /// Fails with NOT_FOUND when `exists` is false.
    private func found(_ exists: Bool, _ message: @autoclosure () -> String) throws(RPCError) {
        if !exists { throw RPCError(code: .notFound, message: message()) }
    }

    public func getOrganisation(request: Esaylov_V1_GetOrganisationRequest, context: ServerContext) async throws -> Esaylov_V1_Organisation {
        try await byID(context, request.organisationId, field: "organisation_id", noun: "organisation", store.organisation(id:)).wire
    }

    public func listOrganisations(
        request: Esaylov_V1_ListOrganisationsRequest, context: ServerContext
    ) async throws -> Esaylov_V1_ListOrganisationsResponse {
        try limit(request.kinds, "kinds", FieldLimits.filterValues)
        try limit(request.territorySoato, "territory_soato", FieldLimits.soato)
        try limit(request.parentId, "parent_id", FieldLimits.id)
        try limit(request.nameContains, "name_contains", FieldLimits.searchText)
        var filter = OrganisationFilter()
        for (i, k) in request.kinds.enumerated() {
            guard let kind = OrganisationKind(k) else {
                throw invalid("kinds[\(i)]", "must be a known organisation kind, not \(k.rawValue)")
            }
            filter.kinds.append(kind)
        }
        if !request.territorySoato.isEmpty {
            do throws(DomainViolation) { filter.territoryPrefix = try SOATO(request.territorySoato, field: "territory_soato").value } catch { throw invalid(error) }
        }
        filter.parentId = request.parentId
        filter.nameContains = request.nameContains
        filter.includeInactive = request.includeInactive
        let (limit, after) = try tokens.page(request.page, filter: filter.canonical, fields: 4, OrganisationCursor.init(fields:))
        let rows = try await reads.readMayLag(store.organisations(filter: filter, after: after, limit: limit + 1), for: context)
        var response = Esaylov_V1_ListOrganisationsResponse()
        let (shown, last) = pageOf(rows, limit)
        if let last {
            response.page = pageInfo(tokens.encode(filter: filter.canonical, fields: OrganisationCursor(after: last).fields))
        }
        response.organisations = shown.map(\.wire)
        return response
    }

    public func getCommissionTree(
        request: Esaylov_V1_GetCommissionTreeRequest, context: ServerContext
    ) async throws -> Esaylov_V1_CommissionTree {
        guard request.depth >= 0 else { throw invalid("depth", "must not be negative") }
        try limit(request.rootCommissionId, "root_commission_id", FieldLimits.id)
        let rootId = request.rootCommissionId.isEmpty ? "cec" : request.rootCommissionId
        async let rootRead = reads.readMayLag(store.organisation(id: rootId), for: context)
        async let commissionsRead = reads.readMayLag(store.commissions(), for: context)
        async let officersRead = reads.readMayLag(store.officers(), for: context)
        let (root, commissions, officers) = try await (rootRead, commissionsRead, officersRead)
        guard let root else { throw RPCError(code: .notFound, message: "no organisation has id \(rootId)") }
        guard root.kind.isElectionCommission else {
            throw RPCError(
                code: .failedPrecondition, message: "\(rootId) is not an election commission",
                details: [.preconditionViolation(type: "KIND", subject: "organisation:\(rootId)", description: "the root must be an election commission")])
        }
        let children = Dictionary(grouping: commissions, by: { $0.parentId ?? "" })
        // The schema keeps parent chains acyclic and at most 16 deep; the walk does not trust
        // that: it never enters a commission twice and stops at that depth.
        var visited: Set<String> = []
        func tree(_ o: OrganisationRecord, level: Int) -> Esaylov_V1_CommissionTree {
            visited.insert(o.id)
            var t = Esaylov_V1_CommissionTree()
            t.commission = o.wire
            t.officers = (officers[o.id] ?? []).map(\.wire)
            if (request.depth == 0 || level < request.depth) && level < Self.maxTreeDepth {
                t.children = (children[o.id] ?? []).filter { !visited.contains($0.id) }.map { tree($0, level: level + 1) }
            }
            return t
        }
        return tree(root, level: 0)
    }

    public func listMembers(request: Esaylov_V1_ListMembersRequest, context: ServerContext) async throws -> Esaylov_V1_ListMembersResponse {
        try requireField(request.organisationId, "organisation_id")
        try limit(request.organisationId, "organisation_id", FieldLimits.id)
        try limit(request.roles, "roles", FieldLimits.filterValues)
        var roles: [Role] = []
        for (i, r) in request.roles.enumerated() {
            guard let role = Role(r) else { throw invalid("roles[\(i)]", "must be a known role") }
            roles.append(role)
        }
        let filter = ["members", request.organisationId, roles.map(\.rawValue).sorted().joined(separator: ","), String(request.includePast)]
        let (limit, after) = try tokens.page(request.page, filter: filter, fields: 3) { f -> (Int, String, String)? in
            Int(f[0]).map { ($0, f[1], f[2]) }
        }
        async let existsRead = reads.readMayLag(store.organisation(id: request.organisationId).map { $0 != nil }, for: context)
        async let membersRead = reads.readMayLag(
            store.members(organisationId: request.organisationId, roles: roles, includePast: request.includePast, after: after, limit: limit + 1),
            for: context)
        let (exists, rows) = try await (existsRead, membersRead)
        try found(exists, "no organisation has id \(request.organisationId)")
        var response = Esaylov_V1_ListMembersResponse()
        let (shown, last) = pageOf(rows, limit)
        if let last {
            let order = Role.allCases.firstIndex(of: last.role)! + 1
            response.page = pageInfo(tokens.encode(filter: filter, fields: [String(order), last.lastName, last.personId]))
        }
        response.members = shown.map(\.wire)
        return response
    }

    public func listCandidates(
        request: Esaylov_V1_ListCandidatesRequest, context: ServerContext
    ) async throws -> Esaylov_V1_ListCandidatesResponse {
        guard !request.commissionId.isEmpty || !request.partyId.isEmpty else {
            throw invalid("commission_id", "give commission_id, party_id or both")
        }
        try limit(request.commissionId, "commission_id", FieldLimits.id)
        try limit(request.partyId, "party_id", FieldLimits.id)
        try limit(request.campaignId, "campaign_id", FieldLimits.id)
        try limit(request.statuses, "statuses", FieldLimits.filterValues)
        var statuses: [String] = []
        for (i, s) in request.statuses.enumerated() {
            guard let name = candidateStatuses.first(where: { $0.1 == s })?.0 else { throw invalid("statuses[\(i)]", "must be a known status") }
            statuses.append(name)
        }
        let filter = ["candidates", request.commissionId, request.partyId, statuses.sorted().joined(separator: ",")]
        let (limit, after) = try tokens.page(request.page, filter: filter, fields: 1) { $0.first }
        async let rowsRead = reads.readMayLag(
            store.candidates(commissionId: request.commissionId, partyId: request.partyId, statuses: statuses, after: after, limit: limit + 1),
            for: context)
        for id in [request.commissionId, request.partyId] where !id.isEmpty {
            try found(try await reads.readMayLag(store.organisation(id: id), for: context) != nil, "the commission or party given does not exist")
        }
        let rows = try await rowsRead
        var response = Esaylov_V1_ListCandidatesResponse()
        let (shown, last) = pageOf(rows, limit)
        if let last { response.page = pageInfo(tokens.encode(filter: filter, fields: [last.id])) }
        response.candidates = shown.map(\.wire)
        return response
    }

    public func getCandidate(request: Esaylov_V1_GetCandidateRequest, context: ServerContext) async throws -> Esaylov_V1_Candidate {
        try await byID(context, request.candidateId, field: "candidate_id", noun: "candidate", store.candidate(id:)).wire
    }

    public func listProxies(request: Esaylov_V1_ListProxiesRequest, context: ServerContext) async throws -> Esaylov_V1_ListProxiesResponse {
        try requireField(request.candidateId, "candidate_id")
        try limit(request.candidateId, "candidate_id", FieldLimits.id)
        async let existsRead = reads.readMayLag(store.candidate(id: request.candidateId).map { $0 != nil }, for: context)
        async let proxiesRead = reads.readMayLag(store.proxies(candidateId: request.candidateId, includeInactive: request.includeInactive), for: context)
        let (exists, proxies) = try await (existsRead, proxiesRead)
        try found(exists, "no candidate has id \(request.candidateId)")
        var response = Esaylov_V1_ListProxiesResponse()
        response.proxies = proxies.map(\.wire)
        return response
    }

    public func listTerritories(
        request: Esaylov_V1_ListTerritoriesRequest, context: ServerContext
    ) async throws -> Esaylov_V1_ListTerritoriesResponse {
        try limit(request.parentSoato, "parent_soato", FieldLimits.soato)
        var parent: String?
        if !request.parentSoato.isEmpty {
            do throws(DomainViolation) { parent = try SOATO(request.parentSoato, field: "parent_soato").value } catch { throw invalid(error) }
        }
        async let rowsRead = reads.readMayLag(store.territories(parent: parent), for: context)
        if let parent {
            try found(try await reads.readMayLag(store.territory(soato: parent), for: context) != nil, "no territory has SOATO \(request.parentSoato)")
        }
        var response = Esaylov_V1_ListTerritoriesResponse()
        response.territories = try await rowsRead.map(\.wire)
        return response
    }

    /// Personal data (cl. 13): the person themself, the commission that handles them (registers
    /// them as candidate or proxy, or seats them), and operators. Every read is an audit event,
    /// in the same transaction as the read.
    public func getPerson(request: Esaylov_V1_GetPersonRequest, context: ServerContext) async throws -> Esaylov_V1_Person {
        let principal = try context.principal()
        guard request.personId.isEmpty != request.pinfl.isEmpty else { throw invalid("person_id", "exactly one of person_id and pinfl must be set") }
        try limit(request.personId, "person_id", FieldLimits.id)
        if !request.pinfl.isEmpty {
            do throws(DomainViolation) { _ = try PINFL(request.pinfl, field: "pinfl") } catch { throw invalid(error) }
        }
        let id = request.personId.isEmpty ? nil : request.personId
        let pinfl = request.pinfl.isEmpty ? nil : request.pinfl
        let permissions = principal.permissions
        let operatorReads = principal.roles.contains(.operator)
        let commission = permissions.contains(.reviewRequests) ? principal.organisationId : nil
        let actor = principal.auditActor
        let me = principal.personId
        let rule = PermissionRules.personalRecords
        let outcome = try await database.transaction(for: context) { (c) throws(StoreError) -> Result<PersonRecord, RPCError> in
            let found = try AuthStore().person(c, id: id, pinfl: pinfl, commission: commission)
            guard let found else {
                // Without the right to read others' records, an unknown person looks like a refused one.
                return .failure(operatorReads || commission != nil
                    ? RPCError(code: .notFound, message: "no person has that \(id != nil ? "id" : "PINFL")")
                    : PermissionRules.denied(rule, "the record is not the caller's"))
            }
            guard found.id == me || operatorReads || found.handledByReaderCommission else {
                return .failure(PermissionRules.denied(rule, "the record is neither the caller's nor handled by the caller's commission"))
            }
            try AuditLog().append(c, actor: actor, action: "AUDIT_ACTION_PERSONAL_DATA_READ", subjectKind: "person", subjectId: found.id,
                                  facts: ["method": "GetPerson"])
            return .success(found)
        }
        let p = try outcome.get()
        var out = Esaylov_V1_Person()
        out.id = p.id
        out.pinfl = p.pinfl
        var name = Esaylov_V1_PersonName()
        name.lastName = p.lastName
        name.firstName = p.firstName
        name.patronymic = p.patronymic
        out.name = name
        out.phone = p.phone ?? ""
        if let b = p.birthDate {
            var d = Esaylov_V1_CalendarDate()
            d.year = Int32(b.year)
            d.month = Int32(b.month)
            d.day = Int32(b.day)
            out.birthDate = d
        }
        out.roles = p.roles.map { r in
            var a = Esaylov_V1_RoleAssignment()
            a.organisationId = r.organisationId
            a.organisationName = r.organisationName
            a.role = r.role.wire
            return a
        }
        return out
    }

    /// Personal data (cl. 13): a person's certificates to that person, an organisation's to
    /// its head, and either to operators (at most 500, newest first). Each read is an audit event.
    public func listCertificates(
        request: Esaylov_V1_ListCertificatesRequest, context: ServerContext
    ) async throws -> Esaylov_V1_ListCertificatesResponse {
        let principal = try context.principal()
        guard request.personId.isEmpty != request.organisationId.isEmpty else {
            throw invalid("person_id", "exactly one of person_id and organisation_id must be set")
        }
        try limit(request.personId, "person_id", FieldLimits.id)
        try limit(request.organisationId, "organisation_id", FieldLimits.id)
        let person = request.personId.isEmpty ? nil : request.personId
        let organisation = request.organisationId.isEmpty ? nil : request.organisationId
        let allowed = principal.roles.contains(.operator)
            || (person != nil && person == principal.personId)
            || (organisation != nil && organisation == principal.organisationId
                && principal.roles.contains { role in principal.session.organisationKind.map { role.signsRequests(in: $0) } ?? false })
        guard allowed else {
            throw PermissionRules.denied(PermissionRules.personalRecords, "certificates are shown to their owner, its head and operators")
        }
        let actor = principal.auditActor
        let includeInactive = request.includeInactive
        let outcome = try await database.transaction(for: context) { (c) throws(StoreError) -> [CertificateRecord]? in
            guard try AuthStore().ownerExists(c, personId: person, organisationId: organisation) else { return nil }
            let found = try AuthStore().certificates(c, personId: person, organisationId: organisation, includeInactive: includeInactive)
            try AuditLog().append(c, actor: actor, action: "AUDIT_ACTION_PERSONAL_DATA_READ", subjectKind: person != nil ? "person" : "organisation",
                                  subjectId: person ?? organisation ?? "", facts: ["method": "ListCertificates"])
            return found
        }
        guard let records = outcome else { throw RPCError(code: .notFound, message: "no \(person != nil ? "person" : "organisation") has that id") }
        var out = Esaylov_V1_ListCertificatesResponse()
        out.certificates = records.map { r in
            var w = Esaylov_V1_Certificate()
            w.serial = r.serial
            w.issuer = r.issuer
            w.subjectPinfl = r.subjectPinfl
            w.subjectTin = r.subjectTin ?? ""
            w.notBefore = timestamp(r.notBefore)
            w.notAfter = timestamp(r.notAfter)
            w.status = r.revoked ? .revoked : r.current ? .active : .expired
            w.personId = r.personId
            w.organisationId = r.organisationId ?? ""
            w.sha256 = r.sha256
            return w
        }
        return out
    }

    // MARK: input rules

    /// `value` is at most `max` characters (checked before anything reaches SQL).
    private func limit(_ value: String, _ field: String, _ max: Int) throws(RPCError) {
        if value.utf8.count > max, value.count > max { throw invalid(field, "must be at most \(max) characters") }
    }

    /// `values` has at most `max` entries.
    private func limit<T>(_ values: [T], _ field: String, _ max: Int) throws(RPCError) {
        if values.count > max { throw invalid(field, "must have at most \(max) entries") }
    }

    private func requireField(_ value: String, _ field: String) throws(RPCError) {
        if value.isEmpty { throw invalid(field, "is required") }
    }


}
