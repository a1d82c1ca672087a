-- Existing keys are looked up by the key alone, so the unique index on keys leads with the key:
-- no other index can serve that lookup, which therefore has one plan whatever the table's
-- statistics say, and is planned once per connection instead of once per batch. The project
-- stays in the index (and would be the partition key). Building it holds writes to jobs back
-- on a large table: about a second per million rows on two cores.
CREATE UNIQUE INDEX ix_jobs_key_first ON jobs (idempotency_key, project_id)
  WHERE idempotency_key IS NOT NULL;
DROP INDEX ix_jobs_idempotency;
ALTER INDEX ix_jobs_key_first RENAME TO ix_jobs_idempotency;
