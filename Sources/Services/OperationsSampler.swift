public import ServiceLifecycle
public import Store
import Synchronization

/// Reads, every `interval`, what only the database knows, for `/metrics`:
///   esaylov_sms_outbox_pending   SMS notices and codes not yet handed to the gateway
///   esaylov_audit_pending        audit events written and not yet chained
///   esaylov_audit_chain_length   events in the hash chain
/// A read that fails leaves the last values (esaylov_database_ready says why).
public struct OperationsSampler: Service {
    let database: Database
    let interval: Duration
    private let values: Values

    final class Values: Sendable {
        let sms = Atomic<Int>(0)
        let pending = Atomic<Int>(0)
        let chain = Atomic<Int>(0)
    }

    public init(database: Database, metrics: ServerMetrics, interval: Duration = .seconds(5)) {
        self.database = database
        self.interval = interval
        let values = Values()
        self.values = values
        metrics.sample("esaylov_sms_outbox_pending") { Double(values.sms.load(ordering: .relaxed)) }
        metrics.sample("esaylov_audit_pending") { Double(values.pending.load(ordering: .relaxed)) }
        metrics.sample("esaylov_audit_chain_length") { Double(values.chain.load(ordering: .relaxed)) }
    }

    static let query = Query<(Int, Int, Int)>(
        """
        SELECT (SELECT count(*) FROM sms_outbox WHERE delivered_at IS NULL) AS sms, (SELECT count(*) FROM audit_pending) AS pending,
               COALESCE((SELECT sequence FROM audit_head), 0) AS chain
        """
    ) { (r) throws(StoreError) in (try r.int(0, "sms"), try r.int(0, "pending"), try r.int(0, "chain")) }

    /// One sample now.
    func sample() async {
        guard let (sms, pending, chain) = try? await database.read(Self.query, timeout: .seconds(2)) else { return }
        values.sms.store(sms, ordering: .relaxed)
        values.pending.store(pending, ordering: .relaxed)
        values.chain.store(chain, ordering: .relaxed)
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await sample()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
