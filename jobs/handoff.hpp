// Deliveries handed from the committer to this process's push workers as they are stored, without
// a claim: the enqueue statement stores them running, leased to this process, and the workers take
// them from here. A claim and its notification cost PostgreSQL more than the attempt's record
// (bench/README.md, note 62). Only while the route has no backlog (its last claim left nothing
// due), so that new deliveries do not pass waiting ones; only as many as the workers have room
// for; never for a paced route, whose claims count its attempts. A process that crashes holding
// them loses nothing: the lease runs out and any process claims them again.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "jobs/job.hpp"
#include "jobs/store.hpp"

namespace flare::jobs {

class Handoff {
 public:
  // The routes of `sources` are those this process's workers push. At most `room` deliveries and
  // `room_bytes` of their payloads are offered or waiting at once.
  Handoff(const std::vector<const config::Source*>& sources, std::size_t room,
          std::size_t room_bytes, int lease_seconds);

  int lease_seconds() const { return lease_seconds_; }

  // The committer, before a job is stored: true when its deliveries are offered to the workers
  // (every route of them is theirs, unpaced and without a backlog, and there is room, which this
  // takes). Every job offered is then settled, once.
  bool offer(const NewJob& job);
  // How the offered job was stored: when `stored` handed it over, its deliveries wait here,
  // leased under `lease_token` since `sent`; else their room is given back. After close(), they
  // wait for the next close(), which releases them.
  void settle(const NewJob& job, const Enqueued* stored, const std::string& lease_token,
              std::chrono::steady_clock::time_point sent);

  // Called when a route's first waiting delivery arrives, until close(); it must not call back.
  // Every idle worker is woken: for a slow destination each takes one.
  void on_arrival(std::function<void()> wake);

  struct Taken {
    std::vector<Push> pushes;                            // oldest first
    std::chrono::steady_clock::time_point leased_until;  // the earliest lease of them
    bool emptied = false;                                // none is left waiting
  };
  // The workers: up to `most` of the route's waiting deliveries.
  Taken take(const config::Route& route, std::size_t most);
  // What a claim for the route found: `backlog`, deliveries left due, stops the offers for it
  // until a claim finds none.
  void claimed(const config::Route& route, bool backlog);
  // An attempt at the route failed: every delivery waiting for it, for the workers to release,
  // and no more offers until a claim finds none due.
  std::vector<Push> take_all(const config::Route& route);

  // No more offers: the workers are stopping.
  void stop_offers();
  // Stops the offers and the wake-ups, waits until every job offered is settled (or `until`),
  // and gives up every delivery still waiting, by route, for the workers to release.
  struct Left {
    const config::Route* route;
    std::vector<Push> pushes;
  };
  std::vector<Left> close(std::chrono::steady_clock::time_point until);

 private:
  struct Waiting {
    Push push;
    std::chrono::steady_clock::time_point sent;  // its batch's: its lease runs from then
  };
  struct Route {
    const config::Source* source;
    const config::Route* route;
    bool backlog = true;  // until a claim finds none
    std::deque<Waiting> waiting;
  };

  Route* find(std::string_view source, std::string_view route);
  Route* find(const config::Route& route);
  // Every delivery waiting for the route, which no longer holds room.
  std::vector<Push> drain(Route& route);

  // A route whose oldest waiting delivery was sent longer ago than this is offered nothing:
  // a steady flow is taken within the workers' 20 ms gather, a slow destination's is not.
  static constexpr std::chrono::milliseconds kLongestWait{250};

  const std::size_t room_;
  const std::size_t room_bytes_;
  const int lease_seconds_;
  std::vector<Route> routes_;
  std::function<void()> wake_;

  std::mutex mutex_;
  std::condition_variable settled_;  // an offered job was settled
  std::size_t held_ = 0;             // deliveries offered or waiting
  std::size_t held_bytes_ = 0;
  std::size_t unsettled_ = 0;  // jobs offered, not yet settled
  bool closed_ = false;
};

}  // namespace flare::jobs
