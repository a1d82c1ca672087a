-- The operators' console (docs/console.md).

-- A signed-in operator's session. The cookie's value is never stored, only its SHA-256: a copy
-- of this table signs nobody in. `token_sha256` is the operator's token as configured when the
-- session began: a token changed in the configuration ends the sessions of the old one.
CREATE TABLE console_sessions (
  id_sha256    text        PRIMARY KEY,
  operator     text        NOT NULL,
  token_sha256 text        NOT NULL,
  csrf         text        NOT NULL,  -- every form of the session carries it
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL
);
CREATE INDEX ix_console_sessions_operator ON console_sessions (operator, created_at);

-- Traffic by minute, for the console's charts: each gateway process adds what it counted in a
-- minute to that minute's row, every ten seconds, so that a chart reads at most a day of rows per
-- source and route instead of counting the jobs and attempts behind them. `route` is '' for
-- what a source received.
CREATE TABLE traffic (
  minute      timestamptz NOT NULL,
  source      text        NOT NULL,
  route       text        NOT NULL,
  received    bigint      NOT NULL DEFAULT 0,  -- events stored (route '')
  duplicates  bigint      NOT NULL DEFAULT 0,  -- events already stored (route '')
  rejected    bigint      NOT NULL DEFAULT 0,  -- requests refused (route ''): forged, malformed
  succeeded   bigint      NOT NULL DEFAULT 0,  -- attempts (a route)
  failed      bigint      NOT NULL DEFAULT 0,
  -- Attempts by duration: how many took at most 5, 10, 25, 50, 100, 250, 500, 1000, 2500,
  -- 5000, 10000 ms, and more.
  durations   bigint[]    NOT NULL,
  PRIMARY KEY (minute, source, route)
);
