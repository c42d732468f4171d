public import ESaylovAPI
public import RPC

/// `grpc.testing.TestService` as gRPC's interop cases expect of a server
/// (`shared/design/interop.md`): it exercises every transport behaviour on our stack.
public struct InteropService: Grpc_Testing_TestService {
    public init() {}

    public func emptyCall(request: Grpc_Testing_Empty, context: ServerContext) throws(RPCError) -> Grpc_Testing_Empty {
        echoMetadata(context)
        return Grpc_Testing_Empty()
    }

    public func unaryCall(request: Grpc_Testing_SimpleRequest, context: ServerContext) throws(RPCError) -> Grpc_Testing_SimpleResponse {
        echoMetadata(context)
        try checkCompression(expected: request.expectCompressed, arrivedCompressed: context.requestWasCompressed)
        if let compress = request.responseCompressed { context.compressResponses = compress.value }
        if let status = request.responseStatus, status.code != 0 {
            throw RPCError(code: .init(rawValue: Int(status.code)), message: status.message)
        }
        var response = Grpc_Testing_SimpleResponse()
        response.payload = try payload(size: request.responseSize)
        return response
    }

    /// Without a caching proxy in front, a cacheable call is answered like a unary one.
    public func cacheableUnaryCall(request: Grpc_Testing_SimpleRequest, context: ServerContext) throws(RPCError) -> Grpc_Testing_SimpleResponse {
        try unaryCall(request: request, context: context)
    }

    public func streamingOutputCall(
        request: Grpc_Testing_StreamingOutputCallRequest,
        responses: ResponseWriter<Grpc_Testing_StreamingOutputCallResponse>, context: ServerContext
    ) async throws {
        echoMetadata(context)
        try await respond(to: request, with: responses, context: context)
    }

    public func streamingInputCall(
        requests: RequestStream<Grpc_Testing_StreamingInputCallRequest>, context: ServerContext
    ) async throws -> Grpc_Testing_StreamingInputCallResponse {
        echoMetadata(context)
        var total: Int32 = 0
        for try await request in requests {
            try checkCompression(expected: request.expectCompressed, arrivedCompressed: requests.lastMessageWasCompressed)
            let (sum, overflow) = total.addingReportingOverflow(Int32(clamping: request.payload?.body.count ?? 0))
            guard !overflow else { throw RPCError(code: .outOfRange, message: "aggregated_payload_size overflows int32") }
            total = sum
        }
        var response = Grpc_Testing_StreamingInputCallResponse()
        response.aggregatedPayloadSize = total
        return response
    }

    public func fullDuplexCall(
        requests: RequestStream<Grpc_Testing_StreamingOutputCallRequest>,
        responses: ResponseWriter<Grpc_Testing_StreamingOutputCallResponse>, context: ServerContext
    ) async throws {
        echoMetadata(context)
        for try await request in requests {
            try await respond(to: request, with: responses, context: context)
        }
    }

    /// Answers only after the client half-closes, in request order.
    public func halfDuplexCall(
        requests: RequestStream<Grpc_Testing_StreamingOutputCallRequest>,
        responses: ResponseWriter<Grpc_Testing_StreamingOutputCallResponse>, context: ServerContext
    ) async throws {
        echoMetadata(context)
        var received: [Grpc_Testing_StreamingOutputCallRequest] = []
        var planned = 0
        for try await request in requests {
            planned += request.responseParameters.reduce(0) { $0 + Int(max(0, $1.size)) }
            guard planned <= Self.maxPlannedBytes else {
                throw RPCError(code: .resourceExhausted, message: "half-duplex responses would exceed \(Self.maxPlannedBytes) bytes")
            }
            received.append(request)
        }
        for request in received { try await respond(to: request, with: responses, context: context) }
    }

    public func unimplementedCall(request: Grpc_Testing_Empty, context: ServerContext) throws(RPCError) -> Grpc_Testing_Empty {
        throw RPCError(code: .unimplemented, message: "grpc.testing.TestService/UnimplementedCall is not implemented")
    }

    // MARK: helpers

    /// Largest single response payload; above it the request is refused, not allocated.
    static let maxPayload = 4 * 1024 * 1024
    static let maxPlannedBytes = 16 * 1024 * 1024

    private func payload(size: Int32) throws(RPCError) -> Grpc_Testing_Payload {
        guard size >= 0 else { throw RPCError(code: .invalidArgument, message: "response_size must not be negative") }
        guard Int(size) <= Self.maxPayload else {
            throw RPCError(code: .invalidArgument, message: "response_size \(size) exceeds the limit of \(Self.maxPayload) bytes")
        }
        var p = Grpc_Testing_Payload()
        p.type = .compressable
        p.body = [UInt8](repeating: 0, count: Int(size))
        return p
    }

    private func respond(
        to request: Grpc_Testing_StreamingOutputCallRequest, with responses: ResponseWriter<Grpc_Testing_StreamingOutputCallResponse>,
        context: ServerContext
    ) async throws {
        if let status = request.responseStatus, status.code != 0 {
            throw RPCError(code: .init(rawValue: Int(status.code)), message: status.message)
        }
        for parameters in request.responseParameters {
            if parameters.intervalUs > 0 { try await Task.sleep(for: .microseconds(parameters.intervalUs)) }
            context.compressResponses = parameters.compressed?.value ?? false
            var response = Grpc_Testing_StreamingOutputCallResponse()
            response.payload = try payload(size: parameters.size)
            try await responses.write(response)
        }
    }

    /// A client that says its message is compressed must have sent it compressed.
    private func checkCompression(expected: Grpc_Testing_BoolValue?, arrivedCompressed: Bool) throws(RPCError) {
        if expected?.value == true, !arrivedCompressed {
            throw RPCError(code: .invalidArgument, message: "expect_compressed is set but the message arrived uncompressed")
        }
    }

    private func echoMetadata(_ context: ServerContext) {
        if let value = context.requestMetadata["x-grpc-test-echo-initial"] {
            context.addInitialMetadata("x-grpc-test-echo-initial", value)
        }
        if let value = context.requestMetadata.bytes("x-grpc-test-echo-trailing-bin") {
            context.addTrailingMetadata("x-grpc-test-echo-trailing-bin", bytes: value)
        }
    }
}
