// Which part of the gateway answers a request, decided from its method and target alone, before
// any byte of its body is read. Pure.
#pragma once

#include <string>
#include <string_view>

#include "gateway/ingest.hpp"
#include "gateway/reply.hpp"

namespace flare::gateway {

// The jobs API's endpoints (SPEC §5).
enum class Endpoint {
  kCreate,        // POST /v1/jobs
  kList,          // GET /v1/jobs
  kClaim,         // POST /v1/jobs/claim
  kCompleteMany,  // POST /v1/jobs/complete
  kGet,           // GET /v1/jobs/{id}
  kDelete,        // DELETE /v1/jobs/{id}
  kRetry,         // POST /v1/jobs/{id}/retry
  kCancel,        // POST /v1/jobs/{id}/cancel
  kHeartbeat,     // POST /v1/jobs/{id}/heartbeat
  kComplete,      // POST /v1/jobs/{id}/complete
  kFail,          // POST /v1/jobs/{id}/fail
  kRoutes,        // GET /v1/routes
  kPauseRoute,    // POST /v1/routes/{source}/{route}/pause
  kResumeRoute,   // POST /v1/routes/{source}/{route}/resume
  kReplay,        // POST /v1/routes/{source}/{route}/replays
  kGetReplay,     // GET /v1/replays/{id}
  kCancelReplay,  // POST /v1/replays/{id}/cancel
};

struct ApiCall {
  Endpoint endpoint = Endpoint::kList;
  std::string_view id;      // under /v1/jobs/{id} and /v1/replays/{id}: a UUID
  std::string_view source;  // under /v1/routes/{source}/{route}
  std::string_view route;
  std::string_view query;  // kList: what follows '?'
};

struct Dispatch {
  enum class Kind {
    kWebhook,   // read the body (up to the source's limit), then ingest
    kApi,       // authenticate, read the body, then plan
    kApiReply,  // a /v1/jobs path without this endpoint: `reply` once authenticated (and the
                // body read), so that an unauthenticated caller learns nothing of the paths
    kConsole,   // a /console path: read the body (a form), then ask the console
    kMetrics,   // GET /metrics
    kHealth,    // GET /healthz
    kReady,     // GET /readyz
    kReply,     // answer `reply` at once
  };
  Kind kind = Kind::kReply;
  // A /webhooks/ path, whether or not its source exists: counted per source in the metrics.
  bool webhook_path = false;
  const Source* source = nullptr;  // the /webhooks/ path's source, when it exists
  ApiCall api;
  std::string_view console_path;  // kConsole: the path after /console
  std::string_view query;         // kConsole: after '?'
  Reply reply;
};

// `target` is the request's path and query; every path lives under `base_path` ("" or e.g.
// "/flare"). /console paths exist only with `console`.
Dispatch dispatch(std::string_view method, std::string_view target, std::string_view base_path,
                  const Sources& sources, bool console);

}  // namespace flare::gateway
