"""Resource bounds seen from outside: what one client can make the server hold, measured in
the server's RSS, while every other client is served."""
import gzip
import socket
import struct
import time

import grpc
import h2.config
import h2.connection
import h2.settings
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from attack import attack
from conftest import Server
from identity import PKI, tls_context, tls_flags
from frames import (ACK, CANCEL, DATA, END_STREAM, HEADERS, NO_ERROR, PING, PREFACE, WINDOW_UPDATE, Conn, frame, grpc_headers,
                    settings)

MIB = 1024

_pki = []


def transport_server(transport, *args):
    """A server for `transport` ("h2c" or "tls"); `conn()` opens a raw connection over it."""
    if transport == "tls":
        if not _pki:
            _pki.append(PKI())
        s = Server("esaylov-server", *args, *tls_flags(_pki[0]))
        s.conn = lambda **kw: Conn(s.tls_port, tls=tls_context(_pki[0]), **kw)
    else:
        s = Server("esaylov-server", *args)
        s.conn = lambda **kw: Conn(s.port, **kw)
    return s


TRANSPORTS = pytest.mark.parametrize("transport", ["h2c", "tls"])


def health_within(server, seconds=1.0):
    start = time.monotonic()
    with grpc.insecure_channel(server.address) as ch:
        r = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=seconds)
    assert r.status == health_pb2.HealthCheckResponse.SERVING
    return time.monotonic() - start


@pytest.fixture
def server():
    s = Server("esaylov-server")
    health_within(s, 5)
    yield s
    s.stop()


def settle(server, baseline, slack_kib, seconds=5.0):
    """Waits until RSS is within `slack_kib` of `baseline`; returns the last reading."""
    end = time.monotonic() + seconds
    while True:
        rss = server.rss_kib()
        if rss - baseline <= slack_kib or time.monotonic() > end:
            return rss
        time.sleep(0.2)


@pytest.mark.parametrize("connections,budget_mib", [(1, 32), (50, 300)])
def test_stalled_uploads_are_bounded(server, connections, budget_mib):
    """100 streams a connection, each announcing 4 MiB and sending all but its last byte."""
    baseline = server.rss_kib()
    attackers = attack(server.port, connections=connections, streams=100, seconds=6.0, stall=0.5)
    peak = server.rss_kib()
    sent = sum(a.sent for a in attackers)
    assert health_within(server) < 1.0
    for a in attackers:
        a.close()
    grown = (peak - baseline) / MIB
    assert grown <= budget_mib, f"RSS grew {grown:.0f} MiB for {sent / 2**20:.0f} MiB sent on {connections} connection(s)"
    after = settle(server, baseline, 96 * MIB)
    assert (after - baseline) / MIB <= 96, f"RSS stayed {(after - baseline) / MIB:.0f} MiB above where it was"
    assert health_within(server) < 1.0


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def served_and_still_open(sock, conn, sid):
    """Reads what the server sent: True when it answered the stream with response headers (it
    handled messages; their bodies wait behind the closed window) and neither ended nor reset it."""
    import h2.events
    headers, ended = False, False
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        sock.settimeout(0.1)
        try:
            data = sock.recv(1 << 20)
        except socket.timeout:
            continue
        if not data:
            break
        for e in conn.receive_data(data):
            if isinstance(e, h2.events.ResponseReceived) and e.stream_id == sid:
                headers = True
            if isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)) and e.stream_id == sid:
                ended = True
    return headers and not ended


def test_compressed_stream_inflates_only_as_fast_as_it_is_read(server):
    """One reflection stream, gzip: ~4 KB on the wire per message, each inflating to almost
    4 MiB (an unknown field the decoder must carry), 200 of them, and the client never reads
    a response. The server decompresses only what its handler's queue has room for, at the
    connection's decompression rate."""
    filler = b"\0" * ((4 << 20) - 64)
    message = b"\xa2\x06" + varint(len(filler)) + filler  # field 100, bytes: unknown to the message
    bomb = gzip.compress(message)
    assert len(bomb) < 8192
    baseline = server.rss_kib()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})  # read nothing
    sock.sendall(conn.data_to_send())
    # The server's SETTINGS and connection window first: they say what may be sent.
    end = time.monotonic() + 2
    while time.monotonic() < end and conn.outbound_flow_control_window <= 65535:
        sock.settimeout(0.2)
        try:
            conn.receive_data(sock.recv(65536))
        except socket.timeout:
            pass
    sock.sendall(conn.data_to_send())
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"),
                            (":path", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"),
                            (":authority", "x"), ("content-type", "application/grpc"), ("te", "trailers"),
                            ("grpc-encoding", "gzip")])
    sent = 0
    for _ in range(200):
        framed = struct.pack(">BI", 1, len(bomb)) + bomb
        if conn.local_flow_control_window(sid) < len(framed):
            break
        conn.send_data(sid, framed)
        sent += 1
    sock.sendall(conn.data_to_send())
    peak = 0
    for _ in range(10):  # the handler works through the stream: sample it, and health, meanwhile
        time.sleep(0.2)
        peak = max(peak, server.rss_kib())
        assert health_within(server) < 1.0
    served = served_and_still_open(sock, conn, sid)
    sock.close()
    grown = (peak - baseline) / MIB
    assert sent >= 100
    assert grown <= 32, f"RSS grew {grown:.0f} MiB for {sent} compressed messages"
    # The stream was served, not refused: answers wait behind the window the client keeps shut.
    assert served
    settle(server, baseline, 96 * MIB)


@pytest.fixture(params=["h2c", "tls"])
def quick(request):
    s = transport_server(request.param, "--receive-timeout-ms", "500", "--finish-linger-ms", "500")
    yield s
    s.stop()


def test_a_request_that_never_arrives_ends_at_the_receive_timeout(quick):
    c = quick.conn()
    c.headers(1, grpc_headers(), end_stream=False)
    c.send(frame(DATA, 0, 1, b"\0\0\0\0\x05\x08"))  # a prefix for 5 bytes, then 1 of them
    start = time.monotonic()
    h = c.response_headers(1, timeout=3)
    assert h is not None and h.get("grpc-status") == "4", h
    assert 0.4 <= time.monotonic() - start < 2.5
    # The response is complete while the client still sends: RST_STREAM(NO_ERROR), RFC 9113 §8.1.
    assert c.rst(1) == NO_ERROR
    c.close()
    assert health_within(quick) < 1.0


def test_an_early_refusal_tells_the_client_to_stop_sending(quick):
    c = quick.conn()
    c.headers(1, grpc_headers("/esaylov.v1.Nothing/Nothing"), end_stream=False)
    h = c.response_headers(1)
    assert h.get("grpc-status") == "12"
    assert c.rst(1) == NO_ERROR
    c.close()


def test_a_response_the_client_never_reads_does_not_hold_the_stream(quick):
    """The client's window is 0: the status can never leave behind the response message."""
    c = quick.conn(preface=False)
    c.send(PREFACE + settings((0x4, 0)))  # SETTINGS_INITIAL_WINDOW_SIZE = 0
    c.read(0.2)
    c.headers(1, grpc_headers("/grpc.health.v1.Health/Check"), end_stream=False)
    c.send(frame(DATA, END_STREAM, 1, b"\0\0\0\0\0"))
    assert c.rst(1, timeout=3) == CANCEL
    c.close()
    assert health_within(quick) < 1.0


def test_requests_that_are_not_grpc_get_a_small_body_within_flow_control(server):
    c = Conn(server.port, preface=False)
    c.send(PREFACE + settings((0x4, 0)))
    c.read(0.2)
    c.headers(1, [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "x")], end_stream=True)
    h = c.response_headers(1)
    assert h[":status"] == "405" and h["content-type"].startswith("text/plain")
    length = int(h["content-length"])
    assert c.read(0.5, until=lambda f: f[0] == DATA and f[2] == 1) is None  # the window is closed
    c.send(frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 1 << 16)))
    f = c.read(2.0, until=lambda f: f[0] == DATA and f[2] == 1)
    assert f is not None and f[1] & END_STREAM and len(f[3]) == length and b"gRPC endpoint" in f[3]
    c.close()


def test_reflection_refuses_long_names(server):
    """The answer echoes the request: a 4 MiB host would cost 4 MiB again for each message."""
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
    with grpc.insecure_channel(server.address) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(host="h" * 1025)]), timeout=5))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "host" in e.value.details()
        ok = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(host="h" * 1024, list_services="")]), timeout=5))
        assert ok[0].list_services_response.service


@TRANSPORTS
def test_connections_per_address_are_limited_and_refusals_logged_once(transport):
    s = transport_server(transport, "--max-connections-per-peer", "4")
    try:
        held = [s.conn() for _ in range(4)]
        for c in held:
            c.read(0.1)
        refused = []
        for _ in range(3):
            try:
                c = s.conn()
            except (ConnectionResetError, OSError):
                continue    # refused before the TLS handshake could finish
            assert c.wait_closed(2.0), "a connection beyond the address's limit was kept"
            refused.append(c)
        for c in refused + held[:1]:
            c.close()
        time.sleep(0.2)
        assert health_within(s) < 1.0  # room again once one closed
        for c in held[1:]:
            c.close()
    finally:
        s.stop()
    assert s.stderr.count("refusing connections") == 1, s.stderr


WATCH = "/grpc.health.v1.Health/Watch"


@TRANSPORTS
def test_watch_streams_are_limited_per_connection(transport):
    s = transport_server(transport, "--max-watches-per-connection", "2")
    try:
        c = s.conn()
        for sid in (1, 3, 5):
            c.headers(sid, grpc_headers(WATCH), end_stream=False)
            c.send(frame(DATA, END_STREAM, sid, b"\0\0\0\0\0"))
        h = c.response_headers(5)
        assert h.get("grpc-status") == "8", h
        c.close()
        # Closed watches make room again.
        time.sleep(0.2)
        c = s.conn()
        c.headers(1, grpc_headers(WATCH), end_stream=False)
        c.send(frame(DATA, END_STREAM, 1, b"\0\0\0\0\0"))
        h = c.response_headers(1)
        assert h.get(":status") == "200" and "grpc-status" not in h
        c.close()
    finally:
        s.stop()


@TRANSPORTS
def test_a_peer_that_does_not_answer_ping_is_dropped(transport):
    s = transport_server(transport, "--keepalive-ms", "300", "--keepalive-timeout-ms", "300")
    try:
        c = s.conn()  # answers SETTINGS, never PING
        c.headers(1, grpc_headers(WATCH), end_stream=False)
        c.send(frame(DATA, END_STREAM, 1, b"\0\0\0\0\0"))
        start = time.monotonic()
        assert c.read(2.0, until=lambda f: f[0] == PING and not f[1] & ACK) is not None
        assert c.wait_closed(3.0)
        assert time.monotonic() - start < 3.0
        c.close()
        # A client that answers (grpcio does) keeps its watch.
        with grpc.insecure_channel(s.address) as ch:
            stream = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(), timeout=10)
            assert next(stream).status == health_pb2.HealthCheckResponse.SERVING
            time.sleep(1.5)
            assert stream.is_active()
            stream.cancel()
    finally:
        s.stop()


def test_responses_nobody_reads_are_bounded_per_connection(testing):
    """Unary calls with 1 MiB answers, and a client that reads none of them: past the
    connection's output budget further calls wait, what is queued stays bounded, and the
    connection is closed when nothing drains."""
    s = Server("esaylov-interop-server", "--finish-linger-ms", "1000")
    try:
        baseline = s.rss_kib()
        request = testing.message("grpc.testing.SimpleRequest")(response_size=1 << 20).SerializeToString()
        c = Conn(s.port, preface=False)
        c.send(PREFACE + settings((0x4, 0)))  # no window for any response
        c.read(0.2)
        for sid in range(1, 121, 2):
            c.headers(sid, grpc_headers("/grpc.testing.TestService/UnaryCall"), end_stream=False)
            c.send(frame(DATA, END_STREAM, sid, struct.pack(">BI", 0, len(request)) + request))
        c.read(0.5)
        grown = (s.rss_kib() - baseline) / MIB
        assert grown <= 32, f"RSS grew {grown:.0f} MiB with 60 unread 1 MiB answers"
        assert health_within(s) < 1.0
        start = time.monotonic()
        assert c.wait_closed(5.0)
        assert time.monotonic() - start < 4.0
        c.close()
    finally:
        s.stop()
