internal import CProtobufC
#if canImport(Glibc)
internal import Glibc
#endif

/// C memory for one pack: protobuf-c reads the message tree we build here, then the whole
/// arena is released at once. Used by generated code only.
package final class ProtoArena {
    /// The first chunk, small: most messages need a few hundred bytes at most.
    private var first: UnsafeMutableRawPointer?
    private var chunks: [UnsafeMutableRawPointer] = []
    private var cursor: UnsafeMutableRawPointer?
    private var remaining = 0
    private static let firstChunkSize = 512
    private static let chunkSize = 4096

    package init() {}

    deinit {
        free(first)
        for chunk in chunks { free(chunk) }
    }

    /// Zeroed, suitably aligned memory that lives as long as the arena.
    package func allocate(byteCount: Int, alignment: Int = 16) -> UnsafeMutableRawPointer {
        let size = max(byteCount, 1)
        if let cursor {
            let pad = (alignment - Int(bitPattern: cursor) % alignment) % alignment
            if pad + size <= remaining {
                let p = cursor + pad
                self.cursor = p + size
                remaining -= pad + size
                return p
            }
        }
        if size + alignment > Self.chunkSize {
            let p = calloc(1, size)!  // large blocks stand alone
            chunks.append(p)
            return p
        }
        let chunkSize = first == nil && size <= Self.firstChunkSize ? Self.firstChunkSize : Self.chunkSize
        let chunk = calloc(1, chunkSize)!  // calloc's memory is aligned for any type
        if first == nil { first = chunk } else { chunks.append(chunk) }
        cursor = chunk + size
        remaining = chunkSize - size
        return chunk
    }

    package func allocate<T>(_ type: T.Type, count: Int = 1) -> UnsafeMutablePointer<T> {
        allocate(byteCount: MemoryLayout<T>.stride * count, alignment: MemoryLayout<T>.alignment)
            .bindMemory(to: T.self, capacity: count)
    }

    /// A NUL-terminated copy of `s`.
    package func cString(_ s: String) -> UnsafeMutablePointer<CChar> {
        var s = s
        return s.withUTF8 { utf8 in
            let p = allocate(CChar.self, count: utf8.count + 1)
            if utf8.count > 0 { UnsafeMutableRawPointer(p).copyMemory(from: utf8.baseAddress!, byteCount: utf8.count) }
            p[utf8.count] = 0
            return p
        }
    }

    /// A copy of `array` in arena memory (nil when empty).
    package func copy<T>(_ array: [T]) -> UnsafeMutablePointer<T>? {
        if array.isEmpty { return nil }
        let p = allocate(T.self, count: array.count)
        _ = UnsafeMutableBufferPointer(start: p, count: array.count).initialize(from: array)
        return p
    }

    /// An array of `count` slots filled by `element(i)`.
    package func array<T>(count: Int, _ element: (Int) -> T) -> UnsafeMutablePointer<T>? {
        if count == 0 { return nil }
        let p = allocate(T.self, count: count)
        for i in 0..<count { (p + i).initialize(to: element(i)) }
        return p
    }
}
