import Domain
import ESaylovAPI
import Store

/// What a form says beyond its fields' validity, for the checks that need the directory.
struct FormFacts {
    /// The election the form names (forms 2, 3, 14).
    var electionKind: ElectionKind?
    /// The candidate record the form is about (form 5).
    var candidateId: String?
    /// The proxy record the form is about (form 8).
    var proxyId: String?
    var proxyReason: Esaylov_V1_ProxyRevocationReason = .unspecified
    /// PINFLs of proposed proxies (form 7), with their field paths.
    var proposedProxies: [(field: String, pinfl: String)] = []
}

/// Per-form checks of forms.proto: every fault of a form is collected and reported together,
/// each naming its field path ("form.candidate_nomination.nominees[2].person.pinfl") and rule.
/// Limits come from the campaign's catalogue; structural caps (lengths, counts) are fixed here
/// and documented in docs/requests.md.
struct FormValidator {
    let rule: TypeRule
    let campaign: CampaignRecord
    /// SHA-256s of the request's attachments (consents and scans must be among them).
    let attachments: Set<String>
    /// The sender's territory (polling stations, constituencies).
    let senderTerritory: SOATO

    static let maxItems = 500
    static let maxName = 100
    static let maxLine = 300
    static let maxAddress = 500
    static let maxStatement = 5000
    static let maxReportText = 20_000

    var faults: [DomainViolation] = []
    var facts = FormFacts()

    init(rule: TypeRule, campaign: CampaignRecord, attachments: Set<String>, senderTerritory: SOATO) {
        self.rule = rule
        self.campaign = campaign
        self.attachments = attachments
        self.senderTerritory = senderTerritory
    }

    mutating func fault(_ field: String, _ rule: String) { faults.append(DomainViolation(field: field, rule: rule)) }

    // MARK: pieces

    mutating func text(_ v: String, _ f: String, max: Int, required: Bool = true) {
        FormRules.text(v, field: f, max: max, required: required, into: &faults)
        if v.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && $0 != "\n" && $0 != "\t" }) {
            fault(f, "must not contain control characters")
        }
    }

    mutating func count(_ n: Int, _ f: String, min: Int = 1, max: Int = FormValidator.maxItems) {
        FormRules.count(n, field: f, min: min, max: max, into: &faults)
    }

    mutating func name(_ n: Esaylov_V1_PersonName?, _ f: String) {
        guard let n else { return fault(f, "is required") }
        text(n.lastName, "\(f).last_name", max: Self.maxName)
        text(n.firstName, "\(f).first_name", max: Self.maxName)
        text(n.patronymic, "\(f).patronymic", max: Self.maxName, required: false)
    }

    mutating func date(_ d: Esaylov_V1_CalendarDate?, _ f: String, required: Bool = true) -> Day? {
        guard let d else {
            if required { fault(f, "is required") }
            return nil
        }
        guard let day = Day(d) else {
            fault(f, "is not a calendar date")
            return nil
        }
        return day
    }

    mutating func sha(_ v: String, _ f: String, required: Bool) {
        if v.isEmpty {
            if required { fault(f, "is required: the SHA-256 of an attachment of the request") }
            return
        }
        guard isSHA256Hex(v) else {
            return fault(f, "must be 64 lower-case hex digits")
        }
        if !attachments.contains(v) { fault(f, "must be the SHA-256 of one of the request's attachments") }
    }

    mutating func document(_ d: Esaylov_V1_DocumentReference?, _ f: String, required: Bool = true) -> Day? {
        guard let d else {
            if required { fault(f, "is required") }
            return nil
        }
        text(d.number, "\(f).number", max: 100)
        sha(d.attachmentSha256, "\(f).attachment_sha256", required: false)
        return date(d.date, "\(f).date")
    }

    mutating func country(_ v: String, _ f: String) {
        if !(v.utf8.count == 2 && v.utf8.allSatisfy { $0 >= 65 && $0 <= 90 }) { fault(f, "must be an ISO 3166-1 alpha-2 code (two capital letters)") }
    }

    mutating func passport(_ v: String, _ f: String) {
        if !(5...20).contains(v.utf8.count) || !v.utf8.allSatisfy({ ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) }) {
            fault(f, "must be 5 to 20 capital letters and digits")
        }
    }

    /// A person put forward; returns the PINFL when valid.
    mutating func person(_ p: Esaylov_V1_PersonDetails?, _ f: String, minimumAge: Int?, phoneRequired: Bool) -> PINFL? {
        guard let p else {
            fault(f, "is required")
            return nil
        }
        name(p.name, "\(f).name")
        let birth = date(p.birthDate, "\(f).birth_date", required: false)
        text(p.occupation, "\(f).occupation", max: Self.maxLine, required: false)
        text(p.workplace, "\(f).workplace", max: Self.maxLine, required: false)
        text(p.address, "\(f).address", max: Self.maxAddress, required: false)
        return FormRules.person(
            FormRules.Person(field: f, pinfl: p.pinfl, birthDate: birth, phone: p.phone, phoneRequired: phoneRequired),
            minimumAge: minimumAge, electionDay: campaign.electionDay, into: &faults)
    }

    /// The same person twice in one form.
    mutating func unique(_ people: [(String, PINFL?)]) {
        var seen: Set<String> = []
        for (f, p) in people {
            guard let p else { continue }
            if !seen.insert(p.value).inserted { fault("\(f).pinfl", "the same person appears twice in the form") }
        }
    }

    mutating func election(_ e: Esaylov_V1_ElectionKind, _ f: String) {
        guard let kind = ElectionKind(e) else { return fault(f, "is required") }
        if !campaign.electionKinds.contains(kind) { fault(f, "names an election this campaign does not hold") }
        facts.electionKind = kind
    }

    mutating func id(_ v: String, _ f: String) {
        if !isRecordId(v) { fault(f, "must be an id: 2 to 64 lower-case letters, digits and hyphens") }
    }

    mutating func soato(_ v: String, _ f: String, digits: Int) -> SOATO? {
        guard v.utf8.count == digits, let s = try? SOATO(v, field: f) else {
            fault(f, "must be a SOATO code of \(digits) digits")
            return nil
        }
        return s
    }

    /// A district's or city's SOATO code: 7 digits, or 10 for a district of a city (territories.csv
    /// has two in Namangan).
    mutating func districtSOATO(_ v: String, _ f: String) -> SOATO? {
        guard v.utf8.count == 7 || v.utf8.count == 10, let s = try? SOATO(v, field: f) else {
            fault(f, "must be a district's or city's SOATO code (7 digits, or 10 for a district of a city)")
            return nil
        }
        return s
    }

    var minAge: Int? { rule.limit("min_age") }

    // MARK: forms

    mutating func check(_ form: Esaylov_V1_RequestForm.Form) {
        switch form {
        case .partyAuthorizedRepresentative(let x):
            let f = "form.party_authorized_representative"
            _ = person(x.representative, "\(f).representative", minimumAge: minAge, phoneRequired: true)
            _ = document(x.partyDecision, "\(f).party_decision")
        case .partyAdmission(let x):
            let f = "form.party_admission"
            election(x.electionKind, "\(f).election_kind")
            if let registered = document(x.justiceRegistration, "\(f).justice_registration"), let months = rule.limit("min_registered_months") {
                var y = campaign.announcedOn.year, m = campaign.announcedOn.month - months
                while m < 1 { m += 12; y -= 1 }
                let latest = Day(year: y, month: m, day: min(campaign.announcedOn.day, Day.length(of: m, in: y))) ?? campaign.announcedOn
                if registered > latest {
                    fault("\(f).justice_registration.date", "the party must be registered at least \(months) months before the campaign's announcement")
                }
            }
            count(x.signatures.count, "\(f).signatures", min: 0, max: 14)
            var regions: Set<String> = []
            var sum = 0
            for (i, s) in x.signatures.enumerated() {
                let g = "\(f).signatures[\(i)]"
                if soato(s.regionSoato, "\(g).region_soato", digits: 4) != nil, !regions.insert(s.regionSoato).inserted {
                    fault("\(g).region_soato", "each region appears once")
                }
                if s.sheets < 0 { fault("\(g).sheets", "must not be negative") }
                if s.signatures < 0 { fault("\(g).signatures", "must not be negative") }
                sum += Int(max(0, s.signatures))
            }
            if Int(x.totalSignatures) != sum { fault("\(f).total_signatures", "must equal the sum of the regions' signatures (\(sum))") }
            if let kind = facts.electionKind {
                if let min = rule.limit("min_signatures", election: kind), sum < min {
                    fault("\(f).total_signatures", "at least \(min) voters' signatures are required")
                }
                if let share = rule.limits.first(where: { $0.name == "max_region_share_percent" && $0.electionKind == kind })?.value, sum > 0 {
                    for (i, s) in x.signatures.enumerated() where Int(s.signatures) * 100 > share * sum {
                        fault("\(f).signatures[\(i)].signatures", "at most \(share)% of the signatures may come from one region")
                    }
                }
            }
            _ = document(x.partyDecision, "\(f).party_decision")
        case .candidateNomination(let x):
            let f = "form.candidate_nomination"
            election(x.electionKind, "\(f).election_kind")
            count(x.nominees.count, "\(f).nominees")
            var people: [(String, PINFL?)] = []
            var constituencies: Set<Int32> = []
            for (i, n) in x.nominees.prefix(Self.maxItems).enumerated() {
                let g = "\(f).nominees[\(i)]"
                people.append(("\(g).person", person(n.person, "\(g).person", minimumAge: minAge, phoneRequired: true)))
                if n.constituencyNumber < 1 { fault("\(g).constituency_number", "must be 1 or more") }
                else if !constituencies.insert(n.constituencyNumber).inserted { fault("\(g).constituency_number", "a party nominates one candidate per constituency") }
                sha(n.consentAttachmentSha256, "\(g).consent_attachment_sha256", required: false)
            }
            unique(people)
            if let share = rule.limit("min_women_percent", election: facts.electionKind) {
                FormRules.womenShare(people.compactMap(\.1), atLeast: share, field: "\(f).nominees", into: &faults)
            }
            _ = document(x.partyDecision, "\(f).party_decision")
        case .partyList(let x):
            let f = "form.party_list"
            count(x.entries.count, "\(f).entries")
            var people: [(String, PINFL?)] = []
            for (i, e) in x.entries.prefix(Self.maxItems).enumerated() {
                let g = "\(f).entries[\(i)]"
                if e.position != Int32(i + 1) { fault("\(g).position", "places run from 1 in order without gaps (expected \(i + 1))") }
                people.append(("\(g).person", person(e.person, "\(g).person", minimumAge: minAge, phoneRequired: true)))
                sha(e.consentAttachmentSha256, "\(g).consent_attachment_sha256", required: false)
            }
            unique(people)
            if let women = rule.limit("min_women_in_five"), people.allSatisfy({ $0.1 != nil }) {
                FormRules.womenInEveryRun(people.compactMap(\.1), women: women, field: { "\(f).entries[\($0)]" }, into: &faults)
            }
            _ = document(x.partyDecision, "\(f).party_decision")
        case .nominationRevocation(let x):
            let f = "form.nomination_revocation"
            id(x.candidateId, "\(f).candidate_id")
            facts.candidateId = x.candidateId
            text(x.reason, "\(f).reason", max: Self.maxStatement)
            if let r = x.replacement {
                let g = "\(f).replacement"
                _ = person(r.person, "\(g).person", minimumAge: minAge, phoneRequired: true)
                if r.constituencyNumber < 1 { fault("\(g).constituency_number", "must be 1 or more") }
                sha(r.consentAttachmentSha256, "\(g).consent_attachment_sha256", required: false)
            }
            _ = document(x.partyDecision, "\(f).party_decision")
        case .candidateWithdrawal(let x):
            text(x.statement, "form.candidate_withdrawal.statement", max: Self.maxStatement)
        case .proxyRegistration(let x):
            let f = "form.proxy_registration"
            count(x.proxies.count, "\(f).proxies")
            var people: [(String, PINFL?)] = []
            for (i, p) in x.proxies.prefix(Self.maxItems).enumerated() {
                let g = "\(f).proxies[\(i)].person"
                let pinfl = person(p.person, g, minimumAge: minAge, phoneRequired: true)
                people.append((g, pinfl))
                if let pinfl { facts.proposedProxies.append((g, pinfl.value)) }
                sha(p.consentAttachmentSha256, "\(f).proxies[\(i)].consent_attachment_sha256", required: false)
            }
            unique(people)
        case .proxyRevocation(let x):
            let f = "form.proxy_revocation"
            id(x.proxyId, "\(f).proxy_id")
            facts.proxyId = x.proxyId
            facts.proxyReason = x.reason
            if x.reason == .unspecified { fault("\(f).reason", "is required") }
            text(x.explanation, "\(f).explanation", max: Self.maxStatement, required: false)
        case .observerMandate(let x):
            let f = "form.observer_mandate"
            count(x.observers.count, "\(f).observers")
            var people: [(String, PINFL?)] = []
            for (i, o) in x.observers.prefix(Self.maxItems).enumerated() {
                let g = "\(f).observers[\(i)]"
                people.append(("\(g).person", person(o.person, "\(g).person", minimumAge: minAge, phoneRequired: false)))
                if o.pollingStationNumber < 1 { fault("\(g).polling_station_number", "must be 1 or more") }
            }
            unique(people)
        case .foreignObserverAccreditation(let x):
            let f = "form.foreign_observer_accreditation"
            count(x.observers.count, "\(f).observers")
            var passports: Set<String> = []
            for (i, o) in x.observers.prefix(Self.maxItems).enumerated() {
                let g = "\(f).observers[\(i)]"
                name(o.name, "\(g).name")
                passport(o.passportNumber, "\(g).passport_number")
                if !passports.insert(o.country + o.passportNumber).inserted { fault("\(g).passport_number", "the same passport appears twice in the form") }
                country(o.country, "\(g).country")
                text(o.organisation, "\(g).organisation", max: Self.maxLine)
                _ = date(o.birthDate, "\(g).birth_date", required: false)
            }
        case .mediaAccreditation(let x):
            let f = "form.media_accreditation"
            text(x.outletName, "\(f).outlet_name", max: Self.maxLine)
            if ![.localMedia, .foreignMedia, .internationalMedia].contains(OrganisationKind(x.outletKind)) {
                fault("\(f).outlet_kind", "must be local, foreign or international media")
            }
            country(x.outletCountry, "\(f).outlet_country")
            count(x.journalists.count, "\(f).journalists")
            for (i, j) in x.journalists.prefix(Self.maxItems).enumerated() {
                let g = "\(f).journalists[\(i)]"
                name(j.name, "\(g).name")
                switch (j.pinfl.isEmpty, j.passportNumber.isEmpty) {
                case (false, true): do { _ = try PINFL(j.pinfl, field: "\(g).pinfl") } catch { faults.append(error) }
                case (true, false): passport(j.passportNumber, "\(g).passport_number")
                default: fault("\(g).pinfl", "exactly one of pinfl (citizens) and passport_number (foreigners) is required")
                }
                country(j.country, "\(g).country")
                if j.role == .unspecified { fault("\(g).role", "is required") }
            }
        case .pollingStationProposal(let x):
            let f = "form.polling_station_proposal"
            if let d = districtSOATO(x.districtSoato, "\(f).district_soato"), !senderTerritory.contains(d) {
                fault("\(f).district_soato", "must be the sender's own district or city")
            }
            count(x.stations.count, "\(f).stations")
            var numbers: Set<Int32> = []
            let minVoters = rule.limit("min_station_voters"), maxVoters = rule.limit("max_station_voters")
            for (i, s) in x.stations.prefix(Self.maxItems).enumerated() {
                let g = "\(f).stations[\(i)]"
                if s.change == .unspecified { fault("\(g).change", "is required") }
                if s.number < 1 { fault("\(g).number", "must be 1 or more") } else if !numbers.insert(s.number).inserted {
                    fault("\(g).number", "each station appears once")
                }
                let abolish = s.change == .abolish
                text(s.address, "\(g).address", max: Self.maxAddress, required: !abolish)
                text(s.boundaries, "\(g).boundaries", max: Self.maxStatement, required: false)
                if !abolish, let lo = minVoters, let hi = maxVoters, !(lo...hi).contains(Int(s.voterCount)) {
                    fault("\(g).voter_count", "a polling station serves \(lo) to \(hi) voters")
                }
            }
        case .pollingStationAbroad(let x):
            let f = "form.polling_station_abroad"
            count(x.stations.count, "\(f).stations", max: 200)
            for (i, s) in x.stations.prefix(200).enumerated() {
                let g = "\(f).stations[\(i)]"
                if s.change == .unspecified { fault("\(g).change", "is required") }
                text(s.mission, "\(g).mission", max: Self.maxLine)
                country(s.country, "\(g).country")
                if s.country == "UZ" { fault("\(g).country", "a station abroad is outside Uzbekistan") }
                text(s.address, "\(g).address", max: Self.maxAddress)
                if s.voterCount < 0 || s.voterCount > 100_000 { fault("\(g).voter_count", "must be 0 to 100000") }
                if !s.attachedDistrictSoato.isEmpty { _ = districtSOATO(s.attachedDistrictSoato, "\(g).attached_district_soato") }
            }
        case .constituencyProposal(let x):
            let f = "form.constituency_proposal"
            election(x.electionKind, "\(f).election_kind")
            count(x.constituencies.count, "\(f).constituencies")
            var numbers: Set<Int32> = []
            var voters: [(Int, Int)] = []
            for (i, k) in x.constituencies.prefix(Self.maxItems).enumerated() {
                let g = "\(f).constituencies[\(i)]"
                if k.change == .unspecified { fault("\(g).change", "is required") }
                if k.number < 1 { fault("\(g).number", "must be 1 or more") } else if !numbers.insert(k.number).inserted {
                    fault("\(g).number", "each constituency appears once")
                }
                text(k.name, "\(g).name", max: Self.maxLine, required: k.change != .abolish)
                count(k.territorySoato.count, "\(g).territory_soato", min: k.change == .abolish ? 0 : 1, max: 50)
                for (j, t) in k.territorySoato.prefix(50).enumerated() {
                    let h = "\(g).territory_soato[\(j)]"
                    if let s = try? SOATO(t, field: h) {
                        if !senderTerritory.contains(s) { fault(h, "must lie in the sender's territory") }
                    } else {
                        fault(h, "must be a SOATO code")
                    }
                }
                text(k.boundaries, "\(g).boundaries", max: Self.maxStatement, required: false)
                text(k.commissionSeat, "\(g).commission_seat", max: Self.maxAddress, required: false)
                if k.change != .abolish {
                    if k.voterCount < 1 { fault("\(g).voter_count", "must be 1 or more") } else { voters.append((i, Int(k.voterCount))) }
                }
            }
            if let pct = rule.limit("max_voter_deviation_percent") {
                FormRules.withinMean(voters.map(\.1), percent: pct, field: { "\(f).constituencies[\(voters[$0].0)].voter_count" }, into: &faults)
            }
        case .territorialCommissionMembers(let x):
            let f = "form.territorial_commission_members"
            id(x.commissionId, "\(f).commission_id")
            nominees(x.nominees, "\(f).nominees")
            _ = document(x.councilDecision, "\(f).council_decision")
        case .lowerCommissionMembers(let x):
            let f = "form.lower_commission_members"
            switch x.level {
            case .unspecified, .unrecognized: fault("\(f).level", "is required")
            case .district:
                if x.commissionNumber != 0 { fault("\(f).commission_number", "is 0 for a district commission") }
                id(x.districtCommissionId, "\(f).district_commission_id")
            case .constituency, .precinct:
                if x.commissionNumber < 1 { fault("\(f).commission_number", "must be 1 or more") }
            }
            nominees(x.nominees, "\(f).nominees")
            _ = document(x.councilDecision, "\(f).council_decision")
        case .commissionReport(let x):
            text(x.subject, "form.commission_report.subject", max: Self.maxLine)
            text(x.text, "form.commission_report.text", max: Self.maxReportText)
        }
    }

    mutating func nominees(_ list: [Esaylov_V1_CommissionNominee], _ f: String) {
        count(list.count, f)
        var people: [(String, PINFL?)] = []
        for (i, n) in list.prefix(Self.maxItems).enumerated() {
            let g = "\(f)[\(i)]"
            people.append(("\(g).person", person(n.person, "\(g).person", minimumAge: minAge, phoneRequired: false)))
            if let role = Role(n.proposedRole), [.chairperson, .deputyChairperson, .secretary, .member].contains(role) {} else {
                fault("\(g).proposed_role", "must be a commission role: chairperson, deputy chairperson, secretary or member")
            }
            text(n.sector, "\(g).sector", max: Self.maxLine, required: false)
        }
        unique(people)
    }
}
