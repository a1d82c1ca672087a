#include "gateway/server.hpp"

#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "gateway/api.hpp"
#include "gateway/ingest.hpp"
#include "gateway/log.hpp"
#include "gateway/metrics.hpp"
#include "gateway/reply.hpp"
#include "providers/hmac.hpp"

namespace flare::gateway {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

constexpr std::uint32_t kHeaderLimit = 16 * 1024;
constexpr std::size_t kReadBuffer = 8 * 1024;
// How long a closing connection may keep sending what we will not read, so that the client
// sees our response instead of a reset.
constexpr auto kLinger = std::chrono::seconds(2);
constexpr auto kAcceptRetry = std::chrono::milliseconds(100);

// Work handed to one event loop from other threads (the committer's, the pool's). The first
// item of a burst wakes the loop; the rest join it before it runs, so a commit that completes
// many requests of one loop costs that loop one wake-up, not one each.
class Mailbox {
 public:
  explicit Mailbox(net::io_context& loop) : loop_(loop) {}

  void post(std::function<void()> fn) {
    bool wake;
    {
      std::lock_guard lock(mutex_);
      wake = items_.empty();
      items_.push_back(std::move(fn));
    }
    if (wake) net::post(loop_, [this] { drain(); });
  }

 private:
  void drain() {
    std::vector<std::function<void()>> items;
    {
      std::lock_guard lock(mutex_);
      items.swap(items_);
    }
    for (auto& fn : items) fn();
  }

  net::io_context& loop_;
  std::mutex mutex_;
  std::vector<std::function<void()>> items_;
};

// A loop's request log lines, handed to the logging thread once a few KiB have gathered or
// soon after the first of them: a line is late by at most kLogDelay.
class RequestLog {
 public:
  explicit RequestLog(net::io_context& loop) : timer_(loop) {}

  void add(const LogFields& fields) {
    bool first = batch_.bytes() == 0;
    batch_.add(fields);
    if (batch_.bytes() >= kLogChunk) {
      batch_.flush();
      timer_.cancel();
    } else if (first) {
      timer_.expires_after(kLogDelay);
      timer_.async_wait([this](beast::error_code ec) {
        if (!ec) batch_.flush();
      });
    }
  }

  // After the loop has stopped: what is left.
  void flush() { batch_.flush(); }

 private:
  static constexpr std::size_t kLogChunk = 4 * 1024;
  static constexpr auto kLogDelay = std::chrono::milliseconds(50);
  LogBatch batch_;
  net::steady_timer timer_;
};

// What belongs to one event loop besides its connections.
struct LoopState {
  explicit LoopState(net::io_context& loop) : mailbox(loop), log(loop) {}
  Mailbox mailbox;  // the way in from other threads
  RequestLog log;
};

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Called once when the server stops; runs on the session's own loop.
  virtual void shutdown() = 0;
};

std::string random_prefix() {
  unsigned char bytes[6];
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw std::runtime_error("no random bytes");
  return providers::to_hex(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

// What every connection shares: read-only configuration, the committer, and the set of live
// sessions that a stop has to reach.
struct Shared {
  const config::Server& server;
  std::map<std::string, Source, std::less<>> sources;
  Api api;
  jobs::Committer& committer;
  jobs::Pool& pool;
  Metrics& metrics;
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> next_request{1};
  // Generated request ids are this process's random prefix and a count: unique across
  // restarts and replicas without coordination.
  const std::string request_prefix = random_prefix();

  std::mutex sessions_mutex;
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions;
  std::function<void()> on_last_session;  // set by the server when it stops

  Shared(const config::Config& config, jobs::Committer& c, jobs::Pool& p, Metrics& m)
      : server(config.server), api(config), committer(c), pool(p), metrics(m) {
    for (const config::Source& s : config.sources) {
      sources.emplace(s.name, Source{&s, providers::make_provider(s)});
    }
  }

  std::size_t live_sessions() {
    std::lock_guard lock(sessions_mutex);
    return sessions.size();
  }

  void add(SessionBase* key, std::weak_ptr<SessionBase> session) {
    std::lock_guard lock(sessions_mutex);
    sessions.emplace(key, std::move(session));
  }

  void remove(SessionBase* key) {
    std::function<void()> last;
    {
      std::lock_guard lock(sessions_mutex);
      sessions.erase(key);
      if (sessions.empty() && stopping) last = on_last_session;
    }
    if (last) last();
  }
};

using Request = http::request_parser<http::string_body>::value_type;

// Who sent a request and how, as the log and the response tell it: what a trusted proxy
// says (X-Forwarded-For, X-Forwarded-Proto, X-Request-Id), else what the connection shows.
struct Origin {
  std::string client;
  std::string_view proto;
  std::string request_id;
};

std::string_view header(const Request& req, std::string_view name) {
  auto it = req.find(name);
  return it == req.end() ? std::string_view()
                         : std::string_view(it->value().data(), it->value().size());
}

// A proxy's request id is logged and echoed: 1 to 128 of A-Z a-z 0-9 . _ : -
bool valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok =
        std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Origin origin_of(Shared& shared, const std::string& peer, bool tls, const Request* req) {
  Origin o{peer, tls ? "https" : "http",
           shared.request_prefix + "-" + std::to_string(shared.next_request++)};
  bool trusted = false;
  for (const config::Cidr& cidr : shared.server.trusted_proxies) {
    trusted = trusted || cidr.contains(o.client);
  }
  if (!trusted || req == nullptr) return o;
  // The proxy appends the address it saw last; anything before it is the client's claim.
  std::string_view list = header(*req, "X-Forwarded-For");
  std::size_t comma = list.rfind(',');
  std::string_view last = comma == std::string_view::npos ? list : list.substr(comma + 1);
  while (!last.empty() && last.front() == ' ') last.remove_prefix(1);
  beast::error_code ec;
  net::ip::address claimed = net::ip::make_address(std::string(last.substr(0, 64)), ec);
  if (!list.empty() && !ec) o.client = claimed.to_string();
  std::string_view proto = header(*req, "X-Forwarded-Proto");
  if (proto == "https" || proto == "http") o.proto = proto == "https" ? "https" : "http";
  if (std::string_view id = header(*req, "X-Request-Id"); valid_request_id(id)) {
    o.request_id = std::string(id);
  }
  return o;
}

// One connection. Derived is PlainSession or TlsSession; it supplies stream(), start() and
// close_gracefully(). Every handler runs on the one network thread that owns the connection.
template <class Derived>
class Session : public SessionBase {
 public:
  Session(Shared& shared, LoopState& loop, tcp::endpoint peer)
      : shared_(shared), loop_(loop), peer_(peer.address().to_string()) {}

  ~Session() override { shared_.remove(this); }

  void shutdown() override {
    net::post(derived().stream().get_executor(), [self = derived().shared_from_this()] {
      self->closing_ = true;
      if (self->idle_) self->close_now();
    });
  }

 protected:
  Derived& derived() { return static_cast<Derived&>(*this); }
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(derived().stream()); }

  void do_read() {
    if (closing_ || shared_.stopping) return derived().close_gracefully();
    idle_ = true;
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    // Decided per route once the header is known. Not boost::none: Beast 1.74 compares a
    // Content-Length against an empty limit as if it were exceeded.
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    source_ = nullptr;
    webhook_ = false;
    api_ = false;
    // Beast reads at most the buffer's free space, and a new buffer starts at 512 bytes: a
    // typical webhook would take seven reads to arrive. Room for one takes one.
    buffer_.reserve(kReadBuffer);
    lowest().expires_after(shared_.server.idle_timeout);
    http::async_read_header(derived().stream(), buffer_, *parser_,
                            [self = derived().shared_from_this()](
                                beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

  Shared& shared_;
  LoopState& loop_;  // of this connection's thread

 private:
  void on_header(beast::error_code ec) {
    idle_ = false;
    bool malformed = ec.category() == beast::error_code(http::error::bad_target).category() &&
                     ec != http::error::end_of_stream && ec != http::error::partial_message;
    // End of stream, timeout, reset, or stopped while idle: nobody is waiting for an answer.
    if (ec && !malformed) return close_now();
    started_ = std::chrono::steady_clock::now();
    // A header that did not parse is nobody's word about anything.
    origin_ = origin_of(shared_, peer_, Derived::kTls, ec ? nullptr : &parser_->get());
    if (ec == http::error::header_limit) return respond(error(Outcome::kHeaderTooLarge));
    if (malformed) {
      spdlog::debug("request_id={} malformed: {}", origin_.request_id, ec.message());
      return respond(error(Outcome::kBadRequest));
    }

    auto& req = parser_->get();
    target_ = std::string_view(req.target().data(), req.target().size());
    const std::string& base = shared_.server.base_path;
    if (target_.substr(0, base.size()) != base ||
        (target_.size() > base.size() && target_[base.size()] != '/')) {
      return respond(error(Outcome::kNotFound));
    }
    target_.remove_prefix(base.size());
    std::string_view path = target_.substr(0, target_.find('?'));
    constexpr std::string_view kWebhooks = "/webhooks/";

    if (path.substr(0, kWebhooks.size()) == kWebhooks) {
      webhook_ = true;
      auto found = shared_.sources.find(path.substr(kWebhooks.size()));
      if (found == shared_.sources.end()) return respond(error(Outcome::kUnknownSource));
      source_ = &found->second;
      if (req.method() != http::verb::post) return respond(not_allowed("POST"));
      return read_body(source_->config->max_body_bytes);
    }
    if (path == Api::kPrefix || path.substr(0, Api::kPrefix.size() + 1) == "/v1/jobs/") {
      api_ = true;
      return read_body(shared_.server.max_body_bytes);
    }
    if (path == "/metrics") {
      if (req.method() != http::verb::get) return respond(not_allowed("GET"));
      return scrape();
    }
    if (path == "/healthz" || path == "/readyz") {
      if (req.method() != http::verb::get) return respond(not_allowed("GET"));
      if (path == "/healthz") return respond(status(Outcome::kHealthy));
      return respond(shared_.committer.ready()
                         ? status(Outcome::kReady)
                         : error(Outcome::kUnavailable,
                                 "the database is unreachable or its schema is not current"));
    }
    respond(error(Outcome::kNotFound));
  }

  // Answers with the metrics; when the job counts are due for a refresh, after reading them on
  // the database pool (never on this thread), or after failing to.
  void scrape() {
    Metrics& m = shared_.metrics;
    if (!m.start_jobs_refresh()) return respond(metrics_reply());
    auto self = derived().shared_from_this();
    auto answer = [self] {
      self->loop_.mailbox.post([self] { self->respond(self->metrics_reply()); });
    };
    shared_.pool.submit(
        [&m, answer](jobs::Store& store) {
          m.jobs_counted(store.count_by_status());
          answer();
        },
        [&m, answer](jobs::Outcome) {
          m.jobs_count_failed();
          answer();
        });
  }

  Reply metrics_reply() {
    Reply r = success(Outcome::kOk, shared_.metrics.render());
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  }

  static Reply not_allowed(std::string_view allow) {
    Reply r = error(Outcome::kMethodNotAllowed);
    r.allow = allow;
    return r;
  }

  // The body is refused from its declared length before any of it is read, else while reading.
  void read_body(std::uint64_t limit) {
    if (parser_->content_length() && *parser_->content_length() > limit) {
      return respond(error(Outcome::kPayloadTooLarge));
    }
    parser_->body_limit(limit);
    auto& req = parser_->get();
    auto expect = req.find(http::field::expect);
    if (expect == req.end() || !beast::iequals(expect->value(), "100-continue")) {
      return read_body();
    }
    continue_.emplace(http::status::continue_, req.version());
    lowest().expires_after(shared_.server.read_timeout);
    http::async_write(derived().stream(), *continue_,
                      [self = derived().shared_from_this()](beast::error_code e, std::size_t) {
                        if (e) return self->close_now();
                        self->read_body();
                      });
  }

  void read_body() {
    lowest().expires_after(shared_.server.read_timeout);
    http::async_read(derived().stream(), buffer_, *parser_,
                     [self = derived().shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_body(ec);
                     });
  }

  void on_body(beast::error_code ec) {
    if (ec == http::error::body_limit) return respond(error(Outcome::kPayloadTooLarge));
    if (ec) return close_now();
    if (api_) return on_api();
    auto& req = parser_->get();
    providers::Headers headers;
    for (const auto& field : req) {
      headers.add(std::string_view(field.name_string().data(), field.name_string().size()),
                  std::string_view(field.value().data(), field.value().size()));
    }
    Ingest in = ingest(*source_, headers, std::move(req.body()), std::chrono::system_clock::now());
    if (in.outcome == Outcome::kChallenge) return respond(challenge(in.challenge));
    if (in.outcome != Outcome::kEnqueue) return respond(error(in.outcome, in.detail));
    event_id_ = in.job.event_id;
    shared_.committer.submit(std::move(in.job), [self = derived().shared_from_this()](
                                                    jobs::Result result) {
      self->loop_.mailbox.post([self, result = std::move(result)] { self->on_enqueued(result); });
    });
  }

  void on_api() {
    auto& req = parser_->get();
    auto auth = req.find(http::field::authorization);
    ApiPlan plan = shared_.api.plan(ApiRequest{
        std::string_view(req.method_string().data(), req.method_string().size()), target_,
        auth == req.end() ? std::nullopt
                          : std::optional<std::string_view>(
                                std::string_view(auth->value().data(), auth->value().size())),
        std::move(req.body())});
    auto self = derived().shared_from_this();
    if (plan.reply) return respond(std::move(*plan.reply));
    // Reads and changes wait for a current schema, as enqueues do in the committer.
    if (!shared_.committer.ready()) return respond(error(Outcome::kUnavailable));
    if (plan.enqueue) {
      // The reply is rendered on the connection's thread, not on the committer's.
      return shared_.committer.submit(std::move(*plan.enqueue), [self](jobs::Result result) {
        self->loop_.mailbox.post(
            [self, result = std::move(result)] { self->respond(Api::enqueued(result)); });
      });
    }
    shared_.pool.submit(
        [self, work = std::move(plan.work)](jobs::Store& store) {
          self->loop_.mailbox.post(
              [self, reply = work(store)]() mutable { self->respond(std::move(reply)); });
        },
        [self](jobs::Outcome outcome) {
          self->loop_.mailbox.post([self, outcome] {
            self->respond(error(outcome == jobs::Outcome::kUnavailable ? Outcome::kUnavailable
                                                                       : Outcome::kInternal));
          });
        });
  }

  void on_enqueued(const jobs::Result& result) {
    const std::string& key = result.job.idempotency_key;
    switch (result.outcome) {
      case jobs::Outcome::kCreated:
        return respond(status(Outcome::kAccepted,
                              {{"job_id", result.stored.job_id}, {"idempotency_key", key}}));
      case jobs::Outcome::kDuplicate:
        return respond(status(Outcome::kDuplicate,
                              {{"job_id", result.stored.job_id}, {"idempotency_key", key}}));
      case jobs::Outcome::kUnavailable:
        return respond(error(Outcome::kUnavailable));
      case jobs::Outcome::kFailed:
        return respond(error(Outcome::kInternal));
    }
  }

  void respond(Reply reply) {
    auto& req = parser_->get();
    // A body we did not read must not be taken for the next request.
    unread_body_ = !parser_->is_done();
    keep_alive_ = req.keep_alive() && !unread_body_ && !closing_ && !shared_.stopping;
    render(reply, req.version() == 10);
    record(reply);
    lowest().expires_after(shared_.server.read_timeout);
    net::async_write(derived().stream(), net::buffer(response_),
                     [self = derived().shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_write(ec);
                     });
  }

  // The response in one buffer, reused by the connection's requests: every one is a few
  // fixed fields and a JSON body, which Beast's general serializer and field list cost several
  // allocations and a tenth of a network thread's time to produce.
  void render(const Reply& reply, bool http10) {
    auto status = static_cast<http::status>(reply.status);
    auto reason = http::obsolete_reason(status);
    response_.clear();
    response_.append(http10 ? "HTTP/1.0 " : "HTTP/1.1 ")
        .append(std::to_string(reply.status))
        .append(" ")
        .append(reason.data(), reason.size())
        .append("\r\nServer: flare-gateway\r\n");
    auto field = [this](std::string_view name, std::string_view value) {
      response_.append(name).append(": ").append(value).append("\r\n");
    };
    if (!reply.body.empty()) field("Content-Type", reply.content_type);
    field("X-Request-Id", origin_.request_id);
    if (!reply.allow.empty()) field("Allow", reply.allow);
    if (reply.retry_after) field("Retry-After", std::to_string(kRetryAfterSeconds));
    if (reply.challenge) field("WWW-Authenticate", "Bearer");
    // HTTP/1.1 keeps a connection open unless told otherwise; HTTP/1.0 closes it unless told.
    if (!keep_alive_ && !http10) field("Connection", "close");
    if (keep_alive_ && http10) field("Connection", "keep-alive");
    // A 204 has no body and no length (RFC 9110, 8.6).
    if (status != http::status::no_content) {
      field("Content-Length", std::to_string(reply.body.size()));
    }
    response_.append("\r\n").append(reply.body);
  }

  void on_write(beast::error_code ec) {
    if (ec) return close_now();
    event_id_.clear();
    if (keep_alive_) return do_read();
    if (unread_body_) return lingering_close();
    derived().close_gracefully();
  }

  // Logs and counts a finished request. Never secrets, signatures or bodies: the route, the
  // outcome and the event id only.
  void record(const Reply& reply) {
    auto& req = parser_->get();
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - started_)
                      .count();
    std::string_view target(req.target().data(), req.target().size());
    std::string_view path = target.substr(0, std::min<std::size_t>(target.find('?'), 128));
    static const std::string kNoSource;
    shared_.metrics.request(webhook_ ? (source_ ? &source_->config->name : &kNoSource) : nullptr,
                            reply.outcome, std::chrono::microseconds(micros));
    std::string status = std::to_string(reply.status);
    std::string us = std::to_string(micros);
    loop_.log.add(
        {{"request_id", origin_.request_id},
         {"client", origin_.client},
         {"proto", origin_.proto},
         {"method", std::string_view(req.method_string().data(), req.method_string().size())},
         {"path", path},
         {"source", source_ ? std::string_view(source_->config->name) : "-"},
         {"outcome", reply.outcome},
         {"status", status},
         {"us", us},
         {"event_id", event_id_.empty() ? "-" : std::string_view(event_id_)}});
  }

 protected:
  // Ends a connection after its last response: half-close, then read and discard (briefly)
  // until the client closes, so that nothing it still sends turns our answer into a reset.
  void lingering_close() {
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    lowest().expires_after(kLinger);
    discard_ = std::make_unique<std::array<char, 4096>>();
    drain();
  }

  void drain() {
    lowest().async_read_some(net::buffer(*discard_), [self = derived().shared_from_this()](
                                                         beast::error_code ec, std::size_t) {
      if (ec) return self->close_now();
      self->drain();
    });
  }

  void close_now() {
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close();
  }

 private:
  const std::string peer_;  // the address the connection comes from
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  std::string response_;
  std::unique_ptr<std::array<char, 4096>> discard_;
  const Source* source_ = nullptr;
  std::chrono::steady_clock::time_point started_;
  Origin origin_;
  std::string_view target_;  // the request's target without server.base_path
  std::string event_id_;
  bool api_ = false;
  bool webhook_ = false;  // a /webhooks/ route, known source or not
  bool idle_ = true;
  bool closing_ = false;
  bool unread_body_ = false;
  bool keep_alive_ = false;  // of the response being written
};

class PlainSession : public Session<PlainSession>,
                     public std::enable_shared_from_this<PlainSession> {
 public:
  static constexpr bool kTls = false;
  PlainSession(Shared& shared, LoopState& loop, tcp::socket&& socket, tcp::endpoint peer)
      : Session(shared, loop, std::move(peer)), stream_(std::move(socket)) {}

  beast::tcp_stream& stream() { return stream_; }
  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->do_read(); });
  }
  void close_gracefully() { lingering_close(); }

 private:
  beast::tcp_stream stream_;
};

class TlsSession : public Session<TlsSession>, public std::enable_shared_from_this<TlsSession> {
 public:
  static constexpr bool kTls = true;
  TlsSession(Shared& shared, LoopState& loop, tcp::socket&& socket, tcp::endpoint peer,
             std::shared_ptr<ssl::context> ctx)
      : Session(shared, loop, std::move(peer)),
        ctx_(std::move(ctx)),
        stream_(std::move(socket), *ctx_) {}

  beast::ssl_stream<beast::tcp_stream>& stream() { return stream_; }

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      beast::get_lowest_layer(self->stream_).expires_after(self->shared_.server.read_timeout);
      self->stream_.async_handshake(ssl::stream_base::server, [self](beast::error_code ec) {
        if (ec) return self->close_now();
        self->do_read();
      });
    });
  }

  void close_gracefully() {
    beast::get_lowest_layer(stream_).expires_after(kLinger);
    stream_.async_shutdown([self = shared_from_this()](beast::error_code) { self->close_now(); });
  }

 private:
  // The certificate this connection was accepted with, kept while it lives, whatever reloads.
  std::shared_ptr<ssl::context> ctx_;
  beast::ssl_stream<beast::tcp_stream> stream_;
};

std::shared_ptr<ssl::context> make_tls_context(const config::Tls& tls) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::single_dh_use);
  if (SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION) != 1) {
    throw std::runtime_error("TLS: cannot require TLS 1.2");
  }
  beast::error_code ec;
  ctx->use_certificate_chain_file(tls.cert_file, ec);
  if (ec) throw std::runtime_error("TLS: cannot load " + tls.cert_file + ": " + ec.message());
  ctx->use_private_key_file(tls.key_file, ssl::context::pem, ec);
  if (ec) throw std::runtime_error("TLS: cannot load " + tls.key_file + ": " + ec.message());
  // A certificate renewed without its key (or the reverse) is refused, not served.
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    throw std::runtime_error("TLS: " + tls.key_file + " is not the key of " + tls.cert_file);
  }
  return ctx;
}

}  // namespace

struct Server::Impl {
  Shared shared;
  const std::optional<config::Tls> tls_files;
  std::mutex tls_mutex;
  std::shared_ptr<ssl::context> tls;  // what new connections get; replaced by reload_tls
  // One event loop per network thread, each connection on one loop for its whole life: its
  // handlers need no strand, and a loop is run by exactly one thread. Declared after `shared`:
  // destroyed first, so no session outlives what it refers to.
  std::vector<std::unique_ptr<net::io_context>> loops;
  std::vector<std::unique_ptr<LoopState>> loop_states;  // one per loop
  // Keep the loops without a listening socket running until the last connection is gone.
  std::vector<net::executor_work_guard<net::io_context::executor_type>> keep_running;
  std::size_t next_loop = 0;
  tcp::acceptor acceptor;
  net::steady_timer timer;  // accept back-off, then the drain deadline

  Impl(const config::Config& config, jobs::Committer& committer, jobs::Pool& pool, Metrics& metrics)
      : shared(config, committer, pool, metrics),
        tls_files(config.server.tls),
        loops(make_loops(config.server.threads)),
        acceptor(*loops.front()),
        timer(acceptor.get_executor()) {
    for (auto& loop : loops) {
      keep_running.push_back(net::make_work_guard(*loop));
      loop_states.push_back(std::make_unique<LoopState>(*loop));
    }
    if (tls_files) tls = make_tls_context(*tls_files);
    tcp::endpoint endpoint(net::ip::make_address(config.server.host), config.server.port);
    beast::error_code ec;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      throw std::runtime_error("cannot listen on " + config.server.host + ":" +
                               std::to_string(config.server.port) + ": " + ec.message());
    }
  }

  static std::vector<std::unique_ptr<net::io_context>> make_loops(int threads) {
    std::vector<std::unique_ptr<net::io_context>> out;
    for (int i = 0; i < threads; ++i) out.push_back(std::make_unique<net::io_context>(1));
    return out;
  }

  void accept() {
    std::size_t i = next_loop++ % loops.size();
    acceptor.async_accept(*loops[i], [this, i](beast::error_code ec, tcp::socket socket) {
      if (shared.stopping) return;
      if (ec) {
        // Out of descriptors and the like: wait a little rather than spin.
        spdlog::warn("accept failed: {}", ec.message());
        timer.expires_after(kAcceptRetry);
        return timer.async_wait([this](beast::error_code e) {
          if (!e) accept();
        });
      }
      if (shared.live_sessions() >= shared.server.max_connections) {
        // Refused at once: an overloaded gateway keeps serving the connections it has.
        beast::error_code ignored;
        socket.close(ignored);
        return accept();
      }
      beast::error_code peer_ec;
      tcp::endpoint peer = socket.remote_endpoint(peer_ec);
      // Responses are small and final: send them now rather than wait for more to coalesce.
      socket.set_option(tcp::no_delay(true), peer_ec);
      if (tls_files) {
        std::shared_ptr<ssl::context> ctx;
        {
          std::lock_guard lock(tls_mutex);
          ctx = tls;
        }
        start(std::make_shared<TlsSession>(shared, *loop_states[i], std::move(socket), peer,
                                           std::move(ctx)));
      } else {
        start(std::make_shared<PlainSession>(shared, *loop_states[i], std::move(socket), peer));
      }
      accept();
    });
  }

  template <class S>
  void start(std::shared_ptr<S> session) {
    shared.add(session.get(), session);
    session->start();
  }

  void stop() {
    std::vector<std::shared_ptr<SessionBase>> live;
    {
      std::lock_guard lock(shared.sessions_mutex);
      if (shared.stopping.exchange(true)) return;
      for (auto& [key, weak] : shared.sessions) {
        if (auto s = weak.lock()) live.push_back(std::move(s));
      }
      shared.on_last_session = [this] {
        net::post(acceptor.get_executor(), [this] {
          timer.cancel();
          keep_running.clear();
        });
      };
    }
    net::post(acceptor.get_executor(), [this, idle = live.empty()] {
      beast::error_code ignored;
      acceptor.close(ignored);
      // Logged once it is true: a connection made after this line is refused.
      spdlog::info("stopping: no longer accepting; finishing requests in flight (at most {} ms)",
                   shared.server.drain_timeout.count());
      timer.cancel();
      if (idle) return keep_running.clear();
      timer.expires_after(shared.server.drain_timeout);
      timer.async_wait([this](beast::error_code ec) {
        if (ec) return;  // the last session ended first
        spdlog::warn("stopping: requests still in flight after {} ms, closing them",
                     shared.server.drain_timeout.count());
        for (auto& loop : loops) loop->stop();
      });
    });
    for (auto& s : live) s->shutdown();
  }
};

Server::Server(const config::Config& config, jobs::Committer& committer, jobs::Pool& pool,
               Metrics& metrics)
    : impl_(std::make_unique<Impl>(config, committer, pool, metrics)) {}

Server::~Server() = default;

void Server::stop() { impl_->stop(); }

bool Server::reload_tls() {
  Impl& s = *impl_;
  if (!s.tls_files) {
    spdlog::info("SIGHUP: no TLS configured, nothing to reload");
    return false;
  }
  try {
    std::shared_ptr<ssl::context> fresh = make_tls_context(*s.tls_files);
    std::lock_guard lock(s.tls_mutex);
    s.tls = std::move(fresh);
  } catch (const std::exception& e) {
    spdlog::error("SIGHUP: {}; still serving the previous certificate", e.what());
    return false;
  }
  spdlog::info("SIGHUP: reloaded the TLS certificate and key; open connections keep theirs");
  return true;
}

void Server::run() {
  Impl& s = *impl_;
  tcp::endpoint local = s.acceptor.local_endpoint();
  std::string host = local.address().to_string();
  if (local.address().is_v6()) host = "[" + host + "]";
  spdlog::info("listening on {}://{}:{}", s.tls_files ? "https" : "http", host, local.port());
  s.accept();

  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < s.loops.size(); ++i) {
    threads.emplace_back([&loop = *s.loops[i]] { loop.run(); });
  }
  s.loops.front()->run();
  for (std::thread& t : threads) t.join();
  for (auto& state : s.loop_states) state->log.flush();
  {
    // Sessions that a forced stop left behind end with the io_context, which runs no more.
    std::lock_guard lock(s.shared.sessions_mutex);
    s.shared.on_last_session = nullptr;
  }
  spdlog::info("stopped");
}

}  // namespace flare::gateway
