/// A storage failure, classified for the RPC layer. Descriptions carry SQLSTATEs and
/// constraint names, never the data or the SQL.
public struct StoreError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// The database cannot be reached, or the connection broke.
        case unavailable
        /// A unique constraint (SQLSTATE 23505).
        case uniqueViolation
        /// A foreign key (23503): something referenced does not exist, or is still referenced.
        case foreignKeyViolation
        /// A CHECK or NOT NULL constraint, or invalid input (23514, 23502, 22xxx).
        case checkViolation
        /// statement_timeout (57014) fired.
        case timeout
        /// A serialization failure or deadlock (40001, 40P01) that retries did not resolve.
        case conflict
        /// The pool had no connection within the wait.
        case poolExhausted
        /// A row did not decode as expected.
        case decoding
        /// Anything else.
        case other
    }

    public var kind: Kind
    /// SQLSTATE, when PostgreSQL gave one.
    public var sqlState: String?
    /// The constraint at fault, when PostgreSQL named one.
    public var constraint: String?
    /// A short description safe to log.
    public var reason: String

    public init(_ kind: Kind, sqlState: String? = nil, constraint: String? = nil, reason: String) {
        self.kind = kind
        self.sqlState = sqlState
        self.constraint = constraint
        self.reason = reason
    }

    /// `Database.close()` was called.
    public static let databaseClosed = StoreError(.unavailable, reason: "the database was closed")
    /// The monitor last found the database down; calls fail at once until it is back.
    static let databaseUnreachable = StoreError(.unavailable, reason: "the database is unreachable; the monitor is reconnecting")

    static func classify(sqlState: String?, constraint: String?) -> Kind {
        guard let s = sqlState else { return .other }
        switch s {
        case "23505": return .uniqueViolation
        case "23503": return .foreignKeyViolation
        case "23514", "23502": return .checkViolation
        case "57014": return .timeout
        case "40001", "40P01": return .conflict
        default:
            if s.hasPrefix("22") { return .checkViolation }
            if s.hasPrefix("08") || s.hasPrefix("57P") || s == "53300" { return .unavailable }
            return .other
        }
    }

    public var description: String {
        var parts = [reason]
        if let sqlState { parts.append("SQLSTATE \(sqlState)") }
        if let constraint { parts.append("constraint \(constraint)") }
        return parts.joined(separator: ", ")
    }
}
