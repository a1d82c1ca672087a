// Push delivery: one worker thread's HTTP(S) client for routes. Each attempt POSTs the job's
// original bytes with its stable Idempotency-Key and a Standard Webhooks signature made with the
// route's secret; 2xx is success, anything else a failed attempt.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "jobs/worker.hpp"

namespace flare::gateway {

class PushClient final : public jobs::Deliverer {
 public:
  explicit PushClient(const config::Config& config);
  ~PushClient() override;

  jobs::Attempt deliver(const jobs::Job& job, const jobs::Delivery& delivery) override;
  void abandon() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The headers of one attempt, beside Host and Content-Length.
std::vector<std::pair<std::string, std::string>> push_headers(const jobs::Job& job,
                                                              const jobs::Delivery& delivery,
                                                              const config::Route& route,
                                                              std::int64_t now_unix);

}  // namespace flare::gateway
