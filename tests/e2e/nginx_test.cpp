// deploy/nginx.conf in front of the gateway: Debian's nginx terminates TLS and forwards; the
// file is used as shipped, with only its addresses and certificate paths replaced.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "e2e/fixtures.hpp"

extern char** environ;

namespace flare::test {
namespace {

bool accepts(std::uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void replace(std::string& text, const std::string& from, const std::string& to) {
  std::size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << "deploy/nginx.conf no longer has: " << from;
  text.replace(at, from.size(), to);
}

// nginx in the foreground with a main configuration that includes deploy/nginx.conf.
class Nginx {
 public:
  Nginx(std::uint16_t gateway_port, const Certificate& cert) : port_(free_port()) {
    char pattern[] = "/tmp/flare-nginx-XXXXXX";
    dir_ = mkdtemp(pattern);
    // The workers may run as nobody: they need to reach the temporary paths.
    chmod(dir_.c_str(), 0777);
    std::string site = read_file(std::string(FLARE_SOURCE_DIR) + "/deploy/nginx.conf");
    replace(site, "server 127.0.0.1:8080;",
            "server 127.0.0.1:" + std::to_string(gateway_port) + ";");
    replace(site, "listen 443 ssl;", "listen 127.0.0.1:" + std::to_string(port_) + " ssl;");
    replace(site, "/etc/flare/tls.crt", cert.cert->path());
    replace(site, "/etc/flare/tls.key", cert.key->path());
    std::ofstream(dir_ + "/site.conf") << site;
    std::ofstream(dir_ + "/nginx.conf")
        << "worker_processes 1;\npid " << dir_ << "/nginx.pid;\nerror_log " << dir_
        << "/error.log;\nevents { worker_connections 256; }\nhttp {\n  access_log off;\n"
        << "  client_body_temp_path " << dir_ << "/body;\n  proxy_temp_path " << dir_
        << "/proxy;\n  fastcgi_temp_path " << dir_ << "/fastcgi;\n  uwsgi_temp_path " << dir_
        << "/uwsgi;\n  scgi_temp_path " << dir_ << "/scgi;\n  include " << dir_
        << "/site.conf;\n}\n";
    std::string conf = dir_ + "/nginx.conf";
    std::vector<std::string> args = {
        "nginx", "-c", conf, "-g", "daemon off;", "-e", dir_ + "/error.log"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, "/usr/sbin/nginx", nullptr, nullptr, argv.data(), environ) != 0) {
      throw std::runtime_error("cannot start /usr/sbin/nginx (Debian's nginx-light)");
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!accepts(port_)) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_ || std::chrono::steady_clock::now() > deadline) {
        pid_ = -1;
        throw std::runtime_error("nginx did not start: " + read_file(dir_ + "/error.log"));
      }
      usleep(20'000);  // polling a port that has no other way to announce itself
    }
  }
  ~Nginx() {
    if (pid_ > 0) {
      kill(pid_, SIGQUIT);
      waitpid(pid_, nullptr, 0);
    }
    std::system(("rm -rf " + dir_).c_str());
  }
  std::uint16_t port() const { return port_; }

 private:
  std::uint16_t port_;
  std::string dir_;
  pid_t pid_ = -1;
};

class BehindNginx : public GatewaySuite {};

TEST_F(BehindNginx, SignedWebhooksThroughTheShippedConfiguration) {
  Certificate cert = make_self_signed_certificate();
  Nginx nginx(gateway_->port(), cert);
  HttpClient client(nginx.port(), HttpClient::Options{true});

  std::string body = stripe_body("evt_nginx_1");
  Response first = client.request("POST", "/webhooks/stripe", stripe_headers(body), body);
  ASSERT_EQ(first.status, 202) << first.body;
  Response again = client.request("POST", "/webhooks/stripe", stripe_headers(body), body);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.json("job_id"), first.json("job_id"));
  Response forged =
      client.request("POST", "/webhooks/stripe", stripe_headers(body, "whsec_guessed"), body);
  EXPECT_EQ(forged.status, 401);
  EXPECT_EQ(forged.json("code"), "invalid_signature");

  std::string push = R"({"ref":"refs/heads/main","commits":[]})";
  Response github =
      client.request("POST", "/webhooks/github", github_headers(push, "d-nginx-1"), push);
  EXPECT_EQ(github.status, 202) << github.body;
  EXPECT_EQ(
      client.request("POST", "/webhooks/github", github_headers(push, "d-nginx-1"), push).status,
      200);

  // The gateway heard nginx: the client's address, https, and nginx's request id, which the
  // client gets back.
  std::string request_id = first.header("x-request-id");
  EXPECT_EQ(request_id.size(), 32u) << request_id;  // nginx's $request_id: 32 hex digits
  ASSERT_TRUE(gateway_->wait_for_output("event_id=evt_nginx_1", std::chrono::seconds(5)));
  std::string log = gateway_->output();
  std::size_t at = log.find("request_id=" + request_id);
  ASSERT_NE(at, std::string::npos) << log;
  std::string line = log.substr(at, log.find('\n', at) - at);
  EXPECT_NE(line.find("client=127.0.0.1 proto=https"), std::string::npos) << line;
  EXPECT_NE(line.find("event_id=evt_nginx_1"), std::string::npos) << line;
}

TEST_F(BehindNginx, OversizeBodiesAreRefusedByWhicheverLayerHasTheLimit) {
  Certificate cert = make_self_signed_certificate();
  Nginx nginx(gateway_->port(), cert);
  // Over the stripe source's 2048 bytes: the gateway's 413, relayed.
  std::string big = stripe_body("evt_nginx_big") + std::string(4096, ' ');
  Response gateway_limit = HttpClient(nginx.port(), HttpClient::Options{true})
                               .request("POST", "/webhooks/stripe", stripe_headers(big), big);
  EXPECT_EQ(gateway_limit.status, 413);
  EXPECT_EQ(gateway_limit.json("code"), "payload_too_large");
  // Over nginx's client_max_body_size (1 MiB): nginx's own 413, the gateway never sees it.
  std::string huge(1024 * 1024 + 1, 'x');
  Response nginx_limit = HttpClient(nginx.port(), HttpClient::Options{true})
                             .request("POST", "/webhooks/github", {}, huge);
  EXPECT_EQ(nginx_limit.status, 413);
  EXPECT_EQ(db_->scalar("SELECT count(*) FROM jobs WHERE event_id = 'evt_nginx_big'"), "0");
}

}  // namespace
}  // namespace flare::test
