#include "ringlet/net/datagram.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "ringlet/runtime/timeout.hpp"
#include "support/loop_fixture.hpp"

namespace ringlet {
namespace {

using namespace std::chrono_literals;
using testing::LoopTest;

enum class Family { v4, v6 };

class DatagramTest : public LoopTest {
 protected:
  Address any_port(Family f) { return f == Family::v4 ? Address::loopback_v4(0) : Address::loopback_v6(0); }
  // A bound socket, or a skip when the family is not configured (no ::1 in a minimal container).
  DatagramSocket bound(Family f) {
    auto s = DatagramSocket::bind(loop(), any_port(f));
    if (!s.ok() && f == Family::v6 && s.error() == Error{EADDRNOTAVAIL}) return {};
    EXPECT_TRUE(s.ok()) << s.error().message();
    return s.ok() ? std::move(s.value()) : DatagramSocket{};
  }
  void roundtrip(DatagramSocket& a, DatagramSocket& b);
};

struct Received {
  std::string bytes;
  Address from;
  bool truncated = false;
  Error error{};
};

Task<Received> receive_one(DatagramSocket* s, std::size_t capacity) {
  std::string buf(capacity, '\0');
  Result<Datagram> d = co_await s->receive_from(std::as_writable_bytes(std::span(buf.data(), buf.size())));
  Received out;
  if (!d) {
    out.error = d.error();
    co_return out;
  }
  out.bytes = buf.substr(0, d->size);
  out.from = d->from;
  out.truncated = d->truncated;
  co_return out;
}

Task<Status> send_one(DatagramSocket* s, std::string text, Address to) {
  Result<std::size_t> n = co_await s->send_to(text, to);
  if (!n) co_return n.error();
  if (*n != text.size()) co_return Error{EMSGSIZE};
  co_return Status{};
}

template <class T>
Task<T> join(JoinHandle<T> h) {
  co_return co_await h;
}

void DatagramTest::roundtrip(DatagramSocket& a, DatagramSocket& b) {
  Address a_addr = a.local_address().value();
  Address b_addr = b.local_address().value();
  EXPECT_NE(b_addr.port(), 0);
  // The receiver waits first, so the datagram completes a pending receive (not one found queued).
  auto rx = loop().spawn_joinable(receive_one(&b, 1500));
  loop().run_once(false);
  EXPECT_FALSE(rx.done());
  EXPECT_TRUE(run(send_one(&a, "ping", b_addr)).ok());
  Received got = run(join(std::move(rx)));
  EXPECT_EQ(got.error, Error{});
  EXPECT_EQ(got.bytes, "ping");
  EXPECT_EQ(got.from, a_addr);
  EXPECT_FALSE(got.truncated);
  // And back, with the datagram already queued when the receive starts.
  EXPECT_TRUE(run(send_one(&b, "pong", got.from)).ok());
  Received back = run(receive_one(&a, 1500));
  EXPECT_EQ(back.bytes, "pong");
  EXPECT_EQ(back.from, b_addr);
}

TEST_P(DatagramTest, datagrams_roundtrip_over_ipv4_loopback_with_sender_addresses) {
  DatagramSocket a = bound(Family::v4);
  DatagramSocket b = bound(Family::v4);
  ASSERT_TRUE(a.is_open() && b.is_open());
  roundtrip(a, b);
}

TEST_P(DatagramTest, datagrams_roundtrip_over_ipv6_loopback_with_sender_addresses) {
  DatagramSocket a = bound(Family::v6);
  DatagramSocket b = bound(Family::v6);
  if (!a.is_open() || !b.is_open()) GTEST_SKIP() << "no IPv6 loopback here";
  EXPECT_EQ(a.local_address()->family(), AF_INET6);
  roundtrip(a, b);
}

TEST_P(DatagramTest, datagram_boundaries_and_order_are_kept) {
  DatagramSocket a = bound(Family::v4);
  DatagramSocket b = bound(Family::v4);
  ASSERT_TRUE(a.is_open() && b.is_open());
  Address to = b.local_address().value();
  std::vector<std::string> sent = {"one", "", "three", std::string(1000, 'x')};
  for (const std::string& s : sent) ASSERT_TRUE(run(send_one(&a, s, to)).ok());
  for (const std::string& s : sent) EXPECT_EQ(run(receive_one(&b, 1500)).bytes, s);
}

TEST_P(DatagramTest, a_datagram_larger_than_the_buffer_is_cut_and_reported_truncated) {
  DatagramSocket a = bound(Family::v4);
  DatagramSocket b = bound(Family::v4);
  ASSERT_TRUE(a.is_open() && b.is_open());
  ASSERT_TRUE(run(send_one(&a, "0123456789", b.local_address().value())).ok());
  ASSERT_TRUE(run(send_one(&a, "next", b.local_address().value())).ok());
  Received cut = run(receive_one(&b, 4));
  EXPECT_EQ(cut.bytes, "0123");
  EXPECT_TRUE(cut.truncated);
  EXPECT_EQ(run(receive_one(&b, 1500)).bytes, "next");  // the rest of the first one is gone, not prepended
}

Task<Received> receive_with_timeout(DatagramSocket* s) {
  std::string buf(64, '\0');
  Result<Datagram> d =
      co_await with_timeout(s->receive_from(std::as_writable_bytes(std::span(buf.data(), buf.size()))), 5ms);
  Received out;
  if (!d) {
    out.error = d.error();
  } else {
    out.bytes = buf.substr(0, d->size);
  }
  co_return out;
}

TEST_P(DatagramTest, a_receive_cancelled_by_a_timeout_loses_no_later_datagram) {
  DatagramSocket a = bound(Family::v4);
  DatagramSocket b = bound(Family::v4);
  ASSERT_TRUE(a.is_open() && b.is_open());
  EXPECT_EQ(run(receive_with_timeout(&b)).error, errc::timed_out);
  EXPECT_EQ(loop().pending_operations(), 0u);  // the kernel op ended before the task resumed
  ASSERT_TRUE(run(send_one(&a, "after", b.local_address().value())).ok());
  EXPECT_EQ(run(receive_one(&b, 1500)).bytes, "after");
}

TEST_P(DatagramTest, sending_to_an_address_of_the_other_family_fails) {
  DatagramSocket a = bound(Family::v4);
  ASSERT_TRUE(a.is_open());
  Status s = run(send_one(&a, "x", Address::loopback_v6(9)));
  EXPECT_FALSE(s.ok());
}

TEST_P(DatagramTest, binding_an_address_in_use_fails_and_close_frees_it) {
  DatagramSocket a = bound(Family::v4);
  ASSERT_TRUE(a.is_open());
  Address addr = a.local_address().value();
  EXPECT_EQ(DatagramSocket::bind(loop(), addr).error(), Error{EADDRINUSE});
  a.close();
  EXPECT_FALSE(a.is_open());
  EXPECT_TRUE(DatagramSocket::bind(loop(), addr).ok());
}

RINGLET_BOTH_BACKENDS(DatagramTest);

}  // namespace
}  // namespace ringlet
