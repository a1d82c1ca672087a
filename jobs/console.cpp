// What the console reads and writes beyond the jobs API's store calls: its sessions and the
// traffic its charts draw (docs/console.md).
#include <string>

#include "jobs/database.hpp"
#include "jobs/enqueue.hpp"
#include "jobs/store.hpp"

namespace flare::jobs {

void Store::add_session(const std::string& id_sha256, const ConsoleSession& session,
                        std::chrono::seconds lifetime) {
  db_->run("add session", [&](pqxx::work& tx) {
    tx.exec("DELETE FROM console_sessions WHERE expires_at <= now()");
    tx.exec_params(
        "INSERT INTO console_sessions (id_sha256, operator, token_sha256, csrf, expires_at) "
        "VALUES ($1, $2, $3, $4, now() + $5 * interval '1 second')",
        id_sha256, session.operator_name, session.token_sha256, session.csrf,
        static_cast<std::int64_t>(lifetime.count()));
    // However many times an operator signs in and never out, the table holds a bounded number.
    tx.exec_params(
        "DELETE FROM console_sessions WHERE operator = $1 AND id_sha256 NOT IN (SELECT id_sha256 "
        "FROM console_sessions WHERE operator = $1 ORDER BY created_at DESC LIMIT 100)",
        session.operator_name);
    tx.commit();
    return 0;
  });
}

std::optional<ConsoleSession> Store::session(const std::string& id_sha256) {
  return db_->run("session", [&](pqxx::work& tx) -> std::optional<ConsoleSession> {
    pqxx::result r = tx.exec_params(
        "SELECT operator, token_sha256, csrf FROM console_sessions WHERE id_sha256 = $1 AND "
        "expires_at > now()",
        id_sha256);
    if (r.empty()) return std::nullopt;
    return ConsoleSession{r[0][0].as<std::string>(), r[0][1].as<std::string>(),
                          r[0][2].as<std::string>()};
  });
}

void Store::end_session(const std::string& id_sha256) {
  db_->run("end session", [&](pqxx::work& tx) {
    tx.exec_params("DELETE FROM console_sessions WHERE id_sha256 = $1", id_sha256);
    tx.commit();
    return 0;
  });
}

QueueSummary Store::queue_summary(const std::vector<std::string>& projects,
                                  const std::vector<RouteId>& routes, std::int64_t cap) {
  BinaryArray project_ids(BinaryArray::kText), sources(BinaryArray::kText),
      names(BinaryArray::kText);
  for (const std::string& p : projects) project_ids.text(p);
  for (const RouteId& r : routes) {
    sources.text(r.source);
    names.text(r.route);
  }
  // Each count walks a partial index (ix_jobs_claim, ix_jobs_lease, ix_deliveries_due,
  // ix_deliveries_running, ix_jobs_ended) no further than the cap. The oldest due pulled job is
  // found project by project and priority by priority, each the head of its part of
  // ix_jobs_claim (project, priority, run_at), where min(run_at) walked the whole index; the
  // oldest due delivery route by route, at the head of each one's ix_deliveries_due.
  static const char* kSummary = R"sql(
SELECT
  (SELECT count(*) FROM (SELECT FROM jobs WHERE status IN ('queued', 'retrying') AND NOT pushed
     AND project_id = ANY($1::text[]) LIMIT $4) c),
  (SELECT count(*) FROM (SELECT FROM jobs WHERE status = 'running' AND NOT pushed
     AND project_id = ANY($1::text[]) LIMIT $4) c),
  (SELECT count(*) FROM (SELECT FROM deliveries WHERE status IN ('queued', 'retrying')
     AND (source, route) IN (SELECT * FROM unnest($2::text[], $3::text[])) LIMIT $4) c),
  (SELECT count(*) FROM (SELECT FROM deliveries WHERE status = 'running'
     AND (source, route) IN (SELECT * FROM unnest($2::text[], $3::text[])) LIMIT $4) c),
  (SELECT count(*) FROM (SELECT FROM jobs WHERE project_id = ANY($1::text[]) AND status = 'dead'
     AND pruned_at IS NULL LIMIT $4) c),
  (SELECT extract(epoch FROM now() - min(x.due)) FROM unnest($1::text[]) AS pr(id)
   CROSS JOIN LATERAL (
     WITH RECURSIVE level(priority) AS (
       (SELECT priority FROM jobs WHERE status IN ('queued', 'retrying') AND NOT pushed
          AND project_id = pr.id ORDER BY priority DESC LIMIT 1)
       UNION ALL
       SELECT (SELECT j.priority FROM jobs j WHERE j.status IN ('queued', 'retrying')
                 AND NOT j.pushed AND j.project_id = pr.id AND j.priority < level.priority
               ORDER BY j.priority DESC LIMIT 1)
       FROM level WHERE level.priority IS NOT NULL)
     SELECT (SELECT j.run_at FROM jobs j WHERE j.status IN ('queued', 'retrying') AND NOT j.pushed
               AND j.project_id = pr.id AND j.priority = level.priority
             ORDER BY j.priority DESC, j.run_at LIMIT 1) AS due
     FROM level WHERE level.priority IS NOT NULL) x
   WHERE x.due <= now()),
  (SELECT extract(epoch FROM now() - min(x.due)) FROM unnest($2::text[], $3::text[]) AS r(s, n)
     CROSS JOIN LATERAL (SELECT min(run_at) AS due FROM deliveries d WHERE d.source = r.s
       AND d.route = r.n AND d.status IN ('queued', 'retrying') AND d.run_at <= now()) x)
)sql";
  return db_->run("queue summary", [&](pqxx::work& tx) {
    // A bitmap scan reads the whole index before its LIMIT: 27 ms against 2.6 ms for a count
    // that stops at 10,000 of 100,000 waiting jobs.
    tx.exec("SET LOCAL enable_bitmapscan = off");
    pqxx::row r =
        tx.exec_params1(kSummary, pqxx::binarystring(project_ids.str()),
                        pqxx::binarystring(sources.str()), pqxx::binarystring(names.str()), cap);
    QueueSummary out;
    out.pull_waiting = r[0].as<std::int64_t>();
    out.pull_running = r[1].as<std::int64_t>();
    out.push_waiting = r[2].as<std::int64_t>();
    out.push_running = r[3].as<std::int64_t>();
    out.dead = r[4].as<std::int64_t>();
    out.pull_oldest_due_seconds = r[5].is_null() ? 0 : r[5].as<double>();
    out.push_oldest_due_seconds = r[6].is_null() ? 0 : r[6].as<double>();
    return out;
  });
}

namespace {

std::string durations_array(const TrafficRow& row) {
  std::string out = "{";
  for (std::size_t i = 0; i < row.durations.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(row.durations[i]);
  }
  return out + "}";
}

// The sums of the duration buckets, each a column, for a query over traffic rows.
std::string summed_durations() {
  std::string out;
  for (std::size_t i = 1; i <= kTrafficDurationBounds.size() + 1; ++i) {
    out.append(", sum(durations[").append(std::to_string(i)).append("])::bigint");
  }
  return out;
}

}  // namespace

void Store::add_traffic(const std::vector<TrafficRow>& rows) {
  db_->run("add traffic", [&](pqxx::work& tx) {
    for (const TrafficRow& r : rows) {
      tx.exec_params(
          "INSERT INTO traffic AS t (minute, source, route, received, duplicates, rejected, "
          "succeeded, failed, durations) VALUES (to_timestamp($1), $2, $3, $4, $5, $6, $7, $8, "
          "$9::bigint[]) ON CONFLICT (minute, source, route) DO UPDATE SET received = t.received "
          "+ excluded.received, duplicates = t.duplicates + excluded.duplicates, rejected = "
          "t.rejected + excluded.rejected, succeeded = t.succeeded + excluded.succeeded, failed = "
          "t.failed + excluded.failed, durations = ARRAY(SELECT a + b FROM unnest(t.durations, "
          "excluded.durations) AS d(a, b))",
          r.minute, r.source, r.route, r.received, r.duplicates, r.rejected, r.succeeded, r.failed,
          durations_array(r));
    }
    tx.exec_params("DELETE FROM traffic WHERE minute < now() - $1 * interval '1 second'",
                   static_cast<std::int64_t>(std::chrono::seconds(kTrafficKept).count()));
    tx.commit();
    return 0;
  });
}

std::vector<TrafficRow> Store::traffic(const std::vector<std::string>& sources,
                                       std::chrono::seconds span, std::chrono::seconds bucket) {
  BinaryArray names(BinaryArray::kText);
  for (const std::string& s : sources) names.text(s);
  static const std::string kSummed =
      "SELECT (floor(extract(epoch FROM minute) / $3) * $3)::bigint AS b, source, route, "
      "sum(received)::bigint, sum(duplicates)::bigint, sum(rejected)::bigint, "
      "sum(succeeded)::bigint, sum(failed)::bigint" +
      summed_durations() +
      " FROM traffic WHERE source = ANY($1::text[]) AND minute >= now() - $2 * interval '1 "
      "second' GROUP BY 1, 2, 3 ORDER BY 1";
  return db_->run("traffic", [&](pqxx::work& tx) {
    std::vector<TrafficRow> out;
    for (const auto& r : tx.exec_params(kSummed, pqxx::binarystring(names.str()),
                                        static_cast<std::int64_t>(span.count()),
                                        static_cast<std::int64_t>(bucket.count()))) {
      TrafficRow row;
      row.minute = r[0].template as<std::int64_t>();
      row.source = r[1].as<std::string>();
      row.route = r[2].as<std::string>();
      row.received = r[3].as<std::int64_t>();
      row.duplicates = r[4].as<std::int64_t>();
      row.rejected = r[5].as<std::int64_t>();
      row.succeeded = r[6].as<std::int64_t>();
      row.failed = r[7].as<std::int64_t>();
      for (std::size_t i = 0; i < row.durations.size(); ++i) {
        row.durations[i] = r[static_cast<pqxx::row::size_type>(8 + i)].as<std::int64_t>();
      }
      out.push_back(std::move(row));
    }
    return out;
  });
}

}  // namespace flare::jobs
