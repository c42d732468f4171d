"""The Ministry of Foreign Affairs submits foreign observers (form 10) and polling stations at
diplomatic missions (form 13) to the CEC. Run: python3 docs/guides/mfa.py"""
from esaylov_client import Session, Signer, arguments, common_pb2, forms_pb2


def main():
    args = arguments(("head", "seed-mfa-0"))
    mfa = Session(args.address, Signer(args.head_key, args.head_cert))
    observers = forms_pb2.RequestForm(foreign_observer_accreditation=forms_pb2.ForeignObserverAccreditationForm(observers=[
        forms_pb2.ForeignObserverEntry(name=common_pb2.PersonName(last_name="Smith", first_name="Anna"), passport_number="X1234567",
                                       country="GB", organisation="OSCE/ODIHR")]))
    print(f"foreign observers sent: incoming No. {mfa.send('cec', observers).incoming_number}")
    stations = forms_pb2.RequestForm(polling_station_abroad=forms_pb2.PollingStationAbroadForm(stations=[
        forms_pb2.PollingStationAbroadEntry(change=forms_pb2.CHANGE_KIND_FORM, mission="Embassy in Seoul", country="KR",
                                            address="Seoul, Itaewon-ro 1", voter_count=1200)]))
    print(f"stations abroad sent: incoming No. {mfa.send('cec', stations).incoming_number}")


if __name__ == "__main__":
    main()
