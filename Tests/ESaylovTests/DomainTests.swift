import Domain
import ESaylovAPI
import Services
import Testing

@Suite("Identifiers")
struct IdentifierTests {
    @Test(arguments: ["31210632040244", "31210932040247", "40201902050010"])
    func pinflExamplesFromTheDomainPagePass(text: String) throws {
        let p = try PINFL(text)
        #expect(p.value == text)
    }

    @Test func pinflDecodesBirthAndSex() throws {
        let p = try PINFL("31210632040244")
        #expect(p.birthYear == 1963 && p.birthMonth == 10 && p.birthDay == 12)  // "121063"
        #expect(p.isMale)
        #expect(try PINFL("40201902050010").isMale == false)
        #expect("\(p)" == "31**********44")  // never printed whole
    }

    @Test(arguments: [
        ("31210632040245", "check digit"), ("3121063204024", "14 digits"), ("3121063204024x", "14 digits"),
        ("71210632040244", "first digit"), ("", "14 digits"),
    ])
    func pinflRulesNameTheRule(text: String, rule: String) {
        do {
            _ = try PINFL(text, field: "form.nominees.pinfl")
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.field == "form.nominees.pinfl")
            #expect(error.rule.contains(rule))
            #expect(!error.description.contains(text) || text.isEmpty)  // the value is not echoed
        }
    }

    @Test func tinSoatoPhone() throws {
        #expect(try TIN("201234567").isLegalEntity)
        #expect(try TIN("412345678").isLegalEntity == false)
        #expect(throws: DomainViolation.self) { try TIN("112345678") }
        #expect(throws: DomainViolation.self) { try TIN("20123456") }
        let samarkand = try SOATO("1718")
        #expect(samarkand.contains(try SOATO("1718203")))
        #expect(!samarkand.contains(try SOATO("1706204")))
        #expect(try SOATO("1718203").region == samarkand)
        #expect(throws: DomainViolation.self) { try SOATO("1818") }
        #expect(throws: DomainViolation.self) { try SOATO("17182") }
        #expect(try PhoneNumber("+998901234567").value == "+998901234567")
        #expect(throws: DomainViolation.self) { try PhoneNumber("+99890123456") }
        #expect(throws: DomainViolation.self) { try PhoneNumber("998901234567") }
    }
}

@Suite("Participants and requests")
struct VocabularyTests {
    @Test func rolesFollowClauses11And12() {
        #expect(Role.allCases.filter(\.mayDraftDecisions) == [.deputyChairperson, .secretary])
        #expect(Role.allCases.filter(\.mayApproveDecisions) == [.chairperson, .deputyChairperson])
        #expect(Role.allCases.filter { $0.signsRequests(in: .politicalParty) } == [.head])
        // A commission's head, for its submissions to another commission, is its chairperson.
        #expect(Role.allCases.filter { $0.signsRequests(in: .territorialElectionCommission) } == [.chairperson])
        #expect(Role.allCases.filter { $0.fits(.districtElectionCommission) } == [.chairperson, .deputyChairperson, .secretary, .member])
        #expect(Role.allCases.filter { $0.fits(.centralElectionCommission) }
            == [.chairperson, .deputyChairperson, .secretary, .member, .operator, .auditor])
        #expect(Role.allCases.filter { $0.fits(.mahalla) } == [.head, .clerk])
    }

    @Test func commissionTreeAndSenders() {
        #expect(OrganisationKind.allCases.filter(\.isElectionCommission).count == 4)
        #expect(OrganisationKind.karakalpakstanElectionCommission.commissionLevel == .territorial)
        #expect(!OrganisationKind.foreignObserverOrganisation.maySendRequests)
        #expect(!OrganisationKind.centralElectionCommission.maySendRequests)
        #expect(OrganisationKind.mahalla.maySendRequests)
    }

    @Test func requestTypesAndKinds() {
        #expect(RequestType.allCases.count == 17)
        #expect(RequestType.allCases.map(\.rawValue) == Array(1...17))
        #expect(RequestType.allCases.filter(\.sentByPersons) == [.candidateWithdrawal, .proxyRegistration, .proxyRevocation])
        #expect(RequestType.territorialCommissionMembers.kind == .recommendation)
        #expect(RequestType.mediaAccreditation.kind(sentBy: .localMedia) == .application)
        #expect(RequestType.mediaAccreditation.kind(sentBy: .ministryOfForeignAffairs) == .submission)
    }
}

@Suite("Domain ↔ wire conversions")
struct ConversionTests {
    @Test func everyDomainValueRoundTrips() {
        for k in OrganisationKind.allCases { #expect(OrganisationKind(k.wire) == k) }
        for r in Role.allCases { #expect(Role(r.wire) == r) }
        for e in ElectionKind.allCases { #expect(ElectionKind(e.wire) == e) }
        for k in RequestKind.allCases { #expect(RequestKind(k.wire) == k) }
        for t in RequestType.allCases {
            #expect(RequestType(t.wire) == t)
            #expect(t.wire.rawValue == Int32(t.rawValue))  // catalogue numbers on the wire too
        }
    }

    @Test func everyWireValueHasADomainValue() {
        for w in Esaylov_V1_OrganisationKind.allCases where w != .unspecified { #expect(OrganisationKind(w) != nil, "\(w)") }
        for w in Esaylov_V1_Role.allCases where w != .unspecified { #expect(Role(w) != nil, "\(w)") }
        for w in Esaylov_V1_RequestType.allCases where w != .unspecified { #expect(RequestType(w) != nil, "\(w)") }
        #expect(OrganisationKind(.unspecified) == nil)
        #expect(RequestType(.unrecognized(99)) == nil)
    }

    @Test func aFormNamesItsRequestType() throws {
        var form = Esaylov_V1_RequestForm()
        #expect(form.requestType == nil)
        form.form = .proxyRegistration(Esaylov_V1_ProxyRegistrationForm())
        #expect(form.requestType == .proxyRegistration)
        form.form = .commissionReport(Esaylov_V1_CommissionReportForm())
        #expect(form.requestType == .commissionReport)
        // and the oneof's field number is the type's number on the wire
        let bytes = form.serializedBytes()
        #expect(bytes.first == UInt8(17 << 3 | 2))
    }
}
