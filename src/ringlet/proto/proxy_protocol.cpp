// proxy_protocol.cpp — the PROXY protocol header, v1 (text) and v2 (binary). See proxy_protocol.hpp for the
// choices made where the spec leaves room.
#include "ringlet/proto/proxy_protocol.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <iterator>

#include <fmt/format.h>

namespace ringlet::proxy_protocol {

bool parse_version(std::string_view text, Version& out) noexcept {
  if (text == "v1") {
    out = Version::v1;
  } else if (text == "v2") {
    out = Version::v2;
  } else if (text == "none") {
    out = Version::none;
  } else {
    return false;
  }
  return true;
}

std::string_view version_name(Version v) noexcept {
  switch (v) {
    case Version::none:
      return "none";
    case Version::v1:
      return "v1";
    case Version::v2:
      return "v2";
  }
  return "?";
}

namespace {

// v2 header fields (spec section 2.2).
constexpr std::uint8_t kV2VersionProxy = 0x21;  // version 2, command PROXY
constexpr std::uint8_t kV2Unspec = 0x00;
constexpr std::uint8_t kV2Tcp4 = 0x11;  // AF_INET, STREAM
constexpr std::uint8_t kV2Tcp6 = 0x21;  // AF_INET6, STREAM
constexpr std::uint8_t kV2UnixStream = 0x31;
constexpr std::size_t kUnixPathBytes = 108;

const sockaddr_in& v4(const Address& a) { return *reinterpret_cast<const sockaddr_in*>(a.sockaddr_ptr()); }
const sockaddr_in6& v6(const Address& a) { return *reinterpret_cast<const sockaddr_in6*>(a.sockaddr_ptr()); }

std::string host_text(const Address& a) {
  char text[INET6_ADDRSTRLEN] = {};
  if (a.family() == AF_INET) {
    ::inet_ntop(AF_INET, &v4(a).sin_addr, text, sizeof text);
  } else {
    ::inet_ntop(AF_INET6, &v6(a).sin6_addr, text, sizeof text);
  }
  return text;
}

void put16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

void put_bytes(std::string& out, const void* p, std::size_t n) { out.append(static_cast<const char*>(p), n); }

// A Unix socket path, NUL-padded to 108 bytes (an unnamed socket: all zero).
void put_unix_path(std::string& out, const Address& a) {
  const auto* un = reinterpret_cast<const sockaddr_un*>(a.sockaddr_ptr());
  std::size_t start = out.size();
  out.resize(start + kUnixPathBytes, '\0');
  const std::size_t offset = offsetof(sockaddr_un, sun_path);
  if (a.length() > offset) {
    std::size_t n = std::min<std::size_t>(a.length() - offset, kUnixPathBytes);
    std::memcpy(out.data() + start, un->sun_path, n);
  }
}

}  // namespace

void compose_v1(const Address& source, const Address& destination, std::string& out) {
  const int family = source.family();
  if ((family != AF_INET && family != AF_INET6) || destination.family() != family) {
    out.append("PROXY UNKNOWN\r\n");
    return;
  }
  fmt::format_to(std::back_inserter(out), "PROXY {} {} {} {} {}\r\n", family == AF_INET ? "TCP4" : "TCP6",
                 host_text(source), host_text(destination), source.port(), destination.port());
}

void compose_v2(const Address& source, const Address& destination, std::string& out) {
  out.append(kV2Signature);
  out.push_back(static_cast<char>(kV2VersionProxy));
  const int family = destination.family() == source.family() ? source.family() : AF_UNSPEC;
  switch (family) {
    case AF_INET:
      out.push_back(static_cast<char>(kV2Tcp4));
      put16(out, 12);
      put_bytes(out, &v4(source).sin_addr, 4);
      put_bytes(out, &v4(destination).sin_addr, 4);
      put_bytes(out, &v4(source).sin_port, 2);  // already in network order
      put_bytes(out, &v4(destination).sin_port, 2);
      return;
    case AF_INET6:
      out.push_back(static_cast<char>(kV2Tcp6));
      put16(out, 36);
      put_bytes(out, &v6(source).sin6_addr, 16);
      put_bytes(out, &v6(destination).sin6_addr, 16);
      put_bytes(out, &v6(source).sin6_port, 2);
      put_bytes(out, &v6(destination).sin6_port, 2);
      return;
    case AF_UNIX:
      out.push_back(static_cast<char>(kV2UnixStream));
      put16(out, 2 * kUnixPathBytes);
      put_unix_path(out, source);
      put_unix_path(out, destination);
      return;
    default:
      out.push_back(static_cast<char>(kV2Unspec));
      put16(out, 0);
      return;
  }
}

void compose(Version version, const Address& source, const Address& destination, std::string& out) {
  switch (version) {
    case Version::none:
      return;
    case Version::v1:
      return compose_v1(source, destination, out);
    case Version::v2:
      return compose_v2(source, destination, out);
  }
}

}  // namespace ringlet::proxy_protocol
