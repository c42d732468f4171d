import Signatures

/// The life of a TLS connection under the HTTP/2 handler: the handshake (bounded in time and
/// in number), then records both ways, then close. The HTTP/2 connection above it only
/// becomes active once the handshake has finished with ALPN `h2`. Events return what to do;
/// `TLSHandler` does it.
struct TLSStateMachine {
    enum State: Equatable {
        case handshaking
        case established
        /// close_notify queued (ours or in answer to the peer's); the channel closes.
        case closing
        case closed
    }

    private(set) var state = State.handshaking

    enum HandshakeAction: Equatable {
        /// More bytes are needed.
        case wait
        /// The handshake is done: the HTTP/2 connection starts, with the bytes already read.
        case activate
        /// Send what OpenSSL queued (its alert) and close.
        case fail(String)
    }

    /// After a handshake step on the bytes received.
    mutating func handshakeStepped(_ step: TLSSession.Step, applicationProtocol: String?) -> HandshakeAction {
        guard state == .handshaking else { return .wait }
        switch step {
        case .wantsMore:
            return .wait
        case .failed(let error):
            state = .closed
            return .fail(error.reason)
        case .done:
            // The ALPN callback refuses every other protocol; this guards a context made without it.
            guard applicationProtocol == "h2" else {
                state = .closed
                return .fail("ALPN did not select h2")
            }
            state = .established
            return .activate
        }
    }

    enum ReceiveAction: Equatable {
        case handshake
        case read
        case discard
    }

    /// Bytes arrived from the peer.
    func bytesReceived() -> ReceiveAction {
        switch state {
        case .handshaking: return .handshake
        case .established: return .read
        case .closing, .closed: return .discard
        }
    }

    enum ReadAction: Equatable {
        /// Hand the plaintext up and read on.
        case deliver(Int)
        /// Nothing more in what arrived.
        case stop
        /// The peer closed (close_notify): answer it and close.
        case closeNotify
        /// A record did not decrypt or verify: close.
        case fail(String)
    }

    mutating func read(_ result: TLSSession.ReadResult) -> ReadAction {
        switch (state, result) {
        case (.established, .bytes(let n)): return .deliver(n)
        case (_, .bytes), (_, .wantsMore): return .stop
        case (.established, .closed):
            state = .closing
            return .closeNotify
        case (_, .closed): return .stop
        case (.established, .failed(let e)):
            state = .closed
            return .fail(e.reason)
        case (_, .failed): return .stop
        }
    }

    enum WriteAction: Equatable {
        case encrypt
        /// Nothing is written before the handshake or after close.
        case drop
    }

    func writeRequested() -> WriteAction {
        state == .established ? .encrypt : .drop
    }

    enum CloseAction: Equatable {
        /// Queue close_notify, send it, close the channel.
        case closeNotify
        /// Close the channel now (nothing was established to close politely).
        case close
        case none
    }

    /// The layer above closes the connection.
    mutating func closeRequested() -> CloseAction {
        switch state {
        case .established:
            state = .closing
            return .closeNotify
        case .handshaking:
            state = .closed
            return .close
        case .closing, .closed:
            return .none
        }
    }

    /// The handshake deadline passed, or the server drains: only a handshake in progress closes.
    mutating func handshakeAbandoned() -> Bool {
        guard state == .handshaking else { return false }
        state = .closed
        return true
    }

    mutating func channelClosed() {
        state = .closed
    }
}
