"""The audit log from outside (clause 13): a Python recomputation of the documented hash
encoding matches the chain the server returns; `esaylovctl audit verify` finds an edited, a
deleted, a reordered and a truncated event; the schema refuses edits and guards the directory."""
import hashlib
import json
import os
import random
import re
import subprocess

import grpc
import pytest

from identity import PKI, bearer, ctl, identity_server, sql

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))


def valid_pinfl():
    """A random PINFL with a valid date and check digit (weights 7, 3, 1; mod 10)."""
    body = "3" + "%02d" % random.randint(1, 28) + "%02d" % random.randint(1, 12) + "%02d" % random.randint(50, 99)
    body += "".join(random.choice("0123456789") for _ in range(6))
    check = sum(int(d) * (7, 3, 1)[i % 3] for i, d in enumerate(body)) % 10
    return body + str(check)


def netstring(s):
    b = s.encode()
    return str(len(b)).encode() + b":" + b + b","


def event_hash(v1, e):
    """audit.proto, AuditEvent.hash, byte for byte."""
    micros = e.at.seconds * 1_000_000 + e.at.nanos // 1000
    out = b"".join(netstring(x) for x in [
        "esaylov.audit.v1", e.previous_hash, str(e.sequence), str(micros), e.actor.organisation_id, e.actor.person_id,
        v1.audit_pb2.AuditAction.Name(e.action), e.subject_kind, e.subject_id, str(len(e.facts))])
    for k in sorted(e.facts, key=lambda k: k.encode()):
        out += netstring(k) + netstring(e.facts[k])
    return hashlib.sha256(out).hexdigest()


@pytest.fixture(scope="module")
def pki():
    return PKI()


@pytest.fixture(scope="module")
def auditor(pki):
    """A new auditor at the CEC, with a person's own certificate."""
    pid = "auditor-" + os.urandom(4).hex()
    ctl("directory", "add-person", "--id", pid, "--pinfl", valid_pinfl(), "--last-name", "Auditova", "--first-name", "Nodira")
    ctl("directory", "assign-role", "--organisation", "cec", "--person", pid, "--role", "auditor")
    return pid, pki.issue(pid)


@pytest.fixture(scope="module")
def session(v1, pki, auditor):
    # The checkpoints in the shared database may be signed by the server of Scripts/run.sh,
    # whose CA (.data/pki) a verifier must trust as well: the deployment's trust store holds
    # every CA whose keys signed checkpoints.
    import shutil
    dev = os.path.join(ROOT, ".data/pki/trust")
    for name in ("ca.pem", "crl.pem"):
        if os.path.exists(os.path.join(dev, name)):
            shutil.copy(os.path.join(dev, name), os.path.join(pki.trust, "dev-" + name))
    s = identity_server(pki, "--sign-in-per-minute", "10000")
    ch = grpc.insecure_channel(s.address)
    auth = v1.auth_pb2_grpc.AuthServiceStub(ch)
    start = auth.StartSignatureLogin(v1.auth_pb2.StartSignatureLoginRequest(act_as_organisation_id="cec"), timeout=10)
    token = auth.FinishSignatureLogin(v1.auth_pb2.FinishSignatureLoginRequest(
        challenge_id=start.challenge_id, cms=auditor[1].sign(start.challenge)), timeout=10).token
    yield v1.audit_pb2_grpc.AuditServiceStub(ch), token
    ch.close()
    s.stop()


def test_python_recomputes_the_chain_from_list_events(v1, session):
    audit, token = session
    # The server's chainer puts every written event into the chain within moments.
    from conftest import wait_for
    assert wait_for(lambda: sql("SELECT count(*) FROM audit_pending") == "0", timeout=10)
    events, page_token = [], ""
    while True:
        r = audit.ListEvents(v1.audit_pb2.ListEventsRequest(page=v1.common_pb2.PageRequest(page_size=500, page_token=page_token)),
                             metadata=bearer(token), timeout=60)
        events += r.events
        page_token = r.page.next_page_token
        if not page_token:
            break
    assert len(events) > 10
    previous = "0" * 64
    for i, e in enumerate(events):
        assert e.sequence == i + 1
        assert e.previous_hash == previous
        assert event_hash(v1, e) == e.hash, f"event {e.sequence}"
        assert e.actor.display_name == ""
        previous = e.hash
    # Logins and personal-data reads are among them, with ids only.
    actions = {e.action for e in events}
    assert v1.audit_pb2.AUDIT_ACTION_LOGIN in actions and v1.audit_pb2.AUDIT_ACTION_DIRECTORY_CHANGED in actions
    v = audit.VerifyChain(v1.audit_pb2.VerifyChainRequest(), metadata=bearer(token), timeout=60)
    assert v.intact and v.first_broken_sequence == 0 and v.head_sequence >= events[-1].sequence
    assert v.checked == v.head_sequence


def test_verify_chain_checks_its_arguments(v1, session):
    audit, token = session
    with pytest.raises(grpc.RpcError) as e:
        audit.VerifyChain(v1.audit_pb2.VerifyChainRequest(from_sequence=5, to_sequence=2), metadata=bearer(token), timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "to_sequence" in e.value.details()


def test_the_log_refuses_edits_and_deletes():
    for statement in ["UPDATE audit_events SET subject_id = 'x' WHERE sequence = 1", "DELETE FROM audit_events WHERE sequence = 1",
                      "TRUNCATE audit_events"]:
        r = subprocess.run([os.path.join(ROOT, "Scripts/pg.sh"), "psql", "-v", "ON_ERROR_STOP=1", "-c", statement],
                           capture_output=True, text=True)
        assert r.returncode != 0 and "append-only" in r.stderr, statement
    r = subprocess.run([os.path.join(ROOT, "Scripts/pg.sh"), "psql", "-v", "ON_ERROR_STOP=1", "-c",
                        "SELECT esaylov_audit_append('', 'p', 'AUDIT_ACTION_LOGIN', 'session', 's', '{}'); "
                        "UPDATE audit_pending SET subject_id = 'x'"], capture_output=True, text=True)
    assert r.returncode != 0 and "append-only" in r.stderr
    r = subprocess.run([os.path.join(ROOT, "Scripts/pg.sh"), "psql", "-v", "ON_ERROR_STOP=1", "-c",
                        "INSERT INTO audit_events (sequence, at, action, previous_hash, hash) "
                        "SELECT sequence + 1, now(), 'AUDIT_ACTION_LOGIN', hash, repeat('a', 64) FROM audit_head"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "extend the chain" in r.stderr


@pytest.fixture
def scratch(pki):
    """A database of its own, migrated, with a few events and a checkpoint: this test tampers
    with it as the superuser, past the schema's guards."""
    name = "esaylov_audit_" + os.urandom(4).hex()
    sql(f"CREATE DATABASE {name} OWNER esaylov", admin=True, database="postgres")
    url = re.sub(r"/[^/]*$", "/" + name, os.environ["ESAYLOV_DATABASE_URL"])
    ctl("migrate", database_url=url)
    for i in range(6):
        ctl("directory", "add-person", "--id", f"p-{i}", "--pinfl", valid_pinfl(), "--last-name", "Test", "--first-name", f"N{i}",
            database_url=url)
    ctl("audit", "checkpoint", pki=pki.root, database_url=url)
    yield name, url
    sql(f"DROP DATABASE {name} WITH (FORCE)", admin=True, database="postgres")


def verify(pki, url):
    return ctl("audit", "verify", pki=pki.root, database_url=url, check=False)


def tamper(name, statement):
    sql(f"SET session_replication_role = replica; {statement}", admin=True, database=name)


def test_audit_verify_finds_an_edited_event(pki, scratch):
    name, url = scratch
    r = verify(pki, url)
    assert r.returncode == 0 and "intact: 6 events" in r.stdout and "checkpoint at 6 intact" in r.stdout
    tamper(name, "UPDATE audit_events SET subject_id = 'p-9' WHERE sequence = 3")
    r = verify(pki, url)
    assert r.returncode == 5 and "BROKEN at event 3" in r.stderr and "changed" in r.stderr, r.stderr


def test_audit_verify_finds_a_deleted_event(pki, scratch):
    name, url = scratch
    tamper(name, "DELETE FROM audit_events WHERE sequence = 2")
    r = verify(pki, url)
    assert r.returncode == 5 and "BROKEN at event 2" in r.stderr and "missing" in r.stderr, r.stderr


def test_audit_verify_finds_reordered_events(pki, scratch):
    name, url = scratch
    tamper(name, "UPDATE audit_events SET sequence = sequence + 1000 WHERE sequence IN (3, 4); "
                 "UPDATE audit_events SET sequence = CASE sequence WHEN 1003 THEN 4 ELSE 3 END WHERE sequence IN (1003, 1004)")
    r = verify(pki, url)
    assert r.returncode == 5 and "BROKEN at event 3" in r.stderr, r.stderr


def test_audit_verify_finds_an_inserted_event(pki, scratch):
    name, url = scratch
    # A forger who knows the encoding: events from 4 on move up one, and a well-hashed event
    # takes place 4, linked to event 3. The event after it no longer links.
    tamper(name, "UPDATE audit_events SET sequence = sequence + 1000 WHERE sequence >= 4; "
                 "UPDATE audit_events SET sequence = sequence - 999 WHERE sequence > 1000; "
                 "INSERT INTO audit_events (sequence, at, actor_person_id, action, subject_kind, subject_id, facts, previous_hash, hash) "
                 "SELECT 4, now(), 'p-0', 'AUDIT_ACTION_LOGIN', 'session', 'forged', '{}', hash, "
                 "esaylov_audit_hash(hash, 4, now(), '', 'p-0', 'AUDIT_ACTION_LOGIN', 'session', 'forged', '{}') "
                 "FROM audit_events WHERE sequence = 3")
    r = verify(pki, url)
    assert r.returncode == 5 and "BROKEN at event 5" in r.stderr and "does not link" in r.stderr, r.stderr


def test_audit_verify_finds_a_truncated_tail_by_the_checkpoint(pki, scratch):
    name, url = scratch
    # The tail goes, and the head row is rewritten to match: only the signed checkpoint knows.
    tamper(name, "DELETE FROM audit_events WHERE sequence > 4; "
                 "UPDATE audit_head SET sequence = 4, hash = (SELECT hash FROM audit_events WHERE sequence = 4)")
    r = verify(pki, url)
    assert r.returncode == 5 and "truncated" in r.stderr and "checkpoint at 6 BROKEN" in r.stderr, r.stderr


def test_a_forged_checkpoint_is_not_trusted(pki, scratch):
    name, url = scratch
    # The signature's last byte, flipped: setting it to a constant left it unchanged whenever
    # it already was that value (one run in 256).
    tamper(name, "UPDATE audit_checkpoints SET cms = set_byte(cms, length(cms) - 1, get_byte(cms, length(cms) - 1) # 1)")
    r = verify(pki, url)
    assert r.returncode == 5 and "checkpoint at 6 BROKEN" in r.stderr and "signature" in r.stderr, r.stderr


def test_the_seed_refuses_a_database_with_operator_data(pki, scratch):
    name, url = scratch
    r = ctl("seed", "demo", database_url=url, check=False)
    assert r.returncode == 3 and "seed_refuses_operator_data" in (r.stdout + r.stderr), r.stderr
    assert sql("SELECT count(*) FROM organisations", admin=True, database=name) == "0"


# --- the directory guards itself ----------------------------------------------------------

def refused_sql(statement, constraint):
    r = subprocess.run([os.path.join(ROOT, "Scripts/pg.sh"), "psql", "-v", "ON_ERROR_STOP=1", "-c", statement],
                       capture_output=True, text=True)
    assert r.returncode != 0, statement
    return r.stderr


def test_the_database_refuses_a_role_that_does_not_fit_the_kind():
    err = refused_sql("INSERT INTO memberships (organisation_id, person_id, role) VALUES ('cec', 'seed-party-xdp-0', 'head')", "")
    assert "does not exist in an organisation of kind" in err
    err = refused_sql("INSERT INTO memberships (organisation_id, person_id, role) VALUES ('party-xdp', 'seed-cec-1', 'chairperson')", "")
    assert "does not exist in an organisation of kind" in err
    err = refused_sql("INSERT INTO memberships (organisation_id, person_id, role) VALUES ('tec-1726', 'seed-cec-1', 'auditor')", "")
    assert "does not exist in an organisation of kind" in err


def test_the_database_refuses_a_commission_under_a_non_commission():
    err = refused_sql("INSERT INTO organisations (id, kind, kind_order, name_uz, name_en, territory_soato, parent_id) "
                      "VALUES ('dec-bad', 'district_election_commission', 4, 'x', 'x', '1726', 'party-xdp')", "")
    assert "cannot sit under" in err


def test_the_database_refuses_a_certificate_of_someone_else():
    pinfl = sql("SELECT pinfl FROM people WHERE id = 'seed-cec-1'")
    err = refused_sql("INSERT INTO certificates (issuer, serial, sha256, subject_pinfl, not_before, not_after, person_id) "
                      f"VALUES ('/CN=x', 'abc', repeat('b', 64), '{pinfl}', now(), now() + interval '1 day', 'seed-cec-0')", "")
    assert "PINFL is not its person" in err
    own = sql("SELECT pinfl FROM people WHERE id = 'seed-cec-0'")
    err = refused_sql("INSERT INTO certificates (issuer, serial, sha256, subject_pinfl, subject_tin, not_before, not_after, person_id, "
                      f"organisation_id) VALUES ('/CN=x', 'abd', repeat('c', 64), '{own}', '299999999', now(), now() + interval '1 day', "
                      "'seed-cec-0', 'cec')", "")
    assert "TIN is not its organisation" in err


def test_a_membership_that_has_not_started_is_not_current():
    out = sql("BEGIN; INSERT INTO memberships (organisation_id, person_id, role, since) "
              "VALUES ('tec-1726', 'seed-cec-4', 'member', now() + interval '1 day'); "
              "SELECT count(*) FROM current_memberships WHERE person_id = 'seed-cec-4' AND organisation_id = 'tec-1726'; ROLLBACK")
    assert out.splitlines()[-1] == "0" or out.strip().endswith("0")
