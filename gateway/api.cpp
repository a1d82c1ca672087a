#include "gateway/api.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>

#include "jobs/enqueue.hpp"
#include "jobs/retry.hpp"
#include "providers/hmac.hpp"
#include "text/text.hpp"

namespace flare::gateway {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr std::size_t kMaxTokenLength = 512;
constexpr std::size_t kMaxErrorLength = 10'000;
constexpr int kMaxListLimit = 500;
constexpr int kDefaultListLimit = 50;
constexpr int kMaxClaim = 100;
// A long-polling claim's longest wait: under the minute proxies allow an answer by default.
constexpr int kMaxClaimWaitSeconds = 30;
constexpr std::size_t kMaxClaimTypes = 100;
constexpr int kMaxLeaseSeconds = 86'400;
constexpr int kMaxPriority = 1000;
// GET /v1/jobs/{id} shows a pushed job's latest attempts, over all its routes, up to this many.
constexpr int kMaxShownAttempts = 100;
// A replay sends at most this many events again; a wider filter is refused.
constexpr std::int64_t kMaxReplayEvents = 100'000;
constexpr std::size_t kMaxReplayTypes = 100;

Reply invalid(std::string_view field, std::string_view message) {
  return error(Outcome::kValidationError, message, {{"field", field}});
}

ApiPlan answer(Reply reply) {
  ApiPlan plan;
  plan.reply = std::move(reply);
  return plan;
}

// The cursor is opaque to clients: the id of the last job listed, as hex. Ids begin with the
// time they were made, so the listing resumes below it.
std::string encode_cursor(const std::string& id) { return text::to_hex(id); }

std::optional<std::string> decode_cursor(std::string_view hex) {
  if (hex.size() > 200) return std::nullopt;
  std::optional<std::string> id = text::from_hex(hex);
  if (!id || !text::is_uuid(*id)) return std::nullopt;
  return id;
}

void string(Writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void optional(Writer& w, const std::optional<std::string>& s) {
  if (s) {
    string(w, *s);
  } else {
    w.Null();
  }
}

// SPEC §5's job object, left open for more members; `claimed` adds the attempt number and the
// lease token.
void write_job_members(Writer& w, const jobs::Job& job, bool claimed) {
  string(w, "id");
  string(w, job.id);
  string(w, "type");
  string(w, job.type);
  string(w, "status");
  string(w, jobs::to_string(job.status));
  string(w, "attempts");
  w.Int(job.attempts);
  string(w, "max_attempts");
  w.Int(job.max_attempts);
  string(w, "priority");
  w.Int(job.priority);
  string(w, "idempotency_key");
  optional(w, job.idempotency_key);
  // The stored bytes are shown as JSON when they are JSON, else as base64; a pruned job has
  // none.
  rapidjson::Document parsed;
  if (!job.pruned_at) {
    parsed.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(
        job.payload.data(), job.payload.size());
  }
  if (job.pruned_at) {
    string(w, "payload");
    w.Null();
  } else if (!parsed.HasParseError()) {
    string(w, "payload");
    w.RawValue(job.payload.data(), job.payload.size(), parsed.GetType());
  } else {
    string(w, "payload_base64");
    string(w, text::to_base64(job.payload));
  }
  string(w, "content_type");
  string(w, job.content_type);
  string(w, "last_error");
  optional(w, job.last_error);
  string(w, "source");
  optional(w, job.source);
  string(w, "event_id");
  optional(w, job.event_id);
  string(w, "created_at");
  string(w, job.created_at);
  string(w, "updated_at");
  string(w, job.updated_at);
  string(w, "run_at");
  string(w, job.run_at);
  string(w, "completed_at");
  optional(w, job.completed_at);
  string(w, "locked_until");
  optional(w, job.locked_until);
  string(w, "pushed");
  w.Bool(job.pushed);
  string(w, "pruned_at");
  optional(w, job.pruned_at);
  if (claimed) {
    string(w, "attempt");
    w.Int(job.attempts);
    string(w, "lease_token");
    optional(w, job.lease_token);
  }
}

void write_job(Writer& w, const jobs::Job& job, bool claimed) {
  w.StartObject();
  write_job_members(w, job, claimed);
  w.EndObject();
}

std::string job_json(const jobs::Job& job) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  write_job(w, job, false);
  return std::string(buffer.GetString(), buffer.GetSize());
}

void write_attempt(Writer& w, const jobs::AttemptRecord& a) {
  w.StartObject();
  string(w, "number");
  w.Int(a.number);
  string(w, "started_at");
  string(w, a.started_at);
  string(w, "duration_ms");
  w.Int64(a.duration_ms);
  string(w, "status_code");
  if (a.status_code) {
    w.Int(*a.status_code);
  } else {
    w.Null();
  }
  string(w, "error");
  optional(w, a.error);
  string(w, "response");
  string(w, a.response);
  w.EndObject();
}

// The job; a pushed one's each delivery with its attempts among those shown, newest first.
std::string view_json(const jobs::JobView& view) {
  if (!view.job.pushed) return job_json(view.job);
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  write_job_members(w, view.job, false);
  string(w, "deliveries");
  w.StartArray();
  for (const jobs::Delivery& d : view.deliveries) {
    w.StartObject();
    string(w, "route");
    string(w, d.route);
    string(w, "status");
    string(w, jobs::to_string(d.status));
    string(w, "attempts");
    w.Int(d.attempts);
    string(w, "max_attempts");
    w.Int(d.max_attempts);
    string(w, "last_error");
    optional(w, d.last_error);
    string(w, "created_at");
    string(w, d.created_at);
    string(w, "updated_at");
    string(w, d.updated_at);
    string(w, "run_at");
    string(w, d.run_at);
    string(w, "completed_at");
    optional(w, d.completed_at);
    string(w, "history");
    w.StartArray();
    for (const jobs::AttemptRecord& a : view.attempts) {
      if (a.route == d.route) write_attempt(w, a);
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

Reply changed_reply(const jobs::Changed& c) {
  switch (c.change) {
    case jobs::Change::kDone:
      return success(Outcome::kOk, job_json(*c.job));
    case jobs::Change::kNotFound:
      return error(Outcome::kJobNotFound);
    case jobs::Change::kWrongStatus:
      return error(Outcome::kInvalidStatus,
                   "the job is " + std::string(jobs::to_string(c.job->status)),
                   {{"status", jobs::to_string(c.job->status)}});
    case jobs::Change::kLeaseLost:
      return error(Outcome::kLeaseLost, {}, {{"status", jobs::to_string(c.job->status)}});
    case jobs::Change::kPruned:
      return error(Outcome::kPayloadPruned, "the payload was removed at " + *c.job->pruned_at,
                   {{"pruned_at", *c.job->pruned_at}});
  }
  return error(Outcome::kInternal);
}

std::string lowered(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// A JSON object body, parsed without recursion; nullopt for anything else.
std::optional<rapidjson::Document> parse_object(const std::string& body) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(body.data(),
                                                                                    body.size());
  if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
  return doc;
}

// Names every member that is not in `allowed`: a misspelt field must not be ignored silently.
std::optional<Reply> unknown_members(const rapidjson::Value& object,
                                     std::initializer_list<std::string_view> allowed) {
  for (const auto& m : object.GetObject()) {
    std::string_view name(m.name.GetString(), m.name.GetStringLength());
    bool known = false;
    for (std::string_view a : allowed) known = known || a == name;
    if (!known) return invalid(name, "unknown field");
  }
  return std::nullopt;
}

const rapidjson::Value* member(const rapidjson::Value& object, const char* name) {
  auto it = object.FindMember(name);
  return it == object.MemberEnd() || it->value.IsNull() ? nullptr : &it->value;
}

// An integer member within [min, max], or its default when absent.
std::optional<Reply> read_int(const rapidjson::Value& object, const char* name, int min, int max,
                              int& out) {
  const rapidjson::Value* v = member(object, name);
  if (v == nullptr) return std::nullopt;
  if (!v->IsInt() || v->GetInt() < min || v->GetInt() > max) {
    return invalid(name,
                   "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
  }
  out = v->GetInt();
  return std::nullopt;
}

std::optional<Reply> read_token(const rapidjson::Value& object, std::string& out) {
  const rapidjson::Value* v = member(object, "lease_token");
  if (v == nullptr || !v->IsString() || !text::is_uuid(v->GetString())) {
    return invalid("lease_token", "required: the lease token the claim returned");
  }
  out = v->GetString();
  return std::nullopt;
}

void write_route_state(Writer& w, const jobs::RouteState& r) {
  w.StartObject();
  string(w, "source");
  string(w, r.source);
  string(w, "route");
  string(w, r.route);
  string(w, "state");
  string(w, r.state);
  string(w, "reason");
  optional(w, r.reason);
  string(w, "failures");
  w.Int(r.failures);
  string(w, "opened_until");
  optional(w, r.opened_until);
  string(w, "waiting");
  w.Int64(r.waiting);
  string(w, "running");
  w.Int64(r.running);
  w.EndObject();
}

std::string route_state_json(const jobs::RouteState& r) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  write_route_state(w, r);
  return std::string(buffer.GetString(), buffer.GetSize());
}

// A replay and its progress; 404 for none.
Reply replay_reply(const std::optional<jobs::Replay>& r, Outcome outcome = Outcome::kOk) {
  if (!r) return error(Outcome::kReplayNotFound);
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  string(w, "id");
  string(w, r->id);
  string(w, "source");
  string(w, r->source);
  string(w, "route");
  string(w, r->route);
  string(w, "status");
  string(w, r->status);
  string(w, "created_at");
  string(w, r->created_at);
  string(w, "total");
  w.Int64(r->total);
  for (auto [name, n] : {std::pair{"succeeded", r->succeeded}, std::pair{"dead", r->dead},
                         std::pair{"cancelled", r->cancelled}, std::pair{"waiting", r->waiting},
                         std::pair{"running", r->running}}) {
    string(w, name);
    w.Int64(n);
  }
  w.EndObject();
  return success(outcome, std::string(buffer.GetString(), buffer.GetSize()));
}

// A list of at most `max` strings, each `valid` (else `message`).
template <class Valid>
std::optional<Reply> read_strings(const rapidjson::Value& object, const char* name, std::size_t max,
                                  Valid valid, std::string_view message,
                                  std::vector<std::string>& out) {
  const rapidjson::Value* list = member(object, name);
  if (list == nullptr) return std::nullopt;
  if (!list->IsArray() || list->Size() > max) return invalid(name, message);
  for (const auto& v : list->GetArray()) {
    if (!v.IsString()) return invalid(name, message);
    std::string s(v.GetString(), v.GetStringLength());
    if (!valid(s)) return invalid(name, message);
    out.push_back(std::move(s));
  }
  return std::nullopt;
}

}  // namespace

Api::Api(const config::Config& config) : config_(config) {
  for (const config::Project& p : config.projects) {
    for (const auto& digest : p.api_key_sha256) keys_.push_back(Key{digest, &p});
  }
}

const config::Project* Api::authenticate(std::optional<std::string_view> authorization) const {
  if (!authorization) return nullptr;
  std::string_view value = *authorization;
  std::size_t space = value.find(' ');
  if (space == std::string_view::npos || !text::iequals(value.substr(0, space), "Bearer")) {
    return nullptr;
  }
  std::string_view token = value.substr(space + 1);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  if (token.empty() || token.size() > kMaxTokenLength) return nullptr;
  providers::Digest digest = providers::sha256(token);
  // Every key is compared, in constant time, whichever matches.
  const config::Project* found = nullptr;
  for (const Key& key : keys_) {
    if (providers::constant_time_equal(digest, key.sha256)) found = key.project;
  }
  return found;
}

ApiPlan Api::plan(const config::Project& project, const ApiCall& call, std::string body) const {
  std::string p = project.id;
  std::string id(call.id);
  ApiPlan plan;
  switch (call.endpoint) {
    case Endpoint::kCreate:
      return create(project, body);
    case Endpoint::kList:
      return list(project, call.query);
    case Endpoint::kClaim:
      return claim(project, body);
    case Endpoint::kCompleteMany:
      return complete_many(project, body);
    case Endpoint::kGet:
      plan.work = [p, id](jobs::Store& store) {
        std::optional<jobs::JobView> view = store.view(p, id, kMaxShownAttempts);
        return view ? success(Outcome::kOk, view_json(*view)) : error(Outcome::kJobNotFound);
      };
      return plan;
    case Endpoint::kDelete:
      plan.work = [p, id](jobs::Store& store) {
        return store.remove(p, id) ? success(Outcome::kDeleted, "") : error(Outcome::kJobNotFound);
      };
      return plan;
    case Endpoint::kRetry:
      plan.work = [p, id](jobs::Store& store) { return changed_reply(store.retry(p, id)); };
      return plan;
    case Endpoint::kCancel:
      plan.work = [p, id](jobs::Store& store) { return changed_reply(store.cancel(p, id)); };
      return plan;
    case Endpoint::kHeartbeat:
    case Endpoint::kComplete:
    case Endpoint::kFail:
      break;
    case Endpoint::kRoutes:
      return routes(project);
    case Endpoint::kPauseRoute:
    case Endpoint::kResumeRoute:
    case Endpoint::kReplay:
      return route_action(project, call, body);
    case Endpoint::kGetReplay:
      plan.work = [p, id](jobs::Store& store) { return replay_reply(store.replay(p, id)); };
      return plan;
    case Endpoint::kCancelReplay:
      plan.work = [p, id](jobs::Store& store) { return replay_reply(store.cancel_replay(p, id)); };
      return plan;
  }
  return lease_action(project, id, call.endpoint, body);
}

ApiPlan Api::create(const config::Project& project, const std::string& body) const {
  std::optional<rapidjson::Document> doc = parse_object(body);
  if (!doc) return answer(error(Outcome::kInvalidJson));
  if (auto bad = unknown_members(
          *doc, {"type", "payload", "idempotency_key", "run_at", "max_attempts", "priority"})) {
    return answer(*bad);
  }
  jobs::NewJob job;
  job.project_id = project.id;
  job.content_type = "application/json";
  job.max_attempts = config_.workers.retry.max_attempts;

  const rapidjson::Value* type = member(*doc, "type");
  std::optional<std::size_t> type_length;
  if (type != nullptr && type->IsString()) {
    job.type.assign(type->GetString(), type->GetStringLength());
    type_length = text::printable_utf8_length(job.type);
  }
  if (!type_length || *type_length == 0 || *type_length > text::kMaxTypeLength) {
    return answer(invalid("type", "required: 1 to 200 printable characters"));
  }

  const rapidjson::Value* payload = member(*doc, "payload");
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  if (payload != nullptr) {
    payload->Accept(w);
  } else {
    w.Null();
  }
  job.payload.assign(buffer.GetString(), buffer.GetSize());

  if (const rapidjson::Value* key = member(*doc, "idempotency_key")) {
    std::optional<std::size_t> length;
    if (key->IsString()) {
      job.idempotency_key.assign(key->GetString(), key->GetStringLength());
      length = text::printable_utf8_length(job.idempotency_key);
    }
    if (!length || *length == 0 || *length > text::kMaxKeyLength) {
      return answer(
          invalid("idempotency_key", "1 to 200 characters without control characters, or absent"));
    }
  }
  if (const rapidjson::Value* run_at = member(*doc, "run_at")) {
    if (run_at->IsString()) job.run_at_micros = text::parse_rfc3339(run_at->GetString());
    if (!job.run_at_micros) {
      return answer(invalid("run_at", "an RFC 3339 date-time, e.g. 2026-01-31T12:00:00Z"));
    }
  }
  if (auto bad = read_int(*doc, "max_attempts", 1, 100, job.max_attempts)) return answer(*bad);
  if (auto bad = read_int(*doc, "priority", -kMaxPriority, kMaxPriority, job.priority)) {
    return answer(*bad);
  }
  ApiPlan plan;
  plan.enqueue = std::move(job);
  return plan;
}

Reply Api::enqueued(const jobs::Result& result) {
  switch (result.outcome) {
    case jobs::Outcome::kCreated: {
      const jobs::NewJob& n = result.job;
      jobs::Job job;
      job.id = result.stored.job_id;
      job.project_id = n.project_id;
      if (!n.idempotency_key.empty()) job.idempotency_key = n.idempotency_key;
      job.type = n.type;
      job.status = result.stored.status;
      job.max_attempts = n.max_attempts;
      job.priority = n.priority;
      job.payload = n.payload;
      job.content_type = n.content_type;
      job.created_at = result.stored.created_at;
      job.updated_at = result.stored.created_at;
      job.run_at = result.stored.run_at;
      return success(Outcome::kCreated, job_json(job));
    }
    case jobs::Outcome::kDuplicate:
      return error(
          Outcome::kIdempotencyConflict,
          "a job with this idempotency key already exists in this project",
          {{"job_id", result.stored.job_id}, {"status", jobs::to_string(result.stored.status)}});
    case jobs::Outcome::kUnavailable:
    case jobs::Outcome::kFailed:
      break;
  }
  return store_failure(result.outcome);
}

std::optional<std::pair<std::string, std::string>> read_list_query(
    std::string_view query, jobs::ListQuery& q,
    std::vector<std::pair<std::string, std::string>>* others) {
  q.limit = kDefaultListLimit;
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? "" : query.substr(amp + 1);
    if (pair.empty()) continue;
    std::size_t eq = pair.find('=');
    std::string name = text::percent_decode(pair.substr(0, eq));
    std::string value =
        eq == std::string_view::npos ? "" : text::percent_decode(pair.substr(eq + 1));
    // A form sends every field, the empty ones too: an empty filter does not narrow.
    if (value.empty() && others != nullptr) continue;
    if (name == "status") {
      q.status = jobs::parse_status(value);
      if (!q.status) return std::pair{name, "one of " + jobs::status_names()};
    } else if (name == "type" || name == "source") {
      if (value.empty() || value.size() > 4 * text::kMaxTypeLength) {
        return std::pair{name, std::string("1 to 200 characters")};
      }
      (name == "type" ? q.type : q.source) = value;
    } else if (name == "since" || name == "before") {
      std::optional<std::int64_t> at = text::parse_rfc3339(value);
      if (!at) return std::pair{name, std::string("an RFC 3339 date-time")};
      (name == "since" ? q.since : q.before) = at;
    } else if (name == "limit") {
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), q.limit);
      if (ec != std::errc() || end != value.data() + value.size() || q.limit < 1 ||
          q.limit > kMaxListLimit) {
        return std::pair{name, std::string("an integer from 1 to 500")};
      }
    } else if (name == "cursor") {
      q.after = decode_cursor(value);
      if (!q.after) return std::pair{name, std::string("not a cursor this API returned")};
    } else if (others != nullptr && others->size() < kMaxListLimit) {
      others->emplace_back(std::move(name), std::move(value));
    } else {
      return std::pair{name, std::string("unknown query parameter")};
    }
  }
  return std::nullopt;
}

std::string list_cursor(const std::string& id) { return encode_cursor(id); }

ApiPlan Api::list(const config::Project& project, std::string_view query) const {
  jobs::ListQuery q;
  if (auto bad = read_list_query(query, q, nullptr)) {
    return answer(invalid(bad->first, bad->second));
  }
  ApiPlan plan;
  plan.work = [p = project.id, q](jobs::Store& store) {
    jobs::Page page = store.list(p, q);
    rapidjson::StringBuffer buffer;
    Writer w(buffer);
    w.StartObject();
    string(w, "jobs");
    w.StartArray();
    for (const jobs::Job& job : page.jobs) write_job(w, job, false);
    w.EndArray();
    string(w, "next_cursor");
    if (page.next) {
      string(w, encode_cursor(*page.next));
    } else {
      w.Null();
    }
    w.EndObject();
    return success(Outcome::kOk, std::string(buffer.GetString(), buffer.GetSize()));
  };
  return plan;
}

ApiPlan Api::claim(const config::Project& project, const std::string& body) const {
  std::optional<rapidjson::Document> doc = parse_object(body);
  if (!doc) return answer(error(Outcome::kInvalidJson));
  if (auto bad = unknown_members(*doc, {"types", "max", "lease_seconds", "wait_seconds"})) {
    return answer(*bad);
  }
  std::vector<std::string> types;
  if (const rapidjson::Value* list = member(*doc, "types")) {
    Reply bad = invalid("types", "a list of at most 100 job types");
    if (!list->IsArray() || list->Size() > kMaxClaimTypes) return answer(bad);
    for (const auto& t : list->GetArray()) {
      if (!t.IsString() || t.GetStringLength() == 0) return answer(bad);
      types.emplace_back(t.GetString(), t.GetStringLength());
    }
  }
  int max = 1;
  int lease = config_.workers.lease_seconds;
  int wait = 0;
  if (auto bad = read_int(*doc, "max", 1, kMaxClaim, max)) return answer(*bad);
  if (auto bad = read_int(*doc, "lease_seconds", 1, kMaxLeaseSeconds, lease)) return answer(*bad);
  if (auto bad = read_int(*doc, "wait_seconds", 0, kMaxClaimWaitSeconds, wait)) {
    return answer(*bad);
  }
  ApiPlan plan;
  plan.wait = std::chrono::seconds(wait);
  plan.no_jobs = success(Outcome::kOk, R"({"jobs":[]})");
  plan.poll = [p = project.id, types = std::move(types), max,
               lease](jobs::Store& store) -> std::optional<Reply> {
    std::vector<jobs::Job> claimed = store.claim({p, types, {}}, max, lease);
    if (claimed.empty()) return std::nullopt;
    rapidjson::StringBuffer buffer;
    Writer w(buffer);
    w.StartObject();
    string(w, "jobs");
    w.StartArray();
    for (const jobs::Job& job : claimed) write_job(w, job, true);
    w.EndArray();
    w.EndObject();
    return success(Outcome::kOk, std::string(buffer.GetString(), buffer.GetSize()));
  };
  return plan;
}

ApiPlan Api::complete_many(const config::Project& project, const std::string& body) const {
  std::optional<rapidjson::Document> doc = parse_object(body);
  if (!doc) return answer(error(Outcome::kInvalidJson));
  if (auto bad = unknown_members(*doc, {"jobs"})) return answer(*bad);
  const rapidjson::Value* list = member(*doc, "jobs");
  Reply bad = invalid("jobs",
                      "1 to 100 objects, each with a job's id and the lease token its claim "
                      "returned, no id twice");
  if (list == nullptr || !list->IsArray() || list->Empty() || list->Size() > kMaxClaim) {
    return answer(bad);
  }
  std::vector<std::pair<std::string, std::string>> leases;
  std::set<std::string> ids;
  for (const auto& job : list->GetArray()) {
    if (!job.IsObject() || job.MemberCount() != 2) return answer(bad);
    const rapidjson::Value* id = member(job, "id");
    const rapidjson::Value* token = member(job, "lease_token");
    if (id == nullptr || token == nullptr || !id->IsString() || !token->IsString() ||
        !text::is_uuid(id->GetString()) || !text::is_uuid(token->GetString()) ||
        !ids.insert(lowered(id->GetString())).second) {
      return answer(bad);
    }
    leases.emplace_back(id->GetString(), token->GetString());
  }
  ApiPlan plan;
  plan.work = [p = project.id, leases = std::move(leases)](jobs::Store& store) {
    std::vector<jobs::Change> changes = store.complete(p, leases);
    rapidjson::StringBuffer buffer;
    Writer w(buffer);
    w.StartObject();
    string(w, "completed");
    w.Int64(std::count(changes.begin(), changes.end(), jobs::Change::kDone));
    string(w, "jobs");
    w.StartArray();
    for (std::size_t i = 0; i < leases.size(); ++i) {
      w.StartObject();
      string(w, "id");
      string(w, leases[i].first);
      string(w, "result");
      string(w, changes[i] == jobs::Change::kDone        ? "succeeded"
                : changes[i] == jobs::Change::kLeaseLost ? "lease_lost"
                                                         : "job_not_found");
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return success(Outcome::kOk, std::string(buffer.GetString(), buffer.GetSize()));
  };
  return plan;
}

ApiPlan Api::lease_action(const config::Project& project, const std::string& id, Endpoint endpoint,
                          const std::string& body) const {
  std::optional<rapidjson::Document> doc = parse_object(body);
  if (!doc) return answer(error(Outcome::kInvalidJson));
  std::string token;
  std::string p = project.id;
  ApiPlan plan;
  if (endpoint == Endpoint::kHeartbeat) {
    if (auto bad = unknown_members(*doc, {"lease_token", "lease_seconds"})) return answer(*bad);
    int lease = config_.workers.lease_seconds;
    if (auto bad = read_token(*doc, token)) return answer(*bad);
    if (auto bad = read_int(*doc, "lease_seconds", 1, kMaxLeaseSeconds, lease)) {
      return answer(*bad);
    }
    plan.work = [p, id, token, lease](jobs::Store& store) {
      return changed_reply(store.heartbeat(p, id, token, lease));
    };
  } else if (endpoint == Endpoint::kComplete) {
    if (auto bad = unknown_members(*doc, {"lease_token"})) return answer(*bad);
    if (auto bad = read_token(*doc, token)) return answer(*bad);
    plan.work = [p, id, token](jobs::Store& store) {
      return changed_reply(store.complete(p, id, token));
    };
  } else {
    if (auto bad = unknown_members(*doc, {"lease_token", "error", "retry"})) return answer(*bad);
    if (auto bad = read_token(*doc, token)) return answer(*bad);
    std::string message;
    if (const rapidjson::Value* e = member(*doc, "error")) {
      if (!e->IsString() || e->GetStringLength() > kMaxErrorLength) {
        return answer(invalid("error", "a string of at most 10000 bytes"));
      }
      message.assign(e->GetString(), e->GetStringLength());
    }
    bool retry = true;
    if (const rapidjson::Value* r = member(*doc, "retry")) {
      if (!r->IsBool()) return answer(invalid("retry", "true or false"));
      retry = r->GetBool();
    }
    plan.work = [this, p, id, token, message, retry](jobs::Store& store) {
      return changed_reply(store.fail(p, id, token, message, retry, [this](const jobs::Job& job) {
        return jobs::retry_delay(config_, job);
      }));
    };
  }
  return plan;
}

std::vector<jobs::RouteId> Api::routes_of(const config::Project& project) const {
  std::vector<jobs::RouteId> out;
  for (const config::Source& s : config_.sources) {
    if (s.project != project.id) continue;
    for (const config::Route& r : s.routes) out.push_back({s.name, r.name});
  }
  return out;
}

ApiPlan Api::routes(const config::Project& project) const {
  ApiPlan plan;
  plan.work = [routes = routes_of(project)](jobs::Store& store) {
    rapidjson::StringBuffer buffer;
    Writer w(buffer);
    w.StartObject();
    string(w, "routes");
    w.StartArray();
    if (!routes.empty()) {
      for (const jobs::RouteState& r : store.route_states(routes)) write_route_state(w, r);
    }
    w.EndArray();
    w.EndObject();
    return success(Outcome::kOk, std::string(buffer.GetString(), buffer.GetSize()));
  };
  return plan;
}

ApiPlan Api::route_action(const config::Project& project, const ApiCall& call,
                          const std::string& body) const {
  const config::Source* source = nullptr;
  const config::Route* route = nullptr;
  for (const config::Source& s : config_.sources) {
    if (s.project != project.id || s.name != call.source) continue;
    for (const config::Route& r : s.routes) {
      if (r.name == call.route) {
        source = &s;
        route = &r;
      }
    }
  }
  if (route == nullptr) return answer(error(Outcome::kRouteNotFound));
  ApiPlan plan;
  jobs::RouteId id{source->name, route->name};
  if (call.endpoint == Endpoint::kPauseRoute) {
    plan.work = [id](jobs::Store& store) {
      return success(Outcome::kOk, route_state_json(store.pause_route(id)));
    };
    return plan;
  }
  if (call.endpoint == Endpoint::kResumeRoute) {
    plan.work = [id](jobs::Store& store) {
      return success(Outcome::kOk, route_state_json(store.resume_route(id)));
    };
    return plan;
  }
  std::optional<rapidjson::Document> doc = parse_object(body.empty() ? "{}" : body);
  if (!doc) return answer(error(Outcome::kInvalidJson));
  if (auto bad = unknown_members(*doc, {"types", "since", "before", "statuses", "dry_run"})) {
    return answer(*bad);
  }
  jobs::ReplayFilter filter;
  if (auto bad = read_strings(*doc, "types", kMaxReplayTypes, config::valid_type_pattern,
                              "a list of at most 100 event types or PREFIX.*", filter.types)) {
    return answer(*bad);
  }
  for (auto [name, field] :
       {std::pair{"since", &filter.since}, std::pair{"before", &filter.before}}) {
    const rapidjson::Value* v = member(*doc, name);
    if (v == nullptr) continue;
    *field = v->IsString() ? text::parse_rfc3339(v->GetString()) : std::nullopt;
    if (!*field) return answer(invalid(name, "an RFC 3339 date-time"));
  }
  std::vector<std::string> statuses;
  auto valid_status = [](const std::string& st) {
    std::optional<jobs::Status> parsed = jobs::parse_status(st);
    return parsed && jobs::ended(*parsed);
  };
  if (auto bad =
          read_strings(*doc, "statuses", jobs::kStatuses.size(), valid_status,
                       "a list of ended delivery statuses: succeeded, dead, cancelled", statuses)) {
    return answer(*bad);
  }
  for (const std::string& st : statuses) filter.statuses.push_back(*jobs::parse_status(st));
  bool dry_run = false;
  if (const rapidjson::Value* v = member(*doc, "dry_run")) {
    if (!v->IsBool()) return answer(invalid("dry_run", "true or false"));
    dry_run = v->GetBool();
  }
  std::string p = project.id;
  if (dry_run) {
    plan.work = [p, source, route, filter](jobs::Store& store) {
      return success(
          Outcome::kOk,
          "{\"count\":" + std::to_string(store.count_replay(p, *source, *route, filter)) + "}");
    };
    return plan;
  }
  plan.work = [p, source, route, filter](jobs::Store& store) {
    std::string replay = jobs::new_job_id();
    try {
      if (!store.start_replay(replay, p, *source, *route, filter, kMaxReplayEvents)) {
        return invalid("filter", "matches more than " + std::to_string(kMaxReplayEvents) +
                                     " events: narrow it (a dry run counts them)");
      }
    } catch (const jobs::Unavailable&) {
      // Whatever batches committed are the replay's: its id lets the client see them.
      return error(Outcome::kUnavailable,
                   "the database failed during the replay: GET /v1/replays/" + replay +
                       " shows what it took, if anything",
                   {{"replay_id", replay}});
    }
    return replay_reply(store.replay(p, replay), Outcome::kAccepted);
  };
  return plan;
}

}  // namespace flare::gateway
