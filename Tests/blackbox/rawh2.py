"""A raw HTTP/2 client on the `h2` library, for what grpcio will not send or show: bad
content types, compressed-flag bytes, truncated bodies, frame-level answers."""
import socket
import struct
import time

import h2.config
import h2.connection
import h2.events
import h2.settings


def grpc_frame(payload: bytes, compressed: int = 0, length=None) -> bytes:
    return struct.pack(">BI", compressed, len(payload) if length is None else length) + payload


class Response:
    def __init__(self):
        self.headers = None      # first HEADERS block
        self.trailers = None     # second HEADERS block
        self.data = b""
        self.ended = False
        self.reset = None        # RST_STREAM error code
        self.header_blocks = 0

    @property
    def status(self):
        block = self.trailers if self.trailers is not None else self.headers
        return dict(block or {}).get("grpc-status")

    @property
    def all_headers(self):
        return dict((self.headers or []) + (self.trailers or []))


class RawH2:
    def __init__(self, port, settings=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.responses = {}
        self.remote_settings = {}
        self.closed = False

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path, body=b"", end_stream=True, content_type="application/grpc",
                method="POST", extra=()):
        sid = self.conn.get_next_available_stream_id()
        headers = [(":method", method), (":scheme", "http"), (":path", path),
                   (":authority", "127.0.0.1"), ("te", "trailers")]
        if content_type is not None:
            headers.append(("content-type", content_type))
        headers += list(extra)
        self.responses[sid] = Response()
        self.conn.send_headers(sid, headers, end_stream=(end_stream and not body))
        self.flush()
        # Body within the peer's flow-control windows, waiting for WINDOW_UPDATE as needed.
        view = memoryview(body)
        deadline = time.monotonic() + 10
        while view:
            window = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if window <= 0:
                if time.monotonic() > deadline or not self.pump(0.1):
                    raise TimeoutError("peer's flow-control window stayed closed")
                continue
            chunk, view = view[:window], view[window:]
            self.conn.send_data(sid, bytes(chunk), end_stream=(end_stream and not view))
            self.flush()
        return sid

    def pump(self, timeout=0.2):
        """Reads whatever arrives within `timeout`; returns False once the peer closed."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return True
        except ConnectionResetError:
            self.closed = True
            return False
        if not data:
            self.closed = True
            return False
        for ev in self.conn.receive_data(data):
            r = self.responses.get(getattr(ev, "stream_id", None))
            if isinstance(ev, h2.events.ResponseReceived):
                r.headers = ev.headers
                r.header_blocks += 1
                if ev.stream_ended is not None:
                    r.ended = True
            elif isinstance(ev, h2.events.TrailersReceived):
                r.trailers = ev.headers
                r.header_blocks += 1
            elif isinstance(ev, h2.events.DataReceived):
                r.data += ev.data
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                r.ended = True
            elif isinstance(ev, h2.events.StreamReset):
                if r is not None:
                    r.reset = ev.error_code
                    r.ended = True
            elif isinstance(ev, h2.events.RemoteSettingsChanged):
                for k, v in ev.changed_settings.items():
                    self.remote_settings[k] = v.new_value
        self.flush()
        return True

    def wait(self, sid, timeout=5.0):
        end = time.monotonic() + timeout
        r = self.responses[sid]
        while not r.ended and time.monotonic() < end:
            if not self.pump():
                break
        return r

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
