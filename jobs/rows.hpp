// How the store's files read a job row, and the statement that sums a pushed job's deliveries
// up into its own row. Internal to jobs/, like database.hpp.
#pragma once

#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "jobs/job.hpp"
#include "jobs/sql.hpp"

namespace flare::jobs {

std::optional<std::string> nullable(const pqxx::field& f);

// Every read of a job selects these, in this order (see read_job); FLARE_JOB_COLUMNS("j.") for
// jobs j.
#define FLARE_JOB_COLUMNS(j)                                                                       \
  j "id::text, " j "project_id, " j "idempotency_key, " j "type, " j "status, " j "attempts, " j   \
    "max_attempts, " j "priority, " j "payload, " j "content_type, " j "source, " j "event_id, " j \
    "last_error, " j                                                                               \
    "lease_token::text, " FLARE_TS(j "created_at") ", " FLARE_TS(j "updated_at") ", " FLARE_TS(    \
        j                                                                                          \
        "run_at") ", " FLARE_TS(j                                                                  \
                                "completed_at") ", " FLARE_TS(j                                    \
                                                              "locked_until") ", " j               \
                                                                              "pushed, " FLARE_TS( \
                                                                                  j "pruned_at")
extern const char* const kJobColumns;
// The job whose columns begin at `first`.
Job read_job(const pqxx::row& row, pqxx::row::size_type first = 0);
std::string select_job(const std::string& where);

// The jobs `keys` gives (a query of project ids and job ids) get their status,
// attempts, run_at, last_error and completed_at from all their deliveries (the rule is
// docs/delivery.md's). Run after any change to a delivery, in its transaction, which locked the
// job's row before touching the delivery: so that two deliveries of one job that change at once
// are summed up one after the other, each seeing the other's change.
std::string summarise(const std::string& keys);
// summarise() for job $1/$2.
extern const std::string kSummarise;

// A route's types as one SQL parameter: joined by newlines, which no type holds ("" for every
// event).
std::string joined_types(const std::vector<std::string>& types);

// SQL that is true when a job whose type is `type` is taken by the types `patterns` (as
// joined_types), its source's provider `provider`: the three are SQL expressions. A job's type
// is "<provider>.<event type>" unless its source names its jobs' type; then only a route without
// types takes it.
std::string takes(const std::string& type, const std::string& provider,
                  const std::string& patterns);

}  // namespace flare::jobs
