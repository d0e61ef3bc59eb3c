// echo_load_test.cpp — `ringlet echo` under load, as a black box: a client that sends 64 MiB without reading must
// not grow the server (back-pressure reaches TCP), and 10,000 concurrent connections must all be served at a few
// KiB of server memory each. Memory is read from /proc/PID/status (VmRSS). Both backends.
#include "echo_harness.hpp"

#include <thread>

namespace ringlet::testing::echo {
namespace {

using EchoLoad = EchoServerTest;

// The stream a client sends: a random mebibyte, changed per mebibyte, so reordered or repeated blocks are caught.
class Stream64 {
 public:
  explicit Stream64(std::size_t total) : total_(total), block_(pattern(kBlock, 64)) {}
  std::size_t total() const { return total_; }
  char at(std::size_t offset) const {
    return static_cast<char>(block_[offset % kBlock] ^ static_cast<char>(offset / kBlock * 37 + 1));
  }
  void fill(char* dst, std::size_t offset, std::size_t n) const {
    for (std::size_t i = 0; i < n; ++i) dst[i] = at(offset + i);
  }
  // The offset of the first byte of `got` (received at `offset`) that is wrong, or npos.
  std::size_t mismatch(const char* got, std::size_t offset, std::size_t n) const {
    for (std::size_t i = 0; i < n; ++i) {
      if (got[i] != at(offset + i)) return offset + i;
    }
    return std::string::npos;
  }

 private:
  static constexpr std::size_t kBlock = 1 << 20;
  std::size_t total_;
  std::string block_;
};

TEST_P(EchoLoad, a_client_that_sends_64_mib_without_reading_holds_server_memory_flat) {
  ASSERT_NO_FATAL_FAILURE(start());
  // Warm up the server's buffer pools with a large echo, so the baseline includes them.
  Peer warm = echo_once(endpoint_, pattern(4 << 20, 5), /*half_close=*/true);
  ASSERT_TRUE(warm.in == warm.out) << first_difference(warm.out, warm.in);
  std::this_thread::sleep_for(100ms);
  long rss_before = rss_kib(server_.pid());
  ASSERT_GT(rss_before, 0);

  const Stream64 stream(64 << 20);
  // A small receive buffer (it also stops autotuning) keeps the kernel from soaking up the echo on our side.
  Fd fd = connect_now(endpoint_, /*receive_buffer=*/64 * 1024);
  ASSERT_TRUE(fd.valid());
  std::vector<char> chunk(256 * 1024);
  std::size_t sent = 0;
  auto send_some = [&] {
    std::size_t n = std::min(chunk.size(), stream.total() - sent);
    stream.fill(chunk.data(), sent, n);
    ssize_t r = ::send(fd.get(), chunk.data(), n, MSG_NOSIGNAL);
    if (r > 0) sent += static_cast<std::size_t>(r);
    return r;
  };

  // Phase 1: send and never read, until TCP stops taking more (the server has stopped receiving).
  auto test_started = Clock::now();
  bool stalled = false;
  while (!stalled && sent < stream.total() && Clock::now() < test_started + 5s) {
    if (send_some() > 0) continue;
    ASSERT_EQ(errno, EAGAIN) << std::strerror(errno);
    pollfd p{fd.get(), POLLOUT, 0};
    stalled = ::poll(&p, 1, 300) == 0;
  }
  EXPECT_TRUE(stalled) << "sent " << sent << " bytes without reading and the server still takes more";
  long rss_stalled = rss_kib(server_.pid());
  std::printf("stalled after sending %zu bytes unread; server VmRSS %ld KiB -> %ld KiB\n", sent, rss_before,
              rss_stalled);
  RecordProperty("unread_bytes_at_stall", std::to_string(sent));
  RecordProperty("rss_growth_kib", std::to_string(rss_stalled - rss_before));
  EXPECT_LT(rss_stalled - rss_before, 32 * 1024) << "the server buffers what the client does not read";

  // Meanwhile another client is served normally.
  Peer other = echo_once(endpoint_, pattern(64 * 1024, 65), /*half_close=*/true, 30s);
  EXPECT_TRUE(other.eof);
  EXPECT_TRUE(other.in == other.out) << "while one client stalls: " << first_difference(other.out, other.in);

  // Phase 2: the client reads again and every byte comes back in order, while it sends the rest.
  std::size_t received = 0;
  std::vector<char> in(256 * 1024);
  auto deadline = test_started + 120s;  // only a hang takes this long
  while (received < stream.total() && Clock::now() < deadline) {
    pollfd p{fd.get(), static_cast<short>(POLLIN | (sent < stream.total() ? POLLOUT : 0)), 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    if ((p.revents & POLLOUT) && sent < stream.total()) {
      ssize_t r = send_some();
      ASSERT_TRUE(r > 0 || errno == EAGAIN) << std::strerror(errno);
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = ::recv(fd.get(), in.data(), in.size(), 0);
      ASSERT_TRUE(r > 0 || (r < 0 && errno == EAGAIN))
          << "after " << received << " bytes: " << (r == 0 ? "EOF" : std::strerror(errno));
      if (r <= 0) continue;
      std::size_t bad = stream.mismatch(in.data(), received, static_cast<std::size_t>(r));
      ASSERT_EQ(bad, std::string::npos) << "wrong byte at offset " << bad;
      received += static_cast<std::size_t>(r);
    }
  }
  EXPECT_EQ(received, stream.total()) << "not every byte came back within 120 s";
  ASSERT_EQ(::shutdown(fd.get(), SHUT_WR), 0);
  EXPECT_TRUE(closed_by_server_within(fd.get(), 20s)) << "no EOF after the half-close";
  std::printf("64 MiB echoed in %lld ms; server VmRSS at the end %ld KiB\n",
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - test_started).count()),
              rss_kib(server_.pid()));
}

TEST_P(EchoLoad, serves_10000_concurrent_connections_at_a_few_kib_each) {
  constexpr std::size_t kConnections = 10'000;
  if (raise_fd_limit() < kConnections + 200) {
    GTEST_SKIP() << "the descriptor hard limit is below " << kConnections + 200 << " (ulimit -Hn)";
  }
  ASSERT_NO_FATAL_FAILURE(start({"--max-conns", "20000"}));
  Peer warm = echo_once(endpoint_, "warm up", /*half_close=*/true);
  ASSERT_EQ(warm.in, "warm up");
  std::this_thread::sleep_for(100ms);
  long rss_before = rss_kib(server_.pid());
  ASSERT_GT(rss_before, 0);

  // Connect in batches; each connection echoes one message and stays open. A batch stays below the listener's
  // queue of 256 accepted connections: bursts beyond it are echo_server_test's burst test.
  std::vector<Peer> peers(kConnections);
  constexpr std::size_t kBatch = 200;
  auto started = Clock::now();
  for (std::size_t first = 0; first < kConnections; first += kBatch) {
    for (std::size_t i = first; i < first + kBatch; ++i) {
      Peer& p = peers[i];
      p.fd = connect_start(endpoint_);
      ASSERT_TRUE(p.fd.valid()) << "connection " << i << ": " << std::strerror(errno);
      p.out = "hello from connection " + std::to_string(i) + "\n";
      p.expect = p.out.size();
    }
    ASSERT_TRUE(drive(std::span<Peer>(peers).subspan(first, kBatch), 60s)) << "batch at " << first;
    for (std::size_t i = first; i < first + kBatch; ++i) {
      ASSERT_EQ(peers[i].error, 0) << "connection " << i << ": " << std::strerror(peers[i].error);
      ASSERT_FALSE(peers[i].eof) << "connection " << i << " was closed by the server without an echo";
      ASSERT_EQ(peers[i].in, peers[i].out) << "connection " << i;
    }
  }
  auto connected_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
  std::this_thread::sleep_for(200ms);
  long rss_open = rss_kib(server_.pid());

  // All of them at once: a second message on every connection.
  for (std::size_t i = 0; i < kConnections; ++i) {
    Peer& p = peers[i];
    p.out = "and again " + std::to_string(i) + "\n";
    p.sent = 0;
    p.in.clear();
    p.expect = p.out.size();
  }
  ASSERT_TRUE(drive(peers, 120s));
  std::size_t ok = 0;
  for (const Peer& p : peers) ok += p.error == 0 && !p.eof && p.in == p.out;
  EXPECT_EQ(ok, kConnections);
  long rss_busy = rss_kib(server_.pid());

  double per_connection = static_cast<double>(rss_open - rss_before) * 1024.0 / kConnections;
  double per_connection_busy = static_cast<double>(rss_busy - rss_before) * 1024.0 / kConnections;
  std::printf("backend %s: %zu connections in %lld ms; server VmRSS %ld KiB idle, %ld KiB with all open "
              "(%.0f bytes per connection), %ld KiB after all echoed at once (%.0f bytes per connection)\n",
              GetParam().c_str(), kConnections, static_cast<long long>(connected_ms), rss_before, rss_open,
              per_connection, rss_busy, per_connection_busy);
  RecordProperty("rss_bytes_per_connection", std::to_string(static_cast<long>(per_connection)));
  RecordProperty("rss_bytes_per_connection_after_burst", std::to_string(static_cast<long>(per_connection_busy)));
  // Not a speed check: a bound loose enough for any sane implementation, tight enough to catch a per-connection
  // leak or a buffer pinned per connection. ASan's redzones and quarantine make its numbers meaningless.
  if (!is_sanitized_build()) {
    EXPECT_LT(per_connection, 4096.0);
    EXPECT_LT(per_connection_busy, 8192.0);
  }

  // Stopping with 10,000 connections open closes them all and exits 0.
  ASSERT_NO_FATAL_FAILURE(stop_and_expect_clean_exit());
  // Every shard reports what it accepted; together that is every connection (10,000 plus the probe).
  std::string log = server_.stderr_text();
  std::uint64_t accepted = 0;
  for (std::size_t at = log.find("stopped (accepted "); at != std::string::npos;
       at = log.find("stopped (accepted ", at + 1)) {
    accepted += std::strtoull(log.c_str() + at + 18, nullptr, 10);
  }
  EXPECT_EQ(accepted, 10001u) << log;
}

RINGLET_ECHO_BOTH_BACKENDS(EchoLoad);

}  // namespace
}  // namespace ringlet::testing::echo
