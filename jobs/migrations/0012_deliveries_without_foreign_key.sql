-- A delivery no longer checks, row by row, that its job exists: every statement that inserts
-- deliveries inserts their jobs with them (an enqueue) or holds their jobs' locks (adopting a
-- source's waiting jobs, a replay). The check took 13-18 % of the enqueue statement's time for a
-- source with routes, and locked each new job's row, one more WAL record a webhook
-- (bench/README.md, note 56).
DO $$
DECLARE
  fk text;
BEGIN
  SELECT conname INTO fk FROM pg_constraint
  WHERE conrelid = 'deliveries'::regclass AND confrelid = 'jobs'::regclass;
  IF fk IS NOT NULL THEN
    EXECUTE format('ALTER TABLE deliveries DROP CONSTRAINT %I', fk);
  END IF;
END $$;

-- Deliveries still go with their job when a statement deletes jobs (the jobs API, retention, an
-- operator's DELETE FROM jobs), and their attempts with them (migration 10): after the
-- statement, so that the deletion of a job that waited for a replay to commit sees the replay's
-- deliveries too. Job by job through the primary key, as the foreign key's cascade did: one join
-- of a retention batch's 1,000 jobs with 100,000 deliveries was planned as a scan of them all.
-- TRUNCATE fires no DELETE trigger: truncate jobs, deliveries and attempts together.
CREATE FUNCTION flare_delete_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  job record;
BEGIN
  FOR job IN SELECT project_id, id FROM gone LOOP
    DELETE FROM deliveries WHERE project_id = job.project_id AND job_id = job.id;
  END LOOP;
  RETURN NULL;
END $$;
CREATE TRIGGER jobs_take_their_deliveries AFTER DELETE ON jobs
  REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION flare_delete_deliveries();
