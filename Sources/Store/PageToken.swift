internal import COpenSSL
public import Foundation

/// Opaque keyset page tokens: where the previous page ended, bound to the list's filter, and
/// MAC'd (HMAC-SHA-256, the deployment's key) so an altered token is refused rather than
/// followed. The key lives in the database, so tokens work across replicas and restarts.
///
/// Token bytes: version 2, the time it was issued (seconds, 8 bytes big-endian), each cursor
/// field as a 2-byte length and its UTF-8, then the first 16 bytes of
/// HMAC(key, "esaylov.page-token.v2" ‖ each filter component as a 4-byte length and its UTF-8 ‖
/// the bytes before the MAC). Lengths make every encoding unambiguous: no two filters or
/// cursors share one. A token is accepted for `maxAge` after it was issued.
public struct PageTokens: Sendable {
    private let key: [UInt8]
    public let maxAge: Duration

    public init(key: [UInt8], maxAge: Duration = .seconds(24 * 3600)) {
        precondition(key.count >= 16, "page token key too short")
        self.key = key
        self.maxAge = maxAge
    }

    /// Loads the deployment's key, making it on first use from the system's CSPRNG (32 bytes);
    /// replicas starting together agree on the one that was stored first.
    public static func load(from database: Database) throws(StoreError) -> PageTokens {
        try database.withConnection { (c) throws(StoreError) -> PageTokens in
            var generator = SystemRandomNumberGenerator()
            let fresh = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let hex = fresh.map { String($0, radix: 16) }.map { $0.count == 1 ? "0" + $0 : $0 }.joined()
            try c.query("INSERT INTO server_secrets (name, value) VALUES ('page_token_key', \(hex)) ON CONFLICT (name) DO NOTHING")
            let rows = try c.query("SELECT value FROM server_secrets WHERE name = 'page_token_key'")
            guard rows.count == 1 else { throw StoreError(.other, reason: "page token key is missing") }
            return PageTokens(key: Array(try rows.string(0, "value").utf8))
        }
    }

    /// A token for the position `fields` under the filter `filter` (its canonical components).
    public func encode(filter: [String], fields: [String], now: Date = Date()) -> String {
        var payload: [UInt8] = [2]
        let issued = UInt64(max(0, now.timeIntervalSince1970))
        payload += (0..<8).map { UInt8(truncatingIfNeeded: issued >> (56 - 8 * UInt64($0))) }
        for f in fields {
            let bytes = Array(f.utf8.prefix(0xFFFF))
            payload += [UInt8(truncatingIfNeeded: bytes.count >> 8), UInt8(truncatingIfNeeded: bytes.count)]
            payload += bytes
        }
        return base64url(payload + mac(filter, payload))
    }

    /// The position in `token`; nil when the token was altered, is not ours, belongs to
    /// another filter, or has expired.
    public func decode(_ token: String, filter: [String], fieldCount: Int, now: Date = Date()) -> [String]? {
        guard let raw = unbase64url(token), raw.count >= 1 + 8 + 16 else { return nil }
        let payload = Array(raw.dropLast(16))
        guard constantTimeEqual(mac(filter, payload), Array(raw.suffix(16))), payload[0] == 2 else { return nil }
        let issued = payload[1..<9].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let age = now.timeIntervalSince1970 - Double(issued)
        let (seconds, _) = maxAge.components
        guard age >= -300, age <= Double(seconds) else { return nil }
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

    private func mac(_ filter: [String], _ payload: [UInt8]) -> [UInt8] {
        var data = Array("esaylov.page-token.v2".utf8)
        for component in filter {
            let bytes = Array(component.utf8)
            data += (0..<4).map { UInt8(truncatingIfNeeded: bytes.count >> (24 - 8 * $0)) }
            data += bytes
        }
        data += payload
        var out = [UInt8](repeating: 0, count: 32)
        var len: UInt32 = 32
        _ = key.withUnsafeBytes { k in
            data.withUnsafeBytes { d in
                HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), d.baseAddress?.assumingMemoryBound(to: UInt8.self), d.count, &out, &len)
            }
        }
        return Array(out.prefix(16))
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
