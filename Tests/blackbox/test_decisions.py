"""Decisions from outside (clauses 10-12): review, drafts by the deputy chairperson or secretary,
approval with the EDS of the chairperson or deputy chairperson, the numbered decision, its
directory effects and the sender's copy in one transaction, and the system's receipt, which
stock `openssl cms -verify` checks."""
import datetime
import json
import os
import re
import subprocess
import tempfile
import threading
import types

import grpc
import pytest

from conftest import wait_for
from identity import PKI, bearer, ctl, deciding_server, login, refused, sms_login, sql
from test_requests import Sender, key, nomination, org, person, person_session, upload

PARTY = ("seed-party-xdp-0", "party-xdp")
DISTRICT = "dec-1726264"


@pytest.fixture(scope="module")
def pki():
    return PKI()


@pytest.fixture(scope="module")
def server(pki):
    s = deciding_server(pki)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def stubs(server, v1):
    ch = grpc.insecure_channel(server.address)
    yield v1.auth_pb2_grpc.AuthServiceStub(ch), v1.requests_pb2_grpc.RequestServiceStub(ch), v1.decisions_pb2_grpc.DecisionServiceStub(ch)
    ch.close()


class Commission:
    """The district commission's officers, each signed in."""

    def __init__(self, v1, stubs, pki, commission=DISTRICT):
        auth, requests, decisions = stubs
        self.v1, self.ds = v1, decisions
        self.people = {}
        # The seed's officers of every commission: 0 chairperson, 1 deputy, 2 secretary, 3 member.
        for i, name in enumerate(("chair", "deputy", "secretary", "member")):
            credential = pki.issue(f"seed-{commission}-{i}", commission)
            self.people[name] = (bearer(login(v1, auth, credential).token), credential)

    def call(self, who, name, message):
        return getattr(self.ds, name)(message, metadata=self.people[who][0], timeout=30)

    def review(self, request_id, who="member"):
        return self.call(who, "StartReview", self.v1.decisions_pb2.StartReviewRequest(request_id=request_id, idempotency_key=key()))

    def draft(self, request_id, outcome=None, who="secretary", text="The commission registers the candidates.", **kw):
        d = self.v1.decisions_pb2
        return self.call(who, "DraftDecision", d.DraftDecisionRequest(
            request_id=request_id, outcome=outcome or d.DECISION_OUTCOME_GRANTED, text=text, idempotency_key=key(), **kw))

    def approve(self, draft_id, who="chair", signer=None, idempotency_key=None):
        d = self.v1.decisions_pb2
        p = self.call(who, "GetApprovalPayload", d.GetApprovalPayloadRequest(draft_id=draft_id))
        cms = (signer or self.people[who][1]).sign(p.payload)
        return self.call(who, "ApproveDecision", d.ApproveDecisionRequest(
            draft_id=draft_id, cms=cms, payload_sha256=p.payload_sha256, idempotency_key=idempotency_key or key()))


@pytest.fixture(scope="module")
def party(v1, stubs, pki):
    auth, requests, _ = stubs
    return org(v1, (auth, requests), pki, PARTY)


@pytest.fixture(scope="module")
def commission(v1, stubs, pki):
    return Commission(v1, stubs, pki)


def test_a_nomination_is_reviewed_drafted_approved_and_its_candidates_can_sign_in(v1, stubs, server, pki, party, commission):
    r, d = v1.requests_pb2, v1.decisions_pb2
    form = nomination(v1, women=2, men=3)
    sent = party.send("dec-1726264", form)
    commission.review(sent.id)
    draft = commission.draft(sent.id)
    assert draft.status == d.DRAFT_STATUS_PENDING and draft.version == 1
    decision = commission.approve(draft.id)
    assert re.fullmatch(r"No\. \d+/20\d\d", decision.number), decision.number
    assert decision.outcome == d.DECISION_OUTCOME_GRANTED and decision.request_id == sent.id
    registered = [e for e in decision.effects if e.kind == d.DirectoryEffect.KIND_CANDIDATE_REGISTERED]
    assert [e.item_index for e in registered] == [0, 1, 2, 3, 4]
    assert decision.delivered_at.seconds and {"organisation:party-xdp"} <= {a.display_name for a in decision.delivered_to}
    assert {f"candidate:{e.record_id}" for e in registered} <= {a.display_name for a in decision.delivered_to}
    # The party reads the decision on its request; the request is decided.
    got = party.call("GetRequest", r.GetRequestRequest(request_id=sent.id))
    assert got.status == r.REQUEST_STATUS_DECIDED and got.decision_id == decision.id
    assert v1.decisions_pb2_grpc.DecisionServiceStub(grpc.insecure_channel(server.address)).GetDecision(
        d.GetDecisionRequest(decision_id=decision.id), metadata=party.md, timeout=30).number == decision.number
    # The receipt verifies with stock openssl against the CA; its content binds the number.
    with tempfile.TemporaryDirectory() as t:
        open(f"{t}/receipt.der", "wb").write(decision.receipt_cms)
        out = subprocess.run(["openssl", "cms", "-verify", "-inform", "DER", "-in", f"{t}/receipt.der", "-CAfile",
                              os.path.join(pki.root, "trust/ca.pem"), "-purpose", "any", "-out", f"{t}/receipt.bin"],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        receipt = d.DecisionReceipt.FromString(open(f"{t}/receipt.bin", "rb").read())
    assert receipt.number == decision.number and receipt.decision_id == decision.id and receipt.approval_envelope == decision.approval_envelope
    if os.environ.get("ESAYLOV_WRITE_VECTORS"):
        # docs/vectors: the bytes of this run, for integrators (regenerate: ESAYLOV_WRITE_VECTORS=1).
        out = os.path.join(os.path.dirname(__file__), "../../docs/vectors")
        os.makedirs(out, exist_ok=True)
        for name, data in (("request-envelope.bin", got.envelope), ("request.cms", got.signature.cms),
                           ("decision-envelope.bin", decision.approval_envelope), ("approval.cms", decision.approval.cms),
                           ("receipt.cms", decision.receipt_cms), ("ca.pem", open(os.path.join(pki.root, "trust/ca.pem"), "rb").read()),
                           ("at.txt", f"{decision.approved_at.seconds}\n".encode())):
            open(os.path.join(out, name), "wb").write(data)
    # Every registered candidate gets an SMS notice through the outbox, naming the decision only.
    phone = form.candidate_nomination.nominees[0].person.phone
    def notices():
        if not os.path.exists(server.outbox):
            return []
        return [json.loads(line) for line in open(server.outbox).read().splitlines()]
    assert wait_for(lambda: {n.person.phone for n in form.candidate_nomination.nominees}
                    <= {m["phone"] for m in notices() if decision.number in m["body"]}, timeout=10)
    assert not any(n.person.pinfl in m["body"] for m in notices() for n in form.candidate_nomination.nominees)
    # The first candidate signs in by SMS with the phone of the form, and registers proxies.
    candidate = person_session(v1, stubs[:2], server, phone)
    proxies = v1.forms_pb2.RequestForm(proxy_registration=v1.forms_pb2.ProxyRegistrationForm(
        proxies=[v1.forms_pb2.ProxyEntry(person=person(v1)), v1.forms_pb2.ProxyEntry(person=person(v1, female=True))]))
    sent2 = candidate.send("dec-1726264", proxies)
    commission.review(sent2.id)
    second = commission.approve(commission.draft(sent2.id, text="Proxies registered.").id, who="deputy")
    kinds = [e.kind for e in second.effects]
    assert kinds == [d.DirectoryEffect.KIND_PROXY_REGISTERED] * 2
    n1, n2 = (int(x.number.split(" ")[1].split("/")[0]) for x in (decision, second))
    assert n2 > n1


def test_every_refusal_names_its_rule(v1, party, commission):
    r, d = v1.requests_pb2, v1.decisions_pb2
    sent = party.send("dec-1726264", nomination(v1, 2, 3))
    refused(lambda: commission.draft(sent.id), grpc.StatusCode.FAILED_PRECONDITION, "state submitted")
    commission.review(sent.id)
    refused(lambda: commission.draft(sent.id, who="member"), grpc.StatusCode.PERMISSION_DENIED, "draftDecisions")
    refused(lambda: commission.draft(sent.id, outcome=d.DECISION_OUTCOME_RETURNED), grpc.StatusCode.INVALID_ARGUMENT, "correction_days")
    draft = commission.draft(sent.id)
    refused(lambda: commission.approve(draft.id, who="secretary"), grpc.StatusCode.PERMISSION_DENIED, "approveDecisions")
    # A login signature (or any other bytes) is not an approval.
    challenge = commission.people["chair"][1].sign(v1.common_pb2.SignedEnvelope(
        purpose=v1.common_pb2.SIGNATURE_PURPOSE_LOGIN_CHALLENGE, body=b"x").SerializeToString())
    p = commission.call("chair", "GetApprovalPayload", d.GetApprovalPayloadRequest(draft_id=draft.id))
    refused(lambda: commission.call("chair", "ApproveDecision", d.ApproveDecisionRequest(
        draft_id=draft.id, cms=challenge, payload_sha256=p.payload_sha256, idempotency_key=key())), grpc.StatusCode.UNAUTHENTICATED, "signature")
    k = key()
    p = commission.call("chair", "GetApprovalPayload", d.GetApprovalPayloadRequest(draft_id=draft.id))
    approval = d.ApproveDecisionRequest(draft_id=draft.id, cms=commission.people["chair"][1].sign(p.payload), payload_sha256=p.payload_sha256,
                                        idempotency_key=k)
    first = commission.call("chair", "ApproveDecision", approval)
    assert commission.call("chair", "ApproveDecision", approval).number == first.number      # a retry with the key
    refused(lambda: commission.approve(draft.id), grpc.StatusCode.FAILED_PRECONDITION, "approved")
    refused(lambda: party.call("WithdrawRequest", r.WithdrawRequestRequest(request_id=sent.id)), grpc.StatusCode.FAILED_PRECONDITION, "decided")
    # A withdrawn request gets no draft.
    other = party.send("dec-1726264", nomination(v1, 2, 3))
    commission.review(other.id)
    party.call("WithdrawRequest", r.WithdrawRequestRequest(request_id=other.id))
    refused(lambda: commission.draft(other.id), grpc.StatusCode.FAILED_PRECONDITION, "withdrawn")
    assert first.number


def test_a_returned_draft_goes_back_and_two_approvals_racing_get_consecutive_numbers(v1, party, commission):
    d = v1.decisions_pb2
    sent = [party.send("dec-1726264", nomination(v1, 2, 3)) for _ in range(3)]
    for s in sent:
        commission.review(s.id)
    first = commission.draft(sent[0].id)
    back = commission.call("chair", "ReturnDraft", d.ReturnDraftRequest(draft_id=first.id, comment="Name the congress.", idempotency_key=key()))
    assert back.status == d.DRAFT_STATUS_RETURNED
    refused(lambda: commission.approve(first.id), grpc.StatusCode.FAILED_PRECONDITION, "returned")
    drafts = [commission.draft(s.id) for s in sent[1:]]
    results = []
    threads = [threading.Thread(target=lambda x=x: results.append(commission.approve(x.id))) for x in drafts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    numbers = sorted(int(x.number.split(" ")[1].split("/")[0]) for x in results)
    assert len(numbers) == 2 and numbers[1] == numbers[0] + 1


def test_a_decision_carries_the_commissions_files_bound_by_the_approvers_signature(v1, stubs, party, commission):
    d, r = v1.decisions_pb2, v1.requests_pb2
    secretary = types.SimpleNamespace(rs=stubs[1], md=commission.people["secretary"][0])
    protocol = b"%PDF-1.4 protocol of the session " + os.urandom(64)
    sha = upload(secretary, v1, protocol, name="protocol.pdf").sha256
    sent = party.send("dec-1726264", nomination(v1, 2, 3))
    commission.review(sent.id)
    # A file the commission did not upload (the party's own) is refused, naming the entry.
    theirs = upload(party, v1, b"%PDF-1.4 the party's " + os.urandom(32)).sha256
    refused(lambda: commission.draft(sent.id, attachment_sha256=[sha, theirs]), grpc.StatusCode.INVALID_ARGUMENT, "attachment_sha256[1]")
    draft = commission.draft(sent.id, attachment_sha256=[sha])
    assert list(draft.attachment_sha256) == [sha]
    # The approver signs the files' SHA-256s with the rest of the decision.
    p = commission.call("chair", "GetApprovalPayload", d.GetApprovalPayloadRequest(draft_id=draft.id))
    envelope = v1.common_pb2.SignedEnvelope.FromString(p.payload)
    assert list(d.DecisionEnvelope.FromString(envelope.body).attachment_sha256) == [sha]
    decision = commission.approve(draft.id)
    assert [(a.sha256, a.file_name, a.size_bytes) for a in decision.attachments] == [(sha, "protocol.pdf", len(protocol))]
    # The party downloads it through its request.
    chunks = party.rs.DownloadAttachment(r.DownloadAttachmentRequest(request_id=sent.id, sha256=sha), metadata=party.md, timeout=30)
    assert b"".join(c.data for c in chunks) == protocol


def test_an_exported_decision_verifies_with_openssl_alone(v1, pki, party, commission):
    d = v1.decisions_pb2
    sent = party.send("dec-1726264", nomination(v1, 2, 3))
    commission.review(sent.id)
    decision = commission.approve(commission.draft(sent.id, outcome=d.DECISION_OUTCOME_REFUSED, text="Refused: no congress decision.").id)
    assert list(decision.effects) == []            # a refusal changes nothing in the directory
    with tempfile.TemporaryDirectory() as out:
        ctl("decision", "export", "--commission", "dec-1726264", "--number", decision.number, "--out", out, pki=pki.root)
        commands = [line.strip() for line in open(f"{out}/VERIFY.txt") if line.strip().startswith("openssl cms -verify")]
        assert len(commands) == 2
        for c in commands:
            r = subprocess.run(c, shell=True, cwd=out, capture_output=True, text=True)
            assert r.returncode == 0 and "Verification successful" in r.stderr, (c, r.stderr)
        receipt = d.DecisionReceipt.FromString(open(f"{out}/receipt.bin", "rb").read())
        assert receipt.number == decision.number and receipt.approval_envelope == open(f"{out}/approval-envelope.bin", "rb").read()
        # A byte changed in what the approver signed no longer verifies.
        envelope = bytearray(open(f"{out}/approval-envelope.bin", "rb").read())
        envelope[-1] ^= 1
        open(f"{out}/approval-envelope.bin", "wb").write(bytes(envelope))
        assert subprocess.run(commands[0], shell=True, cwd=out, capture_output=True).returncode != 0


def test_the_mfas_foreign_observers_are_accredited_by_the_cec_item_by_item(v1, stubs, pki):
    r, c, f, d = v1.requests_pb2, v1.common_pb2, v1.forms_pb2, v1.decisions_pb2
    auth, requests, decisions = stubs
    mfa = org(v1, (auth, requests), pki, ("seed-mfa-0", "mfa"))
    form = f.RequestForm(foreign_observer_accreditation=f.ForeignObserverAccreditationForm(observers=[
        f.ForeignObserverEntry(name=c.PersonName(last_name="Smith", first_name="Anna"), passport_number="X1234567", country="GB", organisation="OSCE/ODIHR"),
        f.ForeignObserverEntry(name=c.PersonName(last_name="Novak", first_name="Jan"), passport_number="Y7654321", country="CZ", organisation="OSCE/ODIHR")]))
    sent = mfa.send("cec", form)
    cec = {}
    for name, who in (("chair", "seed-cec-0"), ("secretary", "seed-cec-2")):
        cred = pki.issue(who, "cec")
        cec[name] = (bearer(login(v1, auth, cred).token), cred)
    decisions.StartReview(d.StartReviewRequest(request_id=sent.id), metadata=cec["secretary"][0], timeout=30)
    partly = d.DraftDecisionRequest(request_id=sent.id, outcome=d.DECISION_OUTCOME_PARTLY_GRANTED, text="One accredited, one refused.",
                                    item_outcomes=[d.ItemOutcome(item_index=0, outcome=d.DECISION_OUTCOME_GRANTED),
                                                   d.ItemOutcome(item_index=1, outcome=d.DECISION_OUTCOME_REFUSED)])
    e = refused(lambda: decisions.DraftDecision(partly, metadata=cec["secretary"][0], timeout=30), grpc.StatusCode.INVALID_ARGUMENT, "reason")
    partly.item_outcomes[1].reason = "the passport has expired"
    draft = decisions.DraftDecision(partly, metadata=cec["secretary"][0], timeout=30)
    p = decisions.GetApprovalPayload(d.GetApprovalPayloadRequest(draft_id=draft.id), metadata=cec["chair"][0], timeout=30)
    decision = decisions.ApproveDecision(d.ApproveDecisionRequest(draft_id=draft.id, cms=cec["chair"][1].sign(p.payload), payload_sha256=p.payload_sha256,
                                                                  idempotency_key=key()), metadata=cec["chair"][0], timeout=30)
    assert [(x.kind, x.item_index) for x in decision.effects] == [(d.DirectoryEffect.KIND_MANDATE_ISSUED, 0)]
    number = decision.number.split(" ")[1]
    assert decision.effects[0].document_number == f"cec:{number}-1"
    assert sql(f"SELECT holder_passport FROM mandates WHERE id = '{decision.effects[0].record_id}'") == "X1234567"
    assert "organisation:mfa" in {a.display_name for a in decision.delivered_to}
    got = mfa.call("GetRequest", r.GetRequestRequest(request_id=sent.id))
    assert got.status == r.REQUEST_STATUS_DECIDED
    # The receipt's signer is the system certificate anyone can fetch.
    chain = decisions.GetSystemCertificates(d.GetSystemCertificatesRequest(), timeout=30).certificates
    with tempfile.TemporaryDirectory() as t:
        open(f"{t}/r.der", "wb").write(decision.receipt_cms)
        open(f"{t}/system.der", "wb").write(chain[0])
        system = subprocess.run(["openssl", "x509", "-inform", "DER", "-in", f"{t}/system.der", "-noout", "-fingerprint", "-sha256"],
                                capture_output=True, text=True).stdout
        inside = subprocess.run(f"openssl pkcs7 -inform DER -in {t}/r.der -print_certs | openssl x509 -noout -fingerprint -sha256",
                                shell=True, capture_output=True, text=True).stdout
        # The chain, leaf first: the leaf verifies against the CA that follows it, with openssl alone.
        open(f"{t}/ca.der", "wb").write(chain[-1])
        subprocess.run(["openssl", "x509", "-inform", "DER", "-in", f"{t}/ca.der", "-out", f"{t}/ca.pem"], check=True)
        subprocess.run(["openssl", "x509", "-inform", "DER", "-in", f"{t}/system.der", "-out", f"{t}/system.pem"], check=True)
        verified = subprocess.run(["openssl", "verify", "-CAfile", f"{t}/ca.pem", f"{t}/system.pem"], capture_output=True, text=True)
    assert len(chain) == 2 and system.startswith("sha256 Fingerprint=") and inside == system
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_campaign_may_forbid_the_drafter_to_approve_and_a_withdrawal_ends_the_candidacy(v1, stubs, server, pki, party, commission):
    r, f, d = v1.requests_pb2, v1.forms_pb2, v1.decisions_pb2
    # The deputy chairperson may draft and approve the same decision (clauses 11 and 12) ...
    sent = party.send("dec-1726264", nomination(v1, 2, 3))
    commission.review(sent.id)
    own = commission.draft(sent.id, who="deputy")
    assert commission.approve(own.id, who="deputy").number
    # ... unless the campaign forbids it.
    ctl("campaign", "settings", "--id", "demo", "--forbid-drafter-approving", "true")
    try:
        sent = party.send("dec-1726264", nomination(v1, 2, 3))
        commission.review(sent.id)
        own = commission.draft(sent.id, who="deputy")
        refused(lambda: commission.approve(own.id, who="deputy"), grpc.StatusCode.PERMISSION_DENIED, "forbids the drafter")
        assert commission.approve(own.id, who="chair").number
    finally:
        ctl("campaign", "settings", "--id", "demo", "--forbid-drafter-approving", "false")
    # A registered candidate withdraws; the decision on it ends the candidacy and its SMS login.
    form = nomination(v1, 2, 3)
    sent = party.send("dec-1726264", form)
    commission.review(sent.id)
    registered = commission.approve(commission.draft(sent.id).id)
    cid = registered.effects[0].record_id
    candidate = person_session(v1, stubs[:2], server, form.candidate_nomination.nominees[0].person.phone)
    withdrawal = candidate.send("dec-1726264", f.RequestForm(candidate_withdrawal=f.CandidateWithdrawalForm(statement="I withdraw.")))
    commission.review(withdrawal.id)
    ended = commission.approve(commission.draft(withdrawal.id, outcome=d.DECISION_OUTCOME_ACCEPTED, text="Registration cancelled.").id)
    assert [(e.kind, e.record_id) for e in ended.effects] == [(d.DirectoryEffect.KIND_CANDIDATE_ENDED, cid)]
    assert sql(f"SELECT status FROM candidates WHERE id = '{cid}'") == "withdrawn"
    refused(lambda: candidate.draft("dec-1726264", f.RequestForm(candidate_withdrawal=f.CandidateWithdrawalForm(statement="again"))),
            grpc.StatusCode.PERMISSION_DENIED, "withdrawn")


VECTORS = os.path.join(os.path.dirname(__file__), "../../docs/vectors")


def test_the_documented_vectors_still_verify_and_decode(v1):
    """docs/vectors: a signed request, the decision on it, its approval and its receipt, checked
    with stock openssl as of their day and decoded with the current protos."""
    import hashlib
    at = open(f"{VECTORS}/at.txt").read().strip()
    for content, cms in (("request-envelope.bin", "request.cms"), ("decision-envelope.bin", "approval.cms")):
        r = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", cms, "-content", content, "-CAfile", "ca.pem",
                            "-purpose", "any", "-attime", at, "-out", "/dev/null"], cwd=VECTORS, capture_output=True, text=True)
        assert r.returncode == 0, (cms, r.stderr)
    r = subprocess.run(["openssl", "cms", "-verify", "-inform", "DER", "-in", "receipt.cms", "-CAfile", "ca.pem", "-purpose", "any",
                        "-attime", at], cwd=VECTORS, capture_output=True)
    assert r.returncode == 0, r.stderr
    receipt = v1.decisions_pb2.DecisionReceipt.FromString(r.stdout)
    request_env = open(f"{VECTORS}/request-envelope.bin", "rb").read()
    decision_env = open(f"{VECTORS}/decision-envelope.bin", "rb").read()
    outer = v1.common_pb2.SignedEnvelope.FromString(request_env)
    assert outer.purpose == v1.common_pb2.SIGNATURE_PURPOSE_REQUEST
    request = v1.requests_pb2.RequestEnvelope.FromString(outer.body)
    outer = v1.common_pb2.SignedEnvelope.FromString(decision_env)
    assert outer.purpose == v1.common_pb2.SIGNATURE_PURPOSE_DECISION
    decision = v1.decisions_pb2.DecisionEnvelope.FromString(outer.body)
    assert decision.request_id == request.request_id and decision.request_envelope_sha256 == hashlib.sha256(request_env).hexdigest()
    assert receipt.approval_envelope == decision_env and receipt.request_envelope_sha256 == decision.request_envelope_sha256
    assert receipt.number.startswith("No. ")
