internal import COpenSSL

/// Why a TLS context could not be made from its files, or a handshake failed: OpenSSL's
/// reason (it names a check, never key material).
public struct TLSError: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// The files of a TLS server: its certificate chain (PEM, leaf first), its private key (PEM)
/// and, for mutual TLS, the CA certificates (PEM) that client certificates must chain to.
public struct TLSServerFiles: Sendable, Hashable {
    public var certificateChain: String
    public var privateKey: String
    public var clientCA: String?

    public init(certificateChain: String, privateKey: String, clientCA: String? = nil) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
        self.clientCA = clientCA
    }
}

/// Owns one server `SSL_CTX`: TLS 1.2 and 1.3 only, ECDHE with AEAD ciphers only in TLS 1.2
/// (the suites RFC 9113 §9.2.2 allows), no compression, no renegotiation, ALPN `h2` required
/// (a client that offers anything else, or nothing, gets the no_application_protocol alert),
/// and with `clientCA` a client certificate that chains to it required. Not changed once
/// made: sessions on any thread may share it. A reload makes a new one.
public final class TLSServerContext: @unchecked Sendable {
    let raw: OpaquePointer
    /// The leaf certificate served.
    public let certificate: CertificateInfo
    /// Whether clients must present a certificate from the client CA.
    public let requiresClientCertificate: Bool

    /// TLS 1.2 suites: forward secrecy and AEAD only.
    static let tls12Ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
        + "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

    public init(_ files: TLSServerFiles) throws(TLSError) {
        _ = openSSLReason()
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw TLSError(reason: "cannot make a TLS context: \(openSSLReason())") }
        do {
            try Self.configure(ctx, files)
            guard let leaf = SSL_CTX_get0_certificate(ctx) else { throw TLSError(reason: "\(files.certificateChain): no certificate") }
            certificate = try CertificateInfo(X509Handle(retaining: leaf))
        } catch let e as TLSError {
            SSL_CTX_free(ctx)
            throw e
        } catch {
            SSL_CTX_free(ctx)
            throw TLSError(reason: "\(files.certificateChain): \(error)")
        }
        raw = ctx
        requiresClientCertificate = files.clientCA != nil
    }

    private static func configure(_ ctx: OpaquePointer, _ files: TLSServerFiles) throws(TLSError) {
        guard esaylov_ssl_ctx_set_min_proto(ctx, TLS1_2_VERSION) == 1 else { throw TLSError(reason: "cannot set the TLS 1.2 floor: \(openSSLReason())") }
        esaylov_ssl_ctx_set_server_options(ctx)
        guard SSL_CTX_set_cipher_list(ctx, tls12Ciphers) == 1 else { throw TLSError(reason: "cipher list: \(openSSLReason())") }
        // Buffers go back while a connection is idle (most of them are).
        _ = esaylov_ssl_ctx_set_mode(ctx, Int(SSL_MODE_RELEASE_BUFFERS))
        guard SSL_CTX_use_certificate_chain_file(ctx, files.certificateChain) == 1 else {
            throw TLSError(reason: "\(files.certificateChain): \(openSSLReason())")
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, files.privateKey, SSL_FILETYPE_PEM) == 1 else {
            let reason = openSSLReason()
            if reason == "key values mismatch" {
                throw TLSError(reason: "\(files.privateKey) is not the key of \(files.certificateChain)'s certificate")
            }
            throw TLSError(reason: "\(files.privateKey): \(reason)")
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            throw TLSError(reason: "\(files.privateKey) is not the key of \(files.certificateChain)'s certificate")
        }
        esaylov_ssl_ctx_require_h2(ctx)
        if let ca = files.clientCA {
            guard SSL_CTX_load_verify_locations(ctx, ca, nil) == 1, let names = SSL_load_client_CA_file(ca) else {
                throw TLSError(reason: "\(ca): \(openSSLReason())")
            }
            SSL_CTX_set_client_CA_list(ctx, names)
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
            _ = SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT)
            // Resumed sessions keep their verified client (required with SSL_VERIFY_PEER).
            let id = Array("esaylov".utf8)
            _ = SSL_CTX_set_session_id_context(ctx, id, UInt32(id.count))
        }
    }

    deinit { SSL_CTX_free(raw) }
}

/// Owns one client `SSL_CTX` offering `h2`, trusting `trustedCA`, optionally with a client
/// certificate: the server's own tests and benchmarks use it.
public final class TLSClientContext: @unchecked Sendable {
    let raw: OpaquePointer

    public init(trustedCA: String, certificateChain: String? = nil, privateKey: String? = nil) throws(TLSError) {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw TLSError(reason: "cannot make a TLS context: \(openSSLReason())") }
        raw = ctx
        guard SSL_CTX_load_verify_locations(ctx, trustedCA, nil) == 1 else { throw TLSError(reason: "\(trustedCA): \(openSSLReason())") }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        guard esaylov_ssl_ctx_offer_h2(ctx) == 0 else { throw TLSError(reason: "ALPN: \(openSSLReason())") }
        if let certificateChain, let privateKey {
            guard SSL_CTX_use_certificate_chain_file(ctx, certificateChain) == 1,
                SSL_CTX_use_PrivateKey_file(ctx, privateKey, SSL_FILETYPE_PEM) == 1
            else { throw TLSError(reason: "\(certificateChain): \(openSSLReason())") }
        }
    }

    deinit { SSL_CTX_free(raw) }
}

/// One TLS connection over memory BIOs: the transport feeds it the bytes it read
/// (`receive`) and sends what it produces (`takeOutput`); it never touches a socket. Lives
/// on one thread at a time (an event loop).
public final class TLSSession {
    private let ssl: OpaquePointer
    private let rbio: OpaquePointer
    private let wbio: OpaquePointer
    /// The context is kept alive as long as its session.
    private let context: AnyObject

    public enum Step: Sendable, Equatable {
        case done
        case wantsMore
        case failed(TLSError)
    }

    public enum ReadResult: Sendable, Equatable {
        /// This many plaintext bytes were read.
        case bytes(Int)
        /// Nothing more until more bytes arrive.
        case wantsMore
        /// The peer sent close_notify.
        case closed
        case failed(TLSError)
    }

    /// The server side of a connection.
    public convenience init(server context: TLSServerContext) throws(TLSError) {
        try self.init(ctx: context.raw, owner: context)
        SSL_set_accept_state(ssl)
    }

    /// The client side, checking that the server's certificate names `host`.
    public convenience init(client context: TLSClientContext, host: String) throws(TLSError) {
        try self.init(ctx: context.raw, owner: context)
        _ = SSL_set1_host(ssl, host)
        SSL_set_connect_state(ssl)
    }

    private init(ctx: OpaquePointer, owner: AnyObject) throws(TLSError) {
        guard let ssl = SSL_new(ctx) else { throw TLSError(reason: "cannot make a TLS session: \(openSSLReason())") }
        guard let rbio = BIO_new(BIO_s_mem()), let wbio = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw TLSError(reason: "out of memory")
        }
        _ = esaylov_bio_set_mem_eof_return(rbio, -1)
        _ = esaylov_bio_set_mem_eof_return(wbio, -1)
        SSL_set_bio(ssl, rbio, wbio)
        self.ssl = ssl
        self.rbio = rbio
        self.wbio = wbio
        context = owner
    }

    deinit { SSL_free(ssl) }

    /// Bytes read from the peer.
    public func receive(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        var offset = 0
        while offset < bytes.count {
            let n = BIO_write(rbio, base + offset, Int32(min(bytes.count - offset, Int(Int32.max))))
            if n <= 0 { return }
            offset += Int(n)
        }
    }

    /// Advances the handshake with what was received.
    public func handshake() -> Step {
        let r = SSL_do_handshake(ssl)
        if r == 1 { return .done }
        switch SSL_get_error(ssl, r) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .wantsMore
        default: return .failed(TLSError(reason: openSSLReason()))
        }
    }

    /// Decrypts into `buffer`.
    public func read(into buffer: UnsafeMutableRawBufferPointer) -> ReadResult {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return .wantsMore }
        var n = 0
        if SSL_read_ex(ssl, base, buffer.count, &n) == 1 { return .bytes(n) }
        switch SSL_get_error(ssl, 0) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .wantsMore
        case SSL_ERROR_ZERO_RETURN: return .closed
        default: return .failed(TLSError(reason: openSSLReason()))
        }
    }

    /// Encrypts `bytes` (all of them: the output BIO grows as needed).
    public func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return true }
        var offset = 0
        while offset < bytes.count {
            var n = 0
            guard SSL_write_ex(ssl, base + offset, bytes.count - offset, &n) == 1 else {
                _ = openSSLReason()
                return false
            }
            offset += n
        }
        return true
    }

    /// Bytes waiting to be sent to the peer.
    public var pendingOutput: Int { Int(BIO_ctrl_pending(wbio)) }

    /// Moves up to `buffer.count` bytes of output into `buffer`; returns how many.
    public func takeOutput(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return 0 }
        let n = BIO_read(wbio, base, Int32(min(buffer.count, Int(Int32.max))))
        return n > 0 ? Int(n) : 0
    }

    /// Queues close_notify.
    public func shutdown() {
        _ = SSL_shutdown(ssl)
        _ = openSSLReason()
    }

    /// The protocol ALPN selected ("h2"), if any.
    public var applicationProtocol: String? {
        var p: UnsafePointer<UInt8>?
        var n: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &p, &n)
        guard let p, n > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: p, count: Int(n)), as: UTF8.self)
    }

    /// "TLSv1.3", "TLSv1.2".
    public var protocolVersion: String { String(cString: SSL_get_version(ssl)) }

    public var cipher: String {
        guard let c = SSL_get_current_cipher(ssl), let name = SSL_CIPHER_get_name(c) else { return "" }
        return String(cString: name)
    }

    /// The peer's certificate, verified against the client CA (a server that requires one
    /// finishes no handshake without it).
    public var peerCertificate: CertificateInfo? {
        guard let cert = SSL_get1_peer_certificate(ssl) else { return nil }
        let handle = X509Handle(owning: cert)
        return try? CertificateInfo(handle)
    }
}

extension X509Handle {
    /// Takes over a reference the caller holds.
    convenience init(owning raw: OpaquePointer) {
        self.init(retaining: raw)
        X509_free(raw)
    }
}
