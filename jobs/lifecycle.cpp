// The lifecycle of a job after its enqueue: reads, the API's and the operator's changes, and the
// leases of claims, heartbeats and attempts' outcomes.
#include <algorithm>
#include <cstdio>

#include "jobs/database.hpp"
#include "jobs/enqueue.hpp"
#include "jobs/rows.hpp"
#include "jobs/sql.hpp"
#include "jobs/store.hpp"

namespace flare::jobs {

const char* const kJobColumns = FLARE_JOB_COLUMNS("");

std::optional<std::string> nullable(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<std::string>();
}

Job read_job(const pqxx::row& row, pqxx::row::size_type first) {
  auto r = [&](pqxx::row::size_type k) { return row[first + k]; };
  Job job;
  job.id = r(0).as<std::string>();
  job.project_id = r(1).as<std::string>();
  job.idempotency_key = nullable(r(2));
  job.type = r(3).as<std::string>();
  job.status = status_of(r(4).c_str());
  job.attempts = r(5).as<int>();
  job.max_attempts = r(6).as<int>();
  job.priority = r(7).as<int>();
  job.payload = pqxx::binarystring(r(8)).str();
  job.content_type = r(9).as<std::string>();
  job.source = nullable(r(10));
  job.event_id = nullable(r(11));
  job.last_error = nullable(r(12));
  job.lease_token = nullable(r(13));
  job.created_at = r(14).as<std::string>();
  job.updated_at = r(15).as<std::string>();
  job.run_at = r(16).as<std::string>();
  job.completed_at = nullable(r(17));
  job.locked_until = nullable(r(18));
  job.pushed = r(19).as<bool>();
  job.pruned_at = nullable(r(20));
  return job;
}

std::string select_job(const std::string& where) {
  return std::string("SELECT ") + kJobColumns + " FROM jobs WHERE " + where;
}

// Running while any delivery runs; else waiting (retrying when any waits after a failure) while
// any waits; else dead when any is dead, cancelled when any is cancelled, else succeeded (and
// completed then, as a pulled job is when it succeeds). The last error is that of the delivery
// that failed last.
std::string summarise(const std::string& keys) {
  // Driven by the keys, each job's deliveries read through their primary key: the planner knows
  // how many keys there are, where a condition on deliveries left it guessing at thousands of
  // groups and hashing the whole jobs table (note 46).
  return R"sql(
UPDATE jobs j SET status = s.status, attempts = s.attempts, run_at = coalesce(s.due, j.run_at),
  last_error = coalesce(s.last_error, j.last_error), updated_at = now(),
  completed_at = CASE WHEN s.status = 'succeeded' THEN coalesce(j.completed_at, now()) END
FROM ()sql" +
         keys + R"sql() AS k(project_id, job_id)
CROSS JOIN LATERAL (
  SELECT CASE WHEN bool_or(d.status = 'running') THEN 'running'
              WHEN bool_or(d.status = 'retrying') THEN 'retrying'
              WHEN bool_or(d.status = 'queued') THEN 'queued'
              WHEN bool_or(d.status = 'dead') THEN 'dead'
              WHEN bool_or(d.status = 'cancelled') THEN 'cancelled'
              ELSE 'succeeded' END AS status,
         sum(d.attempts)::int AS attempts,
         min(d.run_at) FILTER (WHERE d.status IN ('queued', 'retrying')) AS due,
         (array_agg(d.last_error ORDER BY d.updated_at DESC)
            FILTER (WHERE d.last_error IS NOT NULL))[1] AS last_error
  FROM deliveries d WHERE d.project_id = k.project_id AND d.job_id = k.job_id
  HAVING count(*) > 0) s
WHERE j.project_id = k.project_id AND j.id = k.job_id)sql";
}

const std::string kSummarise = summarise("SELECT $1::text, $2::uuid");

std::string joined_types(const std::vector<std::string>& types) {
  std::string out;
  for (const std::string& t : types) out.append(out.empty() ? "" : "\n").append(t);
  return out;
}

std::string takes(const std::string& type, const std::string& provider,
                  const std::string& patterns) {
  return "(" + patterns + " = '' OR EXISTS (SELECT FROM unnest(string_to_array(" + patterns +
         ", E'\\n')) t WHERE " + type + " = " + provider +
         " || '.' || t OR (right(t, 2) = '.*' "
         "AND length(" +
         type + ") > length(" + provider + ") + length(t) AND starts_with(" + type + ", " +
         provider + " || '.' || left(t, -1)))))";
}

namespace {

std::string update_job(const std::string& set_and_where) {
  return "UPDATE jobs SET " + set_and_where + " RETURNING " + kJobColumns;
}

// The job after an UPDATE that matched nothing: gone, or in the wrong state.
Changed unchanged(pqxx::work& tx, const std::string& project, const std::string& id,
                  Change otherwise) {
  pqxx::result r = tx.exec_params(select_job("project_id = $1 AND id = $2::uuid"), project, id);
  if (r.empty()) return {Change::kNotFound, std::nullopt};
  return {otherwise, read_job(r[0])};
}

// One job's state change: `set_where` is an UPDATE of job $1/$2 guarded by the state it
// needs; when the guard fails, `otherwise` says why.
template <class... Args>
Changed change(Database& db, const char* what, Change otherwise, const std::string& set_where,
               const std::string& project, const std::string& id, const Args&... args) {
  return db.run(what, [&](pqxx::work& tx) {
    pqxx::result r = tx.exec_params(update_job(set_where), project, id, args...);
    Changed out =
        r.empty() ? unchanged(tx, project, id, otherwise) : Changed{Change::kDone, read_job(r[0])};
    // A job that is due again wakes the push workers.
    if (out.change == Change::kDone &&
        (out.job->status == Status::kQueued || out.job->status == Status::kRetrying)) {
      tx.exec("NOTIFY " + std::string(kWakeChannel));
    }
    tx.commit();
    return out;
  });
}

// An operator's change of a job in one of the statuses `from`: `set` applies to the job, or,
// when its routes push it, to those of its deliveries that `which` picks (a job's status sums
// its deliveries' up, so a pushed job in `from` has such deliveries).
Changed operate(Database& db, const char* what, const std::string& project, const std::string& id,
                std::initializer_list<Status> from, const std::string& set,
                const std::string& which) {
  return db.run(what, [&](pqxx::work& tx) {
    pqxx::result held =
        tx.exec_params(select_job("project_id = $1 AND id = $2::uuid FOR UPDATE"), project, id);
    if (held.empty()) return Changed{Change::kNotFound, std::nullopt};
    Job job = read_job(held[0]);
    if (std::find(from.begin(), from.end(), job.status) == from.end()) {
      return Changed{Change::kWrongStatus, job};
    }
    if (job.pruned_at) return Changed{Change::kPruned, job};
    if (job.pushed) {
      tx.exec_params("UPDATE deliveries SET " + set +
                         " WHERE project_id = $1 AND job_id = $2::uuid AND " + which,
                     project, id);
      tx.exec_params(kSummarise, project, id);
    } else {
      tx.exec_params("UPDATE jobs SET " + set + " WHERE project_id = $1 AND id = $2::uuid", project,
                     id);
    }
    Changed out{
        Change::kDone,
        read_job(tx.exec_params(select_job("project_id = $1 AND id = $2::uuid"), project, id)[0])};
    // A job that is due again wakes the push workers.
    if (out.job->status == Status::kQueued) tx.exec("NOTIFY " + std::string(kWakeChannel));
    tx.commit();
    return out;
  });
}

}  // namespace

std::optional<Job> Store::get(const std::string& project, const std::string& id) {
  return db_->run("get", [&](pqxx::work& tx) -> std::optional<Job> {
    pqxx::result r = tx.exec_params(select_job("project_id = $1 AND id = $2::uuid"), project, id);
    if (r.empty()) return std::nullopt;
    return read_job(r[0]);
  });
}

namespace {

// The jobs of project $1 that a ListQuery's filters match: status $2, type $3, source $4, ids
// from $5 and below $6 (NULL: no bound). Times are bounds on ids, which begin with when the
// gateway made the job (new_job_id): the primary key finds them, where no index has created_at.
constexpr const char* kListed =
    "project_id = $1 AND ($2 = '' OR status = $2) AND ($3 = '' OR type = $3) AND ($4 = '' OR "
    "source = $4) AND ($5::uuid IS NULL OR id >= $5::uuid) AND ($6::uuid IS NULL OR id < "
    "$6::uuid)";

// A ListQuery's own filter on retention.
std::string listed(const ListQuery& query) {
  return std::string(kListed) + (query.retryable ? " AND pruned_at IS NULL" : "");
}

std::string status_filter(const ListQuery& query) {
  return query.status ? std::string(to_string(*query.status)) : "";
}

// The lowest job id made at Unix microsecond `micros`.
std::optional<std::string> first_id_at(std::optional<std::int64_t> micros) {
  if (!micros) return std::nullopt;
  std::int64_t ms = std::max<std::int64_t>(0, *micros) / 1000;
  auto sub = static_cast<unsigned>(std::max<std::int64_t>(0, *micros) % 1000);
  char out[48];
  std::snprintf(out, sizeof out, "%08llx-%04llx-%04x-0000-000000000000",
                static_cast<unsigned long long>(ms >> 16),
                static_cast<unsigned long long>(ms & 0xffff), 0x7000u | sub);
  return std::string(out);
}

}  // namespace

Page Store::list(const std::string& project, const ListQuery& query) {
  return db_->run("list", [&](pqxx::work& tx) {
    // One more than asked tells whether another page follows.
    pqxx::result r = tx.exec_params(
        // jobs.id: a bare `id` would name the output column, id::text, and sort every job.
        select_job(listed(query) + " AND id < $7::uuid ORDER BY jobs.id DESC LIMIT $8"), project,
        status_filter(query), query.type, query.source, first_id_at(query.since),
        first_id_at(query.before), query.after.value_or("ffffffff-ffff-ffff-ffff-ffffffffffff"),
        query.limit + 1);
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

std::int64_t Store::count_jobs(const std::string& project, const ListQuery& query,
                               std::int64_t max) {
  return db_->run("count", [&](pqxx::work& tx) {
    return tx
        .exec_params1(
            "SELECT count(*) FROM (SELECT FROM jobs WHERE " + listed(query) + " LIMIT $7) AS j",
            project, status_filter(query), query.type, query.source, first_id_at(query.since),
            first_id_at(query.before), max)[0]
        .as<std::int64_t>();
  });
}

Changed Store::retry(const std::string& project, const std::string& id) {
  return operate(*db_, "retry", project, id, {Status::kDead, Status::kCancelled},
                 "status = 'queued', run_at = now(), updated_at = now(), completed_at = NULL, "
                 "max_attempts = attempts + attempt_allowance",
                 "status IN ('dead', 'cancelled')");
}

Changed Store::cancel(const std::string& project, const std::string& id) {
  return operate(*db_, "cancel", project, id, {Status::kQueued, Status::kRetrying},
                 "status = 'cancelled', updated_at = now()", "status IN ('queued', 'retrying')");
}

bool Store::remove(const std::string& project, const std::string& id) {
  return db_->run("remove", [&](pqxx::work& tx) {
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
  // Jobs that routes push are the push workers' alone.
  static const std::string kInScope =
      "NOT pushed AND ($1 = '' OR project_id = $1) AND (cardinality($2::text[]) = 0 OR type = "
      "ANY($2::text[])) "
      "AND (cardinality($3::text[]) = 0 OR source = ANY($3::text[]))";
  // Leases run out rarely, yet each look walks ix_jobs_lease over the old version of every job
  // completed since the oldest open transaction began: with one held open, two thirds of a
  // claim (bench/README.md, note 45). So a connection looks once a second, not in every claim.
  const auto now = std::chrono::steady_clock::now();
  const bool leases = now - leases_looked_at_ >= kLeaseLook;
  return db_->run("claim", [&](pqxx::work& tx) {
    // A lease that ran out on the last allowed attempt ends the job: no attempt is left.
    if (leases) {
      tx.exec_params(
          "UPDATE jobs SET status = 'dead', lease_token = NULL, locked_until = NULL, "
          "updated_at = now(), last_error = 'the lease of the last attempt ran out' "
          "WHERE " +
              kInScope +
              " AND status = 'running' AND locked_until < now() AND attempts >= "
              "max_attempts",
          scope.project, types, sources);
    }
    // Due jobs and jobs whose lease ran out, each found by its own partial index
    // (ix_jobs_claim, ix_jobs_lease), at most `max` of each, locked as they are found so that
    // concurrent claims take the next ones; the best `max` of the two are claimed and the rest
    // go back when the transaction ends (leases run out rarely: usually none). As one condition
    // with OR, the planner read and sorted every waiting job of the project: 96 ms with 300,000
    // waiting on an idle server, 0.6 s a claim under load.
    static const std::string kClaimJobs =
        "WITH waiting AS (SELECT project_id, id, priority, run_at FROM jobs WHERE " + kInScope +
        " AND status IN ('queued', 'retrying') AND run_at <= now() ORDER BY priority DESC, "
        "run_at LIMIT $4 FOR UPDATE SKIP LOCKED), expired AS (SELECT project_id, id, "
        "priority, run_at FROM jobs WHERE " +
        kInScope +
        " AND status = 'running' AND locked_until < now() AND $6 ORDER BY priority DESC, "
        "run_at LIMIT $4 FOR UPDATE SKIP LOCKED), due AS (SELECT project_id AS due_project, "
        "id AS due_id FROM (SELECT * FROM waiting UNION ALL SELECT * FROM expired) both_kinds "
        "ORDER BY priority DESC, run_at LIMIT $4) " +
        update_job(
            "status = 'running', attempts = attempts + 1, lease_token = "
            "gen_random_uuid(), locked_until = now() + make_interval(secs => "
            "$5::double precision), updated_at = now() FROM due WHERE project_id = "
            "due_project AND id = due_id");
    pqxx::result r =
        exec_parsed(tx, kClaimJobs, scope.project, types, sources, max, lease_seconds, leases);
    std::vector<Job> claimed;
    for (const auto& row : r) claimed.push_back(read_job(row));
    std::sort(claimed.begin(), claimed.end(), [](const Job& a, const Job& b) {
      return a.priority != b.priority ? a.priority > b.priority : a.run_at < b.run_at;
    });
    tx.commit();
    // Only a look that committed counts: after a failure the next claim looks again.
    if (leases) leases_looked_at_ = now;
    return claimed;
  });
}

Changed Store::heartbeat(const std::string& project, const std::string& id,
                         const std::string& token, int lease_seconds) {
  return change(*db_, "heartbeat", Change::kLeaseLost,
                "locked_until = now() + make_interval(secs => $4::double precision), "
                "updated_at = now() WHERE project_id = $1 AND id = $2::uuid AND status = "
                "'running' AND lease_token = $3::uuid",
                project, id, token, lease_seconds);
}

Changed Store::complete(const std::string& project, const std::string& id,
                        const std::string& token) {
  return change(*db_, "complete", Change::kLeaseLost,
                "status = 'succeeded', completed_at = now(), updated_at = now(), "
                "lease_token = NULL, locked_until = NULL WHERE project_id = $1 AND id = "
                "$2::uuid AND status = 'running' AND lease_token = $3::uuid",
                project, id, token);
}

std::vector<Change> Store::complete(
    const std::string& project, const std::vector<std::pair<std::string, std::string>>& leases) {
  BinaryArray ids(BinaryArray::kUuid), tokens(BinaryArray::kUuid);
  for (const auto& [id, token] : leases) {
    ids.uuid(id);
    tokens.uuid(token);
  }
  // Each job by its id: completed, or else whether it is there at all (as of before the update).
  static const char* const kCompleteMany = R"sql(
WITH done AS (
  UPDATE jobs j SET status = 'succeeded', completed_at = now(), updated_at = now(),
    lease_token = NULL, locked_until = NULL
  FROM unnest($2::uuid[], $3::uuid[]) AS c(id, token)
  WHERE j.project_id = $1 AND j.id = c.id AND j.status = 'running' AND j.lease_token = c.token
  RETURNING j.id)
SELECT EXISTS (SELECT FROM done WHERE done.id = c.id),
       EXISTS (SELECT FROM jobs WHERE project_id = $1 AND id = c.id)
FROM unnest($2::uuid[]) WITH ORDINALITY AS c(id, k) ORDER BY c.k)sql";
  return db_->run("complete", [&](pqxx::work& tx) {
    // Each job found by its primary key, one after another: statistics a burst of jobs left
    // behind (a table that just grew) made the planner hash every job of the project (note 46).
    tx.exec("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off");
    std::vector<Change> out;
    for (const auto& row : exec_parsed(tx, kCompleteMany, project, pqxx::binarystring(ids.str()),
                                       pqxx::binarystring(tokens.str()))) {
      out.push_back(row[0].as<bool>()   ? Change::kDone
                    : row[1].as<bool>() ? Change::kLeaseLost
                                        : Change::kNotFound);
    }
    tx.commit();
    return out;
  });
}

Changed Store::fail(const std::string& project, const std::string& id, const std::string& token,
                    const std::string& error, bool retry, const Backoff& backoff) {
  return db_->run("fail", [&](pqxx::work& tx) {
    pqxx::result held = tx.exec_params(
        select_job("project_id = $1 AND id = $2::uuid AND status = 'running' AND lease_token = "
                   "$3::uuid FOR UPDATE"),
        project, id, token);
    if (held.empty()) return unchanged(tx, project, id, Change::kLeaseLost);
    Job job = read_job(held[0]);
    bool again = retry && job.attempts < job.max_attempts;
    pqxx::result r = tx.exec_params(
        update_job("status = $4, last_error = $5, run_at = CASE WHEN $4 = 'retrying' THEN now() "
                   "+ $6::bigint * interval '1 millisecond' ELSE run_at END, lease_token = NULL, "
                   "locked_until = NULL, updated_at = now() WHERE project_id = $1 AND id = "
                   "$2::uuid AND lease_token = $3::uuid"),
        project, id, token, std::string(to_string(again ? Status::kRetrying : Status::kDead)),
        error, again ? static_cast<std::int64_t>(backoff(job).count()) : 0);
    tx.commit();
    return Changed{Change::kDone, read_job(r[0])};
  });
}

Changed Store::release(const std::string& project, const std::string& id,
                       const std::string& token) {
  return change(*db_, "release", Change::kLeaseLost,
                "status = CASE WHEN attempts > 1 THEN 'retrying' ELSE 'queued' END, "
                "attempts = attempts - 1, run_at = now(), lease_token = NULL, locked_until "
                "= NULL, updated_at = now() WHERE project_id = $1 AND id = $2::uuid AND "
                "status = 'running' AND lease_token = $3::uuid",
                project, id, token);
}

QueueHealth Store::queue_health(const std::vector<std::string>& projects) {
  return db_->run("queue health", [&](pqxx::work& tx) {
    QueueHealth out;
    // Each condition is the predicate of a partial index: ix_jobs_claim and ix_jobs_lease,
    // ix_deliveries_due and ix_deliveries_running, ix_jobs_ended.
    pqxx::row r = tx.exec_params1(R"sql(
SELECT (SELECT count(*) FROM jobs WHERE status IN ('queued', 'retrying') AND NOT pushed
          AND status = 'queued'),
       (SELECT count(*) FROM jobs WHERE status IN ('queued', 'retrying') AND NOT pushed
          AND status = 'retrying'),
       (SELECT count(*) FROM jobs WHERE status = 'running' AND NOT pushed),
       (SELECT count(*) FROM deliveries WHERE status IN ('queued', 'retrying')
          AND status = 'queued'),
       (SELECT count(*) FROM deliveries WHERE status IN ('queued', 'retrying')
          AND status = 'retrying'),
       (SELECT count(*) FROM deliveries WHERE status = 'running'),
       (SELECT extract(epoch FROM now() - min(run_at)) FROM jobs
          WHERE status IN ('queued', 'retrying') AND NOT pushed AND run_at <= now()),
       (SELECT extract(epoch FROM now() - min(run_at)) FROM deliveries
          WHERE status IN ('queued', 'retrying') AND run_at <= now()),
       (SELECT count(*) FROM jobs WHERE project_id = ANY(string_to_array($1, E'\n'))
          AND status = 'dead' AND pruned_at IS NULL),
       (SELECT greatest(0, extract(epoch FROM now() - least(
          (SELECT min(xact_start) FROM pg_stat_activity
            WHERE datname = current_database() AND backend_type = 'client backend'
              AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL)),
          (SELECT min(prepared) FROM pg_prepared_xacts)))))
)sql",
                                  joined_types(projects));
    for (std::size_t i = 0; i < 3; ++i) {
      out.pull[i] = r[static_cast<int>(i)].as<std::int64_t>();
      out.push[i] = r[static_cast<int>(i + 3)].as<std::int64_t>();
    }
    out.pull_oldest_due_seconds = r[6].is_null() ? 0 : r[6].as<double>();
    out.push_oldest_due_seconds = r[7].is_null() ? 0 : r[7].as<double>();
    out.dead = r[8].as<std::int64_t>();
    out.oldest_transaction_seconds = r[9].is_null() ? 0 : r[9].as<double>();
    // A partitioned table's figures are its partitions' together.
    for (const auto& row : tx.exec(R"sql(
SELECT coalesce(p.relname, s.relname) AS name, sum(s.n_dead_tup)::bigint
FROM pg_stat_user_tables s
LEFT JOIN pg_inherits i ON i.inhrelid = s.relid
LEFT JOIN pg_class p ON p.oid = i.inhparent
WHERE coalesce(p.relname, s.relname) IN ('jobs', 'deliveries', 'attempts')
  AND s.schemaname = current_schema()
GROUP BY 1 ORDER BY 1)sql")) {
      out.dead_tuples.emplace_back(row[0].as<std::string>(), row[1].as<std::int64_t>());
    }
    return out;
  });
}

}  // namespace flare::jobs
