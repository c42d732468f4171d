internal import COpenSSL
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Asks an OCSP responder (RFC 6960) whether a certificate is revoked, over HTTP/1.0 POST with
/// a nonce, answers verified against the trust store. Answers are kept per certificate until
/// their nextUpdate or `cacheFor`, whichever is sooner. A responder that does not answer within
/// `timeout`, or answers "unknown", fails the revocation check: a signature is never accepted on
/// a status nobody vouched for. Blocking (a socket): call it off the event loops, as
/// `SignatureVerifier` is called.
public final class OCSPClient: Sendable {
    public let host: String
    public let port: UInt16
    public let path: String
    public let timeout: Duration
    public let cacheFor: Double

    struct Answer {
        let check: SignatureVerification.Check
        let until: Double
    }

    private let cache = Mutex<[String: Answer]>([:])

    /// `url`: "http://host:port/path" (plain HTTP, as OCSP responders serve; the answers are signed).
    public init(url: String, timeout: Duration = .seconds(3), cacheFor: Double = 60) throws(TrustStoreError) {
        guard url.hasPrefix("http://") else { throw TrustStoreError(reason: "the OCSP responder must be an http:// URL") }
        let rest = url.dropFirst("http://".count)
        let hostPort = rest.prefix { $0 != "/" }
        let path = String(rest.dropFirst(hostPort.count))
        let parts = hostPort.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, let host = parts.first, !host.isEmpty else { throw TrustStoreError(reason: "the OCSP responder URL has no host") }
        let port = parts.count == 2 ? UInt16(parts[1]) : 80
        guard let port else { throw TrustStoreError(reason: "the OCSP responder URL has a bad port") }
        self.host = String(host)
        self.port = port
        self.path = path.isEmpty ? "/" : path
        self.timeout = timeout
        self.cacheFor = cacheFor
    }

    /// The revocation status of `leaf` (issued by `issuer`) at `time`.
    func check(leaf: OpaquePointer, issuer: OpaquePointer, store: X509StoreHandle, untrusted: OpaquePointer?, at time: Double) -> SignatureVerification.Check {
        let key = Crypto.hex(Crypto.sha256(derEncoding { i2d_X509(leaf, $0) }))
        if let hit = cache.withLock({ $0[key] }), hit.until > time { return hit.check }
        let (check, until) = query(leaf: leaf, issuer: issuer, store: store, untrusted: untrusted, at: time)
        if until > time {
            cache.withLock { c in
                if c.count > 10_000 { c.removeAll(keepingCapacity: true) }
                c[key] = Answer(check: check, until: until)
            }
        }
        return check
    }

    private func query(
        leaf: OpaquePointer, issuer: OpaquePointer, store: X509StoreHandle, untrusted: OpaquePointer?, at time: Double
    ) -> (SignatureVerification.Check, Double) {
        guard let id = OCSP_cert_to_id(nil, leaf, issuer), let request = OCSP_REQUEST_new() else { return (.failed("OCSP: out of memory"), 0) }
        defer { OCSP_REQUEST_free(request) }
        guard let lookup = OCSP_CERTID_dup(id) else { return (.failed("OCSP: out of memory"), 0) }
        defer { OCSP_CERTID_free(lookup) }
        OCSP_request_add0_id(request, id)
        OCSP_request_add1_nonce(request, nil, -1)
        let body = derEncoding { i2d_OCSP_REQUEST(request, $0) }
        guard let reply = post(body) else { return (.failed("OCSP responder \(host):\(port) did not answer"), 0) }
        let parsed: OpaquePointer? = reply.withUnsafeBufferPointer { buf in
            var p: UnsafePointer<UInt8>? = buf.baseAddress
            return d2i_OCSP_RESPONSE(nil, &p, buf.count)
        }
        guard let response = parsed else { return (.failed("OCSP responder's answer does not parse"), 0) }
        defer { OCSP_RESPONSE_free(response) }
        guard OCSP_response_status(response) == OCSP_RESPONSE_STATUS_SUCCESSFUL, let basic = OCSP_response_get1_basic(response) else {
            return (.failed("OCSP responder refused the request"), 0)
        }
        defer { OCSP_BASICRESP_free(basic) }
        guard OCSP_check_nonce(request, basic) == 1 else { return (.failed("OCSP answer does not carry our nonce"), 0) }
        guard OCSP_basic_verify(basic, untrusted, store.raw, 0) == 1 else {
            return (.failed("OCSP answer's signature does not verify (\(openSSLReason()))"), 0)
        }
        var status: Int32 = -1
        var reason: Int32 = -1
        var revokedAt: UnsafeMutablePointer<ASN1_GENERALIZEDTIME>?
        var thisUpdate: UnsafeMutablePointer<ASN1_GENERALIZEDTIME>?
        var nextUpdate: UnsafeMutablePointer<ASN1_GENERALIZEDTIME>?
        guard OCSP_resp_find_status(basic, lookup, &status, &reason, &revokedAt, &thisUpdate, &nextUpdate) == 1 else {
            return (.failed("OCSP answer says nothing of this certificate"), 0)
        }
        guard OCSP_check_validity(thisUpdate, nextUpdate, 300, -1) == 1 else { return (.failed("OCSP answer is stale"), 0) }
        var until = time + cacheFor
        if let nextUpdate {
            var tm = tm()
            if ASN1_TIME_to_tm(nextUpdate, &tm) == 1 { until = min(until, Double(timegm(&tm))) }
        }
        switch status {
        case V_OCSP_CERTSTATUS_GOOD: return (.passed, until)
        case V_OCSP_CERTSTATUS_REVOKED: return (.failed("certificate revoked (OCSP)"), until)
        default: return (.failed("OCSP responder does not know the certificate"), until)
        }
    }

    /// POSTs `body` and returns the response body, or nil on any failure or timeout.
    private func post(_ body: [UInt8]) -> [UInt8]? {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else { return nil }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let ms = Int(timeout / .milliseconds(1))
        var tv = timeval(tv_sec: ms / 1000, tv_usec: (ms % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else { return nil }
        let head = "POST \(path) HTTP/1.0\r\nHost: \(host)\r\nContent-Type: application/ocsp-request\r\nContent-Length: \(body.count)\r\n\r\n"
        let request = Array(head.utf8) + body
        var sent = 0
        while sent < request.count {
            let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return nil }
            sent += n
        }
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while reply.count < 1 << 20 {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n == 0 { break }
            guard n > 0 else { return nil }
            reply += buffer[0..<n]
        }
        // "HTTP/1.x 200 …" then headers, a blank line, the DER answer.
        guard reply.starts(with: Array("HTTP/1.".utf8)), reply.count > 12, reply[9...11].elementsEqual("200".utf8) else { return nil }
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = (0..<max(0, reply.count - 3)).first(where: { reply[$0..<$0 + 4].elementsEqual(separator) }) else { return nil }
        return Array(reply[(end + 4)...])
    }
}
