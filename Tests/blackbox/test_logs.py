"""The server's log: one JSON object a line with --log-format json, every call's end at debug
(method, request id, peer, status, duration), and never a token, an SMS code or the personal
data of a form, whatever the calls carried."""
import json

import grpc
import pytest

from identity import PKI, identity_server, sms_login
from test_requests import nomination, org

PARTY = ("seed-party-xdp-0", "party-xdp")


@pytest.fixture(scope="module")
def pki():
    return PKI()


def test_a_json_debug_log_names_every_call_and_nothing_secret_or_personal(v1, pki):
    server = identity_server(pki, "--log-level", "debug", "--log-format", "json", "--sign-in-per-minute", "10000")
    try:
        ch = grpc.insecure_channel(server.address)
        auth, requests = v1.auth_pb2_grpc.AuthServiceStub(ch), v1.requests_pb2_grpc.RequestServiceStub(ch)
        party = org(v1, (auth, requests), pki, PARTY)
        form = nomination(v1, women=2, men=3)
        party.send("dec-1726262", form)
        # A candidate signs in by SMS: the code and the session token pass through the server.
        attempt, code, verify = sms_login(v1, auth, server, "+998900000001")
        token = verify().token
        ch.close()
    finally:
        server.stop()
    log = server.stderr
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert lines and all({"ts", "level", "logger", "message"} <= set(x) for x in lines)
    calls = [x for x in lines if x["message"] == "call ended"]
    methods = {x["method"] for x in calls}
    assert {"/esaylov.v1.RequestService/SubmitRequest", "/esaylov.v1.AuthService/VerifySmsCode"} <= methods, methods
    assert all(x["status"] and x["request_id"] and x["peer"].startswith("127.0.0.1:") and float(x["duration_us"]) >= 0 for x in calls)
    secrets = [party.token, token, code, attempt.attempt_id, "+998900000001"]
    personal = [p for n in form.candidate_nomination.nominees for p in (n.person.pinfl, n.person.phone)]
    for value in [s for s in secrets if s] + personal:
        assert value not in log, f"the log carries {value[:4]}…"
