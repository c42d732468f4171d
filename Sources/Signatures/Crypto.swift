internal import COpenSSL

/// The primitives the services need beyond signatures: randomness, digests, MACs.
public enum Crypto {
    /// `count` bytes from OpenSSL's CSPRNG. A CSPRNG that fails cannot be worked around: the
    /// process stops rather than hand out guessable tokens or codes.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let ok = out.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32($0.count)) }
        precondition(ok == 1, "the system's random number generator failed")
        return out
    }

    /// A uniformly random integer in 0..<bound, from the CSPRNG (no modulo bias).
    public static func randomInteger(below bound: UInt32) -> UInt32 {
        precondition(bound > 0)
        let limit = UInt32.max - UInt32.max % bound
        while true {
            let b = randomBytes(4)
            let v = UInt32(b[0]) << 24 | UInt32(b[1]) << 16 | UInt32(b[2]) << 8 | UInt32(b[3])
            if v < limit { return v % bound }
        }
    }

    public static func sha256(_ data: some Collection<UInt8>) -> [UInt8] {
        let bytes = Array(data)
        var md = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let ok = EVP_Digest(bytes, bytes.count, &md, &length, EVP_sha256(), nil)
        precondition(ok == 1, "SHA-256 failed")
        return md
    }

    public static func hmacSHA256(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let p = HMAC(EVP_sha256(), key, Int32(key.count), data, data.count, &out, &length)
        precondition(p != nil, "HMAC-SHA-256 failed")
        return out
    }

    /// Compares in time that depends only on the lengths.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return CRYPTO_memcmp(a, b, a.count) == 0
    }

    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static let base64URLAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Base64url without padding (RFC 4648 §5).
    public static func base64URL(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let chunk = Array(bytes[i..<min(i + 3, bytes.count)])
            let n = chunk.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (16 - 8 * UInt32($1.offset)) }
            for j in 0..<(chunk.count + 1) { out.append(base64URLAlphabet[Int(n >> (18 - 6 * UInt32(j)) & 63)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Base64url without padding to bytes; nil for any other character or a dangling one.
    public static func unbase64URL(_ text: String) -> [UInt8]? {
        var reverse = [Int](repeating: -1, count: 256)
        for (i, c) in base64URLAlphabet.enumerated() { reverse[Int(c)] = i }
        var out: [UInt8] = []
        var acc: UInt32 = 0
        var bits = 0
        for c in text.utf8 {
            let v = reverse[Int(c)]
            guard v >= 0 else { return nil }
            acc = acc << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        return bits >= 6 ? nil : out
    }

    /// Lower-case or upper-case hex to bytes; nil when not hex.
    public static func unhex(_ text: String) -> [UInt8]? {
        let u = Array(text.utf8)
        guard u.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: c - 48
            case 97...102: c - 87
            case 65...70: c - 55
            default: nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(u.count / 2)
        var i = 0
        while i < u.count {
            guard let h = nibble(u[i]), let l = nibble(u[i + 1]) else { return nil }
            out.append(h << 4 | l)
            i += 2
        }
        return out
    }
}

/// Owns one memory `BIO`.
final class MemoryBIO {
    let raw: OpaquePointer

    /// An empty, writable BIO.
    init() {
        guard let b = BIO_new(BIO_s_mem()) else { fatalError("out of memory") }
        raw = b
    }

    /// A BIO holding a copy of `bytes` (read-only).
    init(_ bytes: [UInt8]) {
        let b = BIO_new(BIO_s_mem())!
        if !bytes.isEmpty { _ = bytes.withUnsafeBytes { BIO_write(b, $0.baseAddress, Int32($0.count)) } }
        raw = b
    }

    deinit { BIO_free(raw) }

    var contents: [UInt8] {
        var p: UnsafeMutablePointer<CChar>?
        let n = esaylov_bio_mem_data(raw, &p)
        guard n > 0, let p else { return [] }
        return p.withMemoryRebound(to: UInt8.self, capacity: n) { Array(UnsafeBufferPointer(start: $0, count: n)) }
    }
}

/// The reason of OpenSSL's most recent error (never data: OpenSSL's reasons name a check, not
/// its inputs), and the thread's error queue emptied.
func openSSLReason() -> String {
    var last: UInt = 0
    while case let e = ERR_get_error(), e != 0 { last = e }
    guard last != 0, let r = ERR_reason_error_string(last) else { return "unknown OpenSSL error" }
    return String(cString: r)
}

/// `DER` of an object through an i2d function.
func derEncoding(_ encode: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?) -> Int32) -> [UInt8] {
    let length = encode(nil)
    guard length > 0 else { return [] }
    var der = [UInt8](repeating: 0, count: Int(length))
    der.withUnsafeMutableBufferPointer { buf in
        var p: UnsafeMutablePointer<UInt8>? = buf.baseAddress
        _ = encode(&p)
    }
    return der
}

/// SHA-256 over data that arrives in pieces (an upload's chunks); the digest context is freed
/// with the object.
public final class SHA256Stream {
    private let ctx: OpaquePointer
    private var finished = false

    public init() {
        guard let c = EVP_MD_CTX_new() else { fatalError("out of memory for a digest context") }
        ctx = c
        precondition(EVP_DigestInit_ex(ctx, EVP_sha256(), nil) == 1, "SHA-256 failed")
    }

    deinit { EVP_MD_CTX_free(ctx) }

    public func update(_ data: [UInt8]) {
        precondition(!finished, "the digest is already finished")
        let ok = data.withUnsafeBytes { EVP_DigestUpdate(ctx, $0.baseAddress, $0.count) }
        precondition(ok == 1, "SHA-256 failed")
    }

    /// The digest; the stream takes no more data.
    public func finish() -> [UInt8] {
        finished = true
        var md = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        precondition(EVP_DigestFinal_ex(ctx, &md, &length) == 1, "SHA-256 failed")
        return md
    }
}
