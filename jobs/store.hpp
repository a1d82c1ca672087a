// The jobs table in PostgreSQL, through one connection of its own. Everything it throws is
// Unavailable (worth retrying later) or a refusal of the request it was given. The committer's
// pipelined enqueues are pipeline.hpp's; together the two are all that speaks to the database.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "jobs/job.hpp"
#include "jobs/traffic.hpp"

namespace flare::jobs {

// The database could not be reached or gave up on the work. When a connection was lost after the
// work was sent, it may have been done all the same: only a retry can tell.
class Unavailable : public std::runtime_error {
 public:
  // `answered`: the database was there and said so (a deadlock, a statement timeout, no
  // resources); false when it could not be reached, or is going away.
  explicit Unavailable(const std::string& what, bool answered = false)
      : std::runtime_error(what), answered_(answered) {}
  bool answered() const { return answered_; }

 private:
  bool answered_;
};

struct ListQuery {
  std::optional<Status> status;  // none: any
  std::string type;              // empty: any
  std::string source;            // empty: any
  // Unix microseconds: made at or after, and before, by the time its id begins with
  std::optional<std::int64_t> since;
  std::optional<std::int64_t> before;
  bool retryable = false;  // only jobs whose payload retention has not removed
  int limit = 50;
  std::optional<std::string> after;  // a job id: list the jobs older than it
};

struct Page {
  std::vector<Job> jobs;
  std::optional<std::string> next;  // the last job's id, when more jobs may follow
};

// Which jobs a claim may take; an empty field does not narrow.
struct ClaimScope {
  std::string project;
  std::vector<std::string> types;
  std::vector<std::string> sources;
};

// A source's route, as the push workers claim for it.
struct RouteId {
  std::string source;
  std::string route;
};

// A claimed delivery and the job it delivers, as the job was before the claim summed it up.
struct Push {
  Job job;
  Delivery delivery;
};

// What a claim for one route found.
struct Claim {
  std::vector<Push> pushes;  // oldest due first
  // The claim took fewer than it could and every delivery of the route that was due as of its
  // start: none was left over its bytes or locked by another transaction.
  bool emptied = false;
  // Set when the route's pace or breaker held a due delivery back: when to ask again.
  std::optional<std::chrono::milliseconds> retry_in;
};

// What became of one claimed delivery.
struct PushOutcome {
  Delivery delivery;  // as claimed
  // None: not attempted (its worker stopped, or the rest of its batch was given back), and so
  // released: due again, the attempt not counted.
  std::optional<AttemptRecord> attempt;
  Status next = Status::kSucceeded;    // after the attempt: succeeded, retrying or dead
  std::chrono::milliseconds delay{0};  // retrying: due again after this
};

// A route's state as every gateway process shares it (the `routes` table).
struct RouteState {
  std::string source;
  std::string route;
  std::string state;  // closed, open or paused
  std::optional<std::string> reason;
  int failures = 0;                         // failed attempts in a row
  std::optional<std::string> opened_until;  // open: when the probe may begin
  std::int64_t waiting = 0;                 // deliveries queued or retrying
  std::int64_t running = 0;                 // attempts in flight
};

// Which events of a source a replay sends again to one of its routes; an empty field does not
// narrow.
struct ReplayFilter {
  std::vector<std::string> types;      // event types and PREFIX.*, as a route's types
  std::optional<std::int64_t> since;   // Unix microseconds: received at or after
  std::optional<std::int64_t> before;  // Unix microseconds: received before
  // The status, succeeded, dead or cancelled, of the event's delivery to the route. Without it,
  // events the route has no delivery of (it did not take them when they came) are replayed
  // too. An event whose delivery to the route waits or runs is never replayed: it is on its way.
  std::vector<Status> statuses;
};

// A replay and its progress: its deliveries by status, those a later replay took over excluded.
struct Replay {
  std::string id;
  std::string source;
  std::string route;
  std::string status;  // running, done or cancelled
  std::int64_t total = 0;
  std::int64_t succeeded = 0;
  std::int64_t dead = 0;
  std::int64_t cancelled = 0;
  std::int64_t waiting = 0;
  std::int64_t running = 0;
  std::string created_at;
};

// The jobs of one project that one retention applies to: those of `sources`, or, with `others`,
// those of every other source and of none (the jobs API's).
struct PruneScope {
  std::string project;
  std::vector<std::string> sources;
  bool others = false;
  config::Retention retention;
};

// What a pass of retention removed, or would remove, in one scope.
struct Pruned {
  std::int64_t payloads = 0;       // of succeeded and cancelled jobs
  std::int64_t dead_payloads = 0;  // of dead jobs
  std::int64_t rows = 0;           // whole jobs, their keys with them
};

// What an operator watches the queue and its tables by (docs/operations.md). Each figure is read
// from a partial index or a statistics view, so reading them costs what the queue holds, never
// the history behind it.
struct QueueHealth {
  // Jobs of pull workers and deliveries of push workers: queued, retrying and running.
  std::array<std::int64_t, 3> pull{};
  std::array<std::int64_t, 3> push{};
  // How long the longest-due job (pull) and delivery (push) has been due; 0: none is.
  double pull_oldest_due_seconds = 0;
  double push_oldest_due_seconds = 0;
  std::int64_t dead = 0;  // dead jobs whose payload is kept, of the projects asked for
  // Dead tuples by table (jobs, deliveries, attempts), as autovacuum counts them.
  std::vector<std::pair<std::string, std::int64_t>> dead_tuples;
  // The age of the oldest open or prepared transaction that holds back vacuum's horizon.
  double oldest_transaction_seconds = 0;
};
// The queue as the console's overview shows it, of some projects and routes: counts that stop
// at a cap, so that reading them costs at most that much however long the queue is.
struct QueueSummary {
  std::int64_t pull_waiting = 0;  // queued or retrying
  std::int64_t pull_running = 0;
  std::int64_t push_waiting = 0;
  std::int64_t push_running = 0;
  std::int64_t dead = 0;  // dead jobs whose payload is kept
  double pull_oldest_due_seconds = 0;
  double push_oldest_due_seconds = 0;
};

// The statuses of QueueHealth::pull and push, in order.
inline constexpr std::array<Status, 3> kQueueStatuses = {Status::kQueued, Status::kRetrying,
                                                         Status::kRunning};

// What recording a batch of outcomes did.
struct Recorded {
  // By outcome: the delivery's lease still held, so its outcome counts.
  std::vector<bool> held;
  // A change of the route's state that the attempts made: before, after, and why it is open or
  // paused after.
  struct Turn {
    std::string before;
    std::string after;
    std::optional<std::string> reason;
  };
  std::vector<Turn> turns;
};

// A console session, as its cookie finds it (docs/console.md).
struct ConsoleSession {
  std::string operator_name;
  std::string token_sha256;  // hex: the operator's token when the session began
  std::string csrf;
};

enum class Change { kDone, kNotFound, kWrongStatus, kLeaseLost, kPruned };

struct Changed {
  Change change;
  std::optional<Job> job;  // after the change; as it stands for kWrongStatus and kLeaseLost
};

// How long a job that has just failed waits before its next attempt.
using Backoff = std::function<std::chrono::milliseconds(const Job& failed)>;

class Database;

class Store {
 public:
  // Connects on first use, and again after a failure. Not thread-safe: one owner thread.
  explicit Store(const std::string& url);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // One statement inserts the whole batch, finds the jobs that already held its keys, and
  // commits. Returns one result per job, in order: the new job, or the job that already holds
  // the key (two jobs in the batch with one key: the first is created, the second is told it
  // exists). Each new job takes the id ids[i] (new ones unless given): sent again with the same
  // ids after a lost connection, each job is still stored once and reported as created; and
  // handed over when an earlier try stored its deliveries running under `lease_token` (see
  // Handing), which this call never does itself.
  std::vector<Enqueued> enqueue(const std::vector<NewJob>& jobs);
  std::vector<Enqueued> enqueue(const std::vector<NewJob>& jobs,
                                const std::vector<std::string>& ids,
                                const std::string& lease_token = {});

  // Every call below takes the project: a job of another project does not exist.
  std::optional<Job> get(const std::string& project, const std::string& id);
  Page list(const std::string& project, const ListQuery& query);
  // How many jobs the query's filters match (its cursor and limit aside), counting up to `max`.
  std::int64_t count_jobs(const std::string& project, const ListQuery& query, std::int64_t max);
  Changed retry(const std::string& project, const std::string& id);   // dead, cancelled
  Changed cancel(const std::string& project, const std::string& id);  // queued, retrying
  bool remove(const std::string& project, const std::string& id);

  // Due jobs become running under a new lease token; so do jobs whose lease ran out, which a
  // Store looks for once a second (kLeaseLook), so one that ran out is taken within a second.
  std::vector<Job> claim(const ClaimScope& scope, int max, int lease_seconds);
  // Only the job's current lease token is accepted; any other is kLeaseLost.
  Changed heartbeat(const std::string& project, const std::string& id, const std::string& token,
                    int lease_seconds);
  Changed complete(const std::string& project, const std::string& id, const std::string& token);
  // complete() for many jobs at once, each by its id and lease token (UUIDs, no id twice), in
  // one statement: by job, kDone, kLeaseLost or kNotFound.
  std::vector<Change> complete(const std::string& project,
                               const std::vector<std::pair<std::string, std::string>>& leases);
  Changed fail(const std::string& project, const std::string& id, const std::string& token,
               const std::string& error, bool retry, const Backoff& backoff);
  // Gives back a lease whose attempt was abandoned (a stopping worker): the job is due again
  // and the attempt is not counted.
  Changed release(const std::string& project, const std::string& id, const std::string& token);

  // The payload bytes one claim of deliveries holds at most, unless its first alone is more.
  static constexpr std::int64_t kClaimBytes = 8 << 20;
  // Up to `max` due deliveries of the route (or ones whose lease ran out) become running under
  // new lease tokens, oldest first, as many as the route's state and pace allow to begin and
  // kClaimBytes holds: a paused route gives none, an open one one probe after its cooldown, a
  // route with max_per_second one at a time, and max_in_flight holds over every process; and
  // whether it emptied the route's queue (Claim::emptied).
  Claim claim_deliveries(const std::string& source, const config::Route& route, int lease_seconds,
                         int max);
  // Records the outcomes of deliveries claimed together, in one transaction: each attempt, made
  // whether or not its lease still holds, is recorded and counts for the route's breaker, in
  // order (a success closes it, a 410 pauses the route, `breaker.failures` failures in a row or
  // a failed probe open it); each delivery whose lease holds moves to its outcome's `next`
  // status, or is released.
  Recorded record_outcomes(const std::vector<PushOutcome>& outcomes,
                           const config::Breaker& breaker);
  // A job with its deliveries by route and its latest `attempt_limit` attempts, newest first,
  // read as of one moment.
  std::optional<JobView> view(const std::string& project, const std::string& id, int attempt_limit);
  // The routes' shared states (a route never claimed for is closed); their counts stop at `cap`
  // when one is given.
  std::vector<RouteState> route_states(const std::vector<RouteId>& routes,
                                       std::optional<std::int64_t> cap = std::nullopt);
  // An operator's pause, until resume_route: no attempt begins, deliveries wait. Resuming
  // closes the route's breaker.
  RouteState pause_route(const RouteId& route);
  RouteState resume_route(const RouteId& route);

  // How many of `source`'s events in `project` a replay to `route` would send again.
  std::int64_t count_replay(const std::string& project, const config::Source& source,
                            const config::Route& route, const ReplayFilter& filter);
  // Sends them again as replay `id` (a new job id: time-ordered): each gets a delivery to the
  // route (a new one, or its ended one back to queued with its allowance of attempts again),
  // paced by the route; a thousand events a transaction, the replay's row first. False when
  // more than `max_events` match. Throws as the store does; the replay then holds what was
  // taken before.
  bool start_replay(const std::string& id, const std::string& project, const config::Source& source,
                    const config::Route& route, const ReplayFilter& filter,
                    std::int64_t max_events);
  std::optional<Replay> replay(const std::string& project, const std::string& id);
  // Its deliveries still waiting are cancelled; those under way finish.
  std::optional<Replay> cancel_replay(const std::string& project, const std::string& id);

  // The console (jobs/console.cpp). A session, known by the SHA-256 (hex) of its cookie's value:
  // added (the oldest of the operator's beyond 100 and every expired one removed), found while
  // it has not expired, and ended.
  void add_session(const std::string& id_sha256, const ConsoleSession& session,
                   std::chrono::seconds lifetime);
  std::optional<ConsoleSession> session(const std::string& id_sha256);
  void end_session(const std::string& id_sha256);
  QueueSummary queue_summary(const std::vector<std::string>& projects,
                             const std::vector<RouteId>& routes, std::int64_t cap);
  // Adds rows of counts to the traffic table's (jobs/traffic.hpp), and removes the minutes it no
  // longer keeps.
  void add_traffic(const std::vector<TrafficRow>& rows);
  // The traffic of `sources` (their routes' too) over the last `span`, summed by `bucket`; a
  // row's minute is its bucket's start.
  std::vector<TrafficRow> traffic(const std::vector<std::string>& sources,
                                  std::chrono::seconds span, std::chrono::seconds bucket);

  // Gives `source`'s routes the jobs of it that wait for no route yet: stored before it had
  // routes (as pulled jobs, or by a version without routes). Returns how many it took.
  int adopt(const config::Source& source);

  // One pass of retention over `scopes` (whole rows first, then payloads), `batch_size` jobs a
  // transaction, under the pruning lock that one gateway process at a time holds: nullopt when
  // another process held it. `between` is called after each transaction with how long it took
  // (the caller may rest there); when it returns false the pass ends with what it did.
  // `dry_run`: counts what the pass would remove, and removes nothing.
  using Between = std::function<bool(std::chrono::steady_clock::duration took)>;
  std::optional<std::vector<Pruned>> prune(const std::vector<PruneScope>& scopes, int batch_size,
                                           bool dry_run, const Between& between);

  // Waits until an enqueue commits anywhere (LISTEN/NOTIFY) or `timeout` passes; true when
  // woken. Use a Store of its own: the connection stays in LISTEN until stop_waiting_for_jobs().
  bool wait_for_jobs(std::chrono::milliseconds timeout);
  // Stops listening: commits no longer wake this connection.
  void stop_waiting_for_jobs();

  // `projects`: those whose dead jobs are counted.
  QueueHealth queue_health(const std::vector<std::string>& projects);

  // Applies every pending migration under an advisory lock; returns how many it applied. When
  // they create the schema and `partitions` is more than 0, the jobs table is then made
  // hash-partitioned by project into that many partitions (docs/scaling.md).
  int migrate(int partitions = 0);
  // The schema version in the database (0 before the first migration) and the binary's own.
  int schema_version();
  static int latest_version();

 private:
  RouteState operate_route(const RouteId& route, bool pause);

  // How often a claim also looks for leases that ran out.
  static constexpr std::chrono::seconds kLeaseLook{1};

  std::unique_ptr<Database> db_;
  std::chrono::steady_clock::time_point leases_looked_at_{};
};

}  // namespace flare::jobs
