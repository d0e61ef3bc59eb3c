// echo_server_test.cpp — `ringlet echo` as a black box: byte-exact echo over TCP (v4 and v6) and Unix sockets,
// half-close, the connection limit, the idle timeout, peer resets and command-line errors, on both backends.
// The shutdown paths are in echo_shutdown_test.cpp, memory under load in echo_load_test.cpp.
#include "echo_harness.hpp"

#include <cstdlib>
#include <filesystem>
#include <thread>

namespace ringlet::testing::echo {
namespace {

using EchoServer = EchoServerTest;

TEST_P(EchoServer, echoes_every_size_from_one_byte_to_one_mebibyte_byte_exact) {
  ASSERT_NO_FATAL_FAILURE(start());
  Fd fd = connect_now(endpoint_);
  ASSERT_TRUE(fd.valid());
  const std::size_t sizes[] = {1,     2,     7,     100,   1460,   4095,   4096,    4097,
                               16384, 65535, 65536, 65537, 262144, 999999, 1048575, 1048576};
  std::string all;
  std::uint64_t seed = 1;
  for (std::size_t size : sizes) {
    std::string message = pattern(size, seed++);
    std::string back = roundtrip(fd, message);
    ASSERT_EQ(back.size(), message.size()) << "size " << size;
    ASSERT_TRUE(back == message) << "size " << size << ": " << first_difference(message, back);
    all += message;
  }
  // The same messages again, pipelined: all written without waiting for any reply.
  std::string back = roundtrip(fd, all);
  EXPECT_TRUE(back == all) << first_difference(all, back);
}

TEST_P(EchoServer, returns_thousands_of_small_pipelined_messages_in_order) {
  ASSERT_NO_FATAL_FAILURE(start());
  Peer p;
  p.fd = connect_now(endpoint_);
  ASSERT_TRUE(p.fd.valid());
  for (int i = 0; i < 5000; ++i) p.out += "message " + std::to_string(i) + " of a pipelined burst\n";
  p.max_write = 37;  // many small writes, none waiting for a reply
  p.expect = p.out.size();
  ASSERT_TRUE(drive_one(p, 20s)) << "got " << p.in.size() << " of " << p.out.size() << " bytes";
  EXPECT_EQ(p.error, 0) << std::strerror(p.error);
  EXPECT_TRUE(p.in == p.out) << first_difference(p.out, p.in);
}

TEST_P(EchoServer, keeps_200_concurrent_connections_apart) {
  ASSERT_NO_FATAL_FAILURE(start());
  std::vector<Peer> peers(200);
  for (std::size_t i = 0; i < peers.size(); ++i) {
    Peer& p = peers[i];
    p.fd = connect_start(endpoint_);
    ASSERT_TRUE(p.fd.valid()) << "connection " << i << ": " << std::strerror(errno);
    p.out = pattern(48 * 1024 + i * 131, 1000 + i);  // distinct contents and lengths
    p.max_write = 8192;                                // interleave the connections' traffic
    p.expect = p.out.size();
    p.shut_wr_after_send = true;
    p.wait_eof = true;
  }
  ASSERT_TRUE(drive(peers, 30s));
  for (std::size_t i = 0; i < peers.size(); ++i) {
    const Peer& p = peers[i];
    EXPECT_EQ(p.error, 0) << "connection " << i << ": " << std::strerror(p.error);
    EXPECT_TRUE(p.eof) << "connection " << i;
    EXPECT_TRUE(p.in == p.out) << "connection " << i << ": " << first_difference(p.out, p.in);
  }
}

TEST_P(EchoServer, serves_every_connection_of_a_burst_of_5000_simultaneous_connects) {
  constexpr std::size_t kConnections = 5000;
  if (raise_fd_limit() < kConnections + 100) GTEST_SKIP() << "the descriptor hard limit is too low (ulimit -Hn)";
  ASSERT_NO_FATAL_FAILURE(start());
  // All connects at once: the server falls behind and accepted connections pile up waiting to be taken.
  std::vector<Peer> peers(kConnections);
  for (std::size_t i = 0; i < peers.size(); ++i) {
    peers[i].fd = connect_start(endpoint_);
    ASSERT_TRUE(peers[i].fd.valid()) << "connection " << i << ": " << std::strerror(errno);
    peers[i].out = "burst " + std::to_string(i) + "\n";
    peers[i].expect = peers[i].out.size();
  }
  ASSERT_TRUE(drive(peers, 20s));
  std::size_t served = 0;
  std::size_t first_failure = kConnections;
  for (std::size_t i = 0; i < peers.size(); ++i) {
    bool ok = peers[i].error == 0 && !peers[i].eof && peers[i].in == peers[i].out;
    served += ok;
    if (!ok && first_failure == kConnections) first_failure = i;
  }
  EXPECT_EQ(served, kConnections) << "first failed connection: " << first_failure;
  EXPECT_EQ(server_.stderr_text().find("stopping"), std::string::npos) << "the server stopped without a signal";
  expect_running();
}

TEST_P(EchoServer, after_half_close_returns_every_byte_then_closes) {
  ASSERT_NO_FATAL_FAILURE(start());
  for (std::size_t size : {std::size_t{0}, std::size_t{5}, std::size_t{1} << 20, std::size_t{3} << 20}) {
    Peer p = echo_once(endpoint_, pattern(size, size), /*half_close=*/true);
    ASSERT_TRUE(p.fd.valid());
    EXPECT_EQ(p.error, 0) << "size " << size << ": " << std::strerror(p.error);
    EXPECT_TRUE(p.eof) << "size " << size << ": no EOF after the echo";
    EXPECT_TRUE(p.in == p.out) << "size " << size << ": " << first_difference(p.out, p.in);
  }
}

TEST_P(EchoServer, echoes_over_ipv6_loopback) {
  Fd probe(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in6 any6{};
  any6.sin6_family = AF_INET6;
  any6.sin6_addr = in6addr_loopback;
  if (!probe.valid() || ::bind(probe.get(), reinterpret_cast<sockaddr*>(&any6), sizeof any6) != 0) {
    GTEST_SKIP() << "no IPv6 loopback here";
  }
  probe.reset();
  ASSERT_NO_FATAL_FAILURE(start({}, "[::1]:0"));
  EXPECT_EQ(endpoint_.addr.ss_family, AF_INET6) << endpoint_.text;
  Peer p = echo_once(endpoint_, pattern(300'000, 6), /*half_close=*/true);
  ASSERT_TRUE(p.fd.valid());
  EXPECT_TRUE(p.eof);
  EXPECT_TRUE(p.in == p.out) << first_difference(p.out, p.in);
}

TEST_P(EchoServer, echoes_over_a_unix_socket) {
  std::string dir_template = (std::filesystem::temp_directory_path() / "ringlet-echo-XXXXXX").string();
  ASSERT_NE(::mkdtemp(dir_template.data()), nullptr);
  struct RemoveDir {
    std::filesystem::path path;
    ~RemoveDir() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  } dir{dir_template};
  std::string path = (dir.path / "echo.sock").string();
  ASSERT_NO_FATAL_FAILURE(start({}, "unix:" + path));
  EXPECT_EQ(endpoint_.addr.ss_family, AF_UNIX) << endpoint_.text;
  EXPECT_TRUE(std::filesystem::exists(path));
  std::vector<Peer> peers(4);
  for (std::size_t i = 0; i < peers.size(); ++i) {
    peers[i].fd = connect_now(endpoint_);
    ASSERT_TRUE(peers[i].fd.valid()) << std::strerror(errno);
    peers[i].out = pattern(200'000 + i, 60 + i);
    peers[i].expect = peers[i].out.size();
    peers[i].shut_wr_after_send = true;
    peers[i].wait_eof = true;
  }
  ASSERT_TRUE(drive(peers, 20s));
  for (const Peer& p : peers) {
    EXPECT_TRUE(p.eof);
    EXPECT_TRUE(p.in == p.out) << first_difference(p.out, p.in);
  }
}

TEST_P(EchoServer, closes_connections_over_the_limit_at_once_and_recovers_when_one_closes) {
  // One shard: the limit is split evenly over shards, and this test counts exactly.
  ASSERT_NO_FATAL_FAILURE(start({"--max-conns", "5", "--threads", "1"}));
  std::vector<Fd> admitted;
  for (int i = 0; i < 5; ++i) {
    Fd fd = connect_now(endpoint_);
    ASSERT_TRUE(fd.valid());
    // An echo proves the server has taken the connection (and counts it) before the next one arrives.
    std::string hello = "hello " + std::to_string(i);
    ASSERT_EQ(roundtrip(fd, hello), hello) << "connection " << i;
    admitted.push_back(std::move(fd));
  }

  Fd sixth = connect_now(endpoint_);
  ASSERT_TRUE(sixth.valid()) << "the kernel completes the handshake; the server closes it afterwards";
  EXPECT_TRUE(closed_by_server_within(sixth.get(), 20s)) << "the 6th connection was not closed";
  std::optional<std::string> warning = server_.wait_for_stderr("connection limit 5 reached", 20'000ms);
  EXPECT_TRUE(warning.has_value()) << "no warning about the limit";
  if (warning) {
    EXPECT_NE(warning->find("warn"), std::string::npos) << *warning;
  }

  for (std::size_t i = 0; i < admitted.size(); ++i) {
    EXPECT_EQ(roundtrip(admitted[i], "still here"), "still here") << "connection " << i;
  }

  // Once one of the five closes, a new connection is served; the server needs a moment to see the close, so a
  // connection refused in that moment is retried.
  admitted.front().reset();
  bool served = false;
  for (auto until = Clock::now() + 30s; !served && Clock::now() < until;) {
    Fd fd = connect_now(endpoint_);
    ASSERT_TRUE(fd.valid());
    if (roundtrip(fd, "new one", 10s) == "new one") {
      served = true;
      admitted.front() = std::move(fd);
    } else {
      std::this_thread::sleep_for(20ms);
    }
  }
  EXPECT_TRUE(served) << "no connection was served after one of the five closed";

  Fd again = connect_now(endpoint_);
  ASSERT_TRUE(again.valid());
  EXPECT_TRUE(closed_by_server_within(again.get(), 20s)) << "the limit no longer holds";
  expect_running();
}

// Only the server's own clock decides: the idle connection cannot be closed before the timeout (its timer starts
// at accept, after our connect returned), and the active one sends every 50 ms against a 1 s timeout, a gap that
// only a process stalled for most of a second could stretch. The upper bounds only catch a hang.
TEST_P(EchoServer, closes_an_idle_connection_after_the_idle_timeout_but_not_an_active_one) {
  constexpr auto kIdleTimeout = 1000ms;
  ASSERT_NO_FATAL_FAILURE(start({"--idle-timeout", "1"}));
  Fd idle = connect_now(endpoint_);
  ASSERT_TRUE(idle.valid());
  auto opened = Clock::now();
  Fd active = connect_now(endpoint_);
  ASSERT_TRUE(active.valid());

  std::optional<Clock::duration> idle_lasted;
  int ticks = 0;
  Clock::duration longest_gap{};
  auto last_tick = Clock::now();
  // Three idle timeouts of activity, and on until the idle connection is seen closed (20 s: a hang).
  for (; Clock::now() < opened + 3 * kIdleTimeout || (!idle_lasted && Clock::now() < opened + 20s); ++ticks) {
    auto now = Clock::now();
    longest_gap = std::max(longest_gap, now - last_tick);
    last_tick = now;
    std::string tick = "tick " + std::to_string(ticks);
    ASSERT_EQ(roundtrip(active, tick, 20s), tick)
        << "the active connection stopped echoing after " << ticks << " ticks; the longest pause between ticks was "
        << std::chrono::duration_cast<std::chrono::milliseconds>(longest_gap).count() << " ms";
    if (!idle_lasted && closed_by_server_within(idle.get(), 0ms)) idle_lasted = Clock::now() - opened;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(idle_lasted.has_value()) << "the idle connection was still open after 20 s";
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*idle_lasted).count();
  EXPECT_GE(ms, kIdleTimeout.count() - 5) << "closed before the idle timeout";
  RecordProperty("idle_closed_after_ms", std::to_string(ms));
}

TEST_P(EchoServer, survives_a_client_that_resets_with_a_mebibyte_unread) {
  ASSERT_NO_FATAL_FAILURE(start());
  const std::string mebibyte = pattern(1 << 20, 77);
  for (int round = 0; round < 5; ++round) {
    Fd fd = connect_now(endpoint_, /*receive_buffer=*/16 * 1024);
    ASSERT_TRUE(fd.valid());
    // Send what the kernel takes in up to 500 ms without ever reading the echo, then reset.
    std::size_t sent = 0;
    for (auto until = Clock::now() + 500ms; sent < mebibyte.size() && Clock::now() < until;) {
      ssize_t r = ::send(fd.get(), mebibyte.data() + sent, mebibyte.size() - sent, MSG_NOSIGNAL);
      if (r > 0) {
        sent += static_cast<std::size_t>(r);
        continue;
      }
      ASSERT_TRUE(r < 0 && (errno == EAGAIN || errno == EINTR)) << std::strerror(errno);
      pollfd p{fd.get(), POLLOUT, 0};
      ::poll(&p, 1, 50);
    }
    EXPECT_GT(sent, 0u);
    linger reset_on_close{1, 0};
    ASSERT_EQ(::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &reset_on_close, sizeof reset_on_close), 0);
    fd.reset();
    // The next client is served while the server is still cleaning up after the reset.
    std::string message = pattern(64 * 1024, 100 + round);
    Peer next = echo_once(endpoint_, message, /*half_close=*/true);
    ASSERT_TRUE(next.fd.valid());
    EXPECT_TRUE(next.in == message) << "round " << round << ": " << first_difference(message, next.in);
  }
  std::this_thread::sleep_for(100ms);
  expect_running();
}

// ---- the command line ------------------------------------------------------------------------------------------

TEST_P(EchoServer, rejects_a_listen_address_that_is_not_one) {
  Finished f = run_ringlet({"echo", "--backend", GetParam(), "--listen", "nonsense"});
  ASSERT_TRUE(f.status.has_value()) << "still running";
  EXPECT_TRUE(f.status->exited && f.status->code != 0) << f.status->describe();
  EXPECT_NE(f.err.find("--listen nonsense"), std::string::npos) << f.err;
  EXPECT_NE(f.err.find("not an address"), std::string::npos) << f.err;
  expect_no_sanitizer_report(f.err);
}

TEST_P(EchoServer, rejects_a_connection_limit_of_zero) {
  Finished f = run_ringlet({"echo", "--backend", GetParam(), "--listen", "127.0.0.1:0", "--max-conns", "0"});
  ASSERT_TRUE(f.status.has_value()) << "still running";
  EXPECT_TRUE(f.status->exited && f.status->code != 0) << f.status->describe();
  EXPECT_NE((f.out + f.err).find("--max-conns"), std::string::npos) << f.out << f.err;
  expect_no_sanitizer_report(f.err);
}

TEST_P(EchoServer, help_exits_zero_and_names_every_option) {
  Finished f = run_ringlet({"echo", "--help", "--backend", GetParam()});
  ASSERT_TRUE(f.status.has_value()) << "still running";
  EXPECT_TRUE(f.status->success()) << f.status->describe();
  for (const char* option : {"--listen", "--backend", "--max-conns", "--idle-timeout", "--shutdown-timeout",
                             "--backlog", "--receive-limit", "--log-level"}) {
    EXPECT_NE(f.out.find(option), std::string::npos) << option << " missing from:\n" << f.out;
  }
  expect_no_sanitizer_report(f.err);
}

TEST_P(EchoServer, fails_and_names_the_address_when_the_port_is_taken) {
  Fd taken(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(taken.valid());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(taken.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(taken.get(), 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(taken.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::string where = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

  Finished f = run_ringlet({"echo", "--backend", GetParam(), "--listen", where});
  ASSERT_TRUE(f.status.has_value()) << "still running: it must not listen on a port that is taken";
  EXPECT_TRUE(f.status->exited && f.status->code != 0) << f.status->describe();
  EXPECT_NE(f.err.find("cannot listen on " + where), std::string::npos) << f.err;
  expect_no_sanitizer_report(f.err);
}

RINGLET_ECHO_BOTH_BACKENDS(EchoServer);

}  // namespace
}  // namespace ringlet::testing::echo
