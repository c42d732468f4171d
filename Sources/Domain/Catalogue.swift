/// The request catalogue as data (domain.md, forms 2.1–2.17): per campaign and versioned, so that
/// an operator changes senders, windows, decision periods and limits without a release. Clause
/// 6 bounds it: `Catalogue.check` refuses a route the clause does not give, and routing applies
/// the clause again on every request.
public struct Catalogue: Codable, Hashable, Sendable {
    public var rules: [TypeRule]

    public init(rules: [TypeRule]) {
        self.rules = rules
    }

    public func rule(_ type: RequestType) -> TypeRule? { rules.first { $0.type == type } }

    /// Everything wrong with the catalogue, or nothing: every type once, routes within clause 6
    /// and clause 7 (organisations sign, persons do not), windows that close after they open.
    public func check() -> [String] {
        var faults: [String] = []
        var seen: Set<RequestType> = []
        for r in rules {
            if !seen.insert(r.type).inserted { faults.append("type \(r.type.rawValue) appears twice") }
            if r.decisionDays < 0 || r.decisionDays > 366 { faults.append("type \(r.type.rawValue): decision_days must be 0 to 366") }
            for (i, route) in r.routes.enumerated() {
                guard let level = route.receiver.commissionLevel else {
                    faults.append("type \(r.type.rawValue) route \(i): the receiver \(route.receiver.rawValue) is not an election commission")
                    continue
                }
                if route.senders.isEmpty { faults.append("type \(r.type.rawValue) route \(i): no sender") }
                for s in route.senders where !Clause6.allows(s, to: level) {
                    faults.append("type \(r.type.rawValue) route \(i): clause \(Clause6.letter(level)) gives \(s) no route to a \(route.receiver.rawValue)")
                }
                for s in route.senders where s.isPerson && ![.registeringCommission, .aboveRegisteringCommission].contains(route.relation) {
                    faults.append("type \(r.type.rawValue) route \(i): \(s) cannot use the relation \(route.relation.rawValue)")
                }
            }
            if let o = r.window.opens, let c = r.window.closes, o.anchor == c.anchor, o.anchor != .fixedDate, o.signedDays > c.signedDays {
                faults.append("type \(r.type.rawValue): the window closes before it opens")
            }
        }
        return faults
    }
}

/// How the receiving commission stands to the sender on a route.
public enum TerritorialRelation: String, Codable, Hashable, Sendable, CaseIterable {
    /// Any commission of the kind: for national senders (clause 6 narrows it for the others).
    case anyTerritory
    /// The commission's territory is the sender's or contains it.
    case coveringTerritory
    /// The commission's territory is exactly the sender's.
    case sameTerritory
    /// The commission that registered the candidate (the sender's candidacy, or the form's).
    case registeringCommission
    /// The commission above the one that registered the candidate.
    case aboveRegisteringCommission
}

/// One route of a request type: who sends to which kind of commission, for which elections.
public struct Route: Codable, Hashable, Sendable {
    public var senders: [Sender]
    public var receiver: OrganisationKind
    public var relation: TerritorialRelation
    /// The elections it applies to; empty for every election.
    public var electionKinds: [ElectionKind]
    /// The request's kind on this route, when it differs from the type's (form 11).
    public var kind: RequestKind?

    public init(_ senders: [Sender], to receiver: OrganisationKind, _ relation: TerritorialRelation, elections: [ElectionKind] = [], kind: RequestKind? = nil) {
        self.senders = senders
        self.receiver = receiver
        self.relation = relation
        self.electionKinds = elections
        self.kind = kind
    }

    /// cl. 7: signed unless its senders are persons.
    public var signatureRequired: Bool { senders.allSatisfy(\.signs) }

    /// Whether the route serves an election among `elections`.
    public func applies(to elections: Set<ElectionKind>) -> Bool {
        electionKinds.isEmpty || !elections.isDisjoint(with: electionKinds)
    }
}

/// A day counted from the campaign: A + n, E − n, or a fixed day an operator set.
public struct DayMark: Codable, Hashable, Sendable {
    public enum Anchor: String, Codable, Hashable, Sendable {
        case announcement
        case electionDay
        case fixedDate
    }

    public var anchor: Anchor
    /// After A, or before E.
    public var days: Int
    public var date: Day?

    public static func afterAnnouncement(_ n: Int) -> DayMark { DayMark(anchor: .announcement, days: n, date: nil) }
    public static func beforeElection(_ n: Int) -> DayMark { DayMark(anchor: .electionDay, days: n, date: nil) }
    public static func fixed(_ d: Day) -> DayMark { DayMark(anchor: .fixedDate, days: 0, date: d) }

    /// Offset on a common axis, for comparing two marks of one anchor.
    var signedDays: Int { anchor == .electionDay ? -days : days }

    /// The day in a campaign announced on `a` with election day `e`.
    public func day(announced a: Day, election e: Day) -> Day {
        switch anchor {
        case .announcement: a.adding(days: days)
        case .electionDay: e.adding(days: -days)
        case .fixedDate: date ?? a
        }
    }
}

/// When a type may be sent: both days included; nil ends are open.
public struct Window: Codable, Hashable, Sendable {
    public var opens: DayMark?
    public var closes: DayMark?

    public init(opens: DayMark?, closes: DayMark?) {
        self.opens = opens
        self.closes = closes
    }
}

/// A numeric limit checked on forms of a type.
public struct Limit: Codable, Hashable, Sendable {
    public var name: String
    public var value: Int
    /// The election it applies to; nil for all.
    public var electionKind: ElectionKind?
    public var description: String

    public init(_ name: String, _ value: Int, election: ElectionKind? = nil, _ description: String) {
        self.name = name
        self.value = value
        self.electionKind = election
        self.description = description
    }
}

/// The rules of one request type in one campaign.
public struct TypeRule: Codable, Hashable, Sendable {
    public var type: RequestType
    public var titleUz: String
    public var titleEn: String
    public var routes: [Route]
    public var window: Window
    /// Calendar days to decide, counted from the day of receipt.
    public var decisionDays: Int
    public var limits: [Limit]

    public init(type: RequestType, titleUz: String, titleEn: String, routes: [Route], window: Window, decisionDays: Int, limits: [Limit]) {
        self.type = type
        self.titleUz = titleUz
        self.titleEn = titleEn
        self.routes = routes
        self.window = window
        self.decisionDays = decisionDays
        self.limits = limits
    }

    /// The limit `name` for an election (a limit for that election wins over one for all).
    public func limit(_ name: String, election: ElectionKind? = nil) -> Int? {
        limits.first { $0.name == name && $0.electionKind != nil && $0.electionKind == election }?.value
            ?? limits.first { $0.name == name && $0.electionKind == nil }?.value
    }
}

extension RequestType: Codable {}
extension RequestKind: Codable {}
extension OrganisationKind: Codable {}
extension ElectionKind: Codable {}

extension Sender: Codable {
    /// "politicalParty", "candidate:districtCouncil", "proxy:legislativeChamber".
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        if parts.count == 2, let e = ElectionKind(rawValue: parts[1]), parts[0] == "candidate" || parts[0] == "proxy" {
            self = parts[0] == "candidate" ? .candidate(e) : .proxy(e)
        } else if parts.count == 1, let k = OrganisationKind(rawValue: text) {
            self = .organisation(k)
        } else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown sender \(text)"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .organisation(let k): try c.encode(k.rawValue)
        case .candidate(let e): try c.encode("candidate:\(e.rawValue)")
        case .proxy(let e): try c.encode("proxy:\(e.rawValue)")
        }
    }
}
