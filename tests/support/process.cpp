// process.cpp — fork/exec with captured output, deadline waits and kill-on-destroy (see process.hpp).
#include "support/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <string_view>
#include <utility>

extern char** environ;

namespace ringlet::testing {

std::string ExitStatus::describe() const {
  if (exited) return "exit " + std::to_string(code);
  return "signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
}

namespace {

// An unlinked temporary file: the child writes through a duplicate, the parent reads with pread.
int make_capture_file() {
  const char* dir = std::getenv("TMPDIR");
  std::string path = std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/ringlet-child-XXXXXX";
  int fd = ::mkostemp(path.data(), O_CLOEXEC);
  if (fd >= 0) ::unlink(path.c_str());
  return fd;
}

ExitStatus decode(int wstatus) {
  ExitStatus s;
  if (WIFEXITED(wstatus)) {
    s.exited = true;
    s.code = WEXITSTATUS(wstatus);
  } else if (WIFSIGNALED(wstatus)) {
    s.signal = WTERMSIG(wstatus);
  }
  return s;
}

}  // namespace

ChildProcess::ChildProcess(ChildProcess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      out_fd_(std::exchange(o.out_fd_, -1)),
      err_fd_(std::exchange(o.err_fd_, -1)),
      status_(std::exchange(o.status_, std::nullopt)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
  if (this != &o) {
    kill_and_reap();
    reset();
    pid_ = std::exchange(o.pid_, -1);
    out_fd_ = std::exchange(o.out_fd_, -1);
    err_fd_ = std::exchange(o.err_fd_, -1);
    status_ = std::exchange(o.status_, std::nullopt);
  }
  return *this;
}

void ChildProcess::reset() noexcept {
  if (out_fd_ >= 0) ::close(out_fd_);
  if (err_fd_ >= 0) ::close(err_fd_);
  out_fd_ = err_fd_ = -1;
  pid_ = -1;
  status_.reset();
}

ChildProcess ChildProcess::spawn(const std::vector<std::string>& argv, std::string* error) {
  return spawn(argv, SpawnOptions{}, error);
}

ChildProcess ChildProcess::spawn(const std::vector<std::string>& argv, const SpawnOptions& options,
                                 std::string* error) {
  ChildProcess p;
  p.out_fd_ = make_capture_file();
  p.err_fd_ = make_capture_file();
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (p.out_fd_ < 0 || p.err_fd_ < 0 || null_fd < 0 || argv.empty()) {
    if (error != nullptr) *error = std::string("cannot prepare the child: ") + std::strerror(errno);
    if (null_fd >= 0) ::close(null_fd);
    p.reset();
    return p;
  }
  // Everything the child touches is prepared before fork: between fork and exec only async-signal-safe calls.
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // The environment: ours, minus what the options replace, plus theirs. LISTEN_PID's value is the child's pid,
  // known only after fork: its digits are written into reserved room there.
  std::vector<std::string> extra = options.environment;
  if (options.listen_fd >= 0) {
    extra.push_back("LISTEN_FDS=1");
    extra.push_back("LISTEN_PID=" + std::string(20, '\0'));
  }
  std::vector<char*> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    bool replaced = false;
    for (const std::string& x : extra) {
      std::size_t eq = x.find('=');
      if (entry.substr(0, eq + 1) == std::string_view(x).substr(0, eq + 1)) replaced = true;
    }
    if (!replaced) env.push_back(*e);
  }
  for (std::string& x : extra) env.push_back(x.data());
  env.push_back(nullptr);
  char* listen_pid = options.listen_fd >= 0 ? extra.back().data() + std::strlen("LISTEN_PID=") : nullptr;
  const int listen_fd = options.listen_fd;
  pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid < 0) {
    if (error != nullptr) *error = std::string("fork: ") + std::strerror(errno);
    ::close(null_fd);
    p.reset();
    return p;
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(p.out_fd_, STDOUT_FILENO);
    ::dup2(p.err_fd_, STDERR_FILENO);
    unsigned first_closed = 3;
    if (listen_fd >= 0) {
      if (listen_fd == 3) {
        ::fcntl(3, F_SETFD, 0);
      } else {
        ::dup2(listen_fd, 3);
      }
      first_closed = 4;
      char digits[20];
      int n = 0;
      for (long v = ::getpid(); v > 0; v /= 10) digits[n++] = static_cast<char>('0' + v % 10);
      for (int i = 0; i < n; ++i) listen_pid[i] = digits[n - 1 - i];
      listen_pid[n] = '\0';
    }
    // The test holds thousands of client sockets: the server must not keep any of them open.
    ::syscall(SYS_close_range, first_closed, ~0U, 0U);
    // Ignored signals stay ignored across exec; the server must see SIGTERM, SIGINT and SIGPIPE as a shell
    // would start it.
    for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP}) ::signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(args[0], args.data(), env.data());
    ::_exit(127);
  }
  ::close(null_fd);
  p.pid_ = pid;
  return p;
}

bool ChildProcess::running() {
  if (pid_ <= 0 || status_) return false;
  int wstatus = 0;
  pid_t r = ::waitpid(pid_, &wstatus, WNOHANG);
  if (r == pid_) {
    status_ = decode(wstatus);
    return false;
  }
  return true;
}

std::optional<ExitStatus> ChildProcess::wait_for_exit(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (running()) {
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return status_;
}

bool ChildProcess::send_signal(int signal) const noexcept {
  return pid_ > 0 && !status_ && ::kill(pid_, signal) == 0;
}

void ChildProcess::kill_and_reap() noexcept {
  if (pid_ <= 0 || status_) return;
  ::kill(pid_, SIGKILL);
  int wstatus = 0;
  while (::waitpid(pid_, &wstatus, 0) < 0 && errno == EINTR) {
  }
  status_ = decode(wstatus);
}

std::string ChildProcess::read_all(int fd) {
  std::string text;
  if (fd < 0) return text;
  char chunk[16384];
  for (off_t offset = 0;;) {
    ssize_t n = ::pread(fd, chunk, sizeof chunk, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(chunk, static_cast<std::size_t>(n));
    offset += n;
  }
  return text;
}

std::optional<std::string> ChildProcess::wait_for_stderr(std::string_view needle,
                                                         std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    // Read before checking for exit, so a line printed just before exiting is still found.
    bool alive = running();
    std::string text = stderr_text();
    std::size_t at = text.find(needle);
    if (at != std::string::npos) {
      std::size_t begin = text.rfind('\n', at);
      begin = begin == std::string::npos ? 0 : begin + 1;
      std::size_t end = text.find('\n', at);
      return text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    }
    if (!alive || Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Finished run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  Finished f;
  std::string error;
  ChildProcess child = ChildProcess::spawn(argv, &error);
  if (!child.valid()) {
    f.err = error;
    return f;
  }
  f.status = child.wait_for_exit(timeout);
  child.kill_and_reap();
  f.out = child.stdout_text();
  f.err = child.stderr_text();
  return f;
}

}  // namespace ringlet::testing
