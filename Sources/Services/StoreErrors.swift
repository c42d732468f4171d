public import RPC
public import Store

/// The one place where storage failures become gRPC statuses. Messages name the rule or the
/// state, never the data or the SQL.
extension RPCError {
    public init(_ error: StoreError, fieldsByConstraint: [String: String] = [:]) {
        let field = error.constraint.flatMap { fieldsByConstraint[$0] }
        switch error.kind {
        case .unavailable:
            self.init(code: .unavailable, message: "the database is unavailable; retry with backoff")
        case .poolExhausted:
            self.init(code: .unavailable, message: "the server is busy; retry with backoff")
        case .timeout:
            self.init(code: .deadlineExceeded, message: "the deadline passed while the database was working")
        case .conflict:
            self.init(code: .aborted, message: "a concurrent change conflicted; retry")
        case .uniqueViolation:
            self.init(
                code: .alreadyExists, message: "\(field ?? "a unique value") is already taken",
                details: [.fieldViolation(field: field ?? "", description: "must be unique", reason: "ALREADY_EXISTS")])
        case .foreignKeyViolation:
            self.init(
                code: .failedPrecondition, message: "\(field ?? "a reference") names something that does not exist or is still in use",
                details: [.preconditionViolation(type: "REFERENCE", subject: field ?? "", description: "referenced record must exist")])
        case .checkViolation where error.constraint == "directory_effect":
            // A decision's directory effect that no longer holds; the reason names the item and
            // the rule, never personal data.
            self.init(
                code: .failedPrecondition, message: "a directory effect of the decision no longer holds: \(error.reason)",
                details: [.preconditionViolation(type: "DIRECTORY_EFFECT", subject: "decision", description: error.reason)])
        case .checkViolation where error.constraint == "decision_attachments":
            self.init(
                code: .failedPrecondition, message: error.reason,
                details: [.preconditionViolation(type: "ATTACHMENT", subject: "draft", description: error.reason)])
        case .checkViolation:
            self.init(
                code: .invalidArgument, message: "\(field ?? "a value") breaks a rule of the directory",
                details: [.fieldViolation(field: field ?? "", description: "breaks constraint \(error.constraint ?? "")", reason: "CONSTRAINT")])
        case .decoding, .other:
            self.init(code: .internal, message: "storage error")
        }
    }
}

/// A storage error that a handler lets through gets the same status as one it maps itself.
extension StoreError: RPCErrorConvertible {
    public var rpcError: RPCError { RPCError(self) }
}

extension Database {
    /// Runs `query` within what is left of the call's deadline, without holding a thread;
    /// storage failures become their gRPC statuses.
    func read<T>(_ query: Query<T>, for context: ServerContext) async throws(RPCError) -> T {
        do { return try await read(query, timeout: context.timeRemaining) } catch { throw RPCError(error) }
    }

    /// Runs `body` in a transaction within what is left of the call's deadline, off the event
    /// loops; storage failures become their gRPC statuses.
    func transaction<T: Sendable>(
        for context: ServerContext, _ body: @escaping @Sendable (Connection) throws(StoreError) -> T
    ) async throws(RPCError) -> T {
        do { return try await transaction(timeout: context.timeRemaining, body) } catch { throw RPCError(error) }
    }
}
