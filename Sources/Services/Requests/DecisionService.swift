import Domain
public import ESaylovAPI
import Foundation
import ProtoRuntime
public import RPC
public import Signatures
public import Store
import Synchronization

/// `esaylov.v1.DecisionService`: review, drafts (cl. 12), approval with the EDS (cl. 11), the
/// numbered decision, its directory effects and the sender's copy (cl. 10) in the approving
/// transaction, and the system's receipt over it.
public struct DecisionService: Esaylov_V1_DecisionService {
    let database: Database
    let verifier: SignatureVerifier?
    let tokens: PageTokens
    let signer: SigningIdentity?
    let catalogues: Catalogues
    let requests: RequestService
    let store = DecisionStore()
    let requestStore = RequestStore()
    let audit = AuditLog()
    let events: RequestEvents

    public init(
        database: Database, verifier: SignatureVerifier?, tokens: PageTokens, signer: SigningIdentity?, catalogues: Catalogues = Catalogues(),
        events hub: EventHub? = nil
    ) {
        self.database = database
        self.events = RequestEvents(hub: hub)
        self.verifier = verifier
        self.tokens = tokens
        self.signer = signer
        self.catalogues = catalogues
        self.requests = RequestService(database: database, verifier: verifier, tokens: tokens, catalogues: catalogues, events: hub)
    }

    // MARK: who acts

    /// The request, and the caller's roles in its receiving commission (PERMISSION_DENIED when
    /// none; NOT_FOUND for drafts, which are the sender's alone).
    func received(_ id: String, _ p: Principal, _ context: ServerContext) async throws(RPCError) -> (RequestRecord, [Role]) {
        try checkRequestId(id)
        guard let r = try await database.read(requestStore.request(id: id), for: context), r.status != .draft else {
            throw RPCError(code: .notFound, message: "request_id names no request")
        }
        guard p.organisationId == r.receiverId, p.permissions.contains(.reviewRequests) else {
            throw PermissionRules.denied(PermissionRules.deciding, "the session holds no role in the receiving commission \(r.receiverId)")
        }
        return (r, p.roles)
    }

    func draftFor(_ id: String, _ p: Principal, _ context: ServerContext) async throws(RPCError) -> (DraftRecord, RequestRecord) {
        try checkRequestId(id, "draft_id")
        guard let d = try await database.read(store.draft(id: id), for: context) else { throw RPCError(code: .notFound, message: "draft_id names no draft") }
        let (r, _) = try await received(d.requestId, p, context)
        return (d, r)
    }

    static func lifecycle(_ action: RequestAction, _ party: RequestParty, _ status: RequestStatus) throws(RPCError) {
        if case .failure(let e) = RequestLifecycle.apply(action, by: party, from: status) { throw RequestService.refusal(e) }
    }

    var keys: IdempotencyKeys { IdempotencyKeys(database: database) }

    // MARK: review and drafts

    public func startReview(request: Esaylov_V1_StartReviewRequest, context: ServerContext) async throws -> Esaylov_V1_StartReviewResponse {
        let p = try context.principal()
        let (r, _) = try await received(request.requestId, p, context)
        let key = try IdempotencyKeys.key(request.idempotencyKey, required: false)
        let fp = IdempotencyKeys.fingerprint("StartReview", request)
        let scope = SenderKey.organisation(r.receiverId)
        if let replay: Esaylov_V1_StartReviewResponse = try await keys.replayed(key, fp, scope, context) { return replay }
        try Self.lifecycle(.startReview, .commissionMember, r.status)
        let actor = p.auditActor
        return try await keys.mutate(key, fp, scope, context) { [store, requestStore, audit, events] (c) throws(StoreError) -> Result<Esaylov_V1_StartReviewResponse, RPCError> in
            guard let locked = try requestStore.lock(c, id: r.id) else { return .failure(RPCError(code: .notFound, message: "request_id names no request")) }
            if case .failure(let e) = RequestLifecycle.apply(.startReview, by: .commissionMember, from: locked.status) { return .failure(RequestService.refusal(e)) }
            let v = try store.setRequestStatus(c, requestId: r.id, to: .underReview)
            try requestStore.appendHistory(c, requestId: r.id, actorOrganisationId: actor.organisationId, actorPersonId: actor.personId,
                                           kind: "review_started", from: locked.status, to: .underReview, version: v)
            events.append(c, requestId: r.id, kind: .reviewStarted, status: .underReview, version: v,
                          to: [.incoming(commissionId: r.receiverId), .outgoing(r.sender)])
            _ = try audit.append(c, actor: actor, action: "AUDIT_ACTION_REVIEW_STARTED", subjectKind: "request", subjectId: r.id)
            var out = Esaylov_V1_StartReviewResponse()
            out.requestVersion = Int64(v)
            return .success(out)
        }
    }

    public func draftDecision(request: Esaylov_V1_DraftDecisionRequest, context: ServerContext) async throws -> Esaylov_V1_DecisionDraft {
        let p = try context.principal()
        let (r, roles) = try await received(request.requestId, p, context)
        guard DecisionRules.mayDraft(roles) else {
            throw PermissionRules.denied(PermissionRules.drafting, "a decision is drafted by the commission's deputy chairperson or secretary")
        }
        let key = try IdempotencyKeys.key(request.idempotencyKey, required: false)
        let fp = IdempotencyKeys.fingerprint("DraftDecision", request)
        let scope = SenderKey.organisation(r.receiverId)
        if let replay: Esaylov_V1_DecisionDraft = try await keys.replayed(key, fp, scope, context) { return replay }
        try Self.lifecycle(.draftDecision, .drafter, r.status)
        guard let outcome = DecisionOutcome(request.outcome) else { throw invalid("outcome", "is required") }
        let form = try requests.decodeForm(r.form)
        let faults = DecisionRules.check(
            DecisionRules.Draft(
                outcome: outcome, items: request.itemOutcomes.map { DecisionRules.Item(index: Int($0.itemIndex), outcome: DecisionOutcome($0.outcome) ?? .accepted, reason: $0.reason) },
                text: request.text, correctionDays: Int(request.correctionDays)),
            itemCount: form.itemCount)
        if !faults.isEmpty {
            throw RPCError(code: .invalidArgument, message: faults.map(\.description).joined(separator: "; "),
                           details: faults.map { .fieldViolation(field: $0.field, description: $0.rule, reason: "DECISION_RULE") })
        }
        let files = try Self.attachmentList(request.attachmentSha256)
        var body = Esaylov_V1_DecisionDraft()
        body.itemOutcomes = request.itemOutcomes
        body.attachmentSha256 = files
        let actor = p.auditActor
        let id = Crypto.hex(Crypto.randomBytes(16))
        let expected = Int(request.expectedVersion)
        let bytes = body.serializedBytes()
        return try await keys.mutate(key, fp, scope, context) { [store, requestStore, audit, events] (c) throws(StoreError) -> Result<Esaylov_V1_DecisionDraft, RPCError> in
            guard let locked = try requestStore.lock(c, id: r.id) else { return .failure(RPCError(code: .notFound, message: "request_id names no request")) }
            if case .failure(let e) = RequestLifecycle.apply(.draftDecision, by: .drafter, from: locked.status) { return .failure(RequestService.refusal(e)) }
            let pending = try store.lockPending(c, requestId: r.id)
            if (pending?.version ?? 0) != expected {
                return .failure(RPCError(code: .aborted, message: "expected_version \(expected) is stale: the pending draft is at version \(pending?.version ?? 0)"))
            }
            // The files are the commission's own uploads.
            let uploaded = Set(try requestStore.uploads(c, sender: scope, sha256s: files).map(\.sha256))
            if let missing = request.attachmentSha256.firstIndex(where: { !uploaded.contains($0) }) {
                return .failure(RPCError(code: .invalidArgument, message: "attachment_sha256[\(missing)] is no file the commission uploaded (UploadAttachment)",
                                         details: [.fieldViolation(field: "attachment_sha256[\(missing)]", description: "must be a file the commission uploaded", reason: "NOT_UPLOADED")]))
            }
            try store.insertDraft(c, id: id, requestId: r.id, commissionId: r.receiverId, outcome: outcome.databaseName, body: bytes, text: request.text,
                                  correctionDays: Int(request.correctionDays), draftedBy: actor.personId, version: (pending?.version ?? 0) + 1)
            try store.setDraftAttachments(c, draftId: id, uploader: scope, sha256s: files)
            var v = locked.version
            if locked.status == .underReview {
                v = try store.setRequestStatus(c, requestId: r.id, to: .decisionDrafted)
            }
            try requestStore.appendHistory(c, requestId: r.id, actorOrganisationId: actor.organisationId, actorPersonId: actor.personId,
                                           kind: "decision_drafted", from: locked.status, to: .decisionDrafted, version: v)
            events.append(c, requestId: r.id, kind: .decisionDrafted, status: .decisionDrafted, version: v, to: [.incoming(commissionId: r.receiverId)])
            _ = try audit.append(c, actor: actor, action: "AUDIT_ACTION_DECISION_DRAFTED", subjectKind: "request", subjectId: r.id,
                                 facts: ["draft": id, "outcome": outcome.databaseName])
            guard let d = try store.lockDraft(c, id: id) else { throw StoreError(.other, reason: "the draft vanished") }
            return .success(Self.wire(d))
        }
    }

    public func returnDraft(request: Esaylov_V1_ReturnDraftRequest, context: ServerContext) async throws -> Esaylov_V1_DecisionDraft {
        let p = try context.principal()
        let (d, r) = try await draftFor(request.draftId, p, context)
        guard p.roles.contains(where: \.mayApproveDecisions) else {
            throw PermissionRules.denied(PermissionRules.approving, "a draft is returned by the commission's chairperson or deputy chairperson")
        }
        if request.comment.allSatisfy(\.isWhitespace) || request.comment.count > 2000 { throw invalid("comment", "is required: 1 to 2000 characters") }
        let key = try IdempotencyKeys.key(request.idempotencyKey, required: false)
        let fp = IdempotencyKeys.fingerprint("ReturnDraft", request)
        let scope = SenderKey.organisation(r.receiverId)
        if let replay: Esaylov_V1_DecisionDraft = try await keys.replayed(key, fp, scope, context) { return replay }
        let actor = p.auditActor
        let expected = Int(request.expectedVersion)
        return try await keys.mutate(key, fp, scope, context) { [store, requestStore, audit, events] (c) throws(StoreError) -> Result<Esaylov_V1_DecisionDraft, RPCError> in
            guard let locked = try store.lockDraft(c, id: d.id), let req = try requestStore.lock(c, id: r.id) else {
                return .failure(RPCError(code: .notFound, message: "draft_id names no draft"))
            }
            guard locked.status == "pending" else { return .failure(Self.draftState(locked)) }
            if expected != 0, locked.version != expected { return .failure(RPCError(code: .aborted, message: "expected_version is stale: the draft is at version \(locked.version)")) }
            try store.returnDraft(c, id: d.id, comment: request.comment)
            let v = try store.setRequestStatus(c, requestId: r.id, to: .underReview)
            try requestStore.appendHistory(c, requestId: r.id, actorOrganisationId: actor.organisationId, actorPersonId: actor.personId,
                                           kind: "draft_returned", from: req.status, to: .underReview, version: v)
            events.append(c, requestId: r.id, kind: .draftReturned, status: .underReview, version: v, to: [.incoming(commissionId: r.receiverId)])
            _ = try audit.append(c, actor: actor, action: "AUDIT_ACTION_DRAFT_RETURNED", subjectKind: "request", subjectId: r.id, facts: ["draft": d.id])
            guard let back = try store.lockDraft(c, id: d.id) else { throw StoreError(.other, reason: "the draft vanished") }
            return .success(Self.wire(back))
        }
    }

    /// A draft's files: at most 20 distinct SHA-256s, sorted (as the envelope binds them).
    static func attachmentList(_ list: [String]) throws(RPCError) -> [String] {
        if list.count > 20 { throw invalid("attachment_sha256", "must have at most 20 entries") }
        for (i, sha) in list.enumerated() where !isSHA256Hex(sha) { throw invalid("attachment_sha256[\(i)]", "must be 64 lower-case hex digits") }
        if Set(list).count != list.count { throw invalid("attachment_sha256", "names a file twice") }
        return list.sorted()
    }

    static func draftState(_ d: DraftRecord) -> RPCError {
        RPCError(code: .failedPrecondition, message: "the draft is \(d.status), not pending",
                 details: [.preconditionViolation(type: "STATE", subject: "draft \(d.id)", description: d.status)])
    }

    // MARK: approval

    /// The approval payload of a pending draft (a SignedEnvelope of purpose DECISION).
    func payload(_ d: DraftRecord, _ r: RequestRecord) throws(RPCError) -> [UInt8] {
        let body: Esaylov_V1_DecisionDraft
        do { body = try Esaylov_V1_DecisionDraft(serializedBytes: d.body) } catch { throw RPCError(code: .internal, message: "a stored draft does not decode") }
        var e = Esaylov_V1_DecisionEnvelope()
        e.formatVersion = 1
        e.draftId = d.id
        e.requestId = r.id
        e.requestEnvelopeSha256 = Crypto.hex(Crypto.sha256(r.envelope ?? []))
        e.commissionId = d.commissionId
        e.outcome = (DecisionOutcome(databaseName: d.outcome) ?? .accepted).wire
        e.itemOutcomes = body.itemOutcomes
        e.text = d.text
        e.correctionDays = Int32(d.correctionDays)
        e.campaignId = r.campaignId
        e.addresseeOrganisationId = r.sender.organisationId ?? ""
        e.addresseeCandidateId = r.sender.candidateId ?? ""
        e.addresseeProxyId = r.sender.proxyId ?? ""
        e.draftedByPersonId = d.draftedBy
        e.draftVersion = Int64(d.version)
        e.attachmentSha256 = body.attachmentSha256
        return SignedPayloads.seal(.decision, body: e.serializedBytes())
    }

    func approver(_ p: Principal, _ d: DraftRecord, _ r: RequestRecord, _ context: ServerContext) async throws(RPCError) -> CampaignRecord {
        guard let campaign = try await database.read(CampaignStore().campaign(id: r.campaignId), for: context) else {
            throw RPCError(code: .internal, message: "the request's campaign is missing")
        }
        if let why = DecisionRules.approvalRefusal(roles: p.roles, approver: p.personId, drafter: d.draftedBy, forbidDrafterApproving: campaign.forbidDrafterApproving) {
            throw PermissionRules.denied(PermissionRules.approving, why)
        }
        guard d.status == "pending" else { throw Self.draftState(d) }
        return campaign
    }

    public func getApprovalPayload(request: Esaylov_V1_GetApprovalPayloadRequest, context: ServerContext) async throws -> Esaylov_V1_SigningPayload {
        let p = try context.principal()
        let (d, r) = try await draftFor(request.draftId, p, context)
        _ = try await approver(p, d, r, context)
        let bytes = try payload(d, r)
        var out = Esaylov_V1_SigningPayload()
        out.payload = bytes
        out.payloadSha256 = Crypto.hex(Crypto.sha256(bytes))
        return out
    }

    public func approveDecision(request: Esaylov_V1_ApproveDecisionRequest, context: ServerContext) async throws -> Esaylov_V1_Decision {
        let p = try context.principal()
        let (d, r) = try await draftFor(request.draftId, p, context)
        let key = try IdempotencyKeys.key(request.idempotencyKey, required: true)
        var bound = request
        bound.cms = []
        let fp = IdempotencyKeys.fingerprint("ApproveDecision", bound)
        let scope = SenderKey.organisation(r.receiverId)
        if let replay: Esaylov_V1_Decision = try await keys.replayed(key, fp, scope, context) { return replay }
        let approvedAt = Date().timeIntervalSince1970
        let campaign = try await approver(p, d, r, context)
        if request.cms.isEmpty { throw invalid("cms", "is required: the approver signs the decision with the EDS (clause 11)") }
        if request.cms.count > 1 << 20 { throw invalid("cms", "must be at most 1 MiB") }
        let bytes = try payload(d, r)
        let envelopeSHA256 = Crypto.hex(Crypto.sha256(bytes))
        guard request.payloadSha256 == envelopeSHA256 else {
            throw RPCError(code: .failedPrecondition, message: "the draft changed since its payload was fetched: fetch the approval payload again",
                           details: [.preconditionViolation(type: "PAYLOAD", subject: "payload_sha256", description: "must be the current payload's SHA-256")])
        }
        guard let verifier else { throw RPCError(code: .unavailable, message: "signature verification is not configured on this server (no trust store)") }
        guard let signer else { throw RPCError(code: .unavailable, message: "the server has no signing key for decision receipts (--signing-key)") }
        let v = try await SignedPayloads.verify(verifier, cms: request.cms, signedBytes: bytes, receivedAt: approvedAt, field: "cms", context: context)
        guard v.isValid else { throw SignedPayloads.refusal(v) }
        _ = try SignedPayloads.open(v.signedBytes, expecting: .decision)
        guard let pinfl = v.signer.subjectPINFL else { throw RPCError(code: .unauthenticated, message: "the signer's certificate carries no PINFL") }
        let who = try await database.read(
            requestStore.signer(pinfl: pinfl, certificateSHA256: v.signer.sha256, organisationId: r.receiverId, roles: [.chairperson, .deputyChairperson]), for: context)
        guard let person = who.personId, who.registered else {
            throw RPCError(code: .unauthenticated, message: "the signing certificate is not registered in the directory to a person, or is revoked there")
        }
        guard who.holdsRole else {
            throw PermissionRules.denied(PermissionRules.approving, "the signer is not the chairperson or a deputy chairperson of \(r.receiverId) (clause 11)")
        }
        if campaign.forbidDrafterApproving, person == d.draftedBy {
            throw PermissionRules.denied(PermissionRules.approving, "this campaign forbids the drafter of a decision to approve it")
        }
        let rule = try await requests.catalogue(campaign, context).rule(r.type)
        let form = try requests.decodeForm(r.form)
        let draftBody: Esaylov_V1_DecisionDraft
        do { draftBody = try Esaylov_V1_DecisionDraft(serializedBytes: d.body) } catch { throw RPCError(code: .internal, message: "a stored draft does not decode") }
        let outcome = DecisionOutcome(databaseName: d.outcome) ?? .accepted
        var info = SignedPayloads.info(v, cms: [])
        info.signedBytes = []
        let signature = info.serializedBytes()
        let actor = p.auditActor
        let decisionId = Crypto.hex(Crypto.randomBytes(16))
        let correctionDue = outcome == .returned ? DecisionRules.correctionDue(approvedAt: approvedAt, days: d.correctionDays) : nil
        let cms = request.cms
        let sender = r.sender
        let effects = DirectoryEffects(store: store, request: r, form: form, outcome: outcome, items: draftBody.itemOutcomes, rule: rule, decisionId: decisionId)
        return try await keys.mutate(key, fp, scope, context) { [store, requestStore, audit, events] (c) throws(StoreError) -> Result<Esaylov_V1_Decision, RPCError> in
            guard let req = try requestStore.lock(c, id: r.id), let draft = try store.lockDraft(c, id: d.id) else {
                return .failure(RPCError(code: .notFound, message: "draft_id names no draft"))
            }
            if case .failure(let e) = RequestLifecycle.apply(.approveDecision, by: .approver, from: req.status) { return .failure(RequestService.refusal(e)) }
            guard draft.status == "pending", draft.version == d.version else { return .failure(Self.draftState(draft)) }
            let (year, seq) = try store.nextNumber(c, commissionId: r.receiverId, at: approvedAt)
            let applied: [Esaylov_V1_DirectoryEffect]
            switch try effects.apply(c, number: "\(seq)/\(year)") {
            case .success(let e): applied = e
            case .failure(let refusal):
                // Nothing the effects wrote may stay: the whole approval is refused.
                throw StoreError(.checkViolation, constraint: "directory_effect", reason: refusal.why)
            }
            var list = Esaylov_V1_Decision()
            list.effects = applied
            let files = try store.attachToDecision(c, decisionId: decisionId, uploader: .organisation(r.receiverId), sha256s: draftBody.attachmentSha256)
            if files.count != draftBody.attachmentSha256.count {
                throw StoreError(.checkViolation, constraint: "decision_attachments", reason: "a file the draft names is no longer uploaded: upload it again and redraft")
            }
            list.attachments = files.map(RequestService.wire)
            var recipients: [SenderKey] = [sender]
            for e in applied where e.kind == .candidateRegistered { recipients.append(.candidate(e.recordId)) }
            for e in applied where e.kind == .proxyRegistered { recipients.append(.proxy(e.recordId)) }
            let number = try store.approve(c, DecisionStore.Approval(
                decisionId: decisionId, draft: draft, approvalEnvelope: bytes, approvalCMS: cms, approvalSignature: signature, approverPersonId: person,
                approvedAt: approvedAt, correctionDue: correctionDue, effects: list.serializedBytes(), ruleVersion: campaign.catalogueVersion,
                recipients: recipients), year: year, seq: seq)
            let status: RequestStatus = outcome == .returned ? .returned : .decided
            let version = try store.setRequestStatus(c, requestId: r.id, to: status, decisionId: decisionId)
            try requestStore.appendHistory(c, requestId: r.id, actorOrganisationId: actor.organisationId, actorPersonId: actor.personId,
                                           kind: "decided", from: req.status, to: status, version: version, note: "decision No. \(number)")
            // The commission's inbox, and everyone the decision reaches (cl. 10).
            events.append(c, requestId: r.id, kind: .decided, status: status, version: version, decisionId: decisionId,
                          to: [.incoming(commissionId: r.receiverId)] + recipients.map { .outgoing($0) })
            _ = try audit.append(c, actor: actor, action: "AUDIT_ACTION_DECISION_APPROVED", subjectKind: "decision", subjectId: decisionId,
                                 facts: ["request": r.id, "number": number, "outcome": outcome.databaseName, "effects": String(applied.count),
                                         "envelope_sha256": envelopeSHA256])
            let texted = try store.notifyBySms(
                c, recipients: recipients,
                body: "E-saylov: decision No. \(number) of \(r.receiverId) on your request is approved. Sign in to read it.")
            _ = try audit.append(c, actor: .operatorTool, action: "AUDIT_ACTION_DECISION_DELIVERED", subjectKind: "decision", subjectId: decisionId,
                                 facts: ["recipients": String(Set(recipients.map(\.description)).count), "sms": String(texted)])
            var receipt = Esaylov_V1_DecisionReceipt()
            receipt.formatVersion = 1
            receipt.decisionId = decisionId
            receipt.number = "No. \(number)"
            receipt.commissionId = r.receiverId
            receipt.approvalEnvelope = bytes
            receipt.approvalCms = cms
            receipt.approvedAt = timestamp(approvedAt)
            receipt.requestEnvelopeSha256 = Crypto.hex(Crypto.sha256(r.envelope ?? []))
            let receiptCMS: [UInt8]
            do { receiptCMS = try signer.signAttached(receipt.serializedBytes()) } catch { throw StoreError(.other, reason: "signing the receipt failed") }
            try store.setReceipt(c, decisionId: decisionId, cms: receiptCMS)
            guard let stored = try store.decision(c, id: decisionId) else { throw StoreError(.other, reason: "the decision vanished") }
            return Result { () throws(RPCError) in try Self.wire(stored, draft: draft) }
        }
    }

    // MARK: reading

    public func getDecision(request: Esaylov_V1_GetDecisionRequest, context: ServerContext) async throws -> Esaylov_V1_Decision {
        let p = try context.principal()
        try checkRequestId(request.decisionId, "decision_id")
        guard let x = try await database.read(store.decision(id: request.decisionId), for: context),
            let d = try await database.read(store.draft(id: x.draftId), for: context)
        else { throw RPCError(code: .notFound, message: "decision_id names no decision") }
        let mine = (try? await requests.sender(p, context)).map { x.deliveredTo.contains($0.key.description) } ?? false
        if !mine { try await mayReadDecisions(of: x.commissionId, p, context) }
        return try Self.wire(x, draft: d)
    }

    /// The rule of a commission's decisions for those they did not reach: its members, members
    /// of a commission above it, operators (cl. 10, 13).
    func mayReadDecisions(of commission: String, _ p: Principal, _ context: ServerContext) async throws(RPCError) {
        if p.roles.contains(.operator) { return }
        guard let org = p.organisationId, p.permissions.contains(.reviewRequests) else {
            throw PermissionRules.denied(PermissionRules.readDecisions, "the session neither received the decision nor holds a role in a commission")
        }
        if org != commission, try await !database.read(requestStore.isAbove(org, commission), for: context) {
            throw PermissionRules.denied(PermissionRules.readDecisions, "the session's commission is neither the deciding one nor above it")
        }
    }

    public func listDecisions(request: Esaylov_V1_ListDecisionsRequest, context: ServerContext) async throws -> Esaylov_V1_ListDecisionsResponse {
        let p = try context.principal()
        let commission = request.commissionId.isEmpty ? (p.organisationId ?? "") : request.commissionId
        try checkId(commission, "commission_id")
        try await mayReadDecisions(of: commission, p, context)
        let year = request.year == 0 ? Day(tashkentDayOf: Date().timeIntervalSince1970).year : Int(request.year)
        guard (2000...2200).contains(year) else { throw invalid("year", "must be 0 (this year) or 2000 to 2200") }
        let scope = ["decisions", commission, String(year)]
        let (size, after) = try tokens.page(request.page, filter: scope, fields: 1) { Int($0[0]) }
        let rows = try await database.read(store.decisions(commissionId: commission, year: year, after: after ?? 0, limit: size + 1), for: context)
        let (page, last) = pageOf(rows, size)
        var out = Esaylov_V1_ListDecisionsResponse()
        for x in page {
            guard let d = try await database.read(store.draft(id: x.draftId), for: context) else { continue }
            out.decisions.append(try Self.wire(x, draft: d))
        }
        out.page = pageInfo(last.map { tokens.encode(filter: scope, fields: [String($0.number.split(separator: "/").first ?? "0")]) } ?? "")
        return out
    }

    public func getSystemCertificates(request: Esaylov_V1_GetSystemCertificatesRequest, context: ServerContext) async throws -> Esaylov_V1_GetSystemCertificatesResponse {
        guard let signer else { throw RPCError(code: .unavailable, message: "the server has no signing key (--signing-key)") }
        var out = Esaylov_V1_GetSystemCertificatesResponse()
        out.certificates = [signer.certificate.der] + signer.issuers.map(\.der)
        return out
    }

    // MARK: wire

    static func wire(_ d: DraftRecord) -> Esaylov_V1_DecisionDraft {
        var w = (try? Esaylov_V1_DecisionDraft(serializedBytes: d.body)) ?? Esaylov_V1_DecisionDraft()
        w.id = d.id
        w.requestId = d.requestId
        w.commissionId = d.commissionId
        w.outcome = (DecisionOutcome(databaseName: d.outcome) ?? .accepted).wire
        w.text = d.text
        w.correctionDays = Int32(d.correctionDays)
        var a = Esaylov_V1_Actor()
        a.organisationId = d.commissionId
        a.personId = d.draftedBy
        w.draftedBy = a
        w.draftedAt = timestamp(d.draftedAt)
        w.status = switch d.status {
        case "pending": .pending
        case "returned": .returned
        case "approved": .approved
        default: .superseded
        }
        w.returnComment = d.returnComment
        w.version = Int64(d.version)
        return w
    }

    static func wire(_ x: DecisionRecord, draft d: DraftRecord) throws(RPCError) -> Esaylov_V1_Decision {
        var w: Esaylov_V1_Decision
        do { w = try Esaylov_V1_Decision(serializedBytes: x.effects) } catch { throw RPCError(code: .internal, message: "stored effects do not decode") }
        let body = wire(d)
        w.id = x.id
        w.number = "No. \(x.number)"
        w.requestId = x.requestId
        w.commissionId = x.commissionId
        w.outcome = body.outcome
        w.itemOutcomes = body.itemOutcomes
        w.text = d.text
        if let due = x.correctionDue { w.correctionDue = timestamp(due) }
        w.draftedBy = body.draftedBy
        if var info = try? Esaylov_V1_SignatureInfo(serializedBytes: x.approvalSignature) {
            info.cms = x.approvalCMS
            info.signedBytes = x.approvalEnvelope
            w.approval = info
        }
        w.approvedAt = timestamp(x.approvedAt)
        if let at = x.deliveredAt { w.deliveredAt = timestamp(at) }
        w.receiptCms = x.receiptCMS ?? []
        w.ruleVersion = Int32(x.ruleVersion)
        w.approvalEnvelope = x.approvalEnvelope
        w.deliveredTo = x.deliveredTo.map { key in
            var a = Esaylov_V1_Actor()
            let parts = key.split(separator: ":", maxSplits: 1).map(String.init)
            if parts.first == "organisation" { a.organisationId = parts.last ?? "" } else { a.personId = "" }
            a.displayName = key
            return a
        }
        return w
    }
}

extension DecisionOutcome {
    init?(_ wire: Esaylov_V1_DecisionOutcome) {
        switch wire {
        case .granted: self = .granted
        case .partlyGranted: self = .partlyGranted
        case .refused: self = .refused
        case .returned: self = .returned
        case .accepted: self = .accepted
        case .unspecified, .unrecognized: return nil
        }
    }

    var wire: Esaylov_V1_DecisionOutcome {
        switch self {
        case .granted: .granted
        case .partlyGranted: .partlyGranted
        case .refused: .refused
        case .returned: .returned
        case .accepted: .accepted
        }
    }

    var databaseName: String {
        switch self {
        case .granted: "granted"
        case .partlyGranted: "partly_granted"
        case .refused: "refused"
        case .returned: "returned"
        case .accepted: "accepted"
        }
    }

    init?(databaseName: String) {
        guard let o = Self.allCases.first(where: { $0.databaseName == databaseName }) else { return nil }
        self = o
    }
}
