import ESaylovAPI

/// Clause 13: what a commission above the receiver sees of a form — its shape and counts, not
/// the personal data of the people in it (PINFL, birth date, phone, address, passport number).
enum Redaction {
    static func clear(_ p: inout Esaylov_V1_PersonDetails?) {
        guard var x = p else { return }
        x.pinfl = ""
        x.birthDate = nil
        x.phone = ""
        x.address = ""
        p = x
    }

    static func clearPersonalData(_ form: Esaylov_V1_RequestForm) -> Esaylov_V1_RequestForm {
        guard let f = form.form else { return form }
        var out = form
        switch f {
        case .partyAuthorizedRepresentative(var x):
            clear(&x.representative)
            out.form = .partyAuthorizedRepresentative(x)
        case .candidateNomination(var x):
            for i in x.nominees.indices { clear(&x.nominees[i].person) }
            out.form = .candidateNomination(x)
        case .partyList(var x):
            for i in x.entries.indices { clear(&x.entries[i].person) }
            out.form = .partyList(x)
        case .nominationRevocation(var x):
            if var r = x.replacement {
                clear(&r.person)
                x.replacement = r
            }
            out.form = .nominationRevocation(x)
        case .proxyRegistration(var x):
            for i in x.proxies.indices { clear(&x.proxies[i].person) }
            out.form = .proxyRegistration(x)
        case .observerMandate(var x):
            for i in x.observers.indices { clear(&x.observers[i].person) }
            out.form = .observerMandate(x)
        case .foreignObserverAccreditation(var x):
            for i in x.observers.indices {
                x.observers[i].passportNumber = ""
                x.observers[i].birthDate = nil
            }
            out.form = .foreignObserverAccreditation(x)
        case .mediaAccreditation(var x):
            for i in x.journalists.indices {
                x.journalists[i].pinfl = ""
                x.journalists[i].passportNumber = ""
            }
            out.form = .mediaAccreditation(x)
        case .territorialCommissionMembers(var x):
            for i in x.nominees.indices { clear(&x.nominees[i].person) }
            out.form = .territorialCommissionMembers(x)
        case .lowerCommissionMembers(var x):
            for i in x.nominees.indices { clear(&x.nominees[i].person) }
            out.form = .lowerCommissionMembers(x)
        case .partyAdmission, .candidateWithdrawal, .proxyRevocation, .pollingStationProposal, .pollingStationAbroad, .constituencyProposal,
            .commissionReport:
            break
        }
        return out
    }
}
