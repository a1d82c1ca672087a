#include "support/database.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>

#include "support/env.hpp"

namespace flare::test {

TestDatabase::TestDatabase() : admin_url_(require_env("FLARE_TEST_DATABASE_URL")) {
  static std::atomic<int> counter{0};
  name_ = "flare_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++);
  pqxx::connection admin(admin_url_);
  pqxx::nontransaction(admin).exec("CREATE DATABASE " + name_);
  url_ = admin_url_ + " dbname=" + name_;
}

TestDatabase::~TestDatabase() {
  try {
    pqxx::connection admin(admin_url_);
    pqxx::nontransaction(admin).exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (const std::exception&) {
    // The server may be down after a failed outage test; the throwaway cluster goes anyway.
  }
}

pqxx::result TestDatabase::query(const std::string& sql) {
  pqxx::connection c(url_);
  pqxx::nontransaction tx(c);
  return tx.exec(sql);
}

int TestDatabase::wait_until_blocked() {
  pqxx::connection watcher(url_);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    pqxx::result r = pqxx::nontransaction(watcher).exec(
        "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND "
        "datname = current_database()");
    if (r.size() == 1) return r[0][0].as<int>();
  }
  return 0;
}

std::string TestDatabase::scalar(const std::string& sql) {
  pqxx::result r = query(sql);
  if (r.size() != 1 || r.columns() != 1) throw std::runtime_error("not one value: " + sql);
  return r[0][0].is_null() ? "" : r[0][0].as<std::string>();
}

}  // namespace flare::test
