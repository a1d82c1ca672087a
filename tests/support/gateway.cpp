#include "support/gateway.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <stdexcept>

#include "support/env.hpp"

extern char** environ;

namespace flare::test {
namespace {

// Starts the binary with stdout and stderr on a pipe, or on `output_file`; returns the pid and
// a descriptor to read them from.
std::pair<pid_t, int> spawn(const std::vector<std::string>& args,
                            const std::string& output_file = "") {
  std::string binary = require_env("FLARE_BINARY");
  int fds[2];
  if (output_file.empty()) {
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  } else {
    fds[1] = open(output_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    fds[0] = fds[1] < 0 ? -1 : open(output_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fds[0] < 0) {
      if (fds[1] >= 0) close(fds[1]);
      throw std::runtime_error("cannot open " + output_file);
    }
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  std::vector<char*> argv;
  argv.push_back(binary.data());
  std::vector<std::string> copy = args;
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    throw std::runtime_error("cannot start " + binary);
  }
  return {pid, fds[0]};
}

int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

}  // namespace

TempFile::TempFile(const std::string& text, const std::string& suffix) {
  std::string pattern = "/tmp/flare-test-XXXXXX" + suffix;
  int fd = mkstemps(pattern.data(), static_cast<int>(suffix.size()));
  if (fd < 0) throw std::runtime_error("mkstemps failed");
  close(fd);
  path_ = pattern;
  std::ofstream(path_, std::ios::binary) << text;
}

TempFile::~TempFile() { std::remove(path_.c_str()); }

RunResult run_binary(const std::vector<std::string>& args) {
  auto [pid, fd] = spawn(args);
  std::string output;
  char chunk[4096];
  ssize_t n;
  while ((n = read(fd, chunk, sizeof chunk)) > 0) output.append(chunk, static_cast<std::size_t>(n));
  close(fd);
  int status = 0;
  waitpid(pid, &status, 0);
  return {exit_code(status), output};
}

Gateway::Gateway(const std::string& config_yaml, std::vector<std::string> args, bool database_ready,
                 const std::string& output_file)
    : config_(config_yaml) {
  bool serve = args.at(0) == "serve";
  args.insert(args.begin() + 1, {"--config", config_.path()});
  std::tie(pid_, out_fd_) = spawn(args, output_file);
  if (output_file.empty()) {
    reader_ = std::thread([this] {
      char chunk[4096];
      ssize_t n;
      while ((n = read(out_fd_, chunk, sizeof chunk)) > 0) {
        std::lock_guard lock(mutex_);
        output_.append(chunk, static_cast<std::size_t>(n));
        changed_.notify_all();
      }
      std::lock_guard lock(mutex_);
      eof_ = true;
      changed_.notify_all();
    });
  } else {
    int watch = inotify_init1(IN_CLOEXEC);
    stop_fd_ = eventfd(0, EFD_CLOEXEC);
    if (watch < 0 || stop_fd_ < 0 || inotify_add_watch(watch, output_file.c_str(), IN_MODIFY) < 0) {
      if (watch >= 0) close(watch);
      kill_hard();
      throw std::runtime_error("cannot follow " + output_file);
    }
    reader_ = std::thread([this, watch] { follow(watch); });
  }
  auto fail = [this](const std::string& why) {
    std::string out = output();
    terminate();
    throw std::runtime_error(why + ":\n" + out);
  };
  if (!serve) {
    if (!wait_for_output("workers started", std::chrono::seconds(20))) fail("no workers started");
    return;
  }
  std::unique_lock lock(mutex_);
  static const std::regex kListening(R"(listening on https?://[^ \n]+:(\d+))");
  std::smatch match;
  bool found = changed_.wait_for(lock, std::chrono::seconds(20), [&] {
    return std::regex_search(output_, match, kListening) || eof_;
  });
  bool listening = found && !match.empty();
  if (listening) port_ = static_cast<std::uint16_t>(std::stoi(match[1].str()));
  lock.unlock();
  if (!listening) fail("the gateway did not start");
  // Tests start from a gateway that has migrated its database and can serve every route.
  if (database_ready && !wait_for_output("database ready", std::chrono::seconds(20))) {
    fail("the gateway did not reach its database");
  }
}

Gateway::~Gateway() { terminate(); }

// A file has no end to wait on, as a pipe has: what is written to it is read as `watch` (an
// inotify descriptor watching it) tells of it, until stop_reading().
void Gateway::follow(int watch) {
  char chunk[4096];
  for (bool stopping = false;;) {
    ssize_t n;
    while ((n = read(out_fd_, chunk, sizeof chunk)) > 0) {
      std::lock_guard lock(mutex_);
      output_.append(chunk, static_cast<std::size_t>(n));
      changed_.notify_all();
    }
    if (stopping) break;
    pollfd fds[2] = {{watch, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
    if (fds[0].revents & POLLIN) {
      alignas(inotify_event) char events[4096];
      (void)!read(watch, events, sizeof events);
    }
    stopping = (fds[1].revents & POLLIN) != 0;  // one last read: the process has exited
  }
  close(watch);
  std::lock_guard lock(mutex_);
  eof_ = true;
  changed_.notify_all();
}

void Gateway::stop_reading() {
  if (stop_fd_ >= 0) {
    std::uint64_t one = 1;
    (void)!write(stop_fd_, &one, sizeof one);
  }
  if (reader_.joinable()) reader_.join();
  close(out_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
  stop_fd_ = -1;
}

void Gateway::signal(int signo) {
  if (pid_ > 0) kill(pid_, signo);
}

void Gateway::kill_hard() {
  if (pid_ < 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  stop_reading();
}

int Gateway::terminate(std::chrono::seconds limit) {
  if (pid_ < 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + limit;
  int code = -1;
  for (;;) {
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      code = exit_code(status);
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    // waitpid cannot wait with a deadline; the output pipe closing is the event to wait on (a
    // followed file has none: its last line, or the 50 ms, then).
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, std::chrono::milliseconds(50), [this] { return eof_; });
  }
  pid_ = -1;
  stop_reading();
  return code;
}

long Gateway::status_kib(const std::string& field) const {
  std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

std::string Gateway::output() {
  std::lock_guard lock(mutex_);
  return output_;
}

bool Gateway::wait_for_output(const std::string& text, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return output_.find(text) != std::string::npos; });
}

}  // namespace flare::test
