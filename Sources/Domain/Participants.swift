/// The kinds of system users that are organisations (cl. 1).
public enum OrganisationKind: String, Sendable, Hashable, CaseIterable {
    case centralElectionCommission
    /// The CEC of Karakalpakstan: a territorial-level commission.
    case karakalpakstanElectionCommission
    /// A regional or Tashkent city election commission ("hududiy saylov komissiyasi").
    case territorialElectionCommission
    /// A district ("tuman") or city ("shahar") election commission.
    case districtElectionCommission
    case politicalParty
    case partyBranch
    case jokargyKenes
    /// A regional or Tashkent city Council ("Kengash") of people's deputies.
    case regionalCouncil
    case districtCouncil
    case karakalpakstanCouncilOfMinisters
    case regionalHokimiyat
    case districtHokimiyat
    case ministryOfForeignAffairs
    case mahalla
    case localMedia
    case foreignMedia
    case internationalMedia
    case foreignObserverOrganisation
    case internationalObserverOrganisation

    /// The level of an election commission in the tree, nil for other organisations.
    public var commissionLevel: CommissionLevel? {
        switch self {
        case .centralElectionCommission: .central
        case .karakalpakstanElectionCommission, .territorialElectionCommission: .territorial
        case .districtElectionCommission: .district
        default: nil
        }
    }

    public var isElectionCommission: Bool { commissionLevel != nil }

    /// cl. 6 gives foreign and international observers and media no route, and the CEC, at
    /// the top of the tree, sends to no one: they may read what concerns them but not send.
    public var maySendRequests: Bool {
        switch self {
        case .centralElectionCommission, .foreignMedia, .internationalMedia, .foreignObserverOrganisation,
            .internationalObserverOrganisation:
            false
        default: true
        }
    }
}

/// Levels of the election commission tree: CEC → 14 territorial → about 206 district.
public enum CommissionLevel: Int, Sendable, Hashable, Comparable, CaseIterable {
    case central = 0
    case territorial = 1
    case district = 2

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// A person's role inside an organisation.
public enum Role: String, Sendable, Hashable, CaseIterable {
    /// The head of a legal person: signs its requests with the EDS (cl. 2, 8).
    case head
    /// A commission's chairperson: approves its decisions (cl. 11), and is its head when it
    /// sends a submission to another commission (cl. 6, 8).
    case chairperson
    case deputyChairperson
    case secretary
    case member
    /// Staff who prepare drafts for the head to sign.
    case clerk
    /// Staff of the system's operator (at the CEC): manage the directory, read personal records.
    case `operator`
    /// Staff of the CEC who read and verify the audit trail (cl. 13).
    case auditor

    /// cl. 12: the deputy chairperson or the secretary prepares draft decisions.
    public var mayDraftDecisions: Bool { self == .deputyChairperson || self == .secretary }
    /// cl. 11: the chairperson or the deputy chairperson approves decisions with the EDS.
    public var mayApproveDecisions: Bool { self == .chairperson || self == .deputyChairperson }
    /// cl. 8: the head signs the organisation's requests; a commission's head is its chairperson.
    public func signsRequests(in kind: OrganisationKind) -> Bool {
        kind.isElectionCommission ? self == .chairperson : self == .head
    }
    /// cl. 11, 12: which roles exist in an organisation of `kind` (operators and auditors sit at
    /// the CEC). The database enforces the same rule.
    public func fits(_ kind: OrganisationKind) -> Bool {
        switch self {
        case .operator, .auditor: kind == .centralElectionCommission
        case .chairperson, .deputyChairperson, .secretary, .member: kind.isElectionCommission
        case .head, .clerk: !kind.isElectionCommission
        }
    }
}

/// The body a candidate stands for.
public enum ElectionKind: String, Sendable, Hashable, CaseIterable {
    case legislativeChamber
    case jokargyKenes
    case regionalCouncil
    case districtCouncil
    case president
}
