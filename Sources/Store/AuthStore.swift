public import Domain

/// A session as the authentication interceptor finds it: who, for whom, with which roles.
public struct SessionRecord: Sendable, Hashable {
    public var id: String
    public var personId: String
    public var lastName: String
    public var firstName: String
    public var patronymic: String
    public var organisationId: String?
    public var organisationKind: OrganisationKind?
    /// The person's current roles in that organisation.
    public var roles: [Role]
    public var candidateId: String?
    public var proxyId: String?
    public var method: String
    /// Seconds since 1970.
    public var idleExpiresAt: Double
    public var absoluteExpiresAt: Double
    /// The person's PINFL and the organisation's TIN: compared with a mutual-TLS client
    /// certificate's, never shown or logged.
    public var pinfl: String = ""
    public var organisationTIN: String? = nil
}

/// A certificate as the directory registered it.
public struct RegisteredCertificate: Sendable, Hashable {
    public var personId: String
    public var organisationId: String?
    public var revoked: Bool
}

/// The SQL of logins and sessions. Secrets never reach the database: challenges are public,
/// codes are stored as MACs, tokens as SHA-256.
public struct AuthStore: Sendable {
    public init() {}

    // MARK: challenges

    public func insertChallenge(
        _ c: Connection, id: String, envelope: [UInt8], certificateSHA256: String?, actAs: String?, issuedAt: Double, expiresAt: Double
    ) throws(StoreError) {
        try c.query(
            """
            INSERT INTO login_challenges (id, envelope, certificate_sha256, act_as_organisation_id, issued_at, expires_at)
            VALUES (\(id), \(SQLBytes(envelope)), \(certificateSHA256), \(actAs), to_timestamp(\(issuedAt)), to_timestamp(\(expiresAt)))
            """)
    }

    public struct Challenge: Sendable {
        public var envelope: [UInt8]
        public var certificateSHA256: String?
        public var actAs: String?
        public var expired: Bool
        public var used: Bool
    }

    /// The challenge as it stands (no lock: for the checks before the signature is verified).
    public func challenge(id: String) -> Query<Challenge?> {
        Query(
            """
            SELECT envelope, certificate_sha256, act_as_organisation_id, expires_at <= now() AS expired, used_at IS NOT NULL AS used
            FROM login_challenges WHERE id = \(id)
            """, decode: Self.challenge)
    }

    static func challenge(_ r: Rows) throws(StoreError) -> Challenge? {
        guard r.count == 1 else { return nil }
        return Challenge(
            envelope: try r.bytes(0, "envelope"), certificateSHA256: try r.optionalString(0, "certificate_sha256"),
            actAs: try r.optionalString(0, "act_as_organisation_id"), expired: try r.bool(0, "expired"), used: try r.bool(0, "used"))
    }

    /// The challenge, locked for this transaction.
    public func lockChallenge(_ c: Connection, id: String) throws(StoreError) -> Challenge? {
        let r = try c.query(
            """
            SELECT envelope, certificate_sha256, act_as_organisation_id, expires_at <= now() AS expired, used_at IS NOT NULL AS used
            FROM login_challenges WHERE id = \(id) FOR UPDATE
            """)
        return try Self.challenge(r)
    }

    public func useChallenge(_ c: Connection, id: String) throws(StoreError) {
        try c.query("UPDATE login_challenges SET used_at = now() WHERE id = \(id)")
    }

    /// Removes challenges, SMS attempts and sessions that ended more than a day ago.
    public func purge(_ c: Connection) throws(StoreError) {
        try c.query("DELETE FROM login_challenges WHERE expires_at < now() - interval '1 day'")
        try c.query("DELETE FROM sms_attempts WHERE expires_at < now() - interval '1 day'")
        try c.query(
            """
            DELETE FROM sessions WHERE least(absolute_expires_at, idle_expires_at, coalesce(revoked_at, 'infinity')) < now() - interval '1 day'
            """)
    }

    /// Live sessions a person may hold at once; signing in again ends the oldest past it.
    public static let sessionsPerPerson = 20

    // MARK: certificates and people

    public func certificate(sha256: String) -> Query<RegisteredCertificate?> {
        Query("SELECT person_id, organisation_id, revoked_at IS NOT NULL AS revoked FROM certificates WHERE sha256 = \(sha256)") {
            (r) throws(StoreError) in
            guard r.count == 1 else { return nil }
            return RegisteredCertificate(personId: try r.string(0, "person_id"), organisationId: try r.optionalString(0, "organisation_id"),
                                         revoked: try r.bool(0, "revoked"))
        }
    }

    public func certificate(_ c: Connection, sha256: String) throws(StoreError) -> RegisteredCertificate? {
        try c.run(certificate(sha256: sha256))
    }

    /// The person with `pinfl`.
    public func person(_ c: Connection, pinfl: String) throws(StoreError) -> String? {
        let r = try c.query("SELECT id FROM people WHERE pinfl = \(pinfl)")
        return r.count == 1 ? try r.string(0, "id") : nil
    }

    /// The organisation with `tin`.
    public func organisation(_ c: Connection, tin: String) throws(StoreError) -> String? {
        let r = try c.query("SELECT id FROM organisations WHERE tin = \(tin)")
        return r.count == 1 ? try r.string(0, "id") : nil
    }

    /// The organisations where `personId` holds a current role.
    public func currentOrganisations(_ c: Connection, personId: String) throws(StoreError) -> [String] {
        let r = try c.query("SELECT DISTINCT organisation_id FROM current_memberships WHERE person_id = \(personId) ORDER BY organisation_id")
        return try (0..<r.count).map { (i) throws(StoreError) in try r.string(i, "organisation_id") }
    }

    /// The registered candidacy or proxy record (a registered one first) of the person whose
    /// phone this is; nil when the phone is nobody's who signs in by SMS.
    public func smsUser(_ c: Connection, phone: String) throws(StoreError) -> (personId: String, candidateId: String?, proxyId: String?)? {
        let r = try c.query(
            """
            SELECT p.id,
              (SELECT id FROM candidates WHERE person_id = p.id AND status IN ('nominated', 'registered') ORDER BY id LIMIT 1) AS candidate_id,
              (SELECT id FROM proxies WHERE person_id = p.id AND status IN ('proposed', 'registered') ORDER BY id LIMIT 1) AS proxy_id
            FROM people p WHERE p.phone = \(phone)
            """)
        guard r.count == 1 else { return nil }
        let candidate = try r.optionalString(0, "candidate_id")
        let proxy = try r.optionalString(0, "proxy_id")
        guard candidate != nil || proxy != nil else { return nil }
        return (try r.string(0, "id"), candidate, candidate == nil ? proxy : nil)
    }

    // MARK: SMS

    /// Codes requested for `phone` in the last hour, and seconds since the latest.
    public func recentCodes(_ c: Connection, phone: String) throws(StoreError) -> (count: Int, secondsSinceLast: Double?) {
        // One phone's requests are serialised, so that two at once cannot both pass the limit.
        try c.query("SELECT pg_advisory_xact_lock(7261608, hashtext(\(phone)))")
        let r = try c.query(
            """
            SELECT count(*) AS n, extract(epoch FROM now() - max(created_at))::float8 AS since
            FROM sms_attempts WHERE phone = \(phone) AND created_at > now() - interval '1 hour'
            """)
        return (try r.int(0, "n"), try r.epoch(0, "since"))
    }

    public func insertAttempt(
        _ c: Connection, id: String, phone: String, personId: String?, codeMAC: [UInt8], createdAt: Double, expiresAt: Double
    ) throws(StoreError) {
        try c.query(
            """
            INSERT INTO sms_attempts (id, phone, person_id, code_mac, created_at, expires_at)
            VALUES (\(id), \(phone), \(personId), \(SQLBytes(codeMAC)), to_timestamp(\(createdAt)), to_timestamp(\(expiresAt)))
            """)
    }

    public func enqueueSMS(_ c: Connection, phone: String, body: String) throws(StoreError) {
        try c.query("INSERT INTO sms_outbox (phone, body) VALUES (\(phone), \(body))")
    }

    public struct Attempt: Sendable {
        public var phone: String
        public var personId: String?
        public var codeMAC: [UInt8]
        public var wrongTries: Int
        public var usable: Bool
    }

    public func lockAttempt(_ c: Connection, id: String) throws(StoreError) -> Attempt? {
        let r = try c.query(
            """
            SELECT phone, person_id, code_mac, wrong_tries, (used_at IS NULL AND expires_at > now() AND wrong_tries < 5) AS usable
            FROM sms_attempts WHERE id = \(id) FOR UPDATE
            """)
        guard r.count == 1 else { return nil }
        return Attempt(phone: try r.string(0, "phone"), personId: try r.optionalString(0, "person_id"), codeMAC: try r.bytes(0, "code_mac"),
                       wrongTries: try r.int(0, "wrong_tries"), usable: try r.bool(0, "usable"))
    }

    public func wrongCode(_ c: Connection, id: String) throws(StoreError) {
        try c.query("UPDATE sms_attempts SET wrong_tries = least(wrong_tries + 1, 5) WHERE id = \(id)")
    }

    public func useAttempt(_ c: Connection, id: String) throws(StoreError) {
        try c.query("UPDATE sms_attempts SET used_at = now() WHERE id = \(id)")
    }

    /// Up to `limit` undelivered messages, oldest first, locked (skipping those another server holds).
    public func pendingSMS(_ c: Connection, limit: Int) throws(StoreError) -> [(id: Int, phone: String, body: String)] {
        let r = try c.query(
            "SELECT id, phone, body FROM sms_outbox WHERE delivered_at IS NULL ORDER BY id LIMIT \(limit) FOR UPDATE SKIP LOCKED")
        return try (0..<r.count).map { (i) throws(StoreError) in (try r.int(i, "id"), try r.string(i, "phone"), try r.string(i, "body")) }
    }

    public func delivered(_ c: Connection, id: Int) throws(StoreError) {
        try c.query("UPDATE sms_outbox SET delivered_at = now(), body = '' WHERE id = \(id)")
    }

    // MARK: sessions

    public func insertSession(
        _ c: Connection, id: String, tokenSHA256: [UInt8], personId: String, organisationId: String?, candidateId: String?,
        proxyId: String?, method: String, certificateSHA256: String?, idle: Duration, absolute: Duration
    ) throws(StoreError) -> (idle: Double, absolute: Double) {
        let idleSeconds = Double(idle.components.seconds)
        let absoluteSeconds = Double(absolute.components.seconds)
        let r = try c.query(
            """
            INSERT INTO sessions (id, token_sha256, person_id, organisation_id, candidate_id, proxy_id, method, certificate_sha256,
                                  created_at, idle_expires_at, absolute_expires_at)
            VALUES (\(id), \(SQLBytes(tokenSHA256)), \(personId), \(organisationId), \(candidateId), \(proxyId), \(method), \(certificateSHA256),
                    now(), now() + make_interval(secs => \(idleSeconds)), now() + make_interval(secs => \(absoluteSeconds)))
            RETURNING extract(epoch FROM idle_expires_at) AS idle, extract(epoch FROM absolute_expires_at) AS absolute
            """)
        try c.query(
            """
            UPDATE sessions SET revoked_at = now()
            WHERE id IN (SELECT id FROM sessions
                         WHERE person_id = \(personId) AND revoked_at IS NULL AND idle_expires_at > now() AND absolute_expires_at > now()
                           -- Never the session being made: its created_at is this transaction's start, so sign-ins
                           -- of the same person that began later and committed first would rank above it.
                           AND id <> \(id)
                         ORDER BY created_at DESC, id OFFSET \(Self.sessionsPerPerson - 1)
                         -- Concurrent sign-ins of one person do not queue on each other's rows.
                         FOR UPDATE SKIP LOCKED)
            """)
        return (try r.epoch(0, "idle") ?? 0, try r.epoch(0, "absolute") ?? 0)
    }

    /// The live session whose token hashes to `tokenSHA256`, with the person's current roles in
    /// the organisation it acts for; nil when unknown, ended or expired.
    public func session(tokenSHA256: [UInt8]) -> Query<SessionRecord?> {
        Query(
            """
            SELECT s.id, s.person_id, p.last_name, p.first_name, p.patronymic, p.pinfl, s.organisation_id, o.kind, o.tin, s.candidate_id, s.proxy_id,
                   s.method, extract(epoch FROM s.idle_expires_at) AS idle, extract(epoch FROM s.absolute_expires_at) AS absolute,
                   array_to_string(ARRAY(SELECT m.role FROM current_memberships m
                                         WHERE m.person_id = s.person_id AND m.organisation_id = s.organisation_id ORDER BY m.role), ',') AS roles
            FROM sessions s JOIN people p ON p.id = s.person_id LEFT JOIN organisations o ON o.id = s.organisation_id
            WHERE s.token_sha256 = \(SQLBytes(tokenSHA256)) AND s.revoked_at IS NULL
              AND s.idle_expires_at > now() AND s.absolute_expires_at > now()
            """
        ) { (r) throws(StoreError) in
            guard r.count == 1 else { return nil }
            let roles = try r.string(0, "roles").split(separator: ",").compactMap { Role(databaseName: String($0)) }
            return SessionRecord(
                id: try r.string(0, "id"), personId: try r.string(0, "person_id"), lastName: try r.string(0, "last_name"),
                firstName: try r.string(0, "first_name"), patronymic: try r.string(0, "patronymic"),
                organisationId: try r.optionalString(0, "organisation_id"),
                organisationKind: try r.optionalString(0, "kind").flatMap(OrganisationKind.init(databaseName:)), roles: roles,
                candidateId: try r.optionalString(0, "candidate_id"), proxyId: try r.optionalString(0, "proxy_id"),
                method: try r.string(0, "method"), idleExpiresAt: try r.epoch(0, "idle") ?? 0, absoluteExpiresAt: try r.epoch(0, "absolute") ?? 0,
                pinfl: try r.string(0, "pinfl"), organisationTIN: try r.optionalString(0, "tin"))
        }
    }

    /// Moves the idle expiry on (never past the absolute one).
    public func touch(_ c: Connection, id: String, idle: Duration) throws(StoreError) {
        try c.query(
            """
            UPDATE sessions SET idle_expires_at = least(absolute_expires_at, now() + make_interval(secs => \(Double(idle.components.seconds))))
            WHERE id = \(id) AND revoked_at IS NULL
            """)
    }

    public func revoke(_ c: Connection, id: String) throws(StoreError) -> Bool {
        try c.query("UPDATE sessions SET revoked_at = now() WHERE id = \(id) AND revoked_at IS NULL").affected == 1
    }
}

/// A person's full record (personal data, cl. 13), with whether a given reader may see it.
public struct PersonRecord: Sendable {
    public var id: String
    public var pinfl: String
    public var lastName: String
    public var firstName: String
    public var patronymic: String
    public var phone: String?
    public var birthDate: (year: Int, month: Int, day: Int)?
    public var roles: [(organisationId: String, organisationName: String, role: Role)]
    /// The person is a candidate or proxy registered by, or a member of, the reader's commission.
    public var handledByReaderCommission: Bool
}

extension AuthStore {
    /// The person with `id` or `pinfl` (exactly one given), and whether `commission` handles them.
    public func person(_ c: Connection, id: String?, pinfl: String?, commission: String?) throws(StoreError) -> PersonRecord? {
        let r = try c.query(
            """
            SELECT p.id, p.pinfl, p.last_name, p.first_name, p.patronymic, p.phone,
                   extract(year FROM p.birth_date)::int AS y, extract(month FROM p.birth_date)::int AS m, extract(day FROM p.birth_date)::int AS d,
                   (\(commission)::text IS NOT NULL AND (
                      EXISTS (SELECT 1 FROM candidates k WHERE k.person_id = p.id AND k.registering_commission_id = \(commission))
                      OR EXISTS (SELECT 1 FROM proxies x JOIN candidates k ON k.id = x.candidate_id
                                 WHERE x.person_id = p.id AND k.registering_commission_id = \(commission))
                      OR EXISTS (SELECT 1 FROM current_memberships cm WHERE cm.person_id = p.id AND cm.organisation_id = \(commission)))) AS handled
            FROM people p WHERE p.id = \(id) OR p.pinfl = \(pinfl)
            """)
        guard r.count == 1 else { return nil }
        let personId = try r.string(0, "id")
        let roles = try c.query(
            """
            SELECT m.organisation_id, o.name_en, m.role FROM current_memberships m JOIN organisations o ON o.id = m.organisation_id
            WHERE m.person_id = \(personId) ORDER BY m.organisation_id, m.role
            """)
        var list: [(String, String, Role)] = []
        for i in 0..<roles.count {
            if let role = Role(databaseName: try roles.string(i, "role")) {
                list.append((try roles.string(i, "organisation_id"), try roles.string(i, "name_en"), role))
            }
        }
        let y = try r.optionalInt(0, "y")
        return PersonRecord(
            id: personId, pinfl: try r.string(0, "pinfl"), lastName: try r.string(0, "last_name"), firstName: try r.string(0, "first_name"),
            patronymic: try r.string(0, "patronymic"), phone: try r.optionalString(0, "phone"),
            birthDate: try y.map { (y) throws(StoreError) in (y, try r.optionalInt(0, "m") ?? 1, try r.optionalInt(0, "d") ?? 1) },
            roles: list, handledByReaderCommission: try r.bool(0, "handled"))
    }
}

/// A registered certificate, for `ListCertificates`.
public struct CertificateRecord: Sendable {
    public var serial, issuer, subjectPinfl: String
    public var subjectTin: String?
    public var notBefore, notAfter: Double
    public var revoked: Bool
    public var personId: String
    public var organisationId: String?
    public var sha256: String
    /// Within its validity now.
    public var current: Bool
}

extension AuthStore {
    /// Whether the owner exists: a person (when `personId`) or an organisation.
    public func ownerExists(_ c: Connection, personId: String?, organisationId: String?) throws(StoreError) -> Bool {
        try c.query(
            """
            SELECT EXISTS (SELECT 1 FROM people WHERE id = \(personId)) OR EXISTS (SELECT 1 FROM organisations WHERE id = \(organisationId)) AS found
            """
        ).bool(0, "found")
    }

    /// The certificates of a person or of an organisation, newest first.
    public func certificates(_ c: Connection, personId: String?, organisationId: String?, includeInactive: Bool) throws(StoreError) -> [CertificateRecord] {
        let r = try c.query(
            """
            SELECT serial, issuer, subject_pinfl, subject_tin, extract(epoch FROM not_before) AS nb, extract(epoch FROM not_after) AS na,
                   revoked_at IS NOT NULL AS revoked, person_id, organisation_id, sha256, (not_before <= now() AND not_after > now()) AS current
            FROM certificates
            WHERE (\(personId)::text IS NULL OR person_id = \(personId)) AND (\(organisationId)::text IS NULL OR organisation_id = \(organisationId))
              AND (\(includeInactive) OR (revoked_at IS NULL AND not_before <= now() AND not_after > now()))
            ORDER BY not_before DESC, serial
            LIMIT 500
            """)
        return try (0..<r.count).map { (i) throws(StoreError) in
            CertificateRecord(
                serial: try r.string(i, "serial"), issuer: try r.string(i, "issuer"), subjectPinfl: try r.string(i, "subject_pinfl"),
                subjectTin: try r.optionalString(i, "subject_tin"), notBefore: try r.epoch(i, "nb") ?? 0, notAfter: try r.epoch(i, "na") ?? 0,
                revoked: try r.bool(i, "revoked"), personId: try r.string(i, "person_id"), organisationId: try r.optionalString(i, "organisation_id"),
                sha256: try r.string(i, "sha256"), current: try r.bool(i, "current"))
        }
    }
}
