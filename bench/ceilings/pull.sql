-- The pull drain's ceiling (bench/backdoor.sh): PostgreSQL alone writing the row versions that a
-- pulled job keeps, 100 jobs a claim: marked running with a lease, then succeeded, each
-- statement committed durably, with no API in front.
WITH x AS (
  SELECT project_id, id FROM jobs
  WHERE project_id = 'shop' AND status IN ('queued', 'retrying') AND NOT pushed
    AND run_at <= now()
  ORDER BY priority DESC, run_at LIMIT 100 FOR UPDATE SKIP LOCKED),
c AS (
  UPDATE jobs j SET status = 'running', attempts = j.attempts + 1,
    locked_until = now() + interval '60 s', updated_at = now()
  FROM x WHERE j.project_id = x.project_id AND j.id = x.id
  RETURNING j.id)
SELECT quote_literal(coalesce(array_agg(id), '{}')::text) AS ids FROM c \gset
UPDATE jobs SET status = 'succeeded', completed_at = now(), locked_until = NULL,
  updated_at = now()
WHERE project_id = 'shop' AND id = ANY(:ids::uuid[]) AND status = 'running';
