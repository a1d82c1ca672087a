// What the README's test command provides: a PostgreSQL to use and the binary under test.
#pragma once

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace flare::test {

// Throws (failing the test, never skipping it) when the variable is missing.
inline std::string require_env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    throw std::runtime_error(std::string(name) +
                             " is not set: run the tests with scripts/test, which starts "
                             "PostgreSQL and sets it");
  }
  return value;
}

// How many partitions the tests ask the jobs table to have (database.partitions): set
// FLARE_TEST_PARTITIONS to run them against the partitioned layout; 0, the plain one, without.
inline int partitions() {
  const char* value = std::getenv("FLARE_TEST_PARTITIONS");
  return value == nullptr ? 0 : std::stoi(value);
}

// "stop"s (a fast shutdown), "crash"es (an immediate one: no checkpoint, recovery from the WAL at
// the next start) or "start"s the test PostgreSQL server; throws when the command fails.
inline void postgres(const char* action) {
  std::string a(action);
  std::string command = require_env(a == "stop"    ? "FLARE_TEST_PG_STOP"
                                    : a == "crash" ? "FLARE_TEST_PG_CRASH"
                                                   : "FLARE_TEST_PG_START");
  if (std::system((command + " >/dev/null").c_str()) != 0) {
    throw std::runtime_error(std::string("could not ") + action + " PostgreSQL");
  }
}

// The test PostgreSQL stopped ("stop") or crashed ("crash") for a while, and started again by
// end(), or when an assertion ends the test early.
class PostgresDown {
 public:
  explicit PostgresDown(const char* how) { postgres(how); }
  ~PostgresDown() {
    if (!over_) postgres("start");
  }
  void end() {
    postgres("start");
    over_ = true;
  }

 private:
  bool over_ = false;
};

}  // namespace flare::test
