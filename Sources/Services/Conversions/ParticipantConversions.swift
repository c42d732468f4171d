// The one place where the participants' vocabulary meets the esaylov.v1 wire types
// (common.proto). Exhaustive switches: a new case on either side does not compile until it
// is mapped here.
public import Domain
public import ESaylovAPI

extension OrganisationKind {
    /// The domain value of a wire value; nil for UNSPECIFIED and values this build does not know.
    public init?(_ wire: Esaylov_V1_OrganisationKind) {
        switch wire {
        case .centralElectionCommission: self = .centralElectionCommission
        case .karakalpakstanElectionCommission: self = .karakalpakstanElectionCommission
        case .territorialElectionCommission: self = .territorialElectionCommission
        case .districtElectionCommission: self = .districtElectionCommission
        case .politicalParty: self = .politicalParty
        case .partyBranch: self = .partyBranch
        case .jokargyKenes: self = .jokargyKenes
        case .regionalCouncil: self = .regionalCouncil
        case .districtCouncil: self = .districtCouncil
        case .karakalpakstanCouncilOfMinisters: self = .karakalpakstanCouncilOfMinisters
        case .regionalHokimiyat: self = .regionalHokimiyat
        case .districtHokimiyat: self = .districtHokimiyat
        case .ministryOfForeignAffairs: self = .ministryOfForeignAffairs
        case .mahalla: self = .mahalla
        case .localMedia: self = .localMedia
        case .foreignMedia: self = .foreignMedia
        case .internationalMedia: self = .internationalMedia
        case .foreignObserverOrganisation: self = .foreignObserverOrganisation
        case .internationalObserverOrganisation: self = .internationalObserverOrganisation
        case .unspecified, .unrecognized: return nil
        }
    }

    /// The wire value.
    public var wire: Esaylov_V1_OrganisationKind {
        switch self {
        case .centralElectionCommission: .centralElectionCommission
        case .karakalpakstanElectionCommission: .karakalpakstanElectionCommission
        case .territorialElectionCommission: .territorialElectionCommission
        case .districtElectionCommission: .districtElectionCommission
        case .politicalParty: .politicalParty
        case .partyBranch: .partyBranch
        case .jokargyKenes: .jokargyKenes
        case .regionalCouncil: .regionalCouncil
        case .districtCouncil: .districtCouncil
        case .karakalpakstanCouncilOfMinisters: .karakalpakstanCouncilOfMinisters
        case .regionalHokimiyat: .regionalHokimiyat
        case .districtHokimiyat: .districtHokimiyat
        case .ministryOfForeignAffairs: .ministryOfForeignAffairs
        case .mahalla: .mahalla
        case .localMedia: .localMedia
        case .foreignMedia: .foreignMedia
        case .internationalMedia: .internationalMedia
        case .foreignObserverOrganisation: .foreignObserverOrganisation
        case .internationalObserverOrganisation: .internationalObserverOrganisation
        }
    }
}
extension Role {
    /// The domain value of a wire value; nil for UNSPECIFIED and values this build does not know.
    public init?(_ wire: Esaylov_V1_Role) {
        switch wire {
        case .head: self = .head
        case .chairperson: self = .chairperson
        case .deputyChairperson: self = .deputyChairperson
        case .secretary: self = .secretary
        case .member: self = .member
        case .clerk: self = .clerk
        case .operator: self = .operator
        case .auditor: self = .auditor
        case .unspecified, .unrecognized: return nil
        }
    }

    /// The wire value.
    public var wire: Esaylov_V1_Role {
        switch self {
        case .head: .head
        case .chairperson: .chairperson
        case .deputyChairperson: .deputyChairperson
        case .secretary: .secretary
        case .member: .member
        case .clerk: .clerk
        case .operator: .operator
        case .auditor: .auditor
        }
    }
}
extension ElectionKind {
    /// The domain value of a wire value; nil for UNSPECIFIED and values this build does not know.
    public init?(_ wire: Esaylov_V1_ElectionKind) {
        switch wire {
        case .legislativeChamber: self = .legislativeChamber
        case .jokargyKenes: self = .jokargyKenes
        case .regionalCouncil: self = .regionalCouncil
        case .districtCouncil: self = .districtCouncil
        case .president: self = .president
        case .unspecified, .unrecognized: return nil
        }
    }

    /// The wire value.
    public var wire: Esaylov_V1_ElectionKind {
        switch self {
        case .legislativeChamber: .legislativeChamber
        case .jokargyKenes: .jokargyKenes
        case .regionalCouncil: .regionalCouncil
        case .districtCouncil: .districtCouncil
        case .president: .president
        }
    }
}
