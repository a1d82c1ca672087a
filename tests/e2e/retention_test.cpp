// Retention through the binary: `prune` and serve's own passes, what the API, the CLI and a
// provider's late redelivery see of a pruned job, and one pruning process at a time.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "e2e/fixtures.hpp"
#include "support/database.hpp"

namespace flare::test {
namespace {

const std::string kRetention =
    "retention: { payload_days: 30, dead_payload_days: 90, interval_seconds: 1 }\n";
// The pruning lock's key (jobs/prune.cpp).
const char* const kTakePruneLock = "SELECT pg_advisory_lock(x'666c617270'::bigint)";

const HeaderList kShop = {{"Authorization", "Bearer " + kShopKey}};

// Posts a Stripe event; returns its job's id.
std::string post_event(std::uint16_t port, const std::string& event_id) {
  std::string body = stripe_body(event_id);
  Response r = request_once(port, "POST", "/webhooks/stripe", stripe_headers(body), body);
  EXPECT_EQ(r.status, 202) << r.body;
  return r.json("job_id");
}

// Ends job `id` as `status` `days` ago.
void end_job(TestDatabase& db, const std::string& id, const std::string& status, int days) {
  db.query("UPDATE jobs SET status = '" + status + "', updated_at = now() - interval '" +
           std::to_string(days) + " days' WHERE id = '" + id + "'");
}

TEST(Retention, PruneEmptiesPayloadsAndTheKeyStillAnswersRedeliveries) {
  TestDatabase db;
  Gateway gateway(gateway_config(db.url()));
  std::string done = post_event(gateway.port(), "evt_retention_done");
  std::string dead = post_event(gateway.port(), "evt_retention_dead");
  std::string young = post_event(gateway.port(), "evt_retention_young");
  end_job(db, done, "succeeded", 40);
  end_job(db, dead, "dead", 100);
  end_job(db, young, "succeeded", 1);
  TempFile config(gateway_config(db.url()) + kRetention);

  RunResult counted = run_binary({"prune", "--config", config.path(), "--dry-run"});
  EXPECT_EQ(counted.exit_code, 0) << counted.output;
  EXPECT_EQ(counted.output,
            "PROJECT  SOURCES  PAYLOADS  DEAD PAYLOADS  ROWS\n"
            "shop     all      1         1              0\n"
            "other    all      0         0              0\n"
            "would empty 2 payloads and delete 0 jobs\n");
  RunResult pruned = run_binary({"prune", "--config", config.path()});
  EXPECT_EQ(pruned.exit_code, 0) << pruned.output;
  EXPECT_NE(pruned.output.find("emptied 2 payloads and deleted 0 jobs"), std::string::npos)
      << pruned.output;

  // The API shows the job pruned, without its payload.
  HttpClient api(gateway.port());
  Response job = api.request("GET", "/v1/jobs/" + done, kShop);
  EXPECT_EQ(job.status, 200);
  EXPECT_NE(job.body.find("\"payload\":null"), std::string::npos) << job.body;
  EXPECT_NE(job.json("pruned_at"), "") << job.body;
  Response kept = api.request("GET", "/v1/jobs/" + young, kShop);
  EXPECT_NE(kept.body.find("\"id\":\"evt_retention_young\""), std::string::npos) << kept.body;
  EXPECT_NE(kept.body.find("\"pruned_at\":null"), std::string::npos) << kept.body;

  // A provider's late redelivery is still the same job.
  std::string body = stripe_body("evt_retention_done");
  Response again =
      request_once(gateway.port(), "POST", "/webhooks/stripe", stripe_headers(body), body);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.json("job_id"), done);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM jobs WHERE idempotency_key = "
                      "'webhook:evt_retention_done'"),
            "1");

  // A pruned dead job cannot run again: nothing is left to send.
  Response retry = api.request("POST", "/v1/jobs/" + dead + "/retry", kShop);
  EXPECT_EQ(retry.status, 409);
  EXPECT_EQ(retry.json("code"), "payload_pruned") << retry.body;
  RunResult shown = run_binary({"jobs", "show", "--config", config.path(), done});
  EXPECT_NE(shown.output.find("payload: removed by retention at "), std::string::npos)
      << shown.output;
  RunResult retried = run_binary({"jobs", "retry", "--config", config.path(), dead});
  EXPECT_EQ(retried.exit_code, 1);
  EXPECT_NE(retried.output.find("removed by retention"), std::string::npos) << retried.output;

  RunResult nothing = run_binary({"prune", "--config", config.path()});
  EXPECT_NE(nothing.output.find("emptied 0 payloads and deleted 0 jobs"), std::string::npos);
}

TEST(Retention, ServePrunesOnItsOwnOnceNoOtherProcessHoldsTheLock) {
  TestDatabase db;
  Gateway gateway(gateway_config(db.url()) + kRetention);
  TempFile config(gateway_config(db.url()) + kRetention);
  {
    // While another process holds the lock, prune refuses.
    pqxx::connection holder(db.url());
    pqxx::nontransaction(holder).exec(kTakePruneLock);
    std::string id = post_event(gateway.port(), "evt_retention_serve");
    end_job(db, id, "succeeded", 40);
    RunResult refused = run_binary({"prune", "--config", config.path()});
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_NE(refused.output.find("another gateway process is pruning"), std::string::npos)
        << refused.output;
    EXPECT_EQ(db.scalar("SELECT count(*) FROM jobs WHERE pruned_at IS NOT NULL"), "0");
  }
  // Its connection closed, the lock is free: serve's next pass (every second here) prunes.
  ASSERT_TRUE(gateway.wait_for_output("retention: emptied 1 payloads (0 of dead jobs), deleted 0",
                                      std::chrono::seconds(10)))
      << gateway.output();
  EXPECT_EQ(db.scalar("SELECT count(*) FROM jobs WHERE pruned_at IS NOT NULL"), "1");
  Response metrics = request_once(gateway.port(), "GET", "/metrics");
  EXPECT_EQ(sample(metrics.body, R"(flare_pruned_total{what="payloads"})"), 1);
  EXPECT_EQ(sample(metrics.body, R"(flare_pruned_total{what="rows"})"), 0);
}

}  // namespace
}  // namespace flare::test
