#include "ringlet/net/sharded_server.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "support/loop_fixture.hpp"

namespace ringlet {
namespace {

std::atomic<int> g_handlers_started{0};
std::atomic<int> g_handlers_ended{0};
std::atomic<std::uint16_t> g_port{0};

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

int connect_to(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

class ShardedServerTest : public ::testing::TestWithParam<BackendKind> {};

// SIGTERM starts the graceful stop on every shard; connections that do not finish hold it (the deadline is an
// hour), and a second SIGTERM closes them at once on every shard. run_sharded_server then returns success.
TEST_P(ShardedServerTest, a_second_sigterm_forces_the_graceful_stop_on_every_shard) {
  g_handlers_started = 0;
  g_handlers_ended = 0;
  ShardedServerOptions options;
  options.shards.shards = 2;
  options.shards.loop.backend.kind = GetParam();
  options.accept = AcceptMode::handoff;
  ServerOptions server;
  server.name = "stubborn";
  server.listen = Address::loopback_v4(0);
  server.shutdown_timeout = std::chrono::hours(1);
  std::atomic<bool> returned{false};
  std::vector<int> clients;
  std::string failure;

  std::thread driver([&] {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &mask, nullptr);  // the signal must go to the server's signalfd, not to us
    if (!wait_until([] { return g_port.load() != 0; }, std::chrono::seconds(10))) {
      failure = "the server did not start";
      return;
    }
    for (int i = 0; i < 4; ++i) clients.push_back(connect_to(g_port.load()));
    if (!wait_until([] { return g_handlers_started.load() == 4; }, std::chrono::seconds(10))) {
      failure = "the connections were not all served";
    }
    ::kill(::getpid(), SIGTERM);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    if (returned.load()) failure = "the stubborn connections did not hold the graceful stop";
    if (g_handlers_ended.load() != 0) failure = "a connection ended before the second signal";
    ::kill(::getpid(), SIGTERM);
  });

  Status ran = run_sharded_server(options, server, [](Shard& shard, const ServerOptions& o) {
    auto service = std::make_unique<StubbornService>(shard.loop(), o);
    if (shard.id() == 0) {
      // Listening happens after the factory returns; publish the port once shard 0 has bound (next turn).
      shard.send(0, [s = service.get()] { g_port = s->server.local_address().port(); });
    }
    return service;
  });
  returned = true;
  driver.join();
  for (int fd : clients) ::close(fd);
  g_port = 0;
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  pthread_sigmask(SIG_UNBLOCK, &mask, nullptr);
  if (!ran && ran.error().code == EOPNOTSUPP) GTEST_SKIP() << "backend unavailable";
  ASSERT_TRUE(ran) << ran.error().message();
  EXPECT_EQ(failure, "");
  EXPECT_EQ(g_handlers_started.load(), 4);
  EXPECT_EQ(g_handlers_ended.load(), 4) << "every connection is closed by the forced stop";
}

RINGLET_BOTH_BACKENDS(ShardedServerTest);

}  // namespace
}  // namespace ringlet
