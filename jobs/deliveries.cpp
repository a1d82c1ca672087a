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
constexpr pqxx::row::size_type kDeliveryColumnCount = 13;

// The delivery whose columns begin at `first`.
Delivery read_delivery(const pqxx::row& r, pqxx::row::size_type first = 0) {
  Delivery d;
  d.project_id = r[first].as<std::string>();
  d.job_id = r[first + 1].as<std::string>();
  d.route = r[first + 2].as<std::string>();
  d.source = r[first + 3].as<std::string>();
  d.status = status_of(r[first + 4].c_str());
  d.attempts = r[first + 5].as<int>();
  d.max_attempts = r[first + 6].as<int>();
  d.last_error = nullable(r[first + 7]);
  d.lease_token = nullable(r[first + 8]);
  d.created_at = r[first + 9].as<std::string>();
  d.updated_at = r[first + 10].as<std::string>();
  d.run_at = r[first + 11].as<std::string>();
  d.completed_at = nullable(r[first + 12]);
  return d;
}

// Attempts of route $1/$2 whose lease ran out (their worker died, or lost the database) end
// without an outcome: the delivery waits again, or is dead when that was its last allowed
// attempt. Whatever the route's state: a paused route's deliveries do not stay running. The
// lease token stays: a worker that was only slow still records its outcome, unless a new claim
// has taken the delivery since. The clock is read in a subquery, once for each comparison: a
// value the index can seek to, where clock_timestamp() itself, volatile, would be compared on
// every running delivery's row (note 54). The count of attempts in flight below and the claim
// read it so too.
constexpr const char* kExpire = R"sql(
WITH x AS (
  SELECT d.project_id, d.job_id, d.route FROM deliveries d
  JOIN jobs j ON j.project_id = d.project_id AND j.id = d.job_id
  WHERE d.source = $1 AND d.route = $2 AND d.status = 'running'
    AND d.locked_until < (SELECT clock_timestamp())
  FOR UPDATE OF d, j SKIP LOCKED)
UPDATE deliveries d SET
  status = CASE WHEN d.attempts >= d.max_attempts THEN 'dead' ELSE 'retrying' END,
  last_error = 'the lease of attempt ' || d.attempts || ' ran out before its outcome was recorded',
  locked_until = NULL, run_at = now(), updated_at = now()
FROM x WHERE d.project_id = x.project_id AND d.job_id = x.job_id AND d.route = x.route
RETURNING d.project_id, d.job_id::text)sql";

// Ends route $1/$2's attempts whose lease ran out (kExpire), then gives the route's state (NULL
// when it has no row yet); the waits until its probe and its next attempt may begin, in ms (0:
// now); its attempts in flight, counted only when they limit the claim ($3, the route has a
// max_in_flight, or it is open and a probe waits for none to run; else 0); and the jobs whose
// attempt ended, as arrays of projects and ids. Times are the clock's, not the transaction's
// start: a claim may have waited for the route's lock since.
std::string route_row() {
  return std::string("WITH expired AS (") + kExpire +
         ") SELECT r.state, ceil(greatest(0, extract(epoch FROM r.opened_until) - extract(epoch "
         "FROM clock_timestamp())) * 1000)::bigint, ceil(greatest(0, extract(epoch FROM "
         "r.next_at) - extract(epoch FROM clock_timestamp())) * 1000)::bigint, CASE WHEN $3 OR "
         "r.state = 'open' THEN (SELECT count(*) FROM deliveries WHERE source = $1 AND route = $2 "
         "AND status = 'running' AND locked_until > (SELECT clock_timestamp())) ELSE 0 END, "
         "(SELECT array_agg(project_id)::text FROM expired), (SELECT array_agg(job_id)::text "
         "FROM expired) FROM (SELECT) one LEFT JOIN routes r ON r.source = $1 AND r.route = $2";
}

// Jobs $1 (projects) and $2 (ids), arrays as text, summed up.
const std::string kSummariseSet = summarise("SELECT * FROM unnest($1::text[], $2::uuid[])");

// Locks route $1/$2's row. It is read by a statement after this one, whose snapshot then sees
// what the claim that held the lock before committed.
constexpr const char* kLockRoute = "SELECT FROM routes WHERE source = $1 AND route = $2 FOR UPDATE";

// Claims the oldest due deliveries of route $1/$2, at most $4 and no more than $6 bytes of
// payloads together (the first whatever its size), $3 the lease in seconds, if the route's state is
// still $5, the one the claim was decided on (an unlocked route's breaker may have paused or
// opened it since, in a transaction that committed between the two statements), and sums their
// jobs up: running, one attempt more (kSummarise's rule, known without reading the deliveries
// again; a job has one delivery per route). Rows locked by another transaction are skipped, jobs
// as well as deliveries: a claim never waits on them, and so never in the opposite order of a
// change that locked the job first. Those locked but over the bytes are let go at the commit,
// unchanged. A payload's length is read from its header, not decompressed. The index is read from
// the oldest due delivery up to the clock and no further: a claim that comes up short does not
// step over every retry that is not due yet. Each row also tells whether the claim emptied the
// route's queue (Claim::emptied): it took fewer than $4, none was over the bytes, and as many were
// due in its snapshot, locked or not, as it took; counted only when it took fewer than $4, and
// no further than one more than it took.
constexpr const char* kClaim = R"sql(
WITH x AS (
  SELECT d.project_id, d.job_id, d.route, d.run_at, octet_length(j.payload) AS bytes
  FROM deliveries d JOIN jobs j ON j.project_id = d.project_id AND j.id = d.job_id
  WHERE d.source = $1 AND d.route = $2 AND d.status IN ('queued', 'retrying')
    AND d.run_at <= (SELECT clock_timestamp())
    AND coalesce((SELECT r.state FROM routes r WHERE r.source = $1 AND r.route = $2), 'closed') = $5
  ORDER BY d.run_at LIMIT $4
  FOR UPDATE OF d, j SKIP LOCKED),
fit AS (
  SELECT project_id, job_id, route FROM (
    SELECT project_id, job_id, route, sum(bytes) OVER w AS total, row_number() OVER w AS n
    FROM x WINDOW w AS (ORDER BY run_at, project_id, job_id)) r
  WHERE total <= $6 OR n = 1),
claimed AS (
  UPDATE deliveries d SET status = 'running', attempts = d.attempts + 1,
    lease_token = gen_random_uuid(), updated_at = now(),
    locked_until = clock_timestamp() + make_interval(secs => $3::double precision)
  FROM fit f WHERE d.project_id = f.project_id AND d.job_id = f.job_id AND d.route = f.route
  RETURNING d.*),
summed AS (
  UPDATE jobs j SET status = 'running', attempts = j.attempts + 1, completed_at = NULL,
    updated_at = now()
  FROM fit f WHERE j.project_id = f.project_id AND j.id = f.job_id),
emptied AS (
  SELECT (SELECT count(*) FROM x) < $4 AND (SELECT count(*) FROM fit) = (SELECT count(*) FROM x)
    AND (SELECT count(*) FROM (
           SELECT FROM deliveries d WHERE d.source = $1 AND d.route = $2
             AND d.status IN ('queued', 'retrying') AND d.run_at <= (SELECT clock_timestamp())
           LIMIT (SELECT count(*) FROM x) + 1) due) = (SELECT count(*) FROM x) AS emptied)
SELECT (SELECT emptied FROM emptied), )sql";

// Route $1/$2's breaker after an attempt: $3 it succeeded, $4 it was answered 410 Gone, $5 the
// failures in a row that open it, $6 its cooldown in ms. An operator's pause stays; a success
// closes it; a 410 pauses it; a failure counts, and opens it at the threshold, or again when it
// was the probe (the cooldown had passed: an attempt begun before the route opened, ending in
// its cooldown, only counts). Returns the state before and after, and the reason. A success on a
// healthy route changes nothing, and so neither writes nor locks its row.
constexpr const char* kBreaker = R"sql(
WITH old AS (SELECT state FROM routes WHERE source = $1 AND route = $2
             AND (NOT $3 OR failures <> 0 OR state = 'open') FOR UPDATE)
UPDATE routes r SET
  failures = CASE WHEN $3 THEN 0 ELSE r.failures + 1 END,
  state = CASE WHEN r.state = 'paused' THEN 'paused'
               WHEN $4 THEN 'paused'
               WHEN $3 THEN 'closed'
               WHEN r.state = 'open' OR r.failures + 1 >= $5 THEN 'open'
               ELSE r.state END,
  reason = CASE WHEN r.state = 'paused' THEN r.reason
                WHEN $4 THEN 'the destination answered 410 Gone'
                WHEN $3 THEN NULL
                WHEN r.state = 'open' AND r.opened_until <= clock_timestamp()
                  THEN 'the probe failed'
                WHEN r.state = 'closed' AND r.failures + 1 >= $5
                  THEN (r.failures + 1) || ' failed attempts in a row'
                ELSE r.reason END,
  opened_until = CASE WHEN $3 THEN NULL
                      WHEN r.state = 'paused' OR $4 THEN r.opened_until
                      WHEN (r.state = 'open' AND r.opened_until <= clock_timestamp())
                           OR (r.state = 'closed' AND r.failures + 1 >= $5)
                        THEN clock_timestamp() + $6::bigint * interval '1 millisecond'
                      ELSE r.opened_until END,
  updated_at = now()
FROM old WHERE r.source = $1 AND r.route = $2
RETURNING old.state, r.state, r.reason)sql";

}  // namespace

Claim Store::claim_deliveries(const std::string& source, const config::Route& route,
                              int lease_seconds, int max) {
  return db_->run("claim", [&](pqxx::work& tx) {
    // A claim lost in a crash loses nothing: its deliveries are due again and attempted again,
    // at least once as ever. Its commit does not wait for the disk, so that the next claim, which
    // waits for this one in this process, does not either (note 47).
    tx.exec("SET LOCAL synchronous_commit = off");
    Claim out;
    // Only a route whose attempts are counted, or that is not closed, is locked: the claims of
    // an unpaced, healthy route do not wait on each other.
    bool paced = route.max_in_flight > 0 || route.max_per_second > 0;
    static const std::string kRouteRow = route_row();
    pqxx::result row;
    // The attempts whose lease ran out that this transaction ended.
    std::vector<std::pair<std::string, std::string>> expired;
    auto read_row = [&] {
      row = exec_parsed(tx, kRouteRow, source, route.name, route.max_in_flight > 0);
      if (!row[0][4].is_null()) expired.emplace_back(row[0][4].c_str(), row[0][5].c_str());
    };
    if (!paced) read_row();
    if (paced || row[0][0].is_null() || row[0][0].as<std::string>() != "closed") {
      if (exec_parsed(tx, kLockRoute, source, route.name).empty()) {
        tx.exec_params("INSERT INTO routes (source, route) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                       source, route.name);
        exec_parsed(tx, kLockRoute, source, route.name);
      }
      read_row();
    }
    for (const auto& [projects, ids] : expired) {
      exec_parsed(tx, kSummariseSet, projects, ids);
    }
    std::string state = row[0][0].as<std::string>();
    auto probe_in = std::chrono::milliseconds(row[0][1].as<std::int64_t>());
    auto pace_in = std::chrono::milliseconds(row[0][2].as<std::int64_t>());
    auto running = row[0][3].as<std::int64_t>();
    std::int64_t may = state == "paused" ? 0 : max;
    if (state == "open") {
      // One probe at a time, after the cooldown.
      if (probe_in.count() > 0) out.retry_in = probe_in;
      may = probe_in.count() == 0 && running == 0 ? 1 : 0;
    }
    if (route.max_in_flight > 0) may = std::min(may, route.max_in_flight - running);
    if (route.max_per_second > 0) {
      // Attempts begin evenly spaced: one at a time, the next no sooner than 1/max_per_second
      // after.
      may = std::min<std::int64_t>(may, 1);
      if (may > 0 && pace_in.count() > 0) {
        out.retry_in = pace_in;
        may = 0;
      }
    }
    if (may <= 0) {
      tx.commit();
      return out;
    }
    // Each delivery with its job, as it was before the claim: its payload and names are what
    // an attempt sends. Oldest first, the order the worker attempts them in.
    static const std::string kClaimed =
        std::string(kClaim) + kDeliveryColumns + ", " + FLARE_JOB_COLUMNS("j.") +
        " FROM claimed d JOIN jobs j ON j.project_id = d.project_id AND j.id = d.job_id "
        "ORDER BY d.run_at, d.project_id, d.job_id";
    pqxx::result claimed =
        exec_parsed(tx, kClaimed, source, route.name, lease_seconds, may, state, kClaimBytes);
    if (claimed.empty()) {
      tx.commit();
      return out;
    }
    if (route.max_per_second > 0) {
      exec_parsed(tx,
                  "UPDATE routes SET next_at = greatest(next_at, clock_timestamp()) + $3::bigint * "
                  "interval '1 microsecond' WHERE source = $1 AND route = $2",
                  source, route.name, static_cast<std::int64_t>(1'000'000 / route.max_per_second));
    }
    out.emptied = claimed[0][0].as<bool>();
    for (const auto& r : claimed) {
      out.pushes.push_back({read_job(r, kDeliveryColumnCount + 1), read_delivery(r, 1)});
    }
    tx.commit();
    return out;
  });
}

namespace {

// Locks jobs $1 (projects) and $2 (ids) in one order, the same for every batch: two batches that
// share jobs never wait on each other in opposite orders.
constexpr const char* kLockJobs =
    "SELECT FROM jobs WHERE (project_id, id) IN (SELECT * FROM unnest($1::text[], $2::uuid[])) "
    "ORDER BY project_id, id FOR UPDATE";

// Attempts at route $3's deliveries of jobs $1/$2: numbers $4, starts $5, durations $6, answers'
// statuses $7, errors $8 and answers $9. Those of a job deleted since its claim (its deliveries
// went with it) have nothing left to belong to. Each delivery is found by its key, under a LIMIT
// that keeps the planner from turning the search around (see kOutcomes).
constexpr const char* kInsertAttempts = R"sql(
INSERT INTO attempts (project_id, job_id, route, number, started_at, duration_ms, status_code,
                      error, response)
SELECT a.project_id, a.job_id, $3, a.number, a.started_at::timestamptz, a.duration_ms,
       a.status_code, a.error, a.response
FROM unnest($1::text[], $2::uuid[], $4::int[], $5::text[], $6::bigint[], $7::bigint[], $8::text[],
            $9::text[])
  AS a(project_id, job_id, number, started_at, duration_ms, status_code, error, response)
CROSS JOIN LATERAL (SELECT FROM deliveries d
                    WHERE d.project_id = a.project_id AND d.job_id = a.job_id AND d.route = $3
                    LIMIT 1) delivery
ON CONFLICT DO NOTHING)sql";

// Route $3's deliveries of jobs $1/$2 as claimed by tokens $4 move to statuses $5, with errors $6
// and, retrying, due after $7 ms; status 'released' gives one back unattempted: due again where it
// was in the queue, the attempt not counted. Returns those whose lease held: still running, or
// already ended by the lease running out (kExpire keeps the token), so that no later claim took it
// and the attempt's outcome is still the latest word on it.
//
// Each outcome's delivery is looked up by its key and the conditions under a LIMIT, and the row
// to change is joined on what the lookup found, with no condition of its own: the planner has
// nothing on deliveries to misjudge, and reads each row to change by its key or, on a small
// table, reads the table once for the whole batch. Joined on the conditions themselves, a new
// table not yet analysed gave "this route's running deliveries" an estimate of one row, and the
// planner read every outcome again for each of them: 79-99 µs an outcome against 28
// (bench/README.md, note 64). A row another transaction changed meanwhile is changed only if its
// new version still has the token and the status the lookup found (the join took any of the
// three); none is, since every change to a delivery holds its job's lock, as the record does.
constexpr const char* kOutcomes = R"sql(
UPDATE deliveries d SET
  status = CASE WHEN o.status <> 'released' THEN o.status
                WHEN d.attempts > 1 THEN 'retrying' ELSE 'queued' END,
  attempts = CASE WHEN o.status = 'released' THEN d.attempts - 1 ELSE d.attempts END,
  last_error = coalesce(o.error, d.last_error),
  run_at = CASE WHEN o.status = 'retrying' THEN now() + o.delay_ms * interval '1 millisecond'
                ELSE d.run_at END,
  completed_at = CASE WHEN o.status = 'succeeded' THEN now() END,
  lease_token = NULL, locked_until = NULL, updated_at = now()
FROM unnest($1::text[], $2::uuid[], $4::uuid[], $5::text[], $6::text[], $7::bigint[])
  AS o(project_id, job_id, token, status, error, delay_ms)
CROSS JOIN LATERAL (SELECT h.route, h.status FROM deliveries h
                    WHERE h.project_id = o.project_id AND h.job_id = o.job_id AND h.route = $3
                      AND h.lease_token = o.token AND h.status IN ('running', 'retrying', 'dead')
                    LIMIT 1) held
WHERE d.project_id = o.project_id AND d.job_id = o.job_id AND d.route = held.route
  AND d.lease_token = o.token AND d.status = held.status
RETURNING d.project_id, d.job_id::text)sql";

}  // namespace

Recorded Store::record_outcomes(const std::vector<PushOutcome>& outcomes,
                                const config::Breaker& breaker) {
  Recorded out;
  out.held.assign(outcomes.size(), false);
  if (outcomes.empty()) return out;
  const std::string& source = outcomes[0].delivery.source;
  const std::string& route = outcomes[0].delivery.route;
  BinaryArray projects(BinaryArray::kText), ids(BinaryArray::kUuid), tokens(BinaryArray::kUuid),
      statuses(BinaryArray::kText), errors(BinaryArray::kText), delays(BinaryArray::kInt8);
  BinaryArray a_projects(BinaryArray::kText), a_ids(BinaryArray::kUuid),
      a_numbers(BinaryArray::kInt4), a_starts(BinaryArray::kText), a_durations(BinaryArray::kInt8),
      a_codes(BinaryArray::kInt8), a_errors(BinaryArray::kText), a_responses(BinaryArray::kText);
  bool released = false;
  for (const PushOutcome& o : outcomes) {
    const Delivery& d = o.delivery;
    projects.text(d.project_id);
    ids.uuid(d.job_id);
    tokens.uuid(d.lease_token.value_or(""));
    released = released || !o.attempt;
    statuses.text(o.attempt ? to_string(o.next) : "released");
    errors.text_or_null(o.attempt ? o.attempt->error : std::nullopt);
    delays.int8(o.delay.count());
    if (!o.attempt) continue;
    const AttemptRecord& a = *o.attempt;
    a_projects.text(d.project_id);
    a_ids.uuid(d.job_id);
    a_numbers.int4(a.number);
    a_starts.text(a.started_at);
    a_durations.int8(a.duration_ms);
    a_codes.int8(a.status_code);
    a_errors.text_or_null(a.error);
    a_responses.text_or_null(a.response.empty() ? std::nullopt
                                                : std::optional<std::string>(a.response));
  }
  const pqxx::binarystring project_param(projects.str()), id_param(ids.str());
  return db_->run("record outcomes", [&](pqxx::work& tx) {
    out.held.assign(outcomes.size(), false);
    out.turns.clear();
    exec_parsed(tx, kLockJobs, project_param, id_param);
    exec_parsed(tx, kInsertAttempts, pqxx::binarystring(a_projects.str()),
                pqxx::binarystring(a_ids.str()), route, pqxx::binarystring(a_numbers.str()),
                pqxx::binarystring(a_starts.str()), pqxx::binarystring(a_durations.str()),
                pqxx::binarystring(a_codes.str()), pqxx::binarystring(a_errors.str()),
                pqxx::binarystring(a_responses.str()));
    std::set<std::pair<std::string, std::string>> held;
    for (const auto& r :
         exec_parsed(tx, kOutcomes, project_param, id_param, route,
                     pqxx::binarystring(tokens.str()), pqxx::binarystring(statuses.str()),
                     pqxx::binarystring(errors.str()), pqxx::binarystring(delays.str()))) {
      held.emplace(r[0].as<std::string>(), r[1].as<std::string>());
    }
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
      out.held[i] = held.count({outcomes[i].delivery.project_id, outcomes[i].delivery.job_id}) > 0;
    }
    if (!held.empty()) exec_parsed(tx, kSummariseSet, project_param, id_param);
    // The breaker counts the attempts in order; a success after a success changes nothing.
    bool last_succeeded = false;
    for (const PushOutcome& o : outcomes) {
      if (!o.attempt) continue;
      bool succeeded = !o.attempt->error.has_value();
      if (succeeded && last_succeeded) continue;
      last_succeeded = succeeded;
      pqxx::result b =
          exec_parsed(tx, kBreaker, source, route, succeeded, o.attempt->status_code == 410,
                      breaker.failures, static_cast<std::int64_t>(breaker.cooldown.count()));
      if (!b.empty() && b[0][0].as<std::string>() != b[0][1].as<std::string>()) {
        out.turns.push_back(
            {b[0][0].as<std::string>(), b[0][1].as<std::string>(), nullable(b[0][2])});
      }
    }
    if (released) tx.exec("NOTIFY " + std::string(kWakeChannel));
    tx.commit();
    return out;
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

namespace {

constexpr const char* kRouteStates = R"sql(
SELECT n.source, n.route, coalesce(r.state, 'closed'), r.reason, coalesce(r.failures, 0),
       )sql" FLARE_TS("r.opened_until") R"sql(,
       (SELECT count(*) FROM (SELECT FROM deliveries d WHERE d.source = n.source
          AND d.route = n.route AND d.status IN ('queued', 'retrying') LIMIT $3) w),
       (SELECT count(*) FROM (SELECT FROM deliveries d WHERE d.source = n.source
          AND d.route = n.route AND d.status = 'running' AND d.locked_until > now() LIMIT $3) r)
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS n(source, route, k)
LEFT JOIN routes r ON r.source = n.source AND r.route = n.route
ORDER BY n.k)sql";

RouteState read_route_state(const pqxx::row& row) {
  RouteState s;
  s.source = row[0].as<std::string>();
  s.route = row[1].as<std::string>();
  s.state = row[2].as<std::string>();
  s.reason = nullable(row[3]);
  s.failures = row[4].as<int>();
  s.opened_until = nullable(row[5]);
  s.waiting = row[6].as<std::int64_t>();
  s.running = row[7].as<std::int64_t>();
  return s;
}

// `cap`: the counts stop there (none: they count everything).
std::vector<RouteState> route_states(pqxx::work& tx, const std::vector<RouteId>& routes,
                                     std::optional<std::int64_t> cap = std::nullopt) {
  BinaryArray sources(BinaryArray::kText), names(BinaryArray::kText);
  for (const RouteId& r : routes) {
    sources.text(r.source);
    names.text(r.route);
  }
  std::vector<RouteState> out;
  for (const auto& row : tx.exec_params(kRouteStates, pqxx::binarystring(sources.str()),
                                        pqxx::binarystring(names.str()), cap)) {
    out.push_back(read_route_state(row));
  }
  return out;
}

}  // namespace

std::vector<RouteState> Store::route_states(const std::vector<RouteId>& routes,
                                            std::optional<std::int64_t> cap) {
  return db_->run("route states",
                  [&](pqxx::work& tx) { return jobs::route_states(tx, routes, cap); });
}

RouteState Store::pause_route(const RouteId& route) { return operate_route(route, true); }

RouteState Store::resume_route(const RouteId& route) { return operate_route(route, false); }

RouteState Store::operate_route(const RouteId& route, bool pause) {
  return db_->run(pause ? "pause route" : "resume route", [&](pqxx::work& tx) {
    // A resumed route's breaker is closed too, and its waiting deliveries due at once.
    tx.exec_params(
        "INSERT INTO routes (source, route, state, reason) VALUES ($1, $2, $3, $4) ON CONFLICT "
        "(source, route) DO UPDATE SET state = $3, reason = $4, updated_at = now(), failures = "
        "CASE WHEN $3 = 'closed' THEN 0 ELSE routes.failures END, opened_until = CASE WHEN $3 = "
        "'closed' THEN NULL ELSE routes.opened_until END",
        route.source, route.route, pause ? "paused" : "closed",
        pause ? std::optional<std::string>("paused by an operator") : std::nullopt);
    if (!pause) tx.exec("NOTIFY " + std::string(kWakeChannel));
    RouteState out = jobs::route_states(tx, {route}).at(0);
    tx.commit();
    return out;
  });
}

int Store::adopt(const config::Source& source) {
  // Each route's types as one text: a type holds no newline.
  BinaryArray names(BinaryArray::kText), types(BinaryArray::kText), attempts(BinaryArray::kInt4);
  for (const config::Route& route : source.routes) {
    names.text(route.name);
    types.text(joined_types(route.types));
    attempts.int4(route.retry.max_attempts);
  }
  const pqxx::binarystring name_param(names.str()), type_param(types.str()),
      attempt_param(attempts.str());
  // At most 1,000 jobs per transaction.
  const std::string adopt = R"sql(
WITH waiting AS (
  SELECT project_id, id, type, run_at FROM jobs
  WHERE source = $1 AND NOT pushed
    AND (status IN ('queued', 'retrying') OR (status = 'running' AND locked_until < now()))
  LIMIT 1000 FOR UPDATE SKIP LOCKED),
routes AS (SELECT * FROM unnest($3::text[], $4::text[], $5::int[]) AS r(route, types, max_attempts)),
taken AS (
  SELECT w.project_id, w.id, r.route, r.max_attempts, w.run_at FROM waiting w CROSS JOIN routes r
  WHERE )sql" + takes("w.type", "$2", "r.types") +
                            R"sql(),
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
      pqxx::result r = tx.exec_params(adopt, source.name, source.provider, name_param, type_param,
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
