"""The operations port (HTTP/1.1): liveness, readiness (also while draining), Prometheus metrics."""
import signal
import threading
import time

import grpc
import pytest
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


def test_metrics_count_calls_by_method_and_status_with_no_ids_in_labels(v1):
    import re
    from conftest import wait_for
    server = Server("esaylov-server", "--metrics-sample-seconds", "1")
    try:
        with grpc.insecure_channel(server.address) as ch:
            for _ in range(3):
                health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
            d = v1.directory_pb2
            stub = v1.directory_pb2_grpc.DirectoryServiceStub(ch)
            with pytest.raises(grpc.RpcError):
                stub.ListOrganisations(d.ListOrganisationsRequest(page=v1.common_pb2.PageRequest(page_size=9999)), timeout=5)
            stub.GetOrganisation(d.GetOrganisationRequest(organisation_id="tec-1718"), timeout=5)
            # A bound hit: a request message over the 4 MiB limit.
            with pytest.raises(grpc.RpcError) as e:
                health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service="x" * (5 << 20)), timeout=10)
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        code, text = server.ops("/metrics")
        assert code == 200
        def value(line_start):
            return value_of(text, line_start)
        assert value('esaylov_rpc_calls_total{service="grpc.health.v1.Health",method="Check",code="OK"}') >= 3
        assert value('esaylov_rpc_calls_total{service="esaylov.v1.DirectoryService",method="ListOrganisations",code="INVALID_ARGUMENT"}') == 1
        assert value('esaylov_rpc_duration_seconds_count{service="esaylov.v1.DirectoryService",method="GetOrganisation"}') == 1
        assert value('esaylov_rpc_in_flight{service="grpc.health.v1.Health"}') == 0
        assert value("esaylov_database_ready") == 1 and value("esaylov_watch_streams") == 0
        assert value("esaylov_connections") is not None
        # Transport: bytes both ways, every bound with its series, the one hit counted.
        assert value("esaylov_received_bytes_total") > 1000 and value("esaylov_sent_bytes_total") > 0
        assert value('esaylov_bounds_hit_total{bound="message_size"}') == 1
        assert value('esaylov_bounds_hit_total{bound="receive_budget"}') == 0
        assert value("esaylov_tls_handshakes_in_progress") == 0
        # The database's waits and failures (none on an idle replica; the series exist).
        assert value("esaylov_db_pool_waits_total") is not None
        assert value('esaylov_db_errors_total{kind="unavailable"}') == 0
        # What only the database knows, sampled every second.
        assert wait_for(lambda: (value_of(server.ops("/metrics")[1], "esaylov_audit_chain_length") or 0) > 0, timeout=5)
        assert value("esaylov_sms_outbox_pending") is not None and value("esaylov_audit_pending") is not None
        # Labels name services, methods, codes and buckets: never the ids a call carried.
        assert "tec-1718" not in text
        labels = set(re.findall(r'(\w+)="', text))
        assert labels <= {"service", "method", "code", "le", "bound", "kind"}, labels
        # The dashboard charts only metrics the server exports.
        import json, os
        dashboard = json.load(open(os.path.join(os.path.dirname(__file__), "../../docs/grafana-dashboard.json")))
        charted = {m for p in dashboard["panels"] for t in p["targets"] for m in re.findall(r"esaylov_[a-z_]+", t["expr"])}
        exported = set(re.findall(r"^# TYPE (esaylov_[a-z_]+)", text, re.M))
        suffixed = {m for m in charted if m.endswith("_bucket")}
        assert charted - suffixed <= exported and {m[:-len("_bucket")] for m in suffixed} <= exported, charted - exported
    finally:
        server.stop()


def value_of(text, line_start):
    """The value of the exposition line that starts with `line_start`; None when absent."""
    import re
    m = re.search("^" + re.escape(line_start) + r" ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else None
