"""Window-respecting attackers for the resource-bound tests: clients that hold what the server
lets them hold (many streams, each a message that never completes), never more than its
flow-control windows allow, so that only the server's own bounds stop them."""
import socket
import struct
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions


class StalledUploads:
    """One connection opening `streams` calls to `path`, each announcing a `announce`-byte
    message and sending up to `announce - 1` of it, never END_STREAM. `run` sends for at most
    `seconds` or until the server has stopped granting window for `stall` seconds."""

    def __init__(self, port, path="/grpc.health.v1.Health/Check", streams=100, announce=4 << 20):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.closed = False
        self._flush()
        self.path, self.streams, self.announce = path, streams, announce
        self.left = {}
        self.sent = 0
        self.resets = 0
        self.ended = 0
        self.payload = b"\0" * 16384

    def _pump(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            return
        except (ConnectionResetError, OSError):
            self.closed = True
            return
        if not data:
            self.closed = True
            return
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.closed = True
            return
        for e in events:
            if isinstance(e, h2.events.StreamReset):
                self.resets += 1
                self.left.pop(e.stream_id, None)
            elif isinstance(e, h2.events.StreamEnded):
                self.ended += 1
                self.left.pop(e.stream_id, None)
            elif isinstance(e, h2.events.ConnectionTerminated):
                self.closed = True
        self._flush()

    def _flush(self):
        out = self.conn.data_to_send()
        if out:
            try:
                self.sock.sendall(out)
            except OSError:
                self.closed = True

    def open_streams(self):
        for _ in range(self.streams):
            sid = self.conn.get_next_available_stream_id()
            self.conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":path", self.path),
                                         (":authority", "x"), ("content-type", "application/grpc"), ("te", "trailers")])
            self.conn.send_data(sid, struct.pack(">BI", 0, self.announce))
            self.left[sid] = self.announce - 1
        self._flush()

    def run(self, seconds=4.0, stall=0.5):
        self.open_streams()
        end = time.monotonic() + seconds
        last_progress = time.monotonic()
        while time.monotonic() < end and not self.closed and self.left:
            progressed = False
            for sid in list(self.left):
                try:
                    window = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size, self.left[sid])
                except (h2.exceptions.StreamClosedError, KeyError):
                    self.left.pop(sid, None)
                    continue
                if window <= 0:
                    continue
                self.conn.send_data(sid, self.payload[:window])
                self.left[sid] -= window
                self.sent += window
                progressed = True
            self._flush()
            if progressed:
                last_progress = time.monotonic()
                self._pump(0.0005)
            else:
                if time.monotonic() - last_progress > stall:
                    break
                self._pump(0.05)
        return self

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def attack(port, connections=1, **kwargs):
    """Runs `connections` attackers in parallel; returns them (still open)."""
    attackers = [StalledUploads(port, **{k: v for k, v in kwargs.items() if k in ("path", "streams", "announce")})
                 for _ in range(connections)]
    run_args = {k: v for k, v in kwargs.items() if k in ("seconds", "stall")}
    threads = [threading.Thread(target=a.run, kwargs=run_args) for a in attackers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return attackers
