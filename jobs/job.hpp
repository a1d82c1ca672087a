// What the job store takes and gives back; plain data, no database types.
#pragma once

#include <string>

namespace flare::jobs {

struct NewJob {
  std::string project_id;
  std::string idempotency_key;  // non-empty, at most 200 characters, valid UTF-8
  std::string type;
  std::string payload;  // the exact bytes received
  std::string content_type;
  std::string source;
  std::string event_id;
  int max_attempts = 25;
};

struct Enqueued {
  std::string job_id;
  bool created = false;  // false: the key already named this existing job
};

}  // namespace flare::jobs
