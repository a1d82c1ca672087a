-- Payloads of a few KB are compressed into TOAST on every insert; lz4 costs a fraction of the
-- default pglz's CPU there (measured: 2-8 % more webhooks/s on two cores). Servers built
-- without lz4 keep pglz. Rows already stored keep their compression.
DO $$
BEGIN
  ALTER TABLE jobs ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  RAISE NOTICE 'lz4 is not available on this server: payloads stay compressed with pglz';
END
$$;
