import Domain
import ESaylovAPI
import Foundation
import ProtoRuntime
import RPC
import Signatures
import Store

// The pieces RequestService's handlers share: who the sender is, the campaign's rules applied
// to a request, the envelope, and the request on the wire.

extension RequestService {
    /// The sender the session acts for: its candidacy, its proxy record, or its organisation.
    func sender(_ p: Principal, _ context: ServerContext) async throws(RPCError) -> SenderRecord {
        let found: SenderRecord?
        if p.session.candidateId != nil || p.session.proxyId != nil {
            found = try await database.read(store.personSender(candidateId: p.session.candidateId, proxyId: p.session.proxyId), for: context)
        } else if let org = p.organisationId {
            found = try await database.read(store.organisationSender(id: org), for: context)
        } else {
            found = nil
        }
        guard let found else {
            throw PermissionRules.denied(PermissionRules.sending, "the session acts for no organisation, candidate or proxy")
        }
        if let status = found.candidateStatus, !["nominated", "registered"].contains(status) {
            throw PermissionRules.denied(PermissionRules.sending, "the candidacy is \(status)")
        }
        if let status = found.proxyStatus, status != "registered" {
            throw PermissionRules.denied(PermissionRules.sending, "the proxy's authority is \(status)")
        }
        return found
    }

    func senderClass(_ s: SenderRecord) -> Sender? {
        switch s.key {
        case .organisation: s.organisationKind.map { .organisation($0) }
        case .candidate: s.electionKind.map { .candidate($0) }
        case .proxy: s.electionKind.map { .proxy($0) }
        }
    }

    func campaign(_ id: String, _ field: String, _ context: ServerContext) async throws(RPCError) -> CampaignRecord {
        let found: CampaignRecord?
        if id.isEmpty {
            found = try await database.read(CampaignStore().current(), for: context)
        } else {
            try checkId(id, field)
            found = try await database.read(CampaignStore().campaign(id: id), for: context)
        }
        guard let found else {
            throw RPCError(code: .notFound, message: id.isEmpty ? "no campaign is open" : "\(field) names no campaign",
                           details: [.fieldViolation(field: field, description: "must name a campaign", reason: "NOT_FOUND")])
        }
        return found
    }

    func catalogue(_ c: CampaignRecord, _ context: ServerContext) async throws(RPCError) -> Catalogue {
        do { return try await catalogues.catalogue(for: c, database: database, timeout: context.timeRemaining ?? .seconds(30)) } catch {
            throw RPCError(error)
        }
    }

    func rule(_ catalogue: Catalogue, _ type: RequestType, _ campaign: CampaignRecord) throws(RPCError) -> TypeRule {
        guard let rule = catalogue.rule(type) else {
            throw RPCError(
                code: .failedPrecondition, message: "request type \(type.rawValue) is not open in campaign \(campaign.id)",
                details: [.preconditionViolation(type: "CATALOGUE", subject: "request type \(type.rawValue)", description: "not in the campaign's catalogue")])
        }
        return rule
    }

    /// FAILED_PRECONDITION naming the window when `at` (the receipt time) is outside it.
    func checkWindow(_ rule: TypeRule, _ campaign: CampaignRecord, at: Double) throws(RPCError) {
        if campaign.closed {
            throw RPCError(code: .failedPrecondition, message: "campaign \(campaign.id) is closed",
                           details: [.preconditionViolation(type: "CAMPAIGN", subject: campaign.id, description: "closed")])
        }
        let (opens, closes) = campaign.days(of: rule.window)
        let subject = "request type \(rule.type.rawValue) window"
        if let opens, at < opens.startEpoch {
            throw RPCError(
                code: .failedPrecondition, message: "the window for request type \(rule.type.rawValue) opens on \(opens) (Tashkent time)",
                details: [.preconditionViolation(type: "WINDOW", subject: subject, description: "opens \(opens) 00:00 +05:00")])
        }
        if let closes, at >= closes.endEpoch {
            throw RPCError(
                code: .failedPrecondition, message: "the window for request type \(rule.type.rawValue) closed at the end of \(closes) (24:00 Tashkent time)",
                details: [.preconditionViolation(type: "WINDOW", subject: subject, description: "closed \(closes) 24:00 +05:00")])
        }
    }

    /// The route of clause 6 and the catalogue from `sender` to `receiverId`, or NOT_FOUND /
    /// PERMISSION_DENIED naming the rule.
    func route(
        _ rule: TypeRule, sender: SenderRecord, registering: (id: String, parent: String?)?, receiverId: String, field: String,
        elections: Set<ElectionKind>, _ context: ServerContext
    ) async throws(RPCError) -> (Route, OrganisationRecord) {
        try checkId(receiverId, field)
        guard let receiver = try await database.read(DirectoryStore().organisation(id: receiverId), for: context), receiver.active else {
            throw RPCError(code: .notFound, message: "\(field) names no organisation",
                           details: [.fieldViolation(field: field, description: "must name an election commission", reason: "NOT_FOUND")])
        }
        guard let cls = senderClass(sender), let territory = try? SOATO(sender.territory), let rt = try? SOATO(receiver.territory.soato) else {
            throw PermissionRules.denied(PermissionRules.sending, "the sender's kind or territory is unknown")
        }
        let place = SenderPlace(sender: cls, territory: territory, registeringCommissionId: registering?.id ?? sender.registeringCommissionId,
                                registeringParentId: registering == nil ? sender.registeringParentId : registering?.parent)
        switch Routing.route(rule, from: place, to: ReceiverPlace(id: receiver.id, kind: receiver.kind, territory: rt), elections: elections) {
        case .success(let r): return (r, receiver)
        case .failure(let refusal):
            throw RPCError(
                code: .permissionDenied, message: refusal.description,
                details: [.info(reason: "ROUTE_REFUSED", metadata: ["rule": refusal.rule, "clause": refusal.clause])])
        }
    }

    /// The elections a request is about: the form's, or the campaign's.
    func elections(_ facts: FormFacts, _ campaign: CampaignRecord, _ sender: SenderRecord) -> Set<ElectionKind> {
        if let e = facts.electionKind { return [e] }
        if let e = sender.electionKind { return [e] }
        return Set(campaign.electionKinds)
    }

    /// Everything wrong with a form, at once: its fields (FormValidator), then what the
    /// directory says (the candidate or proxy it names, proxy limits, commission members).
    /// Returns the facts and the candidate the form is about, when it names one.
    func validate(
        _ form: Esaylov_V1_RequestForm.Form, rule: TypeRule, campaign: CampaignRecord, attachments: Set<String>, sender: SenderRecord,
        _ context: ServerContext
    ) async throws(RPCError) -> (FormFacts, CandidateFacts?) {
        var v = FormValidator(rule: rule, campaign: campaign, attachments: attachments, senderTerritory: (try? SOATO(sender.territory)) ?? (try! SOATO("17")))
        v.check(form)
        var faults = v.faults
        let facts = v.facts
        var about: CandidateFacts?
        // The candidate the form concerns: the named one (form 5), the proxy's (form 8), the sender's own.
        if let id = facts.candidateId, !faults.contains(where: { $0.field.hasSuffix(".candidate_id") }) {
            about = try await database.read(store.candidateFacts(id: id), for: context)
            if let c = about {
                let party = sender.key.organisationId
                let ours = party != nil && (c.partyId == party || c.partyParentId == party
                    || (sender.organisationKind == .partyBranch && c.partyId == sender.organisationParentId))
                if !ours {
                    faults.append(DomainViolation(field: "form.nomination_revocation.candidate_id", rule: "names a candidate the sending party did not nominate"))
                }
                if !["nominated", "registered"].contains(c.status) {
                    faults.append(DomainViolation(field: "form.nomination_revocation.candidate_id", rule: "names a candidate who is no longer nominated or registered"))
                }
            } else {
                faults.append(DomainViolation(field: "form.nomination_revocation.candidate_id", rule: "names no candidate"))
            }
        }
        if let id = facts.proxyId, !faults.contains(where: { $0.field.hasSuffix(".proxy_id") }) {
            let f = "form.proxy_revocation.proxy_id"
            if let proxy = try await database.read(store.proxyFacts(id: id), for: context) {
                if proxy.candidateId != sender.candidateId { faults.append(DomainViolation(field: f, rule: "names a proxy of another candidate")) }
                if case .proxy(let own) = sender.key, own != id { faults.append(DomainViolation(field: f, rule: "a proxy resigns only their own authority")) }
                if !["proposed", "registered"].contains(proxy.status) { faults.append(DomainViolation(field: f, rule: "names a proxy whose authority has ended")) }
            } else {
                faults.append(DomainViolation(field: f, rule: "names no proxy"))
            }
            switch (sender.key, facts.proxyReason) {
            case (.candidate, .resigned): faults.append(DomainViolation(field: "form.proxy_revocation.reason", rule: "a candidate removes a proxy (REMOVED_BY_CANDIDATE)"))
            case (.proxy, .removedByCandidate): faults.append(DomainViolation(field: "form.proxy_revocation.reason", rule: "a proxy resigns (RESIGNED)"))
            default: break
            }
        }
        if case .proxyRegistration(let x) = form, let candidate = sender.candidateId {
            let existing = try await database.read(store.proxyCount(candidateId: candidate), for: context)
            if let max = rule.limit("max_proxies", election: sender.electionKind), existing + x.proxies.count > max {
                faults.append(DomainViolation(
                    field: "form.proxy_registration.proxies",
                    rule: "a \(sender.electionKind?.rawValue ?? "") candidate has at most \(max) proxies (\(existing) already, \(x.proxies.count) proposed)"))
            }
            let members = try await database.read(store.commissionMembers(pinfls: facts.proposedProxies.map(\.pinfl)), for: context)
            for p in facts.proposedProxies where members.contains(p.pinfl) {
                faults.append(DomainViolation(field: "\(p.field).pinfl", rule: "a proxy may not sit on an election commission"))
            }
        }
        if !faults.isEmpty {
            let shown = faults.prefix(100)
            throw RPCError(
                code: .invalidArgument,
                message: "the form breaks \(faults.count) rule\(faults.count == 1 ? "" : "s"): " + shown.prefix(3).map(\.description).joined(separator: "; ")
                    + (faults.count > 3 ? "; …" : ""),
                details: shown.map { .fieldViolation(field: $0.field, description: $0.rule, reason: "FORM_RULE") })
        }
        return (facts, about)
    }

    /// The attachments of a draft: what the sender uploaded of `shas`, within the campaign's limits.
    func attachments(_ shas: [String], field: String, sender: SenderRecord, campaign: CampaignRecord, _ c: Connection) throws(StoreError) -> Result<[AttachmentRecord], RPCError> {
        let found = try store.uploads(c, sender: sender.key, sha256s: shas)
        let have = Set(found.map(\.sha256))
        var faults: [DomainViolation] = []
        for (i, s) in shas.enumerated() where !have.contains(s) {
            faults.append(DomainViolation(field: "\(field)[\(i)]", rule: "names no attachment this sender uploaded (or it was purged after 24 hours)"))
        }
        for a in found where a.sizeBytes > campaign.maxAttachmentBytes {
            let i = shas.firstIndex(of: a.sha256) ?? 0
            faults.append(DomainViolation(field: "\(field)[\(i)]", rule: "is over the campaign's limit of \(campaign.maxAttachmentBytes) bytes per attachment"))
        }
        if found.reduce(0, { $0 + $1.sizeBytes }) > campaign.maxRequestAttachmentBytes {
            faults.append(DomainViolation(field: field, rule: "attachments total over the campaign's \(campaign.maxRequestAttachmentBytes) bytes per request"))
        }
        guard faults.isEmpty else {
            return .failure(RPCError(
                code: .invalidArgument, message: faults.map(\.description).joined(separator: "; "),
                details: faults.map { .fieldViolation(field: $0.field, description: $0.rule, reason: "ATTACHMENT") }))
        }
        return .success(found)
    }

    /// The attachment list's shape: hex SHA-256s, no duplicates, within the campaign's count.
    func checkAttachmentList(_ shas: [String], field: String, campaign: CampaignRecord) throws(RPCError) {
        if shas.count > campaign.maxAttachmentsPerRequest {
            throw invalid(field, "must have at most \(campaign.maxAttachmentsPerRequest) attachments (the campaign's limit)")
        }
        var seen: Set<String> = []
        for (i, s) in shas.enumerated() {
            guard isSHA256Hex(s) else { throw invalid("\(field)[\(i)]", "must be 64 lower-case hex digits") }
            if !seen.insert(s).inserted { throw invalid("\(field)[\(i)]", "appears twice") }
        }
    }

    // MARK: envelope

    /// The deterministic envelope of a request: the bytes its head signs.
    func envelope(_ r: RequestRecord, senderTIN: String?) throws(RPCError) -> [UInt8] {
        var e = Esaylov_V1_RequestEnvelope()
        e.formatVersion = 1
        e.requestId = r.id
        e.type = r.type.wire
        e.kind = r.kind.wire
        e.campaignId = r.campaignId
        e.senderOrganisationId = r.sender.organisationId ?? ""
        e.senderTin = senderTIN ?? ""
        e.senderCandidateId = r.sender.candidateId ?? ""
        e.senderProxyId = r.sender.proxyId ?? ""
        e.receiverCommissionId = r.receiverId
        e.form = try decodeForm(r.form)
        e.attachmentSha256 = r.attachments.map(\.sha256).sorted()
        e.requestVersion = Int64(r.version)
        e.correctsRequestId = r.correctsRequestId ?? ""
        return SignedPayloads.seal(.request, body: e.serializedBytes())
    }

    func decodeForm(_ bytes: [UInt8]) throws(RPCError) -> Esaylov_V1_RequestForm {
        do { return try Esaylov_V1_RequestForm(serializedBytes: bytes) } catch { throw RPCError(code: .internal, message: "a stored form does not decode") }
    }

    // MARK: the request on the wire

    /// How a reader sees a request: in full (sender, receiving commission, operators), or in
    /// aggregate (commissions above the receiver: personal fields cleared, cl. 13).
    enum Reading { case full, aggregate }

    static func wire(_ a: AttachmentRecord) -> Esaylov_V1_Attachment {
        var x = Esaylov_V1_Attachment()
        x.sha256 = a.sha256
        x.fileName = a.fileName
        x.mediaType = a.mediaType
        x.sizeBytes = Int64(a.sizeBytes)
        x.uploadedAt = timestamp(a.uploadedAt)
        return x
    }

    func wire(_ r: RequestRecord, _ reading: Reading, displayName: String = "") throws(RPCError) -> Esaylov_V1_Request {
        var w = Esaylov_V1_Request()
        w.id = r.id
        w.type = r.type.wire
        w.kind = r.kind.wire
        w.campaignId = r.campaignId
        var actor = Esaylov_V1_Actor()
        actor.organisationId = r.sender.organisationId ?? ""
        actor.personId = r.signerPersonId ?? r.senderPersonId
        actor.displayName = displayName
        w.sender = actor
        w.receiverCommissionId = r.receiverId
        var form = try decodeForm(r.form)
        if reading == .aggregate { form = Redaction.clearPersonalData(form) }
        w.form = form
        w.attachments = r.attachments.map(Self.wire)
        w.status = r.status.wire
        w.version = Int64(r.version)
        w.createdAt = timestamp(r.createdAt)
        if let s = r.submittedAt { w.submittedAt = timestamp(s) }
        if let d = r.decisionDue { w.decisionDue = timestamp(d) }
        if let sig = r.signature, var info = try? Esaylov_V1_SignatureInfo(serializedBytes: sig) {
            info.cms = r.cms ?? []
            info.signedBytes = r.envelope ?? []
            if reading == .aggregate { info.signerPinfl = "" }
            w.signature = info
        }
        w.incomingNumber = r.incomingNumber ?? ""
        w.decisionId = r.decisionId ?? ""
        w.correctsRequestId = r.correctsRequestId ?? ""
        if reading == .full { w.envelope = r.envelope ?? [] }
        w.senderTerritorySoato = r.senderTerritory
        w.catalogueVersion = Int32(r.catalogueVersion)
        return w
    }
}

func isSHA256Hex(_ s: String) -> Bool { isLowerHex(s, count: 64) }

/// An id of the directory or of a campaign: 2 to 64 lower-case letters, digits and hyphens.
func checkId(_ v: String, _ field: String) throws(RPCError) {
    if v.isEmpty { throw invalid(field, "is required") }
    if !isRecordId(v) { throw invalid(field, "must be an id: 2 to 64 lower-case letters, digits and hyphens") }
}

/// A request id: 32 lower-case hex digits.
func checkRequestId(_ v: String, _ field: String = "request_id") throws(RPCError) {
    if v.isEmpty { throw invalid(field, "is required") }
    if !isLowerHex(v, count: 32) {
        throw invalid(field, "must be a request id: 32 lower-case hex digits")
    }
}

extension RequestStatus {
    var wire: Esaylov_V1_RequestStatus {
        switch self {
        case .draft: .draft
        case .submitted: .submitted
        case .underReview: .underReview
        case .decisionDrafted: .decisionDrafted
        case .decided: .decided
        case .returned: .returned
        case .withdrawn: .withdrawn
        }
    }

    init?(_ wire: Esaylov_V1_RequestStatus) {
        switch wire {
        case .draft: self = .draft
        case .submitted: self = .submitted
        case .underReview: self = .underReview
        case .decisionDrafted: self = .decisionDrafted
        case .decided: self = .decided
        case .returned: self = .returned
        case .withdrawn: self = .withdrawn
        case .unspecified, .unrecognized: return nil
        }
    }
}
