import RPC
import Services
import Synchronization
import Testing

@Suite("Call metrics")
struct CallMetricsTests {
    static let method = MethodDescriptor(service: "esaylov.test.Metrics", method: "Call", kind: .unary)

    func exposition(_ metrics: ServerMetrics) -> String { String(decoding: metrics.exposition(), as: UTF8.self) }

    /// A descriptor serves every server in the process and carries the handles of the first
    /// registry that saw it: another registry must still count its calls in its own series.
    @Test func twoRegistriesOnOneDescriptorCountTheirOwnCalls() {
        let first = ServerMetrics(), second = ServerMetrics()
        for _ in 0..<3 {
            first.callStarted(Self.method)
            first.callEnded(Self.method, code: .ok, duration: .milliseconds(3))
        }
        second.callStarted(Self.method)
        second.callEnded(Self.method, code: .ok, duration: .milliseconds(3))
        second.callStarted(Self.method)
        second.callEnded(Self.method, code: .notFound, duration: .milliseconds(3))
        let ok = #"esaylov_rpc_calls_total{service="esaylov.test.Metrics",method="Call",code="OK"}"#
        let notFound = #"esaylov_rpc_calls_total{service="esaylov.test.Metrics",method="Call",code="NOT_FOUND"}"#
        #expect(exposition(first).contains("\(ok) 3"))
        #expect(!exposition(first).contains(notFound))
        #expect(exposition(second).contains("\(ok) 1"))
        #expect(exposition(second).contains("\(notFound) 1"))
        #expect(exposition(first).contains(#"esaylov_rpc_in_flight{service="esaylov.test.Metrics"} 0"#))
    }

    /// Registries made one after another (as tests make them) may get the address of one
    /// freed before: each must still count in its own series, not the freed one's.
    @Test func aRegistryMadeAfterAnotherIsFreedCountsItsOwnCalls() {
        let method = MethodDescriptor(service: "esaylov.test.Metrics", method: "Again", kind: .unary)
        for round in 0..<20 {
            let metrics = ServerMetrics()
            metrics.callEnded(method, code: .ok, duration: .milliseconds(1))
            #expect(exposition(metrics).contains(#"esaylov_rpc_calls_total{service="esaylov.test.Metrics",method="Again",code="OK"} 1"#), "round \(round)")
        }
    }

    /// A descriptor made apart (same names, another box) lands in the same series.
    @Test func equalDescriptorsShareTheirSeries() {
        let metrics = ServerMetrics()
        let again = MethodDescriptor(service: "esaylov.test.Metrics", method: "Call", kind: .unary)
        metrics.callEnded(Self.method, code: .ok, duration: .milliseconds(1))
        metrics.callEnded(again, code: .ok, duration: .milliseconds(1))
        #expect(exposition(metrics).contains(#"esaylov_rpc_calls_total{service="esaylov.test.Metrics",method="Call",code="OK"} 2"#))
    }

    final class Box: Sendable {
        let value: Int
        init(_ value: Int) { self.value = value }
    }

    @Test func setOnceKeepsTheFirstObjectStored() {
        let slot = SetOnce<Box>()
        #expect(slot.load() == nil)
        let first = Box(1)
        #expect(slot.storeIfNil(first) === first)
        #expect(slot.storeIfNil(Box(2)) === first)
        #expect(slot.load()?.value == 1)
    }

    @Test func setOnceReleasesWhatItHolds() {
        weak var held: Box?
        do {
            let slot = SetOnce<Box>()
            let box = Box(7)
            held = box
            slot.storeIfNil(box)
        }
        #expect(held == nil)
    }
}
