public import Foundation
import Signatures

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

    /// The same key, accepting tokens for `maxAge`.
    public func withMaxAge(_ maxAge: Duration) -> PageTokens { PageTokens(key: key, maxAge: maxAge) }

    /// Loads the deployment's key, making it on first use from the system's CSPRNG (32 bytes);
    /// replicas starting together agree on the one that was stored first.
    public static func load(from database: Database) throws(StoreError) -> PageTokens {
        PageTokens(key: try ServerSecrets.value(database, name: "page_token_key"))
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
        return Crypto.base64URL(payload + mac(filter, payload))
    }

    /// The position in `token`; nil when the token was altered, is not ours, belongs to
    /// another filter, or has expired.
    public func decode(_ token: String, filter: [String], fieldCount: Int, now: Date = Date()) -> [String]? {
        guard let raw = Crypto.unbase64URL(token), raw.count >= 1 + 8 + 16 else { return nil }
        let payload = Array(raw.dropLast(16))
        guard Crypto.constantTimeEqual(mac(filter, payload), Array(raw.suffix(16))), payload[0] == 2 else { return nil }
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
        return Array(Crypto.hmacSHA256(key: key, data).prefix(16))
    }
}
