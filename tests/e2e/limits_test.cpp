// Connection-level limits: how many connections, how long a silent one may stay.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <memory>
#include <random>

#include "e2e/fixtures.hpp"
#include "support/database.hpp"

namespace flare::test {
namespace {

TEST(Limits, ConnectionsBeyondTheLimitAreClosedOthersKeepWorking) {
  TestDatabase db;
  Gateway gateway(gateway_config(db.url(), "  max_connections: 2\n"));
  HttpClient first(gateway.port());
  HttpClient second(gateway.port());
  // A request on each: both are accepted and counted before the third arrives.
  ASSERT_EQ(first.request("GET", "/healthz").status, 200);
  ASSERT_EQ(second.request("GET", "/healthz").status, 200);
  RawConnection third(gateway.port());
  EXPECT_TRUE(third.closed_within(5000));
  EXPECT_EQ(first.request("GET", "/healthz").status, 200);
}

TEST(Limits, IdleConnectionIsClosedAfterTheIdleTimeout) {
  TestDatabase db;
  Gateway gateway(gateway_config(db.url(), "  idle_timeout_ms: 200\n"));
  RawConnection silent(gateway.port());
  EXPECT_TRUE(silent.closed_within(5000));
  RawConnection slow(gateway.port());
  slow.send("POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\n");  // and never the rest
  EXPECT_TRUE(slow.closed_within(5000));
}

// A connection closed on a timer leaves a trace: counted by what was late, and logged (at most
// a line every 10 s) when a sender stalled, not when a kept-alive connection simply ended.
TEST(Limits, TimeoutsAreCountedByReasonAndLogged) {
  TestDatabase db;
  std::string config = gateway_config(db.url(), "  idle_timeout_ms: 200\n");
  config.replace(config.find("read_timeout_ms: 5000"), 21, "read_timeout_ms: 300");
  Gateway gateway(config);
  RawConnection idle(gateway.port());
  RawConnection stalled_header(gateway.port());
  stalled_header.send("POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\n");
  RawConnection stalled_body(gateway.port());
  stalled_body.send("POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{");
  EXPECT_TRUE(idle.closed_within(5000));
  EXPECT_TRUE(stalled_header.closed_within(5000));
  EXPECT_TRUE(stalled_body.closed_within(5000));
  std::string metrics = request_once(gateway.port(), "GET", "/metrics").body;
  EXPECT_EQ(sample(metrics, R"(flare_timeouts_total{reason="idle"})"), 1) << metrics;
  EXPECT_EQ(sample(metrics, R"(flare_timeouts_total{reason="header"})"), 1) << metrics;
  EXPECT_EQ(sample(metrics, R"(flare_timeouts_total{reason="body"})"), 1) << metrics;
  EXPECT_EQ(sample(metrics, R"(flare_timeouts_total{reason="write"})"), 0) << metrics;
  // The first stalled sender is logged; the second within 10 s only counted, and numbered in
  // the next line.
  EXPECT_TRUE(gateway.wait_for_output("timeout reason=", std::chrono::seconds(5)));
  std::string out = gateway.output();
  EXPECT_NE(out.find("client=127.0.0.1 unlogged_before=0"), std::string::npos) << out;
  EXPECT_EQ(out.find("timeout reason=idle"), std::string::npos) << out;
  EXPECT_EQ(out.find("timeout reason=", out.find("timeout reason=") + 1), std::string::npos) << out;
}

// What connections took goes back to the system once they are gone: after thousands of idle
// connections, stalled headers and slow uploads, and the hostile requests of the probes (a
// 100 KB header, a signature header of 10,000 entries, 100,000-deep JSON, random bytes), the
// gateway's memory falls back by at least half of what they added, within a few seconds.
TEST(Limits, MemoryThatConnectionsTookIsGivenBack) {
  // The probes' connections are this process's descriptors too.
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);
  std::size_t idle = std::min<std::size_t>(5000, (files.rlim_cur - 500) * 5 / 8);
  std::size_t stalled = idle * 2 / 5;
  TestDatabase db;
  std::string config = gateway_config(db.url());
  config.replace(config.find("max_body_bytes: 65536"), 21, "max_body_bytes: 1048576");
  Gateway gateway(config);
  std::uint16_t port = gateway.port();
  long start = gateway.status_kib("VmRSS");
  long peak = 0;
  {
    std::vector<std::unique_ptr<RawConnection>> held;
    for (std::size_t i = 0; i < idle; ++i) held.push_back(std::make_unique<RawConnection>(port));
    for (std::size_t i = 0; i < stalled; ++i) {
      held.push_back(std::make_unique<RawConnection>(port));
      held.back()->send("POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\n");
    }
    // Connections are accepted in turn: once this one is answered, all of the above are open.
    ASSERT_EQ(request_once(port, "GET", "/healthz").status, 200);

    RawConnection big_header(port);
    big_header.send("GET /healthz HTTP/1.1\r\nX-Big: " + std::string(100 * 1024, 'a') + "\r\n\r\n");
    EXPECT_EQ(big_header.read_response().status, 431);
    std::string entries = "t=" + std::to_string(now_unix());
    for (int i = 0; i < 10000; ++i) entries += ",v1=" + std::string(64, '0');
    RawConnection many_entries(port);
    many_entries.send("POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nStripe-Signature: " + entries +
                      "\r\nContent-Length: 2\r\n\r\n{}");
    EXPECT_EQ(many_entries.read_response().status, 431);
    std::string deep = std::string(100000, '[') + std::string(100000, ']');
    Response nested =
        request_once(port, "POST", "/webhooks/stripe-connect", stripe_headers(deep), deep);
    EXPECT_EQ(nested.status, 400) << nested.body;
    std::string noise(64 * 1024, '\0');
    std::mt19937 random(7);
    for (char& c : noise) c = static_cast<char>(random());
    RawConnection garbage(port);
    garbage.send(noise);
    EXPECT_EQ(garbage.read_response().status, 400);
    // The probes' own figure, before any body is uploaded.
    long probes_peak = gateway.status_kib("VmHWM");
    std::cout << "[ memory   ] peak " << probes_peak << " KiB through the probes\n";
    EXPECT_LT(probes_peak, 64 * 1024);

    for (int i = 0; i < 200; ++i) {
      held.push_back(std::make_unique<RawConnection>(port));
      held.back()->send(
          "POST /webhooks/stripe-connect HTTP/1.1\r\nHost: x\r\n"
          "Content-Length: 1048576\r\n\r\n" +
          std::string(64 * 1024, ' '));
    }
    ASSERT_EQ(request_once(port, "GET", "/healthz").status, 200);
    peak = gateway.status_kib("VmRSS");
  }
  long now = 0;
  for (int round = 0; round < 60; ++round) {
    now = gateway.status_kib("VmRSS");
    if (now <= start + (peak - start) / 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  std::cout << "[ memory   ] " << idle << " idle, " << stalled << " stalled, 200 uploading: RSS "
            << start << " KiB at start, " << peak << " KiB with them, " << now
            << " KiB once they were gone\n";
  EXPECT_LE(now, start + (peak - start) / 2);
}

// Bodies hold no more than server.body_memory_bytes together, counted as they arrive and until
// their requests are answered: a body that would take more is refused while it is read.
TEST(Limits, BodiesHoldNoMoreThanTheirBudget) {
  TestDatabase db;
  std::string config = gateway_config(db.url(), "  body_memory_bytes: 1048576\n");
  config.replace(config.find("max_body_bytes: 65536"), 21, "max_body_bytes: 1048576");
  Gateway gateway(config);
  std::string head =
      "POST /webhooks/stripe-connect HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n";
  RawConnection first(gateway.port());
  first.send(head + std::string(600 * 1024, ' '));
  // Once the first upload's 600 KiB are counted, a second one fits only 400 KiB more.
  RawConnection second(gateway.port());
  second.send(head);
  Response refused;
  std::string chunk(64 * 1024, ' ');
  for (int i = 0; i < 16 && refused.status == 0; ++i) {
    second.send(chunk);
    try {
      refused = second.read_response(200);
    } catch (const std::exception&) {
    }
  }
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(refused.json("code"), "unavailable");
  EXPECT_NE(refused.json("message").find("request bodies"), std::string::npos) << refused.body;
  EXPECT_EQ(refused.header("retry-after"), "5");
  // The first upload ends (an unsigned body: 400); answered, it gives its share back, and a
  // body of 900 KiB fits again.
  first.send(std::string(1048576 - 600 * 1024, ' '));
  EXPECT_EQ(first.read_response().status, 400);
  std::string big = stripe_body("evt_after_budget") + std::string(900 * 1024, ' ');
  EXPECT_EQ(
      request_once(gateway.port(), "POST", "/webhooks/stripe-connect", stripe_headers(big), big)
          .status,
      202);
}

}  // namespace
}  // namespace flare::test
