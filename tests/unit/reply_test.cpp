#include "gateway/reply.hpp"

#include <gtest/gtest.h>

namespace flare::gateway {
namespace {

std::string rendered(const Reply& reply, Framing framing = {false, true, "req-1"}) {
  std::string out = "left over from the request before";
  render(reply, framing, out);
  return out;
}

TEST(Reply, ContractTable) {
  struct Row {
    Outcome outcome;
    unsigned status;
    std::string code;
  };
  for (const Row& r : std::vector<Row>{{Outcome::kUnknownSource, 404, "unknown_source"},
                                       {Outcome::kMethodNotAllowed, 405, "method_not_allowed"},
                                       {Outcome::kPayloadTooLarge, 413, "payload_too_large"},
                                       {Outcome::kMissingSignature, 400, "missing_signature"},
                                       {Outcome::kInvalidSignature, 401, "invalid_signature"},
                                       {Outcome::kStale, 401, "timestamp_out_of_tolerance"},
                                       {Outcome::kInvalidEventId, 400, "invalid_event_id"},
                                       {Outcome::kInvalidPayload, 400, "invalid_payload"},
                                       {Outcome::kUnavailable, 503, "unavailable"},
                                       {Outcome::kUnauthorized, 401, "unauthorized"},
                                       {Outcome::kInvalidJson, 400, "invalid_json"},
                                       {Outcome::kValidationError, 400, "validation_error"},
                                       {Outcome::kIdempotencyConflict, 409, "idempotency_conflict"},
                                       {Outcome::kLeaseLost, 409, "lease_lost"},
                                       {Outcome::kInvalidStatus, 409, "invalid_status"}}) {
    Reply reply = error(r.outcome);
    EXPECT_EQ(http_status(reply.outcome), r.status) << r.code;
    EXPECT_EQ(outcome_name(reply.outcome), r.code);
    EXPECT_EQ(reply.body.rfind("{\"error\":{\"code\":\"" + r.code + "\",\"message\":\"", 0), 0u)
        << reply.body;
    std::string bytes = rendered(reply);
    EXPECT_EQ(bytes.find("\r\nRetry-After: 5\r\n") != std::string::npos, r.status == 503) << bytes;
    EXPECT_EQ(bytes.find("\r\nWWW-Authenticate: Bearer\r\n") != std::string::npos,
              r.code == "unauthorized")
        << bytes;
  }
  EXPECT_EQ(error(Outcome::kValidationError, "bad", {{"field", "type"}}).body,
            R"({"error":{"code":"validation_error","message":"bad","field":"type"}})");
  Reply accepted =
      status(Outcome::kAccepted, {{"job_id", "id-1"}, {"idempotency_key", "webhook:\"q\""}});
  EXPECT_EQ(http_status(accepted.outcome), 202u);
  EXPECT_EQ(accepted.body,
            R"({"status":"accepted","job_id":"id-1","idempotency_key":"webhook:\"q\""})");
  Reply duplicate = status(Outcome::kDuplicate, {{"job_id", "id-1"}, {"idempotency_key", "k"}});
  EXPECT_EQ(http_status(duplicate.outcome), 200u);
  EXPECT_EQ(duplicate.body, R"({"status":"duplicate","job_id":"id-1","idempotency_key":"k"})");
  // Bodies are written one after another in one buffer per thread: a long one leaves nothing
  // behind in the next.
  Reply echo = challenge(std::string(10000, 'c'));
  EXPECT_EQ(echo.body, R"({"challenge":")" + std::string(10000, 'c') + R"("})");
  EXPECT_EQ(status(Outcome::kHealthy).body, R"({"status":"ok"})");
}

TEST(Reply, UnavailableSaysARetryIsSafeNotThatNothingHappened) {
  Reply r = error(Outcome::kUnavailable);
  EXPECT_NE(r.body.find("may or may not have taken effect"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("nothing"), std::string::npos) << r.body;
}

TEST(Reply, StoreFailuresAreUnavailableOrInternal) {
  EXPECT_EQ(store_failure(jobs::Outcome::kUnavailable).outcome, Outcome::kUnavailable);
  EXPECT_EQ(store_failure(jobs::Outcome::kFailed).outcome, Outcome::kInternal);
  EXPECT_EQ(http_status(Outcome::kJobNotFound), 404u);
  EXPECT_EQ(outcome_name(Outcome::kJobNotFound), "not_found");
}

TEST(Render, EveryStatusOfTheTableHasItsReasonPhrase) {
  for (auto [outcome, line] : std::vector<std::pair<Outcome, std::string>>{
           {Outcome::kOk, "200 OK"},
           {Outcome::kCreated, "201 Created"},
           {Outcome::kAccepted, "202 Accepted"},
           {Outcome::kDeleted, "204 No Content"},
           {Outcome::kBadRequest, "400 Bad Request"},
           {Outcome::kUnauthorized, "401 Unauthorized"},
           {Outcome::kNotFound, "404 Not Found"},
           {Outcome::kMethodNotAllowed, "405 Method Not Allowed"},
           {Outcome::kIdempotencyConflict, "409 Conflict"},
           {Outcome::kPayloadTooLarge, "413 Payload Too Large"},
           {Outcome::kHeaderTooLarge, "431 Request Header Fields Too Large"},
           {Outcome::kInternal, "500 Internal Server Error"},
           {Outcome::kUnavailable, "503 Service Unavailable"}}) {
    std::string bytes = rendered(error(outcome));
    EXPECT_EQ(bytes.rfind("HTTP/1.1 " + line + "\r\n", 0), 0u) << bytes;
  }
}

TEST(Render, KeptAliveHttp11Response) {
  Reply r = status(Outcome::kAccepted, {{"job_id", "j1"}});
  EXPECT_EQ(rendered(r),
            "HTTP/1.1 202 Accepted\r\n"
            "Server: flare-gateway\r\n"
            "Content-Type: application/json\r\n"
            "X-Request-Id: req-1\r\n"
            "Content-Length: 35\r\n"
            "\r\n"
            R"({"status":"accepted","job_id":"j1"})");
}

TEST(Render, ClosingAndHttp10Connections) {
  Reply r = status(Outcome::kHealthy);
  std::string closing = rendered(r, {false, false, "a"});
  EXPECT_EQ(closing.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << closing;
  EXPECT_NE(closing.find("\r\nConnection: close\r\n"), std::string::npos) << closing;
  std::string old_kept = rendered(r, {true, true, "a"});
  EXPECT_EQ(old_kept.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << old_kept;
  EXPECT_NE(old_kept.find("\r\nConnection: keep-alive\r\n"), std::string::npos) << old_kept;
  std::string old_closing = rendered(r, {true, false, "a"});
  EXPECT_EQ(old_closing.find("Connection:"), std::string::npos) << old_closing;
  EXPECT_EQ(rendered(r).find("Connection:"), std::string::npos);
}

TEST(Render, NoContentHasNoBodyAndNoLength) {
  std::string bytes = rendered(success(Outcome::kDeleted, ""));
  EXPECT_EQ(bytes,
            "HTTP/1.1 204 No Content\r\nServer: flare-gateway\r\nX-Request-Id: req-1\r\n\r\n");
}

TEST(Render, MethodNotAllowedNamesTheMethodsAndOtherTypesKeepTheirs) {
  std::string bytes = rendered(not_allowed("GET, POST"));
  EXPECT_EQ(bytes.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0u) << bytes;
  EXPECT_NE(bytes.find("\r\nAllow: GET, POST\r\n"), std::string::npos) << bytes;
  Reply metrics = success(Outcome::kOk, "flare_up 1\n");
  metrics.content_type = "text/plain; version=0.0.4";
  EXPECT_NE(rendered(metrics).find("\r\nContent-Type: text/plain; version=0.0.4\r\n"),
            std::string::npos);
  EXPECT_EQ(rendered(error(Outcome::kHeaderTooLarge))
                .rfind("HTTP/1.1 431 Request Header Fields Too Large\r\n", 0),
            0u);
}

}  // namespace
}  // namespace flare::gateway
