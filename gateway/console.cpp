#include "gateway/console.hpp"

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <set>
#include <stdexcept>

#include "gateway/pages.hpp"
#include "jobs/enqueue.hpp"
#include "text/text.hpp"

namespace flare::gateway {
namespace {

using FormFields = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view kCookie = "flare_console";
// Bounds of what a request may hold: form fields, a token's length.
constexpr std::size_t kMaxFields = 32;
constexpr std::size_t kMaxToken = 1024;
// The most dead jobs one bulk retry takes; the confirmation says when more match.
constexpr std::int64_t kMaxBulkRetry = 1000;
constexpr std::int64_t kMaxReplayEvents = 100'000;
constexpr int kShownAttempts = 100;

// Every page: no script, no inline style, no frame, no form posting elsewhere; nothing cached.
constexpr std::string_view kPageHeaders =
    "Content-Security-Policy: default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: same-origin\r\n"
    "Cache-Control: no-store\r\n";

constexpr std::string_view kStyle = R"css(
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #111827; background: #f9fafb; }
header { display: flex; justify-content: space-between; align-items: center; padding: 8px 20px;
         background: #111827; color: #f9fafb; }
header a { color: #f9fafb; margin-right: 16px; text-decoration: none; }
header .brand { font-weight: 700; }
header .who form { margin-left: 12px; }
main { padding: 12px 20px 40px; }
main.login { max-width: 360px; margin: 80px auto; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; background: #fff; margin: 8px 0; }
th, td { border: 1px solid #e5e7eb; padding: 4px 8px; text-align: left; vertical-align: middle; }
th { background: #f3f4f6; font-weight: 600; }
form.inline { display: inline-flex; gap: 4px; margin: 2px; }
#filter { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin-bottom: 8px; }
input, select, button { font: inherit; padding: 3px 6px; }
button { cursor: pointer; border: 1px solid #6b7280; border-radius: 4px; background: #fff; }
pre { background: #fff; border: 1px solid #e5e7eb; padding: 8px; overflow: auto;
      max-height: 480px; white-space: pre-wrap; word-break: break-all; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }
dt { color: #6b7280; } dd { margin: 0; word-break: break-all; }
.badge { padding: 1px 6px; border-radius: 8px; background: #e5e7eb; }
.badge.succeeded, .badge.closed { background: #d1fae5; }
.badge.dead, .badge.open { background: #fee2e2; }
.badge.retrying, .badge.paused { background: #fef3c7; }
.badge.running { background: #dbeafe; }
.notice { background: #d1fae5; padding: 6px 10px; border-radius: 4px; }
.error { background: #fee2e2; padding: 6px 10px; border-radius: 4px; }
.hint { color: #6b7280; }
.failed, .refused { color: #b91c1c; }
)css";

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    throw std::runtime_error("no random bytes for a console session");
  }
  return text::to_hex(raw);
}

// The fields of a form or a query string, decoded; at most kMaxFields.
std::optional<FormFields> fields_of(std::string_view encoded) {
  FormFields out;
  while (!encoded.empty()) {
    std::size_t amp = encoded.find('&');
    std::string_view pair = encoded.substr(0, amp);
    encoded = amp == std::string_view::npos ? "" : encoded.substr(amp + 1);
    if (pair.empty()) continue;
    if (out.size() == kMaxFields) return std::nullopt;
    std::size_t eq = pair.find('=');
    out.emplace_back(text::percent_decode(pair.substr(0, eq)),
                     eq == std::string_view::npos ? "" : text::percent_decode(pair.substr(eq + 1)));
  }
  return out;
}

std::string value_of(const FormFields& fields, std::string_view name) {
  for (const auto& [n, v] : fields) {
    if (n == name) return v;
  }
  return {};
}

// A query string of `fields`, those with a value.
std::string query_of(const FormFields& fields) {
  auto encode = [](std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':') {
        out += static_cast<char>(c);
      } else {
        char buf[4];
        std::snprintf(buf, sizeof buf, "%%%02X", c);
        out += buf;
      }
    }
    return out;
  };
  std::string out;
  for (const auto& [name, value] : fields) {
    if (value.empty()) continue;
    out += (out.empty() ? "" : "&") + encode(name) + "=" + encode(value);
  }
  return out;
}

// The session cookie's value in a Cookie header: 64 hex digits, else "".
std::string cookie_of(std::string_view header) {
  while (!header.empty()) {
    std::size_t semi = header.find(';');
    std::string_view pair = header.substr(0, semi);
    header = semi == std::string_view::npos ? "" : header.substr(semi + 1);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    if (pair.substr(0, kCookie.size() + 1) != std::string(kCookie) + "=") continue;
    std::string_view value = pair.substr(kCookie.size() + 1);
    bool hex = value.size() == 64 && std::all_of(value.begin(), value.end(),
                                                 [](char c) { return text::hex_digit(c) >= 0; });
    if (hex) return std::string(value);
  }
  return "";
}

Reply html(Outcome outcome, std::string body, std::string extra = {}) {
  Reply r = success(outcome, std::move(body));
  r.content_type = "text/html; charset=utf-8";
  r.headers = std::string(kPageHeaders) + extra;
  return r;
}

Reply see_other(const std::string& location, std::string extra = {}) {
  Reply r = success(Outcome::kSeeOther, {});
  r.headers = std::string(kPageHeaders) + "Location: " + location + "\r\n" + extra;
  return r;
}

std::string sha256_hex(std::string_view text) { return providers::to_hex(providers::sha256(text)); }

// The line a redirect's notice stands for: fixed texts and a number, never text from the URL.
std::string notice_text(const FormFields& query) {
  std::string what = value_of(query, "notice");
  std::string n = value_of(query, "n");
  if (!std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      n.size() > 12) {
    n.clear();
  }
  if (what == "retried") return "The job is queued again.";
  if (what == "bulk") return n + " dead jobs are queued again.";
  if (what == "paused") return "The route is paused: no attempt begins until it is resumed.";
  if (what == "resumed") return "The route is resumed.";
  if (what == "replay") return "A replay of " + n + " events began.";
  return {};
}

}  // namespace

struct Console::Signed {
  const config::Operator* op;
  std::string csrf;
  std::string id_sha256;
  pages::Frame frame;
  std::string client;  // the address the request came from, for the log of actions
  FormFields form;     // a POST's fields
};

Console::Console(const config::Config& config)
    : config_(config), base_(config.server.base_path + "/console") {
  for (const config::Operator& op : config.console.operators) {
    tokens_.push_back({op.token_sha256, &op});
  }
}

std::optional<Reply> Console::before_body(std::string_view path, std::string_view cookie) const {
  if (path == "/login" || path == "/style.css" || !cookie_of(cookie).empty()) return std::nullopt;
  return see_other(base_ + "/login");
}

ApiPlan Console::plan(const ConsoleRequest& request) const {
  ApiPlan plan;
  std::string_view path = request.path;
  auto only = [&](std::string_view method) { return request.method == method; };
  if (path == "/style.css") {
    if (!only("GET")) {
      plan.reply = not_allowed("GET");
      return plan;
    }
    Reply r = success(Outcome::kOk, std::string(kStyle));
    r.content_type = "text/css; charset=utf-8";
    r.headers = "X-Content-Type-Options: nosniff\r\nCache-Control: max-age=300\r\n";
    plan.reply = std::move(r);
    return plan;
  }
  if (path == "/login") {
    if (only("POST")) return sign_in(request);
    if (!only("GET")) {
      plan.reply = not_allowed("GET, POST");
      return plan;
    }
    plan.reply = html(Outcome::kOk, pages::login(base_, ""));
    return plan;
  }
  // Without a session, every other path and method is the way to sign in: none says whether
  // it exists.
  if (auto early = before_body(path, request.cookie)) {
    plan.reply = std::move(*early);
    return plan;
  }
  auto refuse = [](Outcome outcome, std::string title, std::string text) {
    return [outcome, title, text](jobs::Store&, const Signed& s) {
      return html(outcome, pages::message(s.frame, title, text));
    };
  };
  std::optional<FormFields> form = fields_of(request.body);
  if (!form) {
    return with_session(request, refuse(Outcome::kBadRequest, "Refused", "Too many form fields."));
  }
  if (only("POST")) {
    // Every change comes from a form of this console, in the session it was made for, and an
    // operator who may act.
    auto checked = [this, form = *form](std::function<Reply(jobs::Store&, const Signed&)> act,
                                        bool acts) {
      return [form, act, acts](jobs::Store& store, const Signed& s) {
        if (s.csrf.empty() || !providers::constant_time_equal(value_of(form, "csrf"), s.csrf)) {
          spdlog::warn(
              "console: operator={} client={} refused: a form without this session's "
              "CSRF token",
              s.op->name, s.client);
          return html(Outcome::kForbidden,
                      pages::message(s.frame, "Refused",
                                     "This form was not made for this session: reload the page "
                                     "and try again."));
        }
        if (acts && s.op->read_only) {
          spdlog::warn("console: operator={} client={} refused: read-only", s.op->name, s.client);
          return html(Outcome::kForbidden,
                      pages::message(s.frame, "Refused", "A read-only operator cannot act."));
        }
        Signed with = s;
        with.form = form;
        return act(store, with);
      };
    };
    if (path == "/logout") {
      return with_session(request, checked(
                                       [this](jobs::Store& store, const Signed& s) {
                                         store.end_session(s.id_sha256);
                                         spdlog::info("console: operator={} client={} signed out",
                                                      s.op->name, s.client);
                                         return see_other(base_ + "/login", clear_cookie());
                                       },
                                       false));
    }
    if (path == "/retry") {
      return with_session(request, checked(
                                       [this](jobs::Store& store, const Signed& s) {
                                         return bulk_retry(store, s, query_of(s.form), true);
                                       },
                                       true));
    }
    // /jobs/{project}/{id}/retry and /routes/{source}/{route}/{pause|resume|replay}
    std::vector<std::string> parts;
    for (std::string_view rest = path.substr(std::min<std::size_t>(1, path.size()));
         !rest.empty() && parts.size() < 5;) {
      std::size_t slash = rest.find('/');
      parts.emplace_back(rest.substr(0, slash));
      rest = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
    }
    if (parts.size() == 4 && parts[0] == "jobs" && parts[3] == "retry" && text::is_uuid(parts[2])) {
      return with_session(
          request,
          checked([this, project = parts[1], id = parts[2]](
                      jobs::Store& store, const Signed& s) { return retry(store, s, project, id); },
                  true));
    }
    if (parts.size() == 4 && parts[0] == "routes" &&
        (parts[3] == "pause" || parts[3] == "resume" || parts[3] == "replay")) {
      return with_session(request, checked(
                                       [this, parts](jobs::Store& store, const Signed& s) {
                                         return route_action(store, s, parts[1], parts[2],
                                                             parts[3]);
                                       },
                                       true));
    }
    return with_session(request, refuse(Outcome::kNotFound, "Not found", "No such page."));
  }
  if (!only("GET")) {
    return with_session(request, refuse(Outcome::kMethodNotAllowed, "Refused",
                                        "The console takes GET and POST only."));
  }
  std::string query(request.query);
  if (path.empty() || path == "/") {
    return with_session(request,
                        [this](jobs::Store& store, const Signed& s) { return overview(store, s); });
  }
  if (path == "/jobs") {
    return with_session(request, [this, query](jobs::Store& store, const Signed& s) {
      return jobs_page(store, s, query);
    });
  }
  if (path == "/retry") {
    return with_session(request, [this, query](jobs::Store& store, const Signed& s) {
      return bulk_retry(store, s, query, false);
    });
  }
  if (path.substr(0, 6) == "/jobs/") {
    std::string_view rest = path.substr(6);
    std::size_t slash = rest.find('/');
    std::string project(rest.substr(0, slash));
    std::string id(slash == std::string_view::npos ? "" : rest.substr(slash + 1));
    return with_session(request, [this, project, id](jobs::Store& store, const Signed& s) {
      return job_page(store, s, project, id);
    });
  }
  return with_session(request, refuse(Outcome::kNotFound, "Not found", "No such page."));
}

ApiPlan Console::sign_in(const ConsoleRequest& request) const {
  ApiPlan plan;
  std::optional<FormFields> form = fields_of(request.body);
  std::string token = form ? value_of(*form, "token") : "";
  const config::Operator* op = nullptr;
  if (!token.empty() && token.size() <= kMaxToken) {
    providers::Digest digest = providers::sha256(token);
    // Every operator's digest is compared, whichever matches.
    for (const Token& t : tokens_) {
      if (providers::constant_time_equal(digest, t.sha256)) op = t.op;
    }
  }
  if (op == nullptr) {
    spdlog::warn("console: sign-in refused client={}", request.client);
    plan.reply = html(Outcome::kSignInRefused,
                      pages::login(base_, "That token is no operator's. Try again."));
    return plan;
  }
  std::string cookie = random_hex(32);
  jobs::ConsoleSession session{op->name, providers::to_hex(op->token_sha256), random_hex(32)};
  std::string set_cookie =
      "Set-Cookie: " + std::string(kCookie) + "=" + cookie + "; Path=" + base_ +
      "; Max-Age=" + std::to_string(config_.console.session_lifetime.count()) +
      "; HttpOnly; SameSite=Strict" + (request.https ? "; Secure" : "") + "\r\n";
  plan.work = [this, op, session, id = sha256_hex(cookie), set_cookie,
               client = std::string(request.client)](jobs::Store& store) {
    store.add_session(id, session, config_.console.session_lifetime);
    spdlog::info("console: operator={} client={} signed in", op->name, client);
    return see_other(base_ + "/", set_cookie);
  };
  return plan;
}

std::string Console::clear_cookie() const {
  return "Set-Cookie: " + std::string(kCookie) + "=; Path=" + base_ +
         "; Max-Age=0; HttpOnly; SameSite=Strict\r\n";
}

ApiPlan Console::with_session(const ConsoleRequest& request,
                              std::function<Reply(jobs::Store&, const Signed&)> page) const {
  ApiPlan plan;
  std::string cookie = cookie_of(request.cookie);
  if (cookie.empty()) {
    plan.reply = see_other(base_ + "/login");
    return plan;
  }
  std::optional<FormFields> query = fields_of(request.query);
  std::string notice = query ? notice_text(*query) : "";
  plan.work = [this, id = sha256_hex(cookie), page, notice,
               client = std::string(request.client)](jobs::Store& store) {
    std::optional<jobs::ConsoleSession> found = store.session(id);
    const config::Operator* op = nullptr;
    if (found) {
      for (const config::Operator& o : config_.console.operators) {
        // A token changed in the configuration ends its sessions.
        if (o.name == found->operator_name &&
            providers::constant_time_equal(providers::to_hex(o.token_sha256),
                                           found->token_sha256)) {
          op = &o;
        }
      }
    }
    if (op == nullptr) return see_other(base_ + "/login", clear_cookie());
    Signed s{op,     found->csrf, id, {base_, op->name, found->csrf, op->read_only, notice},
             client, {}};
    return page(store, s);
  };
  return plan;
}

Reply Console::overview(jobs::Store& store, const Signed& s) const {
  pages::Overview data;
  std::vector<std::string> projects, sources;
  for (const config::Project& p : config_.projects) {
    if (s.op->sees(p.id)) projects.push_back(p.id);
  }
  std::vector<jobs::RouteId> routes;
  for (const config::Source& src : config_.sources) {
    if (!s.op->sees(src.project)) continue;
    sources.push_back(src.name);
    for (const config::Route& r : src.routes) routes.push_back({src.name, r.name});
  }
  data.queue = store.queue_summary(projects, routes, pages::kCountedUpTo);
  std::vector<jobs::RouteState> states = routes.empty()
                                             ? std::vector<jobs::RouteState>{}
                                             : store.route_states(routes, pages::kCountedUpTo);
  for (const jobs::RouteState& st : states) {
    for (const config::Source& src : config_.sources) {
      if (src.name == st.source) data.routes.push_back({src.project, st});
    }
  }
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  for (auto [span, bucket, out] :
       {std::tuple{std::chrono::seconds(3600), std::chrono::seconds(300), &data.hour},
        std::tuple{std::chrono::seconds(86400), std::chrono::seconds(3600), &data.day}}) {
    std::size_t n = static_cast<std::size_t>(span / bucket);
    std::int64_t first =
        now - now % bucket.count() - static_cast<std::int64_t>(n - 1) * bucket.count();
    for (const config::Source& src : config_.sources) {
      if (!s.op->sees(src.project)) continue;
      std::vector<std::string> names = {""};
      for (const config::Route& r : src.routes) names.push_back(r.name);
      for (const std::string& route : names) {
        pages::Series series{src.name, route, std::vector<jobs::TrafficRow>(n), {}};
        out->push_back(std::move(series));
      }
    }
    if (sources.empty()) continue;
    for (const jobs::TrafficRow& row : store.traffic(sources, span, bucket)) {
      if (row.minute < first) continue;
      auto i = static_cast<std::size_t>((row.minute - first) / bucket.count());
      if (i >= n) continue;
      for (pages::Series& series : *out) {
        if (series.source != row.source || series.route != row.route) continue;
        series.buckets[i].add(row);
        series.total.add(row);
      }
    }
  }
  return html(Outcome::kOk, pages::overview(s.frame, data));
}

namespace {

// The console's jobs list query: ListQuery's parameters, and `project`, of the projects `op`
// sees. Returns the projects to list, or the reason the query is refused.
struct Filter {
  jobs::ListQuery query;
  std::vector<std::string> projects;
  FormFields shown;  // as the form shows it
  std::string error;
};

Filter filter_of(const config::Config& config, const config::Operator& op, std::string_view query) {
  Filter f;
  FormFields others;
  std::optional<FormFields> all = fields_of(query);
  if (!all) {
    f.error = "too many query parameters";
    return f;
  }
  for (const auto& [name, value] : *all) {
    // What the links and forms of the page carry on; never the CSRF token, which a URL would
    // show to logs and history.
    if (name != "cursor" && name != "notice" && name != "n" && name != "csrf") {
      f.shown.emplace_back(name, value);
    }
  }
  if (auto bad = read_list_query(query, f.query, &others)) {
    f.error = bad->first + ": " + bad->second;
    return f;
  }
  std::string project;
  for (const auto& [name, value] : others) {
    if (name == "project") {
      project = value;
    } else if (name != "csrf" && name != "notice" && name != "n") {
      f.error = name + ": unknown filter";
      return f;
    }
  }
  for (const config::Project& p : config.projects) {
    if (op.sees(p.id) && (project.empty() || project == p.id)) f.projects.push_back(p.id);
  }
  if (f.projects.empty()) f.error = "project: no such project";
  return f;
}

}  // namespace

Reply Console::jobs_page(jobs::Store& store, const Signed& s, std::string_view query) const {
  Filter f = filter_of(config_, *s.op, query);
  pages::JobList list;
  list.filter = f.shown;
  list.filter_query = query_of(f.shown);
  for (const config::Project& p : config_.projects) {
    if (s.op->sees(p.id)) list.projects.push_back(p.id);
  }
  for (const config::Source& src : config_.sources) {
    if (s.op->sees(src.project)) list.sources.push_back(src.name);
  }
  if (!f.error.empty()) {
    list.error = f.error;
    return html(Outcome::kValidationError, pages::job_list(s.frame, list));
  }
  // Newest first over every project listed: each project's next page, merged by id, which
  // orders jobs by when they were stored.
  bool more = false;
  for (const std::string& p : f.projects) {
    jobs::Page page = store.list(p, f.query);
    more = more || page.next.has_value();
    for (jobs::Job& j : page.jobs) list.jobs.push_back(std::move(j));
  }
  std::sort(list.jobs.begin(), list.jobs.end(),
            [](const jobs::Job& a, const jobs::Job& b) { return a.id > b.id; });
  if (list.jobs.size() > static_cast<std::size_t>(f.query.limit)) {
    list.jobs.resize(static_cast<std::size_t>(f.query.limit));
    more = true;
  }
  if (more && !list.jobs.empty()) {
    FormFields next = f.shown;
    next.emplace_back("cursor", list_cursor(list.jobs.back().id));
    list.next_query = query_of(next);
  }
  return html(Outcome::kOk, pages::job_list(s.frame, list));
}

Reply Console::job_page(jobs::Store& store, const Signed& s, const std::string& project,
                        const std::string& id) const {
  std::optional<jobs::JobView> view;
  if (s.op->sees(project) && text::is_uuid(id)) view = store.view(project, id, kShownAttempts);
  if (!view) {
    return html(Outcome::kJobNotFound, pages::message(s.frame, "Not found", "No such job."));
  }
  return html(Outcome::kOk, pages::job(s.frame, *view));
}

Reply Console::retry(jobs::Store& store, const Signed& s, const std::string& project,
                     const std::string& id) const {
  if (!s.op->sees(project)) {
    return html(Outcome::kJobNotFound, pages::message(s.frame, "Not found", "No such job."));
  }
  jobs::Changed changed = store.retry(project, id);
  if (changed.change == jobs::Change::kNotFound) {
    return html(Outcome::kJobNotFound, pages::message(s.frame, "Not found", "No such job."));
  }
  if (changed.change != jobs::Change::kDone) {
    return html(Outcome::kInvalidStatus,
                pages::message(s.frame, "Not retried",
                               changed.change == jobs::Change::kPruned
                                   ? "Retention removed its payload: it cannot run again."
                                   : "Only a dead or cancelled job can be retried."));
  }
  spdlog::info("console: operator={} client={} retried job={} project={}", s.op->name, s.client, id,
               project);
  return see_other(base_ + "/jobs/" + project + "/" + id + "?notice=retried");
}

Reply Console::bulk_retry(jobs::Store& store, const Signed& s, std::string_view query,
                          bool confirmed) const {
  Filter f = filter_of(config_, *s.op, query);
  if (!f.error.empty()) {
    return html(Outcome::kValidationError, pages::message(s.frame, "Retry dead jobs", f.error));
  }
  f.query.status = jobs::Status::kDead;
  f.query.retryable = true;
  f.query.after.reset();
  std::erase_if(f.shown, [](const auto& field) { return field.first == "status"; });
  f.shown.emplace_back("status", "dead");
  pages::JobList list;
  list.filter = f.shown;
  list.filter_query = query_of(f.shown);
  if (!confirmed) {
    std::int64_t count = 0;
    for (const std::string& p : f.projects) {
      count += store.count_jobs(p, f.query, kMaxBulkRetry + 1 - count);
      if (count > kMaxBulkRetry) break;
    }
    bool capped = count > kMaxBulkRetry;
    return html(Outcome::kOk,
                pages::retry_confirm(s.frame, list, std::min(count, kMaxBulkRetry), capped));
  }
  std::int64_t retried = 0;
  f.query.limit = 100;
  for (const std::string& p : f.projects) {
    jobs::ListQuery q = f.query;
    while (retried < kMaxBulkRetry) {
      jobs::Page page = store.list(p, q);
      for (const jobs::Job& j : page.jobs) {
        if (retried == kMaxBulkRetry) break;
        if (store.retry(p, j.id).change == jobs::Change::kDone) ++retried;
      }
      if (!page.next) break;
      q.after = page.next;
    }
  }
  spdlog::info("console: operator={} client={} retried {} dead jobs matching {}", s.op->name,
               s.client, retried, list.filter_query);
  return see_other(base_ + "/jobs?" + list.filter_query +
                   "&notice=bulk&n=" + std::to_string(retried));
}

Reply Console::route_action(jobs::Store& store, const Signed& s, const std::string& source,
                            const std::string& route, const std::string& action) const {
  const config::Source* src = nullptr;
  const config::Route* r = nullptr;
  for (const config::Source& candidate : config_.sources) {
    for (const config::Route& rt : candidate.routes) {
      if (candidate.name == source && rt.name == route && s.op->sees(candidate.project)) {
        src = &candidate;
        r = &rt;
      }
    }
  }
  if (r == nullptr) {
    return html(Outcome::kRouteNotFound, pages::message(s.frame, "Not found", "No such route."));
  }
  jobs::RouteId id{source, route};
  if (action == "pause" || action == "resume") {
    if (action == "pause") {
      store.pause_route(id);
    } else {
      store.resume_route(id);
    }
    spdlog::info("console: operator={} client={} {}d route {}.{}", s.op->name, s.client, action,
                 source, route);
    return see_other(base_ + "/?notice=" + action + "d");
  }
  jobs::ReplayFilter filter;
  filter.since = text::parse_rfc3339(value_of(s.form, "since"));
  filter.before = text::parse_rfc3339(value_of(s.form, "before"));
  if (!filter.since || !filter.before) {
    return html(Outcome::kValidationError,
                pages::message(s.frame, "Replay",
                               "A replay needs since and before as RFC 3339 date-times, e.g. "
                               "2026-12-03T10:00:00Z."));
  }
  std::string replay = jobs::new_job_id();
  // Logged first: a replay that fails part-way has still begun, and its id tells what it took.
  spdlog::info("console: operator={} client={} starts replay={} of route {}.{} from {} to {}",
               s.op->name, s.client, replay, source, route, value_of(s.form, "since"),
               value_of(s.form, "before"));
  try {
    if (!store.start_replay(replay, src->project, *src, *r, filter, kMaxReplayEvents)) {
      return html(Outcome::kValidationError,
                  pages::message(s.frame, "Replay",
                                 "More than " + std::to_string(kMaxReplayEvents) +
                                     " events match: narrow the time range."));
    }
  } catch (const jobs::Unavailable&) {
    return html(Outcome::kUnavailable,
                pages::message(s.frame, "Replay",
                               "The database failed during the replay. Replay " + replay +
                                   " holds what it took, if anything: GET /v1/replays/" + replay +
                                   " shows its progress."));
  }
  std::optional<jobs::Replay> started = store.replay(src->project, replay);
  return see_other(base_ + "/?notice=replay&n=" + std::to_string(started ? started->total : 0));
}

}  // namespace flare::gateway
