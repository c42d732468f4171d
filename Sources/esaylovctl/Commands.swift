import ArgumentParser
import Domain
import Foundation
import Services
#if canImport(Glibc)
import Glibc
#endif

// The command line of esaylovctl (swift-argument-parser): every command and flag documented by
// `--help` at each level, unknown or missing flags refused naming them. The global options
// come from the environment too. Each command hands its flags to the operations in main.swift.

/// A command that runs asynchronously (a group's default run shows its help).
protocol Runnable {
    func run() async throws
}

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The database (default: $ESAYLOV_DATABASE_URL; Scripts/pg.sh url prints the embedded one).", valueName: "url"))
    var databaseUrl: String?
    @Option(help: ArgumentHelp("The development CA's directory (default: $ESAYLOV_PKI_DIR, else .data/pki).", valueName: "dir"))
    var pkiDir: String?
}

/// Runs the operation `path` with `flags` (those given) and `switches` (those set).
func perform(_ global: GlobalOptions, _ path: [String], _ flags: [(String, String?)] = [], switches: [(String, Bool)] = []) async {
    if let url = global.databaseUrl { setenv("ESAYLOV_DATABASE_URL", url, 1) }
    if let dir = global.pkiDir { setenv("ESAYLOV_PKI_DIR", dir, 1) }
    var args = path
    for (name, value) in flags { if let value { args += ["--" + name, value] } }
    for (name, on) in switches where on { args.append("--" + name) }
    do {
        try await run(args)
        exit(0)
    } catch {
        ServerMain.printError("esaylovctl: \(error.message)")
        exit(error.code)
    }
}

let organisationKinds = OrganisationKind.allCases.map(\.databaseName).joined(separator: ", ")
let roles = Role.allCases.map(\.databaseName).joined(separator: ", ")
let electionKinds = ElectionKind.allCases.map(\.databaseName).joined(separator: ", ")

struct ESaylovCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "esaylovctl", abstract: "Operator commands of E-saylov on the database named by ESAYLOV_DATABASE_URL.",
        discussion: """
            KIND: \(organisationKinds)
            ROLE: \(roles)
            ELECTIONS: \(electionKinds)
            Exit status: 0 done, 2 wrong usage, 3 refused by a rule of the directory, 4 storage or key failure, 64 unknown or missing flags.
            """,
        subcommands: [Migrate.self, SeedCommand.self, PKICommand.self, Sign.self, Audit.self, DirectoryCommand.self, CampaignCommand.self, DecisionCommand.self])
}

struct Migrate: AsyncParsableCommand, Runnable {
    static let configuration = CommandConfiguration(abstract: "Applies the migrations the database lacks.")
    @OptionGroup var global: GlobalOptions
    func run() async { await perform(global, ["migrate"]) }
}

struct SeedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "seed", abstract: "Loads data.", subcommands: [Demo.self])
    struct Demo: AsyncParsableCommand, Runnable {
        static let configuration = CommandConfiguration(abstract: "The demo directory (refuses a database holding data it did not load).")
        @OptionGroup var global: GlobalOptions
        @Flag(help: "Load it beside operator data all the same.") var allowOperatorData = false
        func run() async { await perform(global, ["seed", "demo"], switches: [("allow-operator-data", allowOperatorData)]) }
    }
}

struct PKICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki", abstract: "The development certification authority.",
        subcommands: [Init.self, Issue.self, IssueDemo.self, IssueTLSClient.self, Revoke.self])

    struct Init: AsyncParsableCommand, Runnable {
        static let configuration = CommandConfiguration(abstract: "Creates the CA, its CRL, the server's signing identity, the TSA and the TLS certificate, unless they exist.")
        @OptionGroup var global: GlobalOptions
        func run() async { await perform(global, ["pki", "init"]) }
    }

    struct Issue: AsyncParsableCommand, Runnable {
        static let configuration = CommandConfiguration(abstract: "Issues and registers an EDS certificate for a directory person.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The person.") var person: String
        @Option(help: "The organisation they act for (its TIN goes into the subject).") var organisation: String?
        @Option(help: "ecdsa-p256, rsa-2048 or ed25519 (default: ecdsa-p256).") var keyType: String?
        @Option(help: "Validity in days (default: 365).") var days: String?
        @Option(parsing: .unconditional, help: "Validity starts this many days from now (negative: in the past).") var startsInDays: String?
        @Option(help: "Directory for key.pem and cert.pem (default: people/<person> of the CA).") var out: String?
        func run() async {
            await perform(global, ["pki", "issue"], [("person", person), ("organisation", organisation), ("key-type", keyType), ("days", days),
                                                      ("starts-in-days", startsInDays), ("out", out)])
        }
    }

    struct IssueDemo: AsyncParsableCommand, Runnable {
        static let configuration = CommandConfiguration(abstract: "A key and certificate for every demo head and officer without one.")
        @OptionGroup var global: GlobalOptions
        func run() async { await perform(global, ["pki", "issue-demo"]) }
    }

    struct IssueTLSClient: AsyncParsableCommand, Runnable {
        static let configuration = CommandConfiguration(
            commandName: "issue-tls-client", abstract: "A mutual-TLS client certificate: an agency system's machine identity.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Lower-case letters, digits and hyphens; the certificate's CN and its directory under clients/.") var name: String
        @Option(help: "The organisation's TIN (9 digits).") var tin: String?
        @Option(help: "A person's PINFL (14 digits).") var pinfl: String?
        @Option(help: "The subject's organisation name.") var organisationName: String?
        @Option(help: "Validity in days (default: 365).") var days: String?
        @Option(help: "Directory for key.pem and cert.pem.") var out: String?
        func run() async {
            await perform(global, ["pki", "issue-tls-client"], [("name", name), ("tin", tin), ("pinfl", pinfl), ("organisation-name", organisationName),
                                                                 ("days", days), ("out", out)])
        }
    }

    struct Revoke: AsyncParsableCommand, Runnable {
        static let configuration = CommandConfiguration(abstract: "Revokes a certificate (CRL and OCSP index).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The certificate's serial number, hex.") var serial: String
        @Flag(help: "The OCSP index only, not the CRL.") var ocspOnly = false
        func run() async { await perform(global, ["pki", "revoke"], [("serial", serial)], switches: [("ocsp-only", ocspOnly)]) }
    }
}

struct Sign: AsyncParsableCommand, Runnable {
    static let configuration = CommandConfiguration(abstract: "Signs a file: base64 CMS on standard output.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "The signer's key (PEM).") var key: String
    @Option(help: "The signer's certificate.") var cert: String
    @Option(name: .customLong("in"), parsing: .unconditional, help: "The file to sign; - for standard input.") var input: String
    @Flag(help: "The content inside the CMS (default: detached).") var attached = false
    @Flag(help: "With an RFC 3161 token of the development TSA.") var timestamp = false
    @Option(help: "The time the token states, seconds since 1970 (default: now).") var timestampAt: String?
    func run() async {
        await perform(global, ["sign"], [("key", key), ("cert", cert), ("in", input), ("timestamp-at", timestampAt)],
                      switches: [("attached", attached), ("timestamp", timestamp)])
    }
}

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The audit chain.", subcommands: [Verify.self, Checkpoint.self])
    struct Verify: AsyncParsableCommand, Runnable {
        static let configuration = CommandConfiguration(abstract: "Verifies the hash chain and its signed checkpoints.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "First sequence number (default: the start).") var from: String?
        @Option(help: "Last sequence number (default: the end).") var to: String?
        func run() async { await perform(global, ["audit", "verify"], [("from", from), ("to", to)]) }
    }
    struct Checkpoint: AsyncParsableCommand, Runnable {
        static let configuration = CommandConfiguration(abstract: "Signs a checkpoint of the chain now (the server's signing key).")
        @OptionGroup var global: GlobalOptions
        func run() async { await perform(global, ["audit", "checkpoint"]) }
    }
}

struct DirectoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "directory", abstract: "The directory: organisations, people, roles, certificates, candidates, proxies.",
        subcommands: [AddOrganisation.self, UpdateOrganisation.self, AddPerson.self, AssignRole.self, RegisterCertificate.self, Import.self,
                      AddCandidate.self, AddProxy.self])

    struct AddOrganisation: AsyncParsableCommand, Runnable {
        static let configuration = CommandConfiguration(abstract: "Adds an organisation.")
        @OptionGroup var global: GlobalOptions
        @Option var id: String
        @Option(help: "KIND (esaylovctl --help lists them).") var kind: String
        @Option var nameUz: String
        @Option var nameEn: String
        @Option(help: "SOATO code.") var territory: String
        @Option(help: "TIN, 9 digits.") var tin: String?
        @Option(help: "The parent organisation.") var parent: String?
        func run() async {
            await perform(global, ["directory", "add-organisation"], [("id", id), ("kind", kind), ("name-uz", nameUz), ("name-en", nameEn),
                                                                      ("territory", territory), ("tin", tin), ("parent", parent)])
        }
    }

    struct UpdateOrganisation: AsyncParsableCommand, Runnable {
        static let configuration = CommandConfiguration(abstract: "Changes an organisation (an empty --tin or --parent clears it).")
        @OptionGroup var global: GlobalOptions
        @Option var id: String
        @Option var nameUz: String?
        @Option var nameEn: String?
        @Option var tin: String?
        @Option var parent: String?
        @Option(help: "true or false.") var active: String?
        func run() async {
            await perform(global, ["directory", "update-organisation"], [("id", id), ("name-uz", nameUz), ("name-en", nameEn), ("tin", tin),
                                                                         ("parent", parent), ("active", active)])
        }
    }

    struct AddPerson: AsyncParsableCommand, Runnable {
        static let configuration = CommandConfiguration(abstract: "Adds a person.")
        @OptionGroup var global: GlobalOptions
        @Option var id: String
        @Option(help: "14 digits with a valid check digit.") var pinfl: String
        @Option var lastName: String
        @Option var firstName: String
        @Option var patronymic: String?
        @Option(help: "+998 and 9 digits.") var phone: String?
        func run() async {
            await perform(global, ["directory", "add-person"], [("id", id), ("pinfl", pinfl), ("last-name", lastName), ("first-name", firstName),
                                                                ("patronymic", patronymic), ("phone", phone)])
        }
    }

    struct AssignRole: AsyncParsableCommand, Runnable {
        static let configuration = CommandConfiguration(abstract: "Gives a person a role in an organisation.")
        @OptionGroup var global: GlobalOptions
        @Option var organisation: String
        @Option var person: String
        @Option(help: "ROLE (esaylovctl --help lists them).") var role: String
        func run() async { await perform(global, ["directory", "assign-role"], [("organisation", organisation), ("person", person), ("role", role)]) }
    }

    struct RegisterCertificate: AsyncParsableCommand, Runnable {
        static let configuration = CommandConfiguration(abstract: "Registers a person's EDS certificate (its PINFL, and TIN for an organisation, must match).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "PEM or DER.") var file: String
        @Option var person: String
        @Option var organisation: String?
        func run() async {
            await perform(global, ["directory", "register-certificate"], [("file", file), ("person", person), ("organisation", organisation)])
        }
    }

    struct Import: AsyncParsableCommand, Runnable {
        static let configuration = CommandConfiguration(
            abstract: "Imports organisations from CSV: id,kind,name_uz,name_en,tin,territory,parent; all rows or none.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The CSV file.") var file: String
        func run() async { await perform(global, ["directory", "import", file]) }
    }

    struct AddCandidate: AsyncParsableCommand, Runnable {
        static let configuration = CommandConfiguration(abstract: "Registers a candidate.")
        @OptionGroup var global: GlobalOptions
        @Option var id: String
        @Option var person: String
        @Option(help: "ELECTIONS (esaylovctl --help lists them).") var electionKind: String
        @Option var commission: String
        @Option var party: String?
        @Option var constituency: String?
        func run() async {
            await perform(global, ["directory", "add-candidate"], [("id", id), ("person", person), ("election-kind", electionKind),
                                                                   ("commission", commission), ("party", party), ("constituency", constituency)])
        }
    }

    struct AddProxy: AsyncParsableCommand, Runnable {
        static let configuration = CommandConfiguration(abstract: "Registers a candidate's proxy.")
        @OptionGroup var global: GlobalOptions
        @Option var id: String
        @Option var person: String
        @Option var candidate: String
        func run() async { await perform(global, ["directory", "add-proxy"], [("id", id), ("person", person), ("candidate", candidate)]) }
    }
}

struct CampaignCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "campaign", abstract: "Election campaigns and their catalogues.",
        subcommands: [Create.self, Show.self, Move.self, SetWindow.self, Settings.self, Catalogue.self])

    struct Create: AsyncParsableCommand, Runnable {
        static let configuration = CommandConfiguration(abstract: "Creates a campaign.")
        @OptionGroup var global: GlobalOptions
        @Option var id: String
        @Option var name: String
        @Option(help: "ELECTIONS, comma-separated.") var elections: String
        @Option(help: "YYYY-MM-DD.") var announced: String
        @Option(help: "YYYY-MM-DD.") var election: String
        @Option(help: "A catalogue JSON file (default: the standard catalogue).") var catalogue: String?
        func run() async {
            await perform(global, ["campaign", "create"], [("id", id), ("name", name), ("elections", elections), ("announced", announced),
                                                           ("election", election), ("catalogue", catalogue)])
        }
    }

    struct Show: AsyncParsableCommand, Runnable {
        static let configuration = CommandConfiguration(abstract: "Shows a campaign.")
        @OptionGroup var global: GlobalOptions
        @Option var id: String
        func run() async { await perform(global, ["campaign", "show"], [("id", id)]) }
    }

    struct Move: AsyncParsableCommand, Runnable {
        static let configuration = CommandConfiguration(abstract: "Moves a campaign's dates.")
        @OptionGroup var global: GlobalOptions
        @Option var id: String
        @Option(help: "YYYY-MM-DD.") var announced: String?
        @Option(help: "YYYY-MM-DD.") var election: String?
        func run() async { await perform(global, ["campaign", "move"], [("id", id), ("announced", announced), ("election", election)]) }
    }

    struct SetWindow: AsyncParsableCommand, Runnable {
        static let configuration = CommandConfiguration(abstract: "Changes a request type's window (a new catalogue version).")
        @OptionGroup var global: GlobalOptions
        @Option var id: String
        @Option(help: "The request type's number.") var type: String
        @Option(help: "YYYY-MM-DD, A+N, A-N, E-N or none.") var opens: String?
        @Option(help: "YYYY-MM-DD, A+N, A-N, E-N or none.") var closes: String?
        @Option var decisionDays: String?
        func run() async {
            await perform(global, ["campaign", "set-window"], [("id", id), ("type", type), ("opens", opens), ("closes", closes),
                                                               ("decision-days", decisionDays)])
        }
    }

    struct Settings: AsyncParsableCommand, Runnable {
        static let configuration = CommandConfiguration(abstract: "Changes a campaign's limits and switches.")
        @OptionGroup var global: GlobalOptions
        @Option var id: String
        @Option var maxAttachmentBytes: String?
        @Option var maxAttachments: String?
        @Option var maxRequestBytes: String?
        @Option(help: "true or false.") var forbidDrafterApproving: String?
        @Option(help: "true or false.") var closed: String?
        func run() async {
            await perform(global, ["campaign", "settings"], [("id", id), ("max-attachment-bytes", maxAttachmentBytes), ("max-attachments", maxAttachments),
                                                             ("max-request-bytes", maxRequestBytes), ("forbid-drafter-approving", forbidDrafterApproving),
                                                             ("closed", closed)])
        }
    }

    struct Catalogue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A campaign's catalogue as JSON.", subcommands: [Export.self, Import.self])
        struct Export: AsyncParsableCommand, Runnable {
            static let configuration = CommandConfiguration(abstract: "The catalogue (JSON on standard output).")
            @OptionGroup var global: GlobalOptions
            @Option var id: String
            @Option(help: "Catalogue version (default: the current one).") var version: String?
            func run() async { await perform(global, ["campaign", "catalogue", "export"], [("id", id), ("version", version)]) }
        }
        struct Import: AsyncParsableCommand, Runnable {
            static let configuration = CommandConfiguration(abstract: "A new catalogue version from JSON, checked against clause 6.")
            @OptionGroup var global: GlobalOptions
            @Option var id: String
            @Option var file: String
            @Option var note: String?
            func run() async { await perform(global, ["campaign", "catalogue", "import"], [("id", id), ("file", file), ("note", note)]) }
        }
    }
}

struct DecisionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "decision", abstract: "Decisions.", subcommands: [Export.self])
    struct Export: AsyncParsableCommand, Runnable {
        static let configuration = CommandConfiguration(
            abstract: "Writes a decision's approval envelope, its CMS and receipt, and VERIFY.txt with the openssl commands.")
        @OptionGroup var global: GlobalOptions
        @Option var id: String?
        @Option var commission: String?
        @Option(help: "N/YYYY.") var number: String?
        @Option var out: String
        func validate() throws {
            if id == nil, commission == nil || number == nil { throw ValidationError("give --id, or --commission and --number") }
        }
        func run() async { await perform(global, ["decision", "export"], [("id", id), ("commission", commission), ("number", number), ("out", out)]) }
    }
}
