internal import CProtobufC
#if canImport(Glibc)
internal import Glibc
#endif

/// C memory for one pack: protobuf-c reads the message tree we build here, then the whole
/// arena is released at once. Used by generated code only.
///
/// Each thread keeps one arena between packs (`withScratch`): its first chunk is reused, so
/// a small message costs no allocation beyond its packed bytes. What a pack used is zeroed
/// again and any further chunks are freed when it ends, so an idle thread holds one first
/// chunk at most.
package final class ProtoArena {
    /// The first chunk, small: most messages need a few hundred bytes at most.
    private var first: UnsafeMutableRawPointer?
    private var firstSize = 0
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

    /// Frees every chunk but the first and zeroes what was used of the first: as new.
    package func reset() {
        if !chunks.isEmpty {
            for chunk in chunks { free(chunk) }
            chunks.removeAll(keepingCapacity: true)
        }
        guard let first else { return }
        // While the first chunk is current, the cursor marks how much of it was used; once a
        // later chunk took over, all of it may have been.
        let used = cursor.map { $0 >= first && $0 <= first + firstSize ? $0 - first : firstSize } ?? 0
        if used > 0 { memset(first, 0, used) }
        cursor = first
        remaining = firstSize
    }

    /// Runs `body` with this thread's arena, reset afterwards for the next pack; a pack
    /// inside `body` (the thread's arena is taken) gets one of its own.
    package static func withScratch<R>(_ body: (ProtoArena) -> R) -> R {
        let arena: ProtoArena
        if let kept = pthread_getspecific(scratchKey) {
            pthread_setspecific(scratchKey, nil)
            arena = Unmanaged<ProtoArena>.fromOpaque(kept).takeRetainedValue()
        } else {
            arena = ProtoArena()
        }
        // The message tree lives in the arena's memory: the arena must outlive every read of
        // it, which Swift cannot see.
        let result = withExtendedLifetime(arena) { body(arena) }
        arena.reset()
        if pthread_getspecific(scratchKey) == nil {
            pthread_setspecific(scratchKey, Unmanaged.passRetained(arena).toOpaque())
        }
        return result
    }

    /// The key of each thread's kept arena, released when the thread exits.
    private static let scratchKey: pthread_key_t = {
        var key = pthread_key_t()
        let made = pthread_key_create(&key) { kept in
            if let kept { Unmanaged<ProtoArena>.fromOpaque(kept).release() }
        }
        precondition(made == 0, "pthread_key_create failed")
        return key
    }()

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
        if first == nil {
            first = chunk
            firstSize = chunkSize
        } else {
            chunks.append(chunk)
        }
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
