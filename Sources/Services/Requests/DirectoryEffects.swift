import Domain
import ESaylovAPI
import Signatures
import Store

/// What a granted request changes in the directory, applied in the approving transaction
/// (domain.md, "A decision that grants a request has effects in the directory"): nominations
/// and party lists register candidates (with the form's phone, so that their SMS login works),
/// proxy registrations register proxies linked to their candidate (never a commission member,
/// never over the limit), revocations and withdrawals end them. Only granted items take
/// effect. A refusal (a string saying which item and why) leaves nothing behind: the caller
/// rolls the transaction back.
struct DirectoryEffects: Sendable {
    let store: DecisionStore
    let request: RequestRecord
    let form: Esaylov_V1_RequestForm
    let outcome: DecisionOutcome
    let items: [Esaylov_V1_ItemOutcome]
    let rule: TypeRule?
    let decisionId: String

    /// The indexes of the form's list that are granted.
    func granted(_ count: Int) -> [Int] {
        switch outcome {
        case .granted, .accepted: Array(0..<count)
        case .partlyGranted: items.filter { $0.outcome == .granted }.map { Int($0.itemIndex) }.filter { (0..<count).contains($0) }.sorted()
        case .refused, .returned: []
        }
    }

    var isGranted: Bool { outcome == .granted || outcome == .accepted || outcome == .partlyGranted }

    func effect(_ kind: Esaylov_V1_DirectoryEffect.Kind, _ record: String, person: String, item: Int) -> Esaylov_V1_DirectoryEffect {
        var e = Esaylov_V1_DirectoryEffect()
        e.kind = kind
        e.recordId = record
        e.personId = person
        e.itemIndex = Int32(item)
        return e
    }

    func newPerson(_ p: Esaylov_V1_PersonDetails) -> DecisionStore.NewPerson {
        DecisionStore.NewPerson(
            pinfl: p.pinfl, lastName: p.name?.lastName ?? "", firstName: p.name?.firstName ?? "", patronymic: p.name?.patronymic ?? "",
            phone: p.phone.isEmpty ? nil : p.phone, birthDate: Day(p.birthDate))
    }

    func person(_ c: Connection, _ p: Esaylov_V1_PersonDetails?, item: Int) throws(StoreError) -> Result<String, EffectRefusal> {
        guard let p else { return .failure(EffectRefusal("item \(item) names no person")) }
        switch try store.people(c, [newPerson(p)]) {
        case .success(let ids): return .success(ids[0])
        case .failure: return .failure(EffectRefusal("item \(item): the phone is registered to another person in the directory"))
        }
    }

    /// A granted item that registers a candidate.
    struct Nominee {
        let item: Int
        let person: Esaylov_V1_PersonDetails?
        let constituency: Int
        let position: Int
    }

    /// Registers `nominees` as candidates of `election` (their people first, created where
    /// the directory has none), a few statements for the whole form.
    func candidates(_ c: Connection, _ nominees: [Nominee], election: ElectionKind) throws(StoreError) -> Result<[Esaylov_V1_DirectoryEffect], EffectRefusal> {
        var people: [DecisionStore.NewPerson] = []
        for n in nominees {
            guard let p = n.person else { return .failure(EffectRefusal("item \(n.item) names no person")) }
            people.append(newPerson(p))
        }
        let personIds: [String]
        switch try store.people(c, people) {
        case .success(let ids): personIds = ids
        case .failure(let taken): return .failure(EffectRefusal("item \(nominees[taken.index].item): the phone is registered to another person in the directory"))
        }
        let ids = nominees.map { _ in "cand-" + Crypto.hex(Crypto.randomBytes(8)) }
        try store.registerCandidates(
            c, ids: ids, personIds: personIds, election: election, commissionId: request.receiverId, constituencies: nominees.map(\.constituency),
            partyId: request.sender.organisationId, listPositions: nominees.map(\.position), campaignId: request.campaignId, decisionId: decisionId)
        return .success(nominees.indices.map { effect(.candidateRegistered, ids[$0], person: personIds[$0], item: nominees[$0].item) })
    }

    /// A granted item that issues a mandate or accreditation.
    struct Holder {
        let item: Int
        let name: Esaylov_V1_PersonName?
        let pinfl: String?
        let passport: String?
        let station: Int?
    }

    /// Mandates or accreditations of `kind` for `holders`, numbered "<commission>:<decision
    /// number>-<place in the form>" (decision numbers run per commission: the commission makes
    /// the number unique), in one statement.
    func mandates(_ c: Connection, kind: String, number: String, _ holders: [Holder]) throws(StoreError) -> [Esaylov_V1_DirectoryEffect] {
        let issued = holders.map { h in
            let name = [h.name?.lastName, h.name?.firstName, h.name?.patronymic].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
            return DecisionStore.NewMandate(
                id: "mandate-" + Crypto.hex(Crypto.randomBytes(8)), item: h.item, number: "\(request.receiverId):\(number)-\(h.item + 1)",
                holderName: name.isEmpty ? "—" : name, pinfl: h.pinfl.flatMap { $0.isEmpty ? nil : $0 },
                passport: h.passport.flatMap { $0.isEmpty ? nil : $0 }, pollingStation: h.station)
        }
        try store.issueMandates(c, decisionId: decisionId, kind: kind, issued)
        return issued.map { m in
            var e = effect(.mandateIssued, m.id, person: "", item: m.item)
            e.documentNumber = m.number
            return e
        }
    }

    func apply(_ c: Connection, number: String) throws(StoreError) -> Result<[Esaylov_V1_DirectoryEffect], EffectRefusal> {
        var out: [Esaylov_V1_DirectoryEffect] = []
        switch form.form {
        case .candidateNomination(let x):
            guard let election = ElectionKind(x.electionKind) else { return .failure(EffectRefusal("the form names no election")) }
            let nominees = granted(x.nominees.count).map { Nominee(item: $0, person: x.nominees[$0].person, constituency: Int(x.nominees[$0].constituencyNumber), position: 0) }
            switch try candidates(c, nominees, election: election) {
            case .success(let e): out += e
            case .failure(let why): return .failure(why)
            }
        case .partyList(let x):
            let entries = granted(x.entries.count).map { Nominee(item: $0, person: x.entries[$0].person, constituency: 0, position: Int(x.entries[$0].position)) }
            switch try candidates(c, entries, election: .legislativeChamber) {
            case .success(let e): out += e
            case .failure(let why): return .failure(why)
            }
        case .proxyRegistration(let x):
            guard let candidate = request.sender.candidateId else { return .failure(EffectRefusal("only a candidate registers proxies")) }
            let chosen = granted(x.proxies.count)
            let existing = try store.proxyCount(c, candidateId: candidate)
            let facts = try c.run(RequestStore().candidateFacts(id: candidate))
            if let limit = rule?.limit("max_proxies", election: facts?.electionKind), existing + chosen.count > limit {
                return .failure(EffectRefusal("the candidate would have \(existing + chosen.count) proxies, over the limit of \(limit)"))
            }
            for i in chosen {
                let p = x.proxies[i].person
                if try store.sitsOnACommission(c, pinfl: p?.pinfl ?? "") { return .failure(EffectRefusal("item \(i): a proxy may not sit on an election commission")) }
                let personId: String
                switch try person(c, p, item: i) {
                case .success(let id): personId = id
                case .failure(let why): return .failure(why)
                }
                let id = "proxy-" + Crypto.hex(Crypto.randomBytes(8))
                try store.registerProxy(c, id: id, personId: personId, candidateId: candidate, decisionId: decisionId)
                out.append(effect(.proxyRegistered, id, person: personId, item: i))
            }
        case .proxyRevocation(let x):
            if isGranted, let person = try store.endProxy(c, id: x.proxyId, decisionId: decisionId) {
                out.append(effect(.proxyEnded, x.proxyId, person: person, item: 0))
            }
        case .candidateWithdrawal:
            if isGranted, let id = request.sender.candidateId, let person = try store.endCandidate(c, id: id, status: "withdrawn", decisionId: decisionId) {
                out.append(effect(.candidateEnded, id, person: person, item: 0))
            }
        case .nominationRevocation(let x):
            if isGranted {
                guard let facts = try c.run(RequestStore().candidateFacts(id: x.candidateId)) else { return .failure(EffectRefusal("the candidate is gone")) }
                if let person = try store.endCandidate(c, id: x.candidateId, status: "revoked", decisionId: decisionId) {
                    out.append(effect(.candidateEnded, x.candidateId, person: person, item: 0))
                }
                if let r = x.replacement {
                    switch try candidates(c, [Nominee(item: 0, person: r.person, constituency: Int(r.constituencyNumber), position: 0)], election: facts.electionKind) {
                    case .success(let e): out += e
                    case .failure(let why): return .failure(why)
                    }
                }
            }
        case .observerMandate(let x):
            out += try mandates(c, kind: "observer", number: number, granted(x.observers.count).map { i in
                Holder(item: i, name: x.observers[i].person?.name, pinfl: x.observers[i].person?.pinfl, passport: nil, station: Int(x.observers[i].pollingStationNumber))
            })
        case .foreignObserverAccreditation(let x):
            out += try mandates(c, kind: "foreign_observer", number: number, granted(x.observers.count).map { i in
                Holder(item: i, name: x.observers[i].name, pinfl: nil, passport: x.observers[i].passportNumber, station: nil)
            })
        case .mediaAccreditation(let x):
            out += try mandates(c, kind: "journalist", number: number, granted(x.journalists.count).map { i in
                Holder(item: i, name: x.journalists[i].name, pinfl: x.journalists[i].pinfl, passport: x.journalists[i].passportNumber, station: nil)
            })
        default:
            // Stations, constituencies, members, admissions and reports are decided and delivered;
            // the directory holds no record of them.
            break
        }
        return .success(out)
    }
}

/// Why a decision's directory effect cannot apply: the item and the rule.
struct EffectRefusal: Error {
    let why: String
    init(_ why: String) { self.why = why }
}
