public import Store
import Logging
public import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// Opens the database the server runs on (`ESAYLOV_DATABASE_URL`), migrates it, and ties
/// health to its readiness.
public enum Storage {
    /// The URL from the environment; nil when none is set.
    public static var urlFromEnvironment: String? {
        guard let p = getenv("ESAYLOV_DATABASE_URL"), p.pointee != 0 else { return nil }
        return String(cString: p)
    }

    /// `ESAYLOV_DATABASE_READ_URL`: a hot standby of that database for reads that may lag; nil
    /// when none is set.
    public static var readURLFromEnvironment: String? {
        guard let p = getenv("ESAYLOV_DATABASE_READ_URL"), p.pointee != 0 else { return nil }
        return String(cString: p)
    }

    /// A standby's connections for reads on the event loops: nothing is migrated or written
    /// there, and it may be down at start (reads go to the primary until it answers).
    public static func openStandby(url: String, connectionsPerEventLoop: Int) -> Database {
        var configuration = Database.Configuration(url: url)
        configuration.poolSize = 1
        configuration.connectionsPerEventLoop = connectionsPerEventLoop
        return Database(configuration: configuration)
    }

    /// Connects and migrates, retrying for up to `patience` while the database starts.
    public static func open(
        url: String, poolSize: Int, connectionsPerEventLoop: Int = 8, patience: Duration = .seconds(30)
    ) throws(OptionError) -> Database {
        var configuration = Database.Configuration(url: url)
        configuration.poolSize = poolSize
        configuration.connectionsPerEventLoop = connectionsPerEventLoop
        let database = Database(configuration: configuration)
        let until = ContinuousClock.now + patience
        while true {
            do {
                try Migrations.migrate(database)
                return database
            } catch where error.kind == .unavailable && ContinuousClock.now < until {
                usleep(500_000)
            } catch {
                throw OptionError(message: "cannot prepare the database: \(error)")
            }
        }
    }

    /// Health follows the database: NOT_SERVING for the whole server and for `services`
    /// while it is unreachable, SERVING again when it is back.
    public static func reportReadiness(of database: Database, to health: HealthService, services: [String]) {
        database.onReadinessChange { ready in
            for name in [""] + services { health.setStatus(ready ? .serving : .notServing, for: name) }
        }
    }
}

/// The database as a service of the server's group: monitors it while the server runs; once
/// the group shuts down (the server has drained, its event loops still run), closes its
/// connections on their loops.
public struct DatabaseService: Service {
    public let database: Database

    public init(_ database: Database) {
        self.database = database
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await database.monitor() }
        await database.close()
    }
}
