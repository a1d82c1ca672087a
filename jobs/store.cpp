#include "jobs/store.hpp"

#include <libpq-fe.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstring>
#include <deque>
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

// A PostgreSQL array parameter in the binary format (that of array_send): each element travels
// as its length and its bytes, so neither side quotes, escapes or parses text, and a whole batch
// costs a handful of parameters. The element type must be the one the statement casts to.
class BinaryArray {
 public:
  enum Type : std::uint32_t { kInt4 = 23, kInt8 = 20, kText = 25, kUuid = 2950 };

  explicit BinaryArray(Type type) : type_(type) {}

  void text(std::string_view value) {
    length(static_cast<std::int64_t>(value.size()));
    elements_ += value;
  }
  void int4(std::int32_t value) {
    length(4);
    big_endian(static_cast<std::uint32_t>(value), 4);
  }
  void int8(std::optional<std::int64_t> value) {
    if (!value) {
      nulls_ = true;
      length(-1);  // NULL: a length and no bytes
      return;
    }
    length(8);
    big_endian(static_cast<std::uint64_t>(*value), 8);
  }
  // A UUID in its text form: 32 hex digits, dashes anywhere between them.
  void uuid(std::string_view id) {
    length(16);
    int digits = 0;
    unsigned byte = 0;
    for (char c : id) {
      if (c == '-') continue;
      int v = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (v < 0 || digits == 32) throw std::runtime_error("a job id is not a UUID");
      byte = byte << 4 | static_cast<unsigned>(v);
      if (++digits % 2 == 0) {
        elements_ += static_cast<char>(byte);
        byte = 0;
      }
    }
    if (digits != 32) throw std::runtime_error("a job id is not a UUID");
  }

  // Dimensions, null flag, element type, then the one dimension's size and lower bound.
  std::string str() const {
    std::string out;
    out.reserve(20 + elements_.size());
    for (std::uint32_t word :
         {1U, nulls_ ? 1U : 0U, static_cast<std::uint32_t>(type_), count_, 1U}) {
      for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>(word >> shift);
    }
    out += elements_;
    return out;
  }

 private:
  void length(std::int64_t bytes) {
    ++count_;
    big_endian(static_cast<std::uint32_t>(bytes), 4);
  }
  void big_endian(std::uint64_t value, int bytes) {
    for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) {
      elements_ += static_cast<char>(value >> shift);
    }
  }

  Type type_;
  std::uint32_t count_ = 0;
  bool nulls_ = false;
  std::string elements_;
};

// Version 7 (RFC 9562): the time in milliseconds, the microseconds within it (in the 12 bits
// RFC 9562 lets carry a finer clock), then 62 random bits. Ids made in order land at the right
// edge of the primary key's index, so inserts touch the same few pages instead of a random one
// each, and the jobs API lists newest first by id.
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
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  auto ms = us / 1000;
  auto sub = static_cast<unsigned>(us % 1000);
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  b[6] = static_cast<unsigned char>(0x70 | sub >> 8);  // version 7
  b[7] = static_cast<unsigned char>(sub);
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
        "completed_at") ", " FLARE_TS("locked_until");

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
// of the batch, by position in the batch (counting from 1). An inserted job's times are the
// statement's (now()) unless the job named its run_at, so they are formatted once per batch
// instead of twice per job (to_char was 2.6 % of the committing backend's time). Each key is an
// equality on every column of the unique index, under a LIMIT that keeps the join from being
// rearranged: the one plan that fits, whatever the table holds when it is planned (a sequential
// scan ruled out), so a committer plans each form of the statement once. The lookup sees the rows
// committed before the statement began, not those it inserted; a key taken by a transaction still
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
            pg_notify(')sql" FLARE_WAKE_CHANNEL R"sql(', '')),
batch AS MATERIALIZED (SELECT now() AS at, )sql" FLARE_TS("now()") R"sql( AS at_text)
SELECT 0::bigint, i.id::text, 'queued',
       CASE WHEN i.created_at = b.at THEN b.at_text ELSE )sql" FLARE_TS("i.created_at") R"sql( END,
       CASE WHEN i.run_at = b.at THEN b.at_text ELSE )sql" FLARE_TS("i.run_at") R"sql( END
FROM inserted i CROSS JOIN batch b
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

// Which jobs of a batch are stored, and in what order: every job without a key, then the first
// job of each key, in key order. Keys in sorted order are the lock order, so two batches that
// share keys wait on each other instead of deadlocking. A later job with a key already in the
// batch is answered with the first one's result: first[i] names the job whose answer job i
// takes (itself, for the jobs stored).
struct BatchPlan {
  std::vector<std::size_t> todo;
  std::vector<std::size_t> first;
};

BatchPlan plan_batch(const std::vector<NewJob>& jobs) {
  BatchPlan plan;
  plan.first.resize(jobs.size());
  std::vector<std::size_t> keyed;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    plan.first[i] = i;
    (jobs[i].idempotency_key.empty() ? plan.todo : keyed).push_back(i);
  }
  auto key = [&](std::size_t i) { return std::tie(jobs[i].project_id, jobs[i].idempotency_key); };
  std::stable_sort(keyed.begin(), keyed.end(),
                   [&](std::size_t a, std::size_t b) { return key(a) < key(b); });
  for (std::size_t k = 0; k < keyed.size(); ++k) {
    if (k > 0 && key(keyed[k]) == key(keyed[k - 1])) {
      plan.first[keyed[k]] = plan.first[keyed[k - 1]];
    } else {
      plan.todo.push_back(keyed[k]);
    }
  }
  return plan;
}

void answer_repeats(const BatchPlan& plan, std::vector<Enqueued>& results) {
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (plan.first[i] == i) continue;
    results[i] = results[plan.first[i]];
    results[i].created = false;
  }
}

// A job the enqueue statement (or the lookup by id) answered with: its id, status, created_at
// and run_at. It was created by this batch when it holds the id the batch gave it (`ours`):
// an earlier attempt stored it.
Enqueued answered(const std::string& ours, std::string_view id, std::string_view status,
                  std::string_view created_at, std::string_view run_at) {
  return {std::string(id), id == ours, std::string(status), std::string(created_at),
          std::string(run_at)};
}

// One execution of the enqueue statement: its parameters for the jobs at `todo`, and the reading
// of its rows into the batch's results.
class EnqueueRound {
 public:
  static constexpr std::size_t kParams = 13;  // each in the binary format

  EnqueueRound(const std::vector<NewJob>& jobs, const std::vector<std::string>& ids,
               std::vector<std::size_t> todo)
      : todo_(std::move(todo)), by_id_(todo_) {
    BinaryArray id(BinaryArray::kUuid), project(BinaryArray::kText), key(BinaryArray::kText),
        type(BinaryArray::kText), payload_at(BinaryArray::kInt4),
        payload_length(BinaryArray::kInt4), content_type(BinaryArray::kText),
        source(BinaryArray::kText), event_id(BinaryArray::kText), attempts(BinaryArray::kInt4),
        priority(BinaryArray::kInt4), run_at(BinaryArray::kInt8);
    std::string payloads;
    std::size_t payload_bytes = 0;
    for (std::size_t i : todo_) payload_bytes += jobs[i].payload.size();
    payloads.reserve(payload_bytes);
    for (std::size_t i : todo_) {
      const NewJob& j = jobs[i];
      id.uuid(ids[i]);
      project.text(j.project_id);
      key.text(j.idempotency_key);
      type.text(j.type);
      // The batch's bytes are bounded far below 2 GiB (committer max_batch_bytes).
      payload_at.int4(static_cast<std::int32_t>(payloads.size() + 1));  // SQL counts from 1
      payload_length.int4(static_cast<std::int32_t>(j.payload.size()));
      payloads += j.payload;
      content_type.text(j.content_type);
      source.text(j.source);
      event_id.text(j.event_id);
      attempts.int4(j.max_attempts);
      priority.int4(j.priority);
      run_at.int8(j.run_at_micros);
      every_job_keyed_ = every_job_keyed_ && !j.idempotency_key.empty();
    }
    params = {id.str(),
              project.str(),
              key.str(),
              type.str(),
              std::move(payloads),
              payload_at.str(),
              payload_length.str(),
              content_type.str(),
              source.str(),
              event_id.str(),
              attempts.str(),
              priority.str(),
              run_at.str()};
    std::sort(by_id_.begin(), by_id_.end(),
              [&](std::size_t a, std::size_t b) { return ids[a] < ids[b]; });
  }

  const char* statement() const { return every_job_keyed_ ? "enqueue_keyed" : "enqueue"; }

  // One row of the answer: the position in `todo` counting from 1 (0: a row this statement
  // inserted), then the columns `answered` takes.
  void read(const std::vector<std::string>& ids, const std::array<std::string_view, 5>& row,
            std::vector<Enqueued>& results) const {
    std::size_t n = 0;
    std::from_chars(row[0].data(), row[0].data() + row[0].size(), n);
    std::size_t i;
    if (n != 0) {
      i = todo_.at(n - 1);
    } else {
      auto at = std::lower_bound(by_id_.begin(), by_id_.end(), row[1],
                                 [&](std::size_t a, std::string_view id) { return ids[a] < id; });
      if (at == by_id_.end() || ids[*at] != row[1]) throw std::runtime_error("enqueue: unknown id");
      i = *at;
    }
    results[i] = answered(ids[i], row[1], row[2], row[3], row[4]);
  }

  // The jobs of this round without an answer; `without_key` limits them to jobs without a key.
  std::vector<std::size_t> unanswered(const std::vector<NewJob>& jobs,
                                      const std::vector<Enqueued>& results,
                                      bool without_key = false) const {
    std::vector<std::size_t> out;
    for (std::size_t i : todo_) {
      if (results[i].job_id.empty() && (!without_key || jobs[i].idempotency_key.empty()))
        out.push_back(i);
    }
    return out;
  }

  std::array<std::string, kParams> params;  // $1..$13; emptied once sent

 private:
  std::vector<std::size_t> todo_;
  std::vector<std::size_t> by_id_;  // todo_, ordered by job id
  bool every_job_keyed_ = true;
};

constexpr const char* kWakeChannel = FLARE_WAKE_CHANNEL;

class Wakeup : public pqxx::notification_receiver {
 public:
  explicit Wakeup(pqxx::connection_base& c) : notification_receiver(c, kWakeChannel) {}
  void operator()(const std::string&, int) override {}
};

}  // namespace

struct Store::Impl {
  std::string url;
  IdSource new_id;
  std::unique_ptr<pqxx::connection> conn;
  std::unique_ptr<Wakeup> wakeup;  // declared after conn: destroyed before it

  // Statements are parsed once per connection. Each execution is planned with its values: a
  // generic plan, made once while the table was small, kept a lookup on a sequential scan as
  // the table grew (measured: half the throughput).
  pqxx::connection& connection() {
    if (!conn || !conn->is_open()) {
      wakeup.reset();
      conn = std::make_unique<pqxx::connection>(url);
      // A statement stuck on a lock must not hold every waiting request hostage.
      pqxx::nontransaction(*conn).exec(
          "SET statement_timeout = 10000; SET plan_cache_mode = force_custom_plan");
      conn->prepare("enqueue_keyed", enqueue_sql(true));
      conn->prepare("enqueue", enqueue_sql(false));
      conn->prepare("lookup_ids", kLookupIds);
    }
    return *conn;
  }

  void drop() {
    wakeup.reset();
    conn.reset();
  }

  // The pipeline (Store::send): libpq itself, since pqxx has no pipeline mode.
  struct ClosePipe {
    void operator()(PGconn* c) const { PQfinish(c); }
  };
  struct ClearResult {
    void operator()(PGresult* r) const { PQclear(r); }
  };
  using Answer = std::unique_ptr<PGresult, ClearResult>;

  struct Sent {
    std::vector<std::string> ids;
    BatchPlan plan;
    EnqueueRound round;
    Answer answer;            // the statement's first result
    int results = 0;          // how many it gave before the sync point
    bool synced = false;      // the sync point came: the statement committed, or nothing did
    bool lost = false;        // no answer will come: the pipeline broke
    std::string unreachable;  // set when the batch was never sent: no connection
  };

  std::unique_ptr<PGconn, ClosePipe> pipe;
  std::deque<Sent> sent;

  // The enqueue statements have one possible plan each, whatever the table holds (a
  // sequential scan ruled out): the pipeline's connection plans them once. Planning them for
  // every batch cost PostgreSQL about a sixth of its time.
  void open_pipe() {
    std::unique_ptr<PGconn, ClosePipe> c(PQconnectdb(url.c_str()));
    if (PQstatus(c.get()) != CONNECTION_OK) throw Unavailable(PQerrorMessage(c.get()));
    Answer set(PQexec(c.get(),
                      "SET statement_timeout = 10000; SET plan_cache_mode = force_generic_plan; "
                      "SET enable_seqscan = off"));
    bool ok = PQresultStatus(set.get()) == PGRES_COMMAND_OK;
    for (bool keyed : {true, false}) {
      if (!ok) break;
      Answer prepared(PQprepare(c.get(), keyed ? "enqueue_keyed" : "enqueue",
                                enqueue_sql(keyed).c_str(), 0, nullptr));
      ok = PQresultStatus(prepared.get()) == PGRES_COMMAND_OK;
    }
    if (!ok || PQenterPipelineMode(c.get()) != 1) {
      throw Unavailable(std::string("pipeline: ") + PQerrorMessage(c.get()));
    }
    pipe = std::move(c);
  }

  // Every answer still to come over the pipeline is lost with it.
  void lose_pipe() {
    pipe.reset();
    for (Sent& s : sent) s.lost = s.lost || !s.synced;
  }

  // Reads what has arrived for the oldest batch; true once its answer is complete or lost.
  bool oldest_ready() {
    Sent& s = sent.front();
    if (s.synced || s.lost || !s.unreachable.empty()) return true;
    if (PQconsumeInput(pipe.get()) != 1) {
      lose_pipe();
      return true;
    }
    while (PQisBusy(pipe.get()) == 0) {
      Answer r(PQgetResult(pipe.get()));
      if (!r) {
        // The end of the statement's results, before its sync point; or a broken connection.
        if (PQstatus(pipe.get()) != CONNECTION_OK) {
          lose_pipe();
          return true;
        }
        continue;
      }
      if (PQresultStatus(r.get()) == PGRES_PIPELINE_SYNC) {
        s.synced = true;
        return true;
      }
      if (++s.results == 1) s.answer = std::move(r);
    }
    return false;
  }

  std::vector<std::string> new_ids(std::size_t count) {
    std::vector<std::string> ids(count);
    for (std::string& id : ids) id = new_id();
    return ids;
  }

  // Stores a batch on the general connection, not the pipeline, its jobs taking the ids `ids`
  // (see Store::enqueue).
  std::vector<Enqueued> enqueue_now(const std::vector<NewJob>& jobs,
                                    const std::vector<std::string>& ids, const BatchPlan& plan);

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

Store::Store(std::string url, IdSource new_id) : impl_(std::make_unique<Impl>()) {
  impl_->url = with_defaults(url);
  impl_->new_id = new_id ? std::move(new_id) : new_job_id;
}

Store::~Store() = default;

std::vector<Enqueued> Store::enqueue(const std::vector<NewJob>& jobs) {
  return impl_->enqueue_now(jobs, impl_->new_ids(jobs.size()), plan_batch(jobs));
}

std::vector<Enqueued> Store::Impl::enqueue_now(const std::vector<NewJob>& jobs,
                                               const std::vector<std::string>& ids,
                                               const BatchPlan& plan) {
  std::vector<Enqueued> results(jobs.size());
  // The same ids on every attempt: a job an earlier attempt stored (its answer lost with the
  // connection) is found holding its own id, and was created by this call all the same.
  run<pqxx::nontransaction>("enqueue", [&](pqxx::nontransaction& tx) {
    std::fill(results.begin(), results.end(), Enqueued{});
    std::vector<std::size_t> todo = plan.todo;
    // A key the statement found taken but could not see (its transaction committed while the
    // statement ran), or whose job was deleted meanwhile, is tried again by the next round.
    for (int round = 0; !todo.empty(); ++round) {
      if (round == kEnqueueRounds) throw std::runtime_error("enqueue: keys keep vanishing");
      EnqueueRound r(jobs, ids, std::move(todo));
      auto p = [&r](std::size_t k) { return pqxx::binarystring(r.params[k]); };
      pqxx::result rows = tx.exec_prepared(r.statement(), p(0), p(1), p(2), p(3), p(4), p(5), p(6),
                                           p(7), p(8), p(9), p(10), p(11), p(12));
      auto view = [](const pqxx::field& f) { return std::string_view(f.c_str(), f.size()); };
      for (const auto& row : rows) {
        r.read(ids, {view(row[0]), view(row[1]), view(row[2]), view(row[3]), view(row[4])},
               results);
      }
      if (std::vector<std::size_t> bare = r.unanswered(jobs, results, true); !bare.empty()) {
        BinaryArray projects(BinaryArray::kText), bare_ids(BinaryArray::kUuid);
        for (std::size_t i : bare) {
          projects.text(jobs[i].project_id);
          bare_ids.uuid(ids[i]);
        }
        for (const auto& row : tx.exec_prepared("lookup_ids", pqxx::binarystring(projects.str()),
                                                pqxx::binarystring(bare_ids.str()))) {
          std::size_t i = bare.at(row[0].as<std::size_t>() - 1);
          results[i] = answered(ids[i], view(row[1]), view(row[2]), view(row[3]), view(row[4]));
        }
      }
      todo = r.unanswered(jobs, results);
    }
  });
  answer_repeats(plan, results);
  return results;
}

void Store::send(const std::vector<NewJob>& jobs) {
  std::vector<std::string> ids = impl_->new_ids(jobs.size());
  BatchPlan plan = plan_batch(jobs);
  EnqueueRound round(jobs, ids, plan.todo);
  Impl::Sent& s = impl_->sent.emplace_back(
      Impl::Sent{std::move(ids), std::move(plan), std::move(round), {}, 0, false, false, {}});
  if (!impl_->pipe) {
    try {
      impl_->open_pipe();
    } catch (const Unavailable& e) {
      s.unreachable = e.what();
      return;
    }
  }
  std::array<const char*, EnqueueRound::kParams> values;
  std::array<int, EnqueueRound::kParams> lengths;
  std::array<int, EnqueueRound::kParams> formats;
  for (std::size_t k = 0; k < values.size(); ++k) {
    values[k] = s.round.params[k].data();
    lengths[k] = static_cast<int>(s.round.params[k].size());
    formats[k] = 1;
  }
  if (PQsendQueryPrepared(impl_->pipe.get(), s.round.statement(), EnqueueRound::kParams,
                          values.data(), lengths.data(), formats.data(), 0) != 1 ||
      PQpipelineSync(impl_->pipe.get()) != 1) {
    impl_->lose_pipe();
  }
  s.round.params = {};
}

std::size_t Store::sent() const { return impl_->sent.size(); }

int Store::socket() const { return impl_->pipe ? PQsocket(impl_->pipe.get()) : -1; }

bool Store::ready() { return !impl_->sent.empty() && impl_->oldest_ready(); }

std::vector<Enqueued> Store::receive(const std::vector<NewJob>& jobs) {
  Impl::Sent s = std::move(impl_->sent.front());
  impl_->sent.pop_front();
  if (!s.unreachable.empty()) throw Unavailable("enqueue: " + s.unreachable);
  if (s.synced && s.results == 1 && PQresultStatus(s.answer.get()) == PGRES_TUPLES_OK) {
    std::vector<Enqueued> results(jobs.size());
    PGresult* a = s.answer.get();
    auto view = [a](int row, int column) {
      return std::string_view(PQgetvalue(a, row, column),
                              static_cast<std::size_t>(PQgetlength(a, row, column)));
    };
    for (int row = 0; row < PQntuples(a); ++row) {
      s.round.read(s.ids, {view(row, 0), view(row, 1), view(row, 2), view(row, 3), view(row, 4)},
                   results);
    }
    if (s.round.unanswered(jobs, results).empty()) {
      answer_repeats(s.plan, results);
      return results;
    }
  }
  // Refused, lost with the connection, or a job left without an answer (a key that moved
  // while the statement ran): once more without the pipeline, with the same ids, which finds
  // whatever this attempt stored.
  return impl_->enqueue_now(jobs, s.ids, s.plan);
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
                   "AND id < $4::uuid ORDER BY id DESC LIMIT $5"),
        project, query.status, query.type,
        query.after.value_or("ffffffff-ffff-ffff-ffff-ffffffffffff"), query.limit + 1);
    Page page;
    for (const auto& row : r) {
      if (static_cast<int>(page.jobs.size()) == query.limit) {
        page.next = page.jobs.back().id;
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
  BinaryArray type_array(BinaryArray::kText), source_array(BinaryArray::kText);
  for (const std::string& t : scope.types) type_array.text(t);
  for (const std::string& s : scope.sources) source_array.text(s);
  const pqxx::binarystring types(type_array.str()), sources(source_array.str());
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
        scope.project, types, sources);
    pqxx::result r = tx.exec_params(
        "WITH due AS (SELECT project_id AS due_project, id AS due_id FROM jobs WHERE " + in_scope +
            " AND ((status IN ('queued', 'retrying') AND run_at <= now()) OR (status = "
            "'running' AND locked_until < now())) ORDER BY priority DESC, run_at LIMIT $4 FOR "
            "UPDATE SKIP LOCKED) " +
            update_job("status = 'running', attempts = attempts + 1, lease_token = "
                       "gen_random_uuid(), locked_until = now() + make_interval(secs => "
                       "$5::double precision), updated_at = now() FROM due WHERE project_id = "
                       "due_project AND id = due_id"),
        scope.project, types, sources, max, lease_seconds);
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
