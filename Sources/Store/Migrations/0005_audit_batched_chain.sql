-- A person's live sessions, for the cap on them at each sign-in (ended ones are many and
-- never looked at again).
CREATE INDEX sessions_live ON sessions (person_id, created_at DESC) WHERE revoked_at IS NULL;

-- The audit log without one lock for every writer (cl. 13 at deadline-day load): a change's
-- event is written in the change's own transaction to audit_pending, which has no lock in
-- common with other writers; one chainer at a time (the server's, every few tens of
-- milliseconds, or esaylovctl after its commands) moves committed pending events into the
-- hash chain in batches, under the head row's lock, in the order they are found. An event is
-- in the chain a moment after its change commits; its `at` is the change's time.

CREATE TABLE audit_pending (
  id                    bigserial PRIMARY KEY,
  at                    timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor_organisation_id text NOT NULL DEFAULT '' CHECK (length(actor_organisation_id) <= 64),
  actor_person_id       text NOT NULL DEFAULT '' CHECK (length(actor_person_id) <= 64),
  action                text NOT NULL CHECK (action ~ '^AUDIT_ACTION_[A-Z_]+$'),
  subject_kind          text NOT NULL DEFAULT '' CHECK (subject_kind ~ '^[a-z_]{0,32}$'),
  subject_id            text NOT NULL DEFAULT '' CHECK (length(subject_id) <= 64),
  facts                 jsonb NOT NULL DEFAULT '{}' CHECK (esaylov_facts_valid(facts))
);

-- Pending events are not edited; the chainer removes them as it chains them.
CREATE FUNCTION esaylov_audit_pending_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit events are append-only' USING ERRCODE = 'check_violation', CONSTRAINT = 'audit_events_append_only';
END $$;
CREATE TRIGGER audit_pending_no_update BEFORE UPDATE ON audit_pending
  FOR EACH ROW EXECUTE FUNCTION esaylov_audit_pending_guard();

-- The one way in, as before; it now returns the pending event's id.
CREATE OR REPLACE FUNCTION esaylov_audit_append(
  actor_organisation_id text, actor_person_id text, action text, subject_kind text, subject_id text, facts jsonb
) RETURNS bigint
LANGUAGE sql AS $$
  INSERT INTO audit_pending (actor_organisation_id, actor_person_id, action, subject_kind, subject_id, facts)
  VALUES (actor_organisation_id, actor_person_id, action, subject_kind, subject_id, facts)
  RETURNING id
$$;

-- Each new event extends the last one stored (the head row moves once per batch).
CREATE OR REPLACE FUNCTION esaylov_audit_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  last_sequence bigint;
  last_hash text;
BEGIN
  IF TG_OP <> 'INSERT' THEN
    RAISE EXCEPTION 'audit events are append-only' USING ERRCODE = 'check_violation', CONSTRAINT = 'audit_events_append_only';
  END IF;
  SELECT sequence, hash INTO last_sequence, last_hash FROM audit_events ORDER BY sequence DESC LIMIT 1;
  IF NEW.sequence <> coalesce(last_sequence, 0) + 1 OR NEW.previous_hash <> coalesce(last_hash, repeat('0', 64))
     OR NEW.hash <> esaylov_audit_hash(NEW.previous_hash, NEW.sequence, NEW.at, NEW.actor_organisation_id, NEW.actor_person_id,
                                       NEW.action, NEW.subject_kind, NEW.subject_id, NEW.facts) THEN
    RAISE EXCEPTION 'an audit event must extend the chain' USING ERRCODE = 'check_violation', CONSTRAINT = 'audit_events_chain';
  END IF;
  RETURN NEW;
END $$;

-- Chains up to `batch` committed pending events; returns how many. One chainer at a time (a
-- second one returns 0 at once rather than wait).
CREATE FUNCTION esaylov_audit_chain(batch int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
  head audit_head;
  e audit_pending;
  h text;
  done bigint[] := '{}';
BEGIN
  -- Nothing pending: nothing locked and nothing written (an idle chainer costs no WAL).
  IF NOT EXISTS (SELECT 1 FROM audit_pending) OR NOT pg_try_advisory_xact_lock(7261609) THEN
    RETURN 0;
  END IF;
  SELECT * INTO head FROM audit_head FOR UPDATE;
  FOR e IN SELECT * FROM audit_pending ORDER BY id LIMIT batch FOR UPDATE SKIP LOCKED LOOP
    h := esaylov_audit_hash(head.hash, head.sequence + 1, e.at, e.actor_organisation_id, e.actor_person_id, e.action,
                            e.subject_kind, e.subject_id, e.facts);
    INSERT INTO audit_events VALUES (head.sequence + 1, e.at, e.actor_organisation_id, e.actor_person_id, e.action,
                                     e.subject_kind, e.subject_id, e.facts, head.hash, h);
    head.sequence := head.sequence + 1;
    head.hash := h;
    done := done || e.id;
  END LOOP;
  IF cardinality(done) > 0 THEN
    DELETE FROM audit_pending WHERE id = ANY(done);
    UPDATE audit_head SET sequence = head.sequence, hash = head.hash;
  END IF;
  RETURN cardinality(done);
END $$;
