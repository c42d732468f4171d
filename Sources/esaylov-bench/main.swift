#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Signatures
import Store
import Synchronization

// esaylov-bench: load generators for Scripts/bench.sh that need the Swift API itself.
//
//   esaylov-bench transactions --callers N --seconds S --pool P [--chained]
//   esaylov-bench cms CMS.der CONTENT TRUST_DIR SECONDS
//
// N concurrent callers each run, in a loop for S seconds, one write transaction through
// `Database.transaction` shaped like a request RPC's: a request-like row and an audit-like
// row (tables bench_requests and bench_audit, which bench.sh creates); with `--chained`, the
// audit row is a real event of the audit log (`AuditLog.append`), in a scratch database
// bench.sh makes for it, and the events are then chained (`chained: N events in S s: R/s`). Prints
// `transactions: COUNT in SECONDS s: TPS tps, p99 MS ms, failed F`.

func value(_ flag: String, _ fallback: Int) -> Int {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: flag), i + 1 < args.count, let n = Int(args[i + 1]) else { return fallback }
    return n
}

// `cms`: SignatureVerifier over one detached CMS, on one thread, for SECONDS: the same work as
// Scripts/bench/cms_verify.c (OpenSSL's CMS_verify with the same trust store), each result
// checked. Prints `cms: N verifications in S s: R/s`.
if CommandLine.arguments.dropFirst().first == "cms" {
    let a = CommandLine.arguments
    guard a.count == 6, let cms = FileManager.default.contents(atPath: a[2]), let content = FileManager.default.contents(atPath: a[3]),
        let seconds = Double(a[5])
    else {
        print("usage: esaylov-bench cms CMS.der CONTENT TRUST_DIR SECONDS")
        exit(2)
    }
    do {
        let verifier = SignatureVerifier(trustStore: try TrustStore(directory: a[4]))
        let (der, bytes) = ([UInt8](cms), [UInt8](content))
        let start = ContinuousClock.now
        let end = start + .milliseconds(Int(seconds * 1000))
        var count = 0
        while ContinuousClock.now < end {
            for _ in 0..<16 {
                guard try verifier.verify(cms: der, content: bytes, at: Date().timeIntervalSince1970).isValid else {
                    print("esaylov-bench: verification failed")
                    exit(1)
                }
                count += 1
            }
        }
        let took = Double((ContinuousClock.now - start) / .milliseconds(1)) / 1000
        print("cms: \(count) verifications in \(String(format: "%.1f", took)) s: \(Int(Double(count) / took))/s")
        exit(0)
    } catch {
        print("esaylov-bench: \(error)")
        exit(1)
    }
}

guard CommandLine.arguments.dropFirst().first == "transactions" else {
    print("usage: esaylov-bench transactions --callers N --seconds S --pool P | cms CMS.der CONTENT TRUST_DIR SECONDS")
    exit(2)
}
guard let url = getenv("ESAYLOV_DATABASE_URL").map({ String(cString: $0) }) else {
    print("esaylov-bench: ESAYLOV_DATABASE_URL is not set")
    exit(2)
}
let callers = value("--callers", 64)
let chained = CommandLine.arguments.contains("--chained")
let seconds = value("--seconds", 10)
var configuration = Database.Configuration(url: url)
configuration.poolSize = value("--pool", 64)
configuration.maxWaitingTransactions = callers
let database = Database(configuration: configuration)

final class Tally: Sendable {
    let state = Mutex((done: 0, failed: 0, latencies: [Double]()))
}
let tally = Tally()
// Keys unique across runs, as a client's idempotency keys are.
let run = UInt64.random(in: 0...UInt64.max)
let start = ContinuousClock.now
let until = start + .seconds(seconds)
await withTaskGroup(of: Void.self) { group in
    for caller in 0..<callers {
        group.addTask {
            var n = 0
            while ContinuousClock.now < until {
                n += 1
                let sender = "org-\(caller)"
                let key = "\(run)-\(caller)-\(n)"
                let began = ContinuousClock.now
                do {
                    try await database.transaction(timeout: .seconds(5)) { (c) throws(StoreError) in
                        let id = try c.query(
                            """
                            INSERT INTO bench_requests (sender, idempotency_key, payload) VALUES (\(sender), \(key), \(SQLBytes(Array(repeating: 7, count: 256))))
                            RETURNING id
                            """
                        ).int(0, "id")
                        if chained {
                            try AuditLog().append(c, actor: AuditActor(organisationId: sender), action: "AUDIT_ACTION_REQUEST_SUBMITTED",
                                                  subjectKind: "request", subjectId: String(id))
                        } else {
                            try c.query("INSERT INTO bench_audit (request_id, actor, action) VALUES (\(id), \(sender), 'request.submitted')")
                        }
                    }
                    let ms = (ContinuousClock.now - began) / .milliseconds(1)
                    tally.state.withLock { $0.done += 1; $0.latencies.append(ms) }
                } catch {
                    tally.state.withLock { $0.failed += 1 }
                }
            }
        }
    }
}
let elapsed = (ContinuousClock.now - start) / .seconds(1)
let (done, failed, latencies) = tally.state.withLock { ($0.done, $0.failed, $0.latencies.sorted()) }
let p99 = latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(0.99 * Double(latencies.count)))]
print("transactions: \(done) in \(String(format: "%.1f", elapsed)) s: \(Int(Double(done) / elapsed)) tps, p99 \(String(format: "%.1f", p99)) ms, failed \(failed)")
if chained {
    // The chainer's side: every event those transactions wrote, into the hash chain.
    let began = ContinuousClock.now
    let chainedCount: Int
    do {
        chainedCount = try await AuditLog().flush(database)
    } catch {
        print("esaylov-bench: chaining failed: \(error)")
        exit(1)
    }
    let took = (ContinuousClock.now - began) / .seconds(1)
    print("chained: \(chainedCount) events in \(String(format: "%.2f", took)) s: \(Int(Double(chainedCount) / max(took, 0.001)))/s")
}
await database.close()
