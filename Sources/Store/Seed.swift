public import Domain
import Foundation

/// Demo data: Uzbekistan's real commission tree and participants, with invented people.
/// Loading it twice changes nothing.
public enum Seed {
    struct TerritoryRow {
        let soato, level, parent, nameEn, nameUz, kind: String
    }

    /// The 222 units of `Seed/territories.csv`, shipped with the build.
    static func territories() throws(StoreError) -> [TerritoryRow] {
        guard let url = Bundle.module.url(forResource: "Seed/territories", withExtension: "csv")
            ?? Bundle.module.url(forResource: "territories", withExtension: "csv", subdirectory: "Seed"),
            let text = try? String(contentsOf: url, encoding: .utf8)
        else { throw StoreError(.other, reason: "Seed/territories.csv is missing from the build") }
        var out: [TerritoryRow] = []
        for (i, line) in text.split(whereSeparator: \.isNewline).enumerated() where i > 0 {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 6 else { throw StoreError(.other, reason: "territories.csv line \(i + 1) has \(f.count) fields") }
            out.append(TerritoryRow(soato: f[0], level: f[1], parent: f[2], nameEn: f[3], nameUz: f[4], kind: f[5]))
        }
        return out
    }

    static let parties: [(id: String, en: String, uz: String)] = [
        ("party-uzlidep", "Movement of Entrepreneurs and Business People – Liberal Democratic Party of Uzbekistan",
         "Tadbirkorlar va ishbilarmonlar harakati – Oʻzbekiston Liberal-demokratik partiyasi"),
        ("party-milliy-tiklanish", "Democratic Party of Uzbekistan \u{201C}Milliy Tiklanish\u{201D}",
         "Oʻzbekiston \u{00AB}Milliy tiklanish\u{00BB} demokratik partiyasi"),
        ("party-ecological", "Ecological Party of Uzbekistan", "Oʻzbekiston Ekologik partiyasi"),
        ("party-xdp", "People's Democratic Party of Uzbekistan", "Oʻzbekiston Xalq demokratik partiyasi"),
        ("party-adolat", "Social Democratic Party of Uzbekistan \u{201C}Adolat\u{201D}",
         "Oʻzbekiston \u{00AB}Adolat\u{00BB} sotsial-demokratik partiyasi"),
    ]

    static let lastNames = ["Karimov", "Rashidova", "Yusupov", "Aliyeva", "Tursunov", "Nazarova", "Xolmatov", "Saidova",
                            "Ergashev", "Qodirova", "Mirzayev", "Usmonova", "Abdullayev", "Rahimova", "Sobirov"]
    static let firstNames = ["Aziz", "Dilnoza", "Bekzod", "Gulnora", "Jasur", "Malika", "Otabek", "Nilufar", "Sardor",
                             "Zarina", "Rustam", "Feruza", "Sherzod", "Madina", "Ulugʻbek"]

    static func birthDay(_ h: UInt64) -> Int { 1 + Int(h % 28) }
    static func birthMonth(_ h: UInt64) -> Int { 1 + Int(h / 28 % 12) }
    static func birthYear(_ h: UInt64) -> Int { 1950 + Int(h / 336 % 50) }

    /// A PINFL with a valid check digit and a birth date, made from a hash (demo people only).
    static func pinfl(_ h: UInt64) -> String {
        let female = h / 16_800 % 2 == 1
        var body = String(3 + (female ? 1 : 0)) + pad(birthDay(h), 2) + pad(birthMonth(h), 2) + pad(birthYear(h) % 100, 2)
        body += pad(Int(h / 33_600 % 1_000_000), 6)
        return body + String(PINFL.checkDigit(of: body.utf8))
    }

    /// FNV-1a: the same on every machine and every run.
    static func stableHash(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    static func pad(_ v: Int, _ width: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }

    /// The demo candidates and proxies: (id, person id, phone, election kind, registering
    /// commission, party, constituency) and (id, person id, phone, candidate id). They sign in
    /// with SMS codes; README names the first candidate's phone.
    public static let candidates: [(id: String, person: String, phone: String, kind: ElectionKind, commission: String, party: String?, constituency: Int32)] = [
        ("cand-lc-01", "seed-candidate-01", "+998900000001", .legislativeChamber, "cec", "party-uzlidep", 1),
        ("cand-rc-1726-01", "seed-candidate-02", "+998900000002", .regionalCouncil, "tec-1726", "party-adolat", 3),
        ("cand-dc-1726264-01", "seed-candidate-03", "+998900000003", .districtCouncil, "dec-1726264", "party-ecological", 2),
    ]
    public static let proxies: [(id: String, person: String, phone: String, candidate: String)] = [
        ("proxy-lc-01-a", "seed-proxy-01", "+998900000101", "cand-lc-01"),
        ("proxy-lc-01-b", "seed-proxy-02", "+998900000102", "cand-lc-01"),
    ]

    /// Loads the demo directory; returns the number of organisations now present. Refuses a
    /// database that already holds organisations the seed did not load (operator data) unless
    /// `allowOperatorData`, so that invented people never join a real directory by mistake.
    @discardableResult
    public static func demo(_ database: Database, allowOperatorData: Bool = false) throws(StoreError) -> Int {
        let rows = try territories()
        return try database.withTransaction(timeout: .seconds(300)) { (c) throws(StoreError) -> Int in
            let state = try c.query(
                "SELECT EXISTS (SELECT 1 FROM seed_runs) AS seeded, EXISTS (SELECT 1 FROM organisations) OR EXISTS (SELECT 1 FROM people) AS data")
            if !allowOperatorData, try !state.bool(0, "seeded"), try state.bool(0, "data") {
                throw StoreError(.checkViolation, constraint: "seed_refuses_operator_data",
                                 reason: "the database holds directory data the demo seed did not load")
            }
            try c.query("INSERT INTO seed_runs DEFAULT VALUES")
            let size: SQL = "SELECT (SELECT count(*) FROM organisations) + (SELECT count(*) FROM people) AS n"
            let before = try c.query(size).int(0, "n")
            try c.query(
                "INSERT INTO territories (soato, level, kind, parent_soato, name_uz, name_en) VALUES ('17', 'republic', 'country', NULL, 'Oʻzbekiston Respublikasi', 'Republic of Uzbekistan') ON CONFLICT DO NOTHING")
            for t in rows {
                let parent = t.parent.isEmpty ? "17" : t.parent
                try c.query(
                    """
                    INSERT INTO territories (soato, level, kind, parent_soato, name_uz, name_en)
                    VALUES (\(t.soato), \(t.level), \(t.kind), \(parent), \(t.nameUz), \(t.nameEn)) ON CONFLICT DO NOTHING
                    """)
            }
            var tinCounter = 0
            func org(_ id: String, _ kind: OrganisationKind, _ uz: String, _ en: String, _ soato: String, _ parent: String?) throws(StoreError) {
                tinCounter += 1
                let tin = "2" + pad(10_000_000 + tinCounter * 37, 8)
                try c.query(
                    """
                    INSERT INTO organisations (id, kind, kind_order, name_uz, name_en, tin, territory_soato, parent_id)
                    VALUES (\(id), \(kind.databaseName), \(kind.order), \(uz), \(en), \(tin), \(soato), \(parent)) ON CONFLICT DO NOTHING
                    """)
            }
            try org("cec", .centralElectionCommission, "Oʻzbekiston Respublikasi Markaziy saylov komissiyasi",
                    "Central Election Commission of the Republic of Uzbekistan", "17", nil)
            try org("mfa", .ministryOfForeignAffairs, "Oʻzbekiston Respublikasi Tashqi ishlar vazirligi",
                    "Ministry of Foreign Affairs of the Republic of Uzbekistan", "17", nil)
            for p in parties { try org(p.id, .politicalParty, p.uz, p.en, "17", nil) }
            let regions = rows.filter { $0.level == "region" }
            for r in regions {
                if r.soato == "1735" {
                    try org("tec-1735", .karakalpakstanElectionCommission, "Qoraqalpogʻiston Respublikasi Markaziy saylov komissiyasi",
                            "Central Election Commission of the Republic of Karakalpakstan", r.soato, "cec")
                    try org("jokargy-kenes", .jokargyKenes, "Qoraqalpogʻiston Respublikasi Joʻqorgʻi Kengesi",
                            "Jokargy Kenes of the Republic of Karakalpakstan", r.soato, nil)
                    try org("council-of-ministers-1735", .karakalpakstanCouncilOfMinisters, "Qoraqalpogʻiston Respublikasi Vazirlar Kengashi",
                            "Council of Ministers of the Republic of Karakalpakstan", r.soato, nil)
                } else {
                    try org("tec-\(r.soato)", .territorialElectionCommission, "\(r.nameUz) hududiy saylov komissiyasi",
                            "\(r.nameEn) Territorial Election Commission", r.soato, "cec")
                    try org("council-\(r.soato)", .regionalCouncil, "\(r.nameUz) xalq deputatlari Kengashi",
                            "\(r.nameEn) Council of People's Deputies", r.soato, nil)
                    try org("hokimiyat-\(r.soato)", .regionalHokimiyat, "\(r.nameUz) hokimligi", "\(r.nameEn) Hokimiyat", r.soato, nil)
                }
                for p in parties {
                    try org("\(p.id)-\(r.soato)", .partyBranch, "\(p.uz) — \(r.nameUz) kengashi", "\(p.en) — \(r.nameEn) branch", r.soato, p.id)
                }
            }
            for d in rows where d.level == "district" {
                try org("dec-\(d.soato)", .districtElectionCommission, "\(d.nameUz) saylov komissiyasi",
                        "\(d.nameEn) Election Commission", d.soato, "tec-\(d.parent)")
                try org("council-\(d.soato)", .districtCouncil, "\(d.nameUz) xalq deputatlari Kengashi",
                        "\(d.nameEn) Council of People's Deputies", d.soato, nil)
                try org("hokimiyat-\(d.soato)", .districtHokimiyat, "\(d.nameUz) hokimligi", "\(d.nameEn) Hokimiyat", d.soato, nil)
            }
            try org("mahalla-1718203-bogishamol", .mahalla, "Bogʻishamol mahalla fuqarolar yigʻini", "Bogishamol Mahalla", "1718203", nil)
            try org("media-dunyo", .localMedia, "«Dunyo» axborot agentligi", "Dunyo Information Agency", "17", nil)
            try org("observers-odihr", .internationalObserverOrganisation, "EXHT DIIHB kuzatuv missiyasi", "OSCE/ODIHR Election Observation Mission", "17", nil)

            // People in every role: commission officers and members, heads of the others. Only
            // organisations without members get them, and every id and PINFL derives from the
            // organisation and the slot, so a second load, or operator data, changes nothing.
            let orgs = try c.query(
                "SELECT o.id, o.kind FROM organisations o WHERE NOT EXISTS (SELECT 1 FROM memberships m WHERE m.organisation_id = o.id) ORDER BY o.id")
            for i in 0..<orgs.count {
                let org = try orgs.string(i, "id")
                guard let kind = OrganisationKind(databaseName: try orgs.string(i, "kind")) else { continue }
                let roles: [Role] = kind.isElectionCommission ? [.chairperson, .deputyChairperson, .secretary, .member, .member] : [.head]
                for (slot, role) in roles.enumerated() {
                    let id = "seed-\(org)-\(slot)"
                    let h = stableHash(id)
                    let pinfl = Seed.pinfl(h)
                    try c.query(
                        """
                        INSERT INTO people (id, pinfl, last_name, first_name, patronymic, birth_date)
                        VALUES (\(id), \(pinfl), \(lastNames[Int(h % UInt64(lastNames.count))]), \(firstNames[Int((h >> 8) % UInt64(firstNames.count))]),
                                '', make_date(\(Int32(Seed.birthYear(h))), \(Int32(Seed.birthMonth(h))), \(Int32(Seed.birthDay(h))))) ON CONFLICT DO NOTHING
                        """)
                    try c.query(
                        """
                        INSERT INTO memberships (organisation_id, person_id, role, since)
                        VALUES (\(org), \(id), \(role.databaseName), '2024-07-01') ON CONFLICT DO NOTHING
                        """)
                }
            }
            for (i, k) in (candidates.map { ($0.person, $0.phone) } + proxies.map { ($0.person, $0.phone) }).enumerated() {
                let h = stableHash(k.0)
                try c.query(
                    """
                    INSERT INTO people (id, pinfl, last_name, first_name, patronymic, phone, birth_date)
                    VALUES (\(k.0), \(Seed.pinfl(h)), \(lastNames[(i + 3) % lastNames.count]), \(firstNames[(i + 5) % firstNames.count]), '',
                            \(k.1), make_date(\(Int32(Seed.birthYear(h))), \(Int32(Seed.birthMonth(h))), \(Int32(Seed.birthDay(h)))))
                    ON CONFLICT DO NOTHING
                    """)
            }
            for cand in candidates {
                try c.query(
                    """
                    INSERT INTO candidates (id, person_id, election_kind, registering_commission_id, constituency_number, party_id, status)
                    SELECT \(cand.id), \(cand.person), \(cand.kind.databaseName), \(cand.commission), \(cand.constituency), \(cand.party), 'registered'
                    WHERE EXISTS (SELECT 1 FROM organisations WHERE id = \(cand.commission))
                    ON CONFLICT DO NOTHING
                    """)
            }
            for p in proxies {
                try c.query(
                    """
                    INSERT INTO proxies (id, person_id, candidate_id, status)
                    SELECT \(p.id), \(p.person), \(p.candidate), 'registered' WHERE EXISTS (SELECT 1 FROM candidates WHERE id = \(p.candidate))
                    ON CONFLICT DO NOTHING
                    """)
            }
            try demoCampaign(c, today: Day(tashkentDayOf: Date().timeIntervalSince1970))
            let n = try c.query("SELECT count(*) AS n FROM organisations").int(0, "n")
            // One event for what a load added (a second load adds nothing, and logs nothing).
            if try c.query(size).int(0, "n") != before {
                try AuditLog().append(c, actor: .operatorTool, action: "AUDIT_ACTION_DIRECTORY_CHANGED", subjectKind: "", subjectId: "",
                                      facts: ["change": "demo_seed_loaded", "organisations": String(n)])
            }
            return n
        }
    }
}
