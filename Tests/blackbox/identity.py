"""Helpers of the identity tests: a private development CA, esaylovctl, the cluster's psql, and
sign-in flows through grpcio clients generated from Protos/."""
import base64
import json
import os
import re
import subprocess
import tempfile

import grpc
import pytest

from conftest import BIN_DIR, Server

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))


def ctl(*args, pki=None, check=True, database_url=None):
    env = dict(os.environ)
    if pki:
        env["ESAYLOV_PKI_DIR"] = pki
    if database_url:
        env["ESAYLOV_DATABASE_URL"] = database_url
    r = subprocess.run([os.path.join(BIN_DIR, "esaylovctl"), *args], capture_output=True, text=True, env=env, timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(f"esaylovctl {' '.join(args)} failed ({r.returncode}): {r.stdout} {r.stderr}")
    return r


def sql(statement, admin=False, database=None):
    """Runs SQL on the embedded cluster (as the esaylov role, or as the superuser)."""
    args = [os.path.join(ROOT, "Scripts/pg.sh"), "admin-psql" if admin else "psql", "-v", "ON_ERROR_STOP=1", "-Atq"]
    if admin:
        args += ["-d", database or "esaylov"]
    elif database:
        args += ["-d", database]
    r = subprocess.run(args + ["-c", statement], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


class PKI:
    """A development CA of the test's own, and certificates it issues for directory people."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="esaylov-pki-")
        ctl("pki", "init", pki=self.root)
        self.count = 0

    @property
    def trust(self):
        return os.path.join(self.root, "trust")

    def issue(self, person, organisation=None, key_type="ecdsa-p256", days=30, starts_in_days=0):
        self.count += 1
        out = os.path.join(self.root, "issued", f"{person}-{self.count}")
        args = ["pki", "issue", "--person", person, "--key-type", key_type, "--days", str(days),
                "--starts-in-days", str(starts_in_days), "--out", out]
        if organisation:
            args += ["--organisation", organisation]
        r = ctl(*args, pki=self.root)
        serial = re.search(r"certificate ([0-9a-f]+) issued", r.stdout).group(1)
        return Credential(os.path.join(out, "key.pem"), os.path.join(out, "cert.pem"), serial)

    def revoke(self, serial, ocsp_only=False):
        ctl("pki", "revoke", "--serial", serial, *(["--ocsp-only"] if ocsp_only else []), pki=self.root)


class Credential:
    def __init__(self, key, cert, serial):
        self.key, self.cert, self.serial = key, cert, serial

    def der(self):
        return subprocess.run(["openssl", "x509", "-in", self.cert, "-outform", "DER"], capture_output=True, check=True).stdout

    def sign(self, data, attached=False, timestamp_pki=None):
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(data)
        args = ["sign", "--key", self.key, "--cert", self.cert, "--in", f.name] + (["--attached"] if attached else [])
        if timestamp_pki:
            args.append("--timestamp")
        return base64.b64decode(ctl(*args, pki=timestamp_pki).stdout.strip())


def identity_server(pki, *extra, env=None):
    """A server trusting `pki`. It signs no audit checkpoints: the shared test database's
    checkpoints would otherwise be signed by keys of CAs that later runs do not trust."""
    outbox = os.path.join(pki.root, f"outbox-{os.urandom(4).hex()}.jsonl")
    s = Server("esaylov-server", "--trust-store", pki.trust, "--sms-outbox", outbox, *extra, env=env)
    s.outbox = outbox
    return s


def deciding_server(pki, *extra, sign_ins="10000", env=None):
    """A server trusting `pki` that signs decision receipts with its server key (no audit
    checkpoints, as `identity_server`), with room for many sign-ins."""
    return identity_server(pki, "--sign-in-per-minute", sign_ins, "--signing-key", os.path.join(pki.root, "server/key.pem"),
                           "--signing-cert", os.path.join(pki.root, "server/cert.pem"), "--audit-checkpoint-every", "0", *extra, env=env)


def outbox_lines(server):
    return len(open(server.outbox).read().splitlines()) if os.path.exists(server.outbox) else 0


def code_for(server, phone, after=0, timeout=10.0):
    """The code of the first message sent to `phone` after line `after` of the outbox file."""
    import time
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(server.outbox):
            for line in open(server.outbox).read().splitlines()[after:]:
                m = json.loads(line)
                code = re.search(r"\b(\d{6})\b", m["body"]) if m["phone"] == phone else None
                if code:    # (other messages, such as a decision's notice, carry no code)
                    return code.group(1)
        time.sleep(0.05)
    raise AssertionError(f"no SMS reached {phone}")


def forget_codes(phone):
    """Clears the per-phone resend limit between tests (the test owns the database)."""
    sql(f"DELETE FROM sms_attempts WHERE phone = '{phone}'")


def bearer(token):
    return (("authorization", f"Bearer {token}"),)


def refused(call, code, *fragments):
    with pytest.raises(grpc.RpcError) as e:
        call()
    assert e.value.code() == code, e.value.details()
    for f in fragments:
        assert f in e.value.details(), e.value.details()
    return e.value


def sign_in(v1, auth, credential, act_as="", certificate=b"", tamper=None):
    start = auth.StartSignatureLogin(
        v1.auth_pb2.StartSignatureLoginRequest(certificate=certificate, act_as_organisation_id=act_as), timeout=10)
    challenge = start.challenge if tamper is None else tamper(start.challenge)
    cms = credential.sign(challenge)
    return start, lambda: auth.FinishSignatureLogin(
        v1.auth_pb2.FinishSignatureLoginRequest(challenge_id=start.challenge_id, cms=cms), timeout=10)


def login(v1, auth, credential, **kw):
    _, finish = sign_in(v1, auth, credential, **kw)
    return finish()


def sms_login(v1, auth, server, phone):
    forget_codes(phone)
    seen = outbox_lines(server)
    attempt = auth.RequestSmsCode(v1.auth_pb2.RequestSmsCodeRequest(phone=phone), timeout=10)
    code = code_for(server, phone, after=seen)
    return attempt, code, lambda c=code: auth.VerifySmsCode(
        v1.auth_pb2.VerifySmsCodeRequest(attempt_id=attempt.attempt_id, code=c, phone=phone), timeout=10)


def tls_flags(pki, client_ca=False):
    """Server flags for TLS with `pki`'s server certificate (and its CA as the client CA)."""
    flags = ["--tls-cert", os.path.join(pki.root, "tls/cert.pem"), "--tls-key", os.path.join(pki.root, "tls/key.pem")]
    return flags + (["--tls-client-ca", os.path.join(pki.root, "trust/ca.pem")] if client_ca else [])


def tls_client(pki, name=None, tin=None, pinfl=None):
    """A mutual-TLS client key and certificate issued by `pki` (an agency system's identity)."""
    args = ["pki", "issue-tls-client", "--name", name or f"client-{os.urandom(3).hex()}"]
    if tin:
        args += ["--tin", tin]
    if pinfl:
        args += ["--pinfl", pinfl]
    out = os.path.join(pki.root, "clients", args[3])
    ctl(*args, "--out", out, pki=pki.root)
    return Credential(os.path.join(out, "key.pem"), os.path.join(out, "cert.pem"), None)


def tls_context(pki, client=None, alpn=("h2",)):
    """An ssl context trusting `pki`'s CA, offering `alpn`, presenting `client` when given."""
    import ssl
    ctx = ssl.create_default_context(cafile=os.path.join(pki.root, "trust/ca.pem"))
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if client:
        ctx.load_cert_chain(client.cert, client.key)
    return ctx


def tls_channel(pki, address, client=None):
    """A grpcio channel over TLS to `address`, checking the server's certificate for localhost."""
    root = open(os.path.join(pki.root, "trust/ca.pem"), "rb").read()
    key = open(client.key, "rb").read() if client else None
    chain = open(client.cert, "rb").read() if client else None
    creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)
    return grpc.secure_channel(address, creds, options=(("grpc.ssl_target_name_override", "localhost"),))
