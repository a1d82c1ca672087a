// The gateway's configuration: one YAML file, validated once at start and then read-only.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace flare::config {

// A network in CIDR notation; `bytes` holds an IPv4 address in its first four bytes.
struct Cidr {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};
  int prefix = 0;

  // `address` is the textual form of an IP address; false when it is not one or not inside.
  bool contains(std::string_view address) const;
};

struct Tls {
  std::string cert_file;
  std::string key_file;
};

struct Server {
  std::string host = "0.0.0.0";
  std::uint16_t port = 8080;
  std::optional<Tls> tls;
  int threads = 2;
  std::size_t max_connections = 10'000;
  std::size_t max_body_bytes = 1 << 20;
  // Bytes of request bodies held at once, across connections, each body counted as it arrives
  // and until its request is answered; at least the largest max_body_bytes.
  std::size_t body_memory_bytes = 32 << 20;
  // Peers whose X-Forwarded-For, X-Forwarded-Proto and X-Request-Id are believed.
  std::vector<Cidr> trusted_proxies;
  // Every route lives under this prefix ("" or e.g. "/flare"), for a proxy that forwards a
  // sub-path without rewriting it.
  std::string base_path;
  // Waiting for a request's header, the first one or the next on a kept-alive connection.
  std::chrono::milliseconds idle_timeout{60'000};
  // Reading a request's body and writing its response.
  std::chrono::milliseconds read_timeout{30'000};
  // On SIGTERM: how long requests and push attempts in flight may take to finish.
  std::chrono::milliseconds drain_timeout{10'000};
};

struct Database {
  std::string url;
  int pool_size = 4;
  int committer_lanes = 1;
  bool auto_migrate = true;
  // 0: the jobs table is one table; else it is hash-partitioned by project into this many,
  // when the first migration creates it (an existing table keeps its layout).
  int partitions = 0;
};

// How long an ended job keeps what it holds (docs/operations.md, "Retention"): a number of
// days, or nullopt for ever.
struct Retention {
  // Succeeded and cancelled jobs: their payload and the answers their attempts recorded, counted
  // from when the job ended. The row and its idempotency key stay.
  std::optional<int> payload_days;
  std::optional<int> dead_payload_days;  // the same for dead jobs
  // Whole rows of ended jobs, their keys with them, counted from when the job was stored.
  std::optional<int> delete_days;

  bool prunes() const { return payload_days || dead_payload_days || delete_days; }
  bool operator==(const Retention&) const = default;
};

// How the gateway applies retention: a pass every `interval`, in transactions of `batch_size`
// jobs.
struct Pruning {
  std::chrono::seconds interval{600};
  int batch_size = 1000;
};

struct Project {
  std::string id;
  std::vector<std::array<std::uint8_t, 32>> api_key_sha256;
  Retention retention;  // its own keys, else the top level's
};

struct Retry {
  int max_attempts = 25;
  std::int64_t base_ms = 1000;
  std::int64_t max_ms = 3'600'000;
};

// When a route's destination keeps failing: after `failures` failed attempts in a row the route
// is open (no attempts) for `cooldown`, then one attempt probes it and its success closes it.
struct Breaker {
  int failures = 10;
  std::chrono::milliseconds cooldown{60'000};
};

// One of a source's destinations: the built-in workers push it every event of the source it
// takes, each as a delivery of its own (docs/delivery.md).
struct Route {
  std::string name;  // unique in its source
  std::string url;
  bool tls = false;
  std::string host;
  std::uint16_t port = 0;
  std::string target;  // path and query
  std::string key;     // the whsec_ secret, base64-decoded: signs every push
  std::chrono::milliseconds timeout{10'000};
  // Exact event types and "prefix.*" patterns (the prefix and its dot, then anything); empty:
  // every event.
  std::vector<std::string> types;
  Retry retry;
  // Over every gateway process together; 0: no limit but the workers' own concurrency.
  int max_in_flight = 0;   // attempts at once
  int max_per_second = 0;  // attempts begun per second, evenly spaced
  Breaker breaker;

  // Whether an event of the provider's type `event_type` goes to this route.
  bool takes(std::string_view event_type) const;
};

// A signing secret; during a rotation the old one can be given the moment it stops counting.
struct Secret {
  std::string key;  // non-empty; for `standard`, the decoded bytes of whsec_<base64>
  std::optional<std::chrono::system_clock::time_point> not_after;

  bool usable(std::chrono::system_clock::time_point now) const {
    return !not_after || now <= *not_after;
  }
};

// Text with {placeholders} (a key template, the `hmac` provider's signed content), cut into
// parts once, when the configuration is loaded: filling it in is a walk over the parts, with no
// scanning for braces on the request path.
struct Template {
  enum class Slot {
    kText,       // literal text
    kEventId,    // {event_id}
    kSource,     // {source}
    kProvider,   // {provider}
    kBody,       // {body}
    kTimestamp,  // {timestamp}
    kId,         // {id}
    kHeader,     // {header:Name}
    kUnknown,    // anything else between braces, or a '{' never closed: a configuration error
  };
  struct Part {
    Slot slot;
    std::string text;  // kText: the text; kHeader: the header's name; kUnknown: as written
  };
  std::string text;  // as written
  std::vector<Part> parts;
};

// An event type, or a prefix and ".*": printable, at most 200 characters, '*' only so at the end.
bool valid_type_pattern(std::string_view pattern);

// Cuts `text` into parts. Which slots a template may hold is for its reader to check.
Template parse_template(std::string_view text);

// The `hmac` provider: a signature scheme described in YAML.
struct Hmac {
  enum class Algorithm { kSha1, kSha256, kSha512 };
  enum class Encoding { kHex, kBase64 };

  std::string header;  // carries the signature
  std::string prefix;  // before the encoded signature, e.g. "sha256="
  Algorithm algorithm = Algorithm::kSha256;
  Encoding encoding = Encoding::kHex;
  // What is signed: {body}, {timestamp}, {id} and {header:Name} in literal text.
  Template signed_content = parse_template("{body}");
  std::string timestamp_header;  // empty: no replay window
  // Exactly one of the two names the event id; at most one the event type.
  std::string id_header;
  std::string id_pointer;  // a JSON Pointer into the body
  std::string type_header;
  std::string type_pointer;
};

struct Source {
  std::string name;
  std::string provider;
  std::string project;
  std::vector<Secret> secrets;  // at least one
  std::chrono::seconds tolerance{300};
  std::size_t max_body_bytes = 0;  // resolved: the source's own or server.max_body_bytes
  Template key_template = parse_template("webhook:{event_id}");
  std::string job_type;                                // empty: "<provider>.<event type>"
  std::string event_id_header = "X-Shopify-Event-Id";  // shopify only
  std::optional<Hmac> hmac;                            // set for provider hmac
  Retry retry;  // for its routes without a retry of their own, and its jobs' pull workers
  // Empty: the source's jobs are pulled (SPEC §5). `destination:` is read as one route named
  // "default".
  std::vector<Route> routes;
  Retention retention;  // its own keys, else its project's
};

struct Workers {
  bool enabled = true;  // push workers run inside `serve`
  int concurrency = 8;
  // The most deliveries of one route a push worker claims together, attempts one after another
  // on its kept-alive connection, and records together: as many as its last attempts there say
  // take about 250 ms, one for a slow destination (over 25 ms), and no more than
  // Store::kClaimBytes of payloads.
  int batch = 500;
  int lease_seconds = 60;  // a push attempt's lease, and a pull claim's unless it asks
  std::chrono::milliseconds poll_interval{1000};
  Retry retry;  // for jobs enqueued through the jobs API
};

// Someone who may sign in to the console with a token whose SHA-256 is `token_sha256`.
struct Operator {
  std::string name;  // unique; names the operator in the log of every action
  std::array<std::uint8_t, 32> token_sha256{};
  std::vector<std::string> projects;  // the projects the operator sees; empty: every project
  bool read_only = false;             // sees, but may not act
  bool sees(const std::string& project) const;
};

// The operators' web console under /console (docs/console.md). Off unless configured.
struct Console {
  bool enabled = false;
  std::vector<Operator> operators;
  std::chrono::seconds session_lifetime{8 * 3600};
};

struct Config {
  Server server;
  Database database;
  Retention retention;  // the default of every project
  Pruning pruning;
  std::vector<Project> projects;
  std::vector<Source> sources;
  Workers workers;
  Console console;

  // Whether any project or source has a retention: the gateway then prunes.
  bool prunes() const;
};

// Every problem found in a file, one "FILE:LINE:COLUMN: path: message" per line.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using Environment = std::function<std::optional<std::string>(const std::string& name)>;

// The process environment, for `${VAR}` interpolation.
std::optional<std::string> process_environment(const std::string& name);

// Throws Error listing every problem in the file.
Config load(const std::string& path, const Environment& env = process_environment);
// `file_name` only labels the errors.
Config parse(std::string_view yaml, const std::string& file_name,
             const Environment& env = process_environment);

}  // namespace flare::config
