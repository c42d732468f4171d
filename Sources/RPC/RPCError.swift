/// A gRPC status: the outcome of one call, sent to the client in the trailers.
public struct RPCError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A gRPC status code. A struct, not an enum, so that codes unknown to us still round-trip.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }

        public static let ok = Code(rawValue: 0)
        public static let cancelled = Code(rawValue: 1)
        public static let unknown = Code(rawValue: 2)
        public static let invalidArgument = Code(rawValue: 3)
        public static let deadlineExceeded = Code(rawValue: 4)
        public static let notFound = Code(rawValue: 5)
        public static let alreadyExists = Code(rawValue: 6)
        public static let permissionDenied = Code(rawValue: 7)
        public static let resourceExhausted = Code(rawValue: 8)
        public static let failedPrecondition = Code(rawValue: 9)
        public static let aborted = Code(rawValue: 10)
        public static let outOfRange = Code(rawValue: 11)
        public static let unimplemented = Code(rawValue: 12)
        public static let `internal` = Code(rawValue: 13)
        public static let unavailable = Code(rawValue: 14)
        public static let dataLoss = Code(rawValue: 15)
        public static let unauthenticated = Code(rawValue: 16)

        private static let names = [
            "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
            "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
            "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
            "UNAUTHENTICATED",
        ]
        public var description: String {
            Self.names.indices.contains(rawValue) ? Self.names[rawValue] : "CODE_\(rawValue)"
        }
    }

    public var code: Code
    /// Sent as `grpc-message`; must not carry personal data, secrets or SQL.
    public var message: String
    /// Extra trailing metadata sent with the status.
    public var metadata: Metadata
    /// Structured details, sent as `grpc-status-details-bin`.
    public var details: [ErrorDetail] = []

    public init(code: Code, message: String, metadata: Metadata = Metadata()) {
        self.code = code
        self.message = message
        self.metadata = metadata
    }

    public var description: String { "\(code): \(message)" }

    static let okStatus = RPCError(code: .ok, message: "")
    static let cancelledByClient = RPCError(code: .cancelled, message: "call cancelled by the client")
    static let callEnded = RPCError(code: .cancelled, message: "call already ended")
}
