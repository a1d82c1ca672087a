// The store's enqueue on its own connection, and the wait for new jobs. The lifecycle of a job
// is in lifecycle.cpp, the schema in migrations.cpp.
#include "jobs/store.hpp"

#include <algorithm>

#include "jobs/database.hpp"
#include "jobs/enqueue.hpp"

namespace flare::jobs {

Store::Store(const std::string& url) : db_(std::make_unique<Database>(url)) {}

Store::~Store() = default;

std::vector<Enqueued> Store::enqueue(const std::vector<NewJob>& jobs) {
  return enqueue(jobs, new_job_ids(jobs.size()));
}

namespace {

// Of jobs $1 (projects) and $2 (ids), the positions (from 1) of those whose deliveries are
// running under lease token $3.
constexpr const char* kHandedOver = R"sql(
SELECT k.n FROM unnest($1::text[], $2::uuid[]) WITH ORDINALITY AS k(project_id, id, n)
WHERE EXISTS (SELECT FROM deliveries d WHERE d.project_id = k.project_id AND d.job_id = k.id
              AND d.lease_token = $3::uuid AND d.status = 'running'))sql";

}  // namespace

std::vector<Enqueued> Store::enqueue(const std::vector<NewJob>& jobs,
                                     const std::vector<std::string>& ids,
                                     const std::string& lease_token) {
  BatchPlan plan = plan_batch(jobs);
  std::vector<Enqueued> results(jobs.size());
  // The same ids on every attempt: a job an earlier attempt stored (its answer lost with the
  // connection) is found holding its own id, and was created by this call all the same.
  db_->run<pqxx::nontransaction>("enqueue", [&](pqxx::nontransaction& tx) {
    std::fill(results.begin(), results.end(), Enqueued{});
    std::vector<std::size_t> todo = plan.todo;
    // A key the statement found taken but could not see (its transaction committed while the
    // statement ran), or whose job was deleted meanwhile, is tried again by the next round.
    for (int round = 0; !todo.empty(); ++round) {
      if (round == kEnqueueRounds) throw std::runtime_error("enqueue: keys keep vanishing");
      EnqueueRound r(jobs, ids, std::move(todo));
      auto p = [&r](std::size_t k) { return pqxx::binarystring(r.params[k]); };
      pqxx::result rows = tx.exec_prepared(r.statement(), p(0), p(1), p(2), p(3), p(4), p(5), p(6),
                                           p(7), p(8), p(9), p(10), p(11), p(12), p(13), p(14),
                                           p(15), p(16), p(17), p(18), p(19));
      auto view = [](const pqxx::field& f) { return std::string_view(f.c_str(), f.size()); };
      for (const auto& row : rows) {
        r.read(ids, {view(row[0]), view(row[1]), view(row[2]), view(row[3]), view(row[4])},
               results);
      }
      if (std::vector<std::size_t> bare = r.unanswered(jobs, results, true); !bare.empty()) {
        BinaryArray projects(BinaryArray::kText), bare_ids(BinaryArray::kUuid);
        for (std::size_t i : bare) {
          projects.text(jobs[i].project_id);
          bare_ids.uuid(ids[i]);
        }
        for (const auto& row : tx.exec_prepared(kLookupIds, pqxx::binarystring(projects.str()),
                                                pqxx::binarystring(bare_ids.str()))) {
          std::size_t i = bare.at(row[0].as<std::size_t>() - 1);
          results[i] = answered(ids[i], view(row[1]), view(row[2]), view(row[3]), view(row[4]));
        }
      }
      todo = r.unanswered(jobs, results);
    }
    if (lease_token.empty()) return;
    // Handed over by the try whose answer was lost: the lease is live, so no claim has taken
    // them since. Else they would wait for it to run out, and it would cost them an attempt.
    BinaryArray projects(BinaryArray::kText), running(BinaryArray::kUuid);
    std::vector<std::size_t> at;
    for (std::size_t i : plan.todo) {
      if (!results[i].created || results[i].status != Status::kRunning) continue;
      projects.text(jobs[i].project_id);
      running.uuid(ids[i]);
      at.push_back(i);
    }
    if (at.empty()) return;
    for (const auto& row : tx.exec_params(kHandedOver, pqxx::binarystring(projects.str()),
                                          pqxx::binarystring(running.str()), lease_token)) {
      results[at.at(row[0].as<std::size_t>() - 1)].handed_over = true;
    }
  });
  answer_repeats(plan, results);
  return results;
}

bool Store::wait_for_jobs(std::chrono::milliseconds timeout) { return db_->await_wakeup(timeout); }

void Store::stop_waiting_for_jobs() { db_->stop_listening(); }

}  // namespace flare::jobs
