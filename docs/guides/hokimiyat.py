"""A district hokimiyat (Oqdaryo, Samarkand region) proposes polling stations (form 12) and
constituencies (form 14) to its own district commission. Run: python3 docs/guides/hokimiyat.py"""
import grpc

from esaylov_client import Session, Signer, arguments, common_pb2, forms_pb2


def main():
    args = arguments(("head", "seed-hokimiyat-1718203-0"))
    hokimiyat = Session(args.address, Signer(args.head_key, args.head_cert))
    stations = forms_pb2.RequestForm(polling_station_proposal=forms_pb2.PollingStationProposalForm(district_soato="1718203", stations=[
        forms_pb2.PollingStationEntry(change=forms_pb2.CHANGE_KIND_FORM, number=101, address="School No. 3", voter_count=1450),
        forms_pb2.PollingStationEntry(change=forms_pb2.CHANGE_KIND_FORM, number=102, address="Clinic", voter_count=300, special=True)]))
    print(f"polling stations sent: incoming No. {hokimiyat.send('dec-1718203', stations).incoming_number}")
    constituencies = forms_pb2.RequestForm(constituency_proposal=forms_pb2.ConstituencyProposalForm(
        election_kind=common_pb2.ELECTION_KIND_DISTRICT_COUNCIL, constituencies=[
            forms_pb2.ConstituencyEntry(change=forms_pb2.CHANGE_KIND_FORM, number=n, name=f"Oqdaryo No. {n}", territory_soato=["1718203"],
                                        voter_count=v) for n, v in ((1, 10100), (2, 9900), (3, 10050))]))
    print(f"constituencies sent: incoming No. {hokimiyat.send('dec-1718203', constituencies).incoming_number}")
    # A neighbouring region's commission is refused, naming clause 6's rule.
    try:
        hokimiyat.send("tec-1706", stations)
    except grpc.RpcError as e:
        print(f"to Bukhara: {e.code().name}: {e.details()}")


if __name__ == "__main__":
    main()
