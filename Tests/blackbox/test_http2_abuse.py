"""RFC 9113 error handling and abuse: every attempt ends with the answer the RFC gives (or a
GOAWAY and a closed socket for floods) while the server stays up and answers health."""
import socket
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import Server
from identity import PKI, tls_context, tls_flags
from frames import *  # noqa: F401,F403


@pytest.fixture(scope="module")
def pki():
    return PKI()


@pytest.fixture(scope="module")
def server(pki):
    s = Server("esaylov-server", "--handshake-timeout-ms", "500", *tls_flags(pki))
    s.pki = pki
    yield s
    s.stop()


@pytest.fixture(params=["h2c", "tls"])
def conn(server, request):
    """Each attempt is made over h2c and over TLS: the same answers, the same bounds."""
    tls = request.param == "tls"
    c = Conn(server.tls_port, tls=tls_context(server.pki)) if tls else Conn(server.port)
    c.read(0.2)
    yield c
    c.close()
    assert_health_within_a_second(server)


def assert_health_within_a_second(server):
    start = time.monotonic()
    with grpc.insecure_channel(server.address) as ch:
        r = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1)
    assert r.status == health_pb2.HealthCheckResponse.SERVING
    assert time.monotonic() - start < 1.0


# --- RFC 9113 error handling -------------------------------------------------------------

def test_bad_preface_closes(server):
    c = Conn(server.port, preface=False)
    c.send(b"PRI * HTTP/1.1\r\n\r\nXX\r\n\r\n" + b"\0" * 32)
    assert c.wait_closed()
    c.close()
    assert_health_within_a_second(server)


def test_data_on_idle_stream_is_protocol_error(conn):
    conn.send(frame(DATA, END_STREAM, 5, b"\0\0\0\0\0"))  # §5.1: idle stream
    assert conn.goaway() == PROTOCOL_ERROR
    assert conn.wait_closed()


def test_data_on_closed_stream_is_stream_closed(conn):
    conn.headers(1, grpc_headers(), end_stream=False)
    conn.send(frame(DATA, END_STREAM, 1, b"\0\0\0\0\0"))
    conn.read(1.0, until=lambda f: f[0] == HEADERS and f[1] & END_STREAM and f[2] == 1)
    conn.send(frame(DATA, END_STREAM, 1, b"\0\0\0\0\0"))  # §5.1: closed stream
    f = conn.read(2.0, until=lambda f: f[0] in (GOAWAY, RST_STREAM))
    code = int.from_bytes(f[3][4:8] if f[0] == GOAWAY else f[3][:4], "big")
    assert code == STREAM_CLOSED


def test_oversized_frame_is_frame_size_error(conn):
    conn.headers(1, grpc_headers(), end_stream=False)
    conn.send(frame(DATA, 0, 1, b"\0" * 20000))  # over the default 16384, §4.2
    assert conn.goaway() == FRAME_SIZE_ERROR


@pytest.mark.parametrize("headers", [
    [(":method", "POST"), (":scheme", "http"), (":authority", "x"), ("content-type", "application/grpc")],  # no :path
    grpc_headers(extra=[(":method", "POST")]),                       # duplicate pseudo-header
    grpc_headers(extra=[("X-Upper", "1")]),                          # uppercase name, §8.2.1
    grpc_headers(extra=[("connection", "keep-alive")]),              # connection-specific, §8.2.2
    grpc_headers()[:2] + [("x-a", "1")] + grpc_headers()[2:],        # pseudo after regular, §8.3
    grpc_headers(extra=[(":unknown", "1")]),                         # undefined pseudo-header
])
def test_malformed_request_headers_are_reset(conn, headers):
    conn.headers(1, headers)
    assert conn.rst(1) == PROTOCOL_ERROR


def test_connection_window_overflow_is_flow_control_error(conn):
    conn.send(frame(WINDOW_UPDATE, 0, 0, (0x7FFFFFFF).to_bytes(4, "big")))  # §6.9.1
    assert conn.goaway() == FLOW_CONTROL_ERROR


def test_zero_window_increment_is_protocol_error(conn):
    conn.send(frame(WINDOW_UPDATE, 0, 0, (0).to_bytes(4, "big")))  # §6.9
    assert conn.goaway() == PROTOCOL_ERROR


@pytest.mark.parametrize("setting,value,code", [
    (0x2, 2, PROTOCOL_ERROR),                 # ENABLE_PUSH must be 0 or 1
    (0x4, 0x80000000, FLOW_CONTROL_ERROR),     # INITIAL_WINDOW_SIZE above 2^31-1
    (0x5, 100, PROTOCOL_ERROR),               # MAX_FRAME_SIZE below 16384
    (0x5, 1 << 24, PROTOCOL_ERROR),           # MAX_FRAME_SIZE above 2^24-1
])
def test_bad_settings_values(conn, setting, value, code):
    conn.send(settings((setting, value)))
    assert conn.goaway() == code


def test_settings_with_bad_length_is_frame_size_error(conn):
    conn.send(frame(SETTINGS, 0, 0, b"\0\0\0"))
    assert conn.goaway() == FRAME_SIZE_ERROR


def test_get_and_post_root_get_http_answers(conn):
    conn.headers(1, [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "x")])
    assert conn.response_headers(1)[":status"] == "405"
    conn.headers(3, [(":method", "POST"), (":scheme", "http"), (":path", "/"), (":authority", "x"),
                     ("content-type", "application/grpc")])
    h = conn.response_headers(3)
    assert h[":status"] == "200" and h["grpc-status"] == "12"


# --- limits and floods ----------------------------------------------------------------------

def test_header_list_over_limit_is_resource_exhausted(conn):
    conn.headers(1, grpc_headers(extra=[("x-big", "a" * 40000)]))
    h = conn.response_headers(1)
    assert h["grpc-status"] == "8"


def test_header_list_far_over_limit_closes(conn):
    big = [("x-big-%d" % i, "a" * 7000) for i in range(30)]  # ~210 KB, 6x the limit
    conn.headers(1, grpc_headers(extra=big))
    assert conn.wait_closed()


def test_continuation_flood_closes(conn):
    block = conn.enc.encode(grpc_headers())
    conn.send(frame(HEADERS, 0, 1, block))
    for _ in range(200):
        conn.send(frame(CONTINUATION, 0, 1, b""))
    assert conn.wait_closed()


def test_rapid_reset_ends_in_goaway(conn):
    # The flood goes out in one write: a client whose writes fail once the server has closed
    # may not be able to read what came before (a TLS client's session breaks on the failed
    # write), and the GOAWAY is what this test reads.
    flood = []
    send, conn.send = conn.send, flood.append
    for i in range(1000):
        sid = 1 + 2 * i
        conn.headers(sid, grpc_headers(), end_stream=False)
        conn.send(frame(RST_STREAM, 0, sid, (8).to_bytes(4, "big")))  # CANCEL
    conn.send = send
    conn.send(b"".join(flood))
    assert conn.goaway(5) == ENHANCE_YOUR_CALM
    assert conn.wait_closed()


def test_made_you_reset_ends_in_goaway(conn):
    # Each stream provokes a reset from us (a malformed header is a stream error), so the
    # client never sends RST_STREAM itself (CVE-2025-8671). Batches of 50 stay under the
    # concurrent-stream limit, as such an attack does.
    sid = 1
    for _ in range(40):
        batch = []
        for _ in range(50):
            conn.headers(sid, grpc_headers(extra=[("X-Upper", "1")]))
            batch.append(sid)
            sid += 2
        if conn.write_failed or conn.closed:
            break
        last = batch[-1]
        if conn.read(2.0, until=lambda f: f[0] == GOAWAY or (f[0] == RST_STREAM and f[2] == last)) is None:
            break
        if any(f[0] == GOAWAY for f in conn.frames):
            break
    goaways = [f for f in conn.frames if f[0] == GOAWAY]
    code = int.from_bytes(goaways[0][3][4:8], "big") if goaways else conn.goaway(5)
    assert code == ENHANCE_YOUR_CALM
    assert conn.wait_closed()


@pytest.mark.parametrize("flood", [
    lambda i: frame(PING, 0, 0, i.to_bytes(8, "big")),
    lambda i: settings((0x3, 100)),
])
def test_control_frame_floods_end_in_goaway(conn, flood):
    conn.send(b"".join(flood(i) for i in range(1000)))
    assert conn.goaway(5) == ENHANCE_YOUR_CALM
    assert conn.wait_closed()


def test_streams_past_the_limit_before_settings_ack_are_refused(server):
    # Until the client acknowledges our SETTINGS, an excess stream is refused on its own.
    c = Conn(server.port)
    c.write_failed = True  # never acknowledge: read() skips the ACK
    for i in range(101):
        c.headers(1 + 2 * i, grpc_headers(), end_stream=False)
    assert c.rst(201) == REFUSED_STREAM
    c.close()
    assert_health_within_a_second(server)


def test_streams_past_the_acknowledged_limit_end_the_connection(conn):
    conn.read(0.3)  # our SETTINGS (100 streams) arrive and are acknowledged
    for i in range(101):
        conn.headers(1 + 2 * i, grpc_headers(), end_stream=False)
    # nghttp2 treats breaking an acknowledged limit as a connection error (RFC 9113
    # §5.1.2 allows a stream error; the connection error is stricter).
    assert conn.goaway() == PROTOCOL_ERROR
    assert conn.wait_closed()


def test_silent_client_is_dropped_after_handshake_timeout(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    start = time.monotonic()
    data = s.recv(4096)  # our SETTINGS
    while data:
        data = s.recv(4096)
    assert time.monotonic() - start < 3
    s.close()
    assert_health_within_a_second(server)


def test_connection_limit():
    s = Server("esaylov-server", "--max-connections", "3")
    try:
        socks = [socket.create_connection(("127.0.0.1", s.port), timeout=3) for _ in range(6)]
        # Each connection either gets the server's preface (served) or is closed: nothing
        # here depends on how fast the server accepts, only on what it answers.
        served = closed = 0
        for k in socks:
            k.settimeout(5)
            got = b""
            try:
                k.sendall(PREFACE + settings())
                while len(got) < 9:
                    d = k.recv(4096)
                    if not d:
                        break
                    got += d
            except (ConnectionResetError, BrokenPipeError):
                pass
            if len(got) >= 9:
                assert got[3] == 0x4, "a served connection starts with the server's SETTINGS"
                served += 1
            else:
                closed += 1
        assert (served, closed) == (3, 3)
        for k in socks:
            k.close()
        time.sleep(0.2)
        assert_health_within_a_second(s)
    finally:
        s.stop()


def test_idle_connection_gets_goaway():
    s = Server("esaylov-server", "--idle-timeout-s", "1")
    try:
        c = Conn(s.port)
        start = time.monotonic()
        assert c.goaway(5) == NO_ERROR
        assert 0.8 < time.monotonic() - start < 4
        assert c.wait_closed()
        c.close()
    finally:
        s.stop()
