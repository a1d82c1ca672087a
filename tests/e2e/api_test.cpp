// SPEC §5 against the real binary: the jobs API, every endpoint and every error.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <barrier>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "e2e/fixtures.hpp"
#include "support/database.hpp"
#include "support/wait.hpp"
#include "text/text.hpp"

namespace flare::test {
namespace {

// A response body as a document, for nested members.
rapidjson::Document json_of(const Response& r) {
  rapidjson::Document doc;
  doc.Parse(r.body.c_str());
  EXPECT_FALSE(doc.HasParseError()) << r.body;
  return doc;
}

class Api : public GatewaySuite {
 protected:
  static Response call(const std::string& method, const std::string& target,
                       const std::string& body = "", const std::string& key = kShopKey) {
    HeaderList headers{{"Content-Type", "application/json"}};
    if (!key.empty()) headers.emplace_back("Authorization", "Bearer " + key);
    return request_once(gateway_->port(), method, target, headers, body);
  }
  static Response create(const std::string& body, const std::string& key = kShopKey) {
    return call("POST", "/v1/jobs", body, key);
  }
  // A new job of `type`; returns its id.
  static std::string make_job(const std::string& type, const std::string& extra = "") {
    Response r = create(R"({"type":")" + type + R"(","payload":{"n":1})" + extra + "}");
    EXPECT_EQ(r.status, 201) << r.body;
    return r.json("id");
  }
  static Response claim(const std::string& body, const std::string& key = kShopKey) {
    return call("POST", "/v1/jobs/claim", body, key);
  }
  // Claims one job of `type`, asking again until one is due (10 s at most).
  static rapidjson::Document claim_one(const std::string& type, int lease_seconds = 30) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      Response r = claim(R"({"types":[")" + type + R"("],"max":1,"lease_seconds":)" +
                         std::to_string(lease_seconds) + "}");
      EXPECT_EQ(r.status, 200) << r.body;
      rapidjson::Document doc = json_of(r);
      if (doc["jobs"].Size() == 1) return doc;
    }
    ADD_FAILURE() << "no job of type " << type << " became claimable";
    return json_of(Response{200, {}, R"({"jobs":[]})"});
  }
  static void expect_error(const Response& r, int status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.json("code"), code) << r.body;
    EXPECT_EQ(r.header("content-type"), "application/json");
  }
  static void expect_invalid(const Response& r, const std::string& field) {
    expect_error(r, 400, "validation_error");
    EXPECT_EQ(r.json("field"), field) << r.body;
  }
};

TEST_F(Api, Authentication) {
  Response none = call("GET", "/v1/jobs", "", "");
  expect_error(none, 401, "unauthorized");
  EXPECT_EQ(none.header("www-authenticate"), "Bearer");
  expect_error(call("GET", "/v1/jobs", "", "wrong-key"), 401, "unauthorized");
  for (const std::string& header : {std::string("Basic a2V5LXNob3A="), std::string("Bearer"),
                                    std::string("Bearer "), "Token " + kShopKey, kShopKey}) {
    Response r = request_once(gateway_->port(), "GET", "/v1/jobs", {{"Authorization", header}});
    expect_error(r, 401, "unauthorized");
  }
  Response lower =
      request_once(gateway_->port(), "GET", "/v1/jobs", {{"Authorization", "bearer " + kShopKey}});
  EXPECT_EQ(lower.status, 200);
}

TEST_F(Api, CreateReturnsTheJob) {
  Response r = create(R"({"type":"ProcessPayment","payload":{"order":42,"items":[1,2]},)"
                      R"("idempotency_key":"payment:42","run_at":"2030-01-02T03:04:05.5+01:00",)"
                      R"("max_attempts":5,"priority":7})");
  ASSERT_EQ(r.status, 201) << r.body;
  rapidjson::Document job = json_of(r);
  EXPECT_EQ(job["type"].GetString(), std::string("ProcessPayment"));
  EXPECT_EQ(job["status"].GetString(), std::string("queued"));
  EXPECT_EQ(job["attempts"].GetInt(), 0);
  EXPECT_EQ(job["max_attempts"].GetInt(), 5);
  EXPECT_EQ(job["priority"].GetInt(), 7);
  EXPECT_EQ(job["idempotency_key"].GetString(), std::string("payment:42"));
  EXPECT_EQ(job["payload"]["order"].GetInt(), 42);
  EXPECT_EQ(job["payload"]["items"].Size(), 2u);
  EXPECT_TRUE(job["last_error"].IsNull());
  EXPECT_TRUE(job["source"].IsNull());
  EXPECT_TRUE(job["event_id"].IsNull());
  EXPECT_TRUE(job["completed_at"].IsNull());
  EXPECT_EQ(job["run_at"].GetString(), std::string("2030-01-02T02:04:05.500000Z"));
  EXPECT_EQ(std::string(job["created_at"].GetString()).size(), 27u);

  // The same job through GET.
  Response got = call("GET", "/v1/jobs/" + r.json("id"));
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body, r.body);

  // Defaults: no key, the configured attempts, priority 0, payload null, due now.
  Response plain = create(R"({"type":"Cleanup"})");
  ASSERT_EQ(plain.status, 201);
  rapidjson::Document d = json_of(plain);
  EXPECT_TRUE(d["idempotency_key"].IsNull());
  EXPECT_EQ(d["max_attempts"].GetInt(), 3);
  EXPECT_EQ(d["priority"].GetInt(), 0);
  EXPECT_TRUE(d["payload"].IsNull());
  EXPECT_EQ(d["run_at"].GetString(), std::string(d["created_at"].GetString()));
}

TEST_F(Api, DuplicateKeyIsAConflictNamingTheJob) {
  Response first = create(R"({"type":"Email","idempotency_key":"welcome:7"})");
  ASSERT_EQ(first.status, 201);
  Response again = create(R"({"type":"Email","idempotency_key":"welcome:7","payload":1})");
  expect_error(again, 409, "idempotency_conflict");
  EXPECT_EQ(again.json("job_id"), first.json("id"));
  EXPECT_EQ(again.json("status"), "queued");
  // The same key in another project is another job.
  Response other = create(R"({"type":"Email","idempotency_key":"welcome:7"})", kOtherKey);
  EXPECT_EQ(other.status, 201);
  EXPECT_NE(other.json("id"), first.json("id"));
}

TEST_F(Api, KeyLengthsAndCharacters) {
  EXPECT_EQ(create(R"({"type":"K","idempotency_key":")" + std::string(200, 'k') + "\"}").status,
            201);
  expect_invalid(create(R"({"type":"K","idempotency_key":")" + std::string(201, 'k') + "\"}"),
                 "idempotency_key");
  expect_invalid(create(R"({"type":"K","idempotency_key":""})"), "idempotency_key");
  expect_invalid(create(R"({"type":"K","idempotency_key":"a\nb"})"), "idempotency_key");
  expect_invalid(create(R"({"type":"K","idempotency_key":7})"), "idempotency_key");
}

TEST_F(Api, BodyErrors) {
  expect_error(create("{"), 400, "invalid_json");
  expect_error(create("[1]"), 400, "invalid_json");
  expect_error(create(""), 400, "invalid_json");
  expect_invalid(create("{}"), "type");
  expect_invalid(create(R"({"type":""})"), "type");
  expect_invalid(create(R"({"type":")" + std::string(201, 't') + "\"}"), "type");
  expect_invalid(create(R"({"type":"T","idempotencyKey":"x"})"), "idempotencyKey");
  expect_invalid(create(R"({"type":"T","run_at":"tomorrow"})"), "run_at");
  expect_invalid(create(R"({"type":"T","run_at":"2026-02-30T00:00:00Z"})"), "run_at");
  expect_invalid(create(R"({"type":"T","max_attempts":0})"), "max_attempts");
  expect_invalid(create(R"({"type":"T","max_attempts":101})"), "max_attempts");
  expect_invalid(create(R"({"type":"T","priority":"high"})"), "priority");
  Response big = create(R"({"type":"T","payload":")" + std::string(70000, 'x') + "\"}");
  expect_error(big, 413, "payload_too_large");
}

TEST_F(Api, TwentyConcurrentPostsOfOneKey) {
  constexpr int kPosts = 20;
  std::vector<Response> responses(kPosts);
  std::barrier start(kPosts);
  std::vector<std::thread> threads;
  for (int i = 0; i < kPosts; ++i) {
    threads.emplace_back([&, i] {
      HttpClient client(gateway_->port());
      start.arrive_and_wait();
      responses[i] = client.request("POST", "/v1/jobs", {{"Authorization", "Bearer " + kShopKey}},
                                    R"({"type":"Charge","idempotency_key":"charge:storm"})");
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<std::string> ids;
  int created = 0;
  for (const Response& r : responses) {
    if (r.status == 201) {
      ++created;
      ids.insert(r.json("id"));
    } else {
      EXPECT_EQ(r.status, 409) << r.body;
      EXPECT_EQ(r.json("code"), "idempotency_conflict");
      ids.insert(r.json("job_id"));
    }
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(db_->scalar("SELECT count(*) FROM jobs WHERE idempotency_key = 'charge:storm'"), "1");
}

TEST_F(Api, AnotherProjectsJobIsNotFoundEverywhere) {
  std::string id = make_job("Private");
  std::string token = R"({"lease_token":"00000000-0000-4000-8000-000000000000"})";
  for (auto [method, suffix, body] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"GET", "", ""},
           {"DELETE", "", ""},
           {"POST", "/retry", ""},
           {"POST", "/cancel", ""},
           {"POST", "/complete", token},
           {"POST", "/fail", token},
           {"POST", "/heartbeat", token}}) {
    expect_error(call(method, "/v1/jobs/" + id + suffix, body, kOtherKey), 404, "not_found");
  }
  expect_error(call("GET", "/v1/jobs/not-a-uuid"), 404, "not_found");
  expect_error(call("GET", "/v1/jobs/00000000-0000-4000-8000-000000000000"), 404, "not_found");
  expect_error(call("POST", "/v1/jobs/" + id + "/explode"), 404, "not_found");
  EXPECT_EQ(call("GET", "/v1/jobs/" + id).status, 200);  // still there for its own project
}

TEST_F(Api, MethodsNotAllowed) {
  Response put = call("PUT", "/v1/jobs", "{}");
  expect_error(put, 405, "method_not_allowed");
  EXPECT_EQ(put.header("allow"), "GET, POST");
  EXPECT_EQ(call("GET", "/v1/jobs/claim").header("allow"), "POST");
  EXPECT_EQ(call("POST", "/v1/jobs/00000000-0000-4000-8000-000000000000").header("allow"),
            "GET, DELETE");
  EXPECT_EQ(call("GET", "/v1/jobs/00000000-0000-4000-8000-000000000000/retry").header("allow"),
            "POST");
}

// Without a key every path under /v1/jobs is 401: the routes an authenticated caller gets 404 or
// 405 from are not revealed.
TEST_F(Api, UnauthenticatedCallersLearnNoRoutes) {
  const std::string job = "00000000-0000-4000-8000-000000000000";
  struct Case {
    std::string method, target;
    int keyed;
  };
  for (const Case& c : std::vector<Case>{{"PUT", "/v1/jobs", 405},
                                         {"GET", "/v1/jobs/claim", 405},
                                         {"POST", "/v1/jobs/" + job + "/explode", 404},
                                         {"GET", "/v1/jobs/not-a-job", 404}}) {
    expect_error(call(c.method, c.target, "{}", ""), 401, "unauthorized");
    Response keyed = call(c.method, c.target, "{}");
    EXPECT_EQ(keyed.status, c.keyed) << c.method << " " << c.target << ": " << keyed.body;
  }
}

TEST_F(Api, ListByTimeAndSource) {
  std::string before = make_job("Timed");
  rapidjson::Document at = json_of(call("GET", "/v1/jobs/" + before));
  std::string created = at["created_at"].GetString();
  // A bound a second after the first job's creation splits the jobs made then and later.
  std::int64_t micros = *text::parse_rfc3339(created) + 1'000'000;
  std::string bound = text::format_rfc3339(micros);
  // The clock passes the bound.
  while (std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
             .count() <= micros) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::string after = make_job("Timed");
  rapidjson::Document since = json_of(call("GET", "/v1/jobs?type=Timed&since=" + bound));
  ASSERT_EQ(since["jobs"].Size(), 1u);
  EXPECT_EQ(since["jobs"][0]["id"].GetString(), after);
  rapidjson::Document earlier = json_of(call("GET", "/v1/jobs?type=Timed&before=" + bound));
  ASSERT_EQ(earlier["jobs"].Size(), 1u);
  EXPECT_EQ(earlier["jobs"][0]["id"].GetString(), before);
  // Jobs of the API have no source.
  EXPECT_EQ(json_of(call("GET", "/v1/jobs?type=Timed&source=stripe"))["jobs"].Size(), 0u);
  Response bad = call("GET", "/v1/jobs?since=yesterday");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.json("field"), "since");
}

TEST_F(Api, ListNewestFirstWithFiltersAndACursorThatSurvivesNewJobs) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(make_job("Listed"));
  Response first = call("GET", "/v1/jobs?type=Listed&limit=2");
  ASSERT_EQ(first.status, 200) << first.body;
  rapidjson::Document page = json_of(first);
  ASSERT_EQ(page["jobs"].Size(), 2u);
  EXPECT_EQ(page["jobs"][0]["id"].GetString(), ids[4]);
  EXPECT_EQ(page["jobs"][1]["id"].GetString(), ids[3]);
  std::string cursor = page["next_cursor"].GetString();

  // New jobs arrive between pages: the next page continues where the first stopped.
  make_job("Listed");
  make_job("Listed");
  rapidjson::Document second =
      json_of(call("GET", "/v1/jobs?type=Listed&limit=2&cursor=" + cursor));
  ASSERT_EQ(second["jobs"].Size(), 2u);
  EXPECT_EQ(second["jobs"][0]["id"].GetString(), ids[2]);
  EXPECT_EQ(second["jobs"][1]["id"].GetString(), ids[1]);
  rapidjson::Document last =
      json_of(call("GET", "/v1/jobs?type=Listed&limit=2&cursor=" +
                              std::string(second["next_cursor"].GetString())));
  ASSERT_EQ(last["jobs"].Size(), 1u);
  EXPECT_EQ(last["jobs"][0]["id"].GetString(), ids[0]);
  EXPECT_TRUE(last["next_cursor"].IsNull());

  call("POST", "/v1/jobs/" + ids[0] + "/cancel");
  rapidjson::Document cancelled = json_of(call("GET", "/v1/jobs?status=cancelled&type=Listed"));
  ASSERT_EQ(cancelled["jobs"].Size(), 1u);
  EXPECT_EQ(cancelled["jobs"][0]["id"].GetString(), ids[0]);
  EXPECT_EQ(json_of(call("GET", "/v1/jobs?type=Listed", "", kOtherKey))["jobs"].Size(), 0u);

  expect_invalid(call("GET", "/v1/jobs?limit=501"), "limit");
  expect_invalid(call("GET", "/v1/jobs?limit=0"), "limit");
  expect_invalid(call("GET", "/v1/jobs?status=sleeping"), "status");
  expect_invalid(call("GET", "/v1/jobs?cursor=zz"), "cursor");
  expect_invalid(call("GET", "/v1/jobs?colour=red"), "colour");
}

TEST_F(Api, CancelRetryAndDelete) {
  std::string id = make_job("Lifecycle", R"(,"idempotency_key":"life:1")");
  Response cancelled = call("POST", "/v1/jobs/" + id + "/cancel");
  EXPECT_EQ(cancelled.status, 200);
  EXPECT_EQ(cancelled.json("status"), "cancelled");
  Response again = call("POST", "/v1/jobs/" + id + "/cancel");
  expect_error(again, 409, "invalid_status");
  EXPECT_EQ(again.json("status"), "cancelled");
  Response retried = call("POST", "/v1/jobs/" + id + "/retry");
  EXPECT_EQ(retried.status, 200);
  EXPECT_EQ(retried.json("status"), "queued");
  expect_error(call("POST", "/v1/jobs/" + id + "/retry"), 409, "invalid_status");

  // Delete frees the key.
  Response deleted = call("DELETE", "/v1/jobs/" + id);
  EXPECT_EQ(deleted.status, 204);
  EXPECT_TRUE(deleted.body.empty());
  expect_error(call("GET", "/v1/jobs/" + id), 404, "not_found");
  expect_error(call("DELETE", "/v1/jobs/" + id), 404, "not_found");
  Response reused = create(R"({"type":"Lifecycle","idempotency_key":"life:1"})");
  EXPECT_EQ(reused.status, 201);
  EXPECT_NE(reused.json("id"), id);
}

TEST_F(Api, TwoWorkersClaimingConcurrentlyNeverShareAJob) {
  constexpr int kJobs = 40;
  for (int i = 0; i < kJobs; ++i) make_job("Shared");
  std::vector<std::string> got[2];
  std::barrier start(2);
  auto worker = [&](int w) {
    start.arrive_and_wait();
    for (;;) {
      rapidjson::Document d = json_of(claim(R"({"types":["Shared"],"max":3,"lease_seconds":60})"));
      if (d["jobs"].Size() == 0) return;
      for (const auto& job : d["jobs"].GetArray()) {
        got[w].push_back(job["id"].GetString());
        EXPECT_EQ(job["attempt"].GetInt(), 1);
        EXPECT_EQ(job["status"].GetString(), std::string("running"));
        EXPECT_EQ(std::string(job["lease_token"].GetString()).size(), 36u);
      }
    }
  };
  std::thread other(worker, 1);
  worker(0);
  other.join();
  std::set<std::string> all(got[0].begin(), got[0].end());
  for (const std::string& id : got[1]) EXPECT_TRUE(all.insert(id).second) << id << " claimed twice";
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kJobs));
}

TEST_F(Api, ALongPollingClaimAnswersWithAJobThatCameWhileItWaited) {
  Response got;
  std::thread waiting(
      [&] { got = claim(R"({"types":["LongPolled"],"max":5,"wait_seconds":20})"); });
  // The job is made once the claim is seen waiting for one.
  auto waiting_claims = [] {
    return sample(request_once(gateway_->port(), "GET", "/metrics").body, "flare_claims_waiting");
  };
  EXPECT_TRUE(eventually([&] { return waiting_claims() >= 1; })) << "the claim never waited";
  auto asked = std::chrono::steady_clock::now();
  std::string id = make_job("LongPolled");
  waiting.join();
  ASSERT_EQ(got.status, 200) << got.body;
  rapidjson::Document d = json_of(got);
  ASSERT_EQ(d["jobs"].Size(), 1u) << got.body;
  EXPECT_EQ(d["jobs"][0]["id"].GetString(), id);
  EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::seconds(10))
      << "answered once the job came, not at the end of the wait";

  auto idle = std::chrono::steady_clock::now();
  Response none = claim(R"({"types":["NeverMade"],"wait_seconds":1})");
  auto waited = std::chrono::steady_clock::now() - idle;
  EXPECT_EQ(none.status, 200);
  EXPECT_EQ(json_of(none)["jobs"].Size(), 0u);
  EXPECT_GE(waited, std::chrono::seconds(1));
  EXPECT_LT(waited, std::chrono::seconds(5));

  expect_invalid(claim(R"({"wait_seconds":31})"), "wait_seconds");
  expect_invalid(claim(R"({"wait_seconds":-1})"), "wait_seconds");
  expect_invalid(claim(R"({"wait_seconds":"5"})"), "wait_seconds");
}

TEST_F(Api, ABatchCompleteEndsEachJobWhoseLeaseItHolds) {
  std::string a = make_job("Batched");
  std::string b = make_job("Batched");
  rapidjson::Document d = json_of(claim(R"({"types":["Batched"],"max":2,"lease_seconds":60})"));
  ASSERT_EQ(d["jobs"].Size(), 2u);
  std::map<std::string, std::string> token;
  for (const auto& job : d["jobs"].GetArray()) {
    token[job["id"].GetString()] = job["lease_token"].GetString();
  }
  const std::string stranger = "00000000-0000-7000-8000-000000000001";
  auto entry = [](const std::string& id, const std::string& lease) {
    return R"({"id":")" + id + R"(","lease_token":")" + lease + R"("})";
  };
  Response r = call("POST", "/v1/jobs/complete",
                    R"({"jobs":[)" + entry(a, token[a]) + "," + entry(b, stranger) + "," +
                        entry(stranger, token[a]) + "]}");
  ASSERT_EQ(r.status, 200) << r.body;
  rapidjson::Document out = json_of(r);
  EXPECT_EQ(out["completed"].GetInt(), 1);
  ASSERT_EQ(out["jobs"].Size(), 3u);
  const std::string results[] = {"succeeded", "lease_lost", "job_not_found"};
  for (int i = 0; i < 3; ++i) EXPECT_EQ(out["jobs"][i]["result"].GetString(), results[i]) << i;
  EXPECT_EQ(out["jobs"][0]["id"].GetString(), a);
  EXPECT_EQ(json_of(call("GET", "/v1/jobs/" + a))["status"].GetString(), std::string("succeeded"));
  EXPECT_EQ(json_of(call("GET", "/v1/jobs/" + b))["status"].GetString(), std::string("running"))
      << "a wrong token changes nothing";

  // Completing again: the lease is gone with the first completion.
  rapidjson::Document again =
      json_of(call("POST", "/v1/jobs/complete", R"({"jobs":[)" + entry(a, token[a]) + "]}"));
  EXPECT_EQ(again["jobs"][0]["result"].GetString(), std::string("lease_lost"));

  for (const std::string& body :
       {std::string(R"({"jobs":[]})"), std::string(R"({"jobs":{}})"), std::string("{}"),
        R"({"jobs":[)" + entry(a, "nope") + "]}",
        R"({"jobs":[)" + entry(b, token[b]) + "," + entry(b, token[b]) + "]}",
        R"({"jobs":[{"id":")" + b + R"(","lease_token":")" + token[b] + R"(","x":1}]})"}) {
    expect_invalid(call("POST", "/v1/jobs/complete", body), "jobs");
  }
  std::string many;
  for (int i = 0; i < 101; ++i) {
    if (i > 0) many += ",";
    many += entry(b, token[b]);
  }
  expect_invalid(call("POST", "/v1/jobs/complete", R"({"jobs":[)" + many + "]}"), "jobs");
  EXPECT_EQ(call("GET", "/v1/jobs/complete").status, 405);
  EXPECT_EQ(
      call("POST", "/v1/jobs/complete", R"({"jobs":[)" + entry(b, token[b]) + "]}", "").status,
      401);
}

TEST_F(Api, ExpiredLeaseIsClaimedAgainAndTheFirstHolderLosesIt) {
  std::string id = make_job("Leased");
  rapidjson::Document first = claim_one("Leased", 1);
  ASSERT_EQ(first["jobs"].Size(), 1u);
  std::string stale = first["jobs"][0]["lease_token"].GetString();
  EXPECT_EQ(first["jobs"][0]["id"].GetString(), id);

  // After the one-second lease, another worker gets the job, as attempt 2.
  rapidjson::Document second = claim_one("Leased", 30);
  ASSERT_EQ(second["jobs"].Size(), 1u);
  EXPECT_EQ(second["jobs"][0]["id"].GetString(), id);
  EXPECT_EQ(second["jobs"][0]["attempt"].GetInt(), 2);
  std::string current = second["jobs"][0]["lease_token"].GetString();
  EXPECT_NE(current, stale);

  for (const char* action : {"complete", "heartbeat", "fail"}) {
    Response r =
        call("POST", "/v1/jobs/" + id + "/" + action, R"({"lease_token":")" + stale + "\"}");
    expect_error(r, 409, "lease_lost");
    EXPECT_EQ(r.json("status"), "running");
  }
  Response beat = call("POST", "/v1/jobs/" + id + "/heartbeat",
                       R"({"lease_token":")" + current + R"(","lease_seconds":120})");
  EXPECT_EQ(beat.status, 200) << beat.body;
  EXPECT_GT(beat.json("locked_until"), std::string(second["jobs"][0]["locked_until"].GetString()));
  Response done =
      call("POST", "/v1/jobs/" + id + "/complete", R"({"lease_token":")" + current + "\"}");
  EXPECT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(done.json("status"), "succeeded");
  EXPECT_FALSE(done.json("completed_at").empty());
  expect_error(
      call("POST", "/v1/jobs/" + id + "/complete", R"({"lease_token":")" + current + "\"}"), 409,
      "lease_lost");
  expect_invalid(call("POST", "/v1/jobs/" + id + "/complete", R"({"lease_token":"nope"})"),
                 "lease_token");
}

TEST_F(Api, FailUntilDeadThenRetry) {
  std::string id = make_job("Flaky");  // 3 attempts, 1 ms apart
  for (int attempt = 1; attempt <= 3; ++attempt) {
    rapidjson::Document c = claim_one("Flaky");
    ASSERT_EQ(c["jobs"].Size(), 1u);
    EXPECT_EQ(c["jobs"][0]["attempt"].GetInt(), attempt);
    Response failed =
        call("POST", "/v1/jobs/" + id + "/fail",
             R"({"lease_token":")" + std::string(c["jobs"][0]["lease_token"].GetString()) +
                 R"(","error":"timeout )" + std::to_string(attempt) + "\"}");
    ASSERT_EQ(failed.status, 200) << failed.body;
    EXPECT_EQ(failed.json("status"), attempt < 3 ? "retrying" : "dead");
    EXPECT_EQ(failed.json("last_error"), "timeout " + std::to_string(attempt));
  }
  rapidjson::Document dead = json_of(call("GET", "/v1/jobs?status=dead&type=Flaky"));
  ASSERT_EQ(dead["jobs"].Size(), 1u);
  EXPECT_EQ(dead["jobs"][0]["attempts"].GetInt(), 3);

  Response retried = call("POST", "/v1/jobs/" + id + "/retry");
  EXPECT_EQ(retried.status, 200);
  rapidjson::Document job = json_of(retried);
  EXPECT_EQ(job["status"].GetString(), std::string("queued"));
  EXPECT_EQ(job["attempts"].GetInt(), 3);      // the history stays
  EXPECT_EQ(job["max_attempts"].GetInt(), 6);  // and the allowance is granted again
  EXPECT_EQ(claim_one("Flaky")["jobs"][0]["attempt"].GetInt(), 4);
}

TEST_F(Api, FailWithoutRetryIsDeadAtOnce) {
  std::string id = make_job("Fatal");
  rapidjson::Document c = claim_one("Fatal");
  std::string token = c["jobs"][0]["lease_token"].GetString();
  expect_invalid(call("POST", "/v1/jobs/" + id + "/fail",
                      R"({"lease_token":")" + token + R"(","retry":"no"})"),
                 "retry");
  Response r = call("POST", "/v1/jobs/" + id + "/fail",
                    R"({"lease_token":")" + token + R"(","error":"bad input","retry":false})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.json("status"), "dead");
}

TEST_F(Api, ClaimValidationAndTypes) {
  expect_error(claim("nope"), 400, "invalid_json");
  expect_invalid(claim(R"({"max":0})"), "max");
  expect_invalid(claim(R"({"max":101})"), "max");
  expect_invalid(claim(R"({"lease_seconds":0})"), "lease_seconds");
  expect_invalid(claim(R"({"types":"Shared"})"), "types");
  expect_invalid(claim(R"({"types":[1]})"), "types");
  expect_invalid(claim(R"({"wait":true})"), "wait");
  make_job("Urgent", R"(,"priority":5)");
  make_job("Urgent", R"(,"priority":9)");
  rapidjson::Document d = json_of(claim(R"({"types":["Urgent"],"max":10})"));
  ASSERT_EQ(d["jobs"].Size(), 2u);
  EXPECT_EQ(d["jobs"][0]["priority"].GetInt(), 9);
  EXPECT_EQ(d["jobs"][1]["priority"].GetInt(), 5);
  EXPECT_EQ(json_of(claim(R"({"types":["Urgent"]})"))["jobs"].Size(), 0u);
}

// Webhook jobs are jobs of their project, pulled like any other; their bytes are shown as JSON
// when they are JSON, else as base64.
TEST_F(Api, WebhookJobsArePulledLikeAnyOther) {
  std::string stripe = stripe_body("evt_pulled", "customer.created");
  ASSERT_EQ(
      request_once(gateway_->port(), "POST", "/webhooks/stripe", stripe_headers(stripe), stripe)
          .status,
      202);
  std::string form = "a=1&b=2";
  ASSERT_EQ(request_once(gateway_->port(), "POST", "/webhooks/github",
                         github_headers(form, "delivery-pulled", "issues"), form)
                .status,
            202);
  rapidjson::Document s = claim_one("stripe.customer.created");
  EXPECT_EQ(s["jobs"][0]["payload"]["id"].GetString(), std::string("evt_pulled"));
  EXPECT_EQ(s["jobs"][0]["source"].GetString(), std::string("stripe"));
  EXPECT_EQ(s["jobs"][0]["event_id"].GetString(), std::string("evt_pulled"));
  EXPECT_EQ(s["jobs"][0]["idempotency_key"].GetString(), std::string("webhook:evt_pulled"));
  rapidjson::Document g = claim_one("github.issues");
  EXPECT_FALSE(g["jobs"][0].HasMember("payload"));
  EXPECT_EQ(g["jobs"][0]["payload_base64"].GetString(), std::string("YT0xJmI9Mg=="));
  EXPECT_EQ(g["jobs"][0]["content_type"].GetString(),
            std::string("application/x-www-form-urlencoded"));
}

// The key is checked from the header alone: a caller without a valid one is answered before any
// byte of its body is read, and is never invited to send it.
TEST(ApiKey, CheckedBeforeTheBodyIsRead) {
  TestDatabase db;
  std::string config = gateway_config(db.url());
  config.replace(config.find("max_body_bytes: 65536"), 21, "max_body_bytes: 2097152");
  Gateway gateway(config);
  std::string head =
      "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 1048576\r\n";
  // No key, asking before sending 1 MiB: the 401 instead of 100 Continue, and the connection
  // closes, the body never having been read.
  RawConnection asking(gateway.port());
  asking.send(head + "Expect: 100-continue\r\n\r\n");
  Response none = asking.read_response();
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.json("code"), "unauthorized");
  EXPECT_EQ(none.header("connection"), "close");
  EXPECT_TRUE(asking.closed_within(5000));
  // A wrong key and the first KiB of the body: answered while the rest is still unsent.
  RawConnection sending(gateway.port());
  sending.send(head + "Authorization: Bearer wrong-key\r\n\r\n" + std::string(1024, ' '));
  EXPECT_EQ(sending.read_response().status, 401);
  // With the project's key the same request is invited to send its body.
  RawConnection keyed(gateway.port());
  keyed.send(head + "Authorization: Bearer " + kShopKey + "\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(keyed.read_response().status, 100);
}

}  // namespace
}  // namespace flare::test
