// How the store's files read a job row, and the statement that sums a pushed job's deliveries
// up into its own row. Internal to jobs/, like database.hpp.
#pragma once

#include <optional>
#include <pqxx/pqxx>
#include <string>

#include "jobs/job.hpp"

namespace flare::jobs {

std::optional<std::string> nullable(const pqxx::field& f);

// Every read of a job selects these, in this order (see read_job).
extern const char* const kJobColumns;
Job read_job(const pqxx::row& r);
std::string select_job(const std::string& where);

// Job $1/$2's status, attempts, run_at, last_error and completed_at from its deliveries (the
// rule is docs/delivery.md's). Run after any change to a delivery, in its transaction, which
// locked the job's row before touching the delivery: so that two deliveries of one job that
// change at once are summed up one after the other, each seeing the other's change.
extern const char* const kSummarise;

// Locks job $1/$2's row; false when there is no such job.
bool lock_job(pqxx::work& tx, const std::string& project, const std::string& id);

}  // namespace flare::jobs
