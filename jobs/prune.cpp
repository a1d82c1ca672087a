// Retention: payloads emptied and rows deleted in small transactions, under a session advisory
// lock so that one gateway process prunes at a time.
#include "jobs/prune.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "jobs/database.hpp"

namespace flare::jobs {
namespace {

// Held by the process that prunes; the value is arbitrary, and not the migrations' lock.
constexpr long long kPruneLock = 0x666c617270;

// The scope's jobs: $1 the project, $2 the sources joined by newlines (no name holds one), $3
// whether the scope is every other source's.
constexpr const char* kInScope =
    "j.project_id = $1 AND (CASE WHEN $3 THEN j.source IS NULL OR NOT j.source = "
    "ANY(string_to_array($2, E'\\n')) ELSE j.source = ANY(string_to_array($2, E'\\n')) END)";

// Ended jobs stored before $4 days ago. Job ids begin with the millisecond they were made in
// (version 7), so the primary key finds them oldest first and the walk stops at that moment.
std::string stored_before() {
  return std::string(kInScope) +
         " AND j.status IN ('succeeded', 'cancelled', 'dead') AND j.created_at < now() - "
         "make_interval(days => $4) AND j.id < (SELECT (left(h, 8) || '-' || right(h, 4) || "
         "'-0000-0000-000000000000')::uuid FROM (SELECT lpad(to_hex((extract(epoch FROM now() - "
         "make_interval(days => $4)) * 1000)::bigint), 12, '0') AS h) t)";
}

// Jobs of status $5 that ended before $4 days ago and still hold their payload (ix_jobs_ended).
std::string ended_before() {
  return std::string(kInScope) +
         " AND j.status = $5 AND j.pruned_at IS NULL AND j.updated_at < now() - "
         "make_interval(days => $4)";
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out.append(out.empty() ? "" : "\n").append(n);
  return out;
}

}  // namespace

std::optional<std::vector<Pruned>> Store::prune(const std::vector<PruneScope>& scopes,
                                                int batch_size, bool dry_run,
                                                const Between& between) {
  // Walks the ids in order from $6, the last one the previous batch deleted: what a batch
  // passed over and kept (a job still waiting, another source's) is not read again in the pass.
  const std::string kDelete = "WITH picked AS (SELECT j.project_id, j.id FROM jobs j WHERE " +
                              stored_before() +
                              " AND j.id > $6::uuid ORDER BY j.id LIMIT $5 FOR UPDATE SKIP "
                              "LOCKED) DELETE FROM jobs j USING picked p WHERE j.project_id = "
                              "p.project_id AND j.id = p.id RETURNING j.id::text";
  // The answers attempts recorded go with the payload: a destination's reply can quote it.
  const std::string kEmpty =
      "WITH picked AS (SELECT j.project_id, j.id FROM jobs j WHERE " + ended_before() +
      " LIMIT $6 FOR UPDATE SKIP LOCKED), answers AS (UPDATE attempts a SET response = NULL "
      "FROM picked p WHERE a.project_id = p.project_id AND a.job_id = p.id AND a.response IS NOT "
      "NULL) UPDATE jobs j SET payload = ''::bytea, pruned_at = now() FROM picked p WHERE "
      "j.project_id = p.project_id AND j.id = p.id";

  std::vector<Pruned> out(scopes.size());
  bool held = true;    // false once another process held the lock
  bool began = false;  // a batch took the lock
  bool going = true;   // false once `between` ended the pass
  // Runs `statement` a batch at a time until a batch comes back short. Each batch takes the
  // lock again (a session lock counts how often it is held; the pass lets go of every hold at
  // its end), so a connection opened again after a failure holds it too, or finds it taken.
  // With `cursor`, the statement returns the ids it deleted and takes the greatest so far as
  // its last parameter.
  auto batches = [&](const std::string& statement, std::int64_t& count, std::string* cursor,
                     const auto&... args) {
    while (held && going) {
      std::string last = cursor != nullptr ? *cursor : "";
      auto started = std::chrono::steady_clock::now();
      auto done = db_->run("prune", [&](pqxx::work& tx) -> std::optional<std::int64_t> {
        if (!tx.exec_params("SELECT pg_try_advisory_lock($1)", kPruneLock)[0][0].as<bool>()) {
          return std::nullopt;
        }
        began = true;
        pqxx::result r = cursor != nullptr ? tx.exec_params(statement, args..., batch_size, last)
                                           : tx.exec_params(statement, args..., batch_size);
        for (const auto& row : r) last = std::max(last, row[0].as<std::string>());
        tx.commit();
        return r.affected_rows();
      });
      held = done.has_value();
      if (!held) return;
      if (cursor != nullptr) *cursor = last;
      count += *done;
      going = between(std::chrono::steady_clock::now() - started);
      if (*done < batch_size) return;
    }
  };
  auto counted = [&](const std::string& where, std::int64_t& count, const auto&... args) {
    count += db_->run("prune", [&](pqxx::work& tx) {
      return tx.exec_params("SELECT count(*) FROM jobs j WHERE " + where, args...)[0][0]
          .template as<std::int64_t>();
    });
  };
  // Also after a failed statement: a session lock outlives the transaction that took it.
  auto release = [&] {
    if (!began) return;
    try {
      db_->run("prune", [](pqxx::work& tx) { return tx.exec("SELECT pg_advisory_unlock_all()"); });
    } catch (const std::exception&) {
      // The connection is gone, and its locks with it.
    }
  };
  try {
    for (std::size_t i = 0; i < scopes.size() && held; ++i) {
      const PruneScope& s = scopes[i];
      const config::Retention& r = s.retention;
      const std::string sources = joined(s.sources);
      struct Step {
        std::optional<int> days;
        const char* status;  // nullptr: whole rows
        std::int64_t* count;
      };
      const Step steps[] = {{r.delete_days, nullptr, &out[i].rows},
                            {r.payload_days, "succeeded", &out[i].payloads},
                            {r.payload_days, "cancelled", &out[i].payloads},
                            {r.dead_payload_days, "dead", &out[i].dead_payloads}};
      for (const Step& step : steps) {
        if (!step.days) continue;
        if (dry_run && step.status == nullptr) {
          counted(stored_before(), *step.count, s.project, sources, s.others, *step.days);
        } else if (dry_run) {
          counted(ended_before(), *step.count, s.project, sources, s.others, *step.days,
                  step.status);
        } else if (step.status == nullptr) {
          std::string cursor = "00000000-0000-0000-0000-000000000000";
          batches(kDelete, *step.count, &cursor, s.project, sources, s.others, *step.days);
        } else {
          batches(kEmpty, *step.count, nullptr, s.project, sources, s.others, *step.days,
                  step.status);
        }
      }
    }
  } catch (...) {
    release();
    throw;
  }
  release();
  if (!held && !began) return std::nullopt;
  return out;
}

std::vector<PruneScope> prune_scopes(const config::Config& config) {
  std::vector<PruneScope> out;
  for (const config::Project& p : config.projects) {
    PruneScope rest{p.id, {}, true, p.retention};
    for (const config::Source& s : config.sources) {
      if (s.project != p.id || s.retention == p.retention) continue;
      rest.sources.push_back(s.name);
      if (s.retention.prunes()) out.push_back({p.id, {s.name}, false, s.retention});
    }
    if (rest.retention.prunes()) out.push_back(std::move(rest));
  }
  return out;
}

Pruner::Pruner(const std::string& database_url, std::vector<PruneScope> scopes,
               config::Pruning pruning, Observer* observer)
    : scopes_(std::move(scopes)), pruning_(pruning), observer_(observer) {
  thread_ = std::thread([this, database_url] { run(database_url); });
}

Pruner::~Pruner() { stop(); }

void Pruner::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Pruner::run(const std::string& database_url) {
  Store store(database_url);
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    pass(store);
    lock.lock();
    changed_.wait_for(lock, pruning_.interval, [this] { return stopping_.load(); });
  }
}

void Pruner::pass(Store& store) {
  auto began = std::chrono::steady_clock::now();
  // Ingestion comes first: after each transaction the pass rests nineteen times as long as it
  // took, so that it has the database a twentieth of the time at most (bench/README.md, note 44).
  auto rest = [this](std::chrono::steady_clock::duration took) {
    std::unique_lock lock(mutex_);
    return !changed_.wait_for(lock, took * 19, [this] { return stopping_.load(); });
  };
  try {
    auto pruned = store.prune(scopes_, pruning_.batch_size, false, rest);
    if (!pruned) {
      spdlog::debug("retention: another gateway process is pruning");
      return;
    }
    Pruned all;
    for (const Pruned& p : *pruned) {
      all.payloads += p.payloads;
      all.dead_payloads += p.dead_payloads;
      all.rows += p.rows;
    }
    if (observer_ != nullptr) observer_->pruned(all.payloads + all.dead_payloads, all.rows);
    if (all.payloads + all.dead_payloads + all.rows == 0) return;
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - began);
    spdlog::info("retention: emptied {} payloads ({} of dead jobs), deleted {} jobs in {} ms",
                 all.payloads + all.dead_payloads, all.dead_payloads, all.rows, took.count());
  } catch (const std::exception& e) {
    // Tried again at the next pass; what this one pruned stays pruned.
    if (observer_ != nullptr) observer_->database_error();
    spdlog::warn("retention: pass failed: {}", e.what());
  }
}

}  // namespace flare::jobs
