// The one place where the request vocabulary meets the esaylov.v1 wire types
// (requests.proto, forms.proto).
public import Domain
public import ESaylovAPI

extension RequestKind {
    /// The domain value of a wire value; nil for UNSPECIFIED and values this build does not know.
    public init?(_ wire: Esaylov_V1_RequestKind) {
        switch wire {
        case .application: self = .application
        case .submission: self = .submission
        case .recommendation: self = .recommendation
        case .unspecified, .unrecognized: return nil
        }
    }

    /// The wire value.
    public var wire: Esaylov_V1_RequestKind {
        switch self {
        case .application: .application
        case .submission: .submission
        case .recommendation: .recommendation
        }
    }
}
extension RequestType {
    /// The domain value of a wire value; nil for UNSPECIFIED and values this build does not know.
    public init?(_ wire: Esaylov_V1_RequestType) {
        switch wire {
        case .partyAuthorizedRepresentative: self = .partyAuthorizedRepresentative
        case .partyAdmission: self = .partyAdmission
        case .candidateNomination: self = .candidateNomination
        case .partyList: self = .partyList
        case .nominationRevocation: self = .nominationRevocation
        case .candidateWithdrawal: self = .candidateWithdrawal
        case .proxyRegistration: self = .proxyRegistration
        case .proxyRevocation: self = .proxyRevocation
        case .observerMandate: self = .observerMandate
        case .foreignObserverAccreditation: self = .foreignObserverAccreditation
        case .mediaAccreditation: self = .mediaAccreditation
        case .pollingStationProposal: self = .pollingStationProposal
        case .pollingStationAbroad: self = .pollingStationAbroad
        case .constituencyProposal: self = .constituencyProposal
        case .territorialCommissionMembers: self = .territorialCommissionMembers
        case .lowerCommissionMembers: self = .lowerCommissionMembers
        case .commissionReport: self = .commissionReport
        case .unspecified, .unrecognized: return nil
        }
    }

    /// The wire value.
    public var wire: Esaylov_V1_RequestType {
        switch self {
        case .partyAuthorizedRepresentative: .partyAuthorizedRepresentative
        case .partyAdmission: .partyAdmission
        case .candidateNomination: .candidateNomination
        case .partyList: .partyList
        case .nominationRevocation: .nominationRevocation
        case .candidateWithdrawal: .candidateWithdrawal
        case .proxyRegistration: .proxyRegistration
        case .proxyRevocation: .proxyRevocation
        case .observerMandate: .observerMandate
        case .foreignObserverAccreditation: .foreignObserverAccreditation
        case .mediaAccreditation: .mediaAccreditation
        case .pollingStationProposal: .pollingStationProposal
        case .pollingStationAbroad: .pollingStationAbroad
        case .constituencyProposal: .constituencyProposal
        case .territorialCommissionMembers: .territorialCommissionMembers
        case .lowerCommissionMembers: .lowerCommissionMembers
        case .commissionReport: .commissionReport
        }
    }
}
extension Esaylov_V1_RequestForm {
    /// The request type a form belongs to (field numbers of the oneof are the type numbers);
    /// nil when no form is set.
    public var requestType: RequestType? {
        guard let form else { return nil }
        return switch form {
        case .partyAuthorizedRepresentative: RequestType.partyAuthorizedRepresentative
        case .partyAdmission: RequestType.partyAdmission
        case .candidateNomination: RequestType.candidateNomination
        case .partyList: RequestType.partyList
        case .nominationRevocation: RequestType.nominationRevocation
        case .candidateWithdrawal: RequestType.candidateWithdrawal
        case .proxyRegistration: RequestType.proxyRegistration
        case .proxyRevocation: RequestType.proxyRevocation
        case .observerMandate: RequestType.observerMandate
        case .foreignObserverAccreditation: RequestType.foreignObserverAccreditation
        case .mediaAccreditation: RequestType.mediaAccreditation
        case .pollingStationProposal: RequestType.pollingStationProposal
        case .pollingStationAbroad: RequestType.pollingStationAbroad
        case .constituencyProposal: RequestType.constituencyProposal
        case .territorialCommissionMembers: RequestType.territorialCommissionMembers
        case .lowerCommissionMembers: RequestType.lowerCommissionMembers
        case .commissionReport: RequestType.commissionReport
        }
    }
}

extension Esaylov_V1_RequestForm {
    /// How many items the form's list has (the indexes a decision's per-item outcomes name):
    /// nominees, list places, proxies, observers, journalists, stations, constituencies or
    /// commission nominees; 0 for a form without a list.
    public var itemCount: Int {
        switch form {
        case .candidateNomination(let x): x.nominees.count
        case .partyList(let x): x.entries.count
        case .proxyRegistration(let x): x.proxies.count
        case .observerMandate(let x): x.observers.count
        case .foreignObserverAccreditation(let x): x.observers.count
        case .mediaAccreditation(let x): x.journalists.count
        case .pollingStationProposal(let x): x.stations.count
        case .pollingStationAbroad(let x): x.stations.count
        case .constituencyProposal(let x): x.constituencies.count
        case .territorialCommissionMembers(let x): x.nominees.count
        case .lowerCommissionMembers(let x): x.nominees.count
        case .partyAuthorizedRepresentative, .partyAdmission, .nominationRevocation, .candidateWithdrawal, .proxyRevocation, .commissionReport, nil: 0
        }
    }
}
