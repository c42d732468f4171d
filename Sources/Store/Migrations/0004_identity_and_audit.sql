-- Identity and trust (cl. 7-9, 13): staff roles, the directory's own guards, login challenges,
-- SMS codes and their outbox, sessions, and the hash-chained audit log.

-- Staff of the system's operator and auditors, held at the CEC.
ALTER TABLE memberships DROP CONSTRAINT memberships_role_check;
ALTER TABLE memberships ADD CONSTRAINT memberships_role_check CHECK (role IN (
  'head', 'chairperson', 'deputy_chairperson', 'secretary', 'member', 'clerk', 'operator', 'auditor'));

CREATE FUNCTION esaylov_is_commission(kind text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT kind IN ('central_election_commission', 'karakalpakstan_election_commission',
                  'territorial_election_commission', 'district_election_commission')
$$;

-- A membership is current from `since` (not before) until `until`: one that starts in the
-- future does not count yet.
CREATE FUNCTION esaylov_current(since timestamptz, until timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT since <= now() AND (until IS NULL OR until > now())
$$;
CREATE VIEW current_memberships AS
  SELECT * FROM memberships WHERE esaylov_current(since, until);

-- cl. 11, 12: commission roles exist only in commissions; a head and clerks only outside them;
-- operators and auditors only at the CEC.
CREATE FUNCTION esaylov_membership_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  k text;
  fits boolean;
BEGIN
  SELECT kind INTO k FROM organisations WHERE id = NEW.organisation_id;
  IF k IS NULL THEN
    RETURN NEW;  -- the foreign key reports it
  END IF;
  fits := (NEW.role IN ('operator', 'auditor') AND k = 'central_election_commission')
       OR (esaylov_is_commission(k) AND NEW.role IN ('chairperson', 'deputy_chairperson', 'secretary', 'member'))
       OR (NOT esaylov_is_commission(k) AND NEW.role IN ('head', 'clerk'));
  IF NOT fits THEN
    RAISE EXCEPTION 'the role % does not exist in an organisation of kind %', NEW.role, k
      USING ERRCODE = 'check_violation', CONSTRAINT = 'memberships_role_fits_kind';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER memberships_role_fits_kind BEFORE INSERT OR UPDATE OF role, organisation_id ON memberships
  FOR EACH ROW EXECUTE FUNCTION esaylov_membership_guard();

-- The commission tree (cl. 1, 6): territorial commissions under the CEC, district ones under a
-- territorial one, party branches under a party; and an organisation's kind does not change
-- under its members and children.
CREATE FUNCTION esaylov_organisation_kind_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  parent_kind text;
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.kind <> OLD.kind THEN
    RAISE EXCEPTION 'an organisation''s kind does not change'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'organisations_kind_fixed';
  END IF;
  SELECT kind INTO parent_kind FROM organisations WHERE id = NEW.parent_id;
  IF NEW.parent_id IS NOT NULL AND parent_kind IS NULL THEN
    RETURN NEW;  -- the foreign key reports it
  END IF;
  IF (NEW.kind IN ('karakalpakstan_election_commission', 'territorial_election_commission')
        AND parent_kind IS DISTINCT FROM 'central_election_commission')
     OR (NEW.kind = 'district_election_commission'
        AND parent_kind NOT IN ('karakalpakstan_election_commission', 'territorial_election_commission'))
     OR (NEW.kind = 'party_branch' AND parent_kind IS DISTINCT FROM 'political_party')
     OR (NOT esaylov_is_commission(NEW.kind) AND NEW.kind <> 'party_branch' AND esaylov_is_commission(parent_kind)) THEN
    RAISE EXCEPTION 'an organisation of kind % cannot sit under one of kind %', NEW.kind, coalesce(parent_kind, 'none')
      USING ERRCODE = 'check_violation', CONSTRAINT = 'organisations_parent_fits_kind';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER organisations_parent_fits_kind BEFORE INSERT OR UPDATE OF parent_id, kind ON organisations
  FOR EACH ROW EXECUTE FUNCTION esaylov_organisation_kind_guard();

-- A certificate is its holder's: the subject PINFL is the person's, and the subject TIN is the
-- organisation's for an organisation's certificate (and absent for a person's own).
CREATE FUNCTION esaylov_certificate_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM people WHERE id = NEW.person_id AND pinfl = NEW.subject_pinfl) THEN
    IF EXISTS (SELECT 1 FROM people WHERE id = NEW.person_id) THEN
      RAISE EXCEPTION 'the certificate''s PINFL is not its person''s'
        USING ERRCODE = 'check_violation', CONSTRAINT = 'certificates_pinfl_matches_person';
    END IF;
    RETURN NEW;
  END IF;
  IF NEW.organisation_id IS NULL THEN
    IF NEW.subject_tin IS NOT NULL THEN
      RAISE EXCEPTION 'a legal entity''s certificate names its organisation'
        USING ERRCODE = 'check_violation', CONSTRAINT = 'certificates_tin_matches_organisation';
    END IF;
  ELSIF NOT EXISTS (SELECT 1 FROM organisations WHERE id = NEW.organisation_id AND tin = NEW.subject_tin) THEN
    IF EXISTS (SELECT 1 FROM organisations WHERE id = NEW.organisation_id) THEN
      RAISE EXCEPTION 'the certificate''s TIN is not its organisation''s'
        USING ERRCODE = 'check_violation', CONSTRAINT = 'certificates_tin_matches_organisation';
    END IF;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER certificates_match_holder BEFORE INSERT OR UPDATE ON certificates
  FOR EACH ROW EXECUTE FUNCTION esaylov_certificate_guard();

-- The demo seed loads only into a database it has loaded before or that holds nothing.
CREATE TABLE seed_runs (
  loaded_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO seed_runs SELECT now() WHERE EXISTS (SELECT 1 FROM people WHERE id LIKE 'seed-%');

-- EDS login challenges (cl. 9): single use, 120 seconds.
CREATE TABLE login_challenges (
  id                     text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
  envelope               bytea NOT NULL CHECK (length(envelope) BETWEEN 1 AND 1024),
  certificate_sha256     text CHECK (certificate_sha256 ~ '^[0-9a-f]{64}$'),
  act_as_organisation_id text REFERENCES organisations (id),
  issued_at              timestamptz NOT NULL,
  expires_at             timestamptz NOT NULL,
  used_at                timestamptz,
  CHECK (expires_at > issued_at AND expires_at <= issued_at + interval '120 seconds'),
  CHECK (used_at IS NULL OR used_at >= issued_at)
);
CREATE INDEX login_challenges_expiry ON login_challenges (expires_at);

-- SMS codes (cl. 9): only an HMAC of each code is kept.
CREATE TABLE sms_attempts (
  id          text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
  phone       text NOT NULL CHECK (phone ~ '^\+998[0-9]{9}$'),
  -- The candidate or proxy the phone belongs to; NULL when it is nobody's (no message is sent,
  -- and the answer is the same).
  person_id   text REFERENCES people (id),
  code_mac    bytea NOT NULL CHECK (length(code_mac) = 32),
  created_at  timestamptz NOT NULL,
  expires_at  timestamptz NOT NULL,
  wrong_tries int NOT NULL DEFAULT 0 CHECK (wrong_tries BETWEEN 0 AND 5),
  used_at     timestamptz,
  CHECK (expires_at > created_at AND expires_at <= created_at + interval '5 minutes')
);
CREATE INDEX sms_attempts_phone ON sms_attempts (phone, created_at);

-- Messages waiting for the SMS gateway. A delivered message keeps no text.
CREATE TABLE sms_outbox (
  id           bigserial PRIMARY KEY,
  phone        text NOT NULL CHECK (phone ~ '^\+998[0-9]{9}$'),
  body         text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz,
  CHECK (delivered_at IS NULL OR body = '')
);
CREATE INDEX sms_outbox_pending ON sms_outbox (id) WHERE delivered_at IS NULL;

INSERT INTO server_secrets (name, value)
  VALUES ('sms_code_key', encode(sha256((random()::text || clock_timestamp()::text || pg_backend_pid()::text || 'sms')::bytea), 'hex'));

-- Sessions: only the SHA-256 of each bearer token is kept.
CREATE TABLE sessions (
  id                  text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
  token_sha256        bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
  person_id           text NOT NULL REFERENCES people (id),
  organisation_id     text REFERENCES organisations (id),
  candidate_id        text REFERENCES candidates (id),
  proxy_id            text REFERENCES proxies (id),
  method              text NOT NULL CHECK (method IN ('signature', 'sms')),
  certificate_sha256  text CHECK (certificate_sha256 ~ '^[0-9a-f]{64}$'),
  created_at          timestamptz NOT NULL,
  idle_expires_at     timestamptz NOT NULL,
  absolute_expires_at timestamptz NOT NULL,
  revoked_at          timestamptz,
  CHECK (idle_expires_at <= absolute_expires_at AND absolute_expires_at > created_at),
  -- An EDS session acts for an organisation with the certificate it signed with; an SMS one
  -- is a candidate's or a proxy's.
  CHECK ((method = 'signature') = (organisation_id IS NOT NULL AND certificate_sha256 IS NOT NULL)),
  CHECK (method = 'signature' OR num_nonnulls(candidate_id, proxy_id) = 1)
);
CREATE INDEX sessions_person ON sessions (person_id);
-- A person's live sessions, for the cap on them at each sign-in (ended ones are many and
-- never looked at again).
CREATE INDEX sessions_live ON sessions (person_id, created_at DESC) WHERE revoked_at IS NULL;

-- The audit log (cl. 13): an append-only hash chain, documented on `AuditEvent.hash` in
-- audit.proto. `esaylov_audit_append` is the one way in: a change's event is written in the
-- change's own transaction to audit_pending, which has no lock in common with other writers;
-- one chainer at a time (the server's, every few tens of milliseconds, or esaylovctl after
-- its commands) moves committed pending events into the chain in batches, under the head
-- row's lock, in the order it finds them. An event is in the chain a moment after its change
-- commits; its `at` is the change's time.
CREATE FUNCTION esaylov_netstring(t text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT convert_to(octet_length(convert_to(t, 'UTF8'))::text || ':', 'UTF8') || convert_to(t, 'UTF8') || '\x2c'::bytea
$$;

CREATE FUNCTION esaylov_facts_valid(facts jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT jsonb_typeof(facts) = 'object'
     AND (SELECT count(*) FROM jsonb_object_keys(facts)) <= 16
     AND NOT EXISTS (SELECT 1 FROM jsonb_each(facts) e
                     WHERE e.key !~ '^[a-z][a-z0-9_]{0,31}$' OR jsonb_typeof(e.value) <> 'string'
                        OR length(e.value #>> '{}') > 200)
$$;

CREATE FUNCTION esaylov_audit_hash(
  previous_hash text, seq bigint, at timestamptz, actor_organisation_id text, actor_person_id text, action text,
  subject_kind text, subject_id text, facts jsonb
) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT encode(sha256(
    esaylov_netstring('esaylov.audit.v1') || esaylov_netstring(previous_hash) || esaylov_netstring(seq::text)
    || esaylov_netstring(((extract(epoch FROM at) * 1000000)::bigint)::text)
    || esaylov_netstring(actor_organisation_id) || esaylov_netstring(actor_person_id) || esaylov_netstring(action)
    || esaylov_netstring(subject_kind) || esaylov_netstring(subject_id)
    || esaylov_netstring((SELECT count(*) FROM jsonb_object_keys(facts))::text)
    || coalesce((SELECT string_agg(esaylov_netstring(e.key) || esaylov_netstring(e.value), '\x'::bytea ORDER BY e.key COLLATE "C")
                 FROM jsonb_each_text(facts) e), '\x'::bytea)
  ), 'hex')
$$;

CREATE TABLE audit_events (
  sequence              bigint PRIMARY KEY CHECK (sequence >= 1),
  at                    timestamptz NOT NULL,
  actor_organisation_id text NOT NULL DEFAULT '' CHECK (length(actor_organisation_id) <= 64),
  actor_person_id       text NOT NULL DEFAULT '' CHECK (length(actor_person_id) <= 64),
  action                text NOT NULL CHECK (action ~ '^AUDIT_ACTION_[A-Z_]+$'),
  subject_kind          text NOT NULL DEFAULT '' CHECK (subject_kind ~ '^[a-z_]{0,32}$'),
  subject_id            text NOT NULL DEFAULT '' CHECK (length(subject_id) <= 64),
  facts                 jsonb NOT NULL DEFAULT '{}' CHECK (esaylov_facts_valid(facts)),
  previous_hash         text NOT NULL CHECK (previous_hash ~ '^[0-9a-f]{64}$'),
  hash                  text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX audit_events_subject ON audit_events (subject_id, sequence);
CREATE INDEX audit_events_actor ON audit_events (actor_person_id, sequence);

-- The chain's head: one row, locked by the chainer.
CREATE TABLE audit_head (
  one      boolean PRIMARY KEY DEFAULT true CHECK (one),
  sequence bigint NOT NULL CHECK (sequence >= 0),
  hash     text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
);
INSERT INTO audit_head VALUES (true, 0, repeat('0', 64));

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

-- The one way in; returns the pending event's id.
CREATE FUNCTION esaylov_audit_append(
  actor_organisation_id text, actor_person_id text, action text, subject_kind text, subject_id text, facts jsonb
) RETURNS bigint
LANGUAGE sql AS $$
  INSERT INTO audit_pending (actor_organisation_id, actor_person_id, action, subject_kind, subject_id, facts)
  VALUES (actor_organisation_id, actor_person_id, action, subject_kind, subject_id, facts)
  RETURNING id
$$;

-- Rows are never changed or removed, and each new one extends the last one stored (the head
-- row moves once per batch).
CREATE FUNCTION esaylov_audit_guard() RETURNS trigger
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

CREATE TRIGGER audit_events_guard BEFORE INSERT OR UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION esaylov_audit_guard();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION esaylov_audit_guard();

-- The server's signed statements of (sequence, hash): see `AuditCheckpoint` in audit.proto.
CREATE TABLE audit_checkpoints (
  sequence           bigint PRIMARY KEY CHECK (sequence >= 1),
  hash               text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
  at                 timestamptz NOT NULL,
  signed_bytes       bytea NOT NULL,
  cms                bytea NOT NULL,
  certificate_sha256 text NOT NULL CHECK (certificate_sha256 ~ '^[0-9a-f]{64}$')
);
