internal import CNghttp2
internal import CAllocator
import NIOCore

/// A failed nghttp2 call: the function and nghttp2's own description of the code.
struct NGHTTP2Error: Error, CustomStringConvertible {
    let function: String
    let code: Int

    var description: String { "\(function): \(String(cString: nghttp2_strerror(Int32(code))))" }
}

/// HTTP/2 error codes we send (RFC 9113 §7).
enum HTTP2ErrorCode: UInt32 {
    case noError = 0x0
    case protocolError = 0x1
    case internalError = 0x2
    case cancel = 0x8
    case enhanceYourCalm = 0xB
}

/// A frame nghttp2 finished receiving, in Swift terms.
struct ReceivedFrame {
    enum Kind: Equatable {
        case settings, ping, rstStream, goAway, windowUpdate, priority
        /// A request's HEADERS (not trailers).
        case requestHeaders
        /// Trailers a client sent after its data.
        case trailers
        case data
        case other
    }
    let kind: Kind
    let streamID: Int32
    let endStream: Bool
    let ack: Bool
}

/// What the session reports while it reads bytes and writes frames, to its connection (the one
/// conformer, which the session calls directly). Every method runs on the connection's event
/// loop, inside `receive` or `send`.
protocol NGHTTP2SessionDelegate: AnyObject {
    /// A client opens a stream with HEADERS; false refuses it (the stream is reset).
    func streamOpened(_ id: Int32) -> Bool
    /// One request header field; throwing ends the connection (the peer ignores our limits).
    func header(stream id: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, isTrailer: Bool) throws
    /// Throwing ends the connection.
    func frameReceived(_ frame: ReceivedFrame) throws
    func dataReceived(stream id: Int32, _ bytes: UnsafeRawBufferPointer)
    func streamClosed(_ id: Int32, errorCode: UInt32)
    /// A frame left; throwing ends the connection.
    func frameSent(_ frame: SentFrame) throws
    /// Fills `buffer` with response body bytes of stream `id`.
    func readBody(stream id: Int32, into buffer: UnsafeMutableRawBufferPointer) -> BodyRead
}

/// A frame nghttp2 sent.
struct SentFrame {
    enum Kind: Equatable {
        case reset(errorCode: UInt32)
        case headers, data, other
    }
    let kind: Kind
    let streamID: Int32
    let endStream: Bool
}

/// What a stream's data source gives nghttp2.
enum BodyRead {
    /// `count` bytes; more may follow.
    case bytes(Int)
    /// `count` bytes, then the body ends: with these trailers, or (none) with the DATA frame.
    case lastBytes(Int, trailers: [HeaderField])
    /// Nothing now: nghttp2 waits for `resumeData`.
    case deferred
    /// The stream is gone: nghttp2 resets it.
    case failed
}

/// Owns one server-side `nghttp2_session` and is the only caller of its functions: every
/// return code becomes a thrown `NGHTTP2Error`, every callback an event of the delegate, and
/// no nghttp2 type leaves this file. Used on the connection's event loop only (nghttp2 is
/// not thread-safe).
final class NGHTTP2Session {
    private var raw: OpaquePointer!
    /// The connection: this session's only owner, so it outlives the session. Held unmanaged
    /// and concrete, so that the dozen callbacks of every call reach it without a reference
    /// count or a witness table (both showed in profiles). Set by `attach` before any input.
    private var owner: Unmanaged<HTTP2Connection>!

    /// Runs `body` with the connection, borrowed: no reference count.
    private func withDelegate<R>(_ body: (HTTP2Connection) throws -> R) rethrows -> R {
        try owner._withUnsafeGuaranteedRef(body)
    }
    /// A delegate error thrown inside a callback, rethrown by `receive`.
    private var callbackError: (any Error)?

    /// A session whose callbacks go to the connection `attach` names. (Made before its
    /// connection, which then holds it as a constant: used in place, never retained.)
    init(options: NGHTTP2Options) throws(NGHTTP2Error) {
        var session: OpaquePointer?
        var memory = Self.memory  // nghttp2 keeps a copy
        let rv = nghttp2_session_server_new3(
            &session, NGHTTP2Callbacks.shared.callbacks, Unmanaged.passUnretained(self).toOpaque(), options.raw, &memory)
        guard rv == 0, let session else { throw NGHTTP2Error(function: "nghttp2_session_server_new3", code: Int(rv)) }
        raw = session
    }

    deinit { nghttp2_session_del(raw) }

    /// Names the connection the callbacks go to; before the first bytes are received.
    func attach(_ delegate: HTTP2Connection) {
        owner = .passUnretained(delegate)
    }

    /// nghttp2's allocations: blocks of a page up to 20 KiB (its 16 KiB output buffer, its 4 KiB
    /// stream map) from page slots, where an idle session pays only for the pages it wrote;
    /// the rest from malloc. (An idle connection's budget, 16 KiB, is in the README's benchmark
    /// section; its measured size in docs/deployment.md.)
    private static var memory: nghttp2_mem {
        nghttp2_mem(
            mem_user_data: UnsafeMutableRawPointer(esaylov_page_slots_shared()),
            malloc: esaylov_page_slots_malloc, free: esaylov_page_slots_release,
            calloc: esaylov_page_slots_calloc, realloc: esaylov_page_slots_realloc)
    }

    private func check(_ rv: Int32, _ function: String) throws(NGHTTP2Error) {
        if rv != 0 { throw NGHTTP2Error(function: function, code: Int(rv)) }
    }

    // MARK: input and output

    /// Feeds received bytes; the delegate hears of every frame. Throws on a fatal protocol error
    /// (nghttp2 has then queued the GOAWAY that is due) or when the delegate refused the peer.
    func receive(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress else { return }
        let rv = nghttp2_session_mem_recv(raw, base.assumingMemoryBound(to: UInt8.self), bytes.count)
        if let error = callbackError {
            callbackError = nil
            throw error
        }
        if rv < 0 { throw NGHTTP2Error(function: "nghttp2_session_mem_recv", code: rv) }
    }

    /// Moves what nghttp2 has to send into `buffer`, up to about `limit` bytes; returns how
    /// many bytes were added (0: nothing to send).
    func send(into buffer: inout ByteBuffer, limit: Int) throws(NGHTTP2Error) -> Int {
        let start = buffer.readableBytes
        while buffer.readableBytes - start < limit {
            var data: UnsafePointer<UInt8>?
            let n = nghttp2_session_mem_send(raw, &data)
            if n < 0 { throw NGHTTP2Error(function: "nghttp2_session_mem_send", code: n) }
            if n == 0 { break }
            // Valid only until the next mem_send: copied now.
            buffer.writeBytes(UnsafeRawBufferPointer(start: data, count: n))
        }
        return buffer.readableBytes - start
    }

    /// How many bytes the peer lets us send now on stream `id` (its window and the connection's).
    func sendWindow(stream id: Int32) -> Int {
        Int(min(nghttp2_session_get_stream_remote_window_size(raw, id), nghttp2_session_get_remote_window_size(raw)))
    }

    var wantsRead: Bool { nghttp2_session_want_read(raw) != 0 }
    var wantsWrite: Bool { nghttp2_session_want_write(raw) != 0 }
    var lastProcessedStreamID: Int32 { nghttp2_session_get_last_proc_stream_id(raw) }

    // MARK: submissions

    func submitSettings(maxConcurrentStreams: UInt32, maxHeaderListSize: UInt32, initialWindowSize: UInt32) throws(NGHTTP2Error) {
        let settings = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: maxConcurrentStreams),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: maxHeaderListSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: initialWindowSize),
        ]
        let rv = settings.withUnsafeBufferPointer { nghttp2_submit_settings(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), $0.baseAddress, $0.count) }
        try check(rv, "nghttp2_submit_settings")
    }

    func setConnectionWindow(_ size: Int32) throws(NGHTTP2Error) {
        try check(nghttp2_session_set_local_window_size(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, size), "nghttp2_session_set_local_window_size")
    }

    /// Response HEADERS: with a body that the delegate's `readBody` supplies, or alone with
    /// END_STREAM.
    func submitResponse(stream id: Int32, headers: [HeaderField], hasBody: Bool) throws(NGHTTP2Error) {
        let rv: Int32
        if hasBody {
            var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: readBodyCallback)
            rv = withHeaderArray(headers) { nghttp2_submit_response(raw, id, $0, $1, &provider) }
        } else {
            rv = withHeaderArray(headers) { nghttp2_submit_response(raw, id, $0, $1, nil) }
        }
        try check(rv, "nghttp2_submit_response")
    }

    func submitReset(stream id: Int32, code: HTTP2ErrorCode) throws(NGHTTP2Error) {
        try check(nghttp2_submit_rst_stream(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, code.rawValue), "nghttp2_submit_rst_stream")
    }

    func submitGoAway(lastStreamID: Int32, code: HTTP2ErrorCode) throws(NGHTTP2Error) {
        try check(nghttp2_submit_goaway(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), lastStreamID, code.rawValue, nil, 0), "nghttp2_submit_goaway")
    }

    /// A PING (keepalive): the peer must answer it with an ACK.
    func submitPing() throws(NGHTTP2Error) {
        try check(nghttp2_submit_ping(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil), "nghttp2_submit_ping")
    }

    /// GOAWAY with `code` and no new stream; the session ends once it is sent.
    func terminate(code: HTTP2ErrorCode) throws(NGHTTP2Error) {
        try check(nghttp2_session_terminate_session(raw, code.rawValue), "nghttp2_session_terminate_session")
    }

    /// The stream's body has more to read. nghttp2 answers INVALID_ARGUMENT when the body is
    /// not deferred (it will call `readBody` anyway) or the stream is gone: both mean there is
    /// nothing to resume, not a failure.
    func resumeData(stream id: Int32) throws(NGHTTP2Error) {
        let rv = nghttp2_session_resume_data(raw, id)
        if rv == NGHTTP2_ERR_INVALID_ARGUMENT.rawValue { return }
        try check(rv, "nghttp2_session_resume_data")
    }

    /// Returns `count` bytes of window to the connection.
    func consumeConnection(_ count: Int) throws(NGHTTP2Error) {
        try check(nghttp2_session_consume_connection(raw, count), "nghttp2_session_consume_connection")
    }

    /// Returns `count` bytes of window to stream `id` (nothing for a stream already closed).
    func consumeStream(_ id: Int32, _ count: Int) throws(NGHTTP2Error) {
        try check(nghttp2_session_consume_stream(raw, id, count), "nghttp2_session_consume_stream")
    }

    // MARK: callbacks

    fileprivate func beginHeaders(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        let hd = frame.pointee.hd
        guard hd.type == UInt8(NGHTTP2_HEADERS.rawValue), frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST else { return 0 }
        return withDelegate { $0.streamOpened(hd.stream_id) } ? 0 : Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
    }

    fileprivate func header(_ frame: UnsafePointer<nghttp2_frame>, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Int32 {
        guard frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
        let isTrailer = frame.pointee.headers.cat != NGHTTP2_HCAT_REQUEST
        return callback { try withDelegate { try $0.header(stream: frame.pointee.hd.stream_id, name: name, value: value, isTrailer: isTrailer) } }
    }

    fileprivate func frameReceived(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        let hd = frame.pointee.hd
        let kind: ReceivedFrame.Kind
        switch UInt32(hd.type) {
        case NGHTTP2_SETTINGS.rawValue: kind = .settings
        case NGHTTP2_PING.rawValue: kind = .ping
        case NGHTTP2_RST_STREAM.rawValue: kind = .rstStream
        case NGHTTP2_GOAWAY.rawValue: kind = .goAway
        case NGHTTP2_WINDOW_UPDATE.rawValue: kind = .windowUpdate
        case NGHTTP2_PRIORITY.rawValue: kind = .priority
        case NGHTTP2_DATA.rawValue: kind = .data
        case NGHTTP2_HEADERS.rawValue: kind = frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST ? .requestHeaders : .trailers
        default: kind = .other
        }
        let event = ReceivedFrame(
            kind: kind, streamID: hd.stream_id, endStream: hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0,
            ack: hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0)
        return callback { try withDelegate { try $0.frameReceived(event) } }
    }

    fileprivate func dataChunk(streamID: Int32, _ data: UnsafeRawBufferPointer) -> Int32 {
        withDelegate { $0.dataReceived(stream: streamID, data) }
        return 0
    }

    fileprivate func streamClosed(_ streamID: Int32, errorCode: UInt32) -> Int32 {
        withDelegate { $0.streamClosed(streamID, errorCode: errorCode) }
        return 0
    }

    fileprivate func frameSent(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        let hd = frame.pointee.hd
        let kind: SentFrame.Kind = switch UInt32(hd.type) {
        case NGHTTP2_RST_STREAM.rawValue: .reset(errorCode: frame.pointee.rst_stream.error_code)
        case NGHTTP2_HEADERS.rawValue: .headers
        case NGHTTP2_DATA.rawValue: .data
        default: .other
        }
        let event = SentFrame(kind: kind, streamID: hd.stream_id, endStream: hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0)
        return callback { try withDelegate { try $0.frameSent(event) } }
    }

    fileprivate func readBody(streamID: Int32, into buf: UnsafeMutablePointer<UInt8>, length: Int, flags: UnsafeMutablePointer<UInt32>) -> Int {
        switch withDelegate({ $0.readBody(stream: streamID, into: UnsafeMutableRawBufferPointer(start: buf, count: length)) }) {
        case .bytes(let n): return n
        case .deferred: return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        case .failed: return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        case .lastBytes(let n, let trailers) where trailers.isEmpty:
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            return n
        case .lastBytes(let n, let trailers):
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue | NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
            let rv = withHeaderArray(trailers) { nghttp2_submit_trailer(raw, streamID, $0, $1) }
            return rv == 0 ? n : Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
    }

    /// Runs a delegate call inside a callback: an error ends the session (and is rethrown by
    /// `receive`) instead of crossing into C.
    private func callback(_ body: () throws -> Void) -> Int32 {
        do {
            try body()
            return 0
        } catch {
            callbackError = callbackError ?? error
            return Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
        }
    }
}

/// The callback table, built once per process; nghttp2 copies it into each session.
private final class NGHTTP2Callbacks: @unchecked Sendable {  // immutable after init
    static let shared = NGHTTP2Callbacks()
    let callbacks: OpaquePointer

    private init() {
        var cbs: OpaquePointer?
        precondition(nghttp2_session_callbacks_new(&cbs) == 0, "out of memory")
        callbacks = cbs!
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
            withSession(userData) { $0.beginHeaders(frame!) }
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, namelen, value, valuelen, _, userData in
            withSession(userData) { $0.header(
                frame!, name: UnsafeRawBufferPointer(start: name, count: namelen), value: UnsafeRawBufferPointer(start: value, count: valuelen)) }
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            withSession(userData) { $0.frameReceived(frame!) }
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, streamID, data, len, userData in
            withSession(userData) { $0.dataChunk(streamID: streamID, UnsafeRawBufferPointer(start: data, count: len)) }
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
            withSession(userData) { $0.streamClosed(streamID, errorCode: errorCode) }
        }
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { _, frame, userData in
            withSession(userData) { $0.frameSent(frame!) }
        }
    }

    deinit { nghttp2_session_callbacks_del(callbacks) }
}

/// Session options from the server's configuration, made once per server; nghttp2 copies them
/// into each session.
final class NGHTTP2Options: @unchecked Sendable {  // immutable after init; only read by nghttp2_session_server_new2
    let raw: OpaquePointer

    init(_ configuration: RPCServer.Configuration) {
        var opt: OpaquePointer?
        precondition(nghttp2_option_new(&opt) == 0, "out of memory")
        raw = opt!
        // We return window as the application takes data, so input is bounded per stream.
        nghttp2_option_set_no_auto_window_update(raw, 1)
        nghttp2_option_set_max_deflate_dynamic_table_size(raw, 4096)
        // Floods nghttp2 itself can stop: CONTINUATION runs, RST_STREAM bursts from the client,
        // a peer that sends PING/SETTINGS and never reads the ACKs, oversized SETTINGS frames.
        nghttp2_option_set_max_continuations(raw, configuration.maxContinuations)
        nghttp2_option_set_stream_reset_rate_limit(raw, UInt64(configuration.resetBurst), UInt64(configuration.resetsPerSecond))
        nghttp2_option_set_max_outbound_ack(raw, 1000)
        nghttp2_option_set_max_settings(raw, 32)
        // Closed streams are kept (nghttp2 bounds them by the concurrent-stream limit), so a
        // frame on one gets the STREAM_CLOSED answer RFC 9113 §5.1 requires.
    }

    deinit { nghttp2_option_del(raw) }
}

// C callbacks capture nothing: the session comes back from the user data (unretained: it is
// alive while nghttp2 calls back into it).
private func withSession<R>(_ userData: UnsafeMutableRawPointer?, _ body: (NGHTTP2Session) -> R) -> R {
    Unmanaged<NGHTTP2Session>.fromOpaque(userData!)._withUnsafeGuaranteedRef(body)
}

private let readBodyCallback: nghttp2_data_source_read_callback = { _, streamID, buf, length, flags, _, userData in
    withSession(userData) { $0.readBody(streamID: streamID, into: buf!, length: length, flags: flags!) }
}

/// Calls `body` with an `nghttp2_nv` array for `headers`: a prepared one for the lists most
/// responses send; otherwise one made for the call, whose names and values nghttp2 copies
/// during submit (so that memory only has to outlive the call).
private func withHeaderArray<R>(_ headers: [HeaderField], _ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
    if let prepared = PreparedHeaders.matching(headers) { return body(prepared.array, prepared.count) }
    return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: utf8Length(headers)) { storage in
        withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: max(headers.count, 1)) { nva in
            layOut(headers, in: storage, nva, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            return body(UnsafePointer(nva.baseAddress!), headers.count)
        }
    }
}

/// Room for the names and values of `headers` (at least one byte).
private func utf8Length(_ headers: [HeaderField]) -> Int {
    max(headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count }, 1)
}

/// Copies the names and values of `headers` into `storage` one after the other and points an
/// `nghttp2_nv` at each pair; `storage` has `utf8Length(headers)` bytes, `nva` a slot a field.
private func layOut(
    _ headers: [HeaderField], in storage: UnsafeMutableBufferPointer<UInt8>, _ nva: UnsafeMutableBufferPointer<nghttp2_nv>, flags: UInt8
) {
    var offset = 0
    for (i, field) in headers.enumerated() {
        let name = storage.baseAddress! + offset
        offset += copyUTF8(field.name, to: storage, at: offset)
        let value = storage.baseAddress! + offset
        offset += copyUTF8(field.value, to: storage, at: offset)
        nva[i] = nghttp2_nv(name: name, value: value, namelen: field.name.utf8.count, valuelen: field.value.utf8.count, flags: flags)
    }
}

/// Copies `text`'s UTF-8 into `storage` at `offset` (which has room for it); returns its length.
private func copyUTF8(_ text: String, to storage: UnsafeMutableBufferPointer<UInt8>, at offset: Int) -> Int {
    let utf8 = text.utf8
    let copied = utf8.withContiguousStorageIfAvailable { bytes -> Int in
        if let base = bytes.baseAddress { (storage.baseAddress! + offset).update(from: base, count: bytes.count) }
        return bytes.count
    }
    if let copied { return copied }
    var i = offset
    for b in utf8 { storage[i] = b; i += 1 }
    return i - offset
}

/// A header list laid out for nghttp2 once, names and values in one block beside its
/// `nghttp2_nv` array, marked not to be copied (`NO_COPY`): nghttp2 keeps pointers into it
/// until the frame is gone, so it must outlive every session, and exists only for the few
/// static lists below (the response headers and trailers of most calls).
final class PreparedHeaders: Sendable {
    let fields: [HeaderField]
    let count: Int
    nonisolated(unsafe) let array: UnsafeMutablePointer<nghttp2_nv>
    private nonisolated(unsafe) let bytes: UnsafeMutablePointer<UInt8>

    static let plainGRPCResponse = PreparedHeaders(HeaderField.plainGRPCResponse)
    static let okTrailers = PreparedHeaders(HeaderField.okTrailers)

    /// The prepared list equal to `headers`, if any (told apart by their lengths first).
    static func matching(_ headers: [HeaderField]) -> PreparedHeaders? {
        if headers.count == okTrailers.count, headers == okTrailers.fields { return okTrailers }
        if headers.count == plainGRPCResponse.count, headers == plainGRPCResponse.fields { return plainGRPCResponse }
        return nil
    }

    private init(_ fields: [HeaderField]) {
        self.fields = fields
        count = fields.count
        let length = utf8Length(fields)
        bytes = .allocate(capacity: length)
        array = .allocate(capacity: max(fields.count, 1))
        layOut(
            fields, in: UnsafeMutableBufferPointer(start: bytes, count: length), UnsafeMutableBufferPointer(start: array, count: max(fields.count, 1)),
            flags: UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue | NGHTTP2_NV_FLAG_NO_COPY_VALUE.rawValue))
    }

    deinit {
        array.deallocate()
        bytes.deallocate()
    }
}
