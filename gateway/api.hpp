// The jobs API (SPEC §5) without the network: authenticate, route, validate, and say what to
// do: answer now, enqueue through the committer, or run a store operation on the pool.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "gateway/reply.hpp"
#include "jobs/committer.hpp"
#include "jobs/store.hpp"
#include "providers/hmac.hpp"

namespace flare::gateway {

struct ApiRequest {
  std::string_view method;
  std::string_view target;  // path and query
  std::optional<std::string_view> authorization;
  std::string body;
};

struct ApiPlan {
  std::optional<Reply> reply;               // answer now
  std::optional<jobs::NewJob> enqueue;      // then answer with Api::enqueued
  std::function<Reply(jobs::Store&)> work;  // runs on a pool thread; its reply is the answer
};

class Api {
 public:
  static constexpr std::string_view kPrefix = "/v1/jobs";

  explicit Api(const config::Config& config);

  ApiPlan plan(ApiRequest request) const;

  // The answer to POST /v1/jobs once the committer is done: 201, 409, 503 or 500.
  static Reply enqueued(const jobs::Result& result);

 private:
  const config::Project* authenticate(std::optional<std::string_view> authorization) const;
  ApiPlan create(const config::Project& project, const std::string& body) const;
  ApiPlan list(const config::Project& project, std::string_view query) const;
  ApiPlan claim(const config::Project& project, const std::string& body) const;
  ApiPlan lease_action(const config::Project& project, const std::string& id,
                       std::string_view action, const std::string& body) const;

  const config::Config& config_;
  struct Key {
    providers::Digest sha256;
    const config::Project* project;
  };
  std::vector<Key> keys_;
};

// How long a job waits after its failed attempt: backoff with full jitter, by the retry policy
// of its source, or workers.retry for jobs enqueued through the API.
std::chrono::milliseconds retry_delay(const config::Config& config, const jobs::Job& failed);

}  // namespace flare::gateway
