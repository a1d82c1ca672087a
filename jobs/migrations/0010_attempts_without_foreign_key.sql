-- An attempt's record no longer checks, row by row, that its delivery exists: the statement that
-- records a batch of attempts finds each delivery itself, under its job's lock, and the check
-- took 8 % of PostgreSQL's time in a push drain (bench/README.md, note 47).
DO $$
DECLARE
  fk text;
BEGIN
  SELECT conname INTO fk FROM pg_constraint
  WHERE conrelid = 'attempts'::regclass AND contype = 'f';
  IF fk IS NOT NULL THEN
    EXECUTE format('ALTER TABLE attempts DROP CONSTRAINT %I', fk);
  END IF;
END $$;

-- Attempts still go with their delivery, whoever deletes it (a job's deletion cascading to it,
-- retention, an operator's DELETE): once per statement, after it, so that the deletion of a job
-- that waited for an attempt's record to commit sees that attempt too.
CREATE FUNCTION flare_delete_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM attempts a USING gone g
  WHERE a.project_id = g.project_id AND a.job_id = g.job_id AND a.route = g.route;
  RETURN NULL;
END $$;
CREATE TRIGGER deliveries_take_their_attempts AFTER DELETE ON deliveries
  REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION flare_delete_attempts();
