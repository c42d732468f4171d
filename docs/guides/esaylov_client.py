"""The small client the guides share: Python modules generated from Protos/ by stock
grpc_tools.protoc, sign-in with an EDS key (a detached CMS over the login challenge, as the
national client makes it), and signing of payloads. Needs: pip install grpcio grpcio-tools
cryptography."""
import os
import sys
import tempfile
import uuid

import grpc
import grpc_tools
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from grpc_tools import protoc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
_out = tempfile.mkdtemp()
_wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
assert protoc.main(["protoc", f"-I{ROOT}/Protos", f"-I{_wkt}", f"--python_out={_out}", f"--grpc_python_out={_out}",
                    *[f"esaylov/v1/{n}.proto" for n in ("common", "auth", "forms", "requests", "decisions")]]) == 0
sys.path.insert(0, _out)
from esaylov.v1 import (auth_pb2, auth_pb2_grpc, common_pb2, decisions_pb2, decisions_pb2_grpc,  # noqa: E402,F401
                        forms_pb2, requests_pb2, requests_pb2_grpc)


class Signer:
    """An EDS key and its certificate (PEM files, as esaylovctl pki writes them)."""

    def __init__(self, key_path, cert_path):
        self.key = serialization.load_pem_private_key(open(key_path, "rb").read(), None)
        self.cert = x509.load_pem_x509_certificate(open(cert_path, "rb").read())

    def sign(self, data):
        """A detached CMS SignedData (DER) over `data`, exactly as given."""
        return pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(self.cert, self.key, hashes.SHA256()).sign(
            serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])


class Session:
    """A signed-in user: the stubs, with the bearer token on every call."""

    def __init__(self, address, signer):
        self.channel = grpc.insecure_channel(address)
        self.signer = signer
        auth = auth_pb2_grpc.AuthServiceStub(self.channel)
        start = auth.StartSignatureLogin(auth_pb2.StartSignatureLoginRequest(), timeout=10)
        token = auth.FinishSignatureLogin(auth_pb2.FinishSignatureLoginRequest(
            challenge_id=start.challenge_id, cms=signer.sign(start.challenge)), timeout=10).token
        self.metadata = (("authorization", f"Bearer {token}"),)
        self.requests = requests_pb2_grpc.RequestServiceStub(self.channel)
        self.decisions = decisions_pb2_grpc.DecisionServiceStub(self.channel)

    def send(self, receiver, form, campaign="demo"):
        """Creates a draft, fetches the exact bytes to sign, signs them and submits: the
        registered request (with its incoming number)."""
        md = self.metadata
        draft = self.requests.CreateDraft(requests_pb2.CreateDraftRequest(
            campaign_id=campaign, receiver_commission_id=receiver, form=form, idempotency_key=str(uuid.uuid4())), metadata=md, timeout=30)
        payload = self.requests.GetSigningPayload(requests_pb2.GetSigningPayloadRequest(request_id=draft.id), metadata=md, timeout=30)
        # A retry of SubmitRequest with the same key returns the first answer: keep the key with the request.
        return self.requests.SubmitRequest(requests_pb2.SubmitRequestRequest(
            request_id=draft.id, cms=self.signer.sign(payload.payload), payload_sha256=payload.payload_sha256,
            idempotency_key=str(uuid.uuid4())), metadata=md, timeout=30)


def arguments(*people):
    """--address, and --key/--cert for each person the guide acts as (defaults: run.sh's demo)."""
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument("--address", default="127.0.0.1:50051")
    for person, default in people:
        p.add_argument(f"--{person}-key", default=f"{ROOT}/.data/pki/people/{default}/key.pem")
        p.add_argument(f"--{person}-cert", default=f"{ROOT}/.data/pki/people/{default}/cert.pem")
    return p.parse_args()
