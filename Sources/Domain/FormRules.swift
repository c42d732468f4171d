/// The rules of law that forms are checked against, free of the wire types: each returns the
/// violations it finds (field paths are the caller's), so that a form's faults are reported
/// together.
public enum FormRules {
    /// A person put forward in a form, as far as the law looks at them.
    public struct Person: Sendable {
        public var field: String
        public var pinfl: String
        /// The birth date the form gives, if any.
        public var birthDate: Day?
        public var phone: String
        public var phoneRequired: Bool

        public init(field: String, pinfl: String, birthDate: Day?, phone: String, phoneRequired: Bool) {
            self.field = field
            self.pinfl = pinfl
            self.birthDate = birthDate
            self.phone = phone
            self.phoneRequired = phoneRequired
        }
    }

    /// PINFL check digit, birth date agreeing with it, age on election day, phone format. Returns
    /// the valid PINFL (for sex and duplicates) when there is one.
    public static func person(_ p: Person, minimumAge: Int?, electionDay: Day, into faults: inout [DomainViolation]) -> PINFL? {
        var pinfl: PINFL?
        do { pinfl = try PINFL(p.pinfl, field: "\(p.field).pinfl") } catch { faults.append(error) }
        if let pinfl {
            if let born = pinfl.birthDate {
                if let given = p.birthDate, given != born {
                    faults.append(DomainViolation(field: "\(p.field).birth_date", rule: "must agree with the birth date in the PINFL"))
                }
                if let min = minimumAge, born.age(on: electionDay) < min {
                    faults.append(DomainViolation(field: "\(p.field).pinfl", rule: "the person must be \(min) or older on election day"))
                }
            } else {
                faults.append(DomainViolation(field: "\(p.field).pinfl", rule: "the PINFL's digits 2–7 are not a real birth date"))
            }
        }
        if p.phone.isEmpty {
            if p.phoneRequired { faults.append(DomainViolation(field: "\(p.field).phone", rule: "is required: it becomes the person's SMS login")) }
        } else {
            do { _ = try PhoneNumber(p.phone, field: "\(p.field).phone") } catch { faults.append(error) }
        }
        return pinfl
    }

    /// At least `percent` % women among `people` (sex from the PINFL), reported on `field`.
    public static func womenShare(_ people: [PINFL], atLeast percent: Int, field: String, into faults: inout [DomainViolation]) {
        guard !people.isEmpty else { return }
        let women = people.filter { !$0.isMale }.count
        if women * 100 < percent * people.count {
            faults.append(DomainViolation(field: field, rule: "at least \(percent)% of a party's nominees must be women (\(women) of \(people.count))"))
        }
    }

    /// At least `women` women in every `window` consecutive places of an ordered list (sex from
    /// the PINFL); a fault names the first place of each offending run.
    public static func womenInEveryRun(
        _ list: [PINFL], women: Int, window: Int = 5, field: (Int) -> String, into faults: inout [DomainViolation]
    ) {
        guard list.count >= window else {
            if list.filter({ !$0.isMale }).count < min(women, list.count) {
                faults.append(DomainViolation(field: field(0), rule: "at least \(women) women in every \(window) consecutive places"))
            }
            return
        }
        for start in 0...(list.count - window) where list[start..<(start + window)].filter({ !$0.isMale }).count < women {
            faults.append(DomainViolation(
                field: field(start), rule: "at least \(women) women in every \(window) consecutive places (places \(start + 1)–\(start + window))"))
        }
    }

    /// Every value within `percent` % of the mean of `values`.
    public static func withinMean(_ values: [Int], percent: Int, field: (Int) -> String, into faults: inout [DomainViolation]) {
        guard values.count > 1 else { return }
        let mean = Double(values.reduce(0, +)) / Double(values.count)
        for (i, v) in values.enumerated() where abs(Double(v) - mean) > mean * Double(percent) / 100 {
            faults.append(DomainViolation(field: field(i), rule: "voters must be within ±\(percent)% of the mean of the constituencies (\(Int(mean.rounded())))"))
        }
    }

    /// A text field's length in characters: required or not, at most `max`.
    public static func text(_ value: String, field: String, max: Int, required: Bool, into faults: inout [DomainViolation]) {
        if required, value.allSatisfy(\.isWhitespace) {
            faults.append(DomainViolation(field: field, rule: "is required"))
        } else if value.count > max {
            faults.append(DomainViolation(field: field, rule: "must be at most \(max) characters"))
        }
    }

    /// An item count: at least `min`, at most `max`.
    public static func count(_ n: Int, field: String, min: Int = 1, max: Int, into faults: inout [DomainViolation]) {
        if n < min { faults.append(DomainViolation(field: field, rule: "must have at least \(min) item\(min == 1 ? "" : "s")")) }
        if n > max { faults.append(DomainViolation(field: field, rule: "must have at most \(max) items")) }
    }
}
