import Foundation
public import Logging
public import ServiceLifecycle
public import Store
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Hands one SMS to the operator network. An HTTP gateway implements it for production; the
/// embedded default appends to a file.
public protocol SmsGateway: Sendable {
    /// Delivers one message; throws when it was not accepted (it is retried later).
    func send(phone: String, body: String) throws
}

/// The development gateway: one JSON line per message (`{"phone":…,"body":…,"at":…}`),
/// appended to a file of mode 0600 (codes are secrets).
public struct OutboxFileGateway: SmsGateway {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    struct WriteFailed: Error {}

    public func send(phone: String, body: String) throws {
        let line: [String: Any] = ["phone": phone, "body": body, "at": Int(Date().timeIntervalSince1970)]
        var data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys])
        data.append(0x0a)
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        guard fd >= 0 else { throw WriteFailed() }
        defer { close(fd) }
        fchmod(fd, 0o600)
        let written = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == data.count else { throw WriteFailed() }
    }
}

/// Delivers the outbox (`sms_outbox`) through the gateway: woken when a code is queued, and
/// every few seconds for what failed before. A delivered message's text is erased. Runs on
/// the database's threads, never on an event loop.
public final class SmsDelivery: Service, Sendable {
    let database: Database
    let gateway: any SmsGateway
    let logger: Logger
    private let wakeups: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    public init(database: Database, gateway: any SmsGateway, logger: Logger) {
        self.database = database
        self.gateway = gateway
        self.logger = logger
        (wakeups, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    public func wake() {
        continuation.yield()
    }

    public func run() async throws {
        let ticker = Task { [continuation] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(5))
                continuation.yield()
            }
        }
        defer { ticker.cancel() }
        await withGracefulShutdownHandler {
            for await _ in wakeups {
                await deliver()
            }
        } onGracefulShutdown: { [continuation] in
            continuation.finish()
        }
    }

    func deliver() async {
        let gateway = self.gateway
        do {
            let (sent, failed) = try await database.transaction(timeout: .seconds(30)) { (c) throws(StoreError) -> (Int, Int) in
                var sent = 0
                var failed = 0
                for m in try AuthStore().pendingSMS(c, limit: 100) {
                    do {
                        try gateway.send(phone: m.phone, body: m.body)
                        try AuthStore().delivered(c, id: m.id)
                        sent += 1
                    } catch let e as StoreError {
                        throw e
                    } catch {
                        failed += 1
                    }
                }
                return (sent, failed)
            }
            if failed > 0 { logger.warning("SMS gateway refused messages; they stay queued", metadata: ["failed": "\(failed)", "sent": "\(sent)"]) }
        } catch {
            logger.warning("SMS delivery could not reach the database", metadata: ["error": "\(error.kind)"])
        }
    }
}

/// Every minute writes the timer events "decision due soon" (a day before a request's decision
/// is due); every ten minutes removes sign-in challenges and SMS attempts a day after they
/// ended, uploads no request took within 24 hours (and contents nothing refers to), unfinished
/// uploads after an hour, idempotency keys after 8 days and request events after 30 days.
public struct Maintenance: Service {
    let database: Database
    let events: RequestEvents
    let logger: Logger

    public init(database: Database, events: RequestEvents, logger: Logger) {
        self.database = database
        self.events = events
        self.logger = logger
    }

    public func run() async throws {
        var minute = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await database.transaction(timeout: .seconds(60)) { [events] (c) throws(StoreError) in
                    _ = try events.noteDueSoon(c)
                }
            } catch {
                logger.warning("writing the decision-due-soon events failed", metadata: ["error": "\(error.kind)"])
            }
            if minute % 10 == 0 {
                do {
                    try await database.transaction(timeout: .seconds(60)) { [events] (c) throws(StoreError) in
                        try AuthStore().purge(c)
                        _ = try RequestStore().purge(c)
                        _ = try events.purge(c)
                    }
                } catch {
                    logger.warning("purging old sign-in attempts, uploads, idempotency keys and request events failed", metadata: ["error": "\(error.kind)"])
                }
            }
            minute += 1
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(60)) }
        }
    }
}
