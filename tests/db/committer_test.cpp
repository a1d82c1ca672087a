#include "jobs/committer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <pqxx/pqxx>

#include "jobs/store.hpp"
#include "jobs/worker.hpp"
#include "support/database.hpp"
#include "support/env.hpp"
#include "support/wait.hpp"

namespace flare::jobs {
namespace {

// Migrating to the layout the test command asks for.
CommitterOptions test_options() {
  CommitterOptions options;
  options.partitions = test::partitions();
  return options;
}

NewJob job(const std::string& key, int max_attempts = 5) {
  NewJob j;
  j.project_id = "shop";
  j.idempotency_key = key;
  j.type = "github.push";
  j.payload = "{}";
  j.content_type = "application/json";
  j.source = "github";
  j.event_id = key;
  j.max_attempts = max_attempts;
  return j;
}

// Collects results from the committer's thread and lets the test wait for them.
class Results {
 public:
  Committer::Done slot(std::size_t i) {
    return [this, i](Result r) {
      std::lock_guard lock(mutex_);
      results_[i] = std::move(r);
      ++done_;
      changed_.notify_all();
    };
  }
  explicit Results(std::size_t n) : results_(n, Result{Outcome::kFailed, {}, {}}) {}
  std::vector<Result> wait() {
    std::unique_lock lock(mutex_);
    bool all = changed_.wait_for(lock, std::chrono::seconds(30),
                                 [this] { return done_ == results_.size(); });
    EXPECT_TRUE(all) << done_ << " of " << results_.size() << " completed";
    return results_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Result> results_;
  std::size_t done_ = 0;
};

// The committer's batch is stuck behind the test's lock.
void wait_until_blocked(test::TestDatabase& db) {
  ASSERT_NE(db.wait_until_blocked(), 0) << "the committer never waited on the lock";
}

Result submit_one(Committer& c, NewJob j) {
  Results r(1);
  c.submit(std::move(j), r.slot(0));
  return r.wait()[0];
}

TEST(Committer, MigratesAndCommitsOne) {
  test::TestDatabase db;
  Committer c(db.url(), test_options());
  Result r = submit_one(c, job("k1"));
  EXPECT_EQ(r.outcome, Outcome::kCreated);
  EXPECT_TRUE(c.ready());
  EXPECT_EQ(submit_one(c, job("k1")).stored.job_id, r.stored.job_id);
  EXPECT_EQ(submit_one(c, job("k1")).outcome, Outcome::kDuplicate);
}

// The backends whose last statement prepared or ran the enqueue: a lane's pipeline.
const std::string kEnqueueBackends =
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND "
    "pid <> pg_backend_pid() AND query LIKE '%INSERT INTO jobs%'";

// The enqueue statement is prepared on its own connection once the database is ready, before any
// job: the first webhook after a start does not wait for a new backend.
TEST(Committer, PreparesItsEnqueuesBeforeTheFirstJob) {
  test::TestDatabase db;
  CommitterOptions one_lane = test_options();
  one_lane.lanes = 1;
  Committer c(db.url(), one_lane);
  // The lane reports ready once its health check, which connects the pipeline, has passed.
  ASSERT_TRUE(test::eventually([&] { return c.ready(); }));
  EXPECT_EQ(db.scalar("SELECT count(*) FROM (" + kEnqueueBackends + ") b"), "1");
}

// A restart of the server closes the idle enqueue connection: the next health check opens a new
// one, so the next job is not the one that finds it closed.
TEST(Committer, ReopensItsIdleEnqueueConnectionAfterARestart) {
  test::TestDatabase db;
  CommitterOptions fast = test_options();
  fast.lanes = 1;
  fast.health_interval = std::chrono::milliseconds(50);
  Committer c(db.url(), fast);
  const std::string pid = "SELECT coalesce(max(pid), 0) FROM (" + kEnqueueBackends + ") b";
  std::string before;
  ASSERT_TRUE(test::eventually([&] { return (before = db.scalar(pid)) != "0"; }));
  test::postgres("stop");
  test::postgres("start");
  std::string after;
  EXPECT_TRUE(test::eventually([&] { return (after = db.scalar(pid)) != "0" && after != before; }))
      << "the pipeline's backend was " << before << " before the restart, " << after << " after";
  EXPECT_EQ(submit_one(c, job("after")).outcome, Outcome::kCreated);
}

// Counts the committer's reports of a database it could not reach.
struct Outages final : Observer {
  void committed(std::size_t, std::chrono::steady_clock::duration) override {}
  void database_error() override {}
  void database_unreachable(std::string_view) override { ++count; }
  void attempted(std::string_view, std::string_view, std::string_view,
                 std::chrono::milliseconds) override {}
  void pruned(std::int64_t, std::int64_t) override {}
  std::atomic<int> count{0};
};

// A schema altered under the binary makes the server refuse to prepare the enqueue. The lane is
// not ready, but the database answered: no outage is reported, and once the schema is put right
// the next health check makes the lane ready.
TEST(Committer, ARefusedPrepareIsNoOutage) {
  test::TestDatabase db;
  ASSERT_EQ(Store(db.url()).migrate(test::partitions()), Store::latest_version());
  db.query("ALTER TABLE jobs RENAME COLUMN content_type TO content_kind");
  Outages outages;
  CommitterOptions options = test_options();
  options.lanes = 1;
  options.health_interval = std::chrono::milliseconds(50);
  options.observer = &outages;
  Committer c(db.url(), options);
  // Refused: the lane's first health check found it not ready.
  EXPECT_EQ(submit_one(c, job("refused")).outcome, Outcome::kUnavailable);
  EXPECT_FALSE(c.ready());
  EXPECT_EQ(outages.count.load(), 0);
  db.query("ALTER TABLE jobs RENAME COLUMN content_kind TO content_type");
  ASSERT_TRUE(test::eventually([&] { return c.ready(); }));
  EXPECT_EQ(submit_one(c, job("after")).outcome, Outcome::kCreated);
  EXPECT_EQ(outages.count.load(), 0);
}

// Sessions the server has begun in the test's database, read on `watcher` once every other
// client session but `open` has ended: a session is counted once established, and at the latest
// when it ends.
std::int64_t sessions_once_only(pqxx::connection& watcher, int open) {
  EXPECT_TRUE(test::eventually([&] {
    return pqxx::nontransaction(watcher)
               .exec(
                   "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                   "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")[0][0]
               .as<int>() == open;
  }));
  return pqxx::nontransaction(watcher)
      .exec("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")[0][0]
      .as<std::int64_t>();
}

// While the server refuses the enqueue's setup, batches fail without asking it again: a new
// connection is tried at each health check, not for each batch.
TEST(Committer, ARefusedSetupIsTriedAtHealthChecksNotPerBatch) {
  test::TestDatabase db;
  ASSERT_EQ(Store(db.url()).migrate(test::partitions()), Store::latest_version());
  db.query("ALTER TABLE jobs RENAME COLUMN content_type TO content_kind");
  CommitterOptions options = test_options();
  options.lanes = 1;
  options.health_interval = std::chrono::seconds(60);
  Committer c(db.url(), options);
  EXPECT_EQ(submit_one(c, job("first")).outcome, Outcome::kUnavailable);
  pqxx::connection watcher(db.url());
  // Open: the lane's own connection, which asks for the schema's version.
  std::int64_t before = sessions_once_only(watcher, 1);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(submit_one(c, job(std::to_string(i))).outcome, Outcome::kUnavailable);
  }
  EXPECT_EQ(sessions_once_only(watcher, 1), before);
  EXPECT_FALSE(c.ready());
}

// A busy lane's pipeline whose connection broke reconnects as it sends the next batch; when the
// server refuses the new connection's setup, that batch gets 503 and the lane is not ready: the
// database answered, so no outage, and no job is refused for it.
TEST(Committer, ARefusedSetupOnReconnectingMakesTheLaneNotReady) {
  test::TestDatabase db;
  Outages outages;
  CommitterOptions options = test_options();
  options.lanes = 1;
  options.health_interval = std::chrono::seconds(60);  // the batch, not a check, reconnects
  options.observer = &outages;
  Committer c(db.url(), options);
  ASSERT_EQ(submit_one(c, job("before")).outcome, Outcome::kCreated);
  db.query("ALTER TABLE jobs RENAME COLUMN content_type TO content_kind");
  db.query("SELECT pg_terminate_backend(pid) FROM (" + kEnqueueBackends + ") b");
  ASSERT_TRUE(test::eventually(
      [&] { return db.scalar("SELECT count(*) FROM (" + kEnqueueBackends + ") b") == "0"; }));
  // Sent on the broken connection, then once more on the fallback's, whose enqueue statement
  // the server refuses as well: refused.
  EXPECT_EQ(submit_one(c, job("lost")).outcome, Outcome::kFailed);
  EXPECT_EQ(submit_one(c, job("reconnecting")).outcome, Outcome::kUnavailable);
  EXPECT_FALSE(c.ready());
  EXPECT_EQ(outages.count.load(), 0);
}

// While a lock holds the first batch, every enqueue that arrives waits; they go in at most two
// batches: one sent behind the first on the pipeline, and one with all the rest.
TEST(Committer, GathersWhatWaitsInTwoBatches) {
  test::TestDatabase db;
  CommitterOptions one_lane = test_options();
  one_lane.lanes = 1;  // what is waiting goes to one lane, not two
  Committer c(db.url(), one_lane);
  ASSERT_EQ(submit_one(c, job("warm-up")).outcome, Outcome::kCreated);
  Committer::Stats before = c.stats();

  pqxx::connection blocker(db.url());
  pqxx::work lock_tx(blocker);
  lock_tx.exec("LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE");
  constexpr std::size_t kWaiting = 99;
  Results results(kWaiting + 2);
  c.submit(job("first"), results.slot(0));
  wait_until_blocked(db);
  for (std::size_t i = 1; i <= kWaiting; ++i) {
    c.submit(job("waiting-" + std::to_string(i % 50)), results.slot(i));  // 49 keys repeat
  }
  c.submit(job("first"), results.slot(kWaiting + 1));
  lock_tx.abort();
  std::vector<Result> r = results.wait();

  Committer::Stats after = c.stats();
  EXPECT_GE(after.batches - before.batches, 2u);
  EXPECT_LE(after.batches - before.batches, 3u);
  EXPECT_GE(after.largest_batch, (kWaiting + 1) / 2);
  EXPECT_EQ(r[0].outcome, Outcome::kCreated);
  EXPECT_EQ(r[kWaiting + 1].outcome, Outcome::kDuplicate);
  EXPECT_EQ(r[kWaiting + 1].stored.job_id, r[0].stored.job_id);
  int created = 0;
  for (std::size_t i = 1; i <= kWaiting; ++i) created += r[i].outcome == Outcome::kCreated;
  EXPECT_EQ(created, 50);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM jobs"), "52");
}

// One job the database refuses (here: max_attempts outside its CHECK) fails alone.
TEST(Committer, OneRefusedJobDoesNotFailTheBatch) {
  test::TestDatabase db;
  CommitterOptions one_lane = test_options();
  one_lane.lanes = 1;  // the bad job shares a batch with a good one, whichever way they split
  Committer c(db.url(), one_lane);
  ASSERT_EQ(submit_one(c, job("warm-up")).outcome, Outcome::kCreated);
  pqxx::connection blocker(db.url());
  pqxx::work lock_tx(blocker);
  lock_tx.exec("LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE");
  Results results(4);
  c.submit(job("hold"), results.slot(0));
  wait_until_blocked(db);
  c.submit(job("good-1"), results.slot(1));
  c.submit(job("bad", 0), results.slot(2));
  c.submit(job("good-2"), results.slot(3));
  lock_tx.abort();
  std::vector<Result> r = results.wait();
  EXPECT_EQ(r[0].outcome, Outcome::kCreated);
  EXPECT_EQ(r[1].outcome, Outcome::kCreated);
  EXPECT_EQ(r[2].outcome, Outcome::kFailed);
  EXPECT_EQ(r[3].outcome, Outcome::kCreated);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM jobs"), "4");
}

// With two lanes, a batch stuck behind another transaction's uncommitted key holds up only its
// own lane: the next job is committed by the other lane meanwhile.
TEST(Committer, LanesCommitIndependently) {
  test::TestDatabase db;
  CommitterOptions two_lanes = test_options();
  two_lanes.lanes = 2;
  Committer c(db.url(), two_lanes);
  ASSERT_EQ(submit_one(c, job("warm-up")).outcome, Outcome::kCreated);

  pqxx::connection blocker(db.url());
  pqxx::work holding(blocker);
  holding.exec(
      "INSERT INTO jobs (project_id, idempotency_key, type, payload, content_type, max_attempts, "
      "attempt_allowance) VALUES ('shop', 'held', 't', '', 'a', 5, 5)");
  std::promise<Result> held;
  c.submit(job("held"), [&held](Result r) { held.set_value(std::move(r)); });
  wait_until_blocked(db);

  EXPECT_EQ(submit_one(c, job("free")).outcome, Outcome::kCreated);
  std::future<Result> held_result = held.get_future();
  EXPECT_EQ(held_result.wait_for(std::chrono::seconds(0)), std::future_status::timeout);

  holding.abort();
  EXPECT_EQ(held_result.get().outcome, Outcome::kCreated);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM jobs"), "3");
}

TEST(Committer, SurvivesDatabaseRestart) {
  test::TestDatabase db;
  Committer c(db.url(), test_options());
  Result before = submit_one(c, job("before"));
  ASSERT_EQ(before.outcome, Outcome::kCreated);

  test::postgres("stop");
  EXPECT_EQ(submit_one(c, job("during")).outcome, Outcome::kUnavailable);
  EXPECT_FALSE(c.ready());
  test::postgres("start");

  // The same committer, a new connection: nothing to restart.
  EXPECT_EQ(submit_one(c, job("after")).outcome, Outcome::kCreated);
  EXPECT_TRUE(c.ready());
  EXPECT_EQ(submit_one(c, job("before")).stored.job_id, before.stored.job_id);
  EXPECT_EQ(submit_one(c, job("during")).outcome, Outcome::kCreated);  // never stored before
  EXPECT_EQ(db.scalar("SELECT count(*) FROM jobs"), "3");
}

TEST(Committer, StopCompletesWhatWasSubmitted) {
  test::TestDatabase db;
  Results results(20);
  {
    Committer c(db.url(), test_options());
    for (std::size_t i = 0; i < 20; ++i)
      c.submit(job(std::string("stop-").append(std::to_string(i))), results.slot(i));
    c.stop();
  }
  for (const Result& r : results.wait()) EXPECT_EQ(r.outcome, Outcome::kCreated);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM jobs"), "20");
}

// Source github with route "orders", which this process's workers push under a lease of
// `lease_seconds`; room for `room` deliveries.
struct Pushed {
  explicit Pushed(std::size_t room, int lease_seconds) {
    source.name = "github";
    source.routes.emplace_back();
    source.routes[0].name = "orders";
    source.routes[0].timeout = std::chrono::milliseconds(500);  // an attempt ends within the lease
    handoff = std::make_unique<Handoff>(std::vector<const config::Source*>{&source}, room,
                                        std::size_t{1} << 20, lease_seconds);
  }
  const config::Route& route() const { return source.routes[0]; }
  static NewJob job(const std::string& key) {
    NewJob j = ::flare::jobs::job(key);
    j.pushed = true;
    j.deliveries = {{"orders", 5}};
    return j;
  }
  config::Source source;
  std::unique_ptr<Handoff> handoff;
};

CommitterOptions handing(Handoff& handoff) {
  CommitterOptions options = test_options();
  options.handoff = &handoff;
  return options;
}

// The crash this guards against: the process dies after the commit and before the attempt. No
// claim is needed while it lives, and none can take the delivery until its lease runs out; then
// one does, for the second attempt.
TEST(Committer, AnOfferedJobIsStoredRunningForTheWorkersAndClaimedOnlyAfterItsLease) {
  test::TestDatabase db;
  Pushed pushed(10, 2);
  pushed.handoff->claimed(pushed.route(), false);  // a claim found no backlog
  Committer c(db.url(), handing(*pushed.handoff));
  Store store(db.url());
  Result r = submit_one(c, Pushed::job("handed"));
  EXPECT_TRUE(store.claim_deliveries("github", pushed.route(), 30, 10).pushes.empty());
  ASSERT_EQ(r.outcome, Outcome::kCreated);
  EXPECT_EQ(r.stored.status, Status::kRunning);

  Handoff::Taken taken = pushed.handoff->take(pushed.route(), 10);
  ASSERT_EQ(taken.pushes.size(), 1u);
  const Push& p = taken.pushes[0];
  EXPECT_EQ(p.job.id, r.stored.job_id);
  EXPECT_EQ(p.job.payload, "{}");
  EXPECT_EQ(p.delivery.attempts, 1);
  EXPECT_TRUE(taken.emptied);
  EXPECT_EQ(db.scalar("SELECT status || ' ' || attempts || ' ' || lease_token FROM deliveries"),
            "running 1 " + p.delivery.lease_token.value_or("none"));
  EXPECT_EQ(db.scalar("SELECT status || ' ' || attempts FROM jobs"), "running 1");

  Claim after;
  ASSERT_TRUE(test::eventually([&] {
    after = store.claim_deliveries("github", pushed.route(), 30, 10);
    return !after.pushes.empty();
  }));
  const Push& claimed = after.pushes[0];
  EXPECT_EQ(claimed.delivery.attempts, 2);
  EXPECT_NE(claimed.delivery.lease_token, p.delivery.lease_token);
  // What the workers were handed is what a claim reads.
  EXPECT_EQ(claimed.job.id, p.job.id);
  EXPECT_EQ(claimed.job.type, p.job.type);
  EXPECT_EQ(claimed.job.content_type, p.job.content_type);
  EXPECT_EQ(claimed.job.source, p.job.source);
  EXPECT_EQ(claimed.job.event_id, p.job.event_id);
  EXPECT_EQ(claimed.job.idempotency_key, p.job.idempotency_key);
  EXPECT_EQ(claimed.job.created_at, p.job.created_at);
  EXPECT_EQ(claimed.delivery.route, p.delivery.route);
  EXPECT_EQ(claimed.delivery.max_attempts, p.delivery.max_attempts);
}

// A paused or open route's deliveries wait for a claim, which knows what the route allows; the
// room they were offered is free again.
TEST(Committer, ARouteThatIsNotClosedGetsItsDeliveriesQueued) {
  test::TestDatabase db;
  Pushed pushed(1, 2);
  pushed.handoff->claimed(pushed.route(), false);
  Committer c(db.url(), handing(*pushed.handoff));
  ASSERT_EQ(submit_one(c, Pushed::job("first")).outcome, Outcome::kCreated);  // migrated now
  ASSERT_EQ(pushed.handoff->take(pushed.route(), 10).pushes.size(), 1u);
  for (const char* state : {"paused", "open"}) {
    db.query(
        std::string("INSERT INTO routes (source, route, state) VALUES ('github', 'orders', '") +
        state + "') ON CONFLICT (source, route) DO UPDATE SET state = excluded.state");
    Result r = submit_one(c, Pushed::job(state));
    ASSERT_EQ(r.outcome, Outcome::kCreated);
    EXPECT_EQ(r.stored.status, Status::kQueued) << state;
    EXPECT_EQ(db.scalar("SELECT d.status || ' ' || d.attempts || ' ' || (d.lease_token IS NULL) "
                        "FROM deliveries d JOIN jobs j ON j.id = d.job_id "
                        "WHERE j.idempotency_key = '" +
                        std::string(state) + "'"),
              "queued 0 true")
        << state;
    EXPECT_TRUE(pushed.handoff->take(pushed.route(), 10).pushes.empty());
    EXPECT_TRUE(pushed.handoff->offer(Pushed::job("room"))) << "the room was given back";
    pushed.handoff->settle(Pushed::job("room"), nullptr, "", std::chrono::steady_clock::now());
  }
}

// Attempts for push workers: each succeeds at once but the job keyed "held", whose attempt waits
// until the workers abandon it. Tells the test which jobs were attempted.
class Attempts {
 public:
  class Deliverer : public jobs::Deliverer {
   public:
    explicit Deliverer(Attempts& attempts) : attempts_(attempts) {}
    Attempt deliver(const Job& job, const Delivery&) override {
      std::unique_lock lock(attempts_.mutex_);
      attempts_.keys_.push_back(job.idempotency_key.value_or(""));
      attempts_.changed_.notify_all();
      if (job.idempotency_key != "held") return {Attempt::Result::kSucceeded, "", 200, "", {}};
      attempts_.changed_.wait(lock, [this] { return attempts_.abandoned_; });
      return {Attempt::Result::kAbandoned, "", {}, "", {}};
    }
    void abandon() override {
      std::lock_guard lock(attempts_.mutex_);
      attempts_.abandoned_ = true;
      attempts_.changed_.notify_all();
    }

   private:
    Attempts& attempts_;
  };

  bool wait_for(const std::string& key) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [&] {
      return std::find(keys_.begin(), keys_.end(), key) != keys_.end();
    });
  }
  std::vector<std::string> keys() {
    std::lock_guard lock(mutex_);
    return keys_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> keys_;
  bool abandoned_ = false;
};

// The one worker is busy with a delivery handed over to it when the next is handed over: that one
// waits in the process, running, unclaimed, until the workers stop, which gives both back.
TEST(Committer, DeliveriesHandedOverWaitForTheWorkersAndAreReleasedAtTheirStop) {
  test::TestDatabase db;
  Pushed pushed(10, 10);
  Committer c(db.url(), handing(*pushed.handoff));
  // Claimed, since no claim has found the route without a backlog yet; after its attempt the
  // worker's next claim finds none, and the route is offered deliveries.
  ASSERT_EQ(submit_one(c, Pushed::job("claimed")).outcome, Outcome::kCreated);
  Attempts attempts;
  Workers workers(db.url(),
                  WorkerOptions{{&pushed.source},
                                1,
                                10,
                                10,  // the Handoff's
                                std::chrono::milliseconds(1000),
                                nullptr,
                                pushed.handoff.get()},
                  [&] { return std::make_unique<Attempts::Deliverer>(attempts); });
  ASSERT_TRUE(attempts.wait_for("claimed"));
  NewJob probe = Pushed::job("probe");
  ASSERT_TRUE(test::eventually([&] {
    if (!pushed.handoff->offer(probe)) return false;
    pushed.handoff->settle(probe, nullptr, "", std::chrono::steady_clock::now());
    return true;
  }));

  Result held = submit_one(c, Pushed::job("held"));
  ASSERT_TRUE(held.stored.handed_over);
  ASSERT_TRUE(attempts.wait_for("held"));
  Result waiting = submit_one(c, Pushed::job("waiting"));
  ASSERT_TRUE(waiting.stored.handed_over);
  EXPECT_EQ(db.scalar("SELECT status || ' ' || attempts FROM deliveries WHERE job_id = '" +
                      waiting.stored.job_id + "'"),
            "running 1");

  workers.stop(std::chrono::milliseconds(0));
  EXPECT_EQ(attempts.keys(), (std::vector<std::string>{"claimed", "held"}));
  for (const Result& r : {held, waiting}) {
    EXPECT_EQ(db.scalar("SELECT d.status || ' ' || d.attempts || ' ' || (d.lease_token IS NULL) || "
                        "' ' || j.status FROM deliveries d JOIN jobs j ON j.id = d.job_id "
                        "WHERE d.job_id = '" +
                        r.stored.job_id + "'"),
              "queued 0 true queued")
        << r.job.idempotency_key;
  }
}

}  // namespace
}  // namespace flare::jobs
