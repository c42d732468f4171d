import Domain
import RPC

/// INVALID_ARGUMENT naming the field and the rule it broke (as a `BadRequest` field violation).
func invalid(_ field: String, _ rule: String) -> RPCError {
    RPCError(code: .invalidArgument, message: "\(field) \(rule)", details: [.fieldViolation(field: field, description: rule, reason: "INVALID")])
}

func invalid(_ v: DomainViolation) -> RPCError { invalid(v.field, v.rule) }
