#include "gateway/push.hpp"

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <charconv>
#include <map>
#include <optional>

#include "providers/standard.hpp"
#include "text/text.hpp"

namespace flare::gateway {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

// Only the status matters; a larger answer is not read to its end.
constexpr std::uint64_t kMaxResponseBody = 1 << 20;

// A kept-alive connection to one destination.
struct Connection {
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  bool open() { return (plain || tls) && lowest().socket().is_open(); }
  // Open, and nothing has come on it since its last answer: a destination that closed an idle
  // connection (or sent anything unasked on it) has made it unusable, and that is seen here,
  // before any byte of a request is written to it.
  bool idle_and_usable() {
    if (!open() || buffer.size() != 0) return false;
    // A peek that does not wait whatever the socket's mode: switching the mode for it and back
    // took three ioctl calls a delivery.
    char byte;
    ssize_t n = ::recv(lowest().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
  // Closes the socket, which makes every operation pending on it complete (with an error); the
  // streams stay, since a TLS stream's pending operation still refers to its own state.
  void cut() {
    if (plain || tls) {
      beast::error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
      lowest().close();
    }
  }
  // With nothing pending on it any more.
  void close() {
    cut();
    plain.reset();
    tls.reset();
    buffer.clear();
  }
};

std::optional<std::chrono::milliseconds> retry_after(const http::response<http::string_body>& res,
                                                     std::int64_t max_ms) {
  auto it = res.find(http::field::retry_after);
  if (it == res.end()) return std::nullopt;
  std::int64_t seconds = 0;
  std::string_view v(it->value().data(), it->value().size());
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), seconds);
  if (ec != std::errc() || end != v.data() + v.size() || seconds < 0) return std::nullopt;
  return std::chrono::milliseconds(std::min(seconds * 1000, max_ms));
}

}  // namespace

std::vector<std::pair<std::string, std::string>> push_headers(const jobs::Job& job,
                                                              const jobs::Delivery& delivery,
                                                              const config::Route& d,
                                                              std::int64_t now_unix) {
  return {
      {"Content-Type", job.content_type},
      {"User-Agent", "flare-gateway/" FLARE_VERSION},
      {"Idempotency-Key", "flare-" + job.id},
      {"Flare-Job-Id", job.id},
      {"Flare-Attempt", std::to_string(delivery.attempts)},
      {"Flare-Source", job.source.value_or("")},
      {"Flare-Route", delivery.route},
      {"Flare-Event-Id", job.event_id.value_or("")},
      {"Flare-Event-Type", job.type},
      {"webhook-id", job.id},
      {"webhook-timestamp", std::to_string(now_unix)},
      {"webhook-signature", providers::standard_signature(d.key, job.id, now_unix, job.payload)}};
}

// One attempt at a time runs on this thread's io_context; run_for bounds it by the
// route's timeout, and abandon() stops it from another thread.
struct PushClient::Impl {
  explicit Impl(const config::Config& c) : config(c) {
    ctx.set_default_verify_paths();
    ctx.set_verify_mode(ssl::verify_peer);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  }

  const config::Config& config;
  net::io_context ioc;
  ssl::context ctx{ssl::context::tls_client};
  tcp::resolver resolver{ioc};
  std::map<std::pair<std::string, std::string>, Connection> connections;  // by source and route
  std::atomic<bool> abandoned{false};

  // The attempt in flight.
  const config::Route* dest = nullptr;
  Connection* conn = nullptr;
  http::request<http::string_body> req;
  std::optional<http::response_parser<http::string_body>> parser;
  bool reused = false;
  bool expired = false;  // past the deadline: what is pending is being cancelled
  bool done = false;
  beast::error_code error;
  const char* step = "";

  void start() {
    if (conn->idle_and_usable()) {
      reused = true;
      return write();
    }
    reused = false;
    conn->close();
    resolver.async_resolve(
        dest->host, std::to_string(dest->port),
        [this](beast::error_code ec, tcp::resolver::results_type results) {
          // A lookup cannot be interrupted: one that ends after the deadline starts nothing.
          if (expired) ec = net::error::operation_aborted;
          if (ec) return finish(ec, "resolve");
          if (dest->tls) {
            conn->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc, ctx);
          } else {
            conn->plain = std::make_unique<beast::tcp_stream>(ioc);
          }
          conn->lowest().async_connect(results, [this](beast::error_code e, tcp::endpoint) {
            if (expired) e = net::error::operation_aborted;
            if (e) return finish(e, "connect");
            // The header and the body leave in separate writes: do not let Nagle hold one.
            conn->lowest().socket().set_option(tcp::no_delay(true), e);
            if (dest->tls) return handshake();
            write();
          });
        });
  }

  void handshake() {
    // SNI and the certificate's name must match the destination's host.
    SSL_set_tlsext_host_name(conn->tls->native_handle(), dest->host.c_str());
    conn->tls->set_verify_callback(ssl::host_name_verification(dest->host));
    conn->tls->async_handshake(ssl::stream_base::client, [this](beast::error_code ec) {
      if (expired) ec = net::error::operation_aborted;
      if (ec) return finish(ec, "TLS handshake");
      write();
    });
  }

  void write() {
    auto next = [this](beast::error_code ec, std::size_t) {
      // A kept-alive connection that fails while the request is being written (closed by the
      // destination since it was checked): the request, which the destination cannot have
      // acted on, goes once more on a new connection, within the same deadline.
      if (ec && reused && !expired) {
        conn->close();
        return start();
      }
      if (ec) return finish(ec, "write");
      read();
    };
    if (conn->tls) return http::async_write(*conn->tls, req, next);
    http::async_write(*conn->plain, req, next);
  }

  void read() {
    parser.emplace();
    parser->body_limit(kMaxResponseBody);
    auto next = [this](beast::error_code ec, std::size_t) {
      // Once written, a request is never sent again in this attempt: the destination may be
      // acting on it.
      if (ec && !(ec == http::error::body_limit && parser->is_header_done())) {
        return finish(ec, "read");
      }
      finish(ec, "");
    };
    if (conn->tls) return http::async_read(*conn->tls, conn->buffer, *parser, next);
    http::async_read(*conn->plain, conn->buffer, *parser, next);
  }

  void finish(beast::error_code ec, const char* where) {
    error = ec;
    step = where;
    done = true;
  }
};

PushClient::PushClient(const config::Config& config) : impl_(std::make_unique<Impl>(config)) {}

PushClient::~PushClient() = default;

void PushClient::abandon() {
  impl_->abandoned = true;
  impl_->ioc.stop();
}

jobs::Attempt PushClient::deliver(const jobs::Job& job, const jobs::Delivery& delivery) {
  using Result = jobs::Attempt::Result;
  Impl& s = *impl_;
  if (s.abandoned) return {Result::kAbandoned, {}, std::nullopt, {}, std::nullopt};
  const config::Route* route = nullptr;
  for (const config::Source& c : s.config.sources) {
    for (const config::Route& r : c.routes) {
      if (c.name == delivery.source && r.name == delivery.route) route = &r;
    }
  }
  if (route == nullptr) {
    return {Result::kFailed, "the route is not configured", std::nullopt, {}, std::nullopt};
  }
  const config::Route& d = *route;

  s.dest = &d;
  s.conn = &s.connections[{delivery.source, delivery.route}];
  s.req = {http::verb::post, d.target, 11};
  bool bracket = d.host.find(':') != std::string::npos;
  std::string host = bracket ? "[" + d.host + "]" : d.host;
  if (d.port != (d.tls ? 443 : 80)) host += ":" + std::to_string(d.port);
  s.req.set(http::field::host, host);
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  for (const auto& [name, value] : push_headers(job, delivery, d, now)) s.req.set(name, value);
  s.req.body() = job.payload;
  s.req.prepare_payload();
  s.parser.reset();
  s.done = false;
  s.expired = false;

  s.ioc.restart();
  s.start();
  s.ioc.run_for(d.timeout);
  if (!s.done) {
    // Out of time, or abandoned: cancel what is pending and let its handlers run out, starting
    // nothing new.
    s.expired = true;
    s.resolver.cancel();
    s.conn->cut();
    s.ioc.restart();
    s.ioc.run();
    s.conn->close();
    if (s.abandoned) return {Result::kAbandoned, {}, std::nullopt, {}, std::nullopt};
    return {Result::kFailed,
            "no answer within " + std::to_string(d.timeout.count()) + " ms",
            std::nullopt,
            {},
            std::nullopt};
  }
  if (s.error && s.error != http::error::body_limit) {
    s.conn->close();
    return {Result::kFailed,
            std::string(s.step) + ": " + s.error.message(),
            std::nullopt,
            {},
            std::nullopt};
  }
  const auto& res = s.parser->get();
  if (!res.keep_alive() || s.error) s.conn->close();
  int status = static_cast<int>(res.result_int());
  // Kept as text for people to read: whatever the destination sent, never anything of ours.
  std::string response = text::printable_prefix(res.body(), jobs::kMaxAttemptResponse);
  if (status >= 200 && status < 300) {
    return {Result::kSucceeded, {}, status, std::move(response), std::nullopt};
  }
  std::optional<std::chrono::milliseconds> delay;
  if (status == 429 || status == 503) delay = retry_after(res, d.retry.max_ms);
  return {Result::kFailed, "HTTP " + std::to_string(status), status, std::move(response), delay};
}

}  // namespace flare::gateway
