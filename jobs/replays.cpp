// Replays: a source's events sent again to one of its routes, by a filter, as deliveries that
// name the replay, so that its progress is theirs. Jobs are locked before their deliveries, as
// every change to a delivery does (see deliveries.cpp).
#include "jobs/database.hpp"
#include "jobs/enqueue.hpp"
#include "jobs/rows.hpp"
#include "jobs/sql.hpp"
#include "jobs/store.hpp"

namespace flare::jobs {
namespace {

constexpr const char* kFirstId = "00000000-0000-0000-0000-000000000000";
constexpr const char* kLastId = "ffffffff-ffff-ffff-ffff-ffffffffffff";

// The parameters every replay statement shares, $1 to $8: project, source, route, provider,
// types, since, before (Unix microseconds), statuses.
struct Params {
  Params(const std::string& project_id, const config::Source& s, const config::Route& r,
         const ReplayFilter& filter)
      : project(project_id),
        source(s.name),
        route(r.name),
        provider(s.provider),
        types(joined_types(filter.types)),
        since(filter.since),
        before(filter.before) {
    BinaryArray array(BinaryArray::kText);
    for (Status st : filter.statuses) array.text(to_string(st));
    statuses = array.str();
  }
  std::string project, source, route, provider, types;
  std::optional<std::int64_t> since, before;
  std::string statuses;
  std::string newest = kLastId;  // the newest job a replay takes
};

// The source's pushed events the filter picks whose delivery to the route, if any, has ended:
// one waiting or under way is left alone. $9 and $10: job ids to pick after and up to (the
// newest when the replay began: what comes later is not the replay's).
std::string picked() {
  return "SELECT j.project_id, j.id FROM jobs j WHERE j.project_id = $1 AND j.id > $9::uuid "
         "AND j.id <= $10::uuid AND j.source = $2 AND j.pushed AND j.pruned_at IS NULL AND " +
         takes("j.type", "$4", "$5") +
         " AND ($6::bigint IS NULL OR j.created_at >= 'epoch'::timestamptz + $6::bigint * "
         "interval '1 microsecond') AND ($7::bigint IS NULL OR j.created_at < "
         "'epoch'::timestamptz + $7::bigint * interval '1 microsecond') AND NOT EXISTS (SELECT "
         "FROM deliveries d WHERE d.project_id = j.project_id AND d.job_id = j.id AND d.route = "
         "$3 AND d.status IN ('queued', 'retrying', 'running')) AND (cardinality($8::text[]) = "
         "0 OR EXISTS (SELECT FROM deliveries d WHERE d.project_id = j.project_id AND d.job_id = "
         "j.id AND d.route = $3 AND d.status = ANY($8::text[])))";
}

std::int64_t count(pqxx::work& tx, const Params& p) {
  return tx
      .exec_params("SELECT count(*) FROM (" + picked() + ") x", p.project, p.source, p.route,
                   p.provider, p.types, p.since, p.before, pqxx::binarystring(p.statuses), kFirstId,
                   p.newest)[0][0]
      .as<std::int64_t>();
}

// A batch's jobs: $1 the project, $2 their ids (an array).
const std::string kSummariseBatch = summarise("SELECT $1::text, unnest($2::uuid[])");

// Replays and their cancels go in batches of this many jobs, a transaction each: short enough
// that the attempts they hold up (waiting on a job's lock) never come near a statement timeout.
constexpr int kBatch = 1000;

// A replay with its deliveries counted by status: $1 project, $2 id.
constexpr const char* kReplay = R"sql(
SELECT r.id::text, r.source, r.route, r.cancelled, r.total, )sql" FLARE_TS("r.created_at") R"sql(,
       count(d.*) FILTER (WHERE d.status = 'succeeded'),
       count(d.*) FILTER (WHERE d.status = 'dead'),
       count(d.*) FILTER (WHERE d.status = 'cancelled'),
       count(d.*) FILTER (WHERE d.status IN ('queued', 'retrying')),
       count(d.*) FILTER (WHERE d.status = 'running')
FROM replays r LEFT JOIN deliveries d ON d.replay_id = r.id
WHERE r.project_id = $1 AND r.id = $2::uuid
GROUP BY r.id)sql";

std::optional<Replay> read_replay(pqxx::work& tx, const std::string& project,
                                  const std::string& id) {
  pqxx::result r = tx.exec_params(kReplay, project, id);
  if (r.empty()) return std::nullopt;
  Replay out;
  out.id = r[0][0].as<std::string>();
  out.source = r[0][1].as<std::string>();
  out.route = r[0][2].as<std::string>();
  bool cancelled = r[0][3].as<bool>();
  out.total = r[0][4].as<std::int64_t>();
  out.created_at = r[0][5].as<std::string>();
  out.succeeded = r[0][6].as<std::int64_t>();
  out.dead = r[0][7].as<std::int64_t>();
  out.cancelled = r[0][8].as<std::int64_t>();
  out.waiting = r[0][9].as<std::int64_t>();
  out.running = r[0][10].as<std::int64_t>();
  out.status = cancelled ? "cancelled" : out.waiting > 0 || out.running > 0 ? "running" : "done";
  return out;
}

}  // namespace

std::int64_t Store::count_replay(const std::string& project, const config::Source& source,
                                 const config::Route& route, const ReplayFilter& filter) {
  Params p(project, source, route, filter);
  return db_->run("count replay", [&](pqxx::work& tx) { return count(tx, p); });
}

bool Store::start_replay(const std::string& id, const std::string& project,
                         const config::Source& source, const config::Route& route,
                         const ReplayFilter& filter, std::int64_t max_events) {
  Params p(project, source, route, filter);
  bool started = db_->run("replay", [&](pqxx::work& tx) {
    pqxx::result newest = tx.exec_params(
        "SELECT id::text FROM jobs WHERE project_id = $1 ORDER BY jobs.id DESC LIMIT 1", project);
    p.newest = newest.empty() ? kFirstId : newest[0][0].as<std::string>();
    if (count(tx, p) > max_events) return false;
    tx.exec_params(
        "INSERT INTO replays (id, project_id, source, route, total) VALUES ($1::uuid, $2, $3, "
        "$4, 0)",
        id, project, source.name, route.name);
    tx.commit();
    return true;
  });
  if (!started) return false;
  // The jobs first, then their deliveries: the lock order of every delivery's change. Each
  // batch's jobs are picked after the last one of the batch before, by the primary key.
  const std::string batch =
      "WITH picked AS (" + picked() + " ORDER BY j.id LIMIT " + std::to_string(kBatch) +
      " FOR UPDATE OF j), upserted AS (INSERT INTO deliveries (project_id, job_id, route, "
      "source, attempt_allowance, max_attempts, run_at, replay_id) SELECT project_id, id, $3, "
      "$2, $11, $11, now(), $12::uuid FROM picked ON CONFLICT (project_id, job_id, route) DO "
      "UPDATE SET status = 'queued', run_at = now(), completed_at = NULL, max_attempts = "
      "deliveries.attempts + deliveries.attempt_allowance, replay_id = EXCLUDED.replay_id, "
      "updated_at = now() WHERE deliveries.status IN ('succeeded', 'dead', 'cancelled') "
      "RETURNING job_id) SELECT (SELECT id::text FROM picked ORDER BY id DESC "
      "LIMIT 1), (SELECT "
      "array_agg(job_id)::text FROM upserted), (SELECT count(*) FROM upserted)";
  // The last job a batch took, once it committed: a batch tried again (after a connection broke)
  // starts where the one before it ended.
  std::string after = kFirstId;
  for (;;) {
    std::optional<std::string> last = db_->run("replay", [&](pqxx::work& tx) {
      pqxx::result r = tx.exec_params(batch, p.project, p.source, p.route, p.provider, p.types,
                                      p.since, p.before, pqxx::binarystring(p.statuses), after,
                                      p.newest, route.retry.max_attempts, id);
      if (r[0][0].is_null()) return std::optional<std::string>();
      if (!r[0][1].is_null()) tx.exec_params(kSummariseBatch, project, r[0][1].as<std::string>());
      tx.exec_params("UPDATE replays SET total = total + $2 WHERE id = $1::uuid", id,
                     r[0][2].as<std::int64_t>());
      tx.exec("NOTIFY " + std::string(kWakeChannel));
      tx.commit();
      return std::optional<std::string>(r[0][0].as<std::string>());
    });
    if (!last) return true;
    after = *last;
  }
}

std::optional<Replay> Store::replay(const std::string& project, const std::string& id) {
  return db_->run("replay", [&](pqxx::work& tx) { return read_replay(tx, project, id); });
}

std::optional<Replay> Store::cancel_replay(const std::string& project, const std::string& id) {
  bool found = db_->run("cancel replay", [&](pqxx::work& tx) {
    pqxx::result r = tx.exec_params(
        "UPDATE replays SET cancelled = true WHERE project_id = $1 AND id = $2::uuid RETURNING 1",
        project, id);
    tx.commit();
    return !r.empty();
  });
  if (!found) return std::nullopt;
  // A batch at a time: its jobs locked first, then only their deliveries changed, and only
  // their summaries written.
  const std::string batch =
      "WITH locked AS (SELECT j.project_id, j.id FROM jobs j WHERE (j.project_id, j.id) IN "
      "(SELECT project_id, job_id FROM deliveries WHERE replay_id = $1::uuid AND status IN "
      "('queued', 'retrying')) ORDER BY j.id LIMIT " +
      std::to_string(kBatch) +
      " FOR UPDATE OF j), cancelled AS (UPDATE deliveries d SET status = 'cancelled', "
      "updated_at = now() FROM locked l WHERE d.project_id = l.project_id AND d.job_id = l.id "
      "AND d.replay_id = $1::uuid AND d.status IN ('queued', 'retrying') RETURNING d.job_id) "
      "SELECT (SELECT count(*) FROM locked), (SELECT array_agg(job_id)::text FROM cancelled)";
  for (;;) {
    bool more = db_->run("cancel replay", [&](pqxx::work& tx) {
      pqxx::result r = tx.exec_params(batch, id);
      if (r[0][0].as<std::int64_t>() == 0) return false;
      if (!r[0][1].is_null()) tx.exec_params(kSummariseBatch, project, r[0][1].as<std::string>());
      tx.commit();
      return true;
    });
    if (!more) break;
  }
  return replay(project, id);
}

}  // namespace flare::jobs
