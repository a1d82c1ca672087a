// The jobs API (SPEC §5) without the network. the dispatcher has chosen the endpoint from the
// header; the API authenticates the key, then, once the body is read, validates it and says
// what to do: answer now, enqueue through the committer, or run a store operation on the pool.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "gateway/dispatch.hpp"
#include "gateway/reply.hpp"
#include "jobs/committer.hpp"
#include "jobs/store.hpp"
#include "providers/hmac.hpp"

namespace flare::gateway {

struct ApiPlan {
  std::optional<Reply> reply;               // answer now
  std::optional<jobs::NewJob> enqueue;      // then answer with Api::enqueued
  std::function<Reply(jobs::Store&)> work;  // runs on a pool thread; its reply is the answer
  // Instead of `work`, for a claim: runs on a pool thread and answers nothing while nothing is
  // claimable; then runs again at each wake-up (jobs::Wakeups) until it answers or `wait` has
  // passed since the request, and `no_jobs` is the answer.
  std::function<std::optional<Reply>(jobs::Store&)> poll;
  std::chrono::milliseconds wait{0};
  Reply no_jobs;
};

// A jobs list's query string (GET /v1/jobs, and the console's /console/jobs): its filters,
// limit and cursor into `q`. Other names go to `others` when it is given (and empty values are
// skipped, as a form sends them), else they are an error. Returns the parameter at fault and
// what it takes.
std::optional<std::pair<std::string, std::string>> read_list_query(
    std::string_view query, jobs::ListQuery& q,
    std::vector<std::pair<std::string, std::string>>* others);
// The cursor of a list whose next page begins after job `id`.
std::string list_cursor(const std::string& id);

class Api {
 public:
  explicit Api(const config::Config& config);

  // The project whose API key `Authorization: Bearer <key>` carries; null when the header is
  // absent or malformed, or the key is no project's. Every key is compared, in constant time.
  const config::Project* authenticate(std::optional<std::string_view> authorization) const;

  // What to do for `call`, an endpoint of the API, asked by `project` with `body`.
  ApiPlan plan(const config::Project& project, const ApiCall& call, std::string body) const;

  // The answer to POST /v1/jobs once the committer is done: 201, 409, 503 or 500.
  static Reply enqueued(const jobs::Result& result);

 private:
  ApiPlan create(const config::Project& project, const std::string& body) const;
  ApiPlan list(const config::Project& project, std::string_view query) const;
  ApiPlan claim(const config::Project& project, const std::string& body) const;
  ApiPlan complete_many(const config::Project& project, const std::string& body) const;
  ApiPlan lease_action(const config::Project& project, const std::string& id, Endpoint endpoint,
                       const std::string& body) const;
  std::vector<jobs::RouteId> routes_of(const config::Project& project) const;
  ApiPlan routes(const config::Project& project) const;
  // Pause, resume, or replay to, a route of one of the project's sources.
  ApiPlan route_action(const config::Project& project, const ApiCall& call,
                       const std::string& body) const;

  const config::Config& config_;
  struct Key {
    providers::Digest sha256;
    const config::Project* project;
  };
  std::vector<Key> keys_;
};

}  // namespace flare::gateway
