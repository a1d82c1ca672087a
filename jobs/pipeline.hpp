// A committer lane's enqueue connection, in libpq's pipeline mode: the next batch's statement is
// sent while the one before still runs, so that PostgreSQL starts it as soon as that one commits
// instead of a round trip later. Answers come back in the order sent. libpq itself, since
// libpqxx has no pipeline mode.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "jobs/enqueue.hpp"
#include "jobs/job.hpp"
#include "jobs/store.hpp"

struct pg_conn;

namespace flare::jobs {

class Pipeline {
 public:
  // Connects on connect() or when a batch is sent, and again after a failure. A batch whose
  // answer is refused or lost is stored through `fallback`, whose own connection plans each
  // statement.
  Pipeline(const std::string& url, Store& fallback);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // The server answered a new connection's setup with a refusal (a schema altered under this
  // binary, say): nothing can be sent until it accepts it.
  class NotReady : public std::runtime_error {
   public:
    using std::runtime_error::runtime_error;
  };

  // Opens the connection unless it is open, or idle and closed by the server; fails as
  // throw_failure() says (Unavailable when no answer came or the error is transient), with
  // NotReady for the server's refusal to make it ready.
  // Opening it for the first webhook after a start made that answer take 32-42 ms instead of
  // 9-12.
  void connect();
  // Sends a batch's enqueue statement without waiting. Keep at most two batches sent: the
  // connection blocks while sending, which is safe only while the answers not yet read fit in
  // the socket's buffer.
  void send(const std::vector<NewJob>& jobs, const Handing& handing = {});
  std::size_t sent() const;  // batches sent whose answers receive() has not given
  int socket() const;        // readable when an answer may have come; -1 when none can
  // Reads what has arrived, without blocking; true once the oldest batch's answer is complete.
  bool oldest_answered();
  // The oldest batch's jobs again, and what Store::enqueue would give for them, throwing as it
  // does, or as connect() did when the batch could not be sent; call it once oldest_answered()
  // is true.
  std::vector<Enqueued> receive(const std::vector<NewJob>& jobs);

 private:
  struct Sent;
  struct ClosePipe {
    void operator()(pg_conn* c) const;
  };

  // Every answer still to come is lost with the connection.
  void lose();

  const std::string url_;
  Store& fallback_;
  std::unique_ptr<pg_conn, ClosePipe> conn_;
  std::deque<Sent> sent_;
};

}  // namespace flare::jobs
