// The pure parts of jobs/: the retry policy, the enqueue statement's parameters and batch plan.
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "jobs/database.hpp"
#include "jobs/enqueue.hpp"
#include "jobs/handoff.hpp"
#include "jobs/reachability.hpp"
#include "jobs/retry.hpp"

namespace flare::jobs {
namespace {

TEST(Backoff, ExponentialWithFullJitterUpToTheCap) {
  using std::chrono::milliseconds;
  EXPECT_EQ(backoff(1, 1000, 3'600'000, 0.0), milliseconds(0));
  EXPECT_EQ(backoff(1, 1000, 3'600'000, 0.9999999), milliseconds(1000));
  EXPECT_EQ(backoff(3, 1000, 3'600'000, 0.9999999), milliseconds(4000));
  EXPECT_EQ(backoff(3, 1000, 3'600'000, 0.5), milliseconds(2000));
  EXPECT_EQ(backoff(30, 1000, 3'600'000, 0.9999999), milliseconds(3'600'000));
  EXPECT_EQ(backoff(1000, 1000, 3'600'000, 0.9999999), milliseconds(3'600'000));
}

TEST(RetryDelay, BySourceOrElseByTheWorkersPolicy) {
  config::Config c;
  c.workers.retry = {5, 1000, 1000};
  c.sources.resize(1);
  c.sources[0].name = "stripe";
  c.sources[0].retry = {5, 1, 1};
  Job from_stripe;
  from_stripe.source = "stripe";
  from_stripe.attempts = 1;
  Job from_api;
  from_api.attempts = 1;
  std::int64_t longest_api_delay = 0;
  for (int i = 0; i < 20; ++i) {
    EXPECT_LE(retry_delay(c, from_stripe).count(), 1);
    longest_api_delay = std::max(longest_api_delay, retry_delay(c, from_api).count());
  }
  // Twenty draws from [0, 1000] ms, all of them 1 ms or less, would come once in 10^55 runs.
  EXPECT_GT(longest_api_delay, 1);
  EXPECT_LE(longest_api_delay, 1000);
}

TEST(Status, NamesRoundTrip) {
  for (Status s : kStatuses) EXPECT_EQ(parse_status(to_string(s)), s);
  EXPECT_FALSE(parse_status("lost"));
  EXPECT_EQ(status_names(), "queued, running, succeeded, retrying, dead, cancelled");
}

// array_send's layout: dimensions, null flag, element type, size, lower bound, then each element
// as its length and bytes (-1 and none for NULL), every integer big-endian.
TEST(BinaryArray, PostgresBinaryArrayFormat) {
  BinaryArray ints(BinaryArray::kInt4);
  ints.int4(1);
  ints.int4(-2);
  EXPECT_EQ(ints.str(), std::string("\0\0\0\1"
                                    "\0\0\0\0"
                                    "\0\0\0\x17"
                                    "\0\0\0\2"
                                    "\0\0\0\1"
                                    "\0\0\0\4\0\0\0\1"
                                    "\0\0\0\4\xff\xff\xff\xfe",
                                    36));
  BinaryArray times(BinaryArray::kInt8);
  times.int8(std::nullopt);
  EXPECT_EQ(times.str(),
            std::string("\0\0\0\1\0\0\0\1\0\0\0\x14\0\0\0\1\0\0\0\1\xff\xff\xff\xff", 24));
  BinaryArray ids(BinaryArray::kUuid);
  ids.uuid("0190a5c2-7c3e-7d4a-9b1f-0123456789AB");
  EXPECT_EQ(ids.str().substr(20), std::string("\0\0\0\x10\x01\x90\xa5\xc2\x7c\x3e\x7d\x4a\x9b\x1f"
                                              "\x01\x23\x45\x67\x89\xab",
                                              20));
  EXPECT_THROW(ids.uuid("not-a-uuid"), std::runtime_error);
}

// Jobs without a key first, then one job per key in key order (the lock order); a repeated key
// takes its first job's answer as a duplicate.
TEST(PlanBatch, KeysInOrderOncePerBatch) {
  auto job = [](std::string project, std::string key) {
    NewJob j;
    j.project_id = std::move(project);
    j.idempotency_key = std::move(key);
    return j;
  };
  std::vector<NewJob> jobs = {job("p", "b"), job("p", ""), job("p", "a"), job("p", "b"),
                              job("o", "b")};
  BatchPlan plan = plan_batch(jobs);
  EXPECT_EQ(plan.todo, (std::vector<std::size_t>{1, 4, 2, 0}));
  EXPECT_EQ(plan.first, (std::vector<std::size_t>{0, 1, 2, 0, 4}));
  std::vector<Enqueued> results(5);
  results[0] = {"id-b", true, Status::kRunning, "t", "t", true};
  answer_repeats(plan, results);
  EXPECT_EQ(results[3].job_id, "id-b");
  EXPECT_FALSE(results[3].created);
  EXPECT_FALSE(results[3].handed_over);  // its deliveries are the first job's, pushed once
}

// New deliveries do not pass waiting ones: a route is offered nothing until a claim finds no
// backlog, nor after a claim that left deliveries due, nor beyond the room; nor a job due later,
// nor one for a route these workers do not push, nor a paced route's.
TEST(Handoff, OffersWaitForAClaimWithoutABacklogAndStopAtTheRoom) {
  config::Source source;
  source.name = "github";
  source.routes.resize(2);
  source.routes[0].name = "orders";
  source.routes[1].name = "paced";
  source.routes[1].max_per_second = 10;
  Handoff handoff({&source}, 2, std::size_t{1} << 20, 30);
  NewJob j;
  j.source = "github";
  j.payload = "{}";
  j.pushed = true;
  j.deliveries = {{"orders", 5}};
  EXPECT_FALSE(handoff.offer(j));  // no claim yet
  handoff.claimed(source.routes[0], true);
  EXPECT_FALSE(handoff.offer(j));
  handoff.claimed(source.routes[0], false);
  EXPECT_TRUE(handoff.offer(j));
  EXPECT_TRUE(handoff.offer(j));
  EXPECT_FALSE(handoff.offer(j));  // two deliveries of room, both offered
  handoff.settle(j, nullptr, "", std::chrono::steady_clock::now());
  NewJob later = j;
  later.run_at_micros = 0;
  EXPECT_FALSE(handoff.offer(later));
  NewJob elsewhere = j;
  elsewhere.deliveries = {{"other", 5}};
  EXPECT_FALSE(handoff.offer(elsewhere));
  handoff.claimed(source.routes[1], false);
  NewJob paced = j;
  paced.deliveries = {{"paced", 5}};
  EXPECT_FALSE(handoff.offer(paced));
  EXPECT_TRUE(handoff.offer(j));
  handoff.stop_offers();
  handoff.settle(j, nullptr, "", std::chrono::steady_clock::now());
  EXPECT_FALSE(handoff.offer(j));  // room, but the workers are stopping
}

TEST(NewJobId, Version7WithTheRfc9562Variant) {
  std::string a = new_job_id();
  EXPECT_EQ(a.size(), 36u);
  EXPECT_EQ(a[14], '7');
  EXPECT_NE(std::string("89ab").find(a[19]), std::string::npos);
  EXPECT_EQ(new_job_ids(3).size(), 3u);
}

struct Counts final : Observer {
  void committed(std::size_t, std::chrono::steady_clock::duration) override {}
  void database_error() override { ++errors; }
  void database_unreachable(std::string_view) override { ++outages; }
  void attempted(std::string_view, std::string_view, std::string_view,
                 std::chrono::milliseconds) override {}
  void pruned(std::int64_t, std::int64_t) override {}
  int errors = 0;
  int outages = 0;
};

// A clock the test moves.
struct FakeClock {
  Reachability::Clock::time_point now{};
  std::function<Reachability::Clock::time_point()> fn() {
    return [this] { return now; };
  }
};

const Unavailable kGone("connection refused");

// After a contact finds no database the group waits, 100 ms, then twice as long after each
// failed try up to 5 s, one thread trying at a time; an outage is counted once.
TEST(Reachability, OneTryPerPauseThatDoublesUpToFiveSeconds) {
  using std::chrono::milliseconds;
  Counts counts;
  FakeClock clock;
  Reachability r("test", &counts, clock.fn());
  EXPECT_TRUE(r.may_try());
  EXPECT_TRUE(r.may_try());  // up: every caller
  r.failed(kGone);
  EXPECT_TRUE(r.down());
  for (milliseconds pause :
       {milliseconds(100), milliseconds(200), milliseconds(400), milliseconds(800),
        milliseconds(1600), milliseconds(3200), milliseconds(5000), milliseconds(5000)}) {
    EXPECT_EQ(r.next_try() - clock.now, pause);
    clock.now += pause - milliseconds(1);
    EXPECT_FALSE(r.may_try());
    clock.now += milliseconds(1);
    EXPECT_TRUE(r.may_try());
    std::thread other([&] { EXPECT_FALSE(r.may_try()); });  // one try at a time
    other.join();
    r.failed(kGone);
  }
  EXPECT_EQ(counts.outages, 1);
  EXPECT_EQ(counts.errors, 9);
  clock.now += milliseconds(5000);
  EXPECT_TRUE(r.may_try());
  r.answered();
  EXPECT_FALSE(r.down());
  EXPECT_TRUE(r.may_try());
  r.failed(kGone);  // a new outage starts from the first pause
  EXPECT_EQ(counts.outages, 2);
  EXPECT_EQ(r.next_try() - clock.now, milliseconds(100));
}

// While the database is down, only the thread whose try it is speaks for it: contacts begun
// before the outage neither end it nor lengthen the pause; an error the database itself gave
// (a deadlock, a statement timeout) is an answer.
TEST(Reachability, OnlyTheTryOfThePauseTells) {
  FakeClock clock;
  Reachability r("test", nullptr, clock.fn());
  r.failed(kGone);
  std::thread stale([&] {
    r.answered();
    r.failed(kGone);
  });
  stale.join();
  EXPECT_TRUE(r.down());
  EXPECT_EQ(r.next_try() - clock.now, std::chrono::milliseconds(100));
  clock.now += std::chrono::milliseconds(100);
  EXPECT_TRUE(r.may_try());
  r.failed(Unavailable("SQLSTATE 40P01", true));
  EXPECT_FALSE(r.down());
}

// The one reading of a database failure: no answer, a lost connection or a server going away is
// Unavailable without an answer; the transient errors the database gives are Unavailable with
// one; anything else is a refusal, named by its SQLSTATE alone.
TEST(ThrowFailure, UnavailableOrRefusedByTheSqlstate) {
  auto thrown = [](std::optional<std::string_view> sqlstate) -> std::pair<int, std::string> {
    try {
      throw_failure("claim", sqlstate, "could not connect\n\tIs the server running?\n");
    } catch (const Unavailable& e) {
      return {e.answered() ? 1 : 0, e.what()};
    } catch (const std::runtime_error& e) {
      return {2, e.what()};
    }
    return {-1, ""};
  };
  EXPECT_EQ(thrown(std::nullopt),
            (std::pair<int, std::string>{0, "claim: could not connect Is the server running?"}));
  EXPECT_EQ(thrown("08006").first, 0);
  EXPECT_EQ(thrown("57P01").first, 0);
  EXPECT_EQ(thrown("40P01").first, 1);
  EXPECT_EQ(thrown("57014").first, 1);
  EXPECT_EQ(thrown("53300").first, 1);
  EXPECT_EQ(thrown("23505"),
            (std::pair<int, std::string>{2, "claim: refused by the database (SQLSTATE 23505)"}));
}

}  // namespace
}  // namespace flare::jobs
