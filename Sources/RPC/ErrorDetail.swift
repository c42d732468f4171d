import RPCStatus

/// Structured facts about an error, sent besides the code and message as a `google.rpc.Status`
/// in `grpc-status-details-bin` (gRPC's richer error model), so that clients can show which
/// field broke which rule without parsing the message.
public enum ErrorDetail: Sendable, Hashable {
    /// A field of the request broke a rule (grouped into one `google.rpc.BadRequest`).
    case fieldViolation(field: String, description: String, reason: String = "")
    /// A state prevented the call (grouped into one `google.rpc.PreconditionFailure`).
    case preconditionViolation(type: String, subject: String, description: String)
    /// A stable reason code within a domain (`google.rpc.ErrorInfo`).
    case info(reason: String, domain: String = "esaylov.uz", metadata: [String: String] = [:])
}

extension RPCError {
    public init(code: Code, message: String, details: [ErrorDetail]) {
        self.init(code: code, message: message)
        self.details = details
    }

    /// The `google.rpc.Status` carrying `details`, encoded by the generated message types.
    func statusDetailsBytes() -> [UInt8]? {
        guard !details.isEmpty else { return nil }
        var status = Esaylov_Internal_Rpc_Status()
        status.code = Int32(code.rawValue)
        status.message = message
        var badRequest = Esaylov_Internal_Rpc_BadRequest()
        var precondition = Esaylov_Internal_Rpc_PreconditionFailure()
        var infos: [Esaylov_Internal_Rpc_ErrorInfo] = []
        for detail in details {
            switch detail {
            case .fieldViolation(let field, let description, let reason):
                var v = Esaylov_Internal_Rpc_BadRequest.FieldViolation()
                v.field = field
                v.description = description
                v.reason = reason
                badRequest.fieldViolations.append(v)
            case .preconditionViolation(let type, let subject, let description):
                var v = Esaylov_Internal_Rpc_PreconditionFailure.Violation()
                v.type = type
                v.subject = subject
                v.description = description
                precondition.violations.append(v)
            case .info(let reason, let domain, let metadata):
                var info = Esaylov_Internal_Rpc_ErrorInfo()
                info.reason = reason
                info.domain = domain
                info.metadata = metadata
                infos.append(info)
            }
        }
        func pack(_ name: String, _ bytes: [UInt8]) -> Esaylov_Internal_Rpc_Any {
            var any = Esaylov_Internal_Rpc_Any()
            any.typeUrl = "type.googleapis.com/google.rpc.\(name)"
            any.value = bytes
            return any
        }
        if !badRequest.fieldViolations.isEmpty { status.details.append(pack("BadRequest", badRequest.serializedBytes())) }
        if !precondition.violations.isEmpty { status.details.append(pack("PreconditionFailure", precondition.serializedBytes())) }
        for info in infos { status.details.append(pack("ErrorInfo", info.serializedBytes())) }
        return status.serializedBytes()
    }
}
