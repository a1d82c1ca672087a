-- The unique index on keys leads with the project again, as every unique index must, so that
-- the table can be hash-partitioned or sharded by project: the lookup of existing keys names
-- the project (one statement per project in a batch). Building it holds writes to jobs back on
-- a large table: about a second per million rows on two cores.
CREATE UNIQUE INDEX ix_jobs_project_key ON jobs (project_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
DROP INDEX ix_jobs_idempotency;
ALTER INDEX ix_jobs_project_key RENAME TO ix_jobs_idempotency;
