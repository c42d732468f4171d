/// Where a sender stands: what it is, its territory, and for candidates and proxies (and forms
/// about a candidate) the commission that registered the candidate and the one above it.
public struct SenderPlace: Hashable, Sendable {
    public var sender: Sender
    public var territory: SOATO
    public var registeringCommissionId: String?
    public var registeringParentId: String?

    public init(sender: Sender, territory: SOATO, registeringCommissionId: String? = nil, registeringParentId: String? = nil) {
        self.sender = sender
        self.territory = territory
        self.registeringCommissionId = registeringCommissionId
        self.registeringParentId = registeringParentId
    }
}

/// A commission that may receive.
public struct ReceiverPlace: Hashable, Sendable {
    public var id: String
    public var kind: OrganisationKind
    public var territory: SOATO

    public init(id: String, kind: OrganisationKind, territory: SOATO) {
        self.id = id
        self.kind = kind
        self.territory = territory
    }
}

/// Why a route is refused: the rule, for PERMISSION_DENIED.
public struct RoutingRefusal: Error, Hashable, Sendable, CustomStringConvertible {
    public var rule: String
    public var clause: String
    public var why: String

    public var description: String { "\(why): rule \"\(rule)\" (\(clause))" }
}

/// Clause 6 and the campaign's catalogue applied to one sender, one commission, one type.
public enum Routing {
    /// The route that carries a request of `rule`'s type from `sender` to `receiver`, in a
    /// campaign electing `elections` (narrowed to the form's election when it names one).
    /// `registering` is the commission that registered the candidate a form is about (forms 5
    /// to 8), when it differs from the sender's own candidacy.
    public static func route(
        _ rule: TypeRule, from sender: SenderPlace, to receiver: ReceiverPlace, elections: Set<ElectionKind>
    ) -> Result<Route, RoutingRefusal> {
        guard Clause6.hasAnyRoute(sender.sender) else {
            return .failure(RoutingRefusal(rule: "senders of clause 6", clause: "cl. 6", why: "clause 6 gives a \(sender.sender) no route to any commission"))
        }
        guard let level = receiver.kind.commissionLevel else {
            return .failure(RoutingRefusal(rule: "receivers are election commissions", clause: "cl. 6", why: "the receiver is not an election commission"))
        }
        guard Clause6.allows(sender.sender, to: level) else {
            return .failure(RoutingRefusal(
                rule: "clause \(Clause6.letter(level)): who exchanges requests with a \(receiver.kind.rawValue)", clause: "cl. \(Clause6.letter(level))",
                why: "a \(sender.sender) may not send to a \(receiver.kind.rawValue)"))
        }
        let candidates = rule.routes.filter {
            $0.receiver == receiver.kind && $0.senders.contains(sender.sender) && Clause6.allows(sender.sender, to: level)
        }
        guard !candidates.isEmpty else {
            return .failure(RoutingRefusal(
                rule: "the catalogue's routes of request type \(rule.type.rawValue)", clause: "cl. 6, the campaign's catalogue",
                why: "request type \(rule.type.rawValue) has no route from a \(sender.sender) to a \(receiver.kind.rawValue)"))
        }
        let forElections = candidates.filter { $0.applies(to: elections) }
        guard !forElections.isEmpty else {
            return .failure(RoutingRefusal(
                rule: "the catalogue's routes of request type \(rule.type.rawValue)", clause: "cl. 6, the campaign's catalogue",
                why: "request type \(rule.type.rawValue) reaches a \(receiver.kind.rawValue) only for elections this campaign or form does not hold"))
        }
        var last: RoutingRefusal?
        for route in forElections {
            switch relationHolds(route.relation, sender: sender, receiver: receiver) {
            case .success: return .success(route)
            case .failure(let r): last = r
            }
        }
        return .failure(last!)
    }

    static func relationHolds(_ relation: TerritorialRelation, sender: SenderPlace, receiver: ReceiverPlace) -> Result<Void, RoutingRefusal> {
        func refuse(_ why: String) -> Result<Void, RoutingRefusal> {
            .failure(RoutingRefusal(rule: "territory: \(relation.rawValue)", clause: "cl. 6", why: why))
        }
        switch relation {
        case .registeringCommission:
            return sender.registeringCommissionId == receiver.id ? .success(()) : refuse("the receiver is not the commission that registered the candidate")
        case .aboveRegisteringCommission:
            return sender.registeringParentId == receiver.id ? .success(()) : refuse("the receiver is not the commission above the one that registered the candidate")
        case .anyTerritory, .coveringTerritory, .sameTerritory:
            // Below the national level, only a commission whose territory covers the sender's.
            guard Clause6.territoryAllows(sender: sender.territory, receiver: receiver.territory) else {
                return refuse("a sender below the national level reaches only the commission whose territory covers its own")
            }
            if relation == .coveringTerritory, !receiver.territory.contains(sender.territory) {
                return refuse("the commission's territory does not cover the sender's")
            }
            if relation == .sameTerritory, receiver.territory != sender.territory {
                return refuse("the commission's territory is not the sender's own")
            }
            return .success(())
        }
    }

    /// Whether `rule` has a route at all for `sender` in a campaign electing `elections`.
    public static func maySend(_ rule: TypeRule, _ sender: Sender, elections: Set<ElectionKind>) -> Bool {
        rule.routes.contains { r in
            r.senders.contains(sender) && r.applies(to: elections) && r.receiver.commissionLevel.map { Clause6.allows(sender, to: $0) } == true
        }
    }
}
