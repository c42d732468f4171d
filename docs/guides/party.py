"""A party nominates district council candidates (form 3), observers (form 9), and follows its
requests. Run against Scripts/run.sh's server: python3 docs/guides/party.py"""
import random

from esaylov_client import Session, Signer, arguments, common_pb2, forms_pb2, requests_pb2


def pinfl(female, year):
    """An invented PINFL with a valid check digit (digit 1: century and sex; 2-7: DDMMYY)."""
    body = f"{4 if female else 3}{random.randrange(1, 28):02d}{random.randrange(1, 13):02d}{year % 100:02d}{random.randrange(10**6):06d}"
    return body + str(sum(int(d) * (7, 3, 1)[i % 3] for i, d in enumerate(body)) % 10)


def nominee(i, female):
    return forms_pb2.ConstituencyNominee(person=forms_pb2.PersonDetails(
        pinfl=pinfl(female, 1975 + i), name=common_pb2.PersonName(last_name="Nominee", first_name=f"No{i + 1}"),
        phone=f"+99890{random.randrange(10**7):07d}", occupation="engineer"), constituency_number=i + 1, party_member=True)


def main():
    args = arguments(("head", "seed-party-xdp-0"))
    party = Session(args.address, Signer(args.head_key, args.head_cert))
    md = party.metadata
    # Where may a nomination go? (clause 6 and the campaign's catalogue, applied to this party)
    receivers = party.requests.ListReceivers(requests_pb2.ListReceiversRequest(
        campaign_id="demo", request_type=requests_pb2.REQUEST_TYPE_CANDIDATE_NOMINATION), metadata=md, timeout=30).receivers
    assert any(r.commission_id == "dec-1726264" for r in receivers)
    # Five nominees, two of them women: at least 40% (the form is refused otherwise, naming the field).
    form = forms_pb2.RequestForm(candidate_nomination=forms_pb2.CandidateNominationForm(
        election_kind=common_pb2.ELECTION_KIND_DISTRICT_COUNCIL, nominees=[nominee(i, i < 2) for i in range(5)],
        party_decision=forms_pb2.DocumentReference(number="7/2026", date=common_pb2.CalendarDate(year=2026, month=11, day=30))))
    sent = party.send("dec-1726264", form)
    print(f"nomination sent: incoming No. {sent.incoming_number}, decision due {sent.decision_due.ToJsonString()}")
    # Observers for polling stations of the same district.
    observers = forms_pb2.RequestForm(observer_mandate=forms_pb2.ObserverMandateForm(observers=[
        forms_pb2.ObserverEntry(person=forms_pb2.PersonDetails(pinfl=pinfl(True, 1990), name=common_pb2.PersonName(
            last_name="Observer", first_name="One")), polling_station_number=12)]))
    print(f"observers sent: incoming No. {party.send('dec-1726264', observers).incoming_number}")
    # What the party sent, newest first.
    out = party.requests.ListOutgoing(requests_pb2.ListOutgoingRequest(page=common_pb2.PageRequest(page_size=5)), metadata=md, timeout=30)
    for r in out.requests:
        print(f"  {r.id} type {requests_pb2.RequestType.Name(r.type)} {requests_pb2.RequestStatus.Name(r.status)}")


if __name__ == "__main__":
    main()
