// Jobs as text for a terminal: what `flare-gateway jobs list|show` print. Pure; main.cpp reads
// the jobs.
#pragma once

#include <string>
#include <vector>

#include "jobs/job.hpp"
#include "jobs/store.hpp"

namespace flare::gateway {

// One line per job under a header line, columns padded to fit; long texts are cut with "…" and
// anything unprintable is shown as "?".
std::string jobs_table(const std::vector<jobs::Job>& jobs);

// Every field of one job, one "name: value" per line; a pushed job's deliveries and attempts,
// a line each; then the payload when it is printable UTF-8 (else its size).
std::string job_details(const jobs::JobView& view);

// One line per route: its state (and why), failures in a row, deliveries waiting, attempts in
// flight.
std::string routes_table(const std::vector<jobs::RouteState>& routes);

// What a pass of retention removed (or, `dry_run`, would remove) by scope, and in all.
std::string prune_report(const std::vector<jobs::PruneScope>& scopes,
                         const std::vector<jobs::Pruned>& pruned, bool dry_run);

// A replay's target, status and progress, a line each.
std::string replay_text(const jobs::Replay& replay);

}  // namespace flare::gateway
