-- Decisions (cl. 10-12): drafts by the deputy chairperson or secretary, approval with the EDS of
-- the chairperson or deputy chairperson, numbers per commission and year without gaps, the
-- copies delivered, and the directory effects of granted requests.

CREATE TABLE decision_drafts (
  id                   text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
  request_id           text NOT NULL REFERENCES requests (id),
  commission_id        text NOT NULL REFERENCES organisations (id),
  outcome              text NOT NULL CHECK (outcome IN ('granted', 'partly_granted', 'refused', 'returned', 'accepted')),
  -- The draft's per-item outcomes and attachments, as the encoding of a DecisionDraft.
  body                 bytea NOT NULL CHECK (length(body) <= 4194304),
  text                 text NOT NULL CHECK (length(text) BETWEEN 1 AND 20000),
  correction_days      int NOT NULL DEFAULT 0 CHECK (correction_days BETWEEN 0 AND 30),
  CHECK ((outcome = 'returned') = (correction_days > 0)),
  drafted_by           text NOT NULL REFERENCES people (id),
  drafted_at           timestamptz NOT NULL DEFAULT now(),
  status               text NOT NULL CHECK (status IN ('pending', 'returned', 'approved', 'superseded')),
  return_comment       text NOT NULL DEFAULT '' CHECK (length(return_comment) <= 2000),
  version              bigint NOT NULL DEFAULT 1 CHECK (version >= 1)
);
-- One pending draft a request.
CREATE UNIQUE INDEX decision_drafts_one_pending ON decision_drafts (request_id) WHERE status = 'pending';
CREATE INDEX decision_drafts_request ON decision_drafts (request_id, drafted_at);

CREATE TABLE decisions (
  id                    text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
  commission_id         text NOT NULL REFERENCES organisations (id),
  number_year           int NOT NULL,
  number_seq            int NOT NULL CHECK (number_seq >= 1),
  request_id            text NOT NULL UNIQUE REFERENCES requests (id),
  draft_id              text NOT NULL UNIQUE REFERENCES decision_drafts (id),
  outcome               text NOT NULL,
  approval_envelope     bytea NOT NULL,
  approval_cms          bytea NOT NULL CHECK (length(approval_cms) <= 1048576),
  approval_signature    bytea NOT NULL,
  approver_person_id    text NOT NULL REFERENCES people (id),
  approved_at           timestamptz NOT NULL,
  correction_due        timestamptz,
  CHECK ((outcome = 'returned') = (correction_due IS NOT NULL)),
  receipt_cms           bytea,
  -- The directory effects, as the encoding of their DirectoryEffect list (a Decision's field 16).
  effects               bytea NOT NULL DEFAULT '',
  rule_version          int NOT NULL,
  UNIQUE (commission_id, number_year, number_seq)
);
CREATE INDEX decisions_series ON decisions (commission_id, number_year, number_seq);

-- Numbers run per commission per year without gaps: the counter row is taken under a lock in
-- the approving transaction.
CREATE TABLE decision_counters (
  commission_id  text NOT NULL REFERENCES organisations (id),
  year           int NOT NULL,
  last           int NOT NULL CHECK (last >= 1),
  PRIMARY KEY (commission_id, year)
);

-- The copy of a decision each recipient got (cl. 10), written in the approving transaction.
CREATE TABLE decision_deliveries (
  decision_id            text NOT NULL REFERENCES decisions (id),
  recipient_key          text NOT NULL CHECK (recipient_key ~ '^(organisation|candidate|proxy):[a-z0-9][a-z0-9-]{1,63}$'),
  delivered_at           timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (decision_id, recipient_key)
);
CREATE INDEX decision_deliveries_recipient ON decision_deliveries (recipient_key, delivered_at);

-- A decision is never changed or removed (its receipt is set once, in its transaction).
CREATE FUNCTION esaylov_decision_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' OR (NEW.id, NEW.commission_id, NEW.number_year, NEW.number_seq, NEW.request_id, NEW.draft_id, NEW.outcome,
                          NEW.approval_envelope, NEW.approval_cms, NEW.approval_signature, NEW.approver_person_id, NEW.approved_at,
                          NEW.effects) IS DISTINCT FROM
                         (OLD.id, OLD.commission_id, OLD.number_year, OLD.number_seq, OLD.request_id, OLD.draft_id, OLD.outcome,
                          OLD.approval_envelope, OLD.approval_cms, OLD.approval_signature, OLD.approver_person_id, OLD.approved_at,
                          OLD.effects)
     OR (OLD.receipt_cms IS NOT NULL AND NEW.receipt_cms IS DISTINCT FROM OLD.receipt_cms) THEN
    RAISE EXCEPTION 'an approved decision is never changed or removed'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'decisions_are_immutable';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER decisions_guard BEFORE UPDATE OR DELETE ON decisions FOR EACH ROW EXECUTE FUNCTION esaylov_decision_guard();

-- A request's decision, for reading it with the request.
ALTER TABLE requests ADD COLUMN decision_id text REFERENCES decisions (id);

-- Mandates and accreditations a decision issued (observers, foreign observers, journalists),
-- numbered "<decision number>-<place in the form>".
CREATE TABLE mandates (
  id               text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,63}$'),
  -- Written in the approving transaction before the decision row itself.
  decision_id      text NOT NULL REFERENCES decisions (id) DEFERRABLE INITIALLY DEFERRED,
  kind             text NOT NULL CHECK (kind IN ('observer', 'foreign_observer', 'journalist')),
  item_index       int NOT NULL CHECK (item_index >= 0),
  number           text NOT NULL UNIQUE,
  holder_name      text NOT NULL CHECK (length(holder_name) BETWEEN 1 AND 400),
  holder_pinfl     text CHECK (holder_pinfl IS NULL OR esaylov_pinfl_valid(holder_pinfl)),
  holder_passport  text,
  polling_station  int,
  issued_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (decision_id, item_index)
);
