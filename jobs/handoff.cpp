#include "jobs/handoff.hpp"

#include <algorithm>

namespace flare::jobs {

Handoff::Handoff(const std::vector<const config::Source*>& sources, std::size_t room,
                 std::size_t room_bytes, int lease_seconds)
    : room_(room), room_bytes_(room_bytes), lease_seconds_(lease_seconds) {
  for (const config::Source* s : sources) {
    for (const config::Route& r : s->routes) routes_.push_back(Route{s, &r, true, {}});
  }
}

Handoff::Route* Handoff::find(std::string_view source, std::string_view route) {
  for (Route& r : routes_) {
    if (r.source->name == source && r.route->name == route) return &r;
  }
  return nullptr;
}

Handoff::Route* Handoff::find(const config::Route& route) {
  for (Route& r : routes_) {
    if (r.route == &route) return &r;
  }
  return nullptr;
}

std::vector<Push> Handoff::drain(Route& route) {
  std::vector<Push> out;
  for (Waiting& w : route.waiting) {
    held_ -= 1;
    held_bytes_ -= w.push.job.payload.size();
    out.push_back(std::move(w.push));
  }
  route.waiting.clear();
  return out;
}

void Handoff::on_arrival(std::function<void()> wake) {
  std::lock_guard lock(mutex_);
  wake_ = std::move(wake);
}

bool Handoff::offer(const NewJob& job) {
  // A job due later waits for its time in the queue.
  if (!job.pushed || job.deliveries.empty() || job.run_at_micros) return false;
  std::size_t bytes = job.payload.size() * job.deliveries.size();
  std::lock_guard lock(mutex_);
  if (closed_ || held_ + job.deliveries.size() > room_ || held_bytes_ + bytes > room_bytes_) {
    return false;
  }
  auto now = std::chrono::steady_clock::now();
  for (const NewDelivery& d : job.deliveries) {
    const Route* r = find(job.source, d.route);
    if (!r || r->backlog || r->route->max_in_flight > 0 || r->route->max_per_second > 0) {
      return false;
    }
    // The workers are not keeping up with the route (a slow destination): its deliveries wait
    // in the queue instead, where every process's workers may claim them, and where a crash
    // costs them no attempt.
    if (!r->waiting.empty() && now - r->waiting.front().sent > kLongestWait) return false;
  }
  held_ += job.deliveries.size();
  held_bytes_ += bytes;
  ++unsettled_;
  return true;
}

void Handoff::settle(const NewJob& job, const Enqueued* stored, const std::string& lease_token,
                     std::chrono::steady_clock::time_point sent) {
  bool arrived = false;
  {
    std::lock_guard lock(mutex_);
    --unsettled_;
    settled_.notify_all();
    if (!stored || !stored->handed_over) {
      held_ -= job.deliveries.size();
      held_bytes_ -= job.payload.size() * job.deliveries.size();
      return;
    }
    // Each delivery and its job as a claim would have read them: the first attempt, running.
    Job j;
    j.id = stored->job_id;
    j.project_id = job.project_id;
    if (!job.idempotency_key.empty()) j.idempotency_key = job.idempotency_key;
    j.type = job.type;
    j.status = Status::kRunning;
    j.attempts = static_cast<int>(job.deliveries.size());
    j.max_attempts = job.max_attempts;
    j.priority = job.priority;
    j.payload = job.payload;
    j.content_type = job.content_type;
    j.source = job.source;
    if (!job.event_id.empty()) j.event_id = job.event_id;
    j.created_at = j.updated_at = stored->created_at;
    j.run_at = stored->run_at;
    j.pushed = true;
    for (const NewDelivery& nd : job.deliveries) {
      Route* r = find(job.source, nd.route);
      Delivery d;
      d.project_id = job.project_id;
      d.job_id = stored->job_id;
      d.route = nd.route;
      d.source = job.source;
      d.status = Status::kRunning;
      d.attempts = 1;
      d.max_attempts = nd.max_attempts;
      d.lease_token = lease_token;
      d.created_at = d.updated_at = stored->created_at;
      d.run_at = stored->run_at;
      arrived = arrived || r->waiting.empty();
      r->waiting.push_back({Push{j, std::move(d)}, sent});
    }
    // Under the lock: once close() returns, the workers are not called again.
    if (arrived && wake_) wake_();
  }
}

Handoff::Taken Handoff::take(const config::Route& route, std::size_t most) {
  Taken out;
  std::lock_guard lock(mutex_);
  Route* r = find(route);
  if (!r || r->waiting.empty()) return out;
  auto sent = std::chrono::steady_clock::time_point::max();
  // As a claim does: the first whatever its size, then no more than Store::kClaimBytes.
  std::int64_t bytes = 0;
  while (!r->waiting.empty() && out.pushes.size() < most) {
    Waiting& w = r->waiting.front();
    bytes += static_cast<std::int64_t>(w.push.job.payload.size());
    if (!out.pushes.empty() && bytes > Store::kClaimBytes) break;
    held_ -= 1;
    held_bytes_ -= w.push.job.payload.size();
    // Lanes settle out of the order they sent in: a later delivery may hold an earlier lease.
    sent = std::min(sent, w.sent);
    out.pushes.push_back(std::move(w.push));
    r->waiting.pop_front();
  }
  out.leased_until = sent + std::chrono::seconds(lease_seconds_);
  out.emptied = r->waiting.empty();
  return out;
}

void Handoff::claimed(const config::Route& route, bool backlog) {
  std::lock_guard lock(mutex_);
  if (Route* r = find(route)) r->backlog = backlog;
}

std::vector<Push> Handoff::take_all(const config::Route& route) {
  std::lock_guard lock(mutex_);
  Route* r = find(route);
  if (!r) return {};
  r->backlog = true;
  return drain(*r);
}

void Handoff::stop_offers() {
  std::lock_guard lock(mutex_);
  closed_ = true;
}

std::vector<Handoff::Left> Handoff::close(std::chrono::steady_clock::time_point until) {
  std::unique_lock lock(mutex_);
  closed_ = true;
  wake_ = nullptr;
  settled_.wait_until(lock, until, [this] { return unsettled_ == 0; });
  std::vector<Left> out;
  for (Route& r : routes_) {
    if (!r.waiting.empty()) out.push_back(Left{r.route, drain(r)});
  }
  return out;
}

}  // namespace flare::jobs
