-- The directory guards its own shape: no organisation is its own ancestor, chains stay
-- shallow, and no timestamp is infinite (they become wire Timestamps, which have a range).

-- The parent chain of every organisation ends at a root within 16 steps. Changes of
-- parents are serialised (a transaction-scoped advisory lock), so two concurrent changes
-- cannot close a cycle between them.
CREATE FUNCTION esaylov_organisation_parent_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  steps int;
  looped boolean;
BEGIN
  IF NEW.parent_id IS NULL THEN
    RETURN NEW;
  END IF;
  PERFORM pg_advisory_xact_lock(7261607);
  WITH RECURSIVE up(id, parent_id, depth, path) AS (
    SELECT o.id, o.parent_id, 1, ARRAY[NEW.id, o.id] FROM organisations o WHERE o.id = NEW.parent_id
    UNION ALL
    SELECT o.id, o.parent_id, up.depth + 1, up.path || o.id
    FROM organisations o JOIN up ON o.id = up.parent_id
    WHERE NOT o.id = ANY(up.path) AND up.depth < 64
  )
  SELECT max(depth), bool_or(parent_id = ANY(path)) INTO steps, looped FROM up;
  IF looped THEN
    RAISE EXCEPTION 'an organisation cannot be its own ancestor'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'organisations_parent_acyclic';
  END IF;
  IF steps >= 16 THEN
    RAISE EXCEPTION 'an organisation''s parent chain is limited to 16 levels'
      USING ERRCODE = 'check_violation', CONSTRAINT = 'organisations_parent_depth';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER organisations_parent_guard
  BEFORE INSERT OR UPDATE OF parent_id ON organisations
  FOR EACH ROW EXECUTE FUNCTION esaylov_organisation_parent_guard();

ALTER TABLE organisations ADD CONSTRAINT organisations_created_finite CHECK (isfinite(created_at));
ALTER TABLE people ADD CONSTRAINT people_created_finite CHECK (isfinite(created_at));
ALTER TABLE memberships ADD CONSTRAINT memberships_finite CHECK (isfinite(since) AND (until IS NULL OR isfinite(until)));
ALTER TABLE certificates ADD CONSTRAINT certificates_finite
  CHECK (isfinite(not_before) AND isfinite(not_after) AND (revoked_at IS NULL OR isfinite(revoked_at)));
