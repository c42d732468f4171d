public import ESaylovAPI
import Foundation
import ProtoRuntime
public import Logging
public import RPC
public import ServiceLifecycle
public import Signatures
public import Store

/// Verification and checkpoints of the audit chain, shared by `AuditService` and `esaylovctl`.
public struct AuditChain: Sendable {
    let database: Database
    let log = AuditLog()

    public init(database: Database) {
        self.database = database
    }

    public struct Report: Sendable {
        public var check: ChainCheck
        public var headSequence: Int
        public var checkpointSequence: Int
        public var checkpointIntact: Bool
    }

    /// Recomputes events `from`…`to` (0: the beginning / the end), reading 1000 at a time, and
    /// checks the latest checkpoint: its signature (when `verifier` is given) and its event.
    public func verify(from: Int, to: Int, verifier: SignatureVerifier?, timeout: Duration? = nil) async throws(StoreError) -> Report {
        let head = try await database.read(log.head(), timeout: timeout)
        let first = max(1, from)
        let last = to == 0 ? head.sequence : to
        let before = first == 1 ? AuditLog.genesisHash : (try await database.read(log.hash(at: first - 1), timeout: timeout) ?? "")
        var check = ChainCheck(from: first, to: last, previousHash: before)
        var next = first
        while next <= last {
            let page = try await database.read(log.range(from: next, through: last, limit: 1000), timeout: timeout)
            guard check.feed(page), let end = page.last else { break }
            next = end.sequence + 1
        }
        var checkpointSequence = 0
        var checkpointIntact = false
        var checkpoint: (sequence: Int, hash: String, storedHash: String?, signatureValid: Bool)?
        if let latest = try await database.read(log.latestCheckpoint(), timeout: timeout) {
            checkpointSequence = latest.sequence
            let stored = try await database.read(log.hash(at: latest.sequence), timeout: timeout)
            // Without a trust store (an operator's tool on another machine) the checkpoint's
            // signature is not checked, and the report says the checkpoint is not intact.
            let signed = verifier.map { Self.checkpointSignatureValid(latest, $0) } ?? false
            checkpoint = (latest.sequence, latest.hash, stored, signed || verifier == nil)
            checkpointIntact = signed && stored == latest.hash
        }
        check.finish(headSequence: head.sequence, headHash: head.hash, maxStored: head.maxStored, checkpoint: checkpoint)
        return Report(check: check, headSequence: head.sequence, checkpointSequence: checkpointSequence, checkpointIntact: checkpointIntact)
    }

    /// The checkpoint's CMS verifies now, over its stored bytes, which are an audit-checkpoint
    /// envelope stating the same (sequence, hash).
    static func checkpointSignatureValid(_ c: AuditLog.Checkpoint, _ verifier: SignatureVerifier) -> Bool {
        guard let v = try? verifier.verify(cms: c.cms, content: c.signedBytes, at: Date().timeIntervalSince1970), v.isValid,
            let body = try? SignedPayloads.open(c.signedBytes, expecting: .auditCheckpoint),
            let statement = try? body.withUnsafeBytes({ (b) throws(ProtoDecodingError) in try Esaylov_V1_AuditCheckpoint(serializedBytes: b) })
        else { return false }
        return Int(statement.sequence) == c.sequence && statement.hash == c.hash
    }

    /// Signs (sequence, hash) of the head as a checkpoint, unless the head has one already or the
    /// log is empty. Returns the sequence covered.
    @discardableResult
    public func checkpoint(signer: SigningIdentity) async throws(StoreError) -> Int? {
        try await log.flush(database)
        let head = try await database.read(log.head())
        guard head.sequence > 0 else { return nil }
        if let latest = try await database.read(log.latestCheckpoint()), latest.sequence >= head.sequence { return latest.sequence }
        let now = Date().timeIntervalSince1970
        var statement = Esaylov_V1_AuditCheckpoint()
        statement.sequence = Int64(head.sequence)
        statement.hash = head.hash
        statement.at = timestamp(now)
        let signed = SignedPayloads.seal(.auditCheckpoint, body: statement.serializedBytes())
        let cms: [UInt8]
        do { cms = try signer.signDetached(signed) } catch { throw StoreError(.other, reason: "signing the checkpoint: \(error.reason)") }
        let sha = signer.certificate.sha256
        let log = self.log
        try await database.transaction { (c) throws(StoreError) in
            try log.saveCheckpoint(c, sequence: head.sequence, hash: head.hash, atMicros: Int(now * 1_000_000), signedBytes: signed, cms: cms,
                                   certificateSHA256: sha)
        }
        return head.sequence
    }
}

/// Puts pending audit events into the hash chain: at once while batches come full, otherwise
/// every `interval`; what is pending at shutdown is chained before it returns. One chainer
/// works at a time across servers (the others find the chain held and wait for the next turn).
public struct AuditChainer: Service {
    let chain: AuditChain
    let interval: Duration
    let logger: Logger

    public init(database: Database, interval: Duration = .milliseconds(50), logger: Logger) {
        chain = AuditChain(database: database)
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        let log = AuditLog()
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do { try await log.flush(chain.database) } catch {
                logger.warning("chaining audit events failed", metadata: ["error": "\(error.kind)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
        do { try await log.flush(chain.database) } catch {
            logger.warning("chaining audit events at shutdown failed", metadata: ["error": "\(error.kind)"])
        }
    }
}

/// Signs a checkpoint whenever `every` events have been added since the last one (checked
/// every few seconds).
public struct AuditCheckpointer: Service {
    let chain: AuditChain
    let signer: SigningIdentity
    let every: Int
    let logger: Logger

    public init(database: Database, signer: SigningIdentity, every: Int = 1000, logger: Logger) {
        chain = AuditChain(database: database)
        self.signer = signer
        self.every = every
        self.logger = logger
    }

    public func run() async throws {
        let log = AuditLog()
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(5)) }
            if Task.isShuttingDownGracefully { break }
            do {
                let head = try await chain.database.read(log.head())
                let last = try await chain.database.read(log.latestCheckpoint())?.sequence ?? 0
                if head.sequence - last >= every { try await chain.checkpoint(signer: signer) }
            } catch {
                logger.warning("audit checkpoint failed", metadata: ["error": "\(error.kind)"])
            }
        }
    }
}

/// `esaylov.v1.AuditService`: reading and verifying the audit trail (clause 13).
public struct AuditService: Esaylov_V1_AuditService {
    let database: Database
    let verifier: SignatureVerifier?
    let tokens: PageTokens

    public init(database: Database, verifier: SignatureVerifier?, tokens: PageTokens) {
        self.database = database
        self.verifier = verifier
        self.tokens = tokens
    }

    /// Every action by its contract name ("AUDIT_ACTION_PERSONAL_DATA_READ"), made from the
    /// generated cases so that an action added to audit.proto cannot be left out.
    static let actionNames: [Esaylov_V1_AuditAction: String] = {
        var out: [Esaylov_V1_AuditAction: String] = [:]
        for action in Esaylov_V1_AuditAction.allCases where action != .unspecified {
            let camel = String(describing: action)
            guard !camel.hasPrefix("unrecognized") else { continue }
            var name = "AUDIT_ACTION_"
            for ch in camel { name += ch.isUppercase ? "_" + String(ch) : ch.uppercased() }
            out[action] = name
        }
        return out
    }()
    static let actionsByName = Dictionary(uniqueKeysWithValues: actionNames.map { ($0.value, $0.key) })

    public func listEvents(request: Esaylov_V1_ListEventsRequest, context: ServerContext) async throws -> Esaylov_V1_ListEventsResponse {
        let principal = try context.principal()
        var filter = AuditLog.Filter()
        for (value, field) in [(request.subjectId, "subject_id"), (request.actorPersonId, "actor_person_id")] where value.utf8.count > 64 {
            throw invalid(field, "must be at most 64 characters")
        }
        if !request.subjectId.isEmpty { filter.subjectId = request.subjectId }
        if !request.actorPersonId.isEmpty { filter.actorPersonId = request.actorPersonId }
        guard request.actions.count <= 32 else { throw invalid("actions", "must have at most 32 entries") }
        for (i, a) in request.actions.enumerated() {
            guard let name = Self.actionNames[a] else { throw invalid("actions[\(i)]", "must be a known audit action") }
            filter.actions.append(name)
        }
        if let t = request.after { filter.afterMicros = Int(t.seconds) * 1_000_000 + Int(t.nanos) / 1000 }
        if let t = request.before { filter.beforeMicros = Int(t.seconds) * 1_000_000 + Int(t.nanos) / 1000 }
        // A commission sees the events it took part in or that concern it; auditors see all.
        if !principal.seesWholeAuditTrail { filter.visibleTo = [principal.organisationId ?? principal.personId] }
        let size = Int(request.page?.pageSize ?? 0)
        guard size >= 0, size <= 500 else { throw invalid("page.page_size", "must be 0 to 500") }
        let limit = size == 0 ? 50 : size
        // The token is tied to the filter and to who asked (a commission's token does not page
        // an auditor's view).
        let tokenFilter = ["audit.v1", filter.subjectId ?? "", filter.actorPersonId ?? "", filter.actions.joined(separator: ","),
                           filter.afterMicros.map(String.init) ?? "", filter.beforeMicros.map(String.init) ?? "",
                           filter.visibleTo?.joined(separator: ",") ?? "*"]
        var after = 0
        if let token = request.page?.pageToken, !token.isEmpty {
            guard token.utf8.count <= 512, let fields = tokens.decode(token, filter: tokenFilter, fieldCount: 1), let n = Int(fields[0]), n >= 0 else {
                throw invalid("page.page_token", "must be a next_page_token of this list with the same filter")
            }
            after = n
        }
        let rows = try await database.read(AuditLog().events(after: after, filter: filter, limit: limit + 1), for: context)
        var out = Esaylov_V1_ListEventsResponse()
        out.events = rows.prefix(limit).map { e in
            var w = Esaylov_V1_AuditEvent()
            w.sequence = Int64(e.sequence)
            w.at = timestamp(micros: e.atMicros)
            var actor = Esaylov_V1_Actor()
            actor.organisationId = e.actorOrganisationId
            actor.personId = e.actorPersonId
            w.actor = actor
            w.action = Self.actionsByName[e.action] ?? .unspecified
            w.subjectId = e.subjectId
            w.subjectKind = e.subjectKind
            w.facts = Dictionary(uniqueKeysWithValues: e.facts.map { ($0.key, $0.value) })
            w.previousHash = e.previousHash
            w.hash = e.hash
            return w
        }
        var page = Esaylov_V1_PageInfo()
        if rows.count > limit, let last = rows.prefix(limit).last {
            page.nextPageToken = tokens.encode(filter: tokenFilter, fields: [String(last.sequence)])
        }
        out.page = page
        return out
    }

    public func verifyChain(request: Esaylov_V1_VerifyChainRequest, context: ServerContext) async throws -> Esaylov_V1_VerifyChainResponse {
        guard request.fromSequence >= 0, request.toSequence >= 0 else { throw invalid("from_sequence", "must not be negative") }
        if request.toSequence != 0, request.toSequence < request.fromSequence {
            throw invalid("to_sequence", "must not be below from_sequence")
        }
        // Hashing the chain is CPU work: it runs on the global executor, not on the event loop
        // this handler runs on, bounded by the call's deadline.
        let chain = AuditChain(database: database)
        let (from, to, verifier, timeout) = (Int(request.fromSequence), Int(request.toSequence), self.verifier, context.timeRemaining)
        let outcome = await Task.detached { () -> Result<AuditChain.Report, StoreError> in
            do throws(StoreError) {
                return .success(try await chain.verify(from: from, to: to, verifier: verifier, timeout: timeout))
            } catch { return .failure(error) }
        }.value
        let report: AuditChain.Report
        switch outcome {
        case .success(let r): report = r
        case .failure(let e): throw RPCError(e)
        }
        var out = Esaylov_V1_VerifyChainResponse()
        out.intact = report.check.intact
        out.checked = Int64(report.check.checked)
        out.firstBrokenSequence = Int64(report.check.firstBroken)
        out.headSequence = Int64(report.headSequence)
        out.headHash = report.check.lastHash
        out.checkpointSequence = Int64(report.checkpointSequence)
        out.checkpointIntact = report.checkpointIntact
        out.problem = report.check.problem
        return out
    }
}
