#include "ringlet/net/tcp_server.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support/loop_fixture.hpp"
#include "support/sharded_server_fixture.hpp"

namespace ringlet {
namespace {

// Records whether the accepted socket has TCP_NODELAY, then stops the server.
Task<void> record_nodelay(Stream stream, TcpServer& server) {
  int on = -1;
  socklen_t len = sizeof on;
  if (::getsockopt(stream.fd(), IPPROTO_TCP, TCP_NODELAY, &on, &len) != 0) on = -2;
  *static_cast<int*>(server.user()) = on;
  server.stop();
  co_return;
}

class TcpServerTest : public testing::LoopTest {};

// #12: TCP_NODELAY is set once on the listener and inherited by every accepted socket (Linux copies it), instead of
// a setsockopt per connection; request/response servers still get no Nagle delay.
TEST_P(TcpServerTest, accepted_streams_have_tcp_nodelay_inherited_from_the_listener_issue_12) {
  ServerOptions options;
  options.listen = Address::loopback_v4(0);
  int nodelay = -3;
  TcpServer server(loop(), options, &record_nodelay, &nodelay);
  ASSERT_TRUE(server.listen());
  // A connect to a listening socket completes in the kernel's backlog before anything accepts it.
  int client = testing::connect_loopback(server.local_address().port());
  ASSERT_GE(client, 0);
  run(server.run());
  ::close(client);
  EXPECT_EQ(nodelay, 1);
}

RINGLET_BOTH_BACKENDS(TcpServerTest);

}  // namespace
}  // namespace ringlet
