import Domain
import Foundation
import Services
import Store

// esaylovctl decision export: the files a third party needs to check a decision with stock
// OpenSSL alone.

func runDecision(_ args: [String], _ database: Database) async throws(Failure) {
    guard args.dropFirst().first == "export" else { throw fail(usage) }
    let f = try flags(args.dropFirst(2))
    let out = try required(f, "out")
    let found: DecisionRecord?
    do {
        if let id = f["id"] {
            found = try await database.read(DecisionStore().decision(id: id), timeout: .seconds(10))
        } else {
            let number = try required(f, "number").replacingOccurrences(of: "No. ", with: "")
            let parts = number.split(separator: "/")
            guard parts.count == 2, let seq = Int(parts[0]), let year = Int(parts[1]) else { throw fail("--number: N/YYYY, as in 12/2026") }
            found = try await database.read(DecisionStore().decision(commissionId: try required(f, "commission"), year: year, seq: seq), timeout: .seconds(10))
        }
    } catch let e as Failure { throw e } catch let e as StoreError { throw explain(e, [:]) } catch { throw fail("\(error)") }
    guard let d = found else { throw fail("no such decision", code: 3) }
    guard let receipt = d.receiptCMS else { throw fail("the decision has no receipt", code: 3) }
    do {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try Data(d.approvalEnvelope).write(to: URL(fileURLWithPath: "\(out)/approval-envelope.bin"))
        try Data(d.approvalCMS).write(to: URL(fileURLWithPath: "\(out)/approval.cms"))
        try Data(receipt).write(to: URL(fileURLWithPath: "\(out)/receipt.cms"))
        let ca = DevelopmentCA.fromEnvironment.root + "/trust/ca.pem"
        let haveCA = FileManager.default.fileExists(atPath: ca)
        if haveCA { try FileManager.default.copyItem(atPath: ca, toPath: "\(out)/ca.pem") }
        let text = """
            Decision No. \(d.number) of \(d.commissionId) (id \(d.id)), approved at \(Date(timeIntervalSince1970: d.approvedAt)).
            Check it with OpenSSL alone, against the certification authority's certificate (ca.pem\(haveCA ? "" : ": obtain it from the operator")):

            1. The approver's signature over the decision (a SignedEnvelope of purpose DECISION, decisions.proto):
               openssl cms -verify -binary -inform DER -in approval.cms -content approval-envelope.bin -CAfile ca.pem -purpose any -out /dev/null

            2. The system's receipt, binding the number and the time to that signature; its content (a DecisionReceipt) lands in receipt.bin:
               openssl cms -verify -inform DER -in receipt.cms -CAfile ca.pem -purpose any -out receipt.bin

            3. Who signed: openssl cms -cmsout -print -inform DER -in approval.cms | grep -A3 'signerInfos' ; the signing certificates are inside each CMS:
               openssl pkcs7 -inform DER -in approval.cms -print_certs

            """
        try Data(text.utf8).write(to: URL(fileURLWithPath: "\(out)/VERIFY.txt"))
    } catch { throw fail("cannot write \(out): \(error)", code: 3) }
    print("esaylovctl: decision No. \(d.number) of \(d.commissionId) exported to \(out) (see VERIFY.txt)")
}
