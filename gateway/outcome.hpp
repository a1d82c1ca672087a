// Every way a request can end. reply.cpp maps each to its HTTP status and error code.
#pragma once

#include <string_view>

namespace flare::gateway {

enum class Outcome {
  kEnqueue,  // not an ending: the job goes to the committer
  kAccepted,
  kDuplicate,
  kHealthy,
  kReady,
  kUnknownSource,
  kNotFound,
  kMethodNotAllowed,
  kPayloadTooLarge,
  kHeaderTooLarge,
  kBadRequest,
  kMissingSignature,
  kInvalidSignature,
  kStale,
  kInvalidEventId,
  kInvalidPayload,
  kUnavailable,
  kInternal,
};

}  // namespace flare::gateway
