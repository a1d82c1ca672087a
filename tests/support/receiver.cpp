#include "support/receiver.hpp"

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <optional>

namespace flare::test {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct Receiver::Impl {
  Receiver* owner = nullptr;
  Handler handler;
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::thread accepting;
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<Received> received;
  std::size_t closes = 0;
  std::vector<std::shared_ptr<tcp::socket>> sockets;
  std::vector<std::thread> connections;
  bool released = false;
  bool closing = false;

  std::optional<net::ssl::context> tls;

  void serve(std::shared_ptr<tcp::socket> socket) {
    if (!tls) return exchange(*socket);
    net::ssl::stream<tcp::socket&> stream(*socket, *tls);
    beast::error_code ec;
    stream.handshake(net::ssl::stream_base::server, ec);
    if (!ec) exchange(stream);
  }

  template <class Stream>
  void exchange(Stream& socket) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      beast::error_code ec;
      http::read(socket, buffer, req, ec);
      if (ec) return;
      Received r;
      for (const auto& f : req) {
        std::string name(f.name_string());
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        r.headers[name] = std::string(f.value());
      }
      r.body = req.body();
      r.at = std::chrono::steady_clock::now();
      std::size_t index;
      {
        std::lock_guard lock(mutex);
        index = received.size();
        received.push_back(r);
        changed.notify_all();
      }
      Answer a = handler(*owner, r, index);
      http::response<http::string_body> res{static_cast<http::status>(a.status), 11};
      if (!a.retry_after.empty()) res.set(http::field::retry_after, a.retry_after);
      if (a.status != 204) res.body() = a.body.empty() ? "{}" : a.body;
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      http::write(socket, res, ec);
      if (a.close) {
        beast::get_lowest_layer(socket).close(ec);
        std::lock_guard lock(mutex);
        ++closes;
        changed.notify_all();
        return;
      }
      if (ec || !req.keep_alive()) return;
    }
  }
};

Receiver::Receiver(Handler handler, const std::string& cert_file, const std::string& key_file)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.owner = this;
  s.handler = std::move(handler);
  if (!cert_file.empty()) {
    s.tls.emplace(net::ssl::context::tls_server);
    s.tls->use_certificate_chain_file(cert_file);
    s.tls->use_private_key_file(key_file, net::ssl::context::pem);
  }
  tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), 0);
  s.acceptor.open(endpoint.protocol());
  s.acceptor.bind(endpoint);
  s.acceptor.listen();
  port_ = s.acceptor.local_endpoint().port();
  s.accepting = std::thread([&s] {
    for (;;) {
      auto socket = std::make_shared<tcp::socket>(s.ioc);
      beast::error_code ec;
      s.acceptor.accept(*socket, ec);
      std::lock_guard lock(s.mutex);
      if (ec || s.closing) return;
      s.sockets.push_back(socket);
      s.connections.emplace_back([&s, socket] { s.serve(socket); });
    }
  });
}

Receiver::~Receiver() {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.mutex);
    s.closing = true;
    s.released = true;
    s.changed.notify_all();
  }
  // A blocked accept() wakes for a connection, not for a close: make one.
  beast::error_code ignored;
  tcp::socket poke(s.ioc);
  poke.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_), ignored);
  s.accepting.join();
  s.acceptor.close(ignored);
  {
    std::lock_guard lock(s.mutex);
    for (auto& socket : s.sockets) socket->shutdown(tcp::socket::shutdown_both, ignored);
  }
  for (std::thread& t : s.connections) t.join();
}

std::vector<Received> Receiver::requests() {
  std::lock_guard lock(impl_->mutex);
  return impl_->received;
}

std::size_t Receiver::accepted() {
  std::lock_guard lock(impl_->mutex);
  return impl_->sockets.size();
}

bool Receiver::wait_for(std::size_t n, std::chrono::seconds timeout) {
  std::unique_lock lock(impl_->mutex);
  return impl_->changed.wait_for(lock, timeout, [&] { return impl_->received.size() >= n; });
}

bool Receiver::wait_for_closes(std::size_t n, std::chrono::seconds timeout) {
  std::unique_lock lock(impl_->mutex);
  return impl_->changed.wait_for(lock, timeout, [&] { return impl_->closes >= n; });
}

void Receiver::hold() {
  std::unique_lock lock(impl_->mutex);
  impl_->changed.wait(lock, [&] { return impl_->released; });
}

void Receiver::release() {
  std::lock_guard lock(impl_->mutex);
  impl_->released = true;
  impl_->changed.notify_all();
}

}  // namespace flare::test
