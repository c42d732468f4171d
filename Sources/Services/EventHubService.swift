import ServiceLifecycle
public import Store

/// Runs the event hub's relay and listener while the server serves. On shutdown it stops them
/// before the server drains: every watch stream ends at once with UNAVAILABLE, and its client
/// resumes on another replica from the last cursor it got.
public struct EventHubService: StopsBeforeServer {
    let hub: EventHub

    public init(_ hub: EventHub) {
        self.hub = hub
    }

    public func run() async throws {
        hub.start()
        try? await gracefulShutdown()
        hub.stop()
    }
}
