import Glibc
import ESaylovAPI
import FixtureAPI
import ProtoRuntime
import Testing

/// Mutation fuzzing of the decode path: the wire walker, protobuf-c's unpack under the
/// budgeted allocator, and the Swift conversion, over a million inputs. Whatever decodes
/// must re-encode to canonical bytes that survive another round unchanged; nothing may crash or leak budget.
@Suite("Decode fuzzing")
struct FuzzTests {
    static let iterations = Int(ProcessEnvironment.value("ESAYLOV_FUZZ_ITERATIONS") ?? "") ?? 1_000_000

    struct Target: Sendable {
        let name: String
        let roundTrip: @Sendable ([UInt8]) -> Bool?  // nil: rejected; false: round trip broke
    }

    static func target<M: ProtoMessage>(_ type: M.Type) -> Target {
        Target(name: M.protoName) { bytes in
            guard let m = try? M(serializedBytes: bytes) else { return nil }
            // Bytes, not values: a float field may hold NaN, which is not equal to itself.
            let once = m.serializedBytes()
            return (try? M(serializedBytes: once))?.serializedBytes() == once
        }
    }

    static let targets: [Target] = [
        target(Esaylov_Fixture_Everything.self), target(Esaylov_Fixture_Nested.self),
        target(Esaylov_Fixture_Scalars.self), target(Grpc_Testing_SimpleRequest.self),
        target(Grpc_Testing_StreamingOutputCallRequest.self), target(Grpc_Reflection_V1_ServerReflectionRequest.self),
    ]

    static func seeds() throws -> [[UInt8]] {
        var seeds = try ["everything", "scalars_extreme", "scalars_max", "oneof_text", "oneof_number"].map(GoldenFiles.bytes)
        seeds.append(CodecTests.everything().serializedBytes())
        var nested = Esaylov_Fixture_Nested()
        for _ in 0..<20 { var p = Esaylov_Fixture_Nested(); p.child = nested; nested = p }
        seeds.append(nested.serializedBytes())
        return seeds
    }

    static func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = input
        for _ in 0..<(1 + Int(rng.next() % 4)) {
            let at = b.isEmpty ? 0 : Int(rng.next() % UInt64(b.count))
            switch rng.next() % 8 {
            case 0 where !b.isEmpty: b[at] ^= UInt8(1) << (rng.next() % 8)
            case 1 where !b.isEmpty: b[at] = UInt8(truncatingIfNeeded: rng.next())
            case 2: b.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
            case 3 where !b.isEmpty: b.remove(at: at)
            case 4: b = Array(b.prefix(at))
            case 5:  // a huge or negative varint where a length or tag may be
                let big: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
                b.insert(contentsOf: big.prefix(1 + Int(rng.next() % 10)), at: at)
            case 6 where b.count > 2:  // duplicate a slice: repeated fields, nesting
                let end = min(b.count, at + 1 + Int(rng.next() % 16))
                b.insert(contentsOf: b[at..<end], at: Int(rng.next() % UInt64(b.count)))
            default:
                b = (0..<Int(rng.next() % 48)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            }
        }
        return b
    }

    @Test func millionMutatedInputsNeverCrash() throws {
        let seeds = try Self.seeds()
        var rng = SplitMix64(seed: 0x5EED_F022)
        var accepted = 0
        var brokenRoundTrips: [String] = []
        for i in 0..<Self.iterations {
            let input = Self.mutate(seeds[i % seeds.count], &rng)
            let target = Self.targets[i % Self.targets.count]
            switch target.roundTrip(input) {
            case nil: break
            case true?: accepted += 1
            case false?: if brokenRoundTrips.count < 5 { brokenRoundTrips.append("\(target.name): \(input)") }
            }
        }
        #expect(brokenRoundTrips.isEmpty, "\(brokenRoundTrips)")
        // Both outcomes occur: the fuzzer reaches valid and invalid inputs alike.
        #expect(accepted > Self.iterations / 100)
        #expect(accepted < Self.iterations)
    }
}

enum ProcessEnvironment {
    static func value(_ name: String) -> String? {
        guard let p = getenv(name) else { return nil }
        return String(cString: p)
    }
}
