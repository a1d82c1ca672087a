// flare-gateway: arguments -> configuration -> committer and server -> run. The only catch-all.
#include <pthread.h>
#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "gateway/api.hpp"
#include "gateway/push.hpp"
#include "gateway/server.hpp"
#include "gateway/sign.hpp"
#include "jobs/committer.hpp"
#include "jobs/pool.hpp"
#include "jobs/store.hpp"
#include "jobs/worker.hpp"

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

constexpr const char* kUsage = R"(flare-gateway: verified webhooks in, one job per event out.

Usage:
  flare-gateway serve --config FILE [--no-workers]
                                       Serve webhooks and the jobs API, and push jobs to the
                                       sources' destinations (unless --no-workers or
                                       workers.enabled is false). Applies pending migrations
                                       unless database.auto_migrate is false.
  flare-gateway worker --config FILE   Push jobs to destinations only: no HTTP server.
  flare-gateway migrate --config FILE  Apply pending database migrations and exit.
  flare-gateway check-config FILE      Validate FILE; print OK or every error as
                                       FILE:LINE:COLUMN: path: message (exit 2).
  flare-gateway sign --config FILE --source NAME [--body FILE]
                                       Print a curl command that sends a correctly signed
                                       delivery (a sample event unless --body) to source NAME.
  flare-gateway --help | --version

serve and worker stop on SIGTERM or SIGINT: no new requests or attempts, those in flight
finish (server.drain_timeout_ms, 10 s by default), unfinished attempts are released, exit 0.

Configuration: YAML; ${VAR} and ${VAR:-default} are replaced from the environment.
Exit status: 0 success, 1 runtime failure (e.g. database unreachable), 2 usage or configuration
error.
)";

void setup_logging() {
  // Network threads hand log lines to a background thread and never wait on stdout; under a
  // flood the oldest lines are dropped rather than stalling requests.
  spdlog::init_thread_pool(8192, 1);
  auto logger = std::make_shared<spdlog::async_logger>(
      "flare", std::make_shared<spdlog::sinks::stdout_sink_mt>(), spdlog::thread_pool(),
      spdlog::async_overflow_policy::overrun_oldest);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %v", spdlog::pattern_time_type::utc);
  spdlog::set_default_logger(logger);
  // A write(2) per request line costs as much as the request's own socket writes: lines are
  // flushed together every second (spdlog's finest period), warnings and errors at once.
  spdlog::flush_on(spdlog::level::warn);
  spdlog::flush_every(std::chrono::seconds(1));
}

// "--name VALUE" pairs and bare `flags` after the subcommand; nullopt on anything else.
std::optional<std::map<std::string, std::string>> options(
    const std::vector<std::string>& args, std::initializer_list<std::string> allowed,
    std::initializer_list<std::string> flags = {}) {
  std::map<std::string, std::string> out;
  for (std::size_t i = 1; i < args.size(); ++i) {
    bool flag = false, known = false;
    for (const std::string& f : flags) flag = flag || args[i] == f;
    for (const std::string& a : allowed) known = known || args[i] == a;
    if (flag) {
      out[args[i]] = "";
    } else if (known && i + 1 < args.size()) {
      out[args[i]] = args[i + 1];
      ++i;
    } else {
      return std::nullopt;
    }
  }
  return out;
}

int usage_error(const std::string& message) {
  std::cerr << "flare-gateway: " << message << "\nRun 'flare-gateway --help' for usage.\n";
  return kExitUsage;
}

// SIGTERM and SIGINT are blocked in every thread and taken by sigwait, so that one place
// decides what a stop means. Call before any thread starts.
sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

void wait_for_stop_signal(const sigset_t& set) {
  int signal = 0;
  sigwait(&set, &signal);
  spdlog::info("received {}", signal == SIGTERM ? "SIGTERM" : "SIGINT");
}

std::vector<std::string> pushed_sources(const flare::config::Config& config) {
  std::vector<std::string> out;
  for (const auto& s : config.sources) {
    if (s.destination) out.push_back(s.name);
  }
  return out;
}

std::unique_ptr<flare::jobs::Workers> start_workers(const flare::config::Config& config) {
  flare::jobs::WorkerOptions options{pushed_sources(config), config.workers.concurrency,
                                     config.workers.lease_seconds, config.workers.poll_interval};
  std::string names;
  for (const std::string& s : options.sources) names += (names.empty() ? "" : ", ") + s;
  spdlog::info("workers started: {} pushing {}", options.concurrency, names);
  auto backoff = [&config](const flare::jobs::Job& job) {
    return flare::gateway::retry_delay(config, job);
  };
  return std::make_unique<flare::jobs::Workers>(
      config.database.url, std::move(options),
      [&config] { return std::make_unique<flare::gateway::PushClient>(config); }, backoff);
}

// Each connection is a descriptor: take the hard limit rather than the usual soft 1024.
void raise_descriptor_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

int serve(const flare::config::Config& config, bool workers_enabled, const sigset_t& stop) {
  raise_descriptor_limit();
  flare::jobs::CommitterOptions options;
  options.auto_migrate = config.database.auto_migrate;
  flare::jobs::Committer committer(config.database.url, options);
  flare::jobs::Pool pool(config.database.url, config.database.pool_size);
  flare::gateway::Server server(config, committer, pool);
  std::unique_ptr<flare::jobs::Workers> workers;
  if (workers_enabled && config.workers.enabled && !pushed_sources(config).empty()) {
    workers = start_workers(config);
  }
  std::thread signals([&] {
    wait_for_stop_signal(stop);
    server.stop();
    if (workers) workers->stop(config.server.drain_timeout);
  });
  server.run();
  signals.join();
  // Completes what is still queued while the server's sessions can still be reached.
  committer.stop();
  pool.stop();
  return 0;
}

int worker(const flare::config::Config& config, const sigset_t& stop) {
  if (pushed_sources(config).empty()) {
    std::cerr << "flare-gateway: no source has a destination: nothing to push\n";
    return kExitUsage;
  }
  auto workers = start_workers(config);
  wait_for_stop_signal(stop);
  workers->stop(config.server.drain_timeout);
  spdlog::info("stopped");
  return 0;
}

int migrate(const flare::config::Config& config) {
  flare::jobs::Store store(config.database.url);
  int applied = store.migrate();
  std::cout << "applied " << applied << " migration(s); schema at version "
            << store.schema_version() << "\n";
  return 0;
}

int sign(const flare::config::Config& config, const std::string& source_name,
         const std::optional<std::string>& body_file) {
  for (const flare::config::Source& source : config.sources) {
    if (source.name != source_name) continue;
    std::optional<std::string> body;
    if (body_file) {
      std::ifstream in(*body_file, std::ios::binary);
      if (!in) return usage_error("cannot read " + *body_file);
      std::ostringstream text;
      text << in.rdbuf();
      body = text.str();
    }
    auto request = flare::gateway::sign(source, body, std::chrono::system_clock::now());
    std::cout << flare::gateway::curl_command(config, source, request) << "\n";
    return 0;
  }
  return usage_error("no source named " + source_name);
}

int run(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? kExitUsage : 0;
  }
  const std::string& command = args[0];
  if (command == "--version") {
    std::cout << "flare-gateway " << FLARE_VERSION << "\n";
    return 0;
  }
  if (command == "check-config") {
    if (args.size() != 2) return usage_error("check-config takes one FILE");
    flare::config::load(args[1]);
    std::cout << "OK\n";
    return 0;
  }
  if (command == "serve" || command == "worker" || command == "migrate") {
    auto opts = options(args, {"--config"}, {"--no-workers"});
    if (!opts || !opts->count("--config")) return usage_error(command + " needs --config FILE");
    bool no_workers = opts->count("--no-workers") > 0;
    if (no_workers && command != "serve") return usage_error("--no-workers is for serve");
    flare::config::Config config = flare::config::load(opts->at("--config"));
    sigset_t stop = block_stop_signals();
    setup_logging();
    if (command == "serve") return serve(config, !no_workers, stop);
    if (command == "worker") return worker(config, stop);
    return migrate(config);
  }
  if (command == "sign") {
    auto opts = options(args, {"--config", "--source", "--body"});
    if (!opts || !opts->count("--config") || !opts->count("--source")) {
      return usage_error("sign needs --config FILE --source NAME");
    }
    std::optional<std::string> body;
    if (opts->count("--body")) body = opts->at("--body");
    return sign(flare::config::load(opts->at("--config")), opts->at("--source"), body);
  }
  return usage_error("unknown command '" + command + "'");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  int status = kExitFailure;
  try {
    status = run(args);
  } catch (const flare::config::Error& e) {
    std::cerr << e.what() << "\n";
    status = kExitUsage;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    status = kExitFailure;
  }
  spdlog::shutdown();
  return status;
}
