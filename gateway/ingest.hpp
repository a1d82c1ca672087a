// The webhook path as pure code: verify the request, derive the idempotency key and job type,
// and either produce the job to enqueue or the reason there is none. No I/O.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "gateway/outcome.hpp"
#include "gateway/reply.hpp"
#include "jobs/committer.hpp"
#include "jobs/job.hpp"
#include "providers/provider.hpp"

namespace flare::gateway {

struct Source {
  const config::Source* config;
  std::unique_ptr<providers::Provider> provider;
};

// The configured sources by name, each with its provider built once.
using Sources = std::map<std::string, Source, std::less<>>;
Sources make_sources(const config::Config& config);

struct Ingest {
  Outcome outcome;          // kEnqueue when `job` is ready for the committer
  std::string_view detail;  // a fixed text for the error message
  jobs::NewJob job;
  std::string challenge;  // kChallenge: what to send back
};

Ingest ingest(const Source& source, const providers::Headers& headers, std::string body,
              std::chrono::system_clock::time_point now);

// The answer to a webhook once the committer is done: 202 accepted, 200 duplicate, 503 or 500.
Reply webhook_reply(const jobs::Result& result);

// Fills the source's key template; nullopt when the event id is empty, holds a control
// character or invalid UTF-8, or the key would exceed 200 characters.
std::optional<std::string> derive_key(const config::Source& source, std::string_view event_id);

}  // namespace flare::gateway
