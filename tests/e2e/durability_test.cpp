// What the gateway promises when things break under load: an event answered 2xx is stored, once;
// no event is stored twice; and a provider's redelivery afterwards is answered 200 with the job
// the first delivery made. Checked with the gateway killed (SIGKILL) and PostgreSQL crashed
// (an immediate shutdown) while clients keep sending, and with a primary crashed and its
// synchronous standby promoted.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "e2e/fixtures.hpp"
#include "support/cluster.hpp"
#include "support/database.hpp"
#include "support/env.hpp"
#include "support/wait.hpp"

namespace flare::test {
namespace {

// Clients each sending events on a kept-alive connection (a new one after a failure), recording
// every answer, until stopped.
class Load {
 public:
  Load(std::uint16_t port, int clients, const std::string& prefix) {
    for (int c = 0; c < clients; ++c) {
      threads_.emplace_back([this, port, c, prefix] { send(port, prefix + std::to_string(c)); });
    }
  }
  ~Load() { stop(); }

  void stop() {
    stopping_ = true;
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  // Waits until `n` more answers with `status` (2 for any 2xx) have come; false after 30 s.
  bool wait_for(int status, std::size_t n) {
    std::unique_lock lock(mutex_);
    std::size_t target = count(status) + n;
    return changed_.wait_for(lock, std::chrono::seconds(30),
                             [&] { return count(status) >= target; });
  }

  // Every event sent, and the job id a 2xx answer gave it ("" when it got none).
  std::map<std::string, std::string> events() {
    std::lock_guard lock(mutex_);
    return events_;
  }
  std::size_t answered(int status) {
    std::lock_guard lock(mutex_);
    return count(status);
  }

 private:
  // As a provider does, an event not answered 2xx is sent again before the next one.
  void send(std::uint16_t port, const std::string& client) {
    std::unique_ptr<HttpClient> http;
    int n = 0;
    while (!stopping_) {
      std::string id = "evt_" + client + "_" + std::to_string(n);
      std::string body = stripe_body(id);
      {
        std::lock_guard lock(mutex_);
        events_[id];
      }
      Response r;
      try {
        if (!http) http = std::make_unique<HttpClient>(port);
        r = http->request("POST", "/webhooks/stripe", stripe_headers(body), body);
      } catch (const std::exception&) {
        http.reset();  // the gateway went away: this event's answer is lost with it
        continue;
      }
      std::lock_guard lock(mutex_);
      if (r.status / 100 == 2) {
        events_[id] = r.json("job_id");
        ++n;
      }
      ++statuses_[r.status / 100 == 2 ? 2 : r.status];
      changed_.notify_all();
    }
  }

  std::size_t count(int status) { return statuses_[status]; }

  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, std::string> events_;
  std::map<int, std::size_t> statuses_;
  std::vector<std::thread> threads_;
};

// Every acknowledged event has exactly its one row, under the id it was answered with; no event
// has two; then each event is delivered again: 200 with the original job for an acknowledged
// one, and afterwards every event sent has exactly one row.
// `url` names the database the jobs are in.
void expect_each_event_once(const std::string& url, Gateway& gateway,
                            const std::map<std::string, std::string>& events) {
  auto query = [&url](const std::string& sql) {
    pqxx::connection c(url);
    return pqxx::nontransaction(c).exec(sql);
  };
  std::map<std::string, std::pair<int, std::string>> rows;  // event id -> count, a job id
  for (const auto& row : query("SELECT event_id, count(*), min(id::text) FROM jobs "
                               "GROUP BY event_id")) {
    rows[row[0].as<std::string>()] = {row[1].as<int>(), row[2].as<std::string>()};
  }
  std::size_t acknowledged = 0, missing = 0, doubled = 0, stored = 0;
  for (const auto& [id, job] : events) {
    auto it = rows.find(id);
    int count = it == rows.end() ? 0 : it->second.first;
    stored += count > 0;
    doubled += count > 1;
    if (job.empty()) continue;
    ++acknowledged;
    missing += count == 0;
    if (count == 1) {
      EXPECT_EQ(it->second.second, job) << id;
    }
  }
  std::cout << "[ durable  ] sent " << events.size() << ", acknowledged " << acknowledged
            << ", stored " << stored << ", missing " << missing << ", doubled " << doubled << "\n";
  EXPECT_GT(acknowledged, 0u);
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(doubled, 0u);

  HttpClient http(gateway.port());
  for (const auto& [id, job] : events) {
    std::string body = stripe_body(id);
    Response again = http.request("POST", "/webhooks/stripe", stripe_headers(body), body);
    ASSERT_EQ(again.status / 100, 2) << id << ": " << again.body;
    if (!job.empty()) {
      EXPECT_EQ(again.status, 200) << id;
      EXPECT_EQ(again.json("job_id"), job) << id;
    }
  }
  auto count = [&](const std::string& sql) { return query(sql)[0][0].as<std::size_t>(); };
  EXPECT_EQ(count("SELECT count(*) FROM jobs"), events.size());
  EXPECT_EQ(count("SELECT count(DISTINCT event_id) FROM jobs"), events.size());
}

TEST(Durability, GatewayKilledUnderLoadLosesAndDoublesNothing) {
  TestDatabase db;
  std::string config = gateway_config(db.url());
  std::map<std::string, std::string> events;
  for (int round = 0; round < 3; ++round) {
    Gateway gateway(config);
    Load load(gateway.port(), 16, "kill" + std::to_string(round) + "c");
    ASSERT_TRUE(load.wait_for(2, 1000));
    gateway.kill_hard();
    load.stop();
    auto sent = load.events();
    events.insert(sent.begin(), sent.end());
  }
  Gateway restarted(config);
  expect_each_event_once(db.url(), restarted, events);
}

TEST(Durability, DatabaseCrashedUnderLoadLosesAndDoublesNothing) {
  TestDatabase db;
  Gateway gateway(gateway_config(db.url()));
  Load load(gateway.port(), 16, "crash_c");
  ASSERT_TRUE(load.wait_for(2, 1000));
  {
    PostgresDown crash("crash");
    // While it is down: 503, and the gateway stays up.
    ASSERT_TRUE(load.wait_for(503, 100));
    crash.end();
  }
  // Back without a restart of the gateway.
  ASSERT_TRUE(load.wait_for(2, 1000));
  load.stop();
  expect_each_event_once(db.url(), gateway, load.events());
}

// A primary and a synchronous standby (a commit is on both before it is answered), the gateway's
// URL naming both (target_session_attrs=read-write). Under load the primary crashes and the
// standby is promoted: the gateway answers 2xx again within seconds, without a restart, and
// every event it answered 2xx is on the new primary, once.
TEST(Durability, FailoverToAPromotedStandbyLosesAndDoublesNothing) {
  OwnServer primary = OwnServer::primary();
  primary.execute("postgres", "CREATE DATABASE flare");
  OwnServer standby = OwnServer::standby_of(primary);
  primary.execute("postgres", "ALTER SYSTEM SET synchronous_standby_names = '*'");
  primary.execute("postgres", "SELECT pg_reload_conf()");
  ASSERT_TRUE(eventually(
      [&] {
        return primary.scalar("postgres",
                              "SELECT string_agg(sync_state, ',') FROM pg_stat_replication") ==
               "sync";
      },
      std::chrono::seconds(30)))
      << "the standby never became synchronous";
  std::string url = "host=" + primary.host() + "," + standby.host() +
                    " dbname=flare user=postgres target_session_attrs=read-write";
  Gateway gateway(gateway_config(url));
  Load load(gateway.port(), 16, "failover_c");
  ASSERT_TRUE(load.wait_for(2, 1000));
  primary.crash();
  standby.promote();
  auto promoted = std::chrono::steady_clock::now();
  ASSERT_TRUE(load.wait_for(2, 1));
  auto recovered = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - promoted);
  ASSERT_TRUE(load.wait_for(2, 1000));
  load.stop();
  std::cout << "[ failover ] 2xx again " << recovered.count() << " ms after the promotion; "
            << load.answered(503) << " answered 503 meanwhile\n";
  EXPECT_LT(recovered, std::chrono::seconds(10));
  expect_each_event_once(standby.url("flare"), gateway, load.events());
}

}  // namespace
}  // namespace flare::test
