import Domain
import Foundation
import Signatures
import Store
import Testing

/// The schema's own guards of requests, and the purge of what no request took.
@Suite("Requests in PostgreSQL", .serialized, .enabled(if: TestDatabase.url != nil))
struct RequestStoreTests {
    let store = RequestStore()

    func refused(_ db: Database, _ sql: SQL, constraint: String) {
        do {
            try db.withTransaction { (c) throws(StoreError) in _ = try c.query(sql) }
            Issue.record("the database allowed: \(sql)")
        } catch {
            #expect(error.kind == .checkViolation && error.constraint == constraint, "\(error)")
        }
    }

    @Test func aSentRequestNeverChangesWhatItSaysNeverGoesBackAndIsNeverDeleted() throws {
        let db = TestDatabase.make()
        let id = try sentReport(db)
        refused(db, "UPDATE requests SET form = '\\x00'::bytea, version = version + 1 WHERE id = \(id)", constraint: "sent_requests_are_immutable")
        refused(db, "UPDATE requests SET status = 'draft', version = version + 1 WHERE id = \(id)", constraint: "request_lifecycle")
        refused(db, "UPDATE requests SET status = 'decided', version = version + 1 WHERE id = \(id)", constraint: "request_lifecycle")
        refused(db, "UPDATE requests SET status = 'under_review' WHERE id = \(id)", constraint: "request_version")
        refused(db, "DELETE FROM requests WHERE id = \(id)", constraint: "sent_requests_are_kept")
        // The moves the lifecycle table allows are allowed.
        try db.withTransaction { (c) throws(StoreError) in
            try c.query("UPDATE requests SET status = 'under_review', version = version + 1 WHERE id = \(id)")
        }
    }

    @Test func uploadsNoRequestTookArePurgedAfterADay() throws {
        let db = TestDatabase.make()
        let old = Crypto.hex(Crypto.sha256(Crypto.randomBytes(16))), young = Crypto.hex(Crypto.sha256(Crypto.randomBytes(16)))
        try db.withTransaction { (c) throws(StoreError) in
            for (sha, age) in [(old, 25.0), (young, 1.0)] {
                let upload = Crypto.hex(Crypto.randomBytes(16))
                try c.query("INSERT INTO attachment_chunks (upload_id, seq, data) VALUES (\(upload), 0, '\\x01'::bytea)")
                try c.query("INSERT INTO attachment_contents (sha256, upload_id, size_bytes) VALUES (\(sha), \(upload), 1)")
                try c.query(
                    """
                    INSERT INTO attachment_uploads (sender_key, sha256, file_name, media_type, uploaded_at)
                    VALUES ('organisation:mfa', \(sha), 'a.pdf', 'application/pdf', now() - make_interval(hours => \(Int32(age))))
                    """)
            }
            _ = try store.purge(c)
        }
        let left = try db.withConnection { (c) throws(StoreError) in
            try c.query("SELECT sha256 FROM attachment_contents WHERE sha256 = ANY(\([old, young]))").count
        }
        #expect(left == 1)
        let chunks = try db.withConnection { (c) throws(StoreError) in
            try c.query("SELECT 1 FROM attachment_chunks c JOIN attachment_contents k ON k.upload_id = c.upload_id WHERE k.sha256 = \(young)").count
        }
        #expect(chunks == 1)
    }
}

/// A sent commission report of dec-1726264 to tec-1726 (due in `dueIn` seconds, when given).
func sentReport(_ db: Database, dueIn: Double? = nil) throws -> String {
    let store = RequestStore()
    let id = Crypto.hex(Crypto.randomBytes(16))
    try db.withTransaction { (c) throws(StoreError) in
        guard let campaign = try c.run(CampaignStore().campaign(id: "demo")) else {
            throw StoreError(.other, reason: "the demo campaign is missing (esaylovctl seed demo)")
        }
        try store.insertDraft(c, RequestStore.NewDraft(
            id: id, campaignId: "demo", catalogueVersion: campaign.catalogueVersion, type: .commissionReport, kind: .submission,
            sender: .organisation("dec-1726264"), senderPersonId: "seed-dec-1726264-0", senderTerritory: "1726264", receiverId: "tec-1726",
            form: [0x8a, 0x01, 0x00], correctsRequestId: nil))
        let now = Date().timeIntervalSince1970
        _ = try store.submit(c, id: id, receiverId: "tec-1726", year: 2026, submittedAt: now, decisionDue: dueIn.map { now + $0 },
                             envelope: [1, 2, 3], cms: [0x30], signature: [0x0a], signerPersonId: "seed-dec-1726264-0")
    }
    return id
}
