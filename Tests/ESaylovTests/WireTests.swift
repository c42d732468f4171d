import NIOCore
@testable import RPC
import Testing

@Suite("gRPC framing")
struct FramingTests {
    func frames(_ messages: [[UInt8]]) -> [UInt8] {
        var buffer = ByteBufferAllocator().buffer(capacity: 0)
        for m in messages { MessageDeframer.frame(m, into: &buffer) }
        return buffer.readBytes(length: buffer.readableBytes)!
    }

    @Test func prefixIsFlagAndBigEndianLength() {
        #expect(frames([[7, 8, 9]]) == [0, 0, 0, 0, 3, 7, 8, 9])
        #expect(frames([[]]) == [0, 0, 0, 0, 0])
    }

    @Test func messagesSplitAtEveryByteReassemble() throws {
        let messages: [[UInt8]] = [[], [1], Array(repeating: 0xAB, count: 300), [2, 3]]
        let wire = frames(messages)
        for split in 0...wire.count {
            var d = MessageDeframer(maxMessageSize: 1024)
            var out: [[UInt8]] = []
            for part in [wire[..<split], wire[split...]] {
                Array(part).withUnsafeBytes { d.append($0) }
                while let m = try d.next() { out.append(m.bytes) }
            }
            #expect(out == messages)
            #expect(!d.hasPartialMessage)
        }
    }

    @Test func aMessageArrivingWholeIsTakenAsItCameAndWhatFollowsIsBuffered() throws {
        var d = MessageDeframer(maxMessageSize: 16)
        let first = [UInt8](frames([[1, 2, 3]]))
        first.withUnsafeBytes { d.append($0) }
        #expect(d.hasCompleteMessage && !d.hasPartialMessage)
        // A partial second message behind the whole first one.
        let second = frames([[4, 5, 6, 7]])
        Array(second.prefix(6)).withUnsafeBytes { d.append($0) }
        #expect(try d.next()?.bytes == [1, 2, 3])
        #expect(d.hasPartialMessage)
        #expect(try d.next() == nil)
        Array(second.dropFirst(6)).withUnsafeBytes { d.append($0) }
        #expect(try d.next()?.bytes == [4, 5, 6, 7])
        #expect(!d.hasCompleteMessage && !d.hasPartialMessage)
        // Whole but compressed, empty, too large or with a bad flag: judged as always.
        var c = MessageDeframer(maxMessageSize: 16)
        [UInt8]([1, 0, 0, 0, 1, 9]).withUnsafeBytes { c.append($0) }
        #expect(try c.next() == .init(compressed: true, bytes: [9]))
        frames([[]]).withUnsafeBytes { c.append($0) }
        #expect(try c.next() == .init(compressed: false, bytes: []))
        frames([Array(repeating: 0, count: 17)]).withUnsafeBytes { c.append($0) }
        #expect(throws: RPCError.self) { try c.next() }
        var f = MessageDeframer(maxMessageSize: 16)
        [UInt8]([2, 0, 0, 0, 1, 9]).withUnsafeBytes { f.append($0) }
        #expect(throws: RPCError.self) { try f.next() }
    }

    @Test func oversizedMessageRejectedFromPrefixAlone() {
        var d = MessageDeframer(maxMessageSize: 100)
        ([0, 0, 0, 0, 101] as [UInt8]).withUnsafeBytes { d.append($0) }  // no body yet
        #expect(throws: RPCError(code: .resourceExhausted, message: "request message of 101 bytes exceeds the limit of 100 bytes")) {
            try d.next()
        }
    }

    @Test func compressedFlagIsReported() throws {
        var d = MessageDeframer(maxMessageSize: 100)
        ([1, 0, 0, 0, 1, 42] as [UInt8]).withUnsafeBytes { d.append($0) }
        #expect(try d.next() == MessageDeframer.Frame(compressed: true, bytes: [42]))
    }

    @Test func invalidFlagIsInternal() {
        var e = MessageDeframer(maxMessageSize: 100)
        ([9, 0, 0, 0, 0] as [UInt8]).withUnsafeBytes { e.append($0) }
        do {
            _ = try e.next()
            Issue.record("flag 9 accepted")
        } catch {
            #expect(error.code == .internal)
        }
    }

    @Test func partialMessageIsVisible() throws {
        var d = MessageDeframer(maxMessageSize: 100)
        ([0, 0, 0, 0, 4, 1, 2] as [UInt8]).withUnsafeBytes { d.append($0) }
        #expect(try d.next() == nil)
        #expect(d.hasPartialMessage)
    }
}

@Suite("grpc-message and grpc-timeout")
struct HeaderEncodingTests {
    @Test func percentEncodingFollowsTheSpec() {
        #expect(GRPCWire.percentEncode("plain text") == "plain text")
        #expect(GRPCWire.percentEncode("100%") == "100%25")
        #expect(GRPCWire.percentEncode("a\tb\r\n") == "a%09b%0D%0A")
        #expect(GRPCWire.percentEncode("☺") == "%E2%98%BA")
        #expect(GRPCWire.percentEncode("\u{7F}~") == "%7F~")
    }

    @Test func percentRoundTripsAnyUnicode() {
        let text = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
        #expect(GRPCWire.percentDecode(GRPCWire.percentEncode(text)) == text)
        #expect(GRPCWire.percentDecode("%zz%4") == "%zz%4")
    }

    @Test(arguments: [
        ("1H", Duration.seconds(3600)), ("2M", .seconds(120)), ("3S", .seconds(3)),
        ("40m", .milliseconds(40)), ("5u", .microseconds(5)), ("99999999n", .nanoseconds(99_999_999)),
        ("0S", .zero),
    ])
    func timeoutUnits(text: String, expected: Duration) {
        #expect(GRPCWire.parseTimeout(text) == expected)
    }

    @Test(arguments: ["", "S", "1", "1s", "123456789S", "-1S", "1.5S", " 1S", "1SS"])
    func malformedTimeouts(text: String) {
        #expect(GRPCWire.parseTimeout(text) == nil)
    }
}

@Suite("Binary metadata")
struct Base64Tests {
    @Test func roundTripsEveryLength() {
        var rng = SystemRandomNumberGenerator()
        for n in 0..<64 {
            let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(Base64.decode(Base64.encode(bytes)) == bytes)
        }
    }

    @Test func knownVectors() {
        #expect(Base64.encode([0xAB, 0xAB, 0xAB]) == "q6ur")
        #expect(Base64.encode(Array("fo".utf8)) == "Zm8")  // unpadded on send
        #expect(Base64.decode("Zm8=") == Array("fo".utf8))  // padded accepted
        #expect(Base64.decode("Zm8") == Array("fo".utf8))
        #expect(Base64.decode("***") == nil)
        #expect(Base64.decode("Zm=8") == nil)
        #expect(Base64.decode("Z") == nil)
    }
}

@Suite("Request header names and response frame queues")
struct HeaderNameAndFrameQueueTests {
    func name(_ text: String) -> RequestHeaderName {
        Array(text.utf8).withUnsafeBytes { RequestHeaderName($0) }
    }

    @Test func knownNamesAreToldFromTheirBytes() {
        #expect(name(":path") == .path)
        #expect(name(":method") == .method)
        #expect(name("content-type") == .contentType)
        #expect(name("grpc-timeout") == .timeout)
        #expect(name("grpc-encoding") == .encoding)
        #expect(name("grpc-accept-encoding") == .acceptEncoding)
        for ignored in [":scheme", ":authority", "te", "user-agent", "content-length"] { #expect(name(ignored) == .ignored, "\(ignored)") }
    }

    @Test func reservedNamesAreNotMetadataAndLookalikesAre() {
        for reserved in [":protocol", ":x", ":pats", "grpc-", "grpc-status", "grpc-timeouts", "grpc-trace-bin", "grpc-previous-rpc-attempts"] {
            #expect(name(reserved) == .reserved, "\(reserved)")
        }
        // Same length as a known name, or a prefix of one, but not it.
        for custom in ["ta", "content-typo", "grpc", "grpcx-timeout", "x-request-id", "authorization", "user-agenT", "content-lengtx"] {
            #expect(name(custom) == .custom, "\(custom)")
        }
    }

    @Test func bytesCompareWithStringsExactly() {
        func bytes(_ s: String, equal t: String) -> Bool { Array(s.utf8).withUnsafeBytes { $0.equals(t) } }
        #expect(bytes("", equal: ""))
        #expect(bytes("application/grpc", equal: GRPCWire.contentType))
        #expect(!bytes("application/grpc+proto", equal: GRPCWire.contentType))
        #expect(!bytes("application/grpC", equal: GRPCWire.contentType))
        #expect(bytes("ünïcödé", equal: "ünïcödé"))
        #expect(!bytes("abc", equal: "abcd"))
    }

    @Test func bytesCompareWithLiteralsExactly() {
        func bytes(_ s: String, match t: StaticString) -> Bool { Array(s.utf8).withUnsafeBytes { $0.matches(t) } }
        #expect(bytes("", match: ""))
        #expect(bytes("application/grpc", match: GRPCWire.contentTypeLiteral))
        #expect(GRPCWire.contentType == GRPCWire.contentTypeLiteral.description)
        #expect(!bytes("application/grpc+proto", match: GRPCWire.contentTypeLiteral))
        #expect(!bytes("application/grpC", match: GRPCWire.contentTypeLiteral))
        #expect(bytes("ünïcödé", match: "ünïcödé"))
        #expect(bytes("t", match: "t"))
        #expect(!bytes("t", match: "e"))
        #expect(!bytes("abc", match: "abcd"))
        #expect(!bytes("abcd", match: "abc"))
    }

    @Test func framesLeaveInOrderWhetherOneOrMany() {
        func frame(_ byte: UInt8) -> ByteBuffer { ByteBuffer(bytes: [byte]) }
        var q = FrameQueue<ByteBuffer>()
        #expect(q.isEmpty && q.front == nil)
        q.append(frame(1))
        #expect(q.front == frame(1))
        q.removeFirst()
        #expect(q.isEmpty)
        for b in UInt8(1)...9 { q.append(frame(b)) }
        q.replaceFirst(with: frame(10))
        var out: [UInt8] = []
        while let f = q.front {
            out.append(f.getInteger(at: f.readerIndex)!)
            q.removeFirst()
            if out.count == 3 { q.append(frame(11)) }
        }
        #expect(out == [10, 2, 3, 4, 5, 6, 7, 8, 9, 11])
        q.append(frame(1))
        q.append(frame(2))
        q.removeAll()
        #expect(q.isEmpty && q.front == nil)
    }

    @Test func aResponseChunkReadInPiecesOfAnySizeIsTheFramedMessage() {
        let message = (0..<300).map { UInt8(truncatingIfNeeded: $0 * 7) }
        for compressed in [false, true] {
            var expected = ByteBufferAllocator().buffer(capacity: 0)
            MessageDeframer.frame(message, compressed: compressed, into: &expected)
            let wire = expected.readBytes(length: expected.readableBytes)!
            for piece in [1, 2, 3, 4, 5, 6, 7, 64, 305, 4096] {
                var chunk = OutboundChunk(message: message, compressed: compressed)
                var out: [UInt8] = []
                var scratch = [UInt8](repeating: 0, count: piece)
                while chunk.remaining > 0 {
                    let n = scratch.withUnsafeMutableBytes { chunk.copy(into: $0) }
                    #expect(n > 0 && n <= piece)
                    out += scratch[..<n]
                }
                #expect(out == wire, "piece \(piece)")
            }
        }
        var raw = OutboundChunk(raw: [1, 2, 3])
        var scratch = [UInt8](repeating: 0, count: 2)
        #expect(scratch.withUnsafeMutableBytes { raw.copy(into: $0) } == 2 && scratch == [1, 2])
        #expect(scratch.withUnsafeMutableBytes { raw.copy(into: $0) } == 1 && scratch[0] == 3)
        #expect(raw.remaining == 0)
        var empty = OutboundChunk(message: [], compressed: false)
        var five = [UInt8](repeating: 9, count: 8)
        #expect(five.withUnsafeMutableBytes { empty.copy(into: $0) } == 5 && five.prefix(5) == [0, 0, 0, 0, 0])
    }
}

@Suite("A connection's stream table")
struct StreamTableTests {
    /// Checks the table against a dictionary after each step.
    func check(_ table: StreamTable<Int>, _ model: [Int32: Int], _ probe: ClosedRange<Int32>) {
        #expect(table.count == model.count)
        #expect(table.isEmpty == model.isEmpty)
        for id in probe { #expect(table[id] == model[id], "stream \(id)") }
        #expect(Dictionary(uniqueKeysWithValues: table.all.map { ($0.id, $0.value) }) == model)
    }

    @Test func findsWhatItHoldsThroughInsertsRemovalsAndGrowth() {
        var table = StreamTable<Int>()
        var model: [Int32: Int] = [:]
        check(table, model, 1...40)
        #expect(table.removeValue(forKey: 7) == nil)
        // Client ids: odd, rising, 200 open at once (the table grows several times).
        for id in stride(from: Int32(1), through: 399, by: 2) {
            table[id] = Int(id) * 10
            model[id] = Int(id) * 10
        }
        check(table, model, 1...420)
        table[5] = 55
        model[5] = 55
        // Removals from the middle, the ends, and every third one.
        for id in stride(from: Int32(1), through: 399, by: 6) {
            #expect(table.removeValue(forKey: id) == model.removeValue(forKey: id))
        }
        check(table, model, 1...420)
        let held = table.removeAll()
        #expect(Dictionary(uniqueKeysWithValues: held.map { ($0.id, $0.value) }) == model)
        check(table, [:], 1...420)
    }

    @Test func collidingIdsStayFoundAfterRemovalsAroundTheEnd() {
        // Ids that share home slots (ids 2k-1 and 2k share id >> 1; 16 slots apart wraps
        // around) and runs that wrap past the last slot: a removal's backward shift must keep
        // every other entry reachable from its home.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var table = StreamTable<Int>()
            var model: [Int32: Int] = [:]
            // At most 8 entries: the table keeps its first 16 slots, where ids up to 64 collide
            // and wrap.
            for _ in 0..<60 {
                let id = Int32.random(in: 1...64, using: &generator)
                if model[id] != nil, Bool.random(using: &generator) || model.count >= 8 {
                    #expect(table.removeValue(forKey: id) == model.removeValue(forKey: id))
                } else if model[id] != nil || model.count < 8 {
                    let value = Int.random(in: 0...1000, using: &generator)
                    table[id] = value
                    model[id] = value
                }
            }
            check(table, model, 1...70)
            for id in model.keys.shuffled(using: &generator) {
                table[id] = nil
                model[id] = nil
                for left in model.keys where table[left] != model[left] { Issue.record("stream \(left) lost after removing \(id)") }
            }
            #expect(table.isEmpty)
        }
    }
}
