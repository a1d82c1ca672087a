#include "jobs/worker.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <random>

#include "jobs/retry.hpp"
#include "text/text.hpp"

namespace flare::jobs {
namespace {

// About how long a batch's attempts take together: a worker claims as many deliveries of a route
// as its last attempts there say fit, so that none waits long behind the others of its batch. A
// batch whose attempts run past four times this (the destination slowed down) gives the rest
// back. Not less: an attempt's time is counted on the clock, and while webhooks arrive as fast
// as they are pushed the cores are shared, attempts take longer, and 50 ms made claims of about
// 100 whose turns were the pipeline's pace (bench/README.md, note 58).
constexpr std::chrono::milliseconds kBatchSpan{250};

// A destination whose attempts take longer is a slow one: its deliveries are claimed one at a
// time, so that the workers attempt them side by side.
constexpr std::chrono::milliseconds kSlowAttempt{25};

// How many deliveries to claim for a route: one while its pace is unknown (never tried, or the
// last batch failed). The claim holds itself to Store::kClaimBytes of payloads; sized by the last
// batch's payloads as well, it does not lock the rows it would then leave. A route's
// max_in_flight is shared out over the workers: a claimed delivery counts as in flight while it
// waits its turn in the batch, and one claim of every free slot would attempt them one by one.
int batch_size(const std::optional<Workers::Pace>& pace, int most, const config::Route& route,
               int workers) {
  if (!pace || pace->attempt > kSlowAttempt) return 1;
  if (route.max_in_flight > 0) most = std::min(most, std::max(1, route.max_in_flight / workers));
  std::int64_t fit = kBatchSpan / std::max(pace->attempt, std::chrono::steady_clock::duration(1));
  fit = std::min<std::int64_t>(
      fit, Store::kClaimBytes / static_cast<std::int64_t>(std::max<std::size_t>(pace->payload, 1)));
  return static_cast<int>(std::clamp<std::int64_t>(fit, 1, most));
}

// A claim of more than one delivery that took every one that was due shows a steady flow: the
// route's next claim in this process waits until kGather after it, and carries what came
// meanwhile. A claim and its record cost PostgreSQL about the same whatever they carry, and
// claims of a few deliveries each, as fast as notifications came, took about half its time at a
// steady webhook rate (bench/README.md, note 59). A lone delivery is claimed at once, and so is
// the rest of a backlog, whether a claim stopped at its limit, at its bytes, or at rows that
// another transaction held.
constexpr std::size_t kFlow = 2;
constexpr std::chrono::milliseconds kGather{20};

// How often the listener looks for jobs of a source with routes that no route has. The look
// scans the jobs waiting for pull workers (an index of them): not at every poll.
constexpr std::chrono::seconds kAdoptEvery{60};

// A wait for a route's pace or breaker, up to a quarter longer at random: the workers of several
// processes, held back together, do not wake in the same order every time, and each gets its
// share of the route's attempts.
std::chrono::milliseconds jittered(std::chrono::milliseconds wait) {
  thread_local std::mt19937 random{std::random_device{}()};
  return wait + std::chrono::milliseconds(
                    std::uniform_int_distribution<std::int64_t>(0, wait.count() / 4)(random));
}

}  // namespace

Workers::Workers(const std::string& database_url, WorkerOptions options, MakeDeliverer make)
    : database_url_(database_url),
      options_(std::move(options)),
      reachability_("workers", options_.observer) {
  for (const config::Source* s : options_.sources) {
    for (const config::Route& r : s->routes) routes_.emplace_back(s, &r);
  }
  claiming_ = std::vector<std::mutex>(routes_.size());
  gathering_until_.resize(routes_.size());
  claimed_at_.resize(routes_.size());
  for (int i = 0; i < options_.concurrency; ++i) deliverers_.push_back(make());
  if (options_.handoff) options_.handoff->on_arrival([this] { wake_all(); });
  threads_.emplace_back([this] { listen(); });
  for (std::size_t i = 0; i < deliverers_.size(); ++i) {
    threads_.emplace_back(
        [this, i] { work(*deliverers_[i], routes_.empty() ? 0 : i % routes_.size()); });
  }
}

Workers::~Workers() { stop(std::chrono::milliseconds(0)); }

void Workers::stop(std::chrono::milliseconds drain) {
  auto until = std::chrono::steady_clock::now() + drain;
  if (options_.handoff) options_.handoff->stop_offers();
  {
    std::unique_lock lock(mutex_);
    stopping_ = true;
    changed_.notify_all();
    stopped_.notify_all();
    changed_.wait_until(lock, until, [this] { return busy_ == 0; });
  }
  for (auto& d : deliverers_) d->abandon();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  release_handed(until);
}

void Workers::release_handed(std::chrono::steady_clock::time_point until) {
  if (!options_.handoff) return;
  std::vector<Handoff::Left> left = options_.handoff->close(until);
  if (left.empty()) return;
  try {
    Store store(database_url_);
    for (const Handoff::Left& l : left) release(store, l.pushes, *l.route);
  } catch (const std::exception& e) {
    // Their lease runs out, and a claim takes them then.
    spdlog::warn("workers: deliveries handed over not released: {}", e.what());
  }
}

void Workers::release(Store& store, const std::vector<Push>& pushes, const config::Route& route) {
  std::vector<PushOutcome> outcomes;
  for (const Push& p : pushes) {
    outcomes.push_back(
        {p.delivery, std::nullopt, Status::kSucceeded, std::chrono::milliseconds(0)});
  }
  store.record_outcomes(outcomes, route.breaker);
  spdlog::info("released {} deliveries of source={} route={} handed over and not begun",
               pushes.size(), pushes[0].delivery.source, route.name);
}

bool Workers::stopping() {
  std::lock_guard lock(mutex_);
  return stopping_;
}

void Workers::wake_all() {
  std::lock_guard lock(mutex_);
  ++wakeups_;
  changed_.notify_all();
}

void Workers::wait(std::optional<std::uint64_t> seen, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (!seen) {
    stopped_.wait_for(lock, timeout, [this] { return stopping_; });
    return;
  }
  changed_.wait_for(lock, timeout, [&] { return wakeups_ != *seen || stopping_; });
}

void Workers::listen() {
  Store store(database_url_);
  std::optional<std::chrono::steady_clock::time_point> adopted;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    bool woken = false;
    bool listening = false;
    if (reachability_.may_try()) {
      try {
        // Jobs of a source with routes that no route has: stored before it had routes, or by a
        // process that runs without them; or pulled, then retried. First, then now and then.
        if (!adopted || std::chrono::steady_clock::now() - *adopted >= kAdoptEvery) {
          for (const config::Source* s : options_.sources) {
            if (int n = store.adopt(*s)) {
              spdlog::info("workers: {} waiting jobs of source {} given to its routes", n, s->name);
            }
          }
          adopted = std::chrono::steady_clock::now();
        }
        woken = store.wait_for_jobs(options_.poll_interval);
        listening = true;
        reachability_.answered();
      } catch (const Unavailable& e) {
        reachability_.failed(e);
      } catch (const std::exception& e) {
        reachability_.answered();  // refused: the database is there
        spdlog::warn("workers: not listening for new jobs: {}", e.what());
      }
    }
    if (!listening) {
      std::unique_lock lock(mutex_);
      changed_.wait_for(lock, options_.poll_interval, [this] { return stopping_; });
    }
    if (woken) {
      notified_at_ = std::chrono::steady_clock::now().time_since_epoch().count();
      wake_all();
    }
  }
}

void Workers::work(Deliverer& deliverer, std::size_t first) {
  Store store(database_url_);
  // Each worker starts its round of the routes at a different one, and the next round after
  // the route it last pushed to: no route waits behind another's backlog.
  std::size_t next = first;
  // By route: what this worker's last batch there says of the next; unknown at first.
  std::vector<std::optional<Pace>> paces(routes_.size());
  for (;;) {
    std::uint64_t seen;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      seen = wakeups_;
      ++busy_;
    }
    bool pushed = false;
    bool gathering = false;  // a route's next claim waits for kGather to pass
    std::chrono::milliseconds wait_for = options_.poll_interval;
    // While the database is down, one claim per pause for all the workers, not one each.
    if (reachability_.may_try()) {
      try {
        for (std::size_t k = 0; k < routes_.size() && !pushed; ++k) {
          std::size_t r = (next + k) % routes_.size();
          const config::Route& route = *routes_[r].second;
          Handoff::Taken batch;
          std::optional<std::chrono::milliseconds> retry_in;
          {
            // One claim for a route at a time in this process: concurrent claims would each
            // step over the rows the others hold locked (SKIP LOCKED still visits them).
            std::lock_guard claiming(claiming_[r]);
            auto now = std::chrono::steady_clock::now();
            if (now < gathering_until_[r]) {
              gathering = true;
              wait_for =
                  std::min(wait_for,
                           std::chrono::ceil<std::chrono::milliseconds>(gathering_until_[r] - now));
              continue;
            }
            batch = next_batch(store, r,
                               batch_size(paces[r], options_.batch, route, options_.concurrency),
                               retry_in);
            if (batch.emptied && batch.pushes.size() >= kFlow) {
              gathering_until_[r] = std::chrono::steady_clock::now() + kGather;
            }
          }
          reachability_.answered();
          if (retry_in) wait_for = std::min(wait_for, jittered(*retry_in));
          if (batch.pushes.empty()) continue;
          paces[r] = this->push(store, deliverer, batch.pushes, route, batch.leased_until);
          pushed = true;
          next = (next + k + 1) % routes_.size();
        }
      } catch (const Unavailable& e) {
        // The lease runs out and another attempt follows: at least once, never lost.
        reachability_.failed(e);
      } catch (const std::exception& e) {
        reachability_.answered();  // the database refused the claim, or answered it before this
        spdlog::warn("workers: {}", e.what());
      }
    }
    {
      std::lock_guard lock(mutex_);
      --busy_;
      changed_.notify_all();
    }
    // While a route gathers, the notifications are what it gathers: idle workers sleep through
    // them until it is due (another route's delivery waits as long, kGather at most).
    if (!pushed) {
      wait(gathering ? std::nullopt : std::optional(seen),
           std::max(wait_for, std::chrono::milliseconds(1)));
    }
  }
}

Handoff::Taken Workers::next_batch(Store& store, std::size_t r, int most,
                                   std::optional<std::chrono::milliseconds>& retry_in) {
  const auto& [source, route] = routes_[r];
  Handoff* handoff = options_.handoff;
  auto now = std::chrono::steady_clock::now();
  // What was handed over goes first; a claim comes when nothing was, and still at every poll
  // and after every notification, for the deliveries that wait in the queue: retries, those
  // stored while the workers had no room, and other processes'.
  bool claim_due = !handoff || now - claimed_at_[r] >= options_.poll_interval ||
                   claimed_at_[r].time_since_epoch().count() <= notified_at_.load();
  if (!claim_due) {
    if (Handoff::Taken taken = handoff->take(*route, most); !taken.pushes.empty()) {
      if (!taken.emptied) wake_all();  // the rest is for the other workers
      return taken;
    }
  }
  Handoff::Taken out;
  out.leased_until = now + std::chrono::seconds(options_.lease_seconds);
  Claim claim = store.claim_deliveries(source->name, *route, options_.lease_seconds, most);
  claimed_at_[r] = now;
  retry_in = claim.retry_in;
  if (handoff) {
    handoff->claimed(*route, !claim.pushes.empty() && !claim.emptied);
    if (claim.pushes.empty() && claim_due) return handoff->take(*route, most);
  }
  out.pushes = std::move(claim.pushes);
  out.emptied = claim.emptied;
  return out;
}

std::optional<Workers::Pace> Workers::push(Store& store, Deliverer& deliverer,
                                           const std::vector<Push>& pushes,
                                           const config::Route& route,
                                           std::chrono::steady_clock::time_point leased_until) {
  std::vector<PushOutcome> outcomes;
  // By outcome: how long its attempt took, abandoned ones too; none when never begun.
  std::vector<std::optional<std::chrono::steady_clock::duration>> took;
  auto began = std::chrono::steady_clock::now();
  std::size_t payloads = 0;
  int attempts = 0;
  bool failed = false;
  bool given_back = false;  // the rest of the batch is released unattempted
  for (const Push& push : pushes) {
    const Delivery& d = push.delivery;
    payloads += push.job.payload.size();
    outcomes.push_back({d, std::nullopt, Status::kSucceeded, std::chrono::milliseconds(0)});
    took.emplace_back();
    auto now = std::chrono::steady_clock::now();
    given_back = given_back || now + route.timeout > leased_until || now - began > 4 * kBatchSpan ||
                 stopping();
    if (given_back) continue;
    auto started = std::chrono::system_clock::now();
    Attempt attempt = deliverer.deliver(push.job, d);
    took.back() = std::chrono::steady_clock::now() - now;
    ++attempts;
    if (attempt.result == Attempt::Result::kAbandoned) {
      given_back = true;
      continue;
    }
    AttemptRecord record;
    record.route = d.route;
    record.number = d.attempts;
    record.started_at = text::format_rfc3339(
        std::chrono::duration_cast<std::chrono::microseconds>(started.time_since_epoch()).count());
    record.duration_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(*took.back()).count();
    record.status_code = attempt.status_code;
    record.response = attempt.response;
    PushOutcome& o = outcomes.back();
    if (attempt.result == Attempt::Result::kFailed) {
      record.error = attempt.error;
      o.next = d.attempts < d.max_attempts ? Status::kRetrying : Status::kDead;
      if (o.next == Status::kRetrying) {
        o.delay = attempt.retry_after ? *attempt.retry_after : retry_delay(route.retry, d.attempts);
      }
      // The destination is failing: the breaker hears of it before more attempts begin.
      failed = true;
      given_back = true;
    }
    o.attempt = std::move(record);
  }
  Recorded recorded = store.record_outcomes(outcomes, route.breaker);
  std::size_t unattempted = 0;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    const PushOutcome& o = outcomes[i];
    const Delivery& d = o.delivery;
    std::string_view outcome = !recorded.held[i] ? "lease_lost"
                               : o.attempt       ? to_string(o.next)
                                                 : "released";
    if (!took[i]) {
      ++unattempted;
    } else if (!o.attempt) {
      spdlog::info("released job={} source={} route={}: stopping", d.job_id, d.source, d.route);
    } else if (o.attempt->error) {
      spdlog::info("delivered job={} source={} route={} attempt={} outcome={} error=\"{}\"",
                   d.job_id, d.source, d.route, d.attempts, outcome, *o.attempt->error);
    } else {
      spdlog::info("delivered job={} source={} route={} attempt={} outcome={}", d.job_id, d.source,
                   d.route, d.attempts, outcome);
    }
    if (options_.observer && took[i]) {
      options_.observer->attempted(d.source, d.route, outcome,
                                   std::chrono::duration_cast<std::chrono::milliseconds>(*took[i]));
    }
  }
  if (unattempted > 0) {
    spdlog::info("gave back {} deliveries of source={} route={} unattempted", unattempted,
                 pushes[0].delivery.source, pushes[0].delivery.route);
  }
  // The route is failing: what was handed over waits in the queue instead, for claims, which
  // heed its breaker.
  if (failed && options_.handoff) {
    if (std::vector<Push> waiting = options_.handoff->take_all(route); !waiting.empty()) {
      release(store, waiting, route);
    }
  }
  for (const Recorded::Turn& turn : recorded.turns) {
    spdlog::warn("route {}.{} is {} (was {}): {}", pushes[0].delivery.source,
                 pushes[0].delivery.route, turn.after, turn.before,
                 turn.reason.value_or("an attempt succeeded"));
  }
  // Slots of the route's max_in_flight are free again: the idle workers of this process look.
  if (route.max_in_flight > 0) wake_all();
  if (attempts == 0 || failed) return std::nullopt;
  return Pace{(std::chrono::steady_clock::now() - began) / attempts, payloads / pushes.size()};
}

}  // namespace flare::jobs
