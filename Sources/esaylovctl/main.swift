#if canImport(Glibc)
import Glibc
#endif
import Domain
import Services
import Store
import Foundation
import Signatures
import Synchronization
import ArgumentParser

// esaylovctl: operator commands on the database named by ESAYLOV_DATABASE_URL.
/// What a wrong invocation of the legacy dispatcher is told: the flags are documented once, by
/// ArgumentParser (`Commands.swift`), which also validates them before this dispatcher runs.
let usage = "see esaylovctl --help (and esaylovctl COMMAND --help) for the commands and their flags"

struct Failure: Error {
    let message: String
    let code: Int32
}

func fail(_ message: String, code: Int32 = 2) -> Failure { Failure(message: message, code: code) }

/// `--name value` pairs after the subcommand.
func flags(_ args: ArraySlice<String>) throws(Failure) -> [String: String] {
    var out: [String: String] = [:]
    var i = args.startIndex
    while i < args.endIndex {
        let k = args[i]
        guard k.hasPrefix("--"), i + 1 < args.endIndex else { throw fail("expected --flag value, got \(k)\n\(usage)") }
        out[String(k.dropFirst(2))] = args[i + 1]
        i += 2
    }
    return out
}

func required(_ f: [String: String], _ name: String) throws(Failure) -> String {
    guard let v = f[name], !v.isEmpty else { throw fail("--\(name) is required") }
    return v
}

func validated<T>(_ make: () throws(DomainViolation) -> T) throws(Failure) -> T {
    do { return try make() } catch { throw fail("\(error.field): \(error.rule)") }
}

/// Storage failures, in the same words the RPCs use.
func explain(_ e: StoreError, _ fields: [String: String]) -> Failure {
    switch e.kind {
    case .uniqueViolation: fail("\(e.constraint.flatMap { fields[$0] } ?? "a unique value") is already taken", code: 3)
    case .foreignKeyViolation: fail("\(e.constraint.flatMap { fields[$0] } ?? "a reference") names something that does not exist", code: 3)
    case .checkViolation: fail("a value breaks the directory's rule \(e.constraint ?? "")", code: 3)
    case .unavailable: fail("the database is unavailable", code: 4)
    default: fail("storage error: \(e)", code: 4)
    }
}

/// Constraint names → the flag that caused them.
let constraintFields = [
    "organisations_pkey": "--id", "organisations_tin_key": "--tin", "organisations_parent_id_fkey": "--parent",
    "organisations_territory_soato_fkey": "--territory", "people_pkey": "--id", "people_pinfl_key": "--pinfl",
    "people_phone_key": "--phone", "memberships_organisation_id_fkey": "--organisation", "memberships_person_id_fkey": "--person",
    "memberships_one_current": "--role (one current holder)", "memberships_pkey": "--role",
    "certificates_pkey": "--file (issuer and serial)", "certificates_sha256_key": "--file", "certificates_person_id_fkey": "--person",
    "certificates_organisation_id_fkey": "--organisation", "certificates_check": "--file (validity)",
]

/// Commands that need no database.
func runOffline(_ args: [String]) throws(Failure) -> Bool {
    switch (args.first, args.dropFirst().first) {
    case ("pki"?, "init"?):
        let ca = DevelopmentCA.fromEnvironment
        print(try ca.initialise() ? "esaylovctl: development CA created under \(ca.root)" : "esaylovctl: development CA already exists under \(ca.root)")
        print("  trust store: \(ca.root)/trust   server identity: \(ca.serverKey) \(ca.serverCert)")
        print("  TLS: --tls-cert \(ca.tlsCert) --tls-key \(ca.tlsKey)   clients trust \(ca.caCert)")
        return true
    case ("pki"?, "issue-tls-client"?):
        let f = try flags(args.dropFirst(2))
        let name = try required(f, "name")
        guard !name.isEmpty, name.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }) else {
            throw fail("--name: lower-case letters, digits and hyphens")
        }
        do {
            if let tin = f["tin"] { _ = try TIN(tin, field: "--tin") }
            if let pinfl = f["pinfl"] { _ = try PINFL(pinfl, field: "--pinfl") }
        } catch { throw fail("\(error)") }
        guard let days = Double(f["days"] ?? "365"), days > 0 else { throw fail("--days must be positive") }
        let ca = DevelopmentCA.fromEnvironment
        let dir = f["out"] ?? ca.clientDirectory(name)
        let cert = try ca.issue(
            .init(commonName: name, organisationName: f["organisation-name"], pinfl: f["pinfl"], tin: f["tin"]), keyKind: .p256,
            start: Date().timeIntervalSince1970 - 60, days: days, into: dir, tls: .client)
        print("esaylovctl: TLS client certificate \(cert.serial) issued for \(name)")
        print("  key:  \(dir)/key.pem")
        print("  cert: \(dir)/cert.pem")
        return true
    case ("sign"?, _):
        var rest = Array(args.dropFirst())
        let attached = rest.contains("--attached")
        let stamped = rest.contains("--timestamp")
        rest.removeAll { $0 == "--attached" || $0 == "--timestamp" }
        let f = try flags(rest[...])
        let identity: SigningIdentity
        do { identity = try SigningIdentity(keyFile: try required(f, "key"), certificateFile: try required(f, "cert")) } catch let e as SigningError {
            throw fail(e.reason, code: 3)
        } catch let e as Failure { throw e } catch { throw fail("\(error)") }
        let input = try required(f, "in")
        guard let data = input == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: input) else {
            throw fail("cannot read \(input)")
        }
        var timeStamp: (tsa: SigningIdentity, at: Double)?
        if stamped {
            let ca = DevelopmentCA.fromEnvironment
            guard let at = Double(f["timestamp-at"] ?? String(Date().timeIntervalSince1970)) else { throw fail("--timestamp-at: seconds since 1970") }
            do { timeStamp = (try SigningIdentity(keyFile: ca.tsaKey, certificateFile: ca.tsaCert), at) } catch {
                throw fail("the development TSA: \(error.reason) (esaylovctl pki init)", code: 3)
            }
        }
        do {
            let cms = attached ? try identity.signAttached([UInt8](data), timeStamp: timeStamp)
                : try identity.signDetached([UInt8](data), timeStamp: timeStamp)
            print(Data(cms).base64EncodedString())
        } catch { throw fail(error.reason, code: 4) }
        return true
    default:
        return false
    }
}

func audited(_ c: Connection, _ kind: String, _ id: String, _ change: String) throws(StoreError) {
    try AuditLog().append(c, actor: .operatorTool, action: "AUDIT_ACTION_DIRECTORY_CHANGED", subjectKind: kind, subjectId: id,
                          facts: ["change": change, "tool": "esaylovctl"])
}

/// Registers a certificate for a person (acting for `organisation`): its PINFL must be the
/// person's and, for an organisation, its TIN the organisation's (the database checks again).
func register(_ cert: CertificateInfo, person: String, organisation: String?, in c: Connection) throws(StoreError) {
    guard let pinfl = cert.subjectPINFL else {
        throw StoreError(.checkViolation, constraint: "subject PINFL", reason: "the certificate's subject has no PINFL")
    }
    let known = try DirectoryWrites().identity(c, personId: person, organisationId: organisation)
    guard let personPinfl = known.pinfl else {
        throw StoreError(.foreignKeyViolation, constraint: "certificates_person_id_fkey", reason: "unknown person")
    }
    guard personPinfl == pinfl else {
        throw StoreError(.checkViolation, constraint: "subject PINFL equals the person's", reason: "PINFL mismatch")
    }
    if let org = organisation {
        guard case .some(let tin) = known.tin else {
            throw StoreError(.foreignKeyViolation, constraint: "certificates_organisation_id_fkey", reason: "unknown organisation")
        }
        guard tin != nil, tin == cert.subjectTIN else {
            throw StoreError(.checkViolation, constraint: "subject TIN equals \(org)'s", reason: "TIN mismatch")
        }
    }
    try DirectoryWrites().registerCertificate(
        c, issuer: cert.issuer, serial: cert.serial, sha256: cert.sha256, subjectPinfl: pinfl, subjectTin: cert.subjectTIN,
        notBefore: cert.notBefore, notAfter: cert.notAfter, personId: person, organisationId: organisation)
    try audited(c, "person", person, "certificate_registered")
}

func run(_ args: [String]) async throws(Failure) {
    if try runOffline(args) { return }
    guard let url = Storage.urlFromEnvironment else { throw fail("ESAYLOV_DATABASE_URL is not set (Scripts/pg.sh url prints the embedded one)") }
    let database: Database
    do { database = try Storage.open(url: url, poolSize: 2, patience: .seconds(10)) } catch { throw fail(error.message, code: 4) }
    switch (args.first, args.dropFirst().first) {
    case ("migrate"?, nil):
        print("esaylovctl: database migrated")
    case ("seed"?, "demo"?):
        let allow = args.dropFirst(2).contains("--allow-operator-data")
        do {
            let n = try Seed.demo(database, allowOperatorData: allow)
            print("esaylovctl: demo directory loaded (\(n) organisations)")
        } catch { throw explain(error, [:]) }
    case ("campaign"?, _):
        try await runCampaign(args, database)
    case ("decision"?, _):
        try await runDecision(args, database)
    case ("directory"?, "add-organisation"?):
        let f = try flags(args.dropFirst(2))
        let id = try required(f, "id")
        guard let kind = OrganisationKind(databaseName: try required(f, "kind")) else { throw fail("--kind: unknown kind (one of \(organisationKinds))") }
        let territory = try validated { () throws(DomainViolation) in try SOATO(f["territory"] ?? "", field: "--territory").value }
        let tin = try f["tin"].map { t throws(Failure) in try validated { () throws(DomainViolation) in try TIN(t, field: "--tin").value } }
        do {
            try await database.transaction { (c) throws(StoreError) in
                try DirectoryWrites().addOrganisation(
                    c, id: id, kind: kind, nameUz: try required2(f, "name-uz"), nameEn: try required2(f, "name-en"), tin: tin,
                    territory: territory, parentId: f["parent"])
                try audited(c, "organisation", id, "added")
            }
        } catch { throw explain(error, constraintFields) }
        print("esaylovctl: organisation \(id) added")
    case ("directory"?, "update-organisation"?):
        let f = try flags(args.dropFirst(2))
        let id = try required(f, "id")
        let tin = try f["tin"].map { t throws(Failure) in
            t.isEmpty ? "" : try validated { () throws(DomainViolation) in try TIN(t, field: "--tin").value }
        }
        if let a = f["active"], a != "true", a != "false" { throw fail("--active: true or false") }
        let active = f["active"].map { $0 == "true" }
        for name in ["name-uz", "name-en"] where f[name]?.isEmpty == true { throw fail("--\(name): must not be empty") }
        let found: Bool
        do {
            found = try await database.transaction { (c) throws(StoreError) in
                let changed = try DirectoryWrites().updateOrganisation(
                    c, id: id, nameUz: f["name-uz"], nameEn: f["name-en"], tin: tin, parentId: f["parent"], active: active)
                if changed { try audited(c, "organisation", id, "updated") }
                return changed
            }
        } catch { throw explain(error, constraintFields) }
        guard found else { throw fail("--id: no organisation has id \(id)", code: 3) }
        print("esaylovctl: organisation \(id) updated")
    case ("directory"?, "add-person"?):
        let f = try flags(args.dropFirst(2))
        let id = try required(f, "id")
        let pinfl = try validated { () throws(DomainViolation) in try PINFL(f["pinfl"] ?? "", field: "--pinfl").value }
        let phone = try f["phone"].map { p throws(Failure) in try validated { () throws(DomainViolation) in try PhoneNumber(p, field: "--phone").value } }
        let last = try required(f, "last-name")
        let first = try required(f, "first-name")
        do {
            try await database.transaction { (c) throws(StoreError) in
                try DirectoryWrites().addPerson(c, id: id, pinfl: pinfl, lastName: last, firstName: first, patronymic: f["patronymic"] ?? "", phone: phone)
                try audited(c, "person", id, "added")
            }
        } catch { throw explain(error, constraintFields) }
        print("esaylovctl: person \(id) added")
    case ("directory"?, "assign-role"?):
        let f = try flags(args.dropFirst(2))
        guard let role = Role(databaseName: try required(f, "role")) else { throw fail("--role: unknown role (one of \(roles))") }
        let org = try required(f, "organisation")
        let person = try required(f, "person")
        do {
            try await database.transaction { (c) throws(StoreError) in
                guard let kind = try c.run(DirectoryStore().organisation(id: org))?.kind else {
                    throw StoreError(.foreignKeyViolation, constraint: "memberships_organisation_id_fkey", reason: "unknown organisation")
                }
                // cl. 11, 12: commission roles exist only in commissions; head only outside them.
                if !role.fits(kind) {
                    throw StoreError(.checkViolation, constraint: "role fits the organisation's kind", reason: "role does not fit")
                }
                try DirectoryWrites().assignRole(c, organisationId: org, personId: person, role: role)
                try audited(c, "organisation", org, "role_assigned")
            }
        } catch { throw explain(error, constraintFields) }
        print("esaylovctl: \(person) is now \(role.databaseName) of \(org)")
    case ("directory"?, "register-certificate"?):
        let f = try flags(args.dropFirst(2))
        let file = try required(f, "file")
        let person = try required(f, "person")
        guard let data = FileManager.default.contents(atPath: file) else { throw fail("cannot read \(file)") }
        let cert: CertificateInfo
        do { cert = try CertificateInfo([UInt8](data)) } catch { throw fail("--file: \(error.reason)") }
        if let pinfl = cert.subjectPINFL { _ = try validated { () throws(DomainViolation) in try PINFL(pinfl, field: "--file subject PINFL") } }
        do {
            try await database.transaction { (c) throws(StoreError) in try register(cert, person: person, organisation: f["organisation"], in: c) }
        } catch { throw explain(error, constraintFields) }
        print("esaylovctl: certificate \(cert.serial) registered for \(person)")
    case ("directory"?, "import"?):
        guard args.count == 3 else { throw fail(usage) }
        guard let text = try? String(contentsOfFile: args[2], encoding: .utf8) else { throw fail("cannot read \(args[2])") }
        let rows = try importRows(text)
        let failedLine = LineTracker()
        do {
            try await database.transaction { (c) throws(StoreError) in
                for r in rows {
                    failedLine.line.store(r.line, ordering: .relaxed)
                    try DirectoryWrites().addOrganisation(
                        c, id: r.id, kind: r.kind, nameUz: r.nameUz, nameEn: r.nameEn, tin: r.tin, territory: r.territory, parentId: r.parent)
                    try audited(c, "organisation", r.id, "imported")
                }
            }
        } catch {
            let e = explain(error, constraintFields)
            let message = e.message.replacingOccurrences(of: "--", with: "")  // columns, not flags
            throw Failure(message: "line \(failedLine.line.load(ordering: .relaxed)): \(message); nothing was imported", code: e.code)
        }
        print("esaylovctl: imported \(rows.count) organisations")
    case ("directory"?, "add-candidate"?):
        let f = try flags(args.dropFirst(2))
        let id = try required(f, "id")
        let person = try required(f, "person")
        let commission = try required(f, "commission")
        guard let kind = ElectionKind(databaseName: try required(f, "election-kind")) else {
            throw fail("--election-kind: one of \(electionKinds)")
        }
        let constituency = Int32(f["constituency"] ?? "0") ?? -1
        guard constituency >= 0 else { throw fail("--constituency: a whole number, 0 or more") }
        do {
            try await database.transaction { (c) throws(StoreError) in
                try c.query(
                    """
                    INSERT INTO candidates (id, person_id, election_kind, registering_commission_id, constituency_number, party_id, status)
                    VALUES (\(id), \(person), \(kind.databaseName), \(commission), \(constituency), \(f["party"]), 'registered')
                    """)
                try audited(c, "candidate", id, "added")
            }
        } catch { throw explain(error, constraintFields) }
        print("esaylovctl: candidate \(id) registered (person \(person), commission \(commission))")
    case ("directory"?, "add-proxy"?):
        let f = try flags(args.dropFirst(2))
        let id = try required(f, "id")
        let person = try required(f, "person")
        let candidate = try required(f, "candidate")
        do {
            try await database.transaction { (c) throws(StoreError) in
                try c.query("INSERT INTO proxies (id, person_id, candidate_id, status) VALUES (\(id), \(person), \(candidate), 'registered')")
                try audited(c, "proxy", id, "added")
            }
        } catch { throw explain(error, constraintFields) }
        print("esaylovctl: proxy \(id) registered for candidate \(candidate)")
    case ("pki"?, "issue"?):
        let f = try flags(args.dropFirst(2))
        let person = try required(f, "person")
        guard let keyKind = PrivateKey.Kind(rawValue: f["key-type"] ?? "ecdsa-p256") else { throw fail("--key-type: ecdsa-p256, rsa-2048 or ed25519") }
        guard let days = Double(f["days"] ?? "365"), days > 0, let startDays = Double(f["starts-in-days"] ?? "0") else {
            throw fail("--days must be positive; --starts-in-days a number of days (negative: in the past)")
        }
        let ca = DevelopmentCA.fromEnvironment
        let org = f["organisation"]
        let facts: (pinfl: String, name: String, tin: String?, orgName: String?)
        do {
            facts = try await database.transaction { (c) throws(StoreError) in
                let p = try c.query("SELECT pinfl, last_name || ' ' || first_name AS name FROM people WHERE id = \(person)")
                guard p.count == 1 else { throw StoreError(.foreignKeyViolation, constraint: "certificates_person_id_fkey", reason: "unknown person") }
                var tin: String?
                var orgName: String?
                if let org {
                    let o = try c.query("SELECT tin, name_en FROM organisations WHERE id = \(org)")
                    guard o.count == 1 else {
                        throw StoreError(.foreignKeyViolation, constraint: "certificates_organisation_id_fkey", reason: "unknown organisation")
                    }
                    tin = try o.optionalString(0, "tin")
                    orgName = try o.string(0, "name_en")
                }
                return (try p.string(0, "pinfl"), try p.string(0, "name"), tin, orgName)
            }
        } catch { throw explain(error, constraintFields) }
        if org != nil, facts.tin == nil { throw fail("--organisation: it has no TIN, so a legal entity's certificate cannot name it", code: 3) }
        let dir = f["out"] ?? ca.personDirectory(person)
        let cert = try ca.issue(
            .init(commonName: facts.name, organisationName: facts.orgName, pinfl: facts.pinfl, tin: facts.tin), keyKind: keyKind,
            start: Date().timeIntervalSince1970 + startDays * DevelopmentCA.day, days: days, into: dir)
        do {
            try await database.transaction { (c) throws(StoreError) in try register(cert, person: person, organisation: org, in: c) }
        } catch { throw explain(error, constraintFields) }
        print("esaylovctl: certificate \(cert.serial) issued and registered for \(person)")
        print("  key:  \(dir)/key.pem")
        print("  cert: \(dir)/cert.pem")
    case ("pki"?, "issue-demo"?):
        let ca = DevelopmentCA.fromEnvironment
        _ = try ca.initialise()
        let officers: [(person: String, org: String, pinfl: String, name: String, tin: String, orgName: String)]
        do {
            officers = try await database.transaction { (c) throws(StoreError) in
                let r = try c.query(
                    """
                    SELECT DISTINCT ON (m.person_id) m.person_id, m.organisation_id, p.pinfl, p.last_name || ' ' || p.first_name AS name, o.tin, o.name_en
                    FROM current_memberships m JOIN people p ON p.id = m.person_id JOIN organisations o ON o.id = m.organisation_id
                    WHERE p.id LIKE 'seed-%' AND o.tin IS NOT NULL AND m.role IN ('head', 'chairperson', 'deputy_chairperson', 'secretary', 'member')
                      AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.person_id = p.id AND c.revoked_at IS NULL)
                    ORDER BY m.person_id, m.organisation_id
                    """)
                return try (0..<r.count).map { (i) throws(StoreError) in
                    (try r.string(i, "person_id"), try r.string(i, "organisation_id"), try r.string(i, "pinfl"), try r.string(i, "name"),
                     try r.string(i, "tin"), try r.string(i, "name_en"))
                }
            }
        } catch { throw explain(error, constraintFields) }
        var issued: [(CertificateInfo, String, String)] = []
        for o in officers {
            let cert = try ca.issue(
                .init(commonName: o.name, organisationName: o.orgName, pinfl: o.pinfl, tin: o.tin), keyKind: .p256,
                start: Date().timeIntervalSince1970 - DevelopmentCA.day, days: 730, into: ca.personDirectory(o.person))
            issued.append((cert, o.person, o.org))
        }
        let batch = issued
        do {
            try await database.transaction(timeout: .seconds(300)) { (c) throws(StoreError) in
                for (cert, person, org) in batch { try register(cert, person: person, organisation: org, in: c) }
            }
        } catch { throw explain(error, constraintFields) }
        print("esaylovctl: \(issued.count) demo certificates issued (officers and heads without one) under \(ca.root)/people")
    case ("pki"?, "revoke"?):
        var rest = Array(args.dropFirst(2))
        let ocspOnly = rest.contains("--ocsp-only")
        rest.removeAll { $0 == "--ocsp-only" }
        let f = try flags(rest[...])
        let serial = try required(f, "serial").lowercased()
        guard serial.utf8.count <= 64, Crypto.unhex(serial.count % 2 == 0 ? serial : "0" + serial) != nil else { throw fail("--serial: hex digits") }
        let ca = DevelopmentCA.fromEnvironment
        try ca.revoke(serial: serial, ocspOnly: ocspOnly)
        let marked: Int
        do {
            marked = try await database.transaction { (c) throws(StoreError) -> Int in
                let r = try c.query("UPDATE certificates SET revoked_at = now() WHERE serial = \(serial) AND revoked_at IS NULL RETURNING person_id")
                for i in 0..<r.count { try audited(c, "person", try r.string(i, "person_id"), "certificate_revoked") }
                return r.count
            }
        } catch { throw explain(error, constraintFields) }
        print("esaylovctl: \(serial) revoked: \(ocspOnly ? "OCSP index \(ca.index)" : "CRL \(ca.crl) and OCSP index") rewritten; \(marked) directory certificate(s) marked revoked")
    case ("audit"?, "verify"?):
        let f = try flags(args.dropFirst(2))
        do { try await AuditLog().flush(database) } catch { throw explain(error, [:]) }
        guard let from = Int(f["from"] ?? "0"), let to = Int(f["to"] ?? "0"), from >= 0, to >= 0 else { throw fail("--from and --to: whole numbers") }
        let ca = DevelopmentCA.fromEnvironment
        let verifier = (try? TrustStore(directory: ca.root + "/trust")).map { SignatureVerifier(trustStore: $0) }
        let report: AuditChain.Report
        do { report = try await AuditChain(database: database).verify(from: from, to: to, verifier: verifier) } catch { throw explain(error, [:]) }
        let cp = report.checkpointSequence == 0 ? "no checkpoint" : "checkpoint at \(report.checkpointSequence) \(report.checkpointIntact ? "intact" : "BROKEN")"
        if report.check.intact {
            print("esaylovctl: audit chain intact: \(report.check.checked) events checked, head \(report.headSequence) \(report.check.lastHash); \(cp)")
        } else {
            throw fail("audit chain BROKEN at event \(report.check.firstBroken): \(report.check.problem) (\(report.check.checked) events checked before it; \(cp))", code: 5)
        }
    case ("audit"?, "checkpoint"?):
        let ca = DevelopmentCA.fromEnvironment
        let signer: SigningIdentity
        do { signer = try SigningIdentity(keyFile: ca.serverKey, certificateFile: ca.serverCert) } catch {
            throw fail("the server's signing identity: \(error.reason) (esaylovctl pki init)", code: 3)
        }
        let covered: Int?
        do { covered = try await AuditChain(database: database).checkpoint(signer: signer) } catch { throw explain(error, [:]) }
        print(covered.map { "esaylovctl: audit checkpoint signed at event \($0)" } ?? "esaylovctl: the audit log is empty; no checkpoint")
    default:
        throw fail(usage)
    }
    // The events of this command go into the chain now, whether or not a server runs.
    do { try await AuditLog().flush(database) } catch { throw explain(error, [:]) }
}

/// `required` for use inside a storage closure, where only StoreError may be thrown.
func required2(_ f: [String: String], _ name: String) throws(StoreError) -> String {
    guard let v = f[name], !v.isEmpty else { throw StoreError(.checkViolation, constraint: "--\(name) is required", reason: "missing") }
    return v
}

/// The row an import was at when it failed (set inside the transaction, read after it).
final class LineTracker: Sendable {
    let line = Atomic<Int>(0)
}

// The command line (Commands.swift) runs the operation its command names.
do {
    var command = try ESaylovCtl.parseAsRoot()
    if let operation = command as? any Runnable {
        try await operation.run()
    } else {
        try command.run()
    }
} catch {
    ESaylovCtl.exit(withError: error)
}
