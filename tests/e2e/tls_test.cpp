// server.tls: the port speaks TLS 1.2+ only, with the configured certificate.
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <signal.h>

#include <fstream>
#include <sstream>

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

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string pem_sha256(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  X509* cert = f ? PEM_read_X509(f, nullptr, nullptr, nullptr) : nullptr;
  if (f) std::fclose(f);
  std::string out = cert ? certificate_sha256(cert) : "";
  X509_free(cert);
  return out;
}

// A renewed certificate is served to new connections after SIGHUP; open connections go on with
// theirs; files that do not load leave the current certificate in place.
TEST(Tls, SighupReloadsTheCertificateWithoutDroppingConnections) {
  TestDatabase db;
  Certificate old_cert = make_self_signed_certificate();
  Certificate new_cert = make_self_signed_certificate();
  const std::string cert_path = old_cert.cert->path(), key_path = old_cert.key->path();
  Gateway gateway(gateway_config(
      db.url(), "  tls: { cert_file: \"" + cert_path + "\", key_file: \"" + key_path + "\" }\n"));
  HttpClient::Options tls;
  tls.tls = true;
  HttpClient before(gateway.port(), tls);
  ASSERT_EQ(before.peer_certificate_sha256(), pem_sha256(cert_path));
  ASSERT_EQ(before.request("GET", "/healthz").status, 200);

  std::ofstream(cert_path) << file_text(new_cert.cert->path());
  std::ofstream(key_path) << file_text(new_cert.key->path());
  gateway.signal(SIGHUP);
  ASSERT_TRUE(gateway.wait_for_output("reloaded the TLS certificate", std::chrono::seconds(5)))
      << gateway.output();
  HttpClient after(gateway.port(), tls);
  EXPECT_EQ(after.peer_certificate_sha256(), pem_sha256(new_cert.cert->path()));
  EXPECT_NE(after.peer_certificate_sha256(), before.peer_certificate_sha256());
  std::string body = stripe_body("evt_tls_reload");
  EXPECT_EQ(after.request("POST", "/webhooks/stripe", stripe_headers(body), body).status, 202);
  // The connection opened before the reload is still served.
  EXPECT_EQ(before.request("POST", "/webhooks/stripe", stripe_headers(body), body).status, 200);

  // A key that does not match the certificate: refused, the new certificate stays.
  Certificate stray = make_self_signed_certificate();
  std::ofstream(key_path) << file_text(stray.key->path());
  gateway.signal(SIGHUP);
  ASSERT_TRUE(
      gateway.wait_for_output("still serving the previous certificate", std::chrono::seconds(5)))
      << gateway.output();
  HttpClient later(gateway.port(), tls);
  EXPECT_EQ(later.peer_certificate_sha256(), pem_sha256(new_cert.cert->path()));
  EXPECT_EQ(later.request("GET", "/healthz").status, 200);
}

}  // namespace
}  // namespace flare::test
