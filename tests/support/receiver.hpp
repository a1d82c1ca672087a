// A destination for push tests: an HTTP server on 127.0.0.1 that records every request and
// answers as the test tells it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace flare::test {

struct Received {
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::chrono::steady_clock::time_point at;
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
};

struct Answer {
  // A constructor rather than an aggregate: a test names only what it needs.
  Answer(int status_code = 200, std::string retry_after_header = "", bool close_after = false,
         std::string answer_body = "")
      : status(status_code),
        retry_after(std::move(retry_after_header)),
        close(close_after),
        body(std::move(answer_body)) {}
  int status;
  std::string retry_after;  // sent when not empty
  // Close the connection after answering, without saying so first: as a server does with an
  // idle kept-alive connection.
  bool close;
  std::string body;  // empty: "{}" (nothing for 204)
};

class Receiver {
 public:
  // Called for the index-th request (0-based); may block, e.g. on hold().
  using Handler = std::function<Answer(Receiver& self, const Received&, std::size_t index)>;

  // With `cert_file` and `key_file` (PEM), it speaks HTTPS.
  explicit Receiver(Handler handler, const std::string& cert_file = "",
                    const std::string& key_file = "");
  ~Receiver();

  std::uint16_t port() const { return port_; }
  std::vector<Received> requests();
  std::size_t accepted();  // connections accepted so far
  // Waits until `n` requests have arrived; false on timeout.
  bool wait_for(std::size_t n, std::chrono::seconds timeout);
  // Waits until the receiver has closed `n` connections after answering (Answer::close).
  bool wait_for_closes(std::size_t n, std::chrono::seconds timeout);

  // For handlers: blocks until release() (or the receiver's end).
  void hold();
  void release();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::uint16_t port_ = 0;
};

}  // namespace flare::test
