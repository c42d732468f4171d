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
    /// Estimate of what unpack will allocate, in bytes.
    private(set) var estimated = 0

    init(budget: Int) { self.budget = budget }

    // protobuf-c's own accounting: a scanned-member record per field occurrence while a
    // message is unpacked, an unknown-field record per field it does not know.
    private static let scannedMemberCost = 32
    private static let unknownFieldCost = 32

    mutating func walk(
        _ desc: UnsafePointer<ProtobufCMessageDescriptor>, _ bytes: UnsafeRawBufferPointer, depth: Int
    ) throws(ProtoDecodingError) {
        guard depth <= ProtoLimits.maxDepth else {
            throw .malformed(message: desc, "messages nested deeper than \(ProtoLimits.maxDepth) levels")
        }
        try charge(desc.pointee.sizeof_message, desc)
        var i = 0
        let n = bytes.count
        while i < n {
            guard let key = readVarint(bytes, &i) else { throw .malformed(message: desc, "truncated field tag") }
            let number = key >> 3
            let wireType = Int(key & 7)
            guard number >= 1, number <= 536_870_911 else {
                throw .malformed(message: desc, "invalid field number \(number)")
            }
            try charge(Self.scannedMemberCost, desc)
            let field = Self.field(desc, UInt32(number))
            let start = i
            switch wireType {
            case 0:
                guard readVarint(bytes, &i) != nil else { throw .malformed(message: desc, field, "truncated varint") }
            case 1:
                guard n - i >= 8 else { throw .malformed(message: desc, field, "truncated 64-bit value") }
                i += 8
            case 5:
                guard n - i >= 4 else { throw .malformed(message: desc, field, "truncated 32-bit value") }
                i += 4
            case 2:
                guard let length = readVarint(bytes, &i), length <= UInt64(n - i) else {
                    throw .malformed(message: desc, field, "length runs past the end of the message")
                }
                let body = UnsafeRawBufferPointer(rebasing: bytes[i..<(i + Int(length))])
                i += Int(length)
                if let field { try checkLengthDelimited(desc, field, body, depth: depth) }
            default:
                // Groups (3, 4) do not exist in proto3; 6 and 7 are not wire types.
                throw .malformed(message: desc, field, "unsupported wire type \(wireType)")
            }
            if let field {
                if field.pointee.label == PROTOBUF_C_LABEL_REPEATED, wireType != 2 {
                    try charge(Self.elementSize(field.pointee.type), desc)
                }
            } else {
                try charge(Self.unknownFieldCost + (i - start), desc)
            }
        }
    }

    private mutating func checkLengthDelimited(
        _ desc: UnsafePointer<ProtobufCMessageDescriptor>, _ field: UnsafePointer<ProtobufCFieldDescriptor>,
        _ body: UnsafeRawBufferPointer, depth: Int
    ) throws(ProtoDecodingError) {
        let repeated = field.pointee.label == PROTOBUF_C_LABEL_REPEATED
        switch field.pointee.type {
        case PROTOBUF_C_TYPE_STRING:
            try Self.checkText(desc, field, body)
            try charge(body.count + 1 + (repeated ? 8 : 0), desc)
        case PROTOBUF_C_TYPE_BYTES:
            try charge(body.count + (repeated ? 16 : 0), desc)
        case PROTOBUF_C_TYPE_MESSAGE:
            try charge(repeated ? 8 : 0, desc)
            let sub = field.pointee.descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
            try walk(sub, body, depth: depth + 1)
        default:
            // A packed run of scalars: protobuf-c allocates one array slot per element.
            let size = Self.elementSize(field.pointee.type)
            let count: Int
            switch field.pointee.type {
            case PROTOBUF_C_TYPE_FIXED32, PROTOBUF_C_TYPE_SFIXED32, PROTOBUF_C_TYPE_FLOAT: count = body.count / 4
            case PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_TYPE_SFIXED64, PROTOBUF_C_TYPE_DOUBLE: count = body.count / 8
            default: count = body.reduce(0) { $0 + ($1 & 0x80 == 0 ? 1 : 0) }
            }
            try charge(count * size, desc)
        }
    }

    private mutating func charge(_ bytes: Int, _ desc: UnsafePointer<ProtobufCMessageDescriptor>) throws(ProtoDecodingError) {
        estimated += bytes
        if estimated > budget {
            throw ProtoDecodingError(
                messageName: String(cString: desc.pointee.name), kind: .tooLarge,
                reason: "decoding would need more than \(budget) bytes of memory")
        }
    }

    private static func checkText(
        _ desc: UnsafePointer<ProtobufCMessageDescriptor>, _ field: UnsafePointer<ProtobufCFieldDescriptor>,
        _ body: UnsafeRawBufferPointer
    ) throws(ProtoDecodingError) {
        var ascii = true
        for b in body {
            if b == 0 { throw .malformed(message: desc, field, "string contains U+0000, which is not accepted") }
            if b >= 0x80 { ascii = false }
        }
        if !ascii, String(validating: body, as: UTF8.self) == nil {
            throw .malformed(message: desc, field, "string is not valid UTF-8")
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

extension ProtoDecodingError {
    static func malformed(message desc: UnsafePointer<ProtobufCMessageDescriptor>, _ reason: String) -> ProtoDecodingError {
        malformed(message: desc, nil, reason)
    }

    static func malformed(
        message desc: UnsafePointer<ProtobufCMessageDescriptor>, _ field: UnsafePointer<ProtobufCFieldDescriptor>?,
        _ reason: String
    ) -> ProtoDecodingError {
        let name = String(cString: desc.pointee.name)
        return ProtoDecodingError(
            messageName: name, fieldPath: field.map { "\(name).\(String(cString: $0.pointee.name))" },
            kind: .malformed, reason: reason)
    }
}
