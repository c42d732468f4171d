"""Wire-level behaviour of the gRPC transport, seen with a raw HTTP/2 client (h2)."""
import gzip
import time
import urllib.parse
import zlib

import grpc
import h2.settings
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import Server, wait_for
from rawh2 import RawH2, grpc_frame

TS = "/grpc.testing.TestService/"


def simple_request(testing, **kw):
    return testing.message("grpc.testing.SimpleRequest")(**kw).SerializeToString()


def health_ok(address):
    with grpc.insecure_channel(address) as ch:
        r = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1)
        return r.status == health_pb2.HealthCheckResponse.SERVING


@pytest.fixture
def raw(interop_server):
    c = RawH2(interop_server.port)
    yield c
    c.close()


def test_settings_advertised(raw):
    raw.pump(0.5)
    assert raw.remote_settings.get(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS) == 100
    assert 16 * 1024 <= raw.remote_settings.get(h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE, 0) <= 64 * 1024


def test_wrong_content_type_is_http_415(raw):
    sid = raw.request(TS + "EmptyCall", grpc_frame(b""), content_type="application/json")
    r = raw.wait(sid)
    assert dict(r.headers)[":status"] == "415"


def test_missing_content_type_is_http_415(raw):
    sid = raw.request(TS + "EmptyCall", grpc_frame(b""), content_type=None)
    assert dict(raw.wait(sid).headers)[":status"] == "415"


def test_get_is_answered_not_reset(raw):
    sid = raw.request("/", method="GET", content_type=None)
    r = raw.wait(sid)
    assert r.reset is None and dict(r.headers)[":status"] == "405"


def test_unknown_method_is_trailers_only(raw):
    sid = raw.request(TS + "NoSuchMethod", grpc_frame(b""))
    r = raw.wait(sid)
    h = dict(r.headers)
    # Trailers-only: one HEADERS block carrying :status, content-type and the status, no DATA.
    assert r.header_blocks == 1 and r.data == b"" and r.ended
    assert h[":status"] == "200" and h["content-type"].startswith("application/grpc")
    assert h["grpc-status"] == "12"
    assert "NoSuchMethod" in urllib.parse.unquote(h["grpc-message"])


def test_unknown_service_is_unimplemented(raw):
    sid = raw.request("/esaylov.v1.Nope/Get", grpc_frame(b""))
    assert raw.wait(sid).status == "12"


def test_normal_response_has_headers_data_trailers(raw, testing):
    sid = raw.request(TS + "UnaryCall", grpc_frame(simple_request(testing, response_size=10)))
    r = raw.wait(sid)
    assert r.header_blocks == 2 and r.trailers is not None
    assert dict(r.trailers)["grpc-status"] == "0"
    assert r.data[:1] == b"\0" and int.from_bytes(r.data[1:5], "big") == len(r.data) - 5


def test_grpc_message_is_percent_encoded(raw, testing):
    status = testing.message("grpc.testing.EchoStatus")(code=3, message="bad 100% ☺\n")
    sid = raw.request(TS + "UnaryCall", grpc_frame(simple_request(testing, response_status=status)))
    r = raw.wait(sid)
    msg = r.all_headers["grpc-message"]
    assert msg == "bad 100%25 %E2%98%BA%0A"
    assert r.status == "3"


def test_binary_metadata_is_base64_on_the_wire(raw, testing):
    sid = raw.request(TS + "EmptyCall", grpc_frame(b""), extra=[("x-grpc-test-echo-trailing-bin", "q6ur")])
    r = raw.wait(sid)
    assert r.all_headers["x-grpc-test-echo-trailing-bin"].rstrip("=") == "q6ur"


def test_bad_base64_binary_metadata_is_invalid_argument(raw):
    sid = raw.request(TS + "EmptyCall", grpc_frame(b""), extra=[("x-thing-bin", "***")])
    r = raw.wait(sid)
    assert r.status == "3" and "x-thing-bin" in urllib.parse.unquote(r.all_headers["grpc-message"])


def test_unsupported_encoding_is_unimplemented_naming_ours(raw):
    sid = raw.request(TS + "EmptyCall", grpc_frame(b""), extra=[("grpc-encoding", "snappy")])
    r = raw.wait(sid)
    assert r.status == "12"
    assert set(r.all_headers["grpc-accept-encoding"].split(",")) == {"identity", "deflate", "gzip"}
    assert "snappy" in urllib.parse.unquote(r.all_headers["grpc-message"])


@pytest.mark.parametrize("encoding", [None, "identity"])
def test_compressed_flag_without_encoding_is_internal(raw, encoding):
    extra = [("grpc-encoding", encoding)] if encoding else []
    sid = raw.request(TS + "EmptyCall", grpc_frame(gzip.compress(b""), compressed=1), extra=extra)
    assert raw.wait(sid).status == "13"


def response_messages(data):
    out, i = [], 0
    while i + 5 <= len(data):
        n = int.from_bytes(data[i + 1:i + 5], "big")
        out.append((data[i], data[i + 5:i + 5 + n]))
        i += 5 + n
    return out


@pytest.mark.parametrize("accept,encoding,decompress", [
    ("gzip", "gzip", gzip.decompress), ("deflate", "deflate", zlib.decompress),
])
def test_server_compressed_unary_flag_byte(raw, testing, accept, encoding, decompress):
    B = testing.message("grpc.testing.BoolValue")
    for want in (True, False):
        body = simple_request(testing, response_size=314159, response_compressed=B(value=want))
        sid = raw.request(TS + "UnaryCall", grpc_frame(body), extra=[("grpc-accept-encoding", accept)])
        r = raw.wait(sid, timeout=10)
        assert r.status == "0"
        assert dict(r.headers)["grpc-encoding"] == encoding
        [(flag, payload)] = response_messages(r.data)
        assert flag == (1 if want else 0)
        raw_msg = decompress(payload) if want else payload
        resp = testing.message("grpc.testing.SimpleResponse").FromString(raw_msg)
        assert len(resp.payload.body) == 314159
        if want:
            assert len(payload) < 2000  # zeros compress


def test_server_compressed_streaming_flag_bytes(raw, testing):
    P = testing.message("grpc.testing.ResponseParameters")
    B = testing.message("grpc.testing.BoolValue")
    body = testing.message("grpc.testing.StreamingOutputCallRequest")(response_parameters=[
        P(size=31415, compressed=B(value=True)), P(size=92653, compressed=B(value=False))]).SerializeToString()
    sid = raw.request(TS + "StreamingOutputCall", grpc_frame(body), extra=[("grpc-accept-encoding", "gzip")])
    r = raw.wait(sid, timeout=10)
    msgs = response_messages(r.data)
    assert [m[0] for m in msgs] == [1, 0]
    sizes = [len(testing.message("grpc.testing.StreamingOutputCallResponse").FromString(
        gzip.decompress(p) if f else p).payload.body) for f, p in msgs]
    assert sizes == [31415, 92653]


def test_zip_bomb_is_refused_cheaply(interop_server, testing):
    # 100 MiB of zeros in about 100 KB: the limit is judged on the decompressed size, and
    # inflating stops there.
    server = interop_server
    c = RawH2(server.port)
    bomb = gzip.compress(b"\0" * (100 << 20), compresslevel=9)
    assert len(bomb) < 200_000
    before = server.rss_kib()
    sid = c.request(TS + "UnaryCall", grpc_frame(bomb, compressed=1), extra=[("grpc-encoding", "gzip")])
    r = c.wait(sid, timeout=10)
    assert r.status == "8"
    assert server.rss_kib() - before < 32 * 1024
    assert health_ok(server.address)
    c.close()


def test_corrupt_compressed_message_is_internal(raw):
    sid = raw.request(TS + "EmptyCall", grpc_frame(b"\x1f\x8bnot gzip at all", compressed=1),
                      extra=[("grpc-encoding", "gzip")])
    assert raw.wait(sid).status == "13"


def test_truncated_message_is_internal(raw):
    sid = raw.request(TS + "EmptyCall", grpc_frame(b"", length=10) + b"abc")
    r = raw.wait(sid)
    assert r.status == "13" and "truncated" in urllib.parse.unquote(r.all_headers["grpc-message"])


def test_no_message_for_unary_is_unimplemented(raw):
    sid = raw.request(TS + "EmptyCall", b"")
    assert raw.wait(sid).status == "12"


def test_two_messages_for_unary_is_unimplemented(raw):
    sid = raw.request(TS + "EmptyCall", grpc_frame(b"") + grpc_frame(b""))
    assert raw.wait(sid).status == "12"


def test_undecodable_message_is_invalid_argument(raw):
    sid = raw.request(TS + "UnaryCall", grpc_frame(b"\xff\xff\xff"))
    r = raw.wait(sid)
    assert r.status == "3" and "SimpleRequest" in urllib.parse.unquote(r.all_headers["grpc-message"])


def test_size_limit_judged_from_prefix(raw, interop_server):
    # Only the prefix is sent, claiming 5 MiB, and the stream stays open: the server must
    # answer from the prefix alone, before any body arrives.
    sid = raw.request(TS + "UnaryCall", grpc_frame(b"", length=5 << 20), end_stream=False)
    r = raw.wait(sid, timeout=3)
    assert r.status == "8"
    assert health_ok(interop_server.address)


def test_size_limit_with_grpcio(channel, testing):
    call = testing.method(channel, TS + "UnaryCall", "unary_unary")
    big = testing.message("grpc.testing.Payload")(body=b"\0" * (4 * 1024 * 1024 + 1))
    with pytest.raises(grpc.RpcError) as e:
        call(testing.message("grpc.testing.SimpleRequest")(payload=big), timeout=10)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_malformed_timeout_is_invalid_argument(raw):
    sid = raw.request(TS + "EmptyCall", grpc_frame(b""), extra=[("grpc-timeout", "soon")])
    assert raw.wait(sid).status == "3"


def test_server_enforces_deadline(raw, testing):
    # A duplex call that never half-closes: only the server's timer can end it.
    sid = raw.request(TS + "FullDuplexCall", b"", end_stream=False, extra=[("grpc-timeout", "200m")])
    start = time.monotonic()
    r = raw.wait(sid, timeout=5)
    assert r.status == "4"
    assert 0.15 < time.monotonic() - start < 3


def test_garbage_preface_closes_connection(interop_server):
    import socket
    s = socket.create_connection(("127.0.0.1", interop_server.port), timeout=3)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\0" * 100)
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    s.close()
    assert health_ok(interop_server.address)


def test_reader_that_reads_nothing_costs_bounded_memory(fresh_interop_server, testing):
    # The client asks for 400 x 256 KiB (100 MiB) and never reads; the server must stop at
    # the flow-control window plus its own buffer instead of queueing everything.
    server = fresh_interop_server
    P = testing.message("grpc.testing.ResponseParameters")
    body = testing.message("grpc.testing.StreamingOutputCallRequest")(
        response_parameters=[P(size=256 * 1024)] * 400).SerializeToString()
    c = RawH2(server.port)
    before = server.rss_kib()
    for _ in range(4):
        c.request(TS + "StreamingOutputCall", grpc_frame(body))
    time.sleep(2.0)  # never pump: the window stays closed
    grown = server.rss_kib() - before
    assert grown < 40 * 1024, f"server grew by {grown} KiB for a client that reads nothing"
    assert health_ok(server.address)
    c.close()
    # After the client goes away, the handlers are cancelled and the server is still fine.
    assert wait_for(lambda: health_ok(server.address))


def test_many_streams_in_parallel(channel, testing):
    call = testing.method(channel, TS + "UnaryCall", "unary_unary")
    futures = [call.future(testing.message("grpc.testing.SimpleRequest")(response_size=i), timeout=10)
               for i in range(300)]
    assert [len(f.result().payload.body) for f in futures] == list(range(300))


def test_many_large_responses_at_once_all_complete(fresh_interop_server, testing):
    # Far more response bytes than the socket buffers hold, on one connection: output must
    # resume each time the socket drains, or calls stall with data still queued.
    ch = grpc.insecure_channel(fresh_interop_server.address, options=[("grpc.max_receive_message_length", 8 << 20)])
    call = testing.method(ch, TS + "UnaryCall", "unary_unary")
    futures = [call.future(testing.message("grpc.testing.SimpleRequest")(response_size=1 << 20), timeout=30)
               for _ in range(64)]
    assert all(len(f.result().payload.body) == 1 << 20 for f in futures)
    stream = testing.method(ch, TS + "StreamingOutputCall", "unary_stream")
    P = testing.message("grpc.testing.ResponseParameters")
    r = testing.message("grpc.testing.StreamingOutputCallRequest")(response_parameters=[P(size=256 * 1024)] * 100)
    assert sum(1 for _ in stream(r, timeout=30)) == 100
    ch.close()
