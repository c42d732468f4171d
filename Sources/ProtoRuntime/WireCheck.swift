internal import CProtobufC

/// Limits applied to every message before protobuf-c unpacks it.
///
/// protobuf-c's unpack recurses without a depth limit (a 74 KB message nested 20,000 deep
/// overflows an 8 MiB stack), carries strings as NUL-terminated `char *` (an embedded NUL
/// truncates silently; nothing checks UTF-8), and can turn 4 MiB of wire bytes into
/// hundreds of MiB of heap. The walker below reads the wire bytes once, guided by the same
/// descriptors protobuf-c will use, and refuses what would hurt.
public enum ProtoLimits {
    /// Deepest nesting of messages accepted.
    public static let maxDepth = 100
    /// Heap one decode may use: 16x the wire size, at least 64 KiB, at most 64 MiB.
    public static func decodeBudget(wireSize: Int) -> Int {
        min(max(wireSize.multipliedReportingOverflow(by: 16).partialValue, 64 << 10), 64 << 20)
    }
}

/// Walks protobuf wire bytes against a protobuf-c message descriptor.
struct WireWalker {
    let budget: Int
    /// The message being decoded, named in every error.
    let root: String
    /// Estimate of what unpack will allocate, in bytes.
    private(set) var estimated = 0

    init(budget: Int, root: String) {
        self.budget = budget
        self.root = root
    }

    // protobuf-c's own accounting: a scanned-member record per field occurrence while a
    // message is unpacked, an unknown-field record per field it does not know.
    private static let scannedMemberCost = 32
    private static let unknownFieldCost = 32

    /// `path` is the dotted field path from the root to this message ("" at the root).
    mutating func walk(
        _ desc: UnsafePointer<ProtobufCMessageDescriptor>, _ bytes: UnsafeRawBufferPointer, depth: Int, path: String = ""
    ) throws(ProtoDecodingError) {
        guard depth <= ProtoLimits.maxDepth else {
            throw malformed(path, "messages nested deeper than \(ProtoLimits.maxDepth) levels")
        }
        try charge(desc.pointee.sizeof_message)
        // Singular message fields met so far in this message (made on the first one).
        var singularMessages: [UInt32] = []
        var i = 0
        let n = bytes.count
        while i < n {
            guard let key = readVarint(bytes, &i) else { throw malformed(path, "truncated field tag") }
            let number = key >> 3
            let wireType = Int(key & 7)
            guard number >= 1, number <= 536_870_911 else {
                throw malformed(path, "invalid field number \(number)")
            }
            try charge(Self.scannedMemberCost)
            let field = Self.field(desc, UInt32(number))
            let fieldPath = field.map { path.isEmpty ? String(cString: $0.pointee.name) : path + "." + String(cString: $0.pointee.name) } ?? path
            let start = i
            switch wireType {
            case 0:
                guard readVarint(bytes, &i) != nil else { throw malformed(fieldPath, "truncated varint") }
            case 1:
                guard n - i >= 8 else { throw malformed(fieldPath, "truncated 64-bit value") }
                i += 8
            case 5:
                guard n - i >= 4 else { throw malformed(fieldPath, "truncated 32-bit value") }
                i += 4
            case 2:
                guard let length = readVarint(bytes, &i), length <= UInt64(n - i) else {
                    throw malformed(fieldPath, "length runs past the end of the message")
                }
                let body = UnsafeRawBufferPointer(rebasing: bytes[i..<(i + Int(length))])
                i += Int(length)
                if let field {
                    // protobuf-c merges repeated occurrences of a singular sub-message, each
                    // merge copying what came before: quadratic work for a client's linear bytes.
                    // No encoder writes one twice, so a second occurrence is refused.
                    if field.pointee.type == PROTOBUF_C_TYPE_MESSAGE, field.pointee.label != PROTOBUF_C_LABEL_REPEATED {
                        if singularMessages.contains(field.pointee.id) {
                            throw malformed(fieldPath, "a singular message field appears more than once")
                        }
                        singularMessages.append(field.pointee.id)
                    }
                    try checkLengthDelimited(field, body, depth: depth, path: fieldPath)
                }
            default:
                // Groups (3, 4) do not exist in proto3; 6 and 7 are not wire types.
                throw malformed(fieldPath, "unsupported wire type \(wireType)")
            }
            if let field {
                if field.pointee.label == PROTOBUF_C_LABEL_REPEATED, wireType != 2 {
                    try charge(Self.elementSize(field.pointee.type))
                }
            } else {
                try charge(Self.unknownFieldCost + (i - start))
            }
        }
    }

    private mutating func checkLengthDelimited(
        _ field: UnsafePointer<ProtobufCFieldDescriptor>, _ body: UnsafeRawBufferPointer, depth: Int, path: String
    ) throws(ProtoDecodingError) {
        let repeated = field.pointee.label == PROTOBUF_C_LABEL_REPEATED
        switch field.pointee.type {
        case PROTOBUF_C_TYPE_STRING:
            try checkText(body, path: path)
            try charge(body.count + 1 + (repeated ? 8 : 0))
        case PROTOBUF_C_TYPE_BYTES:
            try charge(body.count + (repeated ? 16 : 0))
        case PROTOBUF_C_TYPE_MESSAGE:
            try charge(repeated ? 8 : 0)
            let sub = field.pointee.descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
            try walk(sub, body, depth: depth + 1, path: path)
        default:
            // A packed run of scalars: protobuf-c allocates one array slot per element.
            let size = Self.elementSize(field.pointee.type)
            let count: Int
            switch field.pointee.type {
            case PROTOBUF_C_TYPE_FIXED32, PROTOBUF_C_TYPE_SFIXED32, PROTOBUF_C_TYPE_FLOAT: count = body.count / 4
            case PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_TYPE_SFIXED64, PROTOBUF_C_TYPE_DOUBLE: count = body.count / 8
            default: count = body.reduce(0) { $0 + ($1 & 0x80 == 0 ? 1 : 0) }
            }
            try charge(count * size)
        }
    }

    private mutating func charge(_ bytes: Int) throws(ProtoDecodingError) {
        estimated += bytes
        if estimated > budget {
            throw ProtoDecodingError(
                messageName: root, kind: .tooLarge, reason: "decoding would need more than \(budget) bytes of memory")
        }
    }

    private func malformed(_ path: String, _ reason: String) -> ProtoDecodingError {
        ProtoDecodingError(messageName: root, fieldPath: path.isEmpty ? nil : path, kind: .malformed, reason: reason)
    }

    private func checkText(_ body: UnsafeRawBufferPointer, path: String) throws(ProtoDecodingError) {
        var ascii = true
        for b in body {
            if b == 0 { throw malformed(path, "string contains U+0000, which is not accepted") }
            if b >= 0x80 { ascii = false }
        }
        if !ascii, String(validating: body, as: UTF8.self) == nil {
            throw malformed(path, "string is not valid UTF-8")
        }
    }

    private static func elementSize(_ type: ProtobufCType) -> Int {
        switch type {
        case PROTOBUF_C_TYPE_INT64, PROTOBUF_C_TYPE_SINT64, PROTOBUF_C_TYPE_SFIXED64, PROTOBUF_C_TYPE_UINT64,
            PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_TYPE_DOUBLE, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_TYPE_MESSAGE:
            8
        case PROTOBUF_C_TYPE_BYTES: 16
        default: 4
        }
    }

    /// protoc-c emits a message's fields sorted by number.
    private static func field(_ desc: UnsafePointer<ProtobufCMessageDescriptor>, _ number: UInt32) -> UnsafePointer<ProtobufCFieldDescriptor>? {
        guard let fields = desc.pointee.fields else { return nil }
        var lo = 0
        var hi = Int(desc.pointee.n_fields) - 1
        while lo <= hi {
            let mid = (lo + hi) / 2
            let id = fields[mid].id
            if id == number { return fields + mid }
            if id < number { lo = mid + 1 } else { hi = mid - 1 }
        }
        return nil
    }

    private func readVarint(_ bytes: UnsafeRawBufferPointer, _ i: inout Int) -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while i < bytes.count, shift < 64 {
            let b = bytes[i]
            i += 1
            value |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }
}

