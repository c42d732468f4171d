import ESaylovAPI
import ProtoRuntime
import RPC
import Signatures
import Store

/// Idempotency keys of mutating calls (requests.proto, decisions.proto): scoped to the sender
/// (or the acting commission), kept 8 days, the first response replayed to a retry of the same
/// request, another request with the key refused.
struct IdempotencyKeys: Sendable {
    let database: Database
    let store = RequestStore()

    /// The key of a mutating call: 1 to 64 of A–Z a–z 0–9 _ -; nil when absent and optional.
    static func key(_ key: String, required: Bool) throws(RPCError) -> String? {
        if key.isEmpty {
            if required { throw invalid("idempotency_key", "is required: a client-chosen key (a UUID) so that a retry makes one request") }
            return nil
        }
        let ok = key.utf8.count <= 64 && key.utf8.allSatisfy { ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 || $0 == 45 }
        if !ok { throw invalid("idempotency_key", "must be 1 to 64 characters of A-Z a-z 0-9 _ -") }
        return key
    }

    /// What a key is bound to: the method and the request's encoding.
    static func fingerprint(_ method: String, _ request: some ProtoMessage) -> [UInt8] {
        Crypto.sha256(Array(method.utf8) + [0] + request.serializedBytes())
    }

    static func keyConflict() -> RPCError {
        RPCError(code: .failedPrecondition, message: "idempotency_key was already used by this sender for a different request",
                 details: [.preconditionViolation(type: "IDEMPOTENCY", subject: "idempotency_key", description: "used for another request")])
    }

    /// The first response to a retry, read before any other check (a retry after the window
    /// closed still gets its answer); nil when the key is new or its first call is still running.
    func replayed<R: ProtoMessage>(_ key: String?, _ fingerprint: [UInt8], _ sender: SenderKey, _ context: ServerContext) async throws(RPCError) -> R? {
        guard let key, let found = try await database.read(store.idempotency(sender: sender, key: key), for: context) else { return nil }
        guard found.requestSHA256 == fingerprint else { throw Self.keyConflict() }
        guard let bytes = found.response else { return nil }
        return try Self.decodeStored(bytes)
    }

    static func decodeStored<R: ProtoMessage>(_ bytes: [UInt8]) throws(RPCError) -> R {
        do { return try R(serializedBytes: bytes) } catch { throw RPCError(code: .internal, message: "a stored response does not decode") }
    }

    /// Runs `body` in one transaction with the key: a key seen before replays its response (a
    /// concurrent first call is waited for), a key bound to another request is refused, a new
    /// key records this response. `body` returns its refusals before it writes anything.
    func mutate<R: ProtoMessage>(
        _ key: String?, _ fingerprint: [UInt8], _ sender: SenderKey, _ context: ServerContext,
        _ body: @escaping @Sendable (Connection) throws(StoreError) -> Result<R, RPCError>
    ) async throws(RPCError) -> R {
        let store = self.store
        let method = context.method.path
        let outcome = try await database.transaction(for: context) { (c) throws(StoreError) -> Result<R, RPCError> in
            if let key {
                switch try store.claim(c, sender: sender, key: key, method: method, requestSHA256: fingerprint) {
                case .fresh: break
                case .conflict: return .failure(Self.keyConflict())
                case .replay(let bytes): return Result { () throws(RPCError) in try Self.decodeStored(bytes) }
                }
            }
            let result = try body(c)
            if let key, case .success(let response) = result {
                try store.recordResponse(c, sender: sender, key: key, response: response.serializedBytes())
            }
            // A refusal wrote nothing but the key: it goes too, so that a corrected retry may use it.
            if let key, case .failure = result { try store.releaseKey(c, sender: sender, key: key) }
            return result
        }
        return try outcome.get()
    }
}
