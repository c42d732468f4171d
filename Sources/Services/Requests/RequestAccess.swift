import Domain
import ESaylovAPI
import Foundation
import ProtoRuntime
import RPC
import Signatures
import Store

// Who may touch which request, the lifecycle's refusals, and idempotency keys.

extension RequestService {
    /// A request the sender owns; NOT_FOUND or PERMISSION_DENIED otherwise.
    func owned(_ id: String, _ s: SenderRecord, _ context: ServerContext) async throws(RPCError) -> RequestRecord {
        guard let r = try await database.read(store.request(id: id), for: context) else {
            throw RPCError(code: .notFound, message: "request_id names no request")
        }
        guard r.sender == s.key else {
            throw PermissionRules.denied(PermissionRules.ownRequests, "the request was sent by another sender")
        }
        return r
    }

    /// The lifecycle's answer to the sender taking `action` on a request in `status`.
    func transition(_ action: RequestAction, _ status: RequestStatus) throws(RPCError) {
        if case .failure(let e) = RequestLifecycle.apply(action, by: .sender, from: status) { throw Self.refusal(e) }
    }

    static func refusal(_ e: RequestLifecycle.Refusal) -> RPCError {
        switch e {
        case .wrongState(let s, _):
            RPCError(code: .failedPrecondition, message: e.description,
                     details: [.preconditionViolation(type: "STATE", subject: "request status \(s.databaseName)", description: e.description)])
        case .wrongParty:
            RPCError(code: .permissionDenied, message: e.description, details: [.info(reason: "LIFECYCLE_PARTY")])
        }
    }

    static func stateRefusal(_ action: RequestAction, _ status: RequestStatus) -> RPCError {
        refusal(.wrongState(status, action))
    }

    /// A request the caller may read, and how: the sender, the receiving commission's members
    /// and operators in full; commissions above the receiver in aggregate (cl. 13). A draft is
    /// its sender's alone.
    func readable(_ id: String, _ context: ServerContext) async throws(RPCError) -> (RequestRecord, Reading) {
        let p = try context.principal()
        guard let r = try await database.read(store.request(id: id), for: context) else {
            throw RPCError(code: .notFound, message: "request_id names no request")
        }
        if let s = try? await sender(p, context), s.key == r.sender { return (r, .full) }
        if r.status == .draft { throw RPCError(code: .notFound, message: "request_id names no request") }
        let reading = try await inboxReading(p, r.receiverId, context)
        if reading == .full, p.organisationId != r.receiverId {
            // An operator reading a form in full reads the personal data in it (cl. 13): that is recorded.
            let actor = p.auditActor
            try await database.transaction(for: context) { [audit] (c) throws(StoreError) in
                _ = try audit.append(c, actor: actor, action: "AUDIT_ACTION_PERSONAL_DATA_READ", subjectKind: "request", subjectId: r.id,
                                     facts: ["reader_role": "operator"])
            }
        }
        return (r, reading)
    }

    /// How the caller reads a commission's inbox: its members and operators in full, members of
    /// a commission above it in aggregate; anyone else is refused.
    func inboxReading(_ p: Principal, _ commission: String, _ context: ServerContext) async throws(RPCError) -> Reading {
        if p.roles.contains(.operator) { return .full }
        guard let org = p.organisationId, p.permissions.contains(.reviewRequests) else {
            throw PermissionRules.denied(PermissionRules.inbox, "the session holds no role in an election commission")
        }
        if org == commission { return .full }
        if try await database.read(store.isAbove(org, commission), for: context) { return .aggregate }
        throw PermissionRules.denied(PermissionRules.inbox, "the session's commission is neither the receiver nor above it")
    }

    func listFilter(_ f: Esaylov_V1_RequestFilter?) throws(RPCError) -> RequestListFilter {
        var out = RequestListFilter()
        guard let f else { return out }
        if f.types.count > 17 { throw invalid("filter.types", "must have at most 17 entries") }
        if f.statuses.count > 7 { throw invalid("filter.statuses", "must have at most 7 entries") }
        for (i, t) in f.types.enumerated() {
            guard let type = RequestType(t) else { throw invalid("filter.types[\(i)]", "is not a request type") }
            out.types.append(type.rawValue)
        }
        for (i, s) in f.statuses.enumerated() {
            guard let status = RequestStatus(s) else { throw invalid("filter.statuses[\(i)]", "is not a request status") }
            out.statuses.append(status.databaseName)
        }
        out.types.sort()
        out.statuses.sort()
        if !f.campaignId.isEmpty {
            try checkId(f.campaignId, "filter.campaign_id")
            out.campaignId = f.campaignId
        }
        if !f.senderOrganisationId.isEmpty {
            try checkId(f.senderOrganisationId, "filter.sender_organisation_id")
            out.senderOrganisationId = f.senderOrganisationId
        }
        if !f.senderTerritorySoato.isEmpty {
            guard (try? SOATO(f.senderTerritorySoato)) != nil else { throw invalid("filter.sender_territory_soato", "must be a SOATO code") }
            out.senderTerritoryPrefix = f.senderTerritorySoato
        }
        out.submittedAfter = f.submittedAfter.map { Double($0.seconds) + Double($0.nanos) / 1e9 }
        out.submittedBefore = f.submittedBefore.map { Double($0.seconds) + Double($0.nanos) / 1e9 }
        out.decisionDueBefore = f.decisionDueBefore.map { Double($0.seconds) + Double($0.nanos) / 1e9 }
        return out
    }

    static func eventKind(_ kind: String) -> Esaylov_V1_RequestEventKind {
        switch kind {
        case "draft_created": .draftCreated
        case "draft_updated": .draftUpdated
        case "submitted": .submitted
        case "withdrawn": .withdrawn
        case "review_started": .reviewStarted
        case "decision_drafted": .decisionDrafted
        case "draft_returned": .draftReturned
        case "decided": .decided
        case "decision_due_soon": .decisionDueSoon
        default: .unspecified
        }
    }

    // MARK: idempotency (IdempotencyKeys)

    func idempotencyKey(_ key: String, required: Bool) throws(RPCError) -> String? { try IdempotencyKeys.key(key, required: required) }

    static func fingerprint(_ method: String, _ request: some ProtoMessage) -> [UInt8] { IdempotencyKeys.fingerprint(method, request) }

    func replayed<R: ProtoMessage>(_ key: String?, _ fingerprint: [UInt8], _ sender: SenderKey, _ context: ServerContext) async throws(RPCError) -> R? {
        try await IdempotencyKeys(database: database).replayed(key, fingerprint, sender, context)
    }

    func mutate<R: ProtoMessage>(
        _ key: String?, _ fingerprint: [UInt8], _ sender: SenderKey, _ context: ServerContext,
        _ body: @escaping @Sendable (Connection) throws(StoreError) -> Result<R, RPCError>
    ) async throws(RPCError) -> R {
        try await IdempotencyKeys(database: database).mutate(key, fingerprint, sender, context, body)
    }
}
