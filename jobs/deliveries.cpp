// Pushed jobs' deliveries: the push workers' claims, the record of each attempt and its outcome,
// and the view of a job with its deliveries and attempts. Every change to a delivery locks its
// job's row first and sums the job up afterwards, in the same transaction (see kSummarise).
#include <set>
#include <utility>

#include "jobs/database.hpp"
#include "jobs/enqueue.hpp"
#include "jobs/rows.hpp"
#include "jobs/sql.hpp"
#include "jobs/store.hpp"

namespace flare::jobs {
namespace {

constexpr const char* kDeliveryColumns =
    "d.project_id, d.job_id::text, d.route, d.source, d.status, d.attempts, d.max_attempts, "
    "d.last_error, d.lease_token::text, " FLARE_TS("d.created_at") ", " FLARE_TS(
        "d.updated_at") ", " FLARE_TS("d.run_at") ", " FLARE_TS("d.completed_at");

Delivery read_delivery(const pqxx::row& r) {
  Delivery d;
  d.project_id = r[0].as<std::string>();
  d.job_id = r[1].as<std::string>();
  d.route = r[2].as<std::string>();
  d.source = r[3].as<std::string>();
  d.status = status_of(r[4].c_str());
  d.attempts = r[5].as<int>();
  d.max_attempts = r[6].as<int>();
  d.last_error = nullable(r[7]);
  d.lease_token = nullable(r[8]);
  d.created_at = r[9].as<std::string>();
  d.updated_at = r[10].as<std::string>();
  d.run_at = r[11].as<std::string>();
  d.completed_at = nullable(r[12]);
  return d;
}

// The routes a claim is for: $1 their sources, $2 their names.
constexpr const char* kInScope =
    "(d.source, d.route) IN (SELECT * FROM unnest($1::text[], $2::text[]))";

// The delivery as claimed by `lease_token`: $1 project, $2 job, $3 route, $4 token.
constexpr const char* kHeld =
    "project_id = $1 AND job_id = $2::uuid AND route = $3 AND status = 'running' AND "
    "lease_token = $4::uuid";

}  // namespace

std::vector<Push> Store::claim_deliveries(const std::vector<RouteId>& routes, int max,
                                          int lease_seconds) {
  if (routes.empty()) return {};
  BinaryArray source_array(BinaryArray::kText), route_array(BinaryArray::kText);
  for (const RouteId& id : routes) {
    source_array.text(id.source);
    route_array.text(id.route);
  }
  const pqxx::binarystring sources(source_array.str()), names(route_array.str());
  return db_->run("claim deliveries", [&](pqxx::work& tx) {
    // Rows locked by another transaction are skipped, jobs as well as deliveries: a claim never
    // waits, and so never waits in the opposite order of a change that locked the job first.
    std::string lock = " FOR UPDATE OF d, j SKIP LOCKED";
    std::string join =
        " FROM deliveries d JOIN jobs j ON j.project_id = d.project_id AND "
        "j.id = d.job_id WHERE ";
    std::string key = "d.project_id = x.project_id AND d.job_id = x.job_id AND d.route = x.route";
    std::set<std::pair<std::string, std::string>> touched;
    // A lease that ran out on the last allowed attempt ends the delivery: none is left.
    for (const auto& row : tx.exec_params(
             "WITH x AS (SELECT d.project_id, d.job_id, d.route" + join + kInScope +
                 " AND d.status = 'running' AND d.locked_until < now() AND d.attempts >= "
                 "d.max_attempts" +
                 lock +
                 ") UPDATE deliveries d SET status = 'dead', lease_token = NULL, "
                 "locked_until = NULL, updated_at = now(), last_error = 'the lease of the last "
                 "attempt ran out' FROM x WHERE " +
                 key + " RETURNING d.project_id, d.job_id::text",
             sources, names)) {
      touched.emplace(row[0].as<std::string>(), row[1].as<std::string>());
    }
    pqxx::result claimed = tx.exec_params(
        "WITH x AS (SELECT d.project_id, d.job_id, d.route" + join + kInScope +
            " AND ((d.status IN ('queued', 'retrying') AND d.run_at <= now()) OR (d.status = "
            "'running' AND d.locked_until < now() AND d.attempts < d.max_attempts)) ORDER BY "
            "d.run_at LIMIT $3" +
            lock +
            ") UPDATE deliveries d SET status = 'running', attempts = d.attempts + 1, "
            "lease_token = gen_random_uuid(), locked_until = now() + make_interval(secs => "
            "$4::double precision), updated_at = now() FROM x WHERE " +
            key + " RETURNING " + kDeliveryColumns,
        sources, names, max, lease_seconds);
    std::vector<Push> out;
    for (const auto& row : claimed) {
      Push push;
      push.delivery = read_delivery(row);
      touched.emplace(push.delivery.project_id, push.delivery.job_id);
      out.push_back(std::move(push));
    }
    for (const auto& [project, id] : touched) tx.exec_params(kSummarise, project, id);
    for (Push& push : out) {
      push.job = read_job(tx.exec_params(select_job("project_id = $1 AND id = $2::uuid"),
                                         push.delivery.project_id, push.delivery.job_id)[0]);
    }
    tx.commit();
    return out;
  });
}

bool Store::record_attempt(const Delivery& claimed, const AttemptRecord& attempt, Status next,
                           std::chrono::milliseconds delay) {
  const std::string token = claimed.lease_token.value_or("");
  return db_->run("record attempt", [&](pqxx::work& tx) {
    if (!lock_job(tx, claimed.project_id, claimed.job_id)) return false;  // deleted meanwhile
    tx.exec_params(
        "INSERT INTO attempts (project_id, job_id, route, number, started_at, duration_ms, "
        "status_code, error, response) VALUES ($1, $2::uuid, $3, $4, $5::timestamptz, $6, $7, "
        "$8, $9) ON CONFLICT DO NOTHING",
        claimed.project_id, claimed.job_id, claimed.route, attempt.number, attempt.started_at,
        attempt.duration_ms, attempt.status_code, attempt.error,
        attempt.response.empty() ? std::nullopt : std::optional<std::string>(attempt.response));
    pqxx::result r = tx.exec_params(
        std::string("UPDATE deliveries SET status = $5, last_error = coalesce($6, last_error), "
                    "run_at = CASE WHEN $5 = 'retrying' THEN now() + $7::bigint * interval '1 "
                    "millisecond' ELSE run_at END, completed_at = CASE WHEN $5 = 'succeeded' "
                    "THEN now() END, lease_token = NULL, locked_until = NULL, updated_at = "
                    "now() WHERE ") +
            kHeld + " RETURNING 1",
        claimed.project_id, claimed.job_id, claimed.route, token, std::string(to_string(next)),
        attempt.error, static_cast<std::int64_t>(delay.count()));
    if (!r.empty()) tx.exec_params(kSummarise, claimed.project_id, claimed.job_id);
    tx.commit();
    return !r.empty();
  });
}

bool Store::release_delivery(const Delivery& claimed) {
  const std::string token = claimed.lease_token.value_or("");
  return db_->run("release delivery", [&](pqxx::work& tx) {
    if (!lock_job(tx, claimed.project_id, claimed.job_id)) return false;
    pqxx::result r = tx.exec_params(
        std::string("UPDATE deliveries SET status = CASE WHEN attempts > 1 THEN 'retrying' ELSE "
                    "'queued' END, attempts = attempts - 1, run_at = now(), lease_token = NULL, "
                    "locked_until = NULL, updated_at = now() WHERE ") +
            kHeld + " RETURNING 1",
        claimed.project_id, claimed.job_id, claimed.route, token);
    if (!r.empty()) {
      tx.exec_params(kSummarise, claimed.project_id, claimed.job_id);
      tx.exec("NOTIFY " + std::string(kWakeChannel));
    }
    tx.commit();
    return !r.empty();
  });
}

std::optional<JobView> Store::view(const std::string& project, const std::string& id,
                                   int attempt_limit) {
  return db_->run("view", [&](pqxx::work& tx) -> std::optional<JobView> {
    // The job, its deliveries and its attempts as of the same moment.
    tx.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY");
    pqxx::result job = tx.exec_params(select_job("project_id = $1 AND id = $2::uuid"), project, id);
    if (job.empty()) return std::nullopt;
    JobView view{read_job(job[0]), {}, {}};
    for (const auto& row :
         tx.exec_params(std::string("SELECT ") + kDeliveryColumns +
                            " FROM deliveries d WHERE d.project_id = $1 AND d.job_id = $2::uuid "
                            "ORDER BY d.route",
                        project, id)) {
      view.deliveries.push_back(read_delivery(row));
    }
    for (const auto& row : tx.exec_params(
             "SELECT route, number, " FLARE_TS(
                 "started_at") ", duration_ms, status_code, error, response FROM attempts WHERE "
                               "project_id = $1 AND job_id = $2::uuid ORDER BY started_at DESC, "
                               "route, number DESC LIMIT $3",
             project, id, attempt_limit)) {
      AttemptRecord a;
      a.route = row[0].as<std::string>();
      a.number = row[1].as<int>();
      a.started_at = row[2].as<std::string>();
      a.duration_ms = row[3].as<std::int64_t>();
      if (!row[4].is_null()) a.status_code = row[4].as<int>();
      a.error = nullable(row[5]);
      a.response = nullable(row[6]).value_or("");
      view.attempts.push_back(std::move(a));
    }
    return view;
  });
}

int Store::adopt(const config::Source& source) {
  // Each route's types as one text: a type holds no newline.
  BinaryArray names(BinaryArray::kText), types(BinaryArray::kText), attempts(BinaryArray::kInt4);
  for (const config::Route& route : source.routes) {
    std::string joined;
    for (const std::string& t : route.types) joined.append(joined.empty() ? "" : "\n").append(t);
    names.text(route.name);
    types.text(joined);
    attempts.int4(route.retry.max_attempts);
  }
  const pqxx::binarystring name_param(names.str()), type_param(types.str()),
      attempt_param(attempts.str());
  // A job's type is "<provider>.<event type>" unless the source names its jobs' type: then
  // only the routes without types take it. At most 1,000 jobs per transaction.
  constexpr const char* kAdopt = R"sql(
WITH waiting AS (
  SELECT project_id, id, type, run_at FROM jobs
  WHERE source = $1 AND NOT pushed
    AND (status IN ('queued', 'retrying') OR (status = 'running' AND locked_until < now()))
  LIMIT 1000 FOR UPDATE SKIP LOCKED),
routes AS (SELECT * FROM unnest($3::text[], $4::text[], $5::int[]) AS r(route, types, max_attempts)),
taken AS (
  SELECT w.project_id, w.id, r.route, r.max_attempts, w.run_at FROM waiting w CROSS JOIN routes r
  WHERE r.types = '' OR EXISTS (
    SELECT FROM unnest(string_to_array(r.types, E'\n')) t
    WHERE w.type = $2 || '.' || t
       OR (right(t, 2) = '.*' AND length(w.type) > length($2) + length(t)
           AND starts_with(w.type, $2 || '.' || left(t, -1))))),
delivered AS (
  INSERT INTO deliveries (project_id, job_id, route, source, attempt_allowance, max_attempts, run_at)
  SELECT project_id, id, route, $1, max_attempts, max_attempts, run_at FROM taken)
UPDATE jobs j SET pushed = true, attempts = 0, lease_token = NULL, locked_until = NULL,
  updated_at = now(),
  status = CASE WHEN EXISTS (SELECT FROM taken t WHERE t.project_id = j.project_id AND t.id = j.id)
                THEN 'queued' ELSE 'succeeded' END,
  completed_at = CASE WHEN EXISTS (SELECT FROM taken t WHERE t.project_id = j.project_id AND t.id = j.id)
                      THEN NULL ELSE now() END
FROM waiting w WHERE j.project_id = w.project_id AND j.id = w.id)sql";
  int total = 0;
  for (;;) {
    int n = db_->run("adopt", [&](pqxx::work& tx) {
      pqxx::result r = tx.exec_params(kAdopt, source.name, source.provider, name_param, type_param,
                                      attempt_param);
      if (r.affected_rows() > 0) tx.exec("NOTIFY " + std::string(kWakeChannel));
      tx.commit();
      return static_cast<int>(r.affected_rows());
    });
    total += n;
    if (n == 0) return total;
  }
}

}  // namespace flare::jobs
