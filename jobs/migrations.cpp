// The schema: versioned migrations (migrations/NNNN_name.sql, embedded in the binary), applied
// in order under an advisory lock so that concurrent gateways apply each once.
#include <spdlog/spdlog.h>

#include "jobs/database.hpp"
#include "jobs/store.hpp"

namespace flare::jobs {
namespace {

struct Migration {
  int version;
  const char* name;
  const char* sql;
};

constexpr Migration kMigrations[] = {
#include "migrations.inc"
};

// Concurrent gateways serialise their migrations on this lock; the value is arbitrary.
constexpr long long kMigrationLock = 0x666c617265;  // "flare"

// Remakes the new, empty jobs table as `partitions` hash partitions by project: the same
// columns, checks, defaults and indexes (by the same names, so that later migrations name them
// alike), each partition with the table's storage settings, and the trigger that deletes a
// deleted job's deliveries. Every unique index leads with project_id, as partitioning requires.
std::string partition(int partitions) {
  return R"sql(
DO $$
DECLARE
  indexes text[];
  options text[];
  def text;
BEGIN
  SELECT array_agg(pg_get_indexdef(indexrelid)) INTO indexes FROM pg_index
    WHERE indrelid = 'jobs'::regclass AND NOT indisprimary;
  SELECT reloptions INTO options FROM pg_class WHERE oid = 'jobs'::regclass;
  ALTER TABLE jobs RENAME TO jobs_plain;
  CREATE TABLE jobs (LIKE jobs_plain INCLUDING DEFAULTS INCLUDING CONSTRAINTS
    INCLUDING STORAGE) PARTITION BY HASH (project_id);
  DROP TABLE jobs_plain;
  -- As migration 3, where the server has lz4 (and knows of column compression: 14 and later).
  BEGIN
    EXECUTE 'ALTER TABLE jobs ALTER COLUMN payload SET COMPRESSION lz4';
  EXCEPTION WHEN feature_not_supported OR syntax_error THEN
    RAISE NOTICE 'payloads stay compressed with pglz';
  END;
  ALTER TABLE jobs ADD PRIMARY KEY (project_id, id);
  FOREACH def IN ARRAY indexes LOOP
    EXECUTE def;
  END LOOP;
  FOR i IN 0..)sql" +
         std::to_string(partitions - 1) + R"sql( LOOP
    EXECUTE format('CREATE TABLE %I PARTITION OF jobs FOR VALUES WITH (MODULUS %s, REMAINDER %s)',
                   'jobs_p' || i, )sql" +
         std::to_string(partitions) + R"sql(, i);
    IF options IS NOT NULL THEN
      EXECUTE format('ALTER TABLE %I SET (%s)', 'jobs_p' || i, array_to_string(options, ', '));
    END IF;
  END LOOP;
  CREATE TRIGGER jobs_take_their_deliveries AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION flare_delete_deliveries();
END
$$)sql";
}

}  // namespace

int Store::migrate(int partitions) {
  return db_->run("migrate", [partitions](pqxx::work& tx) {
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kMigrationLock);
    tx.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())");
    int current =
        tx.exec("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0].as<int>();
    int applied = 0;
    for (const Migration& m : kMigrations) {
      if (m.version <= current) continue;
      tx.exec(m.sql);
      tx.exec_params("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version,
                     m.name);
      spdlog::info("applied migration {} ({})", m.version, m.name);
      ++applied;
    }
    bool partitioned =
        tx.exec("SELECT relkind = 'p' FROM pg_class WHERE oid = 'jobs'::regclass")[0][0].as<bool>();
    if (current == 0 && partitions > 0) {
      tx.exec(partition(partitions));
      spdlog::info("the jobs table is hash-partitioned by project into {} partitions", partitions);
    } else if (partitions > 0 && !partitioned) {
      spdlog::warn(
          "database.partitions applies when the schema is created: the jobs table stays one "
          "table (docs/scaling.md says how to move it)");
    }
    tx.commit();
    return applied;
  });
}

int Store::schema_version() {
  return db_->run("schema_version", [](pqxx::work& tx) {
    if (tx.exec("SELECT to_regclass('schema_migrations') IS NULL")[0][0].as<bool>()) return 0;
    return tx.exec("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0].as<int>();
  });
}

int Store::latest_version() { return std::end(kMigrations)[-1].version; }

}  // namespace flare::jobs
