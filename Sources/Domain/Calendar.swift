/// A calendar day in Tashkent time (UTC+5, no daylight saving): the unit every statutory
/// deadline counts in. (`TimeZone(identifier: "Asia/Tashkent")` is unavailable to this target;
/// the offset is fixed by law and has not changed since 1992.)
public struct Day: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
    public let year: Int
    public let month: Int
    public let day: Int

    /// Seconds east of UTC of Tashkent time.
    public static let tashkentOffset = 5 * 3600

    /// A valid day, or nil (February 30th is nil).
    public init?(year: Int, month: Int, day: Int) {
        guard (1...9999).contains(year), (1...12).contains(month), (1...Self.length(of: month, in: year)).contains(day) else { return nil }
        self.year = year
        self.month = month
        self.day = day
    }

    /// The day of `ordinal` (days since 1970-01-01).
    public init(ordinal: Int) {
        // Civil from days (H. Hinnant's algorithm).
        let z = ordinal + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        year = yoe + era * 400 + (m <= 2 ? 1 : 0)
        month = m
        day = d
    }

    /// The Tashkent day of an instant (seconds since 1970).
    public init(tashkentDayOf epoch: Double) {
        let local = Int((epoch + Double(Self.tashkentOffset)).rounded(.down))
        self.init(ordinal: local >= 0 ? local / 86400 : (local - 86399) / 86400)
    }

    /// "2024-10-27".
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2])
        else { return nil }
        self.init(year: y, month: m, day: d)
    }

    /// Days since 1970-01-01.
    public var ordinal: Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    public func adding(days: Int) -> Day { Day(ordinal: ordinal + days) }

    /// 00:00 Tashkent time of this day, in seconds since 1970.
    public var startEpoch: Double { Double(ordinal * 86400 - Self.tashkentOffset) }
    /// 24:00 Tashkent time of this day (the next day's start), in seconds since 1970.
    public var endEpoch: Double { startEpoch + 86400 }

    /// Full years of someone born on `self` on `day`.
    public func age(on day: Day) -> Int {
        var years = day.year - year
        if (day.month, day.day) < (month, self.day) { years -= 1 }
        return years
    }

    public static func < (a: Day, b: Day) -> Bool { a.ordinal < b.ordinal }

    public var description: String {
        func pad(_ v: Int, _ w: Int) -> String { String(repeating: "0", count: max(0, w - String(v).count)) + String(v) }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
    }

    /// Days in `month` of `year`.
    public static func length(of month: Int, in year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let d = Day(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a day YYYY-MM-DD: \(text)"))
        }
        self = d
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

extension PINFL {
    /// The birth date digits 2–7 give, with the century of digit 1; nil when it is no real day.
    public var birthDate: Day? { Day(year: birthYear, month: birthMonth, day: birthDay) }
}
