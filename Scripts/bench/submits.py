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
import sys
import uuid

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402
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


def prepare(i, signed=True):
    receiver = receivers[i % len(receivers)]
    d = rs.CreateDraft(requests_pb2.CreateDraftRequest(campaign_id="demo", receiver_commission_id=receiver, form=load.nomination(forms_pb2, common_pb2),
                                                       idempotency_key=uuid.uuid4().hex), metadata=md, timeout=30)
    if not signed:
        return d.id, receiver
    p = rs.GetSigningPayload(requests_pb2.GetSigningPayloadRequest(request_id=d.id), metadata=md, timeout=30)
    return requests_pb2.SubmitRequestRequest(request_id=d.id, cms=sign(p.payload), payload_sha256=p.payload_sha256, idempotency_key=uuid.uuid4().hex)


with concurrent.futures.ThreadPoolExecutor(16) as pool:
    prepared = list(pool.map(prepare, range(count)))


load.measure("submits", "request", prepared, lambda request: rs.SubmitRequest(request, metadata=md, timeout=30), concurrency, server_pid)

with concurrent.futures.ThreadPoolExecutor(16) as pool:
    drafts = list(pool.map(lambda i: prepare(i, signed=False), range(count)))
with open(pg_drafts, "w") as f:
    for rid, receiver in drafts:
        f.write(f"{rid}\t{receiver}\n")
