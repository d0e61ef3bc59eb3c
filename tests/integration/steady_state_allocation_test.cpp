// Proves the runtime's steady-state claim: once warm, echoing messages through ringlet (server and client both on
// one loop) calls operator new zero times — operation state lives in coroutine frames and stream cores, frames and
// buffers come from per-thread pools, rings reuse their storage.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "ringlet/net/listener.hpp"
#include "ringlet/net/stream.hpp"
#include "ringlet/net/tcp_server.hpp"
#include "ringlet/base/log.hpp"
#include "ringlet/servers/echo.hpp"
#include "support/allocation_counter.hpp"
#include "support/loop_fixture.hpp"

namespace ringlet {
namespace {

using testing::LoopTest;
class SteadyStateAllocation : public LoopTest {};

struct Counts {
  std::size_t round_trips = 0;
  std::size_t allocations = 0;
  bool ok = false;
};

// Sends a 64-byte message and waits for it to come back, `warmup` times, then `measured` times while counting.
Task<Counts> client(Address server, int warmup, int measured) {
  Counts counts;
  Result<Stream> c = co_await connect(server);
  if (!c) co_return counts;
  Slice message = Slice::copy_of(std::string_view("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
  std::size_t before = 0;
  for (int i = 0; i < warmup + measured; ++i) {
    if (i == warmup) before = testing::operator_new_calls();
    Status sent = co_await c->write(message);
    if (!sent) co_return counts;
    std::size_t got = 0;
    while (got < message.size()) {
      Result<Slice> r = co_await c->receive();
      if (!r || r->empty()) co_return counts;
      got += r->size();
    }
    ++counts.round_trips;
  }
  counts.allocations = testing::operator_new_calls() - before;
  counts.ok = true;
  co_return counts;
}

Task<Counts> run_echo(Loop* loop, int warmup, int measured) {
  ServerOptions options;
  options.listen = Address::loopback_v4(0);
  EchoOptions echo;
  echo.server = options;
  TcpServer server = make_echo_server(*loop, echo);
  Counts counts;
  if (!server.listen()) co_return counts;
  JoinHandle<void> serving = loop->spawn_joinable(server.run());
  counts = co_await client(server.local_address(), warmup, measured);
  server.stop();
  co_await serving;
  co_return counts;
}

TEST_P(SteadyStateAllocation, echoing_ten_thousand_messages_allocates_nothing_once_warm) {
  set_log_level(LogLevel::warn);
  Counts counts = run(run_echo(&loop(), 1000, 10000));
  ASSERT_TRUE(counts.ok);
  EXPECT_EQ(counts.round_trips, 11000u);
  EXPECT_EQ(counts.allocations, 0u) << "operator new was called in steady state";
}

RINGLET_BOTH_BACKENDS(SteadyStateAllocation);

}  // namespace
}  // namespace ringlet
