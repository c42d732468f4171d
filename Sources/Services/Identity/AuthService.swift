import Domain
import Foundation
public import ESaylovAPI
public import Logging
public import RPC
public import Signatures
public import Store
import Synchronization

/// Confirms who signed a login, the OneID step of clause 9: given the verified certificate, the
/// person it belongs to. A configurable OneID endpoint implements it later; `DirectoryIdentity`
/// does the same checks against our own directory now (the PINFL names a person, and the
/// certificate is registered to that person and not revoked).
public protocol IdentityProvider: Sendable {
    /// The person id, or UNAUTHENTICATED saying why not. Runs inside the login's transaction.
    func person(for certificate: CertificateInfo, in c: Connection) throws(StoreError) -> Result<RegisteredCertificate, RPCError>
}

public struct DirectoryIdentity: IdentityProvider {
    public init() {}

    public func person(for certificate: CertificateInfo, in c: Connection) throws(StoreError) -> Result<RegisteredCertificate, RPCError> {
        let store = AuthStore()
        guard let pinfl = certificate.subjectPINFL, let person = try store.person(c, pinfl: pinfl) else {
            return .failure(RPCError(code: .unauthenticated, message: "the certificate's PINFL names nobody in the directory"))
        }
        guard let registered = try store.certificate(c, sha256: certificate.sha256), registered.personId == person else {
            return .failure(RPCError(code: .unauthenticated, message: "the certificate is not registered in the directory"))
        }
        guard !registered.revoked else {
            return .failure(RPCError(code: .unauthenticated, message: "the certificate is revoked in the directory"))
        }
        return .success(registered)
    }
}

/// Per-address rate limits of the sign-in methods (the per-phone ones live in the database).
final class AddressLimiter: Sendable {
    struct Bucket {
        var tokens: Double
        var last: ContinuousClock.Instant
    }

    let burst: Double
    let perSecond: Double
    private let buckets = Mutex<[String: Bucket]>([:])
    /// Addresses tracked at most; beyond it the oldest half are forgotten.
    static let capacity = 100_000

    init(burst: Int, perMinute: Int) {
        self.burst = Double(burst)
        self.perSecond = Double(perMinute) / 60
    }

    func take(_ peer: String) -> Bool {
        let address = peer.lastIndex(of: ":").map { String(peer[..<$0]) } ?? peer
        let now = ContinuousClock.now
        return buckets.withLock { b in
            if b.count >= Self.capacity { b = b.filter { now - $0.value.last < .seconds(60) } }
            var bucket = b[address] ?? Bucket(tokens: burst, last: now)
            bucket.tokens = min(burst, bucket.tokens + Double((now - bucket.last) / .milliseconds(1)) / 1000 * perSecond)
            bucket.last = now
            guard bucket.tokens >= 1 else {
                b[address] = bucket
                return false
            }
            bucket.tokens -= 1
            b[address] = bucket
            return true
        }
    }
}

/// `esaylov.v1.AuthService`: EDS and SMS sign-in, sessions (clause 9).
public struct AuthService: Esaylov_V1_AuthService {
    let database: Database
    let verifier: SignatureVerifier?
    let identity: any IdentityProvider
    let policy: SessionPolicy
    let sms: SmsDelivery?
    let audience: String
    let smsKey: [UInt8]
    let logger: Logger
    let store = AuthStore()
    let audit = AuditLog()
    let challengeLimiter: AddressLimiter
    let smsRequestLimiter: AddressLimiter
    let smsVerifyLimiter: AddressLimiter

    static let challengeLifetime = 120.0
    static let codeLifetime = 300.0
    static let resendDelay = 60.0
    static let codesPerHour = 5

    public init(
        database: Database, verifier: SignatureVerifier?, identity: any IdentityProvider = DirectoryIdentity(), policy: SessionPolicy = SessionPolicy(),
        sms: SmsDelivery?, smsKey: [UInt8], audience: String = "e-saylov", signInPerMinute: Int = 30, logger: Logger
    ) {
        challengeLimiter = AddressLimiter(burst: signInPerMinute, perMinute: signInPerMinute)
        smsRequestLimiter = AddressLimiter(burst: signInPerMinute, perMinute: signInPerMinute)
        smsVerifyLimiter = AddressLimiter(burst: signInPerMinute, perMinute: signInPerMinute)
        self.database = database
        self.verifier = verifier
        self.identity = identity
        self.policy = policy
        self.sms = sms
        self.smsKey = smsKey
        self.audience = audience
        self.logger = logger
    }

    // MARK: EDS

    public func startSignatureLogin(
        request: Esaylov_V1_StartSignatureLoginRequest, context: ServerContext
    ) async throws -> Esaylov_V1_StartSignatureLoginResponse {
        guard verifier != nil else { throw RPCError(code: .unavailable, message: "EDS sign-in is not configured on this server (no trust store)") }
        let certificateSHA = try await registeredCertificate(request.certificate, context)
        let actAs = request.actAsOrganisationId.isEmpty ? nil : request.actAsOrganisationId
        if let actAs {
            try checkID(actAs, "act_as_organisation_id")
            guard try await database.read(DirectoryStore().organisation(id: actAs), for: context) != nil else {
                throw RPCError(code: .notFound, message: "act_as_organisation_id names no organisation",
                               details: [.fieldViolation(field: "act_as_organisation_id", description: "must name an organisation", reason: "NOT_FOUND")])
            }
        }
        guard challengeLimiter.take(context.peer) else {
            throw RPCError(code: .resourceExhausted, message: "too many sign-in challenges from this address; retry in a minute")
        }
        let id = Crypto.hex(Crypto.randomBytes(16))
        let now = Date().timeIntervalSince1970.rounded(.down)
        let expires = now + Self.challengeLifetime
        var challenge = Esaylov_V1_LoginChallenge()
        challenge.challengeId = id
        challenge.nonce = Crypto.randomBytes(32)
        challenge.audience = audience
        challenge.issuedAt = timestamp(now)
        challenge.expiresAt = timestamp(expires)
        challenge.actAsOrganisationId = actAs ?? ""
        let envelope = SignedPayloads.seal(.loginChallenge, body: challenge.serializedBytes())
        try await database.transaction(for: context) { [store] (c) throws(StoreError) in
            try store.insertChallenge(c, id: id, envelope: envelope, certificateSHA256: certificateSHA, actAs: actAs, issuedAt: now, expiresAt: expires)
        }
        var out = Esaylov_V1_StartSignatureLoginResponse()
        out.challengeId = id
        out.challenge = envelope
        out.expiresAt = timestamp(expires)
        return out
    }

    /// The SHA-256 of the optional `certificate` of StartSignatureLogin, once it is known to be
    /// registered and not revoked; nil when none was given.
    private func registeredCertificate(_ bytes: [UInt8], _ context: ServerContext) async throws(RPCError) -> String? {
        guard !bytes.isEmpty else { return nil }
        guard bytes.count <= 64 << 10, let cert = try? CertificateInfo(bytes) else {
            throw invalid("certificate", "must be an X.509 certificate (DER or PEM)")
        }
        guard let registered = try await database.read(store.certificate(sha256: cert.sha256), for: context), !registered.revoked else {
            throw RPCError(code: .unauthenticated, message: "the certificate is not registered in the directory, or is revoked")
        }
        return cert.sha256
    }

    public func finishSignatureLogin(request: Esaylov_V1_FinishSignatureLoginRequest, context: ServerContext) async throws -> Esaylov_V1_Session {
        guard let verifier else { throw RPCError(code: .unavailable, message: "EDS sign-in is not configured on this server (no trust store)") }
        guard Self.isHexID(request.challengeId) else { throw invalid("challenge_id", "must be the 32 hex digits StartSignatureLogin returned") }
        guard !request.cms.isEmpty else { throw invalid("cms", "is required") }
        guard request.cms.count <= 64 << 10 else { throw invalid("cms", "must be at most 65536 bytes") }
        let receivedAt = Date().timeIntervalSince1970
        let challengeId = request.challengeId
        let challenge = try await database.read(store.challenge(id: challengeId), for: context)
        guard let challenge else { throw RPCError(code: .notFound, message: "no sign-in challenge has id \(challengeId)") }
        guard !challenge.used else { throw RPCError(code: .failedPrecondition, message: "the challenge was already used: start again") }
        guard !challenge.expired else { throw RPCError(code: .failedPrecondition, message: "the challenge expired: start again") }
        let v = try await SignedPayloads.verify(verifier, cms: request.cms, signedBytes: challenge.envelope, receivedAt: receivedAt, field: "cms", context: context)
        _ = try SignedPayloads.open(v.signedBytes, expecting: .loginChallenge)
        if let expected = challenge.certificateSHA256, expected != v.signer.sha256 {
            try await loginFailed(context, subject: challengeId, kind: "login_challenge", reason: "certificate_changed")
            throw RPCError(code: .unauthenticated, message: "the challenge was started for another certificate")
        }
        guard v.isValid else {
            try await loginFailed(context, subject: challengeId, kind: "login_challenge",
                                  reason: (v.failure?.check ?? "signature").replacingOccurrences(of: " ", with: "_"))
            throw SignedPayloads.refusal(v)
        }
        let token = SessionPolicy.newToken()
        let tokenHash = Crypto.sha256(Array(token.utf8))
        let sessionID = Crypto.hex(Crypto.randomBytes(16))
        let policy = self.policy
        let identity = self.identity
        let signer = v.signer
        let outcome = try await database.transaction(for: context) { [store, audit] (c) throws(StoreError) -> Result<(idle: Double, absolute: Double, record: SessionRecord), RPCError> in
            guard let locked = try store.lockChallenge(c, id: challengeId), !locked.used, !locked.expired else {
                return .failure(RPCError(code: .failedPrecondition, message: "the challenge was already used or expired: start again"))
            }
            // Used whatever comes next: a refused challenge is not tried again.
            try store.useChallenge(c, id: challengeId)
            var person = ""
            // Which person, acting for which organisation, or why not (audited either way).
            func decide() throws(StoreError) -> Result<String, RPCError> {
                let registered: RegisteredCertificate
                switch try identity.person(for: signer, in: c) {
                case .success(let r): registered = r
                case .failure(let e): return .failure(e)
                }
                person = registered.personId
                // A legal entity's certificate names the organisation; otherwise the one named
                // at the start; otherwise the only one the person holds a role in.
                let current = try store.currentOrganisations(c, personId: registered.personId)
                let organisation: String
                if let tin = signer.subjectTIN {
                    guard let byTIN = try store.organisation(c, tin: tin), byTIN == registered.organisationId else {
                        return .failure(RPCError(code: .unauthenticated, message: "the certificate's TIN names no organisation it is registered for"))
                    }
                    if let actAs = locked.actAs, actAs != byTIN {
                        return .failure(RPCError(code: .permissionDenied, message: "the certificate acts for \(byTIN), not \(actAs)"))
                    }
                    organisation = byTIN
                } else if let actAs = locked.actAs {
                    organisation = actAs
                } else if current.count == 1 {
                    organisation = current[0]
                } else {
                    return .failure(RPCError(
                        code: .permissionDenied,
                        message: current.isEmpty ? "the signer holds no current role in any organisation"
                            : "the signer holds roles in several organisations: name one in StartSignatureLogin.act_as_organisation_id"))
                }
                guard current.contains(organisation) else {
                    return .failure(RPCError(code: .permissionDenied, message: "the signer holds no current role in \(organisation)"))
                }
                return .success(organisation)
            }
            switch try decide() {
            case .failure(let e):
                try audit.append(c, actor: AuditActor(personId: person), action: "AUDIT_ACTION_LOGIN_FAILED", subjectKind: "login_challenge",
                                 subjectId: challengeId, facts: ["method": "signature", "reason": e.code == .permissionDenied ? "no_current_role" : "identity"])
                return .failure(e)
            case .success(let organisation):
                let times = try store.insertSession(
                    c, id: sessionID, tokenSHA256: tokenHash, personId: person, organisationId: organisation, candidateId: nil,
                    proxyId: nil, method: "signature", certificateSHA256: signer.sha256, idle: policy.idle, absolute: policy.absolute)
                try audit.append(c, actor: AuditActor(organisationId: organisation, personId: person), action: "AUDIT_ACTION_LOGIN",
                                 subjectKind: "session", subjectId: sessionID, facts: ["method": "signature", "certificate_serial": signer.serial])
                return .success((times.idle, times.absolute, try Self.readBack(c, store, tokenHash)))
            }
        }
        let opened = try outcome.get()
        return session(token: token, record: opened.record, idle: opened.idle, absolute: opened.absolute)
    }

    private func loginFailed(_ context: ServerContext, subject: String, kind: String, reason: String) async throws(RPCError) {
        _ = try await database.transaction(for: context) { [audit] (c) throws(StoreError) in
            try audit.append(c, actor: AuditActor(), action: "AUDIT_ACTION_LOGIN_FAILED", subjectKind: kind, subjectId: subject,
                             facts: ["method": "signature", "reason": reason])
        }
    }

    /// The new session, read in the transaction that made it: read after the commit, a session
    /// could already be gone (sign-ins of the same person past the cap of live sessions end the
    /// oldest), which once made a sign-in answer INTERNAL.
    static func readBack(_ c: Connection, _ store: AuthStore, _ tokenHash: [UInt8]) throws(StoreError) -> SessionRecord {
        guard let record = try c.run(store.session(tokenSHA256: tokenHash)) else {
            throw StoreError(.other, reason: "the new session could not be read back")
        }
        return record
    }

    /// The new session as the client gets it.
    private func session(token: String, record: SessionRecord, idle: Double, absolute: Double) -> Esaylov_V1_Session {
        var s = Esaylov_V1_Session()
        s.token = token
        s.expiresAt = timestamp(idle)
        s.absoluteExpiresAt = timestamp(absolute)
        s.principal = Principal(session: record).wire
        return s
    }

    // MARK: SMS

    public func requestSmsCode(request: Esaylov_V1_RequestSmsCodeRequest, context: ServerContext) async throws -> Esaylov_V1_RequestSmsCodeResponse {
        let phone: String
        do throws(DomainViolation) { phone = try PhoneNumber(request.phone, field: "phone").value } catch { throw invalid(error.field, error.rule) }
        guard smsRequestLimiter.take(context.peer) else {
            throw RPCError(code: .resourceExhausted, message: "too many codes requested from this address; retry later")
        }
        let id = Crypto.hex(Crypto.randomBytes(16))
        let code = Self.newCode()
        let mac = Self.codeMAC(key: smsKey, attempt: id, phone: phone, code: code)
        let now = Date().timeIntervalSince1970.rounded(.down)
        let outcome = try await database.transaction(for: context) { [store] (c) throws(StoreError) -> Double? in
            let recent = try store.recentCodes(c, phone: phone)
            if let since = recent.secondsSinceLast, since < Self.resendDelay { return Self.resendDelay - since }
            if recent.count >= Self.codesPerHour { return 3600 }
            let user = try store.smsUser(c, phone: phone)
            try store.insertAttempt(c, id: id, phone: phone, personId: user?.personId, codeMAC: mac, createdAt: now, expiresAt: now + Self.codeLifetime)
            if user != nil {
                try store.enqueueSMS(c, phone: phone, body: "E-saylov: your sign-in code is \(code). It expires in 5 minutes. Do not share it.")
            }
            return nil
        }
        if let wait = outcome {
            throw RPCError(
                code: .resourceExhausted, message: "a code was requested for this phone too recently; retry in \(Int(wait.rounded(.up))) seconds",
                details: [.info(reason: "RETRY_AFTER", metadata: ["retry_after_seconds": String(Int(wait.rounded(.up)))])])
        }
        sms?.wake()
        var out = Esaylov_V1_RequestSmsCodeResponse()
        out.attemptId = id
        out.expiresAt = timestamp(now + Self.codeLifetime)
        out.resendAfter = timestamp(now + Self.resendDelay)
        return out
    }

    public func verifySmsCode(request: Esaylov_V1_VerifySmsCodeRequest, context: ServerContext) async throws -> Esaylov_V1_Session {
        let phone: String
        do throws(DomainViolation) { phone = try PhoneNumber(request.phone, field: "phone").value } catch { throw invalid(error.field, error.rule) }
        guard Self.isHexID(request.attemptId) else { throw invalid("attempt_id", "must be the 32 hex digits RequestSmsCode returned") }
        guard request.code.utf8.count == 6, request.code.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { throw invalid("code", "must be 6 digits") }
        guard smsVerifyLimiter.take(context.peer) else {
            throw RPCError(code: .resourceExhausted, message: "too many codes tried from this address; retry later")
        }
        let attemptId = request.attemptId
        let given = Self.codeMAC(key: smsKey, attempt: attemptId, phone: phone, code: request.code)
        let token = SessionPolicy.newToken()
        let tokenHash = Crypto.sha256(Array(token.utf8))
        let sessionID = Crypto.hex(Crypto.randomBytes(16))
        let policy = self.policy
        let refused = RPCError(code: .unauthenticated, message: "the code is wrong, expired or used, or was not sent to this phone")
        let outcome = try await database.transaction(for: context) { [store, audit] (c) throws(StoreError) -> Result<(idle: Double, absolute: Double, record: SessionRecord), RPCError> in
            guard let attempt = try store.lockAttempt(c, id: attemptId), attempt.phone == phone, attempt.usable else { return .failure(refused) }
            guard Crypto.constantTimeEqual(attempt.codeMAC, given), let personId = attempt.personId,
                let user = try store.smsUser(c, phone: phone), user.personId == personId
            else {
                try store.wrongCode(c, id: attemptId)
                try audit.append(c, actor: AuditActor(personId: attempt.personId ?? ""), action: "AUDIT_ACTION_LOGIN_FAILED",
                                 subjectKind: "sms_attempt", subjectId: attemptId,
                                 facts: ["method": "sms", "reason": "wrong_code", "wrong_tries": String(attempt.wrongTries + 1)])
                return .failure(refused)
            }
            try store.useAttempt(c, id: attemptId)
            let times = try store.insertSession(
                c, id: sessionID, tokenSHA256: tokenHash, personId: personId, organisationId: nil, candidateId: user.candidateId,
                proxyId: user.proxyId, method: "sms", certificateSHA256: nil, idle: policy.idle, absolute: policy.absolute)
            try audit.append(c, actor: AuditActor(personId: personId), action: "AUDIT_ACTION_LOGIN", subjectKind: "session", subjectId: sessionID,
                             facts: ["method": "sms"])
            return .success((times.idle, times.absolute, try Self.readBack(c, store, tokenHash)))
        }
        let times = try outcome.get()
        return session(token: token, record: times.record, idle: times.idle, absolute: times.absolute)
    }

    /// 6 digits, uniform, from the CSPRNG.
    static func newCode() -> String {
        let n = Crypto.randomInteger(below: 1_000_000)
        let s = String(n)
        return String(repeating: "0", count: 6 - s.count) + s
    }

    /// HMAC-SHA-256 under the server's SMS key, bound to the attempt and the phone.
    static func codeMAC(key: [UInt8], attempt: String, phone: String, code: String) -> [UInt8] {
        Crypto.hmacSHA256(key: key, Array("esaylov.sms-code.v1\u{0}\(attempt)\u{0}\(phone)\u{0}\(code)".utf8))
    }

    // MARK: sessions

    public func logout(request: Esaylov_V1_LogoutRequest, context: ServerContext) async throws -> Esaylov_V1_LogoutResponse {
        let principal = try context.principal()
        let id = principal.session.id
        let actor = principal.auditActor
        _ = try await database.transaction(for: context) { [store, audit] (c) throws(StoreError) in
            if try store.revoke(c, id: id) {
                try audit.append(c, actor: actor, action: "AUDIT_ACTION_LOGOUT", subjectKind: "session", subjectId: id)
            }
        }
        return Esaylov_V1_LogoutResponse()
    }

    public func whoAmI(request: Esaylov_V1_WhoAmIRequest, context: ServerContext) async throws -> Esaylov_V1_Principal {
        try context.principal().wire
    }

    // MARK: helpers

    static func isHexID(_ s: String) -> Bool { isLowerHex(s, count: 32) }

    private func checkID(_ id: String, _ field: String) throws(RPCError) {
        guard id.utf8.count <= 64, id.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }) else {
            throw invalid(field, "must be an organisation id (at most 64 of a-z 0-9 -)")
        }
    }
}

extension Principal {
    var wire: Esaylov_V1_Principal {
        var p = Esaylov_V1_Principal()
        p.personId = personId
        var name = Esaylov_V1_PersonName()
        name.lastName = session.lastName
        name.firstName = session.firstName
        name.patronymic = session.patronymic
        p.name = name
        p.organisationId = organisationId ?? ""
        if let kind = session.organisationKind { p.organisationKind = kind.wire }
        p.roles = roles.map(\.wire)
        p.candidateId = session.candidateId ?? ""
        p.proxyId = session.proxyId ?? ""
        p.loginMethod = session.method == "signature" ? .signature : .sms
        p.permissions = permissions.sorted().map(\.wire)
        return p
    }
}

extension Permission {
    var wire: Esaylov_V1_Permission {
        switch self {
        case .readOwnRecord: .readOwnRecord
        case .sendRequests: .sendRequests
        case .signRequests: .signRequests
        case .reviewRequests: .reviewRequests
        case .draftDecisions: .draftDecisions
        case .approveDecisions: .approveDecisions
        case .readPersonalData: .readPersonalData
        case .readAudit: .readAudit
        case .verifyAudit: .verifyAudit
        case .manageDirectory: .manageDirectory
        }
    }
}
