// The console's own tables against the real PostgreSQL: sessions, and the traffic its charts
// read, added to by several processes and summed by bucket.
#include <gtest/gtest.h>

#include <chrono>

#include "db/store_fixture.hpp"
#include "jobs/store.hpp"
#include "support/database.hpp"
#include "support/env.hpp"

namespace flare::jobs {
namespace {

using ConsoleStoreTest = StoreFixture;

TEST_F(ConsoleStoreTest, ASessionIsFoundUntilItEndsOrExpires) {
  store_->add_session("aa", {"alice", "t1", "csrf-a"}, std::chrono::hours(1));
  store_->add_session("bb", {"alice", "t1", "csrf-b"}, std::chrono::seconds(0));
  std::optional<ConsoleSession> a = store_->session("aa");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->operator_name, "alice");
  EXPECT_EQ(a->token_sha256, "t1");
  EXPECT_EQ(a->csrf, "csrf-a");
  EXPECT_FALSE(store_->session("bb")) << "expired";
  EXPECT_FALSE(store_->session("cc"));
  store_->end_session("aa");
  EXPECT_FALSE(store_->session("aa"));
  store_->add_session("dd", {"bob", "t2", "csrf-d"}, std::chrono::hours(1));
  // The cookie's value is never stored, only what the caller hashed it to.
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM console_sessions WHERE id_sha256 = 'bb'"), "0")
      << "expired sessions go when a session begins";
}

TEST_F(ConsoleStoreTest, AnOperatorKeepsAtMostAHundredSessions) {
  for (int i = 0; i < 105; ++i) {
    std::string id = "s";
    id += std::to_string(i);
    store_->add_session(id, {"alice", "t", "c"}, std::chrono::hours(1));
  }
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM console_sessions"), "100");
  EXPECT_FALSE(store_->session("s0"));
  EXPECT_TRUE(store_->session("s104"));
}

TEST_F(ConsoleStoreTest, TrafficOfSeveralProcessesAddsUpByBucket) {
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::int64_t minute = now - now % 60;
  TrafficRow received{minute, "stripe", "", 3, 1, 2, 0, 0, {}};
  TrafficRow attempts{minute, "stripe", "orders", 0, 0, 0, 4, 1, {}};
  attempts.durations[0] = 3;
  attempts.durations[11] = 2;
  store_->add_traffic({received, attempts});
  store_->add_traffic({received, attempts});  // another process, the same minute
  TrafficRow old = received;
  old.minute = minute - 2 * 86400;
  store_->add_traffic({old});
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM traffic"), "2") << "older than 26 hours: removed";

  std::vector<TrafficRow> rows =
      store_->traffic({"stripe"}, std::chrono::hours(1), std::chrono::minutes(5));
  ASSERT_EQ(rows.size(), 2u);
  const TrafficRow& r = rows[0].route.empty() ? rows[0] : rows[1];
  const TrafficRow& a = rows[0].route.empty() ? rows[1] : rows[0];
  EXPECT_EQ(r.minute % 300, 0);
  EXPECT_EQ(r.received, 6);
  EXPECT_EQ(r.duplicates, 2);
  EXPECT_EQ(r.rejected, 4);
  EXPECT_EQ(a.succeeded, 8);
  EXPECT_EQ(a.failed, 2);
  EXPECT_EQ(a.durations[0], 6);
  EXPECT_EQ(a.durations[11], 4);
  EXPECT_TRUE(store_->traffic({"github"}, std::chrono::hours(1), std::chrono::minutes(5)).empty());
}

}  // namespace
}  // namespace flare::jobs
