import CNghttp2
import Glibc
import NIOCore

/// A blocking HTTP/2 client on nghttp2, for in-process tests of the server. Each instance is
/// used from one thread only; run it off the cooperative pool (see `onThread`).
final class H2TestClient {
    struct Response {
        var headers: [(String, String)] = []
        var trailers: [(String, String)] = []
        var data: [UInt8] = []
        var closed = false
        var resetCode: UInt32 = 0

        var grpcStatus: String? {
            (trailers.isEmpty ? headers : trailers).first { $0.0 == "grpc-status" }?.1
        }

        /// `grpc-message` as sent (percent-encoded).
        var grpcMessage: String? {
            (trailers.isEmpty ? headers : trailers).first { $0.0 == "grpc-message" }?.1
        }

        /// A trailer (or, for a trailers-only response, a header) by name.
        func trailer(_ name: String) -> String? {
            (trailers.isEmpty ? headers : trailers).first { $0.0 == name }?.1
        }

        func header(_ name: String) -> String? { headers.first { $0.0 == name }?.1 }

        /// The gRPC messages in the body.
        var messages: [[UInt8]] {
            var out: [[UInt8]] = []
            var i = 0
            while i + 5 <= data.count {
                let n = Int(data[i + 1]) << 24 | Int(data[i + 2]) << 16 | Int(data[i + 3]) << 8 | Int(data[i + 4])
                guard i + 5 + n <= data.count else { break }
                out.append(Array(data[(i + 5)..<(i + 5 + n)]))
                i += 5 + n
            }
            return out
        }
    }

    private let fd: Int32
    private var session: OpaquePointer!
    private var responses: [Int32: Response] = [:]
    private var bodies: [Int32: [UInt8]] = [:]

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rv = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rv == 0 else {
            close(fd)
            throw RPCTestError("connect failed: errno \(errno)")
        }
        var cbs: OpaquePointer?
        nghttp2_session_callbacks_new(&cbs)
        defer { nghttp2_session_callbacks_del(cbs) }
        nghttp2_session_callbacks_set_on_header_callback(cbs) { _, frame, name, namelen, value, valuelen, _, user in
            let me = Unmanaged<H2TestClient>.fromOpaque(user!).takeUnretainedValue()
            let id = frame!.pointee.hd.stream_id
            let pair = (
                String(decoding: UnsafeRawBufferPointer(start: name, count: namelen), as: UTF8.self),
                String(decoding: UnsafeRawBufferPointer(start: value, count: valuelen), as: UTF8.self)
            )
            if frame!.pointee.headers.cat == NGHTTP2_HCAT_HEADERS {
                me.responses[id, default: Response()].trailers.append(pair)
            } else {
                me.responses[id, default: Response()].headers.append(pair)
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs) { _, _, id, data, len, user in
            let me = Unmanaged<H2TestClient>.fromOpaque(user!).takeUnretainedValue()
            me.responses[id, default: Response()].data += UnsafeBufferPointer(start: data, count: len)
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs) { _, id, code, user in
            let me = Unmanaged<H2TestClient>.fromOpaque(user!).takeUnretainedValue()
            me.responses[id, default: Response()].closed = true
            me.responses[id, default: Response()].resetCode = code
            return 0
        }
        nghttp2_session_client_new(&session, cbs, Unmanaged.passUnretained(self).toOpaque())
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil, 0)
    }

    deinit {
        nghttp2_session_del(session)
        close(fd)
    }

    /// Starts a gRPC call; `messages` are framed and sent, then the stream half-closes
    /// unless `halfClose` is false.
    func start(path: String, messages: [[UInt8]], headers extra: [(String, String)] = [], halfClose: Bool = true) -> Int32 {
        var body: [UInt8] = []
        for m in messages {
            body += [0] + withUnsafeBytes(of: UInt32(m.count).bigEndian, Array.init) + m
        }
        let headers = [
            (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
            ("content-type", "application/grpc"), ("te", "trailers"),
        ] + extra
        let id: Int32 = withNV(headers) { nva, n in
            if body.isEmpty && halfClose {
                return nghttp2_submit_request(session, nil, nva, n, nil, nil)
            }
            if body.isEmpty {
                return nghttp2_submit_headers(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), -1, nil, nva, n, nil)
            }
            var provider = nghttp2_data_provider(
                source: nghttp2_data_source(ptr: halfClose ? nil : UnsafeMutableRawPointer(bitPattern: 1)),
                read_callback: { _, id, buf, length, flags, source, user in
                    let me = Unmanaged<H2TestClient>.fromOpaque(user!).takeUnretainedValue()
                    var body = me.bodies[id] ?? []
                    let n = min(length, body.count)
                    body.withUnsafeBytes { buf!.update(from: $0.bindMemory(to: UInt8.self).baseAddress!, count: n) }
                    body.removeFirst(n)
                    me.bodies[id] = body
                    if body.isEmpty {
                        flags!.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
                        if source!.pointee.ptr != nil { flags!.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue }
                    }
                    return n
                })
            return nghttp2_submit_request(session, nil, nva, n, &provider, nil)
        }
        bodies[id] = body
        responses[id] = Response()
        return id
    }

    /// Cancels a call the way a client does: RST_STREAM(CANCEL).
    func cancel(_ id: Int32) {
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, NGHTTP2_CANCEL.rawValue)
        pump(for: .milliseconds(10))
    }

    /// Runs the connection until the stream closes or `timeout` passes.
    func wait(_ id: Int32, timeout: Duration = .seconds(5)) -> Response {
        let end = ContinuousClock.now + timeout
        while responses[id]?.closed != true, ContinuousClock.now < end {
            pump(for: .milliseconds(20))
        }
        return responses[id] ?? Response()
    }

    func response(_ id: Int32) -> Response { responses[id] ?? Response() }

    /// Sends what is pending and reads for up to `duration`.
    func pump(for duration: Duration) {
        var out: UnsafePointer<UInt8>?
        while true {
            let n = nghttp2_session_mem_send(session, &out)
            if n <= 0 { break }
            _ = send(fd, out, n, Int32(MSG_NOSIGNAL))
        }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ms = Int32(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
        guard poll(&pfd, 1, ms) > 0 else { return }
        var buf = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &buf, buf.count, 0)
        if n > 0 { _ = nghttp2_session_mem_recv(session, buf, n) }
        while true {
            let n = nghttp2_session_mem_send(session, &out)
            if n <= 0 { break }
            _ = send(fd, out, n, Int32(MSG_NOSIGNAL))
        }
    }

    private func withNV<R>(_ headers: [(String, String)], _ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
        let storage = headers.map { (Array($0.0.utf8), Array($0.1.utf8)) }
        var pointers: [(UnsafeMutablePointer<UInt8>, UnsafeMutablePointer<UInt8>)] = []
        defer { for (a, b) in pointers { a.deallocate(); b.deallocate() } }
        var nva: [nghttp2_nv] = []
        for (n, v) in storage {
            let np = UnsafeMutablePointer<UInt8>.allocate(capacity: max(n.count, 1))
            let vp = UnsafeMutablePointer<UInt8>.allocate(capacity: max(v.count, 1))
            np.initialize(from: n, count: n.count)
            vp.initialize(from: v, count: v.count)
            pointers.append((np, vp))
            nva.append(nghttp2_nv(name: np, value: vp, namelen: n.count, valuelen: v.count, flags: 0))
        }
        return nva.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
    }
}

struct RPCTestError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Runs blocking client code on its own thread, so it never starves the server's tasks.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let box = Unmanaged.passRetained(ThreadBody {
            continuation.resume(with: Result { try body() })
        })
        var thread = pthread_t()
        let rv = pthread_create(&thread, nil, { arg in
            let b = Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue()
            b.run()
            return nil
        }, box.toOpaque())
        if rv != 0 {
            box.release()
            continuation.resume(throwing: RPCTestError("pthread_create failed"))
        } else {
            pthread_detach(thread)
        }
    }
}

private final class ThreadBody: @unchecked Sendable {  // handed to exactly one thread
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}
