/// Who sends a request: an organisation of a kind, or a candidate or proxy of a candidacy.
public enum Sender: Hashable, Sendable, CustomStringConvertible {
    case organisation(OrganisationKind)
    case candidate(ElectionKind)
    case proxy(ElectionKind)

    /// cl. 7: organisations sign every request; candidates and proxies do not.
    public var signs: Bool {
        if case .organisation = self { return true }
        return false
    }

    public var isPerson: Bool { !signs }

    public var description: String {
        switch self {
        case .organisation(let k): k.rawValue
        case .candidate(let e): "\(e.rawValue) candidate"
        case .proxy(let e): "\(e.rawValue) candidate's proxy"
        }
    }
}

/// Clause 6 of the regulation, as it reads: which senders each level of commission exchanges
/// requests with. Everything else (the catalogue, the territory) narrows it; nothing widens it.
public enum Clause6 {
    /// The clause's three lists.
    static let table: [CommissionLevel: (letter: String, senders: Set<Sender>)] = [
        // a) with the CEC: political parties; the Jokargy Kenes; the regional and Tashkent city
        //    Councils; Legislative Chamber candidates; local mass media; the MFA; the
        //    territorial election commissions.
        .central: ("6(a)", [
            .organisation(.politicalParty), .organisation(.jokargyKenes), .organisation(.regionalCouncil),
            .candidate(.legislativeChamber), .organisation(.localMedia), .organisation(.ministryOfForeignAffairs),
            .organisation(.territorialElectionCommission), .organisation(.karakalpakstanElectionCommission),
        ]),
        // b) with the CEC of Karakalpakstan and the territorial commissions: political parties;
        //    the Council of Ministers of Karakalpakstan, regional and Tashkent city hokimiyats;
        //    district and city Councils; district and city hokimiyats; Legislative Chamber,
        //    Jokargy Kenes and regional Council candidates; mahallas; district and city
        //    commissions; proxies of Legislative Chamber, Jokargy Kenes and regional Council
        //    candidates; the MFA.
        .territorial: ("6(b)", [
            .organisation(.politicalParty), .organisation(.karakalpakstanCouncilOfMinisters), .organisation(.regionalHokimiyat),
            .organisation(.districtCouncil), .organisation(.districtHokimiyat),
            .candidate(.legislativeChamber), .candidate(.jokargyKenes), .candidate(.regionalCouncil),
            .organisation(.mahalla), .organisation(.districtElectionCommission),
            .proxy(.legislativeChamber), .proxy(.jokargyKenes), .proxy(.regionalCouncil),
            .organisation(.ministryOfForeignAffairs),
        ]),
        // c) with a district or city commission: political parties; district and city
        //    hokimiyats; district and city Council candidates; their proxies.
        .district: ("6(c)", [
            .organisation(.politicalParty), .organisation(.districtHokimiyat), .candidate(.districtCouncil), .proxy(.districtCouncil),
        ]),
    ]

    /// A party's regional and district branches act for the party (the clause names parties).
    static func normalised(_ s: Sender) -> Sender {
        if case .organisation(.partyBranch) = s { return .organisation(.politicalParty) }
        return s
    }

    /// Whether clause 6 lets `sender` exchange requests with a commission of `level`.
    public static func allows(_ sender: Sender, to level: CommissionLevel) -> Bool {
        table[level]?.senders.contains(normalised(sender)) ?? false
    }

    /// The letter of the clause that lists the commissions of `level` ("6(b)").
    public static func letter(_ level: CommissionLevel) -> String { table[level]?.letter ?? "6" }

    /// Whether clause 6 gives `sender` any route at all.
    public static func hasAnyRoute(_ sender: Sender) -> Bool {
        CommissionLevel.allCases.contains { allows(sender, to: $0) }
    }

    /// Below the national level a sender reaches only commissions whose territory covers its
    /// own; a sender at the national level (the republic) reaches every territory.
    public static func territoryAllows(sender: SOATO, receiver: SOATO) -> Bool {
        sender.value == SOATO.republic || receiver.contains(sender)
    }
}

extension SOATO {
    /// The code of the republic as a whole.
    public static let republic = "17"
}
