"""grpc.health.v1.Health through grpcio-health-checking."""
import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import Server

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


@pytest.mark.parametrize("binary,service", [
    ("esaylov-server", ""), ("esaylov-server", "grpc.health.v1.Health"),
    ("esaylov-interop-server", "grpc.testing.TestService"),
])
def test_check_serving(binary, service, esaylov_server, interop_server):
    server = esaylov_server if binary == "esaylov-server" else interop_server
    with grpc.insecure_channel(server.address) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        assert stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status == SERVING


def test_check_unknown_service_is_not_found(esaylov_server):
    with grpc.insecure_channel(esaylov_server.address) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            stub.Check(health_pb2.HealthCheckRequest(service="esaylov.v1.Nothing"), timeout=5)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        assert "esaylov.v1.Nothing" in e.value.details()


def test_watch_unknown_service_streams_service_unknown(esaylov_server):
    with grpc.insecure_channel(esaylov_server.address) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        stream = stub.Watch(health_pb2.HealthCheckRequest(service="esaylov.v1.Nothing"), timeout=5)
        assert next(stream).status == SERVICE_UNKNOWN
        stream.cancel()


def test_watch_sees_not_serving_on_shutdown():
    server = Server("esaylov-server")
    ch = grpc.insecure_channel(server.address)
    stub = health_pb2_grpc.HealthStub(ch)
    stream = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=20)
    assert next(stream).status == SERVING
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    # Every change is streamed: shutdown turns the server NOT_SERVING before it goes.
    assert next(stream).status == NOT_SERVING
    stopper.join()
    ch.close()


def test_unregistered_services_are_unimplemented(esaylov_server):
    # Nothing is registered as a stub: the interop service is not part of esaylov-server.
    with grpc.insecure_channel(esaylov_server.address) as ch:
        call = ch.unary_unary("/grpc.testing.TestService/EmptyCall",
                              request_serializer=lambda b: b, response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as e:
            call(b"", timeout=5)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
