import RPC
public import ServiceLifecycle
public import Store
public import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Where reads go: the primary, and optionally a hot standby (`ESAYLOV_DATABASE_READ_URL`)
/// that streams the primary's WAL. Only reads that may lag a second go to the standby: the
/// public directory, which a caller's own writes do not change. Everything that must see what
/// was just written (sessions right after sign-in, a request right after it was sent, every
/// transaction) stays on the primary: the read-your-writes cases.
///
/// The standby is used while it is reachable and caught up: the monitor (`StandbyMonitor`)
/// checks every `interval` that it has replayed at least what the primary had written at the
/// previous check, so a read there is at most about one interval behind. A read that fails
/// on the standby is run again on the primary.
public final class ReadReplicas: Sendable {
    public let primary: Database
    public let standby: Database?
    private let caughtUp = Atomic<Bool>(false)
    private let standbyReads = Atomic<Int>(0)
    private let fallbacks = Atomic<Int>(0)

    public init(primary: Database, standby: Database? = nil) {
        self.primary = primary
        self.standby = standby
    }

    /// Whether a read that may lag goes to the standby now.
    public var standbyInUse: Bool { standby != nil && caughtUp.load(ordering: .relaxed) && standby?.isReady == true }

    /// Reads served by the standby, and reads it failed that the primary then served.
    public var standbyReadsTotal: Int { standbyReads.load(ordering: .relaxed) }
    public var fallbacksTotal: Int { fallbacks.load(ordering: .relaxed) }

    func setCaughtUp(_ value: Bool) { caughtUp.store(value, ordering: .relaxed) }

    /// Runs a read that may be about a second stale: on the standby when it is in use, else
    /// (or when it fails there) on the primary.
    func readMayLag<T>(_ query: Query<T>, for context: ServerContext) async throws(RPCError) -> T {
        if let standby, standbyInUse {
            do {
                let value = try await standby.read(query, timeout: context.timeRemaining)
                standbyReads.add(1, ordering: .relaxed)
                return value
            } catch where error.kind != .decoding {
                // Unreachable, cancelled by recovery (a conflict with replay), too slow: the
                // primary answers instead, within what is left of the deadline.
                fallbacks.add(1, ordering: .relaxed)
            } catch {
                throw RPCError(error)
            }
        }
        return try await primary.read(query, for: context)
    }
}

/// Keeps `ReadReplicas.standbyInUse` true only while the standby is caught up (see there), and
/// the standby's connections monitored and closed with the server.
public struct StandbyMonitor: Service {
    let replicas: ReadReplicas
    let interval: Duration
    let logger: Logger

    public init(_ replicas: ReadReplicas, interval: Duration = .milliseconds(500), logger: Logger) {
        self.replicas = replicas
        self.interval = interval
        self.logger = logger
    }

    static let primaryPosition = Query<String?>("SELECT pg_current_wal_lsn()::text AS lsn") { (r) throws(StoreError) in
        r.count == 1 ? try r.optionalString(0, "lsn") : nil
    }

    /// Whether the standby has replayed `lsn`; nil when it is not a standby at all.
    static func replayed(_ lsn: String) -> Query<Bool?> {
        Query(
            """
            SELECT CASE WHEN NOT pg_is_in_recovery() THEN NULL
                        ELSE (pg_wal_lsn_diff(pg_last_wal_replay_lsn(), \(lsn)::pg_lsn) >= 0)::text END AS caught
            """
        ) { (r) throws(StoreError) in
            guard r.count == 1, let v = try r.optionalString(0, "caught") else { return nil }
            return v == "true"
        }
    }

    public func run() async throws {
        guard let standby = replicas.standby else { return }
        standby.startMonitoring()
        var previous: String?
        var state = "unknown"
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            var now = "behind"
            do {
                let lsn = try await replicas.primary.read(Self.primaryPosition)
                if let target = previous {
                    switch try await standby.read(Self.replayed(target)) {
                    case true?: now = "caught up"
                    case false?: now = "behind"
                    case nil: now = "not a standby"
                    }
                }
                previous = lsn
            } catch {
                now = error.kind == .unavailable ? "unreachable" : "behind"
            }
            // A URL that names a primary is read as consistent with itself: used, with a warning.
            replicas.setCaughtUp(now == "caught up" || now == "not a standby")
            if now != state {
                let level: Logger.Level = now == "caught up" ? .info : .warning
                logger.log(level: level, "read standby \(now)", metadata: ["reads": "\(now == "caught up" || now == "not a standby" ? "standby" : "primary")"])
                state = now
            }
            try? await Task.sleep(for: interval)
        }
        replicas.setCaughtUp(false)
        await standby.close()
    }
}
