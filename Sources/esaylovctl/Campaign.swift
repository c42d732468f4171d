import Domain
import Foundation
import Services
import Store

// esaylovctl campaign …: campaigns, their dates and settings, and their catalogue versions.

func day(_ text: String?, _ flag: String) throws(Failure) -> Day? {
    guard let text else { return nil }
    guard let d = Day(text) else { throw fail("--\(flag): a day YYYY-MM-DD") }
    return d
}

/// "2026-12-01", "A+5", "A-1", "E-35" or "none".
func dayMark(_ text: String, _ flag: String) throws(Failure) -> DayMark? {
    if text == "none" { return nil }
    if let d = Day(text) { return .fixed(d) }
    let u = Array(text.utf8)
    guard u.count >= 3, let n = Int(String(text.dropFirst(2))), n >= 0, n <= 400 else { throw fail("--\(flag): YYYY-MM-DD, A+N, A-N, E-N or none") }
    switch (u[0], u[1]) {
    case (UInt8(ascii: "A"), UInt8(ascii: "+")): return .afterAnnouncement(n)
    case (UInt8(ascii: "A"), UInt8(ascii: "-")): return .afterAnnouncement(-n)
    case (UInt8(ascii: "E"), UInt8(ascii: "-")): return .beforeElection(n)
    default: throw fail("--\(flag): YYYY-MM-DD, A+N, A-N, E-N or none")
    }
}

func campaignChanged(_ c: Connection, _ id: String, _ facts: [String: String]) throws(StoreError) {
    try AuditLog().append(c, actor: .operatorTool, action: "AUDIT_ACTION_CAMPAIGN_CHANGED", subjectKind: "campaign", subjectId: id,
                          facts: facts.merging(["tool": "esaylovctl"]) { a, _ in a })
}

/// A catalogue an operator wrote: decodes, and every route within clause 6 and clause 7.
func checkedCatalogue(_ json: String) throws(Failure) -> Catalogue {
    let catalogue: Catalogue
    do { catalogue = try Catalogue(json: json) } catch { throw fail(error.reason, code: 3) }
    let faults = catalogue.check()
    if !faults.isEmpty { throw fail("the catalogue is refused:\n  " + faults.joined(separator: "\n  "), code: 3) }
    return catalogue
}

func runCampaign(_ args: [String], _ database: Database) async throws(Failure) {
    let campaignFields = ["campaigns_pkey": "--id", "campaigns_check": "--election (after --announced)"]
    switch (args.dropFirst().first, args.dropFirst(2).first) {
    case ("create"?, _):
        let f = try flags(args.dropFirst(2))
        let id = try required(f, "id")
        let name = try required(f, "name")
        var kinds: [ElectionKind] = []
        for k in try required(f, "elections").split(separator: ",") {
            guard let e = ElectionKind(databaseName: String(k)) else { throw fail("--elections: unknown election \(k) (one of \(electionKinds))") }
            kinds.append(e)
        }
        guard let a = try day(f["announced"], "announced"), let e = try day(f["election"], "election") else { throw fail("--announced and --election are required") }
        var catalogue = Catalogue.standard
        if let file = f["catalogue"] {
            guard let data = FileManager.default.contents(atPath: file) else { throw fail("cannot read \(file)") }
            catalogue = try checkedCatalogue(String(decoding: data, as: UTF8.self))
        }
        let json = catalogue.json
        let elections = kinds
        do {
            try await database.transaction { (c) throws(StoreError) in
                try CampaignStore().create(c, id: id, name: name, elections: elections, announced: a, election: e, catalogue: json)
                try campaignChanged(c, id, ["change": "created", "announced_on": a.description, "election_day": e.description])
            }
        } catch { throw explain(error, campaignFields) }
        print("esaylovctl: campaign \(id) created (A \(a), E \(e), catalogue version 1)")
    case ("show"?, _):
        let f = try flags(args.dropFirst(2))
        let id = try required(f, "id")
        let found: CampaignRecord?
        do { found = try await database.read(CampaignStore().campaign(id: id), timeout: .seconds(10)) } catch { throw explain(error, [:]) }
        guard let c = found else { throw fail("no campaign \(id)", code: 3) }
        print("\(c.id): \(c.name)")
        print("  elections: \(c.electionKinds.map(\.databaseName).joined(separator: ", "))  A \(c.announcedOn)  E \(c.electionDay)  catalogue v\(c.catalogueVersion)\(c.closed ? "  CLOSED" : "")")
        let json: String?
        do { json = try await database.read(CampaignStore().catalogue(campaignId: id, version: c.catalogueVersion), timeout: .seconds(10)) } catch { throw explain(error, [:]) }
        if let json, let catalogue = try? Catalogue(json: json) {
            for r in catalogue.rules.sorted(by: { $0.type.rawValue < $1.type.rawValue }) {
                let o = r.window.opens?.day(announced: c.announcedOn, election: c.electionDay).description ?? "—"
                let cl = r.window.closes?.day(announced: c.announcedOn, election: c.electionDay).description ?? "—"
                print("  \(r.type.rawValue)\t\(o) … \(cl)\tdecide in \(r.decisionDays) d\t\(r.titleEn)")
            }
        }
    case ("move"?, _):
        let f = try flags(args.dropFirst(2))
        let id = try required(f, "id")
        let a = try day(f["announced"], "announced"), e = try day(f["election"], "election")
        let moved: (Day, Day)?
        do {
            moved = try await database.transaction { (c) throws(StoreError) -> (Day, Day)? in
                guard let old = try c.run(CampaignStore().campaign(id: id)) else { return nil }
                let na = a ?? old.announcedOn, ne = e ?? old.electionDay
                _ = try CampaignStore().move(c, campaignId: id, announced: na, election: ne)
                try campaignChanged(c, id, ["change": "moved", "announced_on": na.description, "election_day": ne.description])
                return (na, ne)
            }
        } catch { throw explain(error, campaignFields) }
        guard let moved else { throw fail("no campaign \(id)", code: 3) }
        print("esaylovctl: campaign \(id) now announced \(moved.0), election day \(moved.1)")
    case ("set-window"?, _):
        let f = try flags(args.dropFirst(2))
        let id = try required(f, "id")
        guard let n = Int(try required(f, "type")), let type = RequestType(rawValue: n) else { throw fail("--type: a request type number 1 to 17") }
        let opens = try f["opens"].map { (t) throws(Failure) in try dayMark(t, "opens") }
        let closes = try f["closes"].map { (t) throws(Failure) in try dayMark(t, "closes") }
        let decide = try f["decision-days"].map { (t) throws(Failure) -> Int in
            guard let d = Int(t), (0...366).contains(d) else { throw fail("--decision-days: 0 to 366") }
            return d
        }
        let outcome: Result<Int, Failure>
        do {
            outcome = try await database.transaction { (c) throws(StoreError) -> Result<Int, Failure> in
                guard let campaign = try c.run(CampaignStore().campaign(id: id)),
                    let json = try c.run(CampaignStore().catalogue(campaignId: id, version: campaign.catalogueVersion))
                else { return .failure(fail("no campaign \(id)", code: 3)) }
                var catalogue = try Catalogue(json: json)
                guard let i = catalogue.rules.firstIndex(where: { $0.type == type }) else { return .failure(fail("type \(n) is not in the catalogue", code: 3)) }
                if let opens { catalogue.rules[i].window.opens = opens }
                if let closes { catalogue.rules[i].window.closes = closes }
                if let decide { catalogue.rules[i].decisionDays = decide }
                let faults = catalogue.check()
                if !faults.isEmpty { return .failure(fail("refused: " + faults.joined(separator: "; "), code: 3)) }
                let v = try CampaignStore().addCatalogue(c, campaignId: id, definition: catalogue.json, note: "window of type \(n)")
                try campaignChanged(c, id, ["change": "window", "type": String(n), "catalogue_version": String(v)])
                return .success(v)
            }
        } catch { throw explain(error, campaignFields) }
        let v = try outcome.get()
        print("esaylovctl: campaign \(id): type \(n) window changed; catalogue version \(v)")
    case ("settings"?, _):
        let f = try flags(args.dropFirst(2))
        let id = try required(f, "id")
        func int(_ k: String) throws(Failure) -> Int? {
            guard let t = f[k] else { return nil }
            guard let v = Int(t), v >= 0 else { throw fail("--\(k): a whole number") }
            return v
        }
        func bool(_ k: String) throws(Failure) -> Bool? {
            guard let t = f[k] else { return nil }
            guard t == "true" || t == "false" else { throw fail("--\(k): true or false") }
            return t == "true"
        }
        let (maxBytes, maxCount, maxTotal) = (try int("max-attachment-bytes"), try int("max-attachments"), try int("max-request-bytes"))
        let (forbid, closed) = (try bool("forbid-drafter-approving"), try bool("closed"))
        let changed: Bool
        do {
            changed = try await database.transaction { (c) throws(StoreError) -> Bool in
                guard try CampaignStore().setSettings(c, campaignId: id, maxAttachmentBytes: maxBytes, maxAttachments: maxCount, maxRequestBytes: maxTotal,
                                                      forbidDrafterApproving: forbid, closed: closed)
                else { return false }
                try campaignChanged(c, id, ["change": "settings"])
                return true
            }
        } catch { throw explain(error, campaignFields) }
        guard changed else { throw fail("no campaign \(id)", code: 3) }
        print("esaylovctl: campaign \(id) settings changed")
    case ("catalogue"?, "export"?):
        let f = try flags(args.dropFirst(3))
        let id = try required(f, "id")
        let json: String?
        do {
            json = try await database.transaction { (c) throws(StoreError) -> String? in
                guard let campaign = try c.run(CampaignStore().campaign(id: id)) else { return nil }
                return try c.run(CampaignStore().catalogue(campaignId: id, version: Int(f["version"] ?? "") ?? campaign.catalogueVersion))
            }
        } catch { throw explain(error, [:]) }
        guard let json else { throw fail("no campaign \(id), or no such version", code: 3) }
        do { print(try Catalogue(json: json).json) } catch { throw fail(error.reason, code: 3) }
    case ("catalogue"?, "import"?):
        let f = try flags(args.dropFirst(3))
        let id = try required(f, "id")
        let file = try required(f, "file")
        guard let data = FileManager.default.contents(atPath: file) else { throw fail("cannot read \(file)") }
        let json = try checkedCatalogue(String(decoding: data, as: UTF8.self)).json
        let note = f["note"] ?? "imported"
        let v: Int
        do {
            v = try await database.transaction { (c) throws(StoreError) -> Int in
                let v = try CampaignStore().addCatalogue(c, campaignId: id, definition: json, note: note)
                try campaignChanged(c, id, ["change": "catalogue", "catalogue_version": String(v)])
                return v
            }
        } catch { throw explain(error, ["campaign": "--id"]) }
        print("esaylovctl: campaign \(id): catalogue version \(v) in force")
    default:
        throw fail(usage)
    }
}
