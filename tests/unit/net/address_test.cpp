// address_test.cpp — parsing and printing socket addresses: IPv4, bracketed IPv6, Unix paths, and what is refused.
// Addresses are plain values, so these tests need no loop.
#include "ringlet/net/address.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/un.h>

#include <string>

namespace ringlet {
namespace {

std::string round_trip(std::string_view text) {
  Result<Address> a = Address::parse(text);
  if (!a) return "error: " + std::string(a.error().message());
  return a->to_string();
}

TEST(Address, ipv4_with_port_parses_and_prints_back_unchanged) {
  Result<Address> a = Address::parse("127.0.0.1:7000");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->family(), AF_INET);
  EXPECT_TRUE(a->is_ip());
  EXPECT_FALSE(a->is_unix());
  EXPECT_EQ(a->port(), 7000);
  EXPECT_EQ(a->length(), sizeof(sockaddr_in));
  EXPECT_EQ(a->to_string(), "127.0.0.1:7000");
  const auto* sin = reinterpret_cast<const sockaddr_in*>(a->sockaddr_ptr());
  EXPECT_EQ(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
}

TEST(Address, bracketed_ipv6_parses_and_prints_in_canonical_form) {
  Result<Address> a = Address::parse("[::1]:8080");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->family(), AF_INET6);
  EXPECT_EQ(a->port(), 8080);
  EXPECT_EQ(a->length(), sizeof(sockaddr_in6));
  EXPECT_EQ(a->to_string(), "[::1]:8080");
  EXPECT_EQ(round_trip("[2001:0db8:0000:0000:0000:0000:0000:0001]:1"), "[2001:db8::1]:1");
  EXPECT_EQ(round_trip("[::]:0"), "[::]:0");
}

TEST(Address, port_boundaries_zero_and_65535_are_accepted) {
  EXPECT_EQ(round_trip("1.2.3.4:0"), "1.2.3.4:0");
  EXPECT_EQ(round_trip("1.2.3.4:65535"), "1.2.3.4:65535");
}

TEST(Address, empty_star_and_localhost_hosts_mean_any_and_loopback) {
  EXPECT_EQ(round_trip(":80"), "0.0.0.0:80");
  EXPECT_EQ(round_trip("*:80"), "0.0.0.0:80");
  EXPECT_EQ(round_trip("localhost:80"), "127.0.0.1:80");
}

TEST(Address, unix_prefix_and_absolute_path_both_give_a_unix_address) {
  Result<Address> a = Address::parse("unix:/tmp/ringlet.sock");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->is_unix());
  EXPECT_FALSE(a->is_ip());
  EXPECT_EQ(a->port(), 0);
  EXPECT_EQ(a->to_string(), "unix:/tmp/ringlet.sock");
  Result<Address> b = Address::parse("/tmp/ringlet.sock");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
  const auto* sun = reinterpret_cast<const sockaddr_un*>(a->sockaddr_ptr());
  EXPECT_STREQ(sun->sun_path, "/tmp/ringlet.sock");
}

TEST(Address, unix_path_that_fills_sun_path_is_refused_one_shorter_is_accepted) {
  constexpr std::size_t capacity = sizeof(sockaddr_un{}.sun_path);
  std::string longest = "/" + std::string(capacity - 2, 'p');  // capacity - 1 characters + the terminating NUL
  Result<Address> ok = Address::unix_path(longest);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->to_string(), "unix:" + longest);
  Result<Address> too_long = Address::unix_path(longest + "p");
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.error(), errc::invalid_argument);
}

TEST(Address, malformed_text_is_invalid_argument) {
  const char* bad[] = {
      "",                 // nothing
      "127.0.0.1",        // no port
      "127.0.0.1:",       // empty port
      "127.0.0.1:65536",  // port out of range
      "127.0.0.1:-1",     // negative port
      "127.0.0.1:80x",    // trailing junk in the port
      "127.0.0.1: 80",    // space in the port
      "256.0.0.1:80",     // octet out of range
      "example.com:80",   // names are resolve()'s job, not parse()'s
      "::1:80",           // IPv6 without brackets
      "[::1]",            // bracketed, no port
      "[::1]80",          // no colon after the bracket
      "[::1:80",          // unclosed bracket
      "[127.0.0.1:80",    // unclosed bracket around IPv4
      "[zz::1]:80",       // not hex
      "unix:",            // empty path
  };
  for (const char* text : bad) {
    Result<Address> a = Address::parse(text);
    EXPECT_FALSE(a.ok()) << "accepted \"" << text << "\" as " << (a.ok() ? a->to_string() : "");
    if (!a.ok()) {
      EXPECT_EQ(a.error(), errc::invalid_argument) << text;
    }
  }
}

TEST(Address, loopback_constructors_match_their_parsed_forms) {
  EXPECT_EQ(Address::loopback_v4(9), Address::parse("127.0.0.1:9").value());
  EXPECT_EQ(Address::loopback_v6(9), Address::parse("[::1]:9").value());
  EXPECT_EQ(Address::ipv4(0x0a000001, 443).to_string(), "10.0.0.1:443");
}

TEST(Address, set_port_changes_ip_addresses_and_ignores_unix_ones) {
  Address v4 = Address::loopback_v4(1);
  v4.set_port(4242);
  EXPECT_EQ(v4.to_string(), "127.0.0.1:4242");
  Address v6 = Address::loopback_v6(1);
  v6.set_port(4243);
  EXPECT_EQ(v6.to_string(), "[::1]:4243");
  Address u = Address::unix_path("/tmp/x.sock").value();
  u.set_port(5);
  EXPECT_EQ(u.to_string(), "unix:/tmp/x.sock");
  EXPECT_EQ(u.port(), 0);
}

TEST(Address, equality_compares_family_host_and_port) {
  EXPECT_EQ(Address::parse("127.0.0.1:1").value(), Address::parse("127.0.0.1:1").value());
  EXPECT_FALSE(Address::parse("127.0.0.1:1").value() == Address::parse("127.0.0.1:2").value());
  EXPECT_FALSE(Address::parse("127.0.0.1:1").value() == Address::parse("127.0.0.2:1").value());
  EXPECT_FALSE(Address::parse("127.0.0.1:1").value() == Address::parse("[::1]:1").value());
  EXPECT_FALSE(Address::parse("unix:/a").value() == Address::parse("unix:/b").value());
}

TEST(Address, constructed_from_a_kernel_sockaddr_it_prints_that_address) {
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(12345);
  inet_pton(AF_INET6, "fe80::2", &sin6.sin6_addr);
  Address a(reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6);
  EXPECT_EQ(a.to_string(), "[fe80::2]:12345");
  EXPECT_EQ(Address().to_string(), "(unspecified)");
}

}  // namespace
}  // namespace ringlet
