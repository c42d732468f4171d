public import ESaylovAPI
import Foundation
import ProtoRuntime
public import RPC
public import Signatures

/// The one signed-bytes discipline (common.proto, `SignedEnvelope`): everything signed is an
/// envelope whose first field names its purpose; the bytes are made once, stored, and checked
/// as they are, never re-encoded.
public enum SignedPayloads {
    /// The bytes to sign for `purpose` over `body` (a purpose message's encoding).
    public static func seal(_ purpose: Esaylov_V1_SignaturePurpose, body: [UInt8]) -> [UInt8] {
        var envelope = Esaylov_V1_SignedEnvelope()
        envelope.purpose = purpose
        envelope.body = body
        return envelope.serializedBytes()
    }

    /// The body of `bytes` when they are an envelope for `purpose`; PERMISSION_DENIED-free:
    /// a signature for another purpose is UNAUTHENTICATED, like any signature that does not fit.
    public static func open(_ bytes: [UInt8], expecting purpose: Esaylov_V1_SignaturePurpose) throws(RPCError) -> [UInt8] {
        let envelope: Esaylov_V1_SignedEnvelope
        do { envelope = try bytes.withUnsafeBytes { (b) throws(ProtoDecodingError) in try Esaylov_V1_SignedEnvelope(serializedBytes: b) } } catch {
            throw RPCError(code: .unauthenticated, message: "the signed bytes are not a SignedEnvelope")
        }
        guard envelope.purpose == purpose else {
            throw RPCError(
                code: .unauthenticated,
                message: "the signature was made for \(envelope.purpose.name) and is refused for \(purpose.name)")
        }
        return envelope.body
    }

    /// Verifies `cms` over `signedBytes` at the receipt time, off the event loop; returns what
    /// was found, or INVALID_ARGUMENT (field `field`) for a CMS that cannot be checked at all.
    public static func verify(
        _ verifier: SignatureVerifier, cms: [UInt8], signedBytes: [UInt8], receivedAt: Double, field: String, context: ServerContext
    ) async throws(RPCError) -> SignatureVerification {
        let outcome: Result<SignatureVerification, SignatureFormatError>
        do {
            outcome = try await context.runBlocking {
                Result { () throws(SignatureFormatError) in try verifier.verify(cms: cms, content: signedBytes, at: receivedAt) }
            }
        } catch let e as RPCError {
            throw e
        } catch {
            throw RPCError(code: .unavailable, message: "the server is shutting down")
        }
        switch outcome {
        case .success(let v): return v
        case .failure(let e):
            throw RPCError(code: .invalidArgument, message: "\(field): \(e.reason)",
                           details: [.fieldViolation(field: field, description: e.reason, reason: "CMS")])
        }
    }

    /// UNAUTHENTICATED naming the failed check, for a signature that did not pass.
    public static func refusal(_ v: SignatureVerification) -> RPCError {
        let f = v.failure ?? (check: "signature", reason: "not verified")
        return RPCError(
            code: .unauthenticated, message: "the signature is refused: \(f.check) check failed: \(f.reason)",
            details: [.info(reason: "SIGNATURE_\(f.check.uppercased().replacingOccurrences(of: " ", with: "_"))_FAILED")])
    }

    /// `SignatureInfo` for a verified signature.
    public static func info(_ v: SignatureVerification, cms: [UInt8]) -> Esaylov_V1_SignatureInfo {
        var s = Esaylov_V1_SignatureInfo()
        s.certificateSerial = v.signer.serial
        s.certificateIssuer = v.signer.issuer
        s.signerPinfl = v.signer.subjectPINFL ?? ""
        s.signerTin = v.signer.subjectTIN ?? ""
        s.signedAt = timestamp(v.checkedAt)
        s.payloadSha256 = Crypto.hex(Crypto.sha256(v.signedBytes))
        s.cms = cms
        s.algorithm = v.algorithm
        s.signerCertificate = v.signer.der
        var checks = Esaylov_V1_SignatureChecks()
        func wire(_ c: SignatureVerification.Check) -> Esaylov_V1_CheckResult {
            switch c {
            case .passed: .passed
            case .failed: .failed
            case .notChecked: .unspecified
            }
        }
        checks.signature = wire(v.signature)
        checks.chain = wire(v.chain)
        checks.validity = wire(v.validity)
        checks.revocation = wire(v.revocation)
        checks.failure = v.failure.map { "\($0.check): \($0.reason)" } ?? ""
        s.checks = checks
        s.signedBytes = v.signedBytes
        return s
    }
}

extension Esaylov_V1_SignaturePurpose {
    var name: String {
        switch self {
        case .unspecified: "SIGNATURE_PURPOSE_UNSPECIFIED"
        case .loginChallenge: "SIGNATURE_PURPOSE_LOGIN_CHALLENGE"
        case .request: "SIGNATURE_PURPOSE_REQUEST"
        case .decision: "SIGNATURE_PURPOSE_DECISION"
        case .auditCheckpoint: "SIGNATURE_PURPOSE_AUDIT_CHECKPOINT"
        case .unrecognized(let v): "purpose \(v)"
        }
    }
}
