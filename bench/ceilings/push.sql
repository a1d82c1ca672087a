-- The push drain's ceiling (bench/backdoor.sh): PostgreSQL alone writing the row versions that a
-- pushed job's history keeps, 100 deliveries a transaction pair, with nothing sent anywhere.
-- The claim: each delivery and its job marked running, committed without waiting for the disk,
-- as the workers' claims are.
BEGIN;
SET LOCAL synchronous_commit = off;
WITH x AS (
  SELECT project_id, job_id, route FROM deliveries
  WHERE source = 'pushed' AND route = 'r' AND status IN ('queued', 'retrying')
    AND run_at <= now()
  ORDER BY run_at LIMIT 100 FOR UPDATE SKIP LOCKED),
c AS (
  UPDATE deliveries d SET status = 'running', attempts = d.attempts + 1,
    lease_token = gen_random_uuid(), updated_at = now(), locked_until = now() + interval '60 s'
  FROM x WHERE d.project_id = x.project_id AND d.job_id = x.job_id AND d.route = x.route
  RETURNING d.job_id),
j AS (
  UPDATE jobs SET status = 'running', attempts = attempts + 1, updated_at = now()
  WHERE project_id = 'shop' AND id IN (SELECT job_id FROM x))
SELECT quote_literal(coalesce(array_agg(job_id), '{}')::text) AS ids FROM c \gset
COMMIT;
-- The outcomes: an attempt each, the deliveries and their jobs succeeded, one durable commit.
BEGIN;
WITH d AS (
  UPDATE deliveries SET status = 'succeeded', completed_at = now(), lease_token = NULL,
    locked_until = NULL, updated_at = now()
  WHERE project_id = 'shop' AND job_id = ANY(:ids::uuid[]) AND route = 'r'
  RETURNING project_id, job_id, route, attempts),
a AS (
  INSERT INTO attempts (project_id, job_id, route, number, started_at, duration_ms, status_code)
  SELECT project_id, job_id, route, attempts, now(), 0, 200 FROM d)
UPDATE jobs SET status = 'succeeded', completed_at = now(), updated_at = now()
WHERE project_id = 'shop' AND id IN (SELECT job_id FROM d);
COMMIT;
