// The operators' web console (docs/console.md) without the network. The dispatcher sends every
// path under /console here; the console says what to answer: now (a page that needs no session,
// a malformed request), or after work on a pool thread, which finds the session and reads or
// changes what the page is about (never on a network thread). Every page is HTML made on the
// server, with no script, under a Content-Security-Policy that allows none.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "gateway/api.hpp"
#include "providers/hmac.hpp"

namespace flare::gateway {

struct ConsoleRequest {
  std::string_view method;
  std::string_view path;    // after /console: "", "/", "/login", "/jobs", ...
  std::string_view query;   // after '?'
  std::string_view cookie;  // the Cookie header, "" without one
  std::string body;         // a form (application/x-www-form-urlencoded)
  bool https = false;       // the client sees https: the cookie is Secure
  std::string_view client;  // its address, for the log of actions
};

class Console {
 public:
  explicit Console(const config::Config& config);

  // The largest form the console reads.
  static constexpr std::size_t kMaxBody = 64 << 10;

  // The answer to a request that has no session to find, given before its body is read: only
  // the sign-in page and the stylesheet are for anyone.
  std::optional<Reply> before_body(std::string_view path, std::string_view cookie) const;

  ApiPlan plan(const ConsoleRequest& request) const;

 private:
  struct Signed;  // a request whose session was found

  ApiPlan sign_in(const ConsoleRequest& request) const;
  // `page` runs on the pool thread with the session found; without one, the answer sends the
  // browser to the sign-in page.
  ApiPlan with_session(const ConsoleRequest& request,
                       std::function<Reply(jobs::Store&, const Signed&)> page) const;
  Reply overview(jobs::Store& store, const Signed& s) const;
  Reply jobs_page(jobs::Store& store, const Signed& s, std::string_view query) const;
  Reply job_page(jobs::Store& store, const Signed& s, const std::string& project,
                 const std::string& id) const;
  Reply retry(jobs::Store& store, const Signed& s, const std::string& project,
              const std::string& id) const;
  Reply bulk_retry(jobs::Store& store, const Signed& s, std::string_view query,
                   bool confirmed) const;
  Reply route_action(jobs::Store& store, const Signed& s, const std::string& source,
                     const std::string& route, const std::string& action) const;

  // The Set-Cookie field that makes the browser forget its session.
  std::string clear_cookie() const;

  const config::Config& config_;
  std::string base_;  // base path and /console
  struct Token {
    providers::Digest sha256;
    const config::Operator* op;
  };
  std::vector<Token> tokens_;
};

}  // namespace flare::gateway
