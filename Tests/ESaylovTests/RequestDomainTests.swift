import Domain
import Testing

/// Clause 6 as the regulation writes it, kept apart from `Clause6.table` on purpose: the walk
/// below compares the code with this text, not the code with itself.
private let clauseText: [CommissionLevel: Set<String>] = [
    // a) political parties; the Jokargy Kenes; the regional and Tashkent city Councils; candidates
    //    for deputy of the Legislative Chamber; local mass media; the MFA; the territorial commissions.
    .central: ["politicalParty", "partyBranch", "jokargyKenes", "regionalCouncil", "legislativeChamber candidate", "localMedia",
               "ministryOfForeignAffairs", "territorialElectionCommission", "karakalpakstanElectionCommission"],
    // b) political parties; the Council of Ministers of Karakalpakstan, regional and Tashkent city
    //    hokimiyats; district and city Councils; district and city hokimiyats; candidates for the
    //    Legislative Chamber, the Jokargy Kenes, a regional Council; mahallas; district and city
    //    commissions; proxies of candidates for the Legislative Chamber, the Jokargy Kenes, a
    //    regional Council; the MFA.
    .territorial: ["politicalParty", "partyBranch", "karakalpakstanCouncilOfMinisters", "regionalHokimiyat", "districtCouncil",
                   "districtHokimiyat", "legislativeChamber candidate", "jokargyKenes candidate", "regionalCouncil candidate", "mahalla",
                   "districtElectionCommission", "legislativeChamber candidate's proxy", "jokargyKenes candidate's proxy",
                   "regionalCouncil candidate's proxy", "ministryOfForeignAffairs"],
    // c) political parties; district and city hokimiyats; candidates for a district or city
    //    Council; their proxies.
    .district: ["politicalParty", "partyBranch", "districtHokimiyat", "districtCouncil candidate", "districtCouncil candidate's proxy"],
]

private func soato(_ s: String) -> SOATO { try! SOATO(s) }

private let everySender: [Sender] =
    OrganisationKind.allCases.map { .organisation($0) } + ElectionKind.allCases.flatMap { [Sender.candidate($0), .proxy($0)] }

/// One receiver per level, and senders standing in the same territory, inside it (covered), or
/// elsewhere.
private let receivers: [(ReceiverPlace, same: String, covered: String?, other: String?)] = [
    (ReceiverPlace(id: "cec", kind: .centralElectionCommission, territory: soato("17")), "17", "1718", nil),
    (ReceiverPlace(id: "tec-1718", kind: .territorialElectionCommission, territory: soato("1718")), "1718", "1718203", "1706"),
    (ReceiverPlace(id: "tec-1735", kind: .karakalpakstanElectionCommission, territory: soato("1735")), "1735", "1735401", "1718203"),
    (ReceiverPlace(id: "dec-1718203", kind: .districtElectionCommission, territory: soato("1718203")), "1718203", "1718203101", "1718206"),
]

/// A catalogue rule that routes every sender to every commission anywhere: what is left after
/// routing is clause 6 and the territorial rule alone.
private let openRule = TypeRule(
    type: .commissionReport, titleUz: "", titleEn: "",
    routes: [OrganisationKind.centralElectionCommission, .karakalpakstanElectionCommission, .territorialElectionCommission, .districtElectionCommission]
        .flatMap { k in
            [Route(everySender.filter { !$0.isPerson }, to: k, .anyTerritory), Route(everySender.filter(\.isPerson), to: k, .registeringCommission)]
        },
    window: Window(opens: nil, closes: nil), decisionDays: 5, limits: [])

@Suite("Clause 6 routing")
struct RoutingTests {
    @Test func everySenderKindAtEveryLevelInTheSameCoveredAndOtherTerritoryFollowsTheClause() {
        var checked = 0
        for (receiver, same, covered, other) in receivers {
            let level = receiver.kind.commissionLevel!
            for sender in everySender {
                let listed = clauseText[level]!.contains(sender.description)
                if sender.isPerson {
                    // A candidate or proxy reaches the commission that registered the candidate.
                    for (registering, expected) in [(receiver.id, listed), ("elsewhere", false)] {
                        let place = SenderPlace(sender: sender, territory: receiver.territory, registeringCommissionId: registering)
                        let got = Routing.route(openRule, from: place, to: receiver, elections: Set(ElectionKind.allCases))
                        #expect(((try? got.get()) != nil) == expected, "\(sender) → \(receiver.id), registered by \(registering)")
                        checked += 1
                    }
                    continue
                }
                var cases: [(String, Bool)] = [(same, listed), ("17", listed)]
                if let covered { cases.append((covered, listed)) }
                if let other { cases.append((other, false)) }
                for (territory, expected) in cases {
                    let place = SenderPlace(sender: sender, territory: soato(territory))
                    let got = Routing.route(openRule, from: place, to: receiver, elections: Set(ElectionKind.allCases))
                    #expect(((try? got.get()) != nil) == expected, "\(sender) at \(territory) → \(receiver.id)")
                    if case .failure(let r) = got, !listed { #expect(r.clause.hasPrefix("cl. 6"), "\(r)") }
                    checked += 1
                }
            }
        }
        #expect(checked > 300)
    }

    @Test func observersForeignMediaAndTheCECHaveNoRoute() {
        for k in [OrganisationKind.foreignMedia, .internationalMedia, .foreignObserverOrganisation, .internationalObserverOrganisation,
                  .centralElectionCommission] {
            #expect(!Clause6.hasAnyRoute(.organisation(k)))
            #expect(!k.maySendRequests)
        }
        #expect(!Clause6.hasAnyRoute(.candidate(.president)))
    }

    @Test func theStandardCatalogueIsWithinClauses6And7() {
        #expect(Catalogue.standard.check() == [])
        #expect(Catalogue.standard.rules.count == 17)
        #expect(Set(Catalogue.standard.rules.map(\.type)) == Set(RequestType.allCases))
        for rule in Catalogue.standard.rules {
            for route in rule.routes {
                #expect(route.signatureRequired == route.senders.allSatisfy { !$0.isPerson }, "type \(rule.type.rawValue)")
                for s in route.senders { #expect(Clause6.allows(s, to: route.receiver.commissionLevel!), "type \(rule.type.rawValue): \(s)") }
            }
        }
    }

    @Test func aCatalogueWideningClause6IsRefusedNamingTheRoute() {
        var c = Catalogue.standard
        let i = c.rules.firstIndex { $0.type == .observerMandate }!
        c.rules[i].routes.append(Route([.organisation(.mahalla)], to: .centralElectionCommission, .anyTerritory))
        #expect(c.check().contains { $0.contains("clause 6(a) gives mahalla no route") })
    }

    @Test func aSamarkandDistrictHokimiyatReachesItsOwnCommissionsNeverBukharas() {
        let rule = Catalogue.standard.rule(.pollingStationProposal)!
        let hokimiyat = SenderPlace(sender: .organisation(.districtHokimiyat), territory: soato("1718203"))
        func reaches(_ id: String, _ kind: OrganisationKind, _ t: String) -> Bool {
            (try? Routing.route(rule, from: hokimiyat, to: ReceiverPlace(id: id, kind: kind, territory: soato(t)), elections: [.districtCouncil]).get()) != nil
        }
        #expect(reaches("tec-1718", .territorialElectionCommission, "1718"))
        #expect(reaches("dec-1718203", .districtElectionCommission, "1718203"))
        #expect(!reaches("tec-1706", .territorialElectionCommission, "1706"))
        #expect(!reaches("dec-1718206", .districtElectionCommission, "1718206"))
        #expect(!reaches("cec", .centralElectionCommission, "17"))
    }

    @Test func aLegislativeChamberCandidatesProxyNeverReachesTheCEC() {
        let cec = ReceiverPlace(id: "cec", kind: .centralElectionCommission, territory: soato("17"))
        let proxy = SenderPlace(sender: .proxy(.legislativeChamber), territory: soato("17"), registeringCommissionId: "cec")
        for rule in Catalogue.standard.rules {
            #expect((try? Routing.route(rule, from: proxy, to: cec, elections: [.legislativeChamber]).get()) == nil, "type \(rule.type.rawValue)")
        }
        let candidate = SenderPlace(sender: .candidate(.legislativeChamber), territory: soato("17"), registeringCommissionId: "cec")
        #expect((try? Routing.route(Catalogue.standard.rule(.proxyRegistration)!, from: candidate, to: cec, elections: [.legislativeChamber]).get()) != nil)
    }

    @Test func routesNamingElectionsApplyOnlyToThem() {
        let rule = Catalogue.standard.rule(.candidateNomination)!
        let party = SenderPlace(sender: .organisation(.politicalParty), territory: soato("17"))
        let cec = ReceiverPlace(id: "cec", kind: .centralElectionCommission, territory: soato("17"))
        #expect((try? Routing.route(rule, from: party, to: cec, elections: [.legislativeChamber]).get()) != nil)
        guard case .failure(let r) = Routing.route(rule, from: party, to: cec, elections: [.districtCouncil]) else {
            Issue.record("a district council nomination reached the CEC")
            return
        }
        #expect(r.why.contains("only for elections"))
    }
}

@Suite("Request lifecycle")
struct LifecycleTests {
    @Test func theTableMovesRequestsOnlyAlongItsEdgesAndByTheRightParty() throws {
        #expect(try RequestLifecycle.apply(.submit, by: .sender, from: .draft).get() == .submitted)
        #expect(try RequestLifecycle.apply(.delete, by: .sender, from: .draft).get() == nil)
        #expect(try RequestLifecycle.apply(.withdraw, by: .sender, from: .decisionDrafted).get() == .withdrawn)
        #expect(try RequestLifecycle.apply(.approveDecision, by: .approver, from: .decisionDrafted).get() == .decided)
        #expect(RequestLifecycle.apply(.withdraw, by: .sender, from: .decided) == .failure(.wrongState(.decided, .withdraw)))
        #expect(RequestLifecycle.apply(.submit, by: .sender, from: .submitted) == .failure(.wrongState(.submitted, .submit)))
        #expect(RequestLifecycle.apply(.draftDecision, by: .commissionMember, from: .underReview) == .failure(.wrongParty(.draftDecision, .commissionMember)))
        #expect(RequestLifecycle.apply(.approveDecision, by: .drafter, from: .decisionDrafted) == .failure(.wrongParty(.approveDecision, .drafter)))
        // Every state but the final ones has a way on; decided and withdrawn have none.
        for s in [RequestStatus.decided, .withdrawn] { #expect(!RequestLifecycle.table.contains { $0.from == s }) }
    }
}

@Suite("Calendar and form rules")
struct CalendarTests {
    @Test func daysCountInTashkentTime() {
        let d = Day(year: 2024, month: 10, day: 27)!
        #expect(Day(ordinal: d.ordinal) == d && d.description == "2024-10-27")
        #expect(Day(year: 2025, month: 2, day: 29) == nil && Day(year: 2024, month: 2, day: 29) != nil)
        // 18:59:59 UTC on the 26th is 23:59:59 on the 26th in Tashkent; 19:00 UTC is the 27th.
        #expect(Day(tashkentDayOf: d.startEpoch - 1) == d.adding(days: -1))
        #expect(Day(tashkentDayOf: d.startEpoch) == d)
        #expect(d.endEpoch - d.startEpoch == 86400)
        #expect(d.adding(days: -35) == Day(year: 2024, month: 9, day: 22))
        #expect(Day(year: 1999, month: 10, day: 28)!.age(on: d) == 24 && Day(year: 1999, month: 10, day: 27)!.age(on: d) == 25)
        #expect(DayMark.beforeElection(35).day(announced: Day(year: 2024, month: 7, day: 26)!, election: d) == Day(year: 2024, month: 9, day: 22))
    }

    @Test func womenShareAndTwoInFive() throws {
        let man = try PINFL("31210632040244"), woman = try PINFL("40201902050010")
        var faults: [DomainViolation] = []
        FormRules.womenShare([woman, woman, man, man, man], atLeast: 40, field: "n", into: &faults)
        #expect(faults.isEmpty)
        FormRules.womenShare([woman, man, man, man, man], atLeast: 40, field: "n", into: &faults)
        #expect(faults.count == 1)
        faults = []
        FormRules.womenInEveryRun([woman, man, woman, man, man, man, woman], women: 2, field: { "e[\($0)]" }, into: &faults)
        #expect(faults.map(\.field) == ["e[1]"])   // places 2-6 hold one woman
        faults = []
        FormRules.withinMean([1000, 1050, 950, 1200], percent: 10, field: { "c[\($0)]" }, into: &faults)
        #expect(faults.map(\.field) == ["c[3]"])
    }
}

@Suite("Candidates' routes")
struct PersonRouteTests {
    /// A Legislative Chamber candidate registered by a district-level commission reaches it and
    /// the territorial commission above it (6(b) lists them), a district council candidate only
    /// the district commission (6(b) does not list them).
    @Test func theRegisteringCommissionOrTheOneAboveWhereTheClauseListsTheCandidacy() {
        let rule = Catalogue.standard.rule(.candidateWithdrawal)!
        let dec = ReceiverPlace(id: "dec-1718203", kind: .districtElectionCommission, territory: try! SOATO("1718203"))
        let tec = ReceiverPlace(id: "tec-1718", kind: .territorialElectionCommission, territory: try! SOATO("1718"))
        func reaches(_ s: Sender, _ r: ReceiverPlace) -> Bool {
            let place = SenderPlace(sender: s, territory: try! SOATO("1718203"), registeringCommissionId: "dec-1718203", registeringParentId: "tec-1718")
            return (try? Routing.route(rule, from: place, to: r, elections: Set(ElectionKind.allCases)).get()) != nil
        }
        #expect(reaches(.candidate(.districtCouncil), dec) && !reaches(.candidate(.districtCouncil), tec))
        #expect(reaches(.candidate(.legislativeChamber), tec) && !reaches(.candidate(.legislativeChamber), dec))
        #expect(!reaches(.candidate(.president), dec) && !reaches(.candidate(.president), tec))
    }
}

@Suite("Decision rules")
struct DecisionRuleTests {
    typealias D = DecisionRules

    @Test func partlyGrantedGivesEveryItemItsOutcomeAndRefusalsTheirReasons() {
        let ok = D.Draft(outcome: .partlyGranted, items: [.init(index: 0, outcome: .granted, reason: ""), .init(index: 1, outcome: .refused, reason: "under 25")],
                         text: "Registered one, refused one.", correctionDays: 0)
        #expect(D.check(ok, itemCount: 2).isEmpty)
        var bad = ok
        bad.items = [.init(index: 0, outcome: .granted, reason: ""), .init(index: 0, outcome: .refused, reason: ""), .init(index: 5, outcome: .returned, reason: "")]
        let fields = D.check(bad, itemCount: 2).map(\.field)
        #expect(fields.contains("item_outcomes[1].item_index") && fields.contains("item_outcomes[1].reason"))
        #expect(fields.contains("item_outcomes[2].item_index") && fields.contains("item_outcomes[2].outcome"))
        #expect(fields.contains("item_outcomes"))
    }

    @Test func returnedNeedsItsPeriodAndEveryDecisionItsText() {
        #expect(D.check(D.Draft(outcome: .returned, items: [], text: "Fix sheet 4.", correctionDays: 2), itemCount: 0).isEmpty)
        #expect(D.check(D.Draft(outcome: .returned, items: [], text: "Fix sheet 4.", correctionDays: 0), itemCount: 0).map(\.field) == ["correction_days"])
        #expect(D.check(D.Draft(outcome: .granted, items: [], text: "  ", correctionDays: 3), itemCount: 0).map(\.field) == ["text", "correction_days"])
        #expect(D.check(D.Draft(outcome: .partlyGranted, items: [], text: "t", correctionDays: 0), itemCount: 0).map(\.field).contains("outcome"))
    }

    @Test func clauses11And12AndTheCampaignSetting() {
        #expect(D.mayDraft([.secretary]) && D.mayDraft([.deputyChairperson]) && !D.mayDraft([.chairperson]) && !D.mayDraft([.member]))
        #expect(D.approvalRefusal(roles: [.chairperson], approver: "a", drafter: "b", forbidDrafterApproving: true) == nil)
        #expect(D.approvalRefusal(roles: [.secretary], approver: "a", drafter: "b", forbidDrafterApproving: false) != nil)
        #expect(D.approvalRefusal(roles: [.deputyChairperson], approver: "a", drafter: "a", forbidDrafterApproving: false) == nil)
        #expect(D.approvalRefusal(roles: [.deputyChairperson], approver: "a", drafter: "a", forbidDrafterApproving: true) != nil)
        let approved = Day(year: 2024, month: 10, day: 1)!.startEpoch + 3600
        #expect(D.correctionDue(approvedAt: approved, days: 2) == Day(year: 2024, month: 10, day: 3)!.endEpoch)
    }
}
