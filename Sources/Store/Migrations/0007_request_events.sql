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

-- Decision numbers run per commission, so a mandate's number names its commission too (two
-- commissions' decisions No. 1/2024 would otherwise issue the same "1/2024-1").
COMMENT ON COLUMN mandates.number IS '<commission id>:<decision number>-<place in the form>, e.g. cec:12/2024-3';

-- The functions CHECK constraints and the audit chain call on every row, as PL/pgSQL: a SQL
-- function with a subquery is not inlined and is parsed again on every call (a campaign's
-- hundred thousand people, mandates and audit events made parsing the database's largest
-- cost); PL/pgSQL keeps its plans for the session. Same expressions, same results: the hashes
-- of the chain do not change.
-- An expression PostgreSQL inlines into the CHECKs (no subquery, no call); CASE keeps the
-- casts behind the pattern.
CREATE OR REPLACE FUNCTION esaylov_pinfl_valid(p text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
  -- 14 digits, century/sex digit 1-6, DDMM a date, check digit: weights 7,3,1 over 13 digits, mod 10.
  SELECT CASE WHEN p ~ '^[1-6][0-9]{13}$' THEN
           substr(p, 2, 2)::int BETWEEN 1 AND 31 AND substr(p, 4, 2)::int BETWEEN 1 AND 12
           AND (7 * substr(p, 1, 1)::int + 3 * substr(p, 2, 1)::int + substr(p, 3, 1)::int
              + 7 * substr(p, 4, 1)::int + 3 * substr(p, 5, 1)::int + substr(p, 6, 1)::int
              + 7 * substr(p, 7, 1)::int + 3 * substr(p, 8, 1)::int + substr(p, 9, 1)::int
              + 7 * substr(p, 10, 1)::int + 3 * substr(p, 11, 1)::int + substr(p, 12, 1)::int
              + 7 * substr(p, 13, 1)::int) % 10 = substr(p, 14, 1)::int
         ELSE p IS NULL AND NULL END
$$;

-- The one way into the audit log, as PL/pgSQL (its INSERT planned once a session).
CREATE OR REPLACE FUNCTION esaylov_audit_append(
  actor_organisation_id text, actor_person_id text, action text, subject_kind text, subject_id text, facts jsonb
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  id bigint;
BEGIN
  INSERT INTO audit_pending (actor_organisation_id, actor_person_id, action, subject_kind, subject_id, facts)
  VALUES (esaylov_audit_append.actor_organisation_id, esaylov_audit_append.actor_person_id, esaylov_audit_append.action,
          esaylov_audit_append.subject_kind, esaylov_audit_append.subject_id, esaylov_audit_append.facts)
  RETURNING audit_pending.id INTO id;
  RETURN id;
END $$;

CREATE OR REPLACE FUNCTION esaylov_netstring(t text) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
  RETURN convert_to(octet_length(convert_to(t, 'UTF8'))::text || ':', 'UTF8') || convert_to(t, 'UTF8') || '\x2c'::bytea;
END $$;

CREATE OR REPLACE FUNCTION esaylov_facts_valid(facts jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
  RETURN jsonb_typeof(facts) = 'object'
     AND (SELECT count(*) FROM jsonb_object_keys(facts)) <= 16
     AND NOT EXISTS (SELECT 1 FROM jsonb_each(facts) e
                     WHERE e.key !~ '^[a-z][a-z0-9_]{0,31}$' OR jsonb_typeof(e.value) <> 'string'
                        OR length(e.value #>> '{}') > 200);
END $$;

CREATE OR REPLACE FUNCTION esaylov_audit_hash(
  previous_hash text, seq bigint, at timestamptz, actor_organisation_id text, actor_person_id text, action text,
  subject_kind text, subject_id text, facts jsonb
) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
  RETURN encode(sha256(
    esaylov_netstring('esaylov.audit.v1') || esaylov_netstring(previous_hash) || esaylov_netstring(seq::text)
    || esaylov_netstring(((extract(epoch FROM at) * 1000000)::bigint)::text)
    || esaylov_netstring(actor_organisation_id) || esaylov_netstring(actor_person_id) || esaylov_netstring(action)
    || esaylov_netstring(subject_kind) || esaylov_netstring(subject_id)
    || esaylov_netstring((SELECT count(*) FROM jsonb_object_keys(facts))::text)
    || coalesce((SELECT string_agg(esaylov_netstring(e.key) || esaylov_netstring(e.value), '\x'::bytea ORDER BY e.key COLLATE "C")
                 FROM jsonb_each_text(facts) e), '\x'::bytea)
  ), 'hex');
END $$;

-- Files of decisions: the commission uploads them (UploadAttachment, as the commission), a
-- draft names them, the approval keeps them with the decision, whose envelope binds their
-- SHA-256s. A pending draft's files are kept by the purge; a decision's for good.
CREATE TABLE decision_draft_attachments (
  draft_id    text NOT NULL REFERENCES decision_drafts (id),
  sender_key  text NOT NULL,
  sha256      text NOT NULL REFERENCES attachment_contents (sha256),
  PRIMARY KEY (draft_id, sha256)
);
CREATE INDEX decision_draft_attachments_content ON decision_draft_attachments (sha256);
CREATE TABLE decision_attachments (
  decision_id  text NOT NULL REFERENCES decisions (id) DEFERRABLE INITIALLY DEFERRED,
  sha256       text NOT NULL REFERENCES attachment_contents (sha256),
  file_name    text NOT NULL,
  media_type   text NOT NULL,
  size_bytes   bigint NOT NULL,
  PRIMARY KEY (decision_id, sha256)
);
CREATE INDEX decision_attachments_content ON decision_attachments (sha256);
