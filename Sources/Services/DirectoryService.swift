public import ESaylovAPI
public import RPC
public import Store
import Domain

/// `esaylov.v1.DirectoryService`, the public part: organisations, the commission tree,
/// members' names and roles, candidates, proxies and territories. `GetPerson` and
/// `ListCertificates` serve personal data (cl. 13) and stay unrouted until sessions exist.
public struct DirectoryService: Esaylov_V1_DirectoryService {
    let database: Database
    let tokens: PageTokens
    let store = DirectoryStore()

    public init(database: Database, tokens: PageTokens) {
        self.database = database
        self.tokens = tokens
    }

    /// Storage calls block: every method runs on the server's bounded blocking pool.
    public func placement(of method: MethodDescriptor) -> HandlerPlacement { .blockingPool }

    public func isImplemented(_ method: MethodDescriptor) -> Bool {
        method != Esaylov_V1_DirectoryServiceMethod.getPerson && method != Esaylov_V1_DirectoryServiceMethod.listCertificates
    }

    /// Runs `body` with a connection, within what is left of the deadline.
    private func read<T>(_ context: ServerContext, _ body: (Connection) throws(StoreError) -> T) throws(RPCError) -> T {
        if let left = context.timeRemaining, left <= .zero {
            throw RPCError(code: .deadlineExceeded, message: "deadline exceeded before the query ran")
        }
        do {
            return try database.withConnection(timeout: context.timeRemaining, body)
        } catch {
            throw RPCError(error)
        }
    }

    public func getOrganisation(request: Esaylov_V1_GetOrganisationRequest, context: ServerContext) throws(RPCError) -> Esaylov_V1_Organisation {
        try requireField(request.organisationId, "organisation_id")
        guard let o = try read(context, { (c) throws(StoreError) in try store.organisation(c, id: request.organisationId) }) else {
            throw RPCError(code: .notFound, message: "no organisation has id \(request.organisationId)")
        }
        return o.wire
    }

    public func listOrganisations(
        request: Esaylov_V1_ListOrganisationsRequest, context: ServerContext
    ) throws(RPCError) -> Esaylov_V1_ListOrganisationsResponse {
        var filter = OrganisationFilter()
        for (i, k) in request.kinds.enumerated() {
            guard let kind = OrganisationKind(k) else {
                throw invalid("kinds[\(i)]", "must be a known organisation kind, not \(k.rawValue)")
            }
            filter.kinds.append(kind)
        }
        if !request.territorySoato.isEmpty {
            do { filter.territoryPrefix = try SOATO(request.territorySoato, field: "territory_soato").value } catch { throw invalid(error) }
        }
        filter.parentId = request.parentId
        filter.nameContains = request.nameContains
        filter.includeInactive = request.includeInactive
        let (limit, after) = try page(request.page, filter: filter.canonical, fields: 4, OrganisationCursor.init(fields:))
        var rows = try read(context) { (c) throws(StoreError) in try store.organisations(c, filter: filter, after: after, limit: limit + 1) }
        var response = Esaylov_V1_ListOrganisationsResponse()
        if rows.count > limit {
            rows.removeLast()
            response.page = pageInfo(tokens.encode(filter: filter.canonical, fields: OrganisationCursor(after: rows[rows.count - 1]).fields))
        }
        response.organisations = rows.map(\.wire)
        return response
    }

    public func getCommissionTree(
        request: Esaylov_V1_GetCommissionTreeRequest, context: ServerContext
    ) throws(RPCError) -> Esaylov_V1_CommissionTree {
        guard request.depth >= 0 else { throw invalid("depth", "must not be negative") }
        let rootId = request.rootCommissionId.isEmpty ? "cec" : request.rootCommissionId
        let (commissions, officers, root) = try read(context) { (c) throws(StoreError) in
            (try store.commissions(c), try store.officers(c), try store.organisation(c, id: rootId))
        }
        guard let root else { throw RPCError(code: .notFound, message: "no organisation has id \(rootId)") }
        guard root.kind.isElectionCommission else {
            throw RPCError(
                code: .failedPrecondition, message: "\(rootId) is not an election commission",
                details: [.preconditionViolation(type: "KIND", subject: "organisation:\(rootId)", description: "the root must be an election commission")])
        }
        let children = Dictionary(grouping: commissions, by: { $0.parentId ?? "" })
        func tree(_ o: OrganisationRecord, level: Int) -> Esaylov_V1_CommissionTree {
            var t = Esaylov_V1_CommissionTree()
            t.commission = o.wire
            t.officers = (officers[o.id] ?? []).map(\.wire)
            if request.depth == 0 || level < request.depth {
                t.children = (children[o.id] ?? []).map { tree($0, level: level + 1) }
            }
            return t
        }
        return tree(root, level: 0)
    }

    public func listMembers(request: Esaylov_V1_ListMembersRequest, context: ServerContext) throws(RPCError) -> Esaylov_V1_ListMembersResponse {
        try requireField(request.organisationId, "organisation_id")
        var roles: [Role] = []
        for (i, r) in request.roles.enumerated() {
            guard let role = Role(r) else { throw invalid("roles[\(i)]", "must be a known role") }
            roles.append(role)
        }
        let filter = "o=\(request.organisationId);r=\(roles.map(\.rawValue).sorted());p=\(request.includePast)"
        let (limit, after) = try page(request.page, filter: filter, fields: 3) { f -> (Int, String, String)? in
            Int(f[0]).map { ($0, f[1], f[2]) }
        }
        let (exists, rows) = try read(context) { (c) throws(StoreError) in
            (try store.organisation(c, id: request.organisationId) != nil,
             try store.members(c, organisationId: request.organisationId, roles: roles, includePast: request.includePast, after: after, limit: limit + 1))
        }
        guard exists else { throw RPCError(code: .notFound, message: "no organisation has id \(request.organisationId)") }
        var members = rows
        var response = Esaylov_V1_ListMembersResponse()
        if members.count > limit {
            members.removeLast()
            let last = members[members.count - 1]
            let order = Role.allCases.firstIndex(of: last.role)! + 1
            response.page = pageInfo(tokens.encode(filter: filter, fields: [String(order), last.lastName, last.personId]))
        }
        response.members = members.map(\.wire)
        return response
    }

    public func listCandidates(
        request: Esaylov_V1_ListCandidatesRequest, context: ServerContext
    ) throws(RPCError) -> Esaylov_V1_ListCandidatesResponse {
        guard !request.commissionId.isEmpty || !request.partyId.isEmpty else {
            throw invalid("commission_id", "give commission_id, party_id or both")
        }
        var statuses: [String] = []
        for (i, s) in request.statuses.enumerated() {
            guard let name = candidateStatuses.first(where: { $0.1 == s })?.0 else { throw invalid("statuses[\(i)]", "must be a known status") }
            statuses.append(name)
        }
        let filter = "c=\(request.commissionId);p=\(request.partyId);s=\(statuses.sorted())"
        let (limit, after) = try page(request.page, filter: filter, fields: 1) { $0.first }
        let (known, rows) = try read(context) { (c) throws(StoreError) in
            var known = true
            for id in [request.commissionId, request.partyId] where !id.isEmpty {
                if try store.organisation(c, id: id) == nil { known = false }
            }
            return (known, try store.candidates(c, commissionId: request.commissionId, partyId: request.partyId, statuses: statuses, after: after, limit: limit + 1))
        }
        guard known else { throw RPCError(code: .notFound, message: "the commission or party given does not exist") }
        var candidates = rows
        var response = Esaylov_V1_ListCandidatesResponse()
        if candidates.count > limit {
            candidates.removeLast()
            response.page = pageInfo(tokens.encode(filter: filter, fields: [candidates[candidates.count - 1].id]))
        }
        response.candidates = candidates.map(\.wire)
        return response
    }

    public func getCandidate(request: Esaylov_V1_GetCandidateRequest, context: ServerContext) throws(RPCError) -> Esaylov_V1_Candidate {
        try requireField(request.candidateId, "candidate_id")
        guard let c = try read(context, { (c) throws(StoreError) in try store.candidate(c, id: request.candidateId) }) else {
            throw RPCError(code: .notFound, message: "no candidate has id \(request.candidateId)")
        }
        return c.wire
    }

    public func listProxies(request: Esaylov_V1_ListProxiesRequest, context: ServerContext) throws(RPCError) -> Esaylov_V1_ListProxiesResponse {
        try requireField(request.candidateId, "candidate_id")
        let (candidate, proxies) = try read(context) { (c) throws(StoreError) in
            (try store.candidate(c, id: request.candidateId),
             try store.proxies(c, candidateId: request.candidateId, includeInactive: request.includeInactive))
        }
        guard candidate != nil else { throw RPCError(code: .notFound, message: "no candidate has id \(request.candidateId)") }
        var response = Esaylov_V1_ListProxiesResponse()
        response.proxies = proxies.map(\.wire)
        return response
    }

    public func listTerritories(
        request: Esaylov_V1_ListTerritoriesRequest, context: ServerContext
    ) throws(RPCError) -> Esaylov_V1_ListTerritoriesResponse {
        var parent: String?
        if !request.parentSoato.isEmpty {
            do { parent = try SOATO(request.parentSoato, field: "parent_soato").value } catch { throw invalid(error) }
        }
        let (exists, rows) = try read(context) { (c) throws(StoreError) in
            (try parent.map { (p) throws(StoreError) in try store.territory(c, soato: p) != nil } ?? true, try store.territories(c, parent: parent))
        }
        guard exists else { throw RPCError(code: .notFound, message: "no territory has SOATO \(request.parentSoato)") }
        var response = Esaylov_V1_ListTerritoriesResponse()
        response.territories = rows.map(\.wire)
        return response
    }

    // MARK: input rules

    private func pageInfo(_ token: String) -> Esaylov_V1_PageInfo {
        var p = Esaylov_V1_PageInfo()
        p.nextPageToken = token
        return p
    }

    private func requireField(_ value: String, _ field: String) throws(RPCError) {
        if value.isEmpty { throw invalid(field, "is required") }
    }

    private func invalid(_ field: String, _ rule: String) -> RPCError {
        RPCError(code: .invalidArgument, message: "\(field) \(rule)", details: [.fieldViolation(field: field, description: rule, reason: "INVALID")])
    }

    private func invalid(_ v: DomainViolation) -> RPCError { invalid(v.field, v.rule) }

    /// Page size and the position after which the page starts.
    private func page<Cursor>(
        _ request: Esaylov_V1_PageRequest?, filter: String, fields: Int, _ make: ([String]) -> Cursor?
    ) throws(RPCError) -> (Int, Cursor?) {
        let size = Int(request?.pageSize ?? 0)
        guard (0...500).contains(size) else { throw invalid("page.page_size", "must be 0 (default 50) to 500") }
        let token = request?.pageToken ?? ""
        guard !token.isEmpty else { return (size == 0 ? 50 : size, nil) }
        guard let f = tokens.decode(token, filter: filter, fieldCount: fields), let cursor = make(f) else {
            throw invalid("page.page_token", "is not a token this list issued for this filter")
        }
        return (size == 0 ? 50 : size, cursor)
    }
}
