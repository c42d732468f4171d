extension Catalogue {
    /// The catalogue of domain.md (our reconstruction of forms 2.1–2.17 from the Election Code),
    /// already within clause 6 where the reconstruction and the clause disagree: mahallas reach
    /// territorial commissions only, media only the CEC, candidates and proxies never sign.
    /// Decision periods the law leaves open are 5 days (10 for commission matters); operators
    /// change any of it per campaign.
    public static let standard: Catalogue = {
        let party: Sender = .organisation(.politicalParty)
        let branch: Sender = .organisation(.partyBranch)
        let cec = OrganisationKind.centralElectionCommission
        let kk = OrganisationKind.karakalpakstanElectionCommission
        let tec = OrganisationKind.territorialElectionCommission
        let dec = OrganisationKind.districtElectionCommission
        /// Candidates and proxies reach the commission that registered the candidate, or the one
        /// above it, wherever clause 6 lists their candidacy for that commission's level
        /// (presidential candidates have no route; Legislative Chamber candidates' proxies never
        /// reach the CEC). Which commission registered a candidate is the directory's fact.
        func personRoutes(_ senders: (ElectionKind) -> [Sender]) -> [Route] {
            [cec, kk, tec, dec].flatMap { k in
                let s = ElectionKind.allCases.flatMap(senders).filter { Clause6.allows($0, to: k.commissionLevel!) }
                return s.isEmpty ? [] : [Route(s, to: k, .registeringCommission), Route(s, to: k, .aboveRegisteringCommission)]
            }
        }
        /// A party reaches commissions anywhere; its branches those covering their territory.
        func partyRoutes(to k: OrganisationKind, elections: [ElectionKind] = []) -> [Route] {
            [Route([party], to: k, .anyTerritory, elections: elections), Route([branch], to: k, .coveringTerritory, elections: elections)]
        }
        func window(closes: DayMark?, opens: DayMark? = .afterAnnouncement(0)) -> Window { Window(opens: opens, closes: closes) }
        func rule(_ type: RequestType, _ uz: String, _ en: String, _ routes: [Route], _ w: Window, decide: Int, _ limits: [Limit] = []) -> TypeRule {
            TypeRule(type: type, titleUz: uz, titleEn: en, routes: routes, window: w, decisionDays: decide, limits: limits)
        }
        let adult = Limit("min_age", 18, "the person is 18 or older on election day")
        let candidateAge = Limit("min_age", 25, "a candidate is 25 or older on election day")
        let womenShare = Limit("min_women_percent", 40, "at least this share of a party's nominees are women")
        return Catalogue(rules: [
            rule(.partyAuthorizedRepresentative, "Partiya vakolatli vakilini roʻyxatga olish", "Registration of a party's authorized representative",
                 [Route([party], to: cec, .anyTerritory), Route([branch], to: tec, .coveringTerritory), Route([branch], to: kk, .coveringTerritory)],
                 window(closes: .afterAnnouncement(5)), decide: 3, [adult]),
            rule(.partyAdmission, "Partiyani saylovda ishtirok etishga qoʻyish", "Admission of a party to the election",
                 [Route([party], to: cec, .anyTerritory, elections: [.legislativeChamber, .president])]
                    + partyRoutes(to: kk, elections: [.jokargyKenes]) + partyRoutes(to: tec, elections: [.regionalCouncil])
                    + partyRoutes(to: dec, elections: [.districtCouncil]),
                 window(closes: .beforeElection(70)), decide: 5,
                 [Limit("min_signatures", 40_000, election: .legislativeChamber, "voters' signatures at least"),
                  Limit("max_region_share_percent", 8, election: .legislativeChamber, "at most this share of the signatures from one of the 14 regional units"),
                  Limit("min_registered_months", 4, "registered by the Ministry of Justice at least this many months before the announcement")]),
            rule(.candidateNomination, "Bir mandatli saylov okruglari boʻyicha nomzodlarni roʻyxatga olish", "Registration of single-mandate candidates",
                 [Route([party], to: cec, .anyTerritory, elections: [.legislativeChamber])]
                    + partyRoutes(to: kk, elections: [.jokargyKenes]) + partyRoutes(to: tec, elections: [.regionalCouncil])
                    + partyRoutes(to: dec, elections: [.districtCouncil]),
                 window(closes: .beforeElection(35)), decide: 5, [candidateAge, womenShare]),
            rule(.partyList, "Partiya nomzodlari roʻyxati", "Party list for the nationwide district",
                 [Route([party], to: cec, .anyTerritory, elections: [.legislativeChamber])],
                 window(closes: .beforeElection(35)), decide: 5,
                 [candidateAge, Limit("min_women_in_five", 2, "women in every 5 consecutive places at least")]),
            rule(.nominationRevocation, "Nomzodni chaqirib olish", "Revocation of a nominee",
                 [cec, kk, tec, dec].map { Route([party, branch], to: $0, .registeringCommission) },
                 window(closes: .beforeElection(15)), decide: 3, [candidateAge]),
            rule(.candidateWithdrawal, "Nomzodning oʻz nomzodini qaytarib olishi", "Withdrawal of a candidate",
                 personRoutes { [.candidate($0)] },
                 window(closes: .beforeElection(1)), decide: 3),
            rule(.proxyRegistration, "Ishonchli vakillarni roʻyxatga olish", "Registration of proxies",
                 personRoutes { [.candidate($0)] },
                 window(closes: .beforeElection(1)), decide: 5,
                 [adult,
                  Limit("max_proxies", 10, election: .legislativeChamber, "proxies of a Legislative Chamber candidate at most"),
                  Limit("max_proxies", 5, election: .jokargyKenes, "proxies of a Jokargy Kenes candidate at most (not confirmed: the regional figure)"),
                  Limit("max_proxies", 5, election: .regionalCouncil, "proxies of a regional council candidate at most"),
                  Limit("max_proxies", 3, election: .districtCouncil, "proxies of a district council candidate at most"),
                  Limit("max_proxies", 15, election: .president, "proxies of a presidential candidate at most")]),
            rule(.proxyRevocation, "Ishonchli vakil vakolatini tugatish", "Revocation or resignation of a proxy",
                 personRoutes { [.candidate($0), .proxy($0)] },
                 window(closes: .beforeElection(1)), decide: 3),
            rule(.observerMandate, "Kuzatuvchilarga mandat berish", "Mandates for party and mahalla observers",
                 partyRoutes(to: tec) + partyRoutes(to: kk) + partyRoutes(to: dec) + [
                  Route([.organisation(.mahalla)], to: tec, .coveringTerritory), Route([.organisation(.mahalla)], to: kk, .coveringTerritory)],
                 window(closes: .beforeElection(10)), decide: 5, [adult]),
            rule(.foreignObserverAccreditation, "Xorijiy kuzatuvchilarni akkreditatsiya qilish", "Accreditation of foreign and international observers",
                 [Route([.organisation(.ministryOfForeignAffairs)], to: cec, .anyTerritory)],
                 window(closes: .beforeElection(10)), decide: 5),
            rule(.mediaAccreditation, "Jurnalistlarni akkreditatsiya qilish", "Accreditation of journalists",
                 [Route([.organisation(.localMedia)], to: cec, .coveringTerritory, kind: .application),
                  Route([.organisation(.ministryOfForeignAffairs)], to: cec, .anyTerritory, kind: .submission)],
                 window(closes: .beforeElection(10)), decide: 5),
            rule(.pollingStationProposal, "Saylov uchastkalarini tashkil etish", "Formation or change of polling stations",
                 [Route([.organisation(.districtHokimiyat)], to: tec, .coveringTerritory), Route([.organisation(.districtHokimiyat)], to: kk, .coveringTerritory),
                  Route([.organisation(.districtHokimiyat)], to: dec, .sameTerritory)],
                 window(closes: .beforeElection(60)), decide: 5,
                 [Limit("min_station_voters", 20, "voters a polling station serves at least"),
                  Limit("max_station_voters", 3000, "voters a polling station serves at most")]),
            rule(.pollingStationAbroad, "Xorijdagi saylov uchastkalari", "Polling stations at diplomatic missions",
                 [Route([.organisation(.ministryOfForeignAffairs)], to: cec, .anyTerritory)],
                 window(closes: .beforeElection(60)), decide: 5),
            rule(.constituencyProposal, "Saylov okruglarini tuzish", "Formation of constituencies",
                 [Route([.organisation(.karakalpakstanCouncilOfMinisters)], to: kk, .coveringTerritory),
                  Route([.organisation(.regionalHokimiyat)], to: tec, .coveringTerritory),
                  Route([.organisation(.districtHokimiyat)], to: dec, .sameTerritory)],
                 window(closes: .beforeElection(75)), decide: 5,
                 [Limit("max_voter_deviation_percent", 10, "a constituency's voters differ from the mean by at most this share")]),
            rule(.territorialCommissionMembers, "Hududiy saylov komissiyasi aʼzolari", "Members for a territorial commission",
                 [Route([.organisation(.jokargyKenes), .organisation(.regionalCouncil)], to: cec, .anyTerritory)],
                 window(closes: .afterAnnouncement(-1), opens: nil), decide: 10, [adult]),
            rule(.lowerCommissionMembers, "Quyi saylov komissiyalari aʼzolari", "Members for lower commissions",
                 [Route([.organisation(.districtCouncil)], to: tec, .coveringTerritory), Route([.organisation(.districtCouncil)], to: kk, .coveringTerritory)],
                 window(closes: .afterAnnouncement(-1), opens: nil), decide: 10, [adult]),
            rule(.commissionReport, "Yuqori komissiyaga taqdimnoma", "A lower commission's submission to the one above it",
                 [Route([.organisation(.territorialElectionCommission), .organisation(.karakalpakstanElectionCommission)], to: cec, .anyTerritory),
                  Route([.organisation(.districtElectionCommission)], to: tec, .coveringTerritory),
                  Route([.organisation(.districtElectionCommission)], to: kk, .coveringTerritory)],
                 Window(opens: nil, closes: nil), decide: 10),
        ])
    }()
}
