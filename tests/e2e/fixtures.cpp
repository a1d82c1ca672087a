#include "e2e/fixtures.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <set>
#include <sstream>
#include <stdexcept>

#include "providers/hmac.hpp"
#include "support/env.hpp"

namespace flare::test {

std::int64_t now_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string stripe_body(const std::string& event_id, const std::string& type) {
  return R"({"id":")" + event_id + R"(","object":"event","type":")" + type +
         R"(","data":{"object":{"amount":1200}}})";
}

HeaderList stripe_headers(const std::string& body, const std::string& secret, std::int64_t t) {
  std::string ts = std::to_string(t == 0 ? now_unix() : t);
  return {
      {"Content-Type", "application/json"},
      {"Stripe-Signature",
       "t=" + ts + ",v1=" + providers::to_hex(providers::hmac_sha256(secret, ts + "." + body))}};
}

HeaderList github_headers(const std::string& body, const std::string& delivery,
                          const std::string& event) {
  return {{"Content-Type", "application/x-www-form-urlencoded"},
          {"X-GitHub-Delivery", delivery},
          {"X-GitHub-Event", event},
          {"X-Hub-Signature-256",
           "sha256=" + providers::to_hex(providers::hmac_sha256(kGithubSecret, body))}};
}

void expect_one_job(const std::vector<Response>& responses) {
  std::size_t accepted = 0, duplicates = 0;
  std::set<std::string> ids;
  for (const Response& r : responses) {
    accepted += r.status == 202;
    duplicates += r.status == 200;
    ids.insert(r.json("job_id"));
  }
  EXPECT_EQ(accepted, 1u);
  EXPECT_EQ(duplicates, responses.size() - 1);
  EXPECT_EQ(ids.size(), 1u);
}

double sample(const std::string& metrics, const std::string& series) {
  std::istringstream lines(metrics);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

std::string gateway_config(const std::string& database_url, const std::string& server_extra) {
  return R"(server:
  listen: "127.0.0.1:0"
  threads: 2
  max_body_bytes: 65536
  read_timeout_ms: 5000
  trusted_proxies: ["127.0.0.1/32"]
)" + server_extra +
         "database:\n  partitions: " + std::to_string(partitions()) + "\n  url: \"" + database_url +
         R"("
projects:
  - id: shop
    api_keys: [{ sha256: "0c21e3e42e4e7f8e5804de6e2b86484e5248f6ccae2e4f8bfe962f2f0f621006" }]
  - id: other
    api_keys: [{ sha256: "db4fe93bc206354d950662a3b21961a2f2fb4f1f8af2144187be1f137ed60078" }]
workers:
  lease_seconds: 30
  retry: { max_attempts: 3, base_ms: 1, max_ms: 1 }
sources:
  - name: stripe
    provider: stripe
    project: shop
    secrets: [")" +
         kStripeSecret + R"(", ")" + kStripePrevious + R"("]
    max_body_bytes: 2048
  - name: stripe-connect
    provider: stripe
    project: shop
    secrets: [")" +
         kStripeSecret + R"("]
  - name: scoped
    provider: stripe
    project: shop
    secrets: [")" +
         kStripeSecret + R"("]
    key_template: "webhook:{source}:{event_id}"
  - name: github
    provider: github
    project: shop
    secrets: [")" +
         kGithubSecret + R"("]
  - name: clerk
    provider: standard
    project: shop
    secrets: [")" +
         kDestinationSecret + R"("]
  - name: shopify
    provider: shopify
    project: shop
    secrets: ["shpss_e2e_secret"]
  - name: slack
    provider: slack
    project: shop
    secrets: ["slack_e2e_secret"]
  - name: typeform
    provider: hmac
    project: shop
    secrets: ["typeform_e2e_secret"]
    hmac:
      header: Typeform-Signature
      prefix: "sha256="
      encoding: base64
      event_id_pointer: /event_id
      event_type_pointer: /event_type
  - name: zendesk
    provider: hmac
    project: shop
    secrets:
      - zendesk_e2e_secret
      - { value: zendesk_retired_secret, not_after: "2026-01-01T00:00:00Z" }
    hmac:
      header: X-Zendesk-Webhook-Signature
      encoding: base64
      timestamp_header: X-Zendesk-Webhook-Signature-Timestamp
      signed_content: "{timestamp}{body}"
      event_id_pointer: /id
      event_type_pointer: /type
)";
}

std::unique_ptr<TestDatabase> GatewaySuite::db_;
std::unique_ptr<Gateway> GatewaySuite::gateway_;

void GatewaySuite::SetUpTestSuite() {
  db_ = std::make_unique<TestDatabase>();
  gateway_ = std::make_unique<Gateway>(gateway_config(db_->url()));
}

void GatewaySuite::TearDownTestSuite() {
  gateway_.reset();
  db_.reset();
}

std::string delivery_config(const std::string& database_url, std::uint16_t port,
                            const std::string& retry) {
  std::string config = gateway_config(database_url);
  const std::string workers = "workers:\n  lease_seconds: 30\n";
  config.replace(config.find(workers), workers.size(),
                 "workers:\n  concurrency: 2\n  lease_seconds: 3\n  poll_interval_ms: 200\n");
  return config + R"(  - name: pushed
    provider: stripe
    project: shop
    secrets: [")" +
         kStripeSecret + R"("]
    retry: )" +
         retry + R"(
    destination: { url: "http://127.0.0.1:)" +
         std::to_string(port) + R"(/hooks/stripe?tenant=1", secret: ")" + kDestinationSecret +
         R"(", timeout_ms: 2000 }
)";
}

Certificate make_self_signed_certificate() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  if (key == nullptr || cert == nullptr) throw std::runtime_error("cannot make a key");
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  // Clients check an IP address against the subjectAltName, never the common name.
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* san =
      X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
  if (san == nullptr || X509_add_ext(cert, san, -1) != 1) throw std::runtime_error("no SAN");
  X509_EXTENSION_free(san);
  if (X509_sign(cert, key, EVP_sha256()) == 0) throw std::runtime_error("cannot sign");

  auto pem = [](auto write) {
    BIO* bio = BIO_new(BIO_s_mem());
    write(bio);
    char* data = nullptr;
    long size = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<std::size_t>(size));
    BIO_free(bio);
    return out;
  };
  Certificate out;
  out.cert = std::make_unique<TempFile>(pem([&](BIO* b) { PEM_write_bio_X509(b, cert); }), ".pem");
  out.key = std::make_unique<TempFile>(
      pem([&](BIO* b) { PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr); }),
      ".pem");
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

}  // namespace flare::test
