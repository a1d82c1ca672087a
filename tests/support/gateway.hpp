// The real flare-gateway binary as a child process with a temporary config file.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace flare::test {

// Writes `text` to a new temporary file, removed with the object.
class TempFile {
 public:
  explicit TempFile(const std::string& text, const std::string& suffix = ".yaml");
  ~TempFile();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct RunResult {
  int exit_code;
  std::string output;  // stdout and stderr together
};

// Runs the binary with `args` to completion.
RunResult run_binary(const std::vector<std::string>& args);

class Gateway {
 public:
  // Starts `serve` (or `args`, e.g. {"worker"}) on the config, whose listen address should use
  // port 0, and waits until it is ready: for serve, listening and (unless not `database_ready`)
  // its database migrated; for worker, its workers started. Its stdout and stderr go to a pipe,
  // or to `output_file` when one is named (output() then follows the file).
  explicit Gateway(const std::string& config_yaml, std::vector<std::string> args = {"serve"},
                   bool database_ready = true, const std::string& output_file = "");
  ~Gateway();

  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  // A line of /proc/<pid>/status, e.g. "VmHWM", in KiB; -1 when the process is gone.
  long status_kib(const std::string& field) const;
  void signal(int signo);
  // SIGKILL: no chance to clean up.
  void kill_hard();
  // Sends SIGTERM and returns the exit code; -1 if it did not exit within `limit`.
  int terminate(std::chrono::seconds limit = std::chrono::seconds(15));
  std::string output();
  // Waits until the output contains `text`; false on timeout.
  bool wait_for_output(const std::string& text, std::chrono::milliseconds timeout);

 private:
  TempFile config_;
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int stop_fd_ = -1;  // an eventfd that ends the following of an output file
  std::uint16_t port_ = 0;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::string output_;
  bool eof_ = false;
  std::thread reader_;

  void follow(int watch);
  void stop_reading();
};

}  // namespace flare::test
