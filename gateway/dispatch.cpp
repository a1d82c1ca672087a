#include "gateway/dispatch.hpp"

#include "text/text.hpp"

namespace flare::gateway {
namespace {

constexpr std::string_view kWebhooks = "/webhooks/";
constexpr std::string_view kJobs = "/v1/jobs";

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

Dispatch api(Endpoint endpoint, std::string_view job_id = {}, std::string_view query = {}) {
  Dispatch r = to(Dispatch::Kind::kApi);
  r.api = {endpoint, job_id, query};
  return r;
}

// `rest`: the path after /v1/jobs.
Dispatch dispatch_api(std::string_view method, std::string_view rest, std::string_view query) {
  if (rest.empty() || rest == "/") {
    if (method == "POST") return api(Endpoint::kCreate);
    if (method == "GET") return api(Endpoint::kList, {}, query);
    return api_reply(not_allowed("GET, POST"));
  }
  rest.remove_prefix(1);  // the '/'
  if (rest == "claim") {
    return method == "POST" ? api(Endpoint::kClaim) : api_reply(not_allowed("POST"));
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
                  const Sources& sources) {
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
  if (path == "/metrics" || path == "/healthz" || path == "/readyz") {
    if (method != "GET") return answer(not_allowed("GET"));
    return to(path == "/metrics"   ? Dispatch::Kind::kMetrics
              : path == "/healthz" ? Dispatch::Kind::kHealth
                                   : Dispatch::Kind::kReady);
  }
  return answer(error(Outcome::kNotFound));
}

}  // namespace flare::gateway
