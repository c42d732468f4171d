import Foundation
@testable import RPC
import Signatures
import Testing

/// The TLS layer's course, without sockets: the state machine alone, then a server and a
/// client `TLSSession` handing each other their bytes in memory.
@Suite("TLS state machine")
struct TLSStateMachineTests {
    @Test func theConnectionBecomesActiveOnlyWhenTheHandshakeSelectedH2() {
        var m = TLSStateMachine()
        #expect(m.bytesReceived() == .handshake)
        #expect(m.writeRequested() == .drop)
        #expect(m.handshakeStepped(.wantsMore, applicationProtocol: nil) == .wait)
        #expect(m.handshakeStepped(.done, applicationProtocol: "h2") == .activate)
        #expect(m.state == .established)
        #expect(m.bytesReceived() == .read)
        #expect(m.writeRequested() == .encrypt)
        // A handshake already done is neither abandoned by its timer nor stepped again.
        #expect(m.handshakeAbandoned() == false)
        #expect(m.handshakeStepped(.done, applicationProtocol: "h2") == .wait)
    }

    @Test func aHandshakeWithoutH2OrThatFailsCloses() {
        var m = TLSStateMachine()
        #expect(m.handshakeStepped(.done, applicationProtocol: "http/1.1") == .fail("ALPN did not select h2"))
        #expect(m.state == .closed)
        #expect(m.bytesReceived() == .discard)
        var n = TLSStateMachine()
        let failed = n.handshakeStepped(.failed(TLSError(reason: "no application protocol")), applicationProtocol: nil)
        #expect(failed == .fail("no application protocol"))
        #expect(n.closeRequested() == .none)
    }

    @Test func theHandshakeTimerAndADrainCloseOnlyAHandshakeInProgress() {
        var m = TLSStateMachine()
        let abandoned = m.handshakeAbandoned()
        #expect(abandoned)
        #expect(m.state == .closed)
        #expect(m.handshakeAbandoned() == false)
        var n = TLSStateMachine()
        #expect(n.closeRequested() == .close)
    }

    @Test func readsDeliverUntilThePeerClosesOrARecordIsBad() {
        var m = TLSStateMachine()
        _ = m.handshakeStepped(.done, applicationProtocol: "h2")
        #expect(m.read(.bytes(10)) == .deliver(10))
        #expect(m.read(.wantsMore) == .stop)
        #expect(m.read(.closed) == .closeNotify)
        #expect(m.state == .closing)
        #expect(m.read(.bytes(5)) == .stop)
        #expect(m.writeRequested() == .drop)
        var n = TLSStateMachine()
        _ = n.handshakeStepped(.done, applicationProtocol: "h2")
        let bad = n.read(.failed(TLSError(reason: "bad record mac")))
        #expect(bad == .fail("bad record mac"))
        #expect(n.state == .closed)
    }

    @Test func closingAnEstablishedConnectionSendsCloseNotifyOnce() {
        var m = TLSStateMachine()
        _ = m.handshakeStepped(.done, applicationProtocol: "h2")
        #expect(m.closeRequested() == .closeNotify)
        #expect(m.closeRequested() == .none)
    }
}

@Suite("TLS sessions in memory")
struct TLSSessionTests {
    /// A CA, a server certificate for localhost and a client certificate with a TIN, as files.
    struct Files {
        let dir: String
        var ca: String { dir + "/ca.pem" }
        var serverCert: String { dir + "/server.pem" }
        var serverKey: String { dir + "/server.key" }
        var clientCert: String { dir + "/client.pem" }
        var clientKey: String { dir + "/client.key" }

        init() throws {
            dir = NSTemporaryDirectory() + "esaylov-tls-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let now = Date().timeIntervalSince1970
            let caKey = try PrivateKey.generate(.p256)
            let caPEM = try DevelopmentPKI.issue(
                subject: .init(commonName: "test CA"), key: caKey, issuer: nil, serial: DevelopmentPKI.randomSerial(), notBefore: now - 60,
                notAfter: now + 3600, authority: true)
            let ca = try SigningIdentity(key: caKey, certificatePEMOrDER: caPEM)
            let serverKey = try PrivateKey.generate(.p256)
            let serverPEM = try DevelopmentPKI.issue(
                subject: .init(commonName: "localhost"), key: serverKey, issuer: ca, serial: DevelopmentPKI.randomSerial(), notBefore: now - 60,
                notAfter: now + 3600, authority: false, tls: .server(names: ["localhost", "127.0.0.1"]))
            let clientKey = try PrivateKey.generate(.p256)
            let clientPEM = try DevelopmentPKI.issue(
                subject: .init(commonName: "mfa-system", tin: "201234567"), key: clientKey, issuer: ca, serial: DevelopmentPKI.randomSerial(),
                notBefore: now - 60, notAfter: now + 3600, authority: false, tls: .client)
            for (bytes, path) in [(caPEM, self.ca), (serverPEM + caPEM, serverCert), (serverKey.pem, self.serverKey), (clientPEM, clientCert),
                                  (clientKey.pem, self.clientKey)] {
                try Data(bytes).write(to: URL(fileURLWithPath: path))
            }
        }
    }

    /// Moves each side's output to the other until neither has any.
    func pump(_ a: TLSSession, _ b: TLSSession) {
        var moved = true
        while moved {
            moved = false
            for (from, to) in [(a, b), (b, a)] where from.pendingOutput > 0 {
                var bytes = [UInt8](repeating: 0, count: from.pendingOutput)
                let n = bytes.withUnsafeMutableBytes { from.takeOutput(into: $0) }
                bytes.withUnsafeBytes { to.receive(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
                moved = true
            }
        }
    }

    func handshake(_ server: TLSSession, _ client: TLSSession) -> (TLSSession.Step, TLSSession.Step) {
        var steps: (TLSSession.Step, TLSSession.Step) = (.wantsMore, .wantsMore)
        for _ in 0..<10 {
            steps.1 = client.handshake()
            pump(server, client)
            steps.0 = server.handshake()
            pump(server, client)
            if steps.0 != .wantsMore, steps.1 != .wantsMore { break }
        }
        return steps
    }

    @Test func aClientOfferingH2HandshakesAndRecordsFlowBothWays() throws {
        let f = try Files()
        let server = try TLSSession(server: TLSServerContext(TLSServerFiles(certificateChain: f.serverCert, privateKey: f.serverKey)))
        let client = try TLSSession(client: TLSClientContext(trustedCA: f.ca), host: "localhost")
        let (s, c) = handshake(server, client)
        #expect(s == .done && c == .done)
        #expect(server.applicationProtocol == "h2" && server.protocolVersion == "TLSv1.3")
        #expect(server.peerCertificate == nil)
        let message = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
        let written = message.withUnsafeBytes { client.write($0) }
        #expect(written)
        pump(server, client)
        var out = [UInt8](repeating: 0, count: 1024)
        let r = out.withUnsafeMutableBytes { server.read(into: $0) }
        #expect(r == .bytes(message.count))
        #expect(Array(out[..<message.count]) == message)
        let after = out.withUnsafeMutableBytes { server.read(into: $0) }
        #expect(after == .wantsMore)
        // close_notify reads as the end.
        client.shutdown()
        pump(server, client)
        let end = out.withUnsafeMutableBytes { server.read(into: $0) }
        #expect(end == .closed)
    }

    @Test func mutualTLSHandsTheVerifiedClientCertificateWithItsTINToTheServer() throws {
        let f = try Files()
        let context = try TLSServerContext(TLSServerFiles(certificateChain: f.serverCert, privateKey: f.serverKey, clientCA: f.ca))
        #expect(context.requiresClientCertificate)
        let server = try TLSSession(server: context)
        let client = try TLSSession(
            client: TLSClientContext(trustedCA: f.ca, certificateChain: f.clientCert, privateKey: f.clientKey), host: "localhost")
        let (s, c) = handshake(server, client)
        #expect(s == .done && c == .done)
        #expect(server.peerCertificate?.subjectTIN == "201234567")
        // Without a certificate the server's handshake fails.
        let bare = try TLSSession(server: context)
        let anonymous = try TLSSession(client: TLSClientContext(trustedCA: f.ca), host: "localhost")
        let (s2, _) = handshake(bare, anonymous)
        guard case .failed(let e) = s2 else {
            Issue.record("a client without a certificate finished the handshake")
            return
        }
        #expect(e.reason.contains("certificate"))
    }

    @Test func aKeyThatIsNotTheCertificatesIsRefusedNamingTheFiles() throws {
        let f = try Files()
        #expect(throws: TLSError.self) { try TLSServerContext(TLSServerFiles(certificateChain: f.serverCert, privateKey: f.clientKey)) }
        do {
            _ = try TLSServerContext(TLSServerFiles(certificateChain: f.serverCert, privateKey: f.clientKey))
        } catch {
            #expect(error.reason.contains("is not the key of"))
        }
    }
}
