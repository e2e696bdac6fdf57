-- Lifecycle (issue 12): a claim holds a unit while it is neither cancelled nor expired. Returned units are
-- issued again under new sequences beyond the last one, so sequences may exceed stock and the old
-- pigeonhole check (sequence <= stock) no longer bounds the rows. Instead campaigns.active_claims counts the
-- rows that hold a unit, kept by statement triggers on insert, update and delete, and the guard checks
-- active_claims <= stock: O(batch), whatever the campaign's size.
--
-- Every trigger first locks the campaign rows it touches (FOR NO KEY UPDATE, id order), as before, so
-- concurrent batches of one campaign serialise and each sees the counter the previous one committed.
-- For INSERT ... ON CONFLICT DO UPDATE, PostgreSQL fires the statement's AFTER UPDATE trigger before its
-- AFTER INSERT trigger: the units a batch releases are subtracted before the ones it takes are checked.
-- The per-user limit counts active rows only, so a user who cancelled may hold a new claim.
CREATE OR REPLACE FUNCTION claims_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  bad record;
BEGIN
  PERFORM 1 FROM campaigns c
    WHERE c.id IN (SELECT DISTINCT n.campaign_id FROM new_rows n)
    ORDER BY c.id
    FOR NO KEY UPDATE;

  SELECT n.campaign_id INTO bad
    FROM new_rows n LEFT JOIN campaigns c ON c.id = n.campaign_id
    WHERE c.id IS NULL
    LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'insert or update on table "claims" violates foreign key constraint "claims_campaign_id_campaigns_id_fk": campaign % does not exist', bad.campaign_id
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'claims_campaign_id_campaigns_id_fk', TABLE = 'claims';
  END IF;

  SELECT u.campaign_id, u.user_id, c.per_user_limit, x.n INTO bad
    FROM (SELECT DISTINCT n.campaign_id, n.user_id FROM new_rows n WHERE n.cancelled_at IS NULL AND n.expired_at IS NULL) u
    JOIN campaigns c ON c.id = u.campaign_id
    CROSS JOIN LATERAL (
      SELECT count(*) AS n FROM claims x
        WHERE x.campaign_id = u.campaign_id AND x.user_id = u.user_id AND x.cancelled_at IS NULL AND x.expired_at IS NULL
    ) x
    WHERE x.n > c.per_user_limit
    LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'user % would hold % active claims of campaign %, over its per-user limit of %', bad.user_id, bad.n, bad.campaign_id, bad.per_user_limit
      USING ERRCODE = 'check_violation', CONSTRAINT = 'claims_within_user_limit', TABLE = 'claims';
  END IF;

  WITH d AS (
    SELECT n.campaign_id, count(*)::int AS n FROM new_rows n
      WHERE n.cancelled_at IS NULL AND n.expired_at IS NULL
      GROUP BY n.campaign_id
  ), u AS (
    UPDATE campaigns c SET active_claims = c.active_claims + d.n FROM d WHERE c.id = d.campaign_id
    RETURNING c.id, c.active_claims, c.stock
  )
  SELECT u.id AS campaign_id, u.active_claims, u.stock INTO bad FROM u WHERE u.active_claims > u.stock LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'campaign % would have % active claims, beyond its stock of %', bad.campaign_id, bad.active_claims, bad.stock
      USING ERRCODE = 'check_violation', CONSTRAINT = 'claims_within_stock', TABLE = 'claims';
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
-- Updates move units: a cancellation or an expiry gives one back; a row made active again (by hand) takes
-- one and is checked against the stock like an insert.
CREATE FUNCTION claims_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  bad record;
BEGIN
  PERFORM 1 FROM campaigns c
    WHERE c.id IN (SELECT n.campaign_id FROM new_rows n UNION SELECT o.campaign_id FROM old_rows o)
    ORDER BY c.id
    FOR NO KEY UPDATE;

  WITH d AS (
    SELECT x.campaign_id, sum(x.delta)::int AS delta FROM (
      SELECT n.campaign_id, CASE WHEN n.cancelled_at IS NULL AND n.expired_at IS NULL THEN 1 ELSE 0 END AS delta FROM new_rows n
      UNION ALL
      SELECT o.campaign_id, CASE WHEN o.cancelled_at IS NULL AND o.expired_at IS NULL THEN -1 ELSE 0 END FROM old_rows o
    ) x GROUP BY x.campaign_id HAVING sum(x.delta) <> 0
  ), u AS (
    UPDATE campaigns c SET active_claims = c.active_claims + d.delta FROM d WHERE c.id = d.campaign_id
    RETURNING c.id, c.active_claims, c.stock, d.delta
  )
  SELECT u.id AS campaign_id, u.active_claims, u.stock INTO bad FROM u WHERE u.delta > 0 AND u.active_claims > u.stock LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'campaign % would have % active claims, beyond its stock of %', bad.campaign_id, bad.active_claims, bad.stock
      USING ERRCODE = 'check_violation', CONSTRAINT = 'claims_within_stock', TABLE = 'claims';
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER claims_guard_update AFTER UPDATE ON claims
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION claims_guard_update();
--> statement-breakpoint
-- Rows are never deleted by the service; an operator (or a test simulating a restore) that deletes some
-- keeps the counter right.
CREATE FUNCTION claims_guard_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM campaigns c
    WHERE c.id IN (SELECT DISTINCT o.campaign_id FROM old_rows o)
    ORDER BY c.id
    FOR NO KEY UPDATE;
  WITH d AS (
    SELECT o.campaign_id, count(*)::int AS n FROM old_rows o
      WHERE o.cancelled_at IS NULL AND o.expired_at IS NULL
      GROUP BY o.campaign_id
  )
  UPDATE campaigns c SET active_claims = c.active_claims - d.n FROM d WHERE c.id = d.campaign_id;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER claims_guard_delete AFTER DELETE ON claims
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION claims_guard_delete();
--> statement-breakpoint
UPDATE campaigns c SET active_claims = (SELECT count(*) FROM claims x WHERE x.campaign_id = c.id);
