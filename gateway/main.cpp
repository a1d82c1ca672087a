// flare-gateway: arguments -> configuration -> committer and server -> run. The only catch-all.
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "gateway/log.hpp"
#include "gateway/push.hpp"
#include "gateway/server.hpp"
#include "gateway/sign.hpp"
#include "gateway/terminal.hpp"
#include "jobs/committer.hpp"
#include "jobs/enqueue.hpp"
#include "jobs/pool.hpp"
#include "jobs/prune.hpp"
#include "jobs/store.hpp"
#include "jobs/traffic.hpp"
#include "jobs/worker.hpp"
#include "text/text.hpp"

namespace {

constexpr int kExitFailure = 1;
constexpr int kShownAttempts = 100;                 // by jobs show, as by GET /v1/jobs/{id}
constexpr std::int64_t kMaxReplayEvents = 100'000;  // as the API's
constexpr int kExitUsage = 2;

constexpr const char* kUsage = R"(flare-gateway: verified webhooks in, one job per event out.

Usage:
  flare-gateway serve --config FILE [--no-workers] [--log-format text|json]
                                       Serve webhooks and the jobs API, and push jobs to the
                                       sources' routes (unless --no-workers or
                                       workers.enabled is false). Applies pending migrations
                                       unless database.auto_migrate is false.
  flare-gateway worker --config FILE [--log-format text|json]
                                       Push jobs to routes only: no HTTP server.
  flare-gateway migrate --config FILE  Apply pending database migrations and exit.
  flare-gateway check-config FILE      Validate FILE; print OK or every error as
                                       FILE:LINE:COLUMN: path: message (exit 2).
  flare-gateway jobs list --config FILE [--project ID] [--status S] [--limit N]
                                       The newest jobs, dead letters first (all projects
                                       unless --project; 50 unless --limit, at most 500).
  flare-gateway jobs show --config FILE ID
                                       One job, every field, its deliveries and latest 100
                                       attempts, and its payload.
  flare-gateway jobs retry --config FILE ID
                                       Make a dead or cancelled job due again now.
  flare-gateway routes list --config FILE
                                       Every route: its breaker's state, deliveries waiting
                                       and attempts in flight, over every process.
  flare-gateway routes pause|resume --config FILE SOURCE ROUTE
                                       Stop a route's attempts until it is resumed (its
                                       deliveries wait); resuming also closes its breaker.
  flare-gateway replay --config FILE --source NAME --route NAME [--types T,T] [--since TIME]
                       [--before TIME] [--statuses S,S] [--dry-run]
                                       Send a source's events again to one route: those of
                                       the types (PREFIX.* too), received in [since, before),
                                       whose delivery has one of the statuses; paced by the
                                       route. --dry-run counts them. At most 100,000.
  flare-gateway replay show|cancel --config FILE ID
                                       A replay's progress; cancel its waiting deliveries.
  flare-gateway prune --config FILE [--dry-run]
                                       Apply the retention now, one pass, as serve does
                                       every retention.interval_seconds; print what it
                                       removed. --dry-run counts what it would remove.
  flare-gateway sign --config FILE --source NAME [--body FILE]
                                       Print a curl command that sends a correctly signed
                                       delivery (a sample event unless --body) to source NAME.
  flare-gateway --help | --version

serve and worker stop on SIGTERM or SIGINT: no new requests or attempts, those in flight
finish (server.drain_timeout_ms, 10 s by default), unfinished attempts are released, exit 0.
On SIGHUP, serve loads server.tls's certificate and key again for new connections; open ones
keep theirs, and files that cannot be loaded leave the previous certificate in use.

Logs go to standard output: one line per request and per event, human-readable, or one JSON
object per line with --log-format json.

Configuration: YAML; ${VAR} and ${VAR:-default} are replaced from the environment.
Exit status: 0 success, 1 runtime failure (e.g. database unreachable), 2 usage or configuration
error.
)";

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

// SIGTERM, SIGINT and SIGHUP are blocked in every thread and taken by sigwait, so that one
// place decides what they mean. Call before any thread starts.
sigset_t block_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

// Returns at SIGTERM or SIGINT; calls `reload` at each SIGHUP.
void wait_for_stop_signal(const sigset_t& set, const std::function<void()>& reload = {}) {
  for (;;) {
    int signal = 0;
    sigwait(&set, &signal);
    if (signal != SIGHUP) {
      spdlog::info("received {}", signal == SIGTERM ? "SIGTERM" : "SIGINT");
      return;
    }
    if (reload) reload();
  }
}

std::vector<const flare::config::Source*> pushed_sources(const flare::config::Config& config) {
  std::vector<const flare::config::Source*> out;
  for (const auto& s : config.sources) {
    if (!s.routes.empty()) out.push_back(&s);
  }
  return out;
}

// `observer` (may be null) is told of each attempt: serve's metrics, a worker's traffic.
// `handoff` (may be null): serve's, shared with its committer.
std::unique_ptr<flare::jobs::Workers> start_workers(const flare::config::Config& config,
                                                    flare::jobs::Observer* observer,
                                                    flare::jobs::Handoff* handoff) {
  flare::jobs::WorkerOptions options{pushed_sources(config),
                                     config.workers.concurrency,
                                     config.workers.batch,
                                     config.workers.lease_seconds,
                                     config.workers.poll_interval,
                                     observer,
                                     handoff};
  std::string names;
  for (const flare::config::Source* s : options.sources) {
    for (const flare::config::Route& r : s->routes) {
      names += (names.empty() ? "" : ", ") + s->name + "." + r.name;
    }
  }
  spdlog::info("workers started: {} pushing to {}", options.concurrency, names);
  return std::make_unique<flare::jobs::Workers>(config.database.url, std::move(options), [&config] {
    return std::make_unique<flare::gateway::PushClient>(config);
  });
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
  // The console's charts count what this process sees, when there is a console.
  std::unique_ptr<flare::jobs::Traffic> traffic;
  if (config.console.enabled) traffic = std::make_unique<flare::jobs::Traffic>(config.database.url);
  flare::gateway::Metrics metrics(traffic.get());
  // Deliveries go from the committer straight to this process's workers, when it has them.
  bool pushes = workers_enabled && config.workers.enabled && !pushed_sources(config).empty();
  std::unique_ptr<flare::jobs::Handoff> handoff;
  if (pushes) {
    auto workers = static_cast<std::size_t>(config.workers.concurrency);
    handoff = std::make_unique<flare::jobs::Handoff>(
        pushed_sources(config), workers * static_cast<std::size_t>(config.workers.batch),
        workers * flare::jobs::Store::kClaimBytes, config.workers.lease_seconds);
  }
  flare::jobs::CommitterOptions options;
  options.auto_migrate = config.database.auto_migrate;
  options.partitions = config.database.partitions;
  options.observer = &metrics;
  options.lanes = config.database.committer_lanes;
  options.handoff = handoff.get();
  flare::jobs::Committer committer(config.database.url, options);
  flare::jobs::Pool pool(config.database.url, config.database.pool_size, &metrics);
  // Claims waiting at once for jobs: each claims again at every wake-up, up to ten times a
  // second; more answer at once, as without a wait.
  constexpr std::size_t kMaxWaitingClaims = 256;
  flare::jobs::Wakeups wakeups(config.database.url, kMaxWaitingClaims);
  flare::gateway::Server server(config, committer, pool, wakeups, metrics);
  std::unique_ptr<flare::jobs::Workers> workers;
  if (pushes) workers = start_workers(config, &metrics, handoff.get());
  std::unique_ptr<flare::jobs::Pruner> pruner;
  if (config.prunes()) {
    pruner = std::make_unique<flare::jobs::Pruner>(
        config.database.url, flare::jobs::prune_scopes(config), config.pruning, &metrics);
  }
  std::thread signals([&] {
    wait_for_stop_signal(stop, [&server] { server.reload_tls(); });
    server.stop();
    // Waiting claims answer now, while the server drains.
    wakeups.stop();
    if (pruner) pruner->stop();
    if (workers) workers->stop(config.server.drain_timeout);
  });
  server.run();
  signals.join();
  // Completes what is still queued while the server's sessions can still be reached.
  committer.stop();
  // Releases the deliveries it handed over after the workers stopped.
  if (workers) workers->stop(std::chrono::milliseconds(0));
  pool.stop();
  if (traffic) traffic->stop();
  return 0;
}

int worker(const flare::config::Config& config, const sigset_t& stop) {
  if (pushed_sources(config).empty()) {
    std::cerr << "flare-gateway: no source has routes: nothing to push\n";
    return kExitUsage;
  }
  std::unique_ptr<flare::jobs::Traffic> traffic;
  if (config.console.enabled) traffic = std::make_unique<flare::jobs::Traffic>(config.database.url);
  auto workers = start_workers(config, traffic.get(), nullptr);
  wait_for_stop_signal(stop);
  workers->stop(config.server.drain_timeout);
  if (traffic) traffic->stop();
  spdlog::info("stopped");
  return 0;
}

int migrate(const flare::config::Config& config) {
  flare::jobs::Store store(config.database.url);
  int applied = store.migrate(config.database.partitions);
  // Read before the line is begun: a log line written meanwhile would split it.
  int version = store.schema_version();
  std::cout << "applied " << applied << " migration(s); schema at version " << version << "\n";
  return 0;
}

// The project that holds job `id`, and the job; nullopt when no configured project has it.
std::optional<flare::jobs::Job> find_job(const flare::config::Config& config,
                                         flare::jobs::Store& store, const std::string& id) {
  for (const flare::config::Project& p : config.projects) {
    if (auto job = store.get(p.id, id)) return job;
  }
  return std::nullopt;
}

int jobs_command(const std::vector<std::string>& args) {
  const std::string what = args.size() > 1 ? args[1] : "";
  std::vector<std::string> rest(args.begin() + (args.size() > 1 ? 1 : 0), args.end());
  std::string id;
  if ((what == "show" || what == "retry") && rest.size() >= 2 && rest.back().rfind("--", 0) != 0) {
    id = rest.back();
    rest.pop_back();
  }
  auto opts = options(rest, {"--config", "--project", "--status", "--limit"});
  if ((what != "list" && what != "show" && what != "retry") || !opts || !opts->count("--config") ||
      (what != "list" && (id.empty() || opts->size() != 1))) {
    return usage_error("jobs list|show|retry --config FILE [...]: see --help");
  }
  flare::config::Config config = flare::config::load(opts->at("--config"));
  flare::jobs::Store store(config.database.url);
  if (what == "list") {
    flare::jobs::ListQuery query;
    if (opts->count("--limit")) {
      try {
        query.limit = std::stoi(opts->at("--limit"));
      } catch (const std::exception&) {
        query.limit = 0;
      }
      if (query.limit < 1 || query.limit > 500) return usage_error("--limit takes 1 to 500");
    }
    std::vector<std::string> projects;
    for (const auto& p : config.projects) {
      if (!opts->count("--project") || opts->at("--project") == p.id) projects.push_back(p.id);
    }
    if (projects.empty()) return usage_error("no project " + opts->at("--project"));
    std::vector<flare::jobs::Job> shown;
    // Dead letters are what an operator is called for: they come first, then every status.
    using flare::jobs::Status;
    std::vector<std::optional<Status>> statuses = {Status::kDead, std::nullopt};
    if (opts->count("--status")) {
      statuses = {flare::jobs::parse_status(opts->at("--status"))};
      if (!statuses[0]) {
        return usage_error("--status takes one of " + flare::jobs::status_names());
      }
    }
    for (const std::optional<Status>& status : statuses) {
      for (const std::string& project : projects) {
        query.status = status;
        for (flare::jobs::Job& job : store.list(project, query).jobs) {
          if (statuses.size() > 1 && !status && job.status == Status::kDead) continue;
          if (shown.size() < static_cast<std::size_t>(query.limit)) shown.push_back(std::move(job));
        }
      }
    }
    std::cout << flare::gateway::jobs_table(shown);
    return 0;
  }
  std::optional<flare::jobs::Job> job = find_job(config, store, id);
  if (!job) {
    std::cerr << "flare-gateway: no job " << id << " in any configured project\n";
    return kExitFailure;
  }
  if (what == "show") {
    std::optional<flare::jobs::JobView> view = store.view(job->project_id, id, kShownAttempts);
    if (!view) {
      std::cerr << "flare-gateway: job " << id << " was deleted\n";
      return kExitFailure;
    }
    std::cout << flare::gateway::job_details(*view);
    return 0;
  }
  flare::jobs::Changed changed = store.retry(job->project_id, id);
  if (changed.change == flare::jobs::Change::kPruned) {
    std::cerr << "flare-gateway: job " << id << "'s payload was removed by retention at "
              << *changed.job->pruned_at << ": it cannot run again\n";
    return kExitFailure;
  }
  if (changed.change != flare::jobs::Change::kDone) {
    std::cerr << "flare-gateway: job " << id << " is "
              << flare::jobs::to_string(changed.job->status)
              << ": only dead or cancelled jobs can be retried\n";
    return kExitFailure;
  }
  std::cout << "job " << id << " is " << flare::jobs::to_string(changed.job->status)
            << " again, due now\n";
  return 0;
}

int prune_command(const std::vector<std::string>& args) {
  auto opts = options(args, {"--config"}, {"--dry-run"});
  if (!opts || !opts->count("--config")) return usage_error("prune needs --config FILE");
  flare::config::Config config = flare::config::load(opts->at("--config"));
  std::vector<flare::jobs::PruneScope> scopes = flare::jobs::prune_scopes(config);
  if (scopes.empty()) {
    std::cout << "no project or source has a retention: nothing is pruned\n";
    return 0;
  }
  bool dry_run = opts->count("--dry-run") > 0;
  flare::jobs::Store store(config.database.url);
  auto pruned = store.prune(scopes, config.pruning.batch_size, dry_run, [](auto) { return true; });
  if (!pruned) {
    std::cerr << "flare-gateway: another gateway process is pruning now; try again later\n";
    return kExitFailure;
  }
  std::cout << flare::gateway::prune_report(scopes, *pruned, dry_run);
  return 0;
}

// The configured route SOURCE ROUTE, or nullptr.
std::pair<const flare::config::Source*, const flare::config::Route*> find_route(
    const flare::config::Config& config, const std::string& source, const std::string& route) {
  for (const flare::config::Source& s : config.sources) {
    for (const flare::config::Route& r : s.routes) {
      if (s.name == source && r.name == route) return {&s, &r};
    }
  }
  return {nullptr, nullptr};
}

int routes_command(const std::vector<std::string>& args) {
  const std::string what = args.size() > 1 ? args[1] : "";
  std::vector<std::string> rest(args.begin() + (args.size() > 1 ? 1 : 0), args.end());
  std::vector<std::string> names;
  while (what != "list" && rest.size() > 1 && names.size() < 2 && rest.back().rfind("--", 0) != 0) {
    names.insert(names.begin(), rest.back());
    rest.pop_back();
  }
  auto opts = options(rest, {"--config"});
  bool pause = what == "pause" || what == "resume";
  if ((what != "list" && !pause) || !opts || !opts->count("--config") ||
      names.size() != (pause ? 2u : 0u)) {
    return usage_error("routes list|pause|resume --config FILE [SOURCE ROUTE]: see --help");
  }
  flare::config::Config config = flare::config::load(opts->at("--config"));
  flare::jobs::Store store(config.database.url);
  if (what == "list") {
    std::vector<flare::jobs::RouteId> all;
    for (const auto& s : config.sources) {
      for (const auto& r : s.routes) all.push_back({s.name, r.name});
    }
    std::cout << flare::gateway::routes_table(all.empty() ? std::vector<flare::jobs::RouteState>{}
                                                          : store.route_states(all));
    return 0;
  }
  if (!find_route(config, names[0], names[1]).second) {
    return usage_error("no route " + names[1] + " of a source " + names[0]);
  }
  flare::jobs::RouteId id{names[0], names[1]};
  std::cout << flare::gateway::routes_table(
      {what == "pause" ? store.pause_route(id) : store.resume_route(id)});
  return 0;
}

// "a,b,c" as its parts; none for "".
std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < list.size()) {
    std::size_t comma = list.find(',', at);
    out.push_back(list.substr(at, comma - at));
    at = comma == std::string::npos ? list.size() : comma + 1;
  }
  return out;
}

int replay_command(const std::vector<std::string>& args) {
  const std::string what = args.size() > 1 ? args[1] : "";
  if (what == "show" || what == "cancel") {
    std::vector<std::string> rest(args.begin() + 1, args.end());
    std::string id = rest.size() > 1 ? rest.back() : "";
    if (!id.empty()) rest.pop_back();
    auto opts = options(rest, {"--config"});
    if (!opts || !opts->count("--config") || !flare::text::is_uuid(id)) {
      return usage_error("replay show|cancel --config FILE ID");
    }
    flare::config::Config config = flare::config::load(opts->at("--config"));
    flare::jobs::Store store(config.database.url);
    for (const auto& p : config.projects) {
      std::optional<flare::jobs::Replay> r =
          what == "show" ? store.replay(p.id, id) : store.cancel_replay(p.id, id);
      if (!r) continue;
      std::cout << flare::gateway::replay_text(*r);
      return 0;
    }
    std::cerr << "flare-gateway: no replay " << id << " in any configured project\n";
    return kExitFailure;
  }
  auto opts = options(
      args, {"--config", "--source", "--route", "--types", "--since", "--before", "--statuses"},
      {"--dry-run"});
  if (!opts || !opts->count("--config") || !opts->count("--source") || !opts->count("--route")) {
    return usage_error("replay --config FILE --source NAME --route NAME [...]: see --help");
  }
  flare::config::Config config = flare::config::load(opts->at("--config"));
  auto [source, route] = find_route(config, opts->at("--source"), opts->at("--route"));
  if (!route)
    return usage_error("no route " + opts->at("--route") + " of a source " + opts->at("--source"));
  flare::jobs::ReplayFilter filter;
  if (opts->count("--types")) filter.types = split(opts->at("--types"));
  for (const std::string& t : filter.types) {
    if (!flare::config::valid_type_pattern(t)) return usage_error("--types: not a type: " + t);
  }
  for (auto [name, field] :
       {std::pair{"--since", &filter.since}, std::pair{"--before", &filter.before}}) {
    if (!opts->count(name)) continue;
    *field = flare::text::parse_rfc3339(opts->at(name));
    if (!*field) return usage_error(std::string(name) + " takes an RFC 3339 date-time");
  }
  if (opts->count("--statuses")) {
    for (const std::string& st : split(opts->at("--statuses"))) {
      std::optional<flare::jobs::Status> parsed = flare::jobs::parse_status(st);
      if (!parsed || !flare::jobs::ended(*parsed)) {
        return usage_error("--statuses takes succeeded, dead, cancelled");
      }
      filter.statuses.push_back(*parsed);
    }
  }
  flare::jobs::Store store(config.database.url);
  if (opts->count("--dry-run")) {
    std::cout << store.count_replay(source->project, *source, *route, filter)
              << " events would be sent again to " << source->name << "." << route->name << "\n";
    return 0;
  }
  std::string id = flare::jobs::new_job_id();
  try {
    if (!store.start_replay(id, source->project, *source, *route, filter, kMaxReplayEvents)) {
      std::cerr << "flare-gateway: more than " << kMaxReplayEvents
                << " events match: narrow the filter (--dry-run counts them)\n";
      return kExitFailure;
    }
  } catch (const flare::jobs::Unavailable&) {
    std::cerr << "flare-gateway: the database failed during replay " << id
              << ": 'replay show' shows what it took, if anything\n";
    throw;
  }
  std::cout << flare::gateway::replay_text(*store.replay(source->project, id));
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
    auto opts = options(args, {"--config", "--log-format"}, {"--no-workers"});
    if (!opts || !opts->count("--config")) return usage_error(command + " needs --config FILE");
    bool no_workers = opts->count("--no-workers") > 0;
    if (no_workers && command != "serve") return usage_error("--no-workers is for serve");
    std::string log_format = opts->count("--log-format") ? opts->at("--log-format") : "text";
    if (log_format != "text" && log_format != "json") {
      return usage_error("--log-format takes text or json");
    }
    flare::config::Config config = flare::config::load(opts->at("--config"));
    sigset_t stop = block_signals();
    flare::gateway::setup_logging(log_format == "json" ? flare::gateway::LogFormat::kJson
                                                       : flare::gateway::LogFormat::kText);
    if (command == "serve") return serve(config, !no_workers, stop);
    if (command == "worker") return worker(config, stop);
    return migrate(config);
  }
  if (command == "jobs" || command == "routes" || command == "replay" || command == "prune") {
    try {
      if (command == "routes") return routes_command(args);
      if (command == "prune") return prune_command(args);
      if (command == "replay") return replay_command(args);
      return jobs_command(args);
    } catch (const flare::jobs::Unavailable& e) {
      std::cerr << "flare-gateway: the database is unreachable: " << e.what() << "\n";
      return kExitFailure;
    }
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
