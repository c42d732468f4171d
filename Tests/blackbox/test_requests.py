"""Requests from outside (clauses 2, 6-8, 13): the campaign and its catalogue, drafts, clause 6's
routes, per-form rules, signed submission by the head, unsigned submission by candidates and
proxies, windows, idempotency keys, inboxes and the personal data in them. Every refusal names
the field, the rule, the window or the check."""
import datetime
import hashlib
import random
import re
import uuid

import grpc
import pytest

from identity import PKI, bearer, ctl, identity_server, login, refused, sms_login, sql

PARTY = ("seed-party-xdp-0", "party-xdp")
MFA = ("seed-mfa-0", "mfa")
SAMARKAND_HOKIMIYAT = ("seed-hokimiyat-1718203-0", "hokimiyat-1718203")
DEC = ("seed-dec-1726264-0", "dec-1726264")       # the Bektemir (Tashkent city) district commission's chairperson
TEC = ("seed-tec-1726-0", "tec-1726")             # the Tashkent city commission above it
TEC_DEPUTY = ("seed-tec-1726-1", "tec-1726")
MAHALLA = ("seed-mahalla-1718203-bogishamol-0", "mahalla-1718203-bogishamol")
OBSERVERS = ("seed-observers-odihr-0", "observers-odihr")
DC_CANDIDATE_PHONE = "+998900000003"             # cand-dc-1726264-01, registered by dec-1726264
LC_PROXY_PHONE = "+998900000101"                 # proxy-lc-01-a, of cand-lc-01 (registered by the CEC)
TASHKENT = datetime.timezone(datetime.timedelta(hours=5))


def pinfl(female=False, born=datetime.date(1980, 5, 17)):
    """A PINFL with a valid check digit for a person of that sex and birth date."""
    century = {1800: 1, 1900: 3, 2000: 5}[born.year // 100 * 100] + (1 if female else 0)
    body = f"{century}{born:%d%m}{born.year % 100:02d}{random.randrange(10**6):06d}"
    check = sum(int(d) * (7, 3, 1)[i % 3] for i, d in enumerate(body)) % 10
    return body + str(check)


def key():
    return uuid.uuid4().hex


@pytest.fixture(scope="module")
def pki():
    return PKI()


@pytest.fixture(scope="module")
def server(pki):
    s = identity_server(pki, "--sign-in-per-minute", "10000")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def stubs(server, v1):
    ch = grpc.insecure_channel(server.address)
    yield v1.auth_pb2_grpc.AuthServiceStub(ch), v1.requests_pb2_grpc.RequestServiceStub(ch)
    ch.close()


class Sender:
    """A signed-in participant: its session, and (for organisations) the key that signs."""

    def __init__(self, v1, requests, token, credential=None):
        self.v1, self.rs, self.token, self.credential = v1, requests, token, credential
        self.md = bearer(token)

    def call(self, name, message, **kw):
        return getattr(self.rs, name)(message, metadata=self.md, timeout=30, **kw)

    def draft(self, receiver, form, campaign="demo", attachments=(), idempotency_key=None):
        r = self.v1.requests_pb2
        return self.call("CreateDraft", r.CreateDraftRequest(
            campaign_id=campaign, receiver_commission_id=receiver, form=form, attachment_sha256=list(attachments),
            idempotency_key=idempotency_key or key()))

    def payload(self, request_id):
        return self.call("GetSigningPayload", self.v1.requests_pb2.GetSigningPayloadRequest(request_id=request_id))

    def submit(self, request_id, signer=None, idempotency_key=None, payload=None):
        r = self.v1.requests_pb2
        if self.credential is None and signer is None:
            return self.call("SubmitRequest", r.SubmitRequestRequest(request_id=request_id, idempotency_key=idempotency_key or key()))
        p = payload or self.payload(request_id)
        cms = (signer or self.credential).sign(p.payload)
        return self.call("SubmitRequest", r.SubmitRequestRequest(
            request_id=request_id, cms=cms, payload_sha256=p.payload_sha256, idempotency_key=idempotency_key or key()))

    def send(self, receiver, form, **kw):
        d = self.draft(receiver, form, **kw)
        return self.submit(d.id)


def org(v1, stubs, pki, who):
    auth, requests = stubs
    credential = pki.issue(*who)
    session = login(v1, auth, credential)
    return Sender(v1, requests, session.token, credential)


def person_session(v1, stubs, server, phone):
    auth, requests = stubs
    _, _, verify = sms_login(v1, auth, server, phone)
    return Sender(v1, requests, verify().token)


@pytest.fixture(scope="module")
def party(v1, stubs, pki):
    return org(v1, stubs, pki, PARTY)


@pytest.fixture(scope="module")
def dec_chair(v1, stubs, pki):
    return org(v1, stubs, pki, DEC)


@pytest.fixture(scope="module")
def tec_chair(v1, stubs, pki):
    return org(v1, stubs, pki, TEC)


def person(v1, female=False, born=datetime.date(1980, 5, 17), phone=None, last="Karimova", first="Dilnoza"):
    c = v1.common_pb2
    return v1.forms_pb2.PersonDetails(
        pinfl=pinfl(female, born), name=c.PersonName(last_name=last, first_name=first), phone=phone or f"+99890{random.randrange(10**7):07d}",
        occupation="teacher", workplace="School No. 5", address="Chilonzor 5-12")


def decision(v1):
    return v1.forms_pb2.DocumentReference(number="12/2026", date=v1.common_pb2.CalendarDate(year=2026, month=11, day=30))


def nomination(v1, women, men, election=None):
    f = v1.forms_pb2
    nominees = [f.ConstituencyNominee(person=person(v1, female=i < women), constituency_number=i + 1, party_member=True)
                for i in range(women + men)]
    return f.RequestForm(candidate_nomination=f.CandidateNominationForm(
        election_kind=election or v1.common_pb2.ELECTION_KIND_DISTRICT_COUNCIL, nominees=nominees, party_decision=decision(v1)))


def stations(v1, district, voters=(850, 1200)):
    f = v1.forms_pb2
    return f.RequestForm(polling_station_proposal=f.PollingStationProposalForm(district_soato=district, stations=[
        f.PollingStationEntry(change=f.CHANGE_KIND_FORM, number=100 + i, address=f"School {i}", boundaries="Mahalla streets", voter_count=v)
        for i, v in enumerate(voters)]))


def field_violations(error):
    """The BadRequest field paths of an INVALID_ARGUMENT (from grpc-status-details-bin)."""
    from google.rpc import error_details_pb2, status_pb2
    raw = dict(error.trailing_metadata()).get("grpc-status-details-bin")
    status = status_pb2.Status.FromString(raw)
    out = []
    for d in status.details:
        if d.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            b = error_details_pb2.BadRequest()
            d.Unpack(b)
            out += [(v.field, v.description) for v in b.field_violations]
    return out


# --- the campaign and the catalogue ------------------------------------------------------

def test_the_demo_campaign_is_open_today_and_says_its_dates_in_tashkent_time(v1, party):
    r = v1.requests_pb2
    got = party.call("GetCampaign", r.GetCampaignRequest(campaign_id="demo"))
    c = got.campaign
    assert c.status == r.CAMPAIGN_STATUS_ACTIVE and c.time_zone == "+05:00" and c.catalogue_version >= 1
    today = datetime.datetime.now(TASHKENT).date()
    a = datetime.date(c.announced_on.year, c.announced_on.month, c.announced_on.day)
    e = datetime.date(c.election_day.year, c.election_day.month, c.election_day.day)
    assert a <= today < e
    windows = {w.type: w for w in got.windows}
    assert len(windows) == 17
    nom = windows[r.REQUEST_TYPE_CANDIDATE_NOMINATION]
    # "by E-35": the last day is E-35 and the window closes at 24:00 Tashkent time of that day.
    closes = datetime.date(nom.window.closes_on.year, nom.window.closes_on.month, nom.window.closes_on.day)
    assert closes == e - datetime.timedelta(days=35) and nom.open_now
    end = datetime.datetime.combine(closes + datetime.timedelta(days=1), datetime.time(0), TASHKENT)
    assert nom.window.closes_at.seconds == int(end.timestamp())
    assert nom.window.closes.anchor == r.DayOffset.ANCHOR_ELECTION_DAY and nom.window.closes.days == 35
    # "before the campaign": members for territorial commissions closed the day before A.
    assert not windows[r.REQUEST_TYPE_TERRITORIAL_COMMISSION_MEMBERS].open_now


def test_the_catalogue_says_routes_relations_signing_and_limits_per_election(v1, party):
    r, c = v1.requests_pb2, v1.common_pb2
    rules = {x.type: x for x in party.call("ListRequestTypes", r.ListRequestTypesRequest(campaign_id="demo")).rules}
    assert len(rules) == 17
    proxies = rules[r.REQUEST_TYPE_PROXY_REGISTRATION]
    limits = {(l.name, l.election_kind): l.value for l in proxies.limits}
    assert limits[("max_proxies", c.ELECTION_KIND_LEGISLATIVE_CHAMBER)] == 10
    assert limits[("max_proxies", c.ELECTION_KIND_REGIONAL_COUNCIL)] == 5
    assert limits[("max_proxies", c.ELECTION_KIND_DISTRICT_COUNCIL)] == 3
    assert limits[("max_proxies", c.ELECTION_KIND_PRESIDENT)] == 15
    assert all(not route.signature_required and route.relation in (r.TERRITORIAL_RELATION_REGISTERING_COMMISSION,
                                                                    r.TERRITORIAL_RELATION_ABOVE_REGISTERING_COMMISSION)
               for route in proxies.routes)
    # A Legislative Chamber candidate's proxy never reaches the CEC (6a lists the candidates only).
    revocation = rules[r.REQUEST_TYPE_PROXY_REVOCATION]
    to_cec = [x for x in revocation.routes if x.receiver_kind == c.ORGANISATION_KIND_CENTRAL_ELECTION_COMMISSION]
    assert to_cec and all(c.ELECTION_KIND_LEGISLATIVE_CHAMBER not in x.proxy_senders for x in to_cec)
    # Form 11: its kind differs by sender.
    media = {tuple(x.sender_kinds): x.kind for x in rules[r.REQUEST_TYPE_MEDIA_ACCREDITATION].routes}
    assert media[(c.ORGANISATION_KIND_LOCAL_MEDIA,)] == r.REQUEST_KIND_APPLICATION
    assert media[(c.ORGANISATION_KIND_MINISTRY_OF_FOREIGN_AFFAIRS,)] == r.REQUEST_KIND_SUBMISSION
    nomination_routes = rules[r.REQUEST_TYPE_CANDIDATE_NOMINATION].routes
    to_dec = [x for x in nomination_routes if x.receiver_kind == c.ORGANISATION_KIND_DISTRICT_ELECTION_COMMISSION]
    assert {tuple(x.election_kinds) for x in to_dec} == {(c.ELECTION_KIND_DISTRICT_COUNCIL,)}
    assert all(x.signature_required for x in nomination_routes)
    # What this party may send at all.
    sendable = {x.type for x in party.call("ListRequestTypes", r.ListRequestTypesRequest(campaign_id="demo", sendable_only=True)).rules}
    assert r.REQUEST_TYPE_CANDIDATE_NOMINATION in sendable and r.REQUEST_TYPE_POLLING_STATION_PROPOSAL not in sendable


# --- a party nominates; the commission's inbox ---------------------------------------------

def test_a_party_nominates_district_council_candidates_to_a_district_commission(v1, party, dec_chair, tec_chair):
    r = v1.requests_pb2
    receivers = {x.commission_id for x in party.call(
        "ListReceivers", r.ListReceiversRequest(campaign_id="demo", request_type=r.REQUEST_TYPE_CANDIDATE_NOMINATION)).receivers}
    assert {"cec", "tec-1726", "dec-1726264", "dec-1718203"} <= receivers
    form = nomination(v1, women=2, men=3)
    d = party.draft("dec-1726264", form)
    assert d.status == r.REQUEST_STATUS_DRAFT and d.version == 1 and d.kind == r.REQUEST_KIND_APPLICATION
    p1, p2 = party.payload(d.id), party.payload(d.id)
    assert p1.payload == p2.payload and p1.payload_sha256 == hashlib.sha256(p1.payload).hexdigest()
    env = v1.common_pb2.SignedEnvelope.FromString(p1.payload)
    assert env.purpose == v1.common_pb2.SIGNATURE_PURPOSE_REQUEST
    body = r.RequestEnvelope.FromString(env.body)
    assert (body.request_id, body.campaign_id, body.sender_organisation_id, body.receiver_commission_id, body.request_version) == \
        (d.id, "demo", "party-xdp", "dec-1726264", 1)
    assert body.form == form and body.type == r.REQUEST_TYPE_CANDIDATE_NOMINATION and len(body.sender_tin) == 9
    sent = party.submit(d.id, payload=p1)
    assert sent.status == r.REQUEST_STATUS_SUBMITTED
    assert re.fullmatch(r"\d+/20\d\d", sent.incoming_number), sent.incoming_number
    assert sent.signature.signer_pinfl and sent.signature.cms and sent.envelope == p1.payload
    assert sent.signature.checks.signature == v1.common_pb2.CHECK_RESULT_PASSED
    received = datetime.datetime.fromtimestamp(sent.submitted_at.seconds, TASHKENT).date()
    due = datetime.datetime.combine(received + datetime.timedelta(days=6), datetime.time(0), TASHKENT)
    assert sent.decision_due.seconds == int(due.timestamp())   # 5 calendar days from the day of receipt
    # The receiving commission reads it in full, in its inbox in keyset order.
    inbox = dec_chair.call("ListIncoming", r.ListIncomingRequest(filter=r.RequestFilter(types=[r.REQUEST_TYPE_CANDIDATE_NOMINATION]),
                                                                 page=v1.common_pb2.PageRequest(page_size=500)))
    mine = [x for x in inbox.requests if x.id == d.id]
    assert mine and mine[0].form == form and mine[0].incoming_number == sent.incoming_number
    # The commission above sees it in aggregate: no personal data of the nominees.
    above = tec_chair.call("GetRequest", r.GetRequestRequest(request_id=d.id))
    persons = above.form.candidate_nomination.nominees
    assert len(persons) == 5 and all(n.person.pinfl == "" and n.person.phone == "" for n in persons)
    assert above.envelope == b"" and above.signature.signer_pinfl == ""
    # The sender gets the stored bytes and the CMS back; the timeline says who did what.
    own = party.call("GetRequest", r.GetRequestRequest(request_id=d.id))
    assert own.envelope == p1.payload and own.signature.cms == sent.signature.cms
    history = party.call("GetRequestHistory", r.GetRequestHistoryRequest(request_id=d.id)).entries
    assert [h.kind for h in history] == [r.REQUEST_EVENT_KIND_DRAFT_CREATED, r.REQUEST_EVENT_KIND_SUBMITTED]
    assert history[1].actor.person_id == PARTY[0] and history[1].to_status == r.REQUEST_STATUS_SUBMITTED
    # Audit events name the request, never the nominees' personal data.
    facts = sql(f"SELECT string_agg(facts::text, ' ') FROM (SELECT facts FROM audit_events WHERE subject_id = '{d.id}' "
                f"UNION ALL SELECT facts FROM audit_pending WHERE subject_id = '{d.id}') e")
    assert "incoming_number" in facts
    assert not any(n.person.pinfl in facts or n.person.phone in facts for n in form.candidate_nomination.nominees)


def test_the_inbox_is_its_commissions_and_the_ones_above(v1, stubs, pki, party):
    r = v1.requests_pb2
    other = org(v1, stubs, pki, ("seed-dec-1718203-0", "dec-1718203"))
    refused(lambda: other.call("ListIncoming", r.ListIncomingRequest(commission_id="dec-1726264")),
            grpc.StatusCode.PERMISSION_DENIED, "neither the receiver nor above it")
    d = party.draft("dec-1726264", nomination(v1, 2, 3))
    refused(lambda: other.call("GetRequest", r.GetRequestRequest(request_id=d.id)), grpc.StatusCode.NOT_FOUND)   # drafts are the sender's


def test_forms_that_break_the_womens_share_or_the_two_in_five_rule_are_refused_naming_the_field(v1, party):
    r, c, f = v1.requests_pb2, v1.common_pb2, v1.forms_pb2
    e = refused(lambda: party.draft("dec-1726264", nomination(v1, women=1, men=4)), grpc.StatusCode.INVALID_ARGUMENT, "40%")
    assert ("form.candidate_nomination.nominees", "at least 40% of a party's nominees must be women (1 of 5)") in field_violations(e)
    # A party list for the Legislative Chamber: places 1-5 hold one woman.
    sexes = [True, False, False, False, False, True, True, False, False, True]
    entries = [f.PartyListEntry(position=i + 1, person=person(v1, female=w)) for i, w in enumerate(sexes)]
    form = f.RequestForm(party_list=f.PartyListForm(entries=entries, party_decision=decision(v1)))
    e = refused(lambda: party.draft("cec", form), grpc.StatusCode.INVALID_ARGUMENT, "2 women in every 5")
    fields = [x[0] for x in field_violations(e)]
    assert "form.party_list.entries[0]" in fields and "form.party_list.entries[1]" in fields
    # All of a form's faults at once: a bad check digit, an under-age nominee, a bad phone.
    bad = nomination(v1, women=2, men=3)
    bad.candidate_nomination.nominees[0].person.pinfl = bad.candidate_nomination.nominees[0].person.pinfl[:13] + \
        str((int(bad.candidate_nomination.nominees[0].person.pinfl[13]) + 1) % 10)
    bad.candidate_nomination.nominees[1].person.pinfl = pinfl(True, datetime.date.today() - datetime.timedelta(days=20 * 365))
    bad.candidate_nomination.nominees[2].person.phone = "+99890123"
    e = refused(lambda: party.draft("dec-1726264", bad), grpc.StatusCode.INVALID_ARGUMENT)
    fields = dict(field_violations(e))
    assert fields["form.candidate_nomination.nominees[0].person.pinfl"] == "the PINFL's check digit does not match"
    assert "25 or older" in fields["form.candidate_nomination.nominees[1].person.pinfl"]
    assert "+998 and 9 digits" in fields["form.candidate_nomination.nominees[2].person.phone"]
    # An election the campaign does not hold, or a district council list sent to the CEC.
    refused(lambda: party.draft("cec", nomination(v1, 2, 3)), grpc.StatusCode.PERMISSION_DENIED, "only for elections")


# --- the MFA, hokimiyats, mahallas, observers -----------------------------------------------

def test_the_mfa_submits_foreign_observers_to_the_cec(v1, stubs, pki):
    r, c, f = v1.requests_pb2, v1.common_pb2, v1.forms_pb2
    mfa = org(v1, stubs, pki, MFA)
    form = f.RequestForm(foreign_observer_accreditation=f.ForeignObserverAccreditationForm(observers=[
        f.ForeignObserverEntry(name=c.PersonName(last_name="Smith", first_name="Anna"), passport_number="X1234567", country="GB",
                               organisation="OSCE/ODIHR", birth_date=c.CalendarDate(year=1975, month=3, day=2))]))
    sent = mfa.send("cec", form)
    assert sent.status == r.REQUEST_STATUS_SUBMITTED and sent.kind == r.REQUEST_KIND_SUBMISSION
    # Only the CEC issues these.
    refused(lambda: mfa.draft("tec-1726", form), grpc.StatusCode.PERMISSION_DENIED, "no route")
    bad = f.RequestForm(foreign_observer_accreditation=f.ForeignObserverAccreditationForm(observers=[
        f.ForeignObserverEntry(name=c.PersonName(last_name="Smith", first_name="Anna"), passport_number="x-1", country="Britain",
                               organisation="OSCE")]))
    e = refused(lambda: mfa.draft("cec", bad), grpc.StatusCode.INVALID_ARGUMENT)
    assert {x[0] for x in field_violations(e)} == {"form.foreign_observer_accreditation.observers[0].passport_number",
                                                  "form.foreign_observer_accreditation.observers[0].country"}


def test_a_district_hokimiyat_proposes_polling_stations_to_its_own_commissions_only(v1, stubs, pki):
    r = v1.requests_pb2
    hokimiyat = org(v1, stubs, pki, SAMARKAND_HOKIMIYAT)
    receivers = {x.commission_id for x in hokimiyat.call(
        "ListReceivers", r.ListReceiversRequest(campaign_id="demo", request_type=r.REQUEST_TYPE_POLLING_STATION_PROPOSAL)).receivers}
    assert receivers == {"tec-1718", "dec-1718203"}
    sent = hokimiyat.send("dec-1718203", stations(v1, "1718203"))
    assert sent.status == r.REQUEST_STATUS_SUBMITTED and sent.sender_territory_soato == "1718203"
    # A neighbouring region's commission: never.
    refused(lambda: hokimiyat.draft("tec-1706", stations(v1, "1718203")), grpc.StatusCode.PERMISSION_DENIED,
            "reaches only the commission whose territory covers its own")
    # Another district's stations, and a station too small.
    e = refused(lambda: hokimiyat.draft("dec-1718203", stations(v1, "1718206", voters=(10, 900))), grpc.StatusCode.INVALID_ARGUMENT)
    assert dict(field_violations(e)) == {
        "form.polling_station_proposal.district_soato": "must be the sender's own district or city",
        "form.polling_station_proposal.stations[0].voter_count": "a polling station serves 20 to 3000 voters"}
    # A district of a city has a 10-digit SOATO code (territories.csv: two in Namangan).
    city_district = org(v1, stubs, pki, ("seed-hokimiyat-1714401365-0", "hokimiyat-1714401365"))
    assert city_district.send("dec-1714401365", stations(v1, "1714401365")).sender_territory_soato == "1714401365"


def test_senders_without_a_route_cannot_create_requests(v1, stubs, pki):
    r, f = v1.requests_pb2, v1.forms_pb2
    report = f.RequestForm(commission_report=f.CommissionReportForm(subject="s", text="t"))
    observers = org(v1, stubs, pki, OBSERVERS)
    refused(lambda: observers.draft("cec", report), grpc.StatusCode.PERMISSION_DENIED, "sendRequests")
    cec = org(v1, stubs, pki, ("seed-cec-0", "cec"))
    refused(lambda: cec.draft("cec", report), grpc.StatusCode.PERMISSION_DENIED, "sendRequests")
    mahalla = org(v1, stubs, pki, MAHALLA)
    obs = f.RequestForm(observer_mandate=f.ObserverMandateForm(observers=[f.ObserverEntry(person=person(v1), polling_station_number=7)]))
    refused(lambda: mahalla.draft("cec", obs), grpc.StatusCode.PERMISSION_DENIED, "clause 6(a)")
    assert mahalla.send("tec-1718", obs).status == r.REQUEST_STATUS_SUBMITTED


# --- candidates and proxies: SMS sessions, unsigned -------------------------------------------

def test_a_candidate_signs_in_by_sms_and_files_an_unsigned_request(v1, stubs, server):
    r, f = v1.requests_pb2, v1.forms_pb2
    candidate = person_session(v1, stubs, server, DC_CANDIDATE_PHONE)
    receivers = [x.commission_id for x in candidate.call(
        "ListReceivers", r.ListReceiversRequest(campaign_id="demo", request_type=r.REQUEST_TYPE_PROXY_REGISTRATION)).receivers]
    assert receivers == ["dec-1726264"]
    form = f.RequestForm(proxy_registration=f.ProxyRegistrationForm(proxies=[f.ProxyEntry(person=person(v1)), f.ProxyEntry(person=person(v1, True))]))
    d = candidate.draft("dec-1726264", form)
    refused(lambda: candidate.payload(d.id), grpc.StatusCode.FAILED_PRECONDITION, "not signed (clause 7)")
    refused(lambda: candidate.call("SubmitRequest", r.SubmitRequestRequest(request_id=d.id, cms=b"0", idempotency_key=key())),
            grpc.StatusCode.INVALID_ARGUMENT, "cms", "clause 7")
    sent = candidate.submit(d.id)
    assert sent.status == r.REQUEST_STATUS_SUBMITTED and not sent.HasField("signature") and sent.incoming_number
    env = v1.common_pb2.SignedEnvelope.FromString(sent.envelope)
    assert r.RequestEnvelope.FromString(env.body).sender_candidate_id == "cand-dc-1726264-01"
    # Limit 3 for a district council candidate, counting those already registered.
    four = f.RequestForm(proxy_registration=f.ProxyRegistrationForm(proxies=[f.ProxyEntry(person=person(v1)) for _ in range(4)]))
    refused(lambda: candidate.draft("dec-1726264", four), grpc.StatusCode.INVALID_ARGUMENT, "at most 3 proxies")
    # Only the registering commission.
    refused(lambda: candidate.draft("tec-1726", form), grpc.StatusCode.PERMISSION_DENIED, "clause 6(b)")


def test_a_legislative_chamber_candidates_proxy_never_reaches_the_cec(v1, stubs, server):
    r, f = v1.requests_pb2, v1.forms_pb2
    proxy = person_session(v1, stubs, server, LC_PROXY_PHONE)
    form = f.RequestForm(proxy_revocation=f.ProxyRevocationForm(
        proxy_id="proxy-lc-01-a", reason=f.PROXY_REVOCATION_REASON_RESIGNED, explanation="moving abroad"))
    refused(lambda: proxy.draft("cec", form), grpc.StatusCode.PERMISSION_DENIED, "clause 6(a)")
    assert list(proxy.call("ListReceivers", r.ListReceiversRequest(campaign_id="demo", request_type=r.REQUEST_TYPE_PROXY_REVOCATION)).receivers) == []


# --- windows -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scratch_campaign():
    """A campaign of this module's own, whose windows the tests move."""
    cid = f"t-{uuid.uuid4().hex[:10]}"
    today = datetime.datetime.now(TASHKENT).date()
    ctl("campaign", "create", "--id", cid, "--name", "Test district council elections", "--elections", "district_council",
        "--announced", str(today - datetime.timedelta(days=3)), "--election", str(today + datetime.timedelta(days=80)))
    return cid


def test_a_request_after_its_window_is_refused_naming_the_window(v1, stubs, pki, scratch_campaign):
    r = v1.requests_pb2
    hokimiyat = org(v1, stubs, pki, SAMARKAND_HOKIMIYAT)
    open_draft = hokimiyat.draft("dec-1718203", stations(v1, "1718203"), campaign=scratch_campaign)
    yesterday = datetime.datetime.now(TASHKENT).date() - datetime.timedelta(days=1)
    ctl("campaign", "set-window", "--id", scratch_campaign, "--type", "12", "--closes", str(yesterday))
    refused(lambda: hokimiyat.draft("dec-1718203", stations(v1, "1718203"), campaign=scratch_campaign),
            grpc.StatusCode.FAILED_PRECONDITION, "request type 12", f"closed at the end of {yesterday}")
    # A draft made while the window was open is judged at receipt too.
    refused(lambda: hokimiyat.submit(open_draft.id), grpc.StatusCode.FAILED_PRECONDITION, f"closed at the end of {yesterday}")
    # Windows that have not opened yet say when they open.
    tomorrow = yesterday + datetime.timedelta(days=2)
    ctl("campaign", "set-window", "--id", scratch_campaign, "--type", "12", "--opens", str(tomorrow), "--closes", "E-60")
    refused(lambda: hokimiyat.submit(open_draft.id), grpc.StatusCode.FAILED_PRECONDITION, f"opens on {tomorrow}")
    ctl("campaign", "set-window", "--id", scratch_campaign, "--type", "12", "--opens", "A+0")
    assert hokimiyat.submit(open_draft.id).status == r.REQUEST_STATUS_SUBMITTED
    # Moving election day moves every window counted from it: E-60 is now in the past.
    today = datetime.datetime.now(TASHKENT).date()
    ctl("campaign", "move", "--id", scratch_campaign, "--election", str(today + datetime.timedelta(days=30)))
    refused(lambda: hokimiyat.draft("dec-1718203", stations(v1, "1718203"), campaign=scratch_campaign),
            grpc.StatusCode.FAILED_PRECONDITION, f"closed at the end of {today - datetime.timedelta(days=30)}")


def test_an_operators_catalogue_is_checked_against_clause_6(v1, party, scratch_campaign, tmp_path):
    import json
    exported = json.loads(ctl("campaign", "catalogue", "export", "--id", scratch_campaign).stdout)
    rule = next(x for x in exported["rules"] if x["type"] == 9)
    rule["routes"].append({"senders": ["mahalla"], "receiver": "centralElectionCommission", "relation": "anyTerritory", "electionKinds": []})
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(exported))
    bad = ctl("campaign", "catalogue", "import", "--id", scratch_campaign, "--file", str(path), check=False)
    assert bad.returncode == 3 and "clause 6(a) gives mahalla no route" in bad.stderr, bad.stderr
    # A change within the clause makes a new version that the server serves at once.
    rule["routes"].pop()
    next(x for x in exported["rules"] if x["type"] == 17)["decisionDays"] = 7
    path.write_text(json.dumps(exported))
    before = party.call("GetCampaign", v1.requests_pb2.GetCampaignRequest(campaign_id=scratch_campaign)).campaign.catalogue_version
    ctl("campaign", "catalogue", "import", "--id", scratch_campaign, "--file", str(path), "--note", "test")
    rules = party.call("ListRequestTypes", v1.requests_pb2.ListRequestTypesRequest(campaign_id=scratch_campaign)).rules
    report = next(x for x in rules if x.type == v1.requests_pb2.REQUEST_TYPE_COMMISSION_REPORT)
    assert report.decision_days == 7 and report.version == before + 1


# --- idempotency --------------------------------------------------------------------------

def test_a_submit_retried_with_the_same_key_makes_one_request(v1, party):
    r = v1.requests_pb2
    d = party.draft("dec-1726264", nomination(v1, 2, 3))
    p = party.payload(d.id)
    sk = key()
    first = party.submit(d.id, idempotency_key=sk, payload=p)
    second = party.submit(d.id, idempotency_key=sk, payload=p)
    assert (second.id, second.incoming_number, second.submitted_at) == (first.id, first.incoming_number, first.submitted_at)
    assert sql(f"SELECT count(*) FROM request_history WHERE request_id = '{d.id}' AND kind = 'submitted'") == "1"
    # The same key for another request is refused.
    other = party.draft("dec-1726264", nomination(v1, 2, 3))
    refused(lambda: party.submit(other.id, idempotency_key=sk), grpc.StatusCode.FAILED_PRECONDITION, "idempotency_key")
    # Without a key, a second submit is just a request in the wrong state.
    refused(lambda: party.submit(d.id), grpc.StatusCode.FAILED_PRECONDITION, "state submitted")


def test_a_draft_retried_with_the_same_key_is_one_draft(v1, party):
    r = v1.requests_pb2
    k = key()
    form = nomination(v1, 2, 3)
    a = party.draft("dec-1726264", form, idempotency_key=k)
    b = party.draft("dec-1726264", form, idempotency_key=k)
    assert a.id == b.id
    refused(lambda: party.draft("dec-1726264", nomination(v1, 2, 3), idempotency_key=k), grpc.StatusCode.FAILED_PRECONDITION, "idempotency_key")
    refused(lambda: party.draft("dec-1726264", form, idempotency_key="not a key!"), grpc.StatusCode.INVALID_ARGUMENT, "idempotency_key")
    refused(lambda: party.call("CreateDraft", r.CreateDraftRequest(campaign_id="demo", receiver_commission_id="dec-1726264", form=form)),
            grpc.StatusCode.INVALID_ARGUMENT, "idempotency_key is required")


# --- signatures -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clerk(v1, stubs, pki):
    """A clerk of the party: prepares and sends drafts; the head signs them (cl. 8)."""
    pid = f"t-clerk-{uuid.uuid4().hex[:8]}"
    ctl("directory", "add-person", "--id", pid, "--pinfl", pinfl(), "--last-name", "Clerk", "--first-name", "Test")
    ctl("directory", "assign-role", "--organisation", "party-xdp", "--person", pid, "--role", "clerk")
    return org(v1, stubs, pki, (pid, "party-xdp"))


def test_organisation_requests_unsigned_or_wrongly_signed_or_not_by_the_head_are_refused(v1, party, clerk):
    r = v1.requests_pb2
    d = clerk.draft("dec-1726264", nomination(v1, 2, 3))
    p = clerk.payload(d.id)
    refused(lambda: clerk.call("SubmitRequest", r.SubmitRequestRequest(request_id=d.id, payload_sha256=p.payload_sha256, idempotency_key=key())),
            grpc.StatusCode.INVALID_ARGUMENT, "cms is required", "clause 8")
    other = party.credential.sign(b"some other bytes")
    refused(lambda: clerk.call("SubmitRequest", r.SubmitRequestRequest(request_id=d.id, cms=other, payload_sha256=p.payload_sha256, idempotency_key=key())),
            grpc.StatusCode.UNAUTHENTICATED, "signature check failed")
    refused(lambda: clerk.submit(d.id), grpc.StatusCode.PERMISSION_DENIED, "not the head of party-xdp", "cl. 8")
    refused(lambda: clerk.call("SubmitRequest", r.SubmitRequestRequest(request_id=d.id, cms=b"\x30\x03garbage", payload_sha256=p.payload_sha256, idempotency_key=key())),
            grpc.StatusCode.INVALID_ARGUMENT, "cms")
    # The head's signature over the clerk's draft sends it.
    sent = clerk.submit(d.id, signer=party.credential)
    assert sent.status == r.REQUEST_STATUS_SUBMITTED and sent.sender.person_id == PARTY[0]


def test_a_commission_report_signed_by_the_deputy_chairperson_is_refused(v1, stubs, pki):
    r, f = v1.requests_pb2, v1.forms_pb2
    chair = org(v1, stubs, pki, ("seed-dec-1726264-0", "dec-1726264"))
    deputy = pki.issue("seed-dec-1726264-1", "dec-1726264")
    d = chair.draft("tec-1726", f.RequestForm(commission_report=f.CommissionReportForm(subject="Premises", text="The commission moved.")))
    refused(lambda: chair.submit(d.id, signer=deputy), grpc.StatusCode.PERMISSION_DENIED, "not the chairperson")
    assert chair.submit(d.id).status == r.REQUEST_STATUS_SUBMITTED


def test_a_changed_draft_needs_a_new_signature(v1, party):
    r = v1.requests_pb2
    d = party.draft("dec-1726264", nomination(v1, 2, 3))
    p = party.payload(d.id)
    changed = party.call("UpdateDraft", r.UpdateDraftRequest(request_id=d.id, expected_version=1, form=nomination(v1, 3, 2)))
    assert changed.version == 2
    refused(lambda: party.call("UpdateDraft", r.UpdateDraftRequest(request_id=d.id, expected_version=1, form=nomination(v1, 3, 2))),
            grpc.StatusCode.ABORTED, "stale")
    refused(lambda: party.submit(d.id, payload=p), grpc.StatusCode.FAILED_PRECONDITION, "changed since its payload was fetched")
    assert party.submit(d.id).version == 3


# --- lifecycle, attachments ------------------------------------------------------------------

def test_withdraw_while_undecided_and_delete_only_drafts(v1, party):
    r = v1.requests_pb2
    sent = party.send("dec-1726264", nomination(v1, 2, 3))
    refused(lambda: party.call("DeleteDraft", r.DeleteDraftRequest(request_id=sent.id)), grpc.StatusCode.FAILED_PRECONDITION, "state submitted")
    w = party.call("WithdrawRequest", r.WithdrawRequestRequest(request_id=sent.id, reason="duplicate", idempotency_key=key()))
    assert w.status == r.REQUEST_STATUS_WITHDRAWN
    refused(lambda: party.call("WithdrawRequest", r.WithdrawRequestRequest(request_id=sent.id)), grpc.StatusCode.FAILED_PRECONDITION, "withdrawn")
    d = party.draft("dec-1726264", nomination(v1, 2, 3))
    party.call("DeleteDraft", r.DeleteDraftRequest(request_id=d.id))
    refused(lambda: party.call("GetRequest", r.GetRequestRequest(request_id=d.id)), grpc.StatusCode.NOT_FOUND)
    out = party.call("ListOutgoing", r.ListOutgoingRequest(filter=r.RequestFilter(statuses=[r.REQUEST_STATUS_WITHDRAWN])))
    assert sent.id in [x.id for x in out.requests]


def upload(party, v1, content, name="consent.pdf", sha=None, size=None, chunk=1 << 20):
    r = v1.requests_pb2
    def messages():
        yield r.UploadAttachmentRequest(header=r.AttachmentHeader(
            file_name=name, media_type="application/pdf", size_bytes=len(content) if size is None else size,
            sha256=sha or hashlib.sha256(content).hexdigest()))
        for i in range(0, len(content), chunk):
            yield r.UploadAttachmentRequest(chunk=content[i:i + chunk])
    return party.rs.UploadAttachment(messages(), metadata=party.md, timeout=60)


def test_attachments_are_checked_attached_and_read_by_the_receiver_only_in_full(v1, party, dec_chair, tec_chair):
    r = v1.requests_pb2
    content = random.randbytes(1_500_000)
    a = upload(party, v1, content)
    assert a.sha256 == hashlib.sha256(content).hexdigest() and a.size_bytes == len(content)
    refused(lambda: upload(party, v1, content, sha="0" * 64), grpc.StatusCode.INVALID_ARGUMENT, "header.sha256")
    refused(lambda: upload(party, v1, b"abc", size=2), grpc.StatusCode.INVALID_ARGUMENT, "size_bytes")
    refused(lambda: upload(party, v1, b"", size=30 << 20), grpc.StatusCode.RESOURCE_EXHAUSTED, "at most")
    form = nomination(v1, 2, 3)
    form.candidate_nomination.nominees[0].consent_attachment_sha256 = a.sha256
    refused(lambda: party.draft("dec-1726264", form), grpc.StatusCode.INVALID_ARGUMENT, "one of the request's attachments")
    refused(lambda: party.draft("dec-1726264", form, attachments=[a.sha256, "1" * 64]), grpc.StatusCode.INVALID_ARGUMENT, "this sender uploaded")
    sent = party.send("dec-1726264", form, attachments=[a.sha256])
    assert [x.sha256 for x in sent.attachments] == [a.sha256]
    body = r.RequestEnvelope.FromString(v1.common_pb2.SignedEnvelope.FromString(sent.envelope).body)
    assert list(body.attachment_sha256) == [a.sha256]
    got = b"".join(c.data for c in dec_chair.rs.DownloadAttachment(
        r.DownloadAttachmentRequest(request_id=sent.id, sha256=a.sha256), metadata=dec_chair.md, timeout=60))
    assert got == content
    refused(lambda: list(tec_chair.rs.DownloadAttachment(
        r.DownloadAttachmentRequest(request_id=sent.id, sha256=a.sha256), metadata=tec_chair.md, timeout=60)),
        grpc.StatusCode.PERMISSION_DENIED, "aggregate")


def test_what_a_sender_may_hold_is_bounded(v1, stubs, pki):
    """Budgets of docs/requests.md: uploads not attached (256 MiB a sender) and drafts (20,000 a
    sender). The test fills them through the database it owns, then asks the server."""
    r, f = v1.requests_pb2, v1.forms_pb2
    mahalla = org(v1, stubs, pki, MAHALLA)
    sender = f"organisation:{MAHALLA[1]}"
    shas = [hashlib.sha256(f"{uuid.uuid4()}".encode()).hexdigest() for _ in range(11)]
    values = ",".join(f"('{s}', '{uuid.uuid4().hex}', 26214400)" for s in shas)
    uploads = ",".join(f"('{sender}', '{s}', 'scan.pdf', 'application/pdf')" for s in shas)
    sql(f"INSERT INTO attachment_contents (sha256, upload_id, size_bytes) VALUES {values}; "
        f"INSERT INTO attachment_uploads (sender_key, sha256, file_name, media_type) VALUES {uploads}")
    try:
        refused(lambda: upload(mahalla, v1, b"%PDF-1.7 small"), grpc.StatusCode.RESOURCE_EXHAUSTED, "256 MiB")
    finally:
        ids = ",".join(f"'{s}'" for s in shas)
        sql(f"DELETE FROM attachment_uploads WHERE sha256 IN ({ids}); DELETE FROM attachment_contents WHERE sha256 IN ({ids})")
    assert upload(mahalla, v1, b"%PDF-1.7 small").size_bytes == 14
    obs = f.RequestForm(observer_mandate=f.ObserverMandateForm(observers=[f.ObserverEntry(person=person(v1), polling_station_number=7)]))
    first = mahalla.draft("tec-1718", obs)
    held = int(sql(f"SELECT count(*) FROM requests WHERE sender_key = '{sender}' AND status = 'draft'"))
    sql(f"INSERT INTO requests (id, campaign_id, catalogue_version, type, kind, sender_key, sender_organisation_id, sender_person_id, "
        f"sender_territory, receiver_id, status, form, signature_required) "
        f"SELECT md5(random()::text || g::text), campaign_id, catalogue_version, type, kind, sender_key, sender_organisation_id, "
        f"sender_person_id, sender_territory, receiver_id, 'draft', form, signature_required "
        f"FROM requests, generate_series(1, {20000 - held}) g WHERE id = '{first.id}'")
    try:
        refused(lambda: mahalla.draft("tec-1718", obs), grpc.StatusCode.RESOURCE_EXHAUSTED, "20000 drafts")
    finally:
        sql(f"DELETE FROM requests WHERE sender_key = '{sender}' AND status = 'draft'")
    assert mahalla.draft("tec-1718", obs).status == r.REQUEST_STATUS_DRAFT


def test_the_other_forms_rules(v1, stubs, pki, party):
    """Forms 2, 13, 14, 15: signatures and regional shares, stations abroad, constituencies
    within ±10% of the mean, and a window "before the campaign"."""
    r, c, f = v1.requests_pb2, v1.common_pb2, v1.forms_pb2
    regions = ["1703", "1706", "1708", "1710", "1712", "1714", "1718", "1722", "1724", "1726", "1727", "1730", "1733", "1735"]
    sigs = [f.RegionSignatures(region_soato=s, sheets=100, signatures=3000) for s in regions]
    admission = f.PartyAdmissionForm(
        election_kind=c.ELECTION_KIND_LEGISLATIVE_CHAMBER, signatures=sigs, total_signatures=42000, party_decision=decision(v1),
        justice_registration=f.DocumentReference(number="1", date=c.CalendarDate(year=2020, month=1, day=10)))
    assert party.draft("cec", f.RequestForm(party_admission=admission)).status == r.REQUEST_STATUS_DRAFT
    admission.signatures[0].signatures = 9000          # 9,000 of 48,000: over 8% from one region
    admission.total_signatures = 41000                 # and not the sum
    e = refused(lambda: party.draft("cec", f.RequestForm(party_admission=admission)), grpc.StatusCode.INVALID_ARGUMENT)
    assert dict(field_violations(e)) == {
        "form.party_admission.total_signatures": "must equal the sum of the regions' signatures (48000)",
        "form.party_admission.signatures[0].signatures": "at most 8% of the signatures may come from one region"}
    mfa = org(v1, stubs, pki, MFA)
    abroad = f.RequestForm(polling_station_abroad=f.PollingStationAbroadForm(stations=[
        f.PollingStationAbroadEntry(change=f.CHANGE_KIND_FORM, mission="Embassy in Seoul", country="KR", address="Seoul", voter_count=4000),
        f.PollingStationAbroadEntry(change=f.CHANGE_KIND_FORM, mission="Tashkent", country="UZ", address="x", voter_count=10)]))
    e = refused(lambda: mfa.draft("cec", abroad), grpc.StatusCode.INVALID_ARGUMENT, "outside Uzbekistan")
    assert [x[0] for x in field_violations(e)] == ["form.polling_station_abroad.stations[1].country"]
    hokimiyat = org(v1, stubs, pki, SAMARKAND_HOKIMIYAT)
    def constituencies(*voters):
        return f.RequestForm(constituency_proposal=f.ConstituencyProposalForm(
            election_kind=c.ELECTION_KIND_DISTRICT_COUNCIL, constituencies=[
                f.ConstituencyEntry(change=f.CHANGE_KIND_FORM, number=i + 1, name=f"No. {i + 1}", territory_soato=["1718203"], voter_count=v)
                for i, v in enumerate(voters)]))
    assert hokimiyat.send("dec-1718203", constituencies(10000, 10500, 9800)).status == r.REQUEST_STATUS_SUBMITTED
    e = refused(lambda: hokimiyat.draft("dec-1718203", constituencies(10000, 10200, 12000)), grpc.StatusCode.INVALID_ARGUMENT, "±10%")
    assert [x[0] for x in field_violations(e)] == ["form.constituency_proposal.constituencies[2].voter_count"]
    # Members for a territorial commission are recommended before the campaign: closed in `demo`.
    council = org(v1, stubs, pki, ("seed-council-1718-0", "council-1718"))
    members = f.RequestForm(territorial_commission_members=f.TerritorialCommissionMembersForm(
        commission_id="tec-1718", council_decision=decision(v1),
        nominees=[f.CommissionNominee(person=person(v1), proposed_role=c.ROLE_MEMBER)]))
    refused(lambda: council.draft("cec", members), grpc.StatusCode.FAILED_PRECONDITION, "request type 15", "closed at the end of")


def test_uploads_are_gathered_into_rows_and_bounded_in_number(v1, party):
    import threading
    import time
    r = v1.requests_pb2
    content = random.randbytes(100_000)
    a = upload(party, v1, content, chunk=100)              # 1,000 messages of 100 bytes
    assert a.size_bytes == len(content)
    rows = sql(f"SELECT count(*) FROM attachment_chunks WHERE upload_id = (SELECT upload_id FROM attachment_contents WHERE sha256 = '{a.sha256}')")
    assert rows == "1"
    # 32 uploads at once on a server; the 33rd is told to retry.
    release = threading.Event()
    started = threading.Semaphore(0)
    results = []

    def held(i):
        body = f"held upload {i} {uuid.uuid4()}".encode()
        def messages():
            yield r.UploadAttachmentRequest(header=r.AttachmentHeader(
                file_name="scan.pdf", media_type="application/pdf", size_bytes=len(body), sha256=hashlib.sha256(body).hexdigest()))
            started.release()
            release.wait(30)
            yield r.UploadAttachmentRequest(chunk=body)
        try:
            results.append(party.rs.UploadAttachment(messages(), metadata=party.md, timeout=60).size_bytes)
        except grpc.RpcError as e:
            results.append(e.code())

    threads = [threading.Thread(target=held, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for _ in threads:
        started.acquire(timeout=30)
    time.sleep(0.5)                                          # the headers have reached the server
    try:
        refused(lambda: upload(party, v1, b"one too many"), grpc.StatusCode.RESOURCE_EXHAUSTED, "uploads are in progress")
    finally:
        release.set()
        for t in threads:
            t.join()
    assert all(isinstance(x, int) for x in results), results
    assert upload(party, v1, b"now there is room").size_bytes == 17


def test_mutated_forms_and_signatures_get_clear_statuses(v1, party, server):
    """Random damage to every kind of field of a form, and random CMS bytes: each call gets a
    status that says what is wrong (never INTERNAL or UNKNOWN), and the server stays up."""
    r, f = v1.requests_pb2, v1.forms_pb2
    rng = random.Random(1303)
    clear = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND,
             grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.RESOURCE_EXHAUSTED}
    junk = ["", " ", "\x00", "\u202e\u0301" * 50, "x" * 5000, "+998" + "9" * 20, "1" * 14, "١٢٣", "0" * 64, "dec-1726264", "🗳" * 300]
    seen = set()
    for i in range(200):
        form = nomination(v1, 2, 3)
        n = form.candidate_nomination.nominees[rng.randrange(5)]
        target = rng.choice(["pinfl", "phone", "last", "address", "constituency", "election", "consent", "decision", "extra"])
        if target == "pinfl": n.person.pinfl = rng.choice(junk)
        elif target == "phone": n.person.phone = rng.choice(junk)
        elif target == "last": n.person.name.last_name = rng.choice(junk)
        elif target == "address": n.person.address = rng.choice(junk)
        elif target == "constituency": n.constituency_number = rng.choice([0, -1, 2**31 - 1, -2**31])
        elif target == "election": form.candidate_nomination.election_kind = rng.choice([0, 5, 99, -7])
        elif target == "consent": n.consent_attachment_sha256 = rng.choice(junk)
        elif target == "decision": form.candidate_nomination.party_decision.date.month = rng.choice([0, 13, -1, 2**31 - 1])
        else: form.candidate_nomination.nominees.extend([form.candidate_nomination.nominees[0]] * rng.choice([1, 600]))
        receiver = rng.choice(["dec-1726264", "cec", "nobody-here", "", "DEC!"])
        try:
            party.draft(receiver, form)
            seen.add("OK")
        except grpc.RpcError as e:
            assert e.code() in clear, (target, e.code(), e.details())
            seen.add(e.code())
    assert grpc.StatusCode.INVALID_ARGUMENT in seen
    d = party.draft("dec-1726264", nomination(v1, 2, 3))
    p = party.payload(d.id)
    for size in (1, 2, 64, 700, 5000):
        cms = rng.randbytes(size) if size != 2 else b"\x30\x80"
        try:
            party.call("SubmitRequest", r.SubmitRequestRequest(request_id=d.id, cms=cms, payload_sha256=p.payload_sha256, idempotency_key=key()))
            raise AssertionError("random bytes were accepted as a signature")
        except grpc.RpcError as e:
            assert e.code() in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED}, e.details()
    assert server.alive()
    assert party.submit(d.id).status == r.REQUEST_STATUS_SUBMITTED
