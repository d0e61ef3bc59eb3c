#include "ringlet/net/sharded_server.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/loop_fixture.hpp"
#include "support/sharded_server_fixture.hpp"

namespace ringlet {
namespace {

std::atomic<int> g_handlers_started{0};
std::atomic<int> g_handlers_ended{0};

// A handler that ignores the graceful stop: it sleeps (a wait a drain does not end) until cancelled.
Task<void> stubborn(Stream stream, TcpServer&) {
  g_handlers_started.fetch_add(1);
  Status slept = co_await sleep_for(std::chrono::seconds(60));
  (void)slept;
  g_handlers_ended.fetch_add(1);
  stream.close();
}

struct StubbornService final : ShardService {
  StubbornService(Loop& loop, const ServerOptions& options) : server(loop, options, &stubborn) {}
  TcpServer& tcp() override { return server; }
  TcpServer server;
};

class ShardedServerTest : public testing::ShardedServerFixture {};

// SIGTERM starts the graceful stop on every shard; connections that do not finish hold it (the deadline is an
// hour), and a second SIGTERM closes them at once on every shard. run_sharded_server then returns success.
TEST_P(ShardedServerTest, a_second_sigterm_forces_the_graceful_stop_on_every_shard) {
  g_handlers_started = 0;
  g_handlers_ended = 0;
  ServerOptions server;
  server.name = "stubborn";
  server.listen = Address::loopback_v4(0);
  server.shutdown_timeout = std::chrono::hours(1);
  std::vector<int> clients;
  std::string failure;
  run_and_drive(
      sharded_options(2), server,
      [](Shard& shard, const ServerOptions& o) { return std::make_unique<StubbornService>(shard.loop(), o); },
      [&](std::uint16_t port) {
        for (int i = 0; i < 4; ++i) clients.push_back(testing::connect_loopback(port));
        if (!testing::wait_until([] { return g_handlers_started.load() == 4; }, std::chrono::seconds(10))) {
          failure = "the connections were not all served";
        }
        ::kill(::getpid(), SIGTERM);
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        if (server_returned()) failure = "the stubborn connections did not hold the graceful stop";
        if (g_handlers_ended.load() != 0) failure = "a connection ended before the second signal";
        // The fixture's SIGTERM is the second.
      });
  for (int fd : clients) ::close(fd);
  if (IsSkipped() || HasFatalFailure()) return;
  EXPECT_EQ(failure, "");
  EXPECT_EQ(g_handlers_started.load(), 4);
  EXPECT_EQ(g_handlers_ended.load(), 4) << "every connection is closed by the forced stop";
}

RINGLET_BOTH_BACKENDS(ShardedServerTest);

}  // namespace
}  // namespace ringlet
