internal import COpenSSL
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Why a trust store cannot be used.
public struct TrustStoreError: Error, Sendable, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}

/// The certification authorities the server trusts and their revocation lists: every `*.pem`
/// file of one directory, each holding certificates and/or CRLs. Files that change (a CRL
/// rewritten by `esaylovctl pki revoke`, a CA added) are read again on the next verification
/// at most `recheckInterval` after the change; a directory that no longer loads keeps the last
/// good store (and says so through `lastReloadError`).
public final class TrustStore: Sendable {
    public let directory: String
    public let recheckInterval: Duration

    struct Loaded: @unchecked Sendable {
        let store: X509StoreHandle
        /// Path → (modification time, size) of what was loaded.
        let files: [String: [Int]]
        /// Changes with every reload: the key of cached chain results.
        let generation: Int
    }

    struct State {
        var loaded: Loaded
        var checkedAt: ContinuousClock.Instant
        var lastReloadError: String?
    }

    private let state: Mutex<State>

    public init(directory: String, recheckInterval: Duration = .seconds(1)) throws(TrustStoreError) {
        self.directory = directory
        self.recheckInterval = recheckInterval
        let files = Self.scan(directory)
        let store = try Self.load(directory, files)
        state = Mutex(State(loaded: Loaded(store: store, files: files, generation: 1), checkedAt: .now))
    }

    /// The last reload's failure, if the directory stopped loading.
    public var lastReloadError: String? { state.withLock { $0.lastReloadError } }

    /// The current store, read again first when its files changed.
    func current() -> Loaded {
        let now = ContinuousClock.now
        let due = state.withLock { s -> Loaded? in
            if now - s.checkedAt < recheckInterval { return s.loaded }
            s.checkedAt = now
            return nil
        }
        if let due { return due }
        let files = Self.scan(directory)
        return state.withLock { s -> Loaded in
            guard files != s.loaded.files else { return s.loaded }
            do throws(TrustStoreError) {
                let store = try Self.load(directory, files)
                s.loaded = Loaded(store: store, files: files, generation: s.loaded.generation + 1)
                s.lastReloadError = nil
            } catch {
                s.lastReloadError = error.reason
            }
            return s.loaded
        }
    }

    static func scan(_ directory: String) -> [String: [Int]] {
        var out: [String: [Int]] = [:]
        guard let dir = opendir(directory) else { return out }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.hasSuffix(".pem") else { continue }
            let path = directory + "/" + name
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            out[path] = [Int(st.st_mtim.tv_sec), Int(st.st_mtim.tv_nsec), Int(st.st_size)]
        }
        return out
    }

    static func load(_ directory: String, _ files: [String: [Int]]) throws(TrustStoreError) -> X509StoreHandle {
        let store = X509StoreHandle()
        var authorities = 0
        for path in files.keys.sorted() {
            guard let bytes = readFile(path) else { throw TrustStoreError(reason: "cannot read \(path)") }
            let bio = MemoryBIO(bytes)
            guard let infos = PEM_X509_INFO_read_bio(bio.raw, nil, nil, nil) else {
                throw TrustStoreError(reason: "\(path) is not PEM certificates or CRLs: \(openSSLReason())")
            }
            defer { esaylov_x509_info_pop_free(infos) }
            for i in 0..<esaylov_x509_info_num(infos) {
                guard let info = esaylov_x509_info_value(infos, i) else { continue }
                if let cert = esaylov_x509_info_cert(info) {
                    guard X509_STORE_add_cert(store.raw, cert) == 1 else { throw TrustStoreError(reason: "\(path): \(openSSLReason())") }
                    authorities += 1
                }
                if let crl = esaylov_x509_info_crl(info) {
                    guard X509_STORE_add_crl(store.raw, crl) == 1 else { throw TrustStoreError(reason: "\(path): \(openSSLReason())") }
                }
            }
        }
        guard authorities > 0 else { throw TrustStoreError(reason: "\(directory) holds no CA certificate (*.pem)") }
        // Revocation of every certificate of the chain is checked; a CA without a CRL fails it.
        X509_STORE_set_flags(store.raw, UInt(X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL))
        return store
    }
}

/// Owns one `X509_STORE`. OpenSSL locks its lookups, so verifications on several threads share it.
final class X509StoreHandle: @unchecked Sendable {
    let raw: OpaquePointer

    init() {
        guard let s = X509_STORE_new() else { fatalError("out of memory") }
        raw = s
    }

    deinit { X509_STORE_free(raw) }
}

/// A whole file, or nil.
func readFile(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        if n > 0 { out.append(contentsOf: buffer[0..<n]) }
        if n < buffer.count { break }
        if out.count > 64 << 20 { return nil }
    }
    return ferror(f) == 0 ? out : nil
}
