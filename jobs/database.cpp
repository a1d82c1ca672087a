#include "jobs/database.hpp"

#include "jobs/enqueue.hpp"
#include "jobs/sql.hpp"
#include "jobs/store.hpp"
#include "text/text.hpp"

namespace flare::jobs {
namespace {

class Wakeup : public pqxx::notification_receiver {
 public:
  explicit Wakeup(pqxx::connection_base& c) : notification_receiver(c, kWakeChannel) {}
  void operator()(const std::string&, int) override {}
};

}  // namespace

std::string with_defaults(const std::string& url) {
  const std::pair<const char*, const char*> defaults[] = {{"connect_timeout", "5"},
                                                          {"keepalives_idle", "10"},
                                                          {"keepalives_interval", "5"},
                                                          {"keepalives_count", "3"}};
  bool uri = url.rfind("postgres://", 0) == 0 || url.rfind("postgresql://", 0) == 0;
  std::string out = url;
  for (auto [key, value] : defaults) {
    if (url.find(key) != std::string::npos) continue;
    if (uri) {
      out += out.find('?') == std::string::npos ? '?' : '&';
      out += std::string(key) + "=" + value;
    } else {
      out = std::string(key) + "=" + value + " " + out;
    }
  }
  return out;
}

bool transient(std::string_view sqlstate) {
  for (std::string_view cls : {"08", "57", "53", "40"}) {
    if (sqlstate.substr(0, 2) == cls) return true;
  }
  return false;
}

void throw_failure(std::string_view what, std::optional<std::string_view> sqlstate,
                   std::string_view detail) {
  std::string where(what);
  if (!sqlstate) throw Unavailable(where + ": " + text::one_line(detail));
  std::string code(*sqlstate);
  // A lost connection (08) or a server going away (57P) is no answer; the rest of the transient
  // classes are the database's own.
  bool answered = code.rfind("08", 0) != 0 && code.rfind("57P", 0) != 0;
  if (transient(code)) throw Unavailable(where + ": SQLSTATE " + code, answered);
  throw std::runtime_error(where + ": refused by the database (SQLSTATE " + code + ")");
}

// Statements are parsed once per connection. Each execution is planned with its values: a
// generic plan, made once while the table was small, kept a lookup on a sequential scan as the
// table grew (measured: half the throughput).
pqxx::connection& Database::get() {
  if (!conn_ || !conn_->is_open()) {
    wakeup_.reset();
    conn_ = std::make_unique<pqxx::connection>(url_);
    // A statement stuck on a lock must not hold every waiting request hostage.
    pqxx::nontransaction(*conn_).exec(
        "SET statement_timeout = 10000; SET plan_cache_mode = force_custom_plan");
    conn_->prepare(kEnqueueKeyed, enqueue_sql(true));
    conn_->prepare(kEnqueue, enqueue_sql(false));
    conn_->prepare(kLookupIds, kLookupIdsSql);
  }
  return *conn_;
}

void Database::drop() {
  wakeup_.reset();
  conn_.reset();
}

bool Database::await_wakeup(std::chrono::milliseconds timeout) {
  try {
    pqxx::connection& c = get();
    if (!wakeup_) wakeup_ = std::make_unique<Wakeup>(c);
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
    return c.await_notification(micros / 1'000'000, micros % 1'000'000) > 0;
  } catch (const pqxx::broken_connection& e) {
    drop();
    throw_failure("listen", std::nullopt, e.what());
  } catch (const pqxx::sql_error& e) {
    drop();
    throw_failure("listen", e.sqlstate());
  }
}

void Database::stop_listening() {
  // As the channel's last receiver goes, libpqxx sends UNLISTEN and keeps quiet about a failure:
  // a connection that is no longer open is dropped, and the next await_wakeup() connects afresh.
  if (conn_ && conn_->is_open()) wakeup_.reset();
  if (!conn_ || !conn_->is_open()) drop();
}

}  // namespace flare::jobs
