#if canImport(Glibc)
import Glibc
#endif
import Domain
import Foundation
import Signatures
import Store

/// The development certification authority under `.data/pki/` (or `ESAYLOV_PKI_DIR`):
///   ca/key.pem             the CA's key (0600)
///   ca/revoked.tsv         serial, revocation time (seconds since 1970), one per line
///   ca/index.txt           every certificate issued, in OpenSSL's index format (and its
///                          .attr), so that `openssl ocsp -index ca/index.txt …` answers for this CA
///   trust/ca.pem           the CA certificate: the server's trust store is `trust/`
///   trust/crl.pem          its CRL, rewritten by `pki revoke`
///   server/{key,cert}.pem  the server's own signing identity (receipts, audit checkpoints)
///   tsa/{key,cert}.pem     a development time-stamping authority (`esaylovctl sign --timestamp`)
///   tls/{key,cert}.pem     the server's TLS certificate (localhost, 127.0.0.1; chain leaf first)
///   clients/<name>/{key,cert}.pem  mutual-TLS client certificates (`pki issue-tls-client`)
///   people/<person_id>/{key,cert}.pem  certificates issued with `pki issue`
struct DevelopmentCA {
    let root: String

    static var fromEnvironment: DevelopmentCA {
        DevelopmentCA(root: ProcessInfo.processInfo.environment["ESAYLOV_PKI_DIR"] ?? ".data/pki")
    }

    var caKey: String { root + "/ca/key.pem" }
    var caCert: String { root + "/trust/ca.pem" }
    var crl: String { root + "/trust/crl.pem" }
    var revokedList: String { root + "/ca/revoked.tsv" }
    var index: String { root + "/ca/index.txt" }
    var serverKey: String { root + "/server/key.pem" }
    var serverCert: String { root + "/server/cert.pem" }
    var tsaKey: String { root + "/tsa/key.pem" }
    var tsaCert: String { root + "/tsa/cert.pem" }
    var tlsKey: String { root + "/tls/key.pem" }
    var tlsCert: String { root + "/tls/cert.pem" }
    func clientDirectory(_ name: String) -> String { root + "/clients/" + name }
    func personDirectory(_ id: String) -> String { root + "/people/" + id }

    static let day = 86_400.0

    /// Creates the CA, its empty CRL, the server's identity and the TSA, unless they exist. Each
    /// CA's name is its own (a random suffix), so that trust stores holding several never confuse them.
    func initialise() throws(Failure) -> Bool {
        if FileManager.default.fileExists(atPath: caKey), FileManager.default.fileExists(atPath: caCert) {
            try timeStampingAuthority()
            try tlsServer()
            return false
        }
        for dir in ["ca", "trust", "server", "people"] { try makeDirectory(root + "/" + dir) }
        let now = Date().timeIntervalSince1970
        try step("pki init") {
            let key = try PrivateKey.generate(.p256)
            let cert = try DevelopmentPKI.issue(
                subject: .init(commonName: "E-saylov Development CA \(Crypto.hex(Crypto.randomBytes(4)))", organisationName: "E-saylov (development)"), key: key, issuer: nil,
                serial: DevelopmentPKI.randomSerial(), notBefore: now - Self.day, notAfter: now + 3650 * Self.day, authority: true)
            try write(key.pem, to: caKey, mode: 0o600)
            try write(cert, to: caCert, mode: 0o644)
            try write([], to: revokedList, mode: 0o600)
            try write([], to: index, mode: 0o600)
            let ca = try authority()
            try writeCRL(ca, revoked: [])
            let serverKey = try PrivateKey.generate(.p256)
            let serverCert = try DevelopmentPKI.issue(
                subject: .init(commonName: "E-saylov server", organisationName: "E-saylov"), key: serverKey, issuer: ca,
                serial: DevelopmentPKI.randomSerial(), notBefore: now - Self.day, notAfter: now + 825 * Self.day, authority: false)
            try write(serverKey.pem, to: self.serverKey, mode: 0o600)
            // The chain, leaf first: GetSystemCertificates returns it as it is in the file.
            try write(serverCert + cert, to: self.serverCert, mode: 0o644)
        }
        try timeStampingAuthority()
        try tlsServer()
        return true
    }

    /// Makes the server's TLS key and certificate (for localhost and 127.0.0.1, the chain leaf
    /// first) unless they exist (a CA made before it had them gets them now).
    func tlsServer() throws(Failure) {
        try service(
            "tls", key: tlsKey, cert: tlsCert, subject: .init(commonName: "localhost", organisationName: "E-saylov (development)"),
            backdate: 1, days: 397, tls: .server(names: ["localhost", "127.0.0.1", "::1"]), chain: true)
    }

    /// Makes the development TSA (a key and a certificate with the timeStamping purpose) unless
    /// it exists (a CA made before it had one gets it now).
    func timeStampingAuthority() throws(Failure) {
        try service(
            "tsa", key: tsaKey, cert: tsaCert, subject: .init(commonName: "E-saylov development TSA", organisationName: "E-saylov (development)"),
            backdate: 30, days: 825, timeStamping: true)
    }

    /// A key and certificate of one of the CA's own services under `directory`, unless the
    /// certificate exists; `chain`: the CA certificate follows the leaf in the file.
    private func service(
        _ directory: String, key keyPath: String, cert certPath: String, subject: DevelopmentPKI.Subject, backdate: Double, days: Double,
        timeStamping: Bool = false, tls: DevelopmentPKI.TLSUsage? = nil, chain: Bool = false
    ) throws(Failure) {
        guard !FileManager.default.fileExists(atPath: certPath) else { return }
        let ca = try authority()
        try makeDirectory(root + "/" + directory)
        let now = Date().timeIntervalSince1970
        try step("pki init") {
            let key = try PrivateKey.generate(.p256)
            let cert = try DevelopmentPKI.issue(
                subject: subject, key: key, issuer: ca, serial: DevelopmentPKI.randomSerial(), notBefore: now - backdate * Self.day,
                notAfter: now + days * Self.day, authority: false, timeStamping: timeStamping, tls: tls)
            try write(key.pem, to: keyPath, mode: 0o600)
            try write(cert + (chain ? [UInt8](FileManager.default.contents(atPath: caCert) ?? Data()) : []), to: certPath, mode: 0o644)
        }
    }

    func authority() throws(Failure) -> SigningIdentity {
        do { return try SigningIdentity(keyFile: caKey, certificateFile: caCert) } catch {
            throw fail("the development CA is not set up (esaylovctl pki init): \(error.reason)", code: 3)
        }
    }

    /// A key and certificate for `subject`, valid from `start` for `days`: an EDS certificate,
    /// or with `tls` a mutual-TLS client's.
    func issue(
        _ subject: DevelopmentPKI.Subject, keyKind: PrivateKey.Kind, start: Double, days: Double, into dir: String, tls: DevelopmentPKI.TLSUsage? = nil
    ) throws(Failure) -> CertificateInfo {
        let ca = try authority()
        return try step("pki issue") {
            let key = try PrivateKey.generate(keyKind)
            let pem = try DevelopmentPKI.issue(
                subject: subject, key: key, issuer: ca, serial: DevelopmentPKI.randomSerial(), notBefore: start, notAfter: start + days * Self.day,
                authority: false, tls: tls)
            try makeDirectory(dir)
            try write(key.pem, to: dir + "/key.pem", mode: 0o600)
            try write(pem, to: dir + "/cert.pem", mode: 0o644)
            let info = try CertificateInfo(pem)
            try indexEntries(adding: ["V", Self.utcTime(info.notAfter), "", info.serial.uppercased(), "unknown", info.subject])
            return info
        }
    }

    /// Appends `entry` to the index, or marks `revoke` revoked in it.
    private func indexEntries(adding entry: [String]? = nil, revoke serial: String? = nil, at: Double = 0) throws(Failure) {
        if let entry, serial == nil {
            // A new certificate: one line at the end (issuing many stays linear).
            try append(Array((entry.joined(separator: "\t") + "\n").utf8), to: index, mode: 0o600)
            try write(Array("unique_subject = no\n".utf8), to: index + ".attr", mode: 0o600)
            return
        }
        var lines = ((try? String(contentsOfFile: index, encoding: .utf8)) ?? "").split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        if let entry { lines.append(entry) }
        if let serial {
            for i in lines.indices where lines[i].count == 6 && lines[i][3] == serial.uppercased() && lines[i][0] == "V" {
                lines[i][0] = "R"
                lines[i][2] = Self.utcTime(at)
            }
        }
        try write(Array(lines.map { $0.joined(separator: "\t") + "\n" }.joined().utf8), to: index, mode: 0o600)
        // A person holds several certificates with one subject name.
        try write(Array("unique_subject = no\n".utf8), to: index + ".attr", mode: 0o600)
    }

    /// YYMMDDHHMMSSZ, as OpenSSL's index has it.
    static func utcTime(_ t: Double) -> String {
        var time = time_t(t)
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(format: "%02d%02d%02d%02d%02d%02dZ", parts.tm_year % 100, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec)
    }

    func revoked() -> [(serial: String, at: Double)] {
        guard let text = try? String(contentsOfFile: revokedList, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: "\t")
            guard f.count == 2, let at = Double(f[1]) else { return nil }
            return (String(f[0]), at)
        }
    }

    /// Marks `serial` revoked in the OCSP index and, unless `ocspOnly`, adds it to the CRL
    /// (idempotent) and rewrites that.
    func revoke(serial: String, ocspOnly: Bool = false) throws(Failure) {
        let ca = try authority()
        let now = Date().timeIntervalSince1970
        try indexEntries(revoke: serial, at: now)
        guard !ocspOnly else { return }
        var list = revoked()
        if !list.contains(where: { $0.serial == serial }) { list.append((serial, now)) }
        try write(Array(list.map { "\($0.serial)\t\(Int($0.at))\n" }.joined().utf8), to: revokedList, mode: 0o600)
        try writeCRL(ca, revoked: list)
    }

    private func writeCRL(_ ca: SigningIdentity, revoked: [(serial: String, at: Double)]) throws(Failure) {
        let now = Date().timeIntervalSince1970
        try step("pki") {
            let crl = try DevelopmentPKI.revocationList(
                issuer: ca, revoked: revoked, number: revoked.count + 1, thisUpdate: now - 60, nextUpdate: now + 30 * Self.day)
            // Written beside and renamed, so that the server never reads half a CRL.
            try write(crl, to: self.crl + ".tmp", mode: 0o644)
            guard rename(self.crl + ".tmp", self.crl) == 0 else { throw fail("cannot replace \(self.crl)", code: 4) }
        }
    }
}

/// Runs a step of the CA, its failures in the tool's words.
func step<T>(_ what: String, _ body: () throws -> T) throws(Failure) -> T {
    do {
        return try body()
    } catch let e as Failure {
        throw e
    } catch let e as SigningError {
        throw fail("\(what): \(e.reason)", code: 4)
    } catch let e as CertificateError {
        throw fail("\(what): \(e.reason)", code: 4)
    } catch {
        throw fail("\(what): \(error)", code: 4)
    }
}

func makeDirectory(_ path: String) throws(Failure) {
    do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) } catch {
        throw fail("cannot create \(path)", code: 4)
    }
}

/// Writes a file with `mode` from the start (a key is never readable by others, not even briefly).
func write(_ bytes: [UInt8], to path: String, mode: mode_t) throws(Failure) {
    try write(bytes, to: path, mode: mode, flags: O_WRONLY | O_CREAT | O_TRUNC)
}

/// Adds `bytes` at the end of the file at `path`.
func append(_ bytes: [UInt8], to path: String, mode: mode_t) throws(Failure) {
    try write(bytes, to: path, mode: mode, flags: O_WRONLY | O_CREAT | O_APPEND)
}

private func write(_ bytes: [UInt8], to path: String, mode: mode_t, flags: Int32) throws(Failure) {
    let fd = open(path, flags, mode)
    guard fd >= 0 else { throw fail("cannot write \(path)", code: 4) }
    defer { close(fd) }
    fchmod(fd, mode)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
        guard n > 0 else { throw fail("cannot write \(path)", code: 4) }
        offset += n
    }
}
