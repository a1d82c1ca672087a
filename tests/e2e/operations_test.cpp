// What operators rely on: request ids, both log formats, a base path behind a proxy, and the
// `jobs` subcommands, each through the real binary.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "e2e/fixtures.hpp"

namespace flare::test {
namespace {

class Operations : public GatewaySuite {
 protected:
  static Response post(const std::string& source, const HeaderList& headers,
                       const std::string& body) {
    return request_once(gateway_->port(), "POST", "/webhooks/" + source, headers, body);
  }
};

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  std::size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// The log line of the request whose event id is `event_id`.
std::string line_of(Gateway& gateway, const std::string& event_id) {
  EXPECT_TRUE(gateway.wait_for_output(event_id, std::chrono::seconds(5)));
  std::string log = gateway.output();
  std::size_t at = log.find(event_id);
  if (at == std::string::npos) return "";
  std::size_t start = log.rfind('\n', at) + 1;
  return log.substr(start, log.find('\n', at) - start);
}

TEST_F(Operations, RequestIdFromATrustedProxyIsEchoedAndLogged) {
  std::string body = stripe_body("evt_ops_rid_1");
  HeaderList headers = stripe_headers(body);
  headers.emplace_back("X-Request-Id", "proxy-4f1c2a");
  headers.emplace_back("X-Forwarded-Proto", "https");
  Response r = post("stripe", headers, body);
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.header("x-request-id"), "proxy-4f1c2a");
  std::string line = line_of(*gateway_, "evt_ops_rid_1");
  EXPECT_NE(line.find("request_id=proxy-4f1c2a client=127.0.0.1 proto=https "), std::string::npos)
      << line;
  // An id that could break a log line is replaced by one of ours.
  body = stripe_body("evt_ops_rid_2");
  headers = stripe_headers(body);
  headers.emplace_back("X-Request-Id", "a b\"c");
  r = post("stripe", headers, body);
  EXPECT_NE(r.header("x-request-id"), "a b\"c");
  EXPECT_FALSE(r.header("x-request-id").empty());
}

TEST_F(Operations, GeneratedRequestIdsAreUniqueAndUntrustedHeadersIgnored) {
  std::string config = replaced(gateway_config(db_->url()), R"(trusted_proxies: ["127.0.0.1/32"])",
                                "trusted_proxies: []");
  Gateway direct(config);
  std::set<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    Response r = request_once(direct.port(), "GET", "/healthz",
                              {{"X-Request-Id", "spoofed"}, {"X-Forwarded-For", "203.0.113.1"}});
    ASSERT_EQ(r.status, 200);
    ids.insert(r.header("x-request-id"));
  }
  EXPECT_EQ(ids.size(), 20u);
  EXPECT_EQ(ids.count("spoofed"), 0u);
  std::string body = stripe_body("evt_ops_untrusted");
  HeaderList headers = stripe_headers(body);
  headers.emplace_back("X-Forwarded-For", "203.0.113.1");
  headers.emplace_back("X-Forwarded-Proto", "https");
  ASSERT_EQ(request_once(direct.port(), "POST", "/webhooks/stripe", headers, body).status, 202);
  std::string line = line_of(direct, "evt_ops_untrusted");
  EXPECT_NE(line.find("client=127.0.0.1 proto=http "), std::string::npos) << line;
}

// The request lines in `log` of events <prefix>0 to <prefix><n - 1>: every line whole, once,
// in the order of the requests.
void expect_request_lines(const std::string& log, const std::string& prefix, int n) {
  std::istringstream lines(log);
  std::string line;
  int next = 0;
  while (std::getline(lines, line)) {
    std::size_t at = line.find("event_id=" + prefix);
    if (at == std::string::npos) continue;
    EXPECT_EQ(line.substr(at), "event_id=" + prefix + std::to_string(next)) << line;
    EXPECT_NE(line.find(" info request_id="), std::string::npos) << line;
    EXPECT_NE(line.find("outcome=accepted status=202"), std::string::npos) << line;
    ++next;
  }
  EXPECT_EQ(next, n);
}

// POSTs events <prefix>0 to <prefix><n - 1>, one after another, each accepted.
void post_events(std::uint16_t port, const std::string& prefix, int n) {
  HttpClient client(port);
  for (int i = 0; i < n; ++i) {
    std::string body = stripe_body(prefix + std::to_string(i));
    ASSERT_EQ(client.request("POST", "/webhooks/stripe", stripe_headers(body), body).status, 202);
  }
}

// A connection's request lines leave its thread in chunks (or after a short delay): every line
// arrives whole, once, in the order of the requests.
TEST_F(Operations, RequestLinesArriveWholeOnceAndInOrder) {
  constexpr int kRequests = 60;  // about 13 KiB of lines: several chunks and a delayed rest
  post_events(gateway_->port(), "evt_lines_", kRequests);
  ASSERT_TRUE(gateway_->wait_for_output("event_id=evt_lines_" + std::to_string(kRequests - 1),
                                        std::chrono::seconds(5)));
  expect_request_lines(gateway_->output(), "evt_lines_", kRequests);
}

// With stdout on a file, the log's writeback is started every 256 KiB on the way (gateway/log.cpp):
// past two of those, every line still arrives whole, once, in order.
TEST_F(Operations, RequestLinesToAFileArriveWholeOnceAndInOrder) {
  constexpr int kRequests = 3000;  // over 512 KiB of lines
  TempFile file("", ".log");
  Gateway gateway(gateway_config(db_->url()), {"serve"}, true, file.path());
  post_events(gateway.port(), "evt_file_", kRequests);
  ASSERT_TRUE(gateway.wait_for_output("event_id=evt_file_" + std::to_string(kRequests - 1),
                                      std::chrono::seconds(5)));
  EXPECT_EQ(gateway.terminate(), 0);
  std::ifstream in(file.path(), std::ios::binary);
  std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_GT(log.size(), 512u << 10);
  expect_request_lines(log, "evt_file_", kRequests);
  EXPECT_NE(log.find(" info stopped"), std::string::npos);
}

TEST_F(Operations, JsonLogsAreOneObjectPerLine) {
  Gateway json(gateway_config(db_->url()), {"serve", "--log-format", "json"});
  std::string body = stripe_body("evt_ops_json", "charge.refunded");
  HeaderList headers = stripe_headers(body);
  headers.emplace_back("X-Request-Id", "json-1");
  headers.emplace_back("X-Forwarded-For", "198.51.100.23");
  ASSERT_EQ(request_once(json.port(), "POST", "/webhooks/stripe", headers, body).status, 202);
  ASSERT_TRUE(json.wait_for_output("evt_ops_json", std::chrono::seconds(5)));
  std::istringstream lines(json.output());
  std::string line;
  int objects = 0;
  bool found = false;
  while (std::getline(lines, line)) {
    rapidjson::Document doc;
    doc.Parse(line.c_str());
    ASSERT_FALSE(doc.HasParseError()) << line;
    ASSERT_TRUE(doc.IsObject() && doc.HasMember("time") && doc.HasMember("level")) << line;
    ++objects;
    if (!doc.HasMember("event_id") || std::string(doc["event_id"].GetString()) != "evt_ops_json") {
      continue;
    }
    found = true;
    EXPECT_STREQ(doc["request_id"].GetString(), "json-1");
    EXPECT_STREQ(doc["client"].GetString(), "198.51.100.23");
    EXPECT_STREQ(doc["source"].GetString(), "stripe");
    EXPECT_STREQ(doc["outcome"].GetString(), "accepted");
    EXPECT_STREQ(doc["status"].GetString(), "202");
  }
  EXPECT_TRUE(found);
  EXPECT_GE(objects, 3);  // listening, database ready, the request
  EXPECT_EQ(json.output().find("charge.refunded"), std::string::npos);
  EXPECT_EQ(run_binary({"serve", "--config", "x.yaml", "--log-format", "xml"}).exit_code, 2);
}

TEST_F(Operations, BasePath) {
  std::string config = replaced(gateway_config(db_->url()), "  read_timeout_ms: 5000\n",
                                "  read_timeout_ms: 5000\n  base_path: /flare\n");
  Gateway prefixed(config);
  std::string body = stripe_body("evt_ops_base");
  EXPECT_EQ(
      request_once(prefixed.port(), "POST", "/flare/webhooks/stripe", stripe_headers(body), body)
          .status,
      202);
  EXPECT_EQ(
      request_once(prefixed.port(), "POST", "/webhooks/stripe", stripe_headers(body), body).status,
      404);
  EXPECT_EQ(request_once(prefixed.port(), "GET", "/flare/healthz").status, 200);
  EXPECT_EQ(request_once(prefixed.port(), "GET", "/flarex/healthz").status, 404);
  Response jobs = request_once(prefixed.port(), "GET", "/flare/v1/jobs?limit=1",
                               {{"Authorization", "Bearer " + kShopKey}});
  EXPECT_EQ(jobs.status, 200) << jobs.body;
}

TEST_F(Operations, JobsListShowRetry) {
  TempFile config(gateway_config(db_->url()));
  // A dead letter: a job that used its only attempt and failed.
  std::string body = R"({"type":"Report","payload":{"n":1},"max_attempts":1})";
  Response created = request_once(gateway_->port(), "POST", "/v1/jobs",
                                  {{"Authorization", "Bearer " + kShopKey}}, body);
  ASSERT_EQ(created.status, 201) << created.body;
  std::string id = created.json("id");
  Response claimed =
      request_once(gateway_->port(), "POST", "/v1/jobs/claim",
                   {{"Authorization", "Bearer " + kShopKey}}, R"({"types":["Report"],"max":1})");
  ASSERT_EQ(claimed.status, 200) << claimed.body;
  std::string token = db_->scalar("SELECT lease_token FROM jobs WHERE id = '" + id + "'");
  Response failed = request_once(gateway_->port(), "POST", "/v1/jobs/" + id + "/fail",
                                 {{"Authorization", "Bearer " + kShopKey}},
                                 R"({"lease_token":")" + token + R"(","error":"printer on fire"})");
  ASSERT_EQ(failed.status, 200) << failed.body;
  ASSERT_EQ(failed.json("status"), "dead");
  ASSERT_EQ(
      post("stripe", stripe_headers(stripe_body("evt_ops_cli")), stripe_body("evt_ops_cli")).status,
      202);

  RunResult list = run_binary({"jobs", "list", "--config", config.path()});
  ASSERT_EQ(list.exit_code, 0) << list.output;
  std::istringstream lines(list.output);
  std::string header, first;
  std::getline(lines, header);
  std::getline(lines, first);
  EXPECT_EQ(header.rfind("ID", 0), 0u) << header;
  EXPECT_NE(header.find("LAST ERROR"), std::string::npos);
  // Dead letters first, with their error.
  EXPECT_EQ(first.rfind(id, 0), 0u) << list.output;
  EXPECT_NE(first.find("dead"), std::string::npos);
  EXPECT_NE(first.find("printer on fire"), std::string::npos);
  EXPECT_NE(list.output.find("webhook:evt_ops_cli"), std::string::npos);

  RunResult dead = run_binary({"jobs", "list", "--config", config.path(), "--status", "dead"});
  EXPECT_EQ(dead.output.find("webhook:evt_ops_cli"), std::string::npos);
  EXPECT_EQ(run_binary({"jobs", "list", "--config", config.path(), "--status", "zombie"}).exit_code,
            2);

  RunResult show = run_binary({"jobs", "show", "--config", config.path(), id});
  ASSERT_EQ(show.exit_code, 0) << show.output;
  EXPECT_NE(show.output.find("status: dead\n"), std::string::npos) << show.output;
  EXPECT_NE(show.output.find("last_error: printer on fire\n"), std::string::npos);
  EXPECT_NE(show.output.find(R"({"n":1})"), std::string::npos);

  RunResult retry = run_binary({"jobs", "retry", "--config", config.path(), id});
  ASSERT_EQ(retry.exit_code, 0) << retry.output;
  EXPECT_EQ(db_->scalar("SELECT status FROM jobs WHERE id = '" + id + "'"), "queued");
  // Only a dead or cancelled job can be retried; an unknown id is an error too.
  EXPECT_EQ(run_binary({"jobs", "retry", "--config", config.path(), id}).exit_code, 1);
  EXPECT_EQ(run_binary(
                {"jobs", "show", "--config", config.path(), "00000000-0000-4000-8000-000000000000"})
                .exit_code,
            1);
  EXPECT_EQ(run_binary({"jobs", "frobnicate", "--config", config.path()}).exit_code, 2);
  TempFile unreachable(replaced(gateway_config(db_->url()), db_->url(),
                                "host=/nonexistent dbname=flare connect_timeout=1"));
  RunResult down = run_binary({"jobs", "list", "--config", unreachable.path()});
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_NE(down.output.find("the database is unreachable"), std::string::npos) << down.output;
}

// Replicas share one database: deliveries of one event spread over two gateway processes still
// make one job, and every delivery is told its id.
TEST_F(Operations, TwoGatewaysOnOneDatabaseMakeOneJob) {
  Gateway second(gateway_config(db_->url()));
  constexpr int kDeliveries = 20;
  std::string body = stripe_body("evt_ops_replicas");
  std::vector<Response> responses(kDeliveries);
  std::vector<std::thread> threads;
  for (int i = 0; i < kDeliveries; ++i) {
    std::uint16_t port = i % 2 == 0 ? gateway_->port() : second.port();
    threads.emplace_back([&, i, port] {
      responses[i] = request_once(port, "POST", "/webhooks/stripe", stripe_headers(body), body);
    });
  }
  for (std::thread& t : threads) t.join();
  expect_one_job(responses);
  EXPECT_EQ(db_->scalar("SELECT count(*) FROM jobs WHERE event_id = 'evt_ops_replicas'"), "1");
  // Both processes answered some of them.
  EXPECT_TRUE(gateway_->wait_for_output("event_id=evt_ops_replicas", std::chrono::seconds(5)));
  EXPECT_TRUE(second.wait_for_output("event_id=evt_ops_replicas", std::chrono::seconds(5)));
}

}  // namespace
}  // namespace flare::test
