// A blocking HTTP/1.1 client for the end-to-end tests: one connection, plain or TLS.
#pragma once

#include <openssl/x509.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace flare::test {

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
  // The value of a top-level or "error" member of the JSON body; "" when absent.
  std::string json(const std::string& member) const;
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

class HttpClient {
 public:
  // `tls`: connect with TLS, trusting any certificate; `max_tls12`... see options below.
  struct Options {
    bool tls = false;
    bool tls_max_1_1 = false;  // offer only TLS 1.1 (to check the server refuses it)
    bool chunked = false;      // send the body with Transfer-Encoding: chunked
    int version = 11;
  };
  HttpClient(std::uint16_t port, Options options);
  explicit HttpClient(std::uint16_t port) : HttpClient(port, Options{}) {}
  ~HttpClient();

  // The SHA-256 of the certificate the server presented; "" without TLS.
  std::string peer_certificate_sha256() const;

  // Throws on connection errors.
  Response request(const std::string& method, const std::string& target,
                   const HeaderList& headers = {}, const std::string& body = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A port on 127.0.0.1 that nothing listened on a moment ago, for a server the test starts.
std::uint16_t free_port();

// The SHA-256 of a certificate's DER form, in hex.
std::string certificate_sha256(X509* cert);

// One request per connection, for the many-concurrent-requests tests.
Response request_once(std::uint16_t port, const std::string& method, const std::string& target,
                      const HeaderList& headers = {}, const std::string& body = {});

// A raw TCP connection for what a well-behaved client would not send.
class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port);
  ~RawConnection();
  void send(const std::string& bytes);
  // Reads one response; throws when the connection closes first or after `timeout_ms`.
  Response read_response(int timeout_ms = 5000);
  // True when the peer closes the connection within `timeout_ms`.
  bool closed_within(int timeout_ms);

 private:
  int fd_ = -1;
  std::string buffered_;
};

}  // namespace flare::test
