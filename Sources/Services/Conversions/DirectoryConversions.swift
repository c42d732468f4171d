// The one place where directory records meet the esaylov.v1 wire types (directory.proto).
import Domain
import ESaylovAPI
import Store

/// A wire Timestamp for seconds since 1970, held to the range Timestamp allows (0001-01-01
/// to 9999-12-31): the schema refuses infinite times, and this never traps on one anyway.
func timestamp(_ epoch: Double) -> Google_Protobuf_Timestamp {
    let range = -62_135_596_800.0...253_402_300_799.0
    let clamped = epoch.isNaN ? 0 : min(max(epoch, range.lowerBound), range.upperBound)
    var t = Google_Protobuf_Timestamp()
    let seconds = clamped.rounded(.down)
    t.seconds = Int64(seconds)
    t.nanos = Int32(min(999_999_999, ((clamped - seconds) * 1e9).rounded()))
    return t
}

/// A wire Timestamp for microseconds since 1970, exactly (the audit hash covers microseconds,
/// and a client recomputes it from `seconds` and `nanos`).
func timestamp(micros: Int) -> Google_Protobuf_Timestamp {
    let (seconds, rest) = micros.quotientAndRemainder(dividingBy: 1_000_000)
    var t = Google_Protobuf_Timestamp()
    t.seconds = Int64(rest < 0 ? seconds - 1 : seconds)
    t.nanos = Int32((rest < 0 ? rest + 1_000_000 : rest) * 1000)
    return t
}

extension TerritoryRecord {
    var wire: Esaylov_V1_Territory {
        var t = Esaylov_V1_Territory()
        t.soato = soato
        t.nameUz = nameUz
        t.nameEn = nameEn
        t.level = switch level {
        case "republic": .republic
        case "region": .region
        default: .district
        }
        t.parentSoato = parentSoato ?? ""
        return t
    }
}

extension OrganisationRecord {
    var wire: Esaylov_V1_Organisation {
        var o = Esaylov_V1_Organisation()
        o.id = id
        o.kind = kind.wire
        o.nameUz = nameUz
        o.nameEn = nameEn
        o.tin = tin ?? ""
        o.territory = territory.wire
        o.parentId = parentId ?? ""
        o.active = active
        o.createdAt = timestamp(createdAt)
        return o
    }
}

extension MemberRecord {
    var wire: Esaylov_V1_Member {
        var m = Esaylov_V1_Member()
        m.personId = personId
        var name = Esaylov_V1_PersonName()
        name.lastName = lastName
        name.firstName = firstName
        name.patronymic = patronymic
        m.name = name
        m.role = role.wire
        m.since = timestamp(since)
        // An open end ('infinity') is no end: unset, like a current membership's.
        if let until, until.isFinite { m.until = timestamp(until) }
        return m
    }
}

func personName(_ last: String, _ first: String, _ patronymic: String) -> Esaylov_V1_PersonName {
    var n = Esaylov_V1_PersonName()
    n.lastName = last
    n.firstName = first
    n.patronymic = patronymic
    return n
}

/// Candidate statuses: database spelling ↔ wire.
let candidateStatuses: [(String, Esaylov_V1_CandidateStatus)] = [
    ("nominated", .nominated), ("registered", .registered), ("refused", .refused), ("revoked", .revoked), ("withdrawn", .withdrawn),
]

extension CandidateRecord {
    var wire: Esaylov_V1_Candidate {
        var c = Esaylov_V1_Candidate()
        c.id = id
        c.personId = personId
        c.name = personName(lastName, firstName, patronymic)
        c.electionKind = electionKind.wire
        c.registeringCommissionId = registeringCommissionId
        c.constituencyNumber = Int32(constituencyNumber)
        c.partyId = partyId ?? ""
        c.listPosition = Int32(listPosition)
        c.status = candidateStatuses.first { $0.0 == status }?.1 ?? .unspecified
        c.decisionId = decisionId ?? ""
        c.campaignId = campaignId
        return c
    }
}

extension ProxyRecord {
    var wire: Esaylov_V1_Proxy {
        var p = Esaylov_V1_Proxy()
        p.id = id
        p.personId = personId
        p.name = personName(lastName, firstName, patronymic)
        p.candidateId = candidateId
        p.status = switch status {
        case "proposed": .proposed
        case "registered": .registered
        case "refused": .refused
        default: .ended
        }
        p.decisionId = decisionId ?? ""
        return p
    }
}
