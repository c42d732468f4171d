internal import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// Why bytes are not a usable certificate.
public struct CertificateError: Error, Hashable, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

/// The facts of an X.509 certificate that the directory records. Uzbek EDS certificates
/// carry the holder's PINFL under OID 1.2.860.3.16.1.2 and an organisation's TIN under
/// 1.2.860.3.16.1.1.
public struct CertificateInfo: Sendable, Hashable {
    public static let pinflOID = "1.2.860.3.16.1.2"
    public static let tinOID = "1.2.860.3.16.1.1"

    /// Serial number, lower-case hex.
    public let serial: String
    /// Issuer name, OpenSSL's one-line form (/C=UZ/O=…/CN=…).
    public let issuer: String
    /// Subject name, the same form.
    public let subject: String
    public let subjectPINFL: String?
    public let subjectTIN: String?
    /// Validity, seconds since 1970.
    public let notBefore: Double
    public let notAfter: Double
    /// SHA-256 of the DER encoding, lower-case hex.
    public let sha256: String
    /// The DER encoding.
    public let der: [UInt8]

    /// Reads a PEM or DER certificate.
    public init(_ bytes: [UInt8]) throws(CertificateError) {
        try self.init(X509Handle(bytes))
    }

    init(_ cert: X509Handle) throws(CertificateError) {
        serial = try cert.serialHex()
        issuer = cert.issuerLine()
        subject = cert.subjectLine()
        subjectPINFL = cert.subjectEntry(Self.pinflOID)
        subjectTIN = cert.subjectEntry(Self.tinOID)
        notBefore = try cert.time(X509_get0_notBefore(cert.raw))
        notAfter = try cert.time(X509_get0_notAfter(cert.raw))
        der = cert.der
        guard !der.isEmpty else { throw CertificateError(reason: "cannot encode the certificate") }
        sha256 = Crypto.hex(Crypto.sha256(der))
    }
}

/// Owns one `X509`. Not changed after it is made; OpenSSL locks the caches it fills on reads,
/// so verifications on several threads may share one.
final class X509Handle: @unchecked Sendable {
    let raw: OpaquePointer

    init(_ bytes: [UInt8]) throws(CertificateError) {
        guard !bytes.isEmpty, bytes.count < 1 << 20 else { throw CertificateError(reason: "empty or oversized certificate") }
        var parsed: OpaquePointer?
        bytes.withUnsafeBytes { buf in
            if let bio = BIO_new_mem_buf(buf.baseAddress, Int32(buf.count)) {
                parsed = PEM_read_bio_X509(bio, nil, nil, nil)
                BIO_free(bio)
            }
            if parsed == nil {
                var p: UnsafePointer<UInt8>? = buf.baseAddress?.assumingMemoryBound(to: UInt8.self)
                parsed = d2i_X509(nil, &p, buf.count)
            }
        }
        guard let parsed else { throw CertificateError(reason: "not a PEM or DER X.509 certificate") }
        raw = parsed
    }

    /// Takes a reference of its own to `raw`.
    init(retaining raw: OpaquePointer) {
        X509_up_ref(raw)
        self.raw = raw
    }

    deinit { X509_free(raw) }

    var der: [UInt8] { derEncoding { i2d_X509(raw, $0) } }

    func serialHex() throws(CertificateError) -> String {
        guard let bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(raw), nil) else { throw CertificateError(reason: "no serial number") }
        defer { BN_free(bn) }
        guard let hex = BN_bn2hex(bn) else { throw CertificateError(reason: "unreadable serial number") }
        defer { CRYPTO_free(hex, nil, 0) }
        let s = String(cString: hex).lowercased()
        return s.hasPrefix("-") ? String(s.dropFirst()) : s
    }

    func issuerLine() -> String {
        guard let line = X509_NAME_oneline(X509_get_issuer_name(raw), nil, 0) else { return "" }
        defer { CRYPTO_free(line, nil, 0) }
        return String(cString: line)
    }

    func subjectLine() -> String {
        guard let line = X509_NAME_oneline(X509_get_subject_name(raw), nil, 0) else { return "" }
        defer { CRYPTO_free(line, nil, 0) }
        return String(cString: line)
    }

    func subjectEntry(_ oid: String) -> String? {
        guard let obj = OBJ_txt2obj(oid, 1) else { return nil }
        defer { ASN1_OBJECT_free(obj) }
        let name = X509_get_subject_name(raw)
        let index = X509_NAME_get_index_by_OBJ(name, obj, -1)
        guard index >= 0, let entry = X509_NAME_get_entry(name, index), let data = X509_NAME_ENTRY_get_data(entry),
            let p = ASN1_STRING_get0_data(data)
        else { return nil }
        return String(decoding: UnsafeBufferPointer(start: p, count: Int(ASN1_STRING_length(data))), as: UTF8.self)
    }

    func time(_ t: UnsafePointer<ASN1_TIME>?) throws(CertificateError) -> Double {
        var tm = tm()
        guard let t, ASN1_TIME_to_tm(t, &tm) == 1 else { throw CertificateError(reason: "unreadable validity time") }
        return Double(timegm(&tm))
    }
}
