#include "jobs/store.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <barrier>
#include <chrono>
#include <thread>

#include "db/store_fixture.hpp"
#include "jobs/pipeline.hpp"
#include "support/database.hpp"
#include "support/env.hpp"

namespace flare::jobs {
namespace {

NewJob job(const std::string& key, const std::string& project = "shop") {
  NewJob j;
  j.project_id = project;
  j.idempotency_key = key;
  j.type = "stripe.invoice.paid";
  j.payload = std::string("{\"id\":\"x\"}\0\xff binary", 19);
  j.content_type = "application/json";
  j.source = "stripe";
  j.event_id = key.substr(key.find(':') + 1);
  j.max_attempts = 9;
  return j;
}

using StoreTest = StoreFixture;

// The pipeline's answer to the oldest batch sent, once it has come.
std::vector<Enqueued> receive(Pipeline& pipeline, const std::vector<NewJob>& jobs) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!pipeline.oldest_answered()) {
    pollfd readable{pipeline.socket(), POLLIN, 0};
    EXPECT_GE(poll(&readable, 1, 1000), 0);
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "no answer from the pipeline";
      return {};
    }
  }
  return pipeline.receive(jobs);
}

TEST(Migrations, ApplyOnceThenNothing) {
  test::TestDatabase db;
  Store store(db.url());
  EXPECT_EQ(store.schema_version(), 0);
  EXPECT_EQ(store.migrate(test::partitions()), Store::latest_version());
  EXPECT_EQ(store.migrate(), 0);
  EXPECT_EQ(store.schema_version(), Store::latest_version());
  // (A partitioned table's index reads "ON ONLY" the parent.)
  EXPECT_EQ(db.scalar("SELECT replace(indexdef, ' ON ONLY ', ' ON ') FROM pg_indexes WHERE "
                      "indexname = 'ix_jobs_idempotency'"),
            "CREATE UNIQUE INDEX ix_jobs_idempotency ON public.jobs USING btree (project_id, "
            "idempotency_key) WHERE (idempotency_key IS NOT NULL)");
  EXPECT_EQ(db.scalar("SELECT string_agg(column_name || ' ' || collation_name, ', ' ORDER BY "
                      "column_name) FROM information_schema.columns WHERE table_name = 'jobs' "
                      "AND collation_name IS NOT NULL AND column_name IN ('project_id', "
                      "'idempotency_key')"),
            "idempotency_key C, project_id C");
  // Every index of the table: the listing is served by the primary key (job ids are
  // time-ordered), not an index of its own, and only jobs that end write ix_jobs_ended.
  EXPECT_EQ(db.scalar("SELECT string_agg(indexname, ', ' ORDER BY indexname) FROM pg_indexes "
                      "WHERE tablename = 'jobs'"),
            "ix_jobs_claim, ix_jobs_ended, ix_jobs_idempotency, ix_jobs_lease, jobs_pkey");
}

TEST(Migrations, PartitionedByProjectWithTheSameIndexesAndKeys) {
  test::TestDatabase db;
  Store store(db.url());
  EXPECT_EQ(store.migrate(4), Store::latest_version());
  EXPECT_EQ(db.scalar("SELECT relkind FROM pg_class WHERE oid = 'jobs'::regclass"), "p");
  // Four partitions, each vacuumed as the plain table is.
  EXPECT_EQ(db.scalar("SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                      "WHERE i.inhparent = 'jobs'::regclass AND "
                      "'autovacuum_vacuum_threshold=20000' = ANY(c.reloptions)"),
            "4");
  // The indexes by the names later migrations use.
  EXPECT_EQ(db.scalar("SELECT string_agg(indexname, ', ' ORDER BY indexname) FROM pg_indexes "
                      "WHERE tablename = 'jobs'"),
            "ix_jobs_claim, ix_jobs_ended, ix_jobs_idempotency, ix_jobs_lease, jobs_pkey");
  EXPECT_EQ(db.scalar("SELECT collation_name FROM information_schema.columns WHERE table_name = "
                      "'jobs' AND column_name = 'idempotency_key'"),
            "C");
  // A key is one job in every partition's worth of projects.
  for (const std::string project : {"a", "b", "c", "d", "e"}) {
    NewJob j = job("webhook:evt_1", project);
    EXPECT_TRUE(store.enqueue({j})[0].created);
    EXPECT_FALSE(store.enqueue({j})[0].created);
  }
  EXPECT_EQ(db.scalar("SELECT count(DISTINCT tableoid) > 1 FROM jobs"), "t");
  // A job deleted through the partitioned table takes its deliveries and their attempts along.
  db.query(
      "INSERT INTO deliveries (project_id, job_id, route, source, attempt_allowance, "
      "max_attempts) SELECT project_id, id, 'orders', 'stripe', 1, 1 FROM jobs");
  db.query(
      "INSERT INTO attempts (project_id, job_id, route, number, started_at, duration_ms) "
      "SELECT project_id, job_id, route, 1, now(), 5 FROM deliveries");
  db.query("DELETE FROM jobs WHERE project_id IN ('a', 'b')");
  EXPECT_EQ(db.scalar("SELECT string_agg(DISTINCT project_id, ',' ORDER BY project_id) FROM "
                      "deliveries"),
            "c,d,e");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM attempts"), "3");
  // Migrating again leaves the layout alone.
  EXPECT_EQ(store.migrate(4), 0);
}

TEST_F(StoreTest, ClaimTakesTheBestOfDueJobsAndExpiredLeasesByPriority) {
  NewJob low = job("k:low"), expired = job("k:expired"), high = job("k:high");
  expired.priority = 5;
  high.priority = 10;
  std::string low_id = store_->enqueue({low})[0].job_id;
  std::string expired_id = store_->enqueue({expired})[0].job_id;
  std::string high_id = store_->enqueue({high})[0].job_id;
  db_.query(
      "UPDATE jobs SET status = 'running', attempts = 1, lease_token = gen_random_uuid(), "
      "locked_until = now() - interval '1 second' WHERE id = '" +
      expired_id + "'");
  std::vector<Job> first = store_->claim({"shop", {}, {}}, 2, 60);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].id, high_id);
  EXPECT_EQ(first[1].id, expired_id);
  EXPECT_EQ(first[1].attempts, 2) << "the expired attempt counts";
  // What the first claim found and did not take is free at once.
  std::vector<Job> second = store_->claim({"shop", {}, {}}, 5, 60);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].id, low_id);
  EXPECT_TRUE(store_->claim({"shop", {}, {}}, 5, 60).empty());
}

TEST_F(StoreTest, AClaimLooksForLeasesThatRanOutOnceASecond) {
  std::string id = store_->enqueue({job("k:leased")})[0].job_id;
  ASSERT_EQ(store_->claim({"shop", {}, {}}, 1, 60).at(0).id, id);
  db_.query("UPDATE jobs SET locked_until = now() - interval '1 second' WHERE id = '" + id + "'");
  auto looked = std::chrono::steady_clock::now();
  // The claim just now looked: the next ones within the second do not.
  EXPECT_TRUE(store_->claim({"shop", {}, {}}, 1, 60).empty());
  std::vector<Job> again;
  while (again.empty() && std::chrono::steady_clock::now() - looked < std::chrono::seconds(5)) {
    again = store_->claim({"shop", {}, {}}, 1, 60);
  }
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].id, id);
  EXPECT_EQ(again[0].attempts, 2);
  EXPECT_GE(std::chrono::steady_clock::now() - looked, std::chrono::milliseconds(900));
}

TEST_F(StoreTest, NewThenDuplicate) {
  auto first = store_->enqueue({job("webhook:evt_1")});
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(first[0].created);
  auto second = store_->enqueue({job("webhook:evt_1")});
  EXPECT_FALSE(second[0].created);
  EXPECT_EQ(second[0].job_id, first[0].job_id);

  auto row = db_.query(
      "SELECT id::text, project_id, idempotency_key, type, payload, content_type,"
      " source, event_id, status, attempts, max_attempts FROM jobs");
  ASSERT_EQ(row.size(), 1u);
  EXPECT_EQ(row[0][0].as<std::string>(), first[0].job_id);
  EXPECT_EQ(row[0][1].as<std::string>(), "shop");
  EXPECT_EQ(row[0][2].as<std::string>(), "webhook:evt_1");
  EXPECT_EQ(row[0][3].as<std::string>(), "stripe.invoice.paid");
  EXPECT_EQ(pqxx::binarystring(row[0][4]).str(), job("webhook:evt_1").payload);
  EXPECT_EQ(row[0][5].as<std::string>(), "application/json");
  EXPECT_EQ(row[0][6].as<std::string>(), "stripe");
  EXPECT_EQ(row[0][7].as<std::string>(), "evt_1");
  EXPECT_EQ(row[0][8].as<std::string>(), "queued");
  EXPECT_EQ(row[0][9].as<int>(), 0);
  EXPECT_EQ(row[0][10].as<int>(), 9);
}

TEST_F(StoreTest, KeysArePerProject) {
  auto a = store_->enqueue({job("payment:42", "a"), job("payment:42", "b")});
  EXPECT_TRUE(a[0].created);
  EXPECT_TRUE(a[1].created);
  EXPECT_NE(a[0].job_id, a[1].job_id);
  // The pipeline's lookup of keys, planned once, pairs each key with its project.
  Pipeline pipelined(db_.url(), *store_);
  std::vector<NewJob> batch = {job("payment:42", "c"), job("payment:42", "b")};
  pipelined.send(batch);
  auto again = receive(pipelined, batch);
  EXPECT_TRUE(again[0].created);
  EXPECT_FALSE(again[1].created);
  EXPECT_EQ(again[1].job_id, a[1].job_id);
}

// A batch the committer offered to its workers, stored by the pipeline, then again through the
// store's connection with the same ids, as after a lost answer: the job is still handed over
// when its delivery holds the batch's lease token, and only then.
TEST_F(StoreTest, AJobHandedOverByATryWhoseAnswerWasLostIsStillHandedOver) {
  NewJob pushed = job("webhook:handed");
  pushed.pushed = true;
  pushed.deliveries = {{"orders", 5}};
  std::vector<NewJob> batch = {pushed};
  std::string token = new_job_id();
  Pipeline pipelined(db_.url(), *store_);
  pipelined.send(batch, Handing{{true}, token, 30});
  std::vector<Enqueued> first = receive(pipelined, batch);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(first[0].handed_over);
  auto again = store_->enqueue(batch, {first[0].job_id}, token);
  EXPECT_TRUE(again[0].created);
  EXPECT_TRUE(again[0].handed_over);
  EXPECT_FALSE(store_->enqueue(batch, {first[0].job_id}, new_job_id())[0].handed_over);
  EXPECT_FALSE(store_->enqueue(batch, {first[0].job_id})[0].handed_over);
}

TEST_F(StoreTest, BatchWithInBatchDuplicate) {
  NewJob quoted = job(R"(webhook:a "quoted\" key, {braces})");
  auto r = store_->enqueue({job("webhook:e1"), job("webhook:e2"), job("webhook:e1"), quoted});
  ASSERT_EQ(r.size(), 4u);
  EXPECT_TRUE(r[0].created);
  EXPECT_TRUE(r[1].created);
  EXPECT_FALSE(r[2].created);
  EXPECT_EQ(r[2].job_id, r[0].job_id);
  EXPECT_TRUE(r[3].created);
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM jobs"), "3");
  EXPECT_EQ(db_.scalar("SELECT idempotency_key FROM jobs WHERE id = '" + r[3].job_id + "'"),
            quoted.idempotency_key);
}

// Deliveries have no foreign key to their job (migration 12): a trigger deletes them with it,
// and their attempts with them, whatever deletes the job.
TEST_F(StoreTest, ADeletedJobTakesItsDeliveriesAndTheirAttemptsAlong) {
  auto stored = store_->enqueue({job("webhook:kept"), job("webhook:deleted")});
  for (const Enqueued& e : stored) {
    db_.query(
        "INSERT INTO deliveries (project_id, job_id, route, source, attempt_allowance, "
        "max_attempts) VALUES ('shop', '" +
        e.job_id + "', 'orders', 'stripe', 1, 1), ('shop', '" + e.job_id +
        "', 'audit', 'stripe', 1, 1)");
    db_.query(
        "INSERT INTO attempts (project_id, job_id, route, number, started_at, duration_ms) "
        "VALUES ('shop', '" +
        e.job_id + "', 'orders', 1, now(), 5)");
  }
  db_.query("DELETE FROM jobs WHERE id = '" + stored[1].job_id + "'");
  EXPECT_EQ(db_.scalar("SELECT string_agg(DISTINCT job_id::text, ',') FROM deliveries"),
            stored[0].job_id);
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM deliveries"), "2");
  EXPECT_EQ(db_.scalar("SELECT string_agg(job_id::text, ',') FROM attempts"), stored[0].job_id);
}

TEST_F(StoreTest, DeleteFreesTheKey) {
  auto first = store_->enqueue({job("webhook:gone")});
  db_.query("DELETE FROM jobs WHERE id = '" + first[0].job_id + "'");
  auto again = store_->enqueue({job("webhook:gone")});
  EXPECT_TRUE(again[0].created);
  EXPECT_NE(again[0].job_id, first[0].job_id);
}

// Two connections insert the same keys at the same moment, many times over: each key ends up
// as one row, and both callers are told its id, exactly one of them "created".
TEST_F(StoreTest, TwoConnectionsRaceOnOneKey) {
  constexpr int kRounds = 50;
  Store other(db_.url());
  std::vector<Enqueued> mine(kRounds), theirs(kRounds);
  std::barrier sync(2);
  auto racer = [&](Store& store, std::vector<Enqueued>& out) {
    for (int i = 0; i < kRounds; ++i) {
      sync.arrive_and_wait();
      out[i] = store.enqueue({job("webhook:race-" + std::to_string(i))})[0];
    }
  };
  std::thread t([&] { racer(other, theirs); });
  racer(*store_, mine);
  t.join();
  for (int i = 0; i < kRounds; ++i) {
    EXPECT_EQ(mine[i].job_id, theirs[i].job_id) << i;
    EXPECT_NE(mine[i].created, theirs[i].created) << i;
  }
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM jobs"), std::to_string(kRounds));
}

// Version-7 UUIDs: the time in milliseconds leads, then the microseconds within it, so later
// jobs get larger ids.
TEST_F(StoreTest, JobIdsAreTimeOrderedUuids) {
  auto first = store_->enqueue({job("webhook:t1")})[0].job_id;
  std::int64_t sub_ms = std::stoll(first.substr(15, 3), nullptr, 16);
  EXPECT_LT(sub_ms, 1000) << first;  // microseconds, not random bits
  std::int64_t first_us =
      std::stoll(first.substr(0, 8) + first.substr(9, 4), nullptr, 16) * 1000 + sub_ms;
  auto now_us = [] {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  // The ids' clock counts microseconds: the second id is made once it has moved on.
  while (now_us() <= first_us) std::this_thread::yield();
  auto second = store_->enqueue({job("webhook:t2")})[0].job_id;
  EXPECT_LT(first, second);
  for (const std::string& id : {first, second}) {
    ASSERT_EQ(id.size(), 36u) << id;
    EXPECT_EQ(id[14], '7') << id;                                          // version
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;  // variant
  }
  // The id's time is the insert's, to within a minute.
  EXPECT_EQ(db_.scalar("SELECT abs(extract(epoch FROM now()) * 1000 - ('x' || replace(left('" +
                       second + "', 13), '-', ''))::bit(48)::bigint) < 60000"),
            "t");
}

// A batch whose answer was lost with its connection is sent again with the same ids. Each job
// is then reported as created (by the first attempt), and nothing is stored twice: neither the
// keyed job nor the one without a key.
TEST_F(StoreTest, ReplayedBatchIsAnsweredAsCreated) {
  std::vector<std::string> ids = {"01900000-0000-7000-8000-000000000001",
                                  "01900000-0000-7000-8000-000000000002"};
  NewJob bare = job("");
  bare.source.clear();
  bare.event_id.clear();
  auto first = store_->enqueue({job("webhook:lost"), bare}, ids);
  auto again = store_->enqueue({job("webhook:lost"), bare}, ids);
  ASSERT_EQ(again.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_TRUE(first[i].created) << i;
    EXPECT_TRUE(again[i].created) << i;
    EXPECT_EQ(again[i].job_id, ids[i]) << i;
    EXPECT_EQ(again[i].created_at, first[i].created_at) << i;
  }
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM jobs"), "2");
  // Another delivery of the key is a duplicate of the stored job.
  auto other = store_->enqueue({job("webhook:lost")})[0];
  EXPECT_FALSE(other.created);
  EXPECT_EQ(other.job_id, ids[0]);
}

// A batch whose jobs all have keys checks only the key index for conflicts; replayed, its job
// is still found under its own id.
TEST_F(StoreTest, ReplayedKeyedBatchIsAnsweredAsCreated) {
  std::vector<std::string> ids = {"01900000-0000-7000-8000-000000000003"};
  auto first = store_->enqueue({job("webhook:keyed")}, ids)[0];
  auto again = store_->enqueue({job("webhook:keyed")}, ids)[0];
  EXPECT_TRUE(first.created);
  EXPECT_TRUE(again.created);
  EXPECT_EQ(again.job_id, first.job_id);
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM jobs"), "1");
}

// Two batches in the pipeline at once, sharing a key: the second runs after the first commits,
// so it finds the first one's job.
TEST_F(StoreTest, PipelineAnswersInOrder) {
  Pipeline pipelined(db_.url(), *store_);
  std::vector<NewJob> first = {job("webhook:p1"), job("webhook:p2"), job("webhook:p1")};
  std::vector<NewJob> second = {job("webhook:p2"), job("webhook:p3")};
  pipelined.send(first);
  pipelined.send(second);
  EXPECT_EQ(pipelined.sent(), 2u);
  auto a = receive(pipelined, first);
  auto b = receive(pipelined, second);
  EXPECT_EQ(pipelined.sent(), 0u);
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_TRUE(a[0].created);
  EXPECT_TRUE(a[1].created);
  EXPECT_FALSE(a[2].created);
  EXPECT_EQ(a[2].job_id, a[0].job_id);
  EXPECT_FALSE(b[0].created);
  EXPECT_EQ(b[0].job_id, a[1].job_id);
  EXPECT_TRUE(b[1].created);
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM jobs"), "3");
}

// A batch the database refuses is refused alone: the batch sent behind it commits.
TEST_F(StoreTest, PipelineRefusalStopsOneBatch) {
  Pipeline pipelined(db_.url(), *store_);
  std::vector<NewJob> bad = {job("webhook:ok-but-with-a-bad-one"), job("webhook:bad")};
  bad[1].max_attempts = 0;  // outside the table's CHECK
  std::vector<NewJob> good = {job("webhook:good")};
  pipelined.send(bad);
  pipelined.send(good);
  EXPECT_THROW(receive(pipelined, bad), std::runtime_error);
  auto r = receive(pipelined, good);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_TRUE(r[0].created);
  EXPECT_EQ(db_.scalar("SELECT string_agg(idempotency_key, ',') FROM jobs"), "webhook:good");
}

// A batch that stores jobs wakes the workers waiting for jobs (LISTEN/NOTIFY) with its commit;
// a batch of duplicates stores nothing and wakes nobody.
TEST_F(StoreTest, StoredJobsWakeWaitingWorkers) {
  Store listener(db_.url());
  EXPECT_FALSE(listener.wait_for_jobs(std::chrono::milliseconds(0)));  // listens from now on
  Pipeline pipelined(db_.url(), *store_);
  std::vector<NewJob> batch = {job("webhook:wake-1"), job("webhook:wake-2")};
  pipelined.send(batch);
  ASSERT_TRUE(receive(pipelined, batch).at(0).created);
  EXPECT_TRUE(listener.wait_for_jobs(std::chrono::seconds(10)));
  pipelined.send(batch);
  ASSERT_FALSE(receive(pipelined, batch).at(0).created);
  // A notification reaches a listener within milliseconds of its commit; none comes.
  EXPECT_FALSE(listener.wait_for_jobs(std::chrono::milliseconds(200)));
  // The next commit that stores a job is the one wake-up still to come.
  store_->enqueue({job("webhook:wake-3")});
  EXPECT_TRUE(listener.wait_for_jobs(std::chrono::seconds(10)));
  EXPECT_FALSE(listener.wait_for_jobs(std::chrono::milliseconds(0)));
}

// The pipeline's connection is cut while its statement waits on a lock: the answer is lost,
// and receive() stores the batch another way, each job once.
TEST_F(StoreTest, PipelineLostAnswerIsStoredOnce) {
  Pipeline pipelined(db_.url(), *store_);
  std::vector<NewJob> warm_up = {job("webhook:warm-up")};
  pipelined.send(warm_up);  // connects and prepares before the lock is taken
  ASSERT_TRUE(receive(pipelined, warm_up).at(0).created);
  pqxx::connection blocker(db_.url());
  pqxx::work lock_tx(blocker);
  lock_tx.exec("LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE");
  std::vector<NewJob> batch = {job("webhook:cut-1"), job("webhook:cut-2")};
  pipelined.send(batch);
  int waiting = db_.wait_until_blocked();
  ASSERT_NE(waiting, 0) << "the pipeline's statement never waited on the lock";
  EXPECT_EQ(db_.scalar("SELECT pg_terminate_backend(" + std::to_string(waiting) + ")"), "t");
  lock_tx.abort();
  auto r = receive(pipelined, batch);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_TRUE(r[0].created);
  EXPECT_TRUE(r[1].created);
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM jobs"), "3");
  // The pipeline reconnects for the next batch.
  std::vector<NewJob> next = {job("webhook:cut-1")};
  pipelined.send(next);
  auto again = receive(pipelined, next);
  EXPECT_FALSE(again[0].created);
  EXPECT_EQ(again[0].job_id, r[0].job_id);
}

TEST(StoreUnreachable, ThrowsUnavailable) {
  Store store("host=/nonexistent-socket-dir dbname=x");
  EXPECT_THROW(store.enqueue({job("webhook:x")}), Unavailable);
  Pipeline pipeline("host=/nonexistent-socket-dir dbname=x", store);
  std::vector<NewJob> batch = {job("webhook:x")};
  pipeline.send(batch);
  EXPECT_TRUE(pipeline.oldest_answered());
  EXPECT_THROW(pipeline.receive(batch), Unavailable);
  EXPECT_THROW(store.schema_version(), Unavailable);
}

}  // namespace
}  // namespace flare::jobs
