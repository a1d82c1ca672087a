// A fresh database per test suite on the test server, dropped at the end.
#pragma once

#include <pqxx/pqxx>
#include <string>

namespace flare::test {

class TestDatabase {
 public:
  TestDatabase();
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  const std::string& url() const { return url_; }
  // A single value, as text ("" for NULL). Opens a connection per call: tests restart the server.
  std::string scalar(const std::string& sql);
  pqxx::result query(const std::string& sql);
  // Waits (at most 10 s) until one statement of this database waits on a lock; returns its
  // backend's pid, or 0 when none came to wait.
  int wait_until_blocked();

 private:
  std::string admin_url_;
  std::string name_;
  std::string url_;
};

}  // namespace flare::test
