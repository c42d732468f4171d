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

    func person(_ c: Connection, _ p: Esaylov_V1_PersonDetails?, item: Int) throws(StoreError) -> Result<String, EffectRefusal> {
        guard let p else { return .failure(EffectRefusal("item \(item) names no person")) }
        let id = "p-" + Crypto.hex(Crypto.randomBytes(8))
        guard let found = try store.person(
            c, newId: id, pinfl: p.pinfl, lastName: p.name?.lastName ?? "", firstName: p.name?.firstName ?? "", patronymic: p.name?.patronymic ?? "",
            phone: p.phone.isEmpty ? nil : p.phone, birthDate: Day(p.birthDate))
        else { return .failure(EffectRefusal("item \(item): the phone is registered to another person in the directory")) }
        return .success(found)
    }

    func candidate(
        _ c: Connection, _ p: Esaylov_V1_PersonDetails?, item: Int, election: ElectionKind, constituency: Int, position: Int
    ) throws(StoreError) -> Result<Esaylov_V1_DirectoryEffect, EffectRefusal> {
        let personId: String
        switch try person(c, p, item: item) {
        case .success(let id): personId = id
        case .failure(let why): return .failure(why)
        }
        let id = "cand-" + Crypto.hex(Crypto.randomBytes(8))
        try store.registerCandidate(c, id: id, personId: personId, election: election, commissionId: request.receiverId, constituency: constituency,
                                    partyId: request.sender.organisationId, listPosition: position, campaignId: request.campaignId, decisionId: decisionId)
        return .success(effect(.candidateRegistered, id, person: personId, item: item))
    }

    /// A mandate or accreditation numbered "<decision number>-<place in the form>".
    func mandate(
        _ c: Connection, kind: String, item: Int, number: String, name: Esaylov_V1_PersonName?, pinfl: String?, passport: String?, station: Int?
    ) throws(StoreError) -> Esaylov_V1_DirectoryEffect {
        let id = "mandate-" + Crypto.hex(Crypto.randomBytes(8))
        let document = "\(number)-\(item + 1)"
        let holder = [name?.lastName, name?.firstName, name?.patronymic].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
        try store.issueMandate(c, id: id, decisionId: decisionId, kind: kind, item: item, number: document, holderName: holder.isEmpty ? "—" : holder,
                               pinfl: pinfl.flatMap { $0.isEmpty ? nil : $0 }, passport: passport.flatMap { $0.isEmpty ? nil : $0 }, pollingStation: station)
        var e = effect(.mandateIssued, id, person: "", item: item)
        e.documentNumber = document
        return e
    }

    func apply(_ c: Connection, number: String) throws(StoreError) -> Result<[Esaylov_V1_DirectoryEffect], EffectRefusal> {
        var out: [Esaylov_V1_DirectoryEffect] = []
        func add(_ r: Result<Esaylov_V1_DirectoryEffect, EffectRefusal>) -> EffectRefusal? {
            switch r {
            case .success(let e): out.append(e); return nil
            case .failure(let why): return why
            }
        }
        switch form.form {
        case .candidateNomination(let x):
            guard let election = ElectionKind(x.electionKind) else { return .failure(EffectRefusal("the form names no election")) }
            for i in granted(x.nominees.count) {
                let n = x.nominees[i]
                if let why = add(try candidate(c, n.person, item: i, election: election, constituency: Int(n.constituencyNumber), position: 0)) { return .failure(why) }
            }
        case .partyList(let x):
            for i in granted(x.entries.count) {
                let e = x.entries[i]
                if let why = add(try candidate(c, e.person, item: i, election: ElectionKind.legislativeChamber, constituency: 0, position: Int(e.position))) { return .failure(why) }
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
                    if let why = add(try candidate(c, r.person, item: 0, election: facts.electionKind, constituency: Int(r.constituencyNumber), position: 0)) {
                        return .failure(why)
                    }
                }
            }
        case .observerMandate(let x):
            for i in granted(x.observers.count) {
                let o = x.observers[i]
                out.append(try mandate(c, kind: "observer", item: i, number: number, name: o.person?.name, pinfl: o.person?.pinfl, passport: nil,
                                       station: Int(o.pollingStationNumber)))
            }
        case .foreignObserverAccreditation(let x):
            for i in granted(x.observers.count) {
                let o = x.observers[i]
                out.append(try mandate(c, kind: "foreign_observer", item: i, number: number, name: o.name, pinfl: nil, passport: o.passportNumber, station: nil))
            }
        case .mediaAccreditation(let x):
            for i in granted(x.journalists.count) {
                let j = x.journalists[i]
                out.append(try mandate(c, kind: "journalist", item: i, number: number, name: j.name, pinfl: j.pinfl, passport: j.passportNumber, station: nil))
            }
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
