// many_connections_test.cpp — 10,000 concurrent connections echoing through one loop, client and server ends both
// in this process.
//
// Both ends live here, so each connection costs two descriptors: 10,000 connections need 20,000 plus a few for the
// loop, the listener and the test runner. The test raises RLIMIT_NOFILE to its hard limit and, when that is below
// 2 x 10,000 + 100, uses (hard limit - 100) / 2 connections and says so in its output (the hard limit here is
// 20,000, so it runs 9,950).
//
// A second test gives io_uring a provided-buffer ring of only 16 buffers and pushes megabytes through hundreds of
// connections, so the ring runs dry and receives must be re-armed as buffers come back (on epoll the same test is
// an ordinary many-connection echo).
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "ringlet/net/listener.hpp"
#include "ringlet/net/stream.hpp"
#include "ringlet/runtime/timeout.hpp"
#include "support/loop_fixture.hpp"

namespace ringlet {
namespace {

using namespace std::chrono_literals;
using testing::LoopTest;

constexpr std::size_t kWantedConnections = 10'000;
constexpr std::size_t kSpareDescriptors = 100;
constexpr int kRounds = 3;
constexpr std::size_t kConnectors = 64;  // connects in flight at once: enough to be quick, below the backlog

// Raises the soft descriptor limit to the hard one; returns how many connections fit under it.
std::size_t connections_that_fit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur != lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  if (lim.rlim_cur == RLIM_INFINITY) return kWantedConnections;
  std::size_t usable = lim.rlim_cur > kSpareDescriptors ? lim.rlim_cur - kSpareDescriptors : 0;
  return std::min(kWantedConnections, usable / 2);
}

struct Counters {
  std::size_t accepted = 0;
  std::size_t echo_sessions_done = 0;
  std::size_t echo_errors = 0;
  std::size_t clients_ok = 0;
  std::string first_failure;
};

// Server side of one connection: echoes until the client closes, then flushes what is queued.
Task<void> echo_session(Stream s, Counters* counters) {
  for (;;) {
    Result<Slice> data = co_await s.receive();
    if (!data) {
      ++counters->echo_errors;
      break;
    }
    if (data->empty()) break;
    Status written = co_await s.write(std::move(*data));
    if (!written) {
      ++counters->echo_errors;
      break;
    }
  }
  Status flushed = co_await s.flush();
  if (!flushed) ++counters->echo_errors;
  ++counters->echo_sessions_done;
}

Task<void> accept_all(Listener* listener, std::size_t n, Counters* counters) {
  for (std::size_t i = 0; i < n; ++i) {
    Result<Stream> s = co_await listener->accept();
    if (!s) {
      if (counters->first_failure.empty()) counters->first_failure = "accept: " + std::string(s.error().message());
      break;
    }
    ++counters->accepted;
    Loop::current()->spawn(echo_session(std::move(*s), counters));
  }
}

// Opens connections [first, first + count) into (*streams)[first...].
Task<void> connect_range(Address address, std::vector<Stream>* streams, std::size_t first, std::size_t count,
                         Counters* counters) {
  for (std::size_t i = first; i < first + count; ++i) {
    Result<Stream> c = co_await connect(address, 10s);
    if (!c) {
      if (counters->first_failure.empty()) counters->first_failure = "connect: " + std::string(c.error().message());
      co_return;
    }
    (*streams)[i] = std::move(*c);
  }
}

std::string message_for(std::size_t connection, int round) {
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "connection %zu round %d|", connection, round);
  return std::string(buf, static_cast<std::size_t>(n));
}

// Client side of one connection: kRounds echo round trips with a message unique to the connection and round.
Task<void> client_session(Stream s, std::size_t id, Counters* counters) {
  for (int round = 0; round < kRounds; ++round) {
    std::string message = message_for(id, round);
    Status written = co_await s.write(message);
    std::string echoed(message.size(), '\0');
    Status read = written;
    if (written) read = co_await s.read_exactly(std::as_writable_bytes(std::span(echoed)));
    if (!read || echoed != message) {
      if (counters->first_failure.empty()) {
        counters->first_failure = "connection " + std::to_string(id) + " round " + std::to_string(round) + ": " +
                                  (read ? "echo differs: " + echoed : std::string(read.error().message()));
      }
      co_return;
    }
  }
  ++counters->clients_ok;
}

Task<void> run_all(Listener* listener, std::size_t n, Counters* counters) {
  Loop& loop = *Loop::current();
  JoinHandle<void> acceptor = loop.spawn_joinable(accept_all(listener, n, counters));
  // Phase 1: open every connection (kConnectors at a time) and keep them all open.
  std::vector<Stream> clients(n);
  std::vector<JoinHandle<void>> connectors;
  std::size_t per = (n + kConnectors - 1) / kConnectors;
  for (std::size_t first = 0; first < n; first += per) {
    connectors.push_back(
        loop.spawn_joinable(connect_range(listener->local_address(), &clients, first, std::min(per, n - first),
                                          counters)));
  }
  for (auto& c : connectors) co_await c;
  co_await acceptor;
  if (counters->accepted != n || !counters->first_failure.empty()) co_return;
  // Phase 2: every connection echoes at once.
  std::vector<JoinHandle<void>> sessions;
  sessions.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    sessions.push_back(loop.spawn_joinable(client_session(std::move(clients[i]), i, counters)));
  }
  for (auto& s : sessions) co_await s;
  // Phase 3: every client has closed; each server session ends when it sees EOF.
  for (;;) {
    if (counters->echo_sessions_done == n) break;
    Status slept = co_await sleep_for(1ms);
    if (!slept) break;
  }
}

template <class T>
Task<detail::TimeoutResult<T>> bounded(Task<T> task, Duration limit) {
  co_return co_await with_timeout(std::move(task), limit);
}

class ManyConnections : public LoopTest {};

TEST_P(ManyConnections, ten_thousand_connections_echo_concurrently_through_one_loop) {
  const std::size_t n = connections_that_fit();
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  if (n < kWantedConnections) {
    std::printf("[ info ] RLIMIT_NOFILE hard limit %llu is below the %zu descriptors that %zu connections need; "
                "using %zu connections (both ends live in this process: 2 descriptors each)\n",
                static_cast<unsigned long long>(lim.rlim_max), 2 * kWantedConnections + kSpareDescriptors,
                kWantedConnections, n);
  } else {
    std::printf("[ info ] %zu connections\n", n);
  }
  ASSERT_GE(n, 100u) << "too few descriptors to say anything about many connections";
  auto listener = Listener::bind(loop(), Address::loopback_v4(0));
  ASSERT_TRUE(listener.ok()) << listener.error().message();
  Counters counters;
  auto done = run(bounded(run_all(&*listener, n, &counters), 240s));
  listener->close();
  ASSERT_TRUE(done.ok()) << "timed out; " << counters.clients_ok << " of " << n << " clients finished";
  EXPECT_EQ(counters.first_failure, "");
  EXPECT_EQ(counters.accepted, n);
  EXPECT_EQ(counters.clients_ok, n);
  EXPECT_EQ(counters.echo_sessions_done, n);
  EXPECT_EQ(counters.echo_errors, 0u);
}

RINGLET_BOTH_BACKENDS(ManyConnections);

// ---- a provided-buffer ring that runs dry --------------------------------------------------------------------------

constexpr std::size_t kTinyRingConnections = 200;
constexpr std::size_t kTinyRingBytes = 64 * 1024;  // per connection, each way

// The fixture's loop, re-created with a ring of 16 provided buffers of 4 KiB.
class TinyBufferRing : public LoopTest {
 protected:
  void SetUp() override {
    LoopTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    loop_.reset();  // one loop per thread: the default one goes first
    LoopOptions options;
    options.backend.kind = GetParam();
    options.backend.provided_buffer_count = 16;
    options.backend.provided_buffer_size = 4096;
    auto created = Loop::create(options);
    ASSERT_TRUE(created.ok()) << created.error().message();
    loop_ = std::move(created.value());
  }
};

std::string payload_for(std::size_t connection) {
  std::string s(kTinyRingBytes, '\0');
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>((i * 31 + connection * 7 + i / 251) & 0xff);
  return s;
}

Task<void> bulk_client(Address address, std::size_t id, Counters* counters) {
  Result<Stream> c = co_await connect(address, 10s);
  if (!c) {
    if (counters->first_failure.empty()) counters->first_failure = "connect: " + std::string(c.error().message());
    co_return;
  }
  std::string payload = payload_for(id);
  Status written = co_await c->write(payload);
  std::string echoed(payload.size(), '\0');
  Status read = written;
  if (written) read = co_await c->read_exactly(std::as_writable_bytes(std::span(echoed)));
  if (!read || echoed != payload) {
    if (counters->first_failure.empty()) {
      counters->first_failure = "connection " + std::to_string(id) + ": " +
                                (read ? std::string("echo differs") : std::string(read.error().message()));
    }
    co_return;
  }
  ++counters->clients_ok;
}

Task<void> run_bulk(Listener* listener, Counters* counters) {
  Loop& loop = *Loop::current();
  JoinHandle<void> acceptor = loop.spawn_joinable(accept_all(listener, kTinyRingConnections, counters));
  std::vector<JoinHandle<void>> clients;
  for (std::size_t i = 0; i < kTinyRingConnections; ++i) {
    clients.push_back(loop.spawn_joinable(bulk_client(listener->local_address(), i, counters)));
  }
  for (auto& c : clients) co_await c;
  co_await acceptor;
  for (;;) {
    if (counters->echo_sessions_done == counters->accepted) break;
    Status slept = co_await sleep_for(1ms);
    if (!slept) break;
  }
}

TEST_P(TinyBufferRing, echo_through_hundreds_of_connections_survives_a_receive_buffer_ring_that_runs_dry) {
  auto listener = Listener::bind(loop(), Address::loopback_v4(0));
  ASSERT_TRUE(listener.ok()) << listener.error().message();
  Counters counters;
  auto done = run(bounded(run_bulk(&*listener, &counters), 120s));
  listener->close();
  ASSERT_TRUE(done.ok()) << "timed out; " << counters.clients_ok << " clients finished";
  EXPECT_EQ(counters.first_failure, "");
  EXPECT_EQ(counters.accepted, kTinyRingConnections);
  EXPECT_EQ(counters.clients_ok, kTinyRingConnections);
  EXPECT_EQ(counters.echo_sessions_done, kTinyRingConnections);
  EXPECT_EQ(counters.echo_errors, 0u);
}

RINGLET_BOTH_BACKENDS(TinyBufferRing);

}  // namespace
}  // namespace ringlet
