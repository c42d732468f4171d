import Domain
import ESaylovAPI
import Foundation
import RPC
@testable import Services
import Signatures
@testable import Store
import Testing

/// A development CA in a temporary directory, made with the same code as `esaylovctl pki`.
final class TestCA {
    let directory: String
    let authority: SigningIdentity
    let now = Date().timeIntervalSince1970
    private var revoked: [(serial: String, at: Double)] = []

    init() throws {
        directory = NSTemporaryDirectory() + "esaylov-ca-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let key = try PrivateKey.generate()
        let cert = try DevelopmentPKI.issue(
            subject: .init(commonName: "Test CA \(UUID().uuidString.prefix(8))"), key: key, issuer: nil, serial: DevelopmentPKI.randomSerial(),
            notBefore: now - 86_400 * 90,
            notAfter: now + 86_400 * 30, authority: true)
        authority = try SigningIdentity(key: key, certificatePEMOrDER: cert)
        try Data(cert).write(to: URL(fileURLWithPath: directory + "/ca.pem"))
        try writeCRL()
    }

    func writeCRL() throws {
        let crl = try DevelopmentPKI.revocationList(
            issuer: authority, revoked: revoked, number: revoked.count + 1, thisUpdate: now - 60, nextUpdate: now + 86_400)
        try Data(crl).write(to: URL(fileURLWithPath: directory + "/crl.pem"))
    }

    func revoke(_ serial: String) throws {
        revoked.append((serial, now))
        try writeCRL()
    }

    /// A time-stamping authority under this CA.
    func tsa() throws -> SigningIdentity {
        let key = try PrivateKey.generate()
        let cert = try DevelopmentPKI.issue(
            subject: .init(commonName: "Test TSA"), key: key, issuer: authority, serial: DevelopmentPKI.randomSerial(), notBefore: now - 86_400 * 60,
            notAfter: now + 86_400 * 30, authority: false, timeStamping: true)
        return try SigningIdentity(key: key, certificatePEMOrDER: cert)
    }

    func person(pinfl: String = "31507851234563", tin: String? = nil, from: Double = -86_400, days: Double = 30,
                kind: PrivateKey.Kind = .p256) throws -> SigningIdentity {
        let key = try PrivateKey.generate(kind)
        let cert = try DevelopmentPKI.issue(
            subject: .init(commonName: "Test Person", pinfl: pinfl, tin: tin), key: key, issuer: authority, serial: DevelopmentPKI.randomSerial(),
            notBefore: now + from, notAfter: now + from + days * 86_400, authority: false)
        return try SigningIdentity(key: key, certificatePEMOrDER: cert)
    }
}

@Suite("Signatures")
struct SignatureTests {
    let payload = Array("the bytes signed".utf8)

    @Test func aDetachedSignaturePassesEveryCheckAndNamesTheSigner() throws {
        let ca = try TestCA()
        let signer = try ca.person(tin: "200000001")
        let verifier = SignatureVerifier(trustStore: try TrustStore(directory: ca.directory))
        let v = try verifier.verify(cms: try signer.signDetached(payload), content: payload, at: ca.now)
        #expect(v.isValid)
        #expect(v.algorithm == "ecdsa-sha256")
        #expect(v.signer.subjectPINFL == "31507851234563")
        #expect(v.signer.subjectTIN == "200000001")
        #expect(v.signedBytes == payload)
    }

    @Test func eachCheckFailsOnItsOwn() throws {
        let ca = try TestCA()
        let verifier = SignatureVerifier(trustStore: try TrustStore(directory: ca.directory, recheckInterval: .zero))
        let good = try ca.person()
        // Tampered bytes: the signature check.
        var v = try verifier.verify(cms: try good.signDetached(payload), content: payload + [0], at: ca.now)
        #expect(!v.signature.passed && v.failure?.check == "signature")
        // Validity is checked at the time given (the receipt time), not the CMS signing time.
        v = try verifier.verify(cms: try good.signDetached(payload), content: payload, at: ca.now + 86_400 * 40)
        #expect(v.signature.passed && v.chain.passed && !v.validity.passed)
        let early = try ca.person(from: 86_400)
        v = try verifier.verify(cms: try early.signDetached(payload), content: payload, at: ca.now)
        #expect(v.failure?.check == "certificate validity")
        // Untrusted CA: the chain check.
        let stranger = try TestCA().person()
        v = try verifier.verify(cms: try stranger.signDetached(payload), content: payload, at: ca.now)
        #expect(v.failure?.check == "certificate chain")
        // Revoked: seen on the first verification after the CRL changes, though the chain was cached.
        let cms = try good.signDetached(payload)
        #expect(try verifier.verify(cms: cms, content: payload, at: ca.now).isValid)
        try ca.revoke(good.certificate.serial)
        v = try verifier.verify(cms: cms, content: payload, at: ca.now)
        #expect(v.signature.passed && v.chain.passed && !v.revocation.passed)
    }

    @Test func attachedContentMustBeTheExpectedBytes() throws {
        let ca = try TestCA()
        let verifier = SignatureVerifier(trustStore: try TrustStore(directory: ca.directory))
        let cms = try ca.person(kind: .rsa2048).signAttached(payload)
        #expect(try verifier.verify(cms: cms, content: nil, at: ca.now).isValid)
        #expect(try verifier.verify(cms: cms, content: payload, at: ca.now).algorithm == "rsa-sha256")
        #expect(!(try verifier.verify(cms: cms, content: Array("other".utf8), at: ca.now)).signature.passed)
    }

    @Test func aTrustedTimeStampSetsTheTimeOfTheChecks() throws {
        let ca = try TestCA()
        let verifier = SignatureVerifier(trustStore: try TrustStore(directory: ca.directory))
        // Expired five days ago; time-stamped ten days ago, when it was valid.
        let signer = try ca.person(from: -86_400 * 20, days: 15)
        let stampedAt = ca.now - 86_400 * 10
        let cms = try signer.signDetached(payload, timeStamp: (try ca.tsa(), stampedAt))
        let now = try verifier.verify(cms: cms, content: payload, at: ca.now)
        #expect(now.signature.passed && !now.validity.passed && !now.timeStamped)
        let then = try verifier.verify(cms: cms, content: payload, at: ca.now, timeStamps: .trustedTimeStamp)
        #expect(then.isValid && then.timeStamped && then.checkedAt == stampedAt.rounded(.down), "\(String(describing: then.failure))")
        // A token by a TSA of another CA does not count, and fails the check rather than being ignored.
        let stranger = try TestCA()
        let foreign = try signer.signDetached(payload, timeStamp: (try stranger.tsa(), stampedAt))
        let refused = try verifier.verify(cms: foreign, content: payload, at: ca.now, timeStamps: .trustedTimeStamp)
        #expect(!refused.validity.passed && refused.failure?.reason.contains("time-stamp") == true)
        // Only a certificate with the timeStamping purpose makes tokens.
        #expect(throws: SigningError.self) { try signer.signDetached(payload, timeStamp: (try ca.person(), ca.now)) }
        // Revocation is judged now: a certificate revoked since the token's time is refused.
        try ca.revoke(signer.certificate.serial)
        let fresh = SignatureVerifier(trustStore: try TrustStore(directory: ca.directory))
        let revoked = try fresh.verify(cms: cms, content: payload, at: ca.now, timeStamps: .trustedTimeStamp)
        #expect(revoked.validity.passed && !revoked.revocation.passed)
    }

    @Test func malformedCMSIsAFormatError() throws {
        let ca = try TestCA()
        let verifier = SignatureVerifier(trustStore: try TrustStore(directory: ca.directory))
        #expect(throws: SignatureFormatError.self) { try verifier.verify(cms: [0x30, 0x03, 1, 2, 3], content: payload, at: ca.now) }
        #expect(throws: SignatureFormatError.self) { try verifier.verify(cms: [], content: payload, at: ca.now) }
        let detached = try ca.person().signDetached(payload)
        #expect(throws: SignatureFormatError.self) { try verifier.verify(cms: detached, content: nil, at: ca.now) }
    }

    @Test func anUnregisteredAlgorithmIsRefused() throws {
        let ca = try TestCA()
        var registry = AlgorithmRegistry.openSSL
        struct Never: ExternalSignatureAlgorithm {
            var name: String { "refuses-all" }
            func verify(cms: [UInt8], content: [UInt8], signerCertificate: [UInt8]) -> Bool { false }
        }
        registry.register(oid: "1.2.840.10045.4.3.2", Never())
        registry.register(oid: "1.2.840.10045.2.1", Never())
        let verifier = SignatureVerifier(trustStore: try TrustStore(directory: ca.directory), algorithms: registry)
        let v = try verifier.verify(cms: try ca.person().signDetached(payload), content: payload, at: ca.now)
        #expect(v.algorithm == "refuses-all" && !v.signature.passed)
    }
}

@Suite("Signed envelopes, sessions and permissions")
struct IdentityRuleTests {
    @Test func aLoginSignatureIsRefusedForARequest() throws {
        let login = SignedPayloads.seal(.loginChallenge, body: [1, 2, 3])
        #expect(try SignedPayloads.open(login, expecting: .loginChallenge) == [1, 2, 3])
        #expect(throws: RPCError.self) { try SignedPayloads.open(login, expecting: .request) }
        #expect(throws: RPCError.self) { try SignedPayloads.open(login, expecting: .auditCheckpoint) }
        #expect(throws: RPCError.self) { try SignedPayloads.open([0xff, 0xff], expecting: .request) }
    }

    @Test func everyServedMethodHasARuleAndOnlyAsyncMethodsNeedSessions() {
        let served = Esaylov_V1_DirectoryServiceMethod.all + Esaylov_V1_AuthServiceMethod.all + Esaylov_V1_AuditServiceMethod.all
            + Grpc_Health_V1_HealthMethod.all + Grpc_Reflection_V1_ServerReflectionMethod.all + Grpc_Reflection_V1alpha_ServerReflectionMethod.all
        for m in served {
            let rule = PermissionRules.byMethod[m.path]
            #expect(rule != nil, "no rule for \(m.path)")
            // Synchronous handlers pass `accept` only: their rule must not need the session lookup.
            if m.path == "/grpc.health.v1.Health/Check" { #expect(rule?.requirement == .open) }
        }
        #expect(PermissionRules.byMethod["/esaylov.v1.AuditService/VerifyChain"]?.requirement == .permission(.verifyAudit))
        #expect(PermissionRules.byMethod["/esaylov.v1.DirectoryService/GetOrganisation"]?.requirement == .open)
        #expect(PermissionRules.byMethod["/esaylov.v1.AuthService/WhoAmI"]?.requirement == .session)
    }

    func principal(_ kind: OrganisationKind?, _ roles: [Role], candidate: String? = nil) -> Principal {
        Principal(session: SessionRecord(
            id: "s", personId: "p", lastName: "L", firstName: "F", patronymic: "", organisationId: kind == nil ? nil : "o", organisationKind: kind,
            roles: roles, candidateId: candidate, proxyId: nil, method: kind == nil ? "sms" : "signature", idleExpiresAt: 0, absoluteExpiresAt: 0))
    }

    @Test func permissionsFollowTheClauses() {
        #expect(principal(.politicalParty, [.head]).permissions == [.readOwnRecord, .sendRequests, .signRequests])
        // Clerks prepare and send drafts; only the head's EDS signs them (cl. 8).
        #expect(principal(.politicalParty, [.clerk]).permissions == [.readOwnRecord, .sendRequests])
        #expect(principal(.foreignMedia, [.clerk]).permissions == [.readOwnRecord])
        #expect(principal(.foreignMedia, [.head]).permissions == [.readOwnRecord])
        #expect(principal(nil, [], candidate: "c").permissions == [.readOwnRecord, .sendRequests])
        let secretary = principal(.districtElectionCommission, [.secretary]).permissions
        #expect(secretary.contains(.draftDecisions) && !secretary.contains(.approveDecisions) && !secretary.contains(.signRequests))
        let chair = principal(.territorialElectionCommission, [.chairperson]).permissions
        #expect(chair.isSuperset(of: [.approveDecisions, .signRequests, .sendRequests, .reviewRequests]))
        #expect(!principal(.centralElectionCommission, [.chairperson]).permissions.contains(.sendRequests))
        #expect(principal(.centralElectionCommission, [.auditor]).permissions == [.readOwnRecord, .readAudit, .verifyAudit])
        #expect(principal(.centralElectionCommission, [.operator]).permissions == [.readOwnRecord, .manageDirectory, .readPersonalData])
    }
}

@Suite("Audit chain check")
struct ChainCheckTests {
    /// A chain of `n` events hashed as the database hashes them.
    func chain(_ n: Int) -> [AuditEventRecord] {
        var out: [AuditEventRecord] = []
        var previous = AuditLog.genesisHash
        for i in 1...n {
            var e = AuditEventRecord(
                sequence: i, atMicros: 1_700_000_000_000_000 + i, actorOrganisationId: "cec", actorPersonId: "p-\(i)", action: "AUDIT_ACTION_LOGIN",
                subjectKind: "session", subjectId: "s-\(i)", facts: [("method", "sms"), ("reason", "ok")], previousHash: previous, hash: "")
            e.hash = e.expectedHash
            previous = e.hash
            out.append(e)
        }
        return out
    }

    func check(_ events: [AuditEventRecord], head: Int? = nil, checkpoint: (Int, String, String?, Bool)? = nil) -> ChainCheck {
        let h = head ?? events.count
        var c = ChainCheck(from: 1, to: h, previousHash: AuditLog.genesisHash)
        c.feed(events)
        c.finish(headSequence: h, headHash: events.last?.hash ?? "", maxStored: events.last?.sequence ?? 0,
                 checkpoint: checkpoint.map { (sequence: $0.0, hash: $0.1, storedHash: $0.2, signatureValid: $0.3) })
        return c
    }

    @Test func anIntactChainPasses() {
        let events = chain(5)
        let c = check(events, checkpoint: (5, events[4].hash, events[4].hash, true))
        #expect(c.intact && c.checked == 5 && c.lastHash == events[4].hash)
    }

    @Test func editsDeletionsReorderingAndTruncationAreFound() {
        var edited = chain(5)
        edited[2].subjectId = "other"
        #expect(check(edited).firstBroken == 3)
        var deleted = chain(5)
        deleted.remove(at: 1)
        #expect(check(deleted).firstBroken == 2)
        var reordered = chain(5)
        reordered.swapAt(1, 2)
        #expect(check(reordered).firstBroken == 2)
        let events = chain(5)
        // The tail is gone and the head was rewritten: only the checkpoint finds it.
        let truncated = check(Array(events.prefix(3)), head: 3, checkpoint: (5, events[4].hash, nil, true))
        #expect(truncated.firstBroken == 5 && truncated.problem.contains("truncated"))
        let rewritten = check(events, checkpoint: (4, "f" + events[3].hash.dropFirst(), events[3].hash, true))
        #expect(rewritten.firstBroken == 4)
        #expect(check(events, checkpoint: (5, events[4].hash, events[4].hash, false)).problem.contains("signature"))
        // The head row says more than the log holds.
        #expect(check(Array(events.prefix(4)), head: 5).firstBroken == 5)
    }

    @Test func theEncodingIsTheDocumentedOne() {
        // audit.proto, AuditEvent.hash: netstrings in order; facts sorted by key.
        let e = AuditEventRecord(
            sequence: 1, atMicros: 42, actorOrganisationId: "", actorPersonId: "p", action: "AUDIT_ACTION_LOGOUT", subjectKind: "session",
            subjectId: "s", facts: [("b", "2"), ("a", "1")], previousHash: AuditLog.genesisHash, hash: "")
        let text = "16:esaylov.audit.v1,64:\(AuditLog.genesisHash),1:1,2:42,0:,1:p,19:AUDIT_ACTION_LOGOUT,7:session,1:s,1:2,1:a,1:1,1:b,1:2,"
        #expect(e.expectedHash == Crypto.hex(Crypto.sha256(Array(text.utf8))))
    }
}
