// splice_test.cpp — socket → pipe → socket with the splice ops on both backends: bytes arrive exact and in order,
// end of input reads as 0, a splice waits for the socket rather than failing, and the pipe pool reuses what it is
// given back. Bounded in time; ends with the fixture's clean-shutdown checks.
#include "ringlet/runtime/splice.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <string>
#include <vector>

#include "support/loop_fixture.hpp"

namespace ringlet {
namespace {

using namespace std::chrono_literals;
using testing::LoopTest;

// A connected pair of non-blocking loopback TCP sockets.
struct TcpPair {
  int a = -1;
  int b = -1;
  ~TcpPair() {
    if (a >= 0) ::close(a);
    if (b >= 0) ::close(b);
  }
};

TcpPair tcp_pair() {
  TcpPair p;
  int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  EXPECT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&addr), len), 0);
  EXPECT_EQ(::listen(l, 1), 0);
  EXPECT_EQ(::getsockname(l, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  p.a = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  (void)::connect(p.a, reinterpret_cast<sockaddr*>(&addr), len);
  p.b = ::accept4(l, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  ::close(l);
  return p;
}

// Moves everything from `from` to `to` through one pooled pipe until end of input; returns the bytes moved or
// -errno.
Task<long> pass_through(IoHandle* from, IoHandle* to) {
  long total = 0;
  for (;;) {
    Result<Pipe> pipe = PipePool::local().acquire();
    if (!pipe) co_return -pipe.error().code;
    int n = co_await splice_in_some(*from, *pipe, 64 * 1024);
    if (n <= 0) {
      PipePool::local().release(*pipe);
      co_return n == 0 ? total : n;
    }
    int w = co_await splice_out_all(*to, *pipe, static_cast<std::size_t>(n));
    PipePool::local().release(*pipe);
    if (w < 0) co_return w;
    total += n;
  }
}

// The splice loop with a deadline: a lost wake-up fails the test instead of hanging it.
Task<Result<long>> bounded(IoHandle* from, IoHandle* to, Duration limit) {
  co_return co_await with_timeout(pass_through(from, to), limit);
}

class SpliceTest : public LoopTest {
 protected:
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);
    LoopTest::SetUp();
  }
};

TEST_P(SpliceTest, bytes_pass_socket_to_socket_exactly_and_end_of_input_reads_as_zero) {
  // in_writer → in_reader ==splice==> out_writer → out_reader
  TcpPair in = tcp_pair();
  TcpPair out = tcp_pair();
  std::vector<char> sent(3 * 1024 * 1024 + 17);
  for (std::size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>((i * 131) ^ (i >> 11));
  // A plain thread writes the input and reads the output, so the loop thread only splices.
  std::vector<char> received;
  std::thread peer([&] {
    std::size_t off = 0;
    received.reserve(sent.size());
    char buf[65536];
    for (;;) {
      if (off < sent.size()) {
        ssize_t w = ::send(in.a, sent.data() + off, sent.size() - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) off += static_cast<std::size_t>(w);
        if (off == sent.size()) ::shutdown(in.a, SHUT_WR);
      }
      ssize_t r = ::recv(out.b, buf, sizeof buf, MSG_DONTWAIT);
      if (r > 0) received.insert(received.end(), buf, buf + r);
      if (r == 0) break;
      if (r < 0 && errno != EAGAIN) break;
      if (r < 0) std::this_thread::sleep_for(100us);
    }
  });
  IoHandle from;
  from.fd = in.b;
  IoHandle to;
  to.fd = out.a;
  auto moved = run(bounded(&from, &to, 20s));
  ::shutdown(out.a, SHUT_WR);
  peer.join();
  loop().backend().detach(from);
  loop().backend().detach(to);
  ASSERT_TRUE(moved.ok()) << "splicing did not finish in time";
  EXPECT_EQ(*moved, static_cast<long>(sent.size()));
  EXPECT_TRUE(received == sent);
  EXPECT_EQ(PipePool::local().outstanding(), 0u);
}

TEST_P(SpliceTest, a_splice_waits_for_the_socket_and_can_be_cancelled) {
  TcpPair in = tcp_pair();
  TcpPair out = tcp_pair();
  IoHandle from;
  from.fd = in.b;
  IoHandle to;
  to.fd = out.a;
  // Nothing arrives: the splice waits (it does not report EAGAIN) until the timeout cancels it.
  auto moved = run(bounded(&from, &to, 50ms));
  EXPECT_FALSE(moved.ok());
  EXPECT_EQ(moved.error(), errc::timed_out);
  loop().backend().detach(from);
  loop().backend().detach(to);
  EXPECT_EQ(PipePool::local().outstanding(), 0u);
}

TEST(PipePool, gives_back_the_pipes_it_was_given_and_closes_the_rest) {
  PipePool& pool = PipePool::local();
  pool.trim();
  std::uint64_t created = pool.created();
  Result<Pipe> first = pool.acquire();
  ASSERT_TRUE(first.ok());
  Pipe p = *first;
  pool.release(p);
  Result<Pipe> again = pool.acquire();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->read_fd, p.read_fd);
  EXPECT_EQ(pool.created(), created + 1);
  pool.discard(*again);
  EXPECT_EQ(pool.outstanding(), 0u);
  EXPECT_EQ(pool.cached(), 0u);
}

RINGLET_BOTH_BACKENDS(SpliceTest);

}  // namespace
}  // namespace ringlet
