"""Malformed and hostile messages each get a clear status while the server stays up."""
import os
import random

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

TS = "/grpc.testing.TestService/"


def raw_unary(channel, method):
    return channel.unary_unary(TS + method, request_serializer=lambda b: b, response_deserializer=lambda b: b)


def raw_unary_stream(channel, method):
    return channel.unary_stream(TS + method, request_serializer=lambda b: b, response_deserializer=lambda b: b)


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def field(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def assert_alive(address):
    with grpc.insecure_channel(address) as ch:
        r = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1)
        assert r.status == health_pb2.HealthCheckResponse.SERVING


def status_of(call, request):
    try:
        result = call(request, timeout=10)
        if not isinstance(result, bytes):
            list(result)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


def test_random_and_truncated_bytes(channel, interop_server, testing):
    rng = random.Random(7)
    call = raw_unary(channel, "UnaryCall")
    good = testing.message("grpc.testing.SimpleRequest")(
        response_size=3, payload=testing.message("grpc.testing.Payload")(body=b"abc"),
        response_status=testing.message("grpc.testing.EchoStatus")(code=0, message="ok")).SerializeToString()
    seen = set()
    for n in range(len(good)):
        code, _ = status_of(call, good[:n])
        seen.add(code)
        assert code in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT)
    for _ in range(200):
        code, _ = status_of(call, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))))
        seen.add(code)
        assert code in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNKNOWN,
                        grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert grpc.StatusCode.INVALID_ARGUMENT in seen
    assert_alive(interop_server.address)


def test_invalid_utf8_names_the_field(channel, interop_server):
    # SimpleRequest.response_status (7) -> EchoStatus.message (2), not UTF-8.
    request = field(7, field(2, b"\xc3\x28"))
    code, details = status_of(raw_unary(channel, "UnaryCall"), request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "response_status.message" in details and "UTF-8" in details
    assert_alive(interop_server.address)


def test_embedded_nul_is_refused(channel, interop_server):
    code, details = status_of(raw_unary(channel, "UnaryCall"), field(7, field(2, b"a\x00b")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "U+0000" in details
    assert_alive(interop_server.address)


def test_two_million_empty_submessages(channel, interop_server):
    # StreamingOutputCallRequest.response_parameters (2): 2M empty entries in 4 MB.
    request = b"\x12\x00" * 2_000_000
    code, details = status_of(raw_unary_stream(channel, "StreamingOutputCall"), request)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, details
    assert_alive(interop_server.address)


def test_deep_nesting_inside_unknown_fields_is_harmless(channel, interop_server):
    # 100,000 levels under a field the server does not know: kept as opaque bytes.
    inner = b""
    for _ in range(100_000):
        inner = field(1, inner)
    code, _ = status_of(raw_unary(channel, "EmptyCall"), field(1000, inner))
    assert code == grpc.StatusCode.OK
    assert_alive(interop_server.address)


def test_invalid_field_comes_with_bad_request_details(channel, interop_server):
    # grpc-status-details-bin decodes with the published google.rpc messages.
    from google.rpc import error_details_pb2, status_pb2
    try:
        raw_unary(channel, "UnaryCall")(field(7, field(2, b"\xc3\x28")), timeout=5)
        raise AssertionError("accepted")
    except grpc.RpcError as e:
        trailers = dict(e.trailing_metadata())
        status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "UTF-8" in status.message
    [any_detail] = status.details
    assert any_detail.type_url == "type.googleapis.com/google.rpc.BadRequest"
    bad = error_details_pb2.BadRequest()
    assert any_detail.Unpack(bad)
    [violation] = bad.field_violations
    assert violation.field == "response_status.message"
    assert violation.description == "string is not valid UTF-8"
    assert violation.reason == "MALFORMED_MESSAGE"
