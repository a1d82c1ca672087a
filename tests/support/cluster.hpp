// PostgreSQL servers of a test's own, for what the shared test server must not go through: a
// primary and a streaming standby, promoted and crashed. Each lives in a temporary directory
// (its data and its unix socket), run as the postgres user, and is stopped and removed with the
// object.
#pragma once

#include <string>

namespace flare::test {

class OwnServer {
 public:
  // A new primary (initdb), started.
  static OwnServer primary();
  // A standby streaming from `primary` (pg_basebackup -R), started.
  static OwnServer standby_of(const OwnServer& primary);

  OwnServer(OwnServer&& other) noexcept;
  ~OwnServer();

  // The libpq host of this server: its socket directory.
  const std::string& host() const { return dir_; }
  std::string url(const std::string& dbname) const;
  // Runs `sql` in `dbname`, outside a transaction (CREATE DATABASE, ALTER SYSTEM, ...).
  void execute(const std::string& dbname, const std::string& sql) const;
  // A single value from a statement run in `dbname`, as text ("" for NULL).
  std::string scalar(const std::string& dbname, const std::string& sql) const;

  void promote();  // a standby becomes a primary
  void crash();    // an immediate shutdown: no checkpoint, recovery at the next start

 private:
  explicit OwnServer(std::string dir) : dir_(std::move(dir)) {}
  void start();

  std::string dir_;
  bool running_ = false;
};

}  // namespace flare::test
