public import ESaylovAPI
internal import ESaylovProtoC
public import RPC

/// What server reflection knows: every served proto file (exact bytes, with comments),
/// its imports, and the fully qualified names it defines.
public final class ReflectionIndex: Sendable {
    let files: [String: [UInt8]]
    let dependencies: [String: [String]]
    let symbols: [String: String]
    /// Extended message → extension number → defining file.
    let extensions: [String: [Int32: String]]
    let services: [String]

    /// Indexes the descriptor set compiled into the binary; `services` are the names that
    /// `list_services` reports (those registered with the router).
    public convenience init(services: [String]) throws {
        let bytes = Array(UnsafeBufferPointer(start: esaylov_served_descriptor_set(), count: esaylov_served_descriptor_set_size()))
        try self.init(descriptorSet: bytes, services: services)
    }

    public init(descriptorSet: [UInt8], services: [String]) throws {
        var files: [String: [UInt8]] = [:]
        var dependencies: [String: [String]] = [:]
        var symbols: [String: String] = [:]
        var extensions: [String: [Int32: String]] = [:]
        for bytes in try Esaylov_Internal_DescriptorSetFiles(serializedBytes: descriptorSet).file {
            let file = try Esaylov_Internal_FileIndex(serializedBytes: bytes)
            files[file.name] = bytes
            dependencies[file.name] = file.dependency
            let prefix = file.package.isEmpty ? "" : file.package + "."
            func addExtensions(_ fields: [Esaylov_Internal_FieldIndex]) {
                for f in fields {
                    let extendee = f.extendee.hasPrefix(".") ? String(f.extendee.dropFirst()) : f.extendee
                    extensions[extendee, default: [:]][f.number] = file.name
                    symbols[prefix + f.name] = file.name
                }
            }
            func addMessage(_ m: Esaylov_Internal_MessageIndex, scope: String) {
                let name = scope + m.name
                symbols[name] = file.name
                for f in m.field { symbols[name + "." + f.name] = file.name }
                for e in m.enumType { symbols[name + "." + e.name] = file.name }
                for n in m.nestedType { addMessage(n, scope: name + ".") }
                addExtensions(m.extension)
            }
            for m in file.messageType { addMessage(m, scope: prefix) }
            for e in file.enumType { symbols[prefix + e.name] = file.name }
            for s in file.service {
                symbols[prefix + s.name] = file.name
                for m in s.method { symbols[prefix + s.name + "." + m.name] = file.name }
            }
            addExtensions(file.extension)
        }
        self.files = files
        self.dependencies = dependencies
        self.symbols = symbols
        self.extensions = extensions
        self.services = services.sorted()
    }

    /// One reflection answer, independent of the protocol version that carries it.
    enum Answer {
        case files([[UInt8]])
        case extensionNumbers(base: String, numbers: [Int32])
        case services([String])
        case notFound(String)
        case invalid(String)
    }

    /// `name` and everything it imports, transitively, `name` first.
    func fileWithDependencies(_ name: String) -> Answer {
        guard files[name] != nil else { return .notFound("file \(name) is not known to this server") }
        var order: [String] = []
        var seen: Set<String> = []
        var stack = [name]
        while let next = stack.popLast() {
            guard seen.insert(next).inserted, let deps = dependencies[next] else { continue }
            order.append(next)
            stack.append(contentsOf: deps.reversed())
        }
        return .files(order.compactMap { files[$0] })
    }

    func fileContaining(symbol: String) -> Answer {
        let symbol = symbol.hasPrefix(".") ? String(symbol.dropFirst()) : symbol
        guard let file = symbols[symbol] else { return .notFound("symbol \(symbol) is not known to this server") }
        return fileWithDependencies(file)
    }

    func fileContaining(extendee: String, number: Int32) -> Answer {
        guard let file = extensions[extendee]?[number] else {
            return .notFound("no extension \(number) of \(extendee) is known to this server")
        }
        return fileWithDependencies(file)
    }

    func extensionNumbers(of type: String) -> Answer {
        guard symbols[type] != nil else { return .notFound("type \(type) is not known to this server") }
        return .extensionNumbers(base: type, numbers: (extensions[type] ?? [:]).keys.sorted())
    }
}

/// `grpc.reflection.v1.ServerReflection`.
public struct ReflectionV1Service: Grpc_Reflection_V1_ServerReflectionService {
    let index: ReflectionIndex
    public init(index: ReflectionIndex) { self.index = index }

    public func serverReflectionInfo(
        requests: RequestStream<Grpc_Reflection_V1_ServerReflectionRequest>,
        responses: ResponseWriter<Grpc_Reflection_V1_ServerReflectionResponse>, context: ServerContext
    ) async throws {
        for try await request in requests {
            try Self.checkLengths(request)
            try await responses.write(answer(request))
        }
    }

    /// Names in reflection requests are short (hosts, files, symbols). A long one is refused
    /// and ends the stream: the answer echoes the request, so it would cost its size again.
    static let maxNameLength = 1024

    static func checkLengths(_ request: Grpc_Reflection_V1_ServerReflectionRequest) throws(RPCError) {
        var names = [("host", request.host)]
        switch request.messageRequest {
        case .fileByFilename(let name)?: names.append(("file_by_filename", name))
        case .fileContainingSymbol(let symbol)?: names.append(("file_containing_symbol", symbol))
        case .fileContainingExtension(let e)?: names.append(("file_containing_extension.containing_type", e.containingType))
        case .allExtensionNumbersOfType(let type)?: names.append(("all_extension_numbers_of_type", type))
        case .listServices(let s)?: names.append(("list_services", s))
        case nil: break
        }
        for (field, value) in names where value.utf8.count > maxNameLength {
            throw RPCError(
                code: .invalidArgument, message: "\(field) must be at most \(maxNameLength) bytes",
                details: [.fieldViolation(field: field, description: "at most \(maxNameLength) bytes", reason: "TOO_LONG")])
        }
    }

    /// The response to one reflection request.
    func answer(_ request: Grpc_Reflection_V1_ServerReflectionRequest) -> Grpc_Reflection_V1_ServerReflectionResponse {
        let answer: ReflectionIndex.Answer
        switch request.messageRequest {
        case .fileByFilename(let name)?: answer = index.fileWithDependencies(name)
        case .fileContainingSymbol(let symbol)?: answer = index.fileContaining(symbol: symbol)
        case .fileContainingExtension(let e)?: answer = index.fileContaining(extendee: e.containingType, number: e.extensionNumber)
        case .allExtensionNumbersOfType(let type)?: answer = index.extensionNumbers(of: type)
        case .listServices?: answer = .services(index.services)
        case nil: answer = .invalid("message_request is not set")
        }
        var response = Grpc_Reflection_V1_ServerReflectionResponse()
        response.validHost = request.host
        response.originalRequest = request
        switch answer {
        case .files(let files):
            var r = Grpc_Reflection_V1_FileDescriptorResponse()
            r.fileDescriptorProto = files
            response.messageResponse = .fileDescriptorResponse(r)
        case .extensionNumbers(let base, let numbers):
            var r = Grpc_Reflection_V1_ExtensionNumberResponse()
            r.baseTypeName = base
            r.extensionNumber = numbers
            response.messageResponse = .allExtensionNumbersResponse(r)
        case .services(let names):
            var r = Grpc_Reflection_V1_ListServiceResponse()
            r.service = names.map { var s = Grpc_Reflection_V1_ServiceResponse(); s.name = $0; return s }
            response.messageResponse = .listServicesResponse(r)
        case .notFound(let message), .invalid(let message):
            var r = Grpc_Reflection_V1_ErrorResponse()
            if case .notFound = answer { r.errorCode = Int32(RPCError.Code.notFound.rawValue) } else {
                r.errorCode = Int32(RPCError.Code.invalidArgument.rawValue)
            }
            r.errorMessage = message
            response.messageResponse = .errorResponse(r)
        }
        return response
    }
}

/// `grpc.reflection.v1alpha.ServerReflection`, for clients (grpcurl 1.8, grpcio-reflection)
/// that speak only the older version. Same messages, another package: the v1 answer is
/// re-read as v1alpha, which is wire-identical.
public struct ReflectionV1AlphaService: Grpc_Reflection_V1alpha_ServerReflectionService {
    let v1: ReflectionV1Service
    public init(index: ReflectionIndex) { v1 = ReflectionV1Service(index: index) }

    public func serverReflectionInfo(
        requests: RequestStream<Grpc_Reflection_V1alpha_ServerReflectionRequest>,
        responses: ResponseWriter<Grpc_Reflection_V1alpha_ServerReflectionResponse>, context: ServerContext
    ) async throws {
        for try await request in requests {
            let asV1 = try Grpc_Reflection_V1_ServerReflectionRequest(serializedBytes: request.serializedBytes())
            try ReflectionV1Service.checkLengths(asV1)
            let answer = v1.answer(asV1)
            try await responses.write(try Grpc_Reflection_V1alpha_ServerReflectionResponse(serializedBytes: answer.serializedBytes()))
        }
    }
}
