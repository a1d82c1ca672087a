#include "gateway/session.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <limits>
#include <optional>
#include <string>

#include "gateway/dispatch.hpp"
#include "gateway/reply.hpp"
#include "text/text.hpp"

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

// The bytes of request bodies a connection holds, counted against what all bodies may hold
// together (server.body_memory_bytes) from their arrival until the request is answered, so that
// the committer's queue is held to the same bound as bodies still arriving.
class BodyShare {
 public:
  explicit BodyShare(BodyBudget& budget) : budget_(budget) {}
  ~BodyShare() { give_back(); }
  BodyShare(const BodyShare&) = delete;
  BodyShare& operator=(const BodyShare&) = delete;
  bool take(std::size_t bytes) {
    if (!budget_.take(bytes)) return false;
    held_ += bytes;
    return true;
  }
  void give_back() {
    budget_.give(held_);
    held_ = 0;
  }

 private:
  BodyBudget& budget_;
  std::size_t held_ = 0;
};

// A request body in one string, counted as it arrives: a slow sender's half-sent body counts
// what it sent, and one that would take more than is left is refused while it is read.
struct CountedBody {
  struct value_type {
    std::string bytes;
    BodyShare* share = nullptr;  // set before the body is read
  };

  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(http::header<isRequest, Fields>&, value_type& body) : body_(body) {}

    void init(const boost::optional<std::uint64_t>& length, beast::error_code& ec) {
      // Room for a typical body at once; a larger one grows as it comes, so that what a
      // connection declares is not what it holds.
      if (length) body_.bytes.reserve(std::min<std::size_t>(*length, kReadBuffer * 8));
      ec = {};
    }

    template <class Buffers>
    std::size_t put(const Buffers& buffers, beast::error_code& ec) {
      std::size_t n = net::buffer_size(buffers);
      if (!body_.share->take(n)) {
        ec = http::error::buffer_overflow;
        return 0;
      }
      std::size_t at = body_.bytes.size();
      body_.bytes.resize(at + n);
      net::buffer_copy(net::buffer(body_.bytes.data() + at, n), buffers);
      ec = {};
      return n;
    }

    void finish(beast::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

// Slow or stalled senders are logged, at most one line every 10 s for the whole process, so that
// a flood of them is not a flood of lines; each line says how many went unlogged before it.
// They are all counted (flare_timeouts_total).
class TimeoutLog {
 public:
  void add(Timeout timeout, std::string_view client) {
    std::int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
    std::int64_t due = next_.load(std::memory_order_relaxed);
    if (now < due || !next_.compare_exchange_strong(due, now + kEvery.count())) {
      skipped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    spdlog::info("timeout reason={} client={} unlogged_before={}", timeout_name(timeout), client,
                 skipped_.exchange(0));
  }

 private:
  static constexpr std::chrono::steady_clock::duration kEvery = std::chrono::seconds(10);
  std::atomic<std::int64_t> next_{0};  // steady_clock ticks
  std::atomic<std::uint64_t> skipped_{0};
};

TimeoutLog& timeout_log() {
  static TimeoutLog log;
  return log;
}

// One connection. Derived is PlainSession or TlsSession; it supplies stream(), start() and
// close_gracefully(). Every handler runs on the one network thread that owns the connection.
template <class Derived>
class Session : public Connection {
 public:
  Session(Context& context, Loop& loop, tcp::endpoint peer)
      : context_(context),
        loop_(loop),
        peer_(peer.address().to_string()),
        body_share_(context.bodies) {}

  ~Session() override { context_.connections.remove(this); }

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
    if (closing_ || context_.connections.stopping()) return derived().close_gracefully();
    idle_ = true;
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    // Decided per request once the header is known. Not boost::none: Beast 1.74 compares a
    // Content-Length against an empty limit as if it were exceeded.
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    headers_.clear();
    dispatch_ = Dispatch{};
    project_ = nullptr;
    // Beast reads at most the buffer's free space, and a new buffer starts at 512 bytes: a
    // typical webhook would take several reads to arrive. Room for one takes one. But a
    // connection that has sent nothing yet gets no room reserved until it does: thousands of
    // idle connections must not hold 8 KiB each.
    beast::error_code ignored;
    if (buffer_.capacity() > 0 || lowest().socket().available(ignored) > 0) {
      buffer_.reserve(kReadBuffer);
    }
    lowest().expires_after(context_.server.idle_timeout);
    http::async_read_header(derived().stream(), buffer_, *parser_,
                            [self = derived().shared_from_this()](
                                beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

  Context& context_;
  Loop& loop_;  // of this connection's thread

 private:
  // Everything is decided here, from the header alone: the handler, the API key, the body's
  // limit. Whatever is answered now is answered before any byte of the body is read.
  void on_header(beast::error_code ec) {
    idle_ = false;
    bool malformed = ec.category() == beast::error_code(http::error::bad_target).category() &&
                     ec != http::error::end_of_stream && ec != http::error::partial_message;
    // End of stream, timeout, reset, or stopped while idle: nobody is waiting for an answer.
    if (ec && !malformed) {
      if (ec == beast::error::timeout) {
        timed_out(parser_->got_some() ? Timeout::kHeader : Timeout::kIdle);
      }
      return close_now();
    }
    started_ = std::chrono::steady_clock::now();
    auto& req = parser_->get();
    if (!ec) {
      for (const auto& field : req) headers_.add(field.name_string(), field.value());
    }
    // A header that did not parse is nobody's word about anything.
    origin_ = origin_of(context_.server.trusted_proxies, peer_, Derived::kTls,
                        context_.request_ids.next(), ec ? nullptr : &headers_);
    if (ec == http::error::header_limit) return respond(error(Outcome::kHeaderTooLarge));
    if (malformed) {
      spdlog::debug("request_id={} malformed: {}", origin_.request_id, ec.message());
      return respond(error(Outcome::kBadRequest));
    }

    dispatch_ = dispatch(req.method_string(), req.target(), context_.server.base_path,
                         context_.sources, context_.console_enabled);
    switch (dispatch_.kind) {
      case Dispatch::Kind::kReply:
        return respond(std::move(dispatch_.reply));
      case Dispatch::Kind::kWebhook:
        return read_body(dispatch_.source->config->max_body_bytes);
      case Dispatch::Kind::kApi:
      case Dispatch::Kind::kApiReply:
        project_ = context_.api.authenticate(headers_.get("Authorization"));
        if (project_ == nullptr) return respond(error(Outcome::kUnauthorized));
        // An authenticated client's body is read even for a path it got wrong, so that its
        // connection stays open.
        return read_body(context_.server.max_body_bytes);
      case Dispatch::Kind::kConsole:
        // Without a session nothing but the sign-in page is read, a body least of all.
        if (auto early = context_.console.before_body(dispatch_.console_path,
                                                      headers_.get("Cookie").value_or(""))) {
          return respond(std::move(*early));
        }
        return read_body(Console::kMaxBody);
      case Dispatch::Kind::kMetrics:
        return scrape();
      case Dispatch::Kind::kHealth:
        return respond(status(Outcome::kHealthy));
      case Dispatch::Kind::kReady:
        return respond(context_.committer.ready()
                           ? status(Outcome::kReady)
                           : error(Outcome::kUnavailable,
                                   "the database is unreachable or its schema is not current"));
    }
  }

  // Answers with the metrics; when the readings from the database are due for a refresh, after
  // reading them on the database pool (never on this thread), or after failing to.
  void scrape() {
    Metrics& m = context_.metrics;
    if (!m.start_readings_refresh()) return respond(metrics_reply());
    auto self = derived().shared_from_this();
    auto answer = [self] {
      self->loop_.mailbox.post([self] { self->respond(self->metrics_reply()); });
    };
    std::vector<jobs::RouteId> routes;
    for (const auto& [name, source] : context_.sources) {
      for (const config::Route& r : source.config->routes) routes.push_back({name, r.name});
    }
    context_.pool.submit(
        [&m, answer, routes = std::move(routes),
         &projects = context_.projects](jobs::Store& store) {
          m.readings_taken(store.queue_health(projects), store.route_states(routes));
          answer();
        },
        [&m, answer](jobs::Outcome) {
          m.readings_failed();
          answer();
        });
  }

  Reply metrics_reply() {
    Reply r = success(Outcome::kOk, context_.metrics.render(context_.wakeups.waiting()));
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  }

  // The body is refused from its declared length before any of it is read, else while reading.
  void read_body(std::uint64_t limit) {
    if (parser_->content_length() && *parser_->content_length() > limit) {
      return respond(error(Outcome::kPayloadTooLarge));
    }
    parser_->get().body().share = &body_share_;
    parser_->body_limit(limit);
    // An HTTP/1.0 client's expectation is ignored (RFC 9110, 10.1.1).
    if (parser_->get().version() < 11 ||
        !text::iequals(headers_.get("Expect").value_or(""), "100-continue")) {
      return read_body();
    }
    lowest().expires_after(context_.server.read_timeout);
    net::async_write(derived().stream(), net::buffer(kContinue.data(), kContinue.size()),
                     [self = derived().shared_from_this()](beast::error_code e, std::size_t) {
                       if (e) return self->closed_by(e, Timeout::kWrite);
                       self->read_body();
                     });
  }

  void read_body() {
    lowest().expires_after(context_.server.read_timeout);
    http::async_read(derived().stream(), buffer_, *parser_,
                     [self = derived().shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_body(ec);
                     });
  }

  void on_body(beast::error_code ec) {
    if (ec == http::error::body_limit) return respond(error(Outcome::kPayloadTooLarge));
    if (ec == http::error::buffer_overflow) {
      return respond(
          error(Outcome::kUnavailable, "too many request bodies are held at once; retry later"));
    }
    if (ec) return closed_by(ec, Timeout::kBody);
    if (dispatch_.kind == Dispatch::Kind::kApiReply) return respond(std::move(dispatch_.reply));
    if (dispatch_.kind == Dispatch::Kind::kApi) return on_api();
    if (dispatch_.kind == Dispatch::Kind::kConsole) return on_console();
    Ingest in = ingest(*dispatch_.source, headers_, std::move(parser_->get().body().bytes),
                       std::chrono::system_clock::now());
    if (in.outcome == Outcome::kChallenge) return respond(challenge(in.challenge));
    if (in.outcome != Outcome::kEnqueue) return respond(error(in.outcome, in.detail));
    event_id_ = in.job.event_id;
    context_.committer.submit(
        std::move(in.job), [self = derived().shared_from_this()](jobs::Result result) {
          self->loop_.mailbox.post(
              [self, result = std::move(result)] { self->respond(webhook_reply(result)); });
        });
  }

  void on_api() {
    run(context_.api.plan(*project_, dispatch_.api, std::move(parser_->get().body().bytes)));
  }

  void on_console() {
    auto& req = parser_->get();
    ConsoleRequest request{req.method_string(),
                           dispatch_.console_path,
                           dispatch_.query,
                           headers_.get("Cookie").value_or(""),
                           std::move(req.body().bytes),
                           origin_.proto == "https",
                           origin_.client};
    run(context_.console.plan(request));
  }

  void run(ApiPlan plan) {
    auto self = derived().shared_from_this();
    if (plan.reply) return respond(std::move(*plan.reply));
    // Reads and changes wait for a current schema, as enqueues do in the committer.
    if (!context_.committer.ready()) return respond(error(Outcome::kUnavailable));
    if (plan.enqueue) {
      // The reply is rendered on the connection's thread, not on the committer's.
      return context_.committer.submit(std::move(*plan.enqueue), [self](jobs::Result result) {
        self->loop_.mailbox.post(
            [self, result = std::move(result)] { self->respond(Api::enqueued(result)); });
      });
    }
    if (plan.poll) {
      poll_ = std::move(plan.poll);
      no_jobs_ = std::move(plan.no_jobs);
      poll_until_ = std::chrono::steady_clock::now() + plan.wait;
      return poll();
    }
    context_.pool.submit(
        [self, work = std::move(plan.work)](jobs::Store& store) {
          self->loop_.mailbox.post(
              [self, reply = work(store)]() mutable { self->respond(std::move(reply)); });
        },
        [self](jobs::Outcome failure) {
          self->loop_.mailbox.post([self, failure] { self->respond(store_failure(failure)); });
        });
  }

  // A claim, once now and then at each wake-up until it finds jobs or its wait is over.
  void poll() {
    auto self = derived().shared_from_this();
    std::uint64_t seen = context_.wakeups.count();
    context_.pool.submit(
        [self, seen](jobs::Store& store) {
          self->loop_.mailbox.post([self, seen, reply = self->poll_(store)]() mutable {
            self->polled(std::move(reply), seen);
          });
        },
        [self](jobs::Outcome failure) {
          self->loop_.mailbox.post([self, failure] { self->respond(store_failure(failure)); });
        });
  }

  void polled(std::optional<Reply> reply, std::uint64_t seen) {
    if (reply) return respond(std::move(*reply));
    if (std::chrono::steady_clock::now() >= poll_until_ || context_.connections.stopping()) {
      return respond(std::move(no_jobs_));
    }
    auto self = derived().shared_from_this();
    if (!context_.wakeups.next(seen,
                               [self] { self->loop_.mailbox.post([self] { self->poll(); }); })) {
      respond(std::move(no_jobs_));
    }
  }

  void respond(Reply reply) {
    body_share_.give_back();
    auto& req = parser_->get();
    // A body we did not read must not be taken for the next request.
    unread_body_ = !parser_->is_done();
    keep_alive_ =
        req.keep_alive() && !unread_body_ && !closing_ && !context_.connections.stopping();
    render(reply, Framing{req.version() == 10, keep_alive_, origin_.request_id}, response_);
    record(reply);
    lowest().expires_after(context_.server.read_timeout);
    net::async_write(derived().stream(), net::buffer(response_),
                     [self = derived().shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_write(ec);
                     });
  }

  void on_write(beast::error_code ec) {
    if (ec) return closed_by(ec, Timeout::kWrite);
    event_id_.clear();
    if (keep_alive_) return do_read();
    if (unread_body_) return lingering_close();
    derived().close_gracefully();
  }

  // Logs and counts a finished request. Never secrets, signatures or bodies: the path, the
  // outcome and the event id only.
  void record(const Reply& reply) {
    auto& req = parser_->get();
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - started_)
                      .count();
    std::string_view target = req.target();
    std::string_view path = target.substr(0, std::min<std::size_t>(target.find('?'), 128));
    static const std::string kNoSource;
    const std::string* source = dispatch_.source ? &dispatch_.source->config->name : &kNoSource;
    std::string_view outcome = outcome_name(reply.outcome);
    context_.metrics.request(dispatch_.webhook_path ? source : nullptr, outcome,
                             std::chrono::microseconds(micros));
    std::string status = std::to_string(http_status(reply.outcome));
    std::string us = std::to_string(micros);
    loop_.log.add({{"request_id", origin_.request_id},
                   {"client", origin_.client},
                   {"proto", origin_.proto},
                   {"method", req.method_string()},
                   {"path", path},
                   {"source", dispatch_.source ? std::string_view(*source) : "-"},
                   {"outcome", outcome},
                   {"status", status},
                   {"us", us},
                   {"event_id", event_id_.empty() ? "-" : std::string_view(event_id_)}});
  }

 protected:
  // Counts (and logs, at a rate) a connection closed on a timer. Once a header is read, the
  // client is the one a trusted proxy names.
  void timed_out(Timeout timeout) {
    context_.metrics.timed_out(timeout);
    bool read_a_header = timeout == Timeout::kBody || timeout == Timeout::kWrite;
    if (timeout != Timeout::kIdle) {
      timeout_log().add(timeout, read_a_header ? origin_.client : peer_);
    }
  }

  // An operation failed: the connection ends; `timeout` is what was late if it ran out of time.
  void closed_by(beast::error_code ec, Timeout timeout) {
    if (ec == beast::error::timeout) timed_out(timeout);
    close_now();
  }

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
  std::optional<http::request_parser<CountedBody>> parser_;
  providers::Headers headers_;  // views into the parser's fields
  std::string response_;
  std::unique_ptr<std::array<char, 4096>> discard_;
  Dispatch dispatch_;
  // A long-polling claim's: what it runs, what it answers when its wait is over, and when that is.
  std::function<std::optional<Reply>(jobs::Store&)> poll_;
  Reply no_jobs_;
  std::chrono::steady_clock::time_point poll_until_;
  const config::Project* project_ = nullptr;  // the API key's
  BodyShare body_share_;  // the request's body, from its arrival until it is answered
  std::chrono::steady_clock::time_point started_;
  Origin origin_;
  std::string event_id_;
  bool idle_ = true;
  bool closing_ = false;
  bool unread_body_ = false;
  bool keep_alive_ = false;  // of the response being written
};

class PlainSession : public Session<PlainSession>,
                     public std::enable_shared_from_this<PlainSession> {
 public:
  static constexpr bool kTls = false;
  PlainSession(Context& context, Loop& loop, tcp::socket&& socket, tcp::endpoint peer)
      : Session(context, loop, std::move(peer)), stream_(std::move(socket)) {}

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
  TlsSession(Context& context, Loop& loop, tcp::socket&& socket, tcp::endpoint peer,
             std::shared_ptr<ssl::context> ctx)
      : Session(context, loop, std::move(peer)),
        ctx_(std::move(ctx)),
        stream_(std::move(socket), *ctx_) {}

  beast::ssl_stream<beast::tcp_stream>& stream() { return stream_; }

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      beast::get_lowest_layer(self->stream_).expires_after(self->context_.server.read_timeout);
      self->stream_.async_handshake(ssl::stream_base::server, [self](beast::error_code ec) {
        if (ec) return self->closed_by(ec, Timeout::kHandshake);
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

template <class S>
void start(Context& context, std::shared_ptr<S> session) {
  context.connections.add(session.get(), session);
  session->start();
}

}  // namespace

bool BodyBudget::take(std::size_t bytes) {
  std::size_t held = held_.load(std::memory_order_relaxed);
  do {
    if (bytes > limit_ - std::min(held, limit_)) return false;
  } while (!held_.compare_exchange_weak(held, held + bytes, std::memory_order_relaxed));
  return true;
}

std::size_t Connections::size() {
  std::lock_guard lock(mutex_);
  return open_.size();
}

void Connections::add(Connection* key, std::weak_ptr<Connection> connection) {
  std::lock_guard lock(mutex_);
  open_.emplace(key, std::move(connection));
}

void Connections::remove(Connection* key) {
  std::function<void()> last;
  {
    std::lock_guard lock(mutex_);
    open_.erase(key);
    if (open_.empty() && stopping_) last = on_last_;
  }
  if (last) last();
}

std::optional<std::vector<std::shared_ptr<Connection>>> Connections::stop(
    std::function<void()> on_last) {
  std::lock_guard lock(mutex_);
  if (stopping_.exchange(true)) return std::nullopt;
  std::vector<std::shared_ptr<Connection>> live;
  for (auto& [key, weak] : open_) {
    if (auto c = weak.lock()) live.push_back(std::move(c));
  }
  on_last_ = std::move(on_last);
  return live;
}

void Connections::forget_on_last() {
  std::lock_guard lock(mutex_);
  on_last_ = nullptr;
}

void start_session(Context& context, Loop& loop, tcp::socket socket,
                   std::shared_ptr<ssl::context> tls) {
  beast::error_code ec;
  tcp::endpoint peer = socket.remote_endpoint(ec);
  // Responses are small and final: send them now rather than wait for more to coalesce.
  socket.set_option(tcp::no_delay(true), ec);
  if (tls) {
    start(context,
          std::make_shared<TlsSession>(context, loop, std::move(socket), peer, std::move(tls)));
  } else {
    start(context, std::make_shared<PlainSession>(context, loop, std::move(socket), peer));
  }
}

}  // namespace flare::gateway
