import FixtureAPI
import ProtoRuntime
import Testing

/// Hand-built wire bytes (tag, length, payload), so that the tests do not depend on the
/// encoder they are checking.
enum Wire {
    static func varint(_ v: UInt64) -> [UInt8] {
        var v = v
        var out: [UInt8] = []
        repeat {
            var b = UInt8(v & 0x7F)
            v >>= 7
            if v != 0 { b |= 0x80 }
            out.append(b)
        } while v != 0
        return out
    }

    static func field(_ number: UInt64, _ payload: [UInt8]) -> [UInt8] {
        varint(number << 3 | 2) + varint(UInt64(payload.count)) + payload
    }

    /// `Nested.child` (field 3) nested `depth` deep, built inside out without recursion.
    static func nestedChildren(depth: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        for _ in 0..<depth { bytes = field(3, bytes) }
        return bytes
    }
}

@Suite("Decode safety: limits checked before protobuf-c unpacks")
struct DecodeSafetyTests {
    func expectFailure(_ bytes: [UInt8], kind: ProtoDecodingError.Kind, mentioning text: String) {
        do {
            _ = try Esaylov_Fixture_Everything(serializedBytes: bytes)
            Issue.record("accepted")
        } catch {
            #expect(error.kind == kind)
            #expect("\(error)".contains(text), "\(error)")
        }
    }

    @Test func depthUpToTheLimitIsAccepted() throws {
        // Everything.nested (21) then 98 more Nested.child levels: 100 messages deep.
        let bytes = Wire.field(21, Wire.nestedChildren(depth: 98))
        let decoded = try Esaylov_Fixture_Everything(serializedBytes: bytes)
        var depth = 1
        var node = decoded.nested
        while let n = node { depth += 1; node = n.child }
        #expect(depth == 100)
    }

    @Test func depthPastTheLimitIsRejected() {
        expectFailure(Wire.field(21, Wire.nestedChildren(depth: 99)), kind: .malformed, mentioning: "nested deeper than 100")
    }

    @Test func hundredThousandLevelsDoNotOverflowTheStack() {
        // About 400 KB nested 100,000 deep: stock protobuf-c would recurse until it crashed.
        let bytes = Wire.field(21, Wire.nestedChildren(depth: 100_000))
        #expect(bytes.count > 300_000)
        expectFailure(bytes, kind: .malformed, mentioning: "nested deeper")
    }

    @Test func invalidUTF8IsRejectedNamingTheField() {
        let scalars = Wire.field(14, [0x61, 0xC3, 0x28])  // Scalars.text, broken 2-byte sequence
        expectFailure(Wire.field(1, scalars), kind: .malformed, mentioning: "esaylov.fixture.Everything field scalars.text: string is not valid UTF-8")
    }

    @Test func embeddedNulIsRejected() {
        expectFailure(Wire.field(7, [0x61, 0x00, 0x62]), kind: .malformed, mentioning: "esaylov.fixture.Everything field texts: string contains U+0000")
    }

    @Test func bytesMayHoldAnything() throws {
        let decoded = try Esaylov_Fixture_Everything(serializedBytes: Wire.field(8, [0x00, 0xFF, 0xC3]))
        #expect(decoded.blobs == [[0x00, 0xFF, 0xC3]])
    }

    @Test func millionsOfEmptySubmessagesAreRefusedByBudget() {
        // 2M empty `many` entries in 4 MiB of wire: each becomes a struct, a pointer and a
        // scan record in protobuf-c, far beyond 16x the wire size.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4_000_000)
        for _ in 0..<2_000_000 { bytes += [0x52, 0x00] }
        expectFailure(bytes, kind: .tooLarge, mentioning: "more than")
    }

    @Test func packedScalarsAreCountedAgainstTheBudget() {
        // 1 byte per varint on the wire, 8 bytes each unpacked: within 16x, accepted.
        let ok = Wire.field(3, [UInt8](repeating: 1, count: 100_000))
        #expect((try? Esaylov_Fixture_Everything(serializedBytes: ok))?.packedS64.count == 100_000)
    }

    @Test func groupsAndBadWireTypesAreMalformed() {
        expectFailure([0x0B, 0x0C], kind: .malformed, mentioning: "wire type 3")
        expectFailure([0x0F], kind: .malformed, mentioning: "wire type 7")
        expectFailure([0x00], kind: .malformed, mentioning: "field number 0")
    }

    @Test func unknownFieldsAreKeptWithinBudget() throws {
        // Field 99 does not exist in Everything; protobuf-c keeps it, and so may we.
        let decoded = try Esaylov_Fixture_Everything(serializedBytes: Wire.field(99, [1, 2, 3]))
        #expect(decoded == Esaylov_Fixture_Everything())
    }

    /// protobuf-c merges every further occurrence of a singular sub-message with all before it
    /// (quadratic CPU for linear input): the walker refuses a second one, naming the field.
    @Test func aSingularMessageFieldTwiceIsRefused() {
        let inner = Wire.field(1, Array("x".utf8))  // Nested.Inner.name
        expectFailure(Wire.field(21, Wire.field(1, inner) + Wire.field(1, inner)), kind: .malformed, mentioning: "nested.inner")
        expectFailure(Wire.field(1, []) + Wire.field(1, []), kind: .malformed, mentioning: "more than once")
        // Repeated message fields and other singular fields may repeat as the wire format allows.
        #expect((try? Esaylov_Fixture_Everything(serializedBytes: Wire.field(10, []) + Wire.field(10, []))) != nil)
        #expect((try? Esaylov_Fixture_Everything(serializedBytes: Wire.field(7, []) + Wire.field(7, []))) != nil)
    }
}
