internal import COpenSSL

/// Why a key, certificate or signature could not be made or read.
public struct SigningError: Error, Sendable, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}

/// Owns one `EVP_PKEY` (a private key). Never printed, never logged.
public final class PrivateKey: @unchecked Sendable {
    let raw: OpaquePointer

    init(taking raw: OpaquePointer) {
        self.raw = raw
    }

    /// Reads a PEM private key (PKCS #8 or traditional, unencrypted).
    public init(pem: [UInt8]) throws(SigningError) {
        let bio = MemoryBIO(pem)
        guard let k = PEM_read_bio_PrivateKey(bio.raw, nil, nil, nil) else { throw SigningError(reason: "not a PEM private key") }
        raw = k
    }

    public enum Kind: String, Sendable, CaseIterable {
        case p256 = "ecdsa-p256"
        case rsa2048 = "rsa-2048"
        case ed25519
    }

    /// A fresh key from OpenSSL's CSPRNG.
    public static func generate(_ kind: Kind = .p256) throws(SigningError) -> PrivateKey {
        let k: OpaquePointer? =
            switch kind {
            case .p256: esaylov_generate_key("P-256")
            case .rsa2048: esaylov_generate_rsa_key(2048)
            case .ed25519: esaylov_generate_key(nil)
            }
        guard let k else { throw SigningError(reason: "key generation failed: \(openSSLReason())") }
        return PrivateKey(taking: k)
    }

    deinit { EVP_PKEY_free(raw) }

    /// PKCS #8 PEM: for files of mode 0600 only.
    public var pem: [UInt8] {
        let out = MemoryBIO()
        guard PEM_write_bio_PrivateKey(out.raw, raw, nil, nil, 0, nil, nil) == 1 else { return [] }
        return out.contents
    }
}

/// A key and its certificate, signing detached CMS SignedData: the server's own receipts and
/// audit checkpoints, and `esaylovctl sign` (what the national EDS client produces).
public final class SigningIdentity: Sendable {
    public let key: PrivateKey
    let certBox: CertificateHandleBox
    public let certificate: CertificateInfo
    /// The certificates after the signing one in its file (PEM), its issuers: the chain, with
    /// `certificate`, that `GetSystemCertificates` returns, leaf first.
    public let issuers: [CertificateInfo]

    public init(key: PrivateKey, certificatePEMOrDER: [UInt8]) throws(SigningError) {
        let handle: X509Handle
        do { handle = try X509Handle(certificatePEMOrDER) } catch { throw SigningError(reason: error.reason) }
        guard X509_check_private_key(handle.raw, key.raw) == 1 else {
            _ = openSSLReason()
            throw SigningError(reason: "the key does not match the certificate")
        }
        self.key = key
        self.certBox = CertificateHandleBox(handle)
        do { certificate = try CertificateInfo(handle) } catch { throw SigningError(reason: error.reason) }
        var rest: [CertificateInfo] = []
        let marker = Array("-----BEGIN CERTIFICATE-----".utf8)
        var starts: [Int] = []
        if certificatePEMOrDER.count >= marker.count {
            for i in 0...(certificatePEMOrDER.count - marker.count) where certificatePEMOrDER[i] == marker[0] && Array(certificatePEMOrDER[i..<(i + marker.count)]) == marker {
                starts.append(i)
            }
        }
        for (n, start) in starts.enumerated().dropFirst() {
            let end = n + 1 < starts.count ? starts[n + 1] : certificatePEMOrDER.count
            do { rest.append(try CertificateInfo(Array(certificatePEMOrDER[start..<end]))) } catch {
                throw SigningError(reason: "certificate \(n + 1) of the file: \(error.reason)")
            }
        }
        issuers = rest
    }

    /// Reads a PEM key file and a PEM or DER certificate file.
    public convenience init(keyFile: String, certificateFile: String) throws(SigningError) {
        guard let keyBytes = readFile(keyFile) else { throw SigningError(reason: "cannot read \(keyFile)") }
        guard let certBytes = readFile(certificateFile) else { throw SigningError(reason: "cannot read \(certificateFile)") }
        try self.init(key: PrivateKey(pem: keyBytes), certificatePEMOrDER: certBytes)
    }

    /// A detached CMS SignedData (DER) over `content`, with the certificate included and the
    /// content signed as binary (no MIME canonicalisation).
    /// With `timeStamp`, the signer also carries an RFC 3161 token from that TSA over the
    /// signature, stating the time given (the development TSA of `esaylovctl sign --timestamp`).
    public func signDetached(_ content: [UInt8], timeStamp: (tsa: SigningIdentity, at: Double)? = nil) throws(SigningError) -> [UInt8] {
        try sign(content, flags: CMS_DETACHED | CMS_BINARY, timeStamp: timeStamp)
    }

    /// An attached CMS SignedData (DER): the content inside.
    public func signAttached(_ content: [UInt8], timeStamp: (tsa: SigningIdentity, at: Double)? = nil) throws(SigningError) -> [UInt8] {
        try sign(content, flags: CMS_BINARY, timeStamp: timeStamp)
    }

    private func sign(_ content: [UInt8], flags: Int32, timeStamp: (tsa: SigningIdentity, at: Double)?) throws(SigningError) -> [UInt8] {
        let data = MemoryBIO(content)
        guard let raw = CMS_sign(certBox.handle.raw, key.raw, nil, data.raw, UInt32(flags)) else {
            throw SigningError(reason: "signing failed: \(openSSLReason())")
        }
        let cms = CMSHandle(taking: raw)
        if let timeStamp {
            guard let infos = CMS_get0_SignerInfos(cms.raw), let si = esaylov_signer_info_value(infos, 0),
                let signature = CMS_SignerInfo_get0_signature(si), let obj = OBJ_txt2obj(TimeStamps.attributeOID, 1)
            else { throw SigningError(reason: "the CMS has no signer") }
            defer { ASN1_OBJECT_free(obj) }
            let value = Array(UnsafeBufferPointer(start: ASN1_STRING_get0_data(signature), count: Int(ASN1_STRING_length(signature))))
            let token = try TimeStamps.token(over: value, tsa: timeStamp.tsa, at: timeStamp.at)
            guard CMS_unsigned_add1_attr_by_OBJ(si, obj, V_ASN1_SEQUENCE, token, Int32(token.count)) == 1 else {
                throw SigningError(reason: "cannot add the time-stamp token: \(openSSLReason())")
            }
        }
        let der = cms.der
        guard !der.isEmpty else { throw SigningError(reason: "cannot encode the CMS") }
        return der
    }
}

final class CertificateHandleBox: @unchecked Sendable {
    let handle: X509Handle
    init(_ handle: X509Handle) { self.handle = handle }
}
