import CAllocator
import Glibc
import Testing

/// The page slots nghttp2's large blocks come from (CAllocator): what the idle-connection
/// memory budget rests on is that a slot costs only the pages written.
@Suite("Page slots")
struct PageSlotsTests {
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Which of the `pages` pages from `pointer` are resident.
    func resident(_ pointer: UnsafeMutableRawPointer, pages: Int) -> [Bool] {
        var vector = [UInt8](repeating: 0, count: pages)
        let rv = mincore(pointer, pages * page, &vector)
        precondition(rv == 0, "mincore failed")
        return vector.map { $0 & 1 == 1 }
    }

    @Test func blocksFromAPageToTheSlotSizeAreSlotsAndTheRestMalloc() throws {
        let slots = try #require(esaylov_page_slots_new(20 * 1024, 8))
        defer { esaylov_page_slots_free(slots) }
        let raw = UnsafeMutableRawPointer(slots)
        for size in [page, 16_394, 20 * 1024] {
            let p = try #require(esaylov_page_slots_malloc(size, raw))
            #expect(esaylov_page_slots_owns(slots, p) == 1, "\(size) bytes")
            #expect(Int(bitPattern: p) % page == 0)
            esaylov_page_slots_release(p, raw)
        }
        for size in [1, page - 1, 20 * 1024 + 1, 1 << 20] {
            let p = try #require(esaylov_page_slots_malloc(size, raw))
            #expect(esaylov_page_slots_owns(slots, p) == 0, "\(size) bytes")
            esaylov_page_slots_release(p, raw)
        }
        #expect(esaylov_page_slots_in_use(slots) == 0)
    }

    @Test func aFreshSlotCostsOnlyThePagesWritten() throws {
        let slots = try #require(esaylov_page_slots_new(5 * page, 4))
        defer { esaylov_page_slots_free(slots) }
        let p = try #require(esaylov_page_slots_calloc(1, 4 * page + 10, UnsafeMutableRawPointer(slots)))
        #expect(resident(p, pages: 5) == [false, false, false, false, false])
        p.storeBytes(of: 7, as: UInt8.self)
        #expect(resident(p, pages: 5) == [true, false, false, false, false])
        // Zero without a memset (reading maps the kernel's zero page, which mincore counts).
        #expect(UnsafeRawBufferPointer(start: p + 1, count: 4 * page + 9).allSatisfy { $0 == 0 })
        esaylov_page_slots_release(p, UnsafeMutableRawPointer(slots))
    }

    @Test func aFreedSlotIsReusedFirstAndCallocClearsIt() throws {
        let slots = try #require(esaylov_page_slots_new(2 * page, 4))
        defer { esaylov_page_slots_free(slots) }
        let raw = UnsafeMutableRawPointer(slots)
        let first = try #require(esaylov_page_slots_malloc(2 * page, raw))
        memset(first, 0xAB, 2 * page)
        esaylov_page_slots_release(first, raw)
        let again = try #require(esaylov_page_slots_calloc(2, page, raw))
        #expect(again == first)
        let bytes = UnsafeRawBufferPointer(start: again, count: 2 * page)
        #expect(bytes.allSatisfy { $0 == 0 })
        esaylov_page_slots_release(again, raw)
    }

    @Test func whenTheSlotsAreUsedUpMallocServes() throws {
        let slots = try #require(esaylov_page_slots_new(page, 2))
        defer { esaylov_page_slots_free(slots) }
        let raw = UnsafeMutableRawPointer(slots)
        let a = try #require(esaylov_page_slots_malloc(page, raw))
        let b = try #require(esaylov_page_slots_malloc(page, raw))
        let c = try #require(esaylov_page_slots_calloc(1, page, raw))
        #expect(esaylov_page_slots_owns(slots, a) == 1 && esaylov_page_slots_owns(slots, b) == 1)
        #expect(esaylov_page_slots_owns(slots, c) == 0)
        #expect(UnsafeRawBufferPointer(start: c, count: page).allSatisfy { $0 == 0 })
        #expect(esaylov_page_slots_in_use(slots) == 2)
        for p in [a, b, c] { esaylov_page_slots_release(p, raw) }
        #expect(esaylov_page_slots_in_use(slots) == 0)
    }

    @Test func reallocKeepsTheBytesWhereverTheBlockMoves() throws {
        let slots = try #require(esaylov_page_slots_new(2 * page, 4))
        defer { esaylov_page_slots_free(slots) }
        let raw = UnsafeMutableRawPointer(slots)
        // realloc(NULL) allocates, as nghttp2's buffers do on their first reserve.
        let p = try #require(esaylov_page_slots_realloc(nil, page, raw))
        #expect(esaylov_page_slots_owns(slots, p) == 1)
        for i in 0..<page { p.storeBytes(of: UInt8(i & 0xFF), toByteOffset: i, as: UInt8.self) }
        // Within the slot it stays; past it, it moves to malloc with its bytes.
        #expect(esaylov_page_slots_realloc(p, 2 * page, raw) == p)
        let moved = try #require(esaylov_page_slots_realloc(p, 3 * page, raw))
        #expect(esaylov_page_slots_owns(slots, moved) == 0)
        #expect((0..<page).allSatisfy { moved.load(fromByteOffset: $0, as: UInt8.self) == UInt8($0 & 0xFF) })
        #expect(esaylov_page_slots_in_use(slots) == 0)
        esaylov_page_slots_release(moved, raw)
    }

    @Test func theSharedSlotsAreReserved() throws {
        let shared = try #require(esaylov_page_slots_shared())
        let p = try #require(esaylov_page_slots_malloc(16_394, UnsafeMutableRawPointer(shared)))
        #expect(esaylov_page_slots_owns(shared, p) == 1)
        esaylov_page_slots_release(p, UnsafeMutableRawPointer(shared))
    }

    func fill(_ p: UnsafeMutableRawPointer, _ count: Int, seed: Int) {
        for i in 0..<count { p.storeBytes(of: UInt8((i + seed) & 0xFF), toByteOffset: i, as: UInt8.self) }
    }

    func holds(_ p: UnsafeMutableRawPointer, _ count: Int, seed: Int) -> Bool {
        (0..<count).allSatisfy { p.load(fromByteOffset: $0, as: UInt8.self) == UInt8(($0 + seed) & 0xFF) }
    }

    // Each test below runs on one thread throughout (no suspension): the cache is the thread's.

    @Test func aFreedSmallBlockServesTheNextOfItsClassOnItsThread() throws {
        let raw = UnsafeMutableRawPointer(try #require(esaylov_page_slots_new(20 * 1024, 4)))
        defer { esaylov_page_slots_free(OpaquePointer(raw)) }
        for size in [0, 1, 40, 48, 49, 100, 112, 113, 200, 240, 241, 496, 497, page - 1] {
            let p = try #require(esaylov_page_slots_malloc(size, raw))
            #expect(Int(bitPattern: p) % 16 == 0, "\(size) bytes: aligned")
            fill(p, size, seed: size)
            #expect(holds(p, size, seed: size))
            let before = esaylov_small_cached(size)
            esaylov_page_slots_release(p, raw)
            if size <= 496 {
                #expect(esaylov_small_cached(size) == min(before + 1, 1024), "\(size) bytes: cached")
                let again = try #require(esaylov_page_slots_malloc(size, raw))
                #expect(again == p, "\(size) bytes: the cached block")
                #expect(esaylov_small_cached(size) == before)
                esaylov_page_slots_release(again, raw)
            } else {
                #expect(esaylov_small_cached(size) == 0, "\(size) bytes: from malloc, not cached")
            }
        }
    }

    @Test func callocClearsACachedBlock() throws {
        let raw = UnsafeMutableRawPointer(try #require(esaylov_page_slots_new(20 * 1024, 4)))
        defer { esaylov_page_slots_free(OpaquePointer(raw)) }
        let p = try #require(esaylov_page_slots_malloc(100, raw))
        p.initializeMemory(as: UInt8.self, repeating: 0xFF, count: 100)
        esaylov_page_slots_release(p, raw)
        let q = try #require(esaylov_page_slots_calloc(4, 25, raw))
        #expect(q == p)
        #expect(UnsafeRawBufferPointer(start: q, count: 100).allSatisfy { $0 == 0 })
        esaylov_page_slots_release(q, raw)
    }

    @Test func reallocOfSmallAndLargeBlocksKeepsTheBytes() throws {
        let raw = UnsafeMutableRawPointer(try #require(esaylov_page_slots_new(20 * 1024, 4)))
        defer { esaylov_page_slots_free(OpaquePointer(raw)) }
        var p = try #require(esaylov_page_slots_realloc(nil, 10, raw))
        fill(p, 10, seed: 3)
        // Within its class it stays; past it, it moves with its bytes: to a larger class, then
        // to malloc above the classes, where it grows and shrinks in place.
        #expect(esaylov_page_slots_realloc(p, 48, raw) == p)
        p = try #require(esaylov_page_slots_realloc(p, 100, raw))
        #expect(holds(p, 10, seed: 3))
        fill(p, 100, seed: 5)
        p = try #require(esaylov_page_slots_realloc(p, 3000, raw))
        #expect(holds(p, 100, seed: 5))
        fill(p, 3000, seed: 7)
        p = try #require(esaylov_page_slots_realloc(p, 3 * page, raw))
        #expect(OpaquePointer(raw).map { esaylov_page_slots_owns($0, p) } == 0)
        #expect(holds(p, 3000, seed: 7))
        p = try #require(esaylov_page_slots_realloc(p, 20, raw))
        #expect(holds(p, 20, seed: 7))
        esaylov_page_slots_release(p, raw)
    }

    @Test func aThreadCachesABoundedNumberOfBlocks() throws {
        let raw = UnsafeMutableRawPointer(try #require(esaylov_page_slots_new(20 * 1024, 4)))
        defer { esaylov_page_slots_free(OpaquePointer(raw)) }
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<1100 { blocks.append(try #require(esaylov_page_slots_malloc(300, raw))) }
        for b in blocks { esaylov_page_slots_release(b, raw) }
        #expect(esaylov_small_cached(300) == 1024)
    }
}
