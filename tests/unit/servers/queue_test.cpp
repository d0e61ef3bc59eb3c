// Tests of what servers/queue.hpp adds besides the connection loop (tested black-box in
// tests/integration/queue_server_test.cpp): the --allow address blocks.
#include "ringlet/servers/queue.hpp"

#include <gtest/gtest.h>

namespace ringlet {
namespace {

Address addr(const char* text) {
  auto a = Address::parse(text);
  return *a;
}
Cidr cidr(const char* text) {
  auto c = Cidr::parse(text);
  EXPECT_TRUE(c.ok()) << text;
  return c.ok() ? *c : Cidr{};
}

TEST(QueueCidrTest, an_ipv4_block_contains_its_addresses_only) {
  Cidr c = cidr("10.1.0.0/16");
  EXPECT_TRUE(c.contains(addr("10.1.2.3:5")));
  EXPECT_TRUE(c.contains(addr("10.1.255.255:5")));
  EXPECT_FALSE(c.contains(addr("10.2.0.1:5")));
  EXPECT_FALSE(c.contains(addr("[::1]:5")));
  EXPECT_TRUE(c.contains(addr("[::ffff:10.1.0.9]:5"))) << "an IPv4 client on a dual-stack socket";
}

TEST(QueueCidrTest, odd_prefixes_and_single_addresses) {
  Cidr c = cidr("192.168.1.128/25");
  EXPECT_TRUE(c.contains(addr("192.168.1.200:1")));
  EXPECT_FALSE(c.contains(addr("192.168.1.127:1")));
  Cidr one = cidr("127.0.0.1");
  EXPECT_TRUE(one.contains(addr("127.0.0.1:1")));
  EXPECT_FALSE(one.contains(addr("127.0.0.2:1")));
  Cidr v6 = cidr("fd00::/8");
  EXPECT_TRUE(v6.contains(addr("[fd12::1]:1")));
  EXPECT_FALSE(v6.contains(addr("[fe80::1]:1")));
  EXPECT_TRUE(cidr("0.0.0.0/0").contains(addr("8.8.8.8:53")));
}

TEST(QueueCidrTest, malformed_blocks_are_refused) {
  for (const char* bad : {"", "10.0.0.0/33", "::1/129", "10.0.0/8", "10.0.0.0/", "10.0.0.0/x", "host/8"}) {
    EXPECT_FALSE(Cidr::parse(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace ringlet
