#include "jobs/pipeline.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <array>
#include <exception>
#include <optional>
#include <string_view>

#include "jobs/database.hpp"

namespace flare::jobs {
namespace {

struct ClearResult {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Answer = std::unique_ptr<PGresult, ClearResult>;

}  // namespace

struct Pipeline::Sent {
  std::vector<std::string> ids;
  BatchPlan plan;
  EnqueueRound round;
  std::string lease_token;    // the batch's Handing
  Answer answer;              // the statement's first result
  int results = 0;            // how many it gave before the sync point
  bool synced = false;        // the sync point came: the statement committed, or nothing did
  bool lost = false;          // no answer will come: the connection broke
  std::exception_ptr unsent;  // set when the batch was never sent: why no connection was ready
};

void Pipeline::ClosePipe::operator()(pg_conn* c) const { PQfinish(c); }

Pipeline::Pipeline(const std::string& url, Store& fallback)
    : url_(with_defaults(url)), fallback_(fallback) {}

Pipeline::~Pipeline() = default;

// The enqueue statements have one possible plan each, whatever the table holds (a sequential
// scan ruled out): this connection plans them once. Planning them for every batch cost
// PostgreSQL about a sixth of its time. The routes table, a row per route, is still read whole
// (its states), and the cost that ruling out gives such a read would have every statement
// compiled to machine code first: 450 ms a batch.
void Pipeline::connect() {
  // Idle, the connection has nothing to say: readable, it is being closed (a restarting server
  // sends why, then closes). A new one now, rather than a lost batch on it later.
  if (conn_ && sent_.empty()) {
    pollfd readable{PQsocket(conn_.get()), POLLIN, 0};
    if (poll(&readable, 1, 0) != 0) lose();
  }
  if (conn_) return;
  std::unique_ptr<pg_conn, ClosePipe> c(PQconnectdb(url_.c_str()));
  if (PQstatus(c.get()) != CONNECTION_OK) {
    throw_failure("pipeline", std::nullopt, PQerrorMessage(c.get()));
  }
  // A step the server refuses is its answer: a problem to report, not an outage. No result, or
  // libpq's own error without a SQLSTATE, is a lost connection.
  auto require = [&c](PGresult* result) {
    Answer answer(result);
    if (PQresultStatus(result) == PGRES_COMMAND_OK) return;
    const char* code = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    try {
      throw_failure("pipeline", code ? std::optional<std::string_view>(code) : std::nullopt,
                    PQerrorMessage(c.get()));
    } catch (const Unavailable&) {
      throw;
    } catch (const std::runtime_error& e) {
      throw NotReady(e.what());
    }
  };
  require(PQexec(c.get(),
                 "SET statement_timeout = 10000; SET plan_cache_mode = force_generic_plan; "
                 "SET enable_seqscan = off; SET jit = off"));
  for (bool keyed : {true, false}) {
    require(PQprepare(c.get(), keyed ? kEnqueueKeyed : kEnqueue, enqueue_sql(keyed).c_str(), 0,
                      nullptr));
  }
  if (PQenterPipelineMode(c.get()) != 1) {
    throw_failure("pipeline", std::nullopt, PQerrorMessage(c.get()));
  }
  conn_ = std::move(c);
}

void Pipeline::lose() {
  conn_.reset();
  for (Sent& s : sent_) s.lost = s.lost || !s.synced;
}

void Pipeline::send(const std::vector<NewJob>& jobs, const Handing& handing) {
  std::vector<std::string> ids = new_job_ids(jobs.size());
  BatchPlan plan = plan_batch(jobs);
  EnqueueRound round(jobs, ids, plan.todo, handing);
  Sent& s = sent_.emplace_back(Sent{std::move(ids),
                                    std::move(plan),
                                    std::move(round),
                                    handing.lease_token,
                                    {},
                                    0,
                                    false,
                                    false,
                                    {}});
  try {
    connect();
  } catch (const std::exception&) {
    s.unsent = std::current_exception();
    return;
  }
  std::array<const char*, EnqueueRound::kParams> values;
  std::array<int, EnqueueRound::kParams> lengths;
  std::array<int, EnqueueRound::kParams> formats;
  for (std::size_t k = 0; k < values.size(); ++k) {
    values[k] = s.round.params[k].data();
    lengths[k] = static_cast<int>(s.round.params[k].size());
    formats[k] = 1;
  }
  if (PQsendQueryPrepared(conn_.get(), s.round.statement(), EnqueueRound::kParams, values.data(),
                          lengths.data(), formats.data(), 0) != 1 ||
      PQpipelineSync(conn_.get()) != 1) {
    lose();
  }
  s.round.params = {};
}

std::size_t Pipeline::sent() const { return sent_.size(); }

int Pipeline::socket() const { return conn_ ? PQsocket(conn_.get()) : -1; }

bool Pipeline::oldest_answered() {
  if (sent_.empty()) return false;
  Sent& s = sent_.front();
  if (s.synced || s.lost || s.unsent) return true;
  if (PQconsumeInput(conn_.get()) != 1) {
    lose();
    return true;
  }
  while (PQisBusy(conn_.get()) == 0) {
    Answer r(PQgetResult(conn_.get()));
    if (!r) {
      // The end of the statement's results, before its sync point; or a broken connection.
      if (PQstatus(conn_.get()) != CONNECTION_OK) {
        lose();
        return true;
      }
      continue;
    }
    if (PQresultStatus(r.get()) == PGRES_PIPELINE_SYNC) {
      s.synced = true;
      return true;
    }
    if (++s.results == 1) s.answer = std::move(r);
  }
  return false;
}

std::vector<Enqueued> Pipeline::receive(const std::vector<NewJob>& jobs) {
  Sent s = std::move(sent_.front());
  sent_.pop_front();
  if (s.unsent) std::rethrow_exception(s.unsent);
  if (s.synced && s.results == 1 && PQresultStatus(s.answer.get()) == PGRES_TUPLES_OK) {
    std::vector<Enqueued> results(jobs.size());
    PGresult* a = s.answer.get();
    auto view = [a](int row, int column) {
      return std::string_view(PQgetvalue(a, row, column),
                              static_cast<std::size_t>(PQgetlength(a, row, column)));
    };
    for (int row = 0; row < PQntuples(a); ++row) {
      s.round.read(s.ids, {view(row, 0), view(row, 1), view(row, 2), view(row, 3), view(row, 4)},
                   results);
    }
    if (s.round.unanswered(jobs, results).empty()) {
      answer_repeats(s.plan, results);
      return results;
    }
  }
  // Refused, lost with the connection, or a job left without an answer (a key that moved
  // while the statement ran): once more on the fallback's connection, with the same ids, which
  // finds whatever this attempt stored.
  return fallback_.enqueue(jobs, s.ids, s.lease_token);
}

}  // namespace flare::jobs
