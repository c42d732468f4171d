-- The event log WatchRequests reads (docs/requests.md, "Watching"): per recipient — a
-- commission's inbox ("incoming:<commission>") or a sender's requests and the decisions that
-- concern them ("outgoing:<sender key>") — a position that follows commit order. The writing
-- transaction takes the recipient's row here under its lock as its last statement, so an event
-- with position n commits before n + 1 is assigned: a reader that has n has everything before
-- it. A bigserial would not do: ids are taken in start order and commit in another.
CREATE TABLE event_positions (
  recipient  text PRIMARY KEY
             CHECK (recipient ~ '^(incoming:[a-z0-9][a-z0-9-]{1,63}|outgoing:(organisation|candidate|proxy):[a-z0-9][a-z0-9-]{1,63})$'),
  last       bigint NOT NULL CHECK (last >= 1)
);

-- One event of one recipient: what happened, and the request's status and version after it,
-- so that a replay shows the request as it was then (what a sent request says never changes).
CREATE TABLE request_events (
  recipient    text NOT NULL REFERENCES event_positions (recipient),
  position     bigint NOT NULL CHECK (position >= 1),
  at           timestamptz NOT NULL DEFAULT now(),
  kind         text NOT NULL CHECK (kind IN ('submitted', 'review_started', 'decision_drafted', 'draft_returned', 'decided',
                                             'withdrawn', 'decision_due_soon')),
  request_id   text NOT NULL REFERENCES requests (id),
  status       text NOT NULL CHECK (status IN ('submitted', 'under_review', 'decision_drafted', 'decided', 'returned', 'withdrawn')),
  version      bigint NOT NULL CHECK (version >= 1),
  decision_id  text REFERENCES decisions (id),
  CHECK ((kind = 'decided') = (decision_id IS NOT NULL)),
  PRIMARY KEY (recipient, position)
);
-- Retention: events older than 30 days go (a cursor before them gets OUT_OF_RANGE).
CREATE INDEX request_events_age ON request_events (at);

-- An event is never changed; only retention removes it.
CREATE FUNCTION esaylov_request_event_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'a request event is never changed' USING ERRCODE = 'check_violation', CONSTRAINT = 'request_events_are_immutable';
END $$;
CREATE TRIGGER request_events_guard BEFORE UPDATE ON request_events FOR EACH ROW EXECUTE FUNCTION esaylov_request_event_guard();

-- The timer event "decision due soon" is written once a request, by whichever replica's
-- maintenance finds it first.
CREATE TABLE request_due_notices (
  request_id  text PRIMARY KEY REFERENCES requests (id),
  noted_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX requests_due ON requests (decision_due) WHERE status IN ('submitted', 'under_review', 'decision_drafted');
