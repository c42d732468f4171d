"""Durability: the server is killed with SIGKILL while 64 clients submit signed requests and
approve decisions; after a restart every acknowledged call is stored exactly once, incoming and
decision numbers have no gap or double, retries with the same keys settle the rest, and the
audit chain verifies."""
import concurrent.futures
import os
import threading
import time

import grpc
import pytest

from identity import PKI, bearer, ctl, deciding_server, login, sql
from test_requests import key, nomination, org

PARTY = ("seed-party-xdp-0", "party-xdp")
COMMISSION = "dec-1718203"     # a commission of this test's own use (other tests use dec-1726264)


def serve(pki):
    return deciding_server(pki, sign_ins="100000")


def test_sigkill_during_submits_and_approvals_loses_and_doubles_nothing(v1):
    r, d = v1.requests_pb2, v1.decisions_pb2
    pki = PKI()
    server = serve(pki)
    ch = grpc.insecure_channel(server.address)
    auth, rs, ds = v1.auth_pb2_grpc.AuthServiceStub(ch), v1.requests_pb2_grpc.RequestServiceStub(ch), v1.decisions_pb2_grpc.DecisionServiceStub(ch)
    party = org(v1, (auth, rs), pki, PARTY)
    secretary_cred, chair_cred = pki.issue(f"seed-{COMMISSION}-2", COMMISSION), pki.issue(f"seed-{COMMISSION}-0", COMMISSION)
    secretary, chair = bearer(login(v1, auth, secretary_cred).token), bearer(login(v1, auth, chair_cred).token)
    # Prepared before the load: drafts signed for submission, and requests drafted and signed for approval.
    submits = []
    for _ in range(96):
        draft = party.draft(COMMISSION, nomination(v1, 2, 3))
        p = party.payload(draft.id)
        submits.append(r.SubmitRequestRequest(request_id=draft.id, cms=party.credential.sign(p.payload), payload_sha256=p.payload_sha256,
                                              idempotency_key=key()))
    approvals = []
    for _ in range(32):
        sent = party.send(COMMISSION, nomination(v1, 2, 3))
        ds.StartReview(d.StartReviewRequest(request_id=sent.id), metadata=secretary, timeout=30)
        dd = ds.DraftDecision(d.DraftDecisionRequest(request_id=sent.id, outcome=d.DECISION_OUTCOME_REFUSED, text="Refused."), metadata=secretary, timeout=30)
        p = ds.GetApprovalPayload(d.GetApprovalPayloadRequest(draft_id=dd.id), metadata=chair, timeout=30)
        approvals.append(d.ApproveDecisionRequest(draft_id=dd.id, cms=chair_cred.sign(p.payload), payload_sha256=p.payload_sha256, idempotency_key=key()))
    acked_submits, acked_approvals = {}, {}
    lock = threading.Lock()
    work = [("submit", x) for x in submits] + [("approve", x) for x in approvals]
    work.sort(key=lambda _: os.urandom(1))

    def call(item):
        kind, message = item
        try:
            if kind == "submit":
                out = rs.SubmitRequest(message, metadata=party.md, timeout=30)
                with lock:
                    acked_submits[message.request_id] = out.incoming_number
            else:
                out = ds.ApproveDecision(message, metadata=chair, timeout=30)
                with lock:
                    acked_approvals[message.draft_id] = out.number
        except grpc.RpcError:
            pass

    pool = concurrent.futures.ThreadPoolExecutor(64)
    futures = [pool.submit(call, item) for item in work]
    while len(acked_submits) + len(acked_approvals) < 20 and not all(f.done() for f in futures):
        time.sleep(0.005)
    server.proc.kill()
    server.proc.wait()
    pool.shutdown(wait=True)
    # The kill came while calls were in flight: some were acknowledged, some were not.
    print(f"acknowledged before SIGKILL: {len(acked_submits)} submits, {len(acked_approvals)} approvals of {len(work)} calls")
    assert 20 <= len(acked_submits) + len(acked_approvals) < len(work)
    ch.close()
    # The restarted server has everything that was acknowledged, exactly once.
    server = serve(pki)
    try:
        ch = grpc.insecure_channel(server.address)
        rs, ds = v1.requests_pb2_grpc.RequestServiceStub(ch), v1.decisions_pb2_grpc.DecisionServiceStub(ch)
        for rid, number in acked_submits.items():
            got = rs.GetRequest(r.GetRequestRequest(request_id=rid), metadata=party.md, timeout=30)
            assert got.status == r.REQUEST_STATUS_SUBMITTED and got.incoming_number == number
        # Retries with the same keys settle the others: each once.
        for message in submits:
            out = rs.SubmitRequest(message, metadata=party.md, timeout=30)
            if message.request_id in acked_submits:
                assert out.incoming_number == acked_submits[message.request_id]
        for message in approvals:
            out = ds.ApproveDecision(message, metadata=chair, timeout=30)
            if message.draft_id in acked_approvals:
                assert out.number == acked_approvals[message.draft_id]
        ids = ",".join(f"'{m.request_id}'" for m in submits)
        assert sql(f"SELECT count(*) FROM request_history WHERE kind = 'submitted' AND request_id IN ({ids})") == str(len(submits))
        drafts = ",".join(f"'{m.draft_id}'" for m in approvals)
        assert sql(f"SELECT count(*) FROM decisions WHERE draft_id IN ({drafts})") == str(len(approvals))
        # No number skipped or doubled, in either series of the commission.
        for table, seq, year in (("requests", "incoming_seq", "incoming_year"), ("decisions", "number_seq", "number_year")):
            column = "receiver_id" if table == "requests" else "commission_id"
            count, top, distinct = sql(f"SELECT count({seq}), max({seq}), count(DISTINCT {seq}) FROM {table} "
                                       f"WHERE {column} = '{COMMISSION}' AND {year} = (SELECT max({year}) FROM {table} WHERE {column} = '{COMMISSION}')").split("|")
            assert count == top == distinct, (table, count, top, distinct)
    finally:
        server.stop()
    verify = ctl("audit", "verify")
    assert "audit chain intact" in verify.stdout
