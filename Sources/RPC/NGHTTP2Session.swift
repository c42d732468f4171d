internal import CNghttp2

/// Owns one `nghttp2_session` (server side). Every call happens on the connection's
/// event loop; nghttp2 is not thread-safe.
final class NGHTTP2Session {
    let raw: OpaquePointer

    /// `userData` is handed back to every callback; the owner must outlive the session.
    init(callbacks: OpaquePointer, userData: UnsafeMutableRawPointer, options: OpaquePointer) throws(RPCError) {
        var session: OpaquePointer?
        let rv = nghttp2_session_server_new2(&session, callbacks, userData, options)
        guard rv == 0, let session else {
            throw RPCError(code: .internal, message: "nghttp2_session_server_new2 failed: \(rv)")
        }
        raw = session
    }

    deinit { nghttp2_session_del(raw) }
}

/// nghttp2 callback table and options, built once per process.
final class NGHTTP2Callbacks: @unchecked Sendable {  // immutable after init; nghttp2 copies both into each session
    let callbacks: OpaquePointer
    let options: OpaquePointer

    init(build: (OpaquePointer) -> Void, configure: (OpaquePointer) -> Void) {
        var cbs: OpaquePointer?
        precondition(nghttp2_session_callbacks_new(&cbs) == 0, "out of memory")
        callbacks = cbs!
        build(callbacks)
        var opt: OpaquePointer?
        precondition(nghttp2_option_new(&opt) == 0, "out of memory")
        options = opt!
        configure(options)
    }

    deinit {
        nghttp2_session_callbacks_del(callbacks)
        nghttp2_option_del(options)
    }
}

/// Calls `body` with an `nghttp2_nv` array for `headers`; nghttp2 copies names and values
/// during submit, so the memory only has to outlive the call.
func withHeaderArray<R>(_ headers: [(String, String)], _ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
    var total = 0
    for (n, v) in headers { total += n.utf8.count + v.utf8.count }
    return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(total, 1)) { storage in
        withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: max(headers.count, 1)) { nva in
            var offset = 0
            for (i, (name, value)) in headers.enumerated() {
                let namePtr = storage.baseAddress! + offset
                for b in name.utf8 { storage[offset] = b; offset += 1 }
                let valuePtr = storage.baseAddress! + offset
                for b in value.utf8 { storage[offset] = b; offset += 1 }
                nva[i] = nghttp2_nv(
                    name: namePtr, value: valuePtr, namelen: name.utf8.count, valuelen: value.utf8.count,
                    flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            }
            return body(UnsafePointer(nva.baseAddress!), headers.count)
        }
    }
}
