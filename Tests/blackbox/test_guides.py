"""docs/guides: every guide runs, as an integrator would run it, against a real server with
keys of a development CA, and says what it did."""
import os
import subprocess
import sys

import pytest

from identity import PKI, deciding_server

GUIDES = os.path.join(os.path.dirname(__file__), "../../docs/guides")


@pytest.fixture(scope="module")
def pki():
    return PKI()


@pytest.fixture(scope="module")
def server(pki):
    s = deciding_server(pki)
    yield s
    s.stop()


def run(server, pki, guide, **people):
    args = [sys.executable, os.path.join(GUIDES, guide), "--address", server.address]
    for role, (person, organisation) in people.items():
        c = pki.issue(person, organisation)
        args += [f"--{role}-key", c.key, f"--{role}-cert", c.cert]
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_the_party_guide(server, pki):
    out = run(server, pki, "party.py", head=("seed-party-xdp-0", "party-xdp"))
    assert "nomination sent: incoming No. " in out and "observers sent: incoming No. " in out and "REQUEST_STATUS_SUBMITTED" in out


def test_the_commission_guide_decides_what_the_party_sent(server, pki):
    run(server, pki, "party.py", head=("seed-party-xdp-0", "party-xdp"))
    out = run(server, pki, "commission.py", secretary=("seed-dec-1726264-2", "dec-1726264"), chair=("seed-dec-1726264-0", "dec-1726264"))
    assert "decision No. " in out and "5 directory effects" in out and "organisation:party-xdp" in out


def test_the_mfa_guide(server, pki):
    out = run(server, pki, "mfa.py", head=("seed-mfa-0", "mfa"))
    assert "foreign observers sent: incoming No. " in out and "stations abroad sent: incoming No. " in out


def test_the_hokimiyat_guide(server, pki):
    out = run(server, pki, "hokimiyat.py", head=("seed-hokimiyat-1718203-0", "hokimiyat-1718203"))
    assert "polling stations sent" in out and "constituencies sent" in out and "to Bukhara: PERMISSION_DENIED" in out
