#include "support/browser.hpp"

#include <fcntl.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "text/text.hpp"

namespace flare::test {
namespace {

constexpr const char* kDriver = "/usr/bin/chromedriver";
constexpr const char* kChromium = "/usr/bin/chromium";
constexpr const char* kElement = "element-6066-11e4-a52e-4f735466cecf";

// A JSON object of string members.
std::string object(std::initializer_list<std::pair<const char*, std::string>> members) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  for (const auto& [name, value] : members) {
    w.Key(name);
    w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
  }
  w.EndObject();
  return buffer.GetString();
}

rapidjson::Document parse(const std::string& body) {
  rapidjson::Document doc;
  doc.Parse(body.c_str());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("value")) {
    throw std::runtime_error("chromedriver answered no JSON value: " + body.substr(0, 200));
  }
  return doc;
}

std::string json_of(const rapidjson::Value& v) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  v.Accept(w);
  return buffer.GetString();
}

}  // namespace

Browser::Browser() {
  if (access(kDriver, X_OK) != 0 || access(kChromium, X_OK) != 0) {
    throw std::runtime_error(
        "the browser tests need Debian's chromium and chromium-driver (scripts/test installs "
        "them)");
  }
  port_ = free_port();
  // Made before the fork: the child of a threaded process may not allocate.
  std::string port = "--port=" + std::to_string(port_);
  driver_ = fork();
  if (driver_ == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    execl(kDriver, kDriver, port.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // The destructor does not run for a constructor that throws: the driver goes here then.
  auto give_up = [this](const std::string& why) {
    kill(driver_, SIGTERM);
    waitpid(driver_, nullptr, 0);
    throw std::runtime_error(why);
  };
  // Ready when it answers its status: it listens within a second or two.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    try {
      if (parse(call("GET", "/status").body)["value"]["ready"].GetBool()) break;
    } catch (const std::exception&) {
      if (std::chrono::steady_clock::now() > until) give_up("chromedriver did not start");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // As root Chromium runs only without its sandbox; containers have a small /dev/shm.
  try {
    Response r = call("POST", "/session",
                      R"({"capabilities":{"alwaysMatch":{"browserName":"chrome",
        "goog:chromeOptions":{"binary":")" +
                          std::string(kChromium) +
                          R"(","args":["--headless=new","--no-sandbox",
        "--disable-dev-shm-usage","--disable-gpu","--window-size=1280,900"]}}}})");
    rapidjson::Document doc = parse(r.body);
    if (r.status != 200 || !doc["value"].HasMember("sessionId")) {
      throw std::runtime_error("chromium did not start: " + r.body.substr(0, 300));
    }
    session_ = doc["value"]["sessionId"].GetString();
  } catch (const std::runtime_error& e) {
    give_up(e.what());
  }
}

Browser::~Browser() {
  try {
    if (!session_.empty()) call("DELETE", "/session/" + session_);
  } catch (const std::exception&) {
  }
  if (driver_ > 0) {
    kill(driver_, SIGTERM);
    waitpid(driver_, nullptr, 0);
  }
}

Response Browser::call(const std::string& method, const std::string& path,
                       const std::string& body) {
  HttpClient client(port_);
  HeaderList headers;
  if (method == "POST") headers.emplace_back("Content-Type", "application/json");
  Response r =
      client.request(method, path, headers, method == "POST" && body.empty() ? "{}" : body);
  if (r.status != 200 && path != "/session") {
    throw std::runtime_error("WebDriver " + method + " " + path + ": " + r.body.substr(0, 400));
  }
  return r;
}

void Browser::go(const std::string& url) {
  call("POST", "/session/" + session_ + "/url", object({{"url", url}}));
}

std::string Browser::url() {
  return parse(call("GET", "/session/" + session_ + "/url").body)["value"].GetString();
}

std::string Browser::element(const std::string& css) {
  rapidjson::Document doc = parse(call("POST", "/session/" + session_ + "/element",
                                       object({{"using", "css selector"}, {"value", css}}))
                                      .body);
  return doc["value"][kElement].GetString();
}

std::size_t Browser::count(const std::string& css) {
  return parse(call("POST", "/session/" + session_ + "/elements",
                    object({{"using", "css selector"}, {"value", css}}))
                   .body)["value"]
      .Size();
}

std::string Browser::text(const std::string& css) {
  return parse(call("GET", "/session/" + session_ + "/element/" + element(css) + "/text")
                   .body)["value"]
      .GetString();
}

void Browser::click(const std::string& css) {
  call("POST", "/session/" + session_ + "/element/" + element(css) + "/click");
}

void Browser::type(const std::string& css, const std::string& text) {
  call("POST", "/session/" + session_ + "/element/" + element(css) + "/value",
       object({{"text", text}}));
}

std::string Browser::run(const std::string& script) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("script");
  w.String(script.c_str(), static_cast<rapidjson::SizeType>(script.size()));
  w.Key("args");
  w.StartArray();
  w.EndArray();
  w.EndObject();
  return json_of(parse(
      call("POST", "/session/" + session_ + "/execute/sync", buffer.GetString()).body)["value"]);
}

void Browser::screenshot(const std::string& path) {
  std::string png = *text::decode_base64(
      parse(call("GET", "/session/" + session_ + "/screenshot").body)["value"].GetString());
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out << png;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string Browser::cookie(const std::string& name) {
  rapidjson::Document doc = parse(call("GET", "/session/" + session_ + "/cookie").body);
  for (const auto& c : doc["value"].GetArray()) {
    if (c["name"].GetString() == name) return c["value"].GetString();
  }
  return "";
}

bool Browser::wait_for(const std::string& css, std::chrono::seconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (count(css) == 0) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

bool Browser::reload_until(const std::string& css, const std::string& text,
                           std::chrono::seconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (count(css) > 0 && this->text(css).find(text) != std::string::npos) return true;
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    call("POST", "/session/" + session_ + "/refresh");
  }
}

}  // namespace flare::test
