import Domain
public import ESaylovAPI
import Foundation
public import RPC
import Signatures
import Store

// WatchRequests: a recipient's event log, replayed from a cursor and then followed live.

/// One watch stream's course: read the log after its position, send what came, wait for a
/// signal (an event published for it, or the hub's tick), read again on an event or when the
/// fallback poll is due; every `heartbeat` seconds check the caller's role again, and send a
/// heartbeat when nothing was sent for that long. Pure: the handler performs its actions.
struct WatchStateMachine {
    struct Progress: Equatable {
        /// The last position sent (or the start).
        var position: Int
        var lastRead: Double
        var lastSent: Double
        var lastChecked: Double
    }

    enum State: Equatable {
        case idle
        case reading(Progress)
        case waiting(Progress)
        case checkingRole(Progress)
        case finished
    }

    enum Action: Equatable {
        /// Read the events after this position (and send them).
        case read(after: Int)
        /// Wait for the next signal.
        case wait
        /// Look the caller's session and role up again.
        case checkRole
        /// Send a heartbeat at this position, then wait.
        case sendHeartbeat(position: Int)
        /// End the stream.
        case finish
    }

    /// Events read at once.
    static let batch = 100

    let heartbeat: Double
    private(set) var state = State.idle

    init(heartbeat: Double) {
        self.heartbeat = heartbeat
    }

    var position: Int? {
        switch state {
        case .reading(let p), .waiting(let p), .checkingRole(let p): p.position
        case .idle, .finished: nil
        }
    }

    mutating func started(at position: Int, now: Double) -> Action {
        guard case .idle = state else { return .finish }
        state = .reading(Progress(position: position, lastRead: now, lastSent: now, lastChecked: now))
        return .read(after: position)
    }

    /// A read returned `count` events, the last at `last`; they were sent.
    mutating func read(count: Int, through last: Int?, now: Double) -> Action {
        guard case .reading(var p) = state else { return .finish }
        if let last { p.position = last }
        p.lastRead = now
        if count > 0 { p.lastSent = now }
        if now - p.lastChecked >= heartbeat {
            state = .checkingRole(p)
            return .checkRole
        }
        if count >= Self.batch {
            state = .reading(p)
            return .read(after: p.position)
        }
        if now - p.lastSent >= heartbeat {
            p.lastSent = now
            state = .waiting(p)
            return .sendHeartbeat(position: p.position)
        }
        state = .waiting(p)
        return .wait
    }

    /// A signal came: `notified` when an event was published for the stream since the last one.
    mutating func woke(notified: Bool, poll: Double, now: Double) -> Action {
        guard case .waiting(let p) = state else { return .finish }
        if notified || now - p.lastRead >= poll || now - p.lastChecked >= heartbeat || now - p.lastSent >= heartbeat {
            state = .reading(p)
            return .read(after: p.position)
        }
        return .wait
    }

    /// The caller's role was checked again.
    mutating func roleChecked(stillHeld: Bool, now: Double) -> Action {
        guard case .checkingRole(var p) = state, stillHeld else {
            state = .finished
            return .finish
        }
        p.lastChecked = now
        state = .reading(p)
        return .read(after: p.position)
    }

    /// The call ended (cancelled, deadline, server shutting down).
    mutating func ended() -> Action {
        state = .finished
        return .finish
    }
}

/// What a watcher may read of a stream's requests.
enum WatchAccess: Equatable {
    /// A commission's inbox, read in full (its members, operators) or in aggregate (above it).
    case incoming(commissionId: String, RequestService.Reading)
    /// A sender's own requests in full, and in aggregate the requests of others whose decisions
    /// concern it (the candidate a party's request registered).
    case outgoing(SenderKey, displayName: String)
}

extension RequestService {
    func cursor(_ recipient: EventRecipient, _ position: Int) -> String {
        cursors.encode(filter: ["watch", recipient.key], fields: [String(position)], now: Date(timeIntervalSince1970: 0))
    }

    func position(ofCursor cursor: String, _ recipient: EventRecipient) throws(RPCError) -> Int {
        if cursor.utf8.count > FieldLimits.pageToken { throw invalid("cursor", "must be at most \(FieldLimits.pageToken) characters") }
        guard let f = cursors.decode(cursor, filter: ["watch", recipient.key], fieldCount: 1), f.count == 1, let p = Int(f[0]), p >= 0 else {
            throw invalid("cursor", "is not a cursor of this stream (scope and commission or sender): use one from its events or from the matching list")
        }
        return p
    }

    /// The stream's recipient and what the caller may read of it.
    func watchAccess(_ p: Principal, _ request: Esaylov_V1_WatchRequestsRequest, _ context: ServerContext) async throws(RPCError) -> (EventRecipient, WatchAccess) {
        switch request.scope {
        case .incoming:
            let commission = request.commissionId.isEmpty ? (p.organisationId ?? "") : request.commissionId
            let reading = try await inboxAccess(p, commission, context)
            return (.incoming(commissionId: commission), .incoming(commissionId: commission, reading))
        case .outgoing:
            if !request.commissionId.isEmpty { throw invalid("commission_id", "must be empty for scope OUTGOING: the stream is the caller's own") }
            let s = try await sender(p, context)
            return (.outgoing(s.key), .outgoing(s.key, displayName: s.displayName))
        default:
            throw invalid("scope", "must be WATCH_SCOPE_INCOMING (a commission's inbox) or WATCH_SCOPE_OUTGOING (the caller's requests)")
        }
    }

    /// How the caller reads a commission's inbox (`ListIncoming`'s rule); NOT_FOUND for what is
    /// no election commission.
    func inboxAccess(_ p: Principal, _ commission: String, _ context: ServerContext) async throws(RPCError) -> RequestService.Reading {
        try checkId(commission, "commission_id")
        guard let org = try await database.read(DirectoryStore().organisation(id: commission), for: context), org.kind.isElectionCommission else {
            throw RPCError(code: .notFound, message: "commission_id names no election commission",
                           details: [.fieldViolation(field: "commission_id", description: "must name an election commission", reason: "NOT_FOUND")])
        }
        return try await inboxReading(p, commission, context)
    }

    /// The caller's session and role looked up again: UNAUTHENTICATED once the session ended,
    /// PERMISSION_DENIED once the role that opened the stream is gone; keeps the session alive.
    func recheck(_ original: WatchAccess, _ request: Esaylov_V1_WatchRequestsRequest, _ context: ServerContext) async throws(RPCError) {
        let hash = Crypto.sha256(Array(try AuthenticationInterceptor.token(context).utf8))
        let session = try await AuthenticationInterceptor.session(hash, database, context, ended: "the session ended while watching: sign in again")
        let current = try await watchAccess(Principal(session: session), request, context).1
        guard current == original else {
            throw PermissionRules.denied(PermissionRules.watching, "the caller's role changed while watching: watch again")
        }
        await AuthenticationInterceptor.touchIfDue(session, SessionPolicy(), database, context)
    }

    func wire(_ e: RequestEventRecord, _ access: WatchAccess, _ recipient: EventRecipient) throws(RPCError) -> Esaylov_V1_RequestEvent {
        var out = Esaylov_V1_RequestEvent()
        out.cursor = cursor(recipient, e.position)
        out.kind = Self.eventKind(e.kind.rawValue)
        out.at = timestamp(e.at)
        switch access {
        case .incoming(_, let reading):
            out.request = try wire(e.request, reading)
        case .outgoing(let key, let name):
            out.request = e.request.sender == key ? try wire(e.request, .full, displayName: name) : try wire(e.request, .aggregate)
        }
        out.decisionId = e.request.decisionId ?? ""
        return out
    }

    public func watchRequests(
        request: Esaylov_V1_WatchRequestsRequest, responses: ResponseWriter<Esaylov_V1_RequestEvent>, context: ServerContext
    ) async throws {
        let p = try context.principal()
        let (recipient, access) = try await watchAccess(p, request, context)
        let from: RequestEvents.From = request.cursor.isEmpty ? (request.fromOldest ? .oldest : .now) : .cursor(try position(ofCursor: request.cursor, recipient))
        if !request.cursor.isEmpty, request.fromOldest { throw invalid("from_oldest", "must be false with a cursor: the cursor says where to start") }
        if case .incoming(let commission, .full) = access, p.organisationId != commission {
            // An operator watching another commission's inbox reads the personal data in it (cl. 13).
            let actor = p.auditActor
            try await database.transaction(for: context) { [audit] (c) throws(StoreError) in
                _ = try audit.append(c, actor: actor, action: "AUDIT_ACTION_PERSONAL_DATA_READ", subjectKind: "inbox", subjectId: commission,
                                     facts: ["reader_role": "operator", "stream": "watch"])
            }
        }
        // Subscribed before the first read: what commits from here on is read, by the first
        // read or on the signal it sends.
        let subscription = events.hub?.subscribe(recipient.key)
        defer { if let subscription { events.hub?.unsubscribe(subscription) } }
        let start: Int
        switch try await database.read(events.start(recipient, from: from), for: context) {
        case .at(let position): start = position
        case .purged:
            throw RPCError(code: .outOfRange, message: "the cursor is older than the events kept (\(RequestEvents.retentionDays) days): list again and watch from the list's watch_cursor",
                           details: [.preconditionViolation(type: "RETENTION", subject: "cursor", description: "older than the events kept")])
        case .ahead:
            throw RPCError(code: .outOfRange, message: "the cursor is ahead of this server's event log: list again and watch from the list's watch_cursor",
                           details: [.preconditionViolation(type: "RETENTION", subject: "cursor", description: "ahead of the log")])
        }
        if let subscription { context.onCancel { subscription.cancel() } }
        let clock = { Date().timeIntervalSince1970 }
        var machine = WatchStateMachine(heartbeat: watchHeartbeat.inSeconds)
        var action = machine.started(at: start, now: clock())
        var signals = subscription?.signals.makeAsyncIterator()
        while true {
            if context.isCancelled { action = machine.ended() }
            switch action {
            case .read(let after):
                let batch = try await database.read(events.events(recipient, after: after, limit: WatchStateMachine.batch), for: context)
                for e in batch { try await responses.write(try wire(e, access, recipient)) }
                action = machine.read(count: batch.count, through: batch.last?.position, now: clock())
            case .wait:
                let notified: Bool
                if let subscription, signals != nil {
                    guard await signals?.next() != nil else {
                        if context.isCancelled {
                            action = machine.ended()
                            continue
                        }
                        throw RPCError(code: .unavailable, message: "the server is shutting down: watch again from the last event's cursor")
                    }
                    notified = subscription.takeNotified()
                } else {
                    // No hub (tools, tests): the log is polled every second.
                    try? await Task.sleep(for: .seconds(1))
                    notified = false
                }
                let poll = events.hub.map { $0.pollInterval.inSeconds } ?? 1
                action = machine.woke(notified: notified, poll: poll, now: clock())
            case .checkRole:
                try await recheck(access, request, context)
                action = machine.roleChecked(stillHeld: true, now: clock())
            case .sendHeartbeat(let position):
                var beat = Esaylov_V1_RequestEvent()
                beat.cursor = cursor(recipient, position)
                beat.kind = .heartbeat
                beat.at = timestamp(clock())
                try await responses.write(beat)
                action = .wait
            case .finish:
                if context.isCancelled { throw RPCError(code: .cancelled, message: "watch cancelled") }
                return
            }
        }
    }
}

