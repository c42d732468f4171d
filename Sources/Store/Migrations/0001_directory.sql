-- The directory of participants (cl. 1): territories, organisations and the commission tree,
-- people, roles, certificates, candidates and proxies. Constraints guard the data itself.

CREATE FUNCTION esaylov_pinfl_valid(p text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT AS $$
  -- 14 digits, century/sex digit 1-6, DDMM a date, check digit: weights 7,3,1 over 13 digits, mod 10.
  SELECT p ~ '^[1-6][0-9]{13}$'
     AND substr(p, 2, 2)::int BETWEEN 1 AND 31
     AND substr(p, 4, 2)::int BETWEEN 1 AND 12
     AND (SELECT sum(substr(p, i, 1)::int * (ARRAY[7, 3, 1])[((i - 1) % 3) + 1]) FROM generate_series(1, 13) i) % 10
         = substr(p, 14, 1)::int
$$;

CREATE TABLE territories (
  soato        text PRIMARY KEY CHECK (soato ~ '^17([0-9]{2}|[0-9]{5}|[0-9]{8})?$'),
  level        text NOT NULL CHECK (level IN ('republic', 'region', 'district')),
  kind         text NOT NULL CHECK (kind IN ('country', 'republic', 'region', 'capital', 'district', 'city', 'city_district')),
  parent_soato text REFERENCES territories (soato),
  name_uz      text NOT NULL CHECK (name_uz <> ''),
  name_en      text NOT NULL CHECK (name_en <> ''),
  CHECK ((level = 'republic') = (parent_soato IS NULL)),
  CHECK (parent_soato IS NULL OR starts_with(soato, parent_soato))
);

CREATE TABLE organisations (
  id              text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,63}$'),
  kind            text NOT NULL CHECK (kind IN (
                    'central_election_commission', 'karakalpakstan_election_commission',
                    'territorial_election_commission', 'district_election_commission', 'political_party',
                    'party_branch', 'jokargy_kenes', 'regional_council', 'district_council',
                    'karakalpakstan_council_of_ministers', 'regional_hokimiyat', 'district_hokimiyat',
                    'ministry_of_foreign_affairs', 'mahalla', 'local_media', 'foreign_media', 'international_media',
                    'foreign_observer_organisation', 'international_observer_organisation')),
  kind_order      int NOT NULL CHECK (kind_order BETWEEN 1 AND 19),
  name_uz         text NOT NULL CHECK (length(name_uz) BETWEEN 1 AND 500),
  name_en         text NOT NULL CHECK (length(name_en) BETWEEN 1 AND 500),
  tin             text UNIQUE CHECK (tin ~ '^[24567][0-9]{8}$'),
  territory_soato text NOT NULL REFERENCES territories (soato),
  parent_id       text REFERENCES organisations (id),
  active          boolean NOT NULL DEFAULT true,
  created_at      timestamptz NOT NULL DEFAULT now(),
  CHECK (parent_id IS DISTINCT FROM id),
  -- The commission tree: only the CEC has no parent among commissions.
  CHECK (kind <> 'central_election_commission' OR parent_id IS NULL),
  CHECK (kind NOT IN ('karakalpakstan_election_commission', 'territorial_election_commission',
                      'district_election_commission', 'party_branch') OR parent_id IS NOT NULL)
);
-- Keyset order of ListOrganisations.
CREATE INDEX organisations_list ON organisations (kind_order, territory_soato, name_uz, id);
CREATE INDEX organisations_parent ON organisations (parent_id);
CREATE INDEX organisations_territory ON organisations (territory_soato text_pattern_ops);
-- One CEC.
CREATE UNIQUE INDEX organisations_one_cec ON organisations ((true)) WHERE kind = 'central_election_commission';

CREATE TABLE people (
  id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,63}$'),
  pinfl       text NOT NULL UNIQUE CHECK (esaylov_pinfl_valid(pinfl)),
  last_name   text NOT NULL CHECK (last_name <> ''),
  first_name  text NOT NULL CHECK (first_name <> ''),
  patronymic  text NOT NULL DEFAULT '',
  phone       text UNIQUE CHECK (phone ~ '^\+998[0-9]{9}$'),
  birth_date  date,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memberships (
  organisation_id text NOT NULL REFERENCES organisations (id),
  person_id       text NOT NULL REFERENCES people (id),
  role            text NOT NULL CHECK (role IN ('head', 'chairperson', 'deputy_chairperson', 'secretary', 'member', 'clerk')),
  since           timestamptz NOT NULL DEFAULT now(),
  until           timestamptz,
  PRIMARY KEY (organisation_id, person_id, role, since),
  CHECK (until IS NULL OR until > since)
);
CREATE INDEX memberships_person ON memberships (person_id);
-- At most one current head, chairperson and secretary per organisation.
CREATE UNIQUE INDEX memberships_one_current ON memberships (organisation_id, role)
  WHERE until IS NULL AND role IN ('head', 'chairperson', 'secretary');

CREATE TABLE certificates (
  issuer          text NOT NULL CHECK (issuer <> ''),
  serial          text NOT NULL CHECK (serial ~ '^[0-9a-f]{1,64}$'),
  sha256          text NOT NULL UNIQUE CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  subject_pinfl   text NOT NULL CHECK (esaylov_pinfl_valid(subject_pinfl)),
  subject_tin     text CHECK (subject_tin ~ '^[24567][0-9]{8}$'),
  not_before      timestamptz NOT NULL,
  not_after       timestamptz NOT NULL,
  revoked_at      timestamptz,
  person_id       text NOT NULL REFERENCES people (id),
  organisation_id text REFERENCES organisations (id),
  PRIMARY KEY (issuer, serial),
  CHECK (not_after > not_before)
);

CREATE TABLE candidates (
  id                        text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,63}$'),
  person_id                 text NOT NULL REFERENCES people (id),
  election_kind             text NOT NULL CHECK (election_kind IN ('legislative_chamber', 'jokargy_kenes', 'regional_council', 'district_council', 'president')),
  registering_commission_id text NOT NULL REFERENCES organisations (id),
  constituency_number       int NOT NULL DEFAULT 0 CHECK (constituency_number >= 0),
  party_id                  text REFERENCES organisations (id),
  list_position             int NOT NULL DEFAULT 0 CHECK (list_position >= 0),
  status                    text NOT NULL CHECK (status IN ('nominated', 'registered', 'refused', 'revoked', 'withdrawn')),
  campaign_id               text NOT NULL DEFAULT '',
  decision_id               text
);
CREATE INDEX candidates_commission ON candidates (registering_commission_id, id);
CREATE INDEX candidates_party ON candidates (party_id, id);

CREATE TABLE proxies (
  id           text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,63}$'),
  person_id    text NOT NULL REFERENCES people (id),
  candidate_id text NOT NULL REFERENCES candidates (id),
  status       text NOT NULL CHECK (status IN ('proposed', 'registered', 'refused', 'ended')),
  decision_id  text
);
CREATE INDEX proxies_candidate ON proxies (candidate_id);

-- Keys of this deployment (page-token MAC), made once by the database itself.
CREATE TABLE server_secrets (
  name  text PRIMARY KEY,
  value text NOT NULL CHECK (length(value) >= 32)
);
INSERT INTO server_secrets (name, value)
  VALUES ('page_token_key', encode(sha256((random()::text || clock_timestamp()::text || pg_backend_pid()::text)::bytea), 'hex'));
