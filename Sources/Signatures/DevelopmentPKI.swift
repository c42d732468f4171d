internal import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// Certificates and CRLs made by a local certification authority, for development and tests:
/// `esaylovctl pki` uses it so that anyone can act as any demo officer. Subjects carry the
/// PINFL (OID 1.2.860.3.16.1.2) and, for a legal entity, the TIN (OID 1.2.860.3.16.1.1), as
/// Uzbek EDS certificates do.
public enum DevelopmentPKI {
    public struct Subject: Sendable {
        public var commonName: String
        public var organisationName: String?
        public var pinfl: String?
        public var tin: String?

        public init(commonName: String, organisationName: String? = nil, pinfl: String? = nil, tin: String? = nil) {
            self.commonName = commonName
            self.organisationName = organisationName
            self.pinfl = pinfl
            self.tin = tin
        }
    }

    /// A random positive 127-bit serial number, lower-case hex.
    public static func randomSerial() -> String {
        var bytes = Crypto.randomBytes(16)
        bytes[0] &= 0x7f
        bytes[0] |= 0x10
        return Crypto.hex(bytes)
    }

    /// What a TLS certificate is for: a server, named by DNS names and IP addresses (its
    /// subjectAltName), or a client of mutual TLS.
    public enum TLSUsage: Sendable, Hashable {
        case server(names: [String])
        case client
    }

    /// A PEM certificate for `key`'s public key, signed by `issuer` (or self-signed when nil).
    /// `timeStamping`: a time-stamping authority's certificate (the critical timeStamping key
    /// purpose that RFC 3161 requires). `tls`: a TLS server's or client's certificate (the
    /// serverAuth or clientAuth purpose; a server's names).
    public static func issue(
        subject: Subject, key: PrivateKey, issuer: SigningIdentity?, serial: String, notBefore: Double, notAfter: Double,
        authority: Bool, timeStamping: Bool = false, tls: TLSUsage? = nil
    ) throws(SigningError) -> [UInt8] {
        guard let x = X509_new() else { throw SigningError(reason: "out of memory") }
        defer { X509_free(x) }
        X509_set_version(x, 2)
        try setSerial(X509_get_serialNumber(x), serial)
        ASN1_TIME_set(X509_getm_notBefore(x), time_t(notBefore))
        ASN1_TIME_set(X509_getm_notAfter(x), time_t(notAfter))
        guard X509_set_pubkey(x, key.raw) == 1 else { throw SigningError(reason: openSSLReason()) }
        guard let name = X509_NAME_new() else { throw SigningError(reason: "out of memory") }
        defer { X509_NAME_free(name) }
        var entries: [(String, String)] = [("C", "UZ")]
        // X.520 bounds organizationName and commonName at 64 characters.
        if let o = subject.organisationName { entries.append(("O", String(o.prefix(64)))) }
        entries.append(("CN", String(subject.commonName.prefix(64))))
        if let p = subject.pinfl { entries.append((CertificateInfo.pinflOID, p)) }
        if let t = subject.tin { entries.append((CertificateInfo.tinOID, t)) }
        for (field, value) in entries {
            guard X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, value, -1, -1, 0) == 1 else {
                throw SigningError(reason: "subject \(field): \(openSSLReason())")
            }
        }
        X509_set_subject_name(x, name)
        let issuerCert = issuer?.certificateHandle ?? x
        X509_set_issuer_name(x, X509_get_subject_name(issuerCert))
        var ctx = X509V3_CTX()
        X509V3_set_ctx(&ctx, issuerCert, x, nil, nil, 0)
        var extensions: [(Int32, String)] =
            authority
            ? [(NID_basic_constraints, "critical,CA:TRUE"), (NID_key_usage, "critical,keyCertSign,cRLSign"),
               (NID_subject_key_identifier, "hash")]
            : [(NID_basic_constraints, "critical,CA:FALSE"), (NID_key_usage, "critical,digitalSignature,nonRepudiation"),
               (NID_subject_key_identifier, "hash"), (NID_authority_key_identifier, "keyid:always")]
        if timeStamping { extensions.append((NID_ext_key_usage, "critical,timeStamping")) }
        switch tls {
        case .server(let names):
            extensions[1] = (NID_key_usage, "critical,digitalSignature,keyEncipherment")
            extensions.append((NID_ext_key_usage, "serverAuth"))
            let alt = names.map { name in name.allSatisfy({ $0.isNumber || $0 == "." || $0 == ":" }) ? "IP:\(name)" : "DNS:\(name)" }
            if !alt.isEmpty { extensions.append((NID_subject_alt_name, alt.joined(separator: ","))) }
        case .client:
            extensions[1] = (NID_key_usage, "critical,digitalSignature")
            extensions.append((NID_ext_key_usage, "clientAuth"))
        case nil: break
        }
        for (nid, value) in extensions {
            guard let ext = X509V3_EXT_conf_nid(nil, &ctx, nid, value) else { throw SigningError(reason: "extension \(value): \(openSSLReason())") }
            X509_add_ext(x, ext, -1)
            X509_EXTENSION_free(ext)
        }
        let signingKey = issuer?.key ?? key
        guard X509_sign(x, signingKey.raw, digest(for: signingKey)) > 0 else { throw SigningError(reason: "signing the certificate: \(openSSLReason())") }
        let out = MemoryBIO()
        guard PEM_write_bio_X509(out.raw, x) == 1 else { throw SigningError(reason: openSSLReason()) }
        return out.contents
    }

    /// A PEM CRL listing `revoked` (serial, revocation time), signed by `issuer`.
    public static func revocationList(
        issuer: SigningIdentity, revoked: [(serial: String, at: Double)], number: Int, thisUpdate: Double, nextUpdate: Double
    ) throws(SigningError) -> [UInt8] {
        guard let crl = X509_CRL_new() else { throw SigningError(reason: "out of memory") }
        defer { X509_CRL_free(crl) }
        _ = esaylov_x509_crl_set_version(crl, 1)
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer.certificateHandle))
        for (t, set) in [(thisUpdate, true), (nextUpdate, false)] {
            guard let time = ASN1_TIME_set(nil, time_t(t)) else { throw SigningError(reason: "out of memory") }
            defer { ASN1_TIME_free(time) }
            if set { X509_CRL_set1_lastUpdate(crl, time) } else { X509_CRL_set1_nextUpdate(crl, time) }
        }
        for entry in revoked {
            guard let r = X509_REVOKED_new(), let serial = ASN1_INTEGER_new(), let at = ASN1_TIME_set(nil, time_t(entry.at)) else {
                throw SigningError(reason: "out of memory")
            }
            defer {
                ASN1_INTEGER_free(serial)
                ASN1_TIME_free(at)
            }
            try setSerial(serial, entry.serial)
            X509_REVOKED_set_serialNumber(r, serial)
            X509_REVOKED_set_revocationDate(r, at)
            X509_CRL_add0_revoked(crl, r)
        }
        if let n = ASN1_INTEGER_new() {
            ASN1_INTEGER_set(n, number)
            X509_CRL_add1_ext_i2d(crl, NID_crl_number, UnsafeMutableRawPointer(n), 0, 0)
            ASN1_INTEGER_free(n)
        }
        X509_CRL_sort(crl)
        guard X509_CRL_sign(crl, issuer.key.raw, digest(for: issuer.key)) > 0 else { throw SigningError(reason: "signing the CRL: \(openSSLReason())") }
        let out = MemoryBIO()
        guard PEM_write_bio_X509_CRL(out.raw, crl) == 1 else { throw SigningError(reason: openSSLReason()) }
        return out.contents
    }

    /// Ed25519 signs without a separate digest.
    static func digest(for key: PrivateKey) -> OpaquePointer? {
        EVP_PKEY_get_id(key.raw) == EVP_PKEY_ED25519 ? nil : EVP_sha256()
    }

    static func setSerial(_ target: UnsafeMutablePointer<ASN1_INTEGER>?, _ hex: String) throws(SigningError) {
        guard !hex.isEmpty, hex.count <= 64, Crypto.unhex(hex.count % 2 == 0 ? hex : "0" + hex) != nil else {
            throw SigningError(reason: "serial must be 1 to 64 hex digits")
        }
        var bn: OpaquePointer?
        guard BN_hex2bn(&bn, hex) > 0, let bn else { throw SigningError(reason: "serial must be hex") }
        defer { BN_free(bn) }
        guard BN_to_ASN1_INTEGER(bn, target) != nil else { throw SigningError(reason: openSSLReason()) }
    }
}

extension SigningIdentity {
    var certificateHandle: OpaquePointer { certBox.handle.raw }
}
