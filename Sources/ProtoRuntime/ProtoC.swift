internal import CProtobufC

/// The bridge between generated Swift types and protobuf-c. Pointers are raw so that no C
/// type crosses a module boundary; generated code binds them to its own struct types.
package enum ProtoC {
    /// Checks `bytes` with the wire walker, unpacks them with protobuf-c under a memory
    /// budget, hands the message tree to `body`, then frees it.
    package static func unpack<R>(
        descriptor: UnsafeRawPointer, messageName: String, bytes: UnsafeRawBufferPointer,
        _ body: (UnsafeRawPointer) -> R
    ) throws(ProtoDecodingError) -> R {
        let desc = descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
        let budget = ProtoLimits.decodeBudget(wireSize: bytes.count)
        var walker = WireWalker(budget: budget, root: messageName)
        try walker.walk(desc, bytes, depth: 1)
        // protobuf-c wants a non-NULL pointer even for zero bytes.
        var empty: UInt8 = 0
        let (result, exceeded) = withUnsafePointer(to: &empty) { emptyPtr in
            ProtoC.withBudgetAllocator(limit: budget) { allocator -> R? in
                let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? emptyPtr
                guard let message = protobuf_c_message_unpack(desc, allocator, bytes.count, base) else { return nil }
                defer { protobuf_c_message_free_unpacked(message, allocator) }
                return body(UnsafeRawPointer(message))
            }
        }
        if let result { return result }
        if exceeded {
            throw ProtoDecodingError(messageName: messageName, kind: .tooLarge, reason: "decoding needs more memory than allowed")
        }
        throw ProtoDecodingError(messageName: messageName, reason: "not a valid message")
    }

    /// Messages up to this size are packed into the scratch arena and copied out.
    static let packThroughArena = 4096

    /// Runs `build` to make a C message tree in the thread's scratch arena and packs it.
    package static func pack(_ build: (ProtoArena) -> UnsafeMutableRawPointer) -> [UInt8] {
        ProtoArena.withScratch { arena in
            let message = build(arena).assumingMemoryBound(to: ProtobufCMessage.self)
            let size = protobuf_c_message_get_packed_size(message)
            if size == 0 { return [] }
            // A small message is packed in the arena and copied into its array: an array made
            // from a buffer is allocated by code specialized here, where
            // `init(unsafeUninitializedCapacity:)` runs the standard library's generic
            // allocation, which looks the storage's type metadata up in the runtime's cache on
            // every call (a third of the cost of a small response's array, measured). Large
            // messages are packed in place: one copy of them costs more than that lookup.
            if size <= packThroughArena {
                let scratch = arena.allocate(byteCount: size, alignment: 1).assumingMemoryBound(to: UInt8.self)
                let packed = protobuf_c_message_pack(message, scratch)
                return Array(UnsafeBufferPointer(start: scratch, count: packed))
            }
            return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
                count = protobuf_c_message_pack(message, buffer.baseAddress!)
            }
        }
    }

    /// Initialises the C struct at `p` with its descriptor's defaults.
    package static func initMessage(_ p: UnsafeMutableRawPointer, descriptor: UnsafeRawPointer) {
        protobuf_c_message_init(descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self), p)
    }

    /// Reads a protobuf-c string (NUL-terminated, possibly NULL).
    @inline(__always)
    package static func string(_ p: UnsafePointer<CChar>?) -> String {
        guard let p else { return "" }
        return String(cString: p)
    }

    /// Reads a protobuf-c byte array.
    @inline(__always)
    package static func bytes(_ data: UnsafePointer<UInt8>?, _ count: Int) -> [UInt8] {
        guard let data, count > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: count))
    }

    /// Reads a protobuf-c repeated scalar field.
    @inline(__always)
    package static func array<T>(_ p: UnsafePointer<T>?, _ count: Int) -> [T] {
        guard let p, count > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: p, count: count))
    }
}
