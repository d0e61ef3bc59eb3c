// address.cpp — parsing and printing socket addresses.
#include "ringlet/net/address.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstddef>
#include <cstring>

namespace ringlet {

Address::Address(const sockaddr* sa, socklen_t len) noexcept {
  length_ = len > sizeof storage_ ? sizeof storage_ : len;
  std::memcpy(&storage_, sa, length_);
}

Address Address::ipv4(std::uint32_t host_order_addr, std::uint16_t port) noexcept {
  Address a;
  auto* sin = reinterpret_cast<sockaddr_in*>(&a.storage_);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  sin->sin_addr.s_addr = htonl(host_order_addr);
  a.length_ = sizeof(sockaddr_in);
  return a;
}

Address Address::loopback_v4(std::uint16_t port) noexcept { return ipv4(INADDR_LOOPBACK, port); }

Address Address::loopback_v6(std::uint16_t port) noexcept {
  Address a;
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  sin6->sin6_addr = in6addr_loopback;
  a.length_ = sizeof(sockaddr_in6);
  return a;
}

Result<Address> Address::unix_path(std::string_view path) {
  Address a;
  auto* sun = reinterpret_cast<sockaddr_un*>(&a.storage_);
  if (path.empty() || path.size() >= sizeof sun->sun_path) return errc::invalid_argument;
  sun->sun_family = AF_UNIX;
  std::memcpy(sun->sun_path, path.data(), path.size());
  a.length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return a;
}

Result<Address> Address::parse(std::string_view text) {
  if (text.starts_with("unix:")) return unix_path(text.substr(5));
  if (text.starts_with("/")) return unix_path(text);
  std::string_view host;
  std::string_view port_text;
  if (text.starts_with("[")) {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return errc::invalid_argument;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return errc::invalid_argument;
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return errc::invalid_argument;  // IPv6 needs brackets
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port > 65535 || port_text.empty()) {
    return errc::invalid_argument;
  }
  std::string host_z(host);
  if (host_z.empty() || host_z == "*") host_z = "0.0.0.0";
  if (host_z == "localhost") host_z = "127.0.0.1";
  Address a;
  auto* sin = reinterpret_cast<sockaddr_in*>(&a.storage_);
  if (inet_pton(AF_INET, host_z.c_str(), &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<std::uint16_t>(port));
    a.length_ = sizeof(sockaddr_in);
    return a;
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
  if (inet_pton(AF_INET6, host_z.c_str(), &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(static_cast<std::uint16_t>(port));
    a.length_ = sizeof(sockaddr_in6);
    return a;
  }
  return errc::invalid_argument;
}

std::uint16_t Address::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

void Address::set_port(std::uint16_t port) noexcept {
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
}

std::string Address::to_string() const {
  char host[INET6_ADDRSTRLEN] = {};
  switch (family()) {
    case AF_INET:
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, host, sizeof host);
      return std::string(host) + ":" + std::to_string(port());
    case AF_INET6:
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, host, sizeof host);
      return "[" + std::string(host) + "]:" + std::to_string(port());
    case AF_UNIX: {
      const auto* sun = reinterpret_cast<const sockaddr_un*>(&storage_);
      std::size_t max = length_ > offsetof(sockaddr_un, sun_path) ? length_ - offsetof(sockaddr_un, sun_path) : 0;
      return "unix:" + std::string(sun->sun_path, strnlen(sun->sun_path, max));
    }
    default:
      return "(unspecified)";
  }
}

bool Address::operator==(const Address& o) const noexcept {
  return length_ == o.length_ && std::memcmp(&storage_, &o.storage_, length_) == 0;
}

}  // namespace ringlet
