import CoreMetrics
public import Prometheus
public import RPC
import Synchronization

/// The server's metrics through swift-metrics into a swift-prometheus registry, served as
/// Prometheus text on the operations port's `/metrics` (docs in README "Calling the server"):
///   esaylov_rpc_calls_total{service,method,code}     calls answered, by status
///   esaylov_rpc_duration_seconds{service,method}     call durations (histogram)
///   esaylov_rpc_in_flight{service}                    calls running now
///   esaylov_connections                               HTTP/2 connections open
///   esaylov_watch_streams                             WatchRequests streams open on this replica
///   esaylov_database_ready                            1 while the database answers
/// Labels are method names and status codes only (bounded): never ids.
public final class ServerMetrics: CallMetrics {
    public let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory

    private final class Handles: Sendable {
        let duration: CoreMetrics.Timer
        let inFlight: CoreMetrics.Meter
        /// By status code, made on its first use (no series for codes never answered).
        let calls = Mutex<[CoreMetrics.Counter?]>(Array(repeating: nil, count: 17))

        init(duration: CoreMetrics.Timer, inFlight: CoreMetrics.Meter) {
            self.duration = duration
            self.inFlight = inFlight
        }
    }
    /// By method path.
    private let handles = Mutex<[String: Handles]>([:])
    /// Read at each scrape.
    private let sampled = Mutex<[(CoreMetrics.Gauge, @Sendable () -> Double)]>([])

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10),
        ]
        self.factory = factory
    }

    private func handles(_ method: MethodDescriptor) -> Handles {
        let key = method.path
        if let h = handles.withLock({ $0[key] }) { return h }
        let made = Handles(
            duration: CoreMetrics.Timer(label: "esaylov_rpc_duration_seconds", dimensions: [("service", method.service), ("method", method.method)],
                                        preferredDisplayUnit: .seconds, factory: factory),
            inFlight: CoreMetrics.Meter(label: "esaylov_rpc_in_flight", dimensions: [("service", method.service)], factory: factory))
        return handles.withLock { all in
            if let h = all[key] { return h }
            all[key] = made
            return made
        }
    }

    private func counter(_ h: Handles, _ method: MethodDescriptor, _ code: RPCError.Code) -> CoreMetrics.Counter {
        let slot = min(max(code.rawValue, 0), 16)
        if let c = h.calls.withLock({ $0[slot] }) { return c }
        let made = CoreMetrics.Counter(
            label: "esaylov_rpc_calls_total", dimensions: [("service", method.service), ("method", method.method), ("code", code.description)],
            factory: factory)
        return h.calls.withLock { calls in
            if let c = calls[slot] { return c }
            calls[slot] = made
            return made
        }
    }

    public func callStarted(_ method: MethodDescriptor) {
        handles(method).inFlight.increment()
    }

    public func callEnded(_ method: MethodDescriptor, code: RPCError.Code, duration: Duration) {
        let h = handles(method)
        h.inFlight.decrement()
        counter(h, method, code).increment()
        let (s, a) = duration.components
        h.duration.recordNanoseconds(s * 1_000_000_000 + a / 1_000_000_000)
    }

    /// A gauge set from `value` at every scrape.
    public func sample(_ label: String, _ value: @escaping @Sendable () -> Double) {
        let gauge = CoreMetrics.Gauge(label: label, factory: factory)
        sampled.withLock { $0.append((gauge, value)) }
    }

    /// The Prometheus text exposition of everything, sampled gauges read now.
    public func exposition() -> [UInt8] {
        for (gauge, value) in sampled.withLock({ $0 }) { gauge.record(value()) }
        var out: [UInt8] = []
        registry.emit(into: &out)
        return out
    }
}
