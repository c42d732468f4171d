"""Signed ApproveDecision per second against a running esaylov-server, as eight district
commissions' chairpersons on a busy day: a party sends COUNT nominations to the eight in turn,
their secretaries take them into review and draft refusals, their chairpersons sign each
approval payload beforehand (so that the client's signing is not measured); then CONCURRENCY
threads approve them, and the rate, the p99 and the CPU the server (SERVER_PID) and PostgreSQL
spent per approval are printed. Then it prepares COUNT more drafted requests for pgbench's run
of the same transaction and writes "draft request commission" lines to PG_DRAFTS.
    approvals.py ADDRESS PKI_DIR COUNT CONCURRENCY SERVER_PID PG_DRAFTS
(PKI_DIR/<person>/{key,cert}.pem for seed-party-xdp-0 and the commissions' officers.)"""
import concurrent.futures
import os
import random
import sys
import threading
import time
import uuid

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stubs  # noqa: E402

stubs.generate("common", "auth", "forms", "requests", "decisions")
from esaylov.v1 import auth_pb2, auth_pb2_grpc, common_pb2, decisions_pb2, decisions_pb2_grpc, forms_pb2, requests_pb2, requests_pb2_grpc  # noqa: E402

address, pki, count, concurrency, server_pid, pg_drafts = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
COMMISSIONS = ["dec-1703202", "dec-1706204", "dec-1708201", "dec-1710207", "dec-1712211", "dec-1714204", "dec-1718203", "dec-1726264"]
options = [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary]
channel = grpc.insecure_channel(address)
auth, rs, ds = auth_pb2_grpc.AuthServiceStub(channel), requests_pb2_grpc.RequestServiceStub(channel), decisions_pb2_grpc.DecisionServiceStub(channel)


class Person:
    def __init__(self, person):
        d = os.path.join(pki, person)
        self.key = serialization.load_pem_private_key(open(f"{d}/key.pem", "rb").read(), None)
        self.cert = x509.load_pem_x509_certificate(open(f"{d}/cert.pem", "rb").read())
        start = auth.StartSignatureLogin(auth_pb2.StartSignatureLoginRequest(), timeout=10)
        token = auth.FinishSignatureLogin(auth_pb2.FinishSignatureLoginRequest(challenge_id=start.challenge_id, cms=self.sign(start.challenge)), timeout=10).token
        self.md = (("authorization", f"Bearer {token}"),)

    def sign(self, data):
        return pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(self.cert, self.key, hashes.SHA256()).sign(serialization.Encoding.DER, options)


party = Person("seed-party-xdp-0")
officers = {c: (Person(f"seed-{c}-2"), Person(f"seed-{c}-0")) for c in COMMISSIONS}


def pinfl(female):
    body = f"{4 if female else 3}{random.randrange(1, 28):02d}{random.randrange(1, 13):02d}{random.randrange(50, 99)}{random.randrange(10**6):06d}"
    return body + str(sum(int(d) * (7, 3, 1)[i % 3] for i, d in enumerate(body)) % 10)


def form():
    nominees = [forms_pb2.ConstituencyNominee(
        person=forms_pb2.PersonDetails(pinfl=pinfl(i < 2), name=common_pb2.PersonName(last_name="Karimova", first_name="Dilnoza"),
                                       phone=f"+99890{random.randrange(10**7):07d}"), constituency_number=i + 1) for i in range(5)]
    return forms_pb2.RequestForm(candidate_nomination=forms_pb2.CandidateNominationForm(
        election_kind=common_pb2.ELECTION_KIND_DISTRICT_COUNCIL, nominees=nominees,
        party_decision=forms_pb2.DocumentReference(number="12/2026", date=common_pb2.CalendarDate(year=2026, month=11, day=30))))


def prepare(i, signed=True):
    commission = COMMISSIONS[i % len(COMMISSIONS)]
    secretary, chair = officers[commission]
    d = rs.CreateDraft(requests_pb2.CreateDraftRequest(campaign_id="demo", receiver_commission_id=commission, form=form(),
                                                       idempotency_key=uuid.uuid4().hex), metadata=party.md, timeout=30)
    p = rs.GetSigningPayload(requests_pb2.GetSigningPayloadRequest(request_id=d.id), metadata=party.md, timeout=30)
    rs.SubmitRequest(requests_pb2.SubmitRequestRequest(request_id=d.id, cms=party.sign(p.payload), payload_sha256=p.payload_sha256,
                                                       idempotency_key=uuid.uuid4().hex), metadata=party.md, timeout=30)
    ds.StartReview(decisions_pb2.StartReviewRequest(request_id=d.id), metadata=secretary.md, timeout=30)
    draft = ds.DraftDecision(decisions_pb2.DraftDecisionRequest(request_id=d.id, outcome=decisions_pb2.DECISION_OUTCOME_REFUSED,
                                                                text="Refused: the congress decision is missing."), metadata=secretary.md, timeout=30)
    if not signed:
        return draft.id, d.id, commission
    a = ds.GetApprovalPayload(decisions_pb2.GetApprovalPayloadRequest(draft_id=draft.id), metadata=chair.md, timeout=30)
    return chair, decisions_pb2.ApproveDecisionRequest(draft_id=draft.id, cms=chair.sign(a.payload), payload_sha256=a.payload_sha256,
                                                       idempotency_key=uuid.uuid4().hex)


with concurrent.futures.ThreadPoolExecutor(16) as pool:
    prepared = list(pool.map(prepare, range(count)))


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total


pg = [int(p) for p in os.listdir("/proc") if p.isdigit() and os.path.exists(f"/proc/{p}/comm") and open(f"/proc/{p}/comm").read().strip() == "postgres"]
lock = threading.Lock()
latencies, failures = [], [0]
queue = list(prepared)


def worker():
    while True:
        with lock:
            if not queue:
                return
            chair, request = queue.pop()
        began = time.monotonic()
        try:
            ds.ApproveDecision(request, metadata=chair.md, timeout=30)
            with lock:
                latencies.append(time.monotonic() - began)
        except grpc.RpcError as e:
            with lock:
                failures[0] += 1
                if failures[0] == 1:
                    print(f"approvals: first failure: {e.code()} {e.details()}", file=sys.stderr)


hz = os.sysconf("SC_CLK_TCK")
server_before, pg_before = cpu_ticks([server_pid]), cpu_ticks(pg)
began = time.monotonic()
threads = [threading.Thread(target=worker) for _ in range(concurrency)]
for t in threads:
    t.start()
for t in threads:
    t.join()
took = time.monotonic() - began
server_cpu, pg_cpu = (cpu_ticks([server_pid]) - server_before) / hz, (cpu_ticks(pg) - pg_before) / hz
latencies.sort()
done = len(latencies)
p99 = latencies[int(done * 0.99)] * 1000 if latencies else 0
print(f"approvals: {done} in {took:.1f} s: {done / took:.0f}/s, p99 {p99:.1f} ms, "
      f"CPU per approval: server {server_cpu / max(done, 1) * 1e6:.0f} us, PostgreSQL {pg_cpu / max(done, 1) * 1e6:.0f} us, failed {failures[0]}")

with concurrent.futures.ThreadPoolExecutor(16) as pool:
    drafts = list(pool.map(lambda i: prepare(i, signed=False), range(count)))
with open(pg_drafts, "w") as f:
    for draft, request, commission in drafts:
        f.write(f"{draft}\t{request}\t{commission}\n")
