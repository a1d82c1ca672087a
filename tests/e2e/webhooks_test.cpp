// SPEC §3 against the real binary: every status code and error body, rows in the database.
#include <gtest/gtest.h>

#include <barrier>
#include <cstdio>
#include <set>
#include <thread>

#include "e2e/fixtures.hpp"
#include "support/database.hpp"

namespace flare::test {
namespace {

class Webhooks : public GatewaySuite {
 protected:
  static std::uint16_t port() { return gateway_->port(); }
  static std::string count(const std::string& where) {
    return db_->scalar("SELECT count(*) FROM jobs WHERE " + where);
  }
  static Response post(const std::string& source, const HeaderList& headers,
                       const std::string& body) {
    return request_once(port(), "POST", "/webhooks/" + source, headers, body);
  }
  // Every error: the status, its JSON error code, a message, the JSON content type.
  static void expect_error(const Response& r, int status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.json("code"), code) << r.body;
    EXPECT_FALSE(r.json("message").empty()) << r.body;
    EXPECT_EQ(r.header("content-type"), "application/json");
  }
};

TEST_F(Webhooks, StripeAcceptedThenDuplicateWithOneRow) {
  std::string body = stripe_body("evt_accept_1", "payment_intent.succeeded");
  Response first = post("stripe", stripe_headers(body), body);
  ASSERT_EQ(first.status, 202) << first.body;
  EXPECT_EQ(first.json("status"), "accepted");
  EXPECT_EQ(first.json("idempotency_key"), "webhook:evt_accept_1");
  EXPECT_EQ(first.header("content-type"), "application/json");
  std::string id = first.json("job_id");
  ASSERT_FALSE(id.empty());

  auto row = db_->query(
      "SELECT project_id, idempotency_key, type, convert_from(payload, 'UTF8'), "
      "content_type, source, event_id, status FROM jobs WHERE id = '" +
      id + "'");
  ASSERT_EQ(row.size(), 1u);
  EXPECT_EQ(row[0][0].as<std::string>(), "shop");
  EXPECT_EQ(row[0][1].as<std::string>(), "webhook:evt_accept_1");
  EXPECT_EQ(row[0][2].as<std::string>(), "stripe.payment_intent.succeeded");
  EXPECT_EQ(row[0][3].as<std::string>(), body);
  EXPECT_EQ(row[0][4].as<std::string>(), "application/json");
  EXPECT_EQ(row[0][5].as<std::string>(), "stripe");
  EXPECT_EQ(row[0][6].as<std::string>(), "evt_accept_1");
  EXPECT_EQ(row[0][7].as<std::string>(), "queued");

  // Stripe retries with a new timestamp and signature: still the same event.
  Response again = post("stripe", stripe_headers(body, kStripeSecret, now_unix() - 5), body);
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.json("status"), "duplicate");
  EXPECT_EQ(again.json("job_id"), id);
  EXPECT_EQ(again.json("idempotency_key"), "webhook:evt_accept_1");
  EXPECT_EQ(count("idempotency_key = 'webhook:evt_accept_1'"), "1");
}

TEST_F(Webhooks, GithubBodyStoredAsReceived) {
  std::string body = "payload=%7B%22zen%22%3A%22ok%22%7D";
  Response r = post("github", github_headers(body, "d6c9a1e2-0001"), body);
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.json("idempotency_key"), "webhook:d6c9a1e2-0001");
  auto row = db_->query(
      "SELECT type, convert_from(payload, 'UTF8'), content_type FROM jobs "
      "WHERE id = '" +
      r.json("job_id") + "'");
  ASSERT_EQ(row.size(), 1u);
  EXPECT_EQ(row[0][0].as<std::string>(), "github.push");
  EXPECT_EQ(row[0][1].as<std::string>(), body);
  EXPECT_EQ(row[0][2].as<std::string>(), "application/x-www-form-urlencoded");
}

TEST_F(Webhooks, SourcesOfOneProjectShareTheDefaultKeySpace) {
  std::string body = stripe_body("evt_shared");
  Response a = post("stripe", stripe_headers(body), body);
  Response b = post("stripe-connect", stripe_headers(body), body);
  Response c = post("scoped", stripe_headers(body), body);
  EXPECT_EQ(a.status, 202);
  EXPECT_EQ(b.status, 200);
  EXPECT_EQ(b.json("job_id"), a.json("job_id"));
  EXPECT_EQ(c.status, 202);
  EXPECT_EQ(c.json("idempotency_key"), "webhook:scoped:evt_shared");
}

TEST_F(Webhooks, PreviousSecretStillVerifies) {
  std::string body = stripe_body("evt_rotated");
  EXPECT_EQ(post("stripe", stripe_headers(body, kStripePrevious), body).status, 202);
}

TEST_F(Webhooks, RoutingErrors) {
  // Unknown source comes before the method check.
  expect_error(request_once(port(), "GET", "/webhooks/nope"), 404, "unknown_source");
  expect_error(request_once(port(), "POST", "/webhooks/nope", {}, "{}"), 404, "unknown_source");
  Response get = request_once(port(), "GET", "/webhooks/stripe");
  expect_error(get, 405, "method_not_allowed");
  EXPECT_EQ(get.header("allow"), "POST");
  expect_error(request_once(port(), "GET", "/elsewhere"), 404, "not_found");
  Response post_health = request_once(port(), "POST", "/healthz", {}, "x");
  expect_error(post_health, 405, "method_not_allowed");
  EXPECT_EQ(post_health.header("allow"), "GET");
}

TEST_F(Webhooks, HealthAndReadiness) {
  Response health = request_once(port(), "GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.json("status"), "ok");
  Response ready = request_once(port(), "GET", "/readyz?verbose=1");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.json("status"), "ready");
}

TEST_F(Webhooks, SignatureErrors) {
  std::string body = stripe_body("evt_sig");
  expect_error(post("stripe", {{"Content-Type", "application/json"}}, body), 400,
               "missing_signature");
  expect_error(post("stripe", stripe_headers(body, "whsec_wrong"), body), 401, "invalid_signature");
  expect_error(post("stripe", {{"Stripe-Signature", "t=abc"}}, body), 401, "invalid_signature");
  expect_error(post("stripe", stripe_headers(body, kStripeSecret, now_unix() - 301), body), 401,
               "timestamp_out_of_tolerance");
  expect_error(post("stripe", stripe_headers(body, kStripeSecret, now_unix() + 400), body), 401,
               "timestamp_out_of_tolerance");
  expect_error(post("github", {{"X-GitHub-Delivery", "d"}, {"X-GitHub-Event", "push"}}, "x"), 400,
               "missing_signature");
  HeaderList forged = github_headers("x", "d-forged");
  forged.back().second = "sha256=" + std::string(64, '0');
  expect_error(post("github", forged, "x"), 401, "invalid_signature");
  EXPECT_EQ(count("event_id = 'evt_sig' OR event_id = 'd-forged'"), "0");
}

TEST_F(Webhooks, EventIdAndPayloadErrors) {
  std::string empty_id = stripe_body("");
  expect_error(post("stripe", stripe_headers(empty_id), empty_id), 400, "invalid_event_id");
  std::string long_id = stripe_body(std::string(193, 'x'));  // "webhook:" + 193 = 201
  expect_error(post("stripe", stripe_headers(long_id), long_id), 400, "invalid_event_id");
  std::string fits = stripe_body(std::string(192, 'y'));
  EXPECT_EQ(post("stripe", stripe_headers(fits), fits).status, 202);
  std::string broken = R"({"id":"evt_broken",)";
  expect_error(post("stripe", stripe_headers(broken), broken), 400, "invalid_payload");
  std::string body = "x";
  expect_error(post("github", github_headers(body, ""), body), 400, "invalid_event_id");
}

TEST_F(Webhooks, BodyLimitIsExactAndEnforcedWhileReading) {
  // "stripe" accepts 2048 bytes: pad a valid event to exactly that size.
  std::string head = R"({"id":"evt_exact","type":"x","pad":")";
  std::string exact = head + std::string(2048 - head.size() - 2, 'p') + "\"}";
  ASSERT_EQ(exact.size(), 2048u);
  EXPECT_EQ(post("stripe", stripe_headers(exact), exact).status, 202);

  std::string over = exact + " ";
  expect_error(post("stripe", stripe_headers(over), over), 413, "payload_too_large");

  HttpClient::Options chunked;
  chunked.chunked = true;
  HttpClient chunked_client(port(), chunked);
  Response r = chunked_client.request("POST", "/webhooks/stripe", stripe_headers(over), over);
  expect_error(r, 413, "payload_too_large");
  EXPECT_EQ(r.header("connection"), "close");

  // A declared 100 MB body is refused from the header alone, before any of it is sent, and the
  // client can read the answer.
  RawConnection raw(port());
  raw.send("POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n");
  Response early = raw.read_response();
  expect_error(early, 413, "payload_too_large");
  EXPECT_EQ(early.header("connection"), "close");
  // The other sources keep the server's 64 KiB limit.
  std::string big = stripe_body("evt_big_connect") + std::string(10000, ' ');
  EXPECT_EQ(post("stripe-connect", stripe_headers(big), big).status, 202);
}

TEST_F(Webhooks, ExpectContinue) {
  std::string body = stripe_body("evt_continue");
  RawConnection raw(port());
  std::string head = "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n";
  for (const auto& [name, value] : stripe_headers(body)) head += name + ": " + value + "\r\n";
  raw.send(head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n");
  EXPECT_EQ(raw.read_response().status, 100);
  raw.send(body);
  EXPECT_EQ(raw.read_response().status, 202);
}

// An HTTP/1.0 client is not invited to send its body (RFC 9110, 10.1.1): its expectation is
// ignored and the body read as it comes.
TEST_F(Webhooks, ExpectContinueOfHttp10IsIgnored) {
  std::string body = stripe_body("evt_continue_http10");
  RawConnection raw(port());
  std::string head = "POST /webhooks/stripe HTTP/1.0\r\nHost: x\r\nExpect: 100-continue\r\n";
  for (const auto& [name, value] : stripe_headers(body)) head += name + ": " + value + "\r\n";
  raw.send(head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(raw.read_response().status, 202);
}

// The signature is a header: the same field in a chunked body's trailer does not count
// (RFC 9110, 6.5: trailers are not merged into the header).
TEST_F(Webhooks, SignatureInATrailerDoesNotCount) {
  std::string body = stripe_body("evt_trailer");
  std::string trailer;
  for (const auto& [name, value] : stripe_headers(body)) trailer += name + ": " + value + "\r\n";
  char size[16];
  std::snprintf(size, sizeof size, "%zx", body.size());
  RawConnection raw(port());
  raw.send(
      "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
      "Trailer: Stripe-Signature\r\n\r\n" +
      std::string(size) + "\r\n" + body + "\r\n0\r\n" + trailer + "\r\n");
  expect_error(raw.read_response(), 400, "missing_signature");
  EXPECT_EQ(count("event_id = 'evt_trailer'"), "0");
}

TEST_F(Webhooks, MalformedRequestGetsBadRequest) {
  RawConnection raw(port());
  raw.send("NOT HTTP AT ALL\r\n\r\n");
  Response r = raw.read_response();
  expect_error(r, 400, "bad_request");
  EXPECT_TRUE(raw.closed_within(5000));
}

TEST_F(Webhooks, KeepAliveAndHttp10) {
  HttpClient client(port());
  for (int i = 0; i < 3; ++i) {
    std::string body = stripe_body("evt_keepalive_" + std::to_string(i));
    EXPECT_EQ(client.request("POST", "/webhooks/stripe", stripe_headers(body), body).status, 202);
  }
  HttpClient::Options old;
  old.version = 10;
  HttpClient http10(port(), old);
  std::string body = stripe_body("evt_http10");
  Response r = http10.request("POST", "/webhooks/stripe", stripe_headers(body), body);
  EXPECT_EQ(r.status, 202);

  // HTTP/1.0 closes after the response unless the client asks to keep the connection.
  auto raw_request = [&](const std::string& event, const std::string& extra_header) {
    std::string event_body = stripe_body(event);
    std::string head = "POST /webhooks/stripe HTTP/1.0\r\nHost: x\r\n" + extra_header;
    for (const auto& [name, value] : stripe_headers(event_body)) {
      head += name + ": " + value + "\r\n";
    }
    return head + "Content-Length: " + std::to_string(event_body.size()) + "\r\n\r\n" + event_body;
  };
  RawConnection kept(port());
  for (int i = 0; i < 2; ++i) {
    kept.send(raw_request("evt_http10_kept_" + std::to_string(i), "Connection: keep-alive\r\n"));
    Response answer = kept.read_response();
    EXPECT_EQ(answer.status, 202) << answer.body;
    EXPECT_EQ(answer.header("connection"), "keep-alive");
    EXPECT_EQ(answer.header("content-length"), std::to_string(answer.body.size()));
  }
  RawConnection closed(port());
  closed.send(raw_request("evt_http10_closed", ""));
  Response answer = closed.read_response();
  EXPECT_EQ(answer.status, 202) << answer.body;
  EXPECT_EQ(answer.header("connection"), "");
  EXPECT_TRUE(closed.closed_within(5000));
}

// Fifty deliveries of one event at once, on fifty connections: one job.
TEST_F(Webhooks, FiftyConcurrentDeliveriesOfOneEvent) {
  constexpr int kDeliveries = 50;
  std::string body = stripe_body("evt_storm");
  std::vector<Response> responses(kDeliveries);
  std::barrier start(kDeliveries);
  std::vector<std::thread> threads;
  for (int i = 0; i < kDeliveries; ++i) {
    threads.emplace_back([&, i] {
      HttpClient client(port());
      HeaderList headers = stripe_headers(body);
      start.arrive_and_wait();
      responses[i] = client.request("POST", "/webhooks/stripe", headers, body);
    });
  }
  for (std::thread& t : threads) t.join();
  expect_one_job(responses);
  EXPECT_EQ(count("event_id = 'evt_storm'"), "1");
}

TEST_F(Webhooks, LogLineHasOutcomeButNoSecretSignatureOrBody) {
  std::string body = stripe_body("evt_logged", "charge.captured");
  HeaderList headers = stripe_headers(body);
  headers.emplace_back("X-Forwarded-For", "203.0.113.9, 198.51.100.7");
  ASSERT_EQ(post("stripe", headers, body).status, 202);
  ASSERT_TRUE(gateway_->wait_for_output("event_id=evt_logged", std::chrono::seconds(5)));
  std::string log = gateway_->output();
  std::string line = log.substr(log.rfind('\n', log.find("event_id=evt_logged")) + 1);
  line = line.substr(0, line.find('\n'));
  EXPECT_NE(line.find("source=stripe outcome=accepted status=202"), std::string::npos) << line;
  EXPECT_NE(line.find("client=198.51.100.7"), std::string::npos) << line;  // trusted proxy
  std::string signature = headers[1].second.substr(headers[1].second.find("v1=") + 3);
  EXPECT_EQ(log.find(kStripeSecret), std::string::npos);
  EXPECT_EQ(log.find(kGithubSecret), std::string::npos);
  EXPECT_EQ(log.find(signature), std::string::npos);
  EXPECT_EQ(log.find("charge.captured"), std::string::npos);  // from the body only
}

}  // namespace
}  // namespace flare::test
