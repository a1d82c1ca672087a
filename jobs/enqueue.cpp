#include "jobs/enqueue.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <tuple>

#include "jobs/sql.hpp"
#include "text/text.hpp"

namespace flare::jobs {
namespace {

// The enqueue statement commits on its own: a batch costs one round trip, instead of BEGIN,
// INSERT, lookup, NOTIFY and COMMIT in turn. Without a transaction around it, a connection
// lost mid-statement leaves the outcome unknown; the retry of the batch with the same job ids
// finds out (see Store::enqueue).
//
// The payloads travel as one binary parameter, cut apart by offset and length, so that neither
// side spends time on a hex encoding of every byte. A conflict is a no-op: a retried job finds
// its own row (by its key, or without a key by its id) and is looked up instead of failing.
// When every job has a key, only the key index is checked for conflicts beforehand; a job
// without one needs the primary key checked too, so such a batch names no index (see
// enqueue_sql). Each inserted row that waits notifies the workers; PostgreSQL folds a
// transaction's equal notifications into one.
//
// A pushed job's deliveries are inserted with it, by the same statement: for the rows it inserted
// only, so that a duplicate or a retried batch adds none. A job the committer offers to its
// process's workers ($18, see Handoff) is stored with its deliveries running, one attempt each,
// leased to them under token $19 for $20 seconds, unless a route of its source is paused or open
// (it then waits for a claim, which knows what such a route allows): no claim, and no
// notification, for a delivery whose worker is known before it is stored (bench/README.md,
// note 62).
//
// It answers with the rows it inserted (position 0), then with the jobs that already held keys
// of the batch, by position in the batch (counting from 1). An inserted job's times are the
// statement's (now()) unless the job named its run_at, so they are formatted once per batch
// instead of twice per job (to_char was 2.6 % of the committing backend's time). Each key is an
// equality on every column of the unique index, under a LIMIT that keeps the join from being
// rearranged: the one plan that fits, whatever the table holds when it is planned (a sequential
// scan ruled out), so a committer plans each form of the statement once. The lookup sees the rows
// committed before the statement began, not those it inserted; a key taken by a transaction still
// running then is found by the next round.
constexpr const char* kEnqueueHead = R"sql(
WITH inserted AS (
  INSERT INTO jobs (id, project_id, idempotency_key, type, payload, content_type, source,
                    event_id, max_attempts, attempt_allowance, priority, run_at, pushed, status,
                    completed_at, attempts)
  SELECT id, project_id, nullif(key, ''), type,
         substring($5::bytea FROM payload_at FOR payload_length), content_type,
         nullif(source, ''), nullif(event_id, ''), max_attempts, max_attempts, priority,
         coalesce('epoch'::timestamptz + run_at * interval '1 microsecond', now()), routes >= 0,
         CASE WHEN routes = 0 THEN 'succeeded' WHEN handed THEN 'running' ELSE 'queued' END,
         CASE WHEN routes = 0 THEN now() END, CASE WHEN handed THEN routes ELSE 0 END
  FROM (SELECT *, offered = 1 AND routes > 0
                  AND source NOT IN (SELECT r.source FROM routes r WHERE r.state <> 'closed')
                    AS handed
        FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $6::int[], $7::int[],
                    $8::text[], $9::text[], $10::text[], $11::int[], $12::int[], $13::bigint[],
                    $14::int[], $18::int[])
          AS u(id, project_id, key, type, payload_at, payload_length, content_type, source,
               event_id, max_attempts, priority, run_at, routes, offered)) u
  ON CONFLICT )sql";
constexpr const char* kEnqueueTail = R"sql( DO NOTHING
  RETURNING id, project_id, idempotency_key, source, status, created_at, run_at,
            CASE WHEN status = 'queued' THEN pg_notify(')sql" FLARE_WAKE_CHANNEL R"sql(', '') END),
delivered AS (
  INSERT INTO deliveries (project_id, job_id, route, source, attempt_allowance, max_attempts,
                          run_at, status, attempts, lease_token, locked_until)
  SELECT i.project_id, i.id, d.route, i.source, d.max_attempts, d.max_attempts, i.run_at,
         i.status, CASE WHEN i.status = 'running' THEN 1 ELSE 0 END,
         CASE WHEN i.status = 'running' THEN ($19::uuid[])[1] END,
         CASE WHEN i.status = 'running' THEN now() + ($20::int[])[1] * interval '1 second' END
  FROM unnest($15::uuid[], $16::text[], $17::int[]) AS d(job_id, route, max_attempts)
  JOIN inserted i ON i.id = d.job_id),
batch AS MATERIALIZED (SELECT now() AS at, )sql" FLARE_TS("now()") R"sql( AS at_text)
SELECT 0::bigint, i.id::text, i.status,
       CASE WHEN i.created_at = b.at THEN b.at_text ELSE )sql" FLARE_TS("i.created_at") R"sql( END,
       CASE WHEN i.run_at = b.at THEN b.at_text ELSE )sql" FLARE_TS("i.run_at") R"sql( END
FROM inserted i CROSS JOIN batch b
UNION ALL
SELECT k.n, j.id::text, j.status, )sql" FLARE_TS("j.created_at") ", " FLARE_TS("j.run_at") R"sql(
FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS k(project_id, key, n)
CROSS JOIN LATERAL (SELECT * FROM jobs WHERE project_id = k.project_id AND idempotency_key = k.key
                    LIMIT 1) j
WHERE NOT EXISTS (SELECT FROM inserted i
                  WHERE i.project_id = k.project_id AND i.idempotency_key = k.key))sql";

}  // namespace

std::string enqueue_sql(bool every_job_keyed) {
  return std::string(kEnqueueHead) +
         (every_job_keyed ? "(project_id, idempotency_key) WHERE idempotency_key IS NOT NULL"
                          : "") +
         kEnqueueTail;
}

const char* const kLookupIdsSql = R"sql(
SELECT k.n, j.id::text, j.status, )sql" FLARE_TS("j.created_at") ", " FLARE_TS("j.run_at") R"sql(
FROM unnest($1::text[], $2::uuid[]) WITH ORDINALITY AS k(project_id, id, n)
JOIN jobs j ON j.project_id = k.project_id AND j.id = k.id)sql";

std::string new_job_id() {
  // Random bytes drawn 4 KiB at a time: a RAND_bytes call per job (each with its own getpid)
  // cost a microsecond. The process never forks, so no two processes share a pool.
  thread_local unsigned char pool[4096];
  thread_local std::size_t used = sizeof pool;
  unsigned char b[16];
  if (used + sizeof b > sizeof pool) {
    if (RAND_bytes(pool, sizeof pool) != 1)
      throw std::runtime_error("no random bytes for a job id");
    used = 0;
  }
  std::memcpy(b, pool + used, sizeof b);
  used += sizeof b;
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  auto ms = us / 1000;
  auto sub = static_cast<unsigned>(us % 1000);
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  b[6] = static_cast<unsigned char>(0x70 | sub >> 8);  // version 7
  b[7] = static_cast<unsigned char>(sub);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 9562 variant
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kDigits[b[i] >> 4];
    out += kDigits[b[i] & 0xf];
  }
  return out;
}

std::vector<std::string> new_job_ids(std::size_t count) {
  std::vector<std::string> ids(count);
  for (std::string& id : ids) id = new_job_id();
  return ids;
}

void BinaryArray::text(std::string_view value) {
  length(static_cast<std::int64_t>(value.size()));
  elements_ += value;
}

void BinaryArray::text_or_null(const std::optional<std::string>& value) {
  if (!value) {
    nulls_ = true;
    length(-1);
    return;
  }
  text(std::string_view(*value));
}

void BinaryArray::int4(std::int32_t value) {
  length(4);
  big_endian(static_cast<std::uint32_t>(value), 4);
}

void BinaryArray::int8(std::optional<std::int64_t> value) {
  if (!value) {
    nulls_ = true;
    length(-1);  // NULL: a length and no bytes
    return;
  }
  length(8);
  big_endian(static_cast<std::uint64_t>(*value), 8);
}

void BinaryArray::uuid(std::string_view id) {
  length(16);
  int digits = 0;
  unsigned byte = 0;
  for (char c : id) {
    if (c == '-') continue;
    int v = text::hex_digit(c);
    if (v < 0 || digits == 32) throw std::runtime_error("a job id is not a UUID");
    byte = byte << 4 | static_cast<unsigned>(v);
    if (++digits % 2 == 0) {
      elements_ += static_cast<char>(byte);
      byte = 0;
    }
  }
  if (digits != 32) throw std::runtime_error("a job id is not a UUID");
}

std::string BinaryArray::str() const {
  std::string out;
  out.reserve(20 + elements_.size());
  for (std::uint32_t word : {1U, nulls_ ? 1U : 0U, static_cast<std::uint32_t>(type_), count_, 1U}) {
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>(word >> shift);
  }
  out += elements_;
  return out;
}

void BinaryArray::length(std::int64_t bytes) {
  ++count_;
  big_endian(static_cast<std::uint32_t>(bytes), 4);
}

void BinaryArray::big_endian(std::uint64_t value, int bytes) {
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) {
    elements_ += static_cast<char>(value >> shift);
  }
}

BatchPlan plan_batch(const std::vector<NewJob>& jobs) {
  BatchPlan plan;
  plan.first.resize(jobs.size());
  std::vector<std::size_t> keyed;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    plan.first[i] = i;
    (jobs[i].idempotency_key.empty() ? plan.todo : keyed).push_back(i);
  }
  auto key = [&](std::size_t i) { return std::tie(jobs[i].project_id, jobs[i].idempotency_key); };
  std::stable_sort(keyed.begin(), keyed.end(),
                   [&](std::size_t a, std::size_t b) { return key(a) < key(b); });
  for (std::size_t k = 0; k < keyed.size(); ++k) {
    if (k > 0 && key(keyed[k]) == key(keyed[k - 1])) {
      plan.first[keyed[k]] = plan.first[keyed[k - 1]];
    } else {
      plan.todo.push_back(keyed[k]);
    }
  }
  return plan;
}

void answer_repeats(const BatchPlan& plan, std::vector<Enqueued>& results) {
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (plan.first[i] == i) continue;
    results[i] = results[plan.first[i]];
    results[i].created = false;
    results[i].handed_over = false;  // the first job's deliveries are the ones handed over
  }
}

Enqueued answered(const std::string& ours, std::string_view id, std::string_view status,
                  std::string_view created_at, std::string_view run_at) {
  return {std::string(id), id == ours, status_of(status), std::string(created_at),
          std::string(run_at)};
}

EnqueueRound::EnqueueRound(const std::vector<NewJob>& jobs, const std::vector<std::string>& ids,
                           std::vector<std::size_t> todo, const Handing& handing)
    : todo_(std::move(todo)), by_id_(todo_) {
  BinaryArray id(BinaryArray::kUuid), project(BinaryArray::kText), key(BinaryArray::kText),
      type(BinaryArray::kText), payload_at(BinaryArray::kInt4), payload_length(BinaryArray::kInt4),
      content_type(BinaryArray::kText), source(BinaryArray::kText), event_id(BinaryArray::kText),
      attempts(BinaryArray::kInt4), priority(BinaryArray::kInt4), run_at(BinaryArray::kInt8),
      routes(BinaryArray::kInt4), delivery_job(BinaryArray::kUuid),
      delivery_route(BinaryArray::kText), delivery_attempts(BinaryArray::kInt4),
      offered(BinaryArray::kInt4), lease_token(BinaryArray::kUuid),
      lease_seconds(BinaryArray::kInt4);
  std::string payloads;
  std::size_t payload_bytes = 0;
  for (std::size_t i : todo_) payload_bytes += jobs[i].payload.size();
  payloads.reserve(payload_bytes);
  for (std::size_t i : todo_) {
    const NewJob& j = jobs[i];
    id.uuid(ids[i]);
    project.text(j.project_id);
    key.text(j.idempotency_key);
    type.text(j.type);
    // The batch's bytes are bounded far below 2 GiB (committer max_batch_bytes).
    payload_at.int4(static_cast<std::int32_t>(payloads.size() + 1));  // SQL counts from 1
    payload_length.int4(static_cast<std::int32_t>(j.payload.size()));
    payloads += j.payload;
    content_type.text(j.content_type);
    source.text(j.source);
    event_id.text(j.event_id);
    attempts.int4(j.max_attempts);
    priority.int4(j.priority);
    run_at.int8(j.run_at_micros);
    routes.int4(j.pushed ? static_cast<std::int32_t>(j.deliveries.size()) : -1);
    offered.int4(!handing.offered.empty() && handing.offered[i] ? 1 : 0);
    for (const NewDelivery& d : j.deliveries) {
      delivery_job.uuid(ids[i]);
      delivery_route.text(d.route);
      delivery_attempts.int4(d.max_attempts);
    }
    every_job_keyed_ = every_job_keyed_ && !j.idempotency_key.empty();
  }
  lease_token.uuid(handing.lease_token.empty() ? std::string(32, '0') : handing.lease_token);
  lease_seconds.int4(handing.lease_seconds);
  params = {id.str(),
            project.str(),
            key.str(),
            type.str(),
            std::move(payloads),
            payload_at.str(),
            payload_length.str(),
            content_type.str(),
            source.str(),
            event_id.str(),
            attempts.str(),
            priority.str(),
            run_at.str(),
            routes.str(),
            delivery_job.str(),
            delivery_route.str(),
            delivery_attempts.str(),
            offered.str(),
            lease_token.str(),
            lease_seconds.str()};
  std::sort(by_id_.begin(), by_id_.end(),
            [&](std::size_t a, std::size_t b) { return ids[a] < ids[b]; });
}

void EnqueueRound::read(const std::vector<std::string>& ids,
                        const std::array<std::string_view, 5>& row,
                        std::vector<Enqueued>& results) const {
  std::size_t n = 0;
  std::from_chars(row[0].data(), row[0].data() + row[0].size(), n);
  std::size_t i;
  if (n != 0) {
    i = todo_.at(n - 1);
  } else {
    auto at = std::lower_bound(by_id_.begin(), by_id_.end(), row[1],
                               [&](std::size_t a, std::string_view id) { return ids[a] < id; });
    if (at == by_id_.end() || ids[*at] != row[1]) throw std::runtime_error("enqueue: unknown id");
    i = *at;
  }
  results[i] = answered(ids[i], row[1], row[2], row[3], row[4]);
  results[i].handed_over = n == 0 && results[i].status == Status::kRunning;
}

std::vector<std::size_t> EnqueueRound::unanswered(const std::vector<NewJob>& jobs,
                                                  const std::vector<Enqueued>& results,
                                                  bool without_key) const {
  std::vector<std::size_t> out;
  for (std::size_t i : todo_) {
    if (results[i].job_id.empty() && (!without_key || jobs[i].idempotency_key.empty())) {
      out.push_back(i);
    }
  }
  return out;
}

}  // namespace flare::jobs
