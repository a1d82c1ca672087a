// Jobs as text for a terminal: what `flare-gateway jobs list|show` print. Pure; main.cpp reads
// the jobs.
#pragma once

#include <string>
#include <vector>

#include "jobs/job.hpp"

namespace flare::gateway {

// One line per job under a header line, columns padded to fit; long texts are cut with "…" and
// anything unprintable is shown as "?".
std::string jobs_table(const std::vector<jobs::Job>& jobs);

// Every field of one job, one "name: value" per line; a pushed job's deliveries and attempts,
// a line each; then the payload when it is printable UTF-8 (else its size).
std::string job_details(const jobs::JobView& view);

}  // namespace flare::gateway
