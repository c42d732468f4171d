public import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A statement whose values travel as bound parameters, never as SQL text. Written as string
/// interpolation, the way postgres-nio does it:
///
///     let q: SQL = "SELECT name FROM organisations WHERE id = \(id) AND active = \(true)"
///     // q.text == "SELECT name FROM organisations WHERE id = $1 AND active = $2"
///
/// Every interpolated value becomes `$n` with a typed encoding (`SQLEncodable`); another `SQL`
/// interpolated is spliced in as SQL, its parameters renumbered (for shared column lists and
/// conditions). There is no way to interpolate a `String` as SQL.
public struct SQL: Sendable, Hashable, ExpressibleByStringInterpolation, CustomStringConvertible {
    /// The SQL, with `$1`, `$2`, … for the parameters.
    public private(set) var text: String
    public private(set) var binds: [SQLValue]

    public init(stringLiteral value: String) {
        text = value
        binds = []
    }

    public init(stringInterpolation: StringInterpolation) {
        text = stringInterpolation.text
        binds = stringInterpolation.binds
    }

    /// The text only: parameters are data and are never printed.
    public var description: String { text }

    /// The prepared statement's identity on a connection: its text and its parameter types.
    var statementKey: String {
        guard !binds.isEmpty else { return text }
        var key = text
        key.append("\u{0}")
        for b in binds {
            key.append(String(b.type))
            key.append(",")
        }
        return key
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var text = ""
        var binds: [SQLValue] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            text.reserveCapacity(literalCapacity + 4 * interpolationCount)
            binds.reserveCapacity(interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) {
            text.append(literal)
        }

        /// A value, bound as the next parameter.
        public mutating func appendInterpolation(_ value: some SQLEncodable) {
            appendInterpolation(value.sqlValue)
        }

        /// An optional value: NULL of its type when nil.
        public mutating func appendInterpolation<Value: SQLEncodable>(_ value: Value?) {
            appendInterpolation(value.sqlValue)
        }

        private mutating func appendInterpolation(_ value: SQLValue) {
            binds.append(value)
            text.append("$")
            text.append(String(binds.count))
        }

        /// A fragment of SQL, spliced in; its parameters follow ours.
        public mutating func appendInterpolation(_ fragment: SQL) {
            guard !fragment.binds.isEmpty else {
                text.append(fragment.text)
                return
            }
            text.append(SQL.renumber(fragment.text, by: binds.count))
            binds.append(contentsOf: fragment.binds)
        }
    }

    /// `sql` with every `$n` placeholder moved up by `offset`.
    static func renumber(_ sql: String, by offset: Int) -> String {
        var out = ""
        var digits = ""
        var inPlaceholder = false
        func close() {
            if inPlaceholder { out.append(String(Int(digits)! + offset)) }
            inPlaceholder = false
            digits = ""
        }
        for ch in sql {
            if inPlaceholder, ch.isASCII, ch.isNumber {
                digits.append(ch)
                continue
            }
            close()
            if ch == "$" {
                out.append(ch)
                inPlaceholder = true
            } else {
                out.append(ch)
            }
        }
        close()
        return out
    }
}

/// One bound parameter: its PostgreSQL type and its value, in text format (binary for bytea).
public struct SQLValue: Sendable, Hashable {
    enum Storage: Sendable, Hashable {
        case null
        case text(String)
        case binary([UInt8])
    }
    let storage: Storage
    /// The parameter's type OID (`pg_type.oid`).
    public let type: UInt32

    init(_ storage: Storage, type: UInt32) {
        self.storage = storage
        self.type = type
    }

    /// PostgreSQL's built-in type OIDs used here.
    public enum OID {
        public static let bool: UInt32 = 16
        public static let bytea: UInt32 = 17
        public static let int8: UInt32 = 20
        public static let int4: UInt32 = 23
        public static let text: UInt32 = 25
        public static let float8: UInt32 = 701
        public static let textArray: UInt32 = 1009
        public static let int8Array: UInt32 = 1016
        public static let timestamptz: UInt32 = 1184
    }
}

/// A Swift value that binds as a statement parameter of a fixed PostgreSQL type.
public protocol SQLEncodable: Sendable {
    static var sqlType: UInt32 { get }
    var sqlValue: SQLValue { get }
}

extension String: SQLEncodable {
    public static var sqlType: UInt32 { SQLValue.OID.text }
    public var sqlValue: SQLValue { SQLValue(.text(self), type: Self.sqlType) }
}

extension Int: SQLEncodable {
    public static var sqlType: UInt32 { SQLValue.OID.int8 }
    public var sqlValue: SQLValue { SQLValue(.text(String(self)), type: Self.sqlType) }
}

extension Int32: SQLEncodable {
    public static var sqlType: UInt32 { SQLValue.OID.int4 }
    public var sqlValue: SQLValue { SQLValue(.text(String(self)), type: Self.sqlType) }
}

extension Bool: SQLEncodable {
    public static var sqlType: UInt32 { SQLValue.OID.bool }
    public var sqlValue: SQLValue { SQLValue(.text(self ? "t" : "f"), type: Self.sqlType) }
}

extension Double: SQLEncodable {
    public static var sqlType: UInt32 { SQLValue.OID.float8 }
    public var sqlValue: SQLValue {
        let text = isNaN ? "NaN" : isInfinite ? (self < 0 ? "-Infinity" : "Infinity") : "\(self)"
        return SQLValue(.text(text), type: Self.sqlType)
    }
}

/// Bytes, bound as `bytea` (binary format: no escaping at all).
public struct SQLBytes: SQLEncodable, Hashable {
    public var bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public static var sqlType: UInt32 { SQLValue.OID.bytea }
    public var sqlValue: SQLValue { SQLValue(.binary(bytes), type: Self.sqlType) }
}

/// A point in time, bound as `timestamptz` (UTC, microseconds).
extension Date: SQLEncodable {
    public static var sqlType: UInt32 { SQLValue.OID.timestamptz }
    public var sqlValue: SQLValue { SQLValue(.text(Self.postgresText(timeIntervalSince1970)), type: Self.sqlType) }

    /// `YYYY-MM-DD HH:MM:SS.ffffff+00` for seconds since 1970.
    static func postgresText(_ seconds: Double) -> String {
        let micros = (seconds * 1_000_000).rounded(.down)
        var whole = time_t((micros / 1_000_000).rounded(.down))
        let fraction = Int(micros - Double(whole) * 1_000_000)
        var parts = tm()
        gmtime_r(&whole, &parts)
        func pad(_ n: Int32, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        let f = String(fraction)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2)) "
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + String(repeating: "0", count: 6 - f.count) + f + "+00"
    }
}

extension Optional: SQLEncodable where Wrapped: SQLEncodable {
    public static var sqlType: UInt32 { Wrapped.sqlType }
    public var sqlValue: SQLValue {
        switch self {
        case .some(let value): value.sqlValue
        case .none: SQLValue(.null, type: Wrapped.sqlType)
        }
    }
}

/// An element type of a bound array.
public protocol SQLArrayElement: SQLEncodable {
    static var sqlArrayType: UInt32 { get }
}

extension String: SQLArrayElement {
    public static var sqlArrayType: UInt32 { SQLValue.OID.textArray }
}

extension Int: SQLArrayElement {
    public static var sqlArrayType: UInt32 { SQLValue.OID.int8Array }
}

/// An array, bound as `text[]` or `int8[]` in PostgreSQL's array literal form, every element
/// quoted and escaped.
extension Array: SQLEncodable where Element: SQLArrayElement {
    public static var sqlType: UInt32 { Element.sqlArrayType }
    public var sqlValue: SQLValue {
        var literal = "{"
        for (i, element) in enumerated() {
            if i > 0 { literal.append(",") }
            guard case .text(let text) = element.sqlValue.storage else { continue }
            literal.append("\"")
            for ch in text {
                if ch == "\"" || ch == "\\" { literal.append("\\") }
                literal.append(ch)
            }
            literal.append("\"")
        }
        literal.append("}")
        return SQLValue(.text(literal), type: Self.sqlType)
    }
}
