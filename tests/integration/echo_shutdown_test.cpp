// echo_shutdown_test.cpp — how `ringlet echo` stops: SIGTERM and SIGINT drain open connections and exit 0, work in
// progress finishes or is cut at --shutdown-timeout, and a second signal exits at once. Both backends.
#include "echo_harness.hpp"

#include <thread>

namespace ringlet::testing::echo {
namespace {

class EchoShutdown : public EchoServerTest {
 protected:
  // Opens `n` connections and proves each is being served.
  std::vector<Fd> open_idle_connections(int n) {
    std::vector<Fd> fds;
    for (int i = 0; i < n; ++i) {
      Fd fd = connect_now(endpoint_);
      std::string hello = "idle " + std::to_string(i);
      EXPECT_TRUE(fd.valid());
      EXPECT_EQ(roundtrip(fd, hello), hello);
      fds.push_back(std::move(fd));
    }
    return fds;
  }

  // A connection whose handler cannot finish: the client sends until the server stops taking input and never
  // reads, so the server's output to it cannot drain.
  Fd open_stalled_connection() {
    Fd fd = connect_now(endpoint_, /*receive_buffer=*/16 * 1024);
    EXPECT_TRUE(fd.valid());
    if (!fd.valid()) return fd;
    std::string chunk = pattern(256 * 1024, 9);
    for (auto until = Clock::now() + 5s; Clock::now() < until;) {
      ssize_t r = ::send(fd.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (r > 0) continue;
      EXPECT_TRUE(r < 0 && errno == EAGAIN) << std::strerror(errno);
      pollfd p{fd.get(), POLLOUT, 0};
      if (::poll(&p, 1, 300) == 0) return fd;  // no progress for 300 ms: stalled
    }
    ADD_FAILURE() << "the server kept taking input from a client that never reads";
    return fd;
  }

  // With idle connections open, `signal` makes the server close them and exit 0, saying so.
  void stops_gracefully_on(int signal) {
    ASSERT_NO_FATAL_FAILURE(start({"--shutdown-timeout", "2"}));
    std::vector<Fd> clients = open_idle_connections(3);
    auto sent = Clock::now();
    ASSERT_NO_FATAL_FAILURE(stop_and_expect_clean_exit(signal));
    RecordProperty("exit_after_ms", std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                       Clock::now() - sent).count()));
    for (std::size_t i = 0; i < clients.size(); ++i) {
      EXPECT_TRUE(closed_by_server_within(clients[i].get(), 10s)) << "client " << i << " was not closed";
    }
    std::string err = server_.stderr_text();
    EXPECT_NE(err.find("stopping"), std::string::npos) << err;
    EXPECT_NE(err.find("stopped"), std::string::npos) << err;
    EXPECT_NE(err.find("forced closed 0"), std::string::npos) << "idle connections need no force:\n" << err;
  }
};

TEST_P(EchoShutdown, sigterm_closes_idle_connections_and_exits_zero) { stops_gracefully_on(SIGTERM); }

TEST_P(EchoShutdown, sigint_closes_idle_connections_and_exits_zero) { stops_gracefully_on(SIGINT); }

TEST_P(EchoShutdown, an_echo_in_progress_at_sigterm_comes_back_intact_before_the_exit) {
  ASSERT_NO_FATAL_FAILURE(start({"--shutdown-timeout", "1"}));
  Peer p;
  p.fd = connect_now(endpoint_);
  ASSERT_TRUE(p.fd.valid());
  p.out = pattern(32 << 20, 31);
  p.expect = p.out.size();
  p.max_write = 64 * 1024;
  // Run the echo until about a mebibyte has come back, then signal in the middle of it.
  for (auto until = Clock::now() + 10s; p.in.size() < (1u << 20) && !p.done() && Clock::now() < until;) {
    drive_one(p, 10ms);
  }
  ASSERT_GE(p.in.size(), 1u << 20) << "the echo did not get going";
  ASSERT_FALSE(p.done()) << "the echo finished before the signal; nothing was in progress";
  ASSERT_TRUE(server_.send_signal(SIGTERM));
  auto signalled = Clock::now();

  // Whatever the server had received before it stopped reading comes back intact; then it closes.
  drive_one(p, 20s);
  EXPECT_TRUE(p.eof || p.error != 0) << "the connection was not closed";
  EXPECT_TRUE(p.error == 0 || p.error == ECONNRESET) << std::strerror(p.error);
  ASSERT_LE(p.in.size(), p.out.size());
  EXPECT_TRUE(p.out.compare(0, p.in.size(), p.in) == 0) << "the bytes that came back are not a prefix of those sent";
  RecordProperty("echoed_bytes_after_signal", std::to_string(p.in.size()));
  std::printf("echoed %zu of %zu bytes (sent %zu) before the connection closed\n", p.in.size(), p.out.size(),
              p.sent);

  // The bounds past the shutdown timeout only catch a hang (a loaded machine may take seconds to close).
  auto status = server_.wait_for_exit(std::chrono::duration_cast<std::chrono::milliseconds>(
      1s + 30s - (Clock::now() - signalled)));
  ASSERT_TRUE(status.has_value()) << "still running 31 s after SIGTERM with --shutdown-timeout 1";
  EXPECT_TRUE(status->success()) << status->describe();
  EXPECT_NE(server_.stderr_text().find("stopped"), std::string::npos);
}

TEST_P(EchoShutdown, a_connection_that_cannot_finish_is_closed_at_the_shutdown_timeout) {
  ASSERT_NO_FATAL_FAILURE(start({"--shutdown-timeout", "1"}));
  Fd stalled = open_stalled_connection();
  ASSERT_TRUE(stalled.valid());
  ASSERT_TRUE(server_.send_signal(SIGTERM));
  auto signalled = Clock::now();
  ASSERT_TRUE(server_.wait_for_stderr("stopping", 20'000ms).has_value());

  // Stopping closes every shard's listener: once each shard has said so, new connections are refused by the kernel.
  // (The shards stop one after another; a connection made between two of them is not what this checks.)
  auto count = [this](std::string_view what) {
    std::string err = server_.stderr_text();
    std::size_t n = 0;
    for (std::size_t at = err.find(what); at != std::string::npos; at = err.find(what, at + 1)) ++n;
    return n;
  };
  std::size_t shards = count("listening on ");
  for (auto until = Clock::now() + 20s; count("stopping: no new connections") < shards && Clock::now() < until;) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(count("stopping: no new connections"), shards) << server_.stderr_text();
  EXPECT_FALSE(connect_now(endpoint_, 0, 1s).valid()) << "a new connection was accepted after SIGTERM";

  auto status = server_.wait_for_exit(31'000ms);  // the timeout, and 30 s that only a hang exceeds
  auto lasted = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - signalled).count();
  ASSERT_TRUE(status.has_value()) << "still running 31 s after SIGTERM with --shutdown-timeout 1";
  EXPECT_TRUE(status->success()) << status->describe();
  EXPECT_GE(lasted, 900) << "the connection was not given its shutdown timeout";
  std::string err = server_.stderr_text();
  EXPECT_NE(err.find("shutdown timeout: closing 1 connection(s)"), std::string::npos) << err;
  EXPECT_NE(err.find("forced closed 1"), std::string::npos) << err;
  EXPECT_TRUE(closed_by_server_within(stalled.get(), 10s));
  RecordProperty("exit_after_ms", std::to_string(lasted));
}

TEST_P(EchoShutdown, a_second_sigterm_closes_the_remaining_connections_at_once) {
  // A shutdown timeout far longer than any wait below, so only the second signal can end the stop.
  ASSERT_NO_FATAL_FAILURE(start({"--shutdown-timeout", "600"}));
  Fd stalled = open_stalled_connection();
  ASSERT_TRUE(stalled.valid());
  ASSERT_TRUE(server_.send_signal(SIGTERM));
  ASSERT_TRUE(server_.wait_for_stderr("stopping", 20'000ms).has_value());
  std::this_thread::sleep_for(300ms);
  ASSERT_TRUE(server_.running()) << "the stalled connection should hold the graceful stop open";

  ASSERT_TRUE(server_.send_signal(SIGTERM));
  auto status = server_.wait_for_exit(30'000ms);
  ASSERT_TRUE(status.has_value()) << "still running 30 s after the second SIGTERM";
  // The stop is forced (every shard cancels its connections), then completes normally.
  EXPECT_TRUE(status->success()) << status->describe();
  EXPECT_NE(server_.stderr_text().find("closing every connection now"), std::string::npos) << server_.stderr_text();
  EXPECT_NE(server_.stderr_text().find("forced closed 1"), std::string::npos) << server_.stderr_text();
}

RINGLET_ECHO_BOTH_BACKENDS(EchoShutdown);

}  // namespace
}  // namespace ringlet::testing::echo
