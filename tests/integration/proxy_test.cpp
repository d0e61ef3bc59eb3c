// proxy_test.cpp — `ringlet proxy` black-box, on both I/O backends: the real binary as a child, `ringlet echo` or
// sockets the test drives itself as backends, clients over real loopback sockets (127.0.0.1 and ::1 only).
//
// Covered: payloads from 1 B to 64 MiB byte-exact both ways under every splice mode, half-close each way, resets
// each way, 2,000 concurrent connections, a client that never reads while its backend pushes (bounded bytes in
// flight), backends that refuse, vanish and come back (health checks), all backends down, a backend whose accept
// queue is full (connect timeout, retry on the next), a flood of connect-then-close, running out of descriptors,
// the connection limit, SIGTERM with a transfer in flight, the idle timeout, the three balance algorithms,
// per-backend statistics, IPv6 and Unix sockets on both sides, and HAProxy behind ringlet proxy reading its PROXY
// header (v1 and v2).
// Every verdict waits for a known state with a generous deadline that only a hang can exceed; every test ends with
// SIGTERM, exit 0 and a stderr free of sanitizer reports (the fixture's TearDown).
#include <netinet/tcp.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "echo_harness.hpp"

namespace ringlet::testing::proxy {
namespace {

using namespace echo;

// A listening socket in the test process: a backend whose every move the test makes.
struct TestBackend {
  Fd fd;
  Endpoint endpoint;

  static TestBackend listen_on(const std::string& address, int backlog = 64) {
    TestBackend b;
    // parse_endpoint refuses port 0: parse it with port 1, then ask for any port.
    const bool any_port = address.size() > 2 && address.compare(address.size() - 2, 2, ":0") == 0;
    std::optional<Endpoint> e = parse_endpoint(any_port ? address.substr(0, address.size() - 1) + "1" : address);
    EXPECT_TRUE(e.has_value()) << address;
    if (!e) return b;
    if (any_port) {
      if (e->addr.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&e->addr)->sin_port = 0;
      if (e->addr.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&e->addr)->sin6_port = 0;
    }
    b.fd = Fd(::socket(e->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(b.fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    EXPECT_EQ(::bind(b.fd.get(), reinterpret_cast<const sockaddr*>(&e->addr), e->len), 0) << std::strerror(errno);
    EXPECT_EQ(::listen(b.fd.get(), backlog), 0);
    b.endpoint = *e;
    if (e->addr.ss_family != AF_UNIX) {
      socklen_t len = sizeof b.endpoint.addr;
      ::getsockname(b.fd.get(), reinterpret_cast<sockaddr*>(&b.endpoint.addr), &len);
      std::uint16_t port = ntohs(e->addr.ss_family == AF_INET
                                     ? reinterpret_cast<sockaddr_in*>(&b.endpoint.addr)->sin_port
                                     : reinterpret_cast<sockaddr_in6*>(&b.endpoint.addr)->sin6_port);
      b.endpoint.text = address.substr(0, address.rfind(':') + 1) + std::to_string(port);
    }
    return b;
  }

  // The next connection the proxy made to us, or an invalid Fd after `timeout`.
  Fd accept_one(Clock::duration timeout = 10s) {
    pollfd p{fd.get(), POLLIN, 0};
    int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count());
    if (::poll(&p, 1, ms) != 1) return Fd();
    return Fd(::accept4(fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  }
};

// Reads from `fd` until `n` bytes or EOF or an error or the deadline. Returns what arrived.
std::string read_for(int fd, std::size_t n, Clock::duration timeout, bool* eof = nullptr, int* error = nullptr) {
  std::string in;
  auto deadline = Clock::now() + timeout;
  char buf[65536];
  while (in.size() < n) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    ssize_t r = ::recv(fd, buf, std::min(sizeof buf, n - in.size()), 0);
    if (r > 0) {
      in.append(buf, static_cast<std::size_t>(r));
      continue;
    }
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (r == 0 && eof != nullptr) *eof = true;
    if (r < 0 && error != nullptr) *error = errno;
    break;
  }
  return in;
}

// Waits for end of input (true) or a reset (true, *reset set); false if the socket stays open until the deadline.
bool wait_end(int fd, Clock::duration timeout, bool* reset = nullptr) {
  bool eof = false;
  int error = 0;
  (void)read_for(fd, std::string::npos, timeout, &eof, &error);
  if (reset != nullptr) *reset = error == ECONNRESET;
  return eof || error != 0;
}

bool send_all(int fd, const std::string& data, Clock::duration timeout = 10s) {
  auto deadline = Clock::now() + timeout;
  std::size_t off = 0;
  while (off < data.size()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    ssize_t w = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) off += static_cast<std::size_t>(w);
    if (w < 0 && errno != EAGAIN && errno != EINTR) return false;
  }
  return true;
}

class ProxyTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string& reason = backend_unavailable_reason(GetParam());
    if (!reason.empty()) GTEST_SKIP() << "backend " << GetParam() << " unavailable here: " << reason;
    std::signal(SIGPIPE, SIG_IGN);
  }

  void TearDown() override {
    if (proxy_.valid() && proxy_.running()) stop_proxy_and_expect_clean_exit();
    if (proxy_.valid()) {
      std::string err = proxy_.stderr_text();
      expect_no_sanitizer_report(err);
      if (HasFailure()) {
        std::size_t from = err.size() > 8000 ? err.size() - 8000 : 0;
        std::printf("---- proxy stderr (last %zu bytes) ----\n%s----\n", err.size() - from, err.c_str() + from);
      }
    }
    for (ChildProcess& e : echoes_) {
      e.send_signal(SIGTERM);
      e.wait_for_exit(10'000ms);
    }
  }

  // A `ringlet echo` backend; returns its address as text. It runs on epoll whatever the proxy's backend: on
  // io_uring, `ringlet echo` itself sometimes resets a connection that pushes tens of MiB at it (a Stream send
  // completes with -EAGAIN there, which the stream takes for a send error; seen without any proxy in between and
  // reported with issue #12), and this file tests the proxy, not the echo.
  std::string start_echo(const std::string& listen = "127.0.0.1:0") {
    ChildProcess echo = ChildProcess::spawn(
        {RINGLET_BINARY, "echo", "--backend", "epoll", "--listen", listen, "--threads", "1", "--max-conns", "100000"});
    std::optional<Endpoint> e = wait_for_listening(echo);
    EXPECT_TRUE(e.has_value()) << echo.stderr_text();
    if (!e) return "";
    echoes_.push_back(std::move(echo));
    return e->text;
  }

  // Starts `ringlet proxy` with these backends and options; sets endpoint_. Health checks every 0.2 s unless
  // `extra` says otherwise (a test sees a backend go down and come back within a second or two).
  void start_proxy(const std::vector<std::string>& backends, std::vector<std::string> extra = {},
                   const std::string& listen = "127.0.0.1:0") {
    std::vector<std::string> args = {RINGLET_BINARY, "proxy", "--io-backend", GetParam(), "--listen", listen,
                                     "--threads", "1", "--log-level", "info"};
    if (std::find(extra.begin(), extra.end(), "--health-interval") == extra.end()) {
      args.push_back("--health-interval");
      args.push_back("0.2");
    }
    for (const std::string& b : backends) {
      args.push_back("--backend");
      args.push_back(b);
    }
    args.insert(args.end(), extra.begin(), extra.end());
    std::string error;
    proxy_ = ChildProcess::spawn(args, &error);
    ASSERT_TRUE(proxy_.valid()) << error;
    std::optional<Endpoint> e = wait_for_listening(proxy_);
    ASSERT_TRUE(e.has_value()) << "the proxy did not start:\n" << proxy_.stderr_text();
    endpoint_ = *e;
  }

  void stop_proxy_and_expect_clean_exit() {
    ASSERT_TRUE(proxy_.send_signal(SIGTERM));
    auto status = proxy_.wait_for_exit(60'000ms);
    ASSERT_TRUE(status.has_value()) << "the proxy was still running 60 s after SIGTERM";
    EXPECT_TRUE(status->success()) << "proxy " << status->describe();
  }

  void expect_running() {
    ASSERT_TRUE(proxy_.valid());
    EXPECT_TRUE(proxy_.running()) << "the proxy died: " << proxy_.status()->describe();
  }

  // Sends `data` through the proxy to an echo backend with a half-close at the end and expects it all back,
  // followed by end of input.
  void expect_echoed(const std::string& data, Clock::duration timeout = 30s) {
    Peer p = echo_once(endpoint_, data, /*half_close=*/true, timeout);
    ASSERT_TRUE(p.fd.valid()) << "cannot connect to the proxy";
    EXPECT_EQ(p.error, 0) << std::strerror(p.error);
    EXPECT_TRUE(p.in == data) << first_difference(data, p.in);
    EXPECT_TRUE(p.eof) << "no end of input after the echo";
  }

  ChildProcess proxy_;
  Endpoint endpoint_;
  std::vector<ChildProcess> echoes_;
};

// ---- relaying ----------------------------------------------------------------------------------------------------

TEST_P(ProxyTest, payloads_from_one_byte_to_64_mib_arrive_exactly_in_every_splice_mode) {
  std::string echo = start_echo();
  for (const char* mode : {"auto", "always", "never"}) {
    SCOPED_TRACE(mode);
    start_proxy({echo}, {"--splice", mode});
    std::uint64_t seed = 1;
    for (std::size_t size : {std::size_t{1}, std::size_t{100}, std::size_t{16383}, std::size_t{16384},
                             std::size_t{16385}, std::size_t{65536 + 7}, std::size_t{1024 * 1024 + 3}}) {
      SCOPED_TRACE(size);
      expect_echoed(pattern(size, seed++));
    }
    if (std::string(mode) == "auto") expect_echoed(pattern(64 * 1024 * 1024, 99), 120s);
    stop_proxy_and_expect_clean_exit();
    if (std::string(mode) != "never") {
      // Bulk transfers really were spliced (the final per-backend line counts spliced bytes).
      EXPECT_EQ(proxy_.stderr_text().find(" B from it (0 B spliced)"), std::string::npos) << mode;
    }
  }
}

TEST_P(ProxyTest, a_client_half_close_reaches_the_backend_which_can_still_answer) {
  TestBackend backend = TestBackend::listen_on("127.0.0.1:0");
  start_proxy({backend.endpoint.text});
  Fd client = connect_now(endpoint_);
  ASSERT_TRUE(client.valid());
  ASSERT_TRUE(send_all(client.get(), "request"));
  ::shutdown(client.get(), SHUT_WR);
  Fd server = backend.accept_one();
  ASSERT_TRUE(server.valid());
  bool eof = false;
  EXPECT_EQ(read_for(server.get(), 100, 10s, &eof), "request");
  EXPECT_TRUE(eof) << "the client's shutdown(SHUT_WR) did not reach the backend";
  // The other direction still flows.
  ASSERT_TRUE(send_all(server.get(), "answer after the client's FIN"));
  server.reset();
  bool client_eof = false;
  EXPECT_EQ(read_for(client.get(), 100, 10s, &client_eof), "answer after the client's FIN");
  EXPECT_TRUE(client_eof);
}

TEST_P(ProxyTest, a_backend_half_close_reaches_the_client_which_can_still_send) {
  TestBackend backend = TestBackend::listen_on("127.0.0.1:0");
  start_proxy({backend.endpoint.text});
  Fd client = connect_now(endpoint_);
  ASSERT_TRUE(client.valid());
  Fd server = backend.accept_one();
  ASSERT_TRUE(server.valid());
  ASSERT_TRUE(send_all(server.get(), "greeting"));
  ::shutdown(server.get(), SHUT_WR);
  bool eof = false;
  EXPECT_EQ(read_for(client.get(), 100, 10s, &eof), "greeting");
  EXPECT_TRUE(eof) << "the backend's shutdown(SHUT_WR) did not reach the client";
  std::string upload = pattern(300 * 1000, 7);
  // Sent while the backend reads: the socket buffers between them need not hold it all (under the kernel's TCP
  // memory pressure they shrink).
  bool sent = false;
  std::thread uploader([&] {
    sent = send_all(client.get(), upload, 20s);
    client.reset();
  });
  bool server_eof = false;
  std::string got = read_for(server.get(), upload.size() + 1, 20s, &server_eof);
  uploader.join();
  EXPECT_TRUE(sent);
  EXPECT_TRUE(got == upload) << first_difference(upload, got);
  EXPECT_TRUE(server_eof);
}

void reset_close(Fd& fd) {
  linger hard{1, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  fd.reset();
}

TEST_P(ProxyTest, a_reset_on_either_side_becomes_a_reset_on_the_other) {
  TestBackend backend = TestBackend::listen_on("127.0.0.1:0");
  start_proxy({backend.endpoint.text}, {"--stats-interval", "0.2"});
  {
    Fd client = connect_now(endpoint_);
    ASSERT_TRUE(send_all(client.get(), "x"));
    Fd server = backend.accept_one();
    ASSERT_TRUE(server.valid());
    EXPECT_EQ(read_for(server.get(), 1, 10s), "x");
    reset_close(client);
    bool reset = false;
    EXPECT_TRUE(wait_end(server.get(), 10s, &reset)) << "the backend was not told the client went away";
    EXPECT_TRUE(reset) << "a client's reset should reach the backend as a reset";
  }
  {
    Fd client = connect_now(endpoint_);
    Fd server = backend.accept_one();
    ASSERT_TRUE(server.valid());
    ASSERT_TRUE(send_all(server.get(), "y"));
    EXPECT_EQ(read_for(client.get(), 1, 10s), "y");
    reset_close(server);
    bool reset = false;
    EXPECT_TRUE(wait_end(client.get(), 10s, &reset)) << "the client was not told the backend went away";
    EXPECT_TRUE(reset) << "a backend's reset should reach the client as a reset";
  }
  expect_running();
  // Both relays ended by a failure, and the per-backend statistics say so.
  EXPECT_TRUE(proxy_.wait_for_stderr("2 ended by a failure", 10'000ms).has_value())
      << "no per-backend statistics line counting the two resets";
}

TEST_P(ProxyTest, two_thousand_concurrent_connections_are_each_relayed_exactly) {
  raise_fd_limit();
  std::string echo = start_echo();
  start_proxy({echo}, {"--max-conns", "10000"});
  constexpr int kConnections = 2000;
  std::vector<Peer> peers(kConnections);
  for (int i = 0; i < kConnections; ++i) {
    peers[i].fd = connect_start(endpoint_);
    ASSERT_TRUE(peers[i].fd.valid()) << "connection " << i;
    peers[i].out = pattern(1000 + i, static_cast<std::uint64_t>(i));
    peers[i].expect = peers[i].out.size();
  }
  ASSERT_TRUE(drive(peers, 120s)) << "not every connection was echoed in time";
  for (int i = 0; i < kConnections; ++i) {
    ASSERT_EQ(peers[i].error, 0) << "connection " << i << ": " << std::strerror(peers[i].error);
    ASSERT_TRUE(peers[i].in == peers[i].out) << "connection " << i << ": " << first_difference(peers[i].out, peers[i].in);
  }
}

long sysctl_max(const char* path) {
  std::ifstream f(path);
  long min = 0, def = 0, max = 0;
  f >> min >> def >> max;
  return max;
}

TEST_P(ProxyTest, a_client_that_never_reads_holds_back_its_backend_with_bounded_bytes_in_flight) {
  TestBackend backend = TestBackend::listen_on("127.0.0.1:0");
  start_proxy({backend.endpoint.text});
  Fd client = connect_now(endpoint_, /*receive_buffer=*/64 * 1024);
  ASSERT_TRUE(client.valid());
  Fd server = backend.accept_one();
  ASSERT_TRUE(server.valid());
  const long rss_before = rss_kib(proxy_.pid());
  // The backend pushes until it has made no progress for a whole second (everything between it and the client is
  // full) or 512 MiB went out (the proxy is buffering without bound).
  std::string chunk = pattern(1 << 20, 3);
  std::size_t pushed = 0;
  const std::size_t kLimit = 512u << 20;
  while (pushed < kLimit) {
    pollfd p{server.get(), POLLOUT, 0};
    if (::poll(&p, 1, 1000) <= 0) break;
    // The stream is `chunk` over and over: a partial send goes on from where it stopped.
    const std::size_t at = pushed % chunk.size();
    ssize_t w = ::send(server.get(), chunk.data() + at, chunk.size() - at, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) pushed += static_cast<std::size_t>(w);
    if (w < 0 && errno != EAGAIN) break;
  }
  // What may sit in between: the socket buffers on both hops (at most the kernel's maxima) plus one pipe or copy
  // buffer (64 KiB) in the proxy.
  const std::size_t bound = static_cast<std::size_t>(2 * sysctl_max("/proc/sys/net/ipv4/tcp_rmem") +
                                                     2 * sysctl_max("/proc/sys/net/ipv4/tcp_wmem")) +
                            (1u << 20);
  EXPECT_LT(pushed, kLimit) << "the backend was never held back";
  EXPECT_LE(pushed, bound) << "more in flight than the socket buffers can hold: the proxy buffers";
  const long rss_after = rss_kib(proxy_.pid());
  if (!is_sanitized_build()) {
    EXPECT_LT(rss_after - rss_before, 16 * 1024) << "the proxy's memory grew";
  }
  // Once the client reads, everything arrives in order.
  ::shutdown(server.get(), SHUT_WR);
  std::string got = read_for(client.get(), pushed, 60s);
  ASSERT_EQ(got.size(), pushed);
  for (std::size_t off = 0; off < pushed; off += chunk.size()) {
    std::size_t n = std::min(chunk.size(), pushed - off);
    ASSERT_EQ(0, std::memcmp(got.data() + off, chunk.data(), n)) << "at offset " << off;
  }
}

TEST_P(ProxyTest, sigterm_stops_accepting_and_lets_a_transfer_in_flight_finish) {
  TestBackend backend = TestBackend::listen_on("127.0.0.1:0");
  start_proxy({backend.endpoint.text}, {"--shutdown-timeout", "30"});
  Fd client = connect_now(endpoint_);
  ASSERT_TRUE(client.valid());
  Fd server = backend.accept_one();
  ASSERT_TRUE(server.valid());
  ASSERT_TRUE(proxy_.send_signal(SIGTERM));
  ASSERT_TRUE(proxy_.wait_for_stderr("stopping: no new connections", 10'000ms).has_value());
  EXPECT_FALSE(connect_now(endpoint_, 0, 2s).valid()) << "still accepting after SIGTERM";
  // The transfer in flight goes on, both ways, to its natural end.
  std::string down = pattern(2 * 1024 * 1024, 41);
  // Sent while the client reads: the socket buffers on the way need not hold 2 MiB (under the kernel's TCP memory
  // pressure they shrink, and a send that waited for the reader to start timed out).
  bool sent = false;
  std::thread sender([&] {
    sent = send_all(server.get(), down, 30s);
    ::shutdown(server.get(), SHUT_WR);
  });
  std::string got = read_for(client.get(), down.size(), 30s);
  sender.join();
  ASSERT_TRUE(sent);
  EXPECT_TRUE(got == down) << first_difference(down, got);
  ASSERT_TRUE(send_all(client.get(), "last words"));
  client.reset();
  EXPECT_EQ(read_for(server.get(), 100, 10s), "last words");
  server.reset();
  // With its last transfer done it exits at once, well before the shutdown timeout.
  auto status = proxy_.wait_for_exit(20'000ms);
  ASSERT_TRUE(status.has_value()) << "the proxy did not exit once its last transfer ended";
  EXPECT_TRUE(status->success()) << status->describe();
}

TEST_P(ProxyTest, the_idle_timeout_closes_a_silent_connection_but_not_a_busy_one) {
  TestBackend backend = TestBackend::listen_on("127.0.0.1:0");
  // The timeout is 15 times the busy connection's gap: only a stall of the machine over 1.4 s (a hang, not a busy CI
  // host) can close the busy connection. With 0.5 s it failed once on both backends at once, on a machine loaded
  // with builds and a flood test.
  start_proxy({backend.endpoint.text}, {"--idle-timeout", "1.5"});
  Fd busy_client = connect_now(endpoint_);
  Fd busy_server = backend.accept_one();
  Fd idle_client = connect_now(endpoint_);
  Fd idle_server = backend.accept_one();
  ASSERT_TRUE(busy_server.valid() && idle_server.valid());
  // One direction only, a byte every 100 ms for 4.5 s: three idle timeouts' worth, never idle for one.
  for (int i = 0; i < 45; ++i) {
    ASSERT_TRUE(send_all(busy_server.get(), "b"));
    ASSERT_EQ(read_for(busy_client.get(), 1, 5s), "b") << "the busy connection was closed at " << i;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(wait_end(idle_client.get(), 5s)) << "the idle client was not closed";
  EXPECT_TRUE(wait_end(idle_server.get(), 5s)) << "the idle backend connection was not closed";
}

// ---- balancing ---------------------------------------------------------------------------------------------------

// Which of the two test backends got the proxy's next connection (0 or 1; -1: none within the timeout). The accepted
// socket goes to `kept`.
int which_backend(TestBackend* backends, std::vector<Fd>& kept, Clock::duration timeout = 10s) {
  pollfd p[2] = {{backends[0].fd.get(), POLLIN, 0}, {backends[1].fd.get(), POLLIN, 0}};
  int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count());
  if (::poll(p, 2, ms) <= 0) return -1;
  int i = (p[0].revents & POLLIN) ? 0 : 1;
  kept.push_back(backends[i].accept_one(0s));
  return i;
}

TEST_P(ProxyTest, roundrobin_takes_turns_leastconn_picks_the_least_busy_and_source_keeps_a_client_on_one) {
  TestBackend backends[2] = {TestBackend::listen_on("127.0.0.1:0"), TestBackend::listen_on("127.0.0.1:0")};
  const std::vector<std::string> both = {backends[0].endpoint.text, backends[1].endpoint.text};
  std::vector<Fd> clients;
  std::vector<Fd> kept;
  {
    start_proxy(both, {"--health-interval", "0", "--balance", "roundrobin"});
    std::vector<int> order;
    for (int i = 0; i < 4; ++i) {
      clients.push_back(connect_now(endpoint_));
      order.push_back(which_backend(backends, kept));
    }
    EXPECT_EQ(order, (std::vector<int>{0, 1, 0, 1}));
    clients.clear();
    kept.clear();
    stop_proxy_and_expect_clean_exit();
  }
  {
    start_proxy(both, {"--health-interval", "0", "--balance", "leastconn"});
    clients.push_back(connect_now(endpoint_));
    int first = which_backend(backends, kept);
    clients.push_back(connect_now(endpoint_));
    int second = which_backend(backends, kept);
    ASSERT_GE(first, 0);
    EXPECT_EQ(second, 1 - first) << "the idle backend should get the second connection";
    // The second connection ends on both sides; the first stays open, so its backend stays the busier one.
    clients[1].reset();
    kept[1].reset();
    std::this_thread::sleep_for(300ms);
    for (int i = 0; i < 3; ++i) {
      Fd c = connect_now(endpoint_);
      std::vector<Fd> tmp;
      EXPECT_EQ(which_backend(backends, tmp), second) << "connection " << i << " went to the busier backend";
      c.reset();
      tmp.clear();
      std::this_thread::sleep_for(300ms);
    }
    clients.clear();
    kept.clear();
    stop_proxy_and_expect_clean_exit();
  }
  {
    start_proxy(both, {"--health-interval", "0", "--balance", "source"});
    std::vector<int> seen;
    for (int i = 0; i < 6; ++i) {
      clients.push_back(connect_now(endpoint_));
      seen.push_back(which_backend(backends, kept));
    }
    EXPECT_EQ(std::count(seen.begin(), seen.end(), seen[0]), 6) << "one client address, one backend";
    clients.clear();
    kept.clear();
  }
}

// ---- backends coming and going -----------------------------------------------------------------------------------

TEST_P(ProxyTest, a_backend_that_refuses_leaves_the_rotation_and_comes_back_when_it_listens_again) {
  std::string echo = start_echo();
  TestBackend flaky = TestBackend::listen_on("127.0.0.1:0");
  const std::string flaky_text = flaky.endpoint.text;
  start_proxy({flaky_text, echo});
  // While it listens, it gets its turn (round robin: the first connection goes to it).
  Fd first = connect_now(endpoint_);
  ASSERT_TRUE(flaky.accept_one().valid()) << "the listening backend got no connection";
  first.reset();
  // It vanishes: refused connects and failed probes take it out of rotation.
  flaky.fd.reset();
  ASSERT_TRUE(proxy_.wait_for_stderr("backend " + flaky_text + " is DOWN", 10'000ms).has_value())
      << "the vanished backend was not marked down";
  // Meanwhile every client is served by the other one, none is lost.
  for (int i = 0; i < 10; ++i) expect_echoed(pattern(1000, static_cast<std::uint64_t>(i)));
  // It comes back on the same port: probes bring it back, and it gets connections again.
  flaky = TestBackend::listen_on(flaky_text);
  ASSERT_TRUE(proxy_.wait_for_stderr("backend " + flaky_text + " is UP again", 10'000ms).has_value())
      << "the recovered backend was not brought back";
  std::vector<Fd> clients;
  for (int i = 0; i < 4; ++i) clients.push_back(connect_now(endpoint_));
  Fd reached = flaky.accept_one(10s);
  // The probes' connections land here too; any accepted connection that carries bytes from a client proves it.
  bool got_client = false;
  for (int tries = 0; tries < 20 && reached.valid() && !got_client; ++tries) {
    for (Fd& c : clients) (void)send_all(c.get(), "z");
    got_client = read_for(reached.get(), 1, 500ms) == "z";
    if (!got_client) reached = flaky.accept_one(2s);
  }
  EXPECT_TRUE(got_client) << "no client reached the recovered backend";
}

TEST_P(ProxyTest, with_every_backend_down_a_client_is_closed_at_once) {
  // Two ports with nothing listening.
  std::vector<std::string> dead;
  for (int i = 0; i < 2; ++i) dead.push_back(TestBackend::listen_on("127.0.0.1:0").endpoint.text);
  start_proxy(dead);
  ASSERT_TRUE(proxy_.wait_for_stderr("is DOWN", 10'000ms).has_value());
  ASSERT_TRUE(proxy_.wait_for_stderr("backend " + dead[1] + " is DOWN", 10'000ms).has_value());
  for (int i = 0; i < 5; ++i) {
    Fd client = connect_now(endpoint_);
    ASSERT_TRUE(client.valid());
    auto start = Clock::now();
    EXPECT_TRUE(closed_by_server_within(client.get(), 5s));
    // "At once": far below the connect timeout (3 s) — no connect is even attempted.
    EXPECT_LT(Clock::now() - start, 2s);
  }
  expect_running();
}

TEST_P(ProxyTest, a_backend_whose_accept_queue_is_full_times_out_and_the_next_one_serves) {
  // A listener that never accepts, its queue filled by connections of our own: the kernel then drops the SYNs of
  // further connects, which hang until the proxy's connect timeout. (A deterministic blackhole.)
  TestBackend blackhole = TestBackend::listen_on("127.0.0.1:0", /*backlog=*/0);
  std::vector<Fd> fillers;
  for (int i = 0; i < 8; ++i) fillers.push_back(connect_start(blackhole.endpoint));
  std::this_thread::sleep_for(200ms);
  std::string echo = start_echo();
  start_proxy({blackhole.endpoint.text, echo}, {"--connect-timeout", "0.3", "--health-interval", "0"});
  auto start = Clock::now();
  expect_echoed("served by the second backend", 20s);
  EXPECT_GE(Clock::now() - start, 250ms) << "the first backend should have been tried first";
  // The same with only the blackhole: the client is closed after the timeout, not left hanging.
  stop_proxy_and_expect_clean_exit();
  start_proxy({blackhole.endpoint.text}, {"--connect-timeout", "0.3", "--health-interval", "0"});
  Fd client = connect_now(endpoint_);
  ASSERT_TRUE(client.valid());
  EXPECT_TRUE(closed_by_server_within(client.get(), 10s));
}

// ---- abuse -------------------------------------------------------------------------------------------------------

TEST_P(ProxyTest, a_flood_of_connect_then_close_leaves_the_proxy_serving) {
  raise_fd_limit();
  std::string echo = start_echo();
  start_proxy({echo}, {"--max-conns", "10000"});
  for (int round = 0; round < 4; ++round) {
    std::vector<Fd> flood;
    for (int i = 0; i < 500; ++i) flood.push_back(connect_start(endpoint_));
    for (std::size_t i = 0; i < flood.size(); ++i) {
      if (i % 2 == 0) reset_close(flood[i]);  // half with a reset, half with a FIN
      flood[i].reset();
    }
  }
  expect_echoed(pattern(100 * 1000, 5));
  expect_running();
}

TEST_P(ProxyTest, clients_over_the_connection_limit_are_closed_at_once_and_the_others_relay_on) {
  TestBackend backend = TestBackend::listen_on("127.0.0.1:0");
  start_proxy({backend.endpoint.text}, {"--max-conns", "2"});
  Fd first = connect_now(endpoint_);
  Fd first_server = backend.accept_one();
  Fd second = connect_now(endpoint_);
  Fd second_server = backend.accept_one();
  ASSERT_TRUE(first_server.valid() && second_server.valid());
  Fd third = connect_now(endpoint_);
  ASSERT_TRUE(third.valid());
  EXPECT_TRUE(closed_by_server_within(third.get(), 5s)) << "the third client was left open over --max-conns 2";
  ASSERT_TRUE(proxy_.wait_for_stderr("connection limit 2 reached", 5'000ms).has_value());
  ASSERT_TRUE(send_all(first.get(), "still relayed"));
  EXPECT_EQ(read_for(first_server.get(), 13, 10s), "still relayed");
}

TEST_P(ProxyTest, running_out_of_descriptors_keeps_it_running_and_it_recovers) {
  // UBSan's vptr check tests that a vtable is readable by writing it into a pipe (sanitizer_common's
  // IsAccessibleMemoryRange): with no descriptor left that pipe cannot be made, and every virtual call is reported
  // as "invalid vptr". `ringlet echo` shows the same under a descriptor limit; the release build runs this test.
  if (is_sanitized_build()) GTEST_SKIP() << "UBSan needs descriptors for its vptr check";
  std::string echo = start_echo();
  // The proxy inherits a low descriptor limit (an explicit --max-conns means it does not raise it).
  rlimit saved{};
  ::getrlimit(RLIMIT_NOFILE, &saved);
  rlimit low = saved;
  low.rlim_cur = 64;
  ::setrlimit(RLIMIT_NOFILE, &low);
  start_proxy({echo}, {"--max-conns", "100000"});
  ::setrlimit(RLIMIT_NOFILE, &saved);
  std::vector<Peer> peers(100);
  for (std::size_t i = 0; i < peers.size(); ++i) {
    peers[i].fd = connect_start(endpoint_);
    peers[i].out = "hello";
    peers[i].expect = 5;
  }
  // Some are served, the rest wait in the accept queue or are closed: all that matters is that nothing hangs
  // forever and the proxy survives.
  (void)drive(peers, 2s);
  peers.clear();
  expect_running();
  // With the descriptors back, it serves again (health probes that failed for lack of descriptors do not count).
  // The connections still queued from the flood are taken first, and may use up the descriptors once more for a
  // moment, so a client may be turned away a few times before one is served; only a proxy that never recovers
  // fails the deadline.
  const std::string data = pattern(10000, 11);
  bool served = false;
  for (auto deadline = Clock::now() + 20s; !served && Clock::now() < deadline;) {
    Peer p = echo_once(endpoint_, data, /*half_close=*/true, 10s);
    served = p.error == 0 && p.in == data && p.eof;
    if (!served) std::this_thread::sleep_for(200ms);
  }
  EXPECT_TRUE(served) << "no client was served after the descriptors came back";
  expect_running();
}

// ---- address families ----------------------------------------------------------------------------------------------

TEST_P(ProxyTest, ipv6_and_unix_sockets_work_on_both_sides) {
  std::string dir = std::filesystem::temp_directory_path() / ("ringlet-proxy-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string echo6 = start_echo("[::1]:0");
  if (echo6.empty()) GTEST_SKIP() << "no IPv6 loopback here";
  std::string echo_unix = start_echo("unix:" + dir + "/echo.sock");
  start_proxy({echo6}, {}, "[::1]:0");
  expect_echoed(pattern(200 * 1000, 21));
  stop_proxy_and_expect_clean_exit();
  start_proxy({echo_unix}, {}, "unix:" + dir + "/proxy.sock");
  expect_echoed(pattern(200 * 1000, 22));
  expect_echoed(pattern(3 * 1024 * 1024, 23));
  stop_proxy_and_expect_clean_exit();
  std::filesystem::remove_all(dir);
}

// ---- interoperability ----------------------------------------------------------------------------------------------

// HAProxy behind ringlet proxy: it accepts our PROXY header (accept-proxy) and acts on the client address it
// carries: only clients from 127.0.0.2 are let through to the echo backend.
TEST_P(ProxyTest, haproxy_behind_reads_the_client_address_from_our_proxy_header) {
  const char* haproxy = "/usr/sbin/haproxy";
  if (::access(haproxy, X_OK) != 0) GTEST_SKIP() << "haproxy not installed (scripts/install-deps.sh)";
  std::string echo = start_echo();
  TestBackend reserve = TestBackend::listen_on("127.0.0.1:0");  // a free port for haproxy
  const std::string haproxy_address = reserve.endpoint.text;
  reserve.fd.reset();
  std::string config_path =
      std::filesystem::temp_directory_path() / ("ringlet-proxy-haproxy-" + std::to_string(::getpid()) + ".cfg");
  {
    std::ofstream cfg(config_path);
    cfg << "global\n  nbthread 1\n"
        << "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n"
        << "frontend in\n  bind " << haproxy_address << " accept-proxy\n"
        << "  tcp-request content reject if !{ src 127.0.0.2 }\n  default_backend echo\n"
        << "backend echo\n  server e " << echo << "\n";
  }
  ChildProcess hap = ChildProcess::spawn({haproxy, "-db", "-f", config_path});
  ASSERT_TRUE(hap.valid());
  // Wait until haproxy listens.
  std::optional<Endpoint> hap_endpoint = parse_endpoint(haproxy_address);
  ASSERT_TRUE(hap_endpoint.has_value());
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    up = connect_now(*hap_endpoint, 0, 1s).valid();
    if (!up) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(up) << "haproxy did not start:\n" << hap.stderr_text();
  for (const char* version : {"v1", "v2"}) {
    SCOPED_TRACE(version);
    start_proxy({haproxy_address}, {"--send-proxy", version, "--health-interval", "0"}, "0.0.0.0:0");
    Endpoint to = endpoint_;
    reinterpret_cast<sockaddr_in*>(&to.addr)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // From 127.0.0.2: let through, echoed.
    Fd allowed(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_in from{};
    from.sin_family = AF_INET;
    from.sin_addr.s_addr = htonl(0x7f000002);
    ASSERT_EQ(::bind(allowed.get(), reinterpret_cast<sockaddr*>(&from), sizeof from), 0);
    ::connect(allowed.get(), reinterpret_cast<const sockaddr*>(&to.addr), to.len);
    std::string data = pattern(100 * 1000, 31);
    std::string got = roundtrip(allowed, data, 20s);
    EXPECT_TRUE(got == data) << first_difference(data, got);
    // From 127.0.0.1: rejected by haproxy, so closed without an echo.
    Fd refused = connect_now(to);
    ASSERT_TRUE(refused.valid());
    (void)send_all(refused.get(), "not for you");
    bool eof = false;
    EXPECT_EQ(read_for(refused.get(), 100, 10s, &eof), "");
    EXPECT_TRUE(eof);
    allowed.reset();
    refused.reset();
    stop_proxy_and_expect_clean_exit();
  }
  hap.send_signal(SIGTERM);
  hap.wait_for_exit(10'000ms);
  std::filesystem::remove(config_path);
}

RINGLET_ECHO_BOTH_BACKENDS(ProxyTest);

}  // namespace
}  // namespace ringlet::testing::proxy
