"""WatchRequests from outside: two server replicas on one database, a party and a commission
watching on one while everything is written through the other, resumption from a cursor while
writes go on, replays that show each request as it was, heartbeats, retention and refusals."""
import random
import threading
import time

import grpc
import pytest

from conftest import wait_for
from identity import PKI, bearer, deciding_server, login, refused, sql
from test_decisions import Commission
from test_requests import Sender, nomination, org, person_session

PARTY = ("seed-party-xdp-0", "party-xdp")
DISTRICT = "dec-1726266"
BUSY = "dec-1726269"


@pytest.fixture(scope="module")
def pki():
    return PKI()


@pytest.fixture(scope="module")
def replicas(pki):
    a, b = deciding_server(pki), deciding_server(pki, "--watch-heartbeat", "2")
    yield a, b
    a.stop()
    b.stop()


def stubs_of(v1, server):
    ch = grpc.insecure_channel(server.address)
    return v1.auth_pb2_grpc.AuthServiceStub(ch), v1.requests_pb2_grpc.RequestServiceStub(ch), v1.decisions_pb2_grpc.DecisionServiceStub(ch)


class Watch:
    """A WatchRequests stream read on a thread: (time received, event) pairs."""

    def __init__(self, v1, server, md, **request):
        self.channel = grpc.insecure_channel(server.address)
        stub = v1.requests_pb2_grpc.RequestServiceStub(self.channel)
        self.call = stub.WatchRequests(v1.requests_pb2.WatchRequestsRequest(**request), metadata=md)
        self.events, self.error = [], None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for e in self.call:
                self.events.append((time.time(), e))
        except grpc.RpcError as e:
            self.error = e

    def of(self, request_id):
        return [e for _, e in self.events if e.request.id == request_id]

    def close(self):
        self.call.cancel()
        self.thread.join(5)
        self.channel.close()


def test_a_watcher_on_replica_b_sees_what_replica_a_decides_as_it_commits(v1, pki, replicas):
    a, b = replicas
    r, d = v1.requests_pb2, v1.decisions_pb2
    on_a, on_b = stubs_of(v1, a), stubs_of(v1, b)
    party_a = org(v1, on_a[:2], pki, PARTY)
    commission = Commission(v1, on_a, pki, DISTRICT)
    # On B: the party lists what it sent, the commission's member its inbox; each watches from there.
    party_b = Sender(v1, on_b[1], party_a.token)
    member_md = commission.people["member"][0]
    listed = party_b.call("ListOutgoing", r.ListOutgoingRequest())
    inbox = on_b[1].ListIncoming(r.ListIncomingRequest(), metadata=member_md, timeout=30)
    assert listed.watch_cursor and inbox.watch_cursor
    outgoing = Watch(v1, b, party_a.md, scope=r.WATCH_SCOPE_OUTGOING, cursor=listed.watch_cursor)
    incoming = Watch(v1, b, member_md, scope=r.WATCH_SCOPE_INCOMING, cursor=inbox.watch_cursor)
    try:
        form = nomination(v1, women=2, men=3)
        sent = party_a.send(DISTRICT, form)
        commission.review(sent.id)
        decision = commission.approve(commission.draft(sent.id).id)
        assert wait_for(lambda: r.REQUEST_EVENT_KIND_DECIDED in [e.kind for e in outgoing.of(sent.id)], timeout=10), outgoing.error
        assert wait_for(lambda: r.REQUEST_EVENT_KIND_DECIDED in [e.kind for e in incoming.of(sent.id)], timeout=10), incoming.error
        # The sender sees the review begin and the decision; the commission also its own draft.
        assert [e.kind for e in outgoing.of(sent.id)] == [r.REQUEST_EVENT_KIND_SUBMITTED, r.REQUEST_EVENT_KIND_REVIEW_STARTED,
                                                           r.REQUEST_EVENT_KIND_DECIDED]
        assert [e.kind for e in incoming.of(sent.id)] == [r.REQUEST_EVENT_KIND_SUBMITTED, r.REQUEST_EVENT_KIND_REVIEW_STARTED,
                                                           r.REQUEST_EVENT_KIND_DECISION_DRAFTED, r.REQUEST_EVENT_KIND_DECIDED]
        # Each event carries the request as it was then.
        first, _, last = outgoing.of(sent.id)
        assert first.request.status == r.REQUEST_STATUS_SUBMITTED and first.request.version == 2 and not first.request.decision_id
        assert last.request.status == r.REQUEST_STATUS_DECIDED and last.request.decision_id == decision.id == last.decision_id
        assert last.request.form.candidate_nomination.nominees[0].person.pinfl == form.candidate_nomination.nominees[0].person.pinfl
        # Woken by the NOTIFY of replica A, not by B's fallback poll (5 s).
        received, event = next((t, e) for t, e in outgoing.events if e.request.id == sent.id and e.kind == r.REQUEST_EVENT_KIND_DECIDED)
        lag = received - (event.at.seconds + event.at.nanos / 1e9)
        assert lag < 2.0, lag
    finally:
        outgoing.close()
        incoming.close()
    # Replayed from the list's cursor, on replica A this time: the same events, cursors and states.
    again = Watch(v1, a, party_a.md, scope=r.WATCH_SCOPE_OUTGOING, cursor=listed.watch_cursor)
    try:
        assert wait_for(lambda: len(again.of(sent.id)) == 3, timeout=10), again.error
        assert [(e.cursor, e.kind, e.request.status) for e in again.of(sent.id)] == \
               [(e.cursor, e.kind, e.request.status) for e in outgoing.of(sent.id)]
    finally:
        again.close()
    # A candidate the decision registered signs in by SMS and finds it from the oldest event kept,
    # the party's request in aggregate: the other nominees' personal data is not theirs to read.
    phone = form.candidate_nomination.nominees[1].person.phone
    candidate = person_session(v1, on_a[:2], a, phone)
    mine = Watch(v1, b, candidate.md, scope=r.WATCH_SCOPE_OUTGOING, from_oldest=True)
    try:
        assert wait_for(lambda: mine.of(sent.id), timeout=10), mine.error
        (e,) = mine.of(sent.id)
        assert e.kind == r.REQUEST_EVENT_KIND_DECIDED and e.decision_id == decision.id
        assert all(n.person.pinfl == "" for n in e.request.form.candidate_nomination.nominees)
    finally:
        mine.close()


def test_a_watcher_that_disconnects_and_resumes_misses_and_repeats_nothing_while_writes_go_on(v1, pki, replicas):
    a, b = replicas
    r = v1.requests_pb2
    on_a = stubs_of(v1, a)
    party = org(v1, on_a[:2], pki, PARTY)
    member = Commission(v1, on_a, pki, BUSY).people["member"][0]
    cursor = on_a[1].ListIncoming(r.ListIncomingRequest(), metadata=member, timeout=30).watch_cursor
    sent, errors = [], []

    def writer():
        for _ in range(8):
            try:
                sent.append(party.send(BUSY, nomination(v1, women=2, men=3)).id)
            except grpc.RpcError as e:
                errors.append(e)

    writers = [threading.Thread(target=writer) for _ in range(3)]
    for t in writers:
        t.start()
    seen, cursors, reconnects = [], [], 0
    deadline = time.time() + 60
    while time.time() < deadline:
        # A few events from one replica or the other, then the client drops the stream.
        server = random.choice((a, b))
        ch = grpc.insecure_channel(server.address)
        call = v1.requests_pb2_grpc.RequestServiceStub(ch).WatchRequests(
            r.WatchRequestsRequest(scope=r.WATCH_SCOPE_INCOMING, cursor=cursor), metadata=member, timeout=3)
        take = random.randint(1, 4)
        try:
            for e in call:
                if e.kind == r.REQUEST_EVENT_KIND_HEARTBEAT:
                    continue
                seen.append((e.request.id, e.kind))
                cursors.append(e.cursor)
                cursor = e.cursor
                take -= 1
                if take == 0:
                    break
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e
        call.cancel()
        ch.close()
        reconnects += 1
        if not any(t.is_alive() for t in writers) and {i for i, _ in seen} >= set(sent):
            break
    for t in writers:
        t.join()
    assert not errors, errors
    assert len(sent) == 24 and reconnects > 3
    assert len(cursors) == len(set(cursors)), "an event came twice"
    assert len(seen) == len(set(seen)), "an event came twice"
    ours = [i for i, k in seen if k == r.REQUEST_EVENT_KIND_SUBMITTED and i in set(sent)]
    assert sorted(ours) == sorted(sent), "an event was lost"


def test_an_idle_stream_gets_heartbeats_and_ends_when_its_role_ends(v1, pki, replicas):
    a, b = replicas
    r = v1.requests_pb2
    auth = stubs_of(v1, b)[0]
    person = "seed-dec-1726266-4"
    md = bearer(login(v1, auth, pki.issue(person, DISTRICT)).token)
    watch = Watch(v1, b, md, scope=r.WATCH_SCOPE_INCOMING)
    try:
        assert wait_for(lambda: any(e.kind == r.REQUEST_EVENT_KIND_HEARTBEAT for _, e in watch.events), timeout=8), watch.error
        beat = next(e for _, e in watch.events if e.kind == r.REQUEST_EVENT_KIND_HEARTBEAT)
        assert beat.cursor and not beat.HasField("request")
        # An operator ends the membership: at the next heartbeat the stream ends, naming the rule.
        sql(f"UPDATE memberships SET until = now() WHERE person_id = '{person}' AND organisation_id = '{DISTRICT}' AND until IS NULL")
        assert wait_for(lambda: watch.error is not None, timeout=8)
        assert watch.error.code() == grpc.StatusCode.PERMISSION_DENIED, watch.error
        assert "watching requests" in watch.error.details() or "commission" in watch.error.details()
    finally:
        watch.close()
        sql(f"UPDATE memberships SET until = NULL WHERE person_id = '{person}' AND organisation_id = '{DISTRICT}'")


def test_watch_refusals_name_the_field_and_retention_answers_out_of_range(v1, pki, replicas):
    a, b = replicas
    r = v1.requests_pb2
    auth, requests, _ = stubs_of(v1, a)
    party = org(v1, (auth, requests), pki, PARTY)
    member = Commission(v1, (auth, requests, None), pki, DISTRICT).people["member"][0]

    def first(md, **kw):
        return next(iter(requests.WatchRequests(r.WatchRequestsRequest(**kw), metadata=md, timeout=5)))

    refused(lambda: first(member), grpc.StatusCode.INVALID_ARGUMENT, "scope")
    refused(lambda: first(member, scope=r.WATCH_SCOPE_INCOMING, cursor="not-a-cursor"), grpc.StatusCode.INVALID_ARGUMENT, "cursor")
    outgoing = party.call("ListOutgoing", r.ListOutgoingRequest()).watch_cursor
    refused(lambda: first(member, scope=r.WATCH_SCOPE_INCOMING, cursor=outgoing), grpc.StatusCode.INVALID_ARGUMENT, "cursor")
    refused(lambda: first(party.md, scope=r.WATCH_SCOPE_INCOMING, commission_id=DISTRICT), grpc.StatusCode.PERMISSION_DENIED, "commission")
    refused(lambda: first(member, scope=r.WATCH_SCOPE_INCOMING, commission_id="no-such-commission"), grpc.StatusCode.NOT_FOUND, "commission_id")
    refused(lambda: first(member, scope=r.WATCH_SCOPE_OUTGOING, commission_id=DISTRICT), grpc.StatusCode.INVALID_ARGUMENT, "commission_id")
    refused(lambda: next(iter(requests.WatchRequests(r.WatchRequestsRequest(scope=r.WATCH_SCOPE_OUTGOING), timeout=5))),
            grpc.StatusCode.UNAUTHENTICATED)
    # Two requests later, retention removes the first one's events: a cursor before them is out of range.
    old = party.call("ListOutgoing", r.ListOutgoingRequest()).watch_cursor
    party.send(DISTRICT, nomination(v1, women=2, men=3))
    party.send(DISTRICT, nomination(v1, women=2, men=3))
    recipient = "outgoing:organisation:party-xdp"
    position = int(sql(f"SELECT last FROM event_positions WHERE recipient = '{recipient}'"))
    sql(f"DELETE FROM request_events WHERE recipient = '{recipient}' AND position = {position - 1}")
    refused(lambda: first(party.md, scope=r.WATCH_SCOPE_OUTGOING, cursor=old), grpc.StatusCode.OUT_OF_RANGE, "list again")
    # The list's cursor of now still works.
    fresh = party.call("ListOutgoing", r.ListOutgoingRequest()).watch_cursor
    party.send(DISTRICT, nomination(v1, women=2, men=3))
    assert first(party.md, scope=r.WATCH_SCOPE_OUTGOING, cursor=fresh).kind == r.REQUEST_EVENT_KIND_SUBMITTED
