"""The operations port (HTTP/1.1): liveness, readiness, and readiness while draining."""
import signal
import threading
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import Server


def test_healthz_readyz_and_nothing_else():
    server = Server("esaylov-server")
    try:
        assert server.ops_port
        assert server.ops("/healthz") == (200, "ok\n")
        assert server.ops("/healthz", method="HEAD")[0] == 200
        assert server.ops("/readyz") == (200, "ready\n")
        assert server.ops("/metricz")[0] == 404
        assert server.ops("/readyz", method="POST")[0] == 405
    finally:
        server.stop()


def test_readyz_turns_503_while_the_server_drains():
    """On SIGTERM the server stops being ready at once, while calls in flight finish."""
    server = Server("esaylov-server")
    channel = grpc.insecure_channel(server.address)
    try:
        # A health watch stays open: the drain waits for it (up to its grace).
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        first = next(watch)
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        rest = []
        reader = threading.Thread(target=lambda: rest.extend(_drain(watch)), daemon=True)
        reader.start()
        server.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 3
        seen = None
        while time.monotonic() < deadline:
            seen = server.ops("/readyz")
            if seen[0] == 503:
                break
            time.sleep(0.05)
        assert seen[0] == 503 and "draining" in seen[1], seen
        assert server.ops("/healthz") == (200, "ok\n")
    finally:
        channel.close()
        server.stop()


def _drain(stream):
    try:
        return list(stream)
    except grpc.RpcError:
        return []
