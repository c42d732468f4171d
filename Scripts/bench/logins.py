"""EDS sign-ins per second against a running esaylov-server: THREADS clients each loop
StartSignatureLogin, sign the challenge (detached CMS, as the national client does), and
FinishSignatureLogin, for SECONDS. Prints "logins: N in S s: R/s, p99 MS ms, failed F".
    logins.py ADDRESS KEY.pem CERT.pem SECONDS THREADS"""
import os
import sys
import threading
import time

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stubs  # noqa: E402

stubs.generate("common", "auth")
from esaylov.v1 import auth_pb2, auth_pb2_grpc  # noqa: E402

address, key_path, cert_path, seconds, threads = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
key = serialization.load_pem_private_key(open(key_path, "rb").read(), None)
cert = x509.load_pem_x509_certificate(open(cert_path, "rb").read())
options = [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary]
lock = threading.Lock()
latencies, failures = [], [0]
end = time.monotonic() + seconds


def client():
    with grpc.insecure_channel(address) as ch:
        stub = auth_pb2_grpc.AuthServiceStub(ch)
        while time.monotonic() < end:
            began = time.monotonic()
            try:
                start = stub.StartSignatureLogin(auth_pb2.StartSignatureLoginRequest(), timeout=10)
                cms = pkcs7.PKCS7SignatureBuilder().set_data(start.challenge).add_signer(cert, key, hashes.SHA256()) \
                    .sign(serialization.Encoding.DER, options)
                stub.FinishSignatureLogin(auth_pb2.FinishSignatureLoginRequest(challenge_id=start.challenge_id, cms=cms), timeout=10)
                with lock:
                    latencies.append(time.monotonic() - began)
            except grpc.RpcError as e:
                with lock:
                    failures[0] += 1
                    if failures[0] == 1:
                        print(f"logins: first failure: {e.code()} {e.details()}", file=sys.stderr)


began = time.monotonic()
workers = [threading.Thread(target=client) for _ in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
took = time.monotonic() - began
latencies.sort()
p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0
print(f"logins: {len(latencies)} in {took:.1f} s: {len(latencies) / took:.0f}/s, p99 {p99:.1f} ms, failed {failures[0]}")
