internal import COpenSSL

/// Opaque keyset page tokens: where the previous page ended, bound to the list's filter, and
/// MAC'd (HMAC-SHA-256, the deployment's key) so an altered token is refused rather than
/// followed. The key lives in the database, so tokens work across replicas and restarts.
public struct PageTokens: Sendable {
    private let key: [UInt8]

    public init(key: [UInt8]) {
        precondition(key.count >= 16, "page token key too short")
        self.key = key
    }

    /// Loads the deployment's key (made by migration 1).
    public static func load(from database: Database) throws(StoreError) -> PageTokens {
        try database.withConnection { (c) throws(StoreError) -> PageTokens in
            let rows = try c.query("SELECT value FROM server_secrets WHERE name = 'page_token_key'")
            guard rows.count == 1 else { throw StoreError(.other, reason: "page token key is missing") }
            return PageTokens(key: Array(try rows.string(0, "value").utf8))
        }
    }

    /// A token for the position `fields` under the filter `filter` (a canonical description).
    public func encode(filter: String, fields: [String]) -> String {
        var payload: [UInt8] = [1]
        payload += fingerprint(filter)
        for f in fields {
            let bytes = Array(f.utf8)
            payload += [UInt8(truncatingIfNeeded: bytes.count >> 8), UInt8(truncatingIfNeeded: bytes.count)]
            payload += bytes
        }
        return base64url(payload + mac(payload))
    }

    /// The position in `token`; nil when the token was altered, is not ours, or belongs to
    /// another filter.
    public func decode(_ token: String, filter: String, fieldCount: Int) -> [String]? {
        guard let raw = unbase64url(token), raw.count >= 1 + 8 + 16 else { return nil }
        let payload = Array(raw.dropLast(16))
        guard constantTimeEqual(mac(payload), Array(raw.suffix(16))), payload[0] == 1,
            Array(payload[1..<9]) == fingerprint(filter)
        else { return nil }
        var fields: [String] = []
        var i = 9
        while i + 2 <= payload.count {
            let n = Int(payload[i]) << 8 | Int(payload[i + 1])
            i += 2
            guard i + n <= payload.count else { return nil }
            fields.append(String(decoding: payload[i..<(i + n)], as: UTF8.self))
            i += n
        }
        return i == payload.count && fields.count == fieldCount ? fields : nil
    }

    private func mac(_ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var len: UInt32 = 32
        _ = key.withUnsafeBytes { k in
            data.withUnsafeBytes { d in
                HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), d.baseAddress?.assumingMemoryBound(to: UInt8.self), d.count, &out, &len)
            }
        }
        return Array(out.prefix(16))
    }

    private func fingerprint(_ filter: String) -> [UInt8] {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
        for b in filter.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return (0..<8).map { UInt8(truncatingIfNeeded: h >> (56 - 8 * $0)) }
    }
}

private func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var diff: UInt8 = 0
    for i in a.indices { diff |= a[i] ^ b[i] }
    return diff == 0
}

private let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

private func base64url(_ bytes: [UInt8]) -> String {
    var out: [UInt8] = []
    var i = 0
    while i < bytes.count {
        let chunk = Array(bytes[i..<min(i + 3, bytes.count)])
        let n = chunk.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (16 - 8 * UInt32($1.offset)) }
        for j in 0..<(chunk.count + 1) { out.append(alphabet[Int(n >> (18 - 6 * UInt32(j)) & 63)]) }
        i += 3
    }
    return String(decoding: out, as: UTF8.self)
}

private func unbase64url(_ text: String) -> [UInt8]? {
    var reverse = [Int](repeating: -1, count: 256)
    for (i, c) in alphabet.enumerated() { reverse[Int(c)] = i }
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
