import Foundation

/// Numbered, forward-only SQL migrations (`Migrations/NNNN_name.sql`), applied in order, each
/// in its own transaction, recorded in `schema_migrations`, under an advisory lock so that
/// replicas starting together never race.
public enum Migrations {
    public struct Migration: Sendable {
        public let version: Int
        public let name: String
        public let sql: String
    }

    /// The migrations shipped with this build, by version.
    public static func bundled() throws(StoreError) -> [Migration] {
        guard let dir = Bundle.module.url(forResource: "Migrations", withExtension: nil),
            let files = try? FileManager.default.contentsOfDirectory(atPath: dir.path)
        else { throw StoreError(.other, reason: "migrations are missing from the build") }
        var out: [Migration] = []
        for file in files where file.hasSuffix(".sql") {
            let stem = String(file.dropLast(4))
            guard let underscore = stem.firstIndex(of: "_"), let version = Int(stem[..<underscore]),
                let sql = try? String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            else { throw StoreError(.other, reason: "migration file \(file) is not NNNN_name.sql") }
            out.append(Migration(version: version, name: String(stem[stem.index(after: underscore)...]), sql: sql))
        }
        out.sort { $0.version < $1.version }
        for (i, m) in out.enumerated() where m.version != i + 1 {
            throw StoreError(.other, reason: "migration versions must run 1, 2, 3… without gaps; \(m.version) is out of place")
        }
        return out
    }

    /// An arbitrary constant naming our advisory lock.
    static let lockKey = 7_261_606

    /// Applies what is missing; returns the versions applied now.
    @discardableResult
    public static func migrate(_ database: Database) throws(StoreError) -> [Int] {
        let migrations = try bundled()
        return try database.withConnection(timeout: .seconds(300)) { (c) throws(StoreError) -> [Int] in
            try c.query("SELECT pg_advisory_lock(\(lockKey))")
            defer { _ = try? c.query("SELECT pg_advisory_unlock(\(lockKey))") }
            try c.execute("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                  version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                """)
            let rows = try c.query("SELECT version FROM schema_migrations ORDER BY version")
            var applied = Set<Int>()
            for i in 0..<rows.count { applied.insert(try rows.int(i, "version")) }
            if let newest = applied.max(), newest > migrations.count {
                throw StoreError(.other, reason: "the database is at migration \(newest), newer than this build (\(migrations.count))")
            }
            var now: [Int] = []
            for m in migrations where !applied.contains(m.version) {
                try c.execute("BEGIN")
                do throws(StoreError) {
                    try c.execute(m.sql)
                    try c.query("INSERT INTO schema_migrations (version, name) VALUES (\(m.version), \(m.name))")
                    try c.execute("COMMIT")
                } catch {
                    try? c.execute("ROLLBACK")
                    throw error
                }
                now.append(m.version)
            }
            return now
        }
    }
}
