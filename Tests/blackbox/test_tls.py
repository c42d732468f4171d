"""HTTP/2 over TLS from outside: TLS 1.2/1.3 with modern ciphers only, ALPN h2 required,
mutual TLS with the client certificate's TIN/PINFL reaching the permission rules, SIGHUP
reload under an open stream, and the handshake's own bounds (time, number in progress)."""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import Server, wait_for
from identity import PKI, bearer, identity_server, login, refused, tls_channel, tls_client, tls_context, tls_flags

CHAIR = ("seed-cec-0", "cec")       # the CEC's chairperson; the CEC's TIN is 210000037
CEC_TIN = "210000037"
PARTY_TIN = "210000111"             # party-uzlidep


@pytest.fixture(scope="module")
def pki():
    return PKI()


@pytest.fixture(scope="module")
def server(pki):
    s = Server("esaylov-server", *tls_flags(pki))
    yield s
    s.stop()


def health(channel, timeout=5):
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout).status


def handshake(port, ctx):
    """The TLS socket after a handshake with `ctx`, or the SSL error it ended with."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        return ctx.wrap_socket(raw, server_hostname="localhost")
    except (ssl.SSLError, ConnectionResetError) as e:
        raw.close()
        return e


def served_serial(port, ctx):
    s = handshake(port, ctx)
    assert isinstance(s, ssl.SSLSocket), s
    der = s.getpeercert(binary_form=True)
    s.close()
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der, capture_output=True, check=True)
    return out.stdout.decode().strip().split("=")[1].lower().lstrip("0")


# --- the listener -----------------------------------------------------------------------

def test_grpcurl_lists_the_services_over_tls(server, pki):
    """The README's command: grpcurl -cacert <dev CA> 127.0.0.1:<tls port> list."""
    out = subprocess.run(["grpcurl", "-cacert", os.path.join(pki.root, "trust/ca.pem"), server.tls_address, "list"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "esaylov.v1.RequestService" in out.stdout and "grpc.health.v1.Health" in out.stdout


def test_grpcio_calls_over_tls_and_h2c_side_by_side(server, pki):
    with tls_channel(pki, server.tls_address) as ch:
        assert health(ch) == health_pb2.HealthCheckResponse.SERVING
    with grpc.insecure_channel(server.address) as ch:
        assert health(ch) == health_pb2.HealthCheckResponse.SERVING


def test_tls_13_and_12_are_spoken_with_forward_secret_aead_ciphers(server, pki):
    s = handshake(server.tls_port, tls_context(pki))
    assert s.version() == "TLSv1.3" and s.selected_alpn_protocol() == "h2"
    s.close()
    ctx = tls_context(pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    s = handshake(server.tls_port, ctx)
    assert s.version() == "TLSv1.2"
    name, _, _ = s.cipher()
    assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name), name
    s.close()


@pytest.mark.parametrize("alpn", [("http/1.1",), None])
def test_a_client_that_does_not_offer_h2_gets_the_no_application_protocol_alert(server, pki, alpn):
    e = handshake(server.tls_port, tls_context(pki, alpn=alpn))
    assert isinstance(e, ssl.SSLError) and "no application protocol" in str(e).lower().replace("_", " "), e


def test_old_protocols_and_weak_ciphers_are_refused(server):
    def s_client(*args):
        r = subprocess.run(["openssl", "s_client", "-connect", server.tls_address, "-alpn", "h2", *args],
                           input="", capture_output=True, text=True, timeout=30)
        return r.stdout + r.stderr
    assert "alert protocol version" in s_client("-tls1_1")
    # RSA key exchange (no forward secrecy) and CBC suites are not offered in TLS 1.2.
    assert "handshake failure" in s_client("-tls1_2", "-cipher", "AES128-SHA:AES256-SHA256")


def test_cleartext_http2_sent_to_the_tls_port_is_closed_and_the_server_serves_on(server, pki):
    s = socket.create_connection(("127.0.0.1", server.tls_port), timeout=5)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    data = b""
    try:
        while chunk := s.recv(4096):
            data += chunk
    except ConnectionResetError:
        pass
    s.close()
    assert not data.startswith(b"\x00\x00"), "no HTTP/2 frame answers a cleartext preface on the TLS port"
    with tls_channel(pki, server.tls_address) as ch:
        assert health(ch) == health_pb2.HealthCheckResponse.SERVING


def test_no_plaintext_serves_tls_only(pki):
    s = Server("esaylov-server", "--no-plaintext", *tls_flags(pki))
    try:
        assert s.port is None and s.tls_port
        with tls_channel(pki, s.tls_address) as ch:
            assert health(ch) == health_pb2.HealthCheckResponse.SERVING
    finally:
        s.stop()


@pytest.mark.parametrize("flags,expected", [
    (["--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"], "/nonexistent/cert.pem"),
    (["--tls-cert", "CERT"], "--tls-cert and --tls-key go together"),
    (["--no-plaintext"], "--no-plaintext needs --tls-cert"),
    (["--tls-client-ca", "CA"], "--tls-client-ca needs --tls-cert"),
    (["--tls-cert", "CERT", "--tls-key", "OTHERKEY"], "is not the key of"),
])
def test_invalid_tls_configuration_is_refused_at_start_naming_it(pki, flags, expected):
    swap = {"CERT": os.path.join(pki.root, "tls/cert.pem"), "OTHERKEY": os.path.join(pki.root, "server/key.pem"),
            "CA": os.path.join(pki.root, "trust/ca.pem")}
    from conftest import BIN_DIR
    r = subprocess.run([os.path.join(BIN_DIR, "esaylov-server"), "--port", "0", "--ops-port", "0", "--tls-port", "0",
                        *[swap.get(f, f) for f in flags]], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert expected in r.stderr, r.stderr
    assert "BEGIN" not in r.stderr     # no key material in the message


# --- mutual TLS -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mtls_server(pki):
    s = identity_server(pki, "--sign-in-per-minute", "10000", *tls_flags(pki, client_ca=True))
    yield s
    s.stop()


def test_under_mtls_a_client_without_a_certificate_is_refused(mtls_server, pki):
    e = handshake(mtls_server.tls_port, tls_context(pki))
    if isinstance(e, ssl.SSLSocket):
        # TLS 1.3: the server's alert arrives after the client's Finished, on first read.
        with pytest.raises((ssl.SSLError, ConnectionResetError)) as err:
            e.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            assert e.recv(100) == b""
        e = err.value
    assert "certificate required" in str(e).lower().replace("_", " ") or "handshake failure" in str(e).lower().replace("_", " "), e
    with tls_channel(pki, mtls_server.tls_address) as ch:
        with pytest.raises(grpc.RpcError) as err:
            health(ch)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_under_mtls_a_certificate_of_another_ca_is_refused(mtls_server, pki):
    other = PKI()
    stranger = tls_client(other, tin=CEC_TIN)
    with tls_channel(pki, mtls_server.tls_address, client=stranger) as ch:
        with pytest.raises(grpc.RpcError) as err:
            health(ch)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_an_agency_system_calls_with_its_certificate_and_its_own_sessions_only(mtls_server, pki, v1):
    """The certificate's TIN is the calling system's identity: a session of that organisation
    works on its connection; a session of another organisation is refused naming the rule."""
    cec_system = tls_client(pki, name="cec-system", tin=CEC_TIN)
    party_system = tls_client(pki, name="party-system", tin=PARTY_TIN)
    with grpc.insecure_channel(mtls_server.address) as plain:
        session = login(v1, v1.auth_pb2_grpc.AuthServiceStub(plain), pki.issue(*CHAIR))
    whoami = lambda ch: v1.auth_pb2_grpc.AuthServiceStub(ch).WhoAmI(
        v1.auth_pb2.WhoAmIRequest(), metadata=bearer(session.token), timeout=10)
    with tls_channel(pki, mtls_server.tls_address, client=cec_system) as ch:
        assert health(ch) == health_pb2.HealthCheckResponse.SERVING
        assert whoami(ch).organisation_id == "cec"
    with tls_channel(pki, mtls_server.tls_address, client=party_system) as ch:
        # Open methods need no session; the certificate alone got the connection in.
        assert health(ch) == health_pb2.HealthCheckResponse.SERVING
        e = refused(lambda: whoami(ch), grpc.StatusCode.PERMISSION_DENIED, "client certificate", "TIN")
        assert "mutual TLS" in e.details()
    nameless = tls_client(pki, name="nameless")
    with tls_channel(pki, mtls_server.tls_address, client=nameless) as ch:
        refused(lambda: whoami(ch), grpc.StatusCode.PERMISSION_DENIED, "neither a TIN nor a PINFL")


# --- reload -----------------------------------------------------------------------------

def test_sighup_picks_up_a_new_certificate_while_a_stream_stays_open(pki):
    root = os.path.join(pki.root, "reload")
    os.makedirs(root, exist_ok=True)
    cert, key = os.path.join(root, "cert.pem"), os.path.join(root, "key.pem")
    shutil.copy(os.path.join(pki.root, "tls/cert.pem"), cert)
    shutil.copy(os.path.join(pki.root, "tls/key.pem"), key)
    s = Server("esaylov-server", "--tls-cert", cert, "--tls-key", key)
    try:
        old = served_serial(s.tls_port, tls_context(pki))
        ch = tls_channel(pki, s.tls_address)
        watch = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(), timeout=60)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        # A new certificate from the same CA, written over the files, then SIGHUP.
        os.remove(os.path.join(pki.root, "tls/cert.pem"))
        from identity import ctl
        ctl("pki", "init", pki=pki.root)          # re-creates tls/ with a new key and serial
        shutil.copy(os.path.join(pki.root, "tls/cert.pem"), cert)
        shutil.copy(os.path.join(pki.root, "tls/key.pem"), key)
        s.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: served_serial(s.tls_port, tls_context(pki)) != old, timeout=5)
        # The stream and its connection go on with the certificate they began with.
        assert not watch.done()
        assert health(ch) == health_pb2.HealthCheckResponse.SERVING
        # A file that does not load leaves the certificate in use in place.
        current = served_serial(s.tls_port, tls_context(pki))
        open(key, "w").write("not a key\n")
        s.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert served_serial(s.tls_port, tls_context(pki)) == current
        assert not watch.done()
        watch.cancel()
        ch.close()
    finally:
        s.stop()
    assert "TLS certificate reloaded" in s.stderr and "TLS reload failed" in s.stderr
    assert "BEGIN" not in s.stderr


# --- handshake bounds -------------------------------------------------------------------

def test_a_silent_tls_client_is_dropped_after_the_handshake_timeout(pki):
    s = Server("esaylov-server", *tls_flags(pki), "--tls-handshake-timeout-ms", "300")
    try:
        sock = socket.create_connection(("127.0.0.1", s.tls_port), timeout=5)
        start = time.monotonic()
        assert sock.recv(10) == b""
        assert time.monotonic() - start < 3
        sock.close()
        status, body = s.ops("/metrics")
        assert 'esaylov_bounds_hit_total{bound="tls_handshake_timeout"} 1' in body
    finally:
        s.stop()


def test_handshakes_in_progress_are_capped_and_others_stay_served(pki):
    s = Server("esaylov-server", *tls_flags(pki), "--max-tls-handshakes", "2", "--tls-handshake-timeout-ms", "2000")
    try:
        held = [socket.create_connection(("127.0.0.1", s.tls_port), timeout=5) for _ in range(2)]
        time.sleep(0.2)
        # A third handshake is refused at once while two are in progress...
        third = socket.create_connection(("127.0.0.1", s.tls_port), timeout=5)
        try:
            assert third.recv(10) == b""
        except ConnectionResetError:
            pass
        third.close()
        # ...h2c goes on meanwhile...
        with grpc.insecure_channel(s.address) as ch:
            assert health(ch) == health_pb2.HealthCheckResponse.SERVING
        # ...and once they end, TLS clients get in again.
        for h in held:
            h.close()
        def tls_ok():
            try:
                with tls_channel(pki, s.tls_address) as ch:
                    return health(ch, timeout=2) == health_pb2.HealthCheckResponse.SERVING
            except grpc.RpcError:
                return False
        assert wait_for(tls_ok, timeout=5)
        status, body = s.ops("/metrics")
        assert 'esaylov_bounds_hit_total{bound="tls_handshakes"} 1' in body
    finally:
        s.stop()
