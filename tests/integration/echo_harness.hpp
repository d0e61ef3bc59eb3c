// echo_harness.hpp — shared by the black-box tests of `ringlet echo`: a fixture that runs the real binary as a
// child on one backend, and a poll-driven client that drives one or thousands of connections at once, always
// against a deadline. Test-only; single-threaded.
//
// The server's port comes from its own log line ("echo: listening on 127.0.0.1:PORT ..."), so every test listens on
// port 0 and tests never collide. Every test ends by stopping the server with SIGTERM and requiring exit code 0 and
// a stderr free of sanitizer reports: in the ASan build the child is sanitized too, so a leak or UB in the server
// fails the test that provoked it.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/process.hpp"

#ifndef RINGLET_BINARY
#error "RINGLET_BINARY must name the ringlet executable (see tests/CMakeLists.txt)"
#endif

namespace ringlet::testing::echo {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// ---- client side -----------------------------------------------------------------------------------------------

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string text;
};

// "127.0.0.1:PORT", "[::1]:PORT" or "unix:/path" (the forms the server prints).
inline std::optional<Endpoint> parse_endpoint(const std::string& text) {
  Endpoint e;
  e.text = text;
  if (text.rfind("unix:", 0) == 0) {
    auto* un = reinterpret_cast<sockaddr_un*>(&e.addr);
    std::string path = text.substr(5);
    if (path.empty() || path.size() >= sizeof un->sun_path) return std::nullopt;
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.c_str(), path.size() + 1);
    e.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return e;
  }
  std::size_t colon = text.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  int port = std::atoi(text.c_str() + colon + 1);
  if (port <= 0 || port > 65535) return std::nullopt;
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&e.addr);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<std::uint16_t>(port));
    if (::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &in6->sin6_addr) != 1) return std::nullopt;
    e.len = sizeof(sockaddr_in6);
    return e;
  }
  auto* in4 = reinterpret_cast<sockaddr_in*>(&e.addr);
  in4->sin_family = AF_INET;
  in4->sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &in4->sin_addr) != 1) return std::nullopt;
  e.len = sizeof(sockaddr_in);
  return e;
}

// A non-blocking socket whose connect has been started (it may still be in progress: the first POLLOUT tells).
// `receive_buffer` > 0 pins SO_RCVBUF before connecting, which also turns off the kernel's autotuning.
inline Fd connect_start(const Endpoint& to, int receive_buffer = 0) {
  Fd fd(::socket(to.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fd;
  if (receive_buffer > 0) ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&to.addr), to.len) != 0 && errno != EINPROGRESS) {
    fd.reset();
  }
  return fd;
}

// A connected non-blocking socket, or an invalid Fd if the connection failed or did not complete in time.
inline Fd connect_now(const Endpoint& to, int receive_buffer = 0, Clock::duration timeout = 5s) {
  Fd fd = connect_start(to, receive_buffer);
  if (!fd.valid()) return fd;
  pollfd p{fd.get(), POLLOUT, 0};
  int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count());
  int error = 0;
  socklen_t len = sizeof error;
  if (::poll(&p, 1, ms) != 1 || ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) {
    fd.reset();
  }
  return fd;
}

// Deterministic bytes that differ per position and per seed, so a dropped, duplicated, reordered or crossed byte
// shows up in a comparison.
inline std::string pattern(std::size_t n, std::uint64_t seed) {
  std::string s(n, '\0');
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
  for (std::size_t i = 0; i < n; i += 8) {
    x += 0x9E3779B97F4A7C15ull;  // splitmix64
    std::uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    std::memcpy(s.data() + i, &z, std::min<std::size_t>(8, n - i));
  }
  return s;
}

// Where two byte strings first differ, for readable failure messages (never prints megabytes).
inline std::string first_difference(const std::string& expected, const std::string& actual) {
  if (expected == actual) return "identical";
  std::size_t i = 0;
  while (i < expected.size() && i < actual.size() && expected[i] == actual[i]) ++i;
  return "expected " + std::to_string(expected.size()) + " bytes, got " + std::to_string(actual.size()) +
         ", first difference at offset " + std::to_string(i);
}

// One client connection being driven by drive().
struct Peer {
  Fd fd;
  std::string out;                 // everything to send
  std::size_t sent = 0;
  std::size_t max_write = 256 * 1024;  // bytes per send(): small values make many small pipelined writes
  bool shut_wr_after_send = false;     // shutdown(SHUT_WR) once everything is sent
  bool shut_wr_done = false;
  bool reading = true;                 // false: never read (a client that does not take its replies)
  std::size_t expect = 0;              // done once this many bytes came back...
  bool wait_eof = false;               // ...and, if set, the server closed its side
  std::string in;
  bool eof = false;
  int error = 0;                       // errno of the first failed send/recv (ECONNRESET, EPIPE...)

  bool finished_sending() const { return sent == out.size() && (!shut_wr_after_send || shut_wr_done); }
  bool done() const {
    if (error != 0) return true;
    if (eof) return true;  // nothing more will come
    return finished_sending() && in.size() >= expect && !wait_eof;
  }
};

inline void pump_send(Peer& p) {
  while (p.sent < p.out.size()) {
    std::size_t n = std::min(p.out.size() - p.sent, p.max_write);
    ssize_t r = ::send(p.fd.get(), p.out.data() + p.sent, n, MSG_NOSIGNAL);
    if (r > 0) {
      p.sent += static_cast<std::size_t>(r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno != EAGAIN) p.error = errno;
    return;
  }
  if (p.shut_wr_after_send && !p.shut_wr_done) {
    if (::shutdown(p.fd.get(), SHUT_WR) != 0) p.error = errno;
    p.shut_wr_done = true;
  }
}

inline void pump_receive(Peer& p) {
  char buf[64 * 1024];
  for (int rounds = 0; rounds < 16; ++rounds) {  // bounded, so one fast peer cannot starve the others
    ssize_t r = ::recv(p.fd.get(), buf, sizeof buf, 0);
    if (r > 0) {
      p.in.append(buf, static_cast<std::size_t>(r));
      continue;
    }
    if (r == 0) {
      p.eof = true;
    } else if (errno == EINTR) {
      continue;
    } else if (errno != EAGAIN) {
      p.error = errno;
    }
    return;
  }
}

// Sends and receives on every peer at once until each is done(); returns false at the deadline.
inline bool drive(std::span<Peer> peers, Clock::duration timeout) {
  auto deadline = Clock::now() + timeout;
  std::vector<pollfd> fds;
  std::vector<Peer*> active;
  for (;;) {
    fds.clear();
    active.clear();
    for (Peer& p : peers) {
      if (p.done()) continue;
      short events = 0;
      if (!p.finished_sending()) events |= POLLOUT;
      if (p.reading) events |= POLLIN;
      fds.push_back({p.fd.get(), events, 0});
      active.push_back(&p);
    }
    if (active.empty()) return true;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::min<long long>(left, 100)));
    if (n < 0 && errno != EINTR) return false;
    for (std::size_t i = 0; i < fds.size() && n > 0; ++i) {
      short r = fds[i].revents;
      if (r == 0) continue;
      Peer& p = *active[i];
      if (r & (POLLOUT | POLLERR)) pump_send(p);
      if (p.error == 0 && p.reading && (r & (POLLIN | POLLHUP | POLLERR))) pump_receive(p);
      if (p.error == 0 && !p.reading && (r & POLLERR)) {
        int error = 0;
        socklen_t len = sizeof error;
        ::getsockopt(p.fd.get(), SOL_SOCKET, SO_ERROR, &error, &len);
        p.error = error != 0 ? error : EPIPE;
      }
    }
  }
}

inline bool drive_one(Peer& p, Clock::duration timeout) { return drive(std::span<Peer>(&p, 1), timeout); }

// Sends `data` on an open connection and returns what came back (as much as arrived within the timeout).
inline std::string roundtrip(Fd& fd, const std::string& data, Clock::duration timeout = 10s) {
  Peer p;
  p.fd = std::move(fd);
  p.out = data;
  p.expect = data.size();
  drive_one(p, timeout);
  fd = std::move(p.fd);
  return p.in;
}

// Sends `data` on a fresh connection and returns what came back (expects it all back within the timeout).
inline Peer echo_once(const Endpoint& to, std::string data, bool half_close = false,
                      Clock::duration timeout = 10s) {
  Peer p;
  p.fd = connect_now(to);
  p.expect = data.size();
  p.out = std::move(data);
  p.shut_wr_after_send = half_close;
  p.wait_eof = half_close;
  if (p.fd.valid()) drive_one(p, timeout);
  return p;
}

// Waits up to `timeout` for the server to close: true on EOF or a reset, false if the connection stays open.
// Received bytes are discarded.
inline bool closed_by_server_within(int fd, Clock::duration timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::max<long long>(left, 0))) <= 0) {
      if (left <= 0) return false;  // checked at least once, even with a zero timeout
      continue;
    }
    char buf[4096];
    ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r == 0) return true;
    if (r < 0 && errno != EAGAIN && errno != EINTR) return true;
  }
}

// The resident set of a process in KiB (VmRSS), or -1.
inline long rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

// Raises this process's descriptor limit to its hard limit (children inherit it); returns the new soft limit.
inline rlim_t raise_fd_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return 0;
  r.rlim_cur = r.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &r);
  ::getrlimit(RLIMIT_NOFILE, &r);
  return r.rlim_cur;
}

// ---- server side -----------------------------------------------------------------------------------------------

// The address a server child prints when it is up ("echo: listening on 127.0.0.1:PORT (backend io_uring)"), from the
// first stderr line containing `needle` ("listening on [::1]:" picks one listener of several). nullopt if no such line
// comes within `timeout` (the child exited or is slow) or its address does not parse: the caller's failure message
// shows the child's stderr.
inline std::optional<Endpoint> wait_for_listening(ChildProcess& server, std::chrono::milliseconds timeout = 10'000ms,
                                                  std::string_view needle = "listening on ") {
  std::optional<std::string> line = server.wait_for_stderr(needle, timeout);
  if (!line) return std::nullopt;
  std::size_t begin = line->find("listening on ");
  if (begin == std::string::npos) return std::nullopt;
  begin += std::strlen("listening on ");
  return parse_endpoint(line->substr(begin, line->find(' ', begin) - begin));
}

inline bool is_sanitized_build() {
#ifdef RINGLET_SANITIZE
  return true;
#else
  return false;
#endif
}

// What a sanitizer prints when it finds something in the server.
inline void expect_no_sanitizer_report(const std::string& stderr_text) {
  for (const char* marker : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"}) {
    EXPECT_EQ(stderr_text.find(marker), std::string::npos) << "the server reported '" << marker << "':\n"
                                                            << stderr_text;
  }
}

// Runs `ringlet args...` to completion (killed after `timeout`). Its result is also echo::Finished.
using ::ringlet::testing::Finished;
inline Finished run_ringlet(std::vector<std::string> args, Clock::duration timeout = 10s) {
  args.insert(args.begin(), RINGLET_BINARY);
  return run_command(args, std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
}

// Whether this kernel and sandbox let the server run on `backend`: io_uring may be disabled by sysctl, seccomp or
// the memlock limit, and then the server says so and exits non-zero. Asked once per backend per test process.
inline const std::string& backend_unavailable_reason(const std::string& backend) {
  static std::map<std::string, std::string> reasons;
  auto it = reasons.find(backend);
  if (it != reasons.end()) return it->second;
  std::string reason;
  ChildProcess probe = ChildProcess::spawn(
      {RINGLET_BINARY, "echo", "--listen", "127.0.0.1:0", "--backend", backend, "--log-level", "info"});
  if (!probe.wait_for_stderr("listening on", 10'000ms)) {
    std::string err = probe.stderr_text();
    if (err.find("cannot start the event loop") != std::string::npos) reason = err;
  }
  probe.send_signal(SIGTERM);
  probe.wait_for_exit(5'000ms);
  return reasons.emplace(backend, reason).first->second;
}

// Each test runs once per backend; the server is a child process owned by the fixture.
class EchoServerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string& reason = backend_unavailable_reason(GetParam());
    if (!reason.empty()) GTEST_SKIP() << "backend " << GetParam() << " unavailable here: " << reason;
  }

  void TearDown() override {
    if (!server_.valid()) return;
    if (server_.running()) {
      server_.send_signal(SIGTERM);
      auto status = server_.wait_for_exit(std::chrono::duration_cast<std::chrono::milliseconds>(shutdown_timeout_) +
                                          30'000ms);
      EXPECT_TRUE(status.has_value()) << "the server did not exit after SIGTERM";
      if (status) {
        EXPECT_TRUE(status->success()) << "server " << status->describe();
      }
    }
    std::string err = server_.stderr_text();
    expect_no_sanitizer_report(err);
    if (HasFailure()) {
      std::size_t from = err.size() > 6000 ? err.size() - 6000 : 0;
      std::printf("---- server stderr (last %zu bytes) ----\n%s----\n", err.size() - from, err.c_str() + from);
    }
    server_.kill_and_reap();
  }

  // Starts `ringlet echo --backend <param> --listen <listen> extra...` and waits for its listening line; sets
  // endpoint_ from it. Fails the test if the server does not come up.
  void start(std::vector<std::string> extra = {}, const std::string& listen = "127.0.0.1:0") {
    std::vector<std::string> args = {RINGLET_BINARY, "echo", "--backend", GetParam(), "--listen", listen};
    args.insert(args.end(), extra.begin(), extra.end());
    for (std::size_t i = 0; i + 1 < extra.size(); ++i) {
      if (extra[i] == "--shutdown-timeout") {
        shutdown_timeout_ = std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(std::atof(extra[i + 1].c_str())));
      }
    }
    std::string error;
    server_ = ChildProcess::spawn(args, &error);
    ASSERT_TRUE(server_.valid()) << error;
    std::optional<Endpoint> e = wait_for_listening(server_);
    ASSERT_TRUE(e.has_value()) << "the server did not start:\n" << server_.stderr_text();
    endpoint_ = *e;
  }

  // SIGTERM (or `signal`), then requires exit 0 with clean stderr. The 30 s past the shutdown timeout only catch a
  // hang: closing 10,000 connections under ASan on a busy machine takes seconds.
  void stop_and_expect_clean_exit(int signal = SIGTERM) {
    ASSERT_TRUE(server_.send_signal(signal));
    auto status =
        server_.wait_for_exit(std::chrono::duration_cast<std::chrono::milliseconds>(shutdown_timeout_ + 30s));
    ASSERT_TRUE(status.has_value()) << "the server was still running 30 s after its shutdown timeout";
    EXPECT_TRUE(status->success()) << "server " << status->describe();
  }

  // Requires the server to still be running (it must survive what the test did to it).
  void expect_running() {
    ASSERT_TRUE(server_.valid());
    EXPECT_TRUE(server_.running()) << "the server died: " << server_.status()->describe();
  }

  ChildProcess server_;
  Endpoint endpoint_;
  Clock::duration shutdown_timeout_ = 5s;
};

inline std::string backend_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

#define RINGLET_ECHO_BOTH_BACKENDS(Suite)                                                                   \
  INSTANTIATE_TEST_SUITE_P(Backends, Suite, ::testing::Values(std::string("uring"), std::string("epoll")), \
                           ::ringlet::testing::echo::backend_name)

}  // namespace ringlet::testing::echo
