// What every connection to PostgreSQL shares, and the store's own connection through libpqxx.
// Internal to jobs/: only the store's files and the pipeline include it.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <utility>

namespace flare::jobs {

// The URL with the options that keep a dead or unreachable server from stalling a thread; the
// operator's own settings in the URL take precedence.
std::string with_defaults(const std::string& url);

// Failures that may pass if tried again later: connection trouble (08), operator intervention
// such as a shutdown or a cancelled statement (57), lack of resources (53), a lost transaction
// (40).
bool transient(std::string_view sqlstate);

// The one reading of a database failure as the store's result. `sqlstate` is the code of the
// server's error (empty when it gave none); nullopt when no answer came (no connection, or it
// broke), and `detail` then says why. Throws Unavailable (try again later) when no answer came
// or the code is transient, else std::runtime_error: the database refused the work. Of the
// server's own message nothing is kept: it can quote row values, payload included.
[[noreturn]] void throw_failure(std::string_view what, std::optional<std::string_view> sqlstate,
                                std::string_view detail = {});

// Runs `sql` as a statement prepared on the transaction's connection: parsed and analysed at its
// first execution there, planned at each (Database::get). For the statements of claims, records
// and batch completions, which run for every batch (bench/README.md, note 63). Named by its text:
// no name can meet two texts, and a connection opened again after a failure prepares it again.
template <typename... Args>
pqxx::result exec_parsed(pqxx::transaction_base& tx, const std::string& sql, Args&&... args) {
  const std::string name = "flare_" + std::to_string(std::hash<std::string>{}(sql));
  tx.conn().prepare(name, sql);
  return tx.exec_prepared(name, std::forward<Args>(args)...);
}

// The store's connection, opened on first use and again after a failure, with the enqueue
// statements prepared. Not thread-safe: one owner thread.
class Database {
 public:
  explicit Database(const std::string& url) : url_(with_defaults(url)) {}

  pqxx::connection& get();
  void drop();

  // Runs `work` in a fresh transaction (Tx = pqxx::nontransaction: statements that commit on
  // their own), and fails as throw_failure() says. A connection that broke before the transaction
  // committed is tried once more on a new connection, since a server restart leaves every idle
  // connection dead.
  template <class Tx = pqxx::work, class Work>
  auto run(const char* what, Work&& work) {
    for (int attempt = 0;; ++attempt) {
      bool had_connection = conn_ && conn_->is_open();
      try {
        Tx tx(get());
        return work(tx);
      } catch (const pqxx::in_doubt_error& e) {
        drop();
        throw_failure(std::string(what) + ": commit outcome unknown", std::nullopt, e.what());
      } catch (const pqxx::broken_connection& e) {
        drop();
        if (attempt == 0 && had_connection) continue;
        throw_failure(what, std::nullopt, e.what());
      } catch (const pqxx::sql_error& e) {
        if (transient(e.sqlstate())) {
          drop();
          if (attempt == 0 && had_connection && e.sqlstate().rfind("57P", 0) == 0) continue;
        }
        throw_failure(what, e.sqlstate());
      }
    }
  }

  // Listens for enqueues (LISTEN) from this call on, until stop_listening(); true when one
  // committed within `timeout`.
  bool await_wakeup(std::chrono::milliseconds timeout);
  // Stops listening (UNLISTEN) until the next await_wakeup().
  void stop_listening();

 private:
  const std::string url_;
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<pqxx::notification_receiver> wakeup_;  // declared after conn_: destroyed first
};

}  // namespace flare::jobs
