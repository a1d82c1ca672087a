-- Routes (docs/delivery.md): a job that a source's routes push is `pushed`, and never given to a
-- pull worker; each route that takes it has a delivery of its own, and every push attempt is
-- recorded. The job's own status, attempts, run_at and last_error then summarise its deliveries.
ALTER TABLE jobs ADD COLUMN pushed boolean NOT NULL DEFAULT false;

-- Pull claims only ever look at jobs nobody pushes.
DROP INDEX ix_jobs_claim;
CREATE INDEX ix_jobs_claim ON jobs (project_id, priority DESC, run_at)
  WHERE status IN ('queued', 'retrying') AND NOT pushed;
DROP INDEX ix_jobs_lease;
CREATE INDEX ix_jobs_lease ON jobs (project_id, locked_until) WHERE status = 'running' AND NOT pushed;

CREATE TABLE deliveries (
  project_id        text COLLATE "C" NOT NULL,
  job_id            uuid        NOT NULL,
  route             text        NOT NULL,
  source            text        NOT NULL,
  status            text        NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'succeeded', 'retrying', 'dead', 'cancelled')),
  attempts          integer     NOT NULL DEFAULT 0,
  attempt_allowance integer     NOT NULL CHECK (attempt_allowance BETWEEN 1 AND 100),
  max_attempts      integer     NOT NULL CHECK (max_attempts >= attempt_allowance),
  run_at            timestamptz NOT NULL DEFAULT now(),
  lease_token       uuid,
  locked_until      timestamptz,
  last_error        text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  completed_at      timestamptz,
  PRIMARY KEY (project_id, job_id, route),
  FOREIGN KEY (project_id, job_id) REFERENCES jobs ON DELETE CASCADE
);

-- Push workers claim a route's due deliveries, oldest first, and count those in flight (leases
-- that ran out included: they are claimed again).
CREATE INDEX ix_deliveries_due ON deliveries (source, route, run_at)
  WHERE status IN ('queued', 'retrying');
CREATE INDEX ix_deliveries_running ON deliveries (source, route, locked_until)
  WHERE status = 'running';

-- Each route's state, shared by every gateway process: its breaker (closed; open, until one
-- attempt probes it; paused, until an operator resumes it) and its pace.
CREATE TABLE routes (
  source       text        NOT NULL,
  route        text        NOT NULL,
  state        text        NOT NULL DEFAULT 'closed' CHECK (state IN ('closed', 'open', 'paused')),
  reason       text,                               -- why it is open or paused
  failures     integer     NOT NULL DEFAULT 0,     -- failed attempts in a row
  opened_until timestamptz,                        -- open: when the probe may begin
  next_at      timestamptz NOT NULL DEFAULT '-infinity',  -- the next attempt's earliest start
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source, route)
);

CREATE TABLE attempts (
  project_id  text COLLATE "C" NOT NULL,
  job_id      uuid        NOT NULL,
  route       text        NOT NULL,
  number      integer     NOT NULL,
  started_at  timestamptz NOT NULL,
  duration_ms integer     NOT NULL,
  status_code integer,                                        -- NULL: no answer came
  error       text,                                           -- NULL: succeeded
  response    text        CHECK (octet_length(response) <= 1024),  -- the answer's first bytes
  PRIMARY KEY (project_id, job_id, route, number),
  FOREIGN KEY (project_id, job_id, route) REFERENCES deliveries ON DELETE CASCADE
);

-- Replays (docs/delivery.md): a delivery a replay sent again names it, and its progress is
-- counted over those.
CREATE TABLE replays (
  id          uuid        PRIMARY KEY,
  project_id  text COLLATE "C" NOT NULL,
  source      text        NOT NULL,
  route       text        NOT NULL,
  cancelled   boolean     NOT NULL DEFAULT false,
  total       integer     NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE deliveries ADD COLUMN replay_id uuid;
CREATE INDEX ix_deliveries_replay ON deliveries (replay_id) WHERE replay_id IS NOT NULL;
