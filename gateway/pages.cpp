#include "gateway/pages.hpp"

#include <rapidjson/memorystream.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>
#include <cstdio>

#include "text/text.hpp"

namespace flare::gateway::pages {
namespace {

// The most of a payload a job's page shows.
constexpr std::size_t kShownPayload = 64 << 10;

std::string head(std::string_view base, std::string_view title) {
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
         "content=\"width=device-width, initial-scale=1\"><title>" +
         escape(title) + " · Flare Gateway</title><link rel=\"stylesheet\" href=\"" + escape(base) +
         "/style.css\"></head><body>";
}

// A form that POSTs to `action` with the session's CSRF token, and a button.
std::string post_button(const Frame& f, std::string_view action, std::string_view id,
                        std::string_view label, std::string_view fields = {}) {
  std::string out =
      "<form method=\"post\" class=\"inline\" action=\"" + escape(f.base) + escape(action) + "\"";
  if (!id.empty()) out += " id=\"" + escape(id) + "\"";
  return out + "><input type=\"hidden\" name=\"csrf\" value=\"" + escape(f.csrf) + "\">" +
         std::string(fields) + "<button type=\"submit\">" + escape(label) + "</button></form>";
}

std::string page(const Frame& f, std::string_view title, std::string_view content) {
  std::string out = head(f.base, title);
  out += "<header><nav><a class=\"brand\" href=\"" + escape(f.base) +
         "/\">Flare Gateway</a><a href=\"" + escape(f.base) + "/\">Overview</a><a href=\"" +
         escape(f.base) + "/jobs\">Jobs</a></nav><div class=\"who\">" + escape(f.operator_name) +
         (f.read_only ? " (read-only)" : "") + post_button(f, "/logout", "logout", "Sign out") +
         "</div></header><main><h1>" + escape(title) + "</h1>";
  if (!f.notice.empty()) out += "<p class=\"notice\">" + escape(f.notice) + "</p>";
  return out.append(content).append("</main></body></html>\n");
}

std::string number(std::int64_t n) { return std::to_string(n); }

// A count that stopped at kCountedUpTo says so.
std::string counted(std::int64_t n) {
  return n >= kCountedUpTo ? number(kCountedUpTo) + " or more" : number(n);
}

std::string status_badge(std::string_view status) {
  return "<span class=\"badge " + escape(status) + "\">" + escape(status) + "</span>";
}

// The duration bucket that holds quantile q of an attempts' histogram; nullopt without attempts.
std::optional<std::size_t> quantile_bucket(const jobs::TrafficRow& row, double q) {
  std::int64_t total = 0;
  for (std::int64_t c : row.durations) total += c;
  if (total == 0) return std::nullopt;
  std::int64_t seen = 0;
  for (std::size_t i = 0; i < row.durations.size(); ++i) {
    seen += row.durations[i];
    if (static_cast<double>(seen) >= q * static_cast<double>(total)) return i;
  }
  return row.durations.size() - 1;
}

// Quantile q as its bucket's upper bound.
std::string quantile(const jobs::TrafficRow& row, double q) {
  std::optional<std::size_t> i = quantile_bucket(row, q);
  if (!i) return "-";
  if (*i == jobs::kTrafficDurationBounds.size()) {
    return "> " + number(jobs::kTrafficDurationBounds.back()) + " ms";
  }
  return "≤ " + number(jobs::kTrafficDurationBounds[*i]) + " ms";
}

// Bars of `series`' buckets: received and refused for a source, succeeded and failed for a
// route, stacked; labelled at the first bucket and now.
std::string chart(const Series& series, std::string_view span) {
  constexpr int kWidth = 360, kHeight = 90, kTop = 14;
  bool route = !series.route.empty();
  std::int64_t most = 1;
  for (const jobs::TrafficRow& b : series.buckets) {
    most = std::max(most, route ? b.succeeded + b.failed : b.received + b.duplicates + b.rejected);
  }
  double slot = static_cast<double>(kWidth) / static_cast<double>(series.buckets.size());
  std::string name = series.source + (route ? " → " + series.route : "");
  std::string out = "<svg class=\"chart\" role=\"img\" viewBox=\"0 0 " + number(kWidth) + " " +
                    number(kHeight + 14) + "\" width=\"" + number(kWidth) + "\" height=\"" +
                    number(kHeight + 14) + "\"><title>" + escape(name) + ", " + escape(span) +
                    "</title>";
  char buf[256];
  for (std::size_t i = 0; i < series.buckets.size(); ++i) {
    const jobs::TrafficRow& b = series.buckets[i];
    std::int64_t good = route ? b.succeeded : b.received + b.duplicates;
    std::int64_t bad = route ? b.failed : b.rejected;
    double x = slot * static_cast<double>(i) + 1;
    double scale = static_cast<double>(kHeight - kTop) / static_cast<double>(most);
    double good_h = static_cast<double>(good) * scale, bad_h = static_cast<double>(bad) * scale;
    std::snprintf(buf, sizeof buf,
                  "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#3b82f6\"/>",
                  x, kHeight - good_h, slot - 2, good_h);
    out += buf;
    if (bad > 0) {
      std::snprintf(buf, sizeof buf,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#dc2626\"/>",
                    x, kHeight - good_h - bad_h, slot - 2, bad_h);
      out += buf;
    }
  }
  // A route's latency: each bucket's p99, a line over the bars on a scale of its own (the
  // histogram's bucket index, as its bounds grow roughly geometrically).
  if (route) {
    std::string points;
    std::size_t highest = 0;
    for (std::size_t i = 0; i < series.buckets.size(); ++i) {
      std::optional<std::size_t> b = quantile_bucket(series.buckets[i], 0.99);
      if (!b) continue;
      highest = std::max(highest, *b);
      double y = kHeight - static_cast<double>(*b + 1) * (kHeight - kTop) /
                               static_cast<double>(jobs::kTrafficDurationBounds.size() + 1);
      std::snprintf(buf, sizeof buf, "%.1f,%.1f ", slot * (static_cast<double>(i) + 0.5), y);
      points += buf;
    }
    if (!points.empty()) {
      out += "<polyline class=\"p99\" points=\"" + points +
             "\" fill=\"none\" stroke=\"#f59e0b\" stroke-width=\"2\"/><text x=\"" + number(kWidth) +
             "\" y=\"10\" font-size=\"10\" fill=\"#b45309\" " + "text-anchor=\"end\">p99 up to " +
             (highest == jobs::kTrafficDurationBounds.size()
                  ? "> " + number(jobs::kTrafficDurationBounds.back())
                  : "≤ " + number(jobs::kTrafficDurationBounds[highest])) +
             " ms</text>";
    }
  }
  out += "<line x1=\"0\" y1=\"" + number(kHeight) + "\" x2=\"" + number(kWidth) + "\" y2=\"" +
         number(kHeight) + "\" stroke=\"#9ca3af\"/><text x=\"0\" y=\"10\" font-size=\"10\" " +
         "fill=\"#374151\">most in a bucket: " + number(most) + "</text><text x=\"0\" y=\"" +
         number(kHeight + 12) + "\" font-size=\"10\" fill=\"#6b7280\">" + escape(span) +
         " ago</text><text x=\"" + number(kWidth) + "\" y=\"" + number(kHeight + 12) +
         "\" font-size=\"10\" fill=\"#6b7280\" text-anchor=\"end\">now</text></svg>";
  return out;
}

std::string traffic_table(const std::vector<Series>& all, std::string_view span,
                          std::string_view id) {
  std::string out = "<table id=\"" + escape(id) +
                    "\"><thead><tr><th>source / route</th><th>received</th><th>duplicates</th>"
                    "<th>refused</th><th>attempts succeeded</th><th>attempts failed</th>"
                    "<th>p50</th><th>p99</th>"
                    "<th>" +
                    escape(span) + "</th></tr></thead><tbody>";
  for (const Series& s : all) {
    bool route = !s.route.empty();
    const jobs::TrafficRow& t = s.total;
    out += "<tr data-series=\"" + escape(s.source + (route ? "/" + s.route : "")) + "\"><td>" +
           escape(route ? s.source + " → " + s.route : s.source) + "</td>";
    if (route) {
      out += "<td></td><td></td><td></td><td class=\"succeeded\">" + number(t.succeeded) +
             "</td><td class=\"failed\">" + number(t.failed) + "</td><td>" + quantile(t, 0.5) +
             "</td><td>" + quantile(t, 0.99) + "</td>";
    } else {
      out += "<td class=\"received\">" + number(t.received) + "</td><td>" + number(t.duplicates) +
             "</td><td class=\"refused\">" + number(t.rejected) +
             "</td><td></td><td></td><td></td>"
             "<td></td>";
    }
    out += "<td>" + chart(s, span) + "</td></tr>";
  }
  if (all.empty()) out += "<tr><td colspan=\"9\">No source is configured.</td></tr>";
  return out + "</tbody></table>";
}

// Writes numbers as they were read (RapidJSON 1.1's writer would quote a raw number).
struct NumbersAsWritten : rapidjson::PrettyWriter<rapidjson::StringBuffer> {
  using PrettyWriter::PrettyWriter;
  bool RawNumber(const char* text, rapidjson::SizeType length, bool) {
    return RawValue(text, length, rapidjson::kNumberType);
  }
};

// A payload as a page shows it: pretty-printed JSON; else printable text; else the bytes in hex.
// At most kShownPayload bytes.
std::string payload_view(const jobs::Job& job) {
  if (job.pruned_at) {
    return "<p>Retention removed the payload at " + escape(*job.pruned_at) + ".</p>";
  }
  // Cut where a UTF-8 character begins, so that text cut short is still text.
  std::size_t cut_at = std::min(job.payload.size(), kShownPayload);
  while (cut_at > 0 && cut_at < job.payload.size() &&
         (static_cast<unsigned char>(job.payload[cut_at]) & 0xC0) == 0x80) {
    --cut_at;
  }
  std::string_view shown = std::string_view(job.payload).substr(0, cut_at);
  std::string cut = cut_at < job.payload.size()
                        ? "<p>The first " + number(static_cast<std::int64_t>(cut_at)) + " of " +
                              number(static_cast<std::int64_t>(job.payload.size())) + " bytes.</p>"
                        : "";
  if (cut.empty()) {
    // Iteratively, and numbers as they were written: a payload nested thousands deep or holding
    // integers past 2^53 is shown as sent.
    rapidjson::StringBuffer buffer;
    NumbersAsWritten writer(buffer);
    writer.SetIndent(' ', 2);
    rapidjson::Reader reader;
    rapidjson::MemoryStream stream(shown.data(), shown.size());
    constexpr unsigned kFlags = rapidjson::kParseIterativeFlag |
                                rapidjson::kParseValidateEncodingFlag |
                                rapidjson::kParseNumbersAsStringsFlag;
    if (!reader.Parse<kFlags>(stream, writer).IsError()) {
      return "<pre id=\"payload\" class=\"json\">" +
             escape(std::string_view(buffer.GetString(), buffer.GetSize())) + "</pre>";
    }
  }
  // Text: printable UTF-8 and line breaks and tabs.
  std::string flat(shown);
  std::replace_if(
      flat.begin(), flat.end(), [](char c) { return c == '\n' || c == '\r' || c == '\t'; }, ' ');
  if (text::printable_utf8_length(flat)) {
    return cut + "<pre id=\"payload\">" + escape(shown) + "</pre>";
  }
  std::string hex;
  for (std::size_t i = 0; i < shown.size(); i += 32) {
    hex += text::to_hex(shown.substr(i, 32)) + "\n";
  }
  return cut + "<p>Not text: the bytes in hexadecimal.</p><pre id=\"payload\">" + hex + "</pre>";
}

std::string field(std::string_view name, std::string_view value) {
  return "<dt>" + escape(name) + "</dt><dd>" + escape(value) + "</dd>";
}

}  // namespace

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string login(std::string_view base, std::string_view error) {
  std::string out = head(base, "Sign in");
  out += "<main class=\"login\"><h1>Flare Gateway</h1>";
  if (!error.empty()) out += "<p class=\"error\">" + escape(error) + "</p>";
  out += "<form method=\"post\" id=\"login\" action=\"" + escape(base) +
         "/login\"><label>Operator token <input type=\"password\" name=\"token\" "
         "autocomplete=\"current-password\" required autofocus></label><button "
         "type=\"submit\">Sign in</button></form></main></body></html>\n";
  return out;
}

std::string message(const Frame& frame, std::string_view title, std::string_view text) {
  return page(frame, title, "<p class=\"error\">" + escape(text) + "</p>");
}

std::string overview(const Frame& f, const Overview& data) {
  const jobs::QueueSummary& q = data.queue;
  std::string out =
      "<section id=\"queue\"><h2>Queue</h2><table><thead><tr><th></th><th>waiting</th>"
      "<th>running</th><th>longest due</th></tr></thead><tbody>";
  for (auto [name, waiting, running, oldest] :
       {std::tuple{"pushed deliveries", q.push_waiting, q.push_running, q.push_oldest_due_seconds},
        std::tuple{"pulled jobs", q.pull_waiting, q.pull_running, q.pull_oldest_due_seconds}}) {
    char due[32];
    std::snprintf(due, sizeof due, "%.1f s", oldest);
    out += "<tr><td>" + std::string(name) + "</td><td class=\"waiting\">" + counted(waiting) +
           "</td><td>" + counted(running) + "</td><td>" + due + "</td></tr>";
  }
  out += "</tbody></table><p>Dead jobs whose payload is kept: <a id=\"dead\" href=\"" +
         escape(f.base) + "/jobs?status=dead\">" + counted(q.dead) + "</a></p></section>";

  out +=
      "<section><h2>Routes</h2><table id=\"routes\"><thead><tr><th>project</th><th>source</th>"
      "<th>route</th><th>state</th><th>why</th><th>failures in a row</th><th>waiting</th>"
      "<th>in flight</th><th></th></tr></thead><tbody>";
  for (const RouteLine& line : data.routes) {
    const jobs::RouteState& r = line.state;
    std::string at = "/routes/" + r.source + "/" + r.route;
    out += "<tr data-route=\"" + escape(r.source + "/" + r.route) + "\"><td>" +
           escape(line.project) + "</td><td>" + escape(r.source) + "</td><td>" + escape(r.route) +
           "</td><td class=\"state\">" + status_badge(r.state) + "</td><td class=\"reason\">" +
           escape(r.reason.value_or("")) + "</td><td class=\"failures\">" + number(r.failures) +
           "</td><td>" + counted(r.waiting) + "</td><td>" + counted(r.running) + "</td><td>";
    if (!f.read_only) {
      out += r.state == "paused" ? post_button(f, at + "/resume", "", "Resume")
                                 : post_button(f, at + "/pause", "", "Pause");
      out += post_button(
          f, at + "/replay", "", "Replay",
          "<input type=\"text\" name=\"since\" placeholder=\"since (RFC 3339)\" required>"
          "<input type=\"text\" name=\"before\" placeholder=\"before (RFC 3339)\" required>");
    }
    out += "</td></tr>";
  }
  if (data.routes.empty()) out += "<tr><td colspan=\"9\">No source pushes to a route.</td></tr>";
  out += "</tbody></table></section>";

  out += "<section><h2>Last hour</h2>" + traffic_table(data.hour, "1 hour", "traffic-hour") +
         "</section><section><h2>Last day</h2>" + traffic_table(data.day, "1 day", "traffic-day") +
         "</section>";
  return page(f, "Overview", out);
}

std::string job_list(const Frame& f, const JobList& list) {
  auto value = [&](std::string_view name) {
    for (const auto& [n, v] : list.filter) {
      if (n == name) return v;
    }
    return std::string();
  };
  auto select = [&](std::string_view name, const std::vector<std::string>& choices) {
    std::string out = "<label>" + escape(name) + " <select name=\"" + escape(name) +
                      "\"><option value=\"\">any</option>";
    for (const std::string& c : choices) {
      out += "<option" + std::string(c == value(name) ? " selected" : "") + ">" + escape(c) +
             "</option>";
    }
    return out + "</select></label>";
  };
  std::vector<std::string> statuses;
  for (jobs::Status s : jobs::kStatuses) statuses.emplace_back(jobs::to_string(s));
  std::string out = "<form method=\"get\" id=\"filter\" action=\"" + escape(f.base) + "/jobs\">" +
                    select("project", list.projects) + select("source", list.sources) +
                    "<label>type <input type=\"text\" name=\"type\" value=\"" +
                    escape(value("type")) + "\"></label>" + select("status", statuses) +
                    "<label>since <input type=\"text\" name=\"since\" placeholder=\"RFC 3339\" "
                    "value=\"" +
                    escape(value("since")) +
                    "\"></label><label>before <input type=\"text\" name=\"before\" "
                    "placeholder=\"RFC 3339\" value=\"" +
                    escape(value("before")) + "\"></label><button type=\"submit\">Filter</button>";
  if (!f.read_only) {
    out += "<a id=\"retry-dead\" href=\"" + escape(f.base) + "/retry?" + escape(list.filter_query) +
           "\">Retry the dead jobs of this filter…</a>";
  }
  out += "</form>";
  if (!list.error.empty()) out += "<p class=\"error\">" + escape(list.error) + "</p>";
  out +=
      "<table id=\"jobs\"><thead><tr><th>stored</th><th>project</th><th>source</th>"
      "<th>type</th><th>event</th><th>status</th><th>attempts</th><th>last error</th></tr>"
      "</thead><tbody>";
  for (const jobs::Job& j : list.jobs) {
    out += "<tr data-job-id=\"" + escape(j.id) + "\"><td><a class=\"job\" href=\"" +
           escape(f.base) + "/jobs/" + escape(j.project_id) + "/" + escape(j.id) + "\">" +
           escape(j.created_at) + "</a></td><td>" + escape(j.project_id) + "</td><td>" +
           escape(j.source.value_or("")) + "</td><td>" + escape(j.type) + "</td><td>" +
           escape(j.event_id.value_or("")) + "</td><td>" + status_badge(jobs::to_string(j.status)) +
           "</td><td>" + number(j.attempts) + "/" + number(j.max_attempts) +
           "</td><td class=\"error-text\">" +
           escape(text::printable_prefix(j.last_error.value_or(""), 120)) + "</td></tr>";
  }
  if (list.jobs.empty()) out += "<tr><td colspan=\"8\">No job matches.</td></tr>";
  out += "</tbody></table>";
  if (!list.next_query.empty()) {
    out += "<p><a class=\"next\" href=\"" + escape(f.base) + "/jobs?" + escape(list.next_query) +
           "\">Older jobs →</a></p>";
  }
  return page(f, "Jobs", out);
}

std::string job(const Frame& f, const jobs::JobView& view) {
  const jobs::Job& j = view.job;
  std::string out = "<dl id=\"job\">" + field("id", j.id) + field("project", j.project_id) +
                    field("source", j.source.value_or("-")) + field("type", j.type) +
                    field("event id", j.event_id.value_or("-")) +
                    field("idempotency key", j.idempotency_key.value_or("-")) +
                    "<dt>status</dt><dd class=\"status\">" +
                    status_badge(jobs::to_string(j.status)) + "</dd>" +
                    field("attempts", number(j.attempts) + " of " + number(j.max_attempts)) +
                    field("stored", j.created_at) + field("due", j.run_at) +
                    field("last error", j.last_error.value_or("-")) +
                    field("content type", j.content_type) + "</dl>";
  bool retryable = j.status == jobs::Status::kDead || j.status == jobs::Status::kCancelled;
  if (retryable && !f.read_only && !j.pruned_at) {
    out += post_button(f, "/jobs/" + j.project_id + "/" + j.id + "/retry", "retry", "Retry");
  }
  out +=
      "<p class=\"hint\">Headers are not kept: the gateway stores the body, its content type, "
      "the source and the event's id and type.</p><h2>Payload</h2>" +
      payload_view(j);
  if (!view.deliveries.empty()) {
    out +=
        "<h2>Deliveries</h2><table id=\"deliveries\"><thead><tr><th>route</th><th>status</th>"
        "<th>attempts</th><th>due</th><th>last error</th></tr></thead><tbody>";
    for (const jobs::Delivery& d : view.deliveries) {
      out += "<tr data-route=\"" + escape(d.route) + "\"><td>" + escape(d.route) + "</td><td>" +
             status_badge(jobs::to_string(d.status)) + "</td><td>" + number(d.attempts) + "/" +
             number(d.max_attempts) + "</td><td>" + escape(d.run_at) + "</td><td>" +
             escape(d.last_error.value_or("")) + "</td></tr>";
    }
    out += "</tbody></table>";
    out +=
        "<h2>Attempts</h2><table id=\"attempts\"><thead><tr><th>started</th><th>route</th>"
        "<th>#</th><th>status</th><th>took</th><th>error</th><th>answer's first bytes</th>"
        "</tr></thead><tbody>";
    for (const jobs::AttemptRecord& a : view.attempts) {
      out += "<tr class=\"attempt\"><td>" + escape(a.started_at) + "</td><td>" + escape(a.route) +
             "</td><td>" + number(a.number) + "</td><td class=\"status-code\">" +
             (a.status_code ? number(*a.status_code) : "-") + "</td><td class=\"duration\">" +
             number(a.duration_ms) + " ms</td><td>" + escape(a.error.value_or("")) +
             "</td><td class=\"response\"><code>" + escape(a.response) + "</code></td></tr>";
    }
    if (view.attempts.empty()) out += "<tr><td colspan=\"7\">No attempt yet.</td></tr>";
    out += "</tbody></table>";
  }
  return page(f, "Job " + j.id, out);
}

std::string retry_confirm(const Frame& f, const JobList& list, std::int64_t count, bool capped) {
  std::string fields;
  for (const auto& [name, value] : list.filter) {
    fields +=
        "<input type=\"hidden\" name=\"" + escape(name) + "\" value=\"" + escape(value) + "\">";
  }
  std::string n = (capped ? "at least " : "") + number(count);
  std::string out = "<p id=\"retry-count\">" + escape(n) + " dead job" + (count == 1 ? "" : "s") +
                    " match this filter" +
                    (capped ? "; one confirmation retries " + number(count) + " of them" : "") +
                    ".</p>";
  if (count > 0 && !f.read_only) {
    out += post_button(f, "/retry", "retry-confirm",
                       "Retry " + number(count) + " job" + (count == 1 ? "" : "s"), fields);
  }
  out += "<p><a href=\"" + escape(f.base) + "/jobs?" + escape(list.filter_query) +
         "\">Back to the jobs</a></p>";
  return page(f, "Retry dead jobs", out);
}

}  // namespace flare::gateway::pages
