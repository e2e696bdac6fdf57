-- The database is the last guard against overselling: even if Redis lost writes and issued a claim twice,
-- PostgreSQL refuses a claims row beyond the campaign's stock or beyond the user's per_user_limit.
--
-- Stock: sequences are unique per campaign (claims_campaign_sequence_key), so requiring sequence <= stock
-- caps the rows of a campaign at stock without counting them (pigeonhole), at O(batch) cost.
-- Per user: counted after the campaign rows are locked. The lock is FOR NO KEY UPDATE, which serialises
-- concurrent inserts for one campaign (and stock changes) but not the FK checks' KEY SHARE locks, so two
-- inserting transactions cannot deadlock on it; rows are locked in id order for the same reason. Each
-- statement of a plpgsql function takes a fresh snapshot under READ COMMITTED, so the count sees every row
-- committed by the transaction that held the lock before us. (Under REPEATABLE READ it would not: the
-- worker inserts in READ COMMITTED.)
-- A refusal raises check_violation (SQLSTATE 23514) naming the constraint claims_within_stock or
-- claims_within_user_limit, which the worker turns into a failed_claims row.
CREATE FUNCTION claims_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  bad record;
BEGIN
  PERFORM 1 FROM campaigns c
    WHERE c.id IN (SELECT DISTINCT n.campaign_id FROM new_rows n)
    ORDER BY c.id
    FOR NO KEY UPDATE;

  SELECT n.campaign_id, n.sequence, c.stock INTO bad
    FROM new_rows n JOIN campaigns c ON c.id = n.campaign_id
    WHERE n.sequence > c.stock
    LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'claim sequence % of campaign % is beyond its stock of %', bad.sequence, bad.campaign_id, bad.stock
      USING ERRCODE = 'check_violation', CONSTRAINT = 'claims_within_stock', TABLE = 'claims';
  END IF;

  SELECT u.campaign_id, u.user_id, c.per_user_limit, x.n INTO bad
    FROM (SELECT DISTINCT n.campaign_id, n.user_id FROM new_rows n) u
    JOIN campaigns c ON c.id = u.campaign_id
    CROSS JOIN LATERAL (
      SELECT count(*) AS n FROM claims x WHERE x.campaign_id = u.campaign_id AND x.user_id = u.user_id
    ) x
    WHERE x.n > c.per_user_limit
    LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'user % would hold % claims of campaign %, over its per-user limit of %', bad.user_id, bad.n, bad.campaign_id, bad.per_user_limit
      USING ERRCODE = 'check_violation', CONSTRAINT = 'claims_within_user_limit', TABLE = 'claims';
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER claims_guard AFTER INSERT ON claims
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION claims_guard();
