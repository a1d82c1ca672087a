// The console in a real browser: Debian's headless Chromium over WebDriver, against the real
// binary, its push workers and a receiver, on the test PostgreSQL. Each page the tests visit is
// saved as a screenshot in docs/console/.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "e2e/fixtures.hpp"
#include "providers/hmac.hpp"
#include "support/browser.hpp"
#include "support/receiver.hpp"
#include "support/wait.hpp"

namespace flare::test {
namespace {

const std::string kAliceToken = "console-alice-token";
const std::string kRitaToken = "console-rita-token";  // read-only
const std::string kOlgaToken = "console-olga-token";  // sees project "other" only

std::string digest(const std::string& token) { return providers::to_hex(providers::sha256(token)); }

class Console : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    db_ = std::make_unique<TestDatabase>();
    receiver_ = std::make_unique<Receiver>([](Receiver&, const Received&, std::size_t) {
      return Answer(healthy_ ? 200 : 500, "", false, healthy_ ? "{}" : "{\"error\":\"down\"}");
    });
    gateway_ = std::make_unique<Gateway>(
        delivery_config(db_->url(), receiver_->port(),
                        "{ max_attempts: 2, base_ms: 1, max_ms: 1 }") +
        "console:\n  operators:\n    - { name: alice, token_sha256: \"" + digest(kAliceToken) +
        "\" }\n    - { name: rita, token_sha256: \"" + digest(kRitaToken) +
        "\", read_only: true }\n    - { name: olga, token_sha256: \"" + digest(kOlgaToken) +
        "\", projects: [other] }\n");
    browser_ = std::make_unique<Browser>();
  }
  static void TearDownTestSuite() {
    browser_.reset();
    gateway_.reset();
    receiver_.reset();
    db_.reset();
  }

  static std::string at(const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(gateway_->port()) + "/console" + path;
  }

  static void sign_in(const std::string& token) {
    browser_->go(at("/login"));
    browser_->type("#login input[name=token]", token);
    browser_->click("#login button");
    ASSERT_TRUE(browser_->wait_for("#logout, p.error"));
  }

  static void save(const std::string& name) {
    browser_->screenshot(std::string(FLARE_SOURCE_DIR) + "/docs/console/" + name + ".png");
  }

  // Sends a webhook of `type` to the pushed source; returns its event id.
  static std::string send(const std::string& type, const std::string& body = "") {
    std::string id = "evt_console_" + std::to_string(++sent_);
    std::string payload = body.empty() ? stripe_body(id, type) : body;
    HttpClient client(gateway_->port());
    Response r = client.request("POST", "/webhooks/pushed", stripe_headers(payload), payload);
    EXPECT_EQ(r.status, 202) << r.body;
    return id;
  }

  // Waits until `n` jobs of `type` are in `status`.
  static bool wait_for_jobs(const std::string& type, const std::string& status, int n) {
    return eventually(
        [&] {
          return db_->scalar("SELECT count(*) FROM jobs WHERE type = 'stripe." + type +
                             "' AND status = '" + status + "'") == std::to_string(n);
        },
        std::chrono::seconds(20));
  }

  static std::string route_state() {
    HttpClient client(gateway_->port());
    Response r = client.request("GET", "/v1/routes", {{"Authorization", "Bearer " + kShopKey}});
    std::size_t at = r.body.find("\"state\":\"");
    return at == std::string::npos ? "" : r.body.substr(at + 9, r.body.find('"', at + 9) - at - 9);
  }

  // The CSRF token of the forms of the page the browser shows.
  static std::string page_csrf() {
    std::string json = browser_->run("return document.querySelector('input[name=csrf]').value");
    return json.substr(1, json.size() - 2);
  }

  // A POST of the console's, outside the browser, with the session cookie `cookie`.
  static Response post(const std::string& path, const std::string& cookie,
                       const std::string& form) {
    HttpClient client(gateway_->port());
    HeaderList headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
    if (!cookie.empty()) headers.emplace_back("Cookie", "flare_console=" + cookie);
    return client.request("POST", "/console" + path, headers, form);
  }

  static inline std::atomic<bool> healthy_{true};
  static inline int sent_ = 0;
  static inline std::unique_ptr<TestDatabase> db_;
  static inline std::unique_ptr<Receiver> receiver_;
  static inline std::unique_ptr<Gateway> gateway_;
  static inline std::unique_ptr<Browser> browser_;
};

TEST_F(Console, WithoutASessionEveryPageSendsToSignInAndNothingChanges) {
  browser_->go(at("/"));
  EXPECT_EQ(browser_->url(), at("/login"));
  EXPECT_EQ(browser_->count("form#login"), 1u);
  EXPECT_EQ(browser_->count("#routes"), 0u);
  save("login");
  HttpClient client(gateway_->port());
  for (const char* path :
       {"/console/jobs", "/console/jobs/shop/0190a0b4-0000-7000-8000-000000000000",
        "/console/nowhere"}) {
    Response r = client.request("GET", path);
    EXPECT_EQ(r.status, 303) << path;
    EXPECT_EQ(r.header("location"), "/console/login") << path;
    EXPECT_EQ(r.body, "") << path;
  }
  Response r = post("/routes/pushed/default/pause", "", "csrf=anything");
  EXPECT_EQ(r.status, 303);
  EXPECT_EQ(route_state(), "closed");
}

TEST_F(Console, AWrongTokenIsRefusedAndTheRightOneSignsIn) {
  Response refused = post("/login", "", "token=not-a-token");
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(refused.header("set-cookie"), "");
  sign_in("not-a-token");
  EXPECT_NE(browser_->text("p.error").find("no operator's"), std::string::npos);

  Response signed_in = post("/login", "", "token=" + kAliceToken);
  EXPECT_EQ(signed_in.status, 303);
  EXPECT_EQ(signed_in.header("location"), "/console/");
  std::string cookie = signed_in.header("set-cookie");
  for (const char* flag : {"HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age=28800"}) {
    EXPECT_NE(cookie.find(flag), std::string::npos) << cookie;
  }
  EXPECT_EQ(cookie.find("Secure"), std::string::npos) << "plain HTTP: " << cookie;

  sign_in(kAliceToken);
  EXPECT_EQ(browser_->url(), at("/"));
  EXPECT_EQ(browser_->text("h1"), "Overview");
  HttpClient client(gateway_->port());
  Response page = client.request(
      "GET", "/console/", {{"Cookie", "flare_console=" + browser_->cookie("flare_console")}});
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.header("content-security-policy").find("default-src 'none'"), std::string::npos);
  EXPECT_EQ(page.body.find("<script"), std::string::npos);
}

TEST_F(Console, AFailingRouteShowsInTheOverview) {
  healthy_ = false;
  for (int i = 0; i < 3; ++i) send("invoice.payment_failed");
  ASSERT_TRUE(wait_for_jobs("invoice.payment_failed", "dead", 3));
  sign_in(kAliceToken);
  const std::string row = "#routes tr[data-route=\"pushed/default\"]";
  EXPECT_EQ(browser_->text(row + " td.failures"), "6");
  // Each process adds its counts to the charts' table every 10 s.
  EXPECT_TRUE(browser_->reload_until("#traffic-hour tr[data-series=\"pushed/default\"] td.failed",
                                     "6", std::chrono::seconds(20)));
  EXPECT_EQ(browser_->text("#traffic-hour tr[data-series=\"pushed\"] td.received"), "3");
  EXPECT_EQ(
      browser_->count("#traffic-hour tr[data-series=\"pushed/default\"] rect[fill=\"#dc2626\"]"),
      1u)
      << "one bar of failed attempts";
  EXPECT_EQ(browser_->count("#traffic-hour tr[data-series=\"pushed/default\"] polyline.p99"), 1u);
  save("overview");
  browser_->run(
      "document.querySelector('#traffic-hour tr[data-series=\"pushed\"]').scrollIntoView()");
  save("overview-traffic");
}

TEST_F(Console, ADeadJobShowsItsAttemptsAndARetryMakesItSucceed) {
  healthy_ = false;
  send("invoice.overdue");
  ASSERT_TRUE(wait_for_jobs("invoice.overdue", "dead", 1));
  sign_in(kAliceToken);
  browser_->go(at("/jobs?status=dead&type=stripe.invoice.overdue"));
  save("jobs");
  ASSERT_EQ(browser_->count("#jobs tr[data-job-id]"), 1u);
  browser_->click("#jobs a.job");
  ASSERT_TRUE(browser_->wait_for("#job"));
  EXPECT_NE(browser_->text("#job dd.status").find("dead"), std::string::npos);
  EXPECT_EQ(browser_->count("#attempts tr.attempt"), 2u);
  EXPECT_EQ(browser_->text("#attempts tr.attempt td.status-code"), "500");
  EXPECT_NE(browser_->text("#attempts tr.attempt td.response").find("down"), std::string::npos);
  save("job");

  healthy_ = true;
  browser_->click("#retry button");
  ASSERT_TRUE(browser_->wait_for("p.notice"));
  EXPECT_NE(browser_->text("p.notice").find("queued again"), std::string::npos);
  EXPECT_TRUE(browser_->reload_until("#job dd.status", "succeeded", std::chrono::seconds(20)));
  EXPECT_EQ(browser_->count("#attempts tr.attempt"), 3u);
}

TEST_F(Console, ABulkRetryTakesEveryDeadJobOfTheFilterAfterShowingTheCount) {
  healthy_ = false;
  send("charge.failed");
  send("charge.failed");
  ASSERT_TRUE(wait_for_jobs("charge.failed", "dead", 2));
  sign_in(kAliceToken);
  browser_->go(at("/jobs?type=stripe.charge.failed"));
  browser_->click("#retry-dead");
  ASSERT_TRUE(browser_->wait_for("#retry-count"));
  EXPECT_NE(browser_->text("#retry-count").find("2 dead jobs"), std::string::npos);
  save("retry");

  healthy_ = true;
  browser_->click("#retry-confirm button");
  ASSERT_TRUE(browser_->wait_for("p.notice"));
  EXPECT_NE(browser_->text("p.notice").find("2 dead jobs are queued again"), std::string::npos);
  EXPECT_TRUE(wait_for_jobs("charge.failed", "succeeded", 2));
}

TEST_F(Console, AnOperatorPausesAndResumesARoute) {
  sign_in(kAliceToken);
  const std::string row = "#routes tr[data-route=\"pushed/default\"]";
  browser_->click(row + " form[action$=\"/pause\"] button");
  ASSERT_TRUE(browser_->wait_for(row + " form[action$=\"/resume\"]"));
  EXPECT_EQ(browser_->text(row + " td.state"), "paused");
  EXPECT_EQ(route_state(), "paused");
  browser_->click(row + " form[action$=\"/resume\"] button");
  ASSERT_TRUE(browser_->wait_for(row + " form[action$=\"/pause\"]"));
  EXPECT_EQ(browser_->text(row + " td.state"), "closed");
  EXPECT_EQ(route_state(), "closed");
}

TEST_F(Console, AReplayOfATimeRangeSendsItsEventsAgain) {
  healthy_ = true;
  std::string id = send("invoice.finalized");
  ASSERT_TRUE(wait_for_jobs("invoice.finalized", "succeeded", 1));
  sign_in(kAliceToken);
  const std::string form = "#routes tr[data-route=\"pushed/default\"] form[action$=\"/replay\"]";
  std::string created = db_->scalar(
      "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') "
      "FROM jobs WHERE event_id = '" +
      id + "'");
  // The second the event was stored, and the next.
  browser_->type(form + " input[name=since]", created + "Z");
  browser_->type(form + " input[name=before]",
                 db_->scalar("SELECT to_char((timestamp '" + created +
                             "' + interval '1 second'), 'YYYY-MM-DD\"T\"HH24:MI:SS')") +
                     "Z");
  std::size_t before = receiver_->requests().size();
  browser_->click(form + " button");
  ASSERT_TRUE(browser_->wait_for("p.notice"));
  EXPECT_NE(browser_->text("p.notice").find("A replay of"), std::string::npos);
  EXPECT_TRUE(receiver_->wait_for(before + 1, std::chrono::seconds(10)));
  EXPECT_EQ(db_->scalar("SELECT count(*) FROM replays"), "1");
}

TEST_F(Console, AFormWithoutTheSessionsCsrfTokenIsRefused) {
  sign_in(kAliceToken);
  std::string cookie = browser_->cookie("flare_console");
  ASSERT_EQ(cookie.size(), 64u);
  Response forged = post("/routes/pushed/default/pause", cookie, "csrf=0123456789abcdef");
  EXPECT_EQ(forged.status, 403);
  EXPECT_EQ(route_state(), "closed");
  Response missing = post("/routes/pushed/default/pause", cookie, "");
  EXPECT_EQ(missing.status, 403);
  EXPECT_EQ(route_state(), "closed");
  // The same request with the token of the session's forms goes through.
  std::string csrf = page_csrf();
  Response real = post("/routes/pushed/default/pause", cookie, "csrf=" + csrf);
  EXPECT_EQ(real.status, 303);
  EXPECT_EQ(route_state(), "paused");
  post("/routes/pushed/default/resume", cookie, "csrf=" + csrf);
  EXPECT_EQ(route_state(), "closed");
}

TEST_F(Console, APayloadHoldingAScriptIsShownAsText) {
  healthy_ = true;
  const std::string script = "<script>window.flarePwned = 1</script><img src=x onerror=alert(1)>";
  std::string id = "evt_console_script";
  std::string body = R"({"id":")" + id +
                     R"(","type":"customer.updated","data":{"object":{"name":")" + script +
                     R"("}}})";
  HttpClient client(gateway_->port());
  ASSERT_EQ(client.request("POST", "/webhooks/pushed", stripe_headers(body), body).status, 202);
  sign_in(kAliceToken);
  browser_->go(at("/jobs?type=stripe.customer.updated"));
  browser_->click("#jobs a.job");
  ASSERT_TRUE(browser_->wait_for("#payload"));
  EXPECT_NE(browser_->text("#payload").find(script), std::string::npos);
  EXPECT_EQ(browser_->count("#payload script, #payload img"), 0u);
  EXPECT_EQ(browser_->run("return typeof window.flarePwned"), "\"undefined\"");
}

TEST_F(Console, ASignedOutSessionNoLongerOpensAnything) {
  sign_in(kAliceToken);
  std::string cookie = browser_->cookie("flare_console");
  browser_->click("#logout button");
  ASSERT_TRUE(browser_->wait_for("form#login"));
  EXPECT_EQ(browser_->url(), at("/login"));
  browser_->go(at("/jobs"));
  EXPECT_EQ(browser_->url(), at("/login"));
  // The old cookie, kept by someone, is worth nothing: the session ended on the server.
  HttpClient client(gateway_->port());
  Response r = client.request("GET", "/console/jobs", {{"Cookie", "flare_console=" + cookie}});
  EXPECT_EQ(r.status, 303);
}

TEST_F(Console, AReadOnlyOperatorSeesButCannotAct) {
  sign_in(kRitaToken);
  EXPECT_EQ(browser_->text("h1"), "Overview");
  EXPECT_EQ(browser_->count("#routes form"), 0u);
  std::string cookie = browser_->cookie("flare_console");
  Response r = post("/routes/pushed/default/pause", cookie, "csrf=" + page_csrf());
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(route_state(), "closed");
}

TEST_F(Console, AnOperatorOfOneProjectSeesNothingOfAnother) {
  healthy_ = false;
  std::string id = send("invoice.paid");
  ASSERT_TRUE(wait_for_jobs("invoice.paid", "dead", 1));
  std::string job = db_->scalar("SELECT id FROM jobs WHERE event_id = '" + id + "'");
  sign_in(kOlgaToken);
  EXPECT_EQ(browser_->count("#routes tr[data-route]"), 0u);
  EXPECT_EQ(browser_->text("#dead"), "0");
  browser_->go(at("/jobs"));
  EXPECT_EQ(browser_->count("#jobs tr[data-job-id]"), 0u);
  browser_->go(at("/jobs/shop/" + job));
  EXPECT_EQ(browser_->text("h1"), "Not found");
}

TEST(ConsoleTls, TheSessionCookieIsSecureOverHttps) {
  TestDatabase db;
  Certificate cert = make_self_signed_certificate();
  Gateway gateway(gateway_config(db.url(), "  tls: { cert_file: \"" + cert.cert->path() +
                                               "\", key_file: \"" + cert.key->path() + "\" }\n") +
                  "console:\n  operators: [{ name: alice, token_sha256: \"" + digest(kAliceToken) +
                  "\" }]\n");
  HttpClient::Options tls;
  tls.tls = true;
  HttpClient client(gateway.port(), tls);
  Response r = client.request("POST", "/console/login",
                              {{"Content-Type", "application/x-www-form-urlencoded"}},
                              "token=" + kAliceToken);
  EXPECT_EQ(r.status, 303);
  EXPECT_NE(r.header("set-cookie").find("; Secure"), std::string::npos) << r.header("set-cookie");
}

TEST(ConsoleOff, EveryConsolePathIsNotFoundWithoutAConsole) {
  TestDatabase db;
  Gateway gateway(gateway_config(db.url()));
  HttpClient client(gateway.port());
  for (const char* path : {"/console", "/console/login", "/console/style.css"}) {
    EXPECT_EQ(client.request("GET", path).status, 404) << path;
  }
}

}  // namespace
}  // namespace flare::test
