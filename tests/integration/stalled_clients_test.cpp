// stalled_clients_test.cpp — no client can starve another (docs/design/buffers.md), for every server, over real
// sockets, on both backends.
//
// A thousand clients flood the server and never read a byte back, then sit there. What they flood with is what
// makes each server produce output it cannot send:
//   echo   64 KiB writes, echoed back;
//   http   400 pipelined GETs per write;
//   cache  pipelined `get big` of a 4 KiB value (each 9-byte request asks for 4 KiB of reply);
//   queue  a `put` with a 2 KiB body, then 50 pipelined `peek-ready` (the jobs stay few: a flooder stalls after a
//          handful of puts, not after the tens of thousands its replies alone would allow);
//   proxy  64 KiB writes through the proxy to a `ringlet echo` backend and back. A fresh client must be answered while they flood and promptly after, and the server
// must cost no CPU while they sit. The server runs with a receive ring of 64 buffers (--receive-buffers 64), so
// the stalled connections could hold the whole ring many times over: that is the scenario, forced, instead of
// hoping real volume produces it. Clients pin small socket buffers, so a stall is reached after kilobytes and the
// test's volume (and time) stays small on any machine.
//
// Bounds that are about time only catch a real failure: "answered within 100 ms" is what a fresh client gets from
// a loop that serves it (a starved one never answers at all; on a busy machine the bound is on the servers' CPU time
// during the wait, see expect_fresh_client_served), "under 5% of a core" is what a loop that waits costs (one
// that loops over the stalled connections burns 13–100%). The CPU is read from the scheduler's own accounting, for
// idleness running and waiting for a CPU alike, so a busy machine cannot make a looping server look idle.
#include <sys/resource.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <tuple>

#include "echo_harness.hpp"

namespace ringlet::testing::echo {
namespace {

constexpr int kClientReceiveBuffer = 4096;
constexpr int kClientSendBuffer = 16384;

const std::string kSmallFile = "thirteen bytes\n";
const std::string kGet = "GET /small.txt HTTP/1.1\r\nHost: stalled\r\n\r\n";
const std::string kCacheValue(4096, 'v');  // stored as "big" before the flood
const std::string kQueueBody(2048, 'j');

// Seconds the process's threads have spent running, and runnable but waiting for a CPU (/proc/PID/task/*/schedstat).
// A process with work to do on a busy machine shows little CPU but a lot of waiting; an idle one shows neither.
struct SchedTime {
  double running = 0;
  double waiting = 0;
};

SchedTime sched_time(pid_t pid) {
  SchedTime t;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(task.path() / "schedstat");
    unsigned long long run_ns = 0;
    unsigned long long wait_ns = 0;
    if (in >> run_ns >> wait_ns) {
      t.running += static_cast<double>(run_ns) / 1e9;
      t.waiting += static_cast<double>(wait_ns) / 1e9;
    }
  }
  return t;
}

class StalledClientsTest : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {
 protected:
  const std::string& server_kind() const { return std::get<0>(GetParam()); }
  const std::string& backend() const { return std::get<1>(GetParam()); }
  bool is_http() const { return server_kind() == "http"; }
  bool is_proxy() const { return server_kind() == "proxy"; }

  void SetUp() override {
    const std::string& reason = backend_unavailable_reason(backend());
    if (!reason.empty()) GTEST_SKIP() << "backend " << backend() << " unavailable here: " << reason;
  }

  void TearDown() override {
    stalled_.clear();
    if (server_.valid() && server_.running()) {
      server_.send_signal(SIGTERM);
      auto status = server_.wait_for_exit(60'000ms);
      EXPECT_TRUE(status.has_value()) << "the server did not exit after SIGTERM";
      if (status) {
        EXPECT_TRUE(status->success()) << "server " << status->describe();
      }
    }
    if (server_.valid()) {
      std::string err = server_.stderr_text();
      expect_no_sanitizer_report(err);
      if (HasFailure()) {
        std::size_t from = err.size() > 6000 ? err.size() - 6000 : 0;
        std::printf("---- server stderr (last %zu bytes) ----\n%s----\n", err.size() - from, err.c_str() + from);
      }
      server_.kill_and_reap();
    }
    if (!root_.empty()) std::filesystem::remove_all(root_);
    if (echo_backend_.valid()) echo_backend_.kill_and_reap();
  }

  void start(std::vector<std::string> extra) {
    // The proxy names its I/O backend --io-backend (its --backend is a server to relay to).
    std::vector<std::string> args = {RINGLET_BINARY,     server_kind(), is_proxy() ? "--io-backend" : "--backend",
                                     backend(),          "--listen",    "127.0.0.1:0",
                                     "--threads",        "1",           "--shutdown-timeout",
                                     "2",                "--max-conns", "20000"};
    if (is_http()) {
      char tmpl[] = "/tmp/ringlet-stalled-XXXXXX";
      ASSERT_NE(::mkdtemp(tmpl), nullptr);
      root_ = tmpl;
      std::ofstream(root_ + "/small.txt") << kSmallFile;
      // A stalled connection's pending request or blocked response would time out (and be closed) while the
      // test watches the server sit idle; the timeouts are tested elsewhere.
      args.insert(args.end(), {"--root", root_, "--header-timeout", "600", "--send-timeout", "600"});
    }
    if (server_kind() == "cache") args.insert(args.end(), {"--send-timeout", "600"});
    if (is_proxy()) {
      // Health probes are the proxy's own periodic work, not something the stalled clients cause.
      args.insert(args.end(), {"--backend", start_echo_backend(), "--health-interval", "0"});
    }
    args.insert(args.end(), extra.begin(), extra.end());
    std::string error;
    server_ = ChildProcess::spawn(args, &error);
    ASSERT_TRUE(server_.valid()) << error;
    std::optional<Endpoint> e = wait_for_listening(server_);
    ASSERT_TRUE(e.has_value()) << "the server did not start:\n" << server_.stderr_text();
    endpoint_ = *e;
    if (server_kind() == "cache") store_cache_values();
  }

  // The proxy's backend: `ringlet echo` on epoll, whatever the proxy runs on (this file tests the proxy's loop; the
  // echo's own stalled-client behaviour has its own rows). Returns its address.
  std::string start_echo_backend() {
    std::string error;
    echo_backend_ = ChildProcess::spawn({RINGLET_BINARY, "echo", "--backend", "epoll", "--listen", "127.0.0.1:0",
                                         "--threads", "1", "--max-conns", "20000"},
                                        &error);
    EXPECT_TRUE(echo_backend_.valid()) << error;
    std::optional<std::string> line = echo_backend_.wait_for_stderr("listening on ", 10'000ms);
    EXPECT_TRUE(line.has_value()) << "the echo backend did not start:\n" << echo_backend_.stderr_text();
    if (!line) return "127.0.0.1:1";
    std::size_t begin = line->find("listening on ") + 13;
    return line->substr(begin, line->find(" (", begin) - begin);
  }

  // The cache's flooders ask for "big"; the fresh client asks for "fresh".
  void store_cache_values() {
    const std::string sets = "set big 0 0 " + std::to_string(kCacheValue.size()) + "\r\n" + kCacheValue +
                             "\r\nset fresh 0 0 5\r\nhello\r\n";
    std::optional<std::string> reply = exchange(sets, "STORED\r\nSTORED\r\n", 10s);
    ASSERT_TRUE(reply.has_value()) << "the cache did not store the test values";
  }

  // What a stalled client writes, again and again.
  std::string flood_chunk() const {
    std::string chunk;
    if (server_kind() == "http") {
      for (int i = 0; i < 400; ++i) chunk += kGet;
    } else if (server_kind() == "cache") {
      for (int i = 0; i < 400; ++i) chunk += "get big\r\n";
    } else if (server_kind() == "queue") {
      chunk = "put 0 0 600 " + std::to_string(kQueueBody.size()) + "\r\n" + kQueueBody + "\r\n";
      for (int i = 0; i < 50; ++i) chunk += "peek-ready\r\n";
    } else {
      chunk.assign(64 * 1024, 'f');
    }
    return chunk;
  }

  // What a fresh client sends, and the exact reply it must get.
  std::pair<std::string, std::string> fresh_request() const {
    if (server_kind() == "http") return {kGet, kSmallFile};  // the body is checked: the head has a date
    if (server_kind() == "cache") return {"get fresh\r\n", "VALUE fresh 0 5\r\nhello\r\nEND\r\n"};
    if (server_kind() == "queue") return {"use fresh\r\n", "USING fresh\r\n"};
    return {"ping\n", "ping\n"};
  }

  void open_stalled(int n) {
    for (int i = 0; i < n; ++i) {
      Fd fd = connect_now(endpoint_, kClientReceiveBuffer);
      ASSERT_TRUE(fd.valid()) << "stalled connection " << i << " failed to connect";
      int send_buffer = kClientSendBuffer;
      ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &send_buffer, sizeof send_buffer);
      stalled_.push_back(std::move(fd));
    }
  }

  // One pass over the stalled connections, each writing until its socket takes no more. Returns the bytes taken.
  // Each connection writes the chunk over and over as one byte stream (a short write continues where it stopped),
  // so the requests stay well formed.
  std::size_t flood_once(const std::string& chunk) {
    std::size_t taken = 0;
    offsets_.resize(stalled_.size(), 0);
    for (std::size_t i = 0; i < stalled_.size(); ++i) {
      for (int writes = 0; writes < 64; ++writes) {  // bounded per pass, so the pass itself ends
        const std::size_t at = offsets_[i] % chunk.size();
        ssize_t n = ::send(stalled_[i].get(), chunk.data() + at, chunk.size() - at, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n <= 0) break;
        offsets_[i] += static_cast<std::size_t>(n);
        taken += static_cast<std::size_t>(n);
      }
    }
    return taken;
  }

  // Floods until the server takes nothing more for a while: every stalled connection is then full both ways
  // (the server stopped receiving because the client stopped reading). Bounded by a hang detector.
  void flood_until_stalled(const std::string& chunk) {
    const auto deadline = Clock::now() + 120s;
    int quiet_passes = 0;
    while (quiet_passes < 5) {
      ASSERT_LT(Clock::now(), deadline) << "the stalled clients could still write after 120 s";
      quiet_passes = flood_once(chunk) == 0 ? quiet_passes + 1 : 0;
      std::this_thread::sleep_for(100ms);
    }
  }

  // A new connection sends `request` and reads until the reply is `expected` (for http: until it holds the file's
  // bytes). Returns the reply, or nullopt if the connection failed, closed, answered something else or took longer
  // than `limit`.
  std::optional<std::string> exchange(const std::string& request, const std::string& expected,
                                      Clock::duration limit) {
    Fd fd = connect_now(endpoint_);
    if (!fd.valid()) return std::nullopt;
    const auto start = Clock::now();
    if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
      return std::nullopt;
    }
    std::string reply;
    while (Clock::now() - start < limit) {
      pollfd p{fd.get(), POLLIN, 0};
      ::poll(&p, 1, 50);
      char buf[4096];
      ssize_t n = ::recv(fd.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0) return std::nullopt;
      if (n > 0) reply.append(buf, static_cast<std::size_t>(n));
      if (is_http() ? reply.find(expected) != std::string::npos : reply == expected) return reply;
      if (!is_http() && reply.size() >= expected.size()) {
        ADD_FAILURE() << "a fresh client sent " << request << " and was answered " << reply;
        return std::nullopt;
      }
    }
    return std::nullopt;
  }

  // A fresh client sends one request; returns how long the whole, exact reply took (or nullopt).
  std::optional<Clock::duration> fresh_round_trip(Clock::duration limit = 10s) {
    const auto [request, expected] = fresh_request();
    const auto start = Clock::now();
    if (!exchange(request, expected, limit)) return std::nullopt;
    return Clock::now() - start;
  }

  // The bound is on the servers' work, not on the machine: a round trip that took longer than `bound` fails only if
  // the server (and, for the proxy, its echo backend) ran for `bound` of CPU time meanwhile, that is, did that much
  // other work before it answered. On a busy machine the wall time also holds the time the servers waited for a CPU
  // (seen: 0.1-7.6 s at load 12-20, while a quiet machine answers in milliseconds); that is the machine's, not theirs.
  void expect_fresh_client_served(const char* when, Clock::duration bound = 100ms) {
    const double server_before = sched_time(server_.pid()).running;
    const double backend_before = echo_backend_.valid() ? sched_time(echo_backend_.pid()).running : 0;
    std::optional<Clock::duration> took = fresh_round_trip();
    const auto ran_ms = [](double from, double to) { return static_cast<long long>((to - from) * 1000); };
    const long long server_ms = ran_ms(server_before, sched_time(server_.pid()).running);
    const long long backend_ms =
        echo_backend_.valid() ? ran_ms(backend_before, sched_time(echo_backend_.pid()).running) : 0;
    ASSERT_TRUE(took.has_value()) << when << ": a fresh client was never answered (10 s)";
    const auto ms = [](Clock::duration d) {
      return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
    };
    if (*took >= bound) {
      std::printf("%s: a fresh client waited %lld ms, in which the server ran %lld ms and its backend %lld ms\n",
                  when, ms(*took), server_ms, backend_ms);
    }
    EXPECT_TRUE(*took < bound || server_ms + backend_ms < ms(bound))
        << when << ": a fresh client waited " << ms(*took) << " ms, and the server ran " << server_ms
        << " ms of it (its backend " << backend_ms << " ms)";
  }

  // While the flood is being taken in, the server works through megabytes for the flooders (on this project's VM a
  // thousand flooders' first 80 MB take the server one to two seconds); a fresh client must still get in, but how
  // fast depends on the machine, so this is reported, not judged (docs/design/buffers.md says what bounds it).
  void report_fresh_client(const char* when) {
    std::optional<Clock::duration> took = fresh_round_trip(30s);
    ASSERT_TRUE(took.has_value()) << when << ": a fresh client was never answered (30 s)";
    std::printf("%s: a fresh client was answered in %lld ms\n", when,
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(*took).count()));
  }

  // The server may still be working through what the kernel had queued for it (slowly, if other work keeps the
  // CPUs busy, or under a sanitizer); once nothing is left that it can do, it must wait, not loop. Waits (bounded:
  // a hang detector) for a one-second window in which the server neither ran nor waited for a CPU more than 5% of
  // the time, followed by two seconds as quiet. A server that loops over its idle connections never gets there; a
  // leftover burst of work only moves the start of the quiet stretch.
  void wait_until_idle_and_expect_it_stays_idle() {
    double first = 1.0;
    double second = 1.0;
    const auto deadline = Clock::now() + 120s;
    while (Clock::now() < deadline) {
      first = busy_share(1s);
      if (first >= 0.05) continue;
      second = busy_share(2s);
      if (second < 0.05) return;
    }
    FAIL() << "for 120 s the server never stayed quiet for three seconds with every client idle: last it ran (or "
              "wanted to) "
           << first * 100 << "% of a one-second window and " << second * 100 << "% of the two seconds after";
  }

  // How much of `window` the server spent running or runnable, as a share of one core.
  double busy_share(Clock::duration window) {
    const SchedTime before = sched_time(server_.pid());
    const auto start = Clock::now();
    std::this_thread::sleep_for(window);
    const SchedTime after = sched_time(server_.pid());
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return (after.running - before.running + after.waiting - before.waiting) / seconds;
  }

  ChildProcess server_;
  ChildProcess echo_backend_;  // the proxy's backend
  Endpoint endpoint_;
  std::vector<Fd> stalled_;
  std::vector<std::size_t> offsets_;  // bytes of the repeated chunk each stalled connection has written
  std::string root_;
};

TEST_P(StalledClientsTest, a_thousand_clients_that_flood_and_never_read_do_not_lock_out_a_new_one_or_burn_cpu) {
  constexpr int kStalled = 1000;
  if (raise_fd_limit() < kStalled + 200) GTEST_SKIP() << "the descriptor hard limit is too low (ulimit -Hn)";
  start({"--receive-buffers", "64"});
  open_stalled(kStalled);
  const std::string chunk = flood_chunk();

  flood_once(chunk);
  report_fresh_client("while the clients flood");
  flood_until_stalled(chunk);
  wait_until_idle_and_expect_it_stays_idle();
  expect_fresh_client_served("after the flood, every flooding client stalled");
}

TEST_P(StalledClientsTest, five_thousand_stalled_clients_on_a_tiny_ring_with_a_small_receive_limit_stay_bounded) {
  if (server_kind() != "echo") {
    GTEST_SKIP() << "the bound is the stream layer's; the echo server shows it with the least noise";
  }
  constexpr int kStalled = 5000;
  if (raise_fd_limit() < kStalled + 200) GTEST_SKIP() << "the descriptor hard limit is too low (ulimit -Hn)";
  // 16 ring buffers for 5,000 connections, and each may hold 4 KiB unread plus 4 KiB of output.
  start({"--receive-buffers", "16", "--receive-limit", "4096"});
  const long rss_before = rss_kib(server_.pid());
  open_stalled(kStalled);
  flood_until_stalled(flood_chunk());
  wait_until_idle_and_expect_it_stays_idle();
  expect_fresh_client_served("with 5,000 clients stalled on a 16-buffer ring");
  // Per connection the server may hold: its receive limit, plus what arrived before the stop took effect (one
  // receive, less than a buffer of 8 KiB: epoll stops at once, io_uring's multishot is told the room left and ends
  // there itself — before that it overshot by a batch of up to 32 buffers, 52–101 KB per connection), its output
  // limit and one buffer past it, in pooled buffers, and the connection's own state. Without the limits an echo of
  // a client that never reads could hold megabytes; without the loan rule these bytes would sit in the 16-buffer
  // ring and the fresh client above would never have been served. The same bound on both backends.
  const long bound = 4096 + 8192 + 4096 + 8192 + 16384;
  const long rss_after = rss_kib(server_.pid());
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "under ASan the allocator's quarantine, not the server, decides RSS; the bound is checked in release";
#endif
  const long per_connection = (rss_after - rss_before) * 1024 / kStalled;
  EXPECT_LT(per_connection, bound) << "RSS grew " << rss_after - rss_before << " KiB for " << kStalled
                                       << " stalled connections";
  std::printf("RSS %ld -> %ld KiB with %d stalled connections: %ld bytes each\n", rss_before, rss_after, kStalled,
              per_connection);
}

std::string param_name(const ::testing::TestParamInfo<std::tuple<std::string, std::string>>& info) {
  return std::get<0>(info.param) + "_" + std::get<1>(info.param);
}

INSTANTIATE_TEST_SUITE_P(Servers, StalledClientsTest,
                         ::testing::Combine(::testing::Values(std::string("echo"), std::string("http"),
                                                              std::string("cache"), std::string("queue"),
                                                              std::string("proxy")),
                                            ::testing::Values(std::string("uring"), std::string("epoll"))),
                         param_name);

}  // namespace
}  // namespace ringlet::testing::echo
