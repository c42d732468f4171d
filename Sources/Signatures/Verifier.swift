internal import COpenSSL
import Synchronization

/// A CMS that cannot be checked at all (not DER, not SignedData, no single signer, no signer
/// certificate): the caller's error, not a failed signature.
public struct SignatureFormatError: Error, Sendable, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}

/// What verifying one signature found, check by check, as the national verification server
/// reports it: the signature over the bytes, the chain to a trusted CA, the validity at the
/// time of receipt, and the revocation status.
public struct SignatureVerification: Sendable {
    public enum Check: Sendable, Hashable {
        case passed
        case failed(String)
        /// An earlier failure made this check meaningless.
        case notChecked

        public var passed: Bool { self == .passed }
    }

    public var signature: Check = .notChecked
    public var chain: Check = .notChecked
    public var validity: Check = .notChecked
    public var revocation: Check = .notChecked
    /// "ecdsa-sha256", "rsa-sha256", "ed25519", or a plugged-in algorithm's name.
    public var algorithm = ""
    /// The signer's certificate, as the CMS carries it.
    public var signer: CertificateInfo
    /// The bytes the signature covers (the detached content given, or the attached content).
    public var signedBytes: [UInt8]
    /// The time validity and revocation were checked at (seconds since 1970): the receipt time,
    /// or the time of a trusted RFC 3161 token when the caller accepts those.
    public var checkedAt: Double
    /// Whether `checkedAt` is a time-stamp token's.
    public var timeStamped = false

    public var isValid: Bool { signature.passed && chain.passed && validity.passed && revocation.passed }

    /// The first failed check and why, in the order the checks are reported.
    public var failure: (check: String, reason: String)? {
        for (name, check) in [("signature", signature), ("certificate chain", chain), ("certificate validity", validity),
                              ("revocation status", revocation)] {
            if case .failed(let why) = check { return (name, why) }
        }
        return nil
    }
}

/// Verifies CMS SignedData (detached or attached) against a trust store, at a time the caller
/// gives: the server's receipt time, never the signing time inside the CMS (which the signer
/// chooses). Blocking work (public-key operations): call it off the event loops.
///
/// Chain results are cached per signer certificate (and the certificates the CMS carries)
/// and per trust-store generation, with the window of time in which every certificate of the
/// chain is valid: a repeated signer costs one signature check. A CRL that changes starts a new
/// generation, so a revocation is seen on the first verification after the reload. With an
/// OCSP responder, revocation is asked there too (its answers cached as `OCSPClient` says).
public final class SignatureVerifier: Sendable {
    public let trustStore: TrustStore
    public let algorithms: AlgorithmRegistry
    /// Where revocation is also asked (after the CRLs), when configured.
    public let ocsp: OCSPClient?
    private let cache = Mutex<[ChainKey: ChainResult]>([:])
    static let cacheLimit = 10_000

    struct ChainKey: Hashable {
        let certificates: [UInt8]
        let generation: Int
    }

    struct ChainResult {
        /// Every certificate of the chain is valid within this window.
        let notBefore: Double
        let notAfter: Double
        /// The leaf's issuer, for OCSP.
        let issuer: X509Handle
    }

    public init(trustStore: TrustStore, algorithms: AlgorithmRegistry = .openSSL, ocsp: OCSPClient? = nil) {
        self.trustStore = trustStore
        self.algorithms = algorithms
        self.ocsp = ocsp
    }

    /// Which time validity and revocation are judged at.
    public enum TimeStampPolicy: Sendable {
        /// The receipt time, whatever the CMS carries (sign-in: the challenge is fresh anyway).
        case receiptTime
        /// The time of an RFC 3161 token over the signature from a TSA the trust store trusts,
        /// when the signer carries one; a token that does not verify fails the validity check.
        /// Revocation is still the current CRLs' and OCSP's answer (a certificate revoked since
        /// is refused: the safe side).
        case trustedTimeStamp
    }

    /// Verifies `cms` (DER). `content` is the payload of a detached signature; for an attached
    /// one it may be given, and must then equal the content inside.
    public func verify(
        cms der: [UInt8], content: [UInt8]?, at receipt: Double, timeStamps: TimeStampPolicy = .receiptTime
    ) throws(SignatureFormatError) -> SignatureVerification {
        let time = receipt
        guard !der.isEmpty, der.count <= 1 << 20 else { throw SignatureFormatError(reason: "the CMS is empty or larger than 1 MiB") }
        let cms = try CMSHandle(der: der)
        guard OBJ_obj2nid(CMS_get0_type(cms.raw)) == NID_pkcs7_signed else {
            throw SignatureFormatError(reason: "the CMS is not SignedData")
        }
        guard let infos = CMS_get0_SignerInfos(cms.raw), esaylov_signer_info_num(infos) == 1,
            let si = esaylov_signer_info_value(infos, 0)
        else { throw SignatureFormatError(reason: "the CMS must have exactly one signer") }
        let certs = CMS_get1_certs(cms.raw)
        defer { if let certs { esaylov_x509_pop_free(certs) } }
        var signerCert: OpaquePointer?
        if let certs {
            for i in 0..<esaylov_x509_num(certs) {
                if let c = esaylov_x509_value(certs, i), CMS_SignerInfo_cert_cmp(si, c) == 0 {
                    signerCert = c
                    break
                }
            }
        }
        guard let signerCert else { throw SignatureFormatError(reason: "the CMS does not include the signer's certificate") }
        let signer: CertificateInfo
        do { signer = try CertificateInfo(X509Handle(retaining: signerCert)) } catch {
            throw SignatureFormatError(reason: "the signer's certificate: \(error.reason)")
        }

        let detached = CMS_is_detached(cms.raw) == 1
        let signedBytes: [UInt8]
        if detached {
            guard let content else { throw SignatureFormatError(reason: "the CMS is detached and no content was given") }
            signedBytes = content
        } else {
            guard let p = CMS_get0_content(cms.raw), let octets = p.pointee else {
                throw SignatureFormatError(reason: "the CMS carries no content")
            }
            signedBytes = Array(UnsafeBufferPointer(start: ASN1_STRING_get0_data(octets), count: Int(ASN1_STRING_length(octets))))
        }
        var result = SignatureVerification(signer: signer, signedBytes: signedBytes, checkedAt: receipt)
        if !detached, let content, content != signedBytes {
            result.signature = .failed("the signed content is not the expected bytes")
            return result
        }

        // 1. The signature, by the algorithm its SignerInfo names.
        var sigAlg: UnsafeMutablePointer<X509_ALGOR>?
        CMS_SignerInfo_get0_algs(si, nil, nil, nil, &sigAlg)
        let oid = sigAlg.map { algorithmOID($0) } ?? ""
        guard let entry = algorithms.entry(for: oid) else {
            result.signature = .failed("unsupported signature algorithm \(oid.isEmpty ? "(none)" : oid)")
            return result
        }
        result.algorithm = entry.name
        switch entry.implementation {
        case .openSSL:
            let data = MemoryBIO(signedBytes)
            let ok = CMS_verify(cms.raw, nil, nil, detached ? data.raw : nil, nil, UInt32(CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY))
            result.signature = ok == 1 ? .passed : .failed("the signature does not verify over the signed bytes (\(openSSLReason()))")
        case .external(let algorithm):
            result.signature = algorithm.verify(cms: der, content: signedBytes, signerCertificate: signer.der)
                ? .passed : .failed("the signature does not verify over the signed bytes")
        }
        guard result.signature.passed else { return result }

        // 2–4. The chain, its validity at `time`, its revocation status.
        let loaded = trustStore.current()
        if timeStamps == .trustedTimeStamp, let stamped = TimeStamps.time(of: si, store: loaded.store) {
            switch stamped {
            case .success(let t):
                // The chain and its validity at the token's time; revocation now, by the CRLs and
                // OCSP as they stand (a CRL made after the token's time would not be valid then).
                result.checkedAt = t
                result.timeStamped = true
                let then = checkChain(store: loaded.store, leaf: signerCert, untrusted: certs, at: t, revocation: false)
                result.chain = then.chain
                result.validity = then.validity
                guard then.chain.passed else { return result }
                let now = checkChain(store: loaded.store, leaf: signerCert, untrusted: certs, at: receipt)
                result.revocation = now.chain.passed ? now.revocation : now.chain
                if let ocsp, result.revocation.passed, let window = then.window ?? now.window {
                    result.revocation = ocsp.check(leaf: signerCert, issuer: window.issuer.raw, store: loaded.store, untrusted: certs, at: receipt)
                }
            case .failure(let e):
                result.validity = .failed(e.reason)
            }
            return result
        }
        var key = signer.der
        if let certs {
            for i in 0..<esaylov_x509_num(certs) {
                if let c = esaylov_x509_value(certs, i), c != signerCert { key += derEncoding { i2d_X509(c, $0) } }
            }
        }
        let cacheKey = ChainKey(certificates: key, generation: loaded.generation)
        if let hit = cache.withLock({ $0[cacheKey] }), time >= hit.notBefore, time <= hit.notAfter {
            result.chain = .passed
            result.validity = .passed
            result.revocation = ocsp?.check(leaf: signerCert, issuer: hit.issuer.raw, store: loaded.store, untrusted: certs, at: time) ?? .passed
            return result
        }
        let findings = checkChain(store: loaded.store, leaf: signerCert, untrusted: certs, at: time)
        result.chain = findings.chain
        result.validity = findings.validity
        result.revocation = findings.revocation
        if let ocsp, result.revocation.passed, result.chain.passed, let window = findings.window {
            result.revocation = ocsp.check(leaf: signerCert, issuer: window.issuer.raw, store: loaded.store, untrusted: certs, at: time)
        }
        if findings.chain.passed, findings.validity.passed, findings.revocation.passed, let window = findings.window {
            cache.withLock { c in
                if c.count >= Self.cacheLimit { c.removeAll(keepingCapacity: true) }
                c[cacheKey] = window
            }
        }
        return result
    }

    struct ChainFindings {
        var chain: SignatureVerification.Check
        var validity: SignatureVerification.Check
        var revocation: SignatureVerification.Check
        var window: ChainResult?
    }

    /// `revocation: false` leaves the CRLs out (the chain at a past time; its revocation is
    /// judged now, separately).
    private func checkChain(
        store: X509StoreHandle, leaf: OpaquePointer, untrusted: OpaquePointer?, at time: Double, revocation: Bool = true
    ) -> ChainFindings {
        guard let ctx = X509_STORE_CTX_new() else { return ChainFindings(chain: .failed("out of memory"), validity: .notChecked, revocation: .notChecked) }
        defer { X509_STORE_CTX_free(ctx) }
        guard X509_STORE_CTX_init(ctx, store.raw, leaf, untrusted) == 1 else {
            return ChainFindings(chain: .failed(openSSLReason()), validity: .notChecked, revocation: .notChecked)
        }
        X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), time_t(time))
        if !revocation { X509_VERIFY_PARAM_clear_flags(X509_STORE_CTX_get0_param(ctx), UInt(X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL)) }
        let record = UnsafeMutablePointer<ChainErrors>.allocate(capacity: 1)
        record.initialize(to: ChainErrors())
        defer { record.deallocate() }
        _ = esaylov_x509_store_ctx_set_app_data(ctx, record)
        X509_STORE_CTX_set_verify_cb(ctx, chainCallback)
        let ok = X509_verify_cert(ctx)
        let errors = record.pointee
        var findings = ChainFindings(chain: .passed, validity: .passed, revocation: .passed)
        if errors.chain != 0 || (ok != 1 && errors.validity == 0 && errors.revocation == 0) {
            let code = errors.chain != 0 ? errors.chain : X509_STORE_CTX_get_error(ctx)
            findings.chain = .failed(verifyErrorText(code))
            findings.validity = .notChecked
            findings.revocation = .notChecked
            return findings
        }
        if errors.validity != 0 { findings.validity = .failed(verifyErrorText(errors.validity)) }
        if errors.revocation != 0 { findings.revocation = .failed(verifyErrorText(errors.revocation)) }
        // Key usage: a certificate that may not sign does not pass the chain check.
        let usage = X509_get_key_usage(leaf)
        if usage != UInt32.max, usage & UInt32(KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION) == 0 {
            findings.chain = .failed("the certificate's key usage does not allow signing")
        }
        if findings.chain.passed, findings.validity.passed, findings.revocation.passed,
            let chain = X509_STORE_CTX_get0_chain(ctx)
        {
            var from = -Double.infinity
            var to = Double.infinity
            let n = esaylov_x509_num(chain)
            guard let issuer = esaylov_x509_value(chain, n > 1 ? 1 : 0) else { return findings }
            for i in 0..<n {
                guard let c = esaylov_x509_value(chain, i) else { continue }
                let h = X509Handle(retaining: c)
                guard let nb = try? h.time(X509_get0_notBefore(c)), let na = try? h.time(X509_get0_notAfter(c)) else { return findings }
                from = max(from, nb)
                to = min(to, na)
            }
            findings.window = ChainResult(notBefore: from, notAfter: to, issuer: X509Handle(retaining: issuer))
        }
        return findings
    }
}

/// The first error of each kind that `X509_verify_cert` reported.
struct ChainErrors {
    var chain: Int32 = 0
    var validity: Int32 = 0
    var revocation: Int32 = 0
}

/// Sorts each error as it comes: validity and revocation errors are recorded and verification
/// goes on (so that all three checks get an answer); any other error ends it as a chain failure.
private let chainCallback: @convention(c) (Int32, OpaquePointer?) -> Int32 = { ok, ctx in
    guard ok != 1, let ctx, let p = esaylov_x509_store_ctx_get_app_data(ctx) else { return ok }
    let errors = p.assumingMemoryBound(to: ChainErrors.self)
    let code = X509_STORE_CTX_get_error(ctx)
    switch code {
    case X509_V_ERR_CERT_NOT_YET_VALID, X509_V_ERR_CERT_HAS_EXPIRED:
        if errors.pointee.validity == 0 { errors.pointee.validity = code }
        return 1
    case X509_V_ERR_CERT_REVOKED, X509_V_ERR_UNABLE_TO_GET_CRL, X509_V_ERR_CRL_HAS_EXPIRED, X509_V_ERR_CRL_NOT_YET_VALID,
        X509_V_ERR_CRL_SIGNATURE_FAILURE, X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER, X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE,
        X509_V_ERR_DIFFERENT_CRL_SCOPE, X509_V_ERR_CRL_PATH_VALIDATION_ERROR, X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION:
        if errors.pointee.revocation == 0 { errors.pointee.revocation = code }
        return 1
    default:
        if errors.pointee.chain == 0 { errors.pointee.chain = code }
        return 0
    }
}

func verifyErrorText(_ code: Int32) -> String {
    guard let s = X509_verify_cert_error_string(Int(code)) else { return "verification error \(code)" }
    return String(cString: s)
}

/// The dotted OID of an `X509_ALGOR`.
func algorithmOID(_ alg: UnsafeMutablePointer<X509_ALGOR>) -> String {
    var obj: OpaquePointer?
    X509_ALGOR_get0(&obj, nil, nil, alg)
    guard let obj else { return "" }
    var buffer = [CChar](repeating: 0, count: 128)
    let n = OBJ_obj2txt(&buffer, Int32(buffer.count), obj, 1)
    guard n > 0 else { return "" }
    return String(decoding: buffer.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Owns one `CMS_ContentInfo`.
final class CMSHandle {
    let raw: OpaquePointer

    init(der: [UInt8]) throws(SignatureFormatError) {
        let bio = MemoryBIO(der)
        guard let cms = d2i_CMS_bio(bio.raw, nil) else {
            throw SignatureFormatError(reason: "not a DER CMS (PKCS #7) structure: \(openSSLReason())")
        }
        raw = cms
    }

    init(taking raw: OpaquePointer) {
        self.raw = raw
    }

    deinit { CMS_ContentInfo_free(raw) }

    var der: [UInt8] {
        let out = MemoryBIO()
        guard i2d_CMS_bio(out.raw, raw) == 1 else { return [] }
        return out.contents
    }
}
