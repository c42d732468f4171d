"""The 2024 campaign at full scale through the RPC API, against a running esaylov-server on a
freshly seeded demo database: every party nominates district-council candidates to every
district commission, regional-council (Jokargy Kenes) candidates to every territorial
commission and its Legislative Chamber list to the CEC, and asks every district commission for
its observers' mandates; every district hokimiyat proposes its polling stations to its district
commission; the media outlet asks the CEC to accredit its journalists (at most 100 items a
request, one request per sender, commission and type otherwise). Every request is drafted,
signed by the sender's head with the EDS, submitted, taken into review and drafted by the
commission's secretary, signed and approved by its chairperson. Meanwhile every sender watches
its requests and every commission its inbox (WatchRequests, from the cursor its list returned);
the run ends when every decision has reached its sender's stream.

    replay.py ADDRESS PKI_DIR SERVER_PID [SCALE]

PKI_DIR/people/<person>/{key,cert}.pem: the seed's heads and officers (esaylovctl pki issue-demo).
SCALE (default 1) shrinks the campaign for the CI's smoke run: that share of the district and
territorial commissions (and of the districts' hokimiyats), every form at its full size. Prints
one line:
    campaign replay: R requests (… candidates, … observers, … journalists, … stations), C RPC calls
    (…), W s wall; S watch streams, E events, delivery p50 … ms p99 … ms; CPU per request: server … ms,
    PostgreSQL … ms; failed F"""
import asyncio
import concurrent.futures
import os
import sys
import threading
import time
import uuid

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402
import stubs  # noqa: E402

stubs.generate("common", "auth", "forms", "requests", "decisions", "directory")
from esaylov.v1 import (auth_pb2, auth_pb2_grpc, common_pb2, decisions_pb2, decisions_pb2_grpc, directory_pb2,  # noqa: E402
                        directory_pb2_grpc, forms_pb2, requests_pb2, requests_pb2_grpc)

address, pki, server_pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
scale = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
CONCURRENCY = 64
WATCHES_PER_CHANNEL = 16
options = [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary]
channel = grpc.insecure_channel(address)
auth, rs, ds = auth_pb2_grpc.AuthServiceStub(channel), requests_pb2_grpc.RequestServiceStub(channel), decisions_pb2_grpc.DecisionServiceStub(channel)
directory = directory_pb2_grpc.DirectoryServiceStub(channel)
rpc_calls = [0]
rpc_lock = threading.Lock()


def counted(n=1):
    with rpc_lock:
        rpc_calls[0] += n


class Person:
    """A head or officer signed in with their EDS."""

    def __init__(self, person):
        d = os.path.join(pki, "people", person)
        self.key = serialization.load_pem_private_key(open(f"{d}/key.pem", "rb").read(), None)
        self.cert = x509.load_pem_x509_certificate(open(f"{d}/cert.pem", "rb").read())
        start = auth.StartSignatureLogin(auth_pb2.StartSignatureLoginRequest(), timeout=30)
        token = auth.FinishSignatureLogin(auth_pb2.FinishSignatureLoginRequest(challenge_id=start.challenge_id, cms=self.sign(start.challenge)),
                                          timeout=30).token
        counted(2)
        self.md = (("authorization", f"Bearer {token}"),)

    def sign(self, data):
        return pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(self.cert, self.key, hashes.SHA256()).sign(serialization.Encoding.DER, options)


def organisations(kind):
    out, token = [], ""
    while True:
        page = directory.ListOrganisations(directory_pb2.ListOrganisationsRequest(kinds=[kind], page=common_pb2.PageRequest(page_size=500, page_token=token)),
                                           timeout=30)
        counted()
        out += list(page.organisations)
        token = page.page.next_page_token
        if not token:
            return out


def share(items):
    return items[:max(1, round(len(items) * scale))]


K = common_pb2
parties = [o.id for o in organisations(K.ORGANISATION_KIND_POLITICAL_PARTY)]
decs = share(sorted(o.id for o in organisations(K.ORGANISATION_KIND_DISTRICT_ELECTION_COMMISSION)))
regional = share(sorted([(o.id, K.ELECTION_KIND_REGIONAL_COUNCIL) for o in organisations(K.ORGANISATION_KIND_TERRITORIAL_ELECTION_COMMISSION)]
                        + [(o.id, K.ELECTION_KIND_JOKARGY_KENES) for o in organisations(K.ORGANISATION_KIND_KARAKALPAKSTAN_ELECTION_COMMISSION)]))
hokimiyats = [o for o in organisations(K.ORGANISATION_KIND_DISTRICT_HOKIMIYAT) if f"dec-{o.territory.soato}" in set(decs)]
media = [o.id for o in organisations(K.ORGANISATION_KIND_LOCAL_MEDIA)]

# The people of the forms: unique PINFLs and phones, two women in every five.
serial = [0]


def pinfl(female):
    serial[0] += 1
    n = serial[0]
    body = f"{4 if female else 3}{1 + n % 28:02d}{1 + (n // 28) % 12:02d}{70 + (n // 336) % 25}{n % 10**6:06d}"
    return body + str(sum(int(d) * (7, 3, 1)[i % 3] for i, d in enumerate(body)) % 10)


def details(i, phone=True):
    female = i % 5 in (0, 2)
    p = forms_pb2.PersonDetails(pinfl=pinfl(female), name=K.PersonName(last_name="Karimova" if female else "Karimov", first_name="Dilnoza" if female else "Aziz"),
                                occupation="teacher", workplace="School No. 5")
    if phone:
        p.phone = f"+99893{serial[0]:07d}"
    return p


DECISION = forms_pb2.DocumentReference(number="12/2024", date=K.CalendarDate(year=2024, month=9, day=1))
work, counts = [], {"candidates": 0, "observers": 0, "journalists": 0, "stations": 0}


def nomination(election, nominees):
    counts["candidates"] += nominees
    return forms_pb2.RequestForm(candidate_nomination=forms_pb2.CandidateNominationForm(
        election_kind=election, party_decision=DECISION,
        nominees=[forms_pb2.ConstituencyNominee(person=details(i), constituency_number=i + 1, party_member=True) for i in range(nominees)]))


for party in parties:
    for dec in decs:
        work.append((party, dec, nomination(K.ELECTION_KIND_DISTRICT_COUNCIL, 24)))
        observers = 67 + (1 if (len(party) + int(dec[-3:])) % 3 == 0 else 0)
        counts["observers"] += observers
        work.append((party, dec, forms_pb2.RequestForm(observer_mandate=forms_pb2.ObserverMandateForm(
            observers=[forms_pb2.ObserverEntry(person=details(i, phone=False), polling_station_number=1 + i) for i in range(observers)]))))
    for tec, election in regional:
        work.append((party, tec, nomination(election, 50)))
    entries = 100
    counts["candidates"] += entries
    work.append((party, "cec", forms_pb2.RequestForm(party_list=forms_pb2.PartyListForm(party_decision=DECISION, entries=[
        forms_pb2.PartyListEntry(position=i + 1, person=details(i), party_member=True) for i in range(entries)]))))
for h in hokimiyats:
    stations = 53
    counts["stations"] += stations
    work.append((h.id, f"dec-{h.territory.soato}", forms_pb2.RequestForm(polling_station_proposal=forms_pb2.PollingStationProposalForm(
        district_soato=h.territory.soato, stations=[forms_pb2.PollingStationEntry(
            change=forms_pb2.CHANGE_KIND_FORM, number=1 + i, address=f"School No. {i + 1}", boundaries="Mahalla streets", voter_count=1200)
            for i in range(stations)]))))
for outlet in media:
    for batch in range(max(1, round(10 * scale))):
        journalists = 100
        counts["journalists"] += journalists
        work.append((outlet, "cec", forms_pb2.RequestForm(media_accreditation=forms_pb2.MediaAccreditationForm(
            outlet_name="Dunyo", outlet_kind=K.ORGANISATION_KIND_LOCAL_MEDIA, outlet_country="UZ",
            journalists=[forms_pb2.JournalistEntry(name=K.PersonName(last_name="Aliyev", first_name="Sardor"), pinfl=pinfl(False), country="UZ",
                                                   role=forms_pb2.JOURNALIST_ROLE_REPORTER) for _ in range(journalists)]))))

senders = sorted({s for s, _, _ in work})
receivers = sorted({r for _, r, _ in work})
with concurrent.futures.ThreadPoolExecutor(16) as pool:
    heads = dict(zip(senders, pool.map(lambda o: Person(f"seed-{o}-0"), senders)))
    chairs = dict(zip(receivers, pool.map(lambda c: Person(f"seed-{c}-0"), receivers)))
    secretaries = dict(zip(receivers, pool.map(lambda c: Person(f"seed-{c}-2"), receivers)))

# --- the watch streams: every sender's requests, every commission's inbox ---
events = []           # (latency seconds, stream kind)
decided = {}          # request id -> times its DECIDED event reached the sender's stream
inbox_kinds = {}      # request id -> kinds the receiving commission's stream got
watch_errors = []
state_lock = threading.Lock()
streams = []
for s in senders:
    cursor = rs.ListOutgoing(requests_pb2.ListOutgoingRequest(page=K.PageRequest(page_size=1)), metadata=heads[s].md, timeout=30).watch_cursor
    streams.append(("outgoing", heads[s].md, requests_pb2.WatchRequestsRequest(scope=requests_pb2.WATCH_SCOPE_OUTGOING, cursor=cursor)))
for r in receivers:
    cursor = rs.ListIncoming(requests_pb2.ListIncomingRequest(page=K.PageRequest(page_size=1)), metadata=secretaries[r].md, timeout=30).watch_cursor
    streams.append(("incoming", secretaries[r].md, requests_pb2.WatchRequestsRequest(scope=requests_pb2.WATCH_SCOPE_INCOMING, cursor=cursor)))
counted(len(streams))
loop = asyncio.new_event_loop()
stop = asyncio.Event()


async def watch(stub, kind, md, request):
    try:
        async for e in stub.WatchRequests(request, metadata=md):
            if e.kind == requests_pb2.REQUEST_EVENT_KIND_HEARTBEAT:
                continue
            lag = time.time() - (e.at.seconds + e.at.nanos / 1e9)
            with state_lock:
                events.append((lag, kind))
                if kind == "outgoing" and e.kind == requests_pb2.REQUEST_EVENT_KIND_DECIDED:
                    decided[e.request.id] = decided.get(e.request.id, 0) + 1
                elif kind == "incoming":
                    inbox_kinds.setdefault(e.request.id, []).append(e.kind)
    except grpc.aio.AioRpcError as e:
        if e.code() != grpc.StatusCode.CANCELLED:
            watch_errors.append(e)
    except asyncio.CancelledError:
        pass


async def watch_all():
    channels = [grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range((len(streams) + WATCHES_PER_CHANNEL - 1) // WATCHES_PER_CHANNEL)]
    tasks = [asyncio.ensure_future(watch(requests_pb2_grpc.RequestServiceStub(channels[i // WATCHES_PER_CHANNEL]), *s)) for i, s in enumerate(streams)]
    await stop.wait()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for c in channels:
        await c.close()


watcher = threading.Thread(target=lambda: loop.run_until_complete(watch_all()), daemon=True)
watcher.start()
time.sleep(1.0)  # the streams are open (each started from its list's cursor: nothing is missed either way)

# --- the campaign ---
failures = []
sent_ids = []


def run(item):
    sender, receiver, form = item
    head, secretary, chair = heads[sender], secretaries[receiver], chairs[receiver]
    try:
        d = rs.CreateDraft(requests_pb2.CreateDraftRequest(campaign_id="demo", receiver_commission_id=receiver, form=form, idempotency_key=uuid.uuid4().hex),
                           metadata=head.md, timeout=60)
        p = rs.GetSigningPayload(requests_pb2.GetSigningPayloadRequest(request_id=d.id), metadata=head.md, timeout=60)
        rs.SubmitRequest(requests_pb2.SubmitRequestRequest(request_id=d.id, cms=head.sign(p.payload), payload_sha256=p.payload_sha256,
                                                           idempotency_key=uuid.uuid4().hex), metadata=head.md, timeout=60)
        with state_lock:
            sent_ids.append(d.id)
        ds.StartReview(decisions_pb2.StartReviewRequest(request_id=d.id, idempotency_key=uuid.uuid4().hex), metadata=secretary.md, timeout=60)
        draft = ds.DraftDecision(decisions_pb2.DraftDecisionRequest(request_id=d.id, outcome=decisions_pb2.DECISION_OUTCOME_GRANTED,
                                                                    text="The commission grants the request.", idempotency_key=uuid.uuid4().hex),
                                 metadata=secretary.md, timeout=60)
        a = ds.GetApprovalPayload(decisions_pb2.GetApprovalPayloadRequest(draft_id=draft.id), metadata=chair.md, timeout=60)
        ds.ApproveDecision(decisions_pb2.ApproveDecisionRequest(draft_id=draft.id, cms=chair.sign(a.payload), payload_sha256=a.payload_sha256,
                                                                idempotency_key=uuid.uuid4().hex), metadata=chair.md, timeout=60)
        counted(7)
    except grpc.RpcError as e:
        failures.append(f"{sender} -> {receiver}: {e.code()} {e.details()[:300]}")


pids = [server_pid] + load.postgres_pids()
cpu0 = load.cpu_ticks([server_pid]), load.cpu_ticks(pids[1:])
start = time.time()
with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
    list(pool.map(run, work))
# Delivered: every decision on its sender's stream.
deadline = time.time() + 60
while time.time() < deadline:
    with state_lock:
        if all(decided.get(i) for i in sent_ids):
            break
    time.sleep(0.01)
wall = time.time() - start
cpu1 = load.cpu_ticks([server_pid]), load.cpu_ticks(pids[1:])
loop.call_soon_threadsafe(stop.set)
watcher.join(10)

ticks = os.sysconf("SC_CLK_TCK")
lags = sorted(x for x, _ in events)
pct = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))] * 1000 if lags else float("nan")  # noqa: E731
undelivered = [i for i in sent_ids if not decided.get(i)]
doubled = [i for i, k in decided.items() if k > 1]
full_inbox = [requests_pb2.REQUEST_EVENT_KIND_SUBMITTED, requests_pb2.REQUEST_EVENT_KIND_REVIEW_STARTED,
              requests_pb2.REQUEST_EVENT_KIND_DECISION_DRAFTED, requests_pb2.REQUEST_EVENT_KIND_DECIDED]
bad_inbox = [i for i in sent_ids if inbox_kinds.get(i) != full_inbox]
for f in failures[:5]:
    print(f"replay: {f}", file=sys.stderr)
if undelivered or doubled or bad_inbox or watch_errors:
    print(f"replay: {len(undelivered)} decisions not delivered, {len(doubled)} delivered twice, {len(bad_inbox)} inboxes wrong, "
          f"{len(watch_errors)} streams failed {watch_errors[:1]}", file=sys.stderr)
per = max(1, len(work))
print(f"campaign replay: {len(work)} requests ({counts['candidates']} candidates, {counts['observers']} observers, {counts['journalists']} journalists, "
      f"{counts['stations']} stations), {rpc_calls[0]} RPC calls ({len(work) * 7} in the requests' course), {wall:.1f} s wall; "
      f"{len(streams)} watch streams, {len(events)} events, delivery p50 {pct(0.5):.0f} ms p99 {pct(0.99):.0f} ms; "
      f"CPU per request: server {(cpu1[0] - cpu0[0]) / ticks / per * 1000:.1f} ms, PostgreSQL {(cpu1[1] - cpu0[1]) / ticks / per * 1000:.1f} ms; "
      f"failed {len(failures) + len(undelivered) + len(doubled) + len(bad_inbox) + len(watch_errors)}")
