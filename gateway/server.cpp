#include "gateway/server.hpp"

#include <malloc.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gateway/loop.hpp"
#include "gateway/session.hpp"

namespace flare::gateway {
namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

constexpr auto kAcceptRetry = std::chrono::milliseconds(100);
// glibc keeps freed memory in its arenas, and a heap shrinks only from its top: what a burst of
// connections or bodies took stays taken unless given back, which this often it is.
constexpr auto kGiveBackMemory = std::chrono::seconds(5);

std::shared_ptr<ssl::context> make_tls_context(const config::Tls& tls) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::single_dh_use);
  if (SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION) != 1) {
    throw std::runtime_error("TLS: cannot require TLS 1.2");
  }
  error_code ec;
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

std::vector<std::unique_ptr<Loop>> make_loops(int threads) {
  std::vector<std::unique_ptr<Loop>> out;
  for (int i = 0; i < threads; ++i) out.push_back(std::make_unique<Loop>());
  return out;
}

}  // namespace

struct Server::Impl {
  Context context;
  const std::optional<config::Tls> tls_files;
  std::mutex tls_mutex;
  std::shared_ptr<ssl::context> tls;  // what new connections get; replaced by reload_tls
  // One event loop per network thread. Declared after `context`: destroyed first, so no
  // session outlives what it refers to.
  std::vector<std::unique_ptr<Loop>> loops;
  // Keep the loops without a listening socket running until the last connection is gone.
  std::vector<net::executor_work_guard<net::io_context::executor_type>> keep_running;
  std::size_t next_loop = 0;
  tcp::acceptor acceptor;
  net::steady_timer timer;  // accept back-off, then the drain deadline
  net::steady_timer trim_timer;

  Impl(const config::Config& config, jobs::Committer& committer, jobs::Pool& pool,
       jobs::Wakeups& wakeups, Metrics& metrics)
      : context(config, committer, pool, wakeups, metrics),
        tls_files(config.server.tls),
        loops(make_loops(config.server.threads)),
        acceptor(loops.front()->io),
        timer(acceptor.get_executor()),
        trim_timer(acceptor.get_executor()) {
    for (auto& loop : loops) keep_running.push_back(net::make_work_guard(loop->io));
    if (tls_files) tls = make_tls_context(*tls_files);
    tcp::endpoint endpoint(net::ip::make_address(config.server.host), config.server.port);
    error_code ec;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      throw std::runtime_error("cannot listen on " + config.server.host + ":" +
                               std::to_string(config.server.port) + ": " + ec.message());
    }
  }

  // Each connection goes to the next loop in turn.
  void accept() {
    Loop& loop = *loops[next_loop++ % loops.size()];
    acceptor.async_accept(loop.io, [this, &loop](error_code ec, tcp::socket socket) {
      if (context.connections.stopping()) return;
      if (ec) {
        // Out of descriptors and the like: wait a little rather than spin.
        spdlog::warn("accept failed: {}", ec.message());
        timer.expires_after(kAcceptRetry);
        return timer.async_wait([this](error_code e) {
          if (!e) accept();
        });
      }
      if (context.connections.size() >= context.server.max_connections) {
        // Refused at once: an overloaded gateway keeps serving the connections it has.
        error_code ignored;
        socket.close(ignored);
        return accept();
      }
      std::shared_ptr<ssl::context> ctx;
      if (tls_files) {
        std::lock_guard lock(tls_mutex);
        ctx = tls;
      }
      start_session(context, loop, std::move(socket), std::move(ctx));
      accept();
    });
  }

  // Returns the free pages of the heap to the system, every kGiveBackMemory until stopped.
  void give_back_memory() {
    trim_timer.expires_after(kGiveBackMemory);
    trim_timer.async_wait([this](error_code ec) {
      // A wait that had completed when a stop cancelled it is not renewed either.
      if (ec || context.connections.stopping()) return;
      malloc_trim(0);
      give_back_memory();
    });
  }

  void stop() {
    auto live = context.connections.stop([this] {
      net::post(acceptor.get_executor(), [this] {
        timer.cancel();
        keep_running.clear();
      });
    });
    if (!live) return;
    net::post(acceptor.get_executor(), [this] {
      error_code ignored;
      acceptor.close(ignored);
      trim_timer.cancel();
      // Logged once it is true: a connection made after this line is refused.
      spdlog::info("stopping: no longer accepting; finishing requests in flight (at most {} ms)",
                   context.server.drain_timeout.count());
      timer.cancel();
      // Counted here, not when stop() was called: the last session may have ended in between.
      if (context.connections.size() == 0) return keep_running.clear();
      timer.expires_after(context.server.drain_timeout);
      timer.async_wait([this](error_code ec) {
        if (ec) return;  // the last session ended first
        spdlog::warn("stopping: requests still in flight after {} ms, closing them",
                     context.server.drain_timeout.count());
        for (auto& loop : loops) loop->io.stop();
      });
    });
    for (auto& c : *live) c->shutdown();
  }
};

Server::Server(const config::Config& config, jobs::Committer& committer, jobs::Pool& pool,
               jobs::Wakeups& wakeups, Metrics& metrics)
    : impl_(std::make_unique<Impl>(config, committer, pool, wakeups, metrics)) {}

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
  s.give_back_memory();

  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < s.loops.size(); ++i) {
    threads.emplace_back([&loop = *s.loops[i]] { loop.io.run(); });
  }
  s.loops.front()->io.run();
  for (std::thread& t : threads) t.join();
  for (auto& loop : s.loops) loop->log.flush();
  // Sessions that a forced stop left behind end with the io_context, which runs no more.
  s.context.connections.forget_on_last();
  spdlog::info("stopped");
}

}  // namespace flare::gateway
