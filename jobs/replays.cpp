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

// The parameters every replay statement shares, $1 to $8: project, source, route, provider,
// types, since, before, statuses.
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
  std::optional<std::string> since, before;
  std::string statuses;
};

// The source's pushed events the filter picks, with no delivery to the route under way.
std::string picked() {
  return "SELECT j.project_id, j.id FROM jobs j WHERE j.project_id = $1 AND j.source = $2 AND "
         "j.pushed AND " +
         takes("j.type", "$4", "$5") +
         " AND ($6::timestamptz IS NULL OR j.created_at >= $6::timestamptz) AND "
         "($7::timestamptz IS NULL OR j.created_at < $7::timestamptz) AND NOT EXISTS (SELECT "
         "FROM deliveries d WHERE d.project_id = j.project_id AND d.job_id = j.id AND d.route = "
         "$3 AND d.status = 'running') AND (cardinality($8::text[]) = 0 OR EXISTS (SELECT FROM "
         "deliveries d WHERE d.project_id = j.project_id AND d.job_id = j.id AND d.route = $3 "
         "AND d.status = ANY($8::text[])))";
}

template <class Tx>
std::int64_t count(Tx& tx, const Params& p) {
  return tx
      .exec_params("SELECT count(*) FROM (" + picked() + ") x", p.project, p.source, p.route,
                   p.provider, p.types, p.since, p.before, pqxx::binarystring(p.statuses))[0][0]
      .template as<std::int64_t>();
}

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

const std::string kSummariseReplay = summarise(
    "(d.project_id, d.job_id) IN (SELECT project_id, job_id FROM deliveries WHERE replay_id = "
    "$1::uuid)");

}  // namespace

std::int64_t Store::count_replay(const std::string& project, const config::Source& source,
                                 const config::Route& route, const ReplayFilter& filter) {
  Params p(project, source, route, filter);
  return db_->run("count replay", [&](pqxx::work& tx) { return count(tx, p); });
}

std::optional<Replay> Store::start_replay(const std::string& project, const config::Source& source,
                                          const config::Route& route, const ReplayFilter& filter,
                                          std::int64_t max_events) {
  Params p(project, source, route, filter);
  const std::string id = new_job_id();  // time-ordered, as the replays are listed
  return db_->run("replay", [&](pqxx::work& tx) -> std::optional<Replay> {
    if (count(tx, p) > max_events) return std::nullopt;
    // The jobs first, then their deliveries: the lock order of every delivery's change.
    std::int64_t total =
        tx.exec_params(
              "WITH picked AS (" + picked() +
                  " ORDER BY j.id FOR UPDATE OF j), upserted AS (INSERT INTO deliveries "
                  "(project_id, job_id, route, source, attempt_allowance, max_attempts, run_at, "
                  "replay_id) SELECT project_id, id, $3, $2, $9, $9, now(), $10::uuid FROM "
                  "picked ON CONFLICT (project_id, job_id, route) DO UPDATE SET status = "
                  "'queued', run_at = now(), completed_at = NULL, lease_token = NULL, "
                  "locked_until = NULL, max_attempts = deliveries.attempts + "
                  "deliveries.attempt_allowance, replay_id = EXCLUDED.replay_id, updated_at = "
                  "now() WHERE deliveries.status <> 'running' RETURNING 1) SELECT count(*) FROM "
                  "upserted",
              p.project, p.source, p.route, p.provider, p.types, p.since, p.before,
              pqxx::binarystring(p.statuses), route.retry.max_attempts, id)[0][0]
            .as<std::int64_t>();
    tx.exec_params(kSummariseReplay, id);
    tx.exec_params(
        "INSERT INTO replays (id, project_id, source, route, total) VALUES ($1::uuid, $2, $3, "
        "$4, $5)",
        id, project, source.name, route.name, total);
    tx.exec("NOTIFY " + std::string(kWakeChannel));
    std::optional<Replay> out = read_replay(tx, project, id);
    tx.commit();
    return out;
  });
}

std::optional<Replay> Store::replay(const std::string& project, const std::string& id) {
  return db_->run("replay", [&](pqxx::work& tx) { return read_replay(tx, project, id); });
}

std::optional<Replay> Store::cancel_replay(const std::string& project, const std::string& id) {
  return db_->run("cancel replay", [&](pqxx::work& tx) -> std::optional<Replay> {
    pqxx::result found = tx.exec_params(
        "UPDATE replays SET cancelled = true WHERE project_id = $1 AND id = $2::uuid RETURNING 1",
        project, id);
    if (found.empty()) return std::nullopt;
    tx.exec_params(
        "SELECT FROM jobs WHERE (project_id, id) IN (SELECT project_id, job_id FROM deliveries "
        "WHERE replay_id = $1::uuid AND status IN ('queued', 'retrying')) ORDER BY id FOR UPDATE",
        id);
    tx.exec_params(
        "UPDATE deliveries SET status = 'cancelled', updated_at = now() WHERE replay_id = "
        "$1::uuid AND status IN ('queued', 'retrying')",
        id);
    tx.exec_params(kSummariseReplay, id);
    std::optional<Replay> out = read_replay(tx, project, id);
    tx.commit();
    return out;
  });
}

}  // namespace flare::jobs
