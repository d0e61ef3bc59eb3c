// metrics_endpoint_test.cpp — a scrape across two shards in one process (so the TSan stage checks that it shares no
// counter between threads): echo served on both shards, /metrics on shard 0, values summed over the shards.
#include "ringlet/servers/metrics_endpoint.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>

#include "ringlet/servers/echo.hpp"
#include "support/loop_fixture.hpp"

namespace ringlet {
namespace {

std::atomic<std::uint16_t> g_echo_port{0};
std::atomic<std::uint16_t> g_metrics_port{0};

struct EchoService final : ShardService {
  EchoService(Loop& loop, const ServerOptions& options) : server(make_echo_server(loop, EchoOptions{options})) {}
  TcpServer& tcp() override { return server; }
  void describe_metrics(MetricSet& out) override { out.counter("test_described_total", "Shards described.", 1); }
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
  timeval limit{10, 0};  // only a hang reaches it
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  return fd;
}

// Sends `request`, half-closes and reads until the server closes.
std::string exchange(std::uint16_t port, const std::string& request) {
  int fd = connect_to(port);
  if (fd < 0) return "";
  (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  ::shutdown(fd, SHUT_WR);
  std::string in;
  char buf[16384];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) in.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return in;
}

double value_of(const std::string& page, const std::string& series) {
  std::string needle = "\n" + series + " ";
  std::size_t at = page.find(needle);
  return at == std::string::npos ? -1 : std::strtod(page.c_str() + at + needle.size(), nullptr);
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

class MetricsEndpointTest : public ::testing::TestWithParam<BackendKind> {};

TEST_P(MetricsEndpointTest, a_scrape_sums_what_every_shard_describes_on_its_own_thread) {
  ShardedServerOptions options;
  options.shards.shards = 2;
  options.shards.pin = false;
  options.shards.loop.backend.kind = GetParam();
  ServerOptions server;
  server.name = "echo";
  server.listen = Address::loopback_v4(0);
  std::string page;
  std::string failure;

  std::thread driver([&] {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &mask, nullptr);  // the signal must go to the server's signalfd, not to us
    if (!wait_until([] { return g_echo_port.load() != 0 && g_metrics_port.load() != 0; }, std::chrono::seconds(10))) {
      failure = "the server did not start";
    } else {
      for (int i = 0; i < 4; ++i) {
        if (exchange(g_echo_port.load(), "hello") != "hello") failure = "an echo failed";
      }
      page = exchange(g_metrics_port.load(), "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    }
    ::kill(::getpid(), SIGTERM);
  });

  ShardServiceFactory echo = [](Shard& shard, const ServerOptions& o) -> std::unique_ptr<ShardService> {
    return std::make_unique<EchoService>(shard.loop(), o);
  };
  ShardServiceFactory metered = with_metrics_endpoint(std::move(echo), Address::loopback_v4(0));
  Status ran = run_sharded_server(options, server, [&metered](Shard& shard, const ServerOptions& o) {
    std::unique_ptr<ShardService> service = metered(shard, o);
    if (shard.id() == 0 && service) {
      // Listening happens after the factory returns; publish the ports once shard 0 has bound (next turn).
      shard.send(0, [s = service.get()] {
        g_echo_port = s->tcp().local_address().port();
        g_metrics_port = s->more_servers().back()->local_address().port();
      });
    }
    return service;
  });
  driver.join();
  g_echo_port = 0;
  g_metrics_port = 0;
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  pthread_sigmask(SIG_UNBLOCK, &mask, nullptr);
  if (!ran && ran.error().code == EOPNOTSUPP) GTEST_SKIP() << "backend unavailable";
  ASSERT_TRUE(ran) << ran.error().message();
  ASSERT_EQ(failure, "");
  ASSERT_EQ(page.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << page;
  EXPECT_EQ(value_of(page, "ringlet_shards"), 2) << page;
  EXPECT_EQ(value_of(page, "test_described_total"), 2) << "each shard's service describes itself once";
  EXPECT_EQ(value_of(page, "ringlet_connections_accepted_total"), 4) << page;
  EXPECT_GE(value_of(page, "ringlet_bytes_received_total"), 4 * 5);
  EXPECT_GE(value_of(page, "ringlet_shard_messages_received_total"), 1);
}

RINGLET_BOTH_BACKENDS(MetricsEndpointTest);

}  // namespace
}  // namespace ringlet
