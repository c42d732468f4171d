import Synchronization

/// A documented resource budget of the server (docs/resource-bounds.md), as counted when it
/// is hit. The raw value is the `bound` label of `esaylov_bounds_hit_total`.
public enum ResourceBound: String, Sendable, CaseIterable {
    /// A connection refused on accept: `maxConnections`.
    case connections = "connections"
    /// A connection refused on accept: `maxConnectionsPerPeer`.
    case connectionsPerPeer = "connections_per_peer"
    /// A TLS connection refused on accept: `maxTLSHandshakes` in progress.
    case tlsHandshakes = "tls_handshakes"
    /// A TLS handshake that did not finish within `tlsHandshakeTimeout`.
    case tlsHandshakeTimeout = "tls_handshake_timeout"
    /// An HTTP/2 preface and SETTINGS that did not arrive within `handshakeTimeout`.
    case http2HandshakeTimeout = "http2_handshake_timeout"
    /// Request headers over `maxHeaderListSize`.
    case headerListSize = "header_list_size"
    /// A request message over `maxReceiveMessageSize` (or inflating past it).
    case messageSize = "message_size"
    /// The process's `receiveBudget` of request bytes.
    case receiveBudget = "receive_budget"
    /// The blocking pool's queue (`blockingQueueLimit`).
    case blockingQueue = "blocking_queue"
    /// `maxWatchesPerConnection`, `maxWatchesPerPeer`.
    case watchesPerConnection = "watches_per_connection"
    case watchesPerPeer = "watches_per_peer"
    /// A call whose request did not arrive within `receiveTimeout`.
    case receiveTimeout = "receive_timeout"
    /// A finished response that waited past `finishLinger` for the client's window.
    case finishLinger = "finish_linger"
    /// Decompression output paused by `inflatePerSecond`.
    case inflateRate = "inflate_rate"
    /// A connection ended with ENHANCE_YOUR_CALM: reset, PING or SETTINGS floods.
    case frameFlood = "frame_flood"
    /// A connection closed for an unanswered keepalive PING.
    case keepalive = "keepalive"
}

/// How often each bound was hit since the start.
public final class BoundCounters: Sendable {
    private let counts = Mutex([Int](repeating: 0, count: ResourceBound.allCases.count))
    private static let index: [ResourceBound: Int] = Dictionary(uniqueKeysWithValues: ResourceBound.allCases.enumerated().map { ($1, $0) })

    init() {}

    func hit(_ bound: ResourceBound) {
        let i = Self.index[bound]!
        counts.withLock { $0[i] += 1 }
    }

    public var snapshot: [ResourceBound: Int] {
        let c = counts.withLock { $0 }
        return Dictionary(uniqueKeysWithValues: ResourceBound.allCases.enumerated().map { ($1, c[$0]) })
    }
}

/// Bytes of HTTP/2 read from and written to client connections since the start (under TLS,
/// the plaintext: records add their overhead).
public final class TrafficCounters: Sendable {
    private let received = Atomic<Int>(0)
    private let sent = Atomic<Int>(0)

    init() {}

    func read(_ n: Int) { received.add(n, ordering: .relaxed) }
    func wrote(_ n: Int) { sent.add(n, ordering: .relaxed) }

    public var bytesReceived: Int { received.load(ordering: .relaxed) }
    public var bytesSent: Int { sent.load(ordering: .relaxed) }
}
