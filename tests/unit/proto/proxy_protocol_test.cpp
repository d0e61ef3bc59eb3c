// proxy_protocol_test.cpp — the PROXY protocol header against the spec's examples and limits
// (https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt, sections 2.1 and 2.2): v1 text for TCP4, TCP6 and
// UNKNOWN, the longest v1 line, and v2 bytes for IPv4, IPv6, Unix and mixed families.
#include "ringlet/proto/proxy_protocol.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ringlet::proxy_protocol {
namespace {

Address parse(std::string_view text) {
  auto a = Address::parse(text);
  EXPECT_TRUE(a.ok()) << text;
  return a ? *a : Address{};
}

std::string v1(std::string_view source, std::string_view destination) {
  std::string out;
  compose_v1(parse(source), parse(destination), out);
  return out;
}

std::string v2(std::string_view source, std::string_view destination) {
  std::string out;
  compose_v2(parse(source), parse(destination), out);
  return out;
}

std::string bytes(std::initializer_list<int> list) {
  std::string s;
  for (int b : list) s.push_back(static_cast<char>(b));
  return s;
}

const std::string kSig = bytes({0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A});

struct V1Case {
  const char* source;
  const char* destination;
  const char* expected;
};

TEST(ProxyProtocolV1, composes_the_spec_examples_and_its_longest_lines) {
  const V1Case cases[] = {
      // The spec's examples (2.1).
      {"192.168.0.1:56324", "192.168.0.11:443", "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"},
      {"255.255.255.255:65535", "255.255.255.255:65535",
       "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"},
      {"[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
       "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"},
      {"[::1]:40000", "[::1]:8000", "PROXY TCP6 ::1 ::1 40000 8000\r\n"},
      // Mixed families and Unix sockets: UNKNOWN (the receiver uses the connection's own addresses).
      {"127.0.0.1:1", "[::1]:2", "PROXY UNKNOWN\r\n"},
      {"unix:/tmp/a.sock", "unix:/tmp/b.sock", "PROXY UNKNOWN\r\n"},
  };
  for (const V1Case& c : cases) {
    std::string line = v1(c.source, c.destination);
    EXPECT_EQ(line, c.expected) << c.source << " -> " << c.destination;
    EXPECT_LE(line.size(), kV1MaxLength);
  }
}

TEST(ProxyProtocolV2, ipv4_is_the_signature_version_family_length_and_addresses_in_network_order) {
  std::string expected = kSig + bytes({0x21, 0x11, 0x00, 0x0C,  // v2 PROXY, TCP over IPv4, 12 bytes
                                       192, 168, 0, 1, 192, 168, 0, 11,  // source, destination
                                       0xDC, 0x04, 0x01, 0xBB});         // 56324, 443
  EXPECT_EQ(v2("192.168.0.1:56324", "192.168.0.11:443"), expected);
}

TEST(ProxyProtocolV2, ipv6_carries_sixteen_byte_addresses) {
  std::string expected = kSig + bytes({0x21, 0x21, 0x00, 0x24});  // TCP over IPv6, 36 bytes
  expected += bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01});  // 2001:db8::1
  expected += bytes({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01});              // ::1
  expected += bytes({0x9C, 0x40, 0x1F, 0x40});                                          // 40000, 8000
  EXPECT_EQ(v2("[2001:db8::1]:40000", "[::1]:8000"), expected);
}

TEST(ProxyProtocolV2, unix_sockets_carry_two_padded_108_byte_paths) {
  std::string header = v2("unix:/tmp/client.sock", "unix:/run/proxy.sock");
  ASSERT_EQ(header.size(), 16u + 216u);
  EXPECT_EQ(header.substr(0, 16), kSig + bytes({0x21, 0x31, 0x00, 0xD8}));
  EXPECT_EQ(std::string(header.c_str() + 16), "/tmp/client.sock");
  EXPECT_EQ(std::string(header.c_str() + 16 + 108), "/run/proxy.sock");
  EXPECT_EQ(header[16 + 107], '\0');
}

TEST(ProxyProtocolV2, mixed_families_are_unspec_with_no_address_block) {
  EXPECT_EQ(v2("127.0.0.1:1", "[::1]:2"), kSig + bytes({0x21, 0x00, 0x00, 0x00}));
}

TEST(ProxyProtocol, compose_follows_the_version_and_none_adds_nothing) {
  std::string out = "x";
  compose(Version::none, parse("127.0.0.1:1"), parse("127.0.0.1:2"), out);
  EXPECT_EQ(out, "x");
  out.clear();
  compose(Version::v1, parse("127.0.0.1:1"), parse("127.0.0.1:2"), out);
  EXPECT_EQ(out, "PROXY TCP4 127.0.0.1 127.0.0.1 1 2\r\n");
  out.clear();
  compose(Version::v2, parse("127.0.0.1:1"), parse("127.0.0.1:2"), out);
  EXPECT_EQ(out.substr(0, 12), std::string(kV2Signature));
  Version v = Version::none;
  EXPECT_TRUE(parse_version("v2", v));
  EXPECT_EQ(v, Version::v2);
  EXPECT_FALSE(parse_version("v3", v));
}

}  // namespace
}  // namespace ringlet::proxy_protocol
