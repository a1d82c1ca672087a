#include "jobs/store.hpp"

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstring>
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

// Options that keep a dead or unreachable server from stalling a thread; the operator's own
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
class ArrayLiteral {
 public:
  void text(std::string_view value) {
    next();
    out_ += '"';
    for (char c : value) {
      if (c == '"' || c == '\\') out_ += '\\';
      out_ += c;
    }
    out_ += '"';
  }
  void number(std::optional<std::int64_t> value) {
    next();
    out_ += value ? std::to_string(*value) : "NULL";
  }
  std::string str() const { return out_ + "}"; }

 private:
  void next() { out_ += out_.size() == 1 ? "" : ","; }
  std::string out_ = "{";
};

// Version 7 (RFC 9562): the time in milliseconds, then 74 random bits. Ids made in order land
// at the right edge of the primary key's index, so inserts touch the same few pages instead of
// a random one each.
std::string new_job_id() {
  // Random bytes drawn 4 KiB at a time: a RAND_bytes call per job (each with its own getpid)
  // cost a microsecond. The process never forks, so no two processes share a pool.
  thread_local unsigned char pool[4096];
  thread_local std::size_t used = sizeof pool;
  unsigned char b[16];
  if (used + sizeof b > sizeof pool) {
    if (RAND_bytes(pool, sizeof pool) != 1)
      throw std::runtime_error("no random bytes for a job id");
    used = 0;
  }
  std::memcpy(b, pool + used, sizeof b);
  used += sizeof b;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x70);  // version 7
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 9562 variant
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kDigits[b[i] >> 4];
    out += kDigits[b[i] & 0xf];
  }
  return out;
}

// Every commit that makes a job due notifies this channel; workers LISTEN on it.
#define FLARE_WAKE_CHANNEL "flare_jobs"

#define FLARE_TS(column) \
  "to_char(" column " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

// Every read of a job selects these, in this order (see read_job).
constexpr const char* kJobColumns =
    "id::text, project_id, idempotency_key, type, status, attempts, max_attempts, priority, "
    "payload, content_type, source, event_id, last_error, lease_token::text, " FLARE_TS(
        "created_at") ", " FLARE_TS("updated_at") ", " FLARE_TS("run_at") ", " FLARE_TS(
        "completed_at") ", " FLARE_TS("locked_until") ", "
                      "(extract(epoch FROM created_at) * 1000000)::bigint";

std::optional<std::string> nullable(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<std::string>();
}

Job read_job(const pqxx::row& r) {
  Job job;
  job.id = r[0].as<std::string>();
  job.project_id = r[1].as<std::string>();
  job.idempotency_key = nullable(r[2]);
  job.type = r[3].as<std::string>();
  job.status = r[4].as<std::string>();
  job.attempts = r[5].as<int>();
  job.max_attempts = r[6].as<int>();
  job.priority = r[7].as<int>();
  job.payload = pqxx::binarystring(r[8]).str();
  job.content_type = r[9].as<std::string>();
  job.source = nullable(r[10]);
  job.event_id = nullable(r[11]);
  job.last_error = nullable(r[12]);
  job.lease_token = nullable(r[13]);
  job.created_at = r[14].as<std::string>();
  job.updated_at = r[15].as<std::string>();
  job.run_at = r[16].as<std::string>();
  job.completed_at = nullable(r[17]);
  job.locked_until = nullable(r[18]);
  return job;
}

std::string select_job(const std::string& where) {
  return std::string("SELECT ") + kJobColumns + " FROM jobs WHERE " + where;
}

std::string update_job(const std::string& set_and_where) {
  return "UPDATE jobs SET " + set_and_where + " RETURNING " + kJobColumns;
}

// The enqueue statement commits on its own: a batch costs one round trip, instead of BEGIN,
// INSERT, lookup, NOTIFY and COMMIT in turn. Without a transaction around it, a connection
// lost mid-statement leaves the outcome unknown; the retry of the batch with the same job ids
// finds out (see Store::enqueue).
//
// The payloads travel as one binary parameter, cut apart by offset and length, so that neither
// side spends time on a hex encoding of every byte. A conflict is a no-op: a retried job finds
// its own row (by its key, or without a key by its id) and is looked up instead of failing.
// When every job has a key, only the key index is checked for conflicts beforehand; a job
// without one needs the primary key checked too, so such a batch names no index (see
// enqueue_sql). Each inserted row notifies the workers; PostgreSQL folds a transaction's equal
// notifications into one.
//
// It answers with the rows it inserted (position 0), then with the jobs that already held keys
// of the batch, by position in the batch (counting from 1). Each key is an equality on every
// column of the unique index, under a LIMIT that keeps the join from being rearranged: the one
// plan that fits, whatever the table holds when it is planned (a sequential scan ruled out),
// so a committer plans each form of the statement once. The lookup sees the rows committed
// before the statement began, not those it inserted; a key taken by a transaction still
// running then is found by the next round.
constexpr const char* kEnqueueHead = R"sql(
WITH inserted AS (
  INSERT INTO jobs (id, project_id, idempotency_key, type, payload, content_type, source,
                    event_id, max_attempts, attempt_allowance, priority, run_at)
  SELECT id, project_id, nullif(key, ''), type,
         substring($5::bytea FROM payload_at FOR payload_length), content_type,
         nullif(source, ''), nullif(event_id, ''), max_attempts, max_attempts, priority,
         coalesce('epoch'::timestamptz + run_at * interval '1 microsecond', now())
  FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $6::int[], $7::int[], $8::text[],
              $9::text[], $10::text[], $11::int[], $12::int[], $13::bigint[])
    AS u(id, project_id, key, type, payload_at, payload_length, content_type, source, event_id,
         max_attempts, priority, run_at)
  ON CONFLICT )sql";
constexpr const char* kEnqueueTail = R"sql( DO NOTHING
  RETURNING id, project_id, idempotency_key, created_at, run_at,
            pg_notify(')sql" FLARE_WAKE_CHANNEL R"sql(', ''))
SELECT 0::bigint, id::text, 'queued', )sql" FLARE_TS("created_at") ", " FLARE_TS(
    "run_at") R"sql( FROM inserted
UNION ALL
SELECT k.n, j.id::text, j.status, )sql" FLARE_TS("j.created_at") ", " FLARE_TS("j.run_at") R"sql(
FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS k(project_id, key, n)
CROSS JOIN LATERAL (SELECT * FROM jobs WHERE project_id = k.project_id AND idempotency_key = k.key
                    LIMIT 1) j
WHERE NOT EXISTS (SELECT FROM inserted i
                  WHERE i.project_id = k.project_id AND i.idempotency_key = k.key))sql";

// The enqueue statement with its conflicts checked on the key index alone, or on every unique
// index when a job of the batch has no key.
std::string enqueue_sql(bool every_job_keyed) {
  return std::string(kEnqueueHead) +
         (every_job_keyed ? "(project_id, idempotency_key) WHERE idempotency_key IS NOT NULL"
                          : "") +
         kEnqueueTail;
}

// Jobs without a key, by the ids of the batch: the position in the batch, then the columns of
// the enqueue statement. Rare (a batch retried after a lost connection), so planned each time.
constexpr const char* kLookupIds = R"sql(
SELECT k.n, j.id::text, j.status, )sql" FLARE_TS("j.created_at") ", " FLARE_TS("j.run_at") R"sql(
FROM unnest($1::text[], $2::uuid[]) WITH ORDINALITY AS k(project_id, id, n)
JOIN jobs j ON j.project_id = k.project_id AND j.id = k.id)sql";

// Which failures mean "the database is not there right now": connection trouble (08),
// operator intervention such as a shutdown or a cancelled statement (57), lack of resources
// (53), and a lost transaction (40).
bool transient(const pqxx::sql_error& e) {
  const std::string& state = e.sqlstate();
  return state.rfind("08", 0) == 0 || state.rfind("57", 0) == 0 || state.rfind("53", 0) == 0 ||
         state.rfind("40", 0) == 0;
}

using Key = std::pair<std::string, std::string>;

constexpr const char* kWakeChannel = FLARE_WAKE_CHANNEL;

class Wakeup : public pqxx::notification_receiver {
 public:
  explicit Wakeup(pqxx::connection_base& c) : notification_receiver(c, kWakeChannel) {}
  void operator()(const std::string&, int) override {}
};

}  // namespace

struct Store::Impl {
  std::string url;
  Role role = Role::kGeneral;
  IdSource new_id;
  std::unique_ptr<pqxx::connection> conn;
  std::unique_ptr<Wakeup> wakeup;                  // declared after conn: destroyed before it
  std::unique_ptr<pqxx::connection> planned_conn;  // a committer's, see planned_once()

  // Statements are parsed once per connection. Each execution is planned with its values: a
  // generic plan, made once while the table was small, kept a lookup on a sequential scan as
  // the table grew (measured: half the throughput).
  pqxx::connection& connection() {
    if (!conn || !conn->is_open()) {
      wakeup.reset();
      conn = open("SET plan_cache_mode = force_custom_plan");
    }
    return *conn;
  }

  // The enqueue statements have one possible plan each, whatever the table holds (a
  // sequential scan ruled out): a committer plans them once, on a connection of its own since
  // planning modes are a session's. Planning them for every batch cost PostgreSQL about a sixth
  // of its time. Other stores run them on their one connection.
  pqxx::connection& planned_once() {
    if (role != Role::kCommitter) return connection();
    if (!planned_conn || !planned_conn->is_open()) {
      planned_conn = open("SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off");
    }
    return *planned_conn;
  }

  std::unique_ptr<pqxx::connection> open(const std::string& planning) {
    auto fresh = std::make_unique<pqxx::connection>(url);
    // A statement stuck on a lock must not hold every waiting request hostage.
    pqxx::nontransaction(*fresh).exec("SET statement_timeout = 10000; " + planning);
    fresh->prepare("enqueue_keyed", enqueue_sql(true));
    fresh->prepare("enqueue", enqueue_sql(false));
    fresh->prepare("lookup_ids", kLookupIds);
    return fresh;
  }

  void drop() {
    wakeup.reset();
    conn.reset();
    planned_conn.reset();
  }

  // Runs `work` in a fresh transaction (Tx = pqxx::nontransaction: statements that commit on
  // their own), mapping database failures onto Unavailable. A connection that broke before the
  // transaction committed is retried once on a new connection, since a server restart leaves
  // every idle connection dead.
  template <class Tx = pqxx::work, class Work>
  auto run(const char* what, Work&& work) {
    for (int attempt = 0;; ++attempt) {
      bool had_connection = conn && conn->is_open();
      try {
        Tx tx(connection());
        return work(tx);
      } catch (const pqxx::in_doubt_error& e) {
        drop();
        throw Unavailable(std::string(what) + ": commit outcome unknown: " + e.what());
      } catch (const pqxx::broken_connection& e) {
        drop();
        if (attempt == 0 && had_connection) continue;
        throw Unavailable(std::string(what) + ": " + e.what());
      } catch (const pqxx::sql_error& e) {
        // The server's message can quote row values, payload included: keep only the code.
        if (!transient(e)) {
          throw std::runtime_error(std::string(what) + ": refused by the database (SQLSTATE " +
                                   e.sqlstate() + ")");
        }
        drop();
        if (attempt == 0 && had_connection && e.sqlstate().rfind("57P", 0) == 0) continue;
        throw Unavailable(std::string(what) + ": SQLSTATE " + e.sqlstate());
      }
    }
  }

  // The job after an UPDATE that matched nothing: gone, or in the wrong state.
  static Changed unchanged(pqxx::work& tx, const std::string& project, const std::string& id,
                           Change otherwise) {
    pqxx::result r = tx.exec_params(select_job("project_id = $1 AND id = $2::uuid"), project, id);
    if (r.empty()) return {Change::kNotFound, std::nullopt};
    return {otherwise, read_job(r[0])};
  }

  // One job's state change: `set_where` is an UPDATE of job $1/$2 guarded by the state it
  // needs; when the guard fails, `otherwise` says why.
  template <class... Args>
  Changed change(const char* what, Change otherwise, const std::string& set_where,
                 const std::string& project, const std::string& id, const Args&... args) {
    return run(what, [&](pqxx::work& tx) {
      pqxx::result r = tx.exec_params(update_job(set_where), project, id, args...);
      Changed out = r.empty() ? unchanged(tx, project, id, otherwise)
                              : Changed{Change::kDone, read_job(r[0])};
      // A job that is due again wakes the push workers.
      if (out.change == Change::kDone &&
          (out.job->status == "queued" || out.job->status == "retrying")) {
        tx.exec("NOTIFY " + std::string(kWakeChannel));
      }
      tx.commit();
      return out;
    });
  }
};

Store::Store(std::string url, Role role, IdSource new_id) : impl_(std::make_unique<Impl>()) {
  impl_->url = with_defaults(url);
  impl_->role = role;
  impl_->new_id = new_id ? std::move(new_id) : new_job_id;
}

Store::~Store() = default;

std::vector<Enqueued> Store::enqueue(const std::vector<NewJob>& jobs) {
  // The first job of each key is the one inserted; keys in sorted order are the lock order, so
  // two batches that share keys wait on each other instead of deadlocking.
  std::map<Key, std::size_t> first_of_key;
  std::vector<std::size_t> unkeyed;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (jobs[i].idempotency_key.empty()) {
      unkeyed.push_back(i);
    } else {
      first_of_key.emplace(Key(jobs[i].project_id, jobs[i].idempotency_key), i);
    }
  }
  std::vector<std::string> ids(jobs.size());
  for (std::string& id : ids) id = impl_->new_id();
  std::vector<Enqueued> results(jobs.size());

  // The same ids on every attempt: a job an earlier attempt stored (its answer lost with the
  // connection) is found holding its own id, and was created by this call all the same.
  impl_->run<pqxx::nontransaction>("enqueue", [&](pqxx::nontransaction& tx) {
    std::fill(results.begin(), results.end(), Enqueued{});
    std::vector<std::size_t> todo = unkeyed;
    for (const auto& [key, i] : first_of_key) todo.push_back(i);
    // A key the statement found taken but could not see (its transaction committed while the
    // statement ran), or whose job was deleted meanwhile, is tried again by the next round.
    for (int round = 0; !todo.empty(); ++round) {
      if (round == kEnqueueRounds) throw std::runtime_error("enqueue: keys keep vanishing");
      ArrayLiteral id, project, key, type, payload_at, payload_length, content_type, source,
          event_id, attempts, priority, run_at;
      std::string payloads;
      std::size_t payload_bytes = 0;
      for (std::size_t i : todo) payload_bytes += jobs[i].payload.size();
      payloads.reserve(payload_bytes);
      std::map<std::string, std::size_t> by_id;
      bool every_job_keyed = true;
      for (std::size_t i : todo) {
        const NewJob& j = jobs[i];
        id.text(ids[i]);
        project.text(j.project_id);
        key.text(j.idempotency_key);
        type.text(j.type);
        payload_at.number(static_cast<std::int64_t>(payloads.size() + 1));  // SQL counts from 1
        payload_length.number(static_cast<std::int64_t>(j.payload.size()));
        payloads += j.payload;
        content_type.text(j.content_type);
        source.text(j.source);
        event_id.text(j.event_id);
        attempts.number(j.max_attempts);
        priority.number(j.priority);
        run_at.number(j.run_at_micros);
        by_id[ids[i]] = i;
        every_job_keyed = every_job_keyed && !j.idempotency_key.empty();
      }
      // On the committer's second connection, or on tx's when there is one connection.
      auto planned_once = [&](auto&& statement) {
        if (&impl_->planned_once() == &tx.conn()) return statement(tx);
        pqxx::nontransaction own(impl_->planned_once());
        return statement(own);
      };
      pqxx::result rows = planned_once([&](pqxx::transaction_base& t) {
        return t.exec_prepared(every_job_keyed ? "enqueue_keyed" : "enqueue", id.str(),
                               project.str(), key.str(), type.str(), pqxx::binarystring(payloads),
                               payload_at.str(), payload_length.str(), content_type.str(),
                               source.str(), event_id.str(), attempts.str(), priority.str(),
                               run_at.str());
      });
      // A job already stored: by an earlier attempt of this call when it holds our id.
      auto found = [&](std::size_t i, const pqxx::row& row) {
        std::string job_id = row[1].as<std::string>();
        bool ours = job_id == ids[i];
        results[i] = {std::move(job_id), ours, row[2].as<std::string>(), row[3].as<std::string>(),
                      row[4].as<std::string>()};
      };
      for (const auto& row : rows) {
        if (auto n = row[0].as<std::size_t>(); n != 0) {
          found(todo.at(n - 1), row);
        } else {
          std::size_t i = by_id.at(row[1].as<std::string>());
          results[i] = {ids[i], true, "queued", row[3].as<std::string>(), row[4].as<std::string>()};
        }
      }
      std::vector<std::size_t> bare;
      for (std::size_t i : todo) {
        if (results[i].job_id.empty() && jobs[i].idempotency_key.empty()) bare.push_back(i);
      }
      if (!bare.empty()) {
        ArrayLiteral projects, bare_ids;
        for (std::size_t i : bare) {
          projects.text(jobs[i].project_id);
          bare_ids.text(ids[i]);
        }
        for (const auto& row : tx.exec_prepared("lookup_ids", projects.str(), bare_ids.str())) {
          found(bare.at(row[0].as<std::size_t>() - 1), row);
        }
      }
      std::vector<std::size_t> missing;
      for (std::size_t i : todo) {
        if (results[i].job_id.empty()) missing.push_back(i);
      }
      todo = std::move(missing);
    }
  });

  // Later jobs with a key already in the batch are told about the first one.
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (!results[i].job_id.empty()) continue;
    results[i] = results[first_of_key.at(Key(jobs[i].project_id, jobs[i].idempotency_key))];
    results[i].created = false;
  }
  return results;
}

std::optional<Job> Store::get(const std::string& project, const std::string& id) {
  return impl_->run("get", [&](pqxx::work& tx) -> std::optional<Job> {
    pqxx::result r = tx.exec_params(select_job("project_id = $1 AND id = $2::uuid"), project, id);
    if (r.empty()) return std::nullopt;
    return read_job(r[0]);
  });
}

Page Store::list(const std::string& project, const ListQuery& query) {
  return impl_->run("list", [&](pqxx::work& tx) {
    // One more than asked tells whether another page follows.
    pqxx::result r = tx.exec_params(
        select_job("project_id = $1 AND ($2 = '' OR status = $2) AND ($3 = '' OR type = $3) "
                   "AND ($4::bigint = 0 OR (created_at, id) < ('epoch'::timestamptz + $4::bigint "
                   "* interval '1 microsecond', $5::uuid)) ORDER BY created_at DESC, id DESC "
                   "LIMIT $6"),
        project, query.status, query.type, query.after ? query.after->created_micros : 0,
        query.after ? query.after->id : "00000000-0000-0000-0000-000000000000", query.limit + 1);
    Page page;
    for (const auto& row : r) {
      if (static_cast<int>(page.jobs.size()) == query.limit) {
        const Job& last = page.jobs.back();
        page.next = Cursor{r[page.jobs.size() - 1][19].as<std::int64_t>(), last.id};
        break;
      }
      page.jobs.push_back(read_job(row));
    }
    return page;
  });
}

Changed Store::retry(const std::string& project, const std::string& id) {
  return impl_->change("retry", Change::kWrongStatus,
                       "status = 'queued', run_at = now(), updated_at = now(), completed_at = "
                       "NULL, max_attempts = attempts + attempt_allowance WHERE project_id = $1 "
                       "AND id = $2::uuid AND status IN ('dead', 'cancelled')",
                       project, id);
}

Changed Store::cancel(const std::string& project, const std::string& id) {
  return impl_->change("cancel", Change::kWrongStatus,
                       "status = 'cancelled', updated_at = now() WHERE project_id = $1 AND id = "
                       "$2::uuid AND status IN ('queued', 'retrying')",
                       project, id);
}

bool Store::remove(const std::string& project, const std::string& id) {
  return impl_->run("remove", [&](pqxx::work& tx) {
    pqxx::result r = tx.exec_params(
        "DELETE FROM jobs WHERE project_id = $1 AND id = $2::uuid RETURNING 1", project, id);
    tx.commit();
    return !r.empty();
  });
}

std::vector<Job> Store::claim(const ClaimScope& scope, int max, int lease_seconds) {
  ArrayLiteral types, sources;
  for (const std::string& t : scope.types) types.text(t);
  for (const std::string& s : scope.sources) sources.text(s);
  const std::string in_scope =
      "($1 = '' OR project_id = $1) AND (cardinality($2::text[]) = 0 OR type = ANY($2::text[])) "
      "AND (cardinality($3::text[]) = 0 OR source = ANY($3::text[]))";
  return impl_->run("claim", [&](pqxx::work& tx) {
    // A lease that ran out on the last allowed attempt ends the job: no attempt is left.
    tx.exec_params(
        "UPDATE jobs SET status = 'dead', lease_token = NULL, locked_until = NULL, "
        "updated_at = now(), last_error = 'the lease of the last attempt ran out' "
        "WHERE " +
            in_scope +
            " AND status = 'running' AND locked_until < now() AND attempts >= "
            "max_attempts",
        scope.project, types.str(), sources.str());
    pqxx::result r = tx.exec_params(
        "WITH due AS (SELECT project_id AS due_project, id AS due_id FROM jobs WHERE " + in_scope +
            " AND ((status IN ('queued', 'retrying') AND run_at <= now()) OR (status = "
            "'running' AND locked_until < now())) ORDER BY priority DESC, run_at LIMIT $4 FOR "
            "UPDATE SKIP LOCKED) " +
            update_job("status = 'running', attempts = attempts + 1, lease_token = "
                       "gen_random_uuid(), locked_until = now() + make_interval(secs => "
                       "$5::double precision), updated_at = now() FROM due WHERE project_id = "
                       "due_project AND id = due_id"),
        scope.project, types.str(), sources.str(), max, lease_seconds);
    std::vector<Job> claimed;
    for (const auto& row : r) claimed.push_back(read_job(row));
    std::sort(claimed.begin(), claimed.end(), [](const Job& a, const Job& b) {
      return a.priority != b.priority ? a.priority > b.priority : a.run_at < b.run_at;
    });
    tx.commit();
    return claimed;
  });
}

Changed Store::heartbeat(const std::string& project, const std::string& id,
                         const std::string& token, int lease_seconds) {
  return impl_->change("heartbeat", Change::kLeaseLost,
                       "locked_until = now() + make_interval(secs => $4::double precision), "
                       "updated_at = now() WHERE project_id = $1 AND id = $2::uuid AND status = "
                       "'running' AND lease_token = $3::uuid",
                       project, id, token, lease_seconds);
}

Changed Store::complete(const std::string& project, const std::string& id,
                        const std::string& token) {
  return impl_->change("complete", Change::kLeaseLost,
                       "status = 'succeeded', completed_at = now(), updated_at = now(), "
                       "lease_token = NULL, locked_until = NULL WHERE project_id = $1 AND id = "
                       "$2::uuid AND status = 'running' AND lease_token = $3::uuid",
                       project, id, token);
}

Changed Store::fail(const std::string& project, const std::string& id, const std::string& token,
                    const std::string& error, bool retry, const Backoff& backoff) {
  return impl_->run("fail", [&](pqxx::work& tx) {
    pqxx::result held = tx.exec_params(
        select_job("project_id = $1 AND id = $2::uuid AND status = 'running' AND lease_token = "
                   "$3::uuid FOR UPDATE"),
        project, id, token);
    if (held.empty()) return Impl::unchanged(tx, project, id, Change::kLeaseLost);
    Job job = read_job(held[0]);
    bool again = retry && job.attempts < job.max_attempts;
    pqxx::result r = tx.exec_params(
        update_job("status = $4, last_error = $5, run_at = CASE WHEN $4 = 'retrying' THEN now() "
                   "+ $6::bigint * interval '1 millisecond' ELSE run_at END, lease_token = NULL, "
                   "locked_until = NULL, updated_at = now() WHERE project_id = $1 AND id = "
                   "$2::uuid AND lease_token = $3::uuid"),
        project, id, token, again ? "retrying" : "dead", error,
        again ? static_cast<std::int64_t>(backoff(job).count()) : 0);
    tx.commit();
    return Changed{Change::kDone, read_job(r[0])};
  });
}

Changed Store::release(const std::string& project, const std::string& id,
                       const std::string& token) {
  return impl_->change("release", Change::kLeaseLost,
                       "status = CASE WHEN attempts > 1 THEN 'retrying' ELSE 'queued' END, "
                       "attempts = attempts - 1, run_at = now(), lease_token = NULL, locked_until "
                       "= NULL, updated_at = now() WHERE project_id = $1 AND id = $2::uuid AND "
                       "status = 'running' AND lease_token = $3::uuid",
                       project, id, token);
}

bool Store::wait_for_jobs(std::chrono::milliseconds timeout) {
  try {
    pqxx::connection& c = impl_->connection();
    if (!impl_->wakeup) impl_->wakeup = std::make_unique<Wakeup>(c);
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
    return c.await_notification(micros / 1'000'000, micros % 1'000'000) > 0;
  } catch (const pqxx::broken_connection& e) {
    impl_->drop();
    throw Unavailable(std::string("listen: ") + e.what());
  } catch (const pqxx::sql_error& e) {
    impl_->drop();
    throw Unavailable("listen: SQLSTATE " + e.sqlstate());
  }
}

std::vector<std::pair<std::string, std::int64_t>> Store::count_by_status() {
  return impl_->run("count", [&](pqxx::work& tx) {
    std::vector<std::pair<std::string, std::int64_t>> out;
    for (const auto& row : tx.exec("SELECT status, count(*) FROM jobs GROUP BY status")) {
      out.emplace_back(row[0].as<std::string>(), row[1].as<std::int64_t>());
    }
    return out;
  });
}

int Store::migrate() {
  return impl_->run("migrate", [](pqxx::work& tx) {
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
  return impl_->run("schema_version", [](pqxx::work& tx) {
    if (tx.exec("SELECT to_regclass('schema_migrations') IS NULL")[0][0].as<bool>()) return 0;
    return tx.exec("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0].as<int>();
  });
}

int Store::latest_version() { return std::end(kMigrations)[-1].version; }

}  // namespace flare::jobs
