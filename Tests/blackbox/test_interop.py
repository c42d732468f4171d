"""gRPC's interop client cases (shared/design/interop.md) against esaylov-interop-server,
from an independent grpcio client."""
import threading
import time

import grpc
import pytest

from conftest import Server, wait_for

TS = "/grpc.testing.TestService/"


def req(testing, name, **kw):
    return testing.message(name)(**kw)


def payload(testing, size):
    return testing.message("grpc.testing.Payload")(body=b"\0" * size)


def test_empty_unary(channel, testing):
    call = testing.method(channel, TS + "EmptyCall", "unary_unary")
    resp = call(req(testing, "grpc.testing.Empty"), timeout=5)
    assert resp.ByteSize() == 0


def test_large_unary(channel, testing):
    call = testing.method(channel, TS + "UnaryCall", "unary_unary")
    resp = call(req(testing, "grpc.testing.SimpleRequest", response_size=314159,
                    payload=payload(testing, 271828)), timeout=10)
    assert resp.payload.body == b"\0" * 314159
    assert resp.payload.type == 0  # COMPRESSABLE


def test_client_streaming(channel, testing):
    call = testing.method(channel, TS + "StreamingInputCall", "stream_unary")
    sizes = [27182, 8, 1828, 45904]
    msgs = (req(testing, "grpc.testing.StreamingInputCallRequest", payload=payload(testing, s)) for s in sizes)
    assert call(msgs, timeout=10).aggregated_payload_size == 74922


def test_server_streaming(channel, testing):
    call = testing.method(channel, TS + "StreamingOutputCall", "unary_stream")
    sizes = [31415, 9, 2653, 58979]
    P = testing.message("grpc.testing.ResponseParameters")
    r = req(testing, "grpc.testing.StreamingOutputCallRequest", response_parameters=[P(size=s) for s in sizes])
    got = [len(m.payload.body) for m in call(r, timeout=10)]
    assert got == sizes


def test_ping_pong(channel, testing):
    call = testing.method(channel, TS + "FullDuplexCall", "stream_stream")
    P = testing.message("grpc.testing.ResponseParameters")
    pairs = [(31415, 27182), (9, 8), (2653, 1828), (58979, 45904)]
    outbox, ready = [], threading.Semaphore(0)

    def requests():
        for resp_size, req_size in pairs:
            yield req(testing, "grpc.testing.StreamingOutputCallRequest",
                      response_parameters=[P(size=resp_size)], payload=payload(testing, req_size))
            ready.acquire()  # next request only after the response arrived

    responses = call(requests(), timeout=10)
    for resp_size, _ in pairs:
        m = next(responses)
        assert len(m.payload.body) == resp_size
        ready.release()
    with pytest.raises(StopIteration):
        next(responses)
    assert responses.code() == grpc.StatusCode.OK


def test_empty_stream(channel, testing):
    call = testing.method(channel, TS + "FullDuplexCall", "stream_stream")
    responses = call(iter(()), timeout=5)
    assert list(responses) == []
    assert responses.code() == grpc.StatusCode.OK


def test_custom_metadata_unary(channel, testing):
    call = testing.method(channel, TS + "UnaryCall", "unary_unary")
    md = (("x-grpc-test-echo-initial", "test_initial_metadata_value"),
          ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab"))
    resp, c = call.with_call(req(testing, "grpc.testing.SimpleRequest", response_size=314159,
                                  payload=payload(testing, 271828)), metadata=md, timeout=10)
    assert len(resp.payload.body) == 314159
    initial = [kv for kv in c.initial_metadata() if kv[0] == "x-grpc-test-echo-initial"]
    trailing = [kv for kv in c.trailing_metadata() if kv[0] == "x-grpc-test-echo-trailing-bin"]
    assert initial == [("x-grpc-test-echo-initial", "test_initial_metadata_value")]
    assert trailing == [("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")]


def test_custom_metadata_full_duplex(channel, testing):
    call = testing.method(channel, TS + "FullDuplexCall", "stream_stream")
    P = testing.message("grpc.testing.ResponseParameters")
    md = (("x-grpc-test-echo-initial", "test_initial_metadata_value"),
          ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab"))
    r = req(testing, "grpc.testing.StreamingOutputCallRequest", response_parameters=[P(size=314159)],
            payload=payload(testing, 271828))
    responses = call(iter([r]), metadata=md, timeout=10)
    assert [len(m.payload.body) for m in responses] == [314159]
    assert ("x-grpc-test-echo-initial", "test_initial_metadata_value") in responses.initial_metadata()
    trailing = [kv for kv in responses.trailing_metadata() if kv[0] == "x-grpc-test-echo-trailing-bin"]
    assert trailing == [("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")]


def test_status_code_and_message(channel, testing):
    status = testing.message("grpc.testing.EchoStatus")(code=2, message="test status message")
    unary = testing.method(channel, TS + "UnaryCall", "unary_unary")
    with pytest.raises(grpc.RpcError) as e:
        unary(req(testing, "grpc.testing.SimpleRequest", response_status=status), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNKNOWN
    assert e.value.details() == "test status message"

    duplex = testing.method(channel, TS + "FullDuplexCall", "stream_stream")
    responses = duplex(iter([req(testing, "grpc.testing.StreamingOutputCallRequest", response_status=status)]), timeout=5)
    with pytest.raises(grpc.RpcError) as e:
        list(responses)
    assert e.value.code() == grpc.StatusCode.UNKNOWN
    assert e.value.details() == "test status message"


def test_special_status_message(channel, testing):
    text = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
    status = testing.message("grpc.testing.EchoStatus")(code=2, message=text)
    unary = testing.method(channel, TS + "UnaryCall", "unary_unary")
    with pytest.raises(grpc.RpcError) as e:
        unary(req(testing, "grpc.testing.SimpleRequest", response_status=status), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNKNOWN
    assert e.value.details() == text


def test_unimplemented_method(channel, testing):
    call = testing.method(channel, TS + "UnimplementedCall", "unary_unary")
    with pytest.raises(grpc.RpcError) as e:
        call(req(testing, "grpc.testing.Empty"), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_unimplemented_service(channel, testing):
    call = testing.method(channel, "/grpc.testing.UnimplementedService/UnimplementedCall", "unary_unary")
    with pytest.raises(grpc.RpcError) as e:
        call(req(testing, "grpc.testing.Empty"), timeout=5)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "grpc.testing.UnimplementedService" in e.value.details()


def test_cancel_after_begin(fresh_interop_server, testing):
    ch = grpc.insecure_channel(fresh_interop_server.address)
    call = testing.method(ch, TS + "StreamingInputCall", "stream_unary")
    gate = threading.Event()

    def never():
        gate.wait(10)
        return
        yield

    future = call.future(never(), timeout=10)
    time.sleep(0.3)
    future.cancel()
    gate.set()
    assert future.cancelled()
    with pytest.raises(grpc.FutureCancelledError):
        future.result()
    ch.close()
    # The handler saw the cancellation: the server counts the call as CANCELLED.
    out = fresh_interop_server.stop()
    assert "CANCELLED=1" in out, out


def test_cancel_after_first_response(fresh_interop_server, testing):
    ch = grpc.insecure_channel(fresh_interop_server.address)
    call = testing.method(ch, TS + "FullDuplexCall", "stream_stream")
    P = testing.message("grpc.testing.ResponseParameters")
    gate = threading.Event()

    def requests():
        yield req(testing, "grpc.testing.StreamingOutputCallRequest", response_parameters=[P(size=31415)],
                  payload=payload(testing, 27182))
        gate.wait(10)

    responses = call(requests(), timeout=10)
    assert len(next(responses).payload.body) == 31415
    responses.cancel()
    gate.set()
    assert responses.code() == grpc.StatusCode.CANCELLED
    ch.close()
    out = fresh_interop_server.stop()
    assert "CANCELLED=1" in out, out


def test_timeout_on_sleeping_server(channel, testing):
    call = testing.method(channel, TS + "FullDuplexCall", "stream_stream")
    P = testing.message("grpc.testing.ResponseParameters")
    gate = threading.Event()

    def requests():
        yield req(testing, "grpc.testing.StreamingOutputCallRequest", payload=payload(testing, 27182),
                  response_parameters=[P(size=31415, interval_us=200000)])
        gate.wait(5)

    responses = call(requests(), timeout=0.001)
    with pytest.raises(grpc.RpcError) as e:
        list(responses)
    gate.set()
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # and the server keeps serving
    empty = testing.method(channel, TS + "EmptyCall", "unary_unary")
    assert empty(req(testing, "grpc.testing.Empty"), timeout=5).ByteSize() == 0


def test_client_compressed_unary_expect_compressed_on_plain(channel, testing):
    # First half of client_compressed_unary: a plain message that claims to be compressed.
    call = testing.method(channel, TS + "UnaryCall", "unary_unary")
    flag = testing.message("grpc.testing.BoolValue")(value=True)
    with pytest.raises(grpc.RpcError) as e:
        call(req(testing, "grpc.testing.SimpleRequest", expect_compressed=flag, response_size=314159,
                 payload=payload(testing, 271828)), timeout=5)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_client_compressed_unary_gzip_expect_compressed(channel, testing):
    # Second half of client_compressed_unary: a gzip request that says so is accepted.
    call = testing.method(channel, TS + "UnaryCall", "unary_unary")
    flag = testing.message("grpc.testing.BoolValue")(value=True)
    resp = call(req(testing, "grpc.testing.SimpleRequest", expect_compressed=flag, response_size=314159,
                    payload=payload(testing, 271828)), timeout=10, compression=grpc.Compression.Gzip)
    assert len(resp.payload.body) == 314159


@pytest.mark.parametrize("compression", [grpc.Compression.Gzip, grpc.Compression.Deflate])
def test_compressed_requests_of_both_encodings(channel, testing, compression):
    call = testing.method(channel, TS + "UnaryCall", "unary_unary")
    resp = call(req(testing, "grpc.testing.SimpleRequest", response_size=1000, payload=payload(testing, 5000)),
                timeout=5, compression=compression)
    assert resp.payload.body == b"\0" * 1000


def test_client_compressed_streaming(channel, testing):
    # 27182 compressed (expect_compressed) then 45904 plain -> 73086. grpcio compresses a
    # whole call, so the two messages go in one call each way round: first all compressed,
    # then the plain one must not claim compression.
    call = testing.method(channel, TS + "StreamingInputCall", "stream_unary")
    flag = testing.message("grpc.testing.BoolValue")(value=True)
    M = testing.message("grpc.testing.StreamingInputCallRequest")
    both = [M(payload=payload(testing, 27182), expect_compressed=flag), M(payload=payload(testing, 45904))]
    assert call(iter(both), timeout=10, compression=grpc.Compression.Gzip).aggregated_payload_size == 73086
    with pytest.raises(grpc.RpcError) as e:
        call(iter([M(payload=payload(testing, 27182), expect_compressed=flag)]), timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_server_compressed_unary(channel, testing):
    # grpcio decompresses silently; tests with raw HTTP/2 check the flag byte itself.
    call = testing.method(channel, TS + "UnaryCall", "unary_unary")
    for compressed in (True, False):
        flag = testing.message("grpc.testing.BoolValue")(value=compressed)
        resp = call(req(testing, "grpc.testing.SimpleRequest", response_compressed=flag, response_size=314159,
                        payload=payload(testing, 271828)), timeout=10)
        assert len(resp.payload.body) == 314159


def test_server_compressed_streaming(channel, testing):
    call = testing.method(channel, TS + "StreamingOutputCall", "unary_stream")
    P = testing.message("grpc.testing.ResponseParameters")
    B = testing.message("grpc.testing.BoolValue")
    r = req(testing, "grpc.testing.StreamingOutputCallRequest",
            response_parameters=[P(size=31415, compressed=B(value=True)), P(size=92653, compressed=B(value=False))])
    assert [len(m.payload.body) for m in call(r, timeout=10)] == [31415, 92653]


def test_deadline_exceeded_by_server_timer(channel, testing):
    # The server, not only the client, ends a call whose deadline passed: grpcio's own
    # timer would say "Deadline Exceeded" too, so look for the server's message.
    call = testing.method(channel, TS + "StreamingOutputCall", "unary_stream")
    P = testing.message("grpc.testing.ResponseParameters")
    r = req(testing, "grpc.testing.StreamingOutputCallRequest", response_parameters=[P(size=1, interval_us=2_000_000)])
    responses = call(r, timeout=0.3)
    with pytest.raises(grpc.RpcError) as e:
        list(responses)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
