-- The jobs API: priorities, leases for pull workers, listing newest first.
ALTER TABLE jobs
  ADD COLUMN priority    integer NOT NULL DEFAULT 0,
  ADD COLUMN lease_token uuid;

-- Claiming: the most urgent due job of a project first.
CREATE INDEX ix_jobs_claim ON jobs (project_id, priority DESC, run_at)
  WHERE status IN ('queued', 'retrying');

-- Leases that ran out.
CREATE INDEX ix_jobs_lease ON jobs (project_id, locked_until) WHERE status = 'running';

-- GET /v1/jobs: newest first, resumed from a cursor.
CREATE INDEX ix_jobs_created ON jobs (project_id, created_at DESC, id DESC);

DROP INDEX ix_jobs_due;

-- A retried job gets its allowance of attempts again on top of those it used, so the cap can
-- pass the 100 a client may ask for; the allowance itself stays bounded.
ALTER TABLE jobs ADD COLUMN attempt_allowance integer;
UPDATE jobs SET attempt_allowance = max_attempts;
ALTER TABLE jobs
  ALTER COLUMN attempt_allowance SET NOT NULL,
  ADD CONSTRAINT jobs_attempt_allowance_check CHECK (attempt_allowance BETWEEN 1 AND 100),
  DROP CONSTRAINT jobs_max_attempts_check,
  ADD CONSTRAINT jobs_max_attempts_check CHECK (max_attempts >= attempt_allowance);
