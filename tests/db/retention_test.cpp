// Retention against the real PostgreSQL: payloads emptied with their keys kept, rows deleted
// with theirs, what a pass leaves alone, and one pruning process at a time.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "db/store_fixture.hpp"
#include "jobs/store.hpp"
#include "support/database.hpp"
#include "support/env.hpp"

namespace flare::jobs {
namespace {

NewJob job(const std::string& key, const std::string& source = "stripe") {
  NewJob j;
  j.project_id = "shop";
  j.idempotency_key = key;
  j.type = "stripe.invoice.paid";
  j.payload = R"({"id":"evt","card":"4242"})";
  j.content_type = "application/json";
  j.source = source;
  j.event_id = key.substr(key.find(':') + 1);
  j.max_attempts = 1;
  return j;
}

// A job id as the gateway would have made it `days` ago (ids begin with their millisecond).
std::string id_from_days_ago(int days, int n) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch() - std::chrono::hours(24 * days))
                .count();
  char out[64];
  std::snprintf(out, sizeof out, "%08llx-%04llx-7000-8000-%012x",
                static_cast<unsigned long long>(ms) >> 16,
                static_cast<unsigned long long>(ms) & 0xffff, n);
  return out;
}

PruneScope everything(config::Retention retention) { return {"shop", {}, true, retention}; }

const auto kGoOn = [](std::chrono::steady_clock::duration) { return true; };

class RetentionTest : public StoreFixture {
 protected:
  // Enqueues `key` and takes it to `end` (succeeded or dead) through a pull worker's lease.
  std::string ended(const std::string& key, Status end) {
    std::string id = store_->enqueue({job(key)})[0].job_id;
    Job claimed = store_->claim({"shop", {}, {}}, 1, 60).at(0);
    EXPECT_EQ(claimed.id, id);
    if (end == Status::kSucceeded) {
      store_->complete("shop", id, *claimed.lease_token);
    } else {
      store_->fail("shop", id, *claimed.lease_token, "refused", false,
                   [](const Job&) { return std::chrono::milliseconds(0); });
    }
    return id;
  }

  void age(const std::string& id, const std::string& column, int days) {
    db_.query("UPDATE jobs SET " + column + " = now() - interval '" + std::to_string(days) +
              " days' WHERE id = '" + id + "'");
  }
};

TEST_F(RetentionTest, EmptiesPayloadsOfEndedJobsAndKeepsTheirKeys) {
  std::string done = ended("webhook:evt_done", Status::kSucceeded);
  std::string dead = ended("webhook:evt_dead", Status::kDead);
  std::string recent = ended("webhook:evt_recent", Status::kSucceeded);
  std::string waiting = store_->enqueue({job("webhook:evt_waiting")})[0].job_id;
  for (const std::string& id : {done, dead, waiting}) age(id, "updated_at", 40);
  std::vector<PruneScope> scopes = {everything({30, 90, std::nullopt})};

  auto counted = store_->prune(scopes, 1000, true, kGoOn);
  ASSERT_TRUE(counted);
  EXPECT_EQ(counted->at(0).payloads, 1);
  EXPECT_EQ(counted->at(0).dead_payloads, 0);
  EXPECT_FALSE(store_->get("shop", done)->pruned_at) << "a dry run changes nothing";

  auto pruned = store_->prune(scopes, 1000, false, kGoOn);
  ASSERT_TRUE(pruned);
  EXPECT_EQ(pruned->at(0).payloads, 1);
  EXPECT_EQ(pruned->at(0).dead_payloads, 0);
  EXPECT_EQ(pruned->at(0).rows, 0);
  Job gone = *store_->get("shop", done);
  EXPECT_TRUE(gone.pruned_at);
  EXPECT_EQ(gone.payload, "");
  EXPECT_EQ(gone.status, Status::kSucceeded);
  EXPECT_EQ(gone.idempotency_key, "webhook:evt_done");
  for (const std::string& id : {dead, recent, waiting}) {
    Job kept = *store_->get("shop", id);
    EXPECT_FALSE(kept.pruned_at) << id;
    EXPECT_EQ(kept.payload, job("k").payload) << id;
  }

  // The key still names the job: a late redelivery is a duplicate of it.
  Enqueued again = store_->enqueue({job("webhook:evt_done")})[0];
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.job_id, done);

  // Dead jobs after their own, longer period; a pass after that finds nothing.
  age(dead, "updated_at", 100);
  EXPECT_EQ(store_->prune(scopes, 1000, false, kGoOn)->at(0).dead_payloads, 1);
  EXPECT_EQ(store_->get("shop", dead)->payload, "");
  // It cannot run again without its payload.
  EXPECT_EQ(store_->retry("shop", dead).change, Change::kPruned);
  EXPECT_EQ(store_->get("shop", dead)->status, Status::kDead);
  Pruned nothing = store_->prune(scopes, 1000, false, kGoOn)->at(0);
  EXPECT_EQ(nothing.payloads + nothing.dead_payloads + nothing.rows, 0);
}

TEST_F(RetentionTest, AttemptsAnswersGoWithThePayload) {
  NewJob pushed = job("webhook:evt_pushed");
  pushed.pushed = true;
  pushed.deliveries = {{"orders", 3}};
  std::string id = store_->enqueue({pushed})[0].job_id;
  config::Route route;
  route.name = "orders";
  Claim claim = store_->claim_deliveries("stripe", route, 60, 10);
  ASSERT_EQ(claim.pushes.size(), 1u);
  AttemptRecord attempt{
      "orders", 1, "2026-01-01T00:00:00Z", 12, 200, std::nullopt, R"({"received":"4242"})"};
  ASSERT_TRUE(store_
                  ->record_outcomes({{claim.pushes[0].delivery, attempt, Status::kSucceeded,
                                      std::chrono::milliseconds(0)}},
                                    config::Breaker{})
                  .held.at(0));
  age(id, "updated_at", 40);

  EXPECT_EQ(store_->prune({everything({30, 90, std::nullopt})}, 1000, false, kGoOn)->at(0).payloads,
            1);
  std::optional<JobView> view = store_->view("shop", id, 10);
  ASSERT_TRUE(view);
  EXPECT_TRUE(view->job.pruned_at);
  ASSERT_EQ(view->attempts.size(), 1u) << "the attempt's record stays";
  EXPECT_EQ(view->attempts[0].status_code, 200);
  EXPECT_EQ(view->attempts[0].duration_ms, 12);
  EXPECT_EQ(view->attempts[0].response, "");
  EXPECT_EQ(view->deliveries.at(0).status, Status::kSucceeded);
}

TEST_F(RetentionTest, DeletesWholeRowsStoredBeforeTheHorizonAndFreesTheirKeys) {
  std::vector<NewJob> jobs = {job("webhook:evt_old"), job("webhook:evt_old_queued"),
                              job("webhook:evt_young")};
  std::vector<std::string> ids = {id_from_days_ago(400, 1), id_from_days_ago(400, 2),
                                  id_from_days_ago(10, 3)};
  ASSERT_TRUE(store_->enqueue(jobs, ids)[0].created);
  db_.query(
      "UPDATE jobs SET status = 'succeeded', created_at = now() - interval '400 days' "
      "WHERE id IN ('" +
      ids[0] + "', '" + ids[2] + "')");
  db_.query("UPDATE jobs SET created_at = now() - interval '400 days' WHERE id = '" + ids[1] + "'");
  db_.query("UPDATE jobs SET created_at = now() - interval '10 days' WHERE id = '" + ids[2] + "'");
  for (const std::string& id : {ids[0], ids[2]}) {
    db_.query(
        "INSERT INTO deliveries (project_id, job_id, route, source, status, "
        "attempt_allowance, max_attempts) VALUES ('shop', '" +
        id + "', 'orders', 'stripe', 'succeeded', 1, 1)");
    db_.query(
        "INSERT INTO attempts (project_id, job_id, route, number, started_at, duration_ms) "
        "VALUES ('shop', '" +
        id + "', 'orders', 1, now(), 5)");
  }
  std::vector<PruneScope> scopes = {everything({std::nullopt, std::nullopt, 365})};

  EXPECT_EQ(store_->prune(scopes, 1000, true, kGoOn)->at(0).rows, 1);
  EXPECT_EQ(store_->prune(scopes, 1000, false, kGoOn)->at(0).rows, 1);
  EXPECT_FALSE(store_->get("shop", ids[0])) << "ended and stored 400 days ago";
  EXPECT_EQ(db_.scalar("SELECT string_agg(job_id::text, ',') FROM attempts"), ids[2])
      << "its attempts went with it";
  EXPECT_TRUE(store_->get("shop", ids[1])) << "not ended: never deleted";
  EXPECT_TRUE(store_->get("shop", ids[2])) << "stored 10 days ago";
  // The key went with the row: the same event now makes a new job.
  Enqueued again = store_->enqueue({job("webhook:evt_old")})[0];
  EXPECT_TRUE(again.created);
  EXPECT_NE(again.job_id, ids[0]);
}

TEST_F(RetentionTest, AScopePrunesOnlyItsSources) {
  std::string a = store_->enqueue({job("webhook:evt_a", "stripe")})[0].job_id;
  std::string b = store_->enqueue({job("webhook:evt_b", "github")})[0].job_id;
  NewJob api = job("order-1");
  api.source.clear();
  api.event_id.clear();
  std::string c = store_->enqueue({api})[0].job_id;
  db_.query("UPDATE jobs SET status = 'succeeded', updated_at = now() - interval '40 days'");

  // github keeps its payloads for ever; every other source and the API's jobs 30 days.
  std::vector<PruneScope> scopes = {{"shop", {"github"}, false, {std::nullopt, 90, std::nullopt}},
                                    {"shop", {"github"}, true, {30, 90, std::nullopt}}};
  auto pruned = store_->prune(scopes, 1000, false, kGoOn);
  ASSERT_TRUE(pruned);
  EXPECT_EQ(pruned->at(0).payloads, 0);
  EXPECT_EQ(pruned->at(1).payloads, 2);
  EXPECT_TRUE(store_->get("shop", a)->pruned_at);
  EXPECT_FALSE(store_->get("shop", b)->pruned_at);
  EXPECT_TRUE(store_->get("shop", c)->pruned_at);
}

TEST_F(RetentionTest, OneProcessPrunesAtATime) {
  for (int i = 0; i < 3; ++i) {
    std::string id = store_->enqueue({job("webhook:evt_" + std::to_string(i))})[0].job_id;
    db_.query(
        "UPDATE jobs SET status = 'succeeded', updated_at = now() - interval '40 days' "
        "WHERE id = '" +
        id + "'");
  }
  std::vector<PruneScope> scopes = {everything({30, 90, std::nullopt})};
  Store other(db_.url());
  int asked = 0;
  std::optional<std::vector<Pruned>> meanwhile;
  // Asked after each transaction: from the first on, this pass holds the lock.
  auto between = [&](std::chrono::steady_clock::duration) {
    if (++asked == 2) meanwhile = other.prune(scopes, 1, false, kGoOn);
    return true;
  };
  auto pruned = store_->prune(scopes, 1, false, between);
  ASSERT_TRUE(pruned);
  EXPECT_EQ(pruned->at(0).payloads, 3);
  EXPECT_GE(asked, 2);
  EXPECT_FALSE(meanwhile) << "a second process pruned while the first held the lock";
  // The lock went with the pass: the other process prunes now (and finds nothing left).
  auto after = other.prune(scopes, 1, false, kGoOn);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->at(0).payloads, 0);
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), "0");
}

TEST_F(RetentionTest, APassEndsWhenToldBetweenTransactionsAndLetsGoOfTheLock) {
  for (int i = 0; i < 3; ++i) {
    age(ended("webhook:evt_" + std::to_string(i), Status::kSucceeded), "updated_at", 40);
  }
  int asked = 0;
  auto once = [&](std::chrono::steady_clock::duration took) {
    EXPECT_GT(took.count(), 0);
    ++asked;
    return false;
  };
  auto pruned = store_->prune({everything({30, 90, std::nullopt})}, 1, false, once);
  ASSERT_TRUE(pruned);
  EXPECT_EQ(asked, 1);
  EXPECT_EQ(pruned->at(0).payloads, 1);
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM jobs WHERE pruned_at IS NOT NULL"), "1");
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), "0");
}

TEST_F(RetentionTest, QueueHealthReadsTheQueueAndWhatHoldsVacuumBack) {
  ended("webhook:evt_dead", Status::kDead);
  store_->enqueue({job("webhook:evt_1"), job("webhook:evt_2"), job("webhook:evt_3")});
  ASSERT_EQ(store_->claim({"shop", {}, {}}, 1, 60).size(), 1u);
  db_.query("UPDATE jobs SET run_at = now() - interval '30 seconds' WHERE status = 'queued'");

  pqxx::connection holder(db_.url());
  pqxx::work held(holder, "held");
  held.exec("SELECT txid_current()");
  double age = std::stod(db_.scalar(
      "SELECT extract(epoch FROM now() - xact_start) FROM pg_stat_activity WHERE pid = " +
      std::to_string(holder.backendpid())));
  QueueHealth h = store_->queue_health({"shop"});
  EXPECT_EQ(h.pull[0], 2);  // queued
  EXPECT_EQ(h.pull[1], 0);  // retrying
  EXPECT_EQ(h.pull[2], 1);  // running
  EXPECT_EQ(h.push[0] + h.push[1] + h.push[2], 0);
  EXPECT_GE(h.pull_oldest_due_seconds, 30);
  EXPECT_EQ(h.push_oldest_due_seconds, 0);
  EXPECT_EQ(h.dead, 1);
  EXPECT_GE(h.oldest_transaction_seconds, age);
  ASSERT_EQ(h.dead_tuples.size(), 3u);
  EXPECT_EQ(h.dead_tuples[0].first, "attempts");
  EXPECT_EQ(h.dead_tuples[1].first, "deliveries");
  EXPECT_EQ(h.dead_tuples[2].first, "jobs");
  held.abort();
  EXPECT_LT(store_->queue_health({"shop"}).oldest_transaction_seconds,
            h.oldest_transaction_seconds);
}

}  // namespace
}  // namespace flare::jobs
