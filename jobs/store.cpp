#include "jobs/store.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <pqxx/pqxx>
#include <string_view>
#include <utility>

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

constexpr int kEnqueueRounds = 3;

// Options that keep a dead or unreachable server from stalling the committer; the operator's own
// settings in the URL take precedence.
std::string with_defaults(const std::string& url) {
  const std::pair<const char*, const char*> defaults[] = {{"connect_timeout", "5"},
                                                          {"keepalives_idle", "10"},
                                                          {"keepalives_interval", "5"},
                                                          {"keepalives_count", "3"}};
  bool uri = url.rfind("postgres://", 0) == 0 || url.rfind("postgresql://", 0) == 0;
  std::string out = url;
  for (auto [key, value] : defaults) {
    if (url.find(key) != std::string::npos) continue;
    if (uri) {
      out += out.find('?') == std::string::npos ? '?' : '&';
      out += std::string(key) + "=" + value;
    } else {
      out = std::string(key) + "=" + value + " " + out;
    }
  }
  return out;
}

// PostgreSQL array literals, so that a whole batch travels as a handful of parameters.
void append_element(std::string& out, std::string_view value) {
  out += out.size() == 1 ? "\"" : ",\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

std::string text_array(const std::vector<const NewJob*>& jobs, std::string NewJob::*field) {
  std::string out = "{";
  for (const NewJob* job : jobs) append_element(out, job->*field);
  return out + "}";
}

std::string bytea_array(const std::vector<const NewJob*>& jobs) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "{";
  for (const NewJob* job : jobs) {
    out += out.size() == 1 ? "\"\\\\x" : ",\"\\\\x";
    for (unsigned char c : job->payload) {
      out += kDigits[c >> 4];
      out += kDigits[c & 0xf];
    }
    out += '"';
  }
  return out + "}";
}

std::string int_array(const std::vector<const NewJob*>& jobs) {
  std::string out = "{";
  for (const NewJob* job : jobs) {
    if (out.size() > 1) out += ',';
    out += std::to_string(job->max_attempts);
  }
  return out + "}";
}

// Lock order across gateways: every batch inserts its keys sorted, so two batches that share
// keys wait on each other instead of deadlocking.
using Key = std::pair<std::string, std::string>;

constexpr const char* kInsert = R"sql(
INSERT INTO jobs (project_id, idempotency_key, type, payload, content_type, source, event_id,
                  max_attempts)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::text[],
                     $7::text[], $8::int[])
ON CONFLICT (project_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING project_id, idempotency_key, id::text)sql";

constexpr const char* kLookup = R"sql(
SELECT j.project_id, j.idempotency_key, j.id::text
FROM jobs j JOIN unnest($1::text[], $2::text[]) AS k(project_id, idempotency_key)
  ON j.project_id = k.project_id AND j.idempotency_key = k.idempotency_key)sql";

// Which failures mean "the database is not there right now": connection trouble (08),
// operator intervention such as a shutdown or a cancelled statement (57), lack of resources
// (53), and a lost transaction (40).
bool transient(const pqxx::sql_error& e) {
  const std::string& state = e.sqlstate();
  return state.rfind("08", 0) == 0 || state.rfind("57", 0) == 0 || state.rfind("53", 0) == 0 ||
         state.rfind("40", 0) == 0;
}

}  // namespace

struct Store::Impl {
  std::string url;
  std::unique_ptr<pqxx::connection> conn;

  pqxx::connection& connection() {
    if (!conn || !conn->is_open()) {
      conn.reset();
      auto fresh = std::make_unique<pqxx::connection>(url);
      // A statement stuck on a lock must not hold every waiting webhook hostage.
      pqxx::nontransaction(*fresh).exec("SET statement_timeout = 10000");
      conn = std::move(fresh);
    }
    return *conn;
  }

  // Runs `work` in a fresh transaction, mapping database failures onto Unavailable. A
  // connection that broke before the transaction committed is retried once on a new
  // connection, since a server restart leaves every idle connection dead.
  template <class Work>
  auto run(const char* what, Work&& work) {
    for (int attempt = 0;; ++attempt) {
      bool had_connection = conn && conn->is_open();
      try {
        return work(connection());
      } catch (const pqxx::in_doubt_error& e) {
        conn.reset();
        throw Unavailable(std::string(what) + ": commit outcome unknown: " + e.what());
      } catch (const pqxx::broken_connection& e) {
        conn.reset();
        if (attempt == 0 && had_connection) continue;
        throw Unavailable(std::string(what) + ": " + e.what());
      } catch (const pqxx::sql_error& e) {
        // The server's message can quote row values, payload included: keep only the code.
        if (!transient(e)) {
          throw std::runtime_error(std::string(what) + ": refused by the database (SQLSTATE " +
                                   e.sqlstate() + ")");
        }
        conn.reset();
        if (attempt == 0 && had_connection && e.sqlstate().rfind("57P", 0) == 0) continue;
        throw Unavailable(std::string(what) + ": SQLSTATE " + e.sqlstate());
      }
    }
  }
};

Store::Store(std::string url) : impl_(std::make_unique<Impl>()) { impl_->url = with_defaults(url); }

Store::~Store() = default;

std::vector<Enqueued> Store::enqueue(const std::vector<NewJob>& jobs) {
  std::map<Key, Enqueued> found;
  std::map<Key, const NewJob*> pending;  // sorted: the lock order
  for (const NewJob& job : jobs) pending.emplace(Key(job.project_id, job.idempotency_key), &job);

  impl_->run("enqueue", [&](pqxx::connection& c) {
    found.clear();
    std::map<Key, const NewJob*> todo = pending;
    pqxx::work tx(c);
    // A key can vanish between the insert that saw it and the lookup (its job was deleted);
    // the next round inserts it again.
    for (int round = 0; !todo.empty(); ++round) {
      if (round == kEnqueueRounds) throw std::runtime_error("enqueue: keys keep vanishing");
      std::vector<const NewJob*> batch;
      for (const auto& [key, job] : todo) batch.push_back(job);
      pqxx::result inserted = tx.exec_params(
          kInsert, text_array(batch, &NewJob::project_id),
          text_array(batch, &NewJob::idempotency_key), text_array(batch, &NewJob::type),
          bytea_array(batch), text_array(batch, &NewJob::content_type),
          text_array(batch, &NewJob::source), text_array(batch, &NewJob::event_id),
          int_array(batch));
      for (const auto& row : inserted) {
        Key key(row[0].as<std::string>(), row[1].as<std::string>());
        found[key] = Enqueued{row[2].as<std::string>(), true};
        todo.erase(key);
      }
      if (todo.empty()) break;
      // A new statement, so a new snapshot: it sees the rows that other transactions committed
      // while the insert waited on their keys. A duplicate is only reported for a row that
      // exists.
      batch.clear();
      for (const auto& [key, job] : todo) batch.push_back(job);
      pqxx::result existing = tx.exec_params(kLookup, text_array(batch, &NewJob::project_id),
                                             text_array(batch, &NewJob::idempotency_key));
      for (const auto& row : existing) {
        Key key(row[0].as<std::string>(), row[1].as<std::string>());
        found[key] = Enqueued{row[2].as<std::string>(), false};
        todo.erase(key);
      }
    }
    tx.commit();
  });

  std::vector<Enqueued> results;
  results.reserve(jobs.size());
  std::map<Key, bool> answered;
  for (const NewJob& job : jobs) {
    Key key(job.project_id, job.idempotency_key);
    Enqueued result = found.at(key);
    // The second request for a key in one batch is a duplicate of the first.
    result.created = result.created && answered.emplace(key, true).second;
    results.push_back(std::move(result));
  }
  return results;
}

int Store::migrate() {
  return impl_->run("migrate", [](pqxx::connection& c) {
    pqxx::work tx(c);
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
  return impl_->run("schema_version", [](pqxx::connection& c) {
    pqxx::work tx(c);
    if (tx.exec("SELECT to_regclass('schema_migrations') IS NULL")[0][0].as<bool>()) return 0;
    return tx.exec("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0].as<int>();
  });
}

int Store::latest_version() { return std::end(kMigrations)[-1].version; }

}  // namespace flare::jobs
