import Domain
public import RPC
public import Store
import Foundation
import Signatures

/// Who may call what: one rule per method, read like the regulation. A method without a rule
/// is refused (PERMISSION_DENIED), so a service added without its rules is closed, not open.
public struct PermissionRule: Sendable, Hashable {
    public enum Requirement: Sendable, Hashable {
        /// Anyone, without a session.
        case open
        /// Any signed-in caller; the handler applies the rule's finer part.
        case session
        /// A signed-in caller holding this permission.
        case permission(Permission)
    }

    /// The rule's name, quoted in PERMISSION_DENIED.
    public let name: String
    /// The clause it comes from.
    public let clause: String
    public let requirement: Requirement
}

public enum PermissionRules {
    static func rule(_ name: String, _ clause: String, _ requirement: PermissionRule.Requirement) -> PermissionRule {
        PermissionRule(name: name, clause: clause, requirement: requirement)
    }

    static let probes = rule("operators' probes", "cl. 13 (uninterrupted operation)", .open)
    static let publicDirectory = rule("the public directory", "cl. 1", .open)
    static let signIn = rule("signing in", "cl. 9", .open)
    static let ownSession = rule("one's own session", "cl. 9", .session)
    static let personalRecords = rule(
        "personal records: the person, the commissions handling their requests, operators", "cl. 13", .session)
    static let auditRead = rule("the audit trail: auditors, and commissions for their part", "cl. 13", .permission(.readAudit))
    static let auditVerify = rule("verifying the audit chain: auditors", "cl. 13", .permission(.verifyAudit))

    /// The table, by method path.
    public static let byMethod: [String: PermissionRule] = {
        var t: [String: PermissionRule] = [:]
        for m in ["/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch",
                  "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                  "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"] { t[m] = probes }
        for m in ["GetOrganisation", "ListOrganisations", "GetCommissionTree", "ListMembers", "ListCandidates", "GetCandidate",
                  "ListProxies", "ListTerritories"] { t["/esaylov.v1.DirectoryService/\(m)"] = publicDirectory }
        for m in ["GetPerson", "ListCertificates"] { t["/esaylov.v1.DirectoryService/\(m)"] = personalRecords }
        for m in ["StartSignatureLogin", "FinishSignatureLogin", "RequestSmsCode", "VerifySmsCode"] { t["/esaylov.v1.AuthService/\(m)"] = signIn }
        for m in ["Logout", "WhoAmI"] { t["/esaylov.v1.AuthService/\(m)"] = ownSession }
        t["/esaylov.v1.AuditService/ListEvents"] = auditRead
        t["/esaylov.v1.AuditService/VerifyChain"] = auditVerify
        t.merge(requestMethods) { a, _ in a }
        t.merge(decisionMethods) { a, _ in a }
        return t
    }()

    static let machineIdentity = rule(
        "over mutual TLS, a session acts for the client certificate's holder: its organisation's TIN, or its person's PINFL", "cl. 13 (security)",
        .session)

    /// Under mutual TLS the verified client certificate is the calling system's identity: a
    /// session used on its connection must be of the organisation whose TIN it names (an
    /// agency system calling for its agency), or of the person whose PINFL it names.
    static func actsForCertificate(_ certificate: CertificateInfo, _ principal: Principal) throws(RPCError) {
        if let tin = certificate.subjectTIN {
            guard principal.session.organisationTIN == tin else {
                throw denied(machineIdentity, "the session is not of the organisation the client certificate names (TIN)")
            }
        } else if let pinfl = certificate.subjectPINFL {
            guard principal.session.pinfl == pinfl else { throw denied(machineIdentity, "the session is not of the person the client certificate names (PINFL)") }
        } else {
            throw denied(machineIdentity, "the client certificate names neither a TIN nor a PINFL")
        }
    }

    /// PERMISSION_DENIED naming the rule.
    public static func denied(_ rule: PermissionRule, _ why: String) -> RPCError {
        RPCError(
            code: .permissionDenied, message: "\(why): rule \"\(rule.name)\" (\(rule.clause))",
            details: [.info(reason: "PERMISSION_RULE", metadata: ["rule": rule.name, "clause": rule.clause])])
    }
}

/// Puts the rule table in front of every call. `accept` (on the event loop) refuses methods
/// without a rule and calls that need a session but carry no bearer token; `acceptAsync` looks
/// the session up (a read, off no thread), checks the rule's permission, and puts the
/// `Principal` on the context. Sliding expiry is written at most once a minute per session.
public struct AuthenticationInterceptor: ServerInterceptor {
    let database: Database
    let sessions: SessionPolicy
    let rules: [String: PermissionRule]

    public init(database: Database, sessions: SessionPolicy = SessionPolicy(), rules: [String: PermissionRule] = PermissionRules.byMethod) {
        self.database = database
        self.sessions = sessions
        self.rules = rules
    }

    /// What `accept` found for `acceptAsync`: the rule, and the SHA-256 of the bearer token.
    enum PendingCheck: ServerContextKey {
        typealias Value = (rule: PermissionRule, tokenSHA256: [UInt8])
    }

    public func accept(_ context: ServerContext) throws(RPCError) {
        guard let rule = rules[context.method.path] else {
            throw RPCError(code: .permissionDenied, message: "no permission rule covers \(context.method.path)")
        }
        if rule.requirement == .open { return }
        context[PendingCheck.self] = (rule, Crypto.sha256(Array(try Self.token(context).utf8)))
    }

    public func acceptAsync(_ context: ServerContext) async throws(RPCError) {
        guard let (rule, hash) = context[PendingCheck.self] else { return }
        let found = try await Self.session(hash, database, context, ended: "the session is unknown, expired or ended: sign in again")
        let principal = Principal(session: found)
        if let certificate = context.tls?.clientCertificate { try PermissionRules.actsForCertificate(certificate, principal) }
        if case .permission(let needed) = rule.requirement, !principal.permissions.contains(needed) {
            throw PermissionRules.denied(rule, "the session lacks the permission \(needed.rawValue)")
        }
        context[PrincipalKey.self] = principal
        await Self.touchIfDue(found, sessions, database, context)
    }

    /// The live session whose token hashes to `hash`, with the person's current roles;
    /// UNAUTHENTICATED saying `ended` when there is none.
    static func session(_ hash: [UInt8], _ database: Database, _ context: ServerContext, ended: String) async throws(RPCError) -> SessionRecord {
        guard let found = try await database.read(AuthStore().session(tokenSHA256: hash), for: context) else {
            throw RPCError(code: .unauthenticated, message: ended)
        }
        return found
    }

    /// Moves a session's idle expiry on when `policy` says it is due (a failure only means the
    /// next call tries again).
    static func touchIfDue(_ session: SessionRecord, _ policy: SessionPolicy, _ database: Database, _ context: ServerContext) async {
        guard policy.shouldTouch(idleExpiresAt: session.idleExpiresAt) else { return }
        let id = session.id
        let idle = policy.idle
        try? await database.transaction(timeout: context.timeRemaining) { (c) throws(StoreError) in
            try AuthStore().touch(c, id: id, idle: idle)
        }
    }

    /// The bearer token of `authorization`; UNAUTHENTICATED when absent or malformed.
    static func token(_ context: ServerContext) throws(RPCError) -> String {
        guard let header = context.requestMetadata["authorization"] else {
            throw RPCError(code: .unauthenticated, message: "this method needs a session: send authorization: Bearer <token>")
        }
        let prefix = "Bearer "
        guard header.hasPrefix(prefix), case let token = String(header.dropFirst(prefix.count)), SessionPolicy.isWellFormed(token) else {
            throw RPCError(code: .unauthenticated, message: "authorization must be \"Bearer \" and a session token")
        }
        return token
    }
}

/// Session lifetimes and the token format.
public struct SessionPolicy: Sendable {
    /// A session unused for this long ends.
    public var idle: Duration = .seconds(30 * 60)
    /// A session ends this long after sign-in, however much it is used.
    public var absolute: Duration = .seconds(12 * 3600)

    public init() {}

    static let prefix = "esy_"

    /// A new token: "esy_" and 43 base64url characters of 32 CSPRNG bytes (256 bits).
    static func newToken() -> String {
        prefix + Crypto.base64URL(Crypto.randomBytes(32))
    }

    static func isWellFormed(_ token: String) -> Bool {
        token.utf8.count == prefix.utf8.count + 43 && token.hasPrefix(prefix)
            && token.utf8.dropFirst(prefix.utf8.count).allSatisfy { c in
                (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c == 45 || c == 95
            }
    }

    /// Whether the idle expiry is worth moving on (it was last moved more than a minute ago).
    func shouldTouch(idleExpiresAt: Double, now: Double = Date().timeIntervalSince1970) -> Bool {
        idleExpiresAt - now < Double(idle.components.seconds) - 60
    }
}


extension PermissionRules {
    static let campaigns = rule("the campaign calendar and catalogue: every signed-in user", "cl. 6, 9", .session)
    static let sending = rule(
        "sending requests: organisations clause 6 gives a route (their heads sign), candidates and proxies", "cl. 6-8", .permission(.sendRequests))
    static let headSigns = rule("the head of the sending organisation signs its requests", "cl. 8", .permission(.sendRequests))
    static let ownRequests = rule("a sender's own requests", "cl. 6-8", .permission(.sendRequests))
    static let readRequests = rule(
        "reading a request: its sender, the receiving commission, operators; commissions above it in aggregate", "cl. 10, 13", .session)
    static let inbox = rule("a commission's inbox: its members, operators; commissions above it in aggregate", "cl. 10, 13", .session)
    static let uploading = rule(
        "uploading files: senders for their requests, a commission's deputy chairperson or secretary for its decisions", "cl. 8, 12", .session)
    static let watching = rule(
        "watching requests: a commission's inbox as ListIncoming, a sender's own requests as ListOutgoing", "cl. 10, 13", .session)
    static let personalData = rule("personal data in requests: the sender, the receiving commission, operators", "cl. 13", .session)

    static let deciding = rule("reviewing requests: the receiving commission's members", "cl. 10", .permission(.reviewRequests))
    static let drafting = rule("drafting decisions: the commission's deputy chairperson or secretary", "cl. 12", .permission(.draftDecisions))
    static let approving = rule("approving decisions with the EDS: the commission's chairperson or deputy chairperson", "cl. 11", .permission(.approveDecisions))
    static let readDecisions = rule("reading decisions: those they reach, the deciding commission and those above it, operators", "cl. 10, 13", .session)
    static let systemCertificates = rule("the system's signing certificates: anyone", "cl. 13", .open)

    /// The rules of DecisionService, by method.
    static let decisionMethods: [String: PermissionRule] = {
        let t: [String: PermissionRule] = [
            "StartReview": deciding, "DraftDecision": drafting, "ReturnDraft": approving, "GetApprovalPayload": approving,
            "ApproveDecision": approving, "GetDecision": readDecisions, "ListDecisions": readDecisions, "GetSystemCertificates": systemCertificates,
        ]
        return Dictionary(uniqueKeysWithValues: t.map { ("/esaylov.v1.DecisionService/\($0.key)", $0.value) })
    }()

    /// The rules of RequestService, by method.
    static let requestMethods: [String: PermissionRule] = {
        var t: [String: PermissionRule] = [:]
        for m in ["ListCampaigns", "GetCampaign", "ListRequestTypes"] { t[m] = campaigns }
        for m in ["ListReceivers", "CreateDraft", "UpdateDraft", "DeleteDraft", "GetSigningPayload", "SubmitRequest",
                  "WithdrawRequest", "ListOutgoing"] { t[m] = sending }
        for m in ["GetRequest", "GetRequestHistory", "DownloadAttachment"] { t[m] = readRequests }
        t["ListIncoming"] = inbox
        t["WatchRequests"] = watching
        t["UploadAttachment"] = uploading
        return Dictionary(uniqueKeysWithValues: t.map { ("/esaylov.v1.RequestService/\($0.key)", $0.value) })
    }()
}
