// address.hpp — socket addresses: IPv4, IPv6 and Unix paths, parsed from and printed as text. Plain values.
//
// Text forms: "127.0.0.1:7000", "[::1]:7000", "unix:/run/x.sock" (also any string starting with '/').
// parse() only accepts numeric hosts; names go through resolve() (resolve.hpp), off the loop.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "ringlet/base/result.hpp"

namespace ringlet {

class Address {
 public:
  Address() = default;
  Address(const sockaddr* sa, socklen_t len) noexcept;

  static Result<Address> parse(std::string_view text);
  static Address ipv4(std::uint32_t host_order_addr, std::uint16_t port) noexcept;
  static Address loopback_v4(std::uint16_t port) noexcept;
  static Address loopback_v6(std::uint16_t port) noexcept;
  static Result<Address> unix_path(std::string_view path);

  int family() const noexcept { return storage_.ss_family; }
  bool is_ip() const noexcept { return family() == AF_INET || family() == AF_INET6; }
  bool is_unix() const noexcept { return family() == AF_UNIX; }
  std::uint16_t port() const noexcept;  // 0 for Unix
  void set_port(std::uint16_t port) noexcept;

  const sockaddr* sockaddr_ptr() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* sockaddr_ptr() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t length() const noexcept { return length_; }
  socklen_t* length_ptr() noexcept { return &length_; }
  static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }

  std::string to_string() const;
  bool operator==(const Address& o) const noexcept;

 private:
  sockaddr_storage storage_{};
  socklen_t length_ = 0;
};

}  // namespace ringlet
