"""Raw HTTP/2 frames, for the malformed and abusive input that well-behaved clients cannot send."""
import socket
import ssl
import struct
import time

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0, 1, 2, 3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, ENHANCE_YOUR_CALM = 5, 6, 7, 8, 11


def frame(ftype, flags=0, stream=0, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def settings(*pairs):
    return frame(SETTINGS, payload=b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def grpc_headers(path="/grpc.health.v1.Health/Check", extra=()):
    return [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "x"),
            ("content-type", "application/grpc"), ("te", "trailers"), *extra]


class Conn:
    def __init__(self, port, preface=True, tls=None):
        """`tls`: an ssl.SSLContext to speak TLS (ALPN h2) to the server's TLS port."""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname="localhost")
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.buf = b""
        self.frames = []
        # Every header block the server sends is decoded as it arrives, whichever stream it is
        # for: HPACK's table is shared by the connection, and skipping one block would leave
        # later ones undecodable. The last one decoded (a dict, or the error decoding raised).
        self.last_headers = None
        self._block = b""
        self.closed = False        # the peer closed (EOF or reset)
        self.write_failed = False  # our send failed; what the peer sent may still be readable
        if preface:
            self.send(PREFACE + settings())

    def send(self, data):
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.write_failed = True

    def headers(self, stream, headers, end_stream=True, end_headers=True):
        """HEADERS, split into CONTINUATION frames when the block exceeds 16384 bytes."""
        block = self.enc.encode(headers)
        chunks = [block[i:i + 16384] for i in range(0, len(block), 16384)] or [b""]
        out = []
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            flags = (END_HEADERS if last and end_headers else 0)
            if i == 0:
                out.append(frame(HEADERS, flags | (END_STREAM if end_stream else 0), stream, chunk))
            else:
                out.append(frame(CONTINUATION, flags, stream, chunk))
        self.send(b"".join(out))

    def read(self, timeout=2.0, until=None):
        """Reads frames until `until(frame)` is true, the peer closes, or time runs out."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and not self.closed:
            while len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) < 9 + n:
                    break
                f = (self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF, self.buf[9:9 + n])
                self.buf = self.buf[9 + n:]
                self.frames.append(f)
                if f[0] in (HEADERS, CONTINUATION):
                    self._block = (self._block if f[0] == CONTINUATION else b"") + f[3]
                    if f[1] & END_HEADERS:
                        try:
                            self.last_headers = dict(self.dec.decode(self._block))
                        except hpack.HPACKError as e:
                            self.last_headers = e
                if f[0] == SETTINGS and not f[1] & ACK and not self.write_failed:
                    self.send(frame(SETTINGS, ACK))
                if until and until(f):
                    return f
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, ssl.SSLError):
                self.closed = True
                break
            if not chunk:
                self.closed = True
                break
            self.buf += chunk
        return None

    def goaway(self, timeout=3.0):
        f = self.read(timeout, until=lambda f: f[0] == GOAWAY)
        return int.from_bytes(f[3][4:8], "big") if f else None

    def rst(self, stream, timeout=3.0):
        f = self.read(timeout, until=lambda f: f[0] == RST_STREAM and f[2] == stream)
        return int.from_bytes(f[3][:4], "big") if f else None

    def response_headers(self, stream, timeout=3.0):
        f = self.read(timeout, until=lambda f: f[0] == HEADERS and f[2] == stream)
        if f is not None and not f[1] & END_HEADERS:  # the block goes on in CONTINUATION frames
            f = self.read(timeout, until=lambda f: f[0] == CONTINUATION and f[2] == stream and f[1] & END_HEADERS)
        if f is None:
            return None
        if isinstance(self.last_headers, Exception):
            raise self.last_headers
        return self.last_headers

    def wait_closed(self, timeout=3.0):
        self.read(timeout)
        return self.closed

    def close(self):
        self.sock.close()
