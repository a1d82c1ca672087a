// Every way a request can end. reply.cpp maps each to its HTTP status and code.
#pragma once

namespace flare::gateway {

enum class Outcome {
  kEnqueue,  // not an ending: the job goes to the committer
  // Successes.
  kAccepted,
  kDuplicate,
  kHealthy,
  kReady,
  kOk,
  kCreated,
  kDeleted,
  kChallenge,  // a provider's signed handshake, answered with its challenge
  kSeeOther,   // the console's redirect after a form, or to its sign-in page
  // Errors of any path.
  kNotFound,
  kMethodNotAllowed,
  kPayloadTooLarge,
  kHeaderTooLarge,
  kBadRequest,
  kUnavailable,
  kInternal,
  // Webhooks.
  kUnknownSource,
  kMissingSignature,
  kInvalidSignature,
  kStale,
  kInvalidEventId,
  kInvalidPayload,
  // The jobs API.
  kUnauthorized,
  kInvalidJson,
  kValidationError,
  kJobNotFound,
  kRouteNotFound,
  kReplayNotFound,
  kIdempotencyConflict,
  kLeaseLost,
  kInvalidStatus,
  kPayloadPruned,
  // The console.
  kSignInRefused,  // 401 without a challenge: the sign-in form is shown again
  kForbidden,      // a form without its session's CSRF token, or a read-only operator acting
};

}  // namespace flare::gateway
