// proxy_protocol.hpp — composing the PROXY protocol header (HAProxy's, versions 1 and 2) that a proxy sends to a
// backend before the client's bytes, so the backend learns the client's address. Pure: appends bytes to a string,
// no I/O. Core-local (no state at all).
//
// Spec: https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt. Choices the spec leaves to the sender:
//  - v1: TCP4 when both addresses are IPv4, TCP6 when both are IPv6 (an IPv4-mapped IPv6 address is written as
//    IPv6, as the socket reports it), otherwise "PROXY UNKNOWN\r\n" (Unix sockets, mixed families); the receiver
//    then uses the connection's own addresses.
//  - v2: always the PROXY command (never LOCAL), transport STREAM. AF_INET / AF_INET6 as in v1; AF_UNIX when both
//    are Unix sockets (108-byte NUL-padded paths, empty for an unnamed client socket); otherwise AF_UNSPEC with no
//    address block. No TLVs.
// Checklist: if you add TLVs or change a family rule, update the table tests in
// tests/unit/proto/proxy_protocol_test.cpp and docs/proxy.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ringlet/net/address.hpp"

namespace ringlet::proxy_protocol {

enum class Version : std::uint8_t { none, v1, v2 };
bool parse_version(std::string_view text, Version& out) noexcept;  // "v1", "v2", "none"
std::string_view version_name(Version v) noexcept;

// The 12 bytes that open every v2 header.
inline constexpr std::string_view kV2Signature{"\r\n\r\n\0\r\nQUIT\n", 12};
inline constexpr std::size_t kV1MaxLength = 107;  // the spec's bound, CRLF included

// Appends the header for a connection from `source` (the client) to `destination` (the address the client
// reached: our listening socket's local address).
void compose_v1(const Address& source, const Address& destination, std::string& out);
void compose_v2(const Address& source, const Address& destination, std::string& out);
// compose_v1 or compose_v2; nothing for Version::none.
void compose(Version version, const Address& source, const Address& destination, std::string& out);

}  // namespace ringlet::proxy_protocol
