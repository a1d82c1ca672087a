#include "support/http.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <optional>
#include <stdexcept>

namespace flare::test {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

std::string Response::json(const std::string& member) const {
  rapidjson::Document doc;
  doc.Parse(body.c_str());
  if (doc.HasParseError() || !doc.IsObject()) return "";
  const rapidjson::Value* object = &doc;
  if (doc.HasMember("error") && doc["error"].IsObject()) object = &doc["error"];
  auto it = object->FindMember(member.c_str());
  if (it == object->MemberEnd() || !it->value.IsString()) return "";
  return it->value.GetString();
}

namespace {
std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Response convert(http::response<http::string_body>& res) {
  Response out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    out.headers[lower(std::string(field.name_string()))] = std::string(field.value());
  }
  out.body = res.body();
  return out;
}
}  // namespace

struct HttpClient::Impl {
  net::io_context ioc;
  ssl::context ctx{ssl::context::tls_client};
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  Options options;

  template <class Stream>
  Response exchange(Stream& stream, http::request<http::string_body>& req) {
    if (options.chunked) {
      req.chunked(true);
      http::request_serializer<http::string_body> sr(req);
      http::write(stream, sr);
    } else {
      http::write(stream, req);
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    http::read(stream, buffer, parser);
    return convert(parser.get());
  }
};

HttpClient::HttpClient(std::uint16_t port, Options options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), port);
  if (!options.tls) {
    impl_->plain.emplace(impl_->ioc);
    impl_->plain->connect(endpoint);
    return;
  }
  impl_->ctx.set_verify_mode(ssl::verify_none);
  if (options.tls_max_1_1) {
    SSL_CTX_set_security_level(impl_->ctx.native_handle(), 0);
    SSL_CTX_set_min_proto_version(impl_->ctx.native_handle(), TLS1_VERSION);
    SSL_CTX_set_max_proto_version(impl_->ctx.native_handle(), TLS1_1_VERSION);
  }
  impl_->tls.emplace(impl_->ioc, impl_->ctx);
  beast::get_lowest_layer(*impl_->tls).connect(endpoint);
  impl_->tls->handshake(ssl::stream_base::client);
}

HttpClient::~HttpClient() = default;

std::string HttpClient::peer_certificate_sha256() const {
  if (!impl_->tls) return "";
  X509* cert = SSL_get1_peer_certificate(impl_->tls->native_handle());
  if (cert == nullptr) return "";
  std::string out = certificate_sha256(cert);
  X509_free(cert);
  return out;
}

std::string certificate_sha256(X509* cert) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  X509_digest(cert, EVP_sha256(), digest, &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xf];
  }
  return out;
}

Response HttpClient::request(const std::string& method, const std::string& target,
                             const HeaderList& headers, const std::string& body) {
  http::request<http::string_body> req(http::string_to_verb(method), target,
                                       impl_->options.version);
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [name, value] : headers) req.set(name, value);
  req.body() = body;
  if (!body.empty() || method == "POST") req.prepare_payload();
  if (impl_->tls) return impl_->exchange(*impl_->tls, req);
  return impl_->exchange(*impl_->plain, req);
}

Response request_once(std::uint16_t port, const std::string& method, const std::string& target,
                      const HeaderList& headers, const std::string& body) {
  HttpClient client(port);
  return client.request(method, target, headers, body);
}

RawConnection::RawConnection(std::uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::runtime_error("connect failed");
  }
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

void RawConnection::send(const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) throw std::runtime_error("send failed");
    sent += static_cast<std::size_t>(n);
  }
}

Response RawConnection::read_response(int timeout_ms) {
  http::response_parser<http::string_body> parser;
  beast::error_code ec;
  for (;;) {
    // The parser takes the header and the body in separate calls.
    while (!buffered_.empty()) {
      std::size_t used = parser.put(net::buffer(buffered_), ec);
      buffered_.erase(0, used);
      if (ec && ec != http::error::need_more)
        throw std::runtime_error("bad response: " + ec.message());
      if (parser.is_done()) return convert(parser.get());
      if (used == 0) break;
    }
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) throw std::runtime_error("no response in time");
    char chunk[4096];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) throw std::runtime_error("connection closed before a response");
    buffered_.append(chunk, static_cast<std::size_t>(n));
  }
}

bool RawConnection::closed_within(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return false;
  char chunk[256];
  return ::recv(fd_, chunk, sizeof chunk, 0) <= 0;
}

std::uint16_t free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    throw std::runtime_error("no free port on 127.0.0.1");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace flare::test
