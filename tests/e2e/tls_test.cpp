// server.tls: the port speaks TLS 1.2+ only, with the configured certificate.
#include <gtest/gtest.h>

#include "e2e/fixtures.hpp"
#include "support/database.hpp"

namespace flare::test {
namespace {

TEST(Tls, ServesWebhooksOverTls) {
  TestDatabase db;
  Certificate cert = make_self_signed_certificate();
  Gateway gateway(gateway_config(db.url(), "  tls: { cert_file: \"" + cert.cert->path() +
                                               "\", key_file: \"" + cert.key->path() + "\" }\n"));
  ASSERT_TRUE(gateway.wait_for_output("listening on https://", std::chrono::seconds(1)));

  HttpClient::Options tls;
  tls.tls = true;
  HttpClient client(gateway.port(), tls);
  std::string body = stripe_body("evt_tls");
  Response r = client.request("POST", "/webhooks/stripe", stripe_headers(body), body);
  EXPECT_EQ(r.status, 202) << r.body;
  // Keep-alive over TLS: the same connection again.
  Response again = client.request("POST", "/webhooks/stripe", stripe_headers(body), body);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.json("job_id"), r.json("job_id"));
  EXPECT_EQ(db.scalar("SELECT count(*) FROM jobs WHERE event_id = 'evt_tls'"), "1");
}

TEST(Tls, RefusesPlainHttpAndOldProtocols) {
  TestDatabase db;
  Certificate cert = make_self_signed_certificate();
  Gateway gateway(gateway_config(db.url(), "  tls: { cert_file: \"" + cert.cert->path() +
                                               "\", key_file: \"" + cert.key->path() + "\" }\n"));
  RawConnection plain(gateway.port());
  plain.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_THROW(plain.read_response(), std::runtime_error);

  HttpClient::Options old;
  old.tls = true;
  old.tls_max_1_1 = true;
  EXPECT_THROW(HttpClient(gateway.port(), old), std::exception);
}

}  // namespace
}  // namespace flare::test
