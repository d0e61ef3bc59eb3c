// stream_scenarios_test.cpp — Streams under the conditions a server meets in production: a peer that resets in the
// middle of a big write, half-closed conversations, peers that never read, reads cancelled while bytes are
// arriving, timeouts racing completions, and a 100 MiB zero-copy write to a slow reader.
//
// Where real concurrency matters the peer is a plain blocking socket on its own thread, so bytes arrive at moments
// the loop does not choose (that is what makes a cancellation race the kernel). Every test runs on both backends,
// is bounded in time, and ends with the fixture's clean-shutdown checks.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "ringlet/buf/buffer.hpp"
#include "ringlet/buf/copy_counter.hpp"
#include "ringlet/net/listener.hpp"
#include "ringlet/net/socket_options.hpp"
#include "ringlet/net/stream.hpp"
#include "ringlet/runtime/backend.hpp"
#include "ringlet/runtime/timeout.hpp"
#include "support/loop_fixture.hpp"

namespace ringlet {
namespace {

using namespace std::chrono_literals;
using testing::LoopTest;

// ---- helpers ---------------------------------------------------------------------------------------------------

std::int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void sleep_ns(std::int64_t ns) {
  if (ns <= 0) return;
  timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// The byte at stream position i: no short period, so a lost, repeated or shifted run of bytes never compares equal.
std::uint8_t byte_at(std::uint64_t i) {
  std::uint64_t x = (i / 8 + 1) * 0x9e3779b97f4a7c15ull;
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 29;
  return static_cast<std::uint8_t>(x >> (8 * (i % 8)));
}

void fill_pattern(std::byte* dst, std::size_t n, std::uint64_t start) {
  for (std::size_t i = 0; i < n; ++i) dst[i] = std::byte{byte_at(start + i)};
}

// Index of the first byte of [data, data + n) that differs from the pattern at `start`, or n.
std::size_t first_mismatch(const std::byte* data, std::size_t n, std::uint64_t start) {
  for (std::size_t i = 0; i < n; ++i)
    if (data[i] != std::byte{byte_at(start + i)}) return i;
  return n;
}

template <class T>
Task<detail::TimeoutResult<T>> bounded(Task<T> task, Duration limit) {
  co_return co_await with_timeout(std::move(task), limit);
}

template <class T>
Task<T> wait_for(JoinHandle<T> handle) {
  co_return co_await handle;
}

// A blocking socket connected to `address`, for a peer thread; -1 on failure.
int connect_blocking(const Address& address) {
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, address.sockaddr_ptr(), address.length()) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// A peer thread with its own blocking socket. join() waits for the thread to finish by itself; stop() (and the
// destructor, should a test fail early) first shuts the socket down, which unblocks any send or recv it is stuck in.
class PeerThread {
 public:
  PeerThread() = default;
  PeerThread(const PeerThread&) = delete;
  PeerThread& operator=(const PeerThread&) = delete;
  ~PeerThread() { stop(); }

  template <class Fn>
  void start(int fd, Fn fn) {
    fd_ = fd;
    thread_ = std::thread([fd, fn]() mutable { fn(fd); });
  }
  void join() {
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void stop() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
    join();
  }

 private:
  int fd_ = -1;
  std::thread thread_;
};

Task<Status> write_slice(Stream* s, Slice slice) { co_return co_await s->write(std::move(slice)); }
Task<Status> write_text(Stream* s, std::string text) { co_return co_await s->write(text); }
Task<Result<Slice>> receive_one(Stream* s) { co_return co_await s->receive(); }

Task<Result<Stream>> accept_one(Listener* listener) { co_return co_await with_timeout(listener->accept(), 5s); }

struct StreamPair {
  Stream client;
  Stream server;
};

Task<Result<StreamPair>> connect_pair(Listener* listener) {
  JoinHandle<Result<Stream>> server = Loop::current()->spawn_joinable(accept_one(listener));
  Result<Stream> client = co_await connect(listener->local_address(), 5s);
  Result<Stream> accepted = co_await server;
  if (!client) co_return client.error();
  if (!accepted) co_return accepted.error();
  co_return StreamPair{std::move(*client), std::move(*accepted)};
}

class StreamScenarios : public LoopTest {
 protected:
  // Both ends in this loop.
  StreamPair make_pair(const ListenOptions& options = {}) {
    auto listener = Listener::bind(loop(), Address::loopback_v4(0), options);
    if (!listener) {
      ADD_FAILURE() << "bind: " << listener.error().message();
      return {};
    }
    Result<StreamPair> pair = run(connect_pair(&*listener));
    listener->close();
    if (!pair) {
      ADD_FAILURE() << "connect: " << pair.error().message();
      return {};
    }
    return std::move(*pair);
  }

  // The server end in this loop; the client end is a blocking socket handed to `peer`'s thread.
  template <class Fn>
  Stream make_stream_with_peer_thread(PeerThread& peer, Fn fn, const ListenOptions& options = {}) {
    auto listener = Listener::bind(loop(), Address::loopback_v4(0), options);
    if (!listener) {
      ADD_FAILURE() << "bind: " << listener.error().message();
      return {};
    }
    int fd = connect_blocking(listener->local_address());  // the handshake completes in the kernel
    if (fd < 0) {
      ADD_FAILURE() << "connect: " << std::strerror(errno);
      return {};
    }
    Result<Stream> s = run(accept_one(&*listener));
    listener->close();
    if (!s) {
      ::close(fd);
      ADD_FAILURE() << "accept: " << s.error().message();
      return {};
    }
    peer.start(fd, fn);
    return std::move(*s);
  }
};

// ---- (b) a peer that resets in the middle of a large write ---------------------------------------------------------

// Reads about 1 MiB, then closes with SO_LINGER 0, which sends RST instead of FIN.
Task<void> read_some_then_reset(Stream* s) {
  std::size_t got = 0;
  while (got < (1u << 20)) {
    Result<Slice> r = co_await s->receive();
    if (!r || r->empty()) break;
    got += r->size();
  }
  linger lg{1, 0};
  ::setsockopt(s->fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  s->close();
}

bool is_reset_error(Error e) {
  return e == errc::connection_reset || e == errc::broken_pipe;
}

TEST_P(StreamScenarios, a_peer_reset_in_the_middle_of_a_large_write_fails_the_write_and_releases_its_buffer) {
  StreamPair p = make_pair();
  ASSERT_TRUE(p.client.is_open());
  std::size_t outstanding = BufferPool::local().outstanding();
  constexpr std::size_t kSize = 64u << 20;
  Buffer* b = BufferPool::local().acquire(kSize);
  fill_pattern(b->data, 4096, 0);  // the content does not matter here; the first page is enough to look at
  Slice big(b, 0, kSize);
  loop().spawn(read_some_then_reset(&p.client));
  Status st = run(bounded(write_slice(&p.server, std::move(big)), 20s));
  ASSERT_FALSE(st.ok()) << "a 64 MiB write to a reset peer succeeded";
  EXPECT_TRUE(is_reset_error(st.error())) << st.error().message();
  EXPECT_EQ(BufferPool::local().outstanding(), outstanding) << "the written slice was not released";
  // Reading from the reset connection reports the reset (or EOF), never hangs.
  Result<Slice> after = run(bounded(receive_one(&p.server), 5s));
  EXPECT_TRUE(!after.ok() ? is_reset_error(after.error()) : after->empty());
}

Task<Status> write_chain_of(Stream* s, OutputChain* chain) { co_return co_await s->write_chain(*chain); }

TEST_P(StreamScenarios, a_peer_reset_in_the_middle_of_write_chain_fails_it_cleanly) {
  StreamPair p = make_pair();
  ASSERT_TRUE(p.client.is_open());
  constexpr std::size_t kPiece = 64 * 1024;
  OutputChain chain;
  Buffer* b = BufferPool::local().acquire(kPiece * 2);
  Slice source(b, 0, kPiece * 2);
  for (int i = 0; i < 500; ++i) chain.append(source.sub((i % 2) * kPiece, kPiece - 1));  // 500 pieces, ~32 MiB
  source.reset();
  loop().spawn(read_some_then_reset(&p.client));
  Status st = run(bounded(write_chain_of(&p.server, &chain), 20s));
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(is_reset_error(st.error())) << st.error().message();
  chain.clear();
}

Task<Status> sendfile_all(Stream* s, int fd, std::size_t count) { co_return co_await s->sendfile(fd, 0, count); }

TEST_P(StreamScenarios, a_peer_reset_in_the_middle_of_sendfile_fails_it_without_killing_the_process) {
  char path[] = "/tmp/ringlet-reset-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ::unlink(path);
  constexpr std::size_t kSize = 64u << 20;
  ASSERT_EQ(::ftruncate(fd, kSize), 0);  // a sparse file: sendfile reads zeros without a disk behind it
  StreamPair p = make_pair();
  ASSERT_TRUE(p.client.is_open());
  loop().spawn(read_some_then_reset(&p.client));
  // sendfile(2) has no MSG_NOSIGNAL: writing to a reset socket raises SIGPIPE, whose default action ends the
  // process. The stream must turn it into an error value.
  Status st = run(bounded(sendfile_all(&p.server, fd, kSize), 20s));
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(is_reset_error(st.error())) << st.error().message();
  // The first failure usually reports the reset itself; the next write to the dead socket is the one that meets
  // EPIPE, and with it the signal.
  Status again = run(bounded(sendfile_all(&p.server, fd, kSize), 5s));
  ::close(fd);
  ASSERT_FALSE(again.ok());
  EXPECT_TRUE(is_reset_error(again.error())) << again.error().message();
}

// ---- (c) half-close ------------------------------------------------------------------------------------------------

Task<std::string> receive_to_eof(Stream* s) {
  std::string out;
  for (;;) {
    Result<Slice> r = co_await s->receive();
    if (!r) co_return out + "<" + std::string(r.error().message()) + ">";
    if (r->empty()) break;
    out.append(r->view());
  }
  co_return out;
}

std::string pattern_string(std::size_t n, std::uint64_t start) {
  std::string s(n, '\0');
  fill_pattern(reinterpret_cast<std::byte*>(s.data()), n, start);
  return s;
}

// The server reads the whole request (until the client's half-close), then answers and closes.
Task<bool> answer_after_eof(Stream* s, std::size_t reply_size) {
  std::string request = co_await receive_to_eof(s);
  if (request != pattern_string(request.size(), 0)) co_return false;
  std::string reply = pattern_string(reply_size, request.size());
  Status written = co_await s->write(reply);
  if (!written) co_return false;
  s->close();
  co_return request.size() == 1u << 20;
}

Task<std::string> request_then_half_close(Stream* s, std::size_t request_size) {
  std::string request = pattern_string(request_size, 0);
  Status written = co_await s->write(request);
  if (!written) co_return "write failed";
  if (Status st = s->shutdown_write(); !st) co_return "shutdown_write failed";
  co_return co_await receive_to_eof(s);
}

TEST_P(StreamScenarios, a_half_closed_client_still_receives_a_large_reply_after_the_server_saw_eof) {
  StreamPair p = make_pair();
  ASSERT_TRUE(p.client.is_open());
  constexpr std::size_t kRequest = 1u << 20;
  constexpr std::size_t kReply = 3u << 20;
  JoinHandle<bool> server = loop().spawn_joinable(answer_after_eof(&p.server, kReply));
  auto reply = run(bounded(request_then_half_close(&p.client, kRequest), 20s));
  ASSERT_TRUE(reply.ok()) << "timed out";
  EXPECT_EQ(reply->size(), kReply);
  EXPECT_TRUE(*reply == pattern_string(kReply, kRequest)) << "reply bytes differ";
  auto server_ok = run(bounded(wait_for(std::move(server)), 5s));
  ASSERT_TRUE(server_ok.ok());
  EXPECT_TRUE(*server_ok) << "the server saw a different request";
}

TEST_P(StreamScenarios, a_half_closed_peer_thread_gets_every_byte_we_send_after_its_eof) {
  PeerThread peer;
  std::atomic<std::size_t> peer_received{0};
  std::atomic<bool> peer_saw_pattern{false};
  constexpr std::size_t kReply = 2u << 20;
  Stream s = make_stream_with_peer_thread(peer, [&](int fd) {
    ::send(fd, "question", 8, MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_WR);
    std::string got;
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
    peer_received = got.size();
    peer_saw_pattern = got == pattern_string(kReply, 0);
  });
  ASSERT_TRUE(s.is_open());
  auto question = run(bounded(receive_to_eof(&s), 5s));
  ASSERT_TRUE(question.ok());
  EXPECT_EQ(*question, "question");
  std::string reply = pattern_string(kReply, 0);
  Status st = run(bounded(write_text(&s, reply), 20s));
  ASSERT_TRUE(st.ok()) << st.error().message();
  s.close();
  ASSERT_TRUE(loop().run_until_idle());  // the deferred close sends our FIN
  peer.join();
  EXPECT_EQ(peer_received.load(), kReply);
  EXPECT_TRUE(peer_saw_pattern.load());
}

// ---- (d) peers that never read -------------------------------------------------------------------------------------

Task<void> tick(int* ticks, std::atomic<bool>* stop) {
  for (;;) {
    if (stop->load()) break;
    Status slept = co_await sleep_for(1ms);
    if (!slept) break;
    ++*ticks;
  }
}

struct BlockedWrite {
  std::string outcome;
  int ticks_meanwhile = 0;
};

Task<BlockedWrite> write_to_a_peer_that_never_reads(Stream* s, std::size_t size) {
  BlockedWrite seen;
  std::atomic<bool> stop{false};
  JoinHandle<void> ticker = Loop::current()->spawn_joinable(tick(&seen.ticks_meanwhile, &stop));
  Buffer* b = BufferPool::local().acquire(size);
  Slice big(b, 0, static_cast<std::uint32_t>(size));
  Status st = co_await with_timeout(s->write(std::move(big)), 300ms);
  seen.outcome = st ? "completed" : std::string(st.error().message());
  stop = true;
  co_await ticker;
  co_return seen;
}

TEST_P(StreamScenarios, a_write_to_a_client_that_never_reads_blocks_without_blocking_the_loop) {
  StreamPair p = make_pair();
  ASSERT_TRUE(p.client.is_open());
  // 64 MiB is far more than the two socket buffers between us and a client that reads nothing.
  auto seen = run(bounded(write_to_a_peer_that_never_reads(&p.server, 64u << 20), 10s));
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(seen->outcome, errc::timed_out.message()) << "the write completed although nobody read";
  // The loop kept running other tasks while the write waited (about 300 ticks on an idle machine; a few prove it).
  EXPECT_GT(seen->ticks_meanwhile, 2);
}

// A peer thread that sends endlessly and never reads, with a small receive buffer so that whatever we send it
// fills that buffer quickly. Counts what it managed to send.
auto endless_sender(std::atomic<std::uint64_t>* sent) {
  return [sent](int fd) {
    (void)set_receive_buffer(fd, 16 * 1024);  // best effort: only makes the test reach its steady state sooner
    std::vector<char> chunk(64 * 1024, 'z');
    for (;;) {
      ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (n <= 0) break;
      *sent += static_cast<std::uint64_t>(n);
    }
  };
}

// Fixed kernel buffers on our side (no autotuning), so a test knows what the kernel may hold for us.
void pin_kernel_buffers(Stream& s) {
  EXPECT_TRUE(set_send_buffer(s.fd(), 64 * 1024).ok());
  EXPECT_TRUE(set_receive_buffer(s.fd(), 64 * 1024).ok());
}

struct QueuePeaks {
  std::size_t inbound = 0;
  std::size_t outbound = 0;
};

// Samples the stream's receive queue and send queue every millisecond for `how_long`.
Task<QueuePeaks> sample_queues(Stream* s, Duration how_long) {
  QueuePeaks peaks;
  std::int64_t end = Loop::current()->clock().now_ns() + how_long.count();
  for (;;) {
    if (Loop::current()->clock().now_ns() >= end) break;
    peaks.inbound = std::max(peaks.inbound, s->inbound().bytes());
    peaks.outbound = std::max(peaks.outbound, s->queued_bytes());
    Status slept = co_await sleep_for(1ms);
    if (!slept) break;
  }
  co_return peaks;
}

// What the sender has pushed so far, read from inside the loop.
Task<std::uint64_t> sent_so_far(std::atomic<std::uint64_t>* sent) { co_return sent->load(); }

// An echo server: its answers cannot leave once the client's receive buffer is full.
Task<void> echo_until_stopped(Stream* s, std::atomic<bool>* stop) {
  for (;;) {
    if (stop->load()) break;
    Result<Slice> r = co_await s->receive();
    if (!r || r->empty()) break;
    Status written = co_await s->write(std::move(*r));
    if (!written) break;
  }
}

// How far past the watermark the receive queue may grow. epoll stops receiving inside the completion that crosses
// the watermark, so it overshoots by at most that one buffer (8 KiB asked, 16 KiB allocated: pooled buffers round
// up to their class). io_uring cannot take back what the kernel already received: until our cancel of the multishot
// receive is processed, the kernel keeps filling provided buffers from the socket, one batch of up to
// MULTISHOT_MAX_RETRY (32, io_uring/net.c) 8 KiB buffers per task-work run, and a loop that is descheduled meanwhile
// (a busy machine) lets several batches through. The only bound that holds whatever the scheduler does is the
// provided-buffer ring itself (BackendOptions: 2048 x 8 KiB); bounding a stalled connection's share of it is the
// fairness issue's work (#15), which will tighten this. Neither bound depends on how much the peer sends.
std::size_t receive_queue_bound(BackendKind kind, std::size_t watermark) {
  constexpr std::size_t kEpollBuffer = 16 * 1024;
  const BackendOptions defaults;
  const std::size_t uring_ring = std::size_t{defaults.provided_buffer_count} * defaults.provided_buffer_size;
  return watermark + (kind == BackendKind::uring ? uring_ring : kEpollBuffer);
}

TEST_P(StreamScenarios, an_echo_server_facing_a_client_that_never_reads_holds_bounded_memory_and_stalls_the_client) {
  PeerThread peer;
  std::atomic<std::uint64_t> sent{0};
  ListenOptions options;
  options.stream.receive_high_watermark = 64 * 1024;
  options.stream.send_high_watermark = 64 * 1024;
  Stream s = make_stream_with_peer_thread(peer, endless_sender(&sent), options);
  ASSERT_TRUE(s.is_open());
  pin_kernel_buffers(s);
  std::atomic<bool> stop{false};
  JoinHandle<void> echo = loop().spawn_joinable(echo_until_stopped(&s, &stop));
  auto first = run(bounded(sample_queues(&s, 300ms), 10s));
  // By now every buffer on the way is full, and TCP flow control holds the sender.
  auto sent_before = run(bounded(sent_so_far(&sent), 1s));
  auto second = run(bounded(sample_queues(&s, 200ms), 10s));
  auto sent_later = run(bounded(sent_so_far(&sent), 1s));
  ASSERT_TRUE(first.ok() && second.ok() && sent_before.ok() && sent_later.ok());
  EXPECT_FALSE(echo.done()) << "the echo ended: its write should be blocked";
  // The echo task is blocked in a write that can never finish; cancelling it is the only way out.
  stop = true;
  echo.cancel();
  (void)run(bounded(wait_for(std::move(echo)), 5s));
  s.close();
  ASSERT_TRUE(loop().run_until_idle());
  peer.stop();
  std::printf("[ info ] the client pushed %llu bytes; our receive queue peaked at %zu, our send queue at %zu\n",
              static_cast<unsigned long long>(sent.load()), std::max(first->inbound, second->inbound),
              std::max(first->outbound, second->outbound));
  EXPECT_EQ(*sent_before, *sent_later) << "the client kept sending: nothing held it back";
  EXPECT_LE(std::max(first->inbound, second->inbound),
            receive_queue_bound(GetParam(), options.stream.receive_high_watermark));
  // write(Slice) waits while the chain is over the send watermark, so it exceeds it by at most one received slice.
  EXPECT_LE(std::max(first->outbound, second->outbound), options.stream.send_high_watermark + 16 * 1024);
}

// Takes one slice (which arms the receive), then stalls without reading, like a handler stuck on slow work.
// Returns the size of the slice it took (0 on failure).
Task<std::size_t> receive_once_then_stall(Stream* s) {
  Result<Slice> r = co_await s->receive();
  co_return r ? r->size() : 0;
}

TEST_P(StreamScenarios, a_stalled_reader_with_its_receive_armed_queues_up_to_the_watermark_and_no_further) {
  PeerThread peer;
  std::atomic<std::uint64_t> sent{0};
  ListenOptions options;
  options.stream.receive_high_watermark = 64 * 1024;
  Stream s = make_stream_with_peer_thread(peer, endless_sender(&sent), options);
  ASSERT_TRUE(s.is_open());
  pin_kernel_buffers(s);
  auto taken = run(bounded(receive_once_then_stall(&s), 5s));
  ASSERT_TRUE(taken.ok());
  ASSERT_GT(*taken, 0u);
  auto first = run(bounded(sample_queues(&s, 300ms), 10s));
  auto sent_before = run(bounded(sent_so_far(&sent), 1s));
  auto second = run(bounded(sample_queues(&s, 200ms), 10s));
  auto sent_later = run(bounded(sent_so_far(&sent), 1s));
  ASSERT_TRUE(first.ok() && second.ok() && sent_before.ok() && sent_later.ok());
  std::size_t queued_at_end = s.inbound().bytes();
  s.close();
  ASSERT_TRUE(loop().run_until_idle());
  peer.stop();
  std::size_t peak = std::max(first->inbound, second->inbound);
  std::printf("[ info ] the client pushed %llu bytes; the reader took %zu and then %zu more queued up (watermark "
              "%zu)\n",
              static_cast<unsigned long long>(sent.load()), *taken, peak, options.stream.receive_high_watermark);
  EXPECT_EQ(*sent_before, *sent_later) << "the client kept sending: nothing held it back";
  // The receive stops once the queue reaches the watermark; the slice the reader took counted towards it then.
  EXPECT_GE(*taken + peak, options.stream.receive_high_watermark) << "the receive stopped short of the watermark";
  EXPECT_LE(*taken + peak, receive_queue_bound(GetParam(), options.stream.receive_high_watermark));
  EXPECT_EQ(queued_at_end, second->inbound) << "the queue still moved after the receive should have stopped";
}

// ---- (e) cancelling receives while data is arriving ----------------------------------------------------------------

struct Collected {
  std::string bytes;
  int timeouts = 0;
  int reads = 0;
  std::string error;
};

// Reads to EOF with a 1 ms deadline on every read, rotating through receive(), read_some() and read_frame(), and
// keeps whatever each read returns. A read that times out must leave its bytes for the next one. Every timeout is
// published in `timeouts_seen`, which the sender waits on.
Task<Collected> read_with_tiny_timeouts(Stream* s, std::atomic<int>* timeouts_seen) {
  Collected c;
  std::string buf(3000, '\0');
  for (int i = 0;; ++i) {
    bool eof = false;
    switch (i % 3) {
      case 0: {
        Result<Slice> r = co_await with_timeout(s->receive(), 1ms);
        if (r) {
          if (r->empty()) eof = true;
          c.bytes.append(r->view());
        } else if (r.error() == errc::timed_out) {
          ++c.timeouts;
        } else {
          c.error = r.error().message();
        }
        break;
      }
      case 1: {
        Result<std::size_t> r = co_await with_timeout(s->read_some(std::as_writable_bytes(std::span(buf))), 1ms);
        if (r) {
          if (*r == 0) eof = true;
          c.bytes.append(buf.data(), *r);
        } else if (r.error() == errc::timed_out) {
          ++c.timeouts;
        } else {
          c.error = r.error().message();
        }
        break;
      }
      case 2: {
        Result<Slice> r = co_await with_timeout(s->read_frame(1000), 1ms);
        if (r) {
          c.bytes.append(r->view());
        } else if (r.error() == errc::timed_out) {
          ++c.timeouts;
        } else if (r.error() != errc::eof) {  // EOF with a short tail queued: the other readers take the rest
          c.error = r.error().message();
        }
        break;
      }
    }
    ++c.reads;
    timeouts_seen->store(c.timeouts, std::memory_order_release);
    if (eof || !c.error.empty()) break;
  }
  co_return c;
}

// Sends `total` pattern bytes in chunks of varying size with irregular pauses, then closes. Every 64 chunks it
// stops until the reader has timed out once more: with nothing arriving a 1 ms deadline must fire, so reads are
// cancelled on every machine, however fast the sender's sleeps or the reader's turns are; the irregular pauses
// make some of them race arriving data.
void send_pattern_irregularly(int fd, std::size_t total, const std::atomic<int>* timeouts_seen) {
  std::vector<std::byte> chunk(70000);
  std::uint64_t pos = 0;
  std::uint64_t step = 0;
  while (pos < total) {
    std::size_t n = std::min<std::size_t>(total - pos, 1 + (step * 7919) % chunk.size());
    fill_pattern(chunk.data(), n, pos);
    std::size_t off = 0;
    while (off < n) {
      ssize_t w = ::send(fd, chunk.data() + off, n - off, MSG_NOSIGNAL);
      if (w <= 0) return;
      off += static_cast<std::size_t>(w);
    }
    pos += n;
    ++step;
    if (step % 3 == 0) sleep_ns(static_cast<std::int64_t>((step * 104729) % 2'500'000));  // 0 - 2.5 ms
    if (step % 64 == 0) {
      int before = timeouts_seen->load(std::memory_order_acquire);
      for (int waited = 0; timeouts_seen->load(std::memory_order_acquire) == before && waited < 30'000; ++waited) {
        sleep_ns(1'000'000);  // the 30 s bound only catches a reader that stopped reading
      }
    }
  }
  ::shutdown(fd, SHUT_WR);
}

TEST_P(StreamScenarios, reads_cancelled_by_tiny_timeouts_while_data_streams_in_lose_and_repeat_nothing) {
  constexpr std::size_t kTotal = 8u << 20;
  std::atomic<int> timeouts_seen{0};
  PeerThread peer;
  Stream s = make_stream_with_peer_thread(peer, [&](int fd) { send_pattern_irregularly(fd, kTotal, &timeouts_seen); });
  ASSERT_TRUE(s.is_open());
  auto c = run(bounded(read_with_tiny_timeouts(&s, &timeouts_seen), 120s));
  ASSERT_TRUE(c.ok()) << "timed out";
  peer.join();
  EXPECT_EQ(c->error, "");
  std::printf("[ info ] %d reads, %d of them timed out\n", c->reads, c->timeouts);
  EXPECT_GT(c->timeouts, 0) << "no read was ever cancelled: the test did not test cancellation";
  ASSERT_EQ(c->bytes.size(), kTotal);
  std::size_t bad = first_mismatch(reinterpret_cast<const std::byte*>(c->bytes.data()), kTotal, 0);
  EXPECT_EQ(bad, kTotal) << "first wrong byte at offset " << bad;
}

// ---- (f) a timeout racing a completion -----------------------------------------------------------------------------

constexpr std::size_t kRecord = 16;

std::string record(std::uint32_t i) {
  char buf[kRecord + 1];
  std::snprintf(buf, sizeof buf, "rec%012u", i);
  return std::string(buf, kRecord);
}

struct RaceState {
  std::atomic<std::int64_t> deadline_ns{0};
  std::atomic<std::uint32_t> iteration{0};  // the receiver's current iteration + 1
};

struct RaceOutcome {
  std::vector<std::string> records;
  int got_data = 0;
  int timed_out = 0;
  std::string error;
};

// Each iteration waits for one record with a deadline that the sender aims its write at.
Task<RaceOutcome> race_timeouts(Stream* s, RaceState* race, std::uint32_t iterations, Duration timeout) {
  RaceOutcome out;
  for (std::uint32_t i = 0; i < iterations; ++i) {
    race->deadline_ns = monotonic_ns() + timeout.count();
    race->iteration = i + 1;
    Result<Slice> r = co_await with_timeout(s->read_frame(kRecord), timeout);
    if (r) {
      ++out.got_data;
      out.records.emplace_back(r->view());
    } else if (r.error() == errc::timed_out) {
      ++out.timed_out;
    } else {
      out.error = r.error().message();
      co_return out;
    }
  }
  // Whatever raced its timeout at the end is still queued or on its way: collect it without deadlines.
  while (out.records.size() < iterations) {
    Result<Slice> r = co_await s->read_frame(kRecord);
    if (!r) {
      out.error = "after the race: " + std::string(r.error().message());
      break;
    }
    out.records.emplace_back(r->view());
  }
  co_return out;
}

// Writes record i close to the deadline of the receiver's iteration i: from 1 ms before to 1.5 ms after it (the
// timer wheel fires up to one 1 ms tick late, so this straddles the moment the timeout really fires).
void send_records_at_deadlines(int fd, RaceState* race, std::uint32_t iterations) {
  for (std::uint32_t i = 0; i < iterations; ++i) {
    for (;;) {
      std::uint32_t at = race->iteration.load();
      if (at == UINT32_MAX) return;
      if (at >= i + 1) break;
      sleep_ns(20'000);
    }
    std::int64_t jitter = static_cast<std::int64_t>((i * 7919u) % 2500u) * 1000 - 1'000'000;
    sleep_ns(race->deadline_ns.load() + jitter - monotonic_ns());
    std::string r = record(i);
    if (::send(fd, r.data(), r.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(r.size())) return;
  }
}

TEST_P(StreamScenarios, a_timeout_racing_the_data_either_returns_it_or_times_out_and_never_loses_it) {
  constexpr std::uint32_t kIterations = 400;
  RaceState race;
  PeerThread peer;
  Stream s = make_stream_with_peer_thread(peer, [&](int fd) { send_records_at_deadlines(fd, &race, kIterations); });
  ASSERT_TRUE(s.is_open());
  auto out = run(bounded(race_timeouts(&s, &race, kIterations, 2ms), 60s));
  race.iteration = UINT32_MAX;  // releases the sender if the receiver stopped early
  peer.join();
  ASSERT_TRUE(out.ok()) << "timed out";
  EXPECT_EQ(out->error, "");
  std::printf("[ info ] %d iterations got their record, %d timed out\n", out->got_data, out->timed_out);
  EXPECT_EQ(out->got_data + out->timed_out, static_cast<int>(kIterations));
  ASSERT_EQ(out->records.size(), kIterations);
  for (std::uint32_t i = 0; i < kIterations; ++i) {
    ASSERT_EQ(out->records[i], record(i)) << "record " << i << " lost, repeated or out of order";
  }
}

// ---- (g) 100 MiB zero-copy write to a slow reader ------------------------------------------------------------------

struct SlowReaderResult {
  std::uint64_t received = 0;
  std::uint64_t first_bad = UINT64_MAX;
};

// Reads 4 KiB at a time and naps 1 ms every 64 reads (about 256 KiB), checking every byte against the pattern.
void read_slowly(int fd, SlowReaderResult* out) {
  std::vector<std::byte> buf(4096);
  std::uint64_t reads = 0;
  for (;;) {
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    std::size_t bad = first_mismatch(buf.data(), static_cast<std::size_t>(n), out->received);
    if (bad != static_cast<std::size_t>(n) && out->first_bad == UINT64_MAX) out->first_bad = out->received + bad;
    out->received += static_cast<std::uint64_t>(n);
    if (++reads % 64 == 0) sleep_ns(1'000'000);
  }
}

// write(Slice) returns once the rest fits under the send watermark; flush() waits until the last byte is out.
Task<Status> write_then_shutdown(Stream* s, Slice slice) {
  Status st = co_await s->write(std::move(slice));
  if (!st) co_return st;
  st = co_await s->flush();
  if (!st) co_return st;
  co_return s->shutdown_write();
}

TEST_P(StreamScenarios, a_100_mib_slice_reaches_a_slow_reader_intact_without_a_single_copy) {
  constexpr std::size_t kSize = 100u << 20;
  SlowReaderResult result;
  PeerThread peer;
  Stream s = make_stream_with_peer_thread(peer, [&](int fd) { read_slowly(fd, &result); });
  ASSERT_TRUE(s.is_open());
  Buffer* b = BufferPool::local().acquire(kSize);
  fill_pattern(b->data, kSize, 0);  // filling a fresh buffer is not a copy of payload
  Slice big(b, 0, kSize);
  std::uint64_t copied = bytes_copied();
  std::int64_t start = monotonic_ns();
  Status st = run(bounded(write_then_shutdown(&s, std::move(big)), 60s));
  std::int64_t elapsed_ms = (monotonic_ns() - start) / 1'000'000;
  EXPECT_EQ(bytes_copied(), copied) << "the write copied payload bytes";
  ASSERT_TRUE(st.ok()) << st.error().message();
  peer.join();
  std::printf("[ info ] 100 MiB written to a slow reader in %lld ms\n", static_cast<long long>(elapsed_ms));
  EXPECT_EQ(result.received, kSize);
  EXPECT_EQ(result.first_bad, UINT64_MAX) << "first wrong byte at offset " << result.first_bad;
}

RINGLET_BOTH_BACKENDS(StreamScenarios);

}  // namespace
}  // namespace ringlet
