import Domain
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

    /// Loads the demo directory; returns the number of organisations now present.
    @discardableResult
    public static func demo(_ database: Database) throws(StoreError) -> Int {
        let rows = try territories()
        return try database.withTransaction(timeout: .seconds(300)) { (c) throws(StoreError) -> Int in
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
            return try c.query("SELECT count(*) AS n FROM organisations").int(0, "n")
        }
    }
}
