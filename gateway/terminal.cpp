#include "gateway/terminal.hpp"

#include <algorithm>
#include <array>

#include "text/text.hpp"

namespace flare::gateway {
namespace {

// The code points of `text`, each unprintable one (or broken UTF-8 byte) shown as "?".
std::vector<std::string> points(const std::string& text) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    std::size_t n = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    std::string one = text.substr(i, n);
    bool ok = text::printable_utf8_length(one).has_value();
    out.push_back(ok ? one : "?");
    i += ok ? n : 1;
  }
  return out;
}

// At most `max` code points, the last one "…" when the text was cut.
std::vector<std::string> cell(const std::string& text, std::size_t max) {
  std::vector<std::string> p = points(text);
  if (p.size() > max) {
    p.resize(max - 1);
    p.push_back("…");
  }
  return p;
}

std::string join(const std::vector<std::string>& p) {
  std::string out;
  for (const std::string& s : p) out += s;
  return out;
}

// Rows of ASCII cells in columns two spaces apart.
template <std::size_t N>
std::string aligned(const std::vector<std::array<std::string, N>>& rows) {
  std::array<std::size_t, N> width{};
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < N; ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < N; ++c) {
      line += row[c];
      if (c + 1 < N) line += std::string(width[c] - row[c].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace

std::string jobs_table(const std::vector<jobs::Job>& jobs) {
  constexpr std::size_t kColumns = 8;
  // Wide enough for a UUID, an RFC 3339 time and a useful part of a type, key or error.
  constexpr std::array<std::size_t, kColumns> kMax = {36, 20, 9, 8, 40, 40, 27, 60};
  std::vector<std::array<std::vector<std::string>, kColumns>> rows;
  rows.push_back({points("ID"), points("PROJECT"), points("STATUS"), points("ATTEMPTS"),
                  points("TYPE"), points("KEY"), points("UPDATED"), points("LAST ERROR")});
  for (const jobs::Job& j : jobs) {
    std::array<std::string, kColumns> fields = {
        j.id,
        j.project_id,
        std::string(jobs::to_string(j.status)),
        std::to_string(j.attempts) + "/" + std::to_string(j.max_attempts),
        j.type,
        j.idempotency_key.value_or("-"),
        j.updated_at,
        j.last_error.value_or("-")};
    std::array<std::vector<std::string>, kColumns> row;
    for (std::size_t c = 0; c < kColumns; ++c) row[c] = cell(fields[c], kMax[c]);
    rows.push_back(std::move(row));
  }
  std::array<std::size_t, kColumns> width{};
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < kColumns; ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < kColumns; ++c) {
      line += join(row[c]);
      if (c + 1 < kColumns) line += std::string(width[c] - row[c].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string job_details(const jobs::JobView& view) {
  const jobs::Job& j = view.job;
  auto optional = [](const std::optional<std::string>& v) { return v ? join(points(*v)) : "-"; };
  std::string out;
  auto line = [&out](const char* name, const std::string& value) {
    out += std::string(name) + ": " + value + "\n";
  };
  line("id", j.id);
  line("project", j.project_id);
  line("status", std::string(jobs::to_string(j.status)));
  line("type", join(points(j.type)));
  line("idempotency_key", optional(j.idempotency_key));
  line("source", optional(j.source));
  line("event_id", optional(j.event_id));
  line("attempts", j.pushed ? std::to_string(j.attempts) + " over its routes"
                            : std::to_string(j.attempts) + " of " + std::to_string(j.max_attempts));
  line("priority", std::to_string(j.priority));
  line("last_error", optional(j.last_error));
  line("created_at", j.created_at);
  line("updated_at", j.updated_at);
  line("run_at", j.run_at);
  line("completed_at", j.completed_at.value_or("-"));
  line("locked_until", j.locked_until.value_or("-"));
  line("content_type", join(points(j.content_type)));
  if (j.pushed) {
    out += "deliveries:" + std::string(view.deliveries.empty() ? " none (no route takes it)" : "") +
           "\n";
    for (const jobs::Delivery& d : view.deliveries) {
      out += "  " + d.route + ": " + std::string(jobs::to_string(d.status)) + ", attempts " +
             std::to_string(d.attempts) + " of " + std::to_string(d.max_attempts) + ", run_at " +
             d.run_at + ", last_error " + optional(d.last_error) + "\n";
    }
    if (!view.attempts.empty()) out += "attempts, newest first:\n";
    for (const jobs::AttemptRecord& a : view.attempts) {
      out += "  " + a.started_at + " " + a.route + " #" + std::to_string(a.number) + " " +
             std::to_string(a.duration_ms) +
             " ms: " + (a.error ? join(points(*a.error)) : "succeeded");
      if (a.status_code && !a.error) out += " (HTTP " + std::to_string(*a.status_code) + ")";
      if (!a.response.empty()) out += " | " + join(cell(a.response, 120));
      out += "\n";
    }
  }
  // Newlines and tabs are control characters but belong to readable payloads.
  std::string visible = j.payload;
  visible.erase(std::remove_if(visible.begin(), visible.end(),
                               [](char c) { return c == '\n' || c == '\r' || c == '\t'; }),
                visible.end());
  if (j.pruned_at) {
    out += "payload: removed by retention at " + *j.pruned_at + "\n";
  } else if (text::printable_utf8_length(visible)) {
    out += "payload (" + std::to_string(j.payload.size()) + " bytes):\n" + j.payload + "\n";
  } else {
    out += "payload: " + std::to_string(j.payload.size()) + " bytes, not printable text\n";
  }
  return out;
}

std::string routes_table(const std::vector<jobs::RouteState>& routes) {
  std::vector<std::array<std::string, 6>> rows = {
      {"ROUTE", "STATE", "FAILURES", "WAITING", "RUNNING", "REASON"}};
  for (const jobs::RouteState& r : routes) {
    std::string state = r.state;
    if (r.state == "open" && r.opened_until) state += " until " + *r.opened_until;
    rows.push_back({r.source + "." + r.route, state, std::to_string(r.failures),
                    std::to_string(r.waiting), std::to_string(r.running),
                    r.reason ? join(cell(*r.reason, 60)) : "-"});
  }
  return aligned(rows);
}

std::string prune_report(const std::vector<jobs::PruneScope>& scopes,
                         const std::vector<jobs::Pruned>& pruned, bool dry_run) {
  std::vector<std::array<std::string, 5>> rows = {
      {"PROJECT", "SOURCES", "PAYLOADS", "DEAD PAYLOADS", "ROWS"}};
  std::int64_t payloads = 0, rows_deleted = 0;
  for (std::size_t i = 0; i < scopes.size(); ++i) {
    std::string sources;
    for (const std::string& s : scopes[i].sources)
      sources.append(sources.empty() ? "" : ",").append(s);
    if (scopes[i].others) sources = sources.empty() ? "all" : "all but " + sources;
    rows.push_back({scopes[i].project, sources, std::to_string(pruned[i].payloads),
                    std::to_string(pruned[i].dead_payloads), std::to_string(pruned[i].rows)});
    payloads += pruned[i].payloads + pruned[i].dead_payloads;
    rows_deleted += pruned[i].rows;
  }
  return aligned(rows) + (dry_run ? "would empty " : "emptied ") + std::to_string(payloads) +
         " payloads and " + (dry_run ? "delete " : "deleted ") + std::to_string(rows_deleted) +
         " jobs\n";
}

std::string replay_text(const jobs::Replay& r) {
  return "replay " + r.id + " to " + r.source + "." + r.route + ", started " + r.created_at + ": " +
         r.status + "\n" + std::to_string(r.total) + " events: " + std::to_string(r.succeeded) +
         " succeeded, " + std::to_string(r.dead) + " dead, " + std::to_string(r.cancelled) +
         " cancelled, " + std::to_string(r.waiting) + " waiting, " + std::to_string(r.running) +
         " running\n";
}

}  // namespace flare::gateway
