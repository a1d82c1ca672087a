// Who sent a request and how, as the log and the response tell it: what a trusted proxy says
// (X-Forwarded-For, X-Forwarded-Proto, X-Request-Id), else what the connection shows. Pure but
// for RequestIds, which draws its prefix from OpenSSL's random generator once.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "providers/provider.hpp"

namespace flare::gateway {

struct Origin {
  std::string client;      // an IP address
  std::string_view proto;  // "http" or "https"
  std::string request_id;
};

// The ids given to requests that bring none: this process's random prefix and a count, unique
// across restarts and replicas without coordination. Thread-safe.
class RequestIds {
 public:
  RequestIds();
  std::string next();

 private:
  const std::string prefix_;
  std::atomic<std::uint64_t> count_{0};
};

// A proxy's request id is logged and echoed: 1 to 128 of A-Z a-z 0-9 . _ : -
bool valid_request_id(std::string_view id);

// `peer`: the connection's address; `generated`: the id used unless a trusted proxy gives one;
// `headers`: the request's, or null when its header did not parse (nobody's word about anything).
Origin origin_of(const std::vector<config::Cidr>& trusted_proxies, std::string_view peer, bool tls,
                 std::string generated, const providers::Headers* headers);

}  // namespace flare::gateway
