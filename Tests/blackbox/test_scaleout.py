"""Scale-out from outside: two server replicas on one primary and one hot standby
(`Scripts/pg.sh standby`, ESAYLOV_DATABASE_READ_URL), and a client that balances its calls
across them with grpcio's round_robin. The request-to-decision scenario completes through the
balancer, a watch on one replica sees what the other wrote, the public directory is read from
the standby, what a caller has just written is read from the primary, and reads go on when
the standby stops."""
import os
import subprocess
import time

import grpc
import pytest

from conftest import wait_for
from identity import PKI, bearer, deciding_server, login, sql
from test_decisions import Commission
from test_operations import value_of
from test_requests import Sender, nomination, org
from test_watch import Watch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
PARTY = ("seed-party-ecological-0", "party-ecological")
DISTRICT = "dec-1726262"


def pg(*args):
    r = subprocess.run([os.path.join(ROOT, "Scripts/pg.sh"), *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.strip()


@pytest.fixture(scope="module")
def standby():
    pg("standby", "start")
    yield pg("standby", "url")
    pg("standby", "drop")


@pytest.fixture(scope="module")
def pki():
    return PKI()


@pytest.fixture(scope="module")
def replicas(pki, standby):
    env = {"ESAYLOV_DATABASE_READ_URL": standby}
    a, b = deciding_server(pki, "--metrics-sample-seconds", "1", env=env), deciding_server(pki, "--metrics-sample-seconds", "1", env=env)
    yield a, b
    a.stop()
    b.stop()


def metric(server, name):
    return value_of(server.ops("/metrics")[1], name) or 0


@pytest.fixture(scope="module")
def balanced(replicas):
    """One channel over both replicas: grpcio's round_robin spreads the calls."""
    a, b = replicas
    ch = grpc.insecure_channel(f"ipv4:127.0.0.1:{a.port},127.0.0.1:{b.port}",
                               options=[("grpc.lb_policy_name", "round_robin")])
    # round_robin picks among the connections that are up: let both come up.
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    health = health_pb2_grpc.HealthStub(ch)
    def both_used():
        health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        key = 'esaylov_rpc_calls_total{service="grpc.health.v1.Health",method="Check",code="OK"}'
        return all(metric(s, key) > 0 for s in (a, b))
    assert wait_for(both_used, timeout=10)
    yield ch
    ch.close()


def test_both_replicas_use_the_standby_once_it_has_caught_up(replicas):
    for s in replicas:
        assert wait_for(lambda: metric(s, "esaylov_db_standby_in_use") == 1, timeout=15), s.ops("/metrics")[1][-2000:]
    assert sql("SELECT count(*) FROM pg_stat_replication WHERE application_name = 'esaylov_standby'", admin=True) == "1"


def test_the_request_to_decision_scenario_completes_through_the_balancer(v1, pki, replicas, balanced):
    a, b = replicas
    r = v1.requests_pb2
    stubs = (v1.auth_pb2_grpc.AuthServiceStub(balanced), v1.requests_pb2_grpc.RequestServiceStub(balanced),
             v1.decisions_pb2_grpc.DecisionServiceStub(balanced))
    d = v1.directory_pb2
    directory = v1.directory_pb2_grpc.DirectoryServiceStub(balanced)
    def candidates():
        listed = directory.ListCandidates(d.ListCandidatesRequest(
            commission_id=DISTRICT, party_id=PARTY[1], page=v1.common_pb2.PageRequest(page_size=500)), timeout=10)
        return len(listed.candidates)
    registered_before = candidates()
    def sign_in_calls():
        return [sum(metric(s, f'esaylov_rpc_calls_total{{service="esaylov.v1.AuthService",method="{m}",code="OK"}}')
                    for m in ("StartSignatureLogin", "FinishSignatureLogin")) for s in (a, b)]
    calls_before = sign_in_calls()
    # Signing in is a challenge on one replica and its answer, as often as not, on the other:
    # the session is read from the primary, so it works on the very next call wherever it lands.
    party = org(v1, stubs[:2], pki, PARTY)
    commission = Commission(v1, stubs, pki, DISTRICT)
    # The party and a commission member watch on replica B only.
    ch_b = grpc.insecure_channel(b.address)
    rs_b = v1.requests_pb2_grpc.RequestServiceStub(ch_b)
    listed = rs_b.ListOutgoing(r.ListOutgoingRequest(), metadata=party.md, timeout=30)
    member_md = commission.people["member"][0]
    inbox = rs_b.ListIncoming(r.ListIncomingRequest(), metadata=member_md, timeout=30)
    outgoing = Watch(v1, b, party.md, scope=r.WATCH_SCOPE_OUTGOING, cursor=listed.watch_cursor)
    incoming = Watch(v1, b, member_md, scope=r.WATCH_SCOPE_INCOMING, cursor=inbox.watch_cursor)
    try:
        sent = party.send(DISTRICT, nomination(v1, women=2, men=3))
        # Read right after it was written, through whichever replica: it is there (the primary).
        assert party.call("GetRequest", r.GetRequestRequest(request_id=sent.id)).status == r.REQUEST_STATUS_SUBMITTED
        commission.review(sent.id)
        decision = commission.approve(commission.draft(sent.id).id)
        assert decision.id
        assert wait_for(lambda: r.REQUEST_EVENT_KIND_DECIDED in [e.kind for e in outgoing.of(sent.id)], timeout=10), outgoing.error
        assert wait_for(lambda: r.REQUEST_EVENT_KIND_DECIDED in [e.kind for e in incoming.of(sent.id)], timeout=10), incoming.error
        assert [e.kind for e in outgoing.of(sent.id)] == [r.REQUEST_EVENT_KIND_SUBMITTED, r.REQUEST_EVENT_KIND_REVIEW_STARTED,
                                                           r.REQUEST_EVENT_KIND_DECIDED]
    finally:
        outgoing.close()
        incoming.close()
        ch_b.close()
    # The balancer used both replicas for the sign-ins (round robin alternates: a challenge
    # asked on one replica is answered on the other).
    calls_after = sign_in_calls()
    assert all(after > before for before, after in zip(calls_before, calls_after)), (calls_before, calls_after)
    # The decision's candidates are in the public directory, read from the standby (it replays
    # within about a second).
    assert wait_for(lambda: candidates() >= registered_before + 5, timeout=10)


def test_public_directory_reads_are_served_by_the_standby_and_go_on_when_it_stops(v1, replicas, balanced):
    a, b = replicas
    d = v1.directory_pb2
    directory = v1.directory_pb2_grpc.DirectoryServiceStub(balanced)
    before = sum(metric(s, "esaylov_db_standby_reads_total") for s in replicas)
    for _ in range(20):
        assert directory.GetOrganisation(d.GetOrganisationRequest(organisation_id="tec-1718"), timeout=10).id == "tec-1718"
    assert all(wait_for(lambda s=s: metric(s, "esaylov_db_standby_reads_total") > 0, timeout=5) for s in replicas)
    assert sum(metric(s, "esaylov_db_standby_reads_total") for s in replicas) >= before + 20
    # The standby stops: every read still answers (from the primary), and the replicas say so.
    pg("standby", "stop")
    try:
        for _ in range(20):
            assert directory.GetOrganisation(d.GetOrganisationRequest(organisation_id="tec-1718"), timeout=10).id == "tec-1718"
        for s in replicas:
            assert wait_for(lambda s=s: metric(s, "esaylov_db_standby_in_use") == 0, timeout=10)
            code, body = s.ops("/readyz")
            assert code == 200, body     # the primary is what readiness is about
    finally:
        pg("standby", "start")
    for s in replicas:
        assert wait_for(lambda s=s: metric(s, "esaylov_db_standby_in_use") == 1, timeout=20)
