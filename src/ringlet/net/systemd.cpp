// systemd.cpp — LISTEN_FDS and NOTIFY_SOCKET, by hand (see systemd.hpp for why).
#include "ringlet/net/systemd.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace ringlet {
namespace {

constexpr int kFirstInheritedFd = 3;  // SD_LISTEN_FDS_START

bool parse_number(const char* text, long& out) {
  if (text == nullptr) return false;
  const char* end = text + std::strlen(text);
  auto [ptr, ec] = std::from_chars(text, end, out);
  return ec == std::errc() && ptr == end;
}

}  // namespace

std::vector<InheritedSocket> take_inherited_sockets() {
  std::vector<InheritedSocket> sockets;
  long pid = 0;
  long count = 0;
  bool ours = parse_number(std::getenv("LISTEN_PID"), pid) && pid == ::getpid() &&
              parse_number(std::getenv("LISTEN_FDS"), count) && count > 0 && count < 4096;
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  if (!ours) return sockets;
  for (int fd = kFirstInheritedFd; fd < kFirstInheritedFd + count; ++fd) {
    InheritedSocket s;
    s.fd = fd;
    *s.address.length_ptr() = Address::capacity();
    if (::getsockname(fd, s.address.sockaddr_ptr(), s.address.length_ptr()) != 0) continue;  // not a socket
    sockets.push_back(s);
  }
  return sockets;
}

Status notify_service_manager(std::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || *path == '\0') return {};
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::size_t length = std::strlen(path);
  if ((path[0] != '/' && path[0] != '@') || length >= sizeof address.sun_path) return Error{EINVAL};
  std::memcpy(address.sun_path, path, length);
  if (path[0] == '@') address.sun_path[0] = '\0';  // the abstract namespace: no trailing NUL counts
  auto address_length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length);
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error{errno};
  ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&address),
                          address_length);
  int err = errno;
  ::close(fd);
  if (sent < 0) return Error{err};
  return {};
}

}  // namespace ringlet
