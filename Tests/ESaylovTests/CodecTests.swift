import ESaylovAPI
import FixtureAPI
import ProtoRuntime
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The generated Swift types, packed and unpacked by protobuf-c, agree with protoc's own
/// encoder byte for byte, in both directions.
@Suite("Codec against golden bytes")
struct CodecTests {
    static func extremeScalars() -> Esaylov_Fixture_Scalars {
        var s = Esaylov_Fixture_Scalars()
        s.i32 = .min
        s.i64 = .min
        s.u32 = .max
        s.u64 = .max
        s.s32 = .min
        s.s64 = .min
        s.f32 = .max
        s.f64 = .max
        s.sf32 = .min
        s.sf64 = .min
        s.fl = -1.5
        s.db = 1e308
        s.flag = true
        s.text = "Salom, dunyo! Салом ☺ 😈"
        s.blob = [0, 255, 1]
        s.colour = .negative
        return s
    }

    static func maxScalars() -> Esaylov_Fixture_Scalars {
        var s = Esaylov_Fixture_Scalars()
        s.i32 = .max
        s.i64 = .max
        s.s32 = .max
        s.s64 = .max
        s.sf32 = .max
        s.sf64 = .max
        s.fl = .greatestFiniteMagnitude
        s.db = -2.2250738585072014e-308
        s.colour = .green
        return s
    }

    static func everything() -> Esaylov_Fixture_Everything {
        var e = Esaylov_Fixture_Everything()
        var inner = Esaylov_Fixture_Scalars()
        inner.i32 = -1
        inner.text = "inner"
        e.scalars = inner
        e.packedI32 = [1, -1, 300, .max]
        e.packedS64 = [.min, 0, .max]
        e.unpackedU32 = [0, 1, .max]
        e.packedDb = [0.5, -0.25]
        e.packedFlags = [true, false, true]
        e.texts = ["", "a", "ўзбек"]
        e.blobs = [[], [1, 2]]
        e.colours = [.red, .negative, .unrecognized(7)]
        var many = Esaylov_Fixture_Scalars()
        many.u64 = 1
        e.many = [many, Esaylov_Fixture_Scalars()]
        e.counts = ["x": -5]
        e.names = [-1: "minus one"]
        var mapInner = Esaylov_Fixture_Nested.Inner()
        mapInner.name = "n"
        mapInner.values = [1, 2]
        e.inners = ["k": mapInner]
        var deep = Esaylov_Fixture_Nested()
        var deepInner = Esaylov_Fixture_Nested.Inner()
        deepInner.name = "deep"
        deep.inner = deepInner
        var leaf = Esaylov_Fixture_Nested()
        var leafInner = Esaylov_Fixture_Nested.Inner()
        leafInner.values = [3]
        leaf.inner = leafInner
        var middle = Esaylov_Fixture_Nested()
        middle.child = leaf
        deep.child = middle
        e.choice = .choiceNested(deep)
        var at = Google_Protobuf_Timestamp()
        at.seconds = 1_732_579_200
        at.nanos = 500
        e.at = at
        var within = Google_Protobuf_Duration()
        within.seconds = -5
        within.nanos = -1
        e.within = within
        e.nothing = Google_Protobuf_Empty()
        var nested = Esaylov_Fixture_Nested()
        var a = Esaylov_Fixture_Nested.Inner()
        a.name = "a"
        nested.inners = [a, Esaylov_Fixture_Nested.Inner()]
        e.nested = nested
        e.colour = .unrecognized(42)
        return e
    }

    static func oneofText() -> Esaylov_Fixture_Everything {
        var e = Esaylov_Fixture_Everything()
        e.choice = .choiceText("")
        return e
    }

    static func oneofNumber() -> Esaylov_Fixture_Everything {
        var e = Esaylov_Fixture_Everything()
        e.choice = .choiceNumber(-7)
        return e
    }

    @Test func scalarsExtremeBothWays() throws {
        let golden = try GoldenFiles.bytes("scalars_extreme")
        #expect(try Esaylov_Fixture_Scalars(serializedBytes: golden) == Self.extremeScalars())
        #expect(Self.extremeScalars().serializedBytes() == golden)
    }

    @Test func scalarsMaxBothWays() throws {
        let golden = try GoldenFiles.bytes("scalars_max")
        #expect(try Esaylov_Fixture_Scalars(serializedBytes: golden) == Self.maxScalars())
        #expect(Self.maxScalars().serializedBytes() == golden)
    }

    @Test func everythingBothWays() throws {
        let golden = try GoldenFiles.bytes("everything")
        let decoded = try Esaylov_Fixture_Everything(serializedBytes: golden)
        #expect(decoded == Self.everything())
        // Maps hold one entry each, so field order is fixed and bytes must match exactly.
        #expect(Self.everything().serializedBytes() == golden)
    }

    @Test func oneofMembersKeepPresenceEvenWhenDefault() throws {
        let text = try GoldenFiles.bytes("oneof_text")
        #expect(try Esaylov_Fixture_Everything(serializedBytes: text) == Self.oneofText())
        #expect(Self.oneofText().serializedBytes() == text)
        let number = try GoldenFiles.bytes("oneof_number")
        #expect(try Esaylov_Fixture_Everything(serializedBytes: number) == Self.oneofNumber())
        #expect(Self.oneofNumber().serializedBytes() == number)
    }

    /// The thread's scratch arena is reused between packs: a pack after a large one (which
    /// needed chunks beyond the first) or after one with every field set still encodes
    /// exactly, as does a pack inside another.
    @Test func packsReuseTheThreadsArenaExactly() throws {
        let golden = try GoldenFiles.bytes("everything")
        var large = Self.everything()
        large.texts = (0..<200).map { String(repeating: "ў", count: $0) }
        let largeBytes = large.serializedBytes()
        #expect(try Esaylov_Fixture_Everything(serializedBytes: largeBytes) == large)
        for _ in 0..<3 {
            #expect(Self.everything().serializedBytes() == golden)
            #expect(Self.oneofNumber().serializedBytes() == (try GoldenFiles.bytes("oneof_number")))
            #expect(Esaylov_Fixture_Scalars().serializedBytes() == [])
            #expect(large.serializedBytes() == largeBytes)
        }
        let nested: [UInt8] = ProtoArena.withScratch { outer in
            let held = outer.allocate(byteCount: 64)
            memset(held, 0xAB, 64)
            let inner = Self.everything().serializedBytes()  // takes an arena of its own
            #expect(held.load(fromByteOffset: 63, as: UInt8.self) == 0xAB)
            return inner
        }
        #expect(nested == golden)
    }

    /// A reset arena hands out zeroed memory again, from its first chunk and beyond it.
    @Test func resetArenaIsZeroedAgain() {
        let arena = ProtoArena()
        for round in 0..<3 {
            for size in [100, 300, 2000, 5000, 40] {
                let p = arena.allocate(byteCount: size)
                #expect(UnsafeRawBufferPointer(start: p, count: size).allSatisfy { $0 == 0 }, "round \(round), \(size) bytes")
                memset(p, 0xFF, size)
            }
            arena.reset()
        }
    }

    @Test func emptyMessageIsZeroBytes() throws {
        #expect(try GoldenFiles.bytes("empty") == [])
        #expect(Esaylov_Fixture_Everything().serializedBytes() == [])
        #expect(try Esaylov_Fixture_Everything(serializedBytes: []) == Esaylov_Fixture_Everything())
    }

    @Test func mapsWithManyEntriesRoundTripAndEncodeDeterministically() throws {
        var e = Esaylov_Fixture_Everything()
        for i in 0..<50 { e.counts["k\(i)"] = Int64(i) - 25 }
        e.names = [3: "c", -1: "a", 2: "b"]
        let bytes = e.serializedBytes()
        #expect(try Esaylov_Fixture_Everything(serializedBytes: bytes) == e)
        // Key order, not hash order: the same value always gives the same bytes.
        var copy = Esaylov_Fixture_Everything()
        for i in (0..<50).reversed() { copy.counts["k\(i)"] = Int64(i) - 25 }
        copy.names = [2: "b", 3: "c", -1: "a"]
        #expect(copy.serializedBytes() == bytes)
    }

    @Test func unknownEnumValuesRoundTrip() throws {
        var s = Esaylov_Fixture_Scalars()
        s.colour = .unrecognized(123_456)
        let back = try Esaylov_Fixture_Scalars(serializedBytes: s.serializedBytes())
        #expect(back.colour == .unrecognized(123_456))
        #expect(back.colour.rawValue == 123_456)
        #expect(Esaylov_Fixture_Colour(rawValue: -3) == .negative)
    }

    @Test func deepRecursionWithinReasonRoundTrips() throws {
        var n = Esaylov_Fixture_Nested()
        for depth in 0..<50 {
            var parent = Esaylov_Fixture_Nested()
            var inner = Esaylov_Fixture_Nested.Inner()
            inner.values = [Int32(depth)]
            parent.inner = inner
            parent.child = n
            n = parent
        }
        #expect(try Esaylov_Fixture_Nested(serializedBytes: n.serializedBytes()) == n)
    }
}

@Suite("Decoding hostile bytes")
struct MalformedInputTests {
    @Test func truncatedGoldenBytesNeverCrash() throws {
        let golden = try GoldenFiles.bytes("everything")
        var rejected = 0
        for cut in 0..<golden.count {
            if (try? Esaylov_Fixture_Everything(serializedBytes: Array(golden[..<cut]))) == nil { rejected += 1 }
        }
        // Most prefixes end inside a field; protobuf-c must say so rather than guess.
        #expect(rejected > golden.count / 2)
    }

    @Test func randomBytesNeverCrash() throws {
        var rng = SplitMix64(seed: 0xE5A7_10F0)
        var accepted = 0
        for _ in 0..<20_000 {
            let n = Int(rng.next() % 64)
            let bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if let m = try? Esaylov_Fixture_Everything(serializedBytes: bytes) {
                accepted += 1
                // Whatever decodes must re-encode and decode to the same value.
                #expect(try Esaylov_Fixture_Everything(serializedBytes: m.serializedBytes()) == m)
            }
        }
        #expect(accepted < 20_000)
    }

    @Test func flippedBitsInGoldenBytesNeverCrash() throws {
        let golden = try GoldenFiles.bytes("everything")
        var rng = SplitMix64(seed: 42)
        for _ in 0..<5_000 {
            var bytes = golden
            for _ in 0..<3 {
                let i = Int(rng.next() % UInt64(bytes.count))
                bytes[i] ^= UInt8(1) << (rng.next() % 8)
            }
            _ = try? Esaylov_Fixture_Everything(serializedBytes: bytes)
        }
    }

    @Test func decodingErrorNamesTheMessageAndField() {
        do {
            _ = try Esaylov_Fixture_Scalars(serializedBytes: [0x72, 0x05, 0x61])  // text: length 5, 1 byte
            Issue.record("truncated string accepted")
        } catch {
            #expect(error.messageName == "esaylov.fixture.Scalars")
            #expect(error.fieldPath == "text")
            #expect(error.kind == .malformed)
        }
    }
}

/// A tiny deterministic generator, so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
