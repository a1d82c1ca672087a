#include "support/cluster.hpp"

#include <array>
#include <cstdio>
#include <memory>
#include <pqxx/pqxx>
#include <stdexcept>

#include "support/env.hpp"

namespace flare::test {
namespace {

// Runs `command` (a shell command line) as the postgres user, FLARE_TEST_PG_AS before it (e.g.
// "runuser -u postgres --"); returns what it printed; throws when it fails.
std::string as_postgres(const std::string& command) {
  std::string line = require_env("FLARE_TEST_PG_AS") + " " + command + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(line.c_str(), "r"), pclose);
  if (!pipe) throw std::runtime_error("cannot run " + command);
  std::string out;
  std::array<char, 4096> chunk;
  while (std::size_t n = std::fread(chunk.data(), 1, chunk.size(), pipe.get())) {
    out.append(chunk.data(), n);
  }
  if (pclose(pipe.release()) != 0) throw std::runtime_error(command + " failed: " + out);
  return out;
}

// One of PostgreSQL's programs (from FLARE_TEST_PG_BIN), as the postgres user.
std::string pg(const std::string& program_and_arguments) {
  return as_postgres(require_env("FLARE_TEST_PG_BIN") + "/" + program_and_arguments);
}

// A directory the postgres user owns, in /tmp, that others may enter: the server's socket is in
// it, and neither the test nor the gateway need run as postgres.
std::string new_directory() {
  std::string out = as_postgres("mktemp -d /tmp/flare-own-pg.XXXXXX");
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  as_postgres("chmod 755 " + out);
  return out;
}

}  // namespace

OwnServer OwnServer::primary() {
  OwnServer s(new_directory());
  pg("initdb -D " + s.dir_ + "/data -U postgres --auth=trust -E UTF8 --locale=C.UTF-8");
  s.start();
  return s;
}

OwnServer OwnServer::standby_of(const OwnServer& primary) {
  OwnServer s(new_directory());
  pg("pg_basebackup -h " + primary.dir_ + " -U postgres -D " + s.dir_ +
     "/data -R -X stream -c fast");
  s.start();
  return s;
}

OwnServer::OwnServer(OwnServer&& other) noexcept
    : dir_(std::move(other.dir_)), running_(other.running_) {
  other.dir_.clear();
  other.running_ = false;
}

OwnServer::~OwnServer() {
  if (dir_.empty()) return;
  try {
    if (running_) pg("pg_ctl -D " + dir_ + "/data -m immediate -w stop");
    as_postgres("rm -rf " + dir_);
  } catch (const std::exception&) {
    // Left in /tmp; the test has failed already if this could not be done.
  }
}

void OwnServer::start() {
  pg("pg_ctl -D " + dir_ + "/data -l " + dir_ + "/server.log -w -o '-c listen_addresses= -k " +
     dir_ + "' start");
  running_ = true;
}

std::string OwnServer::url(const std::string& dbname) const {
  return "host=" + dir_ + " dbname=" + dbname + " user=postgres";
}

void OwnServer::execute(const std::string& dbname, const std::string& sql) const {
  pqxx::connection c(url(dbname));
  pqxx::nontransaction(c).exec(sql);
}

std::string OwnServer::scalar(const std::string& dbname, const std::string& sql) const {
  pqxx::connection c(url(dbname));
  pqxx::result r = pqxx::nontransaction(c).exec(sql);
  if (r.size() != 1 || r.columns() != 1) throw std::runtime_error("not one value: " + sql);
  return r[0][0].is_null() ? "" : r[0][0].as<std::string>();
}

void OwnServer::promote() { pg("pg_ctl -D " + dir_ + "/data -w promote"); }

void OwnServer::crash() {
  pg("pg_ctl -D " + dir_ + "/data -m immediate -w stop");
  running_ = false;
}

}  // namespace flare::test
