// sharded_server_fixture.hpp — runs a sharded server in the test's own process, as `ringlet <server> --threads N`
// does, with a client thread beside it: the unit tests of what crosses shards (net/sharded_server_test.cpp,
// servers/cache_test.cpp), small enough for scripts/test.sh's ThreadSanitizer stage. Test-only.
//
// The test thread runs run_sharded_server until the server stops; a driver thread waits for shard 0 to listen, runs
// the test's client code with the port, and then sends SIGTERM, so every test ends with the graceful stop. The
// driver blocks SIGTERM for itself: the signal must reach the server's signalfd, not a thread that would die of it.
// A backend the kernel does not offer makes the test skip. Suites derive from ShardedServerFixture.
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>

#include "ringlet/net/sharded_server.hpp"
#include "ringlet/runtime/loop.hpp"

namespace ringlet::testing {

// Polls `done` every 5 ms until it holds (true) or `limit` has passed (false).
inline bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// A blocking TCP connection to 127.0.0.1:port, or -1.
inline int connect_loopback(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    fd = -1;
  }
  return fd;
}

// A test of a sharded server on both backends (RINGLET_BOTH_BACKENDS(Suite) with a suite derived from this).
class ShardedServerFixture : public ::testing::TestWithParam<BackendKind> {
 protected:
  // `shards` shards on the test's backend, with hand-off accept: shard 0 accepts and gives each connection to the
  // shard with the fewest open ones, so a test's first connection lands on shard 0 and its second on shard 1.
  ShardedServerOptions sharded_options(unsigned shards) const {
    ShardedServerOptions options;
    options.shards.shards = shards;
    options.shards.loop.backend.kind = GetParam();
    options.accept = AcceptMode::handoff;
    return options;
  }

  // Runs the server made by `factory` on this thread and `drive(port)` on a driver thread once shard 0 listens, then
  // sends SIGTERM (drive may send signals of its own before) and requires run_sharded_server to succeed. Skips the
  // test when the backend is unavailable here; fails it if the server never listened within 10 s.
  void run_and_drive(const ShardedServerOptions& options, const ServerOptions& server,
                     const ShardServiceFactory& factory, const std::function<void(std::uint16_t port)>& drive) {
    std::atomic<std::uint16_t> port{0};
    bool driven = false;
    returned_ = false;
    std::thread driver([&] {
      sigset_t mask;
      sigemptyset(&mask);
      sigaddset(&mask, SIGTERM);
      pthread_sigmask(SIG_BLOCK, &mask, nullptr);
      if (wait_until([&] { return port.load() != 0 || returned_.load(); }, std::chrono::seconds(10)) &&
          port.load() != 0) {
        drive(port.load());
        driven = true;
      }
      if (!returned_.load()) ::kill(::getpid(), SIGTERM);
    });
    Status ran = run_sharded_server(options, server, [&](Shard& shard, const ServerOptions& o) {
      std::unique_ptr<ShardService> service = factory(shard, o);
      if (service != nullptr && shard.id() == 0) {
        // Listening happens after the factory returns; publish the port once shard 0 has bound (next turn).
        shard.send(0, [&port, s = service.get()] { port = s->tcp().local_address().port(); });
      }
      return service;
    });
    returned_ = true;
    driver.join();
    // run_sharded_server leaves SIGTERM blocked on this thread (its shard threads inherited the mask): unblock it for
    // whatever runs next in this process.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &mask, nullptr);
    if (!ran && ran.error().code == EOPNOTSUPP) GTEST_SKIP() << "backend unavailable";
    ASSERT_TRUE(ran) << ran.error().message();
    EXPECT_TRUE(driven) << "the server did not start";
  }

  // For drive: whether run_sharded_server has returned yet.
  bool server_returned() const noexcept { return returned_.load(); }

 private:
  std::atomic<bool> returned_{false};
};

}  // namespace ringlet::testing
