"""Signed SubmitRequest per second against a running esaylov-server, as a party's head at a
deadline: signs in with the head's key, prepares COUNT district-council nominations (drafts to
the district commissions in turn, each signed over its payload beforehand, so that the client's
signing is not measured), then submits them from CONCURRENCY threads and reports the rate, the
p99 and the CPU the server (SERVER_PID) and PostgreSQL spent per submission. Then it prepares
COUNT more drafts for pgbench's run of the same transaction and writes "id receiver" lines to
PG_DRAFTS.
    submits.py ADDRESS KEY.pem CERT.pem COUNT CONCURRENCY SERVER_PID PG_DRAFTS"""
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

stubs.generate("common", "auth", "forms", "requests")
from esaylov.v1 import auth_pb2, auth_pb2_grpc, common_pb2, forms_pb2, requests_pb2, requests_pb2_grpc  # noqa: E402

address, key_path, cert_path = sys.argv[1], sys.argv[2], sys.argv[3]
count, concurrency, server_pid, pg_drafts = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
key = serialization.load_pem_private_key(open(key_path, "rb").read(), None)
cert = x509.load_pem_x509_certificate(open(cert_path, "rb").read())
options = [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary]
sign = lambda data: pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(cert, key, hashes.SHA256()).sign(serialization.Encoding.DER, options)
channel = grpc.insecure_channel(address)
auth, rs = auth_pb2_grpc.AuthServiceStub(channel), requests_pb2_grpc.RequestServiceStub(channel)

start = auth.StartSignatureLogin(auth_pb2.StartSignatureLoginRequest(), timeout=10)
token = auth.FinishSignatureLogin(auth_pb2.FinishSignatureLoginRequest(challenge_id=start.challenge_id, cms=sign(start.challenge)), timeout=10).token
md = (("authorization", f"Bearer {token}"),)
receivers = [r.commission_id for r in rs.ListReceivers(requests_pb2.ListReceiversRequest(
    campaign_id="demo", request_type=requests_pb2.REQUEST_TYPE_CANDIDATE_NOMINATION), metadata=md, timeout=30).receivers
    if r.kind == common_pb2.ORGANISATION_KIND_DISTRICT_ELECTION_COMMISSION]


def pinfl(female):
    body = f"{4 if female else 3}{random.randrange(1, 28):02d}{random.randrange(1, 13):02d}{random.randrange(50, 99)}{random.randrange(10**6):06d}"
    return body + str(sum(int(d) * (7, 3, 1)[i % 3] for i, d in enumerate(body)) % 10)


def form():
    nominees = [forms_pb2.ConstituencyNominee(
        person=forms_pb2.PersonDetails(pinfl=pinfl(i < 2), name=common_pb2.PersonName(last_name="Karimova", first_name="Dilnoza"),
                                       phone=f"+99890{random.randrange(10**7):07d}", occupation="teacher", workplace="School No. 5"),
        constituency_number=i + 1, party_member=True) for i in range(5)]
    return forms_pb2.RequestForm(candidate_nomination=forms_pb2.CandidateNominationForm(
        election_kind=common_pb2.ELECTION_KIND_DISTRICT_COUNCIL, nominees=nominees,
        party_decision=forms_pb2.DocumentReference(number="12/2026", date=common_pb2.CalendarDate(year=2026, month=11, day=30))))


def prepare(i, signed=True):
    receiver = receivers[i % len(receivers)]
    d = rs.CreateDraft(requests_pb2.CreateDraftRequest(campaign_id="demo", receiver_commission_id=receiver, form=form(),
                                                       idempotency_key=uuid.uuid4().hex), metadata=md, timeout=30)
    if not signed:
        return d.id, receiver
    p = rs.GetSigningPayload(requests_pb2.GetSigningPayloadRequest(request_id=d.id), metadata=md, timeout=30)
    return requests_pb2.SubmitRequestRequest(request_id=d.id, cms=sign(p.payload), payload_sha256=p.payload_sha256, idempotency_key=uuid.uuid4().hex)


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


def postgres_pids():
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if open(f"/proc/{p}/comm").read().strip() == "postgres":
                    out.append(int(p))
            except OSError:
                pass
    return out


lock = threading.Lock()
latencies, failures = [], [0]
queue = list(prepared)


def worker():
    while True:
        with lock:
            if not queue:
                return
            request = queue.pop()
        began = time.monotonic()
        try:
            rs.SubmitRequest(request, metadata=md, timeout=30)
            with lock:
                latencies.append(time.monotonic() - began)
        except grpc.RpcError as e:
            with lock:
                failures[0] += 1
                if failures[0] == 1:
                    print(f"submits: first failure: {e.code()} {e.details()}", file=sys.stderr)


hz = os.sysconf("SC_CLK_TCK")
pg = postgres_pids()
server_before, pg_before = cpu_ticks([server_pid]), cpu_ticks(pg)
began = time.monotonic()
threads = [threading.Thread(target=worker) for _ in range(concurrency)]
for t in threads:
    t.start()
for t in threads:
    t.join()
took = time.monotonic() - began
server_cpu = (cpu_ticks([server_pid]) - server_before) / hz
pg_cpu = (cpu_ticks(pg) - pg_before) / hz
latencies.sort()
done = len(latencies)
p99 = latencies[int(done * 0.99)] * 1000 if latencies else 0
print(f"submits: {done} in {took:.1f} s: {done / took:.0f}/s, p99 {p99:.1f} ms, "
      f"CPU per request: server {server_cpu / max(done, 1) * 1e6:.0f} us, PostgreSQL {pg_cpu / max(done, 1) * 1e6:.0f} us, failed {failures[0]}")

with concurrent.futures.ThreadPoolExecutor(16) as pool:
    drafts = list(pool.map(lambda i: prepare(i, signed=False), range(count)))
with open(pg_drafts, "w") as f:
    for rid, receiver in drafts:
        f.write(f"{rid}\t{receiver}\n")
