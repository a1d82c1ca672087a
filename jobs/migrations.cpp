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

}  // namespace

int Store::migrate() {
  return db_->run("migrate", [](pqxx::work& tx) {
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
