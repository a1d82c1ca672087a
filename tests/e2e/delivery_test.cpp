// SPEC §6 against the real binary and a real receiver: push delivery, at least once.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <map>

#include "config/config.hpp"
#include "e2e/fixtures.hpp"
#include "providers/standard.hpp"
#include "support/database.hpp"
#include "support/receiver.hpp"

namespace flare::test {
namespace {

// The decoded secret, as the receiving app holds it (unit tests check the decoding against the
// specification's signature vector).
std::string destination_key() {
  return config::parse(delivery_config("x", 1), "delivery.yaml").sources.back().routes.at(0).key;
}

Response send(Gateway& gateway, const std::string& event_id, std::string* body = nullptr) {
  std::string b = stripe_body(event_id, "charge.refunded");
  if (body != nullptr) *body = b;
  return request_once(gateway.port(), "POST", "/webhooks/pushed", stripe_headers(b), b);
}

TEST(Delivery, FailsTwiceThenSucceedsWithOneKeyAndVerifiableSignatures) {
  TestDatabase db;
  Receiver receiver([](Receiver&, const Received&, std::size_t i) {
    return Answer{i < 2 ? 500 : 200, ""};
  });
  Gateway gateway(delivery_config(db.url(), receiver.port()));
  std::string body;
  Response r = send(gateway, "evt_push_1", &body);
  ASSERT_EQ(r.status, 202) << r.body;
  std::string id = r.json("job_id");
  ASSERT_TRUE(gateway.wait_for_output(
      "delivered job=" + id + " source=pushed route=default attempt=3 outcome=succeeded",
      std::chrono::seconds(10)))
      << gateway.output();

  std::vector<Received> got = receiver.requests();
  ASSERT_EQ(got.size(), 3u);
  std::string key = destination_key();
  for (std::size_t i = 0; i < got.size(); ++i) {
    const Received& req = got[i];
    EXPECT_EQ(req.header("idempotency-key"), "flare-" + id);
    EXPECT_EQ(req.header("flare-job-id"), id);
    EXPECT_EQ(req.header("flare-attempt"), std::to_string(i + 1));
    EXPECT_EQ(req.header("flare-source"), "pushed");
    EXPECT_EQ(req.header("flare-event-id"), "evt_push_1");
    EXPECT_EQ(req.header("flare-event-type"), "stripe.charge.refunded");
    EXPECT_EQ(req.header("content-type"), "application/json");
    EXPECT_EQ(req.header("webhook-id"), id);
    EXPECT_EQ(req.body, body);  // the original bytes, unchanged
    std::int64_t ts = std::stoll(req.header("webhook-timestamp"));
    EXPECT_LE(std::abs(ts - now_unix()), 60);
    // What the receiving app checks with its copy of the destination secret.
    EXPECT_EQ(req.header("webhook-signature"),
              providers::standard_signature(key, id, ts, req.body));
  }
  auto row = db.query("SELECT status, attempts, last_error FROM jobs WHERE id = '" + id + "'");
  EXPECT_EQ(row[0][0].as<std::string>(), "succeeded");
  EXPECT_EQ(row[0][1].as<int>(), 3);
  EXPECT_EQ(row[0][2].as<std::string>(), "HTTP 500");  // the last failure stays as history
}

TEST(Delivery, AlwaysFailingIsDeadThenRetriedThroughTheApi) {
  TestDatabase db;
  std::atomic<bool> healthy{false};
  Receiver receiver([&](Receiver&, const Received&, std::size_t) {
    return Answer{healthy ? 204 : 500, ""};
  });
  Gateway gateway(delivery_config(db.url(), receiver.port()));
  std::string id = send(gateway, "evt_push_dead").json("job_id");
  ASSERT_TRUE(gateway.wait_for_output(
      "delivered job=" + id + " source=pushed route=default attempt=3 outcome=dead",
      std::chrono::seconds(10)))
      << gateway.output();
  HeaderList auth{{"Authorization", "Bearer " + kShopKey}};
  Response dead = request_once(gateway.port(), "GET", "/v1/jobs?status=dead", auth);
  EXPECT_NE(dead.body.find(id), std::string::npos) << dead.body;
  EXPECT_NE(dead.body.find("\"last_error\":\"HTTP 500\""), std::string::npos);

  healthy = true;
  ASSERT_EQ(request_once(gateway.port(), "POST", "/v1/jobs/" + id + "/retry", auth).status, 200);
  ASSERT_TRUE(gateway.wait_for_output(
      "delivered job=" + id + " source=pushed route=default attempt=4 outcome=succeeded",
      std::chrono::seconds(10)))
      << gateway.output();
  EXPECT_EQ(receiver.requests().size(), 4u);
}

// A destination that stops answering: the attempt ends at its timeout_ms, its request sent once
// on the kept-alive connection and never again on another, and the worker is free for the next.
TEST(Delivery, AnAttemptEndsAtItsTimeoutAndIsNotSentAgain) {
  TestDatabase db;
  Receiver receiver([](Receiver& self, const Received&, std::size_t i) {
    if (i > 0) self.hold();  // every request after the first goes unanswered
    return Answer{200, ""};
  });
  // One worker: the second job goes out on the connection the first one left open.
  std::string config = delivery_config(db.url(), receiver.port());
  const std::string two_workers = "concurrency: 2";
  config.replace(config.find(two_workers), two_workers.size(), "concurrency: 1");
  Gateway gateway(config);
  std::string first = send(gateway, "evt_push_answered").json("job_id");
  ASSERT_TRUE(gateway.wait_for_output(
      "delivered job=" + first + " source=pushed route=default attempt=1 outcome=succeeded",
      std::chrono::seconds(10)))
      << gateway.output();
  std::string held = send(gateway, "evt_push_held").json("job_id");
  // Three times the 2-second timeout: an attempt that outlived it would not be recorded.
  ASSERT_TRUE(gateway.wait_for_output("delivered job=" + held +
                                          " source=pushed route=default attempt=1 outcome=retrying "
                                          "error=\"no answer within 2000 ms\"",
                                      std::chrono::seconds(6)))
      << gateway.output();
  std::size_t first_attempts = 0;
  for (const Received& r : receiver.requests()) {
    first_attempts += r.header("flare-job-id") == held && r.header("flare-attempt") == "1";
  }
  EXPECT_EQ(first_attempts, 1u);
}

// A kept-alive connection the destination has closed since is not the next job's end: the job goes
// out on a new connection within its first attempt, which succeeds.
TEST(Delivery, AConnectionTheDestinationClosedIsReplacedWithinTheAttempt) {
  TestDatabase db;
  Receiver receiver([](Receiver&, const Received&, std::size_t i) {
    return Answer{200, "", i == 0};
  });
  std::string config = delivery_config(db.url(), receiver.port());
  const std::string two_workers = "concurrency: 2";
  config.replace(config.find(two_workers), two_workers.size(), "concurrency: 1");
  Gateway gateway(config);
  ASSERT_EQ(send(gateway, "evt_push_then_closed").status, 202);
  ASSERT_TRUE(receiver.wait_for_closes(1, std::chrono::seconds(10)));
  std::string next = send(gateway, "evt_push_after_close").json("job_id");
  ASSERT_TRUE(gateway.wait_for_output(
      "delivered job=" + next + " source=pushed route=default attempt=1 outcome=succeeded",
      std::chrono::seconds(10)))
      << gateway.output();
  EXPECT_EQ(receiver.requests().size(), 2u);
}

// A kept-alive connection the destination left open carries the next job: the check that it is
// still usable, made before each attempt, finds it quiet.
TEST(Delivery, AKeptAliveConnectionCarriesTheNextJob) {
  TestDatabase db;
  Receiver receiver([](Receiver&, const Received&, std::size_t) { return Answer{200}; });
  std::string config = delivery_config(db.url(), receiver.port());
  const std::string two_workers = "concurrency: 2";
  config.replace(config.find(two_workers), two_workers.size(), "concurrency: 1");
  Gateway gateway(config);
  for (const char* event : {"evt_push_first", "evt_push_second"}) {
    std::string id = send(gateway, event).json("job_id");
    ASSERT_TRUE(gateway.wait_for_output(
        "delivered job=" + id + " source=pushed route=default attempt=1 outcome=succeeded",
        std::chrono::seconds(10)))
        << gateway.output();
  }
  EXPECT_EQ(receiver.requests().size(), 2u);
  EXPECT_EQ(receiver.accepted(), 1u);
}

TEST(Delivery, ReceiverNotListeningIsRetried) {
  TestDatabase db;
  std::uint16_t closed_port;
  {
    Receiver gone([](Receiver&, const Received&, std::size_t) { return Answer{}; });
    closed_port = gone.port();
  }
  Gateway gateway(delivery_config(db.url(), closed_port));
  std::string id = send(gateway, "evt_push_refused").json("job_id");
  ASSERT_TRUE(gateway.wait_for_output(
      "delivered job=" + id + " source=pushed route=default attempt=3 outcome=dead",
      std::chrono::seconds(10)))
      << gateway.output();
  EXPECT_EQ(db.scalar("SELECT last_error FROM jobs WHERE id = '" + id + "'"),
            "connect: Connection refused");
}

TEST(Delivery, RetryAfterIsHonoured) {
  TestDatabase db;
  Receiver receiver([](Receiver&, const Received&, std::size_t i) {
    return Answer{i == 0 ? 429 : 200, "1"};
  });
  // Without Retry-After the next attempt would wait anywhere up to a minute.
  Gateway gateway(delivery_config(db.url(), receiver.port(),
                                  "{ max_attempts: 3, base_ms: 60000, max_ms: 60000 }"));
  std::string id = send(gateway, "evt_push_429").json("job_id");
  ASSERT_TRUE(receiver.wait_for(2, std::chrono::seconds(10)));
  std::vector<Received> got = receiver.requests();
  EXPECT_GE(got[1].at - got[0].at, std::chrono::milliseconds(900));
}

// HTTPS destinations are verified against the system's authorities; SSL_CERT_FILE adds one.
TEST(Delivery, HttpsDestinationIsVerified) {
  TestDatabase db;
  Certificate cert = make_self_signed_certificate();
  Receiver receiver([](Receiver&, const Received&, std::size_t) { return Answer{}; },
                    cert.cert->path(), cert.key->path());
  std::string config = delivery_config(db.url(), receiver.port());
  config.replace(config.find("http://127.0.0.1:"), 7, "https://");
  {
    // Not trusted: the attempt fails in the handshake, and nothing reaches the receiver.
    Gateway untrusted(config);
    std::string id = send(untrusted, "evt_push_untrusted").json("job_id");
    ASSERT_TRUE(untrusted.wait_for_output(
        "delivered job=" + id + " source=pushed route=default attempt=3 outcome=dead",
        std::chrono::seconds(10)))
        << untrusted.output();
    EXPECT_NE(
        db.scalar("SELECT last_error FROM jobs WHERE id = '" + id + "'").find("TLS handshake"),
        std::string::npos);
    EXPECT_TRUE(receiver.requests().empty());
  }
  setenv("SSL_CERT_FILE", cert.cert->path().c_str(), 1);
  Gateway trusted(config);
  unsetenv("SSL_CERT_FILE");
  std::string id = send(trusted, "evt_push_trusted").json("job_id");
  ASSERT_TRUE(trusted.wait_for_output(
      "delivered job=" + id + " source=pushed route=default attempt=1 outcome=succeeded",
      std::chrono::seconds(10)))
      << trusted.output();
  EXPECT_EQ(receiver.requests().size(), 1u);
}

// A worker process killed mid-attempt leaves its lease; when it runs out another worker
// process delivers the job again, with the same Idempotency-Key.
TEST(Delivery, KilledWorkerIsReplacedAfterTheLease) {
  TestDatabase db;
  Receiver receiver([](Receiver& self, const Received&, std::size_t i) {
    if (i == 0) self.hold();  // the first attempt never gets an answer
    return Answer{200, ""};
  });
  std::string config = delivery_config(db.url(), receiver.port());
  Gateway front(config, {"serve", "--no-workers"});
  std::string id = send(front, "evt_push_killed").json("job_id");
  {
    Gateway first(config, {"worker"});
    ASSERT_TRUE(receiver.wait_for(1, std::chrono::seconds(10)));
    first.kill_hard();
  }
  EXPECT_EQ(db.scalar("SELECT status FROM jobs WHERE id = '" + id + "'"), "running");
  Gateway second(config, {"worker"});
  ASSERT_TRUE(second.wait_for_output(
      "delivered job=" + id + " source=pushed route=default attempt=2 outcome=succeeded",
      std::chrono::seconds(15)))
      << second.output();
  std::vector<Received> got = receiver.requests();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].header("idempotency-key"), got[1].header("idempotency-key"));
  EXPECT_EQ(got[1].header("flare-attempt"), "2");
  receiver.release();
}

// SIGTERM while an attempt is in flight: it may finish, the process exits 0, nothing stays
// running.
TEST(Delivery, SigtermLetsTheAttemptInFlightFinish) {
  TestDatabase db;
  Receiver receiver([](Receiver& self, const Received&, std::size_t) {
    self.hold();
    return Answer{200, ""};
  });
  Gateway gateway(delivery_config(db.url(), receiver.port()));
  std::string id = send(gateway, "evt_push_sigterm").json("job_id");
  ASSERT_TRUE(receiver.wait_for(1, std::chrono::seconds(10)));
  gateway.signal(SIGTERM);
  ASSERT_TRUE(gateway.wait_for_output("stopping", std::chrono::seconds(5)));
  receiver.release();
  EXPECT_EQ(gateway.terminate(), 0);
  EXPECT_EQ(db.scalar("SELECT status FROM jobs WHERE id = '" + id + "'"), "succeeded");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM jobs WHERE status = 'running'"), "0");
}

// An attempt that outlives the drain is abandoned: its job is released, due again, the attempt
// not counted, and the process still exits 0.
TEST(Delivery, SigtermReleasesAnAttemptThatOutlivesTheDrain) {
  TestDatabase db;
  Receiver receiver([](Receiver& self, const Received&, std::size_t) {
    self.hold();
    return Answer{200, ""};
  });
  std::string config = delivery_config(db.url(), receiver.port());
  config.replace(config.find("server:\n"), 8, "server:\n  drain_timeout_ms: 300\n");
  Gateway gateway(config);
  std::string id = send(gateway, "evt_push_released").json("job_id");
  ASSERT_TRUE(receiver.wait_for(1, std::chrono::seconds(10)));
  EXPECT_EQ(gateway.terminate(), 0);
  EXPECT_NE(gateway.output().find("released job=" + id), std::string::npos) << gateway.output();
  auto row =
      db.query("SELECT status, attempts, lease_token IS NULL FROM jobs WHERE id = '" + id + "'");
  EXPECT_EQ(row[0][0].as<std::string>(), "queued");
  EXPECT_EQ(row[0][1].as<int>(), 0);
  EXPECT_TRUE(row[0][2].as<bool>());
  receiver.release();
}

// A backlog goes out in batches; a failure ends its batch, the rest is given back unattempted
// and delivered later, each event once.
TEST(Delivery, AFailureInABatchGivesTheRestBackAndEachEventArrivesOnce) {
  TestDatabase db;
  constexpr int kWarmUp = 3;
  constexpr int kEvents = 40;
  // The first attempt at the backlog fails.
  Receiver receiver([](Receiver&, const Received&, std::size_t i) {
    return Answer{i == kWarmUp ? 500 : 200, ""};
  });
  // One worker, which claims as many deliveries as its last attempts say fit in a batch's span:
  // after the warm-up's, quick ones on a kept-alive connection, many. A first attempt on a new
  // connection may be slow enough for batches of one, which would have nothing to give back.
  std::string config = delivery_config(db.url(), receiver.port());
  const std::string two_workers = "concurrency: 2";
  config.replace(config.find(two_workers), two_workers.size(), "concurrency: 1");
  TempFile file(config);
  Gateway gateway(config);
  for (int i = 0; i < kWarmUp; ++i) {
    ASSERT_EQ(send(gateway, "evt_warm_" + std::to_string(i)).status, 202);
    ASSERT_TRUE(receiver.wait_for(i + 1, std::chrono::seconds(10)));
  }
  // The backlog gathers while the route is paused, and is claimed at once when it resumes.
  RunResult paused = run_binary({"routes", "pause", "--config", file.path(), "pushed", "default"});
  ASSERT_EQ(paused.exit_code, 0) << paused.output;
  for (int i = 0; i < kEvents; ++i) {
    ASSERT_EQ(send(gateway, "evt_batch_" + std::to_string(i)).status, 202);
  }
  RunResult resumed =
      run_binary({"routes", "resume", "--config", file.path(), "pushed", "default"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  ASSERT_TRUE(receiver.wait_for(kWarmUp + kEvents + 1, std::chrono::seconds(20)));
  ASSERT_TRUE(gateway.wait_for_output("gave back ", std::chrono::seconds(5))) << gateway.output();
  std::map<std::string, int> received;
  for (const Received& r : receiver.requests()) ++received[r.header("flare-job-id")];
  EXPECT_EQ(received.size(), static_cast<std::size_t>(kWarmUp + kEvents));
  int twice = 0;
  for (const auto& [id, n] : received) twice += n == 2 ? 1 : 0;
  EXPECT_EQ(twice, 1) << "only the event answered 500 came again";
  for (const auto& [id, n] : received) {
    ASSERT_TRUE(gateway.wait_for_output(
        "delivered job=" + id + " source=pushed route=default attempt=" + std::to_string(n) +
            " outcome=succeeded",
        std::chrono::seconds(10)))
        << id;
  }
  EXPECT_EQ(db.scalar("SELECT count(*) FROM jobs WHERE status = 'succeeded'"),
            std::to_string(kWarmUp + kEvents));
  EXPECT_EQ(db.scalar("SELECT count(*) FROM attempts"), std::to_string(kWarmUp + kEvents + 1))
      << "a delivery given back has no attempt";
}

}  // namespace
}  // namespace flare::test
