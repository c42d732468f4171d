"""Configuration from outside: every flag documented by --help and also read from the
environment (the command line wins), the effective configuration logged at start with the
database password masked, and invalid configuration refused before anything starts, naming
the flag (and the variable it came from)."""
import os
import re
import socket
import subprocess
import time

from conftest import BIN_DIR, Server

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))


def run(binary, *args, env=None):
    return subprocess.run([os.path.join(BIN_DIR, binary), *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})})


def test_help_documents_every_flag_and_the_environment():
    r = run("esaylov-server", "--help")
    assert r.returncode == 0, r.stderr
    flags = set(re.findall(r"^\s+(--[a-z0-9-]+)", r.stdout, re.M))
    for f in ("--port", "--tls-cert", "--tls-client-ca", "--no-plaintext", "--max-connections", "--db-pool", "--log-format",
              "--trust-store", "--signing-key", "--ops-port", "--watch-heartbeat", "--metrics-sample-seconds"):
        assert f in flags, f
    # Each option says what it does and its default, where it has one.
    assert re.search(r"--max-connections <max-connections>\s+\S.{0,200}?\(default:\s+4096\)", r.stdout, re.S)
    assert "ESAYLOV_" in r.stdout and "environment" in r.stdout
    interop = run("esaylov-interop-server", "--help")
    assert interop.returncode == 0 and "--max-streams" in interop.stdout and "--trust-store" not in interop.stdout


def test_flags_come_from_the_environment_and_the_command_line_wins():
    s = Server("esaylov-server", "--log-format", "json", env={"ESAYLOV_MAX_CONNECTIONS": "1", "ESAYLOV_PORT": "1", "ESAYLOV_LOG_FORMAT": "text"})
    try:
        # --port 0 (the test's) beat ESAYLOV_PORT=1; ESAYLOV_MAX_CONNECTIONS=1 holds.
        assert s.port != 1
        first = socket.create_connection(("127.0.0.1", s.port), timeout=3)
        time.sleep(0.2)
        second = socket.create_connection(("127.0.0.1", s.port), timeout=3)
        second.settimeout(2)
        try:
            assert second.recv(10) == b""
        except ConnectionResetError:
            pass
        first.close()
        second.close()
    finally:
        s.stop()
    import json
    lines = [json.loads(l) for l in s.stderr.splitlines() if l.startswith("{")]
    config = next(l for l in lines if l.get("message") == "configuration")
    assert config["max-connections"] == "1 (environment)"
    assert config["log-format"] == "json (flag)" and config["port"] == "0 (flag)"
    assert config["max-streams"] == "100"          # a default, said as such


def test_the_database_password_never_reaches_the_log():
    url = os.environ["ESAYLOV_DATABASE_URL"]
    password = re.match(r"postgresql://[^:]+:([^@]+)@", url).group(1)
    s = Server("esaylov-server")
    s.stop()
    line = next(l for l in s.stderr.splitlines() if "configuration" in l)
    assert "database=postgresql://esaylov:***@" in line, line
    assert password not in s.stderr


def test_invalid_configuration_is_refused_at_start_naming_the_flag():
    for args, env, expected in [
        (["--max-connections", "0"], {}, "--max-connections"),
        (["--ops-port", "70000"], {}, "--ops-port"),
        (["--log-level", "loud"], {}, "--log-level"),
        (["--bogus"], {}, "--bogus"),
        (["--signing-key", "k.pem"], {}, "--signing-key and --signing-cert go together"),
        ([], {"ESAYLOV_MAX_STREAMS": "many"}, "ESAYLOV_MAX_STREAMS"),
    ]:
        base = ["--port", "0"] + ([] if "--ops-port" in args else ["--ops-port", "0"])
        r = run("esaylov-server", *base, *args, env=env)
        assert r.returncode == 64, (args, r.returncode, r.stderr)
        assert expected in r.stderr, (args, r.stderr)
        assert "listening" not in r.stdout
