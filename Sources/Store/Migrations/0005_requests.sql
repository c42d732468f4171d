-- Requests (cl. 2, 6-9): campaigns and their versioned catalogues, drafts, attachments,
-- submission with an incoming number per commission and year, the request's history, and the
-- idempotency keys of every mutating call. The schema guards what the code also checks.

CREATE TABLE campaigns (
  id                            text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,63}$'),
  name                          text NOT NULL CHECK (length(name) BETWEEN 1 AND 500),
  election_kinds                text[] NOT NULL CHECK (cardinality(election_kinds) BETWEEN 1 AND 5
                                  AND election_kinds <@ ARRAY['legislative_chamber', 'jokargy_kenes', 'regional_council', 'district_council', 'president']),
  announced_on                  date NOT NULL,
  election_day                  date NOT NULL,
  closed_at                     timestamptz,
  catalogue_version             int NOT NULL CHECK (catalogue_version >= 1),
  max_attachment_bytes          bigint NOT NULL DEFAULT 26214400 CHECK (max_attachment_bytes BETWEEN 1 AND 26214400),
  max_attachments_per_request   int NOT NULL DEFAULT 20 CHECK (max_attachments_per_request BETWEEN 0 AND 100),
  max_request_attachment_bytes  bigint NOT NULL DEFAULT 104857600 CHECK (max_request_attachment_bytes BETWEEN 0 AND 1073741824),
  forbid_drafter_approving      boolean NOT NULL DEFAULT false,
  created_at                    timestamptz NOT NULL DEFAULT now(),
  CHECK (election_day > announced_on)
);
CREATE INDEX campaigns_newest ON campaigns (election_day DESC, id);

-- Every version of a campaign's catalogue, kept: requests name the version they were checked
-- against. A version is never changed; a change is a new version.
CREATE TABLE campaign_catalogues (
  campaign_id  text NOT NULL REFERENCES campaigns (id),
  version      int NOT NULL CHECK (version >= 1),
  definition   jsonb NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
  note         text NOT NULL DEFAULT '' CHECK (length(note) <= 500),
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (campaign_id, version)
);
ALTER TABLE campaigns ADD FOREIGN KEY (id, catalogue_version) REFERENCES campaign_catalogues (campaign_id, version)
  DEFERRABLE INITIALLY DEFERRED;

CREATE FUNCTION esaylov_catalogue_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'a catalogue version is never changed or removed: add a new version'
    USING ERRCODE = 'check_violation', CONSTRAINT = 'catalogue_versions_are_immutable';
END $$;
CREATE TRIGGER campaign_catalogues_immutable BEFORE UPDATE OR DELETE ON campaign_catalogues
  FOR EACH ROW EXECUTE FUNCTION esaylov_catalogue_guard();

CREATE FUNCTION esaylov_campaign_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.catalogue_version < OLD.catalogue_version THEN
    RAISE EXCEPTION 'a campaign''s catalogue version only moves forward'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'catalogue_version_forward';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER campaigns_guard BEFORE UPDATE ON campaigns FOR EACH ROW EXECUTE FUNCTION esaylov_campaign_guard();

-- Attachments: stored once per content. An upload writes its chunks under its own id as they
-- arrive; once its SHA-256 checks out it becomes the content's copy (or is dropped when the
-- content is already stored). Each sender sees only what it uploaded.
CREATE TABLE attachment_chunks (
  upload_id  text NOT NULL CHECK (upload_id ~ '^[0-9a-f]{32}$'),
  seq        int NOT NULL CHECK (seq >= 0),
  data       bytea NOT NULL CHECK (length(data) BETWEEN 1 AND 1048576),
  written_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (upload_id, seq)
);
CREATE TABLE attachment_contents (
  sha256      text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  upload_id   text NOT NULL UNIQUE,
  size_bytes  bigint NOT NULL CHECK (size_bytes BETWEEN 0 AND 26214400),
  stored_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE attachment_uploads (
  sender_key   text NOT NULL CHECK (sender_key ~ '^(organisation|candidate|proxy):[a-z0-9][a-z0-9-]{1,63}$'),
  sha256       text NOT NULL REFERENCES attachment_contents (sha256),
  file_name    text NOT NULL CHECK (length(file_name) BETWEEN 1 AND 255 AND file_name !~ '[[:cntrl:]|]'),
  media_type   text NOT NULL CHECK (media_type ~ '^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$' AND length(media_type) <= 127),
  uploaded_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (sender_key, sha256)
);
CREATE INDEX attachment_uploads_age ON attachment_uploads (uploaded_at);

CREATE TABLE requests (
  id                         text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
  campaign_id                text NOT NULL REFERENCES campaigns (id),
  catalogue_version          int NOT NULL,
  type                       int NOT NULL CHECK (type BETWEEN 1 AND 17),
  kind                       text NOT NULL CHECK (kind IN ('application', 'submission', 'recommendation')),
  sender_key                 text NOT NULL CHECK (sender_key ~ '^(organisation|candidate|proxy):[a-z0-9][a-z0-9-]{1,63}$'),
  sender_organisation_id     text REFERENCES organisations (id),
  sender_candidate_id        text REFERENCES candidates (id),
  sender_proxy_id            text REFERENCES proxies (id),
  sender_person_id           text NOT NULL REFERENCES people (id),
  sender_territory           text NOT NULL REFERENCES territories (soato),
  receiver_id                text NOT NULL REFERENCES organisations (id),
  status                     text NOT NULL CHECK (status IN ('draft', 'submitted', 'under_review', 'decision_drafted', 'decided', 'returned', 'withdrawn')),
  version                    bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
  form                       bytea NOT NULL CHECK (length(form) <= 4194304),
  signature_required         boolean NOT NULL,
  corrects_request_id        text REFERENCES requests (id),
  created_at                 timestamptz NOT NULL DEFAULT now(),
  updated_at                 timestamptz NOT NULL DEFAULT now(),
  submitted_at               timestamptz,
  decision_due               timestamptz,
  incoming_year              int,
  incoming_seq               int CHECK (incoming_seq >= 1),
  envelope                   bytea,
  cms                        bytea CHECK (length(cms) <= 1048576),
  signature                  bytea,
  signer_person_id           text REFERENCES people (id),
  withdrawn_at               timestamptz,
  withdraw_reason            text CHECK (length(withdraw_reason) <= 2000),
  FOREIGN KEY (campaign_id, catalogue_version) REFERENCES campaign_catalogues (campaign_id, version),
  -- Exactly one sender: an organisation, a candidate or a proxy, named by sender_key too.
  CHECK (num_nonnulls(sender_organisation_id, sender_candidate_id, sender_proxy_id) = 1),
  CHECK (sender_key = COALESCE('organisation:' || sender_organisation_id, 'candidate:' || sender_candidate_id, 'proxy:' || sender_proxy_id)),
  -- cl. 7: organisations sign, candidates and proxies do not.
  CHECK (signature_required = (sender_organisation_id IS NOT NULL)),
  -- A sent request has its envelope, its incoming number and, where required, its signature.
  CHECK ((status = 'draft') = (submitted_at IS NULL)),
  CHECK (status = 'draft' OR (envelope IS NOT NULL AND incoming_year IS NOT NULL AND incoming_seq IS NOT NULL)),
  CHECK (status = 'draft' OR signature_required = (cms IS NOT NULL AND signature IS NOT NULL AND signer_person_id IS NOT NULL)),
  CHECK ((status = 'withdrawn') = (withdrawn_at IS NOT NULL)),
  UNIQUE (receiver_id, incoming_year, incoming_seq)
);
-- ListIncoming: the inbox in keyset order (oldest sent first); ListOutgoing: newest first.
CREATE INDEX requests_inbox ON requests (receiver_id, submitted_at, id) WHERE status <> 'draft';
CREATE INDEX requests_outbox ON requests (sender_key, created_at DESC, id DESC);
CREATE INDEX requests_drafts ON requests (sender_key) WHERE status = 'draft';
CREATE INDEX requests_sender_candidate ON requests (sender_candidate_id) WHERE sender_candidate_id IS NOT NULL;

-- What a sent request says never changes; its status moves only along the lifecycle table of
-- Domain/RequestLifecycle.swift (docs/requests.md); a sent request is never deleted.
CREATE FUNCTION esaylov_request_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    IF OLD.status <> 'draft' THEN
      RAISE EXCEPTION 'a sent request is never deleted' USING ERRCODE = 'check_violation', CONSTRAINT = 'sent_requests_are_kept';
    END IF;
    RETURN OLD;
  END IF;
  IF OLD.status <> 'draft' AND (NEW.form, NEW.envelope, NEW.cms, NEW.signature, NEW.sender_key, NEW.receiver_id, NEW.type,
                                NEW.campaign_id, NEW.incoming_year, NEW.incoming_seq, NEW.submitted_at, NEW.catalogue_version)
                         IS DISTINCT FROM (OLD.form, OLD.envelope, OLD.cms, OLD.signature, OLD.sender_key, OLD.receiver_id, OLD.type,
                                OLD.campaign_id, OLD.incoming_year, OLD.incoming_seq, OLD.submitted_at, OLD.catalogue_version) THEN
    RAISE EXCEPTION 'what a sent request says never changes' USING ERRCODE = 'check_violation', CONSTRAINT = 'sent_requests_are_immutable';
  END IF;
  IF NEW.status IS DISTINCT FROM OLD.status AND (OLD.status, NEW.status) NOT IN (
      ('draft', 'submitted'), ('submitted', 'withdrawn'), ('under_review', 'withdrawn'), ('decision_drafted', 'withdrawn'),
      ('submitted', 'under_review'), ('under_review', 'decision_drafted'), ('decision_drafted', 'under_review'),
      ('decision_drafted', 'decided'), ('decision_drafted', 'returned')) THEN
    RAISE EXCEPTION 'a request does not move from % to %', OLD.status, NEW.status
      USING ERRCODE = 'check_violation', CONSTRAINT = 'request_lifecycle';
  END IF;
  IF NEW.version <= OLD.version THEN
    RAISE EXCEPTION 'every change of a request increments its version' USING ERRCODE = 'check_violation', CONSTRAINT = 'request_version';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER requests_guard BEFORE UPDATE OR DELETE ON requests FOR EACH ROW EXECUTE FUNCTION esaylov_request_guard();

CREATE TABLE request_attachments (
  request_id  text NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
  sha256      text NOT NULL REFERENCES attachment_contents (sha256),
  file_name   text NOT NULL,
  media_type  text NOT NULL,
  size_bytes  bigint NOT NULL,
  PRIMARY KEY (request_id, sha256)
);
CREATE INDEX request_attachments_content ON request_attachments (sha256);

-- Incoming numbers run per commission per year, without gaps: the counter row is taken under
-- a lock in the submitting transaction.
CREATE TABLE incoming_counters (
  commission_id  text NOT NULL REFERENCES organisations (id),
  year           int NOT NULL,
  last           int NOT NULL CHECK (last >= 1),
  PRIMARY KEY (commission_id, year)
);

-- The timeline of every request (GetRequestHistory): ids and states, never form content.
CREATE TABLE request_history (
  id                     bigserial PRIMARY KEY,
  request_id             text NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
  at                     timestamptz NOT NULL DEFAULT now(),
  actor_organisation_id  text NOT NULL DEFAULT '',
  actor_person_id        text NOT NULL,
  kind                   text NOT NULL CHECK (kind ~ '^[a-z_]+$'),
  from_status            text,
  to_status              text NOT NULL,
  version                bigint NOT NULL,
  note                   text NOT NULL DEFAULT '' CHECK (length(note) <= 2000)
);
CREATE INDEX request_history_request ON request_history (request_id, id);

-- Idempotency keys of mutating calls, per sender, kept at least 7 days (purged after 8): the
-- first response is returned to a retry with the same request; another request is refused.
CREATE TABLE idempotency_keys (
  sender_key      text NOT NULL,
  key             text NOT NULL CHECK (key ~ '^[A-Za-z0-9_-]{1,64}$'),
  method          text NOT NULL,
  request_sha256  bytea NOT NULL CHECK (length(request_sha256) = 32),
  response        bytea,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (sender_key, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
