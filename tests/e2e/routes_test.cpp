// Routes (docs/delivery.md) against the real binary and real receivers: one event to several
// destinations by its type, a delivery per route, and every attempt on record.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "e2e/fixtures.hpp"
#include "support/database.hpp"
#include "support/receiver.hpp"
#include "support/wait.hpp"

namespace flare::test {
namespace {

const HeaderList kAuth{{"Authorization", "Bearer " + kShopKey}};

// A route of the source "routed" to a receiver on `port`, with a 2 s timeout unless `extra`,
// which adds keys (indented by 8), sets one.
std::string route(const std::string& name, std::uint16_t port, const std::string& extra = "") {
  std::string timeout =
      extra.find("timeout_ms") == std::string::npos ? "        timeout_ms: 2000\n" : "";
  return "      - name: " + name + "\n        url: http://127.0.0.1:" + std::to_string(port) + "/" +
         name + "\n        secret: \"" + kDestinationSecret + "\"\n" + timeout + extra;
}

// gateway_config plus the Stripe-signed source "routed" (project shop) with `routes`; workers
// as delivery_config's.
std::string routed_config(const std::string& database_url, const std::string& routes,
                          const std::string& workers = "  concurrency: 2\n") {
  std::string config = gateway_config(database_url);
  const std::string section = "workers:\n  lease_seconds: 30\n";
  config.replace(config.find(section), section.size(),
                 "workers:\n" + workers + "  lease_seconds: 3\n  poll_interval_ms: 200\n");
  return config + "  - name: routed\n    provider: stripe\n    project: shop\n    secrets: [\"" +
         kStripeSecret + "\"]\n    retry: { max_attempts: 3, base_ms: 1, max_ms: 1 }\n" +
         "    routes:\n" + routes;
}

Response send(Gateway& gateway, const std::string& event_id, const std::string& type) {
  std::string b = stripe_body(event_id, type);
  return request_once(gateway.port(), "POST", "/webhooks/routed", stripe_headers(b), b);
}

std::string delivered(const std::string& id, const std::string& route, int attempt,
                      const std::string& outcome) {
  return "delivered job=" + id + " source=routed route=" + route +
         " attempt=" + std::to_string(attempt) + " outcome=" + outcome;
}

std::set<std::string> event_types(Receiver& receiver) {
  std::set<std::string> out;
  for (const Received& r : receiver.requests()) out.insert(r.header("flare-event-type"));
  return out;
}

rapidjson::Document job_view(Gateway& gateway, const std::string& id) {
  Response r = request_once(gateway.port(), "GET", "/v1/jobs/" + id, kAuth);
  EXPECT_EQ(r.status, 200) << r.body;
  rapidjson::Document doc;
  doc.Parse(r.body.c_str());
  EXPECT_FALSE(doc.HasParseError()) << r.body;
  return doc;
}

const rapidjson::Value& delivery_of(const rapidjson::Document& view, const std::string& route) {
  for (const auto& d : view["deliveries"].GetArray()) {
    if (d["route"].GetString() == route) return d;
  }
  throw std::runtime_error("no delivery to " + route);
}

TEST(Routes, EachEventGoesToTheRoutesWhoseTypesTakeIt) {
  TestDatabase db;
  auto ok = [](Receiver&, const Received&, std::size_t) { return Answer{200, ""}; };
  Receiver billing(ok), crm(ok), warehouse(ok);
  Gateway gateway(routed_config(
      db.url(),
      route("billing", billing.port(), "        types: [\"invoice.*\", \"customer.created\"]\n") +
          route("crm", crm.port(), "        types: [\"customer.*\"]\n") +
          route("warehouse", warehouse.port())));
  std::string invoice = send(gateway, "evt_r_invoice", "invoice.paid").json("job_id");
  std::string customer = send(gateway, "evt_r_customer", "customer.created").json("job_id");
  std::string charge = send(gateway, "evt_r_charge", "charge.refunded").json("job_id");
  for (const auto& [id, route] :
       std::vector<std::pair<std::string, std::string>>{{invoice, "billing"},
                                                        {invoice, "warehouse"},
                                                        {customer, "billing"},
                                                        {customer, "crm"},
                                                        {customer, "warehouse"},
                                                        {charge, "warehouse"}}) {
    ASSERT_TRUE(
        gateway.wait_for_output(delivered(id, route, 1, "succeeded"), std::chrono::seconds(10)))
        << gateway.output();
  }
  EXPECT_EQ(event_types(billing),
            (std::set<std::string>{"stripe.invoice.paid", "stripe.customer.created"}));
  EXPECT_EQ(event_types(crm), (std::set<std::string>{"stripe.customer.created"}));
  EXPECT_EQ(event_types(warehouse),
            (std::set<std::string>{"stripe.invoice.paid", "stripe.customer.created",
                                   "stripe.charge.refunded"}));
  EXPECT_EQ(billing.requests().size() + crm.requests().size() + warehouse.requests().size(), 6u);
  // Every route is sent the job's one key, and is named in what it gets.
  for (Receiver* r : {&billing, &crm, &warehouse}) {
    for (const Received& got : r->requests()) {
      std::string id = got.header("flare-job-id");
      EXPECT_EQ(got.header("idempotency-key"), "flare-" + id);
      EXPECT_EQ(got.header("flare-attempt"), "1");
    }
  }
  EXPECT_EQ(billing.requests()[0].header("flare-route"), "billing");
  // One job per event, each summing up its deliveries.
  EXPECT_EQ(db.scalar("SELECT count(*) FROM jobs WHERE source = 'routed'"), "3");
  auto jobs =
      db.query("SELECT status, attempts, completed_at IS NOT NULL, pushed FROM jobs WHERE id = '" +
               customer + "'");
  EXPECT_EQ(jobs[0][0].as<std::string>(), "succeeded");
  EXPECT_EQ(jobs[0][1].as<int>(), 3);
  EXPECT_TRUE(jobs[0][2].as<bool>());
  EXPECT_TRUE(jobs[0][3].as<bool>());

  // A redelivery of the event is the same job, and nobody is sent it again.
  Response again = send(gateway, "evt_r_customer", "customer.created");
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.json("job_id"), customer);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM deliveries"), "6");
}

TEST(Routes, AnEventNoRouteTakesIsStoredAndNeedsNoDelivery) {
  TestDatabase db;
  Receiver billing([](Receiver&, const Received&, std::size_t) { return Answer{200, ""}; });
  Gateway gateway(routed_config(
      db.url(), route("billing", billing.port(), "        types: [\"invoice.*\"]\n")));
  Response r = send(gateway, "evt_r_nobody", "charge.refunded");
  ASSERT_EQ(r.status, 202) << r.body;
  rapidjson::Document view = job_view(gateway, r.json("job_id"));
  EXPECT_STREQ(view["status"].GetString(), "succeeded");
  EXPECT_TRUE(view["pushed"].GetBool());
  EXPECT_EQ(view["deliveries"].GetArray().Size(), 0u);
  EXPECT_TRUE(view["completed_at"].IsString());
  EXPECT_EQ(billing.requests().size(), 0u);
}

TEST(Routes, AFailingRouteNeverCausesAnotherToBeSentTheEventAgain) {
  TestDatabase db;
  Receiver good([](Receiver&, const Received&, std::size_t) { return Answer{200, ""}; });
  std::atomic<bool> healthy{false};
  Receiver bad([&](Receiver&, const Received&, std::size_t) {
    return Answer{healthy ? 200 : 500, ""};
  });
  Gateway gateway(routed_config(db.url(), route("good", good.port()) + route("bad", bad.port())));
  std::string id = send(gateway, "evt_r_split", "invoice.paid").json("job_id");
  ASSERT_TRUE(gateway.wait_for_output(delivered(id, "bad", 3, "dead"), std::chrono::seconds(10)))
      << gateway.output();
  ASSERT_TRUE(
      gateway.wait_for_output(delivered(id, "good", 1, "succeeded"), std::chrono::seconds(10)));
  rapidjson::Document view = job_view(gateway, id);
  EXPECT_STREQ(view["status"].GetString(), "dead");  // a route gave up: someone must look
  EXPECT_EQ(view["attempts"].GetInt(), 4);
  EXPECT_STREQ(view["last_error"].GetString(), "HTTP 500");
  EXPECT_STREQ(delivery_of(view, "good")["status"].GetString(), "succeeded");
  EXPECT_STREQ(delivery_of(view, "bad")["status"].GetString(), "dead");

  // Retrying the job retries the route that gave up, and only that one.
  healthy = true;
  ASSERT_EQ(request_once(gateway.port(), "POST", "/v1/jobs/" + id + "/retry", kAuth).status, 200);
  ASSERT_TRUE(
      gateway.wait_for_output(delivered(id, "bad", 4, "succeeded"), std::chrono::seconds(10)))
      << gateway.output();
  EXPECT_EQ(good.requests().size(), 1u);
  EXPECT_EQ(bad.requests().size(), 4u);
  EXPECT_STREQ(job_view(gateway, id)["status"].GetString(), "succeeded");
}

TEST(Routes, EveryAttemptIsRecordedWithItsStatusErrorAndAnswer) {
  TestDatabase db;
  Receiver flaky([](Receiver& self, const Received&, std::size_t i) {
    if (i == 0) return Answer{500, "", false, "upstream exploded\n\x01"};
    if (i == 1) self.hold();  // past the route's timeout
    return Answer{201, "", false, "ok"};
  });
  // A port nobody listens on: connections are refused.
  std::uint16_t closed;
  {
    Receiver gone([](Receiver&, const Received&, std::size_t) { return Answer{}; });
    closed = gone.port();
  }
  Gateway gateway(routed_config(
      db.url(),
      route("flaky", flaky.port(), "        timeout_ms: 500\n") +
          route("refused", closed, "        retry: { max_attempts: 1, base_ms: 1, max_ms: 1 }\n")));
  std::string id = send(gateway, "evt_r_history", "invoice.paid").json("job_id");
  ASSERT_TRUE(
      gateway.wait_for_output(delivered(id, "flaky", 3, "succeeded"), std::chrono::seconds(15)))
      << gateway.output();
  ASSERT_TRUE(
      gateway.wait_for_output(delivered(id, "refused", 1, "dead"), std::chrono::seconds(10)));
  flaky.release();

  rapidjson::Document view = job_view(gateway, id);
  const auto& history = delivery_of(view, "flaky")["history"];
  ASSERT_EQ(history.Size(), 3u);
  // Newest first.
  EXPECT_EQ(history[0]["number"].GetInt(), 3);
  EXPECT_EQ(history[0]["status_code"].GetInt(), 201);
  EXPECT_TRUE(history[0]["error"].IsNull());
  EXPECT_STREQ(history[0]["response"].GetString(), "ok");
  EXPECT_EQ(history[1]["number"].GetInt(), 2);
  EXPECT_TRUE(history[1]["status_code"].IsNull());
  EXPECT_STREQ(history[1]["error"].GetString(), "no answer within 500 ms");
  EXPECT_GE(history[1]["duration_ms"].GetInt64(), 500);
  EXPECT_LT(history[1]["duration_ms"].GetInt64(), 2000);
  EXPECT_EQ(history[2]["number"].GetInt(), 1);
  EXPECT_EQ(history[2]["status_code"].GetInt(), 500);
  EXPECT_STREQ(history[2]["error"].GetString(), "HTTP 500");
  EXPECT_STREQ(history[2]["response"].GetString(), "upstream exploded ?");
  EXPECT_LE(std::string(history[2]["started_at"].GetString()),
            std::string(history[1]["started_at"].GetString()));
  const auto& refused = delivery_of(view, "refused")["history"];
  ASSERT_EQ(refused.Size(), 1u);
  EXPECT_TRUE(refused[0]["status_code"].IsNull());
  EXPECT_EQ(std::string(refused[0]["error"].GetString()).rfind("connect: ", 0), 0u)
      << refused[0]["error"].GetString();

  // The CLI shows the same history.
  TempFile config(routed_config(db.url(), route("flaky", flaky.port()) + route("refused", closed)));
  RunResult shown = run_binary({"jobs", "show", "--config", config.path(), id});
  EXPECT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_NE(shown.output.find("  flaky: succeeded, attempts 3 of 3"), std::string::npos)
      << shown.output;
  EXPECT_NE(shown.output.find(" flaky #2 "), std::string::npos) << shown.output;
  EXPECT_NE(shown.output.find("ms: no answer within 500 ms\n"), std::string::npos) << shown.output;
  EXPECT_NE(shown.output.find("ms: HTTP 500 | upstream exploded ?\n"), std::string::npos)
      << shown.output;
}

TEST(Routes, PullClaimsNeverTakeAPushedJob) {
  TestDatabase db;
  Receiver receiver([](Receiver&, const Received&, std::size_t) { return Answer{200, ""}; });
  std::string config = routed_config(db.url(), route("billing", receiver.port()));
  Gateway gateway(config, {"serve", "--no-workers"});
  std::string pushed = send(gateway, "evt_r_pushed", "invoice.paid").json("job_id");
  Response pulled =
      request_once(gateway.port(), "POST", "/v1/jobs", kAuth, R"({"type":"Report","payload":{}})");
  ASSERT_EQ(pulled.status, 201) << pulled.body;
  Response claim = request_once(gateway.port(), "POST", "/v1/jobs/claim", kAuth, R"({"max":10})");
  ASSERT_EQ(claim.status, 200) << claim.body;
  EXPECT_NE(claim.body.find(pulled.json("id")), std::string::npos) << claim.body;
  EXPECT_EQ(claim.body.find(pushed), std::string::npos) << claim.body;
  EXPECT_STREQ(job_view(gateway, pushed)["status"].GetString(), "queued");
}

TEST(Routes, JobsStoredBeforeTheirSourceHadRoutesAreGivenToThem) {
  TestDatabase db;
  Receiver receiver([](Receiver&, const Received&, std::size_t) { return Answer{200, ""}; });
  std::string config = routed_config(
      db.url(), route("billing", receiver.port(), "        types: [\"invoice.*\"]\n"));
  // The same source without routes: its jobs are pulled, and wait.
  std::string pulled = config.substr(0, config.find("    routes:\n"));
  std::string invoice, charge;
  {
    Gateway before(pulled);
    invoice = send(before, "evt_r_old_invoice", "invoice.paid").json("job_id");
    charge = send(before, "evt_r_old_charge", "charge.refunded").json("job_id");
  }
  Gateway after(config);
  ASSERT_TRUE(after.wait_for_output(delivered(invoice, "billing", 1, "succeeded"),
                                    std::chrono::seconds(10)))
      << after.output();
  EXPECT_EQ(receiver.requests().size(), 1u);
  EXPECT_STREQ(job_view(after, charge)["status"].GetString(), "succeeded");  // no route takes it
  EXPECT_EQ(job_view(after, charge)["deliveries"].GetArray().Size(), 0u);
}

std::string route_state(Gateway& gateway, const std::string& route) {
  Response r = request_once(gateway.port(), "GET", "/v1/routes", kAuth);
  EXPECT_EQ(r.status, 200) << r.body;
  rapidjson::Document doc;
  doc.Parse(r.body.c_str());
  for (const auto& entry : doc["routes"].GetArray()) {
    if (entry["route"].GetString() == route) return entry["state"].GetString();
  }
  return "";
}

TEST(Routes, FailuresInARowOpenTheBreakerAndASuccessfulProbeClosesIt) {
  TestDatabase db;
  Receiver receiver(
      [](Receiver&, const Received&, std::size_t i) { return Answer{i < 5 ? 503 : 200}; });
  Gateway gateway(routed_config(db.url(),
                                route("flaky", receiver.port(),
                                      "        retry: { max_attempts: 20, base_ms: 1, max_ms: 1 }\n"
                                      "        breaker: { failures: 5, cooldown_ms: 1000 }\n"),
                                "  concurrency: 1\n"));
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(
        send(gateway, "evt_r_breaker_" + std::to_string(i), "invoice.paid").json("job_id"));
  }
  ASSERT_TRUE(
      gateway.wait_for_output("route routed.flaky is open (was closed): 5 failed attempts in a row",
                              std::chrono::seconds(10)))
      << gateway.output();
  ASSERT_TRUE(
      gateway.wait_for_output("route routed.flaky is closed (was open)", std::chrono::seconds(10)))
      << gateway.output();
  for (const std::string& id : ids) {
    ASSERT_TRUE(gateway.wait_for_output("delivered job=" + id + " source=routed route=flaky",
                                        std::chrono::seconds(10)));
  }
  ASSERT_TRUE(receiver.wait_for(8, std::chrono::seconds(10)));
  std::vector<Received> got = receiver.requests();
  // Nothing was tried while the route was open: the probe came a cooldown after the fifth
  // failure.
  EXPECT_GE(got[5].at - got[4].at, std::chrono::milliseconds(950));
  EXPECT_EQ(got.size(), 8u);  // 5 failures, the probe, the two others: nothing doubled
  EXPECT_EQ(route_state(gateway, "flaky"), "closed");
  for (const std::string& id : ids) {
    EXPECT_STREQ(job_view(gateway, id)["status"].GetString(), "succeeded");
  }
}

TEST(Routes, GoneAnswerPausesTheRouteUntilAnOperatorResumesIt) {
  TestDatabase db;
  std::atomic<int> answers{0};
  Receiver gone([&](Receiver&, const Received&, std::size_t i) {
    ++answers;
    return Answer{i == 0 ? 410 : 200};
  });
  Receiver other([](Receiver&, const Received&, std::size_t) { return Answer{200}; });
  std::string config =
      routed_config(db.url(), route("gone", gone.port(),
                                    "        types: [\"invoice.*\"]\n"
                                    "        retry: { max_attempts: 2, base_ms: 1, max_ms: 1 }\n") +
                                  route("other", other.port(), "        types: [\"charge.*\"]\n"));
  Gateway gateway(config);
  std::string first = send(gateway, "evt_r_gone_1", "invoice.paid").json("job_id");
  ASSERT_TRUE(gateway.wait_for_output(
      "route routed.gone is paused (was closed): the destination answered 410 Gone",
      std::chrono::seconds(10)))
      << gateway.output();
  std::string second = send(gateway, "evt_r_gone_2", "invoice.paid").json("job_id");
  // The workers go on with other routes; the paused one is not tried, and its deliveries wait
  // without using up their attempts.
  std::string third = send(gateway, "evt_r_gone_3", "charge.refunded").json("job_id");
  ASSERT_TRUE(
      gateway.wait_for_output(delivered(third, "other", 1, "succeeded"), std::chrono::seconds(10)));
  std::string polled = send(gateway, "evt_r_gone_4", "charge.refunded").json("job_id");
  ASSERT_TRUE(gateway.wait_for_output(delivered(polled, "other", 1, "succeeded"),
                                      std::chrono::seconds(10)));
  EXPECT_EQ(answers.load(), 1);
  EXPECT_EQ(route_state(gateway, "gone"), "paused");
  EXPECT_STREQ(job_view(gateway, first)["status"].GetString(), "retrying");
  EXPECT_STREQ(job_view(gateway, second)["status"].GetString(), "queued");

  // Listed and resumed from the CLI, as an operator would.
  TempFile file(config);
  RunResult listed = run_binary({"routes", "list", "--config", file.path()});
  EXPECT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_NE(listed.output.find("routed.gone   paused"), std::string::npos) << listed.output;
  EXPECT_NE(listed.output.find("the destination answered 410 Gone"), std::string::npos);
  RunResult resumed = run_binary({"routes", "resume", "--config", file.path(), "routed", "gone"});
  EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
  ASSERT_TRUE(
      gateway.wait_for_output(delivered(first, "gone", 2, "succeeded"), std::chrono::seconds(10)))
      << gateway.output();
  ASSERT_TRUE(
      gateway.wait_for_output(delivered(second, "gone", 1, "succeeded"), std::chrono::seconds(10)))
      << gateway.output();
  EXPECT_EQ(route_state(gateway, "gone"), "closed");

  // Paused through the API: the route's next event waits.
  Response paused = request_once(gateway.port(), "POST", "/v1/routes/routed/gone/pause", kAuth);
  ASSERT_EQ(paused.status, 200) << paused.body;
  EXPECT_NE(paused.body.find("\"state\":\"paused\""), std::string::npos) << paused.body;
  EXPECT_NE(paused.body.find("\"reason\":\"paused by an operator\""), std::string::npos);
  EXPECT_EQ(request_once(gateway.port(), "POST", "/v1/routes/routed/nosuch/pause", kAuth).status,
            404);
  EXPECT_EQ(request_once(gateway.port(), "POST", "/v1/routes/routed/gone/pause",
                         {{"Authorization", "Bearer " + kOtherKey}})
                .status,
            404);  // another project's key learns nothing of it
}

// Two gateway processes on one database push to a route limited to 5 attempts a second: the
// limit holds for both together.
TEST(Routes, MaxPerSecondHoldsOverTwoProcesses) {
  TestDatabase db;
  Receiver receiver([](Receiver&, const Received&, std::size_t) { return Answer{200}; });
  std::string config =
      routed_config(db.url(), route("paced", receiver.port(), "        max_per_second: 5\n"));
  Gateway one(config), two(config);
  constexpr int kEvents = 16;
  for (int i = 0; i < kEvents; ++i) {
    Gateway& to = i % 2 == 0 ? one : two;
    ASSERT_EQ(send(to, "evt_r_paced_" + std::to_string(i), "invoice.paid").status, 202);
  }
  ASSERT_TRUE(receiver.wait_for(kEvents, std::chrono::seconds(20)));
  std::vector<Received> got = receiver.requests();
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kEvents));
  // Attempts begin 200 ms apart: no six within a second (a few ms of jitter allowed), and the
  // sixteen take three seconds, where each process alone would allow twice the pace.
  for (std::size_t i = 0; i + 5 < got.size(); ++i) {
    EXPECT_GE(got[i + 5].at - got[i].at, std::chrono::milliseconds(950)) << "from request " << i;
  }
  EXPECT_GE(got.back().at - got.front().at, std::chrono::milliseconds(2900));
  EXPECT_NE(one.output().find("source=routed route=paced"), std::string::npos);
  EXPECT_NE(two.output().find("source=routed route=paced"), std::string::npos);
}

TEST(Routes, MaxInFlightHoldsOverTwoProcesses) {
  TestDatabase db;
  std::atomic<int> now{0}, most{0};
  Receiver receiver([&](Receiver&, const Received&, std::size_t) {
    int n = ++now;
    int seen = most.load();
    while (n > seen && !most.compare_exchange_weak(seen, n)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // a slow destination
    --now;
    return Answer{200};
  });
  std::string config =
      routed_config(db.url(), route("narrow", receiver.port(), "        max_in_flight: 2\n"),
                    "  concurrency: 4\n");
  Gateway one(config), two(config);
  constexpr int kEvents = 12;
  for (int i = 0; i < kEvents; ++i) {
    Gateway& to = i % 2 == 0 ? one : two;
    ASSERT_EQ(send(to, "evt_r_narrow_" + std::to_string(i), "invoice.paid").status, 202);
  }
  ASSERT_TRUE(receiver.wait_for(kEvents, std::chrono::seconds(20)));
  EXPECT_EQ(most.load(), 2);  // reached, never passed, with eight workers ready
}

// A fast destination's deliveries are claimed in batches, attempted one after another; a route's
// max_in_flight is shared out over the workers instead, so that its slots are attempts side by
// side, not one worker's batch waiting its turn.
TEST(Routes, MaxInFlightSlotsAreAttemptsSideBySideForAFastDestination) {
  TestDatabase db;
  constexpr int kEvents = 60;
  // The most attempts at once, over all of them and over the second half, when every worker
  // knows the destination's pace.
  std::atomic<int> now{0}, most{0}, most_later{0};
  auto raise = [](std::atomic<int>& to, int n) {
    int seen = to.load();
    while (n > seen && !to.compare_exchange_weak(seen, n)) {
    }
  };
  Receiver receiver([&](Receiver&, const Received&, std::size_t index) {
    int n = ++now;
    raise(most, n);
    if (index >= kEvents / 2) raise(most_later, n);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a destination taking 20 ms
    --now;
    return Answer{200};
  });
  Gateway gateway(routed_config(db.url(),
                                route("narrow", receiver.port(), "        max_in_flight: 4\n"),
                                "  concurrency: 8\n"));
  for (int i = 0; i < kEvents; ++i) {
    ASSERT_EQ(send(gateway, "evt_r_fast_" + std::to_string(i), "invoice.paid").status, 202);
  }
  ASSERT_TRUE(receiver.wait_for(kEvents, std::chrono::seconds(20)));
  EXPECT_EQ(most.load(), 4);  // never passed
  EXPECT_EQ(most_later.load(), 4);
}

// A steady flow is claimed in batches of what came while the last batch was taken: after a claim
// of more than one delivery that took every one that was due, the route's next claim in the
// process waits 20 ms (kGather in jobs/worker.cpp), where it was made at every notification. A
// batch's outcomes are recorded in one transaction: its deliveries share their completed_at.
TEST(Routes, ASteadyFlowIsClaimedInBatchesOfWhatCameMeanwhile) {
  TestDatabase db;
  // Rounds of eight sent at once, each round once the last was delivered: never more than eight
  // wait, fewer than a claim of several asks for (ten at least: claims are of one when attempts
  // take over 25 ms), so that however slow the build every such claim is followed by the wait.
  constexpr int kSenders = 8, kRounds = 60;
  Receiver receiver([](Receiver&, const Received&, std::size_t) { return Answer{200}; });
  Gateway gateway(
      routed_config(db.url(), route("warehouse", receiver.port()), "  concurrency: 8\n"));
  auto began = std::chrono::steady_clock::now();
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<int> accepted{0};
    std::vector<std::thread> senders;
    for (int s = 0; s < kSenders; ++s) {
      senders.emplace_back([&, s] {
        std::string id = "evt_r_flow_" + std::to_string(round) + "_" + std::to_string(s);
        if (send(gateway, id, "invoice.paid").status == 202) ++accepted;
      });
    }
    for (std::thread& t : senders) t.join();
    ASSERT_EQ(accepted.load(), kSenders);
    ASSERT_TRUE(receiver.wait_for((round + 1) * kSenders, std::chrono::seconds(10)));
  }
  auto took = std::chrono::steady_clock::now() - began;
  ASSERT_TRUE(eventually([&] {
    return db.scalar("SELECT count(*) FROM deliveries WHERE status = 'succeeded'") ==
           std::to_string(kSenders * kRounds);
  }));
  int batches = std::stoi(db.scalar(
      "SELECT count(*) FROM (SELECT FROM deliveries GROUP BY completed_at HAVING count(*) > 1) b"));
  EXPECT_LE(batches, took / std::chrono::milliseconds(20) + 1)
      << "over " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
}

TEST(Routes, ReplayOfATimeRangeCountsFirstThenSendsAgainAndShowsProgress) {
  TestDatabase db;
  Receiver receiver([](Receiver&, const Received&, std::size_t) { return Answer{200}; });
  std::string config = routed_config(db.url(), route("warehouse", receiver.port()));
  Gateway gateway(config);
  std::vector<std::string> early = {
      send(gateway, "evt_r_early_1", "invoice.paid").json("job_id"),
      send(gateway, "evt_r_early_2", "customer.created").json("job_id")};
  ASSERT_TRUE(receiver.wait_for(2, std::chrono::seconds(10)));
  std::string since = db.scalar(
      "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
  std::vector<std::string> late = {
      send(gateway, "evt_r_late_1", "invoice.paid").json("job_id"),
      send(gateway, "evt_r_late_2", "invoice.payment_failed").json("job_id"),
      send(gateway, "evt_r_late_3", "customer.created").json("job_id")};
  for (const std::string& id : late) {
    ASSERT_TRUE(gateway.wait_for_output(delivered(id, "warehouse", 1, "succeeded"),
                                        std::chrono::seconds(10)));
  }
  const std::string filter =
      R"("types":["invoice.*"],"since":")" + since + R"(","statuses":["succeeded"])";
  Response dry = request_once(gateway.port(), "POST", "/v1/routes/routed/warehouse/replays", kAuth,
                              "{" + filter + R"(,"dry_run":true})");
  ASSERT_EQ(dry.status, 200) << dry.body;
  EXPECT_EQ(dry.body, R"({"count":2})");
  TempFile file(config);
  RunResult counted = run_binary({"replay", "--config", file.path(), "--source", "routed",
                                  "--route", "warehouse", "--types", "invoice.*", "--since", since,
                                  "--statuses", "succeeded", "--dry-run"});
  EXPECT_EQ(counted.exit_code, 0) << counted.output;
  EXPECT_NE(counted.output.find("2 events would be sent again to routed.warehouse"),
            std::string::npos)
      << counted.output;

  Response started = request_once(gateway.port(), "POST", "/v1/routes/routed/warehouse/replays",
                                  kAuth, "{" + filter + "}");
  ASSERT_EQ(started.status, 202) << started.body;
  std::string replay = started.json("id");
  EXPECT_NE(started.body.find("\"total\":2"), std::string::npos) << started.body;
  for (const std::string& id : {late[0], late[1]}) {
    ASSERT_TRUE(gateway.wait_for_output(delivered(id, "warehouse", 2, "succeeded"),
                                        std::chrono::seconds(10)))
        << gateway.output();
  }
  std::vector<Received> got = receiver.requests();
  ASSERT_EQ(got.size(), 7u);
  std::set<std::string> again = {got[5].header("flare-job-id"), got[6].header("flare-job-id")};
  EXPECT_EQ(again, (std::set<std::string>{late[0], late[1]}));
  for (std::size_t i = 5; i < 7; ++i) {
    EXPECT_EQ(got[i].header("idempotency-key"), "flare-" + got[i].header("flare-job-id"));
    EXPECT_EQ(got[i].header("flare-attempt"), "2");
  }
  Response progress = request_once(gateway.port(), "GET", "/v1/replays/" + replay, kAuth);
  ASSERT_EQ(progress.status, 200) << progress.body;
  EXPECT_EQ(progress.json("status"), "done");
  EXPECT_NE(progress.body.find("\"succeeded\":2"), std::string::npos) << progress.body;
  // Replayed attempts are on record like any other.
  EXPECT_EQ(delivery_of(job_view(gateway, late[0]), "warehouse")["history"].Size(), 2u);
}

TEST(Routes, ReplayOfAPausedRouteWaitsAndIsCancelled) {
  TestDatabase db;
  Receiver receiver([](Receiver&, const Received&, std::size_t) { return Answer{200}; });
  std::string config = routed_config(db.url(), route("warehouse", receiver.port()));
  Gateway gateway(config);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(
        send(gateway, "evt_r_cancel_" + std::to_string(i), "invoice.paid").json("job_id"));
  }
  ASSERT_TRUE(receiver.wait_for(3, std::chrono::seconds(10)));
  for (const std::string& id : ids) {
    ASSERT_TRUE(gateway.wait_for_output(delivered(id, "warehouse", 1, "succeeded"),
                                        std::chrono::seconds(10)));
  }
  ASSERT_EQ(request_once(gateway.port(), "POST", "/v1/routes/routed/warehouse/pause", kAuth).status,
            200);
  // An event that waits for the paused route is on its way already: a replay leaves it alone,
  // and cancelling the replay does not cancel it.
  std::string waiting = send(gateway, "evt_r_cancel_waiting", "invoice.paid").json("job_id");
  Response started =
      request_once(gateway.port(), "POST", "/v1/routes/routed/warehouse/replays", kAuth, "{}");
  ASSERT_EQ(started.status, 202) << started.body;
  EXPECT_NE(started.body.find("\"total\":3"), std::string::npos) << started.body;
  EXPECT_NE(started.body.find("\"waiting\":3"), std::string::npos) << started.body;
  EXPECT_EQ(started.json("status"), "running");
  TempFile file(config);
  RunResult cancelled =
      run_binary({"replay", "cancel", "--config", file.path(), started.json("id")});
  EXPECT_EQ(cancelled.exit_code, 0) << cancelled.output;
  EXPECT_NE(cancelled.output.find(": cancelled\n3 events: 0 succeeded, 0 dead, 3 cancelled, 0 "
                                  "waiting, 0 running"),
            std::string::npos)
      << cancelled.output;
  ASSERT_EQ(
      request_once(gateway.port(), "POST", "/v1/routes/routed/warehouse/resume", kAuth).status,
      200);
  // A job whose only delivery was cancelled is cancelled; nothing is sent again but the event
  // that waited.
  EXPECT_STREQ(job_view(gateway, ids[0])["status"].GetString(), "cancelled");
  ASSERT_TRUE(gateway.wait_for_output(delivered(waiting, "warehouse", 1, "succeeded"),
                                      std::chrono::seconds(10)));
  std::string next = send(gateway, "evt_r_cancel_after", "invoice.paid").json("job_id");
  ASSERT_TRUE(gateway.wait_for_output(delivered(next, "warehouse", 1, "succeeded"),
                                      std::chrono::seconds(10)));
  EXPECT_EQ(receiver.requests().size(), 5u);
  for (const auto& [body, field] :
       std::vector<std::pair<std::string, std::string>>{{R"({"since":"yesterday"})", "since"},
                                                        {R"({"statuses":["queued"]})", "statuses"},
                                                        {R"({"types":["in*voice"]})", "types"},
                                                        {R"({"dry_run":1})", "dry_run"},
                                                        {R"({"typo":true})", "typo"}}) {
    Response bad =
        request_once(gateway.port(), "POST", "/v1/routes/routed/warehouse/replays", kAuth, body);
    EXPECT_EQ(bad.status, 400) << body;
    EXPECT_NE(bad.body.find("\"field\":\"" + field + "\""), std::string::npos) << bad.body;
  }
}

// A worker killed mid-attempt while its route is then paused: the attempt's lease runs out and
// the delivery waits again (retrying), so the job is not left running and can be cancelled;
// nothing is sent while the route is paused.
TEST(Routes, AnAttemptWhoseLeaseRanOutWaitsAgainOnAPausedRoute) {
  TestDatabase db;
  Receiver receiver([](Receiver& self, const Received&, std::size_t) {
    self.hold();
    return Answer{200};
  });
  std::string config = routed_config(db.url(), route("held", receiver.port()));
  std::string id;
  {
    Gateway first(config);
    id = send(first, "evt_r_lease", "invoice.paid").json("job_id");
    ASSERT_TRUE(receiver.wait_for(1, std::chrono::seconds(10)));
    ASSERT_EQ(request_once(first.port(), "POST", "/v1/routes/routed/held/pause", kAuth).status,
              200);
    first.kill_hard();
  }
  receiver.release();
  Gateway second(config);
  // The lease (3 s) runs out; the next claim for the route, made every poll, ends it.
  ASSERT_TRUE(eventually(
      [&] { return std::string(job_view(second, id)["status"].GetString()) == "retrying"; },
      std::chrono::seconds(15)))
      << second.output();
  rapidjson::Document view = job_view(second, id);
  EXPECT_STREQ(delivery_of(view, "held")["last_error"].GetString(),
               "the lease of attempt 1 ran out before its outcome was recorded");
  EXPECT_EQ(receiver.requests().size(), 1u);
  EXPECT_EQ(request_once(second.port(), "POST", "/v1/jobs/" + id + "/cancel", kAuth).status, 200);
  EXPECT_STREQ(job_view(second, id)["status"].GetString(), "cancelled");
}

}  // namespace
}  // namespace flare::test
