#if canImport(Glibc)
import Glibc
#endif
import Domain
import Services
import Store
import Foundation
import Signatures
import Synchronization

// esaylovctl: operator commands on the database named by ESAYLOV_DATABASE_URL.
let usage = """
    usage: esaylovctl migrate
           esaylovctl seed demo
           esaylovctl directory add-organisation --id ID --kind KIND --name-uz TEXT --name-en TEXT --territory SOATO
                                                 [--tin TIN] [--parent ID]
           esaylovctl directory update-organisation --id ID [--name-uz TEXT] [--name-en TEXT] [--tin TIN|""]
                                                    [--parent ID|""] [--active true|false]
           esaylovctl directory add-person --id ID --pinfl PINFL --last-name TEXT --first-name TEXT
                                           [--patronymic TEXT] [--phone +998XXXXXXXXX]
           esaylovctl directory assign-role --organisation ID --person ID --role ROLE
           esaylovctl directory register-certificate --file CERT.pem|der --person ID [--organisation ID]
           esaylovctl directory import FILE.csv     (columns: id,kind,name_uz,name_en,tin,territory,parent;
                                                     all rows or none; parents may come earlier in the file)
    KIND: \(OrganisationKind.allCases.map(\.databaseName).joined(separator: ", "))
    ROLE: \(Role.allCases.map(\.databaseName).joined(separator: ", "))
    """

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

func run(_ args: [String]) async throws(Failure) {
    guard let url = Storage.urlFromEnvironment else { throw fail("ESAYLOV_DATABASE_URL is not set (Scripts/pg.sh url prints the embedded one)") }
    let database: Database
    do { database = try Storage.open(url: url, poolSize: 2, patience: .seconds(10)) } catch { throw fail(error.message, code: 4) }
    switch (args.first, args.dropFirst().first) {
    case ("migrate"?, nil):
        print("esaylovctl: database migrated")
    case ("seed"?, "demo"?):
        do {
            let n = try Seed.demo(database)
            print("esaylovctl: demo directory loaded (\(n) organisations)")
        } catch { throw explain(error, [:]) }
    case ("directory"?, "add-organisation"?):
        let f = try flags(args.dropFirst(2))
        let id = try required(f, "id")
        guard let kind = OrganisationKind(databaseName: try required(f, "kind")) else { throw fail("--kind: unknown kind\n\(usage)") }
        let territory = try validated { () throws(DomainViolation) in try SOATO(f["territory"] ?? "", field: "--territory").value }
        let tin = try f["tin"].map { t throws(Failure) in try validated { () throws(DomainViolation) in try TIN(t, field: "--tin").value } }
        do {
            try await database.transaction { (c) throws(StoreError) in
                try DirectoryWrites().addOrganisation(
                    c, id: id, kind: kind, nameUz: try required2(f, "name-uz"), nameEn: try required2(f, "name-en"), tin: tin,
                    territory: territory, parentId: f["parent"])
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
                try DirectoryWrites().updateOrganisation(
                    c, id: id, nameUz: f["name-uz"], nameEn: f["name-en"], tin: tin, parentId: f["parent"], active: active)
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
            }
        } catch { throw explain(error, constraintFields) }
        print("esaylovctl: person \(id) added")
    case ("directory"?, "assign-role"?):
        let f = try flags(args.dropFirst(2))
        guard let role = Role(databaseName: try required(f, "role")) else { throw fail("--role: unknown role\n\(usage)") }
        let org = try required(f, "organisation")
        let person = try required(f, "person")
        do {
            try await database.transaction { (c) throws(StoreError) in
                guard let kind = try c.run(DirectoryStore().organisation(id: org))?.kind else {
                    throw StoreError(.foreignKeyViolation, constraint: "memberships_organisation_id_fkey", reason: "unknown organisation")
                }
                // cl. 11, 12: commission roles exist only in commissions; head only outside them.
                if kind.isElectionCommission == (role == .head || role == .clerk) {
                    throw StoreError(.checkViolation, constraint: "role fits the organisation's kind", reason: "role does not fit")
                }
                try DirectoryWrites().assignRole(c, organisationId: org, personId: person, role: role)
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
        guard let pinfl = cert.subjectPINFL else { throw fail("--file: the certificate's subject has no PINFL (OID \(CertificateInfo.pinflOID))") }
        _ = try validated { () throws(DomainViolation) in try PINFL(pinfl, field: "--file subject PINFL") }
        do {
            try await database.transaction { (c) throws(StoreError) in
                let known = try DirectoryWrites().identity(c, personId: person, organisationId: f["organisation"])
                guard let personPinfl = known.pinfl else {
                    throw StoreError(.foreignKeyViolation, constraint: "certificates_person_id_fkey", reason: "unknown person")
                }
                // The certificate must be the person's own, and the organisation's when it acts for one.
                guard personPinfl == pinfl else {
                    throw StoreError(.checkViolation, constraint: "subject PINFL equals the person's", reason: "PINFL mismatch")
                }
                if let org = f["organisation"] {
                    guard case .some(let tin) = known.tin else {
                        throw StoreError(.foreignKeyViolation, constraint: "certificates_organisation_id_fkey", reason: "unknown organisation")
                    }
                    guard tin != nil, tin == cert.subjectTIN else {
                        throw StoreError(.checkViolation, constraint: "subject TIN equals \(org)'s", reason: "TIN mismatch")
                    }
                }
                try DirectoryWrites().registerCertificate(
                    c, issuer: cert.issuer, serial: cert.serial, sha256: cert.sha256, subjectPinfl: pinfl, subjectTin: cert.subjectTIN,
                    notBefore: cert.notBefore, notAfter: cert.notAfter, personId: person, organisationId: f["organisation"])
            }
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
                }
            }
        } catch {
            let e = explain(error, constraintFields)
            let message = e.message.replacingOccurrences(of: "--", with: "")  // columns, not flags
            throw Failure(message: "line \(failedLine.line.load(ordering: .relaxed)): \(message); nothing was imported", code: e.code)
        }
        print("esaylovctl: imported \(rows.count) organisations")
    default:
        throw fail(usage)
    }
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

do {
    try await run(Array(CommandLine.arguments.dropFirst()))
    exit(0)
} catch {
    ServerMain.printError("esaylovctl: \(error.message)")
    exit(error.code)
}
