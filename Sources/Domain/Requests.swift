/// The three kinds of request (cl. 2).
public enum RequestKind: String, Sendable, Hashable, CaseIterable {
    /// "ariza"
    case application
    /// "taqdimnoma"
    case submission
    /// "tavsiyanoma"
    case recommendation
}

/// The 17 request types (forms 2.1–2.17 as reconstructed in domain.md); raw values are the
/// catalogue numbers.
public enum RequestType: Int, Sendable, Hashable, CaseIterable {
    case partyAuthorizedRepresentative = 1
    case partyAdmission = 2
    case candidateNomination = 3
    case partyList = 4
    case nominationRevocation = 5
    case candidateWithdrawal = 6
    case proxyRegistration = 7
    case proxyRevocation = 8
    case observerMandate = 9
    case foreignObserverAccreditation = 10
    case mediaAccreditation = 11
    case pollingStationProposal = 12
    case pollingStationAbroad = 13
    case constituencyProposal = 14
    case territorialCommissionMembers = 15
    case lowerCommissionMembers = 16
    case commissionReport = 17

    /// The kind the catalogue gives the type. (Media accreditation is an application from a
    /// local outlet and a submission from the MFA: its sender decides, see `kind(sentBy:)`.)
    public var kind: RequestKind {
        switch self {
        case .foreignObserverAccreditation, .pollingStationProposal, .pollingStationAbroad, .constituencyProposal,
            .commissionReport:
            .submission
        case .territorialCommissionMembers, .lowerCommissionMembers: .recommendation
        default: .application
        }
    }

    /// The kind of this type's request when `sender` sends it.
    public func kind(sentBy sender: OrganisationKind?) -> RequestKind {
        if self == .mediaAccreditation, sender == .ministryOfForeignAffairs { return .submission }
        return kind
    }

    /// cl. 7: candidates' and proxies' requests are not EDS-signed; every other is.
    public var sentByPersons: Bool {
        switch self {
        case .candidateWithdrawal, .proxyRegistration, .proxyRevocation: true
        default: false
        }
    }
}
