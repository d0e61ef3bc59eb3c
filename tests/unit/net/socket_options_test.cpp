// socket_options_test.cpp — every option setter is checked by reading the option back with getsockopt, on a bare
// socket and on the descriptors of a connected Stream (both backends).
#include "ringlet/net/socket_options.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ringlet/net/listener.hpp"
#include "ringlet/net/stream.hpp"
#include "support/loop_fixture.hpp"

namespace ringlet {
namespace {

int get_option(int fd, int level, int name) {
  int value = -1;
  socklen_t len = sizeof value;
  EXPECT_EQ(getsockopt(fd, level, name, &value, &len), 0);
  return value;
}

// A TCP socket closed at the end of the test.
class TcpSocket {
 public:
  TcpSocket() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {}
  ~TcpSocket() { ::close(fd_); }
  TcpSocket(const TcpSocket&) = delete;
  TcpSocket& operator=(const TcpSocket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

TEST(SocketOptions, nodelay_on_and_off_reads_back) {
  TcpSocket s;
  ASSERT_GE(s.fd(), 0);
  ASSERT_TRUE(set_nodelay(s.fd(), Toggle::on).ok());
  EXPECT_NE(get_option(s.fd(), IPPROTO_TCP, TCP_NODELAY), 0);
  ASSERT_TRUE(set_nodelay(s.fd(), Toggle::off).ok());
  EXPECT_EQ(get_option(s.fd(), IPPROTO_TCP, TCP_NODELAY), 0);
}

TEST(SocketOptions, keepalive_sets_idle_interval_and_count) {
  TcpSocket s;
  ASSERT_TRUE(set_keepalive(s.fd(), Toggle::on, std::chrono::seconds(30), std::chrono::seconds(7), 4).ok());
  EXPECT_NE(get_option(s.fd(), SOL_SOCKET, SO_KEEPALIVE), 0);
  EXPECT_EQ(get_option(s.fd(), IPPROTO_TCP, TCP_KEEPIDLE), 30);
  EXPECT_EQ(get_option(s.fd(), IPPROTO_TCP, TCP_KEEPINTVL), 7);
  EXPECT_EQ(get_option(s.fd(), IPPROTO_TCP, TCP_KEEPCNT), 4);
}

TEST(SocketOptions, keepalive_defaults_are_sixty_ten_and_six) {
  TcpSocket s;
  ASSERT_TRUE(set_keepalive(s.fd(), Toggle::on).ok());
  EXPECT_EQ(get_option(s.fd(), IPPROTO_TCP, TCP_KEEPIDLE), 60);
  EXPECT_EQ(get_option(s.fd(), IPPROTO_TCP, TCP_KEEPINTVL), 10);
  EXPECT_EQ(get_option(s.fd(), IPPROTO_TCP, TCP_KEEPCNT), 6);
}

TEST(SocketOptions, keepalive_off_clears_the_flag) {
  TcpSocket s;
  ASSERT_TRUE(set_keepalive(s.fd(), Toggle::on).ok());
  ASSERT_TRUE(set_keepalive(s.fd(), Toggle::off).ok());
  EXPECT_EQ(get_option(s.fd(), SOL_SOCKET, SO_KEEPALIVE), 0);
}

TEST(SocketOptions, invalid_keepalive_idle_is_reported_not_ignored) {
  TcpSocket s;
  Status st = set_keepalive(s.fd(), Toggle::on, std::chrono::seconds(0));  // the kernel wants idle >= 1
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error(), errc::invalid_argument);
}

TEST(SocketOptions, buffer_sizes_read_back_at_least_what_was_asked) {
  TcpSocket s;
  // Linux doubles the value for its bookkeeping and clamps it to net.core.[rw]mem_max; 64 KiB is below every
  // default maximum, so the read-back value is 2 x 64 KiB.
  ASSERT_TRUE(set_send_buffer(s.fd(), 64 * 1024).ok());
  ASSERT_TRUE(set_receive_buffer(s.fd(), 32 * 1024).ok());
  Result<int> snd = send_buffer_size(s.fd());
  Result<int> rcv = receive_buffer_size(s.fd());
  ASSERT_TRUE(snd.ok());
  ASSERT_TRUE(rcv.ok());
  EXPECT_EQ(*snd, 2 * 64 * 1024);
  EXPECT_EQ(*rcv, 2 * 32 * 1024);
  EXPECT_EQ(*snd, get_option(s.fd(), SOL_SOCKET, SO_SNDBUF));
  EXPECT_EQ(*rcv, get_option(s.fd(), SOL_SOCKET, SO_RCVBUF));
}

TEST(SocketOptions, reuse_address_and_reuse_port_read_back) {
  TcpSocket s;
  ASSERT_TRUE(set_reuse_address(s.fd(), Toggle::on).ok());
  ASSERT_TRUE(set_reuse_port(s.fd(), Toggle::on).ok());
  EXPECT_NE(get_option(s.fd(), SOL_SOCKET, SO_REUSEADDR), 0);
  EXPECT_NE(get_option(s.fd(), SOL_SOCKET, SO_REUSEPORT), 0);
  ASSERT_TRUE(set_reuse_port(s.fd(), Toggle::off).ok());
  EXPECT_EQ(get_option(s.fd(), SOL_SOCKET, SO_REUSEPORT), 0);
}

TEST(SocketOptions, a_closed_descriptor_gives_ebadf_from_every_call) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  ::close(fd);
  EXPECT_EQ(set_nodelay(fd, Toggle::on).error(), errc::closed);
  EXPECT_EQ(set_keepalive(fd, Toggle::on).error(), errc::closed);
  EXPECT_EQ(set_send_buffer(fd, 4096).error(), errc::closed);
  EXPECT_EQ(set_receive_buffer(fd, 4096).error(), errc::closed);
  EXPECT_EQ(set_reuse_address(fd, Toggle::on).error(), errc::closed);
  EXPECT_EQ(set_reuse_port(fd, Toggle::on).error(), errc::closed);
  EXPECT_EQ(send_buffer_size(fd).error(), errc::closed);
  EXPECT_EQ(receive_buffer_size(fd).error(), errc::closed);
}

TEST(SocketOptions, nodelay_on_a_unix_socket_is_an_error_value) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  Status st = set_nodelay(fds[0], Toggle::on);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.error(), Error{EOPNOTSUPP});
  ::close(fds[0]);
  ::close(fds[1]);
}

// ---- on a connected Stream, both backends -------------------------------------------------------------------

using testing::LoopTest;
class SocketOptionsOnStream : public LoopTest {};

struct OptionsSeen {
  int client_nodelay = -1;
  int client_keepalive = -1;
  int server_nodelay = -1;
  bool ok = false;
};

Task<OptionsSeen> set_options_on_both_ends(Listener* listener) {
  OptionsSeen seen;
  Result<Stream> client = co_await connect(listener->local_address(), std::chrono::seconds(5));
  if (!client) co_return seen;
  Result<Stream> server = co_await with_timeout(listener->accept(), std::chrono::seconds(5));
  if (!server) co_return seen;
  if (!client->set_nodelay(Toggle::on) || !client->set_keepalive(Toggle::on)) co_return seen;
  if (!server->set_nodelay(Toggle::on)) co_return seen;
  seen.client_nodelay = get_option(client->fd(), IPPROTO_TCP, TCP_NODELAY);
  seen.client_keepalive = get_option(client->fd(), SOL_SOCKET, SO_KEEPALIVE);
  seen.server_nodelay = get_option(server->fd(), IPPROTO_TCP, TCP_NODELAY);
  seen.ok = true;
  co_return seen;
}

TEST_P(SocketOptionsOnStream, stream_setters_reach_the_connected_descriptors) {
  auto listener = Listener::bind(loop(), Address::loopback_v4(0));
  ASSERT_TRUE(listener.ok());
  OptionsSeen seen = run(set_options_on_both_ends(&*listener));
  listener->close();
  ASSERT_TRUE(seen.ok);
  EXPECT_NE(seen.client_nodelay, 0);
  EXPECT_NE(seen.client_keepalive, 0);
  EXPECT_NE(seen.server_nodelay, 0);
}

RINGLET_BOTH_BACKENDS(SocketOptionsOnStream);

}  // namespace
}  // namespace ringlet
