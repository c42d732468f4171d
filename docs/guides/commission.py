"""A district commission works its inbox: takes a request into review, its secretary drafts the
decision (clause 12), its chairperson approves it with the EDS (clause 11); the decision is
numbered, its directory effects apply and the sender's copy is delivered at once. Run after
party.py: python3 docs/guides/commission.py"""
import uuid

from esaylov_client import Session, Signer, arguments, decisions_pb2, requests_pb2


def main():
    args = arguments(("secretary", "seed-dec-1726264-2"), ("chair", "seed-dec-1726264-0"))
    secretary = Session(args.address, Signer(args.secretary_key, args.secretary_cert))
    chair = Session(args.address, Signer(args.chair_key, args.chair_cert))
    inbox = secretary.requests.ListIncoming(requests_pb2.ListIncomingRequest(filter=requests_pb2.RequestFilter(
        types=[requests_pb2.REQUEST_TYPE_CANDIDATE_NOMINATION], statuses=[requests_pb2.REQUEST_STATUS_SUBMITTED])),
        metadata=secretary.metadata, timeout=30)
    print(f"{len(inbox.requests)} nominations waiting")
    request = inbox.requests[-1]
    secretary.decisions.StartReview(decisions_pb2.StartReviewRequest(request_id=request.id, idempotency_key=str(uuid.uuid4())),
                                    metadata=secretary.metadata, timeout=30)
    draft = secretary.decisions.DraftDecision(decisions_pb2.DraftDecisionRequest(
        request_id=request.id, outcome=decisions_pb2.DECISION_OUTCOME_GRANTED, text="The commission registers the candidates.",
        idempotency_key=str(uuid.uuid4())), metadata=secretary.metadata, timeout=30)
    payload = chair.decisions.GetApprovalPayload(decisions_pb2.GetApprovalPayloadRequest(draft_id=draft.id), metadata=chair.metadata, timeout=30)
    decision = chair.decisions.ApproveDecision(decisions_pb2.ApproveDecisionRequest(
        draft_id=draft.id, cms=chair.signer.sign(payload.payload), payload_sha256=payload.payload_sha256, idempotency_key=str(uuid.uuid4())),
        metadata=chair.metadata, timeout=30)
    print(f"decision {decision.number}: {len(decision.effects)} directory effects, delivered to "
          f"{', '.join(a.display_name for a in decision.delivered_to)}")
    print(f"check it: esaylovctl decision export --commission {decision.commission_id} --number '{decision.number}' --out /tmp/decision")


if __name__ == "__main__":
    main()
