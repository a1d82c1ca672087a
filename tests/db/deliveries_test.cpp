// The push workers' batches against the real PostgreSQL: claims of many deliveries at once within
// what a route's pace allows, a batch's outcomes recorded together; and the wake-ups of
// long-polling claims.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <pqxx/pqxx>

#include "db/store_fixture.hpp"
#include "jobs/store.hpp"
#include "jobs/wakeups.hpp"
#include "support/database.hpp"
#include "support/env.hpp"
#include "support/wait.hpp"

namespace flare::jobs {
namespace {

using std::chrono::milliseconds;

class DeliveriesTest : public StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    route_.name = "orders";
  }

  // Events 0 to `n` - 1, padded to at least `bytes`, enqueued one after another.
  std::vector<std::string> enqueue(int n, std::size_t bytes = 0) {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) ids.push_back(store_->enqueue({event(i, bytes)})[0].job_id);
    return ids;
  }

  // Event `i` of source stripe, pushed to route "orders", its payload padded to at least
  // `bytes`.
  static NewJob event(int i, std::size_t bytes = 0) {
    NewJob j;
    j.project_id = "shop";
    j.idempotency_key = "webhook:evt_" + std::to_string(i);
    j.type = "stripe.invoice.paid";
    j.payload = R"({"id":"evt_)" + std::to_string(i) + R"(")";
    if (bytes > 0) j.payload += R"(,"pad":")" + std::string(bytes, 'x') + '"';
    j.payload += '}';
    j.content_type = "application/json";
    j.source = "stripe";
    j.event_id = "evt_" + std::to_string(i);
    j.max_attempts = 3;
    j.pushed = true;
    j.deliveries = {{"orders", 3}};
    return j;
  }

  static AttemptRecord attempt(const Push& p, std::optional<int> status,
                               std::optional<std::string> error) {
    return {p.delivery.route, p.delivery.attempts, "2026-01-01T00:00:00Z", 3, status, error, ""};
  }

  Status status_of(const std::string& id) { return store_->get("shop", id)->status; }

  // A thousand deliveries retrying an hour from now, then `due` due ones enqueued one after
  // another (their job ids); the retries' versions from before their update gone from the index,
  // as vacuum leaves it, and the planner told how many rows there are.
  std::vector<std::string> behind_retries(pqxx::nontransaction& sql, int due) {
    std::vector<NewJob> later;
    for (int i = 0; i < 1000; ++i) later.push_back(event(i));
    store_->enqueue(later);
    sql.exec(
        "UPDATE deliveries SET status = 'retrying', attempts = 1, "
        "run_at = now() + interval '1 hour'");
    std::vector<std::string> ids;
    for (int i = 0; i < due; ++i) ids.push_back(store_->enqueue({event(1000 + i)})[0].job_id);
    sql.exec("VACUUM ANALYZE deliveries");
    return ids;
  }

  // The scans and the entries read of the index of waiting deliveries, and the sequential scans
  // of deliveries, once the store's connection is closed: a backend reports what it read to the
  // statistics before it leaves pg_stat_activity.
  pqxx::row due_index_reads(pqxx::nontransaction& sql) {
    store_.reset();
    EXPECT_TRUE(test::eventually([&] {
      return sql.exec1(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")[0]
                 .as<int>() == 0;
    }));
    return sql.exec1(
        "SELECT i.idx_scan, i.idx_tup_read, t.seq_scan FROM pg_stat_user_indexes i "
        "JOIN pg_stat_user_tables t USING (relid) WHERE i.indexrelname = 'ix_deliveries_due'");
  }

  config::Route route_;
};

TEST_F(DeliveriesTest, AClaimTakesTheOldestDueDeliveriesUpToItsSizeWithTheirJobs) {
  std::vector<std::string> ids = enqueue(5);
  Claim first = store_->claim_deliveries("stripe", route_, 60, 3);
  ASSERT_EQ(first.pushes.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(first.pushes[i].delivery.job_id, ids[i]) << "oldest first";
    EXPECT_EQ(first.pushes[i].job.id, ids[i]) << "each with its own job";
    EXPECT_EQ(first.pushes[i].job.payload, R"({"id":"evt_)" + std::to_string(i) + R"("})");
    EXPECT_EQ(first.pushes[i].delivery.status, Status::kRunning);
    EXPECT_EQ(status_of(ids[i]), Status::kRunning);
  }
  EXPECT_FALSE(first.emptied) << "two more were due";
  Claim rest = store_->claim_deliveries("stripe", route_, 60, 10);
  ASSERT_EQ(rest.pushes.size(), 2u);
  EXPECT_EQ(rest.pushes[0].delivery.job_id, ids[3]);
  EXPECT_TRUE(rest.emptied);
  EXPECT_TRUE(store_->claim_deliveries("stripe", route_, 60, 10).pushes.empty());
}

// A claim that comes back short of its size empties the route's queue only when no due delivery
// was left locked by another transaction or over its bytes (Claim::emptied): the workers gather
// a steady flow after such a claim, not in a backlog.
TEST_F(DeliveriesTest, AClaimSaysWhetherItTookEveryDueDelivery) {
  std::vector<std::string> ids = enqueue(3);
  pqxx::connection other(db_.url());
  pqxx::work holding(other);
  holding.exec("SELECT FROM deliveries WHERE job_id = '" + ids[0] + "' FOR UPDATE");
  Claim around = store_->claim_deliveries("stripe", route_, 60, 10);
  ASSERT_EQ(around.pushes.size(), 2u);
  EXPECT_FALSE(around.emptied) << "one was due, locked by another transaction";
  holding.abort();
  Claim last = store_->claim_deliveries("stripe", route_, 60, 10);
  ASSERT_EQ(last.pushes.size(), 1u);
  EXPECT_EQ(last.pushes[0].delivery.job_id, ids[0]);
  EXPECT_TRUE(last.emptied);
}

TEST_F(DeliveriesTest, AClaimHoldsItsPayloadBytesToItsBound) {
  // Each a little over a third of the bound: two fit, the third waits for the next claim.
  std::vector<std::string> ids = enqueue(3, Store::kClaimBytes / 3 + 1);
  Claim first = store_->claim_deliveries("stripe", route_, 60, 10);
  ASSERT_EQ(first.pushes.size(), 2u);
  EXPECT_EQ(first.pushes[1].delivery.job_id, ids[1]);
  EXPECT_EQ(status_of(ids[2]), Status::kQueued) << "left as it was";
  EXPECT_FALSE(first.emptied) << "one was due, over the bytes";
  Claim next = store_->claim_deliveries("stripe", route_, 60, 10);
  ASSERT_EQ(next.pushes.size(), 1u);
  EXPECT_EQ(next.pushes[0].delivery.job_id, ids[2]);
  EXPECT_EQ(next.pushes[0].delivery.attempts, 1);
}

TEST_F(DeliveriesTest, AClaimTakesAPayloadOverItsBoundAlone) {
  enqueue(2, Store::kClaimBytes + 1);
  EXPECT_EQ(store_->claim_deliveries("stripe", route_, 60, 10).pushes.size(), 1u);
  EXPECT_EQ(store_->claim_deliveries("stripe", route_, 60, 10).pushes.size(), 1u);
  EXPECT_TRUE(store_->claim_deliveries("stripe", route_, 60, 10).pushes.empty());
}

// The claim seeks in the index of waiting deliveries to the clock: a thousand retries not due
// yet cost it nothing, where reading past them would cost every claim that comes up short.
TEST_F(DeliveriesTest, AClaimReadsNoDeliveryThatIsNotDue) {
  pqxx::connection db(db_.url());
  pqxx::nontransaction sql(db);
  std::string due = behind_retries(sql, 1)[0];
  Claim claim = store_->claim_deliveries("stripe", route_, 60, 10);
  ASSERT_EQ(claim.pushes.size(), 1u);
  EXPECT_EQ(claim.pushes[0].delivery.job_id, due);
  pqxx::row read = due_index_reads(sql);
  ASSERT_GT(read[0].as<std::int64_t>(), 0)
      << "the claim did not read the index of waiting deliveries; sequential scans of them: "
      << read[2].as<std::int64_t>();
  // The one due delivery, read twice: by the claim, and by its count of what was due, since it
  // took fewer than it asked for (Claim::emptied).
  EXPECT_EQ(read[1].as<std::int64_t>(), 2) << "index entries read";
  EXPECT_TRUE(claim.emptied);
}

// A claim that comes back full does not count what was due besides (Claim::emptied): a drain's
// claims read the index of waiting deliveries once.
TEST_F(DeliveriesTest, AFullClaimCountsNothingBesides) {
  pqxx::connection db(db_.url());
  pqxx::nontransaction sql(db);
  behind_retries(sql, 2);
  Claim claim = store_->claim_deliveries("stripe", route_, 60, 1);
  ASSERT_EQ(claim.pushes.size(), 1u);
  EXPECT_FALSE(claim.emptied);
  pqxx::row read = due_index_reads(sql);
  EXPECT_EQ(read[0].as<std::int64_t>(), 1) << "scans of the index of waiting deliveries";
  EXPECT_LE(read[1].as<std::int64_t>(), 2) << "index entries read";
}

TEST_F(DeliveriesTest, ARoutesPaceBoundsTheClaim) {
  enqueue(5);
  config::Route in_flight = route_;
  in_flight.max_in_flight = 2;
  EXPECT_EQ(store_->claim_deliveries("stripe", in_flight, 60, 10).pushes.size(), 2u);
  EXPECT_TRUE(store_->claim_deliveries("stripe", in_flight, 60, 10).pushes.empty())
      << "both slots are taken";
  config::Route paced = route_;
  paced.max_per_second = 1;
  EXPECT_EQ(store_->claim_deliveries("stripe", paced, 60, 10).pushes.size(), 1u)
      << "attempts of a paced route begin one at a time";
}

TEST_F(DeliveriesTest, ABatchsOutcomesAreRecordedTogether) {
  std::vector<std::string> ids = enqueue(3);
  Claim claim = store_->claim_deliveries("stripe", route_, 60, 3);
  ASSERT_EQ(claim.pushes.size(), 3u);
  const std::vector<Push>& p = claim.pushes;
  Recorded recorded = store_->record_outcomes(
      {{p[0].delivery, attempt(p[0], 200, std::nullopt), Status::kSucceeded, milliseconds(0)},
       {p[1].delivery, attempt(p[1], 500, "HTTP 500"), Status::kRetrying, milliseconds(60000)},
       {p[2].delivery, std::nullopt, Status::kSucceeded, milliseconds(0)}},
      config::Breaker{});
  EXPECT_EQ(recorded.held, (std::vector<bool>{true, true, true}));

  EXPECT_EQ(status_of(ids[0]), Status::kSucceeded);
  EXPECT_EQ(store_->view("shop", ids[0], 10)->attempts.size(), 1u);
  std::optional<JobView> failed = store_->view("shop", ids[1], 10);
  EXPECT_EQ(failed->job.status, Status::kRetrying);
  EXPECT_EQ(failed->job.last_error, "HTTP 500");
  ASSERT_EQ(failed->attempts.size(), 1u);
  EXPECT_EQ(failed->attempts[0].status_code, 500);
  // Released unattempted: waiting again, its attempt not counted, due at once.
  std::optional<JobView> released = store_->view("shop", ids[2], 10);
  EXPECT_EQ(released->job.status, Status::kQueued);
  EXPECT_EQ(released->deliveries.at(0).attempts, 0);
  EXPECT_TRUE(released->attempts.empty());
  Claim again = store_->claim_deliveries("stripe", route_, 60, 10);
  ASSERT_EQ(again.pushes.size(), 1u) << "the failed delivery waits 60 s, the released one not";
  EXPECT_EQ(again.pushes[0].delivery.job_id, ids[2]);
  EXPECT_EQ(again.pushes[0].delivery.attempts, 1);
}

TEST_F(DeliveriesTest, AnOutcomeAfterTheLeaseWasTakenIsRecordedButDoesNotDecide) {
  std::vector<std::string> ids = enqueue(1);
  Push late = store_->claim_deliveries("stripe", route_, 60, 1).pushes.at(0);
  db_.query("UPDATE deliveries SET locked_until = now() - interval '1 second'");
  Push now = store_->claim_deliveries("stripe", route_, 60, 1).pushes.at(0);
  EXPECT_EQ(now.delivery.attempts, 2) << "the lease ran out and the delivery was claimed again";

  Recorded recorded = store_->record_outcomes(
      {{late.delivery, attempt(late, 200, std::nullopt), Status::kSucceeded, milliseconds(0)}},
      config::Breaker{});
  EXPECT_EQ(recorded.held, (std::vector<bool>{false}));
  std::optional<JobView> view = store_->view("shop", ids[0], 10);
  EXPECT_EQ(view->job.status, Status::kRunning) << "the newer attempt's outcome decides";
  EXPECT_EQ(view->attempts.size(), 1u) << "the late attempt was made, and is kept";
}

// An attempt whose lease ran out was ended by the next claim, which kept its token; no claim took
// the delivery since (its route was paused), so the attempt's late outcome still decides.
TEST_F(DeliveriesTest, AnOutcomeAfterItsLeaseRanOutDecidesWhileNoClaimTookItAgain) {
  std::vector<std::string> ids = enqueue(1);
  Push late = store_->claim_deliveries("stripe", route_, 60, 1).pushes.at(0);
  db_.query("UPDATE deliveries SET locked_until = now() - interval '1 second'");
  db_.query("UPDATE routes SET state = 'paused' WHERE source = 'stripe' AND route = 'orders'");
  EXPECT_TRUE(store_->claim_deliveries("stripe", route_, 60, 1).pushes.empty());
  ASSERT_EQ(status_of(ids[0]), Status::kRetrying) << "the claim ended the lapsed attempt";

  Recorded recorded = store_->record_outcomes(
      {{late.delivery, attempt(late, 200, std::nullopt), Status::kSucceeded, milliseconds(0)}},
      config::Breaker{});
  EXPECT_EQ(recorded.held, (std::vector<bool>{true}));
  std::optional<JobView> view = store_->view("shop", ids[0], 10);
  EXPECT_EQ(view->job.status, Status::kSucceeded);
  EXPECT_EQ(view->deliveries.at(0).attempts, 1);
  EXPECT_EQ(view->attempts.size(), 1u);
}

TEST_F(DeliveriesTest, ClaimsAndRecordsRunAgainOnTheConnectionOpenedAfterTheirsWasKilled) {
  std::vector<std::string> ids = enqueue(2);
  store_->claim_deliveries("stripe", route_, 60, 1);
  db_.query("UPDATE deliveries SET locked_until = now() - interval '1 second'");
  // The claim ends the lapsed attempt and sums its job up from arrays read as text; the record
  // sums the same statement's jobs up from arrays sent in binary.
  std::vector<Push> p = store_->claim_deliveries("stripe", route_, 60, 2).pushes;
  ASSERT_EQ(p.size(), 2u);
  std::vector<PushOutcome> outcomes;
  for (const Push& push : p) {
    outcomes.push_back(
        {push.delivery, attempt(push, 200, std::nullopt), Status::kSucceeded, milliseconds(0)});
  }
  EXPECT_EQ(store_->record_outcomes(outcomes, config::Breaker{}).held,
            (std::vector<bool>{true, true}));

  db_.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
      "current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()");
  ASSERT_TRUE(test::eventually([&] {
    return db_.scalar(
               "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
               "AND backend_type = 'client backend' AND pid <> pg_backend_pid()") == "0";
  }));
  std::string third = store_->enqueue({event(2)})[0].job_id;
  Claim claim = store_->claim_deliveries("stripe", route_, 60, 10);
  ASSERT_EQ(claim.pushes.size(), 1u);
  const Push& q = claim.pushes[0];
  EXPECT_EQ(store_
                ->record_outcomes({{q.delivery, attempt(q, 200, std::nullopt), Status::kSucceeded,
                                    milliseconds(0)}},
                                  config::Breaker{})
                .held,
            (std::vector<bool>{true}));
  for (const std::string& id : {ids[0], ids[1], third}) {
    EXPECT_EQ(status_of(id), Status::kSucceeded) << id;
  }
}

TEST_F(DeliveriesTest, TheBreakerCountsABatchsFailuresInOrder) {
  enqueue(3);
  config::Breaker breaker;
  breaker.failures = 2;
  breaker.cooldown = milliseconds(60000);
  const std::vector<Push> p = store_->claim_deliveries("stripe", route_, 60, 3).pushes;
  ASSERT_EQ(p.size(), 3u);
  Recorded recorded = store_->record_outcomes(
      {{p[0].delivery, attempt(p[0], 200, std::nullopt), Status::kSucceeded, milliseconds(0)},
       {p[1].delivery, attempt(p[1], 503, "HTTP 503"), Status::kRetrying, milliseconds(0)},
       {p[2].delivery, attempt(p[2], 503, "HTTP 503"), Status::kRetrying, milliseconds(0)}},
      breaker);
  ASSERT_EQ(recorded.turns.size(), 1u);
  EXPECT_EQ(recorded.turns[0].before, "closed");
  EXPECT_EQ(recorded.turns[0].after, "open");
  EXPECT_EQ(recorded.turns[0].reason, "2 failed attempts in a row");
}

TEST_F(DeliveriesTest, AJobDeletedWhileItsBatchWasOutDoesNotCostTheOthersTheirOutcome) {
  std::vector<std::string> ids = enqueue(3);
  const std::vector<Push> p = store_->claim_deliveries("stripe", route_, 60, 3).pushes;
  ASSERT_EQ(p.size(), 3u);
  ASSERT_TRUE(store_->remove("shop", ids[1]));
  std::vector<PushOutcome> outcomes;
  for (const Push& push : p) {
    outcomes.push_back(
        {push.delivery, attempt(push, 200, std::nullopt), Status::kSucceeded, milliseconds(0)});
  }
  Recorded recorded = store_->record_outcomes(outcomes, config::Breaker{});
  EXPECT_EQ(recorded.held, (std::vector<bool>{true, false, true}));
  EXPECT_EQ(status_of(ids[0]), Status::kSucceeded);
  EXPECT_EQ(status_of(ids[2]), Status::kSucceeded);
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM attempts"), "2");
  ASSERT_TRUE(store_->remove("shop", ids[0]));
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM attempts"), "1") << "a deleted job's attempts go too";
}

TEST_F(DeliveriesTest, WakeupsWakeAWaiterAtANotificationAndEveryWaiterAtStop) {
  Wakeups wakeups(db_.url(), 2, std::chrono::seconds(60));
  // The first waiter is woken as soon as the connection listens: what committed before was not
  // heard.
  std::promise<void> listening;
  std::uint64_t seen = wakeups.count();
  ASSERT_TRUE(wakeups.next(seen, [&] { listening.set_value(); }));
  ASSERT_EQ(listening.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  // From then on a notification wakes the next one, long before the minute between wake-ups.
  std::promise<void> notified;
  seen = wakeups.count();
  ASSERT_TRUE(wakeups.next(seen, [&] { notified.set_value(); }));
  db_.query("NOTIFY flare_jobs");
  EXPECT_EQ(notified.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_GT(wakeups.count(), seen);

  seen = wakeups.count();
  int woken = 0;
  EXPECT_TRUE(wakeups.next(seen - 1, [&] { ++woken; })) << "a wake-up came since: at once";
  EXPECT_EQ(woken, 1);
  std::atomic<int> stopped{0};
  EXPECT_TRUE(wakeups.next(seen, [&] { ++stopped; }));
  EXPECT_TRUE(wakeups.next(seen, [&] { ++stopped; }));
  EXPECT_FALSE(wakeups.next(seen, [&] { ++stopped; })) << "two may wait, not three";
  wakeups.stop();
  EXPECT_EQ(stopped, 2);
  EXPECT_FALSE(wakeups.next(wakeups.count(), [] {})) << "nothing waits once stopped";
}

// Commits that notify wake every listening backend: with no claim waiting, nobody listens.
TEST_F(DeliveriesTest, WakeupsListenOnlyWhileAClaimWaits) {
  // The listener's last statement: LISTEN, or UNLISTEN once it stopped.
  const std::string last_listen =
      "SELECT coalesce(string_agg(query, ','), '') FROM pg_stat_activity WHERE datname = "
      "current_database() AND backend_type = 'client backend' AND (query LIKE 'LISTEN %' OR "
      "query LIKE 'UNLISTEN %')";
  constexpr auto kEvery = std::chrono::seconds(4);
  Wakeups wakeups(db_.url(), 2, kEvery);
  std::promise<void> woken;
  ASSERT_TRUE(wakeups.next(wakeups.count(), [&] { woken.set_value(); }));
  ASSERT_EQ(woken.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(db_.scalar(last_listen), "LISTEN \"flare_jobs\"");
  // Four seconds after the last claim waited, it stops.
  EXPECT_TRUE(test::eventually([&] { return db_.scalar(last_listen) == "UNLISTEN \"flare_jobs\""; },
                               std::chrono::seconds(20)));
  // The next claim that waits is woken as soon as it listens again, before the four seconds
  // between wake-ups could have.
  auto began = std::chrono::steady_clock::now();
  std::promise<void> again;
  ASSERT_TRUE(wakeups.next(wakeups.count(), [&] { again.set_value(); }));
  EXPECT_EQ(again.get_future().wait_for(kEvery - std::chrono::seconds(1)),
            std::future_status::ready);
  EXPECT_LT(std::chrono::steady_clock::now() - began, kEvery);
  EXPECT_EQ(db_.scalar(last_listen), "LISTEN \"flare_jobs\"");
}

}  // namespace
}  // namespace flare::jobs
