#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// gRPC's text encodings of headers.
enum GRPCWire {
    /// The content type of gRPC requests and of our responses.
    static let contentType = "application/grpc"
    /// The same, for comparing received bytes with (`matches`; a test checks they agree).
    static let contentTypeLiteral: StaticString = "application/grpc"

    /// `grpc-status` values as header text, made once.
    static let statusText: [String] = (0...16).map { String($0) }

    /// Percent-encodes a status message for `grpc-message` (gRPC HTTP/2 protocol: every
    /// byte outside 0x20–0x7E, and `%`, becomes `%XX`).
    static func percentEncode(_ message: String) -> String {
        var out = [UInt8]()
        out.reserveCapacity(message.utf8.count)
        let hex = Array("0123456789ABCDEF".utf8)
        for b in message.utf8 {
            if b >= 0x20, b <= 0x7E, b != UInt8(ascii: "%") {
                out.append(b)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes a percent-encoded `grpc-message`; malformed escapes are kept as they are.
    static func percentDecode(_ text: String) -> String {
        let bytes = Array(text.utf8)
        var out = [UInt8]()
        var i = 0
        func hexValue(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.count, let hi = hexValue(bytes[i + 1]), let lo = hexValue(bytes[i + 2]) {
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses `grpc-timeout`: 1–8 ASCII digits and a unit `H M S m u n`.
    static func parseTimeout(_ value: String) -> Duration? {
        let bytes = Array(value.utf8)
        guard bytes.count >= 2, bytes.count <= 9 else { return nil }
        var amount: Int64 = 0
        for b in bytes.dropLast() {
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
            amount = amount * 10 + Int64(b - UInt8(ascii: "0"))
        }
        switch bytes.last! {
        case UInt8(ascii: "H"): return .seconds(amount * 3600)
        case UInt8(ascii: "M"): return .seconds(amount * 60)
        case UInt8(ascii: "S"): return .seconds(amount)
        case UInt8(ascii: "m"): return .milliseconds(amount)
        case UInt8(ascii: "u"): return .microseconds(amount)
        case UInt8(ascii: "n"): return .nanoseconds(amount)
        default: return nil
        }
    }
}

/// A response header or trailer field as it goes to nghttp2; `Equatable`, unlike a tuple.
struct HeaderField: Equatable, Sendable {
    let name: String
    let value: String
}

extension HeaderField {
    /// The response headers of a call without initial metadata or response encoding.
    static let plainGRPCResponse = [
        HeaderField(name: ":status", value: "200"), HeaderField(name: "content-type", value: GRPCWire.contentType),
        HeaderField(name: "grpc-accept-encoding", value: MessageEncoding.acceptHeader),
    ]

    /// `grpc-status: 0` alone: the trailers of most calls.
    static let okTrailers = [HeaderField(name: "grpc-status", value: "0")]
}

extension UnsafeRawBufferPointer {
    /// Whether these bytes are the literal `text`: one length check and one `memcmp`, for the
    /// names and values compared on every request (a `String` would first be made contiguous).
    func matches(_ text: StaticString) -> Bool {
        text.withUTF8Buffer { utf8 in
            utf8.count == count && (count == 0 || memcmp(utf8.baseAddress!, baseAddress!, count) == 0)
        }
    }

    /// Whether these bytes are `text`'s UTF-8, compared without making a string of them.
    func equals(_ text: String) -> Bool {
        let utf8 = text.utf8
        guard utf8.count == count else { return false }
        return utf8.withContiguousStorageIfAvailable { stored in
            count == 0 || memcmp(stored.baseAddress!, baseAddress!, count) == 0
        } ?? elementsEqual(utf8)
    }
}
