/// gRPC custom metadata: ordered key/value pairs, keys lower-case. Keys ending in `-bin`
/// carry bytes (base64 on the wire, RFC 4648 without padding on send, either on receive).
public struct Metadata: Sendable, Hashable, Sequence {
    public enum Value: Sendable, Hashable {
        case string(String)
        case binary([UInt8])
    }

    public struct Entry: Sendable, Hashable {
        public var key: String
        public var value: Value
    }

    private var entries: [Entry] = []

    public init() {}

    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }
    public func makeIterator() -> IndexingIterator<[Entry]> { entries.makeIterator() }

    public mutating func add(_ key: String, _ value: String) {
        entries.append(Entry(key: Self.lowercased(key), value: .string(value)))
    }

    public mutating func add(_ key: String, bytes: [UInt8]) {
        entries.append(Entry(key: Self.lowercased(key), value: .binary(bytes)))
    }

    /// `key` in lower case; most keys are already, and are returned as they are (lowercased()
    /// makes a new string every time, and interceptors look keys up on every call).
    private static func lowercased(_ key: String) -> String {
        key.utf8.allSatisfy { $0 < 0x80 && !($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) } ? key : key.lowercased()
    }

    /// The first string value under `key`.
    public subscript(key: String) -> String? {
        let key = Self.lowercased(key)
        for e in entries where e.key == key {
            if case .string(let s) = e.value { return s }
        }
        return nil
    }

    /// The first binary value under `key` (which ends in `-bin`).
    public func bytes(_ key: String) -> [UInt8]? {
        let key = Self.lowercased(key)
        for e in entries where e.key == key {
            if case .binary(let b) = e.value { return b }
        }
        return nil
    }

    /// Parses one received header; `nil` when a `-bin` value is not valid base64.
    static func decode(key: String, rawValue: String) -> Entry? {
        if key.hasSuffix("-bin") {
            guard let bytes = Base64.decode(rawValue) else { return nil }
            return Entry(key: key, value: .binary(bytes))
        }
        return Entry(key: key, value: .string(rawValue))
    }

    mutating func append(_ entry: Entry) { entries.append(entry) }

    /// Wire form of every entry.
    var headerFields: [HeaderField] {
        entries.map { e in
            switch e.value {
            case .string(let s): HeaderField(name: e.key, value: s)
            case .binary(let b): HeaderField(name: e.key.hasSuffix("-bin") ? e.key : e.key + "-bin", value: Base64.encode(b))
            }
        }
    }
}

enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        table[Int(UInt8(ascii: "-"))] = 62  // URL-safe alphabet accepted too
        table[Int(UInt8(ascii: "_"))] = 63
        return table
    }()

    static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], alphabet[Int(n & 63)]]
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let n = UInt32(bytes[i]) << 16
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)]]
        } else if rest == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)]]
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ string: String) -> [UInt8]? {
        var out = [UInt8]()
        var acc: UInt32 = 0
        var bits = 0
        var padding = 0
        for c in string.utf8 {
            if c == UInt8(ascii: "=") { padding += 1; continue }
            if padding > 0 { return nil }  // data after padding
            let v = reverse[Int(c)]
            if v == 0xFF { return nil }
            acc = acc << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        if bits >= 6 || padding > 2 { return nil }
        return out
    }
}
