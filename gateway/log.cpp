#include "gateway/log.hpp"

#include <spdlog/async.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <string>

namespace flare::gateway {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};

// Starts a payload whose JSON members log_event has already written.
constexpr char kFieldsMark = '\x1f';

void json_string(std::string_view s, spdlog::memory_buf_t& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20) {
      const char esc[] = {'\\', 'u', '0', '0', kHex[u >> 4], kHex[u & 0xf]};
      out.append(esc, esc + sizeof esc);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

// {"time":"...","level":"...",<fields>} or {"time":"...","level":"...","message":"..."}.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    time_.format(msg, dest);  // {"time":"...","level":"...",
    std::string_view payload(msg.payload.data(), msg.payload.size());
    if (!payload.empty() && payload.front() == kFieldsMark) {
      payload.remove_prefix(1);
      dest.append(payload.data(), payload.data() + payload.size());
    } else {
      dest.append(std::string_view("\"message\":"));
      json_string(payload, dest);
    }
    dest.append(std::string_view("}\n"));
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }

 private:
  spdlog::pattern_formatter time_{R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l",)",
                                  spdlog::pattern_time_type::utc, ""};
};

}  // namespace

void setup_logging(LogFormat format) {
  g_format = format;
  // Network threads hand log lines to a background thread and never wait on stdout; under a
  // flood the oldest lines are dropped rather than stalling requests.
  spdlog::init_thread_pool(8192, 1);
  auto logger = std::make_shared<spdlog::async_logger>(
      "flare", std::make_shared<spdlog::sinks::stdout_sink_mt>(), spdlog::thread_pool(),
      spdlog::async_overflow_policy::overrun_oldest);
  if (format == LogFormat::kJson) {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %v", spdlog::pattern_time_type::utc);
  }
  // The stdout sink writes each line out as the logging thread takes it: no flush policy needed.
  spdlog::set_default_logger(logger);
}

void log_event(const LogFields& fields) {
  spdlog::memory_buf_t line;
  if (g_format == LogFormat::kJson) {
    line.push_back(kFieldsMark);
    for (std::size_t i = 0; i < fields.size(); ++i) {
      if (i > 0) line.push_back(',');
      json_string(fields[i].first, line);
      line.push_back(':');
      json_string(fields[i].second, line);
    }
  } else {
    for (std::size_t i = 0; i < fields.size(); ++i) {
      if (i > 0) line.push_back(' ');
      line.append(fields[i].first);
      line.push_back('=');
      line.append(fields[i].second);
    }
  }
  spdlog::info(std::string_view(line.data(), line.size()));
}

}  // namespace flare::gateway
