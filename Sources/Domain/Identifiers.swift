/// Why a value broke a rule: the field and the rule, never the value itself (it may be
/// personal data).
public struct DomainViolation: Error, Hashable, Sendable, CustomStringConvertible {
    public var field: String
    public var rule: String

    public init(field: String, rule: String) {
        self.field = field
        self.rule = rule
    }

    public var description: String { "\(field): \(rule)" }
}

private func isDigits(_ s: Substring) -> Bool { !s.isEmpty && s.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }
private func digits(_ s: String) -> [Int] { s.utf8.map { Int($0) - 48 } }

/// A personal identification number: 14 digits. Digit 1 gives century and sex (1–2 1800s,
/// 3–4 1900s, 5–6 2000s; odd is male), digits 2–7 the birth date DDMMYY, digit 14 a check
/// digit: the first 13 weighted 7, 3, 1, 7, 3, 1, … summed, mod 10.
public struct PINFL: Hashable, Sendable, CustomStringConvertible {
    public let value: String

    public init(_ text: String, field: String = "pinfl") throws(DomainViolation) {
        guard text.utf8.count == 14, isDigits(Substring(text)) else {
            throw DomainViolation(field: field, rule: "a PINFL is 14 digits")
        }
        let d = digits(text)
        guard (1...6).contains(d[0]) else {
            throw DomainViolation(field: field, rule: "a PINFL's first digit (century and sex) is 1 to 6")
        }
        guard Self.checkDigit(of: text.utf8.prefix(13)) == d[13] else {
            throw DomainViolation(field: field, rule: "the PINFL's check digit does not match")
        }
        let day = d[1] * 10 + d[2]
        let month = d[3] * 10 + d[4]
        guard (1...31).contains(day), (1...12).contains(month) else {
            throw DomainViolation(field: field, rule: "the PINFL's digits 2–7 are not a birth date DDMMYY")
        }
        value = text
    }

    /// The check digit of a PINFL's first 13 digits (ASCII): weighted 7, 3, 1, … summed, mod 10.
    public static func checkDigit(of first13: some Collection<UInt8>) -> Int {
        let weights = [7, 3, 1]
        return first13.enumerated().reduce(0) { $0 + (Int($1.element) - 48) * weights[$1.offset % 3] } % 10
    }

    /// Year of birth, from the century digit and YY.
    public var birthYear: Int {
        let d = digits(value)
        let century = [1800, 1800, 1900, 1900, 2000, 2000][d[0] - 1]
        return century + d[5] * 10 + d[6]
    }

    public var birthMonth: Int { digits(value)[3] * 10 + digits(value)[4] }
    public var birthDay: Int { digits(value)[1] * 10 + digits(value)[2] }
    public var isMale: Bool { digits(value)[0] % 2 == 1 }
    /// Masked for display and logs: personal data (cl. 13).
    public var description: String { String(value.prefix(2)) + "**********" + String(value.suffix(2)) }
}

/// A taxpayer identification number (STIR): 9 digits; legal entities begin with 2,
/// individuals with 4 to 7.
public struct TIN: Hashable, Sendable, CustomStringConvertible {
    public let value: String

    public init(_ text: String, field: String = "tin") throws(DomainViolation) {
        guard text.utf8.count == 9, isDigits(Substring(text)) else {
            throw DomainViolation(field: field, rule: "a TIN is 9 digits")
        }
        guard let first = text.first, "24567".contains(first) else {
            throw DomainViolation(field: field, rule: "a TIN begins with 2 (legal entity) or 4 to 7 (individual)")
        }
        value = text
    }

    public var isLegalEntity: Bool { value.first == "2" }
    public var description: String { value }
}

/// A SOATO territory code: "17" (the republic), 4 digits (a region), 7 (a district or city),
/// 10 (a unit inside a city, e.g. Namangan city's districts 1714401365 and 1714401367).
public struct SOATO: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let value: String

    public init(_ text: String, field: String = "soato") throws(DomainViolation) {
        guard [2, 4, 7, 10].contains(text.utf8.count), isDigits(Substring(text)), text.hasPrefix("17") else {
            throw DomainViolation(field: field, rule: "a SOATO code is 17 followed by 0, 2, 5 or 8 digits")
        }
        value = text
    }

    /// True when `other` is this unit or lies inside it.
    public func contains(_ other: SOATO) -> Bool { other.value.hasPrefix(value) }

    /// The region a district belongs to (itself for a region).
    public var region: SOATO? {
        value.count >= 4 ? try? SOATO(String(value.prefix(4))) : nil
    }

    public static func < (a: Self, b: Self) -> Bool { a.value < b.value }
    public var description: String { value }
}

/// A mobile number for SMS login: "+998" and 9 digits.
public struct PhoneNumber: Hashable, Sendable, CustomStringConvertible {
    public let value: String

    public init(_ text: String, field: String = "phone") throws(DomainViolation) {
        guard text.hasPrefix("+998"), text.utf8.count == 13, isDigits(text.dropFirst(4)) else {
            throw DomainViolation(field: field, rule: "a phone number is +998 and 9 digits")
        }
        value = text
    }

    /// Masked for display and logs.
    public var description: String { "+998*****" + String(value.suffix(4)) }
}
