import Domain
public import ESaylovAPI
import Foundation
import ProtoRuntime
import Synchronization
public import RPC
public import Signatures
public import Store

/// `esaylov.v1.RequestService`: campaigns and their catalogue, drafts, attachments, signed
/// submission along clause 6, inboxes and outboxes (cl. 2, 6–9, 13). Every check that can
/// refuse runs before anything is written; every write of one call is one transaction with its
/// history entry, its audit event and its idempotency record.
public struct RequestService: Esaylov_V1_RequestService {
    let database: Database
    let verifier: SignatureVerifier?
    let tokens: PageTokens
    /// `WatchRequests` cursors name a recipient and a position, MAC'd with the deployment's key.
    /// They do not expire (retention, not age, ends them) and carry no time of issue: one
    /// position has one cursor, whichever replica and call gave it.
    let cursors: PageTokens
    let catalogues: Catalogues
    let store = RequestStore()
    let audit = AuditLog()
    let events: RequestEvents
    /// How long a watch stream goes without a message before a heartbeat (and between checks
    /// of the caller's role).
    let watchHeartbeat: Duration
    /// The receipt clock (seconds since 1970); tests move it.
    let now: @Sendable () -> Double

    /// Bytes of one attachment at most (a campaign may set less).
    public static let maxAttachmentBytes = 25 << 20
    /// Bytes of one upload chunk at most.
    public static let maxChunkBytes = 1 << 20
    /// Bytes a sender may hold in uploads no request of theirs took yet (purged after 24 hours).
    public static let maxUnattachedBytes = 256 << 20
    /// Drafts a sender may hold at once.
    public static let maxDrafts = 20_000
    /// Uploads in progress on the server at once (each holds up to 1 MiB while it gathers a row).
    let uploads = UploadSlots(limit: 32)

    public init(
        database: Database, verifier: SignatureVerifier?, tokens: PageTokens, catalogues: Catalogues = Catalogues(),
        events hub: EventHub? = nil, watchHeartbeat: Duration = .seconds(15), now: (@Sendable () -> Double)? = nil
    ) {
        self.database = database
        self.events = RequestEvents(hub: hub)
        self.watchHeartbeat = watchHeartbeat
        self.verifier = verifier
        self.tokens = tokens
        self.cursors = tokens.withMaxAge(.seconds(100 * 365 * 24 * 3600))
        self.catalogues = catalogues
        self.now = now ?? { Date().timeIntervalSince1970 }
    }

    // MARK: campaigns and the catalogue

    public func listCampaigns(request: Esaylov_V1_ListCampaignsRequest, context: ServerContext) async throws -> Esaylov_V1_ListCampaignsResponse {
        let (size, after) = try tokens.page(request.page, filter: ["campaigns"], fields: 2) { ($0[0], $0[1]) }
        let rows = try await database.read(CampaignStore().campaigns(after: after, limit: size + 1), for: context)
        let (page, last) = pageOf(rows, size)
        var out = Esaylov_V1_ListCampaignsResponse()
        let t = now()
        out.campaigns = page.map { $0.wire(now: t) }
        out.page = pageInfo(last.map { tokens.encode(filter: ["campaigns"], fields: [$0.electionDay.description, $0.id]) } ?? "")
        return out
    }

    public func getCampaign(request: Esaylov_V1_GetCampaignRequest, context: ServerContext) async throws -> Esaylov_V1_GetCampaignResponse {
        let c = try await campaign(request.campaignId, "campaign_id", context)
        let catalogue = try await catalogue(c, context)
        let t = now()
        var out = Esaylov_V1_GetCampaignResponse()
        out.campaign = c.wire(now: t)
        out.windows = catalogue.rules.sorted { $0.type.rawValue < $1.type.rawValue }.map { rule in
            var w = Esaylov_V1_RequestTypeWindow()
            w.type = rule.type.wire
            w.window = c.wire(rule.window)
            w.openNow = (try? checkWindow(rule, c, at: t)) != nil
            return w
        }
        return out
    }

    public func listRequestTypes(request: Esaylov_V1_ListRequestTypesRequest, context: ServerContext) async throws -> Esaylov_V1_ListRequestTypesResponse {
        let c = try await campaign(request.campaignId, "campaign_id", context)
        let catalogue = try await catalogue(c, context)
        var rules = catalogue.rules.sorted { $0.type.rawValue < $1.type.rawValue }
        if request.sendableOnly {
            let s = try await sender(try context.principal(), context)
            guard let cls = senderClass(s) else { throw PermissionRules.denied(PermissionRules.sending, "the sender's kind is unknown") }
            rules = rules.filter { Routing.maySend($0, cls, elections: Set(c.electionKinds)) }
        }
        var out = Esaylov_V1_ListRequestTypesResponse()
        out.campaign = c.wire(now: now())
        out.rules = rules.map { $0.wire(version: c.catalogueVersion, campaign: c) }
        return out
    }

    public func listReceivers(request: Esaylov_V1_ListReceiversRequest, context: ServerContext) async throws -> Esaylov_V1_ListReceiversResponse {
        guard let type = RequestType(request.requestType) else { throw invalid("request_type", "is required") }
        let s = try await sender(try context.principal(), context)
        let c = try await campaign(request.campaignId, "campaign_id", context)
        let rule = try rule(try await catalogue(c, context), type, c)
        guard let cls = senderClass(s), let territory = try? SOATO(s.territory) else {
            throw PermissionRules.denied(PermissionRules.sending, "the sender's kind or territory is unknown")
        }
        guard Clause6.hasAnyRoute(cls) else {
            throw PermissionRules.denied(PermissionRules.sending, "clause 6 gives a \(cls) no route to any commission")
        }
        let kinds = Array(Set(rule.routes.map(\.receiver)))
        let all = try await database.read(store.commissions(kinds: kinds), for: context)
        let place = SenderPlace(sender: cls, territory: territory, registeringCommissionId: s.registeringCommissionId, registeringParentId: s.registeringParentId)
        var out = Esaylov_V1_ListReceiversResponse()
        for k in all {
            guard let t = try? SOATO(k.territory),
                case .success(let route) = Routing.route(rule, from: place, to: ReceiverPlace(id: k.id, kind: k.kind, territory: t), elections: Set(c.electionKinds))
            else { continue }
            var r = Esaylov_V1_Receiver()
            r.commissionId = k.id
            r.kind = k.kind.wire
            r.nameUz = k.nameUz
            r.nameEn = k.nameEn
            r.territorySoato = k.territory
            r.electionKinds = route.electionKinds.map(\.wire)
            out.receivers.append(r)
        }
        return out
    }

    // MARK: drafts

    public func createDraft(request: Esaylov_V1_CreateDraftRequest, context: ServerContext) async throws -> Esaylov_V1_Request {
        let principal = try context.principal()
        let s = try await sender(principal, context)
        let key = try idempotencyKey(request.idempotencyKey, required: true)
        let fingerprint = Self.fingerprint("CreateDraft", request)
        if let replay: Esaylov_V1_Request = try await replayed(key, fingerprint, s.key, context) { return replay }
        let receivedAt = now()
        guard let form = request.form?.form, let type = request.form?.requestType else { throw invalid("form", "is required: exactly one form of RequestForm") }
        let c = try await campaign(request.campaignId, "campaign_id", context)
        try checkAttachmentList(request.attachmentSha256, field: "attachment_sha256", campaign: c)
        if !request.correctsRequestId.isEmpty { try checkRequestId(request.correctsRequestId, "corrects_request_id") }
        if let own = s.candidateCampaignId, !own.isEmpty, own != c.id {
            throw RPCError(code: .failedPrecondition, message: "the candidacy belongs to campaign \(own), not \(c.id)",
                           details: [.preconditionViolation(type: "CAMPAIGN", subject: "campaign_id", description: "the candidacy's campaign")])
        }
        let rule = try rule(try await catalogue(c, context), type, c)
        let (facts, about) = try await validate(form, rule: rule, campaign: c, attachments: Set(request.attachmentSha256), sender: s, context)
        let (route, receiver) = try await route(
            rule, sender: s, registering: about.map { ($0.registeringCommissionId, $0.registeringParentId) }, receiverId: request.receiverCommissionId,
            field: "receiver_commission_id", elections: elections(facts, c, s), context)
        try checkWindow(rule, c, at: receivedAt)
        if let corrected = request.correctsRequestId.isEmpty ? nil : request.correctsRequestId {
            guard let old = try await database.read(store.request(id: corrected), for: context), old.sender == s.key else {
                throw RPCError(code: .notFound, message: "corrects_request_id names no request of this sender",
                               details: [.fieldViolation(field: "corrects_request_id", description: "must name a request of this sender", reason: "NOT_FOUND")])
            }
            guard old.status == .returned, old.type == type else {
                throw RPCError(code: .failedPrecondition, message: "only a request returned for correction, of the same type, is corrected",
                               details: [.preconditionViolation(type: "STATE", subject: "corrects_request_id", description: "must be RETURNED and of the same type")])
            }
        }
        let draft = RequestStore.NewDraft(
            id: Crypto.hex(Crypto.randomBytes(16)), campaignId: c.id, catalogueVersion: c.catalogueVersion, type: type,
            kind: route.kind ?? type.kind(sentBy: s.organisationKind), sender: s.key, senderPersonId: principal.personId, senderTerritory: s.territory,
            receiverId: receiver.id, form: request.form!.serializedBytes(), correctsRequestId: request.correctsRequestId.isEmpty ? nil : request.correctsRequestId)
        let shas = request.attachmentSha256
        let actor = principal.auditActor
        let name = s.displayName
        return try await mutate(key, fingerprint, s.key, context) { (c2) throws(StoreError) -> Result<Esaylov_V1_Request, RPCError> in
            let found: [AttachmentRecord]
            switch try attachments(shas, field: "attachment_sha256", sender: s, campaign: c, c2) {
            case .success(let a): found = a
            case .failure(let e): return .failure(e)
            }
            if try store.draftCount(c2, sender: s.key) >= Self.maxDrafts {
                return .failure(RPCError(code: .resourceExhausted, message: "a sender holds at most \(Self.maxDrafts) drafts: send or delete some"))
            }
            try store.insertDraft(c2, draft)
            try store.setAttachments(c2, requestId: draft.id, found)
            try store.appendHistory(c2, requestId: draft.id, actorOrganisationId: actor.organisationId, actorPersonId: actor.personId,
                                    kind: "draft_created", from: nil, to: .draft, version: 1)
            _ = try audit.append(c2, actor: actor, action: "AUDIT_ACTION_DRAFT_SAVED", subjectKind: "request", subjectId: draft.id,
                                 facts: ["change": "created", "type": String(type.rawValue), "receiver": draft.receiverId, "campaign": draft.campaignId])
            guard let stored = try c2.run(store.request(id: draft.id)) else { throw StoreError(.other, reason: "the draft vanished") }
            return Result { () throws(RPCError) in try self.wire(stored, .full, displayName: name) }
        }
    }

    public func updateDraft(request: Esaylov_V1_UpdateDraftRequest, context: ServerContext) async throws -> Esaylov_V1_Request {
        let principal = try context.principal()
        let s = try await sender(principal, context)
        try checkRequestId(request.requestId)
        let key = try idempotencyKey(request.idempotencyKey, required: false)
        let fingerprint = Self.fingerprint("UpdateDraft", request)
        if let replay: Esaylov_V1_Request = try await replayed(key, fingerprint, s.key, context) { return replay }
        let existing = try await owned(request.requestId, s, context)
        try transition(.update, existing.status)
        guard let form = request.form?.form, let type = request.form?.requestType else { throw invalid("form", "is required: exactly one form of RequestForm") }
        guard type == existing.type else { throw invalid("form", "must stay a form of request type \(existing.type.rawValue)") }
        guard request.expectedVersion == Int64(existing.version) else {
            throw RPCError(code: .aborted, message: "expected_version \(request.expectedVersion) is stale: the draft is at version \(existing.version); read it again")
        }
        let c = try await campaign(existing.campaignId, "campaign_id", context)
        try checkAttachmentList(request.attachmentSha256, field: "attachment_sha256", campaign: c)
        let rule = try rule(try await catalogue(c, context), type, c)
        let (facts, about) = try await validate(form, rule: rule, campaign: c, attachments: Set(request.attachmentSha256), sender: s, context)
        let (route, _) = try await route(
            rule, sender: s, registering: about.map { ($0.registeringCommissionId, $0.registeringParentId) }, receiverId: existing.receiverId,
            field: "receiver_commission_id", elections: elections(facts, c, s), context)
        let bytes = request.form!.serializedBytes()
        let kind = route.kind ?? type.kind(sentBy: s.organisationKind)
        let shas = request.attachmentSha256
        let actor = principal.auditActor
        let expected = existing.version
        let name = s.displayName
        return try await mutate(key, fingerprint, s.key, context) { (c2) throws(StoreError) -> Result<Esaylov_V1_Request, RPCError> in
            guard let locked = try store.lock(c2, id: existing.id) else { return .failure(RPCError(code: .notFound, message: "request_id names no request")) }
            if locked.status != .draft { return .failure(Self.stateRefusal(.update, locked.status)) }
            if locked.version != expected { return .failure(RPCError(code: .aborted, message: "the draft changed meanwhile (version \(locked.version)); read it again")) }
            let found: [AttachmentRecord]
            switch try attachments(shas, field: "attachment_sha256", sender: s, campaign: c, c2) {
            case .success(let a): found = a
            case .failure(let e): return .failure(e)
            }
            try store.updateDraft(c2, id: existing.id, form: bytes, kind: kind, catalogueVersion: c.catalogueVersion)
            try store.setAttachments(c2, requestId: existing.id, found)
            try store.appendHistory(c2, requestId: existing.id, actorOrganisationId: actor.organisationId, actorPersonId: actor.personId,
                                    kind: "draft_updated", from: .draft, to: .draft, version: expected + 1)
            _ = try audit.append(c2, actor: actor, action: "AUDIT_ACTION_DRAFT_SAVED", subjectKind: "request", subjectId: existing.id,
                                 facts: ["change": "updated", "version": String(expected + 1)])
            guard let stored = try c2.run(store.request(id: existing.id)) else { throw StoreError(.other, reason: "the draft vanished") }
            return Result { () throws(RPCError) in try self.wire(stored, .full, displayName: name) }
        }
    }

    public func deleteDraft(request: Esaylov_V1_DeleteDraftRequest, context: ServerContext) async throws -> Esaylov_V1_DeleteDraftResponse {
        let principal = try context.principal()
        let s = try await sender(principal, context)
        try checkRequestId(request.requestId)
        let key = try idempotencyKey(request.idempotencyKey, required: false)
        let fingerprint = Self.fingerprint("DeleteDraft", request)
        if let replay: Esaylov_V1_DeleteDraftResponse = try await replayed(key, fingerprint, s.key, context) { return replay }
        let existing = try await owned(request.requestId, s, context)
        try transition(.delete, existing.status)
        let actor = principal.auditActor
        return try await mutate(key, fingerprint, s.key, context) { (c2) throws(StoreError) -> Result<Esaylov_V1_DeleteDraftResponse, RPCError> in
            guard let locked = try store.lock(c2, id: existing.id) else { return .failure(RPCError(code: .notFound, message: "request_id names no request")) }
            if locked.status != .draft { return .failure(Self.stateRefusal(.delete, locked.status)) }
            try store.deleteDraft(c2, id: existing.id)
            _ = try audit.append(c2, actor: actor, action: "AUDIT_ACTION_DRAFT_SAVED", subjectKind: "request", subjectId: existing.id, facts: ["change": "deleted"])
            return .success(Esaylov_V1_DeleteDraftResponse())
        }
    }

    // MARK: attachments

    public func uploadAttachment(requests: RequestStream<Esaylov_V1_UploadAttachmentRequest>, context: ServerContext) async throws -> Esaylov_V1_Attachment {
        let p = try context.principal()
        // A commission's deputy chairperson or secretary uploads the files of its decisions, as
        // the commission; everyone else the files of their requests, as their sender.
        let uploader: SenderKey
        if p.permissions.contains(.draftDecisions), let org = p.organisationId {
            uploader = .organisation(org)
        } else {
            uploader = try await sender(p, context).key
        }
        var header: Esaylov_V1_AttachmentHeader?
        let uploadId = Crypto.hex(Crypto.randomBytes(16))
        let hasher = SHA256Stream()
        var received = 0
        var seq = 0
        // Chunks are gathered to rows of 1 MiB (the last may be shorter): a client sending tiny
        // chunks costs one write per MiB, not one per message.
        var pending: [UInt8] = []
        var holdsSlot = false
        defer { if holdsSlot { uploads.release() } }
        func write(_ bytes: [UInt8]) async throws(RPCError) {
            let n = seq
            try await database.transaction(for: context) { (c) throws(StoreError) in try store.insertChunk(c, uploadId: uploadId, seq: n, data: bytes) }
            seq += 1
        }
        do {
            for try await message in requests {
                switch message.part {
                case .header(let h):
                    guard header == nil else { throw invalid("header", "comes once, first") }
                    try checkHeader(h)
                    let held = try await database.read(store.unattachedBytes(sender: uploader), for: context)
                    if held + Int(h.sizeBytes) > Self.maxUnattachedBytes {
                        throw RPCError(
                            code: .resourceExhausted,
                            message: "a sender holds at most \(Self.maxUnattachedBytes >> 20) MiB of uploads not yet attached to a request (\(held >> 20) MiB now); attach or wait for the 24-hour purge")
                    }
                    guard uploads.acquire() else {
                        throw RPCError(code: .resourceExhausted,
                                       message: "\(uploads.limit) uploads are in progress on this server: retry in a moment")
                    }
                    holdsSlot = true
                    header = h
                case .chunk(let data):
                    guard let h = header else { throw invalid("chunk", "comes after the header") }
                    guard data.count <= Self.maxChunkBytes else { throw invalid("chunk", "must be at most 1 MiB") }
                    guard !data.isEmpty else { continue }
                    received += data.count
                    guard received <= Int(h.sizeBytes) else {
                        throw RPCError(code: .invalidArgument, message: "the content is longer than header.size_bytes",
                                       details: [.fieldViolation(field: "header.size_bytes", description: "must be the content's size", reason: "SIZE")])
                    }
                    hasher.update(data)
                    pending += data
                    if pending.count >= Self.maxChunkBytes {
                        try await write(Array(pending.prefix(Self.maxChunkBytes)))
                        pending.removeFirst(Self.maxChunkBytes)
                    }
                case nil:
                    throw invalid("part", "is required: a header, then chunks")
                }
            }
            guard let h = header else { throw invalid("header", "is required: the first message is the header") }
            if !pending.isEmpty { try await write(pending) }
            guard received == Int(h.sizeBytes) else {
                throw RPCError(code: .invalidArgument, message: "the content has \(received) bytes, header.size_bytes says \(h.sizeBytes)",
                               details: [.fieldViolation(field: "header.size_bytes", description: "must be the content's size", reason: "SIZE")])
            }
            let digest = Crypto.hex(hasher.finish())
            guard digest == h.sha256 else {
                throw RPCError(code: .invalidArgument, message: "the content's SHA-256 differs from header.sha256",
                               details: [.fieldViolation(field: "header.sha256", description: "must be the content's SHA-256", reason: "DIGEST")])
            }
            let size = received
            let at = try await database.transaction(for: context) { (c) throws(StoreError) in
                try store.finishUpload(c, uploadId: uploadId, sha256: digest, size: size, sender: uploader, fileName: h.fileName, mediaType: h.mediaType)
            }
            var a = Esaylov_V1_Attachment()
            a.sha256 = digest
            a.fileName = h.fileName
            a.mediaType = h.mediaType
            a.sizeBytes = Int64(received)
            a.uploadedAt = timestamp(at)
            return a
        } catch {
            // What was written of an upload that failed goes at once (the purge would take it within an hour).
            if seq > 0 { try? await database.transaction(timeout: .seconds(10)) { (c) throws(StoreError) in try store.dropUpload(c, uploadId: uploadId) } }
            throw error
        }
    }

    func checkHeader(_ h: Esaylov_V1_AttachmentHeader) throws(RPCError) {
        if h.fileName.isEmpty || h.fileName.count > 255 { throw invalid("header.file_name", "must be 1 to 255 characters") }
        if h.fileName.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == "|" }) {
            throw invalid("header.file_name", "must not contain control characters or |")
        }
        let media = h.mediaType.utf8
        let token: (UInt8) -> Bool = { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 46 || $0 == 43 || $0 == 45 }
        let parts = h.mediaType.split(separator: "/", omittingEmptySubsequences: false)
        if media.count > 127 || parts.count != 2 || parts.contains(where: { $0.isEmpty || !$0.utf8.allSatisfy(token) }) {
            throw invalid("header.media_type", "must be a lower-case media type such as application/pdf")
        }
        if h.sizeBytes < 0 { throw invalid("header.size_bytes", "must not be negative") }
        if h.sizeBytes > Int64(Self.maxAttachmentBytes) {
            throw RPCError(code: .resourceExhausted, message: "an attachment is at most \(Self.maxAttachmentBytes) bytes",
                           details: [.fieldViolation(field: "header.size_bytes", description: "at most 25 MiB", reason: "TOO_LARGE")])
        }
        if !isSHA256Hex(h.sha256) { throw invalid("header.sha256", "must be 64 lower-case hex digits") }
    }

    public func downloadAttachment(
        request: Esaylov_V1_DownloadAttachmentRequest, responses: ResponseWriter<Esaylov_V1_AttachmentChunk>, context: ServerContext
    ) async throws {
        try checkRequestId(request.requestId)
        if !isSHA256Hex(request.sha256) { throw invalid("sha256", "must be 64 lower-case hex digits") }
        let (r, reading) = try await readable(request.requestId, context)
        guard reading == .full else {
            throw PermissionRules.denied(PermissionRules.personalData, "a commission above the receiver sees requests in aggregate, without their files")
        }
        var attached = r.attachments.contains(where: { $0.sha256 == request.sha256 })
        if !attached, let decision = r.decisionId {
            // The files of its decision, for whoever reads the request in full.
            attached = try await database.read(DecisionStore().hasAttachment(decisionId: decision, sha256: request.sha256), for: context)
        }
        guard attached, let content = try await database.read(store.content(sha256: request.sha256), for: context)
        else { throw RPCError(code: .notFound, message: "neither the request nor its decision has an attachment with that sha256") }
        for seq in 0..<content.chunks {
            guard let data = try await database.read(store.chunk(uploadId: content.uploadId, seq: seq), for: context) else {
                throw RPCError(code: .internal, message: "an attachment's content is incomplete")
            }
            var chunk = Esaylov_V1_AttachmentChunk()
            chunk.data = data
            try await responses.write(chunk)
        }
    }

    // MARK: signing and sending

    public func getSigningPayload(request: Esaylov_V1_GetSigningPayloadRequest, context: ServerContext) async throws -> Esaylov_V1_SigningPayload {
        let s = try await sender(try context.principal(), context)
        try checkRequestId(request.requestId)
        let r = try await owned(request.requestId, s, context)
        try transition(.submit, r.status)
        guard r.signatureRequired else {
            throw RPCError(code: .failedPrecondition, message: "candidates' and proxies' requests are not signed (clause 7): submit without a CMS",
                           details: [.preconditionViolation(type: "SIGNING", subject: "request \(r.id)", description: "unsigned route")])
        }
        let payload = try envelope(r, senderTIN: s.tin)
        var out = Esaylov_V1_SigningPayload()
        out.payload = payload
        out.payloadSha256 = Crypto.hex(Crypto.sha256(payload))
        let c = try await campaign(r.campaignId, "campaign_id", context)
        if let rule = try await catalogue(c, context).rule(r.type), let closes = c.days(of: rule.window).closes {
            out.expiresAt = timestamp(closes.endEpoch)
        }
        return out
    }

    public func submitRequest(request: Esaylov_V1_SubmitRequestRequest, context: ServerContext) async throws -> Esaylov_V1_Request {
        let principal = try context.principal()
        let s = try await sender(principal, context)
        try checkRequestId(request.requestId)
        let key = try idempotencyKey(request.idempotencyKey, required: true)
        // The key binds the payload signed, not the CMS: a client that signs again on a retry
        // (ECDSA signatures differ each time) still gets the first outcome.
        var bound = request
        bound.cms = []
        let fingerprint = Self.fingerprint("SubmitRequest", bound)
        if let replay: Esaylov_V1_Request = try await replayed(key, fingerprint, s.key, context) { return replay }
        let receivedAt = now()
        let r = try await owned(request.requestId, s, context)
        try transition(.submit, r.status)
        if r.signatureRequired {
            if request.cms.isEmpty { throw invalid("cms", "is required: the head of the organisation signs its requests with the EDS (clause 8)") }
            if request.cms.count > 1 << 20 { throw invalid("cms", "must be at most 1 MiB") }
            if !isSHA256Hex(request.payloadSha256) { throw invalid("payload_sha256", "is required: the SHA-256 of the payload signed, 64 lower-case hex digits") }
        } else if !request.cms.isEmpty {
            throw invalid("cms", "must be empty: candidates' and proxies' requests are not signed (clause 7)")
        }
        let c = try await campaign(r.campaignId, "campaign_id", context)
        let rule = try rule(try await catalogue(c, context), r.type, c)
        let form = try decodeForm(r.form)
        guard let f = form.form else { throw RPCError(code: .internal, message: "a stored form is empty") }
        // The rules again, as they stand at receipt: the catalogue, the directory and the window may have moved.
        let (facts, about) = try await validate(f, rule: rule, campaign: c, attachments: Set(r.attachments.map(\.sha256)), sender: s, context)
        _ = try await route(rule, sender: s, registering: about.map { ($0.registeringCommissionId, $0.registeringParentId) }, receiverId: r.receiverId,
                            field: "receiver_commission_id", elections: elections(facts, c, s), context)
        try checkWindow(rule, c, at: receivedAt)
        let payload = try envelope(r, senderTIN: s.tin)
        var signature: [UInt8]?
        var signer: String?
        if r.signatureRequired {
            if request.payloadSha256 != Crypto.hex(Crypto.sha256(payload)) {
                throw RPCError(code: .failedPrecondition, message: "the draft changed since its payload was fetched: fetch the signing payload again and sign it",
                               details: [.preconditionViolation(type: "PAYLOAD", subject: "payload_sha256", description: "must be the current payload's SHA-256")])
            }
            guard let verifier else { throw RPCError(code: .unavailable, message: "signature verification is not configured on this server (no trust store)") }
            let v = try await SignedPayloads.verify(verifier, cms: request.cms, signedBytes: payload, receivedAt: receivedAt, field: "cms", context: context)
            guard v.isValid else { throw SignedPayloads.refusal(v) }
            _ = try SignedPayloads.open(v.signedBytes, expecting: .request)
            guard let org = s.key.organisationId, let kind = s.organisationKind, let pinfl = v.signer.subjectPINFL else {
                throw RPCError(code: .unauthenticated, message: "the signer's certificate carries no PINFL")
            }
            let heads = Role.allCases.filter { $0.signsRequests(in: kind) }
            let who = try await database.read(store.signer(pinfl: pinfl, certificateSHA256: v.signer.sha256, organisationId: org, roles: heads), for: context)
            guard let person = who.personId, who.registered else {
                throw RPCError(code: .unauthenticated, message: "the signing certificate is not registered in the directory to a person, or is revoked there")
            }
            guard who.holdsRole else {
                throw PermissionRules.denied(
                    PermissionRules.headSigns, "the signer is not the \(heads.map(\.rawValue).joined(separator: " or ")) of \(org)")
            }
            var info = SignedPayloads.info(v, cms: [])
            info.signedBytes = []
            signature = info.serializedBytes()
            signer = person
        }
        let year = Day(tashkentDayOf: receivedAt).year
        let due: Double? = rule.decisionDays > 0 ? Day(tashkentDayOf: receivedAt).adding(days: rule.decisionDays).endEpoch : nil
        let cms: [UInt8]? = r.signatureRequired ? request.cms : nil
        let actor = principal.auditActor
        let version = r.version
        let name = s.displayName
        let sig = signature
        let signerId = signer
        return try await mutate(key, fingerprint, s.key, context) { (c2) throws(StoreError) -> Result<Esaylov_V1_Request, RPCError> in
            guard let locked = try store.lock(c2, id: r.id) else { return .failure(RPCError(code: .notFound, message: "request_id names no request")) }
            if locked.status != .draft { return .failure(Self.stateRefusal(.submit, locked.status)) }
            if locked.version != version {
                return .failure(RPCError(code: .failedPrecondition, message: "the draft changed while it was being sent: fetch the signing payload again",
                                         details: [.preconditionViolation(type: "PAYLOAD", subject: "request \(r.id)", description: "changed")]))
            }
            let number = try store.submit(c2, id: r.id, receiverId: r.receiverId, year: year, submittedAt: receivedAt, decisionDue: due, envelope: payload,
                                          cms: cms, signature: sig, signerPersonId: signerId)
            try store.appendHistory(c2, requestId: r.id, actorOrganisationId: actor.organisationId, actorPersonId: actor.personId,
                                    kind: "submitted", from: .draft, to: .submitted, version: version + 1, note: "incoming No. \(number)")
            events.append(c2, requestId: r.id, kind: .submitted, status: .submitted, version: version + 1,
                          to: [.incoming(commissionId: r.receiverId), .outgoing(r.sender)])
            _ = try audit.append(c2, actor: actor, action: "AUDIT_ACTION_REQUEST_SUBMITTED", subjectKind: "request", subjectId: r.id,
                                 facts: ["type": String(r.type.rawValue), "receiver": r.receiverId, "incoming_number": number,
                                         "envelope_sha256": Crypto.hex(Crypto.sha256(payload)), "signed": String(sig != nil)])
            guard let stored = try c2.run(store.request(id: r.id)) else { throw StoreError(.other, reason: "the request vanished") }
            return Result { () throws(RPCError) in try self.wire(stored, .full, displayName: name) }
        }
    }

    public func withdrawRequest(request: Esaylov_V1_WithdrawRequestRequest, context: ServerContext) async throws -> Esaylov_V1_Request {
        let principal = try context.principal()
        let s = try await sender(principal, context)
        try checkRequestId(request.requestId)
        if request.reason.count > 2000 { throw invalid("reason", "must be at most 2000 characters") }
        let key = try idempotencyKey(request.idempotencyKey, required: false)
        let fingerprint = Self.fingerprint("WithdrawRequest", request)
        if let replay: Esaylov_V1_Request = try await replayed(key, fingerprint, s.key, context) { return replay }
        let r = try await owned(request.requestId, s, context)
        try transition(.withdraw, r.status)
        let actor = principal.auditActor
        let reason = request.reason
        let name = s.displayName
        return try await mutate(key, fingerprint, s.key, context) { (c2) throws(StoreError) -> Result<Esaylov_V1_Request, RPCError> in
            guard let locked = try store.lock(c2, id: r.id) else { return .failure(RPCError(code: .notFound, message: "request_id names no request")) }
            if case .failure(let e) = RequestLifecycle.apply(.withdraw, by: .sender, from: locked.status) { return .failure(Self.refusal(e)) }
            try store.withdraw(c2, id: r.id, reason: reason)
            try store.appendHistory(c2, requestId: r.id, actorOrganisationId: actor.organisationId, actorPersonId: actor.personId,
                                    kind: "withdrawn", from: locked.status, to: .withdrawn, version: locked.version + 1, note: reason)
            events.append(c2, requestId: r.id, kind: .withdrawn, status: .withdrawn, version: locked.version + 1,
                          to: [.incoming(commissionId: r.receiverId), .outgoing(r.sender)])
            _ = try audit.append(c2, actor: actor, action: "AUDIT_ACTION_REQUEST_WITHDRAWN", subjectKind: "request", subjectId: r.id,
                                 facts: ["from": locked.status.databaseName])
            guard let stored = try c2.run(store.request(id: r.id)) else { throw StoreError(.other, reason: "the request vanished") }
            return Result { () throws(RPCError) in try self.wire(stored, .full, displayName: name) }
        }
    }

    // MARK: reading

    public func getRequest(request: Esaylov_V1_GetRequestRequest, context: ServerContext) async throws -> Esaylov_V1_Request {
        try checkRequestId(request.requestId)
        let (r, reading) = try await readable(request.requestId, context)
        return try wire(r, reading)
    }

    public func getRequestHistory(request: Esaylov_V1_GetRequestHistoryRequest, context: ServerContext) async throws -> Esaylov_V1_GetRequestHistoryResponse {
        try checkRequestId(request.requestId)
        let (r, _) = try await readable(request.requestId, context)
        var out = Esaylov_V1_GetRequestHistoryResponse()
        out.entries = try await database.read(store.history(requestId: r.id), for: context).map { h in
            var e = Esaylov_V1_RequestHistoryEntry()
            e.at = timestamp(h.at)
            var a = Esaylov_V1_Actor()
            a.organisationId = h.actorOrganisationId
            a.personId = h.actorPersonId
            e.actor = a
            e.kind = Self.eventKind(h.kind)
            if let f = h.from { e.fromStatus = f.wire }
            e.toStatus = h.to.wire
            e.version = Int64(h.version)
            e.note = h.note
            return e
        }
        return out
    }

    public func listOutgoing(request: Esaylov_V1_ListOutgoingRequest, context: ServerContext) async throws -> Esaylov_V1_ListRequestsResponse {
        let s = try await sender(try context.principal(), context)
        let filter = try listFilter(request.filter)
        let scope = ["outgoing", s.key.description] + filter.canonical
        let (size, after) = try tokens.page(request.page, filter: scope, fields: 2) { f in Double(f[0]).map { ($0, f[1]) } }
        let (rows, watched) = try await database.read(store.outgoing(sender: s.key, filter: filter, after: after, limit: size + 1), for: context)
        let (page, last) = pageOf(rows, size)
        var out = Esaylov_V1_ListRequestsResponse()
        out.watchCursor = cursor(.outgoing(s.key), watched)
        out.requests = try page.map { (r) throws(RPCError) in try wire(r, .full, displayName: s.displayName) }
        out.page = pageInfo(last.map { tokens.encode(filter: scope, fields: [String($0.createdAt), $0.id]) } ?? "")
        return out
    }

    public func listIncoming(request: Esaylov_V1_ListIncomingRequest, context: ServerContext) async throws -> Esaylov_V1_ListRequestsResponse {
        let p = try context.principal()
        let commission = request.commissionId.isEmpty ? (p.organisationId ?? "") : request.commissionId
        let reading = try await inboxAccess(p, commission, context)
        if reading == .full, p.organisationId != commission {
            // An operator listing another commission's inbox reads the personal data in it (cl. 13).
            let actor = p.auditActor
            try await database.transaction(for: context) { [audit] (c) throws(StoreError) in
                _ = try audit.append(c, actor: actor, action: "AUDIT_ACTION_PERSONAL_DATA_READ", subjectKind: "inbox", subjectId: commission,
                                     facts: ["reader_role": "operator"])
            }
        }
        let filter = try listFilter(request.filter)
        let scope = ["incoming", commission, reading == .full ? "full" : "aggregate"] + filter.canonical
        let (size, after) = try tokens.page(request.page, filter: scope, fields: 2) { f in Double(f[0]).map { ($0, f[1]) } }
        let (rows, watched) = try await database.read(store.incoming(receiverId: commission, filter: filter, after: after, limit: size + 1), for: context)
        let (page, last) = pageOf(rows, size)
        var out = Esaylov_V1_ListRequestsResponse()
        out.watchCursor = cursor(.incoming(commissionId: commission), watched)
        out.requests = try page.map { (r) throws(RPCError) in try wire(r, reading) }
        out.page = pageInfo(last.map { tokens.encode(filter: scope, fields: [String($0.submittedAt ?? 0), $0.id]) } ?? "")
        return out
    }
}

/// The uploads a server runs at once: a bound on the memory they hold.
final class UploadSlots: Sendable {
    let limit: Int
    private let inUse = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
    }

    func acquire() -> Bool {
        if inUse.add(1, ordering: .relaxed).newValue <= limit { return true }
        inUse.subtract(1, ordering: .relaxed)
        return false
    }

    func release() {
        inUse.subtract(1, ordering: .relaxed)
    }
}
