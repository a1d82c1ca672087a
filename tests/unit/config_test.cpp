#include "config/config.hpp"

#include <gtest/gtest.h>

#include <map>

namespace flare::config {
namespace {

const std::map<std::string, std::string> kEnv = {
    {"DATABASE_URL", "host=/tmp dbname=flare"}, {"STRIPE_SECRET", "whsec_abc"}, {"EMPTY", ""}};

std::optional<std::string> fake_env(const std::string& name) {
  auto it = kEnv.find(name);
  if (it == kEnv.end()) return std::nullopt;
  return it->second;
}

Config parse_ok(const std::string& yaml) { return parse(yaml, "flare.yaml", fake_env); }

// The whole error text for a config expected to be refused.
std::string errors_of(const std::string& yaml) {
  try {
    parse(yaml, "flare.yaml", fake_env);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted:\n" << yaml;
  return "";
}

const std::string kValid = R"(server:
  listen: "127.0.0.1:9090"
  threads: 3
  max_body_bytes: 2048
  trusted_proxies: ["10.0.0.0/8", "::1"]
  idle_timeout_ms: 5000
  read_timeout_ms: 7000
database:
  url: "${DATABASE_URL}"
  pool_size: 2
  committer_lanes: 3
  auto_migrate: false
projects:
  - id: shop
    api_keys: [{ sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" }]
sources:
  - name: stripe
    provider: stripe
    project: shop
    secrets: ["${STRIPE_SECRET}", "${PREVIOUS:-}"]
    tolerance_seconds: 60
    max_body_bytes: 1024
    key_template: "webhook:{source}:{event_id}"
    retry: { max_attempts: 10, base_ms: 500, max_ms: 60000 }
  - name: github
    provider: github
    project: shop
    secrets: ["gh-secret"]
    job_type: GithubEvent
)";

TEST(Config, ReadsEveryField) {
  Config c = parse_ok(kValid);
  EXPECT_EQ(c.server.host, "127.0.0.1");
  EXPECT_EQ(c.server.port, 9090);
  EXPECT_EQ(c.server.threads, 3);
  EXPECT_EQ(c.server.max_body_bytes, 2048u);
  ASSERT_EQ(c.server.trusted_proxies.size(), 2u);
  EXPECT_TRUE(c.server.trusted_proxies[0].contains("10.1.2.3"));
  EXPECT_FALSE(c.server.trusted_proxies[0].contains("11.1.2.3"));
  EXPECT_TRUE(c.server.trusted_proxies[1].contains("::1"));
  EXPECT_FALSE(c.server.trusted_proxies[1].contains("127.0.0.1"));
  EXPECT_EQ(c.server.idle_timeout.count(), 5000);
  EXPECT_EQ(c.server.read_timeout.count(), 7000);
  EXPECT_EQ(c.database.url, "host=/tmp dbname=flare");
  EXPECT_EQ(c.database.pool_size, 2);
  EXPECT_EQ(c.database.committer_lanes, 3);
  EXPECT_FALSE(c.database.auto_migrate);
  ASSERT_EQ(c.projects.size(), 1u);
  EXPECT_EQ(c.projects[0].api_key_sha256.size(), 1u);
  EXPECT_EQ(c.projects[0].api_key_sha256[0][0], 0x9f);
  ASSERT_EQ(c.sources.size(), 2u);
  const Source& s = c.sources[0];
  ASSERT_EQ(s.secrets.size(), 1u);  // the empty optional one dropped
  EXPECT_EQ(s.secrets[0].key, "whsec_abc");
  EXPECT_FALSE(s.secrets[0].not_after);
  EXPECT_EQ(s.tolerance.count(), 60);
  EXPECT_EQ(s.max_body_bytes, 1024u);
  EXPECT_EQ(s.key_template.text, "webhook:{source}:{event_id}");
  EXPECT_EQ(s.retry.max_attempts, 10);
  EXPECT_EQ(s.retry.base_ms, 500);
  EXPECT_EQ(s.retry.max_ms, 60000);
  const Source& g = c.sources[1];
  EXPECT_EQ(g.max_body_bytes, 2048u);  // inherited from server.max_body_bytes
  EXPECT_EQ(g.key_template.text, "webhook:{event_id}");
  EXPECT_EQ(g.job_type, "GithubEvent");
  EXPECT_EQ(g.tolerance.count(), 300);
}

TEST(Config, Defaults) {
  Config c = parse_ok("database: { url: x }\n");
  EXPECT_EQ(c.server.host, "0.0.0.0");
  EXPECT_EQ(c.server.port, 8080);
  EXPECT_EQ(c.server.threads, 2);
  EXPECT_EQ(c.server.max_body_bytes, 1048576u);
  EXPECT_FALSE(c.server.tls.has_value());
  EXPECT_TRUE(c.database.auto_migrate);
  EXPECT_EQ(c.database.pool_size, 4);
  EXPECT_EQ(c.database.committer_lanes, 1);
}

TEST(Config, InterpolatesDefaultsAndIpv6Listen) {
  Config c = parse_ok(
      "server: { listen: \"${LISTEN:-[::1]:0}\" }\ndatabase: { url: \"a${EMPTY}b${NOPE:-c}\" }\n");
  EXPECT_EQ(c.server.host, "::1");
  EXPECT_EQ(c.server.port, 0);
  EXPECT_EQ(c.database.url, "abc");
}

TEST(Config, Workers) {
  Config c = parse_ok(
      "database: { url: x }\nworkers:\n  enabled: false\n  concurrency: 3\n  lease_seconds: 15\n"
      "  batch: 20\n  poll_interval_ms: 250\n  retry: { max_attempts: 4, base_ms: 10, max_ms: 20 "
      "}\n");
  EXPECT_FALSE(c.workers.enabled);
  EXPECT_EQ(c.workers.concurrency, 3);
  EXPECT_EQ(c.workers.batch, 20);
  EXPECT_EQ(c.workers.lease_seconds, 15);
  EXPECT_EQ(c.workers.poll_interval.count(), 250);
  EXPECT_EQ(c.workers.retry.max_attempts, 4);
  EXPECT_EQ(c.workers.retry.base_ms, 10);
  EXPECT_EQ(c.workers.retry.max_ms, 20);
  Config d = parse_ok("database: { url: x }\n");
  EXPECT_TRUE(d.workers.enabled);
  EXPECT_EQ(d.workers.concurrency, 8);
  EXPECT_EQ(d.workers.batch, 500);
  EXPECT_EQ(d.workers.lease_seconds, 60);
  EXPECT_NE(errors_of("database: { url: x }\nworkers: { batch: 0 }\n").find("workers.batch"),
            std::string::npos);
  EXPECT_EQ(
      errors_of(
          "database: { url: x }\nworkers: { threads: 8, retry: { base_ms: 10, max_ms: 5 } }\n"),
      "flare.yaml:2:12: workers.threads: unknown key\n"
      "flare.yaml:2:31: workers.retry.max_ms: must be at least base_ms");
}

TEST(Config, ConsoleOperators) {
  const std::string hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  const std::string other = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";
  Config c = parse_ok(
      "database: { url: x }\nprojects: [{ id: shop }, { id: other }]\nconsole:\n"
      "  session_hours: 2\n  operators:\n    - { name: alice, token_sha256: \"" +
      hash + "\" }\n    - { name: rita, token_sha256: \"" + other +
      "\", projects: [other], read_only: true }\n");
  EXPECT_TRUE(c.console.enabled);
  EXPECT_EQ(c.console.session_lifetime, std::chrono::hours(2));
  ASSERT_EQ(c.console.operators.size(), 2u);
  EXPECT_EQ(c.console.operators[0].name, "alice");
  EXPECT_EQ(c.console.operators[0].token_sha256[0], 0x9f);
  EXPECT_TRUE(c.console.operators[0].sees("shop"));
  EXPECT_FALSE(c.console.operators[0].read_only);
  EXPECT_FALSE(c.console.operators[1].sees("shop"));
  EXPECT_TRUE(c.console.operators[1].sees("other"));
  EXPECT_TRUE(c.console.operators[1].read_only);
  // No block: no console. Switched off: no operator needed.
  EXPECT_FALSE(parse_ok("database: { url: x }\n").console.enabled);
  EXPECT_FALSE(parse_ok("database: { url: x }\nconsole: { enabled: false }\n").console.enabled);
  EXPECT_EQ(errors_of("database: { url: x }\nconsole: {}\n"),
            "flare.yaml:2:10: console.operators: expected a list of at least one operator: "
            "nobody could sign in");
  std::string bad = errors_of(
      "database: { url: x }\nprojects: [{ id: shop }]\nconsole:\n  operators:\n"
      "    - { name: a, token_sha256: \"abc\", projects: [nope] }\n"
      "    - { name: a, token_sha256: \"" +
      hash + "\", colour: red }\n");
  EXPECT_NE(bad.find("console.operators[0].token_sha256: expected 64 hexadecimal digits"),
            std::string::npos)
      << bad;
  EXPECT_NE(bad.find("console.operators[0].projects[0]: no project \"nope\" is configured"),
            std::string::npos)
      << bad;
  EXPECT_NE(bad.find("console.operators[1].colour: unknown key"), std::string::npos) << bad;
  std::string twice =
      errors_of("database: { url: x }\nconsole:\n  operators:\n    - { name: a, token_sha256: \"" +
                hash + "\" }\n    - { name: b, token_sha256: \"" + hash + "\" }\n");
  EXPECT_NE(twice.find("console.operators[1].token_sha256: the same token as operator \"a\""),
            std::string::npos)
      << twice;
}

TEST(Config, RetentionIsInheritedKeyByKeyAndNullMeansForEver) {
  Config c = parse_ok(R"(database: { url: x }
retention: { payload_days: 30, dead_payload_days: 90, interval_seconds: 60, batch_size: 500 }
projects:
  - { id: shop, retention: { payload_days: 7, delete_days: 365 } }
  - { id: other }
sources:
  - { name: a, provider: github, project: shop, secrets: [s] }
  - { name: b, provider: github, project: shop, secrets: [s], retention: { dead_payload_days: ~ } }
)");
  EXPECT_EQ(c.pruning.interval.count(), 60);
  EXPECT_EQ(c.pruning.batch_size, 500);
  EXPECT_EQ(c.projects[0].retention, (Retention{7, 90, 365}));
  EXPECT_EQ(c.projects[1].retention, (Retention{30, 90, std::nullopt}));
  EXPECT_EQ(c.sources[0].retention, c.projects[0].retention);
  EXPECT_EQ(c.sources[1].retention, (Retention{7, std::nullopt, 365}));
  EXPECT_TRUE(c.prunes());
  Config none = parse_ok("database: { url: x }\nprojects: [{ id: p }]\n");
  EXPECT_FALSE(none.prunes());
  EXPECT_EQ(none.pruning.interval.count(), 600);
  EXPECT_EQ(none.pruning.batch_size, 1000);
}

TEST(Config, RetentionRefusesWhatItCannotDo) {
  EXPECT_EQ(errors_of("database: { url: x }\nretention: { payload_days: -1, delete_days: 5, "
                      "batch_size: 0, keep: 1 }\n"),
            "flare.yaml:2:63: retention.keep: unknown key\n"
            "flare.yaml:2:60: retention.batch_size: expected an integer from 1 to 10000\n"
            "flare.yaml:2:28: retention.payload_days: expected an integer from 0 to 36500");
  EXPECT_EQ(
      errors_of("database: { url: x }\nretention: { delete_days: 10 }\nprojects:\n"
                "  - { id: p, retention: { dead_payload_days: 30, interval_seconds: 60 } }\n"),
      "flare.yaml:4:50: projects[0].retention.interval_seconds: unknown key\n"
      "flare.yaml:4:25: projects[0].retention: delete_days (10) must be at least "
      "dead_payload_days (30)");
}

TEST(Config, DestinationIsOneRouteThatTakesEveryEvent) {
  std::string base = "database: { url: x }\nprojects: [{ id: p }]\nsources:\n";
  // "whsec_" + base64 of 24 bytes, as Standard Webhooks secrets are made.
  Config c = parse_ok(base +
                      "  - name: a\n    provider: github\n    project: p\n    secrets: [s]\n"
                      "    retry: { max_attempts: 7 }\n"
                      "    destination: { url: \"https://[::1]:8443/hooks?x=1\", secret: "
                      "\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\", timeout_ms: 2500 }\n");
  ASSERT_EQ(c.sources[0].routes.size(), 1u);
  const Route& d = c.sources[0].routes[0];
  EXPECT_EQ(d.name, "default");
  EXPECT_TRUE(d.types.empty());
  EXPECT_EQ(d.retry.max_attempts, 7);
  EXPECT_TRUE(d.tls);
  EXPECT_EQ(d.host, "::1");
  EXPECT_EQ(d.port, 8443);
  EXPECT_EQ(d.target, "/hooks?x=1");
  EXPECT_EQ(d.key.size(), 24u);
  EXPECT_EQ(d.timeout.count(), 2500);
  Config plain = parse_ok(base +
                          "  - { name: a, provider: github, project: p, secrets: [s], destination: "
                          "{ url: \"http://receiver.internal\", secret: "
                          "\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\" } }\n");
  EXPECT_FALSE(plain.sources[0].routes.at(0).tls);
  EXPECT_EQ(plain.sources[0].routes.at(0).port, 80);
  EXPECT_EQ(plain.sources[0].routes.at(0).target, "/");
  EXPECT_EQ(
      errors_of(base +
                "  - { name: a, provider: github, project: p, secrets: [s], destination: { url: "
                "\"ftp://x\", secret: \"whsec_***\", timeout_ms: 70000 } }\n"),
      "flare.yaml:4:80: sources[0].destination.url: expected http[s]://HOST[:PORT][/PATH]\n"
      "flare.yaml:4:99: sources[0].destination.secret: expected whsec_ and the base64 of at "
      "least 16 bytes\n"
      "flare.yaml:4:124: sources[0].destination.timeout_ms: must be shorter than "
      "workers.lease_seconds");
}

constexpr const char* kRoutes = R"(database: { url: x }
projects: [{ id: p }]
sources:
  - name: stripe
    provider: stripe
    project: p
    secrets: [whsec_x]
    retry: { max_attempts: 9 }
    routes:
      - name: billing
        url: https://billing.internal/hooks/stripe
        secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
        types: ["invoice.*", "customer.subscription.created"]
        timeout_ms: 5000
        max_in_flight: 8
        max_per_second: 50
        retry: { max_attempts: 3, base_ms: 10, max_ms: 20 }
        breaker: { failures: 5, cooldown_ms: 2000 }
      - name: warehouse
        url: http://warehouse.internal:8081/ingest
        secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
)";

TEST(Config, RoutesOfASource) {
  Config c = parse_ok(kRoutes);
  const std::vector<Route>& routes = c.sources[0].routes;
  ASSERT_EQ(routes.size(), 2u);
  EXPECT_EQ(routes[0].name, "billing");
  EXPECT_EQ(routes[0].host, "billing.internal");
  EXPECT_EQ(routes[0].timeout.count(), 5000);
  EXPECT_EQ(routes[0].retry.max_attempts, 3);
  EXPECT_EQ(routes[0].retry.base_ms, 10);
  EXPECT_EQ(routes[0].max_in_flight, 8);
  EXPECT_EQ(routes[0].max_per_second, 50);
  EXPECT_EQ(routes[0].breaker.failures, 5);
  EXPECT_EQ(routes[0].breaker.cooldown.count(), 2000);
  EXPECT_EQ(routes[1].max_in_flight, 0);
  EXPECT_EQ(routes[1].breaker.failures, 10);
  EXPECT_EQ(routes[1].name, "warehouse");
  EXPECT_EQ(routes[1].port, 8081);
  EXPECT_EQ(routes[1].retry.max_attempts, 9);  // the source's
  EXPECT_TRUE(routes[1].types.empty());
}

TEST(Config, RouteTypesAreExactNamesAndPrefixes) {
  Route r;
  r.types = {"invoice.*", "customer.subscription.created"};
  EXPECT_TRUE(r.takes("invoice.paid"));
  EXPECT_TRUE(r.takes("invoice.payment.failed"));
  EXPECT_TRUE(r.takes("customer.subscription.created"));
  EXPECT_FALSE(r.takes("invoice"));
  EXPECT_FALSE(r.takes("invoice."));
  EXPECT_FALSE(r.takes("invoices.paid"));
  EXPECT_FALSE(r.takes("customer.subscription.deleted"));
  EXPECT_FALSE(r.takes("customer.subscription.created.x"));
  EXPECT_TRUE(Route{}.takes("anything"));
}

TEST(Config, BadRoutesAreReportedWithTheirPath) {
  std::string bad = kRoutes;
  bad.replace(bad.find("name: warehouse"), 15, "name: billing");
  bad.replace(bad.find("\"invoice.*\""), 11, "\"*\", \"inv*ce\", \"\"");
  bad += "        max_in_flight: 0\n        breaker: { failures: 5, cooldown: 1 }\n";
  EXPECT_EQ(errors_of(bad),
            "flare.yaml:13:17: sources[0].routes[0].types[0]: expected an event type or PREFIX.* "
            "(printable, at most 200 characters, * only at the end after a dot)\n"
            "flare.yaml:13:22: sources[0].routes[0].types[1]: expected an event type or PREFIX.* "
            "(printable, at most 200 characters, * only at the end after a dot)\n"
            "flare.yaml:13:32: sources[0].routes[0].types[2]: expected an event type or PREFIX.* "
            "(printable, at most 200 characters, * only at the end after a dot)\n"
            "flare.yaml:19:15: sources[0].routes[1].name: duplicate route name \"billing\" in "
            "this source\n"
            "flare.yaml:22:24: sources[0].routes[1].max_in_flight: expected an integer from 1 to "
            "10000\n"
            "flare.yaml:23:33: sources[0].routes[1].breaker.cooldown: unknown key");
  std::string both = kRoutes;
  both +=
      "    destination: { url: \"http://x/\", secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw }\n";
  EXPECT_EQ(errors_of(both),
            "flare.yaml:10:7: sources[0].routes: a source has routes or a destination");
  std::string empty =
      "database: { url: x }\nprojects: [{ id: p }]\nsources:\n  - { name: s, "
      "provider: github, project: p, secrets: [x], routes: [] }\n";
  EXPECT_EQ(errors_of(empty), "flare.yaml:4:68: sources[0].routes: expected a list of routes");
}

TEST(Config, UnsetVariableNamesItWithPosition) {
  EXPECT_EQ(errors_of("database:\n  url: \"${MISSING_URL}\"\n"),
            "flare.yaml:2:8: database.url: environment variable MISSING_URL is not set");
}

TEST(Config, UnknownKey) {
  EXPECT_EQ(errors_of("database: { url: x }\nserver:\n  listen: \"1.2.3.4:1\"\n  thread: 2\n"),
            "flare.yaml:4:3: server.thread: unknown key");
}

TEST(Config, WrongType) {
  EXPECT_EQ(errors_of("database: { url: x }\nserver:\n  threads: many\n"),
            "flare.yaml:3:12: server.threads: expected an integer from 1 to 256");
  EXPECT_EQ(errors_of("database: { url: x }\nserver: [1]\n"),
            "flare.yaml:2:9: server: expected a mapping");
  EXPECT_EQ(errors_of("database: { url: x, auto_migrate: yes }\n"),
            "flare.yaml:1:35: database.auto_migrate: expected true or false");
  EXPECT_EQ(errors_of("database: { url: x, committer_lanes: 0 }\n"),
            "flare.yaml:1:38: database.committer_lanes: expected an integer from 1 to 16");
}

TEST(Config, DuplicateKeyAndDuplicateSourceName) {
  EXPECT_EQ(errors_of("database: { url: x }\ndatabase: { url: y }\n"),
            "flare.yaml:2:1: database: duplicate key");
  std::string yaml = R"(database: { url: x }
projects: [{ id: p }]
sources:
  - { name: a, provider: github, project: p, secrets: [s] }
  - { name: a, provider: github, project: p, secrets: [s] }
)";
  EXPECT_EQ(errors_of(yaml), "flare.yaml:5:13: sources[1].name: duplicate source name \"a\"");
}

TEST(Config, DanglingProject) {
  std::string yaml = R"(database: { url: x }
projects: [{ id: p }]
sources:
  - { name: a, provider: github, project: q, secrets: [s] }
)";
  EXPECT_EQ(errors_of(yaml), "flare.yaml:4:43: sources[0].project: unknown project \"q\"");
}

TEST(Config, EmptySecretLists) {
  std::string yaml = R"(database: { url: x }
projects: [{ id: p }]
sources:
  - { name: a, provider: github, project: p, secrets: [] }
  - { name: b, provider: github, project: p, secrets: ["${EMPTY:-}"] }
  - { name: c, provider: github, project: p }
)";
  EXPECT_EQ(errors_of(yaml),
            "flare.yaml:4:55: sources[0].secrets: no non-empty secret\n"
            "flare.yaml:5:55: sources[1].secrets: no non-empty secret\n"
            "flare.yaml:6:5: sources[2].secrets: required");
}

TEST(Config, SourceRules) {
  std::string yaml = R"(database: { url: x }
projects: [{ id: p }]
sources:
  - { name: a, provider: github, project: p, secrets: [s], tolerance_seconds: 10 }
  - { name: b, provider: paypal, project: p, secrets: [s] }
  - { name: c, provider: stripe, project: p, secrets: [s], key_template: "k:{id}" }
  - { name: d, provider: stripe, project: p, secrets: [s], key_template: "k:{source}" }
  - { name: "e/f", provider: stripe, project: p, secrets: [s], max_body_bytes: 0 }
)";
  EXPECT_EQ(
      errors_of(yaml),
      "flare.yaml:4:79: sources[0].tolerance_seconds: github signs no timestamp\n"
      "flare.yaml:5:26: sources[1].provider: unsupported provider \"paypal\" (stripe, github, "
      "standard, shopify, slack, hmac)\n"
      "flare.yaml:6:74: sources[2].key_template: unknown placeholder in \"k:{id}\" (use "
      "{event_id}, {source} and {provider})\n"
      "flare.yaml:7:74: sources[3].key_template: must contain {event_id}\n"
      "flare.yaml:8:13: sources[4].name: expected 1 to 100 of A-Z a-z 0-9 _ - .\n"
      "flare.yaml:8:80: sources[4].max_body_bytes: expected an integer from 1 to 67108864");
}

TEST(Config, ListenAndProxies) {
  EXPECT_EQ(errors_of("database: { url: x }\nserver: { listen: \"localhost:80\" }\n"),
            "flare.yaml:2:19: server.listen: expected HOST:PORT with an IP address, got "
            "\"localhost:80\"");
  EXPECT_EQ(errors_of("database: { url: x }\nserver: { trusted_proxies: [\"10.0.0.0/33\"] }\n"),
            "flare.yaml:2:29: server.trusted_proxies[0]: expected an IP address or network, got "
            "\"10.0.0.0/33\"");
}

TEST(Config, MissingTlsFileAndMissingDatabase) {
  std::string yaml =
      "server:\n  tls: { cert_file: /nonexistent/cert.pem, key_file: /nonexistent/key.pem }\n";
  EXPECT_EQ(errors_of(yaml),
            "flare.yaml:2:21: server.tls.cert_file: cannot read file \"/nonexistent/cert.pem\"\n"
            "flare.yaml:2:54: server.tls.key_file: cannot read file \"/nonexistent/key.pem\"\n"
            "flare.yaml:1:1: database: required");
}

TEST(Config, SyntaxErrorHasPosition) {
  EXPECT_EQ(errors_of("database: { url: x\nserver: [\n"),
            "flare.yaml:2:7: end of map flow not found");
}

TEST(Config, MissingFile) {
  try {
    load("/nonexistent/flare.yaml");
    FAIL() << "loaded a missing file";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/flare.yaml: cannot open the file");
  }
}

TEST(Config, SecretsWithAnEndDate) {
  Config c = parse_ok(R"(database: { url: x }
projects: [{ id: p }]
sources:
  - name: a
    provider: stripe
    project: p
    secrets:
      - whsec_new
      - { value: whsec_old, not_after: "2026-12-01T00:00:00Z" }
      - { value: "${EMPTY:-}", not_after: "2026-12-01T00:00:00Z" }
)");
  const auto& secrets = c.sources[0].secrets;
  ASSERT_EQ(secrets.size(), 2u);
  EXPECT_EQ(secrets[1].key, "whsec_old");
  auto cutoff = std::chrono::system_clock::time_point(std::chrono::seconds(1796083200));
  EXPECT_EQ(secrets[1].not_after, cutoff);
  EXPECT_TRUE(secrets[1].usable(cutoff));
  EXPECT_FALSE(secrets[1].usable(cutoff + std::chrono::microseconds(1)));
  EXPECT_TRUE(secrets[0].usable(cutoff + std::chrono::hours(1000000)));

  EXPECT_EQ(errors_of(R"(database: { url: x }
projects: [{ id: p }]
sources:
  - name: a
    provider: stripe
    project: p
    secrets:
      - { value: s, not_after: "next tuesday" }
      - { not_after: "2026-12-01T00:00:00Z" }
      - { value: s, expires: "2026-12-01T00:00:00Z" }
)"),
            "flare.yaml:8:32: sources[0].secrets[0].not_after: expected an RFC 3339 date-time, "
            "e.g. 2026-12-31T00:00:00Z\n"
            "flare.yaml:9:9: sources[0].secrets[1].value: required\n"
            "flare.yaml:10:21: sources[0].secrets[2].expires: unknown key");
}

TEST(Config, HmacScheme) {
  Config c = parse_ok(R"(database: { url: x }
projects: [{ id: p }]
sources:
  - name: zendesk
    provider: hmac
    project: p
    secrets: [k]
    tolerance_seconds: 120
    hmac:
      header: X-Zendesk-Webhook-Signature
      algorithm: sha512
      encoding: base64
      signed_content: "{timestamp}{header:X-Account}{body}"
      timestamp_header: X-Zendesk-Webhook-Signature-Timestamp
      event_id_pointer: /id
      event_type_pointer: /type
  - name: intercom
    provider: hmac
    project: p
    secrets: [k]
    hmac: { header: X-Hub-Signature, prefix: "sha1=", algorithm: sha1, event_id_header: X-Id }
)");
  const Hmac& z = *c.sources[0].hmac;
  EXPECT_EQ(z.header, "X-Zendesk-Webhook-Signature");
  EXPECT_EQ(z.algorithm, Hmac::Algorithm::kSha512);
  EXPECT_EQ(z.encoding, Hmac::Encoding::kBase64);
  EXPECT_EQ(z.signed_content.text, "{timestamp}{header:X-Account}{body}");
  EXPECT_EQ(z.timestamp_header, "X-Zendesk-Webhook-Signature-Timestamp");
  EXPECT_EQ(z.id_pointer, "/id");
  EXPECT_EQ(z.type_pointer, "/type");
  EXPECT_EQ(c.sources[0].tolerance.count(), 120);
  const Hmac& i = *c.sources[1].hmac;
  EXPECT_EQ(i.prefix, "sha1=");
  EXPECT_EQ(i.algorithm, Hmac::Algorithm::kSha1);
  EXPECT_EQ(i.encoding, Hmac::Encoding::kHex);
  EXPECT_EQ(i.signed_content.text, "{body}");
  EXPECT_EQ(i.id_header, "X-Id");
  EXPECT_FALSE(c.sources[1].hmac->timestamp_header.size());
}

TEST(Config, HmacSchemeErrors) {
  std::string head = "database: { url: x }\nprojects: [{ id: p }]\nsources:\n";
  auto source = [](const std::string& hmac, const std::string& extra = "") {
    return "  - { name: a, provider: hmac, project: p, secrets: [k]" + extra + ", hmac: " + hmac +
           " }\n";
  };
  EXPECT_EQ(errors_of(head + "  - { name: a, provider: hmac, project: p, secrets: [k] }\n"),
            "flare.yaml:4:5: sources[0].hmac: required for provider hmac");
  EXPECT_EQ(errors_of(head + "  - { name: a, provider: github, project: p, secrets: [k], hmac: "
                             "{ header: X } }\n"),
            "flare.yaml:4:66: sources[0].hmac: only for provider hmac");
  EXPECT_EQ(errors_of(head + source("{ event_id_header: X-Id }")),
            "flare.yaml:4:64: sources[0].hmac.header: required: the header that carries the "
            "signature");
  EXPECT_EQ(errors_of(head + source("{ header: X-Sig }")),
            "flare.yaml:4:64: sources[0].hmac.event_id_header: required: event_id_header or "
            "event_id_pointer");
  EXPECT_EQ(errors_of(head + source("{ header: \"X Sig\", algorithm: md5, encoding: base32, "
                                    "event_id_header: X-Id, event_id_pointer: /id }")),
            "flare.yaml:4:74: sources[0].hmac.header: expected a header name: 1 to 100 of A-Z a-z "
            "0-9 - _\n"
            "flare.yaml:4:94: sources[0].hmac.algorithm: expected sha1, sha256 or sha512\n"
            "flare.yaml:4:109: sources[0].hmac.encoding: expected hex or base64\n"
            "flare.yaml:4:158: sources[0].hmac.event_id_pointer: not with event_id_header");
  EXPECT_EQ(errors_of(head + source("{ header: X-Sig, event_id_pointer: id }")),
            "flare.yaml:4:99: sources[0].hmac.event_id_pointer: expected a JSON Pointer such as "
            "/id or /event/id");
  EXPECT_EQ(errors_of(head + source("{ header: X-Sig, event_id_pointer: /id, signed_content: "
                                    "\"{timestamp}.{id}.{nonce}\" }")),
            "flare.yaml:4:120: sources[0].hmac.signed_content: {timestamp} needs "
            "hmac.timestamp_header");
  EXPECT_EQ(errors_of(head + source("{ header: X-Sig, event_id_pointer: /id, signed_content: "
                                    "\"{id}.{body}\" }")),
            "flare.yaml:4:120: sources[0].hmac.signed_content: {id} needs hmac.event_id_header");
  EXPECT_EQ(errors_of(head + source("{ header: X-Sig, event_id_header: X-Id, signed_content: "
                                    "\"{id}.{nonce}\" }")),
            "flare.yaml:4:120: sources[0].hmac.signed_content: unknown placeholder in "
            "\"{id}.{nonce}\" (use {body}, {timestamp}, {id} and {header:Name})");
  // A signature that does not cover the body would let anyone replace the body.
  EXPECT_EQ(errors_of(head + source("{ header: X-Sig, event_id_header: X-Id, signed_content: "
                                    "\"{id}\" }")),
            "flare.yaml:4:120: sources[0].hmac.signed_content: must contain {body}");
  EXPECT_EQ(errors_of(head + source("{ header: X-Sig, event_id_header: X-Id }",
                                    ", tolerance_seconds: 60")),
            "flare.yaml:4:77: sources[0].tolerance_seconds: hmac signs no timestamp");
}

// A template is cut once, when loaded: literal text and the placeholders, each resolved to what
// it stands for; an unknown or unclosed one is kept as written for the reader to refuse.
TEST(Template, CutOnceIntoParts) {
  using Slot = Template::Slot;
  Template t = parse_template("k:{source}/{event_id}}{header:X-A}{id}{nope}{body");
  std::vector<std::pair<Slot, std::string>> parts;
  for (const Template::Part& p : t.parts) parts.emplace_back(p.slot, p.text);
  EXPECT_EQ(parts, (std::vector<std::pair<Slot, std::string>>{{Slot::kText, "k:"},
                                                              {Slot::kSource, ""},
                                                              {Slot::kText, "/"},
                                                              {Slot::kEventId, ""},
                                                              {Slot::kText, "}"},
                                                              {Slot::kHeader, "X-A"},
                                                              {Slot::kId, ""},
                                                              {Slot::kUnknown, "{nope}"},
                                                              {Slot::kUnknown, "{body"}}));
  EXPECT_EQ(t.text, "k:{source}/{event_id}}{header:X-A}{id}{nope}{body");
  EXPECT_EQ(parse_template("{header:bad name}").parts[0].slot, Slot::kUnknown);
  EXPECT_EQ(parse_template("{timestamp}.{body}").parts[2].slot, Slot::kBody);
  EXPECT_TRUE(parse_template("").parts.empty());
}

// Bodies together may hold 32 MiB unless a route takes more, and an explicit budget must take the
// largest body.
TEST(BodyMemory, AtLeastTheLargestBody) {
  std::string head = "database: { url: x }\nprojects: [{ id: p }]\n";
  std::string big_source =
      "sources: [{ name: s, provider: stripe, project: p, secrets: [k], max_body_bytes: "
      "67108864 }]\n";
  auto env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  EXPECT_EQ(parse(head, "f.yaml", env).server.body_memory_bytes, 32u << 20);
  EXPECT_EQ(parse(head + big_source, "f.yaml", env).server.body_memory_bytes, 64u << 20);
  try {
    parse("server: { body_memory_bytes: 1048576 }\n" + head + big_source, "f.yaml", env);
    ADD_FAILURE() << "a budget below a route's limit was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("server.body_memory_bytes: must be at least the largest "
                                         "max_body_bytes (67108864)"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace flare::config
