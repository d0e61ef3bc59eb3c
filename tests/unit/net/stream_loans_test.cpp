// stream_loans_test.cpp — no connection can starve another of receive buffers, and data beats timeouts.
//
// The loop here has a receive ring of 16 buffers (io_uring; epoll allocates per receive, so there the same tests
// check that nothing is lost or reordered by the copying). Stalled connections — a reader that stopped reading, a
// writer whose peer does not read — are made on purpose with more data than the whole ring holds; without the
// loan rule (docs/design/buffers.md) the ring stays dry and the fresh connection below is never served.
// The clients are plain kernel sockets driven from the test thread, so the only loop in play is the server's.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "ringlet/net/stream.hpp"
#include "ringlet/runtime/clock.hpp"
#include "ringlet/runtime/counters.hpp"
#include "support/loop_fixture.hpp"

namespace ringlet {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::uint32_t kRingBuffers = 16;  // 128 KiB of 8 KiB buffers

// A byte pattern with no short period, so a dropped, repeated or misplaced run of bytes shows up in a compare.
std::string pattern(std::size_t n, std::size_t seed) {
  std::string s(n, '\0');
  std::uint32_t x = static_cast<std::uint32_t>(seed * 2654435761u + 12345u);
  for (auto& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

// A listening socket on 127.0.0.1 and connected pairs made from it: the client end a blocking kernel socket, the
// server end a Stream on the test's loop.
class RawListener {
 public:
  RawListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // Small kernel buffers on both sides (accepted sockets inherit the listener's), so a peer that does not read
    // stalls the server after kilobytes, not after the megabytes loopback autotuning would otherwise absorb.
    int small = 8192;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 128), 0);
    socklen_t len = sizeof addr_;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr_), &len);
  }
  ~RawListener() { ::close(fd_); }

  // Returns the client fd and puts the accepted end in `server`. rcvbuf > 0 shrinks the client's receive buffer
  // (set before connecting, so the window is small from the start); sndbuf > 0 the server end's send buffer.
  int connect_pair(Loop& loop, Stream& server, int client_rcvbuf = 0, int server_sndbuf = 0) {
    int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 8192;
    ::setsockopt(c, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    if (client_rcvbuf > 0) ::setsockopt(c, SOL_SOCKET, SO_RCVBUF, &client_rcvbuf, sizeof client_rcvbuf);
    EXPECT_EQ(::connect(c, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_), 0);
    int s = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    EXPECT_GE(s, 0);
    if (server_sndbuf > 0) ::setsockopt(s, SOL_SOCKET, SO_SNDBUF, &server_sndbuf, sizeof server_sndbuf);
    server = Stream(loop, s);
    return c;
  }

 private:
  int fd_ = -1;
  sockaddr_in addr_{};
};

// Sends what the socket takes now, without blocking; returns the bytes taken.
std::size_t send_some(int fd, std::string_view bytes) {
  if (bytes.empty()) return 0;
  ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

std::size_t recv_some(int fd, std::string& into) {
  char buf[65536];
  ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n <= 0) return 0;
  into.append(buf, static_cast<std::size_t>(n));
  return static_cast<std::size_t>(n);
}

// A reader that looked once and then stopped reading: its receive stays armed, its queue fills.
Task<void> read_once_then_stall(Stream* s) { (void)co_await s->wait_more(); }

// The echo handler's loop: every received slice goes back out zero-copy, so a peer that does not read leaves the
// received buffers in the output chain.
Task<void> echo(Stream* s) {
  for (;;) {
    Result<Slice> data = co_await s->receive();
    if (!data || data->empty()) break;
    if (!co_await s->write(std::move(*data))) break;
  }
  (void)co_await s->flush();
}

// Through the shared receive ring (read_exactly into an empty queue would receive straight into its own memory).
Task<std::string> read_through_the_ring(Stream* s, std::size_t n) {
  while (s->inbound().bytes() < n) {
    auto more = co_await with_timeout(s->wait_more(), 10s);
    if (!more) co_return std::string("<no reply>");
  }
  std::string out(n, '\0');
  s->inbound().copy_out(std::as_writable_bytes(std::span(out.data(), n)));
  co_return out;
}

class StreamLoansTest : public testing::LoopTest {
 protected:
  void configure(LoopOptions& options) override { options.backend.provided_buffer_count = kRingBuffers; }

  // Runs loop turns until done() or a generous wall-clock bound (a hang detector, never a verdict on speed).
  template <class Done>
  bool turn_until(Done done, std::chrono::seconds limit = 20s) {
    const auto deadline = Clock::now() + limit;
    while (!done()) {
      if (Clock::now() > deadline) return false;
      loop().run_once(false);
    }
    return true;
  }

  // A fresh connection sends five bytes; its reader must get them (within a bound only a starved receive hits).
  void expect_a_fresh_connection_is_served(RawListener& listener) {
    Stream fresh;
    int c = listener.connect_pair(loop(), fresh);
    ASSERT_EQ(::send(c, "hello", 5, MSG_NOSIGNAL), 5);
    EXPECT_EQ(run(read_through_the_ring(&fresh, 5)), "hello") << "the fresh connection was starved";
    fresh.close();
    ::close(c);
  }
};

TEST_P(StreamLoansTest, stalled_readers_give_their_receive_buffers_back_and_lose_nothing) {
  RawListener listener;
  constexpr int kStalled = 4;
  constexpr std::size_t kEach = 96 * 1024;  // four of these are three times the ring
  std::vector<Stream> servers(kStalled);
  std::vector<int> clients;
  std::vector<std::string> sent;
  for (int i = 0; i < kStalled; ++i) {
    clients.push_back(listener.connect_pair(loop(), servers[i]));
    sent.push_back(pattern(kEach, static_cast<std::size_t>(i)));
    loop().spawn(read_once_then_stall(&servers[i]));
  }
  const std::uint64_t loans_before = thread_counters().loans_returned.get();
  std::vector<std::size_t> offset(kStalled, 0);
  bool all_queued = turn_until([&] {
    bool done = true;
    for (int i = 0; i < kStalled; ++i) {
      offset[i] += send_some(clients[i], std::string_view(sent[i]).substr(offset[i]));
      done = done && servers[i].inbound().bytes() == kEach;
    }
    return done;
  });
  ASSERT_TRUE(all_queued) << "the stalled connections' data never all arrived: receives starved";
  if (GetParam() == BackendKind::uring) {
    EXPECT_GT(thread_counters().loans_returned.get(), loans_before) << "no loans were copied out of the ring";
  }

  expect_a_fresh_connection_is_served(listener);

  for (int i = 0; i < kStalled; ++i) {
    std::string got(kEach, '\0');
    ASSERT_EQ(servers[i].inbound().copy_out(std::as_writable_bytes(std::span(got.data(), got.size()))), kEach);
    EXPECT_TRUE(got == sent[i]) << "connection " << i << ": queued bytes differ from the sent ones";
    servers[i].close();
    ::close(clients[i]);
  }
}

TEST_P(StreamLoansTest, an_echo_to_a_peer_that_does_not_read_gives_its_buffers_back_and_echoes_every_byte) {
  RawListener listener;
  constexpr int kStalled = 2;
  constexpr std::size_t kEach = 1024 * 1024;  // far past both sockets' buffers and the stream's limits
  std::vector<Stream> servers(kStalled);
  std::vector<int> clients;
  std::vector<std::string> sent;
  for (int i = 0; i < kStalled; ++i) {
    clients.push_back(listener.connect_pair(loop(), servers[i], /*client_rcvbuf=*/4096, /*server_sndbuf=*/4096));
    sent.push_back(pattern(kEach, 100 + static_cast<std::size_t>(i)));
    loop().spawn(echo(&servers[i]));
  }
  // Flood without reading until the server stops taking bytes: its output is full and its input at the limit.
  std::vector<std::size_t> offset(kStalled, 0);
  int quiet_turns = 0;
  ASSERT_TRUE(turn_until([&] {
    std::size_t moved = 0;
    for (int i = 0; i < kStalled; ++i) {
      std::size_t n = send_some(clients[i], std::string_view(sent[i]).substr(offset[i]));
      offset[i] += n;
      moved += n;
    }
    quiet_turns = moved == 0 ? quiet_turns + 1 : 0;
    return quiet_turns >= 200;
  }));
  ASSERT_LT(offset[0], kEach) << "the server took everything: the peer never stalled it";

  expect_a_fresh_connection_is_served(listener);

  // Now the peers read: every byte comes back, in order.
  std::vector<std::string> echoed(kStalled);
  ASSERT_TRUE(turn_until([&] {
    bool done = true;
    for (int i = 0; i < kStalled; ++i) {
      offset[i] += send_some(clients[i], std::string_view(sent[i]).substr(offset[i]));
      while (recv_some(clients[i], echoed[i]) > 0) {
      }
      done = done && echoed[i].size() == kEach;
    }
    return done;
  })) << "echoes stopped at " << echoed[0].size() << " and " << echoed[1].size() << " bytes";
  for (int i = 0; i < kStalled; ++i) {
    EXPECT_TRUE(echoed[i] == sent[i]) << "connection " << i << ": echoed bytes differ from the sent ones";
    ::shutdown(clients[i], SHUT_WR);
  }
  ASSERT_TRUE(turn_until([&] { return loop().live_tasks() == 0; }));
  for (int i = 0; i < kStalled; ++i) {
    servers[i].close();
    ::close(clients[i]);
  }
}

RINGLET_BOTH_BACKENDS(StreamLoansTest);

// ---- completions before timers ----------------------------------------------------------------------------------

class CompletionsBeforeTimersTest : public testing::LoopTest {
 protected:
  const ringlet::Clock* test_clock() override { return &clock_; }
  ManualClock clock_{1'000'000'000};
};

Task<Status> wait_for_input(Stream* s) { co_return co_await s->wait_more(); }
Task<Status> joined(JoinHandle<Status> h) { co_return co_await std::move(h); }

// The process was descheduled past a read timeout while the data arrived: the loop must deliver the data, not the
// timeout (docs/design/loop.md: completions are reaped before timers expire).
TEST_P(CompletionsBeforeTimersTest, data_that_arrived_during_a_stall_past_the_timeout_wins_over_the_timeout) {
  RawListener listener;
  for (bool data_arrives : {true, false}) {
    SCOPED_TRACE(data_arrives ? "data arrives during the stall" : "nothing arrives (control)");
    Stream server;
    int c = listener.connect_pair(loop(), server);
    server.set_timeout(1s);
    JoinHandle<Status> waiter = loop().spawn_joinable(wait_for_input(&server));
    for (int i = 0; i < 10; ++i) loop().run_once(false);  // the reader is waiting, its timer armed
    ASSERT_FALSE(waiter.done());
    if (data_arrives) {
      ASSERT_EQ(::send(c, "x", 1, MSG_NOSIGNAL), 1);
    }
    clock_.advance(2'000'000'000);  // the stall: past the deadline before the loop looks again
    loop().run_once(false);
    ASSERT_TRUE(waiter.done()) << "one turn after the stall the wait must be over";
    Status s = run(joined(std::move(waiter)));
    if (data_arrives) {
      EXPECT_TRUE(s) << "timed out although the data had arrived: " << s.error().message();
      EXPECT_EQ(server.inbound().bytes(), 1u);
    } else {
      EXPECT_EQ(s.error(), errc::timed_out);
    }
    server.close();
    ::close(c);
  }
}

RINGLET_BOTH_BACKENDS(CompletionsBeforeTimersTest);

// A send the kernel finishes before the cancel of close() reaches it, forced with the backend's fault hook.
class LateCancelTest : public StreamLoansTest {
 protected:
  void configure(LoopOptions& options) override {
    StreamLoansTest::configure(options);
    options.backend.fault_cancel_loses_to_send = true;
  }
};

TEST_P(LateCancelTest, closing_under_a_send_that_then_completes_sends_a_prefix_of_the_output_and_nothing_else) {
  // close() discards unsent output, but a send already handed to the kernel may still complete (the cancel lost the
  // race). Its buffers must then still hold this stream's bytes — not be back in the pool under the kernel, where
  // another connection's reply could land — and its completion must not advance the chain close() emptied (that
  // aborted `ringlet bench` on io_uring). The peer drains after the close: what arrives is a prefix of the output.
  RawListener listener;
  Stream server;
  const int c = listener.connect_pair(loop(), server, /*client_rcvbuf=*/8192, /*server_sndbuf=*/8192);
  const std::string data = pattern(256 * 1024, 1);
  server.queue_copy(data);
  for (int i = 0; i < 3; ++i) loop().run_once(false);  // the send goes out and stalls on the full window
  ASSERT_GT(loop().pending_operations(), 0u) << "the send should be in flight";
  server.close();
  // Other connections' replies take buffers from the pool meanwhile; none may reach this peer.
  std::vector<Buffer*> others;
  for (int i = 0; i < 64; ++i) {
    Buffer* b = BufferPool::local().acquire(4096);
    std::memset(b->data, 'X', b->capacity);
    others.push_back(b);
  }
  std::string received;
  std::thread reader([&] {
    char buf[65536];
    for (;;) {
      const ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) break;
      received.append(buf, static_cast<std::size_t>(n));
    }
  });
  ASSERT_TRUE(turn_until([&] { return loop().pending_operations() == 0; }, 20s));
  for (int i = 0; i < 3; ++i) loop().run_once(false);  // the deferred close: the reader sees the end
  reader.join();
  ::close(c);
  for (Buffer* b : others) buffer_unref(b);
  EXPECT_GT(received.size(), 0u);
  ASSERT_LE(received.size(), data.size());
  EXPECT_EQ(received, data.substr(0, received.size()));
}

RINGLET_BOTH_BACKENDS(LateCancelTest);

// ---- sends refused while the socket has room (#15) ------------------------------------------------------------

// Past net.ipv4.tcp_mem's limit Linux refuses sends (EAGAIN) to a socket whose poll keeps saying "writable"; the
// backends' fault hook refuses the first kRefusals sends the same way, and a manual clock stands still.
class RefusedSendsTest : public testing::LoopTest {
 protected:
  static constexpr std::uint32_t kRefusals = 8;
  const ringlet::Clock* test_clock() override { return &clock_; }
  void configure(LoopOptions& options) override { options.backend.fault_refused_writes = kRefusals; }

  // Runs the loop until the output has gone or the stream pauses on a timer: the state, not a count of turns, ends
  // it. Blocking turns wait for the kernel's completions (the poll for room).
  void run_until_sent_or_paused(const Stream& s) {
    do {
      loop().run_once(/*may_block=*/true);
    } while (s.queued_bytes() > 0 && loop().timers().size() == 0);
  }

  ManualClock clock_{1'000'000'000};
};

Task<Status> flushed(Stream* s) { co_return co_await s->flush(); }

TEST_P(RefusedSendsTest, a_send_refused_although_the_socket_has_room_waits_for_the_clock_instead_of_spinning) {
  RawListener listener;
  Stream server;
  const int c = listener.connect_pair(loop(), server);
  const std::string bytes = "refused eight times, then sent";
  server.queue_copy(bytes);
  JoinHandle<Status> flush = loop().spawn_joinable(flushed(&server));
  // After the first refusal and a poll that says "room", the second refusal must not be retried until time passes.
  // A stream that polled and retried instead used up every refusal here; one that took EAGAIN for an error lost
  // its output.
  run_until_sent_or_paused(server);
  ASSERT_EQ(server.queued_bytes(), bytes.size()) << "the refused send was retried without waiting for the clock";
  std::string received;
  EXPECT_EQ(recv_some(c, received), 0u);
  // Each step of the clock lets one more try through, until the refusals run out and the bytes go.
  int steps = 0;
  while (server.queued_bytes() > 0 && steps < 40) {
    clock_.advance(std::chrono::nanoseconds(2s).count());
    run_until_sent_or_paused(server);
    ++steps;
  }
  EXPECT_EQ(steps, static_cast<int>(kRefusals) - 1) << "one pause per refusal after the first";
  Status s = run(joined(std::move(flush)));
  EXPECT_TRUE(s) << s.error().message();
  const auto deadline = Clock::now() + 10s;  // a hang detector: the bytes are in the kernel already
  while (received.size() < bytes.size() && Clock::now() < deadline) recv_some(c, received);
  EXPECT_EQ(received, bytes);
  server.close();
  ::close(c);
}

RINGLET_BOTH_BACKENDS(RefusedSendsTest);

}  // namespace
}  // namespace ringlet
