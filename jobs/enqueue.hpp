// The enqueue statement and everything it is made of, without a database API: the ids of new
// jobs, the batch's parameters as PostgreSQL arrays in the binary format, the order in which a
// batch's keys are stored, and the reading of the statement's answer. The store sends it over
// its connection, the pipeline over its own.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "jobs/job.hpp"

namespace flare::jobs {

// Version 7 (RFC 9562): the time in milliseconds, the microseconds within it (in the 12 bits
// RFC 9562 lets carry a finer clock), then 62 random bits. Ids made in order land at the right
// edge of the primary key's index, so inserts touch the same few pages instead of a random one
// each, and the jobs API lists newest first by id.
std::string new_job_id();
std::vector<std::string> new_job_ids(std::size_t count);

// A PostgreSQL array parameter in the binary format (that of array_send): each element travels
// as its length and its bytes, so neither side quotes, escapes or parses text, and a whole batch
// costs a handful of parameters. The element type must be the one the statement casts to.
class BinaryArray {
 public:
  enum Type : std::uint32_t { kInt4 = 23, kInt8 = 20, kText = 25, kUuid = 2950 };

  explicit BinaryArray(Type type) : type_(type) {}

  void text(std::string_view value);
  void text_or_null(const std::optional<std::string>& value);  // nullopt: NULL
  void int4(std::int32_t value);
  void int8(std::optional<std::int64_t> value);  // nullopt: NULL
  // A UUID in its text form: 32 hex digits, dashes anywhere between them.
  void uuid(std::string_view id);

  // Dimensions, null flag, element type, then the one dimension's size and lower bound.
  std::string str() const;

 private:
  void length(std::int64_t bytes);
  void big_endian(std::uint64_t value, int bytes);

  Type type_;
  std::uint32_t count_ = 0;
  bool nulls_ = false;
  std::string elements_;
};

// How many times a batch is sent before its keys are given up on (see Store::enqueue).
inline constexpr int kEnqueueRounds = 3;

// The prepared statements a connection that enqueues has: the enqueue statement in its two
// forms (see enqueue_sql), and the lookup of jobs by id.
inline constexpr const char* kEnqueueKeyed = "enqueue_keyed";
inline constexpr const char* kEnqueue = "enqueue";
inline constexpr const char* kLookupIds = "lookup_ids";

// The enqueue statement with its conflicts checked on the key index alone, or on every unique
// index when a job of the batch has no key.
std::string enqueue_sql(bool every_job_keyed);

// Jobs without a key, by the ids of the batch: the position in the batch, then the columns of
// the enqueue statement. Rare (a batch retried after a lost connection), so planned each time.
extern const char* const kLookupIdsSql;

// Which jobs of a batch are stored, and in what order: every job without a key, then the first
// job of each key, in key order. Keys in sorted order are the lock order, so two batches that
// share keys wait on each other instead of deadlocking. A later job with a key already in the
// batch is answered with the first one's result: first[i] names the job whose answer job i
// takes (itself, for the jobs stored).
struct BatchPlan {
  std::vector<std::size_t> todo;
  std::vector<std::size_t> first;
};

BatchPlan plan_batch(const std::vector<NewJob>& jobs);

// Gives each repeated key the answer of its first job, as a duplicate, never handed over.
void answer_repeats(const BatchPlan& plan, std::vector<Enqueued>& results);

// A job the enqueue statement (or the lookup by id) answered with: its id, status, created_at
// and run_at. It was created by this batch when it holds the id the batch gave it (`ours`):
// an earlier attempt stored it.
Enqueued answered(const std::string& ours, std::string_view id, std::string_view status,
                  std::string_view created_at, std::string_view run_at);

// The jobs of a batch whose deliveries this process's workers take as soon as they are stored
// (see Handoff): the statement stores them running, leased under `lease_token`, unless a route
// of their source is paused or open. Such a job is answered `running`.
struct Handing {
  std::vector<bool> offered;  // by job of the batch; empty: none
  std::string lease_token;    // a UUID, one for the batch
  int lease_seconds = 0;
};

// One execution of the enqueue statement: its parameters for the jobs at `todo`, and the reading
// of its rows into the batch's results.
class EnqueueRound {
 public:
  static constexpr std::size_t kParams = 20;  // each in the binary format

  EnqueueRound(const std::vector<NewJob>& jobs, const std::vector<std::string>& ids,
               std::vector<std::size_t> todo, const Handing& handing = {});

  // kEnqueueKeyed when every job has a key, else kEnqueue.
  const char* statement() const { return every_job_keyed_ ? kEnqueueKeyed : kEnqueue; }

  // One row of the answer: the position in `todo` counting from 1 (0: a row this statement
  // inserted), then the columns `answered` takes.
  void read(const std::vector<std::string>& ids, const std::array<std::string_view, 5>& row,
            std::vector<Enqueued>& results) const;

  // The jobs of this round without an answer; `without_key` limits them to jobs without a key.
  std::vector<std::size_t> unanswered(const std::vector<NewJob>& jobs,
                                      const std::vector<Enqueued>& results,
                                      bool without_key = false) const;

  std::array<std::string, kParams> params;  // $1..$20; emptied once sent

 private:
  std::vector<std::size_t> todo_;
  std::vector<std::size_t> by_id_;  // todo_, ordered by job id
  bool every_job_keyed_ = true;
};

}  // namespace flare::jobs
