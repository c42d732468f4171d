"""Black-box fixtures: real server binaries on 127.0.0.1, clients generated from the protos
by stock grpc_tools.protoc. grpc.testing messages live in a private DescriptorPool, because
modules generated for `grpc.*` protos would collide with grpcio's own package."""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

BIN_DIR = os.environ.get("ESAYLOV_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../.build/debug"))
GRPC_PROTO = "/usr/share/grpc-proto"


class Server:
    """A server process started with --port 0; `port` is read from its first line."""

    def __init__(self, binary, *args, env=None):
        # Servers run side by side in the tests: each one's operations port is a free one, and
        # so is its TLS port when it serves TLS.
        ops = ["--ops-port", "0"] if binary == "esaylov-server" and "--ops-port" not in args else []
        tls = "--tls-cert" in args
        if tls and "--tls-port" not in args:
            ops += ["--tls-port", "0"]
        self.proc = subprocess.Popen(
            [os.path.join(BIN_DIR, binary), "--port", "0", *ops, *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
        line = self.proc.stdout.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        self.port = int(m.group(1)) if m else None
        self.tls_port = None
        if tls and (m or "--no-plaintext" in args):
            if m:
                line = self.proc.stdout.readline()
            t = re.search(r"listening with TLS on 127\.0\.0\.1:(\d+)", line)
            self.tls_port = int(t.group(1)) if t else None
            if not t:
                m = None
        if not m and not self.tls_port:
            self.proc.kill()
            raise RuntimeError(f"{binary} did not start: {line!r} {self.proc.stderr.read()!r}")
        self.address = f"127.0.0.1:{self.port}"
        self.tls_address = f"127.0.0.1:{self.tls_port}" if self.tls_port else None
        # The operations port's line follows the listening lines.
        self.ops_port = None
        if "--ops-port" in ops:
            m = re.search(r"operations on 127\.0\.0\.1:(\d+)", self.proc.stdout.readline())
            self.ops_port = int(m.group(1)) if m else None

    def ops(self, path, method="GET"):
        """(status, body) of an HTTP request to the operations port."""
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.ops_port, timeout=5)
        try:
            c.request(method, path)
            r = c.getresponse()
            return r.status, r.read().decode()
        finally:
            c.close()

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=15):
        """SIGTERM, wait, and return what it printed after the listening line (its standard
        error is kept in `stderr`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, self.stderr = self.proc.communicate(timeout=timeout)
        return out


@pytest.fixture(scope="session")
def interop_server():
    s = Server("esaylov-interop-server")
    yield s
    s.stop()


@pytest.fixture
def fresh_interop_server():
    s = Server("esaylov-interop-server")
    yield s
    if s.alive():
        s.stop()


@pytest.fixture(scope="session")
def esaylov_server():
    s = Server("esaylov-server")
    yield s
    s.stop()


class Testing:
    """Message classes of grpc.testing from a private pool, and method handles."""

    def __init__(self):
        import grpc_tools
        from grpc_tools import protoc
        out = os.path.join(tempfile.mkdtemp(), "testing.pb")
        wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
        rc = protoc.main(["protoc", f"-I{GRPC_PROTO}", f"-I{wkt}", "--include_imports",
                          f"--descriptor_set_out={out}", "grpc/testing/test.proto"])
        assert rc == 0, "grpc_tools.protoc failed on grpc/testing/test.proto"
        fds = descriptor_pb2.FileDescriptorSet.FromString(open(out, "rb").read())
        self.pool = descriptor_pool.DescriptorPool()
        for f in fds.file:
            self.pool.Add(f)

    def message(self, name):
        return message_factory.GetMessageClass(self.pool.FindMessageTypeByName(name))

    def method(self, channel, path, kind):
        service, method = path.strip("/").split("/")
        md = self.pool.FindServiceByName(service).FindMethodByName(method)
        req = message_factory.GetMessageClass(md.input_type)
        resp = message_factory.GetMessageClass(md.output_type)
        factory = getattr(channel, kind)
        return factory(path, request_serializer=req.SerializeToString, response_deserializer=resp.FromString)


@pytest.fixture(scope="session")
def testing():
    return Testing()


@pytest.fixture
def channel(interop_server):
    ch = grpc.insecure_channel(interop_server.address)
    yield ch
    ch.close()


def wait_for(predicate, timeout=5.0, interval=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@pytest.fixture(scope="session")
def v1():
    """esaylov.v1 modules made by stock grpc_tools.protoc from Protos/, as an integration team
    would make them: v1.common_pb2, v1.directory_pb2, v1.directory_pb2_grpc, …"""
    import importlib
    import types
    import grpc_tools
    from grpc_tools import protoc
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
    out = tempfile.mkdtemp()
    wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    names = sorted(f[:-len(".proto")] for f in os.listdir(os.path.join(root, "Protos/esaylov/v1")) if f.endswith(".proto"))
    rc = protoc.main(["protoc", f"-I{root}/Protos", f"-I{wkt}", f"--python_out={out}", f"--grpc_python_out={out}",
                      *[f"esaylov/v1/{n}.proto" for n in names]])
    assert rc == 0, "grpc_tools.protoc failed on Protos/esaylov/v1"
    sys.path.insert(0, out)
    modules = types.SimpleNamespace()
    for n in names:
        for suffix in ("_pb2", "_pb2_grpc"):
            setattr(modules, n + suffix, importlib.import_module(f"esaylov.v1.{n}{suffix}"))
    yield modules
    sys.path.remove(out)
