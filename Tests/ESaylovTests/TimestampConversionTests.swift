@testable import Services
import Testing

@Suite("Wire timestamps")
struct TimestampConversionTests {
    /// A database time outside Timestamp's range (or infinite, which the schema now refuses)
    /// becomes the nearest representable one instead of trapping.
    @Test func timestampsNeverTrap() {
        #expect(timestamp(.infinity).seconds == 253_402_300_799)
        #expect(timestamp(-.infinity).seconds == -62_135_596_800)
        #expect(timestamp(.nan).seconds == 0)
        let t = timestamp(1_720_000_000.25)
        #expect(t.seconds == 1_720_000_000 && t.nanos == 250_000_000)
        #expect(timestamp(-0.5).seconds == -1 && timestamp(-0.5).nanos == 500_000_000)
    }

    /// Audit times are microseconds, converted exactly (the audit hash covers them).
    @Test func microsecondsConvertExactly() {
        let t = timestamp(micros: 1_796_166_490_123_457)
        #expect(t.seconds == 1_796_166_490 && t.nanos == 123_457_000)
        let before = timestamp(micros: -1)
        #expect(before.seconds == -1 && before.nanos == 999_999_000)
    }
}
