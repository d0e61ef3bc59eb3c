// A slowloris client (one byte a second, never finishing its head) against `ringlet http` while 2,000 other
// connections are served: the header deadline closes the slow one, and everyone else is answered meanwhile.
#include <atomic>
#include <thread>

#include "http_harness.hpp"

namespace ringlet::testing::http {
namespace {

constexpr std::size_t kConnections = 2000;

class HttpSlowlorisTest : public HttpServerFixture {};

// Trickles a never-ending request head, one byte a second; reports how long the server kept the connection open.
void trickle(Endpoint to, std::atomic<bool>* closed, std::atomic<long>* open_ms, std::atomic<bool>* stop) {
  Fd fd = echo::connect_now(to);
  if (!fd.valid()) return;
  const std::string head = "GET /file13 HTTP/1.1\r\nHost: slow\r\nX-Padding: ";
  auto start = Clock::now();
  for (std::size_t i = 0; !stop->load(); ++i) {
    char c = i < head.size() ? head[i] : 'a';
    if (::send(fd.get(), &c, 1, MSG_NOSIGNAL) != 1 || echo::closed_by_server_within(fd.get(), 1s)) {
      closed->store(true);
      break;
    }
  }
  open_ms->store(static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()));
}

TEST_P(HttpSlowlorisTest, header_deadline_closes_the_slow_client_while_2000_others_are_served) {
  rlim_t limit = echo::raise_fd_limit();
  if (limit < kConnections + 200) GTEST_SKIP() << "descriptor limit " << limit << " too low";
  write_file(root_ + "/file13", "Hello, World!");
  start({"--header-timeout", "2", "--max-conns", "5000"});

  // The exact size of one response (Date and Last-Modified have fixed widths).
  std::size_t response_size = 0;
  {
    Fd fd = connect();
    Exchange ex = exchange_on(fd, get("/file13"), 1);
    ASSERT_EQ(ex.responses.size(), 1u);
    response_size = std::string("HTTP/1.1 200 OK\r\n").size();
    for (const auto& [k, v] : ex.responses[0].headers) response_size += k.size() + 2 + v.size() + 2;
    response_size += 2 + 13;
  }

  std::atomic<bool> closed{false};
  std::atomic<long> open_ms{0};
  std::atomic<bool> stop{false};
  std::thread slow(trickle, endpoint_, &closed, &open_ms, &stop);

  std::vector<echo::Peer> peers(kConnections);
  for (echo::Peer& p : peers) {
    p.fd = echo::connect_start(endpoint_);
    ASSERT_TRUE(p.fd.valid());
    p.out = get("/file13");
    p.expect = response_size;
  }
  bool all_done = echo::drive(peers, 120s);
  std::size_t served = 0;
  for (const echo::Peer& p : peers) {
    HttpResponse r;
    if (parse_response(p.in, false, r) != 0 && r.status == 200 && r.body == "Hello, World!") ++served;
  }
  EXPECT_TRUE(all_done);
  EXPECT_EQ(served, kConnections);

  // The slow client must be cut off by the 2 s header deadline (its head never ends); allow
  // generous slack for a loaded machine (the bounds only catch a deadline that never fires), but far less than the
  // trickle would take: it never finishes its head, and reaching the 8 KiB line limit would take over two hours.
  auto deadline = Clock::now() + 60s;
  while (!closed.load() && Clock::now() < deadline) std::this_thread::sleep_for(50ms);
  stop.store(true);
  slow.join();
  EXPECT_TRUE(closed.load()) << "the slowloris connection was still open after 60 s";
  EXPECT_LT(open_ms.load(), 60000);
  peers.clear();
  expect_running();
}

RINGLET_ECHO_BOTH_BACKENDS(HttpSlowlorisTest);

}  // namespace
}  // namespace ringlet::testing::http
