-- One row per job. project_id leads every unique index so the table can later be partitioned
-- or sharded by project.
CREATE TABLE jobs (
  project_id      text        NOT NULL,
  id              uuid        NOT NULL DEFAULT gen_random_uuid(),
  idempotency_key text        CHECK (char_length(idempotency_key) BETWEEN 1 AND 200),
  type            text        NOT NULL,
  payload         bytea       NOT NULL,
  content_type    text        NOT NULL,
  source          text,
  event_id        text,
  status          text        NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'succeeded', 'retrying', 'dead', 'cancelled')),
  attempts        integer     NOT NULL DEFAULT 0,
  max_attempts    integer     NOT NULL CHECK (max_attempts BETWEEN 1 AND 100),
  run_at          timestamptz NOT NULL DEFAULT now(),
  locked_until    timestamptz,
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  completed_at    timestamptz,
  PRIMARY KEY (project_id, id)
);

-- The duplicate check: atomic across connections, processes and gateways.
CREATE UNIQUE INDEX ix_jobs_idempotency ON jobs (project_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

-- Workers look for due jobs.
CREATE INDEX ix_jobs_due ON jobs (run_at) WHERE status IN ('queued', 'retrying');
