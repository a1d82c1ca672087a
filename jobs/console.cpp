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
