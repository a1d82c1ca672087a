#include "gateway/dispatch.hpp"

#include "text/text.hpp"

namespace flare::gateway {
namespace {

constexpr std::string_view kWebhooks = "/webhooks/";
constexpr std::string_view kJobs = "/v1/jobs";
constexpr std::string_view kRoutes = "/v1/routes";
constexpr std::string_view kReplays = "/v1/replays/";

Dispatch to(Dispatch::Kind kind) {
  Dispatch r;
  r.kind = kind;
  return r;
}

Dispatch answer(Reply reply, Dispatch::Kind kind = Dispatch::Kind::kReply) {
  Dispatch r = to(kind);
  r.reply = std::move(reply);
  return r;
}

Dispatch api_reply(Reply reply) { return answer(std::move(reply), Dispatch::Kind::kApiReply); }

Dispatch api(Endpoint endpoint, std::string_view id = {}, std::string_view query = {}) {
  Dispatch r = to(Dispatch::Kind::kApi);
  r.api.endpoint = endpoint;
  r.api.id = id;
  r.api.query = query;
  return r;
}

// `rest`: the path after /v1/routes.
Dispatch dispatch_routes(std::string_view method, std::string_view rest) {
  if (rest.empty() || rest == "/") {
    return method == "GET" ? api(Endpoint::kRoutes) : api_reply(not_allowed("GET"));
  }
  rest.remove_prefix(1);
  std::size_t first = rest.find('/');
  std::size_t second = first == std::string_view::npos ? first : rest.find('/', first + 1);
  if (second == std::string_view::npos) return api_reply(error(Outcome::kNotFound));
  static constexpr std::pair<std::string_view, Endpoint> kActions[] = {
      {"pause", Endpoint::kPauseRoute},
      {"resume", Endpoint::kResumeRoute},
      {"replays", Endpoint::kReplay}};
  std::string_view action = rest.substr(second + 1);
  for (auto [name, endpoint] : kActions) {
    if (action != name) continue;
    if (method != "POST") return api_reply(not_allowed("POST"));
    Dispatch r = api(endpoint);
    r.api.source = rest.substr(0, first);
    r.api.route = rest.substr(first + 1, second - first - 1);
    return r;
  }
  return api_reply(error(Outcome::kNotFound));
}

// `rest`: the path after /v1/replays/.
Dispatch dispatch_replays(std::string_view method, std::string_view rest) {
  std::size_t slash = rest.find('/');
  std::string_view id = rest.substr(0, slash);
  std::string_view action = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  if (action.empty() || action == "cancel") {
    std::string_view allowed = action.empty() ? "GET" : "POST";
    if (method != allowed) return api_reply(not_allowed(allowed));
    if (!text::is_uuid(id)) return api_reply(error(Outcome::kReplayNotFound));
    return api(action.empty() ? Endpoint::kGetReplay : Endpoint::kCancelReplay, id);
  }
  return api_reply(error(Outcome::kNotFound));
}

// `rest`: the path after /v1/jobs.
Dispatch dispatch_api(std::string_view method, std::string_view rest, std::string_view query) {
  if (rest.empty() || rest == "/") {
    if (method == "POST") return api(Endpoint::kCreate);
    if (method == "GET") return api(Endpoint::kList, {}, query);
    return api_reply(not_allowed("GET, POST"));
  }
  rest.remove_prefix(1);  // the '/'
  if (rest == "claim" || rest == "complete") {
    if (method != "POST") return api_reply(not_allowed("POST"));
    return api(rest == "claim" ? Endpoint::kClaim : Endpoint::kCompleteMany);
  }
  std::size_t slash = rest.find('/');
  std::string_view id = rest.substr(0, slash);
  std::string_view action = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  if (action.empty()) {
    if (method != "GET" && method != "DELETE") return api_reply(not_allowed("GET, DELETE"));
    if (!text::is_uuid(id)) return api_reply(error(Outcome::kJobNotFound));
    return api(method == "GET" ? Endpoint::kGet : Endpoint::kDelete, id);
  }
  static constexpr std::pair<std::string_view, Endpoint> kActions[] = {
      {"retry", Endpoint::kRetry},
      {"cancel", Endpoint::kCancel},
      {"heartbeat", Endpoint::kHeartbeat},
      {"complete", Endpoint::kComplete},
      {"fail", Endpoint::kFail}};
  for (auto [name, endpoint] : kActions) {
    if (action != name) continue;
    if (method != "POST") return api_reply(not_allowed("POST"));
    if (!text::is_uuid(id)) return api_reply(error(Outcome::kJobNotFound));
    return api(endpoint, id);
  }
  return api_reply(error(Outcome::kNotFound));
}

}  // namespace

Dispatch dispatch(std::string_view method, std::string_view target, std::string_view base_path,
                  const Sources& sources, bool console) {
  if (target.substr(0, base_path.size()) != base_path ||
      (target.size() > base_path.size() && target[base_path.size()] != '/')) {
    return answer(error(Outcome::kNotFound));
  }
  target.remove_prefix(base_path.size());
  std::size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);

  if (path.substr(0, kWebhooks.size()) == kWebhooks) {
    auto found = sources.find(path.substr(kWebhooks.size()));
    Dispatch r;
    if (found == sources.end()) {
      r = answer(error(Outcome::kUnknownSource));
    } else {
      r = method == "POST" ? to(Dispatch::Kind::kWebhook) : answer(not_allowed("POST"));
      r.source = &found->second;
    }
    r.webhook_path = true;
    return r;
  }
  if (path == kJobs || path.substr(0, kJobs.size() + 1) == "/v1/jobs/") {
    return dispatch_api(method, path.substr(kJobs.size()), query);
  }
  if (path == kRoutes || path.substr(0, kRoutes.size() + 1) == "/v1/routes/") {
    return dispatch_routes(method, path.substr(kRoutes.size()));
  }
  if (path.substr(0, kReplays.size()) == kReplays) {
    return dispatch_replays(method, path.substr(kReplays.size()));
  }
  if (console && (path == "/console" || path.substr(0, 9) == "/console/")) {
    Dispatch r = to(Dispatch::Kind::kConsole);
    r.console_path = path.substr(8);
    r.query = query;
    return r;
  }
  if (path == "/metrics" || path == "/healthz" || path == "/readyz") {
    if (method != "GET") return answer(not_allowed("GET"));
    return to(path == "/metrics"   ? Dispatch::Kind::kMetrics
              : path == "/healthz" ? Dispatch::Kind::kHealth
                                   : Dispatch::Kind::kReady);
  }
  return answer(error(Outcome::kNotFound));
}

}  // namespace flare::gateway
