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
import sys
import uuid

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402
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


def prepare(i, signed=True):
    commission = COMMISSIONS[i % len(COMMISSIONS)]
    secretary, chair = officers[commission]
    d = rs.CreateDraft(requests_pb2.CreateDraftRequest(campaign_id="demo", receiver_commission_id=commission, form=load.nomination(forms_pb2, common_pb2),
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


load.measure("approvals", "approval", prepared, lambda item: ds.ApproveDecision(item[1], metadata=item[0].md, timeout=30), concurrency, server_pid)

with concurrent.futures.ThreadPoolExecutor(16) as pool:
    drafts = list(pool.map(lambda i: prepare(i, signed=False), range(count)))
with open(pg_drafts, "w") as f:
    for draft, request, commission in drafts:
        f.write(f"{draft}\t{request}\t{commission}\n")
