// process.hpp — a child process for black-box tests: spawned with stdout and stderr captured, waited for with a
// deadline, and killed when its handle goes away. Thread-compatible: one owner.
//
// No orphans, ever: the destructor kills and reaps a child still running (so a failed ASSERT that returns early
// cleans up), and the child asks the kernel for SIGKILL when the spawning thread dies (so a crashed or killed test
// process cleans up too). Output goes to unlinked temporary files rather than pipes: a chatty child can never block
// on a full pipe that the test is not draining, and nothing is left behind on disk.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringlet::testing {

struct ExitStatus {
  bool exited = false;  // true: exit code in `code`; false: killed by `signal`
  int code = 0;
  int signal = 0;

  bool success() const noexcept { return exited && code == 0; }
  std::string describe() const;  // "exit 0", "signal 9 (Killed)"
};

// What a child gets beyond argv.
struct SpawnOptions {
  // Handed over as descriptor 3 with LISTEN_FDS=1 and LISTEN_PID set to the child's pid, as systemd's socket
  // activation does (-1: none).
  int listen_fd = -1;
  std::vector<std::string> environment;  // NAME=value, added to (or replacing in) the inherited environment
};

class ChildProcess {
 public:
  using Clock = std::chrono::steady_clock;

  ChildProcess() = default;
  ChildProcess(ChildProcess&& o) noexcept;
  ChildProcess& operator=(ChildProcess&& o) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() { kill_and_reap(); }

  // Runs argv[0] (a path, not searched in PATH) with argv; stdin is /dev/null, no other descriptor is inherited.
  // Returns an empty handle (valid() false) and sets `error` if fork fails.
  static ChildProcess spawn(const std::vector<std::string>& argv, std::string* error = nullptr);
  static ChildProcess spawn(const std::vector<std::string>& argv, const SpawnOptions& options,
                            std::string* error = nullptr);

  bool valid() const noexcept { return pid_ > 0; }
  pid_t pid() const noexcept { return pid_; }

  // Reaps the child if it has exited; true while it runs.
  bool running();
  // The exit status once reaped (by running(), wait_for_exit() or kill_and_reap()).
  const std::optional<ExitStatus>& status() const noexcept { return status_; }
  // Waits up to `timeout` for the child to exit; nullopt if it is still running then.
  std::optional<ExitStatus> wait_for_exit(std::chrono::milliseconds timeout);
  bool send_signal(int signal) const noexcept;
  // SIGKILL and reap, if still running. Safe on an empty or already reaped handle.
  void kill_and_reap() noexcept;

  std::string stdout_text() const { return read_all(out_fd_); }
  std::string stderr_text() const { return read_all(err_fd_); }
  // Waits until stderr contains `needle`; returns the matching line (without its newline), or nullopt at the
  // deadline or when the child exits without having printed it.
  std::optional<std::string> wait_for_stderr(std::string_view needle, std::chrono::milliseconds timeout);

 private:
  static std::string read_all(int fd);
  void reset() noexcept;

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::optional<ExitStatus> status_;
};

// What a command run to completion by run_command left.
struct Finished {
  std::optional<ExitStatus> status;  // nullopt: not started (`err` says why), or still running at the deadline
  std::string out;
  std::string err;
};

// Runs argv (argv[0] a path) to completion: waits up to `timeout`, then kills and reaps it if it still runs, and
// collects its stdout and stderr.
Finished run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

}  // namespace ringlet::testing
