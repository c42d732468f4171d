public import Domain

/// Whose events a `WatchRequests` stream follows: a commission's inbox, or a sender's requests
/// and the decisions that concern them. Its `key` names it in the log.
public enum EventRecipient: Sendable, Hashable, CustomStringConvertible {
    case incoming(commissionId: String)
    case outgoing(SenderKey)

    public var key: String {
        switch self {
        case .incoming(let id): "incoming:\(id)"
        case .outgoing(let sender): "outgoing:\(sender)"
        }
    }

    public var description: String { key }
}

/// What a request's event log records (request_events.kind).
public enum RequestEventKind: String, Sendable, Hashable, CaseIterable {
    case submitted
    case reviewStarted = "review_started"
    case decisionDrafted = "decision_drafted"
    case draftReturned = "draft_returned"
    case decided
    case withdrawn
    case decisionDueSoon = "decision_due_soon"
}

/// One event as read back: where it stands in its recipient's log, and the request as it was
/// after it.
public struct RequestEventRecord: Sendable, Hashable {
    public var position: Int
    public var at: Double
    public var kind: RequestEventKind
    public var request: RequestRecord
}

/// Where a stream may start in a recipient's log.
public enum EventStart: Sendable, Hashable {
    /// From `position` (the last event the reader has).
    case at(Int)
    /// The events after the cursor were removed by retention.
    case purged
    /// The cursor is ahead of the log (a database restored to an earlier point).
    case ahead
}

/// The SQL of the event log `WatchRequests` reads. Events are appended by the writing
/// transaction at its very end (`Connection.beforeCommit`), taking each recipient's position
/// row under its lock in key order (no two writers lock in opposite orders); once it committed,
/// `hub` wakes this replica's watchers and sends the NOTIFY that wakes the others.
public struct RequestEvents: Sendable {
    public let hub: EventHub?
    /// Events are kept this long.
    public static let retentionDays = 30

    public init(hub: EventHub?) { self.hub = hub }

    /// Records `kind` for each of `recipients` when the open transaction commits: the request's
    /// `status` and `version` after the change, and the decision for `.decided`.
    public func append(
        _ c: Connection, requestId: String, kind: RequestEventKind, status: RequestStatus, version: Int, decisionId: String? = nil,
        to recipients: [EventRecipient]
    ) {
        let keys = Array(Set(recipients.map(\.key))).sorted()
        guard !keys.isEmpty else { return }
        c.beforeCommit { (c) throws(StoreError) in
            try c.query(
                """
                WITH taken AS (
                  INSERT INTO event_positions AS p (recipient, last)
                  SELECT k, 1 FROM unnest(\(keys)::text[]) AS k ORDER BY k
                  ON CONFLICT (recipient) DO UPDATE SET last = p.last + 1
                  RETURNING recipient, last)
                INSERT INTO request_events (recipient, position, kind, request_id, status, version, decision_id)
                SELECT recipient, last, \(kind.rawValue), \(requestId), \(status.databaseName), \(version), \(decisionId) FROM taken
                """)
        }
        if let hub { c.afterCommit { hub.published(keys) } }
    }

    /// Where a reader asks to start.
    public enum From: Sendable, Hashable {
        /// After the newest event.
        case now
        /// Before the oldest event kept.
        case oldest
        /// After the event at this position (a cursor's).
        case cursor(Int)
    }

    /// Where a reader of `recipient` starts: the position it has (the events after it follow),
    /// checked against what is kept.
    public func start(_ recipient: EventRecipient, from: From) -> Query<EventStart> {
        let after: Int
        if case .cursor(let p) = from { after = p } else { after = 0 }
        return Query(
            """
            SELECT COALESCE((SELECT last FROM event_positions WHERE recipient = \(recipient.key)), 0) AS last,
                   (SELECT min(position) FROM request_events WHERE recipient = \(recipient.key) AND position > \(after)) AS next
            """
        ) { (r) throws(StoreError) in
            let last = try r.int(0, "last")
            let next = try r.optionalInt(0, "next")
            switch from {
            case .now: return .at(last)
            case .oldest: return .at((next ?? last + 1) - 1)
            case .cursor(let cursor):
                if cursor > last { return .ahead }
                if cursor == last { return .at(cursor) }
                // Something follows the cursor: it must still be there.
                return next == cursor + 1 ? .at(cursor) : .purged
            }
        }
    }

    /// Up to `limit` events of `recipient` after `position`, in order, each with its request as
    /// it was then.
    public func events(_ recipient: EventRecipient, after position: Int, limit: Int) -> Query<[RequestEventRecord]> {
        Query(
            """
            SELECT e.position, extract(epoch FROM e.at) AS event_at, e.kind AS event_kind, e.status AS event_status,
                   e.version AS event_version, e.decision_id AS event_decision, \(RequestStore.columns)
            FROM request_events e JOIN requests r ON r.id = e.request_id
            WHERE e.recipient = \(recipient.key) AND e.position > \(position)
            ORDER BY e.position LIMIT \(limit)
            """
        ) { (r) throws(StoreError) in
            try (0..<r.count).map { (i) throws(StoreError) in
                var request = try RequestStore.request(r, i)
                guard let kind = RequestEventKind(rawValue: try r.string(i, "event_kind")),
                    let status = RequestStatus(databaseName: try r.string(i, "event_status"))
                else { throw StoreError(.decoding, reason: "request event has an unknown kind or status") }
                // What changes after sending: the status, the version and the decision.
                request.status = status
                request.version = try r.int(i, "event_version")
                request.decisionId = try r.optionalString(i, "event_decision")
                return RequestEventRecord(position: try r.int(i, "position"), at: try r.epoch(i, "event_at") ?? 0, kind: kind, request: request)
            }
        }
    }

    /// The newest position of `recipient` (0 before its first event).
    public func position(_ recipient: EventRecipient) -> Query<Int> {
        Query("SELECT COALESCE((SELECT last FROM event_positions WHERE recipient = \(recipient.key)), 0) AS last") { (r) throws(StoreError) in
            try r.int(0, "last")
        }
    }

    /// Writes the timer event "decision due soon" (to the receiving commission) for every open
    /// request whose decision is due within `within` seconds and that has none yet; returns how
    /// many. Replicas racing here write each once (the notice's primary key).
    public func noteDueSoon(_ c: Connection, within: Double = 24 * 3600, limit: Int = 1000) throws(StoreError) -> Int {
        let r = try c.query(
            """
            WITH due AS (
              INSERT INTO request_due_notices (request_id)
              SELECT r.id FROM requests r
              WHERE r.status IN ('submitted', 'under_review', 'decision_drafted') AND r.decision_due IS NOT NULL
                AND r.decision_due <= now() + make_interval(secs => \(within)) AND r.decision_due > now()
                AND NOT EXISTS (SELECT 1 FROM request_due_notices n WHERE n.request_id = r.id)
              ORDER BY r.decision_due LIMIT \(limit)
              ON CONFLICT DO NOTHING RETURNING request_id)
            SELECT r.id, r.receiver_id, r.status, r.version FROM requests r JOIN due ON due.request_id = r.id
            """)
        for i in 0..<r.count {
            guard let status = RequestStatus(databaseName: try r.string(i, "status")) else { continue }
            append(c, requestId: try r.string(i, "id"), kind: .decisionDueSoon, status: status, version: try r.int(i, "version"),
                   to: [.incoming(commissionId: try r.string(i, "receiver_id"))])
        }
        return r.count
    }

    /// Removes events older than the retention period; returns how many.
    public func purge(_ c: Connection, olderThanDays days: Int = RequestEvents.retentionDays) throws(StoreError) -> Int {
        try c.query("DELETE FROM request_events WHERE at < now() - make_interval(days => \(Int32(days)))").affected
    }
}
