/// Verifies the signature of a CMS SignedData made with an algorithm OpenSSL does not have:
/// the slot where the national algorithm (O'z DSt 1092:2009 with the O'z DSt 1106:2009 hash)
/// plugs in, through the vendor's library. It checks only the signature over the content
/// (the signed attributes' message digest, then the signature over the attributes with the
/// signer certificate's key); chain, validity and revocation stay with `SignatureVerifier`,
/// which needs the certificates' own algorithm in OpenSSL (an OpenSSL 3 provider) for that.
public protocol ExternalSignatureAlgorithm: Sendable {
    /// The name reported in `SignatureInfo.algorithm`.
    var name: String { get }
    /// True when `cms` (DER) holds a valid signature by `signerCertificate` (DER) over `content`.
    func verify(cms: [UInt8], content: [UInt8], signerCertificate: [UInt8]) -> Bool
}

/// The signature algorithms accepted, by the OID of a CMS SignerInfo's `signatureAlgorithm`
/// (which, by RFC 5652 practice, is either the signature algorithm or the key's algorithm).
/// A signature under an OID not listed is refused ("unsupported algorithm").
public struct AlgorithmRegistry: Sendable {
    public enum Implementation: Sendable {
        /// OpenSSL verifies it (`CMS_verify`).
        case openSSL
        /// A plugged-in implementation verifies it.
        case external(any ExternalSignatureAlgorithm)
    }

    public struct Entry: Sendable {
        public let name: String
        public let implementation: Implementation
    }

    private var entries: [String: Entry]

    /// ECDSA P-256, RSA (PKCS #1 v1.5) and Ed25519, all through OpenSSL.
    public static let openSSL = AlgorithmRegistry(entries: [
        "1.2.840.10045.2.1": Entry(name: "ecdsa-sha256", implementation: .openSSL),  // id-ecPublicKey
        "1.2.840.10045.4.3.2": Entry(name: "ecdsa-sha256", implementation: .openSSL),  // ecdsa-with-SHA256
        "1.2.840.10045.4.3.3": Entry(name: "ecdsa-sha384", implementation: .openSSL),
        "1.2.840.113549.1.1.1": Entry(name: "rsa-sha256", implementation: .openSSL),  // rsaEncryption
        "1.2.840.113549.1.1.11": Entry(name: "rsa-sha256", implementation: .openSSL),  // sha256WithRSAEncryption
        "1.3.101.112": Entry(name: "ed25519", implementation: .openSSL),
    ])

    init(entries: [String: Entry]) {
        self.entries = entries
    }

    /// Adds (or replaces) the algorithm for `oid`: how the national algorithm is installed.
    public mutating func register(oid: String, _ algorithm: any ExternalSignatureAlgorithm) {
        entries[oid] = Entry(name: algorithm.name, implementation: .external(algorithm))
    }

    public func entry(for oid: String) -> Entry? { entries[oid] }
}
