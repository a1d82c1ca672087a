#include "gateway/log.hpp"

#include <fcntl.h>
#include <spdlog/async.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>

#include "text/text.hpp"

namespace flare::gateway {
namespace {

LogFormat g_format = LogFormat::kText;
// Takes LogBatch's lines as they are: each already has its time, level and end of line.
std::shared_ptr<spdlog::logger> g_lines;
constexpr const char* kLinesLogger = "flare.lines";

// Standard output, shared by both loggers on the logging thread: LogBatch's lines as they are,
// every other message through the formatter. When stdout is a file, the kernel is told to start
// writing each 256 KiB out as soon as it is written, as PostgreSQL's *_flush_after settings do
// for its own files: left to the kernel, 30 seconds of log lines (over 100 MB at 20,000
// requests a second) were written back in one burst, behind which the database's commits
// waited on a shared disk (bench/README.md, note 49).
class StdoutSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  StdoutSink() {
    struct stat st {};
    to_file_ = fstat(fileno(stdout), &st) == 0 && S_ISREG(st.st_mode);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (msg.logger_name == kLinesLogger) {
      write(msg.payload.data(), msg.payload.size());
      return;
    }
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    write(line.data(), line.size());
  }
  void flush_() override { std::fflush(stdout); }

 private:
  static constexpr off_t kWritebackBytes = 256 << 10;

  void write(const char* data, std::size_t size) {
    std::fwrite(data, 1, size, stdout);
    std::fflush(stdout);
    if (!to_file_) return;
    unwritten_ += static_cast<off_t>(size);
    if (unwritten_ < kWritebackBytes) return;
    off_t end = lseek(fileno(stdout), 0, SEEK_CUR);
    if (end >= unwritten_) {
      sync_file_range(fileno(stdout), end - unwritten_, unwritten_, SYNC_FILE_RANGE_WRITE);
    }
    unwritten_ = 0;
  }

  bool to_file_ = false;
  off_t unwritten_ = 0;  // bytes written since the last writeback began
};

// Out: std::string or spdlog::memory_buf_t.
template <class Out>
void json_string(std::string_view s, Out& out) {
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

// spdlog's "%Y-%m-%dT%H:%M:%S.%fZ" in UTC, the seconds formatted once per second per thread.
void append_time(std::string& out) {
  auto now = std::chrono::system_clock::now();
  auto since = now.time_since_epoch();
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since);
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(since - seconds).count();
  thread_local std::int64_t cached_second = -1;
  thread_local char cached[24];
  if (seconds.count() != cached_second) {
    std::time_t t = static_cast<std::time_t>(seconds.count());
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
    cached_second = seconds.count();
  }
  char fraction[16];
  std::snprintf(fraction, sizeof fraction, ".%06dZ", static_cast<int>(micros));
  out += cached;
  out += fraction;
}

// {"time":"...","level":"...","message":"..."}.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    time_.format(msg, dest);  // {"time":"...","level":"...",
    dest.append(std::string_view("\"message\":"));
    json_string(std::string_view(msg.payload.data(), msg.payload.size()), dest);
    dest.append(std::string_view("}\n"));
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }

 private:
  spdlog::pattern_formatter time_{R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l",)",
                                  spdlog::pattern_time_type::utc, ""};
};

// "<time> <level> <message>", the message on one line: a line that a log shipper splits in three
// is three lines to grep.
class TextFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    head_.format(msg, dest);
    std::string message = text::one_line(std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(message.data(), message.data() + message.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<TextFormatter>();
  }

 private:
  spdlog::pattern_formatter head_{"%Y-%m-%dT%H:%M:%S.%fZ %l ", spdlog::pattern_time_type::utc, ""};
};

}  // namespace

void setup_logging(LogFormat format) {
  g_format = format;
  // Network threads hand log lines to a background thread and never wait on stdout; under a
  // flood the oldest lines are dropped rather than stalling requests. An entry is a line or a
  // LogBatch of at most a few KiB, so the queue stays within a few MiB.
  spdlog::init_thread_pool(2048, 1);
  auto sink = std::make_shared<StdoutSink>();
  auto logger = std::make_shared<spdlog::async_logger>(
      "flare", sink, spdlog::thread_pool(), spdlog::async_overflow_policy::overrun_oldest);
  // The same sink and logging thread: lines keep their order.
  g_lines = std::make_shared<spdlog::async_logger>(kLinesLogger, sink, spdlog::thread_pool(),
                                                   spdlog::async_overflow_policy::overrun_oldest);
  if (format == LogFormat::kJson) {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    logger->set_formatter(std::make_unique<TextFormatter>());
  }
  // The sink writes each line out as the logging thread takes it: no flush policy needed.
  spdlog::set_default_logger(logger);
}

void LogBatch::add(const LogFields& fields) {
  if (g_format == LogFormat::kJson) {
    lines_ += R"({"time":")";
    append_time(lines_);
    lines_ += R"(","level":"info")";
    for (const auto& [name, value] : fields) {
      lines_ += ',';
      json_string(name, lines_);
      lines_ += ':';
      json_string(value, lines_);
    }
    lines_ += "}\n";
  } else {
    append_time(lines_);
    lines_ += " info";
    for (const auto& [name, value] : fields) {
      lines_ += ' ';
      lines_ += name;
      lines_ += '=';
      lines_ += value;
    }
    lines_ += '\n';
  }
}

void LogBatch::flush() {
  if (lines_.empty()) return;
  if (g_lines) g_lines->info(std::string_view(lines_));
  lines_.clear();
}

}  // namespace flare::gateway
