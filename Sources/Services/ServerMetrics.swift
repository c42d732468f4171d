import CoreMetrics
public import Prometheus
public import RPC
public import Store
import Synchronization

/// The server's metrics through swift-metrics into a swift-prometheus registry, served as
/// Prometheus text on the operations port's `/metrics` (docs in README "Calling the server"):
///   esaylov_rpc_calls_total{service,method,code}     calls answered, by status
///   esaylov_rpc_duration_seconds{service,method}     call durations (histogram)
///   esaylov_rpc_in_flight{service}                    calls running now
///   esaylov_connections                               HTTP/2 connections open
///   esaylov_tls_handshakes_in_progress                TLS handshakes under way
///   esaylov_received_bytes_total, esaylov_sent_bytes_total   HTTP/2 bytes in and out
///   esaylov_bounds_hit_total{bound}                   resource bounds hit (RPC.ResourceBound)
///   esaylov_db_pool_waits_total                       database calls that waited for a connection
///   esaylov_db_errors_total{kind}                     database failures: unavailable, timeout, conflict, pool_exhausted, other
///   esaylov_watch_streams                             WatchRequests streams open on this replica
///   esaylov_database_ready                            1 while the database answers
/// Labels are method names and status codes only (bounded): never ids.
public final class ServerMetrics: CallMetrics {
    public let registry = PrometheusCollectorRegistry()
    /// Which registry made a method's handles (`CallMetricsHandles.owner`).
    private let id = ServerMetrics.made.add(1, ordering: .relaxed).newValue
    private static let made = Atomic<Int>(0)
    private let factory: PrometheusMetricsFactory

    private final class Handles: CallMetricsHandles, @unchecked Sendable {  // immutable but for its atomic slots
        /// In seconds: a histogram of doubles (a duration histogram's bucket search compares
        /// 128-bit durations, several times the cost), held as the factory's handler (a
        /// `Recorder` converts each value through a generic floating-point initialiser).
        let duration: any CoreMetrics.RecorderHandler
        /// The method's service's calls running now: counted here, read into the gauge at each
        /// scrape (a gauge of doubles updated twice a call costs two compare-and-swap loops).
        let inFlight: InFlight
        /// By status code, made on its first use (no series for codes never answered), and
        /// read without a lock.
        let calls = InlineArray<17, SetOnce<CoreMetrics.Counter>> { _ in SetOnce() }

        init(owner: ServerMetrics, duration: any CoreMetrics.RecorderHandler, inFlight: InFlight) {
            self.duration = duration
            self.inFlight = inFlight
            super.init(owner: owner.id)
        }
    }
    /// One service's calls running now.
    private final class InFlight: Sendable {
        let count = Atomic<Int>(0)
    }
    private let inFlightByService = Mutex<[String: InFlight]>([:])

    /// By method path: where a method's handles are found when its descriptor does not carry
    /// this registry's (another registry's are on it, or the descriptor was made apart).
    private let handles = Mutex<[String: Handles]>([:])
    /// Read at each scrape.
    private let sampled = Mutex<[(CoreMetrics.Gauge, @Sendable () -> Double)]>([])
    /// Counters kept elsewhere (the server's, the database's), brought up to date at each
    /// scrape: the counter, its source, and the value it had at the last scrape.
    private let mirrored = Mutex<[(counter: CoreMetrics.Counter, value: @Sendable () -> Int, last: Int)]>([])

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.valueHistogramBuckets["esaylov_rpc_duration_seconds"] = [
            0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10,
        ]
        self.factory = factory
    }

    private func handles(_ method: MethodDescriptor) -> Handles {
        if let h = method.metricsHandles as? Handles, h.owner == id { return h }
        let key = method.path
        if let h = handles.withLock({ $0[key] }) {
            method.keepMetricsHandles(h)
            return h
        }
        let made = Handles(
            owner: self,
            duration: factory.makeRecorder(
                label: "esaylov_rpc_duration_seconds", dimensions: [("service", method.service), ("method", method.method)], aggregate: true),
            inFlight: inFlight(method.service))
        let kept = handles.withLock { all in
            if let h = all[key] { return h }
            all[key] = made
            return made
        }
        method.keepMetricsHandles(kept)
        return kept
    }

    /// The in-flight count of `service`, made with its gauge on the service's first call.
    private func inFlight(_ service: String) -> InFlight {
        let (count, made) = inFlightByService.withLock { all -> (InFlight, Bool) in
            if let c = all[service] { return (c, false) }
            let c = InFlight()
            all[service] = c
            return (c, true)
        }
        if made { sample("esaylov_rpc_in_flight", [("service", service)]) { Double(count.count.load(ordering: .relaxed)) } }
        return count
    }

    private func counter(_ h: Handles, _ method: MethodDescriptor, _ code: RPCError.Code) -> CoreMetrics.Counter {
        let slot = min(max(code.rawValue, 0), 16)
        if let c = h.calls[slot].load() { return c }
        let made = CoreMetrics.Counter(
            label: "esaylov_rpc_calls_total", dimensions: [("service", method.service), ("method", method.method), ("code", code.description)],
            factory: factory)
        return h.calls[slot].storeIfNil(made)
    }

    /// Runs `body` with this registry's handles for `method`: borrowed from the method when it
    /// carries them (every call after its first, so no retain and release on the hot path),
    /// else found or made.
    @inline(__always)
    private func withHandles(_ method: MethodDescriptor, _ body: (Handles) -> Void) {
        let id = self.id
        let done = method.withMetricsHandles { h -> Bool in
            guard h.owner == id else { return false }
            // Only this class makes handles with this registry's id (ids are never reused).
            body(unsafeDowncast(h, to: Handles.self))
            return true
        }
        if done != true { body(handles(method)) }
    }

    public func callStarted(_ method: MethodDescriptor) {
        withHandles(method) { $0.inFlight.count.add(1, ordering: .relaxed) }
    }

    public func callEnded(_ method: MethodDescriptor, code: RPCError.Code, duration: Duration) {
        withHandles(method) { h in
            h.inFlight.count.subtract(1, ordering: .relaxed)
            let slot = min(max(code.rawValue, 0), 16)
            if h.calls[slot].withLoaded({ $0.increment() }) == nil { counter(h, method, code).increment() }
            let (s, a) = duration.components
            h.duration.record(Double(s) + Double(a) * 1e-18)
        }
    }

    /// A gauge set from `value` at every scrape.
    public func sample(_ label: String, _ dimensions: [(String, String)] = [], _ value: @escaping @Sendable () -> Double) {
        let gauge = CoreMetrics.Gauge(label: label, dimensions: dimensions, factory: factory)
        sampled.withLock { $0.append((gauge, value)) }
    }

    /// A counter that follows `value` (a count kept elsewhere, never going down).
    public func mirror(_ label: String, _ dimensions: [(String, String)] = [], _ value: @escaping @Sendable () -> Int) {
        let counter = CoreMetrics.Counter(label: label, dimensions: dimensions, factory: factory)
        mirrored.withLock { $0.append((counter, value, 0)) }
    }

    /// The transport's metrics: connections, TLS handshakes in progress, bytes in and out, and
    /// how often each resource bound was hit (every bound has its series, hit or not).
    public func observe(_ server: RPCServer) {
        sample("esaylov_connections") { Double(server.openConnections) }
        sample("esaylov_tls_handshakes_in_progress") { Double(server.tlsHandshakesInProgress) }
        let traffic = server.traffic
        mirror("esaylov_received_bytes_total") { traffic.bytesReceived }
        mirror("esaylov_sent_bytes_total") { traffic.bytesSent }
        for bound in ResourceBound.allCases {
            mirror("esaylov_bounds_hit_total", [("bound", bound.rawValue)]) { server.boundsHit[bound] ?? 0 }
        }
    }

    /// The database's waits for a connection and its failures by kind.
    public func observe(_ database: Database) {
        let statistics = database.statistics
        mirror("esaylov_db_pool_waits_total") { statistics.waitsTotal }
        for kind in DatabaseStatistics.failureKinds {
            mirror("esaylov_db_errors_total", [("kind", kind)]) { statistics.failuresByKind[kind] ?? 0 }
        }
    }

    /// The Prometheus text exposition of everything, sampled gauges read now.
    public func exposition() -> [UInt8] {
        for (gauge, value) in sampled.withLock({ $0 }) { gauge.record(value()) }
        mirrored.withLock { all in
            for i in all.indices {
                let now = all[i].value()
                if now > all[i].last { all[i].counter.increment(by: Int64(now - all[i].last)) }
                all[i].last = max(all[i].last, now)
            }
        }
        var out: [UInt8] = []
        registry.emit(into: &out)
        return out
    }
}
