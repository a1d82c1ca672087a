-- An attempt's record no longer checks, row by row, that its delivery exists: the statement that
-- records a batch of attempts finds each delivery itself, under its job's lock, and the check
-- cost PostgreSQL a tenth of its time in a push drain (bench/README.md, note 47). Deleting a
-- job (the API's delete, retention) deletes its attempts in the same statement.
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
