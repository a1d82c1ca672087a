#include "config/config.hpp"

#include <arpa/inet.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>

#include "text/text.hpp"

namespace flare::config {
namespace {

constexpr std::size_t kMaxBodyBytesCeiling = 64u << 20;  // bodies are held in memory
constexpr std::size_t kMaxRoutes = 50;
constexpr std::size_t kMaxRouteTypes = 100;

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 100) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// Walks the YAML tree once, collecting every error with its position rather than stopping at
// the first, so that one run of check-config shows everything that needs fixing.
class Reader {
 public:
  Reader(std::string file, const Environment& env) : file_(std::move(file)), env_(env) {}

  const std::vector<std::string>& errors() const { return errors_; }

  void error(const YAML::Node& at, const std::string& path, const std::string& message) {
    YAML::Mark mark = at.Mark();
    error(mark, path, message);
  }

  void error(const YAML::Mark& mark, const std::string& path, const std::string& message) {
    std::ostringstream out;
    out << file_ << ':' << (mark.line < 0 ? 1 : mark.line + 1) << ':'
        << (mark.column < 0 ? 1 : mark.column + 1) << ": ";
    if (!path.empty()) out << path << ": ";
    out << message;
    errors_.push_back(out.str());
  }

  // True when `node` is a map whose keys are all in `allowed`, each once. Reports the rest.
  bool map(const YAML::Node& node, const std::string& path,
           std::initializer_list<std::string_view> allowed) {
    if (!node.IsMap()) {
      error(node, path, "expected a mapping");
      return false;
    }
    std::set<std::string> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      std::string key = it->first.Scalar();
      std::string child = join(path, key);
      bool known = false;
      for (std::string_view a : allowed) known = known || a == key;
      if (!known) {
        error(it->first, child, "unknown key");
      } else if (!seen.insert(key).second) {
        error(it->first, child, "duplicate key");
      }
    }
    return true;
  }

  // A scalar with `${VAR}` and `${VAR:-default}` replaced from the environment.
  std::optional<std::string> string(const YAML::Node& node, const std::string& path) {
    if (!node.IsScalar()) {
      error(node, path, "expected a string");
      return std::nullopt;
    }
    return interpolate(node, path, node.Scalar());
  }

  std::optional<std::int64_t> integer(const YAML::Node& node, const std::string& path,
                                      std::int64_t min, std::int64_t max) {
    std::optional<std::string> text = string(node, path);
    if (!text) return std::nullopt;
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (ec != std::errc() || end != text->data() + text->size() || value < min || value > max) {
      error(node, path,
            "expected an integer from " + std::to_string(min) + " to " + std::to_string(max));
      return std::nullopt;
    }
    return value;
  }

  std::optional<bool> boolean(const YAML::Node& node, const std::string& path) {
    std::optional<std::string> text = string(node, path);
    if (!text) return std::nullopt;
    if (*text == "true") return true;
    if (*text == "false") return false;
    error(node, path, "expected true or false");
    return std::nullopt;
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

 private:
  std::optional<std::string> interpolate(const YAML::Node& node, const std::string& path,
                                         const std::string& in) {
    std::string out;
    std::size_t i = 0;
    while (i < in.size()) {
      if (in.compare(i, 2, "${") != 0) {
        out += in[i++];
        continue;
      }
      std::size_t close = in.find('}', i + 2);
      if (close == std::string::npos) {
        error(node, path, "unterminated ${ in \"" + in + "\"");
        return std::nullopt;
      }
      std::string inner = in.substr(i + 2, close - i - 2);
      std::optional<std::string> fallback;
      if (std::size_t sep = inner.find(":-"); sep != std::string::npos) {
        fallback = inner.substr(sep + 2);
        inner.resize(sep);
      }
      if (!valid_variable(inner)) {
        error(node, path, "invalid variable name \"" + inner + "\"");
        return std::nullopt;
      }
      std::optional<std::string> value = env_(inner);
      if (!value || (value->empty() && fallback)) value = fallback;
      if (!value) {
        error(node, path, "environment variable " + inner + " is not set");
        return std::nullopt;
      }
      out += *value;
      i = close + 1;
    }
    return out;
  }

  static bool valid_variable(const std::string& name) {
    if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
    for (char c : name) {
      bool ok =
          (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
      if (!ok) return false;
    }
    return true;
  }

  std::string file_;
  const Environment& env_;
  std::vector<std::string> errors_;
};

std::optional<Cidr> parse_cidr(std::string_view text) {
  Cidr cidr;
  std::string address(text);
  int max_prefix = 32;
  std::optional<int> prefix;
  if (std::size_t slash = text.find('/'); slash != std::string_view::npos) {
    address = std::string(text.substr(0, slash));
    int p = -1;
    std::string_view digits = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), p);
    if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
    prefix = p;
  }
  if (inet_pton(AF_INET, address.c_str(), cidr.bytes.data()) != 1) {
    if (inet_pton(AF_INET6, address.c_str(), cidr.bytes.data()) != 1) return std::nullopt;
    cidr.v6 = true;
    max_prefix = 128;
  }
  cidr.prefix = prefix.value_or(max_prefix);
  if (cidr.prefix < 0 || cidr.prefix > max_prefix) return std::nullopt;
  return cidr;
}

bool parse_listen(const std::string& text, Server& server) {
  std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  std::string host = text.substr(0, colon);
  if (host.front() == '[') {
    if (host.back() != ']') return false;
    host = host.substr(1, host.size() - 2);
  }
  std::array<std::uint8_t, 16> scratch{};
  if (inet_pton(AF_INET, host.c_str(), scratch.data()) != 1 &&
      inet_pton(AF_INET6, host.c_str(), scratch.data()) != 1) {
    return false;
  }
  int port = -1;
  const char* begin = text.data() + colon + 1;
  const char* end = text.data() + text.size();
  auto [stop, ec] = std::from_chars(begin, end, port);
  if (ec != std::errc() || stop != end || begin == end || port < 0 || port > 65535) return false;
  server.host = host;
  server.port = static_cast<std::uint16_t>(port);
  return true;
}

std::optional<std::array<std::uint8_t, 32>> parse_sha256_hex(const std::string& hex) {
  if (hex.size() != 64) return std::nullopt;
  std::array<std::uint8_t, 32> out{};
  for (std::size_t i = 0; i < 32; ++i) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(hex.data() + 2 * i, hex.data() + 2 * i + 2, value, 16);
    if (ec != std::errc() || end != hex.data() + 2 * i + 2) return std::nullopt;
    out[i] = static_cast<std::uint8_t>(value);
  }
  return out;
}

bool readable(const std::string& path) { return std::ifstream(path).good(); }

void read_server(Reader& r, const YAML::Node& node, Server& server) {
  if (!r.map(node, "server",
             {"listen", "tls", "threads", "max_connections", "max_body_bytes", "body_memory_bytes",
              "trusted_proxies", "idle_timeout_ms", "read_timeout_ms", "drain_timeout_ms",
              "base_path"})) {
    return;
  }
  if (const YAML::Node n = node["listen"]) {
    if (auto text = r.string(n, "server.listen"); text && !parse_listen(*text, server)) {
      r.error(n, "server.listen", "expected HOST:PORT with an IP address, got \"" + *text + "\"");
    }
  }
  if (const YAML::Node n = node["tls"]) {
    if (r.map(n, "server.tls", {"cert_file", "key_file"})) {
      Tls tls;
      for (auto [key, field] :
           {std::pair{"cert_file", &tls.cert_file}, std::pair{"key_file", &tls.key_file}}) {
        std::string path = std::string("server.tls.") + key;
        const YAML::Node f = n[key];
        if (!f) {
          r.error(n, path, "required");
        } else if (auto text = r.string(f, path)) {
          if (!readable(*text)) r.error(f, path, "cannot read file \"" + *text + "\"");
          *field = *text;
        }
      }
      server.tls = tls;
    }
  }
  if (const YAML::Node n = node["threads"]) {
    if (auto v = r.integer(n, "server.threads", 1, 256)) server.threads = static_cast<int>(*v);
  }
  if (const YAML::Node n = node["max_connections"]) {
    if (auto v = r.integer(n, "server.max_connections", 1, 1'000'000)) {
      server.max_connections = static_cast<std::size_t>(*v);
    }
  }
  if (const YAML::Node n = node["body_memory_bytes"]) {
    if (auto v = r.integer(n, "server.body_memory_bytes", 1 << 20, 16LL << 30)) {
      server.body_memory_bytes = static_cast<std::size_t>(*v);
    }
  }
  if (const YAML::Node n = node["max_body_bytes"]) {
    if (auto v = r.integer(n, "server.max_body_bytes", 1, kMaxBodyBytesCeiling)) {
      server.max_body_bytes = static_cast<std::size_t>(*v);
    }
  }
  if (const YAML::Node n = node["idle_timeout_ms"]) {
    if (auto v = r.integer(n, "server.idle_timeout_ms", 100, 3'600'000)) {
      server.idle_timeout = std::chrono::milliseconds(*v);
    }
  }
  if (const YAML::Node n = node["read_timeout_ms"]) {
    if (auto v = r.integer(n, "server.read_timeout_ms", 100, 3'600'000)) {
      server.read_timeout = std::chrono::milliseconds(*v);
    }
  }
  if (const YAML::Node n = node["base_path"]) {
    if (auto text = r.string(n, "server.base_path")) {
      // "/" or "/a/b": segments of URL-safe characters, no trailing slash.
      bool ok = !text->empty() && text->front() == '/' && text->size() <= 100 &&
                (text->size() == 1 || text->back() != '/') && text->find("//") == std::string::npos;
      for (char c : *text) {
        ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '-' ||
                    c == '_' || c == '.' || c == '~');
      }
      if (!ok) {
        r.error(n, "server.base_path", "expected a path such as /flare (no trailing slash)");
      } else if (*text != "/") {
        server.base_path = *text;
      }
    }
  }
  if (const YAML::Node n = node["drain_timeout_ms"]) {
    // Kept below the 15 s that process supervisors commonly wait before SIGKILL.
    if (auto v = r.integer(n, "server.drain_timeout_ms", 0, 14'000)) {
      server.drain_timeout = std::chrono::milliseconds(*v);
    }
  }
  if (const YAML::Node n = node["trusted_proxies"]) {
    if (!n.IsSequence()) {
      r.error(n, "server.trusted_proxies", "expected a list of networks");
      return;
    }
    for (std::size_t i = 0; i < n.size(); ++i) {
      std::string path = "server.trusted_proxies[" + std::to_string(i) + "]";
      if (auto text = r.string(n[i], path)) {
        if (auto cidr = parse_cidr(*text)) {
          server.trusted_proxies.push_back(*cidr);
        } else {
          r.error(n[i], path, "expected an IP address or network, got \"" + *text + "\"");
        }
      }
    }
  }
}

void read_database(Reader& r, const YAML::Node& node, Database& db) {
  if (!r.map(node, "database",
             {"url", "pool_size", "committer_lanes", "auto_migrate", "partitions"})) {
    return;
  }
  if (const YAML::Node n = node["url"]) {
    if (auto text = r.string(n, "database.url")) {
      if (text->empty()) r.error(n, "database.url", "must not be empty");
      db.url = *text;
    }
  } else {
    r.error(node, "database.url", "required");
  }
  if (const YAML::Node n = node["pool_size"]) {
    if (auto v = r.integer(n, "database.pool_size", 1, 100)) db.pool_size = static_cast<int>(*v);
  }
  if (const YAML::Node n = node["committer_lanes"]) {
    if (auto v = r.integer(n, "database.committer_lanes", 1, 16)) {
      db.committer_lanes = static_cast<int>(*v);
    }
  }
  if (const YAML::Node n = node["auto_migrate"]) {
    if (auto v = r.boolean(n, "database.auto_migrate")) db.auto_migrate = *v;
  }
  if (const YAML::Node n = node["partitions"]) {
    if (auto v = r.integer(n, "database.partitions", 0, 256)) db.partitions = static_cast<int>(*v);
  }
}

// The required name under `key` of `node`: 1 to 100 of A-Z a-z 0-9 _ - ., not among `seen`
// (else "duplicate <what> "<name>"<scope>").
std::string read_name(Reader& r, const YAML::Node& node, const std::string& path, const char* key,
                      std::set<std::string>& seen, const char* what, const char* scope = "") {
  std::string at = path + "." + key;
  const YAML::Node n = node[key];
  if (!n) {
    r.error(node, at, "required");
    return {};
  }
  std::optional<std::string> text = r.string(n, at);
  if (!text) return {};
  if (!valid_name(*text)) {
    r.error(n, at, "expected 1 to 100 of A-Z a-z 0-9 _ - .");
  } else if (!seen.insert(*text).second) {
    r.error(n, at, std::string("duplicate ") + what + " \"" + *text + "\"" + scope);
  }
  return *text;
}

// A `retention` block over `inherited`, key by key; a key set to null means for ever. With
// `pruning` (the top level's block), the keys of how pruning runs too.
void read_retention(Reader& r, const YAML::Node& node, const std::string& path,
                    Retention& retention, Pruning* pruning) {
  if (pruning != nullptr) {
    if (!r.map(node, path,
               {"payload_days", "dead_payload_days", "delete_days", "interval_seconds",
                "batch_size"})) {
      return;
    }
    if (const YAML::Node n = node["interval_seconds"]) {
      if (auto v = r.integer(n, path + ".interval_seconds", 1, 86'400)) {
        pruning->interval = std::chrono::seconds(*v);
      }
    }
    if (const YAML::Node n = node["batch_size"]) {
      if (auto v = r.integer(n, path + ".batch_size", 1, 10'000)) {
        pruning->batch_size = static_cast<int>(*v);
      }
    }
  } else if (!r.map(node, path, {"payload_days", "dead_payload_days", "delete_days"})) {
    return;
  }
  for (auto [key, days] : {std::pair{"payload_days", &retention.payload_days},
                           std::pair{"dead_payload_days", &retention.dead_payload_days},
                           std::pair{"delete_days", &retention.delete_days}}) {
    const YAML::Node n = node[key];
    if (!n) continue;
    if (n.IsNull()) {
      days->reset();
    } else if (auto v = r.integer(n, path + "." + key, 0, 36'500)) {
      *days = static_cast<int>(*v);
    }
  }
  // Deleting a row removes its payload too: a shorter payload period would never apply.
  if (retention.delete_days) {
    for (auto [key, days] : {std::pair{"payload_days", retention.payload_days},
                             std::pair{"dead_payload_days", retention.dead_payload_days}}) {
      if (days && *days > *retention.delete_days) {
        r.error(node, path,
                "delete_days (" + std::to_string(*retention.delete_days) + ") must be at least " +
                    key + " (" + std::to_string(*days) + ")");
      }
    }
  }
}

void read_projects(Reader& r, const YAML::Node& node, const Retention& retention,
                   std::vector<Project>& projects) {
  if (!node.IsSequence()) {
    r.error(node, "projects", "expected a list");
    return;
  }
  std::set<std::string> ids;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const YAML::Node p = node[i];
    std::string path = "projects[" + std::to_string(i) + "]";
    if (!r.map(p, path, {"id", "api_keys", "retention"})) continue;
    Project project;
    project.id = read_name(r, p, path, "id", ids, "project id");
    project.retention = retention;
    if (const YAML::Node n = p["retention"]) {
      read_retention(r, n, path + ".retention", project.retention, nullptr);
    }
    if (const YAML::Node keys = p["api_keys"]) {
      if (!keys.IsSequence()) {
        r.error(keys, path + ".api_keys", "expected a list");
      } else {
        for (std::size_t k = 0; k < keys.size(); ++k) {
          std::string kpath = path + ".api_keys[" + std::to_string(k) + "]";
          if (!r.map(keys[k], kpath, {"sha256"})) continue;
          const YAML::Node h = keys[k]["sha256"];
          if (!h) {
            r.error(keys[k], kpath + ".sha256", "required");
          } else if (auto text = r.string(h, kpath + ".sha256")) {
            if (auto digest = parse_sha256_hex(*text)) {
              project.api_key_sha256.push_back(*digest);
            } else {
              r.error(h, kpath + ".sha256", "expected 64 hexadecimal digits");
            }
          }
        }
      }
    }
    projects.push_back(std::move(project));
  }
}

void read_retry(Reader& r, const YAML::Node& node, const std::string& path, Retry& retry) {
  if (!r.map(node, path, {"max_attempts", "base_ms", "max_ms"})) return;
  if (const YAML::Node n = node["max_attempts"]) {
    if (auto v = r.integer(n, path + ".max_attempts", 1, 100)) {
      retry.max_attempts = static_cast<int>(*v);
    }
  }
  if (const YAML::Node n = node["base_ms"]) {
    if (auto v = r.integer(n, path + ".base_ms", 1, 86'400'000)) retry.base_ms = *v;
  }
  if (const YAML::Node n = node["max_ms"]) {
    if (auto v = r.integer(n, path + ".max_ms", 1, 7 * 86'400'000LL)) retry.max_ms = *v;
  }
  if (retry.max_ms < retry.base_ms) r.error(node, path + ".max_ms", "must be at least base_ms");
}

void read_workers(Reader& r, const YAML::Node& node, Workers& workers) {
  if (!r.map(node, "workers",
             {"enabled", "concurrency", "batch", "lease_seconds", "poll_interval_ms", "retry"})) {
    return;
  }
  if (const YAML::Node n = node["enabled"]) {
    if (auto v = r.boolean(n, "workers.enabled")) workers.enabled = *v;
  }
  if (const YAML::Node n = node["concurrency"]) {
    if (auto v = r.integer(n, "workers.concurrency", 1, 256)) {
      workers.concurrency = static_cast<int>(*v);
    }
  }
  if (const YAML::Node n = node["batch"]) {
    if (auto v = r.integer(n, "workers.batch", 1, 1000)) workers.batch = static_cast<int>(*v);
  }
  if (const YAML::Node n = node["poll_interval_ms"]) {
    if (auto v = r.integer(n, "workers.poll_interval_ms", 10, 60'000)) {
      workers.poll_interval = std::chrono::milliseconds(*v);
    }
  }
  if (const YAML::Node n = node["lease_seconds"]) {
    if (auto v = r.integer(n, "workers.lease_seconds", 1, 86'400)) {
      workers.lease_seconds = static_cast<int>(*v);
    }
  }
  if (const YAML::Node n = node["retry"]) read_retry(r, n, "workers.retry", workers.retry);
}

void read_console(Reader& r, const YAML::Node& node, const std::vector<Project>& projects,
                  Console& console) {
  if (!r.map(node, "console", {"enabled", "operators", "session_hours"})) return;
  console.enabled = true;
  if (const YAML::Node n = node["enabled"]) {
    if (auto v = r.boolean(n, "console.enabled")) console.enabled = *v;
  }
  if (const YAML::Node n = node["session_hours"]) {
    if (auto v = r.integer(n, "console.session_hours", 1, 24 * 30)) {
      console.session_lifetime = std::chrono::hours(*v);
    }
  }
  const YAML::Node list = node["operators"];
  if (!list || !list.IsSequence() || list.size() == 0) {
    if (console.enabled) {
      r.error(list ? list : node, "console.operators",
              "expected a list of at least one operator: nobody could sign in");
    }
    return;
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const YAML::Node o = list[i];
    std::string path = "console.operators[" + std::to_string(i) + "]";
    if (!r.map(o, path, {"name", "token_sha256", "projects", "read_only"})) continue;
    Operator op;
    op.name = read_name(r, o, path, "name", names, "operator");
    const YAML::Node h = o["token_sha256"];
    if (!h) {
      r.error(o, path + ".token_sha256", "required");
    } else if (auto text = r.string(h, path + ".token_sha256")) {
      if (auto digest = parse_sha256_hex(*text)) {
        op.token_sha256 = *digest;
      } else {
        r.error(h, path + ".token_sha256", "expected 64 hexadecimal digits");
      }
    }
    if (const YAML::Node n = o["projects"]) {
      if (!n.IsSequence() || n.size() == 0) {
        r.error(n, path + ".projects",
                "expected a list of project ids (omit it for every project)");
      } else {
        for (std::size_t k = 0; k < n.size(); ++k) {
          std::string at = path + ".projects[" + std::to_string(k) + "]";
          auto id = r.string(n[k], at);
          if (!id) continue;
          bool known = std::any_of(projects.begin(), projects.end(),
                                   [&](const Project& p) { return p.id == *id; });
          if (!known) r.error(n[k], at, "no project \"" + *id + "\" is configured");
          op.projects.push_back(*id);
        }
      }
    }
    if (const YAML::Node n = o["read_only"]) {
      if (auto v = r.boolean(n, path + ".read_only")) op.read_only = *v;
    }
    // A token is one operator's: the log names who acted.
    for (const Operator& other : console.operators) {
      if (h && other.token_sha256 == op.token_sha256) {
        r.error(h, path + ".token_sha256", "the same token as operator \"" + other.name + "\"");
      }
    }
    console.operators.push_back(std::move(op));
  }
}

// http[s]://host[:port][/path]; host a name or an IP address ([v6] in brackets).
bool parse_url(const std::string& url, Route& d) {
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
    d.port = 80;
  } else if (url.rfind("https://", 0) == 0) {
    rest = url.substr(8);
    d.tls = true;
    d.port = 443;
  } else {
    return false;
  }
  std::size_t slash = rest.find_first_of("/?");
  std::string authority = rest.substr(0, slash);
  d.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (d.target.front() == '?') d.target = std::string(1, '/').append(d.target);
  if (authority.empty() || authority.find('@') != std::string::npos) return false;
  std::size_t colon = authority.rfind(':');
  if (authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string::npos) return false;
    d.host = authority.substr(1, close - 1);
    colon = close + 1 < authority.size() ? close + 1 : std::string::npos;
    if (colon != std::string::npos && authority[colon] != ':') return false;
  } else {
    d.host = authority.substr(0, colon);
  }
  if (colon != std::string::npos) {
    int port = 0;
    const char* begin = authority.data() + colon + 1;
    const char* end = authority.data() + authority.size();
    auto [stop, ec] = std::from_chars(begin, end, port);
    if (ec != std::errc() || stop != end || port < 1 || port > 65535) return false;
    d.port = static_cast<std::uint16_t>(port);
  }
  for (char c : d.host + d.target) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return !d.host.empty();
}

// A route's event types: exact names, or a prefix and ".*".
void read_types(Reader& r, const YAML::Node& node, const std::string& path,
                std::vector<std::string>& out) {
  if (!node.IsSequence() || node.size() == 0) {
    r.error(node, path, "expected a list of event types (omit it to take every event)");
    return;
  }
  if (node.size() > kMaxRouteTypes) {
    r.error(node, path, "at most " + std::to_string(kMaxRouteTypes) + " types");
    return;
  }
  for (std::size_t i = 0; i < node.size(); ++i) {
    std::string at = path + "[" + std::to_string(i) + "]";
    std::optional<std::string> type = r.string(node[i], at);
    if (!type) continue;
    if (!valid_type_pattern(*type)) {
      r.error(node[i], at,
              "expected an event type or PREFIX.* (printable, at most 200 characters, * only "
              "at the end after a dot)");
      continue;
    }
    out.push_back(*type);
  }
}

// What a route and the legacy `destination` share: where, signed with what, for how long.
void read_endpoint(Reader& r, const YAML::Node& node, const std::string& path, Route& d) {
  if (const YAML::Node n = node["url"]) {
    if (auto text = r.string(n, path + ".url")) {
      d.url = *text;
      if (!parse_url(*text, d)) {
        r.error(n, path + ".url", "expected http[s]://HOST[:PORT][/PATH]");
      }
    }
  } else {
    r.error(node, path + ".url", "required");
  }
  if (const YAML::Node n = node["secret"]) {
    if (auto secret = r.string(n, path + ".secret")) {
      std::optional<std::string> key;
      if (secret->rfind("whsec_", 0) == 0) key = text::decode_base64(secret->substr(6));
      if (!key || key->size() < 16) {
        r.error(n, path + ".secret", "expected whsec_ and the base64 of at least 16 bytes");
      } else {
        d.key = *key;
      }
    }
  } else {
    r.error(node, path + ".secret", "required");
  }
  if (const YAML::Node n = node["timeout_ms"]) {
    if (auto v = r.integer(n, path + ".timeout_ms", 100, 600'000)) {
      d.timeout = std::chrono::milliseconds(*v);
    }
  }
}

void read_breaker(Reader& r, const YAML::Node& node, const std::string& path, Breaker& breaker) {
  if (!r.map(node, path, {"failures", "cooldown_ms"})) return;
  if (const YAML::Node n = node["failures"]) {
    if (auto v = r.integer(n, path + ".failures", 1, 1000)) breaker.failures = static_cast<int>(*v);
  }
  if (const YAML::Node n = node["cooldown_ms"]) {
    if (auto v = r.integer(n, path + ".cooldown_ms", 100, 86'400'000)) {
      breaker.cooldown = std::chrono::milliseconds(*v);
    }
  }
}

// A route's retry is its own, else its source's: `retry` is the source's, read before.
void read_routes(Reader& r, const YAML::Node& node, const std::string& path, const Retry& retry,
                 std::vector<Route>& out) {
  if (!node.IsSequence() || node.size() == 0) {
    r.error(node, path, "expected a list of routes");
    return;
  }
  if (node.size() > kMaxRoutes) {
    r.error(node, path, "at most " + std::to_string(kMaxRoutes) + " routes");
    return;
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const YAML::Node n = node[i];
    std::string at = path + "[" + std::to_string(i) + "]";
    if (!r.map(n, at,
               {"name", "url", "secret", "types", "timeout_ms", "retry", "max_in_flight",
                "max_per_second", "breaker"})) {
      continue;
    }
    Route route;
    route.retry = retry;
    route.name = read_name(r, n, at, "name", names, "route name", " in this source");
    read_endpoint(r, n, at, route);
    if (const YAML::Node types = n["types"]) read_types(r, types, at + ".types", route.types);
    if (const YAML::Node own = n["retry"]) read_retry(r, own, at + ".retry", route.retry);
    if (const YAML::Node v = n["max_in_flight"]) {
      if (auto limit = r.integer(v, at + ".max_in_flight", 1, 10'000)) {
        route.max_in_flight = static_cast<int>(*limit);
      }
    }
    if (const YAML::Node v = n["max_per_second"]) {
      if (auto limit = r.integer(v, at + ".max_per_second", 1, 10'000)) {
        route.max_per_second = static_cast<int>(*limit);
      }
    }
    if (const YAML::Node b = n["breaker"]) read_breaker(r, b, at + ".breaker", route.breaker);
    out.push_back(std::move(route));
  }
}

// One secret's text: an empty one is an unset optional secret, e.g. "${PREVIOUS_SECRET:-}".
std::optional<std::string> read_secret(Reader& r, const YAML::Node& n, const std::string& path,
                                       bool standard) {
  auto secret = r.string(n, path);
  if (!secret || secret->empty() || !standard) return secret;
  // Standard Webhooks secrets are whsec_<base64>; the key is the decoded bytes.
  std::string_view b64 = *secret;
  if (b64.substr(0, 6) == "whsec_") b64.remove_prefix(6);
  std::optional<std::string> key = text::decode_base64(b64);
  if (!key || key->empty()) {
    r.error(n, path, "expected whsec_ and base64");
    return std::nullopt;
  }
  return key;
}

// Each entry a string, or { value, not_after } for a secret on its way out.
void read_secrets(Reader& r, const YAML::Node& n, const std::string& path, bool standard,
                  std::vector<Secret>& secrets) {
  if (!n.IsSequence()) {
    r.error(n, path, "expected a list");
    return;
  }
  for (std::size_t k = 0; k < n.size(); ++k) {
    const YAML::Node entry = n[k];
    std::string kpath = path + "[" + std::to_string(k) + "]";
    Secret secret;
    std::optional<std::string> key;
    if (!entry.IsMap()) {
      key = read_secret(r, entry, kpath, standard);
    } else if (r.map(entry, kpath, {"value", "not_after"})) {
      if (const YAML::Node v = entry["value"]) {
        key = read_secret(r, v, kpath + ".value", standard);
      } else {
        r.error(entry, kpath + ".value", "required");
      }
      if (const YAML::Node at = entry["not_after"]) {
        auto time = r.string(at, kpath + ".not_after");
        std::optional<std::int64_t> micros = time ? text::parse_rfc3339(*time) : std::nullopt;
        if (micros) {
          secret.not_after =
              std::chrono::system_clock::time_point(std::chrono::microseconds(*micros));
        } else if (time) {
          r.error(at, kpath + ".not_after",
                  "expected an RFC 3339 date-time, e.g. 2026-12-31T00:00:00Z");
          key.reset();
        }
      }
    }
    if (!key || key->empty()) continue;
    secret.key = std::move(*key);
    secrets.push_back(std::move(secret));
  }
  if (secrets.empty()) r.error(n, path, "no non-empty secret");
}

// RFC 6901: "~" only as "~0" or "~1".
bool valid_json_pointer(std::string_view text) {
  for (std::size_t i = text.find('~'); i != std::string_view::npos; i = text.find('~', i + 1)) {
    if (i + 1 == text.size() || (text[i + 1] != '0' && text[i + 1] != '1')) return false;
  }
  return true;
}

bool valid_header_name(std::string_view name) {
  if (name.empty() || name.size() > 100) return false;
  for (char c : name) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

std::optional<std::string> header_name(Reader& r, const YAML::Node& n, const std::string& path) {
  auto text = r.string(n, path);
  if (text && !valid_header_name(*text)) {
    r.error(n, path, "expected a header name: 1 to 100 of A-Z a-z 0-9 - _");
    return std::nullopt;
  }
  return text;
}

// {body} once or more, {timestamp} only with a timestamp header, {id} only with an id header,
// {header:Name}; anything else between braces is an error.
void check_signed_content(Reader& r, const YAML::Node& n, const std::string& path,
                          const Hmac& hmac) {
  using Slot = Template::Slot;
  bool body = false;
  for (const Template::Part& part : hmac.signed_content.parts) {
    if (part.slot == Slot::kBody) {
      body = true;
    } else if (part.slot == Slot::kTimestamp && hmac.timestamp_header.empty()) {
      return r.error(n, path, "{timestamp} needs hmac.timestamp_header");
    } else if (part.slot == Slot::kId && hmac.id_header.empty()) {
      return r.error(n, path, "{id} needs hmac.event_id_header");
    } else if (part.slot != Slot::kText && part.slot != Slot::kTimestamp &&
               part.slot != Slot::kId && part.slot != Slot::kHeader) {
      return r.error(n, path,
                     "unknown placeholder in \"" + hmac.signed_content.text +
                         "\" (use {body}, {timestamp}, {id} and {header:Name})");
    }
  }
  // A signature that does not cover the body would let anyone replace it.
  if (!body) r.error(n, path, "must contain {body}");
}

void read_hmac(Reader& r, const YAML::Node& node, const std::string& path, Hmac& hmac) {
  if (!r.map(node, path,
             {"header", "prefix", "algorithm", "encoding", "signed_content", "timestamp_header",
              "event_id_header", "event_id_pointer", "event_type_header", "event_type_pointer"})) {
    return;
  }
  if (const YAML::Node n = node["header"]) {
    if (auto text = header_name(r, n, path + ".header")) hmac.header = *text;
  } else {
    r.error(node, path + ".header", "required: the header that carries the signature");
  }
  if (const YAML::Node n = node["prefix"]) {
    if (auto text = r.string(n, path + ".prefix")) hmac.prefix = *text;
  }
  if (const YAML::Node n = node["algorithm"]) {
    if (auto text = r.string(n, path + ".algorithm")) {
      if (*text == "sha1") {
        hmac.algorithm = Hmac::Algorithm::kSha1;
      } else if (*text == "sha256") {
        hmac.algorithm = Hmac::Algorithm::kSha256;
      } else if (*text == "sha512") {
        hmac.algorithm = Hmac::Algorithm::kSha512;
      } else {
        r.error(n, path + ".algorithm", "expected sha1, sha256 or sha512");
      }
    }
  }
  if (const YAML::Node n = node["encoding"]) {
    if (auto text = r.string(n, path + ".encoding")) {
      if (*text == "hex") {
        hmac.encoding = Hmac::Encoding::kHex;
      } else if (*text == "base64") {
        hmac.encoding = Hmac::Encoding::kBase64;
      } else {
        r.error(n, path + ".encoding", "expected hex or base64");
      }
    }
  }
  if (const YAML::Node n = node["timestamp_header"]) {
    if (auto text = header_name(r, n, path + ".timestamp_header")) hmac.timestamp_header = *text;
  }
  // The name and the pointer of one thing: exactly one for the id, at most one for the type.
  auto one_of = [&](const char* header_key, const char* pointer_key, std::string& header,
                    std::string& pointer, bool required) {
    const YAML::Node h = node[header_key];
    const YAML::Node p = node[pointer_key];
    if (h && p) {
      r.error(p, path + "." + pointer_key, std::string("not with ") + header_key);
    } else if (h) {
      if (auto text = header_name(r, h, path + "." + header_key)) header = *text;
    } else if (p) {
      auto text = r.string(p, path + "." + pointer_key);
      if (text && (text->empty() || text->front() != '/' || !valid_json_pointer(*text))) {
        r.error(p, path + "." + pointer_key, "expected a JSON Pointer such as /id or /event/id");
      } else if (text) {
        pointer = *text;
      }
    } else if (required) {
      r.error(node, path + "." + header_key,
              std::string("required: ") + header_key + " or " + pointer_key);
    }
  };
  one_of("event_id_header", "event_id_pointer", hmac.id_header, hmac.id_pointer, true);
  one_of("event_type_header", "event_type_pointer", hmac.type_header, hmac.type_pointer, false);
  if (const YAML::Node n = node["signed_content"]) {
    if (auto text = r.string(n, path + ".signed_content")) {
      hmac.signed_content = parse_template(*text);
      check_signed_content(r, n, path + ".signed_content", hmac);
    }
  }
}

void check_key_template(Reader& r, const YAML::Node& n, const std::string& path,
                        const Template& tmpl) {
  using Slot = Template::Slot;
  bool has_event_id = false;
  std::size_t literal = 0;
  for (const Template::Part& part : tmpl.parts) {
    if (part.slot == Slot::kText) {
      literal += part.text.size();
    } else if (part.slot == Slot::kEventId) {
      has_event_id = true;
    } else if (part.slot != Slot::kSource && part.slot != Slot::kProvider) {
      r.error(
          n, path,
          "unknown placeholder in \"" + tmpl.text + "\" (use {event_id}, {source} and {provider})");
      return;
    }
  }
  if (!has_event_id) r.error(n, path, "must contain {event_id}");
  if (literal >= text::kMaxKeyLength) {
    r.error(n, path, "leaves no room for the event id in 200 characters");
  }
}

void read_sources(Reader& r, const YAML::Node& node, const Server& server,
                  const std::vector<Project>& projects, std::vector<Source>& sources) {
  if (!node.IsSequence()) {
    r.error(node, "sources", "expected a list");
    return;
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const YAML::Node s = node[i];
    std::string path = "sources[" + std::to_string(i) + "]";
    if (!r.map(s, path,
               {"name", "provider", "project", "secrets", "tolerance_seconds", "max_body_bytes",
                "key_template", "job_type", "event_id_header", "hmac", "destination", "routes",
                "retry", "retention"})) {
      continue;
    }
    Source source;
    source.max_body_bytes = server.max_body_bytes;
    source.name = read_name(r, s, path, "name", names, "source name");
    if (const YAML::Node n = s["provider"]) {
      if (auto text = r.string(n, path + ".provider")) {
        static constexpr std::string_view kProviders[] = {"stripe",  "github", "standard",
                                                          "shopify", "slack",  "hmac"};
        if (std::find(std::begin(kProviders), std::end(kProviders), *text) ==
            std::end(kProviders)) {
          r.error(n, path + ".provider",
                  "unsupported provider \"" + *text +
                      "\" (stripe, github, standard, shopify, slack, hmac)");
        }
        source.provider = *text;
      }
    } else {
      r.error(s, path + ".provider", "required");
    }
    if (const YAML::Node n = s["project"]) {
      if (auto text = r.string(n, path + ".project")) {
        auto project = std::find_if(projects.begin(), projects.end(),
                                    [&](const Project& p) { return p.id == *text; });
        if (project == projects.end()) {
          r.error(n, path + ".project", "unknown project \"" + *text + "\"");
        } else {
          source.retention = project->retention;
        }
        source.project = *text;
      }
    } else {
      r.error(s, path + ".project", "required");
    }
    if (const YAML::Node n = s["secrets"]) {
      read_secrets(r, n, path + ".secrets", source.provider == "standard", source.secrets);
    } else {
      r.error(s, path + ".secrets", "required");
    }
    if (source.provider == "hmac") {
      if (const YAML::Node n = s["hmac"]) {
        read_hmac(r, n, path + ".hmac", source.hmac.emplace());
      } else {
        r.error(s, path + ".hmac", "required for provider hmac");
      }
    } else if (const YAML::Node n = s["hmac"]) {
      r.error(n, path + ".hmac", "only for provider hmac");
    }
    if (const YAML::Node n = s["tolerance_seconds"]) {
      bool timed =
          source.provider != "github" && source.provider != "shopify" &&
          (source.provider != "hmac" || !source.hmac || !source.hmac->timestamp_header.empty());
      if (!timed) {
        r.error(n, path + ".tolerance_seconds", source.provider + " signs no timestamp");
      } else if (auto v = r.integer(n, path + ".tolerance_seconds", 1, 86'400)) {
        source.tolerance = std::chrono::seconds(*v);
      }
    }
    if (const YAML::Node n = s["max_body_bytes"]) {
      if (auto v = r.integer(n, path + ".max_body_bytes", 1, kMaxBodyBytesCeiling)) {
        source.max_body_bytes = static_cast<std::size_t>(*v);
      }
    }
    if (const YAML::Node n = s["key_template"]) {
      if (auto text = r.string(n, path + ".key_template")) {
        source.key_template = parse_template(*text);
        check_key_template(r, n, path + ".key_template", source.key_template);
      }
    }
    if (const YAML::Node n = s["job_type"]) {
      if (auto type = r.string(n, path + ".job_type")) {
        if (type->empty() || type->size() > text::kMaxTypeLength) {
          r.error(n, path + ".job_type", "expected 1 to 200 characters");
        }
        source.job_type = *type;
      }
    }
    if (const YAML::Node n = s["event_id_header"]) {
      if (source.provider != "shopify") {
        r.error(n, path + ".event_id_header", "only for shopify");
      } else if (auto text = r.string(n, path + ".event_id_header")) {
        if (*text != "X-Shopify-Event-Id" && *text != "X-Shopify-Webhook-Id") {
          r.error(n, path + ".event_id_header", "X-Shopify-Event-Id or X-Shopify-Webhook-Id");
        }
        source.event_id_header = *text;
      }
    }
    if (const YAML::Node n = s["retry"]) read_retry(r, n, path + ".retry", source.retry);
    if (const YAML::Node n = s["retention"]) {
      read_retention(r, n, path + ".retention", source.retention, nullptr);
    }
    if (const YAML::Node n = s["routes"]) {
      if (s["destination"]) r.error(n, path + ".routes", "a source has routes or a destination");
      read_routes(r, n, path + ".routes", source.retry, source.routes);
    } else if (const YAML::Node d = s["destination"]) {
      // The form before routes: one route that takes every event.
      if (r.map(d, path + ".destination", {"url", "secret", "timeout_ms"})) {
        Route& route = source.routes.emplace_back();
        route.name = "default";
        route.retry = source.retry;
        read_endpoint(r, d, path + ".destination", route);
      }
    }
    sources.push_back(std::move(source));
  }
}

}  // namespace

Template parse_template(std::string_view text) {
  using Slot = Template::Slot;
  static constexpr std::pair<std::string_view, Slot> kNames[] = {
      {"event_id", Slot::kEventId}, {"source", Slot::kSource},       {"provider", Slot::kProvider},
      {"body", Slot::kBody},        {"timestamp", Slot::kTimestamp}, {"id", Slot::kId}};
  constexpr std::string_view kHeader = "header:";
  Template out{std::string(text), {}};
  while (!text.empty()) {
    std::size_t open = text.find('{');
    if (open != 0) {
      out.parts.push_back({Slot::kText, std::string(text.substr(0, open))});
      text.remove_prefix(std::min(open, text.size()));
      continue;
    }
    std::size_t close = text.find('}');
    bool closed = close != std::string_view::npos;
    std::size_t end = closed ? close + 1 : text.size();
    std::string_view name = closed ? text.substr(1, close - 1) : std::string_view();
    Template::Part part{Slot::kUnknown, std::string(text.substr(0, end))};
    for (auto [known, slot] : kNames) {
      if (closed && name == known) part = {slot, {}};
    }
    if (closed && name.substr(0, kHeader.size()) == kHeader &&
        valid_header_name(name.substr(kHeader.size()))) {
      part = {Slot::kHeader, std::string(name.substr(kHeader.size()))};
    }
    out.parts.push_back(std::move(part));
    text.remove_prefix(end);
  }
  return out;
}

bool valid_type_pattern(std::string_view pattern) {
  std::optional<std::size_t> length = text::printable_utf8_length(pattern);
  std::string_view exact = pattern;
  if (exact.size() > 2 && exact.substr(exact.size() - 2) == ".*") exact.remove_suffix(2);
  return length && *length <= text::kMaxTypeLength && !exact.empty() &&
         exact.find('*') == std::string_view::npos;
}

bool Operator::sees(const std::string& project) const {
  return projects.empty() || std::find(projects.begin(), projects.end(), project) != projects.end();
}

bool Config::prunes() const {
  return std::any_of(projects.begin(), projects.end(),
                     [](const Project& p) { return p.retention.prunes(); }) ||
         std::any_of(sources.begin(), sources.end(),
                     [](const Source& s) { return s.retention.prunes(); });
}

bool Route::takes(std::string_view event_type) const {
  if (types.empty()) return true;
  for (std::string_view t : types) {
    if (t.size() > 2 && t.substr(t.size() - 2) == ".*") {
      t.remove_suffix(1);  // the prefix and its dot
      if (event_type.size() > t.size() && event_type.substr(0, t.size()) == t) return true;
    } else if (event_type == t) {
      return true;
    }
  }
  return false;
}

bool Cidr::contains(std::string_view address) const {
  std::array<std::uint8_t, 16> other{};
  std::string text(address);
  if (inet_pton(v6 ? AF_INET6 : AF_INET, text.c_str(), other.data()) != 1) return false;
  int full = prefix / 8;
  for (int i = 0; i < full; ++i) {
    if (bytes[i] != other[i]) return false;
  }
  if (int rest = prefix % 8; rest != 0) {
    auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    if ((bytes[full] & mask) != (other[full] & mask)) return false;
  }
  return true;
}

std::optional<std::string> process_environment(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

Config parse(std::string_view yaml, const std::string& file_name, const Environment& env) {
  Reader r(file_name, env);
  Config config;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    r.error(e.mark, "", e.msg);
    throw Error(r.errors().front());
  }
  if (r.map(root, "",
            {"server", "database", "retention", "projects", "sources", "workers", "console"})) {
    if (const YAML::Node n = root["server"]) read_server(r, n, config.server);
    if (const YAML::Node n = root["database"]) {
      read_database(r, n, config.database);
    } else {
      r.error(root, "database", "required");
    }
    if (const YAML::Node n = root["retention"]) {
      read_retention(r, n, "retention", config.retention, &config.pruning);
    }
    if (const YAML::Node n = root["projects"]) {
      read_projects(r, n, config.retention, config.projects);
    }
    if (const YAML::Node n = root["sources"]) {
      read_sources(r, n, config.server, config.projects, config.sources);
    }
    if (const YAML::Node n = root["workers"]) read_workers(r, n, config.workers);
    if (const YAML::Node n = root["console"]) read_console(r, n, config.projects, config.console);
    // The largest body any route takes must fit in what bodies may hold together: by default
    // they may hold that much, when it is more than 32 MiB.
    std::size_t largest = config.server.max_body_bytes;
    for (const Source& s : config.sources) largest = std::max(largest, s.max_body_bytes);
    const YAML::Node server = root["server"];
    bool set = server && server.IsMap() && server["body_memory_bytes"];
    if (!set) {
      config.server.body_memory_bytes = std::max(config.server.body_memory_bytes, largest);
    } else if (largest > config.server.body_memory_bytes) {
      r.error(server["body_memory_bytes"], "server.body_memory_bytes",
              "must be at least the largest max_body_bytes (" + std::to_string(largest) + ")");
    }
    // An attempt must end before its lease does, or a second worker would start another.
    for (std::size_t i = 0; i < config.sources.size(); ++i) {
      const YAML::Node source = root["sources"][i];
      const std::vector<Route>& routes = config.sources[i].routes;
      for (std::size_t k = 0; k < routes.size(); ++k) {
        if (routes[k].timeout < std::chrono::seconds(config.workers.lease_seconds)) continue;
        bool listed = static_cast<bool>(source["routes"]);
        std::string path = "sources[" + std::to_string(i) + "]" +
                           (listed ? ".routes[" + std::to_string(k) + "]" : ".destination");
        const YAML::Node at = listed ? source["routes"][k] : source["destination"];
        r.error(at["timeout_ms"] ? at["timeout_ms"].Mark() : at.Mark(), path + ".timeout_ms",
                "must be shorter than workers.lease_seconds");
      }
    }
  }
  if (!r.errors().empty()) {
    std::string all;
    for (const std::string& e : r.errors()) all += (all.empty() ? "" : "\n") + e;
    throw Error(all);
  }
  return config;
}

Config load(const std::string& path, const Environment& env) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), path, env);
}

}  // namespace flare::config
