@testable import RPC
import Testing

@Suite("Message compression")
struct CompressionTests {
    @Test(arguments: [MessageEncoding.gzip, .deflate, .identity])
    func roundTrips(encoding: MessageEncoding) throws {
        for size in [0, 1, 100, 70_000] {
            let input = (0..<size).map { UInt8(truncatingIfNeeded: $0 * 7 / 3) }
            let packed = try encoding.compress(input)
            #expect(try encoding.decompress(packed, limit: size) == input)
        }
    }

    @Test func gzipOutputIsGzip() throws {
        let packed = try MessageEncoding.gzip.compress(Array("hello".utf8))
        #expect(packed.prefix(2) == [0x1F, 0x8B])
    }

    @Test func bombStopsAtTheLimit() throws {
        let bomb = try MessageEncoding.gzip.compress([UInt8](repeating: 0, count: 8 << 20))
        #expect(bomb.count < 20_000)
        #expect(throws: RPCError(code: .resourceExhausted, message: "decompressed request message exceeds the limit of 1048576 bytes")) {
            try MessageEncoding.gzip.decompress(bomb, limit: 1 << 20)
        }
    }

    @Test func truncatedAndCorruptInputAreInternal() throws {
        let packed = try MessageEncoding.deflate.compress([UInt8](repeating: 3, count: 1000))
        for cut in [1, packed.count / 2, packed.count - 1] {
            do {
                _ = try MessageEncoding.deflate.decompress(Array(packed.prefix(cut)), limit: 10_000)
                Issue.record("truncated input accepted at \(cut)")
            } catch {
                #expect(error.code == .internal)
            }
        }
        #expect(throws: RPCError.self) { try MessageEncoding.gzip.decompress([1, 2, 3, 4], limit: 100) }
        #expect(throws: RPCError.self) { try MessageEncoding.deflate.decompress(packed + [9], limit: 10_000) }
    }

    @Test func negotiation() {
        #expect(MessageEncoding(header: " GZIP ") == .gzip)
        #expect(MessageEncoding(header: "snappy") == nil)
        #expect(MessageEncoding.preferred(fromAccept: "identity, deflate") == .deflate)
        #expect(MessageEncoding.preferred(fromAccept: "deflate,gzip") == .gzip)
        #expect(MessageEncoding.preferred(fromAccept: "identity") == nil)
        #expect(MessageEncoding.preferred(fromAccept: nil) == nil)
    }
}

@Suite("zlib streams")
struct ZStreamTests {
    /// zlib checks on every call that its state still points at the `z_stream` it was
    /// initialised with: a stream that moved would fail with Z_STREAM_ERROR ("corrupt"). A
    /// message that needs hundreds of inflate calls (output chunks of 1 KiB) keeps it honest.
    @Test(arguments: [MessageEncoding.gzip, .deflate])
    func manyCallsOnOneStream(encoding: MessageEncoding) throws {
        var input: [UInt8] = []
        var x: UInt32 = 12345
        for _ in 0..<600_000 {
            x = x &* 1_103_515_245 &+ 12345
            input.append(UInt8(truncatingIfNeeded: x >> 24) & 0x0F)
        }
        let packed = try encoding.compress(input)
        #expect(try encoding.decompress(packed, limit: input.count) == input)
    }
}
