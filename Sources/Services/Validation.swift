import Domain
import RPC

/// INVALID_ARGUMENT naming the field and the rule it broke (as a `BadRequest` field violation).
func invalid(_ field: String, _ rule: String) -> RPCError {
    RPCError(code: .invalidArgument, message: "\(field) \(rule)", details: [.fieldViolation(field: field, description: rule, reason: "INVALID")])
}

func invalid(_ v: DomainViolation) -> RPCError { invalid(v.field, v.rule) }

/// Exactly `count` lower-case hex digits (ids the server makes, SHA-256s).
func isLowerHex(_ s: String, count: Int) -> Bool {
    s.utf8.count == count && s.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
}

/// A directory or campaign id: 2 to 64 lower-case letters, digits and hyphens.
func isRecordId(_ s: String) -> Bool {
    (2...64).contains(s.utf8.count) && s.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }
}
